//! Batch compression: gzip, snappy, lz4, zstd, in the framings every Kafka consumer
//! reads.
//!
//! - **gzip**: a gzip member (RFC 1952), as Java's `GZIPOutputStream` writes.
//! - **snappy**: the xerial snappy-java stream framing Java's producer writes —
//!   an 8-byte magic `\x82SNAPPY\0`, version 1, compatible version 1, then blocks of
//!   at most 32 KiB, each a big-endian length and a raw snappy block. Java's
//!   consumer (`SnappyInputStream`) and librdkafka read it; on input herald also
//!   accepts a bare raw snappy block, which both of them accept too.
//! - **lz4**: the LZ4 frame format (KIP-57, with the correct header checksum), 64 KiB
//!   independent blocks, no block or content checksums and no content size — the
//!   frame Java's `KafkaLZ4BlockOutputStream` writes (its reader refuses dependent
//!   blocks).
//! - **zstd**: a zstd frame.
//!
//! Decompression stops at [`MAX_DECOMPRESSED`] bytes, so a small malicious batch
//! cannot expand without bound.

use std::io::{Read, Write};

/// The most bytes one batch may decompress to. Kafka has no such limit; herald
/// needs one to refuse decompression bombs.
pub(crate) const MAX_DECOMPRESSED: usize = 256 * 1024 * 1024;

const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_BLOCK: usize = 32 * 1024;

/// A codec with its level, as the producer uses it. (Public only through the
/// hidden bench entry points; configure compression with `compression.type`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// gzip at a zlib level 1-9.
    Gzip {
        /// The level.
        level: u32,
    },
    /// snappy, xerial-framed.
    Snappy,
    /// lz4 frames at a Java `compression.lz4.level`.
    Lz4 {
        /// The level.
        level: u32,
    },
    /// zstd at a zstd level.
    Zstd {
        /// The level.
        level: i32,
    },
}

impl Codec {
    /// The codec's id in a batch's attributes (bits 0-2).
    pub fn id(self) -> u8 {
        match self {
            Codec::Gzip { .. } => 1,
            Codec::Snappy => 2,
            Codec::Lz4 { .. } => 3,
            Codec::Zstd { .. } => 4,
        }
    }

    /// The codec a batch's attributes name (bits 0-2), at Java's default level;
    /// `None` for 0 (uncompressed) and ids Kafka does not define.
    pub(crate) fn from_id(id: u8) -> Option<Codec> {
        match id {
            1 => Some(Codec::Gzip { level: 6 }),
            2 => Some(Codec::Snappy),
            3 => Some(Codec::Lz4 { level: 9 }),
            4 => Some(Codec::Zstd { level: 3 }),
            _ => None,
        }
    }
}

/// Compresses `input`, appending to `out`.
pub(crate) fn compress(codec: Codec, input: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
    match codec {
        Codec::Gzip { level } => {
            let mut e = flate2::write::GzEncoder::new(out, flate2::Compression::new(level.min(9)));
            e.write_all(input)?;
            e.finish()?;
        }
        Codec::Snappy => {
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            let mut block = vec![0u8; snap::raw::max_compress_len(XERIAL_BLOCK)];
            for chunk in input.chunks(XERIAL_BLOCK) {
                let n = enc.compress(chunk, &mut block).map_err(std::io::Error::other)?;
                let len = i32::try_from(n).map_err(std::io::Error::other)?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&block[..n]);
            }
        }
        Codec::Lz4 { level } => {
            let mut e = lz4::EncoderBuilder::new()
                .level(lz4_level(level))
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .block_checksum(lz4::liblz4::BlockChecksum::NoBlockChecksum)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .build(out)?;
            e.write_all(input)?;
            let (_, r) = e.finish();
            r?;
        }
        Codec::Zstd { level } => ZSTD.with(|slot| {
            // One compression context per thread (the producer's compression
            // workers are few and long-lived), reused batch after batch: a new
            // stream encoder per batch allocated a context and zeroed tables sized
            // for an unknown input, about a tenth of a zstd run's CPU. The one-shot
            // call knows the batch's size, so zstd sizes its tables to it; the frame
            // is a standard one (content size included), which Java's and
            // librdkafka's consumers read.
            let mut slot = slot.borrow_mut();
            if slot.as_ref().is_none_or(|(l, _)| *l != level) {
                *slot = Some((level, zstd::bulk::Compressor::new(level)?));
            }
            let Some((_, c)) = slot.as_mut() else { return Err(std::io::Error::other("no zstd context")) };
            out.extend_from_slice(&c.compress(input)?);
            Ok::<(), std::io::Error>(())
        })?,
    }
    Ok(())
}

