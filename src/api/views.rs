//! The plain objects JavaScript receives: documents, changes, transactions, conflicts.

use crate::js::to_js;
use ferrosync_core::collection::{ChangeKind, DocChange};
use ferrosync_core::document::{Document, JsonView};
use ferrosync_core::engine::ConflictEntry;
use ferrosync_core::mutation::{Mutation, Op};
use ferrosync_core::transaction::{Attempt, Transaction, TxError, TxState};
use serde::Serialize;
use serde_json::Value;
use wasm_bindgen::JsValue;

/// A document as users see it: its fields, `_id`, and `_deleted: true` for a tombstone.
pub fn document(doc: &Document) -> JsValue {
    to_js(&doc.json_view())
}

/// Documents as a JavaScript array (serialized in place, not copied).
pub fn documents<'a>(docs: impl Iterator<Item = &'a Document>) -> JsValue {
    let docs: Vec<JsonView<'_>> = docs.map(Document::json_view).collect();
    to_js(&docs)
}

#[derive(Serialize)]
struct ChangeView<'a> {
    #[serde(rename = "type")]
    kind: ChangeKind,
    collection: &'a str,
    id: &'a str,
    doc: Option<JsonView<'a>>,
}

/// Changes to the visible view, as `subscribe` callbacks receive them.
pub fn changes<'a>(changes: impl Iterator<Item = &'a DocChange>) -> JsValue {
    let views: Vec<ChangeView<'_>> = changes
        .map(|c| ChangeView {
            kind: c.kind,
            collection: &c.collection,
            id: &c.id,
            doc: c.doc.as_ref().map(Document::json_view),
        })
        .collect();
    to_js(&views)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MutationView<'a> {
    collection: &'a str,
    id: &'a str,
    mutation_id: Option<u64>,
    #[serde(flatten)]
    op: &'a Op,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TransactionView<'a> {
    id: u64,
    state: TxState,
    created_at: u64,
    updated_at: u64,
    mutations: Vec<MutationView<'a>>,
    attempts: &'a [Attempt],
    current_attempt: Option<u32>,
    queued_behind: Vec<u64>,
    error: Option<&'a TxError>,
    retries: u32,
}

fn transaction_view(tx: &Transaction) -> TransactionView<'_> {
    TransactionView {
        id: tx.id.0,
        state: tx.state,
        created_at: tx.created_at,
        updated_at: tx.updated_at,
        mutations: tx
            .mutations
            .iter()
            .map(|m: &Mutation| MutationView {
                collection: &m.collection,
                id: &m.doc_id,
                mutation_id: m.wire_id,
                op: &m.op,
            })
            .collect(),
        attempts: &tx.attempts,
        current_attempt: tx.current_attempt,
        queued_behind: tx.queued_behind.iter().map(|id| id.0).collect(),
        error: tx.error.as_ref(),
        retries: tx.retries,
    }
}

/// A transaction with its state and attempt history.
pub fn transaction(tx: &Transaction) -> JsValue {
    to_js(&transaction_view(tx))
}

/// Transactions as a JavaScript array.
pub fn transactions<'a>(txs: impl Iterator<Item = &'a Transaction>) -> JsValue {
    let views: Vec<TransactionView<'_>> = txs.map(transaction_view).collect();
    to_js(&views)
}

/// The error a failed transaction's `settled()` rejects with: an `Error` with `transactionId`.
pub fn transaction_error(error: &TxError) -> JsValue {
    let value = crate::js::error("TransactionError", &error.message);
    crate::js::set(
        &value,
        "transactionId",
        &JsValue::from_f64(error.transaction_id.0 as f64),
    );
    value
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConflictView<'a> {
    id: String,
    collection: &'a str,
    doc_id: &'a str,
    local: Option<Value>,
    remote: Value,
    base: Option<Value>,
}

/// Parked conflicts, as `conflicts()` returns them.
pub fn conflicts(entries: &[ConflictEntry]) -> Value {
    let views: Vec<ConflictView<'_>> = entries
        .iter()
        .map(|c| ConflictView {
            id: c.id.to_string(),
            collection: &c.collection,
            doc_id: &c.doc_id,
            local: c.local.as_ref().map(Document::to_json),
            remote: c.remote.to_json(),
            base: c.base.as_ref().map(Document::to_json),
        })
        .collect();
    serde_json::to_value(views).expect("conflict views serialize")
}
