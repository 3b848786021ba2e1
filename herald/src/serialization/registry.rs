//! A client for the Confluent Schema Registry REST API, and the subject name
//! strategies that say under which subject a serializer registers its schema.
//!
//! It speaks the published API (also served by Apicurio Registry at
//! `/apis/ccompat/v7`, Karapace, Redpanda and others):
//!
//! | method | request | herald |
//! |---|---|---|
//! | register a schema under a subject | `POST /subjects/{subject}/versions` | [`SchemaRegistryClient::register`] |
//! | find a schema's id under a subject | `POST /subjects/{subject}` | [`SchemaRegistryClient::lookup`] |
//! | the latest version of a subject | `GET /subjects/{subject}/versions/latest` | [`SchemaRegistryClient::latest`] |
//! | a schema by id | `GET /schemas/ids/{id}` | [`SchemaRegistryClient::schema_by_id`] |
//!
//! Registrations, look-ups and schemas by id are cached (a registered schema's id
//! never changes), so a serializer asks the registry once per subject. Every request
//! has a connect timeout and a total timeout; a failure is an
//! [`ErrorKind::SchemaRegistry`] naming the URL, the HTTP status, the registry's
//! error code and message.
//!
//! ```no_run
//! # async fn demo() -> Result<(), herald::Error> {
//! use herald::serialization::registry::{Schema, SchemaRegistryClient};
//!
//! let registry = SchemaRegistryClient::new("http://127.0.0.1:8081")?;
//! let id = registry.register("trucks-value", &Schema::avro(r#"{"type":"string"}"#)).await?;
//! assert_eq!(registry.schema_by_id(id).await?.text(), r#"{"type":"string"}"#);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::SerializationContext;
use crate::error::{Error, ErrorKind, Result};

/// The content type of the registry's API.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// What Confluent's own client accepts.
const ACCEPT: &str = "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json; qs=0.9, application/json; qs=0.5";

/// The kind of a schema: the registry's `schemaType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SchemaType {
    /// Apache Avro (the registry's default when `schemaType` is absent).
    #[default]
    Avro,
    /// Protocol Buffers: the schema is the text of a `.proto` file.
    Protobuf,
    /// JSON Schema.
    Json,
}

impl SchemaType {
    /// The registry's name for it: `AVRO`, `PROTOBUF` or `JSON`.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Protobuf => "PROTOBUF",
            SchemaType::Json => "JSON",
        }
    }

    fn parse(s: Option<&str>) -> Option<SchemaType> {
        match s {
            None | Some("AVRO") => Some(SchemaType::Avro),
            Some("PROTOBUF") => Some(SchemaType::Protobuf),
            Some("JSON") => Some(SchemaType::Json),
            Some(_) => None,
        }
    }
}

impl fmt::Display for SchemaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reference from a schema to another registered schema (a Protobuf `import`, an
/// Avro named type defined elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SchemaReference {
    /// The name the referring schema uses (for Protobuf, the imported file name).
    pub name: String,
    /// The subject the referenced schema is registered under.
    pub subject: String,
    /// Its version under that subject.
    pub version: i32,
}

/// A schema as the registry stores it: its type, its text and its references.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Schema {
    schema_type: SchemaType,
    text: String,
    references: Vec<SchemaReference>,
}

impl Schema {
    /// A schema of this type with this text.
    pub fn new(schema_type: SchemaType, text: impl Into<String>) -> Schema {
        Schema { schema_type, text: text.into(), references: Vec::new() }
    }

    /// An Avro schema (JSON text).
    pub fn avro(text: impl Into<String>) -> Schema {
        Schema::new(SchemaType::Avro, text)
    }

    /// A Protobuf schema (the text of a `.proto` file).
    pub fn protobuf(text: impl Into<String>) -> Schema {
        Schema::new(SchemaType::Protobuf, text)
    }

    /// A JSON Schema.
    pub fn json(text: impl Into<String>) -> Schema {
        Schema::new(SchemaType::Json, text)
    }

    /// The same schema with these references.
    pub fn with_references(mut self, references: Vec<SchemaReference>) -> Schema {
        self.references = references;
        self
    }

    /// Its type.
    pub fn schema_type(&self) -> SchemaType {
        self.schema_type
    }

