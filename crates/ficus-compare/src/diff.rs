//! The comparison of two responses: status, the rule set's headers, and the bodies as a
//! structural JSON diff (or normalized text), producing field-level differences.
//!
//! Bodies are JSON when both parse (whatever their content type); one JSON and one not is a
//! `body` Type difference; neither is text, normalized per [`TextOptions`], or exact bytes
//! when not UTF-8. In JSON:
//! - objects match by key: Missing (left only), Extra (right only);
//! - Type when the JSON types differ; numbers compare by value (1 == 1.0), integers exactly
//!   (ids beyond 2^53 still differ), within a path's tolerance when one applies;
//! - arrays of different lengths: one Length at the array, then the common prefix element by
//!   element; the same elements in another order: one Order at the array instead of a Value
//!   per element;
//! - `unordered` arrays compare as multisets: Length when the lengths differ, and one Value at
//!   `path[*]` (first unpaired element of each side) when neither side's elements are all
//!   found in the other.
//!
//! Cost model: equal bytes are equal without parsing; otherwise each body is parsed once into
//! a borrowed tree, and the walk keeps the current path as a stack of borrowed steps. A path
//! string is only rendered when a difference is reported, and only
//! [`MAX_DIFFERENCES`] of them ever are.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::json::{self, Node, Num};
use crate::path::push_key;
use crate::rules::{CompiledRules, Step, TextOptions, Trie};

/// At most this many differences are reported per comparison; then `truncated` is set.
pub const MAX_DIFFERENCES: usize = 256;

/// One side's response as the comparator sees it.
#[derive(Clone, Copy, Debug)]
pub struct Exchange<'a> {
    pub status: u16,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// The differences between two responses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub differences: Vec<Difference>,
    /// More than [`MAX_DIFFERENCES`] differences existed; the rest were not looked for.
    pub truncated: bool,
}

impl Comparison {
    /// No difference at all.
    pub fn is_equal(&self) -> bool {
        self.differences.is_empty()
    }
}

/// One field that differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    /// The aggregation key: `status`, `header.content-type`, `body`, or a JSON path with
    /// every array index written `[*]`, e.g. `$.items[*].price`.
    pub path: String,
    /// The concrete location, e.g. `$.items[3].price` (same as `path` outside JSON bodies).
    pub at: String,
    pub kind: Kind,
    /// Short rendering of the left (legacy) value; `None` when it is missing there.
    pub left: Option<String>,
    /// Short rendering of the right (modern) value; `None` when it is missing there.
    pub right: Option<String>,
}

/// What kind of difference a field shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Same type, different value (also: status, header values, text bodies).
    Value,
    /// Different JSON types (number vs string, ...), or JSON vs non-JSON body.
    Type,
    /// Present on the left only.
    Missing,
    /// Present on the right only.
    Extra,
    /// Arrays of different lengths.
    Length,
    /// The same elements in a different order.
    Order,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Value,
        Kind::Type,
        Kind::Missing,
        Kind::Extra,
        Kind::Length,
        Kind::Order,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Value => "value",
            Kind::Type => "type",
            Kind::Missing => "missing",
            Kind::Extra => "extra",
            Kind::Length => "length",
            Kind::Order => "order",
        }
    }

    /// Position in [`Kind::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A difference kind name that is not one of [`Kind::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown difference kind {0:?}; expected one of value, type, missing, extra, length, order"
)]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Kind, UnknownKind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// Compares `left` (legacy) with `right` (modern) under `rules`.
pub fn compare(rules: &CompiledRules, left: &Exchange<'_>, right: &Exchange<'_>) -> Comparison {
    let mut sink = Sink::default();
    // `Err(Stop)` only means the cap was reached; what was collected is the answer.
    let _ = compare_into(rules, left, right, &mut sink);
    Comparison {
        differences: sink.out,
        truncated: sink.truncated,
    }
}

/// The walk stops: the cap was reached, or (when probing) a first difference was found.
struct Stop;
type Flow = Result<(), Stop>;

#[derive(Default)]
struct Sink {
    out: Vec<Difference>,
    truncated: bool,
}

