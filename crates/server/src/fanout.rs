//! Live fan-out: what a tenant's writes committed goes to its WebSocket connections on this
//! node. One relay task per tenant with connections turns the storage feed into frames, each
//! serialized once and shared by every connection of the tenant; commits of other nodes
//! (PostgreSQL notifications) are read back from storage from the last version relayed. A
//! connection that falls too far behind is sent a resync (docs/PROTOCOL.md, `changes`).

use crate::storage::{Committed, Feed, PageBounds, Storage};
use axum::extract::ws::Utf8Bytes;
use ferrosync_core::protocol::{Change, CursorRange};
use ferrosync_core::Version;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::{broadcast, mpsc};

/// Frames a connection may fall behind by before it is told to resync.
const BACKLOG: usize = 1024;

/// How much one storage read of a relay catching up carries.
const CATCH_UP: PageBounds = PageBounds {
    changes: 1_000,
    bytes: 1 << 20,
};

/// A `changes` message, serialized once for every connection of the tenant.
#[derive(Debug)]
pub struct Frame {
    /// Every change of the tenant in this range is included.
    pub range: CursorRange,
    /// The connections whose pushes made the changes (empty: read back from storage).
    origins: Vec<u64>,
    /// The collections of the changes, without repeats.
    collections: HashSet<String>,
    /// Each change's collection and JSON.
    changes: Vec<(String, String)>,
    /// The whole message.
    text: Utf8Bytes,
}

impl Frame {
    /// A frame of `changes` (each document once) covering `range`.
    pub fn new(range: CursorRange, origins: Vec<u64>, changes: Vec<Change>) -> Self {
        let changes: Vec<(String, String)> = changes
            .into_iter()
            .map(|change| {
                let json = serde_json::to_string(&change).expect("a change serializes");
                (change.collection, json)
            })
            .collect();
        let text = encode(range, changes.iter().map(|(_, json)| json.as_str())).into();
        Self {
            range,
            origins,
            collections: changes.iter().map(|(c, _)| c.clone()).collect(),
            changes,
            text,
        }
    }

    /// Whether it holds only the changes of `connection`'s own pushes.
    pub fn only_from(&self, connection: u64) -> bool {
        !self.origins.is_empty() && self.origins.iter().all(|&o| o == connection)
    }

    /// The message for a connection that syncs `collections`: shared when it syncs every
    /// collection of the frame, else joined from the shared changes of its collections (never
    /// serialized again).
    pub fn text_for(&self, collections: &[String]) -> Utf8Bytes {
        if self.collections.iter().all(|c| collections.contains(c)) {
            return self.text.clone();
        }
        let kept = self
            .changes
            .iter()
            .filter(|(c, _)| collections.contains(c))
            .map(|(_, json)| json.as_str());
        encode(self.range, kept).into()
    }
}

/// A `changes` message from changes already serialized; the range comes first, so a reader
/// finds it without scanning the changes.
fn encode<'a>(range: CursorRange, changes: impl Iterator<Item = &'a str>) -> String {
    let mut text = format!(
        r#"{{"type":"changes","range":{{"since":{},"cursor":{}}},"changes":["#,
        range.since, range.cursor
    );
    for (i, change) in changes.enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(change);
    }
    text.push_str("]}");
    text
}

/// A resync: a `changes` message with no changes and the empty range `(head, head]`, so that a
/// client whose cursor is behind `head` pulls, and one at `head` has nothing to do.
pub fn resync(head: Version) -> Utf8Bytes {
    encode(
        CursorRange {
            since: head,
            cursor: head,
        },
        std::iter::empty(),
    )
    .into()
}

/// What a relay is told.
enum Event {
    /// This node committed.
    Committed(Committed),
    /// Another node committed up to this version.
    Remote(Version),
    /// Notifications may have been lost: read whatever is new.
    CatchUp,
}

/// A tenant's relay: its frames, and the queue of its task.
struct Relay {
    frames: broadcast::Sender<Arc<Frame>>,
    events: mpsc::UnboundedSender<Event>,
}

struct Inner {
    storage: Arc<Storage>,
    relays: Mutex<HashMap<String, Relay>>,
    next_connection: AtomicU64,
}

/// The fan-out of one node.
pub struct Fanout {
    inner: Arc<Inner>,
}

impl Fanout {
    /// Starts relaying `storage`'s feed (it takes the feed).
    pub fn start(storage: Arc<Storage>) -> Self {
        let feed = storage.feed();
        let inner = Arc::new(Inner {
            storage,
            relays: Mutex::default(),
            next_connection: AtomicU64::new(0),
        });
        tokio::spawn(dispatch(Arc::downgrade(&inner), feed));
        Self { inner }
    }