    /// Its text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Its references.
    pub fn references(&self) -> &[SchemaReference] {
        &self.references
    }
}

/// A schema registered under a subject: what [`SchemaRegistryClient::latest`] and
/// [`SchemaRegistryClient::lookup`] return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredSchema {
    /// The subject.
    pub subject: String,
    /// The schema's global id (what the wire format carries).
    pub id: i32,
    /// Its version under the subject.
    pub version: i32,
    /// The schema.
    pub schema: Schema,
}

/// Under which subject a serializer registers or looks up its schema (Confluent's
/// `key.subject.name.strategy` / `value.subject.name.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SubjectNameStrategy {
    /// `<topic>-key` or `<topic>-value`: one schema (and its evolutions) per topic.
    /// Confluent's `TopicNameStrategy`, the default.
    #[default]
    TopicName,
    /// The record's fully qualified name (Avro record `namespace.name`, Protobuf
    /// message `package.Message`): one schema per record type, across topics.
    /// Confluent's `RecordNameStrategy`.
    RecordName,
    /// `<topic>-<fully qualified record name>`: several record types per topic.
    /// Confluent's `TopicRecordNameStrategy`.
    TopicRecordName,
}

impl SubjectNameStrategy {
    /// The subject for a key (`is_key`) or value of `topic` whose record type is
    /// `record_name`. `None` when the strategy needs a record name and there is none
    /// (an Avro schema that is not a named type).
    ///
    /// ```
    /// use herald::serialization::registry::SubjectNameStrategy;
    /// assert_eq!(SubjectNameStrategy::TopicName.subject("trucks", false, None).as_deref(), Some("trucks-value"));
    /// assert_eq!(SubjectNameStrategy::RecordName.subject("trucks", false, Some("fleet.Position")).as_deref(), Some("fleet.Position"));
    /// assert_eq!(SubjectNameStrategy::TopicRecordName.subject("trucks", true, Some("fleet.Id")).as_deref(), Some("trucks-fleet.Id"));
    /// assert_eq!(SubjectNameStrategy::RecordName.subject("trucks", true, None), None);
    /// ```
    pub fn subject(self, topic: &str, is_key: bool, record_name: Option<&str>) -> Option<String> {
        match self {
            SubjectNameStrategy::TopicName => {
                Some(format!("{topic}-{}", if is_key { "key" } else { "value" }))
            }
            SubjectNameStrategy::RecordName => record_name.map(str::to_owned),
            SubjectNameStrategy::TopicRecordName => record_name.map(|r| format!("{topic}-{r}")),
        }
    }
}

/// A Schema Registry client. Cheap to clone: clones share one connection pool and
/// one cache. Build one with [`SchemaRegistryClient::new`] or
/// [`SchemaRegistryClient::builder`].
#[derive(Clone)]
pub struct SchemaRegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    base: reqwest::Url,
    /// The base URL without credentials, for error messages.
    shown: String,
    http: reqwest::Client,
    auth: Option<(String, Option<String>)>,
    registered: Mutex<HashMap<(String, Schema), i32>>,
    looked_up: Mutex<HashMap<(String, Schema), RegisteredSchema>>,
    by_id: Mutex<HashMap<i32, Schema>>,
}

impl fmt::Debug for SchemaRegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaRegistryClient").field("url", &self.inner.shown).finish()
    }
}

/// Settings of a [`SchemaRegistryClient`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SchemaRegistryClientBuilder {
    url: String,
    timeout: Duration,
    connect_timeout: Duration,
    basic_auth: Option<(String, String)>,
}

