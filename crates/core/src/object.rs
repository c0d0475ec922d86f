//! Reading structs from JSON objects, for the structs the browser decodes.
//!
//! serde's derived `Deserialize` gives each struct two readers, one for an object and one for an
//! array of its fields in order (which no Ferrosync format writes), and a key reader of its own:
//! in the WebAssembly, a copy of each for every struct. [`deserialize_object!`] writes a struct's
//! `Deserialize` that reads objects only, every struct's keys read by the one [`Key`] reader
//! (the variants of [`deserialize_tagged!`](crate::deserialize_tagged) read their fields with it
//! too). As with the derive, unknown fields are ignored (refused for a struct marked
//! `deny_unknown_fields`, as serde's attribute does), and errors read as serde's own
//! (`missing field `id``, `duplicate field `id``, `invalid type: …, expected struct Transaction`,
//! `unknown field `x`, expected one of `limit`, `state``).
//!
//! [`json_object`] builds the JSON objects the engine hands to JavaScript from their members,
//! without serde_json's `Value` serializer (`json!` and `to_value` compile one per type).

use serde::de::{DeserializeSeed, Error, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::fmt;
use std::marker::PhantomData;

/// Reads an object's key: its place in a struct's fields, as the struct's own lookup finds it
/// (comparing the key with its names as constants), or `None` for a field not read; with the
/// struct's names, a key that is none of them is an error (`unknown field`).
#[derive(Clone, Copy)]
pub struct Key(
    pub fn(&str) -> Option<usize>,
    pub Option<&'static [&'static str]>,
);

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("field identifier")
    }

    fn visit_str<E: Error>(self, key: &str) -> Result<Option<usize>, E> {
        match ((self.0)(key), self.1) {
            (None, Some(names)) => Err(E::unknown_field(key, names)),
            (place, _) => Ok(place),
        }
    }
}

