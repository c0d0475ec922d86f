//! Where an engine's memory goes: writes documents into a local-only collection the way the
//! browser's leader does (batched storage writes, each completed at once, compaction when due),
//! with an allocator that counts the bytes held and their peak, and prints them per document
//! beside the documents' JSON size; then loads what storage holds into a new engine, each
//! stored value copied into counted memory only when the load takes it, as the browser copies
//! it out of the JS heap.
//!
//! `cargo run --release -p ferrosync-core --example memory [-- DOCS [BATCH]]` (BATCH 1: single
//! inserts; default 100,000 documents in transactions of 1,000).

mod support;

use ferrosync_core::doc_set::DocSet;
use ferrosync_core::document::{parse_document, Document};
use ferrosync_core::engine::{Engine, Input, MemoryStore, Snapshot, StoredValues};
use ferrosync_core::hlc::Hlc;
use ferrosync_core::mutation::MutationRequest;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use support::{config, document, Driver};

/// The system allocator, counting the bytes it holds and the most it held, except while
/// `UNCOUNTED` (storage's own work: in the browser it happens outside wasm memory).
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static UNCOUNTED: AtomicBool = AtomicBool::new(false);

fn grow(bytes: usize) {
    if !UNCOUNTED.load(Relaxed) {
        let held = HELD.fetch_add(bytes, Relaxed) + bytes;
        PEAK.fetch_max(held, Relaxed);
    }
}

fn shrink(bytes: usize) {
    if !UNCOUNTED.load(Relaxed) {
        HELD.fetch_sub(bytes, Relaxed);
    }
}

/// Runs `f` without counting its allocations (nor their release: whatever it frees must have
/// been allocated uncounted too).
fn uncounted<T>(f: impl FnOnce() -> T) -> T {
    UNCOUNTED.store(true, Relaxed);
    let out = f();
    UNCOUNTED.store(false, Relaxed);
    out
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrink(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        shrink(layout.size());
        grow(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The bytes held now, and the peak since the last call (which restarts it from now).
fn sample() -> (usize, usize) {
    let held = HELD.load(Relaxed);
    (held, PEAK.swap(held, Relaxed))
}

/// Stored values held outside the count (as IndexedDB's are outside wasm memory), each copied
/// into counted memory when the load takes it.
struct Outside(StoredValues);

impl Iterator for Outside {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        let value = uncounted(|| self.0.next())?;
        let copy = value.clone();
        uncounted(|| drop(value));
        Some(copy)
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        uncounted(|| drop(std::mem::take(&mut self.0)));
    }
}

/// What `store` holds, as the browser's load takes it.
fn snapshot(store: &MemoryStore) -> Snapshot {
    let Snapshot {
        records,
        pages,
        history,
        origins,
    } = uncounted(|| store.snapshot());
    assert!(origins.is_empty(), "one tab: no other tab's requests");
    let outside = |values: StoredValues| {
        let bytes = values.bytes();
        StoredValues::new(Outside(values), bytes)
    };
    Snapshot {
        records: outside(records),
        pages: outside(pages),
        history: outside(history),
        origins,
    }
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a number"));
    let docs: usize = args.next().unwrap_or(100_000);
    let batch: usize = args.next().unwrap_or(1_000);
    // The documents alone, as a collection holds them.
    let (base, _) = sample();
    let mut alone = DocSet::default();
    for i in 0..docs {
        let (id, fields) = parse_document(document(i)).expect("a valid document");
        alone.insert(Document::new(&id, fields, 0, Hlc::default(), false));
    }
    let documents = sample().0 - base;
    drop(alone);
    for keep in [Some(0), None] {
        write(docs, batch, keep, documents);
    }
}

/// Writes `docs` documents in transactions of `batch` into an engine whose history keeps
/// `keep`, and prints its memory; then loads what storage holds into a new engine.
fn write(docs: usize, batch: usize, keep: Option<usize>, documents: usize) {
    let per_doc = |bytes: usize| bytes as f64 / docs as f64;
    let report = |what: &str, json: usize, (held, peak): (usize, usize)| {
        println!(
            "{what}: held {:.0} B/doc ({:.2}x JSON), peak {:.0} B/doc ({:.2}x JSON)",
            per_doc(held),
            held as f64 / json as f64,
            per_doc(peak),
            peak as f64 / json as f64
        );
    };

    let mut json_bytes = 0;
    let mut driver = Driver::new(config(keep), true);
    let (base, _) = sample();
    let mut peak = 0;
    for start in (0..docs).step_by(batch) {
        let requests: Vec<MutationRequest> = (start..(start + batch).min(docs))
            .map(|i| {
                let doc = document(i);
                json_bytes += doc.to_string().len();
                MutationRequest::insert("todos", doc).expect("a valid document")
            })
            .collect();
        driver.handle(Input::commit(requests));
        driver.settle(|store, write| uncounted(|| store.apply(write)));
        peak = peak.max(sample().1);
    }
    println!(
        "{docs} documents in transactions of {batch}, history keeping {keep:?}: {json_bytes} \
         bytes of JSON; in a bare set of documents {:.0} B/doc",
        per_doc(documents)
    );
    report("written", json_bytes, (sample().0 - base, peak - base));
    let stored = driver.store.bytes();
    let Driver { engine, store, .. } = driver;
    drop(engine);
    let (base, _) = sample();
    let snapshot = snapshot(&store);
    let mut loaded = Engine::new(config(keep)).expect("a valid config");
    loaded
        .handle(Input::Loaded(snapshot), 0)
        .expect("storage loads");
    let (now, top) = sample();
    uncounted(|| drop(store));
    println!("storage holds {:.0} B/doc", per_doc(stored));
    report("loaded", json_bytes, (now - base, top - base));
}
