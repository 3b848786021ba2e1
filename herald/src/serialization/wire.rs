//! The Confluent Schema Registry wire format: how Avro, Protobuf and JSON Schema
//! serializers that use a registry frame their payload.
//!
//! ```text
//! byte 0       magic byte, always 0
//! bytes 1..5   schema id, 32-bit big-endian (the id the registry gave the schema)
//! Protobuf only: the message indexes, the path from the .proto file to the
//!              message: a count, then each index, all zig-zag varints; the
//!              common path [0] (the file's first message) is the single byte 0
//! the rest     the payload: Avro binary of the datum, the Protobuf message, or
//!              the JSON text (JSON Schema)
//! ```
//!
//! Pure functions, no I/O; the decoders take any bytes (from a topic, say) and
//! return an error rather than panic on malformed input.
//!
//! ```
//! use herald::serialization::wire;
//!
//! let mut framed = Vec::new();
//! wire::encode_header(7, &mut framed);
//! wire::encode_message_indexes(&[1, 0], &mut framed);
//! framed.extend_from_slice(b"payload");
//! assert_eq!(&framed[..7], &[0, 0, 0, 0, 7, 4, 2]);
//! let (id, indexes, payload) = wire::decode_protobuf(&framed)?;
//! assert_eq!((id, indexes, payload), (7, vec![1, 0], &b"payload"[..]));
//! # Ok::<(), wire::WireError>(())
//! ```

use std::fmt;

/// The first byte of every framed payload.
pub const MAGIC_BYTE: u8 = 0;

/// Length of the magic byte and schema id.
pub const HEADER_LEN: usize = 5;

/// The most message indexes [`decode_protobuf`] accepts: a bound so a corrupt count
/// cannot make it allocate without limit (Protobuf nests messages far less deeply).
pub const MAX_MESSAGE_INDEXES: usize = 100;

/// Why bytes are not in the Confluent wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// Fewer than [`HEADER_LEN`] bytes.
    TooShort {
        /// How many bytes there were.
        len: usize,
    },
    /// The first byte is not [`MAGIC_BYTE`].
    BadMagic {
        /// The byte found.
        found: u8,
    },
    /// The Protobuf message indexes are truncated, overlong, negative or too many.
    BadMessageIndexes {
        /// What was wrong.
        detail: &'static str,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TooShort { len } => {
                write!(
                    f,
                    "{len} bytes is too short for the Confluent wire format (magic byte and schema id: 5)"
                )
            }
            WireError::BadMagic { found } => {
                write!(f, "first byte is {found}, not the Confluent wire format's magic byte 0")
            }
            WireError::BadMessageIndexes { detail } => write!(f, "bad Protobuf message indexes: {detail}"),
        }
    }
}

impl std::error::Error for WireError {}

/// Appends the magic byte and `schema_id` (big-endian).
pub fn encode_header(schema_id: i32, out: &mut Vec<u8>) {
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
}

/// Appends Protobuf message indexes as Confluent's serializer writes them: `[0]` as
/// the single byte 0, anything else as the count and then each index, all zig-zag
/// varints. An empty slice is written as `[0]` (every message has a path of at
/// least one index).
pub fn encode_message_indexes(indexes: &[i32], out: &mut Vec<u8>) {
    if indexes.is_empty() || indexes == [0] {
        out.push(0);
        return;
    }
    // A slice longer than i32::MAX cannot be a message path; saturate rather than wrap.
    write_zigzag(i32::try_from(indexes.len()).unwrap_or(i32::MAX), out);
    for &i in indexes {
        write_zigzag(i, out);
    }
}

/// A whole framed payload: header, then `payload`.
pub fn frame(schema_id: i32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    encode_header(schema_id, &mut out);
    out.extend_from_slice(payload);
    out
}

/// Splits framed bytes into the schema id and the rest (for Avro and JSON Schema the
/// payload; for Protobuf the message indexes and payload: see [`decode_protobuf`]).
pub fn decode(bytes: &[u8]) -> Result<(i32, &[u8]), WireError> {
    if bytes.len() < HEADER_LEN {
        return Err(WireError::TooShort { len: bytes.len() });
    }
    if bytes[0] != MAGIC_BYTE {
        return Err(WireError::BadMagic { found: bytes[0] });
    }
    let id = i32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Ok((id, &bytes[HEADER_LEN..]))
}

/// Splits framed Protobuf bytes into the schema id, the message indexes and the
/// message's bytes.
pub fn decode_protobuf(bytes: &[u8]) -> Result<(i32, Vec<i32>, &[u8]), WireError> {
    let (id, rest) = decode(bytes)?;
    let (indexes, payload) = decode_message_indexes(rest)?;
    Ok((id, indexes, payload))
}

