//! Client frames, as a server receives them: usually a `hello` first, then pushes whose
//! mutation ids mostly continue the client's sequence (so they get past the gap check and
//! apply), replays, pulls and pings; with fields retyped and text damaged now and then.

use crate::json::{frame, Damage, Fields, Hlc, Int, Json, Name};
use arbitrary::Arbitrary;
use serde_json::{json, Value};

/// The client id of a frame's opening `hello`.
pub const CLIENT_ID: &str = "fuzz-client";

/// The collections of a frame's opening `hello`.
pub const COLLECTIONS: [&str; 2] = ["todos", "notes"];

/// A frame from a client.
#[derive(Arbitrary, Debug, Clone)]
pub struct ClientFrame {
    /// Opens with `hello` as [`CLIENT_ID`] syncing [`COLLECTIONS`].
    pub hello: bool,
    /// The messages after it.
    pub messages: Vec<Message>,
    /// An array even of one message.
    pub batched: bool,
    /// Damage to the text.
    pub damage: Vec<Damage>,
}

/// A message, possibly with a field retyped.
pub type Message = crate::json::Message<Kind>;

/// The messages a client sends, and anything else.
#[derive(Arbitrary, Debug, Clone)]
pub enum Kind {
    /// `hello`.
    Hello {
        /// The protocol (1 when `None`).
        protocol: Option<Int>,
        /// The client id ([`CLIENT_ID`] when `None`).
        client_id: Option<Name>,
        /// The collections.
        collections: Vec<Name>,
    },
    /// `push`.
    Push {
        /// Its `seq`.
        seq: Int,
        /// Its transactions.
        transactions: Vec<Transaction>,
    },
    /// `pull`.
    Pull {
        /// Its `seq`.
        seq: Int,
        /// Its cursor.
        cursor: Int,
        /// Its limit.
        limit: Int,
    },
    /// `ping`.
    Ping,
    /// Any JSON value.
    Other(Json),
}

/// A pushed transaction.
#[derive(Arbitrary, Debug, Clone)]
pub struct Transaction {
    /// Where its ids start.
    pub start: Start,
    /// Its mutations.
    pub mutations: Vec<Mutation>,
    /// Sent with `abandon`.
    pub abandon: bool,
}

/// The first id of a transaction.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Start {
    /// The next id of the frame's sequence.
    Next,
    /// An id sent this many transactions ago (a replay).
    Again(u8),
    /// This value.
    At(Int),
}

/// A pushed mutation.
#[derive(Arbitrary, Debug, Clone)]
pub struct Mutation {
    /// Its id, when not the next of its transaction.
    pub id: Option<Int>,
    /// Its collection.
    pub collection: Name,
    /// Its document.
    pub doc_id: Name,
    /// What it does.
    pub op: Op,
    /// Its timestamp.
    pub hlc: Hlc,
    /// The version it was made against.
    pub base_version: Int,
}

/// An op.
#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    /// `insert`.
    Insert(Fields),
    /// `update`.
    Update(Fields),
    /// `delete`.
    Delete,
    /// `put`.
    Put(Fields),
    /// Any JSON value.
    Other(Json),
}

impl Op {
    fn value(&self) -> Value {
        match self {
            Op::Insert(f) => json!({"type": "insert", "fields": f.value()}),
            Op::Update(f) => json!({"type": "update", "patch": f.value()}),
            Op::Delete => json!({"type": "delete"}),
            Op::Put(f) => json!({"type": "put", "fields": f.value()}),
            Op::Other(other) => other.value(),
        }
    }
}

impl ClientFrame {
    /// The frame's text, with `now` as the current time.
    pub fn text(&self, now: u64) -> String {
        let mut ids = Ids::default();
        let mut messages = Vec::new();
        if self.hello {
            messages.push(json!({
                "type": "hello", "protocol": 1, "client_id": CLIENT_ID, "collections": COLLECTIONS,
            }));
        }
        for message in &self.messages {
            messages.push(message.value(|kind| kind.value(&mut ids, now)));
        }
        frame(messages, self.batched, &self.damage)
    }
}

/// The mutation ids a frame has given out.
#[derive(Default)]
struct Ids {
    next: u64,
    starts: Vec<u64>,
}

impl Kind {
    fn value(&self, ids: &mut Ids, now: u64) -> Value {
        match self {
            Kind::Hello {
                protocol,
                client_id,
                collections,
            } => json!({
                "type": "hello",
                "protocol": protocol.map_or(json!(1), Int::value),
                "client_id": client_id.as_ref().map_or(CLIENT_ID.to_owned(), Name::text),
                "collections": collections.iter().map(Name::text).collect::<Vec<_>>(),
            }),
            Kind::Push { seq, transactions } => json!({
                "type": "push",
                "seq": seq.value(),
                "transactions": transactions.iter().map(|t| t.value(ids, now)).collect::<Vec<_>>(),
            }),
            Kind::Pull { seq, cursor, limit } => json!({
                "type": "pull", "seq": seq.value(), "cursor": cursor.value(), "limit": limit.value(),
            }),
            Kind::Ping => json!({"type": "ping"}),
            Kind::Other(other) => other.value(),
        }
    }
}

impl Transaction {
    fn value(&self, ids: &mut Ids, now: u64) -> Value {
        let first = match self.start {
            Start::Next => ids.next + 1,
            Start::Again(back) => ids
                .starts
                .iter()
                .rev()
                .nth(usize::from(back))
                .copied()
                .unwrap_or(1),
            Start::At(Int::Small(n)) => u64::from(n),
            Start::At(_) => 1,
        };
        let mut id = first;
        let mutations: Vec<Value> = self
            .mutations
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let value = match (m.id, self.start) {
                    (Some(other), _) => other.value(),
                    (None, Start::At(other)) if i == 0 => other.value(),
                    (None, _) => json!(id),
                };
                id += 1;
                json!({
                    "id": value,
                    "collection": m.collection.text(),
                    "doc_id": m.doc_id.text(),
                    "op": m.op.value(),
                    "hlc": m.hlc.value(now),
                    "base_version": m.base_version.value(),
                })
            })
            .collect();
        if matches!(self.start, Start::Next) && !self.mutations.is_empty() {
            ids.starts.push(first);
            ids.next = id - 1;
        }
        let mut tx = json!({ "mutations": mutations });
        if self.abandon {
            tx["abandon"] = json!(true);
        }
        tx
    }
}
