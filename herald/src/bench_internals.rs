//! Entry points for herald's criterion benches (`benches/`): hot-path pieces that are
//! not public API. Feature `bench-internals`; not covered by semver.

use bytes::BytesMut;

use crate::protocol::batch::{self, BatchWriter};
use crate::record::Header;

pub use crate::compression::Codec;

/// One record for [`build_batch`]: timestamp, key, value.
pub type BenchRecord<'a> = (i64, Option<&'a [u8]>, Option<&'a [u8]>);

/// Builds a finished, uncompressed batch of `records`.
pub fn build_batch(records: &[BenchRecord<'_>], headers: &[Header]) -> BytesMut {
    let mut w = BatchWriter::new(16 * 1024);
    for (ts, k, v) in records {
        w.append(*ts, *k, *v, headers);
    }
    w.finish()
}

/// herald's compression step: the finished batch to its compressed wire form, CRC
/// included. Returns the wire size.
pub fn compress_and_stamp(raw: &[u8], codec: Codec) -> usize {
    match batch::compress_batch(raw, codec) {
        Ok((mut b, _)) => {
            batch::stamp_producer(&mut b, -1, -1, -1);
            b.len()
        }
        Err(_) => 0,
    }
}

/// The codec alone on the same bytes (the batch's records section).
pub fn codec_alone(records: &[u8], codec: Codec) -> usize {
    let mut out = Vec::with_capacity(records.len());
    match crate::compression::compress(codec, records, &mut out) {
        Ok(()) => out.len(),
        Err(_) => 0,
    }
}

/// Bytes of the batch header before the records.
pub const BATCH_HEADER_LEN: usize = batch::BATCH_HEADER_LEN;
