//! Where records wait to be sent: one [`PartitionQueue`] per partition, holding the
//! batch being filled and the sealed batches behind it.
//!
//! `send` appends on the caller's thread, encoding the record straight into the
//! open batch under the partition's lock (held for one append, never across I/O).
//! A batch is sealed when the next record would not fit in `batch.size`, or by the
//! sender when `linger.ms` has passed, on flush, and on close.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use bytes::BytesMut;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use uuid::Uuid;

use super::batch::{Order, Payload, ProducerBatch, Stamp};
use super::delivery::{BatchCompletion, Callback, Deliveries, DeliveryFuture, RecordCallback};
use super::idempotence::{Bump, SeqState, Verdict};
use crate::admin::PartitionDescription;
use crate::error::{Error, ErrorKind, Result};
use crate::metadata::NO_LEADER;
use crate::partitioner::TopicPartitionerState;
use crate::parts::Header;
use crate::protocol::batch::{BATCH_HEADER_LEN, BatchWriter};

/// The batch being filled.
#[derive(Debug)]
struct OpenBatch {
    writer: BatchWriter,
    completion: Arc<BatchCompletion>,
    /// Bytes of `buffer.memory` its records took, handed to `completion` when the
    /// batch is sealed (one atomic add per batch instead of one per record).
    reserved: usize,
    created: Instant,
    callbacks: Vec<RecordCallback>,
    /// Its largest record so far, in bytes (metrics).
    max_record: usize,
}

/// One partition's batches and send state, behind the partition's lock.
///
/// Its fields are private and its methods narrow. Every method that takes batches
/// out to be resolved (`take_expired`, `drain_all`, `compressed`) *returns* them:
/// the caller resolves them once the guard is gone. Resolving never runs user code
/// anyway (callbacks are only queued, see [`super::delivery`]); this
/// keeps futures' wake-ups and error formatting off the lock too.
#[derive(Debug)]
pub(crate) struct QueueState {
    open: Option<OpenBatch>,
    /// Sealed batches in send order.
    ready: VecDeque<ProducerBatch>,
    /// The next sealed batch's order; orders step by [`ORDER_STEP`], leaving room
    /// below the next batch for the parts of a split one (`split.rs`).
    next_order: Order,
    /// Whether sealed batches are compressed before sending.
    compress: bool,
    /// Idempotence: this partition's epoch and sequences.
    seq: SeqState,
    /// Batches of this partition in requests not yet answered.
    in_flight: usize,
    /// The estimated compressed/raw size ratio of this partition's records, so a
    /// compressed batch fills `batch.size` on the wire rather than in memory.
    /// Starts at 1 and takes the first batch's ratio as it is; then rises at once
    /// when a batch compresses worse than estimated and falls slowly when better
    /// (the shape of Java's estimator), so batches rarely overshoot.
    ratio: f32,
    /// The same estimate (f32 bits), shared with the `PartitionQueue` for the
    /// sticky partitioner, which reads it per record without the lock; written
    /// wherever `ratio` changes.
    published: Arc<AtomicU32>,
    observed: bool,
    /// How many records the last sealed batch held (to size the next one's lists).
    last_count: usize,
    /// About how many bytes recent sealed batches held (to size the next one's
    /// buffer): the last batch's size if larger, else an eighth less than before.
    last_len: usize,
    /// On-wire bytes of the open batch at which an append wakes the sender: this
    /// partition's share of `batch.size` among the partitions of its leader, set by
    /// the sender (see its `drain`), so it learns when a broker has a batch's worth
    /// of records spread over its partitions.
    wake_at: usize,
}

/// Where a queue's front batch stands, for the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Front {
    /// Nothing sealed.
    Empty,
    /// Being compressed: the sender is woken when it is done.
    Compressing,
    /// Backing off after a failed attempt until then.
    RetryAt(Instant),
    /// Can go in a request now.
    Due,
}

impl QueueState {
    fn new(compress: bool, published: Arc<AtomicU32>) -> QueueState {
        QueueState {
            open: None,
            ready: VecDeque::new(),
            next_order: 0,
            compress,
            seq: SeqState::default(),
            in_flight: 0,
            ratio: 1.0,
            published,
            observed: false,
            last_count: 0,
            last_len: 0,
            wake_at: usize::MAX,
        }
    }

    /// Learns from a compressed batch's actual ratio.
    fn observe_ratio(&mut self, observed: f32) {
        let observed = observed.clamp(0.01, 1.5);
        let ratio = if !self.observed {
            self.observed = true;
            observed
        } else if observed > self.ratio {
            observed.min(1.5)
        } else {
            (self.ratio - 0.005).max(observed).max(0.01)
        };
        self.set_ratio(ratio);
    }

    fn set_ratio(&mut self, ratio: f32) {
        self.ratio = ratio;
        self.published.store(ratio.to_bits(), Ordering::Relaxed);
    }

