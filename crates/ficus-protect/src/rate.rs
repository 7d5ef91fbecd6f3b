//! Per-route request rate limits: governor's GCRA over a bounded table of keys, answering with
//! the numbers the proxy needs for `Retry-After` and the IETF `RateLimit-*` headers.
//!
//! governor does the arithmetic (one theoretical arrival time per key, updated with a CAS), but
//! its keyed stores grow with every distinct key a client sends, and a client that sends
//! random keys would grow them without bound. So this module plugs its own state store into
//! governor: the keys are 64-bit hashes spread over power-of-two shards, each shard capped at
//! its share of `max_keys`. When a new key arrives at a full shard, the eighth of the shard
//! with the lowest arrival times is dropped. Those are the keys closest to (or already at) a
//! full bucket, so dropping them forgives the least: a key whose arrival time is in the past
//! is indistinguishable from an absent one, and any other dropped key at worst gets its burst
//! back early. The scan is O(shard) but runs once per `shard_cap / 8` new keys.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::state::StateStore;
use governor::Quota;
use http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

use crate::SpecError;

/// `RateLimit-Limit` (draft-ietf-httpapi-ratelimit-headers).
pub static RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`.
pub static RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`.
pub static RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Most shards a key table is split into; enough that two workers rarely meet on one lock.
const MAX_SHARDS: usize = 64;
/// Fewest keys per shard: smaller shards would make the eviction choice too coarse.
const MIN_SHARD_KEYS: usize = 64;

/// What a route allows per key.
#[derive(Debug, Clone, PartialEq)]
pub struct RateSpec {
    /// Sustained requests per second per key; may be below 1 (0.5 = one request every 2 s).
    pub per_second: f64,
    /// Requests a key may make back to back after being idle; also the `RateLimit-Limit`.
    pub burst: u32,
    /// Most keys tracked at once (default 100,000); beyond it the most-replenished are dropped.
    pub max_keys: usize,
}

impl Default for RateSpec {
    fn default() -> Self {
        RateSpec {
            per_second: 10.0,
            burst: 20,
            max_keys: 100_000,
        }
    }
}

impl RateSpec {
    /// Checks the numbers; the error names the field and the fix.
    pub fn validate(&self) -> Result<(), SpecError> {
        if !(self.per_second.is_finite() && self.per_second > 0.0) {
            return Err(SpecError::new(
                "rate.per_second",
                format!(
                    "must be a finite number above 0 (got {}); use 0.5 for one request every 2 s",
                    self.per_second
                ),
            ));
        }
        // Below one per ~31 years governor's nanosecond period would overflow; nobody means it.
        if 1.0 / self.per_second > 1.0e9 {
            return Err(SpecError::new(
                "rate.per_second",
                format!("{} is too small; use at least 1e-9", self.per_second),
            ));
        }
        if self.burst == 0 {
            return Err(SpecError::new(
                "rate.burst",
                "must be at least 1 (the number of back-to-back requests a key may make)",
            ));
        }
        if self.max_keys == 0 {
            return Err(SpecError::new(
                "rate.max_keys",
                "must be at least 1; 100000 is a good default",
            ));
        }
        Ok(())
    }

    /// The time one request's worth of budget takes to come back.
    pub fn interval(&self) -> Duration {
        // At least 1 ns: governor treats a zero period as "no quota".
        Duration::from_secs_f64(1.0 / self.per_second).max(Duration::from_nanos(1))
    }
}

/// The outcome of one [`RateLimiter::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Let the request through.
    Allow {
        /// The burst size (`RateLimit-Limit`).
        limit: u32,
        /// Requests this key may still make back to back (`RateLimit-Remaining`).
        remaining: u32,
        /// Time until the key's full burst is available again (`RateLimit-Reset`); an upper
        /// bound, exact to within one replenish interval.
        reset: Duration,
    },
    /// Answer 429.
    Deny {
        /// The burst size (`RateLimit-Limit`).
        limit: u32,
        /// Time until one request would be allowed (`Retry-After`).
        retry_after: Duration,
        /// Time until the key's full burst is available again (`RateLimit-Reset`).
        reset: Duration,
    },
}

