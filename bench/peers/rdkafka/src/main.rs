//! bench/compare peer: librdkafka through rust-rdkafka's `BaseProducer`, with
//! delivery reports served by `poll` on the sending thread (the pattern of
//! librdkafka's own rdkafka_performance tool). See bench/README.md.

#[path = "../../common/bench.rs"]
mod bench;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

use bench::{Args, Histogram, Outcome, Pacer};

struct Stats {
    latency: Histogram,
    acked: u64,
    /// Payload bytes of the measured records acknowledged.
    bytes: u64,
    errors: u64,
    first_error: Option<String>,
}

struct Ctx {
    origin: Instant,
    /// Records sent before this offset from `origin` (ns) are warmup.
    measured_from_ns: std::sync::atomic::AtomicU64,
    stats: Mutex<Stats>,
}

impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    /// Send time in ns since `origin`.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_ns: usize) {
        let now = self.origin.elapsed();
        let mut s = self.stats.lock().unwrap();
        match result {
            Ok(m) => {
                s.acked += 1;
                let from = self.measured_from_ns.load(std::sync::atomic::Ordering::Relaxed);
                if sent_ns as u64 >= from {
                    s.bytes += m.payload_len() as u64;
                    s.latency.record(now.saturating_sub(Duration::from_nanos(sent_ns as u64)));
                }
            }
            Err((e, _)) => {
                s.errors += 1;
                if s.first_error.is_none() {
                    s.first_error = Some(e.to_string());
                }
            }
        }
    }
}

fn main() {
    let args = Args::parse("rdkafka-bench");
    let payloads = args.payloads();

    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &args.bootstrap);
    cfg.set("client.id", "rdkafka-bench");
    // Common settings, with the defaults bench/compare documents (Java's).
    cfg.set("acks", args.acks());
    cfg.set("enable.idempotence", if args.idempotence() { "true" } else { "false" });
    cfg.set("linger.ms", format!("{}", args.linger().as_secs_f64() * 1000.0));
    cfg.set("batch.size", args.batch_size().to_string());
    cfg.set("compression.codec", args.compression());
    // Anything else is passed through (librdkafka understands most Java names).
    for (k, v) in &args.props {
        match k.as_str() {
            "acks" | "enable.idempotence" | "linger.ms" | "batch.size" | "compression.type" => {}
            _ => {
                cfg.set(k, v);
            }
        }
    }
    let ctx = Ctx {
        origin: Instant::now(),
        measured_from_ns: std::sync::atomic::AtomicU64::new(u64::MAX),
        stats: Mutex::new(Stats {
            latency: Histogram::default(),
            acked: 0,
            bytes: 0,
            errors: 0,
            first_error: None,
        }),
    };
    let producer: BaseProducer<Ctx> = cfg.create_with_context(ctx).unwrap_or_else(|e| {
        eprintln!("rdkafka-bench: cannot create producer: {e}");
        std::process::exit(2)
    });
    let origin = producer.context().origin;

    let n = args.num_records;
    let w = args.warmup_records;
    let mut t0 = Instant::now();
    let mut cpu0 = bench::cpu_time();
    let mut send_errors = 0u64;
    let pacer = Pacer::new(args.throughput);
    for i in 0..n {
        if let Some(wait) = pacer.wait_before(i) {
            let until = Instant::now() + wait;
            loop {
                let now = Instant::now();
                if now >= until {
                    break;
                }
                producer.poll(until - now);
            }
        }
        let payload = &payloads[(i % payloads.len() as u64) as usize][..];
        if i == w {
            t0 = Instant::now();
            cpu0 = bench::cpu_time();
            let from = t0.duration_since(origin).as_nanos() as u64;
            producer.context().measured_from_ns.store(from, std::sync::atomic::Ordering::Relaxed);
        }
        let sent_ns = origin.elapsed().as_nanos() as usize;
        let mut record = BaseRecord::<(), [u8], usize>::with_opaque_to(&args.topic, sent_ns).payload(payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // Local queue full (queue.buffering.max.messages/kbytes): serve
                    // delivery reports, then retry, as Java's send() blocks.
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => {
                    send_errors += 1;
                    if send_errors == 1 {
                        eprintln!("rdkafka-bench: send failed: {e}");
                    }
                    break;
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    if let Err(e) = producer.flush(Duration::from_secs(300)) {
        eprintln!("rdkafka-bench: flush: {e}");
    }
    producer.poll(Duration::ZERO);
    let elapsed = t0.elapsed();
    let cpu = bench::cpu_time() - cpu0;

    let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
    let stats = std::mem::replace(
        &mut *producer.context().stats.lock().unwrap(),
        Stats { latency: Histogram::default(), acked: 0, bytes: 0, errors: 0, first_error: None },
    );
    if let Some(e) = &stats.first_error {
        eprintln!("rdkafka-bench: {} delivery errors, first: {e}", stats.errors);
    }
    let measured = stats.latency.count();
    let out = Outcome {
        client: "rdkafka",
        version: format!("librdkafka {librdkafka} (rdkafka crate {})", env!("PEER_CRATE_VERSION")),
        records: measured,
        bytes: stats.bytes,
        elapsed,
        cpu,
        errors: stats.errors + send_errors + (n - stats.acked - stats.errors - send_errors),
        latency: stats.latency,
        notes: vec![],
    };
    out.print(args.json);
    drop(producer);
}
