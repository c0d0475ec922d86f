//! Durability: what changed since the last write is flushed as one storage batch at a time
//! (so writes group-commit under load), and the engine is rebuilt from what storage holds.

use super::{Engine, SyncLogEntry, TxEntry};
use crate::document::Document;
use crate::hlc::{node_of, Hlc, HybridClock};
use crate::transaction::{Transaction, TxId, TxState};
use crate::{ClientId, CoreError, DocId, Millis, MutationId, Version};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The engine's own stored fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// This database's client id.
    pub client_id: ClientId,
    /// The pull cursor.
    pub cursor: Version,
    /// The next wire mutation id to assign.
    pub next_mutation_id: MutationId,
    /// The next transaction id to assign.
    pub next_tx: u64,
    /// The last clock reading, so timestamps keep increasing across reloads.
    pub clock: Hlc,
}

/// What storage holds, handed to the engine at start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The engine's fields; `None` for a new database.
    pub checkpoint: Option<Checkpoint>,
    /// Synced documents, by collection.
    pub documents: Vec<(String, Document)>,
    /// Unfinished transactions.
    pub transactions: Vec<Transaction>,
    /// Recent sync-log entries.
    pub sync_log: Vec<SyncLogEntry>,
}

/// One storage transaction's worth of changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StorageWrite {
    /// Report this token in `Persisted` / `PersistFailed`.
    pub token: u64,
    /// Synced documents to store.
    pub documents: Vec<(String, Document)>,
    /// Documents to delete from storage.
    pub removed_documents: Vec<(String, DocId)>,
    /// Unfinished transactions to store.
    pub transactions: Vec<Transaction>,
    /// Finished transactions to delete from storage.
    pub removed_transactions: Vec<TxId>,
    /// The engine's fields, when they changed.
    pub checkpoint: Option<Checkpoint>,
    /// Sync-log entries to store.
    pub sync_log: Vec<SyncLogEntry>,
    /// Sync-log entries to delete.
    pub removed_sync_log: Vec<u64>,
}

/// What must be written, and the write under way.
#[derive(Debug, Clone, Default)]
pub(super) struct StoreState {
    pub docs: BTreeSet<(String, DocId)>,
    pub txs: BTreeSet<TxId>,
    pub logs: BTreeSet<u64>,
    pub removed_logs: BTreeSet<u64>,
    pub checkpoint_dirty: bool,
    /// The write in flight: its token and what it covered.
    in_flight: Option<InFlight>,
    next_token: u64,
    failures: u32,
    pub retry_at: Option<Millis>,
}

#[derive(Debug, Clone)]
struct InFlight {
    token: u64,
    docs: BTreeSet<(String, DocId)>,
    txs: Vec<(TxId, u64)>,
    logs: BTreeSet<u64>,
    removed_logs: BTreeSet<u64>,
    checkpoint: bool,
}

impl StoreState {
    /// Whether a write would start now: something is dirty, none is under way, no retry waits.
    pub(super) fn can_flush(&self, now: Millis) -> bool {
        self.in_flight.is_none() && self.is_dirty() && self.retry_at.is_none_or(|at| at <= now)
    }

    fn is_dirty(&self) -> bool {
        self.checkpoint_dirty
            || !self.docs.is_empty()
            || !self.txs.is_empty()
            || !self.logs.is_empty()
            || !self.removed_logs.is_empty()
    }
}

impl Engine {
    /// Rebuilds the engine from storage. Transactions that were on the wire go back to pending
    /// with their ids and are re-sent; the server's idempotency makes that safe. With a custom
    /// backend, those persisted and awaiting sync count as done.
    pub(super) fn load(&mut self, snapshot: Snapshot) -> Result<(), CoreError> {
        if self.loaded {
            return Err(CoreError::AlreadyLoaded);
        }
        match snapshot.checkpoint {
            Some(cp) => {
                self.client_id = cp.client_id;
                self.cursor = cp.cursor;
                self.next_mutation_id = cp.next_mutation_id;
                self.next_tx = cp.next_tx;
                self.clock = HybridClock::new(node_of(&self.client_id), cp.clock);
            }
            None => {
                self.client_id = format!("c{:016x}", self.rng.next_u64());
                self.clock = HybridClock::new(node_of(&self.client_id), Hlc::default());
                self.store.checkpoint_dirty = true;
            }
        }
        let merge = self.merge_fn();
        for (collection, doc) in snapshot.documents {
            if let Some(c) = self.collections.get_mut(&collection) {
                c.set_synced(doc, merge.as_ref());
            }
        }
        let mut txs = snapshot.transactions;
        txs.sort_by_key(|t| t.id);
        let mut persisted = Vec::new();
        for mut tx in txs.into_iter().filter(|t| !t.state.is_terminal()) {
            if tx
                .mutations
                .iter()
                .any(|m| !self.collections.contains_key(&m.collection))
            {
                return Err(CoreError::UnknownCollection(format!(
                    "{} (used by stored transaction {}; keep it in the configuration)",
                    tx.mutations
                        .iter()
                        .find(|m| !self.collections.contains_key(&m.collection))
                        .map_or("", |m| m.collection.as_str()),
                    tx.id
                )));
            }
            let custom = self.is_custom();
            if tx.state == TxState::PersistedAwaitingSync && custom {
                persisted.push(tx.id);
            } else if matches!(
                tx.state,
                TxState::Persisting | TxState::PersistedAwaitingSync
            ) {
                tx.state = TxState::Pending;
                tx.finish_attempt(self.now, Some("interrupted by a reload".into()), None);
            }
            for m in &tx.mutations {
                self.collections
                    .get_mut(&m.collection)
                    .expect("checked")
                    .add_pending(tx.id, &m.doc_id, m.op.clone(), m.hlc, merge.as_ref());
                if let Some(wire) = m.wire_id {
                    self.wire_index.insert(wire, tx.id);
                    self.next_mutation_id = self.next_mutation_id.max(wire + 1);
                }
            }
            self.next_tx = self.next_tx.max(tx.id.0 + 1);
            let local_only = tx.mutations.iter().all(|m| !self.is_synced(&m.collection));
            let id = tx.id;
            self.txs.insert(
                id,
                TxEntry {
                    tx,
                    revision: 1,
                    durable_revision: 1,
                    local_only,
                    in_flight: None,
                    retry_at: None,
                    abandon: false,
                },
            );
            self.track(id);
        }
        self.finish_persisted_on_load(persisted);
        self.load_log(snapshot.sync_log);
        self.loaded = true;
        Ok(())
    }

