//! Transactions: a group of mutations that succeeds or fails as one, with its state machine and
//! the history of every attempt to persist it.

use crate::mutation::Mutation;
use crate::{Code, DocId, Millis};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// A transaction's id: unique within one client database, increasing in creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TxId(pub u64);

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tx-{}", self.0)
    }
}

/// Where a transaction is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TxState {
    /// Waiting behind an unfinished transaction that touches the same object (ordered strategy).
    Queued,
    /// Ready to be persisted: waiting for the network, a retry time, or its turn.
    Pending,
    /// Being persisted: sent and not yet answered.
    Persisting,
    /// Persisted by the backend; waiting for the change to come back through sync.
    PersistedAwaitingSync,
    /// Done: the backend has it and the synced state reflects it.
    Completed,
    /// Given up: rolled back locally; `error` says why.
    Failed,
}
crate::deserialize_unit_enum!(TxState {
    Queued = "queued",
    Pending = "pending",
    Persisting = "persisting",
    PersistedAwaitingSync = "persisted_awaiting_sync",
    Completed = "completed",
    Failed = "failed",
});

impl TxState {
    /// Completed or failed: nothing more will happen to it.
    pub fn is_terminal(self) -> bool {
        matches!(self, TxState::Completed | TxState::Failed)
    }

    /// Whether a transaction in this state locks its objects under the ordered strategy.
    pub fn locks(self) -> bool {
        matches!(self, TxState::Persisting | TxState::PersistedAwaitingSync)
    }

    /// Whether the state machine allows going from `self` to `next`.
    pub fn can_become(self, next: TxState) -> bool {
        use TxState::*;
        matches!(
            (self, next),
            (Queued, Pending | Failed)
                | (Pending, Queued | Persisting | Completed | Failed)
                | (
                    Persisting,
                    Pending | PersistedAwaitingSync | Completed | Failed
                )
                | (PersistedAwaitingSync, Completed | Failed)
        )
    }
}

/// One try at persisting a transaction.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// 1 for the first attempt, then 2, 3, …
    pub id: u32,
    /// When it was sent.
    pub started_at: Millis,
    /// When it was answered or abandoned.
    pub completed_at: Option<Millis>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The stable code of why it failed; `None` when it did not fail, and in attempts stored
    /// before attempts recorded their code.
    #[serde(default)]
    pub error_code: Option<Code>,
    /// When the next attempt is due, if a retry was scheduled.
    pub retry_scheduled_for: Option<Millis>,
}

/// Why a transaction failed; `transaction_id` names the root cause (itself, or the transaction
/// whose failure it depended on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TxError {
    /// The transaction whose failure caused this one.
    pub transaction_id: TxId,
    /// What failed, as a stable code (that of the root cause).
    #[serde(default)]
    pub code: Code,
    /// A readable reason.
    pub message: String,
    /// Whether the same writes may succeed if made again later.
    #[serde(default)]
    pub retryable: bool,
}

crate::deserialize_object!(Attempt {
    "id" => id: u32,
    "startedAt" => started_at: Millis,
    "completedAt" => completed_at: Option<Millis> = default,
    "error" => error: Option<String> = default,
    "errorCode" => error_code: Option<Code> = default,
    "retryScheduledFor" => retry_scheduled_for: Option<Millis> = default,
});

crate::deserialize_object!(TxError {
    "transactionId" => transaction_id: TxId,
    "code" => code: Code = default,
    "message" => message: String,
    "retryable" => retryable: bool = default,
});

impl TxError {
    /// A failure caused by transaction `transaction_id`, retryable as its code says.
    pub fn new(transaction_id: TxId, code: Code, message: String) -> Self {
        Self {
            transaction_id,
            code,
            message,
            retryable: code.retryable().unwrap_or(false),
        }
    }
}

/// A transaction and its full history, as `engine.transactions()` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    /// Its id.
    pub id: TxId,
    /// Its current state.
    pub state: TxState,
    /// When it was created.
    pub created_at: Millis,
    /// When its state or history last changed.
    pub updated_at: Millis,
    /// Its writes, applied in order.
    pub mutations: Vec<Mutation>,
    /// Every attempt to persist it.
    pub attempts: Vec<Attempt>,
    /// The id of the attempt under way, if any.
    pub current_attempt: Option<u32>,
    /// The transactions it waits for (ordered strategy).
    pub queued_behind: Vec<TxId>,
    /// Why it failed.
    pub error: Option<TxError>,
    /// Failed attempts that count against the retry limit.
    pub retries: u32,
    /// The application's data about the transaction (`engine.transaction(body, { metadata })`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// What a custom backend's `persist` said to confirm later (an accepted but unconfirmed
    /// write), kept durably and handed to `awaitSync` until the transaction ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<Value>,
}

