//! herald's one error type, and Kafka's error codes.
//!
//! Every failure a caller can see is an [`Error`]: cheap to clone (a failed batch
//! hands the same error to each of its records), `Send + Sync + 'static`, and
//! matchable through [`Error::kind`]. An error that concerns a record names its topic
//! and, once known, its partition.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;

/// A Kafka protocol error code, as a broker returns it (`0` is no error).
///
/// Displayed with Kafka's own name, e.g. `NOT_LEADER_OR_FOLLOWER (6)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(i16);

impl ErrorCode {
    /// `NONE` (0): no error.
    pub const NONE: ErrorCode = ErrorCode(0);
    /// `UNKNOWN_SERVER_ERROR` (-1).
    pub const UNKNOWN_SERVER_ERROR: ErrorCode = ErrorCode(-1);
    /// `CORRUPT_MESSAGE` (2): a batch failed its CRC or size checks.
    pub const CORRUPT_MESSAGE: ErrorCode = ErrorCode(2);
    /// `UNKNOWN_TOPIC_OR_PARTITION` (3).
    pub const UNKNOWN_TOPIC_OR_PARTITION: ErrorCode = ErrorCode(3);
    /// `LEADER_NOT_AVAILABLE` (5).
    pub const LEADER_NOT_AVAILABLE: ErrorCode = ErrorCode(5);
    /// `NOT_LEADER_OR_FOLLOWER` (6).
    pub const NOT_LEADER_OR_FOLLOWER: ErrorCode = ErrorCode(6);
    /// `REQUEST_TIMED_OUT` (7).
    pub const REQUEST_TIMED_OUT: ErrorCode = ErrorCode(7);
    /// `MESSAGE_TOO_LARGE` (10): the batch is larger than the topic's `max.message.bytes`.
    /// The producer splits a batch of several records and sends the parts (KIP-126);
    /// a record reports it only when it is too large alone, and the error's
    /// message then gives its size on the wire.
    pub const MESSAGE_TOO_LARGE: ErrorCode = ErrorCode(10);
    /// `NETWORK_EXCEPTION` (13).
    pub const NETWORK_EXCEPTION: ErrorCode = ErrorCode(13);
    /// `INVALID_TOPIC_EXCEPTION` (17).
    pub const INVALID_TOPIC_EXCEPTION: ErrorCode = ErrorCode(17);
    /// `RECORD_LIST_TOO_LARGE` (18): the batch is larger than the topic's
    /// `segment.bytes`; split like [`MESSAGE_TOO_LARGE`](Self::MESSAGE_TOO_LARGE).
    pub const RECORD_LIST_TOO_LARGE: ErrorCode = ErrorCode(18);
    /// `NOT_ENOUGH_REPLICAS` (19).
    pub const NOT_ENOUGH_REPLICAS: ErrorCode = ErrorCode(19);
    /// `NOT_ENOUGH_REPLICAS_AFTER_APPEND` (20).
    pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: ErrorCode = ErrorCode(20);
    /// `INVALID_REQUIRED_ACKS` (21).
    pub const INVALID_REQUIRED_ACKS: ErrorCode = ErrorCode(21);
    /// `TOPIC_AUTHORIZATION_FAILED` (29).
    pub const TOPIC_AUTHORIZATION_FAILED: ErrorCode = ErrorCode(29);
    /// `INVALID_TIMESTAMP` (32).
    pub const INVALID_TIMESTAMP: ErrorCode = ErrorCode(32);
    /// `UNSUPPORTED_VERSION` (35).
    pub const UNSUPPORTED_VERSION: ErrorCode = ErrorCode(35);
    /// `TOPIC_ALREADY_EXISTS` (36).
    pub const TOPIC_ALREADY_EXISTS: ErrorCode = ErrorCode(36);
    /// `INVALID_PARTITIONS` (37).
    pub const INVALID_PARTITIONS: ErrorCode = ErrorCode(37);
    /// `INVALID_REPLICATION_FACTOR` (38).
    pub const INVALID_REPLICATION_FACTOR: ErrorCode = ErrorCode(38);
    /// `INVALID_CONFIG` (40).
    pub const INVALID_CONFIG: ErrorCode = ErrorCode(40);
    /// `NOT_CONTROLLER` (41).
    pub const NOT_CONTROLLER: ErrorCode = ErrorCode(41);
    /// `INVALID_REQUEST` (42).
    pub const INVALID_REQUEST: ErrorCode = ErrorCode(42);
    /// `OUT_OF_ORDER_SEQUENCE_NUMBER` (45).
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: ErrorCode = ErrorCode(45);
    /// `DUPLICATE_SEQUENCE_NUMBER` (46).
    pub const DUPLICATE_SEQUENCE_NUMBER: ErrorCode = ErrorCode(46);
    /// `INVALID_PRODUCER_EPOCH` (47).
    pub const INVALID_PRODUCER_EPOCH: ErrorCode = ErrorCode(47);
    /// `KAFKA_STORAGE_ERROR` (56).
    pub const KAFKA_STORAGE_ERROR: ErrorCode = ErrorCode(56);
    /// `UNKNOWN_PRODUCER_ID` (59).
    pub const UNKNOWN_PRODUCER_ID: ErrorCode = ErrorCode(59);
    /// `FENCED_LEADER_EPOCH` (74).
    pub const FENCED_LEADER_EPOCH: ErrorCode = ErrorCode(74);
    /// `UNKNOWN_LEADER_EPOCH` (75).
    pub const UNKNOWN_LEADER_EPOCH: ErrorCode = ErrorCode(75);
    /// `UNSUPPORTED_COMPRESSION_TYPE` (76).
    pub const UNSUPPORTED_COMPRESSION_TYPE: ErrorCode = ErrorCode(76);
    /// `INVALID_RECORD` (87): the broker refused one or more records of the batch.
    pub const INVALID_RECORD: ErrorCode = ErrorCode(87);
    /// `UNKNOWN_TOPIC_ID` (100).
    pub const UNKNOWN_TOPIC_ID: ErrorCode = ErrorCode(100);
    /// The coordinator is loading its state; retriable.
    pub const COORDINATOR_LOAD_IN_PROGRESS: ErrorCode = ErrorCode(14);
    /// No coordinator is available; retriable.
    pub const COORDINATOR_NOT_AVAILABLE: ErrorCode = ErrorCode(15);
    /// The broker is not the coordinator for this key; find it again.
    pub const NOT_COORDINATOR: ErrorCode = ErrorCode(16);
    /// The generation of the consumer group is not current.
    pub const ILLEGAL_GENERATION: ErrorCode = ErrorCode(22);
    /// The member id is not in the consumer group.
    pub const UNKNOWN_MEMBER_ID: ErrorCode = ErrorCode(25);
    /// Not authorised for the consumer group.
    pub const GROUP_AUTHORIZATION_FAILED: ErrorCode = ErrorCode(30);
    /// Not authorised for a cluster action (e.g. IdempotentWrite).
    pub const CLUSTER_AUTHORIZATION_FAILED: ErrorCode = ErrorCode(31);
    /// The transaction is not in a state that allows the request.
    pub const INVALID_TXN_STATE: ErrorCode = ErrorCode(48);
    /// The coordinator has no producer id for this transactional id.
    pub const INVALID_PRODUCER_ID_MAPPING: ErrorCode = ErrorCode(49);
    /// `transaction.timeout.ms` is above the broker's `transaction.max.timeout.ms`.
    pub const INVALID_TRANSACTION_TIMEOUT: ErrorCode = ErrorCode(50);
    /// The previous transaction of this producer is still being completed; retriable.
    pub const CONCURRENT_TRANSACTIONS: ErrorCode = ErrorCode(51);
    /// Not authorised for the transactional id.
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: ErrorCode = ErrorCode(53);
    /// A static member with the same instance id replaced this one.
    pub const FENCED_INSTANCE_ID: ErrorCode = ErrorCode(82);
    /// A newer producer with the same transactional id exists.
    pub const PRODUCER_FENCED: ErrorCode = ErrorCode(90);
    /// The transaction must be aborted (KIP-890).
    pub const TRANSACTION_ABORTABLE: ErrorCode = ErrorCode(120);

