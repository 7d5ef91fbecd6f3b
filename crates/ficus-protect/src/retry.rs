//! Retries that cannot become a retry storm: a retry budget (as Finagle and linkerd keep),
//! exponential backoff with full jitter, and the rule for which methods may be retried.
//!
//! The budget lets retries add at most `ratio` to the load an upstream sees, plus a small
//! floor (`min_per_second`) so that low-traffic routes can still retry at all. Over any `ttl`
//! window: retries <= ratio x requests + min_per_second x ttl, whatever the upstream does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::Method;

use crate::window::WindowCounter;
use crate::SpecError;

/// Snapshot of one budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RetryCounters {
    pub deposits: u64,
    pub withdrawals: u64,
    /// Retries refused because the budget was empty.
    pub exhausted: u64,
}

/// One route's (or upstream's) retry budget.
pub struct RetryBudget {
    ratio: f64,
    /// The balance is kept in millionths of a retry so that "five deposits at 0.2 buy one
    /// retry" holds exactly instead of up to float rounding.
    ratio_micros: u64,
    /// min_per_second x ttl, in millionths: retries always available within one ttl window.
    reserve_micros: u64,
    /// a = deposits, b = withdrawals, over the last `ttl`.
    window: WindowCounter,
    deposits: AtomicU64,
    withdrawals: AtomicU64,
    exhausted: AtomicU64,
}

impl std::fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryBudget")
            .field("ratio", &self.ratio)
            .field("reserve", &(self.reserve_micros as f64 / 1e6))
            .field("counters", &self.counters())
            .finish()
    }
}

impl RetryBudget {
    /// `ratio` (default 0.2): retries allowed per original request; `min_per_second`
    /// (default 10): retries allowed regardless; `ttl` (default 10 s): how long a deposit
    /// counts.
    pub fn new(ratio: f64, min_per_second: u32, ttl: Duration) -> Result<RetryBudget, SpecError> {
        RetryBudget::with_origin(ratio, min_per_second, ttl, Instant::now())
    }

    /// As [`RetryBudget::new`], with the window starting at `origin` (for tests that pass
    /// explicit times).
    pub fn with_origin(
        ratio: f64,
        min_per_second: u32,
        ttl: Duration,
        origin: Instant,
    ) -> Result<RetryBudget, SpecError> {
        if !(ratio.is_finite() && (0.0..=1000.0).contains(&ratio)) {
            return Err(SpecError::new(
                "retry.budget_ratio",
                format!("must be between 0 and 1000 (got {ratio}); 0.2 allows 20% extra load"),
            ));
        }
        if ttl < Duration::from_secs(1) || ttl > Duration::from_secs(60) {
            return Err(SpecError::new(
                "retry.budget_ttl",
                format!("must be between 1s and 60s (got {ttl:?}); 10s is the default"),
            ));
        }
        Ok(RetryBudget {
            ratio,
            ratio_micros: (ratio * 1e6).round() as u64,
            reserve_micros: u64::from(min_per_second) * ttl.as_millis() as u64 * 1000,
            window: WindowCounter::new(ttl, origin),
            deposits: AtomicU64::new(0),
            withdrawals: AtomicU64::new(0),
            exhausted: AtomicU64::new(0),
        })
    }

    /// Records an original (not retried) request.
    pub fn deposit(&self) {
        self.deposit_at(Instant::now());
    }

