//! One pushed transaction decided: applied on top of the push's earlier writes and the stored
//! documents, or rejected as a whole (rule 3: all or nothing).

use super::{MutationCheck, PushRequest, ServerDoc, ServerView};
use crate::document::Document;
use crate::mutation::Op;
use crate::protocol::{
    json_len, ErrorCode, ErrorInfo, MutationResult, Outcome, WireMutation, WireTransaction,
};
use crate::{MutationId, Version};
use std::collections::{BTreeMap, HashMap};
/// A transaction's answer: a result per mutation, and the documents it writes.
pub(super) struct TxAnswer {
    /// One per mutation, in order.
    pub(super) results: Vec<MutationResult>,
    /// What it writes (none when rejected).
    pub(super) writes: Vec<ServerDoc>,
}

/// The whole transaction rejected: `failing` with `error`, the others `aborted`.
pub(super) fn reject_all(tx: &WireTransaction, failing: MutationId, error: ErrorInfo) -> TxAnswer {
    TxAnswer {
        results: tx
            .mutations
            .iter()
            .map(|m| MutationResult {
                id: m.id,
                outcome: if m.id == failing {
                    Outcome::Rejected {
                        error: error.clone(),
                    }
                } else {
                    aborted(failing)
                },
            })
            .collect(),
        writes: Vec::new(),
    }
}

/// Applies one new transaction on top of `docs` (this push's earlier writes) and the view.
/// `Err` is a retryable failure: nothing is recorded and processing stops.
pub(super) fn apply_transaction(
    view: &impl ServerView,
    docs: &BTreeMap<(String, String), ServerDoc>,
    req: PushRequest<'_>,
    tx: &WireTransaction,
    head: Version,
    check: MutationCheck<'_>,
) -> Result<TxAnswer, ErrorInfo> {
    if tx.abandon {
        let error = ErrorInfo::new(
            ErrorCode::Abandoned,
            "the client gave up on this transaction",
            false,
        );
        return Ok(reject_all(tx, tx.mutations[0].id, error));
    }
    for m in &tx.mutations {
        if let Err(error) = check(m) {
            if error.retryable {
                return Err(error);
            }
            return Ok(reject_all(tx, m.id, error));
        }
    }
    let mut local: HashMap<(&str, &str), ServerDoc> = HashMap::new();
    let current = |local: &HashMap<(&str, &str), ServerDoc>, m: &WireMutation| {
        local
            .get(&(m.collection.as_str(), m.doc_id.as_str()))
            .cloned()
            .or_else(|| docs.get(&(m.collection.clone(), m.doc_id.clone())).cloned())
            .or_else(|| view.document(&m.collection, &m.doc_id))
    };
    let conflicts: Vec<(MutationId, Document)> = tx
        .mutations
        .iter()
        .filter_map(|m| {
            let doc = current(&local, m)?;
            (doc.doc.version() > m.base_version && doc.writer != req.client_id)
                .then_some((m.id, doc.doc))
        })
        .collect();
    if !conflicts.is_empty() {
        let results = tx
            .mutations
            .iter()
            .map(|m| MutationResult {
                id: m.id,
                outcome: match conflicts.iter().find(|(id, _)| *id == m.id) {
                    Some((_, doc)) => Outcome::Conflict { doc: doc.clone() },
                    None => aborted(conflicts[0].0),
                },
            })
            .collect();
        return Ok(TxAnswer {
            results,
            writes: Vec::new(),
        });
    }
    let mut version = head;
    let mut results = Vec::new();
    for m in &tx.mutations {
        let existing = current(&local, m);
        let hlc = m.hlc.clamped(req.now);
        match m
            .op
            .apply(&m.doc_id, existing.as_ref().map(|d| &d.doc), hlc)
        {
            Err(e) => {
                let error = ErrorInfo::new(
                    e.code(),
                    describe(&m.op, e, &m.collection, &m.doc_id),
                    false,
                );
                return Ok(reject_all(tx, m.id, error));
            }
            Ok(doc) if json_len(&doc.fields(), req.bounds.max_doc_bytes).is_none() => {
                let error = ErrorInfo::new(
                    ErrorCode::TooLarge,
                    format!(
                        "{}/{} would be larger than the limit of {} bytes",
                        m.collection, m.doc_id, req.bounds.max_doc_bytes
                    ),
                    false,
                );
                return Ok(reject_all(tx, m.id, error));
            }
            Ok(mut doc) => {
                version += 1;
                doc.set_version(version);
                results.push(MutationResult {
                    id: m.id,
                    outcome: Outcome::Applied { doc: doc.clone() },
                });
                let write = ServerDoc {
                    collection: m.collection.clone(),
                    doc,
                    writer: req.client_id.to_owned(),
                };
                local.insert((m.collection.as_str(), m.doc_id.as_str()), write);
            }
        }
    }
    Ok(TxAnswer {
        results,
        writes: local.into_values().collect(),
    })
}

fn describe(op: &Op, error: crate::mutation::OpError, collection: &str, id: &str) -> String {
    let verb = match op {
        Op::Insert { .. } => "insert",
        Op::Update { .. } => "update",
        Op::Delete => "delete",
        Op::Put { .. } => "replace",
    };
    let why = match error {
        crate::mutation::OpError::NotFound => "it does not exist",
        crate::mutation::OpError::AlreadyExists => "it already exists",
        crate::mutation::OpError::Deleted => "it was deleted",
    };
    format!("cannot {verb} {collection}/{id}: {why}")
}

fn aborted(cause: MutationId) -> Outcome {
    rejected(
        ErrorCode::Aborted,
        &format!("not applied: mutation {cause} of the same transaction was not applied"),
        false,
    )
}

pub(super) fn rejected(code: ErrorCode, message: &str, retryable: bool) -> Outcome {
    Outcome::Rejected {
        error: ErrorInfo::new(code, message, retryable),
    }
}
