//! Flags, their variants and rules, and [`validate`].
//!
//! A [`Flag`] has named variants (all of one [`ValueKind`]), a default variant, an
//! `enabled` switch and an ordered list of [`Rule`]s; each rule is a conjunction of
//! [`Condition`]s on the evaluation context and an [`Outcome`]: one variant, or a
//! flagd-compatible fractional split. How they evaluate is in [`crate::eval`].
//!
//! # What the caller must do
//!
//! - **Validate every flag when the configuration loads** and refuse the whole
//!   configuration on the first error (report it: messages name the flag, the rule and
//!   the problem). [`crate::evaluate`] does not re-validate; on a flag that would fail it
//!   returns a `GENERAL` error where it can detect the problem and otherwise evaluates as
//!   written (an unparsable semver literal never matches, for example).
//! - **Keep flag keys stable**: bucketing hashes the key, so renaming a flag reshuffles
//!   every user of its fractional rules (see [`BucketHash`]).
//! - Serialized form (serde, for the config layer to reuse or ignore): fields in
//!   camelCase (`defaultVariant`, `bucketBy`), operators in flagd's snake_case
//!   (`{"attribute": "user.plan", "op": {"in": ["pro", "team"]}}`,
//!   `{"op": {"sem_ver": [">=", "2.1.0"]}}`, `{"op": {"num": ["<", 18]}}`), outcomes as
//!   `{"variant": "on"}` or `{"fractional": {"split": [["on", 10], ["off", 90]]}}`;
//!   `enabled` defaults to `true`, `rules` and `metadata` to empty. Unknown fields are
//!   rejected.
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::semver::SemVer;
pub use crate::semver::SemVerOp;

/// Largest sum of a fractional rule's weights: `i32::MAX` (= `u32::MAX / 2`), flagd's
/// `maxWeightSum` (`core/pkg/evaluator/fractional.go`), so `hash * total` fits in 63 bits.
pub const MAX_TOTAL_WEIGHT: u64 = i32::MAX as u64;

/// A variant's value. OFREP carries booleans, strings, numbers (integers and floats, told
/// apart only by their JSON spelling) and objects; arrays and `null` are not flag values.
///
/// Numbers are `f64`: integers are exact up to 2^53. They serialize as JSON integers when
/// they are whole and within ±2^53 (so an integer flag stays `5`, not `5.0`, for the
/// providers that tell integers from floats by their spelling) and as floats otherwise.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `true` / `false`
    Bool(bool),
    /// A string.
    String(String),
    /// A finite number (the validator rejects NaN and infinities).
    Number(f64),
    /// A JSON object.
    Object(serde_json::Map<String, serde_json::Value>),
}

/// The four kinds of [`Value`]; all variants of a flag share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueKind {
    /// [`Value::Bool`]
    Boolean,
    /// [`Value::String`]
    String,
    /// [`Value::Number`]
    Number,
    /// [`Value::Object`]
    Object,
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueKind::Boolean => "boolean",
            ValueKind::String => "string",
            ValueKind::Number => "number",
            ValueKind::Object => "object",
        })
    }
}

/// A JSON value that cannot be a flag value (`null` or an array).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a flag value is a boolean, string, number or object, not {found}")]
pub struct ValueError {
    /// The JSON type found.
    pub found: &'static str,
}

/// Largest magnitude below which every integer is an exact `f64` (2^53).
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

impl Value {
    /// The kind of this value.
    pub fn kind(&self) -> ValueKind {
        match self {
            Value::Bool(_) => ValueKind::Boolean,
            Value::String(_) => ValueKind::String,
            Value::Number(_) => ValueKind::Number,
            Value::Object(_) => ValueKind::Object,
        }
    }

    /// This value as JSON (whole numbers within ±2^53 as integers; a non-finite number,
    /// which validation rejects, as `null`).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Number(n) => number_json(*n),
            Value::Object(m) => serde_json::Value::Object(m.clone()),
        }
    }
}

