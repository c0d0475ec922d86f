//! Retries of pushed transactions: backing off with the retry policy, giving up (sent once more
//! as `abandon`), and sending again what a lost connection or an unanswered push left.

use super::{Engine, NO_ANSWER};
use crate::protocol::ErrorInfo;
use crate::retry::{FailureKind, RetryDecision};
use crate::transaction::{TxId, TxState};
use crate::{Code, Millis};

impl Engine {
    /// A retryable failure: back off and resend with the same ids, or, with retries exhausted,
    /// send it once more marked `abandon` so the server settles it as rejected.
    pub(super) fn retry_later(&mut self, id: TxId, code: Code, message: String) {
        let retry_at = match self.count_failure(id, FailureKind::Retryable) {
            RetryDecision::RetryAt(at) => Some(at),
            RetryDecision::GiveUp => {
                let entry = self.txs.get_mut(&id).expect("answered");
                entry.abandon = true;
                entry.revision += 1;
                None
            }
        };
        self.back_off(id, code, message, retry_at);
    }

    /// Counts a failed attempt against the retry limit and asks the policy what to do.
    pub(super) fn count_failure(&mut self, id: TxId, kind: FailureKind) -> RetryDecision {
        let entry = self.txs.get_mut(&id).expect("attempted");
        entry.tx.retries += 1;
        self.config
            .retry
            .decide(entry.tx.retries, kind, self.now, &mut self.rng)
    }

    /// Closes the failed attempt with `message` and puts the transaction back to pending, to be
    /// tried again at `retry_at` (at once when `None`); the status shows the error meanwhile.
    pub(super) fn back_off(
        &mut self,
        id: TxId,
        code: Code,
        message: String,
        retry_at: Option<Millis>,
    ) {
        self.set_retry_at(id, retry_at);
        let entry = self.txs.get_mut(&id).expect("attempted");
        entry
            .tx
            .finish_attempt(self.now, Some((code, message.clone())), retry_at);
        entry.tx.set_state(TxState::Pending, self.now);
        self.touch(id);
        self.status.fail(code, message);
    }

    pub(super) fn gave_up_message(&self, id: TxId) -> String {
        let tx = &self.txs[&id].tx;
        let last = tx
            .attempts
            .iter()
            .rev()
            .find_map(|a| a.error.clone())
            .unwrap_or_default();
        format!("gave up after {} attempts: {last}", tx.retries)
    }

    /// A sent transaction lost its answer (connection loss, timeout, early stop): its attempt
    /// ends with `code` and `why`, and it goes back to pending with its ids and is re-sent;
    /// this does not count against the retry limit. Whether it was still waiting for that
    /// answer.
    pub(super) fn requeue(&mut self, id: TxId, code: Code, why: &str) -> bool {
        let Some(entry) = self.txs.get_mut(&id) else {
            return false;
        };
        if entry.in_flight.is_none() || entry.tx.state != TxState::Persisting {
            return false;
        }
        self.landed(id);
        let entry = self.txs.get_mut(&id).expect("unfinished");
        entry
            .tx
            .finish_attempt(self.now, Some((code, why.to_owned())), None);
        entry.tx.set_state(TxState::Pending, self.now);
        self.out.txs.insert(id);
        true
    }

    /// Every push on the wire is given up on (connection lost, or a whole-push error): the
    /// attempts and runs end with the error's code, `network` without one.
    pub(super) fn requeue_all(&mut self, why: &str, error: Option<&ErrorInfo>) {
        let code = error.map_or(Code::Network, |e| Code::Protocol(e.code));
        let flights = std::mem::take(&mut self.flights);
        for flight in flights.into_values() {
            for id in &flight.txs {
                self.requeue(*id, code, why);
            }
            self.finish_log(flight.log, 0, 0, Some((code, why.to_owned())));
        }
        if let Some(error) = error {
            // The first transaction holding ids holds back all others: back it off.
            let first = self.queues.wire.values().next().copied();
            if let Some(first) = first {
                self.retry_later(first, Code::Protocol(error.code), error.message.clone());
            }
        }
    }

    /// Pushes whose answer is overdue are treated as lost, and sync shows as failing until the
    /// server answers again.
    pub(super) fn expire_pushes(&mut self) {
        let deadline = self.now.saturating_sub(self.config.ack_timeout_ms);
        let overdue: Vec<u64> = self
            .flights
            .iter()
            .filter(|(_, f)| f.sent_at <= deadline)
            .map(|(s, _)| *s)
            .collect();
        for seq in overdue {
            let flight = self.flights.remove(&seq).expect("listed");
            let mut unanswered = false;
            for id in &flight.txs {
                unanswered |= self.requeue(*id, Code::Network, NO_ANSWER);
            }
            self.finish_log(flight.log, 0, 0, Some((Code::Network, NO_ANSWER.into())));
            if unanswered {
                self.status.fail(Code::Network, NO_ANSWER.into());
            }
        }
    }
}