    fn seal_open(&mut self) {
        if let Some(open) = self.open.take() {
            let records = open.writer.count();
            self.last_count = usize::try_from(records).unwrap_or(0);
            // Rises at once, falls by an eighth per batch (as the ratio estimate
            // does): one batch sealed small by a flush or linger.ms does not make
            // the next one start small and regrow by doubling.
            let len = open.writer.len();
            self.last_len = len.max(self.last_len - self.last_len / 8);
            let bytes = open.writer.finish();
            open.completion.reserve(open.reserved);
            let order = self.next_order;
            self.next_order += ORDER_STEP;
            let raw_len = bytes.len();
            let payload = if self.compress { Payload::Raw(bytes) } else { Payload::Ready(bytes) };
            let mut batch =
                ProducerBatch::sealed(payload, records, open.completion, open.created, order, open.callbacks);
            batch.raw_len = raw_len;
            batch.max_record = open.max_record;
            self.ready.push_back(batch);
        }
    }

    /// Seals the open batch if `linger` has passed since it was opened (or `force`);
    /// otherwise returns when it will have.
    ///
    /// A lingered batch behind sealed ones that have not left yet stays open and
    /// keeps filling: a request carries one batch per partition, so it could not
    /// leave before them, and sealing it would only start another small batch
    /// behind it (Java's `RecordAccumulator` likewise appends to a partition's
    /// last batch until the sender drains it). Against a slow cluster, sealing at
    /// every `linger.ms` left queues of small batches whose per-batch cost kept
    /// the brokers slow. The sender looks again when the ones ahead have gone.
    /// (With a `linger` of zero: the open batch now, if none is ahead of it.)
    pub(crate) fn seal_if_lingered(
        &mut self,
        now: Instant,
        linger: std::time::Duration,
        force: bool,
    ) -> Option<Instant> {
        let due = self.open.as_ref().map(|o| o.created + linger)?;
        if !force && now < due {
            return Some(due);
        }
        if force || self.ready.is_empty() {
            self.seal_open();
        }
        None
    }

    /// The estimated on-wire bytes of the open batch (0 without one).
    pub(crate) fn open_len(&self) -> usize {
        self.open.as_ref().map_or(0, |o| on_wire(o.writer.len(), self.ratio))
    }

    /// Sets the open batch's size at which an append wakes the sender.
    pub(crate) fn wake_at(&mut self, bytes: usize) {
        self.wake_at = bytes;
    }

    /// Takes out the queued batches whose `delivery.timeout.ms` has passed (a
    /// partition's batches expire in order), for the caller to fail once the lock
    /// is gone; and returns when the next one will expire. With idempotence, an
    /// expired batch that had been sent leaves the sequence unresolved.
    pub(crate) fn take_expired(
        &mut self,
        now: Instant,
        timeout: std::time::Duration,
    ) -> (Vec<ProducerBatch>, Option<Instant>) {
        let mut expired = Vec::new();
        while let Some(b) = self.ready.front() {
            let deadline = b.created + timeout;
            if now < deadline {
                return (expired, Some(deadline));
            }
            if let Some(b) = self.ready.pop_front() {
                self.seq.failed_after_send(&b);
                expired.push(b);
            }
        }
        (expired, None)
    }

    /// Seals the open batch and takes out every batch never sent, for the caller
    /// to fail once the lock is gone ([`Producer::purge`](crate::Producer::purge)).
    /// Batches already sent once (waiting to be retried) stay: the broker may
    /// have written them, and under idempotence their sequences are taken.
    pub(crate) fn purge_unsent(&mut self) -> Vec<ProducerBatch> {
        self.seal_open();
        let (sent, unsent): (VecDeque<_>, VecDeque<_>) =
            self.ready.drain(..).partition(|b| b.attempts > 0 || b.stamp.is_some());
        self.ready = sent;
        unsent.into()
    }

    /// Seals the open batch and takes out every queued batch, for the caller to
    /// fail once the lock is gone.
    pub(crate) fn drain_all(&mut self) -> Vec<ProducerBatch> {
        self.seal_open();
        self.ready.drain(..).collect()
    }

    /// Takes the raw bytes of every sealed batch still to be compressed, with its
    /// creation time and order; the batch keeps its place, marked as compressing.
    pub(crate) fn take_for_compression(&mut self) -> Vec<(Instant, Order, BytesMut)> {
        let mut jobs = Vec::new();
        for b in self.ready.iter_mut() {
            if let Payload::Raw(_) = b.payload {
                if let Payload::Raw(raw) = std::mem::replace(&mut b.payload, Payload::Compressing) {
                    jobs.push((b.created, b.order, raw));
                }
            }
        }
        jobs
    }

