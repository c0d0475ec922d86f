//! PostgreSQL storage, shared by several server nodes: tokio-postgres with a deadpool connection
//! pool, the schema created and migrated at start under an advisory lock, and LISTEN/NOTIFY to
//! tell the other nodes what each commits.
//!
//! Versions never skip: every batch first locks the head rows of the tenants it writes (in
//! tenant order, so two nodes never deadlock), then assigns each change `head + 1, head + 2, …`
//! and commits, so a tenant's versions commit in order whichever node writes them (see
//! docs/PROTOCOL.md, rule 7).

use super::group::{Batch, ClientKey, ClientRow, Decided, Reads, Snapshot, Writes};
use super::{
    emit, group, log_row, page, Backend, Feed, FeedSender, LogFilter, LogReport, LogTotals, Page,
    PageBounds, Row, StorageError, SyncLog,
};
use deadpool_postgres::{ClientWrapper, Manager, Pool, Runtime};
use ferrosync_core::server::ServerDoc;
use ferrosync_core::Version;
use futures_util::future::{try_join_all, BoxFuture};
use futures_util::StreamExt;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, NoTls};

/// The schema, one migration per version; `ferrosync_migrations` lists those applied. They run
/// in one transaction under an advisory lock, so nodes starting together apply each once.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE tenants (tenant TEXT PRIMARY KEY, head BIGINT NOT NULL);
    CREATE TABLE documents (
        tenant TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL,
        version BIGINT NOT NULL, writer TEXT NOT NULL, deleted BOOLEAN NOT NULL,
        hlc TEXT NOT NULL, fields TEXT NOT NULL,
        PRIMARY KEY (tenant, collection, id)
    );
    CREATE UNIQUE INDEX documents_by_version ON documents (tenant, version);
    CREATE TABLE clients (
        tenant TEXT NOT NULL, client_id TEXT NOT NULL, user_id TEXT NOT NULL,
        last_mutation_id BIGINT NOT NULL, collections TEXT NOT NULL,
        PRIMARY KEY (tenant, client_id)
    );
    CREATE TABLE outcomes (
        tenant TEXT NOT NULL, client_id TEXT NOT NULL, mutation_id BIGINT NOT NULL,
        outcome TEXT NOT NULL,
        PRIMARY KEY (tenant, client_id, mutation_id)
    );
    CREATE TABLE sync_logs (
        id BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, sync_type TEXT NOT NULL,
        status TEXT NOT NULL, user_id TEXT NOT NULL, client_id TEXT NOT NULL,
        started_at BIGINT NOT NULL, completed_at BIGINT NOT NULL,
        synced_count BIGINT NOT NULL, error_count BIGINT NOT NULL,
        collections TEXT NOT NULL, results TEXT NOT NULL, error TEXT
    );
    CREATE INDEX sync_logs_by_tenant ON sync_logs (tenant, id);
",
    r#"
    -- 2: keys compare as bytes ("C"), not by the cluster's locale, whose comparisons took a
    -- share of every index lookup and insert of the writes and whose changes across C library
    -- upgrades would corrupt the indexes. The tables keep their rows; their indexes are rebuilt.
    ALTER TABLE tenants ALTER COLUMN tenant TYPE TEXT COLLATE "C";
    ALTER TABLE documents ALTER COLUMN tenant TYPE TEXT COLLATE "C",
        ALTER COLUMN collection TYPE TEXT COLLATE "C", ALTER COLUMN id TYPE TEXT COLLATE "C";
    ALTER TABLE clients ALTER COLUMN tenant TYPE TEXT COLLATE "C",
        ALTER COLUMN client_id TYPE TEXT COLLATE "C";
    ALTER TABLE outcomes ALTER COLUMN tenant TYPE TEXT COLLATE "C",
        ALTER COLUMN client_id TYPE TEXT COLLATE "C";
    ALTER TABLE sync_logs ALTER COLUMN tenant TYPE TEXT COLLATE "C";
"#,
];

/// The newest PostgreSQL schema version.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// The first key of the advisory lock migrations run under (the second is the schema's).
const MIGRATION_LOCK: i32 = 0x6665_7272; // "ferr"

/// Connections of the readers' pool (pulls, the sync log, relays reading other nodes' commits).
/// The writer has a connection of its own, so reads never hold up writes.
const READERS: usize = 16;

