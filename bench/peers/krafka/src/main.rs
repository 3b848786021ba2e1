//! bench/compare peer: krafka. One `Producer`, `enqueue` for every record (it
//! returns once the record is buffered) and every `DeliveryHandle` kept in one
//! `FuturesUnordered` that the send loop drains as it goes: the pipelined
//! pattern of krafka's docs. Batching, partitioning and buffering are krafka's
//! own (per-partition batches, sticky keyless partitioning, `buffer_memory`).
//! See bench/README.md.

#[path = "../../common/bench.rs"]
mod bench;

use std::pin::pin;
use std::time::Instant;

use bytes::Bytes;
use futures::{FutureExt, StreamExt, stream::FuturesUnordered};
use krafka::producer::Acks;
use krafka::{Compression, Kafka, Record};

use bench::{Args, Histogram, Outcome, Pacer};

#[tokio::main]
async fn main() {
    let args = Args::parse("krafka-bench");
    let payloads: Vec<Bytes> = args.payloads().into_iter().map(Bytes::from).collect();
    let mut notes = Vec::new();

    let acks = match args.acks() {
        "all" => Acks::All,
        "1" => Acks::Leader,
        "0" => Acks::None,
        other => {
            eprintln!("krafka-bench: acks={other} not supported");
            std::process::exit(64)
        }
    };
    let compression = match args.compression() {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => {
            eprintln!("krafka-bench: compression.type={other} not supported");
            std::process::exit(64)
        }
    };
    for k in args.props.keys() {
        if !["acks", "enable.idempotence", "linger.ms", "batch.size", "compression.type", "buffer.memory"]
            .contains(&k.as_str())
        {
            notes.push(format!("{k} ignored (no krafka setting mapped)"));
        }
    }

    let kafka =
        Kafka::builder(args.bootstrap.clone()).client_id("krafka-bench").connect().await.unwrap_or_else(
            |e| {
                eprintln!("krafka-bench: cannot connect: {e}");
                std::process::exit(2)
            },
        );
    let mut builder = kafka
        .producer()
        .acks(acks)
        .idempotent(args.idempotence())
        .linger(args.linger())
        .batch_size(args.batch_size())
        .compression(compression);
    if let Some(bytes) = args.prop("buffer.memory").and_then(|v| v.parse().ok()) {
        builder = builder.buffer_memory(bytes);
    }
    let producer = builder.build().await.unwrap_or_else(|e| {
        eprintln!("krafka-bench: cannot create producer: {e}");
        std::process::exit(2)
    });
    // Metadata before the clock starts.
    if let Err(e) = producer.partitions_for(&args.topic).await {
        eprintln!("krafka-bench: topic {}: {e}", args.topic);
        std::process::exit(2)
    }

    let n = args.num_records;
    let w = args.warmup_records;
    let mut latency = Histogram::default();
    let (mut acked, mut errors) = (0u64, 0u64);
    let mut first_error: Option<String> = None;
    let mut measured_bytes = 0u64;
    let mut enqueue_errors = 0u64;
    let mut t0 = Instant::now();
    let mut cpu0 = bench::cpu_time();
    let pacer = Pacer::new(args.throughput);
    let mut inflight = FuturesUnordered::new();

    // (latency start, measured, bytes, outcome)
    let mut handle = |r: (Instant, bool, u64, krafka::Result<krafka::producer::RecordMetadata>)| {
        let (start, measured, bytes, res) = r;
        match res {
            Ok(_) => {
                acked += 1;
                if measured {
                    latency.record(start.elapsed());
                    measured_bytes += bytes;
                }
            }
            Err(e) => {
                errors += 1;
                if first_error.is_none() {
                    first_error = Some(e.to_string());
                }
            }
        }
    };

    for i in 0..n {
        let due = pacer.due(i);
        if let Some(due) = due {
            // Not before it is due. tokio's timer wakes up to 1 ms late, so it
            // serves completions only until OS_SLEEP_SPAN before the due time;
            // the rest is the OS sleep (on the main thread; krafka's send
            // engine runs on the runtime's worker).
            loop {
                while let Some(Some(r)) = inflight.next().now_or_never() {
                    handle(r);
                }
                let now = Instant::now();
                if now >= due {
                    break;
                }
                if due - now > bench::OS_SLEEP_SPAN {
                    let coarse = tokio::time::Instant::from_std(due - bench::OS_SLEEP_SPAN);
                    tokio::select! {
                        _ = tokio::time::sleep_until(coarse) => {}
                        Some(r) = inflight.next(), if !inflight.is_empty() => handle(r),
                    }
                } else {
                    bench::sleep_until(due);
                }
            }
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
        let record = Record::new(args.topic.as_str(), payload.clone());
        // enqueue waits only for buffer memory (buffer_memory, max_block); while
        // it does, keep collecting acknowledgements so their times stay true.
        let mut enqueue = pin!(producer.enqueue(record));
        let queued = loop {
            if let Some(q) = enqueue.as_mut().now_or_never() {
                break q;
            }
            tokio::select! {
                biased;
                q = enqueue.as_mut() => break q,
                Some(r) = inflight.next(), if !inflight.is_empty() => handle(r),
            }
        };
        match queued {
            Ok(delivery) => inflight.push(delivery.map(move |res| (start, measured, len, res))),
            Err(e) => {
                enqueue_errors += 1;
                if enqueue_errors == 1 {
                    eprintln!("krafka-bench: enqueue failed: {e}");
                }
            }
        }
        while let Some(Some(r)) = inflight.next().now_or_never() {
            handle(r);
        }
    }
    while let Some(r) = inflight.next().await {
        handle(r);
    }
    let elapsed = t0.elapsed();
    let cpu = bench::cpu_time() - cpu0;
    if let Err(e) = producer.close().await {
        eprintln!("krafka-bench: close: {e}");
    }
    if let Some(e) = &first_error {
        eprintln!("krafka-bench: {errors} errors, first: {e}");
    }
    let out = Outcome {
        client: "krafka",
        version: format!("krafka {}", env!("PEER_CRATE_VERSION")),
        records: latency.count(),
        bytes: measured_bytes,
        elapsed,
        cpu,
        errors: errors + enqueue_errors + n.saturating_sub(acked + errors + enqueue_errors),
        latency,
        notes,
    };
    out.print(args.json);
}
