//! Register documents as read: [`Node`], the view of a JSON value that [`fields`](crate::fields)
//! and the document readers use, and [`Doc`], a JSON tree parsed for reading only.
//!
//! A [`serde_json::Value`] owns a `String` for every key and text value and keeps objects in
//! `BTreeMap`s: a 2.5 KB person document costs about 150 allocations and as many frees, most of
//! the time spent turning a document into a row. A [`Doc`] borrows every key and text value
//! that has no escape from the input and keeps an object's members in order in one `Vec`, so
//! the same document costs a few dozen. It reads the same: a member named twice is the last one,
//! as in a `Value`, and serde_json's nesting limit applies alike.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

/// What document readers need of a JSON value. Implemented by [`serde_json::Value`] and [`Doc`],
/// so one reader serves documents parsed either way.
pub trait Node: Sized {
    /// The member `key` of an object (the last, if named twice); `None` for anything else.
    fn get(&self, key: &str) -> Option<&Self>;
    /// The text of a string.
    fn as_str(&self) -> Option<&str>;
    /// A boolean's value.
    fn as_bool(&self) -> Option<bool>;
    /// A number.
    fn as_number(&self) -> Option<&Number>;
    /// An array's items.
    fn as_array(&self) -> Option<&[Self]>;
    /// Whether this is an object.
    fn is_object(&self) -> bool;
    /// Whether this is `null`.
    fn is_null(&self) -> bool;
}

impl Node for Value {
    fn get(&self, key: &str) -> Option<&Self> {
        Value::get(self, key)
    }
    fn as_str(&self) -> Option<&str> {
        Value::as_str(self)
    }
    fn as_bool(&self) -> Option<bool> {
        Value::as_bool(self)
    }
    fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }
    fn as_array(&self) -> Option<&[Self]> {
        Value::as_array(self).map(Vec::as_slice)
    }
    fn is_object(&self) -> bool {
        Value::is_object(self)
    }
    fn is_null(&self) -> bool {
        Value::is_null(self)
    }
}

/// A JSON value borrowing its text from the input where it can.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as serde_json reads it.
    Number(Number),
    /// A string: borrowed, or owned where the input escaped a character.
    Str(Cow<'a, str>),
    /// An array.
    Array(Vec<Doc<'a>>),
    /// An object's members, in the input's order.
    Object(Vec<(Cow<'a, str>, Doc<'a>)>),
}

impl<'a> Doc<'a> {
    /// Parses a document from bytes that outlive it.
    pub fn parse(raw: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(raw)
    }
}

impl Node for Doc<'_> {
    fn get(&self, key: &str) -> Option<&Self> {
        match self {
            Doc::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn as_str(&self) -> Option<&str> {
        match self {
            Doc::Str(s) => Some(s),
            _ => None,
        }
    }
    fn as_bool(&self) -> Option<bool> {
        match self {
            Doc::Bool(b) => Some(*b),
            _ => None,
        }
    }
    fn as_number(&self) -> Option<&Number> {
        match self {
            Doc::Number(n) => Some(n),
            _ => None,
        }
    }
    fn as_array(&self) -> Option<&[Self]> {
        match self {
            Doc::Array(items) => Some(items),
            _ => None,
        }
    }
    fn is_object(&self) -> bool {
        matches!(self, Doc::Object(_))
    }
    fn is_null(&self) -> bool {
        matches!(self, Doc::Null)
    }
}

/// The prefix of serde_json's own keys (`$serde_json::private::RawValue`, `...::Number`).
const PRIVATE_KEY: &str = "$serde_json::private::";

/// Text that borrows from the input unless it had to be unescaped.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

impl<'de> Deserialize<'de> for Doc<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DocVisitor)
    }
}

struct DocVisitor;