/// How long a request waits for a pooled connection, or for a new one.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// How many times a batch is tried when PostgreSQL aborts it for a deadlock or a
/// serialization failure (nothing of it was committed).
const ATTEMPTS: usize = 3;

/// The longest wait before the listening connection is tried again.
const LISTEN_BACKOFF_CAP: Duration = Duration::from_secs(5);

/// Planner settings of the writer's session. Every statement it runs looks up or writes a
/// batch's rows by key (at most a few thousand) in tables that grow without bound, and each is
/// planned once per connection (a prepared statement's generic plan). Planned while the tables
/// are small, as on a new database, PostgreSQL would pick hash joins over sequential scans and
/// keep them, reading every row of `documents` and `outcomes` for each batch. These settings
/// leave it nested loops over the batch's keys into the primary keys, at any table size.
const WRITER_PLANNER: &str = "-c enable_seqscan=off -c enable_hashjoin=off -c enable_mergejoin=off";

/// PostgreSQL-backed storage.
pub(super) struct Postgres {
    /// The writer's connection (a pool of one, which reconnects after a failure).
    writer: Pool,
    /// Everyone else's.
    pool: Pool,
    /// The notification channel of this schema.
    channel: String,
    /// This node, in its notifications (so it ignores its own).
    node: String,
    /// The task listening to other nodes' notifications.
    listener: JoinHandle<()>,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

fn unavailable(error: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(error.to_string())
}

/// A `u64` of the protocol (at most 2^63 - 1) as a BIGINT.
fn int(value: u64) -> i64 {
    value as i64
}

impl Postgres {
    /// Connects to `url`, migrates the schema (the one the URL's `search_path` names first, by
    /// default `public`), and starts listening to other nodes' commits, which go to `feed`.
    pub(super) async fn open(url: &str, feed: FeedSender) -> Result<Self, StorageError> {
        let mut config: tokio_postgres::Config = url.parse()?;
        if config.get_application_name().is_none() {
            config.application_name("ferrosync-server");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(POOL_TIMEOUT);
        }
        config.keepalives_idle(Duration::from_secs(10));
        let pool_of = |config, size| {
            Pool::builder(Manager::new(config, NoTls))
                .max_size(size)
                .runtime(Runtime::Tokio1)
                .wait_timeout(Some(POOL_TIMEOUT))
                .create_timeout(Some(POOL_TIMEOUT))
                .recycle_timeout(Some(POOL_TIMEOUT))
                .build()
                .map_err(unavailable)
        };
        let writer = pool_of(writer_config(&config), 1)?;
        let pool = pool_of(config.clone(), READERS)?;
        let mut client = pool.get().await.map_err(unavailable)?;
        migrate(&mut client).await?;
        let schema: Option<String> = client
            .query_one("SELECT current_schema()", &[])
            .await?
            .get(0);
        drop(client);
        let channel = format!("ferrosync:{}", schema.unwrap_or_default());
        let node = random_id();
        let listener = tokio::spawn(listen(config, channel.clone(), node.clone(), feed));
        Ok(Self {
            writer,
            pool,
            channel,
            node,
            listener,
        })
    }

    /// One attempt at a batch: two round trips to the database and the commit's flush.
    async fn try_commit(&self, batch: &Batch) -> Result<Decided, StorageError> {
        let client = self.writer.get().await.map_err(unavailable)?;
        let decided = async {
            let snapshot = read(&client, &batch.reads()).await?;
            let decided = group::decide(batch, snapshot)?;
            write(&client, &decided.writes, &self.channel, &self.node).await?;
            Ok(decided)
        }
        .await;
        if decided.is_err() {
            // It may be left inside the failed transaction: it is closed, never reused.
            drop(deadpool_postgres::Object::take(client));
        }
        decided
    }
}

/// The writer's connection settings: `config` with [`WRITER_PLANNER`] after its own options.
fn writer_config(config: &tokio_postgres::Config) -> tokio_postgres::Config {
    let mut writer = config.clone();
    let options = match config.get_options() {
        Some(own) => format!("{own} {WRITER_PLANNER}"),
        None => WRITER_PLANNER.to_owned(),
    };
    writer.options(options);
    writer
}

/// Applies the migrations not applied yet, under the schema's advisory lock.
async fn migrate(client: &mut deadpool_postgres::Object) -> Result<(), StorageError> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
        &[&MIGRATION_LOCK],
    )
    .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS ferrosync_migrations (
           version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await?;
    let applied: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM ferrosync_migrations",
            &[],
        )
        .await?
        .get(0);
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO ferrosync_migrations (version) VALUES ($1)",
            &[&(index as i32 + 1)],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Begins the transaction, locks the head rows of the batch's tenants, and reads what the batch
