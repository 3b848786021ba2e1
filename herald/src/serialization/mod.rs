//! Serializers: typed keys and values in, bytes out.
//!
//! A [`Serializer<T>`] turns a `T` into the bytes of a record's key or value. Like
//! Java's `Serializer.serialize(topic, headers, data)` it sees the topic, whether
//! it is serializing the key or the value, and the record's headers, which it may
//! extend. It is async because a Schema Registry serializer may have to register
//! its schema on first use.
//!
//! [`TypedProducer`] puts serializers in front of a [`Producer`]: it serializes
//! each [`TypedRecord`]'s key and value, and sends the resulting [`Record`]. A
//! serializer error fails that record's `send` (naming the topic, and whether the
//! key or the value failed) and affects no other record.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), herald::Error> {
//! # let cluster = herald::mock::MockCluster::builder().start().await?;
//! # cluster.create_topic("orders", 1)?;
//! # let bootstrap = cluster.bootstrap();
//! use herald::serialization::{JsonSerializer, LongSerializer, TypedProducer, TypedRecord};
//!
//! #[derive(serde::Serialize)]
//! struct Order { item: String, quantity: u32 }
//!
//! let producer = herald::Producer::builder().bootstrap_servers(bootstrap).build()?;
//! let orders = TypedProducer::new(producer, LongSerializer, JsonSerializer);
//! let written = orders
//!     .send_and_wait(TypedRecord::new("orders").key(42).value(Order { item: "tea".into(), quantity: 3 }))
//!     .await?;
//! assert_eq!(written.offset(), Some(0));
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - this file: the [`Serializer`] trait, its [`SerializationContext`], [`TypedRecord`]
//!   and [`TypedProducer`].
//! - [`primitives`]: bytes, strings, integers, floats and UUIDs, byte for byte as the
//!   Java client's `org.apache.kafka.common.serialization` serializers.
//! - `json` (feature `json`, on by default): [`JsonSerializer`] for any serde type.
//! - [`wire`]: the Confluent Schema Registry wire format (magic byte, schema id,
//!   Protobuf message indexes), encode and decode.
//! - `registry` (feature `schema-registry`): the Schema Registry REST client and
//!   subject name strategies.
//! - `avro` (feature `avro`), `protobuf` (feature `protobuf`), `json_schema`
//!   (feature `json-schema`): serializers that register their schema and write the
//!   Confluent wire format; the JSON Schema one checks each value against its
//!   schema first.

#[cfg(feature = "avro")]
#[cfg_attr(docsrs, doc(cfg(feature = "avro")))]
pub mod avro;
#[cfg(feature = "avro")]
mod avro_json;
#[cfg(feature = "json")]
mod json;
#[cfg(feature = "json-schema")]
#[cfg_attr(docsrs, doc(cfg(feature = "json-schema")))]
pub mod json_schema;
pub mod primitives;
#[cfg(feature = "protobuf")]
#[cfg_attr(docsrs, doc(cfg(feature = "protobuf")))]
pub mod protobuf;
#[cfg(feature = "schema-registry")]
#[cfg_attr(docsrs, doc(cfg(feature = "schema-registry")))]
pub mod registry;
pub mod wire;

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

#[cfg(feature = "json")]
pub use self::json::JsonSerializer;
pub use self::primitives::{
    BytesSerializer, DoubleSerializer, FloatSerializer, IntegerSerializer, LongSerializer, ShortSerializer,
    StringSerializer, UuidSerializer,
};
use crate::error::{Error, ErrorKind, Result};
use crate::producer::{DeliveryFuture, Producer};
use crate::record::{Header, Record, RecordMetadata};

/// Turns a `T` into the bytes of a record's key or value.
///
/// `Ok(None)` is a null key or value (as a Java serializer returning `null`). An
/// error fails only the record being serialized; build it with
/// [`SerializationContext::error`] so it says whether the key or the value failed.
///
/// Implement it with an `async fn`:
///
/// ```
/// use bytes::Bytes;
/// use herald::serialization::{SerializationContext, Serializer};
///
/// /// Upper-cases the text and records that it did in a header.
/// struct Shout;
///
/// impl Serializer<str> for Shout {
///     async fn serialize(&self, ctx: &mut SerializationContext<'_>, data: &str) -> Result<Option<Bytes>, herald::Error> {
///         if data.is_empty() {
///             return Err(ctx.error("nothing to shout"));
///         }
///         ctx.add_header("shouted", "true");
///         Ok(Some(Bytes::from(data.to_uppercase())))
///     }
/// }
/// ```
pub trait Serializer<T: ?Sized>: Send + Sync {
    /// Serializes `data` for the record described by `ctx`.
    fn serialize(
        &self,
        ctx: &mut SerializationContext<'_>,
        data: &T,
    ) -> impl Future<Output = Result<Option<Bytes>, Error>> + Send;
}

