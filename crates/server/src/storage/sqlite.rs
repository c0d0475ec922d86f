//! SQLite storage: one file, WAL mode, every push in one IMMEDIATE transaction so versions are
//! assigned and committed in order and a `kill -9` loses nothing that was acknowledged.

use super::{
    Caller, Check, Hello, LogFilter, LogReport, LogRetention, LogTotals, Page, PageBounds,
    PushOutcome, Storage, StorageError, SyncLog,
};
use ferrosync_core::document::Document;
use ferrosync_core::protocol::{Change, ErrorInfo, Outcome, WireTransaction};
use ferrosync_core::server::{
    apply_push, ClientRecord, PushBounds, PushRequest, ServerDoc, ServerView,
};
use ferrosync_core::{Millis, MutationId, Version};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::HashMap;
use std::sync::Mutex;

/// Recorded outcomes are kept for this many mutation ids behind a client's newest, which is
/// more than an engine ever has unanswered, so any re-send is answered from the record.
const OUTCOMES_KEPT: u64 = 100_000;

/// A tenant's sync log is pruned after this many new rows, so it holds at most
/// `keep + PRUNE_EVERY` rows.
const PRUNE_EVERY: u64 = 100;

/// Bytes a change takes on the wire besides its names and JSON texts.
const CHANGE_OVERHEAD: usize = 96;

/// The schema, one migration per version (`PRAGMA user_version` counts those applied). Each
/// runs in one transaction with the version bump, so a crash leaves it applied or not at all.
const MIGRATIONS: &[&str] = &[
    // 1: documents, clients (ids global), outcomes, sync log.
    "
    CREATE TABLE tenants (tenant TEXT PRIMARY KEY, head INTEGER NOT NULL);
    CREATE TABLE documents (
        tenant TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL,
        version INTEGER NOT NULL, writer TEXT NOT NULL, deleted INTEGER NOT NULL,
        hlc TEXT NOT NULL, fields TEXT NOT NULL,
        PRIMARY KEY (tenant, collection, id)
    );
    CREATE INDEX documents_by_version ON documents (tenant, version);
    CREATE TABLE clients (
        client_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, user_id TEXT NOT NULL,
        last_mutation_id INTEGER NOT NULL, collections TEXT NOT NULL
    );
    CREATE TABLE outcomes (
        client_id TEXT NOT NULL, mutation_id INTEGER NOT NULL, outcome TEXT NOT NULL,
        PRIMARY KEY (client_id, mutation_id)
    );
    CREATE TABLE sync_logs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, sync_type TEXT NOT NULL,
        status TEXT NOT NULL, user_id TEXT NOT NULL, client_id TEXT NOT NULL,
        started_at INTEGER NOT NULL, completed_at INTEGER NOT NULL,
        synced_count INTEGER NOT NULL, error_count INTEGER NOT NULL,
        collections TEXT NOT NULL, results TEXT NOT NULL, error TEXT
    );
    CREATE INDEX sync_logs_by_tenant ON sync_logs (tenant, id);
    ",
    // 2: client ids are scoped per tenant, so no tenant can claim another's.
    "
    ALTER TABLE clients RENAME TO clients_v1;
    CREATE TABLE clients (
        tenant TEXT NOT NULL, client_id TEXT NOT NULL, user_id TEXT NOT NULL,
        last_mutation_id INTEGER NOT NULL, collections TEXT NOT NULL,
        PRIMARY KEY (tenant, client_id)
    );
    INSERT INTO clients SELECT tenant, client_id, user_id, last_mutation_id, collections FROM clients_v1;
    CREATE TABLE outcomes_v2 (
        tenant TEXT NOT NULL, client_id TEXT NOT NULL, mutation_id INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        PRIMARY KEY (tenant, client_id, mutation_id)
    );
    INSERT INTO outcomes_v2
        SELECT c.tenant, o.client_id, o.mutation_id, o.outcome
        FROM outcomes o JOIN clients_v1 c ON c.client_id = o.client_id;
    DROP TABLE outcomes;
    ALTER TABLE outcomes_v2 RENAME TO outcomes;
    DROP TABLE clients_v1;
    ",
];

