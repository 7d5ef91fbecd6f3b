//! Comparison rules: what to compare and what to forgive, as plain data from the config and
//! compiled once into a form the diff can apply without allocating.
//!
//! All JSON path rules (ignore, tolerance, unordered) are compiled into one trie. While the
//! diff walks a body it carries the set of trie nodes that the current path has reached; for
//! the usual body most subtrees reach no node at all, and then the rules cost nothing.
//!
//! Rule semantics worth knowing:
//! - `ignore` drops a path and everything under it, including a key missing on one side.
//! - `tolerance`: when several patterns match a number, the first listed wins.
//! - Inside `unordered` arrays, and when checking whether an ordered array was merely
//!   reordered, elements are matched without regard to position, so only `[*]` patterns
//!   apply to their contents (a pattern naming a specific index there never matches).

use http::HeaderName;
use serde::{Deserialize, Serialize};

use crate::path::{parse_path, PathPattern, Segment};

/// Response headers compared when [`Rules::headers`] is empty: the ones that change what a
/// client does with the response. Not `etag` (often a hash of a representation that differs
/// harmlessly between implementations), not `last-modified`/`expires` (clock values), not
/// `content-length` (a transfer detail; the body comparison covers it).
pub const DEFAULT_HEADERS: &[&str] = &[
    "content-type",
    "content-encoding",
    "content-language",
    "content-disposition",
    "content-range",
    "location",
    "cache-control",
    "vary",
    "allow",
    "www-authenticate",
    "retry-after",
    "access-control-allow-origin",
    "access-control-allow-credentials",
];

/// Headers never compared even when listed: they differ on every response by design
/// (dates, request and trace ids, session cookies) or describe the connection rather than
/// the response. `set-cookie` is here too because its value is a secret that must not end
/// up in a stored difference.
pub const NEVER_COMPARED: &[&str] = &[
    "date",
    "age",
    "server",
    "x-request-id",
    "request-id",
    "x-correlation-id",
    "traceparent",
    "tracestate",
    "set-cookie",
    "connection",
    "keep-alive",
    "transfer-encoding",
];

/// Headers with this prefix are ficus's own and never compared.
pub const NEVER_COMPARED_PREFIX: &str = "x-ficus-";

/// Whether a header name (any case) is one that is never compared; the config can use this
/// to warn about a listed header that will be skipped.
pub fn is_never_compared(name: &str) -> bool {
    NEVER_COMPARED.iter().any(|n| n.eq_ignore_ascii_case(name))
        || name
            .get(..NEVER_COMPARED_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(NEVER_COMPARED_PREFIX))
}

/// Text normalization for bodies that are not JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TextOptions {
    /// Ignore leading and trailing whitespace.
    pub trim: bool,
    /// Treat every run of whitespace as one space.
    pub collapse_whitespace: bool,
    /// Compare case-insensitively (Unicode lowercase).
    pub ignore_case: bool,
}

/// What to compare, as plain data built by the config crate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rules {
    /// Header names to compare (any case); empty means [`DEFAULT_HEADERS`].
    pub headers: Vec<String>,
    /// Header names removed from `headers`.
    pub ignore_headers: Vec<String>,
    /// Path patterns never reported, subtrees included, e.g. `$.meta.request_id`.
    pub ignore: Vec<String>,
    /// Absolute numeric tolerance per path pattern: `|a - b| <= tol` counts as equal.
    pub tolerance: Vec<(String, f64)>,
    /// Array paths whose element order does not matter, e.g. `$.items`.
    pub unordered: Vec<String>,
    /// Normalization for non-JSON bodies.
    pub text: TextOptions,
}

/// A rule that cannot be compiled; the message names the bad input and the fix.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RuleError {
    #[error("invalid path pattern {pattern:?} at byte {position}: {problem} (patterns look like $.items[*].price, $.meta[\"odd key\"] or $.list[0])")]
    Path {
        pattern: String,
        position: usize,
        problem: String,
    },
    #[error("tolerance for {pattern:?} is {value}; it must be a finite number >= 0 (an absolute difference, e.g. 0.01)")]
    Tolerance { pattern: String, value: f64 },
    #[error("invalid header name {name:?} in comparison rules; use a plain HTTP header name such as content-type")]
    Header { name: String },
}

