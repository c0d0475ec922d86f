//! Deserializing internally tagged JSON enums (`{"type": "insert", "fields": {…}}`) through
//! [`serde_json::Value`], for the enums the browser decodes.
//!
//! serde's derived `#[serde(tag = "…")]` (and `#[serde(flatten)]`) deserializers buffer the input
//! into serde's private `Content` tree and instantiate a second deserializer for every type
//! nested in the enum: about a tenth of the WebAssembly. These enums keep their derived
//! `Serialize` (the JSON stays the same), and [`deserialize_tagged!`](crate::deserialize_tagged)
//! writes their `Deserialize`: the object is read as a JSON map, its tag taken out, and the rest
//! read as the variant's fields, so nested types are only ever read from JSON text or a `Value`.
//! Errors read as serde's own (`missing field `type``, `unknown variant …`).

use serde::de::{DeserializeOwned, Error};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// Reads a JSON object and takes out its string field `tag`: the tag, and the other fields.
pub fn untag<'de, D: Deserializer<'de>>(
    deserializer: D,
    tag: &'static str,
) -> Result<(String, Map<String, Value>), D::Error> {
    let mut fields = Map::deserialize(deserializer)?;
    match fields.remove(tag) {
        Some(Value::String(name)) => Ok((name, fields)),
        Some(other) => Err(D::Error::custom(format_args!(
            "invalid type: {other}, expected the `{tag}` of a variant"
        ))),
        None => Err(D::Error::missing_field(tag)),
    }
}

/// Reads `fields` (what [`untag`] left) as `T`, with errors in the caller's error type.
pub fn payload<T: DeserializeOwned, E: Error>(fields: Map<String, Value>) -> Result<T, E> {
    T::deserialize(Value::Object(fields)).map_err(E::custom)
}

/// Implements `Deserialize` for an enum serialized with `#[serde(tag = TAG)]`.
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
        impl<'de> serde::Deserialize<'de> for $enum {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let (tag, fields) = $crate::tagged::untag(deserializer, $tag)?;
                match tag.as_str() {
                    $($name => $crate::deserialize_tagged!(
                        @variant $enum $variant fields $({ $($field: $ty),* } $(=> $build)?)?
                    ),)*
                    other => Err(serde::de::Error::unknown_variant(other, &[$($name),*])),
                }
            }
        }
    };
    (@variant $enum:ident $variant:ident $fields:ident) => {{
        let _ = $fields;
        Ok($enum::$variant)
    }};
    (@variant $enum:ident $variant:ident $fields:ident { $($field:ident: $ty:ty),* }) => {
        $crate::deserialize_tagged!(
            @variant $enum $variant $fields { $($field: $ty),* } => $enum::$variant { $($field),* }
        )
    };
    (@variant $enum:ident $variant:ident $fields:ident { $($field:ident: $ty:ty),* } => $build:expr) => {{
        #[derive(serde::Deserialize)]
        struct Payload {
            $($field: $ty),*
        }
        let Payload { $($field),* } = $crate::tagged::payload($fields)?;
        Ok($build)
    }};
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

    fn read(value: serde_json::Value) -> Result<Shape, String> {
        Shape::deserialize(value).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_each_variant_wherever_the_tag_is() {
        assert_eq!(read(json!({"kind": "dot", "extra": 1})), Ok(Shape::Dot));
        assert_eq!(
            read(json!({"radius": 2, "kind": "circle"})),
            Ok(Shape::Circle {
                radius: 2,
                label: None
            })
        );
        assert_eq!(
            read(json!({"kind": "square", "width": 3})),
            Ok(Shape::Square { side: 3 })
        );
        let text: Shape =
            serde_json::from_str(r#"{"kind":"circle","radius":1,"label":"a"}"#).unwrap();
        assert_eq!(
            text,
            Shape::Circle {
                radius: 1,
                label: Some("a".into())
            }
        );
    }

    #[test]
    fn errors_read_like_serdes() {
        assert_eq!(
            read(json!({"radius": 2})),
            Err("missing field `kind`".into())
        );
        assert_eq!(
            read(json!({"kind": "oval"})),
            Err("unknown variant `oval`, expected one of `dot`, `circle`, `square`".into())
        );
        assert_eq!(
            read(json!({"kind": "circle"})),
            Err("missing field `radius`".into())
        );
        assert!(read(json!({"kind": 1})).is_err());
        assert!(read(json!([1])).is_err());
    }
}
