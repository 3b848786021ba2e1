//! The sender: one task per producer that owns the connections, the metadata
//! refreshes, the producer id, and every request in flight.
//!
//! Each turn of its loop it seals batches whose `linger.ms` has passed, hands
//! sealed batches to the blocking pool for compression, fails batches past
//! `delivery.timeout.ms`, and groups ready batches by partition leader into
//! Produce requests: one batch per partition per request, at most
//! `max.request.size` bytes, at most `max.in.flight.requests.per.connection`
//! requests per broker. With idempotence each batch gets its producer id, epoch and
//! sequence when first sent ([`super::idempotence`]). Answers are handled in
//! [`super::response`]; metadata in [`super::refresh`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::Shared;
use super::accumulator::{Front, PartitionQueue};
use super::batch::{Payload, ProducerBatch, Stamp};
use super::compressor::{Compressed, Compressor, Job};
use super::delivery::BatchCompletion;
use super::idempotence::Bump;
use super::producer_id::{IdOutcome, ProducerIdManager};
use super::refresh::MetadataState;
use super::telemetry::{CloseStep, Due, Telemetry};
use super::transaction::{Call, Gate, Transactions};
use super::transport::{TelemetryRequest, TelemetryResponse, Transport};
use crate::backoff::Backoff;
use crate::config::Acks;
use crate::error::{Error, ErrorKind, TimeoutKind};
use crate::metadata;
use crate::protocol::batch::{
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, stamp_producer, stamp_transactional,
};

/// Commands from producer handles.
pub(crate) enum Command {
    /// Seal everything and reply with every unresolved batch.
    Flush(oneshot::Sender<Vec<Arc<BatchCompletion>>>),
    /// Deliver what is pending until `deadline`, fail the rest, run every
    /// callback, stop.
    Close { deadline: Instant, reply: oneshot::Sender<Result<(), Error>> },
    /// Reply once every callback queued so far has run.
    CallbacksRun(oneshot::Sender<()>),
    /// Fail every batch never sent; reply with how many records that failed.
    Purge(oneshot::Sender<u64>),
}

/// What the sender's futures report.
pub(crate) enum Event {
    Produce(u64, Result<Option<ProduceResponse>, Error>),
    Metadata(Result<metadata::Snapshot, Error>),
    ProducerId(Result<(i64, i16), Error>),
    /// A round of AddPartitionsToTxn ended (transactions v1).
    TxnAdded,
    /// A client telemetry request was answered (KIP-714).
    Telemetry(Result<TelemetryResponse, Error>),
}

/// A Produce request awaiting its answer.
pub(crate) struct InFlight {
    pub(crate) node: i32,
    pub(crate) broker: Arc<str>,
    pub(crate) batches: Vec<(Arc<PartitionQueue>, ProducerBatch)>,
    /// The ids of its topics that have one: Produce v13 answers name topics by id.
    pub(crate) topic_ids: Vec<(uuid::Uuid, Arc<str>)>,
    /// When it was handed to the connection (request latency).
    pub(crate) sent_at: Instant,
}

struct Closing {
    deadline: Instant,
    reply: Option<oneshot::Sender<Result<(), Error>>>,
}

pub(crate) struct Sender {
    pub(crate) shared: Arc<Shared>,
    /// The network: the connection pool, or a scripted one in unit tests.
    pub(crate) transport: Box<dyn Transport>,
    /// `retry.backoff.ms` up to `retry.backoff.max.ms`.
    pub(crate) backoff: Backoff,
    commands: mpsc::UnboundedReceiver<Command>,
    pub(crate) events: FuturesUnordered<BoxFuture<'static, Event>>,
    pub(crate) in_flight: HashMap<u64, InFlight>,
    /// `in_flight.len()` as last stored in the `requests-in-flight` gauge.
    gauged_in_flight: usize,
    pub(crate) in_flight_per_node: HashMap<i32, usize>,
    next_request_id: u64,
    pub(crate) metadata: MetadataState,
    /// `Some` with `enable.idempotence`, unless transactional (the transaction
    /// coordinator hands out the id then).
    pub(crate) producer_id: Option<ProducerIdManager>,
    /// Batches carry sequences (idempotence, transactions included).
    pub(crate) idempotent: bool,
    /// With `transactional.id`.
    txn: Option<Arc<Transactions>>,
    /// Transactional requests to hand to the transport.
    calls: mpsc::UnboundedReceiver<Call>,
    closing: Option<Closing>,
    /// With `compression.type`: the compression workers, and their results.
    compressor: Option<Compressor>,
    compressed: mpsc::UnboundedReceiver<Compressed>,
    /// How many partitions each broker led at the last `drain`.
    node_partitions: HashMap<i32, usize>,
    /// Brokers that asked for no requests until then (KIP-219 throttling).
    throttled: HashMap<i32, Instant>,
    /// Brokers waiting for a group of batches being compressed.
    holds: Holds,
    /// With `enable.metrics.push`: client telemetry (KIP-714).
    telemetry: Option<Telemetry>,
}

/// The longest a broker's ready batches wait for the rest of their group.
const MAX_HOLD: Duration = Duration::from_millis(1);

