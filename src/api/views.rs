//! The plain objects JavaScript receives: documents, changes, transactions, conflicts.

use crate::js::to_js;
use ferrosync_core::collection::{ChangeKind, DocChange};
use ferrosync_core::document::{write_json_string, Document};
use ferrosync_core::engine::ConflictEntry;
use ferrosync_core::mutation::{Mutation, Op};
use ferrosync_core::transaction::{Attempt, LockedObject, Transaction, TxError, TxState};
use serde::Serialize;
use serde_json::{Map, Value};
use wasm_bindgen::JsValue;

/// A document as users see it: `_id`, its fields, and `_deleted: true` for a tombstone.
pub fn document(doc: &Document) -> JsValue {
    parse(&doc.user_json())
}

/// Documents as a JavaScript array, written as one JSON text from the documents' own.
pub fn documents<'a>(docs: impl Iterator<Item = &'a Document>) -> JsValue {
    let mut text = String::from("[");
    for (i, doc) in docs.enumerate() {
        if i > 0 {
            text.push(',');
        }
        doc.write_user_json(&mut text);
    }
    text.push(']');
    parse(&text)
}

/// Documents, or `null` where there is none, as a JavaScript array.
pub fn maybe_documents<'a>(docs: impl Iterator<Item = Option<&'a Document>>) -> JsValue {
    let mut text = String::from("[");
    for (i, doc) in docs.enumerate() {
        if i > 0 {
            text.push(',');
        }
        match doc {
            Some(doc) => doc.write_user_json(&mut text),
            None => text.push_str("null"),
        }
    }
    text.push(']');
    parse(&text)
}

/// The ids `list` calls its argument with, as a JavaScript array.
pub fn ids(list: impl FnOnce(&mut dyn FnMut(&str))) -> JsValue {
    let mut text = String::from("[");
    list(&mut |id| {
        if text.len() > 1 {
            text.push(',');
        }
        write_json_string(&mut text, id);
    });
    text.push(']');
    parse(&text)
}

/// Changes to the visible view, as `subscribe` callbacks receive them:
/// `{ type, collection, id, doc }` (`doc` is `null` once removed).
pub fn changes<'a>(changes: impl Iterator<Item = &'a DocChange>) -> JsValue {
    let mut text = String::new();
    write_changes(&mut text, changes);
    parse(&text)
}

/// Several lists of changes as one JavaScript array of arrays (parsed at once).
pub fn change_lists<'a>(lists: impl Iterator<Item = &'a [DocChange]>) -> js_sys::Array {
    let mut text = String::from("[");
    for (i, list) in lists.enumerate() {
        if i > 0 {
            text.push(',');
        }
        write_changes(&mut text, list.iter());
    }
    text.push(']');
    parse(&text).into()
}

/// Appends changes as a JSON array: `{ type, collection, id, doc }` each.
fn write_changes<'a>(text: &mut String, changes: impl Iterator<Item = &'a DocChange>) {
    text.push('[');
    for (i, change) in changes.enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(match change.kind {
            ChangeKind::Added => "{\"type\":\"added\",\"collection\":",
            ChangeKind::Updated => "{\"type\":\"updated\",\"collection\":",
            ChangeKind::Removed => "{\"type\":\"removed\",\"collection\":",
        });
        write_json_string(text, &change.collection);
        text.push_str(",\"id\":");
        write_json_string(text, &change.id);
        text.push_str(",\"doc\":");
        match &change.doc {
            Some(doc) => doc.write_user_json(text),
            None => text.push_str("null"),
        }
        text.push('}');
    }
    text.push(']');
}

/// JSON text this module wrote, as a JavaScript value.
fn parse(text: &str) -> JsValue {
    js_sys::JSON::parse(text).expect("documents are valid JSON")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MutationView<'a> {
    collection: &'a str,
    id: &'a str,
    mutation_id: Option<u64>,
    #[serde(flatten)]
    op: &'a Op,
    original: Option<Value>,
    modified: Option<Value>,
    changes: Map<String, Value>,
    metadata: Option<&'a Value>,
    created_at: u64,
    updated_at: u64,
}

/// A write as JavaScript sees it: with the document it found and made, and what it changed.
fn mutation_view<'a>(m: &'a Mutation, tx: &Transaction) -> MutationView<'a> {
    let original = m.original.as_ref().map(|fields| {
        let mut doc = fields.to_map();
        doc.insert("_id".into(), Value::String(m.doc_id.clone()));
        Value::Object(doc)
    });
    MutationView {
        collection: &m.collection,
        id: &m.doc_id,
        mutation_id: m.wire_id,
        op: &m.op,
        original,
        modified: m.modified().as_ref().map(Document::to_json),
        changes: m.changes(),
        metadata: m.metadata.as_ref(),
        created_at: tx.created_at,
        updated_at: m.changed_at.unwrap_or(tx.created_at),
    }
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
    metadata: Option<&'a Value>,
}

fn transaction_view(tx: &Transaction) -> TransactionView<'_> {
    TransactionView {
        id: tx.id.0,
        state: tx.state,
        created_at: tx.created_at,
        updated_at: tx.updated_at,
        mutations: tx.mutations.iter().map(|m| mutation_view(m, tx)).collect(),
        attempts: &tx.attempts,
        current_attempt: tx.current_attempt,
        queued_behind: tx.queued_behind.iter().map(|id| id.0).collect(),
        error: tx.error.as_ref(),
        retries: tx.retries,
        metadata: tx.metadata.as_ref(),
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

#[derive(Serialize)]
struct LockedView<'a> {
    collection: &'a str,
    id: &'a str,
    transaction: TransactionView<'a>,
}

/// `getLockedObjects()`: `{ collection, id, transaction }` for each locked object.
pub fn locked_objects(locked: &[LockedObject<'_>]) -> JsValue {
    let views: Vec<LockedView<'_>> = locked
        .iter()
        .map(|o| LockedView {
            collection: o.collection,
            id: o.id,
            transaction: transaction_view(o.transaction),
        })
        .collect();
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