/// Reads message indexes from the front of `bytes`; returns them and what follows.
pub fn decode_message_indexes(bytes: &[u8]) -> Result<(Vec<i32>, &[u8]), WireError> {
    let (count, mut rest) = read_zigzag(bytes)?;
    if count == 0 {
        return Ok((vec![0], rest));
    }
    let count =
        usize::try_from(count).map_err(|_| WireError::BadMessageIndexes { detail: "negative count" })?;
    if count > MAX_MESSAGE_INDEXES {
        return Err(WireError::BadMessageIndexes { detail: "more than 100 indexes" });
    }
    let mut indexes = Vec::with_capacity(count);
    for _ in 0..count {
        let (i, r) = read_zigzag(rest)?;
        if i < 0 {
            return Err(WireError::BadMessageIndexes { detail: "negative index" });
        }
        indexes.push(i);
        rest = r;
    }
    Ok((indexes, rest))
}

fn write_zigzag(v: i32, out: &mut Vec<u8>) {
    let mut z = ((v << 1) ^ (v >> 31)) as u32;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn read_zigzag(bytes: &[u8]) -> Result<(i32, &[u8]), WireError> {
    let mut z: u32 = 0;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        if i == 4 && b > 0x0f {
            return Err(WireError::BadMessageIndexes { detail: "varint longer than 32 bits" });
        }
        z |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let v = ((z >> 1) as i32) ^ -((z & 1) as i32);
            return Ok((v, &bytes[i + 1..]));
        }
    }
    Err(WireError::BadMessageIndexes { detail: "truncated varint" })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn header_is_magic_then_big_endian_id() {
        assert_eq!(frame(0x0102_0304, b"x"), [0, 1, 2, 3, 4, b'x']);
        assert_eq!(decode(&[0, 0, 0, 1, 0]), Ok((256, &[][..])));
        assert_eq!(decode(&[0, 0, 0]), Err(WireError::TooShort { len: 3 }));
        assert_eq!(decode(&[1, 0, 0, 0, 0]), Err(WireError::BadMagic { found: 1 }));
    }

    #[test]
    fn message_indexes_follow_confluent() {
        let enc = |ix: &[i32]| {
            let mut v = Vec::new();
            encode_message_indexes(ix, &mut v);
            v
        };
        assert_eq!(enc(&[0]), [0]);
        assert_eq!(enc(&[]), [0]);
        assert_eq!(enc(&[1]), [2, 2]);
        assert_eq!(enc(&[0, 2]), [4, 0, 4]);
        assert_eq!(enc(&[64]), [2, 0x80, 0x01]);
        assert_eq!(decode_message_indexes(&[0, 9]), Ok((vec![0], &[9u8][..])));
        assert!(decode_message_indexes(&[]).is_err());
        assert!(decode_message_indexes(&[1]).is_err(), "negative count");
        assert!(decode_message_indexes(&[2]).is_err(), "truncated");
        assert!(decode_message_indexes(&[2, 1]).is_err(), "negative index");
        assert!(decode_message_indexes(&[0xff, 0xff, 0xff, 0xff, 0xff]).is_err(), "overlong");
        assert!(decode_message_indexes(&[0xca, 0x01]).is_err(), "101 indexes");
    }

    proptest! {
        #[test]
        fn framing_round_trips(id in any::<i32>(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let framed = frame(id, &payload);
            prop_assert_eq!(decode(&framed).unwrap(), (id, &payload[..]));
        }

        #[test]
        fn protobuf_framing_round_trips(
            id in any::<i32>(),
            indexes in proptest::collection::vec(0..i32::MAX, 1..8),
            payload in proptest::collection::vec(any::<u8>(), 0..32),
        ) {
            let mut framed = Vec::new();
            encode_header(id, &mut framed);
            encode_message_indexes(&indexes, &mut framed);
            framed.extend_from_slice(&payload);
            let (got_id, got_indexes, got_payload) = decode_protobuf(&framed).unwrap();
            prop_assert_eq!(got_id, id);
            prop_assert_eq!(got_indexes, indexes);
            prop_assert_eq!(got_payload, &payload[..]);
        }

        #[test]
        fn zigzag_round_trips(v in any::<i32>()) {
            let mut out = Vec::new();
            write_zigzag(v, &mut out);
            prop_assert!(out.len() <= 5);
            prop_assert_eq!(read_zigzag(&out).unwrap(), (v, &[][..]));
        }

        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = decode_protobuf(&bytes);
        }
    }
}
