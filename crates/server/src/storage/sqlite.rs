//! SQLite storage: one file in WAL mode. One writer thread owns the only connection that writes
//! (SQLite has one writer) and runs each batch in one IMMEDIATE transaction, so versions are
//! assigned and committed in order and a `kill -9` loses nothing that was acknowledged. A few
//! reader threads, each with its own connection, serve pulls and the sync log meanwhile.

use super::group::{Batch, ClientRow, Decided, Reads, Snapshot, Writes};
use super::{
    group, log_row, page, Backend, Durability, LogFilter, LogReport, LogTotals, Page, PageBounds,
    Row, StorageError, SyncLog,
};
use ferrosync_core::Version;
use futures_util::future::BoxFuture;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::oneshot;

/// Reader threads (and connections).
const READERS: usize = 2;

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

/// The newest SQLite schema version.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

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

/// A job for a connection's thread.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Threads that each own a connection and take jobs from one queue; they end when it closes.
struct Threads {
    jobs: mpsc::Sender<Job>,
}

impl Threads {
    fn spawn(name: &str, connections: Vec<Connection>) -> Result<Self, StorageError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for mut conn in connections {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || loop {
                    let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok(job) = job else { return };
                    // A job that panics drops its reply (its caller gets `Stopped`) and rolls
                    // back its transaction; the thread serves the next one.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut conn)));
                })
                .map_err(|e| {
                    StorageError::Unavailable(format!("cannot start a database thread: {e}"))
                })?;
        }
        Ok(Self { jobs })
    }

    /// Runs `f` on one of the threads' connections.
    async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, StorageError> + Send + 'static,
    ) -> Result<R, StorageError> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = reply.send(f(conn));
        });
        self.jobs.send(job).map_err(|_| StorageError::Stopped)?;
        answer.await.map_err(|_| StorageError::Stopped)?
    }
}

/// SQLite-backed storage.
pub(super) struct Sqlite {
    writer: Threads,
    readers: Threads,
}

