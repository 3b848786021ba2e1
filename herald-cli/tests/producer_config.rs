//! `herald produce` and `herald bench` with a Java producer's `.properties` file
//! (`--producer.config FILE`, as Kafka's console producer takes it, or kcat's
//! `-F FILE`), against the cluster under test (the embedded one, or
//! `HERALD_TEST_BOOTSTRAP`).

mod common;
#[path = "../../herald/tests/support/mod.rs"]
mod support;

use std::path::PathBuf;

use common::{herald, json_lines};
use support::{bootstrap, create_topic};

/// Writes `text` to a fresh `.properties` file and returns its path.
fn properties_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[tokio::test]
async fn a_java_producer_properties_file_configures_produce() {
    let topic = create_topic("cli-config", 3, &[]).await;
    let (_dir, path) = properties_file(
        "producer.properties",
        &format!(
            "# the Java service's producer.properties\n\
             bootstrap.servers={}\n\
             client.id=orders-cli\n\
             key.serializer=org.apache.kafka.common.serialization.StringSerializer\n\
             value.serializer=org.apache.kafka.common.serialization.StringSerializer\n\
             client.rack=eu-west-1a\n\
             acks=all\n\
             linger.ms=10\n\
             compression.type=zstd\n\
             enable.metrics.push=true\n\
             metadata.recovery.strategy=rebootstrap\n",
            bootstrap()
        ),
    );
    // No --bootstrap-server: the file's bootstrap.servers is the cluster.
    let out = herald(
        &[
            "-v",
            "produce",
            "-F",
            path.to_str().unwrap(),
            "-t",
            &topic,
            "--key-separator",
            ":",
            "--report",
            "json",
        ],
        "k1:a\nk2:b\nk3:c\n",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("embedded cluster"), "{stderr}");
    let report = json_lines(&out);
    assert_eq!(report.len(), 3);
    assert!(report.iter().all(|r| r["offset"].is_i64()), "{report:?}");
    // One line per property with no effect, saying why, once.
    for (property, why) in [
        ("key.serializer", "herald records carry bytes"),
        ("value.serializer", "herald records carry bytes"),
        ("client.rack", "a consumer setting"),
        ("metadata.recovery.strategy", "rebootstrap"),
    ] {
        let lines: Vec<&str> =
            stderr.lines().filter(|l| l.contains(&format!("{property} has no effect"))).collect();
        assert_eq!(lines.len(), 1, "{property}: {stderr}");
        assert!(lines[0].contains(why), "{}", lines[0]);
    }
    // enable.metrics.push is supported (KIP-714 client telemetry): no such line.
    assert!(!stderr.contains("enable.metrics.push has no effect"), "{stderr}");
}

#[tokio::test]
async fn the_command_line_overrides_the_file() {
    let topic = create_topic("cli-config-override", 1, &[]).await;
    // The file points at no broker and allows no record; --bootstrap-server and -X win.
    let (_dir, path) = properties_file(
        "p.properties",
        "bootstrap.servers=127.0.0.1:1\nmax.request.size=10\nmessage.timeout.ms=40000\nrequest.timeout.ms=5000\n",
    );
    let file = path.to_str().unwrap();
    let b = bootstrap();
    let out =
        herald(&["produce", "--producer.config", file, "-b", &b, "-t", &topic, "--report", "json"], "a\n");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json_lines(&out);
    assert!(report[0]["error"].as_str().unwrap().contains("max.request.size"), "{report:?}");
    let out = herald(
        &["produce", "--producer.config", file, "-b", &b, "-t", &topic, "-X", "max.request.size=1048576"],
        "a\nb\n",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 records delivered"));
}

#[test]
fn a_refused_property_names_the_file_and_line_and_never_a_secret() {
    let (_dir, path) = properties_file(
        "secure.properties",
        "security.protocol=SASL_SSL\n\
         sasl.mechanism=SCRAM-SHA-256\n\
         sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n\
         \x20   username=\"alice\" password=\"hunter2-secret\";\n\
         interceptor.classes=com.example.Audit\n",
    );
    let file = path.to_str().unwrap();
    let out = herald(&["produce", "-F", file, "-t", "t"], "a\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("interceptor.classes") && stderr.contains("interceptors are Java classes"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("{file} line 5")), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");

    // A malformed escape in a secret's value: the line, never the value.
    let (_dir, path) = properties_file("bad.properties", "acks=all\nssl.key.password=hunter2-secret\\u12\n");
    let out = herald(&["produce", "-F", path.to_str().unwrap(), "-t", "t"], "a\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 2") && stderr.contains("ssl.key.password"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");

    let out = herald(&["produce", "-F", "/nonexistent/producer.properties", "-t", "t"], "a\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/producer.properties"));
}

#[test]
fn bench_takes_a_properties_file() {
    // No bootstrap.servers in the file: bench's embedded cluster.
    let (_dir, path) =
        properties_file("bench.properties", "compression.type=lz4\nlinger.ms=5\nbatch.size=65536\nacks=1\n");
    let out = herald(
        &["bench", "-F", path.to_str().unwrap(), "--num-records", "2000", "--record-size", "50", "--json"],
        "",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["errors"], 0, "{report}");
}
