//! How a record's outcome reaches its caller.
//!
//! One [`BatchCompletion`] per batch, shared by the [`DeliveryFuture`]s of its
//! records: a batch resolves once, and each record reads its offset as the batch's
//! base offset plus its own offset delta. That costs one allocation per batch, not
//! one per record.
//!
//! **No user code runs under a herald lock, by construction.** A batch is resolved
//! wherever the sender learns its outcome; a delivery callback run there could
//! call back into the producer (`send` takes the partition's lock) and deadlock on
//! a lock held at that point. So resolving a batch never runs a callback:
//! [`BatchCompletion::resolve`] only queues its callbacks ([`Deliveries`]), and
//! the sender task runs the queue ([`Deliveries::run_pending`]) at the top of its
//! loop and in its final sweep — points where no herald lock is held, because
//! every guard the sender takes lives inside one of the methods that loop calls.
//! Each callback runs under `catch_unwind`, in the order batches resolved.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use crate::error::Error;
use crate::error::Result;
use crate::parts::{RecordMetadata, TimestampType};

/// What a broker said about a batch it accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchAck {
    /// The first record's offset; `None` with acks=0.
    pub(crate) base_offset: Option<i64>,
    /// The broker's append time, for LogAppendTime topics.
    pub(crate) log_append_time: Option<i64>,
}

enum State {
    Pending(Vec<Waker>),
    Done(Result<BatchAck>),
    /// Split after the broker refused the batch as too large (KIP-126): its
    /// records now resolve through the parts, each given with the offset delta
    /// (in this batch) of its first record, ascending from 0.
    Split(Vec<(i32, Arc<BatchCompletion>)>),
}

/// Where resolved batches hand what they hold: their `buffer.memory` back to the
/// producer's pool, their records' callbacks to a queue the sender task runs
/// where it holds no lock.
pub(crate) struct Deliveries {
    memory: Arc<Semaphore>,
    /// Callbacks of resolved batches, waiting for [`run_pending`](Self::run_pending).
    /// Held only to push or to take the whole list, never while user code runs.
    pending: Mutex<Vec<Job>>,
    /// A transactional producer's: whether failures are being recorded (since
    /// the current transaction began), and the first one.
    tracking: AtomicBool,
    first_failure: Mutex<Option<Error>>,
    /// The producer's metrics: batches count themselves as they resolve.
    pub(crate) recorder: Arc<crate::metrics::Recorder>,
    /// The handler of tagged records, set when the producer is built.
    handler: std::sync::OnceLock<Handler>,
}

impl fmt::Debug for Deliveries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deliveries").field("pending", &self.pending.lock().len()).finish()
    }
}

/// A resolved batch's callbacks, with its outcome.
struct Job {
    batch: Arc<BatchCompletion>,
    result: Result<BatchAck>,
    callbacks: Vec<RecordCallback>,
}

