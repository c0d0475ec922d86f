//! A deterministic driver for the engine: in-memory storage with explicit write completion, the
//! reference server with broadcasts, and a `World` that delivers messages directly. The
//! simulation adds a faulty network on top of the same pieces.
#![allow(dead_code)] // each test binary uses a different part of this module

use ferrosync_core::collection::{ChangeKind, DocChange};
use ferrosync_core::document::{parse_patch, Document, Fields};
use ferrosync_core::engine::{
    Answer, Call, CollectionConfig, Effect, Engine, EngineConfig, Input, MemoryStore, Record,
    StorageWrite, StoreOp, SyncProgress, SyncStatus, Ticket,
};
use ferrosync_core::live_query::LiveId;
use ferrosync_core::mutation::{MutationRequest, Op};
use ferrosync_core::protocol::ErrorCode;
use ferrosync_core::protocol::{Change, ClientMessage, ErrorInfo, ServerMessage, WireMutation};
use ferrosync_core::query::Query;
use ferrosync_core::server::{
    apply_push, ClientRecord, MemoryServer, PushBounds, PushRequest, ServerDoc, ServerView,
};
use ferrosync_core::transaction::{Transaction, TxId, TxState};
use ferrosync_core::{CoreError, Millis, MutationId};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A test start time: 2026-01-01.
pub const T0: Millis = 1_767_225_600_000;

/// A config with a synced `todos` and a local-only `cache` collection.
pub fn config(seed: u64) -> EngineConfig {
    EngineConfig {
        collections: vec![
            CollectionConfig {
                name: "todos".into(),
                sync: true,
                ..CollectionConfig::default()
            },
            CollectionConfig {
                name: "cache".into(),
                sync: false,
                ..CollectionConfig::default()
            },
        ],
        seed,
        ..EngineConfig::default()
    }
}

pub fn insert(collection: &str, doc: Value) -> MutationRequest {
    MutationRequest::insert(collection, doc).expect("valid test document")
}

pub fn update(collection: &str, id: &str, patch: Value) -> MutationRequest {
    let patch = parse_patch(patch).expect("valid test patch");
    MutationRequest {
        collection: collection.into(),
        doc_id: id.into(),
        op: Op::Update { patch },
        metadata: None,
    }
}

pub fn delete(collection: &str, id: &str) -> MutationRequest {
    MutationRequest {
        collection: collection.into(),
        doc_id: id.into(),
        op: Op::Delete,
        metadata: None,
    }
}

/// Storage in memory: applies writes exactly as IndexedDB would, one batch at a time.
pub type Store = MemoryStore;

/// The log record a write appends.
pub fn record_of(write: &StorageWrite) -> Record {
    write
        .ops
        .iter()
        .find_map(|op| match op {
            StoreOp::PutRecord { bytes, .. } => Some(Record::decode(bytes).expect("decodes")),
            _ => None,
        })
        .expect("every write appends a record")
}

/// An engine plus the effects it asked for, executed only when a test says so.
pub struct Client {
    pub engine: Engine,
    pub config: EngineConfig,
    pub store: Store,
    /// Storage writes issued and not yet completed (lost on reload).
    pub writes: VecDeque<StorageWrite>,
    /// Messages sent and not yet delivered.
    pub outbox: VecDeque<ClientMessage>,
    pub wake: Option<Millis>,
    /// Every state each transaction was seen in, in order (kept across reloads).
    pub history: BTreeMap<TxId, Vec<TxState>>,
    pub last_seen: BTreeMap<TxId, Transaction>,
    pub durable: BTreeSet<TxId>,
    pub statuses: Vec<SyncStatus>,
    /// Every progress reported, in order.
    pub progress: Vec<SyncProgress>,
    pub changes: Vec<DocChange>,
    /// Custom backend calls asked for and not yet answered.
    pub calls: VecDeque<Call>,
    /// A step left changes for a batched write (`batch_writes`): a `Tick` writes them.
    pub unflushed: bool,
    /// Live queries on `todos`, with the windows their changes built.
    pub live: Vec<Watched>,
    /// The engine handled an input since the flag was last cleared.
    pub stepped: bool,
    /// The last step said storage is idle with compaction due.
    pub compact: bool,
    /// The servers the engine asked to connect to (`Connect`), in order.
    pub dials: Vec<usize>,
    /// How many times the engine dropped its connection (`Disconnect`).
    pub hangups: usize,
    /// The requests answered (`Answered`), by ticket.
    pub answers: BTreeMap<Ticket, Answer>,
}

