//! herald against a real Kafka broker, read back by the Java `KafkaConsumer`.
//!
//! Every test creates its own topic. The cluster comes from `HERALD_TEST_BOOTSTRAP`
//! (see `scripts/test.sh`). Each record herald reports as written must be read back
//! byte for byte — key, value, headers, timestamp, partition, offset — and the count
//! read must equal the count acknowledged.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use herald::{
    Acks, Error, ErrorCode, ErrorKind, Header, NullKeyPartitioning, Producer, Record, RecordMetadata,
    TimeoutKind, TimestampType,
};
use support::{Consumed, consume_with_java, create_topic, producer_builder};

/// A record as sent, to compare with what the Java consumer reads.
#[derive(Clone, Debug)]
struct Sent {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<Header>,
    timestamp: Option<i64>,
}

impl Sent {
    fn record(&self, topic: &str) -> Record {
        let mut r = Record::new(topic)
            .key_opt(self.key.clone())
            .value_opt(self.value.clone())
            .headers(self.headers.clone());
        if let Some(ts) = self.timestamp {
            r = r.timestamp(ts);
        }
        r
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn send_all(p: &Producer, topic: &str, sent: &[Sent]) -> Vec<RecordMetadata> {
    let mut futures = Vec::new();
    for s in sent {
        futures.push(p.send(s.record(topic)).await.expect("send accepted"));
    }
    let mut out = Vec::new();
    for f in futures {
        out.push(f.await.expect("record delivered"));
    }
    out
}

/// Checks that `consumed` holds exactly the `sent` records at the places `acks`
/// say, byte for byte.
fn assert_read_back(sent: &[Sent], acks: &[RecordMetadata], consumed: &[Consumed]) {
    assert_eq!(consumed.len(), acks.len(), "records read != records acknowledged");
    for (s, md) in sent.iter().zip(acks) {
        let c = consumed
            .iter()
            .find(|c| c.partition == md.partition() && Some(c.offset) == md.offset())
            .unwrap_or_else(|| panic!("no record at partition {} offset {:?}", md.partition(), md.offset()));
        assert_eq!(c.key, s.key, "key at {}/{:?}", md.partition(), md.offset());
        assert_eq!(c.value, s.value, "value at {}/{:?}", md.partition(), md.offset());
        let headers: Vec<(String, Option<Vec<u8>>)> =
            c.headers.iter().map(|h| (h.key.clone(), h.value.clone())).collect();
        let want: Vec<(String, Option<Vec<u8>>)> =
            s.headers.iter().map(|h| (h.key.clone(), h.value.as_ref().map(|v| v.to_vec()))).collect();
        assert_eq!(headers, want, "headers at {}/{:?}", md.partition(), md.offset());
        assert_eq!(c.timestamp, md.timestamp(), "timestamp at {}/{:?}", md.partition(), md.offset());
        if let Some(ts) = s.timestamp {
            if md.timestamp_type() == TimestampType::CreateTime {
                assert_eq!(c.timestamp, ts);
            }
        }
        let want_type = match md.timestamp_type() {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        };
        assert_eq!(c.timestamp_type, want_type);
    }
}

fn keyed(i: usize) -> Sent {
    Sent {
        key: Some(format!("truck_id_{}", i % 7).into_bytes()),
        value: Some(format!("{{\"seq\":{i},\"lat\":52.5,\"lon\":13.4}}").into_bytes()),
        headers: vec![],
        timestamp: None,
    }
}

#[tokio::test]
async fn keyed_records_land_where_java_puts_them_and_read_back_exactly() {
    let topic = create_topic("keyed", 4, &[]).await;
    let p = producer_builder().build().unwrap();
    let sent: Vec<Sent> = (0..200).map(keyed).collect();
    let acks = send_all(&p, &topic, &sent).await;
    for (s, md) in sent.iter().zip(&acks) {
        let want = herald::partitioner::partition_for_key(s.key.as_deref().unwrap(), 4);
        assert_eq!(md.partition(), want, "key {:?}", s.key);
        assert_eq!(md.topic(), topic);
    }
    p.close(Duration::from_secs(30)).await.unwrap();
    assert_read_back(&sent, &acks, &consume_with_java(&topic).await);
}

#[tokio::test]
async fn null_keys_go_round_robin_in_order() {
    let topic = create_topic("roundrobin", 3, &[]).await;
    let p = producer_builder().build().unwrap();
    let sent: Vec<Sent> = (0..9)
        .map(|i| Sent { key: None, value: Some(vec![i as u8]), headers: vec![], timestamp: None })
        .collect();
    let acks = send_all(&p, &topic, &sent).await;
    let partitions: Vec<i32> = acks.iter().map(|m| m.partition()).collect();
    assert_eq!(partitions, vec![0, 1, 2, 0, 1, 2, 0, 1, 2]);
    p.close(Duration::from_secs(30)).await.unwrap();
    assert_read_back(&sent, &acks, &consume_with_java(&topic).await);
}

#[tokio::test]
async fn sticky_null_keys_fill_one_partition_per_batch() {
    let topic = create_topic("sticky", 3, &[]).await;
    // batch.size 1000: about ten 100-byte records per partition before it switches.
    let p = producer_builder()
        .null_key_partitioning(NullKeyPartitioning::UniformSticky)
        .batch_size(1000)
        .build()
        .unwrap();
    let sent: Vec<Sent> = (0..60)
        .map(|_| Sent { key: None, value: Some(vec![7u8; 100]), headers: vec![], timestamp: None })
        .collect();
    let acks = send_all(&p, &topic, &sent).await;
    let switches = acks.windows(2).filter(|w| w[0].partition() != w[1].partition()).count();
    assert!((3..=12).contains(&switches), "{switches} partition switches for 60 records");
    // It moves on only once the partition's batch is full: 8 records of about
    // 108 bytes on the wire fill 1000 bytes with the batch header (61), a 9th
    // would not fit. (Counting the batch header for every record moved on after 6,
    // leaving a partial batch to wait for linger.ms.)
    let mut runs = vec![1usize];
    for w in acks.windows(2) {
        if w[0].partition() == w[1].partition() {
            *runs.last_mut().unwrap() += 1;
        } else {
            runs.push(1);
        }
    }
    runs.pop();
    assert!(runs.iter().all(|&n| n >= 8), "records per partition before each switch: {runs:?}");
    p.close(Duration::from_secs(30)).await.unwrap();
    assert_read_back(&sent, &acks, &consume_with_java(&topic).await);
}

#[tokio::test]
async fn explicit_partition_wins_over_key() {
    let topic = create_topic("explicit", 3, &[]).await;
    let p = producer_builder().build().unwrap();
    for key in ["a", "b", "c", "d"] {
        let md = p.send_and_wait(Record::new(&topic).key(key).value("v").partition(2)).await.unwrap();
        assert_eq!(md.partition(), 2);
    }
    let e = p.send(Record::new(&topic).value("v").partition(3)).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidRecord { .. }), "{e}");
    assert_eq!(e.topic(), Some(topic.as_str()));
    assert_eq!(e.partition(), Some(3));
    p.close(Duration::from_secs(30)).await.unwrap();
    let consumed = consume_with_java(&topic).await;
    assert_eq!(consumed.len(), 4);
    assert!(consumed.iter().all(|c| c.partition == 2));
}

