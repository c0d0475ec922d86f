//! One client's protocol session, shared by the WebSocket and HTTP endpoints: `hello`, `push`
//! and `pull` checked against the caller, applied through storage, logged, and fanned out.

use crate::auth::Principal;
use crate::hub::Broadcast;
use crate::limits;
use crate::storage::{Caller, SyncLog};
use crate::{now_ms, AppState};
use ferrosync_core::protocol::{
    Change, ClientMessage, ErrorInfo, Outcome, ServerMessage, WireTransaction, MAX_WIRE_INT,
    PROTOCOL_VERSION,
};
use ferrosync_core::server::PushBounds;
use std::sync::Arc;

/// The longest client id or collection name accepted, in bytes.
const MAX_NAME: usize = 128;

/// Whether `name` is 1 to [`MAX_NAME`] bytes of printable characters.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME && !name.chars().any(char::is_control)
}

/// Who is connected and what they said at `hello`.
#[derive(Debug, Clone)]
pub struct Session {
    /// The authenticated caller.
    pub principal: Principal,
    /// The client id, once `hello` succeeded.
    pub client_id: Option<String>,
    /// The collections the client syncs.
    pub collections: Vec<String>,
    /// The WebSocket connection id (0 for HTTP).
    pub connection: u64,
}

/// Decodes untrusted JSON, refusing nesting deeper than the limit before parsing it.
pub fn decode<T: serde::de::DeserializeOwned>(
    text: &str,
    limits: &limits::Limits,
) -> Result<T, ErrorInfo> {
    if !limits::depth_within(text, limits.max_depth) {
        let message = format!("JSON nests deeper than {} levels", limits.max_depth);
        return Err(ErrorInfo::new("too_deep", message, false));
    }
    serde_json::from_str(text)
        .map_err(|e| ErrorInfo::new("bad_request", format!("not a valid message: {e}"), false))
}

fn error(seq: Option<u64>, code: &str, message: impl Into<String>) -> ServerMessage {
    ServerMessage::Error {
        seq,
        error: ErrorInfo::new(code, message, false),
    }
}

impl Session {
    /// A session for an authenticated caller.
    pub fn new(principal: Principal, connection: u64) -> Self {
        Self {
            principal,
            client_id: None,
            collections: Vec::new(),
            connection,
        }
    }

