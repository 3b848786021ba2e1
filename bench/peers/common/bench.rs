//! Shared by the Rust peers of `bench/compare` (included with `#[path]`, so each
//! peer stays a single self-contained crate): the common command line, the
//! payloads, a latency histogram, pacing for `--throughput` (due times), process CPU/RSS,
//! and the one-line JSON result.
//!
//! Contract (see bench/README.md):
//!   --bootstrap-server HOST:PORT --topic T --num-records N --record-size BYTES
//!   [--payload-file F] --throughput R --warmup-records W [-X name=value]... --json
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Args {
    pub bootstrap: String,
    pub topic: String,
    pub num_records: u64,
    pub record_size: usize,
    pub payload_file: Option<String>,
    pub throughput: f64,
    pub warmup_records: u64,
    pub props: BTreeMap<String, String>,
    pub json: bool,
}

impl Args {
    pub fn parse(usage_name: &str) -> Args {
        let mut argv: Vec<String> = std::env::args().skip(1).collect();
        // Accept --name=value as well as --name value.
        let mut expanded = Vec::new();
        for a in argv.drain(..) {
            if a.starts_with("--") && a.contains('=') {
                let (k, v) = a.split_once('=').unwrap();
                expanded.push(k.to_string());
                expanded.push(v.to_string());
            } else {
                expanded.push(a);
            }
        }
        let usage = || -> ! {
            eprintln!(
                "usage: {usage_name} --bootstrap-server HOST:PORT --topic T --num-records N \
                 --record-size BYTES [--payload-file F] [--throughput R] [--warmup-records W] \
                 [-X name=value]... [--json]"
            );
            std::process::exit(64)
        };
        let mut args = Args {
            bootstrap: String::new(),
            topic: String::new(),
            num_records: 0,
            record_size: 0,
            payload_file: None,
            throughput: -1.0,
            warmup_records: 0,
            props: BTreeMap::new(),
            json: false,
        };
        let mut it = expanded.into_iter();
        while let Some(a) = it.next() {
            let mut val = |name: &str| -> String {
                it.next().unwrap_or_else(|| {
                    eprintln!("{usage_name}: {name} needs a value");
                    usage()
                })
            };
            match a.as_str() {
                "--bootstrap-server" | "-b" => args.bootstrap = val(&a),
                "--topic" | "-t" => args.topic = val(&a),
                "--num-records" => args.num_records = num(&val(&a), &a),
                "--record-size" => args.record_size = num(&val(&a), &a),
                "--payload-file" => args.payload_file = Some(val(&a)),
                "--throughput" => args.throughput = num(&val(&a), &a),
                "--warmup-records" => args.warmup_records = num(&val(&a), &a),
                "-X" | "--property" => {
                    let kv = val(&a);
                    let Some((k, v)) = kv.split_once('=') else {
                        eprintln!("{usage_name}: -X wants name=value, got {kv:?}");
                        usage()
                    };
                    args.props.insert(k.trim().to_string(), v.trim().to_string());
                }
                "--json" => args.json = true,
                "-h" | "--help" => usage(),
                other => {
                    eprintln!("{usage_name}: unknown argument {other:?}");
                    usage()
                }
            }
        }
        if args.bootstrap.is_empty() || args.topic.is_empty() || args.num_records == 0 {
            usage()
        }
        if args.record_size == 0 && args.payload_file.is_none() {
            eprintln!("{usage_name}: --record-size or --payload-file is required");
            usage()
        }
        if args.warmup_records >= args.num_records {
            eprintln!("{usage_name}: --warmup-records must be below --num-records");
            usage()
        }
        args
    }

    pub fn prop(&self, name: &str) -> Option<&str> {
        self.props.get(name).map(String::as_str)
    }

    /// `acks` as Kafka spells it: "0", "1" or "all" ("-1" is "all").
    pub fn acks(&self) -> &str {
        match self.prop("acks") {
            Some("-1") | Some("all") | None => "all",
            Some(a) => a,
        }
    }

    pub fn idempotence(&self) -> bool {
        // Kafka 3.0+ default: true (and it requires acks=all).
        match self.prop("enable.idempotence") {
            Some(v) => v == "true",
            None => self.acks() == "all",
        }
    }

    pub fn linger(&self) -> Duration {
        let ms: f64 = self.prop("linger.ms").map(|v| num(v, "linger.ms")).unwrap_or(5.0);
        Duration::from_micros((ms * 1000.0) as u64)
    }