    /// Emits one storage write with everything changed since the last, unless one is under way.
    pub(super) fn flush(&mut self) {
        if !self.store.can_flush(self.now) {
            return;
        }
        self.store.retry_at = None;
        let token = self.store.next_token;
        self.store.next_token += 1;
        let docs = std::mem::take(&mut self.store.docs);
        let tx_ids = std::mem::take(&mut self.store.txs);
        let logs = std::mem::take(&mut self.store.logs);
        let removed_logs = std::mem::take(&mut self.store.removed_logs);
        let checkpoint = std::mem::take(&mut self.store.checkpoint_dirty);
        let mut write = StorageWrite {
            token,
            checkpoint: checkpoint.then(|| self.checkpoint()),
            removed_sync_log: removed_logs.iter().copied().collect(),
            ..StorageWrite::default()
        };
        for (collection, id) in &docs {
            match self.collections.get(collection).and_then(|c| c.synced(id)) {
                Some(doc) => write.documents.push((collection.clone(), doc.clone())),
                None => write
                    .removed_documents
                    .push((collection.clone(), id.clone())),
            }
        }
        let mut revisions = Vec::new();
        for id in &tx_ids {
            match self.txs.get(id) {
                Some(entry) if !entry.tx.state.is_terminal() => {
                    write.transactions.push(entry.tx.clone());
                    revisions.push((*id, entry.revision));
                }
                _ => write.removed_transactions.push(*id),
            }
        }
        write.sync_log = logs
            .iter()
            .filter_map(|id| self.log_entry(*id).cloned())
            .collect();
        self.store.in_flight = Some(InFlight {
            token,
            docs,
            txs: revisions,
            logs,
            removed_logs,
            checkpoint,
        });
        self.out.effects.push(super::Effect::Persist(write));
    }

    /// A write is durable: its transactions' revisions are, and the next write may go.
    pub(super) fn persisted(&mut self, token: u64) {
        let Some(done) = self.store.in_flight.take_if(|w| w.token == token) else {
            return;
        };
        self.store.failures = 0;
        for (id, revision) in done.txs {
            let Some(entry) = self.txs.get_mut(&id) else {
                continue;
            };
            if revision > entry.durable_revision {
                if entry.durable_revision == 0 {
                    self.out.durable.push(id);
                }
                entry.durable_revision = revision;
            }
        }
        self.status.storage_ok();
    }

    /// A write failed: what it covered is written again later, and the status shows the error.
    pub(super) fn persist_failed(&mut self, token: u64, message: String) {
        let Some(failed) = self.store.in_flight.take_if(|w| w.token == token) else {
            return;
        };
        self.store.docs.extend(failed.docs);
        self.store
            .txs
            .extend(failed.txs.into_iter().map(|(id, _)| id));
        self.store.logs.extend(failed.logs);
        self.store.removed_logs.extend(failed.removed_logs);
        self.store.checkpoint_dirty |= failed.checkpoint;
        self.store.failures += 1;
        self.store.retry_at = Some(self.now + self.config.retry.ceiling(self.store.failures));
        self.status.storage_failed(format!("storage: {message}"));
    }

    /// Marks all durable state dirty, so the next writes store it again from memory.
    pub(super) fn storage_reset(&mut self) {
        self.store.checkpoint_dirty = true;
        for (name, collection) in &self.collections {
            self.store.docs.extend(
                collection
                    .synced_docs()
                    .map(|doc| (name.clone(), doc.id.clone())),
            );
        }
        for (id, entry) in &mut self.txs {
            if !entry.tx.state.is_terminal() {
                entry.revision += 1;
                self.store.txs.insert(*id);
            }
        }
        self.store.logs.extend(self.status.log_ids());
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            client_id: self.client_id.clone(),
            cursor: self.cursor,
            next_mutation_id: self.next_mutation_id,
            next_tx: self.next_tx,
            clock: self.clock.last(),
        }
    }
}
