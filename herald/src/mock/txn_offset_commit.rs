//! TxnOffsetCommit (key 28), versions 0–5, on the group coordinator: offsets a
//! transaction commits for a consumer group, applied when it commits (KIP-98,
//! KIP-447). Errors apply to every partition of the request. A stale epoch is
//! `INVALID_PRODUCER_EPOCH` at every version: the group coordinator learns it
//! from the transaction's verification (KIP-890), which turns the transaction
//! coordinator's `PRODUCER_FENCED` into it, as Kafka's `AddPartitionsToTxnManager`
//! does.

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::now_ms;
use super::txn::{CommittedOffset, fenced_for};
use super::wire::Ctx;
use crate::error::ErrorCode;

pub(super) fn handle(
    ctx: &Ctx,
    req: TxnOffsetCommitRequest,
    version: i16,
    fault: Option<ErrorCode>,
) -> TxnOffsetCommitResponse {
    let offsets: Vec<((String, i32), CommittedOffset)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                let o = CommittedOffset {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                };
                ((t.name.0.to_string(), p.partition_index), o)
            })
        })
        .collect();
    let code = match fault {
        Some(code) => code,
        None => {
            // Before v3 there is no generation: such commits come from outside the
            // group protocol.
            let generation = if version >= 3 { req.generation_id } else { -1 };
            let mut s = ctx.cluster.state.lock();
            match s.txn_offset_commit(
                ctx.broker,
                &req.transactional_id.0,
                &req.group_id.0,
                req.producer_id.0,
                req.producer_epoch,
                generation,
                version,
                offsets,
                now_ms(),
            ) {
                Ok(()) => ErrorCode::NONE,
                Err(code) => fenced_for(code, version, i16::MAX),
            }
        }
    };
    let mut resp = TxnOffsetCommitResponse::default();
    for t in &req.topics {
        let mut tr = TxnOffsetCommitResponseTopic::default();
        tr.name = t.name.clone();
        for p in &t.partitions {
            let mut pr = TxnOffsetCommitResponsePartition::default();
            pr.partition_index = p.partition_index;
            pr.error_code = code.code();
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    resp
}
