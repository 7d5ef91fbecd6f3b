//! Evaluating a flag against a context, flagd-compatible bucketing, and the bulk ETag.
//!
//! # Semantics of [`evaluate`]
//!
//! In this order:
//!
//! 1. **Disabled** flag: reason `DISABLED`, **no value and no variant**. This is what flagd
//!    does (`core/pkg/service/ofrep/models.go` omits both; the flagd-testbed
//!    `evaluator/gherkin/disabled.feature` expects the caller's default value) and what
//!    OFREP 0.3's `codeDefaultFlag` is for: the provider falls back to the default written
//!    in the application's code.
//! 2. The **first rule** whose conditions all hold decides: a variant outcome gives reason
//!    `TARGETING_MATCH`; a fractional outcome gives `SPLIT` (flagd says `TARGETING_MATCH`
//!    for everything its JsonLogic returns; OpenFeature defines `SPLIT` for exactly this).
//!    A condition on an absent attribute does not hold (see [`crate::Op`]).
//! 3. A fractional rule with no randomization unit (its `bucketBy` attribute and the
//!    targeting key both absent or empty): error `TARGETING_KEY_MISSING`, reason `ERROR`,
//!    with the default variant and its value filled in for the gateway's own use. (flagd
//!    instead returns the default variant with reason `DEFAULT`; an error tells the
//!    client its context is incomplete.) Later rules are not tried.
//! 4. No rule matched: the default variant, reason `DEFAULT`; a flag without rules:
//!    the default variant, reason `STATIC`.
//!
//! A rule that names an unknown variant, a fractional rule without weight or a default
//! variant that does not exist (all rejected by [`crate::validate`]) gives error `GENERAL`,
//! reason `ERROR`, no value.
//!
//! # What the caller must do
//!
//! - **Flag not found** never reaches this module: answer with
//!   [`Resolution::flag_not_found`] (single-flag endpoint: `404`).
//! - Render resolutions with [`Resolution::to_ofrep`]: an error becomes OFREP's
//!   `evaluationFailure` (`key`, `errorCode`, `errorDetails`, `metadata`; **the value is
//!   not sent**, the provider uses its code default); anything else an
//!   `evaluationSuccess` (`key`, `reason`, `variant` and `value` when present,
//!   `metadata`). Single-flag status: [`ErrorCode::http_status`] for errors, `200`
//!   otherwise; the bulk endpoint always answers `200` with each flag inline.
//! - Reason `DEFAULT` is an OpenFeature reason that flagd returns, but OFREP 0.3's
//!   `evaluationSuccess` enum lists only `STATIC`, `TARGETING_MATCH`, `SPLIT`, `DISABLED`
//!   and `UNKNOWN`; providers accept any string. Send it as is.
//! - **ETag** ([`etag`]): compute it over exactly the flags the bulk response lists, the
//!   request's context and the configuration revision; answer `304` when it equals the
//!   request's `If-None-Match` (compare the quoted strings byte for byte; a list or `*`
//!   is the HTTP layer's business). It is the same on every node running the same
//!   release, so a load balancer may send the revalidation anywhere.
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::context::Context;
use crate::hash::Fnv128;
pub use crate::hash::{fnv1a_128, murmur3_x86_32};
use crate::model::{BucketHash, Condition, Flag, Op, Outcome, Value};
use crate::semver::SemVer;

/// Why a flag resolved as it did (OpenFeature resolution reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// The flag has no rules: the default variant.
    Static,
    /// A rule with a variant outcome matched.
    TargetingMatch,
    /// A rule with a fractional outcome matched.
    Split,
    /// The flag is disabled: no value (the client uses its code default).
    Disabled,
    /// Rules exist but none matched: the default variant.
    Default,
    /// The resolution is an error (see [`Resolution::error`]).
    Error,
}

impl Reason {
    /// The OFREP spelling (`TARGETING_MATCH`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Disabled => "DISABLED",
            Reason::Default => "DEFAULT",
            Reason::Error => "ERROR",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// OFREP error codes: `evaluationFailure` allows `PARSE_ERROR`, `TARGETING_KEY_MISSING`,
/// `INVALID_CONTEXT` and `GENERAL`, and `flagNotFound` has `FLAG_NOT_FOUND`.
/// OpenFeature's `TYPE_MISMATCH` is not among them: OFREP requests carry no expected type
/// (ADR 0003), so only the provider can detect a mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The flag configuration could not be parsed.
    ParseError,
    /// A fractional rule needed a targeting key and the context has none.
    TargetingKeyMissing,
    /// The request's context is not usable (see [`crate::ContextError`]).
    InvalidContext,
    /// No flag has this key.
    FlagNotFound,
    /// Anything else (an invalid flag that slipped past validation).
    General,
}

