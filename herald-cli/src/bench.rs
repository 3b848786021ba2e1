//! `herald bench`: how fast herald produces, like Java's kafka-producer-perf-test.
//!
//! Sends `--num-records` records of `--record-size` bytes (or payloads from a file,
//! one per line, cycled) as fast as possible or at `--throughput`, and reports
//! records/s, MiB/s, send-to-acknowledgement latency percentiles, and the process's
//! CPU time per record. Outcomes arrive through delivery callbacks (every failure
//! is counted). As fast as possible, latency is sampled on one record in
//! `SAMPLE_EVERY`, from the start of its send; at `--throughput`, every measured
//! record is timed from when it was due (see [`paced`]), warmup included in the
//! pacing. With `--transactional-id`, the records go in transactions of
//! `--transaction-records` (see [`transactional`]): records/s then count committed
//! records only, and commits/s and the commit latency are reported too. Without
//! `--bootstrap-server` it
//! runs against an embedded cluster in this process (whose CPU then counts too);
//! for the producer's own ceiling run `herald mock --discard` in another process and
//! point `--bootstrap-server` at it.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use hdrhistogram::Histogram;
use herald::mock::MockCluster;
use herald::{Admin, NewTopic, Producer, Record};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parking_lot::Mutex;
use serde_json::json;

use crate::CliError;
use crate::produce::split_property;

/// One record in this many has its latency measured.
const SAMPLE_EVERY: u64 = 8;

/// Arguments of `herald bench`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    herald bench --num-records 2000000 --record-size 100\n  \
    herald bench -b 127.0.0.1:9092 -t perf --num-records 5000000 --record-size 1024 -X compression.type=lz4 --json\n  \
    herald bench -b 127.0.0.1:9092 -t perf --num-records 1000000 --transactional-id perf-tx --transaction-records 1000")]
pub struct BenchArgs {
    /// The cluster. Without it, an embedded cluster in this process.
    #[arg(short = 'b', long = "bootstrap-server", alias = "bootstrap-servers", value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,

    /// The topic (created with --partitions if it does not exist).
    #[arg(short = 't', long, default_value = "herald-bench")]
    pub topic: String,

    /// Partitions of the topic when this creates it.
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,

    /// How many records to measure (after the warmup).
    #[arg(long, default_value_t = 1_000_000)]
    pub num_records: u64,

    /// Bytes of each record's value (ignored with --payload-file).
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,

    /// Values from this file, one per line, used in turn.
    #[arg(long, value_name = "FILE")]
    pub payload_file: Option<PathBuf>,

    /// Records per second to aim for; -1 for as fast as possible.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub throughput: i64,

    /// Records sent first and left out of the figures (at --throughput, paced too).
    #[arg(long, default_value_t = 0)]
    pub warmup_records: u64,

    /// Producer properties from a Java .properties file (as `herald produce -F`);
    /// --bootstrap-server and -X override it.
    #[arg(short = 'F', long = "producer.config", value_name = "FILE")]
    pub producer_config: Option<PathBuf>,

    /// Set any producer property (repeatable).
    #[arg(short = 'X', long = "property", value_name = "NAME=VALUE")]
    pub properties: Vec<String>,

    /// Produce in transactions (KIP-98) with this `transactional.id`:
    /// `init_transactions()` once, then for every --transaction-records records
    /// `begin_transaction()`, the sends, and `commit_transaction()` awaited before
    /// the next transaction begins. Records/s count committed records only;
    /// commits/s and the commit latency (from the call of `commit_transaction()`,
    /// which sends what is still queued, until it returns) are reported too.
    /// The warmup is rounded up to whole transactions. Runs at full speed only
    /// (no --throughput). `-X transactional.id=ID` does the same.
    #[arg(long, value_name = "ID")]
    pub transactional_id: Option<String>,

    /// Records per transaction with --transactional-id (the last one of the run
    /// may have fewer).
    #[arg(long, value_name = "N", default_value_t = 1000, requires = "transactional_id",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub transaction_records: u64,

