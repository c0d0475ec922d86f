//! `SyncEngine`: opening, sync control, transactions, status, the sync log and conflicts.

use super::{
    commit, fields_of, metadata, once_fn, settled, unlisten, Collection, Observable,
    TransactionScope,
};
use crate::driver::{CustomBackend, Shared, Source, Topic};
use crate::js::{self, now};
use crate::options::{self, Callbacks};
use crate::storage::Storage;
use crate::views;
use ferrosync_core::conflict::{ConflictInput, ResolverFn};
use ferrosync_core::document::Document;
use ferrosync_core::engine::{ConflictId, SyncLogQuery};
use ferrosync_core::scheduler::MergeFn;
use ferrosync_core::transaction::TxQuery;
use ferrosync_core::Code;
use js_sys::{Function, Promise};
use serde::de::DeserializeOwned;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

/// A sync engine over one IndexedDB database.
#[wasm_bindgen(skip_typescript)]
pub struct SyncEngine {
    shared: Shared,
    name: String,
}

#[wasm_bindgen]
impl SyncEngine {
    /// Opens (or creates) the database named in `config`, restores documents and unfinished
    /// transactions, and starts syncing when `serverUrl` or a custom backend (`sync`,
    /// `mutationFn`) is set (unless `autoStart: false`).
    pub async fn open(config: JsValue) -> Result<SyncEngine, JsValue> {
        console_error_panic_hook::set_once();
        if !config.is_object() {
            return Err(js::refusal(
                Code::InvalidConfig,
                "SyncEngine.open needs a config object",
            ));
        }
        let custom = CustomBackend::from_config(&config)?;
        let callbacks = Callbacks {
            resolver: js::function(&config, "conflictResolver")?.map(resolver),
            merge: js::function(&js::get(&config, "mutationStrategy"), "merge")?.map(merge),
            backend: CustomBackend::present(custom.as_ref()),
        };
        let mut options = options::parse(&js::to_json(&config, "the config")?, callbacks)
            .map_err(|e| js::refusal(Code::InvalidConfig, &e.to_string()))?;
        options.engine.seed = random_seed();
        if options.request_persistence {
            request_persistence();
        }
        let name = options.name.clone();
        let source = match (&options.remote, custom) {
            (Some(remote), _) => Some(Source::Server(remote.clone())),
            (None, Some(custom)) => Some(Source::Custom(Rc::new(custom))),
            (None, None) => None,
        };
        let shared = crate::driver::open(options, source).await?;
        Ok(SyncEngine { shared, name })
    }

    /// Deletes a database (close every engine using it first).
    #[wasm_bindgen(js_name = deleteDatabase)]
    pub async fn delete_database(name: String) -> Result<(), JsValue> {
        Storage::delete(&name)
            .await
            .map_err(|e| js::error("StorageError", Code::StorageFailed, &e))
    }

    /// The IndexedDB database name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// This database's client id (what the server knows it by).
    #[wasm_bindgen(getter, js_name = clientId)]
    pub fn client_id(&self) -> Result<String, JsValue> {
        self.shared.with(|role| role.client_id())
    }

    /// A configured collection.
    pub fn collection(&self, name: String) -> Result<Collection, JsValue> {
        self.shared
            .with(|role| role.collection(&name).map(|_| ()))?
            .map_err(js::core_error)?;
        Ok(Collection::new(self.shared.clone(), name))
    }

    /// Runs `body(t)`, then commits every write it made through `t` as one transaction (with
    /// `options.metadata`); nothing is written if it throws. Resolves to the transaction once
    /// durable.
    pub fn transaction(&self, body: Function, options: JsValue) -> Promise {
        let shared = self.shared.clone();
        future_to_promise(async move {
            let metadata = metadata(&options, "transaction's options")?;
            let scope = TransactionScope::new(shared.clone());
            let writes = scope.writes();
            let result = body.call1(&JsValue::UNDEFINED, &JsValue::from(scope));
            let result = match result {
                Ok(value) => JsFuture::from(Promise::resolve(&value)).await.map(|_| ()),
                Err(e) => Err(e),
            };
            let requests = writes.take();
            result?;
            JsFuture::from(commit(&shared, Ok(requests), metadata)).await
        })
    }

    /// The sync status: `'idle' | 'syncing' | 'error' | 'offline'`.
    #[wasm_bindgen(js_name = getStatus)]
    pub fn get_status(&self) -> Observable {
        Observable::new(self.shared.clone(), Topic::Status)
    }

    /// The sync counters: `{ pushCount, pullCount, conflictCount, lastSyncAt, lastError }`.
    #[wasm_bindgen(js_name = getStats)]
    pub fn get_stats(&self) -> Observable {
        Observable::new(self.shared.clone(), Topic::Stats)
    }

    /// The sync progress: `{ unsyncedWrites, pull: { received, total } | null }`.
    #[wasm_bindgen(js_name = getProgress)]
    pub fn get_progress(&self) -> Observable {
        Observable::new(self.shared.clone(), Topic::Progress)
    }

    /// Transactions, oldest first, with their history: `{ limit, before, state }` page
    /// through them (the `limit` newest below `before`).
    pub fn transactions(&self, query: JsValue) -> Result<JsValue, JsValue> {
        let query: TxQuery = read_query(&query, "transactions")?;
        self.shared.with(|role| role.transactions(&query))
    }

    /// The objects in-flight ordered transactions hold: `[{ collection, id, transaction }]`.
    #[wasm_bindgen(js_name = getLockedObjects)]
    pub fn get_locked_objects(&self) -> Result<JsValue, JsValue> {
        self.shared.with(|role| role.locked_objects())
    }