impl SchemaRegistryClientBuilder {
    /// How long one request may take in all, connecting included. Default is 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long connecting may take. Default is 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// HTTP basic authentication (Confluent's `basic.auth.user.info`). Credentials
    /// in the URL (`https://user:password@host`) are used too. Default is none.
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.basic_auth = Some((user.into(), password.into()));
        self
    }

    /// Builds the client; checks the URL (http or https) but does not connect.
    pub fn build(self) -> Result<SchemaRegistryClient> {
        let bad = |reason: String| Error::config("schema.registry.url", reason);
        let mut base = reqwest::Url::parse(self.url.trim())
            .map_err(|e| bad(format!("{:?} is not a URL: {e}", self.url)))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad(format!("{:?}: only http and https are supported", self.url)));
        }
        let mut auth = self.basic_auth.map(|(u, p)| (u, Some(p)));
        if !base.username().is_empty() {
            let user = percent_decode(base.username());
            let password = base.password().map(percent_decode);
            auth.get_or_insert((user, password));
            // Both setters only fail for URLs that cannot have credentials, which
            // http(s) URLs can.
            let _ = base.set_username("");
            let _ = base.set_password(None);
        }
        let shown = base.as_str().trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .build()
            .map_err(|e| bad(format!("cannot set up an HTTP client: {e}")))?;
        Ok(SchemaRegistryClient {
            inner: Arc::new(Inner {
                base,
                shown,
                http,
                auth,
                registered: Mutex::default(),
                looked_up: Mutex::default(),
                by_id: Mutex::default(),
            }),
        })
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The JSON the registry sends for a schema.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaJson {
    schema: String,
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<SchemaReference>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubjectVersionJson {
    subject: Option<String>,
    id: i32,
    version: i32,
    #[serde(flatten)]
    schema: SchemaJson,
}

#[derive(Deserialize)]
struct IdJson {
    id: i32,
}

#[derive(Deserialize)]
struct ErrorJson {
    error_code: Option<i32>,
    message: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest<'a> {
    schema: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema_type: Option<&'static str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    references: &'a [SchemaReference],
}

impl<'a> SchemaRequest<'a> {
    fn of(schema: &'a Schema) -> Self {
        SchemaRequest {
            schema: &schema.text,
            // Absent means AVRO, and registries that predate schemaType accept it.
            schema_type: (schema.schema_type != SchemaType::Avro).then(|| schema.schema_type.as_str()),
            references: &schema.references,
        }
    }
}

impl SchemaRegistryClient {
    /// A client for the registry at `url` (e.g. `http://127.0.0.1:8081`, or
    /// Apicurio's `http://127.0.0.1:8080/apis/ccompat/v7`) with default timeouts.
    pub fn new(url: impl Into<String>) -> Result<SchemaRegistryClient> {
        SchemaRegistryClient::builder(url).build()
    }

    /// A client built from Confluent's serializer properties in a producer's
    /// configuration (a Java producer's properties file, say), with default timeouts:
    ///
    /// - `schema.registry.url`: the registry. Confluent's serializers take a
    ///   comma-separated list and fail over between them; herald's client uses the
    ///   first URL only.
    /// - `basic.auth.credentials.source`: `URL` (the default) takes HTTP basic auth
    ///   from the URL (`https://user:password@host`); `USER_INFO` takes it from
    ///   `basic.auth.user.info` (`user:password`), as Confluent's serializers do.
    ///
    /// Fails, naming the property, when `schema.registry.url` is not set, or
    /// `USER_INFO` is chosen without a `user:password` (never echoed).
    ///
    /// ```
    /// # fn demo() -> Result<(), herald::Error> {
    /// use herald::serialization::registry::SchemaRegistryClient;
    ///
    /// let mut config = herald::ProducerConfig::default();
    /// config.set("schema.registry.url", "https://registry-1:8081,https://registry-2:8081")?;
    /// config.set("basic.auth.credentials.source", "USER_INFO")?;
    /// config.set("basic.auth.user.info", "fleet:secret")?;
    /// let registry = SchemaRegistryClient::from_config(&config)?;
    /// assert_eq!(registry.url(), "https://registry-1:8081");
    /// # Ok(()) }
    /// ```
    pub fn from_config(config: &crate::ProducerConfig) -> Result<SchemaRegistryClient> {
        let s = &config.serializers;
        let Some(url) = s.schema_registry_url.first() else {
            return Err(Error::config("schema.registry.url", "not set: the Schema Registry's URL is needed"));
        };
        let builder = SchemaRegistryClient::builder(url.as_str());
        let builder = if s.basic_auth_credentials_source.eq_ignore_ascii_case("USER_INFO") {
            let Some((user, password)) = s.basic_auth_user_info.split_once(':') else {
                return Err(Error::config(
                    "basic.auth.user.info",
                    "expected user:password with basic.auth.credentials.source=USER_INFO",
                ));
            };
            builder.basic_auth(user, password)
        } else {
            builder
        };
        builder.build()
    }

    /// A builder, for timeouts and authentication.
    pub fn builder(url: impl Into<String>) -> SchemaRegistryClientBuilder {
        SchemaRegistryClientBuilder {
            url: url.into(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            basic_auth: None,
        }
    }

    /// The registry's base URL (without credentials).
    pub fn url(&self) -> &str {
        &self.inner.shown
    }

    /// Registers `schema` under `subject` (a new version if it is new to the subject,
    /// the existing one otherwise) and returns its id. Cached: the same schema under
    /// the same subject is registered once.
    pub async fn register(&self, subject: &str, schema: &Schema) -> Result<i32> {
        let key = (subject.to_owned(), schema.clone());
        if let Some(id) = self.inner.registered.lock().get(&key) {
            return Ok(*id);
        }
        let body = json_body(&SchemaRequest::of(schema))?;
        let what = format!("registering a {} schema under subject {subject:?}", schema.schema_type);
        let reply: IdJson =
            self.call(reqwest::Method::POST, &["subjects", subject, "versions"], Some(body), &what).await?;
        self.inner.registered.lock().insert(key, reply.id);
        self.inner.by_id.lock().entry(reply.id).or_insert_with(|| schema.clone());
        Ok(reply.id)
    }

    /// Finds `schema` among `subject`'s versions without registering it (what a
    /// serializer with auto-registration off does). Cached.
    pub async fn lookup(&self, subject: &str, schema: &Schema) -> Result<RegisteredSchema> {
        let key = (subject.to_owned(), schema.clone());
        if let Some(found) = self.inner.looked_up.lock().get(&key) {
            return Ok(found.clone());
        }
        let body = json_body(&SchemaRequest::of(schema))?;
        let what = format!("looking up a {} schema under subject {subject:?}", schema.schema_type);
        let reply: SubjectVersionJson =
            self.call(reqwest::Method::POST, &["subjects", subject], Some(body), &what).await?;
        let found = self.registered_schema(subject, reply, &what)?;
        self.inner.looked_up.lock().insert(key, found.clone());
        Ok(found)
    }

    /// The latest version registered under `subject`. Not cached: it changes when a
    /// new version is registered.
    pub async fn latest(&self, subject: &str) -> Result<RegisteredSchema> {
        let what = format!("reading the latest version of subject {subject:?}");
        let reply: SubjectVersionJson = self
            .call(reqwest::Method::GET, &["subjects", subject, "versions", "latest"], None, &what)
            .await?;
        self.registered_schema(subject, reply, &what)
    }

    /// The schema with this id. Cached.
    pub async fn schema_by_id(&self, id: i32) -> Result<Schema> {
        if let Some(s) = self.inner.by_id.lock().get(&id) {
            return Ok(s.clone());
        }
        let what = format!("reading schema id {id}");
        let reply: SchemaJson =
            self.call(reqwest::Method::GET, &["schemas", "ids", &id.to_string()], None, &what).await?;
        let schema = self.schema_of(reply, &what)?;
        self.inner.by_id.lock().insert(id, schema.clone());
        Ok(schema)
    }

    fn registered_schema(
        &self,
        subject: &str,
        r: SubjectVersionJson,
        what: &str,
    ) -> Result<RegisteredSchema> {
        let schema = self.schema_of(r.schema, what)?;
        self.inner.by_id.lock().entry(r.id).or_insert_with(|| schema.clone());
        Ok(RegisteredSchema {
            subject: r.subject.unwrap_or_else(|| subject.to_owned()),
            id: r.id,
            version: r.version,
            schema,
        })
    }

    fn schema_of(&self, s: SchemaJson, what: &str) -> Result<Schema> {
        let Some(schema_type) = SchemaType::parse(s.schema_type.as_deref()) else {
            return Err(self.error(
                None,
                None,
                format!("{what}: unknown schemaType {:?}", s.schema_type.unwrap_or_default()),
            ));
        };
        Ok(Schema { schema_type, text: s.schema, references: s.references })
    }

    fn error(&self, status: Option<u16>, code: Option<i32>, message: String) -> Error {
        Error::from_kind(ErrorKind::SchemaRegistry { url: self.inner.shown.clone(), status, code, message })
    }

    /// One request: the path is appended to the base URL segment by segment (each
    /// percent-encoded), the answer parsed as `T`, or turned into an error.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &[&str],
        body: Option<Vec<u8>>,
        what: &str,
    ) -> Result<T> {
        let mut url = self.inner.base.clone();
        match url.path_segments_mut() {
            Ok(mut segments) => {
                segments.pop_if_empty().extend(path);
            }
            Err(()) => {
                return Err(self.error(None, None, format!("{what}: the base URL cannot have a path")));
            }
        }
        let mut req = self.inner.http.request(method, url).header(reqwest::header::ACCEPT, ACCEPT);
        if let Some((user, password)) = &self.inner.auth {
            req = req.basic_auth(user, password.as_ref());
        }
        if let Some(body) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE).body(body);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let why = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                return Err(self.error(None, None, format!("{what}: {why}")).with_source(e));
            }
        };
        let status = resp.status();
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                let why = if e.is_timeout() { "timed out reading the answer" } else { "answer cut off" };
                return Err(self.error(Some(status.as_u16()), None, format!("{what}: {why}")).with_source(e));
            }
        };
        if !status.is_success() {
            let (code, message) = match serde_json::from_slice::<ErrorJson>(&bytes) {
                Ok(ErrorJson { error_code, message }) => (error_code, message),
                Err(_) => (None, None),
            };
            let message = message.unwrap_or_else(|| {
                let text = String::from_utf8_lossy(&bytes);
                let text: String = text.chars().take(200).collect();
                if text.trim().is_empty() {
                    status.canonical_reason().unwrap_or("no message").to_owned()
                } else {
                    text
                }
            });
            return Err(self.error(Some(status.as_u16()), code, format!("{what}: {message}")));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| self.error(Some(status.as_u16()), None, format!("{what}: unexpected answer ({e})")))
    }
}

