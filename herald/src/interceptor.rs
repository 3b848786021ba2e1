//! Producer interceptors: code that sees every record as it is sent and every
//! record's outcome, in the shape of Java's
//! `org.apache.kafka.clients.producer.ProducerInterceptor` — to add headers
//! (tracing context, an audit id), count, or trace, without wrapping `send`.
//!
//! Register them with [`ProducerBuilder::interceptor`](crate::ProducerBuilder::interceptor);
//! they run in registration order.
//!
//! - [`on_send`](ProducerInterceptor::on_send) runs first thing in
//!   [`Producer::send`](crate::Producer::send), [`try_send`](crate::Producer::try_send)
//!   and [`send_with_callback`](crate::Producer::send_with_callback), on the
//!   caller's thread, under no herald lock, before the record is checked,
//!   partitioned and encoded into its batch: the partitioner and the size limits
//!   see the record as the interceptors left it (as Java's `KafkaProducer.send`
//!   calls `onSend` before `doSend`).
//! - [`on_acknowledgement`](ProducerInterceptor::on_acknowledgement) runs once per
//!   record, with the state its `on_send` returned, when the record's outcome is
//!   known. For a record that reached its batch, that is where delivery callbacks
//!   run: on the producer's sender task at a point where it holds none of its
//!   locks (DESIGN.md, "No user code under a herald lock"), before the record's
//!   own callback runs and before its [`DeliveryFuture`](crate::DeliveryFuture)
//!   resolves (Java's `InterceptorCallback` order). For a record refused up front
//!   (producer closed, record too large, topic unknown, buffer full for
//!   `try_send`, a `SendFuture` dropped before the record was queued) it runs on
//!   the caller's thread as `send` refuses it, under no herald lock — as Java's
//!   `ProducerInterceptors.onSendError` does.
//!
//! An interceptor that panics is caught: the panic is logged (at `error`, once
//! per interceptor, naming its type and the record's topic and partition; later
//! ones at `debug`) and the record goes on. Changes an `on_send` made before it
//! panicked stay; a record whose `on_send` panicked gets no `on_acknowledgement`
//! from that interceptor (there is no state to hand it).

//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use herald::interceptor::ProducerInterceptor;
//! use herald::{Error, Record, RecordMetadata};
//!
//! /// Stamps each record with the host it came from, and counts failures.
//! struct Audit {
//!     host: String,
//!     failed: AtomicU64,
//! }
//!
//! impl ProducerInterceptor for Audit {
//!     type State = ();
//!
//!     fn on_send(&self, record: &mut Record) {
//!         record.headers_mut().push(herald::Header::new("origin-host", self.host.clone()));
//!     }
//!
//!     fn on_acknowledgement(&self, _: (), outcome: Result<&RecordMetadata, &Error>) {
//!         if let Err(e) = outcome {
//!             self.failed.fetch_add(1, Ordering::Relaxed);
//!             eprintln!("{:?}/{:?} failed: {e}", e.topic(), e.partition());
//!         }
//!     }
//! }
//!
//! # fn demo() -> Result<(), herald::Error> {
//! # let _rt = tokio::runtime::Runtime::new().unwrap(); let _g = _rt.enter();
//! let producer = herald::Producer::builder()
//!     .bootstrap_servers("127.0.0.1:9092")
//!     .interceptor(Audit { host: "web-1".into(), failed: AtomicU64::new(0) })
//!     .build()?;
//! # Ok(()) }
//! ```

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, ErrorKind, Result};
use crate::producer::delivery::BatchCompletion;
use crate::record::{Record, RecordMetadata};

