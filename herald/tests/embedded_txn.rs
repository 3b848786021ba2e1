//! The embedded cluster's transaction coordinator, driven with raw Kafka requests
//! (built with kafka-protocol) as a transactional producer sends them, and read
//! back with `TopicReader` and Fetch in both isolation levels; and Kafka's own
//! producer and consumer running transactions against it.

mod support;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use herald::mock::{Fault, MockApi, MockCluster};
use herald::{ErrorCode, IsolationLevel, TopicReader};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, ApiVersionsRequest, BrokerId, EndTxnRequest,
    FetchRequest, FindCoordinatorRequest, GroupId, InitProducerIdRequest, ListOffsetsRequest,
    OffsetFetchRequest, ProduceRequest, ProducerId, RequestHeader, TopicName, TransactionalId,
    TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

const COORDINATOR_LOAD_IN_PROGRESS: ErrorCode = ErrorCode::new(14);
const NOT_COORDINATOR: ErrorCode = ErrorCode::new(16);
const INVALID_TXN_STATE: ErrorCode = ErrorCode::new(48);
const INVALID_TRANSACTION_TIMEOUT: ErrorCode = ErrorCode::new(50);
const CONCURRENT_TRANSACTIONS: ErrorCode = ErrorCode::new(51);
const PRODUCER_FENCED: ErrorCode = ErrorCode::new(90);

/// Sends `req` at `version` to `broker` and decodes the answer.
async fn call<R: Request>(c: &MockCluster, broker: i32, version: i16, req: R) -> R::Response {
    let mut header = RequestHeader::default();
    header.request_api_key = R::KEY;
    header.request_api_version = version;
    header.correlation_id = 7;
    header.client_id = Some(StrBytes::from_static_str("test"));
    let mut frame = BytesMut::new();
    header.encode(&mut frame, R::header_version(version)).unwrap();
    req.encode(&mut frame, version).unwrap();
    let resp = c.handle_raw(broker, frame.freeze()).await.unwrap().unwrap();
    let mut body = Bytes::from(resp).split_off(4);
    kafka_protocol::messages::ResponseHeader::decode(&mut body, R::Response::header_version(version))
        .unwrap();
    R::Response::decode(&mut body, version).unwrap()
}

async fn cluster(brokers: usize, transaction_version: i16) -> MockCluster {
    let c = MockCluster::builder()
        .brokers(brokers)
        .transaction_version(transaction_version)
        .start()
        .await
        .unwrap();
    c.create_topic("t", 2).unwrap();
    c
}

/// InitProducerId v5 for `id` on its coordinator: (producer id, epoch).
async fn init(c: &MockCluster, id: &str, timeout_ms: i32) -> Result<(i64, i16), ErrorCode> {
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = Some(TransactionalId(StrBytes::from_string(id.to_owned())));
    req.transaction_timeout_ms = timeout_ms;
    req.producer_id = ProducerId(-1);
    req.producer_epoch = -1;
    let resp = call(c, c.coordinator(id).unwrap(), 5, req).await;
    match ErrorCode::new(resp.error_code) {
        ErrorCode::NONE => Ok((resp.producer_id.0, resp.producer_epoch)),
        e => Err(e),
    }
}

async fn add_partition(c: &MockCluster, id: &str, (pid, epoch): (i64, i16), partition: i32) -> ErrorCode {
    let mut t = AddPartitionsToTxnTopic::default();
    t.name = TopicName(StrBytes::from_static_str("t"));
    t.partitions = vec![partition];
    let mut req = AddPartitionsToTxnRequest::default();
    req.v3_and_below_transactional_id = TransactionalId(StrBytes::from_string(id.to_owned()));
    req.v3_and_below_producer_id = ProducerId(pid);
    req.v3_and_below_producer_epoch = epoch;
    req.v3_and_below_topics = vec![t];
    let resp = call(c, c.coordinator(id).unwrap(), 3, req).await;
    ErrorCode::new(resp.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code)
}

