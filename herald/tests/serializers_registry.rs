//! Typed records through the cluster under test (embedded, or a real broker with
//! `HERALD_TEST_BOOTSTRAP`), read back by the Java `KafkaConsumer`: JSON, and Avro,
//! Protobuf and JSON Schema in the Confluent wire format, registered with the Schema
//! Registry under test (`HERALD_TEST_SCHEMA_REGISTRY`, or the in-process fake that
//! follows the published REST API: see `support/registry.rs`). Against the real
//! registry, Apicurio's own Kafka deserializers read back what herald wrote too (the
//! `apicurio_*` tests at the end).
//!
//! A real registry: `harness/registry/run start` builds (from Maven Central) and
//! starts Apicurio Registry, whose Confluent-compatible API answers at the URL it
//! prints; `scripts/test.sh` does so for its Kafka 4.x phase:
//!
//! ```text
//! url=$(harness/registry/run start)
//! HERALD_TEST_SCHEMA_REGISTRY=$url cargo test -p herald --test serializers_registry
//! harness/registry/run stop
//! ```
//!
//! Apicurio differs from Confluent in two error codes (see `registry_error`).

mod support;

use apache_avro::types::Value as Avro;
use herald::ErrorKind;
use herald::serialization::avro::AvroSerializer;
use herald::serialization::json_schema::{JsonSchemaSerializer, RawJson};
use herald::serialization::protobuf::ProtobufSerializer;
use herald::serialization::registry::{Schema, SchemaRegistryClient, SchemaType, SubjectNameStrategy};
use herald::serialization::{
    JsonSerializer, LongSerializer, SerializationContext, Serializer, StringSerializer, TypedProducer,
    TypedRecord, wire,
};
use support::registry::{real_registry, registry_url};
use support::{consume_with_java, create_topic, producer_builder};

const POSITION_AVRO: &str = r#"{"type": "record", "name": "Position", "namespace": "fleet.avro",
  "fields": [
    {"name": "truck", "type": "string"},
    {"name": "lat", "type": "double"},
    {"name": "lon", "type": "double"},
    {"name": "speed", "type": ["null", "float"], "default": null}
  ]}"#;

#[derive(serde::Serialize, Debug, Clone, PartialEq)]
struct Position {
    truck: String,
    lat: f64,
    lon: f64,
    speed: Option<f32>,
}

fn registry() -> SchemaRegistryClient {
    SchemaRegistryClient::new(registry_url()).expect("registry client")
}

#[tokio::test]
async fn avro_values_carry_the_confluent_framing_and_decode_back() {
    let topic = create_topic("ser-avro", 2, &[]).await;
    let registry = registry();
    let producer = producer_builder().build().unwrap();
    let typed = TypedProducer::new(
        producer,
        StringSerializer,
        AvroSerializer::new(registry.clone(), POSITION_AVRO).unwrap(),
    );
    let sent: Vec<Position> = (0..20)
        .map(|i| Position {
            truck: format!("truck_id_{}", i % 3),
            lat: 52.0 + f64::from(i) / 100.0,
            lon: 13.0,
            speed: (i % 2 == 0).then_some(i as f32),
        })
        .collect();
    let mut deliveries = Vec::new();
    for p in &sent {
        deliveries
            .push(typed.send(TypedRecord::new(&topic).key(p.truck.clone()).value(p.clone())).await.unwrap());
    }
    for d in deliveries {
        d.await.unwrap();
    }

    let consumed = consume_with_java(&topic).await;
    assert_eq!(consumed.len(), sent.len());
    let schema = apache_avro::Schema::parse_str(POSITION_AVRO).unwrap();
    let mut ids = std::collections::BTreeSet::new();
    let mut got = Vec::new();
    for c in &consumed {
        let bytes = c.value.as_deref().unwrap();
        assert_eq!(bytes[0], 0, "magic byte");
        let (id, payload) = wire::decode(bytes).unwrap();
        ids.insert(id);
        let Avro::Record(fields) = apache_avro::from_avro_datum(&schema, &mut &payload[..], None).unwrap()
        else {
            panic!("not a record")
        };
        let f = |i: usize| fields[i].1.clone();
        let (Avro::String(truck), Avro::Double(lat), Avro::Double(lon), Avro::Union(_, speed)) =
            (f(0), f(1), f(2), f(3))
        else {
            panic!("{fields:?}")
        };
        let speed = match *speed {
            Avro::Float(s) => Some(s),
            _ => None,
        };
        assert_eq!(c.key.as_deref(), Some(truck.as_bytes()));
        got.push(Position { truck, lat, lon, speed });
    }
    assert_eq!(ids.len(), 1, "one schema, one id");
    let id = *ids.first().unwrap();
    let registered = registry.schema_by_id(id).await.unwrap();
    assert_eq!(registered.schema_type(), SchemaType::Avro);
    assert_eq!(apache_avro::Schema::parse_str(registered.text()).unwrap(), schema, "the id names our schema");
    let latest = registry.latest(&format!("{topic}-value")).await.unwrap();
    assert_eq!(latest.id, id, "registered under TopicNameStrategy's subject");
    let key = |p: &Position| (p.truck.clone(), (p.lat * 100.0) as i64);
    let (mut want, mut have) = (sent.clone(), got);
    want.sort_by_key(key);
    have.sort_by_key(key);
    assert_eq!(have, want);
}