/// needs: one round trip, the statements pipelined (the server runs them in order, so the reads
/// run once the locks are held).
async fn read(client: &ClientWrapper, reads: &Reads) -> Result<Snapshot, StorageError> {
    let mut snapshot = Snapshot::default();
    let (client_tenants, client_ids): (Vec<&str>, Vec<&str>) = reads
        .clients
        .iter()
        .map(|(t, c)| (t.as_str(), c.as_str()))
        .unzip();
    let mut doc_keys: (Vec<&str>, Vec<&str>, Vec<&str>) = Default::default();
    for (t, c, id) in &reads.documents {
        doc_keys.0.push(t);
        doc_keys.1.push(c);
        doc_keys.2.push(id);
    }
    let mut spans: (Vec<&str>, Vec<&str>, Vec<i64>, Vec<i64>) = Default::default();
    for span in &reads.outcomes {
        spans.0.push(&span.tenant);
        spans.1.push(&span.client_id);
        spans.2.push(int(span.first));
        spans.3.push(int(span.last));
    }
    let (create, lock, clients, documents, outcomes) = tokio::try_join!(
        // Head rows are created at 0 when missing (only those: inserting over a row that
        // another transaction updates would wait for it as a lock does)...
        client.prepare_cached(
            "INSERT INTO tenants (tenant, head) SELECT t, 0 FROM unnest($1::text[]) AS u(t)
             WHERE NOT EXISTS (SELECT 1 FROM tenants WHERE tenant = u.t)
             ORDER BY t ON CONFLICT (tenant) DO NOTHING",
        ),
        // ...then locked in tenant order until the commit: writers of a tenant, on any node,
        // take turns from here on.
        client.prepare_cached(
            "SELECT tenant, head FROM tenants WHERE tenant = ANY($1) ORDER BY tenant FOR UPDATE",
        ),
        client.prepare_cached(
            "SELECT c.tenant, c.client_id, c.user_id, c.last_mutation_id, c.collections
             FROM clients c JOIN unnest($1::text[], $2::text[]) AS k(tenant, client_id)
               ON c.tenant = k.tenant AND c.client_id = k.client_id",
        ),
        client.prepare_cached(
            "SELECT d.tenant, d.collection, d.id, d.version, d.writer, d.deleted, d.hlc, d.fields
             FROM documents d JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(tenant, collection, id)
               ON d.tenant = k.tenant AND d.collection = k.collection AND d.id = k.id",
        ),
        client.prepare_cached(
            "SELECT o.tenant, o.client_id, o.mutation_id, o.outcome
             FROM outcomes o JOIN unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
               AS k(tenant, client_id, first, last)
               ON o.tenant = k.tenant AND o.client_id = k.client_id
              AND o.mutation_id BETWEEN k.first AND k.last",
        ),
    )?;
    let lock_params: [&(dyn ToSql + Sync); 1] = [&reads.tenants];
    let client_params: [&(dyn ToSql + Sync); 2] = [&client_tenants, &client_ids];
    let doc_params: [&(dyn ToSql + Sync); 3] = [&doc_keys.0, &doc_keys.1, &doc_keys.2];
    let span_params: [&(dyn ToSql + Sync); 4] = [&spans.0, &spans.1, &spans.2, &spans.3];
    let ((), _, heads, clients, documents, outcomes) = tokio::try_join!(
        client.batch_execute("BEGIN"),
        client.execute(&create, &lock_params),
        client.query(&lock, &lock_params),
        client.query(&clients, &client_params),
        client.query(&documents, &doc_params),
        client.query(&outcomes, &span_params),
    )?;
    for row in heads {
        snapshot
            .heads
            .insert(row.get(0), row.get::<_, i64>(1) as Version);
    }
    for row in clients {
        let client = ClientRow {
            user: row.get(2),
            last_mutation_id: row.get::<_, i64>(3) as u64,
            collections: row.get(4),
        };
        snapshot.clients.insert((row.get(0), row.get(1)), client);
    }
    for row in documents {
        let (tenant, writer): (String, String) = (row.get(0), row.get(4));
        let stored = Row {
            collection: row.get(1),
            id: row.get(2),
            version: row.get::<_, i64>(3) as Version,
            deleted: row.get(5),
            hlc: row.get(6),
            fields: row.get(7),
        };
        let key = (tenant, stored.collection.clone(), stored.id.clone());
        snapshot.documents.insert(key, stored.server_doc(writer)?);
    }
    for row in outcomes {
        let key = (row.get(0), row.get(1), row.get::<_, i64>(2) as u64);
        let outcome: String = row.get(3);
        snapshot
            .outcomes
            .insert(key, serde_json::from_str(&outcome)?);
    }
    Ok(snapshot)
}

