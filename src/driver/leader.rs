//! The leading tab: feeds inputs to the core engine and executes the effects it returns
//! (storage writes, messages, timers, notifications, connections, answers), and serves the
//! other tabs of the database (see `serving`). Every decision is the engine's: callers waiting
//! on a request hold its ticket, which an `Answered` effect answers.

use super::connection::Link;
use super::pending::{answered, Answer, Waiting};
use super::settlement::HistoryReaders;
use super::{Committed, Handle, Hub, Settlement, Source, Topic};
use crate::js::{self, now};
use crate::storage::Storage;
use crate::tabs::{Channel, Lock};
use ferrosync_core::collection::DocChange;
use ferrosync_core::engine::{Effect, Engine, Input, RequestError, StorageWrite, Ticket};
use ferrosync_core::protocol::ServerMessage;
use ferrosync_core::transaction::{Transaction, TxId};
use ferrosync_core::CoreError;
use gloo_timers::callback::Timeout;
use std::collections::{HashMap, HashSet};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;

/// The other tabs of the database, as the leader sees them.
pub(super) struct Tabs {
    /// This tab.
    pub id: String,
    pub channel: Rc<Channel>,
    /// Tabs that said hello (updates are broadcast only while there are some).
    pub followers: HashSet<String>,
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
    pub(super) durable_waiters: Waiting<TxId, Committed>,
    pub(super) settlements: HashMap<TxId, Rc<Settlement>>,
    /// The settlements of finished transactions that read them from the history.
    pub(super) history_readers: HistoryReaders,
    /// Callers waiting for the engine's answer to their request.
    ticket_waiters: Waiting<Ticket, ()>,
    /// Answers that came in the step that made their request, before it was waited on (a
    /// list: each is taken as soon as that step returns).
    early_answers: Vec<(Ticket, Result<(), JsValue>)>,
    /// A microtask will flush the changes of this task's commits (see [`Leader::input`]).
    pub(super) flush_queued: bool,
    /// An idle callback will let storage compact.
    pub(super) compact_queued: bool,
    /// Flushes what a completed write left, or changes received live (see [`Leader::input`]).
    pub(super) flush_timer: Option<Timeout>,
    /// When that flush is due (`u64::MAX`: none is waiting for a time).
    pub(super) flush_due: u64,
    /// A flush of changes received live waits for an idle callback: it covers any received
    /// since, so they do not put it off again.
    pub(super) flush_idle: bool,
    /// Numbers the flushes scheduled, so one replaced by a sooner one does nothing.
    pub(super) flush_ticket: u64,
    /// An input other than live changes came since the last write was issued: what that
    /// write leaves is flushed in the next task, not once the page is idle.
    pub(super) prompt_flush: bool,
    /// A commit came since the last write was issued: what that write leaves is flushed as
    /// soon as it completes (in a microtask), so it overlaps the sending of the pushes.
    pub(super) commit_waiting: bool,
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
                lock: Some(lock),
            },
            storage: Some(Rc::new(storage)),
            source,
            link: Link::default(),
            wake_timer: None,
            durable_waiters: Waiting::default(),
            settlements: HashMap::new(),
            history_readers: HistoryReaders::default(),
            ticket_waiters: Waiting::default(),
            early_answers: Vec::new(),
            flush_queued: false,
            compact_queued: false,
            flush_timer: None,
            flush_due: u64::MAX,
            flush_idle: false,
            flush_ticket: 0,
            prompt_flush: false,
            commit_waiting: false,
        }
    }

    /// Hands `input` to the engine and executes the effects; returns the new transaction's id.
    ///
    /// The engine batches writes: what a commit changed is written by a microtask, so every
    /// commit of the current task (a burst of `insert` calls) goes in one IndexedDB transaction;
    /// so are the commits a completed write left waiting (made while it was under way), so
    /// their write overlaps the sending of the pushes it let go. What a push's answer settled
    /// waits for the next task, so the commits its settlement lets callers make join it.
    /// Changes received live wait [`RECEIVED_WRITE_DELAY_MS`], and so does what a completed
    /// write leaves when only such changes came meanwhile.
    pub fn input(&mut self, input: Input) -> Result<Option<TxId>, CoreError> {
        Ok(self.step(input)?.0)
    }

    /// Hands a request to the engine; the receiver is told its answer.
    pub(super) fn request(&mut self, input: Input) -> Result<Answer<()>, CoreError> {
        let ticket = self.step(input)?.1.expect("a request gets a ticket");
        let early = self.early_answers.iter().position(|(t, _)| *t == ticket);
        Ok(match early {
            Some(i) => answered(self.early_answers.swap_remove(i).1),
            None => self.ticket_waiters.add(ticket),
        })
    }

    /// [`Leader::input`], also returning the request's ticket.
    fn step(&mut self, input: Input) -> Result<(Option<TxId>, Option<Ticket>), CoreError> {
        // Commits, and what the write that just completed left when commits came while it
        // was under way, are written once this task's other commits joined them; anything else
        // later (see `flush_later`).
        let (soon, lazy) = match input {
            Input::Server(ServerMessage::Changes { .. }) => (false, true),
            Input::Persisted { .. } => (self.commit_waiting, !self.prompt_flush),
            Input::Tick => (false, false),
            _ => {
                self.prompt_flush = true;
                let commit = matches!(input, Input::Commit { .. });
                self.commit_waiting |= commit;
                (commit, false)
            }
        };
        let step = self.engine.handle(input, now())?;
        self.execute(step.effects);
        if step.unflushed {
            if soon {
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
                            self.early_answers.push((ticket, result));
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

    /// Writes a batch (with the origin records it carries) in the background and reports the
    /// result to the engine.
    fn persist(&mut self, write: StorageWrite) {
        let Some(storage) = self.storage.clone() else {
            return;
        };
        self.prompt_flush = false;
        self.commit_waiting = false;
        let token = write.token;
        let me = self.me.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let result = storage.write(write).await;
            // Destroyed meanwhile: this task holds the last reference; dropping it closes the
            // database.
            drop(storage);
            let Some(handle) = me.upgrade() else {
                return;
            };
            handle.with_leader(|l| match result {
                Ok(()) => l.feed(Input::Persisted { token }),
                Err(error) => {
                    l.feed(Input::PersistFailed {
                        token,
                        message: error.message,
                        quota: error.quota,
                    });
                    if error.reopened {
                        l.feed(Input::StorageReset);
                    }
                }
            });
        });
    }

    /// The names of the synced collections.
    pub(super) fn synced_collections(&self) -> Vec<String> {
        self.engine
            .collection_names()
            .filter(|name| self.engine.is_synced_collection(name))
            .map(str::to_owned)
            .collect()
    }

    /// Stops everything and lets the next tab lead. Waiting callers are rejected; requests of
    /// other tabs stay unanswered, so they re-send them to the next leader.
    pub(super) fn shut_down(&mut self) {
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
        self.history_readers.keep_copies(&self.engine);
        // A write under way keeps its own reference and closes the database when done.
        self.storage = None;
        self.tabs.lock = None;
    }
}

/// A request's failure as a JavaScript error: a `SyncError` when sync failed.
pub(super) fn request_error(error: RequestError) -> JsValue {
    match error {
        RequestError::Stopped => js::refusal(error.code(), &error.to_string()),
        RequestError::Sync(code, why) => js::error("SyncError", code, &why),
    }
}
