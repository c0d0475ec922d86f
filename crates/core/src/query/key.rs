//! Order keys: JSON values encoded as bytes that compare as the values do, so indexes and live
//! queries keep sorted byte strings and compare them with `memcmp`.
//!
//! The order is the query order: null < booleans < numbers < strings < arrays < objects;
//! numbers by value, strings by code point, arrays and objects element by element. No key is a
//! prefix of another, so the key of a tuple is its parts' keys one after the other, and a
//! descending part is its key with every byte inverted.

use std::borrow::Cow;

/// Ends strings (followed by [`NULL`]), arrays and objects; below every tag.
const END: u8 = 0x00;
/// The tag of null (and of a missing field).
const NULL: u8 = 0x01;
const FALSE: u8 = 0x02;
const TRUE: u8 = 0x03;
/// The tag of numbers.
pub(crate) const NUMBER: u8 = 0x04;
/// The tag of strings.
pub(crate) const STRING: u8 = 0x05;
const ARRAY: u8 = 0x06;
const OBJECT: u8 = 0x07;
/// Above every first byte of a key: `prefix + [AFTER]` is past every key starting with `prefix`.
pub(crate) const AFTER: u8 = 0xFF;

/// Appends the key of a value given as canonical JSON text; a missing value (`None`) and
/// damaged text are keyed as null.
pub fn push_json(out: &mut Vec<u8>, json: Option<&str>) {
    let start = out.len();
    let Some(text) = json else {
        out.push(NULL);
        return;
    };
    let mut encoder = Encoder {
        bytes: text.as_bytes(),
        text,
        at: 0,
    };
    if encoder.value(out).is_none() {
        out.truncate(start);
        out.push(NULL);
    }
}

/// Appends the key of a string.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(STRING);
    for &b in s.as_bytes() {
        out.push(b);
        if b == END {
            out.push(AFTER);
        }
    }
    out.extend([END, NULL]);
}

/// Appends the key of a number; `-0` is `0`.
pub fn push_number(out: &mut Vec<u8>, n: f64) {
    let n = if n == 0.0 { 0.0 } else { n };
    let bits = n.to_bits();
    let ordered = if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    };
    out.push(NUMBER);
    out.extend(ordered.to_be_bytes());
}

/// Inverts the bytes of a key part, reversing its order (for descending sorts).
pub fn invert(part: &mut [u8]) {
    for b in part {
        *b = !*b;
    }
}

/// The key of a value, as a new vector.
pub fn of_json(json: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(json.len() + 2);
    push_json(&mut key, Some(json));
    key
}

