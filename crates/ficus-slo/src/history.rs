//! Per-minute request counts of one SLO series: exact per minute for the last
//! [`MINUTE_SPAN`] minutes, per hour further back.
//!
//! # Layout and cost
//!
//! - A dense ring of [`MINUTE_SPAN`] minutes (3 days + 1 hour) of `u32` pairs (total, bad):
//!   35,040 bytes. Every window of the default burn-rate table (up to 3 days) is summed
//!   from it exactly, even when the evaluation runs up to an hour after the newest minute
//!   set. Counts above `u32::MAX` per minute (71 million requests a second) saturate.
//! - A ring of hours of `u64` pairs behind it, [`HOURS_SPAN`] (32 days) by default:
//!   12,288 bytes. A minute leaving the minute ring is folded into its hour.
//!
//! So one [`History`] holds 47,328 bytes of heap once the first minute is set (none
//! before), about 142 MB for 3,000 SLOs. [`History::for_spec`] sizes the hour ring for
//! rolling windows longer than 31 days (16 bytes per extra hour).
//!
//! # Hour rounding
//!
//! Minutes older than the minute ring are known only by hour. A sum over `[from, to)`
//! counts an hour's folded minutes when the hour's first minute lies in `[from, to)`, and
//! every minute of the minute ring in `[from, to)` exactly. So the oldest edge of a window
//! that reaches past the minute ring (a 28- or 30-day SLO window) moves by whole hours: it
//! starts at `from` rounded up to the next UTC hour, never earlier than `from` and at most
//! 59 minutes later ([`History::effective_start`] tells where). Windows that start on the
//! hour, such as calendar months, are exact.
//!
//! # Replace, then add
//!
//! [`History::set_minute`] *replaces* a minute still in the minute ring (the store rewrites
//! the current minute's row as it fills) but *adds* to the hour bucket of a minute older
//! than the ring, because whether that minute was set before cannot be known once it is
//! folded. Loading stored rows (each minute set once, in any order) therefore gives exact
//! hour totals; setting an old minute twice counts it twice. Minutes older than the hour
//! ring are ignored.
//!
//! Hour totals may be loaded as one row at the hour's first minute: they land in the right
//! hour bucket. While such a row is still inside the minute ring it counts as that one
//! minute (and saturates at `u32::MAX`), so load hour rows only for hours older than the
//! windows that need minute precision (3 days with the default table).

use serde::{Deserialize, Serialize};

/// Minutes kept one by one: 3 days (the longest window of the default burn-rate table)
/// plus 1 hour of margin for evaluations that run after the newest minute set.
pub const MINUTE_SPAN: usize = 3 * 24 * 60 + 60;
/// Hours kept by [`History::new`]: 32 days, enough for any calendar month or a 31-day
/// window evaluated a day late.
pub const HOURS_SPAN: usize = 32 * 24;

/// Requests and bad requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub total: u64,
    pub bad: u64,
}

impl Counts {
    /// Counts with `bad` clamped to at most `total`.
    pub fn new(total: u64, bad: u64) -> Counts {
        Counts {
            total,
            bad: bad.min(total),
        }
    }

    /// Fraction of good requests, `None` without requests.
    pub fn good_ratio(self) -> Option<f64> {
        (self.total > 0).then(|| 1.0 - self.bad as f64 / self.total as f64)
    }

    /// Fraction of bad requests, `None` without requests.
    pub fn bad_ratio(self) -> Option<f64> {
        (self.total > 0).then(|| self.bad as f64 / self.total as f64)
    }

    fn saturating_add(self, other: Counts) -> Counts {
        Counts {
            total: self.total.saturating_add(other.total),
            bad: self.bad.saturating_add(other.bad),
        }
    }
}

/// One minute in the ring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Minute {
    total: u32,
    bad: u32,
}

impl Minute {
    const ZERO: Minute = Minute { total: 0, bad: 0 };
}

/// Per-minute counts of one SLO series (see the module docs for the layout).
#[derive(Clone, PartialEq, Eq)]
pub struct History {
    /// The newest minute ever set; the minute ring holds `(newest - MINUTE_SPAN, newest]`.
    newest: Option<i64>,
    /// Indexed by `minute mod MINUTE_SPAN`; empty until the first minute is set.
    minutes: Vec<Minute>,
    /// Indexed by `hour mod hour_span`; holds hours `(newest_hour - hour_span, newest_hour]`,
    /// each with the minutes of the hour that left the minute ring.
    hours: Vec<Counts>,
    hour_span: usize,
}

