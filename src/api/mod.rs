//! The classes JavaScript sees. Each holds the shared driver; writes commit synchronously (the
//! view changes before the call returns) and return a promise for durability.

mod collection;
mod engine;
mod handle;
mod scope;
pub mod views;

pub use collection::Collection;
pub use engine::SyncEngine;
pub use handle::{Observable, TransactionHandle};
pub use scope::{TransactionCollection, TransactionScope};

use crate::driver::{Done, Shared};
use crate::js;
use ferrosync_core::document::{parse_document, parse_patch, Fields};
use ferrosync_core::mutation::{MutationRequest, Op};
use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

/// Builds the request for `insert(doc)`.
fn insert_request(collection: &str, doc: &JsValue) -> Result<MutationRequest, JsValue> {
    let (doc_id, fields) =
        parse_document(js::to_json(doc, "the document")?).map_err(js::core_error)?;
    Ok(MutationRequest {
        collection: collection.into(),
        doc_id,
        op: Op::Insert { fields },
    })
}

/// Builds the request for `update(id, patch)`.
fn update_request(
    collection: &str,
    id: String,
    patch: &JsValue,
) -> Result<MutationRequest, JsValue> {
    let patch = parse_patch(js::to_json(patch, "the patch")?).map_err(js::core_error)?;
    Ok(MutationRequest {
        collection: collection.into(),
        doc_id: id,
        op: Op::Update { patch },
    })
}

/// Builds the request for `delete(id)` (a soft delete).
fn delete_request(collection: &str, id: String) -> MutationRequest {
    MutationRequest {
        collection: collection.into(),
        doc_id: id,
        op: Op::Delete,
    }
}

/// Commits `requests` now; the promise resolves to a [`TransactionHandle`] once the transaction
/// is durable in IndexedDB, or rejects if it is refused or fails first.
fn commit(shared: &Shared, requests: Result<Vec<MutationRequest>, JsValue>) -> Promise {
    let committed = requests.and_then(|requests| {
        shared
            .with(|role| role.commit(requests))?
            .map_err(js::core_error)
    });
    let shared = shared.clone();
    future_to_promise(async move {
        let (id, settlement) = committed?.durable().await?;
        Ok(TransactionHandle::new(shared, id, settlement).into())
    })
}

/// A receiver of the driver as a promise of `undefined`.
fn settled(done: Result<Done, JsValue>) -> Promise {
    future_to_promise(async move {
        done?.await.map_err(|_| js::destroyed())??;
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
fn unlisten(shared: &Shared, id: Option<u64>) {
    if let Some(id) = id {
        let _ = shared.with(|role| role.unlisten(id));
    }
}

/// The user's fields from a returned document: `_id` and `_deleted` are the engine's.
fn fields_of(value: &JsValue, what: &str) -> Result<Fields, JsValue> {
    match js::to_json(value, what)? {
        serde_json::Value::Object(mut fields) => {
            fields.remove(ferrosync_core::document::ID_FIELD);
            fields.remove(ferrosync_core::document::DELETED_FIELD);
            Ok(Fields::from_map(&fields))
        }
        _ => Err(js::error("TypeError", &format!("{what} must be an object"))),
    }
}
