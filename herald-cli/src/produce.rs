//! `herald produce`: one record per input line.

use std::io::IsTerminal;
use std::ops::Range;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use herald::mock::MockCluster;
use herald::{Header, Producer, Record, SendFuture, Topic};
use tokio::sync::Notify;

use crate::CliError;
use crate::formats::{Encoders, LineError};
use crate::input::{self, Chunks, Input};
use crate::lines::LineFormat;
use crate::report::{Outcomes, ReportFormat};
use crate::transactions::{Ended, TxnLines, line_error};

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

    /// Split each line at the first SEP into key and value (kcat's -K; the console
    /// producer's parse.key=true with key.separator). A line without SEP is an
    /// error for that line (see --ignore-error). Without this option lines are
    /// values with null keys. Escapes: \t \n \r \0 \\ \xHH.
    #[arg(short = 'K', long, value_name = "SEP")]
    pub key_separator: Option<String>,

    /// What each input line is: text (see --key-separator, --parse-headers), or
    /// the JSON lines `herald consume --format json` prints (key, value, headers,
    /// partition, timestamp; {"base64": "…"} for bytes that are not UTF-8), so
    /// that `herald consume -t a --format json | herald produce -t b --input-format
    /// json` copies topic a into b record for record.
    #[arg(long, value_enum, default_value_t, value_name = "FORMAT")]
    pub input_format: crate::lines::InputFormat,

    /// With --input-format json: partition by key (or round robin) instead of
    /// sending each record to the partition its line names.
    #[arg(long)]
    pub ignore_partition: bool,

    /// What ends each record in the input instead of a newline, e.g. -D '\0' or
    /// -D ';;' (kcat's -D). Escapes as for --key-separator.
    #[arg(short = 'D', long, value_name = "DELIM")]
    pub line_delimiter: Option<String>,

    /// A key, value or header value equal to STR is sent as null: -K : --null-marker
    /// NULL turns `k:NULL` into a tombstone for k (the console producer's
    /// null.marker, KIP-810).
    #[arg(long, value_name = "STR")]
    pub null_marker: Option<String>,

    /// Send an empty key or value as null (kcat's -Z).
    #[arg(short = 'Z', long)]
    pub empty_as_null: bool,

    /// Each line starts with its headers, then --headers-delimiter:
    /// `h1:v1,h2:v2<TAB>key<TAB>value` (the console producer's parse.headers). A
    /// header without the key separator has a null value.
    #[arg(long)]
    pub parse_headers: bool,

    /// What ends the headers of a line (headers.delimiter; default a tab).
    #[arg(long, value_name = "DELIM")]
    pub headers_delimiter: Option<String>,

    /// What separates two headers (headers.separator; default ",").
    #[arg(long, value_name = "SEP")]
    pub headers_separator: Option<String>,

    /// What separates a header's key from its value (headers.key.separator; default ":").
    #[arg(long, value_name = "SEP")]
    pub headers_key_separator: Option<String>,

    /// A line without the key separator (or headers delimiter) is all value (no
    /// key, no headers) instead of an error (the console producer's ignore.error).
    #[arg(long)]
    pub ignore_error: bool,

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

    /// Producer properties from a Java .properties file (Kafka's console producer's
    /// --producer.config, kcat's -F). Its bootstrap.servers is used without
    /// --bootstrap-server; --bootstrap-server, -X and --acks override the file.
    #[arg(short = 'F', long = "producer.config", value_name = "FILE")]
    pub producer_config: Option<PathBuf>,

    /// Set any producer property: -X linger.ms=20 (repeatable; Java and librdkafka
    /// names). The console producer's line-reader properties (parse.key,
    /// key.separator, parse.headers, headers.delimiter, headers.separator,
    /// headers.key.separator, null.marker, ignore.error) set the line format.
    #[arg(short = 'X', long = "property", value_name = "NAME=VALUE")]
    pub properties: Vec<String>,

    /// How to report each record's outcome on stdout (default: none with a broker,
    /// text on the embedded cluster).
    #[arg(long, value_enum)]
    pub report: Option<ReportFormat>,

    /// Write the input in transactions (exactly-once, KIP-98) as this
    /// transactional.id: a transaction commits every --transaction-records lines
    /// and at the end of the input; a transaction in which any line failed (or was
    /// refused, e.g. larger than max.request.size) is aborted and every line of it
    /// reported as failed, not written. Consumers with
    /// isolation.level=read_committed see committed transactions only.
    #[arg(long, value_name = "ID")]
    pub transactional_id: Option<String>,

    /// Lines per transaction (with --transactional-id).
    #[arg(long, value_name = "N", requires = "transactional_id", default_value_t = 1000)]
    pub transaction_records: u64,

    /// How long to wait at the end for records still in flight, in seconds.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub close_timeout: u64,

    /// Show a progress bar on stderr (default: when stderr is a terminal).
    #[arg(long, overrides_with = "no_progress")]
    pub progress: bool,

    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,

    /// Serve the producer's metrics (Java's names, prefixed herald_producer_) at
    /// http://ADDR/metrics for Prometheus while producing.
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<std::net::SocketAddr>,

    /// Print a summary of the run on stderr at the end: records/s, bytes/s,
    /// batches, records per request, compression, retries, request latency and
    /// throttle time (from the producer's metrics).
    #[arg(long)]
    pub stats: bool,

    #[command(flatten)]
    pub formats: crate::formats::FormatArgs,
}

