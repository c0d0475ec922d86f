//! The part of a write transaction that does not depend on the database: which rows a batch of
//! requests reads, how the core's rules decide each request against them (in order, each seeing
//! the ones before it), and which rows the batch then writes. Backends only move rows.

use super::{Committed, Hello, Push, SyncLog};
use ferrosync_core::protocol::ErrorCode;
use ferrosync_core::protocol::{Change, CursorRange, ErrorInfo, Outcome, MAX_WIRE_INT};
use ferrosync_core::server::{
    apply_push, ClientRecord, PushCommit, PushRequest, ServerDoc, ServerView, OUTCOMES_KEPT,
};
use ferrosync_core::{Millis, MutationId, Version};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A client's old outcomes are deleted each time its last mutation id passes a multiple of this
/// (so at most this many more than [`OUTCOMES_KEPT`] are kept).
const PRUNE_OUTCOMES_EVERY: u64 = 1_000;

/// A client within its tenant: `(tenant, client_id)`.
pub(super) type ClientKey = (String, String);
/// A document within its tenant: `(tenant, collection, id)`.
pub(super) type DocKey = (String, String, String);
/// A recorded outcome: `(tenant, client_id, mutation id)`.
pub(super) type OutcomeKey = (String, String, MutationId);

/// One request to the writer.
pub(super) enum Request {
    /// `hello`: bind the client id to the user, remember its collections.
    Hello {
        tenant: String,
        user: String,
        client_id: String,
        collections: Vec<String>,
    },
    /// `push`.
    Push {
        tenant: String,
        user: String,
        client_id: String,
        push: Push,
    },
    /// A sync-log row (of a pull, or of a push whose transaction failed).
    Log { tenant: String, entry: SyncLog },
}

impl Request {
    /// The tenant it concerns.
    pub(super) fn tenant(&self) -> &str {
        match self {
            Request::Hello { tenant, .. }
            | Request::Push { tenant, .. }
            | Request::Log { tenant, .. } => tenant,
        }
    }

    /// Roughly how much work it is: a push's mutations, 1 otherwise.
    pub(super) fn weight(&self) -> usize {
        match self {
            Request::Push { push, .. } => push.transactions.iter().map(|t| t.mutations.len()).sum(),
            _ => 1,
        }
    }

    /// Whether it adds a row to the sync log.
    pub(super) fn logs(&self) -> bool {
        !matches!(self, Request::Hello { .. })
    }
}

/// A tenant's sync log to prune: rows completed before `before`, and all but the newest `keep`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LogPrune {
    /// The tenant.
    pub tenant: String,
    /// Rows completed before this (milliseconds since the epoch) go.
    pub before: Millis,
    /// Rows kept at most.
    pub keep: u64,
}

/// Requests committed in one database transaction.
pub(super) struct Batch {
    /// In the order they are decided.
    pub requests: Vec<Request>,
    /// Sync logs to prune in the same transaction.
    pub prune_logs: Vec<LogPrune>,
}

/// The mutation ids of a client whose recorded outcomes a push may replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OutcomeSpan {
    /// The tenant.
    pub tenant: String,
    /// The client.
    pub client_id: String,
    /// The lowest mutation id of the push.
    pub first: MutationId,
    /// The highest.
    pub last: MutationId,
}

/// What a batch reads before it is decided, each list sorted and without repeats.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Reads {
    /// Tenants whose head rows are read (and locked where several nodes write).
    pub tenants: Vec<String>,
    /// Client rows.
    pub clients: Vec<ClientKey>,
    /// Documents.
    pub documents: Vec<DocKey>,
    /// Recorded outcomes.
    pub outcomes: Vec<OutcomeSpan>,
}