impl Sink {
    fn room(&mut self) -> Flow {
        if self.out.len() >= MAX_DIFFERENCES {
            self.truncated = true;
            return Err(Stop);
        }
        Ok(())
    }

    fn push_plain(
        &mut self,
        path: String,
        kind: Kind,
        left: Option<String>,
        right: Option<String>,
    ) -> Flow {
        self.room()?;
        self.out.push(Difference {
            at: path.clone(),
            path,
            kind,
            left,
            right,
        });
        Ok(())
    }
}

fn compare_into(
    rules: &CompiledRules,
    l: &Exchange<'_>,
    r: &Exchange<'_>,
    sink: &mut Sink,
) -> Flow {
    if l.status != r.status {
        sink.push_plain(
            "status".into(),
            Kind::Value,
            Some(l.status.to_string()),
            Some(r.status.to_string()),
        )?;
    }
    for name in &rules.headers {
        let (mut a, mut b) = (
            l.headers.get_all(name).iter(),
            r.headers.get_all(name).iter(),
        );
        let equal = loop {
            match (a.next(), b.next()) {
                (None, None) => break true,
                (Some(x), Some(y)) if x == y => continue,
                _ => break false,
            }
        };
        if equal {
            continue;
        }
        let (a, b) = (joined(l.headers, name), joined(r.headers, name));
        let kind = match (&a, &b) {
            (Some(_), None) => Kind::Missing,
            (None, Some(_)) => Kind::Extra,
            _ => Kind::Value,
        };
        sink.push_plain(format!("header.{}", name.as_str()), kind, a, b)?;
    }
    body(rules, l.body, r.body, sink)
}

/// All values of a header joined by ", ", as one would read them; `None` when absent.
fn joined(h: &HeaderMap, name: &http::HeaderName) -> Option<String> {
    let mut out: Option<String> = None;
    for v in h.get_all(name) {
        let s = out.get_or_insert_with(String::new);
        if !s.is_empty() {
            s.push_str(", ");
        }
        s.push_str(&String::from_utf8_lossy(v.as_bytes()));
    }
    out.map(|s| json::shorten(&s, false))
}

fn body(rules: &CompiledRules, l: &[u8], r: &[u8], sink: &mut Sink) -> Flow {
    if l == r {
        return Ok(());
    }
    match (json::parse(l), json::parse(r)) {
        (Some(a), Some(b)) => {
            let mut w = Walker {
                trie: &rules.trie,
                steps: Vec::with_capacity(16),
                states: Vec::new(),
                sink,
                probe: false,
                pairing_budget: PAIRING_BUDGET,
            };
            let root = if rules.trie.active {
                w.states.push(0);
                (0, 1)
            } else {
                (0, 0)
            };
            w.node(root, &a, &b)
        }
        (Some(_), None) | (None, Some(_)) => sink.push_plain(
            "body".into(),
            Kind::Type,
            Some(body_snippet(l, 0)),
            Some(body_snippet(r, 0)),
        ),
        (None, None) => text(rules.text, l, r, sink),
    }
}

/// Compares non-JSON bodies: normalized text when both are UTF-8, else exact bytes.
fn text(opts: TextOptions, l: &[u8], r: &[u8], sink: &mut Sink) -> Flow {
    let (Ok(a), Ok(b)) = (std::str::from_utf8(l), std::str::from_utf8(r)) else {
        return sink.push_plain(
            "body".into(),
            Kind::Value,
            Some(body_snippet(l, 0)),
            Some(body_snippet(r, 0)),
        );
    };
    let (a, b) = (normalize(a, opts), normalize(b, opts));
    if a == b {
        return Ok(());
    }
    // Show both sides from a little before the first difference, so the snippet has it.
    let first = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map(|((i, _), _)| i)
        .unwrap_or(a.len().min(b.len()));
    let start = a[..first]
        .char_indices()
        .rev()
        .nth(39)
        .map(|(i, _)| i)
        .unwrap_or(0);
    sink.push_plain(
        "body".into(),
        Kind::Value,
        Some(text_snippet(&a, start)),
        Some(text_snippet(&b, start)),
    )
}

