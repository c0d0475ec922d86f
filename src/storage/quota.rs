//! Why a write's IndexedDB transaction aborted. rexie reports only that it did, not the
//! transaction's error, so the cause is found by a probe on the watching connection (see
//! `watch`): a transaction that puts as many bytes as the failed write and deletes them again.
//! Storage is left as it was either way; if the probe aborts too, its error names the cause
//! (`QuotaExceededError` for a full quota).

use futures::channel::oneshot;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{IdbDatabase, IdbTransactionMode};

/// The key the probe writes and deletes (no record has it).
const PROBE_KEY: f64 = -1.0;

/// The message for an aborted write of `bytes` into `store`, and whether the quota is full.
pub async fn cause(db: Option<&IdbDatabase>, store: &str, bytes: usize) -> (String, bool) {
    match db {
        Some(db) => match probe(db, store, bytes).await {
            Some((name, message)) => (
                format!("the IndexedDB transaction was aborted: {name}: {message}"),
                name == "QuotaExceededError",
            ),
            None => (
                "the IndexedDB transaction was aborted (a retry may succeed)".into(),
                false,
            ),
        },
        None => ("the IndexedDB transaction was aborted".into(), false),
    }
}

/// Puts `bytes` bytes into `store` and deletes them in one transaction; the transaction's error
/// (name and message) if it aborts.
async fn probe(db: &IdbDatabase, store: &str, bytes: usize) -> Option<(String, String)> {
    let tx = db
        .transaction_with_str_and_mode(store, IdbTransactionMode::Readwrite)
        .ok()?;
    let objects = tx.object_store(store).ok()?;
    let value = js_sys::Uint8Array::new_with_length(bytes as u32);
    let key = JsValue::from_f64(PROBE_KEY);
    objects.put_with_key(&value, &key).ok()?;
    objects.delete(&key).ok()?;
    let (sender, ended) = oneshot::channel::<bool>();
    let sender = Rc::new(RefCell::new(Some(sender)));
    let on = |committed: bool| {
        let sender = sender.clone();
        Closure::<dyn FnMut()>::new(move || {
            if let Some(sender) = sender.borrow_mut().take() {
                let _ = sender.send(committed);
            }
        })
    };
    let (on_complete, on_abort) = (on(true), on(false));
    tx.set_oncomplete(Some(on_complete.as_ref().unchecked_ref()));
    tx.set_onabort(Some(on_abort.as_ref().unchecked_ref()));
    let committed = ended.await.unwrap_or(true);
    tx.set_oncomplete(None);
    tx.set_onabort(None);
    if committed {
        return None;
    }
    Some(match tx.error() {
        Some(e) => (e.name(), e.message()),
        None => ("AbortError".into(), "aborted".into()),
    })
}
