//! A tab that follows: it mirrors the leading tab's visible documents, transactions and sync
//! state (a snapshot, then an update per leader step) and forwards every write and command to
//! it. Writes show at once in the mirror; the leader's updates then replace them with the
//! authoritative state. Unanswered requests are re-sent to a new leader, which recognises those
//! it has already committed.

use super::pending::{Answer, Pending};
use super::{Committed, Hub, Settlement, Source, Topic};
use crate::js;
use crate::options::Options;
use crate::tabs::messages::{self, LeaderState, Request, TabMessage};
use crate::tabs::Channel;
use ferrosync_core::collection::{ChangeKind, Collection, DocChange};
use ferrosync_core::document::Document;
use ferrosync_core::id_map::IdMap;
use ferrosync_core::live_query::take_live_changes;
use ferrosync_core::transaction::{Transaction, TxId};
use ferrosync_core::Code;
use gloo_timers::callback::Interval;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use web_sys::AbortController;

/// How often a follower without a snapshot says hello again.
const HELLO_EVERY_MS: u32 = 250;

/// Who waits for a forwarded request.
pub(super) enum Caller {
    /// A commit: told once durable, with the transaction's id and end.
    Commit(Pending<Committed>),
    /// Anything else.
    Done(Pending<()>),
}

impl Caller {
    /// Tells the caller the request failed.
    pub(super) fn reject(self, error: JsValue) {
        match self {
            Caller::Commit(pending) => pending.answer(Err(error)),
            Caller::Done(pending) => pending.answer(Err(error)),
        }
    }
}

/// A forwarded request not answered yet.
pub(super) struct Forwarded {
    pub request: Request,
    pub caller: Caller,
}

/// The engine as a following tab runs it.
pub struct Follower {
    /// The subscribers.
    pub hub: Hub,
    pub(super) tab: String,
    pub(super) channel: Rc<Channel>,
    pub(super) options: Options,
    /// Where this tab syncs once it leads.
    pub(super) source: Option<Source>,
    pub(super) collections: HashMap<String, Collection>,
    pub(super) transactions: IdMap<TxId, Transaction>,
    pub(super) state: Option<LeaderState>,
    /// Told when the first snapshot arrives.
    ready: Vec<Pending<()>>,
    has_snapshot: bool,
    next_seq: u64,
    pub(super) pending: IdMap<u64, Forwarded>,
    pub(super) settlements: HashMap<TxId, Rc<Settlement>>,
    hello_timer: Option<Interval>,
    /// The queued request for the database's lock (this tab leads once it is granted).
    pub(super) waiting_lock: Option<AbortController>,
}

impl Follower {
    /// A follower of the leader of `options.name`; it asks for a snapshot at once.
    pub fn new(
        hub: Hub,
        tab: String,
        channel: Rc<Channel>,
        options: Options,
        source: Option<Source>,
    ) -> Follower {
        let collections = options
            .engine
            .collections
            .iter()
            .map(|c| (c.name.clone(), c.collection()))
            .collect();
        let mut follower = Follower {
            hub,
            tab,
            channel,
            options,
            source,
            collections,
            transactions: IdMap::new(),
            state: None,
            ready: Vec::new(),
            has_snapshot: false,
            next_seq: 1,
            pending: IdMap::new(),
            settlements: HashMap::new(),
            hello_timer: None,
            waiting_lock: None,
        };
        follower.hello();
        follower
    }

    /// A receiver told once the mirror holds the leader's state.
    pub fn ready(&mut self) -> Answer<()> {
        let (tx, rx) = Pending::new();
        if self.has_snapshot {
            tx.answer(Ok(()));
        } else {
            self.ready.push(tx);
        }
        rx
    }

    /// Asks the leader for a snapshot, again every [`HELLO_EVERY_MS`] until one arrives.
    fn hello(&mut self) {
        let message = TabMessage::Hello {
            tab: self.tab.clone(),
        };
        self.channel.post(&message);
        let channel = self.channel.clone();
        self.hello_timer = Some(Interval::new(HELLO_EVERY_MS, move || {
            channel.post(&message)
        }));
    }