impl Default for History {
    fn default() -> Self {
        History::new()
    }
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("newest", &self.newest)
            .field("hour_span", &self.hour_span)
            .field("heap_bytes", &self.heap_bytes())
            .finish_non_exhaustive()
    }
}

impl History {
    /// An empty history keeping [`HOURS_SPAN`] hours; allocates nothing until the first
    /// minute is set.
    pub fn new() -> History {
        History::with_hour_span(HOURS_SPAN)
    }

    /// An empty history keeping `hours` hours (at least the minute ring's 73).
    pub fn with_hour_span(hours: usize) -> History {
        History {
            newest: None,
            minutes: Vec::new(),
            hours: Vec::new(),
            hour_span: hours.max(MINUTE_SPAN.div_ceil(60)),
        }
    }

    /// An empty history that keeps enough hours for `spec`'s window: [`HOURS_SPAN`], or the
    /// rolling window's days plus one for windows longer than 31 days.
    pub fn for_spec(spec: &crate::Spec) -> History {
        let hours = match spec.window {
            crate::Window::Rolling { days } => (days as usize + 1) * 24,
            crate::Window::CalendarMonth => 0,
        };
        History::with_hour_span(hours.max(HOURS_SPAN))
    }

    /// Hours this history keeps.
    pub fn hour_span(&self) -> usize {
        self.hour_span
    }

    /// Sets the counts of one minute (minute number = unix seconds / 60, rounded down).
    ///
    /// Within the minute ring this *replaces* the minute (set the current minute again and
    /// again as it fills). A minute newer than the newest seen advances the ring, folding
    /// the minutes that leave it into their hours; minutes never set count 0. A minute
    /// older than the ring is *added* to its hour bucket, and one older than the hour ring
    /// is ignored (module docs). `bad` is clamped to `total`; counts above `u32::MAX` per
    /// minute saturate.
    ///
    /// Cost: O(1), or O(minutes advanced) (at most [`MINUTE_SPAN`]) when the ring moves.
    pub fn set_minute(&mut self, minute: i64, c: Counts) {
        let newest = match self.newest {
            None => {
                self.minutes = vec![Minute::ZERO; MINUTE_SPAN];
                self.hours = vec![Counts::default(); self.hour_span];
                self.newest = Some(minute);
                minute
            }
            Some(n) if minute > n => {
                self.advance(n, minute);
                minute
            }
            Some(n) => n,
        };
        let total = u32::try_from(c.total).unwrap_or(u32::MAX);
        let bad = u32::try_from(c.bad).unwrap_or(u32::MAX).min(total);
        if minute > newest.saturating_sub(MINUTE_SPAN as i64) {
            self.minutes[ring_index(minute, MINUTE_SPAN)] = Minute { total, bad };
        } else {
            let hour = minute.div_euclid(60);
            if hour >= self.oldest_hour(newest) {
                let slot = &mut self.hours[ring_index(hour, self.hour_span)];
                *slot = slot.saturating_add(Counts::new(c.total, c.bad));
            }
        }
    }

    /// Moves the newest minute from `old` to `new` (> `old`).
    fn advance(&mut self, old: i64, new: i64) {
        let span = MINUTE_SPAN as i64;
        let hour_span = self.hour_span as i64;
        let (old_hour, new_hour) = (old.div_euclid(60), new.div_euclid(60));
        // Hours entering the hour ring reuse the slots of hours leaving it.
        let entering = (new_hour - old_hour).min(hour_span);
        for hour in new_hour - entering + 1..=new_hour {
            self.hours[ring_index(hour, self.hour_span)] = Counts::default();
        }
        // Minutes leaving the minute ring go to their hour; their slots are the ones the
        // entering minutes use, so clearing them leaves the entering minutes at 0.
        let oldest_hour = new_hour - hour_span + 1;
        let leaving_to = (new - span).min(old);
        for minute in old - span + 1..=leaving_to {
            let i = ring_index(minute, MINUTE_SPAN);
            let m = std::mem::replace(&mut self.minutes[i], Minute::ZERO);
            if m != Minute::ZERO {
                let hour = minute.div_euclid(60);
                if hour >= oldest_hour {
                    let slot = &mut self.hours[ring_index(hour, self.hour_span)];
                    *slot = slot.saturating_add(Counts::new(m.total.into(), m.bad.into()));
                }
            }
        }
        self.newest = Some(new);
    }

    /// The oldest hour kept when the newest minute is `newest`.
    fn oldest_hour(&self, newest: i64) -> i64 {
        newest.div_euclid(60) - self.hour_span as i64 + 1
    }

    /// The newest minute set, `None` for an empty history.
    pub fn newest_minute(&self) -> Option<i64> {
        self.newest
    }

