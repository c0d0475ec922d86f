//! A transaction's end, as `TransactionHandle.settled()` waits for it.

use super::pending::Pending;
use ferrosync_core::engine::StoredTx;
use ferrosync_core::transaction::Transaction;
use std::cell::RefCell;

/// A transaction's end, for `TransactionHandle.settled()`. It is kept as storage keeps it (a
/// few times smaller than the transaction) and decoded when read: a handle lives until the
/// page collects it, and a burst of writes leaves many.
#[derive(Default)]
pub struct Settlement {
    finished: RefCell<Option<StoredTx>>,
    waiters: RefCell<Vec<Pending<()>>>,
}

impl Settlement {
    /// Waits for the end: the transaction, completed or failed (with its `error`); `None` if
    /// the engine was destroyed first.
    pub async fn wait(&self) -> Option<Transaction> {
        if self.finished.borrow().is_none() {
            let (pending, answer) = Pending::new();
            self.waiters.borrow_mut().push(pending);
            answer.await.ok()?.ok()?;
        }
        self.finished()
    }

    /// The engine is gone: waiters are told there will be no end.
    pub fn abandon(&self) {
        self.waiters.borrow_mut().clear();
    }

    /// The finished transaction, if it has finished.
    pub fn finished(&self) -> Option<Transaction> {
        let finished = self.finished.borrow();
        let stored = finished.as_ref()?;
        Some(
            stored
                .decode()
                .expect("a transaction reads back as it was encoded"),
        )
    }

    /// Records the end and wakes the waiters.
    pub fn settle(&self, tx: &Transaction) {
        self.settle_stored(StoredTx::of(tx));
    }

    /// Records the end, as storage holds it, and wakes the waiters.
    pub fn settle_stored(&self, stored: StoredTx) {
        *self.finished.borrow_mut() = Some(stored);
        for waiter in self.waiters.borrow_mut().drain(..) {
            waiter.answer(Ok(()));
        }
    }
}
