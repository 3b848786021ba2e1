//! Producer settings: every default in one place, the Kafka property names a Java
//! or librdkafka config uses, and one [`ProducerConfig::validate`] that checks
//! settings against each other.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::partitioner::NullKeyPartitioning;
use crate::security::SecurityConfig;

/// How many replicas must have a record before the broker acknowledges it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Acks {
    /// `acks=0`: the broker does not answer; a record counts as sent once written
    /// to the socket, and gets no offset. Records can be lost silently.
    None,
    /// `acks=1`: the partition leader has written the record. Lost if the leader
    /// dies before followers copy it.
    Leader,
    /// `acks=all` (or `-1`): every in-sync replica has the record. Kafka's default.
    #[default]
    All,
}

impl Acks {
    /// The value of the `acks` field in a Produce request.
    pub(crate) fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    fn parse(v: &str) -> Option<Acks> {
        match v.trim().to_ascii_lowercase().as_str() {
            "0" => Some(Acks::None),
            "1" => Some(Acks::Leader),
            "all" | "-1" => Some(Acks::All),
            _ => None,
        }
    }
}

impl fmt::Display for Acks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        })
    }
}

/// How records are compressed, per batch (`compression.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// No compression (Kafka's default).
    #[default]
    None,
    /// gzip, at `compression.gzip.level`.
    Gzip,
    /// snappy (xerial framing, as the Java producer writes it).
    Snappy,
    /// lz4 frames (KIP-57), at `compression.lz4.level`.
    Lz4,
    /// zstd, at `compression.zstd.level`.
    Zstd,
}

impl Compression {
    /// The setting that compresses with `codec` (`None`: uncompressed).
    #[cfg(feature = "mock")]
    pub(crate) fn from_codec(codec: Option<crate::compression::Codec>) -> Compression {
        use crate::compression::Codec;
        match codec {
            None => Compression::None,
            Some(Codec::Gzip { .. }) => Compression::Gzip,
            Some(Codec::Snappy) => Compression::Snappy,
            Some(Codec::Lz4 { .. }) => Compression::Lz4,
            Some(Codec::Zstd { .. }) => Compression::Zstd,
        }
    }

    fn parse(v: &str) -> std::result::Result<Compression, String> {
        match v.trim().to_ascii_lowercase().as_str() {
            "none" | "" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "snappy" => Ok(Compression::Snappy),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            _ => Err("expected one of none, gzip, snappy, lz4, zstd".to_owned()),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        })
    }
}

/// Which built-in partitioner is used (Java's `partitioner.class`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum BuiltInPartitioner {
    /// murmur2 for keys, [`NullKeyPartitioning`] for null keys.
    #[default]
    Default,
    /// Java's `RoundRobinPartitioner`: every record round-robin, keys ignored.
    RoundRobin,
    /// Java's `UniformStickyPartitioner`: every record sticky, keys ignored.
    UniformSticky,
}

static PRODUCER_COUNT: AtomicU64 = AtomicU64::new(1);

/// Every producer setting, with Kafka 4.x's producer defaults.
///
/// Build one with [`ProducerBuilder`](crate::ProducerBuilder); read one back from
/// [`Producer::config`](crate::Producer::config).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ProducerConfig {
    /// `bootstrap.servers`: `host:port` pairs to learn the cluster from. Required.
    pub bootstrap_servers: Vec<String>,
    /// `client.id`; default `herald-producer-N`.
    pub client_id: String,
    /// `acks`; default all.
    pub acks: Acks,
    /// `linger.ms`; default 5 ms.
    pub linger: Duration,
    /// `batch.size` in bytes; default 16384. 0 sends each record in a batch of its own.
    pub batch_size: usize,
    /// `max.request.size` in bytes; default 1048576.
    pub max_request_size: usize,
    /// `request.timeout.ms`; default 30 s.
    pub request_timeout: Duration,
    /// `delivery.timeout.ms`; default 120 s.
    pub delivery_timeout: Duration,
    /// `retries`; default 2147483647 (bounded in time by `delivery.timeout.ms`).
    pub retries: u32,
    /// `retry.backoff.ms`; default 100 ms.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`; default 1000 ms.
    pub retry_backoff_max: Duration,
    /// `metadata.max.age.ms`; default 300 s.
    pub metadata_max_age: Duration,
    /// `max.block.ms`: how long `send` waits for metadata; default 60 s.
    pub max_block: Duration,
    /// `max.in.flight.requests.per.connection`; default 5.
    pub max_in_flight: usize,
    /// `enable.idempotence`; default true, as in Java. Set it explicitly and a
    /// conflicting setting (acks other than all, retries 0, more than 5 requests in
    /// flight) is an error; leave it unset and such a setting turns it off, as in
    /// Java.
    pub enable_idempotence: bool,
    /// Whether `enable.idempotence` was set by the user (see above).
    pub(crate) idempotence_explicit: bool,
    /// `transactional.id`: set, the producer is transactional (KIP-98) and
    /// idempotent; default unset.
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`: how long the transaction coordinator lets a
    /// transaction stay open before aborting it; default 60 s.
    pub transaction_timeout: Duration,
    /// `buffer.memory` in bytes: the most the producer holds for records not yet
    /// resolved; default 33554432 (32 MiB).
    pub buffer_memory: usize,
    /// `compression.type`; default none.
    pub compression: Compression,
    /// `compression.gzip.level`: 1-9, or -1 for zlib's default (6); default -1.
    pub compression_gzip_level: i32,
    /// `compression.lz4.level`: 1-17; default 9, which (as in kafka-clients) selects the
    /// fast compressor; any other level selects high compression (liblz4 caps it at 12).
    pub compression_lz4_level: i32,
    /// `compression.zstd.level`: -131072 to 22; default 3.
    pub compression_zstd_level: i32,
    /// `reconnect.backoff.ms`; default 50 ms.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`; default 1000 ms.
    pub reconnect_backoff_max: Duration,
    /// `socket.connection.setup.timeout.ms`; default 10 s.
    pub connection_setup_timeout: Duration,
    /// Where null-key records go with the built-in partitioner; default round-robin.
    pub null_key_partitioning: NullKeyPartitioning,
    /// `partitioner.ignore.keys`; default false.
    pub partitioner_ignore_keys: bool,
    /// `security.protocol`, `ssl.*` and `sasl.*`: TLS and SASL. Default PLAINTEXT.
    /// Its `Debug` masks passwords, keys and tokens.
    pub security: SecurityConfig,
    pub(crate) builtin_partitioner: BuiltInPartitioner,
    /// Whether `delivery.timeout.ms` was set as a property: Java raises one left
    /// unset to `linger.ms + request.timeout.ms`, and refuses one set below it.
    pub(crate) delivery_timeout_explicit: bool,
    /// Whether `reconnect.backoff.max.ms` was set as a property: Java makes the
    /// reconnect backoff constant when only `reconnect.backoff.ms` is set.
    pub(crate) reconnect_backoff_max_explicit: bool,
    /// The properties set that have no effect in herald, logged once when the
    /// producer is built ([`finish`](Self::finish)).
    pub(crate) no_effect: Vec<&'static str>,
    /// librdkafka's `statistics.interval.ms`: how often the statistics callback
    /// gets a JSON document (`docs/statistics.md`); zero (the default) for never.
    pub statistics_interval: Duration,
    /// The statistics callback (`ProducerBuilder::statistics`).
    pub(crate) statistics_callback: Option<StatisticsCallback>,
    /// `enable.metrics.push`: push the producer's metrics to brokers that ask
    /// for them (KIP-714 client telemetry). Default true, as in Java.
    pub enable_metrics_push: bool,
    /// Confluent's Schema Registry serializer settings (`schema.registry.url`,
    /// `basic.auth.*`, `auto.register.schemas`, …), kept for the program that builds
    /// its registry client and serializers from the same properties. The producer
    /// itself only carries bytes. Its `Debug` masks `basic.auth.user.info`.
    pub serializers: SerializerSettings,
}

/// Confluent's Schema Registry serializer settings, as a Java producer's
/// properties give them to `KafkaAvroSerializer`, `KafkaProtobufSerializer` and
/// `KafkaJsonSchemaSerializer`. herald's producer records carry bytes: these
/// settings take effect where the program builds its serializers, through
/// `SchemaRegistryClient::from_config` and `RegistrySerializerConfig::from_config`
/// (feature `schema-registry`), and in the CLI's `--key-format`/`--value-format`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SerializerSettings {
    /// `schema.registry.url`: the registry's URLs, comma-separated (herald's
    /// client uses the first). Empty when unset.
    pub schema_registry_url: Vec<String>,
    /// `basic.auth.credentials.source`: `URL` (credentials in the URL, the
    /// default) or `USER_INFO` (`basic.auth.user.info`).
    pub basic_auth_credentials_source: String,
    /// `basic.auth.user.info`: `user:password`, used when the source is `USER_INFO`.
    /// Never shown in `Debug`, errors or logs.
    pub basic_auth_user_info: String,
    /// `auto.register.schemas`; default true.
    pub auto_register_schemas: bool,
    /// `use.latest.version`; default false.
    pub use_latest_version: bool,
    /// `key.subject.name.strategy`: Confluent's class name, short
    /// (`TopicNameStrategy`, `RecordNameStrategy`, `TopicRecordNameStrategy`).
    pub key_subject_name_strategy: String,
    /// `value.subject.name.strategy`, as `key_subject_name_strategy`.
    pub value_subject_name_strategy: String,
    /// The Confluent serializer class named by `key.serializer`, if any (short name).
    pub key_serializer: Option<String>,
    /// The Confluent serializer class named by `value.serializer`, if any (short name).
    pub value_serializer: Option<String>,
}

impl Default for SerializerSettings {
    fn default() -> SerializerSettings {
        SerializerSettings {
            schema_registry_url: Vec::new(),
            basic_auth_credentials_source: "URL".to_owned(), // Confluent: basic.auth.credentials.source=URL
            basic_auth_user_info: String::new(),
            auto_register_schemas: true, // Confluent: auto.register.schemas=true
            use_latest_version: false,   // Confluent: use.latest.version=false
            key_subject_name_strategy: "TopicNameStrategy".to_owned(),
            value_subject_name_strategy: "TopicNameStrategy".to_owned(),
            key_serializer: None,
            value_serializer: None,
        }
    }
}

impl fmt::Debug for SerializerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // URLs may carry credentials (`https://user:password@host`).
        let urls: Vec<String> = self.schema_registry_url.iter().map(|u| url_without_credentials(u)).collect();
        let user_info = if self.basic_auth_user_info.is_empty() { "" } else { "***" };
        f.debug_struct("SerializerSettings")
            .field("schema_registry_url", &urls)
            .field("basic_auth_credentials_source", &self.basic_auth_credentials_source)
            .field("basic_auth_user_info", &user_info)
            .field("auto_register_schemas", &self.auto_register_schemas)
            .field("use_latest_version", &self.use_latest_version)
            .field("key_subject_name_strategy", &self.key_subject_name_strategy)
            .field("value_subject_name_strategy", &self.value_subject_name_strategy)
            .field("key_serializer", &self.key_serializer)
            .field("value_serializer", &self.value_serializer)
            .finish()
    }
}

/// `url` with any `user:password@` replaced by `***@`.
fn url_without_credentials(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) if scheme.is_empty() => format!("***@{}", &rest[at + 1..]),
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// Confluent's subject name strategies, by short class name.
const SUBJECT_NAME_STRATEGIES: &[&str] =
    &["TopicNameStrategy", "RecordNameStrategy", "TopicRecordNameStrategy"];

