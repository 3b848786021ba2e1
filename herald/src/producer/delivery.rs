//! How a record's outcome reaches its caller.
//!
//! One [`BatchCompletion`] per batch, shared by the [`DeliveryFuture`]s of its
//! records: a batch resolves once, and each record reads its offset as the batch's
//! base offset plus its own offset delta. That costs one allocation per batch, not
//! one per record.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::record::{RecordMetadata, TimestampType};

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
}

/// The shared outcome of one batch.
pub(crate) struct BatchCompletion {
    topic: Arc<str>,
    partition: i32,
    state: Mutex<State>,
    /// `buffer.memory` to give back when the batch resolves, and how much.
    memory: Option<Arc<Semaphore>>,
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
    pub(crate) fn new(
        topic: Arc<str>,
        partition: i32,
        memory: Option<Arc<Semaphore>>,
    ) -> Arc<BatchCompletion> {
        Arc::new(BatchCompletion {
            topic,
            partition,
            state: Mutex::new(State::Pending(Vec::new())),
            memory,
            reserved: AtomicUsize::new(0),
        })
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

    /// Resolves the batch. Only the first call counts: a batch resolves exactly once.
    pub(crate) fn complete(&self, result: Result<BatchAck>) -> bool {
        let wakers = {
            let mut s = self.state.lock();
            match &mut *s {
                State::Done(_) => return false,
                State::Pending(w) => {
                    let w = std::mem::take(w);
                    *s = State::Done(result);
                    w
                }
            }
        };
        if let Some(m) = &self.memory {
            m.add_permits(self.reserved.swap(0, Ordering::AcqRel));
        }
        for w in wakers {
            w.wake();
        }
        true
    }

    /// Fails the batch with `err`, naming its topic and partition.
    pub(crate) fn fail(&self, err: Error) -> bool {
        self.complete(Err(err.for_partition(&self.topic, Some(self.partition))))
    }

    pub(crate) fn is_done(&self) -> bool {
        matches!(*self.state.lock(), State::Done(_))
    }

    fn poll_result(&self, cx: &mut Context<'_>) -> Poll<Result<BatchAck>> {
        let mut s = self.state.lock();
        match &mut *s {
            State::Done(r) => Poll::Ready(r.clone()),
            State::Pending(wakers) => {
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
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
        self.batch.poll_result(cx).map(|_| ())
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
            .poll_result(cx)
            .map(|r| r.map(|ack| record_metadata(&this.batch, ack, this.offset_delta, this.timestamp)))
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

/// A record's delivery callback (see `Producer::send_with_callback`).
pub(crate) type Callback = Box<dyn FnOnce(Result<RecordMetadata>) + Send + 'static>;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[tokio::test]
    async fn records_read_their_offset_from_the_batch() {
        let b = BatchCompletion::new(Arc::from("t"), 2, None);
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
        let b = BatchCompletion::new(Arc::from("t"), 0, None);
        let f = DeliveryFuture::new(b.clone(), 0, 1);
        assert!(b.fail(Error::broker(ErrorCode::MESSAGE_TOO_LARGE, None)));
        assert!(!b.complete(Ok(BatchAck { base_offset: Some(0), log_append_time: None })));
        let e = f.await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::MESSAGE_TOO_LARGE));
        assert_eq!((e.topic(), e.partition()), (Some("t"), Some(0)));
    }

    #[tokio::test]
    async fn log_append_time_replaces_create_time() {
        let b = BatchCompletion::new(Arc::from("t"), 0, None);
        let f = DeliveryFuture::new(b.clone(), 3, 5);
        b.complete(Ok(BatchAck { base_offset: Some(10), log_append_time: Some(999) }));
        let m = f.await.unwrap();
        assert_eq!(
            (m.offset(), m.timestamp(), m.timestamp_type()),
            (Some(13), 999, TimestampType::LogAppendTime)
        );
    }
}