    /// With the embedded cluster: acknowledge without storing (the producer's own
    /// ceiling; the cluster's CPU still counts, since it runs in this process).
    #[arg(long)]
    pub discard: bool,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

struct Totals {
    errors: u64,
    first_error: Option<String>,
    latency_us: Histogram<u64>,
}

static ERRORS: AtomicU64 = AtomicU64::new(0);
static MEASURING: AtomicBool = AtomicBool::new(false);
static FIRST_ERROR: Mutex<Option<String>> = Mutex::new(None);
static LATENCY_US: LazyLock<Mutex<Histogram<u64>>> = LazyLock::new(|| {
    // 1 µs to 10 min at 3 significant digits: constant, valid bounds.
    Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"))
});

fn reset_counters() {
    ERRORS.store(0, Ordering::Relaxed);
    MEASURING.store(false, Ordering::Relaxed);
    *FIRST_ERROR.lock() = None;
    LATENCY_US.lock().reset();
}

/// The callback of an unsampled record: counts failures.
fn counted(r: herald::Result<herald::RecordMetadata>) {
    if let Err(e) = r {
        ERRORS.fetch_add(1, Ordering::Relaxed);
        FIRST_ERROR.lock().get_or_insert_with(|| e.to_string());
    }
}

/// The callback of a timed record: its latency too, from `since` (when its send
/// began, or when it was due at a fixed rate).
fn timed(r: herald::Result<herald::RecordMetadata>, since: Instant) {
    let us = since.elapsed().as_micros().max(1) as u64;
    if r.is_ok() && MEASURING.load(Ordering::Relaxed) {
        let _ = LATENCY_US.lock().record(us.min(600_000_000));
    }
    counted(r);
}

fn cpu_and_rss() -> (Duration, u64) {
    // SAFETY: getrusage writes into the struct we pass and reads nothing else.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } == 0;
    if !ok {
        return (Duration::ZERO, 0);
    }
    let t = |tv: libc::timeval| Duration::new(tv.tv_sec as u64, (tv.tv_usec as u32) * 1000);
    (t(u.ru_utime) + t(u.ru_stime), (u.ru_maxrss as u64) * 1024)
}

fn payloads(args: &BenchArgs) -> Result<Vec<Bytes>, CliError> {
    if let Some(path) = &args.payload_file {
        let text = std::fs::read(path)
            .map_err(|e| CliError::usage(format!("--payload-file {}: {e}", path.display())))?;
        let lines: Vec<Bytes> =
            text.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(Bytes::copy_from_slice).collect();
        if lines.is_empty() {
            return Err(CliError::usage(format!("--payload-file {}: no payloads", path.display())));
        }
        return Ok(lines);
    }
    // Deterministic, JSON-like, compressible as real data is (not random bytes).
    let mut rng = fastrand::Rng::with_seed(0x6865_7261_6c64);
    Ok((0..64)
        .map(|i| {
            let mut s = format!(
                "{{\"truck\":\"truck_id_{}\",\"lat\":{:.5},\"lon\":{:.5},\"payload\":\"",
                i % 17,
                52.0 + rng.f64(),
                13.0 + rng.f64()
            );
            while s.len() + 2 < args.record_size {
                s.push((b'a' + rng.u8(0..26)) as char);
            }
            s.push_str("\"}");
            let mut b = s.into_bytes();
            b.resize(args.record_size, b' ');
            Bytes::from(b)
        })
        .collect())
}

/// What a send loop learned: when the measured records started, the CPU time
/// then, and the records `send` refused.
struct Run {
    started: Instant,
    cpu_at_measure: Duration,
    refused: u64,
    first_refusal: Option<String>,
}

impl Run {
    fn new() -> Run {
        Run { started: Instant::now(), cpu_at_measure: cpu_and_rss().0, refused: 0, first_refusal: None }
    }

    /// The measured records start at `at`.
    fn measure_from(&mut self, at: Instant) {
        self.started = at;
        self.cpu_at_measure = cpu_and_rss().0;
        MEASURING.store(true, Ordering::Relaxed);
    }

