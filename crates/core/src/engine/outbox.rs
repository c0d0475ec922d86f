//! The outbox: assigning wire ids and sending durable transactions in id order, in pushes of
//! bounded size, a few in flight (the answers are `answers.rs`, retries `retries.rs`).

use super::local::holds;
use super::{Engine, Flight, Link, SyncType};
use crate::mutation::Op;
use crate::protocol::{ClientMessage, WireMutation, WireTransaction};
use crate::transaction::{TxId, TxState};
use crate::MutationId;

/// At most this many batches' worth of transactions are handed to a custom backend at once.
pub(super) const MAX_WIRE_BATCHES: usize = 4;
/// At most this many pushes are on the wire at once.
const MAX_PUSHES_IN_FLIGHT: usize = 4;
/// A push stops growing at about this many bytes (a transaction larger on its own still goes,
/// alone), so several pushes in one frame stay under the server's frame limit (1 MiB).
const PUSH_BYTES: usize = 192 * 1024;

/// About how many bytes a mutation takes in a push.
fn mutation_bytes(m: &WireMutation) -> usize {
    let fields = match &m.op {
        Op::Insert { fields } | Op::Put { fields } => fields.as_json().len(),
        Op::Update { patch } => patch.as_json().len(),
        Op::Delete => 0,
    };
    128 + m.collection.len() + m.doc_id.len() + fields
}

impl Engine {
    /// Moves the outbox forward: finishes local-only work, assigns ids, sends what is ready.
    pub(super) fn pump_outbox(&mut self) {
        self.complete_local_only();
        let Link::Up { welcomed: true, .. } = self.link else {
            return;
        };
        if !self.config.direction.pushes() {
            return;
        }
        if self.is_custom() {
            self.call_ready();
            return;
        }
        self.start_due_retries();
        self.assign_ids();
        self.send_ready();
    }

    /// Local-only transactions are done once durable. Transactions become durable in id order
    /// (each storage write takes everything dirty), so the scan stops at the first that is not.
    fn complete_local_only(&mut self) {
        let done: Vec<TxId> = self
            .queues
            .local
            .iter()
            .take_while(|id| self.txs[id].durable_revision > 0)
            .filter(|id| {
                let e = &self.txs[id];
                e.tx.state == TxState::Pending && e.is_durable()
            })
            .copied()
            .collect();
        for id in done {
            self.complete(id);
        }
    }

    /// Transactions that already hold ids and whose retry time has come go back to persisting,
    /// as many as the pushes allowed in flight can carry.
    fn start_due_retries(&mut self) {
        let now = self.now;
        let limit = MAX_PUSHES_IN_FLIGHT * self.config.batch_size;
        let unsent = self.queues.wire.range(self.queues.send_from..);
        let due: Vec<TxId> = unsent
            .map(|(_, id)| *id)
            .take(limit)
            .filter(|id| {
                let entry = &self.txs[id];
                entry.tx.state == TxState::Pending && entry.retry_at.is_none_or(|at| at <= now)
            })
            .collect();
        for id in due {
            self.set_retry_at(id, None);
            let entry = self.txs.get_mut(&id).expect("indexed");
            entry.tx.set_state(TxState::Persisting, now);
            self.out.txs.insert(id);
        }
    }

    /// Gives ids to ready transactions that have none (those that waited behind another on the
    /// same object), oldest first; their records are written again with the ids.
    fn assign_ids(&mut self) {
        let candidates: Vec<TxId> = self
            .queues
            .ready
            .iter()
            .take_while(|id| self.txs[id].durable_revision > 0)
            .copied()
            .collect();
        for id in candidates {
            self.give_ids(id);
            let entry = self.txs.get_mut(&id).expect("indexed");
            entry.revision += 1;
            entry.tx.set_state(TxState::Persisting, self.now);
            self.store.txs.insert(id);
            self.out.txs.insert(id);
        }
    }