/// `key.subject.name.strategy` / `value.subject.name.strategy`: one of Confluent's
/// strategies, by full (`io.confluent.kafka.serializers.subject.…`) or short name.
fn subject_name_strategy(v: &str) -> std::result::Result<String, String> {
    let short = v.strip_prefix("io.confluent.kafka.serializers.subject.").unwrap_or(v);
    if SUBJECT_NAME_STRATEGIES.contains(&short) {
        Ok(short.to_owned())
    } else {
        Err(format!(
            "{JAVA_CLASS}; the strategies herald's registry serializers have are Confluent's \
             io.confluent.kafka.serializers.subject.{} (SubjectNameStrategy)",
            SUBJECT_NAME_STRATEGIES.join(", ")
        ))
    }
}

/// Confluent's Schema Registry serializers, whose settings herald keeps in
/// [`SerializerSettings`]: the short name of `v`, if it is one of them.
fn confluent_serializer(v: &str) -> Option<&'static str> {
    let (package, class) = v.rsplit_once('.')?;
    if !package.starts_with("io.confluent.kafka.serializers") {
        return None;
    }
    ["KafkaAvroSerializer", "KafkaProtobufSerializer", "KafkaJsonSchemaSerializer"]
        .into_iter()
        .find(|c| *c == class)
}

/// The callback of `statistics.interval.ms`, given each statistics document.
#[derive(Clone)]
pub(crate) struct StatisticsCallback(pub(crate) std::sync::Arc<dyn Fn(String) + Send + Sync>);

impl fmt::Debug for StatisticsCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StatisticsCallback")
    }
}

/// Kafka's `delivery.timeout.ms` default.
const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_millis(120_000);

impl Default for ProducerConfig {
    fn default() -> ProducerConfig {
        ProducerConfig {
            bootstrap_servers: Vec::new(),
            client_id: String::new(),
            acks: Acks::All,                                  // Kafka: acks=all
            linger: Duration::from_millis(5),                 // Kafka 4.0+: linger.ms=5
            batch_size: 16_384,                               // Kafka: batch.size=16384
            max_request_size: 1_048_576,                      // Kafka: max.request.size=1048576
            request_timeout: Duration::from_millis(30_000),   // Kafka: request.timeout.ms=30000
            delivery_timeout: DEFAULT_DELIVERY_TIMEOUT,       // Kafka: delivery.timeout.ms=120000
            retries: i32::MAX as u32,                         // Kafka: retries=2147483647
            retry_backoff: Duration::from_millis(100),        // Kafka: retry.backoff.ms=100
            retry_backoff_max: Duration::from_millis(1_000),  // Kafka: retry.backoff.max.ms=1000
            metadata_max_age: Duration::from_millis(300_000), // Kafka: metadata.max.age.ms=300000
            max_block: Duration::from_millis(60_000),         // Kafka: max.block.ms=60000
            max_in_flight: 5,         // Kafka: max.in.flight.requests.per.connection=5
            enable_idempotence: true, // Kafka: enable.idempotence=true
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
            idempotence_explicit: false,
            buffer_memory: 33_554_432,      // Kafka: buffer.memory=33554432
            compression: Compression::None, // Kafka: compression.type=none
            compression_gzip_level: -1,     // Kafka: compression.gzip.level=-1
            compression_lz4_level: 9,       // Kafka: compression.lz4.level=9
            compression_zstd_level: 3,      // Kafka: compression.zstd.level=3
            reconnect_backoff: Duration::from_millis(50), // Kafka: reconnect.backoff.ms=50
            reconnect_backoff_max: Duration::from_millis(1_000), // Kafka: reconnect.backoff.max.ms=1000
            connection_setup_timeout: Duration::from_millis(10_000), // Kafka: socket.connection.setup.timeout.ms=10000
            null_key_partitioning: NullKeyPartitioning::RoundRobin, // Kafka: sticky (KIP-794); herald: round-robin (README, "Partitions")
            partitioner_ignore_keys: false,                         // Kafka: partitioner.ignore.keys=false
            security: SecurityConfig::default(),                    // Kafka: security.protocol=PLAINTEXT
            builtin_partitioner: BuiltInPartitioner::Default,
            delivery_timeout_explicit: false,
            reconnect_backoff_max_explicit: false,
            no_effect: Vec::new(),
            statistics_interval: Duration::ZERO, // librdkafka: statistics.interval.ms=0
            statistics_callback: None,
            enable_metrics_push: true, // Kafka: enable.metrics.push=true
            serializers: SerializerSettings::default(),
        }
    }
}

/// What setting a property does in herald.
#[derive(Clone, Copy)]
pub(crate) enum Effect {
    /// Applied by this function; its error is the reason a value is refused.
    Set(fn(&mut ProducerConfig, &str) -> std::result::Result<(), String>),
    /// A security property, applied by [`SecurityConfig`]; its value is never
    /// echoed (it may be a password or a key).
    Security,
    /// Accepted with no effect in herald, for this reason (logged once per
    /// producer build). The function checks the value as Java does; its error is
    /// the reason a value is refused.
    Ignored(fn(&str) -> std::result::Result<(), String>, &'static str),
    /// Refused, for this reason, unless the function says the value asks for
    /// nothing herald does not do (an empty list of interceptors, say).
    Unsupported(fn(&str) -> bool, &'static str),
}

/// One property, declared once: its Java name, librdkafka's names for it, its
/// default, what it does, and how a value is applied. `set`, the "did you mean"
/// suggestions, [`properties`] and the table in `docs/properties.md` all read
/// [`PROPERTIES`].
pub(crate) struct Property {
    pub(crate) name: &'static str,
    pub(crate) aliases: &'static [&'static str],
    /// The default, as a value `set` accepts ("" for none): Java's, except where
    /// `herald/tests/producer_config_java.rs` lists why herald's differs.
    pub(crate) default: &'static str,
    pub(crate) doc: &'static str,
    pub(crate) effect: Effect,
}

const fn prop(name: &'static str, default: &'static str, doc: &'static str, effect: Effect) -> Property {
    Property { name, aliases: &[], default, doc, effect }
}

const fn aka(
    name: &'static str,
    aliases: &'static [&'static str],
    default: &'static str,
    doc: &'static str,
    effect: Effect,
) -> Property {
    Property { name, aliases, default, doc, effect }
}

/// A property accepted without effect, its value checked by `check`.
const fn ignored(
    name: &'static str,
    default: &'static str,
    check: fn(&str) -> std::result::Result<(), String>,
    why: &'static str,
) -> Property {
    Property { name, aliases: &[], default, doc: "", effect: Effect::Ignored(check, why) }
}

/// A property refused whatever its value.
const fn refused(name: &'static str, default: &'static str, why: &'static str) -> Property {
    Property { name, aliases: &[], default, doc: "", effect: Effect::Unsupported(|_| false, why) }
}

/// A property refused unless `harmless` accepts the value.
const fn refused_unless(
    name: &'static str,
    default: &'static str,
    harmless: fn(&str) -> bool,
    why: &'static str,
) -> Property {
    Property { name, aliases: &[], default, doc: "", effect: Effect::Unsupported(harmless, why) }
}

const SECRET: Effect = Effect::Security;

/// The largest Java `int`.
const INT_MAX: i64 = i32::MAX as i64;

const SERIALIZERS: &str = "herald records carry bytes (Java's ByteArraySerializer); in code, \
     herald::serialization's serializers (String, Integer, Long, Uuid, JSON, Avro, Protobuf, JSON Schema, \
     as Java's built-in ones byte for byte) turn typed values into those bytes. Confluent's \
     KafkaAvroSerializer, KafkaProtobufSerializer and KafkaJsonSchemaSerializer are accepted with \
     schema.registry.url: build herald's AvroSerializer, ProtobufSerializer or JsonSchemaSerializer with \
     SchemaRegistryClient::from_config and RegistrySerializerConfig::from_config (the CLI: --value-format)";
const METRICS: &str = "herald keeps no Java metrics registry; its outcomes are in each record's \
     delivery result and its events in tracing logs";
const KERBEROS: &str = "used by SASL GSSAPI (Kerberos) only, which herald does not support \
     (sasl.mechanism=GSSAPI is refused when SASL is used)";
const OAUTH_LOGIN: &str = "used by Java's OAUTHBEARER JWT-bearer assertions and broker-side token \
     validation; herald's OIDC login uses the client-credentials grant (sasl.oauthbearer.token.endpoint.url), \
     or tokens come from ProducerBuilder::oauthbearer_token_provider";
const OAUTH_REFRESH: &str = "Java's OAUTHBEARER token refresh timing; herald asks its token \
     callback or token endpoint again once a cached token is past 80% of its life, and at every \
     re-authentication (KIP-368)";
const JSSE: &str = "a setting of Java's TLS implementation (JSSE); herald's TLS is rustls, which \
     verifies certificates against ssl.truststore.* as PKIX does";
const JAVA_CLASS: &str = "herald cannot load Java classes";

