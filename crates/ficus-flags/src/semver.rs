//! Semantic versions as flagd's `sem_ver` operation reads them, and its eight comparisons.
//!
//! flagd (`core/pkg/evaluator/semver.go`) prefixes a missing `v`, turns a leading `V` into
//! `v` and hands the string to Go's `golang.org/x/mod/semver`; this module accepts exactly
//! the strings that pipeline accepts and orders them the same way:
//!
//! - `MAJOR[.MINOR[.PATCH[-PRERELEASE][+BUILD]]]`, optionally prefixed by one `v` or `V`.
//!   The short forms `1` and `1.2` mean `1.0.0` and `1.2.0` and take no pre-release or
//!   build (`1.2-rc.1` is invalid, as in Go). `1.2.3.4`, `01.2.3`, `1.2.3-01`, empty
//!   identifiers and characters outside `[0-9A-Za-z-]` are invalid.
//! - Numbers have no size limit: they compare by length, then digit by digit, so
//!   `1.0.0-99999999999999999999` parses and orders correctly.
//! - Precedence is semver 2.0's: a pre-release sorts before its release; pre-release
//!   identifiers compare left to right, numeric ones numerically, alphanumeric ones by
//!   ASCII, numeric before alphanumeric, and a shorter list first when all shared ones are
//!   equal. Build metadata is ignored (`1.0.0+a == 1.0.0+b`).
//! - [`SemVerOp::Caret`] (`^`) holds when the majors are equal and [`SemVerOp::Tilde`]
//!   (`~`) when majors and minors are equal, whatever the rest: flagd's "match major" and
//!   "match minor", **not** npm's or Cargo's ranges (`3.0.0 ^ 3.9.0` holds; so does
//!   `3.9.0-rc.1 ~ 3.9.0`).
//!
//! What the caller must do: parse rule literals once at load time (the validator does, and
//! rejects bad ones); a context value that does not parse is not a version, and a
//! condition on it simply does not match (flagd's `sem_ver` returns `null`, which is falsy).
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A parsed semantic version (see the module docs for the accepted syntax).
#[derive(Debug, Clone)]
pub struct SemVer {
    major: String,
    minor: String,
    patch: String,
    pre: Vec<String>,
    build: Vec<String>,
}

/// Why a string is not a semantic version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a semantic version: {reason}")]
pub struct SemVerError {
    /// The rejected input.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The comparisons of flagd's `sem_ver` operation, named by their operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SemVerOp {
    /// `=`: equal precedence (build metadata ignored).
    #[serde(rename = "=")]
    Eq,
    /// `!=`
    #[serde(rename = "!=")]
    NotEq,
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `^`: same major version.
    #[serde(rename = "^")]
    Caret,
    /// `~`: same major and minor version.
    #[serde(rename = "~")]
    Tilde,
}

impl SemVerOp {
    /// Every operator, in declaration order.
    pub const ALL: [SemVerOp; 8] = [
        SemVerOp::Eq,
        SemVerOp::NotEq,
        SemVerOp::Lt,
        SemVerOp::Le,
        SemVerOp::Gt,
        SemVerOp::Ge,
        SemVerOp::Caret,
        SemVerOp::Tilde,
    ];

    /// The operator as flagd writes it (`=`, `!=`, `<`, `<=`, `>`, `>=`, `^`, `~`).
    pub fn as_str(self) -> &'static str {
        match self {
            SemVerOp::Eq => "=",
            SemVerOp::NotEq => "!=",
            SemVerOp::Lt => "<",
            SemVerOp::Le => "<=",
            SemVerOp::Gt => ">",
            SemVerOp::Ge => ">=",
            SemVerOp::Caret => "^",
            SemVerOp::Tilde => "~",
        }
    }

    /// Whether `actual OP target` holds.
    pub fn matches(self, actual: &SemVer, target: &SemVer) -> bool {
        match self {
            SemVerOp::Eq => actual == target,
            SemVerOp::NotEq => actual != target,
            SemVerOp::Lt => actual < target,
            SemVerOp::Le => actual <= target,
            SemVerOp::Gt => actual > target,
            SemVerOp::Ge => actual >= target,
            SemVerOp::Caret => actual.major == target.major,
            SemVerOp::Tilde => actual.major == target.major && actual.minor == target.minor,
        }
    }
}

impl fmt::Display for SemVerOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SemVerOp {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SemVerOp::ALL
            .into_iter()
            .find(|op| op.as_str() == s)
            .ok_or_else(|| format!("unknown sem_ver operator {s:?}"))
    }
}

