//! ficus traffic protection: the building blocks the proxy puts in front of each route and
//! upstream so that one misbehaving client or one failing side cannot take the rest down.
//!
//! - [`rate`]: per-route, per-key request rate limits (GCRA through governor) with the numbers
//!   for `Retry-After` and the IETF `RateLimit-*` headers;
//! - [`concurrency`]: per-upstream in-flight limits with a bounded, time-limited, prioritised
//!   wait queue;
//! - [`breaker`]: per-upstream circuit breakers (consecutive failures or failure rate);
//! - [`retry`]: retry budgets, backoff with full jitter, and which methods may be retried;
//! - [`cache_policy`] and [`cache`]: an HTTP response cache for GETs (RFC 9111 rules for a
//!   shared cache, `Vary`, stale-while-revalidate, request coalescing) on moka.
//!
//! Everything works on plain `http` types and explicit times, never on sockets, so every
//! decision is unit-tested on its own. Nothing here logs or holds a lock across an await; the
//! request-path calls are a few atomics or an O(1) critical section. Each component has a
//! `counters()` snapshot of plain `u64`s for telemetry to export.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod breaker;
pub mod cache;
pub mod cache_policy;
pub mod concurrency;
pub mod rate;
pub mod retry;
mod window;

pub use breaker::{
    Admit, Breaker, BreakerCounters, BreakerSpec, BreakerState, Outcome, Transition,
};
pub use cache::{
    CacheCounters, CacheKey, CacheSpec, CachedResponse, FetchError, Fetched, Lookup, ResponseCache,
    Served,
};
pub use cache_policy::{request_cacheable, response_ttl, CacheControl, Freshness, Vary, VaryKey};
pub use concurrency::{ConcurrencyCounters, ConcurrencyLimit, Permit, Priority, Shed, ShedReason};
pub use rate::{RateCounters, RateDecision, RateLimiter, RateSpec};
pub use retry::{backoff, retryable, RetryBudget, RetryCounters};

/// A protection setting that cannot work, with the field it is in and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    /// The setting, spelled as in the config file (`rate.burst`).
    pub field: &'static str,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl SpecError {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> SpecError {
        SpecError {
            field,
            message: message.into(),
        }
    }
}
