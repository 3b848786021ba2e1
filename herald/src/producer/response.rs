//! What a Produce answer means, as pure functions of the answer and the
//! partition's state (the sender acts on them in `on_produce.rs`).
//!
//! Per batch: written resolves it (base offset, and the broker's time for
//! LogAppendTime topics); a retriable error puts it back in its partition's queue,
//! in order, after a backoff — refreshing metadata first when the error says
//! leadership moved, and following the new leader at once when the answer names it
//! (KIP-951); any other error fails it with the broker's code and message. With
//! idempotence, sequence errors are judged by [`super::idempotence`]. A request
//! that got no answer (timeout, lost connection) leaves its batches *maybe written*:
//! they are retried with the same sequence, so the broker drops a copy it already
//! has, and if they fail for good their error says they may have been written.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::ProduceResponse;

use super::batch::ProducerBatch;
use super::idempotence::Verdict;
use crate::error::{Error, ErrorCode};

/// A broker's answer for one partition of a Produce request.
#[derive(Debug, Clone)]
pub(crate) struct PartitionAnswer {
    pub(crate) code: ErrorCode,
    pub(crate) base_offset: i64,
    pub(crate) log_append_time: i64,
    pub(crate) message: Option<String>,
    /// KIP-951: the leader the broker knows, when it is not it.
    pub(crate) leader_hint: Option<i32>,
}

/// What one partition's answer means for its batch.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Written (a duplicate of a batch the broker has counts too).
    Written { base_offset: Option<i64>, log_append_time: Option<i64> },
    /// Send it again, if retries and `delivery.timeout.ms` allow.
    Retry(Error),
    /// Failed for good.
    Fail(Error),
}

/// The verdict on an error code without idempotence: retriable or not.
pub(crate) fn plain_verdict(code: ErrorCode) -> Verdict {
    if code.is_retriable() { Verdict::Retry } else { Verdict::Fail }
}

/// Reads one partition's answer for batch `b`: the pure part of handling a
/// Produce answer (no lock, no I/O). `judge` reads an error code for the batch:
/// the partition's sequence state with idempotence, [`plain_verdict`] without.
pub(crate) fn classify(
    a: PartitionAnswer,
    b: &mut ProducerBatch,
    judge: impl FnOnce(&mut ProducerBatch, ErrorCode) -> Verdict,
) -> Decision {
    if a.code.is_ok() {
        return Decision::Written {
            base_offset: Some(a.base_offset),
            log_append_time: (a.log_append_time >= 0).then_some(a.log_append_time),
        };
    }
    let verdict = judge(b, a.code);
    // The broker answered: whatever it said, this attempt wrote nothing.
    let e = Error::broker(a.code, a.message);
    match verdict {
        // A duplicate: the broker has it, at an offset it may not say.
        Verdict::Written => Decision::Written {
            base_offset: (a.base_offset >= 0).then_some(a.base_offset),
            log_append_time: None,
        },
        // The verdict decides: OUT_OF_ORDER_SEQUENCE_NUMBER behind a missing batch
        // is not retriable by its code, yet must be retried.
        Verdict::Retry => Decision::Retry(e),
        Verdict::Fail => Decision::Fail(e),
    }
}

