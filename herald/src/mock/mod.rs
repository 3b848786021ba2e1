//! An embedded Kafka cluster: test against Kafka's protocol without a broker.
//!
//! [`MockCluster`] runs N brokers inside the process, each listening on its own
//! port of 127.0.0.1 (port 0 by default, so tests run in parallel), speaking the
//! real Kafka protocol over TCP: any Kafka client can use it — herald, the Java
//! client, librdkafka, franz-go. Topics have any number of partitions with leaders
//! spread over the brokers; records are kept in memory.
//!
//! Enabled by the `mock` cargo feature.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), herald::Error> {
//! use herald::mock::MockCluster;
//! use herald::{Producer, Record};
//!
//! let cluster = MockCluster::builder().brokers(3).start().await?;
//! cluster.create_topic("trucks", 3)?;
//! let producer = Producer::builder().bootstrap_servers(cluster.bootstrap()).build()?;
//! let written = producer.send_and_wait(Record::new("trucks").key("truck_id_123").value("52.52,13.40")).await?;
//! assert_eq!(written.offset(), Some(0));
//! assert_eq!(cluster.records("trucks", written.partition())?.len(), 1);
//! # Ok(()) }
//! ```
//!
//! # APIs served
//! One file per API: `api_versions.rs` (ApiVersions v0–4), `metadata.rs` (Metadata
//! v0–12), `produce.rs` (Produce v3–13), `fetch.rs` (Fetch v4–16), `list_offsets.rs`
//! (ListOffsets v1–9), `create_topics.rs` (CreateTopics v2–7), `delete_topics.rs`
//! (DeleteTopics v1–6), `init_producer_id.rs` (InitProducerId v0–5),
//! `find_coordinator.rs` (FindCoordinator v1–6), `add_partitions_to_txn.rs`
//! (AddPartitionsToTxn v0–3), `add_offsets_to_txn.rs` (AddOffsetsToTxn v0–4),
//! `txn_offset_commit.rs` (TxnOffsetCommit v0–5), `end_txn.rs` (EndTxn v0–5),
//! `offset_fetch.rs` (OffsetFetch v1–9). A request of any other API, or of a
//! version outside these ranges, closes the connection, as Kafka does.
//!
//! # Transactions
//! A transaction coordinator (`txn.rs`) behaves as Kafka 4.x's
//! `TransactionCoordinator` (KIP-98, KIP-447, KIP-890). Transactional ids and
//! groups are coordinated by a live broker chosen by the key's hash
//! ([`MockCluster::coordinator`]); other brokers answer `NOT_COORDINATOR`.
//! InitProducerId bumps the epoch of a known transactional id, fencing the
//! producer that held it and aborting its open transaction. EndTxn writes commit or
//! abort markers (control batches) to every partition of the transaction before it
//! answers; Fetch and ListOffsets honour `read_committed` (last stable offset,
//! aborted transactions); offsets committed with TxnOffsetCommit become the
//! group's when the transaction commits ([`MockCluster::group_offsets`], OffsetFetch).
//! Transactions open past their `transaction.timeout.ms` are aborted, fencing their
//! producer, within about 100 ms. With `transaction.version` 2 (the default,
//! [`MockClusterBuilder::transaction_version`]) Produce v12+ and TxnOffsetCommit v5
//! add to the transaction themselves and EndTxn v5 bumps the epoch (KIP-890 part
//! 2); with 1, a transactional Produce to a partition not added first is
//! `INVALID_TXN_STATE` (part 1).
//!
//! Produce validates what a broker validates and answers with the same codes:
//! exactly one RecordBatch v2 per partition (`INVALID_RECORD`), its CRC and lengths
//! (`CORRUPT_MESSAGE`), `max.message.bytes` (`MESSAGE_TOO_LARGE`), acks of -1, 0 or 1
//! (`INVALID_REQUIRED_ACKS`), timestamps within `message.timestamp.before/after.max.ms`
//! (`INVALID_TIMESTAMP`, Kafka 4's one-hour default for the future), keys on
//! compacted topics (`INVALID_RECORD`), the leader (`NOT_LEADER_OR_FOLLOWER`),
//! idempotent producers' sequences and epochs (`OUT_OF_ORDER_SEQUENCE_NUMBER`,
//! `INVALID_PRODUCER_EPOCH`; a duplicate of one of the last five batches is answered
//! with its original offset). LogAppendTime topics get the broker's time.
//!
//! # How it differs from Kafka
//! - No replication and no disk: one copy of each partition, in memory, lost when
//!   the cluster stops. `acks=all` is acknowledged as soon as the leader appends;
//!   `min.insync.replicas` is accepted but not enforced.
//! - No consumer groups (offsets come only from transactions, committed from
//!   outside the group protocol, generation -1), ACLs, quotas, or SASL/TLS; no
//!   fetch sessions (every fetch is a full fetch, which clients accept).
//! - Transaction and offset state is kept in memory, not in `__transaction_state`
//!   or `__consumer_offsets`. Markers are written before EndTxn answers, so the
//!   `Prepare*` states never show and `CONCURRENT_TRANSACTIONS` comes only from
//!   fault rules. An epoch that runs out stays at its maximum (Kafka moves to a new
//!   producer id).
//! - Compressed batches (gzip, snappy, lz4, zstd) are decompressed to validate their
//!   records and stored as sent, or recompressed when the topic's own
//!   `compression.type` differs from the producer's, as Kafka does; recompression
//!   uses each codec's default level.
//! - Leader election is instant: stopping a broker moves its partitions' leadership
//!   to a live replica at once (Kafka waits for the broker's session to expire).
//! - No retention or compaction: logs only grow.
//! - Topic configs other than `max.message.bytes`, `message.timestamp.type`,
//!   `message.timestamp.before/after.max.ms`, `cleanup.policy` and `compression.type`
//!   are checked for their names only.
//! - A batch decompresses to at most 256 MiB (a defence against decompression
//!   bombs; Kafka has no such limit).

mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod api_versions;
mod create_topics;
mod delete_topics;
mod end_txn;
mod fetch;
mod find_coordinator;
mod get_telemetry_subscriptions;
mod init_producer_id;
mod list_offsets;
mod metadata;
mod offset_fetch;
mod produce;
mod push_telemetry;
mod server;
mod state;
mod txn;
mod txn_log;
mod txn_offset_commit;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use self::server::BrokerServer;
use self::state::{BrokerInfo, Settings, State, TopicConfig};
use crate::config::Compression;
use crate::error::{Error, ErrorCode, ErrorKind, Result};
use crate::parts::TimestampType;
use crate::reader::ConsumedRecord;

/// The APIs the embedded cluster serves, for fault rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MockApi {
    /// Produce (key 0).
    Produce,
    /// Fetch (key 1).
    Fetch,
    /// ListOffsets (key 2).
    ListOffsets,
    /// Metadata (key 3).
    Metadata,
    /// ApiVersions (key 18).
    ApiVersions,
    /// CreateTopics (key 19).
    CreateTopics,
    /// DeleteTopics (key 20).
    DeleteTopics,
    /// InitProducerId (key 22).
    InitProducerId,
    /// OffsetFetch (key 9).
    OffsetFetch,
    /// FindCoordinator (key 10).
    FindCoordinator,
    /// AddPartitionsToTxn (key 24).
    AddPartitionsToTxn,
    /// AddOffsetsToTxn (key 25).
    AddOffsetsToTxn,
    /// EndTxn (key 26).
    EndTxn,
    /// TxnOffsetCommit (key 28).
    TxnOffsetCommit,
    /// GetTelemetrySubscriptions (key 71).
    GetTelemetrySubscriptions,
    /// PushTelemetry (key 72).
    PushTelemetry,
}

