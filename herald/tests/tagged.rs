//! Tagged records (`Producer::send_tagged`) and the producer's delivery handler
//! (`ProducerBuilder::on_delivery`), against the cluster under test: every
//! record accepted reaches the handler exactly once with its own tag and the
//! partition and offset it was written at (read back with `TopicReader`); a
//! producer without a handler refuses tagged records up front; a handler that
//! panics is caught and hears of the records after; interceptors see tagged
//! records' acknowledgements before the handler does.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use herald::interceptor::ProducerInterceptor;
use herald::{ErrorKind, Record, RecordMetadata, TopicReader};
use parking_lot::Mutex;
use support::{bootstrap, create_topic, producer_builder};

/// What the handler heard: per tag, the (partition, offset) or the error.
type Heard = Arc<Mutex<Vec<(u64, Result<(i32, i64), String>)>>>;

fn note(heard: &Heard, tag: u64, r: herald::Result<RecordMetadata>) {
    let r =
        r.map(|m| (m.partition(), m.offset().expect("acks=all gives offsets"))).map_err(|e| e.to_string());
    heard.lock().push((tag, r));
}

#[tokio::test]
async fn every_tagged_record_reaches_the_handler_once_with_where_it_was_written() {
    let topic = create_topic("tagged", 3, &[]).await;
    let heard: Heard = Arc::default();
    let h = heard.clone();
    let producer = producer_builder().on_delivery(move |tag, r| note(&h, tag, r)).build().unwrap();
    let n = 2_000u64;
    for tag in 0..n {
        // Tags need not be dense or ordered: spread them out.
        let tag = tag * 7 + 3;
        producer.send_tagged(Record::new(&topic).value(format!("v{tag}")), tag).await.unwrap();
    }
    producer.flush().await.unwrap();
    let heard = heard.lock().clone();
    assert_eq!(heard.len() as u64, n, "one outcome per record");
    let mut at: HashMap<(i32, i64), u64> = HashMap::new();
    for (tag, r) in &heard {
        let place = r.clone().unwrap_or_else(|e| panic!("tag {tag} failed: {e}"));
        assert!(at.insert(place, *tag).is_none(), "two tags for {place:?}");
    }
    let mut tags: Vec<u64> = heard.iter().map(|(t, _)| *t).collect();
    tags.sort_unstable();
    assert_eq!(tags, (0..n).map(|t| t * 7 + 3).collect::<Vec<_>>(), "each tag exactly once");
    let read = TopicReader::new(&bootstrap()).unwrap().read_to_end(&topic).await.unwrap();
    assert_eq!(read.len() as u64, n);
    for r in &read {
        let tag = at[&(r.partition, r.offset)];
        assert_eq!(r.value.as_deref(), Some(format!("v{tag}").as_bytes()), "the record at the tag's offset");
    }
    producer.close(std::time::Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn without_a_handler_a_tagged_record_is_refused_up_front() {
    let topic = create_topic("tagged-none", 1, &[]).await;
    let producer = producer_builder().build().unwrap();
    let e = producer.send_tagged(Record::new(&topic).value("x"), 1).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Config { name, .. } if name == "on_delivery"), "{e}");
    assert_eq!(e.topic(), Some(topic.as_str()), "the error names the topic");
    producer.flush().await.unwrap();
    let read = TopicReader::new(&bootstrap()).unwrap().read_to_end(&topic).await.unwrap();
    assert!(read.is_empty(), "nothing was written: {read:?}");
}

