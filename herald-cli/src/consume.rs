//! `herald consume`: print what a topic holds.

use std::io::Write;
use std::process::ExitCode;

use base64::Engine;
use std::ops::ControlFlow;

use herald::{ConsumedRecord, IsolationLevel, ReadOptions, StartOffset, TimestampType, TopicReader};
use serde_json::json;

use crate::CliError;
use crate::produce::split_property;

/// How records are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ConsumeFormat {
    /// `p0 o5 2026-11-22T10:00:00.000Z key=… headers=[k=v] value=…`
    Text,
    /// One JSON object per record; keys, values and header values as strings when
    /// they are UTF-8, else as `{"base64": "…"}`.
    Json,
}

/// Which records of transactions are printed (the consumer's `isolation.level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Isolation {
    /// Every record, including those of open and aborted transactions.
    #[value(name = "read_uncommitted")]
    ReadUncommitted,
    /// Records outside transactions and of committed ones, up to each partition's
    /// last stable offset (the first offset of a transaction still open).
    #[value(name = "read_committed")]
    ReadCommitted,
}

/// Arguments of `herald consume`.
#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    /// The cluster: a Kafka broker, or the address `herald mock` printed.
    #[arg(short = 'b', long = "bootstrap-server", alias = "bootstrap-servers", value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,

    /// The topic to read.
    #[arg(short = 't', long)]
    pub topic: String,

    /// Output format.
    #[arg(long, value_enum, default_value_t = ConsumeFormat::Text)]
    pub format: ConsumeFormat,

    /// Which records of transactions to print: read_committed skips those of
    /// aborted transactions and stops at a transaction still open, as a Kafka
    /// consumer with isolation.level=read_committed does.
    #[arg(long, value_enum, default_value_t = Isolation::ReadUncommitted)]
    pub isolation: Isolation,

    /// Read this partition only (repeatable; default: every partition).
    #[arg(short = 'p', long = "partition", value_name = "N")]
    pub partitions: Vec<i32>,

    /// Where to start in each partition read: beginning (the default), end, an
    /// offset, or -N for the last N records (kcat's -o).
    #[arg(short = 'o', long, value_name = "beginning|end|N|-N", value_parser = parse_offset, allow_hyphen_values = true)]
    pub offset: Option<StartOffset>,

    /// Stop after N records (kcat's -c, the console consumer's --max-messages).
    #[arg(short = 'c', long, alias = "max-messages", value_name = "N")]
    pub max_records: Option<u64>,

    /// At the end of the partitions, wait for new records and print them as they
    /// come, until Ctrl-C or --max-records (without it, herald stops at the end
    /// each partition had when it started).
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// Set a client property, e.g. -X security.protocol=SASL_SSL (repeatable;
    /// the security.protocol, ssl.* and sasl.* ones apply to reading).
    #[arg(short = 'X', long = "property", value_name = "NAME=VALUE")]
    pub properties: Vec<String>,
}

pub async fn run(args: ConsumeArgs) -> Result<ExitCode, CliError> {
    let Some(bootstrap) = args.bootstrap_server else {
        return Err(CliError::usage(
            "--bootstrap-server is required: a Kafka broker, or the address `herald mock` prints \
             (an embedded cluster started by `herald produce` ends with it)",
        ));
    };
    let mut props = vec![("bootstrap.servers", bootstrap.as_str())];
    for p in &args.properties {
        props.push(split_property(p).map_err(|e| CliError::usage(format!("-X {e}")))?);
    }
    let level = match args.isolation {
        Isolation::ReadUncommitted => IsolationLevel::ReadUncommitted,
        Isolation::ReadCommitted => IsolationLevel::ReadCommitted,
    };
    let mut options = ReadOptions::new().start(args.offset.unwrap_or_default()).follow(args.follow);
    if !args.partitions.is_empty() {
        options = options.partitions(args.partitions.clone());
    }
    if let Some(n) = args.max_records {
        options = options.max_records(n);
    }
    let reader = TopicReader::from_properties(props)?.isolation(level);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let read = reader
        .read(&args.topic, &options, |r| {
            let line = match args.format {
                ConsumeFormat::Text => text(&r),
                ConsumeFormat::Json => json(&r).to_string(),
            };
            // Following, each record shows as it comes.
            if writeln!(out, "{line}").is_err() || (args.follow && out.flush().is_err()) {
                return ControlFlow::Break(()); // stdout closed (a pipe's reader is gone)
            }
            ControlFlow::Continue(())
        })
        .await;
    let _ = out.flush();
    let n = read?;
    eprintln!("herald: {n} records in {}", args.topic);
    Ok(ExitCode::SUCCESS)
}

/// kcat's -o: `beginning`, `end`, an offset, or `-N` (N before the end).
fn parse_offset(s: &str) -> Result<StartOffset, String> {
    match s {
        "beginning" | "earliest" => Ok(StartOffset::Earliest),
        "end" | "latest" => Ok(StartOffset::Latest),
        _ => match s.parse::<i64>() {
            Ok(n) if n < 0 => Ok(StartOffset::FromEnd(-n)),
            Ok(n) => Ok(StartOffset::Offset(n)),
            Err(_) => Err("beginning, end, an offset, or -N for the last N records".into()),
        },
    }
}

fn shown(b: Option<&[u8]>) -> String {
    match b {
        None => "(null)".to_owned(),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => s.to_owned(),
            Err(_) => format!("base64:{}", base64::engine::general_purpose::STANDARD.encode(b)),
        },
    }
}

/// A timestamp as UTC ISO 8601 (without a date library: civil-from-days).
pub fn iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
}

fn text(r: &ConsumedRecord) -> String {
    let headers: Vec<String> =
        r.headers.iter().map(|h| format!("{}={}", h.key, shown(h.value.as_deref()))).collect();
    let kind = match r.timestamp_type {
        TimestampType::CreateTime => "",
        TimestampType::LogAppendTime => " (log append time)",
    };
    format!(
        "p{} o{} {}{kind} key={} headers=[{}] value={}",
        r.partition,
        r.offset,
        iso8601(r.timestamp),
        shown(r.key.as_deref()),
        headers.join(", "),
        shown(r.value.as_deref())
    )
}

fn json(r: &ConsumedRecord) -> serde_json::Value {
    let field = |b: Option<&[u8]>| -> serde_json::Value {
        match b {
            None => serde_json::Value::Null,
            Some(b) => match std::str::from_utf8(b) {
                Ok(s) => json!(s),
                Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(b) }),
            },
        }
    };
    json!({
        "partition": r.partition,
        "offset": r.offset,
        "timestamp": r.timestamp,
        "timestamp_type": match r.timestamp_type { TimestampType::CreateTime => "CreateTime", TimestampType::LogAppendTime => "LogAppendTime" },
        "key": field(r.key.as_deref()),
        "headers": r.headers.iter().map(|h| json!({"key": h.key, "value": field(h.value.as_deref())})).collect::<Vec<_>>(),
        "value": field(r.value.as_deref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_formats_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59.999Z");
    }
}
