//! herald's strict RecordBatch v2 reader: header, CRC, records.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    herald_fuzz::run_record_batch(data);
});
