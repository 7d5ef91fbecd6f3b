//! ficus flags: the feature-flag evaluation engine behind the gateway's OFREP
//! (OpenFeature Remote Evaluation Protocol, v0.3) endpoints. Pure functions over plain
//! data: no I/O, no clock, no threads, no randomness; configuration loading, the HTTP
//! endpoints, change streams and storage live elsewhere.
//!
//! A [`Flag`] has variants, a default variant and ordered [`Rule`]s (conditions on the
//! context, then a variant or a weighted split). [`evaluate()`] resolves one flag for one
//! [`Context`] into a [`Resolution`] (value, variant, [`Reason`], optional [`ErrorCode`],
//! metadata); [`etag()`] fingerprints a bulk evaluation for `If-None-Match`.
//!
//! Semantics follow flagd, the OpenFeature reference flag daemon, wherever it has them,
//! so a flag moved between flagd and ficus serves the same users the same variants:
//! fractional splits hash with MurmurHash3 x86 32-bit and pick buckets with flagd's
//! integer formula ([`BucketHash`], [`bucket_index`]), `sem_ver` accepts and orders
//! versions as flagd does ([`semver`]), `starts_with`/`ends_with` are flagd's. The
//! deliberate differences are listed in [`eval`](mod@eval).
//!
//! # What the caller must do
//!
//! - **Validate** every flag with [`validate`] when the configuration loads and refuse a
//!   configuration with any invalid flag; evaluation assumes valid flags.
//! - **Parse the context** with [`Context::from_request_body`]; an error is OFREP
//!   `INVALID_CONTEXT` (`400`), for the single-flag and the bulk endpoint alike.
//! - **Look the flag up** yourself; an unknown key is [`Resolution::flag_not_found`]
//!   (`404` on the single-flag endpoint, an inline failure in a bulk response).
//! - **Render** with [`Resolution::to_ofrep`]: errors never carry a value on the wire,
//!   disabled flags carry neither value nor variant (the client's code default applies).
//! - **Bulk responses**: evaluate every flag against the same context, list them in a
//!   stable order (by key), and send [`etag()`] over those same flags, that context and the
//!   configuration revision; answer `304 Not Modified` when `If-None-Match` equals it.
//! - **Keep flag keys and split orders stable**: they are hashed; changing either
//!   reassigns users of fractional rules.
//! - Evaluation cost is a few string comparisons per condition and one murmur3 per
//!   fractional rule, plus cloning the resolved value and metadata; call it per request.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![warn(missing_docs)]

pub mod context;
pub mod eval;
mod hash;
pub mod model;
pub mod semver;

pub use context::{Context, ContextError, TARGETING_KEY};
pub use eval::{
    bucket_index, etag, etag_prefix, evaluate, flagd_bucket, fnv1a_128, murmur3_x86_32, ErrorCode,
    EtagPrefix, Reason, Resolution,
};
pub use model::{
    validate, BucketHash, Condition, Flag, FlagError, NumOp, Op, Outcome, Rule, Value, ValueError,
    ValueKind, MAX_TOTAL_WEIGHT,
};
pub use semver::{SemVer, SemVerError, SemVerOp};
