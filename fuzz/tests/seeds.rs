//! The checked-in seeds are what the generator writes, and every seed runs through
//! its harness; the `mock_request` ones are answered (not refused) by the cluster.

use std::path::Path;
use std::sync::Mutex;

/// The harness's cluster is one per process: tests take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn seeds_are_current_and_accepted() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let env = herald_fuzz::mock::env();
    for (target, name, data) in herald_fuzz::seeds::all() {
        let on_disk = std::fs::read(root.join(target).join(name))
            .unwrap_or_else(|e| panic!("{target}/{name}: {e}; run the gen_seeds example"));
        // The produce seeds carry no wall-clock time; only the structured one asks
        // the harness for "now", which is not in the file.
        assert_eq!(on_disk, data, "{target}/{name} differs from the generator's; run the gen_seeds example");
        match target {
            "mock_request" => {
                env.reset();
                if data[0] < 3 {
                    let r = env.handle(i32::from(data[0]) + 1, data[1..].to_vec());
                    assert!(matches!(r, Ok(Some(_))), "{name}: {r:?}");
                }
                herald_fuzz::mock::run_mock_request(&data);
            }
            "record_batch" => herald_fuzz::run_record_batch(&data),
            _ => herald_fuzz::run_client_response(&data),
        }
    }
}

/// The raw-mode commands of a seed: itself, or each command of a sequence.
fn commands(data: &[u8]) -> Vec<Vec<u8>> {
    if data[0] != 9 {
        return vec![data.to_vec()];
    }
    let mut out = Vec::new();
    let mut rest = &data[1..];
    while rest.len() >= 2 {
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        out.push(rest[2..2 + n].to_vec());
        rest = &rest[2 + n..];
    }
    out
}

/// Every Produce in the seeds (plain, idempotent, compressed with each codec,
/// recompressed for the topic) is appended, not refused: checks the encoders in
/// `build` against the cluster's validation.
#[test]
fn produce_seeds_append() {
    use bytes::Bytes;
    use kafka_protocol::messages::{ProduceResponse, ResponseHeader};
    use kafka_protocol::protocol::Decodable;
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let env = herald_fuzz::mock::env();
    let mut produced = 0;
    for (name, data) in herald_fuzz::seeds::mock_request() {
        env.reset();
        for cmd in commands(&data) {
            // Raw mode, API key 0.
            if cmd[0] >= 3 || cmd[1..3] != [0, 0] {
                continue;
            }
            let version = i16::from_be_bytes([cmd[3], cmd[4]]);
            let resp = env.handle(i32::from(cmd[0]) + 1, cmd[1..].to_vec()).unwrap().unwrap();
            let mut b = Bytes::from(resp).slice(4..);
            ResponseHeader::decode(&mut b, if version >= 9 { 1 } else { 0 }).unwrap();
            let r = ProduceResponse::decode(&mut b, version).unwrap();
            let p = &r.responses[0].partition_responses[0];
            assert_eq!(p.error_code, 0, "{name}: {p:?}");
            produced += 1;
        }
    }
    assert!(produced >= 10, "{produced}");
    env.reset();
}

/// The structured produce seed builds a valid idempotent batch: appended once,
/// then answered as a duplicate with the same offset.
#[test]
fn structured_produce_seed_appends_then_deduplicates() {
    use bytes::Bytes;
    use kafka_protocol::messages::{ProduceResponse, ResponseHeader};
    use kafka_protocol::protocol::Decodable;
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let env = herald_fuzz::mock::env();
    let (_, data) =
        herald_fuzz::seeds::mock_request().into_iter().find(|(n, _)| *n == "structured_produce").unwrap();
    env.reset();
    let broker = i32::from(data[0] % 3) + 1;
    let (frame, repeat) = env.produce_mode(&mut herald_fuzz::input::Input::new(&data[1..]));
    assert_eq!(repeat, 2);
    for _ in 0..repeat {
        let resp = env.handle(broker, frame.clone()).unwrap().unwrap();
        let mut b = Bytes::from(resp).slice(4..);
        ResponseHeader::decode(&mut b, 1).unwrap();
        let r = ProduceResponse::decode(&mut b, 9).unwrap();
        let p = &r.responses[0].partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (0, 0), "{p:?}");
    }
    env.reset();
}

/// Inputs of the findings fixed in herald (see README): they now run quickly and
/// in little memory.
#[test]
fn fixed_findings_stay_fixed() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let known = Path::new(env!("CARGO_MANIFEST_DIR")).join("known");
    let start = std::time::Instant::now();
    herald_fuzz::mock::run_mock_request(
        &std::fs::read(known.join("mock_request-create-topics-2147483647-partitions")).unwrap(),
    );
    herald_fuzz::run_client_response(
        &std::fs::read(known.join("client_response-metadata-partition-tables")).unwrap(),
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(5), "{:?}", start.elapsed());
    herald_fuzz::mock::env().reset();
}
