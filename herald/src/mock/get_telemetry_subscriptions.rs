//! GetTelemetrySubscriptions (key 71), version 0: client telemetry (KIP-714), as
//! a Kafka broker with a client telemetry plugin but no `CLIENT_METRICS`
//! subscription answers: a client instance id (a new one when the request's is
//! zero), the compression types Kafka accepts (zstd, lz4, gzip, snappy), Kafka's
//! default interval (`interval.ms` 300000), and no requested metrics — so a
//! client pushes nothing and asks again after the interval. Each request is
//! counted per client id ([`crate::mock::MockCluster::telemetry_requests`]).

use kafka_protocol::messages::{GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse};

use super::wire::Ctx;
use crate::error::ErrorCode;

/// The subscription id of "no metrics" (any fixed value: there is one subscription).
pub(super) const EMPTY_SUBSCRIPTION: i32 = 0;

pub(super) fn handle(
    ctx: &Ctx,
    req: GetTelemetrySubscriptionsRequest,
    client_id: &str,
    fault: Option<ErrorCode>,
) -> GetTelemetrySubscriptionsResponse {
    ctx.cluster.count_telemetry(client_id, false);
    let mut resp = GetTelemetrySubscriptionsResponse::default();
    if let Some(code) = fault {
        resp.error_code = code.code();
        return resp;
    }
    resp.client_instance_id = if req.client_instance_id.is_nil() {
        uuid::Uuid::from_u128(fastrand::u128(1..))
    } else {
        req.client_instance_id
    };
    resp.subscription_id = EMPTY_SUBSCRIPTION;
    resp.accepted_compression_types = vec![4, 3, 1, 2];
    resp.push_interval_ms = 300_000;
    resp.telemetry_max_bytes = 1024 * 1024;
    resp
}
