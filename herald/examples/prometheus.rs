//! Serves the producer's metrics at `http://127.0.0.1:9187/metrics` for Prometheus
//! (metrics-exporter-prometheus's HTTP listener) while it produces a record every
//! 100 ms; herald's feature `metrics` publishes them through the `metrics` facade.
//!
//! ```text
//! cargo run -p herald --example prometheus --features metrics,mock -- [BOOTSTRAP] [TOPIC] [ADDR]
//! curl -s 127.0.0.1:9187/metrics | grep herald_producer_record_send_total
//! ```
//!
//! Without a bootstrap (or with `-`) it produces into an embedded cluster
//! (`herald::mock`). Ctrl-C stops it.

use std::net::SocketAddr;
use std::time::Duration;

use herald::{Producer, Record};
use metrics_exporter_prometheus::PrometheusBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().filter(|b| b != "-");
    let topic = args.next().unwrap_or_else(|| "herald-prometheus".to_owned());
    let addr: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:9187").parse()?;

    // The embedded cluster when no broker is given; kept alive until the end.
    let mut cluster = None;
    let bootstrap = match bootstrap {
        Some(b) => b,
        None => {
            let c = herald::mock::MockCluster::builder().brokers(1).start().await?;
            c.create_topic(&topic, 3)?;
            let b = c.bootstrap();
            cluster = Some(c);
            b
        }
    };

    // The recorder first, then the producer and its publisher.
    PrometheusBuilder::new().with_http_listener(addr).install()?;
    let producer =
        Producer::builder().bootstrap_servers(&bootstrap).client_id("prometheus-example").build()?;
    let publisher = herald::metrics::publish(&producer, Duration::from_secs(1));
    println!("producing to {topic} on {bootstrap}; metrics at http://{addr}/metrics");

    let mut n = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                let record = Record::new(&topic).key(format!("k{}", n % 10)).value(format!("record {n}"));
                if let Err(e) = producer.send(record).await {
                    eprintln!("refused: {e}");
                }
                n += 1;
            }
        }
    }
    producer.close(Duration::from_secs(10)).await?;
    publisher.stop();
    drop(cluster);
    Ok(())
}
