//! Service-level indicator counts: what an SLO judges, counted exactly per request.
//!
//! Each route has three [`SliCounters`], one per [`SliScope`]: the route as its clients
//! saw it (each client request once, with the status and time to the response head that
//! reached the client, ficus's own 429s, sheds and fallbacks included), and each side's
//! upstream attempts (what legacy and modern themselves did, a shed or an open breaker
//! counting as a 503 of that side). Counting is off until an SLO covers the scope
//! ([`SliCounters::configure`]); then a request costs a few relaxed atomic additions on the
//! worker's own shard.
//!
//! Latency SLIs are exact at any threshold: up to [`MAX_THRESHOLDS`] thresholds per scope are
//! compared with each request's latency as it is recorded (a request is slow when its
//! latency is strictly greater), so a threshold between histogram buckets counts exactly.
//!
//! The ticker folds each second's difference into per-minute sums ([`SliMinute`]), kept for
//! [`MINUTES_KEPT`] minutes, which the control plane writes to the store.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// Latency thresholds counted per scope.
pub const MAX_THRESHOLDS: usize = 4;

/// Minutes of per-minute sums kept in memory (the store is written every second or so).
pub const MINUTES_KEPT: usize = 20;

/// What an SLI counter set counts: the route as clients saw it, or one side's attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SliScope {
    Route,
    Legacy,
    Modern,
}

impl SliScope {
    pub const ALL: [SliScope; 3] = [SliScope::Route, SliScope::Legacy, SliScope::Modern];

    /// The number the store keeps: 0 route, 1 legacy, 2 modern.
    pub fn code(self) -> i16 {
        match self {
            SliScope::Route => 0,
            SliScope::Legacy => 1,
            SliScope::Modern => 2,
        }
    }

    pub fn from_code(code: i16) -> Option<SliScope> {
        match code {
            0 => Some(SliScope::Route),
            1 => Some(SliScope::Legacy),
            2 => Some(SliScope::Modern),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SliScope::Route => "route",
            SliScope::Legacy => "legacy",
            SliScope::Modern => "modern",
        }
    }

    /// The scope of one side's attempts.
    pub fn side(modern: bool) -> SliScope {
        if modern {
            SliScope::Modern
        } else {
            SliScope::Legacy
        }
    }
}

#[repr(align(128))]
#[derive(Default)]
struct Shard {
    total: AtomicU64,
    c5xx: AtomicU64,
    c429: AtomicU64,
    /// 4xx other than 429.
    c4xx: AtomicU64,
    slow: [AtomicU64; MAX_THRESHOLDS],
}

/// Counts of one scope: cumulative since start, or one minute's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SliCounts {
    pub total: u64,
    /// 5xx answers (ficus's own 502, 503 and 504 for connect failures, sheds, open
    /// breakers and timeouts included; anything outside 100..=599 too).
    pub c5xx: u64,
    pub c429: u64,
    /// 4xx answers other than 429.
    pub c4xx: u64,
    /// Requests slower than each threshold (microseconds), by threshold.
    pub slow: Vec<(u64, u64)>,
}

impl SliCounts {
    /// The requests slower than `threshold_us`, when that threshold is counted.
    pub fn slow_at(&self, threshold_us: u64) -> Option<u64> {
        self.slow
            .iter()
            .find(|(t, _)| *t == threshold_us)
            .map(|(_, n)| *n)
    }

    fn add(&mut self, other: &SliCounts) {
        self.total = self.total.saturating_add(other.total);
        self.c5xx = self.c5xx.saturating_add(other.c5xx);
        self.c429 = self.c429.saturating_add(other.c429);
        self.c4xx = self.c4xx.saturating_add(other.c4xx);
        for (t, n) in &other.slow {
            match self.slow.iter_mut().find(|(u, _)| u == t) {
                Some(s) => s.1 = s.1.saturating_add(*n),
                None => self.slow.push((*t, *n)),
            }
        }
        self.slow.sort_unstable();
    }

    fn is_empty(&self) -> bool {
        self.total == 0 && self.slow.iter().all(|(_, n)| *n == 0)
    }
}

/// One minute of one scope of one route, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliMinute {
    pub route: String,
    pub scope: SliScope,
    /// Unix seconds / 60.
    pub minute: u64,
    pub counts: SliCounts,
}

#[derive(Debug, Default)]
struct Minutes {
    /// Cumulative counts at the last tick, and the thresholds they were counted at.
    last: Option<SliCounts>,
    by_minute: BTreeMap<u64, SliCounts>,
}

