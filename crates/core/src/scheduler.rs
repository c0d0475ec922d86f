//! Ordering between transactions: the ordered strategy's per-object queues and cascading
//! failures, and the parallel strategy's merge function.

use crate::document::Document;
use crate::transaction::{Transaction, TxId};
use crate::DocId;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::rc::Rc;

/// Computes the document to show while pending writes sit on top of a newer synced document:
/// `merge(synced, pending)` where `pending` is the pending writes re-applied to `synced`.
pub type MergeFn = Rc<dyn Fn(&Document, &Document) -> Document>;

/// How concurrent transactions on the same object are handled.
#[derive(Clone, Default)]
pub enum MutationStrategy {
    /// One unfinished transaction per object at a time; later ones queue, and fail with it.
    #[default]
    Ordered,
    /// No locks: transactions run side by side; pending changes are re-applied on top of
    /// incoming sync updates, through `merge` when given.
    Parallel {
        /// The custom merge, if any.
        merge: Option<MergeFn>,
    },
}

impl fmt::Debug for MutationStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MutationStrategy::Ordered => f.write_str("Ordered"),
            MutationStrategy::Parallel { merge } => f
                .debug_struct("Parallel")
                .field("merge", &merge.as_ref().map(|_| "fn"))
                .finish(),
        }
    }
}

impl MutationStrategy {
    /// Whether this is the ordered strategy.
    pub fn is_ordered(&self) -> bool {
        matches!(self, MutationStrategy::Ordered)
    }

    /// The custom merge function, if any.
    pub fn merge(&self) -> Option<&MergeFn> {
        match self {
            MutationStrategy::Parallel { merge } => merge.as_ref(),
            MutationStrategy::Ordered => None,
        }
    }
}

type Object<'a> = (&'a str, &'a DocId);

/// For each unfinished transaction (in creation order), the earlier unfinished transactions it
/// must wait for under the ordered strategy: the latest earlier one on each of its objects.
pub fn queue_positions<'a>(
    txs: impl Iterator<Item = &'a Transaction>,
) -> HashMap<TxId, Vec<TxId>> {
    let mut last_on: HashMap<Object<'a>, TxId> = HashMap::new();
    let mut positions = HashMap::new();
    for tx in txs.filter(|tx| !tx.state.is_terminal()) {
        let mut behind: Vec<TxId> = tx.objects().filter_map(|o| last_on.get(&o).copied()).collect();
        behind.sort_unstable();
        behind.dedup();
        for object in tx.objects() {
            last_on.insert(object, tx.id);
        }
        positions.insert(tx.id, behind);
    }
    positions
}

/// The unfinished transactions after `failed` that share an object with it, directly or through
/// another such transaction: under the ordered strategy they fail with it.
pub fn dependents<'a>(failed: &'a Transaction, later: impl Iterator<Item = &'a Transaction>) -> Vec<TxId> {
    let mut tainted: HashSet<Object<'a>> = failed.objects().collect();
    let mut out = Vec::new();
    for tx in later.filter(|tx| tx.id > failed.id && !tx.state.is_terminal()) {
        if tx.objects().any(|o| tainted.contains(&o)) {
            tainted.extend(tx.objects());
            out.push(tx.id);
        }
    }
    out
}