/// Reads --producer.config / -F: each refused property is an error naming its line
/// now, and the file's bootstrap.servers stands in for a missing --bootstrap-server.
pub fn config_file(
    bootstrap_server: &mut Option<String>,
    path: Option<&std::path::Path>,
) -> Result<Option<herald::properties::PropertiesFile>, CliError> {
    let Some(path) = path else { return Ok(None) };
    let file = herald::properties::PropertiesFile::read(path)?;
    herald::ProducerConfig::default().set_properties_file(&file)?;
    if bootstrap_server.is_none() {
        *bootstrap_server =
            file.get("bootstrap.servers").or(file.get("metadata.broker.list")).map(str::to_owned);
    }
    Ok(Some(file))
}

/// Splits `NAME=VALUE`.
pub fn split_property(s: &str) -> Result<(&str, &str), String> {
    s.split_once('=').ok_or_else(|| format!("{s:?} is not NAME=VALUE"))
}

fn header_of(s: &str) -> Header {
    match s.split_once('=') {
        Some((k, v)) => Header { key: k.to_owned(), value: Some(Bytes::copy_from_slice(v.as_bytes())) },
        None => Header { key: s.to_owned(), value: None },
    }
}

/// The embedded cluster's brokers when no --bootstrap-server is given.
const EMBEDDED_BROKERS: usize = 3;

