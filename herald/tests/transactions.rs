//! Transactions (KIP-98, KIP-447, KIP-890) against the cluster under test, read
//! back by the Java `KafkaConsumer` with `isolation.level=read_committed`:
//! committed records visible exactly once and in order per partition, aborted
//! ones never; offsets sent to a transaction committed with it; a newer producer
//! with the same `transactional.id` fencing the older; the coordinator aborting a
//! transaction left open past `transaction.timeout.ms`.
//!
//! Kafka 4.x runs transactions v2 (partitions added by Produce, the epoch bumped
//! by every EndTxn); Kafka 3.9 runs v1 (AddPartitionsToTxn, AddOffsetsToTxn).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use herald::{ConsumerGroupMetadata, ErrorKind, Producer, Record, TxnOffset};
use serde::Deserialize;
use support::{Consumed, bootstrap, create_topic, java, producer_builder, topic_name};

fn transactional(id: &str) -> Producer {
    producer_builder().set("transactional.id", id).build().expect("transactional producer")
}

/// Reads `topic` with the Java consumer at `isolation` (`read_committed` or
/// `read_uncommitted`).
async fn consume(topic: &str, isolation: &str) -> Vec<Consumed> {
    support::consume_with_java_properties(topic, &[&format!("isolation.level={isolation}")]).await
}

/// The values read, per partition, in offset order.
fn values_by_partition(records: &[Consumed]) -> BTreeMap<i32, Vec<String>> {
    let mut out: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for r in records {
        let v = String::from_utf8(r.value.clone().unwrap_or_default()).unwrap();
        out.entry(r.partition).or_default().push(v);
    }
    out
}

/// Sends `n` records named `{tag}-{i}` round the partitions, waiting for each.
async fn send_values(
    p: &Producer,
    topic: &str,
    partitions: i32,
    tag: &str,
    n: usize,
) -> BTreeMap<i32, Vec<String>> {
    let mut want: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut futures = Vec::new();
    for i in 0..n {
        let partition = (i as i32) % partitions;
        let v = format!("{tag}-{i}");
        futures.push(
            p.send(Record::new(topic).partition(partition).value(v.clone())).await.expect("send accepted"),
        );
        want.entry(partition).or_default().push(v);
    }
    for f in futures {
        f.await.expect("record written");
    }
    want
}

fn merge(a: &mut BTreeMap<i32, Vec<String>>, b: BTreeMap<i32, Vec<String>>) {
    for (p, v) in b {
        a.entry(p).or_default().extend(v);
    }
}

#[tokio::test]
async fn committed_records_are_read_once_in_order_and_aborted_ones_never() {
    let topic = create_topic("txn-commit", 3, &[]).await;
    let p = transactional(&topic_name("tx"));
    p.init_transactions().await.unwrap();

    let mut committed = BTreeMap::new();
    p.begin_transaction().unwrap();
    merge(&mut committed, send_values(&p, &topic, 3, "a", 30).await);
    p.commit_transaction().await.unwrap();

    p.begin_transaction().unwrap();
    let aborted = send_values(&p, &topic, 3, "b", 20).await;
    p.abort_transaction().await.unwrap();

    // Queued but never sent: fails as aborted, not written.
    p.begin_transaction().unwrap();
    let queued = p.send(Record::new(&topic).partition(0).value("never")).await.unwrap();
    p.abort_transaction().await.unwrap();
    let e = queued.await.expect_err("an aborted transaction's record");
    assert!(e.is_transaction_abortable() || matches!(e.kind(), ErrorKind::TransactionAborted), "{e}");

    p.begin_transaction().unwrap();
    merge(&mut committed, send_values(&p, &topic, 3, "c", 12).await);
    p.commit_transaction().await.unwrap();
    p.close(Duration::from_secs(10)).await.unwrap();

    let read = consume(&topic, "read_committed").await;
    assert_eq!(values_by_partition(&read), committed, "read_committed sees exactly the committed records");
    // The aborted records are in the log, only hidden.
    let all = values_by_partition(&consume(&topic, "read_uncommitted").await);
    for (partition, values) in aborted {
        for v in values {
            assert!(all[&partition].contains(&v), "aborted {v} is in partition {partition}'s log");
        }
    }
}

#[derive(Deserialize, Debug, PartialEq, Eq)]
struct GroupOffset {
    topic: String,
    partition: i32,
    offset: i64,
    metadata: String,
}

async fn group_offsets(group: &str) -> Vec<GroupOffset> {
    let out =
        java("dev.herald.tools.GroupOffsets", &["--bootstrap", &bootstrap(), "--group", group], None).await;
    out.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test]
