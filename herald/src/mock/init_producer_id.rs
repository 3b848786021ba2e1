//! InitProducerId (key 22), versions 0–5: producer ids for idempotent and
//! transactional producers.
//!
//! Without a transactional id every call gets a fresh producer id at epoch 0, as
//! Kafka does (an idempotent producer bumps its epoch itself). With one, the
//! transaction coordinator answers (see `txn.rs`): the first call allocates a
//! producer id at epoch 0, later ones bump the epoch, fencing the producer that
//! held it and aborting its open transaction. `PRODUCER_FENCED` is
//! `INVALID_PRODUCER_EPOCH` below v4, as in `KafkaApis`.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::now_ms;
use super::txn::fenced_for;
use super::wire::Ctx;
use crate::error::ErrorCode;

pub(super) fn handle(
    ctx: &Ctx,
    req: InitProducerIdRequest,
    version: i16,
    fault: Option<ErrorCode>,
) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    if let Some(code) = fault {
        resp.error_code = code.code();
        return resp;
    }
    let mut s = ctx.cluster.state.lock();
    let Some(id) = req.transactional_id else {
        resp.producer_id = ProducerId(s.allocate_producer_id());
        resp.producer_epoch = 0;
        return resp;
    };
    let expected = (req.producer_id.0, req.producer_epoch);
    match s.init_transactional(ctx.broker, &id.0, req.transaction_timeout_ms, expected, now_ms()) {
        Ok((pid, epoch)) => {
            resp.producer_id = ProducerId(pid);
            resp.producer_epoch = epoch;
        }
        Err(code) => resp.error_code = fenced_for(code, version, 4).code(),
    }
    drop(s);
    ctx.cluster.appended.notify_waiters();
    resp
}
