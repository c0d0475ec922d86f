//! Deserializing internally tagged JSON objects (`{"type": "insert", "fields": {…}}`) as they
//! stream in, for the enums the browser decodes.
//!
//! serde's derived `#[serde(tag = "…")]` (and `#[serde(flatten)]`) deserializers buffer the whole
//! object into serde's private `Content` tree, and so instantiate a second deserializer for every
//! type nested in the enum: about a tenth of the WebAssembly. These enums keep their derived
//! `Serialize`, which writes the tag first, and [`deserialize_tagged!`](crate::deserialize_tagged)
//! writes their `Deserialize`: when the tag comes first (as this crate and the server write it),
//! the variant's fields are read straight from the input, with the same code that reads them
//! anywhere else. An object in another order (hand-written JSON, another server) is still
//! accepted: it is buffered and read again with its tag first. Errors read as serde's own
//! (`missing field `type``, `unknown variant …`).

use serde::de::{DeserializeOwned, Error, IgnoredAny, MapAccess, Visitor};
use serde::Deserializer;
use serde_json::{Map, Value};
use std::fmt;
use std::marker::PhantomData;

/// An enum whose variants are read from a JSON object's fields once its tag is known.
pub trait Tagged: DeserializeOwned {
    /// The tag's field name (`"type"`).
    const TAG: &'static str;
    /// The variant `tag`, from the object's other `fields`.
    fn variant<'de, A: MapAccess<'de>>(tag: &str, fields: A) -> Result<Self, A::Error>;
}

/// An object's leading fields, read.
pub enum Head<A, const N: usize> {
    /// They came first, in order: their values, and the other fields, unread.
    InOrder([Value; N], A),
    /// They did not: the whole object as JSON text with them first, in order.
    Reordered(String),
}

/// Reads the fields `names` from the start of an object, in this order (see [`Head`]).
pub fn read_head<'de, A: MapAccess<'de>, const N: usize>(
    mut map: A,
    names: [&'static str; N],
) -> Result<Head<A, N>, A::Error> {
    let mut fields = Map::new();
    let mut in_order = true;
    while let Some(key) = map.next_key::<String>()? {
        let value: Value = map.next_value()?;
        in_order &= names.get(fields.len()) == Some(&key.as_str());
        fields.insert(key, value);
        if in_order && fields.len() == N {
            let values = names.map(|name| fields.remove(name).unwrap_or_default());
            return Ok(Head::InOrder(values, map));
        }
    }
    // Out of order (or missing): the same object with `names` first.
    let mut text = String::from("{");
    for name in names {
        let value = fields
            .remove(name)
            .ok_or_else(|| A::Error::missing_field(name))?;
        text += &format!("{}:{},", json(&Value::from(name)), json(&value));
    }
    let rest = json(&Value::Object(fields));
    text += &rest[1..];
    if text.ends_with(",}") {
        text.replace_range(text.len() - 2.., "}");
    }
    Ok(Head::Reordered(text))
}

/// A value as JSON text.
fn json(value: &Value) -> String {
    serde_json::to_string(value).expect("JSON values serialize")
}

/// The tag's value as a variant name.
pub fn tag_name<E: Error>(value: Value, tag: &str) -> Result<String, E> {
    match value {
        Value::String(name) => Ok(name),
        _ => Err(E::custom(format_args!(
            "invalid type: the `{tag}` of a variant must be a string"
        ))),
    }
}

/// Reads a `T` from JSON text (an object [`read_head`] put in order).
pub fn reread<T: DeserializeOwned, E: Error>(text: &str) -> Result<T, E> {
    serde_json::from_str(text).map_err(E::custom)
}

/// Skips a unit variant's other fields.
pub fn no_fields<'de, A: MapAccess<'de>>(mut fields: A) -> Result<(), A::Error> {
    while fields.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// `Deserialize::deserialize` of a [`Tagged`] enum.
pub fn deserialize<'de, T: Tagged, D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
    struct TaggedVisitor<T>(PhantomData<T>);
    impl<'de, T: Tagged> Visitor<'de> for TaggedVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "an object tagged by `{}`", T::TAG)
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            match read_head(map, [T::TAG])? {
                Head::InOrder([tag], fields) => {
                    T::variant(&tag_name::<A::Error>(tag, T::TAG)?, fields)
                }
                Head::Reordered(text) => reread(&text),
            }
        }
    }
    deserializer.deserialize_map(TaggedVisitor(PhantomData))
}