/// Produces a transactional batch of `values` to t-`partition` at `version`.
#[allow(clippy::too_many_arguments)]
async fn produce(
    c: &MockCluster,
    id: &str,
    (pid, epoch): (i64, i16),
    partition: i32,
    seq: i32,
    values: &[&str],
    version: i16,
) -> ErrorCode {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: seq + i as i32,
            timestamp: 1_700_000_000_000 + i as i64,
            key: None,
            value: Some(Bytes::from(v.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut batch = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut batch,
        &records,
        &RecordEncodeOptions { version: 2, compression: Compression::None },
    )
    .unwrap();
    let mut pd = PartitionProduceData::default();
    pd.index = partition;
    pd.records = Some(batch.freeze());
    let mut td = TopicProduceData::default();
    td.name = TopicName(StrBytes::from_static_str("t"));
    td.partition_data = vec![pd];
    let mut req = ProduceRequest::default();
    req.transactional_id = Some(TransactionalId(StrBytes::from_string(id.to_owned())));
    req.acks = -1;
    req.timeout_ms = 5000;
    req.topic_data = vec![td];
    let resp = call(c, c.leader("t", partition).unwrap(), version, req).await;
    ErrorCode::new(resp.responses[0].partition_responses[0].error_code)
}

/// EndTxn: the error and the producer id and epoch answered.
async fn end(
    c: &MockCluster,
    id: &str,
    (pid, epoch): (i64, i16),
    commit: bool,
    version: i16,
) -> (ErrorCode, (i64, i16)) {
    let mut req = EndTxnRequest::default();
    req.transactional_id = TransactionalId(StrBytes::from_string(id.to_owned()));
    req.producer_id = ProducerId(pid);
    req.producer_epoch = epoch;
    req.committed = commit;
    let resp = call(c, c.coordinator(id).unwrap(), version, req).await;
    (ErrorCode::new(resp.error_code), (resp.producer_id.0, resp.producer_epoch))
}

/// Fetch v12 of t-`partition` from offset 0.
async fn fetch(c: &MockCluster, partition: i32, read_committed: bool) -> PartitionData {
    let mut p = FetchPartition::default();
    p.partition = partition;
    p.fetch_offset = 0;
    p.partition_max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic = TopicName(StrBytes::from_static_str("t"));
    t.partitions = vec![p];
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.max_bytes = 1 << 20;
    req.isolation_level = i8::from(read_committed);
    req.topics = vec![t];
    let mut resp = call(c, c.leader("t", partition).unwrap(), 12, req).await;
    resp.responses.remove(0).partitions.remove(0)
}

fn count_records(data: &PartitionData) -> usize {
    let mut b = data.records.clone().unwrap_or_default();
    let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut b).unwrap();
    sets.iter().flat_map(|s| &s.records).filter(|r| !r.control).count()
}

async fn read(c: &MockCluster, level: IsolationLevel) -> Vec<String> {
    let reader = TopicReader::new(&c.bootstrap()).unwrap().isolation(level);
    let records = reader.read_to_end("t").await.unwrap();
    records.into_iter().map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap()).collect()
}

