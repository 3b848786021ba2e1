//! OpenTelemetry tracing (feature `opentelemetry`), against the cluster under
//! test: each record gets a PRODUCER span, child of the sender's current context,
//! with the messaging semantic conventions' attributes, ended with the record's
//! partition and offset or its error; the span's context travels in the record's
//! W3C `traceparent` header, which the Java `KafkaConsumer` reads back byte for
//! byte.
#![cfg(feature = "opentelemetry")]

mod support;

use std::time::Duration;

use herald::{Record, TopicReader};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use support::{bootstrap, consume_with_java, create_topic, producer_builder};

fn tracing() -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    (provider, exporter)
}

fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.clone())
}

fn string(s: &str) -> Option<Value> {
    Some(Value::from(s.to_owned()))
}

/// The one finished span named `name`.
fn span_named(exporter: &InMemorySpanExporter, name: &str) -> SpanData {
    let spans = exporter.get_finished_spans().unwrap();
    let mut found = spans.into_iter().filter(|s| s.name == name);
    let span = found.next().unwrap_or_else(|| panic!("no span {name}"));
    assert!(found.next().is_none(), "one span {name}");
    span
}

/// The W3C traceparent a span's context propagates as (version 00, sampled).
fn traceparent(span: &SpanData) -> String {
    let c = &span.span_context;
    format!("00-{}-{}-{:02x}", c.trace_id(), c.span_id(), c.trace_flags().to_u8())
}

#[tokio::test]
async fn a_record_s_span_is_a_child_of_the_current_context_and_its_traceparent_says_so() {
    let topic = create_topic("otel-span", 3, &[]).await;
    let (provider, exporter) = tracing();
    let tracer = provider.tracer("herald-tests");
    let producer = producer_builder()
        .client_id("otel-test")
        .opentelemetry_tracer(provider.tracer("herald"))
        .build()
        .unwrap();

    let parent = Context::current_with_span(tracer.start("handle request"));
    let parent_span = parent.span().span_context().clone();
    let send = {
        let _attached = parent.clone().attach();
        producer.send(Record::new(&topic).key("order-1").value("paid"))
    };
    let written = send.await.unwrap().await.unwrap();
    producer.close(Duration::from_secs(30)).await.unwrap();

    // The span ended before the record's future resolved.
    let span = span_named(&exporter, &format!("send {topic}"));
    assert_eq!(span.span_kind, SpanKind::Producer);
    assert_eq!(span.span_context.trace_id(), parent_span.trace_id(), "same trace as the current context");
    assert_eq!(span.parent_span_id, parent_span.span_id(), "child of the current context's span");
    assert_eq!(span.status, Status::Unset);
    for (key, value) in [
        ("messaging.system", string("kafka")),
        ("messaging.operation.type", string("send")),
        ("messaging.operation.name", string("send")),
        ("messaging.destination.name", string(&topic)),
        ("messaging.client.id", string("otel-test")),
        ("messaging.kafka.message.key", string("order-1")),
        ("messaging.destination.partition.id", string(&written.partition().to_string())),
        ("messaging.kafka.offset", Some(Value::I64(written.offset().unwrap()))),
        ("messaging.kafka.message.tombstone", None),
        ("error.type", None),
    ] {
        assert_eq!(attribute(&span, key), value, "{key}");
    }

    let read = TopicReader::new(&bootstrap()).unwrap().read_to_end(&topic).await.unwrap();
    assert_eq!(read.len(), 1);
    let headers: Vec<_> = read[0].headers.iter().map(|h| h.key.as_str()).collect();
    assert_eq!(headers, ["traceparent"], "no tracestate: the trace state is empty");
    let header = std::str::from_utf8(read[0].headers[0].value.as_deref().unwrap()).unwrap().to_owned();
    assert_eq!(header, traceparent(&span), "the header carries the record's span");
    assert!(header.contains(&parent_span.trace_id().to_string()));
}

#[tokio::test]
async fn a_refused_record_s_span_ends_with_its_error() {
    let topic = create_topic("otel-error", 1, &[]).await;
    let (provider, exporter) = tracing();
    let producer = producer_builder()
        .max_request_size(1_000)
        .opentelemetry_tracer(provider.tracer("herald"))
        .build()
        .unwrap();
    let e = producer.send(Record::new(&topic).value(vec![0u8; 2_000])).await.unwrap_err();
    producer.close(Duration::from_secs(30)).await.unwrap();

    let span = span_named(&exporter, &format!("send {topic}"));
    assert_eq!(attribute(&span, "error.type"), string("RecordTooLarge"));
    assert_eq!(span.status, Status::error(e.to_string()));
    assert_eq!(attribute(&span, "messaging.kafka.offset"), None);
    assert_eq!(attribute(&span, "messaging.kafka.message.key"), None, "no key");
    assert_eq!(attribute(&span, "messaging.kafka.message.tombstone"), None);
    assert_eq!(span.parent_span_id, opentelemetry::trace::SpanId::INVALID, "no current span: a root");
}

#[tokio::test]
async fn the_java_consumer_reads_the_traceparent_header_byte_for_byte() {
    let topic = create_topic("otel-java", 2, &[]).await;
    let (provider, exporter) = tracing();
    let tracer = provider.tracer("herald-tests");
    let producer = producer_builder().opentelemetry_tracer(provider.tracer("herald")).build().unwrap();
    let mut sent = Vec::new();
    for i in 0..4 {
        // Each record in a trace of its own, one with a stale header to replace.
        let cx = Context::current_with_span(tracer.start(format!("request {i}")));
        let mut record = Record::new(&topic).key(format!("k{i}")).value(format!("v{i}")).header("app", "x");
        if i == 0 {
            record = record.header("traceparent", "00-00000000000000000000000000000001-0000000000000001-01");
        }
        let send = {
            let _attached = cx.attach();
            producer.send(record)
        };
        sent.push(send.await.unwrap());
    }
    let mut written = Vec::new();
    for f in sent {
        written.push(f.await.unwrap());
    }
    producer.close(Duration::from_secs(30)).await.unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let consumed = consume_with_java(&topic).await;
    assert_eq!(consumed.len(), 4);
    for m in &written {
        let c = consumed
            .iter()
            .find(|c| (c.partition, c.offset) == (m.partition(), m.offset().unwrap()))
            .unwrap();
        let span = spans
            .iter()
            .find(|s| {
                attribute(s, "messaging.kafka.offset") == Some(Value::I64(c.offset))
                    && attribute(s, "messaging.destination.partition.id") == string(&c.partition.to_string())
            })
            .expect("the record's span");
        let keys: Vec<_> = c.headers.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(keys, ["app", "traceparent"], "the stale traceparent was replaced, not repeated");
        assert_eq!(
            c.headers[1].value.as_deref(),
            Some(traceparent(span).as_bytes()),
            "the Java consumer reads the span's traceparent byte for byte"
        );
    }
}

#[tokio::test]
async fn without_a_tracer_provider_nothing_is_injected() {
    // No global provider installed in this test binary: the global tracer is a
    // no-op, and a record sent outside any span carries no traceparent.
    let topic = create_topic("otel-noop", 1, &[]).await;
    let producer = producer_builder().opentelemetry().build().unwrap();
    producer.send(Record::new(&topic).value("v")).await.unwrap().await.unwrap();
    producer.close(Duration::from_secs(30)).await.unwrap();
    let read = TopicReader::new(&bootstrap()).unwrap().read_to_end(&topic).await.unwrap();
    assert!(read[0].headers.is_empty(), "{:?}", read[0].headers);
}
