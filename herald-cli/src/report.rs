//! Prints each input record's outcome, in input order, as the producer resolves it.

use std::io::Write;
use std::time::{Duration, Instant};

use herald::{DeliveryFuture, Error};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use tokio::sync::mpsc;

/// How outcomes are printed on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Nothing on stdout; failures on stderr.
    None,
    /// One line per record: `key=… partition=… offset=…`.
    Text,
    /// One JSON object per record: `{"line":…,"partition":…,"offset":…,"timestamp":…}`
    /// or `{"line":…,"error":"…"}`.
    Json,
}

/// One input record on its way.
pub enum Outcome {
    /// The line could not be made into a record, or `send` refused it.
    Refused(Error),
    /// The line had no key separator, or another input problem.
    BadInput(String),
    /// Queued: the future tells the rest.
    Sent(DeliveryFuture),
}

/// An input line's record, with what is needed to report it.
pub struct Entry {
    pub line: u64,
    pub key: Option<Vec<u8>>,
    pub outcome: Outcome,
}

/// What the reporter counted.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub delivered: u64,
    pub failed: u64,
}

/// Reads entries in input order and prints each outcome once it is known.
pub async fn run(mut rx: mpsc::Receiver<Entry>, format: ReportFormat, progress: bool) -> Totals {
    let bar = if progress {
        let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template("{spinner} {pos} records delivered ({per_sec}) {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        b.enable_steady_tick(Duration::from_millis(200));
        b
    } else {
        ProgressBar::hidden()
    };
    let started = Instant::now();
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut totals = Totals::default();
    while let Some(entry) = rx.recv().await {
        let key = entry.key.as_deref().map(|k| String::from_utf8_lossy(k).into_owned());
        let result = match entry.outcome {
            Outcome::Sent(f) => f.await.map_err(|e| e.to_string()),
            Outcome::Refused(e) => Err(e.to_string()),
            Outcome::BadInput(msg) => Err(msg),
        };
        let printed = match (&result, format) {
            (Ok(md), ReportFormat::Json) => writeln!(
                out,
                "{}",
                json!({
                    "line": entry.line,
                    "key": key,
                    "topic": md.topic(),
                    "partition": md.partition(),
                    "offset": md.offset(),
                    "timestamp": md.timestamp(),
                })
            ),
            (Ok(md), ReportFormat::Text) => writeln!(
                out,
                "key={} partition={} offset={}",
                key.as_deref().unwrap_or("(null)"),
                md.partition(),
                md.offset().map_or_else(|| "(none, acks=0)".to_owned(), |o| o.to_string())
            ),
            (Err(e), ReportFormat::Json) => {
                writeln!(out, "{}", json!({ "line": entry.line, "key": key, "error": e }))
            }
            (Err(_), ReportFormat::Text | ReportFormat::None) | (Ok(_), ReportFormat::None) => Ok(()),
        };
        // A closed stdout (piped into `head`, say) must not stop delivery: keep
        // counting, and report failures on stderr.
        drop(printed);
        match result {
            Ok(_) => {
                totals.delivered += 1;
                bar.inc(1);
            }
            Err(e) => {
                totals.failed += 1;
                bar.suspend(|| eprintln!("herald: line {}: {e}", entry.line));
                bar.set_message(format!("{} failed", totals.failed));
            }
        }
        if rx.is_empty() {
            let _ = out.flush();
        }
    }
    let _ = out.flush();
    bar.finish_and_clear();
    tracing::info!(elapsed = ?started.elapsed(), delivered = totals.delivered, failed = totals.failed, "report done");
    totals
}
