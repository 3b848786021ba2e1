//! PushTelemetry (key 72), version 0: client telemetry (KIP-714). The embedded
//! cluster subscribes to no metrics (see `get_telemetry_subscriptions.rs`), so a
//! push of its one subscription is accepted and dropped, and any other
//! subscription id is `UNKNOWN_SUBSCRIPTION_ID`, as Kafka answers a client whose
//! subscription changed. Each request is counted per client id.

use kafka_protocol::messages::{PushTelemetryRequest, PushTelemetryResponse};

use super::get_telemetry_subscriptions::EMPTY_SUBSCRIPTION;
use super::wire::Ctx;
use crate::error::ErrorCode;

/// `UNKNOWN_SUBSCRIPTION_ID`.
const UNKNOWN_SUBSCRIPTION_ID: i16 = 117;

pub(super) fn handle(
    ctx: &Ctx,
    req: PushTelemetryRequest,
    client_id: &str,
    fault: Option<ErrorCode>,
) -> PushTelemetryResponse {
    ctx.cluster.count_telemetry(client_id, true);
    let mut resp = PushTelemetryResponse::default();
    if let Some(code) = fault {
        resp.error_code = code.code();
    } else if req.subscription_id != EMPTY_SUBSCRIPTION {
        resp.error_code = UNKNOWN_SUBSCRIPTION_ID;
    }
    resp
}
