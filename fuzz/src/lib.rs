//! Shared code of herald's fuzz targets: the harnesses themselves (so that seeds and
//! crash inputs can be replayed by ordinary tests, without libFuzzer), and small
//! encoders for request frames and record batches used by the structured modes and
//! by the seed generator (`examples/gen_seeds.rs`).

pub mod alloc;
pub mod build;
pub mod input;
pub mod mock;
pub mod seeds;

/// The `record_batch` target: herald's strict RecordBatch v2 reader.
pub fn run_record_batch(data: &[u8]) {
    herald::fuzzing::read_batch(data);
}

/// The `client_response` target.
///
/// Layout: `[selector][version][bytes…]`. Selector bit 7 set: `bytes` is a response
/// frame (size prefix removed) whose header is split at header version `version % 2`
/// (255 asks for the invalid header version -1). Otherwise `bytes` is the body of a
/// Metadata (selector even) or Produce (selector odd) response at version
/// `version % 16 - 1` (so -1..=14: the supported range and one past each end),
/// decoded and, for Metadata, parsed into herald's metadata snapshot.
pub fn run_client_response(data: &[u8]) {
    let [sel, ver, body @ ..] = data else { return };
    if sel & 0x80 != 0 {
        let header_version = if *ver == 255 { -1 } else { i16::from(ver % 2) };
        herald::fuzzing::response_header(body, header_version);
    } else {
        let version = i16::from(ver % 16) - 1;
        herald::fuzzing::client_response(*sel, version, body);
    }
}