#[tokio::test]
async fn a_transaction_commits_with_transactions_v2() {
    let c = cluster(3, 2).await;
    // FindCoordinator v4 (batched) names the broker that answers for the id.
    let mut req = FindCoordinatorRequest::default();
    req.key_type = 1;
    req.coordinator_keys = vec![StrBytes::from_static_str("tx")];
    let resp = call(&c, 1, 4, req).await;
    assert_eq!(resp.coordinators[0].error_code, 0);
    assert_eq!(Some(resp.coordinators[0].node_id.0), c.coordinator("tx"));

    let id = init(&c, "tx", 60_000).await.unwrap();
    assert_eq!(id.1, 0);
    // Produce v12 adds the partitions itself (KIP-890 part 2).
    assert_eq!(produce(&c, "tx", id, 0, 0, &["a", "b"], 12).await, ErrorCode::NONE);
    assert_eq!(produce(&c, "tx", id, 1, 0, &["c"], 12).await, ErrorCode::NONE);
    let open = fetch(&c, 0, true).await;
    assert_eq!((open.last_stable_offset, open.high_watermark, count_records(&open)), (0, 2, 0));
    assert_eq!(count_records(&fetch(&c, 0, false).await), 2, "read_uncommitted sees them");
    assert!(read(&c, IsolationLevel::ReadCommitted).await.is_empty(), "held back by the LSO");

    let (code, next) = end(&c, "tx", id, true, 5).await;
    assert_eq!((code, next), (ErrorCode::NONE, (id.0, 1)), "EndTxn v5 bumps the epoch");
    let done = fetch(&c, 0, true).await;
    assert_eq!((done.last_stable_offset, count_records(&done)), (3, 2));
    assert_eq!(done.aborted_transactions.as_deref().map(<[_]>::len), Some(0));
    let batches = c.batches("t", 0).unwrap();
    assert!(batches.last().unwrap().control && batches.last().unwrap().producer_epoch == 1);
    assert_eq!(read(&c, IsolationLevel::ReadCommitted).await, ["a", "b", "c"]);
    assert_eq!(c.committed_records("t", 0).unwrap().len(), 2);

    // The next transaction uses the new epoch, sequences from 0; the old one is fenced.
    assert_eq!(produce(&c, "tx", id, 0, 2, &["x"], 12).await, ErrorCode::INVALID_PRODUCER_EPOCH);
    assert_eq!(produce(&c, "tx", next, 0, 0, &["d"], 12).await, ErrorCode::NONE);
    assert_eq!(end(&c, "tx", next, true, 5).await.0, ErrorCode::NONE);
    assert_eq!(read(&c, IsolationLevel::ReadCommitted).await, ["a", "b", "d", "c"]);
}

#[tokio::test]
async fn an_aborted_transaction_is_skipped_by_read_committed_readers() {
    let c = cluster(1, 1).await;
    let id = init(&c, "tx", 60_000).await.unwrap();
    // Transactions v1: a partition not added first is refused and not appended.
    assert_eq!(produce(&c, "tx", id, 0, 0, &["early"], 11).await, INVALID_TXN_STATE);
    assert_eq!(c.end_offset("t", 0), Some(0));
    assert_eq!(add_partition(&c, "tx", id, 0).await, ErrorCode::NONE);
    assert_eq!(produce(&c, "tx", id, 0, 0, &["a", "b"], 11).await, ErrorCode::NONE);
    assert_eq!(end(&c, "tx", id, false, 4).await, (ErrorCode::NONE, (-1, -1)));
    assert_eq!(add_partition(&c, "tx", id, 0).await, ErrorCode::NONE);
    assert_eq!(produce(&c, "tx", id, 0, 2, &["c"], 11).await, ErrorCode::NONE);
    assert_eq!(end(&c, "tx", id, true, 4).await.0, ErrorCode::NONE);

    let data = fetch(&c, 0, true).await;
    let aborted = data.aborted_transactions.clone().unwrap();
    assert_eq!(aborted.len(), 1);
    assert_eq!((aborted[0].producer_id.0, aborted[0].first_offset), (id.0, 0));
    assert_eq!(data.last_stable_offset, 5);
    assert_eq!(read(&c, IsolationLevel::ReadCommitted).await, ["c"]);
    assert_eq!(read(&c, IsolationLevel::ReadUncommitted).await, ["a", "b", "c"]);
    assert_eq!(c.records("t", 0).unwrap().len(), 3, "records() has every data record");
    assert_eq!(c.committed_records("t", 0).unwrap().len(), 1);
    let control: Vec<_> = c.batches("t", 0).unwrap().into_iter().filter(|b| b.control).collect();
    assert_eq!(control.iter().map(|b| b.base_offset).collect::<Vec<_>>(), [2, 4]);
}

