//! ficus telemetry: what each route's legacy and modern sides are doing, recorded on the
//! request path with uncontended atomics and read by the dashboard, `/metrics` and the
//! rollout judge.
//!
//! The request path only ever touches [`SideStats::record`] and [`SideStats::begin`]: a few
//! relaxed atomic additions on the calling worker's own shard (cache-line aligned, so
//! workers never share a line), no locks, no allocation. Everything else (summing shards,
//! rolling windows, quantiles, exposition) runs on the reader's time.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod buckets;
pub mod fleet;
pub mod inventory;
mod prom;
pub mod shadow;
pub mod sli;
mod window;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use buckets::{fine_index, fine_lower_us, fine_upper_us, FINE_BUCKETS, PROM_BUCKETS_SECONDS};
pub use fleet::{decode_hist, encode_hist, SlotRow};
pub use shadow::{DropReason, ShadowCounters, ShadowTotals};
pub use sli::{SliCounters, SliCounts, SliMinute, SliScope};
pub use window::{SlotSummary, WindowStats, WINDOW_SLOTS};

use window::Ring;

/// The two sides a route migrates between, as telemetry labels them.
pub const SIDES: [&str; 2] = ["legacy", "modern"];

/// Status classes counted per side: 1xx..5xx.
pub const CODE_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The class index (0..5) of a status code; anything outside 100..=599 counts as 5xx.
#[inline]
pub fn code_class(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status / 100 - 1),
        _ => 4,
    }
}

/// One worker's counters for one side of one route.
#[repr(align(128))]
struct Shard {
    by_class: [AtomicU64; 5],
    latency_sum_us: AtomicU64,
    fine: [AtomicU64; FINE_BUCKETS],
    prom: [AtomicU64; PROM_BUCKETS_SECONDS.len() + 1],
    in_flight: AtomicI64,
    fallbacks: AtomicU64,
}

impl Shard {
    fn new() -> Shard {
        Shard {
            by_class: Default::default(),
            latency_sum_us: AtomicU64::new(0),
            fine: std::array::from_fn(|_| AtomicU64::new(0)),
            prom: Default::default(),
            in_flight: AtomicI64::new(0),
            fallbacks: AtomicU64::new(0),
        }
    }
}

/// Cumulative totals of one side, summed over shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    pub by_class: [u64; 5],
    pub latency_sum_us: u64,
    pub fine: Vec<u64>,
    pub prom: Vec<u64>,
    pub in_flight: i64,
    pub fallbacks: u64,
}

impl Totals {
    pub fn requests(&self) -> u64 {
        self.by_class.iter().sum()
    }
}

/// Counters and latency histogram of one side (legacy or modern) of one route.
pub struct SideStats {
    shards: Box<[Shard]>,
    ring: Mutex<Ring>,
}

impl std::fmt::Debug for SideStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SideStats").finish_non_exhaustive()
    }
}

/// Decrements the in-flight gauge when the call ends, however it ends.
pub struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl SideStats {
    fn new(shards: usize) -> SideStats {
        SideStats {
            shards: (0..shards.max(1)).map(|_| Shard::new()).collect(),
            ring: Mutex::new(Ring::new()),
        }
    }

    #[inline]
    fn shard(&self, worker: usize) -> &Shard {
        &self.shards[worker % self.shards.len()]
    }

    /// A call to this side starts; the gauge drops when the guard does.
    #[inline]
    pub fn begin(&self, worker: usize) -> InFlight<'_> {
        let g = &self.shard(worker).in_flight;
        g.fetch_add(1, Ordering::Relaxed);
        InFlight(g)
    }

    /// One call answered (or failed: pass the status the client would have seen, 502/504
    /// for ficus's own errors), with its time to the response head.
    #[inline]
    pub fn record(&self, worker: usize, status: u16, latency: Duration) {
        let s = self.shard(worker);
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        s.by_class[code_class(status)].fetch_add(1, Ordering::Relaxed);
        s.latency_sum_us.fetch_add(us, Ordering::Relaxed);
        s.fine[fine_index(us)].fetch_add(1, Ordering::Relaxed);
        s.prom[buckets::prom_index(us)].fetch_add(1, Ordering::Relaxed);
    }

    /// A failed call to this side whose request legacy then answered.
    #[inline]
    pub fn record_fallback(&self, worker: usize) {
        self.shard(worker).fallbacks.fetch_add(1, Ordering::Relaxed);
    }

    /// Cumulative totals since start, summed over shards.
    pub fn totals(&self) -> Totals {
        let mut t = Totals {
            by_class: [0; 5],
            latency_sum_us: 0,
            fine: vec![0; FINE_BUCKETS],
            prom: vec![0; PROM_BUCKETS_SECONDS.len() + 1],
            in_flight: 0,
            fallbacks: 0,
        };
        for s in self.shards.iter() {
            for (a, b) in t.by_class.iter_mut().zip(&s.by_class) {
                *a += b.load(Ordering::Relaxed);
            }
            t.latency_sum_us += s.latency_sum_us.load(Ordering::Relaxed);
            for (a, b) in t.fine.iter_mut().zip(s.fine.iter()) {
                *a += b.load(Ordering::Relaxed);
            }
            for (a, b) in t.prom.iter_mut().zip(s.prom.iter()) {
                *a += b.load(Ordering::Relaxed);
            }
            t.in_flight += s.in_flight.load(Ordering::Relaxed);
            t.fallbacks += s.fallbacks.load(Ordering::Relaxed);
        }
        t
    }

    /// Statistics over the last `seconds` (at most [`WINDOW_SLOTS`]) of closed slots.
    pub fn window(&self, seconds: u32) -> WindowStats {
        self.ring
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .window(seconds)
    }

    /// Per-second points over the last `seconds`, oldest first, for charts.
    pub fn series(&self, seconds: u32) -> Vec<SlotSummary> {
        self.ring
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .series(seconds)
    }

    fn tick(&self, now_s: u64) {
        let totals = self.totals();
        self.ring
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .close_slot(now_s, &totals);
    }
}