fn json_body<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v)
        .map_err(|e| Error::from_kind(ErrorKind::InvalidRecord { reason: format!("schema request: {e}") }))
}

/// How a registry serializer finds the id of its schema: Confluent's
/// The builder methods every Schema Registry serializer has for its
/// [`RegistrySerializerConfig`], written once: invoked inside the `impl` of a
/// serializer with a `resolver: SchemaIdResolver` field; the optional string adds
/// to the subject strategy's documentation.
macro_rules! registry_settings {
    () => {
        $crate::serialization::registry::registry_settings!("");
    };
    ($strategy_note:literal) => {
        #[doc = concat!(
            "Under which subject the schema is registered. Default is\n",
            "[`SubjectNameStrategy::TopicName`](crate::serialization::registry::SubjectNameStrategy::TopicName)",
            $strategy_note,
            "."
        )]
        pub fn subject_name_strategy(
            mut self,
            strategy: $crate::serialization::registry::SubjectNameStrategy,
        ) -> Self {
            self.resolver.config.subject_name_strategy = strategy;
            self
        }

        /// Whether to register the schema on first use (`auto.register.schemas`), or
        /// only look it up. Default is `true`.
        pub fn auto_register(mut self, yes: bool) -> Self {
            self.resolver.config.auto_register = yes;
            self
        }

        /// Whether to write the id of the subject's latest version (`use.latest.version`).
        /// Default is `false`.
        pub fn use_latest_version(mut self, yes: bool) -> Self {
            self.resolver.config.use_latest_version = yes;
            self
        }

        /// All three settings at once.
        pub fn config(mut self, config: $crate::serialization::registry::RegistrySerializerConfig) -> Self {
            self.resolver.config = config;
            self
        }
    };
}
pub(crate) use registry_settings;