/// Every property herald knows, Java's names first, in the order of the docs
/// table: supported, security, accepted without effect, refused.
pub(crate) const PROPERTIES: &[Property] = &[
    aka(
        "bootstrap.servers",
        &["metadata.broker.list"],
        "",
        "`host:port` pairs to learn the cluster from; required.",
        Effect::Set(|c, v| {
            c.bootstrap_servers =
                v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
            Ok(())
        }),
    ),
    prop(
        "client.id",
        "",
        "The id brokers log for this client; default `herald-producer-N`.",
        Effect::Set(|c, v| {
            c.client_id = v.to_owned();
            Ok(())
        }),
    ),
    aka(
        "acks",
        &["request.required.acks"],
        "all",
        "Replicas that must have a record before it counts as written: `0`, `1`, `all` (`-1`).",
        Effect::Set(|c, v| {
            c.acks = Acks::parse(v).ok_or("expected all, -1, 0 or 1")?;
            Ok(())
        }),
    ),
    aka(
        "linger.ms",
        &["queue.buffering.max.ms"],
        "5",
        "How long a batch waits for more records before it is sent.",
        Effect::Set(|c, v| {
            c.linger = ms_long(v)?;
            Ok(())
        }),
    ),
    prop(
        "batch.size",
        "16384",
        "Bytes at which a partition's batch is sent without waiting for `linger.ms`.",
        Effect::Set(|c, v| {
            c.batch_size = int(v, 0, INT_MAX)? as usize;
            Ok(())
        }),
    ),
    aka(
        "max.request.size",
        &["message.max.bytes"],
        "1048576",
        "The largest request, and so the largest record.",
        Effect::Set(|c, v| {
            c.max_request_size = int(v, 0, INT_MAX)? as usize;
            Ok(())
        }),
    ),
    prop(
        "request.timeout.ms",
        "30000",
        "How long to wait for a broker's answer before the request is retried.",
        Effect::Set(|c, v| {
            c.request_timeout = ms_int(v)?;
            Ok(())
        }),
    ),
    aka(
        "delivery.timeout.ms",
        &["message.timeout.ms"],
        "120000",
        "The longest a record may take from `send` to its outcome, retries included. Left unset, it is \
         raised to `linger.ms` + `request.timeout.ms` if below; set below that, it is an error (as in Java).",
        Effect::Set(|c, v| {
            c.delivery_timeout = ms_int(v)?;
            c.delivery_timeout_explicit = true;
            Ok(())
        }),
    ),
    prop(
        "retries",
        "2147483647",
        "Retries of a batch after retriable errors (bounded by `delivery.timeout.ms`).",
        Effect::Set(|c, v| {
            c.retries = int(v, 0, INT_MAX)? as u32;
            Ok(())
        }),
    ),
    prop(
        "retry.backoff.ms",
        "100",
        "The first wait before a retry; doubled per retry (KIP-580).",
        Effect::Set(|c, v| {
            c.retry_backoff = ms_long(v)?;
            Ok(())
        }),
    ),
    prop(
        "retry.backoff.max.ms",
        "1000",
        "The longest wait between retries; below `retry.backoff.ms`, every retry waits this long (as in Java).",
        Effect::Set(|c, v| {
            c.retry_backoff_max = ms_long(v)?;
            Ok(())
        }),
    ),
    prop(
        "metadata.max.age.ms",
        "300000",
        "How often metadata is refreshed without errors.",
        Effect::Set(|c, v| {
            c.metadata_max_age = ms_long(v)?;
            Ok(())
        }),
    ),
    prop(
        "statistics.interval.ms",
        "0",
        "librdkafka's: how often the callback of `ProducerBuilder::statistics` gets a JSON document of the \
         producer's statistics (librdkafka's fields, see `docs/statistics.md`); 0 for never. Without a \
         callback it has no effect.",
        Effect::Set(|c, v| {
            c.statistics_interval = ms_long(v)?;
            Ok(())
        }),
    ),
    prop(
        "max.block.ms",
        "60000",
        "How long `send` waits for metadata and buffer room.",
        Effect::Set(|c, v| {
            c.max_block = ms_long(v)?;
            Ok(())
        }),
    ),
    prop(
        "max.in.flight.requests.per.connection",
        "5",
        "Requests sent to one broker before waiting for answers.",
        Effect::Set(|c, v| {
            c.max_in_flight = int(v, 1, INT_MAX)? as usize;
            Ok(())
        }),
    ),
    prop(
        "enable.idempotence",
        "true",
        "Retries never duplicate or reorder records (KIP-98); set explicitly, a conflicting setting is an error.",
        Effect::Set(|c, v| {
            c.enable_idempotence = parse_bool(v)?;
            c.idempotence_explicit = true;
            Ok(())
        }),
    ),
    prop(
        "transactional.id",
        "",
        "Makes the producer transactional (KIP-98): `init_transactions`, then `begin_transaction`, sends, \
         `commit_transaction` or `abort_transaction`; implies idempotence. A newer producer with the same id \
         fences this one.",
        Effect::Set(|c, v| {
            if v.is_empty() {
                return Err(
                    "must be non-empty (leave it unset for a producer that is not transactional)".into()
                );
            }
            c.transactional_id = Some(v.to_owned());
            Ok(())
        }),
    ),
    prop(
        "transaction.timeout.ms",
        "60000",
        "How long the transaction coordinator lets a transaction stay open before aborting it.",
        Effect::Set(|c, v| {
            c.transaction_timeout = ms_int(v)?;
            Ok(())
        }),
    ),
    prop(
        "buffer.memory",
        "33554432",
        "The most bytes held for records not yet resolved; beyond it `send` waits.",
        Effect::Set(|c, v| {
            c.buffer_memory = usize::try_from(long(v, 0, i64::MAX)?).unwrap_or(usize::MAX);
            Ok(())
        }),
    ),
    aka(
        "compression.type",
        &["compression.codec"],
        "none",
        "`none`, `gzip`, `snappy`, `lz4` or `zstd`, per batch.",
        Effect::Set(|c, v| {
            c.compression = Compression::parse(v)?;
            Ok(())
        }),
    ),
    prop(
        "compression.gzip.level",
        "-1",
        "1-9, or -1 for zlib's default (6).",
        Effect::Set(|c, v| {
            c.compression_gzip_level = int(v, i64::from(i32::MIN), INT_MAX)? as i32;
            Ok(())
        }),
    ),
    prop(
        "compression.lz4.level",
        "9",
        "1-17; 9 is the fast compressor (as in kafka-clients), others high compression.",
        Effect::Set(|c, v| {
            c.compression_lz4_level = int(v, i64::from(i32::MIN), INT_MAX)? as i32;
            Ok(())
        }),
    ),
    prop(
        "compression.zstd.level",
        "3",
        "-131072 to 22.",
        Effect::Set(|c, v| {
            c.compression_zstd_level = int(v, i64::from(i32::MIN), INT_MAX)? as i32;
            Ok(())
        }),
    ),
    prop(
        "reconnect.backoff.ms",
        "50",
        "The first wait before reconnecting to a broker; doubled per failure. Set without \
         `reconnect.backoff.max.ms`, every reconnect waits this long (as in Java).",
        Effect::Set(|c, v| {
            c.reconnect_backoff = ms_long(v)?;
            if !c.reconnect_backoff_max_explicit {
                c.reconnect_backoff_max = c.reconnect_backoff;
            }
            Ok(())
        }),
    ),
    prop(
        "reconnect.backoff.max.ms",
        "1000",
        "The longest wait before reconnecting.",
        Effect::Set(|c, v| {
            c.reconnect_backoff_max = ms_long(v)?;
            c.reconnect_backoff_max_explicit = true;
            Ok(())
        }),
    ),
    prop(
        "socket.connection.setup.timeout.ms",
        "10000",
        "How long one connection attempt (TCP, TLS, SASL) may take.",
        Effect::Set(|c, v| {
            c.connection_setup_timeout = ms_long(v)?;
            Ok(())
        }),
    ),
    prop(
        "partitioner.class",
        "",
        "Java's built-in partitioners by class name: `org.apache.kafka.clients.producer.RoundRobinPartitioner`, \
         and Kafka 3.x's `…internals.DefaultPartitioner` and `…UniformStickyPartitioner` (short names too); \
         `ProducerBuilder::partitioner` plugs in your own.",
        Effect::Set(|c, v| {
            let (partitioner, null_keys) = match v {
                "" => (BuiltInPartitioner::Default, c.null_key_partitioning),
                "org.apache.kafka.clients.producer.RoundRobinPartitioner" | "RoundRobinPartitioner" => {
                    (BuiltInPartitioner::RoundRobin, c.null_key_partitioning)
                }
                // Kafka 3.x's, removed in 4.0 (KIP-794): keys by murmur2, null keys sticky.
                "org.apache.kafka.clients.producer.internals.DefaultPartitioner" | "DefaultPartitioner" => {
                    (BuiltInPartitioner::Default, NullKeyPartitioning::UniformSticky)
                }
                "org.apache.kafka.clients.producer.UniformStickyPartitioner" | "UniformStickyPartitioner" => {
                    (BuiltInPartitioner::UniformSticky, c.null_key_partitioning)
                }
                _ => {
                    return Err(format!(
                        "{JAVA_CLASS}; the built-in ones are org.apache.kafka.clients.producer.RoundRobinPartitioner \
                         and Kafka 3.x's DefaultPartitioner and UniformStickyPartitioner, and \
                         ProducerBuilder::partitioner plugs in your own (a herald::Partitioner)"
                    ));
                }
            };
            c.builtin_partitioner = partitioner;
            c.null_key_partitioning = null_keys;
            Ok(())
        }),
    ),
    prop(
        "partitioner.ignore.keys",
        "false",
        "Partition keyed records as if they had no key.",
        Effect::Set(|c, v| {
            c.partitioner_ignore_keys = parse_bool(v)?;
            Ok(())
        }),
    ),
    prop(
        "herald.null.key.partitioning",
        "round-robin",
        "Where records without a key go: `round-robin` (the README's rule) or `sticky` (KIP-794).",
        Effect::Set(|c, v| {
            c.null_key_partitioning = match v.to_ascii_lowercase().as_str() {
                "round-robin" | "round_robin" | "roundrobin" => NullKeyPartitioning::RoundRobin,
                "sticky" | "uniform-sticky" | "uniform_sticky" => NullKeyPartitioning::UniformSticky,
                _ => return Err("expected round-robin or sticky".into()),
            };
            Ok(())
        }),
    ),
    prop("security.protocol", "PLAINTEXT", "`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.", SECRET),
    aka(
        "sasl.mechanism",
        &["sasl.mechanisms"],
        "",
        "`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or `OAUTHBEARER`; others (Java's default `GSSAPI`) are \
         refused when SASL is used.",
        SECRET,
    ),
    prop(
        "sasl.jaas.config",
        "",
        "The login module line; herald reads its `username` and `password` (checked when SASL is used).",
        SECRET,
    ),
    prop("sasl.username", "", "librdkafka's user name for PLAIN and SCRAM.", SECRET),
    prop("sasl.password", "", "librdkafka's password for PLAIN and SCRAM.", SECRET),
    prop(
        "ssl.truststore.type",
        "PEM",
        "PEM only: another type (Java's default `JKS`) is refused when TLS is used with a truststore.",
        SECRET,
    ),
    aka(
        "ssl.truststore.location",
        &["ssl.ca.location"],
        "",
        "A PEM file of CA certificates; default Mozilla's roots.",
        SECRET,
    ),
    aka("ssl.truststore.certificates", &["ssl.ca.pem"], "", "CA certificates, inline PEM.", SECRET),
    prop(
        "ssl.truststore.password",
        "",
        "Must be empty when TLS uses a truststore: stores are unencrypted PEM.",
        SECRET,
    ),
    prop(
        "ssl.keystore.type",
        "PEM",
        "PEM only: another type (Java's default `JKS`) is refused when TLS is used with a keystore.",
        SECRET,
    ),
    prop(
        "ssl.keystore.location",
        "",
        "One PEM file with the client's key and certificate chain (mTLS).",
        SECRET,
    ),
    aka(
        "ssl.keystore.certificate.chain",
        &["ssl.certificate.pem"],
        "",
        "The client's certificate chain, inline PEM.",
        SECRET,
    ),
    aka("ssl.keystore.key", &["ssl.key.pem"], "", "The client's private key, inline PEM.", SECRET),
    prop(
        "ssl.keystore.password",
        "",
        "Must be empty when TLS uses a keystore: stores are unencrypted PEM.",
        SECRET,
    ),
    prop(
        "ssl.key.password",
        "",
        "Must be empty when TLS uses a client key: keys are unencrypted PEM.",
        SECRET,
    ),
    prop("ssl.certificate.location", "", "librdkafka's client certificate chain file (PEM).", SECRET),
    prop("ssl.key.location", "", "librdkafka's client private key file (PEM).", SECRET),
    prop(
        "ssl.endpoint.identification.algorithm",
        "https",
        "`https` checks the broker's certificate names the host; empty turns that off.",
        SECRET,
    ),
    prop(
        "ssl.enabled.protocols",
        "TLSv1.2,TLSv1.3",
        "TLS versions offered (older ones are left out).",
        SECRET,
    ),
    prop(
        "ssl.protocol",
        "TLSv1.3",
        "`TLS`, `TLSv1.2` or `TLSv1.3`; `ssl.enabled.protocols` chooses the versions.",
        SECRET,
    ),
    prop(
        "ssl.cipher.suites",
        "",
        "Cipher suites by their IANA names; herald offers the ones of its own (rustls's TLS 1.3 and ECDHE \
         AEAD suites) that are named. Empty: all of them.",
        SECRET,
    ),
    // Confluent's Schema Registry serializer settings: kept in SerializerSettings for
    // the program (or the CLI) that builds its registry serializers from them.
    prop(
        "schema.registry.url",
        "",
        "Confluent's: the Schema Registry's URLs, comma-separated; `SchemaRegistryClient::from_config` uses \
         the first (credentials as `http://user:password@host` with `basic.auth.credentials.source=URL`).",
        Effect::Set(|c, v| {
            let urls = list(v)?;
            if let Some(u) = urls.iter().find(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
                return Err(format!(
                    "expected http:// or https:// URLs, not {:?}",
                    url_without_credentials(u)
                ));
            }
            c.serializers.schema_registry_url = urls.into_iter().map(str::to_owned).collect();
            Ok(())
        }),
    ),
    prop(
        "basic.auth.credentials.source",
        "URL",
        "Confluent's: where the registry's basic auth credentials come from: `URL` (the URL's user info) or \
         `USER_INFO` (`basic.auth.user.info`); Confluent's `SASL_INHERIT` is refused.",
        Effect::Set(|c, v| {
            let source = v.to_ascii_uppercase();
            match source.as_str() {
                "URL" | "USER_INFO" => {}
                "SASL_INHERIT" => {
                    return Err("herald does not reuse the Kafka SASL credentials for the registry: use \
                                USER_INFO with basic.auth.user.info"
                        .into());
                }
                _ => return Err("expected URL or USER_INFO".into()),
            }
            c.serializers.basic_auth_credentials_source = source;
            Ok(())
        }),
    ),
    prop(
        "basic.auth.user.info",
        "",
        "Confluent's: `user:password` for the registry, with `basic.auth.credentials.source=USER_INFO`; \
         never echoed.",
        Effect::Set(|c, v| {
            c.serializers.basic_auth_user_info = v.to_owned();
            Ok(())
        }),
    ),
    prop(
        "auto.register.schemas",
        "true",
        "Confluent's: registry serializers register their schema on first use; false, they only look it up.",
        Effect::Set(|c, v| {
            c.serializers.auto_register_schemas = parse_bool(v)?;
            Ok(())
        }),
    ),
    prop(
        "use.latest.version",
        "false",
        "Confluent's: registry serializers write the id of the subject's latest version.",
        Effect::Set(|c, v| {
            c.serializers.use_latest_version = parse_bool(v)?;
            Ok(())
        }),
    ),
    prop(
        "key.subject.name.strategy",
        "TopicNameStrategy",
        "Confluent's `TopicNameStrategy`, `RecordNameStrategy` or `TopicRecordNameStrategy` (full or short \
         class name) for keys.",
        Effect::Set(|c, v| {
            c.serializers.key_subject_name_strategy = subject_name_strategy(v)?;
            Ok(())
        }),
    ),
    prop(
        "value.subject.name.strategy",
        "TopicNameStrategy",
        "As `key.subject.name.strategy`, for values.",
        Effect::Set(|c, v| {
            c.serializers.value_subject_name_strategy = subject_name_strategy(v)?;
            Ok(())
        }),
    ),
    ignored(
        "latest.compatibility.strict",
        "true",
        |v| parse_bool(v).map(drop),
        "it configures Confluent's Java serializers' check that the latest version is compatible with their \
         schema; herald's registry serializers do not check it: with use.latest.version the latest version \
         must read what herald writes",
    ),
    ignored(
        "normalize.schemas",
        "false",
        |v| parse_bool(v).map(drop),
        "it configures Confluent's Java serializers; herald's registry serializers register schemas as \
         written (a registry set to normalize does so itself)",
    ),
    // Accepted without effect, checked as Java checks them.
    ignored("key.serializer", "", serializer, SERIALIZERS),
    ignored("value.serializer", "", serializer, SERIALIZERS),
    ignored(
        "client.dns.lookup",
        "use_all_dns_ips",
        |v| one_of(v, &["use_all_dns_ips", "resolve_canonical_bootstrap_servers_only"]),
        "herald tries every address a name resolves to, in order (use_all_dns_ips), and never replaces \
         bootstrap names by their canonical names",
    ),
    ignored(
        "metadata.recovery.strategy",
        "rebootstrap",
        |v| one_of_ignore_case(v, &["rebootstrap", "none"]),
        "herald always rebootstraps (KIP-899): when none of the brokers it knows can be reached, it asks \
         bootstrap.servers again, resolving their names anew",
    ),
    ignored(
        "metadata.recovery.rebootstrap.trigger.ms",
        "300000",
        |v| long(v, 0, i64::MAX).map(drop),
        "herald goes back to bootstrap.servers as soon as every broker it knows is unreachable, not after \
         a time without metadata (KIP-1102)",
    ),
    prop(
        "enable.metrics.push",
        "true",
        "Push the producer's metrics to the cluster when a broker asks for them (KIP-714 client \
         telemetry: GetTelemetrySubscriptions, then PushTelemetry in OpenTelemetry form at the interval the \
         broker's subscription sets, and a last one on close). A broker without a client telemetry plugin \
         does not offer these requests and is never asked; one whose subscriptions match no metric of this \
         producer is only asked again at its interval.",
        Effect::Set(|c, v| {
            c.enable_metrics_push = parse_bool(v)?;
            Ok(())
        }),
    ),
    ignored(
        "metric.reporters",
        "org.apache.kafka.common.metrics.JmxReporter",
        |v| list(v).map(drop),
        METRICS,
    ),
    ignored("metrics.num.samples", "2", |v| int(v, 1, INT_MAX).map(drop), METRICS),
    ignored("metrics.recording.level", "INFO", |v| one_of(v, &["INFO", "DEBUG", "TRACE"]), METRICS),
    ignored("metrics.sample.window.ms", "30000", |v| long(v, 0, i64::MAX).map(drop), METRICS),
    ignored(
        "auto.include.jmx.reporter",
        "true",
        |v| parse_bool(v).map(drop),
        "removed in Kafka 4.0 (KIP-830); JMX is Java's",
    ),
    ignored(
        "client.rack",
        "",
        |_| Ok(()),
        "a consumer setting (fetching from the closest replica, KIP-392); producers do not use it",
    ),
    ignored(
        "partitioner.adaptive.partitioning.enable",
        "true",
        |v| parse_bool(v).map(drop),
        "herald's sticky partitioning is uniform, as Java's with this set to false (KIP-794)",
    ),
    ignored(
        "partitioner.availability.timeout.ms",
        "0",
        |v| long(v, 0, i64::MAX).map(drop),
        "adaptive partitioning (KIP-794) is not implemented: herald skips only partitions without a leader",
    ),
    ignored(
        "send.buffer.bytes",
        "131072",
        |v| int(v, -1, INT_MAX).map(drop),
        "herald leaves socket buffer sizes to the operating system (as Java's -1)",
    ),
    ignored(
        "receive.buffer.bytes",
        "32768",
        |v| int(v, -1, INT_MAX).map(drop),
        "herald leaves socket buffer sizes to the operating system (as Java's -1)",
    ),
    ignored(
        "connections.max.idle.ms",
        "540000",
        |v| long(v, i64::MIN, i64::MAX).map(drop),
        "herald keeps its connections open while the producer lives, and reconnects when a broker closes one",
    ),
    ignored(
        "metadata.max.idle.ms",
        "300000",
        |v| long(v, 5000, i64::MAX).map(drop),
        "topics stay in herald's metadata while the producer lives",
    ),
    ignored(
        "socket.connection.setup.timeout.max.ms",
        "30000",
        |v| long(v, i64::MIN, i64::MAX).map(drop),
        "every connection attempt gets socket.connection.setup.timeout.ms; herald does not grow it per failure",
    ),
    ignored("sasl.kerberos.kinit.cmd", "/usr/bin/kinit", |_| Ok(()), KERBEROS),
    ignored(
        "sasl.kerberos.min.time.before.relogin",
        "60000",
        |v| long(v, i64::MIN, i64::MAX).map(drop),
        KERBEROS,
    ),
    ignored("sasl.kerberos.service.name", "", |_| Ok(()), KERBEROS),
    ignored(
        "sasl.kerberos.ticket.renew.jitter",
        "0.05",
        |v| double(v, f64::MIN, f64::MAX).map(drop),
        KERBEROS,
    ),
    ignored(
        "sasl.kerberos.ticket.renew.window.factor",
        "0.8",
        |v| double(v, f64::MIN, f64::MAX).map(drop),
        KERBEROS,
    ),
    prop(
        "sasl.login.connect.timeout.ms",
        "",
        "The OIDC login's connect timeout to the token endpoint; unset or 0 and less: 10 s.",
        SECRET,
    ),
    prop(
        "sasl.login.read.timeout.ms",
        "",
        "The OIDC login's wait for the token endpoint's answer; unset or 0 and less: 30 s.",
        SECRET,
    ),
    prop(
        "sasl.login.retry.backoff.ms",
        "100",
        "The OIDC login's first wait before asking the token endpoint again (doubled each time).",
        SECRET,
    ),
    prop(
        "sasl.login.retry.backoff.max.ms",
        "10000",
        "How long the OIDC login retries a token request that failed to connect or got a 5xx answer.",
        SECRET,
    ),
    ignored("sasl.login.refresh.buffer.seconds", "300", |v| short(v, 0, 3600).map(drop), OAUTH_REFRESH),
    ignored("sasl.login.refresh.min.period.seconds", "60", |v| short(v, 0, 900).map(drop), OAUTH_REFRESH),
    ignored("sasl.login.refresh.window.factor", "0.8", |v| double(v, 0.5, 1.0).map(drop), OAUTH_REFRESH),
    ignored("sasl.login.refresh.window.jitter", "0.05", |v| double(v, 0.0, 0.25).map(drop), OAUTH_REFRESH),
    ignored(
        "sasl.oauthbearer.assertion.algorithm",
        "RS256",
        |v| one_of_ignore_case(v, &["ES256", "RS256"]),
        OAUTH_LOGIN,
    ),
    ignored("sasl.oauthbearer.assertion.claim.aud", "", |_| Ok(()), OAUTH_LOGIN),
    ignored(
        "sasl.oauthbearer.assertion.claim.exp.seconds",
        "300",
        |v| int(v, 0, 86_400).map(drop),
        OAUTH_LOGIN,
    ),
    ignored("sasl.oauthbearer.assertion.claim.iss", "", |_| Ok(()), OAUTH_LOGIN),
    ignored(
        "sasl.oauthbearer.assertion.claim.jti.include",
        "false",
        |v| parse_bool(v).map(drop),
        OAUTH_LOGIN,
    ),
    ignored("sasl.oauthbearer.assertion.claim.nbf.seconds", "60", |v| int(v, 0, 3600).map(drop), OAUTH_LOGIN),
    ignored("sasl.oauthbearer.assertion.claim.sub", "", |_| Ok(()), OAUTH_LOGIN),
    ignored("sasl.oauthbearer.assertion.file", "", |_| Ok(()), OAUTH_LOGIN),
    ignored("sasl.oauthbearer.assertion.private.key.file", "", |_| Ok(()), OAUTH_LOGIN),
    ignored("sasl.oauthbearer.assertion.private.key.passphrase", "", |_| Ok(()), OAUTH_LOGIN),
    ignored("sasl.oauthbearer.assertion.template.file", "", |_| Ok(()), OAUTH_LOGIN),
    aka(
        "sasl.oauthbearer.client.credentials.client.id",
        &["sasl.oauthbearer.client.id"],
        "",
        "The OIDC login's client id (KIP-768); else `sasl.jaas.config`'s `clientId`.",
        SECRET,
    ),
    aka(
        "sasl.oauthbearer.client.credentials.client.secret",
        &["sasl.oauthbearer.client.secret"],
        "",
        "The OIDC login's client secret; else `sasl.jaas.config`'s `clientSecret`.",
        SECRET,
    ),
    ignored(
        "sasl.oauthbearer.clock.skew.seconds",
        "30",
        |v| int(v, i64::from(i32::MIN), INT_MAX).map(drop),
        OAUTH_LOGIN,
    ),
    ignored("sasl.oauthbearer.expected.audience", "", |v| list(v).map(drop), OAUTH_LOGIN),
    ignored("sasl.oauthbearer.expected.issuer", "", |_| Ok(()), OAUTH_LOGIN),
    prop(
        "sasl.oauthbearer.header.urlencode",
        "false",
        "URL-encode the client id and secret in the OIDC login's Basic auth header.",
        SECRET,
    ),
    prop(
        "sasl.oauthbearer.method",
        "default",
        "librdkafka's: `oidc` fetches OAUTHBEARER tokens from `sasl.oauthbearer.token.endpoint.url`; \
         `default` takes them from ProducerBuilder::oauthbearer_token_provider. Unset: `oidc` when a token \
         endpoint is set.",
        SECRET,
    ),
    ignored(
        "sasl.oauthbearer.jwks.endpoint.refresh.ms",
        "3600000",
        |v| long(v, i64::MIN, i64::MAX).map(drop),
        OAUTH_LOGIN,
    ),
    ignored(
        "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
        "10000",
        |v| long(v, i64::MIN, i64::MAX).map(drop),
        OAUTH_LOGIN,
    ),
    ignored(
        "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
        "100",
        |v| long(v, i64::MIN, i64::MAX).map(drop),
        OAUTH_LOGIN,
    ),
    ignored("sasl.oauthbearer.jwks.endpoint.url", "", |_| Ok(()), OAUTH_LOGIN),
    ignored(
        "sasl.oauthbearer.jwt.retriever.class",
        "org.apache.kafka.common.security.oauthbearer.DefaultJwtRetriever",
        java_class_name,
        OAUTH_LOGIN,
    ),
    ignored(
        "sasl.oauthbearer.jwt.validator.class",
        "org.apache.kafka.common.security.oauthbearer.DefaultJwtValidator",
        java_class_name,
        OAUTH_LOGIN,
    ),
    prop(
        "sasl.oauthbearer.scope",
        "",
        "The scope the OIDC login asks for; else `sasl.jaas.config`'s `scope`; none when empty.",
        SECRET,
    ),
    ignored("sasl.oauthbearer.scope.claim.name", "scope", |_| Ok(()), OAUTH_LOGIN),
    ignored("sasl.oauthbearer.sub.claim.name", "sub", |_| Ok(()), OAUTH_LOGIN),
    prop(
        "sasl.oauthbearer.token.endpoint.url",
        "",
        "The OAuth 2.0 / OIDC token endpoint (http or https) the OIDC login (KIP-768) asks for OAUTHBEARER \
         tokens with the client-credentials grant.",
        SECRET,
    ),
    ignored(
        "ssl.keymanager.algorithm",
        "SunX509",
        |v| {
            if v.is_empty() { Ok(()) } else { one_of_ignore_case(v, &["SunX509", "NewSunX509", "PKIX"]) }
                .map_err(|e| format!("{e}: a JSSE key manager herald cannot use"))
        },
        JSSE,
    ),
    ignored(
        "ssl.trustmanager.algorithm",
        "PKIX",
        |v| {
            if v.is_empty() { Ok(()) } else { one_of_ignore_case(v, &["PKIX", "SunX509", "X509", "X.509"]) }
                .map_err(|e| {
                    format!(
                        "{e}: a JSSE trust manager herald cannot use; it checks certificates as PKIX does"
                    )
                })
        },
        JSSE,
    ),
    ignored("ssl.provider", "", |_| Ok(()), JSSE),
    ignored(
        "ssl.secure.random.implementation",
        "",
        |_| Ok(()),
        "herald's TLS takes its randomness from the operating system",
    ),
    ignored(
        "security.providers",
        "",
        |_| Ok(()),
        "Java security provider classes; herald's TLS and SASL mechanisms are its own",
    ),
    // Refused: what herald cannot honour, and what to use instead.
    refused_unless(
        "transaction.two.phase.commit.enable",
        "false",
        |v| parse_bool(v) == Ok(false),
        "two-phase commit (KIP-939: a transaction prepared by one producer and completed by another, \
         with an external transaction manager) is not supported; herald's transactions commit or abort \
         within the producer that began them (false is accepted)",
    ),
    refused_unless(
        "interceptor.classes",
        "",
        |v| list(v).is_ok_and(|l| l.is_empty()),
        "interceptors are Java classes, which herald cannot load: register a herald::ProducerInterceptor \
         with ProducerBuilder::interceptor instead (empty is accepted)",
    ),
    refused_unless(
        "config.providers",
        "",
        |v| list(v).is_ok_and(|l| l.is_empty()),
        "herald does not resolve ${provider:path:key} references (KIP-297): put the values in the file, or \
         read them in your code and pass them to ProducerBuilder::set (empty is accepted)",
    ),
    refused(
        "sasl.client.callback.handler.class",
        "",
        "SASL callback handlers are Java classes: PLAIN and SCRAM take their credentials from \
         sasl.jaas.config, OAUTHBEARER its tokens from ProducerBuilder::oauthbearer_token_provider",
    ),
    prop(
        "sasl.login.callback.handler.class",
        "",
        "Java's `OAuthBearerLoginCallbackHandler` (either package) turns on the OIDC login; other classes are \
         refused.",
        SECRET,
    ),
    refused(
        "sasl.login.class",
        "",
        "SASL login classes are Java classes: PLAIN and SCRAM take their credentials from sasl.jaas.config, \
         OAUTHBEARER its tokens from ProducerBuilder::oauthbearer_token_provider",
    ),
    refused(
        "ssl.engine.factory.class",
        "",
        "SSL engine factories are Java classes: herald's TLS is rustls, set up by the ssl.* PEM properties",
    ),
];

