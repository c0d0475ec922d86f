//! Custom backends: instead of speaking the protocol to the reference server, the engine asks the
//! application's functions to persist each transaction (`persist`, then `awaitSync`), and takes
//! in the documents the application's sync source delivers (`setup`'s data, `onUpdate`; see
//! `remote.rs`).
//!
//! What a backend answers becomes the synced state: a completed transaction's writes are folded
//! into it, and remote documents replace it. Under the ordered strategy a remote document for an
//! object a transaction holds (persisting, or awaiting sync) waits until that transaction ends.

use super::{Engine, Link, Object, SyncType};
use crate::document::Document;
use crate::id_map::IdMap;
use crate::mutation::Op;
use crate::object::json_object;
use crate::retry::{FailureKind, RetryDecision};
use crate::transaction::{TxId, TxState};
use crate::{Code, CoreError, DocId};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};

/// Where the engine sends transactions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backend {
    /// The reference server, through the wire protocol.
    #[default]
    Server,
    /// The application's functions: `persist`, and `awaitSync` when `await_sync`.
    Custom {
        /// After `persist`, wait for `awaitSync` before completing.
        await_sync: bool,
    },
}

impl Backend {
    /// Whether transactions go to the application's functions.
    pub fn is_custom(self) -> bool {
        matches!(self, Backend::Custom { .. })
    }
}

/// Which function a call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStep {
    /// `persist`: write the transaction to the backend.
    Persist,
    /// `awaitSync`: wait until the persisted writes came back through sync.
    AwaitSync,
}

/// One call to a custom backend, for one attempt at a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// The transaction.
    pub tx: TxId,
    /// The attempt it belongs to (see `Transaction::attempts`).
    pub attempt: u32,
    /// The function to call.
    pub step: CallStep,
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// It resolved. `external_ids` gives the backend's ids for documents the transaction
    /// created, as (mutation index, id): the local documents take those ids.
    Done {
        /// The backend's ids, by mutation index.
        external_ids: Vec<(usize, DocId)>,
        /// For `persist`: the backend accepted the writes but confirms them later. This is kept
        /// with the transaction (across reloads) and handed to `awaitSync`, which resolves once
        /// they are confirmed (or rejects once refused or timed out).
        confirm: Option<Value>,
    },
    /// It rejected.
    Failed {
        /// What it said.
        message: String,
        /// False for a `NonRetriableError`: the transaction fails at once.
        retryable: bool,
    },
}

/// A sync-log run of calls.
#[derive(Debug)]
struct CallRun {
    /// Calls not answered yet.
    unanswered: usize,
    /// Calls that succeeded.
    done: usize,
    /// Calls that failed.
    failed: usize,
    /// The first failed call's code: the run's.
    code: Option<Code>,
}

impl CallRun {
    /// A run of `calls` calls, none answered yet.
    fn of(calls: usize) -> Self {
        CallRun {
            unanswered: calls,
            done: 0,
            failed: 0,
            code: None,
        }
    }
}

/// The custom backend's bookkeeping.
#[derive(Debug, Default)]
pub(super) struct CustomState {
    /// Calls under way, with the sync-log run each belongs to.
    calls: IdMap<TxId, (Call, u64)>,
    /// Sync-log runs of calls, by log id.
    runs: HashMap<u64, CallRun>,
    /// Remote documents held back until their object is unlocked (`None`: removed).
    pub(super) deferred: HashMap<Object, Option<Document>>,
    /// Transactions loaded while awaiting a confirmation: `awaitSync` is called again for them
    /// once the backend is ready.
    resume: BTreeSet<TxId>,
}

impl Engine {
    /// Whether transactions go to the application's functions.
    pub(super) fn is_custom(&self) -> bool {
        self.config.backend.is_custom()
    }

    /// The backend's `setup` resolved.
    pub(super) fn backend_ready(&mut self) {
        if self.is_custom() {
            self.dialed();
            self.link = Link::Up {
                live: true,
                welcomed: true,
                hello_at: self.now,
            };
        }
    }