impl Batch {
    /// Everything the requests may read: the head rows come first, since on PostgreSQL locking
    /// them is what serializes writers of a tenant across nodes.
    pub(super) fn reads(&self) -> Reads {
        let mut tenants = BTreeSet::new();
        let mut clients = BTreeSet::new();
        let mut documents = BTreeSet::new();
        let mut outcomes = Vec::new();
        for request in &self.requests {
            match request {
                Request::Hello {
                    tenant, client_id, ..
                } => {
                    tenants.insert(tenant.clone());
                    clients.insert((tenant.clone(), client_id.clone()));
                }
                Request::Push {
                    tenant,
                    client_id,
                    push,
                    ..
                } => {
                    tenants.insert(tenant.clone());
                    clients.insert((tenant.clone(), client_id.clone()));
                    let mutations = push.transactions.iter().flat_map(|t| &t.mutations);
                    for m in mutations.clone() {
                        documents.insert((tenant.clone(), m.collection.clone(), m.doc_id.clone()));
                    }
                    // Ids past the protocol's range are refused by the rules; none is stored.
                    let ids = mutations.map(|m| m.id.min(MAX_WIRE_INT));
                    if let (Some(first), Some(last)) = (ids.clone().min(), ids.max()) {
                        outcomes.push(OutcomeSpan {
                            tenant: tenant.clone(),
                            client_id: client_id.clone(),
                            first,
                            last,
                        });
                    }
                }
                Request::Log { .. } => {}
            }
        }
        Reads {
            tenants: tenants.into_iter().collect(),
            clients: clients.into_iter().collect(),
            documents: documents.into_iter().collect(),
            outcomes,
        }
    }
}

/// A client's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ClientRow {
    /// The user the id is bound to.
    pub user: String,
    /// The last mutation id processed.
    pub last_mutation_id: MutationId,
    /// The collections it syncs, as JSON.
    pub collections: String,
}

/// The rows a batch read, inside its transaction; decisions update it as they go, so each
/// request sees the ones decided before it.
#[derive(Debug, Default)]
pub(super) struct Snapshot {
    /// Newest version per tenant (absent: 0).
    pub heads: HashMap<String, Version>,
    /// Client rows.
    pub clients: HashMap<ClientKey, ClientRow>,
    /// Stored documents.
    pub documents: HashMap<DocKey, ServerDoc>,
    /// Recorded outcomes.
    pub outcomes: HashMap<OutcomeKey, Outcome>,
}

/// One tenant's view of the snapshot, for the core's rules.
struct View<'a> {
    snapshot: &'a Snapshot,
    tenant: &'a str,
}

impl ServerView for View<'_> {
    fn client(&self, client: &str) -> Option<ClientRecord> {
        let row = self
            .snapshot
            .clients
            .get(&(self.tenant.to_owned(), client.to_owned()))?;
        Some(ClientRecord {
            user: row.user.clone(),
            last_mutation_id: row.last_mutation_id,
        })
    }

    fn document(&self, collection: &str, id: &str) -> Option<ServerDoc> {
        let key = (self.tenant.to_owned(), collection.to_owned(), id.to_owned());
        self.snapshot.documents.get(&key).cloned()
    }

    fn outcome(&self, client: &str, id: MutationId) -> Option<Outcome> {
        let key = (self.tenant.to_owned(), client.to_owned(), id);
        self.snapshot.outcomes.get(&key).cloned()
    }
}

/// The answer to one request.
#[derive(Debug)]
pub(super) enum Answer {
    /// To a hello.
    Hello(Result<Hello, ErrorInfo>),
    /// To a push.
    Push(Result<PushCommit, ErrorInfo>),
    /// A log row was written.
    Logged,
}

/// A recorded outcome to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OutcomeRow {
    /// The tenant.
    pub tenant: String,
    /// The client.
    pub client_id: String,
    /// The mutation.
    pub id: MutationId,
    /// Its outcome, as JSON.
    pub outcome: String,
}

/// Everything a batch writes.
#[derive(Debug, Default)]
pub(super) struct Writes {
    /// Documents not stored before, in their new state, with their tenant.
    pub new_documents: Vec<(String, ServerDoc)>,
    /// Stored documents in their new state, with their tenant.
    pub changed_documents: Vec<(String, ServerDoc)>,
    /// New recorded outcomes.
    pub outcomes: Vec<OutcomeRow>,
    /// Client rows, new or changed.
    pub clients: Vec<(ClientKey, ClientRow)>,
    /// New heads of the tenants that committed changes.
    pub heads: Vec<(String, Version)>,
    /// Clients whose outcomes below this mutation id are deleted.
    pub prune_outcomes: Vec<(ClientKey, MutationId)>,
    /// Sync-log rows, with their tenant.
    pub logs: Vec<(String, SyncLog)>,
    /// Sync logs to prune.
    pub prune_logs: Vec<LogPrune>,
}

/// A decided batch: an answer per request, the rows to write, and per tenant what it commits.
#[derive(Debug)]
pub(super) struct Decided {
    /// In request order.
    pub answers: Vec<Answer>,
    /// To write before committing.
    pub writes: Writes,
    /// For the feed, once committed.
    pub committed: Vec<Committed>,
}

