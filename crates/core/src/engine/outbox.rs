//! The outbox: assigning wire ids, sending durable transactions in id order, and acting on the
//! server's answers (applied, conflict, rejected), on retries and on lost connections.

use super::local::holds;
use super::{Engine, Flight, Link, SyncType, NO_ANSWER};
use crate::conflict::Resolution;
use crate::document::Document;
use crate::mutation::{Mutation, Op, ParkedConflict};
use crate::protocol::ErrorCode;
use crate::protocol::{
    ClientMessage, CursorRange, ErrorInfo, MutationResult, Outcome, WireMutation, WireTransaction,
};
use crate::retry::{FailureKind, RetryDecision};
use crate::transaction::{TxId, TxState};
use crate::{Code, Millis, MutationId};
use std::collections::HashMap;

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
    fn landed(&mut self, id: TxId) {
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

    /// Acts on a push's answer. Results are matched by mutation id, so a late duplicate answer
    /// is harmless; transactions of the push left unanswered go back to pending.
    pub(super) fn push_result(
        &mut self,
        seq: u64,
        results: Vec<MutationResult>,
        range: Option<CursorRange>,
    ) {
        let mut by_tx: HashMap<TxId, Vec<MutationResult>> = HashMap::new();
        for r in results {
            if let Some(tx) = self.wire_index.get(&r.id) {
                by_tx.entry(*tx).or_default().push(r);
            }
        }
        let (mut applied, mut errors, mut all_settled) = (0, 0, true);
        for (id, results) in by_tx {
            let expected = self.txs[&id]
                .tx
                .mutations
                .iter()
                .filter(|m| m.wire_id.is_some())
                .count();
            if results.len() != expected || self.txs[&id].tx.state != TxState::Persisting {
                all_settled = false;
                continue;
            }
            let (a, e) = self.settle(id, results);
            applied += a;
            errors += e;
        }
        let Some(flight) = self.flights.remove(&seq) else {
            // An answer to no push in flight: its range is of writes this engine cannot place.
            return;
        };
        for id in flight.txs {
            self.requeue(
                id,
                Code::Protocol(ErrorCode::Aborted),
                "not processed: an earlier transaction in the same push failed",
            );
        }
        self.finish_log(flight.log, applied, errors, None);
        // The range holds this push's own writes; they are in the view only if all settled.
        if let (Some(range), true) = (range, all_settled) {
            self.advance_cursor(range);
        }
    }

    /// Settles one fully answered transaction; returns (applied, failed) mutation counts.
    fn settle(&mut self, id: TxId, results: Vec<MutationResult>) -> (usize, usize) {
        self.landed(id);
        if let Some(error) = results.iter().find_map(|r| match &r.outcome {
            Outcome::Rejected { error } if error.retryable => Some(error.clone()),
            _ => None,
        }) {
            self.retry_later(id, Code::Protocol(error.code), error.message);
            return (0, results.len());
        }
        self.status.answered();
        if results
            .iter()
            .any(|r| matches!(r.outcome, Outcome::Conflict { .. }))
        {
            self.resolve_conflicts(id, results);
            return (0, 0);
        }
        let rejection = results.iter().find_map(|r| match &r.outcome {
            Outcome::Rejected { error } if error.code == ErrorCode::Abandoned => {
                Some((Code::RetriesExhausted, self.gave_up_message(id)))
            }
            Outcome::Rejected { error } if error.code != ErrorCode::Aborted => {
                Some((Code::Protocol(error.code), error.message.clone()))
            }
            _ => None,
        });
        if let Some((code, message)) = rejection {
            self.fail(id, code, message);
            return (0, results.len());
        }
        let count = results.len();
        for r in results {
            let Outcome::Applied { doc } = r.outcome else {
                continue;
            };
            let m = self.txs[&id]
                .tx
                .mutations
                .iter()
                .find(|m| m.wire_id == Some(r.id))
                .expect("indexed");
            let collection = m.collection.clone();
            self.store_remote(&collection, doc);
        }
        self.complete(id);
        self.status.pushed(count, self.now);
        (count, 0)
    }

    /// Applies the conflict strategy to each conflicting mutation, then either re-sends the
    /// transaction with new ids, parks it in the conflict inbox, or completes it when nothing
    /// of it is left to send.
    fn resolve_conflicts(&mut self, id: TxId, results: Vec<MutationResult>) {
        let strategy = self.config.conflict_strategy.clone();
        let mut mutations = self.txs[&id].tx.mutations.clone();
        let mut keep = vec![true; mutations.len()];
        let mut conflicts = 0;
        for r in results {
            let Outcome::Conflict { doc: remote } = r.outcome else {
                continue;
            };
            conflicts += 1;
            let index = mutations
                .iter()
                .position(|m| m.wire_id == Some(r.id))
                .expect("indexed");
            let (local, base) = local_and_base(
                &mutations,
                index,
                self.collections[&mutations[index].collection].synced(&mutations[index].doc_id),
            );
            let m = &mut mutations[index];
            m.changed_at = Some(self.now);
            match strategy.resolve(m, local.as_ref(), &remote, base.as_ref()) {
                Resolution::KeepServer => keep[index] = false,
                Resolution::Resend(op) => {
                    m.op = op;
                    m.base_version = remote.version();
                }
                Resolution::Park => {
                    m.parked = Some(Box::new(ParkedConflict {
                        local,
                        remote: remote.clone(),
                        base,
                    }))
                }
            }
            let collection = m.collection.clone();
            self.store_remote(&collection, remote);
        }
        self.unwire(id);
        for m in &mut mutations {
            if let Some(wire) = m.wire_id.take() {
                self.wire_index.remove(&wire);
            }
        }
        let docs: Vec<(String, String)> = mutations
            .iter()
            .map(|m| (m.collection.clone(), m.doc_id.clone()))
            .collect();
        let mut kept = keep.iter();
        mutations.retain(|_| *kept.next().expect("same length"));
        self.status.conflicts(conflicts);
        let entry = self.txs.get_mut(&id).expect("answered");
        entry.tx.mutations = mutations;
        entry.revision += 1;
        let message = format!(
            "conflict on {conflicts} document(s); resolved by the {:?} strategy",
            strategy
        );
        entry
            .tx
            .finish_attempt(self.now, Some((Code::Conflict, message)), None);
        if entry
            .tx
            .mutations
            .iter()
            .all(|m| !holds(&self.synced, &m.collection))
        {
            // Nothing left for the server: the server's version stands.
            for (collection, doc) in docs {
                self.sync_overlay(id, &collection, &doc);
            }
            self.complete(id);
            return;
        }
        entry.tx.set_state(TxState::Pending, self.now);
        for (collection, doc) in docs {
            self.sync_overlay(id, &collection, &doc);
        }
        self.touch(id);
        self.classify(id);
    }

    /// A retryable failure: back off and resend with the same ids, or, with retries exhausted,
    /// send it once more marked `abandon` so the server settles it as rejected.
    fn retry_later(&mut self, id: TxId, code: Code, message: String) {
        let retry_at = match self.count_failure(id, FailureKind::Retryable) {
            RetryDecision::RetryAt(at) => Some(at),
            RetryDecision::GiveUp => {
                let entry = self.txs.get_mut(&id).expect("answered");
                entry.abandon = true;
                entry.revision += 1;
                None
            }
        };
        self.back_off(id, code, message, retry_at);
    }

    /// Counts a failed attempt against the retry limit and asks the policy what to do.
    pub(super) fn count_failure(&mut self, id: TxId, kind: FailureKind) -> RetryDecision {
        let entry = self.txs.get_mut(&id).expect("attempted");
        entry.tx.retries += 1;
        self.config
            .retry
            .decide(entry.tx.retries, kind, self.now, &mut self.rng)
    }

    /// Closes the failed attempt with `message` and puts the transaction back to pending, to be
    /// tried again at `retry_at` (at once when `None`); the status shows the error meanwhile.
    pub(super) fn back_off(
        &mut self,
        id: TxId,
        code: Code,
        message: String,
        retry_at: Option<Millis>,
    ) {
        self.set_retry_at(id, retry_at);
        let entry = self.txs.get_mut(&id).expect("attempted");
        entry
            .tx
            .finish_attempt(self.now, Some((code, message.clone())), retry_at);
        entry.tx.set_state(TxState::Pending, self.now);
        self.touch(id);
        self.status.fail(code, message);
    }

    pub(super) fn gave_up_message(&self, id: TxId) -> String {
        let tx = &self.txs[&id].tx;
        let last = tx
            .attempts
            .iter()
            .rev()
            .find_map(|a| a.error.clone())
            .unwrap_or_default();
        format!("gave up after {} attempts: {last}", tx.retries)
    }

    /// A sent transaction lost its answer (connection loss, timeout, early stop): its attempt
    /// ends with `code` and `why`, and it goes back to pending with its ids and is re-sent;
    /// this does not count against the retry limit. Whether it was still waiting for that
    /// answer.
    pub(super) fn requeue(&mut self, id: TxId, code: Code, why: &str) -> bool {
        let Some(entry) = self.txs.get_mut(&id) else {
            return false;
        };
        if entry.in_flight.is_none() || entry.tx.state != TxState::Persisting {
            return false;
        }
        self.landed(id);
        let entry = self.txs.get_mut(&id).expect("unfinished");
        entry
            .tx
            .finish_attempt(self.now, Some((code, why.to_owned())), None);
        entry.tx.set_state(TxState::Pending, self.now);
        self.out.txs.insert(id);
        true
    }

    /// Every push on the wire is given up on (connection lost, or a whole-push error): the
    /// attempts and runs end with the error's code, `network` without one.
    pub(super) fn requeue_all(&mut self, why: &str, error: Option<&ErrorInfo>) {
        let code = error.map_or(Code::Network, |e| Code::Protocol(e.code));
        let flights = std::mem::take(&mut self.flights);
        for flight in flights.into_values() {
            for id in &flight.txs {
                self.requeue(*id, code, why);
            }
            self.finish_log(flight.log, 0, 0, Some((code, why.to_owned())));
        }
        if let Some(error) = error {
            // The first transaction holding ids holds back all others: back it off.
            let first = self.queues.wire.values().next().copied();
            if let Some(first) = first {
                self.retry_later(first, Code::Protocol(error.code), error.message.clone());
            }
        }
    }

    /// Pushes whose answer is overdue are treated as lost, and sync shows as failing until the
    /// server answers again.
    pub(super) fn expire_pushes(&mut self) {
        let deadline = self.now.saturating_sub(self.config.ack_timeout_ms);
        let overdue: Vec<u64> = self
            .flights
            .iter()
            .filter(|(_, f)| f.sent_at <= deadline)
            .map(|(s, _)| *s)
            .collect();
        for seq in overdue {
            let flight = self.flights.remove(&seq).expect("listed");
            let mut unanswered = false;
            for id in &flight.txs {
                unanswered |= self.requeue(*id, Code::Network, NO_ANSWER);
            }
            self.finish_log(flight.log, 0, 0, Some((Code::Network, NO_ANSWER.into())));
            if unanswered {
                self.status.fail(Code::Network, NO_ANSWER.into());
            }
        }
    }
}

/// A conflict's `base` (the document the write started from) and `local` (what the transaction's
/// writes to that document, up to `index`, made of it).
fn local_and_base(
    mutations: &[Mutation],
    index: usize,
    synced: Option<&Document>,
) -> (Option<Document>, Option<Document>) {
    let target = &mutations[index];
    let base = target.base.as_deref().or(synced).cloned();
    let mut local = base.clone();
    for m in mutations[..=index]
        .iter()
        .filter(|m| m.collection == target.collection && m.doc_id == target.doc_id)
    {
        if let Ok(doc) = m.op.apply(&m.doc_id, local.as_ref(), m.hlc) {
            local = Some(doc);
        }
    }
    (local, base)
}
