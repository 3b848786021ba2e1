//! The producer.
//!
//! Ownership in one line: **a [`Producer`] owns one sender task; the sender owns
//! one connection per broker and every request in flight; the accumulator owns one
//! queue per partition; a queue owns its open batch and its sealed batches; a batch
//! owns its encoded records and the one completion its records' futures share.**
//!
//! - `accumulator`: `send` appends to a partition's open batch on the caller's
//!   thread; each partition's `QueueState` keeps its batches behind narrow methods.
//! - `sender`: the background task that seals, sends, retries and resolves, over a
//!   `transport` (the connection pool), with a metadata refresher (`refresh`), a
//!   producer-id manager (`producer_id`) and a pure answer classifier (`response`).
//! - `delivery`: the futures that carry each record's outcome back, and the queue
//!   of callbacks the sender runs where it holds no lock.
//! - `split`: a batch the broker refused as too large, re-encoded into smaller
//!   ones that take over its records' outcomes (KIP-126).

pub(crate) mod accumulator;
pub(crate) mod batch;
mod compressor;
pub(crate) mod delivery;
pub(crate) mod idempotence;
mod on_metadata;
mod on_produce;
mod producer_id;
mod refresh;
mod response;
#[cfg(test)]
mod scripted;
pub(crate) mod sender;
mod split;
mod statistics;
mod telemetry;
mod transaction;
mod transactional;
mod transport;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

use self::accumulator::{Accumulator, TopicEntry, TopicMeta};
pub use self::delivery::DeliveryFuture;
use self::delivery::{Callback, Deliveries};
use self::sender::{Command, Sender};
use self::transaction::{Caller, Transactions};
pub use self::transaction::{ConsumerGroupMetadata, TxnOffset};
use crate::admin::PartitionDescription;
use crate::client::ClientConfig;
use crate::config::{Acks, BuiltInPartitioner, ProducerConfig};
use crate::error::{Error, ErrorKind, Result, TimeoutKind};
use crate::interceptor::{Intercepted, Interceptor, Interceptors, ProducerInterceptor};
use crate::partitioner::{NullKeyPartitioning, Partitioner, Partitions, partition_for_key};
use crate::protocol::batch::{BATCH_HEADER_LEN, fields_len, record_size_upper_bound_of};
pub use crate::record::Topic;
use crate::record::{Record, RecordMetadata, RecordTopic};
use crate::security::{
    OAuthBearerToken, Pem, SaslMechanism, Secret, SecurityConfig, SecurityProtocol, TokenProvider,
};

/// A record waiting for the slow path of `send`.
struct Pending {
    record: Record,
    callback: Option<Callback>,
}

enum Fast {
    Done(Result<Option<DeliveryFuture>>),
    Slow(Pending, Blocked),
}

/// What a record must wait for before it can be queued.
enum Blocked {
    /// Its topic's metadata.
    Metadata,
    /// Room in `buffer.memory` for its `size` bytes, in `partition`.
    Memory { size: usize, partition: i32 },
}

/// Without a callback the accumulator always hands back a future.
fn expect_future(f: Option<DeliveryFuture>) -> Result<DeliveryFuture> {
    f.ok_or_else(|| Error::new(ErrorKind::Closed))
}

/// What `send_with_callback` hands its caller once the record is queued.
fn queued(_: Option<DeliveryFuture>) -> Result<()> {
    Ok(())
}

/// Returned by [`Producer::send`] and [`Producer::send_with_callback`]: resolves
/// once the record is queued (at once, unless it had to wait for metadata or
/// buffer room) to its [`DeliveryFuture`] (or `()` with a callback), or to why it
/// was refused.
#[must_use = "a record that must wait for metadata or buffer room is queued only when this is awaited"]
pub struct SendFuture<T> {
    inner: SendInner<T>,
}

enum SendInner<T> {
    Ready(Option<Result<T>>),
    Waiting(Pin<Box<dyn Future<Output = Result<T>> + Send>>),
}

impl<T> SendFuture<T> {
    fn ready(r: Result<T>) -> SendFuture<T> {
        SendFuture { inner: SendInner::Ready(Some(r)) }
    }

    fn waiting(f: impl Future<Output = Result<T>> + Send + 'static) -> SendFuture<T> {
        SendFuture { inner: SendInner::Waiting(Box::pin(f)) }
    }
}

impl<T> fmt::Debug for SendFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.inner {
            SendInner::Ready(_) => "SendFuture(queued)",
            SendInner::Waiting(_) => "SendFuture(waiting)",
        })
    }
}

impl<T: Unpin> Future for SendFuture<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<T>> {
        match &mut self.get_mut().inner {
            SendInner::Ready(r) => {
                // The record is already queued. Still, take a unit of tokio's
                // cooperative budget, as tokio's own channels do: a loop that sends
                // record after record without awaiting anything else then yields
                // every so often, so the sender task — on the same worker in a
                // current-thread runtime, or a one-core process — is never starved
                // until the buffer fills (stalls of hundreds of milliseconds).
                let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
                coop.made_progress();
                std::task::Poll::Ready(r.take().unwrap_or_else(|| Err(Error::new(ErrorKind::Closed))))
            }
            SendInner::Waiting(f) => f.as_mut().poll(cx),
        }
    }
}

/// State shared by producer handles and the sender task.
pub(crate) struct Shared {
    pub(crate) config: Arc<ProducerConfig>,
    pub(crate) accumulator: Accumulator,
    pub(crate) partitioner: Option<Arc<dyn Partitioner>>,
    /// Wakes the sender: a batch was opened or sealed, or a topic needs metadata.
    pub(crate) wake: Notify,
    /// Set by `close`: new records are refused; queued ones are still delivered.
    pub(crate) closing: AtomicBool,
    /// The last metadata failure, to explain a metadata timeout.
    pub(crate) last_metadata_error: Mutex<Option<Error>>,
    /// With `transactional.id`: the transaction state machine.
    pub(crate) txn: Option<Arc<Transactions>>,
    /// The client instance id a broker assigned (KIP-714), once one has.
    pub(crate) client_instance_id: Mutex<Option<uuid::Uuid>>,
}

/// Sends a close to the sender when the last handle goes.
struct Handle {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    /// The producer interceptors, `None` without any (the fast path's one branch).
    interceptors: Option<Arc<Interceptors>>,
}

/// A Kafka producer. Cheap to clone: clones share one set of connections and
/// buffers. Build one with [`Producer::builder`].
///
/// ```no_run
/// # async fn demo() -> Result<(), herald::Error> {
/// use herald::{Producer, Record};
///
/// let producer = Producer::builder()
///     .bootstrap_servers("127.0.0.1:9092")
///     .build()?;
/// let delivery = producer.send(Record::new("trucks").key("truck_id_123").value("52.52,13.40")).await?;
/// let written = delivery.await?;
/// println!("partition {} offset {:?}", written.partition(), written.offset());
/// producer.close(std::time::Duration::from_secs(30)).await?;
/// # Ok(()) }
/// ```
///
/// Dropping the last handle without [`close`](Producer::close) still delivers what
/// is queued, in the background, within `delivery.timeout.ms`.
#[derive(Clone)]
pub struct Producer {
    handle: Arc<Handle>,
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("client_id", &self.handle.shared.config.client_id)
            .field("bootstrap_servers", &self.handle.shared.config.bootstrap_servers)
            .finish()
    }
}