fn number_json(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() <= EXACT_INT {
        // Exact: whole and within 2^53.
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

pub(crate) fn json_type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

impl TryFrom<serde_json::Value> for Value {
    type Error = ValueError;

    fn try_from(v: serde_json::Value) -> Result<Self, Self::Error> {
        match v {
            serde_json::Value::Bool(b) => Ok(Value::Bool(b)),
            serde_json::Value::String(s) => Ok(Value::String(s)),
            serde_json::Value::Number(n) => n.as_f64().map(Value::Number).ok_or(ValueError {
                found: "a number outside f64",
            }),
            serde_json::Value::Object(m) => Ok(Value::Object(m)),
            other => Err(ValueError {
                found: json_type_name(&other),
            }),
        }
    }
}

impl From<&Value> for serde_json::Value {
    fn from(v: &Value) -> Self {
        v.to_json()
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Bool(b) => s.serialize_bool(*b),
            Value::String(v) => s.serialize_str(v),
            Value::Number(n) => number_json(*n).serialize(s),
            Value::Object(m) => m.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Value::try_from(v).map_err(serde::de::Error::custom)
    }
}

/// One feature flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Flag {
    /// The OFREP key: non-empty, printable, no `/` (it is a path segment of
    /// `/ofrep/v1/evaluate/flags/{key}`). Also hashed by fractional rules.
    pub key: String,
    /// Variant name to value; at least one, all of one [`ValueKind`].
    pub variants: BTreeMap<String, Value>,
    /// The variant served when no rule matches (and on `TARGETING_KEY_MISSING`).
    pub default_variant: String,
    /// A disabled flag resolves to reason `DISABLED` with no value (see
    /// [`crate::evaluate`]).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Tried in order; the first whose conditions all hold decides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// OFREP flag metadata, returned with every resolution: string, number or boolean
    /// values only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

fn yes() -> bool {
    true
}

/// A targeting rule: when every condition holds (an empty list always holds), `then`
/// decides the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// All must hold; empty means always.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<Condition>,
    /// What the rule resolves to.
    pub then: Outcome,
}

/// What a matching rule resolves to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Outcome {
    /// This variant (reason `TARGETING_MATCH`).
    Variant(String),
    /// A sticky weighted split (reason `SPLIT`), flagd's `fractional`.
    Fractional {
        /// The context attribute whose value is the randomization unit (a dotted path like
        /// a condition's attribute); `None` means the targeting key. When the attribute is
        /// absent, `null`, empty or not a string, number or boolean, the targeting key is
        /// used instead (flagd falls back the same way); when that is absent or empty too,
        /// the resolution is a `TARGETING_KEY_MISSING` error.
        #[serde(default, rename = "bucketBy", skip_serializing_if = "Option::is_none")]
        bucket_by: Option<String>,
        /// How the unit is hashed into a bucket.
        #[serde(default)]
        hash: BucketHash,
        /// `(variant, weight)` in order; weights are relative, their sum positive and at
        /// most [`MAX_TOTAL_WEIGHT`]. A variant may appear more than once.
        split: Vec<(String, u32)>,
    },
}

/// The bucketing function of a fractional rule. Every variant is flagd's current
/// (`fractional` v2) algorithm, so ficus and flagd (or any OpenFeature in-process flagd
/// provider) put the same user in the same bucket:
///
/// ```text
/// input  = prefix ++ unit                       (UTF-8 bytes, no separator)
/// hash   = murmur3_x86_32(input, seed = 0)      (unsigned)
/// bucket = (u64(hash) * u64(total_weight)) >> 32          in [0, total_weight)
/// variant = the first split entry whose running weight sum exceeds bucket
/// ```
///
/// They differ in `prefix` only. Changing the prefix, the flag key (for [`Flagd`]), the
/// order of the split or the total weight reassigns users; raising one weight at the
/// expense of the next one only moves users across that boundary.
///
/// Reserved for later: flagd's accepted "hardened hashing" ADR
/// (`docs/architecture-decisions/fractional-non-string-rand-units.md`) will hash a typed
/// encoding of `[flagKey, targetingKey]` instead of the concatenation; when flagd ships it,
/// it becomes a new variant here, and existing flags keep their buckets.
///
/// [`Flagd`]: BucketHash::Flagd
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BucketHash {
    /// `prefix` = the flag key: flagd's default when `fractional` has no bucketing
    /// expression (`flagKey ++ targetingKey`), and its recommended
    /// `{"cat": [{"var": "$flagd.flagKey"}, {"var": attr}]}` for a custom attribute.
    #[default]
    Flagd,
    /// `prefix` = this string: flagd's `{"cat": ["my-seed", {"var": attr}]}` "custom
    /// seed", which aligns the buckets of every flag using the same seed. The empty string
    /// gives flagd's bare `{"var": attr}`. (This is a prefix of the hashed bytes; the
    /// murmur3 seed parameter stays 0.)
    FlagdCustomSeed(String),
}

