//! IndexedDB storage: the engine's durable state, one IndexedDB transaction per storage write.
//!
//! Schema version 1 (object stores; every value is a JSON string, which IndexedDB clones fastest):
//! - `documents`: key `[collection, id]`, value `[collection, document]` (synced documents);
//! - `transactions`: key the transaction id, value the unfinished transaction with its mutations;
//! - `sync_log`: key the entry id, value the sync-log entry;
//! - `meta`: key `"checkpoint"`, value the client id, cursor, next ids and clock;
//! - `origins`: key a follower tab's request (`tab:seq`), value the transaction it created (and,
//!   once finished, its end), written with the transaction so a re-sent request is recognised.

use ferrosync_core::document::Document;
use ferrosync_core::engine::{Checkpoint, Snapshot, StorageWrite, SyncLogEntry};
use ferrosync_core::transaction::{Transaction, TxId};
use futures::future::try_join_all;
use rexie::{ObjectStore, Rexie, Store, TransactionMode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;

/// The schema version (the IndexedDB database version).
pub const SCHEMA_VERSION: u32 = 1;

const DOCUMENTS: &str = "documents";
const TRANSACTIONS: &str = "transactions";
const SYNC_LOG: &str = "sync_log";
const META: &str = "meta";
const ORIGINS: &str = "origins";
const CHECKPOINT_KEY: &str = "checkpoint";
const ALL: [&str; 5] = [DOCUMENTS, TRANSACTIONS, SYNC_LOG, META, ORIGINS];
/// Origin records older than this are deleted when the database opens.
const ORIGIN_KEPT_MS: u64 = 7 * 24 * 3600 * 1000;

/// Which transaction a follower tab's commit request created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Origin {
    /// The request, `tab:seq`.
    pub request: String,
    /// The transaction.
    pub tx: TxId,
    /// When the request was committed.
    pub at: u64,
    /// The transaction's end, once it finished.
    pub finished: Option<Transaction>,
}

/// An open engine database.
pub struct Storage {
    db: Rexie,
}