const POSITION_PROTO: &str = r#"syntax = "proto3";
package fleet.proto;

message Truck {
  string id = 1;
}

message Position {
  string truck = 1;
  double lat = 2;
  double lon = 3;
  message Fix {
    int32 satellites = 1;
  }
  Fix fix = 4;
}
"#;

#[derive(Clone, PartialEq, prost::Message)]
struct Fix {
    #[prost(int32, tag = "1")]
    satellites: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProtoPosition {
    #[prost(string, tag = "1")]
    truck: String,
    #[prost(double, tag = "2")]
    lat: f64,
    #[prost(double, tag = "3")]
    lon: f64,
    #[prost(message, optional, tag = "4")]
    fix: Option<Fix>,
}

#[tokio::test]
async fn protobuf_messages_carry_message_indexes_and_decode_back() {
    let topic = create_topic("ser-proto", 1, &[]).await;
    let registry = registry();
    let producer = producer_builder().build().unwrap();
    let positions = ProtobufSerializer::new(registry.clone(), POSITION_PROTO, "fleet.proto.Position")
        .unwrap()
        .subject_name_strategy(SubjectNameStrategy::TopicRecordName);
    let fixes =
        ProtobufSerializer::new(registry.clone(), POSITION_PROTO, "fleet.proto.Position.Fix").unwrap();
    let typed = TypedProducer::new(producer.clone(), LongSerializer, positions);
    let pos =
        ProtoPosition { truck: "truck_id_1".into(), lat: 52.52, lon: 13.4, fix: Some(Fix { satellites: 7 }) };
    typed.send_and_wait(TypedRecord::new(&topic).key(1).value(pos.clone())).await.unwrap();
    let nested = TypedProducer::new(producer, LongSerializer, fixes);
    nested.send_and_wait(TypedRecord::new(&topic).key(2).value(Fix { satellites: 9 })).await.unwrap();

    let consumed = consume_with_java(&topic).await;
    assert_eq!(consumed.len(), 2);
    let (id, indexes, payload) = wire::decode_protobuf(consumed[0].value.as_deref().unwrap()).unwrap();
    assert_eq!(indexes, vec![1], "Position is the file's second message");
    assert_eq!(consumed[0].value.as_deref().unwrap()[5..7], [2, 2], "count 1, index 1, as zig-zag varints");
    assert_eq!(<ProtoPosition as prost::Message>::decode(payload).unwrap(), pos);
    assert_eq!(consumed[0].key.as_deref(), Some(&1i64.to_be_bytes()[..]));
    let registered = registry.schema_by_id(id).await.unwrap();
    assert_eq!(registered.schema_type(), SchemaType::Protobuf);
    assert!(registered.text().contains("message Position"));
    assert_eq!(registry.latest(&format!("{topic}-fleet.proto.Position")).await.unwrap().id, id);

    let (id2, indexes, payload) = wire::decode_protobuf(consumed[1].value.as_deref().unwrap()).unwrap();
    assert_eq!(indexes, vec![1, 0], "Fix is nested in Position");
    assert_eq!(<Fix as prost::Message>::decode(payload).unwrap(), Fix { satellites: 9 });
    assert_eq!(id2, id, "the same schema text has the same id");
}

#[tokio::test]
async fn json_values_and_a_failing_serializer_affect_only_their_record() {
    let topic = create_topic("ser-json", 1, &[]).await;
    let producer = producer_builder().build().unwrap();
    let typed = TypedProducer::new(producer.clone(), StringSerializer, JsonSerializer);
    let v = serde_json::json!({"lat": 52.52, "lon": 13.4, "note": "grüße"});
    typed.send_and_wait(TypedRecord::new(&topic).key("a".to_owned()).value(v.clone())).await.unwrap();

    // A value that does not fit the Avro schema fails alone, before the registry is asked.
    let avro = TypedProducer::new(
        producer,
        StringSerializer,
        AvroSerializer::new(registry(), POSITION_AVRO).unwrap(),
    );
    let bad = serde_json::json!({"truck": 1});
    let e = avro.send(TypedRecord::new(&topic).key("b".to_owned()).value(bad)).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Serialization { is_key: false, .. }), "{e:?}");
    assert_eq!(e.topic(), Some(topic.as_str()), "{e}");
    typed
        .send_and_wait(TypedRecord::new(&topic).key("c".to_owned()).value(serde_json::json!([1, 2])))
        .await
        .unwrap();

    let consumed = consume_with_java(&topic).await;
    let values: Vec<serde_json::Value> =
        consumed.iter().map(|c| serde_json::from_slice(c.value.as_deref().unwrap()).unwrap()).collect();
    assert_eq!(values, vec![v, serde_json::json!([1, 2])]);
}

