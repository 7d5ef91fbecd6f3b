//! ficus response comparison: how a shadowed request's legacy and modern answers differ,
//! which of those differences are real rather than legacy's own noise, and how often.
//!
//! Everything here is pure: no I/O, no clock (times are passed in), no locks. The mirror
//! worker calls [`compare`] for each mirrored request (and again for legacy against
//! itself on a noise sample), feeds the results to an [`Aggregator`], and flushes its
//! [`Delta`]s to the store; the admin API shows its [`Report`].
//!
//! - [`rules`]: what to compare (headers, path rules for ignore / tolerance / unordered),
//!   compiled once into a trie.
//! - [`path`]: the path pattern grammar and the rendering of difference paths.
//! - [`diff`]: status, headers and a structural JSON (or normalized text) body diff.
//! - [`noise`]: the Diffy-style real-vs-noise classification.
//! - [`aggregate`]: bounded per-endpoint and per-field counts, samples, ranked reports.
//! - [`redact`](mod@redact), [`sample`]: secrets out of kept samples, bodies bounded.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod aggregate;
pub mod diff;
mod json;
pub mod noise;
pub mod path;
pub mod redact;
pub mod rules;
pub mod sample;

pub use aggregate::{
    Aggregator, Delta, EndpointReport, EndpointRow, FieldReport, FieldRow, Limits, NoiseScope,
    Report, RouteReport, Sample, MIN_ENDPOINT_NOISE, NODE_SLOTS,
};
pub use diff::{compare, Comparison, Difference, Exchange, Kind, UnknownKind, MAX_DIFFERENCES};
pub use json::MAX_RENDER_CHARS;
pub use noise::{classify, Rates, Thresholds, Verdict};
pub use path::{parse_path, PathPattern, Segment};
pub use redact::{
    default_sensitive, redact, redact_query, sensitive_query, DEFAULT_SENSITIVE,
    DEFAULT_SENSITIVE_QUERY, REDACTED,
};
pub use rules::{
    is_never_compared, CompiledRules, RuleError, Rules, TextOptions, DEFAULT_HEADERS,
    NEVER_COMPARED, NEVER_COMPARED_PREFIX,
};
pub use sample::{body_text, RequestSample, ResponseSample, SampleData};
