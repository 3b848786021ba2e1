//! The sender's logic under `tokio::time::pause`, against a scripted transport:
//! retries and their backoff, leader moves (KIP-951 hints and metadata), sequence
//! errors and epoch bumps, batches split after MESSAGE_TOO_LARGE (KIP-126),
//! delivery timeout and close — fast, deterministic, no
//! sockets. The producer is the real one (`Producer::send`, the accumulator, the
//! sender task); only the network is a script.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::transport::{Answer, Target, Transport, TxnRequest, TxnResponse};
use super::{Producer, ProducerBuilder};
use crate::connection::BrokerAddr;
use crate::error::{Error, ErrorCode, ErrorKind, TimeoutKind};
use crate::metadata::{PartitionInfo, Snapshot, TopicInfo};
use crate::protocol::batch::producer_fields;
use crate::record::Record;

/// How the scripted broker answers one Produce request.
#[derive(Clone, Debug)]
enum Reply {
    /// Written: the next offsets of the partition.
    Ok,
    /// This error code, and optionally a KIP-951 leader hint.
    Code(ErrorCode, Option<i32>),
    /// No answer: the request fails with this error (a timeout, a lost connection).
    NoAnswer(Error),
    /// The reply after a delay.
    After(Duration, Box<Reply>),
}

/// One Produce request as the scripted broker saw it.
#[derive(Clone, Debug, PartialEq)]
struct Sent {
    at: Instant,
    node: i32,
    epoch: i16,
    base_sequence: i32,
    records: i32,
    /// (partition, records) of every batch in the request.
    batches: Vec<(i32, i32)>,
}

#[derive(Default)]
struct Script {
    /// The leader of partition 0 of topic "t" that metadata reports.
    leader: i32,
    /// Replies to Produce requests, in order; once empty, `Ok`.
    replies: VecDeque<Reply>,
    /// Every Produce request, in order.
    sent: Vec<Sent>,
    metadata_requests: usize,
    /// How long a Metadata answer takes.
    metadata_delay: Duration,
    next_offset: i64,
    producer_id: (i64, i16),
    /// Partitions of topic "t" (0 is taken as 1), all led by `leader`.
    partitions: usize,
    /// The topic's `max.message.bytes`: a larger batch is refused with
    /// MESSAGE_TOO_LARGE, whatever the reply says.
    max_message_bytes: Option<usize>,
    /// Whether the broker checks idempotent sequences, as Kafka's
    /// `ProducerStateManager`: per partition, the epoch and next sequence.
    check_sequences: bool,
    sequences: HashMap<i32, (i16, i32)>,
    /// The values written, per partition, in offset order.
    log: HashMap<i32, Vec<Vec<u8>>>,
}

impl Script {
    /// What the broker says to one partition's batch: the limit and sequence
    /// checks first, then `reply`; a batch written goes into the log.
    fn judge(&mut self, partition: i32, bytes: &bytes::Bytes, reply: ErrorCode) -> ErrorCode {
        if self.max_message_bytes.is_some_and(|max| bytes.len() > max) {
            return ErrorCode::MESSAGE_TOO_LARGE;
        }
        let (_, epoch, seq, count) = producer_fields(bytes).unwrap_or((-1, -1, -1, 0));
        if self.check_sequences && seq >= 0 {
            let code = match self.sequences.get(&partition) {
                Some((e, next)) if *e == epoch && seq == *next => ErrorCode::NONE,
                Some((e, next)) if *e == epoch && seq < *next => ErrorCode::DUPLICATE_SEQUENCE_NUMBER,
                Some((e, _)) if *e > epoch => ErrorCode::INVALID_PRODUCER_EPOCH,
                _ if seq == 0 => ErrorCode::NONE,
                _ => ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
            };
            if !code.is_ok() {
                return code;
            }
        }
        if reply.is_ok() {
            if seq >= 0 {
                self.sequences.insert(partition, (epoch, seq + count));
            }
            if let Ok(Some(h)) = crate::protocol::records::read_header(bytes) {
                let records = crate::protocol::records::read_records(&h, bytes).unwrap_or_default();
                let log = self.log.entry(partition).or_default();
                log.extend(records.into_iter().map(|r| r.value.map(|v| v.to_vec()).unwrap_or_default()));
            }
        }
        reply
    }
}

