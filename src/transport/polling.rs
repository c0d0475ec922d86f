//! The HTTP polling transport: each client message is one `POST {base}/hello|push|pull` with
//! `Authorization: Bearer` and `x-ferrosync-client`; each answer is one server message. A
//! request that cannot reach the server closes the "connection" so the driver reconnects.

use super::{Event, Events};
use ferrosync_core::protocol::ErrorCode;
use ferrosync_core::protocol::{ClientMessage, ErrorInfo, ServerMessage};
use gloo_net::http::Request;
use std::cell::Cell;
use std::rc::Rc;

/// Polling requests; dropping it silences answers still on the way.
pub struct Poller {
    base: String,
    token: Option<String>,
    client_id: String,
    events: Events,
    open: Rc<Cell<bool>>,
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.open.set(false);
    }
}

impl Poller {
    /// Starts polling `base`; there is nothing to connect, so it is open at once.
    pub fn open(base: &str, token: Option<&str>, client_id: &str, events: Events) -> Poller {
        let open = Rc::new(Cell::new(true));
        let (first, alive) = (events.clone(), open.clone());
        // Reported from a task, like a WebSocket's open, never from inside the caller.
        wasm_bindgen_futures::spawn_local(async move {
            if alive.get() {
                first(Event::Open { live: false });
            }
        });
        Poller {
            base: base.to_owned(),
            token: token.map(str::to_owned),
            client_id: client_id.to_owned(),
            events,
            open,
        }
    }

    /// Sends each message as its own request.
    pub fn send(&self, messages: Vec<ClientMessage>) {
        for message in messages {
            let (path, seq) = match &message {
                ClientMessage::Hello { .. } => ("hello", None),
                ClientMessage::Push { seq, .. } => ("push", Some(*seq)),
                ClientMessage::Pull { seq, .. } => ("pull", Some(*seq)),
                // Every request shows whether the server is there.
                ClientMessage::Ping => continue,
            };
            let mut request = Request::post(&format!("{}/{path}", self.base))
                .header("content-type", "application/json")
                .header("x-ferrosync-client", &self.client_id);
            if let Some(token) = &self.token {
                request = request.header("authorization", &format!("Bearer {token}"));
            }
            let body = serde_json::to_string(&message).expect("client messages serialize");
            let (events, open) = (self.events.clone(), self.open.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let event = match request.body(body) {
                    Ok(request) => exchange(request, seq).await,
                    Err(e) => Event::Closed {
                        reason: format!("cannot build the request: {e}"),
                    },
                };
                if open.get() {
                    if let Event::Closed { .. } = event {
                        open.set(false);
                    }
                    events(event);
                }
            });
        }
    }
}

/// One request and its answer as an event. A refusal (4xx/5xx) is an `error` message for the
/// request's `seq`; a network failure closes the connection.
async fn exchange(request: Request, seq: Option<u64>) -> Event {
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => {
            return Event::Closed {
                reason: format!("the server is unreachable: {e}"),
            }
        }
    };
    let status = response.status();
    let text = match response.text().await {
        Ok(text) => text,
        Err(e) => {
            return Event::Closed {
                reason: format!("the answer could not be read: {e}"),
            }
        }
    };
    let message = match serde_json::from_str::<ServerMessage>(&text) {
        Ok(ServerMessage::Error { seq: None, error }) => ServerMessage::Error { seq, error },
        Ok(message) => message,
        Err(_) => ServerMessage::Error {
            seq,
            error: ErrorInfo::new(
                ErrorCode::HttpError,
                format!(
                    "HTTP {status}: {}",
                    text.chars().take(200).collect::<String>()
                ),
                status >= 500,
            ),
        },
    };
    Event::Received(vec![message])
}
