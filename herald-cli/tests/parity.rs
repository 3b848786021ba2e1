//! `herald produce` and `herald consume` against what Kafka's console tools and
//! kcat do (README, "The command line"): tombstones, per-line headers, record
//! delimiters, a topic copied through `consume --format json | produce
//! --input-format json`, consume's partition/offset/count/follow, and flags that
//! cannot go together refused before anything is sent. Against the embedded
//! cluster, or a real broker with `HERALD_TEST_BOOTSTRAP`.

mod common;
#[path = "../../herald/tests/support/mod.rs"]
mod support;

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{herald, json_lines};
use herald::Record;
use support::{bootstrap, consume_with_java, create_topic};

/// A record's key, value and headers, as the Java consumer read them.
type Row<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, Vec<(&'a str, Option<&'a [u8]>)>);

fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "status {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn console_producer_lines_make_tombstones_and_per_line_headers() {
    let topic = create_topic("cli-console", 1, &[]).await;
    let b = bootstrap();
    // h1:v1,h2:v2<TAB>key<TAB>value; NULL is null (KIP-810's null.marker).
    let input = "h1:v1,h2\tk1\tv1\nh:NULL\tk1\tNULL\nNULL\tk2\t\n";
    let out = herald(
        &["produce", "-b", &b, "-t", &topic, "--parse-headers", "-K", "\\t", "--null-marker", "NULL"],
        input,
    );
    ok(&out);
    // The same through the console producer's properties, with ignore.error: a
    // line without the separator is all value.
    let out = herald(
        &["produce", "-b", &b, "-t", &topic, "--property", "parse.key=true", "-X", "ignore.error=true", "-Z"],
        "k3\tv3\nno key here\nk4\t\n",
    );
    ok(&out);
    let got = consume_with_java(&topic).await;
    let rows: Vec<Row> = got
        .iter()
        .map(|c| {
            let h = c.headers.iter().map(|h| (h.key.as_str(), h.value.as_deref())).collect();
            (c.key.as_deref(), c.value.as_deref(), h)
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (Some(&b"k1"[..]), Some(&b"v1"[..]), vec![("h1", Some(&b"v1"[..])), ("h2", None)]),
            (Some(b"k1"), None, vec![("h", None)]),
            (Some(b"k2"), Some(b""), vec![]),
            (Some(b"k3"), Some(b"v3"), vec![]),
            (None, Some(b"no key here"), vec![]),
            (Some(b"k4"), None, vec![]),
        ]
    );
}

#[tokio::test]
async fn a_custom_record_delimiter_keeps_newlines_in_values() {
    let topic = create_topic("cli-delim", 1, &[]).await;
    let input = "k1=line one\nline two\x1ek2=x\r\n\x1e";
    let out = herald(&["produce", "-b", &bootstrap(), "-t", &topic, "-D", "\\x1e", "-K", "="], input);
    ok(&out);
    let got = consume_with_java(&topic).await;
    let values: Vec<&[u8]> = got.iter().map(|c| c.value.as_deref().unwrap()).collect();
    assert_eq!(values, [&b"line one\nline two"[..], b"x\r\n"]);
}

#[tokio::test]
async fn consume_json_into_produce_json_copies_a_topic_byte_for_byte() {
    // Records from 1970 and 2020: time-based retention must not delete them
    // between the writes and the reads.
    let keep = [("retention.ms", "-1")];
    let a = create_topic("cli-copy-a", 3, &keep).await;
    let b = create_topic("cli-copy-b", 3, &keep).await;
    let producer = support::producer_builder().build().unwrap();
    let binary: Vec<u8> = (0..=255u8).collect();
    let records = [
        Record::new(&a).key(&b"text"[..]).value(&b"caf\xc3\xa9 \"quoted\"\n\ttab"[..]).partition(0),
        Record::new(&a).key(binary.clone()).value(binary.clone()).timestamp(1_600_000_000_123).partition(1),
        Record::new(&a).key(&b"tombstone"[..]).partition(2).timestamp(1_700_000_000_000),
        Record::new(&a).key(&b""[..]).value(&b""[..]).partition(2),
        Record::new(&a)
            .value(&b"{\"base64\":\"not really\"}"[..])
            .header("h", &b"v"[..])
            .header_opt("null", None::<&[u8]>)
            .header("empty", &b""[..])
            .header("bin", &[0xff, 0xfe, 0][..])
            .header("h", &b"again"[..])
            .partition(1),
        Record::new(&a).value(&[0x80][..]).partition(0).timestamp(0),
    ];
    for r in records {
        producer.send(r).await.unwrap().await.unwrap();
    }
    producer.close(Duration::from_secs(30)).await.unwrap();

    let out = herald(&["consume", "-b", &bootstrap(), "-t", &a, "--format", "json"], "");
    ok(&out);
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed.lines().count(), 6, "{printed}");
    let out = herald(&["produce", "-b", &bootstrap(), "-t", &b, "--input-format", "json"], &printed);
    ok(&out);

    let (from, to) = (consume_with_java(&a).await, consume_with_java(&b).await);
    assert_eq!(from.len(), 6, "the Java consumer read {from:?}; herald consume printed {printed}");
    // Partition, offset, timestamp, key, value and headers, as the Java consumer reads them.
    assert_eq!(to, from);
    assert!(from.iter().any(|c| c.value.is_none()), "the tombstone is still one");
}

