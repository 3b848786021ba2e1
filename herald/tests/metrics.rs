//! `Producer::metrics()` against the cluster under test: each metric driven by
//! what the test sends and checked against it — counts equal to the records
//! acknowledged or failed, sizes to the records' own, compression to the bytes
//! that went out, retries to the faults injected.

mod support;

use std::time::Duration;

use herald::{Acks, Producer, ProducerMetrics, Record};
use support::{create_topic, producer_builder};

/// Sends `n` records of `size` value bytes and waits for each.
async fn send(p: &Producer, topic: &str, n: usize, size: usize) -> usize {
    let mut ok = 0;
    let mut futures = Vec::new();
    for i in 0..n {
        let value = format!("{i:0size$}");
        futures.push(p.send(Record::new(topic).value(value)).await.expect("accepted"));
    }
    for f in futures {
        ok += usize::from(f.await.is_ok());
    }
    ok
}

/// The size of a record of `value` bytes (no key, no headers) in a batch: its
/// length varint, attributes, timestamp and offset deltas, key length (-1), value
/// length and bytes, header count (Kafka's `DefaultRecord`).
fn record_size(value: usize, offset_delta: usize) -> u64 {
    fn varint(v: i64) -> u64 {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        let mut n = 1;
        while z >= 0x80 {
            z >>= 7;
            n += 1;
        }
        n
    }
    // The timestamp delta is 0 or a few ms: one byte either way.
    let body =
        1 + 1 + varint(offset_delta as i64) + varint(-1) + varint(value as i64) + value as u64 + varint(0);
    body + varint(body as i64)
}

