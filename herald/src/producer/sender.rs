//! The sender: one task per producer that owns the connections, the metadata
//! refreshes, and every request in flight.
//!
//! Each turn of its loop it seals batches whose `linger.ms` has passed, fails
//! batches past `delivery.timeout.ms`, groups ready batches by partition leader
//! into Produce requests (one batch per partition per request, at most
//! `max.request.size` bytes, at most `max.in.flight.requests.per.connection`
//! requests per broker), and handles answers: success resolves a batch, a retriable
//! error puts it back in its partition's queue after a backoff (refreshing metadata
//! first when the error says leadership moved), anything else fails it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::Shared;
use super::accumulator::{PartitionQueue, Payload, ProducerBatch, TopicEntry};
use super::delivery::{BatchAck, BatchCompletion};
use crate::compression::Codec;
use crate::config::Acks;
use crate::protocol::batch::{NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, compress_batch, stamp_producer};
use bytes::{Bytes, BytesMut};
use crate::connection::pool::Pool;
use crate::error::{Error, ErrorCode, ErrorKind, TimeoutKind};
use crate::metadata;

/// Consecutive "does not exist" metadata answers after which sends to a topic fail
/// (with a backoff between answers, about a second in all) — franz-go's approach,
/// rather than Java's wait of `max.block.ms`, so a typo fails fast.
const UNKNOWN_TOPIC_ANSWERS: u32 = 3;

/// Commands from producer handles.
pub(crate) enum Command {
    /// Seal everything and reply with every unresolved batch.
    Flush(oneshot::Sender<Vec<Arc<BatchCompletion>>>),
    /// Deliver what is pending until `deadline`, fail the rest, stop.
    Close { deadline: Instant, reply: oneshot::Sender<Result<(), Error>> },
}

enum Event {
    Produce(u64, Result<(i16, Option<ProduceResponse>), Error>),
    Metadata(Result<metadata::Snapshot, Error>),
    Compressed { queue: Arc<PartitionQueue>, order: u64, result: Result<(BytesMut, f32), String> },
}

struct InFlight {
    node: i32,
    broker: Arc<str>,
    batches: Vec<ProducerBatch>,
}

/// A broker's answer for one partition of a Produce request.
struct PartitionAnswer {
    code: ErrorCode,
    base_offset: i64,
    log_append_time: i64,
    message: Option<String>,
}

struct MetadataState {
    in_flight: bool,
    /// Something asked for a refresh (new topic, stale leader, error).
    needed: bool,
    last_success: Option<Instant>,
    not_before: Instant,
    failures: u32,
}

struct Closing {
    deadline: Instant,
    reply: Option<oneshot::Sender<Result<(), Error>>>,
}

pub(crate) struct Sender {
    shared: Arc<Shared>,
    pool: Pool,
    commands: mpsc::UnboundedReceiver<Command>,
    events: FuturesUnordered<BoxFuture<'static, Event>>,
    in_flight: HashMap<u64, InFlight>,
    in_flight_per_node: HashMap<i32, usize>,
    next_request_id: u64,
    metadata: MetadataState,
    closing: Option<Closing>,
}

impl Sender {
    pub(crate) fn new(shared: Arc<Shared>, pool: Pool, commands: mpsc::UnboundedReceiver<Command>) -> Sender {
        Sender {
            shared,
            pool,
            commands,
            events: FuturesUnordered::new(),
            in_flight: HashMap::new(),
            in_flight_per_node: HashMap::new(),
            next_request_id: 0,
            metadata: MetadataState {
                in_flight: false,
                needed: true,
                last_success: None,
                not_before: Instant::now(),
                failures: 0,
            },
            closing: None,
        }
    }

