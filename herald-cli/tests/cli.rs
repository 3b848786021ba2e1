//! The `herald` binary against a real broker (`HERALD_TEST_BOOTSTRAP`).

mod common;
#[path = "../../herald/tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{herald, json_lines};
use support::{bootstrap, consume_with_java, create_topic};

#[tokio::test]
async fn produce_with_keys_headers_and_a_json_report() {
    let topic = create_topic("cli", 3, &[]).await;
    let b = bootstrap();
    let input = "truck_id_1:52.1,13.1\ntruck_id_2:52.2,13.2\ntruck_id_1:52.3,13.3\n";
    let out = herald(
        &[
            "produce",
            "-b",
            &b,
            "-t",
            &topic,
            "--key-separator",
            ":",
            "-H",
            "src=gps",
            "-H",
            "src=backup",
            "-H",
            "nullhdr",
            "--report",
            "json",
        ],
        input,
    );
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let report = json_lines(&out);
    assert_eq!(report.len(), 3);
    for (i, r) in report.iter().enumerate() {
        assert_eq!(r["line"], i as u64 + 1, "input order");
        let key = r["key"].as_str().unwrap();
        assert_eq!(r["partition"], herald::partitioner::partition_for_key(key.as_bytes(), 3));
        assert!(r["offset"].is_i64() && r["timestamp"].is_i64());
    }
    assert_eq!(report[0]["partition"], report[2]["partition"], "same key, same partition");
    let consumed = consume_with_java(&topic).await;
    assert_eq!(consumed.len(), 3);
    let c = consumed.iter().find(|c| c.value.as_deref() == Some(&b"52.3,13.3"[..])).unwrap();
    assert_eq!(c.key.as_deref(), Some(&b"truck_id_1"[..]));
    let headers: Vec<(&str, Option<&[u8]>)> =
        c.headers.iter().map(|h| (h.key.as_str(), h.value.as_deref())).collect();
    assert_eq!(headers, vec![("src", Some(&b"gps"[..])), ("src", Some(&b"backup"[..])), ("nullhdr", None)]);
}

