//! Transactions (KIP-98; consumer offsets in transactions, KIP-447; transactions
//! v2, KIP-890): the state machine of a transactional producer and the
//! coordinator protocol that moves it.
//!
//! A transactional producer is an idempotent one whose producer id and epoch come
//! from its transaction coordinator (InitProducerId with its `transactional.id`)
//! instead of any broker. The states are Java's `TransactionManager`'s:
//! uninitialised → initialising → ready ⇄ in transaction → committing / aborting →
//! ready, with an *abortable* error state (a record or request of the transaction
//! failed: only `abort_transaction` is allowed) and a *fatal* one (fenced by a
//! newer producer with the same id, not authorised, …: nothing is allowed).
//!
//! Who does what:
//! - the user's task runs the calls (`init_transactions`, `begin_transaction`,
//!   `send_offsets_to_transaction`, `commit_transaction`, `abort_transaction`),
//!   one at a time, each a loop of coordinator requests with retries;
//! - the sender stamps batches with the transaction's producer id and epoch and
//!   asks [`Transactions::gate`] before sending a partition's batches: with
//!   transactions v1 a partition must first be added to the transaction
//!   (AddPartitionsToTxn, sent by [`Transactions::add_partitions`] from the
//!   sender's event loop); with v2 (Kafka 4.x, `transaction.version` ≥ 2) Produce
//!   adds it; while aborting, queued batches fail unsent;
//! - requests go through the sender's transport ([`Caller`]): one set of
//!   connections per producer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, ApiKey, ApiVersionsRequest, EndTxnRequest,
    FindCoordinatorRequest, GroupId, InitProducerIdRequest, ProducerId, TopicName, TransactionalId,
    TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::accumulator::PartitionQueue;
use super::transport::{Answer, Target, TxnRequest, TxnResponse};
use crate::backoff::Backoff;
use crate::connection::BrokerAddr;
use crate::error::{Error, ErrorCode, ErrorKind, Result, TimeoutKind};
use crate::protocol::batch::{NO_PRODUCER_EPOCH, NO_PRODUCER_ID};

/// A consumer group member, for [`send_offsets_to_transaction`]: what Java's
/// `KafkaConsumer.groupMetadata()` returns (KIP-447). With the generation and
/// member id of a live member, the group coordinator refuses the offsets of a
/// member that has lost its partitions (a zombie); with only a group id
/// ([`ConsumerGroupMetadata::new`]) the offsets are committed unchecked, as
/// Java's `new ConsumerGroupMetadata(groupId)`.
///
/// [`send_offsets_to_transaction`]: crate::Producer::send_offsets_to_transaction
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    /// The group's id.
    pub group_id: String,
    /// The member's generation, -1 for none.
    pub generation_id: i32,
    /// The member's id, empty for none.
    pub member_id: String,
    /// The static member's `group.instance.id`, if any.
    pub group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// A group without member information (generation -1, no member id).
    pub fn new(group_id: impl Into<String>) -> ConsumerGroupMetadata {
        ConsumerGroupMetadata {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }

    /// With a member's generation and id, as its consumer reports them.
    pub fn member(mut self, generation_id: i32, member_id: impl Into<String>) -> ConsumerGroupMetadata {
        self.generation_id = generation_id;
        self.member_id = member_id.into();
        self
    }

    /// With a static member's `group.instance.id`.
    pub fn group_instance_id(mut self, id: impl Into<String>) -> ConsumerGroupMetadata {
        self.group_instance_id = Some(id.into());
        self
    }
}

/// A consumer offset committed with a transaction: the *next* offset the group
/// reads in a partition (the last processed offset + 1), as Java's
/// `OffsetAndMetadata`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnOffset {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset to read.
    pub offset: i64,
    /// The leader epoch of the last record processed, when known.
    pub leader_epoch: Option<i32>,
    /// Free-form metadata stored with the offset.
    pub metadata: Option<String>,
}

impl TxnOffset {
    /// The next offset to read in `topic`/`partition`.
    pub fn new(topic: impl Into<String>, partition: i32, offset: i64) -> TxnOffset {
        TxnOffset { topic: topic.into(), partition, offset, leader_epoch: None, metadata: None }
    }

    /// With metadata stored alongside.
    pub fn metadata(mut self, metadata: impl Into<String>) -> TxnOffset {
        self.metadata = Some(metadata.into());
        self
    }
}

/// A request for the sender to hand to its transport.
pub(crate) struct Call {
    pub(crate) target: Target,
    pub(crate) req: TxnRequest,
    pub(crate) max_version: Option<i16>,
    pub(crate) reply: oneshot::Sender<std::result::Result<Answer<TxnResponse>, Error>>,
}

/// Sends coordinator requests through the sender's connections.
#[derive(Clone)]
pub(crate) struct Caller {
    tx: mpsc::UnboundedSender<Call>,
}

impl Caller {
    pub(crate) fn new() -> (Caller, mpsc::UnboundedReceiver<Call>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Caller { tx }, rx)
    }

    async fn call(&self, target: &Target, req: TxnRequest, max_version: Option<i16>) -> Result<TxnResponse> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Call { target: target.clone(), req, max_version, reply })
            .map_err(|_| Error::new(ErrorKind::Closed))?;
        let answer = rx.await.map_err(|_| Error::new(ErrorKind::Closed))??;
        answer.await
    }
}