#[tokio::test]
async fn list_offsets_read_committed_answers_the_last_stable_offset() {
    let c = cluster(1, 2).await;
    let id = init(&c, "tx", 60_000).await.unwrap();
    assert_eq!(produce(&c, "tx", id, 0, 0, &["a"], 12).await, ErrorCode::NONE);
    let latest = |level: i8| {
        let c = c.clone();
        async move {
            let mut p = ListOffsetsPartition::default();
            p.partition_index = 0;
            p.timestamp = -1;
            let mut t = ListOffsetsTopic::default();
            t.name = TopicName(StrBytes::from_static_str("t"));
            t.partitions = vec![p];
            let mut req = ListOffsetsRequest::default();
            req.replica_id = BrokerId(-1);
            req.isolation_level = level;
            req.topics = vec![t];
            call(&c, 1, 7, req).await.topics[0].partitions[0].offset
        }
    };
    assert_eq!((latest(0).await, latest(1).await), (1, 0));
    end(&c, "tx", id, true, 5).await;
    assert_eq!(latest(1).await, 2);
}

#[tokio::test]
async fn the_coordinator_aborts_a_transaction_open_past_its_timeout() {
    let c = cluster(1, 1).await;
    let id = init(&c, "tx", 200).await.unwrap();
    assert_eq!(add_partition(&c, "tx", id, 0).await, ErrorCode::NONE);
    assert_eq!(produce(&c, "tx", id, 0, 0, &["a"], 11).await, ErrorCode::NONE);
    assert_eq!(c.last_stable_offset("t", 0), Some(0));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(c.last_stable_offset("t", 0), Some(2), "aborted: data and marker");
    assert!(c.committed_records("t", 0).unwrap().is_empty());
    assert_eq!(end(&c, "tx", id, true, 4).await.0, PRODUCER_FENCED);
    assert_eq!(end(&c, "tx", id, true, 1).await.0, ErrorCode::INVALID_PRODUCER_EPOCH, "before KIP-588");
    assert_eq!(produce(&c, "tx", id, 0, 1, &["b"], 11).await, ErrorCode::INVALID_PRODUCER_EPOCH);
}

#[tokio::test]
async fn a_second_producer_fences_the_first() {
    let c = cluster(1, 2).await;
    let first = init(&c, "tx", 60_000).await.unwrap();
    assert_eq!(produce(&c, "tx", first, 0, 0, &["a"], 12).await, ErrorCode::NONE);
    let second = init(&c, "tx", 60_000).await.unwrap();
    assert!(second.1 > first.1);
    assert!(c.committed_records("t", 0).unwrap().is_empty(), "its open transaction was aborted");
    assert_eq!(produce(&c, "tx", first, 0, 1, &["b"], 12).await, ErrorCode::INVALID_PRODUCER_EPOCH);
    assert_eq!(end(&c, "tx", first, true, 5).await.0, PRODUCER_FENCED);
    assert_eq!(init(&c, "tx", 900_001).await, Err(INVALID_TRANSACTION_TIMEOUT));
}

#[tokio::test]
async fn offsets_committed_in_a_transaction_are_the_groups_once_it_commits() {
    let c = cluster(1, 1).await;
    let id = init(&c, "tx", 60_000).await.unwrap();
    let mut req = AddOffsetsToTxnRequest::default();
    req.transactional_id = TransactionalId(StrBytes::from_static_str("tx"));
    req.producer_id = ProducerId(id.0);
    req.producer_epoch = id.1;
    req.group_id = GroupId(StrBytes::from_static_str("g"));
    assert_eq!(call(&c, 1, 4, req).await.error_code, 0);
    let mut p = TxnOffsetCommitRequestPartition::default();
    p.partition_index = 1;
    p.committed_offset = 42;
    p.committed_leader_epoch = -1;
    let mut t = TxnOffsetCommitRequestTopic::default();
    t.name = TopicName(StrBytes::from_static_str("t"));
    t.partitions = vec![p];
    let mut req = TxnOffsetCommitRequest::default();
    req.transactional_id = TransactionalId(StrBytes::from_static_str("tx"));
    req.group_id = GroupId(StrBytes::from_static_str("g"));
    req.producer_id = ProducerId(id.0);
    req.producer_epoch = id.1;
    req.generation_id = -1;
    req.topics = vec![t];
    assert_eq!(call(&c, 1, 4, req).await.topics[0].partitions[0].error_code, 0);
    assert!(c.group_offsets("g").is_empty());
    let offset_fetch = |stable: bool| {
        let c = c.clone();
        async move {
            let mut t = OffsetFetchRequestTopic::default();
            t.name = TopicName(StrBytes::from_static_str("t"));
            t.partition_indexes = vec![1];
            let mut req = OffsetFetchRequest::default();
            req.group_id = GroupId(StrBytes::from_static_str("g"));
            req.topics = Some(vec![t]);
            req.require_stable = stable;
            let resp = call(&c, 1, 7, req).await;
            let p = &resp.topics[0].partitions[0];
            (p.committed_offset, ErrorCode::new(p.error_code))
        }
    };
    assert_eq!(offset_fetch(true).await, (-1, ErrorCode::new(88)), "UNSTABLE_OFFSET_COMMIT");
    assert_eq!(end(&c, "tx", id, true, 4).await.0, ErrorCode::NONE);
    assert_eq!(c.group_offsets("g").get(&("t".to_owned(), 1)), Some(&42));
    assert_eq!(offset_fetch(true).await, (42, ErrorCode::NONE));
}