/// Reads canonical JSON text (compact: no whitespace) and writes its key.
struct Encoder<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Encoder<'a> {
    fn value(&mut self, out: &mut Vec<u8>) -> Option<()> {
        match *self.bytes.get(self.at)? {
            b'n' => self.literal("null", NULL, out),
            b't' => self.literal("true", TRUE, out),
            b'f' => self.literal("false", FALSE, out),
            b'"' => {
                let s = self.string()?;
                push_str(out, &s);
                Some(())
            }
            b'[' => {
                out.push(ARRAY);
                self.at += 1;
                self.items(b']', out, |me, out| me.value(out))
            }
            b'{' => {
                out.push(OBJECT);
                self.at += 1;
                self.items(b'}', out, |me, out| {
                    let name = me.string()?;
                    push_str(out, &name);
                    me.expect(b':')?;
                    me.value(out)
                })
            }
            _ => {
                let start = self.at;
                let len = self.bytes[start..]
                    .iter()
                    .position(|b| !matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                    .unwrap_or(self.bytes.len() - start);
                self.at += len;
                push_number(out, super::eval::number(self.text.get(start..self.at)?)?);
                Some(())
            }
        }
    }

    fn literal(&mut self, word: &str, tag: u8, out: &mut Vec<u8>) -> Option<()> {
        self.text.get(self.at..)?.strip_prefix(word)?;
        self.at += word.len();
        out.push(tag);
        Some(())
    }

    /// The items of an array or object (after its opening bracket) up to `close`, then END.
    fn items(
        &mut self,
        close: u8,
        out: &mut Vec<u8>,
        mut item: impl FnMut(&mut Self, &mut Vec<u8>) -> Option<()>,
    ) -> Option<()> {
        if *self.bytes.get(self.at)? != close {
            loop {
                item(self, out)?;
                match *self.bytes.get(self.at)? {
                    b',' => self.at += 1,
                    _ => break,
                }
            }
        }
        self.expect(close)?;
        out.push(END);
        Some(())
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (*self.bytes.get(self.at)? == byte).then(|| self.at += 1)
    }

    /// The string starting at the cursor (its opening quote), unescaped.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let start = self.at;
        let mut i = start + 1;
        let mut escaped = false;
        loop {
            match *self.bytes.get(i)? {
                b'\\' => {
                    escaped = true;
                    i += 2;
                }
                b'"' => break,
                _ => i += 1,
            }
        }
        self.at = i + 1;
        let raw = self.text.get(start..self.at)?;
        if escaped {
            serde_json::from_str(raw).ok().map(Cow::Owned)
        } else {
            Some(Cow::Borrowed(&raw[1..raw.len() - 1]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn key(v: &Value) -> Vec<u8> {
        of_json(&v.to_string())
    }

    #[test]
    fn keys_order_values_across_and_within_types() {
        let ordered = [
            json!(null),
            json!(false),
            json!(true),
            json!(-1e300),
            json!(-2.5),
            json!(-0.5),
            json!(0),
            json!(1),
            json!(1.5),
            json!(10),
            json!(1e300),
            json!(""),
            json!("\u{0}"),
            json!("A"),
            json!("a"),
            json!("a\u{0}"),
            json!("a\"b"),
            json!("ab"),
            json!("é"),
            json!([]),
            json!([null]),
            json!([1]),
            json!([1, 2]),
            json!([2]),
            json!(["a"]),
            json!({}),
            json!({"a": 1}),
            json!({"a": 1, "b": 1}),
            json!({"a": 2}),
            json!({"b": 0}),
        ];
        for pair in ordered.windows(2) {
            assert!(key(&pair[0]) < key(&pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(key(&json!(-0.0)), key(&json!(0)), "-0 is 0");
        assert_eq!(key(&json!(2.0)), key(&json!(2)), "numbers by value");
        assert_eq!(key(&json!([1.0])), key(&json!([1])));
    }

    #[test]
    fn tuples_and_inverted_parts_keep_the_order() {
        let tuple = |a: &Value, b: &Value, descending: bool| {
            let mut out = key(a);
            let at = out.len();
            out.extend(key(b));
            if descending {
                invert(&mut out[at..]);
            }
            out
        };
        // ("a", 2) < ("a", 10) < ("ab", 0): parts compare one after the other.
        assert!(tuple(&json!("a"), &json!(2), false) < tuple(&json!("a"), &json!(10), false));
        assert!(tuple(&json!("a"), &json!(10), false) < tuple(&json!("ab"), &json!(0), false));
        assert!(tuple(&json!("a"), &json!([1, 2]), false) > tuple(&json!("a"), &json!([1]), false));
        // A descending second part reverses only its own order.
        assert!(tuple(&json!("a"), &json!(10), true) < tuple(&json!("a"), &json!(2), true));
        assert!(tuple(&json!("a"), &json!([1]), true) > tuple(&json!("a"), &json!([1, 2]), true));
        assert!(tuple(&json!("a"), &json!(0), true) < tuple(&json!("b"), &json!(9), true));
    }

    #[test]
    fn missing_and_damaged_values_are_null() {
        let mut missing = Vec::new();
        push_json(&mut missing, None);
        assert_eq!(missing, key(&json!(null)));
        for damaged in ["", "[1,", "{\"a\"}", "\"open", "tru", "1e", "{\"a\":"] {
            let mut out = vec![9];
            push_json(&mut out, Some(damaged));
            assert_eq!(out, [9, NULL], "{damaged:?}");
        }
    }
}