    /// A compression job's result for the batch of `order`: its compressed bytes
    /// take its place; a batch whose compression failed is taken out and returned
    /// with the reason, for the caller to fail once the lock is gone.
    pub(crate) fn compressed(
        &mut self,
        order: Order,
        result: std::result::Result<(BytesMut, f32), String>,
    ) -> Option<(ProducerBatch, String)> {
        let at = self.ready.iter().position(|b| b.order == order)?;
        match result {
            Ok((bytes, ratio)) => {
                self.ready[at].payload = Payload::Ready(bytes);
                self.observe_ratio(ratio);
                None
            }
            Err(e) => self.ready.remove(at).map(|b| (b, e)),
        }
    }

    /// Transactions: takes on the transaction's producer id and epoch (no
    /// partition-local bumps: only the coordinator moves the epoch). Returns
    /// whether the sequence is unresolved with nothing left in flight — the
    /// transaction must then abort, and the epoch bump after it starts over.
    pub(crate) fn prepare_transactional(&mut self, producer_id: i64, epoch: i16) -> bool {
        self.seq.adopt_exact(producer_id, epoch);
        self.seq.unresolved && self.in_flight == 0
    }

    /// Idempotence: takes on the producer's id and epoch, and bumps this
    /// partition's epoch if its sequence is unresolved and nothing is in doubt.
    pub(crate) fn prepare_sequence(&mut self, producer_id: i64, epoch: i16) -> Bump {
        self.seq.adopt(producer_id, epoch);
        self.seq.try_bump(self.in_flight, &self.ready)
    }

    /// The epoch this partition writes with (idempotence).
    pub(crate) fn epoch(&self) -> i16 {
        self.seq.epoch
    }

    /// Where the front batch stands at `now`.
    pub(crate) fn front(&self, now: Instant) -> Front {
        match self.ready.front() {
            None => Front::Empty,
            Some(b) if !b.payload.sendable() => Front::Compressing,
            Some(b) => match b.retry_at {
                Some(at) if at > now => Front::RetryAt(at),
                _ => Front::Due,
            },
        }
    }

    /// Takes the front batch for a request if it is due and its bytes fit in
    /// `room` (`None`: the request is empty, any size goes), and — `idempotent` —
    /// the partition may send and the batch gets its sequence. Counts it in flight.
    pub(crate) fn take_for_request(
        &mut self,
        now: Instant,
        room: Option<usize>,
        idempotent: bool,
    ) -> Option<ProducerBatch> {
        if self.front(now) != Front::Due {
            return None;
        }
        let front = self.ready.front_mut()?;
        if room.is_some_and(|room| front.payload.len() > room) {
            return None;
        }
        if idempotent {
            if !self.seq.may_send(self.in_flight) {
                return None; // its first batch under this epoch is unanswered
            }
            self.seq.stamp_for(front)?; // None: the partition waits for its epoch bump
        }
        let b = self.ready.pop_front()?;
        self.in_flight += 1;
        Some(b)
    }

    /// A request that carried one of this partition's batches is over (answered
    /// or not), or never left.
    pub(crate) fn request_done(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Idempotence: a batch sent with `stamp` was written.
    pub(crate) fn written(&mut self, stamp: Stamp, records: i32) {
        self.seq.written(stamp, records);
    }

    /// Idempotence: what the broker's error `code` means for `b` (see
    /// [`SeqState::on_error`]).
    pub(crate) fn judge(&mut self, b: &mut ProducerBatch, code: crate::error::ErrorCode) -> Verdict {
        self.seq.on_error(b, code)
    }

    /// Idempotence: `b`, which may have been sent, fails for good.
    pub(crate) fn failed_after_send(&mut self, b: &ProducerBatch) {
        self.seq.failed_after_send(b);
    }

    /// Whether this partition's batches are compressed before sending.
    pub(crate) fn compresses(&self) -> bool {
        self.compress
    }

    /// Puts the parts of a batch the broker refused as too large (`split.rs`)
    /// back where it was, in order, as if never sent. Its compressed/raw
    /// `ratio` resets the estimate to it or 1, whichever is higher, as Java's
    /// `splitAndReenqueue` does, so the next batches are not sized by the
    /// estimate that was wrong.
    pub(crate) fn requeue_split(&mut self, parts: Vec<ProducerBatch>, ratio: f32) {
        if self.compress {
            self.set_ratio(ratio.clamp(1.0, 1.5));
            self.observed = true;
        }
        for p in parts {
            self.requeue(p);
        }
    }

    /// Puts a batch back to be retried, in its original order among the others.
    pub(crate) fn requeue(&mut self, batch: ProducerBatch) {
        let at = self.ready.iter().position(|b| b.order > batch.order).unwrap_or(self.ready.len());
        self.ready.insert(at, batch);
    }

    /// The outcome handles of every batch here, open one included.
    pub(crate) fn completions(&self, out: &mut Vec<Arc<BatchCompletion>>) {
        out.extend(self.open.iter().map(|o| o.completion.clone()));
        out.extend(self.ready.iter().map(|b| b.completion.clone()));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.open.is_none() && self.ready.is_empty()
    }

    /// Records waiting here, open batch included (not those in a request).
    pub(crate) fn queued_records(&self) -> u64 {
        let open = self.open.as_ref().map_or(0, |o| o.writer.count());
        let ready: i64 = self.ready.iter().map(|b| i64::from(b.records)).sum();
        u64::try_from(i64::from(open) + ready).unwrap_or(0)
    }

    /// Drops the sealed batches unresolved (the hot-path benchmark's stand-in for
    /// a sender); returns how many.
    #[cfg(feature = "bench-internals")]
    pub(crate) fn drop_sealed(&mut self) -> usize {
        let n = self.ready.len();
        self.ready.clear();
        n
    }
}

/// One partition's queue.
#[derive(Debug)]
pub(crate) struct PartitionQueue {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    /// The leader's node id, or [`NO_LEADER`]; kept current by metadata.
    pub(crate) leader: AtomicI32,
    pub(crate) state: Mutex<QueueState>,
    /// Transactions v1: the serial of the last transaction this partition was
    /// added to (AddPartitionsToTxn), 0 for none.
    pub(crate) txn_added: AtomicU64,
    /// The state's compression ratio estimate (f32 bits), published by the state
    /// for the sticky partitioner, which reads it per record without the lock.
    ratio: Arc<AtomicU32>,
}

impl PartitionQueue {
    pub(crate) fn new(topic: Arc<str>, partition: i32, compress: bool) -> PartitionQueue {
        let ratio = Arc::new(AtomicU32::new(1.0f32.to_bits()));
        PartitionQueue {
            topic,
            partition,
            leader: AtomicI32::new(NO_LEADER),
            state: Mutex::new(QueueState::new(compress, ratio.clone())),
            txn_added: AtomicU64::new(0),
            ratio,
        }
    }

