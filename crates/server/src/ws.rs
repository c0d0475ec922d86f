//! `GET /v1/sync`: the WebSocket endpoint. The caller is authenticated and its Origin checked
//! before the upgrade; then each text frame carries one message or an array of them, answers go
//! back in one frame per frame received, in order, and the tenant's commits arrive as `changes`.
//! A connection reads on while its pushes commit, so that several share a transaction.

use crate::auth::Principal;
use crate::fanout::{self, Frame};
use crate::http::Refusal;
use crate::limits::{self, RateLimiter};
use crate::session::{decode, Session};
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ferrosync_core::protocol::ErrorCode;
use ferrosync_core::protocol::{ClientMessage, ErrorInfo, ServerMessage};
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

/// Close codes (RFC 6455).
const GOING_AWAY: u16 = 1001;
const POLICY_VIOLATION: u16 = 1008;
const TOO_BIG: u16 = 1009;

/// The most live frames waiting for a connection that go out together, as one array frame.
const COALESCED_FRAMES: usize = 64;
/// Roughly the most bytes of live frames sent together.
const COALESCED_BYTES: usize = 1 << 20;
/// Pushes of a connection queued for the writer and not answered yet, at most: past this, the
/// connection waits for the oldest answer before it reads on.
const QUEUED_PUSHES: usize = 16;

/// Query parameters of the upgrade request.
#[derive(Debug, Deserialize)]
pub struct SyncQuery {
    /// The bearer token (browsers cannot set headers on a WebSocket).
    token: Option<String>,
}

/// Open WebSocket connections per user, held to `--max-connections-per-user`.
#[derive(Debug, Default)]
pub struct UserConnections(Mutex<HashMap<String, usize>>);

/// One of a user's connections; dropping it frees the place.
pub struct UserSlot {
    users: Arc<AppState>,
    key: String,
}

impl UserConnections {
    /// A place for one more connection of `principal`, unless it has `max` open already.
    fn take(state: &Arc<AppState>, principal: &Principal, max: usize) -> Option<UserSlot> {
        let key = format!("{}/{}", principal.tenant, principal.user);
        let mut open = state
            .user_connections
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let count = open.entry(key.clone()).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(UserSlot {
            users: state.clone(),
            key,
        })
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut open = self
            .users
            .user_connections
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Authenticates, checks the Origin and the user's connection count, then upgrades.
pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<SyncQuery>, QueryRejection>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Refusal> {
    let query = query.map_err(|e| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            &e.body_text(),
        )
    })?;
    let ws = ws.map_err(|e| Refusal::new(e.status(), ErrorCode::BadRequest, &e.body_text()))?;
    let principal = crate::http::authorize(&state, &headers, query.token.as_deref())?;
    let max = state.limits.max_connections_per_user;
    let Some(slot) = UserConnections::take(&state, &principal, max) else {
        let message = format!("this user has {max} connections open already");
        return Err(Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyConnections,
            &message,
        ));
    };
    // Frames a little over the limit still arrive, so they can be refused with 1009.
    let ceiling = state.limits.max_frame_bytes.saturating_mul(2);
    Ok(ws
        .max_message_size(ceiling)
        .max_frame_size(ceiling)
        .on_upgrade(move |socket| connection(state, principal, slot, socket)))
}

