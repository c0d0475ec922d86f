//! Server frames, as an engine receives them: answers to the pushes and pulls it sent (by
//! small sequence numbers and mutation ids, so many match) and ones it never sent, live
//! changes with ranges around its cursor, welcomes, errors; with fields retyped and text
//! damaged now and then.

use crate::json::{frame, Damage, Fields, Hlc, Int, Json, Name};
use arbitrary::Arbitrary;
use serde_json::{json, Value};

/// A frame from the server.
#[derive(Arbitrary, Debug, Clone)]
pub struct ServerFrame {
    /// Its messages.
    pub messages: Vec<Message>,
    /// An array even of one message.
    pub batched: bool,
    /// Damage to the text.
    pub damage: Vec<Damage>,
}

/// A message, possibly with a field retyped.
pub type Message = crate::json::Message<Kind>;

/// The messages a server sends, and anything else.
#[derive(Arbitrary, Debug, Clone)]
pub enum Kind {
    /// `welcome`, to this engine's client id or another.
    Welcome {
        /// Another client id than the engine's.
        other: Option<Name>,
        /// The last mutation id.
        last_mutation_id: Int,
        /// The head.
        head: Int,
    },
    /// `push_result`.
    PushResult {
        /// Its `seq`.
        seq: Int,
        /// The results.
        results: Vec<Result>,
        /// The range committed.
        range: Option<(Int, Int)>,
    },
    /// `pull_page`.
    PullPage {
        /// Its `seq`.
        seq: Int,
        /// The changes.
        changes: Vec<Change>,
        /// The next cursor.
        cursor: Int,
        /// More wait.
        has_more: bool,
    },
    /// Live `changes`.
    Changes {
        /// The changes.
        changes: Vec<Change>,
        /// The range `(since, cursor]`.
        range: (Int, Int),
    },
    /// `error`.
    Error {
        /// The request it answers.
        seq: Option<Int>,
        /// Its code.
        code: Name,
        /// Whether to retry.
        retryable: bool,
    },
    /// `pong`.
    Pong,
    /// Any JSON value.
    Other(Json),
}

/// A mutation's result.
#[derive(Arbitrary, Debug, Clone)]
pub struct Result {
    /// The mutation id.
    pub id: Int,
    /// Its outcome.
    pub outcome: Outcome,
}

/// An outcome.
#[derive(Arbitrary, Debug, Clone)]
pub enum Outcome {
    /// Applied, with the document.
    Applied(Document),
    /// In conflict with the server's document.
    Conflict(Document),
    /// Rejected.
    Rejected {
        /// The code.
        code: Name,
        /// Whether to retry.
        retryable: bool,
    },
}

/// A changed document and its collection.
#[derive(Arbitrary, Debug, Clone)]
pub struct Change {
    /// The collection.
    pub collection: Name,
    /// The document.
    pub doc: Document,
}

/// A document on the wire.
#[derive(Arbitrary, Debug, Clone)]
pub struct Document {
    /// Its id.
    pub id: Name,
    /// Its fields.
    pub fields: Fields,
    /// Its version.
    pub version: Int,
    /// Its timestamp.
    pub hlc: Hlc,
    /// A tombstone.
    pub deleted: bool,
}

impl Document {
    fn value(&self, now: u64) -> Value {
        json!({
            "id": self.id.text(),
            "fields": self.fields.value(),
            "version": self.version.value(),
            "hlc": self.hlc.value(now),
            "deleted": self.deleted,
        })
    }
}

fn error(code: &Name, retryable: bool) -> Value {
    json!({"code": code.text(), "message": "fuzzed", "retryable": retryable})
}

fn range((since, cursor): (Int, Int)) -> Value {
    json!({"since": since.value(), "cursor": cursor.value()})
}

fn changes(changes: &[Change], now: u64) -> Value {
    changes
        .iter()
        .map(|c| json!({"collection": c.collection.text(), "doc": c.doc.value(now)}))
        .collect()
}

impl Kind {
    fn value(&self, client_id: &str, now: u64) -> Value {
        match self {
            Kind::Welcome {
                other,
                last_mutation_id,
                head,
            } => json!({
                "type": "welcome",
                "client_id": other.as_ref().map_or(client_id.to_owned(), Name::text),
                "last_mutation_id": last_mutation_id.value(),
                "head": head.value(),
            }),
            Kind::PushResult {
                seq,
                results,
                range: committed,
            } => {
                let results: Vec<Value> = results
                    .iter()
                    .map(|r| {
                        let mut value = match &r.outcome {
                            Outcome::Applied(doc) => {
                                json!({"status": "applied", "doc": doc.value(now)})
                            }
                            Outcome::Conflict(doc) => {
                                json!({"status": "conflict", "doc": doc.value(now)})
                            }
                            Outcome::Rejected { code, retryable } => {
                                json!({"status": "rejected", "error": error(code, *retryable)})
                            }
                        };
                        value["id"] = r.id.value();
                        value
                    })
                    .collect();
                let mut value =
                    json!({"type": "push_result", "seq": seq.value(), "results": results});
                if let Some(committed) = committed {
                    value["range"] = range(*committed);
                }
                value
            }
            Kind::PullPage {
                seq,
                changes: page,
                cursor,
                has_more,
            } => json!({
                "type": "pull_page",
                "seq": seq.value(),
                "changes": changes(page, now),
                "cursor": cursor.value(),
                "has_more": has_more,
            }),
            Kind::Changes {
                changes: live,
                range: covered,
            } => {
                json!({"type": "changes", "changes": changes(live, now), "range": range(*covered)})
            }
            Kind::Error {
                seq,
                code,
                retryable,
            } => {
                let mut value = error(code, *retryable);
                value["type"] = json!("error");
                if let Some(seq) = seq {
                    value["seq"] = seq.value();
                }
                value
            }
            Kind::Pong => json!({"type": "pong"}),
            Kind::Other(other) => other.value(),
        }
    }
}

impl ServerFrame {
    /// The frame's text for the engine with `client_id`, with `now` as the current time.
    pub fn text(&self, client_id: &str, now: u64) -> String {
        let messages = self
            .messages
            .iter()
            .map(|m| m.value(|kind| kind.value(client_id, now)))
            .collect();
        frame(messages, self.batched, &self.damage)
    }
}