/// The SLI counters of one scope of one route.
pub struct SliCounters {
    enabled: AtomicBool,
    /// Microseconds; 0 marks a free slot.
    thresholds: [AtomicU64; MAX_THRESHOLDS],
    shards: Box<[Shard]>,
    minutes: Mutex<Minutes>,
    /// Serialises `configure` with the ticker's reads of the slots.
    config: Mutex<()>,
}

impl std::fmt::Debug for SliCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SliCounters")
            .field("enabled", &self.enabled.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl SliCounters {
    pub(crate) fn new(shards: usize) -> SliCounters {
        SliCounters {
            enabled: AtomicBool::new(false),
            thresholds: Default::default(),
            shards: (0..shards.max(1)).map(|_| Shard::default()).collect(),
            minutes: Mutex::new(Minutes::default()),
            config: Mutex::new(()),
        }
    }

    /// Whether an SLO covers this scope (nothing is counted otherwise).
    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Turns counting on or off and sets the latency thresholds (microseconds, at most
    /// [`MAX_THRESHOLDS`]; extra ones are ignored, validation refuses them first). A
    /// threshold kept keeps its counts; a slot given a new threshold starts from zero.
    pub fn configure(&self, enabled: bool, thresholds_us: &[u64]) {
        let _g = self.config.lock().unwrap_or_else(|p| p.into_inner());
        let wanted: Vec<u64> = thresholds_us
            .iter()
            .copied()
            .filter(|t| *t > 0)
            .take(MAX_THRESHOLDS)
            .collect();
        let current: Vec<u64> = self
            .thresholds
            .iter()
            .map(|t| t.load(Ordering::Relaxed))
            .collect();
        // Free the slots no longer wanted, then give the new thresholds free slots.
        for (i, t) in current.iter().enumerate() {
            if *t != 0 && !wanted.contains(t) {
                self.set_slot(i, 0);
            }
        }
        for t in wanted {
            let slots: Vec<u64> = self
                .thresholds
                .iter()
                .map(|t| t.load(Ordering::Relaxed))
                .collect();
            if slots.contains(&t) {
                continue;
            }
            if let Some(i) = slots.iter().position(|s| *s == 0) {
                self.set_slot(i, t);
            }
        }
        self.enabled.store(enabled, Ordering::Relaxed);
    }

    fn set_slot(&self, i: usize, threshold_us: u64) {
        self.thresholds[i].store(threshold_us, Ordering::Relaxed);
        for s in self.shards.iter() {
            s.slow[i].store(0, Ordering::Relaxed);
        }
        let mut m = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(last) = m.last.as_mut() {
            last.slow
                .retain(|(t, _)| *t != 0 && self.slot_of(*t).is_some());
        }
    }

    fn slot_of(&self, threshold_us: u64) -> Option<usize> {
        self.thresholds
            .iter()
            .position(|t| t.load(Ordering::Relaxed) == threshold_us)
    }

    /// One request answered with `status` after `latency` (to the response head).
    #[inline]
    pub fn record(&self, worker: usize, status: u16, latency: Duration) {
        if !self.enabled() {
            return;
        }
        let s = &self.shards[worker % self.shards.len()];
        s.total.fetch_add(1, Ordering::Relaxed);
        match status {
            429 => {
                s.c429.fetch_add(1, Ordering::Relaxed);
            }
            400..=499 => {
                s.c4xx.fetch_add(1, Ordering::Relaxed);
            }
            100..=499 => {}
            _ => {
                s.c5xx.fetch_add(1, Ordering::Relaxed);
            }
        }
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        for (t, slow) in self.thresholds.iter().zip(&s.slow) {
            let t = t.load(Ordering::Relaxed);
            if t != 0 && us > t {
                slow.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Cumulative counts since start (a threshold's since it was set), summed over shards.
    pub fn totals(&self) -> SliCounts {
        let mut c = SliCounts::default();
        let mut slow = [0u64; MAX_THRESHOLDS];
        for s in self.shards.iter() {
            c.total += s.total.load(Ordering::Relaxed);
            c.c5xx += s.c5xx.load(Ordering::Relaxed);
            c.c429 += s.c429.load(Ordering::Relaxed);
            c.c4xx += s.c4xx.load(Ordering::Relaxed);
            for (a, b) in slow.iter_mut().zip(&s.slow) {
                *a += b.load(Ordering::Relaxed);
            }
        }
        for (t, n) in self.thresholds.iter().zip(slow) {
            let t = t.load(Ordering::Relaxed);
            if t != 0 {
                c.slow.push((t, n));
            }
        }
        c.slow.sort_unstable();
        c
    }

    /// Folds what happened since the last tick into the minute of the second ending at
    /// `now_s`. The first tick only takes the baseline.
    pub(crate) fn tick(&self, now_s: u64) {
        // Nothing is counted while off, so the baseline stays right until counting resumes.
        if !self.enabled() {
            return;
        }
        let _g = self.config.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.totals();
        let mut m = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
        let Some(prev) = m.last.replace(now.clone()) else {
            return;
        };
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let delta = SliCounts {
            total: d(now.total, prev.total),
            c5xx: d(now.c5xx, prev.c5xx),
            c429: d(now.c429, prev.c429),
            c4xx: d(now.c4xx, prev.c4xx),
            slow: now
                .slow
                .iter()
                .map(|(t, n)| (*t, d(*n, prev.slow_at(*t).unwrap_or(0))))
                .collect(),
        };
        let minute = now_s.saturating_sub(1) / 60;
        let entry = m.by_minute.entry(minute).or_default();
        entry.add(&delta);
        while m.by_minute.len() > MINUTES_KEPT {
            m.by_minute.pop_first();
        }
    }

    /// The minutes from `since` (unix seconds / 60) on, oldest first; minutes with no
    /// request are left out.
    pub(crate) fn minutes_since(&self, since: u64) -> Vec<(u64, SliCounts)> {
        let m = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
        m.by_minute
            .range(since..)
            .filter(|(_, c)| !c.is_empty())
            .map(|(k, c)| (*k, c.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_kind_and_only_when_enabled() {
        let c = SliCounters::new(2);
        c.record(0, 500, Duration::from_millis(1));
        assert_eq!(c.totals().total, 0, "off until configured");
        c.configure(true, &[]);
        for (w, s) in [200u16, 201, 301, 404, 429, 500, 502, 503, 504, 0]
            .into_iter()
            .enumerate()
        {
            c.record(w, s, Duration::from_millis(1));
        }
        let t = c.totals();
        assert_eq!((t.total, t.c5xx, t.c429, t.c4xx), (10, 5, 1, 1), "{t:?}");
    }

    #[test]
    fn thresholds_count_exactly_between_buckets() {
        let c = SliCounters::new(1);
        // 237 ms is not an edge of any histogram bucket.
        c.configure(true, &[237_000, 1_000_000]);
        c.record(0, 200, Duration::from_micros(237_000)); // not slower: equal
        c.record(0, 200, Duration::from_micros(237_001));
        c.record(0, 200, Duration::from_micros(236_999));
        c.record(0, 200, Duration::from_millis(1500));
        let t = c.totals();
        assert_eq!(t.slow_at(237_000), Some(2));
        assert_eq!(t.slow_at(1_000_000), Some(1));
        // Keeping one threshold keeps its count; a new one starts from zero.
        c.configure(true, &[237_000, 50_000]);
        let t = c.totals();
        assert_eq!(t.slow_at(237_000), Some(2));
        assert_eq!(t.slow_at(50_000), Some(0));
        assert_eq!(t.slow_at(1_000_000), None);
    }

    #[test]
    fn counters_off_keep_no_minutes_and_resume_from_their_baseline() {
        let c = SliCounters::new(1);
        for s in 0..5 {
            c.tick(600 + s);
        }
        assert!(c.minutes_since(0).is_empty());
        c.configure(true, &[]);
        c.tick(700); // baseline
        c.record(0, 500, Duration::ZERO);
        c.configure(false, &[]);
        c.tick(701);
        c.record(0, 500, Duration::ZERO); // not counted: off
        c.configure(true, &[]);
        c.tick(702);
        c.record(0, 200, Duration::ZERO);
        c.tick(703);
        let m = c.minutes_since(0);
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].1.total, m[0].1.c5xx), (2, 1), "{m:?}");
    }

    #[test]
    fn ticks_fold_seconds_into_minutes() {
        let c = SliCounters::new(1);
        c.configure(true, &[100_000]);
        c.tick(600); // baseline
        c.record(0, 200, Duration::from_millis(5));
        c.record(0, 503, Duration::from_millis(500));
        c.tick(601); // second ending at 601: minute 10
        c.record(0, 200, Duration::from_millis(5));
        c.tick(660); // second 659..660: still minute 10
        c.record(0, 429, Duration::from_millis(5));
        c.tick(661); // minute 11
        let m = c.minutes_since(0);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].0, 10);
        assert_eq!(
            m[0].1,
            SliCounts {
                total: 3,
                c5xx: 1,
                c429: 0,
                c4xx: 0,
                slow: vec![(100_000, 1)]
            }
        );
        assert_eq!(m[1].0, 11);
        assert_eq!((m[1].1.total, m[1].1.c429), (1, 1));
        assert_eq!(c.minutes_since(11).len(), 1);
        for s in 0..40u64 {
            c.record(0, 200, Duration::ZERO);
            c.tick(661 + 60 * (s + 1));
        }
        assert_eq!(c.minutes_since(0).len(), MINUTES_KEPT);
    }
}