pub async fn run(mut args: ProduceArgs) -> Result<ExitCode, CliError> {
    // Flags that cannot go together are refused before anything starts.
    let format = LineFormat::from_args(&args)?;
    let config_file = config_file(&mut args.bootstrap_server, args.producer_config.as_deref())?;
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
    let mut builder = Producer::builder()
        .properties(config_file.iter().flat_map(|f| f.iter()))
        .bootstrap_servers(&bootstrap);
    for p in &args.properties {
        let (k, v) = split_property(p).map_err(|e| CliError::usage(format!("-X {e}")))?;
        if !crate::lines::READER_PROPERTIES.contains(&k) {
            builder = builder.set(k, v);
        }
    }
    if let Some(acks) = &args.acks {
        builder = builder.set("acks", acks);
    }
    if let Some(id) = &args.transactional_id {
        builder = builder.set("transactional.id", id);
    }
    let progress = args.progress || (!args.no_progress && std::io::stderr().is_terminal());
    let thread_error = |e: std::io::Error| CliError::usage(format!("cannot start a thread: {e}"));
    let (outcomes, reporter) =
        Outcomes::start(args.report.unwrap_or(ReportFormat::None), progress).map_err(thread_error)?;
    // Lines whose report needs nothing but the line number are sent tagged with
    // it: no callback allocated per line (see `LineSender::send`).
    let producer = builder.on_delivery(move |line, r| outcomes.on_delivery(line, r)).build()?;
    // After the build: the properties (a Java producer's, say) may name the registry.
    let encoders = args.formats.encoders(producer.config())?;
    let started = std::time::Instant::now();
    let publisher = match args.metrics_addr {
        Some(addr) => Some(crate::stats::serve_metrics(addr, &producer)?),
        None => None,
    };
    let txn = match &args.transactional_id {
        Some(_) => {
            producer.init_transactions().await?;
            Some(TxnLines::start(args.transaction_records))
        }
        None => None,
    };
    let input = match &args.file {
        Some(path) => {
            let file = std::fs::File::open(path)
                .map_err(|e| CliError::usage(format!("--file {}: {e}", path.display())))?;
            match file.metadata() {
                Ok(m) if m.is_file() => Input::File(file),
                _ => Input::Stream(Box::new(file)),
            }
        }
        None => Input::Stream(Box::new(std::io::stdin())),
    };
    let chunks = input::spawn_reader(input, &format.delimiter).map_err(thread_error)?;
    let lines = produce_lines(&producer, &args, &format, &encoders, chunks, outcomes, txn).await;
    // Every record sent has its callback run by the time close returns (the ones
    // still pending at the timeout fail), so each line has its outcome then.
    let closed = producer.close(Duration::from_secs(args.close_timeout)).await;
    let totals = reporter.finish(lines);
    eprintln!("herald: {} records delivered to {}, {} failed", totals.delivered, args.topic, totals.failed);
    if args.stats {
        eprintln!("{}", crate::stats::Summary::of(&producer.metrics(), started.elapsed()).to_text());
    }
    drop(publisher);
    if let Some(cluster) = &embedded {
        print_layout(cluster, &args.topic);
    }
    if let Err(e) = closed {
        eprintln!("herald: close: {e}");
        return Ok(ExitCode::from(1));
    }
    Ok(if totals.failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Reads the input's lines and sends each as a record, until the input ends or
/// Ctrl-C; every line's outcome goes to `outcomes`. Returns how many lines there
/// were.
pub async fn produce_lines(
    producer: &Producer,
    args: &ProduceArgs,
    format: &LineFormat,
    encoders: &Encoders,
    mut chunks: Chunks,
    outcomes: &'static Outcomes,
    txn: Option<&'static TxnLines>,
) -> u64 {
    let interrupted = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(Notify::new());
    let ctrl_c = {
        let (interrupted, wake) = (interrupted.clone(), wake.clone());
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, Ordering::Relaxed);
                wake.notify_one();
            }
        })
    };
    let sender = LineSender::new(producer, args, format, encoders, outcomes, txn);
    let mut line: u64 = 0;
    let mut stopped = false;
    if txn.is_some() && begin(producer, &mut stopped) {
        stopped = true;
    }
    'input: loop {
        let chunk = tokio::select! {
            biased;
            _ = wake.notified() => None,
            c = chunks.next() => c,
        };
        let Some(chunk) = chunk else { break };
        for (start, end) in input::lines(&chunk, &format.delimiter) {
            if interrupted.load(Ordering::Relaxed) {
                break 'input;
            }
            if stopped {
                break 'input;
            }
            line += 1;
            // In a transaction, lines get their outcomes when it ends (below).
            if txn.is_none() && outcomes.too_far_ahead(line) {
                // The reporter is behind: what is queued goes now, so that every
                // line sent gets its outcome soon, and the reporter can catch up.
                let _ = producer.flush().await;
                outcomes.wait_for_reporter(line).await;
            }
            // Plain lines stay clear of the encoders' (large, async) futures, and
            // their records are made in place, not moved through futures.
            let sent = if sender.plain {
                sender.send_plain(line, &chunk, start..end)
            } else {
                let made = sender.parsed_record(line, &chunk, start..end).await;
                made.map(|(record, key)| sender.send(line, record, key))
            };
            if let Some((sent, key)) = sent {
                if let Err(e) = sent.await {
                    let reason = if txn.is_some() { line_error(&e) } else { e.to_string() };
                    sender.fail(line, key, reason);
                }
            }
            if let Some(t) = txn {
                if t.ends_at(line) {
                    stopped = matches!(t.end(producer, outcomes).await, Ended::Stop)
                        || begin(producer, &mut stopped);
                    if outcomes.too_far_ahead(line) {
                        outcomes.wait_for_reporter(line).await;
                    }
                }
            }
        }
        chunks.done_with(chunk);
    }
    if interrupted.load(Ordering::Relaxed) {
        eprintln!("herald: interrupted; delivering the records already read");
    }
    if let Some(t) = txn {
        if !stopped {
            // The last, partial transaction (or an empty one).
            t.end(producer, outcomes).await;
        }
    }
    ctrl_c.abort();
    line
}