/// A live query a test follows.
pub struct Watched {
    pub query: Query,
    pub id: LiveId,
    /// The window as its changes built it: id → document.
    pub window: BTreeMap<String, Document>,
}

impl Watched {
    fn apply(&mut self, changes: &[DocChange]) {
        for change in changes {
            let id = change.id.clone();
            let had = match (change.kind, change.doc.clone()) {
                (ChangeKind::Removed, _) => self.window.remove(&id).is_some(),
                (ChangeKind::Added, Some(doc)) => self.window.insert(id, doc).is_none(),
                (ChangeKind::Updated, Some(doc)) => self.window.insert(id, doc).is_some(),
                (_, None) => false,
            };
            assert!(
                had,
                "{change:?} does not fit the window of {}",
                self.query.key()
            );
        }
    }
}

impl Client {
    pub fn open(config: EngineConfig, store: Store, now: Millis) -> Client {
        let engine = Engine::new(config.clone()).expect("valid config");
        let mut client = Client {
            engine,
            config,
            store,
            writes: VecDeque::new(),
            outbox: VecDeque::new(),
            wake: None,
            history: BTreeMap::new(),
            last_seen: BTreeMap::new(),
            durable: BTreeSet::new(),
            statuses: Vec::new(),
            progress: Vec::new(),
            changes: Vec::new(),
            calls: VecDeque::new(),
            unflushed: false,
            live: Vec::new(),
            stepped: false,
            compact: false,
            dials: Vec::new(),
            hangups: 0,
            answers: BTreeMap::new(),
        };
        let snapshot = client.store.snapshot();
        client.handle(Input::Loaded(snapshot), now).expect("loads");
        client
    }

    pub fn handle(&mut self, input: Input, now: Millis) -> Result<Option<TxId>, CoreError> {
        Ok(self.step(input, now)?.0)
    }

    /// Feeds a request (`SyncNow`, `HardDelete`, `Flush`); returns its ticket.
    pub fn request(&mut self, input: Input, now: Millis) -> Result<Ticket, CoreError> {
        Ok(self.step(input, now)?.1.expect("a request gets a ticket"))
    }

    fn step(
        &mut self,
        input: Input,
        now: Millis,
    ) -> Result<(Option<TxId>, Option<Ticket>), CoreError> {
        let step = self.engine.handle(input, now)?;
        self.stepped = true;
        self.unflushed |= step.unflushed;
        self.compact = step.compact;
        for effect in step.effects {
            match effect {
                Effect::Persist(w) => self.writes.push_back(w),
                Effect::Send(m) => self.outbox.push_back(m),
                Effect::Changes(c) => self.changes.extend(c),
                Effect::Transactions(txs) => {
                    for tx in txs {
                        let seen = self.history.entry(tx.id).or_default();
                        if seen.last() != Some(&tx.state) {
                            seen.push(tx.state);
                        }
                        self.last_seen.insert(tx.id, tx);
                    }
                }
                Effect::Durable(ids) => self.durable.extend(ids),
                Effect::Status(s) => self.statuses.push(s),
                Effect::Stats(_) => {}
                Effect::Progress(p) => self.progress.push(p),
                Effect::WakeAt(at) => self.wake = Some(at),
                Effect::Call(call) => self.calls.push_back(call),
                Effect::Connect { server } => self.dials.push(server),
                Effect::Disconnect => self.hangups += 1,
                Effect::Answered(answers) => {
                    for (ticket, answer) in answers {
                        let earlier = self.answers.insert(ticket, answer);
                        assert!(earlier.is_none(), "{ticket:?} is answered twice");
                    }
                }
            }
        }
        for live in self.engine.take_live_changes() {
            if let Some(watched) = self.live.iter_mut().find(|w| w.id == live.id) {
                watched.apply(&live.changes);
            }
        }
        Ok((step.transaction, step.ticket))
    }

    /// Follows `query` on `todos` as a subscriber would.
    pub fn watch(&mut self, query: Query) {
        let id = self.engine.watch("todos", query.clone()).expect("todos");
        let window = self
            .engine
            .collection("todos")
            .expect("todos")
            .find(&query)
            .into_iter()
            .map(|d| (d.id().to_owned(), d.clone()))
            .collect();
        self.live.push(Watched { query, id, window });
    }