    /// Calls `persist` for ready transactions, oldest first, up to the in-flight limit. Ready
    /// means durable (so a reload resumes it) and, after a failure, its retry time reached.
    pub(super) fn call_ready(&mut self) {
        self.resume_confirmations();
        let room = (super::outbox::MAX_WIRE_BATCHES * self.config.batch_size)
            .saturating_sub(self.custom.calls.len());
        let now = self.now;
        let due: Vec<TxId> = self
            .queues
            .ready
            .iter()
            .filter(|id| {
                let e = &self.txs[id];
                e.durable_revision > 0 && e.retry_at.is_none_or(|at| at <= now)
            })
            .take(room)
            .copied()
            .collect();
        if due.is_empty() {
            return;
        }
        let log = self.start_log(SyncType::Push);
        self.custom.runs.insert(log, CallRun::of(due.len()));
        for id in due {
            self.set_retry_at(id, None);
            let entry = self.txs.get_mut(&id).expect("ready");
            entry.tx.set_state(TxState::Persisting, now);
            let attempt = entry.tx.start_attempt(now);
            // Stored, so attempts count across reloads.
            entry.revision += 1;
            self.touch(id);
            self.classify(id);
            self.start_call(
                Call {
                    tx: id,
                    attempt,
                    step: CallStep::Persist,
                },
                log,
            );
        }
    }

    /// Calls `awaitSync` again for the transactions a reload interrupted while their writes
    /// waited for confirmation.
    fn resume_confirmations(&mut self) {
        let resumed = std::mem::take(&mut self.custom.resume);
        if resumed.is_empty() {
            return;
        }
        let log = self.start_log(SyncType::Push);
        self.custom.runs.insert(log, CallRun::of(resumed.len()));
        for id in resumed {
            let attempt = self.txs[&id].tx.attempts.len() as u32;
            self.start_call(
                Call {
                    tx: id,
                    attempt,
                    step: CallStep::AwaitSync,
                },
                log,
            );
        }
    }

    /// Whether a custom backend call is under way.
    pub(super) fn calls_under_way(&self) -> bool {
        !self.custom.calls.is_empty()
    }

    fn start_call(&mut self, call: Call, log: u64) {
        self.custom.calls.insert(call.tx, (call, log));
        self.out.effects.push(super::Effect::Call(call));
    }

    /// Acts on a call's answer; answers to calls no longer under way are ignored.
    pub(super) fn called(&mut self, call: Call, outcome: CallOutcome) {
        match self.custom.calls.get(&call.tx) {
            Some((current, _)) if *current == call => {}
            _ => return,
        }
        let (_, log) = self.custom.calls.remove(&call.tx).expect("checked");
        // The code of the call's failure, if it failed.
        let failure = match outcome {
            CallOutcome::Done { .. } => None,
            CallOutcome::Failed { .. } if call.step == CallStep::AwaitSync => {
                Some(Code::ConfirmFailed)
            }
            CallOutcome::Failed {
                retryable: true, ..
            } => Some(Code::PersistFailed),
            CallOutcome::Failed { .. } => Some(Code::NonRetriable),
        };
        match (call.step, outcome) {
            (CallStep::Persist, CallOutcome::Done { confirm, .. })
                if confirm.is_some()
                    && self.config.backend != (Backend::Custom { await_sync: true }) =>
            {
                let message = "persist returned `confirm`, but there is no `awaitSync` to \
                               confirm the writes with";
                self.persist_rejected(call.tx, Code::InvalidConfig, message.into());
                self.end_call(log, Some(Code::InvalidConfig));
                return;
            }
            (
                CallStep::Persist,
                CallOutcome::Done {
                    external_ids,
                    confirm,
                },
            ) => {
                self.take_external_ids(call.tx, external_ids);
                self.status
                    .pushed(self.txs[&call.tx].tx.mutations.len(), self.now);
                let await_sync = self.config.backend == Backend::Custom { await_sync: true };
                let entry = self.txs.get_mut(&call.tx).expect("called");
                entry.tx.finish_attempt(self.now, None, None);
                if await_sync {
                    entry.tx.confirm = confirm;
                    entry.tx.set_state(TxState::PersistedAwaitingSync, self.now);
                    // Stored, so that after a reload it counts as done.
                    entry.revision += 1;
                    self.touch(call.tx);
                    self.start_call(
                        Call {
                            step: CallStep::AwaitSync,
                            ..call
                        },
                        log,
                    );
                    return;
                }
                self.complete(call.tx);
            }
            (CallStep::AwaitSync, CallOutcome::Done { external_ids, .. }) => {
                self.take_external_ids(call.tx, external_ids);
                self.complete(call.tx);
            }
            (CallStep::Persist, CallOutcome::Failed { message, .. }) => {
                self.persist_rejected(call.tx, failure.expect("failed"), message)
            }
            (CallStep::AwaitSync, CallOutcome::Failed { message, .. }) => self.fail(
                call.tx,
                failure.expect("failed"),
                format!("awaitSync failed: {message}"),
            ),
        }
        self.end_call(log, failure);
    }