    /// The code for a raw `i16`.
    pub const fn new(code: i16) -> ErrorCode {
        ErrorCode(code)
    }

    /// The raw `i16` code.
    pub const fn code(self) -> i16 {
        self.0
    }

    /// Whether this is `NONE` (0).
    pub const fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// Whether Kafka calls this error retriable: the same request may succeed later.
    pub fn is_retriable(self) -> bool {
        ResponseError::try_from_code(self.0).is_some_and(|e| e.is_retriable())
    }

    /// Whether this error means the client's view of partition leadership is stale,
    /// so metadata must be refreshed before the next attempt.
    pub fn is_stale_metadata(self) -> bool {
        matches!(
            self,
            Self::UNKNOWN_TOPIC_OR_PARTITION
                | Self::LEADER_NOT_AVAILABLE
                | Self::NOT_LEADER_OR_FOLLOWER
                | Self::KAFKA_STORAGE_ERROR
                | Self::FENCED_LEADER_EPOCH
                | Self::UNKNOWN_LEADER_EPOCH
                | Self::UNKNOWN_TOPIC_ID
                | Self::NETWORK_EXCEPTION
        ) || self.0 == 103 // INCONSISTENT_TOPIC_ID
    }

    /// Kafka's name for this code, e.g. `NOT_LEADER_OR_FOLLOWER`.
    pub fn name(self) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = write_name(self.0, &mut s);
        s
    }

    /// Kafka's one-line description of this code.
    pub fn description(self) -> String {
        match ResponseError::try_from_code(self.0) {
            None => "no error".to_owned(),
            Some(e) => e.to_string(),
        }
    }
}

