//! What became of each input line: counted as the outcomes arrive (from delivery
//! callbacks on the producer's sender task, or from the send loop for lines that
//! were never sent), and with `--report text|json` printed in input order by a
//! reporter thread.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use bytes::Bytes;
use herald::RecordMetadata;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parking_lot::Mutex;
use tokio::sync::Notify;

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

/// What was counted.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub delivered: u64,
    pub failed: u64,
}

/// One line's outcome, on its way to the reporter.
struct Done {
    line: u64,
    key: Option<Bytes>,
    result: Result<RecordMetadata, String>,
}

/// Where every line's outcome goes. Delivery callbacks must be `'static`, so this
/// lives for the rest of the process (see [`Outcomes::start`]): a callback then
/// holds a plain reference, with no reference count to touch per record.
pub struct Outcomes {
    format: ReportFormat,
    delivered: AtomicU64,
    failed: AtomicU64,
    bar: ProgressBar,
    /// Outcomes not yet taken by the reporter (text and json only).
    queue: Mutex<Vec<Done>>,
    /// The reporter thread, woken when `queue` stops being empty.
    reporter: OnceLock<Thread>,
    /// Lines in all, once the input is done and every outcome is in.
    lines: AtomicU64,
    finished: AtomicBool,
    /// The last line the reporter printed; the send loop keeps within
    /// `MAX_AHEAD` lines of it, so outcomes waiting to be printed stay bounded.
    printed: AtomicU64,
    /// The send loop waits for `caught_up`.
    waiting: AtomicBool,
    caught_up: Notify,
}

/// How many lines the send loop may be ahead of the reporter (as many as the
/// channel to the reporter held before).
const MAX_AHEAD: u64 = 100_000;

impl Outcomes {
    /// Starts counting (and with text or json, the reporter thread). Each call
    /// leaks one small struct: `herald produce` calls it once per process.
    pub fn start(format: ReportFormat, progress: bool) -> std::io::Result<(&'static Outcomes, Reporter)> {
        Outcomes::start_to(format, progress, Box::new(std::io::stdout()))
    }

