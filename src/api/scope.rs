//! `engine.transaction(async t => { t.collection('todos').insert(a); ... })`: writes are
//! collected while the body runs and committed together when it resolves.

use super::{delete_request, insert_request, update_request};
use crate::driver::Shared;
use crate::js;
use ferrosync_core::mutation::MutationRequest;
use ferrosync_core::Code;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// The writes collected so far; `None` once the transaction body has finished.
type Pending = Rc<RefCell<Option<Vec<MutationRequest>>>>;

fn add(pending: &Pending, request: Result<MutationRequest, JsValue>) -> Result<(), JsValue> {
    let request = request?;
    match pending.borrow_mut().as_mut() {
        Some(requests) => {
            requests.push(request);
            Ok(())
        }
        None => Err(js::refusal(
            Code::InvalidState,
            "this transaction has already been committed; write inside its body",
        )),
    }
}

/// The argument of a transaction body.
#[wasm_bindgen(skip_typescript)]
pub struct TransactionScope {
    shared: Shared,
    pending: Pending,
    /// The collection handed out last: a body that calls `collection(name)` for each write
    /// gets the same object each time, not a new one that wasm memory holds until the page's
    /// garbage collector frees it.
    last: RefCell<Option<Handed>>,
}

impl TransactionScope {
    pub(super) fn new(shared: Shared) -> Self {
        TransactionScope {
            shared,
            pending: Rc::new(RefCell::new(Some(Vec::new()))),
            last: RefCell::default(),
        }
    }

    /// The writes this scope collects.
    pub(super) fn writes(&self) -> Writes {
        Writes(self.pending.clone())
    }
}

/// A transaction body's writes, kept by the caller while the scope itself goes to JavaScript.
pub(super) struct Writes(Pending);

impl Writes {
    /// Ends the body: the writes to commit; later writes through the scope throw.
    pub(super) fn take(&self) -> Vec<MutationRequest> {
        self.0.borrow_mut().take().unwrap_or_default()
    }
}

#[wasm_bindgen]
impl TransactionScope {
    /// A collection to write to inside the transaction (the same object as the call before
    /// when it named the same collection).
    pub fn collection(&self, name: String) -> Result<JsValue, JsValue> {
        let mut last = self.last.borrow_mut();
        // One the app has `free()`d is not handed out again.
        if let Some(handed) = last.as_ref().filter(|h| h.name == name && !h.freed.get()) {
            return Ok(handed.object.clone());
        }
        self.shared
            .with(|role| role.collection(&name).map(|_| ()))?
            .map_err(js::core_error)?;
        let freed = Rc::new(Cell::new(false));
        let object = JsValue::from(TransactionCollection {
            name: name.clone(),
            pending: self.pending.clone(),
            freed: freed.clone(),
        });
        *last = Some(Handed {
            name,
            object: object.clone(),
            freed,
        });
        Ok(object)
    }
}

/// A collection a scope has handed out.
struct Handed {
    name: String,
    /// The [`TransactionCollection`] as JavaScript holds it.
    object: JsValue,
    /// Set when JavaScript frees it (only `free()` can: the scope holds it until then).
    freed: Rc<Cell<bool>>,
}

/// A collection inside a transaction: writes join the transaction.
#[wasm_bindgen(skip_typescript)]
pub struct TransactionCollection {
    name: String,
    pending: Pending,
    freed: Rc<Cell<bool>>,
}

impl Drop for TransactionCollection {
    fn drop(&mut self) {
        self.freed.set(true);
    }
}

#[wasm_bindgen]
impl TransactionCollection {
    /// Adds an insert to the transaction.
    pub fn insert(&self, doc: JsValue, options: JsValue) -> Result<(), JsValue> {
        add(&self.pending, insert_request(&self.name, &doc, &options))
    }

    /// Adds an update to the transaction.
    pub fn update(&self, id: String, patch: JsValue, options: JsValue) -> Result<(), JsValue> {
        add(
            &self.pending,
            update_request(&self.name, id, &patch, &options),
        )
    }

    /// Adds a soft delete to the transaction.
    pub fn delete(&self, id: String, options: JsValue) -> Result<(), JsValue> {
        add(&self.pending, delete_request(&self.name, id, &options))
    }
}
