//! The RecordBatch v2 writer on the hot path.
//!
//! Records are encoded straight into one growing buffer as they are appended — no
//! allocation per record. The 61-byte batch header is reserved up front and filled
//! in twice: [`BatchWriter::finish`] writes what the records decide (length, count,
//! timestamps, offsets); [`stamp_producer`] writes what is only known when the batch
//! is drained for sending (producer id, epoch, base sequence) and computes the one
//! CRC-32C of the batch.
//!
//! Layout (all integers big-endian, Kafka's `RecordBatch` v2):
//! ```text
//!  0 baseOffset i64        27 baseTimestamp i64
//!  8 batchLength i32       35 maxTimestamp i64
//! 12 partitionLeaderEpoch  43 producerId i64
//! 16 magic i8 = 2          51 producerEpoch i16
//! 17 crc u32 (over 21..)   53 baseSequence i32
//! 21 attributes i16        57 recordCount i32
//! 23 lastOffsetDelta i32   61 records…
//! ```

use bytes::BytesMut;

use super::varint::{push_varint, varint_len, varlong_len};
use crate::compression::{Codec, compress};
use crate::parts::Header;

/// Bytes of the batch header before the first record.
pub(crate) const BATCH_HEADER_LEN: usize = 61;
/// `producerId` of a batch from a producer without idempotence.
pub(crate) const NO_PRODUCER_ID: i64 = -1;
/// `producerEpoch` of a batch from a producer without idempotence.
pub(crate) const NO_PRODUCER_EPOCH: i16 = -1;
/// `baseSequence` of a batch from a producer without idempotence.
pub(crate) const NO_SEQUENCE: i32 = -1;
/// `partitionLeaderEpoch` as a producer sends it (the broker sets it).
const NO_PARTITION_LEADER_EPOCH: i32 = -1;
const MAGIC_V2: i8 = 2;

const OFF_BATCH_LENGTH: usize = 8;
const OFF_LEADER_EPOCH: usize = 12;
const OFF_MAGIC: usize = 16;
const OFF_CRC: usize = 17;
const OFF_ATTRIBUTES: usize = 21;
const OFF_LAST_OFFSET_DELTA: usize = 23;
const OFF_BASE_TIMESTAMP: usize = 27;
const OFF_MAX_TIMESTAMP: usize = 35;
const OFF_PRODUCER_ID: usize = 43;
const OFF_PRODUCER_EPOCH: usize = 51;
const OFF_BASE_SEQUENCE: usize = 53;
const OFF_RECORD_COUNT: usize = 57;

/// The encoded size of a record's key, value and headers: the part of its encoding
/// that does not depend on the batch it lands in. Computed once per record.
pub(crate) fn fields_len(key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) -> usize {
    let mut n = bytes_field_len(key) + bytes_field_len(value) + varint_len(len_i32(headers.len()));
    for h in headers {
        n += bytes_field_len(Some(h.key.as_bytes())) + bytes_field_len(h.value.as_deref());
    }
    n
}

/// The encoded size of one record's body (everything after its length prefix),
/// from its deltas and its [`fields_len`].
fn body_len(offset_delta: i32, timestamp_delta: i64, fields: usize) -> usize {
    1 /* attributes */ + varlong_len(timestamp_delta) + varint_len(offset_delta) + fields
}

/// A record's size in a batch, length prefix included, from its [`fields_len`].
pub(crate) fn record_size_of(offset_delta: i32, timestamp_delta: i64, fields: usize) -> usize {
    let body = body_len(offset_delta, timestamp_delta, fields);
    varint_len(len_i32(body)) + body
}

fn bytes_field_len(b: Option<&[u8]>) -> usize {
    match b {
        None => varint_len(-1),
        Some(b) => varint_len(len_i32(b.len())) + b.len(),
    }
}

