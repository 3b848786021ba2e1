//! Compressed batches, every codec, read back byte for byte by the Java consumer
//! and by librdkafka's (against the embedded cluster, and against real Kafka in
//! scripts/test.sh).

mod support;

use std::time::Duration;

use herald::{Compression, Header, Record, RecordMetadata};
use support::{consume_with_java, consume_with_librdkafka, create_topic, embedded, producer_builder};

#[derive(Clone)]
struct Sent {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<Header>,
}

/// Small keyed records with headers, empty and null values, a null key, a large
/// compressible record near `max.request.size`, and incompressible ones.
fn workload(seed: u64) -> Vec<Sent> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Vec::new();
    for i in 0..300 {
        out.push(Sent {
            key: Some(format!("truck_id_{}", i % 9).into_bytes()),
            value: Some(
                format!("{{\"seq\":{i},\"lat\":52.52,\"lon\":13.40,\"status\":\"moving\"}}").into_bytes(),
            ),
            headers: vec![
                Header::new("trace", format!("{i:016x}")),
                Header { key: "trace".into(), value: None },
            ],
        });
    }
    out.push(Sent { key: Some(b"empty".to_vec()), value: Some(Vec::new()), headers: vec![] });
    out.push(Sent { key: Some(b"tombstone".to_vec()), value: None, headers: vec![] });
    out.push(Sent { key: None, value: Some(b"no key".to_vec()), headers: vec![] });
    // About 900 KB of text: one record, its own batch, close to max.request.size.
    let big: Vec<u8> = (0..900_000u32).map(|i| b"kafka herald "[(i % 13) as usize]).collect();
    out.push(Sent { key: Some(b"big".to_vec()), value: Some(big), headers: vec![] });
    // Random bytes do not compress; the batches must still be valid.
    for _ in 0..40 {
        out.push(Sent { key: None, value: Some((0..8_000).map(|_| rng.u8(..)).collect()), headers: vec![] });
    }
    out.push(Sent {
        key: Some(b"random-big".to_vec()),
        value: Some((0..300_000).map(|_| rng.u8(..)).collect()),
        headers: vec![],
    });
    out
}

async fn produce_and_read_back(compression: Compression, topic_configs: &[(&str, &str)]) -> String {
    let topic = create_topic(&format!("compressed-{compression}"), 3, topic_configs).await;
    let p = producer_builder()
        .set("compression.type", &compression.to_string())
        .linger(Duration::from_millis(20))
        .build()
        .unwrap();
    let sent = workload(7);
    let mut futures = Vec::new();
    for s in &sent {
        let r =
            Record::new(&topic).key_opt(s.key.clone()).value_opt(s.value.clone()).headers(s.headers.clone());
        futures.push(p.send(r).await.unwrap());
    }
    let mut acks: Vec<RecordMetadata> = Vec::new();
    for f in futures {
        acks.push(f.await.unwrap_or_else(|e| panic!("{compression}: {e}")));
    }
    p.close(Duration::from_secs(30)).await.unwrap();
    // Two consumers nobody here wrote: Java's, and librdkafka's (which checks every
    // batch's CRC), so the framing of each codec is proven for both.
    for (reader, consumed) in
        [("java", consume_with_java(&topic).await), ("librdkafka", consume_with_librdkafka(&topic).await)]
    {
        assert_eq!(consumed.len(), sent.len(), "{compression}, {reader}: records read != acknowledged");
        for (s, md) in sent.iter().zip(&acks) {
            let at = format!("{compression}, {reader}, {}/{:?}", md.partition(), md.offset());
            let c = consumed
                .iter()
                .find(|c| c.partition == md.partition() && Some(c.offset) == md.offset())
                .unwrap_or_else(|| panic!("{at}: nothing there"));
            assert_eq!(c.key, s.key, "{at}");
            assert!(c.value == s.value, "{at}: value differs");
            let h: Vec<(String, Option<Vec<u8>>)> =
                c.headers.iter().map(|h| (h.key.clone(), h.value.clone())).collect();
            let want: Vec<(String, Option<Vec<u8>>)> =
                s.headers.iter().map(|h| (h.key.clone(), h.value.as_ref().map(|v| v.to_vec()))).collect();
            assert_eq!(h, want, "{at}");
        }
    }
    topic
}

/// On the embedded cluster, the stored batches show which codec they carry.
fn assert_stored_codec(topic: &str, want: Compression) {
    if let Some(c) = embedded() {
        for p in 0..3 {
            let batches = c.batches(topic, p).unwrap();
            assert!(!batches.is_empty());
            assert!(batches.iter().all(|b| b.compression == want), "{:?}", batches);
        }
    }
}

#[tokio::test]
async fn gzip() {
    let t = produce_and_read_back(Compression::Gzip, &[]).await;
    assert_stored_codec(&t, Compression::Gzip);
}

#[tokio::test]
async fn snappy() {
    let t = produce_and_read_back(Compression::Snappy, &[]).await;
    assert_stored_codec(&t, Compression::Snappy);
}

#[tokio::test]
async fn lz4() {
    let t = produce_and_read_back(Compression::Lz4, &[]).await;
    assert_stored_codec(&t, Compression::Lz4);
}

#[tokio::test]
async fn zstd() {
    let t = produce_and_read_back(Compression::Zstd, &[]).await;
    assert_stored_codec(&t, Compression::Zstd);
}

#[tokio::test]
async fn a_topic_with_its_own_codec_gets_recompressed_by_the_broker() {
    let t = produce_and_read_back(Compression::Zstd, &[("compression.type", "gzip")]).await;
    assert_stored_codec(&t, Compression::Gzip);
}

#[tokio::test]
async fn compressed_batches_hold_more_records_than_batch_size_raw() {
    let topic = create_topic("ratio", 1, &[]).await;
    let p = producer_builder()
        .set("compression.type", "zstd")
        .batch_size(4096)
        .linger(Duration::from_millis(50))
        .build()
        .unwrap();
    let value = |i: usize| format!("position {i:06} of truck_id_123 at 52.52,13.40");
    // A first burst teaches the producer this partition's compression ratio...
    let mut futures = Vec::new();
    for i in 0..200 {
        futures.push(p.send(Record::new(&topic).value(value(i))).await.unwrap());
    }
    for f in futures.drain(..) {
        f.await.unwrap();
    }
    // ...so the next burst fills batches by their compressed size.
    for i in 200..2000 {
        futures.push(p.send(Record::new(&topic).value(value(i))).await.unwrap());
    }
    for f in futures {
        f.await.unwrap();
    }
    p.close(Duration::from_secs(10)).await.unwrap();
    if let Some(c) = embedded() {
        let batches = c.batches(&topic, 0).unwrap();
        // Once the ratio is known, batches fill 4 KiB compressed, not 4 KiB raw:
        // far more than the ~75 records 4 KiB holds raw.
        let most = batches.iter().map(|b| b.records).max().unwrap();
        assert!(most > 200, "largest batch has {most} records");
        assert!(batches.iter().all(|b| b.size <= 4096 + 1024), "{batches:?}");
    }
    assert_eq!(consume_with_java(&topic).await.len(), 2000);
}