fn normalize(s: &str, o: TextOptions) -> Cow<'_, str> {
    let mut s = Cow::Borrowed(if o.trim { s.trim() } else { s });
    if o.collapse_whitespace {
        let mut out = String::with_capacity(s.len());
        let mut in_space = false;
        for c in s.chars() {
            if c.is_whitespace() {
                if !in_space {
                    out.push(' ');
                }
                in_space = true;
            } else {
                out.push(c);
                in_space = false;
            }
        }
        s = Cow::Owned(out);
    }
    if o.ignore_case {
        s = Cow::Owned(s.to_lowercase());
    }
    s
}

fn text_snippet(s: &str, start: usize) -> String {
    // `start` is a char boundary of the left text; the right text shares the prefix up to the
    // first difference, so it is one there too, unless the right text is shorter.
    let start = if s.is_char_boundary(start) && start <= s.len() {
        start
    } else {
        0
    };
    let tail = json::shorten(&s[start..], false);
    if start > 0 {
        format!("…{tail}")
    } else {
        tail
    }
}

fn body_snippet(b: &[u8], start: usize) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => text_snippet(s, start),
        Err(_) => format!("<{} bytes, not UTF-8>", b.len()),
    }
}

/// A range of `Walker::states`: the trie nodes the current path has reached.
type Frame = (usize, usize);

/// What the rules say about the current path.
#[derive(Default)]
struct Flags {
    ignore: bool,
    tolerance: f64,
    unordered: bool,
}

struct Walker<'r, 'a, 's> {
    trie: &'r Trie,
    steps: Vec<Step<'a>>,
    states: Vec<u32>,
    sink: &'s mut Sink,
    /// Only answer "equal or not": the first difference stops the walk, nothing is recorded.
    probe: bool,
    /// Comparisons left for pairing leftovers by brute force, for the whole body: that step
    /// is quadratic, and nested unordered arrays would multiply it.
    pairing_budget: usize,
}

/// Comparisons one body's diff may spend pairing unordered leftovers (see `match_elements`).
const PAIRING_BUDGET: usize = 4096;

impl<'a> Walker<'_, 'a, '_> {
    #[inline]
    fn enter(&mut self, f: Frame, step: Step<'a>) -> Frame {
        let start = self.states.len();
        for i in f.0..f.1 {
            let s = self.states[i];
            self.trie.step(s, step, &mut self.states);
        }
        (start, self.states.len())
    }

    #[inline]
    fn leave(&mut self, f: Frame) {
        self.states.truncate(f.0);
    }

    #[inline]
    fn flags(&self, f: Frame) -> Flags {
        let mut fl = Flags::default();
        let mut best = usize::MAX;
        for &s in &self.states[f.0..f.1] {
            let n = &self.trie.nodes[s as usize];
            fl.ignore |= n.ignore;
            fl.unordered |= n.unordered;
            if let Some((order, tol)) = n.tolerance {
                if order < best {
                    best = order;
                    fl.tolerance = tol;
                }
            }
        }
        fl
    }

    fn node(&mut self, f: Frame, a: &'a Node<'a>, b: &'a Node<'a>) -> Flow {
        let fl = self.flags(f);
        if fl.ignore {
            return Ok(());
        }
        match (a, b) {
            (Node::Null, Node::Null) => Ok(()),
            (Node::Bool(x), Node::Bool(y)) if x == y => Ok(()),
            (Node::Num(x), Node::Num(y)) if num_eq(*x, *y, fl.tolerance) => Ok(()),
            (Node::Str(x), Node::Str(y)) if x == y => Ok(()),
            (Node::Arr(x), Node::Arr(y)) if fl.unordered => self.unordered(f, x, y),
            (Node::Arr(x), Node::Arr(y)) => self.ordered(f, a, b, x, y),
            (Node::Obj(x), Node::Obj(y)) => self.object(f, x, y),
            _ if a.type_tag() == b.type_tag() => self.report(Kind::Value, Some(a), Some(b)),
            _ => self.report(Kind::Type, Some(a), Some(b)),
        }
    }

