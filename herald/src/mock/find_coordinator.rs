//! FindCoordinator (key 10), versions 1–6: which broker coordinates a group
//! (key type 0) or a transactional id (key type 1). v4+ asks for several keys at
//! once (`coordinator_keys`). The coordinator is one of the live brokers, chosen
//! by the key's hash; `COORDINATOR_NOT_AVAILABLE` when none is alive. Other key
//! types are `INVALID_REQUEST`.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::state::State;
use super::txn::COORDINATOR_NOT_AVAILABLE;
use super::wire::Ctx;
use crate::error::ErrorCode;

pub(super) fn handle(
    ctx: &Ctx,
    req: FindCoordinatorRequest,
    version: i16,
    fault: Option<ErrorCode>,
) -> FindCoordinatorResponse {
    let s = ctx.cluster.state.lock();
    let mut resp = FindCoordinatorResponse::default();
    if version >= 4 {
        for key in req.coordinator_keys {
            let (code, node, port) = find(&s, &key, req.key_type, fault);
            let mut c = Coordinator::default();
            c.key = key;
            c.node_id = BrokerId(node);
            c.host = host(node);
            c.port = port;
            c.error_code = code.code();
            resp.coordinators.push(c);
        }
    } else {
        let (code, node, port) = find(&s, &req.key, req.key_type, fault);
        resp.error_code = code.code();
        resp.node_id = BrokerId(node);
        resp.host = host(node);
        resp.port = port;
    }
    resp
}

fn host(node: i32) -> StrBytes {
    if node >= 0 { StrBytes::from_static_str("127.0.0.1") } else { StrBytes::default() }
}

/// (error, node id, port) for one key.
fn find(s: &State, key: &str, key_type: i8, fault: Option<ErrorCode>) -> (ErrorCode, i32, i32) {
    if let Some(code) = fault {
        return (code, -1, -1);
    }
    if !matches!(key_type, 0 | 1) {
        return (ErrorCode::INVALID_REQUEST, -1, -1);
    }
    match s.coordinator_for(key).and_then(|id| Some((id, s.brokers.get(&id)?.port))) {
        Some((id, port)) => (ErrorCode::NONE, id, i32::from(port)),
        None => (COORDINATOR_NOT_AVAILABLE, -1, -1),
    }
}