/// The declaration of `name`, by its Java name or a librdkafka alias.
pub(crate) fn property(name: &str) -> Option<&'static Property> {
    PROPERTIES.iter().find(|p| p.name == name || p.aliases.contains(&name))
}

/// What herald does with a property: see [`PropertyInfo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PropertyStatus {
    /// herald implements it.
    Supported,
    /// Accepted, its value checked as Java checks it, with no effect in herald;
    /// setting it logs why, once per producer build.
    NoEffect,
    /// Refused (perhaps except values that ask for nothing herald does not do,
    /// such as an empty `interceptor.classes`), saying what to use instead.
    Refused,
}

/// One property herald knows, as listed in `docs/properties.md`.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct PropertyInfo {
    /// Java's name (or herald's own, `herald.*`).
    pub name: &'static str,
    /// librdkafka's names for it.
    pub aliases: &'static [&'static str],
    /// The default as a property value, empty for none: Java's default, except
    /// where herald's differs (docs/properties.md says how).
    pub default: &'static str,
    /// Whether herald implements it.
    pub status: PropertyStatus,
    /// What it does in herald, or why it has no effect, or why it is refused.
    pub note: &'static str,
}

impl PropertyInfo {
    fn of(p: &'static Property) -> PropertyInfo {
        let (status, note) = match p.effect {
            Effect::Set(_) | Effect::Security => (PropertyStatus::Supported, p.doc),
            Effect::Ignored(_, why) => (PropertyStatus::NoEffect, why),
            Effect::Unsupported(_, why) => (PropertyStatus::Refused, why),
        };
        PropertyInfo { name: p.name, aliases: p.aliases, default: p.default, status, note }
    }
}

