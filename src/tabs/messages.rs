//! What tabs of one database say to each other over their `BroadcastChannel`.
//!
//! The leader (the tab holding the database's Web Lock) runs the engine. Followers keep a mirror
//! of its visible documents, transactions and sync state, and forward every write and command
//! to it. Requests carry `(tab, seq)`; the leader records which transaction each commit request
//! created in the same IndexedDB transaction as the transaction itself, so a request re-sent to
//! a new leader after a takeover is recognised, never applied twice.

use ferrosync_core::collection::DocChange;
use ferrosync_core::document::{Document, Fields};
use ferrosync_core::engine::{SyncLogEntry, SyncProgress, SyncStats, SyncStatus};
use ferrosync_core::mutation::MutationRequest;
use ferrosync_core::transaction::{Transaction, TxId};
use ferrosync_core::{Code, CoreError};
use serde::Serialize;
use serde_json::Value;

/// A message between tabs (sent as JSON text).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TabMessage {
    /// A follower asks for a snapshot (on opening, after a refusal, after a takeover).
    Hello {
        /// The follower.
        tab: String,
    },
    /// A follower's call, for the leader to run.
    Request {
        /// The follower.
        tab: String,
        /// Increasing per follower.
        seq: u64,
        /// The call.
        request: Request,
    },
    /// The follower is going away.
    Bye {
        /// The follower.
        tab: String,
    },
    /// The leader's whole state, for one follower.
    Snapshot {
        /// The follower it answers.
        to: String,
        /// Visible documents per collection.
        collections: Vec<(String, Vec<Document>)>,
        /// The leader's unfinished transactions and its newest finished ones.
        transactions: Vec<Transaction>,
        /// Status, stats, sync log, conflicts.
        state: LeaderState,
    },
    /// What one leader step changed.
    Update {
        /// Changes to visible documents.
        changes: Vec<DocChange>,
        /// Transactions that changed.
        transactions: Vec<Transaction>,
        /// The sync state, when it changed.
        state: Option<LeaderState>,
    },
    /// The answer to a request (commits get `Committed`, then `Durable`).
    Reply {
        /// The follower.
        to: String,
        /// The request's seq.
        seq: u64,
        /// The outcome: a value or why the request was refused.
        result: Result<Reply, Refusal>,
    },
    /// A tab became the leader: followers ask it for a snapshot and re-send what is unanswered.
    Leader {
        /// The new leader.
        tab: String,
    },
}

ferrosync_core::deserialize_tagged!(TabMessage, "type" {
    "hello" => Hello { tab: String },
    "request" => Request { tab: String, seq: u64, request: Request },
    "bye" => Bye { tab: String },
    "snapshot" => Snapshot {
        to: String,
        collections: Vec<(String, Vec<Document>)>,
        transactions: Vec<Transaction>,
        state: LeaderState,
    },
    "update" => Update {
        changes: Vec<DocChange>,
        transactions: Vec<Transaction>,
        state: Option<LeaderState>,
    },
    "reply" => Reply { to: String, seq: u64, result: Result<Reply, Refusal> },
    "leader" => Leader { tab: String },
});

/// Why the leader refused a request: the error's code and message, for the follower to reject
/// its caller with the same error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refusal {
    /// The error's code.
    pub code: Code,
    /// The error's message.
    pub message: String,
}

ferrosync_core::deserialize_object!(Refusal {
    "code" => code: Code,
    "message" => message: String,
});

impl From<CoreError> for Refusal {
    fn from(e: CoreError) -> Self {
        Refusal {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

/// A follower's call.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Request {
    /// Commit these writes as one transaction.
    Commit {
        /// The writes.
        requests: Vec<MutationRequest>,
        /// The transaction's metadata.
        metadata: Option<Value>,
    },
    /// `hardDelete`.
    HardDelete {
        /// The collection.
        collection: String,
        /// The document.
        id: String,
    },
    /// `resolveConflict`.
    ResolveConflict {
        /// The conflict id (`tx-N/i`).
        id: String,
        /// The resolved fields.
        fields: Fields,
    },
    /// `forceSync`, `push`, `pull`.
    SyncNow {
        /// Push.
        push: bool,
        /// Pull.
        pull: bool,
    },
    /// `flush`.
    Flush,
    /// `start`.
    Start,
    /// `stop`.
    Stop,
}

ferrosync_core::deserialize_tagged!(Request, "kind" {
    "commit" => Commit { requests: Vec<MutationRequest>, metadata: Option<Value> },
    "hard_delete" => HardDelete { collection: String, id: String },
    "resolve_conflict" => ResolveConflict { id: String, fields: Fields },
    "sync_now" => SyncNow { push: bool, pull: bool },
    "flush" => Flush,
    "start" => Start,
    "stop" => Stop,
});

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    /// The commit created this transaction (optimistically applied).
    Committed {
        /// Its id.
        tx: TxId,
    },
    /// The transaction is durable in IndexedDB.
    Durable {
        /// Its id.
        tx: TxId,
        /// Its end, when it finished before this answer (a request re-sent after a takeover).
        finished: Option<Box<Transaction>>,
    },
    /// Done.
    Done,
}

impl Reply {
    /// Its `kind`, as the channel names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Reply::Committed { .. } => "committed",
            Reply::Durable { .. } => "durable",
            Reply::Done => "done",
        }
    }
}

ferrosync_core::deserialize_tagged!(Reply, "kind" {
    "committed" => Committed { tx: TxId },
    "durable" => Durable { tx: TxId, finished: Option<Box<Transaction>> },
    "done" => Done,
});

/// The leader's sync state as followers show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderState {
    /// The client id.
    pub client_id: String,
    /// `getStatus()`.
    pub status: SyncStatus,
    /// `getStats()`.
    pub stats: SyncStats,
    /// `getProgress()`.
    pub progress: SyncProgress,
    /// `syncLog()`, newest first.
    pub sync_log: Vec<SyncLogEntry>,
    /// `conflicts()`, as JavaScript sees them.
    pub conflicts: Value,
}

ferrosync_core::deserialize_object!(LeaderState {
    "clientId" => client_id: String,
    "status" => status: SyncStatus,
    "stats" => stats: SyncStats,
    "progress" => progress: SyncProgress,
    "syncLog" => sync_log: Vec<SyncLogEntry>,
    "conflicts" => conflicts: Value,
});

impl TabMessage {
    /// The message as channel text.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("tab messages serialize")
    }

    /// A message from channel text (`None`: not one of ours, or from another version).
    pub fn decode(text: &str) -> Option<TabMessage> {
        serde_json::from_str(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_survive_the_channel() {
        let request = TabMessage::Request {
            tab: "t1".into(),
            seq: 3,
            request: Request::Commit {
                requests: vec![MutationRequest {
                    collection: "todos".into(),
                    doc_id: "1".into(),
                    op: ferrosync_core::mutation::Op::Delete,
                    metadata: Some(serde_json::json!({"by": "test"})),
                }],
                metadata: None,
            },
        };
        assert_eq!(TabMessage::decode(&request.encode()), Some(request.clone()));
        // Keys in another order (a `Value` sorts them: the tags come last).
        let sorted = serde_json::to_value(&request).unwrap().to_string();
        assert_eq!(TabMessage::decode(&sorted), Some(request));
        let reply = TabMessage::Reply {
            to: "t1".into(),
            seq: 3,
            result: Err(Refusal::from(CoreError::EmptyTransaction)),
        };
        assert_eq!(TabMessage::decode(&reply.encode()), Some(reply));
        assert_eq!(TabMessage::decode("{\"type\":\"unknown\"}"), None);
    }
}
