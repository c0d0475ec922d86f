//! Ordering between transactions: the two mutation strategies, and which transactions fail
//! with a failed one under the ordered strategy.

use crate::document::Document;
use crate::transaction::{Transaction, TxId};
use crate::DocId;
use std::collections::HashSet;
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

/// The unfinished transactions after `failed` that share an object with it, directly or through
/// another such transaction: under the ordered strategy they fail with it.
pub fn dependents<'a>(
    failed: &'a Transaction,
    later: impl Iterator<Item = &'a Transaction>,
) -> Vec<TxId> {
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
