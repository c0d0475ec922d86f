//! The driver: runs the core engine in the page.
//!
//! Everything runs on the page's one thread. [`Handle`] owns the engine's [`Role`] in a
//! `RefCell`: the [`Leader`] (this tab holds the database's lock: it feeds inputs to the core
//! engine and executes its effects) or a [`Follower`] (another tab leads: it mirrors the
//! leader's state and forwards calls). Every entry point borrows the role, acts, and releases
//! it; user callbacks queued meanwhile run only after that, so user code never re-enters a
//! borrowed engine. Tasks (a storage write, a connection, a tab message) report back through a
//! `Weak<Handle>`.

mod connection;
mod custom;
mod follower;
mod hub;
mod leader;
mod opening;
mod pending;
mod serving;

pub use custom::CustomBackend;
pub use follower::Follower;
pub use hub::{CallbackQueue, Hub, Topic};
pub use leader::Leader;
pub use opening::open;
pub use pending::{wait, Answer};

/// Where the leading tab syncs.
#[derive(Clone)]
pub enum Source {
    /// The reference server.
    Server(crate::options::Remote),
    /// The application's own functions.
    Custom(std::rc::Rc<CustomBackend>),
}

use crate::js;
use ferrosync_core::collection::Collection;
use ferrosync_core::document::Fields;
use ferrosync_core::engine::{ConflictId, StoredTx, SyncLogEntry, SyncLogQuery};
use ferrosync_core::live_query::LiveId;
use ferrosync_core::mutation::MutationRequest;
use ferrosync_core::query::Query;
use ferrosync_core::transaction::{Transaction, TxId, TxQuery};
use ferrosync_core::CoreError;
use pending::answered;
use serde_json::Value;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsValue;

/// A durable commit: the transaction's id and end.
pub type Committed = (TxId, Rc<Settlement>);

/// The engine, as this tab runs it.
pub enum Role {
    /// This tab leads.
    Leader(Box<Leader>),
    /// Another tab leads.
    Follower(Box<Follower>),
    /// `destroy()` was called.
    Destroyed,
}

/// The engine and its driver, shared by the JavaScript objects and the tasks.
pub struct Handle {
    role: RefCell<Role>,
    callbacks: Rc<CallbackQueue>,
}

/// What JavaScript objects hold.
pub type Shared = Rc<Handle>;

impl Handle {
    /// A handle around the role `build` makes (given its weak self-reference and hub).
    pub fn new(
        build: impl FnOnce(std::rc::Weak<Handle>, Hub) -> Result<Role, JsValue>,
    ) -> Result<Shared, JsValue> {
        let callbacks = Rc::new(CallbackQueue::default());
        let mut failed = None;
        let handle = Rc::new_cyclic(|me| {
            let role = build(me.clone(), Hub::new(callbacks.clone())).unwrap_or_else(|e| {
                failed = Some(e);
                Role::Destroyed
            });
            Handle {
                role: RefCell::new(role),
                callbacks,
            }
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(handle),
        }
    }

    /// Runs `f` on the role, then the callbacks it queued.
    pub fn with<R>(&self, f: impl FnOnce(&mut Role) -> R) -> Result<R, JsValue> {
        let result = {
            let mut role = self.role.try_borrow_mut().map_err(|_| {
                js::error(
                    "Error",
                    "the engine cannot be called from inside conflictResolver or merge; they \
                     must be pure",
                )
            })?;
            if let Role::Destroyed = *role {
                return Err(js::destroyed());
            }
            f(&mut role)
        };
        self.callbacks.drain();
        Ok(result)
    }

    /// Runs `f` if this tab leads (tasks of a leader use it; they stop mattering otherwise).
    pub fn with_leader(&self, f: impl FnOnce(&mut Leader)) {
        let _ = self.with(|role| {
            if let Role::Leader(leader) = role {
                f(leader);
            }
        });
    }

    /// Replaces the role (a follower taking over as leader).
    pub fn replace(&self, f: impl FnOnce(Role) -> Role) {
        if let Ok(mut role) = self.role.try_borrow_mut() {
            let old = std::mem::replace(&mut *role, Role::Destroyed);
            *role = f(old);
        }
        self.callbacks.drain();
    }
}

/// A transaction's end, for `TransactionHandle.settled()`. It is kept as storage keeps it (a
/// few times smaller than the transaction) and decoded when read: a handle lives until the
/// page collects it, and a burst of writes leaves many.
#[derive(Default)]
pub struct Settlement {
    finished: RefCell<Option<StoredTx>>,
    waiters: RefCell<Vec<pending::Pending<()>>>,
}

impl Settlement {
    /// Waits for the end: the transaction, completed or failed (with its `error`); `None` if
    /// the engine was destroyed first.
    pub async fn wait(&self) -> Option<Transaction> {
        if self.finished.borrow().is_none() {
            let (pending, answer) = pending::Pending::new();
            self.waiters.borrow_mut().push(pending);
            answer.await.ok()?.ok()?;
        }
        self.finished()
    }

