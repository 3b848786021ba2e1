//! bench/compare peer: rskafka. One `BatchProducer` (rskafka's batching helper:
//! linger + `RecordAggregator` of at most batch.size bytes) per partition, a
//! sticky partitioner that moves to the next partition after batch.size bytes
//! (as Java's built-in partitioner does for records without a key), and every
//! record's `produce` future kept in one `FuturesUnordered`.
//!
//! rskafka always sends acks=-1 (all) and has no idempotent producer, so
//! `acks` and `enable.idempotence` cannot be honoured (reported in "notes").

#[path = "../../common/bench.rs"]
mod bench;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use futures::{FutureExt, StreamExt, stream::FuturesUnordered};
use rskafka::client::ClientBuilder;
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::producer::{BatchProducerBuilder, aggregator::RecordAggregator};
use rskafka::record::Record;

use bench::{Args, Histogram, Outcome, Pacer};

#[tokio::main]
async fn main() {
    let args = Args::parse("rskafka-bench");
    let payloads = args.payloads();
    let mut notes = Vec::new();

    let compression = match args.compression() {
        "none" => Compression::NoCompression,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => {
            eprintln!("rskafka-bench: compression.type={other} not built in");
            std::process::exit(64)
        }
    };
    if args.acks() != "all" {
        notes.push(format!("acks={} not supported: rskafka always sends acks=all", args.acks()));
    }
    if args.idempotence() {
        notes.push("enable.idempotence=true not supported: rskafka has no idempotent producer".into());
    }
    for k in args.props.keys() {
        if !["acks", "enable.idempotence", "linger.ms", "batch.size", "compression.type", "buffer.memory"]
            .contains(&k.as_str())
        {
            notes.push(format!("{k} ignored"));
        }
    }
    // Bound on records in flight, like Java's buffer.memory (32 MiB default).
    let buffer_memory: usize =
        args.prop("buffer.memory").and_then(|v| v.parse().ok()).unwrap_or(32 * 1024 * 1024);
    let record_bytes = payloads.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let max_inflight = (buffer_memory / record_bytes).max(1);

    let client = ClientBuilder::new(vec![args.bootstrap.clone()])
        .client_id("rskafka-bench")
        .build()
        .await
        .unwrap_or_else(|e| {
            eprintln!("rskafka-bench: cannot connect: {e}");
            std::process::exit(2)
        });
    let topics = client.list_topics().await.expect("list topics");
    let Some(topic) = topics.into_iter().find(|t| t.name == args.topic) else {
        eprintln!("rskafka-bench: topic {} does not exist", args.topic);
        std::process::exit(2)
    };
    let mut producers = Vec::new();
    for p in &topic.partitions {
        let pc = client
            .partition_client(args.topic.clone(), *p, UnknownTopicHandling::Retry)
            .await
            .expect("partition client");
        producers.push(
            BatchProducerBuilder::new(Arc::new(pc))
                .with_linger(args.linger())
                .with_compression(compression)
                .build(RecordAggregator::new(args.batch_size())),
        );
    }

    let n = args.num_records;
    let w = args.warmup_records;
    let batch_size = args.batch_size();
    let mut latency = Histogram::default();
    let (mut acked, mut errors) = (0u64, 0u64);
    let mut first_error: Option<String> = None;
    let mut t0 = Instant::now();
    let mut cpu0 = bench::cpu_time();
    let mut measured_acked_bytes = 0u64;
    let (mut partition, mut sticky_bytes) = (0usize, 0usize);
    let pacer = Pacer::new(args.throughput);
    let mut inflight = FuturesUnordered::new();

    // (latency start, measured, bytes, result)
    let mut handle = |r: (Instant, bool, usize, Result<i64, rskafka::client::producer::Error>)| {
        let (sent, measured, bytes, res) = r;
        match res {
            Ok(_) => {
                acked += 1;
                if measured {
                    latency.record(sent.elapsed());
                    measured_acked_bytes += bytes as u64;
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

    // The whole send loop runs outside tokio's cooperative budget: it polls the
    // produce futures itself (now_or_never) without returning to the scheduler,
    // and once the budget ran out every budgeted poll would return Pending,
    // leaving new records queued behind others before they join a batch.
    tokio::task::unconstrained(async {
        for i in 0..n {
            let due = pacer.due(i);
            if let Some(due) = due {
                // Not before it is due. tokio's timer wakes up to 1 ms late, so
                // it serves completions only until OS_SLEEP_SPAN before the due
                // time; the rest is the OS sleep (which holds this runtime
                // thread: at bench rates a few tens of microseconds).
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
            while inflight.len() >= max_inflight {
                if let Some(r) = inflight.next().await {
                    handle(r);
                }
            }
            let payload = &payloads[(i % payloads.len() as u64) as usize];
            if i == w {
                // The measured phase starts when its first record is due (paced) or sent.
                t0 = due.unwrap_or_else(Instant::now);
                cpu0 = bench::cpu_time();
            }
            let measured = i >= w;
            // Sticky: move on when this record would not fit the partition's
            // batch (RecordAggregator counts value bytes, as here).
            if sticky_bytes > 0 && sticky_bytes + payload.len() > batch_size {
                partition = (partition + 1) % producers.len();
                sticky_bytes = 0;
            }
            sticky_bytes += payload.len();
            let producer = &producers[partition];
            // Latency starts at the due time when paced, else at the send call.
            let sent = due.unwrap_or_else(Instant::now);
            let record = Record {
                key: None,
                value: Some(payload.clone()),
                headers: BTreeMap::new(),
                timestamp: chrono::Utc::now(),
            };
            let len = payload.len();
            inflight.push(async move { (sent, measured, len, producer.produce(record).await) });
            // Poll the new future now, so it joins its batch (and starts the linger
            // timer) at once; collect whatever completed meanwhile.
            while let Some(Some(r)) = inflight.next().now_or_never() {
                handle(r);
            }
        }
        while let Some(r) = inflight.next().await {
            handle(r);
        }
    })
    .await;
    for p in &producers {
        if let Err(e) = p.flush().await {
            eprintln!("rskafka-bench: flush: {e}");
        }
    }
    let elapsed = t0.elapsed();
    let cpu = bench::cpu_time() - cpu0;
    if let Some(e) = &first_error {
        eprintln!("rskafka-bench: {errors} errors, first: {e}");
    }
    let out = Outcome {
        client: "rskafka",
        version: format!("rskafka {}", env!("PEER_CRATE_VERSION")),
        records: latency.count(),
        bytes: measured_acked_bytes,
        elapsed,
        cpu,
        errors: errors + (n - acked - errors),
        latency,
        notes,
    };
    out.print(args.json);
}
