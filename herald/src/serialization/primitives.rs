//! Serializers for bytes, strings, numbers and UUIDs that write exactly what the
//! Java client's `org.apache.kafka.common.serialization` serializers write, so a
//! Java consumer with the matching deserializer reads herald's records (a test
//! compares herald's bytes with kafka-clients' own for many values).
//!
//! | herald | Java | bytes |
//! |---|---|---|
//! | [`BytesSerializer`] | `ByteArraySerializer`, `BytesSerializer` | as given |
//! | [`StringSerializer`] | `StringSerializer` | UTF-8 |
//! | [`ShortSerializer`] (`i16`) | `ShortSerializer` | 2, big-endian two's complement |
//! | [`IntegerSerializer`] (`i32`) | `IntegerSerializer` | 4, big-endian two's complement |
//! | [`LongSerializer`] (`i64`) | `LongSerializer` | 8, big-endian two's complement |
//! | [`FloatSerializer`] (`f32`) | `FloatSerializer` | 4, IEEE-754 raw bits, big-endian |
//! | [`DoubleSerializer`] (`f64`) | `DoubleSerializer` | 8, IEEE-754 bits, big-endian, NaN canonical |
//! | [`UuidSerializer`] | `UUIDSerializer` | the 36-character lowercase text form, UTF-8 |
//!
//! Java serializers return null for null; herald never calls a serializer for a
//! null key or value (`None` in a [`TypedRecord`](super::TypedRecord)), which is
//! sent as null.

use bytes::Bytes;

use super::{SerializationContext, Serializer};
use crate::error::Error;

/// Bytes as they are (Java's `ByteArraySerializer` and `BytesSerializer`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BytesSerializer;

impl Serializer<[u8]> for BytesSerializer {
    async fn serialize(&self, _: &mut SerializationContext<'_>, data: &[u8]) -> Result<Option<Bytes>, Error> {
        Ok(Some(Bytes::copy_from_slice(data)))
    }
}

impl Serializer<Vec<u8>> for BytesSerializer {
    async fn serialize(
        &self,
        _: &mut SerializationContext<'_>,
        data: &Vec<u8>,
    ) -> Result<Option<Bytes>, Error> {
        Ok(Some(Bytes::copy_from_slice(data)))
    }
}

impl Serializer<Bytes> for BytesSerializer {
    async fn serialize(
        &self,
        _: &mut SerializationContext<'_>,
        data: &Bytes,
    ) -> Result<Option<Bytes>, Error> {
        // Cheap: `Bytes` is reference-counted.
        Ok(Some(data.clone()))
    }
}

/// Text as UTF-8 (Java's `StringSerializer` with its default encoding). Rust strings
/// are always valid UTF-8, so this cannot fail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StringSerializer;

impl Serializer<str> for StringSerializer {
    async fn serialize(&self, _: &mut SerializationContext<'_>, data: &str) -> Result<Option<Bytes>, Error> {
        Ok(Some(Bytes::copy_from_slice(data.as_bytes())))
    }
}

impl Serializer<String> for StringSerializer {
    async fn serialize(
        &self,
        _: &mut SerializationContext<'_>,
        data: &String,
    ) -> Result<Option<Bytes>, Error> {
        Ok(Some(Bytes::copy_from_slice(data.as_bytes())))
    }
}

impl Serializer<&str> for StringSerializer {
    async fn serialize(&self, _: &mut SerializationContext<'_>, data: &&str) -> Result<Option<Bytes>, Error> {
        Ok(Some(Bytes::copy_from_slice(data.as_bytes())))
    }
}

/// `i16` as 2 bytes, big-endian two's complement (Java's `ShortSerializer`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShortSerializer;

impl Serializer<i16> for ShortSerializer {
    async fn serialize(&self, _: &mut SerializationContext<'_>, data: &i16) -> Result<Option<Bytes>, Error> {
        Ok(Some(Bytes::copy_from_slice(&data.to_be_bytes())))
    }
}

/// `i32` as 4 bytes, big-endian two's complement (Java's `IntegerSerializer`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntegerSerializer;

impl Serializer<i32> for IntegerSerializer {
    async fn serialize(&self, _: &mut SerializationContext<'_>, data: &i32) -> Result<Option<Bytes>, Error> {
        Ok(Some(Bytes::copy_from_slice(&data.to_be_bytes())))
    }
}

/// `i64` as 8 bytes, big-endian two's complement (Java's `LongSerializer`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LongSerializer;

impl Serializer<i64> for LongSerializer {
    async fn serialize(&self, _: &mut SerializationContext<'_>, data: &i64) -> Result<Option<Bytes>, Error> {
        Ok(Some(Bytes::copy_from_slice(&data.to_be_bytes())))
    }
}

/// `f32` as its 4 IEEE-754 bytes, big-endian (Java's `FloatSerializer`).
///
/// Java's serializer uses `Float.floatToRawIntBits`, which keeps a NaN's sign and
/// payload bits; so does herald ([`f32::to_bits`]): the bytes are exactly the bits
/// of the value you pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FloatSerializer;

impl Serializer<f32> for FloatSerializer {
    async fn serialize(&self, _: &mut SerializationContext<'_>, data: &f32) -> Result<Option<Bytes>, Error> {
        Ok(Some(Bytes::copy_from_slice(&float_bytes(*data))))
    }
}