impl ErrorCode {
    /// The OFREP spelling (`TARGETING_KEY_MISSING`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
            ErrorCode::InvalidContext => "INVALID_CONTEXT",
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::General => "GENERAL",
        }
    }

    /// The status of a single-flag evaluation failing with this code: `404` for
    /// `FLAG_NOT_FOUND`, `400` for the rest (as OFREP's OpenAPI and flagd answer).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::FlagNotFound => 404,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of evaluating one flag.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// The flag key.
    pub key: String,
    /// The resolved value; `None` when disabled or on an error without a usable default.
    /// On `TARGETING_KEY_MISSING` it is the default variant's value, for the gateway's own
    /// use only ([`to_ofrep`](Resolution::to_ofrep) does not send it).
    pub value: Option<Value>,
    /// The resolved variant (same presence as `value`).
    pub variant: Option<String>,
    /// Why.
    pub reason: Reason,
    /// The error code and a human-readable detail when `reason` is `ERROR`.
    pub error: Option<(ErrorCode, String)>,
    /// The flag's metadata.
    pub metadata: BTreeMap<String, Json>,
}

impl Resolution {
    /// The resolution for a key that names no flag (`FLAG_NOT_FOUND`).
    pub fn flag_not_found(key: &str) -> Resolution {
        Resolution {
            key: key.to_owned(),
            value: None,
            variant: None,
            reason: Reason::Error,
            error: Some((
                ErrorCode::FlagNotFound,
                format!("flag {key:?} was not found"),
            )),
            metadata: BTreeMap::new(),
        }
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.error.is_some()
    }

    /// The OFREP JSON object for this resolution: an `evaluationFailure` /
    /// `flagNotFound` (`key`, `errorCode`, `errorDetails`, `metadata`) for an error, an
    /// `evaluationSuccess` (`key`, `reason`, `variant` and `value` when present,
    /// `metadata`) otherwise. Usable as is in a bulk response's `flags` array.
    pub fn to_ofrep(&self) -> Json {
        let mut m = Map::new();
        m.insert("key".to_owned(), Json::String(self.key.clone()));
        match &self.error {
            Some((code, details)) => {
                m.insert(
                    "errorCode".to_owned(),
                    Json::String(code.as_str().to_owned()),
                );
                m.insert("errorDetails".to_owned(), Json::String(details.clone()));
            }
            None => {
                m.insert(
                    "reason".to_owned(),
                    Json::String(self.reason.as_str().to_owned()),
                );
                if let Some(variant) = &self.variant {
                    m.insert("variant".to_owned(), Json::String(variant.clone()));
                }
                if let Some(value) = &self.value {
                    m.insert("value".to_owned(), value.to_json());
                }
            }
        }
        let metadata = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        m.insert("metadata".to_owned(), Json::Object(metadata));
        Json::Object(m)
    }
}

/// Evaluates `flag` for `ctx` (semantics in the [module docs](self)). Pure and
/// deterministic: the same flag and context give the same resolution on every node.
pub fn evaluate(flag: &Flag, ctx: &Context) -> Resolution {
    let mut res = Resolution {
        key: flag.key.clone(),
        value: None,
        variant: None,
        reason: Reason::Disabled,
        error: None,
        metadata: flag.metadata.clone(),
    };
    if !flag.enabled {
        return res;
    }
    for (index, rule) in flag.rules.iter().enumerate() {
        if !rule.when.iter().all(|c| condition_holds(c, ctx)) {
            continue;
        }
        match &rule.then {
            Outcome::Variant(variant) => {
                return resolved(res, flag, variant, Reason::TargetingMatch);
            }
            Outcome::Fractional {
                bucket_by,
                hash,
                split,
            } => {
                let Some(input) = bucketing_input(flag, bucket_by.as_deref(), hash, ctx) else {
                    // The default is kept for the gateway's own use (not sent on the wire);
                    // if it is missing too, the error below still names the real cause.
                    res = resolved(res, flag, &flag.default_variant, Reason::Error);
                    let unit = bucket_by
                        .as_deref()
                        .unwrap_or(crate::context::TARGETING_KEY);
                    res.error = Some((
                        ErrorCode::TargetingKeyMissing,
                        format!(
                            "flag {:?} rule {index} splits by {unit:?}, and the context has neither it nor a targetingKey",
                            flag.key
                        ),
                    ));
                    return res;
                };
                let hash = murmur3_x86_32(input.as_bytes(), 0);
                return match bucket_index(hash, split) {
                    Some(i) => resolved(res, flag, &split[i].0, Reason::Split),
                    None => general(
                        res,
                        format!(
                            "flag {:?} rule {index}: fractional split has no weight",
                            flag.key
                        ),
                    ),
                };
            }
        }
    }
    let reason = if flag.rules.is_empty() {
        Reason::Static
    } else {
        Reason::Default
    };
    resolved(res, flag, &flag.default_variant, reason)
}

