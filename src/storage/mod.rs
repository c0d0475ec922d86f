//! Where the engine keeps its log records and pages (`SyncEngine.open({ storage })`):
//! IndexedDB (`indexeddb`, the default: kept across reloads) or memory (the core's
//! [`MemoryStore`]: gone when the page closes, for tests, private browsing that refuses
//! IndexedDB, and short-lived sessions). Both execute the engine's storage writes whole and
//! hand back what they hold at load.

mod indexeddb;
mod quota;
mod upgrade;
mod watch;

use crate::options::StorageKind;
use ferrosync_core::engine::{MemoryStore, Snapshot, StorageWrite};
use std::cell::RefCell;

/// Why a write failed.
#[derive(Debug)]
pub struct WriteError {
    /// For `lastError`.
    pub message: String,
    /// The connection had been closed and was reopened: storage may have lost its data.
    pub reopened: bool,
    /// The browser's storage quota is full.
    pub quota: bool,
}

/// An open engine storage.
pub enum Storage {
    /// An IndexedDB database.
    IndexedDb(indexeddb::Database),
    /// Memory, private to this tab (no other tab shares it: its origin records are never
    /// read by another).
    Memory(RefCell<MemoryStore>),
}

impl Storage {
    /// Opens the storage `kind` names for the database `name`. IndexedDB refused (private
    /// browsing, say) is an error that names the memory storage: it never falls back silently.
    pub async fn open(name: &str, kind: StorageKind) -> Result<Storage, String> {
        match kind {
            StorageKind::Memory => Ok(Storage::Memory(RefCell::default())),
            StorageKind::IndexedDb => indexeddb::Database::open(name)
                .await
                .map(Storage::IndexedDb)
                .map_err(|e| {
                    format!(
                        "{e}. If IndexedDB is unavailable here (private browsing may refuse \
                         it), open the engine with `storage: createMemoryStorage()` to keep \
                         its data in memory for this session instead"
                    )
                }),
        }
    }

    /// Deletes the IndexedDB database `name` (waits until every connection to it is closed).
    pub async fn delete(name: &str) -> Result<(), String> {
        indexeddb::Database::delete(name).await
    }

    /// Calls `f` when the browser closes the IndexedDB connection (site data cleared, say).
    pub fn when_closed(&self, f: impl Fn() + 'static) {
        if let Storage::IndexedDb(db) = self {
            db.when_closed(f);
        }
    }

    /// Everything the engine starts from (with the origin records).
    pub async fn load(&self) -> Result<Snapshot, String> {
        match self {
            Storage::IndexedDb(db) => db.load().await,
            Storage::Memory(store) => Ok(store.borrow().snapshot()),
        }
    }

    /// Executes a write (with the origin records it carries) whole; resolves once it is stored.
    pub async fn write(&self, write: StorageWrite) -> Result<(), WriteError> {
        match self {
            Storage::IndexedDb(db) => db.write(write).await,
            Storage::Memory(store) => {
                store.borrow_mut().apply(&write);
                Ok(())
            }
        }
    }
}