/// `f64` as its 8 IEEE-754 bytes, big-endian (Java's `DoubleSerializer`).
///
/// Java's serializer uses `Double.doubleToLongBits`, which writes every NaN as the
/// canonical quiet NaN `0x7ff8000000000000`, whatever its sign and payload; herald
/// does the same. Every other value (±0.0, ±infinity, subnormals) is written with
/// its exact bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DoubleSerializer;

impl Serializer<f64> for DoubleSerializer {
    async fn serialize(&self, _: &mut SerializationContext<'_>, data: &f64) -> Result<Option<Bytes>, Error> {
        Ok(Some(Bytes::copy_from_slice(&double_bytes(*data))))
    }
}

/// Java's `Double.doubleToLongBits`: NaN collapses to one canonical value.
const JAVA_CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;

/// The bytes Java's `FloatSerializer` writes for `v`.
pub fn float_bytes(v: f32) -> [u8; 4] {
    v.to_bits().to_be_bytes()
}

/// The bytes Java's `DoubleSerializer` writes for `v`.
pub fn double_bytes(v: f64) -> [u8; 8] {
    let bits = if v.is_nan() { JAVA_CANONICAL_NAN } else { v.to_bits() };
    bits.to_be_bytes()
}

/// A UUID as its canonical 36-character lowercase text (`8-4-4-4-12` hex digits), in
/// UTF-8: what Java's `UUIDSerializer` writes (`uuid.toString()` encoded with
/// UTF-8), not the UUID's 16 raw bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UuidSerializer;

impl Serializer<uuid::Uuid> for UuidSerializer {
    async fn serialize(
        &self,
        _: &mut SerializationContext<'_>,
        data: &uuid::Uuid,
    ) -> Result<Option<Bytes>, Error> {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let text = data.hyphenated().encode_lower(&mut buf);
        Ok(Some(Bytes::copy_from_slice(text.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn run<T: ?Sized, S: Serializer<T>>(s: &S, v: &T) -> Vec<u8> {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut headers = Vec::new();
        let mut ctx = SerializationContext::new("t", false, &mut headers);
        let out = rt.block_on(s.serialize(&mut ctx, v)).unwrap().unwrap().to_vec();
        assert!(headers.is_empty(), "primitive serializers add no headers");
        out
    }

    #[test]
    fn integers_are_big_endian_twos_complement() {
        assert_eq!(run(&ShortSerializer, &-2i16), [0xff, 0xfe]);
        assert_eq!(run(&IntegerSerializer, &i32::MIN), [0x80, 0, 0, 0]);
        assert_eq!(run(&IntegerSerializer, &258), [0, 0, 1, 2]);
        assert_eq!(run(&LongSerializer, &-1i64), [0xff; 8]);
        assert_eq!(run(&LongSerializer, &1i64), [0, 0, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn floats_follow_java() {
        assert_eq!(run(&FloatSerializer, &1.0f32), [0x3f, 0x80, 0, 0]);
        assert_eq!(run(&FloatSerializer, &-0.0f32), [0x80, 0, 0, 0]);
        // floatToRawIntBits keeps a NaN's payload.
        assert_eq!(run(&FloatSerializer, &f32::from_bits(0xffc0_0001)), [0xff, 0xc0, 0, 1]);
        assert_eq!(run(&DoubleSerializer, &1.5f64), [0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
        assert_eq!(run(&DoubleSerializer, &f64::NEG_INFINITY), [0xff, 0xf0, 0, 0, 0, 0, 0, 0]);
        // doubleToLongBits collapses every NaN.
        assert_eq!(
            run(&DoubleSerializer, &f64::from_bits(0xfff0_0000_0000_0001)),
            [0x7f, 0xf8, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(run(&DoubleSerializer, &5e-324), [0, 0, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn strings_bytes_and_uuids() {
        assert_eq!(run(&StringSerializer, "grüße"), "grüße".as_bytes());
        assert_eq!(run(&StringSerializer, &String::new()), b"");
        assert_eq!(run(&StringSerializer, &"x"), b"x");
        assert_eq!(run(&BytesSerializer, &[0u8, 255][..]), [0, 255]);
        assert_eq!(run(&BytesSerializer, &vec![1u8]), [1]);
        assert_eq!(run(&BytesSerializer, &Bytes::from_static(b"ab")), b"ab");
        let u = uuid::Uuid::from_u128(0x0123_4567_89AB_CDEF_0123_4567_89AB_CDEF);
        assert_eq!(run(&UuidSerializer, &u), b"01234567-89ab-cdef-0123-456789abcdef");
    }

    proptest! {
        #[test]
        fn numbers_round_trip(i in any::<i64>(), f in any::<f32>(), d in any::<f64>()) {
            prop_assert_eq!(i64::from_be_bytes(run(&LongSerializer, &i).try_into().unwrap()), i);
            prop_assert_eq!(u32::from_be_bytes(float_bytes(f)), f.to_bits());
            let back = f64::from_be_bytes(double_bytes(d));
            prop_assert!(back.to_bits() == d.to_bits() || (d.is_nan() && back.to_bits() == JAVA_CANONICAL_NAN));
        }
    }
}
