//! The sync server's rules as pure functions: idempotent, ordered, all-or-nothing application
//! of pushed transactions, conflict detection, version assignment and pull paging. The server
//! crate adds only storage and network around [`apply_push`] and [`page`].

use crate::document::Document;
use crate::protocol::ErrorCode;
use crate::protocol::{
    json_len, Change, CursorRange, ErrorInfo, MutationResult, Outcome, WireMutation,
    WireTransaction, MAX_WIRE_INT,
};
use crate::{ClientId, Millis, MutationId, Version};
use std::collections::BTreeMap;

mod memory;
mod transaction;

pub use memory::MemoryServer;
use transaction::{apply_transaction, reject_all, rejected};

/// How many mutation ids behind a client's newest a replay is still answered with its outcome;
/// an older one is answered `unknown_outcome`. More than an engine ever has unanswered.
pub const OUTCOMES_KEPT: MutationId = 100_000;

/// A stored document with the client that last wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerDoc {
    /// Its collection.
    pub collection: String,
    /// Its state and version.
    pub doc: Document,
    /// The client whose mutation produced this version.
    pub writer: ClientId,
}

/// What the server remembers about a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The user the client id is bound to (the first one to use it).
    pub user: String,
    /// The last mutation id processed for it.
    pub last_mutation_id: MutationId,
}

/// Read access to stored state, inside the storage transaction that will commit the result.
pub trait ServerView {
    /// The client's record, if it has pushed before.
    fn client(&self, client: &str) -> Option<ClientRecord>;
    /// A stored document.
    fn document(&self, collection: &str, id: &str) -> Option<ServerDoc>;
    /// The remembered outcome of an already processed mutation.
    fn outcome(&self, client: &str, id: MutationId) -> Option<Outcome>;
}

/// A push to apply.
#[derive(Debug, Clone, Copy)]
pub struct PushRequest<'a> {
    /// The pushing client.
    pub client_id: &'a str,
    /// The authenticated user.
    pub user: &'a str,
    /// The server's clock (clamps timestamps from the future).
    pub now: Millis,
    /// The newest version committed so far.
    pub head: Version,
    /// The transactions, in mutation-id order.
    pub transactions: &'a [WireTransaction],
    /// Bounds on the documents it writes and on its answer.
    pub bounds: PushBounds,
}

/// Bounds on what one push may cost: the size of each document it writes, and of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushBounds {
    /// Largest document a mutation may leave behind, in bytes of JSON (its fields).
    pub max_doc_bytes: usize,
    /// Most bytes of results any answer may carry: a transaction whose results alone would
    /// pass it is rejected with `too_large`, since no push could carry its answer.
    pub answer_bytes: usize,
    /// Bytes of results this answer may still carry: a transaction that does not fit is not
    /// processed (`busy`, retryable: the client sends it again in a later push).
    pub answer_room: usize,
}

impl PushBounds {
    /// No bounds.
    pub const NONE: Self = Self {
        max_doc_bytes: usize::MAX,
        answer_bytes: usize::MAX,
        answer_room: usize::MAX,
    };
}

/// What to commit, atomically, and what to answer.
#[derive(Debug, Clone, PartialEq)]
pub struct PushCommit {
    /// The answer, per processed mutation.
    pub results: Vec<MutationResult>,
    /// Documents to store (each document's last state), with their new versions.
    pub writes: Vec<ServerDoc>,
    /// New outcomes to remember for idempotent replays: those of the mutations not applied.
    /// An applied one needs no record: its id at or below `last_mutation_id` and no recorded
    /// outcome say it was applied, and its replay is answered with the document as stored.
    pub outcomes: Vec<MutationResult>,
    /// The client's record after the push.
    pub client: ClientRecord,
    /// The newest version after the push.
    pub head: Version,
    /// The versions committed, if any.
    pub range: Option<CursorRange>,
}

/// Checks a mutation before it applies (size limits, authorisation); a retryable error stops
/// the push there, a non-retryable one rejects its transaction.
pub type MutationCheck<'a> = &'a dyn Fn(&WireMutation) -> Result<(), ErrorInfo>;

