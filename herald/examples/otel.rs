//! Traces records with OpenTelemetry: each record gets a PRODUCER span, child of
//! the span current when it is sent, and carries that span's context in its W3C
//! `traceparent` header, where a consumer continues the trace.
//!
//! Self-contained (an embedded cluster, spans kept in memory and printed):
//!
//! ```sh
//! cargo run -p herald --example otel --features opentelemetry,mock
//! ```
//!
//! In an application, install a tracer provider with a real exporter (OTLP, say)
//! as the global one and call `ProducerBuilder::opentelemetry()` instead.

use herald::mock::MockCluster;
use herald::{Producer, Record, TopicReader};
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = MockCluster::builder().brokers(1).start().await?;
    cluster.create_topic("orders", 3)?;

    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let producer = Producer::builder()
        .bootstrap_servers(cluster.bootstrap())
        .client_id("checkout")
        .opentelemetry_tracer(provider.tracer("checkout"))
        .build()?;

    // The application's own span, current while the record is sent.
    let request =
        opentelemetry::Context::current_with_span(provider.tracer("checkout").start("POST /orders"));
    let send = {
        let _current = request.clone().attach();
        producer.send(Record::new("orders").key("order-17").value(r#"{"total":42}"#))
    };
    let written = send.await?.await?;
    request.span().end();
    producer.close(std::time::Duration::from_secs(10)).await?;

    println!("written to partition {} offset {:?}", written.partition(), written.offset());
    for span in exporter.get_finished_spans()? {
        println!(
            "span {:?} ({:?}) trace {} span {}",
            span.name,
            span.span_kind,
            span.span_context.trace_id(),
            span.span_context.span_id()
        );
        for kv in &span.attributes {
            println!("    {} = {}", kv.key, kv.value);
        }
    }
    for record in TopicReader::new(&cluster.bootstrap())?.read_to_end("orders").await? {
        for h in record.headers {
            println!(
                "header {} = {}",
                h.key,
                String::from_utf8_lossy(h.value.as_deref().unwrap_or_default())
            );
        }
    }
    Ok(())
}
