//! Transactional chaos: transactions of a few hundred records commit while the
//! transaction coordinator and partition leaders are SIGKILLed, brokers paused and
//! connections reset; afterwards the log is checked against what each commit said.
//!
//! The producer writes transactions of `RECORDS` records over a topic of
//! replication factor 3 (`min.insync.replicas=2`), through the fault proxy. Each
//! transaction ends one of three ways, by what herald said:
//! - **committed** (`commit_transaction` returned `Ok`): every record of it must be
//!   visible to a `read_committed` reader, exactly once;
//! - **not committed** (aborted, or an error that says it was not written): none
//!   may be visible;
//! - **maybe committed** (an error with `may_have_been_written`): all or none.
//!
//! A fatal error (the producer fenced after a coordinator failover, say) gets a
//! new producer with the same `transactional.id`, as an application would.
//! `HERALD_CHAOS_SECS` sets the duration (default 60 s real, 20 s embedded); the
//! report is printed and written to `target/chaos/`.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use herald::{Error, NewTopic, Producer, Record};
use support::faults::{FaultKind, inject};
use support::proxy::KafkaProxy;
use support::{
    Backend, Consumed, admin, backend, bootstrap, consume_with_java_properties, harness_cluster, repo_root,
    topic_name,
};

const PARTITIONS: i32 = 6;
const RECORDS: usize = 300;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Kafka's `transaction.state.log.num.partitions` in the harness (harness/kafka).
const TXN_STATE_PARTITIONS: i32 = 5;

/// What herald said about a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Said {
    Committed,
    NotCommitted,
    MaybeCommitted,
}

/// Java's `String.hashCode`, for the transaction coordinator's partition
/// (`TransactionStateManager.partitionFor`: `Utils.abs(id.hashCode) % partitions`).
fn java_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The broker coordinating `transactional_id`: the leader of its partition of
/// `__transaction_state` (on the embedded cluster, the one it names).
async fn coordinator_of(transactional_id: &str) -> Option<i32> {
    if let Some(c) = support::embedded() {
        return c.coordinator(transactional_id);
    }
    let h = java_hash(transactional_id);
    let p = if h == i32::MIN { 0 } else { h.abs() } % TXN_STATE_PARTITIONS;
    admin().describe_topic("__transaction_state").await.ok()?.partitions.get(p as usize)?.leader
}

fn producer(proxy: &KafkaProxy, id: &str) -> Producer {
    Producer::builder()
        .bootstrap_servers(proxy.bootstrap())
        .set("transactional.id", id)
        .set("transaction.timeout.ms", "60000")
        .linger(Duration::from_millis(5))
        .request_timeout(REQUEST_TIMEOUT)
        .delivery_timeout(Duration::from_secs(30))
        .max_block(Duration::from_secs(30))
        .build()
        .expect("transactional producer")
}

