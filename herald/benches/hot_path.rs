//! The hot path piece by piece: encoding records into a batch, choosing a
//! partition, appending to the accumulator, and send-to-acknowledgement against the
//! embedded cluster (acknowledging without storing).
//! Run: `cargo bench -p herald --features bench-internals,mock --bench hot_path`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use herald::bench_internals::{BenchAccumulator, BenchRecord, build_batch, stamp};
use herald::partitioner::partition_for_key;

fn batch_encoding(c: &mut Criterion) {
    let value = [b'x'; 100];
    let key = b"truck_id_123".to_vec();
    let records: Vec<BenchRecord<'_>> =
        (0..150).map(|i| (1_700_000_000_000 + i, Some(&key[..]), Some(&value[..]))).collect();
    let mut g = c.benchmark_group("batch_encoding");
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("150 records of 100 B, finished", |b| b.iter(|| build_batch(black_box(&records), &[])));
    let raw = build_batch(&records, &[]);
    g.bench_function("150 records of 100 B, stamp and CRC-32C", |b| {
        b.iter_batched(|| raw.clone(), |mut r| stamp(black_box(&mut r)), BatchSize::SmallInput)
    });
    g.finish();
}

fn partitioner(c: &mut Criterion) {
    let keys: Vec<Vec<u8>> = (0..1024).map(|i| format!("truck_id_{i:06}").into_bytes()).collect();
    let mut g = c.benchmark_group("partitioner");
    g.throughput(Throughput::Elements(keys.len() as u64));
    g.bench_function("murmur2, 15-byte keys, 12 partitions", |b| {
        b.iter(|| keys.iter().map(|k| partition_for_key(black_box(k), 12)).sum::<i32>())
    });
    g.finish();
}

fn accumulator_append(c: &mut Criterion) {
    let acc = BenchAccumulator::new(16_384);
    let value = vec![b'x'; 100];
    let mut g = c.benchmark_group("accumulator_append");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000 records of 100 B, one partition", |b| {
        b.iter(|| {
            for i in 0..1000 {
                acc.append(1_700_000_000_000 + i, None, Some(black_box(&value)));
            }
            acc.drain()
        })
    });
    g.finish();
}

fn end_to_end(c: &mut Criterion) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (cluster, producer) = rt.block_on(async {
        let cluster = herald::mock::MockCluster::builder().start().await.expect("embedded cluster");
        cluster.create_topic("bench", 6).expect("topic");
        cluster.set_store_records(false);
        let producer = herald::Producer::builder()
            .bootstrap_servers(cluster.bootstrap())
            .linger(Duration::from_millis(5))
            .build()
            .expect("producer");
        producer.send_and_wait(herald::Record::new("bench").value("warm")).await.expect("warm up");
        (cluster, producer)
    });
    let value = bytes::Bytes::from(vec![b'x'; 100]);
    let mut g = c.benchmark_group("end_to_end_embedded");
    g.throughput(Throughput::Elements(10_000));
    g.sample_size(20);
    g.bench_function("10k records of 100 B, sent and acknowledged", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut futures = Vec::with_capacity(10_000);
                for _ in 0..10_000 {
                    futures.push(
                        producer.send(herald::Record::new("bench").value(value.clone())).await.expect("send"),
                    );
                }
                for f in futures {
                    f.await.expect("acknowledged");
                }
            })
        })
    });
    g.finish();
    drop(cluster);
}

criterion_group!(benches, batch_encoding, partitioner, accumulator_append, end_to_end);
criterion_main!(benches);