/// What one tenant's pushes of the batch changed so far.
struct Changed {
    since: Version,
    cursor: Version,
    docs: BTreeMap<(String, String), ferrosync_core::document::Document>,
    origins: Vec<u64>,
}

/// Decides every request of `batch` against `snapshot`, in order: the core's `apply_push` for
/// pushes (so the sync rules live in one place), the client binding for hellos.
pub(super) fn decide(batch: &Batch, mut snapshot: Snapshot) -> Result<Decided, serde_json::Error> {
    let mut answers = Vec::with_capacity(batch.requests.len());
    let mut writes = Writes {
        prune_logs: batch.prune_logs.clone(),
        ..Writes::default()
    };
    // The batch runs under its tenants' head locks, so what was read is all that is stored.
    let stored: BTreeSet<DocKey> = snapshot.documents.keys().cloned().collect();
    let mut documents = BTreeSet::new();
    let mut clients = BTreeSet::new();
    let mut changed: BTreeMap<String, Changed> = BTreeMap::new();
    for request in &batch.requests {
        let answer = match request {
            Request::Hello {
                tenant,
                user,
                client_id,
                collections,
            } => {
                let key = (tenant.clone(), client_id.clone());
                match snapshot.clients.get(&key) {
                    Some(row) if row.user != *user => Answer::Hello(Err(forbidden())),
                    row => {
                        let last_mutation_id = row.map_or(0, |r| r.last_mutation_id);
                        let row = ClientRow {
                            user: user.clone(),
                            last_mutation_id,
                            collections: serde_json::to_string(collections)?,
                        };
                        snapshot.clients.insert(key.clone(), row);
                        clients.insert(key);
                        let head = snapshot.heads.get(tenant).copied().unwrap_or(0);
                        Answer::Hello(Ok(Hello {
                            last_mutation_id,
                            head,
                        }))
                    }
                }
            }
            Request::Push {
                tenant,
                user,
                client_id,
                push,
            } => {
                let view = View {
                    snapshot: &snapshot,
                    tenant,
                };
                let request = PushRequest {
                    client_id,
                    user,
                    now: push.now,
                    head: snapshot.heads.get(tenant).copied().unwrap_or(0),
                    transactions: &push.transactions,
                    bounds: push.bounds,
                };
                let decided = apply_push(&view, request, &*push.check);
                if let Ok(commit) = &decided {
                    let key = (tenant.clone(), client_id.clone());
                    for write in &commit.writes {
                        let doc_key = (
                            tenant.clone(),
                            write.collection.clone(),
                            write.doc.id().to_owned(),
                        );
                        snapshot.documents.insert(doc_key.clone(), write.clone());
                        documents.insert(doc_key);
                    }
                    for result in &commit.outcomes {
                        let outcome_key = (tenant.clone(), client_id.clone(), result.id);
                        snapshot
                            .outcomes
                            .insert(outcome_key, result.outcome.clone());
                        writes.outcomes.push(OutcomeRow {
                            tenant: tenant.clone(),
                            client_id: client_id.clone(),
                            id: result.id,
                            outcome: serde_json::to_string(&result.outcome)?,
                        });
                    }
                    let last = commit.client.last_mutation_id;
                    let previous = snapshot.clients.get(&key).cloned();
                    if previous
                        .as_ref()
                        .is_none_or(|row| row.last_mutation_id != last)
                    {
                        let before = previous.as_ref().map_or(0, |row| row.last_mutation_id);
                        if before / PRUNE_OUTCOMES_EVERY != last / PRUNE_OUTCOMES_EVERY
                            && last > OUTCOMES_KEPT
                        {
                            writes
                                .prune_outcomes
                                .push((key.clone(), last - OUTCOMES_KEPT));
                        }
                        let row = ClientRow {
                            user: user.clone(),
                            last_mutation_id: last,
                            collections: previous
                                .map_or_else(|| "[]".into(), |row| row.collections),
                        };
                        snapshot.clients.insert(key.clone(), row);
                        clients.insert(key);
                    }
                    if let Some(range) = commit.range {
                        snapshot.heads.insert(tenant.clone(), commit.head);
                        let entry = changed.entry(tenant.clone()).or_insert(Changed {
                            since: range.since,
                            cursor: range.cursor,
                            docs: BTreeMap::new(),
                            origins: Vec::new(),
                        });
                        entry.cursor = range.cursor;
                        for write in &commit.writes {
                            let doc_key = (write.collection.clone(), write.doc.id().to_owned());
                            entry.docs.insert(doc_key, write.doc.clone());
                        }
                        if !entry.origins.contains(&push.origin) {
                            entry.origins.push(push.origin);
                        }
                    }
                }
                writes
                    .logs
                    .push((tenant.clone(), push_log(push.log.clone(), &decided)));
                Answer::Push(decided)
            }
            Request::Log { tenant, entry } => {
                writes.logs.push((tenant.clone(), entry.clone()));
                Answer::Logged
            }
        };
        answers.push(answer);
    }
    for key in documents {
        if let Some(doc) = snapshot.documents.remove(&key) {
            let list = if stored.contains(&key) {
                &mut writes.changed_documents
            } else {
                &mut writes.new_documents
            };
            list.push((key.0, doc));
        }
    }
    writes.clients = clients
        .into_iter()
        .filter_map(|key| {
            let row = snapshot.clients.remove(&key)?;
            Some((key, row))
        })
        .collect();
    let committed = changed
        .into_iter()
        .map(|(tenant, changed)| {
            let mut changes: Vec<Change> = changed
                .docs
                .into_iter()
                .map(|((collection, _), doc)| Change { collection, doc })
                .collect();
            changes.sort_by_key(|c| c.doc.version());
            writes.heads.push((tenant.clone(), changed.cursor));
            Committed {
                tenant,
                range: CursorRange {
                    since: changed.since,
                    cursor: changed.cursor,
                },
                changes,
                origins: changed.origins,
            }
        })
        .collect();
    Ok(Decided {
        answers,
        writes,
        committed,
    })
}

