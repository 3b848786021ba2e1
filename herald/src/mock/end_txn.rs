//! EndTxn (key 26), versions 0–5: commits or aborts a transaction, writing a
//! marker to each of its partitions before answering. With `transaction.version`
//! 2, v5 bumps the producer's epoch and answers with the producer id and epoch the
//! next transaction uses (KIP-890). `PRODUCER_FENCED` is `INVALID_PRODUCER_EPOCH`
//! below v2.

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};

use super::now_ms;
use super::txn::fenced_for;
use super::wire::Ctx;
use crate::error::ErrorCode;

pub(super) fn handle(
    ctx: &Ctx,
    req: EndTxnRequest,
    version: i16,
    fault: Option<ErrorCode>,
) -> EndTxnResponse {
    let mut resp = EndTxnResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    let result = match fault {
        Some(code) => Err(code),
        None => ctx.cluster.state.lock().end_txn(
            ctx.broker,
            &req.transactional_id.0,
            req.producer_id.0,
            req.producer_epoch,
            req.committed,
            version,
            now_ms(),
        ),
    };
    match result {
        Ok((pid, epoch)) => {
            resp.producer_id = ProducerId(pid);
            resp.producer_epoch = epoch;
        }
        Err(code) => resp.error_code = fenced_for(code, version, 2).code(),
    }
    // Markers move last stable offsets: wake read_committed fetches.
    ctx.cluster.appended.notify_waiters();
    resp
}