impl Producer {
    /// A builder with Kafka's default settings.
    pub fn builder() -> ProducerBuilder {
        ProducerBuilder::new()
    }

    /// The settings this producer runs with.
    pub fn config(&self) -> &ProducerConfig {
        &self.handle.shared.config
    }

    /// The client instance id the cluster assigned this producer for client
    /// telemetry (KIP-714), in Kafka's text form (URL-safe base64, as brokers log
    /// it and their telemetry plugins see it); `None` with
    /// `enable.metrics.push=false`, or before a broker answered
    /// GetTelemetrySubscriptions (Java's `KafkaProducer.clientInstanceId` waits
    /// for it instead).
    pub fn client_instance_id(&self) -> Option<String> {
        use base64::Engine as _;
        let id = (*self.shared().client_instance_id.lock())?;
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes()))
    }

    /// A snapshot of the producer's metrics, named as Java's producer metrics
    /// (`record-send-total`, `request-latency-avg`, …; see [`crate::metrics`]).
    /// Recording them is always on and costs next to nothing; taking a snapshot
    /// reads a few dozen counters.
    ///
    /// ```no_run
    /// # fn demo(producer: herald::Producer) {
    /// let m = producer.metrics();
    /// println!("{} records written, {:.0}/s, p. request {:.1} ms", m.record_send_total, m.record_send_rate, m.request_latency_avg);
    /// for (name, value) in m.iter() {
    ///     println!("{name} {value}");
    /// }
    /// # }
    /// ```
    pub fn metrics(&self) -> crate::metrics::ProducerMetrics {
        statistics::snapshot(self.shared())
    }

    /// The producer's metrics for an exporter, without keeping the producer open.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn metrics_source(&self) -> statistics::MetricsSource {
        statistics::MetricsSource::new(self.handle.shared.clone())
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Queues a record; the returned [`SendFuture`] gives a future of its outcome.
    ///
    /// The record is queued *now*, before the `SendFuture` is awaited — encoded into
    /// its partition's batch, so a later [`flush`](Self::flush) covers it — unless it
    /// must wait for the topic's metadata (first use) or for room in the producer's
    /// buffer (`buffer.memory`). Then it is queued as the `SendFuture` is awaited,
    /// within `max.block.ms`; dropping the `SendFuture` before that drops the record
    /// unsent.
    ///
    /// An error from the `SendFuture` means the record was refused and will not be
    /// sent: the producer is closed, the topic does not exist, the record is larger
    /// than `max.request.size` or `buffer.memory`, it names a partition the topic
    /// does not have, or the wait ran out. Otherwise the [`DeliveryFuture`] resolves
    /// exactly once, to where the record was written or why it was not.
    pub fn send(&self, record: Record) -> SendFuture<DeliveryFuture> {
        if self.handle.interceptors.is_some() {
            return self.send_intercepted(record);
        }
        self.enqueue(record, None, Plain, expect_future)
    }

    /// [`send`](Self::send) with interceptors: kept out of the fast path.
    #[inline(never)]
    fn send_intercepted(&self, mut record: Record) -> SendFuture<DeliveryFuture> {
        let hook = self.intercept(&mut record);
        self.enqueue(record, None, hook, expect_future)
    }

    /// The send path after the interceptors' `on_send` (if any): queues the
    /// record with `callback`, at once or as the returned future is awaited, and
    /// hands the caller `finish` of what the batch returned.
    #[inline(always)]
    fn enqueue<H: Hook, T: Send + 'static>(
        &self,
        record: Record,
        callback: Option<Callback>,
        mut hook: H,
        finish: fn(Option<DeliveryFuture>) -> Result<T>,
    ) -> SendFuture<T> {
        match self.fast(record, callback, &mut hook) {
            Fast::Done(r) => SendFuture::ready(r.and_then(finish).map_err(|e| self.refused(e, hook))),
            Fast::Slow(pending, _) => {
                let p = self.clone();
                hook.waiting(&pending.record);
                SendFuture::waiting(async move {
                    let r = p.send_slow(pending, &mut hook).await;
                    r.and_then(finish).map_err(|e| p.refused(e, hook))
                })
            }
        }
    }

    /// Runs the interceptors' `on_send`, if there are any.
    #[inline]
    fn intercept(&self, record: &mut Record) -> WithInterceptors {
        WithInterceptors {
            states: self.handle.interceptors.as_ref().map(|chain| chain.on_send(record)),
            future: None,
        }
    }

    /// A record was refused: its interceptors see the error (unless it reached
    /// its batch, whose callback tells them), and in a transaction, that
    /// transaction can no longer commit (as Java's `KafkaProducer.send`).
    fn refused<H: Hook>(&self, e: Error, hook: H) -> Error {
        hook.refuse(&e);
        if let Some(t) = &self.shared().txn {
            t.record_refused(&e);
        }
        e
    }

    /// The one enqueue path's first step, taken by nearly every record: metadata
    /// known, room in the buffer, no clock read, no reference counting, nothing
    /// awaited. What cannot be done without waiting comes back as [`Fast::Slow`],
    /// saying what it waits for: `send` then waits ([`send_slow`](Self::send_slow)),
    /// `try_send` fails.
    fn fast<H: Hook>(&self, record: Record, callback: Option<Callback>, hook: &mut H) -> Fast {
        let shared = self.shared();
        let (entry, size, fields) = match self.admit(&record) {
            Ok(v) => v,
            Err(e) => return Fast::Done(Err(e)),
        };
        let meta = entry.meta.load();
        let Some(meta) = meta.as_ref() else {
            return Fast::Slow(Pending { record, callback }, Blocked::Metadata);
        };
        let queue = match self.place(&entry, meta, &record, size) {
            Ok(q) => q,
            Err(e) => return Fast::Done(Err(e)),
        };
        // `size` is at most max.request.size, an i32.
        let permits = u32::try_from(size).unwrap_or(u32::MAX);
        match shared.accumulator.memory.try_acquire_many(permits) {
            Ok(p) => {
                p.forget();
                Fast::Done(self.append(&entry, queue, &record, size, fields, callback, hook))
            }
            Err(_) => {
                let blocked = Blocked::Memory { size, partition: queue.partition };
                Fast::Slow(Pending { record, callback }, blocked)
            }
        }
    }

    /// The path of a record that must wait for metadata or buffer room.
    async fn send_slow<H: Hook>(&self, pending: Pending, hook: &mut H) -> Result<Option<DeliveryFuture>> {
        let Pending { record, callback } = pending;
        let shared = self.shared();
        let (entry, size, fields) = self.admit(&record)?;
        let permits = u32::try_from(size).unwrap_or(u32::MAX);
        // Waiting for metadata and for room share one max.block.ms.
        let deadline = Instant::now() + shared.config.max_block;
        let meta = match entry.meta.load_full() {
            Some(m) => m,
            None => self.wait_for_metadata(&entry, deadline).await?,
        };
        let queue = self.place(&entry, &meta, &record, size)?;
        let memory = &shared.accumulator.memory;
        let waiting = std::time::Instant::now();
        let acquired = tokio::time::timeout_at(deadline, memory.acquire_many(permits)).await;
        shared.accumulator.deliveries().recorder.buffer_wait(waiting.elapsed());
        match acquired {
            Ok(Ok(p)) => p.forget(),
            Ok(Err(_)) => {
                return Err(Error::new(ErrorKind::Closed).for_partition(&entry.name, Some(queue.partition)));
            }
            Err(_) => {
                return Err(Error::timeout(TimeoutKind::BufferMemory, shared.config.max_block)
                    .for_partition(&entry.name, Some(queue.partition))
                    .written(false));
            }
        }
        self.append(&entry, queue, &record, size, fields, callback, hook)
    }

    /// Queues a record without waiting: like [`send`](Self::send), but when the
    /// producer's buffer is full it fails at once with [`ErrorKind::BufferFull`],
    /// and when the topic's metadata is not known yet with a metadata timeout (and
    /// asks for it, so a later try may succeed).
    pub fn try_send(&self, record: Record) -> Result<DeliveryFuture> {
        if self.handle.interceptors.is_some() {
            return self.try_send_intercepted(record);
        }
        self.try_send_with(record, Plain)
    }

    /// [`try_send`](Self::try_send) with interceptors: kept out of the fast path.
    #[inline(never)]
    fn try_send_intercepted(&self, mut record: Record) -> Result<DeliveryFuture> {
        let hook = self.intercept(&mut record);
        self.try_send_with(record, hook)
    }

    #[inline(always)]
    fn try_send_with<H: Hook>(&self, record: Record, mut hook: H) -> Result<DeliveryFuture> {
        let shared = self.shared();
        match self.fast(record, None, &mut hook) {
            Fast::Done(r) => r.and_then(expect_future).map_err(|e| self.refused(e, hook)),
            Fast::Slow(Pending { record, .. }, Blocked::Metadata) => {
                shared.wake.notify_one();
                let (entry, _) = shared.accumulator.topic(record.topic());
                if let Some((_, err)) = entry.verdict.lock().as_ref() {
                    return Err(self.refused(err.clone(), hook));
                }
                let e =
                    Error::timeout(TimeoutKind::Metadata, Duration::ZERO).for_partition(&entry.name, None);
                Err(self.refused(e, hook))
            }
            Fast::Slow(Pending { record, .. }, Blocked::Memory { size, partition }) => {
                let e =
                    Error::new(ErrorKind::BufferFull { needed: size, capacity: shared.config.buffer_memory })
                        .for_partition(&Arc::from(record.topic()), Some(partition))
                        .written(false);
                Err(self.refused(e, hook))
            }
        }
    }

    /// Sends a record and waits until it is written (or fails): `send` and then its
    /// [`DeliveryFuture`], for callers that send one record at a time.
    pub async fn send_and_wait(&self, record: Record) -> Result<RecordMetadata> {
        self.send(record).await?.await
    }

    /// A handle on `topic` for [`Record::to`]: the topic is looked up once, here,
    /// instead of by name for every record.
    pub fn topic(&self, topic: &str) -> Topic {
        let shared = self.shared();
        let (entry, created) = shared.accumulator.topic(topic);
        if created {
            shared.wake.notify_one();
        }
        Topic { entry, owner: Arc::as_ptr(&self.handle.shared) as usize }
    }

    /// Queues a record and calls `callback` with its outcome, instead of returning a
    /// future: the fastest way to send many records, as Java's and librdkafka's
    /// delivery callbacks.
    ///
    /// Waits like [`send`](Self::send). When this returns an error, the record was
    /// refused and `callback` is never called; otherwise `callback` is called
    /// exactly once, after the record's batch is resolved, on the producer's sender
    /// task, in the order batches resolved, at a point where the producer holds no
    /// lock of its own (as Java's callbacks run on its I/O thread). A callback may
    /// send again (a `SendFuture` that must wait can be handed to `tokio::spawn`)
    /// and spawn `flush` or `close`; waiting for them inside the callback fails at
    /// once with [`ErrorKind::InCallback`]. Keep callbacks short: while one runs the
    /// sender does not send. A callback that panics is caught and logged.
    /// [`flush`](Self::flush) and [`close`](Self::close) return once the callbacks of
    /// the records they waited for have run.
    pub fn send_with_callback<F>(&self, record: Record, callback: F) -> SendFuture<()>
    where
        F: FnOnce(Result<RecordMetadata>) + Send + 'static,
    {
        if self.handle.interceptors.is_some() {
            return self.send_with_callback_intercepted(record, Callback::boxed(callback));
        }
        self.enqueue(record, Some(Callback::boxed(callback)), Plain, queued)
    }

    /// Queues a record whose outcome goes to the producer's delivery handler
    /// ([`ProducerBuilder::on_delivery`]) with `tag`, as librdkafka's delivery
    /// report callback with a message's opaque: nothing is allocated per record, so
    /// this is the cheapest way to send many records and still hear of each.
    ///
    /// Waits like [`send`](Self::send). When this returns an error the record was
    /// refused and the handler never hears of it; otherwise the handler is called
    /// exactly once with `tag` and the record's outcome, where and as
    /// [`send_with_callback`](Self::send_with_callback)'s callbacks are. A producer
    /// built without a handler refuses tagged records with [`ErrorKind::Config`].
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), herald::Error> {
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// let failed = Arc::new(AtomicU64::new(0));
    /// let seen = failed.clone();
    /// let producer = herald::Producer::builder()
    ///     .bootstrap_servers("127.0.0.1:9092")
    ///     .on_delivery(move |line, result| {
    ///         if let Err(e) = result {
    ///             eprintln!("line {line}: {e}");
    ///             seen.fetch_add(1, Ordering::Relaxed);
    ///         }
    ///     })
    ///     .build()?;
    /// for (line, text) in ["a", "b", "c"].into_iter().enumerate() {
    ///     producer.send_tagged(herald::Record::new("lines").value(text), line as u64).await?;
    /// }
    /// producer.flush().await?;
    /// # Ok(()) }
    /// ```
    pub fn send_tagged(&self, record: Record, tag: u64) -> SendFuture<()> {
        if self.shared().accumulator.deliveries().handler().is_none() {
            let e = Error::config(
                "on_delivery",
                "send_tagged needs a delivery handler: set one with ProducerBuilder::on_delivery",
            )
            .for_partition(&Arc::from(record.topic()), record.partition);
            return SendFuture::ready(Err(self.refused(e, Plain)));
        }
        if self.handle.interceptors.is_some() {
            return self.send_with_callback_intercepted(record, Callback::Tagged(tag));
        }
        self.enqueue(record, Some(Callback::Tagged(tag)), Plain, queued)
    }

    /// [`send_with_callback`](Self::send_with_callback) with interceptors: kept
    /// out of the fast path.
    #[inline(never)]
    fn send_with_callback_intercepted(&self, mut record: Record, callback: Callback) -> SendFuture<()> {
        let hook = self.intercept(&mut record);
        self.enqueue(record, Some(callback), hook, queued)
    }

    /// The checks every record passes before anything waits: the producer is open,
    /// and the record fits `max.request.size` and `buffer.memory`. Returns the
    /// topic's entry and the bytes the record is charged.
    /// Checks the record against the producer's limits and finds its topic's entry:
    /// borrowed from the record's [`Topic`] handle (no reference count touched), or
    /// looked up by name.
    fn admit<'r>(&self, record: &'r Record) -> Result<(Cow<'r, Arc<TopicEntry>>, usize, usize)> {
        let shared = self.shared();
        let cfg = &shared.config;
        if shared.closing.load(Ordering::Acquire) {
            return Err(
                Error::new(ErrorKind::Closed).for_partition(&Arc::from(record.topic()), record.partition)
            );
        }
        if let Some(t) = &shared.txn {
            t.check_send().map_err(|e| e.for_partition(&Arc::from(record.topic()), record.partition))?;
        }
        let fields = fields_len(record.key.as_deref(), record.value.as_deref(), &record.headers);
        let size = BATCH_HEADER_LEN + record_size_upper_bound_of(fields);
        for (max, limit) in [(cfg.max_request_size, "max.request.size"), (cfg.buffer_memory, "buffer.memory")]
        {
            if size > max {
                return Err(Error::new(ErrorKind::RecordTooLarge { size, max, limit })
                    .for_partition(&Arc::from(record.topic()), record.partition));
            }
        }
        if let RecordTopic::Handle(t) = &record.topic {
            if t.owner == Arc::as_ptr(&self.handle.shared) as usize {
                return Ok((Cow::Borrowed(&t.entry), size, fields));
            }
        }
        let (entry, created) = shared.accumulator.topic(record.topic());
        if created {
            shared.wake.notify_one();
        }
        Ok((Cow::Owned(entry), size, fields))
    }

    async fn wait_for_metadata(&self, entry: &TopicEntry, deadline: Instant) -> Result<Arc<TopicMeta>> {
        let shared = self.shared();
        let max_block = shared.config.max_block;
        {
            // A verdict older than the backoff is stale: ask again (the topic may
            // have been created since).
            let mut v = entry.verdict.lock();
            if let Some((at, err)) = v.as_ref() {
                if at.elapsed() < shared.config.retry_backoff_max {
                    return Err(err.clone());
                }
                *v = None;
                entry.unknown_answers.store(0, Ordering::Relaxed);
                shared.wake.notify_one();
            }
        }
        loop {
            let changed = entry.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(m) = entry.meta.load_full() {
                return Ok(m);
            }
            if let Some((_, err)) = entry.verdict.lock().as_ref() {
                return Err(err.clone());
            }
            if shared.closing.load(Ordering::Acquire) || shared.accumulator.is_closed() {
                return Err(Error::new(ErrorKind::Closed).for_partition(&entry.name, None));
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                let mut e = Error::timeout(TimeoutKind::Metadata, max_block).for_partition(&entry.name, None);
                if let Some(cause) = shared.last_metadata_error.lock().clone() {
                    e = e.caused_by(cause);
                }
                return Err(e);
            }
        }
    }

    /// The partition's queue for the record: its own partition, or the
    /// partitioner's choice.
    fn place<'m>(
        &self,
        entry: &TopicEntry,
        meta: &'m TopicMeta,
        record: &Record,
        size: usize,
    ) -> Result<&'m Arc<accumulator::PartitionQueue>> {
        let count = meta.partitions.len() as i32;
        let partition = match record.partition {
            Some(p) => p,
            None => self.choose_partition(entry, meta, record, size),
        };
        usize::try_from(partition).ok().and_then(|p| meta.partitions.get(p)).ok_or_else(|| {
            let who = if record.partition.is_some() { "the record names" } else { "the partitioner chose" };
            Error::new(ErrorKind::InvalidRecord {
                reason: format!("{who} partition {partition}, but the topic has partitions 0..{count}"),
            })
            .for_partition(&entry.name, Some(partition))
        })
    }

    /// Encodes the record into its queue (its `size` bytes of buffer already taken).
    /// A record with interceptors gets a callback that tells them its outcome.
    #[allow(clippy::too_many_arguments)]
    fn append<H: Hook>(
        &self,
        entry: &TopicEntry,
        queue: &accumulator::PartitionQueue,
        record: &Record,
        size: usize,
        fields: usize,
        callback: Option<Callback>,
        hook: &mut H,
    ) -> Result<Option<DeliveryFuture>> {
        let shared = self.shared();
        let timestamp = record.timestamp.unwrap_or_else(crate::clock::now_ms);
        let callback = hook.attach(self, queue, timestamp, callback);
        let rec = accumulator::RecordRef {
            timestamp,
            key: record.key.as_deref(),
            value: record.value.as_deref(),
            headers: &record.headers,
            fields,
        };
        let appended = shared.accumulator.append(queue, &rec, size, callback)?;
        if appended.wake {
            shared.wake.notify_one();
        }
        if appended.full && record.partition.is_none() {
            entry.partitioner.batch_filled(queue.partition);
        }
        Ok(hook.future(appended.future))
    }

    /// For [`append`](Self::append), a record with interceptors: its outcome
    /// reaches them through a delivery callback (run where callbacks run), then
    /// reaches the caller — the caller's callback, or a future (returned here)
    /// resolved by that callback.
    #[inline(never)]
    fn intercepted_callback(
        &self,
        queue: &accumulator::PartitionQueue,
        timestamp: i64,
        callback: Option<Callback>,
        mut ic: Intercepted,
    ) -> (Option<Callback>, Option<DeliveryFuture>) {
        ic.queued(queue.topic.clone(), queue.partition);
        let deliveries = self.shared().accumulator.deliveries().clone();
        match callback {
            Some(user) => {
                let wrapped = Callback::boxed(move |r| {
                    ic.complete(&r);
                    user.call(deliveries.handler(), r)
                });
                (Some(wrapped), None)
            }
            None => {
                let (future, completion) =
                    DeliveryFuture::deferred(queue.topic.clone(), queue.partition, timestamp, deliveries);
                ic.resolves(completion);
                (Some(Callback::boxed(move |r| ic.complete(&r))), Some(future))
            }
        }
    }

    fn choose_partition(&self, entry: &TopicEntry, meta: &TopicMeta, record: &Record, size: usize) -> i32 {
        let shared = self.shared();
        let cfg = &shared.config;
        let partitions = Partitions::new(meta.partitions.len() as i32, &meta.available);
        if let Some(p) = &shared.partitioner {
            return custom_partition(p.as_ref(), &entry.name, record, &partitions);
        }
        let key = match cfg.builtin_partitioner {
            BuiltInPartitioner::Default if !cfg.partitioner_ignore_keys => record.key.as_deref(),
            _ => None,
        };
        if let Some(k) = key {
            return partition_for_key(k, partitions.count());
        }
        let sticky = match cfg.builtin_partitioner {
            BuiltInPartitioner::RoundRobin => false,
            BuiltInPartitioner::UniformSticky => true,
            BuiltInPartitioner::Default => cfg.null_key_partitioning == NullKeyPartitioning::UniformSticky,
        };
        if sticky {
            let in_batch = size - BATCH_HEADER_LEN;
            entry.partitioner.next_sticky(&partitions, in_batch, cfg.batch_size.max(1), |p| {
                meta.partitions.get(p as usize).map_or(1.0, |q| q.estimated_ratio())
            })
        } else {
            entry.partitioner.next_round_robin(&partitions)
        }
    }

    /// Sends every queued record now, without waiting for `linger.ms`, and waits
    /// until each record queued before this call has been written or has failed,
    /// and its delivery callback (if any) has run. Records' own outcomes are
    /// reported by their futures. From inside a delivery callback it fails at once
    /// with [`ErrorKind::InCallback`]: the callback runs on the task flush waits
    /// for (spawn it instead, as Java's producer refuses `flush` in a callback).
    pub async fn flush(&self) -> Result<()> {
        if Deliveries::in_callback() {
            return Err(Error::new(ErrorKind::InCallback { call: "flush" }));
        }
        let (tx, rx) = oneshot::channel();
        if self.handle.commands.send(Command::Flush(tx)).is_err() {
            return Ok(()); // The sender has stopped: nothing is pending.
        }
        let Ok(batches) = rx.await else { return Ok(()) };
        for b in batches {
            b.wait().await;
        }
        // Then the callbacks of those batches: the sender answers once it has run
        // every callback queued before it.
        let (tx, rx) = oneshot::channel();
        if self.handle.commands.send(Command::CallbacksRun(tx)).is_ok() {
            let _ = rx.await;
        }
        Ok(())
    }

    /// Fails every record queued and not yet sent, at once, with
    /// [`ErrorKind::Purged`] (not written: [`Error::may_have_been_written`] is
    /// false), and returns how many records that was: librdkafka's
    /// `rd_kafka_purge` of its queues, franz-go's `AbortBufferedRecords`. Records
    /// in flight, and those waiting to be retried after an attempt (the broker
    /// may have written them), finish as usual; a `SendFuture` still waiting for
    /// metadata or buffer room queues its record later. The producer stays open.
    /// In a transaction, the transaction can then only abort. From inside a
    /// delivery callback it fails at once with [`ErrorKind::InCallback`].
    ///
    /// ```no_run
    /// # async fn demo(producer: herald::Producer) -> Result<(), herald::Error> {
    /// let purged = producer.purge().await?;
    /// eprintln!("{purged} records dropped unsent");
    /// # Ok(()) }
    /// ```
    pub async fn purge(&self) -> Result<u64> {
        if Deliveries::in_callback() {
            return Err(Error::new(ErrorKind::InCallback { call: "purge" }));
        }
        let (tx, rx) = oneshot::channel();
        if self.handle.commands.send(Command::Purge(tx)).is_err() {
            return Ok(0); // The sender has stopped: nothing is queued.
        }
        Ok(rx.await.unwrap_or(0))
    }

    /// The partitions of `topic` as the cluster's metadata last described them
    /// (Java's `partitionsFor`): number, leader, replicas and in-sync replicas.
    /// Waits for the topic's metadata, within `max.block.ms`, when the producer
    /// has not used the topic yet; fails with [`ErrorKind::UnknownTopic`] when it
    /// does not exist (and is not auto-created).
    ///
    /// ```no_run
    /// # async fn demo(producer: herald::Producer) -> Result<(), herald::Error> {
    /// let partitions = producer.partitions_for("orders").await?;
    /// println!("orders has {} partitions", partitions.len());
    /// # Ok(()) }
    /// ```
    pub async fn partitions_for(&self, topic: &str) -> Result<Vec<PartitionDescription>> {
        let shared = self.shared();
        if shared.closing.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::Closed).for_partition(&Arc::from(topic), None));
        }
        let (entry, created) = shared.accumulator.topic(topic);
        if created {
            shared.wake.notify_one();
        }
        let meta = match entry.meta.load_full() {
            Some(m) => m,
            // The sender, which would fetch it, is running this callback.
            None if Deliveries::in_callback() => {
                return Err(Error::new(ErrorKind::InCallback { call: "partitions_for" }));
            }
            None => self.wait_for_metadata(&entry, Instant::now() + shared.config.max_block).await?,
        };
        Ok(meta.described.to_vec())
    }

    /// Stops accepting records, delivers the ones queued, and closes the
    /// connections. Records still pending after `timeout` fail with a timeout
    /// error, and so does this call; otherwise it returns `Ok` once every record
    /// has its outcome and every delivery callback has run. Later sends fail with
    /// [`ErrorKind::Closed`]. From inside a delivery callback it fails at once with
    /// [`ErrorKind::InCallback`] (spawn it instead).
    pub async fn close(&self, timeout: Duration) -> Result<()> {
        if Deliveries::in_callback() {
            return Err(Error::new(ErrorKind::InCallback { call: "close" }));
        }
        let shared = self.shared();
        shared.closing.store(true, Ordering::Release);
        for t in shared.accumulator.topics() {
            t.changed.notify_waiters();
        }
        let (tx, rx) = oneshot::channel();
        let deadline = Instant::now() + timeout;
        if self.handle.commands.send(Command::Close { deadline, reply: tx }).is_err() {
            return Ok(());
        }
        rx.await.unwrap_or(Ok(()))
    }
}