impl MockApi {
    pub(crate) fn key(self) -> i16 {
        match self {
            MockApi::Produce => 0,
            MockApi::Fetch => 1,
            MockApi::ListOffsets => 2,
            MockApi::Metadata => 3,
            MockApi::ApiVersions => 18,
            MockApi::CreateTopics => 19,
            MockApi::DeleteTopics => 20,
            MockApi::InitProducerId => 22,
            MockApi::OffsetFetch => 9,
            MockApi::FindCoordinator => 10,
            MockApi::AddPartitionsToTxn => 24,
            MockApi::AddOffsetsToTxn => 25,
            MockApi::EndTxn => 26,
            MockApi::TxnOffsetCommit => 28,
            MockApi::GetTelemetrySubscriptions => 71,
            MockApi::PushTelemetry => 72,
        }
    }
}

/// What a fault rule does to a matching request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this error code (in every partition or topic the request names,
    /// or at the top level for APIs without those) and do nothing else.
    Error(ErrorCode),
    /// Close the connection without handling the request.
    Disconnect,
    /// Handle the request (e.g. append the records), then close the connection
    /// without answering: the client cannot know the request took effect.
    DisconnectAfterHandling,
    /// Handle the request, then answer with a damaged response: a misbehaving
    /// broker, for testing a client's defences.
    Corrupt(Corruption),
}

/// How [`Fault::Corrupt`] damages a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// The right correlation id, then random bytes instead of the body.
    Garbage,
    /// The response cut off in the middle (its size prefix says so).
    Truncated,
    /// A correlation id the client did not send.
    WrongCorrelationId,
    /// A Produce response that also answers for a partition nobody asked about.
    ExtraPartition,
}

#[derive(Debug)]
struct FaultRule {
    api: i16,
    broker: Option<i32>,
    remaining: usize,
    fault: Fault,
}

#[derive(Debug, Default)]
struct Faults {
    rules: Vec<FaultRule>,
    latency: HashMap<Option<i32>, Duration>,
    /// Produce answers ask the client to wait this long (KIP-219), as a broker
    /// over a client's quota does.
    produce_throttle: Duration,
}

/// Shared by the brokers of one cluster.
pub(crate) struct Cluster {
    /// The runtime the brokers run on, whoever calls the controls.
    runtime: tokio::runtime::Handle,
    state: Mutex<State>,
    faults: Mutex<Faults>,
    /// Notified on every append, for fetches waiting for data.
    appended: Notify,
    /// Client telemetry requests (KIP-714) by client id: subscriptions, pushes.
    telemetry: Mutex<HashMap<String, TelemetryRequests>>,
}

/// The client telemetry requests (KIP-714) one client id made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TelemetryRequests {
    /// GetTelemetrySubscriptions requests.
    pub subscriptions: u64,
    /// PushTelemetry requests.
    pub pushes: u64,
}

impl Cluster {
    /// Counts a client telemetry request of `client_id`.
    fn count_telemetry(&self, client_id: &str, push: bool) {
        let mut t = self.telemetry.lock();
        let r = t.entry(client_id.to_owned()).or_default();
        if push {
            r.pushes += 1;
        } else {
            r.subscriptions += 1;
        }
    }

    /// The fault to apply to this request, consuming one use of the rule.
    fn take_fault(&self, api: i16, broker: i32) -> Option<Fault> {
        let mut f = self.faults.lock();
        let rule = f
            .rules
            .iter_mut()
            .find(|r| r.api == api && r.remaining > 0 && r.broker.is_none_or(|b| b == broker))?;
        rule.remaining -= 1;
        let fault = rule.fault;
        f.rules.retain(|r| r.remaining > 0);
        Some(fault)
    }

    /// The throttle time Produce answers carry.
    pub(super) fn produce_throttle(&self) -> Duration {
        self.faults.lock().produce_throttle
    }

