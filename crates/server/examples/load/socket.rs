//! A load client's WebSocket: its type, and sending one protocol message on it.

use ferrosync_core::protocol::ClientMessage;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A client's connection to a server node.
pub type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends `message` as one text frame.
pub async fn send(socket: &mut Socket, message: &ClientMessage) -> Result<(), String> {
    let text = serde_json::to_string(message).map_err(|e| format!("cannot encode: {e}"))?;
    socket
        .send(Message::Text(text.into()))
        .await
        .map_err(|e| format!("cannot send: {e}"))
}