/// A test on one context attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// `targetingKey`, a top-level context key, or a dotted path into nested objects
    /// (`user.plan`); see [`crate::Context::get`]. Non-empty.
    pub attribute: String,
    /// The test.
    pub op: Op,
}

/// A condition's test. An absent (or `null`) attribute fails every test except
/// `Exists(false)`: in particular `NotEq` and `NotIn` do not match a missing attribute.
/// A present attribute of the wrong type fails the typed tests (`StartsWith`, `EndsWith`,
/// `SemVer`, `Num`); nothing is coerced except that `SemVer` reads a number as its
/// decimal text (`2` is `2.0.0`, `1.2` is `1.2.0`), as flagd does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// JSON equality; numbers compare by value (`1 == 1.0`), objects and arrays
    /// element-wise.
    Eq(serde_json::Value),
    /// Present and not equal.
    NotEq(serde_json::Value),
    /// Equal to one of these.
    In(Vec<serde_json::Value>),
    /// Present and equal to none of these.
    NotIn(Vec<serde_json::Value>),
    /// A string with this prefix (case-sensitive), flagd's `starts_with`.
    StartsWith(String),
    /// A string with this suffix (case-sensitive), flagd's `ends_with`.
    EndsWith(String),
    /// flagd's `sem_ver`: `attribute OP literal`; see [`crate::semver`].
    SemVer(SemVerOp, String),
    /// A JSON number compared with this one (strings are not parsed).
    Num(NumOp, f64),
    /// `Exists(true)`: present and not `null`; `Exists(false)`: absent or `null`.
    Exists(bool),
}

/// Numeric comparisons for [`Op::Num`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NumOp {
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
}

impl NumOp {
    /// Whether `actual OP target` holds.
    pub fn matches(self, actual: f64, target: f64) -> bool {
        match self {
            NumOp::Lt => actual < target,
            NumOp::Le => actual <= target,
            NumOp::Gt => actual > target,
            NumOp::Ge => actual >= target,
        }
    }

    /// The operator's symbol.
    pub fn as_str(self) -> &'static str {
        match self {
            NumOp::Lt => "<",
            NumOp::Le => "<=",
            NumOp::Gt => ">",
            NumOp::Ge => ">=",
        }
    }
}

