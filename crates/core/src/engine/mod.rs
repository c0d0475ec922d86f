//! The client engine as a state machine: `handle(input, now) -> effects`.
//!
//! The driver (the wasm crate, or a test) feeds inputs: storage loaded or persisted, local
//! writes, connection changes, server messages, timer ticks. The engine answers with effects to
//! execute: persist a batch to storage, send a message, notify subscribers, wake up at a time.
//! Writes are sent only after they are durable, so a reload never reuses a mutation id.

mod backend;
mod dialer;
mod history;
mod inbound;
mod local;
mod origins;
mod outbox;
mod queue;
mod requests;
mod status;
mod store;

pub use backend::{remote_documents, Backend, Call, CallOutcome, CallStep};
pub use history::HistoryRetention;
pub use origins::{Origin, ORIGIN_KEPT_MS};
pub use requests::{Answer, RequestError, Ticket};
pub use status::{
    PullProgress, SyncLogEntry, SyncLogQuery, SyncLogStatus, SyncProgress, SyncStats, SyncStatus,
    SyncType,
};
pub use store::{
    doc_size, hash, index_for, Checkpoint, HistoryPage, MemoryStore, Page, Pieces, Record,
    RecordMeta, Snapshot, StorageTuning, StorageWrite, StoreOp, StoredTx, StoredValues, Unwritten,
};

use crate::collection::{Collection, DocChange};
use crate::conflict::ConflictStrategy;
use crate::document::{Document, Fields};
use crate::hlc::{Hlc, HybridClock};
use crate::id_map::IdMap;
use crate::live_query::{take_live_changes, LiveChanges, LiveId};
use crate::mutation::MutationRequest;
use crate::protocol::{ClientMessage, ServerMessage};
use crate::query::Query;
use crate::retry::RetryPolicy;
use crate::rng::Rng;
use crate::scheduler::MutationStrategy;
use crate::transaction::{locked_objects, LockedObject, Transaction, TxId};
use crate::{ClientId, CoreError, DocId, Millis, MutationId, Version};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
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

/// Something that happened, for the engine to react to.
#[derive(Debug)]
pub enum Input {
    /// Storage finished loading: must come first, once.
    Loaded(Snapshot),
    /// A local transaction (one or more writes, all or nothing).
    Commit {
        /// Its writes, in order.
        requests: Vec<MutationRequest>,
        /// The application's data about it.
        metadata: Option<Value>,
        /// The request of another tab it is made for (its [`Origin`] names it), if any: a
        /// request already committed is not committed again (the step names its transaction).
        origin: Option<String>,
    },
    /// Remove a document's local copy for good; the step's ticket is answered once storage
    /// holds the removal.
    HardDelete {
        /// The collection.
        collection: String,
        /// The document.
        id: DocId,
    },
    /// The application resolved a parked conflict with these fields.
    ResolveConflict {
        /// The conflict.
        id: ConflictId,
        /// The document's fields to send.
        fields: Fields,
    },
    /// A `Persist` effect's write is durable.
    Persisted {
        /// The write's token.
        token: u64,
    },
    /// Storage was reopened after its connection closed, and may have lost what it held (the
    /// browser's data was cleared): everything is written again.
    StorageReset,
    /// A `Persist` effect's write failed.
    PersistFailed {
        /// The write's token.
        token: u64,
        /// What storage said.
        message: String,
        /// Storage is full (the browser's quota).
        quota: bool,
    },
    /// A connection to the server is open (`live`: WebSocket; otherwise HTTP polling).
    Connected {
        /// Whether the server pushes live changes.
        live: bool,
    },
    /// The connection is gone, or could not be opened (the server is unreachable, a custom
    /// backend's `setup` failed): another is asked for after a backoff while sync runs.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// A message from the server.
    Server(ServerMessage),
    /// Push and/or pull now (`forceSync`, `push`, `pull`); the step's ticket is answered once
    /// sync is idle, or has failed.
    SyncNow {
        /// Send pending writes.
        push: bool,
        /// Fetch remote changes.
        pull: bool,
    },
    /// `flush`: the step's ticket is answered once everything the engine holds is durable.
    Flush,
    /// Start syncing: the engine asks for a connection (`Connect`) and, after each loss, for
    /// another after a backoff.
    Start,
    /// Stop syncing: the connection is dropped (`Disconnect`); local reads and writes go on.
    Stop,
    /// The browser went online or offline: no connection is asked for while offline.
    Network {
        /// Whether it is online.
        online: bool,
    },
    /// Time passed (a `WakeAt` came due).
    Tick,
    /// Storage is idle and the page has time to spare: fold some of the log into pages if that
    /// is due (see [`Step::compact`]).
    Compact,
    /// A custom backend is ready (its `setup` resolved): transactions may be persisted.
    BackendReady,
    /// Documents a custom backend delivered (`setup`'s data, `onUpdate`); a document with
    /// `deleted` set is a tombstone. `complete`: they are the whole state of `collections`, so
    /// synced documents missing from them are gone.
    Remote {
        /// The documents, by collection.
        docs: Vec<(String, Document)>,
        /// The collections `docs` holds completely, if it is a full snapshot.
        complete: Option<Vec<String>>,
    },
    /// A custom backend answered a `Call`.
    Called {
        /// The call answered.
        call: Call,
        /// Its outcome.
        outcome: CallOutcome,
    },
}