    /// A new id for a WebSocket connection (never 0).
    pub fn connection_id(&self) -> u64 {
        self.inner.next_connection.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The tenant's frames from now on (its relay starts with its first connection).
    pub fn subscribe(&self, tenant: &str) -> broadcast::Receiver<Arc<Frame>> {
        let mut relays = self.inner.relays.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(relay) = relays.get(tenant).filter(|r| !r.events.is_closed()) {
            return relay.frames.subscribe();
        }
        let (frames, receiver) = broadcast::channel(BACKLOG);
        let (events, queue) = mpsc::unbounded_channel();
        relays.insert(
            tenant.to_owned(),
            Relay {
                frames: frames.clone(),
                events,
            },
        );
        tokio::spawn(relay(self.inner.clone(), tenant.to_owned(), frames, queue));
        receiver
    }
}

/// Routes the storage feed to the relays of the tenants with connections here.
async fn dispatch(inner: Weak<Inner>, mut feed: mpsc::UnboundedReceiver<Feed>) {
    while let Some(event) = feed.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        let relays = inner.relays.lock().unwrap_or_else(|p| p.into_inner());
        let send = |tenant: &str, event| {
            if let Some(relay) = relays.get(tenant) {
                let _ = relay.events.send(event);
            }
        };
        match event {
            Feed::Committed(committed) => {
                let tenant = committed.tenant.clone();
                send(&tenant, Event::Committed(committed));
            }
            Feed::Remote { tenant, head } => send(&tenant, Event::Remote(head)),
            Feed::Resubscribe => {
                for relay in relays.values() {
                    let _ = relay.events.send(Event::CatchUp);
                }
            }
        }
    }
}

/// A tenant's relay: sends each commit on as a frame, in version order, and reads from storage
/// what it did not see commit (other nodes' writes, lost notifications); ends with the tenant's
/// last connection.
async fn relay(
    inner: Arc<Inner>,
    tenant: String,
    frames: broadcast::Sender<Arc<Frame>>,
    mut events: mpsc::UnboundedReceiver<Event>,
) {
    // What was committed before the first connection subscribed, its client pulls; other
    // nodes' commits are read from there on.
    let mut state = RelayState {
        storage: inner.storage.clone(),
        tenant: tenant.clone(),
        frames: frames.clone(),
        relayed: None,
        baseline: inner.storage.head(&tenant).await.ok(),
    };
    loop {
        tokio::select! {
            first = events.recv() => {
                let Some(first) = first else { return };
                let mut batch = vec![first];
                while let Ok(event) = events.try_recv() {
                    batch.push(event);
                }
                state.handle(batch).await;
            }
            () = frames.closed() => {}
        }
        if frames.receiver_count() == 0 {
            let mut relays = inner.relays.lock().unwrap_or_else(|p| p.into_inner());
            if frames.receiver_count() == 0 {
                if relays
                    .get(&tenant)
                    .is_some_and(|r| r.frames.same_channel(&frames))
                {
                    relays.remove(&tenant);
                }
                return;
            }
        }
    }
}

/// A relay's position: every change of the tenant up to `relayed` has been sent on.
struct RelayState {
    storage: Arc<Storage>,
    tenant: String,
    frames: broadcast::Sender<Arc<Frame>>,
    /// `None` until the relay sent something on. This node's commits are sent on unless they
    /// are at or below it (never because of `baseline`: a commit may land between the
    /// subscription and the reading of the head).
    relayed: Option<Version>,
    /// The tenant's head when the relay started (if it could be read): where reading other
    /// nodes' commits starts before anything was relayed.
    baseline: Option<Version>,
}

/// Commits sent on as one frame.
struct Merged {
    range: CursorRange,
    origins: Vec<u64>,
    changes: Vec<Change>,
}

impl RelayState {
    /// Handles the events that were waiting: consecutive commits continuing what was relayed
    /// go out merged in one frame; a gap, another node's commit or lost notifications make the
    /// relay read from storage.
    async fn handle(&mut self, events: Vec<Event>) {
        let mut merged: Option<Merged> = None;
        let mut read = false;
        let mut target = self.relayed;
        for event in events {
            match event {
                Event::Committed(c) => {
                    target = target.max(Some(c.range.cursor));
                    match self.relayed {
                        Some(at) if c.range.cursor <= at => {}
                        Some(at) if c.range.since > at => read = true,
                        _ if read => {}
                        _ => {
                            self.relayed = Some(c.range.cursor);
                            merged = Some(match merged {
                                None => Merged {
                                    range: c.range,
                                    origins: c.origins,
                                    changes: c.changes,
                                },
                                Some(mut m) => {
                                    m.range.cursor = c.range.cursor;
                                    for origin in c.origins {
                                        if !m.origins.contains(&origin) {
                                            m.origins.push(origin);
                                        }
                                    }
                                    m.changes.extend(c.changes);
                                    m
                                }
                            });
                        }
                    }
                }
                Event::Remote(head) => {
                    target = target.max(Some(head));
                    read |= self.relayed.or(self.baseline).is_none_or(|at| head > at);
                }
                Event::CatchUp => read = true,
            }
        }
        if let Some(m) = merged {
            let changes = latest_only(m.changes);
            self.send(Frame::new(m.range, m.origins, changes));
        }
        if read {
            self.catch_up(target).await;
        }
    }