/// Each partition's answer, by topic name and partition. Produce v13 answers name
/// topics by id only: `topic_ids` are the request's.
pub(crate) fn answers_by_partition(
    topic_ids: &[(uuid::Uuid, Arc<str>)],
    resp: ProduceResponse,
) -> HashMap<(Arc<str>, i32), PartitionAnswer> {
    let mut answers = HashMap::new();
    for t in resp.responses {
        let name: Option<Arc<str>> = if t.name.0.is_empty() {
            topic_ids.iter().find(|(id, _)| *id == t.topic_id).map(|(_, name)| name.clone())
        } else {
            Some(Arc::from(t.name.0.as_str()))
        };
        let Some(name) = name else {
            tracing::warn!("produce response names a topic that was not asked about; ignored");
            continue;
        };
        for p in t.partition_responses {
            let mut message = p.error_message.map(|m| m.to_string());
            if !p.record_errors.is_empty() {
                let details: Vec<String> = p
                    .record_errors
                    .iter()
                    .map(|r| match &r.batch_index_error_message {
                        Some(m) => format!("record {}: {m}", r.batch_index),
                        None => format!("record {}", r.batch_index),
                    })
                    .collect();
                let joined = details.join("; ");
                message = Some(match message {
                    Some(m) => format!("{m}; {joined}"),
                    None => joined,
                });
            }
            let leader_hint = (p.current_leader.leader_id.0 >= 0).then_some(p.current_leader.leader_id.0);
            answers.insert(
                (name.clone(), p.index),
                PartitionAnswer {
                    code: ErrorCode::new(p.error_code),
                    base_offset: p.base_offset,
                    log_append_time: p.log_append_time_ms,
                    message,
                    leader_hint,
                },
            );
        }
    }
    answers
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::produce_response::{
        BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::protocol::StrBytes;

    use super::*;
    use crate::producer::batch::Stamp;
    use crate::producer::batch::tests_support::batch;
    use crate::producer::idempotence::SeqState;

    fn answer(code: ErrorCode, base_offset: i64) -> PartitionAnswer {
        PartitionAnswer { code, base_offset, log_append_time: -1, message: None, leader_hint: None }
    }

    #[test]
    fn success_is_written_at_the_base_offset_with_the_broker_time() {
        let mut b = batch(3);
        let mut a = answer(ErrorCode::NONE, 40);
        a.log_append_time = 1_700_000_000_000;
        match classify(a, &mut b, |_, _| unreachable!("no error to judge")) {
            Decision::Written { base_offset, log_append_time } => {
                assert_eq!((base_offset, log_append_time), (Some(40), Some(1_700_000_000_000)));
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn without_idempotence_the_code_decides() {
        let mut b = batch(1);
        let d = classify(answer(ErrorCode::NOT_LEADER_OR_FOLLOWER, -1), &mut b, |_, c| plain_verdict(c));
        assert!(matches!(d, Decision::Retry(e) if e.code() == Some(ErrorCode::NOT_LEADER_OR_FOLLOWER)));
        let mut a = answer(ErrorCode::INVALID_RECORD, -1);
        a.message = Some("bad record".into());
        let d = classify(a, &mut b, |_, c| plain_verdict(c));
        match d {
            Decision::Fail(e) => {
                assert_eq!(e.code(), Some(ErrorCode::INVALID_RECORD));
                assert!(e.to_string().contains("bad record"), "{e}");
                assert!(!e.may_have_been_written(), "the broker answered: nothing written");
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn with_idempotence_the_sequence_state_decides() {
        let mut seq = SeqState::default();
        seq.adopt(5, 0);
        let mut b = batch(2);
        b.stamp = Some(Stamp { producer_id: 5, epoch: 0, base_sequence: 0 });
        // A duplicate counts as written, at the offset the broker gives (or none).
        let d = classify(answer(ErrorCode::DUPLICATE_SEQUENCE_NUMBER, -1), &mut b, |b, c| seq.on_error(b, c));
        assert!(matches!(d, Decision::Written { base_offset: None, log_append_time: None }), "{d:?}");
        // Out of order for the very batch the broker should expect: it lost our
        // state; the batch is retried under a new epoch.
        let d =
            classify(answer(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, -1), &mut b, |b, c| seq.on_error(b, c));
        assert!(matches!(d, Decision::Retry(_)), "{d:?}");
        assert!(b.needs_restamp && seq.unresolved);
    }

    #[test]
    fn answers_are_matched_by_name_or_by_topic_id_and_carry_record_errors() {
        let mut resp = ProduceResponse::default();
        let mut t = TopicProduceResponse::default();
        t.name = TopicName(StrBytes::from_static_str("t"));
        let mut p = PartitionProduceResponse::default();
        p.index = 1;
        p.error_code = ErrorCode::INVALID_RECORD.code();
        p.error_message = Some(StrBytes::from_static_str("invalid"));
        let mut r = BatchIndexAndErrorMessage::default();
        r.batch_index = 0;
        r.batch_index_error_message = Some(StrBytes::from_static_str("null key on a compacted topic"));
        p.record_errors.push(r);
        p.current_leader.leader_id = kafka_protocol::messages::BrokerId(3);
        t.partition_responses.push(p);
        resp.responses.push(t);
        // Produce v13: a topic named by id only.
        let id = uuid::Uuid::from_u128(7);
        let mut by_id = TopicProduceResponse::default();
        by_id.topic_id = id;
        let mut p = PartitionProduceResponse::default();
        p.index = 0;
        p.base_offset = 12;
        by_id.partition_responses.push(p);
        resp.responses.push(by_id);
        let answers = answers_by_partition(&[(id, Arc::from("u"))], resp);
        assert_eq!(answers[&(Arc::from("u"), 0)].base_offset, 12);
        let a = &answers[&(Arc::from("t"), 1)];
        assert_eq!(a.code, ErrorCode::INVALID_RECORD);
        assert_eq!(a.message.as_deref(), Some("invalid; record 0: null key on a compacted topic"));
        assert_eq!(a.leader_hint, Some(3));
    }
}
