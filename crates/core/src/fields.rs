//! A document's fields held as canonical JSON text: compact, keys sorted, exactly as
//! `serde_json` writes a `Map`. A document then costs about its JSON size in memory, crosses to
//! JavaScript and storage without being encoded again, and loads without being parsed. Fields
//! are read in place by a small scanner; equal fields have equal text.

use serde::de::{Deserialize, Deserializer};
use serde::ser::{Error as _, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// A JSON object's fields, without `_id` and `_deleted`, as canonical JSON text held as `T`:
/// owned (`Box<str>`, the default) or borrowed from a document (`&str`, what
/// [`Document::fields`](crate::document::Document::fields) gives).
#[derive(Clone, Copy)]
pub struct Fields<T = Box<str>>(T);

impl Default for Fields {
    fn default() -> Self {
        Self::new()
    }
}

impl Fields {
    /// No fields: `{}`.
    pub fn new() -> Self {
        Fields("{}".into())
    }

    /// The fields of a JSON object.
    pub fn from_map(map: &Map<String, Value>) -> Self {
        Fields(
            serde_json::to_string(map)
                .expect("JSON values serialize")
                .into_boxed_str(),
        )
    }

    /// Sets one field.
    pub fn insert(&mut self, name: impl Into<String>, value: Value) {
        let mut patch = Map::new();
        patch.insert(name.into(), value);
        *self = self.merge(&Fields::from_map(&patch));
    }
}

impl<T: AsRef<str>> Fields<T> {
    /// Text this crate wrote itself (storage reads it back): trusted to be canonical.
    pub fn from_canonical(text: T) -> Self {
        Fields(text)
    }

    /// These fields borrowed.
    pub fn view(&self) -> Fields<&str> {
        Fields(self.as_json())
    }

    /// These fields in their own allocation.
    pub fn owned(&self) -> Fields {
        Fields(self.as_json().into())
    }

    /// The fields as a JSON object.
    pub fn to_map(&self) -> Map<String, Value> {
        serde_json::from_str(self.as_json()).unwrap_or_default()
    }

    /// The canonical JSON text.
    pub fn as_json(&self) -> &str {
        self.0.as_ref()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.as_json().len() <= 2
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.entries().count()
    }

    /// Whether the field exists.
    pub fn contains_key(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    /// A field's value.
    pub fn get(&self, name: &str) -> Option<Value> {
        self.raw(name)
            .and_then(|raw| serde_json::from_str(raw).ok())
    }

    /// A field's value as its JSON text.
    pub fn raw(&self, name: &str) -> Option<&str> {
        raw_in(self.as_json(), name)
    }

    /// The value at a dotted path (`"address.city"`) as JSON text: each step but the last must
    /// be an object.
    pub fn raw_path(&self, path: &str) -> Option<&str> {
        raw_at(self.as_json(), path)
    }

    /// The fields, in key order: each name and its value's JSON text.
    pub fn entries(&self) -> Entries<'_> {
        Entries {
            text: self.as_json(),
            at: 1,
        }
    }

    /// These fields with `patch`'s set over them (a shallow merge), without parsing a value.
    pub fn merge(&self, patch: &Fields<impl AsRef<str>>) -> Fields {
        let mut out = String::with_capacity(self.as_json().len() + patch.as_json().len());
        out.push('{');
        let (mut mine, mut theirs) = (self.entries().peekable(), patch.entries().peekable());
        let mut push = |entry: &Entry<'_>| {
            if out.len() > 1 {
                out.push(',');
            }
            out.push_str(entry.raw_key);
            out.push(':');
            out.push_str(entry.value);
        };
        loop {
            let order = match (mine.peek(), theirs.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(a), Some(b)) => a.name().cmp(&b.name()),
            };
            match order {
                Ordering::Less => push(&mine.next().expect("peeked")),
                Ordering::Greater => push(&theirs.next().expect("peeked")),
                Ordering::Equal => {
                    mine.next();
                    push(&theirs.next().expect("peeked"));
                }
            }
        }
        out.push('}');
        Fields(out.into_boxed_str())
    }
}

/// Fields are equal when their text is, owned or borrowed.
impl<T: AsRef<str>, U: AsRef<str>> PartialEq<Fields<U>> for Fields<T> {
    fn eq(&self, other: &Fields<U>) -> bool {
        self.as_json() == other.as_json()
    }
}

impl<T: AsRef<str>> Eq for Fields<T> {}

impl<T: AsRef<str>> Hash for Fields<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_json().hash(state);
    }
}

impl From<Map<String, Value>> for Fields {
    fn from(map: Map<String, Value>) -> Self {
        Fields::from_map(&map)
    }
}

