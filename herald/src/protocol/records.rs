//! A strict RecordBatch v2 reader: the embedded cluster validates what producers
//! send with it, and the topic reader decodes what brokers return.
//!
//! Written here rather than taken from kafka-protocol because kafka-protocol's
//! decoder keeps headers in a map (repeated header keys, which Kafka allows, are
//! merged) and sizes its buffers by the counts a batch declares. This reader
//! borrows slices of the input, checks every length against the bytes that are
//! actually there, and returns an error — never panics — on anything malformed.

use bytes::{Buf, Bytes};

use super::batch::BATCH_HEADER_LEN;
use crate::parts::Header;

/// Why a batch was refused, in the terms of the error Kafka returns for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BatchError {
    /// Structural damage: lengths that do not add up, a wrong CRC. Kafka:
    /// `CORRUPT_MESSAGE`.
    Corrupt(String),
    /// Well-formed but not acceptable: wrong magic, counts that disagree. Kafka:
    /// `INVALID_RECORD`.
    Invalid(String),
    /// A compression codec this build cannot read. Kafka:
    /// `UNSUPPORTED_COMPRESSION_TYPE`.
    UnsupportedCompression(u8),
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Corrupt(m) | BatchError::Invalid(m) => f.write_str(m),
            BatchError::UnsupportedCompression(c) => write!(f, "compression codec {c} is not supported"),
        }
    }
}

/// The fixed header of a RecordBatch v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub(crate) base_offset: i64,
    /// Bytes after the `batchLength` field.
    pub(crate) batch_length: i32,
    pub(crate) partition_leader_epoch: i32,
    pub(crate) magic: i8,
    pub(crate) crc: u32,
    pub(crate) attributes: i16,
    pub(crate) last_offset_delta: i32,
    pub(crate) base_timestamp: i64,
    pub(crate) max_timestamp: i64,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) base_sequence: i32,
    pub(crate) record_count: i32,
}

impl BatchHeader {
    /// The compression codec (attributes bits 0-2).
    pub(crate) fn compression(&self) -> u8 {
        (self.attributes & 0x07) as u8
    }

    /// Whether the timestamps are the broker's (attributes bit 3).
    pub(crate) fn log_append_time(&self) -> bool {
        self.attributes & 0x08 != 0
    }

    /// Whether the batch is part of a transaction (attributes bit 4).
    #[cfg_attr(not(feature = "mock"), allow(dead_code))]
    pub(crate) fn transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    /// Whether the batch holds control records (attributes bit 5).
    pub(crate) fn control(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    /// The batch's total size on the wire.
    pub(crate) fn size(&self) -> usize {
        12 + self.batch_length.max(0) as usize
    }
}

/// One record, with its absolute offset and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadRecord {
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Vec<Header>,
}

/// Reads the header of the batch at the start of `data`, checking that the whole
/// batch is there. Returns `Ok(None)` when `data` holds only part of a batch (a
/// fetch response may end with one).
pub(crate) fn read_header(data: &[u8]) -> Result<Option<BatchHeader>, BatchError> {
    if data.len() < BATCH_HEADER_LEN {
        return Ok(None);
    }
    let mut b = data;
    let base_offset = b.get_i64();
    let batch_length = b.get_i32();
    let partition_leader_epoch = b.get_i32();
    let magic = b.get_i8();
    let h = BatchHeader {
        base_offset,
        batch_length,
        partition_leader_epoch,
        magic,
        crc: b.get_u32(),
        attributes: b.get_i16(),
        last_offset_delta: b.get_i32(),
        base_timestamp: b.get_i64(),
        max_timestamp: b.get_i64(),
        producer_id: b.get_i64(),
        producer_epoch: b.get_i16(),
        base_sequence: b.get_i32(),
        record_count: b.get_i32(),
    };
    if magic != 2 {
        return Err(BatchError::Invalid(format!("record batch magic {magic}, only magic 2 is supported")));
    }
    let min = (BATCH_HEADER_LEN - 12) as i32;
    if batch_length < min {
        return Err(BatchError::Corrupt(format!(
            "batch length {batch_length} is shorter than a batch header"
        )));
    }
    if data.len() < h.size() {
        return Ok(None);
    }
    Ok(Some(h))
}

