//! Faults for the chaos tests: brokers killed, paused, cut off, their connections
//! reset — real signals to a harness cluster's brokers, or the embedded cluster's
//! stand-ins.

use std::time::{Duration, Instant};

use super::proxy::KafkaProxy;
use super::{Backend, admin, backend, harness, harness_cluster};

/// A fault the chaos tests inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// SIGKILL the leader of a random partition of the topic, restart it later.
    KillLeader,
    /// SIGKILL this node (e.g. a transaction coordinator), restart it later.
    KillNode(i32),
    /// SIGSTOP a random broker for longer than `request.timeout.ms`.
    PauseBroker,
    /// Drop every byte through the proxy for a while.
    Blackhole,
    /// Reset every connection through the proxy.
    ResetConnections,
}

/// Injects one fault and waits until it is over. Returns, for a leader kill, the
/// node and the instant it died.
pub async fn inject(
    kind: FaultKind,
    topic: &str,
    partitions: i32,
    request_timeout: Duration,
    proxy: &KafkaProxy,
) -> Option<(i32, Instant)> {
    let hold = request_timeout + Duration::from_secs(3);
    match kind {
        FaultKind::KillLeader => {
            let p = fastrand::i32(0..partitions);
            let leader = admin().describe_topic(topic).await.ok()?.partitions[p as usize].leader?;
            kill_and_restart(leader).await.map(|at| (leader, at))
        }
        FaultKind::KillNode(node) => kill_and_restart(node).await.map(|at| (node, at)),
        FaultKind::PauseBroker => {
            let brokers = admin().brokers().await.ok()?;
            let node = brokers[fastrand::usize(0..brokers.len())].node_id;
            match backend() {
                Backend::Kafka(_) => {
                    let name = harness_cluster();
                    let signal = |sig: &'static str, name: String| {
                        let n = node.to_string();
                        tokio::task::spawn_blocking(move || {
                            harness(&[
                                "kill-node".into(),
                                "--name".into(),
                                name,
                                "--node".into(),
                                n,
                                "--signal".into(),
                                sig.into(),
                            ])
                        })
                    };
                    signal("STOP", name.clone()).await.ok()?;
                    tokio::time::sleep(hold).await;
                    signal("CONT", name).await.ok()?;
                }
                Backend::Embedded(c) => {
                    // A broker too slow to answer within request.timeout.ms.
                    c.set_broker_latency(node, hold);
                    tokio::time::sleep(hold).await;
                    c.set_broker_latency(node, Duration::ZERO);
                }
            }
            None
        }
        FaultKind::Blackhole => {
            proxy.blackhole(true);
            tokio::time::sleep(hold).await;
            proxy.blackhole(false);
            None
        }
        FaultKind::ResetConnections => {
            proxy.reset();
            None
        }
    }
}

/// Kills `node` (SIGKILL on a harness cluster, a stop on the embedded one), waits,
/// restarts it. Returns when it died: once it certainly was dead (a record sent
/// before may still be acknowledged by it, which is no recovery).
async fn kill_and_restart(node: i32) -> Option<Instant> {
    match backend() {
        Backend::Kafka(_) => {
            let name = harness_cluster();
            let n = node.to_string();
            let (a, b) = (name.clone(), n.clone());
            tokio::task::spawn_blocking(move || {
                harness(&[
                    "kill-node".into(),
                    "--name".into(),
                    a,
                    "--node".into(),
                    b,
                    "--signal".into(),
                    "KILL".into(),
                ])
            })
            .await
            .ok()?;
            let killed_at = Instant::now();
            tokio::time::sleep(Duration::from_secs(10)).await;
            tokio::task::spawn_blocking(move || {
                harness(&["start-node".into(), "--name".into(), name, "--node".into(), n])
            })
            .await
            .ok()?;
            Some(killed_at)
        }
        Backend::Embedded(c) => {
            c.stop_broker(node);
            let killed_at = Instant::now();
            tokio::time::sleep(Duration::from_secs(3)).await;
            c.start_broker(node).ok()?;
            Some(killed_at)
        }
    }
}
