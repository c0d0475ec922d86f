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

/// A document and its sync metadata, held as one pointer to one allocation: a header (the
/// metadata, see [`Header`]), the `_id`, then the fields' canonical JSON text.
#[derive(Clone)]
pub struct Document {
    block: Box<str>,
}

/// A document's metadata as its block's header holds it. The header is ASCII (every byte below
/// 0x80), so the block is text and the id starts on a character boundary: reading the id or
/// the fields is a few byte reads, never a UTF-8 check. Its first byte is the header's length
/// (six bits) and the `deleted` flag (bit 6); then come variable-length integers of six bits a
/// byte (bit 6 set: more follow), least significant first: the id's length shifted left once
/// beside the history's mark, the version, and the timestamp's wall time, counter and node.
/// Typically 15-20 bytes.
#[derive(Clone, Copy)]
struct Header {
    version: Version,
    hlc: Hlc,
    deleted: bool,
    marked: bool,
}

/// The first byte's bit for a deleted document.
const DELETED_BIT: u8 = 0x40;
/// The first byte's bits holding the header's length.
const LEN_BITS: u8 = 0x3F;
/// A header byte's bit saying another follows in the same integer.
const MORE_BIT: u8 = 0x40;
/// Where the id's length (and the history's mark, its lowest bit) starts.
const ID_LEN_AT: usize = 1;

/// The longest header: its first byte, then the id's length and mark (33 bits: ids are shorter
/// than 4 GB), two `u64`s and two `u32`s, six bits a byte.
const MAX_HEADER: usize = 1 + 6 + 11 + 11 + 6 + 6;

/// Writes `n` at `at` in `out` as a variable-length integer of six bits a byte; returns where
/// it ends.
fn put_uint(out: &mut [u8; MAX_HEADER], mut at: usize, mut n: u64) -> usize {
    while n >= u64::from(MORE_BIT) {
        out[at] = (n as u8 & LEN_BITS) | MORE_BIT;
        n >>= 6;
        at += 1;
    }
    out[at] = n as u8;
    at + 1
}

/// The variable-length integer at `*at` in `bytes`, moving `*at` past it.
fn read_uint(bytes: &[u8], at: &mut usize) -> u64 {
    // Most (an id's length, a counter, the node) fit in one byte.
    let first = bytes[*at];
    if first & MORE_BIT == 0 {
        *at += 1;
        return u64::from(first);
    }
    let mut n = 0;
    let mut shift = 0;
    loop {
        let byte = bytes[*at];
        *at += 1;
        n |= u64::from(byte & LEN_BITS) << shift;
        if byte & MORE_BIT == 0 {
            return n;
        }
        shift += 6;
    }
}

/// A block holding `header`, `id` and `fields`.
fn pack(header: Header, id: &str, fields: &str) -> Box<str> {
    let (head, len) = encode_header(header, id.len());
    let mut text = String::with_capacity(len + id.len() + fields.len());
    // Every header byte is ASCII: the header is text as it is.
    text.push_str(std::str::from_utf8(&head[..len]).expect("the header is ASCII"));
    text.push_str(id);
    text.push_str(fields);
    text.into_boxed_str()
}