crate::deserialize_object!(Transaction {
    "id" => id: TxId,
    "state" => state: TxState,
    "createdAt" => created_at: Millis,
    "updatedAt" => updated_at: Millis,
    "mutations" => mutations: Vec<Mutation>,
    "attempts" => attempts: Vec<Attempt>,
    "currentAttempt" => current_attempt: Option<u32> = default,
    "queuedBehind" => queued_behind: Vec<TxId>,
    "error" => error: Option<TxError> = default,
    "retries" => retries: u32,
    "metadata" => metadata: Option<Value> = default,
    "confirm" => confirm: Option<Value> = default,
});

impl Transaction {
    /// A new transaction in state `pending`.
    pub fn new(id: TxId, mutations: Vec<Mutation>, now: Millis) -> Self {
        Self {
            id,
            state: TxState::Pending,
            created_at: now,
            updated_at: now,
            mutations,
            attempts: Vec::new(),
            current_attempt: None,
            queued_behind: Vec::new(),
            error: None,
            retries: 0,
            metadata: None,
            confirm: None,
        }
    }

    /// The transaction as the history keeps it once finished: without what only an
    /// unfinished one needs (conflict bases, parked conflicts, what was left to confirm).
    pub fn into_history(mut self) -> Self {
        for m in &mut self.mutations {
            m.base = None;
            m.parked = None;
        }
        self.confirm = None;
        self
    }

    /// Moves to `next`. Transitions the state machine forbids are engine bugs.
    pub fn set_state(&mut self, next: TxState, now: Millis) {
        if self.state == next {
            return;
        }
        debug_assert!(
            self.state.can_become(next),
            "{}: {:?} -> {:?}",
            self.id,
            self.state,
            next
        );
        self.state = next;
        self.updated_at = now;
    }

    /// Records the start of a new attempt and returns its id.
    pub fn start_attempt(&mut self, now: Millis) -> u32 {
        let id = self.attempts.len() as u32 + 1;
        self.attempts.push(Attempt {
            id,
            started_at: now,
            completed_at: None,
            error: None,
            error_code: None,
            retry_scheduled_for: None,
        });
        self.current_attempt = Some(id);
        self.updated_at = now;
        id
    }

    /// Closes the current attempt, if any, with its outcome: the code and message of why it
    /// failed, if it did.
    pub fn finish_attempt(
        &mut self,
        now: Millis,
        error: Option<(Code, String)>,
        retry_at: Option<Millis>,
    ) {
        let Some(current) = self.current_attempt.take() else {
            return;
        };
        if let Some(attempt) = self.attempts.iter_mut().find(|a| a.id == current) {
            attempt.completed_at = Some(now);
            (attempt.error_code, attempt.error) = error.unzip();
            attempt.retry_scheduled_for = retry_at;
        }
        self.updated_at = now;
    }

    /// Fails it with `error` (closing any attempt).
    pub fn fail(&mut self, error: TxError, now: Millis) {
        self.finish_attempt(now, Some((error.code, error.message.clone())), None);
        self.error = Some(error);
        self.queued_behind.clear();
        self.set_state(TxState::Failed, now);
    }

    /// The objects it writes, as `(collection, id)` pairs.
    pub fn objects(&self) -> impl Iterator<Item = (&str, &DocId)> {
        self.mutations
            .iter()
            .map(|m| (m.collection.as_str(), &m.doc_id))
    }
}

/// Which transactions `engine.transactions(query)` returns: the `limit` newest with ids below
/// `before`, in `state` if given, oldest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxQuery {
    /// At most this many (the newest of those matching).
    pub limit: Option<usize>,
    /// Only transactions with smaller ids (the first id of the page after).
    pub before: Option<TxId>,
    /// Only transactions in this state.
    pub state: Option<TxState>,
}

crate::deserialize_object!(deny_unknown_fields TxQuery {
    "limit" => limit: Option<usize> = default,
    "before" => before: Option<TxId> = default,
    "state" => state: Option<TxState> = default,
});

impl TxQuery {
    /// Whether `tx` is below `before` and in `state`.
    pub fn matches(&self, tx: &Transaction) -> bool {
        self.before.is_none_or(|b| tx.id < b) && self.state.is_none_or(|s| tx.state == s)
    }