impl fmt::Display for NumOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a flag is invalid. Rules are numbered from 0, in configuration order.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FlagError {
    /// The key is empty.
    #[error("flag key is empty")]
    EmptyKey,
    /// The key has a `/` or a non-printable character.
    #[error("flag key {key:?} is invalid: {reason}")]
    InvalidKey {
        /// The key.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No variants.
    #[error("flag {key:?} has no variants")]
    NoVariants {
        /// The flag.
        key: String,
    },
    /// A variant is named "".
    #[error("flag {key:?} has a variant with an empty name")]
    EmptyVariantName {
        /// The flag.
        key: String,
    },
    /// Variants of different kinds.
    #[error(
        "flag {key:?}: variant {variant:?} is a {found} but variant {first:?} is a {expected}; all variants of a flag must be of one kind"
    )]
    MixedKinds {
        /// The flag.
        key: String,
        /// The first variant (by name), which sets the kind.
        first: String,
        /// Its kind.
        expected: ValueKind,
        /// The offending variant.
        variant: String,
        /// Its kind.
        found: ValueKind,
    },
    /// A number variant is NaN or infinite.
    #[error("flag {key:?}: variant {variant:?} is not a finite number")]
    NonFiniteValue {
        /// The flag.
        key: String,
        /// The variant.
        variant: String,
    },
    /// `default_variant` names no variant.
    #[error("flag {key:?}: default variant {variant:?} is not one of its variants")]
    UnknownDefaultVariant {
        /// The flag.
        key: String,
        /// The missing variant.
        variant: String,
    },
    /// A rule's outcome names no variant.
    #[error("flag {key:?} rule {rule}: variant {variant:?} is not one of the flag's variants")]
    UnknownRuleVariant {
        /// The flag.
        key: String,
        /// The rule's index.
        rule: usize,
        /// The missing variant.
        variant: String,
    },
    /// A fractional rule with no entries, or whose weights are all zero.
    #[error("flag {key:?} rule {rule}: fractional split has no positive weight")]
    ZeroWeights {
        /// The flag.
        key: String,
        /// The rule's index.
        rule: usize,
    },
    /// A fractional rule whose weights sum past [`MAX_TOTAL_WEIGHT`].
    #[error(
        "flag {key:?} rule {rule}: fractional weights sum to {total}, more than the maximum {MAX_TOTAL_WEIGHT}"
    )]
    WeightsTooLarge {
        /// The flag.
        key: String,
        /// The rule's index.
        rule: usize,
        /// The sum.
        total: u64,
    },
    /// A fractional rule's `bucketBy` is empty.
    #[error("flag {key:?} rule {rule}: fractional bucketBy attribute is empty")]
    EmptyBucketBy {
        /// The flag.
        key: String,
        /// The rule's index.
        rule: usize,
    },
    /// A condition's attribute is empty.
    #[error("flag {key:?} rule {rule} condition {condition}: attribute is empty")]
    EmptyAttribute {
        /// The flag.
        key: String,
        /// The rule's index.
        rule: usize,
        /// The condition's index in the rule.
        condition: usize,
    },
    /// A `sem_ver` literal does not parse.
    #[error("flag {key:?} rule {rule} condition {condition}: {error}")]
    InvalidSemVer {
        /// The flag.
        key: String,
        /// The rule's index.
        rule: usize,
        /// The condition's index in the rule.
        condition: usize,
        /// The parse error.
        error: crate::semver::SemVerError,
    },
    /// A numeric literal is NaN or infinite.
    #[error("flag {key:?} rule {rule} condition {condition}: number {value} is not finite")]
    NonFiniteLiteral {
        /// The flag.
        key: String,
        /// The rule's index.
        rule: usize,
        /// The condition's index in the rule.
        condition: usize,
        /// The literal.
        value: f64,
    },
    /// An `Eq`/`NotEq`/`In`/`NotIn` literal is `null`, which never matches.
    #[error(
        "flag {key:?} rule {rule} condition {condition}: null never matches (a null attribute counts as absent); use exists"
    )]
    NullLiteral {
        /// The flag.
        key: String,
        /// The rule's index.
        rule: usize,
        /// The condition's index in the rule.
        condition: usize,
    },
    /// A metadata value that is not a string, number or boolean.
    #[error("flag {key:?}: metadata {entry:?} is {found}; OFREP metadata values are strings, numbers or booleans")]
    InvalidMetadata {
        /// The flag.
        key: String,
        /// The metadata key.
        entry: String,
        /// The JSON type found.
        found: &'static str,
    },
}

