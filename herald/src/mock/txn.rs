//! The transaction coordinator (KIP-98, KIP-890) and the transactional offset
//! commits of the group coordinator (KIP-447).
//!
//! One state machine per transactional id, as Kafka's `TransactionMetadata`:
//! `Empty` after InitProducerId, `Ongoing` once a partition or group is added,
//! `CompleteCommit`/`CompleteAbort` once EndTxn (or the coordinator, on a timeout)
//! ended it. Markers are written synchronously, so the `Prepare*` states Kafka
//! passes through (and the `CONCURRENT_TRANSACTIONS` they cause) never show.
//!
//! Epochs follow `TransactionCoordinator`: InitProducerId bumps (remembering the
//! previous epoch, so a retried bump gets the same answer); fencing an open
//! transaction (a new InitProducerId, or its timeout) bumps and forgets the
//! previous epoch, so the fenced producer cannot come back with it. With
//! `transaction.version` 2, EndTxn v5 bumps too and the markers carry the new epoch.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::state::State;
use crate::error::ErrorCode;
use crate::protocol::records::BatchHeader;

/// `COORDINATOR_NOT_AVAILABLE`.
pub(crate) const COORDINATOR_NOT_AVAILABLE: ErrorCode = ErrorCode::new(15);
/// `NOT_COORDINATOR`.
pub(crate) const NOT_COORDINATOR: ErrorCode = ErrorCode::new(16);
/// `UNKNOWN_MEMBER_ID`.
pub(crate) const UNKNOWN_MEMBER_ID: ErrorCode = ErrorCode::new(25);
/// `INVALID_TXN_STATE`.
pub(crate) const INVALID_TXN_STATE: ErrorCode = ErrorCode::new(48);
/// `INVALID_PRODUCER_ID_MAPPING`.
pub(crate) const INVALID_PRODUCER_ID_MAPPING: ErrorCode = ErrorCode::new(49);
/// `INVALID_TRANSACTION_TIMEOUT`.
pub(crate) const INVALID_TRANSACTION_TIMEOUT: ErrorCode = ErrorCode::new(50);
/// `TRANSACTIONAL_ID_AUTHORIZATION_FAILED`.
pub(crate) const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: ErrorCode = ErrorCode::new(53);
/// `OPERATION_NOT_ATTEMPTED`.
pub(crate) const OPERATION_NOT_ATTEMPTED: ErrorCode = ErrorCode::new(55);
/// `UNSTABLE_OFFSET_COMMIT`.
pub(crate) const UNSTABLE_OFFSET_COMMIT: ErrorCode = ErrorCode::new(88);
/// `PRODUCER_FENCED` (KIP-588).
pub(crate) const PRODUCER_FENCED: ErrorCode = ErrorCode::new(90);

/// `PRODUCER_FENCED` as a client of `version` understands it: requests older than
/// `first` (the version that added the code) get `INVALID_PRODUCER_EPOCH`, as
/// `KafkaApis` answers them.
pub(crate) fn fenced_for(code: ErrorCode, version: i16, first: i16) -> ErrorCode {
    if code == PRODUCER_FENCED && version < first { ErrorCode::INVALID_PRODUCER_EPOCH } else { code }
}

/// Where a transaction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TxnState {
    Empty,
    Ongoing,
    CompleteCommit,
    CompleteAbort,
}

/// An offset committed by a transaction (or, once it committed, by the group).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CommittedOffset {
    pub(crate) offset: i64,
    pub(crate) leader_epoch: i32,
    pub(crate) metadata: Option<String>,
}

/// Offsets of one group: (topic, partition) → offset.
pub(crate) type GroupOffsets = BTreeMap<(String, i32), CommittedOffset>;

/// One transactional id (Kafka's `TransactionMetadata`).
#[derive(Clone, Debug)]
pub(crate) struct TxnMetadata {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
    /// The epoch before the last bump a client asked for (-1: none), so that a
    /// retried bump is answered again instead of fenced.
    last_epoch: i16,
    timeout_ms: i32,
    pub(crate) state: TxnState,
    /// When the open transaction began (ms since the epoch).
    start_ms: i64,
    partitions: BTreeSet<(String, i32)>,
    groups: BTreeSet<String>,
    /// Offsets committed in the open transaction, per group.
    pending_offsets: BTreeMap<String, GroupOffsets>,
}

impl TxnMetadata {
    /// Opens a transaction if none is.
    fn begin(&mut self, now_ms: i64) {
        if self.state != TxnState::Ongoing {
            self.state = TxnState::Ongoing;
            self.start_ms = now_ms;
            self.partitions.clear();
            self.groups.clear();
            self.pending_offsets.clear();
        }
    }
}