impl<T: ?Sized, S: Serializer<T> + ?Sized> Serializer<T> for Arc<S> {
    fn serialize(
        &self,
        ctx: &mut SerializationContext<'_>,
        data: &T,
    ) -> impl Future<Output = Result<Option<Bytes>, Error>> + Send {
        (**self).serialize(ctx, data)
    }
}

/// What a serializer knows about the record it serializes: its topic, whether it
/// is serializing the key or the value, and the record's headers (which it may add
/// to, as Java serializers do).
#[derive(Debug)]
pub struct SerializationContext<'a> {
    topic: &'a str,
    is_key: bool,
    headers: &'a mut Vec<Header>,
}

impl<'a> SerializationContext<'a> {
    /// A context for serializing the key (`is_key`) or the value of a record for
    /// `topic` with these headers. [`TypedProducer`] makes these; make one yourself to
    /// call a serializer directly.
    pub fn new(topic: &'a str, is_key: bool, headers: &'a mut Vec<Header>) -> SerializationContext<'a> {
        SerializationContext { topic, is_key, headers }
    }

    /// The record's topic.
    pub fn topic(&self) -> &str {
        self.topic
    }

    /// Whether the key (`true`) or the value is being serialized.
    pub fn is_key(&self) -> bool {
        self.is_key
    }

    /// The record's headers so far, in order.
    pub fn headers(&self) -> &[Header] {
        self.headers
    }

    /// The record's headers, to add, change or remove some.
    pub fn headers_mut(&mut self) -> &mut Vec<Header> {
        self.headers
    }

    /// Appends a header to the record.
    pub fn add_header(&mut self, key: impl Into<String>, value: impl Into<Bytes>) {
        self.headers.push(Header::new(key, value));
    }

    /// A [`ErrorKind::Serialization`] error for this record: it names the topic and
    /// whether the key or the value could not be serialized.
    pub fn error(&self, reason: impl Into<String>) -> Error {
        Error::from_kind(ErrorKind::Serialization { is_key: self.is_key, reason: reason.into() })
            .with_topic(self.topic, None)
    }
}

/// A record whose key and value are still typed: what [`TypedProducer::send`] takes.
/// It mirrors [`Record`]: a topic, an optional key and value, headers, and
/// optionally a timestamp and a partition.
///
/// A `None` key or value is sent as null without calling the serializer (Java
/// serializers return null for null).
///
/// ```
/// use herald::serialization::TypedRecord;
/// let r: TypedRecord<i64, String> = TypedRecord::new("orders").key(42).value("tea".to_owned()).header("source", "web");
/// assert_eq!(r.topic(), "orders");
/// ```
#[derive(Clone, PartialEq)]
#[must_use]
pub struct TypedRecord<K, V> {
    key: Option<K>,
    value: Option<V>,
    /// Everything but the key and value: topic, partition, headers, timestamp.
    rest: Record,
}

impl<K, V> TypedRecord<K, V> {
    /// A record for `topic` with a null key and value, no headers, the send time as
    /// its timestamp, and its partition chosen by the producer's partitioner.
    pub fn new(topic: impl Into<String>) -> TypedRecord<K, V> {
        TypedRecord { key: None, value: None, rest: Record::new(topic) }
    }

    /// A record for a topic looked up once with
    /// [`Producer::topic`](crate::Producer::topic) (see [`Record::to`]).
    pub fn to(topic: &crate::producer::Topic) -> TypedRecord<K, V> {
        TypedRecord { key: None, value: None, rest: Record::to(topic) }
    }

    /// Sets the key. The partitioner sees the key's serialized bytes.
    pub fn key(mut self, key: K) -> Self {
        self.key = Some(key);
        self
    }

    /// Sets the key, or clears it with `None` (a null key).
    pub fn key_opt(mut self, key: Option<K>) -> Self {
        self.key = key;
        self
    }

    /// Sets the value.
    pub fn value(mut self, value: V) -> Self {
        self.value = Some(value);
        self
    }

    /// Sets the value, or clears it with `None` (a null value: a tombstone).
    pub fn value_opt(mut self, value: Option<V>) -> Self {
        self.value = value;
        self
    }

    /// Appends a header (see [`Record::header`]). Serializers may append more after it.
    pub fn header(self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.map(|r| r.header(key, value))
    }