/// Why a connection closes: a close code and reason, or `None` when the peer went away.
pub type Close = Option<(u16, &'static str)>;

/// A queued push's answer to come.
type Answering = Pin<Box<dyn Future<Output = ServerMessage> + Send>>;

async fn connection(
    state: Arc<AppState>,
    principal: Principal,
    _slot: UserSlot,
    socket: WebSocket,
) {
    let id = state.fanout.connection_id();
    tracing::info!(connection = id, tenant = %principal.tenant, user = %principal.user, "connected");
    let mut frames = state.fanout.subscribe(&principal.tenant);
    let mut session = Session::new(principal, id);
    let (mut tx, mut rx) = socket.split();
    let mut shutdown = state.shutdown.clone();
    let mut rate = RateLimiter::new(state.limits.messages_per_second, 0);
    let opened = Instant::now();
    let mut last_heard = Instant::now();
    let mut heartbeat = tokio::time::interval(state.heartbeat);
    // A peer that takes no frame for this long is gone.
    let send_timeout = state.heartbeat * 3;
    // Pushes queued for the writer and not answered yet, oldest first.
    let mut answering: VecDeque<Answering> = VecDeque::new();
    let close = loop {
        let outgoing = tokio::select! {
            answer = next_answer(&mut session, &mut answering) => answer.map(|m| vec![m]),
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
                // Every frame costs a message, before anything else is done with it.
                let now = opened.elapsed().as_millis() as u64;
                if !rate.allow(now) {
                    break Some((POLICY_VIOLATION, "rate limit exceeded"));
                }
                if text.len() > state.limits.max_frame_bytes {
                    break Some((TOO_BIG, "message too big"));
                }
                take_frame(&state, &mut session, &mut rate, now, &text, &mut answering).await
            }
            // Answers already there go first: the live frames may continue their ranges.
            frame = frames.recv() => ready_answers(&mut session, &mut answering).and_then(|mut out| {
                out.extend(live(&mut session, frame, &mut frames)?.map(Message::Text));
                Ok(out)
            }),
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > state.heartbeat * 3 {
                    break Some((GOING_AWAY, "no heartbeat"));
                }
                Ok(vec![Message::Ping(Default::default())])
            }
            _ = shutdown.changed() => break Some((GOING_AWAY, "server shutting down")),
        };
        let outgoing = match outgoing {
            Ok(outgoing) if outgoing.is_empty() => continue,
            Ok(outgoing) => outgoing,
            Err(close) => break close,
        };
        let sent = async {
            for message in outgoing {
                tx.feed(message).await?;
            }
            tx.flush().await
        };
        match tokio::time::timeout(send_timeout, sent).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break None,
            Err(_) => break Some((GOING_AWAY, "the client does not read")),
        }
    };
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = tokio::time::timeout(send_timeout, tx.send(Message::Close(Some(frame)))).await;
    }
    tracing::info!(
        connection = id,
        reason = close.map_or("closed by client", |c| c.1),
        "disconnected"
    );
}

/// Takes one frame; returns what goes out now. A frame of one push is checked and queued for
/// the writer, and the next frame is read while it commits (several pushes of the connection
/// can then share a transaction); its answer goes out when it comes, in order. Any other frame
/// is answered after the pushes queued before it.
async fn take_frame(
    state: &Arc<AppState>,
    session: &mut Session,
    rate: &mut RateLimiter,
    now: u64,
    text: &str,
    answering: &mut VecDeque<Answering>,
) -> Result<Vec<Message>, Close> {
    let mut outgoing = Vec::new();
    let parsed = match parse(text, &state.limits) {
        Ok(Incoming::One(ClientMessage::Push { seq, transactions })) => {
            let room = state.limits.max_answer_bytes;
            let answer = session.queue_push(state, seq, transactions, room).await;
            answering.push_back(Box::pin(answer));
            while answering.len() > QUEUED_PUSHES {
                outgoing.push(next_answer(session, answering).await?);
            }
            return Ok(outgoing);
        }
        parsed => parsed,
    };
    while !answering.is_empty() {
        outgoing.push(next_answer(session, answering).await?);
    }
    let answer = answer_parsed(state, session, rate, now, parsed).await?;
    outgoing.push(Message::Text(answer.into()));
    Ok(outgoing)
}

/// The oldest queued push's answer, as it goes out (never, while none is queued).
async fn next_answer(
    session: &mut Session,
    answering: &mut VecDeque<Answering>,
) -> Result<Message, Close> {
    let Some(oldest) = answering.front_mut() else {
        return std::future::pending().await;
    };
    let answer = oldest.await;
    answering.pop_front();
    answered(session, &answer)
}

/// The queued pushes' answers that are there already, in order, as they go out.
fn ready_answers(
    session: &mut Session,
    answering: &mut VecDeque<Answering>,
) -> Result<Vec<Message>, Close> {
    let mut outgoing = Vec::new();
    while let Some(answer) = answering
        .front_mut()
        .and_then(|oldest| oldest.as_mut().now_or_never())
    {
        answering.pop_front();
        outgoing.push(answered(session, &answer)?);
    }
    Ok(outgoing)
}

