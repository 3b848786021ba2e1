//! Produce (key 0), versions 3–13: appends each partition's record batch.
//!
//! acks must be -1, 0 or 1 (`INVALID_REQUIRED_ACKS` otherwise); acks=0 is appended
//! and not answered. v13 names topics by id (`UNKNOWN_TOPIC_ID` for an unknown
//! one). Validation is [`State::append`](super::state::State::append)'s. A
//! `NOT_LEADER_OR_FOLLOWER` answer carries the current leader and its endpoint
//! (KIP-951), as Kafka 3.7+ does. Transactional batches are checked with the
//! transaction coordinator (`txn.rs`): with `transaction.version` 2, v12+ adds
//! their partitions to the transaction itself (KIP-890).

use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use super::now_ms;
use super::wire::Ctx;
use crate::error::ErrorCode;

pub(super) fn handle(
    ctx: &Ctx,
    req: ProduceRequest,
    version: i16,
    fault: Option<ErrorCode>,
) -> ProduceResponse {
    let now = now_ms();
    let mut resp = ProduceResponse::default();
    let acks_ok = matches!(req.acks, -1..=1);
    let mut leaders_named = Vec::new();
    {
        let mut s = ctx.cluster.state.lock();
        for td in req.topic_data {
            let name = if version >= 13 {
                s.topic_by_id(td.topic_id).map(|(n, _)| n.clone())
            } else {
                Some(td.name.0.to_string())
            };
            let mut tr = TopicProduceResponse::default();
            tr.name = td.name.clone();
            tr.topic_id = td.topic_id;
            for pd in td.partition_data {
                let mut pr = PartitionProduceResponse::default();
                pr.index = pd.index;
                pr.base_offset = -1;
                pr.log_append_time_ms = -1;
                pr.log_start_offset = -1;
                let code = match (&name, fault, acks_ok) {
                    (_, Some(code), _) => code,
                    (_, None, false) => ErrorCode::INVALID_REQUIRED_ACKS,
                    (None, None, true) => ErrorCode::UNKNOWN_TOPIC_ID,
                    (Some(name), None, true) => {
                        let txn = req.transactional_id.as_ref().map(|t| &*t.0);
                        let r = s.append_with(name, pd.index, ctx.broker, pd.records, version, txn, now);
                        pr.base_offset = r.base_offset;
                        pr.log_append_time_ms = r.log_append_time;
                        pr.log_start_offset = r.log_start_offset;
                        pr.error_message = r.message.map(StrBytes::from_string);
                        pr.record_errors = r
                            .record_errors
                            .into_iter()
                            .map(|(i, m)| {
                                let mut e = BatchIndexAndErrorMessage::default();
                                e.batch_index = i;
                                e.batch_index_error_message = Some(StrBytes::from_string(m));
                                e
                            })
                            .collect();
                        if r.code == ErrorCode::NOT_LEADER_OR_FOLLOWER {
                            if let Some(p) =
                                s.topics.get(name).and_then(|t| t.partitions.get(pd.index as usize))
                            {
                                let mut l = LeaderIdAndEpoch::default();
                                l.leader_id = BrokerId(p.leader);
                                l.leader_epoch = p.leader_epoch;
                                pr.current_leader = l;
                                leaders_named.push(p.leader);
                            }
                        }
                        r.code
                    }
                };
                pr.error_code = code.code();
                tr.partition_responses.push(pr);
            }
            resp.responses.push(tr);
        }
        leaders_named.sort_unstable();
        leaders_named.dedup();
        for id in leaders_named {
            if let Some(b) = s.brokers.get(&id).filter(|b| b.up) {
                let mut e = NodeEndpoint::default();
                e.node_id = BrokerId(id);
                e.host = StrBytes::from_static_str("127.0.0.1");
                e.port = i32::from(b.port);
                resp.node_endpoints.push(e);
            }
        }
    }
    resp.throttle_time_ms = i32::try_from(ctx.cluster.produce_throttle().as_millis()).unwrap_or(i32::MAX);
    ctx.cluster.appended.notify_waiters();
    resp
}

/// Adds an answer for a partition nobody asked about (the `ExtraPartition` fault).
pub(super) fn add_unasked_partition(resp: &mut ProduceResponse) {
    let mut pr = PartitionProduceResponse::default();
    pr.index = 9999;
    pr.base_offset = 0;
    let mut tr = TopicProduceResponse::default();
    tr.name = kafka_protocol::messages::TopicName(StrBytes::from_static_str("nobody-asked"));
    tr.partition_responses.push(pr);
    resp.responses.push(tr);
}
