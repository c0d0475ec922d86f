//! What the JavaScript objects call, whichever tab leads: [`Role`], implemented by the
//! [`Leader`] (the engine runs here) and the [`Follower`] (it mirrors the leading tab's engine
//! and forwards its calls there).

use super::pending::Answer;
use super::{Follower, Hub, Leader, Settlement, Topic};
use crate::tabs::messages::TabMessage;
use ferrosync_core::collection::Collection;
use ferrosync_core::document::Fields;
use ferrosync_core::engine::{ConflictId, SyncLogEntry, SyncLogQuery};
use ferrosync_core::live_query::LiveId;
use ferrosync_core::mutation::MutationRequest;
use ferrosync_core::query::Query;
use ferrosync_core::transaction::{TxId, TxQuery};
use ferrosync_core::CoreError;
use serde_json::Value;
use std::rc::Rc;
use wasm_bindgen::JsValue;

/// A durable commit: the transaction's id and end.
pub type Committed = (TxId, Rc<Settlement>);

/// The engine as this tab runs it.
pub trait Role {
    /// A collection's visible documents.
    fn collection(&self, name: &str) -> Result<&Collection, CoreError>;
    /// Commits writes as one transaction (visible at once); answered once durable.
    fn commit(
        &mut self,
        requests: Vec<MutationRequest>,
        metadata: Option<Value>,
    ) -> Result<Answer<Committed>, CoreError>;
    /// `hardDelete`: answered once durable.
    fn hard_delete(&mut self, collection: &str, id: String) -> Result<Answer<()>, CoreError>;
    /// `resolveConflict`.
    fn resolve_conflict(&mut self, id: ConflictId, fields: Fields) -> Result<(), CoreError>;
    /// `forceSync`/`push`/`pull`: answered once in sync, or with the failure.
    fn sync_now(&mut self, push: bool, pull: bool) -> Answer<()>;
    /// `flush`: answered once everything in memory is durable.
    fn flush(&mut self) -> Answer<()>;
    /// `start`.
    fn start(&mut self) -> Answer<()>;
    /// `stop`.
    fn stop(&mut self) -> Answer<()>;
    /// The client id.
    fn client_id(&self) -> String;
    /// One transaction's view, while this tab knows it.
    fn transaction(&self, id: TxId) -> Option<JsValue>;
    /// Gives `settlement` its own copy of its finished transaction, to be read where the engine
    /// cannot be (inside a `conflictResolver` or `merge`).
    fn keep_copy(&self, settlement: &Settlement);
    /// `transactions(query)`.
    fn transactions(&self, query: &TxQuery) -> JsValue;
    /// `getLockedObjects()`.
    fn locked_objects(&self) -> JsValue;
    /// `syncLog(query)`: entries newest first.
    fn sync_log(&self, query: &SyncLogQuery) -> Vec<SyncLogEntry>;
    /// `conflicts()`.
    fn conflicts(&self) -> JsValue;
    /// The status, stats or progress now.
    fn current(&self, topic: Topic) -> JsValue;
    /// Follows `query` on a collection for a subscriber (see `Collection::watch`).
    fn watch(&mut self, collection: &str, query: Query) -> Result<LiveId, CoreError>;
    /// Leaves a live query.
    fn unwatch(&mut self, collection: &str, id: LiveId);
    /// The subscribers.
    fn hub(&mut self) -> &mut Hub;
    /// Acts on a message from another tab.
    fn on_tab_message(&mut self, message: TabMessage);
    /// Stops everything: waiting callers are rejected.
    fn destroy(&mut self);
    /// The leader, if this tab leads.
    fn leader(&mut self) -> Option<&mut Leader> {
        None
    }
    /// The follower, if another tab leads.
    fn follower(&mut self) -> Option<&mut Follower> {
        None
    }
    /// The follower, taken out (to lead), if another tab leads; else the role unchanged.
    fn into_follower(self: Box<Self>) -> Result<Box<Follower>, Box<dyn Role>>;

    /// Removes a subscriber, and its live query's subscription if it had one.
    fn unlisten(&mut self, listener: u64) {
        if let Some((collection, id)) = self.hub().unlisten(listener) {
            self.unwatch(&collection, id);
        }
    }
}