/// Brokers whose open batches were sealed together (an idle broker's sweep) and
/// are being compressed. Compressed one by one, they would leave one request per
/// batch as each compression ends; until the whole group is back, or its
/// deadline passes, the broker's ready batches wait, and the group leaves in one
/// request.
#[derive(Default)]
struct Holds {
    /// Per broker: its group, how many of its batches are not back, the deadline.
    by_node: HashMap<i32, (u64, usize, Instant)>,
    next_group: u64,
}

impl Holds {
    /// Holds `node` for `batches` batches being compressed, until `until` at the
    /// latest; returns the group their compression jobs carry.
    fn start(&mut self, node: i32, batches: usize, until: Instant) -> u64 {
        let group = self.next_group;
        self.next_group += 1;
        self.by_node.insert(node, (group, batches, until));
        group
    }

    /// A batch of `group` is compressed (or failed to be).
    fn returned(&mut self, group: u64) {
        if let Some((_, remaining, _)) = self.by_node.values_mut().find(|(g, ..)| *g == group) {
            *remaining = remaining.saturating_sub(1);
        }
    }

    /// Until when `node` waits, if it does at `now`; a finished or expired hold
    /// is forgotten.
    fn until(&mut self, node: i32, now: Instant) -> Option<Instant> {
        let (_, remaining, until) = *self.by_node.get(&node)?;
        if remaining > 0 && now < until {
            return Some(until);
        }
        self.by_node.remove(&node);
        None
    }
}

/// One broker's part of a `drain`.
#[derive(Default)]
struct NodeWork {
    /// Partitions whose front batch is due.
    due: Vec<Arc<PartitionQueue>>,
    /// Partitions with only an open batch, and its bytes between them.
    open: Vec<Arc<PartitionQueue>>,
    open_bytes: usize,
    /// Partitions it leads that were looked at.
    partitions: usize,
}

/// The most compression workers one producer runs at once: enough to keep every
/// core busy while the sender hands out batches, few enough that memory holds a
/// handful of codec contexts and buffers.
fn max_compressions() -> usize {
    (3 * std::thread::available_parallelism().map_or(1, |n| n.get())).clamp(4, 8)
}

impl Sender {
    pub(crate) fn new(
        shared: Arc<Shared>,
        transport: Box<dyn Transport>,
        commands: mpsc::UnboundedReceiver<Command>,
        calls: mpsc::UnboundedReceiver<Call>,
    ) -> Sender {
        let txn = shared.txn.clone();
        let idempotent = shared.config.enable_idempotence;
        let producer_id = (idempotent && txn.is_none()).then(|| ProducerIdManager::new(Instant::now()));
        let backoff = Backoff::new(shared.config.retry_backoff, shared.config.retry_backoff_max);
        let (compressor, compressed) = match shared.config.codec() {
            Some(codec) => {
                let (c, rx) = Compressor::new(codec, max_compressions());
                (Some(c), rx)
            }
            None => (None, mpsc::unbounded_channel().1),
        };
        let telemetry = shared
            .config
            .enable_metrics_push
            .then(|| Telemetry::new(Instant::now(), shared.config.transactional_id.clone()));
        Sender {
            shared,
            transport,
            backoff,
            commands,
            events: FuturesUnordered::new(),
            in_flight: HashMap::new(),
            gauged_in_flight: 0,
            in_flight_per_node: HashMap::new(),
            next_request_id: 0,
            metadata: MetadataState::new(),
            producer_id,
            idempotent,
            txn,
            calls,
            closing: None,
            compressor,
            compressed,
            node_partitions: HashMap::new(),
            throttled: HashMap::new(),
            holds: Holds::default(),
            telemetry,
        }
    }