fn resolved(mut res: Resolution, flag: &Flag, variant: &str, reason: Reason) -> Resolution {
    match flag.variants.get(variant) {
        Some(value) => {
            res.value = Some(value.clone());
            res.variant = Some(variant.to_owned());
            res.reason = reason;
            res
        }
        None => general(
            res,
            format!("flag {:?}: variant {variant:?} does not exist", flag.key),
        ),
    }
}

fn general(mut res: Resolution, details: String) -> Resolution {
    res.value = None;
    res.variant = None;
    res.reason = Reason::Error;
    res.error = Some((ErrorCode::General, details));
    res
}

/// The bytes a fractional rule hashes, or `None` without a randomization unit.
fn bucketing_input(
    flag: &Flag,
    bucket_by: Option<&str>,
    hash: &BucketHash,
    ctx: &Context,
) -> Option<String> {
    let unit = bucket_by
        .and_then(|attr| ctx.get(attr))
        .and_then(|v| unit_text(&v))
        .or_else(|| ctx.targeting_key.clone().filter(|k| !k.is_empty()))?;
    let prefix = match hash {
        BucketHash::Flagd => flag.key.as_str(),
        BucketHash::FlagdCustomSeed(seed) => seed.as_str(),
    };
    Some(format!("{prefix}{unit}"))
}

/// A bucketing attribute's text: strings as they are (empty = absent), numbers in their
/// JSON spelling, booleans as `true`/`false`; anything else is absent.
fn unit_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) if !s.is_empty() => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// flagd's fractional bucket selection (`distributeValue` in
/// `core/pkg/evaluator/fractional.go`, flagd ≥ the `fractional` v2 change of 2026-04):
/// `bucket = (u64(hash) * u64(total)) >> 32`, then the index of the first entry whose
/// running weight sum exceeds `bucket`. `None` when the weights sum to 0.
///
/// The arithmetic is done in `u128`, so totals past flagd's `i32::MAX` limit do not
/// overflow (they are outside flagd's domain; [`crate::validate`] rejects them).
pub fn bucket_index(hash: u32, split: &[(String, u32)]) -> Option<usize> {
    let total: u128 = split.iter().map(|&(_, w)| u128::from(w)).sum();
    if total == 0 {
        return None;
    }
    let bucket = (u128::from(hash) * total) >> 32;
    let mut end = 0u128;
    split.iter().position(|&(_, w)| {
        end += u128::from(w);
        bucket < end
    })
}

/// The variant flagd's `fractional` picks for `bucketing_value` under `flag_key` when
/// seeded with the flag key (its default and recommended form, [`BucketHash::Flagd`]):
/// `murmur3_x86_32(flag_key ++ bucketing_value, 0)` through [`bucket_index`]. `None` when
/// the weights sum to 0.
pub fn flagd_bucket<'a>(
    flag_key: &str,
    bucketing_value: &str,
    split: &'a [(String, u32)],
) -> Option<&'a str> {
    let mut input = String::with_capacity(flag_key.len() + bucketing_value.len());
    input.push_str(flag_key);
    input.push_str(bucketing_value);
    let hash = murmur3_x86_32(input.as_bytes(), 0);
    bucket_index(hash, split).map(|i| split[i].0.as_str())
}

