//! `engine.collection(name)`: reads from memory, optimistic writes, live changes, live
//! queries. The package entry (`js/src/index.ts`) wraps `get` and `find` with a cache that
//! keeps each document's object until it changes, through `_ids`, `_docs` and `_onInvalidate`.

use super::{commit, delete_request, insert_request, once_fn, settled, unlisten, update_request};
use crate::driver::Shared;
use crate::js;
use crate::views;
use ferrosync_core::query::Query;
use ferrosync_core::Code;
use js_sys::{Array, Function, Promise};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// Parsed queries kept by their JSON text (a component asks the same ones again and again).
const QUERIES_KEPT: usize = 32;

/// A collection of documents.
#[wasm_bindgen(skip_typescript)]
pub struct Collection {
    shared: Shared,
    name: String,
    /// The latest parsed queries, by their JSON text.
    queries: RefCell<Vec<(String, Rc<Query>)>>,
}

impl Collection {
    pub(super) fn new(shared: Shared, name: String) -> Self {
        Collection {
            shared,
            name,
            queries: RefCell::default(),
        }
    }

    /// The query `{ where, sort, offset, limit, includeDeleted }` (everything when absent).
    fn query(&self, query: &JsValue) -> Result<Rc<Query>, JsValue> {
        let text = if query.is_undefined() || query.is_null() {
            String::from("{}")
        } else {
            js::json_text(query, "the query")?
        };
        if let Some((_, parsed)) = self.queries.borrow().iter().find(|(t, _)| *t == text) {
            return Ok(parsed.clone());
        }
        let value = serde_json::from_str(&text)
            .map_err(|e| js::refusal(Code::InvalidQuery, &format!("the query: {e}")))?;
        let parsed = Rc::new(Query::from_json(&value).map_err(js::core_error)?);
        let mut kept = self.queries.borrow_mut();
        if kept.len() >= QUERIES_KEPT {
            kept.remove(0);
        }
        kept.push((text, parsed.clone()));
        Ok(parsed)
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
                .filter(|doc| !doc.deleted())
                .map_or(JsValue::UNDEFINED, views::document))
        })?
    }

    /// The documents matching `{ where, sort, offset, limit, includeDeleted }`.
    pub fn find(&self, query: JsValue) -> Result<JsValue, JsValue> {
        let query = self.query(&query)?;
        self.shared.with(|role| {
            let collection = role.collection(&self.name).map_err(js::core_error)?;
            Ok(views::documents(collection.find(&query).into_iter()))
        })?
    }

    /// How many documents match (all live documents without a query).
    pub fn count(&self, query: JsValue) -> Result<usize, JsValue> {
        let query = self.query(&query)?;
        self.shared.with(|role| {
            let collection = role.collection(&self.name).map_err(js::core_error)?;
            Ok(collection.count_matching(&query))
        })?
    }

    /// `subscribe(callback)`: calls `callback(changes)` after every change to the collection's
    /// visible documents. `subscribe(query, callback)`: after every change to the query's
    /// results (shared with every subscriber of the same query; `find` and `count` with it read
    /// them). Returns the function that unsubscribes.
    pub fn subscribe(&self, first: JsValue, second: JsValue) -> Result<JsValue, JsValue> {
        let callback = |value: JsValue| {
            value
                .dyn_into::<Function>()
                .map_err(|_| js::invalid("subscribe needs a callback function"))
        };
        let id = if second.is_undefined() {
            let callback = callback(first)?;
            self.shared
                .with(|role| role.hub().listen_collection(&self.name, callback))?
        } else {
            let (query, callback) = (self.query(&first)?, callback(second)?);
            self.shared.with(|role| {
                let live = role
                    .watch(&self.name, (*query).clone())
                    .map_err(js::core_error)?;
                Ok::<_, JsValue>(role.hub().listen_live(&self.name, query, live, callback))
            })??
        };
        let shared = self.shared.clone();
        Ok(once_fn(move || {
            unlisten(&shared, id);
        }))
    }

    /// The ids of the documents `find(query)` returns, in order (for the package's cache).
    #[wasm_bindgen(js_name = "_ids")]
    pub fn ids(&self, query: JsValue) -> Result<JsValue, JsValue> {
        let query = self.query(&query)?;
        self.shared.with(|role| {
            let collection = role.collection(&self.name).map_err(js::core_error)?;
            Ok(views::ids(|each| collection.find_ids(&query, each)))
        })?
    }

    /// The visible documents (tombstones included) with these ids, `null` for those missing;
    /// without ids, every visible document (for the package's cache).
    #[wasm_bindgen(js_name = "_docs")]
    pub fn docs(&self, ids: Option<Array>) -> Result<JsValue, JsValue> {
        self.shared.with(|role| {
            let collection = role.collection(&self.name).map_err(js::core_error)?;
            Ok(match ids {
                Some(ids) => {
                    let ids: Vec<String> = ids.iter().filter_map(|id| id.as_string()).collect();
                    views::maybe_documents(ids.iter().map(|id| collection.get(id)))
                }
                None => views::documents(collection.docs()),
            })
        })?
    }

    /// Calls `f(ids)` at once (not queued behind other callbacks) whenever documents of the
    /// collection change, so the package's cache is never stale; returns the function that
    /// stops it.
    #[wasm_bindgen(js_name = "_onInvalidate")]
    pub fn on_invalidate(&self, f: Function) -> Result<JsValue, JsValue> {
        let id = self
            .shared
            .with(|role| role.hub().listen_invalidate(&self.name, f))?;
        let shared = self.shared.clone();
        Ok(once_fn(move || {
            unlisten(&shared, id);
        }))
    }
}
