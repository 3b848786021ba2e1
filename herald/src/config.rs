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
}

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
            delivery_timeout: Duration::from_millis(120_000), // Kafka: delivery.timeout.ms=120000
            retries: i32::MAX as u32,                         // Kafka: retries=2147483647
            retry_backoff: Duration::from_millis(100),        // Kafka: retry.backoff.ms=100
            retry_backoff_max: Duration::from_millis(1_000),  // Kafka: retry.backoff.max.ms=1000
            metadata_max_age: Duration::from_millis(300_000), // Kafka: metadata.max.age.ms=300000
            max_block: Duration::from_millis(60_000),         // Kafka: max.block.ms=60000
            max_in_flight: 5,         // Kafka: max.in.flight.requests.per.connection=5
            enable_idempotence: true, // Kafka: enable.idempotence=true
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
    /// Accepted with no effect in herald, for this reason (logged at debug level).
    Ignored(&'static str),
    /// Refused, for this reason.
    Unsupported(&'static str),
}

/// One property, declared once: its Java name, librdkafka's names for it, its
/// default as herald applies it, what it does, and how a value is applied. `set`,
/// the "did you mean" suggestions and the table in `docs/properties.md` all read
/// [`PROPERTIES`].
pub(crate) struct Property {
    pub(crate) name: &'static str,
    pub(crate) aliases: &'static [&'static str],
    /// The default, as a value `set` accepts ("" for none).
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

const SECRET: Effect = Effect::Security;

/// Every property herald knows, Java's names first, in the order of the docs table.
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
            c.linger = parse_ms(v)?;
            Ok(())
        }),
    ),
    prop(
        "batch.size",
        "16384",
        "Bytes at which a partition's batch is sent without waiting for `linger.ms`.",
        Effect::Set(|c, v| {
            c.batch_size = parse_size(v)?;
            Ok(())
        }),
    ),
    aka(
        "max.request.size",
        &["message.max.bytes"],
        "1048576",
        "The largest request, and so the largest record.",
        Effect::Set(|c, v| {
            c.max_request_size = parse_size(v)?;
            Ok(())
        }),
    ),
    prop(
        "request.timeout.ms",
        "30000",
        "How long to wait for a broker's answer before the request is retried.",
        Effect::Set(|c, v| {
            c.request_timeout = parse_ms(v)?;
            Ok(())
        }),
    ),
    aka(
        "delivery.timeout.ms",
        &["message.timeout.ms"],
        "120000",
        "The longest a record may take from `send` to its outcome, retries included.",
        Effect::Set(|c, v| {
            c.delivery_timeout = parse_ms(v)?;
            Ok(())
        }),
    ),
    prop(
        "retries",
        "2147483647",
        "Retries of a batch after retriable errors (bounded by `delivery.timeout.ms`).",
        Effect::Set(|c, v| {
            let n: i64 = v.parse().map_err(|_| "expected a whole number")?;
            if n < 0 {
                return Err("must not be negative".into());
            }
            c.retries = u32::try_from(n.min(i64::from(i32::MAX))).unwrap_or(u32::MAX);
            Ok(())
        }),
    ),
    prop(
        "retry.backoff.ms",
        "100",
        "The first wait before a retry; doubled per retry (KIP-580).",
        Effect::Set(|c, v| {
            c.retry_backoff = parse_ms(v)?;
            Ok(())
        }),
    ),
    prop(
        "retry.backoff.max.ms",
        "1000",
        "The longest wait between retries.",
        Effect::Set(|c, v| {
            c.retry_backoff_max = parse_ms(v)?;
            Ok(())
        }),
    ),
    prop(
        "metadata.max.age.ms",
        "300000",
        "How often metadata is refreshed without errors.",
        Effect::Set(|c, v| {
            c.metadata_max_age = parse_ms(v)?;
            Ok(())
        }),
    ),
    prop(
        "max.block.ms",
        "60000",
        "How long `send` waits for metadata and buffer room.",
        Effect::Set(|c, v| {
            c.max_block = parse_ms(v)?;
            Ok(())
        }),
    ),
    prop(
        "max.in.flight.requests.per.connection",
        "5",
        "Requests sent to one broker before waiting for answers.",
        Effect::Set(|c, v| {
            c.max_in_flight = parse_size(v)?;
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
        "buffer.memory",
        "33554432",
        "The most bytes held for records not yet resolved; beyond it `send` waits.",
        Effect::Set(|c, v| {
            c.buffer_memory = parse_size(v)?;
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
            c.compression_gzip_level = v.parse().map_err(|_| "expected a whole number")?;
            Ok(())
        }),
    ),
    prop(
        "compression.lz4.level",
        "9",
        "1-17; 9 is the fast compressor (as in kafka-clients), others high compression.",
        Effect::Set(|c, v| {
            c.compression_lz4_level = v.parse().map_err(|_| "expected a whole number")?;
            Ok(())
        }),
    ),
    prop(
        "compression.zstd.level",
        "3",
        "-131072 to 22.",
        Effect::Set(|c, v| {
            c.compression_zstd_level = v.parse().map_err(|_| "expected a whole number")?;
            Ok(())
        }),
    ),
    prop(
        "reconnect.backoff.ms",
        "50",
        "The first wait before reconnecting to a broker; doubled per failure.",
        Effect::Set(|c, v| {
            c.reconnect_backoff = parse_ms(v)?;
            Ok(())
        }),
    ),
    prop(
        "reconnect.backoff.max.ms",
        "1000",
        "The longest wait before reconnecting.",
        Effect::Set(|c, v| {
            c.reconnect_backoff_max = parse_ms(v)?;
            Ok(())
        }),
    ),
    prop(
        "socket.connection.setup.timeout.ms",
        "10000",
        "How long one connection attempt (TCP, TLS, SASL) may take.",
        Effect::Set(|c, v| {
            c.connection_setup_timeout = parse_ms(v)?;
            Ok(())
        }),
    ),
    prop(
        "partitioner.class",
        "",
        "Java's built-in partitioners by class name (`DefaultPartitioner`, `RoundRobinPartitioner`, `UniformStickyPartitioner`); `ProducerBuilder::partitioner` plugs in your own.",
        Effect::Set(|c, v| {
            c.builtin_partitioner = match v.rsplit('.').next().unwrap_or(v) {
                "" | "DefaultPartitioner" | "BuiltInPartitioner" => BuiltInPartitioner::Default,
                "RoundRobinPartitioner" => BuiltInPartitioner::RoundRobin,
                "UniformStickyPartitioner" => BuiltInPartitioner::UniformSticky,
                _ => {
                    return Err("herald cannot load Java classes; the built-in ones are DefaultPartitioner, \
                            RoundRobinPartitioner and UniformStickyPartitioner, and ProducerBuilder::partitioner \
                            plugs in your own"
                    .into());
                }
            };
            if v.ends_with("DefaultPartitioner") {
                // Java's default partitioner sends null keys sticky.
                c.null_key_partitioning = NullKeyPartitioning::UniformSticky;
            }
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
        "partitioner.adaptive.partitioning.enable",
        "true",
        "Accepted; herald's sticky choice is uniform, as Java's with adaptive partitioning off.",
        Effect::Set(|_, v| {
            parse_bool(v)?;
            tracing::debug!("adaptive partitioning is not implemented; uniform sticky is used");
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
        "`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or `OAUTHBEARER`.",
        SECRET,
    ),
    prop(
        "sasl.jaas.config",
        "",
        "The login module line; herald reads its `username` and `password`.",
        SECRET,
    ),
    prop("sasl.username", "", "librdkafka's user name for PLAIN and SCRAM.", SECRET),
    prop("sasl.password", "", "librdkafka's password for PLAIN and SCRAM.", SECRET),
    prop("ssl.truststore.type", "PEM", "PEM only.", SECRET),
    aka(
        "ssl.truststore.location",
        &["ssl.ca.location"],
        "",
        "A PEM file of CA certificates; default Mozilla's roots.",
        SECRET,
    ),
    aka("ssl.truststore.certificates", &["ssl.ca.pem"], "", "CA certificates, inline PEM.", SECRET),
    prop("ssl.truststore.password", "", "Must be empty: stores are unencrypted PEM.", SECRET),
    prop("ssl.keystore.type", "PEM", "PEM only.", SECRET),
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
    prop("ssl.keystore.password", "", "Must be empty: stores are unencrypted PEM.", SECRET),
    prop("ssl.key.password", "", "Must be empty: keys are unencrypted PEM.", SECRET),
    prop("ssl.certificate.location", "", "librdkafka's client certificate chain file (PEM).", SECRET),
    prop("ssl.key.location", "", "librdkafka's client private key file (PEM).", SECRET),
    prop(
        "ssl.endpoint.identification.algorithm",
        "https",
        "`https` checks the broker's certificate names the host; empty turns that off.",
        SECRET,
    ),
    prop("ssl.enabled.protocols", "TLSv1.2,TLSv1.3", "TLS versions offered.", SECRET),
    prop("ssl.protocol", "TLS", "`TLS`, `TLSv1.2` or `TLSv1.3`; `ssl.enabled.protocols` chooses.", SECRET),
    prop(
        "key.serializer",
        "",
        "",
        Effect::Ignored("herald records carry bytes; use herald::serialization serializers in code"),
    ),
    prop(
        "value.serializer",
        "",
        "",
        Effect::Ignored("herald records carry bytes; use herald::serialization serializers in code"),
    ),
    prop("send.buffer.bytes", "", "", Effect::Ignored("the OS default socket buffer size is used")),
    prop("receive.buffer.bytes", "", "", Effect::Ignored("the OS default socket buffer size is used")),
    prop(
        "connections.max.idle.ms",
        "",
        "",
        Effect::Ignored("connections stay open while the producer lives"),
    ),
    prop(
        "metadata.max.idle.ms",
        "",
        "",
        Effect::Ignored("topics stay in the metadata while the producer lives"),
    ),
    prop(
        "socket.connection.setup.timeout.max.ms",
        "",
        "",
        Effect::Ignored("socket.connection.setup.timeout.ms is used for every attempt"),
    ),
    prop(
        "partitioner.availability.timeout.ms",
        "",
        "",
        Effect::Ignored("adaptive partitioning is not implemented"),
    ),
    prop("client.dns.lookup", "", "", Effect::Ignored("every address a name resolves to is tried in order")),
    prop("transactional.id", "", "", Effect::Unsupported("transactions are not implemented")),
    prop("transaction.timeout.ms", "", "", Effect::Unsupported("transactions are not implemented")),
    prop(
        "interceptor.classes",
        "",
        "",
        Effect::Unsupported("interceptors are Java classes; wrap the Producer instead"),
    ),
    prop("metric.reporters", "", "", Effect::Unsupported("metrics reporters are Java classes")),
    prop(
        "sasl.client.callback.handler.class",
        "",
        "",
        Effect::Unsupported("callbacks are Java classes; see ProducerBuilder::oauthbearer_token_provider"),
    ),
    prop(
        "sasl.login.callback.handler.class",
        "",
        "",
        Effect::Unsupported("callbacks are Java classes; see ProducerBuilder::oauthbearer_token_provider"),
    ),
    prop("sasl.kerberos.service.name", "", "", Effect::Unsupported("GSSAPI (Kerberos) is not supported")),
];

/// The declaration of `name`, by its Java name or a librdkafka alias.
pub(crate) fn property(name: &str) -> Option<&'static Property> {
    PROPERTIES.iter().find(|p| p.name == name || p.aliases.contains(&name))
}

/// Every property herald knows as a Markdown table — Java name, librdkafka name,
/// default, and what it does in herald (or why it is ignored or refused): the
/// table of `docs/properties.md`, and what `herald properties` prints.
pub fn properties_markdown() -> String {
    let mut out = String::from(
        "# Producer properties\n\n\
         Generated from `herald/src/config.rs` (`PROPERTIES`); a test keeps this file in step \
         (`HERALD_BLESS=1 cargo test -p herald --lib properties_doc` rewrites it).\n\n\
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
            Effect::Ignored(why) => format!("accepted, no effect: {why}"),
            Effect::Unsupported(why) => format!("refused: {why}"),
        };
        out.push_str(&format!("| `{}` | {aliases} | {} | {what} |\n", p.name, cell(p.default)));
    }
    out
}

impl ProducerConfig {
    /// Sets one setting by its Kafka property name (Java's, or librdkafka's alias).
    ///
    /// Unknown names, malformed values and settings herald does not implement are
    /// errors naming the property. Every property is listed in
    /// `docs/properties.md`.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let name = name.trim();
        let Some(p) = property(name) else {
            let hint = suggest(name).map(|s| format!("; did you mean {s}?")).unwrap_or_default();
            return Err(Error::config(name, format!("unknown producer property{hint}")));
        };
        match p.effect {
            Effect::Set(apply) => apply(self, value.trim())
                .map_err(|reason| Error::config(name, format!("{reason} (got {value:?})"))),
            // Never echo the value: it may be a password or a key.
            Effect::Security => match self.security.set(p.name, value) {
                Some(r) => r.map_err(|reason| Error::config(name, reason)),
                None => Err(Error::config(name, "declared but not handled by the security settings")),
            },
            Effect::Ignored(why) => {
                tracing::debug!(property = name, reason = why, "ignoring property");
                Ok(())
            }
            Effect::Unsupported(why) => Err(Error::config(name, format!("not supported: {why}"))),
        }
    }

    /// Checks settings against each other. Called by
    /// [`ProducerBuilder::build`](crate::ProducerBuilder::build).
    pub fn validate(&self) -> Result<()> {
        bootstrap_addresses(&self.bootstrap_servers)?;
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
        if self.delivery_timeout < self.linger + self.request_timeout {
            return Err(Error::config(
                "delivery.timeout.ms",
                format!(
                    "must be at least linger.ms + request.timeout.ms ({} ms), as in the Java client",
                    (self.linger + self.request_timeout).as_millis()
                ),
            ));
        }
        if self.retry_backoff_max < self.retry_backoff {
            return Err(Error::config("retry.backoff.max.ms", "must be at least retry.backoff.ms"));
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

    /// Fills in derived defaults: the client id, and idempotence turned off when it
    /// was only the default and another setting rules it out (as Java does).
    pub(crate) fn finish(&mut self) {
        if self.enable_idempotence && !self.idempotence_explicit {
            if let Some((name, _)) = self.idempotence_conflict() {
                tracing::debug!(setting = name, "idempotence disabled by a conflicting setting");
                self.enable_idempotence = false;
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

fn parse_ms(v: &str) -> std::result::Result<Duration, String> {
    let v = v.trim();
    let n: i64 = v.parse().map_err(|_| "expected milliseconds as a whole number".to_owned())?;
    if n < 0 {
        return Err("must not be negative".to_owned());
    }
    Ok(Duration::from_millis(n as u64))
}

fn parse_size(v: &str) -> std::result::Result<usize, String> {
    let n: i64 = v.parse().map_err(|_| "expected a whole number".to_owned())?;
    usize::try_from(n).map_err(|_| "must not be negative".to_owned())
}

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
            if p.default.is_empty() || !matches!(p.effect, Effect::Set(_)) {
                continue;
            }
            let mut c = ProducerConfig::default();
            c.set(p.name, p.default).unwrap_or_else(|e| panic!("{}: {e}", p.name));
            c.idempotence_explicit = false;
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
}
