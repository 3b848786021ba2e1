//! Differential test: herald's partition for a key equals the Java client's
//! (`BuiltInPartitioner.partitionForKey`, run by `harness/java-tools`), for many
//! random keys of 0 to 64 bytes and several partition counts.

mod support;

use herald::partitioner::partition_for_key;

const PARTITION_COUNTS: &[i32] =
    &[1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 24, 32, 50, 64, 100, 128, 1000, 4096, 65_521];

#[tokio::test]
async fn herald_agrees_with_the_java_client_on_every_key() {
    // Fixed seed: the same keys every run, so a failure reproduces.
    let mut rng = fastrand::Rng::with_seed(0x9747_b28c);
    let mut keys: Vec<Vec<u8>> = vec![Vec::new(), b"truck_id_123".to_vec(), vec![0xff; 64]];
    while keys.len() < 12_000 {
        let len = rng.usize(0..=64);
        keys.push((0..len).map(|_| rng.u8(..)).collect());
    }
    let mut input = String::new();
    let mut expected = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        // Every key against a few partition counts (all counts for the first keys).
        let counts: Vec<i32> = if i < 200 {
            PARTITION_COUNTS.to_vec()
        } else {
            (0..4).map(|_| PARTITION_COUNTS[rng.usize(0..PARTITION_COUNTS.len())]).collect()
        };
        for n in counts {
            let hex: String =
                if k.is_empty() { "-".into() } else { k.iter().map(|b| format!("{b:02x}")).collect() };
            input.push_str(&format!("{hex} {n}\n"));
            expected.push((k.clone(), n, partition_for_key(k, n)));
        }
    }
    let out = support::java("dev.herald.tools.JavaPartition", &[], Some(input.into_bytes())).await;
    let java: Vec<i32> = out.lines().map(|l| l.trim().parse().expect("a partition per line")).collect();
    assert_eq!(java.len(), expected.len(), "one answer per key");
    let mut disagreements = 0;
    for ((key, n, ours), theirs) in expected.iter().zip(&java) {
        if ours != theirs {
            disagreements += 1;
            eprintln!("key {key:02x?} with {n} partitions: herald {ours}, java {theirs}");
        }
    }
    assert_eq!(disagreements, 0, "herald and Java disagree on {disagreements} of {} keys", expected.len());
    assert!(expected.len() >= 40_000, "{} comparisons", expected.len());
}
