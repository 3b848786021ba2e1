//! InitProducerId (key 22), versions 0–5: producer ids for idempotent producers.
//!
//! Every call gets a fresh producer id at epoch 0, as Kafka does for producers
//! without a transactional id (an idempotent producer bumps its epoch itself).
//! Transactional ids are refused with `INVALID_REQUEST`: the embedded cluster has
//! no transaction coordinator.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::wire::Ctx;
use crate::error::ErrorCode;

pub(super) fn handle(
    ctx: &Ctx,
    req: InitProducerIdRequest,
    _version: i16,
    fault: Option<ErrorCode>,
) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    if let Some(code) = fault {
        resp.error_code = code.code();
        return resp;
    }
    if req.transactional_id.is_some() {
        resp.error_code = ErrorCode::INVALID_REQUEST.code();
        return resp;
    }
    let mut s = ctx.cluster.state.lock();
    let id = s.next_producer_id;
    s.next_producer_id += 1;
    resp.producer_id = ProducerId(id);
    resp.producer_epoch = 0;
    resp
}
