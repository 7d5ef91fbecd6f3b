//! Fleet-wide numbers: this node's closed seconds go out to the store as [`SlotRow`]s, the
//! other nodes' come back and are kept beside the local rings, and every reader that
//! should see the whole fleet (the rollout judge, `ficus status`, the dashboard, the API)
//! reads the sum: [`Telemetry::fleet_window`], [`Telemetry::fleet_series`],
//! [`Telemetry::fleet_totals`]. One node alone reads exactly its local numbers.
//!
//! The request path is untouched: rows are cut from the rings the ticker already closes,
//! on the reader's time. `/metrics` stays per node (Prometheus scrapes every node and sums).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::buckets::{FINE_BUCKETS, PROM_BUCKETS_SECONDS};
use crate::window::{self, Slot};
use crate::{SlotSummary, Telemetry, Totals, WindowStats, WINDOW_SLOTS};

/// One closed second of one side of one route, as nodes exchange it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlotRow {
    pub route: String,
    pub modern: bool,
    /// Unix seconds at the end of the second.
    pub at_s: u64,
    pub by_class: [u32; 5],
    pub fallbacks: u32,
    pub latency_sum_us: u64,
    /// Non-empty fine buckets (index, count), by index.
    pub hist: Vec<(u16, u32)>,
}

impl SlotRow {
    fn slot(&self) -> Slot {
        Slot {
            at_s: self.at_s,
            by_class: self.by_class,
            fallbacks: self.fallbacks,
            latency_sum_us: self.latency_sum_us,
            hist: self.hist.clone(),
        }
    }

    pub fn requests(&self) -> u64 {
        self.by_class.iter().map(|c| u64::from(*c)).sum()
    }
}