/// The coordinators' state.
#[derive(Debug, Default)]
pub(crate) struct Coordinator {
    pub(crate) transactions: HashMap<String, TxnMetadata>,
    /// Offsets of committed transactions, per group.
    pub(crate) group_offsets: HashMap<String, GroupOffsets>,
}

impl Coordinator {
    /// Checks a transactional batch of a Produce request against its transaction,
    /// as a partition leader asks the coordinator (KIP-890). With
    /// `transaction.version` 2 and Produce v12+, a partition not yet in the
    /// transaction is added to it (starting one if none is open); otherwise it must
    /// have been added with AddPartitionsToTxn (`INVALID_TXN_STATE`). A wrong epoch
    /// is `INVALID_PRODUCER_EPOCH` at every version: the leader turns the
    /// coordinator's `PRODUCER_FENCED` into it, as `AddPartitionsToTxnManager` does.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn verify_produce(
        &mut self,
        transactional_id: Option<&str>,
        topic: &str,
        partition: i32,
        h: &BatchHeader,
        produce_version: i16,
        transaction_version: i16,
        now_ms: i64,
    ) -> Result<(), (ErrorCode, String)> {
        let Some(id) = transactional_id else {
            return Err((
                TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                "Transactional records need the request's transactional id".to_owned(),
            ));
        };
        let Some(m) = self.transactions.get_mut(id) else {
            return Err((
                INVALID_PRODUCER_ID_MAPPING,
                format!("The transactional id {id} has no producer id"),
            ));
        };
        if m.producer_id != h.producer_id {
            return Err((
                INVALID_PRODUCER_ID_MAPPING,
                format!("Producer id {} is not the one of transactional id {id}", h.producer_id),
            ));
        }
        if m.epoch != h.producer_epoch {
            return Err((
                ErrorCode::INVALID_PRODUCER_EPOCH,
                format!(
                    "Producer epoch {} of transactional id {id} is not the current one, {}",
                    h.producer_epoch, m.epoch
                ),
            ));
        }
        let key = (topic.to_owned(), partition);
        if m.state == TxnState::Ongoing && m.partitions.contains(&key) {
            return Ok(());
        }
        if transaction_version >= 2 && produce_version >= 12 {
            m.begin(now_ms);
            m.partitions.insert(key);
            return Ok(());
        }
        Err((INVALID_TXN_STATE, format!("{topic}-{partition} is not in the ongoing transaction of {id}")))
    }

    /// A group's committed offsets.
    pub(crate) fn offsets_of(&self, group: &str) -> Option<&GroupOffsets> {
        self.group_offsets.get(group)
    }

    /// Whether an open transaction has committed an offset of this group and
    /// partition (OffsetFetch's `require_stable`, KIP-447).
    pub(crate) fn has_pending_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.transactions.values().any(|m| {
            m.state == TxnState::Ongoing
                && m.pending_offsets
                    .get(group)
                    .is_some_and(|o| o.contains_key(&(topic.to_owned(), partition)))
        })
    }
}

/// The next epoch, as `TransactionMetadata` bumps it (the mock does not hand out a
/// new producer id when the epoch runs out; it stays at the maximum).
fn bumped(epoch: i16) -> i16 {
    epoch.saturating_add(1).min(i16::MAX - 1)
}

impl State {
    /// The broker coordinating `key` (a transactional id or a group): one of the
    /// live brokers, chosen by the key's hash; `None` when none is alive.
    pub(crate) fn coordinator_for(&self, key: &str) -> Option<i32> {
        let live = self.live_brokers();
        if live.is_empty() {
            return None;
        }
        let h = crate::partitioner::murmur2(key.as_bytes()) as u32 as usize;
        Some(live[h % live.len()])
    }

    fn is_coordinator(&self, broker: i32, key: &str) -> Result<(), ErrorCode> {
        if self.coordinator_for(key) == Some(broker) { Ok(()) } else { Err(NOT_COORDINATOR) }
    }

    pub(crate) fn allocate_producer_id(&mut self) -> i64 {
        let id = self.next_producer_id;
        self.next_producer_id += 1;
        id
    }