/// Lengths in a batch are i32; callers refuse records over `max.request.size`
/// (itself an i32) before they reach the writer, so saturating never changes a
/// length that is written.
fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The size a record adds to a batch, length prefix included.
#[cfg(test)]
pub(crate) fn record_size(
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> usize {
    record_size_of(offset_delta, timestamp_delta, fields_len(key, value, headers))
}

/// An upper bound of a record's size in any batch, from its [`fields_len`]: its size
/// with the largest deltas a varint of that kind can need. Used for checks before
/// the batch is known.
pub(crate) fn record_size_upper_bound_of(fields: usize) -> usize {
    record_size_of(i32::MAX, i64::MIN, fields)
}

/// An upper bound of a record's size in any batch: its size with the largest deltas
/// a varint of that kind can need. Used for checks before the batch is known.
#[cfg(test)]
pub(crate) fn record_size_upper_bound(key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) -> usize {
    record_size(i32::MAX, i64::MIN, key, value, headers)
}

/// A batch being filled with records.
#[derive(Debug)]
pub(crate) struct BatchWriter {
    /// A `Vec`, not a `BytesMut`: its `push`/`extend_from_slice` after one exact
    /// `reserve` per record are the tightest writes Rust offers without `unsafe`;
    /// `finish` hands it over as a `BytesMut` without copying.
    buf: Vec<u8>,
    base_timestamp: i64,
    max_timestamp: i64,
    count: i32,
}

impl BatchWriter {
    /// A writer whose buffer starts with room for `capacity` bytes in all.
    pub(crate) fn new(capacity: usize) -> BatchWriter {
        let mut buf = Vec::with_capacity(capacity.max(BATCH_HEADER_LEN));
        buf.resize(BATCH_HEADER_LEN, 0);
        BatchWriter { buf, base_timestamp: 0, max_timestamp: i64::MIN, count: 0 }
    }

    /// Records appended so far.
    pub(crate) fn count(&self) -> i32 {
        self.count
    }

    /// The batch's size so far, header included.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// The bytes its buffer holds room for.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The size this record would add if appended next.
    pub(crate) fn size_of_next(&self, timestamp: i64, fields: usize) -> usize {
        let delta = if self.count == 0 { 0 } else { timestamp.wrapping_sub(self.base_timestamp) };
        record_size_of(self.count, delta, fields)
    }

    /// Appends one record and returns its offset delta within the batch. (The
    /// producer uses `append_sized`; this is for tests, the benches and fuzzing.)
    #[cfg_attr(not(any(test, feature = "bench-internals", feature = "fuzzing")), allow(dead_code))]
    pub(crate) fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> i32 {
        self.append_sized(timestamp, key, value, headers, fields_len(key, value, headers))
    }

    /// [`append`](Self::append) for a record whose [`fields_len`] is known.
    pub(crate) fn append_sized(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        fields: usize,
    ) -> i32 {
        if self.count == 0 {
            self.base_timestamp = timestamp;
        }
        let offset_delta = self.count;
        let timestamp_delta = timestamp.wrapping_sub(self.base_timestamp);
        let body = body_len(offset_delta, timestamp_delta, fields);
        let b = &mut self.buf;
        b.reserve(varint_len(len_i32(body)) + body);
        push_varint(b, i64::from(len_i32(body)));
        b.push(0); // record attributes: unused in v2
        push_varint(b, timestamp_delta);
        push_varint(b, i64::from(offset_delta));
        push_bytes_field(b, key);
        push_bytes_field(b, value);
        push_varint(b, i64::from(len_i32(headers.len())));
        for h in headers {
            push_bytes_field(b, Some(h.key.as_bytes()));
            push_bytes_field(b, h.value.as_deref());
        }
        self.max_timestamp = self.max_timestamp.max(timestamp);
        self.count += 1;
        offset_delta
    }

    /// Ends the batch: writes every header field the records decide. The producer
    /// fields and the CRC are left for [`stamp_producer`], which the sender calls when
    /// it first sends the batch (compressing it first, if it does, with
    /// [`compress_batch`]).
    pub(crate) fn finish(mut self) -> BytesMut {
        let len = self.buf.len();
        let h = &mut self.buf[..BATCH_HEADER_LEN];
        h[0..8].copy_from_slice(&0i64.to_be_bytes());
        put_i32_at(h, OFF_BATCH_LENGTH, len_i32(len - 12));
        put_i32_at(h, OFF_LEADER_EPOCH, NO_PARTITION_LEADER_EPOCH);
        h[OFF_MAGIC] = MAGIC_V2 as u8;
        // Attributes: no compression, CreateTime, not transactional, not control.
        h[OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2].copy_from_slice(&0i16.to_be_bytes());
        put_i32_at(h, OFF_LAST_OFFSET_DELTA, self.count - 1);
        put_i64_at(h, OFF_BASE_TIMESTAMP, self.base_timestamp);
        let max = if self.count == 0 { self.base_timestamp } else { self.max_timestamp };
        put_i64_at(h, OFF_MAX_TIMESTAMP, max);
        put_i32_at(h, OFF_RECORD_COUNT, self.count);
        put_i64_at(h, OFF_PRODUCER_ID, NO_PRODUCER_ID);
        h[OFF_PRODUCER_EPOCH..OFF_PRODUCER_EPOCH + 2].copy_from_slice(&NO_PRODUCER_EPOCH.to_be_bytes());
        put_i32_at(h, OFF_BASE_SEQUENCE, NO_SEQUENCE);
        // A batch sealed early (linger.ms, an idle broker, a flush) holds less than
        // the batch.size it was allocated with, and stays in memory until the broker
        // answers. buffer.memory counts record bytes, not allocations (Java's
        // BufferPool counts whole batch.size buffers): the slack goes back, or a slow
        // broker with many small batches would hold several times buffer.memory.
        // Shrinking reallocates in place with glibc's malloc.
        let slack = self.buf.capacity() - len;
        if slack > SHRINK_SLACK.max(self.buf.capacity() / 8) {
            self.buf.shrink_to_fit();
        }
        // Both steps hand the allocation over without copying (the Bytes is unique).
        bytes::Bytes::from(self.buf).try_into_mut().unwrap_or_else(|b| BytesMut::from(&b[..]))
    }
}

/// A finished batch keeps unused room up to this many bytes or an eighth of its
/// allocation, whichever is more; more than that goes back to the allocator.
const SHRINK_SLACK: usize = 1024;

/// Compresses a finished batch: the same header (with the codec in its attributes
/// and the new length) followed by the records compressed as one stream, as Kafka's
/// RecordBatch v2 requires. Returns the new batch and the ratio compressed/raw of
/// the records section.
pub(crate) fn compress_batch(raw: &[u8], codec: Codec) -> std::io::Result<(BytesMut, f32)> {
    let records = raw.get(BATCH_HEADER_LEN..).unwrap_or_default();
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + records.len() / 2 + 64);
    out.extend_from_slice(&raw[..BATCH_HEADER_LEN.min(raw.len())]);
    compress(codec, records, &mut out)?;
    let ratio =
        if records.is_empty() { 1.0 } else { (out.len() - BATCH_HEADER_LEN) as f32 / records.len() as f32 };
    let mut out = BytesMut::from(&out[..]);
    let len = i32::try_from(out.len() - 12).map_err(std::io::Error::other)?;
    put_i32_at(&mut out, OFF_BATCH_LENGTH, len);
    let attributes =
        i16::from_be_bytes([out[OFF_ATTRIBUTES], out[OFF_ATTRIBUTES + 1]]) & !0x07 | i16::from(codec.id());
    out[OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    Ok((out, ratio))
}

/// A finished batch's producer id, epoch, base sequence and record count, as
/// written by [`stamp_producer`] and [`BatchWriter`]; `None` if it is too short.
#[cfg(test)]
pub(crate) fn producer_fields(batch: &[u8]) -> Option<(i64, i16, i32, i32)> {
    let at = |off: usize, n: usize| batch.get(off..off + n);
    let id = i64::from_be_bytes(at(OFF_PRODUCER_ID, 8)?.try_into().ok()?);
    let epoch = i16::from_be_bytes(at(OFF_PRODUCER_EPOCH, 2)?.try_into().ok()?);
    let seq = i32::from_be_bytes(at(OFF_BASE_SEQUENCE, 4)?.try_into().ok()?);
    let count = i32::from_be_bytes(at(OFF_RECORD_COUNT, 4)?.try_into().ok()?);
    Some((id, epoch, seq, count))
}

/// What a broker writes into a batch it appends (Kafka's `LogValidator`): the base
/// offset it assigned, the partition's leader epoch, the LogAppendTime flag and
/// the max timestamp; then the CRC again. `batch` is a whole, valid batch.
#[cfg(feature = "mock")]
pub(crate) fn rewrite_for_log(
    batch: &mut [u8],
    base_offset: i64,
    leader_epoch: i32,
    log_append_time: bool,
    max_timestamp: i64,
) {
    if batch.len() < BATCH_HEADER_LEN {
        return;
    }
    put_i64_at(batch, 0, base_offset);
    put_i32_at(batch, OFF_LEADER_EPOCH, leader_epoch);
    if log_append_time {
        let attributes = i16::from_be_bytes([batch[OFF_ATTRIBUTES], batch[OFF_ATTRIBUTES + 1]]) | 0x08;
        batch[OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    }
    put_i64_at(batch, OFF_MAX_TIMESTAMP, max_timestamp);
    let crc = crc32c::crc32c(&batch[OFF_ATTRIBUTES..]);
    put_i32_at(batch, OFF_CRC, crc as i32);
}

/// A batch rebuilt from `header` (a batch's first [`BATCH_HEADER_LEN`] bytes) and
/// its uncompressed `records`: length set, codec bits cleared. The CRC is left for
/// the caller to compute (e.g. [`rewrite_for_log`]).
#[cfg(feature = "mock")]
pub(crate) fn uncompressed_batch(header: &[u8], records: &[u8]) -> std::io::Result<BytesMut> {
    let mut raw = BytesMut::with_capacity(BATCH_HEADER_LEN + records.len());
    raw.extend_from_slice(
        header.get(..BATCH_HEADER_LEN).ok_or_else(|| std::io::Error::other("short batch"))?,
    );
    raw.extend_from_slice(records);
    let len = i32::try_from(raw.len() - 12).map_err(std::io::Error::other)?;
    put_i32_at(&mut raw, OFF_BATCH_LENGTH, len);
    let attributes = i16::from_be_bytes([raw[OFF_ATTRIBUTES], raw[OFF_ATTRIBUTES + 1]]) & !0x07;
    raw[OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    Ok(raw)
}

/// Writes the producer id, epoch and base sequence into a finished batch and
/// computes its CRC-32C (over everything from the attributes to the end).
pub(crate) fn stamp_producer(batch: &mut [u8], producer_id: i64, epoch: i16, base_sequence: i32) {
    if batch.len() < BATCH_HEADER_LEN {
        return;
    }
    put_i64_at(batch, OFF_PRODUCER_ID, producer_id);
    batch[OFF_PRODUCER_EPOCH..OFF_PRODUCER_EPOCH + 2].copy_from_slice(&epoch.to_be_bytes());
    put_i32_at(batch, OFF_BASE_SEQUENCE, base_sequence);
    let crc = crc32c::crc32c(&batch[OFF_ATTRIBUTES..]);
    batch[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// [`stamp_producer`] for a transactional producer: also sets the batch's
/// transactional attribute (bit 4), which makes its records part of the
/// producer's open transaction (KIP-98).
pub(crate) fn stamp_transactional(batch: &mut [u8], producer_id: i64, epoch: i16, base_sequence: i32) {
    if batch.len() < BATCH_HEADER_LEN {
        return;
    }
    batch[OFF_ATTRIBUTES + 1] |= ATTR_TRANSACTIONAL;
    stamp_producer(batch, producer_id, epoch, base_sequence);
}

/// The transactional bit of a batch's attributes (low byte).
const ATTR_TRANSACTIONAL: u8 = 0x10;

#[inline]
fn push_bytes_field(b: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => push_varint(b, -1),
        Some(v) => {
            push_varint(b, i64::from(len_i32(v.len())));
            b.extend_from_slice(v);
        }
    }
}

fn put_i32_at(b: &mut [u8], at: usize, v: i32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn put_i64_at(b: &mut [u8], at: usize, v: i64) {
    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::records::RecordBatchDecoder;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    struct R {
        ts: i64,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        headers: Vec<Header>,
    }

    fn header() -> impl Strategy<Value = Header> {
        ("[a-z\u{e9}\u{4e2d}]{0,8}", proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)))
            .prop_map(|(k, v)| Header { key: k, value: v.map(Bytes::from) })
    }

    fn record() -> impl Strategy<Value = R> {
        (
            // Timestamps around now, including ones before the batch's first.
            1_600_000_000_000i64..1_900_000_000_000i64,
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
            proptest::collection::vec(header(), 0..4),
        )
            .prop_map(|(ts, key, value, headers)| R { ts, key, value, headers })
    }

    proptest! {
        /// What the writer produces, kafka-protocol's independent decoder reads back
        /// field for field, with a valid CRC.
        #[test]
        fn decodes_with_kafka_protocol(records in proptest::collection::vec(record(), 1..40),
                                       pid in any::<i64>(), epoch in any::<i16>(), seq in 0i32..1_000_000) {
            let mut w = BatchWriter::new(128);
            let mut predicted = BATCH_HEADER_LEN;
            for r in &records {
                let fields = fields_len(r.key.as_deref(), r.value.as_deref(), &r.headers);
                let next = w.size_of_next(r.ts, fields);
                w.append_sized(r.ts, r.key.as_deref(), r.value.as_deref(), &r.headers, fields);
                predicted += next;
                prop_assert_eq!(w.len(), predicted);
                prop_assert!(next <= record_size_upper_bound(r.key.as_deref(), r.value.as_deref(), &r.headers));
            }
            let mut batch = w.finish();
            stamp_producer(&mut batch, pid, epoch, seq);
            let mut bytes = batch.freeze();
            let set = RecordBatchDecoder::decode(&mut bytes).expect("decodes");
            prop_assert_eq!(set.records.len(), records.len());
            for (i, (got, want)) in set.records.iter().zip(&records).enumerate() {
                prop_assert_eq!(got.offset, i as i64);
                prop_assert_eq!(got.timestamp, want.ts);
                prop_assert_eq!(got.key.as_deref(), want.key.as_deref());
                prop_assert_eq!(got.value.as_deref(), want.value.as_deref());
                prop_assert_eq!(got.producer_id, pid);
                prop_assert_eq!(got.producer_epoch, epoch);
                prop_assert_eq!(got.sequence, seq.wrapping_add(i as i32));
                // kafka-protocol keeps headers in a map, so compare only when keys
                // are distinct; the Java consumer test checks repeats and order.
                let mut keys: Vec<&str> = want.headers.iter().map(|h| h.key.as_str()).collect();
                keys.sort_unstable();
                keys.dedup();
                if keys.len() == want.headers.len() {
                    prop_assert_eq!(got.headers.len(), want.headers.len());
                    for h in &want.headers {
                        let v = got.headers.get(h.key.as_bytes()).expect("header present");
                        prop_assert_eq!(v.as_deref(), h.value.as_deref());
                    }
                }
            }
        }
    }

    #[test]
    fn a_batch_sealed_early_gives_back_what_it_did_not_use() {
        let v = [7u8; 100];
        let mut w = BatchWriter::new(16384);
        w.append(1, None, Some(&v), &[]);
        let b = w.finish();
        assert!(b.capacity() <= b.len() + SHRINK_SLACK, "{} bytes kept for {}", b.capacity(), b.len());
        // A full batch keeps its allocation as it is (no reallocation per batch).
        let mut w = BatchWriter::new(16384);
        while w.len() + w.size_of_next(1, fields_len(None, Some(&v), &[])) <= 16384 {
            w.append(1, None, Some(&v), &[]);
        }
        let len = w.len();
        let b = w.finish();
        assert_eq!((b.len(), b.capacity()), (len, 16384));
    }

    #[test]
    fn crc_detects_corruption() {
        let mut w = BatchWriter::new(64);
        w.append(1_700_000_000_000, Some(b"k"), Some(b"v"), &[]);
        let mut batch = w.finish();
        stamp_producer(&mut batch, NO_PRODUCER_ID, NO_PRODUCER_EPOCH, NO_SEQUENCE);
        let last = batch.len() - 1;
        batch[last] ^= 0xff;
        let mut bytes = batch.freeze();
        assert!(RecordBatchDecoder::decode(&mut bytes).is_err());
    }

    #[test]
    fn header_fields_are_where_kafka_expects() {
        let mut w = BatchWriter::new(64);
        w.append(1000, None, Some(b"a"), &[]);
        w.append(900, None, Some(b"b"), &[]);
        w.append(1500, None, None, &[]);
        let b = w.finish();
        assert_eq!(&b[OFF_BASE_TIMESTAMP..OFF_BASE_TIMESTAMP + 8], &1000i64.to_be_bytes());
        assert_eq!(&b[OFF_MAX_TIMESTAMP..OFF_MAX_TIMESTAMP + 8], &1500i64.to_be_bytes());
        assert_eq!(&b[OFF_LAST_OFFSET_DELTA..OFF_LAST_OFFSET_DELTA + 4], &2i32.to_be_bytes());
        assert_eq!(&b[OFF_RECORD_COUNT..OFF_RECORD_COUNT + 4], &3i32.to_be_bytes());
        assert_eq!(&b[OFF_BATCH_LENGTH..OFF_BATCH_LENGTH + 4], &((b.len() - 12) as i32).to_be_bytes());
        assert_eq!(b[OFF_MAGIC], 2);
    }
}