/// Applies a push: replays are answered from remembered outcomes without applying again (an
/// applied mutation's with the document as stored now, at its version or a later one); new
/// transactions must continue the client's id sequence; each applies all-or-nothing.
pub fn apply_push(
    view: &impl ServerView,
    req: PushRequest<'_>,
    check: MutationCheck<'_>,
) -> Result<PushCommit, ErrorInfo> {
    let mut client = match view.client(req.client_id) {
        Some(record) if record.user != req.user => {
            return Err(ErrorInfo::new(
                ErrorCode::Forbidden,
                "this client id belongs to another user",
                false,
            ));
        }
        Some(record) => record,
        None => ClientRecord {
            user: req.user.to_owned(),
            last_mutation_id: 0,
        },
    };
    let mut docs: BTreeMap<(String, String), ServerDoc> = BTreeMap::new();
    let mut head = req.head;
    let mut results = Vec::new();
    let mut outcomes = Vec::new();
    let mut answer_bytes = 0;
    for tx in req.transactions {
        let (first, last) = id_span(tx)?;
        if last <= client.last_mutation_id {
            let replayed: Vec<MutationResult> = tx
                .mutations
                .iter()
                .map(|m| {
                    let outcome = outcomes
                        .iter()
                        .find(|r: &&MutationResult| r.id == m.id)
                        .map(|r| r.outcome.clone())
                        .or_else(|| view.outcome(req.client_id, m.id))
                        .or_else(|| applied_before(view, &docs, &client, m))
                        .unwrap_or_else(|| {
                            rejected(
                                ErrorCode::UnknownOutcome,
                                "this mutation's outcome is no longer kept",
                                false,
                            )
                        });
                    MutationResult { id: m.id, outcome }
                })
                .collect();
            match json_len(&replayed, req.bounds.answer_room - answer_bytes) {
                Some(len) => answer_bytes += len,
                None => {
                    results.extend(not_processed(tx, busy()));
                    break;
                }
            }
            results.extend(replayed);
            continue;
        }
        if first != client.last_mutation_id + 1 {
            return Err(ErrorInfo::new(
                ErrorCode::MutationGap,
                format!(
                    "expected mutation {} next, got {first}",
                    client.last_mutation_id + 1
                ),
                false,
            ));
        }
        let mut answer = match apply_transaction(view, &docs, req, tx, head, check) {
            Err(stop) => {
                results.extend(not_processed(tx, stop));
                break;
            }
            Ok(answer) => answer,
        };
        match json_len(&answer.results, req.bounds.answer_bytes) {
            None => {
                let error = ErrorInfo::new(
                    ErrorCode::TooLarge,
                    format!(
                        "the answer to this transaction would be larger than the limit of {} bytes",
                        req.bounds.answer_bytes
                    ),
                    false,
                );
                answer = reject_all(tx, tx.mutations[0].id, error);
            }
            Some(len) if len > req.bounds.answer_room - answer_bytes => {
                results.extend(not_processed(tx, busy()));
                break;
            }
            Some(len) => answer_bytes += len,
        }
        for write in answer.writes {
            head = head.max(write.doc.version());
            docs.insert((write.collection.clone(), write.doc.id().to_owned()), write);
        }
        client.last_mutation_id = last;
        outcomes.extend(answer.results.iter().cloned());
        results.extend(answer.results);
    }
    let range = (head > req.head).then_some(CursorRange {
        since: req.head,
        cursor: head,
    });
    outcomes.retain(|r| !matches!(r.outcome, Outcome::Applied { .. }));
    Ok(PushCommit {
        results,
        writes: docs.into_values().collect(),
        outcomes,
        client,
        head,
        range,
    })
}

/// The answer to a replay of `m`, processed before and with no recorded outcome: applied, with
/// its document as this push left it or as stored (`None` past [`OUTCOMES_KEPT`]).
fn applied_before(
    view: &impl ServerView,
    docs: &BTreeMap<(String, String), ServerDoc>,
    client: &ClientRecord,
    m: &WireMutation,
) -> Option<Outcome> {
    if m.id < client.last_mutation_id.saturating_sub(OUTCOMES_KEPT) {
        return None;
    }
    let doc = docs
        .get(&(m.collection.clone(), m.doc_id.clone()))
        .cloned()
        .or_else(|| view.document(&m.collection, &m.doc_id))?;
    Some(Outcome::Applied { doc: doc.doc })
}

/// The first and last mutation ids of a transaction: contiguous, from 1 to [`MAX_WIRE_INT`].
fn id_span(tx: &WireTransaction) -> Result<(MutationId, MutationId), ErrorInfo> {
    let bad = |msg: &str| ErrorInfo::new(ErrorCode::BadRequest, msg, false);
    let first = tx
        .mutations
        .first()
        .ok_or_else(|| bad("empty transaction"))?
        .id;
    let mut expected = first;
    for m in &tx.mutations {
        if m.id == 0 || m.id > MAX_WIRE_INT {
            return Err(bad("a mutation id is between 1 and 2^63 - 1"));
        }
        if m.id != expected {
            return Err(bad("mutation ids in a transaction must be contiguous"));
        }
        expected = m.id + 1;
    }
    Ok((first, expected - 1))
}

/// Every mutation of `tx` answered with `error`, nothing recorded (rule 5 when retryable).
fn not_processed(
    tx: &WireTransaction,
    error: ErrorInfo,
) -> impl Iterator<Item = MutationResult> + '_ {
    tx.mutations.iter().map(move |m| MutationResult {
        id: m.id,
        outcome: Outcome::Rejected {
            error: error.clone(),
        },
    })
}

fn busy() -> ErrorInfo {
    ErrorInfo::new(
        ErrorCode::Busy,
        "this push's answer reached the server's size limit; send the rest again",
        true,
    )
}

/// A pull page from the changes after `cursor`, fetched in version order with `limit + 1`
/// rows so that `has_more` is known without a second query.
pub fn page(mut rows: Vec<Change>, cursor: Version, limit: usize) -> (Vec<Change>, Version, bool) {
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    let next = rows.last().map_or(cursor, |c| c.doc.version());
    (rows, next, has_more)
}