#[tokio::test]
async fn a_line_without_the_separator_fails_alone() {
    let topic = create_topic("cli-bad", 1, &[]).await;
    let out = herald(
        &["produce", "-b", &bootstrap(), "-t", &topic, "--key-separator", "|", "--report", "json"],
        "a|1\nno separator here\nb|2\n",
    );
    assert_eq!(out.status.code(), Some(1), "a failed record makes the exit status non-zero");
    let report = json_lines(&out);
    assert_eq!(report.len(), 3);
    assert_eq!(report[0]["offset"], 0);
    assert!(report[1]["error"].as_str().unwrap().contains("no key separator"));
    assert_eq!(report[2]["offset"], 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2"), "{stderr}");
    assert_eq!(consume_with_java(&topic).await.len(), 2);
}

#[tokio::test]
async fn null_keys_round_robin_and_text_report() {
    let topic = create_topic("cli-rr", 3, &[]).await;
    let out = herald(&["produce", "-b", &bootstrap(), "-t", &topic, "--report", "text"], "a\nb\nc\nd\n");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let partitions: Vec<&str> =
        text.lines().map(|l| l.split_whitespace().find(|w| w.starts_with("partition=")).unwrap()).collect();
    assert_eq!(partitions, vec!["partition=0", "partition=1", "partition=2", "partition=0"]);
}

#[tokio::test]
async fn acks_zero_reports_no_offsets() {
    let topic = create_topic("cli-acks0", 1, &[]).await;
    let out =
        herald(&["produce", "-b", &bootstrap(), "-t", &topic, "--acks", "0", "--report", "json"], "x\ny\n");
    assert!(out.status.success());
    assert!(json_lines(&out).iter().all(|r| r["offset"].is_null()));
}

#[tokio::test]
async fn file_input_and_producer_properties() {
    let topic = create_topic("cli-file", 2, &[]).await;
    let mut f = tempfile::NamedTempFile::new().unwrap();
    for i in 0..1000 {
        writeln!(f, "k{i},v{i}").unwrap();
    }
    let path = f.path().to_str().unwrap().to_owned();
    let out = herald(
        &[
            "produce",
            "-b",
            &bootstrap(),
            "-t",
            &topic,
            "-f",
            &path,
            "--key-separator",
            ",",
            "-X",
            "linger.ms=20",
            "-X",
            "batch.size=65536",
        ],
        "",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1000 records delivered"));
    assert_eq!(consume_with_java(&topic).await.len(), 1000);
}

#[tokio::test]
async fn a_long_input_reports_every_line_once_in_input_order() {
    // More lines than the send loop may run ahead of the reporter, keyed over six
    // partitions so outcomes arrive out of input order; CRLF and a last line
    // without a newline as well. From a file: fed through stdin, the whole input
    // would have to be taken before stdout is read.
    let topic = create_topic("cli-order", 6, &[]).await;
    let n = 150_000;
    let mut f = tempfile::NamedTempFile::new().unwrap();
    let mut input = String::new();
    for i in 1..=n {
        input.push_str(&format!("k{}:v{i}{}", i % 97, if i % 10 == 0 { "\r\n" } else { "\n" }));
    }
    input.pop();
    f.write_all(input.as_bytes()).unwrap();
    let path = f.path().to_str().unwrap().to_owned();
    let out = herald(
        &[
            "produce",
            "-b",
            &bootstrap(),
            "-t",
            &topic,
            "-f",
            &path,
            "--key-separator",
            ":",
            "--report",
            "json",
        ],
        "",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json_lines(&out);
    assert_eq!(report.len(), n);
    for (i, r) in report.iter().enumerate() {
        assert_eq!(r["line"], i as u64 + 1, "input order");
        assert_eq!(r["key"].as_str().unwrap(), format!("k{}", (i + 1) % 97));
        assert!(r["offset"].is_i64(), "{r}");
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("{n} records delivered")));
}

#[test]
fn ctrl_c_delivers_the_lines_already_read() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["produce", "--topic", "t", "--report", "text"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // stdin stays open: herald waits for more input when Ctrl-C comes.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"a\nb\nc\n").unwrap();
    stdin.flush().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    for _ in 0..3 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.starts_with("key=(null) partition="), "{line}");
    }
    // SAFETY: kill only sends a signal to the child we started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("interrupted") && stderr.contains("3 records delivered"), "{stderr}");
}

#[test]
fn an_invalid_property_is_a_clear_error() {
    let out = herald(&["produce", "-b", "127.0.0.1:9", "-t", "t", "-X", "linger.msx=5"], "");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("linger.msx") && stderr.contains("did you mean linger.ms"), "{stderr}");
}

#[tokio::test]
async fn an_unknown_topic_fails_every_line_with_the_reason() {
    let topic = support::topic_name("cli-missing");
    let out = herald(&["produce", "-b", &bootstrap(), "-t", &topic], "a\nb\n");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(stderr.contains("0 records delivered"), "{stderr}");
}