/// Why storage failed, as a message for `lastError` (names the DOM exception, such as
/// `QuotaExceededError`, when there is one).
fn describe(e: rexie::Error) -> String {
    match e {
        rexie::Error::IdbError(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

fn encode<T: Serialize>(value: &T) -> JsValue {
    JsValue::from_str(&serde_json::to_string(value).expect("engine state serializes"))
}

fn decode<T: DeserializeOwned>(value: JsValue, store: &str) -> Result<T, String> {
    let text = value
        .as_string()
        .ok_or_else(|| format!("a record in `{store}` is not a string"))?;
    serde_json::from_str(&text).map_err(|e| format!("a record in `{store}` is unreadable: {e}"))
}

fn document_key(collection: &str, id: &str) -> JsValue {
    js_sys::Array::of2(&JsValue::from_str(collection), &JsValue::from_str(id)).into()
}

impl Storage {
    /// Opens (creating or upgrading) the database `name`.
    pub async fn open(name: &str) -> Result<Storage, String> {
        let db = ALL
            .iter()
            .fold(Rexie::builder(name).version(SCHEMA_VERSION), |b, store| {
                b.add_object_store(ObjectStore::new(store))
            })
            .build()
            .await
            .map_err(|e| format!("cannot open IndexedDB database `{name}`: {}", describe(e)))?;
        Ok(Storage { db })
    }

    /// Deletes the database `name` (waits until every connection to it is closed).
    pub async fn delete(name: &str) -> Result<(), String> {
        Rexie::delete(name)
            .await
            .map_err(|e| format!("cannot delete IndexedDB database `{name}`: {}", describe(e)))
    }

    /// Reads everything the engine needs to start (and the origin records), in one read-only
    /// transaction.
    pub async fn load(&self) -> Result<(Snapshot, Vec<Origin>), String> {
        let tx = self
            .db
            .transaction(&ALL, TransactionMode::ReadOnly)
            .map_err(describe)?;
        let tx = &tx;
        let all = |name: &'static str| async move {
            let store = tx.store(name).map_err(describe)?;
            store.get_all(None, None).await.map_err(describe)
        };
        let (documents, transactions, sync_log, origins, checkpoint) = futures::try_join!(
            all(DOCUMENTS),
            all(TRANSACTIONS),
            all(SYNC_LOG),
            all(ORIGINS),
            async {
                let store = tx.store(META).map_err(describe)?;
                store
                    .get(JsValue::from_str(CHECKPOINT_KEY))
                    .await
                    .map_err(describe)
            },
        )?;
        let oldest = crate::js::now().saturating_sub(ORIGIN_KEPT_MS);
        let (origins, stale): (Vec<Origin>, Vec<Origin>) = origins
            .into_iter()
            .map(|v| decode::<Origin>(v, ORIGINS))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .partition(|o| o.at >= oldest);
        if !stale.is_empty() {
            self.forget_origins(&stale).await?;
        }
        let snapshot = Snapshot {
            checkpoint: checkpoint
                .map(|v| decode::<Checkpoint>(v, META))
                .transpose()?,
            documents: documents
                .into_iter()
                .map(|v| decode::<(String, Document)>(v, DOCUMENTS))
                .collect::<Result<_, _>>()?,
            transactions: transactions
                .into_iter()
                .map(|v| decode::<Transaction>(v, TRANSACTIONS))
                .collect::<Result<_, _>>()?,
            sync_log: sync_log
                .into_iter()
                .map(|v| decode::<SyncLogEntry>(v, SYNC_LOG))
                .collect::<Result<_, _>>()?,
        };
        Ok((snapshot, origins))
    }

    /// Writes one batch (and origin records) in one read-write transaction; resolves once it
    /// has committed.
    pub async fn write(&self, write: &StorageWrite, origins: &[Origin]) -> Result<(), String> {
        let tx = self
            .db
            .transaction(&ALL, TransactionMode::ReadWrite)
            .map_err(describe)?;
        let store = |name| tx.store(name).map_err(describe);
        let (documents, transactions, sync_log, meta, origin_store) = (
            store(DOCUMENTS)?,
            store(TRANSACTIONS)?,
            store(SYNC_LOG)?,
            store(META)?,
            store(ORIGINS)?,
        );
        let puts = async {
            put_all(
                &documents,
                write.documents.iter().map(|(collection, doc)| {
                    (
                        encode(&(collection, doc)),
                        document_key(collection, &doc.id),
                    )
                }),
            )
            .await?;
            put_all(
                &transactions,
                write
                    .transactions
                    .iter()
                    .map(|t| (encode(t), JsValue::from_f64(t.id.0 as f64))),
            )
            .await?;
            put_all(
                &sync_log,
                write
                    .sync_log
                    .iter()
                    .map(|e| (encode(e), JsValue::from_f64(e.id as f64))),
            )
            .await?;
            put_all(
                &origin_store,
                origins
                    .iter()
                    .map(|o| (encode(o), JsValue::from_str(&o.request))),
            )
            .await?;
            if let Some(checkpoint) = &write.checkpoint {
                meta.put(
                    &encode(checkpoint),
                    Some(&JsValue::from_str(CHECKPOINT_KEY)),
                )
                .await
                .map_err(describe)?;
            }
            Ok::<(), String>(())
        };
        let deletes = try_join_all(
            write
                .removed_documents
                .iter()
                .map(|(collection, id)| documents.delete(document_key(collection, id)))
                .chain(
                    write
                        .removed_transactions
                        .iter()
                        .map(|id| transactions.delete(JsValue::from_f64(id.0 as f64))),
                )
                .chain(
                    write
                        .removed_sync_log
                        .iter()
                        .map(|id| sync_log.delete(JsValue::from_f64(*id as f64))),
                ),
        );
        let (puts, deletes) = futures::join!(puts, deletes);
        puts?;
        deletes.map_err(describe)?;
        let result = tx.done().await.map_err(describe)?;
        if result.is_committed() {
            Ok(())
        } else {
            Err("the IndexedDB transaction was aborted".into())
        }
    }

    /// Deletes origin records (too old to be re-sent).
    async fn forget_origins(&self, origins: &[Origin]) -> Result<(), String> {
        let tx = self
            .db
            .transaction(&[ORIGINS], TransactionMode::ReadWrite)
            .map_err(describe)?;
        let store = tx.store(ORIGINS).map_err(describe)?;
        try_join_all(
            origins
                .iter()
                .map(|o| store.delete(JsValue::from_str(&o.request))),
        )
        .await
        .map_err(describe)?;
        tx.done().await.map_err(describe)?;
        Ok(())
    }

    /// Closes the connection.
    pub fn close(self) {
        self.db.close();
    }
}

/// Issues every put at once and waits for the last (IndexedDB answers requests in order).
async fn put_all(
    store: &Store,
    records: impl Iterator<Item = (JsValue, JsValue)>,
) -> Result<(), String> {
    store
        .put_all(records.map(|(value, key)| (value, Some(key))))
        .await
        .map_err(describe)
}