/// Writes what a batch decided, each kind of row in one statement, tells the other nodes
/// (delivered when the transaction commits), and commits: one round trip, pipelined. A failing
/// statement fails the transaction, which the `COMMIT` then rolls back.
async fn write(
    client: &ClientWrapper,
    w: &Writes,
    channel: &str,
    node: &str,
) -> Result<(), StorageError> {
    let new_documents = DocColumns::new(&w.new_documents)?;
    let changed_documents = DocColumns::new(&w.changed_documents)?;
    let mut outcomes: (Vec<&str>, Vec<&str>, Vec<i64>, Vec<&str>) = Default::default();
    for o in &w.outcomes {
        outcomes.0.push(&o.tenant);
        outcomes.1.push(&o.client_id);
        outcomes.2.push(int(o.id));
        outcomes.3.push(&o.outcome);
    }
    let column =
        |f: fn(&(ClientKey, ClientRow)) -> &str| -> Vec<&str> { w.clients.iter().map(f).collect() };
    let (client_tenants, client_ids, client_users, client_collections) = (
        column(|((t, _), _)| t),
        column(|((_, c), _)| c),
        column(|(_, r)| &r.user),
        column(|(_, r)| &r.collections),
    );
    let client_last: Vec<i64> = w
        .clients
        .iter()
        .map(|(_, r)| int(r.last_mutation_id))
        .collect();
    let heads: (Vec<&str>, Vec<i64>) = w.heads.iter().map(|(t, h)| (t.as_str(), int(*h))).unzip();
    let notes: Vec<String> = w
        .heads
        .iter()
        .map(|(tenant, head)| format!("{node} {head} {tenant}"))
        .collect();
    let mut prunes: (Vec<&str>, Vec<&str>, Vec<i64>) = Default::default();
    for ((tenant, client_id), below) in &w.prune_outcomes {
        prunes.0.push(tenant);
        prunes.1.push(client_id);
        prunes.2.push(int(*below));
    }
    let logs = LogColumns::new(&w.logs)?;
    let log_prunes: Vec<(&str, i64, i64)> = w
        .prune_logs
        .iter()
        .map(|p| (p.tenant.as_str(), int(p.before), int(p.keep)))
        .collect();

    let mut statements: Vec<(&str, Vec<&(dyn ToSql + Sync)>)> = Vec::new();
    // The batch holds its tenants' head locks, so new documents are plain inserts (cheaper
    // than an upsert's speculative insertion) and stored ones plain updates.
    if !w.new_documents.is_empty() {
        statements.push((
            "INSERT INTO documents (tenant, collection, id, version, writer, deleted, hlc, fields)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[],
               $6::bool[], $7::text[], $8::text[])",
            new_documents.params(),
        ));
    }
    if !w.changed_documents.is_empty() {
        statements.push((
            "UPDATE documents d SET version = u.version, writer = u.writer, deleted = u.deleted,
               hlc = u.hlc, fields = u.fields
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bool[],
               $7::text[], $8::text[]) AS u(tenant, collection, id, version, writer, deleted, hlc, fields)
             WHERE d.tenant = u.tenant AND d.collection = u.collection AND d.id = u.id",
            changed_documents.params(),
        ));
    }
    if !w.outcomes.is_empty() {
        statements.push((
            "INSERT INTO outcomes (tenant, client_id, mutation_id, outcome)
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
             ON CONFLICT (tenant, client_id, mutation_id) DO UPDATE SET outcome = excluded.outcome",
            vec![&outcomes.0, &outcomes.1, &outcomes.2, &outcomes.3],
        ));
    }
    if !w.clients.is_empty() {
        statements.push((
            "INSERT INTO clients (tenant, client_id, user_id, last_mutation_id, collections)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[])
             ON CONFLICT (tenant, client_id) DO UPDATE SET user_id = excluded.user_id,
               last_mutation_id = excluded.last_mutation_id, collections = excluded.collections",
            vec![
                &client_tenants,
                &client_ids,
                &client_users,
                &client_last,
                &client_collections,
            ],
        ));
    }
    if !w.heads.is_empty() {
        statements.push((
            "UPDATE tenants t SET head = u.head FROM unnest($1::text[], $2::bigint[]) AS u(tenant, head)
             WHERE t.tenant = u.tenant",
            vec![&heads.0, &heads.1],
        ));
        statements.push((
            "SELECT pg_notify($1, n) FROM unnest($2::text[]) AS u(n)",
            vec![&channel, &notes],
        ));
    }
    if !w.prune_outcomes.is_empty() {
        statements.push((
            "DELETE FROM outcomes o USING unnest($1::text[], $2::text[], $3::bigint[])
               AS p(tenant, client_id, below)
             WHERE o.tenant = p.tenant AND o.client_id = p.client_id AND o.mutation_id < p.below",
            vec![&prunes.0, &prunes.1, &prunes.2],
        ));
    }
    if !w.logs.is_empty() {
        statements.push((
            "INSERT INTO sync_logs (tenant, sync_type, status, user_id, client_id, started_at,
               completed_at, synced_count, error_count, collections, results, error)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
               $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::text[], $11::text[],
               $12::text[])",
            logs.params(),
        ));
    }
    for (tenant, before, keep) in &log_prunes {
        statements.push((
            "DELETE FROM sync_logs WHERE tenant = $1 AND (completed_at < $2 OR id <= (
               SELECT id FROM sync_logs WHERE tenant = $1 ORDER BY id DESC LIMIT 1 OFFSET $3))",
            vec![tenant, before, keep],
        ));
    }
    let prepared =
        try_join_all(statements.iter().map(|(sql, _)| client.prepare_cached(sql))).await?;
    let writes = try_join_all(
        prepared
            .iter()
            .zip(&statements)
            .map(|(statement, (_, params))| client.execute(statement, params)),
    );
    tokio::try_join!(writes, client.batch_execute("COMMIT"))?;
    Ok(())
}

