//! The seed corpus, generated (`cargo run --example gen_seeds` writes it to
//! `seeds/<target>/`): a handful of small, valid inputs per target, so fuzzing
//! starts from requests the cluster accepts and answers the client decodes.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerId, CreateTopicsRequest, DeleteTopicsRequest, FetchRequest,
    InitProducerIdRequest, ListOffsetsRequest, MetadataRequest, ProduceRequest, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::build::{self, BatchSpec, RecordSpec, record};
use crate::mock::{MockEnv, env};

/// A timestamp the seeds' records carry: fixed, so the seeds are reproducible. The
/// cluster refuses it as too old on the "ts" topic only (the others accept any
/// past timestamp).
const SEED_TIME: i64 = 1_700_000_000_000;

fn name(s: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(s))
}

/// A batch of two records, the second with two headers of the same key.
pub fn two_records() -> BatchSpec {
    let mut r1 = record(1, Some(b"k2"), Some(b"v2"));
    r1.timestamp_delta = 5;
    r1.headers = vec![(Some(b"h".to_vec()), Some(b"1".to_vec())), (Some(b"h".to_vec()), None)];
    BatchSpec::plain(SEED_TIME, vec![record(0, Some(b"k1"), Some(b"v1")), r1])
}

fn produce(
    version: i16,
    topic: &'static str,
    topic_id: uuid::Uuid,
    partition: i32,
    batch: &BatchSpec,
) -> ProduceRequest {
    let mut pd = PartitionProduceData::default();
    pd.index = partition;
    pd.records = Some(Bytes::from(build::encode_batch(batch)));
    let mut td = TopicProduceData::default();
    if version >= 13 {
        td.topic_id = topic_id;
    } else {
        td.name = name(topic);
    }
    td.partition_data = vec![pd];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 30_000;
    req.topic_data = vec![td];
    req
}

fn fetch(topic: &'static str, partition: i32) -> FetchRequest {
    let mut p = FetchPartition::default();
    p.partition = partition;
    p.fetch_offset = 0;
    p.partition_max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic = name(topic);
    t.partitions = vec![p];
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.max_wait_ms = 500;
    req.min_bytes = 1;
    req.max_bytes = 1 << 20;
    req.topics = vec![t];
    req
}

fn list_offsets(topic: &'static str, partition: i32, timestamp: i64) -> ListOffsetsRequest {
    let mut p = ListOffsetsPartition::default();
    p.partition_index = partition;
    p.timestamp = timestamp;
    let mut t = ListOffsetsTopic::default();
    t.name = name(topic);
    t.partitions = vec![p];
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(-1);
    req.topics = vec![t];
    req
}

