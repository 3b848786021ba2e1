//! OpenTelemetry tracing of sends (feature `opentelemetry`): a built-in
//! [`ProducerInterceptor`] that gives each record a producer span and carries
//! its context to consumers in the record's headers.
//!
//! For each record, [`TracingInterceptor`]'s `on_send` starts a span of kind
//! PRODUCER as a child of the caller's current context
//! ([`opentelemetry::Context::current`]), named and described as the
//! OpenTelemetry semantic conventions for messaging (Kafka) say:
//!
//! | | |
//! |---|---|
//! | name | `send <topic>` |
//! | `messaging.system` | `kafka` |
//! | `messaging.operation.type`, `messaging.operation.name` | `send` |
//! | `messaging.destination.name` | the topic |
//! | `messaging.client.id` | the producer's `client.id` |
//! | `messaging.kafka.message.key` | the key, when it is UTF-8 |
//! | `messaging.kafka.message.tombstone` | `true` for a null value |
//!
//! and writes the span's context into the record's headers with the W3C Trace
//! Context propagator (`opentelemetry_sdk`'s `TraceContextPropagator`):
//! `traceparent`, and `tracestate` when the trace state is not empty, replacing
//! headers of those names the record had. A consumer in any language with a
//! Trace Context propagator (Java's `opentelemetry-kafka-clients`, say) continues
//! the trace from there. When the record's outcome is known, `on_acknowledgement`
//! sets `messaging.destination.partition.id` and `messaging.kafka.offset`, or
//! `error.type` (the broker's error code name, such as `NOT_LEADER_OR_FOLLOWER`,
//! or herald's [`ErrorKind`](crate::ErrorKind) name, such as `RecordTooLarge`)
//! and an Error status, and ends the span.
//!
//! Opt in with [`ProducerBuilder::opentelemetry`](crate::ProducerBuilder::opentelemetry)
//! (the global tracer provider, as installed when the producer is built) or
//! [`ProducerBuilder::opentelemetry_tracer`](crate::ProducerBuilder::opentelemetry_tracer):
//!
//! ```no_run
//! # async fn demo() -> Result<(), herald::Error> {
//! use opentelemetry::trace::{Tracer, FutureExt, TraceContextExt};
//!
//! // An SDK tracer provider installed by the application (exporter not shown).
//! let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
//! opentelemetry::global::set_tracer_provider(provider);
//!
//! let producer = herald::Producer::builder()
//!     .bootstrap_servers("127.0.0.1:9092")
//!     .opentelemetry()
//!     .build()?;
//! // The record's span is a child of the request's span.
//! let tracer = opentelemetry::global::tracer("checkout");
//! let request = opentelemetry::Context::current_with_span(tracer.start("POST /orders"));
//! let _guard = request.attach();
//! producer.send(herald::Record::new("orders").key("o-1").value("paid")).await?;
//! # Ok(()) }
//! ```

use opentelemetry::global::BoxedTracer;
use opentelemetry::propagation::{Injector, TextMapPropagator};
use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;

use crate::error::{Error, ErrorKind};
use crate::interceptor::ProducerInterceptor;
use crate::parts::Header;
use crate::record::{Record, RecordMetadata};

/// The built-in tracing interceptor: a PRODUCER span per record, its context in
/// the record's `traceparent` (and `tracestate`) header. See the [module
/// documentation](self).
///
/// ```
/// use herald::otel::TracingInterceptor;
/// use opentelemetry::trace::TracerProvider;
///
/// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
/// let interceptor = TracingInterceptor::with_tracer(provider.tracer("orders-service"))
///     .client_id("orders-producer");
/// # let _ = interceptor;
/// ```
pub struct TracingInterceptor<T = BoxedTracer> {
    tracer: T,
    client_id: Option<String>,
    propagator: TraceContextPropagator,
}

impl<T> std::fmt::Debug for TracingInterceptor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracingInterceptor").field("client_id", &self.client_id).finish()
    }
}

impl TracingInterceptor<BoxedTracer> {
    /// Traces with the global tracer provider's tracer (instrumentation scope
    /// `herald`, with herald's version), as installed now.
    pub fn new() -> Self {
        let scope = InstrumentationScope::builder("herald").with_version(env!("CARGO_PKG_VERSION")).build();
        TracingInterceptor::with_tracer(opentelemetry::global::tracer_with_scope(scope))
    }
}

impl Default for TracingInterceptor<BoxedTracer> {
    fn default() -> Self {
        TracingInterceptor::new()
    }
}

