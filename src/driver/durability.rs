//! Commits as the leading tab tracks them: callers waiting for durability, and each
//! transaction's settlement (its end, for `TransactionHandle.settled()`).

use super::leader::Leader;
use super::pending::{answered, Answer};
use super::{Committed, Settlement};
use ferrosync_core::engine::Input;
use ferrosync_core::mutation::MutationRequest;
use ferrosync_core::transaction::{Transaction, TxId};
use ferrosync_core::CoreError;
use serde_json::Value;
use std::rc::Rc;
use wasm_bindgen::JsValue;

impl Leader {
    /// Settles transactions that finished, and rejects `insert` promises of those that failed
    /// before becoming durable.
    pub(super) fn transactions_changed(&mut self, txs: &[Transaction]) {
        for tx in txs.iter().filter(|tx| tx.state.is_terminal()) {
            // Every transaction waited on has a settlement.
            if let Some(settlement) = self.settlements.remove(&tx.id) {
                self.history_readers.settle(&self.engine, &settlement, tx);
                let result = outcome(tx).map(|()| (tx.id, settlement));
                self.durable_waiters.answer(&tx.id, result);
            }
        }
    }

    /// Commits a transaction; returns its id and an answer once it is durable (or failed
    /// first).
    pub(super) fn commit_tx(
        &mut self,
        requests: Vec<MutationRequest>,
        metadata: Option<Value>,
    ) -> Result<(TxId, Answer<Committed>), CoreError> {
        let id = self
            .input(Input::Commit {
                requests,
                metadata,
                origin: None,
            })?
            .expect("a commit creates a transaction");
        Ok((id, self.durable(id)))
    }

    /// The settlement of a transaction this engine still knows (or `None`).
    pub(super) fn settlement(&mut self, id: TxId) -> Option<Rc<Settlement>> {
        let tx = self.engine.transaction(id)?;
        if tx.state.is_terminal() {
            let settlement = Rc::new(Settlement::default());
            self.history_readers.settle(&self.engine, &settlement, tx);
            return Some(settlement);
        }
        Some(self.settlement_of(id))
    }

    pub(super) fn settlement_of(&mut self, id: TxId) -> Rc<Settlement> {
        self.settlements.entry(id).or_default().clone()
    }

    /// Takes over a settlement a follower handed out for transaction `id`.
    pub(super) fn adopt_settlement(&mut self, id: TxId, settlement: Rc<Settlement>) {
        match self.engine.transaction(id) {
            Some(tx) if tx.state.is_terminal() => {
                self.history_readers.settle(&self.engine, &settlement, tx);
            }
            Some(_) => {
                self.settlements.insert(id, settlement);
            }
            None => {
                let finished = self.engine.origin_of(id);
                if let Some(tx) = finished.and_then(|o| o.finished.as_ref()) {
                    settlement.settle(tx);
                }
            }
        }
    }

    /// An answer once transaction `id` is durable (at once if it already is), with its end.
    pub(super) fn durable(&mut self, id: TxId) -> Answer<Committed> {
        let state = self
            .engine
            .transaction(id)
            .map(|tx| (tx.state.is_terminal(), outcome(tx)));
        let settlement = self.settlement(id).unwrap_or_default();
        match state {
            Some((false, _)) if !self.engine.is_durable(id) => self.durable_waiters.add(id),
            Some((true, Err(error))) => answered(Err(error)),
            // Durable, finished, or finished and forgotten (it was durable).
            _ => answered(Ok((id, settlement))),
        }
    }
}

/// A finished transaction as its `insert` promise settles: done, or its error.
fn outcome(tx: &Transaction) -> Result<(), JsValue> {
    match &tx.error {
        Some(error) => Err(crate::views::transaction_error(error)),
        None => Ok(()),
    }
}
