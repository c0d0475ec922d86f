//! `GET /v1/sync`: the WebSocket endpoint. The caller is authenticated and its Origin checked
//! before the upgrade; then each text frame carries one message or an array of them, answers go
//! back in one frame per frame received, and the tenant's commits arrive as `changes`.

use crate::auth::Principal;
use crate::hub::Broadcast;
use crate::limits::{self, RateLimiter};
use crate::session::{decode, Session};
use crate::AppState;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use ferrosync_core::protocol::{ClientMessage, ErrorInfo, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// Close codes (RFC 6455).
const GOING_AWAY: u16 = 1001;
const POLICY_VIOLATION: u16 = 1008;
const TOO_BIG: u16 = 1009;

/// Query parameters of the upgrade request.
#[derive(Debug, Deserialize)]
pub struct SyncQuery {
    /// The bearer token (browsers cannot set headers on a WebSocket).
    token: Option<String>,
}

/// Authenticates, checks the Origin, then upgrades.
pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<SyncQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let principal = match crate::http::authorize(&state, &headers, query.token.as_deref()) {
        Ok(principal) => principal,
        Err(refusal) => return refusal.into_response(),
    };
    // Frames a little over the limit still arrive, so they can be refused with 1009.
    let ceiling = state.limits.max_frame_bytes.saturating_mul(2);
    ws.max_message_size(ceiling)
        .max_frame_size(ceiling)
        .on_upgrade(move |socket| connection(state, principal, socket))
}

async fn connection(state: Arc<AppState>, principal: Principal, socket: WebSocket) {
    let id = state.hub.connection_id();
    tracing::info!(connection = id, tenant = %principal.tenant, user = %principal.user, "connected");
    let mut changes = state.hub.subscribe(&principal.tenant);
    let mut session = Session::new(principal, id);
    let (mut tx, mut rx) = socket.split();
    let mut shutdown = state.shutdown.clone();
    let mut rate = RateLimiter::new(state.limits.messages_per_second, 0);
    let opened = Instant::now();
    let mut last_heard = Instant::now();
    let mut heartbeat = tokio::time::interval(state.heartbeat);
    let close = loop {
        tokio::select! {
            frame = rx.next() => {
                last_heard = Instant::now();
                let text = match frame {
                    None => break None,
                    Some(Err(e)) => {
                        let too_big = e.to_string().contains("too long");
                        break Some(if too_big { (TOO_BIG, "message too big") } else { (POLICY_VIOLATION, "malformed frame") });
                    }
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => break Some((POLICY_VIOLATION, "text frames only")),
                    Some(Ok(Message::Close(_))) => break None,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                };
                if text.len() > state.limits.max_frame_bytes {
                    break Some((TOO_BIG, "message too big"));
                }
                let answer = match parse(&text, &state.limits) {
                    Err(error) => serde_json::to_string(&ServerMessage::Error { seq: None, error }),
                    Ok((messages, batched)) => {
                        let now = opened.elapsed().as_millis() as u64;
                        if !messages.iter().all(|_| rate.allow(now)) {
                            break Some((POLICY_VIOLATION, "rate limit exceeded"));
                        }
                        let mut answers = Vec::with_capacity(messages.len());
                        for message in messages {
                            answers.push(session.handle(&state, message).await);
                        }
                        if batched { serde_json::to_string(&answers) } else { serde_json::to_string(&answers[0]) }
                    }
                };
                let Ok(answer) = answer else { break Some((POLICY_VIOLATION, "unencodable answer")) };
                if tx.send(Message::Text(answer.into())).await.is_err() {
                    break None;
                }
            }
            commit = changes.recv() => {
                let message = match commit {
                    Ok(commit) => live_changes(&session, &commit),
                    // Fell behind: the next live message's range shows the gap and the client pulls.
                    Err(RecvError::Lagged(_)) => None,
                    Err(RecvError::Closed) => break Some((GOING_AWAY, "server shutting down")),
                };
                if let Some(message) = message {
                    let Ok(json) = serde_json::to_string(&message) else { continue };
                    if tx.send(Message::Text(json.into())).await.is_err() {
                        break None;
                    }
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > state.heartbeat * 3 {
                    break Some((GOING_AWAY, "no heartbeat"));
                }
                if tx.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
            }
            _ = shutdown.changed() => break Some((GOING_AWAY, "server shutting down")),
        }
    };
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = tx.send(Message::Close(Some(frame))).await;
    }
    tracing::info!(
        connection = id,
        reason = close.map_or("closed by client", |c| c.1),
        "disconnected"
    );
}

/// One message or an array of messages; `true` when it was an array.
fn parse(text: &str, limits: &limits::Limits) -> Result<(Vec<ClientMessage>, bool), ErrorInfo> {
    if text.trim_start().starts_with('[') {
        let messages: Vec<ClientMessage> = decode(text, limits)?;
        if messages.is_empty() {
            return Err(ErrorInfo::new("bad_request", "an empty batch", false));
        }
        Ok((messages, true))
    } else {
        Ok((vec![decode(text, limits)?], false))
    }
}

/// The commit as this session should see it: nothing from itself, only its collections.
fn live_changes(session: &Session, commit: &Broadcast) -> Option<ServerMessage> {
    if commit.from == session.connection || session.client_id.is_none() {
        return None;
    }
    let changes = commit
        .changes
        .iter()
        .filter(|c| session.collections.contains(&c.collection))
        .cloned()
        .collect();
    Some(ServerMessage::Changes {
        changes,
        range: commit.range,
    })
}

/// Lets a test or operator shorten the heartbeat (default 20 s).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(20);
