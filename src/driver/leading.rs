//! What the leading tab does when called: reads answer from its engine; writes and commands
//! are inputs to it, answered by its effects.

use super::connection::NO_SOURCE;
use super::leader::Leader;
use super::pending::{answered, Answer};
use super::{Committed, Follower, Hub, Role, Settlement, Topic};
use crate::tabs::messages::TabMessage;
use crate::{js, views};
use ferrosync_core::collection::Collection;
use ferrosync_core::document::Fields;
use ferrosync_core::engine::{ConflictId, Input, SyncLogEntry, SyncLogQuery, SyncStats};
use ferrosync_core::live_query::LiveId;
use ferrosync_core::mutation::MutationRequest;
use ferrosync_core::query::Query;
use ferrosync_core::transaction::{TxId, TxQuery};
use ferrosync_core::{Code, CoreError};
use serde_json::Value;
use wasm_bindgen::JsValue;

/// The leader answers from its engine.
impl Role for Leader {
    fn collection(&self, name: &str) -> Result<&Collection, CoreError> {
        self.engine.collection(name)
    }

    fn commit(
        &mut self,
        requests: Vec<MutationRequest>,
        metadata: Option<Value>,
    ) -> Result<Answer<Committed>, CoreError> {
        self.commit_tx(requests, metadata)
            .map(|(_, durable)| durable)
    }

    /// `hardDelete`: a receiver told once the removal is in IndexedDB.
    /// It waits while storage is failing (the write is retried).
    fn hard_delete(&mut self, collection: &str, id: String) -> Result<Answer<()>, CoreError> {
        self.request(Input::HardDelete {
            collection: collection.into(),
            id,
        })
    }

    /// `flush`: a receiver told once everything the engine holds is in IndexedDB (it waits
    /// while storage is failing).
    fn flush(&mut self) -> Answer<()> {
        self.request(Input::Flush)
            .unwrap_or_else(|e| answered(Err(js::core_error(e))))
    }

    /// `resolveConflict`.
    fn resolve_conflict(&mut self, id: ConflictId, fields: Fields) -> Result<(), CoreError> {
        self.input(Input::ResolveConflict { id, fields })
            .map(|_| ())
    }

    /// The status or stats now.
    fn current(&self, topic: Topic) -> JsValue {
        match topic {
            Topic::Status => js::to_js(&self.engine.status()),
            Topic::Stats => js::to_js::<SyncStats>(self.engine.stats()),
            Topic::Progress => js::to_js(&self.engine.progress()),
        }
    }

    /// Asks for a push and/or pull; the receiver is told when sync settles (idle), or fails.
    fn sync_now(&mut self, push: bool, pull: bool) -> Answer<()> {
        if self.source.is_none() {
            return answered(Err(js::refusal(Code::InvalidState, NO_SOURCE)));
        }
        self.request(Input::SyncNow { push, pull })
            .unwrap_or_else(|e| answered(Err(js::core_error(e))))
    }

    fn start(&mut self) -> Answer<()> {
        answered(self.start_sync())
    }

    fn stop(&mut self) -> Answer<()> {
        self.stop_sync();
        answered(Ok(()))
    }

    fn client_id(&self) -> String {
        self.engine.client_id().to_owned()
    }

    fn transaction(&self, id: TxId) -> Option<JsValue> {
        self.engine.transaction(id).map(views::transaction)
    }

    fn keep_copy(&self, settlement: &Settlement) {
        settlement.keep_copy(&self.engine);
    }

    fn transactions(&self, query: &TxQuery) -> JsValue {
        views::transactions(self.engine.query_transactions(query).into_iter())
    }

    fn locked_objects(&self) -> JsValue {
        views::locked_objects(&self.engine.locked_objects())
    }

    fn sync_log(&self, query: &SyncLogQuery) -> Vec<SyncLogEntry> {
        self.engine.sync_log(query).into_iter().cloned().collect()
    }

    fn conflicts(&self) -> JsValue {
        js::to_js(&js::Json(&views::conflicts(&self.engine.conflicts())))
    }

    fn watch(&mut self, collection: &str, query: Query) -> Result<LiveId, CoreError> {
        self.engine.watch(collection, query)
    }

    fn unwatch(&mut self, collection: &str, id: LiveId) {
        self.engine.unwatch(collection, id);
    }

    fn hub(&mut self) -> &mut Hub {
        &mut self.hub
    }

    fn on_tab_message(&mut self, message: TabMessage) {
        self.serve_message(message);
    }

    fn destroy(&mut self) {
        self.shut_down();
    }

    fn leader(&mut self) -> Option<&mut Leader> {
        Some(self)
    }

    fn into_follower(self: Box<Self>) -> Result<Box<Follower>, Box<dyn Role>> {
        Err(self)
    }
}