/// Checks the CRC-32C of the batch `data` (exactly one batch).
pub(crate) fn check_crc(h: &BatchHeader, data: &[u8]) -> Result<(), BatchError> {
    let computed = crc32c::crc32c(&data[21..h.size()]);
    if computed != h.crc {
        return Err(BatchError::Corrupt(format!(
            "batch CRC {:#010x} does not match its contents ({computed:#010x})",
            h.crc
        )));
    }
    Ok(())
}

/// Decodes the records of one batch (`data` is exactly the batch), decompressing
/// them first if the batch is compressed. Checks the record count, the lengths of
/// every field, and that offset deltas run 0, 1, 2, … as a producer writes them.
pub(crate) fn read_records(h: &BatchHeader, data: &Bytes) -> Result<Vec<ReadRecord>, BatchError> {
    decode_records(h, records_section(h, data)?)
}

/// The records section of a batch, decompressed.
pub(crate) fn records_section(h: &BatchHeader, data: &Bytes) -> Result<Bytes, BatchError> {
    let body = data.slice(BATCH_HEADER_LEN..h.size());
    match h.compression() {
        0 => Ok(body),
        c @ 1..=4 => crate::compression::decompress(c, &body).map(Bytes::from).map_err(BatchError::Corrupt),
        c => Err(BatchError::UnsupportedCompression(c)),
    }
}

/// Decodes the record section `body` of batch `h` (already decompressed).
pub(crate) fn decode_records(h: &BatchHeader, body: Bytes) -> Result<Vec<ReadRecord>, BatchError> {
    // Sized by the count only as far as the bytes there could hold it.
    let mut out = Vec::with_capacity(usize::try_from(h.record_count).unwrap_or(0).min(body.len() / 7 + 1));
    walk_records(h, &body, |r| {
        let mut headers = Vec::with_capacity(r.header_count);
        r.for_each_header(|key, value| {
            headers.push(Header { key: key.to_owned(), value: value.map(|v| body.slice_ref(v)) });
        });
        out.push(ReadRecord {
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key.map(|k| body.slice_ref(k)),
            value: r.value.map(|v| body.slice_ref(v)),
            headers,
        });
        Ok(())
    })?;
    Ok(out)
}

/// One record as it lies in a batch's records section: borrowed, every length
/// checked, header keys checked to be UTF-8.
pub(crate) struct RecordView<'a> {
    /// Its place in the batch (0, 1, 2, …), and its absolute offset and
    /// timestamp (the batch's, for LogAppendTime).
    pub(crate) offset_delta: i32,
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    header_count: usize,
    /// The headers after their count, already read through once.
    headers: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// Calls `f` with each header's key and value, in order.
    pub(crate) fn for_each_header(&self, mut f: impl FnMut(&'a str, Option<&'a [u8]>)) {
        let mut r = self.headers;
        for _ in 0..self.header_count {
            // Checked by `walk_records` already: cannot fail here.
            let Ok((k, v)) = header(&mut r, 0) else { return };
            f(k, v);
        }
    }
}

