//! Sync status, stats and the sync log, all derived from engine state.

use super::{Effect, Engine, Link, INTERRUPTED};
use crate::{Code, Millis};
use serde::Serialize;
use std::collections::VecDeque;

/// What the UI shows about sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    /// Connected and in sync.
    Idle,
    /// Pushing or pulling.
    Syncing,
    /// The last sync or storage operation failed (see `lastError`); it is being retried.
    Error,
    /// No connection to the server.
    Offline,
}
crate::deserialize_unit_enum!(SyncStatus {
    Idle = "idle",
    Syncing = "syncing",
    Error = "error",
    Offline = "offline",
});

/// Counters for the UI.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStats {
    /// Mutations the server acknowledged as applied.
    pub push_count: u64,
    /// Remote changes received.
    pub pull_count: u64,
    /// Conflicts met.
    pub conflict_count: u64,
    /// When a push or pull last succeeded.
    pub last_sync_at: Option<Millis>,
    /// The last error's message.
    pub last_error: Option<String>,
    /// The last error's code.
    pub last_error_code: Option<Code>,
    /// Finished transactions the history's retention has dropped (kept across reloads).
    pub history_dropped: u64,
}

crate::deserialize_object!(SyncStats {
    "pushCount" => push_count: u64,
    "pullCount" => pull_count: u64,
    "conflictCount" => conflict_count: u64,
    "lastSyncAt" => last_sync_at: Option<Millis> = default,
    "lastError" => last_error: Option<String> = default,
    "lastErrorCode" => last_error_code: Option<Code> = default,
    "historyDropped" => history_dropped: u64,
});

/// How far sync has come, for progress bars (`engine.getProgress()`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncProgress {
    /// Local transactions to synced collections not yet confirmed by the backend.
    pub unsynced_writes: u64,
    /// The pull under way, if any.
    pub pull: Option<PullProgress>,
}

crate::deserialize_object!(SyncProgress {
    "unsyncedWrites" => unsynced_writes: u64,
    "pull" => pull: Option<PullProgress> = default,
});

/// A pull run's progress, in versions of the server's change log: from the cursor when the run
/// began to the server's newest version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PullProgress {
    /// Versions received so far.
    pub received: u64,
    /// Versions the run has to receive in all.
    pub total: u64,
}

crate::deserialize_object!(PullProgress {
    "received" => received: u64,
    "total" => total: u64,
});

/// Push or pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncType {
    /// Sending local writes.
    Push,
    /// Receiving remote changes.
    Pull,
}
crate::deserialize_unit_enum!(SyncType {
    Push = "push",
    Pull = "pull",
});

/// A sync run's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncLogStatus {
    /// Under way.
    Running,
    /// Finished.
    Completed,
    /// Gave up (see `error`).
    Failed,
}
crate::deserialize_unit_enum!(SyncLogStatus {
    Running = "running",
    Completed = "completed",
    Failed = "failed",
});

/// The persisted record of one sync run (`engine.syncLog()`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncLogEntry {
    /// Increasing id.
    pub id: u64,
    /// Push or pull.
    pub sync_type: SyncType,
    /// Its state.
    pub status: SyncLogStatus,
    /// When the entry was created (its run started); 0 in entries stored before this field
    /// existed, which load gives their `started_at`.
    #[serde(default)]
    pub created_at: Millis,
    /// When it started.
    pub started_at: Millis,
    /// When it ended.
    pub completed_at: Option<Millis>,
    /// Mutations applied (push) or changes received (pull).
    pub synced_count: u64,
    /// Mutations rejected.
    pub error_count: u64,
    /// Why it failed.
    pub error: Option<String>,
    /// The stable code of why it failed; `None` when it did not, and in entries stored before
    /// entries recorded their code.
    #[serde(default)]
    pub error_code: Option<Code>,
}

crate::deserialize_object!(SyncLogEntry {
    "id" => id: u64,
    "syncType" => sync_type: SyncType,
    "status" => status: SyncLogStatus,
    "createdAt" => created_at: Millis = default,
    "startedAt" => started_at: Millis,
    "completedAt" => completed_at: Option<Millis> = default,
    "syncedCount" => synced_count: u64,
    "errorCount" => error_count: u64,
    "error" => error: Option<String> = default,
    "errorCode" => error_code: Option<Code> = default,
});