impl RateDecision {
    /// True for [`RateDecision::Allow`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, RateDecision::Allow { .. })
    }

    /// `Retry-After` in whole seconds: rounded up and at least 1, so a client that obeys it is
    /// never refused again for the same reason. `None` when allowed.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            RateDecision::Allow { .. } => None,
            RateDecision::Deny { retry_after, .. } => Some(ceil_secs(*retry_after).max(1)),
        }
    }

    /// The response headers for this decision: `RateLimit-Limit`, `RateLimit-Remaining`,
    /// `RateLimit-Reset` and, when denied, `Retry-After`.
    pub fn headers(&self) -> impl Iterator<Item = (HeaderName, HeaderValue)> {
        let (limit, remaining, reset) = match *self {
            RateDecision::Allow {
                limit,
                remaining,
                reset,
            } => (limit, remaining, reset),
            RateDecision::Deny { limit, reset, .. } => (limit, 0, reset),
        };
        [
            Some((RATELIMIT_LIMIT.clone(), HeaderValue::from(limit))),
            Some((RATELIMIT_REMAINING.clone(), HeaderValue::from(remaining))),
            Some((RATELIMIT_RESET.clone(), HeaderValue::from(ceil_secs(reset)))),
            self.retry_after_secs()
                .map(|secs| (RETRY_AFTER, HeaderValue::from(secs))),
        ]
        .into_iter()
        .flatten()
    }

    /// Writes [`RateDecision::headers`] into `headers`, replacing any values already there.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        for (name, value) in self.headers() {
            headers.insert(name, value);
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Totals of one rate limiter since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RateCounters {
    pub allowed: u64,
    pub limited: u64,
    /// Keys dropped to keep the table within `max_keys`.
    pub evicted_keys: u64,
    /// Keys tracked right now.
    pub tracked_keys: u64,
}

/// One route's rate limiter, shared by all workers.
pub struct RateLimiter<C: Clock = DefaultClock> {
    gcra: governor::RateLimiter<u64, BoundedKeys, C, StateInformationMiddleware>,
    table: Arc<KeyTable>,
    limit: u32,
    interval: Duration,
    allowed: AtomicU64,
    limited: AtomicU64,
}

impl<C: Clock> std::fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("limit", &self.limit)
            .field("interval", &self.interval)
            .field("counters", &self.counters())
            .finish()
    }
}

impl RateLimiter<DefaultClock> {
    /// A limiter on governor's default (quanta, monotonic) clock.
    pub fn new(spec: RateSpec) -> Result<Self, SpecError> {
        Self::with_clock(spec, DefaultClock::default())
    }
}

impl<C: Clock> RateLimiter<C> {
    /// A limiter on the given clock; tests pass `governor::clock::FakeRelativeClock`.
    pub fn with_clock(spec: RateSpec, clock: C) -> Result<Self, SpecError> {
        spec.validate()?;
        let interval = spec.interval();
        let burst = std::num::NonZeroU32::new(spec.burst).expect("validated above");
        let quota = Quota::with_period(interval)
            .expect("interval is at least 1 ns")
            .allow_burst(burst);
        let table = Arc::new(KeyTable::new(spec.max_keys));
        Ok(RateLimiter {
            gcra: governor::RateLimiter::new(quota, BoundedKeys(Arc::clone(&table)), clock),
            table,
            limit: spec.burst,
            interval,
            allowed: AtomicU64::new(0),
            limited: AtomicU64::new(0),
        })
    }

    /// Spends one request of `key`'s budget if there is one. `key` is a hash of whatever
    /// identifies the client (use [`RateLimiter::check_bytes`] for raw key bytes, a constant
    /// for a route-wide limit).
    pub fn check(&self, key: u64) -> RateDecision {
        match self.gcra.check_key(&key) {
            Ok(snapshot) => {
                self.allowed.fetch_add(1, Ordering::Relaxed);
                let remaining = snapshot.remaining_burst_capacity().min(self.limit);
                RateDecision::Allow {
                    limit: self.limit,
                    remaining,
                    reset: self.interval * (self.limit - remaining),
                }
            }
            Err(not_until) => {
                self.limited.fetch_add(1, Ordering::Relaxed);
                let retry_after = not_until.wait_time_from(self.gcra.clock().now());
                RateDecision::Deny {
                    limit: self.limit,
                    retry_after,
                    // Once one request is allowed again the rest of the burst follows, one
                    // interval apart.
                    reset: retry_after + self.interval * (self.limit - 1),
                }
            }
        }
    }

