//! A transaction's end, as `TransactionHandle.settled()` waits for it.

use super::pending::Pending;
use ferrosync_core::engine::{Engine, StoredTx};
use ferrosync_core::transaction::{Transaction, TxError, TxId};
use std::cell::{Cell, RefCell};
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
/// reading it), and where it is read.
struct Ended {
    id: TxId,
    error: Option<Box<TxError>>,
    source: Source,
}

/// Where a settlement reads its finished transaction.
enum Source {
    /// Its own copy, as storage holds it.
    Copy(Box<StoredTx>),
    /// The engine's history, the settlement being at `place` in the list of its readers.
    History {
        readers: Weak<RefCell<Vec<Weak<Settlement>>>>,
        place: Cell<usize>,
    },
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

    /// The finished transaction if the settlement holds a copy (not while it reads it from the
    /// engine's history: ask the engine first).
    pub fn transaction(&self) -> Option<Transaction> {
        let finished = self.finished.borrow();
        let Source::Copy(stored) = &finished.as_ref()?.source else {
            return None;
        };
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
        self.finish(Source::Copy(Box::new(stored)), tx);
    }

    /// Records the end of `tx` (read from `source`), and wakes the waiters.
    fn finish(&self, source: Source, tx: &Transaction) {
        *self.finished.borrow_mut() = Some(Ended {
            id: tx.id,
            error: tx.error.clone().map(Box::new),
            source,
        });
        for waiter in self.waiters.borrow_mut().drain(..) {
            waiter.answer(Ok(()));
        }
    }

    /// If it reads its transaction from `engine`'s history, takes a copy instead (to be read
    /// where the engine cannot be: inside a `conflictResolver` or `merge`, or once it is gone)
    /// and leaves the list of the history's readers.
    pub fn keep_copy(&self, engine: &Engine) {
        let mut finished = self.finished.borrow_mut();
        let Some(ended) = finished.as_mut() else {
            return;
        };
        let Source::History { readers, place } = &mut ended.source else {
            return;
        };
        if let Some(list) = readers.upgrade() {
            HistoryReaders::remove(&list, place.get());
        }
        // Out of the list: its drop has nothing to leave.
        *readers = Weak::new();
        let stored = engine
            .stored_transaction(ended.id)
            .or_else(|| engine.transaction(ended.id).map(StoredTx::of));
        if let Some(stored) = stored {
            ended.source = Source::Copy(Box::new(stored));
        }
    }
}

impl Drop for Settlement {
    /// A settlement collected with its handles leaves the list of the history's readers (which
    /// holds it weakly: its memory goes only once the list lets go).
    fn drop(&mut self) {
        if let Some(Ended {
            source: Source::History { readers, place },
            ..
        }) = self.finished.get_mut()
        {
            if let Some(readers) = readers.upgrade() {
                HistoryReaders::remove(&readers, place.get());
            }
        }
    }
}

/// The settlements that read their transaction from the engine's history, so that each takes a
/// copy before the engine goes. Held weakly: each leaves the list when collected.
#[derive(Default)]
pub struct HistoryReaders(Rc<RefCell<Vec<Weak<Settlement>>>>);

impl HistoryReaders {
    /// Settles `settlement` with `tx`, finished in `engine`. While the history keeps `tx` for as
    /// long as the engine runs, the settlement reads it there and joins the list; else it keeps
    /// a copy: the history's bytes, copied out of its packed page when it holds those whole, or
    /// encoded from `tx`.
    pub fn settle(&self, engine: &Engine, settlement: &Rc<Settlement>, tx: &Transaction) {
        if !engine.history_keeps(tx.id) {
            match engine.stored_transaction(tx.id) {
                Some(stored) => settlement.settle_stored(stored, tx),
                None => settlement.settle(tx),
            }
            return;
        }
        let mut list = self.0.borrow_mut();
        let source = Source::History {
            readers: Rc::downgrade(&self.0),
            place: Cell::new(list.len()),
        };
        list.push(Rc::downgrade(settlement));
        drop(list);
        settlement.finish(source, tx);
    }

    /// `engine` is about to go: every settlement still reading its history takes a copy.
    pub fn keep_copies(&self, engine: &Engine) {
        let live: Vec<_> = self.0.borrow().iter().filter_map(Weak::upgrade).collect();
        for settlement in live {
            settlement.keep_copy(engine);
        }
    }

    /// Takes the settlement at `place` out of `list`; the last one moves there.
    fn remove(list: &RefCell<Vec<Weak<Settlement>>>, place: usize) {
        let mut list = list.borrow_mut();
        list.swap_remove(place);
        if let Some(moved) = list.get(place).and_then(Weak::upgrade) {
            if let Some(Ended {
                source: Source::History { place: at, .. },
                ..
            }) = &*moved.finished.borrow()
            {
                at.set(place);
            }
        }
        // Its memory follows the settlements alive, not the most there ever were.
        let len = list.len();
        if list.capacity() > 64 && len < list.capacity() / 4 {
            list.shrink_to(len * 2);
        }
    }
}