#[tokio::test]
async fn faults_and_wrong_coordinators() {
    let c = cluster(3, 2).await;
    c.fail_next(MockApi::FindCoordinator, 1, Fault::Error(COORDINATOR_LOAD_IN_PROGRESS));
    let mut req = FindCoordinatorRequest::default();
    req.key_type = 1;
    req.key = StrBytes::from_static_str("tx");
    assert_eq!(call(&c, 1, 3, req.clone()).await.error_code, COORDINATOR_LOAD_IN_PROGRESS.code());
    assert_eq!(call(&c, 1, 3, req).await.node_id.0, c.coordinator("tx").unwrap());

    let coordinator = c.coordinator("tx").unwrap();
    let other = c.broker_ids().into_iter().find(|b| *b != coordinator).unwrap();
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = Some(TransactionalId(StrBytes::from_static_str("tx")));
    req.transaction_timeout_ms = 60_000;
    req.producer_id = ProducerId(-1);
    req.producer_epoch = -1;
    assert_eq!(call(&c, other, 4, req).await.error_code, NOT_COORDINATOR.code());

    let id = init(&c, "tx", 60_000).await.unwrap();
    assert_eq!(produce(&c, "tx", id, 0, 0, &["a"], 12).await, ErrorCode::NONE);
    c.fail_next(MockApi::EndTxn, 1, Fault::Error(CONCURRENT_TRANSACTIONS));
    assert_eq!(end(&c, "tx", id, true, 5).await.0, CONCURRENT_TRANSACTIONS);
    assert!(c.committed_records("t", 0).unwrap().is_empty(), "a failed EndTxn does nothing");
    assert_eq!(end(&c, "tx", id, true, 5).await.0, ErrorCode::NONE);
    assert_eq!(c.committed_records("t", 0).unwrap().len(), 1);
}

#[tokio::test]
async fn api_versions_advertise_the_transaction_version() {
    for level in [1, 2] {
        let c = cluster(1, level).await;
        let resp = call(&c, 1, 3, ApiVersionsRequest::default()).await;
        let finalized = resp.finalized_features.iter().find(|f| &*f.name == "transaction.version").unwrap();
        assert_eq!(finalized.max_version_level, level);
        let supported = resp.supported_features.iter().find(|f| &*f.name == "transaction.version").unwrap();
        assert_eq!((supported.min_version, supported.max_version), (0, 2));
        for key in [10, 24, 25, 26, 28] {
            assert!(resp.api_keys.iter().any(|k| k.api_key == key), "API {key} advertised");
        }
    }
}

