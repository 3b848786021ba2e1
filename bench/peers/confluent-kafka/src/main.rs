//! bench/compare peer: confluent-kafka, Confluent's pure-Rust translation of
//! the Java client. One `KafkaProducer`, `send_with_callback` for every record
//! with a callback that records its latency (the non-blocking pattern its docs
//! recommend); batching, partitioning and buffering are the client's own (the
//! Java client's: RecordAccumulator, built-in sticky partitioner, buffer.memory).
//! The common settings are passed as the Java property names the client takes.
//! See bench/README.md.

#[path = "../../common/bench.rs"]
mod bench;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use confluent_kafka::common::Error;
use confluent_kafka::common::serialization::{ByteArraySerializer, Serializer};
use confluent_kafka::producer::{KafkaProducer, Producer, ProducerConfig, ProducerRecord, RecordMetadata};

use bench::{Args, Histogram, Outcome, Pacer};

/// Serializes a shared payload by lending its bytes, so a record costs a
/// reference count, not a copy, before the producer copies it into its batch
/// (as Java's `ByteArraySerializer` hands over the caller's `byte[]`).
struct SharedBytes;

impl Serializer<Arc<[u8]>> for SharedBytes {
    async fn serialize<'a>(
        &'a self,
        _topic: &'a str,
        data: Option<&'a Arc<[u8]>>,
    ) -> Result<Option<Cow<'a, [u8]>>, Error> {
        Ok(data.map(|d| Cow::Borrowed(&d[..])))
    }
}

#[derive(Default)]
struct Stats {
    latency: Histogram,
    acked: u64,
    /// Payload bytes of the measured records acknowledged.
    bytes: u64,
    errors: u64,
    first_error: Option<String>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse("confluent-kafka-bench");
    let payloads: Vec<Arc<[u8]>> = args.payloads().into_iter().map(Arc::from).collect();

    // The common settings, with the defaults bench/compare documents (Java's);
    // anything else is passed through (the client takes Java's names).
    let mut props: HashMap<String, String> = HashMap::new();
    props.insert("bootstrap.servers".into(), args.bootstrap.clone());
    props.insert("client.id".into(), "confluent-kafka-bench".into());
    props.insert("acks".into(), args.acks().into());
    props.insert("enable.idempotence".into(), args.idempotence().to_string());
    props.insert("linger.ms".into(), format!("{}", args.linger().as_millis()));
    props.insert("batch.size".into(), args.batch_size().to_string());
    props.insert("compression.type".into(), args.compression().into());
    for (k, v) in &args.props {
        props.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let mut notes = Vec::new();
    if args.linger().subsec_micros() % 1000 != 0 {
        notes.push(format!("linger.ms rounded down to {} ms", args.linger().as_millis()));
    }
    let config = ProducerConfig::new(&props).unwrap_or_else(|e| {
        eprintln!("confluent-kafka-bench: bad configuration: {e}");
        std::process::exit(64)
    });
    let known = ProducerConfig::config_names();
    for k in args.props.keys().filter(|k| !known.contains(*k)) {
        notes.push(format!("{k} ignored (not a confluent-kafka producer setting)"));
    }
    let producer: KafkaProducer<Vec<u8>, Arc<[u8]>> =
        KafkaProducer::new(config, ByteArraySerializer::new(), SharedBytes).unwrap_or_else(|e| {
            eprintln!("confluent-kafka-bench: cannot create producer: {e}");
            std::process::exit(2)
        });
    // Metadata before the clock starts (its docs' advice for the first send).
    if let Err(e) = producer.partitions_for(&args.topic).await {
        eprintln!("confluent-kafka-bench: topic {}: {e}", args.topic);
        std::process::exit(2)
    }

    let stats = Arc::new(Mutex::new(Stats::default()));
    let n = args.num_records;
    let w = args.warmup_records;
    let mut t0 = Instant::now();
    let mut cpu0 = bench::cpu_time();
    let mut send_errors = 0u64;
    let pacer = Pacer::new(args.throughput);
    for i in 0..n {
        let due = pacer.due(i);
        if let Some(due) = due {
            // Not before it is due. This loop runs on the main thread, not on
            // the runtime's worker (where the client's sender task and the
            // callbacks run), so the OS sleep holds up nothing else.
            bench::sleep_until(due);
        }
        if i == w {
            // The measured phase starts when its first record is due (paced) or sent.
            t0 = due.unwrap_or_else(Instant::now);
            cpu0 = bench::cpu_time();
        }
        let measured = i >= w;
        let payload = &payloads[(i % payloads.len() as u64) as usize];
        let len = payload.len() as u64;
        // Latency starts at the due time when paced, else at the send call.
        let start = due.unwrap_or_else(Instant::now);
        let record = ProducerRecord::new(args.topic.clone(), Some(Arc::clone(payload)));
        let st = Arc::clone(&stats);
        let callback = move |_: Option<&RecordMetadata>, error: Option<&Error>| {
            let mut s = st.lock().unwrap();
            match error {
                None => {
                    s.acked += 1;
                    if measured {
                        s.latency.record(start.elapsed());
                        s.bytes += len;
                    }
                }
                Some(e) => {
                    s.errors += 1;
                    if s.first_error.is_none() {
                        s.first_error = Some(e.to_string());
                    }
                }
            }
        };
        // The returned future is not needed: the callback sees every outcome.
        if let Err(e) = producer.send_with_callback(record, Some(Box::new(callback))).await {
            send_errors += 1;
            if send_errors == 1 {
                eprintln!("confluent-kafka-bench: send failed: {e}");
            }
        }
    }
    if let Err(e) = producer.flush().await {
        eprintln!("confluent-kafka-bench: flush: {e}");
    }
    let elapsed = t0.elapsed();
    let cpu = bench::cpu_time() - cpu0;
    if let Err(e) = producer.close().await {
        eprintln!("confluent-kafka-bench: close: {e}");
    }

    let stats = std::mem::take(&mut *stats.lock().unwrap());
    if let Some(e) = &stats.first_error {
        eprintln!("confluent-kafka-bench: {} delivery errors, first: {e}", stats.errors);
    }
    let out = Outcome {
        client: "confluent-kafka",
        version: format!("confluent-kafka {}", env!("PEER_CRATE_VERSION")),
        records: stats.latency.count(),
        bytes: stats.bytes,
        elapsed,
        cpu,
        errors: stats.errors + send_errors + n.saturating_sub(stats.acked + stats.errors + send_errors),
        latency: stats.latency,
        notes,
    };
    out.print(args.json);
}