/// Writes Kafka's SCREAMING_SNAKE name for `code`, derived from kafka-protocol's
/// variant names (`NotLeaderOrFollower` becomes `NOT_LEADER_OR_FOLLOWER`).
fn write_name(code: i16, out: &mut impl fmt::Write) -> fmt::Result {
    let Some(e) = ResponseError::try_from_code(code) else {
        return out.write_str("NONE");
    };
    if let ResponseError::Unknown(_) = e {
        return out.write_str("UNKNOWN_ERROR_CODE");
    }
    let camel = format!("{e:?}");
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.write_char('_')?;
        }
        out.write_char(c.to_ascii_uppercase())?;
    }
    Ok(())
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_name(self.0, f)?;
        write!(f, " ({})", self.0)
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What went wrong. Matched through [`Error::kind`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A setting is unknown, malformed, or conflicts with another one.
    Config {
        /// The setting's Kafka property name (or the builder method's, for settings
        /// that have no property).
        name: String,
        /// Why it was refused.
        reason: String,
    },
    /// A broker answered with a Kafka error code.
    Broker {
        /// The code.
        code: ErrorCode,
        /// The broker's own message, when it sent one.
        message: Option<String>,
    },
    /// The record is larger than a limit the producer enforces before sending.
    RecordTooLarge {
        /// The record's size in a batch of its own, in bytes.
        size: usize,
        /// The limit.
        max: usize,
        /// The setting that sets the limit, e.g. `max.request.size`.
        limit: &'static str,
    },
    /// The topic does not exist (and the cluster did not create it).
    UnknownTopic,
    /// A bounded wait ended.
    Timeout {
        /// What was being waited for.
        waiting_for: TimeoutKind,
        /// How long it lasted.
        after: Duration,
    },
    /// A connection could not be made, or broke.
    Connection {
        /// The broker, as `host:port` (with its node id when known).
        broker: String,
    },
    /// SASL authentication with a broker failed: wrong credentials, a mechanism the
    /// listener does not enable, a refused OAUTHBEARER token, a server that could
    /// not prove it knows the SCRAM password. Not retriable: records and metadata
    /// waits fail at once (as Java's `AuthenticationException`), and reconnects
    /// back off up to `reconnect.backoff.max.ms`.
    Authentication {
        /// The broker, as `host:port`.
        broker: String,
        /// What went wrong, e.g. the broker's own message.
        reason: String,
    },
    /// The TLS handshake with a broker failed: an untrusted, expired or
    /// wrong-host certificate, or a port that does not speak TLS (or speaks it
    /// when herald does not). Not retriable, like [`ErrorKind::Authentication`].
    Tls {
        /// The broker, as `host:port`.
        broker: String,
        /// What was wrong.
        reason: String,
    },
    /// A broker sent bytes that do not follow the Kafka protocol.
    Protocol {
        /// The broker, as `host:port`.
        broker: String,
        /// What was wrong.
        detail: String,
    },
    /// The producer was closed before the record could be delivered.
    Closed,
    /// The record was purged unsent by [`Producer::purge`](crate::Producer::purge)
    /// (librdkafka's `rd_kafka_purge`, franz-go's `AbortBufferedRecords`): it was
    /// queued and never sent, so it was not written.
    Purged,
    /// The record was dropped unsent: the [`SendFuture`](crate::SendFuture) that
    /// would have queued it (after waiting for metadata or buffer room) was
    /// dropped first. Only producer interceptors see this outcome
    /// ([`ProducerInterceptor::on_acknowledgement`](crate::interceptor::ProducerInterceptor::on_acknowledgement)).
    Cancelled,
    /// The record was refused before sending: e.g. it names a partition the topic
    /// does not have.
    InvalidRecord {
        /// Why.
        reason: String,
    },
    /// The cluster does not support something the producer needs.
    Unsupported {
        /// What is missing.
        what: String,
    },
    /// A delivery callback waited on the producer (`flush`, `close`): callbacks run
    /// on the producer's sender task, which that call would wait for. Spawn the
    /// call instead (`tokio::spawn`); Java's producer refuses `flush` in a
    /// callback the same way.
    InCallback {
        /// The method called.
        call: &'static str,
    },
    /// `try_send` found the producer's buffer (`buffer.memory`) full.
    BufferFull {
        /// The bytes the record needed.
        needed: usize,
        /// `buffer.memory`.
        capacity: usize,
    },
    /// A serializer could not turn the key or value into bytes; only that record
    /// fails.
    Serialization {
        /// Whether it was the key (`true`) or the value.
        is_key: bool,
        /// Why.
        reason: String,
    },
    /// A Schema Registry request failed.
    SchemaRegistry {
        /// The registry's URL.
        url: String,
        /// The HTTP status, when the registry answered.
        status: Option<u16>,
        /// The registry's error code (e.g. 40401 subject not found), when it sent one.
        code: Option<i32>,
        /// What went wrong.
        message: String,
    },
    /// A transactional call made in a state that does not allow it: `send` or
    /// `commit_transaction` before `begin_transaction`, `begin_transaction` twice,
    /// anything before `init_transactions`, or a call on a producer that is not
    /// transactional. Nothing was changed; the transaction (if any) goes on.
    TransactionState {
        /// The call.
        operation: &'static str,
        /// Why it is refused now.
        reason: String,
    },
    /// The current transaction cannot commit: a record of it failed, or a
    /// transactional request failed in a way that leaves the transaction
    /// incomplete. Call `abort_transaction`, then begin a new transaction and send
    /// its records again (Java's abortable errors, `TransactionAbortableException`).
    /// The cause is the error's source.
    TransactionAbortable {
        /// What happened.
        reason: String,
    },
    /// The transaction was aborted: a record of it was never written, or a
    /// committed-looking write was rolled back by the abort. Records that fail with
    /// this are not visible to `read_committed` consumers.
    TransactionAborted,
    /// A newer producer with the same `transactional.id` has initialised
    /// transactions (or the coordinator bumped the epoch past this producer's):
    /// this producer is fenced and every later transactional call fails. Close it;
    /// the newer one carries on (Java's `ProducerFencedException`).
    Fenced {
        /// The `transactional.id`.
        transactional_id: String,
    },
    /// The transactional producer hit an error it cannot recover from (not
    /// authorised for its `transactional.id`, a broker without transactions, a
    /// transaction whose outcome the coordinator lost): every later transactional
    /// call fails; close the producer and build a new one. The cause is the error's
    /// source.
    TransactionFatal {
        /// What happened.
        reason: String,
    },
}

