//! Field paths: the pattern grammar comparison rules are written in, and the one rendering
//! used for both the concrete path of a difference and its generalized aggregation key.
//!
//! Grammar (no regex, no recursive descent, so matching stays a walk over a trie):
//!
//! ```text
//! pattern  = "$" segment*
//! segment  = "." name        a member whose name is [A-Za-z0-9_-]+
//!          | "." "*"         any member
//!          | "[" quoted "]"  a member with any name, as a JSON string: ["odd key"]
//!          | "[" "*" "]"     any array element
//!          | "[" digits "]"  one array element
//! ```
//!
//! Rendering writes members as `.name` when the name fits the plain grammar and as
//! `["..."]` (JSON string escaping) otherwise, so every rendered path parses back to the
//! same segments.

use std::fmt;

use crate::rules::RuleError;

/// One step of a [`PathPattern`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A member with this exact name.
    Key(String),
    /// Any member of an object (`.*`).
    AnyKey,
    /// The array element at this index.
    Index(usize),
    /// Any array element (`[*]`).
    AnyIndex,
}

/// A parsed path pattern such as `$.items[*].price`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PathPattern {
    segments: Vec<Segment>,
}

impl PathPattern {
    /// The segments after `$`; empty for the root.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::from("$");
        for s in &self.segments {
            match s {
                Segment::Key(k) => push_key(&mut out, k),
                Segment::AnyKey => out.push_str(".*"),
                Segment::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
                Segment::AnyIndex => out.push_str("[*]"),
            }
        }
        f.write_str(&out)
    }
}

/// Parses a path pattern; the error names the byte where it went wrong and shows valid forms.
pub fn parse_path(pattern: &str) -> Result<PathPattern, RuleError> {
    let err = |position: usize, problem: &str| RuleError::Path {
        pattern: pattern.to_owned(),
        position,
        problem: problem.to_owned(),
    };
    let b = pattern.as_bytes();
    if b.first() != Some(&b'$') {
        return Err(err(0, "a path starts with `$` (the body's root)"));
    }
    let mut segments = Vec::new();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'.' => {
                i += 1;
                match b.get(i) {
                    Some(b'*') => {
                        segments.push(Segment::AnyKey);
                        i += 1;
                    }
                    Some(b'.') => {
                        return Err(err(
                            i - 1,
                            "recursive descent `..` is not supported; spell the path out, using `.*` or `[*]` for the varying parts",
                        ))
                    }
                    _ => {
                        let start = i;
                        while i < b.len() && is_name_byte(b[i]) {
                            i += 1;
                        }
                        if i == start {
                            return Err(err(
                                start,
                                "expected a member name ([A-Za-z0-9_-]) or `*` after `.`; quote other names as [\"name\"]",
                            ));
                        }
                        segments.push(Segment::Key(pattern[start..i].to_owned()));
                    }
                }
            }
            b'[' => {
                i += 1;
                match b.get(i) {
                    Some(b'*') => {
                        i += 1;
                        segments.push(Segment::AnyIndex);
                    }
                    Some(b'0'..=b'9') => {
                        let start = i;
                        while i < b.len() && b[i].is_ascii_digit() {
                            i += 1;
                        }
                        let n = pattern[start..i]
                            .parse::<usize>()
                            .map_err(|_| err(start, "array index too large"))?;
                        segments.push(Segment::Index(n));
                    }
                    Some(b'"') => {
                        let start = i;
                        i += 1;
                        loop {
                            match b.get(i) {
                                None => return Err(err(start, "unterminated quoted name; close it with `\"]`")),
                                Some(b'\\') => i += 2,
                                Some(b'"') => break,
                                Some(_) => i += 1,
                            }
                        }
                        i += 1;
                        // The quoted form is a JSON string, so serde_json does the unescaping.
                        let key: String = serde_json::from_str(&pattern[start..i])
                            .map_err(|_| err(start, "invalid escape in quoted name (it is a JSON string)"))?;
                        segments.push(Segment::Key(key));
                    }
                    _ => {
                        return Err(err(
                            i,
                            "expected `*`, an index such as 3, or a quoted name such as \"a key\" after `[`",
                        ))
                    }
                }
                if b.get(i) != Some(&b']') {
                    return Err(err(i, "expected `]`"));
                }
                i += 1;
            }
            _ => return Err(err(i, "expected `.` or `[` to start the next segment")),
        }
    }
    Ok(PathPattern { segments })
}

fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// Appends a member to a rendered path: `.name`, or `["..."]` when the name needs quoting.
pub(crate) fn push_key(out: &mut String, key: &str) {
    if !key.is_empty() && key.bytes().all(is_name_byte) {
        out.push('.');
        out.push_str(key);
    } else {
        out.push('[');
        push_json_string(out, key);
        out.push(']');
    }
}

/// JSON string escaping, written by hand because it appends to an existing buffer without the
/// intermediate allocation and the infallible-but-`Result` API of `serde_json::to_string`.
/// It escapes exactly what serde_json escapes, so `parse_path` reads it back.
pub(crate) fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(c as usize) >> 4] as char);
                out.push(HEX[(c as usize) & 0xf] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<Segment> {
        parse_path(p).unwrap().segments().to_vec()
    }

    #[test]
    fn parses_every_segment_form() {
        assert_eq!(segs("$"), vec![]);
        assert_eq!(
            segs(r#"$.items[*].price["a key"][3].*"#),
            vec![
                Segment::Key("items".into()),
                Segment::AnyIndex,
                Segment::Key("price".into()),
                Segment::Key("a key".into()),
                Segment::Index(3),
                Segment::AnyKey,
            ]
        );
        assert_eq!(
            segs(r#"$["q\"uote\\"]"#),
            vec![Segment::Key("q\"uote\\".into())]
        );
        assert_eq!(segs("$.a-b_9"), vec![Segment::Key("a-b_9".into())]);
    }

    #[test]
    fn errors_name_pattern_position_and_fix() {
        for (p, pos) in [
            ("items", 0),
            ("$.", 2),
            ("$..etag", 1),
            ("$.items[x]", 8),
            ("$.items[*", 9),
            ("$.a b", 3),
            ("$[\"open", 2),
            ("$[99999999999999999999999]", 2),
        ] {
            match parse_path(p) {
                Err(RuleError::Path {
                    pattern, position, ..
                }) => {
                    assert_eq!(pattern, p);
                    assert_eq!(position, pos, "{p}");
                }
                other => panic!("{p}: {other:?}"),
            }
        }
        let msg = parse_path("$.items[x]").unwrap_err().to_string();
        assert!(
            msg.contains("$.items[x]")
                && msg.contains("byte 8")
                && msg.contains("$.items[*].price"),
            "{msg}"
        );
    }

    #[test]
    fn rendering_round_trips_odd_keys() {
        for key in [
            "plain",
            "",
            "a b",
            "q\"",
            "back\\slash",
            "new\nline",
            "\u{1}",
            "é",
            "a.b",
            "[*]",
            "0",
        ] {
            let mut out = String::from("$");
            push_key(&mut out, key);
            assert_eq!(segs(&out), vec![Segment::Key(key.into())], "{out}");
            let shown = parse_path(&out).unwrap().to_string();
            assert_eq!(shown, out);
        }
        let mut out = String::new();
        push_key(&mut out, "odd key");
        assert_eq!(out, r#"["odd key"]"#);
    }
}