    /// The oldest minute of the minute ring (exact per minute from there on).
    pub fn ring_start(&self) -> Option<i64> {
        self.newest.map(|n| n - MINUTE_SPAN as i64 + 1)
    }

    /// The first minute of the oldest hour kept: sums from further back count nothing more.
    pub fn oldest_minute(&self) -> Option<i64> {
        self.newest.map(|n| self.oldest_hour(n) * 60)
    }

    /// Where a sum from minute `from` really starts after hour rounding (module docs):
    /// `from` itself inside the minute ring; before it, `from` rounded up to the hour but
    /// no later than the ring's start and no earlier than the oldest hour kept.
    pub fn effective_start(&self, from: i64) -> i64 {
        let Some(newest) = self.newest else {
            return from;
        };
        let ring_start = newest - MINUTE_SPAN as i64 + 1;
        if from >= ring_start {
            return from;
        }
        let rounded = from.div_euclid(60) * 60 + if from.rem_euclid(60) == 0 { 0 } else { 60 };
        rounded.min(ring_start).max(self.oldest_hour(newest) * 60)
    }

    /// Sum over the minutes in `[from, to)`; see the module docs for minutes older than the
    /// minute ring. Cost: O(minutes of the range in the ring + hours before it).
    pub fn sum(&self, from: i64, to: i64) -> Counts {
        self.sums(to, &[from])[0]
    }

    /// Sums over `[froms[i], to)` for several windows that end at the same minute, in one
    /// backwards pass: O(minutes in the ring covered by the longest window + hours before
    /// it + k log k), instead of one pass per window. Same results as [`History::sum`].
    pub fn sums(&self, to: i64, froms: &[i64]) -> Vec<Counts> {
        let mut out = vec![Counts::default(); froms.len()];
        let Some(newest) = self.newest else {
            return out;
        };
        // Shortest window first.
        let mut order: Vec<usize> = (0..froms.len()).collect();
        order.sort_unstable_by_key(|&i| std::cmp::Reverse(froms[i]));

        // The minute ring: minutes in [ring_start, newest], walked down from `hi - 1`.
        let ring_start = newest - MINUTE_SPAN as i64 + 1;
        let hi = to.min(newest + 1);
        let mut next = hi; // the next minute to add is `next - 1`
        let mut idx = ring_index(hi - 1, MINUTE_SPAN);
        let (mut total, mut bad) = (0u64, 0u64);
        for &i in &order {
            let lo = froms[i].max(ring_start);
            while next > lo {
                let m = self.minutes[idx];
                total += u64::from(m.total);
                bad += u64::from(m.bad);
                next -= 1;
                idx = if idx == 0 { MINUTE_SPAN - 1 } else { idx - 1 };
            }
            out[i] = Counts { total, bad };
        }

        // The hour ring: hours whose first minute is in [from, min(to, ring_start)); an hour
        // starting at or after ring_start has no folded minutes.
        let end = to.min(ring_start);
        let oldest_hour = self.oldest_hour(newest);
        let mut next_hour = (end - 1).div_euclid(60) + 1; // the next hour to add is one less
        let mut acc = Counts::default();
        for &i in &order {
            let lo = ceil_div_60(froms[i]).max(oldest_hour);
            while next_hour > lo {
                next_hour -= 1;
                acc = acc.saturating_add(self.hours[ring_index(next_hour, self.hour_span)]);
            }
            out[i] = out[i].saturating_add(acc);
        }
        out
    }

    /// Bytes of heap this history holds (the two rings): 0 before the first minute is set,
    /// 47,328 with the default hour span.
    pub fn heap_bytes(&self) -> usize {
        self.minutes.capacity() * std::mem::size_of::<Minute>()
            + self.hours.capacity() * std::mem::size_of::<Counts>()
    }
}

fn ring_index(n: i64, len: usize) -> usize {
    n.rem_euclid(len as i64) as usize
}

