//! What the embedded cluster's API handlers share with the server that calls them:
//! the handler context, the reason a connection is closed, the versions served,
//! and request/response framing. A leaf: handlers import from here, never from
//! `server.rs`, which imports them.

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, VersionRange};

use super::Cluster;

/// What a handler needs: the cluster and which broker is answering.
pub(super) struct Ctx {
    pub(super) cluster: Arc<Cluster>,
    pub(super) broker: i32,
}

/// Why a connection is closed instead of answered.
#[derive(Debug)]
pub(super) struct Close(pub(super) String);

/// The versions the embedded cluster serves, per API (`None`: not served).
pub(super) fn versions(key: ApiKey) -> Option<VersionRange> {
    let r = |min, max| Some(VersionRange { min, max });
    match key {
        ApiKey::Produce => r(3, 13),
        ApiKey::Fetch => r(4, 16),
        ApiKey::ListOffsets => r(1, 9),
        ApiKey::Metadata => r(0, 12),
        ApiKey::ApiVersions => r(0, 4),
        ApiKey::CreateTopics => r(2, 7),
        ApiKey::DeleteTopics => r(1, 6),
        ApiKey::InitProducerId => r(0, 5),
        ApiKey::FindCoordinator => r(1, 6),
        ApiKey::OffsetFetch => r(1, 9),
        // v4+ is the broker-to-broker form (KIP-890).
        ApiKey::AddPartitionsToTxn => r(0, 3),
        ApiKey::AddOffsetsToTxn => r(0, 4),
        ApiKey::EndTxn => r(0, 5),
        ApiKey::TxnOffsetCommit => r(0, 5),
        // Client telemetry (KIP-714): served as by a broker with a telemetry
        // plugin and no subscriptions.
        ApiKey::GetTelemetrySubscriptions => r(0, 0),
        ApiKey::PushTelemetry => r(0, 0),
        _ => None,
    }
}

/// Decodes a request body, refusing bytes after it.
pub(super) fn decode<R: Decodable>(buf: &mut Bytes, version: i16) -> Result<R, Close> {
    let r = R::decode(buf, version).map_err(|e| Close(format!("request body: {e}")))?;
    if buf.has_remaining() {
        return Err(Close(format!("{} bytes after the request body", buf.remaining())));
    }
    Ok(r)
}

/// Encodes a response frame: size, header, body.
pub(super) fn frame_response<T: Encodable>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<BytesMut, Close> {
    let mut out = BytesMut::with_capacity(256);
    out.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    header
        .encode(&mut out, key.response_header_version(version))
        .map_err(|e| Close(format!("encoding response header: {e}")))?;
    body.encode(&mut out, version).map_err(|e| Close(format!("encoding {key:?} response: {e}")))?;
    let size = i32::try_from(out.len() - 4).map_err(|_| Close("response larger than 2 GiB".into()))?;
    out[0..4].copy_from_slice(&size.to_be_bytes());
    Ok(out)
}
