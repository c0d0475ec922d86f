//! Local writes: committing transactions onto the optimistic overlay, and finishing them
//! (completion, failure with rollback and cascade, ordered queueing).

use super::{ConflictId, Engine, TxEntry};
use crate::collection::DocChange;
use crate::conflict::ConflictStrategy;
use crate::document::{Document, Fields, DELETED_FIELD, ID_FIELD};
use crate::mutation::{Mutation, MutationRequest, Op, OpError};
use crate::scheduler::dependents;
use crate::transaction::{Transaction, TxError, TxId, TxState};
use crate::{Code, CoreError};
use serde_json::Value;
use std::collections::HashMap;

impl Engine {
    /// Validates and applies a local transaction optimistically; it is sent once durable.
    pub(super) fn commit(
        &mut self,
        requests: Vec<MutationRequest>,
        metadata: Option<Value>,
    ) -> Result<TxId, CoreError> {
        if requests.is_empty() {
            return Err(CoreError::EmptyTransaction);
        }
        let originals = self.check_writes(&requests)?;
        let id = TxId(self.next_tx);
        self.next_tx += 1;
        let keep_base = matches!(self.config.conflict_strategy, ConflictStrategy::Custom(_));
        let mutations: Vec<Mutation> = requests
            .into_iter()
            .zip(originals)
            .map(|(r, original)| Mutation {
                hlc: self.clock.now(self.now),
                base_version: self.collections[&r.collection]
                    .synced(&r.doc_id)
                    .map_or(0, |d| d.version()),
                base: keep_base
                    .then(|| {
                        self.collections[&r.collection]
                            .synced(&r.doc_id)
                            .cloned()
                            .map(Box::new)
                    })
                    .flatten(),
                collection: r.collection,
                doc_id: r.doc_id,
                op: r.op,
                wire_id: None,
                parked: None,
                original,
                metadata: r.metadata,
                changed_at: None,
            })
            .collect();
        let local_only = mutations.iter().all(|m| !self.is_synced(&m.collection));
        let mut tx = Transaction::new(id, mutations, self.now);
        tx.metadata = metadata;
        let merge = self.merge_fn();
        for m in &tx.mutations {
            let collection = self
                .collections
                .get_mut(&m.collection)
                .expect("checked above");
            let change = collection.add_pending(id, &m.doc_id, m.op.clone(), m.hlc, merge.as_ref());
            self.out.changes.extend(change);
        }
        if !local_only {
            self.unsynced += 1;
        }
        self.txs.insert(
            id,
            TxEntry {
                tx,
                revision: 1,
                written_revision: 0,
                durable_revision: 0,
                local_only,
                in_flight: None,
                retry_at: None,
                abandon: false,
            },
        );
        self.store.checkpoint_dirty = true;
        self.touch(id);
        self.track(id);
        // Ready at once: its ids go into the record written at commit, which is then the only
        // one its life needs (they are sent only once that record is durable).
        if !self.is_custom() && self.queues.ready.contains(&id) {
            self.give_ids(id);
        }
        Ok(id)
    }

    /// Checks every write against the visible view, in order, before anything is applied;
    /// returns the fields each write found (`None`: no document).
    fn check_writes(&self, requests: &[MutationRequest]) -> Result<Vec<Option<Fields>>, CoreError> {
        let mut scratch: HashMap<(&str, &str), Option<Document>> = HashMap::new();
        let mut originals = Vec::with_capacity(requests.len());
        for r in requests {
            let collection = self.collection(&r.collection)?;
            if r.doc_id.is_empty() {
                return Err(CoreError::InvalidId("an empty string".into()));
            }
            let fields = match &r.op {
                Op::Insert { fields } | Op::Put { fields } => Some(fields),
                Op::Update { patch } => Some(patch),
                Op::Delete => None,
            };
            if let Some(reserved) = fields.and_then(|f| {
                [ID_FIELD, DELETED_FIELD]
                    .into_iter()
                    .find(|k| f.contains_key(k))
            }) {
                return Err(CoreError::ReservedField(reserved.into()));
            }
            let key = (r.collection.as_str(), r.doc_id.as_str());
            let current = scratch
                .get(&key)
                .cloned()
                .unwrap_or_else(|| collection.get(&r.doc_id).cloned());
            let next =
                r.op.apply(&r.doc_id, current.as_ref(), Default::default())
                    .map_err(|e| e.refusal(&r.collection, &r.doc_id))?;
            originals.push(current.map(|doc| doc.fields().owned()));
            scratch.insert(key, Some(next));
        }
        Ok(originals)
    }

    /// Removes a document's local copy for good (not synced).
    pub(super) fn hard_delete(&mut self, collection: &str, id: &str) -> Result<(), CoreError> {
        let merge = self.merge_fn();
        let c = self
            .collections
            .get_mut(collection)
            .ok_or_else(|| CoreError::UnknownCollection(collection.into()))?;
        if c.has_pending(id) {
            return Err(CoreError::HasPendingWrites {
                collection: collection.into(),
                id: id.into(),
            });
        }
        if c.synced(id).is_none() {
            return Err(OpError::NotFound.refusal(collection, id));
        }
        self.replacing_synced(collection, id);
        let c = self.collections.get_mut(collection).expect("checked");
        self.out.changes.extend(c.remove(id, merge.as_ref()));
        self.store.docs.insert((collection.into(), id.into()));
        Ok(())
    }