/// The histogram as bytes for the store: each bucket a little-endian u16 index and u32
/// count.
pub fn encode_hist(hist: &[(u16, u32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hist.len() * 6);
    for (i, c) in hist {
        out.extend_from_slice(&i.to_le_bytes());
        out.extend_from_slice(&c.to_le_bytes());
    }
    out
}

/// The inverse of [`encode_hist`]; `None` for bytes it did not write (a length that is not
/// a multiple of 6, an index beyond the buckets, indexes out of order).
pub fn decode_hist(bytes: &[u8]) -> Option<Vec<(u16, u32)>> {
    if !bytes.len().is_multiple_of(6) {
        return None;
    }
    let mut out: Vec<(u16, u32)> = Vec::with_capacity(bytes.len() / 6);
    for chunk in bytes.chunks_exact(6) {
        let i = u16::from_le_bytes([chunk[0], chunk[1]]);
        let c = u32::from_le_bytes([chunk[2], chunk[3], chunk[4], chunk[5]]);
        if usize::from(i) >= FINE_BUCKETS || out.last().is_some_and(|l| l.0 >= i) {
            return None;
        }
        out.push((i, c));
    }
    Some(out)
}

/// The other nodes' seconds of one side of one route.
#[derive(Debug, Default)]
struct RemoteSide {
    /// By second, summed over nodes; the last 15 minutes.
    slots: BTreeMap<u64, Slot>,
    /// Everything received since start, for the judge's running windows.
    total: Totals,
}

/// Everything received from other nodes, by (route, modern).
#[derive(Debug, Default)]
pub(crate) struct Remote {
    sides: HashMap<(Arc<str>, bool), RemoteSide>,
    /// Rows received since start, and rows refused (too old to keep).
    pub received: u64,
}

fn empty_totals() -> Totals {
    Totals {
        by_class: [0; 5],
        latency_sum_us: 0,
        fine: vec![0; FINE_BUCKETS],
        prom: vec![0; PROM_BUCKETS_SECONDS.len() + 1],
        in_flight: 0,
        fallbacks: 0,
    }
}

impl Default for Totals {
    fn default() -> Self {
        empty_totals()
    }
}

impl Totals {
    fn add_slot(&mut self, s: &Slot) {
        for (a, b) in self.by_class.iter_mut().zip(s.by_class) {
            *a += u64::from(b);
        }
        self.latency_sum_us += s.latency_sum_us;
        self.fallbacks += u64::from(s.fallbacks);
        for (i, c) in &s.hist {
            if let Some(f) = self.fine.get_mut(usize::from(*i)) {
                *f += u64::from(*c);
            }
        }
    }

    /// What was counted between `then` and `self` (cumulative totals of one side).
    pub fn since(&self, then: &Totals) -> Totals {
        let mut d = empty_totals();
        for ((a, b), c) in self
            .by_class
            .iter()
            .zip(then.by_class)
            .zip(d.by_class.iter_mut())
        {
            *c = a.saturating_sub(b);
        }
        d.latency_sum_us = self.latency_sum_us.saturating_sub(then.latency_sum_us);
        d.fallbacks = self.fallbacks.saturating_sub(then.fallbacks);
        d.in_flight = self.in_flight;
        for ((a, b), c) in self.fine.iter().zip(&then.fine).zip(d.fine.iter_mut()) {
            *c = a.saturating_sub(*b);
        }
        for ((a, b), c) in self.prom.iter().zip(&then.prom).zip(d.prom.iter_mut()) {
            *c = a.saturating_sub(*b);
        }
        d
    }

    /// Adds another side's totals (a sum over nodes).
    pub fn add(&mut self, other: &Totals) {
        for (a, b) in self.by_class.iter_mut().zip(other.by_class) {
            *a += b;
        }
        self.latency_sum_us += other.latency_sum_us;
        self.fallbacks += other.fallbacks;
        self.in_flight += other.in_flight;
        for (a, b) in self.fine.iter_mut().zip(&other.fine) {
            *a += b;
        }
        for (a, b) in self.prom.iter_mut().zip(&other.prom) {
            *a += b;
        }
    }
}

impl Telemetry {
    /// This node's closed seconds that end after `after_s(route, modern)`, of every route
    /// and side, with at least one request (an idle route sends nothing). Oldest first per
    /// side. The mark is per side: the ticker closes the rings one after the other, so a
    /// reader between two of them must not skip the second's slot of the later one.
    pub fn closed_after(&self, after_s: impl Fn(&str, bool) -> u64) -> Vec<SlotRow> {
        let mut out = Vec::new();
        for r in self.routes() {
            for (modern, side) in [(false, r.side(false)), (true, r.side(true))] {
                let ring = side.ring.lock().unwrap_or_else(|p| p.into_inner());
                let after = after_s(&r.name, modern);
                for s in ring.slots_after(after).filter(|s| s.requests() > 0) {
                    out.push(SlotRow {
                        route: r.name.to_string(),
                        modern,
                        at_s: s.at_s,
                        by_class: s.by_class,
                        fallbacks: s.fallbacks,
                        latency_sum_us: s.latency_sum_us,
                        hist: s.hist.clone(),
                    });
                }
            }
        }
        out
    }

    /// When this node's newest closed second ended (over every route), if any.
    pub fn newest_closed(&self) -> Option<u64> {
        self.routes()
            .iter()
            .flat_map(|r| [r.side(false), r.side(true)])
            .filter_map(|s| s.ring.lock().unwrap_or_else(|p| p.into_inner()).newest())
            .max()
    }

    /// Adds another node's closed second to the fleet view. Seconds older than the rings
    /// keep (15 minutes before `now_s`) count in the running totals only.
    pub fn add_remote(&self, row: &SlotRow, now_s: u64) {
        let mut remote = self.remote.lock().unwrap_or_else(|p| p.into_inner());
        remote.received += 1;
        let key = (Arc::<str>::from(row.route.as_str()), row.modern);
        let side = remote.sides.entry(key).or_default();
        let slot = row.slot();
        side.total.add_slot(&slot);
        let oldest = now_s.saturating_sub(WINDOW_SLOTS as u64);
        if row.at_s > oldest {
            side.slots
                .entry(row.at_s)
                .and_modify(|s| s.add(&slot))
                .or_insert(slot);
        }
        // Forget what fell out of the window.
        while side
            .slots
            .first_key_value()
            .is_some_and(|(at, _)| *at <= oldest)
        {
            side.slots.pop_first();
        }
    }

    /// Rows received from other nodes since start.
    pub fn remote_rows(&self) -> u64 {
        self.remote
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .received
    }

    /// This node's totals plus everything received from the others since start.
    pub fn fleet_totals(&self, route: &str, modern: bool) -> Totals {
        let mut t = self.route(route).side(modern).totals();
        let remote = self.remote.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = remote.sides.get(&(Arc::from(route), modern)) {
            t.add(&r.total);
        }
        t
    }

    /// Everything received from the other nodes since start, for one side of a route.
    pub fn remote_totals(&self, route: &str, modern: bool) -> Totals {
        let remote = self.remote.lock().unwrap_or_else(|p| p.into_inner());
        remote
            .sides
            .get(&(Arc::from(route), modern))
            .map_or_else(empty_totals, |r| r.total.clone())
    }

    /// The other nodes' seconds that end after `after_s`, summed; `None` when the kept
    /// window starts after `after_s` (the answer would be short).
    pub fn remote_since(
        &self,
        route: &str,
        modern: bool,
        after_s: u64,
        now_s: u64,
    ) -> Option<Totals> {
        if after_s < now_s.saturating_sub(WINDOW_SLOTS as u64) {
            return None;
        }
        let remote = self.remote.lock().unwrap_or_else(|p| p.into_inner());
        let mut t = empty_totals();
        if let Some(r) = remote.sides.get(&(Arc::from(route), modern)) {
            for s in r.slots.range(after_s + 1..).map(|(_, s)| s) {
                t.add_slot(s);
            }
        }
        Some(t)
    }

    /// The fleet's numbers over the last `seconds` closed seconds of this node: its own
    /// slots plus the other nodes' slots of the same seconds.
    pub fn fleet_window(&self, route: &str, modern: bool, seconds: u32) -> WindowStats {
        let (slots, covered) = self.fleet_slots(route, modern, seconds);
        window::stats(slots.values(), covered)
    }

    /// Per-second fleet points over the last `seconds`, oldest first, for charts.
    pub fn fleet_series(&self, route: &str, modern: bool, seconds: u32) -> Vec<SlotSummary> {
        let (slots, _) = self.fleet_slots(route, modern, seconds);
        slots.values().map(window::summary).collect()
    }

    /// The local slots of the last `seconds` and the remote slots of the same seconds, by
    /// second, with how many seconds the local ring covers.
    fn fleet_slots(&self, route: &str, modern: bool, seconds: u32) -> (BTreeMap<u64, Slot>, u32) {
        let stats = self.route(route);
        let ring = stats
            .side(modern)
            .ring
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut slots: BTreeMap<u64, Slot> = BTreeMap::new();
        let local: Vec<&Slot> = ring.last(seconds).collect();
        let covered = u32::try_from(local.len()).unwrap_or(u32::MAX);
        for s in &local {
            slots.insert(s.at_s, (*s).clone());
        }
        let Some(newest) = ring.newest() else {
            return (slots, covered);
        };
        let from = newest.saturating_sub(u64::from(seconds));
        drop(ring);
        let remote = self.remote.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = remote.sides.get(&(Arc::from(route), modern)) {
            for (at, s) in r.slots.range(from + 1..=newest) {
                slots
                    .entry(*at)
                    .and_modify(|l| l.add(s))
                    .or_insert_with(|| s.clone());
            }
        }
        (slots, covered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn histograms_round_trip_and_bad_bytes_are_refused() {
        let h = vec![(0u16, 3u32), (17, 1), (200, 70_000)];
        assert_eq!(decode_hist(&encode_hist(&h)), Some(h));
        assert_eq!(decode_hist(&[]), Some(vec![]));
        assert_eq!(decode_hist(&[1, 2, 3]), None);
        assert_eq!(decode_hist(&encode_hist(&[(5, 1), (5, 1)])), None);
        assert_eq!(decode_hist(&encode_hist(&[(FINE_BUCKETS as u16, 1)])), None);
    }

    #[test]
    fn slots_of_several_nodes_add_up() {
        // Node A records locally; nodes B and C send their seconds.
        let a = Telemetry::new(1);
        let r = a.route("orders");
        a.tick(100);
        for _ in 0..10 {
            r.side(true).record(0, 200, Duration::from_millis(2));
        }
        r.side(true).record(0, 503, Duration::from_millis(40));
        a.tick(101);
        for _ in 0..5 {
            r.side(true).record(0, 200, Duration::from_millis(2));
        }
        a.tick(102);

        let local = a.closed_after(|_, _| 0);
        assert_eq!(local.len(), 2, "{local:?}");
        assert_eq!(local[0].requests(), 11);
        assert!(a.closed_after(|_, _| 101).iter().all(|s| s.at_s == 102));
        assert!(a
            .closed_after(|_, modern| if modern { 102 } else { 0 })
            .is_empty());
        assert_eq!(a.newest_closed(), Some(102));

        let b = Telemetry::new(1);
        let rb = b.route("orders");
        b.tick(100);
        for _ in 0..20 {
            rb.side(true).record(0, 200, Duration::from_millis(8));
        }
        b.tick(101);
        let c = Telemetry::new(1);
        let rc = c.route("orders");
        c.tick(100);
        for _ in 0..4 {
            rc.side(true).record(0, 502, Duration::from_millis(30));
        }
        c.tick(101);
        for row in b
            .closed_after(|_, _| 0)
            .iter()
            .chain(&c.closed_after(|_, _| 0))
        {
            // Through the store's encoding.
            let back = decode_hist(&encode_hist(&row.hist)).unwrap();
            let row = SlotRow {
                hist: back,
                ..row.clone()
            };
            a.add_remote(&row, 102);
        }
        assert_eq!(a.remote_rows(), 2);

        let w = a.fleet_window("orders", true, 60);
        assert_eq!(w.requests, 11 + 5 + 20 + 4);
        assert_eq!(w.errors, 1 + 4);
        assert_eq!(w.seconds, 2);
        let p99 = w.p99_ms.unwrap();
        assert!((26.0..=45.0).contains(&p99), "p99 {p99}");
        let series = a.fleet_series("orders", true, 60);
        assert_eq!(
            series.iter().map(|s| (s.t, s.requests)).collect::<Vec<_>>(),
            vec![(101, 35), (102, 5)]
        );
        // Only the last second: the remote seconds of 101 are out of it.
        assert_eq!(a.fleet_window("orders", true, 1).requests, 5);
        let t = a.fleet_totals("orders", true);
        assert_eq!(t.requests(), 40);
        assert_eq!(t.by_class[4], 5);
        assert_eq!(t.fine.iter().sum::<u64>(), 40);
        assert_eq!(a.fleet_totals("orders", false).requests(), 0);
        let since = a.remote_since("orders", true, 100, 102).unwrap();
        assert_eq!(since.requests(), 24);
        assert_eq!(
            a.remote_since("orders", true, 101, 102).unwrap().requests(),
            0
        );
        assert!(a.remote_since("orders", true, 1, 5000).is_none());
    }

    #[test]
    fn remote_seconds_older_than_the_window_only_count_in_totals() {
        let a = Telemetry::new(1);
        let row = SlotRow {
            route: "x".into(),
            modern: false,
            at_s: 10,
            by_class: [0, 3, 0, 0, 0],
            ..SlotRow::default()
        };
        a.add_remote(&row, 10 + WINDOW_SLOTS as u64 + 5);
        assert_eq!(a.fleet_totals("x", false).requests(), 3);
        a.tick(2000);
        a.tick(2001);
        assert_eq!(a.fleet_window("x", false, 900).requests, 0);
    }
}