    pub(crate) fn leader(&self) -> i32 {
        self.leader.load(Ordering::Acquire)
    }

    /// The compressed/raw size ratio last published from this partition's state
    /// (1 without compression or before the first compressed batch).
    pub(crate) fn estimated_ratio(&self) -> f32 {
        f32::from_bits(self.ratio.load(Ordering::Relaxed))
    }
}

/// A topic's partitions as the latest metadata describes them.
#[derive(Debug)]
pub(crate) struct TopicMeta {
    pub(crate) id: Uuid,
    pub(crate) partitions: Vec<Arc<PartitionQueue>>,
    /// Partitions with a leader, ascending.
    pub(crate) available: Vec<i32>,
    /// The partitions as the last Metadata answer described them
    /// ([`Producer::partitions_for`](crate::Producer::partitions_for)).
    pub(crate) described: Arc<[PartitionDescription]>,
}

/// A topic the producer has been asked to send to.
#[derive(Debug)]
pub(crate) struct TopicEntry {
    pub(crate) name: Arc<str>,
    pub(crate) meta: ArcSwapOption<TopicMeta>,
    /// Notified when metadata arrives or the topic is found not to exist.
    pub(crate) changed: Notify,
    /// Why sends to this topic fail at once (e.g. it does not exist), and since when.
    pub(crate) verdict: Mutex<Option<(Instant, Error)>>,
    /// Consecutive metadata answers saying the topic does not exist.
    pub(crate) unknown_answers: AtomicU32,
    /// Whether a metadata request has named the topic yet: until one has, the
    /// sender asks without waiting out the backoff after the last answer (see
    /// `MetadataState::due`).
    pub(crate) asked: AtomicBool,
    pub(crate) partitioner: TopicPartitionerState,
}

impl TopicEntry {
    /// Installs fresh metadata, reusing the queues of partitions already known.
    pub(crate) fn update(
        &self,
        id: Uuid,
        leaders: &[i32],
        described: Vec<PartitionDescription>,
        compress: bool,
    ) {
        let old = self.meta.load_full();
        let mut partitions = Vec::with_capacity(leaders.len());
        for (i, leader) in leaders.iter().enumerate() {
            let q = old
                .as_ref()
                .and_then(|m| m.partitions.get(i).cloned())
                .unwrap_or_else(|| Arc::new(PartitionQueue::new(self.name.clone(), i as i32, compress)));
            q.leader.store(*leader, Ordering::Release);
            partitions.push(q);
        }
        // A topic's partition count only grows; keep queues of partitions the metadata
        // no longer lists so their batches still resolve (they fail with the broker's
        // error or time out).
        if let Some(old) = &old {
            for q in old.partitions.iter().skip(leaders.len()) {
                q.leader.store(NO_LEADER, Ordering::Release);
                partitions.push(q.clone());
            }
        }
        let available =
            partitions.iter().take(leaders.len()).filter(|q| q.leader() >= 0).map(|q| q.partition).collect();
        let described = described.into();
        self.meta.store(Some(Arc::new(TopicMeta { id, partitions, available, described })));
        *self.verdict.lock() = None;
        self.unknown_answers.store(0, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// Records why sends to this topic fail, waking every send waiting on it.
    pub(crate) fn set_verdict(&self, err: Error) {
        *self.verdict.lock() = Some((Instant::now(), err));
        self.changed.notify_waiters();
    }
}

/// How far apart the orders of consecutive sealed batches are: room for a part
/// per record of a batch split later (a batch holds fewer than 2³¹ records).
pub(crate) const ORDER_STEP: Order = 1 << 32;

/// The estimated wire size of a batch of `raw` bytes at a compression `ratio`.
fn on_wire(raw: usize, ratio: f32) -> usize {
    if ratio >= 1.0 {
        return raw;
    }
    BATCH_HEADER_LEN + ((raw.saturating_sub(BATCH_HEADER_LEN)) as f32 * ratio) as usize
}

/// Every topic's queues.
#[derive(Debug)]
pub(crate) struct Accumulator {
    /// foldhash: topic names are the application's own, not an attacker's, and this
    /// lookup is on every send by name.
    topics: RwLock<HashMap<Arc<str>, Arc<TopicEntry>, foldhash::fast::RandomState>>,
    /// `buffer.memory`, in permits of one byte: taken by `send`, given back when a
    /// record's batch resolves.
    pub(crate) memory: Arc<Semaphore>,
    /// Where resolved batches give back their memory and run their callbacks.
    deliveries: Arc<Deliveries>,
    batch_size: usize,
    /// The most raw bytes one batch may hold: `max.request.size`, so that even a
    /// badly estimated compressed batch fits in a request.
    max_batch: usize,
    /// Set once the sender has stopped: appends fail instead of queueing.
    closed: AtomicBool,
}

/// A record's parts as the batch encodes them.
pub(crate) struct RecordRef<'a> {
    pub(crate) timestamp: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) headers: &'a [Header],
    /// Its `protocol::batch::fields_len`, computed once.
    pub(crate) fields: usize,
}

impl<'a> RecordRef<'a> {
    #[cfg(test)]
    pub(crate) fn new(timestamp: i64, key: Option<&'a [u8]>, value: Option<&'a [u8]>) -> RecordRef<'a> {
        RecordRef {
            timestamp,
            key,
            value,
            headers: &[],
            fields: crate::protocol::batch::fields_len(key, value, &[]),
        }
    }
}