impl<'de> Visitor<'de> for DocVisitor {
    type Value = Doc<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Doc::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Doc::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Doc::Bool(b))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Doc::Number(n.into()))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Doc::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
        Ok(Number::from_f64(n).map_or(Doc::Null, Doc::Number))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Doc::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Doc::Str(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Doc::Str(Cow::Owned(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Doc::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            // serde_json gives keys of this prefix a meaning of its own in a `Value` (a raw value
            // or a number to read in place of the object); no register sends one, so a document
            // holding one is refused rather than read differently from a `Value`.
            if key.starts_with(PRIVATE_KEY) {
                return Err(serde::de::Error::custom(format_args!(
                    "a member named {key:?} is not allowed"
                )));
            }
            members.push((key, map.next_value()?));
        }
        Ok(Doc::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every way of reading a member gives the same answer from a `Doc` as from a `Value`.
    fn same(raw: &str, path: &[&str]) {
        let value: Value = serde_json::from_str(raw).unwrap();
        let doc = Doc::parse(raw.as_bytes()).unwrap();
        let (mut v, mut d) = (Some(&value), Some(&doc));
        for key in path {
            v = v.and_then(|v| Node::get(v, key));
            d = d.and_then(|d| d.get(key));
        }
        assert_eq!(v.and_then(Node::as_str), d.and_then(Node::as_str), "{raw}");
        assert_eq!(
            v.and_then(Node::as_bool),
            d.and_then(Node::as_bool),
            "{raw}"
        );
        assert_eq!(
            v.and_then(Node::as_number),
            d.and_then(Node::as_number),
            "{raw}"
        );
        assert_eq!(v.map(Node::is_object), d.map(Node::is_object), "{raw}");
        assert_eq!(v.map(Node::is_null), d.map(Node::is_null), "{raw}");
        assert_eq!(
            v.and_then(Node::as_array).map(<[Value]>::len),
            d.and_then(Node::as_array).map(<[Doc]>::len),
            "{raw}"
        );
    }

    #[test]
    fn a_doc_reads_as_a_value_does() {
        same(r#"{"a": "x", "a": "y"}"#, &["a"]);
        same(r#"{"a": {"b": "Tr\u00f8ndelag \"x\""}}"#, &["a", "b"]);
        same(r#"{"a": 301, "b": -4, "c": 1.5e3}"#, &["a"]);
        same(r#"{"a": 301, "b": -4, "c": 1.5e3}"#, &["b"]);
        same(r#"{"a": 301, "b": -4, "c": 1.5e3}"#, &["c"]);
        same(r#"{"a": [1, {"b": 2}], "n": null, "t": true}"#, &["a"]);
        same(r#"{"a": [1, {"b": 2}], "n": null, "t": true}"#, &["n"]);
        same(r#"{"a": [1, {"b": 2}], "n": null, "t": true}"#, &["t"]);
        same(
            r#"{"a": [1, {"b": 2}], "n": null, "t": true}"#,
            &["missing"],
        );
        same(r#"[{"a": 1}]"#, &["a"]);
        same(r#""text""#, &[]);
    }

    #[test]
    fn text_without_escapes_is_borrowed() {
        let raw = br#"{"navn": "ANDREASSEN", "sted": "L\u00d8RENSKOG"}"#;
        let doc = Doc::parse(raw).unwrap();
        assert!(matches!(
            doc.get("navn"),
            Some(Doc::Str(Cow::Borrowed("ANDREASSEN")))
        ));
        assert!(matches!(doc.get("sted"), Some(Doc::Str(Cow::Owned(s))) if s == "LØRENSKOG"));
    }

    #[test]
    fn serde_jsons_own_keys_are_refused() {
        for raw in [
            r#"{"a": [{"$serde_json::private::RawValue": "{\"b\": 1}"}]}"#,
            r#"{"$serde_json::private::Number": "301"}"#,
        ] {
            let err = Doc::parse(raw.as_bytes()).unwrap_err();
            assert!(err.to_string().contains("is not allowed"), "{err}");
        }
    }

    #[test]
    fn malformed_and_too_deep_input_is_an_error() {
        assert!(Doc::parse(b"{\"a\": [").is_err());
        assert!(Doc::parse(b"{\"a\": 1} trailing").is_err());
        let deep = "[".repeat(10_000);
        assert!(Doc::parse(deep.as_bytes()).is_err());
    }
}
