//! The connection and the inbound half of sync: handshake, pulls, live changes and the cursor.

use super::{Engine, Link, SyncType, NO_ANSWER};
use crate::document::Document;
use crate::protocol::{
    Change, ClientMessage, CursorRange, ServerMessage, MAX_WIRE_INT, PROTOCOL_VERSION,
};
use crate::{Code, Version};

impl Engine {
    /// A connection opened: introduce ourselves.
    pub(super) fn connected(&mut self, live: bool) {
        self.link = Link::Up {
            live,
            welcomed: false,
            hello_at: self.now,
        };
        self.send_hello();
    }

    fn send_hello(&mut self) {
        let collections = self
            .config
            .collections
            .iter()
            .filter(|c| c.sync)
            .map(|c| c.name.clone())
            .collect();
        self.send(ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            client_id: self.client_id.clone(),
            collections,
        });
    }

    /// The connection is gone: everything on the wire will be sent again.
    pub(super) fn disconnected(&mut self, reason: &str) {
        self.link = Link::Down;
        if self.is_custom() {
            // No server to explain it: the reason is the error.
            self.status.record(Code::Network, reason.to_owned());
        }
        let why = format!("connection lost: {reason}");
        self.requeue_all(&why, None);
        if let Some(log) = self.pull.log.take() {
            self.finish_log(log, 0, 0, Some((Code::Network, why)));
        }
        self.pull.start = None;
        self.pull.in_flight = None;
        self.pull.next_at = None;
    }

    /// Dispatches a server message.
    pub(super) fn receive(&mut self, message: ServerMessage) {
        match message {
            ServerMessage::Welcome {
                client_id,
                last_mutation_id,
                head,
                ..
            } => {
                if client_id != self.client_id {
                    self.status.fail(
                        Code::ProtocolViolation,
                        format!(
                            "the server welcomed client `{client_id}`, not `{}`",
                            self.client_id
                        ),
                    );
                    return;
                }
                // No id past it could be sent: a server saying so is broken, not obeyed.
                if last_mutation_id >= MAX_WIRE_INT {
                    self.status.fail(
                        Code::ProtocolViolation,
                        format!(
                            "the server's last mutation id {last_mutation_id} leaves no id to send"
                        ),
                    );
                    return;
                }
                self.status.answered();
                if let Link::Up { live, .. } = self.link {
                    self.link = Link::Up {
                        live,
                        welcomed: true,
                        hello_at: self.now,
                    };
                }
                self.head = self.head.max(head);
                // Never reuse an id the server has processed (e.g. storage restored from a backup).
                if self.next_mutation_id <= last_mutation_id {
                    self.next_mutation_id = last_mutation_id + 1;
                    self.store.checkpoint_dirty = true;
                }
                self.pull.requested = self.config.direction.pulls();
            }
            ServerMessage::PushResult {
                seq,
                results,
                range,
            } => self.push_result(seq, results, range),
            ServerMessage::PullPage {
                seq,
                changes,
                cursor,
                has_more,
            } => self.pull_page(seq, changes, cursor, has_more),
            ServerMessage::Changes { changes, range } => {
                if self.config.direction.pulls() {
                    self.status.received(changes.len());
                    self.apply_changes(changes);
                    self.advance_cursor(range);
                }
            }
            // Heartbeats are the driver's business.
            ServerMessage::Pong => {}
            ServerMessage::Error { seq, error } => {
                let message = format!("{}: {}", error.code, error.message);
                match seq {
                    Some(seq) if self.flights.contains_key(&seq) => {
                        self.requeue_all(&message, Some(&error));
                    }
                    Some(seq) if self.pull.in_flight.is_some_and(|(s, _)| s == seq) => {
                        self.pull.in_flight = None;
                        self.pull.requested = error.retryable;
                        if let Some(log) = self.pull.log.take() {
                            let why = (Code::Protocol(error.code), message.clone());
                            self.finish_log(log, 0, 0, Some(why));
                            self.pull.start = None;
                        }
                    }
                    _ => {}
                }
                self.status.fail(Code::Protocol(error.code), message);
            }
        }
    }

    /// `forceSync`, `push`, `pull`: act now rather than on the next timer.
    pub(super) fn sync_now(&mut self, push: bool, pull: bool) {
        if pull && self.config.direction.pulls() {
            self.pull.requested = true;
        }
        if push {
            for id in &self.queues.backing_off {
                let entry = self.txs.get_mut(id).expect("unfinished");
                entry.retry_at = entry.retry_at.map(|at| at.min(self.now));
            }
        }
    }

    /// Runs the timers and both halves of sync.
    pub(super) fn pump(&mut self, outbox: bool) {
        self.expire_hello();
        self.expire_pushes();
        self.expire_pull();
        if outbox {
            self.pump_outbox();
        }
        self.pump_pull();
    }

    /// A `hello` unanswered in time is sent again.
    fn expire_hello(&mut self) {
        if let Link::Up {
            live,
            welcomed: false,
            hello_at,
        } = self.link
        {
            if hello_at + self.config.ack_timeout_ms <= self.now {
                self.status.fail(Code::Network, NO_ANSWER.into());
                self.link = Link::Up {
                    live,
                    welcomed: false,
                    hello_at: self.now,
                };
                self.send_hello();
            }
        }
    }

    fn pump_pull(&mut self) {
        let Link::Up {
            live,
            welcomed: true,
            ..
        } = self.link
        else {
            return;
        };
        if !self.config.direction.pulls() || self.pull.in_flight.is_some() || self.is_custom() {
            return;
        }
        let due = self.pull.next_at.is_some_and(|at| at <= self.now);
        if !(self.pull.requested || (!live && due)) {
            return;
        }
        self.pull.requested = false;
        self.pull.next_at = None;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pull.in_flight = Some((seq, self.now));
        if self.pull.log.is_none() {
            self.pull.log = Some(self.start_log(SyncType::Pull));
            self.pull.start = Some(self.cursor);
        }
        self.send(ClientMessage::Pull {
            seq,
            cursor: self.cursor,
            limit: self.config.pull_page.min(u32::MAX as usize) as u32,
        });
    }

    fn expire_pull(&mut self) {
        if let Some((_, sent)) = self.pull.in_flight {
            if sent + self.config.ack_timeout_ms <= self.now {
                self.status.fail(Code::Network, NO_ANSWER.into());
                self.pull.in_flight = None;
                self.pull.requested = true;
            }
        }
    }

    fn pull_page(&mut self, seq: u64, changes: Vec<Change>, cursor: Version, has_more: bool) {
        if self.pull.in_flight.is_none_or(|(s, _)| s != seq) {
            return;
        }
        self.pull.in_flight = None;
        let count = changes.len();
        self.apply_changes(changes);
        if cursor > self.cursor {
            self.cursor = cursor;
            self.store.checkpoint_dirty = true;
        }
        self.head = self.head.max(cursor);
        self.status.pulled(count, self.now);
        if let Some(log) = self.pull.log {
            self.add_to_log(log, count);
        }
        if has_more {
            self.pull.requested = true;
        } else {
            if let Some(log) = self.pull.log.take() {
                self.finish_log(log, 0, 0, None);
            }
            self.pull.start = None;
            if let Link::Up { live: false, .. } = self.link {
                self.pull.next_at = Some(self.now + self.config.pull_interval_ms);
            }
        }
    }

    /// Stores remote documents (newer versions only) and updates the view.
    fn apply_changes(&mut self, changes: Vec<Change>) {
        for change in changes {
            if self.is_synced(&change.collection) {
                self.store_remote(&change.collection, change.doc);
            }
        }
    }

    /// Takes in a document from the server: its timestamp moves the clock, and it replaces the
    /// synced copy (and is written to storage) if its version is newer.
    pub(super) fn store_remote(&mut self, collection: &str, doc: Document) {
        self.clock.observe(doc.hlc(), self.now);
        let merge = self.merge_fn();
        let key = (collection.to_owned(), doc.id().to_owned());
        self.replacing_synced(collection, doc.id());
        let c = self
            .collections
            .get_mut(collection)
            .expect("synced collections exist");
        let (stored, change) = c.apply_remote(doc, merge.as_ref());
        self.out.changes.extend(change);
        if stored {
            self.store.docs.insert(key);
        }
    }

    /// A message covering every change in `(since, cursor]`: the cursor moves if it was at or
    /// past `since`; otherwise changes were missed and a pull fetches them.
    pub(super) fn advance_cursor(&mut self, range: CursorRange) {
        if !self.config.direction.pulls() {
            return;
        }
        self.head = self.head.max(range.cursor);
        if range.since <= self.cursor {
            if range.cursor > self.cursor {
                self.cursor = range.cursor;
                self.store.checkpoint_dirty = true;
            }
        } else {
            self.pull.requested = true;
        }
    }

    pub(super) fn send(&mut self, message: ClientMessage) {
        self.out.effects.push(super::Effect::Send(message));
    }
}
