//! PostgreSQL storage, shared by several server nodes: tokio-postgres with a deadpool connection
//! pool, the schema created and migrated at start under an advisory lock, and LISTEN/NOTIFY to
//! tell the other nodes what each commits.
//!
//! Versions never skip: every batch first locks the head rows of the tenants it writes (in
//! tenant order, so two nodes never deadlock), then assigns each change `head + 1, head + 2, …`
//! and commits, so a tenant's versions commit in order whichever node writes them (see
//! docs/PROTOCOL.md, rule 7).

mod batch;
mod notify;
mod schema;

use super::group::{self, Batch, Decided};
use super::{
    log_row, page, Backend, FeedSender, LogFilter, LogReport, LogTotals, Page, PageBounds, Row,
    StorageError, SyncLog,
};
use batch::{read, write};
use deadpool_postgres::{Manager, Pool, Runtime};
use ferrosync_core::Version;
use futures_util::future::BoxFuture;
use notify::{listen, random_id};
use schema::{migrate, writer_config};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

pub use schema::SCHEMA_VERSION;

/// Connections of the readers' pool (pulls, the sync log, relays reading other nodes' commits).
/// The writer has a connection of its own, so reads never hold up writes.
const READERS: usize = 16;

/// How long a request waits for a pooled connection, or for a new one.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// How many times a batch is tried when PostgreSQL aborts it for a deadlock or a
/// serialization failure (nothing of it was committed).
const ATTEMPTS: usize = 3;
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
