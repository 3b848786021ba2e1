//! Chaos: brokers die, freeze and drop off the network while herald produces, and
//! afterwards every record is accounted for.
//!
//! A steady stream of keyed records, each carrying its key's sequence number, goes
//! through the fault proxy (`support/proxy.rs`) to a 3-broker cluster: a topic with
//! replication factor 3 and `min.insync.replicas=2`. Meanwhile, one fault at a time:
//! SIGKILL the leader of a partition and restart it; SIGSTOP a broker for longer
//! than `request.timeout.ms` and resume it; blackhole the proxy; reset every
//! connection through it. Then the Java consumer reads the topic and the test
//! counts: acknowledged records missing (lost), records present twice
//! (duplicated), keys whose records are out of send order, and failed records
//! whose error said "not written" yet are in the log (dishonest).
//!
//! On the real cluster (`scripts/test.sh`'s cluster phase, or `scripts/chaos.sh
//! SECONDS` for a long run) the faults are real signals to real brokers. On the
//! embedded cluster they are its stand-ins: stopping a broker, making it too slow
//! to answer.
//!
//! `HERALD_CHAOS_SECS` sets the duration (default: 100 s real, 30 s embedded); the
//! report is printed and written to `target/chaos/`.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald::{Acks, NewTopic, Producer, Record};
use parking_lot::Mutex;
use support::faults::{FaultKind, inject};
use support::proxy::KafkaProxy;
use support::{
    Backend, admin, backend, bootstrap, consume_with_java, harness_cluster, repo_root, topic_name,
};

const PARTITIONS: i32 = 6;
const KEYS: usize = 60;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Where an acknowledged record went, and when.
#[derive(Clone, Copy)]
struct Acked {
    partition: i32,
    sent: Instant,
    acked: Instant,
}

/// A leader kill: the node, when it died, the partitions it led.
type Kill = (i32, Instant, Vec<i32>);

/// (key, seq) -> the record's outcome: acknowledged, or failed (saying whether it
/// may have been written).
type Outcome = Result<Acked, bool>;

#[derive(Default)]
struct Outcomes {
    by_record: HashMap<(usize, u64), Outcome>,
}

struct Report {
    idempotence: bool,
    seconds: u64,
    sent: usize,
    acknowledged: usize,
    failed: usize,
    failed_maybe_written: usize,
    lost: usize,
    duplicated: usize,
    out_of_order_keys: usize,
    dishonest: usize,
    faults: BTreeMap<FaultKind, usize>,
    recovery_ms: Vec<u128>,
}

impl Report {
    fn percentile(&self, p: f64) -> Option<u128> {
        if self.recovery_ms.is_empty() {
            return None;
        }
        let mut v = self.recovery_ms.clone();
        v.sort_unstable();
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        Some(v[i])
    }

    fn render(&self) -> String {
        let faults: Vec<String> = self.faults.iter().map(|(k, n)| format!("{k:?}={n}")).collect();
        format!(
            "chaos ({} idempotence, {} s, backend {}): sent {}, acknowledged {}, failed {} ({} maybe written), \
             lost {}, duplicated {}, keys out of order {}, dishonest errors {}; faults [{}]; \
             recovery after leader kill p50 {} ms, p99 {} ms ({} samples)",
            if self.idempotence { "with" } else { "without" },
            self.seconds,
            if support::embedded().is_some() { "embedded" } else { "kafka" },
            self.sent,
            self.acknowledged,
            self.failed,
            self.failed_maybe_written,
            self.lost,
            self.duplicated,
            self.out_of_order_keys,
            self.dishonest,
            faults.join(", "),
            self.percentile(0.5).map_or("-".into(), |v| v.to_string()),
            self.percentile(0.99).map_or("-".into(), |v| v.to_string()),
            self.recovery_ms.len(),
        )
    }
}

