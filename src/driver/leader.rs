//! The leading tab: feeds inputs to the core engine and executes the effects it returns
//! (storage writes, messages, timers, notifications, connections, answers), and serves the
//! other tabs of the database (see `serving`). Every decision is the engine's: callers waiting
//! on a request hold its ticket, which an `Answered` effect answers.

use super::connection::{Link, NO_SOURCE};
use super::pending::{answered, Answer, Waiting};
use super::{Committed, Handle, Hub, Settlement, Source, Topic};
use crate::js::{self, now};
use crate::storage::{Origin, Storage};
use crate::tabs::{Channel, Lock};
use ferrosync_core::collection::DocChange;
use ferrosync_core::document::Fields;
use ferrosync_core::engine::{
    ConflictId, Effect, Engine, Input, RequestError, StorageWrite, SyncStats, Ticket,
};
use ferrosync_core::mutation::MutationRequest;
use ferrosync_core::protocol::ServerMessage;
use ferrosync_core::transaction::{Transaction, TxId};
use ferrosync_core::CoreError;
use gloo_timers::callback::Timeout;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;

/// How long changes received live wait to be written, so a burst of them shares one write and
/// the engines of a page tell their subscribers first (nothing waits on their durability).
const RECEIVED_WRITE_DELAY_MS: u32 = 100;

/// The other tabs of the database, as the leader sees them.
pub(super) struct Tabs {
    /// This tab.
    pub id: String,
    pub channel: Rc<Channel>,
    /// Tabs that said hello (updates are broadcast only while there are some).
    pub followers: HashSet<String>,
    /// Follower requests and the transactions they created (loaded and new).
    pub origins: HashMap<String, Origin>,
    /// Origin records to write with the next storage write that holds their transaction.
    pub unwritten: BTreeMap<TxId, String>,
    /// The database's lock, held while this tab leads.
    pub lock: Option<Lock>,
}

/// The engine as the leading tab runs it.
pub struct Leader {
    /// The core engine.
    pub engine: Engine,
    /// The subscribers.
    pub hub: Hub,
    pub(super) me: Weak<Handle>,
    pub(super) tabs: Tabs,
    storage: Option<Rc<Storage>>,
    pub(super) source: Option<Source>,
    /// The connection the engine asked for.
    pub(super) link: Link,
    wake_timer: Option<Timeout>,
    /// Callers waiting for a transaction to be durable.
    durable_waiters: Waiting<TxId, Committed>,
    settlements: HashMap<TxId, Rc<Settlement>>,
    /// Callers waiting for the engine's answer to their request.
    ticket_waiters: Waiting<Ticket, ()>,
    /// Answers that came in the step that made their request, before it was waited on.
    early_answers: HashMap<Ticket, Result<(), JsValue>>,
    /// A microtask will flush the changes of this task's commits (see [`Leader::input`]).
    flush_queued: bool,
    /// An idle callback will let storage compact.
    compact_queued: bool,
    /// Flushes what a completed write left, or changes received live (see [`Leader::input`]).
    flush_timer: Option<Timeout>,
    /// When that flush is due (`u64::MAX`: none is waiting for a time).
    flush_due: u64,
    /// A flush of changes received live waits for an idle callback: it covers any received
    /// since, so they do not put it off again.
    flush_idle: bool,
    /// Numbers the flushes scheduled, so one replaced by a sooner one does nothing.
    flush_ticket: u64,
    /// An input other than live changes came since the last write was issued: what that
    /// write leaves is flushed in the next task.
    prompt_flush: bool,
}

/// What a step changed that the other tabs should see.
#[derive(Default)]
pub(super) struct Outbound {
    pub changes: Vec<DocChange>,
    pub transactions: Vec<Transaction>,
    pub state: bool,
}