async fn offsets_sent_to_a_transaction_are_committed_with_it_and_only_then() {
    let input = create_topic("txn-in", 2, &[]).await;
    let output = create_topic("txn-out", 1, &[]).await;
    let group = topic_name("txn-group");
    let p = transactional(&topic_name("tx"));
    p.init_transactions().await.unwrap();

    // Aborted: the group sees no offsets.
    p.begin_transaction().unwrap();
    send_values(&p, &output, 1, "x", 3).await;
    let offsets = [TxnOffset::new(&input, 0, 5), TxnOffset::new(&input, 1, 7)];
    p.send_offsets_to_transaction(offsets.clone(), &ConsumerGroupMetadata::new(&group)).await.unwrap();
    p.abort_transaction().await.unwrap();
    assert_eq!(group_offsets(&group).await, vec![], "an aborted transaction's offsets are not committed");

    // Committed: they are.
    p.begin_transaction().unwrap();
    send_values(&p, &output, 1, "y", 3).await;
    let offsets = [TxnOffset::new(&input, 0, 10).metadata("m0"), TxnOffset::new(&input, 1, 20)];
    p.send_offsets_to_transaction(offsets, &ConsumerGroupMetadata::new(&group)).await.unwrap();
    p.commit_transaction().await.unwrap();
    let want = vec![
        GroupOffset { topic: input.clone(), partition: 0, offset: 10, metadata: "m0".into() },
        GroupOffset { topic: input.clone(), partition: 1, offset: 20, metadata: String::new() },
    ];
    assert_eq!(group_offsets(&group).await, want);
    let read = values_by_partition(&consume(&output, "read_committed").await);
    assert_eq!(read[&0], vec!["y-0", "y-1", "y-2"]);
}

#[tokio::test]
async fn a_newer_producer_with_the_same_id_fences_the_older() {
    let topic = create_topic("txn-fence", 1, &[]).await;
    let id = topic_name("tx");
    let old = transactional(&id);
    old.init_transactions().await.unwrap();
    old.begin_transaction().unwrap();
    send_values(&old, &topic, 1, "zombie", 5).await;

    let new = transactional(&id);
    new.init_transactions().await.unwrap();

    let e = old.commit_transaction().await.expect_err("the older producer is fenced");
    assert!(matches!(e.kind(), ErrorKind::Fenced { .. }), "{e}");
    assert!(e.is_transaction_fatal());
    let e = old.begin_transaction().expect_err("and stays fenced");
    assert!(e.is_transaction_fatal(), "{e}");

    new.begin_transaction().unwrap();
    send_values(&new, &topic, 1, "new", 4).await;
    new.commit_transaction().await.unwrap();
    let read = values_by_partition(&consume(&topic, "read_committed").await);
    assert_eq!(
        read[&0],
        vec!["new-0", "new-1", "new-2", "new-3"],
        "the fenced producer's open transaction was aborted"
    );
}

#[tokio::test]
async fn the_coordinator_aborts_a_transaction_left_open_past_its_timeout() {
    let topic = create_topic("txn-timeout", 1, &[]).await;
    let p = producer_builder()
        .set("transactional.id", &topic_name("tx"))
        .set("transaction.timeout.ms", "1500")
        .build()
        .unwrap();
    p.init_transactions().await.unwrap();
    p.begin_transaction().unwrap();
    send_values(&p, &topic, 1, "late", 3).await;
    // The coordinator checks every second (harness/kafka sets
    // transaction.abort.timed.out.transaction.cleanup.interval.ms=1000); a
    // read_committed reader stops at the first open transaction's first offset.
    tokio::time::sleep(Duration::from_millis(4000)).await;
    // A record committed after it: read_committed readers reach it only past the
    // timed-out transaction's end (its abort marker).
    let after = transactional(&topic_name("tx"));
    after.init_transactions().await.unwrap();
    after.begin_transaction().unwrap();
    send_values(&after, &topic, 1, "after", 1).await;
    after.commit_transaction().await.unwrap();
    let read = values_by_partition(&consume(&topic, "read_committed").await);
    assert_eq!(read.get(&0), Some(&vec!["after-0".to_owned()]), "the timed-out transaction was aborted");
    let e = p.commit_transaction().await.expect_err("its producer was fenced by the abort's epoch bump");
    assert!(e.is_transaction_fatal() || e.is_transaction_abortable(), "{e}");
}