/// What a record carries through the send path beside itself: nothing on the
/// plain path ([`Plain`], a zero-sized type, so that path compiles to the code it
/// had before interceptors existed), its interceptors' states otherwise. The send
/// path is generic over it rather than testing an `Option` on every record.
trait Hook: Send + 'static {
    /// The record must wait (for metadata or buffer room): from now on, dropping
    /// its `SendFuture` drops it unsent.
    fn waiting(&mut self, record: &Record);
    /// The record is being appended to `queue`'s batch: the callback the batch
    /// keeps for it.
    fn attach(
        &mut self,
        producer: &Producer,
        queue: &accumulator::PartitionQueue,
        timestamp: i64,
        callback: Option<Callback>,
    ) -> Option<Callback>;
    /// The future to hand the caller, given the batch's (`batch`).
    fn future(&mut self, batch: Option<DeliveryFuture>) -> Option<DeliveryFuture>;
    /// The record was refused before reaching a batch.
    fn refuse(self, err: &Error);
}

/// The send path without interceptors.
struct Plain;

impl Hook for Plain {
    #[inline(always)]
    fn waiting(&mut self, _: &Record) {}
    #[inline(always)]
    fn attach(
        &mut self,
        _: &Producer,
        _: &accumulator::PartitionQueue,
        _: i64,
        callback: Option<Callback>,
    ) -> Option<Callback> {
        callback
    }
    #[inline(always)]
    fn future(&mut self, batch: Option<DeliveryFuture>) -> Option<DeliveryFuture> {
        batch
    }
    #[inline(always)]
    fn refuse(self, _: &Error) {}
}

