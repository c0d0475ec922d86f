//! The `alloc-stats` build (a cargo feature, off in the package users install): an allocator
//! that counts the bytes the engine holds in wasm memory and the most it held, so the memory
//! benchmark can tell what the engine keeps from its peak and from what wasm's allocator adds
//! (the wasm memory's size, which never shrinks, counts all three). Build a package with it
//! through `FERROSYNC_CARGO_FEATURES=alloc-stats` (scripts/package.sh).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use wasm_bindgen::prelude::*;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Wasm's allocator (`System`), counting the bytes asked of it.
struct Counting;

// SAFETY: every call goes to `System` unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let held = HELD.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(held, Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// `[held, peak]`: the bytes allocated now, and the most allocated since the last call with
/// `restart` (which starts a new peak from what is held now).
#[wasm_bindgen(js_name = allocStats, skip_typescript)]
pub fn alloc_stats(restart: bool) -> Vec<f64> {
    let held = HELD.load(Relaxed);
    let stats = vec![held as f64, PEAK.load(Relaxed) as f64];
    if restart {
        PEAK.store(held, Relaxed);
    }
    stats
}
