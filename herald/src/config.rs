//! Producer settings: every default in one place, the Kafka property names a Java
//! or librdkafka config uses, and one [`ProducerConfig::validate`] that checks
//! settings against each other.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::partitioner::NullKeyPartitioning;
use crate::security::{self, SecurityConfig};

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

/// Properties that a pasted Java config may carry and that do not apply to herald:
/// accepted, and logged at debug level.
const IGNORED_PROPERTIES: &[(&str, &str)] = &[
    ("key.serializer", "herald records carry bytes; use herald::serde serializers in code"),
    ("value.serializer", "herald records carry bytes; use herald::serde serializers in code"),
    ("send.buffer.bytes", "the OS default socket buffer size is used"),
    ("receive.buffer.bytes", "the OS default socket buffer size is used"),
    ("connections.max.idle.ms", "connections stay open while the producer lives"),
    ("metadata.max.idle.ms", "topics stay in the metadata while the producer lives"),
    (
        "socket.connection.setup.timeout.max.ms",
        "socket.connection.setup.timeout.ms is used for every attempt",
    ),
    ("partitioner.availability.timeout.ms", "adaptive partitioning is not implemented"),
    ("client.dns.lookup", "every address a name resolves to is tried in order"),
];

/// Properties of the Java client herald knows but does not implement yet: refused
/// with a clear reason rather than silently ignored.
const UNSUPPORTED_PROPERTIES: &[(&str, &str)] = &[
    ("transactional.id", "transactions are not implemented"),
    ("interceptor.classes", "interceptors are Java classes; wrap the Producer instead"),
    ("metric.reporters", "metrics reporters are Java classes"),
    (
        "sasl.client.callback.handler.class",
        "callbacks are Java classes; see ProducerBuilder::oauthbearer_token_provider",
    ),
    (
        "sasl.login.callback.handler.class",
        "callbacks are Java classes; see ProducerBuilder::oauthbearer_token_provider",
    ),
    ("sasl.kerberos.service.name", "GSSAPI (Kerberos) is not supported"),
    ("transaction.timeout.ms", "transactions are not implemented"),
];

/// librdkafka names for the same settings, so a librdkafka config can be pasted in.
const ALIASES: &[(&str, &str)] = &[
    ("metadata.broker.list", "bootstrap.servers"),
    ("queue.buffering.max.ms", "linger.ms"),
    ("request.required.acks", "acks"),
    ("compression.codec", "compression.type"),
    ("message.timeout.ms", "delivery.timeout.ms"),
    ("message.max.bytes", "max.request.size"),
    ("enable.idempotence", "enable.idempotence"),
];

/// The Java property names herald implements, for suggestions in errors.
const KNOWN: &[&str] = &[
    "bootstrap.servers",
    "client.id",
    "acks",
    "linger.ms",
    "batch.size",
    "max.request.size",
    "request.timeout.ms",
    "delivery.timeout.ms",
    "retries",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "metadata.max.age.ms",
    "max.block.ms",
    "max.in.flight.requests.per.connection",
    "enable.idempotence",
    "buffer.memory",
    "compression.type",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.zstd.level",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "socket.connection.setup.timeout.ms",
    "partitioner.class",
    "partitioner.ignore.keys",
    "partitioner.adaptive.partitioning.enable",
    "herald.null.key.partitioning",
];

