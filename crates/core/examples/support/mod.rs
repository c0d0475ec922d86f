//! What the examples share: the benchmark's engine configuration and documents, and an engine driven over a memory store
//! as the browser's leader drives it.

use ferrosync_core::engine::{
    CollectionConfig, Effect, Engine, EngineConfig, HistoryRetention, Input, MemoryStore,
    StorageWrite,
};
use serde_json::{json, Value};

/// The benchmark's engine: one local-only collection, `todos`, its writes batched; the history
/// keeps `keep` finished transactions (`None`: all, the default).
pub fn config(keep: Option<usize>) -> EngineConfig {
    EngineConfig {
        history: HistoryRetention {
            keep,
            max_age_ms: None,
        },
        collections: vec![CollectionConfig {
            name: "todos".into(),
            sync: false,
            ..CollectionConfig::default()
        }],
        batch_writes: true,
        ..EngineConfig::default()
    }
}

/// The benchmark's document `i` (bench/peers/docs.mjs), with its `_id`.
pub fn document(i: usize) -> Value {
    json!({ "_id": format!("d{i}"), "title": format!("document {i}"), "done": i % 2 == 1 })
}

/// An engine and its storage, driven as the browser's leader drives it: each storage write
/// completed at once, batched writes ticked out, and compaction run whenever it is due, unless
/// the driver is made without it (as a page that closes before storage goes idle).
pub struct Driver {
    pub engine: Engine,
    pub store: MemoryStore,
    compacts: bool,
    writes: Vec<StorageWrite>,
    unflushed: bool,
    compact: bool,
}

impl Driver {
    /// An engine of `config` over an empty store, loaded; `compacts`: whether it compacts.
    pub fn new(config: EngineConfig, compacts: bool) -> Self {
        let mut driver = Driver {
            engine: Engine::new(config).expect("a valid config"),
            store: MemoryStore::default(),
            compacts,
            writes: Vec::new(),
            unflushed: false,
            compact: false,
        };
        driver.handle(Input::Loaded(driver.store.snapshot()));
        driver
    }

    /// Steps the engine, keeping the storage writes it asks for.
    pub fn handle(&mut self, input: Input) {
        let step = self.engine.handle(input, 0).expect("the engine steps");
        self.unflushed |= step.unflushed;
        self.compact = step.compact && self.compacts;
        for effect in step.effects {
            if let Effect::Persist(write) = effect {
                self.writes.push(write);
            }
        }
        self.engine.take_live_changes();
    }

    /// Completes every storage write, each put in the store by `apply`, ticking batched ones
    /// out, then compacts while due.
    pub fn settle(&mut self, apply: impl Fn(&mut MemoryStore, &StorageWrite)) {
        loop {
            while let Some(write) = self.writes.pop() {
                apply(&mut self.store, &write);
                self.handle(Input::Persisted { token: write.token });
            }
            if std::mem::take(&mut self.unflushed) {
                self.handle(Input::Tick);
            } else if std::mem::take(&mut self.compact) {
                self.handle(Input::Compact);
            } else {
                return;
            }
        }
    }
}
