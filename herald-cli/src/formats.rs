//! `--key-format` / `--value-format`: how `herald produce` turns the text of a
//! line's key and value into bytes, with herald's serializers.
//!
//! | format | the text is | the bytes are |
//! |---|---|---|
//! | `string` (default) | anything | the text as it is |
//! | `int`, `long` | a decimal integer | Java's `IntegerSerializer` / `LongSerializer` (big-endian) |
//! | `double` | a number (`NaN`, `inf` allowed) | Java's `DoubleSerializer` |
//! | `json` | one JSON value | the text, checked to be JSON |
//! | `avro` | Avro's JSON encoding of a datum | Avro binary in the Confluent wire format |
//! | `protobuf` | the message's Protobuf JSON | Protobuf binary in the Confluent wire format |
//! | `json-schema` | one JSON document | the text as written, once it matches the JSON Schema, in the Confluent wire format |
//!
//! Text that does not parse, or does not match its schema, fails that line only,
//! like a line without the key separator.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use herald::Header;
use herald::serialization::avro::{AvroSerializer, AvroValue};
use herald::serialization::json_schema::{JsonSchemaSerializer, RawJson};
use herald::serialization::protobuf::ProtobufSerializer;
use herald::serialization::registry::{RegistrySerializerConfig, SchemaRegistryClient};
use herald::serialization::{
    DoubleSerializer, IntegerSerializer, LongSerializer, SerializationContext, Serializer,
};

use crate::CliError;

/// A format of keys or values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// The text as it is (UTF-8 or not).
    #[default]
    String,
    /// A 32-bit integer, 4 bytes big-endian (Java's IntegerSerializer).
    Int,
    /// A 64-bit integer, 8 bytes big-endian (Java's LongSerializer).
    Long,
    /// A 64-bit float, 8 bytes big-endian (Java's DoubleSerializer).
    Double,
    /// A JSON value, sent as its UTF-8 text.
    Json,
    /// Avro JSON encoding in, Avro binary in the Confluent wire format out
    /// (needs --value-schema/--key-schema and --schema-registry).
    Avro,
    /// Protobuf JSON in, Protobuf binary in the Confluent wire format out (needs
    /// --value-proto/--key-proto, --value-message/--key-message and --schema-registry).
    Protobuf,
    /// A JSON document, checked against a JSON Schema (drafts 4 to 2020-12 by its
    /// $schema, draft 7 without) and sent as written in the Confluent wire format; a
    /// line that does not match fails with the violation (needs
    /// --value-schema/--key-schema and --schema-registry).
    JsonSchema,
}

/// The format options of `herald produce`.
#[derive(clap::Args, Debug, Default)]
pub struct FormatArgs {
    /// How to turn each line's key into bytes.
    #[arg(long, value_enum, default_value_t, value_name = "FORMAT")]
    pub key_format: Format,

    /// How to turn each line's value into bytes.
    #[arg(long, value_enum, default_value_t, value_name = "FORMAT")]
    pub value_format: Format,

    /// The schema of the values: an Avro schema (.avsc) with --value-format avro, a
    /// JSON Schema with --value-format json-schema.
    #[arg(long, value_name = "FILE")]
    pub value_schema: Option<PathBuf>,

    /// The schema of the keys: an Avro schema (.avsc) with --key-format avro, a JSON
    /// Schema with --key-format json-schema.
    #[arg(long, value_name = "FILE")]
    pub key_schema: Option<PathBuf>,

    /// The .proto file that defines the value message (with --value-format protobuf;
    /// compiled by herald itself, no protoc needed; it may import Google's
    /// well-known types).
    #[arg(long, value_name = "FILE.proto")]
    pub value_proto: Option<PathBuf>,

    /// The .proto file that defines the key message (with --key-format protobuf).
    #[arg(long, value_name = "FILE.proto")]
    pub key_proto: Option<PathBuf>,

    /// The value message's full name, e.g. fleet.Position (with --value-format protobuf).
    #[arg(long, value_name = "PACKAGE.MESSAGE")]
    pub value_message: Option<String>,

    /// The key message's full name (with --key-format protobuf).
    #[arg(long, value_name = "PACKAGE.MESSAGE")]
    pub key_message: Option<String>,