/// An answer going out on its own: the session follows it (`Session::note`), then it is encoded.
fn answered(session: &mut Session, answer: &ServerMessage) -> Result<Message, Close> {
    session.note(answer);
    Ok(Message::Text(encode(answer)?.into()))
}

fn encode(message: &ServerMessage) -> Result<String, Close> {
    serde_json::to_string(message).map_err(|_| Some((POLICY_VIOLATION, "unencodable answer")))
}

/// Answers one frame: its messages in order, in one frame of the same shape, within the
/// frame's answer budget. `Err` closes the connection.
pub async fn answer_frame(
    state: &Arc<AppState>,
    session: &mut Session,
    rate: &mut RateLimiter,
    now: u64,
    text: &str,
) -> Result<String, Close> {
    answer_parsed(state, session, rate, now, parse(text, &state.limits)).await
}

/// [`answer_frame`] for a frame parsed already.
async fn answer_parsed(
    state: &Arc<AppState>,
    session: &mut Session,
    rate: &mut RateLimiter,
    now: u64,
    parsed: Result<Incoming, ErrorInfo>,
) -> Result<String, Close> {
    let (messages, batched) = match parsed {
        Ok(Incoming::One(message)) => (vec![message], false),
        Ok(Incoming::Batch(messages)) => (messages, true),
        Err(error) => return encode(&ServerMessage::Error { seq: None, error }),
    };
    // The frame's first message was paid for on arrival.
    if !messages.iter().skip(1).all(|_| rate.allow(now)) {
        return Err(Some((POLICY_VIOLATION, "rate limit exceeded")));
    }
    let mut answers = Vec::with_capacity(messages.len());
    let mut room = state.limits.max_answer_bytes;
    for message in messages {
        let answer = encode(&session.handle(state, message, room).await)?;
        room = room.saturating_sub(answer.len());
        answers.push(answer);
    }
    Ok(if batched {
        format!("[{}]", answers.join(","))
    } else {
        answers.swap_remove(0)
    })
}

/// A frame's messages.
enum Incoming {
    /// A frame of one message.
    One(ClientMessage),
    /// A frame holding an array of messages.
    Batch(Vec<ClientMessage>),
}

/// One message or an array of messages.
fn parse(text: &str, limits: &limits::Limits) -> Result<Incoming, ErrorInfo> {
    if text.trim_start().starts_with('[') {
        let messages: Vec<ClientMessage> = decode(text, limits)?;
        if messages.is_empty() {
            return Err(ErrorInfo::new(
                ErrorCode::BadRequest,
                "an empty batch",
                false,
            ));
        }
        if messages.len() > limits.max_messages_per_frame {
            let message = format!(
                "a frame of {} messages, over the limit of {}",
                messages.len(),
                limits.max_messages_per_frame
            );
            return Err(ErrorInfo::new(ErrorCode::TooManyMessages, message, false));
        }
        Ok(Incoming::Batch(messages))
    } else {
        Ok(Incoming::One(decode(text, limits)?))
    }
}

/// What goes out for the live frames waiting: the first one received and those queued behind
/// it, as one frame (an array when there are several), each cut to the session's collections.
/// A frame of the session's own commits only is left out when the client's cursor is past it
/// already (its `push_result` moved it) or unknown (it has not pulled yet), else it goes too,
/// so that the client's chain of ranges has no gap. A connection that fell more than the backlog behind gets one resync instead, at
/// the newest version it has been sent (docs/PROTOCOL.md).
fn live(
    session: &mut Session,
    first: Result<Arc<Frame>, RecvError>,
    frames: &mut broadcast::Receiver<Arc<Frame>>,
) -> Result<Option<Utf8Bytes>, Close> {
    let (mut texts, mut bytes, mut lagged, mut head) = (Vec::new(), 0, false, None);
    let mut next = Some(first);
    while let Some(received) = next.take() {
        match received {
            Ok(frame) => {
                head = head.max(Some(frame.range.cursor));
                // Before its first pull the client's cursor is unknown: it pulls anyway.
                let known = frame.only_from(session.connection)
                    && session.cursor.is_none_or(|c| c >= frame.range.cursor);
                if session.client_id.is_some() && !lagged && !known {
                    let text = frame.text_for(&session.collections);
                    session.sent(frame.range);
                    bytes += text.len();
                    texts.push(text);
                }
            }
            Err(RecvError::Lagged(_)) => lagged = true,
            Err(RecvError::Closed) => return Err(Some((GOING_AWAY, "server shutting down"))),
        }
        // Behind by a backlog: everything queued is dropped for the resync.
        if lagged || (texts.len() < COALESCED_FRAMES && bytes < COALESCED_BYTES) {
            next = match frames.try_recv() {
                Ok(frame) => Some(Ok(frame)),
                Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
            };
        }
    }
    if lagged {
        return Ok(session.client_id.as_ref().and(head).map(fanout::resync));
    }
    Ok(match texts.len() {
        0 => None,
        1 => texts.pop(),
        _ => {
            let mut joined = String::with_capacity(bytes + texts.len() + 1);
            for (i, text) in texts.iter().enumerate() {
                joined.push(if i == 0 { '[' } else { ',' });
                joined.push_str(text.as_str());
            }
            joined.push(']');
            Some(joined.into())
        }
    })
}

