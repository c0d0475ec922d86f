//! Durable server state: documents with their versions, each client's last mutation id and
//! recorded outcomes, and the sync log, in SQLite (one file, one node) or PostgreSQL (one
//! database shared by several nodes).
//!
//! Every write goes through one writer task per node (`writer.rs`), which commits many requests
//! in one database transaction: the backend reads a snapshot of what they touch inside that
//! transaction, the shared rules of `group.rs` (the core's `apply_push`) decide every request
//! against it, and the backend writes and commits what was decided, sync-log rows included.
//! Reads (pulls, the sync log) go to the backend directly. What each transaction committed goes
//! out on the [`Feed`], in commit order, for live fan-out.

mod group;
mod postgres;
mod sqlite;
mod writer;

pub use postgres::SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION;
pub use sqlite::SCHEMA_VERSION;

use ferrosync_core::document::Document;
use ferrosync_core::protocol::ErrorCode;
use ferrosync_core::protocol::{Change, CursorRange, ErrorInfo, WireMutation, WireTransaction};
use ferrosync_core::server::{PushBounds, PushCommit, ServerDoc};
use ferrosync_core::{Millis, MutationId, Version};
use futures_util::future::BoxFuture;
use serde::Serialize;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// A storage failure (not a protocol error): answered as a retryable `storage` error.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// SQLite refused or failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL refused or failed, or could not be reached.
    #[error("database error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No database connection (or thread) could be had.
    #[error("no database connection: {0}")]
    Unavailable(String),
    /// Stored JSON could not be read back.
    #[error("corrupt stored value: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// `--db` named something this server cannot open.
    #[error("unsupported database URL `{0}` (expected sqlite://PATH or postgres://USER:PASS@HOST:PORT/DB)")]
    UnsupportedUrl(String),
    /// The transaction that carried this request failed.
    #[error("the write failed: {0}")]
    Batch(Arc<StorageError>),
    /// The storage's writer or database threads have stopped.
    #[error("storage has stopped")]
    Stopped,
}

impl StorageError {
    /// The structured error sent to a client.
    pub fn to_error_info(&self) -> ErrorInfo {
        ErrorInfo::new(
            ErrorCode::Storage,
            "the server could not reach its database; try again",
            true,
        )
    }
}

/// The outcome of a push attempt: committed, refused by the protocol rules, or failed in storage.
pub type PushOutcome = Result<Result<PushCommit, ErrorInfo>, StorageError>;

/// What a client learns at `hello`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// The last mutation id processed for the client.
    pub last_mutation_id: MutationId,
    /// The tenant's newest version.
    pub head: Version,
}

/// One pull page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Changed documents in the client's collections.
    pub changes: Vec<Change>,
    /// Where to continue.
    pub cursor: Version,
    /// Whether more changes wait.
    pub has_more: bool,
}

/// How much one pull page may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageBounds {
    /// Most changes (rows read, also of collections the client skips).
    pub changes: usize,
    /// Roughly the most bytes of changes; a page holds at least one change.
    pub bytes: usize,
}

/// How long sync-log rows are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRetention {
    /// Rows kept per tenant (storage may keep up to a small batch more until it prunes).
    pub keep: u64,
    /// Rows older than this (by `completed_at`) go at the next pruning.
    pub max_age_ms: Millis,
}

/// Who is syncing: the tenant, the authenticated user and the client id.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The tenant whose data is touched.
    pub tenant: &'a str,
    /// The authenticated user.
    pub user: &'a str,
    /// The client (browser database).
    pub client_id: &'a str,
}

/// Checks a mutation before it applies (limits, authorisation).
pub type Check = Arc<dyn Fn(&WireMutation) -> Result<(), ErrorInfo> + Send + Sync>;

/// A push, as the writer applies it.
pub struct Push {
    /// The transactions, in mutation-id order.
    pub transactions: Vec<WireTransaction>,
    /// The server's clock when the push arrived.
    pub now: Millis,
    /// Bounds on documents and on the answer.
    pub bounds: PushBounds,
    /// Checks each mutation before it applies.
    pub check: Check,
    /// The WebSocket connection it came from (0: HTTP), passed on with its changes.
    pub origin: u64,
    /// Its sync-log row: counts, statuses and errors are filled in when it is decided, and the
    /// row is written in the same database transaction as the push.
    pub log: SyncLog,
}