/// Begins the next transaction; on failure says why and returns true (stop).
fn begin(producer: &Producer, stopped: &mut bool) -> bool {
    if let Err(e) = producer.begin_transaction() {
        eprintln!("herald: cannot begin a transaction: {e}");
        *stopped = true;
    }
    *stopped
}

/// Makes records of lines and sends them; each line's outcome goes to `outcomes`
/// exactly once: at once when it cannot be sent, else from its delivery callback.
struct LineSender<'a> {
    producer: &'a Producer,
    topic: Topic,
    topic_name: &'a str,
    headers: Vec<Header>,
    partition: Option<i32>,
    format: &'a LineFormat,
    encoders: &'a Encoders,
    /// Key and value go as they are: a record's bytes are slices of the chunk read.
    plain: bool,
    outcomes: &'static Outcomes,
    /// In transactional mode: outcomes wait for their transaction's end.
    txn: Option<&'static TxnLines>,
}

impl<'a> LineSender<'a> {
    fn new(
        producer: &'a Producer,
        args: &'a ProduceArgs,
        format: &'a LineFormat,
        encoders: &'a Encoders,
        outcomes: &'static Outcomes,
        txn: Option<&'static TxnLines>,
    ) -> LineSender<'a> {
        LineSender {
            producer,
            topic: producer.topic(&args.topic),
            topic_name: &args.topic,
            headers: args.headers.iter().map(|h| header_of(h)).collect(),
            partition: args.partition,
            format,
            encoders,
            plain: encoders.are_plain() && format.is_plain() && txn.is_none(),
            outcomes,
            txn,
        }
    }

    /// A line that could not be sent fails (in a transaction, with it).
    fn fail(&self, line: u64, key: Option<Bytes>, reason: String) {
        match self.txn {
            Some(t) => t.hold(line, key, Err(reason)),
            None => self.outcomes.resolve(line, key, Err(reason)),
        }
    }

    /// The line's key (if there is a separator) and value; a line without the
    /// separator fails here.
    fn split(
        &self,
        line: u64,
        chunk: &[u8],
        text: Range<usize>,
    ) -> Option<(Option<Range<usize>>, Range<usize>)> {
        match self.format.split_key(&chunk[text.clone()]) {
            Ok((k, v)) => Some((
                k.map(|k| text.start + k.start..text.start + k.end),
                text.start + v.start..text.start + v.end,
            )),
            Err(reason) => {
                self.fail(line, None, reason);
                None
            }
        }
    }

    /// Sends the line's text as it is (see [`send`](Self::send)).
    #[inline(always)]
    fn send_plain(
        &self,
        line: u64,
        chunk: &Bytes,
        text: Range<usize>,
    ) -> Option<(SendFuture<()>, Option<Bytes>)> {
        let (key, value) = self.split(line, chunk, text)?;
        let key = key.map(|k| chunk.slice(k));
        let value = chunk.slice(value);
        let o = self.outcomes;
        if o.ordered() || !self.headers.is_empty() || self.partition.is_some() {
            let report_key = if o.ordered() { key.clone() } else { None };
            let mut record = Record::to(&self.topic).key_opt(key).value(value);
            if !self.headers.is_empty() {
                record = record.headers(self.headers.clone());
            }
            if let Some(p) = self.partition {
                record = record.partition(p);
            }
            return Some(self.send(line, record, report_key));
        }
        // The common case, made in place: a record moved around costs more than
        // everything else this does.
        let record = Record::to(&self.topic).key_opt(key).value(value);
        Some((self.producer.send_tagged(record, line), None))
    }

    /// A record of what the line holds (its headers, key, value, and with JSON
    /// input its partition and timestamp), the key and value through the
    /// encoders (--key-format, --value-format); a line they refuse fails here.
    async fn parsed_record(
        &self,
        line: u64,
        chunk: &Bytes,
        text: Range<usize>,
    ) -> Option<(Record, Option<Bytes>)> {
        let parsed = match self.format.parse(chunk, text) {
            Ok(p) => p,
            Err(reason) => {
                self.fail(line, None, reason);
                return None;
            }
        };
        let report_key = if self.outcomes.ordered() { parsed.key.clone() } else { None };
        let mut headers = parsed.headers;
        headers.extend(self.headers.iter().cloned());
        match self.encoders.encode(self.topic_name, parsed.key, parsed.value, &mut headers).await {
            Ok((k, v)) => {
                let mut record = Record::to(&self.topic).key_opt(k).value_opt(v).headers(headers);
                if let Some(p) = self.partition.or(parsed.partition) {
                    record = record.partition(p);
                }
                if let Some(t) = parsed.timestamp {
                    record = record.timestamp(t);
                }
                Some((record, report_key))
            }
            Err(e) => {
                let msg = match e {
                    LineError::BadInput(msg) => msg,
                    LineError::Failed(e) => e.to_string(),
                };
                self.fail(line, report_key, msg);
                None
            }
        }
    }

    /// Sends the line's record; when the `SendFuture` fails, the line fails, with
    /// the key given back to report it. The callbacks run on the producer's sender
    /// task: they count, or hand the outcome to the reporter. Without a report one
    /// holds just the line number (for a failure's message).
    #[inline(always)]
    fn send(&self, line: u64, record: Record, key: Option<Bytes>) -> (SendFuture<()>, Option<Bytes>) {
        let o = self.outcomes;
        if let Some(t) = self.txn {
            let k = key.clone();
            let sent = self
                .producer
                .send_with_callback(record, move |r| t.hold(line, k, r.map_err(|e| line_error(&e))));
            return (sent, key);
        }
        if o.ordered() {
            let k = key.clone();
            let sent = self
                .producer
                .send_with_callback(record, move |r| o.resolve(line, k, r.map_err(|e| e.to_string())));
            (sent, key)
        } else {
            // To `Outcomes::on_delivery`, the producer's delivery handler.
            (self.producer.send_tagged(record, line), None)
        }
    }
}

