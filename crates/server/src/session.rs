//! One client's protocol session, shared by the WebSocket and HTTP endpoints: `hello`, `push`
//! and `pull` checked against the caller, applied through storage, and logged (storage puts
//! what a push committed on its feed, for the fan-out).

use crate::auth::Principal;
use crate::limits;
use crate::storage::{Caller, Push, StorageError, SyncLog};
use crate::{now_ms, AppState};
use ferrosync_core::protocol::ErrorCode;
use ferrosync_core::protocol::{
    ClientMessage, CursorRange, ErrorInfo, ServerMessage, WireTransaction, MAX_WIRE_INT,
    PROTOCOL_VERSION,
};
use ferrosync_core::server::PushBounds;
use ferrosync_core::Version;
use std::future::Future;
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
    /// The client's cursor as far as the answers and live changes sent to it tell (an engine
    /// moves its cursor by the same rules), once it pulled.
    pub cursor: Option<Version>,
}

/// Decodes untrusted JSON, refusing nesting deeper than the limit before parsing it.
pub fn decode<T: serde::de::DeserializeOwned>(
    text: &str,
    limits: &limits::Limits,
) -> Result<T, ErrorInfo> {
    if !limits::depth_within(text, limits.max_depth) {
        let message = format!("JSON nests deeper than {} levels", limits.max_depth);
        return Err(ErrorInfo::new(ErrorCode::TooDeep, message, false));
    }
    serde_json::from_str(text).map_err(|e| {
        ErrorInfo::new(
            ErrorCode::BadRequest,
            format!("not a valid message: {e}"),
            false,
        )
    })
}

/// The answer to a push or pull arriving once its frame's answers spent their room (rule 9).
fn busy(seq: u64) -> ServerMessage {
    ServerMessage::Error {
        seq: Some(seq),
        error: ErrorInfo::new(
            ErrorCode::Busy,
            "this frame's answers reached the server's size limit; send it again",
            true,
        ),
    }
}

fn error(seq: Option<u64>, code: ErrorCode, message: impl Into<String>) -> ServerMessage {
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
            cursor: None,
        }
    }

    /// Follows the client's cursor over a range of changes sent to it (a push's, or live): it
    /// moves when it was at or past the range's start.
    pub fn sent(&mut self, range: CursorRange) {
        if let Some(cursor) = self.cursor.as_mut().filter(|c| range.since <= **c) {
            *cursor = (*cursor).max(range.cursor);
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
        let answer = self.answer(state, message, room).await;
        self.note(&answer);
        answer
    }

    /// Follows the client's cursor over an answer sent to it (a pull page, a push's range).
    pub fn note(&mut self, answer: &ServerMessage) {
        match answer {
            ServerMessage::PullPage { cursor, .. } => {
                self.cursor = Some(self.cursor.map_or(*cursor, |c| c.max(*cursor)));
            }
            ServerMessage::PushResult {
                range: Some(range), ..
            } => self.sent(*range),
            _ => {}
        }
    }

    async fn answer(
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
            ClientMessage::Pull { seq, .. } if room == 0 => busy(seq),
            ClientMessage::Push { seq, transactions } => {
                self.queue_push(state, seq, transactions, room).await.await
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
                ErrorCode::UnsupportedProtocol,
                format!("this server speaks protocol {PROTOCOL_VERSION}, not {protocol}"),
            );
        }
        if !valid_name(&client_id) {
            return error(
                None,
                ErrorCode::BadRequest,
                format!("a client id is 1 to {MAX_NAME} bytes of printable characters"),
            );
        }
        if collections.len() > state.limits.max_collections {
            return error(
                None,
                ErrorCode::TooManyCollections,
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
                ErrorCode::BadRequest,
                format!("a collection name is 1 to {MAX_NAME} bytes of printable characters"),
            );
        }
        let caller = Caller {
            tenant: &self.principal.tenant,
            user: &self.principal.user,
            client_id: &client_id,
        };
        match state.storage.hello(caller, &collections).await {
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
                error: failure(&failed),
            },
        }
    }

    /// Checks a push and queues it for the writer (see [`crate::storage::Storage::queue_push`]);
    /// returns its answer to come, which the caller passes to [`Session::note`] when it sends it.
    /// Pushes queued one after another are decided in that order.
    pub async fn queue_push(
        &self,
        state: &Arc<AppState>,
        seq: u64,
        transactions: Vec<WireTransaction>,
        room: usize,
    ) -> impl Future<Output = ServerMessage> + Send + 'static {
        let queued = match self.push(state, seq, transactions, room) {
            Ok((caller, push)) => Ok(state.storage.queue_push(caller, push).await),
            Err(refused) => Err(refused),
        };
        async move {
            let outcome = match queued {
                Ok(outcome) => outcome.await,
                Err(refused) => return refused,
            };
            match outcome {
                Ok(Ok(commit)) => ServerMessage::PushResult {
                    seq,
                    results: commit.results,
                    range: commit.range,
                },
                Ok(Err(refused)) => ServerMessage::Error {
                    seq: Some(seq),
                    error: refused,
                },
                Err(failed) => ServerMessage::Error {
                    seq: Some(seq),
                    error: failure(&failed),
                },
            }
        }
    }

    /// The push for storage, or the answer refusing it.
    fn push(
        &self,
        state: &Arc<AppState>,
        seq: u64,
        transactions: Vec<WireTransaction>,
        room: usize,
    ) -> Result<(Caller<'_>, Push), ServerMessage> {
        if room == 0 {
            return Err(busy(seq));
        }
        let Some(caller) = self.caller() else {
            return Err(error(
                Some(seq),
                ErrorCode::HelloRequired,
                "send hello first",
            ));
        };
        if let Err(e) = limits::check_push(&transactions, &state.limits) {
            return Err(ServerMessage::Error {
                seq: Some(seq),
                error: e,
            });
        }
        let limits = state.limits.clone();
        let log = SyncLog::run(
            "push",
            caller.user.to_owned(),
            caller.client_id.to_owned(),
            now_ms(),
            collections_of(&transactions),
        );
        let push = Push {
            transactions,
            now: now_ms(),
            bounds: PushBounds {
                answer_room: room,
                ..limits.push_bounds()
            },
            check: Arc::new(move |m| limits::check_mutation(m, &limits)),
            origin: self.connection,
            log,
        };
        Ok((caller, push))
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
            return error(Some(seq), ErrorCode::HelloRequired, "send hello first");
        };
        if cursor > MAX_WIRE_INT {
            return error(
                Some(seq),
                ErrorCode::BadRequest,
                "a cursor is at most 2^63 - 1",
            );
        }
        let bounds = state.limits.page_bounds(limit, room);
        let started = now_ms();
        let answer = state
            .storage
            .pull(caller.tenant, cursor, bounds, Some(&self.collections))
            .await;
        let mut log = SyncLog::run(
            "pull",
            caller.user.to_owned(),
            caller.client_id.to_owned(),
            started,
            self.collections.clone(),
        );
        let reply = match answer {
            Ok(page) => {
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
            Err(failed) => {
                log.status = "failed".into();
                log.error = Some(failed.to_string());
                ServerMessage::Error {
                    seq: Some(seq),
                    error: failure(&failed),
                }
            }
        };
        // A failure is logged, not sent to the client whose pull succeeded.
        if let Err(e) = state.storage.log(caller.tenant, log).await {
            tracing::error!(error = %e, "could not write the sync log");
        }
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

/// A storage failure as the client sees it (retryable); the details go to the server's log.
fn failure(failed: &StorageError) -> ErrorInfo {
    tracing::error!(error = %failed, "storage failed");
    failed.to_error_info()
}