    /// Whether each live query's results, and the window its changes built, equal a fresh
    /// run of the query over the visible documents.
    pub fn check_live(&self) -> Result<(), String> {
        let todos = self.engine.collection("todos").expect("todos");
        let ids = |docs: &[&Document]| docs.iter().map(|d| d.id().to_owned()).collect::<Vec<_>>();
        fn content(d: &Document) -> (&str, Fields<&str>, bool) {
            (d.id(), d.fields(), d.deleted())
        }
        for w in &self.live {
            let mut fresh = w.query.run(todos.docs());
            let found = todos.find(&w.query);
            if ids(&found) != ids(&fresh) {
                let (found, fresh) = (ids(&found), ids(&fresh));
                return Err(format!(
                    "{}: results {found:?}, a fresh run {fresh:?}",
                    w.query.key()
                ));
            }
            fresh.sort_unstable_by(|a, b| a.id().cmp(b.id()));
            let built = w.window.values().map(content);
            if !built.eq(fresh.iter().copied().map(content)) {
                let built: Vec<_> = w.window.values().map(content).collect();
                let fresh: Vec<_> = fresh.into_iter().map(content).collect();
                return Err(format!(
                    "{}: changes built {built:?}, a fresh run {fresh:?}",
                    w.query.key()
                ));
            }
        }
        Ok(())
    }

    pub fn commit(
        &mut self,
        requests: Vec<MutationRequest>,
        now: Millis,
    ) -> Result<TxId, CoreError> {
        Ok(self
            .handle(Input::commit(requests), now)?
            .expect("commit returns its id"))
    }

    /// Completes the oldest storage write.
    pub fn complete_write(&mut self, now: Millis) -> bool {
        let Some(w) = self.writes.pop_front() else {
            return false;
        };
        self.store.apply(&w);
        self.handle(Input::Persisted { token: w.token }, now)
            .expect("persisted");
        true
    }

    /// The storage write under way fails (an aborted IndexedDB transaction): nothing of it is
    /// stored.
    pub fn fail_write(&mut self, now: Millis) -> bool {
        let Some(w) = self.writes.pop_front() else {
            return false;
        };
        let failed = Input::PersistFailed {
            token: w.token,
            message: "the transaction was aborted".into(),
            quota: false,
        };
        self.handle(failed, now).expect("failure reported");
        true
    }

    /// Feeds `Compact` if the last step asked for it (storage is idle); says whether.
    pub fn compact_if_due(&mut self, now: Millis) -> bool {
        if !std::mem::take(&mut self.compact) {
            return false;
        }
        self.handle(Input::Compact, now).expect("compacts");
        true
    }

    /// Completes storage writes until none is pending (ticking batched writes out).
    pub fn flush(&mut self, now: Millis) {
        loop {
            while self.complete_write(now) {}
            if !self.tick_unflushed(now) {
                return;
            }
        }
    }

    /// Feeds the `Tick` that writes what batched steps left, if any did; says whether.
    pub fn tick_unflushed(&mut self, now: Millis) -> bool {
        if !std::mem::take(&mut self.unflushed) {
            return false;
        }
        self.handle(Input::Tick, now).expect("tick");
        true
    }

    /// Drops the engine with whatever was not durable, and opens a new one on the same storage.
    pub fn reload(&mut self, now: Millis) {
        let history = std::mem::take(&mut self.history);
        let last_seen = std::mem::take(&mut self.last_seen);
        let durable = std::mem::take(&mut self.durable);
        let mut fresh = Client::open(self.config.clone(), self.store.clone(), now);
        fresh.history = history;
        fresh.last_seen = last_seen;
        fresh.durable = durable;
        for watched in std::mem::take(&mut self.live) {
            fresh.watch(watched.query);
        }
        *self = fresh;
    }

    pub fn tx(&self, id: TxId) -> Transaction {
        self.engine
            .transaction(id)
            .cloned()
            .unwrap_or_else(|| self.last_seen[&id].clone())
    }

    /// What a reload would find: an engine loaded from what storage holds.
    pub fn stored(&self) -> Engine {
        self.stored_at(0)
    }

    /// What a reload at `now` would find.
    pub fn stored_at(&self, now: Millis) -> Engine {
        let mut engine = Engine::new(self.config.clone()).expect("valid config");
        engine
            .handle(Input::Loaded(self.store.snapshot()), now)
            .expect("storage loads");
        engine
    }

    /// The pull cursor storage holds: the newest checkpoint among the log records.
    pub fn stored_cursor(&self) -> u64 {
        self.store
            .snapshot()
            .records
            .map(|bytes| Record::decode(&bytes).expect("decodes"))
            .max_by_key(|r| r.seq * u64::from(r.meta.checkpoint.is_some()))
            .and_then(|r| r.meta.checkpoint)
            .map_or(0, |c| c.cursor)
    }

