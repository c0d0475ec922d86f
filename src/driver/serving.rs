//! How the leading tab serves the others: snapshots for followers that say hello, an update
//! after every step while followers listen, and their forwarded calls run here. A commit request
//! is handed to the engine under its name (`tab:seq`): the engine stores which transaction it
//! created with that transaction (its `Origin`), so a request re-sent after a takeover is
//! answered, not applied again.

use super::leader::{Leader, Outbound};
use super::pending::Answer;
use super::{Committed, Role};
use crate::tabs::messages::{LeaderState, Refusal, Reply, Request, TabMessage};
use crate::views;
use ferrosync_core::engine::{Input, SyncLogQuery};
use ferrosync_core::transaction::{Transaction, TxId};
use wasm_bindgen::JsValue;

/// How many finished transactions a follower mirrors (its `transactions()` shows them).
pub(super) const FOLLOWER_HISTORY: usize = 500;
/// How many sync-log entries a follower mirrors.
const FOLLOWER_SYNC_LOG: usize = 50;

/// What running a request gave.
pub(super) enum Outcome {
    /// The answer.
    Now(Result<Reply, Refusal>),
    /// `Done` once this is answered.
    Done(Answer<()>),
    /// A commit: `Durable` once this is answered (with its end, if it finished before).
    Durable(TxId, Answer<Committed>, Option<Box<Transaction>>),
}

impl Outcome {
    /// The answer, once there is one; `None` if this tab stopped leading before it knew.
    pub(super) async fn reply(self) -> Option<Result<Reply, JsValue>> {
        let result = match self {
            Outcome::Now(result) => result.map_err(|r| crate::js::refusal(r.code, &r.message)),
            Outcome::Done(answer) => answer.await.ok()?.map(|()| Reply::Done),
            Outcome::Durable(tx, answer, finished) => {
                answer.await.ok()?.map(|_| Reply::Durable { tx, finished })
            }
        };
        Some(result)
    }
}

impl Leader {
    /// Acts on a message from another tab.
    pub(super) fn serve_message(&mut self, message: TabMessage) {
        match message {
            TabMessage::Hello { tab } => {
                self.tabs.followers.insert(tab.clone());
                let collections = self
                    .engine
                    .collection_names()
                    .map(|name| {
                        let docs = self
                            .engine
                            .collection(name)
                            .map(|c| c.docs().cloned().collect())
                            .unwrap_or_default();
                        (name.to_owned(), docs)
                    })
                    .collect();
                let transactions = self
                    .engine
                    .unfinished()
                    .chain(self.engine.recent_history(FOLLOWER_HISTORY))
                    .cloned()
                    .collect();
                self.tabs.channel.post(&TabMessage::Snapshot {
                    to: tab,
                    collections,
                    transactions,
                    state: self.state(),
                });
            }
            TabMessage::Bye { tab } => {
                self.tabs.followers.remove(&tab);
            }
            TabMessage::Request { tab, seq, request } => {
                self.tabs.followers.insert(tab.clone());
                self.serve(tab, seq, request);
            }
            // Only followers act on these.
            TabMessage::Snapshot { .. }
            | TabMessage::Update { .. }
            | TabMessage::Reply { .. }
            | TabMessage::Leader { .. } => {}
        }
    }

    /// Tells the followers this tab leads now.
    pub(super) fn announce(&self) {
        self.tabs.channel.post(&TabMessage::Leader {
            tab: self.tabs.id.clone(),
        });
    }

    /// Runs a follower's request and posts the answer(s) back.
    fn serve(&mut self, tab: String, seq: u64, request: Request) {
        let origin = format!("{tab}:{seq}");
        let channel = self.tabs.channel.clone();
        let reply = move |result: Result<Reply, Refusal>| {
            channel.post(&TabMessage::Reply {
                to: tab.clone(),
                seq,
                result,
            })
        };
        let outcome = self.run(&origin, request);
        match &outcome {
            Outcome::Now(result) => return reply(result.clone()),
            Outcome::Durable(tx, ..) => reply(Ok(Reply::Committed { tx: *tx })),
            Outcome::Done(_) => {}
        }
        wasm_bindgen_futures::spawn_local(async move {
            // This tab stopped leading before it knew: no answer, so the follower asks the
            // next leader (which recognises a recorded commit).
            if let Some(result) = outcome.reply().await {
                reply(result.map_err(|e| refusal(&e)));
            }
        });
    }

    /// Runs a request from another tab (`origin`: `tab:seq`, which commits are recorded under).
    pub(super) fn run(&mut self, origin: &str, request: Request) -> Outcome {
        match request {
            Request::Commit { requests, metadata } => {
                let committed = self.input(Input::Commit {
                    requests,
                    metadata,
                    origin: Some(origin.to_owned()),
                });
                let tx = match committed {
                    Ok(tx) => tx.expect("a commit names its transaction"),
                    Err(e) => return Outcome::Now(Err(e.into())),
                };
                // A request committed before may have finished (its record holds the end).
                let finished = self.engine.origin(origin).and_then(|o| o.finished.clone());
                Outcome::Durable(tx, self.durable(tx), finished.map(Box::new))
            }
            Request::HardDelete { collection, id } => match self.hard_delete(&collection, id) {
                Ok(done) => Outcome::Done(done),
                Err(e) => Outcome::Now(Err(e.into())),
            },
            Request::ResolveConflict { id, fields } => Outcome::Now(
                id.parse()
                    .and_then(|id| self.resolve_conflict(id, fields))
                    .map(|()| Reply::Done)
                    .map_err(Refusal::from),
            ),
            Request::SyncNow { push, pull } => Outcome::Done(self.sync_now(push, pull)),
            Request::Flush => Outcome::Done(self.flush()),
            Request::Start => Outcome::Now(
                self.start_sync()
                    .map(|()| Reply::Done)
                    .map_err(|e| refusal(&e)),
            ),
            Request::Stop => {
                self.stop_sync();
                Outcome::Now(Ok(Reply::Done))
            }
        }
    }

    /// The sync state as followers show it.
    fn state(&self) -> LeaderState {
        LeaderState {
            client_id: self.engine.client_id().to_owned(),
            status: self.engine.status(),
            stats: self.engine.stats().clone(),
            progress: self.engine.progress(),
            sync_log: self
                .engine
                .sync_log(&SyncLogQuery {
                    limit: Some(FOLLOWER_SYNC_LOG),
                    ..SyncLogQuery::default()
                })
                .into_iter()
                .cloned()
                .collect(),
            conflicts: views::conflicts(&self.engine.conflicts()),
        }
    }

    /// Sends a step's changes to the followers.
    pub(super) fn broadcast(&self, outbound: Outbound) {
        if outbound.changes.is_empty() && outbound.transactions.is_empty() && !outbound.state {
            return;
        }
        self.tabs.channel.post(&TabMessage::Update {
            changes: outbound.changes,
            transactions: outbound.transactions,
            state: outbound.state.then(|| self.state()),
        });
    }
}

/// A request's JavaScript error as the follower is told it.
fn refusal(error: &wasm_bindgen::JsValue) -> Refusal {
    let (code, message) = crate::js::code_and_message(error);
    Refusal { code, message }
}