    /// A call ended, failed with `failure`'s code or not: its run is finished once all its
    /// calls are, failed with the code of its first failed call if any failed.
    fn end_call(&mut self, log: u64, failure: Option<Code>) {
        let Some(run) = self.custom.runs.get_mut(&log) else {
            return;
        };
        run.unanswered -= 1;
        match failure {
            None => run.done += 1,
            Some(code) => {
                run.failed += 1;
                run.code.get_or_insert(code);
            }
        }
        if run.unanswered == 0 {
            let run = self.custom.runs.remove(&log).expect("present");
            let error = run
                .code
                .map(|code| (code, format!("{} transaction(s) failed", run.failed)));
            self.finish_log(log, run.done, run.failed, error);
        }
    }

    /// `persist` rejected: retried under the policy, or failed at once when not retryable.
    fn persist_rejected(&mut self, id: TxId, code: Code, message: String) {
        let retryable = code.retryable() == Some(true);
        let kind = if retryable {
            FailureKind::Retryable
        } else {
            FailureKind::NonRetriable
        };
        match self.count_failure(id, kind) {
            RetryDecision::RetryAt(at) => {
                self.back_off(id, code, message, Some(at));
                self.classify(id);
            }
            RetryDecision::GiveUp if retryable => {
                let entry = self.txs.get_mut(&id).expect("called");
                entry
                    .tx
                    .finish_attempt(self.now, Some((code, message)), None);
                self.fail(id, Code::RetriesExhausted, self.gave_up_message(id));
            }
            RetryDecision::GiveUp => self.fail(id, code, message),
        }
    }

    /// The backend named its own ids for documents the transaction created: the local
    /// documents, and every unfinished write to them, take those ids.
    fn take_external_ids(&mut self, id: TxId, external_ids: Vec<(usize, DocId)>) {
        for (index, to) in external_ids {
            let Some(m) = self.txs[&id].tx.mutations.get(index) else {
                continue;
            };
            let (collection, from) = (m.collection.clone(), m.doc_id.clone());
            if from != to {
                self.rename(&collection, &from, &to);
            }
        }
    }

    /// Gives document `from` the id `to`: in the collection, in storage, in unfinished
    /// transactions, in the per-object queues and among deferred remote documents.
    fn rename(&mut self, collection: &str, from: &str, to: &str) {
        let merge = self.merge_fn();
        self.replacing_synced(collection, from);
        let c = self.collections.get_mut(collection).expect("configured");
        self.out.changes.extend(c.rename(from, to, merge.as_ref()));
        self.store.docs.insert((collection.into(), from.into()));
        self.store.docs.insert((collection.into(), to.into()));
        let affected: Vec<TxId> = self
            .txs
            .iter_mut()
            .filter(|(_, e)| !e.tx.state.is_terminal())
            .filter_map(|(id, e)| {
                let mut hit = false;
                for m in &mut e.tx.mutations {
                    if m.collection == collection && m.doc_id == from {
                        m.doc_id = to.into();
                        m.changed_at = Some(self.now);
                        hit = true;
                    }
                }
                hit.then(|| {
                    e.revision += 1;
                    *id
                })
            })
            .collect();
        for id in affected {
            self.touch(id);
        }
        self.rename_object(collection, from, to);
        let old = (collection.to_owned(), from.to_owned());
        if let Some(doc) = self.custom.deferred.remove(&old) {
            self.custom
                .deferred
                .insert((collection.into(), to.into()), doc);
        }
    }