#[tokio::test]
async fn calls_out_of_order_are_refused_with_a_clear_error() {
    let topic = create_topic("txn-state", 1, &[]).await;
    let plain = producer_builder().build().unwrap();
    let e = plain.init_transactions().await.unwrap_err();
    assert!(e.to_string().contains("transactional.id"), "{e}");

    let p = transactional(&topic_name("tx"));
    let e = p.begin_transaction().unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::TransactionState { .. }) && e.to_string().contains("init_transactions"),
        "{e}"
    );
    p.init_transactions().await.unwrap();
    let e = p.send(Record::new(&topic).value("v")).await.unwrap_err();
    assert!(e.to_string().contains("begin_transaction"), "{e}");
    let e = p.commit_transaction().await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::TransactionState { .. }), "{e}");
    p.begin_transaction().unwrap();
    assert!(p.begin_transaction().is_err(), "one transaction at a time");
    // Nothing was sent: committing an empty transaction is fine.
    p.commit_transaction().await.unwrap();
}

#[tokio::test]
async fn a_refused_record_makes_the_transaction_abortable_and_the_next_one_commits() {
    let topic = create_topic("txn-abortable", 1, &[]).await;
    let p = producer_builder()
        .set("transactional.id", &topic_name("tx"))
        .set("max.request.size", "2000")
        .build()
        .unwrap();
    p.init_transactions().await.unwrap();
    p.begin_transaction().unwrap();
    send_values(&p, &topic, 1, "ok", 2).await;
    let e = p.send(Record::new(&topic).value(vec![b'x'; 5000])).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::RecordTooLarge { .. }), "{e}");
    let e = p.commit_transaction().await.unwrap_err();
    assert!(e.is_transaction_abortable(), "{e}");
    p.abort_transaction().await.unwrap();

    let result: Result<(), AppError> = p
        .in_transaction(|p| {
            let topic = topic.clone();
            async move {
                send_values(&p, &topic, 1, "again", 2).await;
                Ok(())
            }
        })
        .await;
    result.unwrap();
    let failed: Result<(), AppError> = p
        .in_transaction(|p| {
            let topic = topic.clone();
            async move {
                send_values(&p, &topic, 1, "dropped", 2).await;
                Err(AppError::Transform)
            }
        })
        .await;
    assert!(matches!(failed, Err(AppError::Transform)));
    let read = values_by_partition(&consume(&topic, "read_committed").await);
    assert_eq!(read[&0], vec!["again-0", "again-1"]);
}

/// An application's own error, as `in_transaction` bodies return.
#[derive(Debug)]
enum AppError {
    #[allow(dead_code)]
    Herald(herald::Error),
    Transform,
}

impl From<herald::Error> for AppError {
    fn from(e: herald::Error) -> AppError {
        AppError::Herald(e)
    }
}

#[tokio::test]
async fn a_purge_leaves_the_transaction_only_abortable_and_the_next_one_commits() {
    let topic = create_topic("txn-purge", 2, &[]).await;
    // A linger far longer than the test: records stay queued until a commit
    // flushes them.
    let p = producer_builder()
        .set("transactional.id", &topic_name("tx"))
        .linger(Duration::from_secs(300))
        .delivery_timeout(Duration::from_secs(400))
        .build()
        .unwrap();
    p.init_transactions().await.unwrap();

    p.begin_transaction().unwrap();
    let mut purged = Vec::new();
    for i in 0..10 {
        purged.push(p.send(Record::new(&topic).partition(i % 2).value("purged")).await.unwrap());
    }
    assert_eq!(p.purge().await.unwrap(), 10);
    for f in purged {
        let e = f.await.unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::Purged, "{e}");
    }
    let e = p.commit_transaction().await.expect_err("records of the transaction are missing");
    assert!(e.is_transaction_abortable(), "{e}");
    p.abort_transaction().await.unwrap();

    p.begin_transaction().unwrap();
    let mut futures = Vec::new();
    for i in 0..6 {
        futures.push(p.send(Record::new(&topic).partition(i % 2).value(format!("kept-{i}"))).await.unwrap());
    }
    p.commit_transaction().await.unwrap();
    for f in futures {
        f.await.expect("committed");
    }
    p.close(Duration::from_secs(10)).await.unwrap();
    let read = values_by_partition(&consume(&topic, "read_committed").await);
    let want: BTreeMap<i32, Vec<String>> = [
        (0, vec!["kept-0".to_string(), "kept-2".into(), "kept-4".into()]),
        (1, vec!["kept-1".to_string(), "kept-3".into(), "kept-5".into()]),
    ]
    .into();
    assert_eq!(read, want, "read_committed sees the second transaction only");
}