/// The send path with interceptors.
struct WithInterceptors {
    /// The interceptors' states, until the record reaches its batch (whose
    /// callback then tells them its outcome).
    states: Option<Intercepted>,
    /// The caller's future when the caller gave no callback: resolved by the
    /// callback that runs the interceptors first.
    future: Option<DeliveryFuture>,
}

impl Hook for WithInterceptors {
    fn waiting(&mut self, record: &Record) {
        if let Some(ic) = &mut self.states {
            ic.waiting(record);
        }
    }
    fn attach(
        &mut self,
        producer: &Producer,
        queue: &accumulator::PartitionQueue,
        timestamp: i64,
        callback: Option<Callback>,
    ) -> Option<Callback> {
        let Some(ic) = self.states.take() else { return callback };
        let (callback, future) = producer.intercepted_callback(queue, timestamp, callback, ic);
        self.future = future;
        callback
    }
    fn future(&mut self, batch: Option<DeliveryFuture>) -> Option<DeliveryFuture> {
        self.future.take().or(batch)
    }
    fn refuse(self, err: &Error) {
        if let Some(ic) = self.states {
            ic.refuse(err);
        }
    }
}

/// A custom partitioner's choice. User code: a panic in it refuses this record (as
/// an out-of-range partition, -1) and leaves the producer working.
#[inline(never)]
fn custom_partition(p: &dyn Partitioner, topic: &str, record: &Record, partitions: &Partitions<'_>) -> i32 {
    let chosen = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.partition(topic, record.key.as_deref(), record.value.as_deref(), partitions)
    }));
    chosen.unwrap_or_else(|_| {
        tracing::error!(topic, "the custom partitioner panicked; the record is refused");
        -1
    })
}