/// A transport whose broker is a script: nodes 1 and 2, topic "t" with one
/// partition.
#[derive(Clone, Default)]
struct Scripted(Arc<Mutex<Script>>);

fn addr(node: i32) -> BrokerAddr {
    BrokerAddr { node_id: Some(node), host: "127.0.0.1".into(), port: 9000 + node as u16 }
}

impl Transport for Scripted {
    fn node_ready(&mut self, _node: i32) -> bool {
        true
    }

    fn next_retry_at(&self) -> Option<Instant> {
        None
    }

    fn knows(&self, node: i32) -> bool {
        node == 1 || node == 2
    }

    fn add_broker(&mut self, _addr: BrokerAddr) {}

    fn set_brokers(&mut self, _brokers: HashMap<i32, BrokerAddr>) {}

    fn close_node(&mut self, _node: i32) {}

    fn close_all(&mut self) {}

    fn produce(
        &mut self,
        node: i32,
        req: ProduceRequest,
        _expect_response: bool,
        _max_version: Option<i16>,
    ) -> Result<(Arc<str>, Answer<Option<ProduceResponse>>), Error> {
        let mut s = self.0.lock();
        let batches: Vec<(i32, i32)> = req.topic_data[0]
            .partition_data
            .iter()
            .map(|pd| {
                let bytes = pd.records.clone().unwrap_or_default();
                (pd.index, producer_fields(&bytes).map_or(0, |f| f.3))
            })
            .collect();
        let pd = &req.topic_data[0].partition_data[0];
        let bytes = pd.records.clone().unwrap_or_default();
        let (_, epoch, base_sequence, records) = producer_fields(&bytes).unwrap_or((-1, -1, -1, 0));
        s.sent.push(Sent {
            at: Instant::now(),
            node,
            epoch,
            base_sequence,
            records,
            batches: batches.clone(),
        });
        let mut reply = s.replies.pop_front().unwrap_or(Reply::Ok);
        let mut delay = Duration::ZERO;
        while let Reply::After(d, r) = reply {
            delay += d;
            reply = *r;
        }
        let answer = match reply {
            Reply::NoAnswer(e) => Err(e),
            Reply::Ok | Reply::Code(..) => {
                let (code, hint) = match reply {
                    Reply::Code(c, h) => (c, h),
                    _ => (ErrorCode::NONE, None),
                };
                let mut t = TopicProduceResponse::default();
                t.name = TopicName(StrBytes::from_static_str("t"));
                for (pd, (index, records)) in req.topic_data[0].partition_data.iter().zip(batches) {
                    let bytes = pd.records.clone().unwrap_or_default();
                    let code = s.judge(index, &bytes, code);
                    let mut p = PartitionProduceResponse::default();
                    p.index = index;
                    p.error_code = code.code();
                    p.base_offset = if code.is_ok() { s.next_offset } else { -1 };
                    if code.is_ok() {
                        s.next_offset += i64::from(records);
                    }
                    if let Some(h) = hint {
                        p.current_leader.leader_id = BrokerId(h);
                        s.leader = h; // the cluster's truth, for later metadata
                    }
                    t.partition_responses.push(p);
                }
                let mut resp = ProduceResponse::default();
                resp.responses.push(t);
                Ok(Some(resp))
            }
            Reply::After(..) => unreachable!("unwrapped above"),
        };
        Ok((
            Arc::from(format!("node {node}")),
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                answer
            }),
        ))
    }

    fn metadata(&mut self, _topics: &[Arc<str>]) -> Option<Answer<Snapshot>> {
        let mut s = self.0.lock();
        s.metadata_requests += 1;
        let snapshot = Snapshot {
            brokers: [(1, addr(1)), (2, addr(2))].into_iter().collect(),
            topics: vec![TopicInfo {
                name: Arc::from("t"),
                id: uuid::Uuid::nil(),
                error: ErrorCode::NONE,
                partitions: (0..s.partitions.max(1))
                    .map(|_| PartitionInfo {
                        leader: s.leader,
                        leader_epoch: 0,
                        replicas: vec![],
                        isr: vec![],
                    })
                    .collect(),
            }],
        };
        let delay = s.metadata_delay;
        Some(Box::pin(async move {
            tokio::time::sleep(delay).await;
            Ok(snapshot)
        }))
    }

    fn init_producer_id(&mut self) -> Option<Answer<(i64, i16)>> {
        let id = self.0.lock().producer_id;
        Some(Box::pin(async move { Ok(id) }))
    }

    fn call(
        &mut self,
        _target: &Target,
        req: TxnRequest,
        _max_version: Option<i16>,
    ) -> Result<Answer<TxnResponse>, Error> {
        Err(Error::protocol("scripted", format!("no script for {}", req.name())))
    }
}

