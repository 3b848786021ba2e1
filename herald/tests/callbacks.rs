//! Delivery callbacks that call back into the producer, on every path where herald
//! fails records: delivery timeout while queued and while in flight, close with
//! records pending, and a runtime shut down under the producer. (Compression and
//! authentication failures are covered by `producer::sender`'s unit tests: neither
//! can be caused from outside on the embedded cluster.)
//!
//! Each record's callback does one of three things when its record fails: sends a
//! record again to the same partition (the "retry from the callback" pattern),
//! calls `flush` and other producer methods, or panics. The producer must keep
//! working: every callback runs exactly once, a panic is caught and logged, and
//! nothing hangs. Callbacks run where the producer holds none of its locks (see
//! DESIGN.md, "No user code under a herald lock").

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use herald::mock::MockCluster;
use herald::{ErrorKind, Producer, Record, RecordMetadata};
use parking_lot::Mutex;

/// What happened to the records a test sent.
#[derive(Default)]
struct Outcomes {
    /// Per original record: how many times its callback ran, and whether with Ok.
    calls: Mutex<Vec<(usize, bool)>>,
    /// Records sent again from callbacks, and how many of those resolved.
    resent: AtomicUsize,
    resent_resolved: AtomicUsize,
    /// `flush` calls spawned from callbacks that returned.
    flushed: AtomicUsize,
    /// `flush` and `close` awaited inside a callback, refused at once.
    refused: AtomicUsize,
}

impl Outcomes {
    fn new(n: usize) -> Arc<Outcomes> {
        Arc::new(Outcomes { calls: Mutex::new(vec![(0, false); n]), ..Outcomes::default() })
    }

    fn each_ran_once(&self) -> bool {
        self.calls.lock().iter().all(|(n, _)| *n == 1)
    }
}

