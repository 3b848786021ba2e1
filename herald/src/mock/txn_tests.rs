//! The transaction coordinator's state machine, driven without the network.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::*;
use crate::mock::state::{BrokerInfo, Settings, TopicConfig};
use crate::protocol::batch::{BatchWriter, stamp_producer};

const NOW: i64 = 1_700_000_000_000;

fn state(transaction_version: i16) -> State {
    let mut brokers = BTreeMap::new();
    brokers.insert(1, BrokerInfo { port: 0, up: true });
    let mut s = State {
        cluster_id: "test".into(),
        brokers,
        topics: BTreeMap::new(),
        next_producer_id: 1000,
        settings: Settings {
            auto_create_topics: false,
            default_partitions: 1,
            store_records: true,
            transaction_version,
            max_transaction_timeout_ms: 900_000,
        },
        txn: Coordinator::default(),
    };
    s.create_topic("t", 2, 1, TopicConfig::default()).unwrap();
    s
}

/// A transactional batch of `values`.
fn txn_batch(values: &[&str], pid: i64, epoch: i16, seq: i32) -> Bytes {
    let mut w = BatchWriter::new(64);
    for v in values {
        w.append(NOW, None, Some(v.as_bytes()), &[]);
    }
    let mut b = w.finish();
    b[21..23].copy_from_slice(&0x10i16.to_be_bytes());
    stamp_producer(&mut b, pid, epoch, seq);
    b.freeze()
}

fn produce(
    s: &mut State,
    p: i32,
    values: &[&str],
    (pid, epoch): (i64, i16),
    seq: i32,
    version: i16,
) -> ErrorCode {
    s.append_with("t", p, 1, Some(txn_batch(values, pid, epoch, seq)), version, Some("tx"), NOW).code
}

fn values(
    records: Vec<(crate::protocol::records::BatchHeader, crate::protocol::records::ReadRecord)>,
) -> Vec<String> {
    records.into_iter().map(|(_, r)| String::from_utf8(r.value.unwrap().to_vec()).unwrap()).collect()
}

fn part(s: &State, p: usize) -> &crate::mock::state::Partition {
    &s.topics["t"].partitions[p]
}

fn init(s: &mut State) -> (i64, i16) {
    s.init_transactional(1, "tx", 60_000, (-1, -1), NOW).unwrap()
}

fn add(s: &mut State, (pid, epoch): (i64, i16), p: i32) -> Result<(), ErrorCode> {
    s.add_partitions_to_txn(1, "tx", pid, epoch, &[("t".into(), p)], NOW)
}

#[test]
fn a_second_init_fences_the_first_epoch() {
    let mut s = state(2);
    let first = init(&mut s);
    assert_eq!(first.1, 0);
    let second = init(&mut s);
    assert_eq!(second, (first.0, 1), "same producer id, next epoch");
    assert_eq!(add(&mut s, first, 0), Err(PRODUCER_FENCED));
    assert_eq!(s.end_txn(1, "tx", first.0, first.1, true, 4, NOW), Err(PRODUCER_FENCED));
    assert_eq!(add(&mut s, second, 0), Ok(()));
    assert_eq!(fenced_for(PRODUCER_FENCED, 1, 2), ErrorCode::INVALID_PRODUCER_EPOCH);
}

#[test]
fn commit_writes_markers_and_makes_records_visible() {
    let mut s = state(1);
    let id = init(&mut s);
    add(&mut s, id, 0).unwrap();
    add(&mut s, id, 1).unwrap();
    assert_eq!(produce(&mut s, 0, &["a", "b"], id, 0, 11), ErrorCode::NONE);
    assert_eq!(part(&s, 0).last_stable_offset(), 0, "the open transaction holds the LSO back");
    assert!(values(part(&s, 0).committed_records()).is_empty());
    assert_eq!(s.end_txn(1, "tx", id.0, id.1, true, 4, NOW), Ok(id), "no bump before v5");
    for p in 0..2 {
        let last = part(&s, p).log.last().unwrap();
        let h = crate::protocol::records::read_header(&last.bytes).unwrap().unwrap();
        assert!(h.control() && h.transactional(), "a marker in every partition of the transaction");
        assert_eq!((h.producer_id, h.producer_epoch), id);
    }
    assert_eq!(part(&s, 0).last_stable_offset(), 3);
    assert_eq!(values(part(&s, 0).committed_records()), ["a", "b"]);
    assert_eq!(values(part(&s, 0).records()), ["a", "b"], "no control records");
    // A retried commit is answered again; an abort now is not allowed.
    assert_eq!(s.end_txn(1, "tx", id.0, id.1, true, 4, NOW), Ok(id));
    assert_eq!(s.end_txn(1, "tx", id.0, id.1, false, 4, NOW), Err(INVALID_TXN_STATE));
    // Sequences go on across transactions before KIP-890.
    add(&mut s, id, 0).unwrap();
    assert_eq!(produce(&mut s, 0, &["c"], id, 2, 11), ErrorCode::NONE);
}