thread_local! {
    /// Set while this thread runs delivery callbacks: waiting there for the
    /// producer (`flush`, `close`) would wait for the very task running them.
    static IN_CALLBACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Deliveries {
    /// `memory` is the producer's `buffer.memory` pool.
    pub(crate) fn new(memory: Arc<Semaphore>) -> Arc<Deliveries> {
        Arc::new(Deliveries {
            recorder: crate::metrics::Recorder::new(),
            memory,
            pending: Mutex::new(Vec::new()),
            tracking: AtomicBool::new(false),
            first_failure: Mutex::new(None),
            handler: std::sync::OnceLock::new(),
        })
    }

    /// Sets the producer's delivery handler (once, when it is built).
    pub(crate) fn set_handler(&self, handler: Handler) {
        let _ = self.handler.set(handler);
    }

    /// The producer's delivery handler, if it has one.
    pub(crate) fn handler(&self) -> Option<&Handler> {
        self.handler.get()
    }

    /// Transactions: from now on, remembers the first batch that fails (a new
    /// transaction begins).
    pub(crate) fn track_failures(&self) {
        *self.first_failure.lock() = None;
        self.tracking.store(true, Ordering::Release);
    }

    /// The first failure since [`track_failures`](Self::track_failures).
    pub(crate) fn first_failure(&self) -> Option<Error> {
        self.first_failure.lock().clone()
    }

    /// Records `e` as a failure of the current transaction, unless one is known.
    pub(crate) fn note_failure(&self, e: &Error) {
        if self.tracking.load(Ordering::Acquire) {
            self.first_failure.lock().get_or_insert_with(|| e.clone());
        }
    }

    /// Whether the caller is a delivery callback.
    pub(crate) fn in_callback() -> bool {
        IN_CALLBACK.get()
    }

    /// Runs the callbacks of every batch resolved so far, in order, each batch's
    /// under one `catch_unwind` (a panic is logged; the next callback runs). Call
    /// only where no herald lock is held: the sender does, at the top of its loop,
    /// when `flush` asks, and in its final sweep.
    pub(crate) fn run_pending(&self) {
        loop {
            let jobs = std::mem::take(&mut *self.pending.lock());
            if jobs.is_empty() {
                return;
            }
            let outer = IN_CALLBACK.replace(true);
            for job in jobs {
                run(job, self.handler.get());
            }
            IN_CALLBACK.set(outer);
        }
    }

    fn queue(&self, job: Job) {
        self.pending.lock().push(job);
    }
}

/// Runs one batch's callbacks in order. One `catch_unwind` covers the batch: a
/// callback that panics is logged and the ones after it still run.
fn run(job: Job, handler: Option<&Handler>) {
    let Job { batch, result, callbacks } = job;
    let mut callbacks = callbacks.into_iter();
    loop {
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &result {
            Ok(ack) => {
                for cb in callbacks.by_ref() {
                    cb.f.call(handler, Ok(record_metadata(&batch, *ack, cb.offset_delta, cb.timestamp)));
                }
            }
            Err(e) => {
                for cb in callbacks.by_ref() {
                    cb.f.call(handler, Err(e.clone()));
                }
            }
        }));
        let Err(panic) = ran else { return };
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        tracing::error!(
            topic = %batch.topic, partition = batch.partition, panic = %what,
            "a delivery callback panicked; the producer goes on"
        );
    }
}

/// The shared outcome of one batch.
pub(crate) struct BatchCompletion {
    topic: Arc<str>,
    partition: i32,
    state: Mutex<State>,
    /// Where `buffer.memory` goes back and callbacks run when the batch resolves.
    deliveries: Arc<Deliveries>,
    /// How much `buffer.memory` the batch's records took.
    reserved: AtomicUsize,
}

impl fmt::Debug for BatchCompletion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchCompletion")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("done", &self.is_done())
            .finish()
    }
}

impl BatchCompletion {
    pub(crate) fn new(topic: Arc<str>, partition: i32, deliveries: Arc<Deliveries>) -> Arc<BatchCompletion> {
        Arc::new(BatchCompletion {
            topic,
            partition,
            state: Mutex::new(State::Pending(Vec::new())),
            deliveries,
            reserved: AtomicUsize::new(0),
        })
    }

    /// A new, pending completion for a batch of the same partition (a part of a
    /// split batch).
    pub(crate) fn sibling(&self) -> Arc<BatchCompletion> {
        BatchCompletion::new(self.topic.clone(), self.partition, self.deliveries.clone())
    }

    pub(crate) fn topic(&self) -> &Arc<str> {
        &self.topic
    }

    pub(crate) fn partition(&self) -> i32 {
        self.partition
    }

