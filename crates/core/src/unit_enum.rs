//! Deserializing enums whose variants carry no data (`"idle"`, `"not_found"`) with one shared
//! reader.
//!
//! serde's derived `Deserialize` compiles a visitor and a variant reader per enum, about 1.5 KB
//! of WebAssembly each. [`deserialize_unit_enum!`](crate::deserialize_unit_enum) writes an impl
//! that hands the enum's names to [`read`], compiled once per input format for every such enum,
//! and picks the variant by the index it returns. It reads what the derived impl reads (the
//! name as a string, or as `{"name": null}`) and fails with the same messages
//! (`unknown variant …, expected one of …`).

use serde::de::{self, DeserializeSeed, EnumAccess, VariantAccess, Visitor};
use serde::Deserializer;
use std::fmt;

/// The index in `names` of the variant `deserializer` holds, for the enum `name`; a name not in
/// `names` is `other` when given, an error otherwise.
pub fn read<'de, D: Deserializer<'de>>(
    deserializer: D,
    name: &'static str,
    names: &'static [&'static str],
    other: Option<usize>,
) -> Result<usize, D::Error> {
    deserializer.deserialize_enum(name, names, Names { name, names, other })
}

/// The enum's names, as the visitor of the enum and of its variant's name.
#[derive(Clone, Copy)]
struct Names {
    name: &'static str,
    names: &'static [&'static str],
    other: Option<usize>,
}

/// Reads the enum: its variant's name, then no data.
impl<'de> Visitor<'de> for Names {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "enum {}", self.name)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<usize, A::Error> {
        let (index, variant) = data.variant_seed(Variant(self))?;
        variant.unit_variant()?;
        Ok(index)
    }
}

/// Reads a variant's name as its index.
struct Variant(Names);

impl<'de> DeserializeSeed<'de> for Variant {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for Variant {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("variant identifier")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<usize, E> {
        let Names { names, other, .. } = self.0;
        match names.iter().position(|n| *n == value).or(other) {
            Some(index) => Ok(index),
            None => Err(E::unknown_variant(value, names)),
        }
    }
}

/// Implements `Deserialize` for an enum of data-less variants, each read from its name
/// (`Variant = "name"`, as its `Serialize` writes it), through [`read`]. With
/// `other Variant`, a name not listed reads as that variant (serde's `#[serde(other)]`).
/// Also lists the variants, as the enum's `VARIANTS`.
#[macro_export]
macro_rules! deserialize_unit_enum {
    ($enum:ident { $($variant:ident = $name:literal),+ $(,)? } $(other $other:ident)?) => {
        impl $enum {
            /// Every variant, in the order listed where it is deserialized.
            pub const VARIANTS: &'static [$enum] = &[$($enum::$variant),+];
        }

        impl<'de> serde::Deserialize<'de> for $enum {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                const NAMES: &[&str] = &[$($name),+];
                let variants = $enum::VARIANTS;
                let other = None $(.or(variants.iter().position(|v| *v == $enum::$other)))?;
                $crate::unit_enum::read(deserializer, stringify!($enum), NAMES, other)
                    .map(|index| variants[index])
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Copy, PartialEq, Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Light {
        Red,
        GreenArrow,
    }
    crate::deserialize_unit_enum!(Light { Red = "red", GreenArrow = "green_arrow" });

    /// `Light` with serde's derived impl, which the macro's must match.
    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Derived {
        Red,
        GreenArrow,
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Known {
        One,
        Unknown,
    }
    crate::deserialize_unit_enum!(Known { One = "one", Unknown = "unknown" } other Unknown);

    #[test]
    fn reads_what_serialize_writes() {
        for light in [Light::Red, Light::GreenArrow] {
            let text = serde_json::to_string(&light).unwrap();
            assert_eq!(serde_json::from_str::<Light>(&text).unwrap(), light);
        }
    }

    #[test]
    fn reads_and_fails_as_the_derived_impl_does() {
        let inputs = [
            r#""red""#,
            r#"{"green_arrow": null}"#,
            r#""blue""#,
            r#"{"red": 1}"#,
            "3",
            "null",
            "[]",
            r#"{}"#,
        ];
        for input in inputs {
            let ours = serde_json::from_str::<Light>(input).map_err(|e| e.to_string());
            let derived = serde_json::from_str::<Derived>(input).map_err(|e| e.to_string());
            assert_eq!(format!("{ours:?}"), format!("{derived:?}"), "{input}");
        }
        let value = serde_json::json!("blue");
        assert_eq!(
            Light::deserialize(&value).unwrap_err().to_string(),
            Derived::deserialize(&value).unwrap_err().to_string()
        );
    }

    #[test]
    fn other_takes_unlisted_names() {
        assert_eq!(
            serde_json::from_str::<Known>(r#""one""#).unwrap(),
            Known::One
        );
        assert_eq!(
            serde_json::from_str::<Known>(r#""two""#).unwrap(),
            Known::Unknown
        );
        assert!(serde_json::from_str::<Known>("[]").is_err());
    }
}
