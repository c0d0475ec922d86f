//! A transaction's end, as `TransactionHandle.settled()` waits for it.

use super::pending::Pending;
use ferrosync_core::engine::StoredTx;
use ferrosync_core::transaction::{Transaction, TxError};
use std::cell::RefCell;

/// A transaction's end, for `TransactionHandle.settled()`. It is kept as storage keeps it (a
/// few times smaller than the transaction) and decoded when read: a handle lives until the
/// page collects it, and a burst of writes leaves many.
#[derive(Default)]
pub struct Settlement {
    finished: RefCell<Option<Ended>>,
    waiters: RefCell<Vec<Pending<()>>>,
}

/// A finished transaction as storage holds it, and its error if it failed (so whether it
/// failed is known without decoding it).
#[derive(Clone)]
pub struct Ended {
    /// The transaction's stored form.
    pub stored: StoredTx,
    /// Its error, if it failed.
    pub error: Option<TxError>,
}

impl Ended {
    /// The transaction.
    pub fn decode(&self) -> Transaction {
        // Its error shown with `Display`: `expect` would compile `CoreError`'s `Debug` in.
        self.stored
            .decode()
            .unwrap_or_else(|e| panic!("a transaction reads back as it was encoded: {e}"))
    }
}

impl Settlement {
    /// Waits for the end; `None` if the engine was destroyed first.
    pub async fn wait(&self) -> Option<Ended> {
        if self.finished.borrow().is_none() {
            let (pending, answer) = Pending::new();
            self.waiters.borrow_mut().push(pending);
            answer.await.ok()?.ok()?;
        }
        self.ended()
    }

    /// The engine is gone: waiters are told there will be no end.
    pub fn abandon(&self) {
        self.waiters.borrow_mut().clear();
    }

    /// The end, if it came.
    pub fn ended(&self) -> Option<Ended> {
        self.finished.borrow().clone()
    }

    /// Records the end and wakes the waiters.
    pub fn settle(&self, tx: &Transaction) {
        self.settle_stored(StoredTx::of(tx), tx);
    }

    /// Records the end of `tx` as storage holds it (`stored`), and wakes the waiters.
    pub fn settle_stored(&self, stored: StoredTx, tx: &Transaction) {
        let error = tx.error.clone();
        *self.finished.borrow_mut() = Some(Ended { stored, error });
        for waiter in self.waiters.borrow_mut().drain(..) {
            waiter.answer(Ok(()));
        }
    }
}