    /// Adds a record's share of `buffer.memory`, given back on resolution.
    pub(crate) fn reserve(&self, bytes: usize) {
        self.reserved.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Resolves the batch: its futures wake, its `buffer.memory` goes back, and its
    /// `callbacks` are queued for the sender to run — never run here. Only the
    /// first call counts: a batch resolves exactly once.
    pub(crate) fn resolve(
        self: &Arc<Self>,
        result: Result<BatchAck>,
        callbacks: Vec<RecordCallback>,
    ) -> bool {
        let wakers = {
            let mut s = self.state.lock();
            let State::Pending(w) = &mut *s else { return false };
            let w = std::mem::take(w);
            // Queued before the batch reads as done, so a flush that sees it done
            // and then asks the sender to run callbacks finds these among them.
            if !callbacks.is_empty() {
                self.deliveries.queue(Job { batch: self.clone(), result: result.clone(), callbacks });
            }
            if let Err(e) = &result {
                self.deliveries.note_failure(e);
            }
            *s = State::Done(result);
            w
        };
        self.deliveries.memory.add_permits(self.reserved.swap(0, Ordering::AcqRel));
        for w in wakers {
            w.wake();
        }
        true
    }

    /// Resolves a completion made by [`DeliveryFuture::deferred`] with its one
    /// record's outcome.
    pub(crate) fn resolve_record(self: &Arc<Self>, outcome: &Result<RecordMetadata>) {
        let ack = outcome.as_ref().map_err(Clone::clone).map(|m| BatchAck {
            base_offset: m.offset,
            log_append_time: (m.timestamp_type == TimestampType::LogAppendTime).then_some(m.timestamp),
        });
        self.resolve(ack, Vec::new());
    }

    /// Hands the batch's records over to `parts` (the batches it was split into,
    /// each with the offset delta here of its first record, ascending from 0):
    /// its futures and waiters follow them from now on, and its `buffer.memory`
    /// goes back with the last part. Callbacks travel with the parts' batches.
    /// Returns `false`, changing nothing, if the batch is resolved already.
    pub(crate) fn split(&self, parts: Vec<(i32, Arc<BatchCompletion>)>) -> bool {
        let Some(last) = parts.last().map(|(_, c)| c.clone()) else { return false };
        let wakers = {
            let mut s = self.state.lock();
            let State::Pending(w) = &mut *s else { return false };
            let w = std::mem::take(w);
            *s = State::Split(parts);
            w
        };
        last.reserve(self.reserved.swap(0, Ordering::AcqRel));
        // Woken to poll again, now on their record's part.
        for w in wakers {
            w.wake();
        }
        true
    }

    /// Resolves a batch without callbacks.
    #[cfg(test)]
    pub(crate) fn complete(self: &Arc<Self>, result: Result<BatchAck>) -> bool {
        self.resolve(result, Vec::new())
    }

    /// Fails a batch without callbacks with `err`, naming its topic and partition.
    #[cfg(test)]
    pub(crate) fn fail(self: &Arc<Self>, err: Error) -> bool {
        self.resolve(Err(err.for_partition(&self.topic, Some(self.partition))), Vec::new())
    }

    /// Where its callbacks are queued.
    #[cfg(test)]
    pub(crate) fn deliveries(&self) -> &Arc<Deliveries> {
        &self.deliveries
    }

    /// The producer's metrics.
    pub(crate) fn recorder(&self) -> &crate::metrics::Recorder {
        &self.deliveries.recorder
    }

    /// Whether every record of the batch has its outcome (through its parts, if
    /// it was split).
    pub(crate) fn is_done(&self) -> bool {
        let parts = match &*self.state.lock() {
            State::Done(_) => return true,
            State::Pending(_) => return false,
            State::Split(parts) => parts.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>(),
        };
        parts.iter().all(|c| c.is_done())
    }

    /// The outcome of the record at `offset_delta`, and its offset delta in the
    /// batch that resolved (a part's, if this batch was split).
    fn poll_record(&self, offset_delta: i32, cx: &mut Context<'_>) -> Poll<(Result<BatchAck>, i32)> {
        let part = {
            let mut s = self.state.lock();
            match &mut *s {
                State::Done(r) => return Poll::Ready((r.clone(), offset_delta)),
                State::Pending(wakers) => {
                    if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                        wakers.push(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
                State::Split(parts) => {
                    let at = parts.partition_point(|(first, _)| *first <= offset_delta).saturating_sub(1);
                    parts.get(at).map(|(first, c)| (offset_delta - first, c.clone()))
                }
            }
        };
        // Polled with this batch's lock released: the part has its own.
        match part {
            Some((delta, c)) => c.poll_record(delta, cx),
            None => Poll::Pending,
        }
    }

    /// Ready once every record of the batch has its outcome.
    fn poll_done(&self, cx: &mut Context<'_>) -> Poll<()> {
        let parts = {
            let mut s = self.state.lock();
            match &mut *s {
                State::Done(_) => return Poll::Ready(()),
                State::Pending(wakers) => {
                    if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                        wakers.push(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
                State::Split(parts) => parts.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>(),
            }
        };
        for c in parts {
            if c.poll_done(cx).is_pending() {
                return Poll::Pending;
            }
        }
        Poll::Ready(())
    }

    /// Waits until the batch is resolved, whatever the outcome.
    pub(crate) fn wait(self: &Arc<Self>) -> BatchWait {
        BatchWait { batch: self.clone() }
    }
}

/// Future of [`BatchCompletion::wait`].
pub(crate) struct BatchWait {
    batch: Arc<BatchCompletion>,
}

impl Future for BatchWait {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.batch.poll_done(cx)
    }
}

/// Resolves to where a record was written, or to the error that kept it from being
/// written. Returned by [`Producer::send`](crate::Producer::send).
///
/// The record is delivered whether or not this future is awaited; dropping it only
/// drops the news.
#[must_use = "a DeliveryFuture tells whether the record was written; await it or drop it knowingly"]
pub struct DeliveryFuture {
    batch: Arc<BatchCompletion>,
    offset_delta: i32,
    timestamp: i64,
}

impl fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryFuture")
            .field("topic", &self.batch.topic)
            .field("partition", &self.batch.partition)
            .field("offset_delta", &self.offset_delta)
            .finish()
    }
}

impl DeliveryFuture {
    pub(crate) fn new(batch: Arc<BatchCompletion>, offset_delta: i32, timestamp: i64) -> DeliveryFuture {
        DeliveryFuture { batch, offset_delta, timestamp }
    }

    /// A future of one record of `topic`'s `partition` (timestamp `timestamp`)
    /// whose batch resolves it through a callback, by
    /// [`BatchCompletion::resolve_record`]: for records whose interceptors must
    /// see the outcome before the caller does.
    pub(crate) fn deferred(
        topic: Arc<str>,
        partition: i32,
        timestamp: i64,
        deliveries: Arc<Deliveries>,
    ) -> (DeliveryFuture, Arc<BatchCompletion>) {
        let completion = BatchCompletion::new(topic, partition, deliveries);
        (DeliveryFuture::new(completion.clone(), 0, timestamp), completion)
    }

    /// The topic the record is going to.
    pub fn topic(&self) -> &str {
        &self.batch.topic
    }

    /// The partition the record is going to.
    pub fn partition(&self) -> i32 {
        self.batch.partition
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.batch
            .poll_record(this.offset_delta, cx)
            .map(|(r, delta)| r.map(|ack| record_metadata(&this.batch, ack, delta, this.timestamp)))
    }
}

/// One record's place, from its batch's acknowledgement.
pub(crate) fn record_metadata(
    batch: &BatchCompletion,
    ack: BatchAck,
    offset_delta: i32,
    timestamp: i64,
) -> RecordMetadata {
    let (timestamp, timestamp_type) = match ack.log_append_time {
        Some(t) => (t, TimestampType::LogAppendTime),
        None => (timestamp, TimestampType::CreateTime),
    };
    RecordMetadata {
        topic: batch.topic.clone(),
        partition: batch.partition,
        offset: ack.base_offset.map(|b| b + i64::from(offset_delta)),
        timestamp,
        timestamp_type,
    }
}

/// The producer's delivery handler (see `ProducerBuilder::on_delivery`).
pub(crate) type Handler = Arc<dyn Fn(u64, Result<RecordMetadata>) + Send + Sync + 'static>;

/// Who hears of a record's outcome, besides its future.
pub(crate) enum Callback {
    /// Its own callback (`Producer::send_with_callback`): one allocation each.
    Boxed(Box<dyn FnOnce(Result<RecordMetadata>) + Send + 'static>),
    /// The producer's delivery handler, with this tag (`Producer::send_tagged`):
    /// nothing allocated per record.
    Tagged(u64),
}

impl Callback {
    /// A callback of its own.
    pub(crate) fn boxed(f: impl FnOnce(Result<RecordMetadata>) + Send + 'static) -> Callback {
        Callback::Boxed(Box::new(f))
    }

    /// Tells the record's outcome: `handler` is the producer's, which every
    /// producer that accepted a tagged record has.
    #[inline]
    pub(crate) fn call(self, handler: Option<&Handler>, result: Result<RecordMetadata>) {
        match self {
            Callback::Boxed(f) => f(result),
            Callback::Tagged(tag) => match handler {
                Some(h) => h(tag, result),
                None => {
                    tracing::error!(tag, "a tagged record resolved on a producer without a delivery handler")
                }
            },
        }
    }
}

/// A callback with what it needs to describe its record.
pub(crate) struct RecordCallback {
    pub(crate) offset_delta: i32,
    pub(crate) timestamp: i64,
    pub(crate) f: Callback,
}

impl fmt::Debug for RecordCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordCallback").field("offset_delta", &self.offset_delta).finish()
    }
}

/// A callback queue for unit tests, with an empty memory pool.
#[cfg(test)]
pub(crate) fn test_deliveries() -> Arc<Deliveries> {
    Deliveries::new(Arc::new(Semaphore::new(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[tokio::test]
    async fn records_read_their_offset_from_the_batch() {
        let b = BatchCompletion::new(Arc::from("t"), 2, test_deliveries());
        let f0 = DeliveryFuture::new(b.clone(), 0, 100);
        let f1 = DeliveryFuture::new(b.clone(), 1, 101);
        assert!(b.complete(Ok(BatchAck { base_offset: Some(40), log_append_time: None })));
        let m0 = f0.await.unwrap();
        let m1 = f1.await.unwrap();
        assert_eq!((m0.partition(), m0.offset(), m0.timestamp()), (2, Some(40), 100));
        assert_eq!(
            (m1.offset(), m1.timestamp(), m1.timestamp_type()),
            (Some(41), 101, TimestampType::CreateTime)
        );
    }

    #[tokio::test]
    async fn a_batch_resolves_once() {
        let b = BatchCompletion::new(Arc::from("t"), 0, test_deliveries());
        let f = DeliveryFuture::new(b.clone(), 0, 1);
        assert!(b.fail(Error::broker(ErrorCode::MESSAGE_TOO_LARGE, None)));
        assert!(!b.complete(Ok(BatchAck { base_offset: Some(0), log_append_time: None })));
        let e = f.await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::MESSAGE_TOO_LARGE));
        assert_eq!((e.topic(), e.partition()), (Some("t"), Some(0)));
    }

    #[tokio::test]
    async fn log_append_time_replaces_create_time() {
        let b = BatchCompletion::new(Arc::from("t"), 0, test_deliveries());
        let f = DeliveryFuture::new(b.clone(), 3, 5);
        b.complete(Ok(BatchAck { base_offset: Some(10), log_append_time: Some(999) }));
        let m = f.await.unwrap();
        assert_eq!(
            (m.offset(), m.timestamp(), m.timestamp_type()),
            (Some(13), 999, TimestampType::LogAppendTime)
        );
    }

    fn callback(
        f: impl FnOnce(Result<RecordMetadata>) + Send + 'static,
        offset_delta: i32,
    ) -> RecordCallback {
        RecordCallback { offset_delta, timestamp: 1, f: Callback::boxed(f) }
    }

    #[test]
    fn a_tagged_record_reaches_the_handler_with_its_tag_and_offset_in_batch_order() {
        let d = test_deliveries();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        d.set_handler(Arc::new(move |tag, r: Result<RecordMetadata>| {
            s2.lock().push((tag, r.map(|m| m.offset()).map_err(|e| e.code())))
        }));
        let ok = BatchCompletion::new(Arc::from("t"), 0, d.clone());
        let tagged =
            |tag, offset_delta| RecordCallback { offset_delta, timestamp: 1, f: Callback::Tagged(tag) };
        assert!(ok.resolve(
            Ok(BatchAck { base_offset: Some(10), log_append_time: None }),
            vec![tagged(7, 0), tagged(3, 1)]
        ));
        let failed = BatchCompletion::new(Arc::from("t"), 1, d.clone());
        assert!(failed.resolve(Err(Error::broker(ErrorCode::MESSAGE_TOO_LARGE, None)), vec![tagged(9, 0)]));
        assert!(seen.lock().is_empty(), "the handler waits for the sender to run it");
        d.run_pending();
        assert_eq!(
            *seen.lock(),
            vec![(7, Ok(Some(10))), (3, Ok(Some(11))), (9, Err(Some(ErrorCode::MESSAGE_TOO_LARGE)))]
        );
    }

    #[test]
    fn callbacks_run_only_when_the_queue_is_run_never_where_the_batch_resolves() {
        let d = test_deliveries();
        let b = BatchCompletion::new(Arc::from("t"), 0, d.clone());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let cb =
            callback(move |r| s2.lock().push((Deliveries::in_callback(), r.map(|m| m.offset()).ok())), 2);
        assert!(b.resolve(Ok(BatchAck { base_offset: Some(10), log_append_time: None }), vec![cb]));
        assert!(b.is_done(), "the futures see the outcome at once");
        assert!(seen.lock().is_empty(), "the callback waits for the sender to run it");
        d.run_pending();
        assert_eq!(*seen.lock(), vec![(true, Some(Some(12)))]);
        assert!(!Deliveries::in_callback());
    }

    #[test]
    fn a_panicking_callback_is_caught_and_the_others_still_run() {
        let d = test_deliveries();
        let ran = Arc::new(AtomicUsize::new(0));
        let (r1, r2) = (ran.clone(), ran.clone());
        let b = BatchCompletion::new(Arc::from("t"), 0, d.clone());
        let cbs = vec![
            callback(
                move |_| {
                    r1.fetch_add(1, Ordering::SeqCst);
                },
                0,
            ),
            callback(|_| panic!("a callback that panics"), 1),
            callback(
                move |_| {
                    r2.fetch_add(1, Ordering::SeqCst);
                },
                2,
            ),
        ];
        b.resolve(Err(Error::new(crate::error::ErrorKind::Closed)), cbs);
        let b2 = BatchCompletion::new(Arc::from("t"), 0, d.clone());
        let r3 = ran.clone();
        b2.resolve(
            Ok(BatchAck { base_offset: None, log_append_time: None }),
            vec![callback(
                move |_| {
                    r3.fetch_add(1, Ordering::SeqCst);
                },
                0,
            )],
        );
        d.run_pending();
        assert_eq!(ran.load(Ordering::SeqCst), 3, "the panic was caught; the other callbacks ran");
        assert!(!Deliveries::in_callback(), "the flag is cleared after a panic too");
    }
}