/// What an append did, for the caller to decide whether to wake the sender.
pub(crate) struct Appended {
    /// The record's future, unless it came with a callback.
    pub(crate) future: Option<DeliveryFuture>,
    /// A batch was opened or sealed: the sender has something new to schedule.
    pub(crate) wake: bool,
    /// The partition's batch filled up: sealed for its size, or without room for
    /// another record like this one. A sticky partitioner moves on.
    pub(crate) full: bool,
}

impl Accumulator {
    pub(crate) fn new(batch_size: usize, max_request_size: usize, buffer_memory: usize) -> Accumulator {
        let memory = Arc::new(Semaphore::new(buffer_memory.min(Semaphore::MAX_PERMITS)));
        Accumulator {
            topics: RwLock::new(HashMap::with_hasher(foldhash::fast::RandomState::default())),
            deliveries: Deliveries::new(memory.clone()),
            memory,
            batch_size,
            max_batch: max_request_size.max(batch_size),
            closed: AtomicBool::new(false),
        }
    }

    /// Where resolved batches' callbacks wait for the sender to run them.
    pub(crate) fn deliveries(&self) -> &Arc<Deliveries> {
        &self.deliveries
    }

    /// The entry for `topic`, and whether it was just created.
    pub(crate) fn topic(&self, topic: &str) -> (Arc<TopicEntry>, bool) {
        if let Some(e) = self.topics.read().get(topic) {
            return (e.clone(), false);
        }
        let mut w = self.topics.write();
        if let Some(e) = w.get(topic) {
            return (e.clone(), false);
        }
        let name: Arc<str> = Arc::from(topic);
        let e = Arc::new(TopicEntry {
            name: name.clone(),
            meta: ArcSwapOption::empty(),
            changed: Notify::new(),
            verdict: Mutex::new(None),
            unknown_answers: AtomicU32::new(0),
            asked: AtomicBool::new(false),
            partitioner: TopicPartitionerState::default(),
        });
        w.insert(name, e.clone());
        (e, true)
    }

    /// Every topic entry.
    pub(crate) fn topics(&self) -> Vec<Arc<TopicEntry>> {
        self.topics.read().values().cloned().collect()
    }

