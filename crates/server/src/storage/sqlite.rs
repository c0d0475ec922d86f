//! SQLite storage: one file, WAL mode, every push in one IMMEDIATE transaction so versions are
//! assigned and committed in order and a `kill -9` loses nothing that was acknowledged.

use super::{
    Caller, Check, Hello, LogFilter, LogReport, LogTotals, Page, PushOutcome, Storage,
    StorageError, SyncLog,
};
use ferrosync_core::document::Document;
use ferrosync_core::protocol::{Change, ErrorInfo, Outcome, WireTransaction};
use ferrosync_core::server::{apply_push, page, ClientRecord, PushRequest, ServerDoc, ServerView};
use ferrosync_core::{Millis, MutationId, Version};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::sync::Mutex;

/// Recorded outcomes are kept for this many mutation ids behind a client's newest, which is
/// more than an engine ever has unanswered, so any re-send is answered from the record.
const OUTCOMES_KEPT: u64 = 100_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tenants (
    tenant TEXT PRIMARY KEY,
    head INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    tenant TEXT NOT NULL,
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    writer TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    hlc TEXT NOT NULL,
    fields TEXT NOT NULL,
    PRIMARY KEY (tenant, collection, id)
);
CREATE INDEX IF NOT EXISTS documents_by_version ON documents (tenant, version);
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    user_id TEXT NOT NULL,
    last_mutation_id INTEGER NOT NULL,
    collections TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outcomes (
    client_id TEXT NOT NULL,
    mutation_id INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    PRIMARY KEY (client_id, mutation_id)
);
CREATE TABLE IF NOT EXISTS sync_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    sync_type TEXT NOT NULL,
    status TEXT NOT NULL,
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    completed_at INTEGER NOT NULL,
    synced_count INTEGER NOT NULL,
    error_count INTEGER NOT NULL,
    collections TEXT NOT NULL,
    results TEXT NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS sync_logs_by_tenant ON sync_logs (tenant, id);
PRAGMA user_version = 1;
";

/// SQLite-backed storage. Calls are serialized on one connection (SQLite has one writer).
pub struct SqliteStorage {
    conn: Mutex<Connection>,
}

impl SqliteStorage {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &str) -> Result<Self, StorageError> {
        let conn = Connection::open(path)?;
        // WAL: readers don't block the writer; NORMAL sync is durable against process crashes.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "busy_timeout", 5_000)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half-done transaction (it rolls back on drop).
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Reads inside the push's transaction, for the core's apply logic.
struct View<'a> {
    db: &'a Connection,
    tenant: &'a str,
    failure: std::cell::RefCell<Option<StorageError>>,
}

impl View<'_> {
    /// Runs a read; a failure is kept (and the push aborted) instead of being hidden.
    fn read<T>(&self, f: impl FnOnce() -> Result<Option<T>, StorageError>) -> Option<T> {
        f().unwrap_or_else(|e| {
            self.failure.borrow_mut().get_or_insert(e);
            None
        })
    }
}

impl ServerView for View<'_> {
    fn client(&self, client: &str) -> Option<ClientRecord> {
        self.read(|| {
            Ok(self
                .db
                .query_row(
                    "SELECT user_id, last_mutation_id FROM clients WHERE client_id = ?1",
                    [client],
                    |r| {
                        Ok(ClientRecord {
                            user: r.get(0)?,
                            last_mutation_id: r.get(1)?,
                        })
                    },
                )
                .optional()?)
        })
    }

    fn document(&self, collection: &str, id: &str) -> Option<ServerDoc> {
        self.read(|| {
            let row = self
                .db
                .query_row(
                    "SELECT version, writer, deleted, hlc, fields FROM documents
                     WHERE tenant = ?1 AND collection = ?2 AND id = ?3",
                    params![self.tenant, collection, id],
                    |r| {
                        Ok((
                            r.get::<_, u64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, bool>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                        ))
                    },
                )
                .optional()?;
            let Some((version, writer, deleted, hlc, fields)) = row else {
                return Ok(None);
            };
            let doc = Document {
                id: id.to_owned(),
                fields: serde_json::from_str(&fields)?,
                version,
                hlc: serde_json::from_str(&hlc)?,
                deleted,
            };
            Ok(Some(ServerDoc {
                collection: collection.to_owned(),
                doc,
                writer,
            }))
        })
    }

    fn outcome(&self, client: &str, id: MutationId) -> Option<Outcome> {
        self.read(|| {
            let json: Option<String> = self
                .db
                .query_row(
                    "SELECT outcome FROM outcomes WHERE client_id = ?1 AND mutation_id = ?2",
                    params![client, id],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
        })
    }
}

