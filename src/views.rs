//! The plain objects JavaScript receives: documents, changes, transactions, conflicts.

use crate::js::{to_js, Json};
use ferrosync_core::collection::{ChangeKind, DocChange};
use ferrosync_core::conflict::ConflictInput;
use ferrosync_core::document::{write_json_string, Document, Fields};
use ferrosync_core::engine::ConflictEntry;
use ferrosync_core::hlc::Hlc;
use ferrosync_core::mutation::{Mutation, Op};
use ferrosync_core::object::json_object;
use ferrosync_core::transaction::{Attempt, LockedObject, Transaction, TxError, TxState};
use serde::Serialize;
use serde_json::Value;
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

/// A JavaScript value inside a view (a document parsed from its JSON text), kept as it is.
type Preserved = JsValue;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MutationView<'a> {
    collection: &'a str,
    id: &'a str,
    mutation_id: Option<u64>,
    /// `insert`, `update`, `delete` or `put`, then the op's `fields` or `patch`.
    #[serde(rename = "type")]
    op: &'static str,
    #[serde(
        with = "serde_wasm_bindgen::preserve",
        skip_serializing_if = "JsValue::is_undefined"
    )]
    fields: Preserved,
    #[serde(
        with = "serde_wasm_bindgen::preserve",
        skip_serializing_if = "JsValue::is_undefined"
    )]
    patch: Preserved,
    #[serde(with = "serde_wasm_bindgen::preserve")]
    original: Preserved,
    #[serde(with = "serde_wasm_bindgen::preserve")]
    modified: Preserved,
    #[serde(serialize_with = "crate::js::json")]
    changes: Value,
    metadata: Option<Json<'a>>,
    created_at: u64,
    updated_at: u64,
}

/// Fields' JSON text as a JavaScript object.
fn fields(fields: &Fields) -> JsValue {
    parse(fields.as_json())
}

/// A write as JavaScript sees it: with the document it found and made, and what it changed.
fn mutation_view<'a>(m: &'a Mutation, tx: &Transaction) -> MutationView<'a> {
    let (op, set, patch) = match &m.op {
        Op::Insert { fields: f } => ("insert", fields(f), JsValue::UNDEFINED),
        Op::Update { patch } => ("update", JsValue::UNDEFINED, fields(patch)),
        Op::Delete => ("delete", JsValue::UNDEFINED, JsValue::UNDEFINED),
        Op::Put { fields: f } => ("put", fields(f), JsValue::UNDEFINED),
    };
    let original = m
        .original
        .as_ref()
        .map(|fields| Document::new(&m.doc_id, fields.view(), 0, Hlc::default(), false));
    let or_null = |doc: Option<Document>| doc.as_ref().map_or(JsValue::NULL, document);
    MutationView {
        collection: &m.collection,
        id: &m.doc_id,
        mutation_id: m.wire_id,
        op,
        fields: set,
        patch,
        original: or_null(original),
        modified: or_null(m.modified()),
        changes: Value::Object(m.changes()),
        metadata: m.metadata.as_ref().map(Json),
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
    metadata: Option<Json<'a>>,
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
        metadata: tx.metadata.as_ref().map(Json),
    }
}

/// A transaction with its state and attempt history.
pub fn transaction(tx: &Transaction) -> JsValue {
    to_js(&transaction_view(tx))
}

#[derive(Serialize)]
struct ResolverView<'a> {
    collection: &'a str,
    id: &'a str,
    #[serde(with = "serde_wasm_bindgen::preserve")]
    local: Preserved,
    #[serde(with = "serde_wasm_bindgen::preserve")]
    remote: Preserved,
    #[serde(with = "serde_wasm_bindgen::preserve")]
    base: Preserved,
}

/// `conflictResolver`'s argument: `{ collection, id, local, remote, base }` (`local` and `base`
/// `undefined` when there is none).
pub fn resolver_input(input: &ConflictInput<'_>) -> JsValue {
    let doc = |d: Option<&Document>| d.map_or(JsValue::UNDEFINED, document);
    to_js(&ResolverView {
        collection: input.collection,
        id: input.doc_id,
        local: doc(input.local),
        remote: document(input.remote),
        base: doc(input.base),
    })
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

/// The error a failed transaction's `settled()` rejects with: a `TransactionError` with
/// `transactionId`, `code` and `retryable`.
pub fn transaction_error(error: &TxError) -> JsValue {
    let value = crate::js::error("TransactionError", error.code, &error.message);
    crate::js::set(
        &value,
        "transactionId",
        &JsValue::from_f64(error.transaction_id.0 as f64),
    );
    crate::js::set(&value, "retryable", &JsValue::from_bool(error.retryable));
    value
}

/// Parked conflicts, as `conflicts()` returns them: `{ id, collection, docId, local, remote,
/// base }` each.
pub fn conflicts(entries: &[ConflictEntry]) -> Value {
    let view = |c: &ConflictEntry| {
        json_object([
            ("id", Value::String(c.id.to_string())),
            ("collection", Value::String(c.collection.clone())),
            ("docId", Value::String(c.doc_id.clone())),
            ("local", Document::json_or_null(c.local.as_ref())),
            ("remote", c.remote.to_json()),
            ("base", Document::json_or_null(c.base.as_ref())),
        ])
    };
    Value::Array(entries.iter().map(view).collect())
}