/// What a [`ErrorKind::Timeout`] was waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// Metadata for the topic (`max.block.ms`).
    Metadata,
    /// Delivery of the record (`delivery.timeout.ms`).
    Delivery,
    /// A broker's answer to one request (`request.timeout.ms`).
    Request,
    /// `close(timeout)` ran out of time with the record still pending.
    Close,
    /// A TCP connection to be set up (`socket.connection.setup.timeout.ms`).
    Connect,
    /// Room in the producer's buffer (`buffer.memory`, waited for up to
    /// `max.block.ms`).
    BufferMemory,
    /// A transactional call (`init_transactions`, `send_offsets_to_transaction`,
    /// `commit_transaction`, `abort_transaction`; `max.block.ms`). Calling it again
    /// resumes it.
    Transaction,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutKind::Metadata => "metadata (max.block.ms)",
            TimeoutKind::Delivery => "delivery (delivery.timeout.ms)",
            TimeoutKind::Request => "a response (request.timeout.ms)",
            TimeoutKind::Close => "delivery before close",
            TimeoutKind::Connect => "a connection (socket.connection.setup.timeout.ms)",
            TimeoutKind::BufferMemory => "room in the buffer (buffer.memory full for max.block.ms)",
            TimeoutKind::Transaction => "the transaction coordinator (max.block.ms); call again to resume",
        })
    }
}

