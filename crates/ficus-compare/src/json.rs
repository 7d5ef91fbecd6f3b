//! A borrowed JSON tree for diffing: serde_json parses (and guards depth at 128), but into
//! nodes whose strings and keys point into the body unless they had escapes, and whose
//! objects are sorted member lists, so a diff is a merge join and parsing a 10 KB body
//! costs a handful of `Vec`s instead of a `String` and a map node per member.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A JSON number as serde_json reports it. Integers outside the u64/i64 range arrive as
/// f64 (serde_json's `arbitrary_precision` would keep their text, but enabling it would
/// change `serde_json::Number` for the whole workspace).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Num {
    U(u64),
    I(i64),
    F(f64),
}

#[derive(Clone, Debug)]
pub(crate) enum Node<'a> {
    Null,
    Bool(bool),
    Num(Num),
    Str(Cow<'a, str>),
    Arr(Vec<Node<'a>>),
    /// Sorted by key; for duplicate keys the last one wins, as in `serde_json::Value`.
    Obj(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl Node<'_> {
    /// The JSON type, for telling a type change from a value change.
    pub(crate) fn type_tag(&self) -> u8 {
        match self {
            Node::Null => 0,
            Node::Bool(_) => 1,
            Node::Num(_) => 2,
            Node::Str(_) => 3,
            Node::Arr(_) => 4,
            Node::Obj(_) => 5,
        }
    }
}

/// Parses a body as JSON; `None` when it is not JSON (including nesting deeper than 128).
pub(crate) fn parse(body: &[u8]) -> Option<Node<'_>> {
    // A cheap first look: most non-JSON bodies (HTML, plain text) fail on the first byte
    // anyway, but this skips building a deserializer for them.
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if !matches!(
        first,
        b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n'
    ) {
        return None;
    }
    // JSON text is UTF-8 (RFC 8259): validating the whole body in one pass and parsing from
    // `&str` is cheaper than serde_json's per-string validation under `from_slice`.
    let text = std::str::from_utf8(body).ok()?;
    serde_json::from_str(text).ok()
}

impl<'de> Deserialize<'de> for Node<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node<'de>, E> {
        Ok(Node::Num(Num::U(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node<'de>, E> {
        Ok(Node::Num(Num::I(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node<'de>, E> {
        Ok(Node::Num(Num::F(v)))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(n) = seq.next_element()? {
            items.push(n);
        }
        Ok(Node::Arr(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut members: Vec<(Cow<'de, str>, Node<'de>)> = Vec::new();
        while let Some(Key(k)) = map.next_key()? {
            members.push((k, map.next_value()?));
        }
        // Many producers already write keys in order (and strictly increasing means no
        // duplicates either), so check before sorting.
        if members.windows(2).all(|w| w[0].0 < w[1].0) {
            return Ok(Node::Obj(members));
        }
        // Stable sort keeps duplicates in document order; then keep the last of each run.
        members.sort_by(|a, b| a.0.cmp(&b.0));
        members.dedup_by(|later, kept| {
            if later.0 == kept.0 {
                std::mem::swap(later, kept);
                true
            } else {
                false
            }
        });
        Ok(Node::Obj(members))
    }
}

/// A map key that borrows from the body when it can (serde's own `Cow` impl always copies).
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => s.serialize_unit(),
            Node::Bool(b) => s.serialize_bool(*b),
            Node::Num(Num::U(v)) => s.serialize_u64(*v),
            Node::Num(Num::I(v)) => s.serialize_i64(*v),
            Node::Num(Num::F(v)) => s.serialize_f64(*v),
            Node::Str(v) => s.serialize_str(v),
            Node::Arr(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Node::Obj(members) => {
                let mut map = s.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    map.serialize_entry(&**k, v)?;
                }
                map.end()
            }
        }
    }
}

/// Longest rendering of a value in a difference, in characters (then "…").
pub const MAX_RENDER_CHARS: usize = 200;

/// Compact JSON text of a value, cut at [`MAX_RENDER_CHARS`]. Serialization stops as soon as
/// enough text exists, so rendering a large subtree costs no more than rendering its start.
pub(crate) fn render(node: &Node<'_>) -> String {
    let mut w = Capped {
        buf: Vec::with_capacity(64),
        cap: MAX_RENDER_CHARS * 4 + 4,
        full: false,
    };
    // The only error possible is the cap being reached, which is the point.
    let _ = serde_json::to_writer(&mut w, node);
    let text = match std::str::from_utf8(&w.buf) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&w.buf[..e.valid_up_to()]).unwrap_or_default(),
    };
    shorten(text, w.full)
}

/// `text` cut at [`MAX_RENDER_CHARS`] characters, with "…" when anything was left out.
pub(crate) fn shorten(text: &str, more: bool) -> String {
    match text.char_indices().nth(MAX_RENDER_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None if more => format!("{text}…"),
        None => text.to_owned(),
    }
}

/// An in-memory sink that refuses bytes past a cap (not I/O: `io::Write` is just the trait
/// serde_json writes through).
struct Capped {
    buf: Vec<u8>,
    cap: usize,
    full: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let room = self.cap - self.buf.len();
        if b.len() > room {
            self.buf.extend_from_slice(&b[..room]);
            self.full = true;
            return Err(std::io::Error::other("render cap reached"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrows_unescaped_strings_and_keys() {
        let body = br#"{"b":"plain","a":"esc\"aped"}"#;
        let Some(Node::Obj(m)) = parse(body) else {
            panic!()
        };
        assert_eq!(m[0].0, "a", "members are sorted");
        assert!(matches!(m[0].1, Node::Str(Cow::Owned(_))));
        assert!(matches!(m[1].0, Cow::Borrowed("b")));
        assert!(matches!(m[1].1, Node::Str(Cow::Borrowed("plain"))));
    }

    #[test]
    fn duplicate_keys_keep_the_last() {
        let Some(Node::Obj(m)) = parse(br#"{"a":1,"b":0,"a":2}"#) else {
            panic!()
        };
        assert_eq!(m.len(), 2);
        assert!(matches!(m[0].1, Node::Num(Num::U(2))));
    }

    #[test]
    fn not_json() {
        for b in [&b""[..], b"  ", b"<html>", b"{", b"1 2", b"nope", b"\xff"] {
            assert!(parse(b).is_none(), "{:?}", String::from_utf8_lossy(b));
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(
            parse(deep.as_bytes()).is_none(),
            "deeper than serde_json's 128"
        );
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse(ok.as_bytes()).is_some());
    }

    #[test]
    fn render_is_capped() {
        let long = format!("[{}]", vec!["\"abcdef\""; 100].join(","));
        let n = parse(long.as_bytes()).unwrap();
        let r = render(&n);
        assert_eq!(r.chars().count(), MAX_RENDER_CHARS + 1);
        assert!(r.ends_with('…'));
        let short = parse(br#"{"b":[1,2.5,null],"a":"x"}"#).unwrap();
        assert_eq!(render(&short), r#"{"a":"x","b":[1,2.5,null]}"#);
        let wide = format!("\"{}\"", "é".repeat(300));
        let r = render(&parse(wide.as_bytes()).unwrap());
        assert_eq!(r.chars().count(), MAX_RENDER_CHARS + 1);
    }
}
