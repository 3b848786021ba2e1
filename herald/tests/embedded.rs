//! The embedded cluster's own features — fault controls, broker stop/start,
//! leader moves, acknowledge-without-storing — and herald's behaviour under the
//! faults they inject. Each test starts a cluster of its own.

mod support;

use std::time::Duration;

use herald::mock::{Fault, MockApi, MockCluster};
use herald::{ErrorCode, ErrorKind, Producer, Record, TimeoutKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn cluster(brokers: usize) -> MockCluster {
    MockCluster::builder().brokers(brokers).start().await.unwrap()
}

fn producer(c: &MockCluster) -> herald::ProducerBuilder {
    Producer::builder()
        .bootstrap_servers(c.bootstrap())
        .max_block(Duration::from_secs(10))
        .delivery_timeout(Duration::from_secs(40))
        .retry_backoff_max(Duration::from_millis(200))
}

#[tokio::test]
async fn retriable_errors_are_retried_until_delivered() {
    let c = cluster(1).await;
    c.create_topic("t", 1).unwrap();
    let p = producer(&c).build().unwrap();
    c.fail_next(MockApi::Produce, 3, Fault::Error(ErrorCode::NOT_LEADER_OR_FOLLOWER));
    let md = p.send_and_wait(Record::new("t").value("v")).await.unwrap();
    assert_eq!(md.offset(), Some(0));
    assert_eq!(c.records("t", 0).unwrap().len(), 1, "written once");
}

#[tokio::test]
async fn non_retriable_errors_fail_the_record_with_the_code() {
    let c = cluster(1).await;
    c.create_topic("t", 2).unwrap();
    let p = producer(&c).build().unwrap();
    c.fail_next(MockApi::Produce, 1, Fault::Error(ErrorCode::TOPIC_AUTHORIZATION_FAILED));
    let e = p.send_and_wait(Record::new("t").value("v").partition(1)).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED));
    assert_eq!((e.topic(), e.partition()), (Some("t"), Some(1)));
    // The next record is unaffected.
    p.send_and_wait(Record::new("t").value("v").partition(1)).await.unwrap();
}

#[tokio::test]
async fn without_retries_a_retriable_error_fails_at_once() {
    let c = cluster(1).await;
    c.create_topic("t", 1).unwrap();
    let p = producer(&c).retries(0).build().unwrap();
    c.fail_next(MockApi::Produce, 1, Fault::Error(ErrorCode::NOT_ENOUGH_REPLICAS));
    let e = p.send_and_wait(Record::new("t").value("v")).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NOT_ENOUGH_REPLICAS));
}