/// Lets a test or operator shorten the heartbeat (default 20 s).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(20);

#[cfg(test)]
mod tests {
    use super::*;
    use ferrosync_core::protocol::CursorRange;

    fn session() -> Session {
        let principal = Principal {
            user: "u".into(),
            tenant: "t".into(),
        };
        Session {
            client_id: Some("c".into()),
            collections: vec!["todos".into()],
            ..Session::new(principal, 1)
        }
    }

    fn frame(since: u64, cursor: u64) -> Arc<Frame> {
        Arc::new(Frame::new(
            CursorRange { since, cursor },
            vec![2],
            Vec::new(),
        ))
    }

    #[test]
    fn waiting_frames_go_out_together_as_one_array() {
        let (sender, mut receiver) = broadcast::channel(8);
        for v in 1..=3 {
            sender.send(frame(v - 1, v)).unwrap();
        }
        let first = receiver.try_recv().map_err(|_| RecvError::Closed);
        let text = live(&mut session(), first, &mut receiver).unwrap().unwrap();
        let messages: Vec<ServerMessage> = serde_json::from_str(&text).unwrap();
        let ranges: Vec<_> = messages
            .iter()
            .map(|m| match m {
                ServerMessage::Changes { range, .. } => (range.since, range.cursor),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ranges, [(0, 1), (1, 2), (2, 3)]);
    }

    #[test]
    fn a_frame_of_its_own_commits_goes_only_where_the_clients_cursor_needs_it() {
        let own = |since, cursor| {
            Arc::new(Frame::new(
                CursorRange { since, cursor },
                vec![1],
                Vec::new(),
            ))
        };
        let (sender, mut receiver) = broadcast::channel(8);
        let mut session = session();
        // Its push_result moved the cursor past its commit: nothing to send.
        session.cursor = Some(5);
        sender.send(own(4, 5)).unwrap();
        let first = receiver.try_recv().map_err(|_| RecvError::Closed);
        assert!(live(&mut session, first, &mut receiver).unwrap().is_none());
        // Its cursor is behind (the push_result came before another client's changes): the
        // frame goes, so that the client's ranges join up.
        session.cursor = Some(3);
        sender.send(frame(3, 4)).unwrap();
        sender.send(own(4, 6)).unwrap();
        let first = receiver.try_recv().map_err(|_| RecvError::Closed);
        let text = live(&mut session, first, &mut receiver).unwrap().unwrap();
        let messages: Vec<ServerMessage> = serde_json::from_str(&text).unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(session.cursor, Some(6));
    }

    #[test]
    fn a_connection_that_fell_behind_gets_one_resync_at_the_newest_version() {
        let (sender, mut receiver) = broadcast::channel(2);
        for v in 1..=5 {
            sender.send(frame(v - 1, v)).unwrap();
        }
        let first = match receiver.try_recv() {
            Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
            other => panic!("{other:?}"),
        };
        let text = live(&mut session(), first, &mut receiver).unwrap().unwrap();
        assert_eq!(text, fanout::resync(5));
        assert!(matches!(receiver.try_recv(), Err(TryRecvError::Empty)));
    }
}