/// Both sides of one route.
#[derive(Debug)]
pub struct RouteStats {
    pub name: Arc<str>,
    sides: [SideStats; 2],
    /// The route's mirror (shadow traffic) counters.
    pub shadow: ShadowCounters,
    /// SLI counts by scope (route, legacy, modern), counted while an SLO covers the scope.
    sli: [SliCounters; 3],
}

impl RouteStats {
    /// Side 0 is legacy, 1 is modern.
    #[inline]
    pub fn side(&self, modern: bool) -> &SideStats {
        &self.sides[usize::from(modern)]
    }

    /// The SLI counters of one scope.
    #[inline]
    pub fn sli(&self, scope: SliScope) -> &SliCounters {
        &self.sli[match scope {
            SliScope::Route => 0,
            SliScope::Legacy => 1,
            SliScope::Modern => 2,
        }]
    }
}

/// A metric family computed at scrape time by another part of ficus (the protection
/// counters of rate limiters, breakers and concurrency limits, which live with them; the
/// webhook deliveries).
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    /// A gauge; otherwise a counter (`_total` is appended on exposition).
    pub gauge: bool,
    pub samples: Vec<(Vec<(&'static str, String)>, u64)>,
}

/// Produces extra families at scrape time.
pub type ExtraMetrics = Box<dyn Fn() -> Vec<Family> + Send + Sync>;

/// A gauge family with fractional values, computed at scrape time (a route's weight in
/// percent, which has two decimals).
#[derive(Debug, Clone, PartialEq)]
pub struct GaugeFamily {
    pub name: &'static str,
    pub help: &'static str,
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

/// Produces extra fractional gauge families at scrape time.
pub type ExtraGauges = Box<dyn Fn() -> Vec<GaugeFamily> + Send + Sync>;

/// Every route's statistics, kept across reloads by route name.
pub struct Telemetry {
    shards: usize,
    routes: Mutex<HashMap<Arc<str>, Arc<RouteStats>>>,
    inventory: inventory::Inventory,
    extra: Mutex<Vec<(&'static str, ExtraMetrics)>>,
    extra_gauges: Mutex<Vec<(&'static str, ExtraGauges)>>,
    /// The other nodes' seconds, for the fleet-wide view (see [`fleet`]).
    remote: Mutex<fleet::Remote>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Telemetry with one shard per worker thread.
    pub fn new(shards: usize) -> Arc<Telemetry> {
        Arc::new(Telemetry {
            shards: shards.max(1),
            routes: Mutex::new(HashMap::new()),
            inventory: inventory::Inventory::new(shards, inventory::MAX_ENDPOINTS),
            extra: Mutex::new(Vec::new()),
            extra_gauges: Mutex::new(Vec::new()),
            remote: Mutex::new(fleet::Remote::default()),
        })
    }

    /// Sets the producer of extra metric families under `key` (the gateway's protection
    /// counters, the control plane's webhook counts), replacing an earlier one of that key.
    pub fn set_extra(&self, key: &'static str, f: ExtraMetrics) {
        let mut extra = self.extra.lock().unwrap_or_else(|p| p.into_inner());
        match extra.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = f,
            None => extra.push((key, f)),
        }
    }

    /// The extra families now, of every producer in the order they were added.
    pub fn extra(&self) -> Vec<Family> {
        self.extra
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .flat_map(|(_, f)| f())
            .collect()
    }

    /// Sets the producer of fractional gauge families under `key` (the control plane's
    /// route weights), replacing an earlier one of that key.
    pub fn set_extra_gauges(&self, key: &'static str, f: ExtraGauges) {
        let mut extra = self.extra_gauges.lock().unwrap_or_else(|p| p.into_inner());
        match extra.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = f,
            None => extra.push((key, f)),
        }
    }

    /// The fractional gauge families now, of every producer in the order they were added.
    pub fn extra_gauges(&self) -> Vec<GaugeFamily> {
        self.extra_gauges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .flat_map(|(_, f)| f())
            .collect()
    }

    /// The statistics of a route, created on first use and kept (with their counts) when a
    /// reload compiles the route again.
    pub fn route(&self, name: &str) -> Arc<RouteStats> {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = routes.get(name) {
            return r.clone();
        }
        let name: Arc<str> = Arc::from(name);
        let stats = Arc::new(RouteStats {
            name: name.clone(),
            sides: [SideStats::new(self.shards), SideStats::new(self.shards)],
            shadow: ShadowCounters::default(),
            sli: std::array::from_fn(|_| SliCounters::new(self.shards)),
        });
        routes.insert(name, stats.clone());
        stats
    }

    /// Every route known, sorted by name.
    pub fn routes(&self) -> Vec<Arc<RouteStats>> {
        let mut v: Vec<_> = self
            .routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Closes the current one-second slot of every route's windows. Called once a second by
    /// a background task (`now_s`: unix seconds).
    pub fn tick(&self, now_s: u64) {
        self.inventory.set_now(now_s);
        for r in self.routes() {
            for s in &r.sides {
                s.tick(now_s);
            }
            for s in &r.sli {
                s.tick(now_s);
            }
        }
    }

    /// Every route's per-minute SLI sums from minute `since` (unix seconds / 60) on, of the
    /// last [`sli::MINUTES_KEPT`] minutes; minutes without requests are left out.
    pub fn sli_minutes(&self, since: u64) -> Vec<SliMinute> {
        let mut out = Vec::new();
        for r in self.routes() {
            for scope in SliScope::ALL {
                for (minute, counts) in r.sli(scope).minutes_since(since) {
                    out.push(SliMinute {
                        route: r.name.to_string(),
                        scope,
                        minute,
                        counts,
                    });
                }
            }
        }
        out
    }

    /// The traffic inventory.
    pub fn inventory(&self) -> &inventory::Inventory {
        &self.inventory
    }

    /// The Prometheus text exposition (OpenMetrics format) of every route.
    pub fn prometheus(self: &Arc<Self>) -> String {
        prom::encode(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(code_class(101), 0);
        assert_eq!(code_class(200), 1);
        assert_eq!(code_class(399), 2);
        assert_eq!(code_class(404), 3);
        assert_eq!(code_class(503), 4);
        assert_eq!(code_class(0), 4);
        assert_eq!(code_class(999), 4);
    }

    #[test]
    fn shards_sum_and_in_flight_follows_guards() {
        let t = Telemetry::new(3);
        let r = t.route("orders");
        let m = r.side(true);
        for w in 0..9 {
            m.record(w, 200, Duration::from_millis(2));
        }
        m.record(1, 503, Duration::from_millis(40));
        m.record_fallback(1);
        let g1 = m.begin(0);
        let g2 = m.begin(2);
        assert_eq!(m.totals().in_flight, 2);
        drop((g1, g2));
        let tot = m.totals();
        assert_eq!(tot.in_flight, 0);
        assert_eq!(tot.by_class, [0, 9, 0, 0, 1]);
        assert_eq!(tot.requests(), 10);
        assert_eq!(tot.fallbacks, 1);
        assert_eq!(tot.latency_sum_us, 9 * 2000 + 40_000);
        assert_eq!(tot.fine.iter().sum::<u64>(), 10);
        assert_eq!(r.side(false).totals().requests(), 0);
        assert!(Arc::ptr_eq(&t.route("orders"), &r), "kept by name");
    }
}