    /// Appends one record to `queue`. `reserved` bytes of `buffer.memory` were taken
    /// for it; its batch gives them back when it resolves (or this call, if it fails).
    /// Inlined into each of `Producer::append`'s two instances (with and without
    /// interceptors), as into the one it had before: the record's hot path.
    #[inline(always)]
    pub(crate) fn append(
        &self,
        queue: &PartitionQueue,
        rec: &RecordRef<'_>,
        reserved: usize,
        callback: Option<Callback>,
    ) -> Result<Appended> {
        let mut st = queue.state.lock();
        // Checked under the queue's lock: the sender's final sweep takes the same
        // lock after setting `closed`, so a record is either swept or refused here.
        if self.closed.load(Ordering::Acquire) {
            self.memory.add_permits(reserved);
            return Err(Error::new(ErrorKind::Closed).for_partition(&queue.topic, Some(queue.partition)));
        }
        let mut wake = false;
        let ratio = st.ratio;
        let last_count = st.last_count;
        let (last_len, compress) = (st.last_len, st.compress);
        let wake_at = st.wake_at;
        if let Some(open) = &st.open {
            let next = open.writer.size_of_next(rec.timestamp, rec.fields);
            let raw = open.writer.len() + next;
            if open.writer.count() > 0 && (on_wire(raw, ratio) > self.batch_size || raw > self.max_batch) {
                st.seal_open();
                wake = true;
            }
        }
        let open = match &mut st.open {
            Some(open) => open,
            slot @ None => {
                wake = true;
                let needed = BATCH_HEADER_LEN + crate::protocol::batch::record_size_of(0, 0, rec.fields);
                slot.insert(OpenBatch {
                    writer: BatchWriter::new(self.first_capacity(last_len, compress).max(needed)),
                    completion: BatchCompletion::new(
                        queue.topic.clone(),
                        queue.partition,
                        self.deliveries.clone(),
                    ),
                    reserved: 0,
                    created: Instant::now(),
                    // Sized like the partition's last batch: no regrowth copies.
                    callbacks: if callback.is_some() { Vec::with_capacity(last_count) } else { Vec::new() },
                    max_record: 0,
                })
            }
        };
        let before = open.writer.len();
        let offset_delta =
            open.writer.append_sized(rec.timestamp, rec.key, rec.value, rec.headers, rec.fields);
        open.reserved += reserved;
        open.max_record = open.max_record.max(open.writer.len() - before);
        let future = match callback {
            Some(f) => {
                open.callbacks.push(RecordCallback { offset_delta, timestamp: rec.timestamp, f });
                None
            }
            None => Some(DeliveryFuture::new(open.completion.clone(), offset_delta, rec.timestamp)),
        };
        let len = on_wire(open.writer.len(), ratio);
        // The batch this record went to is full, or without room for another
        // record like it. (Not the batch sealed before it: a sticky partitioner
        // coming back to this partition with a new record has just started a new
        // batch.)
        let full = len >= self.batch_size
            || on_wire(open.writer.len() + (open.writer.len() - before), ratio) > self.batch_size;
        if len >= self.batch_size {
            st.seal_open();
            wake = true;
        } else if len >= wake_at && on_wire(before, ratio) < wake_at {
            wake = true;
        }
        Ok(Appended { future, wake, full })
    }

    /// The buffer a new batch starts with: `batch.size` for a partition's first
    /// batch, then, uncompressed, the recent batches' size (`last_len`: up at once,
    /// down by an eighth per batch) and an eighth more (at most `batch.size`).
    /// Batches sealed early by `linger.ms` or an idle broker then take what they
    /// hold rather than `batch.size` each until the broker answers, which
    /// `buffer.memory` (counting record bytes) would not bound; a batch that grows
    /// past its buffer reallocates once or twice. A compressed
    /// producer's raw batches are freed once compressed (the compressed copy is
    /// exactly its size), so they start at `batch.size` as before.
    fn first_capacity(&self, last_len: usize, compress: bool) -> usize {
        if compress || last_len == 0 {
            self.batch_size
        } else {
            (last_len + last_len / 8).min(self.batch_size)
        }
    }

    /// Stops accepting records: from now on appends fail with `Closed`.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Records waiting in every partition's queue (statistics' `msg_cnt`): takes
    /// each partition's lock in turn, briefly.
    pub(crate) fn queued_records(&self) -> u64 {
        let mut n = 0;
        for t in self.topics() {
            if let Some(meta) = t.meta.load_full() {
                n += meta.partitions.iter().map(|q| q.state.lock().queued_records()).sum::<u64>();
            }
        }
        n
    }

    /// Takes `take` of every partition's queue, each under its lock, and hands
    /// every batch taken to `each` with its queue once that lock is gone (failing
    /// a batch runs no callback, but resolving must not happen under the lock).
    fn take_each(
        &self,
        take: impl Fn(&mut QueueState) -> Vec<ProducerBatch>,
        mut each: impl FnMut(&PartitionQueue, ProducerBatch),
    ) {
        for t in self.topics() {
            let Some(meta) = t.meta.load_full() else { continue };
            for q in &meta.partitions {
                let taken = take(&mut q.state.lock());
                for b in taken {
                    each(q, b);
                }
            }
        }
    }