#[tokio::test]
async fn a_slow_broker_times_out_the_request_and_the_record_is_retried() {
    let c = cluster(1).await;
    c.create_topic("t", 1).unwrap();
    let p = producer(&c)
        .request_timeout(Duration::from_millis(500))
        .linger(Duration::ZERO)
        .delivery_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    // Warm up: metadata and connection, before the broker turns slow.
    p.send_and_wait(Record::new("t").value("warm")).await.unwrap();
    c.set_latency(Duration::from_secs(2));
    let f = p.send(Record::new("t").value("slow")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    c.set_latency(Duration::ZERO);
    let md = f.await.unwrap();
    // The slow attempt may also have been appended (the broker handled it before
    // answering late): at-least-once without idempotence.
    assert!(md.offset().unwrap() >= 1);
}

#[tokio::test]
async fn delivery_timeout_bounds_a_record_that_cannot_be_written() {
    let c = cluster(1).await;
    c.create_topic("t", 1).unwrap();
    let p = producer(&c)
        .request_timeout(Duration::from_millis(300))
        .linger(Duration::ZERO)
        .delivery_timeout(Duration::from_millis(1500))
        .build()
        .unwrap();
    p.send_and_wait(Record::new("t").value("warm")).await.unwrap();
    c.fail_next(MockApi::Produce, 1000, Fault::Error(ErrorCode::NOT_ENOUGH_REPLICAS));
    let started = std::time::Instant::now();
    let e = p.send_and_wait(Record::new("t").value("doomed")).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(matches!(e.kind(), ErrorKind::Timeout { waiting_for: TimeoutKind::Delivery, .. }), "{e}");
    assert!(e.to_string().contains("NOT_ENOUGH_REPLICAS"), "the last error is the cause: {e}");
}

#[tokio::test]
async fn a_lost_acknowledgement_is_retried_and_duplicates_without_idempotence() {
    let c = cluster(1).await;
    c.create_topic("t", 1).unwrap();
    let p = producer(&c).idempotence(false).build().unwrap();
    p.send_and_wait(Record::new("t").value("warm")).await.unwrap();
    // The broker appends, then the connection drops before the answer.
    c.fail_next(MockApi::Produce, 1, Fault::DisconnectAfterHandling);
    let md = p.send_and_wait(Record::new("t").value("twice")).await.unwrap();
    let values: Vec<_> = c.records("t", 0).unwrap().into_iter().map(|r| r.value.unwrap()).collect();
    assert_eq!(values.iter().filter(|v| &v[..] == b"twice").count(), 2, "at-least-once: {values:?}");
    assert_eq!(md.offset(), Some(2), "the acknowledged copy is the retry");
}

#[tokio::test]
async fn with_idempotence_a_lost_acknowledgement_is_written_once() {
    let c = cluster(1).await;
    c.create_topic("t", 1).unwrap();
    let p = producer(&c).build().unwrap();
    assert!(p.config().enable_idempotence, "on by default");
    p.send_and_wait(Record::new("t").value("warm")).await.unwrap();
    c.fail_next(MockApi::Produce, 2, Fault::DisconnectAfterHandling);
    let md = p.send_and_wait(Record::new("t").value("once")).await.unwrap();
    let values: Vec<_> = c.records("t", 0).unwrap().into_iter().map(|r| r.value.unwrap()).collect();
    assert_eq!(values.iter().filter(|v| &v[..] == b"once").count(), 1, "exactly once: {values:?}");
    assert_eq!(md.offset(), Some(1), "the retry is answered with the original offset");
    let batches = c.batches("t", 0).unwrap();
    assert!(batches.iter().all(|b| b.producer_id >= 0), "batches carry the producer id: {batches:?}");
    assert_eq!(batches[1].base_sequence, 1);
}

/// A broker with no state for a producer accepts any first sequence. If the first
/// batch is refused while later ones are in flight, a later one would be written
/// first and the first could never follow: herald sends one batch at a time until
/// the partition's first acknowledgement (found against Kafka 4.3, right after
/// topic creation).
#[tokio::test]
async fn a_refused_first_batch_is_not_overtaken() {
    let c = cluster(1).await;
    c.create_topic("t", 1).unwrap();
    let p = producer(&c).batch_size(200).linger(Duration::ZERO).build().unwrap();
    c.fail_next(MockApi::Produce, 1, Fault::Error(ErrorCode::NOT_LEADER_OR_FOLLOWER));
    let mut futures = Vec::new();
    for i in 0..200u32 {
        futures.push(p.send(Record::new("t").value(format!("{i:05}").repeat(10))).await.unwrap());
    }
    let mut offsets = Vec::new();
    for f in futures {
        offsets.push(f.await.unwrap().offset().unwrap());
    }
    assert_eq!(offsets, (0..200).collect::<Vec<i64>>(), "written once each, in send order");
    let values: Vec<String> = c
        .records("t", 0)
        .unwrap()
        .into_iter()
        .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
        .collect();
    let sent: Vec<String> = (0..200u32).map(|i| format!("{i:05}").repeat(10)).collect();
    assert_eq!(values, sent);
}

#[tokio::test]
async fn a_moved_leader_is_found_again() {
    let c = cluster(3).await;
    c.create_topic("t", 1).unwrap();
    let p = producer(&c).build().unwrap();
    p.send_and_wait(Record::new("t").value("a")).await.unwrap();
    let old = c.leader("t", 0).unwrap();
    let new = c.broker_ids().into_iter().find(|b| *b != old).unwrap();
    c.move_leader("t", 0, new).unwrap();
    let md = p.send_and_wait(Record::new("t").value("b")).await.unwrap();
    assert_eq!(md.offset(), Some(1));
    assert_eq!(c.records("t", 0).unwrap().len(), 2);
}

#[tokio::test]
async fn a_stopped_broker_fails_over_and_comes_back() {
    let c = cluster(3).await;
    c.create_topic("t", 3).unwrap();
    let p = producer(&c).build().unwrap();
    for i in 0..30 {
        p.send_and_wait(Record::new("t").key(format!("k{i}")).value("before")).await.unwrap();
    }
    let victim = c.leader("t", 0).unwrap();
    c.stop_broker(victim);
    assert_ne!(c.leader("t", 0), Some(victim));
    // A client connecting now cannot reach the stopped broker.
    let port: u16 = c
        .bootstrap()
        .split(',')
        .nth((victim - 1) as usize)
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err());
    for i in 0..30 {
        p.send_and_wait(Record::new("t").key(format!("k{i}")).value("after")).await.unwrap();
    }
    c.start_broker(victim).unwrap();
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok());
    let total: usize = (0..3).map(|part| c.records("t", part).unwrap().len()).sum();
    assert_eq!(total, 60);
}