/// Which sync-log entries `engine.syncLog(query)` returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncLogQuery {
    /// At most this many (the newest).
    pub limit: Option<usize>,
    /// Only entries with this outcome.
    pub status: Option<SyncLogStatus>,
    /// Only entries of this direction.
    pub sync_type: Option<SyncType>,
    /// Only entries created at or after this time.
    pub from: Option<Millis>,
    /// Only entries created at or before this time.
    pub to: Option<Millis>,
}

crate::deserialize_object!(deny_unknown_fields SyncLogQuery {
    "limit" => limit: Option<usize> = default,
    "status" => status: Option<SyncLogStatus> = default,
    "syncType" => sync_type: Option<SyncType> = default,
    "from" => from: Option<Millis> = default,
    "to" => to: Option<Millis> = default,
});

impl SyncLogQuery {
    /// Whether `entry` matches every filter.
    pub fn matches(&self, entry: &SyncLogEntry) -> bool {
        self.status.is_none_or(|s| entry.status == s)
            && self.sync_type.is_none_or(|t| entry.sync_type == t)
            && self.from.is_none_or(|from| entry.created_at >= from)
            && self.to.is_none_or(|to| entry.created_at <= to)
    }

    /// The matching entries of `newest_first`, newest first, at most `limit`.
    pub fn select<'a>(
        &self,
        newest_first: impl Iterator<Item = &'a SyncLogEntry>,
    ) -> Vec<&'a SyncLogEntry> {
        newest_first
            .filter(|e| self.matches(e))
            .take(self.limit.unwrap_or(usize::MAX))
            .collect()
    }
}

/// Status bookkeeping.
#[derive(Debug, Clone, Default)]
pub(super) struct StatusState {
    stats: SyncStats,
    /// An error not yet cleared by a later success.
    failing: bool,
    /// Storage is failing (cleared only by a successful write).
    storage_failing: bool,
    emitted_status: Option<SyncStatus>,
    emitted_stats: Option<SyncStats>,
    emitted_progress: Option<SyncProgress>,
    log: VecDeque<SyncLogEntry>,
    next_log: u64,
}

impl StatusState {
    /// Sync itself is failing (retryable error, protocol error): status `error` until a success.
    pub fn fail(&mut self, code: Code, message: String) {
        self.failing = true;
        self.record(code, message);
    }
    /// Something was rejected, but sync works: only `lastError` shows it.
    pub fn record(&mut self, code: Code, message: String) {
        self.stats.last_error = Some(message);
        self.stats.last_error_code = Some(code);
    }
    pub fn storage_failed(&mut self, code: Code, message: String) {
        self.storage_failing = true;
        self.fail(code, message);
    }
    pub fn storage_ok(&mut self) {
        self.storage_failing = false;
    }
    pub fn pushed(&mut self, count: usize, now: Millis) {
        self.stats.push_count += count as u64;
        self.succeeded(now);
    }
    pub fn pulled(&mut self, count: usize, now: Millis) {
        self.received(count);
        self.succeeded(now);
    }
    /// Changes arrived from the server (a pull page, or a live push).
    pub fn received(&mut self, count: usize) {
        self.stats.pull_count += count as u64;
    }
    /// The history's retention dropped `count` finished transactions.
    pub fn history_dropped(&mut self, count: u64) {
        self.stats.history_dropped += count;
    }
    /// The total dropped before this engine was loaded.
    pub fn load_history_dropped(&mut self, total: u64) {
        self.stats.history_dropped = total;
    }
    /// The server gave a definitive answer: whatever was failing works again.
    pub fn answered(&mut self) {
        self.failing = false;
    }
    pub fn conflicts(&mut self, count: usize) {
        self.stats.conflict_count += count as u64;
    }
    /// The first run a sync request made now waits for: the oldest still under way (a request
    /// joins a run under way rather than starting one beside it), or else the next one.
    pub fn first_awaited_log_id(&self) -> u64 {
        self.log
            .iter()
            .find(|e| e.status == SyncLogStatus::Running)
            .map_or(self.next_log, |e| e.id)
    }
    /// The ids of the kept sync-log entries.
    pub fn log_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.log.iter().map(|e| e.id)
    }
    fn succeeded(&mut self, now: Millis) {
        self.failing = false;
        self.stats.last_sync_at = Some(now);
    }
}