/// Every property herald knows, in the order of `docs/properties.md`: Java's
/// producer properties (each one of kafka-clients' `ProducerConfig.configNames()`,
/// checked by a test against kafka-clients itself), librdkafka's names as
/// aliases, and herald's own.
pub fn properties() -> impl Iterator<Item = PropertyInfo> {
    PROPERTIES.iter().map(PropertyInfo::of)
}

/// The property `name` (Java's name or a librdkafka alias), if herald knows it.
pub fn property_info(name: &str) -> Option<PropertyInfo> {
    property(name.trim()).map(PropertyInfo::of)
}

/// Whether the value of `name` may be a secret (a password, key, token or JAAS
/// line): herald never echoes it in an error or a log.
pub(crate) fn is_secret(name: &str) -> bool {
    if property(name).is_some_and(|p| matches!(p.effect, Effect::Security)) {
        return true;
    }
    let n = name.to_ascii_lowercase();
    // schema.registry.url: Confluent's URL credentials source puts the password there.
    n == "schema.registry.url"
        || ["password", "secret", "jaas", "passphrase", "credentials", "user.info"]
            .iter()
            .any(|s| n.contains(s))
        || n.ends_with(".key")
        || n.ends_with("key.pem")
}

/// Families of properties outside `ProducerConfig.configNames()` that herald
/// refuses with a reason rather than as unknown.
fn refused_family(name: &str) -> Option<&'static str> {
    name.starts_with("config.providers.").then_some(
        "config providers (KIP-297) are Java classes: herald does not resolve ${provider:path:key} references",
    )
}

/// Every property herald knows as a Markdown table — Java name, librdkafka name,
/// default, and what it does in herald (or why it is ignored or refused): the
/// table of `docs/properties.md`, and what `herald properties` prints.
pub fn properties_markdown() -> String {
    let mut out = String::from(
        "# Producer properties\n\n\
         Generated from `herald/src/config.rs` (`PROPERTIES`); a test keeps this file in step \
         (`HERALD_BLESS=1 cargo test -p herald --lib properties_doc` rewrites it).\n\n\
         Every property of the Java producer (kafka-clients' `ProducerConfig`) is here: supported, \
         accepted with no effect (its value checked as Java checks it, and a log line once per \
         producer build says why), or refused with what to use instead. \
         `herald/tests/producer_config_java.rs` checks the list and the defaults against kafka-clients \
         itself. Confluent's Schema Registry serializer settings (`schema.registry.url`, \
         `basic.auth.*`, `auto.register.schemas`, …) are kept for the registry serializers built from \
         the same configuration (README, \"Typed records and Schema Registry\"). Values of security \
         properties are never echoed in errors or logs.\n\n\
         | property | librdkafka name | default | in herald |\n|---|---|---|---|\n",
    );
    let cell = |s: &str| if s.is_empty() { "—".to_owned() } else { format!("`{s}`") };
    for p in PROPERTIES {
        let aliases = if p.aliases.is_empty() {
            "—".to_owned()
        } else {
            p.aliases.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
        };
        let what = match p.effect {
            Effect::Set(_) | Effect::Security => p.doc.to_owned(),
            Effect::Ignored(_, why) => format!("accepted, no effect: {why}"),
            Effect::Unsupported(_, why) => format!("refused: {why}"),
        };
        out.push_str(&format!("| `{}` | {aliases} | {} | {what} |\n", p.name, cell(p.default)));
    }
    out
}

