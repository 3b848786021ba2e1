//! AddOffsetsToTxn (key 25), versions 0–4: a producer adds a consumer group to its
//! transaction before committing the group's offsets in it (TxnOffsetCommit).
//! `PRODUCER_FENCED` is `INVALID_PRODUCER_EPOCH` below v2.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::now_ms;
use super::txn::fenced_for;
use super::wire::Ctx;
use crate::error::ErrorCode;

pub(super) fn handle(
    ctx: &Ctx,
    req: AddOffsetsToTxnRequest,
    version: i16,
    fault: Option<ErrorCode>,
) -> AddOffsetsToTxnResponse {
    let mut resp = AddOffsetsToTxnResponse::default();
    let code = match fault {
        Some(code) => code,
        None => {
            let mut s = ctx.cluster.state.lock();
            match s.add_offsets_to_txn(
                ctx.broker,
                &req.transactional_id.0,
                req.producer_id.0,
                req.producer_epoch,
                &req.group_id.0,
                now_ms(),
            ) {
                Ok(()) => ErrorCode::NONE,
                Err(code) => fenced_for(code, version, 2),
            }
        }
    };
    resp.error_code = code.code();
    resp
}