    pub(crate) async fn run(mut self) {
        tracing::debug!(client_id = %self.shared.config.client_id, "sender started");
        loop {
            // The one place callbacks run while the sender lives: here no herald
            // lock is held (every guard lives inside a method called below).
            self.shared.accumulator.deliveries().run_pending();
            let now = Instant::now();
            let mut next = now + Duration::from_secs(3600);
            if self.finish_close_if_done(now) {
                break;
            }
            self.maybe_refresh_metadata(now, &mut next);
            self.maybe_init_producer_id(now, &mut next);
            self.drain(now, &mut next);
            self.maybe_telemetry(now, &mut next);
            self.record_gauges(now);
            if let Some(c) = &self.closing {
                next = next.min(c.deadline);
            }
            tokio::select! {
                _ = self.shared.wake.notified() => {}
                Some(ev) = self.events.next(), if !self.events.is_empty() => self.handle_event(ev),
                Some(c) = self.compressed.recv(), if self.compressor.is_some() => self.handle_compressed(c),
                Some(call) = self.calls.recv(), if self.txn.is_some() => {
                    let answer = self.transport.call(&call.target, call.req, call.max_version);
                    let _ = call.reply.send(answer);
                }
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.handle_command(cmd),
                    None => {
                        // Every handle is gone: deliver what is pending, bounded by
                        // delivery.timeout.ms, as if close had been called.
                        if self.closing.is_none() {
                            self.shared.closing.store(true, Ordering::Release);
                            self.closing = Some(Closing {
                                deadline: Instant::now() + self.shared.config.delivery_timeout,
                                reply: None,
                            });
                        }
                        // The channel stays closed; avoid spinning on it.
                        self.commands = mpsc::unbounded_channel().1;
                    }
                },
                _ = tokio::time::sleep_until(next) => {}
            }
        }
        tracing::debug!(client_id = %self.shared.config.client_id, "sender stopped");
    }

    fn handle_command(&mut self, cmd: Command) {
        match cmd {
            Command::Flush(reply) => {
                let mut out = Vec::new();
                for t in self.shared.accumulator.topics() {
                    if let Some(meta) = t.meta.load_full() {
                        for q in &meta.partitions {
                            let mut st = q.state.lock();
                            st.seal_if_lingered(Instant::now(), Duration::ZERO, true);
                            st.completions(&mut out);
                        }
                    }
                }
                for f in self.in_flight.values() {
                    out.extend(f.batches.iter().map(|(_, b)| b.completion.clone()));
                }
                let _ = reply.send(out);
            }
            Command::CallbacksRun(reply) => {
                self.shared.accumulator.deliveries().run_pending();
                let _ = reply.send(());
            }
            Command::Purge(reply) => {
                let _ = reply.send(self.purge());
            }
            Command::Close { deadline, reply } => {
                self.shared.closing.store(true, Ordering::Release);
                match &mut self.closing {
                    Some(c) => {
                        c.deadline = c.deadline.min(deadline);
                        if let Some(old) = c.reply.replace(reply) {
                            let _ = old.send(Ok(()));
                        }
                    }
                    None => self.closing = Some(Closing { deadline, reply: Some(reply) }),
                }
            }
        }
    }

    /// When closing: stops once nothing is pending, or fails what is left at the
    /// deadline. Returns true when the sender should stop.
    fn finish_close_if_done(&mut self, now: Instant) -> bool {
        let Some(deadline) = self.closing.as_ref().map(|c| c.deadline) else { return false };
        let pending = !self.in_flight.is_empty()
            || self.shared.accumulator.topics().iter().any(|t| {
                t.meta.load_full().is_some_and(|m| m.partitions.iter().any(|q| !q.state.lock().is_empty()))
            });
        if pending && now < deadline {
            return false;
        }
        // Everything is resolved: the terminating push (KIP-714) carries the
        // final totals, within the same deadline.
        if !pending && now < deadline && self.telemetry_closing(now) {
            return false;
        }
        let result = if pending {
            let timeout = self.shared.config.delivery_timeout.min(deadline.saturating_duration_since(now));
            let err = Error::timeout(TimeoutKind::Close, timeout);
            tracing::warn!("close timed out; failing the records still pending");
            self.shared.accumulator.close();
            self.shared.accumulator.fail_all(&err);
            for (_, f) in self.in_flight.drain() {
                for (_, b) in f.batches {
                    // In a request not yet answered: it may have been written.
                    b.fail(err.clone().written(true));
                }
            }
            Err(err)
        } else {
            self.shared.accumulator.close();
            // Appends that slipped in before `close` are swept here.
            self.shared.accumulator.fail_all(&Error::new(ErrorKind::Closed));
            Ok(())
        };
        self.transport.close_all();
        // Everything is resolved: run the last callbacks before answering close.
        self.shared.accumulator.deliveries().run_pending();
        if let Some(reply) = self.closing.as_mut().and_then(|c| c.reply.take()) {
            let _ = reply.send(result);
        }
        true
    }

    /// Asks a broker for a producer id when the idempotent producer needs one.
    fn maybe_init_producer_id(&mut self, now: Instant, next: &mut Instant) {
        let Some(p) = &mut self.producer_id else { return };
        if self.shared.accumulator.topics().is_empty() || !p.due(now, next) {
            return;
        }
        let Some(answer) = self.transport.init_producer_id() else {
            if let Some(t) = self.transport.next_retry_at() {
                *next = (*next).min(t);
            }
            return;
        };
        p.requesting();
        self.events.push(Box::pin(async move { Event::ProducerId(answer.await) }));
    }

    fn handle_producer_id(&mut self, r: Result<(i64, i16), Error>) {
        let Some(p) = &mut self.producer_id else { return };
        let backoff = self.backoff;
        match p.on_answer(&r, Instant::now(), |n| backoff.after(n)) {
            IdOutcome::Ready | IdOutcome::Retrying => {}
            IdOutcome::AuthenticationFailed => {
                if let Err(e) = &r {
                    self.authentication_failed(e);
                }
            }
            IdOutcome::Refused => {
                if let Err(e) = &r {
                    self.fail_queued(e);
                }
            }
        }
    }

    /// Asks for the client telemetry subscription or pushes metrics, when due
    /// (KIP-714). Never before the producer has a topic (as InitProducerId), and
    /// never while closing: close sends the terminating push itself.
    fn maybe_telemetry(&mut self, now: Instant, next: &mut Instant) {
        if self.closing.is_some() {
            return;
        }
        let Some(t) = &mut self.telemetry else { return };
        let Some(due) = t.due(now, next) else { return };
        // Checked only once something is due: listing the topics allocates.
        if self.shared.accumulator.topics().is_empty() {
            return;
        }
        let req = match due {
            Due::Subscriptions => TelemetryRequest::GetTelemetrySubscriptions(t.subscriptions_request()),
            Due::Push => {
                let metrics = super::statistics::snapshot(&self.shared);
                match t.push_request(&metrics, false, now) {
                    Some(req) => TelemetryRequest::PushTelemetry(req),
                    None => return,
                }
            }
        };
        self.send_telemetry(req, now, next);
    }

    /// Hands a telemetry request to the transport; if none can be had now, the
    /// same step is due again when a connection may be.
    fn send_telemetry(&mut self, req: TelemetryRequest, now: Instant, next: &mut Instant) -> bool {
        match self.transport.telemetry(req) {
            Some(answer) => {
                self.events.push(Box::pin(async move { Event::Telemetry(answer.await) }));
                true
            }
            None => {
                let at = self.transport.next_retry_at().unwrap_or(now + Duration::from_secs(1));
                *next = (*next).min(at);
                if let Some(t) = &mut self.telemetry {
                    t.not_sent(at);
                }
                false
            }
        }
    }

    /// On close, with nothing else pending: sends the terminating push if a
    /// subscription wants metrics. True while it awaits its answer.
    fn telemetry_closing(&mut self, now: Instant) -> bool {
        let Some(t) = &mut self.telemetry else { return false };
        match t.close_step() {
            CloseStep::Done => false,
            CloseStep::Wait => true,
            CloseStep::Push => {
                let metrics = super::statistics::snapshot(&self.shared);
                let Some(t) = &mut self.telemetry else { return false };
                let Some(req) = t.push_request(&metrics, true, now) else {
                    t.stop();
                    return false;
                };
                let mut next = now;
                if self.send_telemetry(TelemetryRequest::PushTelemetry(req), now, &mut next) {
                    true
                } else {
                    if let Some(t) = &mut self.telemetry {
                        t.stop();
                    }
                    false
                }
            }
        }
    }

    fn handle_telemetry(&mut self, r: Result<TelemetryResponse, Error>) {
        let Some(t) = &mut self.telemetry else { return };
        let now = Instant::now();
        match r {
            Ok(TelemetryResponse::GetTelemetrySubscriptions(resp)) => {
                t.on_subscriptions(Ok(resp), now);
                let id = t.instance_id();
                if !id.is_nil() {
                    *self.shared.client_instance_id.lock() = Some(id);
                }
            }
            Ok(TelemetryResponse::PushTelemetry(resp)) => t.on_push(Ok(resp), now),
            Err(e) => t.on_failure(e, now),
        }
    }

    /// The producer's metrics.
    pub(crate) fn recorder(&self) -> &crate::metrics::Recorder {
        &self.shared.accumulator.deliveries().recorder
    }

    /// Gauges and the rates' sample, once per turn of the loop.
    fn record_gauges(&mut self, now: Instant) {
        if self.in_flight.len() != self.gauged_in_flight {
            self.gauged_in_flight = self.in_flight.len();
            self.recorder().set_in_flight(self.gauged_in_flight);
        }
        let r = self.recorder();
        let (open, created) = self.transport.connection_stats();
        r.set_connections(open, created);
        r.sample(now.into_std());
    }

    /// Holds `node`'s requests for `wait` (KIP-219).
    pub(crate) fn throttle(&mut self, node: i32, wait: Duration) {
        self.throttled.insert(node, Instant::now() + wait);
    }

    /// `Producer::purge`: fails every batch never sent (sealing open ones) as
    /// purged, not written; returns how many records that was. In a transaction,
    /// the transaction can no longer commit (its records are missing).
    fn purge(&self) -> u64 {
        let records = self.shared.accumulator.purge_unsent();
        if records > 0 {
            tracing::info!(records, "purged records not yet sent");
            if let Some(t) = &self.shared.txn {
                t.record_refused(&Error::new(ErrorKind::Purged));
            }
        }
        records
    }

    /// Fails every queued batch (sealing open ones) with `e`.
    fn fail_queued(&self, e: &Error) {
        self.shared.accumulator.fail_queued(e);
    }

    /// A broker refused herald's TLS or SASL credentials: as Java's
    /// `AuthenticationException`, fail what waits at once rather than after
    /// `delivery.timeout.ms` or `max.block.ms` — queued records, and sends waiting
    /// for a topic's metadata. Later sends try again; connection attempts back off
    /// up to `reconnect.backoff.max.ms` meanwhile.
    pub(crate) fn authentication_failed(&self, e: &Error) {
        tracing::error!(error = %e, "authentication failed; failing queued records");
        for t in self.shared.accumulator.topics() {
            if t.meta.load().is_none() {
                t.set_verdict(e.clone().for_partition(&t.name, None));
            }
        }
        self.fail_queued(e);
    }

    /// Seals, expires, compresses and sends. Lowers `next` to when something will
    /// next be due.
    ///
    /// A partition's batch is due when it is full or has lingered `linger.ms`. On
    /// top of that, a broker with no request in flight takes every partition's
    /// open batch too, sealed early, when one of its batches is due or when its
    /// open batches hold `batch.size` bytes between them: the idle connection
    /// carries whatever waits for it (as Java's `RecordAccumulator.drain` and
    /// franz-go take every partition of a ready broker), and records spread over
    /// many partitions by the round-robin partitioner leave as soon as they would
    /// have filled one batch of a sticky partitioner, instead of after `linger.ms`.
    /// While requests are in flight, batches fill up as before.
    fn drain(&mut self, now: Instant, next: &mut Instant) {
        let cfg = self.shared.config.clone();
        let compressing = self.compressor.is_some();
        let force = self.closing.is_some();
        let id = match (&self.producer_id, &self.txn) {
            (_, Some(t)) => t.producer(),
            (None, None) => Some((NO_PRODUCER_ID, NO_PRODUCER_EPOCH)),
            // None while waiting for a producer id: nothing can be stamped.
            (Some(p), None) => p.current(),
        };
        let mut unresolved = Vec::new();
        let mut add_partitions = false;
        let mut needs_new_id = false;
        let mut nodes: HashMap<i32, NodeWork> = HashMap::new();
        let mut compress = Vec::new();
        for t in self.shared.accumulator.topics() {
            let Some(meta) = t.meta.load_full() else { continue };
            for q in &meta.partitions {
                let leader = q.leader();
                let mut st = q.state.lock();
                if let Some(due) = st.seal_if_lingered(now, cfg.linger, force) {
                    *next = (*next).min(due);
                }
                // Batches whose delivery.timeout.ms has passed while queued.
                let (expired, due) = st.take_expired(now, cfg.delivery_timeout);
                if let Some(due) = due {
                    *next = (*next).min(due);
                }
                // Compression runs on the blocking pool, off this task and off the
                // callers' threads; the batch keeps its place meanwhile.
                let jobs = if compressing { st.take_for_compression() } else { Vec::new() };
                let mut route = false;
                let mut open = 0;
                if let Some((pid, epoch)) = id {
                    if self.txn.is_some() {
                        if st.prepare_transactional(pid, epoch) {
                            unresolved.push(q.clone());
                        }
                    } else if self.producer_id.is_some() {
                        match st.prepare_sequence(pid, epoch) {
                            Bump::Bumped => {
                                tracing::info!(
                                    topic = %q.topic, partition = q.partition, epoch = st.epoch(),
                                    "sequence unresolved: bumped the partition's epoch"
                                );
                                self.shared.accumulator.deliveries().recorder.epoch_bumped();
                            }
                            Bump::NeedsProducerId => needs_new_id = true,
                            Bump::NotNow => {}
                        }
                    }
                    match st.front(now) {
                        Front::Due => route = true,
                        Front::RetryAt(at) => *next = (*next).min(at),
                        // Woken again when its compression is done.
                        Front::Empty | Front::Compressing => {}
                    }
                    if leader >= 0 {
                        open = st.open_len();
                        let share = self.node_partitions.get(&leader).copied().unwrap_or(1).max(1);
                        st.wake_at(cfg.batch_size / share);
                    }
                }
                // A transaction decides whether this partition may send: with
                // transactions v1 once it is added; while aborting, never.
                let mut aborted = Vec::new();
                if let Some(t) = &self.txn {
                    if route || open > 0 || !st.is_empty() {
                        match t.gate(q) {
                            Gate::Send => {}
                            Gate::Wait => {
                                route = false;
                                open = 0;
                                add_partitions = true;
                            }
                            Gate::Fail(e) => {
                                route = false;
                                open = 0;
                                aborted = st.drain_all().into_iter().map(|b| (b, e.clone())).collect();
                            }
                        }
                    }
                }
                drop(st);
                for (b, e) in aborted {
                    b.fail_honestly(e.for_partition(&q.topic, Some(q.partition)));
                }
                for b in expired {
                    expire(b, cfg.delivery_timeout);
                }
                compress.extend(Job::all_of(q, jobs));
                if leader < 0 {
                    if route {
                        self.metadata.request();
                    }
                    continue;
                }
                if id.is_some() {
                    let w = nodes.entry(leader).or_default();
                    w.partitions += 1;
                    if route {
                        w.due.push(q.clone());
                    } else if open > 0 {
                        w.open.push(q.clone());
                        w.open_bytes += open;
                    }
                }
            }
        }
        self.node_partitions.clear();
        self.node_partitions.extend(nodes.iter().map(|(n, w)| (*n, w.partitions)));
        let mut sends = Vec::new();
        for (node, mut w) in nodes {
            let idle = self.in_flight_per_node.get(&node).copied().unwrap_or(0) == 0;
            if idle
                && !w.open.is_empty()
                && (!w.due.is_empty() || w.open_bytes >= cfg.batch_size)
                && self.transport.node_ready(node)
            {
                let mut group = Vec::new();
                for q in w.open {
                    let mut st = q.state.lock();
                    // Unless a sealed batch of it waits: it could not go now. (The
                    // clock read under the lock: a batch opened since `now` too.)
                    st.seal_if_lingered(Instant::now(), Duration::ZERO, false);
                    if compressing {
                        group.extend(Job::all_of(&q, st.take_for_compression()));
                    } else if st.front(now) == Front::Due {
                        drop(st);
                        w.due.push(q);
                    }
                }
                // Compressed one by one, they would leave one per request as each
                // compression ends: they wait for each other (briefly), unless
                // `linger.ms` is 0 or the producer is closing.
                let hold = cfg.linger.min(MAX_HOLD);
                if group.len() > 1 && !hold.is_zero() && !force {
                    let id = self.holds.start(node, group.len(), now + hold);
                    for j in &mut group {
                        j.group = Some(id);
                    }
                }
                compress.extend(group);
            }
            if let Some(until) = self.holds.until(node, now) {
                if !force {
                    *next = (*next).min(until);
                    continue;
                }
            }
            if !w.due.is_empty() {
                sends.push((node, w.due));
            }
        }
        if let Some(c) = &self.compressor {
            c.submit(compress);
        }
        if needs_new_id {
            if let Some(p) = &mut self.producer_id {
                p.renew();
            }
        }
        if let Some(t) = &self.txn {
            for q in unresolved {
                t.sequence_unresolved(&q);
            }
            if add_partitions && t.start_adding() {
                let t = t.clone();
                self.events.push(Box::pin(async move {
                    t.add_partitions().await;
                    Event::TxnAdded
                }));
            }
        }
        for (node, queues) in sends {
            self.send_to_node(node, queues, now, next);
        }
    }

    fn send_to_node(
        &mut self,
        node: i32,
        mut queues: Vec<Arc<PartitionQueue>>,
        now: Instant,
        next: &mut Instant,
    ) {
        let cfg = self.shared.config.clone();
        let idempotent = self.idempotent;
        // Start at a different partition each time so none is always last.
        if !queues.is_empty() {
            let k = fastrand::usize(0..queues.len());
            queues.rotate_left(k);
        }
        if let Some(until) = self.throttled.get(&node).copied() {
            if until > now {
                *next = (*next).min(until);
                return;
            }
            self.throttled.remove(&node);
        }
        while !queues.is_empty() {
            if self.in_flight_per_node.get(&node).copied().unwrap_or(0) >= cfg.max_in_flight {
                return;
            }
            if !self.transport.node_ready(node) {
                if let Some(t) = self.transport.next_retry_at() {
                    *next = (*next).min(t);
                }
                return;
            }
            let mut batches: Vec<(Arc<PartitionQueue>, ProducerBatch)> = Vec::new();
            let mut size = 0usize;
            queues.retain(|q| {
                let mut st = q.state.lock();
                let room = (!batches.is_empty()).then(|| cfg.max_request_size.saturating_sub(size));
                let Some(b) = st.take_for_request(now, room, idempotent) else { return false };
                size += b.payload.len();
                batches.push((q.clone(), b));
                st.front(now) == Front::Due
            });
            if batches.is_empty() {
                return;
            }
            self.send_request(node, batches);
        }
    }

    fn send_request(&mut self, node: i32, batches: Vec<(Arc<PartitionQueue>, ProducerBatch)>) {
        let cfg = self.shared.config.clone();
        let mut req = ProduceRequest::default();
        req.acks = cfg.acks.wire();
        req.timeout_ms = i32::try_from(cfg.request_timeout.as_millis()).unwrap_or(i32::MAX);
        let mut max_version = None;
        if let Some(t) = &self.txn {
            req.transactional_id = Some(TransactionalId(StrBytes::from_string(t.id().to_owned())));
            max_version = t.max_produce_version();
        }
        let mut any_without_id = false;
        let mut topics: Vec<TopicProduceData> = Vec::new();
        let mut topic_ids = Vec::new();
        let mut kept = Vec::with_capacity(batches.len());
        let now = Instant::now();
        let mut records = 0u64;
        for (q, mut b) in batches {
            if b.attempts == 0 {
                let (raw, wire) = (b.raw_len as u64, b.payload.len() as u64);
                self.shared.accumulator.deliveries().recorder.batch_sent(
                    now.duration_since(b.created),
                    raw,
                    wire,
                );
            }
            records += u64::try_from(b.records).unwrap_or(0);
            b.attempts += 1;
            let stamp = b.stamp.unwrap_or(Stamp {
                producer_id: NO_PRODUCER_ID,
                epoch: NO_PRODUCER_EPOCH,
                base_sequence: NO_SEQUENCE,
            });
            let mut pd = PartitionProduceData::default();
            pd.index = q.partition;
            pd.records = Some(stamped(&mut b.payload, stamp, self.txn.is_some()));
            match topics.iter_mut().find(|t| *t.name.0 == *q.topic) {
                Some(t) => t.partition_data.push(pd),
                None => {
                    // The topic's id, from its metadata (nil when the cluster has none).
                    let (entry, _) = self.shared.accumulator.topic(&q.topic);
                    let topic_id = entry.meta.load().as_ref().map(|m| m.id).unwrap_or_default();
                    any_without_id |= topic_id.is_nil();
                    if !topic_id.is_nil() {
                        topic_ids.push((topic_id, q.topic.clone()));
                    }
                    let mut td = TopicProduceData::default();
                    td.name = TopicName(StrBytes::from_string(q.topic.to_string()));
                    td.topic_id = topic_id;
                    td.partition_data.push(pd);
                    topics.push(td);
                }
            }
            kept.push((q, b));
        }
        req.topic_data = topics;
        let expect_response = cfg.acks != Acks::None;
        // Produce v13 names topics only by id; without ids, stay at v12.
        if any_without_id {
            max_version = Some(max_version.map_or(12, |v: i16| v.min(12)));
        }
        let (broker, answer) = match self.transport.produce(node, req, expect_response, max_version) {
            Ok(sent) => sent,
            Err(e) => {
                // Never handed over: the batches keep their stamps and go again.
                for (q, b) in kept {
                    q.state.lock().request_done();
                    let retriable = e.is_retriable();
                    self.retry_or_fail(&q, b, e.clone(), retriable);
                }
                return;
            }
        };
        let id = self.next_request_id;
        self.next_request_id += 1;
        *self.in_flight_per_node.entry(node).or_default() += 1;
        self.recorder().request_sent(node, records);
        self.in_flight.insert(id, InFlight { node, broker, batches: kept, topic_ids, sent_at: now });
        self.events.push(Box::pin(async move { Event::Produce(id, answer.await) }));
    }

    fn handle_event(&mut self, ev: Event) {
        match ev {
            Event::Metadata(r) => self.handle_metadata(r),
            Event::Produce(id, r) => self.handle_produce(id, r),
            Event::ProducerId(r) => self.handle_producer_id(r),
            Event::Telemetry(r) => self.handle_telemetry(r),
            // Woken to send what the added partitions hold.
            Event::TxnAdded => {}
        }
    }

    /// A compression worker's result: the compressed bytes take the batch's place;
    /// a batch whose compression failed fails, not written.
    fn handle_compressed(&mut self, c: Compressed) {
        if let Some(g) = c.group {
            self.holds.returned(g);
        }
        let failed = c.queue.state.lock().compressed(c.order, c.result);
        if let Some((b, e)) = failed {
            b.fail(
                Error::new(ErrorKind::InvalidRecord { reason: format!("compression failed: {e}") })
                    .written(false),
            );
        }
    }
}

