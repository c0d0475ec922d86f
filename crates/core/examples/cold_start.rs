//! The core's part of a cold start (benchmark scenario 3): writes documents into a local-only
//! collection in transactions of 10,000 as the bench's seed does (each storage write completed
//! at once, the log not compacted), then loads what storage holds into a new engine and runs
//! the scenario's first query, printing the time of each. Run it under
//! `valgrind --tool=callgrind` to count the load's instructions.
//!
//! `cargo run --release -p ferrosync-core --example cold_start [-- DOCS]` (default 100,000).

use ferrosync_core::engine::{
    CollectionConfig, Effect, Engine, EngineConfig, Input, MemoryStore, StorageWrite,
};
use ferrosync_core::mutation::MutationRequest;
use ferrosync_core::query::Query;
use serde_json::json;
use std::time::Instant;

/// The scenario's engine: one local-only collection, `todos`.
fn config() -> EngineConfig {
    EngineConfig {
        collections: vec![CollectionConfig {
            name: "todos".into(),
            sync: false,
            ..CollectionConfig::default()
        }],
        batch_writes: true,
        ..EngineConfig::default()
    }
}

/// Steps `engine` and completes every storage write it asks for, ticking batched ones out.
fn step(engine: &mut Engine, store: &mut MemoryStore, input: Input) {
    let mut inputs = vec![input];
    while let Some(input) = inputs.pop() {
        let step = engine.handle(input, 0).expect("the engine steps");
        let writes: Vec<StorageWrite> = step
            .effects
            .into_iter()
            .filter_map(|effect| match effect {
                Effect::Persist(write) => Some(write),
                _ => None,
            })
            .collect();
        if step.unflushed {
            inputs.push(Input::Tick);
        }
        for write in writes {
            store.apply(&write);
            inputs.push(Input::Persisted { token: write.token });
        }
        engine.take_live_changes();
    }
}

fn main() {
    let docs: usize = std::env::args()
        .nth(1)
        .map_or(100_000, |a| a.parse().expect("a number"));
    let mut engine = Engine::new(config()).expect("a valid config");
    let mut store = MemoryStore::default();
    let empty = store.snapshot();
    step(&mut engine, &mut store, Input::Loaded(empty));
    for start in (0..docs).step_by(10_000) {
        let requests = (start..(start + 10_000).min(docs))
            .map(|i| {
                let doc = json!({ "_id": format!("d{i}"), "title": format!("document {i}"), "done": i % 2 == 1 });
                MutationRequest::insert("todos", doc).expect("a valid document")
            })
            .collect();
        step(&mut engine, &mut store, Input::commit(requests));
    }
    drop(engine);
    println!(
        "{docs} documents: storage holds {} records, {} bytes",
        store.records(),
        store.bytes()
    );
    let query = Query::from_json(&json!({ "where": { "done": false }, "limit": 50 })).unwrap();
    let snapshot = store.snapshot();
    let start = Instant::now();
    let mut loaded = Engine::new(config()).expect("a valid config");
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