    /// How many synced documents storage holds, in all collections.
    pub fn stored_docs(&self) -> usize {
        let engine = self.stored();
        let names: Vec<String> = engine.collection_names().map(str::to_owned).collect();
        names
            .iter()
            .map(|n| engine.collection(n).unwrap().synced_docs().count())
            .sum()
    }

    pub fn visible(&self, id: &str) -> Option<Document> {
        self.engine.collection("todos").unwrap().get(id).cloned()
    }
}

/// The reference server: a `MemoryServer` plus broadcasts, with hooks for fault injection.
pub struct Server {
    pub mem: MemoryServer,
    pub now: Millis,
    /// Rejects mutations whose document has `"invalid": true` (non-retryable).
    pub validate: bool,
    /// Answers every push with a retryable "busy" error while true.
    pub busy: bool,
    /// A deliberately broken server that forgets which mutations it has processed.
    pub broken_dedup: bool,
    /// How many times each write token (the `w` field) was applied.
    pub applied_tokens: BTreeMap<String, u32>,
    /// Per (client, document), the tokens applied in order.
    pub applied_order: BTreeMap<(String, String), Vec<String>>,
}

/// A view that forgets processed mutations: every push looks new (the broken-dedup fault).
struct Forgetful<'a> {
    inner: &'a MemoryServer,
    first_id: MutationId,
}

impl ServerView for Forgetful<'_> {
    fn client(&self, client: &str) -> Option<ClientRecord> {
        self.inner.client(client).map(|r| ClientRecord {
            last_mutation_id: self.first_id.saturating_sub(1),
            ..r
        })
    }
    fn document(&self, collection: &str, id: &str) -> Option<ServerDoc> {
        self.inner.document(collection, id)
    }
    fn outcome(&self, _: &str, _: MutationId) -> Option<ferrosync_core::protocol::Outcome> {
        None
    }
}

impl Server {
    pub fn new() -> Server {
        Server {
            mem: MemoryServer::new(),
            now: T0,
            validate: true,
            busy: false,
            broken_dedup: false,
            applied_tokens: BTreeMap::new(),
            applied_order: BTreeMap::new(),
        }
    }

    /// Handles a message from `client_id`: the replies to it, and a broadcast for the others.
    pub fn handle(
        &mut self,
        client_id: &str,
        msg: ClientMessage,
    ) -> (Vec<ServerMessage>, Option<ServerMessage>) {
        match msg {
            ClientMessage::Hello { client_id: id, .. } => {
                let welcome = ServerMessage::Welcome {
                    last_mutation_id: self.mem.last_mutation_id(&id),
                    client_id: id,
                    head: self.mem.head(),
                };
                (vec![welcome], None)
            }
            ClientMessage::Ping => (vec![ServerMessage::Pong], None),
            ClientMessage::Pull { seq, cursor, limit } => {
                let (changes, cursor, has_more) = self.mem.pull(cursor, limit as usize);
                (
                    vec![ServerMessage::PullPage {
                        seq,
                        changes,
                        cursor,
                        has_more,
                    }],
                    None,
                )
            }
            ClientMessage::Push { seq, transactions } => {
                let busy = self.busy;
                let validate = self.validate;
                let check = move |m: &WireMutation| -> Result<(), ErrorInfo> {
                    if busy {
                        return Err(ErrorInfo::new(ErrorCode::Busy, "the server is busy", true));
                    }
                    let invalid = match &m.op {
                        Op::Insert { fields }
                        | Op::Put { fields }
                        | Op::Update { patch: fields } => {
                            fields.get("invalid") == Some(Value::Bool(true))
                        }
                        Op::Delete => false,
                    };
                    if validate && invalid {
                        return Err(ErrorInfo::new(
                            ErrorCode::BadRequest,
                            "the document is marked invalid",
                            false,
                        ));
                    }
                    Ok(())
                };
                let req = PushRequest {
                    client_id,
                    user: "user",
                    now: self.now,
                    head: self.mem.head(),
                    transactions: &transactions,
                    bounds: PushBounds::NONE,
                };
                let result = if self.broken_dedup {
                    let first_id = transactions
                        .first()
                        .and_then(|t| t.mutations.first())
                        .map_or(1, |m| m.id);
                    apply_push(
                        &Forgetful {
                            inner: &self.mem,
                            first_id,
                        },
                        req,
                        &check,
                    )
                } else {
                    apply_push(&self.mem, req, &check)
                };
                match result {
                    Err(error) => (
                        vec![ServerMessage::Error {
                            seq: Some(seq),
                            error,
                        }],
                        None,
                    ),
                    Ok(commit) => {
                        let processed = self.mem.last_mutation_id(client_id);
                        self.mem.commit(client_id, &commit);
                        self.record_applied(client_id, &transactions, processed, &commit.results);
                        let broadcast = commit.range.map(|range| ServerMessage::Changes {
                            changes: commit
                                .writes
                                .iter()
                                .map(|w| Change {
                                    collection: w.collection.clone(),
                                    doc: w.doc.clone(),
                                })
                                .collect(),
                            range,
                        });
                        (
                            vec![ServerMessage::PushResult {
                                seq,
                                results: commit.results,
                                range: commit.range,
                            }],
                            broadcast,
                        )
                    }
                }
            }
        }
    }