/// A producer over a scripted broker whose partition "t"/0 is led by node 1.
fn producer(b: ProducerBuilder, replies: Vec<Reply>) -> (Producer, Scripted) {
    let script = Scripted::default();
    {
        let mut s = script.0.lock();
        s.leader = 1;
        s.replies = replies.into();
        s.producer_id = (7, 0);
    }
    let transport = script.clone();
    let p = b
        .bootstrap_servers("127.0.0.1:1")
        .linger(Duration::ZERO)
        .retry_backoff(Duration::from_millis(100))
        .retry_backoff_max(Duration::from_millis(1000))
        .build_with(move |_| Ok(Box::new(transport)))
        .unwrap();
    (p, script)
}

fn record(v: &str) -> Record {
    Record::new("t").partition(0).value(v.to_owned())
}

fn sent(s: &Scripted) -> Vec<Sent> {
    s.0.lock().sent.clone()
}

/// The gaps between consecutive requests, in ms.
fn gaps(sent: &[Sent]) -> Vec<u128> {
    sent.windows(2).map(|w| (w[1].at - w[0].at).as_millis()).collect()
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_with_jitter_then_deliver() {
    let not_enough = || Reply::Code(ErrorCode::NOT_ENOUGH_REPLICAS, None);
    let (p, s) = producer(Producer::builder(), vec![not_enough(), not_enough(), not_enough()]);
    let md = p.send_and_wait(record("v")).await.unwrap();
    assert_eq!(md.offset(), Some(0));
    let sent = sent(&s);
    assert_eq!(sent.len(), 4);
    // retry.backoff.ms 100, doubled per attempt, ±20%.
    let g = gaps(&sent);
    for (gap, base) in g.iter().zip([100u128, 200, 400]) {
        assert!(*gap >= base * 8 / 10 && *gap <= base * 12 / 10 + 1, "gaps {g:?}");
    }
    assert!(
        sent.iter().all(|x| x.base_sequence == 0 && x.epoch == 0),
        "the same sequence every time: {sent:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_new_topics_metadata_does_not_wait_out_the_backoff_after_the_first_answer() {
    let (p, s) = producer(Producer::builder(), vec![]);
    // The producer's first metadata answer (no topics yet) comes at once; the
    // first record comes just after it, well within retry.backoff.ms (100 ms).
    for _ in 0..100 {
        if s.0.lock().metadata_requests > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(s.0.lock().metadata_requests, 1, "the first metadata request went out at start");
    tokio::time::sleep(Duration::from_millis(1)).await;
    let t0 = Instant::now();
    p.send_and_wait(record("v")).await.unwrap();
    let sent = sent(&s);
    assert_eq!(s.0.lock().metadata_requests, 2, "one more, for the topic");
    assert!(sent[0].at - t0 < Duration::from_millis(10), "the record waited {:?}", sent[0].at - t0);
}

#[tokio::test(start_paused = true)]
async fn a_kip_951_leader_hint_moves_the_partition_at_once() {
    let (p, s) = producer(Producer::builder(), vec![Reply::Code(ErrorCode::NOT_LEADER_OR_FOLLOWER, Some(2))]);
    // Metadata answers take 5 s: the retry must not wait for them.
    s.0.lock().metadata_delay = Duration::from_secs(5);
    p.send_and_wait(record("v")).await.unwrap();
    let sent = sent(&s);
    let nodes: Vec<i32> = sent.iter().map(|x| x.node).collect();
    assert_eq!(nodes, [1, 2], "the retry went to the leader the answer named");
    assert!(gaps(&sent)[0] < 1000, "without waiting for metadata: {:?}", gaps(&sent));
}

#[tokio::test(start_paused = true)]
async fn a_moved_leader_is_found_through_metadata() {
    let (p, s) = producer(Producer::builder(), vec![Reply::Code(ErrorCode::NOT_LEADER_OR_FOLLOWER, None)]);
    let before = s.0.lock().metadata_requests;
    s.0.lock().leader = 2;
    p.send_and_wait(record("v")).await.unwrap();
    let nodes: Vec<i32> = sent(&s).iter().map(|x| x.node).collect();
    // The first attempt still went to node 1 (the metadata fetched before the move
    // said so — or, if the first metadata came after the move, only node 2).
    assert_eq!(nodes.last(), Some(&2), "{nodes:?}");
    assert!(s.0.lock().metadata_requests > before, "metadata was asked again");
}

#[tokio::test(start_paused = true)]
async fn sequences_continue_and_a_lost_producer_state_bumps_the_epoch() {
    let (p, s) = producer(Producer::builder(), vec![]);
    p.send_and_wait(record("a")).await.unwrap();
    p.send_and_wait(record("b")).await.unwrap();
    s.0.lock().replies.push_back(Reply::Code(ErrorCode::UNKNOWN_PRODUCER_ID, None));
    let md = p.send_and_wait(record("c")).await.unwrap();
    assert_eq!(md.offset(), Some(2));
    let stamps: Vec<(i16, i32)> = sent(&s).iter().map(|x| (x.epoch, x.base_sequence)).collect();
    // The broker lost our state for the third batch: it goes again under epoch 1
    // from sequence 0 (KIP-360).
    assert_eq!(stamps, [(0, 0), (0, 1), (0, 2), (1, 0)]);
}

#[tokio::test(start_paused = true)]
async fn a_duplicate_sequence_counts_as_written() {
    let (p, s) = producer(Producer::builder(), vec![Reply::Code(ErrorCode::DUPLICATE_SEQUENCE_NUMBER, None)]);
    let md = p.send_and_wait(record("a")).await.unwrap();
    assert_eq!(md.offset(), None, "the broker kept the first copy and did not say where");
    assert_eq!(sent(&s).len(), 1, "not sent again");
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_request_is_retried_with_the_same_sequence() {
    let lost = Error::timeout(TimeoutKind::Request, Duration::from_secs(30));
    let (p, s) = producer(
        Producer::builder(),
        vec![Reply::After(Duration::from_secs(30), Box::new(Reply::NoAnswer(lost)))],
    );
    p.send_and_wait(record("a")).await.unwrap();
    let sent = sent(&s);
    assert_eq!(sent.len(), 2);
    assert_eq!((sent[0].epoch, sent[0].base_sequence), (sent[1].epoch, sent[1].base_sequence));
}

#[tokio::test(start_paused = true)]
async fn delivery_timeout_ends_the_retries_and_names_the_last_error() {
    let replies = vec![Reply::Code(ErrorCode::NOT_ENOUGH_REPLICAS, None); 1000];
    let (p, _s) = producer(
        Producer::builder()
            .delivery_timeout(Duration::from_millis(2000))
            .request_timeout(Duration::from_millis(1000)),
        replies,
    );
    let started = Instant::now();
    let e = p.send_and_wait(record("a")).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(e.kind(), ErrorKind::Timeout { waiting_for: TimeoutKind::Delivery, .. }), "{e}");
    assert!(e.to_string().contains("NOT_ENOUGH_REPLICAS"), "{e}");
    assert!(!e.may_have_been_written(), "every attempt was refused: {e}");
    // Given up when the next backoff would pass the deadline, never after it.
    assert!(took <= Duration::from_millis(2000) && took >= Duration::from_millis(1000), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_record_past_delivery_timeout_may_have_been_written() {
    let lost = || {
        Reply::After(
            Duration::from_millis(500),
            Box::new(Reply::NoAnswer(Error::timeout(TimeoutKind::Request, Duration::from_millis(500)))),
        )
    };
    let (p, _s) = producer(
        Producer::builder()
            .delivery_timeout(Duration::from_millis(1500))
            .request_timeout(Duration::from_millis(500)),
        vec![lost(); 100],
    );
    let e = p.send_and_wait(record("a")).await.unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert!(e.may_have_been_written(), "sent and never answered: {e}");
}

#[tokio::test(start_paused = true)]
async fn close_waits_for_what_is_in_flight_then_fails_the_rest_at_its_deadline() {
    let (p, _s) = producer(
        Producer::builder()
            .delivery_timeout(Duration::from_secs(120))
            .request_timeout(Duration::from_secs(60)),
        vec![
            Reply::After(Duration::from_millis(300), Box::new(Reply::Ok)),
            Reply::After(Duration::from_secs(30), Box::new(Reply::Ok)),
        ],
    );
    let first = p.send(record("quick")).await.unwrap();
    let started = Instant::now();
    p.close(Duration::from_secs(5)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300), "close waited for the answer");
    assert_eq!(first.await.unwrap().offset(), Some(0));
    assert!(p.send(record("late")).await.unwrap_err().kind() == &ErrorKind::Closed);

    let (p, _s) = producer(
        Producer::builder()
            .delivery_timeout(Duration::from_secs(120))
            .request_timeout(Duration::from_secs(60)),
        vec![Reply::After(Duration::from_secs(30), Box::new(Reply::Ok))],
    );
    let slow = p.send(record("slow")).await.unwrap();
    let started = Instant::now();
    let e = p.close(Duration::from_secs(2)).await.unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert!(started.elapsed() <= Duration::from_millis(2100), "{:?}", started.elapsed());
    let e = slow.await.unwrap_err();
    assert!(e.may_have_been_written(), "in a request not yet answered: {e}");
}

/// A producer over a scripted broker leading all `partitions` partitions of "t",
/// answering every request after `rtt`, with `linger.ms` 5 and `batch.size` 1200.
fn spread_producer(partitions: usize, rtt: Duration) -> (Producer, Scripted) {
    spread_producer_with(partitions, rtt, |b| b)
}

/// [`spread_producer`] with more settings.
fn spread_producer_with(
    partitions: usize,
    rtt: Duration,
    more: impl FnOnce(ProducerBuilder) -> ProducerBuilder,
) -> (Producer, Scripted) {
    let script = Scripted::default();
    {
        let mut s = script.0.lock();
        s.leader = 1;
        s.partitions = partitions;
        s.replies = vec![Reply::After(rtt, Box::new(Reply::Ok)); 1000].into();
    }
    let transport = script.clone();
    let b = Producer::builder()
        .bootstrap_servers("127.0.0.1:1")
        .linger(Duration::from_millis(5))
        .batch_size(1200)
        .idempotence(false);
    let p = more(b).build_with(move |_| Ok(Box::new(transport))).unwrap();
    (p, script)
}

/// After one record to warm up (metadata), sends `n` keyless 100-byte records
/// (round-robin), `per_ms` each millisecond (tokio's timer ticks in whole
/// milliseconds); returns when the first was sent, and their futures.
async fn spread(p: &Producer, n: usize, per_ms: usize) -> (Instant, Vec<crate::producer::DeliveryFuture>) {
    p.send_and_wait(Record::new("t").partition(0).value(vec![b'w'; 100])).await.unwrap();
    let start = Instant::now();
    let mut futures = Vec::new();
    for i in 0..n {
        futures.push(p.send(Record::new("t").value(vec![b'v'; 100])).await.unwrap());
        if (i + 1) % per_ms == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    (start, futures)
}

#[tokio::test(start_paused = true)]
async fn an_idle_broker_takes_its_partitions_batches_once_they_hold_a_batch_between_them() {
    // 6 partitions, 1200-byte batches: each partition's batch would need ~10
    // records (60 in all, 15 ms at 4 per ms) to fill, and lingers 5 ms. Spread
    // over 6 partitions, 1200 bytes are pending after 8 records (2 ms): the idle
    // broker gets them all in one request, before linger.ms.
    let (p, s) = spread_producer(6, Duration::from_micros(100));
    spread_leaves_in_one_request(&p, &s, Duration::from_millis(2)).await;
}

/// Spreads 12 records over the 6 partitions of [`spread_producer`] and checks
/// that the first request (after the warm-up record's) carried every
/// partition's batch, within `within` of the first send.
async fn spread_leaves_in_one_request(p: &Producer, s: &Scripted, within: Duration) {
    let (start, futures) = spread(p, 12, 4).await;
    for f in futures {
        f.await.unwrap();
    }
    let sent = sent(s);
    let first = &sent[1]; // sent[0] is the warm-up record
    assert!(first.batches.len() >= 6, "every partition's batch in one request: {sent:?}");
    assert!(first.at - start <= within, "before linger.ms: {:?}", first.at - start);
}

#[tokio::test(start_paused = true)]
async fn compressed_batches_sealed_together_leave_together() {
    // As above with zstd: the idle broker's six batches are compressed apart, and
    // would leave one request each as each compression ends; they wait for each
    // other and leave in one request, still before linger.ms.
    for _ in 0..5 {
        let (p, s) =
            spread_producer_with(6, Duration::from_micros(100), |b| b.set("compression.type", "zstd"));
        // The wait adds at most 1 ms.
        spread_leaves_in_one_request(&p, &s, Duration::from_millis(3)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn while_a_request_is_in_flight_partial_batches_wait_for_linger() {
    // The broker answers after 50 ms: while the first request is out, records
    // spread over the partitions stay until linger.ms (or a full batch).
    let (p, s) = spread_producer(6, Duration::from_millis(50));
    let first = p.send(Record::new("t").partition(0).value(vec![b'w'; 100])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(6)).await; // the first request is out
    assert_eq!(sent(&s).len(), 1);
    let t0 = Instant::now();
    let mut futures = Vec::new();
    for _ in 0..12 {
        futures.push(p.send(Record::new("t").value(vec![b'v'; 100])).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(4)).await;
    assert_eq!(sent(&s).len(), 1, "nothing before linger.ms while a request is in flight: {:?}", sent(&s));
    first.await.unwrap();
    for f in futures {
        f.await.unwrap();
    }
    let sent = sent(&s);
    assert!(sent[1].at - t0 >= Duration::from_millis(5), "after linger.ms: {:?}", sent[1].at - t0);
}

#[tokio::test(start_paused = true)]
async fn a_due_batch_takes_the_other_partitions_open_batches_along() {
    // One record lingers its 5 ms on partition 0; the open batches of the other
    // partitions (opened 1–2 ms later) go in the same request.
    let (p, s) = spread_producer(3, Duration::from_micros(100));
    let mut futures = Vec::new();
    for partition in 0..3 {
        futures.push(p.send(Record::new("t").partition(partition).value(vec![b'v'; 100])).await.unwrap());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for f in futures {
        f.await.unwrap();
    }
    let sent = sent(&s);
    assert_eq!(sent.len(), 1, "one request: {sent:?}");
    let mut parts: Vec<i32> = sent[0].batches.iter().map(|b| b.0).collect();
    parts.sort();
    assert_eq!(parts, [0, 1, 2]);
}

/// A producer over a scripted broker whose topic "t" has `max.message.bytes`
/// `limit` and checks idempotent sequences; `linger.ms` 20, answers after 10 ms.
fn limited_producer(b: ProducerBuilder, limit: usize) -> (Producer, Scripted) {
    let script = Scripted::default();
    {
        let mut s = script.0.lock();
        s.leader = 1;
        s.producer_id = (7, 0);
        s.max_message_bytes = Some(limit);
        s.check_sequences = true;
        s.replies = vec![Reply::After(Duration::from_millis(10), Box::new(Reply::Ok)); 1000].into();
    }
    let transport = script.clone();
    let p = b
        .bootstrap_servers("127.0.0.1:1")
        .linger(Duration::from_millis(20))
        .retry_backoff(Duration::from_millis(100))
        .build_with(move |_| Ok(Box::new(transport)))
        .unwrap();
    (p, script)
}

fn numbered(i: usize, len: usize) -> Vec<u8> {
    let mut v = format!("{i:05}").into_bytes();
    v.resize(len, b'.');
    v
}

/// Sends `values` to "t"/0 in one go (no await that yields between them, so they
/// land in one batch), every third with a callback; returns what each resolved to
/// (offset, or the error), in send order, once all have.
async fn send_all(p: &Producer, values: Vec<Vec<u8>>) -> Vec<Result<Option<i64>, Error>> {
    let n = values.len();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut futures = Vec::new();
    for (i, v) in values.into_iter().enumerate() {
        let r = Record::new("t").partition(0).value(v);
        if i % 3 == 0 {
            let seen = seen.clone();
            p.send_with_callback(r, move |res| seen.lock().push((i, res.map(|m| m.offset())))).await.unwrap();
        } else {
            futures.push((i, p.send(r).await.unwrap()));
        }
    }
    for (i, f) in futures {
        let r = f.await.map(|m| m.offset());
        seen.lock().push((i, r));
    }
    p.flush().await.unwrap();
    let mut seen = std::mem::take(&mut *seen.lock());
    seen.sort_by_key(|(i, _)| *i);
    let order: Vec<usize> = seen.iter().map(|(i, _)| *i).collect();
    assert_eq!(order, (0..n).collect::<Vec<_>>(), "every record resolved exactly once");
    seen.into_iter().map(|(_, r)| r).collect()
}

#[tokio::test(start_paused = true)]
async fn a_batch_too_large_is_split_and_every_record_written_once_in_order() {
    for idempotent in [true, false] {
        let (p, s) = limited_producer(Producer::builder().idempotence(idempotent), 1000);
        let values: Vec<Vec<u8>> = (0..30).map(|i| numbered(i, 100)).collect();
        let got = send_all(&p, values.clone()).await;
        let offsets: Vec<Option<i64>> = got.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(offsets, (0..30).map(Some).collect::<Vec<_>>(), "each record at its own offset");
        assert_eq!(s.0.lock().log[&0], values, "written once each, in order");
        let sent = sent(&s);
        assert_eq!(sent[0].records, 30, "one batch of 30 first: {sent:?}");
        if idempotent {
            // The parts fill the refused batch's sequences, in order.
            let accepted: Vec<(i32, i32)> =
                sent.iter().filter(|x| x.records < 30).map(|x| (x.base_sequence, x.records)).collect();
            assert_eq!(accepted.first().map(|a| a.0), Some(0), "{sent:?}");
            assert!(sent.iter().all(|x| x.epoch == 0), "no epoch bump: {sent:?}");
        }
        let m = p.metrics();
        assert!(m.batch_split_total >= 1, "{}", m.batch_split_total);
        assert_eq!(m.record_error_total, 0);
        assert_eq!(m.record_send_total, 30);
    }
}

#[tokio::test(start_paused = true)]
async fn batches_in_flight_behind_a_split_one_keep_their_sequences_and_follow_it() {
    let (p, s) = limited_producer(Producer::builder().max_in_flight(5), 1000);
    {
        // The 20-record batch is answered after 50 ms: the next one goes meanwhile.
        let mut s = s.0.lock();
        s.replies[1] = Reply::After(Duration::from_millis(50), Box::new(Reply::Ok));
    }
    // The broker holds state for us after the first batch: later ones pipeline.
    p.send_and_wait(Record::new("t").partition(0).value(numbered(0, 10))).await.unwrap();
    let mut values = vec![numbered(0, 10)];
    let mut futures = Vec::new();
    for i in 1..=20 {
        values.push(numbered(i, 100));
        futures.push(p.send(Record::new("t").partition(0).value(numbered(i, 100))).await.unwrap());
    }
    // Sealed by linger; in flight (10 ms) when the next, small, batch goes.
    tokio::time::sleep(Duration::from_millis(25)).await;
    values.push(numbered(21, 10));
    futures.push(p.send(Record::new("t").partition(0).value(numbered(21, 10))).await.unwrap());
    for (i, f) in futures.into_iter().enumerate() {
        assert_eq!(f.await.unwrap().offset(), Some(i as i64 + 1));
    }
    assert_eq!(s.0.lock().log[&0], values, "in order, once each");
    let sent = sent(&s);
    let stamps: Vec<(i16, i32, i32)> = sent.iter().map(|x| (x.epoch, x.base_sequence, x.records)).collect();
    // 0: the first record; 1..=20 refused whole, then in parts; 21 refused as out
    // of order while they were missing, then written with the same sequence.
    assert_eq!(stamps[1], (0, 1, 20), "{stamps:?}");
    assert_eq!(stamps[2], (0, 21, 1), "in flight behind the refused batch: {stamps:?}");
    assert_eq!(stamps.last(), Some(&(0, 21, 1)), "{stamps:?}");
    let parts: Vec<(i32, i32)> = stamps[3..stamps.len() - 1].iter().map(|x| (x.1, x.2)).collect();
    let mut next = 1;
    for (seq, n) in parts.iter().filter(|(_, n)| *n < 20) {
        // Parts refused again are split again: their sequences repeat in halves.
        assert!(*seq >= 1 && *seq + n <= 21, "{parts:?}");
        if *seq == next {
            next += n;
        }
    }
    assert_eq!(next, 21, "the parts cover the refused batch's sequences: {parts:?}");
}

#[tokio::test(start_paused = true)]
async fn a_single_record_too_large_fails_naming_its_size_and_the_limit() {
    let (p, s) = limited_producer(Producer::builder(), 1000);
    let e = p.send_and_wait(Record::new("t").partition(0).value(vec![b'x'; 2000])).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::MESSAGE_TOO_LARGE), "{e}");
    assert_eq!((e.topic(), e.partition()), (Some("t"), Some(0)));
    let text = e.to_string();
    assert!(text.contains("bytes on the wire") && text.contains("max.message.bytes"), "{text}");
    assert!(!e.may_have_been_written(), "{e}");
    assert_eq!(sent(&s).len(), 1, "not split, not retried");
    // The partition goes on: a gap in its sequences bumps its epoch (KIP-360).
    let md = p.send_and_wait(Record::new("t").partition(0).value(vec![b'y'; 10])).await.unwrap();
    assert_eq!(md.offset(), Some(0));
    assert_eq!(p.metrics().batch_split_total, 0);
}

#[tokio::test(start_paused = true)]
async fn a_compressed_batch_sized_by_a_wrong_ratio_estimate_is_split() {
    // Zeros compress ~100:1 and teach the estimate so; then records that do not
    // compress fill a batch far past batch.size on the wire.
    let (p, s) = limited_producer(Producer::builder().batch_size(4000).set("compression.type", "zstd"), 5000);
    let zeros: Vec<Vec<u8>> = (0..400).map(|_| vec![0u8; 100]).collect();
    for r in send_all(&p, zeros).await {
        r.unwrap();
    }
    let mut rng = fastrand::Rng::with_seed(7);
    let noise: Vec<Vec<u8>> = (0..400).map(|_| (0..100).map(|_| rng.u8(..)).collect()).collect();
    let got = send_all(&p, noise.clone()).await;
    let offsets: Vec<Option<i64>> = got.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(offsets, (400..800).map(Some).collect::<Vec<_>>());
    assert_eq!(s.0.lock().log[&0][400..], noise[..]);
    assert!(p.metrics().batch_split_total >= 1);
}
