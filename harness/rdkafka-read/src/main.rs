//! `rdkafka-read --bootstrap HOST:PORT --topic T [--timeout-ms N]`
//!
//! Reads every partition of a topic from its first offset up to the high watermark
//! seen at start with librdkafka's consumer (`check.crcs=true`, so every batch's
//! CRC-32C is verified) and prints one JSON object per record on stdout, sorted by
//! (partition, offset), in the same shape as harness/java-tools' VerifyConsumer:
//!
//! ```text
//! {"partition":0,"offset":5,"timestamp":1700000000000,"timestamp_type":"CreateTime",
//!  "key":"<base64>"|null,"value":"<base64>"|null,"headers":[{"key":"k","value":"<base64>"|null}]}
//! ```
//!
//! Exit codes: 0 success, 2 timeout or client error, 64 usage.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, Timestamp, TopicPartitionList};

fn usage() -> ! {
    eprintln!("usage: rdkafka-read --bootstrap HOST:PORT --topic TOPIC [--timeout-ms 60000]");
    std::process::exit(64)
}

fn fail(msg: String) -> ! {
    eprintln!("rdkafka-read: {msg}");
    std::process::exit(2)
}

fn b64(v: Option<&[u8]>) -> String {
    match v {
        Some(b) => format!("\"{}\"", STANDARD.encode(b)),
        None => "null".to_owned(),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut bootstrap, mut topic, mut timeout_ms) = (None, None, 60_000u64);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--bootstrap" => bootstrap = Some(v),
            "--topic" => topic = Some(v),
            "--timeout-ms" => timeout_ms = v.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let (Some(bootstrap), Some(topic)) = (bootstrap, topic) else { usage() };
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let left = || deadline.saturating_duration_since(Instant::now());

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "herald-rdkafka-read")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("check.crcs", "true")
        .set("isolation.level", "read_uncommitted")
        .set("client.id", "herald-rdkafka-read")
        .create()
        .unwrap_or_else(|e| fail(format!("creating the consumer: {e}")));

    let md = consumer
        .fetch_metadata(Some(&topic), left())
        .unwrap_or_else(|e| fail(format!("metadata of {topic}: {e}")));
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else { fail(format!("topic {topic} not found")) };
    if let Some(e) = t.error() {
        fail(format!("topic {topic}: {e:?}"));
    }
    let mut ends = Vec::new();
    let mut tpl = TopicPartitionList::new();
    for p in t.partitions() {
        let (low, high) = consumer
            .fetch_watermarks(&topic, p.id(), left())
            .unwrap_or_else(|e| fail(format!("watermarks of {topic}-{}: {e}", p.id())));
        if high > low {
            ends.push((p.id(), high));
            tpl.add_partition_offset(&topic, p.id(), Offset::Offset(low))
                .unwrap_or_else(|e| fail(format!("{topic}-{}: {e}", p.id())));
        }
    }
    consumer.assign(&tpl).unwrap_or_else(|e| fail(format!("assign: {e}")));

    let mut records: Vec<(i32, i64, String)> = Vec::new();
    let mut next: std::collections::HashMap<i32, i64> = std::collections::HashMap::new();
    let done = |next: &std::collections::HashMap<i32, i64>| {
        ends.iter().all(|(p, high)| next.get(p).is_some_and(|n| n >= high))
    };
    while !done(&next) {
        if left().is_zero() {
            fail(format!("timed out after {timeout_ms} ms with {} records read", records.len()));
        }
        let Some(m) = consumer.poll(left().min(Duration::from_millis(500))) else { continue };
        let m = m.unwrap_or_else(|e| fail(format!("consuming {topic}: {e}")));
        let (ts, ts_type) = match m.timestamp() {
            Timestamp::CreateTime(t) => (t, "CreateTime"),
            Timestamp::LogAppendTime(t) => (t, "LogAppendTime"),
            Timestamp::NotAvailable => (-1, "NoTimestampType"),
        };
        let mut headers = Vec::new();
        if let Some(h) = m.headers() {
            for i in 0..h.count() {
                let h = h.get(i);
                headers.push(format!("{{\"key\":{},\"value\":{}}}", serde_json::to_string(h.key).unwrap_or_default(), b64(h.value)));
            }
        }
        let line = format!(
            "{{\"partition\":{},\"offset\":{},\"timestamp\":{},\"timestamp_type\":\"{}\",\"key\":{},\"value\":{},\"headers\":[{}]}}",
            m.partition(),
            m.offset(),
            ts,
            ts_type,
            b64(m.key()),
            b64(m.payload()),
            headers.join(",")
        );
        next.insert(m.partition(), m.offset() + 1);
        records.push((m.partition(), m.offset(), line));
    }
    records.sort_by_key(|(p, o, _)| (*p, *o));
    for (_, _, line) in records {
        println!("{line}");
    }
}
