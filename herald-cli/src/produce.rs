//! `herald produce`: one record per input line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use herald::mock::MockCluster;
use herald::{Header, Producer, Record};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::CliError;
use crate::formats::{Encoders, LineError};
use crate::report::{self, Entry, Outcome, ReportFormat};

/// Arguments of `herald produce`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    herald produce -b 127.0.0.1:9092 -t trucks --key-separator , < positions.csv\n  \
    herald produce -b 127.0.0.1:9092 -t logs -H source=app1 -X linger.ms=20 --report json -f app.log")]
pub struct ProduceArgs {
    /// Kafka brokers to bootstrap from: host:port[,host:port...]. Without it, herald
    /// starts an embedded cluster, creates the topic there, and shows where each
    /// record went.
    #[arg(short = 'b', long = "bootstrap-server", alias = "bootstrap-servers", value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,

    /// Partitions of the topic on the embedded cluster (only without --bootstrap-server).
    #[arg(long, value_name = "N")]
    pub partitions: Option<i32>,

    /// The topic to produce to.
    #[arg(short = 't', long)]
    pub topic: String,

    /// Read records from this file instead of stdin.
    #[arg(short = 'f', long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Split each line at the first SEP into key and value. A line without SEP is
    /// an error for that line. Without this option lines are values with null keys.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,

    /// Add a header to every record: -H key=value (repeatable; keys may repeat).
    /// -H key without '=' adds a header with a null value.
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE")]
    pub headers: Vec<String>,

    /// Acknowledgement level: 0, 1 or all.
    #[arg(long, value_name = "0|1|all")]
    pub acks: Option<String>,

    /// Send every record to this partition.
    #[arg(short = 'p', long)]
    pub partition: Option<i32>,

    /// Set any producer property: -X linger.ms=20 (repeatable; Java and librdkafka names).
    #[arg(short = 'X', long = "property", value_name = "NAME=VALUE")]
    pub properties: Vec<String>,

    /// How to report each record's outcome on stdout (default: none with a broker,
    /// text on the embedded cluster).
    #[arg(long, value_enum)]
    pub report: Option<ReportFormat>,

    /// How long to wait at the end for records still in flight, in seconds.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub close_timeout: u64,

    /// Show a progress bar on stderr (default: when stderr is a terminal).
    #[arg(long, overrides_with = "no_progress")]
    pub progress: bool,

    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,

    #[command(flatten)]
    pub formats: crate::formats::FormatArgs,
}

/// Splits `NAME=VALUE`.
pub fn split_property(s: &str) -> Result<(&str, &str), String> {
    s.split_once('=').ok_or_else(|| format!("{s:?} is not NAME=VALUE"))
}

fn header_of(s: &str) -> (String, Option<Bytes>) {
    match s.split_once('=') {
        Some((k, v)) => (k.to_owned(), Some(Bytes::copy_from_slice(v.as_bytes()))),
        None => (s.to_owned(), None),
    }
}

/// The embedded cluster's brokers when no --bootstrap-server is given.
const EMBEDDED_BROKERS: usize = 3;

pub async fn run(mut args: ProduceArgs) -> Result<ExitCode, CliError> {
    // Without a broker: an embedded cluster, gone when the command ends.
    let embedded = match &args.bootstrap_server {
        Some(_) => {
            if args.partitions.is_some() {
                return Err(CliError::usage(
                    "--partitions applies to the embedded cluster only (no --bootstrap-server)",
                ));
            }
            None
        }
        None => {
            let partitions = args.partitions.unwrap_or(3);
            let cluster = MockCluster::builder().brokers(EMBEDDED_BROKERS).start().await?;
            cluster.create_topic(&args.topic, partitions)?;
            eprintln!(
                "herald: no --bootstrap-server: producing to topic {} ({partitions} partitions) on an embedded \
                 cluster of {EMBEDDED_BROKERS} brokers at {}",
                args.topic,
                cluster.bootstrap()
            );
            args.report.get_or_insert(ReportFormat::Text);
            Some(cluster)
        }
    };
    let bootstrap = match &embedded {
        Some(c) => c.bootstrap(),
        None => args.bootstrap_server.clone().unwrap_or_default(),
    };
    let mut builder = Producer::builder().bootstrap_servers(&bootstrap);
    for p in &args.properties {
        let (k, v) = split_property(p).map_err(|e| CliError::usage(format!("-X {e}")))?;
        builder = builder.set(k, v);
    }
    if let Some(acks) = &args.acks {
        builder = builder.set("acks", acks);
    }
    let encoders = args.formats.encoders()?;
    let producer = builder.build()?;
    let input: Box<dyn AsyncBufRead + Unpin + Send> = match &args.file {
        Some(path) => {
            let f = tokio::fs::File::open(path)
                .await
                .map_err(|e| CliError::usage(format!("--file {}: {e}", path.display())))?;
            Box::new(BufReader::with_capacity(256 * 1024, f))
        }
        None => Box::new(BufReader::with_capacity(256 * 1024, tokio::io::stdin())),
    };
    let progress = args.progress || (!args.no_progress && std::io::stderr().is_terminal());
    let totals = produce_lines(&producer, &args, &encoders, input, progress).await;
    let closed = producer.close(Duration::from_secs(args.close_timeout)).await;
    eprintln!("herald: {} records delivered to {}, {} failed", totals.delivered, args.topic, totals.failed);
    if let Some(cluster) = &embedded {
        print_layout(cluster, &args.topic);
    }
    if let Err(e) = closed {
        eprintln!("herald: close: {e}");
        return Ok(ExitCode::from(1));
    }
    Ok(if totals.failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Reads lines, sends each, and hands outcomes to the reporter in input order.
/// Returns what the reporter counted.
pub async fn produce_lines(
    producer: &Producer,
    args: &ProduceArgs,
    encoders: &Encoders,
    mut input: Box<dyn AsyncBufRead + Unpin + Send>,
    progress: bool,
) -> report::Totals {
    // Bounded: a slow broker slows the reading instead of filling memory.
    let (tx, rx) = mpsc::channel::<Entry>(100_000);
    let reporter = tokio::spawn(report::run(rx, args.report.unwrap_or(ReportFormat::None), progress));
    let headers: Vec<(String, Option<Bytes>)> = args.headers.iter().map(|h| header_of(h)).collect();
    let sep = args.key_separator.as_deref().map(str::as_bytes);
    let mut buf = Vec::with_capacity(4096);
    let mut line_no: u64 = 0;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        buf.clear();
        let read = tokio::select! {
            r = input.read_until(b'\n', &mut buf) => r,
            _ = &mut ctrl_c => {
                eprintln!("herald: interrupted; delivering the records already read");
                break;
            }
        };
        match read {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("herald: reading input: {e}");
                break;
            }
        }
        line_no += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        let entry = build_entry(producer, args, encoders, &headers, sep, line_no, &buf).await;
        if tx.send(entry).await.is_err() {
            break;
        }
    }
    drop(tx);
    reporter.await.unwrap_or_default()
}