    /// On reload, transactions a custom backend persisted but had not synced count as done,
    /// unless their writes wait for a confirmation (`awaitSync` is called again for those);
    /// those it was persisting are tried again.
    pub(super) fn finish_persisted_on_load(&mut self, ids: Vec<TxId>) {
        let await_sync = self.config.backend == Backend::Custom { await_sync: true };
        for id in ids {
            if await_sync && self.txs[&id].tx.confirm.is_some() {
                self.custom.resume.insert(id);
            } else {
                self.complete(id);
            }
        }
    }
}

impl Engine {
    /// What `persist` and `awaitSync` receive as `changes`: one entry per write, with its id
    /// (`tx-<n>/<index>`), `type` (`insert` | `update` | `delete`), `collection`, `key`, the
    /// fields it sets as `changes`, and the document after it as `value` (`original`: before).
    pub fn call_changes(&self, id: TxId) -> Value {
        let Some(entry) = self.txs.get(&id) else {
            return Value::Array(Vec::new());
        };
        let mut docs: HashMap<(&str, &str), Option<Document>> = HashMap::new();
        let changes = entry.tx.mutations.iter().enumerate().map(|(index, m)| {
            let key = (m.collection.as_str(), m.doc_id.as_str());
            let before = docs
                .get(&key)
                .cloned()
                .unwrap_or_else(|| self.collections[&m.collection].synced(&m.doc_id).cloned());
            let after = m.op.apply(&m.doc_id, before.as_ref(), m.hlc).ok();
            let (kind, fields) = match &m.op {
                Op::Insert { fields } => ("insert", fields.to_map()),
                Op::Update { patch } => ("update", patch.to_map()),
                Op::Put { fields } => ("update", fields.to_map()),
                Op::Delete => ("delete", Map::new()),
            };
            let change = json_object([
                ("id", Value::String(format!("{id}/{index}"))),
                ("type", Value::String(kind.into())),
                ("collection", Value::String(m.collection.clone())),
                ("key", Value::String(m.doc_id.clone())),
                ("changes", Value::Object(fields)),
                ("value", Document::json_or_null(after.as_ref())),
                ("original", Document::json_or_null(before.as_ref())),
            ]);
            docs.insert(key, after);
            change
        });
        Value::Array(changes.collect())
    }

    /// Reads `persist`'s answer: `{ externalIds: { '<change id>': '<id>' } }` (or nothing) as
    /// the backend's ids by mutation index of transaction `id`.
    pub fn external_ids(&self, id: TxId, answer: &Value) -> Result<Vec<(usize, DocId)>, CoreError> {
        let bad = CoreError::BadRemoteData;
        let ids = match answer.get("externalIds") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Object(ids)) => ids,
            Some(_) => return Err(bad("`externalIds` must map change ids to ids".into())),
        };
        let prefix = format!("{id}/");
        let count = self.txs.get(&id).map_or(0, |e| e.tx.mutations.len());
        ids.iter()
            .map(|(change, external)| {
                let index = change
                    .strip_prefix(&prefix)
                    .and_then(|i| i.parse::<usize>().ok())
                    .filter(|i| *i < count);
                match (index, external) {
                    (Some(index), Value::String(to)) if !to.is_empty() => Ok((index, to.clone())),
                    (None, _) => Err(bad(format!("`{change}` is not a change of {id}"))),
                    _ => Err(bad(format!(
                        "the id for `{change}` must be a non-empty string"
                    ))),
                }
            })
            .collect()
    }
}
