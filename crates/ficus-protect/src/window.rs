//! Lock-free sliding-window counters: a ring of time buckets, each one `AtomicU64` holding
//! the bucket's time tag and two counts, so an update is a single CAS and a bucket can never
//! be half-reset while another worker adds to it.
//!
//! Word layout: tag (24 bits) | a (20 bits) | b (20 bits). Counts saturate at about a million
//! per bucket; the tag is the bucket index modulo 2^24 (194 days at one-second buckets), so a
//! bucket left untouched for exactly that long could be mistaken for a current one; the
//! callers (breaker, retry budget) tolerate that once-in-half-a-year approximation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const COUNT_BITS: u32 = 20;
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
const TAG_BITS: u32 = 24;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
/// Most buckets per window; a longer window gets wider buckets.
const MAX_BUCKETS: u64 = 60;

fn pack(tag: u64, a: u64, b: u64) -> u64 {
    (tag << (2 * COUNT_BITS)) | (a << COUNT_BITS) | b
}

fn unpack(word: u64) -> (u64, u64, u64) {
    (
        word >> (2 * COUNT_BITS),
        (word >> COUNT_BITS) & COUNT_MAX,
        word & COUNT_MAX,
    )
}

/// How far `tag` is behind `current`, modulo the tag space; tags slightly ahead (a worker
/// whose `now` was read a moment later) come out as huge ages and are handled by callers.
fn age(current: u64, tag: u64) -> u64 {
    current.wrapping_sub(tag) & TAG_MASK
}

fn is_ahead(current: u64, tag: u64) -> bool {
    let ahead = tag.wrapping_sub(current) & TAG_MASK;
    ahead != 0 && ahead < (1 << (TAG_BITS - 1))
}

pub(crate) struct WindowCounter {
    buckets: Box<[AtomicU64]>,
    width_nanos: u64,
    origin: Instant,
}

impl WindowCounter {
    /// A window of `window` length starting at `origin`; times before `origin` count as
    /// `origin`.
    pub(crate) fn new(window: Duration, origin: Instant) -> WindowCounter {
        let nanos = window.as_nanos().clamp(1, u128::from(u64::MAX)) as u64;
        let n = nanos.div_ceil(1_000_000_000).clamp(1, MAX_BUCKETS);
        WindowCounter {
            buckets: (0..n).map(|_| AtomicU64::new(0)).collect(),
            width_nanos: (nanos / n).max(1),
            origin,
        }
    }

    fn index(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin).as_nanos();
        (since / u128::from(self.width_nanos)) as u64
    }

    /// Adds `a` and `b` to the current bucket. Returns false, adding nothing, when `b` would
    /// overflow: callers use `b` for things that must be refused rather than under-counted.
    pub(crate) fn add(&self, now: Instant, a: u64, b: u64) -> bool {
        let index = self.index(now);
        let tag = index & TAG_MASK;
        let slot = &self.buckets[(index % self.buckets.len() as u64) as usize];
        let mut word = slot.load(Ordering::Relaxed);
        loop {
            let (old_tag, old_a, old_b) = unpack(word);
            let next = if old_tag == tag || is_ahead(tag, old_tag) {
                if old_b + b > COUNT_MAX {
                    return false;
                }
                pack(old_tag, (old_a + a).min(COUNT_MAX), old_b + b)
            } else {
                pack(tag, a.min(COUNT_MAX), b.min(COUNT_MAX))
            };
            match slot.compare_exchange_weak(word, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(actual) => word = actual,
            }
        }
    }

    /// Sums of `a` and `b` over the buckets in the window ending at `now`.
    pub(crate) fn sum(&self, now: Instant) -> (u64, u64) {
        let tag = self.index(now) & TAG_MASK;
        let n = self.buckets.len() as u64;
        let (mut a, mut b) = (0, 0);
        for slot in self.buckets.iter() {
            let (t, x, y) = unpack(slot.load(Ordering::Relaxed));
            if age(tag, t) < n || is_ahead(tag, t) {
                a += x;
                b += y;
            }
        }
        (a, b)
    }

    pub(crate) fn clear(&self) {
        for slot in self.buckets.iter() {
            slot.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slides_over_buckets() {
        let t0 = Instant::now();
        let w = WindowCounter::new(Duration::from_secs(10), t0);
        assert_eq!(w.buckets.len(), 10);
        for s in 0..10 {
            assert!(w.add(t0 + Duration::from_secs(s), 1, s % 2));
        }
        assert_eq!(w.sum(t0 + Duration::from_millis(9_500)), (10, 5));
        // One second later the first bucket has left the window.
        assert_eq!(w.sum(t0 + Duration::from_secs(10)), (9, 5));
        assert_eq!(w.sum(t0 + Duration::from_secs(18)), (1, 1));
        assert_eq!(w.sum(t0 + Duration::from_secs(19)), (0, 0));
        // Writing into a reused slot starts from zero.
        assert!(w.add(t0 + Duration::from_secs(23), 2, 0));
        assert_eq!(w.sum(t0 + Duration::from_secs(23)), (2, 0));
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        let t0 = Instant::now();
        let w = WindowCounter::new(Duration::from_secs(1), t0);
        assert!(w.add(t0, COUNT_MAX + 5, COUNT_MAX));
        assert!(!w.add(t0, 0, 1));
        assert!(w.add(t0, 1, 0));
        assert_eq!(w.sum(t0), (COUNT_MAX, COUNT_MAX));
    }

    #[test]
    fn long_windows_use_wider_buckets() {
        let t0 = Instant::now();
        let w = WindowCounter::new(Duration::from_secs(600), t0);
        assert_eq!(w.buckets.len(), 60);
        w.add(t0, 1, 1);
        assert_eq!(w.sum(t0 + Duration::from_secs(599)), (1, 1));
        assert_eq!(w.sum(t0 + Duration::from_secs(600)), (0, 0));
        let short = WindowCounter::new(Duration::from_millis(300), t0);
        assert_eq!(short.buckets.len(), 1);
    }
}