impl SemVer {
    /// Parses `s` (see the module docs).
    pub fn parse(s: &str) -> Result<SemVer, SemVerError> {
        let err = |reason| SemVerError {
            input: s.to_owned(),
            reason,
        };
        let rest = s
            .strip_prefix('v')
            .or_else(|| s.strip_prefix('V'))
            .unwrap_or(s);
        let (major, rest) = number(rest).ok_or_else(|| err("bad major version"))?;
        let Some(rest) = rest.strip_prefix('.') else {
            return if rest.is_empty() {
                Ok(SemVer::short(major, "0"))
            } else {
                Err(err("expected '.' after the major version"))
            };
        };
        let (minor, rest) = number(rest).ok_or_else(|| err("bad minor version"))?;
        let Some(rest) = rest.strip_prefix('.') else {
            return if rest.is_empty() {
                Ok(SemVer::short(major, minor))
            } else {
                Err(err("expected '.' after the minor version"))
            };
        };
        let (patch, rest) = number(rest).ok_or_else(|| err("bad patch version"))?;
        let (pre_part, build_part) = match rest.split_once('+') {
            Some((pre, build)) => (pre, Some(build)),
            None => (rest, None),
        };
        let pre = match pre_part.strip_prefix('-') {
            Some(p) => identifiers(p, true).ok_or_else(|| err("bad pre-release"))?,
            None if pre_part.is_empty() => Vec::new(),
            None => return Err(err("unexpected characters after the patch version")),
        };
        let build = match build_part {
            Some(b) => identifiers(b, false).ok_or_else(|| err("bad build metadata"))?,
            None => Vec::new(),
        };
        Ok(SemVer {
            major: major.to_owned(),
            minor: minor.to_owned(),
            patch: patch.to_owned(),
            pre,
            build,
        })
    }

    fn short(major: &str, minor: &str) -> SemVer {
        SemVer {
            major: major.to_owned(),
            minor: minor.to_owned(),
            patch: "0".to_owned(),
            pre: Vec::new(),
            build: Vec::new(),
        }
    }

    /// Whether this is a pre-release (`1.0.0-rc.1`).
    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }
}

/// A decimal number without leading zeros at the start of `s`, and what follows it.
fn number(s: &str) -> Option<(&str, &str)> {
    let end = s.bytes().take_while(u8::is_ascii_digit).count();
    let (digits, rest) = s.split_at(end);
    match digits.as_bytes() {
        [] => None,
        [b'0', _, ..] => None,
        _ => Some((digits, rest)),
    }
}

/// Dot-separated non-empty `[0-9A-Za-z-]` identifiers; `numeric_rule`: no leading zeros in
/// all-digit ones (pre-release, not build metadata).
fn identifiers(s: &str, numeric_rule: bool) -> Option<Vec<String>> {
    s.split('.')
        .map(|id| {
            let ok = !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !(numeric_rule && is_num(id) && id.len() > 1 && id.starts_with('0'));
            ok.then(|| id.to_owned())
        })
        .collect()
}

fn is_num(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())
}

/// Numbers without leading zeros: shorter is smaller, then digit by digit.
fn cmp_num(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn cmp_ident(a: &str, b: &str) -> Ordering {
    match (is_num(a), is_num(b)) {
        (true, true) => cmp_num(a, b),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

fn cmp_pre(a: &[String], b: &[String]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        // A release sorts after all of its pre-releases.
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a
            .iter()
            .zip(b)
            .map(|(x, y)| cmp_ident(x, y))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| a.len().cmp(&b.len())),
    }
}

impl Ord for SemVer {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_num(&self.major, &other.major)
            .then_with(|| cmp_num(&self.minor, &other.minor))
            .then_with(|| cmp_num(&self.patch, &other.patch))
            .then_with(|| cmp_pre(&self.pre, &other.pre))
    }
}

impl PartialOrd for SemVer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Equality is precedence equality: build metadata does not count.
impl PartialEq for SemVer {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for SemVer {}

impl FromStr for SemVer {
    type Err = SemVerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SemVer::parse(s)
    }
}

/// The full form without a `v`: `1.2.0`, `1.0.0-rc.1+build.5`.
impl fmt::Display for SemVer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre.join("."))?;
        }
        if !self.build.is_empty() {
            write!(f, "+{}", self.build.join("."))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms_and_prefixes() {
        for (input, full) in [
            ("1", "1.0.0"),
            ("1.2", "1.2.0"),
            ("v1.2.3", "1.2.3"),
            ("V1.2.3-rc.1+b.01", "1.2.3-rc.1+b.01"),
            ("0.0.0", "0.0.0"),
        ] {
            assert_eq!(SemVer::parse(input).unwrap().to_string(), full, "{input}");
        }
        for bad in [
            "",
            "v",
            "vv1",
            "1.",
            "1..2",
            "1.2.3.4",
            "01.2.3",
            "1.02.3",
            "1.2.03",
            "1.2-rc",
            "1-rc",
            "1.2.3-",
            "1.2.3-01",
            "1.2.3-a..b",
            "1.2.3+",
            "1.2.3+a_b",
            " 1.2.3",
            "1.2.3 ",
            "-1.2.3",
            "1.2.3-é",
            "a.b.c",
        ] {
            assert!(SemVer::parse(bad).is_err(), "{bad:?} should not parse");
        }
        // Build identifiers may have leading zeros; pre-release ones may not.
        assert!(SemVer::parse("1.2.3+001").is_ok());
        assert!(SemVer::parse("1.2.3-0a").is_ok());
    }

    #[test]
    fn op_round_trip() {
        for op in SemVerOp::ALL {
            assert_eq!(op.as_str().parse::<SemVerOp>().unwrap(), op);
        }
        assert!("==".parse::<SemVerOp>().is_err());
    }
}