/// `auto.register.schemas`, `use.latest.version` and subject name strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct RegistrySerializerConfig {
    /// Under which subject. Default is [`SubjectNameStrategy::TopicName`].
    pub subject_name_strategy: SubjectNameStrategy,
    /// Register the schema on first use (`auto.register.schemas`); otherwise look
    /// it up among the subject's versions and fail if it is not there. Default is
    /// `true`.
    pub auto_register: bool,
    /// Use the id of the subject's latest version instead of registering or looking
    /// up (`use.latest.version`). herald still writes with its own schema, so the
    /// latest must read what it writes. Default is `false`.
    pub use_latest_version: bool,
}

impl RegistrySerializerConfig {
    /// The settings Confluent's serializer properties in a producer's configuration
    /// give the key's (`is_key`) or the value's serializer: `auto.register.schemas`,
    /// `use.latest.version`, and `key.subject.name.strategy` or
    /// `value.subject.name.strategy`. Pass it to a registry serializer's `config`.
    ///
    /// ```
    /// # fn demo() -> Result<(), herald::Error> {
    /// use herald::serialization::registry::{RegistrySerializerConfig, SubjectNameStrategy};
    ///
    /// let mut config = herald::ProducerConfig::default();
    /// config.set("auto.register.schemas", "false")?;
    /// config.set("value.subject.name.strategy", "io.confluent.kafka.serializers.subject.RecordNameStrategy")?;
    /// let value = RegistrySerializerConfig::from_config(&config, false);
    /// assert!(!value.auto_register);
    /// assert_eq!(value.subject_name_strategy, SubjectNameStrategy::RecordName);
    /// assert_eq!(RegistrySerializerConfig::from_config(&config, true).subject_name_strategy, SubjectNameStrategy::TopicName);
    /// # Ok(()) }
    /// ```
    pub fn from_config(config: &crate::ProducerConfig, is_key: bool) -> RegistrySerializerConfig {
        let s = &config.serializers;
        let strategy = if is_key { &s.key_subject_name_strategy } else { &s.value_subject_name_strategy };
        RegistrySerializerConfig {
            // ProducerConfig::set accepts these three names only.
            subject_name_strategy: match strategy.as_str() {
                "RecordNameStrategy" => SubjectNameStrategy::RecordName,
                "TopicRecordNameStrategy" => SubjectNameStrategy::TopicRecordName,
                _ => SubjectNameStrategy::TopicName,
            },
            auto_register: s.auto_register_schemas,
            use_latest_version: s.use_latest_version,
        }
    }
}

