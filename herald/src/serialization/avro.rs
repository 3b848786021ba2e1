//! Avro values in the Confluent wire format (the bytes Confluent's
//! `KafkaAvroSerializer` writes, and its `KafkaAvroDeserializer` reads).
//!
//! [`AvroSerializer`] holds one Avro schema. On first use for a subject it
//! registers the schema (or looks it up, or takes the subject's latest id: see
//! [`RegistrySerializerConfig`](super::registry::RegistrySerializerConfig)), then writes each value as magic byte 0, the
//! schema id, and the value's Avro binary encoding.
//!
//! ```no_run
//! # async fn demo() -> Result<(), herald::Error> {
//! use herald::serialization::avro::AvroSerializer;
//! use herald::serialization::registry::SchemaRegistryClient;
//! use herald::serialization::{StringSerializer, TypedProducer, TypedRecord};
//!
//! #[derive(serde::Serialize)]
//! struct Position { truck: String, lat: f64, lon: f64 }
//!
//! let registry = SchemaRegistryClient::new("http://127.0.0.1:8081")?;
//! let positions = AvroSerializer::new(registry, r#"{"type": "record", "name": "Position", "namespace": "fleet",
//!     "fields": [{"name": "truck", "type": "string"}, {"name": "lat", "type": "double"}, {"name": "lon", "type": "double"}]}"#)?;
//! let producer = herald::Producer::builder().bootstrap_servers("127.0.0.1:9092").build()?;
//! let trucks = TypedProducer::new(producer, StringSerializer, positions);
//! let pos = Position { truck: "truck_id_123".into(), lat: 52.52, lon: 13.40 };
//! trucks.send_and_wait(TypedRecord::new("trucks").key("truck_id_123".to_owned()).value(pos)).await?;
//! # Ok(()) }
//! ```

use bytes::Bytes;
use serde::Serialize;

use super::registry::{Schema, SchemaIdResolver, SchemaRegistryClient};
use super::{SerializationContext, Serializer, wire};
use crate::error::{Error, ErrorKind, Result};

/// The apache-avro crate herald uses, to build [`AvroValue`]s with the same version.
pub use apache_avro;

/// An Avro value built by hand (rather than from a serde type), for
/// [`AvroSerializer`]: e.g. from [`AvroSerializer::value_from_json`].
#[derive(Debug, Clone, PartialEq)]
pub struct AvroValue(pub apache_avro::types::Value);

/// Serializes values with one Avro schema, in the Confluent wire format.
///
/// Values are any [`serde::Serialize`] type whose shape fits the schema (structs
/// for records, `Option` for `["null", …]` unions, …), or an [`AvroValue`]. A value
/// that does not fit fails that record with [`ErrorKind::Serialization`].
#[derive(Debug)]
pub struct AvroSerializer {
    schema: apache_avro::Schema,
    registered: Schema,
    record_name: Option<String>,
    resolver: SchemaIdResolver,
}

impl AvroSerializer {
    /// A serializer for `schema` (Avro schema JSON) that registers it with
    /// `registry`. Fails if the schema is not valid Avro.
    pub fn new(registry: SchemaRegistryClient, schema: &str) -> Result<AvroSerializer> {
        let parsed = apache_avro::Schema::parse_str(schema).map_err(|e| {
            Error::from_kind(ErrorKind::Config { name: "avro schema".into(), reason: e.to_string() })
        })?;
        let record_name = parsed.name().map(|n| n.fullname(None));
        Ok(AvroSerializer {
            schema: parsed,
            // Registered as written: the canonical form would drop defaults and docs
            // that compatibility checks and readers need.
            registered: Schema::avro(schema.trim()),
            record_name,
            resolver: SchemaIdResolver::new(registry),
        })
    }

    crate::serialization::registry::registry_settings!();

    /// The parsed schema.
    pub fn schema(&self) -> &apache_avro::Schema {
        &self.schema
    }

    /// The schema's full name (`namespace.name`), for named types (records, enums,
    /// fixed): what
    /// [`SubjectNameStrategy::RecordName`](super::registry::SubjectNameStrategy::RecordName)
    /// uses.
    pub fn record_name(&self) -> Option<&str> {
        self.record_name.as_deref()
    }

