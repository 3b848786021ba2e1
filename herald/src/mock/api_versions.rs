//! ApiVersions (key 18), versions 0–4: which APIs and versions this broker serves,
//! and (v3+) the `transaction.version` feature: supported 0–2, finalized at the
//! cluster's setting.
//!
//! A request at a version above 4 is answered, as Kafka does, in v0 with
//! `UNSUPPORTED_VERSION` and the full list, so the client can retry at one we know.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;

use super::wire::{Close, Ctx, frame_response, versions};
use crate::error::ErrorCode;

/// The feature the transaction protocol version is finalized as (KIP-890).
const TRANSACTION_VERSION: &str = "transaction.version";

pub(super) fn handle(
    ctx: &Ctx,
    version: i16,
    correlation_id: i32,
    _frame: &Bytes,
) -> Result<BytesMut, Close> {
    let mut resp = ApiVersionsResponse::default();
    resp.api_keys = ApiKey::iter()
        .filter_map(|k| {
            let r = versions(k)?;
            let mut v = ApiVersion::default();
            v.api_key = k as i16;
            v.min_version = r.min;
            v.max_version = r.max;
            Some(v)
        })
        .collect();
    // v3+: features (KIP-584). `transaction.version` tells clients whether to use
    // the transaction protocol of KIP-890 part 2.
    let level = ctx.cluster.state.lock().settings.transaction_version;
    let mut supported = SupportedFeatureKey::default();
    supported.name = StrBytes::from_static_str(TRANSACTION_VERSION);
    supported.min_version = 0;
    supported.max_version = 2;
    resp.supported_features = vec![supported];
    resp.finalized_features_epoch = 1;
    if level > 0 {
        let mut finalized = FinalizedFeatureKey::default();
        finalized.name = StrBytes::from_static_str(TRANSACTION_VERSION);
        finalized.min_version_level = level;
        finalized.max_version_level = level;
        resp.finalized_features = vec![finalized];
    }
    let ours = versions(ApiKey::ApiVersions).map(|r| r.min <= version && version <= r.max).unwrap_or(false);
    if ours {
        frame_response(ApiKey::ApiVersions, version, correlation_id, &resp)
    } else {
        resp.error_code = ErrorCode::UNSUPPORTED_VERSION.code();
        frame_response(ApiKey::ApiVersions, 0, correlation_id, &resp)
    }
}