thread_local! {
    /// This thread's zstd compression context and the level it is set to.
    static ZSTD: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

/// liblz4's frame level for Java's `compression.lz4.level` (1-17). Like
/// kafka-clients' `Lz4BlockOutputStream`, the default level 9 selects the *fast*
/// compressor and every other level the high-compression one at that level
/// (liblz4 caps it at 12; levels 1 and 2 are below liblz4's HC range and compress
/// in fast mode).
fn lz4_level(level: u32) -> u32 {
    if level == LZ4_DEFAULT_LEVEL { 0 } else { level.min(12) }
}

/// Kafka's default `compression.lz4.level`, the one that means "fast compressor".
const LZ4_DEFAULT_LEVEL: u32 = 9;

/// Decompresses a batch's records with the codec of id `codec` (1-4).
pub(crate) fn decompress(codec: u8, input: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(input.len().saturating_mul(3).min(MAX_DECOMPRESSED));
    let r = match codec {
        1 => read_limited(flate2::read::GzDecoder::new(input), &mut out),
        2 => return unsnappy(input),
        3 => lz4::Decoder::new(input).and_then(|d| read_limited(d, &mut out)),
        4 => zstd::stream::Decoder::new(input).and_then(|d| read_limited(d, &mut out)),
        c => return Err(format!("unknown compression codec {c}")),
    };
    r.map_err(|e| format!("{} data is corrupt: {e}", codec_name(codec)))?;
    Ok(out)
}

fn codec_name(codec: u8) -> &'static str {
    match codec {
        1 => "gzip",
        2 => "snappy",
        3 => "lz4",
        4 => "zstd",
        _ => "compressed",
    }
}

fn read_limited(r: impl Read, out: &mut Vec<u8>) -> std::io::Result<()> {
    let n = r.take(MAX_DECOMPRESSED as u64 + 1).read_to_end(out)?;
    if n > MAX_DECOMPRESSED {
        return Err(std::io::Error::other(format!("decompresses to more than {MAX_DECOMPRESSED} bytes")));
    }
    Ok(())
}

