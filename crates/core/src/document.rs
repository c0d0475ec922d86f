//! Documents: JSON objects with an `_id`, plus the sync metadata the engine keeps beside them.

use crate::error::json_type;
use crate::hlc::Hlc;
use crate::{CoreError, DocId, Version};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// The field holding a document's id in user-facing JSON.
pub const ID_FIELD: &str = "_id";
/// The field marking a soft-deleted document (a tombstone) in user-facing JSON.
pub const DELETED_FIELD: &str = "_deleted";

pub use crate::fields::Fields;

/// A document and its sync metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// The document's `_id`.
    pub id: DocId,
    /// The user's fields.
    pub fields: Fields,
    /// The server version that produced this state; 0 if the server has never seen it.
    pub version: Version,
    /// The timestamp of the write that produced this state (orders last-write-wins).
    pub hlc: Hlc,
    /// A soft-deleted document: kept as a tombstone so the delete syncs and is never undone.
    pub deleted: bool,
}

impl Document {
    /// The user-facing JSON: `_id`, the fields, and `_deleted: true` for a tombstone.
    pub fn to_json(&self) -> Value {
        serde_json::from_str(&self.user_json()).expect("documents are valid JSON")
    }

    /// The user-facing JSON of [`Document::to_json`] as text, written straight from the fields'
    /// text: `{"_id":…, fields…, "_deleted":true}`.
    pub fn user_json(&self) -> String {
        let mut out = String::with_capacity(self.id.len() + self.fields.as_json().len() + 24);
        self.write_user_json(&mut out);
        out
    }

    /// Appends [`Document::user_json`] to `out`.
    pub fn write_user_json(&self, out: &mut String) {
        out.push_str("{\"_id\":");
        write_json_string(out, &self.id);
        let fields = self.fields.as_json();
        if !self.fields.is_empty() {
            out.push(',');
            out.push_str(&fields[1..fields.len() - 1]);
        }
        if self.deleted {
            out.push_str(",\"_deleted\":true");
        }
        out.push('}');
    }

    /// A field's value; `_id` and `_deleted` are answered too, so queries can use them.
    pub fn field(&self, name: &str) -> Option<Value> {
        match name {
            ID_FIELD => Some(Value::String(self.id.clone())),
            DELETED_FIELD => Some(Value::Bool(self.deleted)),
            _ => self.fields.get(name),
        }
    }

    /// A field's value as canonical JSON text, read in place; `_id` and `_deleted` are built.
    pub fn raw_field(&self, name: &str) -> Option<Cow<'_, str>> {
        match name {
            ID_FIELD => {
                let mut text = String::with_capacity(self.id.len() + 2);
                write_json_string(&mut text, &self.id);
                Some(Cow::Owned(text))
            }
            DELETED_FIELD => Some(Cow::Borrowed(if self.deleted { "true" } else { "false" })),
            _ => self.fields.raw(name).map(Cow::Borrowed),
        }
    }
}

/// Appends `text` as a JSON string literal.
pub fn write_json_string(out: &mut String, text: &str) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(text).expect("strings serialize"));
    }
}

/// Splits user JSON into its `_id` and fields, checking that it is an object with a string id
/// and no reserved field.
pub fn parse_document(value: Value) -> Result<(DocId, Fields), CoreError> {
    let Value::Object(mut fields) = value else {
        return Err(CoreError::NotAnObject(json_type(&value)));
    };
    let id = match fields.remove(ID_FIELD) {
        None => return Err(CoreError::MissingId),
        Some(Value::String(id)) if !id.is_empty() => id,
        Some(other) => return Err(CoreError::InvalidId(describe(&other))),
    };
    check_reserved(&fields)?;
    Ok((id, Fields::from_map(&fields)))
}

/// Checks a patch for `update`: an object that does not touch `_id` or `_deleted`.
pub fn parse_patch(value: Value) -> Result<Fields, CoreError> {
    let Value::Object(fields) = value else {
        return Err(CoreError::NotAnObject(json_type(&value)));
    };
    if fields.contains_key(ID_FIELD) {
        return Err(CoreError::ReservedField(ID_FIELD.into()));
    }
    check_reserved(&fields)?;
    Ok(Fields::from_map(&fields))
}

fn check_reserved(fields: &Map<String, Value>) -> Result<(), CoreError> {
    if fields.contains_key(DELETED_FIELD) {
        return Err(CoreError::ReservedField(DELETED_FIELD.into()));
    }
    Ok(())
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(_) => "an empty string".into(),
        other => json_type(other).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_document_and_round_trips_it_to_json() {
        let (id, fields) = parse_document(json!({"_id": "a", "title": "T"})).unwrap();
        let doc = Document {
            id,
            fields,
            version: 0,
            hlc: Hlc::default(),
            deleted: true,
        };
        assert_eq!(
            doc.to_json(),
            json!({"_id": "a", "title": "T", "_deleted": true})
        );
        assert_eq!(doc.field("_deleted"), Some(json!(true)));
    }

    #[test]
    fn the_user_json_puts_the_id_first_and_marks_tombstones() {
        let (id, fields) = parse_document(json!({
            "_id": "x\"y", "Z": 1, "_a": [1, {"b": null}], "title": "T"
        }))
        .unwrap();
        let mut doc = Document {
            id,
            fields,
            version: 3,
            hlc: Hlc::default(),
            deleted: false,
        };
        assert_eq!(
            doc.user_json(),
            r#"{"_id":"x\"y","Z":1,"_a":[1,{"b":null}],"title":"T"}"#
        );
        doc.deleted = true;
        assert!(doc.user_json().ends_with(r#""title":"T","_deleted":true}"#));
        let empty = Document {
            id: "e".into(),
            fields: Fields::new(),
            version: 0,
            hlc: Hlc::default(),
            deleted: false,
        };
        assert_eq!(empty.user_json(), r#"{"_id":"e"}"#);
    }

    #[test]
    fn bad_documents_are_typed_errors() {
        assert_eq!(
            parse_document(json!([1])),
            Err(CoreError::NotAnObject("an array"))
        );
        assert_eq!(parse_document(json!({"x": 1})), Err(CoreError::MissingId));
        assert_eq!(
            parse_document(json!({"_id": 5})),
            Err(CoreError::InvalidId("a number".into()))
        );
        assert_eq!(
            parse_document(json!({"_id": ""})),
            Err(CoreError::InvalidId("an empty string".into()))
        );
        assert_eq!(
            parse_document(json!({"_id": "a", "_deleted": true})),
            Err(CoreError::ReservedField("_deleted".into()))
        );
        assert_eq!(
            parse_patch(json!({"_id": "b"})),
            Err(CoreError::ReservedField("_id".into()))
        );
        assert_eq!(
            parse_patch(json!("x")),
            Err(CoreError::NotAnObject("a string"))
        );
    }
}
