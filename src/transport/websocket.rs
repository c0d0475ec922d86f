//! The WebSocket transport: one task owns the socket, writes frames queued by `send`, reads
//! frames (one message or an array), and sends a `ping` every [`HEARTBEAT_MS`]; a connection
//! that stays silent for [`SILENCE_MS`] is closed as dead.

use super::{Event, Events};
use crate::js::now;
use ferrosync_core::protocol::{
    server_frame, ClientMessage, ErrorInfo, ServerMessage, FRAME_MESSAGES,
};
use futures::channel::mpsc;
use futures::stream::{SplitSink, SplitStream};
use futures::{Sink, SinkExt, StreamExt};
use gloo_net::http::Request;
use gloo_net::websocket::{futures::WebSocket, Message, State, WebSocketError};
use gloo_timers::future::IntervalStream;
use std::pin::Pin;

/// How often a heartbeat goes out.
const HEARTBEAT_MS: u32 = 15_000;
/// A handshake not finished in this time is given up.
const CONNECT_TIMEOUT_MS: u32 = 10_000;
/// A frame stops growing at about this many bytes: half the server's default limit.
const FRAME_BYTES: usize = 512 * 1024;

/// Silence longer than this (two missed heartbeats) means the connection is dead.
const SILENCE_MS: u64 = 2 * HEARTBEAT_MS as u64 + 5_000;

/// A WebSocket connection; dropping it closes the socket.
pub struct Socket {
    frames: mpsc::UnboundedSender<String>,
}

impl Socket {
    /// Opens `url` (with `token` as the `token` query parameter). If the server refuses it,
    /// the reason is asked over HTTP at `base` and reported as a server error.
    pub fn open(url: &str, base: &str, token: Option<&str>, events: Events) -> Socket {
        let address = match token {
            Some(token) => format!("{url}?token={}", js_sys::encode_uri_component(token)),
            None => url.to_owned(),
        };
        let (base, token) = (base.to_owned(), token.map(str::to_owned));
        let (frames, queue) = mpsc::unbounded();
        wasm_bindgen_futures::spawn_local(async move {
            let reason = match run(&address, queue, &events).await {
                Ended::NeverOpened(reason) => match refusal(&base, token.as_deref()).await {
                    Some(refused) => {
                        let reason = format!("{}: {}", refused.code, refused.message);
                        events(Event::Received(vec![ServerMessage::Error {
                            seq: None,
                            error: refused,
                        }]));
                        reason
                    }
                    None => reason,
                },
                Ended::Closed(reason) => reason,
            };
            events(Event::Closed { reason });
        });
        Socket { frames }
    }

    /// Queues `messages` as frames of at most [`FRAME_MESSAGES`] messages (the server's
    /// guarantee) and about [`FRAME_BYTES`] (a message larger on its own goes alone).
    pub fn send(&self, messages: &[ClientMessage]) {
        let mut frame: Vec<String> = Vec::new();
        let mut bytes = 0;
        for message in messages {
            let text = serde_json::to_string(message).expect("client messages serialize");
            if !frame.is_empty()
                && (frame.len() == FRAME_MESSAGES || bytes + text.len() > FRAME_BYTES)
            {
                self.send_frame(std::mem::take(&mut frame));
                bytes = 0;
            }
            bytes += text.len() + 1;
            frame.push(text);
            // Each push ends its frame, so the server answers it on its own and the
            // acknowledgements of the first push come back while the next are applied.
            if matches!(message, ClientMessage::Push { .. }) {
                self.send_frame(std::mem::take(&mut frame));
                bytes = 0;
            }
        }
        if !frame.is_empty() {
            self.send_frame(frame);
        }
    }

    /// Queues one frame: a single message, or an array of them.
    fn send_frame(&self, mut messages: Vec<String>) {
        let frame = if messages.len() == 1 {
            messages.swap_remove(0)
        } else {
            format!("[{}]", messages.join(","))
        };
        // The task is gone only after the connection closed, which it has reported.
        let _ = self.frames.unbounded_send(frame);
    }
}

/// How a connection ended.
enum Ended {
    /// It never opened (refused, or the server is unreachable).
    NeverOpened(String),
    /// It was open; why it closed.
    Closed(String),
}