/// `header` for an id `id_len` bytes long, as a block begins with it: the bytes and how many.
fn encode_header(header: Header, id_len: usize) -> ([u8; MAX_HEADER], usize) {
    let mut head = [0; MAX_HEADER];
    let mut len = put_uint(
        &mut head,
        1,
        (id_len as u64) << 1 | u64::from(header.marked),
    );
    len = put_uint(&mut head, len, header.version);
    len = put_uint(&mut head, len, header.hlc.wall);
    len = put_uint(&mut head, len, header.hlc.counter.into());
    len = put_uint(&mut head, len, header.hlc.node.into());
    head[0] = len as u8 | if header.deleted { DELETED_BIT } else { 0 };
    (head, len)
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
        let header = Header {
            version,
            hlc,
            deleted,
            marked: false,
        };
        Document {
            block: pack(header, id, fields.as_json()),
        }
    }

    /// A document whose id and fields' JSON text are read from storage as bytes: they are
    /// checked to be UTF-8 once, together, as they go into its block (a load builds 100,000s
    /// of them). `None` if they are not UTF-8 or do not divide at a character.
    pub(crate) fn from_utf8(
        id: &[u8],
        fields: &[u8],
        version: Version,
        hlc: Hlc,
        deleted: bool,
    ) -> Option<Self> {
        let header = Header {
            version,
            hlc,
            deleted,
            marked: false,
        };
        let (head, len) = encode_header(header, id.len());
        let mut block = Vec::with_capacity(len + id.len() + fields.len());
        block.extend_from_slice(&head[..len]);
        block.extend_from_slice(id);
        block.extend_from_slice(fields);
        let block = String::from_utf8(block).ok()?;
        // The header is ASCII, so the id starts at a character; it must end at one too.
        block.is_char_boundary(len + id.len()).then(|| Document {
            block: block.into_boxed_str(),
        })
    }

    /// The document's `_id`.
    pub fn id(&self) -> &str {
        let (start, end) = self.id_range();
        &self.block[start..end]
    }

    /// Where the id is in the block.
    fn id_range(&self) -> (usize, usize) {
        let bytes = self.block.as_bytes();
        let start = usize::from(bytes[0] & LEN_BITS);
        let len = read_uint(bytes, &mut { ID_LEN_AT }) >> 1;
        (start, start + len as usize)
    }

    /// The user's fields.
    pub fn fields(&self) -> Fields<&str> {
        Fields::from_canonical(self.fields_json())
    }

    /// The fields' canonical JSON text, borrowed from the document.
    pub(crate) fn fields_json(&self) -> &str {
        self.id_and_fields().1
    }

    /// Its `_id` and its fields' JSON text, the header read once for both (a scan that
    /// compares ids and then matches fields reads each document's header once).
    pub(crate) fn id_and_fields(&self) -> (&str, &str) {
        let (start, end) = self.id_range();
        let (head_and_id, fields) = self.block.split_at(end);
        (&head_and_id[start..], fields)
    }

    /// The server version that produced this state; 0 if the server has never seen it.
    pub fn version(&self) -> Version {
        self.header().version
    }

    /// The timestamp of the write that produced this state (orders last-write-wins).
    pub fn hlc(&self) -> Hlc {
        self.header().hlc
    }

    /// A soft-deleted document: kept as a tombstone so the delete syncs and is never undone.
    pub fn deleted(&self) -> bool {
        self.block.as_bytes()[0] & DELETED_BIT != 0
    }

    /// The metadata the header holds.
    fn header(&self) -> Header {
        let bytes = self.block.as_bytes();
        let mut at = ID_LEN_AT;
        let id_len = read_uint(bytes, &mut at);
        let version = read_uint(bytes, &mut at);
        let wall = read_uint(bytes, &mut at);
        let counter = read_uint(bytes, &mut at);
        let node = read_uint(bytes, &mut at);
        Header {
            version,
            // Both were written from `u32`s.
            hlc: Hlc {
                wall,
                counter: counter as u32,
                node: node as u32,
            },
            deleted: self.deleted(),
            marked: id_len & 1 == 1,
        }
    }

    /// Sets the server version (writing the block again).
    pub fn set_version(&mut self, version: Version) {
        let header = Header {
            version,
            ..self.header()
        };
        self.block = pack(header, self.id(), self.fields_json());
    }

    /// Replaces the user's fields.
    pub fn set_fields(&mut self, fields: Fields<impl AsRef<str>>) {
        self.block = pack(self.header(), self.id(), fields.as_json());
    }

    /// Whether the engine's history marked the document: a thin history entry (one not
    /// holding its own copy of the document's text) may refer to it, so replacing an unmarked
    /// document costs the history nothing. A copy keeps the mark (a stale one costs the
    /// history a scan, never a wrong answer); it is not part of the document's value.
    pub(crate) fn history_marked(&self) -> bool {
        self.block.as_bytes()[ID_LEN_AT] & 1 == 1
    }

    /// Sets the history's mark (see [`Document::history_marked`]), in place.
    pub(crate) fn mark_for_history(&mut self) {
        if self.history_marked() {
            return;
        }
        let mut bytes = std::mem::take(&mut self.block)
            .into_boxed_bytes()
            .into_vec();
        bytes[ID_LEN_AT] |= 1;
        // The mark is a bit of an ASCII byte: the text stays valid (checked: no unsafe code).
        self.block = String::from_utf8(bytes)
            .expect("the header stays ASCII")
            .into_boxed_str();
    }

    /// The user-facing JSON: `_id`, the fields, and `_deleted: true` for a tombstone.
    pub fn to_json(&self) -> Value {
        serde_json::from_str(&self.user_json()).expect("documents are valid JSON")
    }

    /// [`Document::to_json`] of `doc`, or `null` when there is none (a document not yet
    /// created, or removed).
    pub fn json_or_null(doc: Option<&Document>) -> Value {
        doc.map_or(Value::Null, Document::to_json)
    }

    /// The user-facing JSON of [`Document::to_json`] as text, written straight from the fields'
    /// text: `{"_id":…, fields…, "_deleted":true}`.
    pub fn user_json(&self) -> String {
        let mut out = String::with_capacity(self.block.len() + 24);
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
        if self.deleted() {
            out.push_str(",\"_deleted\":true");
        }
        out.push('}');
    }

    /// A field's value; `_id` and `_deleted` are answered too, so queries can use them.
    pub fn field(&self, name: &str) -> Option<Value> {
        match name {
            ID_FIELD => Some(Value::String(self.id().into())),
            DELETED_FIELD => Some(Value::Bool(self.deleted())),
            _ => self.fields().get(name),
        }
    }

    /// A field's value as canonical JSON text, read in place; `_id` and `_deleted` are built.
    pub fn raw_field(&self, name: &str) -> Option<Cow<'_, str>> {
        match name {
            ID_FIELD => {
                let id = self.id();
                let mut text = String::with_capacity(id.len() + 2);
                write_json_string(&mut text, id);
                Some(Cow::Owned(text))
            }
            DELETED_FIELD => Some(Cow::Borrowed(if self.deleted() { "true" } else { "false" })),
            _ => raw_in(self.fields_json(), name).map(Cow::Borrowed),
        }
    }
}

