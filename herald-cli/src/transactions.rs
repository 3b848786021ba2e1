//! `herald produce --transactional-id ID --transaction-records N`: the input in
//! transactions of N lines. A line's outcome is known only once its transaction
//! ends, so outcomes wait here until then: all written when it commits, all failed
//! (not written) when it aborts — which it does when any of its lines failed or
//! was refused.

use bytes::Bytes;
use herald::{Producer, RecordMetadata};
use parking_lot::Mutex;

use crate::report::Outcomes;

/// One line's outcome, held until its transaction ends.
struct Held {
    line: u64,
    key: Option<Bytes>,
    result: Result<RecordMetadata, String>,
}

/// The outcomes of the open transaction's lines. Lives for the rest of the
/// process, as [`Outcomes`] does: delivery callbacks hold a plain reference.
pub struct TxnLines {
    every: u64,
    held: Mutex<Vec<Held>>,
}

/// How a transaction ended.
pub enum Ended {
    /// Committed, or aborted with its lines failed: the next one may begin.
    Next,
    /// The producer cannot go on (fenced, or failed for good): stop reading.
    Stop,
}

impl TxnLines {
    /// Transactions of `every` lines.
    pub fn start(every: u64) -> &'static TxnLines {
        Box::leak(Box::new(TxnLines { every: every.max(1), held: Mutex::new(Vec::new()) }))
    }

    /// Whether `line` is the last of its transaction.
    pub fn ends_at(&self, line: u64) -> bool {
        line % self.every == 0
    }

    /// A line's outcome as far as its record goes (from its delivery callback,
    /// or at once when it was not sent).
    pub fn hold(&self, line: u64, key: Option<Bytes>, result: Result<RecordMetadata, String>) {
        self.held.lock().push(Held { line, key, result });
    }

    /// Ends the open transaction: commits it, or — when a line of it failed, or
    /// the commit did — aborts it; then hands every line's outcome to `outcomes`.
    pub async fn end(&self, producer: &Producer, outcomes: &Outcomes) -> Ended {
        let committed = producer.commit_transaction().await;
        let mut unknown = false;
        // (why it failed, what comes next); the abort runs the callbacks of what
        // was still queued, so the lines' outcomes are all in after it.
        let failed = match committed {
            Ok(()) => None,
            Err(e) if e.is_transaction_abortable() => match producer.abort_transaction().await {
                Ok(()) => Some((format!("aborted: {}", root_cause(&e)), Ended::Next)),
                Err(abort) => Some((
                    format!("not committed: {}; the abort failed: {abort}", root_cause(&e)),
                    Ended::Stop,
                )),
            },
            Err(e) => {
                unknown = e.may_have_been_written();
                let maybe = if unknown { "may have been committed" } else { "not committed" };
                Some((format!("{maybe}: {e}"), Ended::Stop))
            }
        };
        let mut held = std::mem::take(&mut *self.held.lock());
        held.sort_by_key(|h| h.line);
        let Some((why, next)) = failed else {
            for h in held {
                outcomes.resolve(h.line, h.key, h.result);
            }
            return Ended::Next;
        };
        let (first, last) = (held.first().map_or(0, |h| h.line), held.last().map_or(0, |h| h.line));
        let why = format!("transaction of lines {first}-{last} {why}");
        eprintln!("herald: {why}");
        let fate = if unknown { "may have been written" } else { "not written" };
        for h in held {
            let reason = match h.result {
                Err(own) if !own.is_empty() && !why.contains(own.as_str()) => format!("{own}; {why}; {fate}"),
                _ => format!("{why}; {fate}"),
            };
            outcomes.resolve(h.line, h.key, Err(reason));
        }
        next
    }
}

/// The innermost cause of `e`: what went wrong first (e.g. the record that was
/// refused), without the layers that followed from it.
fn root_cause(e: &herald::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A line's own error in a transaction: empty when it failed only because its
/// transaction did (the transaction's failure then says why).
pub fn line_error(e: &herald::Error) -> String {
    if e.is_transaction_abortable() { String::new() } else { e.to_string() }
}
