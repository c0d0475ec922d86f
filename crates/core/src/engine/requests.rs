//! Requests a caller waits on: `forceSync`/`push`/`pull` until sync settles, `hardDelete` and
//! `flush` until storage holds what they changed. Each gets a [`Ticket`] from its step
//! ([`Step::ticket`](super::Step::ticket)) and is answered by [`Effect::Answered`], as a commit
//! gets its id and is answered by [`Effect::Durable`].

use super::{Effect, Engine, SyncLogQuery, SyncLogStatus, SyncStatus, Unwritten};
use crate::Code;

/// Names a request the engine answers with [`Effect::Answered`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// A request's answer: done, or why it failed.
pub type Answer = Result<(), RequestError>;

/// Why a request failed (only `forceSync`/`push`/`pull` do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// Sync is stopped: `start()` was not called, or `stop()` was.
    Stopped,
    /// A sync run the request caused failed (with that run's code and message), or the server
    /// is unreachable (`network`).
    Sync(Code, String),
}

impl RequestError {
    /// Its stable code.
    pub fn code(&self) -> Code {
        match self {
            RequestError::Stopped => Code::InvalidState,
            RequestError::Sync(code, _) => *code,
        }
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Stopped => f.write_str("sync is stopped; call start() first"),
            RequestError::Sync(_, why) => f.write_str(why),
        }
    }
}

/// The requests not answered yet.
#[derive(Debug, Default)]
pub(super) struct Requests {
    next: u64,
    /// Sync requests, with the first sync-log run that counts for each.
    syncs: Vec<(Ticket, u64)>,
    /// Write requests, each answered once a storage write with at least this token is durable.
    writes: Vec<(Ticket, u64)>,
    /// Answers of the step under way.
    pub answers: Vec<(Ticket, Answer)>,
}

impl Requests {
    fn ticket(&mut self) -> Ticket {
        self.next += 1;
        Ticket(self.next)
    }
}

impl Engine {
    /// `forceSync`/`push`/`pull`: answered once sync is idle, or with the error of a run under
    /// way or started since, or at once while the server is unreachable or sync is stopped.
    pub(super) fn request_sync(&mut self, push: bool, pull: bool) -> Ticket {
        let ticket = self.requests.ticket();
        if !self.dialer.running() {
            let stopped = Err(RequestError::Stopped);
            self.requests.answers.push((ticket, stopped));
            return ticket;
        }
        let since = self.status.first_awaited_log_id();
        self.requests.syncs.push((ticket, since));
        self.sync_now(push, pull);
        ticket
    }

    /// A request answered once everything the engine holds now is durable (`flush`, and
    /// `hardDelete` after its removal).
    pub(super) fn request_write(&mut self) -> Ticket {
        let ticket = self.requests.ticket();
        let target = match self.unwritten() {
            Unwritten::Nothing => {
                self.requests.answers.push((ticket, Ok(())));
                return ticket;
            }
            Unwritten::InFlight => self.store.in_flight_token(),
            // The next write issued carries it (issued by this step unless one is under way).
            Unwritten::Waiting => self.store.next_token(),
        };
        self.requests.writes.push((ticket, target));
        ticket
    }

    /// Storage write `token` is durable: the write requests it covers are answered.
    pub(super) fn answer_writes(&mut self, token: u64) {
        let requests = &mut self.requests;
        requests.writes.retain(|&(ticket, target)| {
            let done = target <= token;
            if done {
                requests.answers.push((ticket, Ok(())));
            }
            !done
        });
    }

    /// Answers the sync requests that settled: sync is idle; a run under way when they were
    /// made, or started since, failed; or the server is unreachable (offline, no connection being opened).
    fn answer_syncs(&mut self) {
        if self.requests.syncs.is_empty() {
            return;
        }
        let status = self.status();
        let unreachable = status == SyncStatus::Offline && !self.dialer.dialing();
        let failed = SyncLogQuery {
            status: Some(SyncLogStatus::Failed),
            ..SyncLogQuery::default()
        };
        let failed: Vec<(u64, RequestError)> = self
            .sync_log(&failed)
            .into_iter()
            .map(|e| {
                let why = e.error.clone().unwrap_or_else(|| "sync failed".into());
                (
                    e.id,
                    RequestError::Sync(e.error_code.unwrap_or_default(), why),
                )
            })
            .collect();
        let last_error = self.stats().last_error.clone();
        let requests = &mut self.requests;
        requests.syncs.retain(|&(ticket, since)| {
            let answer = if status == SyncStatus::Idle {
                Ok(())
            } else if let Some((_, error)) = failed.iter().find(|(id, _)| *id >= since) {
                Err(error.clone())
            } else if unreachable {
                let why = last_error.as_deref().unwrap_or("the server is unreachable");
                Err(RequestError::Sync(Code::Network, format!("offline: {why}")))
            } else {
                return true;
            };
            requests.answers.push((ticket, answer));
            false
        });
    }

    /// Ends a step's requests: answers those that settled, as one effect.
    pub(super) fn emit_answers(&mut self) {
        self.answer_syncs();
        if !self.requests.answers.is_empty() {
            let answers = std::mem::take(&mut self.requests.answers);
            self.out.effects.push(Effect::Answered(answers));
        }
    }
}
