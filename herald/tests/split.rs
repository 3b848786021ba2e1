//! Batches the broker refuses as too large are split and sent again (KIP-126),
//! against the cluster under test (embedded, or a real broker with
//! `HERALD_TEST_BOOTSTRAP`; see `scripts/test.sh`), read back by the Java
//! `KafkaConsumer`.
//!
//! Each topic has a small `max.message.bytes`; the producer's `batch.size` and
//! `linger.ms` make batches far larger. Without compression every batch is over
//! the limit; with compression, records that compress ~100:1 first teach the
//! producer its ratio, then records that do not compress fill a batch sized by
//! that wrong estimate. Every record must be acknowledged, at its own offset, and
//! read back once, in the order sent.

mod support;

use std::time::Duration;

use herald::{ErrorCode, Producer, ProducerBuilder, Record};
use support::{consume_with_java, consume_with_java_properties, create_topic, producer_builder, topic_name};

/// The topics' `max.message.bytes`.
const LIMIT: &str = "4000";

/// `n` values from `first`: its number, then `len` bytes that compress ~100:1
/// (`compressible`) or not at all.
fn values(first: usize, n: usize, len: usize, compressible: bool, rng: &mut fastrand::Rng) -> Vec<Vec<u8>> {
    (first..first + n)
        .map(|i| {
            let mut v = format!("{i:06}:").into_bytes();
            if compressible {
                v.resize(len, b'z');
            } else {
                v.extend((0..len).map(|_| rng.u8(..)));
            }
            v
        })
        .collect()
}

/// Sends every value to partition 0 of `topic` without waiting in between (one
/// batch per `linger.ms`), every fourth with a callback; returns each record's
/// offset in send order, checking each resolved exactly once.
async fn send_all(p: &Producer, topic: &str, values: &[Vec<u8>]) -> Vec<i64> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut futures = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let r = Record::new(topic).partition(0).value(v.clone());
        if i % 4 == 0 {
            let tx = tx.clone();
            p.send_with_callback(r, move |res| {
                let _ = tx.send((i, res));
            })
            .await
            .expect("accepted");
        } else {
            futures.push((i, p.send(r).await.expect("accepted")));
        }
    }
    drop(tx);
    let mut got = Vec::new();
    for (i, f) in futures {
        got.push((i, f.await));
    }
    p.flush().await.unwrap();
    while let Some(r) = rx.recv().await {
        got.push(r);
    }
    got.sort_by_key(|(i, _)| *i);
    assert_eq!(got.len(), values.len(), "every record resolved exactly once");
    got.into_iter()
        .enumerate()
        .map(|(k, (i, r))| {
            assert_eq!(k, i, "record {k} resolved once");
            r.unwrap_or_else(|e| panic!("record {i}: {e}")).offset().expect("acks=all gives an offset")
        })
        .collect()
}

/// Large batches over a topic that takes small ones. Without idempotence, order
/// across retries needs one request in flight (as with Java's producer).
fn builder(compression: &str, idempotent: bool) -> ProducerBuilder {
    producer_builder()
        .batch_size(64 * 1024)
        .linger(Duration::from_millis(50))
        .idempotence(idempotent)
        .max_in_flight(if idempotent { 5 } else { 1 })
        .set("compression.type", compression)
}

/// Produces a compressible round (to teach the ratio) then an incompressible
/// one; checks offsets, read-back order and the split count.
async fn produce_and_read_back(p: &Producer, topic: &str, read_committed: bool) -> u64 {
    let mut rng = fastrand::Rng::with_seed(42);
    let mut sent = values(0, 400, 200, true, &mut rng);
    sent.extend(values(400, 600, 200, false, &mut rng));
    let first = send_all(p, topic, &sent[..400]).await;
    let second = send_all(p, topic, &sent[400..]).await;
    let offsets: Vec<i64> = first.into_iter().chain(second).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "offsets follow the send order");
    let read = if read_committed {
        consume_with_java_properties(topic, &["isolation.level=read_committed"]).await
    } else {
        consume_with_java(topic).await
    };
    let read_values: Vec<Vec<u8>> = read.iter().map(|c| c.value.clone().unwrap_or_default()).collect();
    assert_eq!(read_values.len(), sent.len(), "records read != records sent");
    assert!(read_values == sent, "read back once each, in the order sent");
    let read_offsets: Vec<i64> = read.iter().map(|c| c.offset).collect();
    if !read_committed {
        assert_eq!(read_offsets, offsets, "each at the offset its future gave");
    }
    p.metrics().batch_split_total
}