#[tokio::test]
async fn headers_nulls_empties_and_timestamps_read_back_exactly() {
    // Timestamps from 1970 and 2020: without retention.ms=-1 the broker's retention
    // check (first run 30 s after it starts) may delete them before they are read.
    let topic = create_topic("anatomy", 2, &[("retention.ms", "-1")]).await;
    let p = producer_builder().build().unwrap();
    let ts = 1_600_000_000_123;
    let sent = vec![
        // repeated header keys, a null header value, an empty one, non-ASCII
        Sent {
            key: Some(b"k1".to_vec()),
            value: Some(b"v1".to_vec()),
            headers: vec![
                Header::new("trace", "a"),
                Header { key: "trace".into(), value: None },
                Header::new("trace", ""),
                Header::new("\u{e9}t\u{e9}", "\u{4e2d}"),
            ],
            timestamp: Some(ts),
        },
        // null key, null value
        Sent { key: None, value: None, headers: vec![], timestamp: None },
        // empty key and empty value: not null
        Sent { key: Some(vec![]), value: Some(vec![]), headers: vec![], timestamp: Some(ts + 1) },
        // binary bytes, a timestamp far in the past relative to the batch
        Sent {
            key: Some(vec![0, 255, 10, 13]),
            value: Some((0..=255).collect()),
            headers: vec![],
            timestamp: Some(1),
        },
    ];
    let acks = send_all(&p, &topic, &sent).await;
    assert_eq!(acks[0].timestamp(), ts);
    assert_eq!(acks[0].timestamp_type(), TimestampType::CreateTime);
    p.close(Duration::from_secs(30)).await.unwrap();
    let consumed = consume_with_java(&topic).await;
    assert_read_back(&sent, &acks, &consumed);
    // The empty key is not a null key, on the wire.
    let empty = consumed.iter().find(|c| c.timestamp == ts + 1).unwrap();
    assert_eq!(empty.key, Some(vec![]));
    assert_eq!(empty.value, Some(vec![]));
}