/// herald's error: what went wrong ([`Error::kind`]), which topic and partition it
/// concerns, and the underlying cause when there is one.
#[derive(Clone)]
pub struct Error {
    inner: Arc<Inner>,
}

struct Inner {
    kind: ErrorKind,
    topic: Option<Arc<str>>,
    partition: Option<i32>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    /// For a record that failed: whether it may have been written anyway.
    written: Option<bool>,
}

impl Error {
    /// An error of this kind, for code outside herald that reports through herald's
    /// error type (custom serializers and partitioners).
    pub fn from_kind(kind: ErrorKind) -> Error {
        Error::new(kind)
    }

    /// The same error, naming the topic (and partition, when known) it concerns.
    pub fn with_topic(self, topic: &str, partition: Option<i32>) -> Error {
        self.for_partition(&Arc::from(topic), partition)
    }

    pub(crate) fn new(kind: ErrorKind) -> Error {
        Error { inner: Arc::new(Inner { kind, topic: None, partition: None, source: None, written: None }) }
    }

    pub(crate) fn config(name: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::new(ErrorKind::Config { name: name.into(), reason: reason.into() })
    }

    pub(crate) fn broker(code: ErrorCode, message: Option<String>) -> Error {
        Error::new(ErrorKind::Broker { code, message })
    }

    pub(crate) fn timeout(waiting_for: TimeoutKind, after: Duration) -> Error {
        Error::new(ErrorKind::Timeout { waiting_for, after })
    }

    pub(crate) fn connection(broker: impl Into<String>, source: std::io::Error) -> Error {
        Error::new(ErrorKind::Connection { broker: broker.into() }).with_source(source)
    }

    pub(crate) fn protocol(broker: impl Into<String>, detail: impl Into<String>) -> Error {
        Error::new(ErrorKind::Protocol { broker: broker.into(), detail: detail.into() })
    }