    /// Tells subscribers how the mirror changed, and how their queries' results did.
    pub(super) fn notify(&mut self, changes: &[DocChange]) {
        self.hub.changes(changes);
        self.hub
            .live_changes(&take_live_changes(self.collections.values_mut()));
    }

    /// Forwards a request whose answer is only "done" or an error.
    pub fn forward_done(&mut self, request: Request) -> Answer<()> {
        let (pending, answer) = Pending::new();
        self.forward(request, Caller::Done(pending));
        answer
    }

    pub(super) fn forward(&mut self, request: Request, caller: Caller) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.channel.post(&TabMessage::Request {
            tab: self.tab.clone(),
            seq,
            request: request.clone(),
        });
        self.pending.insert(seq, Forwarded { request, caller });
    }

    fn answered(&mut self, seq: u64, result: Result<messages::Reply, messages::Refusal>) {
        match (&result, self.pending.get(&seq)) {
            // A commit is answered twice: committed (keep waiting), then durable.
            (Ok(messages::Reply::Committed { tx }), Some(_)) => {
                self.settlement(*tx);
                return;
            }
            (_, None) => return,
            _ => {}
        }
        let Some(pending) = self.pending.remove(&seq) else {
            return;
        };
        let failed = result.is_err();
        match (pending.caller, result) {
            (Caller::Commit(caller), Ok(messages::Reply::Durable { tx, finished })) => {
                let settlement = self.settlement(tx);
                if let Some(finished) = finished {
                    settlement.settle(&finished);
                }
                caller.answer(Ok((tx, settlement)));
            }
            (Caller::Done(caller), Ok(_)) => caller.answer(Ok(())),
            (caller, Err(r)) => caller.reject(js::refusal(r.code, &r.message)),
            (caller, Ok(other)) => caller.reject(js::refusal(
                Code::ProtocolViolation,
                &format!("unexpected answer from the leading tab: {}", other.kind()),
            )),
        }
        // A refused write was shown optimistically: take the leader's state again.
        if failed {
            self.has_snapshot = false;
            self.hello();
        }
    }

    /// The settlement of transaction `tx` (settled at once if the mirror knows its end).
    fn settlement(&mut self, tx: TxId) -> Rc<Settlement> {
        let settlement = self.settlements.entry(tx).or_default().clone();
        if let Some(done) = self.transactions.get(&tx).filter(|t| t.state.is_terminal()) {
            settlement.settle(done);
            self.settlements.remove(&tx);
        }
        settlement
    }

    fn add_transactions(&mut self, txs: Vec<Transaction>) {
        self.hub.transactions(&txs);
        for tx in txs {
            if tx.state.is_terminal() {
                if let Some(settlement) = self.settlements.remove(&tx.id) {
                    settlement.settle(&tx);
                }
            }
            self.transactions.insert(tx.id, tx);
        }
        let finished: Vec<TxId> = self
            .transactions
            .values()
            .filter(|t| t.state.is_terminal())
            .map(|t| t.id)
            .collect();
        for id in finished.iter().take(
            finished
                .len()
                .saturating_sub(super::serving::FOLLOWER_HISTORY),
        ) {
            self.transactions.remove(id);
        }
    }

    fn set_state(&mut self, state: LeaderState) {
        let old = self.state.replace(state);
        let new = self.state.as_ref().expect("just set");
        if old.as_ref().map(|s| s.status) != Some(new.status) {
            self.hub.topic(Topic::Status, || js::to_js(&new.status));
        }
        if old.as_ref().map(|s| &s.stats) != Some(&new.stats) {
            self.hub.topic(Topic::Stats, || js::to_js(&new.stats));
        }
        if old.as_ref().map(|s| s.progress) != Some(new.progress) {
            self.hub.topic(Topic::Progress, || js::to_js(&new.progress));
        }
    }

    /// Applies the leader's changes; returns how the mirror changed.
    fn apply_changes(&mut self, changes: Vec<DocChange>) -> Vec<DocChange> {
        changes
            .into_iter()
            .filter_map(|change| {
                let collection = self.collections.get_mut(&change.collection)?;
                match (change.kind, change.doc) {
                    (ChangeKind::Removed, _) | (_, None) => collection.remove(&change.id, None),
                    (_, Some(doc)) => collection.set_synced(doc, None),
                }
            })
            .collect()
    }

    /// Makes the mirror equal to `snapshot`, telling subscribers what changed.
    fn replace_mirror(&mut self, snapshot: Vec<(String, Vec<Document>)>) {
        let mut changes = Vec::new();
        for (name, docs) in snapshot {
            let Some(collection) = self.collections.get_mut(&name) else {
                continue;
            };
            let keep: std::collections::HashSet<&str> = docs.iter().map(|d| d.id()).collect();
            let gone: Vec<String> = collection
                .docs()
                .filter(|d| !keep.contains(d.id()))
                .map(|d| d.id().to_owned())
                .collect();
            changes.extend(gone.iter().filter_map(|id| collection.remove(id, None)));
            changes.extend(
                docs.into_iter()
                    .filter_map(|d| collection.set_synced(d, None)),
            );
        }
        self.notify(&changes);
    }

    /// Acts on a message from the leader.
    pub(super) fn on_message(&mut self, message: TabMessage) {
        match message {
            TabMessage::Snapshot {
                to,
                collections,
                transactions,
                state,
            } if to == self.tab => {
                self.hello_timer = None;
                self.replace_mirror(collections);
                self.transactions.clear();
                self.add_transactions(transactions);
                self.set_state(state);
                self.has_snapshot = true;
                for ready in self.ready.drain(..) {
                    ready.answer(Ok(()));
                }
            }
            TabMessage::Update {
                changes,
                transactions,
                state,
            } if self.has_snapshot => {
                let changes = self.apply_changes(changes);
                self.notify(&changes);
                self.add_transactions(transactions);
                if let Some(state) = state {
                    self.set_state(state);
                }
            }
            TabMessage::Reply { to, seq, result } if to == self.tab => self.answered(seq, result),
            TabMessage::Leader { tab } if tab != self.tab => {
                self.hello();
                for (seq, pending) in self.pending.iter() {
                    self.channel.post(&TabMessage::Request {
                        tab: self.tab.clone(),
                        seq: *seq,
                        request: pending.request.clone(),
                    });
                }
            }
            _ => {}
        }
    }

    /// Leaves: tells the leader, withdraws from the lock queue, rejects whatever waits.
    pub(super) fn leave(&mut self) {
        self.channel.post(&TabMessage::Bye {
            tab: self.tab.clone(),
        });
        self.hello_timer = None;
        if let Some(waiting) = self.waiting_lock.take() {
            waiting.abort();
        }
        self.hub.clear();
        for pending in std::mem::take(&mut self.pending).into_values() {
            pending.caller.reject(js::destroyed());
        }
        for (_, settlement) in self.settlements.drain() {
            settlement.abandon();
        }
    }

    /// Takes the follower apart for the leader it becomes.
    pub(super) fn into_parts(mut self) -> FollowerParts {
        self.hello_timer = None;
        FollowerParts {
            hub: self.hub,
            tab: self.tab,
            channel: self.channel,
            pending: self.pending,
            settlements: self.settlements,
            mirror: self.collections,
        }
    }
}

/// What a follower hands to the leader it becomes.
pub(super) struct FollowerParts {
    pub hub: Hub,
    pub tab: String,
    pub channel: Rc<Channel>,
    pub pending: IdMap<u64, Forwarded>,
    pub settlements: HashMap<TxId, Rc<Settlement>>,
    pub mirror: HashMap<String, Collection>,
}
