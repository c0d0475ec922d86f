//! The client engine as a state machine: `handle(input, now) -> effects`.
//!
//! The driver (the wasm crate, or a test) feeds inputs: storage loaded or persisted, local
//! writes, connection changes, server messages, timer ticks. The engine answers with effects to
//! execute: persist a batch to storage, send a message, notify subscribers, wake up at a time.
//! Writes are sent only after they are durable, so a reload never reuses a mutation id.

mod answers;
mod backend;
mod config;
mod dialer;
mod history;
mod inbound;
mod io;
mod local;
mod origins;
mod outbox;
mod queue;
mod remote;
mod requests;
mod retries;
mod status;
mod store;

pub use backend::{Backend, Call, CallOutcome, CallStep};
pub use config::{CollectionConfig, Direction, EngineConfig};
pub use history::HistoryRetention;
pub use io::{ConflictEntry, ConflictId, Effect, Input, Step};
pub use origins::{Origin, ORIGIN_KEPT_MS};
pub use remote::remote_documents;
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
use crate::hlc::{Hlc, HybridClock};
use crate::id_map::IdMap;
use crate::live_query::{take_live_changes, LiveChanges, LiveId};
use crate::protocol::ServerMessage;
use crate::query::Query;
use crate::rng::Rng;
use crate::transaction::{locked_objects, LockedObject, Transaction, TxId};
use crate::{ClientId, CoreError, DocId, Millis, MutationId, Version};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

/// A collection and document id: an object the ordered strategy locks.
type Object = (String, DocId);

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
    /// The history entries' bytes.
    packed_history: store::PackedHistory,
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
            packed_history: store::PackedHistory::default(),
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
