//! What the sender does with a Produce answer.
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
use tokio::time::Instant;

use super::accumulator::{PartitionQueue, ProducerBatch};
use super::delivery::BatchAck;
use super::idempotence::Verdict;
use super::sender::Sender;
use crate::connection::BrokerAddr;
use crate::error::{Error, ErrorCode, ErrorKind, TimeoutKind};

/// A broker's answer for one partition of a Produce request.
#[derive(Debug, Clone)]
pub(crate) struct PartitionAnswer {
    code: ErrorCode,
    base_offset: i64,
    log_append_time: i64,
    message: Option<String>,
    /// KIP-951: the leader the broker knows, when it is not it.
    leader_hint: Option<i32>,
}

impl Sender {
    pub(crate) fn handle_produce(&mut self, id: u64, result: Result<Option<ProduceResponse>, crate::Error>) {
        let Some(f) = self.in_flight.remove(&id) else { return };
        if let Some(n) = self.in_flight_per_node.get_mut(&f.node) {
            *n = n.saturating_sub(1);
        }
        for (q, _) in &f.batches {
            q.state.lock().request_done();
        }
        let resp = match result {
            Err(e) => {
                tracing::debug!(broker = %f.broker, error = %e, "produce request got no answer");
                self.metadata.request();
                if matches!(e.kind(), ErrorKind::Timeout { .. } | ErrorKind::Protocol { .. }) {
                    self.transport.close_node(f.node);
                }
                // An authentication failure means the connection never carried
                // the request.
                let unsent = e.is_authentication();
                for (q, mut b) in f.batches {
                    // Handed to the connection and not answered: it may be written.
                    b.maybe_written |= !unsent;
                    let retriable = e.is_retriable();
                    self.retry_or_fail(&q, b, e.clone(), retriable);
                }
                if unsent {
                    self.authentication_failed(&e);
                }
                return;
            }
            Ok(None) => {
                // acks=0: written to the socket is all we will ever know.
                for (_, b) in f.batches {
                    b.complete(BatchAck { base_offset: None, log_append_time: None });
                }
                return;
            }
            Ok(Some(resp)) => resp,
        };
        self.learn_endpoints(&resp);
        let mut answers = answers_by_partition(&f.topic_ids, resp);
        for (q, mut b) in f.batches {
            let answer = answers.remove(&(q.topic.clone(), q.partition));
            let Some(a) = answer else {
                b.maybe_written = true;
                let e = Error::protocol(&*f.broker, "the produce response has no answer for this partition");
                self.retry_or_fail(&q, b, e, true);
                continue;
            };
            if a.code.is_stale_metadata() {
                self.metadata.request();
            }
            if let Some(leader) = a.leader_hint.filter(|l| *l >= 0 && self.transport.knows(*l)) {
                // KIP-951: go to the new leader without waiting for metadata.
                q.leader.store(leader, std::sync::atomic::Ordering::Release);
            }
            let idempotent = self.producer_id.is_some();
            let decision = classify(a, &mut b, |b, code| {
                if idempotent { q.state.lock().judge(b, code) } else { plain_verdict(code) }
            });
            match decision {
                Decision::Written { base_offset, log_append_time } => {
                    self.written(&q, b, base_offset, log_append_time)
                }
                Decision::Retry(e) => self.retry_or_fail(&q, b, e, true),
                Decision::Fail(e) => b.fail_honestly(e),
            }
        }
        for ((t, p), _) in answers {
            tracing::warn!(broker = %f.broker, topic = %t, partition = p, "produce response for a partition that was not asked about; ignored");
        }
    }

    fn written(
        &mut self,
        q: &PartitionQueue,
        b: ProducerBatch,
        base_offset: Option<i64>,
        log_append_time: Option<i64>,
    ) {
        if let Some(stamp) = b.stamp {
            q.state.lock().written(stamp, b.records);
        }
        b.complete(BatchAck { base_offset, log_append_time });
    }

    /// KIP-951: brokers named in the answer's endpoints become reachable at once.
    fn learn_endpoints(&mut self, resp: &ProduceResponse) {
        for e in &resp.node_endpoints {
            let Ok(port) = u16::try_from(e.port) else { continue };
            if port == 0 || e.host.is_empty() {
                continue;
            }
            self.transport.add_broker(BrokerAddr {
                node_id: Some(e.node_id.0),
                host: e.host.to_string(),
                port,
            });
        }
    }

    /// Puts a batch back for another attempt if the error is `retriable` and
    /// `retries` and `delivery.timeout.ms` allow; otherwise fails it with `err` (and,
    /// with idempotence, marks the partition's sequence unresolved if the batch had
    /// been sent).
    pub(crate) fn retry_or_fail(
        &mut self,
        q: &PartitionQueue,
        mut b: ProducerBatch,
        err: Error,
        retriable: bool,
    ) {
        let cfg = &self.shared.config;
        let now = Instant::now();
        let wait = self.backoff.after(b.attempts);
        let deadline = b.created + cfg.delivery_timeout;
        if !retriable || b.attempts > cfg.retries || now + wait >= deadline {
            q.state.lock().failed_after_send(&b);
            let err = if retriable && now + wait >= deadline {
                Error::timeout(TimeoutKind::Delivery, cfg.delivery_timeout).caused_by(err)
            } else {
                err
            };
            b.fail_honestly(err);
            return;
        }
        tracing::debug!(topic = %q.topic, partition = q.partition, records = b.records, attempt = b.attempts, error = %err, "retrying batch");
        b.retry_at = Some(now + wait);
        b.last_error = Some(err);
        q.state.lock().requeue(b);
    }
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
fn answers_by_partition(
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
    use crate::producer::accumulator::tests_support::batch;
    use crate::producer::idempotence::{SeqState, Stamp};

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