#[test]
fn abort_hides_records_from_read_committed() {
    let mut s = state(1);
    let id = init(&mut s);
    add(&mut s, id, 0).unwrap();
    produce(&mut s, 0, &["a", "b"], id, 0, 11);
    s.end_txn(1, "tx", id.0, id.1, false, 4, NOW).unwrap();
    assert!(values(part(&s, 0).committed_records()).is_empty());
    assert_eq!(values(part(&s, 0).records()), ["a", "b"]);
    let aborted = part(&s, 0).aborted_between(0, 10);
    assert_eq!(aborted.len(), 1);
    assert_eq!((aborted[0].producer_id, aborted[0].first_offset, aborted[0].last_offset), (id.0, 0, 2));
    assert!(part(&s, 0).aborted_between(3, 10).is_empty(), "ends before the range");
    assert_eq!(part(&s, 0).last_stable_offset(), 3);
}

#[test]
fn end_txn_refuses_what_kafka_refuses() {
    let mut s = state(1);
    assert_eq!(s.end_txn(1, "tx", 1, 0, true, 4, NOW), Err(INVALID_PRODUCER_ID_MAPPING));
    let id = init(&mut s);
    assert_eq!(s.end_txn(1, "tx", id.0, id.1, true, 4, NOW), Err(INVALID_TXN_STATE), "nothing in it");
    assert_eq!(s.end_txn(1, "tx", id.0 + 1, id.1, true, 4, NOW), Err(INVALID_PRODUCER_ID_MAPPING));
    assert_eq!(s.end_txn(1, "", id.0, id.1, true, 4, NOW), Err(ErrorCode::INVALID_REQUEST));
    assert_eq!(s.end_txn(2, "tx", id.0, id.1, true, 4, NOW), Err(NOT_COORDINATOR));
    assert_eq!(s.init_transactional(1, "tx", 900_001, (-1, -1), NOW), Err(INVALID_TRANSACTION_TIMEOUT));
    assert_eq!(s.init_transactional(1, "tx", 0, (-1, -1), NOW), Err(INVALID_TRANSACTION_TIMEOUT));
}

#[test]
fn before_kip_890_part_2_a_partition_must_be_added_first() {
    for (tv, version) in [(1, 12), (2, 11)] {
        let mut s = state(tv);
        let id = init(&mut s);
        assert_eq!(produce(&mut s, 0, &["a"], id, 0, version), INVALID_TXN_STATE, "tv {tv} v{version}");
        assert_eq!(part(&s, 0).next_offset, 0, "not appended");
        add(&mut s, id, 0).unwrap();
        assert_eq!(produce(&mut s, 1, &["a"], id, 0, version), INVALID_TXN_STATE, "another partition");
        assert_eq!(produce(&mut s, 0, &["a"], id, 0, version), ErrorCode::NONE);
    }
}

#[test]
fn transactions_v2_add_implicitly_and_bump_the_epoch_at_the_end() {
    let mut s = state(2);
    let id = init(&mut s);
    assert_eq!(produce(&mut s, 0, &["a"], id, 0, 12), ErrorCode::NONE);
    assert_eq!(produce(&mut s, 1, &["b"], id, 0, 12), ErrorCode::NONE);
    let next = s.end_txn(1, "tx", id.0, id.1, true, 5, NOW).unwrap();
    assert_eq!(next, (id.0, id.1 + 1));
    let h = crate::protocol::records::read_header(&part(&s, 1).log.last().unwrap().bytes).unwrap().unwrap();
    assert_eq!(h.producer_epoch, next.1, "markers carry the new epoch");
    assert_eq!(values(part(&s, 1).committed_records()), ["b"]);
    // A retry of that EndTxn gets the same answer; the old epoch is fenced otherwise.
    assert_eq!(s.end_txn(1, "tx", id.0, id.1, true, 5, NOW), Ok(next));
    assert_eq!(s.end_txn(1, "tx", id.0, id.1, false, 5, NOW), Err(PRODUCER_FENCED));
    assert_eq!(produce(&mut s, 0, &["x"], id, 1, 12), ErrorCode::INVALID_PRODUCER_EPOCH);
    // The next transaction starts its sequences again at 0.
    assert_eq!(produce(&mut s, 0, &["c"], next, 0, 12), ErrorCode::NONE);
    let after = s.end_txn(1, "tx", next.0, next.1, false, 5, NOW).unwrap();
    assert_eq!(after.1, next.1 + 1);
    assert_eq!(values(part(&s, 0).committed_records()), ["a"]);
    // An abort with nothing open only bumps the epoch.
    assert_eq!(s.end_txn(1, "tx", after.0, after.1, false, 5, NOW), Ok((after.0, after.1 + 1)));
    assert_eq!(s.end_txn(1, "tx", after.0, after.1 + 1, true, 5, NOW), Err(INVALID_TXN_STATE));
}

