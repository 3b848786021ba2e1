//! herald's compression path next to the codec crate alone, on the same bytes:
//! the overhead herald adds (copying the header, framing, the CRC) is the
//! difference. Run: `cargo bench -p herald --features bench-internals --bench compression`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use herald::bench_internals::{
    BATCH_HEADER_LEN, BenchRecord, Codec, build_batch, codec_alone, compress_and_stamp,
};

/// About 16 KiB of JSON-like records, as a batch at the default batch.size holds.
fn batch() -> bytes::BytesMut {
    let values: Vec<String> = (0..150)
        .map(|i| format!("{{\"truck\":\"truck_id_{}\",\"seq\":{i},\"lat\":52.{:04},\"lon\":13.{:04},\"speed_kmh\":{}}}", i % 9, i * 7 % 10_000, i * 13 % 10_000, 40 + i % 50))
        .collect();
    let keys: Vec<String> = (0..150).map(|i| format!("truck_id_{}", i % 9)).collect();
    let records: Vec<BenchRecord<'_>> = values
        .iter()
        .zip(&keys)
        .enumerate()
        .map(|(i, (v, k))| (1_700_000_000_000 + i as i64, Some(k.as_bytes()), Some(v.as_bytes())))
        .collect();
    build_batch(&records, &[])
}

fn compression(c: &mut Criterion) {
    let raw = batch();
    let records = &raw[BATCH_HEADER_LEN..];
    for (name, codec) in [
        ("gzip", Codec::Gzip { level: 6 }),
        ("snappy", Codec::Snappy),
        ("lz4", Codec::Lz4 { level: 9 }),
        ("zstd", Codec::Zstd { level: 3 }),
    ] {
        let mut g = c.benchmark_group(format!("compress/{name}"));
        g.throughput(Throughput::Bytes(raw.len() as u64));
        g.bench_function("herald_batch_path", |b| b.iter(|| compress_and_stamp(black_box(&raw), codec)));
        g.bench_function("codec_alone", |b| b.iter(|| codec_alone(black_box(records), codec)));
        g.finish();
    }
}

criterion_group!(benches, compression);
criterion_main!(benches);
