//! Other tabs' commit requests: which transaction each created ([`Origin`]). A tab that leads
//! commits for the others; each forwarded commit names its request, and the engine stores the
//! request's origin record with the transaction's first durable write and again with its end,
//! so a request re-sent after a reload or a takeover is answered from it, never applied twice.
//! Records older than [`ORIGIN_KEPT_MS`] are dropped at load (and deleted with the next write).

use super::Engine;
use crate::id_map::IdMap;
use crate::mutation::MutationRequest;
use crate::transaction::{Transaction, TxId};
use crate::{CoreError, Millis};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// How long an origin record is kept: no tab re-sends a request this old.
pub const ORIGIN_KEPT_MS: Millis = 7 * 24 * 3600 * 1000;

/// Which transaction another tab's commit request created (stored as it is serialized).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Origin {
    /// The request, as the driver names it (unique across tabs and reloads).
    pub request: String,
    /// The transaction.
    pub tx: TxId,
    /// When the request was committed.
    pub at: Millis,
    /// The transaction's end, once it finished.
    pub finished: Option<Transaction>,
}

crate::deserialize_object!(Origin {
    "request" => request: String,
    "tx" => tx: TxId,
    "at" => at: Millis,
    "finished" => finished: Option<Transaction> = default,
});

/// The origin records the engine knows, and what storage lacks of them.
#[derive(Debug, Default)]
pub(super) struct Origins {
    /// Every request known (loaded and new), by request.
    known: HashMap<String, Origin>,
    /// Requests whose record or end storage lacks, by transaction (`true`: a record without
    /// the end is stored).
    unwritten: IdMap<TxId, (String, bool)>,
    /// Requests too old to be re-sent, to delete with the next write.
    dropped: Vec<String>,
}

impl Engine {
    /// The origin record of request `request`, if a commit names it.
    pub fn origin(&self, request: &str) -> Option<&Origin> {
        self.origins.known.get(request)
    }

    /// The origin record of the request that created transaction `id`, if any.
    pub fn origin_of(&self, id: TxId) -> Option<&Origin> {
        self.origins.known.values().find(|o| o.tx == id)
    }

    /// Commits a transaction, for another tab's request `origin` if given: a request already
    /// committed is not committed again (its transaction is the answer), and a new one's
    /// record goes with the transaction's.
    pub(super) fn commit_for(
        &mut self,
        origin: Option<String>,
        requests: Vec<MutationRequest>,
        metadata: Option<Value>,
    ) -> Result<TxId, CoreError> {
        let Some(request) = origin else {
            return self.commit(requests, metadata);
        };
        if let Some(known) = self.origins.known.get(&request) {
            return Ok(known.tx);
        }
        let tx = self.commit(requests, metadata)?;
        let origin = Origin {
            request: request.clone(),
            tx,
            at: self.now,
            finished: None,
        };
        self.origins.known.insert(request.clone(), origin);
        self.origins.unwritten.insert(tx, (request, false));
        Ok(tx)
    }

    /// A transaction finished as `end`: its origin record (if any) gets the end.
    pub(super) fn origin_ended(&mut self, end: &Transaction) {
        if let Some((request, _)) = self.origins.unwritten.get(&end.id) {
            if let Some(origin) = self.origins.known.get_mut(request) {
                origin.finished = Some(end.clone());
            }
        }
    }

    /// The origin records a write storing (or settling) transactions `txs` carries: those not
    /// stored yet, and those whose end is not.
    pub(super) fn origins_to_write(&self, txs: impl Iterator<Item = TxId>) -> Vec<Origin> {
        if self.origins.unwritten.is_empty() {
            return Vec::new();
        }
        txs.filter_map(|id| {
            let (request, stored) = self.origins.unwritten.get(&id)?;
            let origin = self.origins.known.get(request)?;
            (!stored || origin.finished.is_some()).then(|| origin.clone())
        })
        .collect()
    }

    /// The requests to delete with the next write.
    pub(super) fn take_dropped_origins(&mut self) -> Vec<String> {
        std::mem::take(&mut self.origins.dropped)
    }

    /// A write's origin records are durable: those with their end need no more writes.
    pub(super) fn origins_persisted(&mut self, written: &[Origin]) {
        for origin in written {
            if origin.finished.is_some() {
                self.origins.unwritten.remove(&origin.tx);
            } else if let Some(entry) = self.origins.unwritten.get_mut(&origin.tx) {
                entry.1 = true;
            }
        }
    }

    /// A write failed: the requests it was to delete go with the next.
    pub(super) fn origins_failed(&mut self, dropped: Vec<String>) {
        self.origins.dropped.extend(dropped);
    }

    /// Storage was emptied: every record known is written again with its transaction.
    pub(super) fn origins_reset(&mut self) {
        let held = |tx: &TxId| self.txs.contains_key(tx) || self.history.contains_key(tx);
        for origin in self.origins.known.values().filter(|o| held(&o.tx)) {
            self.origins
                .unwritten
                .insert(origin.tx, (origin.request.clone(), false));
        }
    }

    /// Takes the stored records at load: those too old are dropped; those whose transaction
    /// is unfinished get its end written when it finishes.
    pub(super) fn load_origins(&mut self, stored: Vec<Origin>) {
        let oldest = self.now.saturating_sub(ORIGIN_KEPT_MS);
        for mut origin in stored {
            if origin.at < oldest {
                self.origins.dropped.push(origin.request);
                continue;
            }
            if origin.finished.is_none() && self.txs.contains_key(&origin.tx) {
                self.origins
                    .unwritten
                    .insert(origin.tx, (origin.request.clone(), true));
            } else if origin.finished.is_none() {
                origin.finished = self
                    .transaction(origin.tx)
                    .filter(|t| t.state.is_terminal())
                    .cloned();
            }
            self.origins.known.insert(origin.request.clone(), origin);
        }
    }
}