fn ceil_div_60(n: i64) -> i64 {
    n.div_euclid(60) + i64::from(n.rem_euclid(60) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(total: u64, bad: u64) -> Counts {
        Counts { total, bad }
    }

    /// A minute number on an hour boundary, far from 0.
    const BASE: i64 = 28_333_320; // 2023-11-14T22:00Z

    #[test]
    fn empty_history() {
        let h = History::new();
        assert_eq!(h.heap_bytes(), 0);
        assert_eq!(h.newest_minute(), None);
        assert_eq!(h.sum(0, 100), Counts::default());
        assert_eq!(h.sums(5, &[1, 2]), vec![Counts::default(); 2]);
        assert_eq!(h.effective_start(7), 7);
    }

    #[test]
    fn memory_is_as_documented() {
        let mut h = History::new();
        h.set_minute(BASE, c(1, 0));
        assert_eq!(h.heap_bytes(), 47_328);
        assert_eq!(MINUTE_SPAN * 8 + HOURS_SPAN * 16, 47_328);
    }

    #[test]
    fn replace_semantics_and_gaps() {
        let mut h = History::new();
        h.set_minute(BASE, c(10, 1));
        h.set_minute(BASE, c(20, 2)); // the minute filled up: replaced, not added
        h.set_minute(BASE + 5, c(7, 0)); // minutes 1..=4 never set
        assert_eq!(h.sum(BASE, BASE + 1), c(20, 2));
        assert_eq!(h.sum(BASE + 1, BASE + 5), c(0, 0));
        assert_eq!(h.sum(BASE, BASE + 6), c(27, 2));
        // An older minute still in the ring is replaced too.
        h.set_minute(BASE, c(30, 3));
        assert_eq!(h.sum(BASE - 100, BASE + 100), c(37, 3));
        assert_eq!(h.newest_minute(), Some(BASE + 5));
        // Empty and inverted ranges.
        assert_eq!(h.sum(BASE + 1, BASE + 1), c(0, 0));
        assert_eq!(h.sum(BASE + 6, BASE), c(0, 0));
    }

    #[test]
    fn bad_is_clamped_and_counts_saturate() {
        let mut h = History::new();
        h.set_minute(BASE, c(5, 9));
        assert_eq!(h.sum(BASE, BASE + 1), c(5, 5));
        h.set_minute(BASE, c(u64::MAX, u64::MAX));
        let max = u64::from(u32::MAX);
        assert_eq!(h.sum(BASE, BASE + 1), c(max, max));
        // Hour buckets saturate instead of overflowing.
        let old = BASE - MINUTE_SPAN as i64 - 120;
        h.set_minute(old, c(u64::MAX, 1));
        h.set_minute(old + 1, c(u64::MAX, 1));
        assert_eq!(h.sum(old - old.rem_euclid(60), old + 60), c(u64::MAX, 2));
    }

    #[test]
    fn minutes_fold_into_hours() {
        let mut h = History::new();
        // One request per minute, two of them bad, over 4 days.
        let start = BASE;
        let days4 = 4 * 24 * 60;
        for m in start..start + days4 {
            h.set_minute(m, c(1, u64::from(m % 720 == 0)));
        }
        let newest = start + days4 - 1;
        assert_eq!(h.newest_minute(), Some(newest));
        assert_eq!(h.ring_start(), Some(newest - MINUTE_SPAN as i64 + 1));
        // Everything is still counted: exact for hour-aligned ranges.
        let all = h.sum(start, newest + 1);
        assert_eq!(all.total, days4 as u64);
        assert_eq!(
            all.bad,
            (start..start + days4).filter(|m| m % 720 == 0).count() as u64
        );
        // A range across the ring boundary that starts on the hour is exact.
        let ring_start = h.ring_start().unwrap();
        let from = start + 60 * 10;
        assert_eq!(
            h.sum(from, ring_start + 30).total,
            (ring_start + 30 - from) as u64
        );
        // One that starts mid-hour before the ring is rounded up to the hour.
        let mid = start + 60 * 10 + 17;
        assert_eq!(h.effective_start(mid), start + 60 * 11);
        assert_eq!(
            h.sum(mid, newest + 1).total,
            (newest + 1 - (start + 660)) as u64
        );
        // Ranges wholly in the past, hour aligned (BASE + 120 is a multiple of 720).
        assert_eq!(h.sum(start, start + 120), c(120, 0));
        assert_eq!(h.sum(start + 120, start + 180), c(60, 1));
    }

    #[test]
    fn the_straddling_hour_is_split_between_ring_and_bucket() {
        let mut h = History::new();
        // Make the ring start mid-hour: newest at minute 30 of an hour.
        let newest = BASE + 30;
        let ring_start = newest - MINUTE_SPAN as i64 + 1; // minute 31 of its hour
        assert_eq!(ring_start.rem_euclid(60), 31);
        let hour_start = ring_start - 31;
        for m in hour_start..=newest {
            h.set_minute(m, c(2, 1));
        }
        // The hour's first 31 minutes are folded, the rest are in the ring.
        assert_eq!(h.sum(hour_start, hour_start + 60), c(120, 60));
        // From inside the folded part: the bucket is left out, the ring part is exact.
        assert_eq!(h.sum(hour_start + 1, hour_start + 60), c(58, 29));
        assert_eq!(h.effective_start(hour_start + 1), ring_start);
        // From inside the ring part: exact.
        assert_eq!(h.sum(ring_start + 1, hour_start + 60), c(56, 28));
        // A range that ends inside the folded part takes the hour only if it starts there.
        assert_eq!(h.sum(hour_start, hour_start + 10), c(62, 31));
    }

    #[test]
    fn wraparound_over_many_days() {
        let mut h = History::new();
        let mut m = BASE;
        // 40 days with gaps: every 7th minute missing, counts vary.
        for _ in 0..40 * 1440 {
            if m % 7 != 0 {
                h.set_minute(m, c((m % 13) as u64 + 1, (m % 3) as u64));
            }
            m += 1;
        }
        let newest = m - 1;
        let expect = |from: i64, to: i64| {
            let mut e = c(0, 0);
            for x in from..to {
                if x % 7 != 0 {
                    e.total += (x % 13) as u64 + 1;
                    e.bad += (x % 3).min((x % 13) + 1) as u64;
                }
            }
            e
        };
        // Within the ring, any range is exact.
        for (from, to) in [
            (newest - 10, newest + 1),
            (newest - 4379, newest + 1),
            (newest - 3000, newest - 2000),
        ] {
            assert_eq!(h.sum(from, to), expect(from, to), "{from}..{to}");
        }
        // Hour-aligned ranges in the hour ring are exact; older than 32 days is gone.
        let newest_hour = newest.div_euclid(60);
        let oldest = (newest_hour - HOURS_SPAN as i64 + 1) * 60;
        assert_eq!(h.oldest_minute(), Some(oldest));
        assert_eq!(h.sum(oldest, newest + 1), expect(oldest, newest + 1));
        assert_eq!(h.sum(BASE, newest + 1), expect(oldest, newest + 1));
        assert_eq!(h.effective_start(BASE), oldest);
    }

    #[test]
    fn old_minutes_add_to_hours_and_ancient_ones_are_ignored() {
        let mut h = History::new();
        h.set_minute(BASE, c(1, 0));
        let old = BASE - 10 * 1440; // ten days back: hour bucket
        h.set_minute(old, c(5, 1));
        h.set_minute(old + 1, c(5, 1));
        h.set_minute(old, c(5, 1)); // added again: old minutes add
        assert_eq!(h.sum(old, old + 60), c(15, 3));
        h.set_minute(BASE - 40 * 1440, c(100, 100)); // older than 32 days
        assert_eq!(h.sum(BASE - 50 * 1440, BASE + 1), c(16, 3));
    }

    #[test]
    fn a_jump_longer_than_everything_clears_everything() {
        let mut h = History::new();
        for m in BASE..BASE + 100 {
            h.set_minute(m, c(1, 1));
        }
        let later = BASE + 60 * 24 * 60;
        h.set_minute(later, c(3, 0));
        assert_eq!(h.sum(BASE - 1_000_000, later + 1), c(3, 0));
        // A jump of two days: the old minutes stay in the ring.
        let mut h = History::new();
        for m in BASE..BASE + 100 {
            h.set_minute(m, c(1, 1));
        }
        h.set_minute(BASE + 2 * 1440, c(3, 0));
        assert_eq!(h.sum(BASE, BASE + 2 * 1440 + 1), c(103, 100));
        // A jump of five days: they are folded into hours.
        h.set_minute(BASE + 5 * 1440, c(0, 0));
        assert_eq!(h.sum(BASE, BASE + 60), c(60, 60));
        assert_eq!(h.sum(BASE, BASE + 6 * 1440), c(103, 100));
    }

    #[test]
    fn sums_match_sum() {
        let mut h = History::new();
        for m in BASE..BASE + 5 * 1440 {
            h.set_minute(m, c(3, u64::from(m % 5 == 0)));
        }
        let to = BASE + 5 * 1440 - 7;
        let froms = [
            to - 5,
            to - 1440 * 4 - 13,
            to + 3,
            to - 60,
            to - 1440 * 3,
            to,
        ];
        let got = h.sums(to, &froms);
        for (f, g) in froms.iter().zip(got) {
            assert_eq!(g, h.sum(*f, to), "from {f}");
        }
    }

    #[test]
    fn longer_hour_span_for_long_rolling_windows() {
        let mut h = History::with_hour_span(91 * 24);
        for m in (BASE..BASE + 89 * 1440).step_by(60) {
            h.set_minute(m, c(1, 0));
        }
        let newest = h.newest_minute().unwrap();
        assert_eq!(h.sum(BASE, newest + 1).total, 89 * 24);
        assert_eq!(h.heap_bytes(), MINUTE_SPAN * 8 + 91 * 24 * 16);
    }
}
