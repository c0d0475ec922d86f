//! Durable server state behind one interface: documents with their versions, each client's
//! last mutation id and recorded outcomes, and the sync log. SQLite is the default; the sync
//! rules themselves come from `ferrosync_core::server`.

mod sqlite;

pub use sqlite::{SqliteStorage, SCHEMA_VERSION};

use ferrosync_core::protocol::{Change, ErrorInfo, WireMutation, WireTransaction};
use ferrosync_core::server::{PushBounds, PushCommit};
use ferrosync_core::{Millis, MutationId, Version};
use serde::Serialize;

/// A storage failure (not a protocol error): answered as a retryable `storage` error.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// Stored JSON could not be read back.
    #[error("corrupt stored value: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// `--db` named something this server cannot open.
    #[error("unsupported database URL `{0}` (expected sqlite://PATH)")]
    UnsupportedUrl(String),
}

impl StorageError {
    /// The structured error sent to a client.
    pub fn to_error_info(&self) -> ErrorInfo {
        ErrorInfo::new(
            "storage",
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

/// Checks a mutation before it applies (limits, authorisation).
pub type Check<'a> = &'a (dyn Fn(&WireMutation) -> Result<(), ErrorInfo> + Sync);

/// Everything the sync endpoints need from storage.
pub trait Storage: Send + Sync + 'static {
    /// Registers a client session: binds a new client id to the caller within its tenant,
    /// refuses one bound to another user of the tenant, and remembers the collections it syncs.
    fn hello(
        &self,
        caller: Caller<'_>,
        collections: &[String],
    ) -> Result<Result<Hello, ErrorInfo>, StorageError>;
    /// The collections a client said it syncs at `hello` (for HTTP polling requests).
    fn collections(&self, caller: Caller<'_>) -> Result<Option<Vec<String>>, StorageError>;
    /// Applies a push atomically: data, versions, the client's last mutation id and outcomes.
    fn push(
        &self,
        caller: Caller<'_>,
        transactions: &[WireTransaction],
        now: Millis,
        bounds: PushBounds,
        check: Check<'_>,
    ) -> PushOutcome;
    /// The tenant's changes after `cursor` in `collections`, within `bounds`.
    fn pull(
        &self,
        tenant: &str,
        cursor: Version,
        bounds: PageBounds,
        collections: &[String],
    ) -> Result<Page, StorageError>;
    /// Appends a sync-log row (its `id` is ignored), and prunes the tenant's log to `retention`.
    fn log(
        &self,
        tenant: &str,
        entry: &SyncLog,
        retention: LogRetention,
    ) -> Result<(), StorageError>;
    /// The tenant's sync-log rows matching `filter`, newest first, and totals per sync type.
    fn logs(&self, tenant: &str, filter: &LogFilter) -> Result<LogReport, StorageError>;
}

/// Opens the storage a `--db` URL names.
pub fn open(url: &str) -> Result<Box<dyn Storage>, StorageError> {
    match url.strip_prefix("sqlite://") {
        Some(path) => Ok(Box::new(SqliteStorage::open(path)?)),
        None => Err(StorageError::UnsupportedUrl(url.to_owned())),
    }
}