/// Documents of a batch as columns.
#[derive(Default)]
struct DocColumns<'a> {
    /// Tenant, collection, id and writer.
    text: [Vec<&'a str>; 4],
    versions: Vec<i64>,
    deleted: Vec<bool>,
    hlcs: Vec<String>,
    fields: Vec<String>,
}

impl<'a> DocColumns<'a> {
    fn new(documents: &'a [(String, ServerDoc)]) -> Result<Self, StorageError> {
        let mut c = Self::default();
        for (tenant, d) in documents {
            for (column, value) in
                c.text
                    .iter_mut()
                    .zip([tenant.as_str(), &d.collection, d.doc.id(), &d.writer])
            {
                column.push(value);
            }
            c.versions.push(int(d.doc.version()));
            c.deleted.push(d.doc.deleted());
            c.hlcs.push(serde_json::to_string(&d.doc.hlc())?);
            c.fields.push(serde_json::to_string(&d.doc.fields())?);
        }
        Ok(c)
    }

    /// In the order of the columns of `documents`.
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let [tenants, collections, ids, writers] = &self.text;
        vec![
            tenants,
            collections,
            ids,
            &self.versions,
            writers,
            &self.deleted,
            &self.hlcs,
            &self.fields,
        ]
    }
}

/// The sync-log rows of a batch as columns.
#[derive(Default)]
struct LogColumns<'a> {
    text: [Vec<&'a str>; 5],
    times: [Vec<i64>; 4],
    collections: Vec<String>,
    results: Vec<String>,
    errors: Vec<Option<&'a str>>,
}

impl<'a> LogColumns<'a> {
    fn new(logs: &'a [(String, SyncLog)]) -> Result<Self, StorageError> {
        let mut c = Self::default();
        for (tenant, e) in logs {
            for (column, value) in c.text.iter_mut().zip([
                tenant.as_str(),
                &e.sync_type,
                &e.status,
                &e.user_id,
                &e.client_id,
            ]) {
                column.push(value);
            }
            for (column, value) in c.times.iter_mut().zip([
                e.started_at,
                e.completed_at,
                e.synced_count,
                e.error_count,
            ]) {
                column.push(int(value));
            }
            c.collections.push(serde_json::to_string(&e.collections)?);
            c.results.push(e.results.to_string());
            c.errors.push(e.error.as_deref());
        }
        Ok(c)
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
        params.extend(self.text.iter().map(|c| c as &(dyn ToSql + Sync)));
        params.extend(self.times.iter().map(|c| c as &(dyn ToSql + Sync)));
        params.push(&self.collections);
        params.push(&self.results);
        params.push(&self.errors);
        params
    }
}