    /// Reads a value written in Avro's JSON encoding (unions as `{"type": value}`,
    /// bytes as ISO-8859-1 strings, absent fields taking their defaults). The error
    /// says what did not fit the schema, and where.
    ///
    /// ```
    /// # fn demo() -> Result<(), String> {
    /// use herald::serialization::avro::AvroSerializer;
    /// use herald::serialization::registry::SchemaRegistryClient;
    ///
    /// let registry = SchemaRegistryClient::new("http://127.0.0.1:8081").map_err(|e| e.to_string())?;
    /// let s = AvroSerializer::new(registry, r#"["null", "string"]"#).map_err(|e| e.to_string())?;
    /// s.value_from_json(r#"{"string": "hello"}"#)?;
    /// assert!(s.value_from_json(r#""hello""#).is_err());
    /// # Ok(()) }
    /// # demo().unwrap();
    /// ```
    pub fn value_from_json(&self, json: &str) -> std::result::Result<AvroValue, String> {
        let json: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
        super::avro_json::value_from_json(&self.schema, &json).map(AvroValue)
    }

    async fn frame(&self, ctx: &SerializationContext<'_>, value: apache_avro::types::Value) -> Result<Bytes> {
        let value = value
            .resolve(&self.schema)
            .map_err(|e| ctx.error(format!("value does not match the Avro schema: {e}")))?;
        let body = apache_avro::to_avro_datum(&self.schema, value)
            .map_err(|e| ctx.error(format!("cannot write Avro: {e}")))?;
        let id = self.resolver.id(ctx, self.record_name.as_deref(), &self.registered).await?;
        let mut out = Vec::with_capacity(wire::HEADER_LEN + body.len());
        wire::encode_header(id, &mut out);
        out.extend_from_slice(&body);
        Ok(Bytes::from(out))
    }
}

impl<T: Serialize + Sync + ?Sized> Serializer<T> for AvroSerializer {
    async fn serialize(&self, ctx: &mut SerializationContext<'_>, data: &T) -> Result<Option<Bytes>> {
        let value =
            apache_avro::to_value(data).map_err(|e| ctx.error(format!("cannot convert to Avro: {e}")))?;
        self.frame(ctx, value).await.map(Some)
    }
}

impl Serializer<AvroValue> for AvroSerializer {
    async fn serialize(&self, ctx: &mut SerializationContext<'_>, data: &AvroValue) -> Result<Option<Bytes>> {
        self.frame(ctx, data.0.clone()).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serializer(schema: &str) -> AvroSerializer {
        // Nothing listens there: these tests fail before the registry is asked.
        AvroSerializer::new(SchemaRegistryClient::new("http://127.0.0.1:1").unwrap(), schema).unwrap()
    }

    #[test]
    fn schemas_are_checked_and_named() {
        let e = AvroSerializer::new(
            SchemaRegistryClient::new("http://127.0.0.1:1").unwrap(),
            "{\"type\": \"nope\"}",
        )
        .unwrap_err();
        assert!(e.is_config(), "{e}");
        let s = serializer(
            r#"{"type":"record","name":"P","namespace":"fleet","fields":[{"name":"a","type":"int"}]}"#,
        );
        assert_eq!(s.record_name(), Some("fleet.P"));
        assert_eq!(serializer(r#""string""#).record_name(), None);
    }

    #[tokio::test]
    async fn values_that_do_not_fit_fail_before_the_registry_is_asked() {
        #[derive(Serialize)]
        struct Wrong {
            b: String,
        }
        let s = serializer(r#"{"type":"record","name":"P","fields":[{"name":"a","type":"int"}]}"#);
        let mut headers = Vec::new();
        let mut ctx = SerializationContext::new("t", false, &mut headers);
        let e = s.serialize(&mut ctx, &Wrong { b: "x".into() }).await.unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::Serialization { is_key: false, .. }), "{e:?}");
        assert!(e.to_string().contains("does not match the Avro schema"), "{e}");
        assert_eq!(e.topic(), Some("t"));
    }
}