#[tokio::test]
async fn metadata_errors_are_retried() {
    let c = cluster(1).await;
    c.create_topic("t", 1).unwrap();
    c.fail_next(MockApi::Metadata, 2, Fault::Error(ErrorCode::LEADER_NOT_AVAILABLE));
    let p = producer(&c).build().unwrap();
    p.send_and_wait(Record::new("t").value("v")).await.unwrap();
}

#[tokio::test]
async fn acknowledging_without_storing_counts_offsets() {
    let c = cluster(1).await;
    c.create_topic("t", 1).unwrap();
    c.set_store_records(false);
    let p = producer(&c).build().unwrap();
    let mut last = None;
    for _ in 0..100 {
        last = p.send_and_wait(Record::new("t").value("x")).await.unwrap().offset();
    }
    assert_eq!(last, Some(99));
    assert_eq!(c.end_offset("t", 0), Some(100));
    assert!(c.records("t", 0).unwrap().is_empty());
}

#[tokio::test]
async fn auto_creation_when_enabled() {
    let c = MockCluster::builder().default_partitions(4).auto_create_topics(true).start().await.unwrap();
    let p = producer(&c).build().unwrap();
    let md = p.send_and_wait(Record::new("created-on-demand").value("v")).await.unwrap();
    assert!((0..4).contains(&md.partition()));
    assert_eq!(
        herald::Admin::new(&c.bootstrap())
            .unwrap()
            .describe_topic("created-on-demand")
            .await
            .unwrap()
            .partitions
            .len(),
        4
    );
}

/// Sends raw bytes as one frame and returns what comes back (None: closed).
async fn raw_exchange(addr: &str, frame: &[u8]) -> Option<Vec<u8>> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(frame).await.ok()?;
    let mut len = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut len)).await.ok()?.ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).await.ok()?;
    Some(body)
}

#[tokio::test]
async fn malformed_requests_close_the_connection_and_nothing_else() {
    let c = cluster(1).await;
    c.create_topic("t", 1).unwrap();
    let addr = c.bootstrap();
    let garbage: Vec<Vec<u8>> = vec![
        vec![0, 0, 0, 2, 0, 0],       // shorter than a header
        vec![0x7f, 0xff, 0xff, 0xff], // 2 GiB frame
        vec![0xff, 0xff, 0xff, 0xff], // negative size
        [&10i32.to_be_bytes()[..], &[0x7f, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]].concat(), // unknown API key
        [&10i32.to_be_bytes()[..], &[0, 0, 0, 99, 0, 0, 0, 1, 0, 0]].concat(), // Produce v99
        [&12i32.to_be_bytes()[..], &[0, 3, 0, 9, 0, 0, 0, 1, 0, 0, 0xff, 0xff]].concat(), // Metadata v9, truncated
    ];
    for g in &garbage {
        assert_eq!(raw_exchange(&addr, g).await, None, "frame {g:02x?} must close the connection");
    }
    // ApiVersions at a version we do not know: answered in v0 with UNSUPPORTED_VERSION.
    let resp = raw_exchange(&addr, &[&10i32.to_be_bytes()[..], &[0, 18, 0, 99, 0, 0, 0, 7, 0, 0]].concat())
        .await
        .unwrap();
    assert_eq!(&resp[0..4], &7i32.to_be_bytes(), "correlation id");
    assert_eq!(&resp[4..6], &35i16.to_be_bytes(), "UNSUPPORTED_VERSION");
    // The cluster still serves.
    let p = producer(&c).build().unwrap();
    p.send_and_wait(Record::new("t").value("still fine")).await.unwrap();
}

#[tokio::test]
async fn the_java_producer_writes_into_the_embedded_cluster() {
    let c = cluster(3).await;
    c.create_topic("java", 3).unwrap();
    let out = support::java(
        "dev.herald.tools.JavaProduce",
        &["--bootstrap", &c.bootstrap(), "--topic", "java", "--count", "50"],
        None,
    )
    .await;
    assert_eq!(out.lines().count(), 50, "{out}");
    let total: usize = (0..3).map(|p| c.records("java", p).unwrap().len()).sum();
    assert_eq!(total, 50);
    // Java's keyed records sit where herald would put them.
    for p in 0..3 {
        for r in c.records("java", p).unwrap() {
            assert_eq!(herald::partitioner::partition_for_key(r.key.as_deref().unwrap(), 3), p);
        }
    }
}

