//! Pure encoding, no I/O: request framing around the `kafka-protocol` crate's
//! messages, the API versions herald speaks, and herald's own RecordBatch writer.
//!
//! Everything that touches bytes from the network returns an error on malformed
//! input; nothing here panics on what a broker sends.

pub(crate) mod batch;
pub(crate) mod records;
pub(crate) mod varint;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes, VersionRange};

/// The largest response frame herald accepts from a broker. Kafka's own client has
/// no such bound for responses, but a corrupt length prefix must not make herald try
/// to read gigabytes.
pub(crate) const MAX_RESPONSE_FRAME: usize = 256 * 1024 * 1024;

/// The versions of `api` that herald itself can speak: the intersection of what the
/// `kafka-protocol` crate encodes and what herald's code handles. `None` for APIs
/// herald never sends.
pub(crate) fn herald_versions(api: ApiKey) -> Option<VersionRange> {
    let r = |min, max| Some(VersionRange { min, max });
    match api {
        // v3 is the first with RecordBatch v2; v13 names topics by id (KIP-516), which
        // herald handles by sending both name and id.
        ApiKey::Produce => r(3, 13),
        ApiKey::Metadata => r(4, 12),
        ApiKey::ApiVersions => r(0, 3),
        ApiKey::CreateTopics => r(2, 7),
        ApiKey::DeleteTopics => r(1, 6),
        ApiKey::InitProducerId => r(0, 5),
        ApiKey::ListOffsets => r(1, 9),
        ApiKey::Fetch => r(4, 16),
        ApiKey::DescribeConfigs => r(1, 4),
        // Transactions (KIP-98). FindCoordinator v4+ batches keys (KIP-699): herald
        // asks one key at a time. AddPartitionsToTxn v4+ is for brokers only.
        // TxnOffsetCommit from v3 carries the group member (KIP-447); v5 and EndTxn
        // v5 are transactions v2 (KIP-890).
        ApiKey::FindCoordinator => r(1, 3),
        ApiKey::AddPartitionsToTxn => r(0, 3),
        ApiKey::AddOffsetsToTxn => r(0, 4),
        ApiKey::TxnOffsetCommit => r(3, 5),
        ApiKey::EndTxn => r(0, 5),
        // Client telemetry (KIP-714).
        ApiKey::GetTelemetrySubscriptions => r(0, 0),
        ApiKey::PushTelemetry => r(0, 0),
        _ => None,
    }
}

/// Encodes one request frame (4-byte size, header, body) onto `buf`.
pub(crate) fn encode_request<R: Request>(
    buf: &mut BytesMut,
    correlation_id: i32,
    client_id: &StrBytes,
    version: i16,
    req: &R,
) -> Result<(), String> {
    let start = buf.len();
    buf.put_i32(0);
    let mut header = RequestHeader::default();
    header.request_api_key = R::KEY;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = Some(client_id.clone());
    header.encode(buf, R::header_version(version)).map_err(|e| format!("encoding request header: {e}"))?;
    req.encode(buf, version).map_err(|e| format!("encoding {:?} v{version}: {e}", api_name(R::KEY)))?;
    let size = i32::try_from(buf.len() - start - 4).map_err(|_| "request larger than 2 GiB".to_owned())?;
    buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// Splits a response frame body (without its size prefix) into its correlation id
/// and the bytes after the header, for an API whose response header has `header_version`.
pub(crate) fn split_response_header(mut frame: Bytes, header_version: i16) -> Result<(i32, Bytes), String> {
    if frame.remaining() < 4 {
        return Err(format!("response of {} bytes is shorter than its header", frame.len()));
    }
    let header =
        ResponseHeader::decode(&mut frame, header_version).map_err(|e| format!("response header: {e}"))?;
    Ok((header.correlation_id, frame))
}

/// Decodes the body of a response to `R` at `version`; trailing bytes are an error.
pub(crate) fn decode_response<R: Request>(mut body: Bytes, version: i16) -> Result<R::Response, String> {
    let resp = R::Response::decode(&mut body, version)
        .map_err(|e| format!("decoding {} response v{version}: {e}", api_name(R::KEY)))?;
    if body.has_remaining() {
        return Err(format!(
            "{} response v{version} has {} unexpected trailing bytes",
            api_name(R::KEY),
            body.remaining()
        ));
    }
    Ok(resp)
}

/// The response header version for `R` at `version`.
pub(crate) fn response_header_version<R: Request>(version: i16) -> i16 {
    <R::Response as HeaderVersion>::header_version(version)
}

/// A readable name of an API key, e.g. `Produce`.
pub(crate) fn api_name(key: i16) -> String {
    match ApiKey::try_from(key) {
        Ok(k) => format!("{k:?}"),
        Err(()) => format!("api {key}"),
    }
}