fn forbidden() -> ErrorInfo {
    ErrorInfo::new(
        ErrorCode::Forbidden,
        "this client id belongs to another user",
        false,
    )
}

/// A push's sync-log row, completed with what was decided: per-mutation statuses and counts, or
/// the refusal.
fn push_log(mut log: SyncLog, decided: &Result<PushCommit, ErrorInfo>) -> SyncLog {
    log.completed_at = crate::now_ms();
    match decided {
        Ok(commit) => {
            let statuses = commit
                .results
                .iter()
                .map(|r| {
                    let status = match &r.outcome {
                        Outcome::Applied { .. } => "applied",
                        Outcome::Conflict { .. } => "conflict",
                        Outcome::Rejected { .. } => "rejected",
                    };
                    serde_json::json!({ "id": r.id, "status": status })
                })
                .collect();
            log.synced_count = commit
                .results
                .iter()
                .filter(|r| matches!(r.outcome, Outcome::Applied { .. }))
                .count() as u64;
            log.error_count = commit.results.len() as u64 - log.synced_count;
            log.results = serde_json::Value::Array(statuses);
        }
        Err(e) => {
            log.status = "failed".into();
            log.error = Some(format!("{}: {}", e.code, e.message));
        }
    }
    log
}

/// A push's sync-log row when its transaction failed in storage.
pub(super) fn failed_log(mut log: SyncLog, error: &str) -> SyncLog {
    log.completed_at = crate::now_ms();
    log.status = "failed".into();
    log.error = Some(format!("storage: {error}"));
    log
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrosync_core::document::parse_document;
    use ferrosync_core::hlc::Hlc;
    use ferrosync_core::mutation::Op;
    use ferrosync_core::protocol::{WireMutation, WireTransaction};
    use ferrosync_core::server::PushBounds;
    use std::sync::Arc;

    fn put(id: MutationId, doc: &str) -> WireTransaction {
        let (_, fields) = parse_document(serde_json::json!({ "_id": doc, "n": id })).unwrap();
        WireTransaction {
            mutations: vec![WireMutation {
                id,
                collection: "todos".into(),
                doc_id: doc.into(),
                op: Op::Put { fields },
                hlc: Hlc {
                    wall: 1,
                    counter: 0,
                    node: 1,
                },
                base_version: 0,
            }],
            abandon: false,
        }
    }

    fn push(tenant: &str, client: &str, origin: u64, txs: Vec<WireTransaction>) -> Request {
        Request::Push {
            tenant: tenant.into(),
            user: "u".into(),
            client_id: client.into(),
            push: Push {
                transactions: txs,
                now: 1,
                bounds: PushBounds::NONE,
                check: Arc::new(|_| Ok(())),
                origin,
                log: SyncLog::run("push", "u".into(), client.into(), 0, vec!["todos".into()]),
            },
        }
    }

    fn batch(requests: Vec<Request>) -> Batch {
        Batch {
            requests,
            prune_logs: Vec::new(),
        }
    }

    #[test]
    fn a_batch_reads_each_row_once_and_tenants_in_order() {
        let b = batch(vec![
            push("t2", "c1", 1, vec![put(1, "a"), put(2, "a")]),
            push("t1", "c2", 2, vec![put(5, "b")]),
            Request::Hello {
                tenant: "t1".into(),
                user: "u".into(),
                client_id: "c2".into(),
                collections: vec![],
            },
        ]);
        let reads = b.reads();
        assert_eq!(reads.tenants, ["t1", "t2"]);
        assert_eq!(reads.clients.len(), 2);
        assert_eq!(
            reads.documents,
            [
                ("t1".into(), "todos".into(), "b".into()),
                ("t2".into(), "todos".into(), "a".into())
            ]
        );
        assert_eq!(reads.outcomes[0].first, 1);
        assert_eq!(reads.outcomes[0].last, 2);
    }

    #[test]
    fn pushes_of_a_tenant_in_one_batch_chain_their_versions_and_commit_once() {
        let mut snapshot = Snapshot::default();
        snapshot.heads.insert("t".into(), 10);
        let b = batch(vec![
            push("t", "c1", 1, vec![put(1, "a")]),
            push("t", "c2", 2, vec![put(1, "b"), put(2, "a")]),
            push("other", "c1", 3, vec![put(1, "x")]),
        ]);
        let decided = decide(&b, snapshot).unwrap();
        let versions: Vec<_> = decided
            .answers
            .iter()
            .map(|a| match a {
                Answer::Push(Ok(commit)) => commit.range.map(|r| (r.since, r.cursor)),
                other => panic!("{other:?}"),
            })
            .collect();
        // c2's second transaction conflicts with c1's write of `a` (its base version 0 is
        // behind 11): only its first one applies, after c1's.
        assert_eq!(versions, [Some((10, 11)), Some((11, 12)), Some((0, 1))]);
        let t = &decided.committed[1];
        assert_eq!(
            (t.tenant.as_str(), t.range.since, t.range.cursor),
            ("t", 10, 12)
        );
        assert_eq!(t.origins, [1, 2]);
        assert_eq!(
            decided.writes.heads,
            [("other".into(), 1), ("t".into(), 12)]
        );
        assert_eq!(decided.writes.logs.len(), 3);
        assert_eq!(decided.writes.clients.len(), 3);
    }

    #[test]
    fn stored_and_new_documents_are_written_apart_and_applied_outcomes_not_recorded() {
        let mut snapshot = Snapshot::default();
        snapshot.heads.insert("t".into(), 1);
        let (_, fields) = parse_document(serde_json::json!({ "_id": "a", "n": 0 })).unwrap();
        let stored = ferrosync_core::document::Document::new(
            "a",
            fields,
            1,
            Hlc {
                wall: 1,
                counter: 0,
                node: 1,
            },
            false,
        );
        snapshot.documents.insert(
            ("t".into(), "todos".into(), "a".into()),
            ServerDoc {
                collection: "todos".into(),
                doc: stored,
                writer: "c1".into(),
            },
        );
        let b = batch(vec![push("t", "c1", 1, vec![put(1, "a"), put(2, "b")])]);
        let writes = decide(&b, snapshot).unwrap().writes;
        let ids = |docs: &[(String, ServerDoc)]| -> Vec<String> {
            docs.iter().map(|(_, d)| d.doc.id().to_owned()).collect()
        };
        assert_eq!(ids(&writes.changed_documents), ["a"]);
        assert_eq!(ids(&writes.new_documents), ["b"]);
        assert!(writes.outcomes.is_empty(), "{:?}", writes.outcomes);
    }

    #[test]
    fn a_hello_binds_the_client_and_a_second_user_is_refused() {
        let hello = |user: &str| Request::Hello {
            tenant: "t".into(),
            user: user.into(),
            client_id: "c".into(),
            collections: vec!["todos".into()],
        };
        let decided = decide(
            &batch(vec![hello("alice"), hello("mallory")]),
            Snapshot::default(),
        )
        .unwrap();
        assert!(matches!(
            decided.answers[0],
            Answer::Hello(Ok(Hello {
                last_mutation_id: 0,
                head: 0
            }))
        ));
        assert!(
            matches!(&decided.answers[1], Answer::Hello(Err(e)) if e.code == ErrorCode::Forbidden)
        );
        assert_eq!(decided.writes.clients[0].1.collections, r#"["todos"]"#);
    }
}