/// Brings the database to the newest schema. A database written by the first release of the
/// server (tables created with `IF NOT EXISTS`, `user_version` 1) continues from migration 2.
fn migrate(conn: &mut Connection) -> Result<(), StorageError> {
    let applied: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// The newest schema version.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// SQLite-backed storage. Calls are serialized on one connection (SQLite has one writer).
pub struct SqliteStorage {
    conn: Mutex<Connection>,
    /// Sync-log rows written per tenant since its last pruning.
    unpruned: Mutex<HashMap<String, u64>>,
}

impl SqliteStorage {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &str) -> Result<Self, StorageError> {
        let mut conn = Connection::open(path)?;
        // WAL: readers don't block the writer; NORMAL sync is durable against process crashes.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "busy_timeout", 5_000)?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
            unpruned: Mutex::default(),
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
                    "SELECT user_id, last_mutation_id FROM clients WHERE tenant = ?1 AND client_id = ?2",
                    [self.tenant, client],
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
                    "SELECT outcome FROM outcomes WHERE tenant = ?1 AND client_id = ?2 AND mutation_id = ?3",
                    params![self.tenant, client, id],
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

/// The user the caller's client id is bound to in its tenant, if it is registered.
fn owner(db: &Connection, caller: Caller<'_>) -> Result<Option<String>, StorageError> {
    Ok(db
        .query_row(
            "SELECT user_id FROM clients WHERE tenant = ?1 AND client_id = ?2",
            [caller.tenant, caller.client_id],
            |r| r.get(0),
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
        if owner(&tx, caller)?.is_some_and(|user| user != caller.user) {
            return Ok(Err(forbidden()));
        }
        tx.execute(
            "INSERT INTO clients (client_id, tenant, user_id, last_mutation_id, collections) VALUES (?1, ?2, ?3, 0, ?4)
             ON CONFLICT (tenant, client_id) DO UPDATE SET collections = excluded.collections",
            params![caller.client_id, caller.tenant, caller.user, serde_json::to_string(collections)?],
        )?;
        let last_mutation_id = tx.query_row(
            "SELECT last_mutation_id FROM clients WHERE tenant = ?1 AND client_id = ?2",
            [caller.tenant, caller.client_id],
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
        let row: Option<(String, String)> = conn
            .query_row(
                "SELECT user_id, collections FROM clients WHERE tenant = ?1 AND client_id = ?2",
                [caller.tenant, caller.client_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            Some((user, json)) if user == caller.user => Ok(Some(serde_json::from_str(&json)?)),
            _ => Ok(None),
        }
    }

    fn push(
        &self,
        caller: Caller<'_>,
        transactions: &[WireTransaction],
        now: Millis,
        bounds: PushBounds,
        check: Check<'_>,
    ) -> PushOutcome {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if owner(&tx, caller)?.is_some_and(|user| user != caller.user) {
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
            bounds,
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
            let mut insert = tx.prepare_cached("INSERT OR REPLACE INTO outcomes (tenant, client_id, mutation_id, outcome) VALUES (?1, ?2, ?3, ?4)")?;
            for r in &commit.outcomes {
                insert.execute(params![
                    caller.tenant,
                    caller.client_id,
                    r.id,
                    serde_json::to_string(&r.outcome)?
                ])?;
            }
        }
        tx.execute(
            "INSERT INTO clients (client_id, tenant, user_id, last_mutation_id, collections) VALUES (?1, ?2, ?3, ?4, '[]')
             ON CONFLICT (tenant, client_id) DO UPDATE SET last_mutation_id = excluded.last_mutation_id",
            params![caller.client_id, caller.tenant, caller.user, commit.client.last_mutation_id],
        )?;
        tx.execute(
            "DELETE FROM outcomes WHERE tenant = ?1 AND client_id = ?2 AND mutation_id + ?3 < ?4",
            params![
                caller.tenant,
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
        bounds: PageBounds,
        collections: &[String],
    ) -> Result<Page, StorageError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT collection, id, version, deleted, hlc, fields FROM documents
             WHERE tenant = ?1 AND version > ?2 ORDER BY version LIMIT ?3",
        )?;
        let mut rows = stmt.query(params![tenant, cursor, bounds.changes as u64 + 1])?;
        let (mut changes, mut next, mut read, mut bytes) = (Vec::new(), cursor, 0, 0);
        while let Some(row) = rows.next()? {
            if read == bounds.changes {
                return Ok(Page {
                    changes,
                    cursor: next,
                    has_more: true,
                });
            }
            read += 1;
            let collection: String = row.get(0)?;
            let version: Version = row.get(2)?;
            // The cursor moves over every row read, also those of collections this client skips.
            if !collections.contains(&collection) {
                next = version;
                continue;
            }
            let (id, hlc, fields): (String, String, String) =
                (row.get(1)?, row.get(4)?, row.get(5)?);
            // Roughly the change's encoded size; a page always carries at least one change.
            bytes += CHANGE_OVERHEAD + collection.len() + id.len() + hlc.len() + fields.len();
            if bytes > bounds.bytes && !changes.is_empty() {
                return Ok(Page {
                    changes,
                    cursor: next,
                    has_more: true,
                });
            }
            let doc = Document {
                id,
                fields: serde_json::from_str(&fields)?,
                version,
                hlc: serde_json::from_str(&hlc)?,
                deleted: row.get(3)?,
            };
            changes.push(Change { collection, doc });
            next = version;
        }
        Ok(Page {
            changes,
            cursor: next,
            has_more: false,
        })
    }

    fn log(&self, tenant: &str, e: &SyncLog, retention: LogRetention) -> Result<(), StorageError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO sync_logs (tenant, sync_type, status, user_id, client_id, started_at, completed_at, synced_count, error_count, collections, results, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                tenant, e.sync_type, e.status, e.user_id, e.client_id, e.started_at, e.completed_at, e.synced_count, e.error_count,
                serde_json::to_string(&e.collections)?, e.results.to_string(), e.error
            ],
        )?;
        // Pruning scans the tenant's rows, so it runs once per PRUNE_EVERY rows written.
        let mut unpruned = self.unpruned.lock().unwrap_or_else(|p| p.into_inner());
        let written = unpruned.entry(tenant.to_owned()).or_default();
        *written += 1;
        if *written >= PRUNE_EVERY {
            *written = 0;
            conn.execute(
                "DELETE FROM sync_logs WHERE tenant = ?1 AND (completed_at < ?2 OR id <= (
                   SELECT id FROM sync_logs WHERE tenant = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?3))",
                params![
                    tenant,
                    e.completed_at.saturating_sub(retention.max_age_ms),
                    retention.keep
                ],
            )?;
        }
        Ok(())
    }

    fn logs(&self, tenant: &str, f: &LogFilter) -> Result<LogReport, StorageError> {
        let conn = self.conn();
        // A row is written when its run ends: its creation time is `completed_at`.
        let filter = "tenant = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR sync_type = ?3)
                      AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(collections) WHERE value = ?4))
                      AND (?5 IS NULL OR completed_at >= ?5) AND (?6 IS NULL OR completed_at <= ?6)";
        let mut stmt = conn.prepare(&format!(
            "SELECT id, sync_type, status, user_id, client_id, started_at, completed_at, synced_count, error_count, collections, results, error
             FROM sync_logs WHERE {filter} ORDER BY id DESC LIMIT ?7"
        ))?;
        let args = params![
            tenant,
            f.status,
            f.sync_type,
            f.collection,
            f.from,
            f.to,
            f.limit as u64
        ];
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
                        created_at: r.get(6)?,
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
            .query_map(
                params![tenant, f.status, f.sync_type, f.collection, f.from, f.to],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        LogTotals {
                            runs: r.get(1)?,
                            failed: r.get(2)?,
                            synced: r.get(3)?,
                            errors: r.get(4)?,
                        },
                    ))
                },
            )?
            .collect::<Result<_, _>>()?;
        Ok(LogReport { logs, totals })
    }
}