/// `init_transactions`, retried (it resumes) while the cluster recovers.
async fn init(p: &Producer) {
    for attempt in 1..=10 {
        match p.init_transactions().await {
            Ok(()) => return,
            Err(e) if !e.is_transaction_fatal() && attempt < 10 => {
                eprintln!("txn-chaos: init_transactions: {e}; again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => panic!("init_transactions failed for good: {e}"),
        }
    }
}

/// Ends the open transaction: commit; after a timeout, commit again (it resumes);
/// after an abortable error, abort. Returns what herald said, and whether the
/// producer must be replaced.
async fn end(p: &Producer) -> (Said, bool) {
    let mut maybe = false;
    for _ in 0..5 {
        match p.commit_transaction().await {
            Ok(()) => return (Said::Committed, false),
            Err(e) if e.is_timeout() => {
                maybe |= e.may_have_been_written();
                eprintln!("txn-chaos: commit timed out ({e}); resuming");
            }
            Err(e) if e.is_transaction_abortable() => {
                maybe |= e.may_have_been_written();
                eprintln!("txn-chaos: commit: {e}; aborting");
                return abort(p, maybe).await;
            }
            Err(e) => {
                eprintln!("txn-chaos: commit failed for good: {e}");
                return (
                    if maybe || e.may_have_been_written() {
                        Said::MaybeCommitted
                    } else {
                        Said::NotCommitted
                    },
                    true,
                );
            }
        }
    }
    (if maybe { Said::MaybeCommitted } else { Said::NotCommitted }, true)
}

async fn abort(p: &Producer, maybe: bool) -> (Said, bool) {
    for _ in 0..5 {
        match p.abort_transaction().await {
            Ok(()) => return (Said::NotCommitted, false),
            Err(e) if e.is_timeout() => eprintln!("txn-chaos: abort timed out; resuming"),
            Err(e) => {
                eprintln!("txn-chaos: abort failed: {e}");
                break;
            }
        }
    }
    // Neither committed nor certainly aborted by us: the coordinator aborts it
    // (on the next init, or at its timeout), unless a commit got through first.
    (if maybe { Said::MaybeCommitted } else { Said::NotCommitted }, true)
}

struct Report {
    seconds: u64,
    said: BTreeMap<Said, usize>,
    producers: usize,
    faults: BTreeMap<FaultKind, usize>,
    /// Committed transactions with a record missing or twice.
    broken_commits: usize,
    /// Not-committed transactions with a record visible.
    visible_aborts: usize,
    /// Maybe-committed transactions partly visible.
    partial: usize,
    /// Records visible twice.
    duplicated: usize,
}

impl Report {
    fn render(&self) -> String {
        let said: Vec<String> = self.said.iter().map(|(k, n)| format!("{k:?}={n}")).collect();
        let faults: Vec<String> = self.faults.iter().map(|(k, n)| format!("{k:?}={n}")).collect();
        format!(
            "transactional chaos ({} s, backend {}, {RECORDS} records per transaction): transactions [{}], \
             producers {}; committed but not all visible once {}, not committed but visible {}, \
             maybe-committed partly visible {}, records duplicated {}; faults [{}]",
            self.seconds,
            if support::embedded().is_some() { "embedded" } else { "kafka" },
            said.join(", "),
            self.producers,
            self.broken_commits,
            self.visible_aborts,
            self.partial,
            self.duplicated,
            faults.join(", "),
        )
    }
}

async fn run(seconds: u64) -> Report {
    let topic = topic_name("txn-chaos");
    admin()
        .create_topic(NewTopic::new(topic.clone(), PARTITIONS, 3).config("min.insync.replicas", "2"))
        .await
        .expect("create the chaos topic");
    let proxy = KafkaProxy::start(&bootstrap()).await;
    let id = topic_name("txn-chaos-id");
    let deadline = Instant::now() + Duration::from_secs(seconds);

    let injector = {
        let (topic, proxy, id) = (topic.clone(), proxy.clone(), id.clone());
        tokio::spawn(async move {
            let mut done = Vec::new();
            let mut i = 0;
            tokio::time::sleep(Duration::from_secs(3)).await;
            while Instant::now() + Duration::from_secs(10) < deadline {
                let kind = match i % 4 {
                    0 => match coordinator_of(&id).await {
                        Some(node) => FaultKind::KillNode(node),
                        None => FaultKind::KillLeader,
                    },
                    1 => FaultKind::KillLeader,
                    2 => FaultKind::PauseBroker,
                    _ => FaultKind::ResetConnections,
                };
                i += 1;
                eprintln!("txn-chaos: injecting {kind:?}");
                inject(kind, &topic, PARTITIONS, REQUEST_TIMEOUT, &proxy).await;
                done.push(match kind {
                    // One row for every coordinator kill, whichever node it was.
                    FaultKind::KillNode(_) => FaultKind::KillNode(-1),
                    k => k,
                });
                tokio::time::sleep(Duration::from_millis(fastrand::u64(1_000..3_000))).await;
            }
            done
        })
    };

    // Transactions until the deadline: (values, what herald said).
    let mut txns: Vec<(Vec<String>, Said)> = Vec::new();
    let mut p = producer(&proxy, &id);
    let mut producers = 1;
    init(&p).await;
    while Instant::now() < deadline {
        let n = txns.len();
        if let Err(e) = p.begin_transaction() {
            panic!("begin_transaction in a ready producer: {e}");
        }
        let mut values = Vec::with_capacity(RECORDS);
        let mut futures = Vec::with_capacity(RECORDS);
        for i in 0..RECORDS {
            let v = format!("t{n}-r{i}");
            match p.send(Record::new(&topic).key(format!("k{}", i % 37)).value(v.clone())).await {
                Ok(f) => futures.push(f),
                Err(e) => eprintln!("txn-chaos: transaction {n}: send refused: {e}"),
            }
            values.push(v);
        }
        let (said, replace) = end(&p).await;
        for f in futures {
            // Every record resolves; the transaction's outcome is what counts.
            let _: Result<_, Error> = f.await;
        }
        txns.push((values, said));
        if replace {
            let _ = p.close(Duration::from_secs(5)).await;
            p = producer(&proxy, &id);
            producers += 1;
            init(&p).await;
        }
    }
    let faults = injector.await.unwrap();
    let _ = p.close(Duration::from_secs(30)).await;

    // Check every transaction against the log as read_committed readers see it.
    let consumed: Vec<Consumed> =
        consume_with_java_properties(&topic, &["isolation.level=read_committed"]).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for c in &consumed {
        *seen.entry(String::from_utf8(c.value.clone().unwrap_or_default()).unwrap()).or_default() += 1;
    }
    let mut report = Report {
        seconds,
        said: BTreeMap::new(),
        producers,
        faults: BTreeMap::new(),
        broken_commits: 0,
        visible_aborts: 0,
        partial: 0,
        duplicated: seen.values().filter(|n| **n > 1).count(),
    };
    for f in faults {
        *report.faults.entry(f).or_default() += 1;
    }
    for (n, (values, said)) in txns.iter().enumerate() {
        *report.said.entry(*said).or_default() += 1;
        let visible = values.iter().filter(|v| seen.contains_key(*v)).count();
        let once = values.iter().all(|v| seen.get(v) == Some(&1));
        let bad = match said {
            Said::Committed => !once,
            Said::NotCommitted => visible > 0,
            Said::MaybeCommitted => visible != 0 && !once,
        };
        if bad {
            eprintln!(
                "txn-chaos: transaction {n} said {said:?}: {visible} of {} records visible",
                values.len()
            );
            match said {
                Said::Committed => report.broken_commits += 1,
                Said::NotCommitted => report.visible_aborts += 1,
                Said::MaybeCommitted => report.partial += 1,
            }
        }
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_under_chaos() {
    if let Backend::Kafka(_) = backend() {
        harness_cluster();
    }
    let default_secs = if support::embedded().is_some() { 20 } else { 60 };
    let seconds: u64 =
        std::env::var("HERALD_CHAOS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(default_secs);
    let report = run(seconds).await;
    let dir = repo_root().join("target/chaos");
    let _ = std::fs::create_dir_all(&dir);
    let _ =
        std::fs::write(dir.join(format!("transactional-{}.txt", std::process::id())), report.render() + "\n");
    eprintln!("{}", report.render());
    assert_eq!(report.broken_commits, 0, "{}", report.render());
    assert_eq!(report.visible_aborts, 0, "{}", report.render());
    assert_eq!(report.partial, 0, "{}", report.render());
    assert_eq!(report.duplicated, 0, "{}", report.render());
    assert!(report.said.get(&Said::Committed).copied().unwrap_or(0) > 0, "{}", report.render());
    assert!(report.faults.values().sum::<usize>() >= 2, "faults were injected: {}", report.render());
}