    /// InitProducerId with a transactional id (`handleInitProducerId`): the producer
    /// id and epoch to use. `expected` is the (producer id, epoch) the client holds
    /// (KIP-360; (-1, -1) for none).
    pub(crate) fn init_transactional(
        &mut self,
        broker: i32,
        id: &str,
        timeout_ms: i32,
        expected: (i64, i16),
        now_ms: i64,
    ) -> Result<(i64, i16), ErrorCode> {
        if id.is_empty() {
            return Err(ErrorCode::INVALID_REQUEST);
        }
        if timeout_ms <= 0 || timeout_ms > self.settings.max_transaction_timeout_ms {
            return Err(INVALID_TRANSACTION_TIMEOUT);
        }
        self.is_coordinator(broker, id)?;
        let Some(m) = self.txn.transactions.get(id) else {
            let producer_id = self.allocate_producer_id();
            self.txn.transactions.insert(
                id.to_owned(),
                TxnMetadata {
                    producer_id,
                    epoch: 0,
                    last_epoch: -1,
                    timeout_ms,
                    state: TxnState::Empty,
                    start_ms: now_ms,
                    partitions: BTreeSet::new(),
                    groups: BTreeSet::new(),
                    pending_offsets: BTreeMap::new(),
                },
            );
            return Ok((producer_id, 0));
        };
        let (pid, epoch) = (m.producer_id, m.epoch);
        if expected.0 >= 0 {
            let retry = expected == (pid, m.last_epoch) && m.last_epoch >= 0 && m.state != TxnState::Ongoing;
            if retry {
                return Ok((pid, epoch));
            }
            if expected != (pid, epoch) {
                return Err(PRODUCER_FENCED);
            }
        }
        if m.state == TxnState::Ongoing {
            // Fence the producer and abort its transaction first, with the fenced
            // epoch (`prepareFenceProducerEpoch`), then bump as for any other call.
            self.end_open(id, false, true, now_ms);
        }
        let Some(m) = self.txn.transactions.get_mut(id) else { return Err(INVALID_PRODUCER_ID_MAPPING) };
        m.last_epoch = m.epoch;
        m.epoch = bumped(m.epoch);
        m.timeout_ms = timeout_ms;
        m.state = TxnState::Empty;
        Ok((m.producer_id, m.epoch))
    }

    /// The transaction of a client request: coordinator, id, producer id and
    /// epoch checked as `TransactionCoordinator` checks them.
    fn client_txn(
        &mut self,
        broker: i32,
        id: &str,
        pid: i64,
        epoch: i16,
    ) -> Result<&mut TxnMetadata, ErrorCode> {
        if id.is_empty() {
            return Err(ErrorCode::INVALID_REQUEST);
        }
        self.is_coordinator(broker, id)?;
        let m = self.txn.transactions.get_mut(id).ok_or(INVALID_PRODUCER_ID_MAPPING)?;
        if m.producer_id != pid {
            return Err(INVALID_PRODUCER_ID_MAPPING);
        }
        if m.epoch != epoch {
            return Err(PRODUCER_FENCED);
        }
        Ok(m)
    }

    /// AddPartitionsToTxn (v0–3): the partitions join the transaction, which
    /// begins if none is open.
    pub(crate) fn add_partitions_to_txn(
        &mut self,
        broker: i32,
        id: &str,
        pid: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<(), ErrorCode> {
        let m = self.client_txn(broker, id, pid, epoch)?;
        m.begin(now_ms);
        m.partitions.extend(partitions.iter().cloned());
        Ok(())
    }

    /// AddOffsetsToTxn: the group joins the transaction (Kafka adds its
    /// `__consumer_offsets` partition), which begins if none is open.
    pub(crate) fn add_offsets_to_txn(
        &mut self,
        broker: i32,
        id: &str,
        pid: i64,
        epoch: i16,
        group: &str,
        now_ms: i64,
    ) -> Result<(), ErrorCode> {
        if group.is_empty() {
            return Err(ErrorCode::INVALID_REQUEST);
        }
        let m = self.client_txn(broker, id, pid, epoch)?;
        m.begin(now_ms);
        m.groups.insert(group.to_owned());
        Ok(())
    }

    /// TxnOffsetCommit, on the group coordinator: the offsets wait in the
    /// transaction and become the group's when it commits. The group has no
    /// members here, so only commits from outside the group management protocol
    /// (generation < 0) are accepted, as Kafka's `ClassicGroup.validateOffsetCommit`
    /// accepts them for an empty group. With `transaction.version` 2 and v5 the
    /// group joins the transaction implicitly (KIP-890); otherwise AddOffsetsToTxn
    /// must have added it (`INVALID_TXN_STATE`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn txn_offset_commit(
        &mut self,
        broker: i32,
        id: &str,
        group: &str,
        pid: i64,
        epoch: i16,
        generation: i32,
        version: i16,
        offsets: Vec<((String, i32), CommittedOffset)>,
        now_ms: i64,
    ) -> Result<(), ErrorCode> {
        self.is_coordinator(broker, group)?;
        let implicit = self.settings.transaction_version >= 2 && version >= 5;
        let m = self.txn.transactions.get_mut(id).ok_or(INVALID_PRODUCER_ID_MAPPING)?;
        if m.producer_id != pid {
            return Err(INVALID_PRODUCER_ID_MAPPING);
        }
        if m.epoch != epoch {
            return Err(PRODUCER_FENCED);
        }
        let added = m.state == TxnState::Ongoing && m.groups.contains(group);
        if !added && !implicit {
            return Err(INVALID_TXN_STATE);
        }
        if generation >= 0 {
            return Err(UNKNOWN_MEMBER_ID);
        }
        if !added {
            m.begin(now_ms);
            m.groups.insert(group.to_owned());
        }
        m.pending_offsets.entry(group.to_owned()).or_default().extend(offsets);
        Ok(())
    }