/// A row of the sync log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncLog {
    /// Row id.
    pub id: i64,
    /// `push` or `pull`.
    pub sync_type: String,
    /// `completed` or `failed`.
    pub status: String,
    /// The user.
    pub user_id: String,
    /// The client.
    pub client_id: String,
    /// Start, milliseconds since the epoch.
    pub started_at: Millis,
    /// End, milliseconds since the epoch.
    pub completed_at: Millis,
    /// When the row was written (its run's end), milliseconds since the epoch: what `from`
    /// and `to` filter on.
    pub created_at: Millis,
    /// Mutations applied or changes sent.
    pub synced_count: u64,
    /// Mutations rejected or in conflict.
    pub error_count: u64,
    /// Collections involved.
    pub collections: Vec<String>,
    /// Per-mutation statuses for a push.
    pub results: serde_json::Value,
    /// What went wrong.
    pub error: Option<String>,
}

impl SyncLog {
    /// A successful run that started at `started_at` and ends now; callers fill in the counts.
    pub fn run(
        sync_type: &str,
        user_id: String,
        client_id: String,
        started_at: Millis,
        collections: Vec<String>,
    ) -> Self {
        let now = crate::now_ms();
        Self {
            id: 0,
            sync_type: sync_type.into(),
            status: "completed".into(),
            user_id,
            client_id,
            started_at,
            completed_at: now,
            created_at: now,
            synced_count: 0,
            error_count: 0,
            collections,
            results: serde_json::Value::Null,
            error: None,
        }
    }
}

/// Which sync-log rows to list (`GET /v1/status`).
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// At most this many, newest first.
    pub limit: usize,
    /// Only `completed` or `failed`.
    pub status: Option<String>,
    /// Only `push` or `pull`.
    pub sync_type: Option<String>,
    /// Only runs touching this collection.
    pub collection: Option<String>,
    /// Only rows created at or after this time (ms since the epoch).
    pub from: Option<Millis>,
    /// Only rows created at or before this time (ms since the epoch).
    pub to: Option<Millis>,
}

/// Totals over a tenant's sync log, per sync type.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LogTotals {
    /// Runs.
    pub runs: u64,
    /// Failed runs.
    pub failed: u64,
    /// Mutations applied or changes sent.
    pub synced: u64,
    /// Mutations rejected or in conflict.
    pub errors: u64,
}

/// A tenant's sync-log rows and totals per sync type (`GET /v1/status`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LogReport {
    /// Matching rows, newest first.
    pub logs: Vec<SyncLog>,
    /// Totals over all matching rows, by sync type (`push`, `pull`).
    pub totals: std::collections::BTreeMap<String, LogTotals>,
}

/// What one database transaction committed for one tenant: its documents' new states, in
/// version order, covering every change of the tenant in `range`.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The tenant.
    pub tenant: String,
    /// Every change of the tenant in this range is in `changes` (each document once, latest).
    pub range: CursorRange,
    /// The changed documents.
    pub changes: Vec<Change>,
    /// The connections whose pushes made them (0: HTTP).
    pub origins: Vec<u64>,
}

/// What happens to the data, for live fan-out.
#[derive(Debug, Clone)]
pub enum Feed {
    /// This node committed, in commit order.
    Committed(Committed),
    /// Another node committed the tenant's changes up to `head` (PostgreSQL notifications).
    Remote {
        /// The tenant.
        tenant: String,
        /// Its newest version.
        head: Version,
    },
    /// Notifications from other nodes were lost for a while (the listening connection broke
    /// and is back): any tenant may have changed since it was last relayed.
    Resubscribe,
}

/// Where the feed goes, once someone listens.
type FeedSender = Arc<Mutex<Option<mpsc::UnboundedSender<Feed>>>>;

/// Sends `event` to the feed's listener, if there is one.
fn emit(feed: &FeedSender, event: Feed) {
    if let Some(sender) = feed.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        let _ = sender.send(event);
    }
}

/// A stored document as a backend reads it back, before its JSON is parsed.
struct Row {
    collection: String,
    id: String,
    version: Version,
    deleted: bool,
    hlc: String,
    fields: String,
}

/// Bytes a change takes on the wire besides its names and JSON texts.
const CHANGE_OVERHEAD: usize = 96;

impl Row {
    /// The stored document with the client that wrote it.
    fn server_doc(self, writer: String) -> Result<ServerDoc, StorageError> {
        let (collection, doc) = self.document()?;
        Ok(ServerDoc {
            collection,
            doc,
            writer,
        })
    }

    /// Its collection and the document it holds.
    fn document(self) -> Result<(String, Document), StorageError> {
        let doc = Document::new(
            &self.id,
            serde_json::from_str(&self.fields)?,
            self.version,
            serde_json::from_str(&self.hlc)?,
            self.deleted,
        );
        Ok((self.collection, doc))
    }
}