impl Backend for Postgres {
    fn commit(&self, batch: std::sync::Arc<Batch>) -> BoxFuture<'_, Result<Decided, StorageError>> {
        Box::pin(async move {
            let mut attempt = 1;
            loop {
                match self.try_commit(&batch).await {
                    Err(StorageError::Postgres(e))
                        if attempt < ATTEMPTS
                            && matches!(
                                e.code(),
                                Some(&SqlState::T_R_DEADLOCK_DETECTED)
                                    | Some(&SqlState::T_R_SERIALIZATION_FAILURE)
                            ) =>
                    {
                        tracing::warn!(error = %e, attempt, "a write transaction was aborted; trying again");
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        })
    }

    fn pull(
        &self,
        tenant: String,
        cursor: Version,
        bounds: PageBounds,
        collections: Option<Vec<String>>,
    ) -> BoxFuture<'_, Result<Page, StorageError>> {
        Box::pin(async move {
            let client = self.pool.get().await.map_err(unavailable)?;
            let statement = client
                .prepare_cached(
                    "SELECT collection, id, version, deleted, hlc, fields FROM documents
                     WHERE tenant = $1 AND version > $2 ORDER BY version LIMIT $3",
                )
                .await?;
            let limit = bounds.changes as i64 + 1;
            let rows = client
                .query(&statement, &[&tenant, &int(cursor), &limit])
                .await?;
            let rows = rows.into_iter().map(|row| {
                Ok(Row {
                    collection: row.get(0),
                    id: row.get(1),
                    version: row.get::<_, i64>(2) as Version,
                    deleted: row.get(3),
                    hlc: row.get(4),
                    fields: row.get(5),
                })
            });
            page(rows, cursor, bounds, collections.as_deref())
        })
    }

    fn head(&self, tenant: String) -> BoxFuture<'_, Result<Version, StorageError>> {
        Box::pin(async move {
            let client = self.pool.get().await.map_err(unavailable)?;
            let row = client
                .query_opt("SELECT head FROM tenants WHERE tenant = $1", &[&tenant])
                .await?;
            Ok(row.map_or(0, |row| row.get::<_, i64>(0) as Version))
        })
    }