    /// Record `i` was handed to `send`, with this outcome.
    #[inline]
    fn sent(&mut self, i: u64, sent: herald::Result<()>, progress: &ProgressBar) {
        if let Err(e) = sent {
            self.refused += 1;
            self.first_refusal.get_or_insert_with(|| e.to_string());
        }
        if i % 4096 == 0 {
            progress.set_position(i);
        }
    }
}

/// The send loop at a fixed rate, on a plain thread: record `i` is due at
/// `start + i / rate` (the warmup included, so the measured records start in the
/// steady state); the loop never sends a record before it is due (it sleeps with
/// the OS, whose timer is finer than tokio's whole milliseconds) and times every
/// measured record from when it was due, not from when its send began: if a send
/// waits, the records that should have gone out meanwhile count that wait (no
/// coordinated omission), and sending early earns nothing. The peers of
/// `bench/compare` measure the same way.
#[allow(clippy::too_many_arguments)]
fn paced(
    handle: &tokio::runtime::Handle,
    producer: &Producer,
    topic: &herald::Topic,
    payloads: &[Bytes],
    rate: f64,
    warmup: u64,
    total: u64,
    progress: &ProgressBar,
) -> Run {
    let start = Instant::now();
    let mut run = Run::new();
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        if i == warmup {
            run.measure_from(due);
        }
        let value = payloads[(i as usize) % payloads.len()].clone();
        let record = Record::to(topic).value(value);
        let sent = if i >= warmup {
            handle.block_on(producer.send_with_callback(record, move |r| timed(r, due)))
        } else {
            handle.block_on(producer.send_with_callback(record, counted))
        };
        run.sent(i, sent, progress);
    }
    run
}

/// What the transactional send loop adds to [`Run`].
struct TxnRun {
    /// Measured records whose transaction committed.
    committed: u64,
    /// Records (warmup included) of transactions that did not commit.
    uncommitted: u64,
    /// Measured transactions committed, and aborted after a failed commit.
    commits: u64,
    aborts: u64,
    first_failure: Option<String>,
    /// From the call of `commit_transaction()` until it returned, per measured commit.
    commit_us: Histogram<u64>,
}

/// The send loop in transactions of `per_txn` records, as fast as it goes: for
/// each, `begin_transaction()`, the sends (latency sampled as unpaced), then
/// `commit_transaction()` awaited, which sends what is still queued and returns
/// once every record is written and the coordinator committed. A transaction
/// that fails to commit is aborted and its records counted as not committed; a
/// fatal error (fenced, refused by the coordinator) ends the run. `warmup` is a
/// whole number of transactions, so the measured phase starts with one.
#[allow(clippy::too_many_arguments)]
async fn transactional(
    producer: &Producer,
    topic: &herald::Topic,
    payloads: &[Bytes],
    per_txn: u64,
    warmup: u64,
    total: u64,
    progress: &ProgressBar,
) -> Result<(Run, TxnRun), CliError> {
    producer.init_transactions().await?;
    let mut run = Run::new();
    let mut txn = TxnRun {
        committed: 0,
        uncommitted: 0,
        commits: 0,
        aborts: 0,
        first_failure: None,
        commit_us: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"),
    };
    let mut first = 0;
    while first < total {
        if first == warmup {
            run.measure_from(Instant::now());
        }
        let end = (first + per_txn).min(total);
        producer.begin_transaction()?;
        for i in first..end {
            let value = payloads[(i as usize) % payloads.len()].clone();
            let record = Record::to(topic).value(value);
            let sent = if i % SAMPLE_EVERY == 0 && i >= warmup {
                let at = Instant::now();
                producer.send_with_callback(record, move |r| timed(r, at)).await
            } else {
                producer.send_with_callback(record, counted).await
            };
            run.sent(i, sent, progress);
        }
        let at = Instant::now();
        let committed = producer.commit_transaction().await;
        let us = at.elapsed().as_micros().max(1) as u64;
        let measured = first >= warmup;
        match committed {
            Ok(()) => {
                if measured {
                    txn.commits += 1;
                    txn.committed += end - first;
                    let _ = txn.commit_us.record(us.min(600_000_000));
                }
            }
            Err(e) if e.is_transaction_abortable() => {
                txn.uncommitted += end - first;
                txn.aborts += u64::from(measured);
                txn.first_failure.get_or_insert_with(|| e.to_string());
                producer.abort_transaction().await?;
            }
            Err(e) => return Err(e.into()),
        }
        first = end;
    }
    Ok((run, txn))
}