impl Rules {
    /// Validates and compiles the rules.
    pub fn compile(&self) -> Result<CompiledRules, RuleError> {
        let header = |name: &str| {
            HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes()).map_err(|_| {
                RuleError::Header {
                    name: name.to_owned(),
                }
            })
        };
        let ignored = self
            .ignore_headers
            .iter()
            .map(|n| header(n))
            .collect::<Result<Vec<_>, _>>()?;
        let listed = if self.headers.is_empty() {
            DEFAULT_HEADERS
                .iter()
                .map(|n| HeaderName::from_static(n))
                .collect()
        } else {
            self.headers
                .iter()
                .map(|n| header(n))
                .collect::<Result<Vec<_>, _>>()?
        };
        let mut headers: Vec<HeaderName> = Vec::with_capacity(listed.len());
        for h in listed {
            if !ignored.contains(&h) && !is_never_compared(h.as_str()) && !headers.contains(&h) {
                headers.push(h);
            }
        }

        let mut trie = Trie::new();
        for p in &self.ignore {
            let n = trie.insert(&parse_path(p)?);
            trie.nodes[n].ignore = true;
        }
        for (order, (p, tol)) in self.tolerance.iter().enumerate() {
            if !tol.is_finite() || *tol < 0.0 {
                return Err(RuleError::Tolerance {
                    pattern: p.clone(),
                    value: *tol,
                });
            }
            let n = trie.insert(&parse_path(p)?);
            let node = &mut trie.nodes[n];
            if node.tolerance.is_none_or(|(o, _)| order < o) {
                node.tolerance = Some((order, *tol));
            }
        }
        for p in &self.unordered {
            let n = trie.insert(&parse_path(p)?);
            trie.nodes[n].unordered = true;
        }
        trie.finish();

        Ok(CompiledRules {
            headers,
            trie,
            text: self.text,
        })
    }
}

/// Rules ready for [`crate::compare`]; cheap to share behind an `Arc`.
#[derive(Clone, Debug)]
pub struct CompiledRules {
    pub(crate) headers: Vec<HeaderName>,
    pub(crate) trie: Trie,
    pub(crate) text: TextOptions,
}

impl CompiledRules {
    /// The header names that will be compared, lowercase, in order.
    pub fn headers(&self) -> impl Iterator<Item = &str> + '_ {
        self.headers.iter().map(HeaderName::as_str)
    }

    /// The text normalization for non-JSON bodies.
    pub fn text(&self) -> TextOptions {
        self.text
    }
}

impl Default for CompiledRules {
    /// Default headers, no path rules, exact text.
    fn default() -> Self {
        CompiledRules {
            headers: DEFAULT_HEADERS
                .iter()
                .map(|n| HeaderName::from_static(n))
                .collect(),
            trie: Trie::new(),
            text: TextOptions::default(),
        }
    }
}

/// The path rules as a trie over pattern segments; node 0 is `$`.
#[derive(Clone, Debug)]
pub(crate) struct Trie {
    pub(crate) nodes: Vec<TrieNode>,
    /// False when there are no path rules at all, so the diff can skip state tracking.
    pub(crate) active: bool,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct TrieNode {
    /// Sorted by name for binary search.
    keys: Vec<(Box<str>, u32)>,
    any_key: Option<u32>,
    /// Sorted by index.
    indices: Vec<(usize, u32)>,
    any_index: Option<u32>,
    pub(crate) ignore: bool,
    /// (position in the rule list, tolerance): the lowest position wins.
    pub(crate) tolerance: Option<(usize, f64)>,
    pub(crate) unordered: bool,
}

/// One step of a concrete path as the diff walks it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Step<'a> {
    Key(&'a str),
    Index(usize),
    /// An element of an array matched without regard to position.
    Any,
}

impl Trie {
    fn new() -> Trie {
        Trie {
            nodes: vec![TrieNode::default()],
            active: false,
        }
    }

    fn insert(&mut self, p: &PathPattern) -> usize {
        self.active = true;
        let mut at = 0usize;
        for seg in p.segments() {
            let next = self.nodes.len() as u32;
            let node = &mut self.nodes[at];
            let found = match seg {
                Segment::Key(k) => match node.keys.iter().find(|(n, _)| &**n == k) {
                    Some(&(_, c)) => c,
                    None => {
                        node.keys.push((k.as_str().into(), next));
                        next
                    }
                },
                Segment::Index(i) => match node.indices.iter().find(|(n, _)| n == i) {
                    Some(&(_, c)) => c,
                    None => {
                        node.indices.push((*i, next));
                        next
                    }
                },
                Segment::AnyKey => *node.any_key.get_or_insert(next),
                Segment::AnyIndex => *node.any_index.get_or_insert(next),
            };
            if found == next {
                self.nodes.push(TrieNode::default());
            }
            at = found as usize;
        }
        at
    }