    fn modify(self, f: impl FnOnce(&mut Inner)) -> Error {
        let mut inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => Inner {
                kind: shared.kind.clone(),
                topic: shared.topic.clone(),
                partition: shared.partition,
                source: shared.source.clone(),
                written: shared.written,
            },
        };
        f(&mut inner);
        Error { inner: Arc::new(inner) }
    }

    /// Attaches the topic and partition the error concerns.
    pub(crate) fn for_partition(self, topic: &Arc<str>, partition: Option<i32>) -> Error {
        let topic = topic.clone();
        self.modify(|i| {
            i.topic = Some(topic);
            if partition.is_some() {
                i.partition = partition;
            }
        })
    }

    /// Says whether the failed record may have been written anyway (an attempt
    /// ended without an answer) or certainly was not.
    pub(crate) fn written(self, maybe: bool) -> Error {
        self.modify(|i| i.written = Some(maybe))
    }

    /// Attaches the cause.
    pub(crate) fn with_source(self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.modify(|i| i.source = Some(Arc::new(source)))
    }

    /// Attaches another herald error as the cause (e.g. the last error before a timeout).
    pub(crate) fn caused_by(self, cause: Error) -> Error {
        self.modify(|i| i.source = Some(Arc::new(cause)))
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// The topic this error concerns, if it concerns one.
    pub fn topic(&self) -> Option<&str> {
        self.inner.topic.as_deref()
    }

    /// The partition this error concerns, if known.
    pub fn partition(&self) -> Option<i32> {
        self.inner.partition
    }

    /// The Kafka error code, when a broker answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match &self.inner.kind {
            ErrorKind::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether retrying the same operation may succeed.
    pub fn is_retriable(&self) -> bool {
        match &self.inner.kind {
            ErrorKind::Broker { code, .. } => code.is_retriable(),
            // A malformed answer closes the connection; a new one may do better, as
            // after a disconnect (Java treats both alike).
            ErrorKind::Connection { .. } | ErrorKind::Protocol { .. } => true,
            ErrorKind::Timeout { waiting_for, .. } => {
                matches!(waiting_for, TimeoutKind::Request | TimeoutKind::Connect)
            }
            _ => false,
        }
    }

    /// For a record that failed: `true` when it may have been written anyway (an
    /// attempt to send it ended without an answer, so the broker may have appended
    /// it), `false` when it certainly was not. Errors that concern no sent record
    /// are `false`.
    pub fn may_have_been_written(&self) -> bool {
        self.inner.written == Some(true)
    }

    /// Whether this is an authentication failure: [`ErrorKind::Authentication`]
    /// (SASL) or [`ErrorKind::Tls`]. Such errors are not retriable.
    pub fn is_authentication(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Authentication { .. } | ErrorKind::Tls { .. })
    }

    /// Whether this is a timeout of any kind.
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Timeout { .. })
    }

    /// Whether the current transaction must be aborted (and may then be tried
    /// again): [`ErrorKind::TransactionAbortable`], and a record's
    /// [`ErrorKind::TransactionAborted`].
    pub fn is_transaction_abortable(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::TransactionAbortable { .. } | ErrorKind::TransactionAborted)
    }

    /// Whether the transactional producer can no longer be used:
    /// [`ErrorKind::Fenced`] or [`ErrorKind::TransactionFatal`].
    pub fn is_transaction_fatal(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Fenced { .. } | ErrorKind::TransactionFatal { .. })
    }

    /// Whether this is a configuration error, raised when the producer is built.
    pub fn is_config(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Config { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        match (&i.topic, i.partition) {
            (Some(t), Some(p)) => write!(f, "topic {t} partition {p}: ")?,
            (Some(t), None) => write!(f, "topic {t}: ")?,
            _ => {}
        }
        match &i.kind {
            ErrorKind::Config { name, reason } => write!(f, "invalid setting {name}: {reason}")?,
            ErrorKind::Broker { code, message } => {
                write!(f, "broker returned {code}: {}", code.description())?;
                if let Some(m) = message.as_deref().filter(|m| !m.is_empty()) {
                    write!(f, " ({m})")?;
                }
            }
            ErrorKind::RecordTooLarge { size, max, limit } => write!(
                f,
                "record of {size} bytes is larger than {limit} ({max} bytes)"
            )?,
            ErrorKind::UnknownTopic => f.write_str(
                "topic does not exist (UNKNOWN_TOPIC_OR_PARTITION); create it first or enable auto-creation on the broker",
            )?,
            ErrorKind::Timeout { waiting_for, after } => {
                write!(f, "timed out after {after:?} waiting for {waiting_for}")?
            }
            ErrorKind::Connection { broker } => write!(f, "connection to {broker} failed")?,
            ErrorKind::Authentication { broker, reason } => {
                write!(f, "authentication with {broker} failed: {reason}")?
            }
            ErrorKind::Tls { broker, reason } => write!(f, "TLS with {broker} failed: {reason}")?,
            ErrorKind::Protocol { broker, detail } => {
                write!(f, "malformed response from {broker}: {detail}")?
            }
            ErrorKind::Closed => f.write_str("producer closed before the record was delivered")?,
            ErrorKind::Purged => f.write_str("purged unsent by Producer::purge")?,
            ErrorKind::Cancelled => {
                f.write_str("the record was dropped unsent: its SendFuture was dropped before it was queued")?
            }
            ErrorKind::InvalidRecord { reason } => write!(f, "invalid record: {reason}")?,
            ErrorKind::Unsupported { what } => write!(f, "not supported by the cluster: {what}")?,
            ErrorKind::InCallback { call } => write!(
                f,
                "{call} cannot wait inside a delivery callback: callbacks run on the producer's sender task, \
                 which {call} waits for; spawn it instead (tokio::spawn)"
            )?,
            ErrorKind::BufferFull { needed, capacity } => write!(
                f,
                "the producer's buffer is full: {needed} more bytes do not fit in buffer.memory ({capacity} bytes)"
            )?,
            ErrorKind::Serialization { is_key, reason } => {
                write!(f, "could not serialize the {}: {reason}", if *is_key { "key" } else { "value" })?
            }
            ErrorKind::TransactionState { operation, reason } => {
                write!(f, "{operation} refused: {reason}")?
            }
            ErrorKind::TransactionAbortable { reason } => write!(
                f,
                "transaction must be aborted: {reason}; call abort_transaction, then send its records again \
                 in a new transaction"
            )?,
            ErrorKind::TransactionAborted => f.write_str("the record's transaction was aborted")?,
            ErrorKind::Fenced { transactional_id } => write!(
                f,
                "producer fenced: a newer producer with transactional.id {transactional_id:?} has taken over; \
                 close this one"
            )?,
            ErrorKind::TransactionFatal { reason } => {
                write!(f, "transactional producer failed for good: {reason}; close it and build a new one")?
            }
            ErrorKind::SchemaRegistry { url, status, code, message } => {
                write!(f, "schema registry {url}")?;
                if let Some(s) = status {
                    write!(f, " answered HTTP {s}")?;
                }
                if let Some(c) = code {
                    write!(f, " (error code {c})")?;
                }
                write!(f, ": {message}")?;
            }
        }
        if let Some(src) = &i.source {
            write!(f, ": {src}")?;
        }
        match i.written {
            Some(true) => f.write_str(" (the record may have been written)")?,
            Some(false) if matches!(i.kind, ErrorKind::Timeout { .. } | ErrorKind::Closed) => {
                f.write_str(" (the record was not written)")?
            }
            _ => {}
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind);
        if let Some(t) = &self.inner.topic {
            d.field("topic", t);
        }
        if let Some(p) = self.inner.partition {
            d.field("partition", &p);
        }
        if let Some(s) = &self.inner.source {
            d.field("source", &format_args!("{s}"));
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// `Result` with herald's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_send_sync_static() {
        fn assert<T: Send + Sync + 'static>() {}
        assert::<Error>();
    }

    #[test]
    fn code_names_follow_kafka() {
        assert_eq!(ErrorCode::NOT_LEADER_OR_FOLLOWER.name(), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(ErrorCode::MESSAGE_TOO_LARGE.name(), "MESSAGE_TOO_LARGE");
        assert_eq!(ErrorCode::KAFKA_STORAGE_ERROR.name(), "KAFKA_STORAGE_ERROR");
        assert_eq!(ErrorCode::new(-1).name(), "UNKNOWN_SERVER_ERROR");
        assert_eq!(ErrorCode::new(31000).name(), "UNKNOWN_ERROR_CODE");
        assert_eq!(ErrorCode::NOT_LEADER_OR_FOLLOWER.to_string(), "NOT_LEADER_OR_FOLLOWER (6)");
        assert!(ErrorCode::NOT_LEADER_OR_FOLLOWER.is_retriable());
        assert!(!ErrorCode::MESSAGE_TOO_LARGE.is_retriable());
    }

    #[test]
    fn display_names_topic_and_partition() {
        let t: Arc<str> = Arc::from("orders");
        let e = Error::broker(ErrorCode::MESSAGE_TOO_LARGE, None).for_partition(&t, Some(3));
        let s = e.to_string();
        assert!(s.starts_with("topic orders partition 3: broker returned MESSAGE_TOO_LARGE (10)"), "{s}");
        assert_eq!(e.topic(), Some("orders"));
        assert_eq!(e.partition(), Some(3));
        assert_eq!(e.code(), Some(ErrorCode::MESSAGE_TOO_LARGE));
    }

    #[test]
    fn authentication_errors_are_final() {
        for kind in [
            ErrorKind::Authentication { broker: "b:1".into(), reason: "wrong password".into() },
            ErrorKind::Tls { broker: "b:1".into(), reason: "expired".into() },
        ] {
            let e = Error::new(kind);
            assert!(e.is_authentication());
            assert!(!e.is_retriable());
            assert!(!e.may_have_been_written());
            assert!(e.to_string().contains("b:1"), "{e}");
        }
        assert!(!Error::new(ErrorKind::Closed).is_authentication());
    }
}
