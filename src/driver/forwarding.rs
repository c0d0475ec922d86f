//! What a following tab does when called: reads answer from its mirror of the leading tab's
//! state; writes apply to the mirror at once (checked as the leader will check them) and, with
//! every command, are forwarded to the leading tab, which answers them.

use super::follower::{Caller, Follower};
use super::pending::{Answer, Pending};
use super::{Committed, Hub, Role, Settlement, Topic};
use crate::js;
use crate::tabs::messages::{Request, TabMessage};
use ferrosync_core::collection::Collection;
use ferrosync_core::document::{Document, Fields};
use ferrosync_core::engine::{
    ConflictId, SyncLogEntry, SyncLogQuery, SyncProgress, SyncStats, SyncStatus,
};
use ferrosync_core::live_query::LiveId;
use ferrosync_core::mutation::MutationRequest;
use ferrosync_core::query::Query;
use ferrosync_core::transaction::{locked_objects, TxId, TxQuery};
use ferrosync_core::CoreError;
use serde_json::Value;
use std::collections::HashMap;
use wasm_bindgen::JsValue;

/// A follower answers from its mirror and forwards writes and commands to the leading tab.
impl Role for Follower {
    /// Follows `query` on a mirrored collection (see `Collection::watch`).
    fn watch(&mut self, name: &str, query: Query) -> Result<LiveId, CoreError> {
        self.collections
            .get_mut(name)
            .map(|c| c.watch(query))
            .ok_or_else(|| CoreError::UnknownCollection(name.into()))
    }

    /// Leaves a live query of a mirrored collection.
    fn unwatch(&mut self, name: &str, id: LiveId) {
        if let Some(c) = self.collections.get_mut(name) {
            c.unwatch(id);
        }
    }

    /// A mirrored collection.
    fn collection(&self, name: &str) -> Result<&Collection, CoreError> {
        self.collections
            .get(name)
            .ok_or_else(|| CoreError::UnknownCollection(name.into()))
    }

    /// Applies writes to the mirror (checked as the leader will check them) and forwards them.
    fn commit(
        &mut self,
        requests: Vec<MutationRequest>,
        metadata: Option<Value>,
    ) -> Result<Answer<Committed>, CoreError> {
        if requests.is_empty() {
            return Err(CoreError::EmptyTransaction);
        }
        // Each object's newest write (the map type the engine's own check of writes uses).
        let mut written: HashMap<(&str, &str), Option<Document>> = HashMap::new();
        for r in &requests {
            let collection = self.collection(&r.collection)?;
            let key = (r.collection.as_str(), r.doc_id.as_str());
            let current = match written.get(&key) {
                Some(doc) => doc.clone(),
                None => collection.get(&r.doc_id).cloned(),
            };
            let hlc = current.as_ref().map(|d| d.hlc()).unwrap_or_default();
            let doc =
                r.op.apply(&r.doc_id, current.as_ref(), hlc)
                    .map_err(|e| e.refusal(&r.collection, &r.doc_id))?;
            written.insert(key, Some(doc));
        }
        let mut changes = Vec::new();
        for r in &requests {
            let key = (r.collection.as_str(), r.doc_id.as_str());
            let Some(Some(doc)) = written.remove(&key) else {
                continue;
            };
            if let Some(change) = self
                .collections
                .get_mut(&r.collection)
                .and_then(|c| c.set_synced(doc, None))
            {
                changes.push(change);
            }
        }
        self.notify(&changes);
        let (pending, answer) = Pending::new();
        let request = Request::Commit { requests, metadata };
        self.forward(request, Caller::Commit(pending));
        Ok(answer)
    }

    /// Forwards `hardDelete` (checked against the mirror first).
    fn hard_delete(&mut self, collection: &str, id: String) -> Result<Answer<()>, CoreError> {
        if self.collection(collection)?.get(&id).is_none() {
            return Err(CoreError::NotFound {
                collection: collection.into(),
                id,
            });
        }
        Ok(self.forward_done(Request::HardDelete {
            collection: collection.into(),
            id,
        }))
    }