#[tokio::test]
async fn consume_reads_a_partition_from_an_offset_a_count_and_follows() {
    let topic = create_topic("cli-consume", 2, &[]).await;
    let b = bootstrap();
    let input: String = (0..10).map(|i| format!("{i}\n")).collect();
    ok(&herald(&["produce", "-b", &b, "-t", &topic, "-p", "1"], &input));
    ok(&herald(&["produce", "-b", &b, "-t", &topic, "-p", "0"], "p0\n"));
    let values = |args: &[&str]| -> Vec<String> {
        let out = herald(&[&["consume", "-b", &b, "-t", &topic, "--format", "json"], args].concat(), "");
        ok(&out);
        json_lines(&out).iter().map(|r| r["value"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(values(&["--partition", "1", "--offset", "7"]), ["7", "8", "9"]);
    assert_eq!(values(&["-p", "1", "-o", "-2"]), ["8", "9"]);
    assert_eq!(values(&["-p", "1", "-o", "3", "--max-records", "2"]), ["3", "4"]);
    assert_eq!(values(&["-p", "0"]), ["p0"]);
    assert_eq!(values(&["-o", "end"]), Vec::<String>::new());
    assert_eq!(values(&["-o", "beginning"]).len(), 11);

    // --follow: records written after it started show as they come.
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["consume", "-b", &b, "-t", &topic, "-p", "1", "-o", "end", "--follow", "-c", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    // Until it is following, records produced may come before its start: send
    // one at a time until the first shows.
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut line = String::new();
        while stdout.read_line(&mut line).unwrap_or(0) > 0 {
            tx.send(std::mem::take(&mut line)).unwrap();
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let mut sent = 0;
    while seen.len() < 3 {
        assert!(Instant::now() < deadline, "--follow printed {seen:?}");
        sent += 1;
        ok(&herald(&["produce", "-b", &b, "-t", &topic, "-p", "1"], &format!("new{sent}\n")));
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(1500)) {
            seen.push(l);
            while let Ok(l) = rx.try_recv() {
                seen.push(l);
            }
        }
    }
    let out = child.wait_with_output().unwrap();
    reader.join().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(seen.len(), 3, "{seen:?}");
    let n: usize = seen[0].trim().split("value=").nth(1).unwrap().trim_start_matches("new").parse().unwrap();
    for (i, l) in seen.iter().enumerate() {
        assert!(l.trim().ends_with(&format!("value=new{}", n + i)), "{l}");
    }
}

#[test]
fn impossible_flags_are_refused_before_anything_is_sent() {
    // Nothing listens on port 9: a usage error comes before any connection.
    for (args, says) in [
        (&["--key-separator", ""][..], "--key-separator must not be empty"),
        (&["--input-format", "json", "--parse-headers"], "applies to --input-format text only"),
        (&["--input-format", "json", "--null-marker", "N"], "applies to --input-format text only"),
        (&["--ignore-partition"], "--input-format json only"),
        (&["-K", ":", "--null-marker", ":"], "--null-marker and --key-separator must differ"),
        (&["--headers-separator", ";"], "with --parse-headers only"),
        (&["-D", ""], "--line-delimiter must not be empty"),
    ] {
        let out = herald(&[&["produce", "-b", "127.0.0.1:9", "-t", "t"], args].concat(), "a:b\n");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("delivered"), "{args:?}: nothing read: {stderr}");
    }
    // Without a broker too: no embedded cluster is started for them.
    let out = herald(&["produce", "-t", "t", "--key-separator", ""], "a:b\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("embedded"));
    let out = herald(&["consume", "-b", "127.0.0.1:9", "-t", "t", "-o", "soon"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-N for the last N records"));
}

#[test]
fn an_unreachable_bootstrap_broker_is_named_at_once_while_herald_retries() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["produce", "-b", &addr, "-t", "t", "-X", "max.block.ms=4000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"a\n").unwrap();
    stdin.flush().unwrap();
    // The warning comes while herald still waits (stdin is open: it has not given up).
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.contains("cannot reach a bootstrap broker") && first.contains(&addr), "{first}");
    assert!(first.contains("refused") && first.contains("max.block.ms=4000"), "{first}");
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{rest}");
    assert!(rest.contains("max.block.ms") && rest.contains("0 records delivered"), "{rest}");
}

#[test]
fn the_embedded_summary_shows_the_top_keys_and_counts_the_rest() {
    let input: String = (0..3000).map(|i| format!("key{}:v\n", i % 1000)).collect();
    let out = herald(&["produce", "-t", "many", "-K", ":", "--report", "none"], &input);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let parts: Vec<&str> = stderr.lines().filter(|l| l.trim_start().starts_with("partition ")).collect();
    assert_eq!(parts.len(), 3, "{stderr}");
    for l in parts {
        assert!(l.contains(" x3, ") && l.contains(" more keys"), "{l}");
        assert!(l.len() < 200, "{l}");
    }
}