    /// Calls `callback(transaction)` on every transaction change; returns the unsubscribe
    /// function.
    #[wasm_bindgen(js_name = onTransaction)]
    pub fn on_transaction(&self, callback: Function) -> Result<JsValue, JsValue> {
        let id = self
            .shared
            .with(|role| role.hub().listen_transactions(callback))?;
        let shared = self.shared.clone();
        Ok(once_fn(move || unlisten(&shared, id)))
    }

    /// Recent sync runs, newest first: `{ limit, status, syncType, from, to }` filter them.
    #[wasm_bindgen(js_name = syncLog)]
    pub fn sync_log(&self, query: JsValue) -> Result<JsValue, JsValue> {
        let query: SyncLogQuery = read_query(&query, "syncLog")?;
        self.shared.with(|role| js::to_js(&role.sync_log(&query)))
    }

    /// Conflicts waiting in the inbox (custom resolver returned `undefined`).
    pub fn conflicts(&self) -> Result<JsValue, JsValue> {
        self.shared.with(|role| role.conflicts())
    }

    /// Resolves a parked conflict with these fields; they are sent as the document.
    #[wasm_bindgen(js_name = resolveConflict)]
    pub fn resolve_conflict(&self, id: String, doc: JsValue) -> Result<(), JsValue> {
        let id: ConflictId = id.parse().map_err(js::core_error)?;
        let fields = fields_of(&doc, "the resolved document")?;
        self.shared
            .with(|role| role.resolve_conflict(id, fields))?
            .map_err(js::core_error)
    }

    /// Starts syncing (connects; reconnects after losses).
    pub fn start(&self) -> Promise {
        settled(self.shared.with(|role| role.start()))
    }

    /// Stops syncing and closes the connection; local reads and writes go on.
    pub fn stop(&self) -> Promise {
        settled(self.shared.with(|role| role.stop()))
    }

    /// Pushes and pulls now; resolves when in sync, rejects if that fails.
    #[wasm_bindgen(js_name = forceSync)]
    pub fn force_sync(&self) -> Promise {
        settled(self.shared.with(|role| role.sync_now(true, true)))
    }

    /// Resolves once everything the engine holds is durable in IndexedDB.
    pub fn flush(&self) -> Promise {
        settled(self.shared.with(|role| role.flush()))
    }

    /// Pushes pending writes now; resolves when in sync, rejects if that fails.
    pub fn push(&self) -> Promise {
        settled(self.shared.with(|role| role.sync_now(true, false)))
    }

    /// Pulls remote changes now; resolves when in sync, rejects if that fails.
    pub fn pull(&self) -> Promise {
        settled(self.shared.with(|role| role.sync_now(false, true)))
    }

    /// Stops syncing, closes the database and rejects whatever still waits. Idempotent.
    pub fn destroy(&self) {
        self.shared.destroy();
    }
}

/// A query object (`undefined` or `null`: the default one); a bad one is a `TypeError`
/// naming the method.
fn read_query<T: DeserializeOwned + Default>(query: &JsValue, method: &str) -> Result<T, JsValue> {
    if query.is_undefined() || query.is_null() {
        return Ok(T::default());
    }
    // Read from the text: the one JSON reader every decoder uses (not serde_json's `Value`
    // deserializer, which only this would need).
    serde_json::from_str(&js::json_text(query, &format!("the {method} query"))?)
        .map_err(|e| js::refusal(Code::InvalidQuery, &format!("{method}: {e}")))
}

/// `conflictResolver({ collection, id, local, remote, base })` as the core calls it. A resolver
/// that throws or returns a non-object parks the conflict (and says why on the console).
fn resolver(f: Function) -> ResolverFn {
    Rc::new(move |input: &ConflictInput<'_>| {
        let arg = views::resolver_input(input);
        let merged = f.call1(&JsValue::UNDEFINED, &arg).and_then(|value| {
            if value.is_undefined() || value.is_null() {
                return Ok(None);
            }
            fields_of(&value, "conflictResolver's result").map(Some)
        });
        merged.unwrap_or_else(|e| {
            web_sys::console::error_2(
                &"ferrosync: conflictResolver failed; the conflict is parked".into(),
                &e,
            );
            None
        })
    })
}

/// `mutationStrategy.merge(synced, pending)` as the core calls it. A merge that throws shows
/// the pending document (and says why on the console).
fn merge(f: Function) -> MergeFn {
    Rc::new(move |synced: &Document, pending: &Document| {
        let merged = f
            .call2(
                &JsValue::UNDEFINED,
                &views::document(synced),
                &views::document(pending),
            )
            .and_then(|value| fields_of(&value, "merge's result"));
        match merged {
            Ok(fields) => {
                let mut doc = pending.clone();
                doc.set_fields(fields);
                doc
            }
            Err(e) => {
                web_sys::console::error_2(
                    &"ferrosync: merge failed; showing the pending document".into(),
                    &e,
                );
                pending.clone()
            }
        }
    })
}

/// Asks the browser to keep this origin's storage under pressure (best effort: the answer
/// only changes eviction, so it is not awaited).
fn request_persistence() {
    if let Some(window) = web_sys::window() {
        if let Ok(promise) = window.navigator().storage().persist() {
            wasm_bindgen_futures::spawn_local(async move {
                let _ = JsFuture::from(promise).await;
            });
        }
    }
}

/// A seed for the client id and jitter: different for every database.
fn random_seed() -> u64 {
    let high = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    let low = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    (high << 32) ^ low ^ now()
}
