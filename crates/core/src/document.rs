//! Documents: JSON objects with an `_id`, plus the sync metadata the engine keeps beside them.

use crate::error::json_type;
use crate::hlc::Hlc;
use crate::{CoreError, DocId, Version};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// The field holding a document's id in user-facing JSON.
pub const ID_FIELD: &str = "_id";
/// The field marking a soft-deleted document (a tombstone) in user-facing JSON.
pub const DELETED_FIELD: &str = "_deleted";

use crate::fields::raw_in;
pub use crate::fields::Fields;

/// A document and its sync metadata. Its id and its fields' text are held in one allocation.
#[derive(Clone, PartialEq)]
pub struct Document {
    /// The `_id` followed by the fields' canonical JSON text.
    text: Box<str>,
    /// Where the id ends in `text`.
    id_len: u32,
    /// The server version that produced this state; 0 if the server has never seen it.
    pub version: Version,
    /// The timestamp of the write that produced this state (orders last-write-wins).
    pub hlc: Hlc,
    /// A soft-deleted document: kept as a tombstone so the delete syncs and is never undone.
    pub deleted: bool,
    /// Whether a thin history entry may refer to this document (in the padding beside
    /// `deleted`; not part of its value).
    pub(crate) history_mark: HistoryMark,
}

/// A mark the engine's history sets on a document that a thin entry (one not holding its own
/// copy of the document's text) refers to, so that replacing an unmarked document costs
/// nothing. A copy keeps the mark: a stale one costs the history a scan, never a wrong answer.
/// It is not part of a document's value (every two marks are equal).
#[derive(Default)]
pub(crate) struct HistoryMark(std::sync::atomic::AtomicBool);

impl HistoryMark {
    /// Whether the document is marked.
    pub(crate) fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Marks the document.
    pub(crate) fn set(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Clone for HistoryMark {
    fn clone(&self) -> Self {
        HistoryMark(self.is_set().into())
    }
}

impl PartialEq for HistoryMark {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// A document as serde writes it: `{id, fields, version, hlc, deleted}`.
#[derive(Serialize)]
#[serde(rename = "Document")]
struct Wire<I, F> {
    id: I,
    fields: F,
    version: Version,
    hlc: Hlc,
    deleted: bool,
}

impl Document {
    /// A document with this id, fields and metadata.
    pub fn new(
        id: &str,
        fields: Fields<impl AsRef<str>>,
        version: Version,
        hlc: Hlc,
        deleted: bool,
    ) -> Self {
        Document {
            text: pack(id, fields.as_json()),
            id_len: u32::try_from(id.len()).expect("ids are shorter than 4 GB"),
            version,
            hlc,
            deleted,
            history_mark: HistoryMark::default(),
        }
    }

    /// The document's `_id`.
    pub fn id(&self) -> &str {
        &self.text[..self.id_len as usize]
    }

    /// The user's fields.
    pub fn fields(&self) -> Fields<&str> {
        Fields::from_canonical(self.fields_json())
    }

    /// The fields' canonical JSON text, borrowed from the document.
    pub(crate) fn fields_json(&self) -> &str {
        &self.text[self.id_len as usize..]
    }

    /// Replaces the user's fields.
    pub fn set_fields(&mut self, fields: Fields<impl AsRef<str>>) {
        self.text = pack(self.id(), fields.as_json());
    }

    /// The user-facing JSON: `_id`, the fields, and `_deleted: true` for a tombstone.
    pub fn to_json(&self) -> Value {
        serde_json::from_str(&self.user_json()).expect("documents are valid JSON")
    }

    /// The user-facing JSON of [`Document::to_json`] as text, written straight from the fields'
    /// text: `{"_id":…, fields…, "_deleted":true}`.
    pub fn user_json(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 24);
        self.write_user_json(&mut out);
        out
    }

    /// Appends [`Document::user_json`] to `out`.
    pub fn write_user_json(&self, out: &mut String) {
        out.push_str("{\"_id\":");
        write_json_string(out, self.id());
        let fields = self.fields();
        if !fields.is_empty() {
            let fields = fields.as_json();
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
            ID_FIELD => Some(Value::String(self.id().into())),
            DELETED_FIELD => Some(Value::Bool(self.deleted)),
            _ => self.fields().get(name),
        }
    }

    /// A field's value as canonical JSON text, read in place; `_id` and `_deleted` are built.
    pub fn raw_field(&self, name: &str) -> Option<Cow<'_, str>> {
        match name {
            ID_FIELD => {
                let mut text = String::with_capacity(self.id_len as usize + 2);
                write_json_string(&mut text, self.id());
                Some(Cow::Owned(text))
            }
            DELETED_FIELD => Some(Cow::Borrowed(if self.deleted { "true" } else { "false" })),
            _ => raw_in(self.fields_json(), name).map(Cow::Borrowed),
        }
    }
}

/// An id and fields' text in one allocation.
fn pack(id: &str, fields: &str) -> Box<str> {
    let mut text = String::with_capacity(id.len() + fields.len());
    text.push_str(id);
    text.push_str(fields);
    text.into_boxed_str()
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("id", &self.id())
            .field("fields", &self.fields())
            .field("version", &self.version)
            .field("hlc", &self.hlc)
            .field("deleted", &self.deleted)
            .finish()
    }
}

impl Serialize for Document {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Wire {
            id: self.id(),
            fields: self.fields(),
            version: self.version,
            hlc: self.hlc,
            deleted: self.deleted,
        }
        .serialize(serializer)
    }
}

crate::deserialize_object!(Document {
    "id" => id: String,
    "fields" => fields: Fields,
    "version" => version: Version,
    "hlc" => hlc: Hlc,
    "deleted" => deleted: bool,
} => Document::new(&id, fields, version, hlc, deleted));

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
        let doc = Document::new(&id, fields, 0, Hlc::default(), true);
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
        let mut doc = Document::new(&id, fields, 3, Hlc::default(), false);
        assert_eq!(
            doc.user_json(),
            r#"{"_id":"x\"y","Z":1,"_a":[1,{"b":null}],"title":"T"}"#
        );
        doc.deleted = true;
        assert!(doc.user_json().ends_with(r#""title":"T","_deleted":true}"#));
        let empty = Document::new("e", Fields::new(), 0, Hlc::default(), false);
        assert_eq!(empty.user_json(), r#"{"_id":"e"}"#);
    }

    #[test]
    fn a_document_keeps_its_id_when_its_fields_change_and_serializes_as_before() {
        let (id, fields) = parse_document(json!({"_id": "日本", "n": 1})).unwrap();
        let mut doc = Document::new(&id, fields, 2, Hlc::default(), false);
        doc.set_fields(Fields::from_map(
            json!({"a": [1], "n": 2}).as_object().unwrap(),
        ));
        assert_eq!(doc.id(), "日本");
        assert_eq!(doc.fields().as_json(), r#"{"a":[1],"n":2}"#);
        let wire = serde_json::to_value(&doc).unwrap();
        assert_eq!(
            wire,
            json!({"id": "日本", "fields": {"a": [1], "n": 2}, "version": 2,
                   "hlc": {"wall": 0, "counter": 0, "node": 0}, "deleted": false})
        );
        assert_eq!(serde_json::from_value::<Document>(wire).unwrap(), doc);
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