/// Walks the record section `body` of batch `h` (already decompressed), calling
/// `each` with every record in order, without copying any of it out: the checks
/// of [`decode_records`] (every length against the bytes there, offset deltas 0,
/// 1, 2, …, the count the header declares) for the embedded cluster's produce
/// path, which stores the batch as it came. The first error — `each`'s or the
/// batch's — ends the walk.
pub(crate) fn walk_records<'a>(
    h: &BatchHeader,
    mut body: &'a [u8],
    mut each: impl FnMut(RecordView<'a>) -> Result<(), BatchError>,
) -> Result<(), BatchError> {
    if h.record_count < 0 {
        return Err(BatchError::Invalid(format!("negative record count {}", h.record_count)));
    }
    // Each record takes at least 7 bytes; a count beyond that is corrupt.
    let count = h.record_count as usize;
    if count > body.len() / 7 + 1 {
        return Err(BatchError::Corrupt(format!("record count {count} cannot fit in {} bytes", body.len())));
    }
    for i in 0..count {
        let len = varint(&mut body)?;
        let len = usize::try_from(len)
            .map_err(|_| BatchError::Corrupt(format!("record {i} has negative length")))?;
        let mut r = take(&mut body, len).ok_or_else(|| {
            BatchError::Corrupt(format!("record {i} claims {len} bytes, {} remain", body.len()))
        })?;
        let Some((_attributes, rest)) = r.split_first() else {
            return Err(BatchError::Corrupt(format!("record {i} is empty")));
        };
        r = rest;
        let ts_delta = varlong(&mut r)?;
        let offset_delta = varint(&mut r)?;
        if offset_delta != i as i32 {
            return Err(BatchError::Invalid(format!("record {i} has offset delta {offset_delta}")));
        }
        let key = bytes_field(&mut r, "key")?;
        let value = bytes_field(&mut r, "value")?;
        let header_count = varint(&mut r)?;
        if header_count < 0 || header_count as usize > r.len() / 2 + 1 {
            return Err(BatchError::Corrupt(format!("record {i} claims {header_count} headers")));
        }
        let headers = r;
        for _ in 0..header_count {
            header(&mut r, i)?;
        }
        if !r.is_empty() {
            return Err(BatchError::Corrupt(format!("record {i} has {} bytes beyond its fields", r.len())));
        }
        each(RecordView {
            offset_delta,
            offset: h.base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp: if h.log_append_time() {
                h.max_timestamp
            } else {
                h.base_timestamp.wrapping_add(ts_delta)
            },
            key,
            value,
            header_count: header_count as usize,
            headers,
        })?;
    }
    if !body.is_empty() {
        return Err(BatchError::Corrupt(format!("{} bytes after the last record", body.len())));
    }
    if h.record_count > 0 && h.last_offset_delta != h.record_count - 1 {
        return Err(BatchError::Invalid(format!(
            "last offset delta {} does not match record count {}",
            h.last_offset_delta, h.record_count
        )));
    }
    Ok(())
}

/// One header of record `i`: a UTF-8 key (never null) and a value.
fn header<'a>(r: &mut &'a [u8], i: usize) -> Result<(&'a str, Option<&'a [u8]>), BatchError> {
    let k = bytes_field(r, "header key")?
        .ok_or_else(|| BatchError::Invalid(format!("record {i} has a null header key")))?;
    let key = std::str::from_utf8(k)
        .map_err(|_| BatchError::Invalid(format!("record {i} has a header key that is not UTF-8")))?;
    Ok((key, bytes_field(r, "header value")?))
}

/// The next `len` bytes of `b`, if there are that many.
fn take<'a>(b: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    if len > b.len() {
        return None;
    }
    let (head, tail) = b.split_at(len);
    *b = tail;
    Some(head)
}

fn uvarint(b: &mut &[u8]) -> Result<u64, BatchError> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let Some((&byte, rest)) = b.split_first() else {
            return Err(BatchError::Corrupt("truncated varint".to_owned()));
        };
        *b = rest;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(BatchError::Corrupt("varint longer than 10 bytes".to_owned()))
}

fn varlong(b: &mut &[u8]) -> Result<i64, BatchError> {
    let v = uvarint(b)?;
    Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
}

fn varint(b: &mut &[u8]) -> Result<i32, BatchError> {
    let v = varlong(b)?;
    i32::try_from(v).map_err(|_| BatchError::Corrupt(format!("varint {v} out of 32-bit range")))
}

