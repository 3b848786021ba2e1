//! ApiVersions (key 18), versions 0–4: which APIs and versions this broker serves.
//!
//! A request at a version above 4 is answered, as Kafka does, in v0 with
//! `UNSUPPORTED_VERSION` and the full list, so the client can retry at one we know.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

use super::wire::{Close, Ctx, frame_response, versions};
use crate::error::ErrorCode;

pub(super) fn handle(
    _ctx: &Ctx,
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
    let ours = versions(ApiKey::ApiVersions).map(|r| r.min <= version && version <= r.max).unwrap_or(false);
    if ours {
        frame_response(ApiKey::ApiVersions, version, correlation_id, &resp)
    } else {
        resp.error_code = ErrorCode::UNSUPPORTED_VERSION.code();
        frame_response(ApiKey::ApiVersions, 0, correlation_id, &resp)
    }
}