async fn run(idempotence: bool, seconds: u64) -> Report {
    let topic = topic_name(if idempotence { "chaos" } else { "chaos-noidem" });
    admin()
        .create_topic(NewTopic::new(topic.clone(), PARTITIONS, 3).config("min.insync.replicas", "2"))
        .await
        .expect("create the chaos topic");
    let proxy = KafkaProxy::start(&bootstrap()).await;
    let producer = Producer::builder()
        .bootstrap_servers(proxy.bootstrap())
        .acks(Acks::All)
        .idempotence(idempotence)
        .linger(Duration::from_millis(5))
        .request_timeout(REQUEST_TIMEOUT)
        .delivery_timeout(Duration::from_secs(60))
        .max_block(Duration::from_secs(60))
        .build()
        .unwrap();
    let outcomes: Arc<Mutex<Outcomes>> = Arc::default();
    // (killed node, when, the partitions it led)
    let kills: Arc<Mutex<Vec<Kill>>> = Arc::default();
    let mut faults: BTreeMap<FaultKind, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(seconds);

    // The faults, one at a time, in turn, with quiet spells between.
    let injector = {
        let topic = topic.clone();
        let proxy = proxy.clone();
        let kills = kills.clone();
        tokio::spawn(async move {
            let kinds = [
                FaultKind::KillLeader,
                FaultKind::PauseBroker,
                FaultKind::Blackhole,
                FaultKind::ResetConnections,
            ];
            let mut done = Vec::new();
            let mut i = 0;
            tokio::time::sleep(Duration::from_secs(3)).await;
            while Instant::now() + Duration::from_secs(10) < deadline {
                let kind = kinds[i % kinds.len()];
                i += 1;
                let led: Vec<i32> = admin()
                    .describe_topic(&topic)
                    .await
                    .map(|t| t.partitions.iter().map(|p| p.leader.unwrap_or(-1)).collect())
                    .unwrap_or_default();
                eprintln!("chaos: injecting {kind:?}");
                if let Some((node, at)) = inject(kind, &topic, PARTITIONS, REQUEST_TIMEOUT, &proxy).await {
                    let parts: Vec<i32> =
                        led.iter().enumerate().filter(|(_, l)| **l == node).map(|(p, _)| p as i32).collect();
                    eprintln!(
                        "chaos: killed node {node}; before the kill it led partitions {parts:?} (leaders {led:?})"
                    );
                    kills.lock().push((node, at, parts));
                }
                done.push(kind);
                tokio::time::sleep(Duration::from_millis(fastrand::u64(2_000..5_000))).await;
            }
            done
        })
    };

    // The steady stream: about 1000 records a second, keys in turn.
    let mut sent = 0usize;
    let mut next_seq = vec![0u64; KEYS];
    let mut waiters = Vec::new();
    while Instant::now() < deadline {
        for _ in 0..10 {
            let k = sent % KEYS;
            let seq = next_seq[k];
            next_seq[k] += 1;
            sent += 1;
            let value = format!("key-{k}:{seq}:{}", "x".repeat(64));
            let record = Record::new(&topic).key(format!("key-{k}")).value(value);
            let sent_at = Instant::now();
            match producer.send(record).await {
                Ok(f) => {
                    let outcomes = outcomes.clone();
                    waiters.push(tokio::spawn(async move {
                        let r = match f.await {
                            Ok(md) => {
                                Ok(Acked { partition: md.partition(), sent: sent_at, acked: Instant::now() })
                            }
                            Err(e) => Err(e.may_have_been_written()),
                        };
                        outcomes.lock().by_record.insert((k, seq), r);
                    }));
                }
                Err(e) => {
                    outcomes.lock().by_record.insert((k, seq), Err(e.may_have_been_written()));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for kind in injector.await.unwrap() {
        *faults.entry(kind).or_default() += 1;
    }
    proxy.blackhole(false);
    producer.close(Duration::from_secs(90)).await.expect("close delivers or fails everything");
    for w in waiters {
        w.await.unwrap();
    }

    // Account for every record.
    let consumed = consume_with_java(&topic).await;
    let outcomes = std::mem::take(&mut outcomes.lock().by_record);
    assert_eq!(outcomes.len(), sent, "every record handed to send resolved exactly once");
    let mut in_log: HashMap<(usize, u64), usize> = HashMap::new();
    let mut order: HashMap<usize, Vec<(i32, i64, u64)>> = HashMap::new();
    for c in &consumed {
        let v = String::from_utf8(c.value.clone().unwrap_or_default()).unwrap();
        let mut parts = v.split(':');
        let k: usize = parts.next().unwrap().trim_start_matches("key-").parse().unwrap();
        let seq: u64 = parts.next().unwrap().parse().unwrap();
        *in_log.entry((k, seq)).or_default() += 1;
        order.entry(k).or_default().push((c.partition, c.offset, seq));
    }
    let acknowledged = outcomes.values().filter(|r| r.is_ok()).count();
    let failed = outcomes.len() - acknowledged;
    let failed_maybe_written = outcomes.values().filter(|r| matches!(r, Err(true))).count();
    let lost = outcomes.iter().filter(|(id, r)| r.is_ok() && !in_log.contains_key(id)).count();
    let duplicated = in_log.values().filter(|n| **n > 1).count();
    let dishonest =
        outcomes.iter().filter(|(id, r)| matches!(r, Err(false)) && in_log.contains_key(id)).count();
    let mut out_of_order_keys = 0;
    for recs in order.values_mut() {
        recs.sort_unstable();
        if recs.windows(2).any(|w| w[1].2 < w[0].2) {
            out_of_order_keys += 1;
        }
    }
    // Recovery: from a leader's death to the first acknowledgement of a record sent
    // to one of its partitions after it died (records already in flight to it do
    // not count).
    let mut acks_by_partition: HashMap<i32, Vec<(Instant, Instant)>> = HashMap::new();
    for a in outcomes.values().flatten() {
        acks_by_partition.entry(a.partition).or_default().push((a.sent, a.acked));
    }
    let mut recovery_ms = Vec::new();
    for (node, killed_at, parts) in kills.lock().iter() {
        let mut per_partition = Vec::new();
        for p in parts {
            let first = acks_by_partition
                .get(p)
                .and_then(|v| v.iter().filter(|(sent, _)| sent > killed_at).map(|(_, acked)| *acked).min());
            if let Some(first) = first {
                let ms = first.duration_since(*killed_at).as_millis();
                per_partition.push((*p, ms));
                recovery_ms.push(ms);
            }
        }
        eprintln!(
            "chaos: node {node} killed: first acknowledgement after the kill, per partition it led: {per_partition:?} ms"
        );
    }
    Report {
        idempotence,
        seconds,
        sent,
        acknowledged,
        failed,
        failed_maybe_written,
        lost,
        duplicated,
        out_of_order_keys,
        dishonest,
        faults,
        recovery_ms,
    }
}

fn save(report: &Report) {
    let dir = repo_root().join("target/chaos");
    let _ = std::fs::create_dir_all(&dir);
    let name =
        format!("{}-{}.txt", if report.idempotence { "idempotent" } else { "plain" }, std::process::id());
    let _ = std::fs::write(dir.join(name), report.render() + "\n");
    eprintln!("{}", report.render());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos() {
    if let Backend::Kafka(_) = backend() {
        harness_cluster();
    }
    let default_secs = if support::embedded().is_some() { 30 } else { 100 };
    let seconds: u64 =
        std::env::var("HERALD_CHAOS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(default_secs);

    let idempotent = run(true, seconds).await;
    save(&idempotent);
    assert_eq!(idempotent.lost, 0, "acknowledged records lost: {}", idempotent.render());
    assert_eq!(idempotent.duplicated, 0, "records duplicated: {}", idempotent.render());
    assert_eq!(idempotent.out_of_order_keys, 0, "keys out of order: {}", idempotent.render());
    assert_eq!(idempotent.dishonest, 0, "a record said not written is in the log: {}", idempotent.render());
    assert!(idempotent.faults.values().sum::<usize>() >= 2, "faults were injected: {}", idempotent.render());
    assert!(
        idempotent.acknowledged > idempotent.sent / 2,
        "most records got through: {}",
        idempotent.render()
    );

    // The same without idempotence: duplicates are reported, not asserted (that is
    // what idempotence is for); nothing acknowledged may be lost all the same.
    let plain = run(false, seconds / 2).await;
    save(&plain);
    assert_eq!(plain.lost, 0, "acknowledged records lost: {}", plain.render());
    assert_eq!(plain.dishonest, 0, "a record said not written is in the log: {}", plain.render());
}