    /// EndTxn (`handleEndTransaction`): commits or aborts the open transaction,
    /// writing its markers. Returns the producer id and epoch the producer goes on
    /// with (bumped with `transaction.version` 2 at v5).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn end_txn(
        &mut self,
        broker: i32,
        id: &str,
        pid: i64,
        epoch: i16,
        commit: bool,
        version: i16,
        now_ms: i64,
    ) -> Result<(i64, i16), ErrorCode> {
        let v2 = self.settings.transaction_version >= 2 && version >= 5;
        if id.is_empty() {
            return Err(ErrorCode::INVALID_REQUEST);
        }
        self.is_coordinator(broker, id)?;
        let m = self.txn.transactions.get_mut(id).ok_or(INVALID_PRODUCER_ID_MAPPING)?;
        if m.producer_id != pid {
            return Err(INVALID_PRODUCER_ID_MAPPING);
        }
        let ended = match m.state {
            TxnState::CompleteCommit => Some(true),
            TxnState::CompleteAbort => Some(false),
            _ => None,
        };
        // A retry of the EndTxn that bumped the epoch (KIP-890).
        if v2 && epoch == m.last_epoch && m.last_epoch >= 0 && ended == Some(commit) {
            return Ok((m.producer_id, m.epoch));
        }
        if m.epoch != epoch {
            return Err(PRODUCER_FENCED);
        }
        match (m.state, commit, v2) {
            (TxnState::Ongoing, _, _) => {
                self.end_open(id, commit, v2, now_ms);
                if v2 {
                    // end_open wrote the markers with the bumped epoch.
                    if let Some(m) = self.txn.transactions.get_mut(id) {
                        m.last_epoch = epoch;
                    }
                }
            }
            // Retries of a completed EndTxn (before KIP-890).
            (TxnState::CompleteCommit, true, false) | (TxnState::CompleteAbort, false, false) => {}
            // KIP-890: an abort with nothing open only bumps the epoch.
            (_, false, true) => {
                m.last_epoch = m.epoch;
                m.epoch = bumped(m.epoch);
                m.state = TxnState::CompleteAbort;
            }
            _ => return Err(INVALID_TXN_STATE),
        }
        let m = &self.txn.transactions[id];
        Ok((m.producer_id, m.epoch))
    }

    /// Ends the open transaction of `id`: bumps the epoch first if `bump` (when
    /// fencing, or with `transaction.version` 2 on a client's EndTxn v5), writes a
    /// marker to every partition with the resulting epoch, and applies the offsets
    /// of a commit.
    fn end_open(&mut self, id: &str, commit: bool, bump: bool, now_ms: i64) {
        let store = self.settings.store_records;
        let Some(m) = self.txn.transactions.get_mut(id) else { return };
        if bump {
            m.last_epoch = -1;
            m.epoch = bumped(m.epoch);
        }
        m.state = if commit { TxnState::CompleteCommit } else { TxnState::CompleteAbort };
        let (pid, epoch) = (m.producer_id, m.epoch);
        let partitions = std::mem::take(&mut m.partitions);
        let offsets = std::mem::take(&mut m.pending_offsets);
        m.groups.clear();
        for (topic, partition) in partitions {
            let p = self
                .topics
                .get_mut(&topic)
                .and_then(|t| t.partitions.get_mut(usize::try_from(partition).ok()?));
            if let Some(p) = p {
                p.write_marker(pid, epoch, commit, store, now_ms);
            }
        }
        if commit {
            for (group, o) in offsets {
                self.txn.group_offsets.entry(group).or_default().extend(o);
            }
        }
    }

    /// Aborts every transaction open longer than its timeout, fencing its producer
    /// (`abortTimedOutTransactions`). Whether any was.
    pub(crate) fn abort_timed_out(&mut self, now_ms: i64) -> bool {
        let expired: Vec<String> = self
            .txn
            .transactions
            .iter()
            .filter(|(_, m)| m.state == TxnState::Ongoing && now_ms - m.start_ms > i64::from(m.timeout_ms))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            tracing::debug!(transactional_id = %id, "aborting a timed-out transaction");
            self.end_open(id, false, true, now_ms);
        }
        !expired.is_empty()
    }
}

#[cfg(test)]
#[path = "txn_tests.rs"]
mod tests;
