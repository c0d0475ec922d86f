//! `engine.collection(name)`: reads from memory, optimistic writes, live changes.

use super::{
    commit, delete_request, insert_request, once_fn, settled, unlisten, update_request, views,
};
use crate::driver::Shared;
use crate::js;
use ferrosync_core::query::Query;
use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;

/// A collection of documents.
#[wasm_bindgen(skip_typescript)]
pub struct Collection {
    shared: Shared,
    name: String,
}

impl Collection {
    pub(super) fn new(shared: Shared, name: String) -> Self {
        Collection { shared, name }
    }

    fn query(query: &JsValue) -> Result<Query, JsValue> {
        if query.is_undefined() || query.is_null() {
            return Ok(Query::default());
        }
        Query::from_json(&js::to_json(query, "the query")?).map_err(js::core_error)
    }
}

#[wasm_bindgen]
impl Collection {
    /// The collection's name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Inserts a document with a new `_id` (`options.metadata` is kept with the write);
    /// resolves to its transaction once durable.
    pub fn insert(&self, doc: JsValue, options: JsValue) -> Promise {
        let request = insert_request(&self.name, &doc, &options);
        commit(&self.shared, request.map(|r| vec![r]), None)
    }

    /// Sets the given fields of a document; resolves to its transaction once durable.
    pub fn update(&self, id: String, patch: JsValue, options: JsValue) -> Promise {
        let request = update_request(&self.name, id, &patch, &options);
        commit(&self.shared, request.map(|r| vec![r]), None)
    }

    /// Soft-deletes a document (a synced tombstone); resolves once durable.
    pub fn delete(&self, id: String, options: JsValue) -> Promise {
        let request = delete_request(&self.name, id, &options);
        commit(&self.shared, request.map(|r| vec![r]), None)
    }

    /// Removes the local copy of a document for good (nothing is sent); resolves once durable.
    #[wasm_bindgen(js_name = hardDelete)]
    pub fn hard_delete(&self, id: String) -> Promise {
        settled(
            self.shared
                .with(|role| role.hard_delete(&self.name, id).map_err(js::core_error))
                .and_then(|done| done),
        )
    }

    /// The document with this `_id`, or `undefined` (also for a soft-deleted one).
    pub fn get(&self, id: &str) -> Result<JsValue, JsValue> {
        self.shared.with(|role| {
            let collection = role.collection(&self.name).map_err(js::core_error)?;
            Ok(collection
                .get(id)
                .filter(|doc| !doc.deleted)
                .map_or(JsValue::UNDEFINED, views::document))
        })?
    }

    /// The documents matching `{ where, sort, limit, includeDeleted }`.
    pub fn find(&self, query: JsValue) -> Result<JsValue, JsValue> {
        let query = Self::query(&query)?;
        self.shared.with(|role| {
            let collection = role.collection(&self.name).map_err(js::core_error)?;
            Ok(views::documents(collection.find(&query).into_iter()))
        })?
    }

    /// How many documents match (all live documents without a query).
    pub fn count(&self, query: JsValue) -> Result<usize, JsValue> {
        let filtered = !(query.is_undefined() || query.is_null());
        let query = Self::query(&query)?;
        self.shared.with(|role| {
            let collection = role.collection(&self.name).map_err(js::core_error)?;
            Ok(if filtered {
                collection.count_matching(&query)
            } else {
                collection.count()
            })
        })?
    }

    /// Calls `callback(changes)` after every change to the collection's visible documents;
    /// returns the function that unsubscribes.
    pub fn subscribe(&self, callback: Function) -> Result<JsValue, JsValue> {
        let id = self.shared.with(|role| {
            role.hub()
                .map(|hub| hub.listen_collection(&self.name, callback))
        })?;
        let shared = self.shared.clone();
        Ok(once_fn(move || {
            unlisten(&shared, id);
        }))
    }
}
