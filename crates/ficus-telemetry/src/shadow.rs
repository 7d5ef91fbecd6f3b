//! Counters of a route's mirror: what was copied to modern, what was dropped and why, and
//! what the comparisons found. Plain atomics: they change once per mirrored request, not on
//! every request, so per-worker shards would buy nothing.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a mirror copy was dropped. Every drop is counted: invariant 2 says a mirror never
/// slows the client down, so when it cannot keep up it gives up visibly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The mirror queue was full.
    QueueFull,
    /// The request or legacy's response body was over `[shadow] max_body`.
    TooLarge,
    /// The exchange with legacy did not complete (client gone, legacy failed, body error),
    /// so there is nothing to compare against.
    Incomplete,
    /// ficus is stopping.
    Closed,
}

impl DropReason {
    pub const ALL: [DropReason; 4] = [
        DropReason::QueueFull,
        DropReason::TooLarge,
        DropReason::Incomplete,
        DropReason::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue-full",
            DropReason::TooLarge => "too-large",
            DropReason::Incomplete => "incomplete",
            DropReason::Closed => "closed",
        }
    }
}

/// One route's mirror counters.
#[derive(Debug, Default)]
pub struct ShadowCounters {
    mirrored: AtomicU64,
    dropped: [AtomicU64; 4],
    failed: AtomicU64,
    compared: AtomicU64,
    differing: AtomicU64,
    noise_compared: AtomicU64,
}

/// A snapshot of [`ShadowCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ShadowTotals {
    /// Copies queued for modern.
    pub mirrored: u64,
    pub dropped_queue_full: u64,
    pub dropped_too_large: u64,
    pub dropped_incomplete: u64,
    pub dropped_closed: u64,
    /// Mirrored calls modern did not answer (connect error, timeout, broken exchange).
    pub failed: u64,
    /// Legacy-vs-modern comparisons made.
    pub compared: u64,
    /// Comparisons with at least one difference (noise included).
    pub differing: u64,
    /// Legacy-vs-legacy comparisons made (the noise sample).
    pub noise_compared: u64,
}

impl ShadowTotals {
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full
            + self.dropped_too_large
            + self.dropped_incomplete
            + self.dropped_closed
    }
}

impl ShadowCounters {
    #[inline]
    pub fn mirrored(&self) {
        self.mirrored.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub fn dropped(&self, why: DropReason) {
        self.dropped[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// One legacy-vs-modern comparison; `noise` when legacy was also compared with itself.
    pub fn compared(&self, differing: bool, noise: bool) {
        self.compared.fetch_add(1, Ordering::Relaxed);
        if differing {
            self.differing.fetch_add(1, Ordering::Relaxed);
        }
        if noise {
            self.noise_compared.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn totals(&self) -> ShadowTotals {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ShadowTotals {
            mirrored: l(&self.mirrored),
            dropped_queue_full: l(&self.dropped[DropReason::QueueFull as usize]),
            dropped_too_large: l(&self.dropped[DropReason::TooLarge as usize]),
            dropped_incomplete: l(&self.dropped[DropReason::Incomplete as usize]),
            dropped_closed: l(&self.dropped[DropReason::Closed as usize]),
            failed: l(&self.failed),
            compared: l(&self.compared),
            differing: l(&self.differing),
            noise_compared: l(&self.noise_compared),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_reason() {
        let c = ShadowCounters::default();
        c.mirrored();
        c.mirrored();
        c.dropped(DropReason::QueueFull);
        c.dropped(DropReason::TooLarge);
        c.dropped(DropReason::TooLarge);
        c.failed();
        c.compared(true, false);
        c.compared(false, true);
        let t = c.totals();
        assert_eq!(t.mirrored, 2);
        assert_eq!(
            (
                t.dropped_queue_full,
                t.dropped_too_large,
                t.dropped_incomplete
            ),
            (1, 2, 0)
        );
        assert_eq!(t.dropped(), 3);
        assert_eq!(
            (t.failed, t.compared, t.differing, t.noise_compared),
            (1, 2, 1, 1)
        );
    }
}