#[tokio::test]
async fn counts_sizes_requests_and_connections_follow_what_was_sent() {
    let topic = create_topic("metrics", 2, &[]).await;
    let p = producer_builder().acks(Acks::All).linger(Duration::from_millis(5)).build().unwrap();
    let before = p.metrics();
    assert_eq!(before.record_send_total, 0);
    assert!(before.metadata_age.is_none(), "no metadata asked for yet");
    let sent = send(&p, &topic, 200, 100).await;
    assert_eq!(sent, 200);
    p.send(Record::new(&topic).value(vec![b'x'; 5000])).await.unwrap().await.unwrap();
    let m: ProducerMetrics = p.metrics();

    assert_eq!(m.record_send_total, 201, "{m:#?}");
    assert_eq!(m.topics[&topic].record_send_total, 201);
    // A topic just created may answer its first Produce before its leader is
    // ready (Kafka 4.x does): such batches are retried, and counted.
    assert_eq!(m.record_error_total, 0);
    // The largest record is the 5000-byte one, as encoded in its batch.
    assert_eq!(m.record_size_max, record_size(5000, 0));
    let smallest = record_size(100, 0) as f64;
    assert!(m.record_size_avg > smallest && m.record_size_avg < smallest + 30.0, "{}", m.record_size_avg);
    // Every record went in one request, and once more per retry.
    let per_request = m.records_per_request_avg * m.request_total as f64;
    let carried = 201.0 + m.record_retry_total as f64;
    assert!(
        (per_request - carried).abs() < 1e-6,
        "{} x {} vs {carried}",
        m.records_per_request_avg,
        m.request_total
    );
    assert!(m.batch_size_max as usize >= 5000 && m.batch_size_avg > 0.0);
    assert_eq!(m.compression_rate_avg, 1.0, "uncompressed");
    assert!(m.request_latency_avg > 0.0 && m.request_latency_max >= m.request_latency_avg);
    assert_eq!(m.requests_in_flight, 0, "everything answered");
    assert!(m.record_queue_time_max as f64 >= m.record_queue_time_avg);
    assert!(
        m.outgoing_byte_total > 201 * 100 + 5000,
        "requests carried the records: {}",
        m.outgoing_byte_total
    );
    assert!(m.incoming_byte_total > 0);
    assert!(m.record_send_rate > 0.0 && m.request_rate > 0.0 && m.outgoing_byte_rate > 0.0);
    assert!(m.connection_count >= 1 && m.connection_creation_total >= m.connection_count);
    assert!(m.metadata_age.is_some_and(|a| a < 60.0), "{:?}", m.metadata_age);
    assert_eq!(m.buffer_total_bytes, 32 * 1024 * 1024);
    assert_eq!(m.buffer_available_bytes, m.buffer_total_bytes, "every record's memory given back");
    let brokers: u64 = m.brokers.values().map(|b| b.request_total).sum();
    assert_eq!(brokers, m.request_total, "per-broker request counts add up");
    assert_eq!(m.iter().find(|(n, _)| *n == "record-send-total").map(|(_, v)| v), Some(201.0));
    p.close(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn compression_rate_is_the_ratio_of_bytes_sent_to_raw_bytes() {
    let topic = create_topic("metrics-zstd", 1, &[]).await;
    let p =
        producer_builder().set("compression.type", "zstd").linger(Duration::from_millis(20)).build().unwrap();
    send(&p, &topic, 500, 200).await;
    let m = p.metrics();
    assert_eq!(m.record_send_total, 500);
    // Zero-padded counters compress well; the rate is what went out over what came in.
    assert!(m.compression_rate_avg > 0.0 && m.compression_rate_avg < 0.3, "{}", m.compression_rate_avg);
    assert_eq!(m.compression_rate_avg, m.topics[&topic].compression_rate, "one topic: the same ratio");
    let raw = m.record_size_avg * 500.0;
    let wire = m.topics[&topic].byte_total as f64;
    assert!(wire < raw * 0.3, "the topic's bytes are the compressed ones: {wire} of {raw}");
}

#[tokio::test]
async fn a_record_the_broker_refuses_counts_as_an_error_not_written() {
    // Larger than the topic's max.message.bytes, within max.request.size: the broker
    // refuses it (MESSAGE_TOO_LARGE), and says so for certain.
    let topic = create_topic("metrics-err", 1, &[("max.message.bytes", "1000")]).await;
    let p = producer_builder().build().unwrap();
    let f = p.send(Record::new(&topic).value(vec![b'x'; 3000])).await.unwrap();
    let e = f.await.expect_err("too large for the topic");
    assert!(!e.may_have_been_written(), "{e}");
    send(&p, &topic, 3, 10).await;
    let m = p.metrics();
    assert_eq!((m.record_error_total, m.record_send_total), (1, 3));
    assert_eq!((m.record_error_not_written_total, m.record_error_maybe_written_total), (1, 0));
    assert_eq!(m.topics[&topic].record_error_total, 1);
    assert!(m.record_error_rate > 0.0);
}

#[tokio::test]
async fn a_batch_the_broker_refuses_as_too_large_counts_one_split() {
    // 20 records of ~68 bytes in one batch of ~1,420 bytes, over the topic's
    // 1,000: split once into two halves that fit (KIP-126).
    let topic = create_topic("metrics-split", 1, &[("max.message.bytes", "1000")]).await;
    let p = producer_builder().batch_size(64 * 1024).linger(Duration::from_millis(50)).build().unwrap();
    assert_eq!(send(&p, &topic, 20, 60).await, 20);
    let m = p.metrics();
    assert_eq!(m.batch_split_total, 1);
    assert!(m.batch_split_rate > 0.0);
    assert_eq!((m.record_send_total, m.record_error_total), (20, 0));
    assert!(m.iter().any(|(name, v)| name == "batch-split-total" && v == 1.0));
}

#[tokio::test]
async fn waiting_for_buffer_memory_is_counted() {
    let topic = create_topic("metrics-buf", 1, &[]).await;
    let p = producer_builder().buffer_memory(64 * 1024).linger(Duration::from_millis(50)).build().unwrap();
    send(&p, &topic, 2000, 100).await;
    let m = p.metrics();
    assert_eq!(m.record_send_total, 2000);
    assert!(m.bufferpool_wait_time_ns_total > 0, "2000 records of ~110 bytes do not fit 64 KiB at once");
    assert_eq!(m.buffer_total_bytes, 64 * 1024);
}

/// Retries need a broker that fails on request: an embedded cluster of the
/// test's own (the shared one serves the other tests' requests too).
#[tokio::test]
async fn retries_count_the_records_of_each_batch_sent_again() {
    let cluster = herald::mock::MockCluster::builder().brokers(1).start().await.unwrap();
    cluster.create_topic("t", 1).unwrap();
    let p = Producer::builder()
        .bootstrap_servers(cluster.bootstrap())
        .retry_backoff(Duration::from_millis(5))
        .build()
        .unwrap();
    // Warm up (metadata, producer id), then fail the next two Produce requests.
    send(&p, "t", 1, 10).await;
    cluster.fail_next(
        herald::mock::MockApi::Produce,
        2,
        herald::mock::Fault::Error(herald::ErrorCode::NOT_LEADER_OR_FOLLOWER),
    );
    let ok = p.send(Record::new("t").value("again")).await.unwrap().await;
    assert!(ok.is_ok());
    let m = p.metrics();
    assert_eq!(m.record_retry_total, 2, "one record, retried twice");
    assert_eq!(m.record_send_total, 2);
    assert_eq!(m.record_error_total, 0);
}

/// The same through the cluster under test (a real broker in the Kafka phases):
/// a proxy closes the connection instead of forwarding the next two Produce
/// requests, so the record is sent three times and written once.
#[tokio::test]
async fn retries_after_lost_connections_are_counted_and_the_record_written_once() {
    let topic = create_topic("metrics-retry", 1, &[]).await;
    let proxy = support::proxy::KafkaProxy::start(&support::bootstrap()).await;
    let p = producer_builder()
        .bootstrap_servers(proxy.bootstrap())
        .retry_backoff(Duration::from_millis(5))
        .build()
        .unwrap();
    send(&p, &topic, 1, 10).await;
    let produce = kafka_protocol::messages::ApiKey::Produce as i16;
    proxy.close_on_next(produce, 2);
    let md = p.send(Record::new(&topic).value("again")).await.unwrap().await.unwrap();
    assert_eq!(md.offset(), Some(1), "written once, after the first record");
    let m = p.metrics();
    assert_eq!(m.record_retry_total, 2, "one record, sent again twice");
    assert_eq!((m.record_send_total, m.record_error_total), (2, 0));
    p.close(Duration::from_secs(10)).await.unwrap();
    assert_eq!(support::consume_with_java(&topic).await.len(), 2, "no duplicate");
}

/// A broker that throttles (KIP-219) answers at once and expects no request for
/// `throttle_time_ms`: herald holds that broker's requests (as Java's
/// NetworkClient does) and counts the throttle time.
#[tokio::test]
async fn a_throttled_broker_gets_no_request_until_its_throttle_time_passed() {
    let cluster = herald::mock::MockCluster::builder().brokers(1).start().await.unwrap();
    cluster.create_topic("t", 1).unwrap();
    let p =
        Producer::builder().bootstrap_servers(cluster.bootstrap()).linger(Duration::ZERO).build().unwrap();
    send(&p, "t", 1, 10).await;
    cluster.set_produce_throttle(Duration::from_millis(300));
    let start = std::time::Instant::now();
    for _ in 0..3 {
        send(&p, "t", 1, 10).await; // one request each, answered with throttle_time_ms=300
    }
    let elapsed = start.elapsed();
    // The first throttled answer holds the second request, the second the third.
    assert!(elapsed >= Duration::from_millis(600), "requests were held: {elapsed:?}");
    let m = p.metrics();
    assert_eq!(m.produce_throttle_time_max, 300);
    // Four answers: the warm-up's, not throttled, then three throttled 300 ms.
    assert!((m.produce_throttle_time_avg - 900.0 / 4.0).abs() < 1e-9, "{}", m.produce_throttle_time_avg);
}

/// The same against a real broker: a `producer_byte_rate` quota on the
/// producer's client.id (set with the Java Admin client) makes the broker throttle.
#[tokio::test]
async fn a_client_over_its_quota_is_throttled_and_the_throttle_time_counted() {
    if support::embedded().is_some() {
        eprintln!("skipped here: the embedded cluster has no quotas (see the test above for its throttling)");
        return;
    }
    let topic = create_topic("metrics-quota", 1, &[]).await;
    let client_id = support::topic_name("quota-client");
    support::java(
        "dev.herald.tools.ClientQuota",
        &[
            "--bootstrap",
            &support::bootstrap(),
            "--client-id",
            &client_id,
            "--quota",
            "producer_byte_rate=20000",
        ],
        None,
    )
    .await;
    // Quotas reach the broker's quota manager asynchronously.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let p = producer_builder().client_id(&client_id).build().unwrap();
    // 200 KB at 20 KB/s: the broker asks for several seconds of throttling.
    send(&p, &topic, 200, 1000).await;
    let m = p.metrics();
    assert_eq!(m.record_send_total, 200);
    assert!(m.produce_throttle_time_max > 0, "throttled: {m:#?}");
    assert!(m.produce_throttle_time_avg > 0.0);
}

/// `statistics.interval.ms`: a JSON document every interval, with librdkafka's
/// names, counts matching what was sent.
#[tokio::test]
async fn the_statistics_callback_gets_librdkafka_s_json_every_interval() {
    use std::sync::{Arc, Mutex};
    let topic = create_topic("metrics-stats", 2, &[]).await;
    let docs: Arc<Mutex<Vec<(std::time::Instant, serde_json::Value)>>> = Arc::default();
    let seen = docs.clone();
    let p = producer_builder()
        .client_id("stats-test")
        .statistics(Duration::from_millis(200), move |json| {
            let v = serde_json::from_str(&json).expect("the document is JSON");
            seen.lock().unwrap().push((std::time::Instant::now(), v));
        })
        .build()
        .unwrap();
    assert_eq!(p.config().statistics_interval, Duration::from_millis(200));
    assert_eq!(send(&p, &topic, 40, 50).await, 40);
    let sent_at = std::time::Instant::now();
    // Two documents after everything was written.
    let last = loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let d = docs.lock().unwrap();
        if d.iter().filter(|(at, _)| *at > sent_at).count() >= 2 {
            break d.last().unwrap().1.clone();
        }
        assert!(sent_at.elapsed() < Duration::from_secs(10), "{} documents", d.len());
    };
    assert_eq!((last["type"].as_str(), last["client_id"].as_str()), (Some("producer"), Some("stats-test")));
    assert!(last["name"].as_str().is_some_and(|n| n.starts_with("herald#producer-")), "{last}");
    assert_eq!(last["txmsgs"].as_u64(), Some(40), "{last}");
    assert_eq!(last["topics"][&topic]["txmsgs"].as_u64(), Some(40), "{last}");
    assert_eq!(last["msg_cnt"].as_u64(), Some(0), "nothing queued: {last}");
    assert_eq!(last["msg_size"].as_u64(), Some(0), "every record's memory given back: {last}");
    assert_eq!(last["msg_size_max"].as_u64(), Some(32 * 1024 * 1024));
    let m = p.metrics();
    assert_eq!(last["tx"].as_u64(), Some(m.request_total), "{last}");
    assert!(last["tx_bytes"].as_u64().unwrap() > 40 * 50 && last["rx_bytes"].as_u64().unwrap() > 0);
    let brokers = last["brokers"].as_object().unwrap();
    let rx: u64 = brokers.values().map(|b| b["rx"].as_u64().unwrap()).sum();
    assert_eq!(rx, m.request_total, "every request answered: {last}");
    assert!(brokers.values().all(|b| b["nodeid"].is_i64() && b["rtt"]["avg"].as_u64().is_some()), "{last}");
    assert_eq!(last["herald"]["record-send-total"].as_f64(), Some(40.0));
    assert_eq!(last["herald"]["topics"][&topic]["record-send-total"].as_f64(), Some(40.0));
    assert!(last["herald"]["metadata-age"].as_f64().is_some(), "metadata answered: {last}");
    // Every interval: consecutive documents 200 ms apart (`ts` in microseconds).
    {
        let d = docs.lock().unwrap();
        for w in d.windows(2) {
            let gap = w[1].1["ts"].as_u64().unwrap() - w[0].1["ts"].as_u64().unwrap();
            assert!((150_000..1_000_000).contains(&gap), "{gap} µs between documents");
        }
        assert!(d.windows(2).all(|w| w[1].1["age"].as_u64() > w[0].1["age"].as_u64()));
    }
    p.close(Duration::from_secs(10)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_close = docs.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(docs.lock().unwrap().len(), after_close, "no documents once the producer is closed");
}

#[tokio::test]
async fn a_panicking_statistics_callback_is_called_again_and_the_producer_works_on() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    let topic = create_topic("metrics-stats-panic", 1, &[]).await;
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let p = producer_builder()
        .statistics(Duration::from_millis(50), move |_| {
            c.fetch_add(1, Ordering::Relaxed);
            panic!("a statistics callback that panics");
        })
        .build()
        .unwrap();
    assert_eq!(send(&p, &topic, 5, 10).await, 5);
    // Called again after each panic (a printed backtrace makes each call slow).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while calls.load(Ordering::Relaxed) < 3 {
        assert!(std::time::Instant::now() < deadline, "{} calls", calls.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(send(&p, &topic, 5, 10).await, 5);
}

#[test]
fn statistics_interval_ms_is_librdkafka_s_property_off_by_default() {
    let info = herald::config::property_info("statistics.interval.ms").expect("known");
    assert_eq!(info.default, "0");
    let mut c = herald::ProducerConfig::default();
    assert_eq!(c.statistics_interval, Duration::ZERO);
    c.set("statistics.interval.ms", "1500").unwrap();
    assert_eq!(c.statistics_interval, Duration::from_millis(1500));
    assert!(c.set("statistics.interval.ms", "-1").is_err());
}

/// Feature `metrics`: the snapshot through the `metrics` facade, as
/// metrics-exporter-prometheus renders it.
#[tokio::test]
async fn the_metrics_feature_publishes_java_s_names_to_a_prometheus_recorder() {
    use metrics_exporter_prometheus::PrometheusBuilder;
    let topic = create_topic("metrics-prom", 1, &[]).await;
    let p = producer_builder().client_id("prom-test").build().unwrap();
    let before = PrometheusBuilder::new().build_recorder();
    metrics::with_local_recorder(&before, || herald::metrics::record(&p.metrics(), "prom-test"));
    let text = before.handle().render();
    assert!(
        !text.contains("herald_producer_metadata_age"),
        "NaN (no metadata yet) is not published:\n{text}"
    );
    assert!(text.contains("herald_producer_record_send_total{client_id=\"prom-test\"} 0"), "{text}");

    assert_eq!(send(&p, &topic, 7, 10).await, 7);
    let recorder = PrometheusBuilder::new().build_recorder();
    let m = p.metrics();
    metrics::with_local_recorder(&recorder, || herald::metrics::record(&m, "prom-test"));
    let text = recorder.handle().render();
    assert!(text.contains("# TYPE herald_producer_record_send_total counter"), "{text}");
    assert!(text.contains("herald_producer_record_send_total{client_id=\"prom-test\"} 7"), "{text}");
    assert!(text.contains("# TYPE herald_producer_record_send_rate gauge"), "{text}");
    assert!(text.contains("# HELP herald_producer_record_send_total Records written"), "{text}");
    assert!(text.contains("herald_producer_metadata_age{client_id=\"prom-test\"}"), "{text}");
    let topic_line =
        format!("herald_producer_topic_record_send_total{{client_id=\"prom-test\",topic=\"{topic}\"}} 7");
    assert!(text.contains(&topic_line), "{text}");
    for (id, b) in &m.brokers {
        let line = format!(
            "herald_producer_node_request_total{{client_id=\"prom-test\",node_id=\"{id}\"}} {}",
            b.request_total
        );
        assert!(text.contains(&line), "{line} in\n{text}");
    }
    // The publisher ends by itself once the producer is closed.
    let publisher = herald::metrics::publish(&p, Duration::from_millis(20));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!publisher.is_finished());
    p.close(Duration::from_secs(10)).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !publisher.is_finished() {
        assert!(std::time::Instant::now() < deadline, "the publisher outlived its producer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
