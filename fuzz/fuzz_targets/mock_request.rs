//! Request frames into the embedded cluster (`MockCluster::handle_raw`): header
//! decoding, dispatch, every API handler, the cluster state and its validation.
//! Input layout: see `herald_fuzz::mock`.
#![no_main]

use libfuzzer_sys::fuzz_target;

// kafka-protocol's pre-allocation from wire counts: see herald_fuzz::alloc.
#[global_allocator]
static ALLOC: herald_fuzz::alloc::LazyHugeAlloc = herald_fuzz::alloc::LazyHugeAlloc;

fuzz_target!(init: herald_fuzz::alloc::init_from_env(), |data: &[u8]| {
    herald_fuzz::mock::run_mock_request(data);
});
