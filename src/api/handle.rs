//! Objects handed back to JavaScript: a transaction's handle and the status/stats observables.

use super::{once_fn, unlisten};
use crate::driver::{Settlement, Shared, Topic};
use crate::js;
use crate::views;
use ferrosync_core::transaction::TxId;
use js_sys::{Function, Object, Promise};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

/// A committed transaction: its live state and a promise for its end.
#[wasm_bindgen(skip_typescript)]
pub struct TransactionHandle {
    shared: Shared,
    id: TxId,
    settlement: Rc<Settlement>,
}

impl TransactionHandle {
    pub(super) fn new(shared: Shared, id: TxId, settlement: Rc<Settlement>) -> Self {
        TransactionHandle {
            shared,
            id,
            settlement,
        }
    }

    /// The engine's record while it keeps one, else the finished transaction.
    fn view(&self) -> JsValue {
        let live = self
            .shared
            .with(|role| role.transaction(self.id))
            .ok()
            .flatten();
        live.or_else(|| {
            self.settlement
                .transaction()
                .map(|tx| views::transaction(&tx))
        })
        .unwrap_or(JsValue::UNDEFINED)
    }

    /// Another handle of the same transaction.
    fn again(&self) -> Self {
        TransactionHandle::new(self.shared.clone(), self.id, self.settlement.clone())
    }
}

#[wasm_bindgen]
impl TransactionHandle {
    /// The transaction's id.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> f64 {
        self.id.0 as f64
    }

    /// Its state now.
    #[wasm_bindgen(getter)]
    pub fn state(&self) -> JsValue {
        js::get(&self.view(), "state")
    }

    /// A snapshot of the transaction: state, mutations, attempts, error.
    #[wasm_bindgen(getter)]
    pub fn transaction(&self) -> JsValue {
        self.view()
    }

    /// Resolves with the transaction once completed; rejects with its error (which carries
    /// `transactionId`) once failed.
    pub fn settled(&self) -> Promise {
        self.settled_as(|handle| handle.view())
    }

    /// As `settled`, resolving with a [`Finished`] transaction instead of its view: the
    /// package entry's `settled` builds the view only when JavaScript reads it.
    #[wasm_bindgen(js_name = "_settledLazily")]
    pub fn settled_lazily(&self) -> Promise {
        self.settled_as(|handle| {
            // The view may be built inside a `conflictResolver` or `merge`, where the engine
            // cannot be read: the settlement keeps its own copy.
            let _ = handle
                .shared
                .with(|role| role.keep_copy(&handle.settlement));
            Finished(handle).into()
        })
    }
}

impl TransactionHandle {
    /// A promise of the transaction's end: `resolve` of (a handle of) the completed
    /// transaction, or its error.
    fn settled_as(&self, resolve: fn(TransactionHandle) -> JsValue) -> Promise {
        let handle = self.again();
        future_to_promise(async move {
            let end = handle.settlement.wait().await.ok_or_else(js::destroyed)?;
            end.map_err(|error| views::transaction_error(&error))?;
            Ok(resolve(handle))
        })
    }
}

/// A completed transaction, whose view is built when asked for (by the package entry's lazy
/// `settled` value; not part of the public API): read from the engine while it can be, else
/// from the copy its settlement keeps.
#[wasm_bindgen(skip_typescript)]
pub struct Finished(TransactionHandle);

#[wasm_bindgen]
impl Finished {
    /// The transaction as `settled` resolves with it.
    #[wasm_bindgen(js_name = "_view")]
    pub fn view(&self) -> JsValue {
        self.0.view()
    }
}

/// The sync status or stats: the current `value`, and `subscribe` for every change.
#[wasm_bindgen(skip_typescript)]
pub struct Observable {
    shared: Shared,
    topic: Topic,
}

impl Observable {
    pub(super) fn new(shared: Shared, topic: Topic) -> Self {
        Observable { shared, topic }
    }
}

#[wasm_bindgen]
impl Observable {
    /// The current value.
    #[wasm_bindgen(getter)]
    pub fn value(&self) -> Result<JsValue, JsValue> {
        self.shared.with(|role| role.current(self.topic))
    }

    /// Calls `callback` with the current value, then with each new one; returns
    /// `{ unsubscribe }`.
    pub fn subscribe(&self, callback: Function) -> Result<JsValue, JsValue> {
        let topic = self.topic;
        let id = self.shared.with(|role| {
            let current = role.current(topic);
            role.hub().listen_topic(topic, callback, current)
        })?;
        let shared = self.shared.clone();
        let subscription = Object::new();
        js::set(
            &subscription,
            "unsubscribe",
            &once_fn(move || {
                unlisten(&shared, id);
            }),
        );
        Ok(subscription.into())
    }
}