    /// The engine is gone: waiters are told there will be no end.
    pub fn abandon(&self) {
        self.waiters.borrow_mut().clear();
    }

    /// The finished transaction, if it has finished.
    pub fn finished(&self) -> Option<Transaction> {
        let finished = self.finished.borrow();
        let stored = finished.as_ref()?;
        Some(
            stored
                .decode()
                .expect("a transaction reads back as it was encoded"),
        )
    }

    /// Records the end and wakes the waiters.
    pub fn settle(&self, tx: &Transaction) {
        self.settle_stored(StoredTx::of(tx));
    }

    /// Records the end, as storage holds it, and wakes the waiters.
    pub fn settle_stored(&self, stored: StoredTx) {
        *self.finished.borrow_mut() = Some(stored);
        for waiter in self.waiters.borrow_mut().drain(..) {
            waiter.answer(Ok(()));
        }
    }
}

impl Role {
    /// A collection's visible documents.
    pub fn collection(&self, name: &str) -> Result<&Collection, CoreError> {
        match self {
            Role::Leader(l) => l.engine.collection(name),
            Role::Follower(f) => f.collection(name),
            Role::Destroyed => Err(CoreError::UnknownCollection(name.into())),
        }
    }

    /// Commits writes as one transaction (visible at once).
    pub fn commit(
        &mut self,
        requests: Vec<MutationRequest>,
        metadata: Option<Value>,
    ) -> Result<Answer<Committed>, CoreError> {
        match self {
            Role::Leader(l) => l.commit(requests, metadata).map(|(_, durable)| durable),
            Role::Follower(f) => f.commit(requests, metadata),
            Role::Destroyed => Err(CoreError::NotLoaded),
        }
    }

    /// `hardDelete`: told once durable.
    pub fn hard_delete(&mut self, collection: &str, id: String) -> Result<Answer<()>, CoreError> {
        match self {
            Role::Leader(l) => l.hard_delete(collection, id),
            Role::Follower(f) => f.hard_delete(collection, id),
            Role::Destroyed => Err(CoreError::NotLoaded),
        }
    }

    /// `resolveConflict`.
    pub fn resolve_conflict(&mut self, id: ConflictId, fields: Fields) -> Result<(), CoreError> {
        match self {
            Role::Leader(l) => l.resolve_conflict(id, fields),
            Role::Follower(f) => f.resolve_conflict(id, fields),
            Role::Destroyed => Err(CoreError::NotLoaded),
        }
    }

    /// `forceSync`/`push`/`pull`: told once in sync, or of the failure.
    pub fn sync_now(&mut self, push: bool, pull: bool) -> Answer<()> {
        match self {
            Role::Leader(l) => l.sync_now(push, pull),
            Role::Follower(f) => {
                f.forward_done(crate::tabs::messages::Request::SyncNow { push, pull })
            }
            Role::Destroyed => closed(),
        }
    }

    /// `flush`: told once everything in memory is durable.
    pub fn flush(&mut self) -> Answer<()> {
        match self {
            Role::Leader(l) => l.flush(),
            Role::Follower(f) => f.forward_done(crate::tabs::messages::Request::Flush),
            Role::Destroyed => closed(),
        }
    }

    /// `start`.
    pub fn start(&mut self) -> Answer<()> {
        match self {
            Role::Leader(l) => answered(l.start_sync()),
            Role::Follower(f) => f.forward_done(crate::tabs::messages::Request::Start),
            Role::Destroyed => closed(),
        }
    }