impl Leader {
    /// Wraps a new engine (feed it `Loaded` next).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        engine: Engine,
        hub: Hub,
        me: Weak<Handle>,
        storage: Storage,
        origins: Vec<Origin>,
        source: Option<Source>,
        tab: String,
        channel: Rc<Channel>,
        lock: Lock,
    ) -> Leader {
        let handle = me.clone();
        storage.when_closed(move || {
            if let Some(handle) = handle.upgrade() {
                handle.with_leader(|l| l.feed(Input::StorageReset));
            }
        });
        Leader {
            engine,
            hub,
            me,
            tabs: Tabs {
                id: tab,
                channel,
                followers: HashSet::new(),
                origins: origins
                    .into_iter()
                    .map(|o| (o.request.clone(), o))
                    .collect(),
                unwritten: BTreeMap::new(),
                lock: Some(lock),
            },
            storage: Some(Rc::new(storage)),
            source,
            link: Link::default(),
            wake_timer: None,
            durable_waiters: Waiting::default(),
            settlements: HashMap::new(),
            ticket_waiters: Waiting::default(),
            early_answers: HashMap::new(),
            flush_queued: false,
            compact_queued: false,
            flush_timer: None,
            flush_due: u64::MAX,
            flush_idle: false,
            flush_ticket: 0,
            prompt_flush: false,
        }
    }

    /// Hands `input` to the engine and executes the effects; returns the new transaction's id.
    ///
    /// The engine batches writes: what a commit changed is written by a microtask, so every
    /// commit of the current task (a burst of `insert` calls) goes in one IndexedDB transaction;
    /// what a completed write leaves (the compaction of finished local-only transactions, say)
    /// waits for the next task, so the commits its durability lets callers make join it.
    /// Changes received live wait [`RECEIVED_WRITE_DELAY_MS`], and so does what a completed
    /// write leaves when only such changes came meanwhile.
    pub fn input(&mut self, input: Input) -> Result<Option<TxId>, CoreError> {
        Ok(self.step(input)?.0)
    }

    /// Hands a request to the engine; the receiver is told its answer.
    fn request(&mut self, input: Input) -> Result<Answer<()>, CoreError> {
        let ticket = self.step(input)?.1.expect("a request gets a ticket");
        Ok(match self.early_answers.remove(&ticket) {
            Some(result) => answered(result),
            None => self.ticket_waiters.add(ticket),
        })
    }

    /// [`Leader::input`], also returning the request's ticket.
    fn step(&mut self, input: Input) -> Result<(Option<TxId>, Option<Ticket>), CoreError> {
        let committed = matches!(input, Input::Commit { .. });
        let lazy = match input {
            Input::Server(ServerMessage::Changes { .. }) => true,
            Input::Persisted { .. } => !self.prompt_flush,
            Input::Tick => false,
            _ => {
                self.prompt_flush = true;
                false
            }
        };
        let step = self.engine.handle(input, now())?;
        self.execute(step.effects);
        if step.unflushed {
            if committed {
                self.flush_soon();
            } else {
                self.flush_later(lazy);
            }
        }
        if step.compact {
            self.compact_when_idle();
        }
        Ok((step.transaction, step.ticket))
    }

    /// Flushes in a microtask (once for any number of calls before it runs).
    fn flush_soon(&mut self) {
        if std::mem::replace(&mut self.flush_queued, true) {
            return;
        }
        let me = self.me.clone();
        wasm_bindgen_futures::spawn_local(async move {
            if let Some(handle) = me.upgrade() {
                handle.with_leader(|l| {
                    if std::mem::take(&mut l.flush_queued) {
                        l.feed(Input::Tick);
                    }
                });
            }
        });
    }

    /// Lets storage compact its log when the page has time to spare (once for any number of
    /// calls before it runs).
    fn compact_when_idle(&mut self) {
        if std::mem::replace(&mut self.compact_queued, true) {
            return;
        }
        let me = self.me.clone();
        js::when_idle(move || {
            if let Some(handle) = me.upgrade() {
                handle.with_leader(|l| {
                    l.compact_queued = false;
                    l.feed(Input::Compact);
                });
            }
        });
    }

    /// Flushes in the next task or, `lazy`, after [`RECEIVED_WRITE_DELAY_MS`] once the page is
    /// idle (so the writes of many engines never hold up a message), unless a flush is due
    /// sooner.
    fn flush_later(&mut self, lazy: bool) {
        let delay = if lazy { RECEIVED_WRITE_DELAY_MS } else { 0 };
        let due = now() + u64::from(delay);
        if self.flush_due <= due || (lazy && self.flush_idle) {
            return;
        }
        self.flush_due = due;
        self.flush_idle = false;
        self.flush_ticket += 1;
        let (ticket, me) = (self.flush_ticket, self.me.clone());
        let tick = move || {
            if let Some(handle) = me.upgrade() {
                handle.with_leader(|l| {
                    if l.flush_ticket == ticket {
                        l.flush_timer = None;
                        l.flush_due = u64::MAX;
                        l.flush_idle = false;
                        l.feed(Input::Tick);
                    }
                });
            }
        };
        let me = self.me.clone();
        self.flush_timer = Some(Timeout::new(delay, move || {
            if !lazy {
                return tick();
            }
            // An idle callback cannot be cancelled: until it runs, a flush due sooner is
            // scheduled anew (and this one then does nothing).
            if let Some(handle) = me.upgrade() {
                handle.with_leader(|l| {
                    if l.flush_ticket == ticket {
                        l.flush_due = u64::MAX;
                        l.flush_idle = true;
                    }
                });
            }
            js::when_idle(tick);
        }));
    }

    /// Feeds an input whose refusal would be the engine's own bug: it is reported, not thrown.
    pub(super) fn feed(&mut self, input: Input) {
        if let Err(e) = self.input(input) {
            web_sys::console::error_1(&format!("ferrosync: {e}").into());
        }
    }

    fn execute(&mut self, effects: Vec<Effect>) {
        let mut outgoing = Vec::new();
        let mut outbound = Outbound::default();
        // The connection changes once this step's effects are out: what opening it feeds the
        // engine comes after them.
        let mut connect = None;
        let mut disconnect = false;
        let serving = !self.tabs.followers.is_empty();
        for effect in effects {
            match effect {
                Effect::Persist(write) => self.persist(write),
                Effect::Send(message) => outgoing.push(message),
                Effect::Changes(changes) => {
                    self.hub.changes(&changes);
                    self.hub.live_changes(&self.engine.take_live_changes());
                    if serving {
                        outbound.changes.extend(changes);
                    }
                }
                Effect::Transactions(txs) => {
                    self.hub.transactions(&txs);
                    self.transactions_changed(&txs);
                    if serving {
                        outbound.transactions.extend(txs);
                        outbound.state = true;
                    }
                }
                Effect::Durable(ids) => {
                    for id in ids {
                        if let Some(settlement) = self.settlements.get(&id).cloned() {
                            self.durable_waiters.answer(&id, Ok((id, settlement)));
                        }
                    }
                }
                Effect::Status(status) => {
                    self.hub.topic(Topic::Status, || js::to_js(&status));
                    outbound.state = serving;
                }
                Effect::Stats(stats) => {
                    self.hub.topic(Topic::Stats, || js::to_js(&stats));
                    outbound.state = serving;
                }
                Effect::Progress(progress) => {
                    self.hub.topic(Topic::Progress, || js::to_js(&progress));
                    outbound.state = serving;
                }
                Effect::Call(call) => {
                    if let Some(Source::Custom(backend)) = &self.source {
                        let backend = backend.clone();
                        self.call(&backend, call);
                    }
                }
                Effect::Connect { server } => connect = Some(server),
                Effect::Disconnect => disconnect = true,
                Effect::Answered(answers) => {
                    for (ticket, answer) in answers {
                        let result = answer.map_err(request_error);
                        if self.ticket_waiters.is_waiting(&ticket) {
                            self.ticket_waiters.answer(&ticket, result);
                        } else {
                            self.early_answers.insert(ticket, result);
                        }
                    }
                }
                Effect::WakeAt(at) => {
                    let me = self.me.clone();
                    let delay = at.saturating_sub(now()).min(u32::MAX as u64) as u32;
                    self.wake_timer = Some(Timeout::new(delay, move || {
                        if let Some(handle) = me.upgrade() {
                            handle.with_leader(|l| l.feed(Input::Tick));
                        }
                    }));
                }
            }
        }
        if !outgoing.is_empty() {
            self.link.send(outgoing);
        }
        if serving {
            self.broadcast(outbound);
        }
        if disconnect {
            self.close_link();
        }
        if let Some(server) = connect {
            self.open_link(server);
        }
    }

    /// Settles transactions that finished, and rejects `insert` promises of those that failed
    /// before becoming durable.
    fn transactions_changed(&mut self, txs: &[Transaction]) {
        for tx in txs.iter().filter(|tx| tx.state.is_terminal()) {
            // Every transaction waited on has a settlement.
            if let Some(settlement) = self.settlements.remove(&tx.id) {
                // The history's bytes when it keeps the transaction: one copy for both.
                match self.engine.stored_transaction(tx.id) {
                    Some(stored) => settlement.settle_stored(stored),
                    None => settlement.settle(tx),
                }
                let result = outcome(tx).map(|()| (tx.id, settlement));
                self.durable_waiters.answer(&tx.id, result);
            }
        }
    }

    /// Writes a batch (with the origin records it covers) in the background and reports the
    /// result to the engine.
    fn persist(&mut self, write: StorageWrite) {
        let Some(storage) = self.storage.clone() else {
            return;
        };
        self.prompt_flush = false;
        let origins = self.origins_for(&write);
        let token = write.token;
        let me = self.me.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let result = storage.write(write, &origins).await;
            // Destroyed meanwhile: this task holds the last reference; dropping it closes the
            // database.
            drop(storage);
            let Some(handle) = me.upgrade() else {
                return;
            };
            handle.with_leader(|l| match result {
                Ok(()) => {
                    l.origins_written(origins);
                    l.feed(Input::Persisted { token });
                }
                Err(error) => {
                    l.feed(Input::PersistFailed {
                        token,
                        message: error.message,
                    });
                    if error.reopened {
                        l.feed(Input::StorageReset);
                    }
                }
            });
        });
    }

    /// Commits a transaction; returns its id and an answer once it is durable (or failed
    /// first).
    pub fn commit(
        &mut self,
        requests: Vec<MutationRequest>,
        metadata: Option<Value>,
    ) -> Result<(TxId, Answer<Committed>), CoreError> {
        let id = self
            .input(Input::Commit { requests, metadata })?
            .expect("a commit creates a transaction");
        Ok((id, self.durable(id)))
    }

    /// The settlement of a transaction this engine still knows (or `None`).
    pub(super) fn settlement(&mut self, id: TxId) -> Option<Rc<Settlement>> {
        let tx = self.engine.transaction(id)?;
        if tx.state.is_terminal() {
            let settlement = Rc::new(Settlement::default());
            settlement.settle(tx);
            return Some(settlement);
        }
        Some(self.settlement_of(id))
    }

    fn settlement_of(&mut self, id: TxId) -> Rc<Settlement> {
        self.settlements.entry(id).or_default().clone()
    }

    /// Takes over a settlement a follower handed out for transaction `id`.
    pub(super) fn adopt_settlement(&mut self, id: TxId, settlement: Rc<Settlement>) {
        match self.engine.transaction(id) {
            Some(tx) if tx.state.is_terminal() => settlement.settle(tx),
            Some(_) => {
                self.settlements.insert(id, settlement);
            }
            None => {
                let finished = self.tabs.origins.values().find(|o| o.tx == id);
                if let Some(tx) = finished.and_then(|o| o.finished.as_ref()) {
                    settlement.settle(tx);
                }
            }
        }
    }

    /// An answer once transaction `id` is durable (at once if it already is), with its end.
    pub(super) fn durable(&mut self, id: TxId) -> Answer<Committed> {
        let state = self
            .engine
            .transaction(id)
            .map(|tx| (tx.state.is_terminal(), outcome(tx)));
        let settlement = self.settlement(id).unwrap_or_default();
        match state {
            Some((false, _)) if !self.engine.is_durable(id) => self.durable_waiters.add(id),
            Some((true, Err(error))) => answered(Err(error)),
            // Durable, finished, or finished and forgotten (it was durable).
            _ => answered(Ok((id, settlement))),
        }
    }

    /// `hardDelete`: a receiver told once the removal is in IndexedDB.
    /// It waits while storage is failing (the write is retried).
    pub fn hard_delete(&mut self, collection: &str, id: String) -> Result<Answer<()>, CoreError> {
        self.request(Input::HardDelete {
            collection: collection.into(),
            id,
        })
    }

    /// `flush`: a receiver told once everything the engine holds is in IndexedDB (it waits
    /// while storage is failing).
    pub fn flush(&mut self) -> Answer<()> {
        self.request(Input::Flush)
            .unwrap_or_else(|e| answered(Err(js::core_error(e))))
    }

    /// `resolveConflict`.
    pub fn resolve_conflict(&mut self, id: ConflictId, fields: Fields) -> Result<(), CoreError> {
        self.input(Input::ResolveConflict { id, fields })
            .map(|_| ())
    }

    /// The status or stats now.
    pub fn current(&self, topic: Topic) -> JsValue {
        match topic {
            Topic::Status => js::to_js(&self.engine.status()),
            Topic::Stats => js::to_js::<SyncStats>(self.engine.stats()),
            Topic::Progress => js::to_js(&self.engine.progress()),
        }
    }

    /// The names of the synced collections.
    pub(super) fn synced_collections(&self) -> Vec<String> {
        self.engine
            .collection_names()
            .filter(|name| self.engine.is_synced_collection(name))
            .map(str::to_owned)
            .collect()
    }

    /// Asks for a push and/or pull; the receiver is told when sync settles (idle), or fails.
    pub fn sync_now(&mut self, push: bool, pull: bool) -> Answer<()> {
        if self.source.is_none() {
            return answered(Err(js::error("Error", NO_SOURCE)));
        }
        self.request(Input::SyncNow { push, pull })
            .unwrap_or_else(|e| answered(Err(js::core_error(e))))
    }

    /// Stops everything and lets the next tab lead. Waiting callers are rejected; requests of
    /// other tabs stay unanswered, so they re-send them to the next leader.
    pub fn destroy(&mut self) {
        // Changes waiting for a batched write are written still, as if it had been issued.
        if self.flush_queued || self.flush_timer.is_some() {
            self.flush_queued = false;
            self.flush_timer = None;
            self.feed(Input::Tick);
        }
        self.hub.clear();
        self.stop_sync();
        self.close_link();
        self.wake_timer = None;
        self.unwatch_online();
        // Dropped waiters reject as "destroyed" (see `Committing::durable`, `settled`).
        self.durable_waiters.clear();
        self.ticket_waiters.clear();
        for (_, settlement) in self.settlements.drain() {
            settlement.abandon();
        }
        // A write under way keeps its own reference and closes the database when done.
        self.storage = None;
        self.tabs.lock = None;
    }
}

/// A finished transaction as its `insert` promise settles: done, or its error.
fn outcome(tx: &Transaction) -> Result<(), JsValue> {
    match &tx.error {
        Some(error) => Err(crate::views::transaction_error(error)),
        None => Ok(()),
    }
}

/// A request's failure as a JavaScript error: a `SyncError` when sync failed.
fn request_error(error: RequestError) -> JsValue {
    match error {
        RequestError::Stopped => js::error("Error", &error.to_string()),
        RequestError::Sync(why) => js::error("SyncError", &why),
    }
}