    pub fn batch_size(&self) -> usize {
        self.prop("batch.size").map(|v| num(v, "batch.size")).unwrap_or(16384)
    }

    pub fn compression(&self) -> &str {
        self.prop("compression.type").unwrap_or("none")
    }

    /// The payloads, one per line of `--payload-file` (cycled by the caller),
    /// or a deterministic filler of `--record-size` bytes.
    pub fn payloads(&self) -> Vec<Vec<u8>> {
        if let Some(path) = &self.payload_file {
            let data = std::fs::read(path).unwrap_or_else(|e| {
                eprintln!("cannot read {path}: {e}");
                std::process::exit(2)
            });
            let lines: Vec<Vec<u8>> =
                data.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect();
            if lines.is_empty() {
                eprintln!("{path}: no payloads");
                std::process::exit(2)
            }
            lines
        } else {
            // xorshift64*, fixed seed: printable, deterministic.
            let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
            (0..1000)
                .map(|_| {
                    (0..self.record_size)
                        .map(|_| {
                            s ^= s >> 12;
                            s ^= s << 25;
                            s ^= s >> 27;
                            b'a' + (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 59) as u8 % 26
                        })
                        .collect()
                })
                .collect()
        }
    }
}

fn num<T: std::str::FromStr>(s: &str, name: &str) -> T {
    s.trim().parse().unwrap_or_else(|_| {
        eprintln!("{name}: not a number: {s:?}");
        std::process::exit(64)
    })
}

/// Log-linear latency histogram in microseconds: 128 sub-buckets per power of
/// two (< 0.8 % relative error), 64 KiB, no allocation while recording.
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum_us: u128,
    max_us: u64,
}

const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: vec![0; (64 * SUB) as usize], total: 0, sum_us: 0, max_us: 0 }
    }
}

impl Histogram {
    fn index(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros(); // >= SUB_BITS
        let shift = msb - SUB_BITS;
        let sub = (v >> shift) - SUB; // 0..SUB
        (((shift as u64 + 1) << SUB_BITS) + sub) as usize
    }

    /// The midpoint of the values of bucket `i`.
    fn value(i: usize) -> f64 {
        let i = i as u64;
        if i < SUB {
            return i as f64;
        }
        let shift = (i >> SUB_BITS) - 1;
        let sub = i & (SUB - 1);
        let lo = (SUB + sub) << shift;
        lo as f64 + ((1u64 << shift) as f64 - 1.0) / 2.0
    }

    pub fn record(&mut self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        self.counts[Self::index(us)] += 1;
        self.total += 1;
        self.sum_us += us as u128;
        self.max_us = self.max_us.max(us);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// Percentile `q` (0..=1) in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return (Self::value(i) / 1000.0).min(self.max_us as f64 / 1000.0);
            }
        }
        self.max_us as f64 / 1000.0
    }

    pub fn json(&self) -> String {
        let avg = if self.total == 0 { 0.0 } else { self.sum_us as f64 / self.total as f64 / 1000.0 };
        format!(
            "{{\"avg\":{:.3},\"p50\":{:.3},\"p95\":{:.3},\"p99\":{:.3},\"p999\":{:.3},\"max\":{:.3}}}",
            avg,
            self.quantile_ms(0.50),
            self.quantile_ms(0.95),
            self.quantile_ms(0.99),
            self.quantile_ms(0.999),
            self.max_us as f64 / 1000.0
        )
    }
}

/// Pacing for `--throughput` (bench/README.md, "Latency"): record `i`, counted
/// from the first record of the run, is *due* at `start + i/rate`. A peer never
/// sends a record before it is due: when ahead it sleeps until the due time with
/// the OS sleep ([`sleep_until`]; a runtime whose own timer is coarse may use it
/// for all but the last [`OS_SLEEP_SPAN`] of a long wait). A paced record's
/// latency is measured from its due time, not from when its send call started,
/// so a send that blocks, or a loop that falls behind, counts against every
/// record that should have gone out meanwhile (no coordinated omission), and no
/// client gains from sending early. Unpaced (rate <= 0), a record's latency
/// starts when its send call starts.
pub struct Pacer {
    rate: f64,
    start: Instant,
}

