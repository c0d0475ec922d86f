//! The core's part of a cold start (benchmark scenario 3): writes documents into a local-only
//! collection in transactions of 10,000 as the bench's seed does (each storage write completed
//! at once, the log not compacted), then loads what storage holds into a new engine and runs
//! the scenario's first query, printing the time of each. Run it under
//! `valgrind --tool=callgrind` to count the load's instructions.
//!
//! `cargo run --release -p ferrosync-core --example cold_start [-- DOCS]` (default 100,000).

mod support;

use ferrosync_core::engine::{Engine, Input};
use ferrosync_core::mutation::MutationRequest;
use ferrosync_core::query::Query;
use serde_json::json;
use std::time::Instant;
use support::{config, document, Driver};

fn main() {
    let docs: usize = std::env::args()
        .nth(1)
        .map_or(100_000, |a| a.parse().expect("a number"));
    // Storage never goes idle between the bench's writes: nothing compacts.
    let mut driver = Driver::new(config(None), false);
    for start in (0..docs).step_by(10_000) {
        let requests = (start..(start + 10_000).min(docs))
            .map(|i| MutationRequest::insert("todos", document(i)).expect("a valid document"))
            .collect();
        driver.handle(Input::commit(requests));
        driver.settle(|store, write| store.apply(write));
    }
    let Driver { engine, store, .. } = driver;
    drop(engine);
    println!(
        "{docs} documents: storage holds {} records, {} bytes",
        store.records(),
        store.bytes()
    );
    let query = Query::from_json(&json!({ "where": { "done": false }, "limit": 50 })).unwrap();
    let snapshot = store.snapshot();
    let start = Instant::now();
    let mut loaded = Engine::new(config(None)).expect("a valid config");
    loaded
        .handle(Input::Loaded(snapshot), 0)
        .expect("storage loads");
    let load = start.elapsed();
    let rows = loaded.collection("todos").unwrap().find(&query).len();
    let total = start.elapsed();
    assert_eq!(rows, 50);
    println!(
        "load {:.1} ms, first query {:.1} ms",
        load.as_secs_f64() * 1e3,
        (total - load).as_secs_f64() * 1e3
    );
}