/// Sees each record before it is sent and its outcome after (Java's
/// `ProducerInterceptor`). See the [module documentation](self) for where and
/// when each method runs.
///
/// Both methods run on the producer's paths: keep them short, and do not block.
/// They may call the producer (`send` again, read its config); waiting for it
/// (`flush`, `close`) from `on_acknowledgement` fails with
/// [`ErrorKind::InCallback`], as in a delivery callback.
pub trait ProducerInterceptor: Send + Sync + 'static {
    /// What `on_send` hands to `on_acknowledgement` for the same record: a span,
    /// a start time, or `()` for nothing (which costs nothing).
    type State: Send + 'static;

    /// Called once per record handed to `send`, `try_send` or
    /// `send_with_callback`, before it is partitioned and encoded: may change
    /// anything about it (headers, key, value, timestamp, partition — or replace
    /// it whole).
    fn on_send(&self, record: &mut Record) -> Self::State;

    /// Called once per record whose `on_send` returned, with that state, when the
    /// record's outcome is known: where it was written, or why it was not (the
    /// error names the topic, and the partition when one was chosen). By default
    /// does nothing.
    fn on_acknowledgement(&self, state: Self::State, outcome: std::result::Result<&RecordMetadata, &Error>) {
        let _ = (state, outcome);
    }
}

/// What `on_send` returned, type-erased. A `()` state is a zero-sized box: no
/// allocation.
type State = Box<dyn Any + Send>;

/// A [`ProducerInterceptor`] with its state type erased.
trait Erased: Send + Sync {
    fn on_send(&self, record: &mut Record) -> State;
    fn on_acknowledgement(&self, state: State, outcome: std::result::Result<&RecordMetadata, &Error>);
}

impl<I: ProducerInterceptor> Erased for I {
    fn on_send(&self, record: &mut Record) -> State {
        Box::new(ProducerInterceptor::on_send(self, record))
    }

    fn on_acknowledgement(&self, state: State, outcome: std::result::Result<&RecordMetadata, &Error>) {
        if let Ok(state) = state.downcast::<I::State>() {
            ProducerInterceptor::on_acknowledgement(self, *state, outcome);
        }
    }
}

/// One registered interceptor.
struct Registered {
    interceptor: Box<dyn Erased>,
    /// Its type's name, for the panic log.
    name: &'static str,
    /// Whether a panic of it was logged at `error` already.
    panicked: AtomicBool,
}

impl Registered {
    fn panicked(&self, method: &str, topic: Option<&str>, partition: Option<i32>, panic: &(dyn Any + Send)) {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let topic = topic.unwrap_or("?");
        let partition = partition.map_or_else(|| "?".to_owned(), |p| p.to_string());
        if self.panicked.swap(true, Ordering::Relaxed) {
            tracing::debug!(interceptor = self.name, method, topic, %partition, panic = %what,
                "a producer interceptor panicked again; skipped");
        } else {
            tracing::error!(interceptor = self.name, method, topic, %partition, panic = %what,
                "a producer interceptor panicked; it is skipped for this record, which goes on \
                 (later panics of this interceptor are logged at debug)");
        }
    }
}

/// Builds an interceptor from the producer's checked settings (its client id,
/// say), when the producer is built.
pub(crate) type Factory = Box<dyn FnOnce(&crate::config::ProducerConfig) -> Interceptor + Send>;

/// An interceptor ready to register.
pub(crate) struct Interceptor(Registered);

impl Interceptor {
    pub(crate) fn new<I: ProducerInterceptor>(interceptor: I) -> Interceptor {
        Interceptor(Registered {
            interceptor: Box::new(interceptor),
            name: std::any::type_name::<I>(),
            panicked: AtomicBool::new(false),
        })
    }
}

/// A producer's interceptors, in registration order.
pub(crate) struct Interceptors {
    chain: Vec<Registered>,
}

impl fmt::Debug for Interceptors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.chain.iter().map(|r| r.name)).finish()
    }
}

impl Interceptors {
    /// The chain, or `None` without interceptors (the producer's fast path).
    pub(crate) fn new(chain: Vec<Interceptor>) -> Option<Arc<Interceptors>> {
        (!chain.is_empty())
            .then(|| Arc::new(Interceptors { chain: chain.into_iter().map(|i| i.0).collect() }))
    }