impl<T: AsRef<str>> fmt::Debug for Fields<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_json())
    }
}

impl<T: AsRef<str>> Serialize for Fields<T> {
    /// Written as the JSON object itself (with `serde_json`, whose raw values this relies on).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue = serde_json::from_str(self.as_json()).map_err(S::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Fields {
    /// Any JSON object, brought to canonical form; text already canonical is taken as it is.
    /// It reads the object's raw text, so it needs `serde_json`'s own deserializers (text or
    /// `Value`), not serde's buffered content: enums holding fields are internally tagged with
    /// [`deserialize_tagged!`](crate::deserialize_tagged), which reads straight from the input.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Fields::from_json(raw.get()).map_err(serde::de::Error::custom)
    }
}

impl Fields {
    /// The fields of a JSON object's text. Text that is already canonical (no whitespace, keys
    /// in order, only plain strings, integers and literals: what most documents are) is taken
    /// as it is; anything else is parsed and written canonically.
    pub fn from_json(text: &str) -> Result<Fields, serde_json::Error> {
        if is_plain_canonical(text) {
            return Ok(Fields(text.into()));
        }
        serde_json::from_str::<Map<String, Value>>(text).map(|map| Fields::from_map(&map))
    }
}

/// Whether `text` is a flat JSON object exactly as `serde_json` writes it: no whitespace, keys
/// in order without escapes, and values that are strings without escapes, integers of at most
/// 18 digits (not `-0`), `true`, `false` or `null`. Anything else needs parsing to be sure.
fn is_plain_canonical(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'{') || bytes.last() != Some(&b'}') {
        return false;
    }
    if bytes.len() == 2 {
        return true;
    }
    let plain_string = |at: usize| -> Option<usize> {
        let len = bytes[at + 1..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\')?;
        (bytes[at + 1 + len] == b'"').then_some(at + len + 2)
    };
    let mut at = 1;
    let mut previous: &[u8] = &[];
    loop {
        if bytes.get(at) != Some(&b'"') {
            return false;
        }
        let Some(key_end) = plain_string(at) else {
            return false;
        };
        let key = &bytes[at + 1..key_end - 1];
        if at > 1 && key <= previous {
            return false;
        }
        previous = key;
        if bytes.get(key_end) != Some(&b':') {
            return false;
        }
        let start = key_end + 1;
        let end = match bytes.get(start) {
            Some(b'"') => match plain_string(start) {
                Some(end) => end,
                None => return false,
            },
            Some(b't') if bytes[start..].starts_with(b"true") => start + 4,
            Some(b'f') if bytes[start..].starts_with(b"false") => start + 5,
            Some(b'n') if bytes[start..].starts_with(b"null") => start + 4,
            Some(b'-' | b'0'..=b'9') => {
                let digits = bytes[start..]
                    .iter()
                    .position(|&b| b == b',' || b == b'}')
                    .unwrap_or(0);
                let number = &bytes[start..start + digits];
                let body = number.strip_prefix(b"-").unwrap_or(number);
                let canonical = !body.is_empty()
                    && body.len() <= 18
                    && body.iter().all(u8::is_ascii_digit)
                    && (body == b"0" && number.len() == 1 || body[0] != b'0');
                if !canonical {
                    return false;
                }
                start + digits
            }
            _ => return false,
        };
        match bytes.get(end) {
            Some(b',') => at = end + 1,
            Some(b'}') if end == bytes.len() - 1 => return true,
            _ => return false,
        }
    }
}

/// One field of a [`Fields`].
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The name as written, quotes and escapes included.
    raw_key: &'a str,
    /// The value's JSON text.
    pub value: &'a str,
}

impl<'a> Entry<'a> {
    /// The field's name.
    pub fn name(&self) -> Cow<'a, str> {
        unquote(self.raw_key)
    }
}

/// The fields of a [`Fields`], in key order.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        let bytes = self.text.as_bytes();
        if *bytes.get(self.at)? != b'"' {
            return None;
        }
        let key_end = string_end(bytes, self.at)?;
        let value_start = key_end + 1;
        let value_end = value_end(bytes, value_start)?;
        let entry = Entry {
            raw_key: self.text.get(self.at..key_end)?,
            value: self.text.get(value_start..value_end)?,
        };
        // Past the `,` (or onto the closing `}`).
        self.at = value_end + 1;
        Some(entry)
    }
}

/// The value at a dotted `path` in the object `object` (canonical JSON text).
pub(crate) fn raw_at<'a>(object: &'a str, path: &str) -> Option<&'a str> {
    match path.bytes().position(|b| b == b'.') {
        None => raw_in(object, path),
        Some(dot) => raw_at(raw_in(object, &path[..dot])?, &path[dot + 1..]),
    }
}