fn bytes_field<'a>(b: &mut &'a [u8], what: &str) -> Result<Option<&'a [u8]>, BatchError> {
    let len = varint(b)?;
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    let remain = b.len();
    take(b, len)
        .map(Some)
        .ok_or_else(|| BatchError::Corrupt(format!("{what} claims {len} bytes, {remain} remain")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::{BatchWriter, stamp_producer};
    use proptest::prelude::*;

    fn header() -> impl Strategy<Value = Header> {
        ("[a-z]{0,3}", proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)))
            .prop_map(|(k, v)| Header { key: k, value: v.map(Bytes::from) })
    }

    proptest! {
        /// What herald's writer writes, herald's reader reads back exactly —
        /// repeated header keys included, in order.
        #[test]
        fn round_trips_with_the_writer(
            records in proptest::collection::vec((
                0i64..10_000,
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..50)),
                proptest::collection::vec(header(), 0..4)), 1..20),
            base in 0i64..1_000_000,
        ) {
            let mut w = BatchWriter::new(64);
            for (ts, k, v, h) in &records {
                w.append(*ts, k.as_deref(), v.as_deref(), h);
            }
            let mut b = w.finish();
            b[0..8].copy_from_slice(&base.to_be_bytes());
            stamp_producer(&mut b, 7, 1, 0);
            let data = b.freeze();
            let h = read_header(&data).unwrap().unwrap();
            prop_assert_eq!(h.size(), data.len());
            check_crc(&h, &data).unwrap();
            let got = read_records(&h, &data).unwrap();
            prop_assert_eq!(got.len(), records.len());
            for (i, (r, (ts, k, v, hs))) in got.iter().zip(&records).enumerate() {
                prop_assert_eq!(r.offset, base + i as i64);
                prop_assert_eq!(r.timestamp, *ts);
                prop_assert_eq!(r.key.as_deref(), k.as_deref());
                prop_assert_eq!(r.value.as_deref(), v.as_deref());
                prop_assert_eq!(&r.headers, hs);
            }
        }

        /// Arbitrary bytes never panic the reader.
        #[test]
        fn never_panics_on_garbage(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let data = Bytes::from(data);
            if let Ok(Some(h)) = read_header(&data) {
                let _ = check_crc(&h, &data);
                let _ = read_records(&h, &data.slice(..h.size()));
            }
        }

        /// Any single flipped byte after the CRC field is caught by the CRC.
        #[test]
        fn crc_catches_any_flipped_byte(at in 21usize..80, bit in 0u8..8) {
            let mut w = BatchWriter::new(64);
            w.append(1, Some(b"key"), Some(b"a value long enough to flip"), &[]);
            let mut b = w.finish();
            let at = at.min(b.len() - 1);
            b[at] ^= 1 << bit;
            let data = b.freeze();
            if let Ok(Some(h)) = read_header(&data) {
                prop_assert!(check_crc(&h, &data).is_err());
            }
        }
    }

    #[test]
    fn compressed_batches_read_back() {
        use crate::compression::Codec;
        use crate::protocol::batch::compress_batch;
        for codec in
            [Codec::Gzip { level: 6 }, Codec::Snappy, Codec::Lz4 { level: 9 }, Codec::Zstd { level: 3 }]
        {
            let mut w = BatchWriter::new(64);
            for i in 0..100u8 {
                w.append(1000 + i64::from(i), Some(&[i]), Some(&[i; 40]), &[Header::new("h", "v")]);
            }
            let raw = w.finish();
            let (mut b, ratio) = compress_batch(&raw, codec).unwrap();
            assert!(ratio < 0.5, "{codec:?} ratio {ratio}");
            stamp_producer(&mut b, -1, -1, -1);
            let data = b.freeze();
            let h = read_header(&data).unwrap().unwrap();
            assert_eq!(h.compression(), codec.id());
            check_crc(&h, &data).unwrap();
            let recs = read_records(&h, &data).unwrap();
            assert_eq!(recs.len(), 100);
            assert_eq!(recs[99].value.as_deref(), Some(&[99u8; 40][..]));
            assert_eq!(recs[99].timestamp, 1099);
        }
    }

    #[test]
    fn partial_batch_is_not_an_error() {
        let mut w = BatchWriter::new(64);
        w.append(1, None, Some(b"v"), &[]);
        let b = w.finish().freeze();
        assert_eq!(read_header(&b[..b.len() - 1]).unwrap(), None);
        assert_eq!(read_header(&b[..10]).unwrap(), None);
    }
}