    /// [`RateLimiter::check`] for a key given as bytes (a header value, a client address).
    pub fn check_bytes(&self, key: &[u8]) -> RateDecision {
        self.check(xxhash_rust::xxh3::xxh3_64(key))
    }

    /// Drops keys whose buckets are full again (they behave exactly like unseen keys), so a
    /// housekeeping task can give memory back after a burst of distinct keys.
    pub fn retain_recent(&self) {
        self.gcra.retain_recent();
    }

    /// The burst size.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn counters(&self) -> RateCounters {
        RateCounters {
            allowed: self.allowed.load(Ordering::Relaxed),
            limited: self.limited.load(Ordering::Relaxed),
            evicted_keys: self.table.evicted.load(Ordering::Relaxed),
            tracked_keys: self.table.len() as u64,
        }
    }
}

/// The keys are already hashes; one multiply spreads them over hashbrown's control bits
/// without paying for SipHash on every request.
#[derive(Default, Clone, Copy)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ (n >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Shard = HashMap<u64, AtomicU64, BuildHasherDefault<MixHasher>>;

struct KeyTable {
    shards: Box<[RwLock<Shard>]>,
    shard_cap: usize,
    shard_shift: u32,
    evicted: AtomicU64,
}

impl KeyTable {
    fn new(max_keys: usize) -> KeyTable {
        // A power of two no larger than max_keys, so that shards * shard_cap <= max_keys.
        let shards = MAX_SHARDS.min(max_keys / MIN_SHARD_KEYS).max(1);
        let shards = 1usize << (usize::BITS - 1 - shards.leading_zeros());
        KeyTable {
            shards: (0..shards).map(|_| RwLock::new(Shard::default())).collect(),
            shard_cap: max_keys / shards,
            shard_shift: if shards == 1 {
                0
            } else {
                64 - shards.trailing_zeros()
            },
            evicted: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: u64) -> &RwLock<Shard> {
        // High bits pick the shard; the map's own hash uses the mixed low bits.
        let index = if self.shard_shift == 0 {
            0
        } else {
            (key >> self.shard_shift) as usize
        };
        &self.shards[index]
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// Makes room for one key: drops the eighth of the shard with the lowest arrival times.
    fn evict(&self, map: &mut Shard) {
        let excess = (map.len() + 1).saturating_sub(self.shard_cap);
        let count = (self.shard_cap / 8).max(1).max(excess).min(map.len());
        if count == 0 {
            return;
        }
        let mut tats: Vec<u64> = map.values().map(|v| v.load(Ordering::Relaxed)).collect();
        let (_, &mut threshold, _) = tats.select_nth_unstable(count - 1);
        // Exactly `count` go: everything below the threshold (fewer than `count` by
        // construction) and as many at the threshold as needed; ties are common when many
        // keys arrived in the same instant.
        let mut budget = count;
        map.retain(|_, v| {
            if budget > 0 && v.load(Ordering::Relaxed) <= threshold {
                budget -= 1;
                false
            } else {
                true
            }
        });
        self.evicted
            .fetch_add((count - budget) as u64, Ordering::Relaxed);
    }
}

/// The governor state store over [`KeyTable`].
struct BoundedKeys(Arc<KeyTable>);

/// governor's own update rule: retry the decision until the arrival time it was based on is
/// still the stored one.
fn measure_cell<T, F, E>(cell: &AtomicU64, f: &F) -> Result<T, E>
where
    F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
{
    let mut prev = cell.load(Ordering::Acquire);
    loop {
        let (out, next) = f(Some(Nanos::new(prev)))?;
        match cell.compare_exchange_weak(prev, next.as_u64(), Ordering::Release, Ordering::Relaxed)
        {
            Ok(_) => return Ok(out),
            Err(actual) => prev = actual,
        }
    }
}

impl StateStore for BoundedKeys {
    type Key = u64;

    fn measure_and_replace<T, F, E>(&self, key: &u64, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let shard = self.0.shard(*key);
        {
            let map = shard.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(cell) = map.get(key) {
                return measure_cell(cell, &f);
            }
        }
        let mut map = shard.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(cell) = map.get(key) {
            // Another worker inserted it between our two locks.
            return measure_cell(cell, &f);
        }
        // Only keys that were allowed are stored; a refused first request (impossible with
        // GCRA, but the contract allows it) leaves no trace.
        let (out, tat) = f(None)?;
        if map.len() >= self.0.shard_cap {
            self.0.evict(&mut map);
        }
        map.insert(*key, AtomicU64::new(tat.as_u64()));
        Ok(out)
    }
}

impl ShrinkableKeyedStateStore<u64> for BoundedKeys {
    fn retain_recent(&self, drop_below: Nanos) {
        let drop_below = drop_below.as_u64();
        for shard in self.0.shards.iter() {
            shard
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|_, v| v.load(Ordering::Relaxed) > drop_below);
        }
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn limiter(
        per_second: f64,
        burst: u32,
        max_keys: usize,
    ) -> (RateLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let spec = RateSpec {
            per_second,
            burst,
            max_keys,
        };
        (RateLimiter::with_clock(spec, clock.clone()).unwrap(), clock)
    }

    #[test]
    fn exactly_burst_then_deny_with_retry_after_one_interval() {
        let (rl, _clock) = limiter(2.0, 5, 100);
        for i in 0..5 {
            match rl.check(7) {
                RateDecision::Allow {
                    limit, remaining, ..
                } => {
                    assert_eq!(limit, 5);
                    assert_eq!(remaining, 4 - i);
                }
                other => panic!("request {i} denied: {other:?}"),
            }
        }
        match rl.check(7) {
            RateDecision::Deny {
                limit,
                retry_after,
                reset,
            } => {
                assert_eq!(limit, 5);
                assert_eq!(retry_after, Duration::from_millis(500));
                assert_eq!(reset, Duration::from_millis(500) * 5);
            }
            other => panic!("6th request allowed: {other:?}"),
        }
        // Another key has its own budget.
        assert!(rl.check(8).is_allowed());
        let c = rl.counters();
        assert_eq!((c.allowed, c.limited, c.tracked_keys), (6, 1, 2));
    }

    #[test]
    fn refills_after_time() {
        let (rl, clock) = limiter(1.0, 2, 100);
        assert!(rl.check(1).is_allowed());
        assert!(rl.check(1).is_allowed());
        assert!(!rl.check(1).is_allowed());
        clock.advance(Duration::from_millis(999));
        assert!(!rl.check(1).is_allowed());
        clock.advance(Duration::from_millis(1));
        assert!(rl.check(1).is_allowed());
        assert!(!rl.check(1).is_allowed());
        // A long idle period gives back the full burst, not more.
        clock.advance(Duration::from_secs(60));
        assert!(rl.check(1).is_allowed());
        assert!(rl.check(1).is_allowed());
        assert!(!rl.check(1).is_allowed());
    }

    #[test]
    fn rates_below_one_per_second() {
        let (rl, clock) = limiter(0.5, 1, 100);
        assert!(rl.check(1).is_allowed());
        let d = rl.check(1);
        assert_eq!(
            d,
            RateDecision::Deny {
                limit: 1,
                retry_after: Duration::from_secs(2),
                reset: Duration::from_secs(2)
            }
        );
        assert_eq!(d.retry_after_secs(), Some(2));
        clock.advance(Duration::from_millis(1500));
        match rl.check(1) {
            RateDecision::Deny { retry_after, .. } => {
                assert_eq!(retry_after, Duration::from_millis(500))
            }
            other => panic!("{other:?}"),
        }
        clock.advance(Duration::from_millis(500));
        assert!(rl.check(1).is_allowed());
    }

    #[test]
    fn header_values_are_exact() {
        let (rl, clock) = limiter(4.0, 3, 100);
        let first = rl.check(9);
        let h: Vec<(HeaderName, HeaderValue)> = first.headers().collect();
        assert_eq!(
            h,
            vec![
                (RATELIMIT_LIMIT.clone(), HeaderValue::from_static("3")),
                (RATELIMIT_REMAINING.clone(), HeaderValue::from_static("2")),
                // 250 ms until the full burst is back, rounded up.
                (RATELIMIT_RESET.clone(), HeaderValue::from_static("1")),
            ]
        );
        rl.check(9);
        rl.check(9);
        clock.advance(Duration::from_millis(100));
        let denied = rl.check(9);
        assert_eq!(
            denied,
            RateDecision::Deny {
                limit: 3,
                retry_after: Duration::from_millis(150),
                reset: Duration::from_millis(650),
            }
        );
        let mut map = HeaderMap::new();
        map.insert(RETRY_AFTER, HeaderValue::from_static("99"));
        denied.write_headers(&mut map);
        assert_eq!(map.len(), 4);
        assert_eq!(map["ratelimit-limit"], "3");
        assert_eq!(map["ratelimit-remaining"], "0");
        assert_eq!(map["ratelimit-reset"], "1");
        // 150 ms rounds up to a whole second, never down to 0.
        assert_eq!(map[RETRY_AFTER], "1");

        let (slow, _) = limiter(0.1, 2, 10);
        slow.check(1);
        slow.check(1);
        let d = slow.check(1);
        let map: HeaderMap = d.headers().collect();
        assert_eq!(map[RETRY_AFTER], "10");
        assert_eq!(map["ratelimit-reset"], "20");
    }

    #[test]
    fn key_table_stays_within_max_keys() {
        let max_keys = 1000;
        let (rl, clock) = limiter(1.0, 1, max_keys);
        for i in 0..(10 * max_keys as u64) {
            let d = rl.check_bytes(format!("client-{i}").as_bytes());
            assert!(d.is_allowed());
            assert!(
                rl.table.len() <= max_keys,
                "{} keys after {i}",
                rl.table.len()
            );
            if i % 997 == 0 {
                clock.advance(Duration::from_millis(3));
            }
        }
        let c = rl.counters();
        assert!(c.tracked_keys <= max_keys as u64);
        assert!(c.tracked_keys >= max_keys as u64 / 2, "{c:?}");
        assert_eq!(c.evicted_keys + c.tracked_keys, 10 * max_keys as u64);
    }

    #[test]
    fn eviction_prefers_replenished_keys() {
        // One shard of 8 keys: the exhausted key must survive a flood of keys that each made
        // one request.
        let (rl, clock) = limiter(1.0, 3, 8);
        for k in 0..8 {
            rl.check(k);
        }
        clock.advance(Duration::from_secs(5));
        for _ in 0..3 {
            assert!(rl.check(42).is_allowed());
        }
        assert!(!rl.check(42).is_allowed());
        for k in 100..140 {
            assert!(rl.check(k).is_allowed());
            assert!(
                !rl.check(42).is_allowed(),
                "key 42 was evicted and forgiven at {k}"
            );
        }
        let c = rl.counters();
        assert_eq!(c.tracked_keys, 8);
        assert_eq!(c.evicted_keys, 41);
    }

    #[test]
    fn retain_recent_drops_full_buckets() {
        let (rl, clock) = limiter(10.0, 1, 100);
        for k in 0..50 {
            rl.check(k);
        }
        assert_eq!(rl.counters().tracked_keys, 50);
        clock.advance(Duration::from_secs(1));
        rl.check(1000);
        rl.retain_recent();
        assert_eq!(rl.counters().tracked_keys, 1);
    }

    #[test]
    fn spec_errors_name_the_field() {
        for (spec, field) in [
            (
                RateSpec {
                    per_second: 0.0,
                    ..RateSpec::default()
                },
                "rate.per_second",
            ),
            (
                RateSpec {
                    per_second: f64::NAN,
                    ..RateSpec::default()
                },
                "rate.per_second",
            ),
            (
                RateSpec {
                    burst: 0,
                    ..RateSpec::default()
                },
                "rate.burst",
            ),
            (
                RateSpec {
                    max_keys: 0,
                    ..RateSpec::default()
                },
                "rate.max_keys",
            ),
        ] {
            let err = RateLimiter::new(spec).unwrap_err();
            assert_eq!(err.field, field);
        }
    }

    #[test]
    fn shards_never_exceed_max_keys() {
        for max_keys in [1, 2, 3, 63, 64, 65, 100, 1000, 100_000] {
            let t = KeyTable::new(max_keys);
            assert!(t.shards.len() * t.shard_cap <= max_keys, "{max_keys}");
            assert!(t.shard_cap >= 1);
            // Every hash lands on a shard.
            for key in [0u64, 1, u64::MAX, 1 << 63, 12345678901234567] {
                let _ = t.shard(key);
            }
        }
    }
}