    fn record_applied(
        &mut self,
        client_id: &str,
        txs: &[ferrosync_core::protocol::WireTransaction],
        processed: u64,
        results: &[ferrosync_core::protocol::MutationResult],
    ) {
        // Ids at or below those processed before are replays, not applied again.
        for r in results.iter().filter(|r| r.id > processed) {
            if !matches!(r.outcome, ferrosync_core::protocol::Outcome::Applied { .. }) {
                continue;
            }
            let m = txs
                .iter()
                .flat_map(|t| &t.mutations)
                .find(|m| m.id == r.id)
                .expect("answered mutation was sent");
            let token = match &m.op {
                Op::Insert { fields } | Op::Put { fields } | Op::Update { patch: fields } => {
                    fields.get("w").and_then(|w| w.as_str().map(str::to_owned))
                }
                Op::Delete => None,
            };
            if let Some(token) = token {
                *self.applied_tokens.entry(token.to_owned()).or_default() += 1;
                self.applied_order
                    .entry((client_id.to_owned(), m.doc_id.clone()))
                    .or_default()
                    .push(token.to_owned());
            }
        }
    }

    pub fn doc(&self, id: &str) -> Option<Document> {
        self.mem.document("todos", id).map(|d| d.doc)
    }
}

/// Clients and a server with perfect, immediate delivery between connected parties.
pub struct World {
    pub server: Server,
    pub clients: Vec<Client>,
    pub connected: Vec<bool>,
    pub now: Millis,
}

impl World {
    pub fn new(n: usize, make: impl Fn(u64) -> EngineConfig) -> World {
        let clients = (0..n)
            .map(|i| Client::open(make(i as u64 + 1), Store::default(), T0))
            .collect();
        World {
            server: Server::new(),
            clients,
            connected: vec![false; n],
            now: T0,
        }
    }

    /// `n` clients, all connected and welcomed.
    pub fn online(n: usize, make: impl Fn(u64) -> EngineConfig) -> World {
        let mut world = World::new(n, make);
        for i in 0..n {
            world.connect(i);
        }
        world.settle();
        world
    }

    pub fn connect(&mut self, i: usize) {
        self.connected[i] = true;
        self.clients[i]
            .handle(Input::Connected { live: true }, self.now)
            .unwrap();
    }

    pub fn disconnect(&mut self, i: usize) {
        self.connected[i] = false;
        self.clients[i].outbox.clear();
        self.clients[i]
            .handle(
                Input::Disconnected {
                    reason: "test".into(),
                },
                self.now,
            )
            .unwrap();
    }

    pub fn advance(&mut self, ms: Millis) {
        self.now += ms;
        self.server.now = self.now;
        for c in &mut self.clients {
            if c.wake.is_some_and(|at| at <= self.now) {
                c.wake = None;
                c.handle(Input::Tick, self.now).unwrap();
            }
        }
    }

    /// Completes storage writes and delivers messages until nothing moves.
    pub fn settle(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.clients.len() {
                while self.clients[i].complete_write(self.now) {
                    moved = true;
                }
                if !self.connected[i] {
                    continue;
                }
                while let Some(msg) = self.clients[i].outbox.pop_front() {
                    moved = true;
                    let id = self.clients[i].engine.client_id().to_owned();
                    let (replies, broadcast) = self.server.handle(&id, msg);
                    for reply in replies {
                        self.clients[i]
                            .handle(Input::Server(reply), self.now)
                            .unwrap();
                    }
                    for j in (0..self.clients.len()).filter(|j| *j != i && self.connected[*j]) {
                        if let Some(b) = &broadcast {
                            self.clients[j]
                                .handle(Input::Server(b.clone()), self.now)
                                .unwrap();
                        }
                    }
                }
            }
            if !moved {
                break;
            }
        }
    }
}
