//! JSON values checked against a JSON Schema, in the Confluent wire format (the
//! bytes Confluent's `KafkaJsonSchemaSerializer` writes, and its
//! `KafkaJsonSchemaDeserializer` reads).
//!
//! [`JsonSchemaSerializer`] holds one JSON Schema. It compiles the schema once (with
//! the [`jsonschema`] crate), checks every value against it before anything is
//! sent, and on first use for a subject registers the schema (schemaType `JSON`),
//! or looks it up, or takes the subject's latest id: see
//! [`RegistrySerializerConfig`](super::registry::RegistrySerializerConfig). Each value
//! is then written as magic byte 0, the 4-byte big-endian schema id, and the value's
//! compact JSON text in UTF-8.
//!
//! A value that does not match the schema fails that record alone with
//! [`ErrorKind::Serialization`], naming each violation's place in the schema and in
//! the value: `/properties/age/minimum at /age: -3 is less than the minimum of 0`.
//! Confluent's serializer checks only with `json.fail.invalid.schema=true`; herald
//! always does.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), herald::Error> {
//! use herald::serialization::json_schema::JsonSchemaSerializer;
//! use herald::serialization::registry::SchemaRegistryClient;
//! use herald::serialization::{SerializationContext, Serializer};
//!
//! #[derive(serde::Serialize)]
//! struct Driver { name: String, age: i32 }
//!
//! let schema = r#"{"$schema": "https://json-schema.org/draft/2020-12/schema",
//!     "title": "fleet.Driver", "type": "object", "required": ["name"],
//!     "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}}"#;
//! let registry = SchemaRegistryClient::new("http://127.0.0.1:8081")?;
//! let drivers = JsonSchemaSerializer::new(registry, schema)?;
//! // TypedProducer::new(producer, StringSerializer, drivers) sends `Driver`s; a value
//! // that does not match fails before the registry is asked:
//! let mut headers = Vec::new();
//! let mut ctx = SerializationContext::new("drivers", false, &mut headers);
//! let e = drivers.serialize(&mut ctx, &Driver { name: "Ada".into(), age: -3 }).await.unwrap_err();
//! assert!(e.to_string().ends_with("/properties/age/minimum at /age: -3 is less than the minimum of 0"), "{e}");
//! # Ok(()) }
//! ```

use bytes::Bytes;
use serde::Serialize;

use super::registry::{Schema, SchemaIdResolver, SchemaRegistryClient};
use super::{SerializationContext, Serializer, wire};
use crate::error::{Error, ErrorKind, Result};

/// The jsonschema crate herald uses (its [`Validator`](jsonschema::Validator) and
/// [`Draft`](jsonschema::Draft) are what [`JsonSchemaSerializer`] exposes).
pub use jsonschema;

/// How many violations one error lists; the rest are counted.
const SHOWN_VIOLATIONS: usize = 3;

/// JSON text, sent byte for byte as it is once it parses and matches the schema
/// (rather than a serde value that the serializer writes itself): for JSON that
/// arrives as text, such as the lines `herald produce` reads.
///
/// ```
/// use herald::serialization::json_schema::RawJson;
/// let text = RawJson::from(r#"{"name": "Ada", "age": 36}"#);
/// assert_eq!(text.as_bytes(), br#"{"name": "Ada", "age": 36}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawJson(pub Bytes);

