//! The pieces frames are made of: JSON values, integers around the interesting edges, names
//! from a small pool (so that documents and clients collide), document fields, and damage done
//! to a frame's text.

use arbitrary::Arbitrary;
use serde_json::{json, Map, Value};

/// Any JSON value (nesting as deep as the bytes allow).
#[derive(Arbitrary, Debug, Clone)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number that is not an integer (or not finite: `null` then).
    Float(f64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object.
    Object(Vec<(Name, Json)>),
}

impl Json {
    /// The value.
    pub fn value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => json!(b),
            Json::Int(i) => json!(i),
            Json::Float(f) => json!(f),
            Json::Str(s) => json!(s),
            Json::Array(items) => Value::Array(items.iter().map(Json::value).collect()),
            Json::Object(entries) => {
                Value::Object(entries.iter().map(|(k, v)| (k.text(), v.value())).collect())
            }
        }
    }
}

/// An integer field: mostly small (sequence numbers, ids and versions of a short session),
/// sometimes at the edges of what the protocol accepts, sometimes not an integer at all.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Int {
    /// 0 to 255.
    Small(u8),
    /// 2^63 - 1, the largest on the wire.
    WireMax,
    /// 2^63, one past it.
    PastWireMax,
    /// 2^64 - 1.
    Max,
    /// A negative number.
    Negative(i8),
    /// A fraction.
    Fraction,
    /// A string of digits.
    Quoted(u8),
    /// Any.
    Any(u64),
}

impl Int {
    /// The value.
    pub fn value(self) -> Value {
        match self {
            Int::Small(n) => json!(n),
            Int::WireMax => json!(i64::MAX),
            Int::PastWireMax => json!(i64::MAX as u64 + 1),
            Int::Max => json!(u64::MAX),
            Int::Negative(n) => json!(-i64::from(n.unsigned_abs()) - 1),
            Int::Fraction => json!(1.5),
            Int::Quoted(n) => json!(n.to_string()),
            Int::Any(n) => json!(n),
        }
    }
}

/// Names that collide: collections, document ids, client ids, field names.
const NAMES: [&str; 8] = ["todos", "notes", "a", "b", "c", "title", "_id", "_deleted"];

/// A name: one of a small pool, or any string (empty, long, control characters…).
#[derive(Arbitrary, Debug, Clone)]
pub enum Name {
    /// From the pool.
    Pool(u8),
    /// A long one (over the server's 128 bytes for names).
    Long(u8),
    /// Any.
    Any(String),
}

impl Name {
    /// The text.
    pub fn text(&self) -> String {
        match self {
            Name::Pool(i) => NAMES[usize::from(*i) % NAMES.len()].to_owned(),
            Name::Long(n) => "n".repeat(100 + usize::from(*n)),
            Name::Any(s) => s.clone(),
        }
    }
}

/// A document's fields (or an update's patch): an object, or sometimes something else.
#[derive(Arbitrary, Debug, Clone)]
pub enum Fields {
    /// An object of these entries.
    Object(Vec<(Name, Json)>),
    /// Any value in its place.
    Other(Json),
}

impl Fields {
    /// The value.
    pub fn value(&self) -> Value {
        match self {
            Fields::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.text(), v.value()))
                    .collect::<Map<_, _>>(),
            ),
            Fields::Other(other) => other.value(),
        }
    }
}

/// A hybrid logical timestamp: its parts (the wall clock relative to `now`).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Hlc {
    /// Milliseconds from `now`, or an absolute value.
    pub wall: Wall,
    /// The counter.
    pub counter: Int,
    /// The node.
    pub node: Int,
}

/// A wall clock reading.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Wall {
    /// `now` plus or minus this many seconds (up to about 9 hours: past the 5-minute clamp).
    Around(i16),
    /// This value.
    At(Int),
}

impl Hlc {
    /// The value, with `now` as the current time.
    pub fn value(&self, now: u64) -> Value {
        let wall = match self.wall {
            Wall::Around(secs) => json!(now.saturating_add_signed(i64::from(secs) * 1000)),
            Wall::At(int) => int.value(),
        };
        json!({"wall": wall, "counter": self.counter.value(), "node": self.node.value()})
    }
}

/// Replaces one field of a message object with another value, or removes it.
#[derive(Arbitrary, Debug, Clone)]
pub struct Retype {
    /// Which field (by index, in key order).
    pub field: u8,
    /// Its new value (`None`: removed).
    pub value: Option<Json>,
}

impl Retype {
    /// Applies it to `message` (nothing when it is not an object).
    pub fn apply(&self, message: &mut Value) {
        let Value::Object(map) = message else { return };
        let Some(key) = map
            .keys()
            .nth(usize::from(self.field) % map.len().max(1))
            .cloned()
        else {
            return;
        };
        match &self.value {
            Some(value) => map.insert(key, value.value()),
            None => map.remove(&key),
        };
    }
}

/// A message of kind `K`, possibly with a field retyped.
#[derive(Arbitrary, Debug, Clone)]
pub struct Message<K> {
    /// What it is.
    pub kind: K,
    /// A field changed or removed.
    pub retype: Option<Retype>,
}

impl<K> Message<K> {
    /// Its JSON: `render` makes the kind's, then the retype applies.
    pub fn value(&self, render: impl FnOnce(&K) -> Value) -> Value {
        let mut value = render(&self.kind);
        if let Some(retype) = &self.retype {
            retype.apply(&mut value);
        }
        value
    }
}

/// Damage done to a frame's text, at a position taken modulo its length.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Damage {
    /// Cut it short.
    Truncate(u16),
    /// Insert a byte (as a character).
    Insert(u16, u8),
    /// Remove a character.
    Remove(u16),
    /// Repeat it (two frames back to back).
    Repeat,
}

impl Damage {
    /// Applies it to `text`.
    pub fn apply(self, text: &mut String) {
        let at = |pos: u16, text: &String| {
            let mut i = usize::from(pos) % (text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        match self {
            Damage::Truncate(pos) => text.truncate(at(pos, text)),
            Damage::Insert(pos, byte) => text.insert(at(pos, text), char::from(byte)),
            Damage::Remove(pos) => {
                let i = at(pos, text);
                if i < text.len() {
                    text.remove(i);
                }
            }
            Damage::Repeat => *text = text.repeat(2),
        }
    }
}

/// Messages as one frame: an array when `batched` or when there are several, else alone;
/// then damaged.
pub fn frame(messages: Vec<Value>, batched: bool, damage: &[Damage]) -> String {
    let mut text = match <[Value; 1]>::try_from(messages) {
        Ok([one]) if !batched => one.to_string(),
        Ok([one]) => Value::Array(vec![one]).to_string(),
        Err(messages) => Value::Array(messages).to_string(),
    };
    for d in damage {
        d.apply(&mut text);
    }
    text
}
