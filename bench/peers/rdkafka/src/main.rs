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
    /// Records whose latency starts before this offset from `origin` (ns) are
    /// warmup.
    measured_from_ns: std::sync::atomic::AtomicU64,
    stats: Mutex<Stats>,
}

impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    /// Start of the record's latency in ns since `origin`: its due time when
    /// paced, else the start of its send call.
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
        let due = pacer.due(i);
        if let Some(due) = due {
            // Not before it is due: serve delivery reports while waiting (poll
            // has millisecond resolution, so only for all but the last
            // OS_SLEEP_SPAN), then the OS sleep.
            loop {
                producer.poll(Duration::ZERO);
                let now = Instant::now();
                if now >= due {
                    break;
                }
                if due - now > bench::OS_SLEEP_SPAN {
                    producer.poll(due - now - bench::OS_SLEEP_SPAN);
                } else {
                    bench::sleep_until(due);
                }
            }
        }
        let payload = &payloads[(i % payloads.len() as u64) as usize][..];
        // Latency starts at the due time when paced, else at the send call.
        let start = due.unwrap_or_else(Instant::now);
        let sent_ns = start.duration_since(origin).as_nanos() as usize;
        if i == w {
            // The measured phase starts when its first record is due (paced) or sent.
            t0 = start;
            cpu0 = bench::cpu_time();
            // Starts are monotonic in i: record w and every later one count.
            producer.context().measured_from_ns.store(sent_ns as u64, std::sync::atomic::Ordering::Relaxed);
        }
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
    // Until every record has its delivery report: flush (rd_kafka_flush with no
    // wait: what lingers goes out at once), then serve reports for 1 ms. Not
    // flush(timeout): rust-rdkafka's poll blocks for its whole timeout and flush
    // polls in 100 ms steps, which added up to 100 ms to the measured phase.
    let deadline = Instant::now() + Duration::from_secs(300);
    while producer.in_flight_count() > 0 {
        if Instant::now() >= deadline {
            eprintln!("rdkafka-bench: {} records still in flight after 300 s", producer.in_flight_count());
            break;
        }
        let _ = producer.flush(Duration::ZERO);
        producer.poll(Duration::from_millis(1));
    }
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
