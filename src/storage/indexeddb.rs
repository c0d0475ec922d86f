//! IndexedDB storage, through rexie: the engine's log records and pages, each write one
//! IndexedDB transaction that executes the engine's [`StoreOp`]s, all or nothing.
//!
//! Schema version 3 (object stores, out-of-line keys):
//! - `log`: key the record's sequence number, value its bytes (a `Uint8Array`);
//! - `pages`: key `[collection, index]`, value the page's bytes;
//! - `history`: key the history page's index, value its bytes (added by version 3);
//! - `origins`: key a follower tab's request (`tab:seq`), value the JSON of its [`Origin`] (the
//!   transaction it created and, once finished, its end), which the engine writes with that
//!   transaction's record so a re-sent request is recognised;
//! - `documents`, `transactions`, `sync_log`, `meta`: the first schema's stores, emptied into
//!   the log when a database written by it is opened (`upgrade`).
//!
//! rexie hides two things the engine needs, so two small helpers get them another way: the
//! browser closing the connection (`watch`) and why a transaction aborted (`quota`).

use super::{quota, upgrade, watch, WriteError};
use ferrosync_core::engine::{Origin, Pieces, Snapshot, StorageWrite, StoreOp, StoredValues};
use rexie::{ObjectStore, Rexie, TransactionMode};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};

/// The schema version (the IndexedDB database version).
const SCHEMA_VERSION: u32 = 3;

const LOG: &str = "log";
const PAGES: &str = "pages";
const HISTORY: &str = "history";
const ORIGINS: &str = "origins";
/// The stores writes touch.
const WRITTEN: [&str; 4] = [LOG, PAGES, HISTORY, ORIGINS];

/// The open connection, or none after the browser closed it.
type Slot = Rc<RefCell<Option<Rc<Rexie>>>>;

/// Called when the browser closes the connection (see [`Storage::when_closed`]).
type ClosedHook = Rc<RefCell<Option<Box<dyn Fn()>>>>;

/// An open engine database.
pub struct Database {
    name: String,
    db: Slot,
    closed: ClosedHook,
    watcher: RefCell<Option<watch::Watcher>>,
}

