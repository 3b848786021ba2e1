//! The producer's decoding of broker answers: response headers, Metadata responses
//! (and herald's metadata snapshot), Produce responses.
//! Input layout: see `herald_fuzz::run_client_response`.
#![no_main]

use libfuzzer_sys::fuzz_target;

// kafka-protocol's pre-allocation from wire counts: see herald_fuzz::alloc.
#[global_allocator]
static ALLOC: herald_fuzz::alloc::LazyHugeAlloc = herald_fuzz::alloc::LazyHugeAlloc;

fuzz_target!(init: herald_fuzz::alloc::init_from_env(), |data: &[u8]| {
    herald_fuzz::run_client_response(data);
});
