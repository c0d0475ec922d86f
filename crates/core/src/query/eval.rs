//! Conditions, and how a document's value meets them: values are read in place from the
//! document's canonical JSON text and compared without building JSON values (numbers as
//! numbers, strings as text).

use super::key;
use crate::document::{Document, DELETED_FIELD, ID_FIELD};
use crate::fields::raw_at;
use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;

/// A value a condition compares with.
#[derive(Debug, Clone, PartialEq)]
pub struct Operand {
    /// Its canonical JSON text.
    json: String,
    /// Its order key.
    key: Vec<u8>,
    /// It as a number or string, for `_id` and range comparisons.
    scalar: Scalar,
}

#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Number(f64),
    String(String),
    Other,
}

impl Operand {
    /// The operand `value`.
    pub fn new(value: &Value) -> Operand {
        let json = value.to_string();
        Operand {
            key: key::of_json(&json),
            scalar: match value {
                Value::Number(n) => Scalar::Number(n.as_f64().unwrap_or(0.0)),
                Value::String(s) => Scalar::String(s.clone()),
                _ => Scalar::Other,
            },
            json,
        }
    }

    /// Its canonical JSON text.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// Its order key.
    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    /// It as a string, if it is one.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.scalar {
            Scalar::String(s) => Some(s),
            _ => None,
        }
    }

    /// Whether it is a number or a string (the operands of `$gt` and the like).
    pub(crate) fn is_ordered(&self) -> bool {
        !matches!(self.scalar, Scalar::Other)
    }

    /// The first key byte of its type, and the one after its type's keys.
    pub(crate) fn type_range(&self) -> (u8, u8) {
        let tag = self.key.first().copied().unwrap_or(key::NUMBER);
        (tag, tag + 1)
    }
}

/// What a condition asks of a field's value. A missing field counts as null, except for
/// `$exists` and the comparisons, which only match values of the operand's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Equal to the operand (`$eq`, or a plain value).
    Eq(Operand),
    /// Not equal (`$ne`).
    Ne(Operand),
    /// Greater (`$gt`).
    Gt(Operand),
    /// Greater or equal (`$gte`).
    Gte(Operand),
    /// Less (`$lt`).
    Lt(Operand),
    /// Less or equal (`$lte`).
    Lte(Operand),
    /// Equal to one of them (`$in`).
    In(Vec<Operand>),
    /// Equal to none of them (`$nin`).
    Nin(Vec<Operand>),
    /// The field is present (`true`) or absent (`false`) (`$exists`).
    Exists(bool),
}

impl Op {
    /// The operator's name in queries.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Eq(_) => "$eq",
            Op::Ne(_) => "$ne",
            Op::Gt(_) => "$gt",
            Op::Gte(_) => "$gte",
            Op::Lt(_) => "$lt",
            Op::Lte(_) => "$lte",
            Op::In(_) => "$in",
            Op::Nin(_) => "$nin",
            Op::Exists(_) => "$exists",
        }
    }
}

/// One condition of a query's `where`: a field (a dotted path into nested objects) and what
/// its value must be.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The field: `"title"`, `"address.city"`; `_id` and `_deleted` are the document's own.
    pub path: String,
    /// What its value must be.
    pub op: Op,
}

impl Condition {
    /// Whether `doc` meets the condition.
    pub fn matches(&self, doc: &Document) -> bool {
        self.holds(Field::of(doc, &self.path))
    }

    /// Whether the document's value at the condition's path meets it.
    pub(crate) fn holds(&self, value: Field<'_>) -> bool {
        match &self.op {
            Op::Eq(v) => value.equals(v),
            Op::Ne(v) => !value.equals(v),
            Op::In(vs) => vs.iter().any(|v| value.equals(v)),
            Op::Nin(vs) => !vs.iter().any(|v| value.equals(v)),
            Op::Exists(present) => value.is_present() == *present,
            Op::Gt(v) => value.compare(v) == Some(Ordering::Greater),
            Op::Gte(v) => value.compare(v).is_some_and(Ordering::is_ge),
            Op::Lt(v) => value.compare(v) == Some(Ordering::Less),
            Op::Lte(v) => value.compare(v).is_some_and(Ordering::is_le),
        }
    }
}

/// A document's value at a path, read in place.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field<'d> {
    /// A field's JSON text.
    Json(&'d str),
    /// The `_id`.
    Id(&'d str),
    /// `_deleted`.
    Deleted(bool),
    /// No such field.
    Missing,
}

impl<'d> Field<'d> {
    /// The value of `path` in `doc`.
    pub(crate) fn of(doc: &'d Document, path: &str) -> Field<'d> {
        Field::in_text(doc, doc.fields_json(), path)
    }

    /// The value of `path` in `doc`, whose fields' text `fields` is already read.
    pub(crate) fn in_text(doc: &'d Document, fields: &'d str, path: &str) -> Field<'d> {
        match path {
            ID_FIELD => Field::Id(doc.id()),
            DELETED_FIELD => Field::Deleted(doc.deleted()),
            _ => raw_at(fields, path).map_or(Field::Missing, Field::Json),
        }
    }

    /// Appends its order key (missing: null).
    pub(crate) fn push_key(self, out: &mut Vec<u8>) {
        match self {
            Field::Json(json) => key::push_json(out, Some(json)),
            Field::Id(id) => key::push_str(out, id),
            Field::Deleted(deleted) => key::push_json(out, Some(bool_json(deleted))),
            Field::Missing => key::push_json(out, None),
        }
    }

    fn is_present(self) -> bool {
        !matches!(self, Field::Missing)
    }

    fn equals(self, operand: &Operand) -> bool {
        match self {
            Field::Json(json) => json == operand.json || json_equals(json, operand),
            Field::Id(id) => matches!(&operand.scalar, Scalar::String(s) if s == id),
            Field::Deleted(deleted) => operand.json == bool_json(deleted),
            Field::Missing => operand.json == "null",
        }
    }

    /// How the value compares with a number or string operand; `None` when its type differs.
    fn compare(self, operand: &Operand) -> Option<Ordering> {
        match (self, &operand.scalar) {
            (Field::Json(json), Scalar::Number(n)) if starts_number(json) => {
                number(json)?.partial_cmp(n)
            }
            (Field::Json(json), Scalar::String(s)) if json.starts_with('"') => {
                Some(unquote(json)?.as_ref().cmp(s.as_str()))
            }
            (Field::Id(id), Scalar::String(s)) => Some(id.cmp(s.as_str())),
            _ => None,
        }
    }
}

/// Equality of differently written JSON: numbers by value, arrays and objects by their keys.
fn json_equals(json: &str, operand: &Operand) -> bool {
    match (json.as_bytes().first(), operand.json.as_bytes().first()) {
        (Some(b'[' | b'{'), Some(b'[' | b'{')) => key::of_json(json) == operand.key,
        _ if starts_number(json) => match operand.scalar {
            Scalar::Number(n) => number(json) == Some(n),
            _ => false,
        },
        _ => false,
    }
}

/// A JSON number's value (parsed by `serde_json`, which the crate has anyway).
pub(crate) fn number(json: &str) -> Option<f64> {
    serde_json::from_str(json).ok()
}

fn starts_number(json: &str) -> bool {
    json.as_bytes()
        .first()
        .is_some_and(|b| *b == b'-' || b.is_ascii_digit())
}

fn bool_json(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// A JSON string's content; borrowed unless it has escapes.
fn unquote(json: &str) -> Option<Cow<'_, str>> {
    let inner = json.get(1..json.len().checked_sub(1)?)?;
    if inner.contains('\\') {
        serde_json::from_str(json).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}