fn metadata(topics: &[&'static str]) -> MetadataRequest {
    let mut req = MetadataRequest::default();
    req.topics = Some(
        topics
            .iter()
            .map(|t| {
                let mut mt = MetadataRequestTopic::default();
                mt.name = Some(name(t));
                mt
            })
            .collect(),
    );
    req
}

/// A raw-mode `mock_request` input for `broker`.
fn raw<R: Request>(broker: i32, version: i16, req: &R) -> Vec<u8> {
    let mut v = vec![(broker - 1) as u8];
    v.extend(build::request_frame(version, 7, req));
    v
}

/// A sequence-mode input of `commands`.
fn sequence(commands: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![9u8];
    for c in commands {
        v.extend_from_slice(&(c.len() as u16).to_be_bytes());
        v.extend_from_slice(c);
    }
    v
}

fn leader(env: &MockEnv, topic: &str, partition: i32) -> i32 {
    env.leader(topic, partition).expect("fixed topics have leaders")
}

/// `mock_request` seeds: (file name, input).
pub fn mock_request() -> Vec<(&'static str, Vec<u8>)> {
    let env = env();
    let l_t0 = leader(env, "t", 0);
    let l_cmp0 = leader(env, "cmp", 0);
    let l_lat0 = leader(env, "lat", 0);
    let l_gz0 = leader(env, "gz", 0);

    let mut api_versions = ApiVersionsRequest::default();
    api_versions.client_software_name = StrBytes::from_static_str("herald");
    api_versions.client_software_version = StrBytes::from_static_str("0.1.0");

    let mut create = CreatableTopic::default();
    create.name = name("new");
    create.num_partitions = 2;
    create.replication_factor = 1;
    let mut c = CreatableTopicConfig::default();
    c.name = StrBytes::from_static_str("cleanup.policy");
    c.value = Some(StrBytes::from_static_str("compact"));
    create.configs = vec![c];
    let mut create_req = CreateTopicsRequest::default();
    create_req.topics = vec![create];
    create_req.timeout_ms = 30_000;

    let mut del = DeleteTopicState::default();
    del.name = Some(name("t"));
    let mut delete_req = DeleteTopicsRequest::default();
    delete_req.topics = vec![del];
    delete_req.timeout_ms = 30_000;

    let mut init = InitProducerIdRequest::default();
    init.transactional_id = None;
    init.transaction_timeout_ms = 60_000;

    let idem = two_records().idempotent(1000, 0, 0);
    let produce_v9 = raw(l_t0, 9, &produce(9, "t", Default::default(), 0, &two_records()));
    let produce_idem = raw(l_t0, 9, &produce(9, "t", Default::default(), 0, &idem));

    // Structured produce (mode 2) to broker l_t0: v9, acks=-1, one topic "t", one
    // partition 0, a batch built from fields, sent twice.
    let structured = {
        let b = (l_t0 - 1) as u8;
        vec![
            6 + b, // mode 2
            6,     // version 3 + 6 = 9
            0,     // acks -1
            0,
            0,
            0x75,
            0x30,         // timeout
            0,            // no transactional id
            0,            // one topic
            0,            // "t"
            0,            // one partition
            1,            // partition 0
            4,            // a built batch
            0,            // consistent header fields
            0,            // attributes
            3 | (1 << 2), // producer id 1001
            0,            // epoch 0
            0,            // base sequence 0
            0,
            0, // timestamp = now
            2, // two records
            0,
            0,
            1,
            b'k',
            1,
            b'v',
            0,
            1,
            1,
            b'k',
            0xff,
            1, // sent twice
        ]
    };

    // Header mode (mode 1) to broker 1: Metadata v12 header built by the harness,
    // the body from the input.
    let header_mode = {
        let body = build::request_frame(12, 0, &metadata(&["t"]));
        let header_len = build::header(3, 12, 0, Some("fuzz"), MetadataRequest::header_version(12)).len();
        let mut v = vec![3u8, 3, 12, 0, 0, 0, 9, 1];
        v.extend_from_slice(&body[header_len..]);
        v
    };

    vec![
        ("api_versions_v3", raw(1, 3, &api_versions)),
        ("metadata_v12", raw(1, 12, &metadata(&["t", "lat", "nope"]))),
        (
            "metadata_v1_all",
            raw(2, 1, &{
                let mut m = MetadataRequest::default();
                m.topics = None;
                m
            }),
        ),
        ("produce_v9", produce_v9.clone()),
        ("produce_v3_compact", raw(l_cmp0, 3, &produce(3, "cmp", Default::default(), 0, &two_records()))),
        ("produce_v13_by_id", raw(l_lat0, 13, &produce(13, "lat", env.topic_id("lat"), 0, &two_records()))),
        ("fetch_v12", raw(l_t0, 12, &fetch("t", 0))),
        ("list_offsets_v7", raw(l_t0, 7, &list_offsets("t", 0, -1))),
        ("create_topics_v7", raw(1, 7, &create_req)),
        ("delete_topics_v6", raw(1, 6, &delete_req)),
        ("init_producer_id_v4", raw(1, 4, &init)),
        (
            "seq_produce_fetch_list",
            sequence(&[
                produce_idem.clone(),
                produce_idem,
                raw(l_t0, 12, &fetch("t", 0)),
                raw(l_t0, 7, &list_offsets("t", 0, SEED_TIME)),
                raw(l_t0, 7, &list_offsets("t", 0, -3)),
            ]),
        ),
        (
            "seq_compressed_produce_fetch",
            sequence(&[
                raw(l_t0, 9, &produce(9, "t", Default::default(), 0, &two_records().compressed(1))),
                raw(l_t0, 9, &produce(9, "t", Default::default(), 0, &two_records().compressed(2))),
                raw(l_t0, 9, &produce(9, "t", Default::default(), 0, &two_records().compressed(3))),
                raw(l_t0, 9, &produce(9, "t", Default::default(), 0, &two_records().compressed(4))),
                raw(l_t0, 12, &fetch("t", 0)),
            ]),
        ),
        (
            "produce_v9_recompressed",
            raw(l_gz0, 9, &produce(9, "gz", Default::default(), 0, &two_records().compressed(4))),
        ),
        ("structured_produce", structured),
        ("header_metadata_v12", header_mode),
    ]
}

/// `record_batch` seeds.
pub fn record_batch() -> Vec<(&'static str, Vec<u8>)> {
    let mut one = BatchSpec::plain(SEED_TIME, vec![RecordSpec { key: None, ..record(0, None, Some(b"v")) }]);
    one.attributes = 0x08; // LogAppendTime
    vec![
        ("two_records", build::encode_batch(&two_records())),
        ("idempotent", build::encode_batch(&two_records().idempotent(7, 1, 42))),
        ("log_append_time", build::encode_batch(&one)),
        ("gzip", build::encode_batch(&two_records().compressed(1))),
        ("snappy", build::encode_batch(&two_records().compressed(2))),
        ("lz4", build::encode_batch(&two_records().compressed(3))),
        ("zstd", build::encode_batch(&two_records().compressed(4))),
    ]
}

/// The cluster's answer to `req`, decoded.
fn answer<R: Request>(broker: i32, version: i16, req: &R) -> R::Response {
    let env = env();
    env.reset();
    let resp =
        env.handle(broker, build::request_frame(version, 7, req)).expect("answered").expect("a response");
    let mut b = Bytes::from(resp).slice(4..);
    ResponseHeader::decode(&mut b, <R::Response as HeaderVersion>::header_version(version)).expect("header");
    R::Response::decode(&mut b, version).expect("response body")
}

fn encode<T: Encodable>(version: i16, body: &T) -> Vec<u8> {
    let mut b = BytesMut::new();
    body.encode(&mut b, version).expect("encoding a response");
    b.to_vec()
}

/// A Metadata answer of the cluster with its per-run values (ports, cluster id)
/// replaced by fixed ones.
fn metadata_body(version: i16, req: &MetadataRequest) -> Vec<u8> {
    let mut r = answer(1, version, req);
    for (i, b) in r.brokers.iter_mut().enumerate() {
        b.port = 9092 + i as i32;
    }
    r.cluster_id = r.cluster_id.map(|_| StrBytes::from_static_str("herald-fuzz"));
    encode(version, &r)
}

/// A Produce answer of the cluster with its per-run values (ports, times) fixed.
fn produce_body(broker: i32, version: i16, req: &ProduceRequest) -> Vec<u8> {
    let mut r = answer(broker, version, req);
    for e in &mut r.node_endpoints {
        e.port = 9092;
    }
    for t in &mut r.responses {
        for p in &mut t.partition_responses {
            if p.log_append_time_ms > 0 {
                p.log_append_time_ms = SEED_TIME;
            }
        }
    }
    encode(version, &r)
}

/// `client_response` seeds: real answers of the embedded cluster.
pub fn client_response() -> Vec<(&'static str, Vec<u8>)> {
    let env = env();
    let l_t0 = leader(env, "t", 0);
    let with = |sel: u8, version: i16, body: Vec<u8>| {
        let mut v = vec![sel, (version + 1) as u8];
        v.extend(body);
        v
    };
    let mut frame_v1 = vec![0x80u8, 1];
    frame_v1.extend_from_slice(&[0, 0, 0, 7, 0]);
    frame_v1.extend_from_slice(b"body");
    let mut frame_v0 = vec![0x80u8, 0];
    frame_v0.extend_from_slice(&[0, 0, 0, 7]);
    vec![
        ("metadata_v12", with(0, 12, metadata_body(12, &metadata(&["t", "lat", "nope"])))),
        ("metadata_v4", with(0, 4, metadata_body(4, &metadata(&["t"])))),
        (
            "produce_v9",
            with(1, 9, produce_body(l_t0, 9, &produce(9, "t", Default::default(), 0, &two_records()))),
        ),
        (
            "produce_v11_not_leader",
            with(
                1,
                11,
                produce_body(l_t0 % 3 + 1, 11, &produce(11, "t", Default::default(), 0, &two_records())),
            ),
        ),
        ("header_v1", frame_v1),
        ("header_v0", frame_v0),
    ]
}

/// Every seed: (target, file name, input).
pub fn all() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut out = Vec::new();
    for (n, d) in mock_request() {
        out.push(("mock_request", n, d));
    }
    for (n, d) in record_batch() {
        out.push(("record_batch", n, d));
    }
    for (n, d) in client_response() {
        out.push(("client_response", n, d));
    }
    env().reset();
    out
}
