//! AddPartitionsToTxn (key 24), versions 0–3: a producer adds partitions to its
//! transaction before writing to them (the v4+ broker-to-broker form is not
//! served). Partitions of unknown topics fail with `UNKNOWN_TOPIC_OR_PARTITION`
//! and the others with `OPERATION_NOT_ATTEMPTED`, as `KafkaApis` answers;
//! otherwise every partition gets the coordinator's answer. `PRODUCER_FENCED` is
//! `INVALID_PRODUCER_EPOCH` below v2.

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use super::now_ms;
use super::state::State;
use super::txn::{OPERATION_NOT_ATTEMPTED, fenced_for};
use super::wire::Ctx;
use crate::error::ErrorCode;

pub(super) fn handle(
    ctx: &Ctx,
    req: AddPartitionsToTxnRequest,
    version: i16,
    fault: Option<ErrorCode>,
) -> AddPartitionsToTxnResponse {
    let mut s = ctx.cluster.state.lock();
    let exists = |s: &State, topic: &str, p: i32| {
        s.topics.get(topic).is_some_and(|t| usize::try_from(p).is_ok_and(|p| p < t.partitions.len()))
    };
    let wanted: Vec<(String, i32)> = req
        .v3_and_below_topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.to_string(), *p)))
        .collect();
    let any_unknown = wanted.iter().any(|(t, p)| !exists(&s, t, *p));
    let common = match fault {
        Some(code) => Some(code),
        None if any_unknown => None,
        None => Some(
            match s.add_partitions_to_txn(
                ctx.broker,
                &req.v3_and_below_transactional_id.0,
                req.v3_and_below_producer_id.0,
                req.v3_and_below_producer_epoch,
                &wanted,
                now_ms(),
            ) {
                Ok(()) => ErrorCode::NONE,
                Err(code) => fenced_for(code, version, 2),
            },
        ),
    };
    let mut resp = AddPartitionsToTxnResponse::default();
    for t in &req.v3_and_below_topics {
        let mut tr = AddPartitionsToTxnTopicResult::default();
        tr.name = t.name.clone();
        for p in &t.partitions {
            let mut pr = AddPartitionsToTxnPartitionResult::default();
            pr.partition_index = *p;
            let code = common.unwrap_or_else(|| {
                if exists(&s, &t.name.0, *p) {
                    OPERATION_NOT_ATTEMPTED
                } else {
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                }
            });
            pr.partition_error_code = code.code();
            tr.results_by_partition.push(pr);
        }
        resp.results_by_topic_v3_and_below.push(tr);
    }
    resp
}
