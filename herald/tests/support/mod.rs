//! Shared by the integration tests: which cluster to use, topic helpers, and the
//! independent check — the Java `KafkaConsumer` from kafka-clients reading back
//! what herald wrote.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod faults;
pub mod proxy;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine;
use herald::mock::MockCluster;
use herald::{Admin, NewTopic, Producer, ProducerBuilder};
use serde::Deserialize;

/// Where the tests run: a real cluster, or herald's embedded one.
pub enum Backend {
    /// `HERALD_TEST_BOOTSTRAP`: a real Kafka cluster (scripts/test.sh starts one
    /// from harness/ and sets it).
    Kafka(String),
    /// No `HERALD_TEST_BOOTSTRAP`: herald's embedded cluster, 3 brokers, started
    /// once per test binary on a runtime of its own (each test has its own runtime).
    Embedded(MockCluster),
}

/// The cluster under test.
pub fn backend() -> &'static Backend {
    static BACKEND: OnceLock<Backend> = OnceLock::new();
    BACKEND.get_or_init(|| match std::env::var("HERALD_TEST_BOOTSTRAP") {
        Ok(b) if !b.trim().is_empty() => Backend::Kafka(b),
        _ => {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("embedded cluster runtime");
                rt.block_on(async move {
                    let cluster = MockCluster::builder().brokers(3).start().await.expect("embedded cluster");
                    tx.send(cluster).expect("hand over the cluster");
                    std::future::pending::<()>().await;
                });
            });
            Backend::Embedded(rx.recv().expect("embedded cluster started"))
        }
    })
}

/// The bootstrap servers of the cluster under test.
pub fn bootstrap() -> String {
    match backend() {
        Backend::Kafka(b) => b.clone(),
        Backend::Embedded(c) => c.bootstrap(),
    }
}

/// The embedded cluster, when that is what the tests run against.
pub fn embedded() -> Option<&'static MockCluster> {
    match backend() {
        Backend::Embedded(c) => Some(c),
        Backend::Kafka(_) => None,
    }
}

/// A fresh topic name, unique per call and per run.
pub fn topic_name(prefix: &str) -> String {
    format!("{prefix}-{:08x}", fastrand::u32(..))
}

/// Creates a topic with `partitions` partitions (replication factor
/// `HERALD_TEST_REPLICATION`, default 1) and returns its name.
pub async fn create_topic(prefix: &str, partitions: i32, configs: &[(&str, &str)]) -> String {
    let name = topic_name(prefix);
    let rf: i16 = std::env::var("HERALD_TEST_REPLICATION").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let mut t = NewTopic::new(name.clone(), partitions, rf);
    for (k, v) in configs {
        t = t.config(*k, *v);
    }
    admin().create_topic(t).await.unwrap_or_else(|e| panic!("creating topic {name}: {e}"));
    name
}

/// An admin client for the cluster under test.
pub fn admin() -> Admin {
    Admin::new(&bootstrap()).expect("admin client")
}

/// A producer builder for the cluster under test, with short timeouts so a broken
/// test fails in seconds rather than minutes.
pub fn producer_builder() -> ProducerBuilder {
    Producer::builder()
        .bootstrap_servers(bootstrap())
        .max_block(Duration::from_secs(20))
        .delivery_timeout(Duration::from_secs(60))
}

/// One record as the Java consumer read it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub timestamp_type: String,
    #[serde(deserialize_with = "b64_opt")]
    pub key: Option<Vec<u8>>,
    #[serde(deserialize_with = "b64_opt")]
    pub value: Option<Vec<u8>>,
    pub headers: Vec<ConsumedHeader>,
}

/// One header as the Java consumer read it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConsumedHeader {
    pub key: String,
    #[serde(deserialize_with = "b64_opt")]
    pub value: Option<Vec<u8>>,
}