/// Checks that `flag` is well-formed (see [`FlagError`] for everything checked), returning
/// the first problem.
pub fn validate(flag: &Flag) -> Result<(), FlagError> {
    let key = || flag.key.clone();
    if flag.key.is_empty() {
        return Err(FlagError::EmptyKey);
    }
    if flag.key.contains('/') {
        return Err(FlagError::InvalidKey {
            key: key(),
            reason: "'/' is not allowed (the key is a URL path segment)",
        });
    }
    if flag.key.chars().any(char::is_control) {
        return Err(FlagError::InvalidKey {
            key: key(),
            reason: "control characters are not allowed",
        });
    }

    let mut variants = flag.variants.iter();
    let Some((first, first_value)) = variants.next() else {
        return Err(FlagError::NoVariants { key: key() });
    };
    for (name, value) in flag.variants.iter() {
        if name.is_empty() {
            return Err(FlagError::EmptyVariantName { key: key() });
        }
        if value.kind() != first_value.kind() {
            return Err(FlagError::MixedKinds {
                key: key(),
                first: first.clone(),
                expected: first_value.kind(),
                variant: name.clone(),
                found: value.kind(),
            });
        }
        if let Value::Number(n) = value {
            if !n.is_finite() {
                return Err(FlagError::NonFiniteValue {
                    key: key(),
                    variant: name.clone(),
                });
            }
        }
    }
    if !flag.variants.contains_key(&flag.default_variant) {
        return Err(FlagError::UnknownDefaultVariant {
            key: key(),
            variant: flag.default_variant.clone(),
        });
    }

    for (rule, r) in flag.rules.iter().enumerate() {
        for (condition, c) in r.when.iter().enumerate() {
            validate_condition(flag, rule, condition, c)?;
        }
        let unknown = |variant: &String| FlagError::UnknownRuleVariant {
            key: key(),
            rule,
            variant: variant.clone(),
        };
        match &r.then {
            Outcome::Variant(v) => {
                if !flag.variants.contains_key(v) {
                    return Err(unknown(v));
                }
            }
            Outcome::Fractional {
                bucket_by, split, ..
            } => {
                if bucket_by.as_deref() == Some("") {
                    return Err(FlagError::EmptyBucketBy { key: key(), rule });
                }
                if let Some((v, _)) = split.iter().find(|(v, _)| !flag.variants.contains_key(v)) {
                    return Err(unknown(v));
                }
                let total: u64 = split.iter().map(|&(_, w)| u64::from(w)).sum();
                if total == 0 {
                    return Err(FlagError::ZeroWeights { key: key(), rule });
                }
                if total > MAX_TOTAL_WEIGHT {
                    return Err(FlagError::WeightsTooLarge {
                        key: key(),
                        rule,
                        total,
                    });
                }
            }
        }
    }

    for (entry, value) in &flag.metadata {
        if !matches!(
            value,
            serde_json::Value::String(_)
                | serde_json::Value::Number(_)
                | serde_json::Value::Bool(_)
        ) {
            return Err(FlagError::InvalidMetadata {
                key: key(),
                entry: entry.clone(),
                found: json_type_name(value),
            });
        }
    }
    Ok(())
}

fn validate_condition(
    flag: &Flag,
    rule: usize,
    condition: usize,
    c: &Condition,
) -> Result<(), FlagError> {
    let key = flag.key.clone();
    if c.attribute.is_empty() {
        return Err(FlagError::EmptyAttribute {
            key,
            rule,
            condition,
        });
    }
    let null = |v: &serde_json::Value| v.is_null();
    match &c.op {
        Op::SemVer(_, literal) => {
            if let Err(error) = SemVer::parse(literal) {
                return Err(FlagError::InvalidSemVer {
                    key,
                    rule,
                    condition,
                    error,
                });
            }
        }
        Op::Num(_, value) if !value.is_finite() => {
            return Err(FlagError::NonFiniteLiteral {
                key,
                rule,
                condition,
                value: *value,
            });
        }
        Op::Eq(v) | Op::NotEq(v) if null(v) => {
            return Err(FlagError::NullLiteral {
                key,
                rule,
                condition,
            });
        }
        Op::In(vs) | Op::NotIn(vs) if vs.iter().any(null) => {
            return Err(FlagError::NullLiteral {
                key,
                rule,
                condition,
            });
        }
        _ => {}
    }
    Ok(())
}