/// Where a transactional producer stands.
#[derive(Clone, Debug)]
enum Phase {
    Uninitialized,
    Initializing,
    Ready,
    InTransaction,
    Committing,
    Aborting,
    /// Only `abort_transaction` is allowed.
    Abortable(Error),
    /// Nothing is allowed.
    Fatal(Error),
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::Uninitialized => "not initialised (call init_transactions first)",
            Phase::Initializing => "initialising (init_transactions has not finished; call it again)",
            Phase::Ready => "ready, with no transaction begun (call begin_transaction first)",
            Phase::InTransaction => "in a transaction",
            Phase::Committing => "committing (commit_transaction has not finished; call it again)",
            Phase::Aborting => "aborting (abort_transaction has not finished; call it again)",
            Phase::Abortable(_) => "in a transaction that must be aborted",
            Phase::Fatal(_) => "failed for good",
        }
    }
}

/// What the sender may do with a partition's queued batches.
#[derive(Debug)]
pub(crate) enum Gate {
    /// Send them.
    Send,
    /// Hold them: the partition is being added to the transaction.
    Wait,
    /// Fail them unsent with this error: the transaction is being aborted.
    Fail(Error),
}

/// How a coordinator answered, and what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// Done.
    Ok,
    /// Try the same request again after a backoff.
    Retry,
    /// Find the coordinator again, then retry.
    Refind,
    /// The transaction must be aborted.
    Abortable,
    /// A newer producer took over.
    Fenced,
    /// Nothing more can be done.
    Fatal,
}

/// Java's classification of coordinator errors (`TransactionManager`'s
/// handlers): what follows an error `code` from a transactional request.
pub(crate) fn classify(code: ErrorCode) -> Next {
    match code {
        ErrorCode::NONE => Next::Ok,
        ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE => Next::Refind,
        ErrorCode::PRODUCER_FENCED | ErrorCode::INVALID_PRODUCER_EPOCH => Next::Fenced,
        ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        | ErrorCode::CLUSTER_AUTHORIZATION_FAILED
        | ErrorCode::UNSUPPORTED_VERSION
        | ErrorCode::INVALID_TXN_STATE
        | ErrorCode::INVALID_TRANSACTION_TIMEOUT => Next::Fatal,
        // OPERATION_NOT_ATTEMPTED (55): another partition of the request failed.
        c if c.code() == 55 => Next::Retry,
        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
        | ErrorCode::CONCURRENT_TRANSACTIONS
        | ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => Next::Retry,
        c if c.is_retriable() => Next::Retry,
        // INVALID_PRODUCER_ID_MAPPING, UNKNOWN_PRODUCER_ID, TOPIC_ and
        // GROUP_AUTHORIZATION_FAILED, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
        // FENCED_INSTANCE_ID, TRANSACTION_ABORTABLE, and what Java does not name.
        _ => Next::Abortable,
    }
}

struct State {
    phase: Phase,
    /// The producer id and epoch batches are stamped with.
    producer: Option<(i64, i16)>,
    /// Transactions v2 (KIP-890): the coordinator has `transaction.version` ≥ 2.
    v2: bool,
    /// The transaction coordinator, once found.
    coordinator: Option<BrokerAddr>,
    /// Whether the transaction has anything on the coordinator's books (partitions
    /// or offsets), so that it needs an EndTxn.
    started: bool,
    /// Whether an EndTxn of this transaction was sent (its outcome may be known
    /// to the coordinator even if its answer never came).
    end_sent: bool,
    /// Transactions v1: partitions waiting for AddPartitionsToTxn.
    pending: Vec<Arc<PartitionQueue>>,
    /// An AddPartitionsToTxn round is running.
    adding: bool,
}

/// A transactional producer's state, shared by its handles and its sender.
pub(crate) struct Transactions {
    id: String,
    timeout_ms: i32,
    max_block: Duration,
    backoff: Backoff,
    caller: Caller,
    state: Mutex<State>,
    /// The current transaction's serial: a partition whose `txn_added` equals it
    /// was added to it.
    serial: AtomicU64,
    /// One transactional call at a time.
    op: tokio::sync::Mutex<()>,
    /// Notified when an AddPartitionsToTxn round ends: EndTxn waits for it.
    round_ended: tokio::sync::Notify,
}

impl std::fmt::Debug for Transactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transactions").field("id", &self.id).field("phase", &self.state.lock().phase).finish()
    }
}

/// The EndTxn and TxnOffsetCommit versions of transactions v2 (KIP-890).
const V2_END_TXN: i16 = 5;
/// Produce from v12 adds partitions to the transaction (KIP-890); a v1 client
/// stays below.
const V1_MAX_PRODUCE: i16 = 11;
const V1_MAX_END_TXN: i16 = 4;
const V1_MAX_TXN_OFFSET_COMMIT: i16 = 4;

impl Transactions {
    pub(crate) fn new(
        id: String,
        timeout: Duration,
        max_block: Duration,
        backoff: Backoff,
        caller: Caller,
    ) -> Transactions {
        Transactions {
            id,
            timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
            max_block,
            backoff,
            caller,
            state: Mutex::new(State {
                phase: Phase::Uninitialized,
                producer: None,
                v2: false,
                coordinator: None,
                started: false,
                end_sent: false,
                pending: Vec::new(),
                adding: false,
            }),
            serial: AtomicU64::new(0),
            op: tokio::sync::Mutex::new(()),
            round_ended: tokio::sync::Notify::new(),
        }
    }

    /// The `transactional.id`.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    // ---- What the sender asks. ----

    /// The producer id and epoch to stamp batches with.
    pub(crate) fn producer(&self) -> Option<(i64, i16)> {
        self.state.lock().producer
    }

    /// The highest Produce version to use: below v12 with transactions v1.
    pub(crate) fn max_produce_version(&self) -> Option<i16> {
        (!self.state.lock().v2).then_some(V1_MAX_PRODUCE)
    }

