//! Encoders for well-formed inputs: request frames (a correct request header for
//! the API and version, then the body) and RecordBatch v2 bytes with a correct
//! length and CRC-32C, so that fuzzing gets past the checks a random frame fails.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::RequestHeader;
use kafka_protocol::protocol::{Encodable, Request, StrBytes};

/// Bytes of a RecordBatch v2 header before the first record.
pub const BATCH_HEADER_LEN: usize = 61;

/// One record of a [`BatchSpec`]: every field as it goes on the wire, so that a
/// spec can also describe records a producer would never write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordSpec {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(Option<Vec<u8>>, Option<Vec<u8>>)>,
}

/// A RecordBatch v2: the header fields as written (batch length, magic and CRC
/// are computed by [`encode_batch`]) and its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSpec {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
    pub records: Vec<RecordSpec>,
    /// Compress the records with the codec of `attributes` (bits 0-2; 1-4 are gzip,
    /// snappy, lz4, zstd). Without it the records are written raw whatever the
    /// attributes say.
    pub compress: bool,
    /// Frame snappy as the Java client does (xerial) rather than as one raw block.
    pub snappy_xerial: bool,
}

impl BatchSpec {
    /// A batch as a non-idempotent producer writes it: consistent counts, offset
    /// deltas 0, 1, 2, …, and the timestamps of `records` as given.
    pub fn plain(base_timestamp: i64, records: Vec<RecordSpec>) -> BatchSpec {
        let n = i32::try_from(records.len()).unwrap_or(i32::MAX);
        let max = records
            .iter()
            .map(|r| base_timestamp.wrapping_add(r.timestamp_delta))
            .max()
            .unwrap_or(base_timestamp);
        BatchSpec {
            base_offset: 0,
            partition_leader_epoch: -1,
            attributes: 0,
            last_offset_delta: n - 1,
            base_timestamp,
            max_timestamp: max,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            record_count: n,
            records,
            compress: false,
            snappy_xerial: true,
        }
    }

    /// The same batch compressed with `codec` (1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compressed(mut self, codec: i16) -> BatchSpec {
        self.attributes = (self.attributes & !0x07) | (codec & 0x07);
        self.compress = true;
        self
    }

    /// The same batch from an idempotent producer.
    pub fn idempotent(mut self, producer_id: i64, epoch: i16, base_sequence: i32) -> BatchSpec {
        self.producer_id = producer_id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }
}

/// A record with a key and a value, at `timestamp_delta` and offset delta `i`.
pub fn record(i: i32, key: Option<&[u8]>, value: Option<&[u8]>) -> RecordSpec {
    RecordSpec {
        attributes: 0,
        timestamp_delta: 0,
        offset_delta: i,
        key: key.map(<[u8]>::to_vec),
        value: value.map(<[u8]>::to_vec),
        headers: Vec::new(),
    }
}

/// Appends a zigzag varint.
pub fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_bytes_field(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// Encodes one record, length prefix included.
pub fn encode_record(r: &RecordSpec) -> Vec<u8> {
    let mut body = vec![r.attributes as u8];
    put_varlong(&mut body, r.timestamp_delta);
    put_varlong(&mut body, i64::from(r.offset_delta));
    put_bytes_field(&mut body, r.key.as_deref());
    put_bytes_field(&mut body, r.value.as_deref());
    put_varlong(&mut body, r.headers.len() as i64);
    for (k, v) in &r.headers {
        put_bytes_field(&mut body, k.as_deref());
        put_bytes_field(&mut body, v.as_deref());
    }
    let mut out = Vec::with_capacity(body.len() + 5);
    put_varlong(&mut out, body.len() as i64);
    out.extend_from_slice(&body);
    out
}

/// Encodes a batch with its true length, magic 2 and a correct CRC-32C.
pub fn encode_batch(b: &BatchSpec) -> Vec<u8> {
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + 16 * b.records.len());
    out.put_i64(b.base_offset);
    out.put_i32(0); // batch length, below
    out.put_i32(b.partition_leader_epoch);
    out.put_i8(2);
    out.put_u32(0); // CRC, below
    out.put_i16(b.attributes);
    out.put_i32(b.last_offset_delta);
    out.put_i64(b.base_timestamp);
    out.put_i64(b.max_timestamp);
    out.put_i64(b.producer_id);
    out.put_i16(b.producer_epoch);
    out.put_i32(b.base_sequence);
    out.put_i32(b.record_count);
    let mut records = Vec::new();
    for r in &b.records {
        records.extend_from_slice(&encode_record(r));
    }
    let codec = (b.attributes & 0x07) as u8;
    if b.compress && (1..=4).contains(&codec) {
        out.extend_from_slice(&compress(codec, &records, b.snappy_xerial));
    } else {
        out.extend_from_slice(&records);
    }
    seal_batch(&mut out);
    out
}

/// Compresses a records section as Kafka producers do: gzip, snappy (xerial-framed
/// as the Java client writes it, or a raw block), lz4 frames, zstd frames.
pub fn compress(codec: u8, raw: &[u8], xerial: bool) -> Vec<u8> {
    use std::io::Write;
    match codec {
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(raw).expect("gzip");
            e.finish().expect("gzip")
        }
        2 => {
            let block = snap::raw::Encoder::new().compress_vec(raw).expect("snappy");
            if !xerial {
                return block;
            }
            let mut out = vec![0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1];
            out.extend_from_slice(&(block.len() as i32).to_be_bytes());
            out.extend_from_slice(&block);
            out
        }
        3 => {
            let mut e = lz4::EncoderBuilder::new().build(Vec::new()).expect("lz4");
            e.write_all(raw).expect("lz4");
            let (out, r) = e.finish();
            r.expect("lz4");
            out
        }
        _ => zstd::bulk::compress(raw, 3).expect("zstd"),
    }
}

/// Makes arbitrary bytes pass the framing checks of a batch: pads them to a full
/// header, then writes the true batch length, magic 2 and the CRC-32C of the rest.
pub fn seal_batch(b: &mut Vec<u8>) {
    if b.len() < BATCH_HEADER_LEN {
        b.resize(BATCH_HEADER_LEN, 0);
    }
    let len = i32::try_from(b.len() - 12).unwrap_or(i32::MAX);
    b[8..12].copy_from_slice(&len.to_be_bytes());
    b[16] = 2;
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// A request frame without its size prefix: the request header (at the header
/// version `R` uses at `version`, client id "fuzz") and the body.
pub fn request_frame<R: Request>(version: i16, correlation_id: i32, req: &R) -> Vec<u8> {
    let mut buf = header(R::KEY, version, correlation_id, Some("fuzz"), R::header_version(version));
    req.encode(&mut buf, version).expect("encoding a request");
    buf.to_vec()
}

/// An encoded request header.
pub fn header(
    api_key: i16,
    version: i16,
    correlation_id: i32,
    client_id: Option<&'static str>,
    header_version: i16,
) -> BytesMut {
    let mut h = RequestHeader::default();
    h.request_api_key = api_key;
    h.request_api_version = version;
    h.correlation_id = correlation_id;
    h.client_id = client_id.map(StrBytes::from_static_str);
    let mut buf = BytesMut::new();
    h.encode(&mut buf, header_version).expect("encoding a request header");
    buf
}
