//! Client telemetry push (KIP-714, `enable.metrics.push`).
//!
//! Against a broker started with `harness/kafka start --telemetry` (scripts/test.sh
//! sets `HERALD_TEST_TELEMETRY` to the file its plugin, java-tools'
//! `TelemetryRecorder`, writes): a `CLIENT_METRICS` subscription set with the Java
//! Admin client, herald's pushes decoded by the broker with Kafka's own
//! OpenTelemetry classes, and the terminating push carrying the final totals.
//! Against any other cluster: a broker with no telemetry plugin leaves the APIs
//! out of ApiVersions (Kafka 3.9 and 4.x alike) and herald asks nothing; the
//! embedded cluster, a broker with a plugin but no subscription, is asked once
//! and gets nothing pushed; with `enable.metrics.push=false` it is not asked.

mod support;

use std::time::Duration;

use herald::{Producer, Record};
use serde::Deserialize;
use support::{bootstrap, create_topic, embedded, java, producer_builder, topic_name};

async fn send_all(p: &Producer, topic: &str, n: usize) {
    let mut futures = Vec::new();
    for i in 0..n {
        futures.push(p.send(Record::new(topic).value(format!("v{i}"))).await.expect("accepted"));
    }
    for f in futures {
        f.await.expect("delivered");
    }
}

/// One push as `TelemetryRecorder` wrote it.
#[derive(Debug, Deserialize)]
struct Push {
    client_instance_id: String,
    client_id: String,
    terminating: bool,
    content_type: String,
    metrics: Vec<Point>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Point {
    name: String,
    kind: String,
    value: Option<f64>,
    attributes: std::collections::BTreeMap<String, String>,
}

fn pushes_of(file: &str, instance_id: &str) -> Vec<Push> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Push>(l).ok())
        .filter(|p| p.client_instance_id == instance_id)
        .collect()
}

