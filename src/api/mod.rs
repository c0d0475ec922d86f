//! The classes JavaScript sees. Each holds the shared driver; writes commit synchronously (the
//! view changes before the call returns) and return a promise for durability.

mod collection;
mod engine;
mod handle;
mod scope;
mod storage;

pub use collection::Collection;
pub use engine::SyncEngine;
pub use handle::{Observable, TransactionHandle};
pub use scope::{TransactionCollection, TransactionScope};
pub use storage::{create_indexeddb_storage, create_memory_storage};

use crate::driver::{wait, Answer, Shared};
use crate::js;
use ferrosync_core::document::{parse_document, parse_patch, Fields};
use ferrosync_core::mutation::{MutationRequest, Op};
use js_sys::Promise;
use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

/// The `metadata` of a write's or transaction's options (`{ metadata }`, or nothing).
fn metadata(options: &JsValue, what: &str) -> Result<Option<Value>, JsValue> {
    if options.is_undefined() || options.is_null() {
        return Ok(None);
    }
    match js::to_json(options, what)? {
        Value::Object(mut map) => {
            let metadata = map.remove("metadata");
            match map.keys().next() {
                Some(unknown) => Err(js::invalid(&format!(
                    "{what} has an unknown option `{unknown}` (known: metadata)"
                ))),
                None => Ok(metadata),
            }
        }
        _ => Err(js::invalid(&format!(
            "{what} must be an object like {{ metadata }}"
        ))),
    }
}

/// Builds the request for `insert(doc, options)`.
fn insert_request(
    collection: &str,
    doc: &JsValue,
    options: &JsValue,
) -> Result<MutationRequest, JsValue> {
    let (doc_id, fields) =
        parse_document(js::to_json(doc, "the document")?).map_err(js::core_error)?;
    Ok(MutationRequest {
        collection: collection.into(),
        doc_id,
        op: Op::Insert { fields },
        metadata: metadata(options, "insert's options")?,
    })
}

/// Builds the request for `update(id, patch, options)`.
fn update_request(
    collection: &str,
    id: String,
    patch: &JsValue,
    options: &JsValue,
) -> Result<MutationRequest, JsValue> {
    let patch = parse_patch(js::to_json(patch, "the patch")?).map_err(js::core_error)?;
    Ok(MutationRequest {
        collection: collection.into(),
        doc_id: id,
        op: Op::Update { patch },
        metadata: metadata(options, "update's options")?,
    })
}

/// Builds the request for `delete(id, options)` (a soft delete).
fn delete_request(
    collection: &str,
    id: String,
    options: &JsValue,
) -> Result<MutationRequest, JsValue> {
    Ok(MutationRequest {
        collection: collection.into(),
        doc_id: id,
        op: Op::Delete,
        metadata: metadata(options, "delete's options")?,
    })
}

/// Commits `requests` (with the transaction's `metadata`) now; the promise resolves to a
/// [`TransactionHandle`] once the transaction is durable in storage, or rejects if it is
/// refused or fails first.
fn commit(
    shared: &Shared,
    requests: Result<Vec<MutationRequest>, JsValue>,
    metadata: Option<Value>,
) -> Promise {
    let committed = requests.and_then(|requests| {
        shared
            .with(|role| role.commit(requests, metadata))?
            .map_err(js::core_error)
    });
    let shared = shared.clone();
    future_to_promise(async move {
        let (id, settlement) = wait(committed?).await?;
        Ok(TransactionHandle::new(shared, id, settlement).into())
    })
}

/// A receiver of the driver as a promise of `undefined`.
fn settled(done: Result<Answer<()>, JsValue>) -> Promise {
    future_to_promise(async move {
        wait(done?).await?;
        Ok(JsValue::UNDEFINED)
    })
}

/// A function that calls `f` once, however often it is called (returned by `subscribe`).
fn once_fn(f: impl FnOnce() + 'static) -> JsValue {
    let mut f = Some(f);
    Closure::<dyn FnMut()>::new(move || {
        if let Some(f) = f.take() {
            f();
        }
    })
    .into_js_value()
}

/// Removes a subscriber (a no-op once the engine is destroyed).
fn unlisten(shared: &Shared, id: u64) {
    let _ = shared.with(|role| role.unlisten(id));
}

/// The user's fields from a returned document: `_id` and `_deleted` are the engine's.
fn fields_of(value: &JsValue, what: &str) -> Result<Fields, JsValue> {
    match js::to_json(value, what)? {
        Value::Object(mut fields) => {
            fields.remove(ferrosync_core::document::ID_FIELD);
            fields.remove(ferrosync_core::document::DELETED_FIELD);
            Ok(Fields::from_map(&fields))
        }
        _ => Err(js::invalid(&format!("{what} must be an object"))),
    }
}
