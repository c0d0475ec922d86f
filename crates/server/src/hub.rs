//! Live fan-out: committed changes go to the tenant's other WebSocket connections.

use ferrosync_core::protocol::{Change, CursorRange};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// How many commits a slow connection may fall behind before it misses some (it then pulls).
const BACKLOG: usize = 1024;

/// Changes one commit made, and the connection that made them (0: an HTTP request).
#[derive(Debug)]
pub struct Broadcast {
    /// The committing connection, which already has the changes.
    pub from: u64,
    /// The changed documents.
    pub changes: Vec<Change>,
    /// All of the tenant's changes in this range.
    pub range: CursorRange,
}

/// Per-tenant broadcast channels.
#[derive(Debug, Default)]
pub struct Hub {
    channels: Mutex<HashMap<String, broadcast::Sender<Arc<Broadcast>>>>,
    next_connection: AtomicU64,
}

impl Hub {
    /// A new id for a WebSocket connection (never 0).
    pub fn connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Receives the tenant's commits from now on.
    pub fn subscribe(&self, tenant: &str) -> broadcast::Receiver<Arc<Broadcast>> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels
            .entry(tenant.to_owned())
            .or_insert_with(|| broadcast::channel(BACKLOG).0)
            .subscribe()
    }

    /// Sends a commit to the tenant's connections.
    pub fn publish(&self, tenant: &str, broadcast: Broadcast) {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sender) = channels.get(tenant) {
            if sender.send(Arc::new(broadcast)).is_err() {
                channels.remove(tenant); // nobody listens any more
            }
        }
    }
}