    /// The Confluent-compatible Schema Registry that avro, protobuf and json-schema
    /// schemas are registered with, e.g. http://127.0.0.1:8081 (credentials as http://user:pass@host).
    /// Default: the producer properties' schema.registry.url (its first URL) with their
    /// basic.auth.credentials.source and basic.auth.user.info, as Confluent's serializers read them.
    #[arg(long, value_name = "URL")]
    pub schema_registry: Option<String>,
}

/// Turns a line's key and value text into bytes.
pub struct Encoders {
    key: Encoder,
    value: Encoder,
}

enum Encoder {
    Text,
    Int,
    Long,
    Double,
    Json,
    Avro(Box<AvroSerializer>),
    Protobuf(Box<ProtobufSerializer>),
    JsonSchema(Box<JsonSchemaSerializer>),
}

/// Why a line's key or value could not be made into bytes.
pub enum LineError {
    /// The text is not in the format: that line fails.
    BadInput(String),
    /// The serializer failed (e.g. the Schema Registry could not be reached).
    Failed(herald::Error),
}

impl FormatArgs {
    /// Checks the options against each other and reads schemas; a problem here is
    /// a usage error, before any line is read. The producer's properties give the
    /// registry when --schema-registry does not, and the registry serializers'
    /// Confluent settings (auto.register.schemas, use.latest.version, the subject
    /// name strategies).
    pub fn encoders(&self, config: &herald::ProducerConfig) -> Result<Encoders, CliError> {
        let registry = match &self.schema_registry {
            Some(url) => Some(SchemaRegistryClient::new(url.as_str())?),
            None if !config.serializers.schema_registry_url.is_empty() => {
                Some(SchemaRegistryClient::from_config(config)?)
            }
            None => None,
        };
        let key = encoder(
            "key",
            self.key_format,
            &self.key_schema,
            &self.key_proto,
            &self.key_message,
            &registry,
            RegistrySerializerConfig::from_config(config, true),
        )?;
        let value = encoder(
            "value",
            self.value_format,
            &self.value_schema,
            &self.value_proto,
            &self.value_message,
            &registry,
            RegistrySerializerConfig::from_config(config, false),
        )?;
        Ok(Encoders { key, value })
    }
}

fn encoder(
    side: &str,
    format: Format,
    schema: &Option<PathBuf>,
    proto: &Option<PathBuf>,
    message: &Option<String>,
    registry: &Option<SchemaRegistryClient>,
    settings: RegistrySerializerConfig,
) -> Result<Encoder, CliError> {
    let unused = |flag: &str, needs: &str| {
        CliError::usage(format!("--{side}-{flag} applies to --{side}-format {needs} only"))
    };
    if schema.is_some() && !matches!(format, Format::Avro | Format::JsonSchema) {
        return Err(unused("schema", "avro or json-schema"));
    }
    if proto.is_some() && format != Format::Protobuf {
        return Err(unused("proto", "protobuf"));
    }
    if message.is_some() && format != Format::Protobuf {
        return Err(unused("message", "protobuf"));
    }
    let registry = |name: &str| {
        registry.clone().ok_or_else(|| {
            CliError::usage(format!(
                "--{side}-format {name} needs --schema-registry URL (or schema.registry.url in the producer \
                     properties)"
            ))
        })
    };
    Ok(match format {
        Format::String => Encoder::Text,
        Format::Int => Encoder::Int,
        Format::Long => Encoder::Long,
        Format::Double => Encoder::Double,
        Format::Json => Encoder::Json,
        Format::Avro => {
            let path = schema
                .as_ref()
                .ok_or_else(|| CliError::usage(format!("--{side}-format avro needs --{side}-schema FILE")))?;
            let registry = registry("avro")?;
            let text = read(side, "schema", path)?;
            let s = AvroSerializer::new(registry, &text)
                .map_err(|e| CliError::usage(format!("--{side}-schema {}: {e}", path.display())))?
                .config(settings);
            Encoder::Avro(Box::new(s))
        }
        Format::Protobuf => {
            let path = proto.as_ref().ok_or_else(|| {
                CliError::usage(format!("--{side}-format protobuf needs --{side}-proto FILE.proto"))
            })?;
            let name = message.as_ref().ok_or_else(|| {
                CliError::usage(format!("--{side}-format protobuf needs --{side}-message PACKAGE.MESSAGE"))
            })?;
            let registry = registry("protobuf")?;
            let text = read(side, "proto", path)?;
            let s = ProtobufSerializer::new(registry, &text, name)
                .map_err(|e| CliError::usage(format!("--{side}-proto {}: {e}", path.display())))?
                .config(settings);
            Encoder::Protobuf(Box::new(s))
        }
        Format::JsonSchema => {
            let path = schema.as_ref().ok_or_else(|| {
                CliError::usage(format!("--{side}-format json-schema needs --{side}-schema FILE"))
            })?;
            let registry = registry("json-schema")?;
            let text = read(side, "schema", path)?;
            let s = JsonSchemaSerializer::new(registry, &text)
                .map_err(|e| CliError::usage(format!("--{side}-schema {}: {e}", path.display())))?
                .config(settings);
            Encoder::JsonSchema(Box::new(s))
        }
    })
}

