//! The registry client against a canned HTTP server on 127.0.0.1: each test
//! queues the answers a registry following the published REST API gives, and
//! checks the requests herald sent. (Serializers against a whole fake registry, and
//! against a real one when there is one, are in `herald/tests/serializers_registry.rs`.)

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Answers each request with the next queued (status, body); with none left, does
/// not answer at all (for timeouts).
struct Canned {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn canned(answers: Vec<(u16, &str)>) -> Canned {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let answers: Arc<Mutex<VecDeque<(u16, String)>>> =
        Arc::new(Mutex::new(answers.into_iter().map(|(s, b)| (s, b.to_owned())).collect()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let log = log.clone();
            let answers = answers.clone();
            tokio::spawn(async move {
                loop {
                    let mut buf = Vec::new();
                    let head_end = loop {
                        let mut chunk = [0u8; 4096];
                        let n = match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                    let mut lines = head.split("\r\n");
                    let mut first = lines.next().unwrap_or_default().split(' ');
                    let (method, path) = (first.next().unwrap_or_default(), first.next().unwrap_or_default());
                    let headers: Vec<(String, String)> = lines
                        .filter_map(|l| l.split_once(": ").map(|(k, v)| (k.to_owned(), v.to_owned())))
                        .collect();
                    let len: usize = headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
                    log.lock().push(Seen { method: method.to_owned(), path: path.to_owned(), headers, body });
                    let Some((status, body)) = answers.lock().pop_front() else {
                        std::future::pending::<()>().await;
                        return;
                    };
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/vnd.schemaregistry.v1+json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if sock.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Canned { url, seen }
}

const AVRO: &str =
    r#"{"type":"record","name":"Position","namespace":"fleet","fields":[{"name":"lat","type":"double"}]}"#;

#[tokio::test]
async fn register_posts_the_schema_and_caches_the_id() {
    let srv = canned(vec![(200, r#"{"id":21}"#)]).await;
    let client = SchemaRegistryClient::new(&srv.url).unwrap();
    let schema = Schema::avro(AVRO);
    assert_eq!(client.register("trucks-value", &schema).await.unwrap(), 21);
    assert_eq!(client.register("trucks-value", &schema).await.unwrap(), 21, "cached");
    assert_eq!(client.schema_by_id(21).await.unwrap(), schema, "known from the registration");
    let seen = srv.seen.lock().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("POST", "/subjects/trucks-value/versions"));
    assert_eq!(seen[0].header("content-type"), Some(CONTENT_TYPE));
    let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(body, serde_json::json!({ "schema": AVRO }), "AVRO is the default schemaType");
}

#[tokio::test]
async fn protobuf_registration_names_its_type_and_references() {
    let srv = canned(vec![(200, r#"{"id":3}"#)]).await;
    let client = SchemaRegistryClient::new(format!("{}/apis/ccompat/v7/", srv.url)).unwrap();
    let reference = SchemaReference { name: "common.proto".into(), subject: "common".into(), version: 1 };
    let schema = Schema::protobuf("syntax = \"proto3\";").with_references(vec![reference]);
    assert_eq!(client.register("a/b c", &schema).await.unwrap(), 3);
    let seen = srv.seen.lock().clone();
    assert_eq!(seen[0].path, "/apis/ccompat/v7/subjects/a%2Fb%20c/versions", "path kept, subject encoded");
    let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(body["schemaType"], "PROTOBUF");
    assert_eq!(body["references"][0]["subject"], "common");
}

#[tokio::test]
async fn errors_name_url_status_code_and_message() {
    let srv = canned(vec![
        (409, r#"{"error_code":409,"message":"Schema being registered is incompatible with an earlier schema"}"#),
        (404, r#"{"error_code":40403,"message":"Schema 7 not found"}"#),
        (502, "<html>bad gateway</html>"),
        (500, ""),
    ])
    .await;
    let client = SchemaRegistryClient::new(&srv.url).unwrap();
    let e = client.register("t-value", &Schema::avro("\"int\"")).await.unwrap_err();
    match e.kind() {
        ErrorKind::SchemaRegistry { url, status, code, message } => {
            assert_eq!(url, &srv.url);
            assert_eq!((*status, *code), (Some(409), Some(409)));
            assert!(message.contains("registering a AVRO schema under subject \"t-value\""), "{message}");
            assert!(message.contains("incompatible"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("answered HTTP 409 (error code 409)"), "{e}");
    let e = client.schema_by_id(7).await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::SchemaRegistry { code: Some(40403), status: Some(404), .. }),
        "{e:?}"
    );
    let e = client.schema_by_id(8).await.unwrap_err();
    assert!(e.to_string().contains("bad gateway"), "{e}");
    let e = client.schema_by_id(9).await.unwrap_err();
    assert!(e.to_string().contains("Internal Server Error"), "{e}");
}

#[tokio::test]
async fn lookup_latest_and_by_id_parse_the_answers() {
    let srv = canned(vec![
        (200, r#"{"subject":"t-value","id":5,"version":2,"schema":"syntax = \"proto3\";","schemaType":"PROTOBUF"}"#),
        (200, r#"{"subject":"t-value","id":6,"version":3,"schema":"\"string\""}"#),
        (200, r#"{"schema":"{}","schemaType":"JSON"}"#),
        (200, r#"{"schema":"x","schemaType":"THRIFT"}"#),
        (200, r#"{"unexpected":true}"#),
    ])
    .await;
    let client = SchemaRegistryClient::new(&srv.url).unwrap();
    let found = client.lookup("t-value", &Schema::protobuf("syntax = \"proto3\";")).await.unwrap();
    assert_eq!((found.id, found.version, found.schema.schema_type()), (5, 2, SchemaType::Protobuf));
    let latest = client.latest("t-value").await.unwrap();
    assert_eq!(
        (latest.id, latest.schema.schema_type(), latest.schema.text()),
        (6, SchemaType::Avro, "\"string\"")
    );
    assert_eq!(client.schema_by_id(10).await.unwrap().schema_type(), SchemaType::Json);
    assert!(client.schema_by_id(11).await.unwrap_err().to_string().contains("unknown schemaType \"THRIFT\""));
    assert!(client.schema_by_id(12).await.unwrap_err().to_string().contains("unexpected answer"));
    let paths: Vec<String> = srv.seen.lock().iter().map(|s| format!("{} {}", s.method, s.path)).collect();
    assert_eq!(
        paths,
        [
            "POST /subjects/t-value",
            "GET /subjects/t-value/versions/latest",
            "GET /schemas/ids/10",
            "GET /schemas/ids/11",
            "GET /schemas/ids/12"
        ]
    );
}

#[tokio::test]
async fn credentials_in_the_url_become_basic_auth() {
    let srv = canned(vec![(200, r#"{"id":1}"#), (200, r#"{"id":2}"#)]).await;
    let with_creds = srv.url.replace("http://", "http://fleet:s%40cret@");
    let client = SchemaRegistryClient::new(&with_creds).unwrap();
    assert_eq!(client.url(), srv.url, "no credentials in what errors show");
    client.register("a", &Schema::avro("\"int\"")).await.unwrap();
    let explicit = SchemaRegistryClient::builder(&srv.url).basic_auth("u", "p").build().unwrap();
    explicit.register("b", &Schema::avro("\"int\"")).await.unwrap();
    let seen = srv.seen.lock().clone();
    // base64("fleet:s@cret"), base64("u:p")
    assert_eq!(seen[0].header("authorization"), Some("Basic ZmxlZXQ6c0BjcmV0"));
    assert_eq!(seen[1].header("authorization"), Some("Basic dTpw"));
}

#[tokio::test]
async fn from_config_takes_the_first_url_and_confluents_basic_auth() {
    let srv = canned(vec![(200, r#"{"id":1}"#), (200, r#"{"id":2}"#)]).await;
    let mut config = crate::ProducerConfig::default();
    // USER_INFO: basic.auth.user.info, not the URL's user info.
    let with_creds = srv.url.replace("http://", "http://fleet:s%40cret@");
    config.set("schema.registry.url", &format!("{with_creds},http://127.0.0.1:1")).unwrap();
    config.set("basic.auth.credentials.source", "USER_INFO").unwrap();
    config.set("basic.auth.user.info", "u:p").unwrap();
    let client = SchemaRegistryClient::from_config(&config).unwrap();
    assert_eq!(client.url(), srv.url);
    client.register("a", &Schema::avro("\"int\"")).await.unwrap();
    // URL (the default): the URL's user info.
    config.set("basic.auth.credentials.source", "URL").unwrap();
    SchemaRegistryClient::from_config(&config)
        .unwrap()
        .register("b", &Schema::avro("\"int\""))
        .await
        .unwrap();
    let seen = srv.seen.lock().clone();
    // base64("u:p"), base64("fleet:s@cret")
    assert_eq!(seen[0].header("authorization"), Some("Basic dTpw"));
    assert_eq!(seen[1].header("authorization"), Some("Basic ZmxlZXQ6c0BjcmV0"));

    // USER_INFO without user:password, and no URL at all, name the property.
    config.set("basic.auth.credentials.source", "USER_INFO").unwrap();
    config.set("basic.auth.user.info", "no-colon-secret").unwrap();
    let e = SchemaRegistryClient::from_config(&config).unwrap_err().to_string();
    assert!(e.contains("basic.auth.user.info") && !e.contains("no-colon-secret"), "{e}");
    let e = SchemaRegistryClient::from_config(&crate::ProducerConfig::default()).unwrap_err().to_string();
    assert!(e.contains("schema.registry.url"), "{e}");
}

#[test]
fn serializer_settings_come_from_confluents_properties() {
    let mut config = crate::ProducerConfig::default();
    assert_eq!(RegistrySerializerConfig::from_config(&config, false), RegistrySerializerConfig::default());
    config.set("auto.register.schemas", "false").unwrap();
    config.set("use.latest.version", "true").unwrap();
    config
        .set("key.subject.name.strategy", "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy")
        .unwrap();
    config.set("value.subject.name.strategy", "RecordNameStrategy").unwrap();
    let key = RegistrySerializerConfig::from_config(&config, true);
    let value = RegistrySerializerConfig::from_config(&config, false);
    assert_eq!(key.subject_name_strategy, SubjectNameStrategy::TopicRecordName);
    assert_eq!(value.subject_name_strategy, SubjectNameStrategy::RecordName);
    assert!(!value.auto_register && value.use_latest_version);
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_clear() {
    let srv = canned(vec![]).await;
    let client = SchemaRegistryClient::builder(&srv.url).timeout(Duration::from_millis(300)).build().unwrap();
    let e = client.schema_by_id(1).await.unwrap_err();
    assert!(e.to_string().contains("reading schema id 1: timed out"), "{e}");

    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let e = SchemaRegistryClient::new(&url).unwrap().schema_by_id(1).await.unwrap_err();
    assert!(e.to_string().contains("cannot connect"), "{e}");
    assert!(matches!(e.kind(), ErrorKind::SchemaRegistry { status: None, .. }));
}

#[test]
fn bad_urls_are_config_errors() {
    for url in ["not a url", "ftp://host/", "file:///tmp"] {
        let e = SchemaRegistryClient::new(url).unwrap_err();
        assert!(e.is_config(), "{url}: {e}");
        assert!(e.to_string().contains("schema.registry.url"), "{e}");
    }
}

#[tokio::test]
async fn the_resolver_registers_looks_up_or_takes_the_latest_once_per_subject() {
    let srv = canned(vec![
        (200, r#"{"id":1}"#),
        (200, r#"{"subject":"fleet.Position","id":2,"version":1,"schema":"\"int\""}"#),
        (200, r#"{"subject":"t-fleet.Position","id":3,"version":4,"schema":"\"int\""}"#),
    ])
    .await;
    let client = SchemaRegistryClient::new(&srv.url).unwrap();
    let schema = Schema::avro("\"int\"");
    let mut headers = Vec::new();
    let ctx = SerializationContext::new("t", false, &mut headers);

    let auto = SchemaIdResolver::new(client.clone());
    assert_eq!(auto.id(&ctx, Some("fleet.Position"), &schema).await.unwrap(), 1);
    assert_eq!(auto.id(&ctx, Some("fleet.Position"), &schema).await.unwrap(), 1);

    let mut lookup = SchemaIdResolver::new(client.clone());
    lookup.config = RegistrySerializerConfig {
        auto_register: false,
        subject_name_strategy: SubjectNameStrategy::RecordName,
        ..Default::default()
    };
    assert_eq!(lookup.id(&ctx, Some("fleet.Position"), &schema).await.unwrap(), 2);

    let mut latest = SchemaIdResolver::new(client.clone());
    latest.config = RegistrySerializerConfig {
        use_latest_version: true,
        subject_name_strategy: SubjectNameStrategy::TopicRecordName,
        ..Default::default()
    };
    assert_eq!(latest.id(&ctx, Some("fleet.Position"), &schema).await.unwrap(), 3);
    let e = latest.id(&ctx, None, &schema).await.unwrap_err();
    assert!(e.to_string().contains("TopicRecordName needs a record name"), "{e}");
    assert_eq!(e.topic(), Some("t"));

    let paths: Vec<String> = srv.seen.lock().iter().map(|s| format!("{} {}", s.method, s.path)).collect();
    assert_eq!(
        paths,
        [
            "POST /subjects/t-value/versions",
            "POST /subjects/fleet.Position",
            "GET /subjects/t-fleet.Position/versions/latest"
        ]
    );
}

#[cfg(feature = "json-schema")]
#[tokio::test]
async fn json_schema_values_register_as_json_and_frame_their_text() {
    use crate::serialization::Serializer;
    use crate::serialization::json_schema::{JsonSchemaSerializer, RawJson};

    let srv = canned(vec![(200, r#"{"id":258}"#)]).await;
    let schema = r#" {"title": "fleet.Driver", "type": "object", "properties": {"age": {"minimum": 0}}} "#;
    let s = JsonSchemaSerializer::new(SchemaRegistryClient::new(&srv.url).unwrap(), schema).unwrap();
    #[derive(serde::Serialize)]
    struct Driver {
        name: &'static str,
        age: i32,
    }
    let mut headers = Vec::new();
    let mut ctx = SerializationContext::new("drivers", false, &mut headers);
    let bytes = s.serialize(&mut ctx, &Driver { name: "Ada", age: 36 }).await.unwrap().unwrap();
    // Magic byte, id 258 big-endian, then the JSON text (fields in declaration order).
    assert_eq!(&bytes[..5], &[0, 0, 0, 1, 2]);
    assert_eq!(&bytes[5..], br#"{"name":"Ada","age":36}"#);
    let raw = s.serialize(&mut ctx, &RawJson::from(r#"{ "z": 1, "age": 0 }"#)).await.unwrap().unwrap();
    assert_eq!(&raw[5..], br#"{ "z": 1, "age": 0 }"#, "text goes as written");
    // A value that does not match is refused without asking the registry again.
    let e = s.serialize(&mut ctx, &serde_json::json!({"age": -1})).await.unwrap_err();
    assert!(e.to_string().contains("/properties/age/minimum at /age"), "{e}");

    let seen = srv.seen.lock().clone();
    assert_eq!(seen.len(), 1, "registered once");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/subjects/drivers-value/versions")
    );
    let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(body["schemaType"], "JSON");
    assert_eq!(body["schema"], schema.trim(), "registered as written");
}