impl Engine {
    /// The current sync status. Failing storage shows as `Error` even offline: local writes
    /// are at stake.
    pub fn status(&self) -> SyncStatus {
        if self.status.storage_failing {
            return SyncStatus::Error;
        }
        let Link::Up { welcomed, .. } = self.link else {
            return SyncStatus::Offline;
        };
        if self.status.failing {
            return SyncStatus::Error;
        }
        let outbox_waiting = self.config.direction.pushes()
            && !(self.queues.ready.is_empty() && self.queues.wire.is_empty());
        if !welcomed
            || !self.flights.is_empty()
            || self.calls_under_way()
            || self.pull.in_flight.is_some()
            || self.pull.requested
            || outbox_waiting
        {
            SyncStatus::Syncing
        } else {
            SyncStatus::Idle
        }
    }

    /// The sync counters.
    pub fn stats(&self) -> &SyncStats {
        &self.status.stats
    }

    /// Recent sync runs, newest first, as `query` selects them.
    pub fn sync_log(&self, query: &SyncLogQuery) -> Vec<&SyncLogEntry> {
        query.select(self.status.log.iter().rev())
    }

    /// How far sync has come: unsynced writes, and the pull under way (from the cursor when it
    /// began to the server's newest version).
    pub fn progress(&self) -> SyncProgress {
        let pull = self.pull.start.and_then(|start| {
            let total = self.head.max(self.cursor).saturating_sub(start);
            (total > 0).then(|| PullProgress {
                received: self.cursor.saturating_sub(start),
                total,
            })
        });
        SyncProgress {
            unsynced_writes: self.unsynced as u64,
            pull,
        }
    }

    pub(super) fn emit_status(&mut self) {
        let status = self.status();
        if self.status.emitted_status != Some(status) {
            self.status.emitted_status = Some(status);
            self.out.effects.push(Effect::Status(status));
        }
        if self.status.emitted_stats.as_ref() != Some(&self.status.stats) {
            self.status.emitted_stats = Some(self.status.stats.clone());
            self.out
                .effects
                .push(Effect::Stats(self.status.stats.clone()));
        }
        let progress = self.progress();
        if self.status.emitted_progress != Some(progress) {
            self.status.emitted_progress = Some(progress);
            self.out.effects.push(Effect::Progress(progress));
        }
    }

    pub(super) fn start_log(&mut self, sync_type: SyncType) -> u64 {
        let id = self.status.next_log;
        self.status.next_log += 1;
        self.status.log.push_back(SyncLogEntry {
            id,
            sync_type,
            status: SyncLogStatus::Running,
            created_at: self.now,
            started_at: self.now,
            completed_at: None,
            synced_count: 0,
            error_count: 0,
            error: None,
            error_code: None,
        });
        self.store.logs.insert(id);
        while self.status.log.len() > super::SYNC_LOG_KEPT {
            if let Some(old) = self.status.log.pop_front() {
                self.store.logs.remove(&old.id);
            }
        }
        id
    }

    pub(super) fn add_to_log(&mut self, id: u64, synced: usize) {
        if let Some(entry) = self.status.log.iter_mut().find(|e| e.id == id) {
            entry.synced_count += synced as u64;
            self.store.logs.insert(id);
        }
    }

    /// Ends run `id`: failed with the code and message of `error`, or completed.
    pub(super) fn finish_log(
        &mut self,
        id: u64,
        synced: usize,
        errors: usize,
        error: Option<(Code, String)>,
    ) {
        let now = self.now;
        if let Some(entry) = self.status.log.iter_mut().find(|e| e.id == id) {
            entry.synced_count += synced as u64;
            entry.error_count += errors as u64;
            entry.completed_at = Some(now);
            entry.status = if error.is_some() {
                SyncLogStatus::Failed
            } else {
                SyncLogStatus::Completed
            };
            (entry.error_code, entry.error) = error.unzip();
            self.store.logs.insert(id);
        }
    }

    pub(super) fn log_entry(&self, id: u64) -> Option<&SyncLogEntry> {
        self.status.log.iter().find(|e| e.id == id)
    }

    /// Restores the log; runs that were under way when the page closed are marked failed.
    pub(super) fn load_log(&mut self, mut entries: Vec<SyncLogEntry>) {
        crate::sort::sort_by(&mut entries, |a, b| a.id.cmp(&b.id));
        for mut entry in entries {
            if entry.created_at == 0 {
                // Written before entries carried it: created when the run started.
                entry.created_at = entry.started_at;
            }
            if entry.status == SyncLogStatus::Running {
                entry.status = SyncLogStatus::Failed;
                entry.error = Some(INTERRUPTED.into());
                entry.error_code = Some(Code::Network);
                self.store.logs.insert(entry.id);
            }
            self.status.next_log = self.status.next_log.max(entry.id + 1);
            self.status.log.push_back(entry);
        }
    }
}
