//! Documents: JSON objects with an `_id`, plus the sync metadata the engine keeps beside them.

use crate::error::json_type;
use crate::hlc::Hlc;
use crate::{CoreError, DocId, Version};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// The field holding a document's id in user-facing JSON.
pub const ID_FIELD: &str = "_id";
/// The field marking a soft-deleted document (a tombstone) in user-facing JSON.
pub const DELETED_FIELD: &str = "_deleted";

/// A JSON object's fields, without `_id` and `_deleted`.
pub type Fields = Map<String, Value>;

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
    /// The user-facing JSON: the fields plus `_id`, and `_deleted: true` for a tombstone.
    pub fn to_json(&self) -> Value {
        let mut object = Map::with_capacity(self.fields.len() + 2);
        object.insert(ID_FIELD.into(), Value::String(self.id.clone()));
        object.extend(self.fields.iter().map(|(k, v)| (k.clone(), v.clone())));
        if self.deleted {
            object.insert(DELETED_FIELD.into(), Value::Bool(true));
        }
        Value::Object(object)
    }

    /// The user-facing JSON of [`Document::to_json`], serialized straight from the document
    /// (same keys, same order) without copying it first.
    pub fn json_view(&self) -> JsonView<'_> {
        JsonView(self)
    }

    /// A field's value; `_id` and `_deleted` are answered too, so queries can use them.
    pub fn field(&self, name: &str) -> Option<Value> {
        self.field_ref(name).map(Cow::into_owned)
    }

    /// A field's value without copying it (only `_id` and `_deleted` are built).
    pub fn field_ref(&self, name: &str) -> Option<Cow<'_, Value>> {
        match name {
            ID_FIELD => Some(Cow::Owned(Value::String(self.id.clone()))),
            DELETED_FIELD => Some(Cow::Owned(Value::Bool(self.deleted))),
            _ => self.fields.get(name).map(Cow::Borrowed),
        }
    }
}

/// A document serialized as its user-facing JSON (see [`Document::json_view`]).
#[derive(Debug, Clone, Copy)]
pub struct JsonView<'a>(&'a Document);

impl Serialize for JsonView<'_> {
    /// Writes the keys in the order of [`Document::to_json`]'s map (sorted, as `serde_json`'s
    /// `Map` keeps them): `_deleted` and `_id` go where they sort among the fields.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let doc = self.0;
        let reserved: &[Reserved] = if doc.deleted {
            &[Reserved::Deleted, Reserved::Id]
        } else {
            &[Reserved::Id]
        };
        let mut map = serializer.serialize_map(Some(doc.fields.len() + reserved.len()))?;
        let write = |map: &mut S::SerializeMap, field: Reserved| match field {
            Reserved::Deleted => map.serialize_entry(DELETED_FIELD, &true),
            Reserved::Id => map.serialize_entry(ID_FIELD, &doc.id),
        };
        let mut reserved = reserved.iter().copied().peekable();
        for (key, value) in &doc.fields {
            while let Some(field) = reserved.next_if(|f| f.name() < key.as_str()) {
                write(&mut map, field)?;
            }
            map.serialize_entry(key, value)?;
        }
        for field in reserved {
            write(&mut map, field)?;
        }
        map.end()
    }
}

/// The fields [`JsonView`] adds to a document's own, in their sort order.
#[derive(Clone, Copy)]
enum Reserved {
    Deleted,
    Id,
}

impl Reserved {
    fn name(self) -> &'static str {
        match self {
            Reserved::Deleted => DELETED_FIELD,
            Reserved::Id => ID_FIELD,
        }
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
    Ok((id, fields))
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
    Ok(fields)
}

fn check_reserved(fields: &Fields) -> Result<(), CoreError> {
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
    fn the_json_view_writes_what_to_json_builds() {
        // Keys sorting before, between and after `_deleted` and `_id` (uppercase, `_a`, `_e`,
        // `_z`, lowercase), with and without the tombstone mark.
        let (id, fields) = parse_document(json!({
            "_id": "x\"y", "Z": 1, "_a": [1, {"b": null}], "_e": "s", "_z": 2.5, "title": "T"
        }))
        .unwrap();
        for deleted in [false, true] {
            let doc = Document {
                id: id.clone(),
                fields: fields.clone(),
                version: 3,
                hlc: Hlc::default(),
                deleted,
            };
            assert_eq!(
                serde_json::to_string(&doc.json_view()).unwrap(),
                serde_json::to_string(&doc.to_json()).unwrap()
            );
        }
        let empty = Document {
            id: "e".into(),
            fields: Fields::new(),
            version: 0,
            hlc: Hlc::default(),
            deleted: false,
        };
        assert_eq!(
            serde_json::to_string(&empty.json_view()).unwrap(),
            r#"{"_id":"e"}"#
        );
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