    /// Reads the tenant's changes after what was relayed (or the baseline) and sends them on.
    /// Without either, or if storage cannot be read, it tells the connections to resync up to
    /// `target` instead (they pull, and retry).
    async fn catch_up(&mut self, target: Option<Version>) {
        let Some(mut cursor) = self.relayed.or(self.baseline) else {
            if let Some(head) = target {
                self.resync(head);
            }
            return;
        };
        loop {
            match self
                .storage
                .pull(&self.tenant, cursor, CATCH_UP, None)
                .await
            {
                Ok(page) => {
                    if page.cursor > cursor {
                        let range = CursorRange {
                            since: cursor,
                            cursor: page.cursor,
                        };
                        self.send(Frame::new(range, Vec::new(), page.changes));
                        cursor = page.cursor;
                        self.relayed = Some(cursor);
                    }
                    if !page.has_more {
                        return;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, tenant = %self.tenant, "cannot read changes to relay; clients resync");
                    self.resync(target.unwrap_or(cursor).max(cursor));
                    return;
                }
            }
        }
    }

    fn resync(&mut self, head: Version) {
        let range = CursorRange {
            since: head,
            cursor: head,
        };
        self.send(Frame::new(range, Vec::new(), Vec::new()));
        self.relayed = Some(head);
    }

    fn send(&self, frame: Frame) {
        let _ = self.frames.send(Arc::new(frame));
    }
}

/// Each document once, in its latest state (the last one in `changes`), in version order.
fn latest_only(changes: Vec<Change>) -> Vec<Change> {
    let mut seen = HashSet::new();
    let mut kept: Vec<Change> = changes
        .into_iter()
        .rev()
        .filter(|c| seen.insert((c.collection.clone(), c.doc.id().to_owned())))
        .collect();
    kept.reverse();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrosync_core::document::Document;
    use ferrosync_core::hlc::Hlc;
    use ferrosync_core::protocol::ServerMessage;

    fn change(collection: &str, id: &str, version: Version) -> Change {
        Change {
            collection: collection.into(),
            doc: Document::new(
                id,
                Default::default(),
                version,
                Hlc {
                    wall: 1,
                    counter: 0,
                    node: 1,
                },
                false,
            ),
        }
    }

    fn range(since: Version, cursor: Version) -> CursorRange {
        CursorRange { since, cursor }
    }

    #[test]
    fn a_frame_is_a_changes_message_shared_or_cut_to_a_connections_collections() {
        let frame = Frame::new(
            range(4, 6),
            vec![7],
            vec![change("todos", "a", 5), change("notes", "b", 6)],
        );
        let all = frame.text_for(&["notes".into(), "todos".into()]);
        let parsed: ServerMessage = serde_json::from_str(&all).unwrap();
        assert_eq!(
            parsed,
            ServerMessage::Changes {
                changes: vec![change("todos", "a", 5), change("notes", "b", 6)],
                range: range(4, 6)
            }
        );
        let todos = frame.text_for(&["todos".into()]);
        let parsed: ServerMessage = serde_json::from_str(&todos).unwrap();
        assert_eq!(
            parsed,
            ServerMessage::Changes {
                changes: vec![change("todos", "a", 5)],
                range: range(4, 6)
            }
        );
        assert!(frame.only_from(7) && !frame.only_from(1));
    }

    #[test]
    fn a_resync_is_an_empty_range_at_the_head() {
        let parsed: ServerMessage = serde_json::from_str(&resync(9)).unwrap();
        assert_eq!(
            parsed,
            ServerMessage::Changes {
                changes: vec![],
                range: range(9, 9)
            }
        );
    }

    #[test]
    fn merged_commits_keep_each_document_once_at_its_latest() {
        let kept = latest_only(vec![
            change("todos", "a", 1),
            change("todos", "b", 2),
            change("todos", "a", 3),
        ]);
        let versions: Vec<_> = kept.iter().map(|c| (c.doc.id(), c.doc.version())).collect();
        assert_eq!(versions, [("b", 2), ("a", 3)]);
    }
}