    /// Fails every queued batch of every topic (sealing open ones) with `err`.
    pub(crate) fn fail_queued(&self, err: &Error) {
        self.take_each(QueueState::drain_all, |_, b| b.fail_honestly(err.clone()));
    }

    /// [`Producer::purge`](crate::Producer::purge): fails every batch never sent
    /// (sealing open ones) as purged, not written; returns how many records that
    /// was.
    pub(crate) fn purge_unsent(&self) -> u64 {
        let mut records = 0u64;
        self.take_each(QueueState::purge_unsent, |q, b| {
            records += u64::try_from(b.records).unwrap_or(0);
            let e = Error::new(ErrorKind::Purged).for_partition(&q.topic, Some(q.partition));
            b.fail(e.written(false));
        });
        records
    }

    /// Fails every queued batch of every topic with `err`, and wakes sends waiting
    /// for metadata. Call after [`close`](Self::close).
    pub(crate) fn fail_all(&self, err: &Error) {
        self.fail_queued(err);
        for t in self.topics() {
            t.changed.notify_waiters();
        }
    }
}

/// Batches for other modules' unit tests.
#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> PartitionQueue {
        PartitionQueue::new(Arc::from("t"), 0, false)
    }

    #[test]
    fn a_lingered_batch_behind_one_not_yet_sent_keeps_filling() {
        let acc = Accumulator::new(16384, 1 << 20, 1 << 30);
        let q = queue();
        let linger = std::time::Duration::from_millis(5);
        let append = || acc.append(&q, &RecordRef::new(1, None, Some(&[7u8; 100])), 0, None).unwrap();
        append();
        let later = Instant::now() + std::time::Duration::from_millis(10);
        // Lingered, nothing ahead of it: sealed.
        assert_eq!(q.state.lock().seal_if_lingered(later, linger, false), None);
        assert_eq!(q.state.lock().ready.len(), 1);
        // The next one lingers too, while the first has not left: it stays open,
        // for the broker-side per-batch cost of a slow cluster's many small ones.
        append();
        let much_later = later + std::time::Duration::from_millis(10);
        assert_eq!(q.state.lock().seal_if_lingered(much_later, linger, false), None);
        // Nor does the idle-broker sweep (a linger of zero) seal it.
        assert_eq!(q.state.lock().seal_if_lingered(much_later, std::time::Duration::ZERO, false), None);
        {
            let st = q.state.lock();
            assert_eq!((st.ready.len(), st.open.as_ref().map(|o| o.writer.count())), (1, Some(1)));
        }
        append();
        assert_eq!(q.state.lock().open.as_ref().unwrap().writer.count(), 2, "it kept filling");
        // Once the first is taken for a request, the lingered one is sealed.
        assert!(q.state.lock().take_for_request(much_later, None, false).is_some());
        assert_eq!(q.state.lock().seal_if_lingered(much_later, linger, false), None);
        assert_eq!(q.state.lock().ready.len(), 1);
        // flush (force) seals regardless.
        append();
        append();
        assert!(q.state.lock().open.is_some());
        q.state.lock().seal_if_lingered(Instant::now(), linger, true);
        assert!(q.state.lock().open.is_none());
    }

    #[test]
    fn batches_seal_at_batch_size() {
        let acc = Accumulator::new(200, 1 << 20, 1 << 30);
        let q = queue();
        for _ in 0..10 {
            acc.append(&q, &RecordRef::new(1, None, Some(&[7u8; 50])), 0, None).unwrap();
        }
        let st = q.state.lock();
        assert!(st.ready.len() >= 3, "{} sealed", st.ready.len());
        assert!(st.ready.iter().all(|b| b.payload.len() <= 200));
        let total: i32 = st.ready.iter().map(|b| b.records).sum::<i32>()
            + st.open.as_ref().map_or(0, |o| o.writer.count());
        assert_eq!(total, 10);
    }

    #[test]
    fn batches_sealed_early_hold_about_what_they_hold_not_batch_size() {
        // A slow broker, linger.ms passing: many batches of one record each wait
        // for their answer. buffer.memory counts their record bytes, so their
        // buffers must not be batch.size each.
        let acc = Accumulator::new(16384, 1 << 20, 1 << 30);
        let q = queue();
        for _ in 0..50 {
            acc.append(&q, &RecordRef::new(1, None, Some(&[7u8; 100])), 0, None).unwrap();
            q.state.lock().seal_if_lingered(Instant::now(), std::time::Duration::ZERO, true);
        }
        acc.append(&q, &RecordRef::new(1, None, Some(&[7u8; 100])), 0, None).unwrap();
        let st = q.state.lock();
        let held: usize = st
            .ready
            .iter()
            .map(|b| match &b.payload {
                Payload::Ready(bytes) => bytes.capacity(),
                _ => unreachable!("uncompressed"),
            })
            .sum();
        let bytes: usize = st.ready.iter().map(|b| b.payload.len()).sum();
        assert_eq!(st.ready.len(), 50);
        assert!(held <= bytes + 50 * 1024, "{held} bytes of buffers for {bytes} bytes of batches");
        let open = st.open.as_ref().unwrap();
        assert!(open.writer.capacity() < 1024, "the next batch starts at {} bytes", open.writer.capacity());
    }

    #[test]
    fn one_small_batch_does_not_make_the_next_start_small() {
        // A flush seals a full partition's last batch early; the batch after it
        // should not start small and regrow by doubling.
        let acc = Accumulator::new(16384, 1 << 20, 1 << 30);
        let q = queue();
        // Until two full batches are sealed and the third holds one record.
        while q.state.lock().ready.len() < 2 {
            acc.append(&q, &RecordRef::new(1, None, Some(&[7u8; 100])), 0, None).unwrap();
        }
        assert_eq!(q.state.lock().open.as_ref().unwrap().writer.count(), 1);
        q.state.lock().seal_if_lingered(Instant::now(), std::time::Duration::ZERO, true);
        acc.append(&q, &RecordRef::new(1, None, Some(&[7u8; 100])), 0, None).unwrap();
        let st = q.state.lock();
        assert!(st.ready.len() >= 3, "{} batches", st.ready.len());
        let open = st.open.as_ref().unwrap();
        assert!(
            open.writer.capacity() >= 12 * 1024,
            "the next batch starts at {} bytes",
            open.writer.capacity()
        );
    }

    #[test]
    fn a_record_larger_than_batch_size_gets_a_batch_of_its_own() {
        let acc = Accumulator::new(100, 1 << 20, 1 << 30);
        let q = queue();
        acc.append(&q, &RecordRef::new(1, None, Some(&[1u8; 10])), 0, None).unwrap();
        acc.append(&q, &RecordRef::new(1, None, Some(&[1u8; 500])), 0, None).unwrap();
        let st = q.state.lock();
        assert_eq!(st.ready.len(), 2);
        assert_eq!(st.ready[1].records, 1);
    }

    #[test]
    fn a_good_compression_ratio_fills_batches_further() {
        let acc = Accumulator::new(1000, 1 << 20, 1 << 30);
        let q = PartitionQueue::new(Arc::from("t"), 0, true);
        q.state.lock().ratio = 0.25;
        for _ in 0..60 {
            acc.append(&q, &RecordRef::new(1, None, Some(&[7u8; 100])), 0, None).unwrap();
        }
        let st = q.state.lock();
        let first = &st.ready[0];
        assert!(first.records > 20, "{} records in a batch that compresses 4:1", first.records);
        assert!(matches!(first.payload, Payload::Raw(_)), "left for the sender to compress");
    }

    #[test]
    fn the_ratio_estimate_is_published_for_the_partitioner() {
        let q = PartitionQueue::new("t".into(), 0, true);
        assert_eq!(q.estimated_ratio(), 1.0);
        q.state.lock().observe_ratio(0.3);
        assert!((q.estimated_ratio() - 0.3).abs() < 1e-6);
        // A split resets the estimate to at least 1, and publishes that too.
        q.state.lock().requeue_split(Vec::new(), 0.5);
        assert_eq!(q.estimated_ratio(), 1.0);
    }

    #[test]
    fn the_ratio_estimate_rises_fast_and_falls_slowly() {
        let mut st = QueueState::new(true, Arc::default());
        st.observe_ratio(0.3);
        assert!((st.ratio - 0.3).abs() < 1e-6);
        st.observe_ratio(0.9);
        assert!((st.ratio - 0.9).abs() < 1e-6);
        st.observe_ratio(0.1);
        assert!((st.ratio - 0.895).abs() < 1e-6);
    }

    #[test]
    fn requeue_keeps_order() {
        let acc = Accumulator::new(0, 1 << 20, 1 << 30);
        let q = queue();
        for _ in 0..3 {
            acc.append(&q, &RecordRef::new(1, None, None), 0, None).unwrap();
        }
        let mut st = q.state.lock();
        let b0 = st.ready.pop_front().unwrap();
        let b1 = st.ready.pop_front().unwrap();
        st.requeue(b1);
        st.requeue(b0);
        let orders: Vec<Order> = st.ready.iter().map(|b| b.order / ORDER_STEP).collect();
        assert_eq!(orders, vec![0, 1, 2]);
    }

    #[test]
    fn closed_accumulator_refuses_records() {
        let acc = Accumulator::new(100, 1 << 20, 1 << 30);
        let q = queue();
        acc.close();
        let e = acc.append(&q, &RecordRef::new(1, None, None), 0, None).err().unwrap();
        assert_eq!(e.kind(), &ErrorKind::Closed);
    }
}