/// A pull page from rows in version order after `cursor` (at most `bounds.changes + 1` of
/// them, so that `has_more` is known), keeping those of `collections` (all when `None`).
fn page(
    rows: impl IntoIterator<Item = Result<Row, StorageError>>,
    cursor: Version,
    bounds: PageBounds,
    collections: Option<&[String]>,
) -> Result<Page, StorageError> {
    let (mut changes, mut next, mut read, mut bytes) = (Vec::new(), cursor, 0, 0);
    for row in rows {
        let row = row?;
        if read == bounds.changes {
            return Ok(Page {
                changes,
                cursor: next,
                has_more: true,
            });
        }
        read += 1;
        // The cursor moves over every row read, also those of collections the client skips.
        if collections.is_some_and(|names| !names.contains(&row.collection)) {
            next = row.version;
            continue;
        }
        // Roughly the change's encoded size; a page always carries at least one change.
        bytes += CHANGE_OVERHEAD
            + row.collection.len()
            + row.id.len()
            + row.hlc.len()
            + row.fields.len();
        if bytes > bounds.bytes && !changes.is_empty() {
            return Ok(Page {
                changes,
                cursor: next,
                has_more: true,
            });
        }
        next = row.version;
        let (collection, doc) = row.document()?;
        changes.push(Change { collection, doc });
    }
    Ok(Page {
        changes,
        cursor: next,
        has_more: false,
    })
}

/// A sync-log row whose `collections` and `results` are still JSON text.
fn log_row(mut log: SyncLog, collections: &str, results: &str) -> Result<SyncLog, StorageError> {
    log.collections = serde_json::from_str(collections)?;
    log.results = serde_json::from_str(results)?;
    Ok(log)
}

/// A database URL without its user and password, for logs.
pub fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{}", path.split('?').next().unwrap_or(""))
        }
        None => url.to_owned(),
    }
}

/// What a backend does; the writer and the [`Storage`] front call it.
trait Backend: Send + Sync + 'static {
    /// Runs `batch` in one database transaction: reads the snapshot its requests need (the
    /// tenants' head rows first, locked where several nodes write), lets [`group::decide`]
    /// apply them, writes what was decided and commits.
    fn commit(
        &self,
        batch: Arc<group::Batch>,
    ) -> BoxFuture<'_, Result<group::Decided, StorageError>>;
    /// Rows after `cursor` of the tenant, in version order, as a page within `bounds`.
    fn pull(
        &self,
        tenant: String,
        cursor: Version,
        bounds: PageBounds,
        collections: Option<Vec<String>>,
    ) -> BoxFuture<'_, Result<Page, StorageError>>;
    /// The tenant's newest committed version.
    fn head(&self, tenant: String) -> BoxFuture<'_, Result<Version, StorageError>>;
    /// The user a client id is bound to and the collections (JSON) it said at `hello`.
    fn client(
        &self,
        tenant: String,
        client_id: String,
    ) -> BoxFuture<'_, Result<Option<(String, String)>, StorageError>>;
    /// The tenant's sync-log rows matching `filter`, newest first, and totals per sync type.
    fn logs(
        &self,
        tenant: String,
        filter: LogFilter,
    ) -> BoxFuture<'_, Result<LogReport, StorageError>>;
}

/// How far a SQLite commit is on disk when the server acknowledges it (`--durability`).
/// PostgreSQL follows its own settings (`synchronous_commit`, on by default: as `Full`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// WAL with `synchronous=NORMAL`: an acknowledged commit survives the server process
    /// crashing or being killed, but the last commits before a power loss or an operating
    /// system crash may be lost (the WAL is synced at checkpoints, not at every commit).
    #[default]
    Normal,
    /// WAL with `synchronous=FULL`: the WAL is synced at every commit (one per group commit of
    /// the writer), so an acknowledged commit survives power loss too.
    Full,
}

/// The server's storage: a backend, its writer, and the feed of what it commits.
pub struct Storage {
    backend: Arc<dyn Backend>,
    writer: writer::Writer,
    feed: FeedSender,
}