impl Sqlite {
    /// Opens (creating and migrating if needed) the database file at `path`, committing with
    /// `durability`.
    pub(super) fn open(path: &str, durability: Durability) -> Result<Self, StorageError> {
        let mut conn = Connection::open(path)?;
        // WAL: readers don't block the writer.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        let synchronous = match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", synchronous)?;
        conn.pragma_update(None, "busy_timeout", 5_000)?;
        migrate(&mut conn)?;
        let readers = (0..READERS)
            .map(|_| {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI;
                let reader = Connection::open_with_flags(path, flags)?;
                reader.pragma_update(None, "busy_timeout", 5_000)?;
                Ok(reader)
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        Ok(Self {
            writer: Threads::spawn("ferrosync-sqlite-writer", vec![conn])?,
            readers: Threads::spawn("ferrosync-sqlite-reader", readers)?,
        })
    }
}

/// One batch in one transaction: read, decide, write, commit.
fn commit(conn: &mut Connection, batch: &Batch) -> Result<Decided, StorageError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let snapshot = read(&tx, &batch.reads())?;
    let decided = group::decide(batch, snapshot)?;
    write(&tx, &decided.writes)?;
    tx.commit()?;
    Ok(decided)
}

/// The rows a batch needs (SQLite's single writer needs no row locks).
fn read(db: &Connection, reads: &Reads) -> Result<Snapshot, StorageError> {
    let mut snapshot = Snapshot::default();
    let mut head = db.prepare_cached("SELECT head FROM tenants WHERE tenant = ?1")?;
    for tenant in &reads.tenants {
        if let Some(value) = head.query_row([tenant], |r| r.get(0)).optional()? {
            snapshot.heads.insert(tenant.clone(), value);
        }
    }
    let mut client = db.prepare_cached(
        "SELECT user_id, last_mutation_id, collections FROM clients WHERE tenant = ?1 AND client_id = ?2",
    )?;
    for key in &reads.clients {
        let row = client
            .query_row([&key.0, &key.1], |r| {
                Ok(ClientRow {
                    user: r.get(0)?,
                    last_mutation_id: r.get(1)?,
                    collections: r.get(2)?,
                })
            })
            .optional()?;
        if let Some(row) = row {
            snapshot.clients.insert(key.clone(), row);
        }
    }
    let mut document = db.prepare_cached(
        "SELECT version, writer, deleted, hlc, fields FROM documents
         WHERE tenant = ?1 AND collection = ?2 AND id = ?3",
    )?;
    for key in &reads.documents {
        let row = document
            .query_row([&key.0, &key.1, &key.2], |r| {
                let row = Row {
                    collection: key.1.clone(),
                    id: key.2.clone(),
                    version: r.get(0)?,
                    deleted: r.get(2)?,
                    hlc: r.get(3)?,
                    fields: r.get(4)?,
                };
                Ok((row, r.get::<_, String>(1)?))
            })
            .optional()?;
        if let Some((row, writer)) = row {
            snapshot
                .documents
                .insert(key.clone(), row.server_doc(writer)?);
        }
    }
    let mut outcome = db.prepare_cached(
        "SELECT mutation_id, outcome FROM outcomes
         WHERE tenant = ?1 AND client_id = ?2 AND mutation_id BETWEEN ?3 AND ?4",
    )?;
    for span in &reads.outcomes {
        let rows = outcome.query_map(
            params![span.tenant, span.client_id, span.first, span.last],
            |r| Ok((r.get::<_, u64>(0)?, r.get::<_, String>(1)?)),
        )?;
        for row in rows {
            let (id, json) = row?;
            let key = (span.tenant.clone(), span.client_id.clone(), id);
            snapshot.outcomes.insert(key, serde_json::from_str(&json)?);
        }
    }
    Ok(snapshot)
}

/// Writes what a batch decided.
fn write(db: &Connection, writes: &Writes) -> Result<(), StorageError> {
    let mut document = db.prepare_cached(
        "INSERT INTO documents (tenant, collection, id, version, writer, deleted, hlc, fields)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (tenant, collection, id) DO UPDATE SET version = excluded.version,
           writer = excluded.writer, deleted = excluded.deleted, hlc = excluded.hlc,
           fields = excluded.fields",
    )?;
    for (tenant, w) in writes.new_documents.iter().chain(&writes.changed_documents) {
        document.execute(params![
            tenant,
            w.collection,
            w.doc.id(),
            w.doc.version(),
            w.writer,
            w.doc.deleted(),
            serde_json::to_string(&w.doc.hlc())?,
            serde_json::to_string(&w.doc.fields())?
        ])?;
    }
    let mut outcome = db.prepare_cached(
        "INSERT OR REPLACE INTO outcomes (tenant, client_id, mutation_id, outcome) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for row in &writes.outcomes {
        outcome.execute(params![row.tenant, row.client_id, row.id, row.outcome])?;
    }
    let mut client = db.prepare_cached(
        "INSERT INTO clients (tenant, client_id, user_id, last_mutation_id, collections)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (tenant, client_id) DO UPDATE SET user_id = excluded.user_id,
           last_mutation_id = excluded.last_mutation_id, collections = excluded.collections",
    )?;
    for ((tenant, client_id), row) in &writes.clients {
        client.execute(params![
            tenant,
            client_id,
            row.user,
            row.last_mutation_id,
            row.collections
        ])?;
    }
    let mut head = db.prepare_cached(
        "INSERT INTO tenants (tenant, head) VALUES (?1, ?2)
         ON CONFLICT (tenant) DO UPDATE SET head = excluded.head",
    )?;
    for (tenant, version) in &writes.heads {
        head.execute(params![tenant, version])?;
    }
    let mut prune = db.prepare_cached(
        "DELETE FROM outcomes WHERE tenant = ?1 AND client_id = ?2 AND mutation_id < ?3",
    )?;
    for ((tenant, client_id), below) in &writes.prune_outcomes {
        prune.execute(params![tenant, client_id, below])?;
    }
    let mut log = db.prepare_cached(
        "INSERT INTO sync_logs (tenant, sync_type, status, user_id, client_id, started_at,
           completed_at, synced_count, error_count, collections, results, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for (tenant, e) in &writes.logs {
        log.execute(params![
            tenant,
            e.sync_type,
            e.status,
            e.user_id,
            e.client_id,
            e.started_at,
            e.completed_at,
            e.synced_count,
            e.error_count,
            serde_json::to_string(&e.collections)?,
            e.results.to_string(),
            e.error
        ])?;
    }
    let mut prune = db.prepare_cached(
        "DELETE FROM sync_logs WHERE tenant = ?1 AND (completed_at < ?2 OR id <= (
           SELECT id FROM sync_logs WHERE tenant = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?3))",
    )?;
    for p in &writes.prune_logs {
        prune.execute(params![p.tenant, p.before, p.keep])?;
    }
    Ok(())
}

