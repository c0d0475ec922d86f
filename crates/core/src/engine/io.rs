//! What goes into the engine ([`Input`]) and what comes out of a step ([`Step`], its
//! [`Effect`]s), and the conflicts it holds for the application.

use super::backend::{Call, CallOutcome};
use super::requests::{Answer, Ticket};
use super::status::{SyncProgress, SyncStats, SyncStatus};
use super::store::{Snapshot, StorageWrite};
use crate::collection::DocChange;
use crate::document::{Document, Fields};
use crate::mutation::MutationRequest;
use crate::protocol::{ClientMessage, ServerMessage};
use crate::transaction::{Transaction, TxId};
use crate::{CoreError, DocId, Millis};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Something that happened, for the engine to react to.
#[derive(Debug)]
pub enum Input {
    /// Storage finished loading: must come first, once.
    Loaded(Snapshot),
    /// A local transaction (one or more writes, all or nothing).
    Commit {
        /// Its writes, in order.
        requests: Vec<MutationRequest>,
        /// The application's data about it.
        metadata: Option<Value>,
        /// The request of another tab it is made for (its [`Origin`] names it), if any: a
        /// request already committed is not committed again (the step names its transaction).
        origin: Option<String>,
    },
    /// Remove a document's local copy for good; the step's ticket is answered once storage
    /// holds the removal.
    HardDelete {
        /// The collection.
        collection: String,
        /// The document.
        id: DocId,
    },
    /// The application resolved a parked conflict with these fields.
    ResolveConflict {
        /// The conflict.
        id: ConflictId,
        /// The document's fields to send.
        fields: Fields,
    },
    /// A `Persist` effect's write is durable.
    Persisted {
        /// The write's token.
        token: u64,
    },
    /// Storage was reopened after its connection closed, and may have lost what it held (the
    /// browser's data was cleared): everything is written again.
    StorageReset,
    /// A `Persist` effect's write failed.
    PersistFailed {
        /// The write's token.
        token: u64,
        /// What storage said.
        message: String,
        /// Storage is full (the browser's quota).
        quota: bool,
    },
    /// A connection to the server is open (`live`: WebSocket; otherwise HTTP polling).
    Connected {
        /// Whether the server pushes live changes.
        live: bool,
    },
    /// The connection is gone, or could not be opened (the server is unreachable, a custom
    /// backend's `setup` failed): another is asked for after a backoff while sync runs.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// A message from the server.
    Server(ServerMessage),
    /// Push and/or pull now (`forceSync`, `push`, `pull`); the step's ticket is answered once
    /// sync is idle, or has failed.
    SyncNow {
        /// Send pending writes.
        push: bool,
        /// Fetch remote changes.
        pull: bool,
    },
    /// `flush`: the step's ticket is answered once everything the engine holds is durable.
    Flush,
    /// Start syncing: the engine asks for a connection (`Connect`) and, after each loss, for
    /// another after a backoff.
    Start,
    /// Stop syncing: the connection is dropped (`Disconnect`); local reads and writes go on.
    Stop,
    /// The browser went online or offline: no connection is asked for while offline.
    Network {
        /// Whether it is online.
        online: bool,
    },
    /// Time passed (a `WakeAt` came due).
    Tick,
    /// Storage is idle and the page has time to spare: fold some of the log into pages if that
    /// is due (see [`Step::compact`]).
    Compact,
    /// A custom backend is ready (its `setup` resolved): transactions may be persisted.
    BackendReady,
    /// Documents a custom backend delivered (`setup`'s data, `onUpdate`); a document with
    /// `deleted` set is a tombstone. `complete`: they are the whole state of `collections`, so
    /// synced documents missing from them are gone.
    Remote {
        /// The documents, by collection.
        docs: Vec<(String, Document)>,
        /// The collections `docs` holds completely, if it is a full snapshot.
        complete: Option<Vec<String>>,
    },
    /// A custom backend answered a `Call`.
    Called {
        /// The call answered.
        call: Call,
        /// Its outcome.
        outcome: CallOutcome,
    },
}

impl Input {
    /// A commit of `requests` without metadata.
    pub fn commit(requests: Vec<MutationRequest>) -> Input {
        Input::Commit {
            requests,
            metadata: None,
            origin: None,
        }
    }
}

/// Something for the driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Write this batch in one storage transaction, then report `Persisted` or `PersistFailed`.
    Persist(StorageWrite),
    /// Send this message to the server.
    Send(ClientMessage),
    /// The visible view changed.
    Changes(Vec<DocChange>),
    /// These transactions changed (their new state and history).
    Transactions(Vec<Transaction>),
    /// These transactions are now durable in storage (their `insert`/`update` may resolve).
    Durable(Vec<TxId>),
    /// The sync status changed.
    Status(SyncStatus),
    /// The sync stats changed.
    Stats(SyncStats),
    /// The sync progress changed.
    Progress(SyncProgress),
    /// Feed a `Tick` at this time.
    WakeAt(Millis),
    /// Call the custom backend's function for a transaction; answer with `Called`.
    Call(Call),
    /// Open a connection to server number `server` of the list (counted round it), or run the
    /// custom backend's `setup`; answer with `Connected`/`BackendReady` or `Disconnected`.
    Connect {
        /// Which server.
        server: usize,
    },
    /// Drop the connection (open or opening) without reporting `Disconnected`.
    Disconnect,
    /// These requests are answered (see [`Step::ticket`]).
    Answered(Vec<(Ticket, Answer)>),
}

/// What one `handle` call produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Step {
    /// The effects, in order.
    pub effects: Vec<Effect>,
    /// The new transaction's id, for `Commit`.
    pub transaction: Option<TxId>,
    /// The request's ticket, for `SyncNow`, `HardDelete` and `Flush`: an
    /// [`Effect::Answered`] of this step or a later one answers it.
    pub ticket: Option<Ticket>,
    /// Changes wait for a storage write this step did not start (only with
    /// [`EngineConfig::batch_writes`]): feed [`Input::Tick`] soon to write them.
    pub unflushed: bool,
    /// Storage is idle and its log due for compaction: feed [`Input::Compact`] when there is
    /// time to spare (an idle callback), so it never delays a write.
    pub compact: bool,
}

/// Names a parked conflict: a transaction and the index of its mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConflictId {
    /// The transaction.
    pub tx: TxId,
    /// The mutation's index in it.
    pub index: usize,
}

impl fmt::Display for ConflictId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tx, self.index)
    }
}

impl std::str::FromStr for ConflictId {
    type Err = CoreError;

    /// Parses the `Display` form, `tx-<id>/<index>`.
    fn from_str(s: &str) -> Result<Self, CoreError> {
        let parsed = s
            .strip_prefix("tx-")
            .and_then(|rest| rest.split_once('/'))
            .and_then(|(tx, index)| Some((tx.parse().ok()?, index.parse().ok()?)));
        match parsed {
            Some((tx, index)) => Ok(ConflictId {
                tx: TxId(tx),
                index,
            }),
            None => Err(CoreError::UnknownConflict(s.into())),
        }
    }
}

/// A conflict waiting for `resolveConflict`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictEntry {
    /// Its id.
    pub id: ConflictId,
    /// The collection.
    pub collection: String,
    /// The document.
    pub doc_id: DocId,
    /// The document as this client wanted it.
    pub local: Option<Document>,
    /// The server's document.
    pub remote: Document,
    /// The synced document the local write started from.
    pub base: Option<Document>,
}