    /// Whether `q`'s queued batches may be sent now.
    pub(crate) fn gate(&self, q: &Arc<PartitionQueue>) -> Gate {
        let serial = self.serial.load(Ordering::Acquire);
        let mut st = self.state.lock();
        match &st.phase {
            Phase::InTransaction | Phase::Committing => {}
            Phase::Aborting => return Gate::Fail(Error::new(ErrorKind::TransactionAborted).written(false)),
            Phase::Abortable(e) => {
                return Gate::Fail(
                    Error::new(ErrorKind::TransactionAborted).caused_by(e.clone()).written(false),
                );
            }
            Phase::Fatal(e) => return Gate::Fail(e.clone().written(false)),
            other => {
                let reason = format!("the producer is {}", other.name());
                let e = Error::new(ErrorKind::TransactionState { operation: "send", reason });
                return Gate::Fail(e.written(false));
            }
        }
        if st.v2 {
            st.started = true;
            return Gate::Send;
        }
        if q.txn_added.load(Ordering::Acquire) == serial {
            return Gate::Send;
        }
        if !st.pending.iter().any(|p| Arc::ptr_eq(p, q)) {
            st.pending.push(q.clone());
        }
        Gate::Wait
    }

    /// Whether an AddPartitionsToTxn round should start now (and marks it
    /// started): partitions wait and none is running.
    pub(crate) fn start_adding(&self) -> bool {
        let mut st = self.state.lock();
        if st.pending.is_empty() || st.adding {
            return false;
        }
        st.adding = true;
        true
    }

    /// A partition's sequence cannot go on within this epoch: the transaction
    /// must abort (the abort's epoch bump starts it over), as Java's.
    pub(crate) fn sequence_unresolved(&self, q: &PartitionQueue) {
        let e = Error::new(ErrorKind::TransactionAbortable {
            reason: "a batch's outcome is unknown after its retries ran out, so the partition's sequence \
                     cannot go on"
                .into(),
        })
        .for_partition(&q.topic, Some(q.partition));
        self.abortable(e);
    }

    fn abortable(&self, e: Error) {
        let mut st = self.state.lock();
        if matches!(st.phase, Phase::InTransaction | Phase::Committing) {
            tracing::warn!(transactional_id = %self.id, error = %e, "the transaction must be aborted");
            st.phase = Phase::Abortable(e);
        }
    }

    fn fatal(&self, e: Error) -> Error {
        tracing::error!(transactional_id = %self.id, error = %e, "transactional producer failed for good");
        self.state.lock().phase = Phase::Fatal(e.clone());
        e
    }

    fn fenced(&self) -> Error {
        self.fatal(Error::new(ErrorKind::Fenced { transactional_id: self.id.clone() }))
    }

    /// One round of AddPartitionsToTxn for the partitions waiting (transactions
    /// v1), run from the sender's event loop; retries back off inside the round.
    pub(crate) async fn add_partitions(self: Arc<Self>) {
        let serial = self.serial.load(Ordering::Acquire);
        let (queues, producer) = {
            let st = self.state.lock();
            (st.pending.clone(), st.producer)
        };
        let outcome = match producer {
            Some(p) if !queues.is_empty() => self.add_partitions_once(&queues, p).await,
            _ => Ok(Next::Ok),
        };
        let mut st = self.state.lock();
        st.adding = false;
        self.round_ended.notify_waiters();
        match outcome {
            Ok(Next::Ok) => {
                for q in &queues {
                    q.txn_added.store(serial, Ordering::Release);
                }
                st.pending.retain(|p| !queues.iter().any(|q| Arc::ptr_eq(p, q)));
                if !queues.is_empty() {
                    st.started = true;
                }
            }
            Ok(Next::Refind) => st.coordinator = None,
            Ok(_) => {}
            Err(e) => {
                st.pending.clear();
                drop(st);
                if e.is_transaction_fatal() {
                    self.fatal(e);
                } else {
                    self.abortable(e);
                }
            }
        }
    }

    /// Sends AddPartitionsToTxn once: `Ok(Next::Ok)` when every partition was
    /// added, `Ok(Retry|Refind)` after a backoff, `Err` for an error to act on.
    async fn add_partitions_once(
        &self,
        queues: &[Arc<PartitionQueue>],
        (pid, epoch): (i64, i16),
    ) -> Result<Next> {
        let target = match self.coordinator().await {
            Ok(t) => t,
            Err(e) if e.is_retriable() || e.is_timeout() => {
                tokio::time::sleep(self.backoff.after(1)).await;
                return Ok(Next::Retry);
            }
            Err(e) => return Err(e),
        };
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for q in queues {
            by_topic.entry(&q.topic).or_default().push(q.partition);
        }
        let mut req = AddPartitionsToTxnRequest::default();
        req.v3_and_below_transactional_id = TransactionalId(StrBytes::from_string(self.id.clone()));
        req.v3_and_below_producer_id = ProducerId(pid);
        req.v3_and_below_producer_epoch = epoch;
        req.v3_and_below_topics = by_topic
            .into_iter()
            .map(|(t, partitions)| {
                let mut topic = AddPartitionsToTxnTopic::default();
                topic.name = TopicName(StrBytes::from_string(t.to_owned()));
                topic.partitions = partitions;
                topic
            })
            .collect();
        let resp = match self.caller.call(&target, TxnRequest::AddPartitionsToTxn(req), None).await {
            Ok(TxnResponse::AddPartitionsToTxn(r)) => r,
            Ok(_) => {
                return Err(Error::protocol(target_name(&target), "mismatched answer to AddPartitionsToTxn"));
            }
            Err(e) => {
                tracing::debug!(error = %e, "AddPartitionsToTxn failed; finding the coordinator again");
                tokio::time::sleep(self.backoff.after(1)).await;
                return Ok(Next::Refind);
            }
        };
        let (next, code, at) = worst(resp.results_by_topic_v3_and_below.iter().flat_map(|t| {
            t.results_by_partition.iter().map(move |p| {
                (ErrorCode::new(p.partition_error_code), (t.name.0.to_string(), p.partition_index))
            })
        }));
        let named = |e: Error| match &at {
            Some((t, p)) => e.for_partition(&Arc::from(t.as_str()), Some(*p)),
            None => e,
        };
        match next {
            Next::Ok => Ok(Next::Ok),
            Next::Retry | Next::Refind => {
                // Java retries the first AddPartitions of a transaction that meets
                // CONCURRENT_TRANSACTIONS after 20 ms: the previous EndTxn is being
                // completed.
                let wait = if code == ErrorCode::CONCURRENT_TRANSACTIONS {
                    Duration::from_millis(20)
                } else {
                    self.backoff.after(1)
                };
                tokio::time::sleep(wait).await;
                Ok(next)
            }
            Next::Fenced => Err(Error::new(ErrorKind::Fenced { transactional_id: self.id.clone() })),
            Next::Fatal | Next::Abortable => Err(named(failure(&next, code, "AddPartitionsToTxn", || {
                "a partition could not be added to the transaction".into()
            }))),
        }
    }