#[tokio::test]
async fn log_append_time_topic_returns_the_brokers_time() {
    let topic = create_topic("logappend", 1, &[("message.timestamp.type", "LogAppendTime")]).await;
    let p = producer_builder().build().unwrap();
    let before = now_ms();
    let sent = vec![Sent { key: None, value: Some(b"x".to_vec()), headers: vec![], timestamp: Some(1_000) }];
    let acks = send_all(&p, &topic, &sent).await;
    let after = now_ms();
    assert_eq!(acks[0].timestamp_type(), TimestampType::LogAppendTime);
    assert!(
        (before - 5_000..=after + 5_000).contains(&acks[0].timestamp()),
        "broker time {}",
        acks[0].timestamp()
    );
    p.close(Duration::from_secs(30)).await.unwrap();
    let consumed = consume_with_java(&topic).await;
    assert_eq!(consumed[0].timestamp_type, "LogAppendTime");
    assert_read_back(&sent, &acks, &consumed);
}

async fn acks_level(acks: Acks) {
    let topic = create_topic("acks", 2, &[]).await;
    let p = producer_builder().acks(acks).build().unwrap();
    let sent: Vec<Sent> = (0..50).map(keyed).collect();
    let mds = send_all(&p, &topic, &sent).await;
    p.close(Duration::from_secs(30)).await.unwrap();
    let consumed = consume_with_java(&topic).await;
    if acks == Acks::None {
        assert!(mds.iter().all(|m| m.offset().is_none()), "acks=0 has no offsets");
        // Written to the socket is all acks=0 promises; on a healthy local broker
        // every record arrives, in order per partition.
        assert_eq!(consumed.len(), sent.len());
        for part in 0..2 {
            let want: Vec<&Option<Vec<u8>>> =
                sent.iter().zip(&mds).filter(|(_, m)| m.partition() == part).map(|(s, _)| &s.value).collect();
            let got: Vec<&Option<Vec<u8>>> =
                consumed.iter().filter(|c| c.partition == part).map(|c| &c.value).collect();
            assert_eq!(got, want);
        }
    } else {
        assert_read_back(&sent, &mds, &consumed);
    }
}

#[tokio::test]
async fn acks_all() {
    acks_level(Acks::All).await;
}

#[tokio::test]
async fn acks_leader() {
    acks_level(Acks::Leader).await;
}

#[tokio::test]
async fn acks_none() {
    acks_level(Acks::None).await;
}

#[tokio::test]
async fn flush_delivers_records_waiting_for_linger() {
    let topic = create_topic("flush", 3, &[]).await;
    // A linger far longer than the test: only flush can send these.
    let p = producer_builder()
        .linger(Duration::from_secs(300))
        .delivery_timeout(Duration::from_secs(400))
        .build()
        .unwrap();
    let mut futures = Vec::new();
    for i in 0..30 {
        futures.push(p.send(keyed(i).record(&topic)).await.unwrap());
    }
    tokio::time::timeout(Duration::from_secs(20), p.flush()).await.expect("flush within 20 s").unwrap();
    for f in futures {
        // Already resolved: flush waited for them.
        let md =
            tokio::time::timeout(Duration::from_millis(100), f).await.expect("resolved by flush").unwrap();
        assert!(md.offset().is_some());
    }
    p.close(Duration::from_secs(5)).await.unwrap();
    assert_eq!(consume_with_java(&topic).await.len(), 30);
}

#[tokio::test]
async fn close_delivers_pending_records_and_refuses_new_ones() {
    let topic = create_topic("close", 3, &[]).await;
    let p = producer_builder()
        .linger(Duration::from_secs(300))
        .delivery_timeout(Duration::from_secs(400))
        .build()
        .unwrap();
    let mut futures = Vec::new();
    for i in 0..40 {
        futures.push(p.send(keyed(i).record(&topic)).await.unwrap());
    }
    tokio::time::timeout(Duration::from_secs(20), p.close(Duration::from_secs(15)))
        .await
        .expect("close within 20 s")
        .unwrap();
    for f in futures {
        tokio::time::timeout(Duration::from_millis(100), f).await.expect("resolved by close").unwrap();
    }
    let e = p.send(Record::new(&topic).value("late")).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Closed);
    assert_eq!(consume_with_java(&topic).await.len(), 40);
}