/// The last stretch of a wait that a peer leaves to the OS sleep. tokio's and
/// Go's timers have 1 ms granularity (they wake up to a millisecond late), so an
/// async peer may wait on its runtime's timer until this long before a record
/// is due, serving completions meanwhile, and sleeps the rest with
/// [`sleep_until`]. At bench/compare's rates a record is due every few tens of
/// microseconds, so the OS sleep is all there is.
pub const OS_SLEEP_SPAN: Duration = Duration::from_millis(2);

impl Pacer {
    /// Starts the clock: record 0 is due now.
    pub fn new(rate: f64) -> Pacer {
        Pacer { rate, start: Instant::now() }
    }

    /// When record `i` is due, or `None` when unpaced.
    pub fn due(&self, i: u64) -> Option<Instant> {
        if self.rate <= 0.0 {
            return None;
        }
        Some(self.start + Duration::from_secs_f64(i as f64 / self.rate))
    }
}

/// Sleeps with the OS sleep (`nanosleep`) until `t`; returns at once when `t`
/// has passed. Never returns before `t`.
pub fn sleep_until(t: Instant) {
    loop {
        let now = Instant::now();
        if now >= t {
            return;
        }
        std::thread::sleep(t - now);
    }
}

/// User + system CPU time of this process so far.
pub fn cpu_time() -> Duration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Peak resident set size of this process (VmHWM), in bytes.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

pub struct Outcome {
    pub client: &'static str,
    pub version: String,
    /// Measured (post-warmup) records acknowledged.
    pub records: u64,
    /// Payload bytes of the measured records.
    pub bytes: u64,
    pub elapsed: Duration,
    pub cpu: Duration,
    pub errors: u64,
    pub latency: Histogram,
    /// Free-form notes about settings the client cannot honour.
    pub notes: Vec<String>,
}

impl Outcome {
    pub fn print(&self, json: bool) {
        let secs = self.elapsed.as_secs_f64();
        let rps = self.records as f64 / secs;
        let mibps = self.bytes as f64 / secs / (1024.0 * 1024.0);
        let cpu = self.cpu.as_secs_f64();
        let per = if self.records == 0 { 0.0 } else { cpu * 1e9 / self.records as f64 };
        if json {
            let notes: Vec<String> = self.notes.iter().map(|n| json_str(n)).collect();
            println!(
                "{{\"client\":{},\"version\":{},\"records\":{},\"seconds\":{:.6},\"records_per_sec\":{:.1},\
                 \"mib_per_sec\":{:.3},\"latency_ms\":{},\"cpu_seconds\":{:.6},\"cpu_ns_per_record\":{:.1},\
                 \"peak_rss_bytes\":{},\"errors\":{},\"notes\":[{}]}}",
                json_str(self.client),
                json_str(&self.version),
                self.records,
                secs,
                rps,
                mibps,
                self.latency.json(),
                cpu,
                per,
                peak_rss_bytes(),
                self.errors,
                notes.join(",")
            );
        } else {
            println!(
                "{}: {} records in {:.2} s: {:.0} records/s, {:.2} MiB/s, p50 {:.2} ms, p99 {:.2} ms, \
                 p99.9 {:.2} ms, cpu {:.2} s ({:.0} ns/record), peak RSS {:.1} MiB, {} errors",
                self.client,
                self.records,
                secs,
                rps,
                mibps,
                self.latency.quantile_ms(0.5),
                self.latency.quantile_ms(0.99),
                self.latency.quantile_ms(0.999),
                cpu,
                per,
                peak_rss_bytes() as f64 / 1048576.0,
                self.errors
            );
        }
    }
}

pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_monotonic_and_tight() {
        let mut prev = 0;
        for v in 0..2_000_000u64 {
            let i = Histogram::index(v);
            assert!(i >= prev);
            prev = i;
            let mid = Histogram::value(i);
            assert!((mid - v as f64).abs() <= (v as f64 / 128.0).max(0.5) + 0.5, "{v} -> {mid}");
        }
    }

    #[test]
    fn due_times_and_sleep() {
        let unpaced = Pacer::new(-1.0);
        assert!(unpaced.due(5).is_none());
        let p = Pacer::new(1000.0);
        let d0 = p.due(0).unwrap();
        let d10 = p.due(10).unwrap();
        assert_eq!(d10 - d0, Duration::from_millis(10));
        sleep_until(d10);
        assert!(Instant::now() >= d10);
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us * 10));
        }
        assert!((h.quantile_ms(0.5) - 5.0).abs() < 0.05);
        assert!((h.quantile_ms(0.99) - 9.9).abs() < 0.1);
        assert_eq!(h.count(), 1000);
    }
}