/// `e` is the registry's `status` with Confluent's error `code`; against a real
/// registry (Apicurio's Confluent-compatible API, see harness/registry) its own
/// `apicurio` code for the same condition is accepted too. herald does not act on
/// the code: it reports the status, code and message as the registry sent them.
fn registry_error(e: &herald::Error, status: u16, code: i32, apicurio: i32) {
    let ok = |c: i32| c == code || (real_registry() && c == apicurio);
    assert!(
        matches!(e.kind(), ErrorKind::SchemaRegistry { status: Some(s), code: Some(c), .. } if *s == status && ok(*c)),
        "{e}"
    );
}

#[tokio::test]
async fn the_registry_client_follows_the_rest_api() {
    let registry = registry();
    let subject = support::topic_name("client");
    let a = Schema::avro(r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]}"#);
    let b = Schema::avro(
        r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int"},{"name":"y","type":"int","default":0}]}"#,
    );
    let id_a = registry.register(&subject, &a).await.unwrap();
    // A fresh client, so nothing is cached: the registry must answer the same.
    let fresh = SchemaRegistryClient::new(registry_url()).unwrap();
    assert_eq!(fresh.register(&subject, &a).await.unwrap(), id_a, "registering again gives the same id");
    let id_b = fresh.register(&subject, &b).await.unwrap();
    assert_ne!(id_a, id_b);
    let latest = fresh.latest(&subject).await.unwrap();
    assert_eq!((latest.id, latest.version), (id_b, 2));
    let found = fresh.lookup(&subject, &a).await.unwrap();
    assert_eq!((found.id, found.version), (id_a, 1));
    assert_eq!(fresh.schema_by_id(id_a).await.unwrap().schema_type(), SchemaType::Avro);

    let missing = fresh.latest(&format!("{subject}-nope")).await.unwrap_err();
    // Confluent answers 40401 (subject not found); Apicurio 2.4's ccompat API
    // answers 40402 (version not found) for the latest version of an unknown subject.
    registry_error(&missing, 404, 40401, 40402);
    let unknown = Schema::avro(r#"{"type":"fixed","name":"F","size":3}"#);
    let e = fresh.lookup(&subject, &unknown).await.unwrap_err();
    // Confluent: 40403 (schema not found); Apicurio 2.4: 40401 (its "no artifact").
    registry_error(&e, 404, 40403, 40401);
    let e = fresh.register(&subject, &Schema::avro("not json")).await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::SchemaRegistry { status: Some(422), code: Some(42201), .. }),
        "{e}"
    );
    assert!(e.to_string().contains(&format!("registering a AVRO schema under subject \"{subject}\"")), "{e}");
    let e = fresh.schema_by_id(i32::MAX).await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::SchemaRegistry { status: Some(404), code: Some(40403), .. }),
        "{e}"
    );
}

const DRIVER_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "fleet.Driver",
  "type": "object",
  "required": ["name", "truck"],
  "properties": {
    "name": {"type": "string", "minLength": 1},
    "truck": {"$ref": "#/$defs/truck"},
    "age": {"type": "integer", "minimum": 18},
    "licences": {"type": "array", "items": {"enum": ["B", "C", "CE"]}, "uniqueItems": true}
  },
  "$defs": {"truck": {"type": "string", "pattern": "^truck_id_[0-9]+$"}},
  "additionalProperties": false
}"##;