    /// Numbers a ready transaction's writes to synced collections with the next wire ids.
    pub(super) fn give_ids(&mut self, id: TxId) {
        let entry = self.txs.get_mut(&id).expect("indexed");
        for m in entry
            .tx
            .mutations
            .iter_mut()
            .filter(|m| holds(&self.synced, &m.collection))
        {
            m.wire_id = Some(self.next_mutation_id);
            self.wire_index.insert(self.next_mutation_id, id);
            self.next_mutation_id += 1;
        }
        self.store.checkpoint_dirty = true;
        self.classify(id);
    }

    /// Sends persisting transactions whose ids are durable, in id order, in batches; stops at
    /// the first one not ready (waiting for a retry, or for storage) so ids stay contiguous.
    fn send_ready(&mut self) {
        if self.flights.len() >= MAX_PUSHES_IN_FLIGHT {
            return;
        }
        let mut batch: Vec<WireTransaction> = Vec::new();
        let mut batch_txs = Vec::new();
        let (mut size, mut bytes) = (0, 0);
        // No more than the free pushes can carry (and those answered meanwhile: a few on the
        // wire may sit past `send_from`).
        let reach = 2 * MAX_PUSHES_IN_FLIGHT * self.config.batch_size;
        let order: Vec<(MutationId, TxId)> = self
            .queues
            .wire
            .range(self.queues.send_from..)
            .take(reach)
            .map(|(first, id)| (*first, *id))
            .collect();
        // Past the last one looked at, unless the loop stops at one it does not send.
        let mut send_from = order.last().map(|(first, _)| first + 1);
        for (first, id) in order {
            let entry = &self.txs[&id];
            if entry.in_flight.is_some() {
                continue;
            }
            if entry.tx.state != TxState::Persisting || !entry.is_durable() {
                send_from = Some(first);
                break;
            }
            let wire = self.wire_transaction(id);
            let wire_bytes: usize = wire.mutations.iter().map(mutation_bytes).sum();
            if size > 0
                && (size + wire.mutations.len() > self.config.batch_size
                    || bytes + wire_bytes > PUSH_BYTES)
            {
                self.send_push(std::mem::take(&mut batch), std::mem::take(&mut batch_txs));
                (size, bytes) = (0, 0);
            }
            if self.flights.len() >= MAX_PUSHES_IN_FLIGHT {
                send_from = Some(first);
                break;
            }
            size += wire.mutations.len();
            bytes += wire_bytes;
            batch.push(wire);
            batch_txs.push(id);
        }
        if !batch.is_empty() {
            self.send_push(batch, batch_txs);
        }
        if let Some(from) = send_from {
            self.queues.send_from = from;
        }
    }

    /// A transaction is no longer on the wire: the search for what to send starts at it again.
    pub(super) fn landed(&mut self, id: TxId) {
        let entry = self.txs.get_mut(&id).expect("unfinished");
        entry.in_flight = None;
        if let Some(first) = entry.first_wire_id() {
            self.queues.send_from = self.queues.send_from.min(first);
        }
    }

    fn wire_transaction(&self, id: TxId) -> WireTransaction {
        let entry = &self.txs[&id];
        let mutations = entry
            .tx
            .mutations
            .iter()
            .filter_map(|m| {
                Some(WireMutation {
                    id: m.wire_id?,
                    collection: m.collection.clone(),
                    doc_id: m.doc_id.clone(),
                    op: m.op.clone(),
                    hlc: m.hlc,
                    base_version: m.base_version,
                })
            })
            .collect();
        WireTransaction {
            mutations,
            abandon: entry.abandon,
        }
    }

    fn send_push(&mut self, transactions: Vec<WireTransaction>, txs: Vec<TxId>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        for id in &txs {
            let entry = self.txs.get_mut(id).expect("batched from txs");
            entry.in_flight = Some(seq);
            entry.tx.start_attempt(self.now);
            self.out.txs.insert(*id);
        }
        let log = self.start_log(SyncType::Push);
        self.flights.insert(
            seq,
            Flight {
                txs,
                sent_at: self.now,
                log,
            },
        );
        self.send(ClientMessage::Push { seq, transactions });
    }
}