    fn caller(&self) -> Option<Caller<'_>> {
        Some(Caller {
            tenant: &self.principal.tenant,
            user: &self.principal.user,
            client_id: self.client_id.as_deref()?,
        })
    }

    /// Handles one message; returns the answer. `room` is how many more bytes of answers the
    /// frame or request may carry (see [`limits::Limits::max_answer_bytes`]): pull pages and
    /// pushes fit within it, and once it is spent they are answered `busy`.
    pub async fn handle(
        &mut self,
        state: &Arc<AppState>,
        message: ClientMessage,
        room: usize,
    ) -> ServerMessage {
        match message {
            ClientMessage::Hello {
                protocol,
                client_id,
                collections,
            } => self.hello(state, protocol, client_id, collections).await,
            ClientMessage::Push { seq, .. } | ClientMessage::Pull { seq, .. } if room == 0 => {
                ServerMessage::Error {
                    seq: Some(seq),
                    error: ErrorInfo::new(
                        "busy",
                        "this frame's answers reached the server's size limit; send it again",
                        true,
                    ),
                }
            }
            ClientMessage::Push { seq, transactions } => {
                self.push(state, seq, transactions, room).await
            }
            ClientMessage::Pull { seq, cursor, limit } => {
                self.pull(state, seq, cursor, limit, room).await
            }
            ClientMessage::Ping => ServerMessage::Pong,
        }
    }

    async fn hello(
        &mut self,
        state: &Arc<AppState>,
        protocol: u32,
        client_id: String,
        collections: Vec<String>,
    ) -> ServerMessage {
        if protocol != PROTOCOL_VERSION {
            return error(
                None,
                "unsupported_protocol",
                format!("this server speaks protocol {PROTOCOL_VERSION}, not {protocol}"),
            );
        }
        if !valid_name(&client_id) {
            return error(
                None,
                "bad_request",
                format!("a client id is 1 to {MAX_NAME} bytes of printable characters"),
            );
        }
        if collections.len() > state.limits.max_collections {
            return error(
                None,
                "too_many_collections",
                format!(
                    "hello names {} collections, over the limit of {}",
                    collections.len(),
                    state.limits.max_collections
                ),
            );
        }
        if !collections.iter().all(|name| valid_name(name)) {
            return error(
                None,
                "bad_request",
                format!("a collection name is 1 to {MAX_NAME} bytes of printable characters"),
            );
        }
        let (storage, principal, id, cols) = (
            state.storage.clone(),
            self.principal.clone(),
            client_id.clone(),
            collections.clone(),
        );
        let answer = blocking(move || {
            let caller = Caller {
                tenant: &principal.tenant,
                user: &principal.user,
                client_id: &id,
            };
            storage.hello(caller, &cols)
        })
        .await;
        match answer {
            Ok(Ok(hello)) => {
                self.client_id = Some(client_id.clone());
                self.collections = collections;
                ServerMessage::Welcome {
                    client_id,
                    last_mutation_id: hello.last_mutation_id,
                    head: hello.head,
                }
            }
            Ok(Err(refused)) => ServerMessage::Error {
                seq: None,
                error: refused,
            },
            Err(failed) => ServerMessage::Error {
                seq: None,
                error: failed,
            },
        }
    }

    async fn push(
        &mut self,
        state: &Arc<AppState>,
        seq: u64,
        transactions: Vec<WireTransaction>,
        room: usize,
    ) -> ServerMessage {
        let Some(caller) = self.caller() else {
            return error(Some(seq), "hello_required", "send hello first");
        };
        let owned = (
            caller.tenant.to_owned(),
            caller.user.to_owned(),
            caller.client_id.to_owned(),
        );
        if let Err(e) = limits::check_push(&transactions, &state.limits) {
            return ServerMessage::Error {
                seq: Some(seq),
                error: e,
            };
        }
        let started = now_ms();
        let collections = collections_of(&transactions);
        let (storage, limits) = (state.storage.clone(), state.limits.clone());
        let (tenant, user, client_id) = owned.clone();
        let bounds = PushBounds {
            answer_room: room,
            ..limits.push_bounds()
        };
        let answer = blocking(move || {
            let check = |m: &_| limits::check_mutation(m, &limits);
            storage.push(
                Caller {
                    tenant: &tenant,
                    user: &user,
                    client_id: &client_id,
                },
                &transactions,
                now_ms(),
                bounds,
                &check,
            )
        })
        .await;
        let (tenant, user, client_id) = owned;
        let mut log = SyncLog::run("push", user, client_id, started, collections);
        let reply = match answer.and_then(|refused_or_commit| refused_or_commit) {
            Ok(commit) => {
                let statuses: Vec<serde_json::Value> = commit
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
                if let Some(range) = commit.range {
                    let changes = commit
                        .writes
                        .iter()
                        .map(|w| Change {
                            collection: w.collection.clone(),
                            doc: w.doc.clone(),
                        })
                        .collect();
                    state.hub.publish(
                        &tenant,
                        Broadcast {
                            from: self.connection,
                            changes,
                            range,
                        },
                    );
                }
                ServerMessage::PushResult {
                    seq,
                    results: commit.results,
                    range: commit.range,
                }
            }
            Err(e) => {
                log.status = "failed".into();
                log.error = Some(format!("{}: {}", e.code, e.message));
                ServerMessage::Error {
                    seq: Some(seq),
                    error: e,
                }
            }
        };
        record(state, tenant, log).await;
        reply
    }

    async fn pull(
        &mut self,
        state: &Arc<AppState>,
        seq: u64,
        cursor: u64,
        limit: u32,
        room: usize,
    ) -> ServerMessage {
        let Some(caller) = self.caller() else {
            return error(Some(seq), "hello_required", "send hello first");
        };
        if cursor > MAX_WIRE_INT {
            return error(Some(seq), "bad_request", "a cursor is at most 2^63 - 1");
        }
        let bounds = state.limits.page_bounds(limit, room);
        let (tenant, user, client_id) = (
            caller.tenant.to_owned(),
            caller.user.to_owned(),
            caller.client_id.to_owned(),
        );
        let started = now_ms();
        let (storage, t, cols) = (
            state.storage.clone(),
            tenant.clone(),
            self.collections.clone(),
        );
        let answer = blocking(move || storage.pull(&t, cursor, bounds, &cols).map(Ok)).await;
        let mut log = SyncLog::run("pull", user, client_id, started, self.collections.clone());
        let reply = match answer {
            Ok(Ok(page)) => {
                log.synced_count = page.changes.len() as u64;
                log.results =
                    serde_json::json!({ "cursor": page.cursor, "has_more": page.has_more });
                ServerMessage::PullPage {
                    seq,
                    changes: page.changes,
                    cursor: page.cursor,
                    has_more: page.has_more,
                }
            }
            Ok(Err(e)) | Err(e) => {
                log.status = "failed".into();
                log.error = Some(e.message.clone());
                ServerMessage::Error {
                    seq: Some(seq),
                    error: e,
                }
            }
        };
        record(state, tenant, log).await;
        reply
    }
}

fn collections_of(transactions: &[WireTransaction]) -> Vec<String> {
    let mut names: Vec<String> = transactions
        .iter()
        .flat_map(|t| &t.mutations)
        .map(|m| m.collection.clone())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Runs a storage call off the async threads; a storage failure becomes a retryable error.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<Result<T, ErrorInfo>, crate::storage::StorageError> + Send + 'static,
) -> Result<Result<T, ErrorInfo>, ErrorInfo> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(failure)) => {
            tracing::error!(error = %failure, "storage failed");
            Err(failure.to_error_info())
        }
        Err(panic) => {
            tracing::error!(error = %panic, "storage task panicked");
            Err(ErrorInfo::new(
                "internal",
                "the server failed to process the request",
                true,
            ))
        }
    }
}

/// Appends to the sync log; a failure is logged, not sent to the client whose sync succeeded.
async fn record(state: &Arc<AppState>, tenant: String, entry: SyncLog) {
    let (storage, retention) = (state.storage.clone(), state.limits.log_retention());
    if let Err(e) = tokio::task::spawn_blocking(move || storage.log(&tenant, &entry, retention))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
    {
        tracing::error!(error = %e, "could not write the sync log");
    }
}