#[test]
fn init_aborts_an_open_transaction() {
    let mut s = state(1);
    let id = init(&mut s);
    add(&mut s, id, 0).unwrap();
    produce(&mut s, 0, &["a"], id, 0, 11);
    let next = init(&mut s);
    assert_eq!(next, (id.0, id.1 + 2), "fenced (markers at +1), then bumped");
    assert!(values(part(&s, 0).committed_records()).is_empty());
    assert_eq!(part(&s, 0).last_stable_offset(), 2);
    assert_eq!(produce(&mut s, 0, &["b"], id, 1, 11), ErrorCode::INVALID_PRODUCER_EPOCH);
}

#[test]
fn kip_360_bumps_only_the_current_epoch_and_answers_retries() {
    let mut s = state(2);
    let id = init(&mut s);
    let bumped = s.init_transactional(1, "tx", 60_000, id, NOW).unwrap();
    assert_eq!(bumped, (id.0, id.1 + 1));
    assert_eq!(s.init_transactional(1, "tx", 60_000, id, NOW), Ok(bumped), "a retry");
    assert_eq!(s.init_transactional(1, "tx", 60_000, (id.0, 7), NOW), Err(PRODUCER_FENCED));
    assert_eq!(s.init_transactional(1, "tx", 60_000, (id.0 + 1, bumped.1), NOW), Err(PRODUCER_FENCED));
}

#[test]
fn a_timed_out_transaction_is_aborted_and_its_producer_fenced() {
    let mut s = state(1);
    let id = s.init_transactional(1, "tx", 1_000, (-1, -1), NOW).unwrap();
    add(&mut s, id, 0).unwrap();
    produce(&mut s, 0, &["a"], id, 0, 11);
    assert!(!s.abort_timed_out(NOW + 1_000), "not yet");
    assert!(s.abort_timed_out(NOW + 1_001));
    assert!(values(part(&s, 0).committed_records()).is_empty());
    assert_eq!(part(&s, 0).last_stable_offset(), 2);
    assert_eq!(s.end_txn(1, "tx", id.0, id.1, true, 4, NOW), Err(PRODUCER_FENCED));
    assert_eq!(add(&mut s, id, 0), Err(PRODUCER_FENCED));
    assert_eq!(produce(&mut s, 0, &["b"], id, 1, 11), ErrorCode::INVALID_PRODUCER_EPOCH);
    assert_eq!(s.init_transactional(1, "tx", 1_000, id, NOW), Err(PRODUCER_FENCED), "no way back");
}

#[test]
fn offsets_committed_in_a_transaction_count_once_it_commits() {
    let mut s = state(1);
    let id = init(&mut s);
    let offset =
        |o| vec![(("t".to_owned(), 0), CommittedOffset { offset: o, leader_epoch: -1, metadata: None })];
    assert_eq!(s.txn_offset_commit(1, "tx", "g", id.0, id.1, -1, 3, offset(5), NOW), Err(INVALID_TXN_STATE));
    s.add_offsets_to_txn(1, "tx", id.0, id.1, "g", NOW).unwrap();
    assert_eq!(s.txn_offset_commit(1, "tx", "g", id.0, id.1, 3, 3, offset(5), NOW), Err(UNKNOWN_MEMBER_ID));
    assert_eq!(
        s.txn_offset_commit(1, "tx", "g", id.0, id.1 + 1, -1, 3, offset(5), NOW),
        Err(PRODUCER_FENCED)
    );
    s.txn_offset_commit(1, "tx", "g", id.0, id.1, -1, 3, offset(5), NOW).unwrap();
    assert!(s.txn.has_pending_offset("g", "t", 0));
    assert!(s.txn.offsets_of("g").is_none());
    s.end_txn(1, "tx", id.0, id.1, true, 4, NOW).unwrap();
    assert_eq!(s.txn.offsets_of("g").unwrap()[&("t".to_owned(), 0)].offset, 5);
    // Aborted: not applied. With transactions v2 and v5 the group joins by itself.
    let mut s2 = state(2);
    let id = init(&mut s2);
    s2.txn_offset_commit(1, "tx", "g", id.0, id.1, -1, 5, offset(9), NOW).unwrap();
    s2.end_txn(1, "tx", id.0, id.1, false, 5, NOW).unwrap();
    assert!(s2.txn.offsets_of("g").is_none());
}