    /// `stop`.
    pub fn stop(&mut self) -> Answer<()> {
        match self {
            Role::Leader(l) => {
                l.stop_sync();
                answered(Ok(()))
            }
            Role::Follower(f) => f.forward_done(crate::tabs::messages::Request::Stop),
            Role::Destroyed => closed(),
        }
    }

    /// The client id.
    pub fn client_id(&self) -> String {
        match self {
            Role::Leader(l) => l.engine.client_id().to_owned(),
            Role::Follower(f) => f.client_id(),
            Role::Destroyed => String::new(),
        }
    }

    /// One transaction's view, while this tab knows it.
    pub fn transaction(&self, id: TxId) -> Option<JsValue> {
        match self {
            Role::Leader(l) => l.engine.transaction(id).map(crate::views::transaction),
            Role::Follower(f) => f.transaction(id),
            Role::Destroyed => None,
        }
    }

    /// `transactions(query)`.
    pub fn transactions(&self, query: &TxQuery) -> JsValue {
        match self {
            Role::Leader(l) => {
                crate::views::transactions(l.engine.query_transactions(query).into_iter())
            }
            Role::Follower(f) => f.transactions(query),
            Role::Destroyed => JsValue::UNDEFINED,
        }
    }

    /// `getLockedObjects()`.
    pub fn locked_objects(&self) -> JsValue {
        match self {
            Role::Leader(l) => crate::views::locked_objects(&l.engine.locked_objects()),
            Role::Follower(f) => f.locked_objects(),
            Role::Destroyed => JsValue::UNDEFINED,
        }
    }

    /// `syncLog(query)`: entries newest first.
    pub fn sync_log(&self, query: &SyncLogQuery) -> Vec<SyncLogEntry> {
        match self {
            Role::Leader(l) => l.engine.sync_log(query).into_iter().cloned().collect(),
            Role::Follower(f) => f.sync_log(query),
            Role::Destroyed => Vec::new(),
        }
    }

    /// `conflicts()`.
    pub fn conflicts(&self) -> JsValue {
        match self {
            Role::Leader(l) => {
                js::to_js(&js::Json(&crate::views::conflicts(&l.engine.conflicts())))
            }
            Role::Follower(f) => f.conflicts(),
            Role::Destroyed => JsValue::UNDEFINED,
        }
    }

    /// The status or stats now.
    pub fn current(&self, topic: Topic) -> JsValue {
        match self {
            Role::Leader(l) => l.current(topic),
            Role::Follower(f) => f.current(topic),
            Role::Destroyed => JsValue::UNDEFINED,
        }
    }

    /// Follows `query` on a collection for a subscriber (see `Collection::watch`).
    pub fn watch(&mut self, collection: &str, query: Query) -> Result<LiveId, CoreError> {
        match self {
            Role::Leader(l) => l.engine.watch(collection, query),
            Role::Follower(f) => f.watch(collection, query),
            Role::Destroyed => Err(CoreError::NotLoaded),
        }
    }

    /// Removes a subscriber, and its live query's subscription if it had one.
    pub fn unlisten(&mut self, listener: u64) {
        let live = self.hub().and_then(|hub| hub.unlisten(listener));
        if let Some((collection, id)) = live {
            match self {
                Role::Leader(l) => l.engine.unwatch(&collection, id),
                Role::Follower(f) => f.unwatch(&collection, id),
                Role::Destroyed => {}
            }
        }
    }

    /// The subscribers.
    pub fn hub(&mut self) -> Option<&mut Hub> {
        match self {
            Role::Leader(l) => Some(&mut l.hub),
            Role::Follower(f) => Some(&mut f.hub),
            Role::Destroyed => None,
        }
    }

    /// Stops everything; later calls fail.
    pub fn destroy(&mut self) {
        match std::mem::replace(self, Role::Destroyed) {
            Role::Leader(mut l) => l.destroy(),
            Role::Follower(mut f) => f.destroy(),
            Role::Destroyed => {}
        }
    }
}

/// An answer already given: the engine is gone.
fn closed() -> Answer<()> {
    answered(Err(js::destroyed()))
}