#[derive(serde::Serialize, Debug, Clone, PartialEq)]
struct Driver {
    name: String,
    truck: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    age: Option<i32>,
    licences: Vec<&'static str>,
}

fn drivers() -> Vec<Driver> {
    (0..6)
        .map(|i| Driver {
            name: format!("driver {i} ü"),
            truck: format!("truck_id_{i}"),
            age: (i % 2 == 0).then_some(20 + i),
            licences: if i % 3 == 0 { vec!["B", "CE"] } else { vec!["C"] },
        })
        .collect()
}

#[tokio::test]
async fn json_schema_values_are_checked_framed_and_read_back() {
    let topic = create_topic("ser-jsonschema", 2, &[]).await;
    let registry = registry();
    let producer = producer_builder().build().unwrap();
    let serializer = JsonSchemaSerializer::new(registry.clone(), DRIVER_SCHEMA).unwrap();
    let typed = TypedProducer::new(producer.clone(), StringSerializer, serializer);
    let sent = drivers();
    for d in &sent {
        typed.send_and_wait(TypedRecord::new(&topic).key(d.truck.clone()).value(d.clone())).await.unwrap();
    }
    // Values that do not match fail alone, before anything is sent, naming where.
    let mut young = sent[0].clone();
    young.age = Some(17);
    let e = typed.send(TypedRecord::new(&topic).key("x".to_owned()).value(young)).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Serialization { is_key: false, .. }), "{e:?}");
    assert_eq!(e.topic(), Some(topic.as_str()));
    assert!(
        e.to_string().ends_with("/properties/age/minimum at /age: 17 is less than the minimum of 18"),
        "{e}"
    );
    let mut bad_truck = sent[1].clone();
    bad_truck.truck = "lorry".into();
    let e = typed.send(TypedRecord::new(&topic).key("y".to_owned()).value(bad_truck)).await.unwrap_err();
    assert!(e.to_string().contains(r#"/$defs/truck/pattern at /truck: "lorry" does not match"#), "{e}");
    // serde_json values and raw text go through the same check.
    let raw = TypedProducer::new(
        producer,
        StringSerializer,
        JsonSchemaSerializer::new(registry.clone(), DRIVER_SCHEMA).unwrap(),
    );
    let text = r#"{"truck": "truck_id_9", "name": "raw", "licences": []}"#;
    raw.send_and_wait(TypedRecord::new(&topic).key("truck_id_9".to_owned()).value(RawJson::from(text)))
        .await
        .unwrap();
    let e = raw
        .send(TypedRecord::new(&topic).key("z".to_owned()).value(RawJson::from(r#"{"name": "x"}"#)))
        .await
        .unwrap_err();
    assert!(e.to_string().contains(r#"/required at the root: "truck" is a required property"#), "{e}");

    let consumed = consume_with_java(&topic).await;
    assert_eq!(consumed.len(), sent.len() + 1, "the refused values were not sent");
    let mut ids = std::collections::BTreeSet::new();
    let mut got = Vec::new();
    for c in &consumed {
        let bytes = c.value.as_deref().unwrap();
        assert_eq!(bytes[0], 0, "magic byte");
        let (id, payload) = wire::decode(bytes).unwrap();
        ids.insert(id);
        let v: serde_json::Value = serde_json::from_slice(payload).unwrap();
        assert_eq!(c.key.as_deref(), v["truck"].as_str().map(str::as_bytes));
        got.push((v["truck"].as_str().unwrap().to_owned(), payload.to_vec()));
    }
    assert_eq!(ids.len(), 1, "one schema, one id");
    let id = *ids.first().unwrap();
    got.sort();
    for d in &sent {
        let (_, payload) = got.iter().find(|(t, _)| *t == d.truck).unwrap();
        assert_eq!(payload, &serde_json::to_vec(d).unwrap(), "compact JSON, fields in declaration order");
    }
    assert_eq!(got.iter().find(|(t, _)| t == "truck_id_9").unwrap().1, text.as_bytes(), "raw text as given");
    let registered = registry.schema_by_id(id).await.unwrap();
    assert_eq!(registered.schema_type(), SchemaType::Json);
    let as_json = |t: &str| serde_json::from_str::<serde_json::Value>(t).unwrap();
    assert_eq!(as_json(registered.text()), as_json(DRIVER_SCHEMA), "the id names our schema");
    let latest = registry.latest(&format!("{topic}-value")).await.unwrap();
    assert_eq!((latest.id, latest.schema.schema_type()), (id, SchemaType::Json), "TopicNameStrategy");
}

#[tokio::test]
async fn json_schema_record_name_strategy_uses_the_title() {
    let registry = registry();
    let topic = support::topic_name("ser-jsonschema-title");
    let s = JsonSchemaSerializer::new(registry.clone(), &own(DRIVER_SCHEMA, "title"))
        .unwrap()
        .subject_name_strategy(SubjectNameStrategy::TopicRecordName);
    let mut headers = Vec::new();
    let mut ctx = SerializationContext::new(&topic, false, &mut headers);
    let bytes = s.serialize(&mut ctx, &drivers()[0]).await.unwrap().unwrap();
    let (id, _) = wire::decode(&bytes).unwrap();
    assert_eq!(registry.latest(&format!("{topic}-fleet.Driver")).await.unwrap().id, id);
}

// Apicurio Registry's own Kafka deserializers (harness/java-tools
// ApicurioDeserialize, in their Confluent-compatible mode: 4-byte ids, no
// headers) reading what herald's registry serializers wrote, against the real
// Apicurio registry of scripts/test.sh's Kafka 4.x phase. They fetch the schema by
// the id in the payload from Apicurio's own API, so they need that registry, not
// the fake: without HERALD_TEST_SCHEMA_REGISTRY these tests say so and pass.

/// `text` made distinct for one test. Apicurio 2.4.2 may answer 409 ("artifact
/// already exists") when two subjects register identical content at the same
/// moment, as tests running in parallel would: each test registers its own text.
fn own(text: &str, test: &str) -> String {
    text.replacen('{', &format!("{{\"description\": \"{test}\", "), 1)
}

/// Whether the Apicurio checks can run; prints why not when they cannot.
fn apicurio_registry(test: &str) -> bool {
    if !real_registry() {
        eprintln!(
            "{test}: skipped: needs the Apicurio registry of harness/registry in \
             HERALD_TEST_SCHEMA_REGISTRY (scripts/test.sh's Kafka 4.x phase sets it)"
        );
    }
    real_registry()
}

/// Serializes each value for `topic` with `s`, as values.
async fn payloads<T, S: Serializer<T>>(s: &S, topic: &str, values: &[T]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for v in values {
        let mut headers = Vec::new();
        let mut ctx = SerializationContext::new(topic, false, &mut headers);
        out.push(s.serialize(&mut ctx, v).await.unwrap().unwrap().to_vec());
    }
    out
}

/// What Apicurio's deserializer for `format` made of each payload: one JSON object
/// per payload (`{"value": …}`, `{"text": …}` or `{"error": …}`).
async fn apicurio_deserialize(format: &str, topic: &str, payloads: &[Vec<u8>]) -> Vec<serde_json::Value> {
    use base64::Engine;
    let input: String =
        payloads.iter().map(|p| base64::engine::general_purpose::STANDARD.encode(p) + "\n").collect();
    let url = registry_url();
    let out = support::java(
        "dev.herald.tools.ApicurioDeserialize",
        &["--registry", &url, "--format", format, "--topic", topic],
        Some(input.into_bytes()),
    )
    .await;
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("bad ApicurioDeserialize line {l:?}: {e}"))
        })
        .collect();
    assert_eq!(lines.len(), payloads.len(), "{out}");
    lines
}

#[tokio::test]
async fn apicurio_reads_herald_avro() {
    if !apicurio_registry("apicurio_reads_herald_avro") {
        return;
    }
    let topic = support::topic_name("apicurio-avro");
    let s = AvroSerializer::new(registry(), &own(POSITION_AVRO, "apicurio")).unwrap();
    let sent: Vec<Position> = (0..4)
        .map(|i| Position {
            truck: format!("truck_id_{i} ü"),
            lat: 52.5 + f64::from(i),
            lon: -13.25,
            speed: (i % 2 == 1).then_some(80.5),
        })
        .collect();
    let got = apicurio_deserialize("avro", &topic, &payloads(&s, &topic, &sent).await).await;
    for (p, g) in sent.iter().zip(&got) {
        // GenericData's JSON: a ["null", "float"] union as the plain value.
        let want =
            serde_json::json!({"value": {"truck": p.truck, "lat": p.lat, "lon": p.lon, "speed": p.speed}});
        assert_eq!(g, &want);
    }
}

/// A draft 7 schema without `$ref`, for Apicurio's JSON Schema deserializer: it
/// validates with everit-json-schema (drafts 4, 6 and 7), and Apicurio 2.4.2's
/// `JsonSchema.validate` takes every `$ref` for a reference to another registered
/// schema, looks it up among the schema's resolved references and throws a
/// NullPointerException for one within the schema (`#/definitions/...`).
const DRIVER_SCHEMA_DRAFT_7: &str = r#"{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "fleet.Driver",
  "type": "object",
  "required": ["name", "truck"],
  "properties": {
    "name": {"type": "string", "minLength": 1},
    "truck": {"type": "string", "pattern": "^truck_id_[0-9]+$"},
    "age": {"type": "integer", "minimum": 18},
    "licences": {"type": "array", "items": {"enum": ["B", "C", "CE"]}, "uniqueItems": true}
  },
  "additionalProperties": false
}"#;

#[tokio::test]
async fn apicurio_reads_herald_json_schema() {
    if !apicurio_registry("apicurio_reads_herald_json_schema") {
        return;
    }
    let topic = support::topic_name("apicurio-jsonschema");
    let s = JsonSchemaSerializer::new(registry(), &own(DRIVER_SCHEMA_DRAFT_7, "apicurio")).unwrap();
    let sent = drivers();
    let mut framed = payloads(&s, &topic, &sent).await;
    // Apicurio's deserializer checks each value against the schema it fetched by the
    // id (everit-json-schema): herald's values pass a second validator. A value
    // herald would refuse, framed by hand with the same id, shows that check runs.
    let (id, _) = wire::decode(&framed[0]).unwrap();
    framed.push(wire::frame(id, br#"{"name": "x", "truck": "truck_id_1", "age": 17}"#));
    let got = apicurio_deserialize("json-schema", &topic, &framed).await;
    for (d, g) in sent.iter().zip(&got) {
        assert_eq!(g, &serde_json::json!({ "value": d }));
    }
    let refused = got[sent.len()]["error"].as_str().unwrap_or_default();
    assert!(
        refused.contains("ValidationException") && refused.contains("17 is not greater or equal to 18"),
        "{refused}"
    );
}

/// Apicurio 2.x's `ProtobufKafkaDeserializer` (2.4.2, the registry's release, and
/// 2.6.13 alike) does not read the Confluent Protobuf framing: without headers it
/// parses what follows the id as Apicurio's own length-delimited `Ref` message (the
/// message name), where Confluent's `KafkaProtobufSerializer`, and herald, write the
/// message indexes. Apicurio's Protobuf serdes gained Confluent-compatibility options
/// only in the 3.x line (after 3.0.14), whose serdes speak the v3 REST API that this
/// 2.4.2 registry does not serve. So this pins what the 2.4.2 deserializer does with
/// herald's bytes (an error, or the wrong message), and fails the day it reads them,
/// to be turned into a strict check then. herald's Protobuf framing is checked byte
/// for byte in `protobuf_messages_carry_message_indexes_and_decode_back`.
#[tokio::test]
async fn apicurio_2_protobuf_deserializer_does_not_read_confluent_message_indexes() {
    if !apicurio_registry("apicurio_2_protobuf_deserializer_does_not_read_confluent_message_indexes") {
        return;
    }
    let topic = support::topic_name("apicurio-proto");
    let proto = POSITION_PROTO.replace("package fleet.proto;", "package fleet.apicurio;");
    let s = ProtobufSerializer::new(registry(), &proto, "fleet.apicurio.Position").unwrap();
    let pos =
        ProtoPosition { truck: "truck_id_1".into(), lat: 52.52, lon: 13.4, fix: Some(Fix { satellites: 7 }) };
    let got = apicurio_deserialize("protobuf", &topic, &payloads(&s, &topic, &[pos]).await).await;
    // It did find the schema by the id in herald's framing (a wrong id fails with
    // Apicurio's ContentNotFoundException): what it cannot read is what follows.
    assert!(!got[0].to_string().contains("ContentNotFound"), "{}", got[0]);
    let read_back = got[0]["text"].as_str().is_some_and(|t| t.contains("truck_id_1") && t.contains("52.52"));
    assert!(
        !read_back,
        "Apicurio's ProtobufKafkaDeserializer now reads Confluent message indexes: {}",
        got[0]
    );
    eprintln!("Apicurio 2.4.2 ProtobufKafkaDeserializer on herald's Confluent framing: {}", got[0]);
}