    /// Runs every `on_send` on `record`, in order, each under `catch_unwind`.
    pub(crate) fn on_send(self: &Arc<Self>, record: &mut Record) -> Intercepted {
        let mut states = Vec::with_capacity(self.chain.len());
        for r in &self.chain {
            match catch_unwind(AssertUnwindSafe(|| r.interceptor.on_send(record))) {
                Ok(s) => states.push(Some(s)),
                Err(panic) => {
                    r.panicked("on_send", Some(record.topic()), record.partition, &*panic);
                    states.push(None);
                }
            }
        }
        Intercepted { chain: self.clone(), states, place: None, future: None }
    }
}

/// One record's interceptor states, from `on_send` until its outcome: handed
/// every interceptor's `on_acknowledgement` exactly once — by
/// [`complete`](Self::complete) or [`refuse`](Self::refuse), or, if it is
/// dropped first, with the error that says why.
pub(crate) struct Intercepted {
    chain: Arc<Interceptors>,
    /// Emptied once acknowledged.
    states: Vec<Option<State>>,
    /// The topic and partition, once known: set as the record is queued (then a
    /// drop means the producer dropped it: closed), or as `send` starts waiting
    /// (then a drop means the caller dropped the `SendFuture`).
    place: Option<(Arc<str>, Option<i32>, ErrorKind)>,
    /// The record's `DeliveryFuture`'s completion, resolved after the
    /// interceptors saw the outcome (a `send` without callback).
    future: Option<Arc<BatchCompletion>>,
}

impl fmt::Debug for Intercepted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intercepted")
            .field("chain", &self.chain)
            .field("pending", &self.states.len())
            .finish()
    }
}

impl Intercepted {
    /// The record is about to be queued in `topic`'s `partition`; if this is
    /// dropped unacknowledged from now on, the producer dropped it.
    pub(crate) fn queued(&mut self, topic: Arc<str>, partition: i32) {
        self.place = Some((topic, Some(partition), ErrorKind::Closed));
    }

    /// The record waits for metadata or room; if this is dropped unacknowledged
    /// now, the caller dropped its `SendFuture` and the record was not sent.
    pub(crate) fn waiting(&mut self, record: &Record) {
        self.place = Some((Arc::from(record.topic()), record.partition, ErrorKind::Cancelled));
    }

    /// Resolves `completion` (the record's `DeliveryFuture`) once the
    /// interceptors have seen the outcome.
    pub(crate) fn resolves(&mut self, completion: Arc<BatchCompletion>) {
        self.future = Some(completion);
    }

    /// The record's outcome is known: every interceptor sees it, then its
    /// future (if any) resolves.
    pub(crate) fn complete(mut self, outcome: &Result<RecordMetadata>) {
        self.acknowledge(outcome.as_ref());
        if let Some(f) = self.future.take() {
            f.resolve_record(outcome);
        }
    }

    /// The record was refused with `err`.
    pub(crate) fn refuse(mut self, err: &Error) {
        self.acknowledge(Err(err));
    }

    fn acknowledge(&mut self, outcome: std::result::Result<&RecordMetadata, &Error>) {
        let states = std::mem::take(&mut self.states);
        for (r, state) in self.chain.chain.iter().zip(states) {
            let Some(state) = state else { continue };
            let ran = catch_unwind(AssertUnwindSafe(|| r.interceptor.on_acknowledgement(state, outcome)));
            if let Err(panic) = ran {
                let (topic, partition) = match outcome {
                    Ok(m) => (Some(m.topic()), Some(m.partition())),
                    Err(e) => (e.topic(), e.partition()),
                };
                r.panicked("on_acknowledgement", topic, partition, &*panic);
            }
        }
    }
}

impl Drop for Intercepted {
    fn drop(&mut self) {
        if self.states.is_empty() && self.future.is_none() {
            return;
        }
        let (kind, topic, partition) = match self.place.take() {
            Some((t, p, kind)) => (kind, Some(t), p),
            None => (ErrorKind::Cancelled, None, None),
        };
        let mut err = Error::new(kind).written(false);
        if let Some(t) = &topic {
            err = err.for_partition(t, partition);
        }
        let outcome = Err(err);
        self.acknowledge(outcome.as_ref());
        if let Some(f) = self.future.take() {
            f.resolve_record(&outcome);
        }
    }
}