#[tokio::test]
#[ignore = "needs a broker started with harness/kafka start --telemetry (HERALD_TEST_TELEMETRY)"]
async fn the_broker_plugin_receives_the_subscribed_metrics_and_the_final_totals() {
    let file = std::env::var("HERALD_TEST_TELEMETRY").expect("HERALD_TEST_TELEMETRY: the plugin's file");
    let client_id = topic_name("herald-telemetry");
    let b = bootstrap();
    java(
        "dev.herald.tools.ClientMetrics",
        &[
            "--bootstrap",
            &b,
            "--name",
            &client_id,
            "--metrics",
            "org.apache.kafka.producer.",
            "--interval-ms",
            "1000",
            "--match",
            &format!("client_id={client_id}"),
        ],
        None,
    )
    .await;
    let topic = create_topic("telemetry", 2, &[]).await;
    let p = producer_builder().client_id(&client_id).build().unwrap();
    const N: usize = 50;
    send_all(&p, &topic, N).await;
    // The broker assigns the instance id; the first push follows within 0.5–1.5
    // intervals, then one a second.
    let mut id = None;
    let mut periodic = Vec::new();
    for _ in 0..150 {
        id = id.or_else(|| p.client_instance_id());
        if let Some(id) = &id {
            periodic = pushes_of(&file, id);
            if periodic.len() >= 2 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let id = id.expect("the broker assigned a client instance id");
    assert!(periodic.len() >= 2, "two periodic pushes within 15 s: {periodic:?}");
    send_all(&p, &topic, N).await;
    p.close(Duration::from_secs(10)).await.unwrap();

    let pushes = pushes_of(&file, &id);
    for push in &pushes {
        assert_eq!(push.error, None, "the broker's OpenTelemetry classes decode every push: {push:?}");
        assert_eq!(push.client_id, client_id);
        assert_eq!(push.content_type, "OTLP", "Kafka's name for a decompressed MetricsData");
        assert!(
            push.metrics.iter().all(|m| m.name.starts_with("org.apache.kafka.producer.")),
            "only the subscribed prefix"
        );
    }
    let last = pushes.last().expect("pushes");
    assert!(last.terminating, "close ends with a terminating push: {pushes:?}");
    assert_eq!(pushes.iter().filter(|p| p.terminating).count(), 1);
    // Sums are deltas or cumulative as the broker's subscription says (Kafka 4.3
    // asks for deltas): either way they add up to every record sent.
    let total_of = |name: &str, topic: Option<&str>| {
        let points: Vec<&Point> = pushes
            .iter()
            .filter_map(|p| {
                p.metrics
                    .iter()
                    .find(|m| m.name == name && m.attributes.get("topic").map(String::as_str) == topic)
            })
            .collect();
        assert_eq!(points.len(), pushes.len(), "{name} in every push");
        let kind = points[0].kind.clone();
        assert!(points.iter().all(|m| m.kind == kind));
        match kind.as_str() {
            "delta" => points.iter().filter_map(|m| m.value).sum::<f64>(),
            "cumulative" => points.last().and_then(|m| m.value).unwrap_or(f64::NAN),
            other => panic!("{name} is a {other}, not a sum"),
        }
    };
    assert_eq!(total_of("org.apache.kafka.producer.record.send.total", None), 2.0 * N as f64, "{pushes:?}");
    assert_eq!(total_of("org.apache.kafka.producer.topic.record.send.total", Some(&topic)), 2.0 * N as f64);
    assert_eq!(total_of("org.apache.kafka.producer.record.error.total", None), 0.0);
    let rate = last.metrics.iter().find(|m| m.name == "org.apache.kafka.producer.record.send.rate").unwrap();
    assert_eq!(rate.kind, "gauge");
    let first = pushes[0].metrics.iter().find(|m| m.name == "org.apache.kafka.producer.record.send.total");
    assert!(
        first.and_then(|m| m.value).unwrap() >= N as f64,
        "the first push came after the first {N} records"
    );
}

#[tokio::test]
async fn a_cluster_that_subscribes_to_nothing_gets_nothing_and_records_flow() {
    let topic = create_topic("telemetry-none", 1, &[]).await;
    let client_id = topic_name("herald-telemetry-none");
    let p = producer_builder().client_id(&client_id).build().unwrap();
    assert!(p.config().enable_metrics_push, "on by default, as in Java");
    send_all(&p, &topic, 20).await;
    p.flush().await.unwrap();
    match embedded() {
        Some(cluster) => {
            // A plugin but no subscription: asked once, nothing pushed.
            for _ in 0..100 {
                if cluster.telemetry_requests(&client_id).subscriptions > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let r = cluster.telemetry_requests(&client_id);
            assert_eq!((r.subscriptions, r.pushes), (1, 0), "{r:?}");
            for _ in 0..100 {
                if p.client_instance_id().is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(p.client_instance_id().is_some(), "the cluster assigned an instance id");
        }
        None if std::env::var("HERALD_TEST_TELEMETRY").is_err() => {
            // No plugin: the broker does not offer the APIs, so herald never asked.
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert_eq!(p.client_instance_id(), None);
        }
        None => {}
    }
    p.close(Duration::from_secs(10)).await.unwrap();
    if let Some(cluster) = embedded() {
        assert_eq!(
            cluster.telemetry_requests(&client_id).pushes,
            0,
            "no terminating push without a subscription"
        );
    }
}

#[tokio::test]
async fn enable_metrics_push_false_asks_nothing() {
    let topic = create_topic("telemetry-off", 1, &[]).await;
    let client_id = topic_name("herald-telemetry-off");
    let p = producer_builder().client_id(&client_id).set("enable.metrics.push", "false").build().unwrap();
    send_all(&p, &topic, 20).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(p.client_instance_id(), None);
    p.close(Duration::from_secs(10)).await.unwrap();
    if let Some(cluster) = embedded() {
        let r = cluster.telemetry_requests(&client_id);
        assert_eq!((r.subscriptions, r.pushes), (0, 0), "{r:?}");
    }
}