/// Kafka's own producer (kafka-clients, through `harness/java-tools`) runs
/// transactions against the embedded cluster, with either transaction protocol,
/// and Kafka's own consumer reads them back read_committed.
#[tokio::test]
async fn the_java_producer_runs_transactions_against_the_embedded_cluster() {
    for level in [2, 1] {
        let c = cluster(3, level).await;
        let out = support::java(
            "dev.herald.tools.JavaTransactions",
            &[
                "--bootstrap",
                &c.bootstrap(),
                "--topic",
                "t",
                "--transactional-id",
                "java-tx",
                "--plan",
                "commit:3,abort:2,commit:1",
                "--group",
                "g",
            ],
            None,
        )
        .await;
        assert_eq!(out, "0 committed\n1 aborted\n2 committed\n", "transaction.version {level}");
        let mut committed = read(&c, IsolationLevel::ReadCommitted).await;
        committed.sort();
        assert_eq!(committed, ["commit-0-0", "commit-0-1", "commit-0-2", "commit-2-0"], "tv {level}");
        assert_eq!(read(&c, IsolationLevel::ReadUncommitted).await.len(), 6);
        assert_eq!(c.group_offsets("g").get(&("t".to_owned(), 0)), Some(&3), "the last committed step's");
        let java = support::java(
            "dev.herald.tools.VerifyConsumer",
            &["--bootstrap", &c.bootstrap(), "--topic", "t", "--property", "isolation.level=read_committed"],
            None,
        )
        .await;
        assert_eq!(java.lines().count(), 4, "tv {level}: {java}");
    }
}

/// herald's transactional producer against the embedded coordinator with each
/// protocol: v2 (Kafka 4.x) and v1 (Kafka 3.9: AddPartitionsToTxn and
/// AddOffsetsToTxn first), through coordinator faults it must retry — a
/// coordinator loading, a moved coordinator, a previous transaction still
/// completing, a dropped EndTxn answer — and an abort.
#[tokio::test]
async fn herald_transactions_over_both_protocols_survive_coordinator_faults() {
    for version in [2, 1] {
        let c = cluster(3, version).await;
        c.create_topic("t3", 3).unwrap();
        let p = herald::Producer::builder()
            .bootstrap_servers(c.bootstrap())
            .set("transactional.id", "tx-faults")
            .retry_backoff(Duration::from_millis(10))
            .max_block(Duration::from_secs(20))
            .build()
            .unwrap();
        c.fail_next(MockApi::FindCoordinator, 1, Fault::Error(COORDINATOR_LOAD_IN_PROGRESS));
        c.fail_next(MockApi::InitProducerId, 1, Fault::Error(NOT_COORDINATOR));
        p.init_transactions().await.unwrap();
        for round in 0..3 {
            p.begin_transaction().unwrap();
            if version == 1 {
                c.fail_next(MockApi::AddPartitionsToTxn, 1, Fault::Error(CONCURRENT_TRANSACTIONS));
            }
            let mut acks = Vec::new();
            for i in 0..6 {
                let r = herald::Record::new("t3").partition(i % 3).value(format!("r{round}-{i}"));
                acks.push(p.send(r).await.unwrap());
            }
            for a in acks {
                a.await.unwrap();
            }
            let offsets = [herald::TxnOffset::new("in", 0, 10 * (round + 1))];
            p.send_offsets_to_transaction(offsets, &herald::ConsumerGroupMetadata::new("g")).await.unwrap();
            match round {
                0 => c.fail_next(MockApi::EndTxn, 2, Fault::Error(CONCURRENT_TRANSACTIONS)),
                1 => c.fail_next(MockApi::EndTxn, 1, Fault::DisconnectAfterHandling),
                _ => {}
            }
            if round == 2 {
                p.abort_transaction().await.unwrap();
            } else {
                p.commit_transaction().await.unwrap();
            }
        }
        let mut committed = Vec::new();
        for partition in 0..3 {
            for r in c.committed_records("t3", partition).unwrap() {
                committed.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
            }
        }
        committed.sort();
        let want: Vec<String> = (0..2).flat_map(|r| (0..6).map(move |i| format!("r{r}-{i}"))).collect();
        assert_eq!(committed, want, "transaction.version {version}: rounds 0 and 1 committed, 2 aborted");
        assert_eq!(c.group_offsets("g").get(&("in".to_owned(), 0)), Some(&20), "version {version}");
    }
}
