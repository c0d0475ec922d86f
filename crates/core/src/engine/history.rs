//! The transaction history: finished transactions, kept in memory for `transactions()` and in
//! storage across reloads, under a retention the application configures
//! (`transactionHistory: { keep, maxAgeMs }`; by default everything is kept).
//!
//! Retention drops the oldest entries first (by id): while more than `keep` are held, or while
//! the oldest finished more than `max_age_ms` ago. What it dropped is never silent: the
//! `historyDropped` stat counts it, kept across reloads, and everything below the *floor* (the
//! lowest id still kept) is gone from storage as well (see `store`).
//!
//! An entry read back from storage stays the JSON stored until it is first read
//! ([`Archived`]), so a reload does not decode a history nobody asks for.

use super::store::StoredTx;
use super::Engine;
use crate::transaction::{Transaction, TxError, TxId, TxQuery, TxState};
use crate::Millis;
use std::cell::OnceCell;
use std::iter::Peekable;
use std::rc::Rc;

/// A history entry: a finished transaction, decoded from its stored bytes when first read, and
/// encoded when first stored. At least one of the two is held; the transaction is boxed, so an
/// entry holding only its bytes is small.
#[derive(Debug)]
pub(super) struct Archived {
    id: TxId,
    updated_at: Millis,
    bytes: OnceCell<Rc<[u8]>>,
    tx: OnceCell<Box<Transaction>>,
}

impl Archived {
    /// A transaction that finished in this session.
    pub(super) fn finished(tx: Transaction) -> Self {
        Archived {
            id: tx.id,
            updated_at: tx.updated_at,
            bytes: OnceCell::new(),
            tx: OnceCell::from(Box::new(tx)),
        }
    }

    /// An entry as storage held it.
    pub(super) fn from_stored(stored: StoredTx) -> Self {
        Archived {
            id: stored.id,
            updated_at: stored.updated_at,
            bytes: OnceCell::from(stored.bytes),
            tx: OnceCell::new(),
        }
    }

    /// The transaction. An entry whose stored bytes cannot be read (damaged storage) reads as
    /// a failed transaction whose error says so, rather than hiding it.
    pub(super) fn tx(&self) -> &Transaction {
        self.tx.get_or_init(|| {
            Box::new(self.stored().decode().unwrap_or_else(|e| {
                let mut tx = Transaction::new(self.id, Vec::new(), self.updated_at);
                tx.error = Some(TxError::new(self.id, e.code(), e.to_string()));
                tx.state = TxState::Failed;
                tx
            }))
        })
    }

    /// The entry as storage holds it, which from then on is all memory holds of it: the
    /// bytes are several times smaller than the transaction, decoded again when read.
    pub(super) fn store(&mut self) -> StoredTx {
        let stored = self.stored();
        self.tx.take();
        stored
    }

    /// The entry as storage holds it.
    pub(super) fn stored(&self) -> StoredTx {
        let bytes = self.bytes.get_or_init(|| {
            let tx = self
                .tx
                .get()
                .expect("an entry holds its bytes or its transaction");
            StoredTx::of(tx).bytes
        });
        StoredTx {
            id: self.id,
            updated_at: self.updated_at,
            bytes: bytes.clone(),
        }
    }
}

/// How much of the history is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryRetention {
    /// At most this many finished transactions (the newest); `None`: all.
    pub keep: Option<usize>,
    /// Finished transactions are dropped this long after they finished; `None`: never.
    pub max_age_ms: Option<Millis>,
}

impl HistoryRetention {
    /// Whether the oldest entry must go: more than `keep` are held, or it is too old.
    fn drops(&self, held: usize, oldest: &Archived, now: Millis) -> bool {
        self.keep.is_some_and(|keep| held > keep)
            || self
                .max_age_ms
                .is_some_and(|age| oldest.updated_at.saturating_add(age) < now)
    }
}