pub async fn run(mut args: BenchArgs) -> Result<ExitCode, CliError> {
    let config_file =
        crate::produce::config_file(&mut args.bootstrap_server, args.producer_config.as_deref())?;
    // 'static payloads: cloning one for a record is then a copy of a pointer, not a
    // reference count touched twice per record (as Java's perf test reuses its
    // byte arrays). This process ends with the run, so leaking them is fine.
    let payloads: Vec<Bytes> = payloads(&args)?
        .into_iter()
        .map(|b| Bytes::from_static(Box::leak(b.to_vec().into_boxed_slice())))
        .collect();
    let embedded = match &args.bootstrap_server {
        Some(_) => None,
        None => {
            let c = MockCluster::builder().brokers(1).start().await?;
            c.set_store_records(!args.discard);
            Some(c)
        }
    };
    let bootstrap = match &embedded {
        Some(c) => c.bootstrap(),
        None => args.bootstrap_server.clone().unwrap_or_default(),
    };
    // The -X security settings (security.protocol, ssl.*, sasl.*) apply to the
    // admin client that creates the topic too.
    let mut props: Vec<(&str, &str)> = config_file.iter().flat_map(|f| f.iter()).collect();
    props.push(("bootstrap.servers", bootstrap.as_str()));
    for p in &args.properties {
        props.push(split_property(p).map_err(|e| CliError::usage(format!("-X {e}")))?);
    }
    // Transactions: --transactional-id, or transactional.id from -X / -F.
    let txn_id = args.transactional_id.clone().or_else(|| {
        props.iter().rev().find(|(k, _)| k.trim() == "transactional.id").map(|(_, v)| v.trim().to_owned())
    });
    let per_txn = txn_id.as_ref().map(|_| args.transaction_records);
    if per_txn.is_some() && args.throughput > 0 {
        return Err(CliError::usage("--transactional-id runs at full speed only (no --throughput)"));
    }
    let admin = Admin::from_properties(props)?;
    if admin.describe_topic(&args.topic).await.is_err() {
        admin.create_topic(NewTopic::new(args.topic.clone(), args.partitions, 1)).await?;
    }
    let mut builder = Producer::builder()
        .client_id("herald-bench")
        .properties(config_file.iter().flat_map(|f| f.iter()))
        .bootstrap_servers(&bootstrap);
    for p in &args.properties {
        let (k, v) = split_property(p).map_err(|e| CliError::usage(format!("-X {e}")))?;
        builder = builder.set(k, v);
    }
    if let Some(id) = &args.transactional_id {
        builder = builder.set("transactional.id", id);
    }
    let producer = builder.build()?;
    let built = Instant::now();
    // In transactions the measured phase starts with a transaction: the warmup is
    // rounded up to whole ones.
    let warmup = match per_txn {
        Some(n) => args.warmup_records.div_ceil(n) * n,
        None => args.warmup_records,
    };
    let total = warmup + args.num_records;
    let progress = if !args.json && std::io::stderr().is_terminal() {
        let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} records sent ({per_sec}, eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };

    // Outcomes come back through delivery callbacks on the producer's own task, as
    // with Java's perf test: an unsampled record's callback captures nothing (no
    // allocation) and counts into the statics; a sampled one also carries its
    // send time.
    reset_counters();
    let topic = producer.topic(&args.topic);
    let mut txn = None;
    let run = if let Some(n) = per_txn {
        let (run, t) = transactional(&producer, &topic, &payloads, n, warmup, total, &progress).await?;
        txn = Some(t);
        run
    } else if args.throughput > 0 {
        let (producer, topic, payloads) = (producer.clone(), topic.clone(), payloads.clone());
        let (progress, rate) = (progress.clone(), args.throughput as f64);
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            paced(&handle, &producer, &topic, &payloads, rate, warmup, total, &progress)
        })
        .await
        .map_err(|e| CliError::usage(format!("the paced send loop failed: {e}")))?
    } else {
        let mut run = Run::new();
        for i in 0..total {
            if i == warmup {
                run.measure_from(Instant::now());
            }
            let value = payloads[(i as usize) % payloads.len()].clone();
            let record = Record::to(&topic).value(value);
            let sent = if i % SAMPLE_EVERY == 0 && i >= warmup {
                let at = Instant::now();
                producer.send_with_callback(record, move |r| timed(r, at)).await
            } else {
                producer.send_with_callback(record, counted).await
            };
            run.sent(i, sent, &progress);
        }
        run
    };
    let Run { started, cpu_at_measure, refused, first_refusal } = run;
    producer.flush().await?;
    let elapsed = started.elapsed();
    let (cpu1, rss) = cpu_and_rss();
    progress.finish_and_clear();
    producer.close(Duration::from_secs(60)).await?;
    // The producer's own view of the whole run, warm-up included.
    let summary = crate::stats::Summary::of(&producer.metrics(), built.elapsed());
    let totals = Totals {
        errors: ERRORS.load(Ordering::Relaxed),
        first_error: FIRST_ERROR.lock().take(),
        latency_us: LATENCY_US.lock().clone(),
    };

    // Records measured: in transactions, those whose transaction committed.
    let records = txn.as_ref().map_or(args.num_records, |t| t.committed);
    let n = records.max(1) as f64;
    let secs = elapsed.as_secs_f64().max(1e-9);
    let bytes_per_record = payloads.iter().map(|p| p.len()).sum::<usize>() as f64 / payloads.len() as f64;
    let cpu = cpu1.saturating_sub(cpu_at_measure);
    let h = &totals.latency_us;
    let ms = |v: u64| v as f64 / 1000.0;
    // In transactions, a record that failed or was refused failed its transaction:
    // the errors are the records that were not committed.
    let errors = match &txn {
        Some(t) => t.uncommitted,
        None => totals.errors + refused,
    };
    let mut report = json!({
        "client": "herald",
        "version": env!("CARGO_PKG_VERSION"),
        "records": records,
        "seconds": secs,
        "records_per_sec": n / secs,
        "mib_per_sec": n * bytes_per_record / secs / (1024.0 * 1024.0),
        "latency_ms": {
            "avg": h.mean() / 1000.0,
            "p50": ms(h.value_at_quantile(0.50)),
            "p95": ms(h.value_at_quantile(0.95)),
            "p99": ms(h.value_at_quantile(0.99)),
            "p999": ms(h.value_at_quantile(0.999)),
            "max": ms(h.max()),
        },
        "cpu_seconds": cpu.as_secs_f64(),
        "cpu_ns_per_record": cpu.as_nanos() as f64 / n,
        "peak_rss_bytes": rss,
        "errors": errors,
        "embedded": embedded.is_some(),
        "producer": summary.to_json(),
    });
    if let (Some(t), Some(n_txn)) = (&txn, per_txn) {
        let c = &t.commit_us;
        report["transactions"] = json!({
            "transactional_id": txn_id,
            "records_per_transaction": n_txn,
            "commits": t.commits,
            "aborted": t.aborts,
            "commits_per_sec": t.commits as f64 / secs,
            "commit_latency_ms": {
                "avg": c.mean() / 1000.0,
                "p50": ms(c.value_at_quantile(0.50)),
                "p95": ms(c.value_at_quantile(0.95)),
                "p99": ms(c.value_at_quantile(0.99)),
                "p999": ms(c.value_at_quantile(0.999)),
                "max": ms(c.max()),
            },
        });
    }
    if args.json {
        println!("{report}");
    } else {
        println!(
            "{} records {}, {:.0} records/s ({:.2} MiB/s), latency avg {:.2} ms, p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            records,
            if txn.is_some() { "committed" } else { "sent" },
            n / secs,
            n * bytes_per_record / secs / (1024.0 * 1024.0),
            h.mean() / 1000.0,
            ms(h.value_at_quantile(0.50)),
            ms(h.value_at_quantile(0.95)),
            ms(h.value_at_quantile(0.99)),
            ms(h.value_at_quantile(0.999)),
            ms(h.max()),
        );
        println!(
            "CPU {:.2} s ({:.0} ns per record{}), peak RSS {:.1} MiB, {} errors",
            cpu.as_secs_f64(),
            cpu.as_nanos() as f64 / n,
            if embedded.is_some() { ", embedded cluster included" } else { "" },
            rss as f64 / (1024.0 * 1024.0),
            errors
        );
        if let (Some(t), Some(n_txn)) = (&txn, per_txn) {
            let c = &t.commit_us;
            println!(
                "{} transactions of {} records committed, {:.1} commits/s, commit latency avg {:.2} ms, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} aborted",
                t.commits,
                n_txn,
                t.commits as f64 / secs,
                c.mean() / 1000.0,
                ms(c.value_at_quantile(0.50)),
                ms(c.value_at_quantile(0.99)),
                ms(c.max()),
                t.aborts
            );
        }
    }
    let first_error = match txn {
        Some(t) => t.first_failure,
        None => totals.first_error.or(first_refusal),
    };
    if let Some(e) = first_error {
        let what = if per_txn.is_some() { "not committed" } else { "failed" };
        eprintln!("herald bench: {errors} records {what}; first: {e}");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