/// A rexie error with its cause (rexie's own message is only "idb error").
fn describe(e: rexie::Error) -> String {
    match std::error::Error::source(&e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

fn failed(message: String) -> WriteError {
    WriteError {
        message,
        reopened: false,
        quota: false,
    }
}

fn number_key(n: u64) -> JsValue {
    JsValue::from_f64(n as f64)
}

fn bytes_value(bytes: &[u8]) -> JsValue {
    js_sys::Uint8Array::from(bytes).into()
}

/// Bytes in pieces as one `Uint8Array`, copied out of wasm memory piece by piece.
fn pieces_value(pieces: &Pieces) -> JsValue {
    let array = js_sys::Uint8Array::new_with_length(pieces.len() as u32);
    let mut at = 0;
    for piece in &pieces.0 {
        let end = at + piece.len() as u32;
        array.subarray(at, end).copy_from(piece);
        at = end;
    }
    array.into()
}

/// Stored values as the load takes them: each the `Uint8Array` stored, copied into wasm when
/// taken (once: `Uint8Array::new` on one would copy it first) and released from the JS heap
/// with it. All are checked to be bytes here, so damage is an error before the load begins.
fn stored(values: Vec<JsValue>) -> Result<StoredValues, String> {
    let arrays = values
        .into_iter()
        .map(|v| v.dyn_into::<js_sys::Uint8Array>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "a stored record is not bytes".to_owned())?;
    let bytes = arrays.iter().map(|a| a.length() as usize).sum();
    Ok(StoredValues::new(
        arrays.into_iter().map(|a| a.to_vec()),
        bytes,
    ))
}

fn page_key(collection: &str, index: u32) -> JsValue {
    js_sys::Array::of2(&JsValue::from_str(collection), &JsValue::from(index)).into()
}

/// A request of a write, issued when first polled.
type Request<'a> = Pin<Box<dyn Future<Output = Result<(), rexie::Error>> + 'a>>;

impl Database {
    /// Opens (creating or upgrading) the database `name`.
    pub async fn open(name: &str) -> Result<Database, String> {
        let storage = Database {
            name: name.to_owned(),
            db: Rc::default(),
            closed: Rc::default(),
            watcher: RefCell::default(),
        };
        storage.connect().await?;
        Ok(storage)
    }

    /// Opens the connection and starts watching for the browser closing it.
    async fn connect(&self) -> Result<Rc<Rexie>, String> {
        let builder = WRITTEN.into_iter().chain(upgrade::FIRST_SCHEMA).fold(
            Rexie::builder(&self.name).version(SCHEMA_VERSION),
            |builder, store| builder.add_object_store(ObjectStore::new(store)),
        );
        let db = Rc::new(builder.build().await.map_err(|e| {
            format!(
                "cannot open IndexedDB database `{}`: {}",
                self.name,
                describe(e)
            )
        })?);
        *self.db.borrow_mut() = Some(db.clone());
        let (slot, hook) = (Rc::downgrade(&self.db), Rc::downgrade(&self.closed));
        let watcher = watch::Watcher::open(&self.name, move || {
            if let Some(slot) = slot.upgrade() {
                slot.borrow_mut().take();
            }
            if let Some(hook) = hook.upgrade() {
                if let Some(f) = hook.borrow().as_ref() {
                    f();
                }
            }
        })
        .await?;
        *self.watcher.borrow_mut() = Some(watcher);
        Ok(db)
    }

    /// Calls `f` when the browser closes the connection (site data cleared, say), so the
    /// engine writes everything again at once rather than at its next write.
    pub fn when_closed(&self, f: impl Fn() + 'static) {
        *self.closed.borrow_mut() = Some(Box::new(f));
    }

    /// Deletes the database `name` (waits until every connection to it is closed).
    pub async fn delete(name: &str) -> Result<(), String> {
        Rexie::delete(name)
            .await
            .map_err(|e| format!("cannot delete IndexedDB database `{name}`: {e}"))
    }

    /// The connection, reopened if the browser closed it.
    async fn db(&self) -> Result<Rc<Rexie>, String> {
        let current = self.db.borrow().clone();
        match current {
            Some(db) => Ok(db),
            None => self.connect().await,
        }
    }

    /// Reads everything the engine starts from (and the origin records) in one read-only
    /// transaction. The log records and pages stay `Uint8Array`s of the JS heap: each is copied
    /// into wasm only when the load takes it (see [`stored`]). A database of the first schema
    /// is moved into the log first.
    pub async fn load(&self) -> Result<Snapshot, String> {
        let db = self.db().await?;
        upgrade::from_first_schema(&db, LOG).await?;
        let tx = db
            .transaction(&WRITTEN, TransactionMode::ReadOnly)
            .map_err(describe)?;
        let (log, pages, history, origins) = (
            tx.store(LOG).map_err(describe)?,
            tx.store(PAGES).map_err(describe)?,
            tx.store(HISTORY).map_err(describe)?,
            tx.store(ORIGINS).map_err(describe)?,
        );
        let (records, pages, history, origins) = futures::try_join!(
            log.get_all(None, None),
            pages.get_all(None, None),
            history.get_all(None, None),
            origins.get_all(None, None),
        )
        .map_err(|e| format!("cannot read the database: {e}"))?;
        let origins = origins
            .iter()
            .map(|v| {
                let text = v.as_string().ok_or("an origin record is not text")?;
                serde_json::from_str::<Origin>(&text)
                    .map_err(|e| format!("an origin record is unreadable: {e}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Snapshot {
            records: stored(records)?,
            pages: stored(pages)?,
            history: stored(history)?,
            origins,
        })
    }

    /// Executes a write (with its origin records) in one read-write transaction;
    /// resolves once it has committed. Every request is issued at once, then the commit;
    /// only the end is awaited. The write's bytes are dropped once copied into the requests,
    /// so wasm memory does not hold them while IndexedDB works.
    pub async fn write(&self, write: StorageWrite) -> Result<(), WriteError> {
        let was_open = self.db.borrow().is_some();
        let db = match self.db().await {
            Ok(db) => db,
            Err(e) if !was_open => {
                return Err(WriteError {
                    message: format!(
                    "the IndexedDB connection was closed by the browser; reopening it failed: {e}"
                ),
                    reopened: true,
                    quota: false,
                })
            }
            Err(e) => return Err(failed(e)),
        };
        if !was_open {
            return Err(WriteError {
                message: "the IndexedDB connection was closed by the browser; reopened it".into(),
                reopened: true,
                quota: false,
            });
        }
        // Only the stores this write touches: most writes are one record.
        let paged = write
            .ops
            .iter()
            .any(|op| matches!(op, StoreOp::PutPage { .. }));
        let historic = write.ops.iter().any(|op| {
            matches!(
                op,
                StoreOp::PutHistory { .. } | StoreOp::DeleteHistory { .. }
            )
        });
        let stores: Vec<&str> = [
            (LOG, true),
            (PAGES, paged),
            (HISTORY, historic),
            (
                ORIGINS,
                !write.origins.is_empty() || !write.dropped_origins.is_empty(),
            ),
        ]
        .into_iter()
        .filter_map(|(name, used)| used.then_some(name))
        .collect();
        let tx = match db.transaction(&stores, TransactionMode::ReadWrite) {
            Ok(tx) => tx,
            Err(e) => {
                // Closed under us without a `close` event: reopen for the next write.
                self.db.borrow_mut().take();
                return Err(WriteError {
                    message: format!("the IndexedDB connection was closed ({e}); reopening it"),
                    reopened: true,
                    quota: false,
                });
            }
        };
        let store = |name: &str| stores.contains(&name).then(|| tx.store(name)).transpose();
        let (Ok(Some(log)), Ok(pages), Ok(history), Ok(origin_store)) =
            (store(LOG), store(PAGES), store(HISTORY), store(ORIGINS))
        else {
            return Err(failed("the database lacks its stores".into()));
        };
        let (log, pages, history, origin_store) = (
            &log,
            pages.as_ref(),
            history.as_ref(),
            origin_store.as_ref(),
        );
        let mut requests: Vec<Request<'_>> = Vec::new();
        for op in &write.ops {
            requests.push(match op {
                StoreOp::PutRecord { seq, bytes } => {
                    let (value, key) = (bytes_value(bytes), number_key(*seq));
                    Box::pin(async move { log.put(&value, Some(&key)).await.map(drop) })
                }
                StoreOp::PutPage {
                    collection,
                    index,
                    bytes,
                } => {
                    let (value, key) = (bytes_value(bytes), page_key(collection, *index));
                    let pages = pages.expect("a page write opens the pages store");
                    Box::pin(async move { pages.put(&value, Some(&key)).await.map(drop) })
                }
                StoreOp::DeleteRecords { from, to } => {
                    let range = web_sys::IdbKeyRange::bound(&number_key(*from), &number_key(*to))
                        .map_err(|e| failed(crate::js::describe(&e)))?;
                    Box::pin(async move { log.delete(range.into()).await })
                }
                StoreOp::PutHistory { index, bytes } => {
                    let (value, key) = (pieces_value(bytes), JsValue::from(*index));
                    let history = history.expect("a history write opens the history store");
                    Box::pin(async move { history.put(&value, Some(&key)).await.map(drop) })
                }
                StoreOp::DeleteHistory { index } => {
                    let key = JsValue::from(*index);
                    let history = history.expect("a history write opens the history store");
                    Box::pin(async move { history.delete(key).await })
                }
            });
        }
        for origin in &write.origins {
            let value =
                JsValue::from_str(&serde_json::to_string(origin).expect("origins serialize"));
            let key = JsValue::from_str(&origin.request);
            let origin_store = origin_store.expect("origin records open their store");
            requests.push(Box::pin(async move {
                origin_store.put(&value, Some(&key)).await.map(drop)
            }));
        }
        for request in &write.dropped_origins {
            let key = JsValue::from_str(request);
            let origin_store = origin_store.expect("origin records open their store");
            requests.push(Box::pin(async move { origin_store.delete(key).await }));
        }
        let size = write.bytes();
        drop(write);
        // Told to commit once every request is issued (the first poll of `try_join_all` polls
        // each), IndexedDB commits as soon as the last one is executed, not once its success
        // has come back to the page and found no other request: a round trip less, a fifth of
        // a one-record write in Chromium. Every browser with Web Locks, which the tabs need,
        // has `commit()`.
        let (answered, ended) =
            futures::join!(futures::future::try_join_all(requests), tx.commit());
        if let (Ok(_), Ok(())) = (answered, ended) {
            return Ok(());
        }
        let probe = self
            .watcher
            .borrow()
            .as_ref()
            .map(|w| w.connection().clone());
        let (message, quota) = quota::cause(probe.as_ref(), LOG, size).await;
        Err(WriteError {
            quota,
            ..failed(message)
        })
    }
}

impl Drop for Database {
    /// Closes the connections, so other tabs may upgrade or delete the database.
    fn drop(&mut self) {
        self.watcher.borrow_mut().take();
        if let Some(db) = self.db.borrow_mut().take() {
            if let Ok(db) = Rc::try_unwrap(db) {
                db.close();
            }
        }
    }
}