impl Engine {
    /// A transaction: unfinished, or in the history.
    pub fn transaction(&self, id: TxId) -> Option<&Transaction> {
        self.txs
            .get(&id)
            .map(|e| &e.tx)
            .or_else(|| self.history.get(&id).map(Archived::tx))
    }

    /// A finished transaction as storage holds it, if the history keeps it: its bytes are the
    /// history's own (shared, not copied), for whoever keeps the transaction beside it.
    pub fn stored_transaction(&self, id: TxId) -> Option<StoredTx> {
        self.history.get(&id).map(Archived::stored)
    }

    /// Every transaction the engine holds (unfinished, and the history), oldest first.
    pub fn transactions(&self) -> Vec<&Transaction> {
        let mut all: Vec<&Transaction> = self.newest_first(None).collect();
        all.reverse();
        all
    }

    /// The transactions `query` selects (see [`TxQuery`]), oldest first.
    pub fn query_transactions(&self, query: &TxQuery) -> Vec<&Transaction> {
        query.select(self.newest_first(query.before))
    }

    /// The unfinished transactions, oldest first.
    pub fn unfinished(&self) -> impl Iterator<Item = &Transaction> {
        self.txs.values().map(|e| &e.tx)
    }

    /// The `limit` newest entries of the history, oldest first.
    pub fn recent_history(&self, limit: usize) -> impl Iterator<Item = &Transaction> {
        let skip = self.history.len().saturating_sub(limit);
        self.history.values().skip(skip).map(Archived::tx)
    }

    /// Transactions below `before` (all without it), newest first, lazily merged from the
    /// unfinished ones and the history.
    fn newest_first(&self, before: Option<TxId>) -> impl Iterator<Item = &Transaction> {
        let end = before.unwrap_or(TxId(u64::MAX));
        let unfinished = self.txs.range(..end).rev().map(|(_, e)| &e.tx);
        let finished = self.history.range(..end).rev().map(|(_, a)| a.tx());
        Descending {
            a: unfinished.peekable(),
            b: finished.peekable(),
        }
    }

    /// Moves the transactions that finished in this step into the history (only once the step
    /// has reported them), then applies the retention.
    pub(super) fn archive_finished(&mut self) {
        for id in std::mem::take(&mut self.finished) {
            if let Some(entry) = self.txs.remove(&id) {
                let end = entry.tx.into_history();
                self.origin_ended(&end);
                if id.0 >= self.history_floor {
                    self.history.insert(id, Archived::finished(end));
                } else {
                    // Below the floor: older than what the retention keeps.
                    self.count_dropped(1);
                }
            }
        }
        self.apply_retention();
    }

    /// Drops the oldest entries the retention no longer keeps, and raises the floor past them.
    pub(super) fn apply_retention(&mut self) {
        let retention = self.config.history;
        let mut dropped = 0;
        while let Some((&id, oldest)) = self.history.first_key_value() {
            if !retention.drops(self.history.len(), oldest, self.now) {
                break;
            }
            self.history.remove(&id);
            self.history_floor = id.0 + 1;
            dropped += 1;
        }
        self.count_dropped(dropped);
    }

    fn count_dropped(&mut self, count: u64) {
        if count > 0 {
            self.status.history_dropped(count);
            self.store.checkpoint_dirty = true;
        }
    }
}

/// Two iterators of transactions in descending id order, merged.
struct Descending<'a, A: Iterator<Item = &'a Transaction>, B: Iterator<Item = &'a Transaction>> {
    a: Peekable<A>,
    b: Peekable<B>,
}

impl<'a, A, B> Iterator for Descending<'a, A, B>
where
    A: Iterator<Item = &'a Transaction>,
    B: Iterator<Item = &'a Transaction>,
{
    type Item = &'a Transaction;

    fn next(&mut self) -> Option<&'a Transaction> {
        match (self.a.peek(), self.b.peek()) {
            (Some(a), Some(b)) if a.id > b.id => self.a.next(),
            (Some(_), Some(_)) | (None, _) => self.b.next(),
            (Some(_), None) => self.a.next(),
        }
    }
}
