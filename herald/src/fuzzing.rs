//! Entry points for the fuzz targets in `fuzz/`: the decoders that see bytes from
//! the network, reachable without a socket. Not a public API (feature `fuzzing`).

use bytes::Bytes;
use kafka_protocol::messages::{MetadataRequest, ProduceRequest};

use crate::protocol::{self, records};

/// Reads a RecordBatch v2 as the embedded cluster and the topic reader do.
pub fn read_batch(data: &[u8]) {
    let data = Bytes::copy_from_slice(data);
    if let Ok(Some(h)) = records::read_header(&data) {
        let batch = data.slice(..h.size());
        let _ = records::check_crc(&h, &batch);
        let _ = records::read_records(&h, &batch);
    }
}

/// Decodes a response body as the producer does: a Metadata response into herald's
/// snapshot, and a Produce response, at `version`.
pub fn client_response(api: u8, version: i16, body: &[u8]) {
    let body = Bytes::copy_from_slice(body);
    if api % 2 == 0 {
        if let Ok(resp) = protocol::decode_response::<MetadataRequest>(body, version) {
            let _ = crate::metadata::parse(resp, "fuzz");
        }
    } else {
        let _ = protocol::decode_response::<ProduceRequest>(body, version);
    }
}

/// Splits a response frame's header as the connection reader does.
pub fn response_header(frame: &[u8], header_version: i16) {
    let _ = protocol::split_response_header(Bytes::copy_from_slice(frame), header_version);
}