    fn object(
        &mut self,
        f: Frame,
        x: &'a [(Cow<'a, str>, Node<'a>)],
        y: &'a [(Cow<'a, str>, Node<'a>)],
    ) -> Flow {
        let (mut i, mut j) = (0, 0);
        loop {
            match (x.get(i), y.get(j)) {
                (None, None) => return Ok(()),
                (Some((k, v)), None) => {
                    self.member(f, k, Some(v), None)?;
                    i += 1;
                }
                (None, Some((k, v))) => {
                    self.member(f, k, None, Some(v))?;
                    j += 1;
                }
                (Some((ka, va)), Some((kb, vb))) => match ka.cmp(kb) {
                    std::cmp::Ordering::Less => {
                        self.member(f, ka, Some(va), None)?;
                        i += 1;
                    }
                    std::cmp::Ordering::Greater => {
                        self.member(f, kb, None, Some(vb))?;
                        j += 1;
                    }
                    std::cmp::Ordering::Equal => {
                        self.member(f, ka, Some(va), Some(vb))?;
                        i += 1;
                        j += 1;
                    }
                },
            }
        }
    }

    fn member(
        &mut self,
        f: Frame,
        key: &'a str,
        a: Option<&'a Node<'a>>,
        b: Option<&'a Node<'a>>,
    ) -> Flow {
        let c = self.enter(f, Step::Key(key));
        self.steps.push(Step::Key(key));
        let r = match (a, b) {
            (Some(a), Some(b)) => self.node(c, a, b),
            _ if self.flags(c).ignore => Ok(()),
            (Some(_), None) => self.report(Kind::Missing, a, None),
            _ => self.report(Kind::Extra, None, b),
        };
        self.steps.pop();
        self.leave(c);
        r
    }

    fn element(&mut self, f: Frame, step: Step<'a>, a: &'a Node<'a>, b: &'a Node<'a>) -> Flow {
        let c = self.enter(f, step);
        self.steps.push(step);
        let r = self.node(c, a, b);
        self.steps.pop();
        self.leave(c);
        r
    }