/// The value of `name` in the object `object` (canonical JSON text), if it is an object that
/// has it.
pub(crate) fn raw_in<'a>(object: &'a str, name: &str) -> Option<&'a str> {
    let bytes = object.as_bytes();
    if bytes.first() != Some(&b'{') {
        return None;
    }
    // Canonical text escapes only `"`, `\` and control characters: a name without them is
    // the key written as it is, and the keys are in order, so the search stops past it.
    let plain = !name.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20);
    let mut at = 1;
    while bytes.get(at) == Some(&b'"') {
        let (order, key_end) = key_order(object, at, name, plain)?;
        // Past the `:`.
        let start = key_end + 1;
        match order {
            Ordering::Equal => return object.get(start..value_end(bytes, start)?),
            Ordering::Greater => return None,
            // Past the `,` (or onto the closing `}`).
            Ordering::Less => at = value_end(bytes, start)? + 1,
        }
    }
    None
}

/// How the key starting at `at` (its opening quote) orders against `name`, read in one pass
/// without unquoting it, and the index just past the key (unknown, and not needed, when it is
/// greater). A key with escapes is compared by its content, `Less` unless it is `name`: the
/// search goes on past it.
fn key_order(object: &str, at: usize, name: &str, plain: bool) -> Option<(Ordering, usize)> {
    let bytes = object.as_bytes();
    if plain {
        let mut i = at + 1;
        for &want in name.as_bytes() {
            match *bytes.get(i)? {
                b'\\' => break,
                b'"' => return Some((Ordering::Less, i + 1)),
                b if b == want => i += 1,
                b if b < want => return Some((Ordering::Less, string_end(bytes, i)?)),
                _ => return Some((Ordering::Greater, 0)),
            }
        }
        match *bytes.get(i)? {
            b'\\' => {}
            b'"' => return Some((Ordering::Equal, i + 1)),
            _ => return Some((Ordering::Greater, 0)),
        }
    }
    let end = string_end(bytes, at)?;
    let order = if unquote(&object[at..end]) == name {
        Ordering::Equal
    } else {
        Ordering::Less
    };
    Some((order, end))
}

/// A JSON string's content (`"a\"b"` → `a"b`); borrowed unless it has escapes.
fn unquote(raw: &str) -> Cow<'_, str> {
    let inner = &raw[1..raw.len() - 1];
    if inner.contains('\\') {
        Cow::Owned(serde_json::from_str(raw).unwrap_or_default())
    } else {
        Cow::Borrowed(inner)
    }
}