impl ProducerConfig {
    /// Sets one setting by its Kafka property name (Java's, or librdkafka's alias).
    ///
    /// Unknown names, malformed values and settings herald does not implement are
    /// errors naming the property; values of secret properties (passwords, keys,
    /// `sasl.jaas.config`) are never echoed. Every property is listed in
    /// `docs/properties.md` (and by [`properties`]).
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let name = name.trim();
        let Some(p) = property(name) else {
            if let Some(why) = refused_family(name) {
                return Err(Error::config(name, format!("not supported: {why}")));
            }
            let hint = suggest(name).map(|s| format!("; did you mean {s}?")).unwrap_or_default();
            return Err(Error::config(name, format!("unknown producer property{hint}")));
        };
        let refused = |reason: String| {
            if is_secret(name) {
                Error::config(name, reason)
            } else {
                Error::config(name, format!("{reason} (got {value:?})"))
            }
        };
        match p.effect {
            Effect::Set(apply) => apply(self, value.trim()).map_err(refused),
            // Never echo the value: it may be a password or a key.
            Effect::Security => match self.security.set(p.name, value) {
                Some(r) => r.map_err(|reason| Error::config(name, reason)),
                None => Err(Error::config(name, "declared but not handled by the security settings")),
            },
            Effect::Ignored(check, _) => {
                check(value.trim()).map_err(refused)?;
                let confluent = confluent_serializer(value.trim()).map(str::to_owned);
                match p.name {
                    "key.serializer" => self.serializers.key_serializer = confluent,
                    "value.serializer" => self.serializers.value_serializer = confluent,
                    _ => {}
                }
                if !self.no_effect.contains(&p.name) {
                    self.no_effect.push(p.name);
                }
                Ok(())
            }
            Effect::Unsupported(harmless, why) => {
                if harmless(value.trim()) {
                    Ok(())
                } else {
                    Err(Error::config(name, format!("not supported: {why}")))
                }
            }
        }
    }

    /// Checks settings against each other. Called by
    /// [`ProducerBuilder::build`](crate::ProducerBuilder::build).
    pub fn validate(&self) -> Result<()> {
        bootstrap_addresses(&self.bootstrap_servers)?;
        let named = [
            ("key.serializer", &self.serializers.key_serializer),
            ("value.serializer", &self.serializers.value_serializer),
        ];
        for (name, class) in named {
            if let (Some(class), true) = (class, self.serializers.schema_registry_url.is_empty()) {
                // As Confluent's serializers refuse to configure without it.
                return Err(Error::config(
                    "schema.registry.url",
                    format!(
                        "required with {name} {class} (build herald's registry serializer from it in code)"
                    ),
                ));
            }
        }
        if self.max_request_size == 0 || self.max_request_size > i32::MAX as usize {
            return Err(Error::config("max.request.size", "must be between 1 and 2147483647"));
        }
        if self.batch_size > i32::MAX as usize {
            return Err(Error::config("batch.size", "must be at most 2147483647"));
        }
        if self.max_in_flight == 0 {
            return Err(Error::config("max.in.flight.requests.per.connection", "must be at least 1"));
        }
        if self.request_timeout.is_zero() {
            return Err(Error::config("request.timeout.ms", "must be positive"));
        }
        // Java's KafkaProducer refuses a delivery.timeout.ms that was set below
        // linger.ms + request.timeout.ms, and raises one left at its default.
        let defaulted = !self.delivery_timeout_explicit && self.delivery_timeout == DEFAULT_DELIVERY_TIMEOUT;
        if self.delivery_timeout < self.linger.saturating_add(self.request_timeout) && !defaulted {
            return Err(Error::config(
                "delivery.timeout.ms",
                format!(
                    "must be at least linger.ms + request.timeout.ms ({} ms), as in the Java client",
                    self.linger.saturating_add(self.request_timeout).as_millis()
                ),
            ));
        }
        if !(self.compression_gzip_level == -1 || (1..=9).contains(&self.compression_gzip_level)) {
            return Err(Error::config("compression.gzip.level", "must be -1 or between 1 and 9"));
        }
        if !(1..=17).contains(&self.compression_lz4_level) {
            return Err(Error::config("compression.lz4.level", "must be between 1 and 17"));
        }
        if !(-131_072..=22).contains(&self.compression_zstd_level) {
            return Err(Error::config("compression.zstd.level", "must be between -131072 and 22"));
        }
        self.security.validate()?;
        if self.buffer_memory == 0 {
            return Err(Error::config("buffer.memory", "must be positive"));
        }
        if self.enable_idempotence && self.idempotence_explicit {
            if let Some((name, why)) = self.idempotence_conflict() {
                return Err(Error::config(name, format!("{why} (enable.idempotence=true was set)")));
            }
        }
        if self.transactional_id.is_some() {
            // As Java's ProducerConfig: a transactional producer is idempotent.
            if self.idempotence_explicit && !self.enable_idempotence {
                return Err(Error::config(
                    "enable.idempotence",
                    "a transactional producer (transactional.id) must be idempotent; \
                     leave enable.idempotence unset or true",
                ));
            }
            if let Some((name, why)) = self.idempotence_conflict() {
                return Err(Error::config(name, format!("{why} (transactional.id was set)")));
            }
            if self.transaction_timeout.is_zero() {
                return Err(Error::config("transaction.timeout.ms", "must be positive"));
            }
        }
        Ok(())
    }

    /// A setting that rules the idempotent producer out, as the Java client checks.
    fn idempotence_conflict(&self) -> Option<(&'static str, &'static str)> {
        if self.acks != Acks::All {
            Some(("acks", "the idempotent producer needs acks=all"))
        } else if self.retries == 0 {
            Some(("retries", "the idempotent producer needs retries above 0"))
        } else if self.max_in_flight > 5 {
            Some((
                "max.in.flight.requests.per.connection",
                "the idempotent producer allows at most 5 requests in flight per connection",
            ))
        } else {
            None
        }
    }

    /// The codec and level batches are compressed with, `None` without compression.
    pub(crate) fn codec(&self) -> Option<crate::compression::Codec> {
        use crate::compression::Codec;
        match self.compression {
            Compression::None => None,
            Compression::Gzip => {
                Some(Codec::Gzip { level: u32::try_from(self.compression_gzip_level).unwrap_or(6) })
            }
            Compression::Snappy => Some(Codec::Snappy),
            Compression::Lz4 => {
                Some(Codec::Lz4 { level: u32::try_from(self.compression_lz4_level).unwrap_or(9) })
            }
            Compression::Zstd => Some(Codec::Zstd { level: self.compression_zstd_level }),
        }
    }

    /// Fills in derived defaults, as Java's `KafkaProducer` does: the client id,
    /// idempotence turned off when it was only the default and another setting
    /// rules it out, a default `delivery.timeout.ms` raised to `linger.ms +
    /// request.timeout.ms`. Logs, once, each property set that has no effect.
    pub(crate) fn finish(&mut self) {
        if self.enable_idempotence && !self.idempotence_explicit {
            if let Some((name, _)) = self.idempotence_conflict() {
                tracing::debug!(setting = name, "idempotence disabled by a conflicting setting");
                self.enable_idempotence = false;
            }
        }
        let least = self.linger.saturating_add(self.request_timeout);
        if self.delivery_timeout < least {
            tracing::info!(
                delivery_timeout_ms = least.as_millis() as u64,
                "delivery.timeout.ms raised to linger.ms + request.timeout.ms, as Java does when it is not set"
            );
            self.delivery_timeout = least;
        }
        if self.retry_backoff > self.retry_backoff_max {
            tracing::info!(
                backoff_ms = self.retry_backoff_max.as_millis() as u64,
                "retry.backoff.ms is above retry.backoff.max.ms: every retry waits retry.backoff.max.ms, as in Java"
            );
        }
        for name in &self.no_effect {
            if let Some(Effect::Ignored(_, why)) = property(name).map(|p| p.effect) {
                tracing::info!(property = *name, "{name} has no effect in herald: {why}");
            }
        }
        if self.client_id.is_empty() {
            self.client_id = format!("herald-producer-{}", PRODUCER_COUNT.fetch_add(1, Ordering::Relaxed));
        }
    }
}

/// `bootstrap.servers` as `(host, port)` pairs: at least one, each `host:port`.
/// The one parser of bootstrap servers, for every client.
pub(crate) fn bootstrap_addresses(servers: &[String]) -> Result<Vec<(String, u16)>> {
    let addrs = servers
        .iter()
        .map(|s| parse_host_port(s).map_err(|e| Error::config("bootstrap.servers", e)))
        .collect::<Result<Vec<_>>>()?;
    if addrs.is_empty() {
        return Err(Error::config("bootstrap.servers", "at least one host:port is required"));
    }
    Ok(addrs)
}

/// Splits `host:port` (or `[v6]:port`), checking the port.
pub(crate) fn parse_host_port(s: &str) -> std::result::Result<(String, u16), String> {
    let (host, port) = s.rsplit_once(':').ok_or_else(|| format!("{s:?} is not host:port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{s:?} has no host"));
    }
    let port: u16 =
        port.parse().ok().filter(|p| *p > 0).ok_or_else(|| format!("{s:?} has no valid port (1-65535)"))?;
    Ok((host.to_owned(), port))
}

/// A whole number as Java's `ConfigDef` parses an INT (`Integer.parseInt` of the
/// trimmed value), checked against the inclusive range of its validator.
pub(crate) fn int(v: &str, min: i64, max: i64) -> std::result::Result<i64, String> {
    let n =
        v.parse::<i32>().map_err(|_| "expected a whole number from -2147483648 to 2147483647".to_owned())?;
    in_range(i64::from(n), min, max)
}

/// A whole number as Java parses a LONG, checked against a range.
pub(crate) fn long(v: &str, min: i64, max: i64) -> std::result::Result<i64, String> {
    let n = v.parse::<i64>().map_err(|_| "expected a whole number (a Java long)".to_owned())?;
    in_range(n, min, max)
}

/// A whole number as Java parses a SHORT, checked against a range.
fn short(v: &str, min: i64, max: i64) -> std::result::Result<i64, String> {
    let n = v.parse::<i16>().map_err(|_| "expected a whole number from -32768 to 32767".to_owned())?;
    in_range(i64::from(n), min, max)
}

fn in_range(n: i64, min: i64, max: i64) -> std::result::Result<i64, String> {
    let type_bounds = [i64::MIN, i64::from(i32::MIN), i64::from(i16::MIN)];
    let type_tops = [i64::MAX, INT_MAX, i64::from(i16::MAX)];
    if n >= min && n <= max {
        Ok(n)
    } else if type_tops.contains(&max) {
        Err(format!("must be at least {min}"))
    } else if type_bounds.contains(&min) {
        Err(format!("must be at most {max}"))
    } else {
        Err(format!("must be between {min} and {max}"))
    }
}

/// Milliseconds as a Java INT of at least 0.
fn ms_int(v: &str) -> std::result::Result<Duration, String> {
    Ok(Duration::from_millis(int(v, 0, INT_MAX)? as u64))
}

/// Milliseconds as a Java LONG of at least 0.
fn ms_long(v: &str) -> std::result::Result<Duration, String> {
    Ok(Duration::from_millis(long(v, 0, i64::MAX)? as u64))
}

/// A number as Java parses a DOUBLE (`Double.parseDouble`, which takes a
/// trailing `d` or `f`), checked against a range.
fn double(v: &str, min: f64, max: f64) -> std::result::Result<f64, String> {
    let digits = v.strip_suffix(['d', 'D', 'f', 'F']).unwrap_or(v);
    let n: f64 = digits.parse().map_err(|_| "expected a number".to_owned())?;
    if n < min || n > max {
        return Err(format!("must be between {min} and {max}"));
    }
    Ok(n)
}

/// One of `values`, exactly (Java's `ValidString`).
fn one_of(v: &str, values: &[&str]) -> std::result::Result<(), String> {
    if values.contains(&v) { Ok(()) } else { Err(format!("expected one of {}", values.join(", "))) }
}

/// One of `values`, in any case (Java's `CaseInsensitiveValidString`).
fn one_of_ignore_case(v: &str, values: &[&str]) -> std::result::Result<(), String> {
    if values.iter().any(|x| x.eq_ignore_ascii_case(v)) {
        Ok(())
    } else {
        Err(format!("expected one of {} (in any case)", values.join(", ")))
    }
}

/// A comma-separated list as Java parses a LIST: empty for an empty value, items
/// trimmed, trailing empty items dropped (`String.split`), and an empty item
/// in between refused (Kafka 4's list validators).
fn list(v: &str) -> std::result::Result<Vec<&str>, String> {
    if v.is_empty() {
        return Ok(Vec::new());
    }
    let mut items: Vec<&str> = v.split(',').map(str::trim).collect();
    while items.last() == Some(&"") {
        items.pop();
    }
    if items.contains(&"") {
        return Err("an empty item in the list".to_owned());
    }
    Ok(items)
}

/// A Java class name, for a setting with no effect: herald cannot tell whether
/// the class exists, only that one is named.
fn java_class_name(v: &str) -> std::result::Result<(), String> {
    if v.is_empty() || v.contains(char::is_whitespace) {
        return Err("expected a Java class name".to_owned());
    }
    Ok(())
}