    pub(crate) async fn run(mut self) {
        tracing::debug!(client_id = %self.shared.config.client_id, "sender started");
        loop {
            let now = Instant::now();
            let mut next = now + Duration::from_secs(3600);
            if self.finish_close_if_done(now) {
                break;
            }
            self.maybe_refresh_metadata(now, &mut next);
            self.drain(now, &mut next);
            if let Some(c) = &self.closing {
                next = next.min(c.deadline);
            }
            tokio::select! {
                _ = self.shared.wake.notified() => {}
                Some(ev) = self.events.next(), if !self.events.is_empty() => self.handle_event(ev),
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.handle_command(cmd),
                    None => {
                        // Every handle is gone: deliver what is pending, bounded by
                        // delivery.timeout.ms, as if close had been called.
                        if self.closing.is_none() {
                            self.shared.closing.store(true, std::sync::atomic::Ordering::Release);
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
                    out.extend(f.batches.iter().map(|b| b.completion.clone()));
                }
                let _ = reply.send(out);
            }
            Command::Close { deadline, reply } => {
                self.shared.closing.store(true, std::sync::atomic::Ordering::Release);
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
        let Some(closing) = &self.closing else { return false };
        let pending = !self.in_flight.is_empty()
            || self.shared.accumulator.topics().iter().any(|t| {
                t.meta.load_full().is_some_and(|m| m.partitions.iter().any(|q| !q.state.lock().is_empty()))
            });
        if pending && now < closing.deadline {
            return false;
        }
        let result = if pending {
            let timeout =
                self.shared.config.delivery_timeout.min(closing.deadline.saturating_duration_since(now));
            let err = Error::timeout(TimeoutKind::Close, timeout);
            tracing::warn!("close timed out; failing the records still pending");
            self.shared.accumulator.close();
            self.shared.accumulator.fail_all(&err);
            for (_, f) in self.in_flight.drain() {
                for b in f.batches {
                    b.completion.fail(err.clone());
                }
            }
            Err(err)
        } else {
            self.shared.accumulator.close();
            // Appends that slipped in before `close` are swept here.
            self.shared.accumulator.fail_all(&Error::new(ErrorKind::Closed));
            Ok(())
        };
        self.pool.close_all();
        if let Some(reply) = self.closing.as_mut().and_then(|c| c.reply.take()) {
            let _ = reply.send(result);
        }
        true
    }

    fn maybe_refresh_metadata(&mut self, now: Instant, next: &mut Instant) {
        let cfg = &self.shared.config;
        if self.metadata.in_flight {
            return;
        }
        let topics = self.shared.accumulator.topics();
        let stale = self.metadata.last_success.is_none_or(|t| now >= t + cfg.metadata_max_age);
        let new_topic = topics.iter().any(|t| t.meta.load().is_none() && t.verdict.lock().is_none());
        if !(self.metadata.needed || stale || new_topic) {
            if let Some(t) = self.metadata.last_success {
                *next = (*next).min(t + cfg.metadata_max_age);
            }
            return;
        }
        if topics.is_empty() && self.metadata.last_success.is_some() && !self.metadata.needed {
            return;
        }
        if now < self.metadata.not_before {
            *next = (*next).min(self.metadata.not_before);
            return;
        }
        let Some(conn) = self.pool.any() else {
            if let Some(t) = self.pool.next_retry_at() {
                *next = (*next).min(t);
            }
            return;
        };
        let names: Vec<Arc<str>> = topics.iter().map(|t| t.name.clone()).collect();
        let broker = conn.name().clone();
        let fut = conn.call(metadata::request(Some(&names), true), true);
        self.metadata.in_flight = true;
        self.metadata.needed = false;
        self.events.push(Box::pin(async move {
            let r = fut.await.and_then(|(_, resp)| match resp {
                Some(resp) => metadata::parse(resp, &broker),
                None => Err(Error::protocol(&*broker, "no Metadata response")),
            });
            Event::Metadata(r)
        }));
    }

    fn handle_metadata(&mut self, result: Result<metadata::Snapshot, Error>) {
        self.metadata.in_flight = false;
        let now = Instant::now();
        let snapshot = match result {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "metadata request failed");
                self.metadata.failures = self.metadata.failures.saturating_add(1);
                self.metadata.needed = true;
                self.metadata.not_before = now + backoff(&self.shared, self.metadata.failures);
                *self.shared.last_metadata_error.lock() = Some(e);
                return;
            }
        };
        self.metadata.failures = 0;
        self.metadata.last_success = Some(now);
        self.metadata.not_before = now + self.shared.config.retry_backoff;
        self.pool.set_brokers(snapshot.brokers);
        let by_name: HashMap<&str, &metadata::TopicInfo> =
            snapshot.topics.iter().map(|t| (&*t.name, t)).collect();
        for entry in self.shared.accumulator.topics() {
            let Some(info) = by_name.get(&*entry.name) else { continue };
            self.apply_topic(&entry, info);
        }
    }

    fn apply_topic(&mut self, entry: &TopicEntry, info: &metadata::TopicInfo) {
        let code = info.error;
        if code.is_ok() {
            let leaders: Vec<i32> = info.partitions.iter().map(|p| p.leader).collect();
            if leaders.is_empty() {
                self.metadata.needed = true;
                return;
            }
            if leaders.iter().any(|l| *l < 0) {
                self.metadata.needed = true;
            }
            entry.update(info.id, &leaders, self.shared.config.codec().is_some());
            return;
        }
        match code {
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => {
                let n = entry.unknown_answers.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if entry.meta.load().is_none() && n >= UNKNOWN_TOPIC_ANSWERS {
                    tracing::warn!(topic = %entry.name, "topic does not exist");
                    entry.set_verdict(Error::new(ErrorKind::UnknownTopic).for_partition(&entry.name, None));
                } else {
                    self.metadata.needed = true;
                    self.metadata.not_before = Instant::now() + backoff(&self.shared, n);
                }
            }
            c if c.is_retriable() => self.metadata.needed = true,
            c => {
                tracing::warn!(topic = %entry.name, error = %c, "metadata refused the topic");
                entry.set_verdict(Error::broker(c, None).for_partition(&entry.name, None));
            }
        }
    }

    /// Seals, expires and sends. Lowers `next` to when something will next be due.
    fn drain(&mut self, now: Instant, next: &mut Instant) {
        let cfg = self.shared.config.clone();
        let force = self.closing.is_some();
        let mut by_node: HashMap<i32, Vec<Arc<PartitionQueue>>> = HashMap::new();
        for t in self.shared.accumulator.topics() {
            let Some(meta) = t.meta.load_full() else { continue };
            for q in &meta.partitions {
                let mut st = q.state.lock();
                if let Some(due) = st.seal_if_lingered(now, cfg.linger, force) {
                    *next = (*next).min(due);
                }
                // Fail batches whose delivery.timeout.ms has passed while queued.
                while let Some(b) = st.ready.front() {
                    let deadline = b.created + cfg.delivery_timeout;
                    if now < deadline {
                        *next = (*next).min(deadline);
                        break;
                    }
                    if let Some(b) = st.ready.pop_front() {
                        expire(b, cfg.delivery_timeout);
                    }
                }
                // Compression runs on the blocking pool, off this task and off the
                // callers' threads; the batch stays in its place meanwhile.
                if let Some(codec) = cfg.codec() {
                    for b in st.ready.iter_mut() {
                        if let Payload::Raw(_) = b.payload {
                            if let Payload::Raw(raw) = std::mem::replace(&mut b.payload, Payload::Compressing) {
                                self.compress(q.clone(), b.order, raw, codec);
                            }
                        }
                    }
                }
                let Some(front) = st.ready.front() else { continue };
                if !front.payload.sendable() {
                    continue; // woken again when its compression is done
                }
                if let Some(at) = front.retry_at.filter(|at| *at > now) {
                    *next = (*next).min(at);
                    continue;
                }
                let leader = q.leader();
                if leader < 0 {
                    self.metadata.needed = true;
                    continue;
                }
                drop(st);
                by_node.entry(leader).or_default().push(q.clone());
            }
        }
        for (node, queues) in by_node {
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
        // Start at a different partition each time so none is always last.
        if !queues.is_empty() {
            let k = fastrand::usize(0..queues.len());
            queues.rotate_left(k);
        }
        while !queues.is_empty() {
            if self.in_flight_per_node.get(&node).copied().unwrap_or(0) >= cfg.max_in_flight {
                return;
            }
            if !self.pool.node_ready(node) {
                if let Some(t) = self.pool.next_retry_at() {
                    *next = (*next).min(t);
                }
                return;
            }
            let mut batches: Vec<(Arc<PartitionQueue>, ProducerBatch)> = Vec::new();
            let mut size = 0usize;
            queues.retain(|q| {
                let mut st = q.state.lock();
                let due = |b: &ProducerBatch| b.payload.sendable() && b.retry_at.is_none_or(|at| at <= now);
                let fits = st.ready.front().is_some_and(|b| {
                    due(b) && (batches.is_empty() || size + b.payload.len() <= cfg.max_request_size)
                });
                if fits {
                    if let Some(b) = st.ready.pop_front() {
                        size += b.payload.len();
                        batches.push((q.clone(), b));
                    }
                }
                st.ready.front().is_some_and(due)
            });
            if batches.is_empty() {
                return;
            }
            self.send_request(node, batches);
        }
    }

    fn send_request(&mut self, node: i32, batches: Vec<(Arc<PartitionQueue>, ProducerBatch)>) {
        let cfg = &self.shared.config;
        let conn = match self.pool.node(node) {
            Ok(c) => c,
            Err(e) => {
                for (q, b) in batches {
                    self.retry_or_fail(&q, b, e.clone());
                }
                return;
            }
        };
        let mut req = ProduceRequest::default();
        req.acks = cfg.acks.wire();
        req.timeout_ms = i32::try_from(cfg.request_timeout.as_millis()).unwrap_or(i32::MAX);
        let mut any_without_id = false;
        let mut topics: Vec<TopicProduceData> = Vec::new();
        let mut kept = Vec::with_capacity(batches.len());
        for (q, mut b) in batches {
            b.attempts += 1;
            let topic_id = self
                .shared
                .accumulator
                .topic(&q.topic)
                .0
                .meta
                .load()
                .as_ref()
                .map(|m| m.id)
                .unwrap_or_default();
            any_without_id |= topic_id.is_nil();
            let mut pd = PartitionProduceData::default();
            pd.index = q.partition;
            pd.records = Some(stamped(&mut b.payload));
            match topics.iter_mut().find(|t| *t.name.0 == *q.topic) {
                Some(t) => t.partition_data.push(pd),
                None => {
                    let mut td = TopicProduceData::default();
                    td.name = TopicName(StrBytes::from_string(q.topic.to_string()));
                    td.topic_id = topic_id;
                    td.partition_data.push(pd);
                    topics.push(td);
                }
            }
            kept.push(b);
        }
        req.topic_data = topics;
        let expect_response = cfg.acks != Acks::None;
        // Produce v13 names topics only by id; without ids, stay at v12.
        let max_version = if any_without_id { Some(12) } else { None };
        let fut = conn.call_with_max(req, expect_response, max_version);
        let id = self.next_request_id;
        self.next_request_id += 1;
        *self.in_flight_per_node.entry(node).or_default() += 1;
        self.in_flight.insert(id, InFlight { node, broker: conn.name().clone(), batches: kept });
        self.events.push(Box::pin(async move { Event::Produce(id, fut.await) }));
    }

    fn handle_event(&mut self, ev: Event) {
        match ev {
            Event::Metadata(r) => self.handle_metadata(r),
            Event::Produce(id, r) => self.handle_produce(id, r),
            Event::Compressed { queue, order, result } => {
                let mut st = queue.state.lock();
                let Some(at) = st.ready.iter().position(|b| b.order == order) else { return };
                match result {
                    Ok((bytes, ratio)) => {
                        st.ready[at].payload = Payload::Ready(bytes);
                        st.observe_ratio(ratio);
                    }
                    Err(e) => {
                        if let Some(b) = st.ready.remove(at) {
                            b.completion.fail(Error::new(ErrorKind::InvalidRecord { reason: format!("compression failed: {e}") }));
                        }
                    }
                }
            }
        }
    }

    /// Compresses a sealed batch on the blocking pool; the result comes back as an
    /// event and takes the batch's place in its queue.
    fn compress(&mut self, queue: Arc<PartitionQueue>, order: u64, raw: BytesMut, codec: Codec) {
        let job = tokio::task::spawn_blocking(move || compress_batch(&raw, codec).map_err(|e| e.to_string()));
        self.events.push(Box::pin(async move {
            let result = job.await.unwrap_or_else(|e| Err(format!("compression task failed: {e}")));
            Event::Compressed { queue, order, result }
        }));
    }

    fn handle_produce(&mut self, id: u64, result: Result<(i16, Option<ProduceResponse>), Error>) {
        let Some(f) = self.in_flight.remove(&id) else { return };
        if let Some(n) = self.in_flight_per_node.get_mut(&f.node) {
            *n = n.saturating_sub(1);
        }
        let resp = match result {
            Err(e) => {
                tracing::debug!(broker = %f.broker, error = %e, "produce request failed");
                self.metadata.needed = true;
                if matches!(e.kind(), ErrorKind::Timeout { .. } | ErrorKind::Protocol { .. }) {
                    self.pool.close_node(f.node);
                }
                for b in f.batches {
                    let q = self.queue_of(&b.completion);
                    self.retry_or_fail_opt(q.as_deref(), b, e.clone());
                }
                return;
            }
            Ok((_, None)) => {
                // acks=0: written is all we will ever know.
                for b in f.batches {
                    b.completion.complete(Ok(BatchAck { base_offset: None, log_append_time: None }));
                }
                return;
            }
            Ok((_, Some(resp))) => resp,
        };
        let ids: HashMap<uuid::Uuid, Arc<str>> = f
            .batches
            .iter()
            .filter_map(|b| {
                let t = b.completion.topic();
                let id = self.shared.accumulator.topic(t).0.meta.load().as_ref().map(|m| m.id)?;
                (!id.is_nil()).then(|| (id, t.clone()))
            })
            .collect();
        let mut answers: HashMap<(Arc<str>, i32), PartitionAnswer> = HashMap::new();
        for t in resp.responses {
            let name: Option<Arc<str>> = if t.name.0.is_empty() {
                ids.get(&t.topic_id).cloned()
            } else {
                Some(Arc::from(t.name.0.as_str()))
            };
            let Some(name) = name else {
                tracing::warn!(broker = %f.broker, "produce response names a topic that was not asked about; ignored");
                continue;
            };
            for p in t.partition_responses {
                let mut message = p.error_message.map(|m| m.to_string());
                if !p.record_errors.is_empty() {
                    let details: Vec<String> = p
                        .record_errors
                        .iter()
                        .map(|r| match &r.batch_index_error_message {
                            Some(m) => format!("record {}: {m}", r.batch_index),
                            None => format!("record {}", r.batch_index),
                        })
                        .collect();
                    let joined = details.join("; ");
                    message = Some(match message {
                        Some(m) => format!("{m}; {joined}"),
                        None => joined,
                    });
                }
                answers.insert(
                    (name.clone(), p.index),
                    PartitionAnswer {
                        code: ErrorCode::new(p.error_code),
                        base_offset: p.base_offset,
                        log_append_time: p.log_append_time_ms,
                        message,
                    },
                );
            }
        }
        for b in f.batches {
            let key = (b.completion.topic().clone(), b.completion.partition());
            let q = self.queue_of(&b.completion);
            match answers.remove(&key) {
                None => {
                    let e =
                        Error::protocol(&*f.broker, "the produce response has no answer for this partition");
                    self.retry_or_fail_opt(q.as_deref(), b, e);
                }
                Some(a) if a.code.is_ok() => {
                    b.completion.complete(Ok(BatchAck {
                        base_offset: Some(a.base_offset),
                        log_append_time: (a.log_append_time >= 0).then_some(a.log_append_time),
                    }));
                }
                Some(PartitionAnswer { code, message, .. }) => {
                    if code.is_stale_metadata() {
                        self.metadata.needed = true;
                    }
                    let e = Error::broker(code, message);
                    if code.is_retriable() {
                        self.retry_or_fail_opt(q.as_deref(), b, e);
                    } else {
                        b.completion.fail(e);
                    }
                }
            }
        }
        for ((t, p), _) in answers {
            tracing::warn!(broker = %f.broker, topic = %t, partition = p, "produce response for a partition that was not asked about; ignored");
        }
    }

    fn queue_of(&self, c: &BatchCompletion) -> Option<Arc<PartitionQueue>> {
        let (entry, _) = self.shared.accumulator.topic(c.topic());
        let meta = entry.meta.load_full()?;
        meta.partitions.get(usize::try_from(c.partition()).ok()?).cloned()
    }

    fn retry_or_fail_opt(&mut self, q: Option<&PartitionQueue>, b: ProducerBatch, err: Error) {
        match q {
            Some(q) => self.retry_or_fail(q, b, err),
            None => {
                b.completion.fail(err);
            }
        }
    }

    /// Puts a batch back for another attempt if `retries` and `delivery.timeout.ms`
    /// allow; otherwise fails it with `err`.
    fn retry_or_fail(&mut self, q: &PartitionQueue, mut b: ProducerBatch, err: Error) {
        let cfg = &self.shared.config;
        let now = Instant::now();
        let wait = backoff(&self.shared, b.attempts);
        let deadline = b.created + cfg.delivery_timeout;
        if !err.is_retriable() || b.attempts > cfg.retries || now + wait >= deadline {
            let err = if err.is_retriable() && now + wait >= deadline {
                Error::timeout(TimeoutKind::Delivery, cfg.delivery_timeout).caused_by(err)
            } else {
                err
            };
            b.completion.fail(err);
            return;
        }
        tracing::debug!(topic = %q.topic, partition = q.partition, records = b.records, attempt = b.attempts, error = %err, "retrying batch");
        b.retry_at = Some(now + wait);
        b.last_error = Some(err);
        q.state.lock().requeue(b);
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
            for b in f.batches {
                b.completion.fail(err.clone());
            }
        }
        if let Some(reply) = self.closing.as_mut().and_then(|c| c.reply.take()) {
            let _ = reply.send(Err(err));
        }
        self.pool.close_all();
    }
}

/// The bytes to send for a batch: stamped with "no producer" and its CRC the first
/// time, the same bytes on every retry.
fn stamped(payload: &mut Payload) -> Bytes {
    match std::mem::replace(payload, Payload::Compressing) {
        Payload::Ready(mut b) => {
            stamp_producer(&mut b, NO_PRODUCER_ID, NO_PRODUCER_EPOCH, NO_SEQUENCE);
            let bytes = b.freeze();
            *payload = Payload::Stamped(bytes.clone());
            bytes
        }
        Payload::Stamped(b) => {
            *payload = Payload::Stamped(b.clone());
            b
        }
        // Only sendable payloads are drained.
        other => {
            *payload = other;
            Bytes::new()
        }
    }
}

fn expire(b: ProducerBatch, delivery_timeout: Duration) {
    let mut e = Error::timeout(TimeoutKind::Delivery, delivery_timeout);
    if let Some(last) = b.last_error {
        e = e.caused_by(last);
    }
    b.completion.fail(e);
}

/// `retry.backoff.ms` doubled per attempt, capped at `retry.backoff.max.ms`, with
/// ±20% jitter (KIP-580).
fn backoff(shared: &Shared, attempts: u32) -> Duration {
    let cfg = &shared.config;
    let exp = cfg.retry_backoff.saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
    let capped = exp.min(cfg.retry_backoff_max);
    capped.mul_f64(0.8 + fastrand::f64() * 0.4)
}