#[tokio::test]
async fn batches_over_max_message_bytes_are_split_and_every_record_written_once_in_order() {
    for compression in ["none", "zstd", "lz4"] {
        for idempotent in [true, false] {
            let topic = create_topic("split", 1, &[("max.message.bytes", LIMIT)]).await;
            let p = builder(compression, idempotent).build().unwrap();
            let splits = produce_and_read_back(&p, &topic, false).await;
            assert!(splits >= 1, "{compression}, idempotent {idempotent}: no batch was split");
            let m = p.metrics();
            assert_eq!((m.record_error_total, m.record_send_total), (0, 1000), "{compression}");
            assert!(m.record_send_total > 0 && m.batch_split_rate > 0.0);
            p.close(Duration::from_secs(10)).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_transactions_batches_are_split_too() {
    let topic = create_topic("split-txn", 1, &[("max.message.bytes", LIMIT)]).await;
    let p = builder("zstd", true).set("transactional.id", &topic_name("split-tx")).build().unwrap();
    p.init_transactions().await.unwrap();
    p.begin_transaction().unwrap();
    let splits = produce_and_read_back_in_transaction(&p, &topic).await;
    assert!(splits >= 1, "no batch was split");
    p.close(Duration::from_secs(10)).await.unwrap();
}

async fn produce_and_read_back_in_transaction(p: &Producer, topic: &str) -> u64 {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut sent = values(0, 300, 200, true, &mut rng);
    sent.extend(values(300, 300, 200, false, &mut rng));
    send_all(p, topic, &sent[..300]).await;
    send_all(p, topic, &sent[300..]).await;
    p.commit_transaction().await.unwrap();
    let read = consume_with_java_properties(topic, &["isolation.level=read_committed"]).await;
    let read_values: Vec<Vec<u8>> = read.iter().map(|c| c.value.clone().unwrap_or_default()).collect();
    assert_eq!(read_values.len(), sent.len(), "records read != records committed");
    assert!(read_values == sent, "read back once each, in the order sent");
    p.metrics().batch_split_total
}

#[tokio::test]
async fn a_single_record_over_max_message_bytes_fails_saying_so() {
    let topic = create_topic("split-one", 1, &[("max.message.bytes", LIMIT)]).await;
    let p = builder("zstd", true).build().unwrap();
    let mut rng = fastrand::Rng::with_seed(3);
    let big = values(0, 1, 6000, false, &mut rng).remove(0);
    let e = p.send_and_wait(Record::new(&topic).partition(0).value(big)).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::MESSAGE_TOO_LARGE), "{e}");
    assert_eq!((e.topic(), e.partition()), (Some(topic.as_str()), Some(0)), "{e}");
    let text = e.to_string();
    assert!(text.contains("bytes on the wire") && text.contains("max.message.bytes"), "{text}");
    assert!(!e.may_have_been_written(), "{e}");
    assert_eq!(p.metrics().batch_split_total, 0, "one record is not split");
    // The partition goes on.
    let small = p.send_and_wait(Record::new(&topic).partition(0).value("small")).await.unwrap();
    p.close(Duration::from_secs(10)).await.unwrap();
    let read = consume_with_java(&topic).await;
    assert_eq!(read.len(), 1);
    assert_eq!(Some(read[0].offset), small.offset());
}