fn condition_holds(c: &Condition, ctx: &Context) -> bool {
    let actual = ctx.get(&c.attribute);
    let Some(actual) = actual.as_deref() else {
        return matches!(c.op, Op::Exists(false));
    };
    match &c.op {
        Op::Exists(want) => *want,
        Op::Eq(lit) => json_eq(actual, lit),
        Op::NotEq(lit) => !json_eq(actual, lit),
        Op::In(lits) => lits.iter().any(|l| json_eq(actual, l)),
        Op::NotIn(lits) => !lits.iter().any(|l| json_eq(actual, l)),
        Op::StartsWith(p) => actual.as_str().is_some_and(|s| s.starts_with(p.as_str())),
        Op::EndsWith(p) => actual.as_str().is_some_and(|s| s.ends_with(p.as_str())),
        Op::Num(op, lit) => actual.as_f64().is_some_and(|n| op.matches(n, *lit)),
        Op::SemVer(op, lit) => {
            let actual = match actual {
                Json::String(s) => SemVer::parse(s),
                Json::Number(n) => SemVer::parse(&n.to_string()),
                _ => return false,
            };
            match (actual, SemVer::parse(lit)) {
                (Ok(a), Ok(t)) => op.matches(&a, &t),
                _ => false,
            }
        }
    }
}

/// JSON equality with numbers compared by value (`1 == 1.0`).
fn json_eq(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Bump when evaluation semantics change, so that ETags from an older release never
/// validate a newer release's answers.
const ETAG_VERSION: &str = "ficus-flags etag v1";

/// A strong ETag (`"` + 32 lowercase hex digits + `"`) for the bulk evaluation of `flags`
/// for `ctx` under `config_revision`.
///
/// Construction: FNV-1a 128-bit over a framed, canonical byte stream:
///
/// ```text
/// frame("ficus-flags etag v1") frame(config_revision) u64le(#flags)
/// frame(canonical(flag)) for each flag, sorted by key then by its bytes
/// frame(canonical({"attrs": ctx.attrs, "targetingKey": ctx.targeting_key}))
/// ```
///
/// where `frame(b)` = `u64le(len(b)) ++ b` and `canonical` is JSON of the flag's serde
/// form with object keys sorted by bytes at every level, no whitespace, strings escaped
/// only where JSON requires it (`"`, `\`, control characters as `\u00XX`) and numbers as
/// serde_json prints them. Nothing depends on map iteration order, the order of `flags`,
/// the process or the host, so every node agrees; any change to a flag (including its
/// metadata and `enabled`), to the set of flags, to the context or to the revision changes
/// the tag (up to 128-bit collisions; FNV is not collision-resistant against an adversary,
/// who could only make their own cache stale). Contexts that differ only in spelling
/// (`1` vs `1.0`) get different tags; that only costs a re-evaluation.
///
/// Cost: linear in the size of the flags; [`etag_prefix`] computes that part once.
pub fn etag(flags: &[&Flag], ctx: &Context, config_revision: &str) -> String {
    etag_prefix(flags, config_revision).etag(ctx)
}

/// The part of [`etag`] that depends on the flags and the revision only: compute it once
/// per configuration, then [`EtagPrefix::etag`] per request costs only the context's
/// bytes. The tags are exactly [`etag`]'s.
#[derive(Debug, Clone, Copy)]
pub struct EtagPrefix(Fnv128);

impl EtagPrefix {
    /// The ETag of these flags for `ctx`.
    pub fn etag(&self, ctx: &Context) -> String {
        let mut h = self.0;
        let mut ctx_bytes = Vec::new();
        write_canonical(&ctx.to_json(), &mut ctx_bytes);
        h.write_framed(&ctx_bytes);
        format!("\"{:032x}\"", h.finish())
    }
}

/// See [`EtagPrefix`].
pub fn etag_prefix(flags: &[&Flag], config_revision: &str) -> EtagPrefix {
    let mut encoded: Vec<(&str, Vec<u8>)> = flags
        .iter()
        .map(|f| {
            let mut out = Vec::new();
            match serde_json::to_value(f) {
                Ok(v) => write_canonical(&v, &mut out),
                // Unreachable for this crate's types; still deterministic.
                Err(e) => {
                    out.extend_from_slice(format!("unserializable {:?}: {e}", f.key).as_bytes())
                }
            }
            (f.key.as_str(), out)
        })
        .collect();
    encoded.sort();

    let mut h = Fnv128::new();
    h.write_framed(ETAG_VERSION.as_bytes());
    h.write_framed(config_revision.as_bytes());
    h.write(&(encoded.len() as u64).to_le_bytes());
    for (_, bytes) in &encoded {
        h.write_framed(bytes);
    }
    EtagPrefix(h)
}

/// Canonical JSON (see [`etag`]).
pub(crate) fn write_canonical(v: &Json, out: &mut Vec<u8>) {
    match v {
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Json::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Json::String(s) => write_string(s, out),
        Json::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Json::Object(map) => {
            let mut entries: Vec<(&String, &Json)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if u32::from(c) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}