    /// [`start`](Self::start), printing to `out`.
    fn start_to(
        format: ReportFormat,
        progress: bool,
        out: Box<dyn Write + Send>,
    ) -> std::io::Result<(&'static Outcomes, Reporter)> {
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
        let outcomes: &'static Outcomes = Box::leak(Box::new(Outcomes {
            format,
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            bar,
            queue: Mutex::new(Vec::new()),
            reporter: OnceLock::new(),
            lines: AtomicU64::new(0),
            finished: AtomicBool::new(false),
            printed: AtomicU64::new(0),
            waiting: AtomicBool::new(false),
            caught_up: Notify::new(),
        }));
        let thread = match format {
            ReportFormat::None => None,
            ReportFormat::Text | ReportFormat::Json => {
                let t = std::thread::Builder::new()
                    .name("herald-report".into())
                    .spawn(move || report_in_order(outcomes, out))?;
                let _ = outcomes.reporter.set(t.thread().clone());
                Some(t)
            }
        };
        // The bar's position, from the counters now and then (not per record).
        let ticker = progress.then(|| {
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_millis(100));
                loop {
                    every.tick().await;
                    outcomes.show_progress();
                }
            })
        });
        Ok((outcomes, Reporter { outcomes, thread, ticker }))
    }

    /// Whether outcomes are printed in input order (text, json): they then carry
    /// their key, and go through the reporter.
    pub fn ordered(&self) -> bool {
        self.format != ReportFormat::None
    }

    /// A line's outcome: from its delivery callback, or from the send loop when it
    /// was not sent. Exactly once per line.
    #[inline]
    pub fn resolve(&self, line: u64, key: Option<Bytes>, result: Result<RecordMetadata, String>) {
        match &result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
        if self.ordered() {
            let mut q = self.queue.lock();
            let wake = q.is_empty();
            q.push(Done { line, key, result });
            drop(q);
            if wake {
                if let Some(t) = self.reporter.get() {
                    t.unpark();
                }
            }
        } else if let Err(e) = result {
            self.bar.suspend(|| eprintln!("herald: line {line}: {e}"));
        }
    }

    /// A delivery callback's outcome, without the key (`--report none`).
    #[inline]
    pub fn on_delivery(&self, line: u64, result: herald::Result<RecordMetadata>) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.resolve(line, None, Err(e.to_string())),
        }
    }

    /// Whether the send loop, at `line`, is so far ahead of the reporter that it
    /// should wait for it ([`wait_for_reporter`](Self::wait_for_reporter)).
    #[inline]
    pub fn too_far_ahead(&self, line: u64) -> bool {
        self.ordered() && line.saturating_sub(self.printed.load(Ordering::Relaxed)) > MAX_AHEAD
    }

    /// Waits until the reporter has printed all but `MAX_AHEAD / 2` of the lines up
    /// to `line`. Every one of them must be on its way to an outcome (flushed, not
    /// lingering), or this waits for the linger.
    pub async fn wait_for_reporter(&self, line: u64) {
        loop {
            let caught_up = self.caught_up.notified();
            tokio::pin!(caught_up);
            caught_up.as_mut().enable();
            self.waiting.store(true, Ordering::SeqCst);
            if line.saturating_sub(self.printed.load(Ordering::SeqCst)) <= MAX_AHEAD / 2 {
                break;
            }
            caught_up.await;
        }
        self.waiting.store(false, Ordering::SeqCst);
    }

    /// The reporter has printed every line up to `line`.
    fn mark_printed(&self, line: u64) {
        self.printed.store(line, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) {
            self.caught_up.notify_one();
        }
    }

    fn show_progress(&self) {
        self.bar.set_position(self.delivered.load(Ordering::Relaxed));
        let failed = self.failed.load(Ordering::Relaxed);
        if failed > 0 {
            self.bar.set_message(format!("{failed} failed"));
        }
    }

    fn totals(&self) -> Totals {
        Totals {
            delivered: self.delivered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// The reporter's end: [`finish`](Reporter::finish) once every line has its outcome.
pub struct Reporter {
    outcomes: &'static Outcomes,
    thread: Option<JoinHandle<()>>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Reporter {
    /// There were `lines` lines and each has its outcome (the producer is closed,
    /// so every callback has run): print the rest, and count.
    pub fn finish(self, lines: u64) -> Totals {
        let o = self.outcomes;
        o.lines.store(lines, Ordering::Relaxed);
        o.finished.store(true, Ordering::Release);
        if let Some(t) = self.thread {
            t.thread().unpark();
            let _ = t.join();
        }
        if let Some(t) = self.ticker {
            t.abort();
        }
        o.show_progress();
        o.bar.finish_and_clear();
        o.totals()
    }
}

/// The reporter thread: takes outcomes as they come, holds back those that
/// overtook earlier lines, and prints each line's in input order.
fn report_in_order(o: &'static Outcomes, out: Box<dyn Write + Send>) {
    let mut out = Printer::new(o.format, out);
    let mut taken: Vec<Done> = Vec::new();
    // held[i] is line next + i's outcome, if it is in.
    let mut held: VecDeque<Option<Done>> = VecDeque::new();
    let mut next: u64 = 1;
    loop {
        let finished = o.finished.load(Ordering::Acquire);
        std::mem::swap(&mut *o.queue.lock(), &mut taken);
        if taken.is_empty() {
            if finished {
                // Every callback has run: a line still missing has no outcome
                // coming (which would be a bug); count it rather than wait forever.
                let lines = o.lines.load(Ordering::Relaxed);
                if next > lines {
                    break;
                }
                let missing: Vec<u64> = (0..held.len() as u64)
                    .filter(|i| held[*i as usize].is_none())
                    .map(|i| next + i)
                    .chain(next + held.len() as u64..=lines)
                    .collect();
                for line in missing {
                    o.failed.fetch_add(1, Ordering::Relaxed);
                    let result = Err("the producer reported no outcome for this record".to_owned());
                    o.queue.lock().push(Done { line, key: None, result });
                }
                continue;
            }
            // A pause: let a reader of stdout see what is done so far.
            out.flush();
            std::thread::park();
            continue;
        }
        for d in taken.drain(..) {
            let Some(i) = d.line.checked_sub(next) else { continue };
            let i = i as usize;
            if i >= held.len() {
                held.resize_with(i + 1, || None);
            }
            held[i] = Some(d);
        }
        while let Some(Some(_)) = held.front() {
            let Some(Some(d)) = held.pop_front() else { break };
            next += 1;
            out.print(&d);
            if let Err(e) = &d.result {
                out.flush();
                o.bar.suspend(|| eprintln!("herald: line {}: {e}", d.line));
            }
        }
        o.mark_printed(next - 1);
    }
    out.flush();
}

/// Formats outcomes into a buffer written to stdout in large pieces.
struct Printer {
    format: ReportFormat,
    buf: Vec<u8>,
    out: Box<dyn Write + Send>,
    /// The last topic seen, and it as a JSON string.
    topic: (String, Vec<u8>),
    /// `out` failed (a closed stdout, say): print nothing more, but keep going.
    broken: bool,
}

impl Printer {
    fn new(format: ReportFormat, out: Box<dyn Write + Send>) -> Printer {
        Printer {
            format,
            buf: Vec::with_capacity(128 * 1024),
            out,
            topic: (String::new(), Vec::new()),
            broken: false,
        }
    }

    /// One line's outcome.
    fn print(&mut self, d: &Done) {
        let key = d.key.as_deref().map(String::from_utf8_lossy);
        let b = &mut self.buf;
        let mut n = itoa::Buffer::new();
        match (self.format, &d.result) {
            (ReportFormat::Text, Ok(md)) => {
                b.extend_from_slice(b"key=");
                b.extend_from_slice(key.as_deref().unwrap_or("(null)").as_bytes());
                b.extend_from_slice(b" partition=");
                b.extend_from_slice(n.format(md.partition()).as_bytes());
                b.extend_from_slice(b" offset=");
                match md.offset() {
                    Some(o) => b.extend_from_slice(n.format(o).as_bytes()),
                    None => b.extend_from_slice(b"(none, acks=0)"),
                }
                b.push(b'\n');
            }
            // The fields in the order serde_json's map gives them (sorted), as before.
            (ReportFormat::Json, Ok(md)) => {
                b.extend_from_slice(b"{\"key\":");
                json_str(b, key.as_deref());
                b.extend_from_slice(b",\"line\":");
                b.extend_from_slice(n.format(d.line).as_bytes());
                b.extend_from_slice(b",\"offset\":");
                match md.offset() {
                    Some(o) => b.extend_from_slice(n.format(o).as_bytes()),
                    None => b.extend_from_slice(b"null"),
                }
                b.extend_from_slice(b",\"partition\":");
                b.extend_from_slice(n.format(md.partition()).as_bytes());
                b.extend_from_slice(b",\"timestamp\":");
                b.extend_from_slice(n.format(md.timestamp()).as_bytes());
                b.extend_from_slice(b",\"topic\":");
                if self.topic.0 != md.topic() {
                    self.topic.0 = md.topic().to_owned();
                    self.topic.1.clear();
                    json_str(&mut self.topic.1, Some(md.topic()));
                }
                b.extend_from_slice(&self.topic.1);
                b.extend_from_slice(b"}\n");
            }
            (ReportFormat::Json, Err(e)) => {
                b.extend_from_slice(b"{\"error\":");
                json_str(b, Some(e));
                b.extend_from_slice(b",\"key\":");
                json_str(b, key.as_deref());
                b.extend_from_slice(b",\"line\":");
                b.extend_from_slice(n.format(d.line).as_bytes());
                b.extend_from_slice(b"}\n");
            }
            (ReportFormat::Text, Err(_)) | (ReportFormat::None, _) => {}
        }
        if self.buf.len() >= 64 * 1024 {
            self.flush();
        }
    }

    /// Writes out what is buffered. A closed stdout (piped into `head`, say) must
    /// not stop delivery: failures still go to stderr, and the counts are right.
    fn flush(&mut self) {
        if !self.buf.is_empty() && !self.broken {
            self.broken = self.out.write_all(&self.buf).and_then(|()| self.out.flush()).is_err();
        }
        self.buf.clear();
    }
}

/// `s` as a JSON string, escaped as serde_json does, or null.
fn json_str(out: &mut Vec<u8>, s: Option<&str>) {
    let Some(s) = s else {
        out.extend_from_slice(b"null");
        return;
    };
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut plain = 0;
    let mut unicode = *b"\\u0000";
    for (i, &c) in bytes.iter().enumerate() {
        let escaped: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..0x20 => {
                unicode[4] = HEX[(c >> 4) as usize];
                unicode[5] = HEX[(c & 0xf) as usize];
                &unicode
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain..i]);
        out.extend_from_slice(escaped);
        plain = i + 1;
    }
    out.extend_from_slice(&bytes[plain..]);
    out.push(b'"');
}

const HEX: [u8; 16] = *b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_escape_and_keep_the_old_field_order() {
        let mut p = Printer::new(ReportFormat::Json, Box::new(std::io::sink()));
        let d = Done { line: 7, key: Some(Bytes::from_static(b"k\"\xff")), result: Err("no \"sep\"".into()) };
        p.print(&d);
        let d = Done { line: 1, key: None, result: Err("x".into()) };
        p.print(&d);
        let s = String::from_utf8(p.buf).unwrap();
        assert_eq!(
            s,
            "{\"error\":\"no \\\"sep\\\"\",\"key\":\"k\\\"\u{fffd}\",\"line\":7}\n{\"error\":\"x\",\"key\":null,\"line\":1}\n"
        );
    }

    /// What the reporter printed, shared with the test.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn outcomes_print_in_input_order_and_the_sender_waits_for_the_reporter() {
        let printed = Shared::default();
        let (o, reporter) = Outcomes::start_to(ReportFormat::Json, false, Box::new(printed.clone())).unwrap();
        // Line 1's outcome comes last: nothing can be printed before it, so the
        // send loop must stop and wait once it is MAX_AHEAD lines ahead.
        let lines = 2 * MAX_AHEAD + 7; // odd: the last pair is whole
        let mut waited = 0;
        for line in 2..=lines {
            if o.too_far_ahead(line) {
                if waited == 0 {
                    o.resolve(1, None, Err("late".into()));
                }
                waited += 1;
                o.wait_for_reporter(line).await;
                assert!(line - o.printed.load(Ordering::SeqCst) <= MAX_AHEAD / 2);
            }
            // Pairs of lines (2 and 3, 4 and 5, ...) resolve the wrong way round,
            // as outcomes from different partitions do.
            let l = line ^ 1;
            o.resolve(l, Some(Bytes::from(format!("k{l}"))), Err(format!("e{l}")));
        }
        assert!(waited > 0, "the send loop waited for the reporter");
        let totals = reporter.finish(lines);
        assert_eq!((totals.delivered, totals.failed), (0, lines));
        let out = String::from_utf8(printed.0.lock().clone()).unwrap();
        let mut n = 0;
        for (i, l) in out.lines().enumerate() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let line = i as u64 + 1;
            assert_eq!(v["line"], line, "{l}");
            n += 1;
            if line > 1 {
                assert_eq!(v["key"], format!("k{line}"));
                assert_eq!(v["error"], format!("e{line}"));
            }
        }
        assert_eq!(n, lines);
    }

    #[test]
    fn json_strings_are_escaped_as_serde_json_does() {
        let all: String = (0u8..0x80).map(char::from).collect();
        for s in ["", "plain", "a\"b\\c", "tab\tnl\ncr\r", "\u{1}\u{1f}\u{7f}", "ü€😀", all.as_str()] {
            let mut out = Vec::new();
            json_str(&mut out, Some(s));
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }
}
