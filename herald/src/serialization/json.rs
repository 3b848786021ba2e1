//! JSON for any serde type.

use bytes::Bytes;
use serde::Serialize;

use super::{SerializationContext, Serializer};
use crate::error::Error;

/// Any [`serde::Serialize`] value as compact JSON in UTF-8 (what Kafka Connect's
/// `JsonConverter` with schemas off, or a Jackson `ObjectMapper`, reads). No schema,
/// no framing: for JSON with a Schema Registry id, use the `schema-registry`
/// serializers.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), herald::Error> {
/// use herald::serialization::{JsonSerializer, SerializationContext, Serializer};
///
/// #[derive(serde::Serialize)]
/// struct Position { lat: f64, lon: f64 }
///
/// let mut headers = Vec::new();
/// let mut ctx = SerializationContext::new("trucks", false, &mut headers);
/// let bytes = JsonSerializer.serialize(&mut ctx, &Position { lat: 52.52, lon: 13.4 }).await?;
/// assert_eq!(bytes.as_deref(), Some(&br#"{"lat":52.52,"lon":13.4}"#[..]));
/// # Ok(()) }
/// ```
///
/// A value serde cannot write as JSON (a map with non-string keys, a failing custom
/// `Serialize`) fails that record with [`ErrorKind::Serialization`](crate::ErrorKind::Serialization).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonSerializer;

impl<T: Serialize + Sync + ?Sized> Serializer<T> for JsonSerializer {
    async fn serialize(&self, ctx: &mut SerializationContext<'_>, data: &T) -> Result<Option<Bytes>, Error> {
        match serde_json::to_vec(data) {
            Ok(v) => Ok(Some(Bytes::from(v))),
            Err(e) => Err(ctx.error(format!("cannot write JSON: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    async fn json<T: Serialize + Sync + ?Sized>(v: &T) -> Result<Option<Bytes>, Error> {
        let mut headers = Vec::new();
        let mut ctx = SerializationContext::new("t", true, &mut headers);
        JsonSerializer.serialize(&mut ctx, v).await
    }

    #[tokio::test]
    async fn writes_compact_json() {
        assert_eq!(
            json(&serde_json::json!({"a": [1, "ü", null]})).await.unwrap().unwrap(),
            r#"{"a":[1,"ü",null]}"#
        );
        assert_eq!(json("text").await.unwrap().unwrap(), r#""text""#);
        assert_eq!(
            json(&Option::<i32>::None).await.unwrap().unwrap(),
            "null",
            "a JSON null is not a null value"
        );
    }

    #[tokio::test]
    async fn unwritable_values_fail_with_the_topic() {
        let mut m = BTreeMap::new();
        m.insert(vec![1u8], 1);
        let e = json(&m).await.unwrap_err();
        assert_eq!(e.topic(), Some("t"));
        assert!(e.to_string().contains("could not serialize the key: cannot write JSON"), "{e}");
    }
}