impl Drop for Handle {
    fn drop(&mut self) {
        // The sender sees its command channel close and delivers what is queued.
        tracing::trace!(client_id = %self.shared.config.client_id, "last producer handle dropped");
    }
}

/// Builds a [`Producer`]: typed setters, or Kafka property names through
/// [`set`](Self::set). A setter that fails keeps its error for
/// [`build`](Self::build) to return.
#[must_use = "a builder does nothing until build() is called"]
pub struct ProducerBuilder {
    config: ProducerConfig,
    error: Option<Error>,
    partitioner: Option<Arc<dyn Partitioner>>,
    interceptors: Vec<crate::interceptor::Factory>,
    on_delivery: Option<delivery::Handler>,
}

impl fmt::Debug for ProducerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProducerBuilder")
            .field("config", &self.config)
            .field("interceptors", &self.interceptors.len())
            .field("on_delivery", &self.on_delivery.is_some())
            .finish()
    }
}

impl Default for ProducerBuilder {
    fn default() -> Self {
        ProducerBuilder::new()
    }
}

impl ProducerBuilder {
    /// A builder with Kafka's default settings.
    pub fn new() -> ProducerBuilder {
        ProducerBuilder {
            config: ProducerConfig::default(),
            error: None,
            partitioner: None,
            interceptors: Vec::new(),
            on_delivery: None,
        }
    }