impl Backend for Sqlite {
    fn commit(&self, batch: Arc<Batch>) -> BoxFuture<'_, Result<Decided, StorageError>> {
        Box::pin(self.writer.run(move |conn| commit(conn, &batch)))
    }

    fn pull(
        &self,
        tenant: String,
        cursor: Version,
        bounds: PageBounds,
        collections: Option<Vec<String>>,
    ) -> BoxFuture<'_, Result<Page, StorageError>> {
        Box::pin(self.readers.run(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT collection, id, version, deleted, hlc, fields FROM documents
                 WHERE tenant = ?1 AND version > ?2 ORDER BY version LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![tenant, cursor, bounds.changes as u64 + 1], |r| {
                Ok(Row {
                    collection: r.get(0)?,
                    id: r.get(1)?,
                    version: r.get(2)?,
                    deleted: r.get(3)?,
                    hlc: r.get(4)?,
                    fields: r.get(5)?,
                })
            })?;
            page(
                rows.map(|row| row.map_err(StorageError::from)),
                cursor,
                bounds,
                collections.as_deref(),
            )
        }))
    }

    fn head(&self, tenant: String) -> BoxFuture<'_, Result<Version, StorageError>> {
        Box::pin(self.readers.run(move |conn| {
            let head = conn
                .prepare_cached("SELECT head FROM tenants WHERE tenant = ?1")?
                .query_row([tenant], |r| r.get(0))
                .optional()?;
            Ok(head.unwrap_or(0))
        }))
    }

    fn client(
        &self,
        tenant: String,
        client_id: String,
    ) -> BoxFuture<'_, Result<Option<(String, String)>, StorageError>> {
        Box::pin(self.readers.run(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT user_id, collections FROM clients WHERE tenant = ?1 AND client_id = ?2",
                )?
                .query_row([tenant, client_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?)
        }))
    }

    fn logs(&self, tenant: String, f: LogFilter) -> BoxFuture<'_, Result<LogReport, StorageError>> {
        Box::pin(self.readers.run(move |conn| logs(conn, &tenant, &f)))
    }
}

fn logs(conn: &Connection, tenant: &str, f: &LogFilter) -> Result<LogReport, StorageError> {
    // A row is written when its run ends: its creation time is `completed_at`.
    let filter = "tenant = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR sync_type = ?3)
                  AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(collections) WHERE value = ?4))
                  AND (?5 IS NULL OR completed_at >= ?5) AND (?6 IS NULL OR completed_at <= ?6)";
    let mut stmt = conn.prepare(&format!(
        "SELECT id, sync_type, status, user_id, client_id, started_at, completed_at, synced_count,
           error_count, collections, results, error
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
            let (log, collections, results) = row?;
            log_row(log, &collections, &results)
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