    pub fn deposit_at(&self, now: Instant) {
        self.window.add(now, 1, 0);
        self.deposits.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one retry from the budget; false means do not retry.
    pub fn try_withdraw(&self) -> bool {
        self.try_withdraw_at(Instant::now())
    }

    /// As [`RetryBudget::try_withdraw`] at `now`. Check and spend are two atomic steps, so
    /// workers racing on the last token can overspend by at most one each.
    pub fn try_withdraw_at(&self, now: Instant) -> bool {
        let (deposits, withdrawals) = self.window.sum(now);
        let earned =
            u128::from(self.reserve_micros) + u128::from(self.ratio_micros) * u128::from(deposits);
        let spent = u128::from(withdrawals + 1) * 1_000_000;
        if earned >= spent && self.window.add(now, 0, 1) {
            self.withdrawals.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            self.exhausted.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    pub fn counters(&self) -> RetryCounters {
        RetryCounters {
            deposits: self.deposits.load(Ordering::Relaxed),
            withdrawals: self.withdrawals.load(Ordering::Relaxed),
            exhausted: self.exhausted.load(Ordering::Relaxed),
        }
    }
}

/// The wait before retry number `attempt` (0 for the first retry): uniformly random in
/// `[0, min(max, base x 2^attempt)]` ("full jitter"), which spreads retries of many clients
/// best. Deterministic for a given `jitter_seed`; pass e.g. a hash of the request id.
pub fn backoff(attempt: u32, base: Duration, max: Duration, jitter_seed: u64) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
    let cap = base.saturating_mul(factor).min(max);
    let cap_nanos = cap.as_nanos().min(u128::from(u64::MAX)) as u64;
    let random = splitmix64(jitter_seed ^ u64::from(attempt).wrapping_mul(0xA076_1D64_78BD_642F));
    // Multiply-shift maps the random word onto [0, cap] without modulo bias worth noting.
    let nanos = ((u128::from(random) * (u128::from(cap_nanos) + 1)) >> 64) as u64;
    Duration::from_nanos(nanos)
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Whether a request with this method may be sent again after it reached the upstream: the
/// safe methods (GET, HEAD, OPTIONS, TRACE) always, others only if the route lists them (PUT
/// and DELETE are idempotent by RFC 9110, but legacy services often break that promise).
pub fn retryable(method: &Method, idempotent_extra: &[Method]) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) || idempotent_extra.contains(method)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn budget_bounds_retries_when_upstream_always_fails() {
        let t0 = Instant::now();
        let (ratio, floor, ttl) = (0.2, 10, Duration::from_secs(10));
        let budget = RetryBudget::with_origin(ratio, floor, ttl, t0).unwrap();
        let mut requests = 0u64;
        let mut retries = 0u64;
        // 1000 requests spread over 5 s, each retried until the budget says no.
        for i in 0..1000u64 {
            let now = t0 + Duration::from_millis(i * 5);
            budget.deposit_at(now);
            requests += 1;
            while budget.try_withdraw_at(now) {
                retries += 1;
                assert!(retries < 10_000, "runaway");
            }
            let bound = ratio * requests as f64 + f64::from(floor) * ttl.as_secs_f64();
            assert!(
                retries as f64 <= bound,
                "{retries} retries after {requests} requests"
            );
        }
        // The bound is reached, not just respected.
        assert_eq!(retries, 200 + 100);
        let c = budget.counters();
        assert_eq!((c.deposits, c.withdrawals), (1000, 300));
        assert_eq!(c.exhausted, 1000);
    }

    #[test]
    fn floor_allows_retries_without_traffic_and_refills_after_ttl() {
        let t0 = Instant::now();
        let budget = RetryBudget::with_origin(0.2, 3, Duration::from_secs(1), t0).unwrap();
        for _ in 0..3 {
            assert!(budget.try_withdraw_at(t0));
        }
        assert!(!budget.try_withdraw_at(t0));
        // Four deposits are worth 0.8 of a retry: still nothing.
        for _ in 0..4 {
            budget.deposit_at(t0);
        }
        assert!(!budget.try_withdraw_at(t0));
        budget.deposit_at(t0);
        assert!(budget.try_withdraw_at(t0));
        // Once the withdrawals leave the window the floor is back.
        let later = t0 + Duration::from_secs(1);
        for _ in 0..3 {
            assert!(budget.try_withdraw_at(later));
        }
        assert!(!budget.try_withdraw_at(later));
    }

    #[test]
    fn zero_floor_and_ratio_means_no_retries() {
        let budget = RetryBudget::new(0.0, 0, Duration::from_secs(10)).unwrap();
        budget.deposit();
        assert!(!budget.try_withdraw());
        assert!(RetryBudget::new(f64::NAN, 1, Duration::from_secs(10)).is_err());
        assert_eq!(
            RetryBudget::new(0.2, 1, Duration::ZERO).unwrap_err().field,
            "retry.budget_ttl"
        );
    }

    #[test]
    fn backoff_is_deterministic_and_bounded() {
        let base = Duration::from_millis(50);
        let max = Duration::from_secs(2);
        for attempt in 0..40 {
            let cap = (base * 2u32.saturating_pow(attempt.min(20))).min(max);
            let mut distinct = std::collections::HashSet::new();
            for seed in 0..200u64 {
                let d = backoff(attempt, base, max, seed);
                assert!(d <= cap, "attempt {attempt} seed {seed}: {d:?} > {cap:?}");
                assert_eq!(d, backoff(attempt, base, max, seed));
                distinct.insert(d);
            }
            // Jittered: 200 seeds give (nearly) 200 different waits.
            assert!(
                distinct.len() > 190,
                "attempt {attempt}: {}",
                distinct.len()
            );
        }
        // The spread covers the range: some waits in the lowest and highest tenth.
        let waits: Vec<_> = (0..1000).map(|s| backoff(3, base, max, s)).collect();
        let cap = Duration::from_millis(400);
        assert!(waits.iter().any(|&d| d < cap / 10));
        assert!(waits.iter().any(|&d| d > cap * 9 / 10));
        assert_eq!(backoff(5, Duration::ZERO, max, 1), Duration::ZERO);
    }

    proptest! {
        #[test]
        fn backoff_never_exceeds_cap(attempt in 0u32..100, base_ms in 0u64..10_000, max_ms in 0u64..100_000, seed: u64) {
            let base = Duration::from_millis(base_ms);
            let max = Duration::from_millis(max_ms);
            let d = backoff(attempt, base, max, seed);
            prop_assert!(d <= max);
            prop_assert!(d <= base.saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX)));
        }
    }

    #[test]
    fn only_safe_methods_unless_listed() {
        for m in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
            assert!(retryable(&m, &[]), "{m}");
        }
        for m in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            assert!(!retryable(&m, &[]), "{m}");
        }
        assert!(retryable(&Method::PUT, &[Method::PUT, Method::DELETE]));
        assert!(!retryable(&Method::POST, &[Method::PUT]));
    }
}