    /// The transaction coordinator, found (FindCoordinator) if not known.
    async fn coordinator(&self) -> Result<Target> {
        if let Some(c) = self.state.lock().coordinator.clone() {
            return Ok(Target::Broker(c));
        }
        let addr = self.find(1, &self.id).await?;
        self.state.lock().coordinator = Some(addr.clone());
        Ok(Target::Broker(addr))
    }

    /// FindCoordinator for `key` (`key_type` 0: group, 1: transaction), retried
    /// while no coordinator is available.
    async fn find(&self, key_type: i8, key: &str) -> Result<BrokerAddr> {
        let mut failures = 0u32;
        loop {
            let mut req = FindCoordinatorRequest::default();
            req.key = StrBytes::from_string(key.to_owned());
            req.key_type = key_type;
            let outcome: Result<()> =
                match self.caller.call(&Target::Any, TxnRequest::FindCoordinator(req), None).await {
                    Ok(TxnResponse::FindCoordinator(r)) => {
                        let code = ErrorCode::new(r.error_code);
                        match (classify(code), u16::try_from(r.port)) {
                            (Next::Ok, Ok(port)) => {
                                let addr =
                                    BrokerAddr { node_id: Some(r.node_id.0), host: r.host.to_string(), port };
                                tracing::debug!(key, key_type, coordinator = %addr, "found the coordinator");
                                return Ok(addr);
                            }
                            (Next::Ok, Err(_)) => {
                                Err(Error::protocol("FindCoordinator", "a port out of range"))
                            }
                            (Next::Retry | Next::Refind, _) => {
                                Err(Error::broker(code, Some("FindCoordinator".into())))
                            }
                            (_, _) => {
                                let e = Error::broker(code, r.error_message.as_ref().map(|m| m.to_string()));
                                return Err(Error::new(ErrorKind::TransactionFatal {
                                    reason: format!("no coordinator for {key:?}"),
                                })
                                .caused_by(e));
                            }
                        }
                    }
                    Ok(_) => Err(Error::protocol("FindCoordinator", "mismatched answer")),
                    Err(e) => Err(e),
                };
            if let Err(e) = outcome {
                failures += 1;
                tracing::debug!(key, error = %e, "FindCoordinator failed; retrying");
                tokio::time::sleep(self.backoff.after(failures)).await;
            }
        }
    }