/// `key.serializer` / `value.serializer`: one of Java's built-in serializers,
/// which have no effect in herald (records carry bytes), or one of Confluent's
/// registry serializers (applied in code from [`SerializerSettings`]). Others are
/// refused, naming herald's equivalent where there is one.
fn serializer(v: &str) -> std::result::Result<(), String> {
    const BUILT_IN: &[&str] = &[
        "ByteArraySerializer",
        "ByteBufferSerializer",
        "BytesSerializer",
        "StringSerializer",
        "ShortSerializer",
        "IntegerSerializer",
        "LongSerializer",
        "FloatSerializer",
        "DoubleSerializer",
        "UUIDSerializer",
        "BooleanSerializer",
        "VoidSerializer",
    ];
    if v.strip_prefix("org.apache.kafka.common.serialization.").is_some_and(|n| BUILT_IN.contains(&n)) {
        return Ok(());
    }
    // Applied in code, from SerializerSettings; validate() asks for schema.registry.url.
    if confluent_serializer(v).is_some() {
        return Ok(());
    }
    let instead = match v.rsplit('.').next().unwrap_or(v) {
        "KafkaAvroSerializer" => {
            "herald::serialization::avro::AvroSerializer with a SchemaRegistryClient writes the same \
             Confluent wire format (the CLI: --value-format avro)"
        }
        "KafkaProtobufSerializer" => {
            "herald::serialization::protobuf::ProtobufSerializer with a SchemaRegistryClient writes the same \
             Confluent wire format (the CLI: --value-format protobuf)"
        }
        _ => {
            "herald records carry bytes: serialize in code with herald::serialization (TypedProducer), and \
             name Java's ByteArraySerializer here or leave the setting out"
        }
    };
    Err(format!(
        "{JAVA_CLASS}; Java's built-in serializers (org.apache.kafka.common.serialization.{}) are accepted \
         with no effect; for this one, {instead}",
        BUILT_IN.join(", ")
    ))
}

/// A boolean as Java parses a BOOLEAN: `true` or `false` in any case.
fn parse_bool(v: &str) -> std::result::Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    }
}

