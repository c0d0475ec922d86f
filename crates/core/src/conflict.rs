//! Conflict strategies: what a client does when the server reports that a document changed
//! since the version its write was based on.

use crate::document::{Document, Fields};
use crate::mutation::{Mutation, Op};
use crate::DocId;
use std::fmt;
use std::rc::Rc;

/// What a custom resolver is given.
#[derive(Debug, Clone, Copy)]
pub struct ConflictInput<'a> {
    /// The collection.
    pub collection: &'a str,
    /// The document.
    pub doc_id: &'a DocId,
    /// The document as this client wanted it (`None`: the write could not apply to the server's
    /// document).
    pub local: Option<&'a Document>,
    /// The server's current document.
    pub remote: &'a Document,
    /// The synced document the local write started from, if any.
    pub base: Option<&'a Document>,
}

/// A custom resolver: the merged fields, or `None` to park the conflict in the inbox.
pub type ResolverFn = Rc<dyn Fn(&ConflictInput<'_>) -> Option<Fields>>;

/// How conflicts are resolved (`conflictStrategy`).
#[derive(Clone, Default)]
pub enum ConflictStrategy {
    /// The write with the later hybrid logical timestamp wins.
    #[default]
    LastWriteWins,
    /// The server's document is kept; the local write is dropped.
    ServerWins,
    /// The local write is re-applied on top of the server's document.
    ClientWins,
    /// The application decides; `None` parks the conflict for `resolveConflict`.
    Custom(ResolverFn),
}

impl fmt::Debug for ConflictStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConflictStrategy::LastWriteWins => "LastWriteWins",
            ConflictStrategy::ServerWins => "ServerWins",
            ConflictStrategy::ClientWins => "ClientWins",
            ConflictStrategy::Custom(_) => "Custom",
        })
    }
}

/// The outcome for one conflicting mutation.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Keep the server's document; drop the mutation.
    KeepServer,
    /// Send this op again, based on the server's version.
    Resend(Op),
    /// Wait in the conflict inbox.
    Park,
}

impl ConflictStrategy {
    /// Resolves a conflicting mutation. `local` is the document the mutation wanted, `base` the
    /// synced document it was applied to.
    pub fn resolve(
        &self,
        mutation: &Mutation,
        local: Option<&Document>,
        remote: &Document,
        base: Option<&Document>,
    ) -> Resolution {
        match self {
            ConflictStrategy::ServerWins => Resolution::KeepServer,
            ConflictStrategy::ClientWins => Resolution::Resend(mutation.op.rebased()),
            ConflictStrategy::LastWriteWins if mutation.hlc > remote.hlc() => {
                Resolution::Resend(mutation.op.rebased())
            }
            ConflictStrategy::LastWriteWins => Resolution::KeepServer,
            ConflictStrategy::Custom(resolver) => {
                let input = ConflictInput {
                    collection: &mutation.collection,
                    doc_id: &mutation.doc_id,
                    local,
                    remote,
                    base,
                };
                match resolver(&input) {
                    Some(fields) => Resolution::Resend(Op::Put { fields }),
                    None => Resolution::Park,
                }
            }
        }
    }
}