/// A broker that answers with damaged responses: every record is retried or fails
/// with a clear error, within bounded time, and is written once.
#[tokio::test]
async fn damaged_responses_are_survived() {
    use herald::mock::Corruption;
    let c = cluster(1).await;
    c.create_topic("t", 1).unwrap();
    let p = producer(&c)
        .request_timeout(Duration::from_secs(1))
        .delivery_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    p.send_and_wait(Record::new("t").value("warm")).await.unwrap();
    for (i, damage) in [
        Corruption::Garbage,
        Corruption::Truncated,
        Corruption::WrongCorrelationId,
        Corruption::ExtraPartition,
    ]
    .into_iter()
    .enumerate()
    {
        c.fail_next(MockApi::Produce, 1, Fault::Corrupt(damage));
        let started = std::time::Instant::now();
        let value = format!("after {damage:?}");
        let md = tokio::time::timeout(
            Duration::from_secs(15),
            p.send_and_wait(Record::new("t").value(value.clone())),
        )
        .await
        .unwrap_or_else(|_| panic!("{damage:?}: no outcome within 15 s"))
        .unwrap_or_else(|e| panic!("{damage:?}: {e}"));
        assert_eq!(md.offset(), Some(i as i64 + 1), "{damage:?}: written once, at its first offset");
        assert!(started.elapsed() < Duration::from_secs(10), "{damage:?} took {:?}", started.elapsed());
    }
    assert_eq!(c.records("t", 0).unwrap().len(), 5, "no duplicates");
    // Metadata answers can be damaged too.
    c.fail_next(MockApi::Metadata, 1, Fault::Corrupt(Corruption::Garbage));
    let q = producer(&c).build().unwrap();
    q.send_and_wait(Record::new("t").value("fresh producer")).await.unwrap();
}

#[tokio::test]
async fn an_unknown_error_code_fails_the_record_and_says_so() {
    let c = cluster(1).await;
    c.create_topic("t", 1).unwrap();
    let p = producer(&c).build().unwrap();
    c.fail_next(MockApi::Produce, 1, Fault::Error(ErrorCode::new(9999)));
    let e = p.send_and_wait(Record::new("t").value("v")).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::new(9999)));
    assert!(e.to_string().contains("9999"), "{e}");
    assert!(!e.may_have_been_written(), "the broker refused it: {e}");
    assert_eq!((e.topic(), e.partition()), (Some("t"), Some(0)));
    p.send_and_wait(Record::new("t").value("next")).await.unwrap();
}

#[tokio::test]
async fn buffer_memory_bounds_what_is_held() {
    let c = cluster(1).await;
    c.create_topic("t", 1).unwrap();
    // A broker that does not answer for a while: records pile up in the buffer.
    let p = producer(&c)
        .buffer_memory(64 * 1024)
        .max_block(Duration::from_millis(300))
        .request_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    p.send_and_wait(Record::new("t").value("warm")).await.unwrap();
    c.set_latency(Duration::from_secs(2));
    let mut held = Vec::new();
    let full = loop {
        match p.try_send(Record::new("t").value(vec![1u8; 1000])) {
            Ok(f) => held.push(f),
            Err(e) => break e,
        }
        assert!(held.len() < 100, "64 KiB holds fewer than 100 records of 1 KB");
    };
    assert!(matches!(full.kind(), herald::ErrorKind::BufferFull { .. }), "{full}");
    assert!(held.len() > 30, "{} records fit", held.len());
    // send waits for room, up to max.block.ms.
    let e = p.send(Record::new("t").value(vec![1u8; 1000])).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Timeout { waiting_for: TimeoutKind::BufferMemory, .. }), "{e}");
    // A record larger than the whole buffer is refused at once.
    let e = p.send(Record::new("t").value(vec![1u8; 100_000])).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::RecordTooLarge { limit: "buffer.memory", .. }), "{e}");
    // Once the broker answers, the held records resolve and the room comes back.
    c.set_latency(Duration::ZERO);
    for f in held {
        f.await.unwrap();
    }
    p.try_send(Record::new("t").value(vec![1u8; 1000])).unwrap().await.unwrap();
}

#[tokio::test]
async fn metadata_is_refreshed_every_max_age_and_new_partitions_are_used() {
    let c = cluster(2).await;
    c.create_topic("grows", 2).unwrap();
    let p = producer(&c).metadata_max_age(Duration::from_millis(300)).build().unwrap();
    let first: Vec<i32> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(p.send_and_wait(Record::new("grows").value("x")).await.unwrap().partition());
        }
        v
    };
    assert_eq!(first, [0, 1, 0, 1]);
    c.add_partitions("grows", 4).unwrap();
    // No error tells the producer; only the periodic refresh can.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..8 {
        seen.insert(p.send_and_wait(Record::new("grows").value("y")).await.unwrap().partition());
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [0, 1, 2, 3],
        "round-robin now spans the new partitions"
    );
}
