//! Connections to the sync server: a WebSocket (live changes, many messages per frame) or HTTP
//! polling. Either reports what happens as [`Event`]s; reconnecting is the driver's decision.

mod polling;
mod websocket;

use crate::options::{Remote, Transport};
use ferrosync_core::protocol::{ClientMessage, ServerMessage};
use std::rc::Rc;

/// What a connection reports.
#[derive(Debug)]
pub enum Event {
    /// Ready to carry messages (`live`: the server pushes changes).
    Open {
        /// A WebSocket (true) or polling (false).
        live: bool,
    },
    /// Gone, or the server is unreachable; nothing more comes from this connection.
    Closed {
        /// Why, for `lastError`.
        reason: String,
    },
    /// Messages from the server, in order.
    Received(Vec<ServerMessage>),
}

/// Where a connection's events go.
pub type Events = Rc<dyn Fn(Event)>;

/// An open (or opening) connection; dropping it closes it without further events.
pub enum Connection {
    /// A WebSocket.
    WebSocket(websocket::Socket),
    /// HTTP polling.
    Polling(polling::Poller),
}

impl Connection {
    /// Connects to server number `index` of `remote` (counted round the list) as `client_id`.
    pub fn open(remote: &Remote, index: usize, client_id: &str, events: Events) -> Connection {
        let token = remote.auth_token.as_deref();
        match &remote.transports[index % remote.transports.len()] {
            Transport::WebSocket { url, base } => {
                Connection::WebSocket(websocket::Socket::open(url, base, token, events))
            }
            Transport::Polling { base } => {
                Connection::Polling(polling::Poller::open(base, token, client_id, events))
            }
        }
    }

    /// Sends messages, in order (one frame on a WebSocket).
    pub fn send(&self, messages: Vec<ClientMessage>) {
        match self {
            Connection::WebSocket(socket) => socket.send(&messages),
            Connection::Polling(poller) => poller.send(messages),
        }
    }
}