/// The callback of original record `i`: notes its outcome; on failure re-sends
/// (i % 3 == 0), calls producer methods (i % 3 == 1; record 1 also waits for
/// `flush` and `close` inside the callback, refused at once, and spawns a `flush`),
/// or panics (i % 3 == 2).
fn callback(
    p: &Producer,
    i: usize,
    out: &Arc<Outcomes>,
) -> impl FnOnce(herald::Result<RecordMetadata>) + Send + 'static {
    let (p, out) = (p.clone(), out.clone());
    move |r| {
        let failed = r.is_err();
        {
            let mut calls = out.calls.lock();
            calls[i].0 += 1;
            calls[i].1 = !failed;
        }
        if !failed {
            return;
        }
        match i % 3 {
            0 => {
                out.resent.fetch_add(1, Ordering::SeqCst);
                let o = out.clone();
                let again =
                    p.send_with_callback(Record::new("t").partition(0).value(format!("again-{i}")), {
                        let o = o.clone();
                        move |_| {
                            o.resent_resolved.fetch_add(1, Ordering::SeqCst);
                        }
                    });
                // A send that must wait is driven by a task: the callback runs in
                // the producer's runtime context.
                tokio::spawn(async move {
                    if again.await.is_err() {
                        // Refused (e.g. closed): its callback will never run.
                        o.resent_resolved.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
            1 => {
                let _ = p.config().linger;
                let _ = p.topic("t");
                let _ = p.try_send(Record::new("t").partition(0).value("try"));
                if i == 1 {
                    // Waiting here would wait for the task running this callback.
                    for r in [p.flush().now_or_never(), p.close(Duration::ZERO).now_or_never()] {
                        match r {
                            Some(Err(e)) if matches!(e.kind(), ErrorKind::InCallback { .. }) => {
                                out.refused.fetch_add(1, Ordering::SeqCst);
                            }
                            other => panic!("a flush or close waited in a callback: {other:?}"),
                        }
                    }
                    let o = out.clone();
                    tokio::spawn(async move {
                        if p.flush().await.is_ok() {
                            o.flushed.fetch_add(1, Ordering::SeqCst);
                        }
                    });
                }
            }
            _ => panic!("a delivery callback that panics (record {i}); herald must catch it"),
        }
    }
}

async fn cluster() -> MockCluster {
    let c = MockCluster::builder().brokers(1).start().await.unwrap();
    c.create_topic("t", 1).unwrap();
    c
}

/// The settings of the hang reported in issue 10.
fn producer(c: &MockCluster) -> herald::ProducerBuilder {
    Producer::builder()
        .bootstrap_servers(c.bootstrap())
        .delivery_timeout(Duration::from_millis(3000))
        .request_timeout(Duration::from_millis(3000))
        .max_in_flight(1)
        .linger(Duration::ZERO)
        .retry_backoff_max(Duration::from_millis(200))
        .max_block(Duration::from_secs(10))
}

/// A producer whose records outlive a broker stalled for 30 s.
fn patient(bootstrap: &str) -> herald::ProducerBuilder {
    Producer::builder()
        .bootstrap_servers(bootstrap)
        .linger(Duration::ZERO)
        .delivery_timeout(Duration::from_secs(60))
        .request_timeout(Duration::from_secs(30))
}

/// Warms `p` up (metadata, connection), then makes the broker answer in 30 s.
async fn stall(c: &MockCluster, p: &Producer) {
    p.send_and_wait(Record::new("t").partition(0).value("warm")).await.unwrap();
    c.set_latency(Duration::from_secs(30));
}

/// Sends `n` records 20 ms apart, each with [`callback`].
async fn send_all(p: &Producer, n: usize, out: &Arc<Outcomes>) {
    for i in 0..n {
        p.send_with_callback(Record::new("t").partition(0).value(format!("r{i}")), callback(p, i, out))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (bounded) until every record sent again from a callback has resolved.
async fn resends_resolve(out: &Outcomes) {
    for _ in 0..300 {
        if out.resent_resolved.load(Ordering::SeqCst) == out.resent.load(Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{} of {} records sent from callbacks resolved in 30 s",
        out.resent_resolved.load(Ordering::SeqCst),
        out.resent.load(Ordering::SeqCst)
    );
}

/// Sends `n` records with callbacks to a broker that has turned too slow, so that
/// every one passes `delivery.timeout.ms`; then checks that `flush` returns, every
/// callback ran once with an error, the records sent from callbacks resolve once
/// the broker is fast again, and the producer still works.
async fn expire_with_callbacks(c: &MockCluster, p: &Producer, n: usize) -> Arc<Outcomes> {
    stall(c, p).await;
    let out = Outcomes::new(n);
    send_all(p, n, &out).await;
    tokio::time::timeout(Duration::from_secs(20), p.flush())
        .await
        .expect("flush returned: no callback deadlocked the producer")
        .unwrap();
    assert!(out.each_ran_once(), "every callback ran exactly once by flush: {:?}", out.calls.lock());
    assert!(out.calls.lock().iter().all(|(_, ok)| !ok), "all failed: the broker was too slow");
    c.set_latency(Duration::ZERO);
    resends_resolve(&out).await;
    let md = tokio::time::timeout(Duration::from_secs(20), p.send_and_wait(Record::new("t").value("after")))
        .await
        .unwrap()
        .unwrap();
    assert!(md.offset().is_some(), "the producer still works");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_of_records_expiring_while_queued_may_send_flush_and_panic() {
    let c = cluster().await;
    let p = producer(&c).build().unwrap();
    // One request is in flight (max.in.flight 1) and the rest wait in the queue:
    // all pass delivery.timeout.ms, the queued ones in the sender's expiry sweep.
    let out = expire_with_callbacks(&c, &p, 20).await;
    assert_eq!(out.refused.load(Ordering::SeqCst), 2, "flush and close inside a callback were refused");
    for _ in 0..200 {
        if out.flushed.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(out.flushed.load(Ordering::SeqCst), 1, "the flush spawned from a callback returned");
    tokio::time::timeout(Duration::from_secs(20), p.close(Duration::from_secs(10))).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_of_records_expiring_in_flight_may_send_flush_and_panic() {
    let c = cluster().await;
    // Five requests in flight at once, each past request.timeout.ms and
    // delivery.timeout.ms together; a sixth waits behind them.
    let p = producer(&c).max_in_flight(5).build().unwrap();
    expire_with_callbacks(&c, &p, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_of_records_failed_by_close_may_send_flush_and_panic() {
    let c = cluster().await;
    let p = patient(&c.bootstrap()).max_in_flight(1).build().unwrap();
    stall(&c, &p).await;
    let out = Outcomes::new(9);
    send_all(&p, 9, &out).await;
    let closed = tokio::time::timeout(Duration::from_secs(20), p.close(Duration::from_millis(500)))
        .await
        .expect("close returned: no callback deadlocked the producer");
    assert!(closed.is_err(), "records were still pending at the close deadline");
    // close returns once the callbacks of the records it failed have run.
    assert!(out.each_ran_once(), "{:?}", out.calls.lock());
    assert!(out.calls.lock().iter().all(|(_, ok)| !ok));
    // Records sent from those callbacks were refused (the producer is closed).
    resends_resolve(&out).await;
    c.set_latency(Duration::ZERO);
}

#[test]
fn callbacks_of_records_failed_when_the_runtime_shuts_down_may_send_flush_and_panic() {
    let out = Outcomes::new(9);
    let cluster_rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let c = cluster_rt.block_on(cluster());
    {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let out = out.clone();
        let bootstrap = c.bootstrap();
        let c = &c;
        rt.block_on(async move {
            let p = patient(&bootstrap).build().unwrap();
            stall(c, &p).await;
            send_all(&p, 9, &out).await;
        });
        // The producer's sender task is dropped with the runtime: it fails what is
        // pending, and the callbacks run on the delivery thread.
        drop(rt);
    }
    for _ in 0..200 {
        if out.each_ran_once() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(out.each_ran_once(), "{:?}", out.calls.lock());
    assert!(out.calls.lock().iter().all(|(_, ok)| !ok));
    c.set_latency(Duration::ZERO);
}

/// A partitioner that panics for records whose key is "boom".
#[derive(Debug)]
struct Touchy;

impl herald::Partitioner for Touchy {
    fn partition(
        &self,
        _topic: &str,
        key: Option<&[u8]>,
        _value: Option<&[u8]>,
        _partitions: &herald::partitioner::Partitions<'_>,
    ) -> i32 {
        assert_ne!(key, Some(&b"boom"[..]), "a partitioner that panics");
        0
    }
}

#[tokio::test]
async fn a_panicking_partitioner_refuses_its_record_and_the_producer_goes_on() {
    let c = cluster().await;
    let p = producer(&c).partitioner(Touchy).build().unwrap();
    let e = p.send(Record::new("t").key("boom").value("v")).await.unwrap_err();
    assert!(e.to_string().contains("partition -1"), "{e}");
    let md = p.send_and_wait(Record::new("t").key("fine").value("v")).await.unwrap();
    assert_eq!(md.partition(), 0);
}

/// A loop that sends record after record, never awaiting anything but `send`, on
/// a current-thread runtime: the sender task shares the loop's thread. `send`
/// takes tokio's cooperative budget, so the loop yields now and then and records
/// are delivered while it runs, not only once it ends (or the buffer fills).
#[tokio::test(flavor = "current_thread")]
async fn a_send_loop_that_never_awaits_anything_else_does_not_starve_the_sender() {
    let c = cluster().await;
    let p = Producer::builder().bootstrap_servers(c.bootstrap()).linger(Duration::ZERO).build().unwrap();
    p.send_and_wait(Record::new("t").partition(0).value("warm")).await.unwrap();
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut during = 0;
    for i in 0..20_000 {
        let d = delivered.clone();
        p.send_with_callback(Record::new("t").partition(0).value(format!("r{i}")), move |r| {
            if r.is_ok() {
                d.fetch_add(1, Ordering::SeqCst);
            }
        })
        .await
        .unwrap();
        during = delivered.load(Ordering::SeqCst);
    }
    assert!(during > 0, "no record was delivered while the loop ran: the sender was starved");
    p.flush().await.unwrap();
    assert_eq!(delivered.load(Ordering::SeqCst), 20_000);
}