    fn latency(&self, broker: i32) -> Duration {
        let f = self.faults.lock();
        f.latency.get(&Some(broker)).or_else(|| f.latency.get(&None)).copied().unwrap_or_default()
    }
}

/// One stored batch, as [`MockCluster::batches`] describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredBatchInfo {
    /// The offset of its first record.
    pub base_offset: i64,
    /// How many records it holds.
    pub records: i32,
    /// How it is compressed.
    pub compression: Compression,
    /// Its size in bytes, as stored and served.
    pub size: usize,
    /// The producer id it carries (-1 without idempotence).
    pub producer_id: i64,
    /// The sequence of its first record (-1 without idempotence).
    pub base_sequence: i32,
    /// The producer epoch it carries (-1 without idempotence).
    pub producer_epoch: i16,
    /// Whether it belongs to a transaction (attributes bit 4).
    pub transactional: bool,
    /// Whether it is a control batch: a transaction marker (attributes bit 5).
    pub control: bool,
}

/// Builds a [`MockCluster`].
#[derive(Clone, Debug)]
#[must_use]
pub struct MockClusterBuilder {
    brokers: usize,
    default_partitions: i32,
    auto_create_topics: bool,
    base_port: Option<u16>,
    transaction_version: i16,
    max_transaction_timeout_ms: i32,
}

impl Default for MockClusterBuilder {
    fn default() -> Self {
        MockClusterBuilder {
            brokers: 1,
            default_partitions: 1,
            auto_create_topics: false,
            base_port: None,
            transaction_version: 2,
            max_transaction_timeout_ms: DEFAULT_MAX_TRANSACTION_TIMEOUT_MS,
        }
    }
}

/// Kafka's default `transaction.max.timeout.ms`: 15 minutes.
const DEFAULT_MAX_TRANSACTION_TIMEOUT_MS: i32 = 900_000;
/// How often the coordinator looks for transactions open past their timeout
/// (Kafka's `transaction.abort.timed.out.transaction.cleanup.interval.ms` is 10 s).
const TXN_TIMEOUT_CHECK: Duration = Duration::from_millis(100);

impl MockClusterBuilder {
    /// How many brokers (node ids 1..=N). Default 1.
    pub fn brokers(mut self, n: usize) -> Self {
        self.brokers = n.max(1);
        self
    }

    /// Partitions of topics created without a count (`num.partitions`). Default 1.
    pub fn default_partitions(mut self, n: i32) -> Self {
        self.default_partitions = n.max(1);
        self
    }

    /// Whether Metadata requests that allow it create missing topics
    /// (`auto.create.topics.enable`). Default false, as in herald's tests.
    pub fn auto_create_topics(mut self, on: bool) -> Self {
        self.auto_create_topics = on;
        self
    }

    /// Listen on `port`, `port + 1`, … instead of ports the OS picks.
    pub fn base_port(mut self, port: u16) -> Self {
        self.base_port = Some(port);
        self
    }

    /// The finalized `transaction.version` feature (KIP-890), 0 to 2 (clamped).
    /// Default 2, as Kafka 4.x: transactional Produce v12+ and TxnOffsetCommit v5
    /// add to the transaction themselves, and EndTxn v5 bumps the producer epoch.
    /// 1 (or 0) is Kafka 3.9's protocol: partitions and groups must be added with
    /// AddPartitionsToTxn and AddOffsetsToTxn first.
    pub fn transaction_version(mut self, version: i16) -> Self {
        self.transaction_version = version.clamp(0, 2);
        self
    }

    /// The longest transaction timeout a producer may ask for
    /// (`transaction.max.timeout.ms`; longer is `INVALID_TRANSACTION_TIMEOUT`).
    /// Default 15 minutes.
    pub fn transaction_max_timeout(mut self, max: Duration) -> Self {
        self.max_transaction_timeout_ms = i32::try_from(max.as_millis()).unwrap_or(i32::MAX);
        self
    }