impl Input {
    /// A commit of `requests` without metadata.
    pub fn commit(requests: Vec<MutationRequest>) -> Input {
        Input::Commit {
            requests,
            metadata: None,
            origin: None,
        }
    }
}

/// Something for the driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Write this batch in one storage transaction, then report `Persisted` or `PersistFailed`.
    Persist(StorageWrite),
    /// Send this message to the server.
    Send(ClientMessage),
    /// The visible view changed.
    Changes(Vec<DocChange>),
    /// These transactions changed (their new state and history).
    Transactions(Vec<Transaction>),
    /// These transactions are now durable in storage (their `insert`/`update` may resolve).
    Durable(Vec<TxId>),
    /// The sync status changed.
    Status(SyncStatus),
    /// The sync stats changed.
    Stats(SyncStats),
    /// The sync progress changed.
    Progress(SyncProgress),
    /// Feed a `Tick` at this time.
    WakeAt(Millis),
    /// Call the custom backend's function for a transaction; answer with `Called`.
    Call(Call),
    /// Open a connection to server number `server` of the list (counted round it), or run the
    /// custom backend's `setup`; answer with `Connected`/`BackendReady` or `Disconnected`.
    Connect {
        /// Which server.
        server: usize,
    },
    /// Drop the connection (open or opening) without reporting `Disconnected`.
    Disconnect,
    /// These requests are answered (see [`Step::ticket`]).
    Answered(Vec<(Ticket, Answer)>),
}

/// What one `handle` call produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Step {
    /// The effects, in order.
    pub effects: Vec<Effect>,
    /// The new transaction's id, for `Commit`.
    pub transaction: Option<TxId>,
    /// The request's ticket, for `SyncNow`, `HardDelete` and `Flush`: an
    /// [`Effect::Answered`] of this step or a later one answers it.
    pub ticket: Option<Ticket>,
    /// Changes wait for a storage write this step did not start (only with
    /// [`EngineConfig::batch_writes`]): feed [`Input::Tick`] soon to write them.
    pub unflushed: bool,
    /// Storage is idle and its log due for compaction: feed [`Input::Compact`] when there is
    /// time to spare (an idle callback), so it never delays a write.
    pub compact: bool,
}

/// Names a parked conflict: a transaction and the index of its mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConflictId {
    /// The transaction.
    pub tx: TxId,
    /// The mutation's index in it.
    pub index: usize,
}

impl fmt::Display for ConflictId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tx, self.index)
    }
}

impl std::str::FromStr for ConflictId {
    type Err = CoreError;

    /// Parses the `Display` form, `tx-<id>/<index>`.
    fn from_str(s: &str) -> Result<Self, CoreError> {
        let parsed = s
            .strip_prefix("tx-")
            .and_then(|rest| rest.split_once('/'))
            .and_then(|(tx, index)| Some((tx.parse().ok()?, index.parse().ok()?)));
        match parsed {
            Some((tx, index)) => Ok(ConflictId {
                tx: TxId(tx),
                index,
            }),
            None => Err(CoreError::UnknownConflict(s.into())),
        }
    }
}

/// A conflict waiting for `resolveConflict`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictEntry {
    /// Its id.
    pub id: ConflictId,
    /// The collection.
    pub collection: String,
    /// The document.
    pub doc_id: DocId,
    /// The document as this client wanted it.
    pub local: Option<Document>,
    /// The server's document.
    pub remote: Document,
    /// The synced document the local write started from.
    pub base: Option<Document>,
}