    /// The matching transactions of `newest_first` (transactions in descending id order), as
    /// the query answers: the `limit` newest, oldest first.
    pub fn select<'a>(
        &self,
        newest_first: impl Iterator<Item = &'a Transaction>,
    ) -> Vec<&'a Transaction> {
        let mut page: Vec<&Transaction> = newest_first
            .filter(|tx| self.matches(tx))
            .take(self.limit.unwrap_or(usize::MAX))
            .collect();
        page.reverse();
        page
    }
}

/// An object held by an in-flight transaction under the ordered strategy: later writes to it
/// wait until that transaction ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LockedObject<'a> {
    /// The collection.
    pub collection: &'a str,
    /// The document.
    pub id: &'a DocId,
    /// The transaction holding it.
    pub transaction: &'a Transaction,
}

/// The objects `txs` hold: each object of a transaction in a locking state (persisting, or
/// persisted and awaiting sync), once per transaction, in the order given.
pub fn locked_objects<'a>(txs: impl Iterator<Item = &'a Transaction>) -> Vec<LockedObject<'a>> {
    let mut locked = Vec::new();
    for tx in txs.filter(|tx| tx.state.locks()) {
        let mut objects: Vec<(&str, &DocId)> = tx.objects().collect();
        crate::sort::sort(&mut objects);
        objects.dedup();
        locked.extend(objects.into_iter().map(|(collection, id)| LockedObject {
            collection,
            id,
            transaction: tx,
        }));
    }
    locked
}

#[cfg(test)]
mod tests {
    use super::*;
    use TxState::*;

    const ALL: &[TxState] = TxState::VARIANTS;

    #[test]
    fn the_state_machine_allows_exactly_the_documented_transitions() {
        let allowed = [
            (Queued, Pending),
            (Queued, Failed),
            (Pending, Queued),
            (Pending, Persisting),
            (Pending, Completed),
            (Pending, Failed),
            (Persisting, Pending),
            (Persisting, PersistedAwaitingSync),
            (Persisting, Completed),
            (Persisting, Failed),
            (PersistedAwaitingSync, Completed),
            (PersistedAwaitingSync, Failed),
        ];
        for &from in ALL {
            for &to in ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
        assert!(ALL
            .iter()
            .filter(|s| s.is_terminal())
            .eq([&Completed, &Failed]));
        assert!(ALL
            .iter()
            .filter(|s| s.locks())
            .eq([&Persisting, &PersistedAwaitingSync]));
    }

    #[test]
    fn attempts_record_their_outcome_and_retry_time() {
        let mut tx = Transaction::new(TxId(1), Vec::new(), 10);
        assert_eq!(tx.start_attempt(20), 1);
        tx.finish_attempt(30, Some((Code::Network, "boom".into())), Some(1030));
        assert_eq!(tx.start_attempt(1030), 2);
        tx.finish_attempt(1040, None, None);
        assert_eq!(tx.current_attempt, None);
        assert_eq!(tx.attempts[0].error.as_deref(), Some("boom"));
        assert_eq!(tx.attempts[0].error_code, Some(Code::Network));
        assert_eq!(tx.attempts[0].retry_scheduled_for, Some(1030));
        assert_eq!(tx.attempts[1].completed_at, Some(1040));
        assert_eq!(tx.attempts[1].error_code, None);
        tx.start_attempt(1045);
        tx.fail(TxError::new(TxId(1), Code::NonRetriable, "no".into()), 1050);
        assert_eq!(tx.state, Failed);
        assert_eq!(tx.attempts[2].error.as_deref(), Some("no"));
        assert_eq!(tx.attempts[2].error_code, Some(Code::NonRetriable));
    }

    #[test]
    fn an_attempt_stored_before_codes_loads_without_one() {
        let stored =
            r#"{"id":1,"startedAt":5,"completedAt":6,"error":"boom","retryScheduledFor":null}"#;
        let attempt: Attempt = serde_json::from_str(stored).unwrap();
        assert_eq!(attempt.error.as_deref(), Some("boom"));
        assert_eq!(attempt.error_code, None);
        let written = serde_json::to_value(Attempt {
            error_code: Some(Code::Protocol(crate::protocol::ErrorCode::TooLarge)),
            ..attempt
        })
        .unwrap();
        assert_eq!(written["errorCode"], "too_large");
    }
}