    /// Starts the brokers on the current tokio runtime.
    pub async fn start(self) -> Result<MockCluster> {
        let cluster = Arc::new(Cluster {
            runtime: tokio::runtime::Handle::current(),
            state: Mutex::new(State {
                cluster_id: format!("herald-mock-{:016x}", fastrand::u64(..)),
                brokers: BTreeMap::new(),
                topics: BTreeMap::new(),
                next_producer_id: 1000,
                settings: Settings {
                    auto_create_topics: self.auto_create_topics,
                    default_partitions: self.default_partitions,
                    store_records: true,
                    transaction_version: self.transaction_version,
                    max_transaction_timeout_ms: self.max_transaction_timeout_ms,
                },
                txn: txn::Coordinator::default(),
            }),
            faults: Mutex::new(Faults::default()),
            appended: Notify::new(),
            telemetry: Mutex::new(HashMap::new()),
        });
        let mut servers = Vec::new();
        for i in 0..self.brokers {
            let id = i as i32 + 1;
            let port = self.base_port.map(|p| p.saturating_add(i as u16)).unwrap_or(0);
            let server = BrokerServer::start(cluster.clone(), id, port)
                .await
                .map_err(|e| Error::connection(format!("127.0.0.1:{port}"), e))?;
            cluster.state.lock().brokers.insert(id, BrokerInfo { port: server.port(), up: true });
            servers.push(server);
        }
        let txn_timeouts =
            tokio::spawn(abort_timed_out_transactions(Arc::downgrade(&cluster))).abort_handle();
        tracing::info!(brokers = self.brokers, "embedded cluster started");
        Ok(MockCluster { inner: Arc::new(Inner { cluster, servers: Mutex::new(servers), txn_timeouts }) })
    }
}

/// The coordinator's periodic abort of transactions open past their timeout
/// (`TransactionCoordinator.abortTimedOutTransactions`), until the cluster is gone.
async fn abort_timed_out_transactions(cluster: std::sync::Weak<Cluster>) {
    let mut tick = tokio::time::interval(TXN_TIMEOUT_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(c) = cluster.upgrade() else { return };
        let aborted = c.state.lock().abort_timed_out(now_ms());
        if aborted {
            c.appended.notify_waiters();
        }
    }
}

struct Inner {
    cluster: Arc<Cluster>,
    servers: Mutex<Vec<BrokerServer>>,
    txn_timeouts: tokio::task::AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.txn_timeouts.abort();
        for s in self.servers.lock().iter_mut() {
            s.stop();
        }
    }
}

/// A running embedded cluster. Cheap to clone; stops when the last clone is dropped.
/// Every control method is synchronous and may be called from any thread.
#[derive(Clone)]
pub struct MockCluster {
    inner: Arc<Inner>,
}

impl fmt::Debug for MockCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockCluster").field("bootstrap", &self.bootstrap()).finish()
    }
}

impl MockCluster {
    /// A builder: one broker, no auto-creation.
    pub fn builder() -> MockClusterBuilder {
        MockClusterBuilder::default()
    }