/// A transaction plus what the engine tracks about it.
#[derive(Debug, Clone)]
struct TxEntry {
    tx: Transaction,
    /// Bumped whenever the stored record must change.
    revision: u64,
    /// The newest revision written (in a write issued, durable or not).
    written_revision: u64,
    /// The newest revision known durable (0: not yet).
    durable_revision: u64,
    /// Its writes are all to local-only collections.
    local_only: bool,
    /// Sent, in the push with this `seq`, and not answered yet.
    in_flight: Option<u64>,
    /// Not to be sent before this time.
    retry_at: Option<Millis>,
    /// Retries are exhausted: send it with `abandon` so the server settles it.
    abandon: bool,
}

impl TxEntry {
    fn is_durable(&self) -> bool {
        self.durable_revision == self.revision
    }
    fn has_ids(&self) -> bool {
        self.tx.mutations.iter().any(|m| m.wire_id.is_some())
    }
    fn is_parked(&self) -> bool {
        self.tx.mutations.iter().any(|m| m.parked.is_some())
    }
    fn first_wire_id(&self) -> Option<MutationId> {
        self.tx.mutations.iter().find_map(|m| m.wire_id)
    }
}

/// The connection as the engine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Down,
    /// Connected; `hello_at` is when the unanswered `hello` was sent (none once welcomed).
    Up {
        live: bool,
        welcomed: bool,
        hello_at: Millis,
    },
}

/// A push on the wire.
#[derive(Debug, Clone)]
struct Flight {
    txs: Vec<TxId>,
    sent_at: Millis,
    log: u64,
}

/// The pull loop.
#[derive(Debug, Clone, Default)]
struct PullState {
    /// The cursor when the pull run under way began (its progress counts from there).
    start: Option<Version>,
    /// The pull on the wire: its seq and when it was sent.
    in_flight: Option<(u64, Millis)>,
    /// Pull again as soon as possible.
    requested: bool,
    /// The sync-log entry of the pull run under way.
    log: Option<u64>,
    /// Polling: the next scheduled pull.
    next_at: Option<Millis>,
}

/// How many sync-log entries are kept.
const SYNC_LOG_KEPT: usize = 200;
/// Why a request unanswered within `ack_timeout_ms` is given up on.
const NO_ANSWER: &str = "no answer from the server in time";
/// Why an attempt or run under way when the page closed ended (its answer was lost, as
/// `network` says).
const INTERRUPTED: &str = "interrupted by a reload";

/// The client engine.
pub struct Engine {
    config: EngineConfig,
    loaded: bool,
    client_id: ClientId,
    clock: HybridClock,
    rng: Rng,
    collections: HashMap<String, Collection>,
    /// The names of synced collections, sorted.
    synced: Vec<String>,
    /// Unfinished transactions (and, until their step ends, those that just finished).
    txs: IdMap<TxId, TxEntry>,
    /// Transactions that finished in the step under way, for the history.
    finished: Vec<TxId>,
    /// Finished transactions the retention keeps.
    history: IdMap<TxId, history::Archived>,
    /// History entries decoded for a read since the last input: they hold only their bytes
    /// again at the next one ([`Engine::forget_decoded`]).
    decoded: RefCell<Vec<TxId>>,
    /// Synced documents thin history entries may refer to, replaced in the step under way.
    retired: history::Retired,
    /// The lowest transaction id the history may still hold (older ones were dropped).
    history_floor: u64,
    /// Unfinished transactions that write synced collections.
    unsynced: usize,
    wire_index: HashMap<MutationId, TxId>,
    next_tx: u64,
    next_mutation_id: MutationId,
    cursor: Version,
    /// The newest version the server is known to hold.
    head: Version,
    link: Link,
    flights: IdMap<u64, Flight>,
    pull: PullState,
    next_seq: u64,
    store: store::StoreState,
    queues: queue::Queues,
    custom: backend::CustomState,
    dialer: dialer::Dialer,
    requests: requests::Requests,
    origins: origins::Origins,
    status: status::StatusState,
    now: Millis,
    out: Outgoing,
}

/// What a step has produced so far.
#[derive(Debug, Default)]
struct Outgoing {
    effects: Vec<Effect>,
    changes: Vec<DocChange>,
    txs: BTreeSet<TxId>,
    durable: Vec<TxId>,
    wake: Option<Millis>,
}