impl ProducerConfig {
    /// Sets one setting by its Kafka property name (Java's, or librdkafka's alias).
    ///
    /// Unknown names, malformed values and settings herald does not implement are
    /// errors naming the property.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let name = name.trim();
        let canonical = ALIASES.iter().find(|(alias, _)| *alias == name).map(|(_, c)| *c).unwrap_or(name);
        let v = value.trim();
        let bad = |reason: &str| Error::config(name, format!("{reason} (got {value:?})"));
        match canonical {
            "bootstrap.servers" => {
                self.bootstrap_servers =
                    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
            }
            "client.id" => self.client_id = v.to_owned(),
            "acks" => self.acks = Acks::parse(v).ok_or_else(|| bad("expected all, -1, 0 or 1"))?,
            "linger.ms" => self.linger = parse_ms(v).map_err(|e| bad(&e))?,
            "batch.size" => self.batch_size = parse_size(v).map_err(|e| bad(&e))?,
            "max.request.size" => {
                self.max_request_size = parse_size(v).map_err(|e| bad(&e))?;
            }
            "request.timeout.ms" => self.request_timeout = parse_ms(v).map_err(|e| bad(&e))?,
            "delivery.timeout.ms" => self.delivery_timeout = parse_ms(v).map_err(|e| bad(&e))?,
            "retries" => {
                let n: i64 = v.parse().map_err(|_| bad("expected a whole number"))?;
                self.retries = u32::try_from(n.clamp(0, i64::from(i32::MAX))).unwrap_or(0);
                if n < 0 {
                    return Err(bad("must not be negative"));
                }
            }
            "retry.backoff.ms" => self.retry_backoff = parse_ms(v).map_err(|e| bad(&e))?,
            "retry.backoff.max.ms" => self.retry_backoff_max = parse_ms(v).map_err(|e| bad(&e))?,
            "metadata.max.age.ms" => self.metadata_max_age = parse_ms(v).map_err(|e| bad(&e))?,
            "max.block.ms" => self.max_block = parse_ms(v).map_err(|e| bad(&e))?,
            "max.in.flight.requests.per.connection" => {
                self.max_in_flight = parse_size(v).map_err(|e| bad(&e))?;
            }
            "enable.idempotence" => {
                self.enable_idempotence = parse_bool(v).map_err(|e| bad(&e))?;
                self.idempotence_explicit = true;
            }
            "buffer.memory" => self.buffer_memory = parse_size(v).map_err(|e| bad(&e))?,
            "compression.type" => self.compression = Compression::parse(v).map_err(|e| bad(&e))?,
            "compression.gzip.level" => {
                self.compression_gzip_level = v.parse().map_err(|_| bad("expected a whole number"))?;
            }
            "compression.lz4.level" => {
                self.compression_lz4_level = v.parse().map_err(|_| bad("expected a whole number"))?;
            }
            "compression.zstd.level" => {
                self.compression_zstd_level = v.parse().map_err(|_| bad("expected a whole number"))?;
            }
            "reconnect.backoff.ms" => self.reconnect_backoff = parse_ms(v).map_err(|e| bad(&e))?,
            "reconnect.backoff.max.ms" => {
                self.reconnect_backoff_max = parse_ms(v).map_err(|e| bad(&e))?;
            }
            "socket.connection.setup.timeout.ms" => {
                self.connection_setup_timeout = parse_ms(v).map_err(|e| bad(&e))?;
            }
            "partitioner.class" => {
                self.builtin_partitioner = match v.rsplit('.').next().unwrap_or(v) {
                    "" | "DefaultPartitioner" | "BuiltInPartitioner" => BuiltInPartitioner::Default,
                    "RoundRobinPartitioner" => BuiltInPartitioner::RoundRobin,
                    "UniformStickyPartitioner" => BuiltInPartitioner::UniformSticky,
                    _ => {
                        return Err(bad(
                            "herald cannot load Java classes; the built-in ones are DefaultPartitioner, \
                             RoundRobinPartitioner and UniformStickyPartitioner, and ProducerBuilder::partitioner \
                             plugs in your own",
                        ));
                    }
                };
                if v.ends_with("DefaultPartitioner") {
                    // Java's default partitioner sends null keys sticky.
                    self.null_key_partitioning = NullKeyPartitioning::UniformSticky;
                }
            }
            "partitioner.ignore.keys" => self.partitioner_ignore_keys = parse_bool(v).map_err(|e| bad(&e))?,
            "partitioner.adaptive.partitioning.enable" => {
                // Adaptive partitioning only tunes the sticky partitioner's choice; the
                // uniform choice herald makes is what Java does with it off.
                parse_bool(v).map_err(|e| bad(&e))?;
                tracing::debug!(
                    property = name,
                    "adaptive partitioning is not implemented; uniform sticky is used"
                );
            }
            "herald.null.key.partitioning" => {
                self.null_key_partitioning = match v.to_ascii_lowercase().as_str() {
                    "round-robin" | "round_robin" | "roundrobin" => NullKeyPartitioning::RoundRobin,
                    "sticky" | "uniform-sticky" | "uniform_sticky" => NullKeyPartitioning::UniformSticky,
                    _ => return Err(bad("expected round-robin or sticky")),
                };
            }
            other => {
                if let Some(r) = self.security.set(other, value) {
                    // Never echo the value: it may be a password or a key.
                    return r.map_err(|reason| Error::config(name, reason));
                }
                if let Some((_, why)) = IGNORED_PROPERTIES.iter().find(|(n, _)| *n == other) {
                    tracing::debug!(property = other, reason = why, "ignoring property");
                } else if let Some((_, why)) = UNSUPPORTED_PROPERTIES.iter().find(|(n, _)| *n == other) {
                    return Err(Error::config(name, format!("not supported: {why}")));
                } else {
                    let hint = suggest(other).map(|s| format!("; did you mean {s}?")).unwrap_or_default();
                    return Err(Error::config(name, format!("unknown producer property{hint}")));
                }
            }
        }
        Ok(())
    }

    /// Checks settings against each other. Called by
    /// [`ProducerBuilder::build`](crate::ProducerBuilder::build).
    pub fn validate(&self) -> Result<()> {
        if self.bootstrap_servers.is_empty() {
            return Err(Error::config("bootstrap.servers", "at least one host:port is required"));
        }
        for s in &self.bootstrap_servers {
            parse_host_port(s).map_err(|e| Error::config("bootstrap.servers", e))?;
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
    KNOWN
        .iter()
        .chain(security::PROPERTIES)
        .chain(ALIASES.iter().map(|(a, _)| a))
        .map(|k| (edit_distance(name, k), *k))
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
        let e = with(&[("sasl.password", "pw-789-secret"), ("sasl.mechanism", "NOPE")]).unwrap_err();
        assert!(e.to_string().contains("SCRAM-SHA-256") && !e.to_string().contains("pw-789"), "{e}");
        let e = with(&[("ssl.truststore.type", "JKS")]).unwrap_err();
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
}