fn forbidden() -> ErrorInfo {
    ErrorInfo::new("forbidden", "this client id belongs to another user", false)
}

/// The client's tenant and user, if it is registered.
fn owner(db: &Connection, client_id: &str) -> Result<Option<(String, String)>, StorageError> {
    Ok(db
        .query_row(
            "SELECT tenant, user_id FROM clients WHERE client_id = ?1",
            [client_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

fn head(db: &Connection, tenant: &str) -> Result<Version, StorageError> {
    Ok(db
        .query_row(
            "SELECT head FROM tenants WHERE tenant = ?1",
            [tenant],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

impl Storage for SqliteStorage {
    fn hello(
        &self,
        caller: Caller<'_>,
        collections: &[String],
    ) -> Result<Result<Hello, ErrorInfo>, StorageError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if owner(&tx, caller.client_id)?
            .is_some_and(|(t, u)| t != caller.tenant || u != caller.user)
        {
            return Ok(Err(forbidden()));
        }
        tx.execute(
            "INSERT INTO clients (client_id, tenant, user_id, last_mutation_id, collections) VALUES (?1, ?2, ?3, 0, ?4)
             ON CONFLICT (client_id) DO UPDATE SET collections = excluded.collections",
            params![caller.client_id, caller.tenant, caller.user, serde_json::to_string(collections)?],
        )?;
        let last_mutation_id = tx.query_row(
            "SELECT last_mutation_id FROM clients WHERE client_id = ?1",
            [caller.client_id],
            |r| r.get(0),
        )?;
        let head = head(&tx, caller.tenant)?;
        tx.commit()?;
        Ok(Ok(Hello {
            last_mutation_id,
            head,
        }))
    }

    fn collections(&self, caller: Caller<'_>) -> Result<Option<Vec<String>>, StorageError> {
        let conn = self.conn();
        let row: Option<(String, String, String)> = conn
            .query_row(
                "SELECT tenant, user_id, collections FROM clients WHERE client_id = ?1",
                [caller.client_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        match row {
            Some((tenant, user, json)) if tenant == caller.tenant && user == caller.user => {
                Ok(Some(serde_json::from_str(&json)?))
            }
            _ => Ok(None),
        }
    }

    fn push(
        &self,
        caller: Caller<'_>,
        transactions: &[WireTransaction],
        now: Millis,
        check: Check<'_>,
    ) -> PushOutcome {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if owner(&tx, caller.client_id)?
            .is_some_and(|(t, u)| t != caller.tenant || u != caller.user)
        {
            return Ok(Err(forbidden()));
        }
        let view = View {
            db: &tx,
            tenant: caller.tenant,
            failure: Default::default(),
        };
        let req = PushRequest {
            client_id: caller.client_id,
            user: caller.user,
            now,
            head: head(&tx, caller.tenant)?,
            transactions,
        };
        let decided = apply_push(&view, req, check);
        if let Some(failure) = view.failure.take() {
            return Err(failure);
        }
        let commit = match decided {
            Ok(commit) => commit,
            Err(refused) => return Ok(Err(refused)),
        };
        for w in &commit.writes {
            tx.execute(
                "INSERT INTO documents (tenant, collection, id, version, writer, deleted, hlc, fields) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (tenant, collection, id) DO UPDATE SET version = excluded.version, writer = excluded.writer,
                   deleted = excluded.deleted, hlc = excluded.hlc, fields = excluded.fields",
                params![caller.tenant, w.collection, w.doc.id, w.doc.version, w.writer, w.doc.deleted, serde_json::to_string(&w.doc.hlc)?, serde_json::to_string(&w.doc.fields)?],
            )?;
        }
        {
            let mut insert = tx.prepare_cached("INSERT OR REPLACE INTO outcomes (client_id, mutation_id, outcome) VALUES (?1, ?2, ?3)")?;
            for r in &commit.outcomes {
                insert.execute(params![
                    caller.client_id,
                    r.id,
                    serde_json::to_string(&r.outcome)?
                ])?;
            }
        }
        tx.execute(
            "INSERT INTO clients (client_id, tenant, user_id, last_mutation_id, collections) VALUES (?1, ?2, ?3, ?4, '[]')
             ON CONFLICT (client_id) DO UPDATE SET last_mutation_id = excluded.last_mutation_id",
            params![caller.client_id, caller.tenant, caller.user, commit.client.last_mutation_id],
        )?;
        tx.execute(
            "DELETE FROM outcomes WHERE client_id = ?1 AND mutation_id + ?2 < ?3",
            params![
                caller.client_id,
                OUTCOMES_KEPT,
                commit.client.last_mutation_id
            ],
        )?;
        tx.execute(
            "INSERT INTO tenants (tenant, head) VALUES (?1, ?2) ON CONFLICT (tenant) DO UPDATE SET head = excluded.head",
            params![caller.tenant, commit.head],
        )?;
        tx.commit()?;
        Ok(Ok(commit))
    }

    fn pull(
        &self,
        tenant: &str,
        cursor: Version,
        limit: usize,
        collections: &[String],
    ) -> Result<Page, StorageError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT collection, id, version, deleted, hlc, fields FROM documents
             WHERE tenant = ?1 AND version > ?2 ORDER BY version LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(params![tenant, cursor, limit as u64 + 1], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u64>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })?
            .map(|row| {
                let (collection, id, version, deleted, hlc, fields) = row?;
                let doc = Document {
                    id,
                    fields: serde_json::from_str(&fields)?,
                    version,
                    hlc: serde_json::from_str(&hlc)?,
                    deleted,
                };
                Ok(Change { collection, doc })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        // The cursor moves over every row read, also those of collections this client skips.
        let (rows, cursor, has_more) = page(rows, cursor, limit);
        let changes = rows
            .into_iter()
            .filter(|c| collections.contains(&c.collection))
            .collect();
        Ok(Page {
            changes,
            cursor,
            has_more,
        })
    }

    fn log(&self, tenant: &str, e: &SyncLog) -> Result<(), StorageError> {
        self.conn().execute(
            "INSERT INTO sync_logs (tenant, sync_type, status, user_id, client_id, started_at, completed_at, synced_count, error_count, collections, results, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                tenant, e.sync_type, e.status, e.user_id, e.client_id, e.started_at, e.completed_at, e.synced_count, e.error_count,
                serde_json::to_string(&e.collections)?, e.results.to_string(), e.error
            ],
        )?;
        Ok(())
    }

    fn logs(&self, tenant: &str, f: &LogFilter) -> Result<LogReport, StorageError> {
        let conn = self.conn();
        let filter = "tenant = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR sync_type = ?3)
                      AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(collections) WHERE value = ?4))";
        let mut stmt = conn.prepare(&format!(
            "SELECT id, sync_type, status, user_id, client_id, started_at, completed_at, synced_count, error_count, collections, results, error
             FROM sync_logs WHERE {filter} ORDER BY id DESC LIMIT ?5"
        ))?;
        let args = params![tenant, f.status, f.sync_type, f.collection, f.limit as u64];
        let logs = stmt
            .query_map(args, |r| {
                Ok((
                    SyncLog {
                        id: r.get(0)?,
                        sync_type: r.get(1)?,
                        status: r.get(2)?,
                        user_id: r.get(3)?,
                        client_id: r.get(4)?,
                        started_at: r.get(5)?,
                        completed_at: r.get(6)?,
                        synced_count: r.get(7)?,
                        error_count: r.get(8)?,
                        collections: Vec::new(),
                        results: serde_json::Value::Null,
                        error: r.get(11)?,
                    },
                    r.get::<_, String>(9)?,
                    r.get::<_, String>(10)?,
                ))
            })?
            .map(|row| {
                let (mut log, collections, results) = row?;
                log.collections = serde_json::from_str(&collections)?;
                log.results = serde_json::from_str(&results)?;
                Ok(log)
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT sync_type, COUNT(*), SUM(status = 'failed'), SUM(synced_count), SUM(error_count)
             FROM sync_logs WHERE {filter} GROUP BY sync_type ORDER BY sync_type"
        ))?;
        let totals = stmt
            .query_map(params![tenant, f.status, f.sync_type, f.collection], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    LogTotals {
                        runs: r.get(1)?,
                        failed: r.get(2)?,
                        synced: r.get(3)?,
                        errors: r.get(4)?,
                    },
                ))
            })?
            .collect::<Result<_, _>>()?;
        Ok(LogReport { logs, totals })
    }
}