/// Why the server refuses this client, asked over HTTP (an authenticated `GET {base}/status`):
/// its structured error for a 4xx answer, `None` if it accepts or cannot be reached.
async fn refusal(base: &str, token: Option<&str>) -> Option<ErrorInfo> {
    let mut request = Request::get(&format!("{base}/status?limit=1"));
    if let Some(token) = token {
        request = request.header("authorization", &format!("Bearer {token}"));
    }
    let response = request.send().await.ok()?;
    if !(400..500).contains(&response.status()) {
        return None;
    }
    match serde_json::from_str(&response.text().await.ok()?).ok()? {
        ServerMessage::Error { error, .. } => Some(error),
        _ => None,
    }
}

/// Runs the connection until it ends.
async fn run(url: &str, queue: mpsc::UnboundedReceiver<String>, events: &Events) -> Ended {
    let mut socket = match WebSocket::open(url) {
        Ok(socket) => socket,
        Err(e) => return Ended::NeverOpened(format!("cannot open a WebSocket: {e}")),
    };
    // Ready once the socket is no longer connecting: open, or already closed (refused); a
    // handshake that hangs is given up after CONNECT_TIMEOUT_MS.
    let ready = {
        let ready = futures::future::poll_fn(|cx| Pin::new(&mut socket).poll_ready(cx));
        let timeout = gloo_timers::future::TimeoutFuture::new(CONNECT_TIMEOUT_MS);
        futures::pin_mut!(ready);
        match futures::future::select(ready, timeout).await {
            futures::future::Either::Left((ready, _)) => ready.is_ok(),
            futures::future::Either::Right(_) => false,
        }
    };
    if !ready || !matches!(socket.state(), State::Open) {
        // Dropping it would not stop a handshake still under way.
        let _ = socket.close(None, None);
        return Ended::NeverOpened("the server refused the connection or is unreachable".into());
    }
    events(Event::Open { live: true });
    let (write, read) = socket.split();
    Ended::Closed(serve(write, read, queue, events).await)
}

/// Carries frames both ways, with heartbeats, until the connection ends; returns why.
async fn serve(
    mut write: SplitSink<WebSocket, Message>,
    read: SplitStream<WebSocket>,
    mut queue: mpsc::UnboundedReceiver<String>,
    events: &Events,
) -> String {
    let mut read = read.fuse();
    let mut heartbeat = IntervalStream::new(HEARTBEAT_MS).fuse();
    let mut last_heard = now();
    loop {
        futures::select! {
            frame = queue.next() => match frame {
                Some(text) => {
                    if let Err(e) = write.send(Message::Text(text)).await {
                        return describe(&e);
                    }
                }
                // The driver dropped the connection.
                None => {
                    let _ = write.close().await;
                    return "closed".into();
                }
            },
            incoming = read.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    last_heard = now();
                    match server_frame(&text) {
                        Ok(messages) => {
                            let messages: Vec<ServerMessage> = messages
                                .into_iter()
                                .filter(|m| *m != ServerMessage::Pong)
                                .collect();
                            if !messages.is_empty() {
                                events(Event::Received(messages));
                            }
                        }
                        Err(e) => return format!("the server sent an unreadable frame: {e}"),
                    }
                }
                Some(Ok(Message::Bytes(_))) => {
                    return "the server sent a binary frame".into();
                }
                Some(Err(e)) => return describe(&e),
                None => return "the connection closed".into(),
            },
            _ = heartbeat.next() => {
                if now().saturating_sub(last_heard) > SILENCE_MS {
                    return "no answer from the server (heartbeat)".into();
                }
                let ping = serde_json::to_string(&ClientMessage::Ping).expect("ping serializes");
                if let Err(e) = write.send(Message::Text(ping)).await {
                    return describe(&e);
                }
            },
        }
    }
}

fn describe(e: &WebSocketError) -> String {
    match e {
        WebSocketError::ConnectionClose(close) if close.reason.is_empty() => {
            format!("the connection closed (code {})", close.code)
        }
        WebSocketError::ConnectionClose(close) => {
            format!(
                "the connection closed (code {}: {})",
                close.code, close.reason
            )
        }
        other => other.to_string(),
    }
}
