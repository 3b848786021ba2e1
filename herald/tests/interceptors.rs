//! Producer interceptors (Java's `ProducerInterceptor`), against the cluster under
//! test: `on_send` changes what is partitioned and written, in registration
//! order; `on_acknowledgement` runs exactly once per record — delivered, refused
//! up front, or dropped unsent — with the state its `on_send` returned, where
//! delivery callbacks run (before the record's callback, before its future
//! resolves); a panicking interceptor is skipped and the record goes on.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use herald::interceptor::ProducerInterceptor;
use herald::{
    Error, ErrorKind, Header, Partitioner, Partitions, Producer, Record, RecordMetadata, TopicReader,
};
use parking_lot::Mutex;
use support::{bootstrap, create_topic, producer_builder};

/// A record's outcome as logged: (partition, offset), or the error's kind.
type Outcome = Result<(i32, Option<i64>), String>;

/// What a [`Recorder`] saw.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    /// `on_send` of interceptor `name`: the record's key and header keys as it
    /// found them; the state it returned.
    Send { name: &'static str, key: Option<Vec<u8>>, headers: Vec<String>, state: u64 },
    /// `on_acknowledgement`: the state, and the offset or the error kind; whether
    /// `flush` was refused at once there (it runs where callbacks run).
    Ack { name: &'static str, state: u64, outcome: Outcome, in_callback: bool },
    /// A delivery callback ran for the record of this key.
    Callback(Vec<u8>),
}

/// Logs its calls; adds a header named after itself, and (if `key` is set) sets
/// the key. Its state is a per-interceptor sequence number.
struct Recorder {
    name: &'static str,
    key: Option<&'static str>,
    next: AtomicU64,
    log: Arc<Mutex<Vec<Event>>>,
    producer: Arc<Mutex<Option<Producer>>>,
}

impl Recorder {
    fn new(name: &'static str, key: Option<&'static str>, log: &Arc<Mutex<Vec<Event>>>) -> Recorder {
        Recorder {
            name,
            key,
            next: AtomicU64::new(0),
            log: log.clone(),
            producer: Arc::new(Mutex::new(None)),
        }
    }
}

impl ProducerInterceptor for Recorder {
    type State = u64;

    fn on_send(&self, record: &mut Record) -> u64 {
        let state = self.next.fetch_add(1, Ordering::SeqCst);
        self.log.lock().push(Event::Send {
            name: self.name,
            key: record.key_bytes().map(|k| k.to_vec()),
            headers: record.header_list().iter().map(|h| h.key.clone()).collect(),
            state,
        });
        record.headers_mut().push(Header::new(self.name, state.to_string()));
        if let Some(k) = self.key {
            record.set_key(Some(k.into()));
        }
        state
    }

    fn on_acknowledgement(&self, state: u64, outcome: Result<&RecordMetadata, &Error>) {
        // Waiting for the producer here fails at once only where callbacks run.
        let in_callback = self.producer.lock().as_ref().is_some_and(|p| {
            matches!(
                p.flush().now_or_never(),
                Some(Err(e)) if matches!(e.kind(), ErrorKind::InCallback { .. })
            )
        });
        let outcome = outcome.map(|m| (m.partition(), m.offset())).map_err(kind_name);
        self.log.lock().push(Event::Ack { name: self.name, state, outcome, in_callback });
    }
}

/// The name of an error's kind, e.g. `RecordTooLarge`.
fn kind_name(e: &Error) -> String {
    let debug = format!("{:?}", e.kind());
    debug.split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or_default().to_owned()
}

/// Remembers the keys it was asked to place.
#[derive(Debug, Default, Clone)]
struct KeySpy(Arc<Mutex<Vec<Option<Vec<u8>>>>>);

impl Partitioner for KeySpy {
    fn partition(&self, _: &str, key: Option<&[u8]>, _: Option<&[u8]>, partitions: &Partitions<'_>) -> i32 {
        self.0.lock().push(key.map(<[u8]>::to_vec));
        herald::partitioner::partition_for_key(key.unwrap_or_default(), partitions.count())
    }
}

fn acks(log: &[Event], name: &str) -> Vec<(u64, Outcome, bool)> {
    log.iter()
        .filter_map(|e| match e {
            Event::Ack { name: n, state, outcome, in_callback } if *n == name => {
                Some((*state, outcome.clone(), *in_callback))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn on_send_runs_in_order_before_partitioning_and_its_changes_are_written() {
    let topic = create_topic("icpt-send", 3, &[]).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let spy = KeySpy::default();
    let producer = producer_builder()
        .interceptor(Recorder::new("first", Some("rekeyed"), &log))
        .interceptor(Recorder::new("second", None, &log))
        .partitioner(spy.clone())
        .build()
        .unwrap();
    let written = producer.send(Record::new(&topic).key("original").value("v")).await.unwrap().await.unwrap();
    producer.close(Duration::from_secs(30)).await.unwrap();

    assert_eq!(*spy.0.lock(), vec![Some(b"rekeyed".to_vec())], "the partitioner saw the intercepted key");
    let log = log.lock().clone();
    assert_eq!(
        log[..2],
        [
            Event::Send { name: "first", key: Some(b"original".to_vec()), headers: vec![], state: 0 },
            Event::Send {
                name: "second",
                key: Some(b"rekeyed".to_vec()),
                headers: vec!["first".into()],
                state: 0
            },
        ],
        "registration order; the second sees the first's changes"
    );
    let read = TopicReader::new(&bootstrap()).unwrap().read_to_end(&topic).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!((read[0].partition, read[0].offset), (written.partition(), written.offset().unwrap()));
    assert_eq!(read[0].key.as_deref(), Some(&b"rekeyed"[..]));
    assert_eq!(read[0].headers, vec![Header::new("first", "0"), Header::new("second", "0")]);
}

#[tokio::test]
async fn every_record_is_acknowledged_once_where_callbacks_run_before_its_callback_and_future() {
    let topic = create_topic("icpt-ack", 2, &[]).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let recorder = Recorder::new("rec", None, &log);
    let handle = recorder.producer.clone();
    let producer = producer_builder().max_request_size(10_000).interceptor(recorder).build().unwrap();
    *handle.lock() = Some(producer.clone());

    // send: the interceptor saw the outcome before the future resolved.
    let m0 = producer.send(Record::new(&topic).key("a").value("0")).await.unwrap().await.unwrap();
    assert_eq!(
        acks(&log.lock(), "rec"),
        vec![(0, Ok((m0.partition(), m0.offset())), true)],
        "acknowledged (where callbacks run) before the future resolved"
    );
    // send_with_callback: the interceptor, then the callback.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let l2 = log.clone();
    producer
        .send_with_callback(Record::new(&topic).key("b").value("1"), move |r| {
            l2.lock().push(Event::Callback(b"b".to_vec()));
            let _ = tx.send(r);
        })
        .await
        .unwrap();
    let m1 = rx.await.unwrap().unwrap();
    // try_send.
    let m2 = producer.try_send(Record::new(&topic).key("c").value("2")).unwrap().await.unwrap();
    // Refused up front: too large for max.request.size.
    let e = producer.send(Record::new(&topic).key("d").value(vec![0u8; 20_000])).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::RecordTooLarge { .. }), "{e}");
    // Refused by try_send: the buffer is not full, but the partition does not exist.
    let e = producer.try_send(Record::new(&topic).partition(7).value("x")).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidRecord { .. }), "{e}");
    producer.close(Duration::from_secs(30)).await.unwrap();
    // Refused: closed.
    let e = producer.send(Record::new(&topic).value("late")).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Closed), "{e}");

    let log = log.lock().clone();
    let callback_at = log.iter().position(|e| *e == Event::Callback(b"b".to_vec())).unwrap();
    let ack_at = log.iter().position(|e| matches!(e, Event::Ack { state: 1, .. })).unwrap();
    assert!(ack_at < callback_at, "the interceptor ran before the record's callback: {log:?}");
    assert_eq!(
        acks(&log, "rec"),
        vec![
            (0, Ok((m0.partition(), m0.offset())), true),
            (1, Ok((m1.partition(), m1.offset())), true),
            (2, Ok((m2.partition(), m2.offset())), true),
            (3, Err("RecordTooLarge".into()), false),
            (4, Err("InvalidRecord".into()), false),
            (5, Err("Closed".into()), false),
        ],
        "one acknowledgement per record, with its on_send's state"
    );
}