impl Drop for Sender {
    /// Whatever happens to the task (even a runtime shutting down), no record is
    /// left without an outcome.
    fn drop(&mut self) {
        let err = Error::new(ErrorKind::Closed);
        self.shared.accumulator.close();
        self.shared.accumulator.fail_all(&err);
        for (_, f) in self.in_flight.drain() {
            for (_, b) in f.batches {
                b.fail(err.clone().written(true));
            }
        }
        // The final sweep: no lock is held here either.
        self.shared.accumulator.deliveries().run_pending();
        if let Some(reply) = self.closing.as_mut().and_then(|c| c.reply.take()) {
            let _ = reply.send(Err(err));
        }
        self.transport.close_all();
    }
}

/// The bytes to send for a batch with `stamp`: stamped (producer fields and CRC)
/// the first time; the same bytes on every retry with the same stamp; restamped
/// when the stamp changed (a new epoch after an unresolved sequence).
fn stamped(payload: &mut Payload, stamp: Stamp, transactional: bool) -> Bytes {
    let mut buf = match std::mem::replace(payload, Payload::Compressing) {
        Payload::Ready(b) => b,
        Payload::Stamped(b, s) if s == stamp => {
            *payload = Payload::Stamped(b.clone(), s);
            return b;
        }
        Payload::Stamped(b, _) => BytesMut::from(&b[..]),
        // Only sendable payloads are drained.
        other => {
            *payload = other;
            return Bytes::new();
        }
    };
    if transactional {
        stamp_transactional(&mut buf, stamp.producer_id, stamp.epoch, stamp.base_sequence);
    } else {
        stamp_producer(&mut buf, stamp.producer_id, stamp.epoch, stamp.base_sequence);
    }
    let bytes = buf.freeze();
    *payload = Payload::Stamped(bytes.clone(), stamp);
    bytes
}

