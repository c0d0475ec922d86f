//! Databases written by the first schema (version 1: a record per document and per
//! transaction, as JSON text) are moved into the log when opened: everything they hold becomes
//! the first log record, in the same IndexedDB transaction that empties their stores, so the
//! move happens once, whole or not at all. The engine then loads it like any other log.

use ferrosync_core::document::Document;
use ferrosync_core::engine::{Checkpoint, Record, RecordMeta, StoredTx, SyncLogEntry};
use ferrosync_core::transaction::Transaction;
use rexie::{Rexie, TransactionMode};
use serde::de::DeserializeOwned;
use wasm_bindgen::JsValue;

const DOCUMENTS: &str = "documents";
const TRANSACTIONS: &str = "transactions";
const SYNC_LOG: &str = "sync_log";
const META: &str = "meta";
/// The first schema's stores.
pub const FIRST_SCHEMA: [&str; 4] = [DOCUMENTS, TRANSACTIONS, SYNC_LOG, META];

/// Moves what the first schema's stores hold into the log (a no-op when they are empty).
pub async fn from_first_schema(db: &Rexie, log: &str) -> Result<(), String> {
    let fail = |e: rexie::Error| format!("cannot upgrade the database: {e}");
    let stores: Vec<&str> = FIRST_SCHEMA.iter().copied().chain([log]).collect();
    let tx = db
        .transaction(&stores, TransactionMode::ReadWrite)
        .map_err(fail)?;
    let store = |name| tx.store(name).map_err(fail);
    let (documents, transactions, sync_log, meta, log) = (
        store(DOCUMENTS)?,
        store(TRANSACTIONS)?,
        store(SYNC_LOG)?,
        store(META)?,
        store(log)?,
    );
    let (documents, transactions, sync_log, checkpoint) = futures::try_join!(
        documents.get_all(None, None),
        transactions.get_all(None, None),
        sync_log.get_all(None, None),
        meta.get(JsValue::from_str("checkpoint")),
    )
    .map_err(fail)?;
    if documents.is_empty() && transactions.is_empty() && checkpoint.is_none() {
        return tx.done().await.map(drop).map_err(fail);
    }
    // Grouped by collection, in the order of their names.
    let mut docs: Vec<(String, Vec<Document>)> = Vec::new();
    for (collection, doc) in decode_all::<(String, Document)>(&documents, DOCUMENTS)? {
        match docs.binary_search_by(|(c, _)| c.cmp(&collection)) {
            Ok(i) => docs[i].1.push(doc),
            Err(i) => docs.insert(i, (collection, vec![doc])),
        }
    }
    let record = Record {
        seq: 1,
        meta: RecordMeta {
            settled: Vec::new(),
            checkpoint: checkpoint
                .map(|v| decode::<Checkpoint>(&v, META))
                .transpose()?,
            sync_log: decode_all::<SyncLogEntry>(&sync_log, SYNC_LOG)?,
        },
        txs: decode_all::<Transaction>(&transactions, TRANSACTIONS)?
            .iter()
            .map(StoredTx::of)
            .collect(),
        docs: docs.into_iter().collect(),
        ..Record::default()
    };
    let value: JsValue = js_sys::Uint8Array::from(record.encode().as_slice()).into();
    let key = JsValue::from_f64(record.seq as f64);
    let emptied: Vec<_> = FIRST_SCHEMA
        .iter()
        .map(|name| store(name))
        .collect::<Result<_, _>>()?;
    let clears = futures::future::try_join_all(emptied.iter().map(|s| s.clear()));
    futures::try_join!(log.put(&value, Some(&key)), clears).map_err(fail)?;
    match tx.done().await.map_err(fail)? {
        rexie::TransactionResult::Committed => Ok(()),
        _ => Err("cannot upgrade the database: the transaction was aborted".into()),
    }
}

fn decode<T: DeserializeOwned>(value: &JsValue, store: &str) -> Result<T, String> {
    let text = value
        .as_string()
        .ok_or_else(|| format!("a record in `{store}` is not text"))?;
    serde_json::from_str(&text).map_err(|e| format!("a record in `{store}` is unreadable: {e}"))
}

fn decode_all<T: DeserializeOwned>(values: &[JsValue], store: &str) -> Result<Vec<T>, String> {
    values.iter().map(|v| decode(v, store)).collect()
}