fn b64_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    s.map(|s| base64::engine::general_purpose::STANDARD.decode(s).map_err(serde::de::Error::custom))
        .transpose()
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The classpath of the Java tools (built by the harness on first use).
pub fn java_classpath() -> &'static str {
    static CP: OnceLock<String> = OnceLock::new();
    CP.get_or_init(|| {
        if let Ok(cp) = std::env::var("HERALD_JAVA_CP") {
            return cp;
        }
        let out = std::process::Command::new(repo_root().join("harness/kafka"))
            .arg("classpath")
            .stderr(Stdio::inherit())
            .output()
            .expect("running harness/kafka classpath");
        assert!(out.status.success(), "harness/kafka classpath failed");
        String::from_utf8(out.stdout).expect("utf-8 classpath").trim().to_owned()
    })
}

/// Runs a Java tools main class; returns stdout, panicking with stderr on failure.
pub async fn java(main_class: &str, args: &[&str], stdin: Option<Vec<u8>>) -> String {
    use tokio::io::AsyncWriteExt;
    let mut cmd = tokio::process::Command::new("java");
    cmd.arg("-cp")
        .arg(java_classpath())
        .arg(main_class)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("starting java");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        tokio::spawn(async move {
            let _ = pipe.write_all(&input).await;
        });
    }
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("java tool timed out after 120 s")
        .expect("java tool");
    assert!(out.status.success(), "{main_class} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Reads every record of `topic` with the Java `KafkaConsumer`, sorted by
/// (partition, offset).
pub async fn consume_with_java(topic: &str) -> Vec<Consumed> {
    consume_with_java_properties(topic, &[]).await
}

/// [`consume_with_java`] with extra consumer properties (`NAME=VALUE`), e.g.
/// `isolation.level=read_committed`.
pub async fn consume_with_java_properties(topic: &str, properties: &[&str]) -> Vec<Consumed> {
    let bootstrap = bootstrap();
    let mut args = vec!["--bootstrap", &bootstrap, "--topic", topic, "--timeout-ms", "60000"];
    for p in properties {
        args.extend(["--property", p]);
    }
    let out = java("dev.herald.tools.VerifyConsumer", &args, None).await;
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad VerifyConsumer line {l:?}: {e}")))
        .collect()
}

/// Reads every record of `topic` with librdkafka's consumer (harness/rdkafka-read,
/// `check.crcs=true`), sorted by (partition, offset). Builds the tool on first use
/// (scripts/test.sh builds it in its provision phase).
pub async fn consume_with_librdkafka(topic: &str) -> Vec<Consumed> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let tool = BUILT
        .get_or_init(|| {
            let dir = repo_root().join("harness/rdkafka-read");
            let status = std::process::Command::new(env!("CARGO"))
                .args(["build", "--quiet", "--release", "--locked", "--manifest-path"])
                .arg(dir.join("Cargo.toml"))
                .status()
                .expect("cargo build harness/rdkafka-read");
            assert!(status.success(), "building harness/rdkafka-read failed");
            dir.join("target/release/rdkafka-read")
        })
        .clone();
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(tool)
            .args(["--bootstrap", &bootstrap(), "--topic", topic, "--timeout-ms", "60000"])
            .output(),
    )
    .await
    .expect("rdkafka-read timed out after 120 s")
    .expect("rdkafka-read");
    assert!(out.status.success(), "rdkafka-read {topic} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .expect("utf-8 output")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad rdkafka-read line {l:?}: {e}")))
        .collect()
}

/// The Schema Registry for the serializer tests (`HERALD_TEST_SCHEMA_REGISTRY`, or a fake).
pub mod registry;

/// Runs `harness/kafka` with `args` (e.g. `kill-node`), failing the test with its
/// stderr if it fails.
pub fn harness<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[S]) {
    let out =
        std::process::Command::new(repo_root().join("harness/kafka")).args(args).output().expect("harness");
    assert!(out.status.success(), "harness/kafka {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The name of the harness cluster under test (`HERALD_TEST_CLUSTER`), for tests
/// that kill and restart its brokers.
pub fn harness_cluster() -> String {
    std::env::var("HERALD_TEST_CLUSTER").expect(
        "these tests need a harness cluster: unset HERALD_TEST_BOOTSTRAP to use the embedded cluster, \
         or set HERALD_TEST_CLUSTER to the harness cluster's name (scripts/test.sh does)",
    )
}