    /// Resolves a parked conflict: the mutation becomes a replacement with `fields`.
    pub(super) fn resolve_conflict(
        &mut self,
        id: ConflictId,
        fields: Fields,
    ) -> Result<(), CoreError> {
        let unknown = || CoreError::UnknownConflict(id.to_string());
        let entry = self.txs.get_mut(&id.tx).ok_or_else(unknown)?;
        let m = entry.tx.mutations.get_mut(id.index).ok_or_else(unknown)?;
        let Some(parked) = m.parked.take() else {
            return Err(unknown());
        };
        m.op = Op::Put { fields };
        m.base_version = parked.remote.version();
        m.changed_at = Some(self.now);
        let doc = (m.collection.clone(), m.doc_id.clone());
        entry.revision += 1;
        self.sync_overlay(id.tx, &doc.0, &doc.1);
        self.touch(id.tx);
        self.classify(id.tx);
        Ok(())
    }

    /// Makes the overlay show transaction `tx`'s current mutations on one document.
    pub(super) fn sync_overlay(&mut self, tx: TxId, collection: &str, doc_id: &str) {
        let ops: Vec<Op> = self.txs[&tx]
            .tx
            .mutations
            .iter()
            .filter(|m| m.collection == collection && m.doc_id == doc_id)
            .map(|m| m.op.clone())
            .collect();
        let merge = self.merge_fn();
        if let Some(c) = self.collections.get_mut(collection) {
            self.out
                .changes
                .extend(c.replace_pending(tx, doc_id, ops, merge.as_ref()));
        }
    }

    /// Finishes a transaction successfully. Writes to local-only collections, and those a
    /// custom backend persisted, become their synced state; with the reference server, synced
    /// collections were updated from its answer already.
    pub(super) fn complete(&mut self, id: TxId) {
        let Some(entry) = self.txs.get_mut(&id) else {
            return;
        };
        if entry.tx.state == TxState::Persisting {
            entry.tx.set_state(TxState::PersistedAwaitingSync, self.now);
        }
        entry.tx.finish_attempt(self.now, None, None);
        entry.tx.set_state(TxState::Completed, self.now);
        // Taken out meanwhile, not copied (as `retire` does).
        let mutations = std::mem::take(&mut entry.tx.mutations);
        let merge = self.merge_fn();
        let custom = self.is_custom();
        for m in &mutations {
            if custom || !self.is_synced(&m.collection) {
                self.replacing_synced(&m.collection, &m.doc_id);
                let c = self.collections.get_mut(&m.collection).expect("configured");
                if let Ok(doc) = m.op.apply(&m.doc_id, c.synced(&m.doc_id), m.hlc) {
                    self.out.changes.extend(c.set_synced(doc, merge.as_ref()));
                    self.store
                        .docs
                        .insert((m.collection.clone(), m.doc_id.clone()));
                }
            }
        }
        self.txs.get_mut(&id).expect("finishing").tx.mutations = mutations;
        self.retire(id);
    }

    /// Fails a transaction and rolls it back; under the ordered strategy its dependents fail
    /// too, naming it as the cause.
    pub(super) fn fail(&mut self, id: TxId, code: Code, message: String) {
        let Some(entry) = self.txs.get(&id) else {
            return;
        };
        let mut failing = vec![(id, message.clone())];
        if self.config.mutation_strategy.is_ordered() {
            let later = self.txs.range(id..).map(|(_, e)| &e.tx);
            failing.extend(
                dependents(&entry.tx, later)
                    .into_iter()
                    .map(|d| (d, format!("depends on failed transaction {id}: {message}"))),
            );
        }
        for (tx_id, msg) in failing {
            let entry = self.txs.get_mut(&tx_id).expect("listed above");
            entry.tx.fail(TxError::new(id, code, msg), self.now);
            self.retire(tx_id);
        }
        self.status.record(code, message);
    }

    /// Takes a finished transaction off the overlay, out of storage and off the wire index.
    /// Its mutations are taken out of it meanwhile, not copied (a transaction of 1,000 writes
    /// would copy every document's fields).
    fn retire(&mut self, id: TxId) {
        let merge = self.merge_fn();
        let mut changes: Vec<DocChange> = Vec::new();
        let mutations = self
            .txs
            .get_mut(&id)
            .map(|e| std::mem::take(&mut e.tx.mutations))
            .unwrap_or_default();
        for m in &mutations {
            if let Some(c) = self.collections.get_mut(&m.collection) {
                changes.extend(c.remove_pending(id, &m.doc_id, merge.as_ref()));
            }
            if let Some(wire) = m.wire_id {
                self.wire_index.remove(&wire);
            }
        }
        if let Some(entry) = self.txs.get_mut(&id) {
            entry.tx.mutations = mutations;
        }
        self.out.changes.extend(changes);
        self.untrack(id);
        if let Some(entry) = self.txs.get_mut(&id) {
            entry.in_flight = None;
            if !entry.local_only {
                self.unsynced -= 1;
            }
        }
        self.set_retry_at(id, None);
        self.touch(id);
        self.finished.push(id);
    }

    /// Marks a transaction as changed: its record is re-stored and subscribers told.
    pub(super) fn touch(&mut self, id: TxId) {
        self.store.txs.insert(id);
        self.out.txs.insert(id);
    }

    pub(super) fn is_synced(&self, collection: &str) -> bool {
        holds(&self.synced, collection)
    }
}

/// Whether the sorted `names` hold `name`.
pub(super) fn holds(names: &[String], name: &str) -> bool {
    names.binary_search_by(|n| n.as_str().cmp(name)).is_ok()
}