impl RawJson {
    /// The text's bytes (see the example above).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for RawJson {
    fn from(text: &str) -> RawJson {
        RawJson(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl From<String> for RawJson {
    fn from(text: String) -> RawJson {
        RawJson(Bytes::from(text))
    }
}

impl From<Bytes> for RawJson {
    fn from(bytes: Bytes) -> RawJson {
        RawJson(bytes)
    }
}

/// Serializes values that match one JSON Schema, in the Confluent wire format.
///
/// Values are any [`serde::Serialize`] type (written as compact JSON, struct fields
/// in declaration order), a [`serde_json::Value`], or [`RawJson`] text (sent as
/// given).
///
/// The draft is the one the schema's `$schema` names: draft 4, 6, 7, 2019-09 or
/// 2020-12. A schema without `$schema` is read as draft 7, as Confluent's
/// `JsonSchema` does. As the drafts say, `format` is checked in drafts 4 to 7 and
/// is only an annotation in 2019-09 and 2020-12. `$ref`s are resolved within the
/// schema; a schema that refers to another document is refused (herald fetches
/// nothing).
///
/// Registries differ on what they take as a JSON Schema: Apicurio's Confluent API
/// (2.4) refuses one with neither `$schema` nor `properties` (`{"type": "string"}`),
/// which Confluent's registry accepts; give such schemas a `$schema`.
#[derive(Debug)]
pub struct JsonSchemaSerializer {
    schema: serde_json::Value,
    validator: jsonschema::Validator,
    registered: Schema,
    record_name: Option<String>,
    resolver: SchemaIdResolver,
}

impl JsonSchemaSerializer {
    /// A serializer for `schema` (JSON Schema text) that registers it with
    /// `registry`. Compiles the schema once; fails if it is not JSON, not a valid
    /// schema for its draft, or refers to another document.
    ///
    /// ```
    /// use herald::serialization::json_schema::{JsonSchemaSerializer, jsonschema::Draft};
    /// use herald::serialization::registry::SchemaRegistryClient;
    ///
    /// let registry = SchemaRegistryClient::new("http://127.0.0.1:8081")?;
    /// let s = JsonSchemaSerializer::new(registry.clone(), r#"{"type": "string", "maxLength": 8}"#)?;
    /// assert_eq!(s.draft(), Draft::Draft7, "no $schema: draft 7");
    /// let e = JsonSchemaSerializer::new(registry, r#"{"type": "strin"}"#).unwrap_err();
    /// assert!(e.is_config(), "{e}");
    /// # Ok::<(), herald::Error>(())
    /// ```
    pub fn new(registry: SchemaRegistryClient, schema: &str) -> Result<JsonSchemaSerializer> {
        let bad = |reason: String| Error::from_kind(ErrorKind::Config { name: "json schema".into(), reason });
        let parsed: serde_json::Value =
            serde_json::from_str(schema).map_err(|e| bad(format!("not JSON: {e}")))?;
        let mut options = jsonschema::options();
        if parsed.get("$schema").is_none() {
            options = options.with_draft(jsonschema::Draft::Draft7);
        }
        let validator = options.build(&parsed).map_err(|e| bad(format!("not a usable JSON Schema: {e}")))?;
        let record_name = parsed.get("title").and_then(serde_json::Value::as_str).map(str::to_owned);
        Ok(JsonSchemaSerializer {
            schema: parsed,
            validator,
            // Registered as written, as the Avro serializer does.
            registered: Schema::json(schema.trim()),
            record_name,
            resolver: SchemaIdResolver::new(registry),
        })
    }

    crate::serialization::registry::registry_settings!(
        "; with `RecordName` strategies the record name is the schema's `title`, as for \
         Confluent's `KafkaJsonSchemaSerializer`"
    );

    /// The schema, parsed.
    ///
    /// ```
    /// # use herald::serialization::{json_schema::JsonSchemaSerializer, registry::SchemaRegistryClient};
    /// let s = JsonSchemaSerializer::new(SchemaRegistryClient::new("http://127.0.0.1:8081")?, r#"{"type": "integer"}"#)?;
    /// assert_eq!(s.schema()["type"], "integer");
    /// # Ok::<(), herald::Error>(())
    /// ```
    pub fn schema(&self) -> &serde_json::Value {
        &self.schema
    }

    /// The compiled schema.
    ///
    /// ```
    /// # use herald::serialization::{json_schema::JsonSchemaSerializer, registry::SchemaRegistryClient};
    /// let s = JsonSchemaSerializer::new(SchemaRegistryClient::new("http://127.0.0.1:8081")?, r#"{"type": "integer"}"#)?;
    /// assert!(s.validator().is_valid(&serde_json::json!(7)));
    /// # Ok::<(), herald::Error>(())
    /// ```
    pub fn validator(&self) -> &jsonschema::Validator {
        &self.validator
    }

    /// The draft the schema is read as: the one its `$schema` names, draft 7 without.
    ///
    /// ```
    /// # use herald::serialization::{json_schema::{JsonSchemaSerializer, jsonschema::Draft}, registry::SchemaRegistryClient};
    /// let schema = r#"{"$schema": "http://json-schema.org/draft-04/schema#"}"#;
    /// let s = JsonSchemaSerializer::new(SchemaRegistryClient::new("http://127.0.0.1:8081")?, schema)?;
    /// assert_eq!(s.draft(), Draft::Draft4);
    /// # Ok::<(), herald::Error>(())
    /// ```
    pub fn draft(&self) -> jsonschema::Draft {
        self.validator.draft()
    }

    /// The schema's `title`: what
    /// [`SubjectNameStrategy::RecordName`](super::registry::SubjectNameStrategy::RecordName)
    /// uses (Confluent's `JsonSchema.name()`).
    ///
    /// ```
    /// # use herald::serialization::{json_schema::JsonSchemaSerializer, registry::SchemaRegistryClient};
    /// use herald::serialization::registry::SubjectNameStrategy;
    ///
    /// let schema = r#"{"title": "fleet.Driver", "type": "object"}"#;
    /// let s = JsonSchemaSerializer::new(SchemaRegistryClient::new("http://127.0.0.1:8081")?, schema)?
    ///     .subject_name_strategy(SubjectNameStrategy::RecordName);
    /// assert_eq!(s.record_name(), Some("fleet.Driver"), "registered under subject fleet.Driver");
    /// # Ok::<(), herald::Error>(())
    /// ```
    pub fn record_name(&self) -> Option<&str> {
        self.record_name.as_deref()
    }

    /// Checks `value` against the schema. The error lists the violations (the first
    /// three, then how many more), each as `<schema path> at <value path>: <what>`,
    /// the paths being JSON Pointers (`the root` for the whole value).
    ///
    /// ```
    /// # fn demo() -> Result<(), herald::Error> {
    /// use herald::serialization::json_schema::JsonSchemaSerializer;
    /// use herald::serialization::registry::SchemaRegistryClient;
    ///
    /// let registry = SchemaRegistryClient::new("http://127.0.0.1:8081")?;
    /// let s = JsonSchemaSerializer::new(registry, r#"{"type": "array", "items": {"type": "integer"}}"#)?;
    /// assert!(s.check(&serde_json::json!([1, 2])).is_ok());
    /// assert_eq!(s.check(&serde_json::json!([1, "2"])).unwrap_err(), r#"/items/type at /1: "2" is not of type "integer""#);
    /// assert_eq!(s.check(&serde_json::json!({})).unwrap_err(), r#"/type at the root: {} is not of type "array""#);
    /// # Ok(()) }
    /// # demo().unwrap();
    /// ```
    pub fn check(&self, value: &serde_json::Value) -> std::result::Result<(), String> {
        let mut errors = self.validator.iter_errors(value);
        let Some(first) = errors.next() else {
            return Ok(());
        };
        let mut out = violation(&first);
        let mut more = 0usize;
        for e in errors {
            if more + 1 < SHOWN_VIOLATIONS {
                out.push_str("; ");
                out.push_str(&violation(&e));
            }
            more += 1;
        }
        if more >= SHOWN_VIOLATIONS {
            out.push_str(&format!("; and {} more", more + 1 - SHOWN_VIOLATIONS));
        }
        Err(out)
    }

    /// Checks the JSON text `json` (the bytes that will be sent) and frames it.
    async fn frame(&self, ctx: &SerializationContext<'_>, json: &[u8]) -> Result<Bytes> {
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| ctx.error(format!("not JSON: {e}")))?;
        self.check(&value).map_err(|v| ctx.error(format!("value does not match the JSON Schema: {v}")))?;
        let id = self.resolver.id(ctx, self.record_name.as_deref(), &self.registered).await?;
        let mut out = Vec::with_capacity(wire::HEADER_LEN + json.len());
        wire::encode_header(id, &mut out);
        out.extend_from_slice(json);
        Ok(Bytes::from(out))
    }
}

fn violation(e: &jsonschema::ValidationError<'_>) -> String {
    let at = e.instance_path().as_str();
    let at = if at.is_empty() { "the root" } else { at };
    format!("{} at {at}: {e}", e.schema_path().as_str())
}

impl<T: Serialize + Sync + ?Sized> Serializer<T> for JsonSchemaSerializer {
    async fn serialize(&self, ctx: &mut SerializationContext<'_>, data: &T) -> Result<Option<Bytes>> {
        // Checked as the very bytes that are sent: parsing them back costs less
        // than a second serde pass, and keeps struct fields in declaration order
        // (a serde_json::Value would sort them).
        let json = serde_json::to_vec(data).map_err(|e| ctx.error(format!("cannot write JSON: {e}")))?;
        self.frame(ctx, &json).await.map(Some)
    }
}

impl Serializer<RawJson> for JsonSchemaSerializer {
    async fn serialize(&self, ctx: &mut SerializationContext<'_>, data: &RawJson) -> Result<Option<Bytes>> {
        self.frame(ctx, &data.0).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERSON: &str = r##"{
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "fleet.Driver",
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "age": {"type": "integer", "minimum": 0},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}}
        },
        "$defs": {"tag": {"type": "string", "pattern": "^[a-z]+$"}}
    }"##;

    fn serializer(schema: &str) -> JsonSchemaSerializer {
        // Nothing listens there: these tests fail before the registry is asked.
        JsonSchemaSerializer::new(SchemaRegistryClient::new("http://127.0.0.1:1").unwrap(), schema).unwrap()
    }

    async fn serialize(s: &JsonSchemaSerializer, v: &serde_json::Value) -> Error {
        let mut headers = Vec::new();
        let mut ctx = SerializationContext::new("drivers", false, &mut headers);
        s.serialize(&mut ctx, v).await.unwrap_err()
    }

    #[tokio::test]
    async fn violations_name_the_schema_path_and_the_value_path() {
        let s = serializer(PERSON);
        let e = serialize(&s, &serde_json::json!({"name": "Ada", "age": -3})).await;
        assert!(matches!(e.kind(), ErrorKind::Serialization { is_key: false, .. }), "{e:?}");
        assert_eq!(e.topic(), Some("drivers"));
        assert_eq!(
            e.to_string(),
            "topic drivers: could not serialize the value: value does not match the JSON Schema: \
             /properties/age/minimum at /age: -3 is less than the minimum of 0"
        );
        // Through a $ref: the schema path is where the keyword is written.
        let e = serialize(&s, &serde_json::json!({"name": "Ada", "tags": ["ok", "Not"]})).await;
        assert!(
            e.to_string().ends_with(r#"/$defs/tag/pattern at /tags/1: "Not" does not match "^[a-z]+$""#),
            "{e}"
        );
        let e = serialize(&s, &serde_json::json!({"age": 1.5})).await;
        assert!(e.to_string().contains(r#"/required at the root: "name" is a required property"#), "{e}");
        assert!(
            e.to_string().contains("/properties/age/type at /age: 1.5 is not of type \"integer\""),
            "{e}"
        );
    }

    #[test]
    fn many_violations_are_counted_past_three() {
        let s = serializer(r#"{"type": "array", "items": {"type": "integer"}}"#);
        let msg = s.check(&serde_json::json!(["a", "b", "c", "d", "e"])).unwrap_err();
        assert_eq!(msg.matches(" is not of type ").count(), 3, "{msg}");
        assert!(msg.ends_with("; and 2 more"), "{msg}");
        assert!(!s.check(&serde_json::json!(["a", "b", "c"])).unwrap_err().contains("more"));
    }

    #[test]
    fn drafts_follow_dollar_schema_and_default_to_draft_7() {
        use jsonschema::Draft;
        let draft = |uri: &str| serializer(&format!(r#"{{"$schema": "{uri}"}}"#)).draft();
        assert_eq!(draft("http://json-schema.org/draft-04/schema#"), Draft::Draft4);
        assert_eq!(draft("http://json-schema.org/draft-06/schema#"), Draft::Draft6);
        assert_eq!(draft("http://json-schema.org/draft-07/schema#"), Draft::Draft7);
        assert_eq!(draft("https://json-schema.org/draft/2019-09/schema"), Draft::Draft201909);
        assert_eq!(draft("https://json-schema.org/draft/2020-12/schema"), Draft::Draft202012);
        assert_eq!(serializer(r#"{"type": "object"}"#).draft(), Draft::Draft7);
        assert_eq!(serializer("true").draft(), Draft::Draft7);

        // Draft 4's exclusiveMaximum is a boolean beside maximum; draft 6 on, a number.
        let d4 = serializer(
            r#"{"$schema": "http://json-schema.org/draft-04/schema#", "maximum": 5, "exclusiveMaximum": true}"#,
        );
        assert!(d4.check(&serde_json::json!(5)).unwrap_err().contains("/exclusiveMaximum at the root"));
        assert!(d4.check(&serde_json::json!(4)).is_ok());
        // Draft 7 checks formats, 2020-12 only annotates them.
        let email = |schema: &str| serializer(schema).check(&serde_json::json!("not an address")).is_ok();
        assert!(!email(r#"{"format": "email"}"#));
        assert!(email(r#"{"$schema": "https://json-schema.org/draft/2020-12/schema", "format": "email"}"#));
        // 2020-12's prefixItems.
        let tuple = serializer(
            r#"{"$schema": "https://json-schema.org/draft/2020-12/schema", "prefixItems": [{"type": "string"}]}"#,
        );
        assert!(tuple.check(&serde_json::json!([1])).unwrap_err().starts_with("/prefixItems/0/type at /0"));
    }

    #[test]
    fn bad_schemas_are_config_errors() {
        let client = || SchemaRegistryClient::new("http://127.0.0.1:1").unwrap();
        for (schema, says) in [
            ("{", "not JSON"),
            (r#"{"type": "strin"}"#, "not a usable JSON Schema"),
            (r#"{"minimum": "zero"}"#, "not a usable JSON Schema"),
            (r#"{"$ref": "https://example.com/other.json"}"#, "not a usable JSON Schema"),
        ] {
            let e = JsonSchemaSerializer::new(client(), schema).unwrap_err();
            assert!(e.is_config(), "{schema}: {e}");
            assert!(e.to_string().contains(says), "{schema}: {e}");
        }
        let s = serializer(PERSON);
        assert_eq!(s.record_name(), Some("fleet.Driver"));
        assert_eq!(serializer("{}").record_name(), None);
    }

    #[tokio::test]
    async fn raw_text_that_is_not_json_fails_alone() {
        let s = serializer("{}");
        let mut headers = Vec::new();
        let mut ctx = SerializationContext::new("t", true, &mut headers);
        let e = s.serialize(&mut ctx, &RawJson::from("{nope")).await.unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::Serialization { is_key: true, .. }), "{e:?}");
        assert!(e.to_string().contains("could not serialize the key: not JSON"), "{e}");
    }
}
