//! IndexedDB storage: the engine's durable state, one IndexedDB transaction per storage write.
//!
//! Schema version 1 (object stores; every value is a JSON string, which IndexedDB clones fastest):
//! - `documents`: key `[collection, id]`, value `[collection, document]` (synced documents);
//! - `transactions`: key the transaction id, value the unfinished transaction with its mutations;
//! - `sync_log`: key the entry id, value the sync-log entry;
//! - `meta`: key `"checkpoint"`, value the client id, cursor, next ids and clock;
//! - `origins`: key a follower tab's request (`tab:seq`), value the transaction it created (and,
//!   once finished, its end), written with the transaction so a re-sent request is recognised.
//!
//! Built on `idb` (the IndexedDB layer `rexie` wraps) because a failed write must say why: an
//! aborted transaction's error (`QuotaExceededError`, say) is only reachable there. A connection
//! the browser closes (site data cleared, another tab upgrading the schema) is reopened for the
//! next write, and the caller is told so it can write everything again.

use ferrosync_core::document::Document;
use ferrosync_core::engine::{Checkpoint, Snapshot, StorageWrite, SyncLogEntry};
use ferrosync_core::transaction::{Transaction, TxId};
use futures::channel::oneshot;
use idb::{Database, Factory, ObjectStore, Request, TransactionMode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use wasm_bindgen::JsValue;
use web_sys::IdbTransaction;

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

/// Why a write failed.
#[derive(Debug)]
pub struct WriteError {
    /// For `lastError`.
    pub message: String,
    /// The connection had been closed and was reopened: storage may have lost its data.
    pub reopened: bool,
}

/// The open connection, or none after the browser closed it.
type Slot = Rc<RefCell<Option<Rc<Database>>>>;

/// Called when the browser closes the connection (see [`Storage::when_closed`]).
type ClosedHook = Rc<RefCell<Option<Box<dyn Fn()>>>>;

/// An open engine database.
pub struct Storage {
    name: String,
    db: Slot,
    closed: ClosedHook,
}

fn describe(e: idb::Error) -> String {
    e.to_string()
}

fn failed(message: String) -> WriteError {
    WriteError {
        message,
        reopened: false,
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

fn number_key(n: u64) -> JsValue {
    JsValue::from_f64(n as f64)
}

impl Storage {
    /// Opens (creating or upgrading) the database `name`.
    pub async fn open(name: &str) -> Result<Storage, String> {
        let db: Slot = Rc::default();
        let closed: ClosedHook = Rc::default();
        *db.borrow_mut() = Some(connect(name, &db, &closed).await?);
        Ok(Storage {
            name: name.to_owned(),
            db,
            closed,
        })
    }

    /// Calls `f` when the browser closes the connection (site data cleared, say), so the
    /// engine writes everything again at once rather than at its next write.
    pub fn when_closed(&self, f: impl Fn() + 'static) {
        *self.closed.borrow_mut() = Some(Box::new(f));
    }

    /// Deletes the database `name` (waits until every connection to it is closed).
    pub async fn delete(name: &str) -> Result<(), String> {
        let request = Factory::new()
            .and_then(|f| f.delete(name))
            .map_err(|e| format!("cannot delete IndexedDB database `{name}`: {e}"))?;
        request
            .await
            .map_err(|e| format!("cannot delete IndexedDB database `{name}`: {e}"))
    }

    /// The connection, reopened if the browser closed it.
    async fn db(&self) -> Result<Rc<Database>, String> {
        let current = self.db.borrow().clone();
        match current {
            Some(db) => Ok(db),
            None => {
                let db = connect(&self.name, &self.db, &self.closed).await?;
                *self.db.borrow_mut() = Some(db.clone());
                Ok(db)
            }
        }
    }

    /// Reads everything the engine needs to start (and the origin records), in one read-only
    /// transaction.
    pub async fn load(&self) -> Result<(Snapshot, Vec<Origin>), String> {
        let db = self.db().await?;
        let tx = db
            .transaction(&ALL, TransactionMode::ReadOnly)
            .map_err(describe)?;
        let checkpoint = tx
            .object_store(META)
            .and_then(|store| store.get(JsValue::from_str(CHECKPOINT_KEY)))
            .map_err(describe)?;
        let (documents, transactions, sync_log, origins, checkpoint) = futures::try_join!(
            read_all::<(String, Document)>(&tx, DOCUMENTS),
            read_all::<Transaction>(&tx, TRANSACTIONS),
            read_all::<SyncLogEntry>(&tx, SYNC_LOG),
            read_all::<Origin>(&tx, ORIGINS),
            async { checkpoint.await.map_err(describe) },
        )?;
        let oldest = crate::js::now().saturating_sub(ORIGIN_KEPT_MS);
        let (origins, stale): (Vec<Origin>, Vec<Origin>) =
            origins.into_iter().partition(|o| o.at >= oldest);
        if !stale.is_empty() {
            self.forget_origins(&stale).await?;
        }
        let snapshot = Snapshot {
            checkpoint: checkpoint
                .map(|v| decode::<Checkpoint>(v, META))
                .transpose()?,
            documents,
            transactions,
            sync_log,
        };
        Ok((snapshot, origins))
    }

    /// Writes one batch (and origin records) in one read-write transaction; resolves once it
    /// has committed. Every request is issued at once; only the transaction's end is awaited.
    pub async fn write(&self, write: &StorageWrite, origins: &[Origin]) -> Result<(), WriteError> {
        let was_open = self.db.borrow().is_some();
        let db = self.db().await.map_err(failed)?;
        if !was_open {
            return Err(WriteError {
                message: "the IndexedDB connection was closed by the browser; reopened it".into(),
                reopened: true,
            });
        }
        let tx = match db.transaction(&ALL, TransactionMode::ReadWrite) {
            Ok(tx) => tx,
            Err(idb::Error::TransactionOpenFailed(e)) => {
                // Closed under us without a `close` event: reopen for the next write.
                self.db.borrow_mut().take();
                return Err(WriteError {
                    message: format!(
                        "the IndexedDB connection was closed ({}); reopening it",
                        crate::js::describe(&e)
                    ),
                    reopened: true,
                });
            }
            Err(e) => return Err(failed(describe(e))),
        };
        let store = |name| tx.object_store(name).map_err(|e| failed(describe(e)));
        let (documents, transactions, sync_log, meta, origin_store) = (
            store(DOCUMENTS)?,
            store(TRANSACTIONS)?,
            store(SYNC_LOG)?,
            store(META)?,
            store(ORIGINS)?,
        );
        let issued = (|| -> Result<(), idb::Error> {
            for (collection, doc) in &write.documents {
                documents.put(
                    &encode(&(collection, doc)),
                    Some(&document_key(collection, &doc.id)),
                )?;
            }
            for (collection, id) in &write.removed_documents {
                documents.delete(document_key(collection, id))?;
            }
            for t in &write.transactions {
                transactions.put(&encode(t), Some(&number_key(t.id.0)))?;
            }
            for id in &write.removed_transactions {
                transactions.delete(number_key(id.0))?;
            }
            for e in &write.sync_log {
                sync_log.put(&encode(e), Some(&number_key(e.id)))?;
            }
            for id in &write.removed_sync_log {
                sync_log.delete(number_key(*id))?;
            }
            for o in origins {
                origin_store.put(&encode(o), Some(&JsValue::from_str(&o.request)))?;
            }
            if let Some(checkpoint) = &write.checkpoint {
                meta.put(
                    &encode(checkpoint),
                    Some(&JsValue::from_str(CHECKPOINT_KEY)),
                )?;
            }
            Ok(())
        })();
        if let Err(e) = issued {
            // Nothing of a failed batch may commit.
            let _ = tx.abort();
            return Err(failed(describe(e)));
        }
        finish(tx).await.map_err(failed)
    }

    /// Deletes origin records (too old to be re-sent).
    async fn forget_origins(&self, origins: &[Origin]) -> Result<(), String> {
        let db = self.db().await?;
        let tx = db
            .transaction(&[ORIGINS], TransactionMode::ReadWrite)
            .map_err(describe)?;
        let store = tx.object_store(ORIGINS).map_err(describe)?;
        for origin in origins {
            store
                .delete(JsValue::from_str(&origin.request))
                .map_err(describe)?;
        }
        finish(tx).await
    }
}

impl Drop for Storage {
    /// Closes the connection, so other tabs may upgrade or delete the database.
    fn drop(&mut self) {
        if let Some(db) = self.db.borrow_mut().take() {
            db.close();
        }
    }
}

/// Opens the database, creating its stores; the connection closes itself (emptying `slot`)
/// when the browser closes it (then `closed` is called) or another tab needs a newer schema.
async fn connect(name: &str, slot: &Slot, closed: &ClosedHook) -> Result<Rc<Database>, String> {
    let mut db = ALL
        .iter()
        .fold(
            Database::builder(name).version(SCHEMA_VERSION),
            |builder, store| builder.add_object_store(ObjectStore::builder(store)),
        )
        .build()
        .await
        .map_err(|e| format!("cannot open IndexedDB database `{name}`: {e}"))?;
    let on_close = Rc::downgrade(slot);
    let hook = Rc::downgrade(closed);
    db.on_close(move |_| {
        if let Some(slot) = on_close.upgrade() {
            slot.borrow_mut().take();
        }
        if let Some(hook) = hook.upgrade() {
            if let Some(f) = hook.borrow().as_ref() {
                f();
            }
        }
    });
    let on_upgrade = Rc::downgrade(slot);
    db.on_version_change(move |_| {
        if let Some(db) = on_upgrade
            .upgrade()
            .and_then(|slot| slot.borrow_mut().take())
        {
            db.close();
        }
    });
    Ok(Rc::new(db))
}

/// Every record of the store `name` (each a JSON string): joined into one JSON array in
/// JavaScript, so the records cross into wasm as one string and are parsed in one pass, not
/// one crossing and one parse per record.
async fn read_all<T: DeserializeOwned>(
    tx: &idb::Transaction,
    name: &'static str,
) -> Result<Vec<T>, String> {
    let mut request = tx
        .object_store(name)
        .and_then(|store| store.get_all(None, None))
        .map_err(describe)?;
    let (sender, answered) = oneshot::channel::<bool>();
    let sender = Rc::new(RefCell::new(Some(sender)));
    let on = |succeeded: bool| {
        let sender = sender.clone();
        move |_| {
            if let Some(sender) = sender.borrow_mut().take() {
                let _ = sender.send(succeeded);
            }
        }
    };
    request.on_success(on(true));
    request.on_error(on(false));
    if !answered.await.unwrap_or(false) {
        return Err(match request.error() {
            Ok(Some(e)) => format!("cannot read `{name}`: {}: {}", e.name(), e.message()),
            _ => format!("cannot read `{name}`"),
        });
    }
    // The engine writes each record as the JSON of one value, so joining them cannot blur
    // their bounds; a record that is not such a string makes the whole array unreadable.
    let records = js_sys::Array::from(&request.result().map_err(describe)?);
    let text = format!("[{}]", String::from(records.join(",")));
    serde_json::from_str(&text).map_err(|e| format!("a record in `{name}` is unreadable: {e}"))
}

/// Waits for a transaction to end (`complete` or `abort`: exactly one fires, once); an abort
/// reports the transaction's error (such as `QuotaExceededError`). Request `error` events are
/// not listened to: they end in an abort anyway.
async fn finish(tx: idb::Transaction) -> Result<(), String> {
    let tx = IdbTransaction::from(tx);
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
    let committed = ended.await.unwrap_or(false);
    tx.set_oncomplete(None);
    tx.set_onabort(None);
    if committed {
        return Ok(());
    }
    Err(match tx.error() {
        Some(e) => format!(
            "the IndexedDB transaction was aborted: {}: {}",
            e.name(),
            e.message()
        ),
        None => "the IndexedDB transaction was aborted".into(),
    })
}