fn unsnappy(input: &[u8]) -> Result<Vec<u8>, String> {
    let mut dec = snap::raw::Decoder::new();
    let block = |dec: &mut snap::raw::Decoder, b: &[u8], out: &mut Vec<u8>| -> Result<(), String> {
        let n = snap::raw::decompress_len(b).map_err(|e| format!("snappy data is corrupt: {e}"))?;
        // Snappy cannot do better than about 21:1 (a 3-byte copy yields at most 64
        // bytes); a block claiming far more is corrupt, and must not make us
        // allocate what it claims (found by the record_batch fuzz target).
        if n > b.len().saturating_mul(32) + 64 {
            return Err(format!("snappy block of {} bytes claims {n} bytes uncompressed", b.len()));
        }
        if out.len() + n > MAX_DECOMPRESSED {
            return Err(format!("snappy data decompresses to more than {MAX_DECOMPRESSED} bytes"));
        }
        let start = out.len();
        out.resize(start + n, 0);
        dec.decompress(b, &mut out[start..]).map_err(|e| format!("snappy data is corrupt: {e}"))?;
        Ok(())
    };
    let mut out = Vec::new();
    if !input.starts_with(&XERIAL_MAGIC) {
        block(&mut dec, input, &mut out)?;
        return Ok(out);
    }
    let mut rest = input.get(16..).ok_or("snappy stream header is truncated")?;
    while !rest.is_empty() {
        let len_bytes: [u8; 4] =
            rest.get(..4).and_then(|b| b.try_into().ok()).ok_or("snappy block length is truncated")?;
        let len =
            usize::try_from(i32::from_be_bytes(len_bytes)).map_err(|_| "negative snappy block length")?;
        let b = rest.get(4..4 + len).ok_or("snappy block is truncated")?;
        block(&mut dec, b, &mut out)?;
        rest = &rest[4 + len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CODECS: [Codec; 4] =
        [Codec::Gzip { level: 6 }, Codec::Snappy, Codec::Lz4 { level: 9 }, Codec::Zstd { level: 3 }];

    proptest! {
        #[test]
        fn round_trips(data in proptest::collection::vec(any::<u8>(), 0..200_000), which in 0usize..4) {
            let codec = CODECS[which];
            let mut c = Vec::new();
            compress(codec, &data, &mut c).unwrap();
            prop_assert_eq!(decompress(codec.id(), &c).unwrap(), data);
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2000), codec in 0u8..6) {
            let _ = decompress(codec, &data);
        }
    }

    #[test]
    fn lz4_frame_is_what_kafka_java_reads() {
        let mut c = Vec::new();
        compress(Codec::Lz4 { level: 9 }, &[7u8; 1000], &mut c).unwrap();
        assert_eq!(&c[..4], &[0x04, 0x22, 0x4d, 0x18], "LZ4 frame magic");
        let flg = c[4];
        assert_eq!(flg >> 6, 1, "version 01");
        assert_ne!(flg & 0x20, 0, "independent blocks");
        assert_eq!(flg & 0x1f, 0, "no block checksum, content size, content checksum or dict id");
        assert_eq!((c[5] >> 4) & 0x7, 4, "64 KiB blocks");
        // KIP-57: the header checksum covers the descriptor only (FLG and BD).
        let hc = (xxhash_rust_free(&c[4..6]) >> 8) as u8;
        assert_eq!(c[6], hc, "header checksum");
    }

    /// kafka-clients 4.x `Lz4BlockOutputStream`: `level == CompressionType.LZ4.defaultLevel()`
    /// (9) picks `fastCompressor()`, any other level `highCompressor(level)`.
    #[test]
    fn lz4_default_level_is_the_fast_compressor_like_java() {
        assert_eq!(lz4_level(9), 0, "default level: liblz4's fast mode");
        assert_eq!(lz4_level(10), 10);
        assert_eq!(lz4_level(17), 12, "liblz4 caps HC at 12");
        // And it shows: on text, high compression is smaller than the fast mode.
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("{{\"seq\":{i},\"truck\":\"t-{}\"}}", i % 97).into_bytes())
            .collect();
        let (mut fast, mut high) = (Vec::new(), Vec::new());
        compress(Codec::Lz4 { level: 9 }, &text, &mut fast).unwrap();
        compress(Codec::Lz4 { level: 12 }, &text, &mut high).unwrap();
        assert!(high.len() < fast.len(), "HC {} bytes, fast {} bytes", high.len(), fast.len());
        assert_eq!(decompress(3, &fast).unwrap(), text);
        assert_eq!(decompress(3, &high).unwrap(), text);
    }

    /// xxh32 with seed 0, for the LZ4 header checksum check above (test only).
    fn xxhash_rust_free(data: &[u8]) -> u32 {
        const P1: u32 = 2654435761;
        const P2: u32 = 2246822519;
        const P3: u32 = 3266489917;
        const P4: u32 = 668265263;
        const P5: u32 = 374761393;
        let mut h = P5.wrapping_add(data.len() as u32);
        let mut chunks = data.chunks_exact(4);
        for c in &mut chunks {
            h = h.wrapping_add(u32::from_le_bytes([c[0], c[1], c[2], c[3]]).wrapping_mul(P3));
            h = h.rotate_left(17).wrapping_mul(P4);
        }
        for b in chunks.remainder() {
            h = h.wrapping_add(u32::from(*b).wrapping_mul(P5));
            h = h.rotate_left(11).wrapping_mul(P1);
        }
        h ^= h >> 15;
        h = h.wrapping_mul(P2);
        h ^= h >> 13;
        h = h.wrapping_mul(P3);
        h ^= h >> 16;
        h
    }

    #[test]
    fn snappy_is_xerial_framed_and_raw_is_accepted() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut c = Vec::new();
        compress(Codec::Snappy, &data, &mut c).unwrap();
        assert_eq!(&c[..8], &XERIAL_MAGIC);
        assert_eq!(&c[8..16], &[0, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(decompress(2, &c).unwrap(), data);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(2, &raw).unwrap(), data);
    }

    #[test]
    fn a_snappy_block_claiming_more_than_snappy_can_encode_is_refused() {
        // A varint length of 256 MiB followed by nothing.
        let claim: &[u8] = &[0x80, 0x80, 0x80, 0x80, 0x01];
        let started = std::time::Instant::now();
        let e = decompress(2, claim).unwrap_err();
        assert!(e.contains("claims"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_millis(50), "refused without allocating");
        // The most compressible real data still decodes.
        let zeros = vec![0u8; 1 << 20];
        let mut c = Vec::new();
        compress(Codec::Snappy, &zeros, &mut c).unwrap();
        assert_eq!(decompress(2, &c).unwrap(), zeros);
    }

    #[test]
    fn a_decompression_bomb_is_refused() {
        let zeros = vec![0u8; MAX_DECOMPRESSED + 1];
        let mut c = Vec::new();
        compress(Codec::Zstd { level: 1 }, &zeros, &mut c).unwrap();
        assert!(c.len() < 1_000_000);
        assert!(decompress(4, &c).unwrap_err().contains("more than"));
    }
}
