//! The `mock_request` harness: request frames into the embedded cluster's
//! `MockCluster::handle_raw`, exactly as a broker handles a frame read off a socket.
//!
//! One current-thread tokio runtime on a paused clock and one 3-broker cluster per
//! process. Before every input the cluster is put back into the same state (every
//! topic deleted, the fixed topics recreated with the same ids), so an input always
//! does the same thing and the logs of earlier inputs do not pile up in memory.
//!
//! # Input layout
//! `[selector][rest…]`; the broker is `1 + selector % 3`, the mode `(selector / 3) % 4`:
//! - 0, **raw**: `rest` is the request frame (without its size prefix).
//! - 1, **header**: a correct request header for an API the cluster serves and a
//!   version from the input, then `rest` as the body: `[api][version][corr: i32][client id?][body…]`.
//! - 2, **produce**: a well-formed Produce request built from the input, whose record
//!   batches are raw bytes, raw bytes with a correct length and CRC, or batches built
//!   field by field from the input (valid framing and CRC, arbitrary header fields and
//!   records), sent one to three times (duplicates for the idempotence checks).
//! - 3, **sequence**: `rest` is up to 16 commands `[len: u16][command…]`, each a
//!   whole input of modes 0–2 (a 3 here is raw mode), run in order on the same
//!   cluster state: produce, then fetch or list offsets; create, then produce.
//!
//! Beyond "never panics", one oracle: a request the cluster accepted (header and
//! body decoded) must be answered. Closing the connection because the cluster cannot
//! encode its own answer (`encoding …`) is a bug, and panics here.

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use herald::mock::MockCluster;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, DeleteTopicsRequest, MetadataRequest, ProduceRequest, ResponseHeader, TopicName, TransactionalId,
};
use kafka_protocol::protocol::{Decodable, HeaderVersion, Request, StrBytes};
use uuid::Uuid;

use crate::build::{self, BatchSpec, RecordSpec};
use crate::input::Input;

/// The topics every input starts with: (name, partitions, configs).
pub const TOPICS: &[(&str, i32, &[(&str, &str)])] = &[
    ("t", 3, &[]),
    ("lat", 2, &[("message.timestamp.type", "LogAppendTime")]),
    ("cmp", 2, &[("cleanup.policy", "compact")]),
    ("small", 1, &[("max.message.bytes", "200")]),
    ("ts", 1, &[("message.timestamp.before.max.ms", "1000"), ("message.timestamp.after.max.ms", "1000")]),
    ("gz", 1, &[("compression.type", "gzip")]),
];

/// Topic names the structured modes pick from: the fixed topics and one that does
/// not exist.
const NAMES: &[&str] = &["t", "lat", "cmp", "small", "ts", "gz", "missing"];

/// The APIs the embedded cluster serves, and their versions.
pub const SERVED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 13),
    (ApiKey::Fetch, 4, 16),
    (ApiKey::ListOffsets, 1, 9),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 5),
];

/// Seeds fastrand before the fixed topics are recreated: their ids come from it.
const TOPIC_ID_SEED: u64 = 0x6865_7261_6c64;

/// The process-wide runtime and cluster.
pub struct MockEnv {
    rt: tokio::runtime::Runtime,
    cluster: MockCluster,
    /// The ids of [`TOPICS`] after a reset, in order.
    ids: Vec<Uuid>,
}

static ENV: LazyLock<MockEnv> = LazyLock::new(MockEnv::new);

/// Runs one `mock_request` input.
pub fn run_mock_request(data: &[u8]) {
    let env = &*ENV;
    env.reset();
    env.rt.block_on(env.run(data));
}