impl Storage {
    /// Opens the storage a `--db` URL names (`sqlite://PATH` or `postgres://…`), creating or
    /// migrating its schema, and starts its writer. Sync-log rows are kept to `retention`;
    /// SQLite commits with `durability`.
    pub async fn open(
        url: &str,
        retention: LogRetention,
        durability: Durability,
    ) -> Result<Self, StorageError> {
        let feed = FeedSender::default();
        let backend: Arc<dyn Backend> = if let Some(path) = url.strip_prefix("sqlite://") {
            Arc::new(sqlite::Sqlite::open(path, durability)?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Arc::new(postgres::Postgres::open(url, feed.clone()).await?)
        } else {
            return Err(StorageError::UnsupportedUrl(url.to_owned()));
        };
        let writer = writer::Writer::spawn(backend.clone(), retention, feed.clone());
        Ok(Self {
            backend,
            writer,
            feed,
        })
    }

    /// What this storage commits (and, on PostgreSQL, what other nodes commit), from now on.
    /// There is one listener: a second call takes the feed from the first.
    pub fn feed(&self) -> mpsc::UnboundedReceiver<Feed> {
        let (sender, receiver) = mpsc::unbounded_channel();
        *self.feed.lock().unwrap_or_else(|p| p.into_inner()) = Some(sender);
        receiver
    }

    /// Registers a client session: binds a new client id to the caller within its tenant,
    /// refuses one bound to another user of the tenant, and remembers the collections it syncs.
    pub async fn hello(
        &self,
        caller: Caller<'_>,
        collections: &[String],
    ) -> Result<Result<Hello, ErrorInfo>, StorageError> {
        let request = group::Request::Hello {
            tenant: caller.tenant.to_owned(),
            user: caller.user.to_owned(),
            client_id: caller.client_id.to_owned(),
            collections: collections.to_vec(),
        };
        match self.writer.submit(request).await? {
            group::Answer::Hello(answer) => Ok(answer),
            _ => Err(StorageError::Stopped),
        }
    }

    /// The collections a client said it syncs at `hello` (for HTTP polling requests).
    pub async fn collections(
        &self,
        caller: Caller<'_>,
    ) -> Result<Option<Vec<String>>, StorageError> {
        let row = self
            .backend
            .client(caller.tenant.to_owned(), caller.client_id.to_owned())
            .await?;
        match row {
            Some((user, json)) if user == caller.user => Ok(Some(serde_json::from_str(&json)?)),
            _ => Ok(None),
        }
    }

    /// Applies a push atomically (data, versions, the client's last mutation id and outcomes,
    /// and its sync-log row), in a transaction shared with other requests.
    pub async fn push(&self, caller: Caller<'_>, push: Push) -> PushOutcome {
        self.queue_push(caller, push).await.await
    }

    /// Queues a push for the writer and returns its outcome to come, as [`Storage::push`].
    /// Pushes are decided in the order they are queued, so a connection can read and queue its
    /// next push while the one before commits, and both may share a transaction.
    pub async fn queue_push(
        &self,
        caller: Caller<'_>,
        push: Push,
    ) -> impl Future<Output = PushOutcome> + Send + 'static {
        let request = group::Request::Push {
            tenant: caller.tenant.to_owned(),
            user: caller.user.to_owned(),
            client_id: caller.client_id.to_owned(),
            push,
        };
        let queued = self.writer.queue(request).await;
        async move {
            match queued?.answer().await? {
                group::Answer::Push(answer) => Ok(answer),
                _ => Err(StorageError::Stopped),
            }
        }
    }

    /// The tenant's changes after `cursor` in `collections` (all when `None`), within `bounds`.
    pub async fn pull(
        &self,
        tenant: &str,
        cursor: Version,
        bounds: PageBounds,
        collections: Option<&[String]>,
    ) -> Result<Page, StorageError> {
        self.backend
            .pull(
                tenant.to_owned(),
                cursor,
                bounds,
                collections.map(<[String]>::to_vec),
            )
            .await
    }

    /// The tenant's newest committed version.
    pub async fn head(&self, tenant: &str) -> Result<Version, StorageError> {
        self.backend.head(tenant.to_owned()).await
    }

    /// Appends a sync-log row (its `id` is ignored) in the writer's next transaction; the
    /// tenant's log is pruned to the retention as it grows.
    pub async fn log(&self, tenant: &str, entry: SyncLog) -> Result<(), StorageError> {
        let request = group::Request::Log {
            tenant: tenant.to_owned(),
            entry,
        };
        self.writer.submit(request).await.map(|_| ())
    }

    /// The tenant's sync-log rows matching `filter`, newest first, and totals per sync type.
    pub async fn logs(&self, tenant: &str, filter: &LogFilter) -> Result<LogReport, StorageError> {
        self.backend.logs(tenant.to_owned(), filter.clone()).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_redacted_url_keeps_no_credentials() {
        assert_eq!(
            super::redacted("postgres://app:s3cret@db.example:5432/sync?options=x"),
            "postgres://db.example:5432/sync"
        );
        assert_eq!(
            super::redacted("sqlite://data/app.db"),
            "sqlite://data/app.db"
        );
    }
}
