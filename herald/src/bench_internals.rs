//! Entry points for herald's criterion benches (`benches/`): hot-path pieces that are
//! not public API. Feature `bench-internals`; not covered by semver.

use bytes::BytesMut;

use crate::parts::Header;
use crate::protocol::batch::{self, BatchWriter};

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

/// The accumulator's append path on one partition, for benches.
pub struct BenchAccumulator {
    acc: crate::producer::accumulator::Accumulator,
    queue: std::sync::Arc<crate::producer::accumulator::PartitionQueue>,
}

impl BenchAccumulator {
    /// An accumulator with `batch_size`, and one partition's queue.
    pub fn new(batch_size: usize) -> BenchAccumulator {
        let acc = crate::producer::accumulator::Accumulator::new(batch_size, 1 << 20, usize::MAX >> 4);
        let (entry, _) = acc.topic("bench");
        entry.update(uuid::Uuid::nil(), &[1], Vec::new(), false);
        let queue = match entry.meta.load_full().and_then(|m| m.partitions.first().cloned()) {
            Some(q) => q,
            None => std::sync::Arc::new(crate::producer::accumulator::PartitionQueue::new(
                std::sync::Arc::from("bench"),
                0,
                false,
            )),
        };
        BenchAccumulator { acc, queue }
    }

    /// Appends one record (the send path after partitioning); returns whether a
    /// batch was opened or sealed.
    pub fn append(&self, timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> bool {
        let rec = crate::producer::accumulator::RecordRef {
            timestamp,
            key,
            value,
            headers: &[],
            fields: batch::fields_len(key, value, &[]),
        };
        match self.acc.append(&self.queue, &rec, 0, None) {
            Ok(a) => a.wake,
            Err(_) => false,
        }
    }

    /// Drops the sealed batches (as the sender would take them), keeping memory flat.
    pub fn drain(&self) -> usize {
        self.queue.state.lock().drop_sealed()
    }
}

/// The send-time stamp of a finished batch: producer fields and the CRC-32C.
pub fn stamp(batch: &mut [u8]) {
    batch::stamp_producer(batch, 7, 0, 0);
}