    /// Appends a header whose value may be null.
    pub fn header_opt(self, key: impl Into<String>, value: Option<impl Into<Bytes>>) -> Self {
        self.map(|r| r.header_opt(key, value))
    }

    /// Replaces all headers.
    pub fn headers(self, headers: Vec<Header>) -> Self {
        self.map(|r| r.headers(headers))
    }

    /// Sets the timestamp (see [`Record::timestamp`]).
    pub fn timestamp(self, timestamp_ms: i64) -> Self {
        self.map(|r| r.timestamp(timestamp_ms))
    }

    /// Sends the record to this partition, whatever its key.
    pub fn partition(self, partition: i32) -> Self {
        self.map(|r| r.partition(partition))
    }

    fn map(mut self, f: impl FnOnce(Record) -> Record) -> Self {
        self.rest = f(self.rest);
        self
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        self.rest.topic()
    }

    /// The key, `None` when null.
    pub fn key_ref(&self) -> Option<&K> {
        self.key.as_ref()
    }

    /// The value, `None` when null.
    pub fn value_ref(&self) -> Option<&V> {
        self.value.as_ref()
    }

    /// The headers set so far, in order.
    pub fn header_list(&self) -> &[Header] {
        self.rest.header_list()
    }

    /// The timestamp set by the caller, if any.
    pub fn timestamp_ms(&self) -> Option<i64> {
        self.rest.timestamp_ms()
    }

    /// The partition set by the caller, if any.
    pub fn partition_hint(&self) -> Option<i32> {
        self.rest.partition_hint()
    }
}

impl<K, V> fmt::Debug for TypedRecord<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedRecord")
            .field("topic", &self.topic())
            .field("partition", &self.partition_hint())
            .field("key", &self.key.as_ref().map(|_| ".."))
            .field("value", &self.value.as_ref().map(|_| ".."))
            .field("headers", &self.header_list().len())
            .field("timestamp", &self.timestamp_ms())
            .finish()
    }
}

/// A [`Producer`] with a key serializer and a value serializer in front of it.
///
/// Cheap to clone (the producer and both serializers are shared), so one instance
/// can serve many tasks. Several `TypedProducer`s with different types may share
/// one [`Producer`] (clone it).
pub struct TypedProducer<K, V, KS, VS> {
    producer: Producer,
    key_serializer: Arc<KS>,
    value_serializer: Arc<VS>,
    types: PhantomData<fn(&K, &V)>,
}

impl<K, V, KS, VS> Clone for TypedProducer<K, V, KS, VS> {
    fn clone(&self) -> Self {
        TypedProducer {
            producer: self.producer.clone(),
            key_serializer: self.key_serializer.clone(),
            value_serializer: self.value_serializer.clone(),
            types: PhantomData,
        }
    }
}

impl<K, V, KS, VS> fmt::Debug for TypedProducer<K, V, KS, VS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedProducer")
            .field("producer", &self.producer)
            .field("key_serializer", &std::any::type_name::<KS>())
            .field("value_serializer", &std::any::type_name::<VS>())
            .finish()
    }
}

impl<K, V, KS, VS> TypedProducer<K, V, KS, VS>
where
    K: Send + Sync,
    V: Send + Sync,
    KS: Serializer<K>,
    VS: Serializer<V>,
{
    /// Serializes keys with `key_serializer` and values with `value_serializer`, and
    /// sends through `producer`.
    pub fn new(producer: Producer, key_serializer: KS, value_serializer: VS) -> Self {
        TypedProducer {
            producer,
            key_serializer: Arc::new(key_serializer),
            value_serializer: Arc::new(value_serializer),
            types: PhantomData,
        }
    }

    /// The producer records are sent through.
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Serializes the key and then the value (each serializer may add headers), and
    /// returns the [`Record`] that [`send`](Self::send) would send.
    ///
    /// A serializer error is returned naming the topic and whether the key or the
    /// value failed; nothing is sent.
    pub async fn serialize(&self, record: TypedRecord<K, V>) -> Result<Record> {
        let TypedRecord { key, value, rest: mut out } = record;
        let topic = out.topic().to_owned();
        let partition = out.partition;
        let key_bytes = match &key {
            None => None,
            Some(k) => {
                let mut ctx = SerializationContext::new(&topic, true, &mut out.headers);
                self.key_serializer
                    .serialize(&mut ctx, k)
                    .await
                    .map_err(|e| name_topic(e, &topic, partition))?
            }
        };
        let value_bytes = match &value {
            None => None,
            Some(v) => {
                let mut ctx = SerializationContext::new(&topic, false, &mut out.headers);
                self.value_serializer
                    .serialize(&mut ctx, v)
                    .await
                    .map_err(|e| name_topic(e, &topic, partition))?
            }
        };
        Ok(out.key_opt(key_bytes).value_opt(value_bytes))
    }

    /// Serializes the record and queues it with [`Producer::send`]; returns the
    /// future of its outcome.
    ///
    /// An error here means this record was not sent: a serializer failed
    /// ([`ErrorKind::Serialization`], or [`ErrorKind::SchemaRegistry`] when the
    /// registry could not be reached), or the producer refused it. Other records are
    /// not affected.
    pub async fn send(&self, record: TypedRecord<K, V>) -> Result<DeliveryFuture> {
        let record = self.serialize(record).await?;
        self.producer.send(record).await
    }

    /// [`send`](Self::send), then waits for the outcome.
    pub async fn send_and_wait(&self, record: TypedRecord<K, V>) -> Result<RecordMetadata> {
        self.send(record).await?.await
    }

    /// Waits until every record sent so far is delivered or failed
    /// ([`Producer::flush`]).
    pub async fn flush(&self) -> Result<()> {
        self.producer.flush().await
    }

    /// Closes the producer ([`Producer::close`]): this closes it for every clone
    /// and for other `TypedProducer`s sharing it.
    pub async fn close(&self, timeout: Duration) -> Result<()> {
        self.producer.close(timeout).await
    }
}