/// Implements [`Tagged`] and `Deserialize` for an enum serialized with `#[serde(tag = TAG)]`.
///
/// Lists each variant as `"wire name" => Variant` (unit) or `"wire name" => Variant { field:
/// Type, … }`, the fields as the variant declares them; an optional `=> expression` then builds
/// the variant from those fields (for a variant with a flattened field). Unknown fields are
/// ignored and a missing `Option` field is `None`, as with the derive.
#[macro_export]
macro_rules! deserialize_tagged {
    ($enum:ident, $tag:literal {
        $($name:literal => $variant:ident $({ $($field:ident: $ty:ty),* $(,)? } $(=> $build:expr)?)?),* $(,)?
    }) => {
        impl $crate::tagged::Tagged for $enum {
            const TAG: &'static str = $tag;

            fn variant<'de, A: serde::de::MapAccess<'de>>(
                tag: &str,
                fields: A,
            ) -> Result<Self, A::Error> {
                match tag {
                    $($name => $crate::deserialize_tagged!(
                        @variant $enum $variant fields $({ $($field: $ty),* } $(=> $build)?)?
                    ),)*
                    other => Err(serde::de::Error::unknown_variant(other, &[$($name),*])),
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $enum {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::tagged::deserialize(deserializer)
            }
        }
    };
    (@variant $enum:ident $variant:ident $fields:ident) => {{
        $crate::tagged::no_fields($fields)?;
        Ok($enum::$variant)
    }};
    (@variant $enum:ident $variant:ident $fields:ident { $($field:ident: $ty:ty),* }) => {
        $crate::deserialize_tagged!(
            @variant $enum $variant $fields { $($field: $ty),* } => $enum::$variant { $($field),* }
        )
    };
    (@variant $enum:ident $variant:ident $fields:ident { $($field:ident: $ty:ty),* } => $build:expr) => {{
        let mut fields = $fields;
        $crate::deserialize_tagged!(@read fields { $($field: $ty),* });
        Ok($build)
    }};
    // A missing field is `None` for an `Option` and an error otherwise.
    (@read $map:ident { $($field:ident: $ty:ty),* }) => {
        $crate::deserialize_object!(
            @read $map None, { $(stringify!($field) => $field: $ty = absent),* }
        )
    };
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, PartialEq)]
    enum Shape {
        Dot,
        Circle { radius: u32, label: Option<String> },
        Square { side: u32 },
    }

    crate::deserialize_tagged!(Shape, "kind" {
        "dot" => Dot,
        "circle" => Circle { radius: u32, label: Option<String> },
        "square" => Square { width: u32 } => Shape::Square { side: width },
    });

    fn read(text: &str) -> Result<Shape, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_each_variant_wherever_the_tag_is() {
        assert_eq!(read(r#"{"kind": "dot", "extra": [1]}"#), Ok(Shape::Dot));
        assert_eq!(read(r#"{"extra": {}, "kind": "dot"}"#), Ok(Shape::Dot));
        let circle = Shape::Circle {
            radius: 2,
            label: None,
        };
        assert_eq!(read(r#"{"kind": "circle", "radius": 2}"#), Ok(circle));
        assert_eq!(
            read(r#"{"label": "a", "radius": 2, "kind": "circle"}"#),
            Ok(Shape::Circle {
                radius: 2,
                label: Some("a".into())
            })
        );
        assert_eq!(
            read(r#"{"kind": "square", "width": 3}"#),
            Ok(Shape::Square { side: 3 })
        );
        let value = json!({"width": 3, "kind": "square"});
        assert_eq!(
            Shape::deserialize(value).unwrap(),
            Shape::Square { side: 3 }
        );
    }

    #[test]
    fn errors_read_like_serdes() {
        let error = read(r#"{"radius": 2}"#).unwrap_err();
        assert!(error.starts_with("missing field `kind`"), "{error}");
        let error = read(r#"{"kind": "oval"}"#).unwrap_err();
        assert!(
            error.starts_with("unknown variant `oval`, expected one of `dot`, `circle`, `square`"),
            "{error}"
        );
        let error = read(r#"{"kind": "circle"}"#).unwrap_err();
        assert!(error.starts_with("missing field `radius`"), "{error}");
        assert!(read(r#"{"kind": 1}"#).is_err());
        assert!(read("[1]").is_err());
        assert!(read(r#"{"kind": "dot""#).is_err());
    }
}