    fn ordered(
        &mut self,
        f: Frame,
        a: &'a Node<'a>,
        b: &'a Node<'a>,
        x: &'a [Node<'a>],
        y: &'a [Node<'a>],
    ) -> Flow {
        if self.probe {
            if x.len() != y.len() {
                return Err(Stop);
            }
            for (i, (ea, eb)) in x.iter().zip(y).enumerate() {
                self.element(f, Step::Index(i), ea, eb)?;
            }
            return Ok(());
        }
        if x.len() != y.len() {
            self.report_len(x.len(), y.len())?;
        }
        let start = self.sink.out.len();
        let mut res = Ok(());
        let mut first_differing = None;
        for (i, (ea, eb)) in x.iter().zip(y).enumerate() {
            let before = self.sink.out.len();
            res = self.element(f, Step::Index(i), ea, eb);
            if first_differing.is_none() && (self.sink.out.len() > before || res.is_err()) {
                first_differing = Some(i);
            }
            if res.is_err() {
                break;
            }
        }
        // Per-element Value noise for a reordered list helps nobody: if the elements are the
        // same multiset, say "order" once instead. A reordering moves the first differing
        // element elsewhere, which is cheap to rule out before matching every element.
        if let Some(i) = first_differing.filter(|_| x.len() == y.len() && x.len() > 1) {
            let c = self.enter(f, Step::Any);
            let moved = (0..y.len()).any(|j| j != i && self.probe_eq(c, &x[i], &y[j]));
            self.leave(c);
            if !moved {
                return res;
            }
            let (ul, ur) = self.match_elements(f, x, y);
            if ul.is_empty() && ur.is_empty() {
                self.sink.out.truncate(start);
                self.sink.truncated = false;
                return self.report(Kind::Order, Some(a), Some(b));
            }
        }
        res
    }

    fn unordered(&mut self, f: Frame, x: &'a [Node<'a>], y: &'a [Node<'a>]) -> Flow {
        // Usually both sides list the elements in the same order anyway: check that first.
        if x.len() == y.len() {
            let c = self.enter(f, Step::Any);
            let same = x.iter().zip(y).all(|(ea, eb)| self.probe_eq(c, ea, eb));
            self.leave(c);
            if same {
                return Ok(());
            }
        }
        if self.probe && x.len() != y.len() {
            return Err(Stop);
        }
        let (ul, ur) = self.match_elements(f, x, y);
        if self.probe {
            return if ul.is_empty() && ur.is_empty() {
                Ok(())
            } else {
                Err(Stop)
            };
        }
        if x.len() != y.len() {
            self.report_len(x.len(), y.len())?;
        }
        // When one side merely has extra elements, Length said it all.
        if let (Some(&l), Some(&r)) = (ul.first(), ur.first()) {
            self.steps.push(Step::Any);
            let res = self.report(Kind::Value, Some(&x[l]), Some(&y[r]));
            self.steps.pop();
            res?;
        }
        Ok(())
    }

    /// Pairs up equal elements regardless of position; returns the unpaired indices of each
    /// side. Elements are bucketed by a structural hash (which follows the rules: ignored
    /// members left out, unordered arrays hashed as multisets), every hash match is confirmed
    /// with a real comparison, and leftovers are paired by comparison so that numeric
    /// tolerance and hash collisions are honoured too.
    fn match_elements(
        &mut self,
        f: Frame,
        x: &'a [Node<'a>],
        y: &'a [Node<'a>],
    ) -> (Vec<usize>, Vec<usize>) {
        let c = self.enter(f, Step::Any);
        let mut hx: Vec<(u64, usize)> = Vec::with_capacity(x.len());
        for (i, e) in x.iter().enumerate() {
            hx.push((self.hash(c, e), i));
        }
        let mut hy: Vec<(u64, usize)> = Vec::with_capacity(y.len());
        for (i, e) in y.iter().enumerate() {
            hy.push((self.hash(c, e), i));
        }
        hx.sort_unstable();
        hy.sort_unstable();
        let (mut ul, mut ur) = (Vec::new(), Vec::new());
        let (mut i, mut j) = (0, 0);
        while i < hx.len() && j < hy.len() {
            match hx[i].0.cmp(&hy[j].0) {
                std::cmp::Ordering::Less => {
                    ul.push(hx[i].1);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    ur.push(hy[j].1);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    if !self.probe_eq(c, &x[hx[i].1], &y[hy[j].1]) {
                        ul.push(hx[i].1);
                        ur.push(hy[j].1);
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        ul.extend(hx[i..].iter().map(|e| e.1));
        ur.extend(hy[j..].iter().map(|e| e.1));
        if !ul.is_empty() && !ur.is_empty() {
            ul.retain(|&l| {
                let found = ur.iter().position(|&r| {
                    if self.pairing_budget == 0 {
                        return false;
                    }
                    self.pairing_budget -= 1;
                    self.probe_eq(c, &x[l], &y[r])
                });
                match found {
                    Some(p) => {
                        ur.remove(p);
                        false
                    }
                    None => true,
                }
            });
        }
        ul.sort_unstable();
        ur.sort_unstable();
        self.leave(c);
        (ul, ur)
    }

    /// Whether two values are equal under the rules, recording nothing.
    fn probe_eq(&mut self, f: Frame, a: &'a Node<'a>, b: &'a Node<'a>) -> bool {
        let saved = std::mem::replace(&mut self.probe, true);
        let depth = self.steps.len();
        let eq = self.node(f, a, b).is_ok();
        self.steps.truncate(depth);
        self.probe = saved;
        eq
    }

    /// A structural hash consistent with `node` equality without tolerance: members in key
    /// order, ignored paths left out, unordered arrays as multisets, 1 and 1.0 alike.
    fn hash(&mut self, f: Frame, n: &'a Node<'a>) -> u64 {
        let fl = self.flags(f);
        if fl.ignore {
            return 0x1d;
        }
        match n {
            Node::Null => 0x2e,
            Node::Bool(b) => mix(0x3f, *b as u64),
            Node::Num(x) => match canonical_int(*x) {
                Some(i) => mix(mix(0x41, i as u64), (i >> 64) as u64),
                None => match x {
                    Num::F(v) => mix(0x52, v.to_bits()),
                    _ => 0x52,
                },
            },
            Node::Str(s) => xxh3_64_with_seed(s.as_bytes(), 0x63),
            Node::Arr(items) if fl.unordered => {
                let c = self.enter(f, Step::Any);
                let mut sum = 0u64;
                for e in items {
                    sum = sum.wrapping_add(fmix(self.hash(c, e)));
                }
                self.leave(c);
                mix(mix(0x74, sum), items.len() as u64)
            }
            Node::Arr(items) => {
                let mut h = 0x85;
                for (i, e) in items.iter().enumerate() {
                    let c = self.enter(f, Step::Index(i));
                    h = mix(h, self.hash(c, e));
                    self.leave(c);
                }
                mix(h, items.len() as u64)
            }
            Node::Obj(members) => {
                let mut sum = 0u64;
                for (k, v) in members {
                    let c = self.enter(f, Step::Key(k));
                    if !self.flags(c).ignore {
                        let kh = xxh3_64_with_seed(k.as_bytes(), 0x96);
                        sum = sum.wrapping_add(mix(kh, self.hash(c, v)));
                    }
                    self.leave(c);
                }
                mix(0xa7, sum)
            }
        }
    }

    fn report(&mut self, kind: Kind, a: Option<&Node<'_>>, b: Option<&Node<'_>>) -> Flow {
        if self.probe {
            return Err(Stop);
        }
        self.sink.room()?;
        let (path, at) = self.paths();
        self.sink.out.push(Difference {
            path,
            at,
            kind,
            left: a.map(json::render),
            right: b.map(json::render),
        });
        Ok(())
    }

    fn report_len(&mut self, x: usize, y: usize) -> Flow {
        if self.probe {
            return Err(Stop);
        }
        self.sink.room()?;
        let (path, at) = self.paths();
        self.sink.out.push(Difference {
            path,
            at,
            kind: Kind::Length,
            left: Some(x.to_string()),
            right: Some(y.to_string()),
        });
        Ok(())
    }

    /// Renders (generalized, concrete) paths of the current position.
    fn paths(&self) -> (String, String) {
        let mut path = String::from("$");
        let mut at = String::from("$");
        for s in &self.steps {
            match s {
                Step::Key(k) => {
                    let mark = at.len();
                    push_key(&mut at, k);
                    path.push_str(&at[mark..]);
                }
                Step::Index(i) => {
                    path.push_str("[*]");
                    at.push('[');
                    at.push_str(&i.to_string());
                    at.push(']');
                }
                Step::Any => {
                    path.push_str("[*]");
                    at.push_str("[*]");
                }
            }
        }
        (path, at)
    }
}

/// The exact integer value of a number, when it has one that fits i128.
fn canonical_int(n: Num) -> Option<i128> {
    match n {
        Num::U(u) => Some(u as i128),
        Num::I(i) => Some(i as i128),
        Num::F(f) if f.fract() == 0.0 && f.abs() < 1e38 => Some(f as i128),
        Num::F(_) => None,
    }
}

/// The value as f64 and whether that is exact.
fn as_f64(n: Num) -> (f64, bool) {
    match n {
        Num::U(u) => {
            let f = u as f64;
            (f, f < 18446744073709551616.0 && f as u64 == u)
        }
        Num::I(i) => {
            let f = i as f64;
            (f, f < 9223372036854775808.0 && f as i64 == i)
        }
        Num::F(f) => (f, true),
    }
}

/// Number equality: integers exactly (so ids beyond 2^53 still differ), integer vs float by
/// value (1 == 1.0), and within `tol` when a tolerance applies.
fn num_eq(x: Num, y: Num, tol: f64) -> bool {
    match (x, y) {
        (Num::U(_) | Num::I(_), Num::U(_) | Num::I(_)) => {
            let (Some(a), Some(b)) = (canonical_int(x), canonical_int(y)) else {
                return false;
            };
            a == b || (tol > 0.0 && (a - b).unsigned_abs() as f64 <= tol)
        }
        _ => {
            let ((a, ea), (b, eb)) = (as_f64(x), as_f64(y));
            (ea && eb && a == b) || (tol > 0.0 && (a - b).abs() <= tol)
        }
    }
}

/// The 64-bit finalizer of MurmurHash3: cheap, and good enough that collisions only cost a
/// confirming comparison.
#[inline]
fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ceb9fe1a85ec53);
    h ^ (h >> 33)
}

#[inline]
fn mix(a: u64, b: u64) -> u64 {
    fmix(a.rotate_left(23) ^ b.wrapping_mul(0x9e3779b97f4a7c15))
}