    /// Forwards `resolveConflict` (checked against the mirrored inbox first).
    fn resolve_conflict(&mut self, id: ConflictId, fields: Fields) -> Result<(), CoreError> {
        let id = id.to_string();
        let parked = self
            .state
            .as_ref()
            .and_then(|s| s.conflicts.as_array())
            .is_some_and(|list| list.iter().any(|c| c["id"] == id.as_str()));
        if !parked {
            return Err(CoreError::UnknownConflict(id));
        }
        let done = self.forward_done(Request::ResolveConflict { id, fields });
        wasm_bindgen_futures::spawn_local(async move {
            if let Ok(Err(e)) = done.await {
                web_sys::console::error_2(&"ferrosync: resolveConflict failed".into(), &e);
            }
        });
        Ok(())
    }

    /// The leader's client id.
    fn client_id(&self) -> String {
        self.state
            .as_ref()
            .map(|s| s.client_id.clone())
            .unwrap_or_default()
    }

    /// One mirrored transaction.
    fn transaction(&self, id: TxId) -> Option<JsValue> {
        self.transactions.get(&id).map(crate::views::transaction)
    }

    /// A follower's settlements hold their copies already.
    fn keep_copy(&self, _settlement: &Settlement) {}

    /// The mirrored transactions `query` selects.
    fn transactions(&self, query: &TxQuery) -> JsValue {
        let page = query.select(self.transactions.values().rev());
        crate::views::transactions(page.into_iter())
    }

    /// The objects the mirrored in-flight transactions hold (ordered strategy only).
    fn locked_objects(&self) -> JsValue {
        let locked = if self.options.engine.mutation_strategy.is_ordered() {
            locked_objects(self.transactions.values())
        } else {
            Vec::new()
        };
        crate::views::locked_objects(&locked)
    }

    /// The mirrored sync log, newest first.
    fn sync_log(&self, query: &SyncLogQuery) -> Vec<SyncLogEntry> {
        self.state
            .iter()
            .flat_map(|s| query.select(s.sync_log.iter()))
            .cloned()
            .collect()
    }

    /// The mirrored conflict inbox.
    fn conflicts(&self) -> JsValue {
        match &self.state {
            Some(s) => js::to_js(&js::Json(&s.conflicts)),
            None => js_sys::Array::new().into(),
        }
    }

    /// The mirrored status or stats.
    fn current(&self, topic: Topic) -> JsValue {
        match (topic, &self.state) {
            (Topic::Status, Some(s)) => js::to_js(&s.status),
            (Topic::Stats, Some(s)) => js::to_js(&s.stats),
            (Topic::Progress, Some(s)) => js::to_js(&s.progress),
            (Topic::Status, None) => js::to_js(&SyncStatus::Offline),
            (Topic::Stats, None) => js::to_js(&SyncStats::default()),
            (Topic::Progress, None) => js::to_js(&SyncProgress::default()),
        }
    }

    fn on_tab_message(&mut self, message: TabMessage) {
        self.on_message(message);
    }

    fn destroy(&mut self) {
        self.leave();
    }

    fn sync_now(&mut self, push: bool, pull: bool) -> Answer<()> {
        self.forward_done(Request::SyncNow { push, pull })
    }

    fn flush(&mut self) -> Answer<()> {
        self.forward_done(Request::Flush)
    }

    fn start(&mut self) -> Answer<()> {
        self.forward_done(Request::Start)
    }

    fn stop(&mut self) -> Answer<()> {
        self.forward_done(Request::Stop)
    }

    fn hub(&mut self) -> &mut Hub {
        &mut self.hub
    }

    fn follower(&mut self) -> Option<&mut Follower> {
        Some(self)
    }

    fn into_follower(self: Box<Self>) -> Result<Box<Follower>, Box<dyn Role>> {
        Ok(self)
    }
}