#[test]
fn without_a_broker_it_produces_to_an_embedded_cluster_and_shows_where_records_went() {
    let input = std::fs::read_to_string(support::repo_root().join("examples/trucks.txt")).unwrap();
    let out = herald(&["produce", "--topic", "trucks", "--key-separator", ":"], &input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), input.lines().count());
    // The key rule, visible: a key always lands in the same partition, and it is
    // the partition the Java client would choose.
    for l in &lines {
        let key = l.split_whitespace().next().unwrap().trim_start_matches("key=");
        let part: i32 =
            l.split_whitespace().nth(1).unwrap().trim_start_matches("partition=").parse().unwrap();
        assert_eq!(part, herald::partitioner::partition_for_key(key.as_bytes(), 3), "{l}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("embedded cluster"), "{stderr}");
    assert!(stderr.contains("partition 0:") && stderr.contains("partition 2:"), "{stderr}");
}

#[test]
fn embedded_null_keys_go_round_robin_over_the_chosen_partitions() {
    let out = herald(&["produce", "--topic", "events", "--partitions", "4"], "a\nb\nc\nd\ne\n");
    assert!(out.status.success());
    let parts: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(parts, ["partition=0", "partition=1", "partition=2", "partition=3", "partition=0"]);
}

#[test]
fn partitions_needs_the_embedded_cluster_and_consume_needs_a_cluster() {
    let out = herald(&["produce", "-b", "127.0.0.1:9", "--topic", "t", "--partitions", "3"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--partitions"));
    let out = herald(&["consume", "--topic", "t"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("herald mock"));
}

#[test]
fn bench_in_transactions_needs_an_id_and_full_speed() {
    let out = herald(&["bench", "--num-records", "10", "--transaction-records", "5"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--transactional-id"));
    let out = herald(
        &[
            "bench",
            "-b",
            "127.0.0.1:9",
            "--num-records",
            "10",
            "--transactional-id",
            "tx",
            "--throughput",
            "100",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("full speed only"));
}

#[tokio::test]
async fn bench_in_transactions_commits_every_n_records() {
    let topic = create_topic("cli-bench-txn", 3, &[]).await;
    let id = format!("{topic}-tx");
    let b = bootstrap();
    let args = ["bench", "-b", &b, "-t", &topic, "--num-records", "4500", "--warmup-records", "400"];
    let more = ["--record-size", "50", "--transactional-id", &id, "--transaction-records", "1000", "--json"];
    let out = herald(&[&args[..], &more[..]].concat(), "");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    // The warmup is rounded up to one whole transaction; the 4,500 measured records
    // go in 5 transactions, the last of 500.
    assert_eq!(r["records"], 4500, "{r}");
    assert_eq!(r["errors"], 0, "{r}");
    let t = &r["transactions"];
    assert_eq!((t["commits"].as_u64(), t["aborted"].as_u64()), (Some(5), Some(0)), "{r}");
    assert_eq!(t["records_per_transaction"], 1000, "{r}");
    assert!(
        t["commits_per_sec"].as_f64().unwrap() > 0.0 && t["commit_latency_ms"]["p99"].as_f64().unwrap() > 0.0
    );
    let read = support::consume_with_java_properties(&topic, &["isolation.level=read_committed"]).await;
    assert_eq!(read.len(), 5500, "warmup and measured transactions all committed");
}

#[test]
fn herald_mock_serves_any_client_and_consume_reads_it_back() {
    use std::io::BufRead;
    let mut mock = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["mock", "--brokers", "3", "--partitions", "6"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut addr = String::new();
    std::io::BufReader::new(mock.stdout.take().unwrap()).read_line(&mut addr).unwrap();
    let addr = addr.trim().to_owned();
    assert_eq!(addr.split(',').count(), 3, "{addr}");
    // A topic created on first use, with 6 partitions.
    let out = herald(
        &["produce", "-b", &addr, "-t", "auto", "--key-separator", "=", "-H", "h=1", "--report", "json"],
        "k1=v1\nk2=v2\n",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for r in json_lines(&out) {
        let key = r["key"].as_str().unwrap();
        assert_eq!(r["partition"], herald::partitioner::partition_for_key(key.as_bytes(), 6));
    }
    let out = herald(&["consume", "-b", &addr, "-t", "auto", "--format", "json"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let records = json_lines(&out);
    assert_eq!(records.len(), 2);
    let mut values: Vec<&str> = records.iter().map(|r| r["value"].as_str().unwrap()).collect();
    values.sort();
    assert_eq!(values, ["v1", "v2"]);
    assert_eq!(records[0]["headers"][0]["key"], "h");
    // Outside transactions, read_committed reads the same.
    let out = herald(&["consume", "-b", &addr, "-t", "auto", "--isolation", "read_committed"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    // And the Java consumer reads it too.
    let java = tokio::runtime::Runtime::new().unwrap().block_on(support::java(
        "dev.herald.tools.VerifyConsumer",
        &["--bootstrap", &addr, "--topic", "auto"],
        None,
    ));
    assert_eq!(java.lines().count(), 2);
    mock.kill().unwrap();
    let _ = mock.wait();
}

#[tokio::test]
async fn transactions_commit_every_n_lines_and_one_with_a_refused_line_is_aborted_whole() {
    let topic = create_topic("cli-txn", 2, &[]).await;
    let id = support::topic_name("cli-tx");
    // Lines 1-4 commit; line 6 is larger than max.request.size, so lines 5-8 abort;
    // lines 9-10 (the end of the input) commit.
    let big = "x".repeat(3000);
    let input = format!("l1\nl2\nl3\nl4\nl5\n{big}\nl7\nl8\nl9\nl10\n");
    let out = herald(
        &[
            "produce",
            "-b",
            &bootstrap(),
            "-t",
            &topic,
            "--transactional-id",
            &id,
            "--transaction-records",
            "4",
            "-X",
            "max.request.size=2000",
            "--report",
            "json",
        ],
        &input,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "an aborted transaction makes the exit status non-zero: {stderr}");
    assert!(stderr.contains("transaction of lines 5-8 aborted"), "{stderr}");
    let report = json_lines(&out);
    assert_eq!(report.len(), 10, "every line reported once");
    for (i, r) in report.iter().enumerate() {
        let line = i as u64 + 1;
        assert_eq!(r["line"], line, "input order");
        if (5..=8).contains(&line) {
            let e = r["error"].as_str().unwrap_or_else(|| panic!("line {line} must fail: {r}"));
            assert!(e.contains("aborted") && e.contains("not written"), "line {line}: {e}");
        } else {
            assert!(r["offset"].is_i64(), "line {line} committed: {r}");
        }
    }
    assert!(report[5]["error"].as_str().unwrap().contains("max.request.size"), "the refused line says why");
    let committed = support::consume_with_java_properties(&topic, &["isolation.level=read_committed"]).await;
    let mut values: Vec<String> =
        committed.iter().map(|c| String::from_utf8(c.value.clone().unwrap()).unwrap()).collect();
    values.sort();
    assert_eq!(values, ["l1", "l10", "l2", "l3", "l4", "l9"]);
}

/// One plain HTTP GET of `path`; the response body.
fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default())
}

/// The value of the first sample of `name` in a Prometheus text exposition.
fn sample(body: &str, name: &str) -> Option<(String, f64)> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let rest = series.strip_prefix(name)?;
        if !rest.is_empty() && !rest.starts_with('{') {
            return None;
        }
        Some((rest.to_owned(), value.parse().ok()?))
    })
}

#[tokio::test]
async fn metrics_addr_serves_the_producer_s_metrics_for_prometheus_while_it_runs() {
    use std::io::BufRead;
    let topic = create_topic("cli-metrics", 2, &[]).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["produce", "-b", &bootstrap(), "-t", &topic, "--report", "text", "--stats"])
        .args(["--metrics-addr", &addr, "-X", "client.id=cli-metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A slow stdin: five lines, then herald waits for more while /metrics is read.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"a\nb\nc\nd\ne\n").unwrap();
    stdin.flush().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    for _ in 0..5 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.contains("partition="), "{line}");
    }
    // Published every 500 ms: wait for the five records to show.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let body = loop {
        let body = http_get(&addr, "/metrics").unwrap_or_default();
        if sample(&body, "herald_producer_record_send_total").is_some_and(|(_, v)| v == 5.0) {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "no herald_producer_record_send_total 5 in:\n{body}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let (labels, _) = sample(&body, "herald_producer_record_send_total").unwrap();
    assert!(labels.contains("client_id=\"cli-metrics\""), "{labels}");
    let topic_label = format!("topic=\"{topic}\"");
    let topic_line = body.lines().find(|l| l.starts_with("herald_producer_topic_record_send_total{"));
    assert!(topic_line.is_some_and(|l| l.contains(&topic_label) && l.ends_with(" 5")), "{body}");
    assert!(body.contains("# TYPE herald_producer_record_send_total counter"), "{body}");
    assert!(body.contains("# TYPE herald_producer_request_latency_avg gauge"), "{body}");
    assert!(body.contains("herald_producer_node_request_total{"), "{body}");
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("5 records delivered") && stderr.contains("herald: 5 records in"), "{stderr}");
    assert!(stderr.contains("records per request") && stderr.contains("request latency avg"), "{stderr}");
}