impl<T> TracingInterceptor<T>
where
    T: Tracer + Send + Sync + 'static,
    T::Span: Send + Sync + 'static,
{
    /// Traces with `tracer`.
    pub fn with_tracer(tracer: T) -> Self {
        TracingInterceptor { tracer, client_id: None, propagator: TraceContextPropagator::new() }
    }

    /// The `messaging.client.id` of its spans (the producer's `client.id`;
    /// [`ProducerBuilder::opentelemetry`](crate::ProducerBuilder::opentelemetry)
    /// sets it). Without it, spans have none.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }
}

impl<T> ProducerInterceptor for TracingInterceptor<T>
where
    T: Tracer + Send + Sync + 'static,
    T::Span: Send + Sync + 'static,
{
    /// The record's span, ended on acknowledgement.
    type State = T::Span;

    fn on_send(&self, record: &mut Record) -> T::Span {
        let topic = record.topic();
        let mut attributes = Vec::with_capacity(7);
        attributes.push(KeyValue::new("messaging.system", "kafka"));
        attributes.push(KeyValue::new("messaging.operation.type", "send"));
        attributes.push(KeyValue::new("messaging.operation.name", "send"));
        attributes.push(KeyValue::new("messaging.destination.name", topic.to_owned()));
        if let Some(id) = &self.client_id {
            attributes.push(KeyValue::new("messaging.client.id", id.clone()));
        }
        if let Some(key) = record.key_bytes().and_then(|k| std::str::from_utf8(k).ok()) {
            attributes.push(KeyValue::new("messaging.kafka.message.key", key.to_owned()));
        }
        if record.value_bytes().is_none() {
            attributes.push(KeyValue::new("messaging.kafka.message.tombstone", true));
        }
        let parent = Context::current();
        let span = self
            .tracer
            .span_builder(format!("send {topic}"))
            .with_kind(SpanKind::Producer)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        let cx = parent.with_remote_span_context(span.span_context().clone());
        self.propagator.inject_context(&cx, &mut HeaderInjector(record.headers_mut()));
        span
    }

    fn on_acknowledgement(&self, mut span: T::Span, outcome: Result<&RecordMetadata, &Error>) {
        match outcome {
            Ok(m) => {
                span.set_attribute(KeyValue::new(
                    "messaging.destination.partition.id",
                    m.partition().to_string(),
                ));
                if let Some(offset) = m.offset() {
                    span.set_attribute(KeyValue::new("messaging.kafka.offset", offset));
                }
            }
            Err(e) => {
                if let Some(p) = e.partition() {
                    span.set_attribute(KeyValue::new("messaging.destination.partition.id", p.to_string()));
                }
                span.set_attribute(KeyValue::new("error.type", error_type(e)));
                span.set_status(Status::error(e.to_string()));
            }
        }
        span.end();
    }
}

/// The `error.type` of an error: the broker's code name, else herald's kind.
pub(crate) fn error_type(e: &Error) -> String {
    if let Some(code) = e.code() {
        return code.name();
    }
    if let ErrorKind::Timeout { .. } = e.kind() {
        return "Timeout".to_owned();
    }
    // The variant's name: what its Debug form starts with.
    let debug = format!("{:?}", e.kind());
    let end = debug.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(debug.len());
    debug[..end].to_owned()
}

/// Writes propagation fields as record headers, replacing any of the same name;
/// an empty value (an empty `tracestate`) only removes.
struct HeaderInjector<'a>(&'a mut Vec<Header>);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.retain(|h| h.key != key);
        if !value.is_empty() {
            self.0.push(Header::new(key, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn error_type_names_the_code_or_the_kind() {
        let e = Error::broker(crate::ErrorCode::NOT_LEADER_OR_FOLLOWER, None);
        assert_eq!(error_type(&e), "NOT_LEADER_OR_FOLLOWER");
        let e = Error::new(ErrorKind::RecordTooLarge { size: 2, max: 1, limit: "max.request.size" });
        assert_eq!(error_type(&e), "RecordTooLarge");
        assert_eq!(error_type(&Error::new(ErrorKind::Closed)), "Closed");
        let e = Error::timeout(crate::TimeoutKind::Delivery, std::time::Duration::from_secs(1));
        assert_eq!(error_type(&e), "Timeout");
        let e = Error::new(ErrorKind::Closed).for_partition(&Arc::from("t"), Some(1));
        assert_eq!(error_type(&e), "Closed");
    }

    #[test]
    fn the_injector_replaces_and_drops_empty_values() {
        let mut headers =
            vec![Header::new("traceparent", "old"), Header::new("a", "1"), Header::new("tracestate", "x=1")];
        let mut inj = HeaderInjector(&mut headers);
        inj.set("traceparent", "new".into());
        inj.set("tracestate", String::new());
        assert_eq!(headers, vec![Header::new("a", "1"), Header::new("traceparent", "new")]);
    }
}