impl Engine {
    /// A new engine; it accepts `Loaded` first.
    pub fn new(config: EngineConfig) -> Result<Self, CoreError> {
        config.validate()?;
        let tuning = config.storage;
        let collections = config
            .collections
            .iter()
            .map(|c| (c.name.clone(), c.collection()))
            .collect();
        let mut synced = Vec::new();
        for c in config.collections.iter().filter(|c| c.sync) {
            crate::sort::insert_sorted(&mut synced, c.name.clone());
        }
        Ok(Self {
            synced,
            rng: Rng::new(config.seed),
            config,
            loaded: false,
            client_id: ClientId::new(),
            clock: HybridClock::new(0, Hlc::default()),
            collections,
            txs: IdMap::new(),
            finished: Vec::new(),
            history: IdMap::new(),
            decoded: RefCell::new(Vec::new()),
            retired: history::Retired::default(),
            history_floor: 0,
            unsynced: 0,
            wire_index: HashMap::new(),
            next_tx: 1,
            next_mutation_id: 1,
            cursor: 0,
            head: 0,
            link: Link::Down,
            flights: IdMap::new(),
            pull: PullState::default(),
            next_seq: 1,
            store: store::StoreState::new(tuning),
            queues: queue::Queues::default(),
            custom: backend::CustomState::default(),
            dialer: dialer::Dialer::default(),
            requests: requests::Requests::default(),
            origins: origins::Origins::default(),
            status: status::StatusState::default(),
            now: 0,
            out: Outgoing::default(),
        })
    }

    /// Reacts to `input` at time `now` (milliseconds since the epoch).
    pub fn handle(&mut self, input: Input, now: Millis) -> Result<Step, CoreError> {
        self.forget_decoded();
        self.now = self.now.max(now);
        // A commit only adds a transaction that is not durable yet: nothing more can be sent
        // or completed, so the outbox is left alone (keeps a burst of writes linear).
        let outbox = !matches!(input, Input::Commit { .. });
        let hold = self.config.batch_writes
            && matches!(
                input,
                Input::Commit { .. }
                    | Input::Persisted { .. }
                    | Input::Server(
                        ServerMessage::Changes { .. } | ServerMessage::PushResult { .. }
                    )
            );
        let mut transaction = None;
        let mut ticket = None;
        match input {
            Input::Loaded(snapshot) => self.load(snapshot)?,
            _ if !self.loaded => return Err(CoreError::NotLoaded),
            Input::Commit {
                requests,
                metadata,
                origin,
            } => transaction = Some(self.commit_for(origin, requests, metadata)?),
            Input::HardDelete { collection, id } => {
                self.hard_delete(&collection, &id)?;
                ticket = Some(self.request_write());
            }
            Input::ResolveConflict { id, fields } => self.resolve_conflict(id, fields)?,
            Input::Persisted { token } => self.persisted(token),
            Input::PersistFailed {
                token,
                message,
                quota,
            } => self.persist_failed(token, message, quota),
            Input::StorageReset => self.storage_reset(),
            Input::Connected { live } => {
                self.dialed();
                self.connected(live);
            }
            Input::Disconnected { reason } => {
                self.disconnected(&reason);
                self.dial_failed();
            }
            Input::Server(message) => self.receive(message),
            Input::SyncNow { push, pull } => ticket = Some(self.request_sync(push, pull)),
            Input::Flush => ticket = Some(self.request_write()),
            Input::Start => self.start(),
            Input::Stop => self.stop(),
            Input::Network { online } => self.network(online),
            Input::Tick => {}
            Input::Compact => self.store.compact_now = true,
            Input::BackendReady => self.backend_ready(),
            Input::Remote { docs, complete } => self.remote(docs, complete),
            Input::Called { call, outcome } => self.called(call, outcome),
        }
        self.dial();
        self.pump(outbox);
        let effects = self.finish_step(hold);
        Ok(Step {
            effects,
            transaction,
            ticket,
            unflushed: hold && self.store.can_flush(self.now),
            compact: self.store.wants_compaction(),
        })
    }

    /// This client's id (known once loaded).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The pull cursor: every change up to this version has been received.
    pub fn cursor(&self) -> Version {
        self.cursor
    }

    /// The configured collections' names.
    pub fn collection_names(&self) -> impl Iterator<Item = &str> {
        self.config.collections.iter().map(|c| c.name.as_str())
    }

    /// Whether a configured collection syncs (`sync: true`).
    pub fn is_synced_collection(&self, name: &str) -> bool {
        self.is_synced(name)
    }