/// The process-wide environment (for tests and the seed generator).
pub fn env() -> &'static MockEnv {
    &ENV
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl MockEnv {
    fn new() -> MockEnv {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("tokio runtime");
        let cluster = rt
            .block_on(MockCluster::builder().brokers(3).auto_create_topics(true).start())
            .expect("starting the embedded cluster");
        let mut env = MockEnv { rt, cluster, ids: Vec::new() };
        env.reset();
        env.ids = env.topic_ids();
        env.reset();
        assert_eq!(env.ids, env.topic_ids(), "topic ids must be the same after every reset");
        env
    }

    /// The ids of [`TOPICS`], from a Metadata request.
    pub fn topic_ids(&self) -> Vec<Uuid> {
        let mut all = MetadataRequest::default();
        all.topics = None;
        let resp = self.call(1, 12, &all);
        TOPICS
            .iter()
            .map(|(name, _, _)| {
                resp.topics
                    .iter()
                    .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == *name))
                    .map(|t| t.topic_id)
                    .expect("fixed topic in metadata")
            })
            .collect()
    }

    /// The id of a fixed topic (nil for others).
    pub fn topic_id(&self, name: &str) -> Uuid {
        TOPICS.iter().position(|(n, _, _)| *n == name).map(|i| self.ids[i]).unwrap_or_default()
    }

    /// The leader of a partition of a fixed topic.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.cluster.leader(topic, partition)
    }

    /// Deletes every topic and recreates [`TOPICS`] with the same ids as always.
    pub fn reset(&self) {
        let mut all = MetadataRequest::default();
        all.topics = None;
        let names: Vec<TopicName> =
            self.call(1, 12, &all).topics.into_iter().filter_map(|t| t.name).collect();
        if !names.is_empty() {
            let mut del = DeleteTopicsRequest::default();
            del.topics = names
                .into_iter()
                .map(|n| {
                    let mut s = DeleteTopicState::default();
                    s.name = Some(n);
                    s
                })
                .collect();
            self.call(1, 6, &del);
        }
        fastrand::seed(TOPIC_ID_SEED);
        for (name, partitions, configs) in TOPICS {
            self.cluster
                .create_topic_with_configs(name, *partitions, configs)
                .expect("creating a fixed topic");
        }
    }

    /// Sends a well-formed request and decodes the answer (for the harness's own
    /// bookkeeping; panics on failure).
    pub fn call<R: Request>(&self, broker: i32, version: i16, req: &R) -> R::Response {
        let frame = build::request_frame(version, 1, req);
        let resp = self
            .rt
            .block_on(self.cluster.handle_raw(broker, Bytes::from(frame)))
            .expect("harness request refused")
            .expect("harness request not answered");
        let mut b = Bytes::from(resp).slice(4..);
        ResponseHeader::decode(&mut b, <R::Response as HeaderVersion>::header_version(version))
            .expect("response header");
        R::Response::decode(&mut b, version).expect("response body")
    }

    /// Sends one frame and waits for the answer (for tests and the seed generator).
    pub fn handle(&self, broker: i32, frame: Vec<u8>) -> Result<Option<Vec<u8>>, String> {
        self.rt.block_on(self.send(broker, frame))
    }

    /// Sends one frame; checks the answer's framing and the oracle.
    pub async fn send(&self, broker: i32, frame: Vec<u8>) -> Result<Option<Vec<u8>>, String> {
        let r = self.cluster.handle_raw(broker, Bytes::from(frame)).await;
        match &r {
            Ok(Some(resp)) => {
                assert!(resp.len() >= 8, "response of {} bytes", resp.len());
                let size = i32::from_be_bytes([resp[0], resp[1], resp[2], resp[3]]);
                assert_eq!(usize::try_from(size).ok(), Some(resp.len() - 4), "response size prefix");
            }
            Ok(None) => {}
            Err(why) => {
                assert!(
                    !why.starts_with("encoding"),
                    "the cluster accepted a request it cannot answer: {why}"
                );
            }
        }
        r
    }

    /// Runs one input (see the module docs).
    pub async fn run(&self, data: &[u8]) {
        let Some((&sel, rest)) = data.split_first() else { return };
        if (sel / 3) % 4 == 3 {
            let mut r = Input::new(rest);
            for _ in 0..16 {
                if r.is_empty() {
                    break;
                }
                let len = usize::from(r.u16());
                let cmd = r.take(len);
                self.run_one(cmd).await;
            }
        } else {
            self.run_one(data).await;
        }
    }

    async fn run_one(&self, data: &[u8]) {
        let Some((&sel, rest)) = data.split_first() else { return };
        let broker = 1 + i32::from(sel % 3);
        match (sel / 3) % 4 {
            1 => {
                let frame = header_mode(rest);
                let _ = self.send(broker, frame).await;
            }
            2 => {
                let mut r = Input::new(rest);
                let (frame, repeat) = self.produce_mode(&mut r);
                for _ in 0..repeat {
                    let _ = self.send(broker, frame.clone()).await;
                }
            }
            _ => {
                let _ = self.send(broker, rest.to_vec()).await;
            }
        }
    }

    /// A well-formed Produce request from the input, and how often to send it.
    pub fn produce_mode(&self, r: &mut Input<'_>) -> (Vec<u8>, usize) {
        let version = 3 + i16::from(r.u8() % 11);
        let mut req = ProduceRequest::default();
        req.acks = match r.u8() % 4 {
            0 => -1,
            1 => 1,
            2 => 0,
            _ => r.i16(),
        };
        req.timeout_ms = r.i32();
        if r.u8() % 8 == 7 {
            req.transactional_id = Some(TransactionalId(StrBytes::from_static_str("txn")));
        }
        let topics = 1 + r.u8() % 2;
        for _ in 0..topics {
            let sel = r.u8();
            let name = NAMES[usize::from(sel) % NAMES.len()];
            let mut td = TopicProduceData::default();
            if version >= 13 {
                td.topic_id = if sel >= 0xf0 { Uuid::from_u128(r.u128()) } else { self.topic_id(name) };
            } else {
                td.name = TopicName(StrBytes::from_static_str(name));
            }
            let partitions = 1 + r.u8() % 3;
            for _ in 0..partitions {
                let mut pd = PartitionProduceData::default();
                pd.index = match r.u8() {
                    0xff => r.i32(),
                    p => i32::from(p % 5) - 1,
                };
                pd.records = batch_bytes(r).map(Bytes::from);
                td.partition_data.push(pd);
            }
            req.topic_data.push(td);
        }
        let repeat = 1 + usize::from(r.u8() % 3);
        (build::request_frame(version, r.i32(), &req), repeat)
    }
}