pub(crate) fn expire(mut b: ProducerBatch, delivery_timeout: Duration) {
    let mut e = Error::timeout(TimeoutKind::Delivery, delivery_timeout);
    if let Some(last) = b.last_error.take() {
        e = e.caused_by(last);
    }
    b.fail_honestly(e);
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use parking_lot::Mutex;
    use tokio::sync::Notify;

    use super::*;
    use crate::config::ProducerConfig;
    use crate::connection::ConnectionConfig;
    use crate::producer::accumulator::{Accumulator, RecordRef};
    use crate::record::RecordMetadata;

    /// A sender with no broker behind it (nothing here connects), and topic "t"
    /// with one partition led by node 1.
    fn sender(config: ProducerConfig) -> (Sender, Arc<PartitionQueue>) {
        let config = Arc::new(config);
        let shared = Arc::new(Shared {
            accumulator: Accumulator::new(config.batch_size, config.max_request_size, config.buffer_memory),
            config: config.clone(),
            partitioner: None,
            wake: Notify::new(),
            closing: std::sync::atomic::AtomicBool::new(false),
            last_metadata_error: Mutex::new(None),
            txn: None,
            client_instance_id: Mutex::new(None),
        });
        let conn = ConnectionConfig::new(
            StrBytes::from_static_str("test"),
            Duration::from_secs(1),
            Duration::from_secs(1),
            &config.security,
        )
        .unwrap();
        let pool = crate::connection::pool::Pool::new(
            conn,
            Vec::new(),
            Duration::from_millis(50),
            Duration::from_secs(1),
        );
        let (entry, _) = shared.accumulator.topic("t");
        entry.update(uuid::Uuid::nil(), &[1], Vec::new(), config.codec().is_some());
        let queue = entry.meta.load_full().unwrap().partitions[0].clone();
        let (_tx, rx) = mpsc::unbounded_channel();
        (Sender::new(shared, Box::new(pool), rx, mpsc::unbounded_channel().1), queue)
    }

    /// Counts callback runs; on failure the callback appends a record to the same
    /// partition — taking the partition's lock, as a re-send would.
    struct Resender {
        shared: Arc<Shared>,
        queue: Arc<PartitionQueue>,
        failed: Arc<AtomicUsize>,
        resent: Arc<AtomicUsize>,
    }

    impl Resender {
        fn callback(&self) -> crate::producer::delivery::Callback {
            let (shared, queue) = (self.shared.clone(), self.queue.clone());
            let (failed, resent) = (self.failed.clone(), self.resent.clone());
            crate::producer::delivery::Callback::boxed(move |r: crate::Result<RecordMetadata>| {
                if r.is_err() {
                    failed.fetch_add(1, Ordering::SeqCst);
                    let rec = RecordRef::new(1, None, Some(b"again"));
                    if shared.accumulator.append(&queue, &rec, 0, None).is_ok() {
                        resent.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        }
    }

    fn resender(s: &Sender, q: &Arc<PartitionQueue>) -> Resender {
        Resender {
            shared: s.shared.clone(),
            queue: q.clone(),
            failed: Arc::default(),
            resent: Arc::default(),
        }
    }

    /// What the sender's loop does next: run the queued callbacks.
    fn callbacks_done(s: &Sender) {
        s.shared.accumulator.deliveries().run_pending();
    }

    #[test]
    fn a_broker_waits_for_its_group_until_every_batch_is_back_or_the_deadline() {
        let mut h = Holds::default();
        let now = Instant::now();
        let until = now + MAX_HOLD;
        let g1 = h.start(1, 3, until);
        let g2 = h.start(2, 1, until);
        assert_ne!(g1, g2);
        assert_eq!(h.until(1, now), Some(until));
        assert_eq!(h.until(3, now), None, "a broker without a group does not wait");
        h.returned(g1);
        h.returned(g2);
        assert_eq!(h.until(2, now), None, "its one batch is back");
        h.returned(g1);
        assert_eq!(h.until(1, now), Some(until), "one of three is still compressing");
        assert_eq!(h.until(1, until), None, "the deadline has passed");
        let g3 = h.start(1, 2, until);
        h.returned(g1); // a late batch of a group already over changes nothing
        assert_eq!(h.until(1, now), Some(until));
        h.returned(g3);
        h.returned(g3);
        assert_eq!(h.until(1, now), None);
        assert!(h.by_node.is_empty(), "finished holds are forgotten");
    }

    #[tokio::test]
    async fn a_batch_whose_compression_failed_fails_and_its_callbacks_may_send_again() {
        let mut config = ProducerConfig::default();
        config.set("compression.type", "zstd").unwrap();
        let (mut s, q) = sender(config);
        let r = resender(&s, &q);
        for _ in 0..3 {
            let rec = RecordRef::new(1, None, Some(b"v"));
            s.shared.accumulator.append(&q, &rec, 0, Some(r.callback())).unwrap();
        }
        let jobs = {
            let mut st = q.state.lock();
            st.seal_if_lingered(Instant::now(), Duration::ZERO, true);
            st.take_for_compression()
        };
        assert_eq!(jobs.len(), 1);
        s.handle_compressed(Compressed {
            queue: q.clone(),
            order: jobs[0].1,
            group: None,
            result: Err("boom".into()),
        });
        callbacks_done(&s);
        assert_eq!(r.failed.load(Ordering::SeqCst), 3);
        assert_eq!(r.resent.load(Ordering::SeqCst), 3, "each callback appended to the same partition");
        assert!(!q.state.lock().is_empty(), "the records sent again are queued");
    }

    #[tokio::test]
    async fn an_authentication_failure_fails_queued_records_and_their_callbacks_may_send_again() {
        let (s, q) = sender(ProducerConfig::default());
        let r = resender(&s, &q);
        for i in 0..4 {
            let rec = RecordRef::new(1, None, Some(b"v"));
            s.shared.accumulator.append(&q, &rec, 0, Some(r.callback())).unwrap();
            if i == 1 {
                q.state.lock().seal_if_lingered(Instant::now(), Duration::ZERO, true);
            }
        }
        let e = crate::security::sasl::auth_error("b:1", "bad password".into());
        s.authentication_failed(&e);
        callbacks_done(&s);
        assert_eq!(r.failed.load(Ordering::SeqCst), 4, "sealed and open batches both failed");
        assert_eq!(r.resent.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn the_final_sweep_fails_what_is_left_and_callbacks_are_refused_new_records() {
        let (s, q) = sender(ProducerConfig::default());
        let r = resender(&s, &q);
        let rec = RecordRef::new(1, None, Some(b"v"));
        s.shared.accumulator.append(&q, &rec, 0, Some(r.callback())).unwrap();
        drop(s); // what a runtime shutting down does to the sender task: its drop runs the callbacks
        assert_eq!(r.failed.load(Ordering::SeqCst), 1);
        assert_eq!(r.resent.load(Ordering::SeqCst), 0, "a closed accumulator refuses the record");
    }
}