    fn state(&self) -> parking_lot::MutexGuard<'_, State> {
        self.inner.cluster.state.lock()
    }

    /// The bootstrap servers, `127.0.0.1:p1,127.0.0.1:p2,…`.
    pub fn bootstrap(&self) -> String {
        self.state().brokers.values().map(|b| format!("127.0.0.1:{}", b.port)).collect::<Vec<_>>().join(",")
    }

    /// The brokers' node ids.
    pub fn broker_ids(&self) -> Vec<i32> {
        self.state().brokers.keys().copied().collect()
    }

    /// Creates a topic with `partitions` partitions.
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        self.create_topic_with_configs(name, partitions, &[])
    }

    /// Creates a topic with topic configs, e.g. `("message.timestamp.type",
    /// "LogAppendTime")`.
    pub fn create_topic_with_configs(
        &self,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> Result<()> {
        let topic: Arc<str> = Arc::from(name);
        let configs: Vec<(String, Option<String>)> =
            configs.iter().map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned()))).collect();
        let config = TopicConfig::parse(&configs)
            .map_err(|m| Error::broker(ErrorCode::INVALID_CONFIG, Some(m)).for_partition(&topic, None))?;
        self.state()
            .create_topic(name, partitions, 1, config)
            .map(|_| ())
            .map_err(|(code, m)| Error::broker(code, Some(m)).for_partition(&topic, None))
    }

    /// Grows a topic to `total` partitions (as Kafka's CreatePartitions does); the new
    /// partitions' leaders are spread over the live brokers. Clients learn of them
    /// at their next metadata refresh.
    pub fn add_partitions(&self, topic: &str, total: i32) -> Result<()> {
        let name: Arc<str> = Arc::from(topic);
        let mut s = self.state();
        let live = s.live_brokers();
        let t = s
            .topics
            .get_mut(topic)
            .ok_or_else(|| Error::new(ErrorKind::UnknownTopic).for_partition(&name, None))?;
        let have = t.partitions.len() as i32;
        if total <= have || live.is_empty() {
            return Err(Error::broker(
                ErrorCode::INVALID_PARTITIONS,
                Some(format!("topic has {have} partitions; cannot grow it to {total}")),
            )
            .for_partition(&name, None));
        }
        let template = t.partitions[0].clone();
        for p in have..total {
            let mut part = template.clone();
            part.leader = live[(p as usize) % live.len()];
            part.leader_epoch = 0;
            part.replicas = vec![part.leader];
            part.log.clear();
            part.next_offset = 0;
            part.log_start = 0;
            part.txns = Default::default();
            t.partitions.push(part);
        }
        Ok(())
    }

    /// The leader of a partition, `None` if the topic or partition does not exist
    /// or has no leader.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let s = self.state();
        let p = s.topics.get(topic)?.partitions.get(usize::try_from(partition).ok()?)?;
        (p.leader >= 0).then_some(p.leader)
    }

    /// Every record stored in a partition, in offset order, as a read_uncommitted
    /// consumer sees them: records of open and aborted transactions included,
    /// transaction markers (control records) not.
    pub fn records(&self, topic: &str, partition: i32) -> Result<Vec<ConsumedRecord>> {
        self.with_partition(topic, partition, |p| consumed(partition, p.records()))
    }

    /// The records of a partition a read_committed consumer sees, in offset order:
    /// those of committed transactions and those written outside transactions,
    /// below the last stable offset; no control records.
    pub fn committed_records(&self, topic: &str, partition: i32) -> Result<Vec<ConsumedRecord>> {
        self.with_partition(topic, partition, |p| consumed(partition, p.committed_records()))
    }

    /// The last stable offset of a partition: the first offset of its earliest
    /// open transaction, else its end. `None` if there is no such partition.
    pub fn last_stable_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        let s = self.state();
        let p = s.topics.get(topic)?.partitions.get(usize::try_from(partition).ok()?)?;
        Some(p.last_stable_offset())
    }

    /// The offsets a consumer group has committed through transactions
    /// (TxnOffsetCommit, once the transaction committed): (topic, partition) →
    /// offset. Empty for a group without any.
    pub fn group_offsets(&self, group: &str) -> HashMap<(String, i32), i64> {
        self.state()
            .txn
            .offsets_of(group)
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.offset)).collect())
            .unwrap_or_default()
    }

    /// The broker coordinating a transactional id or a consumer group (what
    /// FindCoordinator answers), `None` when no broker is alive.
    pub fn coordinator(&self, key: &str) -> Option<i32> {
        self.state().coordinator_for(key)
    }

    /// `f` of a partition's state, or the error a broker gives for a topic or
    /// partition it does not have.
    fn with_partition<R>(
        &self,
        topic: &str,
        partition: i32,
        f: impl FnOnce(&state::Partition) -> R,
    ) -> Result<R> {
        let s = self.state();
        let name: Arc<str> = Arc::from(topic);
        let t = s
            .topics
            .get(topic)
            .ok_or_else(|| Error::new(ErrorKind::UnknownTopic).for_partition(&name, None))?;
        let p = usize::try_from(partition).ok().and_then(|i| t.partitions.get(i)).ok_or_else(|| {
            Error::broker(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, None).for_partition(&name, Some(partition))
        })?;
        Ok(f(p))
    }

    /// The batches stored in a partition, in offset order, as a consumer will get
    /// them: where they start, how many records, how compressed, how large.
    pub fn batches(&self, topic: &str, partition: i32) -> Result<Vec<StoredBatchInfo>> {
        self.with_partition(topic, partition, |p| {
            p.log
                .iter()
                .filter_map(|b| {
                    let h = crate::protocol::records::read_header(&b.bytes).ok()??;
                    Some(StoredBatchInfo {
                        base_offset: h.base_offset,
                        records: h.record_count,
                        compression: Compression::from_codec(crate::compression::Codec::from_id(
                            h.compression(),
                        )),
                        size: b.bytes.len(),
                        producer_id: h.producer_id,
                        base_sequence: h.base_sequence,
                        producer_epoch: h.producer_epoch,
                        transactional: h.transactional(),
                        control: h.control(),
                    })
                })
                .collect()
        })
    }

    /// The next offset of a partition (its end): how many records it has taken,
    /// stored or not.
    pub fn end_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        let s = self.state();
        let p = s.topics.get(topic)?.partitions.get(usize::try_from(partition).ok()?)?;
        Some(p.next_offset)
    }

    /// Applies `fault` to the next `n` requests of `api`, on any broker.
    pub fn fail_next(&self, api: MockApi, n: usize, fault: Fault) {
        self.add_rule(api, None, n, fault);
    }

    /// Applies `fault` to the next `n` requests of `api` that broker `broker` gets.
    pub fn fail_next_on(&self, broker: i32, api: MockApi, n: usize, fault: Fault) {
        self.add_rule(api, Some(broker), n, fault);
    }

    fn add_rule(&self, api: MockApi, broker: Option<i32>, n: usize, fault: Fault) {
        if n > 0 {
            self.inner.cluster.faults.lock().rules.push(FaultRule {
                api: api.key(),
                broker,
                remaining: n,
                fault,
            });
        }
    }

    /// Removes every fault rule and latency.
    pub fn clear_faults(&self) {
        *self.inner.cluster.faults.lock() = Faults::default();
    }

    /// Makes every Produce answer ask the client to hold its requests to that
    /// broker for `throttle` (`throttle_time_ms`, KIP-219), as a broker does for a
    /// client over its quota (the answer itself is not delayed). Zero turns it off.
    pub fn set_produce_throttle(&self, throttle: Duration) {
        self.inner.cluster.faults.lock().produce_throttle = throttle;
    }

    /// Delays every response of every broker by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.inner.cluster.faults.lock().latency.insert(None, latency);
    }

    /// Delays every response of one broker by `latency` (overrides the cluster's).
    pub fn set_broker_latency(&self, broker: i32, latency: Duration) {
        self.inner.cluster.faults.lock().latency.insert(Some(broker), latency);
    }

    /// Takes a broker down: it stops listening and drops its connections, and the
    /// partitions it led get new leaders among the live brokers.
    pub fn stop_broker(&self, broker: i32) {
        let mut servers = self.inner.servers.lock();
        if let Some(s) = servers.iter_mut().find(|s| s.id() == broker) {
            s.stop();
        }
        self.state().broker_down(broker);
        tracing::info!(broker, "embedded broker stopped");
    }

    /// Brings a stopped broker back on its old port. Blocks briefly while the port
    /// is bound; the broker runs on the cluster's runtime, whichever thread calls.
    pub fn start_broker(&self, broker: i32) -> Result<()> {
        let port = self.state().brokers.get(&broker).map(|b| b.port);
        let Some(port) = port else {
            return Err(Error::config("broker", format!("no broker {broker} in this cluster")));
        };
        let cluster = self.inner.cluster.clone();
        let runtime = cluster.runtime.clone();
        // A thread of its own: block_on must not run on a runtime's worker thread.
        let server = std::thread::spawn(move || runtime.block_on(BrokerServer::start(cluster, broker, port)))
            .join()
            .map_err(|_| Error::config("broker", "starting the broker panicked"))?
            .map_err(|e| Error::connection(format!("127.0.0.1:{port}"), e))?;
        {
            let mut servers = self.inner.servers.lock();
            servers.retain(|s| s.id() != broker);
            servers.push(server);
        }
        self.state().broker_up(broker);
        tracing::info!(broker, "embedded broker started");
        Ok(())
    }

    /// Makes `broker` the leader of a partition (bumping its leader epoch); the old
    /// leader answers `NOT_LEADER_OR_FOLLOWER` from now on.
    pub fn move_leader(&self, topic: &str, partition: i32, broker: i32) -> Result<()> {
        let name: Arc<str> = Arc::from(topic);
        let mut s = self.state();
        if !s.brokers.contains_key(&broker) {
            return Err(Error::config("broker", format!("no broker {broker} in this cluster")));
        }
        let p = s
            .topics
            .get_mut(topic)
            .and_then(|t| t.partitions.get_mut(usize::try_from(partition).ok()?))
            .ok_or_else(|| {
                Error::broker(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, None)
                    .for_partition(&name, Some(partition))
            })?;
        p.leader = broker;
        p.leader_epoch += 1;
        if !p.replicas.contains(&broker) {
            p.replicas.insert(0, broker);
        }
        Ok(())
    }

    /// The client telemetry requests (KIP-714) made by clients with `client_id`
    /// (`client.id`): how many GetTelemetrySubscriptions and PushTelemetry.
    pub fn telemetry_requests(&self, client_id: &str) -> TelemetryRequests {
        self.inner.cluster.telemetry.lock().get(client_id).copied().unwrap_or_default()
    }

    /// Whether Produce stores records. With `false` the cluster validates and
    /// acknowledges every batch (offsets advance) but keeps nothing: for measuring
    /// a producer's own ceiling. Default true.
    pub fn set_store_records(&self, store: bool) {
        self.state().settings.store_records = store;
    }

    /// Handles one raw request frame (without its 4-byte size prefix) as broker
    /// `broker` would: the response frame (with its size prefix), `None` when no
    /// response is due (acks=0), or why the connection would be closed. For fuzzing
    /// and protocol tests; clients should connect over TCP.
    #[doc(hidden)]
    pub async fn handle_raw(
        &self,
        broker: i32,
        frame: bytes::Bytes,
    ) -> std::result::Result<Option<Vec<u8>>, String> {
        let ctx = wire::Ctx { cluster: self.inner.cluster.clone(), broker };
        match server::handle(&ctx, frame).await {
            Ok(r) => Ok(r.map(|b| b.to_vec())),
            Err(wire::Close(why)) => Err(why),
        }
    }

    /// Stops every broker.
    pub fn shutdown(&self) {
        for s in self.inner.servers.lock().iter_mut() {
            s.stop();
        }
    }
}

/// Stored records as a consumer returns them.
fn consumed(
    partition: i32,
    records: Vec<(crate::protocol::records::BatchHeader, crate::protocol::records::ReadRecord)>,
) -> Vec<ConsumedRecord> {
    records
        .into_iter()
        .map(|(h, r)| ConsumedRecord {
            partition,
            offset: r.offset,
            timestamp: r.timestamp,
            timestamp_type: if h.log_append_time() {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            key: r.key,
            value: r.value,
            headers: r.headers,
        })
        .collect()
}

/// The current time in milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
