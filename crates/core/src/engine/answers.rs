//! Acting on a push's answers: applied, conflict (resolved by the strategy) or rejected, each
//! matched by mutation id.

use super::local::holds;
use super::Engine;
use crate::conflict::Resolution;
use crate::document::Document;
use crate::mutation::{Mutation, ParkedConflict};
use crate::protocol::{CursorRange, ErrorCode, MutationResult, Outcome};
use crate::transaction::{TxId, TxState};
use crate::Code;
use std::collections::HashMap;

impl Engine {
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
