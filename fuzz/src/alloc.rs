//! A global allocator for the targets that decode with `kafka-protocol`, to fuzz past
//! its known flaw: kafka-protocol 0.18 sizes `Vec::with_capacity(n)` by the array
//! counts it reads off the wire (upstream kafka-protocol-rs PRs #152, #161, #200,
//! not merged), so a 30-byte frame asks for gigabytes. Under ASan such a request
//! either trips libFuzzer's malloc limit (out-of-memory) or, above what the kernel
//! will overcommit, makes ASan abort (a "crash"): either way every run stops within
//! seconds on that one known issue, and the rest of the code is barely explored.
//!
//! With this allocator, every allocation of 1 GiB or more is an anonymous
//! `MAP_NORESERVE` mapping: reserved, not committed. A `with_capacity` that is never
//! filled costs no memory, and decoding goes on to fail as it should. Memory that
//! is actually used still counts: a real blow-up (code that *fills* what it asks
//! for) still exceeds `-rss_limit_mb` and is reported as out-of-memory. Smaller
//! allocations go to the system allocator (ASan's, in fuzz builds) unchanged.
//!
//! `HERALD_FUZZ_STRICT_ALLOC=1` in the environment turns this off (every allocation
//! goes to the system allocator), to reproduce the known out-of-memory reports.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

/// Allocations of at least this size are lazy mappings.
pub const HUGE: usize = 1 << 30;

static STRICT: AtomicBool = AtomicBool::new(false);

/// Reads `HERALD_FUZZ_STRICT_ALLOC`; call once, first thing in the process (the
/// targets' `init`), before any allocation of [`HUGE`] size.
pub fn init_from_env() {
    if std::env::var_os("HERALD_FUZZ_STRICT_ALLOC").is_some_and(|v| v == "1") {
        STRICT.store(true, Ordering::Relaxed);
    }
}

/// See the module docs.
pub struct LazyHugeAlloc;

fn lazy(layout: &Layout) -> bool {
    layout.size() >= HUGE && layout.align() <= 4096 && !STRICT.load(Ordering::Relaxed)
}

unsafe fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping; no file, no fixed address.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED { std::ptr::null_mut() } else { p.cast() }
}

unsafe impl GlobalAlloc for LazyHugeAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if lazy(&layout) { unsafe { map(layout.size()) } } else { unsafe { System.alloc(layout) } }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Fresh anonymous mappings are zeroed.
        if lazy(&layout) { unsafe { map(layout.size()) } } else { unsafe { System.alloc_zeroed(layout) } }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if lazy(&layout) {
            // SAFETY: `ptr` came from `map` with this size.
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees a valid layout for new_size.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !lazy(&layout) && !lazy(&new_layout) {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}