/// Shows which keys landed in which partition: the partitioning rules the README
/// documents, made visible.
fn print_layout(cluster: &MockCluster, topic: &str) {
    let mut p = 0;
    eprintln!("herald: where the records are now:");
    while let Ok(records) = cluster.records(topic, p) {
        // Each key's count, in the order keys were first seen.
        let mut keys: Vec<(String, usize)> = Vec::new();
        let mut index = std::collections::HashMap::new();
        for r in &records {
            let k = match &r.key {
                None => "(null key)".to_owned(),
                Some(k) => String::from_utf8_lossy(k).into_owned(),
            };
            let i = *index.entry(k.clone()).or_insert_with(|| {
                keys.push((k, 0));
                keys.len() - 1
            });
            keys[i].1 += 1;
        }
        eprintln!("  partition {p}: {} records  {}", records.len(), top_keys(keys));
        p += 1;
    }
}

/// Keys shown per partition in the summary; the rest are counted.
const SHOWN_KEYS: usize = 5;

/// The most frequent keys (first seen first among equals) and how many others.
fn top_keys(mut keys: Vec<(String, usize)>) -> String {
    keys.sort_by_key(|k| std::cmp::Reverse(k.1)); // stable: first seen first among equals
    let more = keys.len().saturating_sub(SHOWN_KEYS);
    let mut shown: Vec<String> = keys.iter().take(SHOWN_KEYS).map(|(k, n)| format!("{k} x{n}")).collect();
    if more > 0 {
        shown.push(format!("and {more} more key{}", if more == 1 { "" } else { "s" }));
    }
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_shows_the_top_keys_and_counts_the_rest() {
        let keys = |n: usize| (0..n).map(|i| (format!("k{i}"), 1 + i % 3)).collect::<Vec<_>>();
        assert_eq!(top_keys(keys(2)), "k1 x2, k0 x1");
        assert_eq!(top_keys(keys(1000)), "k2 x3, k5 x3, k8 x3, k11 x3, k14 x3, and 995 more keys");
        assert_eq!(top_keys(keys(6)), "k2 x3, k5 x3, k1 x2, k4 x2, k0 x1, and 1 more key");
    }

    #[test]
    fn headers_parse() {
        let h = |k: &str, v: Option<&'static [u8]>| Header {
            key: k.to_owned(),
            value: v.map(Bytes::from_static),
        };
        assert_eq!(header_of("k=v"), h("k", Some(b"v")));
        assert_eq!(header_of("k="), h("k", Some(b"")));
        assert_eq!(header_of("k"), h("k", None));
        assert_eq!(header_of("k=a=b"), h("k", Some(b"a=b")));
    }
}