    fn client(
        &self,
        tenant: String,
        client_id: String,
    ) -> BoxFuture<'_, Result<Option<(String, String)>, StorageError>> {
        Box::pin(async move {
            let client = self.pool.get().await.map_err(unavailable)?;
            let row = client
                .query_opt(
                    "SELECT user_id, collections FROM clients WHERE tenant = $1 AND client_id = $2",
                    &[&tenant, &client_id],
                )
                .await?;
            Ok(row.map(|row| (row.get(0), row.get(1))))
        })
    }

    fn logs(&self, tenant: String, f: LogFilter) -> BoxFuture<'_, Result<LogReport, StorageError>> {
        Box::pin(async move {
            let client = self.pool.get().await.map_err(unavailable)?;
            let filter = "tenant = $1 AND ($2::text IS NULL OR status = $2)
                AND ($3::text IS NULL OR sync_type = $3)
                AND ($4::text IS NULL OR collections::jsonb ? $4)
                AND ($5::bigint IS NULL OR completed_at >= $5)
                AND ($6::bigint IS NULL OR completed_at <= $6)";
            // A row is written when its run ends: its creation time is `completed_at`.
            let (from, to) = (f.from.map(|t| t as i64), f.to.map(|t| t as i64));
            let args: [&(dyn ToSql + Sync); 6] =
                [&tenant, &f.status, &f.sync_type, &f.collection, &from, &to];
            let limit = f.limit as i64;
            let mut with_limit = args.to_vec();
            with_limit.push(&limit);
            let rows = client
                .query(
                    &format!(
                        "SELECT id, sync_type, status, user_id, client_id, started_at, completed_at,
                           synced_count, error_count, collections, results, error
                         FROM sync_logs WHERE {filter} ORDER BY id DESC LIMIT $7"
                    ),
                    &with_limit,
                )
                .await?;
            let logs = rows
                .into_iter()
                .map(|r| {
                    let log = SyncLog {
                        id: r.get(0),
                        sync_type: r.get(1),
                        status: r.get(2),
                        user_id: r.get(3),
                        client_id: r.get(4),
                        started_at: r.get::<_, i64>(5) as u64,
                        completed_at: r.get::<_, i64>(6) as u64,
                        created_at: r.get::<_, i64>(6) as u64,
                        synced_count: r.get::<_, i64>(7) as u64,
                        error_count: r.get::<_, i64>(8) as u64,
                        collections: Vec::new(),
                        results: serde_json::Value::Null,
                        error: r.get(11),
                    };
                    log_row(log, r.get(9), r.get(10))
                })
                .collect::<Result<Vec<_>, StorageError>>()?;
            let rows = client
                .query(
                    &format!(
                        "SELECT sync_type, COUNT(*), COUNT(*) FILTER (WHERE status = 'failed'),
                           COALESCE(SUM(synced_count), 0)::bigint, COALESCE(SUM(error_count), 0)::bigint
                         FROM sync_logs WHERE {filter} GROUP BY sync_type ORDER BY sync_type"
                    ),
                    &args,
                )
                .await?;
            let totals = rows
                .into_iter()
                .map(|r| {
                    let count = |i: usize| r.get::<_, i64>(i) as u64;
                    let totals = LogTotals {
                        runs: count(1),
                        failed: count(2),
                        synced: count(3),
                        errors: count(4),
                    };
                    (r.get(0), totals)
                })
                .collect();
            Ok(LogReport { logs, totals })
        })
    }
}

/// Listens on `channel` for other nodes' commits and puts them on the feed; when the listening
/// connection breaks, connects again (after a growing pause) and tells the feed that
/// notifications may have been missed, so that live clients catch up from storage.
async fn listen(config: tokio_postgres::Config, channel: String, node: String, feed: FeedSender) {
    let mut failures: u32 = 0;
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (notes, mut incoming) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(AsyncMessage::Notification(note)) => {
                                let _ = notes.send(note);
                            }
                            Ok(_) => {}
                            Err(error) => {
                                tracing::warn!(%error, "the listening database connection failed");
                                return;
                            }
                        }
                    }
                });
                let listen = format!("LISTEN \"{}\"", channel.replace('"', "\"\""));
                match client.batch_execute(&listen).await {
                    Ok(()) => {
                        failures = 0;
                        emit(&feed, Feed::Resubscribe);
                        while let Some(note) = incoming.recv().await {
                            if let Some(event) = notification(note.payload(), &node) {
                                emit(&feed, event);
                            }
                        }
                        tracing::warn!("lost the listening database connection; reconnecting");
                    }
                    Err(error) => tracing::warn!(%error, "cannot listen for other nodes' commits"),
                }
                driver.abort();
            }
            Err(error) => {
                tracing::warn!(%error, "cannot connect to listen for other nodes' commits")
            }
        }
        failures = failures.saturating_add(1);
        let pause = Duration::from_millis(100 << failures.min(6)).min(LISTEN_BACKOFF_CAP);
        tokio::time::sleep(pause).await;
    }
}

/// Another node's notification `NODE HEAD TENANT` as a feed event (`None`: this node's own, or
/// not one of ours).
fn notification(payload: &str, node: &str) -> Option<Feed> {
    let mut parts = payload.splitn(3, ' ');
    let (from, head, tenant) = (parts.next()?, parts.next()?, parts.next()?);
    if from == node {
        return None;
    }
    Some(Feed::Remote {
        tenant: tenant.to_owned(),
        head: head.parse().ok()?,
    })
}

/// A random id for this node (process id, time and the standard library's random hash keys).
fn random_id() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_of_other_nodes_become_feed_events() {
        match notification("a1 42 acme corp", "b2") {
            Some(Feed::Remote { tenant, head }) => {
                assert_eq!((tenant.as_str(), head), ("acme corp", 42))
            }
            other => panic!("{other:?}"),
        }
        assert!(
            notification("b2 42 acme", "b2").is_none(),
            "this node's own"
        );
        assert!(notification("a1 x acme", "b2").is_none());
        assert!(notification("garbage", "b2").is_none());
    }
}