    /// A collection's in-memory state.
    pub fn collection(&self, name: &str) -> Result<&Collection, CoreError> {
        self.collections
            .get(name)
            .ok_or_else(|| CoreError::UnknownCollection(name.into()))
    }

    /// Starts following `query` on a collection, or joins the live query that follows it (see
    /// [`Collection::watch`]); its changes come from [`Engine::take_live_changes`].
    pub fn watch(&mut self, collection: &str, query: Query) -> Result<LiveId, CoreError> {
        self.collections
            .get_mut(collection)
            .map(|c| c.watch(query))
            .ok_or_else(|| CoreError::UnknownCollection(collection.into()))
    }

    /// Leaves a live query.
    pub fn unwatch(&mut self, collection: &str, id: LiveId) {
        if let Some(c) = self.collections.get_mut(collection) {
            c.unwatch(id);
        }
    }

    /// The changes to every live query's window since the last call.
    pub fn take_live_changes(&mut self) -> Vec<LiveChanges> {
        take_live_changes(self.collections.values_mut())
    }

    /// Whether transaction `id` is unfinished and its newest state is in storage.
    pub fn is_durable(&self, id: TxId) -> bool {
        self.txs.get(&id).is_some_and(TxEntry::is_durable)
    }

    /// Conflicts waiting for `resolveConflict`.
    pub fn conflicts(&self) -> Vec<ConflictEntry> {
        self.txs
            .values()
            .flat_map(|e| {
                e.tx.mutations.iter().enumerate().filter_map(|(index, m)| {
                    let parked = m.parked.as_ref()?;
                    Some(ConflictEntry {
                        id: ConflictId { tx: e.tx.id, index },
                        collection: m.collection.clone(),
                        doc_id: m.doc_id.clone(),
                        local: parked.local.clone(),
                        remote: parked.remote.clone(),
                        base: parked.base.clone(),
                    })
                })
            })
            .collect()
    }

    /// The objects in-flight transactions hold under the ordered strategy (none under the
    /// parallel strategy, which takes no locks).
    pub fn locked_objects(&self) -> Vec<LockedObject<'_>> {
        if !self.config.mutation_strategy.is_ordered() {
            return Vec::new();
        }
        locked_objects(self.unfinished())
    }

    /// Ends a step: starts a storage write (unless `hold`), reports what changed.
    fn finish_step(&mut self, hold: bool) -> Vec<Effect> {
        // Reported as they are now, before those that finished move to the history (where
        // the retention may drop them at once).
        let txs: Vec<Transaction> = self
            .out
            .txs
            .iter()
            .filter_map(|id| self.txs.get(id))
            .map(|e| e.tx.clone())
            .collect();
        self.materialize_history();
        self.archive_finished();
        if !hold {
            self.flush();
        }
        self.emit_status();
        self.emit_answers();
        let mut out = std::mem::take(&mut self.out);
        let mut effects = Vec::with_capacity(out.effects.len() + 4);
        if !out.changes.is_empty() {
            effects.push(Effect::Changes(out.changes));
        }
        if !txs.is_empty() {
            effects.push(Effect::Transactions(txs));
        }
        if !out.durable.is_empty() {
            effects.push(Effect::Durable(out.durable));
        }
        effects.append(&mut out.effects);
        if let Some(at) = self.next_wake() {
            if out.wake != Some(at) || at <= self.now {
                effects.push(Effect::WakeAt(at));
            }
            self.out.wake = Some(at);
        }
        effects
    }

    /// The earliest time something is due: a retry, a request timeout, a poll, a storage retry.
    fn next_wake(&self) -> Option<Millis> {
        let timeout = self.config.ack_timeout_ms;
        let retries = self
            .queues
            .backing_off
            .iter()
            .filter_map(|id| self.txs[id].retry_at);
        let pushes = self.flights.values().map(|f| f.sent_at + timeout);
        let pull = self.pull.in_flight.map(|(_, at)| at + timeout);
        let hello = match self.link {
            Link::Up {
                welcomed: false,
                hello_at,
                ..
            } => Some(hello_at + timeout),
            _ => None,
        };
        retries
            .chain(pushes)
            .chain(pull)
            .chain(hello)
            .chain(self.pull.next_at)
            .chain(self.store.retry_at)
            .chain(self.dialer.retry_at)
            .min()
    }

    fn merge_fn(&self) -> Option<crate::scheduler::MergeFn> {
        self.config.mutation_strategy.merge().cloned()
    }
}