    /// Runs a coordinator request until it succeeds or fails for good:
    /// retriable errors back off, coordinator moves find it again. `make` builds
    /// the request for the producer id and epoch; `code` reads the answer's error.
    async fn coordinator_request<T>(
        &self,
        api: &'static str,
        max_version: Option<i16>,
        make: impl Fn() -> TxnRequest,
        code: impl Fn(&TxnResponse) -> ErrorCode,
        mut on_sent: impl FnMut(),
        ok: impl Fn(TxnResponse) -> T,
    ) -> Result<T> {
        let mut failures = 0u32;
        loop {
            let target = self.coordinator().await?;
            on_sent();
            let next = match self.caller.call(&target, make(), max_version).await {
                Ok(resp) => {
                    let c = code(&resp);
                    match classify(c) {
                        Next::Ok => return Ok(ok(resp)),
                        Next::Fenced => return Err(self.fenced()),
                        Next::Fatal => return Err(self.fatal(failure(&Next::Fatal, c, api, String::new))),
                        Next::Abortable => {
                            return Err(failure(&Next::Abortable, c, api, || format!("{api} failed")));
                        }
                        n => {
                            tracing::debug!(api, error = %c, "transactional request failed; retrying");
                            n
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(api, error = %e, "transactional request failed; finding the coordinator again");
                    Next::Refind
                }
            };
            if next == Next::Refind {
                self.state.lock().coordinator = None;
            }
            failures += 1;
            tokio::time::sleep(self.backoff.after(failures)).await;
        }
    }

    // ---- The calls. ----

    /// Bounds a call by `max.block.ms`, one call at a time.
    async fn bounded<T>(&self, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let deadline = Instant::now() + self.max_block;
        let _op = tokio::time::timeout_at(deadline, self.op.lock())
            .await
            .map_err(|_| Error::timeout(TimeoutKind::Transaction, self.max_block))?;
        match tokio::time::timeout_at(deadline, f).await {
            Ok(r) => r,
            Err(_) => {
                let mut e = Error::timeout(TimeoutKind::Transaction, self.max_block);
                if self.state.lock().end_sent {
                    // The coordinator may have completed the transaction.
                    e = e.written(true);
                }
                Err(e)
            }
        }
    }

    fn refuse(&self, operation: &'static str, allowed: impl Fn(&Phase) -> bool) -> Result<()> {
        let st = self.state.lock();
        match &st.phase {
            p if allowed(p) => Ok(()),
            Phase::Fatal(e) => Err(e.clone()),
            // What made the transaction abortable says what to do.
            Phase::Abortable(e) => Err(e.clone()),
            p => Err(Error::new(ErrorKind::TransactionState {
                operation,
                reason: format!("the producer is {}", p.name()),
            })),
        }
    }

    /// `init_transactions`: finds the coordinator, learns whether it speaks
    /// transactions v2, and gets the producer id and epoch (fencing older
    /// producers with this id and aborting what they left open).
    pub(crate) async fn init(&self) -> Result<()> {
        self.bounded(async {
            self.refuse("init_transactions", |p| matches!(p, Phase::Uninitialized | Phase::Initializing))?;
            self.state.lock().phase = Phase::Initializing;
            self.learn_version().await?;
            let (pid, epoch) = self.init_producer_id(None).await?;
            let mut st = self.state.lock();
            st.producer = Some((pid, epoch));
            st.phase = Phase::Ready;
            tracing::info!(transactional_id = %self.id, producer_id = pid, epoch, v2 = st.v2, "transactions initialised");
            Ok(())
        })
        .await
    }

    /// Transactions v2 needs the coordinator's `transaction.version` feature at 2
    /// or more (finalized, in its ApiVersions answer) and EndTxn v5.
    async fn learn_version(&self) -> Result<()> {
        let mut failures = 0u32;
        let resp = loop {
            let target = self.coordinator().await?;
            let mut req = ApiVersionsRequest::default();
            req.client_software_name = StrBytes::from_static_str("herald");
            req.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
            match self.caller.call(&target, TxnRequest::ApiVersions(req), None).await {
                Ok(TxnResponse::ApiVersions(r)) if r.error_code == 0 => break r,
                Ok(_) | Err(_) => {
                    self.state.lock().coordinator = None;
                    failures += 1;
                    tokio::time::sleep(self.backoff.after(failures)).await;
                }
            }
        };
        let feature = resp
            .finalized_features
            .iter()
            .find(|f| &*f.name == "transaction.version")
            .map_or(0, |f| f.max_version_level);
        let max = |api: ApiKey| {
            resp.api_keys.iter().find(|k| k.api_key == api as i16).map_or(-1, |k| k.max_version)
        };
        let v2 = feature >= 2 && max(ApiKey::EndTxn) >= V2_END_TXN && max(ApiKey::Produce) > V1_MAX_PRODUCE;
        if max(ApiKey::InitProducerId) < 0 || max(ApiKey::EndTxn) < 0 {
            return Err(self.fatal(Error::new(ErrorKind::TransactionFatal {
                reason: "the transaction coordinator does not support transactions".into(),
            })));
        }
        self.state.lock().v2 = v2;
        Ok(())
    }

    /// InitProducerId with the transactional id; with `current`, bumps that
    /// producer's epoch (KIP-360).
    async fn init_producer_id(&self, current: Option<(i64, i16)>) -> Result<(i64, i16)> {
        let (pid, epoch) = current.unwrap_or((NO_PRODUCER_ID, NO_PRODUCER_EPOCH));
        let r = self
            .coordinator_request(
                "InitProducerId",
                None,
                || {
                    let mut req = InitProducerIdRequest::default();
                    req.transactional_id = Some(TransactionalId(StrBytes::from_string(self.id.clone())));
                    req.transaction_timeout_ms = self.timeout_ms;
                    req.producer_id = ProducerId(pid);
                    req.producer_epoch = epoch;
                    TxnRequest::InitProducerId(req)
                },
                |r| match r {
                    TxnResponse::InitProducerId(r) => ErrorCode::new(r.error_code),
                    _ => ErrorCode::UNKNOWN_SERVER_ERROR,
                },
                || {},
                |r| match r {
                    TxnResponse::InitProducerId(r) => (r.producer_id.0, r.producer_epoch),
                    _ => (NO_PRODUCER_ID, NO_PRODUCER_EPOCH),
                },
            )
            .await;
        match r {
            // During initialisation nothing can be aborted: what Java calls
            // abortable is fatal here.
            Err(e) if e.is_transaction_abortable() => Err(self.fatal(
                Error::new(ErrorKind::TransactionFatal { reason: "InitProducerId failed".into() })
                    .caused_by(e),
            )),
            other => other,
        }
    }

    /// `begin_transaction`.
    pub(crate) fn begin(&self) -> Result<()> {
        self.refuse("begin_transaction", |p| matches!(p, Phase::Ready))?;
        let mut st = self.state.lock();
        st.started = false;
        st.end_sent = false;
        st.pending.clear();
        self.serial.fetch_add(1, Ordering::AcqRel);
        st.phase = Phase::InTransaction;
        Ok(())
    }

    /// Whether a record may be sent now (`send` in a transaction).
    pub(crate) fn check_send(&self) -> Result<()> {
        self.refuse("send", |p| matches!(p, Phase::InTransaction))
    }

    /// A record was refused before it was queued: as in Java, the transaction
    /// cannot commit without it.
    pub(crate) fn record_refused(&self, e: &Error) {
        if !matches!(e.kind(), ErrorKind::TransactionState { .. })
            && !e.is_transaction_abortable()
            && !e.is_transaction_fatal()
        {
            self.abortable(
                Error::new(ErrorKind::TransactionAbortable { reason: "a record of it was refused".into() })
                    .caused_by(e.clone()),
            );
        }
    }

    /// `send_offsets_to_transaction`.
    pub(crate) async fn send_offsets(
        &self,
        offsets: Vec<TxnOffset>,
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        self.bounded(async {
            self.refuse("send_offsets_to_transaction", |p| matches!(p, Phase::InTransaction))?;
            let r = self.send_offsets_inner(offsets, group).await;
            if let Err(e) = &r {
                if !e.is_transaction_fatal() {
                    self.abortable(e.clone());
                }
            }
            r
        })
        .await
    }

    async fn send_offsets_inner(&self, offsets: Vec<TxnOffset>, group: &ConsumerGroupMetadata) -> Result<()> {
        let (pid, epoch) = self.producer().unwrap_or((NO_PRODUCER_ID, NO_PRODUCER_EPOCH));
        let v2 = self.state.lock().v2;
        if !v2 {
            // Transactions v1: the group joins the transaction first, so its
            // offsets become visible with the commit (TxnOffsetCommit v5 does this
            // itself with v2).
            self.coordinator_request(
                "AddOffsetsToTxn",
                None,
                || {
                    let mut req = AddOffsetsToTxnRequest::default();
                    req.transactional_id = TransactionalId(StrBytes::from_string(self.id.clone()));
                    req.producer_id = ProducerId(pid);
                    req.producer_epoch = epoch;
                    req.group_id = GroupId(StrBytes::from_string(group.group_id.clone()));
                    TxnRequest::AddOffsetsToTxn(req)
                },
                |r| match r {
                    TxnResponse::AddOffsetsToTxn(r) => ErrorCode::new(r.error_code),
                    _ => ErrorCode::UNKNOWN_SERVER_ERROR,
                },
                || {},
                |_| (),
            )
            .await?;
        }
        self.state.lock().started = true;
        let mut by_topic: BTreeMap<String, Vec<TxnOffsetCommitRequestPartition>> = BTreeMap::new();
        for o in offsets {
            let mut p = TxnOffsetCommitRequestPartition::default();
            p.partition_index = o.partition;
            p.committed_offset = o.offset;
            p.committed_leader_epoch = o.leader_epoch.unwrap_or(-1);
            p.committed_metadata = Some(StrBytes::from_string(o.metadata.unwrap_or_default()));
            by_topic.entry(o.topic).or_default().push(p);
        }
        let topics: Vec<TxnOffsetCommitRequestTopic> = by_topic
            .into_iter()
            .map(|(t, partitions)| {
                let mut topic = TxnOffsetCommitRequestTopic::default();
                topic.name = TopicName(StrBytes::from_string(t));
                topic.partitions = partitions;
                topic
            })
            .collect();
        let max_version = (!v2).then_some(V1_MAX_TXN_OFFSET_COMMIT);
        let mut failures = 0u32;
        let mut coordinator: Option<BrokerAddr> = None;
        loop {
            let target = match &coordinator {
                Some(c) => c.clone(),
                None => {
                    let c = self.find(0, &group.group_id).await?;
                    coordinator = Some(c.clone());
                    c
                }
            };
            let mut req = TxnOffsetCommitRequest::default();
            req.transactional_id = TransactionalId(StrBytes::from_string(self.id.clone()));
            req.group_id = GroupId(StrBytes::from_string(group.group_id.clone()));
            req.producer_id = ProducerId(pid);
            req.producer_epoch = epoch;
            req.generation_id = group.generation_id;
            req.member_id = StrBytes::from_string(group.member_id.clone());
            req.group_instance_id = group.group_instance_id.clone().map(StrBytes::from_string);
            req.topics = topics.clone();
            let next = match self
                .caller
                .call(&Target::Broker(target), TxnRequest::TxnOffsetCommit(req), max_version)
                .await
            {
                Ok(TxnResponse::TxnOffsetCommit(r)) => {
                    let codes = r
                        .topics
                        .iter()
                        .flat_map(|t| t.partitions.iter().map(|p| (ErrorCode::new(p.error_code), ())));
                    match worst(codes) {
                        (Next::Ok, ..) => return Ok(()),
                        (Next::Fenced, ..) => return Err(self.fenced()),
                        (Next::Fatal, c, _) => {
                            return Err(self.fatal(failure(&Next::Fatal, c, "TxnOffsetCommit", String::new)));
                        }
                        (Next::Abortable, c, _) => {
                            return Err(failure(&Next::Abortable, c, "TxnOffsetCommit", || {
                                format!("the offsets of group {:?} could not be committed", group.group_id)
                            }));
                        }
                        (n, ..) => n,
                    }
                }
                Ok(_) => Next::Refind,
                Err(_) => Next::Refind,
            };
            if next == Next::Refind {
                coordinator = None;
            }
            failures += 1;
            tokio::time::sleep(self.backoff.after(failures)).await;
        }
    }

    /// The first part of `commit_transaction`: refuses new records. Returns
    /// whether the transaction must abort instead (the error to return).
    pub(crate) fn begin_commit(&self) -> Result<()> {
        self.refuse("commit_transaction", |p| matches!(p, Phase::InTransaction | Phase::Committing))?;
        self.state.lock().phase = Phase::Committing;
        Ok(())
    }

    /// The first part of `abort_transaction`: queued records fail unsent from now.
    pub(crate) fn begin_abort(&self) -> Result<()> {
        self.refuse("abort_transaction", |p| {
            matches!(p, Phase::InTransaction | Phase::Aborting | Phase::Abortable(_))
        })?;
        let mut st = self.state.lock();
        st.phase = Phase::Aborting;
        st.pending.clear();
        Ok(())
    }

    /// After every record of the transaction is resolved: `failure` is the first
    /// that failed. Commits (EndTxn) unless one did.
    pub(crate) async fn finish_commit(&self, failure: Option<Error>) -> Result<()> {
        self.bounded(async {
            if let Some(e) = failure {
                if let ErrorKind::Broker { code: ErrorCode::PRODUCER_FENCED, .. } = e.kind() {
                    return Err(self.fenced());
                }
                let e =
                    Error::new(ErrorKind::TransactionAbortable { reason: "a record of it failed".into() })
                        .caused_by(e);
                self.abortable(e.clone());
                return Err(e);
            }
            if let Phase::Abortable(e) = &self.state.lock().phase {
                return Err(e.clone());
            }
            self.end(true).await
        })
        .await
    }

    /// After every record of the transaction is resolved: aborts (EndTxn), then,
    /// with transactions v1 after a failure, bumps the epoch (KIP-360) so that no
    /// late write of the aborted transaction can land under the next one.
    pub(crate) async fn finish_abort(&self, failure: Option<Error>) -> Result<()> {
        self.bounded(async {
            self.end(false).await?;
            let (v2, producer) = {
                let st = self.state.lock();
                (st.v2, st.producer)
            };
            if !v2 && failure.is_some() {
                let (pid, epoch) = self.init_producer_id(producer).await?;
                tracing::info!(transactional_id = %self.id, producer_id = pid, epoch, "epoch bumped after the abort");
                self.state.lock().producer = Some((pid, epoch));
            }
            Ok(())
        })
        .await
    }

    /// EndTxn (when the transaction touched the coordinator), then ready.
    async fn end(&self, commit: bool) -> Result<()> {
        // An AddPartitionsToTxn round still running may put partitions on the
        // coordinator's books after `started` is read: wait for it (as Java's
        // TransactionManager sends EndTxn only after its pending AddPartitions), and
        // start no other (a record still waiting to be added has failed by now).
        // Otherwise an abort would skip its EndTxn, and the epoch bump after it
        // would find the transaction ongoing and fence this producer.
        let (started, v2, (pid, epoch)) = loop {
            let ended = self.round_ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            {
                let mut st = self.state.lock();
                if !st.adding {
                    st.pending.clear();
                    break (st.started, st.v2, st.producer.unwrap_or((NO_PRODUCER_ID, NO_PRODUCER_EPOCH)));
                }
            }
            ended.await;
        };
        if started {
            let api = if commit { "EndTxn (commit)" } else { "EndTxn (abort)" };
            let max_version = (!v2).then_some(V1_MAX_END_TXN);
            let next_id = self
                .coordinator_request(
                    api,
                    max_version,
                    || {
                        let mut req = EndTxnRequest::default();
                        req.transactional_id = TransactionalId(StrBytes::from_string(self.id.clone()));
                        req.producer_id = ProducerId(pid);
                        req.producer_epoch = epoch;
                        req.committed = commit;
                        TxnRequest::EndTxn(req)
                    },
                    |r| match r {
                        TxnResponse::EndTxn(r) => ErrorCode::new(r.error_code),
                        _ => ErrorCode::UNKNOWN_SERVER_ERROR,
                    },
                    || self.state.lock().end_sent = true,
                    |r| match r {
                        // EndTxn v5 (transactions v2) bumps the epoch and returns it.
                        TxnResponse::EndTxn(r) if r.producer_id.0 >= 0 && r.producer_epoch >= 0 => {
                            Some((r.producer_id.0, r.producer_epoch))
                        }
                        _ => None,
                    },
                )
                .await;
            let next_id = match next_id {
                Ok(id) => id,
                Err(e) if e.is_transaction_fatal() => return Err(e),
                Err(e) => {
                    let e = if self.state.lock().end_sent && commit { e.written(true) } else { e };
                    if commit {
                        self.abortable(e.clone());
                    }
                    return Err(e);
                }
            };
            let mut st = self.state.lock();
            if v2 {
                if let Some(id) = next_id {
                    st.producer = Some(id);
                }
            }
        }
        let mut st = self.state.lock();
        st.phase = Phase::Ready;
        st.started = false;
        st.end_sent = false;
        tracing::debug!(transactional_id = %self.id, commit, "transaction ended");
        Ok(())
    }
}

/// The worst of several partitions' answers: what to do, its code, and where it
/// came from (`None` when every answer was fine).
fn worst<T>(codes: impl IntoIterator<Item = (ErrorCode, T)>) -> (Next, ErrorCode, Option<T>) {
    let mut out = (Next::Ok, ErrorCode::NONE, None);
    for (code, at) in codes {
        let next = classify(code);
        if rank(&next) > rank(&out.0) {
            out = (next, code, Some(at));
        }
    }
    out
}

/// The error a transactional request `api` ends with when its answer `code` is
/// fatal (refused) or abortable (`reason` says what failed).
fn failure(next: &Next, code: ErrorCode, api: &str, reason: impl FnOnce() -> String) -> Error {
    let kind = match next {
        Next::Fatal => ErrorKind::TransactionFatal { reason: format!("{api} was refused") },
        _ => ErrorKind::TransactionAbortable { reason: reason() },
    };
    Error::new(kind).caused_by(Error::broker(code, Some(api.into())))
}

/// How bad a [`Next`] is, to act on the worst of several partitions' answers.
fn rank(n: &Next) -> u8 {
    match n {
        Next::Ok => 0,
        Next::Retry => 1,
        Next::Refind => 2,
        Next::Abortable => 3,
        Next::Fatal => 4,
        Next::Fenced => 5,
    }
}

fn target_name(t: &Target) -> String {
    match t {
        Target::Any => "any broker".into(),
        Target::Broker(a) => a.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinator_errors_are_classified_as_java_does() {
        assert_eq!(classify(ErrorCode::NONE), Next::Ok);
        assert_eq!(classify(ErrorCode::NOT_COORDINATOR), Next::Refind);
        assert_eq!(classify(ErrorCode::COORDINATOR_NOT_AVAILABLE), Next::Refind);
        assert_eq!(classify(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS), Next::Retry);
        assert_eq!(classify(ErrorCode::CONCURRENT_TRANSACTIONS), Next::Retry);
        assert_eq!(classify(ErrorCode::new(55)), Next::Retry, "OPERATION_NOT_ATTEMPTED");
        assert_eq!(classify(ErrorCode::PRODUCER_FENCED), Next::Fenced);
        assert_eq!(classify(ErrorCode::INVALID_PRODUCER_EPOCH), Next::Fenced);
        assert_eq!(classify(ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED), Next::Fatal);
        assert_eq!(classify(ErrorCode::INVALID_TXN_STATE), Next::Fatal);
        assert_eq!(classify(ErrorCode::TOPIC_AUTHORIZATION_FAILED), Next::Abortable);
        assert_eq!(classify(ErrorCode::INVALID_PRODUCER_ID_MAPPING), Next::Abortable);
        assert_eq!(classify(ErrorCode::TRANSACTION_ABORTABLE), Next::Abortable);
        assert_eq!(classify(ErrorCode::ILLEGAL_GENERATION), Next::Abortable);
        assert!(rank(&Next::Fenced) > rank(&Next::Abortable) && rank(&Next::Abortable) > rank(&Next::Retry));
        let codes = [
            (ErrorCode::NONE, 0),
            (ErrorCode::CONCURRENT_TRANSACTIONS, 1),
            (ErrorCode::TOPIC_AUTHORIZATION_FAILED, 2),
        ];
        assert_eq!(worst(codes), (Next::Abortable, ErrorCode::TOPIC_AUTHORIZATION_FAILED, Some(2)));
        assert_eq!(worst([(ErrorCode::NONE, ())]), (Next::Ok, ErrorCode::NONE, None));
    }

    fn txns() -> (Transactions, mpsc::UnboundedReceiver<Call>) {
        let (caller, rx) = Caller::new();
        let b = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
        (Transactions::new("tx".into(), Duration::from_secs(60), Duration::from_secs(5), b, caller), rx)
    }

    #[test]
    fn calls_in_the_wrong_state_are_refused_and_change_nothing() {
        let (t, _rx) = txns();
        let e = t.begin().unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::TransactionState { operation: "begin_transaction", .. }),
            "{e}"
        );
        assert!(e.to_string().contains("init_transactions"), "{e}");
        assert!(t.check_send().is_err());
        t.state.lock().phase = Phase::Ready;
        assert!(t.check_send().unwrap_err().to_string().contains("begin_transaction"));
        assert!(t.begin_commit().is_err(), "nothing to commit");
        t.begin().unwrap();
        assert!(t.begin().is_err(), "one transaction at a time");
        t.check_send().unwrap();
        t.record_refused(&Error::new(ErrorKind::UnknownTopic));
        let e = t.check_send().unwrap_err();
        assert!(e.is_transaction_abortable(), "{e}");
        assert!(t.begin_commit().unwrap_err().is_transaction_abortable());
        t.begin_abort().unwrap();
        t.state.lock().phase = Phase::Fatal(Error::new(ErrorKind::Fenced { transactional_id: "tx".into() }));
        for r in [t.begin(), t.check_send(), t.begin_commit(), t.begin_abort()] {
            assert!(r.unwrap_err().is_transaction_fatal());
        }
    }

    #[test]
    fn v1_partitions_wait_until_added_and_abort_fails_queued_batches() {
        let (t, _rx) = txns();
        t.state.lock().phase = Phase::Ready;
        t.begin().unwrap();
        let q = Arc::new(PartitionQueue::new(Arc::from("t"), 0, false));
        assert!(matches!(t.gate(&q), Gate::Wait));
        assert!(matches!(t.gate(&q), Gate::Wait));
        assert_eq!(t.state.lock().pending.len(), 1, "registered once");
        assert!(t.start_adding());
        assert!(!t.start_adding(), "one round at a time");
        q.txn_added.store(t.serial.load(Ordering::Acquire), Ordering::Release);
        assert!(matches!(t.gate(&q), Gate::Send));
        t.begin_abort().unwrap();
        match t.gate(&q) {
            Gate::Fail(e) => {
                assert!(matches!(e.kind(), ErrorKind::TransactionAborted) && !e.may_have_been_written())
            }
            g => panic!("{g:?}"),
        }
    }

    #[test]
    fn v2_partitions_need_no_add() {
        let (t, _rx) = txns();
        {
            let mut st = t.state.lock();
            st.phase = Phase::Ready;
            st.v2 = true;
        }
        t.begin().unwrap();
        let q = Arc::new(PartitionQueue::new(Arc::from("t"), 0, false));
        assert!(matches!(t.gate(&q), Gate::Send));
        assert!(t.state.lock().started, "a Produce adds the partition: EndTxn is due");
        assert_eq!(t.max_produce_version(), None);
    }
}
