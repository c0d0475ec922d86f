//! Indexes over unfinished transactions, so each step costs what it changes rather than the
//! size of the outbox: the ordered strategy's per-object queues, the transactions ready for
//! wire ids, those holding ids in the order the server must see them, local-only ones, and
//! those waiting for a retry time.

use super::{Engine, Object};
use crate::id_map::IdMap;
use crate::transaction::{TxId, TxState};
use crate::{Millis, MutationId};
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
pub(super) struct Queues {
    /// Per object, the unfinished transactions on it, oldest first (ordered strategy).
    on_object: HashMap<Object, Vec<TxId>>,
    /// The objects each transaction queued on (conflict resolution may later drop some of its
    /// mutations; its places in the queues are released all the same).
    claims: HashMap<TxId, Vec<Object>>,
    /// For each transaction, the ones waiting for it.
    waiters: HashMap<TxId, Vec<TxId>>,
    /// Pending, unparked transactions without wire ids: next to be given ids.
    pub ready: BTreeSet<TxId>,
    /// Transactions holding wire ids, by first id: the order they go on the wire.
    pub wire: IdMap<MutationId, TxId>,
    /// Every transaction in `wire` below this first id is on the wire (in a push awaiting its
    /// answer), so looking for what to send or retry starts here, not at the oldest.
    pub send_from: MutationId,
    /// Unfinished transactions that only write local-only collections.
    pub local: BTreeSet<TxId>,
    /// Transactions with a retry time: the only ones the next wake-up depends on.
    pub backing_off: BTreeSet<TxId>,
}

impl Queues {
    /// The transactions `id` must wait for: on each of its objects, the closest earlier one.
    fn blockers(&self, id: TxId) -> Vec<TxId> {
        let mut behind: Vec<TxId> = self.claims[&id]
            .iter()
            .filter_map(|o| {
                let queue = &self.on_object[o];
                let at = queue.iter().position(|t| *t == id)?;
                at.checked_sub(1).map(|prev| queue[prev])
            })
            .collect();
        crate::sort::sort(&mut behind);
        behind.dedup();
        behind
    }

    fn wait(&mut self, id: TxId, behind: &[TxId]) {
        for blocker in behind {
            self.waiters.entry(*blocker).or_default().push(id);
        }
    }
}

impl Engine {
    /// Starts tracking a new (or reloaded) transaction, in creation order: under the ordered
    /// strategy it waits for the closest earlier unfinished transaction on each of its objects.
    pub(super) fn track(&mut self, id: TxId) {
        if self.config.mutation_strategy.is_ordered() {
            let mut objects: Vec<Object> = self.txs[&id]
                .tx
                .objects()
                .map(|(c, d)| (c.to_owned(), d.clone()))
                .collect();
            crate::sort::sort(&mut objects);
            objects.dedup();
            for object in &objects {
                // Most objects have one transaction queued: room for one, not a first push's four.
                self.queues
                    .on_object
                    .entry(object.clone())
                    .or_insert_with(|| Vec::with_capacity(1))
                    .push(id);
            }
            self.queues.claims.insert(id, objects);
            let behind = self.queues.blockers(id);
            self.queues.wait(id, &behind);
            self.txs.get_mut(&id).expect("tracked").tx.queued_behind = behind;
        }
        let entry = self.txs.get_mut(&id).expect("tracked");
        if matches!(entry.tx.state, TxState::Pending | TxState::Queued) && !entry.has_ids() {
            let next = if entry.tx.queued_behind.is_empty() {
                TxState::Pending
            } else {
                TxState::Queued
            };
            entry.tx.set_state(next, self.now);
        }
        self.classify(id);
    }

    /// Files a transaction under the index its state calls for.
    pub(super) fn classify(&mut self, id: TxId) {
        let q = &mut self.queues;
        q.ready.remove(&id);
        let Some(entry) = self.txs.get(&id) else {
            return;
        };
        if entry.tx.state.is_terminal() {
            q.local.remove(&id);
            return;
        }
        if entry.local_only {
            q.local.insert(id);
        } else if let Some(first) = entry.first_wire_id() {
            q.wire.insert(first, id);
            q.send_from = q.send_from.min(first);
        } else if entry.tx.state == TxState::Pending && !entry.is_parked() {
            q.ready.insert(id);
        }
    }

    /// Sets when transaction `id` may be tried again (`None`: at once, or not waiting).
    pub(super) fn set_retry_at(&mut self, id: TxId, at: Option<Millis>) {
        let Some(entry) = self.txs.get_mut(&id) else {
            return;
        };
        entry.retry_at = at;
        if at.is_some() {
            self.queues.backing_off.insert(id);
        } else {
            self.queues.backing_off.remove(&id);
        }
    }

    /// Forgets a transaction's wire position (before its ids are cleared or it finishes).
    pub(super) fn unwire(&mut self, id: TxId) {
        if let Some(first) = self.txs.get(&id).and_then(|e| e.first_wire_id()) {
            self.queues.wire.remove(&first);
        }
    }

    /// A finished transaction leaves every index; those waiting for it now wait for their new
    /// closest predecessors, or run.
    pub(super) fn untrack(&mut self, id: TxId) {
        self.unwire(id);
        self.classify(id);
        for object in self.queues.claims.remove(&id).unwrap_or_default() {
            if let Some(queue) = self.queues.on_object.get_mut(&object) {
                queue.retain(|t| *t != id);
                if queue.is_empty() {
                    self.queues.on_object.remove(&object);
                }
            }
            self.release_deferred(&object);
        }
        for waiter in self.queues.waiters.remove(&id).unwrap_or_default() {
            if !self.queues.claims.contains_key(&waiter) {
                continue; // finished too
            }
            let behind = self.queues.blockers(waiter);
            let Some(entry) = self.txs.get_mut(&waiter) else {
                continue;
            };
            let added: Vec<TxId> = behind
                .iter()
                .filter(|b| !entry.tx.queued_behind.contains(b))
                .copied()
                .collect();
            entry.tx.queued_behind = behind;
            if entry.tx.queued_behind.is_empty() && entry.tx.state == TxState::Queued {
                entry.tx.set_state(TxState::Pending, self.now);
            }
            self.queues.wait(waiter, &added);
            self.out.txs.insert(waiter);
            self.classify(waiter);
        }
    }

    /// Whether an unfinished transaction holds the object (persisting or awaiting sync).
    pub(super) fn is_locked(&self, object: &Object) -> bool {
        self.queues
            .on_object
            .get(object)
            .is_some_and(|q| q.iter().any(|t| self.txs[t].tx.state.locks()))
    }

    /// The document `from` was given the id `to`: its queue moves along, merged in id order
    /// with any queue `to` already has.
    pub(super) fn rename_object(&mut self, collection: &str, from: &str, to: &str) {
        let old = (collection.to_owned(), from.to_owned());
        let new = (collection.to_owned(), to.to_owned());
        let Some(moved) = self.queues.on_object.remove(&old) else {
            return;
        };
        for tx in &moved {
            if let Some(objects) = self.queues.claims.get_mut(tx) {
                objects.retain(|o| *o != old && *o != new);
                objects.push(new.clone());
            }
        }
        let queue = self.queues.on_object.entry(new).or_default();
        queue.extend(moved);
        crate::sort::sort(queue);
        queue.dedup();
    }
}