/// A serializer's error names the record's topic, even when the serializer did not.
fn name_topic(e: Error, topic: &str, partition: Option<i32>) -> Error {
    if e.topic().is_some() { e } else { e.with_topic(topic, partition) }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tagging;

    impl Serializer<str> for Tagging {
        async fn serialize(&self, ctx: &mut SerializationContext<'_>, data: &str) -> Result<Option<Bytes>> {
            if data == "bad" {
                return Err(ctx.error("bad input"));
            }
            let tag = format!("{}:{}", ctx.topic(), if ctx.is_key() { "key" } else { "value" });
            ctx.add_header("tag", tag);
            Ok(Some(Bytes::copy_from_slice(data.as_bytes())))
        }
    }

    #[test]
    fn context_errors_name_topic_and_side() {
        let mut headers = Vec::new();
        let ctx = SerializationContext::new("orders", true, &mut headers);
        let e = ctx.error("no good");
        assert_eq!(e.topic(), Some("orders"));
        assert_eq!(e.kind(), &ErrorKind::Serialization { is_key: true, reason: "no good".into() });
        assert_eq!(e.to_string(), "topic orders: could not serialize the key: no good");
    }

    #[tokio::test]
    async fn serializers_add_headers_after_the_callers() {
        let producer = Producer::builder().bootstrap_servers("127.0.0.1:1").build().unwrap();
        let typed = TypedProducer::new(producer, Arc::new(StrAdapter), StrAdapter);
        let _shared = typed.clone();
        let rec = typed
            .serialize(
                TypedRecord::new("t")
                    .key("k".to_owned())
                    .value("v".to_owned())
                    .header("h", "1")
                    .partition(2)
                    .timestamp(7),
            )
            .await
            .unwrap();
        let keys: Vec<_> =
            rec.header_list().iter().map(|h| (h.key.as_str(), h.value.clone().unwrap())).collect();
        assert_eq!(
            keys,
            vec![("h", Bytes::from("1")), ("tag", Bytes::from("t:key")), ("tag", Bytes::from("t:value"))]
        );
        assert_eq!(rec.partition_hint(), Some(2));
        assert_eq!(rec.timestamp_ms(), Some(7));
        assert_eq!(rec.key_bytes(), Some(&Bytes::from("k")));

        let err = typed
            .serialize(TypedRecord::new("t").key("k".to_owned()).value("bad".to_owned()).partition(1))
            .await;
        let err = err.unwrap_err();
        assert_eq!(err.topic(), Some("t"));
        assert!(matches!(err.kind(), ErrorKind::Serialization { is_key: false, .. }));

        let nulls = typed.serialize(TypedRecord::new("t")).await.unwrap();
        assert!(nulls.key_bytes().is_none() && nulls.value_bytes().is_none());
        assert!(nulls.header_list().is_empty(), "null data is not handed to the serializer");
    }

    struct StrAdapter;

    impl Serializer<String> for StrAdapter {
        async fn serialize(
            &self,
            ctx: &mut SerializationContext<'_>,
            data: &String,
        ) -> Result<Option<Bytes>> {
            Tagging.serialize(ctx, data.as_str()).await
        }
    }
}
