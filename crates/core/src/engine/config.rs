//! How an engine is configured: its collections, sync direction, strategies, retries and
//! history, checked before it starts.

use super::backend::Backend;
use super::history::HistoryRetention;
use super::store::StorageTuning;
use crate::collection::Collection;
use crate::conflict::ConflictStrategy;
use crate::retry::RetryPolicy;
use crate::scheduler::MutationStrategy;
use crate::{CoreError, Millis};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which way data flows (`direction`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Send local writes only.
    Push,
    /// Receive remote changes only.
    Pull,
    /// Both.
    #[default]
    Both,
}

impl Direction {
    /// Whether local writes are sent.
    pub fn pushes(self) -> bool {
        self != Direction::Pull
    }
    /// Whether remote changes are received.
    pub fn pulls(self) -> bool {
        self != Direction::Push
    }
}

/// A collection in the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectionConfig {
    /// Its name.
    pub name: String,
    /// Synced with the server (`false`: local only).
    pub sync: bool,
    /// Declared indexes: each the fields it orders by, most significant first.
    pub indexes: Vec<Vec<String>>,
}

impl CollectionConfig {
    /// An empty collection as configured (with its declared indexes).
    pub fn collection(&self) -> Collection {
        let mut collection = Collection::new(self.name.clone());
        for fields in &self.indexes {
            collection.declare_index(fields.clone());
        }
        collection
    }

    fn validate(&self) -> Result<(), CoreError> {
        let bad = |msg: String| Err(CoreError::InvalidConfig(msg));
        if self.name.is_empty() {
            return bad("a collection name must not be empty".into());
        }
        for fields in &self.indexes {
            if fields.is_empty() {
                return bad(format!(
                    "collection `{}`: an index needs at least one field",
                    self.name
                ));
            }
            if let Some(field) = fields.iter().find(|f| f.split('.').any(str::is_empty)) {
                return bad(format!(
                    "collection `{}`: index field `{field}` must be a name or names separated \
                     by dots",
                    self.name
                ));
            }
        }
        Ok(())
    }
}

/// The engine's configuration.
#[derive(Clone)]
pub struct EngineConfig {
    /// The collections.
    pub collections: Vec<CollectionConfig>,
    /// Push, pull or both.
    pub direction: Direction,
    /// How conflicts are resolved.
    pub conflict_strategy: ConflictStrategy,
    /// Ordered or parallel transactions.
    pub mutation_strategy: MutationStrategy,
    /// How failed attempts are retried.
    pub retry: RetryPolicy,
    /// At most this many mutations per push.
    pub batch_size: usize,
    /// Changes asked for per pull page (the server may send fewer).
    pub pull_page: usize,
    /// How often polling clients pull.
    pub pull_interval_ms: Millis,
    /// A request unanswered for this long is sent again.
    pub ack_timeout_ms: Millis,
    /// Seeds jitter and the client id: give each database a random seed.
    pub seed: u64,
    /// The reference server's protocol, or the application's own functions.
    pub backend: Backend,
    /// Group storage writes across steps: a `Commit`, `Persisted`, `push_result` or live
    /// `changes` step does not start a storage write itself but reports [`Step::unflushed`],
    /// and the driver feeds [`Input::Tick`] when it chooses (after the current burst of
    /// commits, say), so a burst of transactions, and the compaction of those finished before
    /// it, go in one write; the ends of the transactions a push settled (which nothing waits on
    /// being durable: a reload before their write sends them again, and the server answers
    /// with their outcome) join the commits their settlement lets callers make; and changes
    /// received live (a reload before their write pulls them again) go in one write per burst.
    pub batch_writes: bool,
    /// When storage compacts its log, and how large its pages grow.
    pub storage: StorageTuning,
    /// How many finished transactions the history keeps.
    pub history: HistoryRetention,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            collections: Vec::new(),
            direction: Direction::Both,
            conflict_strategy: ConflictStrategy::LastWriteWins,
            mutation_strategy: MutationStrategy::Ordered,
            retry: RetryPolicy::default(),
            batch_size: 100,
            pull_page: 1000,
            pull_interval_ms: 30_000,
            ack_timeout_ms: 10_000,
            seed: 0,
            backend: Backend::Server,
            batch_writes: false,
            storage: StorageTuning::default(),
            history: HistoryRetention::default(),
        }
    }
}

impl fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineConfig")
            .field("collections", &self.collections)
            .field("direction", &self.direction)
            .field("conflict_strategy", &self.conflict_strategy)
            .field("mutation_strategy", &self.mutation_strategy)
            .field("retry", &self.retry)
            .field("batch_size", &self.batch_size)
            .field("backend", &self.backend)
            .field("batch_writes", &self.batch_writes)
            .field("storage", &self.storage)
            .field("history", &self.history)
            .finish_non_exhaustive()
    }
}

impl EngineConfig {
    /// Checks the configuration, naming the first bad value.
    pub fn validate(&self) -> Result<(), CoreError> {
        let bad = |msg: String| Err(CoreError::InvalidConfig(msg));
        if self.collections.is_empty() {
            return bad("at least one collection is needed".into());
        }
        let mut seen = Vec::new();
        for c in &self.collections {
            c.validate()?;
            if !crate::sort::insert_sorted(&mut seen, &c.name) {
                return bad(format!("collection `{}` is listed twice", c.name));
            }
        }
        if self.batch_size == 0 || self.batch_size > 10_000 {
            return bad(format!(
                "batchSize must be 1..=10000, got {}",
                self.batch_size
            ));
        }
        if self.pull_page == 0 {
            return bad("the pull page size must be positive".into());
        }
        if self.pull_interval_ms == 0 {
            return bad("pullInterval must be positive".into());
        }
        if self.ack_timeout_ms == 0 {
            return bad("the acknowledgement timeout must be positive".into());
        }
        self.retry.validate()
    }
}
