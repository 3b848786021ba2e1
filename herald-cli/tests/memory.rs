//! The producer's memory stays bounded by `buffer.memory` with compression on.
//!
//! `herald bench` runs 100,000 records of 1 KiB — six times a 16 MiB
//! `buffer.memory` — as fast as it can against its embedded cluster (acknowledging
//! without storing), and reports the process's peak RSS (`ru_maxrss`). The bound
//! is `buffer.memory` + 32 MiB for the producer (codec contexts, compressed copies,
//! request buffers, the runtime), plus 16 MiB for the embedded cluster that shares
//! the process (its request buffers and the decompression that checks each batch).
//! Before compression had a bounded set of workers, every sealed batch got its own
//! job, codec context and output buffer, and the same run peaked at several times
//! `buffer.memory`.

mod common;

use common::herald;

const BUFFER_MEMORY: u64 = 16 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

fn peak_rss(compression: &str) -> u64 {
    let buffer = format!("buffer.memory={BUFFER_MEMORY}");
    let codec = format!("compression.type={compression}");
    let out = herald(
        &[
            "bench",
            "--discard",
            "--num-records",
            "100000",
            "--record-size",
            "1024",
            "-X",
            &buffer,
            "-X",
            &codec,
            "--json",
        ],
        "",
    );
    assert!(out.status.success(), "herald bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON report");
    assert_eq!(report["errors"], 0, "{report}");
    report["peak_rss_bytes"].as_u64().expect("peak_rss_bytes")
}

#[test]
fn peak_rss_stays_within_buffer_memory_plus_a_fixed_allowance_with_compression() {
    let limit = BUFFER_MEMORY + 32 * MIB + 16 * MIB;
    for codec in ["zstd", "lz4"] {
        let rss = peak_rss(codec);
        assert!(rss > 0, "{codec}: no RSS figure");
        assert!(
            rss <= limit,
            "{codec}: peak RSS {} MiB over buffer.memory {} MiB + 48 MiB",
            rss / MIB,
            BUFFER_MEMORY / MIB
        );
    }
}
