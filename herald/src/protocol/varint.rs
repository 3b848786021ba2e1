//! Kafka's zig-zag varints (protobuf style), as records in a batch use them.

/// Bytes a zig-zag varint of `v` takes.
pub(crate) fn varint_len(v: i32) -> usize {
    uvarint_len(u64::from(zigzag32(v)))
}

/// Bytes a zig-zag varlong of `v` takes.
pub(crate) fn varlong_len(v: i64) -> usize {
    uvarint_len(zigzag64(v))
}

fn uvarint_len(v: u64) -> usize {
    // 7 payload bits a byte; at least one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Appends `v` as a zig-zag varlong — which, for a value that fits in an i32, is
/// also its zig-zag varint.
pub(crate) fn push_varint(b: &mut Vec<u8>, v: i64) {
    let mut u = zigzag64(v);
    while u >= 0x80 {
        b.push((u as u8) | 0x80);
        u >>= 7;
    }
    b.push(u as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(buf: &[u8]) -> (i64, usize) {
        let mut v: u64 = 0;
        for (i, byte) in buf.iter().enumerate() {
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return (((v >> 1) as i64) ^ -((v & 1) as i64), i + 1);
            }
        }
        panic!("unterminated varint");
    }

    #[test]
    fn known_encodings() {
        let cases: &[(i32, &[u8])] =
            &[(0, &[0]), (-1, &[1]), (1, &[2]), (63, &[126]), (64, &[128, 1]), (-65, &[129, 1])];
        for (v, want) in cases {
            let mut b = Vec::new();
            push_varint(&mut b, i64::from(*v));
            assert_eq!(&b[..], *want, "{v}");
            assert_eq!(varint_len(*v), want.len());
        }
    }

    proptest! {
        #[test]
        fn varint_round_trips(v in any::<i32>()) {
            let mut b = Vec::new();
            push_varint(&mut b, i64::from(v));
            prop_assert_eq!(b.len(), varint_len(v));
            prop_assert_eq!(decode(&b), (i64::from(v), b.len()));
        }

        #[test]
        fn varlong_round_trips(v in any::<i64>()) {
            let mut b = Vec::new();
            push_varint(&mut b, v);
            prop_assert_eq!(b.len(), varlong_len(v));
            prop_assert_eq!(decode(&b), (v, b.len()));
        }
    }
}