#[tokio::test]
async fn dropping_the_producer_still_delivers() {
    let topic = create_topic("drop", 1, &[]).await;
    let p = producer_builder().linger(Duration::from_millis(200)).build().unwrap();
    let f = p.send(Record::new(&topic).value("dropped")).await.unwrap();
    drop(p);
    let md = tokio::time::timeout(Duration::from_secs(20), f).await.expect("resolves").unwrap();
    assert_eq!(md.offset(), Some(0));
}

#[tokio::test]
async fn unknown_topic_fails_fast_with_a_clear_error() {
    let p = producer_builder().build().unwrap();
    let topic = support::topic_name("does-not-exist");
    let started = std::time::Instant::now();
    let e = p.send(Record::new(&topic).value("v")).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::UnknownTopic, "{e}");
    assert_eq!(e.topic(), Some(topic.as_str()));
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(e.to_string().contains(&topic));
    // A second send fails at once (the verdict is remembered briefly).
    let again = std::time::Instant::now();
    assert_eq!(p.send(Record::new(&topic).value("v")).await.unwrap_err().kind(), &ErrorKind::UnknownTopic);
    assert!(again.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn record_larger_than_max_request_size_is_refused() {
    let topic = create_topic("toolarge", 1, &[]).await;
    let p = producer_builder().max_request_size(10_000).build().unwrap();
    let e = p.send(Record::new(&topic).value(vec![0u8; 20_000])).await.unwrap_err();
    match e.kind() {
        ErrorKind::RecordTooLarge { size, max, limit } => {
            assert!(*size > 20_000);
            assert_eq!(*max, 10_000);
            assert_eq!(*limit, "max.request.size");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(e.topic(), Some(topic.as_str()));
    // The producer still works for records that fit.
    p.send_and_wait(Record::new(&topic).value("fits")).await.unwrap();
    p.close(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn record_larger_than_the_topic_accepts_fails_with_the_brokers_error() {
    let topic = create_topic("brokerlimit", 1, &[("max.message.bytes", "2000")]).await;
    let p = producer_builder().build().unwrap();
    let e = p.send_and_wait(Record::new(&topic).value(vec![1u8; 5_000])).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::MESSAGE_TOO_LARGE), "{e}");
    assert_eq!(e.topic(), Some(topic.as_str()));
    assert_eq!(e.partition(), Some(0));
    // Nothing else is affected.
    p.send_and_wait(Record::new(&topic).value("small")).await.unwrap();
    p.close(Duration::from_secs(10)).await.unwrap();
    assert_eq!(consume_with_java(&topic).await.len(), 1);
}

#[tokio::test]
async fn unreachable_bootstrap_fails_within_max_block() {
    // A port with nothing listening: bind, note it, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let p = Producer::builder()
        .bootstrap_servers(format!("127.0.0.1:{port}"))
        .max_block(Duration::from_secs(2))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let e = p.send(Record::new("t").value("v")).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(e.kind(), ErrorKind::Timeout { waiting_for: TimeoutKind::Metadata, .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
}

#[tokio::test]
async fn invalid_settings_fail_at_build() {
    let cases: &[(&str, &str)] = &[
        ("acks", "2"),
        ("linger.ms", "-5"),
        ("no.such.setting", "1"),
        ("bootstrap.servers", "nohostport"),
        ("delivery.timeout.ms", "10"),
    ];
    for (k, v) in cases {
        let e: Error = Producer::builder().bootstrap_servers("127.0.0.1:9092").set(k, v).build().unwrap_err();
        assert!(e.is_config(), "{k}={v}: {e}");
        assert!(e.to_string().contains(k), "{k}={v}: {e}");
    }
}

#[tokio::test]
async fn broker_closing_the_connection_mid_request() {
    use kafka_protocol::messages::ApiKey;
    let topic = create_topic("midrequest", 1, &[]).await;
    let proxy = support::proxy::KafkaProxy::start(&support::bootstrap()).await;

    // Without retries the record fails with a connection error naming the broker.
    proxy.close_on_next(ApiKey::Produce as i16, 1);
    let p = Producer::builder()
        .bootstrap_servers(proxy.bootstrap())
        .retries(0)
        .max_block(Duration::from_secs(20))
        .build()
        .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(30), p.send_and_wait(Record::new(&topic).value("a")))
        .await
        .expect("bounded")
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Connection { .. }), "{e}");
    assert_eq!((e.topic(), e.partition()), (Some(topic.as_str()), Some(0)));
    p.close(Duration::from_secs(5)).await.unwrap();

    // With retries (the default) it is sent again on a new connection, once.
    proxy.close_on_next(ApiKey::Produce as i16, 2);
    let p = Producer::builder()
        .bootstrap_servers(proxy.bootstrap())
        .max_block(Duration::from_secs(20))
        .build()
        .unwrap();
    let md = tokio::time::timeout(Duration::from_secs(30), p.send_and_wait(Record::new(&topic).value("b")))
        .await
        .expect("bounded")
        .unwrap();
    assert_eq!(md.offset(), Some(0), "only the delivered record is in the log");
    p.close(Duration::from_secs(5)).await.unwrap();
    let consumed = consume_with_java(&topic).await;
    assert_eq!(consumed.len(), 1);
    assert_eq!(consumed[0].value.as_deref(), Some(&b"b"[..]));
}

#[tokio::test]
async fn every_send_resolves_exactly_once_under_concurrency() {
    let topic = create_topic("concurrent", 6, &[]).await;
    let p = producer_builder().linger(Duration::from_millis(2)).build().unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let p = p.clone();
        let topic = topic.clone();
        tasks.push(tokio::spawn(async move {
            let mut futures = Vec::new();
            for i in 0..500 {
                let r =
                    Record::new(&topic).key(format!("k{}", i % 13)).value(Bytes::from(format!("{t}-{i}")));
                futures.push(p.send(r).await.unwrap());
            }
            let mut n = 0;
            for f in futures {
                f.await.unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 4000);
    p.close(Duration::from_secs(30)).await.unwrap();
    let consumed = consume_with_java(&topic).await;
    assert_eq!(consumed.len(), 4000);
    let mut values: Vec<Vec<u8>> = consumed.into_iter().map(|c| c.value.unwrap()).collect();
    values.sort();
    values.dedup();
    assert_eq!(values.len(), 4000, "no duplicates");
}

// Validation both backends must agree on: a difference means the embedded
// cluster (or herald's reading of Kafka) is wrong.

#[tokio::test]
async fn compacted_topic_refuses_a_null_key() {
    let topic = create_topic("compacted", 1, &[("cleanup.policy", "compact")]).await;
    let p = producer_builder().build().unwrap();
    let e = p.send_and_wait(Record::new(&topic).value("no key")).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::INVALID_RECORD), "{e}");
    assert_eq!((e.topic(), e.partition()), (Some(topic.as_str()), Some(0)));
    p.send_and_wait(Record::new(&topic).key("k").value("keyed")).await.unwrap();
    p.close(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn timestamps_beyond_the_topics_bound_are_refused() {
    let topic = create_topic("tsbound", 1, &[("message.timestamp.after.max.ms", "60000")]).await;
    let p = producer_builder().build().unwrap();
    let e = p
        .send_and_wait(Record::new(&topic).value("future").timestamp(now_ms() + 3_600_000))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::INVALID_TIMESTAMP), "{e}");
    p.send_and_wait(Record::new(&topic).value("now")).await.unwrap();
    p.close(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn topic_creation_errors_match_kafka() {
    let admin = support::admin();
    let brokers = admin.brokers().await.unwrap().len() as i16;
    let code = |r: Result<(), Error>| r.unwrap_err().code();
    let name = support::topic_name("create");
    assert_eq!(
        code(admin.create_topic(herald::NewTopic::new(name.clone(), 1, brokers + 1)).await),
        Some(ErrorCode::INVALID_REPLICATION_FACTOR)
    );
    assert_eq!(
        code(
            admin.create_topic(herald::NewTopic::new(name.clone(), 1, 1).config("no.such.config", "1")).await
        ),
        Some(ErrorCode::INVALID_CONFIG)
    );
    assert_eq!(
        code(admin.create_topic(herald::NewTopic::new("bad name!", 1, 1)).await),
        Some(ErrorCode::INVALID_TOPIC_EXCEPTION)
    );
    admin.create_topic(herald::NewTopic::new(name.clone(), 2, 1)).await.unwrap();
    assert_eq!(
        code(admin.create_topic(herald::NewTopic::new(name.clone(), 2, 1)).await),
        Some(ErrorCode::TOPIC_ALREADY_EXISTS)
    );
    admin.delete_topic(&name).await.unwrap();
}

#[tokio::test]
async fn herald_reader_reads_what_java_reads() {
    let topic = create_topic("reader", 2, &[]).await;
    let p = producer_builder().build().unwrap();
    let sent: Vec<Sent> = (0..40)
        .map(|i| Sent {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(vec![i as u8; i]),
            headers: vec![Header::new("h", "1"), Header::new("h", "2")],
            timestamp: None,
        })
        .collect();
    send_all(&p, &topic, &sent).await;
    p.close(Duration::from_secs(10)).await.unwrap();
    let java = consume_with_java(&topic).await;
    let ours = herald::TopicReader::new(&support::bootstrap()).unwrap().read_to_end(&topic).await.unwrap();
    assert_eq!(ours.len(), java.len());
    for (o, j) in ours.iter().zip(&java) {
        assert_eq!((o.partition, o.offset, o.timestamp), (j.partition, j.offset, j.timestamp));
        assert_eq!(o.key.as_deref(), j.key.as_deref());
        assert_eq!(o.value.as_deref(), j.value.as_deref());
        let oh: Vec<(&str, Option<&[u8]>)> =
            o.headers.iter().map(|h| (h.key.as_str(), h.value.as_deref())).collect();
        let jh: Vec<(&str, Option<&[u8]>)> =
            j.headers.iter().map(|h| (h.key.as_str(), h.value.as_deref())).collect();
        assert_eq!(oh, jh);
    }
}

#[tokio::test]
async fn partitions_for_describes_the_topic_as_the_cluster_does() {
    let topic = create_topic("partitions-for", 3, &[]).await;
    let p = producer_builder().build().unwrap();
    let mine = p.partitions_for(&topic).await.unwrap();
    let cluster = support::admin().describe_topic(&topic).await.unwrap();
    assert_eq!(mine.len(), 3);
    for (i, (m, c)) in mine.iter().zip(&cluster.partitions).enumerate() {
        assert_eq!(m.partition, i as i32);
        assert!(m.leader.is_some(), "partition {i} has a leader");
        assert_eq!((m.leader, &m.replicas), (c.leader, &c.replicas), "partition {i}");
        assert!(m.isr.contains(&m.leader.unwrap()), "partition {i}: the leader is in sync");
    }
    let missing = support::topic_name("partitions-for-missing");
    let e = p.partitions_for(&missing).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::UnknownTopic, "{e}");
    p.close(Duration::from_secs(30)).await.unwrap();
    let e = p.partitions_for(&topic).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Closed, "{e}");
}

#[tokio::test]
async fn purge_fails_unsent_records_as_not_written_and_later_ones_arrive_in_order() {
    let topic = create_topic("purge", 2, &[]).await;
    // A linger far longer than the test: nothing is sent until flush.
    let p = producer_builder()
        .linger(Duration::from_secs(300))
        .delivery_timeout(Duration::from_secs(400))
        .build()
        .unwrap();
    let mut queued = Vec::new();
    for i in 0..50u32 {
        queued.push(p.send(Record::new(&topic).key(format!("k{i}")).value("purged")).await.unwrap());
    }
    assert_eq!(p.purge().await.unwrap(), 50);
    for f in queued {
        let e = tokio::time::timeout(Duration::from_secs(10), f).await.expect("resolves").unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::Purged, "{e}");
        assert!(!e.may_have_been_written(), "{e}");
        assert_eq!(e.topic(), Some(topic.as_str()));
        assert!(e.partition().is_some(), "{e}");
    }
    assert_eq!(p.purge().await.unwrap(), 0, "nothing left to purge");
    // The producer stays usable, and (idempotent by default) its sequences did
    // not move for the purged batches: what follows is written exactly once.
    let sent: Vec<Sent> = (0..20).map(keyed).collect();
    let mut futures = Vec::new();
    for s in &sent {
        futures.push(p.send(s.record(&topic)).await.unwrap());
    }
    p.flush().await.unwrap();
    let mut acks = Vec::new();
    for f in futures {
        acks.push(f.await.expect("written after the purge"));
    }
    p.close(Duration::from_secs(30)).await.unwrap();
    assert_read_back(&sent, &acks, &consume_with_java(&topic).await);
}