/// The index just past the string starting at `start` (its opening quote, or any byte of
/// it that is not an escape).
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The index just past the value starting at `start`.
fn value_end(bytes: &[u8], start: usize) -> Option<usize> {
    match *bytes.get(start)? {
        b'"' => string_end(bytes, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            while i < bytes.len() {
                match bytes[i] {
                    b'"' => {
                        i = string_end(bytes, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            let len = bytes[start..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']'))?;
            Some(start + len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> Fields {
        Fields::from_map(value.as_object().expect("an object"))
    }

    #[test]
    fn fields_are_read_in_place() {
        let f = fields(json!({
            "title": "a \"quoted\" {title}", "n": -1.5e3, "tags": ["x", {"y": "]"}],
            "nested": {"city": "Oslo", "geo": {"lat": 59.9}}, "none": null, "t\"k": true
        }));
        assert_eq!(f.get("title"), Some(json!("a \"quoted\" {title}")));
        assert_eq!(f.get("n"), Some(json!(-1500.0)));
        assert_eq!(f.get("tags"), Some(json!(["x", {"y": "]"}])));
        assert_eq!(f.get("none"), Some(Value::Null));
        assert_eq!(f.get("t\"k"), Some(json!(true)));
        assert_eq!(f.get("missing"), None);
        assert_eq!(f.raw_path("nested.geo.lat"), Some("59.9"));
        assert_eq!(f.raw_path("nested.city"), Some("\"Oslo\""));
        assert_eq!(f.raw_path("title.x"), None);
        assert_eq!(f.len(), 6);
        assert_eq!(
            Value::Object(f.to_map()),
            serde_json::from_str::<Value>(f.as_json()).unwrap()
        );
        assert!(Fields::new().is_empty());
        assert_eq!(Fields::new().entries().count(), 0);
        // Every key is found among keys written with escapes, and names between them are not.
        let f = fields(json!({"\u{1}": 1, "a\"": 2, "a\"b": 3, "a\\": 4, "b": 5, "é": 6}));
        for (i, name) in ["\u{1}", "a\"", "a\"b", "a\\", "b", "é"].iter().enumerate() {
            assert_eq!(f.get(name), Some(json!(i + 1)), "{name}");
        }
        for name in ["", "a", "a\"a", "c", "z", "éé"] {
            assert_eq!(f.get(name), None, "{name}");
        }
    }

    #[test]
    fn a_name_is_found_among_keys_that_share_its_start_or_sort_around_it() {
        let f = fields(json!({
            "a": 1, "ab": 2, "abc": 3, "a\\b": 4, "b\"": 5, "bb": {"x.y": 6, "x": {"y\"": 7}}, "é": 8
        }));
        for (name, value) in [
            ("a", 1),
            ("ab", 2),
            ("abc", 3),
            ("a\\b", 4),
            ("b\"", 5),
            ("é", 8),
        ] {
            assert_eq!(f.get(name), Some(json!(value)), "{name}");
        }
        // Before the first key, between keys, a key's start, past a key, after the last.
        for name in [
            "", "0", "aa", "abb", "abcd", "b", "ba", "bbb", "e", "éé", "\\",
        ] {
            assert_eq!(f.get(name), None, "{name}");
        }
        assert_eq!(f.raw_path("bb.x.y\""), Some("7"));
        assert_eq!(f.raw_path("bb.x"), Some("{\"y\\\"\":7}"));
        // A dot always separates steps: a key holding one is not reached by a path.
        assert_eq!(f.raw_path("bb.x.y"), None);
        assert_eq!(f.raw_path("a.b"), None);
        assert_eq!(f.raw_path("missing.x"), None);
    }

    #[test]
    fn merging_sets_the_patch_over_the_fields_in_key_order() {
        let base = fields(json!({"a": 1, "c": {"x": 1}, "e": "keep"}));
        let patch = fields(json!({"b": [2], "c": null, "f": "new", "0": 0}));
        let merged = base.merge(&patch);
        let mut expected = base.to_map();
        expected.extend(patch.to_map());
        assert_eq!(merged, Fields::from_map(&expected));
        assert_eq!(base.merge(&Fields::new()), base);
        assert_eq!(Fields::new().merge(&patch), patch);
    }

    #[test]
    fn serde_round_trips_any_object_to_the_canonical_text() {
        let f: Fields = serde_json::from_str(r#"{ "b" : 1, "a": [1, 2.50] }"#).unwrap();
        assert_eq!(f.as_json(), r#"{"a":[1,2.5],"b":1}"#);
        assert_eq!(serde_json::to_string(&f).unwrap(), f.as_json());
        let nested = serde_json::to_string(&json!({"fields": f.to_map()})).unwrap();
        assert_eq!(nested, format!(r#"{{"fields":{}}}"#, f.as_json()));
        assert!(serde_json::from_str::<Fields>("[1]").is_err());
    }

    #[test]
    fn canonical_text_is_taken_as_it_is_and_anything_else_is_rewritten() {
        for text in [
            r#"{}"#,
            r#"{"a":1,"b":"x","c":true,"d":null,"e":-12,"f":false}"#,
            r#"{"done":false,"title":"日本 z"}"#,
        ] {
            assert!(is_plain_canonical(text), "{text}");
            assert_eq!(Fields::from_json(text).unwrap().as_json(), text);
        }
        for (text, canonical) in [
            (r#"{"b":1,"a":2}"#, r#"{"a":2,"b":1}"#),
            (r#"{ "a": 1 }"#, r#"{"a":1}"#),
            (r#"{"a":1.50}"#, r#"{"a":1.5}"#),
            (r#"{"a":-0}"#, r#"{"a":-0.0}"#),
            (r#"{"a":"\u0041"}"#, r#"{"a":"A"}"#),
            (r#"{"a":{"d":1,"c":2}}"#, r#"{"a":{"c":2,"d":1}}"#),
            (r#"{"a":1,"a":2}"#, r#"{"a":2}"#),
            (
                r#"{"a":123456789012345678901}"#,
                r#"{"a":1.2345678901234567e+20}"#,
            ),
        ] {
            assert!(!is_plain_canonical(text), "{text}");
            assert_eq!(
                Fields::from_json(text).unwrap().as_json(),
                canonical,
                "{text}"
            );
        }
        assert!(Fields::from_json("[1]").is_err());
    }

    #[test]
    fn the_scanner_never_panics_on_damaged_text() {
        for text in [
            "",
            "{",
            "{\"a",
            "{\"a\":",
            "{\"a\":[1,",
            "{\"a\":\"x\\",
            "x",
            "{}}",
        ] {
            let f = Fields::from_canonical(text);
            let _ = (f.get("a"), f.len(), f.raw_path("a.b"), f.merge(&f));
        }
    }
}