/// Mode 1: a correct header, then the rest of the input as the body.
pub fn header_mode(rest: &[u8]) -> Vec<u8> {
    let mut r = Input::new(rest);
    let (key, min, max) = SERVED[usize::from(r.u8()) % SERVED.len()];
    let v = r.u8();
    let version = if v >= 250 { max + i16::from(v - 249) } else { min + i16::from(v) % (max - min + 1) };
    let corr = r.i32();
    let client_id = if r.u8() % 4 == 0 { None } else { Some("fuzz") };
    let mut frame = build::header(key as i16, version, corr, client_id, key.request_header_version(version));
    frame.extend_from_slice(r.rest());
    frame.to_vec()
}

/// The records of one partition in a structured Produce request.
pub fn batch_bytes(r: &mut Input<'_>) -> Option<Vec<u8>> {
    match r.u8() % 8 {
        0 => None,
        1 => {
            let n = usize::from(r.u16());
            Some(r.take(n).to_vec())
        }
        2 | 3 => {
            let n = usize::from(r.u16());
            let mut b = r.take(n).to_vec();
            build::seal_batch(&mut b);
            Some(b)
        }
        _ => Some(build::encode_batch(&batch_spec(r))),
    }
}

/// A batch built field by field: valid framing and CRC; which fields are
/// consistent and which are arbitrary is up to the input.
pub fn batch_spec(r: &mut Input<'_>) -> BatchSpec {
    let now = now_ms();
    // Which header fields are taken raw from the input instead of made consistent.
    let raw = r.u8();
    let a = r.u8();
    // Bits 3-5 of the attributes (timestamp type, transactional, control) as given;
    // with bit 6, the codec of bits 0-2, and the records compressed with it unless
    // `raw` bit 6 asks for raw records under a codec's bits.
    let mut attributes = i16::from(a & 0x38);
    let compress = a & 0x40 != 0 && raw & 0x40 == 0;
    if a & 0x40 != 0 {
        attributes |= i16::from(a & 0x07);
    }
    if a & 0x80 != 0 {
        attributes = r.i16();
    }
    let p = r.u8();
    let producer_id = match p % 4 {
        0 => -1,
        1 => i64::from((p >> 2) % 4),
        2 => r.i64(),
        _ => 1000 + i64::from(p >> 2),
    };
    let (producer_epoch, base_sequence) = if producer_id == -1 && p & 0x80 == 0 {
        (-1, -1)
    } else {
        let e = r.u8();
        let epoch = if e == 0xff { r.i16() } else { i16::from(e % 3) };
        let s = r.u8();
        let seq = match s % 4 {
            0 => 0,
            1 => i32::from(s >> 2),
            2 => i32::MAX - i32::from(s >> 2),
            _ => r.i32(),
        };
        (epoch, seq)
    };
    let base_timestamp = if raw & 0x01 != 0 { r.i64() } else { now + i64::from(r.i16()) * 100 };
    let n = r.u8() % 6;
    let mut records = Vec::with_capacity(usize::from(n));
    for i in 0..i32::from(n) {
        let f = r.u8();
        let mut rec = RecordSpec {
            attributes: if f & 0x01 != 0 { r.u8() as i8 } else { 0 },
            timestamp_delta: if f & 0x02 != 0 { r.i64() } else { i64::from(r.u8()) },
            offset_delta: if f & 0x04 != 0 { r.i32() } else { i },
            key: r.opt_bytes(16),
            value: r.opt_bytes(32),
            headers: Vec::new(),
        };
        for _ in 0..(f >> 5) % 4 {
            let k = if f & 0x08 != 0 { r.opt_bytes(8) } else { Some(b"h".to_vec()) };
            rec.headers.push((k, r.opt_bytes(8)));
        }
        records.push(rec);
    }
    let mut b = BatchSpec::plain(base_timestamp, records);
    b.attributes = attributes;
    b.producer_id = producer_id;
    b.producer_epoch = producer_epoch;
    b.base_sequence = base_sequence;
    b.compress = compress;
    b.snappy_xerial = raw & 0x80 == 0;
    if raw & 0x02 != 0 {
        b.record_count = r.i32();
    }
    if raw & 0x04 != 0 {
        b.last_offset_delta = r.i32();
    }
    if raw & 0x08 != 0 {
        b.max_timestamp = r.i64();
    }
    if raw & 0x10 != 0 {
        b.base_offset = r.i64();
    }
    if raw & 0x20 != 0 {
        b.partition_leader_epoch = r.i32();
    }
    b
}