#[tokio::test]
async fn a_panicking_handler_is_caught_and_hears_of_the_records_after() {
    let topic = create_topic("tagged-panic", 1, &[]).await;
    let heard: Heard = Arc::default();
    let h = heard.clone();
    let producer = producer_builder()
        .linger(std::time::Duration::from_millis(50))
        .on_delivery(move |tag, r| {
            note(&h, tag, r);
            if tag % 10 == 0 {
                panic!("a delivery handler that panics (tag {tag}); herald must catch it");
            }
        })
        .build()
        .unwrap();
    // One batch: the records after a panicking call are in the same batch.
    for tag in 0..30 {
        producer.send_tagged(Record::new(&topic).value("x"), tag).await.unwrap();
    }
    producer.flush().await.unwrap();
    let mut tags: Vec<u64> = heard.lock().iter().map(|(t, _)| *t).collect();
    tags.sort_unstable();
    assert_eq!(tags, (0..30).collect::<Vec<_>>());
    // And the producer goes on.
    producer.send_tagged(Record::new(&topic).value("y"), 99).await.unwrap();
    producer.flush().await.unwrap();
    assert_eq!(heard.lock().last().map(|(t, _)| *t), Some(99));
}

/// Counts acknowledgements.
struct Acks(Arc<AtomicU64>);

impl ProducerInterceptor for Acks {
    type State = ();
    fn on_send(&self, _: &mut Record) {}
    fn on_acknowledgement(&self, _: (), _: Result<&RecordMetadata, &herald::Error>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn interceptors_see_a_tagged_record_acknowledged_before_the_handler_does() {
    let topic = create_topic("tagged-icpt", 2, &[]).await;
    let acks = Arc::new(AtomicU64::new(0));
    let seen_first = Arc::new(Mutex::new(Vec::new()));
    let (a, s) = (acks.clone(), seen_first.clone());
    let producer = producer_builder()
        .interceptor(Acks(acks.clone()))
        .on_delivery(move |tag, r| {
            assert!(r.is_ok(), "{r:?}");
            // How many acknowledgements the interceptor had seen when this ran.
            s.lock().push((tag, a.load(Ordering::SeqCst)));
        })
        .build()
        .unwrap();
    for tag in 0..50 {
        producer.send_tagged(Record::new(&topic).value("x"), tag).await.unwrap();
    }
    producer.flush().await.unwrap();
    let seen = seen_first.lock().clone();
    assert_eq!(seen.len(), 50);
    assert_eq!(acks.load(Ordering::SeqCst), 50);
    for (i, (tag, acked)) in seen.iter().enumerate() {
        assert!(*acked > i as u64, "tag {tag}: the handler ran before its interceptor ({acked} acks seen)");
    }
}

#[tokio::test]
async fn a_failed_tagged_record_reaches_the_handler_with_its_tag_and_the_error() {
    use kafka_protocol::messages::ApiKey;
    let topic = create_topic("tagged-fail", 1, &[]).await;
    let proxy = support::proxy::KafkaProxy::start(&bootstrap()).await;
    let heard: Heard = Arc::default();
    let h = heard.clone();
    let producer = herald::Producer::builder()
        .bootstrap_servers(proxy.bootstrap())
        .retries(0)
        .linger(std::time::Duration::from_millis(20))
        .max_block(std::time::Duration::from_secs(20))
        .on_delivery(move |tag, r| note(&h, tag, r))
        .build()
        .unwrap();
    // Metadata first, so that the five records go in one batch, in one request.
    producer.send_tagged(Record::new(&topic).value("first"), 100).await.unwrap();
    producer.flush().await.unwrap();
    proxy.close_on_next(ApiKey::Produce as i16, 1);
    for tag in 0..5 {
        producer.send_tagged(Record::new(&topic).value("x"), tag).await.unwrap();
    }
    tokio::time::timeout(std::time::Duration::from_secs(30), producer.flush())
        .await
        .expect("bounded")
        .unwrap();
    let heard = heard.lock().clone();
    assert_eq!(heard.len(), 6, "{heard:?}");
    assert!(heard[0].0 == 100 && heard[0].1.is_ok(), "{heard:?}");
    let mut failed: Vec<u64> = heard[1..]
        .iter()
        .map(|(t, r)| {
            let e = r.as_ref().expect_err("the connection closed under the request");
            assert!(e.contains(&topic), "the error names the topic: {e}");
            *t
        })
        .collect();
    failed.sort_unstable();
    assert_eq!(failed, vec![0, 1, 2, 3, 4]);
    producer.close(std::time::Duration::from_secs(5)).await.unwrap();
}