/// Reads the value of field `name` into `slot` (an error if it came before).
pub fn set<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
    slot: &mut Option<T>,
    name: &'static str,
    map: &mut A,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(A::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

/// The value of required field `name` (an error if the object lacked it).
pub fn required<T, E: Error>(slot: Option<T>, name: &'static str) -> Result<T, E> {
    slot.ok_or_else(|| E::missing_field(name))
}

/// The value of field `name` when the object lacked it, as serde's derive reads it: `None` for an
/// `Option`, an error for other types.
pub fn absent<'de, T: Deserialize<'de>, E: Error>(name: &'static str) -> Result<T, E> {
    T::deserialize(Absent(name, PhantomData))
}

/// A missing field, as a deserializer that reads `None` and nothing else.
struct Absent<E>(&'static str, PhantomData<E>);

impl<'de, E: Error> Deserializer<'de> for Absent<E> {
    type Error = E;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, E> {
        Err(E::missing_field(self.0))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_none()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// Implements `Deserialize` for a struct read from a JSON object.
///
/// Lists each field as `"wire name" => field: Type`, followed by `= default` when a missing
/// field takes its type's default (as `#[serde(default)]` does, and as the derive does for an
/// `Option`); an optional `=> expression` then builds the struct from those fields. A leading
/// `deny_unknown_fields` refuses keys that are none of the fields.
#[macro_export]
macro_rules! deserialize_object {
    (deny_unknown_fields $struct:ident {
        $($name:literal => $field:ident: $ty:ty $(= $default:ident)?),* $(,)?
    }) => {
        $crate::deserialize_object!(@impl $struct, Some(&[$($name),*]),
            { $($name => $field: $ty $(= $default)?),* } => $struct { $($field),* }
        );
    };
    ($struct:ident { $($name:literal => $field:ident: $ty:ty $(= $default:ident)?),* $(,)? }) => {
        $crate::deserialize_object!(
            $struct { $($name => $field: $ty $(= $default)?),* } => $struct { $($field),* }
        );
    };
    ($struct:ident { $($name:literal => $field:ident: $ty:ty $(= $default:ident)?),* $(,)? }
        => $build:expr) => {
        $crate::deserialize_object!(@impl $struct, None,
            { $($name => $field: $ty $(= $default)?),* } => $build
        );
    };
    // The impl, with the names that are the only keys allowed (`None`: any key).
    (@impl $struct:ident, $known:expr,
        { $($name:literal => $field:ident: $ty:ty $(= $default:ident)?),* } => $build:expr) => {
        impl<'de> serde::Deserialize<'de> for $struct {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct ObjectVisitor;
                impl<'de> serde::de::Visitor<'de> for ObjectVisitor {
                    type Value = $struct;

                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str(concat!("struct ", stringify!($struct)))
                    }

                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$struct, A::Error> {
                        $crate::deserialize_object!(
                            @read map $known, { $($name => $field: $ty $(= $default)?),* }
                        );
                        Ok($build)
                    }
                }
                deserializer.deserialize_map(ObjectVisitor)
            }
        }
    };
    // Reads the fields from `map` into variables named for them.
    (@read $map:ident $known:expr,
        { $($name:expr => $field:ident: $ty:ty $(= $default:ident)?),* }) => {
        #[allow(non_camel_case_types)]
        enum Field {
            $($field),*
        }
        fn field(key: &str) -> Option<usize> {
            $(if key == $name {
                return Some(Field::$field as usize);
            })*
            None
        }
        $(let mut $field: Option<$ty> = None;)*
        while let Some(key) = serde::de::MapAccess::next_key_seed(&mut $map, $crate::object::Key(field, $known))? {
            match key {
                $(Some(i) if i == Field::$field as usize => {
                    $crate::object::set(&mut $field, $name, &mut $map)?
                })*
                _ => {
                    serde::de::MapAccess::next_value::<serde::de::IgnoredAny>(&mut $map)?;
                }
            }
        }
        $(let $field = $crate::deserialize_object!(@take $field $(= $default)?, $name);)*
    };
    (@take $field:ident, $name:expr) => {
        $crate::object::required($field, $name)?
    };
    (@take $field:ident = default, $name:expr) => {
        $field.unwrap_or_default()
    };
    (@take $field:ident = absent, $name:expr) => {
        match $field {
            Some(value) => value,
            None => $crate::object::absent($name)?,
        }
    };
}

/// The JSON object of these members. They are inserted one by one: `collect()` into serde_json's
/// map (a `BTreeMap`) compiles a stable sort of its entries.
pub fn json_object<const N: usize>(members: [(&str, Value); N]) -> Value {
    let mut map = Map::new();
    for (name, value) in members {
        map.insert(name.to_owned(), value);
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[derive(Debug, PartialEq)]
    struct Point {
        x: u32,
        label: Option<String>,
        tags: Vec<String>,
    }

    crate::deserialize_object!(Point {
        "x" => x: u32,
        "label" => label: Option<String> = default,
        "tagList" => tags: Vec<String> = default,
    });

    fn read(text: &str) -> Result<Point, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_fields_in_any_order_and_defaults_the_missing() {
        let point = Point {
            x: 1,
            label: Some("a".into()),
            tags: vec!["t".into()],
        };
        let text = r#"{"tagList": ["t"], "other": {"x": 2}, "label": "a", "x": 1}"#;
        assert_eq!(read(text), Ok(point));
        let bare = Point {
            x: 2,
            label: None,
            tags: vec![],
        };
        assert_eq!(read(r#"{"x": 2, "label": null}"#), Ok(bare));
        let value = json!({"x": 3});
        let point: Point = serde::Deserialize::deserialize(value).unwrap();
        assert_eq!(point.x, 3);
    }

    #[test]
    fn errors_read_like_serdes() {
        let error = read(r#"{"label": "a"}"#).unwrap_err();
        assert!(error.starts_with("missing field `x`"), "{error}");
        let error = read(r#"{"x": 1, "x": 2}"#).unwrap_err();
        assert!(error.starts_with("duplicate field `x`"), "{error}");
        let error = read(r#""x""#).unwrap_err();
        assert!(
            error.starts_with(r#"invalid type: string "x", expected struct Point"#),
            "{error}"
        );
        let error = read(r#"{"x": "1"}"#).unwrap_err();
        assert!(error.starts_with("invalid type: string"), "{error}");
        assert!(read(r#"{"x": 1"#).is_err());
        assert!(read("[1, null, []]").is_err());
    }

    #[test]
    fn queries_read_their_fields_and_refuse_unknown_ones() {
        use crate::engine::{SyncLogQuery, SyncLogStatus, SyncType};
        use crate::transaction::{TxId, TxQuery, TxState};
        let query: TxQuery = serde_json::from_str(r#"{"before": 7, "state": "failed"}"#).unwrap();
        let expected = TxQuery {
            limit: None,
            before: Some(TxId(7)),
            state: Some(TxState::Failed),
        };
        assert_eq!(query, expected);
        let text = r#"{"syncType": "push", "status": "completed", "limit": 2, "from": 1, "to": 9}"#;
        let query: SyncLogQuery = serde_json::from_str(text).unwrap();
        let expected = SyncLogQuery {
            limit: Some(2),
            status: Some(SyncLogStatus::Completed),
            sync_type: Some(SyncType::Push),
            from: Some(1),
            to: Some(9),
        };
        assert_eq!(query, expected);
        let error = serde_json::from_str::<TxQuery>(r#"{"limit": 1, "sate": "failed"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("unknown field `sate`, expected one of `limit`, `before`, `state`"),
            "{error}"
        );
        let error = serde_json::from_str::<SyncLogQuery>(r#"{"sync_type": "push"}"#)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("unknown field `sync_type`"), "{error}");
    }
}
