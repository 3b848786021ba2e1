//! `herald produce --key-format/--value-format` against the cluster under test
//! (`HERALD_TEST_BOOTSTRAP`, or the embedded one) and the Schema Registry under test
//! (`HERALD_TEST_SCHEMA_REGISTRY`, or the fake in support/registry.rs), read back by
//! the Java consumer.

mod common;
#[path = "../../herald/tests/support/mod.rs"]
mod support;

use std::io::Write;

use common::{herald, json_lines};
use herald::serialization::protobuf::ProtobufSerializer;
use herald::serialization::protobuf::prost::Message;
use herald::serialization::registry::{SchemaRegistryClient, SchemaType};
use herald::serialization::wire;
use support::registry::registry_url;
use support::{bootstrap, consume_with_java, create_topic};

fn file(text: &str, suffix: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[tokio::test]
async fn long_keys_and_json_values_with_bad_lines_failing_alone() {
    let topic = create_topic("cli-fmt-json", 1, &[]).await;
    let b = bootstrap();
    let input = "1:{\"lat\": 52.5}\nx:{}\n2:{bad\n3:[1, \"ü\"]\n";
    let out = herald(
        &[
            "produce",
            "-b",
            &b,
            "-t",
            &topic,
            "--key-separator",
            ":",
            "--key-format",
            "long",
            "--value-format",
            "json",
            "--report",
            "json",
        ],
        input,
    );
    assert_eq!(out.status.code(), Some(1), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let r = json_lines(&out);
    assert_eq!(r.len(), 4);
    assert!(r[0]["offset"].is_i64());
    assert!(r[1]["error"].as_str().unwrap().contains("the key is not a long"), "{}", r[1]);
    assert!(r[2]["error"].as_str().unwrap().contains("the value is not JSON"), "{}", r[2]);
    assert!(r[3]["offset"].is_i64());
    let consumed = consume_with_java(&topic).await;
    assert_eq!(consumed.len(), 2);
    assert_eq!(consumed[0].key.as_deref(), Some(&1i64.to_be_bytes()[..]));
    assert_eq!(consumed[0].value.as_deref(), Some(&b"{\"lat\": 52.5}"[..]));
    assert_eq!(consumed[1].key.as_deref(), Some(&3i64.to_be_bytes()[..]));
}

const AVSC: &str = r#"{"type": "record", "name": "Position", "namespace": "fleet",
  "fields": [{"name": "truck", "type": "string"}, {"name": "lat", "type": "double"},
             {"name": "speed", "type": ["null", "int"], "default": null}]}"#;

#[tokio::test]
async fn avro_values_from_avro_json() {
    let topic = create_topic("cli-fmt-avro", 1, &[]).await;
    let schema = file(AVSC, ".avsc");
    let url = registry_url();
    let input = concat!(
        "t1|{\"truck\": \"t1\", \"lat\": 52.5, \"speed\": {\"int\": 80}}\n",
        "t2|{\"truck\": \"t2\", \"lat\": \"north\"}\n",
        "t3|{\"truck\": \"t3\", \"lat\": 1.0}\n",
    );
    let out = herald(
        &[
            "produce",
            "-b",
            &bootstrap(),
            "-t",
            &topic,
            "--key-separator",
            "|",
            "--value-format",
            "avro",
            "--value-schema",
            schema.path().to_str().unwrap(),
            "--schema-registry",
            &url,
            "--report",
            "json",
        ],
        input,
    );
    let r = json_lines(&out);
    assert_eq!(r.len(), 3, "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(r[1]["error"].as_str().unwrap().contains("$.lat: expected a double"), "{}", r[1]);
    let consumed = consume_with_java(&topic).await;
    assert_eq!(consumed.len(), 2);
    for (c, (truck, speed)) in consumed.iter().zip([("t1", Some(80)), ("t3", None)]) {
        let (id, payload) = wire::decode(c.value.as_deref().unwrap()).unwrap();
        let registered = SchemaRegistryClient::new(&url).unwrap().schema_by_id(id).await.unwrap();
        assert!(registered.text().contains("\"Position\""));
        // Avro binary: string (zig-zag length, bytes), double (8 bytes LE), union index (+ int).
        assert_eq!(payload[0] as usize, truck.len() * 2);
        assert_eq!(&payload[1..3], truck.as_bytes());
        match speed {
            // union branch 1 (zig-zag 2), then 80 as a zig-zag varint (160 = a0 01)
            Some(80) => assert_eq!(&payload[11..], &[2, 0xa0, 0x01]),
            _ => assert_eq!(&payload[11..], &[0], "union branch 0: null"),
        }
    }
}

/// A Java producer's configuration using Confluent's KafkaAvroSerializer: the
/// registry and its serializer settings come from the file alone.
#[tokio::test]
async fn avro_with_the_registry_from_a_java_properties_file() {
    let topic = create_topic("cli-fmt-avro-props", 1, &[]).await;
    let schema = file(AVSC, ".avsc");
    let url = registry_url();
    let properties = file(
        &format!(
            "# as for Confluent's serializers\n\
             key.serializer=org.apache.kafka.common.serialization.StringSerializer\n\
             value.serializer=io.confluent.kafka.serializers.KafkaAvroSerializer\n\
             schema.registry.url={url}\n\
             basic.auth.credentials.source=URL\n\
             auto.register.schemas=true\n\
             use.latest.version=false\n\
             latest.compatibility.strict=true\n\
             value.subject.name.strategy=io.confluent.kafka.serializers.subject.TopicRecordNameStrategy\n"
        ),
        ".properties",
    );
    let out = herald(
        &[
            "produce",
            "-b",
            &bootstrap(),
            "-t",
            &topic,
            "--producer.config",
            properties.path().to_str().unwrap(),
            "--key-separator",
            "|",
            "--value-format",
            "avro",
            "--value-schema",
            schema.path().to_str().unwrap(),
            "--report",
            "json",
        ],
        "t1|{\"truck\": \"t1\", \"lat\": 52.5, \"speed\": null}\n",
    );
    let r = json_lines(&out);
    assert_eq!(r.len(), 1, "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(r[0]["offset"].is_i64(), "{}", r[0]);
    let consumed = consume_with_java(&topic).await;
    assert_eq!(consumed.len(), 1);
    assert_eq!(consumed[0].key.as_deref(), Some(&b"t1"[..]));
    let (id, payload) = wire::decode(consumed[0].value.as_deref().unwrap()).unwrap();
    assert_eq!(payload[0], 4, "\"t1\" as Avro: zig-zag length 2");
    // Registered under TopicRecordNameStrategy's subject, as the file says.
    let registry = SchemaRegistryClient::new(&url).unwrap();
    let latest = registry.latest(&format!("{topic}-fleet.Position")).await.unwrap();
    assert_eq!(latest.id, id);

    // Without schema.registry.url, Confluent's serializer is refused, as Java's
    // KafkaAvroSerializer refuses to configure.
    let bare = file("value.serializer=io.confluent.kafka.serializers.KafkaAvroSerializer\n", ".properties");
    let out = herald(
        &["produce", "-b", &bootstrap(), "-t", &topic, "--producer.config", bare.path().to_str().unwrap()],
        "x\n",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains("schema.registry.url"), "{stderr}");
}

const PROTO: &str = r#"syntax = "proto3";
package fleet;
import "google/protobuf/timestamp.proto";
message Position {
  string truck = 1;
  double lat = 2;
  google.protobuf.Timestamp at = 3;
}
"#;

#[tokio::test]
async fn protobuf_values_from_protobuf_json() {
    let topic = create_topic("cli-fmt-proto", 1, &[]).await;
    let proto = file(PROTO, ".proto");
    let url = registry_url();
    let line = r#"{"truck": "t1", "lat": 52.5, "at": "2024-05-06T07:08:09Z"}"#;
    let out = herald(
        &[
            "produce",
            "-b",
            &bootstrap(),
            "-t",
            &topic,
            "--value-format",
            "protobuf",
            "--value-proto",
            proto.path().to_str().unwrap(),
            "--value-message",
            "fleet.Position",
            "--schema-registry",
            &url,
            "--report",
            "json",
        ],
        &format!("{line}\n{{\"truck\": 5}}\n"),
    );
    let r = json_lines(&out);
    assert_eq!(r.len(), 2, "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(r[1]["error"].as_str().unwrap().contains("not Protobuf JSON for fleet.Position"), "{}", r[1]);
    let consumed = consume_with_java(&topic).await;
    assert_eq!(consumed.len(), 1);
    let (_, indexes, payload) = wire::decode_protobuf(consumed[0].value.as_deref().unwrap()).unwrap();
    assert_eq!(indexes, vec![0]);
    let s =
        ProtobufSerializer::new(SchemaRegistryClient::new(&url).unwrap(), PROTO, "fleet.Position").unwrap();
    assert_eq!(payload, s.message_from_json(line).unwrap().encode_to_vec());
}

const DRIVER_SCHEMA: &str = r#"{"$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "fleet.Driver", "type": "object", "required": ["name"],
  "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}}"#;

#[tokio::test]
async fn json_schema_keys_and_values_with_violations_failing_alone() {
    let topic = create_topic("cli-fmt-jsonschema", 1, &[]).await;
    let value_schema = file(DRIVER_SCHEMA, ".json");
    // With $schema: Apicurio 2.4.2 (the real registry of scripts/test.sh) tells a
    // JSON Schema from its content and refuses `{"type": "string", …}` alone.
    let key_schema = file(
        r#"{"$schema": "http://json-schema.org/draft-07/schema#", "type": "string", "pattern": "^d[0-9]+$"}"#,
        ".json",
    );
    let url = registry_url();
    let input = concat!(
        "\"d1\"|{\"name\": \"Ada\", \"age\": 36}\n",
        "\"d2\"|{\"name\": \"Bob\", \"age\": -3}\n",
        "\"x3\"|{\"name\": \"Cy\"}\n",
        "\"d4\"|{\"age\": 1\n",
        "\"d5\"|{\"name\": \"Di\", \"extra\": [1, 2]}\n",
    );
    let out = herald(
        &[
            "produce",
            "-b",
            &bootstrap(),
            "-t",
            &topic,
            "--key-separator",
            "|",
            "--key-format",
            "json-schema",
            "--key-schema",
            key_schema.path().to_str().unwrap(),
            "--value-format",
            "json-schema",
            "--value-schema",
            value_schema.path().to_str().unwrap(),
            "--schema-registry",
            &url,
            "--report",
            "json",
        ],
        input,
    );
    assert_eq!(out.status.code(), Some(1), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let r = json_lines(&out);
    assert_eq!(r.len(), 5, "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let error = |i: usize| r[i]["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        error(1).ends_with(
            "could not serialize the value: value does not match the JSON Schema: \
             /properties/age/minimum at /age: -3 is less than the minimum of 0"
        ),
        "{}",
        r[1]
    );
    assert!(
        error(2).contains(r#"could not serialize the key: value does not match the JSON Schema: /pattern at the root: "x3" does not match"#),
        "{}",
        r[2]
    );
    assert!(error(3).contains("could not serialize the value: not JSON"), "{}", r[3]);
    for i in [0, 4] {
        assert!(r[i]["offset"].is_i64(), "{}", r[i]);
    }

    let consumed = consume_with_java(&topic).await;
    assert_eq!(consumed.len(), 2);
    let registry = SchemaRegistryClient::new(&url).unwrap();
    for (c, (key, value)) in consumed
        .iter()
        .zip([("\"d1\"", r#"{"name": "Ada", "age": 36}"#), ("\"d5\"", r#"{"name": "Di", "extra": [1, 2]}"#)])
    {
        let (value_id, payload) = wire::decode(c.value.as_deref().unwrap()).unwrap();
        assert_eq!(payload, value.as_bytes(), "the line's text, as written");
        let (key_id, key_payload) = wire::decode(c.key.as_deref().unwrap()).unwrap();
        assert_eq!(key_payload, key.as_bytes());
        let registered = registry.schema_by_id(value_id).await.unwrap();
        assert_eq!(registered.schema_type(), SchemaType::Json);
        assert!(registered.text().contains("fleet.Driver"));
        assert_eq!(registry.schema_by_id(key_id).await.unwrap().schema_type(), SchemaType::Json);
    }
    assert_eq!(
        registry.latest(&format!("{topic}-key")).await.unwrap().schema.schema_type(),
        SchemaType::Json
    );
}

#[test]
fn format_options_are_checked_before_anything_is_sent() {
    let out = herald(&["produce", "-t", "x", "--value-format", "avro"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--value-format avro needs --value-schema FILE"));
    let out = herald(&["produce", "-t", "x", "--key-schema", "k.avsc"], "");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--key-schema applies to --key-format avro or json-schema only")
    );
    let proto = file("message {", ".proto");
    let out = herald(
        &[
            "produce",
            "-t",
            "x",
            "--value-format",
            "protobuf",
            "--value-proto",
            proto.path().to_str().unwrap(),
            "--value-message",
            "A",
            "--schema-registry",
            "http://127.0.0.1:1",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not compile"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
