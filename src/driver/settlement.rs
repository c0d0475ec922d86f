//! A transaction's end, as `TransactionHandle.settled()` waits for it.

use super::pending::Pending;
use ferrosync_core::engine::{Engine, StoredTx};
use ferrosync_core::transaction::{Transaction, TxError, TxId};
use std::cell::RefCell;
use std::rc::{Rc, Weak};

/// A transaction's end, for `TransactionHandle.settled()`. A handle lives until the page
/// collects it, and a burst of writes leaves many, so a settlement holds little: while the
/// engine's history keeps the transaction (by default it keeps every one as long as the engine
/// runs), its id and its error if it failed, the transaction being read from the history;
/// else the transaction as storage keeps it (a few times smaller than the transaction), decoded
/// when read.
#[derive(Default)]
pub struct Settlement {
    finished: RefCell<Option<Ended>>,
    waiters: RefCell<Vec<Pending<()>>>,
}

/// A finished transaction: its error if it failed (so whether it failed is known without
/// reading it), and its stored form unless the engine's history keeps it.
struct Ended {
    id: TxId,
    error: Option<Box<TxError>>,
    stored: Option<Box<StoredTx>>,
}

impl Settlement {
    /// Waits for the end: `Ok` once completed, its error once failed; `None` if the engine was
    /// destroyed first.
    pub async fn wait(&self) -> Option<Result<(), TxError>> {
        if self.finished.borrow().is_none() {
            let (pending, answer) = Pending::new();
            self.waiters.borrow_mut().push(pending);
            answer.await.ok()?.ok()?;
        }
        let finished = self.finished.borrow();
        let error = finished.as_ref()?.error.as_deref();
        Some(error.map_or(Ok(()), |e| Err(e.clone())))
    }

    /// The engine is gone: waiters are told there will be no end.
    pub fn abandon(&self) {
        self.waiters.borrow_mut().clear();
    }

    /// The finished transaction if the settlement holds it (not when the engine's history keeps
    /// it: ask the engine first).
    pub fn transaction(&self) -> Option<Transaction> {
        let finished = self.finished.borrow();
        let stored = finished.as_ref()?.stored.as_ref()?;
        // Its error shown with `Display`: `expect` would compile `CoreError`'s `Debug` in.
        let tx = stored
            .decode()
            .unwrap_or_else(|e| panic!("a transaction reads back as it was encoded: {e}"));
        Some(tx)
    }

    /// Records the end, with a copy of the transaction, and wakes the waiters.
    pub fn settle(&self, tx: &Transaction) {
        self.settle_stored(StoredTx::of(tx), tx);
    }

    /// Records the end of `tx`, with its copy as storage holds it (`stored`), and wakes the
    /// waiters.
    pub fn settle_stored(&self, stored: StoredTx, tx: &Transaction) {
        self.finish(Some(stored), tx);
    }

    /// Records the end of `tx`, which the engine's history keeps for as long as it runs (see
    /// [`Engine::history_keeps`]): the settlement holds no copy until [`Self::keep_copy`].
    fn settle_in_history(&self, tx: &Transaction) {
        self.finish(None, tx);
    }

    /// The engine is about to go: a settlement that reads its transaction from `engine`'s
    /// history takes a copy of it.
    fn keep_copy(&self, engine: &Engine) {
        let mut finished = self.finished.borrow_mut();
        let Some(ended) = finished.as_mut().filter(|e| e.stored.is_none()) else {
            return;
        };
        let stored = engine
            .stored_transaction(ended.id)
            .or_else(|| engine.transaction(ended.id).map(StoredTx::of));
        ended.stored = stored.map(Box::new);
    }

    /// Records the end of `tx` (`stored`: its stored form, if the settlement holds it), and
    /// wakes the waiters.
    fn finish(&self, stored: Option<StoredTx>, tx: &Transaction) {
        *self.finished.borrow_mut() = Some(Ended {
            id: tx.id,
            error: tx.error.clone().map(Box::new),
            stored: stored.map(Box::new),
        });
        for waiter in self.waiters.borrow_mut().drain(..) {
            waiter.answer(Ok(()));
        }
    }
}

/// The settlements that read their transaction from the engine's history, so that each takes a
/// copy before the engine goes. Held weakly: a handle the page collected lets go of its
/// settlement, which leaves the list when the sweep (a few places looked at for each one added)
/// comes by, so the list stays about as long as the settlements alive.
#[derive(Default)]
pub struct HistoryReaders {
    settlements: Vec<Weak<Settlement>>,
    /// The next place the sweep looks at.
    sweep: usize,
}

impl HistoryReaders {
    /// Settles `settlement` with `tx`, finished in `engine`. While the history keeps `tx` for as
    /// long as the engine runs, the settlement reads it there and is noted here; else it keeps a
    /// copy: the history's bytes, copied out of its packed page when it holds those whole, or
    /// encoded from `tx`.
    pub fn settle(&mut self, engine: &Engine, settlement: &Rc<Settlement>, tx: &Transaction) {
        if !engine.history_keeps(tx.id) {
            match engine.stored_transaction(tx.id) {
                Some(stored) => settlement.settle_stored(stored, tx),
                None => settlement.settle(tx),
            }
            return;
        }
        settlement.settle_in_history(tx);
        // Two places for each one added: the dead leave faster than the list grows.
        for _ in 0..2 {
            if self.sweep >= self.settlements.len() {
                self.sweep = 0;
            }
            match self.settlements.get(self.sweep) {
                Some(s) if s.strong_count() == 0 => {
                    self.settlements.swap_remove(self.sweep);
                }
                Some(_) => self.sweep += 1,
                None => break,
            }
        }
        self.settlements.push(Rc::downgrade(settlement));
    }

    /// `engine` is about to go: every settlement still read from its history takes a copy.
    pub fn keep_copies(&mut self, engine: &Engine) {
        for settlement in self.settlements.drain(..).filter_map(|s| s.upgrade()) {
            settlement.keep_copy(engine);
        }
    }
}