    fn finish(&mut self) {
        for n in &mut self.nodes {
            n.keys.sort_by(|a, b| a.0.cmp(&b.0));
            n.indices.sort_by_key(|e| e.0);
        }
    }

    /// Appends the nodes reached from `from` by one step.
    #[inline]
    pub(crate) fn step(&self, from: u32, step: Step<'_>, out: &mut Vec<u32>) {
        let node = &self.nodes[from as usize];
        match step {
            Step::Key(k) => {
                if let Ok(i) = node.keys.binary_search_by(|(n, _)| (**n).cmp(k)) {
                    out.push(node.keys[i].1);
                }
                if let Some(c) = node.any_key {
                    out.push(c);
                }
            }
            Step::Index(ix) => {
                if let Ok(i) = node.indices.binary_search_by_key(&ix, |e| e.0) {
                    out.push(node.indices[i].1);
                }
                if let Some(c) = node.any_index {
                    out.push(c);
                }
            }
            Step::Any => {
                if let Some(c) = node.any_index {
                    out.push(c);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_headers_exclude_never_compared() {
        let c = Rules::default().compile().unwrap();
        let h: Vec<&str> = c.headers().collect();
        assert!(h.contains(&"content-type"));
        assert!(!h.contains(&"etag"));
        assert!(DEFAULT_HEADERS.iter().all(|d| !is_never_compared(d)));
    }

    #[test]
    fn listed_headers_are_lowercased_filtered_and_deduplicated() {
        let rules = Rules {
            headers: vec![
                "Content-Type".into(),
                "Date".into(),
                "Server".into(),
                "X-Request-Id".into(),
                "X-Ficus-Side".into(),
                "Set-Cookie".into(),
                "ETag".into(),
                "etag".into(),
                "Vary".into(),
            ],
            ignore_headers: vec!["VARY".into()],
            ..Rules::default()
        };
        let c = rules.compile().unwrap();
        assert_eq!(
            c.headers().collect::<Vec<_>>(),
            vec!["content-type", "etag"]
        );
    }

    #[test]
    fn bad_rules_are_named() {
        let e = Rules {
            ignore: vec!["$.ok".into(), "meta.id".into()],
            ..Rules::default()
        }
        .compile()
        .unwrap_err();
        assert!(e.to_string().contains("\"meta.id\""), "{e}");

        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let e = Rules {
                tolerance: vec![("$.price".into(), bad)],
                ..Rules::default()
            }
            .compile()
            .unwrap_err();
            assert!(matches!(e, RuleError::Tolerance { .. }));
            assert!(e.to_string().contains("$.price") && e.to_string().contains(">= 0"));
        }

        let e = Rules {
            headers: vec!["bad header".into()],
            ..Rules::default()
        }
        .compile()
        .unwrap_err();
        assert!(e.to_string().contains("\"bad header\""), "{e}");
    }

    #[test]
    fn first_listed_tolerance_wins() {
        let c = Rules {
            tolerance: vec![("$.a".into(), 0.5), ("$.a".into(), 2.0)],
            ..Rules::default()
        }
        .compile()
        .unwrap();
        let mut out = Vec::new();
        c.trie.step(0, Step::Key("a"), &mut out);
        assert_eq!(c.trie.nodes[out[0] as usize].tolerance, Some((0, 0.5)));
    }

    #[test]
    fn trie_steps_follow_exact_and_wildcard_children() {
        let c = Rules {
            ignore: vec!["$.a[*].b".into(), "$.a[2].c".into(), "$.*.d".into()],
            ..Rules::default()
        }
        .compile()
        .unwrap();
        let t = &c.trie;
        let mut a = Vec::new();
        t.step(0, Step::Key("a"), &mut a);
        assert_eq!(a.len(), 2, "exact `a` and `.*`");
        let mut el = Vec::new();
        for &n in &a {
            t.step(n, Step::Index(2), &mut el);
        }
        assert_eq!(el.len(), 2, "[2] and [*]");
        let mut any = Vec::new();
        for &n in &a {
            t.step(n, Step::Any, &mut any);
        }
        assert_eq!(any.len(), 1, "only [*] for position-free elements");
        let mut none = Vec::new();
        t.step(0, Step::Index(0), &mut none);
        assert!(none.is_empty());
    }
}
