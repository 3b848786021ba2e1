#![doc = include_str!("../../README.md")]
//!
//! # Layout
//! Dependencies point one way, from the pure protocol up to the producer:
//! - [`record`]: what callers send ([`Record`], [`Header`]) and get back ([`RecordMetadata`]).
//! - [`partitioner`]: murmur2 exactly as Java, round-robin and sticky, the [`Partitioner`] trait.
//! - `protocol` (private): request framing over the `kafka-protocol` crate, and herald's
//!   own RecordBatch v2 writer. Pure: no I/O.
//! - `connection` (private): one TCP connection per broker, pipelined requests matched by
//!   correlation id, API versions negotiated at connect.
//! - `metadata` (private): which broker leads which partition.
//! - [`producer`]: the accumulator (per-partition batches), the sender task, delivery futures.
//! - [`admin`]: create and delete topics, describe partitions.
//! - [`reader`]: read a topic back (not a consumer: no groups, no offsets).
//! - [`serialization`]: typed keys and values ([`serialization::TypedProducer`]), Java's
//!   built-in serializers byte for byte, JSON, and Avro/Protobuf/JSON Schema with a Schema Registry.
//! - `mock` (feature `mock`): an embedded Kafka cluster speaking the real protocol.
//! - [`config`]: every setting and its Kafka default; Kafka property names.
//! - [`security`]: TLS (rustls) and SASL settings; secrets masked in `Debug`.
//! - [`error`]: one [`Error`] type, matchable through [`ErrorKind`].
//! - `otel` (feature `opentelemetry`): the OpenTelemetry tracing interceptor.
//! - [`interceptor`]: [`ProducerInterceptor`], code that sees every record sent and its outcome.
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod admin;
mod backoff;
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod bench_internals;
mod client;
mod clock;
mod compression;
pub mod config;
mod connection;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod interceptor;
mod metadata;
pub mod metrics;
#[cfg(feature = "mock")]
#[cfg_attr(docsrs, doc(cfg(feature = "mock")))]
pub mod mock;
#[cfg(feature = "opentelemetry")]
#[cfg_attr(docsrs, doc(cfg(feature = "opentelemetry")))]
pub mod otel;
pub mod partitioner;
mod parts;
pub mod producer;
pub mod properties;
mod protocol;
pub mod reader;
pub mod record;
pub mod security;
pub mod serialization;

pub use crate::admin::{Admin, NewTopic, TopicDescription};
pub use crate::config::{Acks, Compression, ProducerConfig, SerializerSettings};
pub use crate::error::{Error, ErrorCode, ErrorKind, Result, TimeoutKind};
pub use crate::interceptor::ProducerInterceptor;
pub use crate::metrics::ProducerMetrics;
pub use crate::partitioner::{NullKeyPartitioning, Partitioner, Partitions};
pub use crate::producer::{
    ConsumerGroupMetadata, DeliveryFuture, Producer, ProducerBuilder, SendFuture, Topic, TxnOffset,
};
pub use crate::reader::{ConsumedRecord, IsolationLevel, ReadOptions, StartOffset, TopicReader};
pub use crate::record::{Header, Record, RecordMetadata, TimestampType};
pub use crate::security::{
    OAuthBearerToken, OidcConfig, SaslMechanism, Secret, SecurityProtocol, TokenProvider,
};