/// The known property closest to `name`, if one is close.
fn suggest(name: &str) -> Option<&'static str> {
    PROPERTIES
        .iter()
        .flat_map(|p| std::iter::once(p.name).chain(p.aliases.iter().copied()))
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(props: &[(&str, &str)]) -> Result<ProducerConfig> {
        let mut c = ProducerConfig::default();
        c.set("bootstrap.servers", "127.0.0.1:9092")?;
        for (k, v) in props {
            c.set(k, v)?;
        }
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn defaults_follow_kafka_4() {
        let c = ProducerConfig::default();
        assert_eq!(c.acks, Acks::All);
        assert_eq!(c.linger, Duration::from_millis(5));
        assert_eq!(c.batch_size, 16384);
        assert_eq!(c.max_request_size, 1048576);
        assert_eq!(c.delivery_timeout, Duration::from_secs(120));
    }

    #[test]
    fn java_properties_parse() {
        let c =
            with(&[("acks", "1"), ("linger.ms", "20"), ("batch.size", "65536"), ("client.id", "x")]).unwrap();
        assert_eq!(c.acks, Acks::Leader);
        assert_eq!(c.linger, Duration::from_millis(20));
        assert_eq!(c.batch_size, 65536);
        assert_eq!(c.client_id, "x");
        assert_eq!(with(&[("acks", "-1")]).unwrap().acks, Acks::All);
        assert_eq!(with(&[("acks", "0")]).unwrap().acks, Acks::None);
    }

    #[test]
    fn librdkafka_aliases_parse() {
        let c = with(&[("queue.buffering.max.ms", "7"), ("request.required.acks", "1")]).unwrap();
        assert_eq!(c.linger, Duration::from_millis(7));
        assert_eq!(c.acks, Acks::Leader);
    }

    #[test]
    fn unknown_property_is_an_error_with_a_suggestion() {
        let e = with(&[("linger.msx", "5")]).unwrap_err();
        assert!(e.is_config());
        assert!(e.to_string().contains("did you mean linger.ms"), "{e}");
    }

    #[test]
    fn invalid_values_are_errors_naming_the_property() {
        for (k, v) in [
            ("acks", "2"),
            ("linger.ms", "soon"),
            ("batch.size", "-1"),
            ("retries", "-3"),
            ("enable.idempotence", "yes"),
            ("compression.type", "brotli"),
            ("compression.gzip.level", "10"),
            ("compression.lz4.level", "0"),
            ("compression.zstd.level", "23"),
        ] {
            let e = with(&[(k, v)]).unwrap_err();
            assert!(e.to_string().contains(k), "{e}");
        }
    }

    #[test]
    fn conflicting_settings_are_errors() {
        let e = with(&[("delivery.timeout.ms", "1000")]).unwrap_err();
        assert!(e.to_string().contains("delivery.timeout.ms"), "{e}");
        let e = with(&[("max.in.flight.requests.per.connection", "0")]).unwrap_err();
        assert!(e.is_config());
        let mut c = ProducerConfig::default();
        assert!(c.validate().unwrap_err().to_string().contains("bootstrap.servers"));
        c.set("bootstrap.servers", "localhost").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("host:port"));
    }

    #[test]
    fn idempotence_is_the_default_and_conflicts_follow_java() {
        let mut c = with(&[]).unwrap();
        c.finish();
        assert!(c.enable_idempotence);
        // Implied idempotence gives way to acks=1 ...
        let mut c = with(&[("acks", "1")]).unwrap();
        c.finish();
        assert!(!c.enable_idempotence);
        // ... explicit idempotence does not.
        let e = with(&[("enable.idempotence", "true"), ("acks", "1")]).unwrap_err();
        assert!(e.to_string().contains("acks"), "{e}");
        let e = with(&[("enable.idempotence", "true"), ("max.in.flight.requests.per.connection", "6")])
            .unwrap_err();
        assert!(e.to_string().contains("max.in.flight"), "{e}");
    }

    #[test]
    fn security_properties_parse_and_never_echo_secrets() {
        let c = with(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"u\" password=\"pw-123-secret\";",
            ),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.location", "/tmp/ca.pem"),
            ("ssl.endpoint.identification.algorithm", "https"),
        ])
        .unwrap();
        assert_eq!(c.security.protocol, crate::SecurityProtocol::SaslSsl);
        assert!(!format!("{c:?}").contains("pw-123-secret"));
        // librdkafka's names.
        let c = with(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanisms", "PLAIN"),
            ("sasl.username", "u"),
            ("sasl.password", "pw-456-secret"),
        ])
        .unwrap();
        assert_eq!(c.security.sasl.username.as_deref(), Some("u"));
        let e = with(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.password", "pw-789-secret"),
            ("sasl.mechanism", "NOPE"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("SCRAM-SHA-256") && !e.to_string().contains("pw-789"), "{e}");
        // Java's JKS default is refused only when TLS reads a store.
        with(&[("ssl.truststore.type", "JKS")]).unwrap();
        let e = with(&[
            ("security.protocol", "SSL"),
            ("ssl.truststore.type", "JKS"),
            ("ssl.truststore.location", "/tmp/ca.jks"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("PEM"), "{e}");
        let e = with(&[("security.protocol", "TLS")]).unwrap_err();
        assert!(e.to_string().contains("SASL_SSL"), "{e}");
        let e = with(&[("ssl.keystore.locaton", "x")]).unwrap_err();
        assert!(e.to_string().contains("did you mean ssl.keystore.location"), "{e}");
    }

    #[test]
    fn host_port_parsing() {
        assert_eq!(parse_host_port("a:1").unwrap(), ("a".to_owned(), 1));
        assert_eq!(parse_host_port("[::1]:9092").unwrap(), ("::1".to_owned(), 9092));
        assert!(parse_host_port("a:0").is_err());
        assert!(parse_host_port(":9").is_err());
    }

    #[test]
    fn java_types_and_ranges() {
        for (k, v) in [
            ("request.timeout.ms", "2147483648"), // a Java int
            ("retries", "2147483648"),
            ("batch.size", "-1"),
            ("max.in.flight.requests.per.connection", "0"),
            ("linger.ms", "5.0"),
            ("linger.ms", "-1"),
            ("metadata.max.idle.ms", "4999"),
            ("sasl.login.refresh.window.factor", "0.4"),
            ("sasl.login.refresh.buffer.seconds", "3601"),
            ("sasl.login.refresh.buffer.seconds", "40000"), // a Java short
            ("send.buffer.bytes", "-2"),
            ("client.dns.lookup", "USE_ALL_DNS_IPS"), // case-sensitive in Java
            ("client.dns.lookup", "default"),         // removed in Kafka 3.0
            ("metadata.recovery.strategy", "sometimes"),
            ("metrics.recording.level", "debug"),
            ("enable.metrics.push", "yes"),
            ("interceptor.classes", "a,,b"),
        ] {
            let e = with(&[(k, v)]).unwrap_err();
            assert!(e.to_string().contains(k), "{k}={v}: {e}");
        }
        for (k, v) in [
            ("linger.ms", "+7"),
            ("linger.ms", "9223372036854775807"),
            ("metadata.recovery.strategy", "NONE"), // case-insensitive in Java
            ("metadata.recovery.strategy", "rebootstrap"),
            ("client.dns.lookup", "resolve_canonical_bootstrap_servers_only"),
            ("sasl.login.refresh.window.factor", "1.0"),
            ("sasl.kerberos.ticket.renew.jitter", "5e-2"),
            ("send.buffer.bytes", "-1"),
            ("enable.metrics.push", "FALSE"),
            ("metric.reporters", ""),
            ("interceptor.classes", ""),
            ("transaction.two.phase.commit.enable", "false"),
            ("client.rack", "eu-west-1a"),
            ("auto.include.jmx.reporter", "true"),
        ] {
            with(&[(k, v)]).unwrap_or_else(|e| panic!("{k}={v}: {e}"));
        }
    }

    #[test]
    fn java_serializers_are_accepted_others_refused_with_herald_s_way() {
        for s in [
            "StringSerializer",
            "ByteArraySerializer",
            "ByteBufferSerializer",
            "BytesSerializer",
            "LongSerializer",
        ] {
            with(&[("key.serializer", &format!("org.apache.kafka.common.serialization.{s}"))]).unwrap();
        }
        let e = with(&[("value.serializer", "com.example.KafkaAvroSerializer")]).unwrap_err();
        assert!(e.to_string().contains("AvroSerializer with a SchemaRegistryClient"), "{e}");
        let e = with(&[("value.serializer", "com.example.MySerializer")]).unwrap_err();
        assert!(e.to_string().contains("value.serializer") && e.to_string().contains("TypedProducer"), "{e}");
        // A deserializer (a common slip) is not a serializer.
        assert!(
            with(&[("key.serializer", "org.apache.kafka.common.serialization.StringDeserializer")]).is_err()
        );
    }

    #[test]
    fn a_transactional_producer_is_idempotent() {
        let mut c = ProducerConfig::default();
        c.set("bootstrap.servers", "127.0.0.1:9092").unwrap();
        c.set("transactional.id", "tx-1").unwrap();
        c.set("transaction.timeout.ms", "30000").unwrap();
        assert_eq!(c.transactional_id.as_deref(), Some("tx-1"));
        assert_eq!(c.transaction_timeout, Duration::from_secs(30));
        c.validate().unwrap();
        c.set("enable.idempotence", "false").unwrap();
        let e = c.validate().unwrap_err();
        assert!(e.to_string().contains("must be idempotent"), "{e}");
        let mut c = ProducerConfig::default();
        c.set("bootstrap.servers", "127.0.0.1:9092").unwrap();
        c.set("transactional.id", "tx-1").unwrap();
        c.set("acks", "1").unwrap();
        let e = c.validate().unwrap_err();
        assert!(e.to_string().contains("acks=all") && e.to_string().contains("transactional.id"), "{e}");
    }

    #[test]
    fn refused_properties_say_what_to_use_instead() {
        for (k, v, hint) in [
            ("transaction.two.phase.commit.enable", "true", "KIP-939"),
            ("interceptor.classes", "com.example.Audit", "ProducerBuilder::interceptor"),
            ("config.providers", "file", "KIP-297"),
            (
                "config.providers.file.class",
                "org.apache.kafka.common.config.provider.FileConfigProvider",
                "KIP-297",
            ),
            ("sasl.login.callback.handler.class", "x.Y", "oauthbearer_token_provider"),
            ("ssl.engine.factory.class", "x.Y", "rustls"),
            ("partitioner.class", "com.example.RoundRobinPartitioner", "ProducerBuilder::partitioner"),
        ] {
            let e = with(&[(k, v)]).unwrap_err().to_string();
            assert!(e.contains(k) && e.contains(hint), "{k}: {e}");
            assert!(!e.contains("unknown"), "{k}: {e}");
        }
    }

    #[test]
    fn partitioner_class_names() {
        let c = with(&[("partitioner.class", "org.apache.kafka.clients.producer.RoundRobinPartitioner")])
            .unwrap();
        assert_eq!(c.builtin_partitioner, BuiltInPartitioner::RoundRobin);
        let c =
            with(&[("partitioner.class", "org.apache.kafka.clients.producer.internals.DefaultPartitioner")])
                .unwrap();
        assert_eq!(
            (c.builtin_partitioner, c.null_key_partitioning),
            (BuiltInPartitioner::Default, NullKeyPartitioning::UniformSticky)
        );
        let c = with(&[("partitioner.class", "UniformStickyPartitioner")]).unwrap();
        assert_eq!(c.builtin_partitioner, BuiltInPartitioner::UniformSticky);
    }

    #[test]
    fn delivery_timeout_follows_java() {
        // Left unset, it is raised to linger.ms + request.timeout.ms ...
        let mut c = with(&[("linger.ms", "100000")]).unwrap();
        c.finish();
        assert_eq!(c.delivery_timeout, Duration::from_millis(130_000));
        // ... set below that, it is an error.
        let e = with(&[("linger.ms", "100000"), ("delivery.timeout.ms", "120000")]).unwrap_err();
        assert!(e.to_string().contains("delivery.timeout.ms"), "{e}");
    }

    #[test]
    fn backoffs_follow_java() {
        // retry.backoff.ms above the max is a constant backoff, not an error.
        let c = with(&[("retry.backoff.ms", "2000")]).unwrap();
        assert_eq!(c.retry_backoff_max, Duration::from_millis(1000));
        // reconnect.backoff.ms alone makes the reconnect backoff constant.
        let c = with(&[("reconnect.backoff.ms", "200")]).unwrap();
        assert_eq!(c.reconnect_backoff_max, Duration::from_millis(200));
        let c = with(&[("reconnect.backoff.max.ms", "5000"), ("reconnect.backoff.ms", "200")]).unwrap();
        assert_eq!(c.reconnect_backoff_max, Duration::from_millis(5000));
        let c = with(&[("reconnect.backoff.ms", "200"), ("reconnect.backoff.max.ms", "5000")]).unwrap();
        assert_eq!(c.reconnect_backoff_max, Duration::from_millis(5000));
    }

    #[test]
    fn properties_with_no_effect_are_logged_once_per_build() {
        let mut c = with(&[
            ("key.serializer", "org.apache.kafka.common.serialization.StringSerializer"),
            ("client.rack", "a"),
            ("client.rack", "b"),
            ("metrics.num.samples", "3"),
            ("enable.metrics.push", "false"),
            ("linger.ms", "5"),
        ])
        .unwrap();
        let logs = capture_logs(|| c.finish());
        let count = |needle: &str| logs.iter().filter(|l| l.contains(needle)).count();
        assert_eq!(count("client.rack has no effect in herald: a consumer setting"), 1, "{logs:?}");
        assert_eq!(
            count("key.serializer has no effect in herald: herald records carry bytes"),
            1,
            "{logs:?}"
        );
        assert_eq!(count("metrics.num.samples has no effect in herald"), 1, "{logs:?}");
        assert_eq!(count("enable.metrics.push"), 0, "supported (KIP-714): {logs:?}");
        assert_eq!(count("has no effect"), 3, "{logs:?}");
    }

    #[test]
    fn secrets_are_never_echoed() {
        assert!(is_secret("sasl.jaas.config") && is_secret("ssl.key.password"));
        assert!(is_secret("sasl.oauthbearer.client.credentials.client.secret"));
        assert!(is_secret("sasl.oauthbearer.assertion.private.key.passphrase"));
        assert!(!is_secret("linger.ms") && !is_secret("client.id"));
        let e = with(&[
            ("ssl.keystore.password", "pw-42-secret"),
            ("ssl.keystore.location", "/k.pem"),
            ("security.protocol", "SSL"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("ssl.keystore.password") && !e.to_string().contains("pw-42"), "{e}");
    }

    /// The messages of the events `f` logs.
    fn capture_logs(f: impl FnOnce()) -> Vec<String> {
        use std::sync::{Arc, Mutex};
        use tracing::field::{Field, Visit};
        struct Collect(Arc<Mutex<Vec<String>>>);
        struct Message(String);
        impl Visit for Message {
            fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        impl tracing::Subscriber for Collect {
            fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
                tracing::span::Id::from_u64(1)
            }
            fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
            fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
            fn event(&self, event: &tracing::Event<'_>) {
                let mut m = Message(String::new());
                event.record(&mut m);
                self.0.lock().unwrap().push(m.0);
            }
            fn enter(&self, _: &tracing::span::Id) {}
            fn exit(&self, _: &tracing::span::Id) {}
        }
        let logs = Arc::new(Mutex::new(Vec::new()));
        tracing::subscriber::with_default(Collect(logs.clone()), f);
        logs.lock().unwrap().clone()
    }

    #[test]
    fn properties_doc() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/properties.md");
        let table = properties_markdown();
        if std::env::var_os("HERALD_BLESS").is_some() {
            std::fs::write(path, &table).unwrap();
        }
        let doc = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            doc == table,
            "docs/properties.md is stale: HERALD_BLESS=1 cargo test -p herald --lib properties_doc"
        );
    }

    #[test]
    fn declared_defaults_are_the_defaults() {
        let base = format!("{:?}", ProducerConfig::default());
        for p in PROPERTIES {
            if p.default.is_empty() {
                continue;
            }
            if matches!(p.effect, Effect::Unsupported(..)) {
                continue;
            }
            let mut c = ProducerConfig::default();
            c.set(p.name, p.default).unwrap_or_else(|e| panic!("{}: {e}", p.name));
            if !matches!(p.effect, Effect::Set(_)) || p.name == "reconnect.backoff.ms" {
                // Setting reconnect.backoff.ms alone makes the backoff constant, as in Java.
                continue;
            }
            c.idempotence_explicit = false;
            c.delivery_timeout_explicit = false;
            c.reconnect_backoff_max_explicit = false;
            assert_eq!(
                format!("{c:?}"),
                base,
                "{}'s declared default {:?} is not its default",
                p.name,
                p.default
            );
        }
    }

    #[test]
    fn every_name_and_alias_is_declared_once() {
        let mut seen = std::collections::HashSet::new();
        for p in PROPERTIES {
            for n in std::iter::once(p.name).chain(p.aliases.iter().copied()) {
                assert!(seen.insert(n), "{n} is declared twice");
                assert_ne!(n, "", "an empty name");
            }
            if matches!(p.effect, Effect::Set(_) | Effect::Security) {
                assert!(!p.doc.is_empty(), "{} has no doc", p.name);
            }
        }
        // Each security property is one SecurityConfig handles.
        for p in PROPERTIES.iter().filter(|p| matches!(p.effect, Effect::Security)) {
            let mut s = SecurityConfig::default();
            assert!(s.set(p.name, "").is_some(), "{} is not handled by SecurityConfig::set", p.name);
        }
    }

    #[test]
    fn confluent_registry_serializer_settings_are_kept_and_the_user_info_masked() {
        let mut c = ProducerConfig::default();
        for (k, v) in [
            ("bootstrap.servers", "127.0.0.1:9092"),
            ("value.serializer", "io.confluent.kafka.serializers.KafkaAvroSerializer"),
            ("key.serializer", "io.confluent.kafka.serializers.protobuf.KafkaProtobufSerializer"),
            ("schema.registry.url", "http://a:8081, https://b:8081"),
            ("basic.auth.credentials.source", "USER_INFO"),
            ("basic.auth.user.info", "fred:pw-77-secret"),
            ("auto.register.schemas", "false"),
            ("use.latest.version", "true"),
            ("value.subject.name.strategy", "io.confluent.kafka.serializers.subject.RecordNameStrategy"),
            ("key.subject.name.strategy", "TopicRecordNameStrategy"),
            ("latest.compatibility.strict", "false"),
        ] {
            c.set(k, v).unwrap_or_else(|e| panic!("{k}: {e}"));
        }
        c.validate().unwrap();
        let s = &c.serializers;
        assert_eq!(s.schema_registry_url, ["http://a:8081", "https://b:8081"]);
        assert_eq!(s.basic_auth_credentials_source, "USER_INFO");
        assert_eq!(s.basic_auth_user_info, "fred:pw-77-secret");
        assert!(!s.auto_register_schemas && s.use_latest_version);
        assert_eq!(s.value_subject_name_strategy, "RecordNameStrategy");
        assert_eq!(s.key_subject_name_strategy, "TopicRecordNameStrategy");
        assert_eq!(s.value_serializer.as_deref(), Some("KafkaAvroSerializer"));
        assert_eq!(s.key_serializer.as_deref(), Some("KafkaProtobufSerializer"));
        assert!(c.no_effect.contains(&"latest.compatibility.strict"));
        assert!(!format!("{c:?}").contains("pw-77-secret"));
        // Credentials in the URL are not shown either.
        c.set("schema.registry.url", "https://fred:pw-78-secret@b:8081/apis").unwrap();
        assert!(!format!("{c:?}").contains("pw-78-secret"), "{c:?}");
        assert!(format!("{c:?}").contains("https://***@b:8081/apis"));
        // Nor in errors.
        let e = c.set("schema.registry.url", "ftp://fred:pw-80-secret@b").unwrap_err();
        assert!(!e.to_string().contains("pw-80-secret"), "{e}");
        assert!(c.set("basic.auth.credentials.source", "SASL_INHERIT").is_err());
        assert!(c.set("value.subject.name.strategy", "com.example.MyStrategy").is_err());
    }

    #[test]
    fn a_confluent_serializer_needs_the_registry_url() {
        let mut c = ProducerConfig::default();
        c.set("bootstrap.servers", "127.0.0.1:9092").unwrap();
        c.set("value.serializer", "io.confluent.kafka.serializers.json.KafkaJsonSchemaSerializer").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("schema.registry.url") && e.contains("KafkaJsonSchemaSerializer"), "{e}");
        c.set("schema.registry.url", "http://127.0.0.1:8081").unwrap();
        c.validate().unwrap();
        // Back to bytes: no registry needed.
        c.set("schema.registry.url", "").unwrap();
        c.set("value.serializer", "org.apache.kafka.common.serialization.ByteArraySerializer").unwrap();
        c.validate().unwrap();
    }
}