    /// Sets a setting by its Kafka property name, e.g. `("linger.ms", "20")`. Java's
    /// names and librdkafka's aliases are accepted; an unknown name or a malformed
    /// value makes [`build`](Self::build) fail naming the property.
    pub fn set(mut self, name: &str, value: &str) -> Self {
        if self.error.is_none() {
            if let Err(e) = self.config.set(name, value) {
                self.error = Some(e);
            }
        }
        self
    }

    /// Sets many properties, e.g. parsed from a Java `.properties` file.
    pub fn properties<'a>(mut self, props: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        for (k, v) in props {
            self = self.set(k, v);
        }
        self
    }

    /// Sets every property of a Java `.properties` file — a Java producer's
    /// `producer.properties`, say — in file order, as [`set`](Self::set) would
    /// (see [`PropertiesFile`](crate::properties::PropertiesFile) for the syntax).
    /// Setters and `set` called after this override the file. An unreadable file,
    /// a malformed line or a refused property makes [`build`](Self::build) fail,
    /// naming the property, the file and the line; values are never shown.
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), herald::Error> {
    /// # let _rt = tokio::runtime::Runtime::new().unwrap(); let _g = _rt.enter();
    /// let producer = herald::Producer::builder()
    ///     .properties_file("producer.properties")
    ///     .set("client.id", "herald-demo") // overrides the file
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn properties_file(mut self, path: impl AsRef<std::path::Path>) -> Self {
        if self.error.is_none() {
            let file = crate::properties::PropertiesFile::read(path);
            if let Err(e) = file.and_then(|f| self.config.set_properties_file(&f)) {
                self.error = Some(e);
            }
        }
        self
    }

    /// The brokers to learn the cluster from, as `host:port[,host:port…]`.
    /// `bootstrap.servers`; required, no default.
    pub fn bootstrap_servers(self, servers: impl AsRef<str>) -> Self {
        self.set("bootstrap.servers", servers.as_ref())
    }

    /// The id brokers log for this client. `client.id`; default `herald-producer-N`.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.config.client_id = id.into();
        self
    }

    /// How many replicas must have a record before it counts as written.
    /// `acks`; default [`Acks::All`].
    pub fn acks(mut self, acks: Acks) -> Self {
        self.config.acks = acks;
        self
    }

    /// How long a batch may wait for more records before it is sent. `linger.ms`;
    /// default 5 ms (Kafka 4.0's default).
    pub fn linger(mut self, linger: Duration) -> Self {
        self.config.linger = linger;
        self
    }

    /// The size in bytes at which a partition's batch is sent without waiting for
    /// `linger.ms`. `batch.size`; default 16384.
    pub fn batch_size(mut self, bytes: usize) -> Self {
        self.config.batch_size = bytes;
        self
    }

    /// The largest request, and so the largest record, the producer sends.
    /// `max.request.size`; default 1048576.
    pub fn max_request_size(mut self, bytes: usize) -> Self {
        self.config.max_request_size = bytes;
        self
    }

    /// How long to wait for a broker's answer before the connection is closed and the
    /// request retried. `request.timeout.ms`; default 30 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// The longest a record may take from `send` to its outcome, retries included.
    /// `delivery.timeout.ms`; default 120 s; must be at least linger + request timeout.
    pub fn delivery_timeout(mut self, timeout: Duration) -> Self {
        self.config.delivery_timeout = timeout;
        self
    }

    /// How many times a batch is retried after a retriable error. `retries`;
    /// default 2147483647 (retries are bounded by `delivery.timeout.ms`).
    pub fn retries(mut self, retries: u32) -> Self {
        self.config.retries = retries;
        self
    }

    /// The first wait before retrying a failed batch; each further retry waits twice
    /// as long, up to `retry.backoff.max.ms`. `retry.backoff.ms`; default 100 ms.
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.config.retry_backoff = backoff;
        self
    }

    /// The longest wait between retries. `retry.backoff.max.ms`; default 1000 ms.
    pub fn retry_backoff_max(mut self, backoff: Duration) -> Self {
        self.config.retry_backoff_max = backoff;
        self
    }

    /// How long `send` waits for a topic's metadata. `max.block.ms`; default 60 s.
    pub fn max_block(mut self, timeout: Duration) -> Self {
        self.config.max_block = timeout;
        self
    }

    /// How often metadata is refreshed even without errors. `metadata.max.age.ms`;
    /// default 300 s.
    pub fn metadata_max_age(mut self, age: Duration) -> Self {
        self.config.metadata_max_age = age;
        self
    }

    /// Requests sent to one broker before waiting for answers.
    /// `max.in.flight.requests.per.connection`; default 5.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.config.max_in_flight = n;
        self
    }

    /// Whether the producer is idempotent: retries never duplicate or reorder records
    /// (KIP-98). `enable.idempotence`; default true, as in Java. Turning it on
    /// explicitly makes acks other than all, retries 0, or more than 5 requests in
    /// flight an error.
    pub fn idempotence(mut self, on: bool) -> Self {
        self.config.enable_idempotence = on;
        self.config.idempotence_explicit = true;
        self
    }

    /// The most bytes the producer holds for records not yet resolved; beyond it
    /// `send` waits (up to `max.block.ms`) and `try_send` fails. `buffer.memory`;
    /// default 32 MiB.
    pub fn buffer_memory(mut self, bytes: usize) -> Self {
        self.config.buffer_memory = bytes;
        self
    }

    /// Where the built-in partitioner sends records without a key.
    /// `herald.null.key.partitioning`; default [`NullKeyPartitioning::RoundRobin`].
    pub fn null_key_partitioning(mut self, p: NullKeyPartitioning) -> Self {
        self.config.null_key_partitioning = p;
        self
    }

    /// How connections are secured. `security.protocol`; default PLAINTEXT.
    pub fn security_protocol(mut self, protocol: SecurityProtocol) -> Self {
        self.config.security.protocol = protocol;
        self
    }

    /// The SASL mechanism (with SASL_PLAINTEXT or SASL_SSL). `sasl.mechanism`.
    pub fn sasl_mechanism(mut self, mechanism: SaslMechanism) -> Self {
        self.config.security.sasl.mechanism = Some(mechanism);
        self
    }

    /// The user and password for PLAIN and SCRAM (what `sasl.jaas.config`'s
    /// `username` and `password` set).
    pub fn sasl_credentials(mut self, username: impl Into<String>, password: impl Into<Secret>) -> Self {
        self.config.security.sasl.username = Some(username.into());
        self.config.security.sasl.password = Some(password.into());
        self
    }

    /// The OAUTHBEARER token callback: an async function returning a token and its
    /// expiry (or an error message). Called when a connection authenticates and
    /// the cached token is past 80% of its life, and at every re-authentication
    /// (KIP-368). Sets `sasl.mechanism` to OAUTHBEARER. Takes precedence over the
    /// OIDC login (`sasl.oauthbearer.token.endpoint.url`, KIP-768), which needs no
    /// code: see [`OidcConfig`](crate::OidcConfig).
    pub fn oauthbearer_token_provider<F, Fut>(mut self, callback: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<OAuthBearerToken, String>> + Send + 'static,
    {
        self.config.security.sasl.mechanism = Some(SaslMechanism::OAuthBearer);
        self.config.security.sasl.token_provider = Some(TokenProvider::new(callback));
        self
    }

    /// The CA certificates (PEM file) brokers' certificates are checked against.
    /// `ssl.truststore.location` with `ssl.truststore.type=PEM`; default: Mozilla's
    /// root set.
    pub fn ssl_ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config.security.tls.ca = Some(Pem::File(path.into()));
        self
    }

    /// A client certificate chain and its private key (PEM files), for brokers that
    /// require one (mTLS). librdkafka's `ssl.certificate.location` and
    /// `ssl.key.location`.
    pub fn ssl_client_cert_files(
        mut self,
        chain: impl Into<std::path::PathBuf>,
        key: impl Into<std::path::PathBuf>,
    ) -> Self {
        self.config.security.tls.client_cert = Some(Pem::File(chain.into()));
        self.config.security.tls.client_key = Some(Pem::File(key.into()));
        self
    }

    /// Whether the broker's certificate must name the host connected to.
    /// `ssl.endpoint.identification.algorithm` (`https`, or empty for off); default
    /// on. Off, anyone holding a certificate from your CA can pose as a broker.
    pub fn ssl_hostname_verification(mut self, on: bool) -> Self {
        self.config.security.tls.verify_hostname = on;
        self
    }

    /// Replaces every security setting at once.
    pub fn security(mut self, security: SecurityConfig) -> Self {
        self.config.security = security;
        self
    }

    /// Plugs in your own partitioner (Java's `partitioner.class`). A partition set
    /// on a record still wins. Default: the built-in one.
    pub fn partitioner(mut self, p: impl Partitioner) -> Self {
        self.partitioner = Some(Arc::new(p));
        self
    }

    /// Hands `callback` a JSON document of the producer's statistics every
    /// `interval` (librdkafka's `statistics.interval.ms` and `stats_cb`; zero turns
    /// it off): librdkafka's field names where herald's numbers mean the same, and
    /// a `herald` object with every metric of [`Producer::metrics`] under Java's
    /// names (the fields: `docs/statistics.md`). The callback runs on a tokio task
    /// of its own, where herald holds no lock; keep it short (it runs on a runtime
    /// worker). A panic in it is caught and logged. It stops once the producer is
    /// closed.
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), herald::Error> {
    /// let producer = herald::Producer::builder()
    ///     .bootstrap_servers("127.0.0.1:9092")
    ///     .statistics(std::time::Duration::from_secs(60), |json| eprintln!("{json}"))
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn statistics(
        mut self,
        interval: Duration,
        callback: impl Fn(String) + Send + Sync + 'static,
    ) -> Self {
        self.config.statistics_interval = interval;
        self.config.statistics_callback = Some(crate::config::StatisticsCallback(Arc::new(callback)));
        self
    }

    /// Adds a producer interceptor (Java's `interceptor.classes`): its
    /// [`on_send`](ProducerInterceptor::on_send) sees every record before it is
    /// partitioned and encoded, its
    /// [`on_acknowledgement`](ProducerInterceptor::on_acknowledgement) every
    /// record's outcome (see [`crate::interceptor`] for where each runs).
    /// Interceptors run in the order they were added.
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), herald::Error> {
    /// # let _rt = tokio::runtime::Runtime::new().unwrap(); let _g = _rt.enter();
    /// use herald::{Record, interceptor::ProducerInterceptor};
    ///
    /// struct Tenant(&'static str);
    /// impl ProducerInterceptor for Tenant {
    ///     type State = ();
    ///     fn on_send(&self, record: &mut Record) {
    ///         record.headers_mut().push(herald::Header::new("tenant", self.0));
    ///     }
    /// }
    ///
    /// let producer = herald::Producer::builder()
    ///     .bootstrap_servers("127.0.0.1:9092")
    ///     .interceptor(Tenant("acme"))
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn interceptor(mut self, interceptor: impl ProducerInterceptor) -> Self {
        self.interceptors.push(Box::new(move |_| Interceptor::new(interceptor)));
        self
    }

    /// Sets the producer's delivery handler: it hears the outcome of every record
    /// sent with [`Producer::send_tagged`], with that record's tag (a line number,
    /// an index into the caller's own table). It runs where
    /// [`send_with_callback`](Producer::send_with_callback)'s callbacks run, under
    /// the same rules: on the sender task, with no herald lock held, a panic
    /// caught and logged. Records sent otherwise do not reach it.
    pub fn on_delivery(
        mut self,
        handler: impl Fn(u64, Result<RecordMetadata>) + Send + Sync + 'static,
    ) -> Self {
        self.on_delivery = Some(Arc::new(handler));
        self
    }

    /// Adds an interceptor built from the producer's final settings (its
    /// `client.id`, say) when the producer is built.
    #[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
    pub(crate) fn interceptor_with<I: ProducerInterceptor>(
        mut self,
        make: impl FnOnce(&ProducerConfig) -> I + Send + 'static,
    ) -> Self {
        self.interceptors.push(Box::new(move |config| Interceptor::new(make(config))));
        self
    }

    /// Traces every record with OpenTelemetry (feature `opentelemetry`): adds a
    /// [`TracingInterceptor`](crate::otel::TracingInterceptor) over the global
    /// tracer provider as installed when the producer is built, with this
    /// producer's `client.id`. Each record gets a PRODUCER span, child of the
    /// sender's current context, and a W3C `traceparent` header; see
    /// [`crate::otel`].
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), herald::Error> {
    /// # let _rt = tokio::runtime::Runtime::new().unwrap(); let _g = _rt.enter();
    /// let producer = herald::Producer::builder()
    ///     .bootstrap_servers("127.0.0.1:9092")
    ///     .opentelemetry()
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "opentelemetry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "opentelemetry")))]
    pub fn opentelemetry(self) -> Self {
        self.interceptor_with(|config| {
            crate::otel::TracingInterceptor::new().client_id(config.client_id.clone())
        })
    }

    /// Like [`opentelemetry`](Self::opentelemetry), with `tracer` instead of the
    /// global tracer provider's.
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), herald::Error> {
    /// # let _rt = tokio::runtime::Runtime::new().unwrap(); let _g = _rt.enter();
    /// use opentelemetry::trace::TracerProvider;
    ///
    /// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    /// let producer = herald::Producer::builder()
    ///     .bootstrap_servers("127.0.0.1:9092")
    ///     .opentelemetry_tracer(provider.tracer("orders-service"))
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "opentelemetry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "opentelemetry")))]
    pub fn opentelemetry_tracer<T>(self, tracer: T) -> Self
    where
        T: opentelemetry::trace::Tracer + Send + Sync + 'static,
        T::Span: Send + Sync + 'static,
    {
        self.interceptor_with(move |config| {
            crate::otel::TracingInterceptor::with_tracer(tracer).client_id(config.client_id.clone())
        })
    }

    /// Builds the producer and starts its sender task on the current tokio runtime.
    /// Returns the first invalid setting as an error. Does not connect: the first
    /// `send` does.
    pub fn build(self) -> Result<Producer> {
        self.build_with(|config| {
            let pool = ClientConfig::from_settings(config, &config.client_id)?.pool()?;
            Ok(Box::new(pool))
        })
    }

    /// Builds the producer over the transport `transport` makes from the checked
    /// settings: the connection pool, or a scripted one in unit tests.
    pub(crate) fn build_with(
        self,
        transport: impl FnOnce(&ProducerConfig) -> Result<Box<dyn transport::Transport>>,
    ) -> Result<Producer> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut config = self.config;
        config.validate()?;
        config.finish();
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::config("runtime", "Producer::build must be called within a tokio runtime"))?;
        let mut pool = transport(&config)?;
        let config = Arc::new(config);
        let accumulator = Accumulator::new(config.batch_size, config.max_request_size, config.buffer_memory);
        if let Some(h) = self.on_delivery {
            accumulator.deliveries().set_handler(h);
        }
        pool.count_traffic(accumulator.deliveries().recorder.traffic.clone());
        let (caller, calls) = Caller::new();
        let shared = Arc::new(Shared {
            accumulator,
            config: config.clone(),
            partitioner: self.partitioner,
            wake: Notify::new(),
            closing: AtomicBool::new(false),
            last_metadata_error: Mutex::new(None),
            txn: config.transactional_id.clone().map(|id| {
                let backoff = crate::backoff::Backoff::new(config.retry_backoff, config.retry_backoff_max);
                Arc::new(Transactions::new(id, config.transaction_timeout, config.max_block, backoff, caller))
            }),
            client_instance_id: Mutex::new(None),
        });
        let interceptors = Interceptors::new(self.interceptors.into_iter().map(|f| f(&config)).collect());
        let (tx, rx) = mpsc::unbounded_channel();
        let sender = Sender::new(shared.clone(), pool, rx, calls);
        runtime.spawn(sender.run());
        statistics::start(&shared, &runtime);
        tracing::info!(
            client_id = %config.client_id,
            bootstrap = ?config.bootstrap_servers,
            acks = %config.acks,
            security = %config.security.protocol,
            "producer started"
        );
        Ok(Producer { handle: Arc::new(Handle { shared, commands: tx, interceptors }) })
    }
}