#[tokio::test]
async fn a_send_future_dropped_before_queueing_tells_the_interceptors() {
    // A topic the producer has not seen: the send waits for its metadata.
    let topic = create_topic("icpt-drop", 1, &[]).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let producer = producer_builder().interceptor(Recorder::new("rec", None, &log)).build().unwrap();
    let waiting = producer.send(Record::new(&topic).value("never"));
    assert!(format!("{waiting:?}").contains("waiting"), "{waiting:?}");
    drop(waiting);
    let acked = acks(&log.lock(), "rec");
    assert_eq!(acked, vec![(0, Err("Cancelled".into()), false)]);
    producer.close(Duration::from_secs(30)).await.unwrap();
}

/// Panics in `on_send` or `on_acknowledgement`, for records with a key `panic`.
struct Panicky {
    in_send: bool,
}

impl ProducerInterceptor for Panicky {
    type State = ();

    fn on_send(&self, record: &mut Record) {
        if self.in_send && record.key_bytes().is_some_and(|k| &k[..] == b"panic") {
            record.headers_mut().push(Header::new("half-done", "yes"));
            panic!("on_send of a broken interceptor");
        }
    }

    fn on_acknowledgement(&self, _: (), outcome: Result<&RecordMetadata, &Error>) {
        if !self.in_send && outcome.is_ok() {
            panic!("on_acknowledgement of a broken interceptor");
        }
    }
}

#[tokio::test]
async fn a_panicking_interceptor_is_skipped_and_the_record_goes_on() {
    let topic = create_topic("icpt-panic", 1, &[]).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let producer = producer_builder()
        .interceptor(Panicky { in_send: true })
        .interceptor(Panicky { in_send: false })
        .interceptor(Recorder::new("after", None, &log))
        .build()
        .unwrap();
    let mut futures = Vec::new();
    for i in 0..4 {
        let key = if i % 2 == 0 { "panic" } else { "calm" };
        futures.push(producer.send(Record::new(&topic).key(key).value(i.to_string())).await.unwrap());
    }
    for f in futures {
        f.await.unwrap();
    }
    // A callback after the panics still runs.
    let (tx, rx) = tokio::sync::oneshot::channel();
    producer
        .send_with_callback(Record::new(&topic).key("panic").value("cb"), move |r| {
            let _ = tx.send(r.is_ok());
        })
        .await
        .unwrap();
    assert!(rx.await.unwrap());
    producer.close(Duration::from_secs(30)).await.unwrap();
    let acked = acks(&log.lock(), "after");
    assert_eq!(acked.len(), 5, "the interceptor after the broken ones saw every record: {acked:?}");
    assert!(acked.iter().all(|(_, r, _)| r.is_ok()));
    let read = TopicReader::new(&bootstrap()).unwrap().read_to_end(&topic).await.unwrap();
    assert_eq!(read.len(), 5, "every record was written");
    // A panicking on_send's changes stay (documented).
    assert!(read[0].headers.contains(&Header::new("half-done", "yes")));
}