async fn build_entry(
    producer: &Producer,
    args: &ProduceArgs,
    encoders: &Encoders,
    headers: &[(String, Option<Bytes>)],
    sep: Option<&[u8]>,
    line: u64,
    buf: &[u8],
) -> Entry {
    let (key, value) = match sep {
        None => (None, buf),
        Some(sep) => match find(buf, sep) {
            Some(i) => (Some(&buf[..i]), &buf[i + sep.len()..]),
            None => {
                return Entry {
                    line,
                    key: None,
                    outcome: Outcome::BadInput(format!(
                        "no key separator {:?} in the line; not sent",
                        String::from_utf8_lossy(sep)
                    )),
                };
            }
        },
    };
    let mut headers: Vec<Header> =
        headers.iter().map(|(k, v)| Header { key: k.clone(), value: v.clone() }).collect();
    let (key_bytes, value_bytes) = match encoders.encode(&args.topic, key, value, &mut headers).await {
        Ok(kv) => kv,
        Err(e) => {
            let outcome = match e {
                LineError::BadInput(msg) => Outcome::BadInput(msg),
                LineError::Failed(e) => Outcome::Refused(e),
            };
            return Entry { line, key: key.map(<[u8]>::to_vec), outcome };
        }
    };
    let mut record = Record::new(args.topic.clone()).key_opt(key_bytes).value(value_bytes).headers(headers);
    if let Some(p) = args.partition {
        record = record.partition(p);
    }
    let outcome = match producer.send(record).await {
        Ok(f) => Outcome::Sent(f),
        Err(e) => Outcome::Refused(e),
    };
    Entry { line, key: key.map(<[u8]>::to_vec), outcome }
}

/// Shows which keys landed in which partition: the partitioning rules the README
/// documents, made visible.
fn print_layout(cluster: &MockCluster, topic: &str) {
    let mut p = 0;
    eprintln!("herald: where the records are now:");
    while let Ok(records) = cluster.records(topic, p) {
        let mut keys: Vec<(String, usize)> = Vec::new();
        for r in &records {
            let k = match &r.key {
                None => "(null key)".to_owned(),
                Some(k) => String::from_utf8_lossy(k).into_owned(),
            };
            match keys.iter_mut().find(|(seen, _)| *seen == k) {
                Some((_, n)) => *n += 1,
                None => keys.push((k, 1)),
            }
        }
        let shown: Vec<String> = keys.iter().map(|(k, n)| format!("{k} x{n}")).collect();
        eprintln!("  partition {p}: {} records  {}", records.len(), shown.join(", "));
        p += 1;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_separator() {
        assert_eq!(find(b"a:b:c", b":"), Some(1));
        assert_eq!(find(b"a::b", b"::"), Some(1));
        assert_eq!(find(b"ab", b":"), None);
    }

    #[test]
    fn headers_parse() {
        assert_eq!(header_of("k=v"), ("k".to_owned(), Some(Bytes::from_static(b"v"))));
        assert_eq!(header_of("k="), ("k".to_owned(), Some(Bytes::new())));
        assert_eq!(header_of("k"), ("k".to_owned(), None));
        assert_eq!(header_of("k=a=b"), ("k".to_owned(), Some(Bytes::from_static(b"a=b"))));
    }
}