/// Equal documents have equal ids, fields and metadata; the history's mark is ignored.
impl PartialEq for Document {
    fn eq(&self, other: &Self) -> bool {
        // The encoding is canonical: equal values, equal bytes, but for the mark's bit.
        let (a, b) = (self.block.as_bytes(), other.block.as_bytes());
        a.len() == b.len()
            && a[..ID_LEN_AT] == b[..ID_LEN_AT]
            && a[ID_LEN_AT] | 1 == b[ID_LEN_AT] | 1
            && a[ID_LEN_AT + 1..] == b[ID_LEN_AT + 1..]
    }
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("id", &self.id())
            .field("fields", &self.fields())
            .field("version", &self.version())
            .field("hlc", &self.hlc())
            .field("deleted", &self.deleted())
            .finish()
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

impl Serialize for Document {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Wire {
            id: self.id(),
            fields: self.fields(),
            version: self.version(),
            hlc: self.hlc(),
            deleted: self.deleted(),
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
        let doc = Document::new(&id, fields, 3, Hlc::default(), false);
        assert_eq!(
            doc.user_json(),
            r#"{"_id":"x\"y","Z":1,"_a":[1,{"b":null}],"title":"T"}"#
        );
        let doc = Document::new(&id, doc.fields(), 3, Hlc::default(), true);
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
    fn the_header_holds_every_value_of_the_metadata() {
        let clocks = [
            Hlc::default(),
            Hlc {
                wall: 1_764_489_600_123,
                counter: 7,
                node: 0x9e37_79b9,
            },
            Hlc {
                wall: u64::MAX,
                counter: u32::MAX,
                node: u32::MAX,
            },
            Hlc {
                wall: 63,
                counter: 64,
                node: 4095,
            },
        ];
        let versions = [0, 1, 63, 64, 4095, 4096, 1 << 35, u64::MAX - 1, u64::MAX];
        let ids = ["a", "日本", "ü-😀", &"long id ".repeat(40)];
        let fields = Fields::from_map(json!({"é": [1, "ß"]}).as_object().unwrap());
        for (i, &version) in versions.iter().enumerate() {
            for hlc in clocks {
                let id = ids[i % ids.len()];
                let deleted = i % 2 == 1;
                let doc = Document::new(id, fields.clone(), version, hlc, deleted);
                assert_eq!(
                    (doc.id(), doc.version(), doc.hlc(), doc.deleted()),
                    (id, version, hlc, deleted)
                );
                assert_eq!(doc.fields_json(), r#"{"é":[1,"ß"]}"#);
                let empty = Document::new(id, Fields::new(), version, hlc, !deleted);
                assert_eq!((empty.id(), empty.fields_json()), (id, "{}"));
                assert_eq!((empty.version(), empty.hlc()), (version, hlc));
                assert_eq!(empty.deleted(), !deleted);
            }
        }
    }

    #[test]
    fn setting_the_version_or_the_fields_keeps_the_rest() {
        let hlc = Hlc {
            wall: u64::MAX,
            counter: 2,
            node: 77,
        };
        let mut doc = Document::new("ü", Fields::new(), 5, hlc, true);
        doc.set_fields(Fields::from_map(json!({"n": 1}).as_object().unwrap()));
        doc.set_version(u64::MAX);
        assert_eq!((doc.id(), doc.version(), doc.hlc()), ("ü", u64::MAX, hlc));
        doc.set_version(6);
        doc.set_fields(Fields::from_map(json!({"n": 2}).as_object().unwrap()));
        assert_eq!(
            (
                doc.id(),
                doc.fields_json(),
                doc.version(),
                doc.hlc(),
                doc.deleted()
            ),
            ("ü", r#"{"n":2}"#, 6, hlc, true)
        );
    }

    #[test]
    fn the_history_mark_survives_copies_and_changes_but_not_equality() {
        let hlc = Hlc {
            wall: 9,
            counter: 0,
            node: 3,
        };
        let plain = Document::new("日本", Fields::new(), 1, hlc, false);
        let mut marked = plain.clone();
        assert!(!marked.history_marked());
        marked.mark_for_history();
        assert!(marked.history_marked() && !plain.history_marked());
        assert_eq!(marked, plain, "the mark is not part of the value");
        assert_eq!(
            (marked.id(), marked.version(), marked.hlc()),
            ("日本", 1, hlc)
        );
        marked.set_version(2);
        marked.set_fields(Fields::from_map(json!({"a": 1}).as_object().unwrap()));
        assert!(marked.clone().history_marked());
        assert_ne!(marked, plain);
        assert_eq!(format!("{plain:?}"), format!("{:?}", plain.clone()));
        assert!(format!("{plain:?}").contains(r#"id: "日本""#));
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