impl Default for RegistrySerializerConfig {
    fn default() -> Self {
        RegistrySerializerConfig {
            subject_name_strategy: SubjectNameStrategy::TopicName,
            auto_register: true,
            use_latest_version: false,
        }
    }
}

/// Finds (once per subject) the schema id a registry serializer writes.
#[cfg_attr(not(any(feature = "avro", feature = "protobuf", feature = "json-schema")), allow(dead_code))]
pub(crate) struct SchemaIdResolver {
    pub(crate) client: SchemaRegistryClient,
    pub(crate) config: RegistrySerializerConfig,
    ids: Mutex<HashMap<String, i32>>,
}

impl fmt::Debug for SchemaIdResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaIdResolver")
            .field("client", &self.client)
            .field("config", &self.config)
            .finish()
    }
}

#[cfg_attr(not(any(feature = "avro", feature = "protobuf", feature = "json-schema")), allow(dead_code))]
impl SchemaIdResolver {
    pub(crate) fn new(client: SchemaRegistryClient) -> SchemaIdResolver {
        SchemaIdResolver { client, config: RegistrySerializerConfig::default(), ids: Mutex::default() }
    }

    /// The id to write for `schema` in this record, asking the registry on first
    /// use of each subject.
    pub(crate) async fn id(
        &self,
        ctx: &SerializationContext<'_>,
        record_name: Option<&str>,
        schema: &Schema,
    ) -> Result<i32> {
        let Some(subject) = self.config.subject_name_strategy.subject(ctx.topic(), ctx.is_key(), record_name)
        else {
            return Err(ctx.error(format!(
                "{:?} needs a record name, and the schema is not a named type",
                self.config.subject_name_strategy
            )));
        };
        if let Some(id) = self.ids.lock().get(&subject) {
            return Ok(*id);
        }
        let id = if self.config.use_latest_version {
            self.client.latest(&subject).await.map(|r| r.id)
        } else if self.config.auto_register {
            self.client.register(&subject, schema).await
        } else {
            self.client.lookup(&subject, schema).await.map(|r| r.id)
        }
        .map_err(|e| e.with_topic(ctx.topic(), None))?;
        self.ids.lock().insert(subject, id);
        Ok(id)
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