fn read(side: &str, flag: &str, path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("--{side}-{flag} {}: {e}", path.display())))
}

impl Encoders {
    /// Both key and value go as they are (`string`): no encoding, no copy.
    pub fn are_plain(&self) -> bool {
        matches!((&self.key, &self.value), (Encoder::Text, Encoder::Text))
    }

    /// The key's bytes, then the value's (`None` for null: null stays null);
    /// serializers may add to `headers`.
    pub async fn encode(
        &self,
        topic: &str,
        key: Option<Bytes>,
        value: Option<Bytes>,
        headers: &mut Vec<Header>,
    ) -> Result<(Option<Bytes>, Option<Bytes>), LineError> {
        let key = match key {
            None => None,
            Some(k) => Some(self.key.encode(topic, true, k, headers).await?),
        };
        let value = match value {
            None => None,
            Some(v) => Some(self.value.encode(topic, false, v, headers).await?),
        };
        Ok((key, value))
    }
}

impl Encoder {
    async fn encode(
        &self,
        topic: &str,
        is_key: bool,
        raw: Bytes,
        headers: &mut Vec<Header>,
    ) -> Result<Bytes, LineError> {
        let side = if is_key { "key" } else { "value" };
        let bad = |what: &str| LineError::BadInput(format!("the {side} is not {what}; not sent"));
        if let Encoder::Text = self {
            return Ok(raw);
        }
        let text = std::str::from_utf8(&raw).map_err(|_| bad("UTF-8 text"))?;
        let mut ctx = SerializationContext::new(topic, is_key, headers);
        let out = match self {
            Encoder::Text => return Ok(raw),
            Encoder::Int => {
                let v: i32 =
                    text.trim().parse().map_err(|_| bad(&format!("an int (32-bit integer): {text:?}")))?;
                IntegerSerializer.serialize(&mut ctx, &v).await
            }
            Encoder::Long => {
                let v: i64 =
                    text.trim().parse().map_err(|_| bad(&format!("a long (64-bit integer): {text:?}")))?;
                LongSerializer.serialize(&mut ctx, &v).await
            }
            Encoder::Double => {
                let v: f64 = text.trim().parse().map_err(|_| bad(&format!("a double: {text:?}")))?;
                DoubleSerializer.serialize(&mut ctx, &v).await
            }
            Encoder::Json => match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Ok(_) => return Ok(raw),
                Err(e) => return Err(bad(&format!("JSON ({e})"))),
            },
            Encoder::Avro(s) => {
                let v =
                    s.value_from_json(text).map_err(|e| bad(&format!("Avro JSON for the schema: {e}")))?;
                s.serialize(&mut ctx, &AvroValue(v.0)).await
            }
            Encoder::Protobuf(s) => {
                let name = s.message_descriptor().full_name().to_owned();
                let m =
                    s.message_from_json(text).map_err(|e| bad(&format!("Protobuf JSON for {name}: {e}")))?;
                s.serialize(&mut ctx, &m).await
            }
            // Parsed and checked by the serializer, which names the violation; the
            // line's text is what is sent.
            Encoder::JsonSchema(s) => s.serialize(&mut ctx, &RawJson(raw.clone())).await,
        };
        match out {
            Ok(Some(b)) => Ok(b),
            Ok(None) => Ok(Bytes::new()),
            Err(e) => Err(LineError::Failed(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn enc(e: &Encoder, text: &str) -> Result<Vec<u8>, String> {
        let mut headers = Vec::new();
        match e.encode("t", false, Bytes::copy_from_slice(text.as_bytes()), &mut headers).await {
            Ok(b) => Ok(b.to_vec()),
            Err(LineError::BadInput(m)) => Err(m),
            Err(LineError::Failed(e)) => Err(e.to_string()),
        }
    }

    #[tokio::test]
    async fn numbers_and_json_are_checked() {
        assert_eq!(enc(&Encoder::Int, " -2 ").await.unwrap(), [0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(enc(&Encoder::Long, "1").await.unwrap(), [0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(enc(&Encoder::Double, "1.5").await.unwrap(), [0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
        assert!(enc(&Encoder::Int, "2147483648").await.unwrap_err().contains("the value is not an int"));
        assert!(enc(&Encoder::Double, "x").await.is_err());
        assert_eq!(enc(&Encoder::Json, r#"{"a": 1}"#).await.unwrap(), br#"{"a": 1}"#);
        assert!(enc(&Encoder::Json, "{").await.unwrap_err().contains("not JSON"));
        assert_eq!(enc(&Encoder::Text, "as is").await.unwrap(), b"as is");
    }

    #[test]
    fn options_are_checked_against_each_other() {
        let args = |f: fn(&mut FormatArgs)| {
            let mut a = FormatArgs::default();
            f(&mut a);
            a.encoders(&herald::ProducerConfig::default()).err().map(|e| e.to_string())
        };
        assert_eq!(args(|_| {}), None);
        assert!(args(|a| a.value_format = Format::Avro).unwrap().contains("needs --value-schema"));
        assert!(
            args(|a| a.value_schema = Some("x.avsc".into()))
                .unwrap()
                .contains("--value-format avro or json-schema only")
        );
        assert!(args(|a| a.key_message = Some("m".into())).unwrap().contains("--key-format protobuf only"));
        let e = args(|a| {
            a.key_format = Format::Protobuf;
            a.key_proto = Some("x.proto".into());
        });
        assert!(e.unwrap().contains("needs --key-message"));
        let e = args(|a| {
            a.value_format = Format::Avro;
            a.value_schema = Some("/nonexistent.avsc".into());
        });
        assert!(e.unwrap().contains("needs --schema-registry"));
        let e = args(|a| a.key_format = Format::JsonSchema);
        assert!(e.unwrap().contains("--key-format json-schema needs --key-schema FILE"));
        let e = args(|a| {
            a.key_format = Format::JsonSchema;
            a.key_schema = Some("/nonexistent.json".into());
        });
        assert!(e.unwrap().contains("--key-format json-schema needs --schema-registry"));
    }

    #[tokio::test]
    async fn json_schema_lines_are_checked_before_the_registry_is_asked() {
        let mut schema = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut schema, br#"{"properties": {"age": {"minimum": 0}}}"#).unwrap();
        let args = FormatArgs {
            value_format: Format::JsonSchema,
            value_schema: Some(schema.path().to_owned()),
            // Nothing listens there: lines that fail do so before it is asked.
            schema_registry: Some("http://127.0.0.1:1".into()),
            ..FormatArgs::default()
        };
        let enc = args.encoders(&herald::ProducerConfig::default()).unwrap();
        let e = enc_err(&enc.value, r#"{"age": -3}"#).await;
        assert!(
            e.ends_with("value does not match the JSON Schema: /properties/age/minimum at /age: -3 is less than the minimum of 0"),
            "{e}"
        );
        assert!(enc_err(&enc.value, "{").await.contains("could not serialize the value: not JSON"));
        assert!(enc_err(&enc.value, r#"{"age": 3}"#).await.contains("cannot connect"), "a good line goes on");

        std::fs::write(schema.path(), r#"{"type": 5}"#).unwrap();
        let e = args.encoders(&herald::ProducerConfig::default()).err().unwrap().to_string();
        assert!(e.contains("--value-schema") && e.contains("not a usable JSON Schema"), "{e}");
    }

    async fn enc_err(e: &Encoder, text: &str) -> String {
        enc(e, text).await.unwrap_err()
    }
}
