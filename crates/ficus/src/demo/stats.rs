//! What the synthetic client saw, per route: who answered, how many failed, how fast. Tallied
//! per reporting interval and in total, and printed as aligned tables people can read (and the
//! integration test can parse by column name).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Who answered one request, from the gateway's `x-ficus-upstream` debug header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Legacy,
    Modern,
    /// Modern failed and legacy answered the same request.
    LegacyFallback,
    /// The gateway answered itself (an error), or nothing answered at all.
    Other,
}

impl Answer {
    pub fn from_header(value: Option<&[u8]>) -> Answer {
        match value {
            Some(b"legacy") => Answer::Legacy,
            Some(b"modern") => Answer::Modern,
            Some(b"legacy-fallback") => Answer::LegacyFallback,
            _ => Answer::Other,
        }
    }
}

/// One finished request.
#[derive(Debug, Clone)]
pub struct Sample {
    pub route: String,
    pub answer: Answer,
    /// `None` when no response arrived (connection error or client timeout).
    pub status: Option<u16>,
    pub latency: Duration,
}

/// Counts for one route over some period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub requests: u64,
    pub legacy: u64,
    pub modern: u64,
    pub fallback: u64,
    /// Status >= 500 or no response: what a user of the gateway would call a failure.
    pub errors: u64,
    /// Microseconds, unsorted. Bounded because the client is (rate and duration are capped).
    latencies_us: Vec<u32>,
}

impl Tally {
    fn add(&mut self, s: &Sample) {
        self.requests += 1;
        match s.answer {
            Answer::Legacy => self.legacy += 1,
            Answer::Modern => self.modern += 1,
            Answer::LegacyFallback => self.fallback += 1,
            Answer::Other => {}
        }
        if !matches!(s.status, Some(st) if st < 500) {
            self.errors += 1;
        }
        let us = u32::try_from(s.latency.as_micros()).unwrap_or(u32::MAX);
        self.latencies_us.push(us);
    }

    pub fn merge(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.legacy += other.legacy;
        self.modern += other.modern;
        self.fallback += other.fallback;
        self.errors += other.errors;
        self.latencies_us.extend_from_slice(&other.latencies_us);
    }

    /// The latency below which a share `q` (0..=1) of requests finished (nearest rank).
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.latencies_us.is_empty() {
            return None;
        }
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        Some(Duration::from_micros(u64::from(sorted[rank - 1])))
    }
}

/// Tallies per route name.
pub type Tallies = BTreeMap<String, Tally>;

/// Shared between the client's request tasks (which record) and the reporter (which takes).
#[derive(Debug, Default)]
pub struct Stats {
    interval: Mutex<Tallies>,
    skipped: AtomicU64,
}

impl Stats {
    pub fn record(&self, s: &Sample) {
        let mut map = self.interval.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(s.route.clone()).or_default().add(s);
    }

    /// A request the client did not send because too many were still in flight.
    pub fn skip(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// What was recorded since the last call.
    pub fn take_interval(&self) -> Tallies {
        std::mem::take(&mut *self.interval.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

pub fn merge_into(total: &mut Tallies, part: &Tallies) {
    for (route, t) in part {
        total.entry(route.clone()).or_default().merge(t);
    }
}

const COLUMNS: [(&str, usize); 8] = [
    ("route", 9),
    ("requests", 8),
    ("legacy", 7),
    ("modern", 7),
    ("fallback", 8),
    ("errors", 6),
    ("p50", 8),
    ("p99", 8),
];

/// The column names, aligned with [`row`]; `lead` is the first column's heading (e.g. `time`).
pub fn header(lead: &str) -> String {
    let mut out = format!("{lead:>6}");
    for (i, (name, w)) in COLUMNS.iter().enumerate() {
        if i == 0 {
            let _ = write!(out, "  {name:<w$}");
        } else {
            let _ = write!(out, "  {name:>w$}");
        }
    }
    out
}

/// One table row: `lead` (time or blank), the route, then the tally's columns.
pub fn row(lead: &str, route: &str, t: &Tally) -> String {
    let cells = [
        t.requests.to_string(),
        t.legacy.to_string(),
        t.modern.to_string(),
        t.fallback.to_string(),
        t.errors.to_string(),
        format_latency(t.quantile(0.50)),
        format_latency(t.quantile(0.99)),
    ];
    let mut out = format!("{lead:>6}  {route:<w$}", w = COLUMNS[0].1);
    for (cell, (_, w)) in cells.iter().zip(&COLUMNS[1..]) {
        let _ = write!(out, "  {cell:>w$}");
    }
    out
}

/// Rows in the given route order (the config's match order), then any other routes seen.
pub fn rows(lead: &str, order: &[String], tallies: &Tallies) -> Vec<String> {
    let known = order.iter().filter_map(|r| tallies.get_key_value(r));
    let others = tallies.iter().filter(|(r, _)| !order.contains(r));
    known
        .chain(others)
        .enumerate()
        .map(|(i, (route, t))| row(if i == 0 { lead } else { "" }, route, t))
        .collect()
}

pub fn total(tallies: &Tallies) -> Tally {
    let mut all = Tally::default();
    for t in tallies.values() {
        all.merge(t);
    }
    all
}

fn format_latency(d: Option<Duration>) -> String {
    let Some(d) = d else { return "-".into() };
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2}ms")
    } else if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{:.2}s", ms / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(answer: Answer, status: Option<u16>, ms: u64) -> Sample {
        Sample {
            route: "orders".into(),
            answer,
            status,
            latency: Duration::from_millis(ms),
        }
    }

    #[test]
    fn tallies_answers_errors_and_quantiles() {
        let stats = Stats::default();
        for ms in 1..=100 {
            stats.record(&sample(Answer::Legacy, Some(200), ms));
        }
        stats.record(&sample(Answer::Modern, Some(503), 5));
        stats.record(&sample(Answer::LegacyFallback, Some(200), 5));
        stats.record(&sample(Answer::Other, None, 5));
        let taken = stats.take_interval();
        let t = &taken["orders"];
        assert_eq!(
            (t.requests, t.legacy, t.modern, t.fallback, t.errors),
            (103, 100, 1, 1, 2)
        );
        assert!(
            stats.take_interval().is_empty(),
            "taking resets the interval"
        );
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut t = Tally::default();
        assert_eq!(t.quantile(0.5), None);
        for ms in (1..=100).rev() {
            t.add(&sample(Answer::Legacy, Some(200), ms));
        }
        assert_eq!(t.quantile(0.5), Some(Duration::from_millis(50)));
        assert_eq!(t.quantile(0.99), Some(Duration::from_millis(99)));
        assert_eq!(t.quantile(1.0), Some(Duration::from_millis(100)));
    }

    #[test]
    fn rows_align_with_the_header() {
        let mut t = Tally::default();
        t.add(&sample(Answer::Modern, Some(200), 3));
        let (h, r) = (header("time"), row("5s", "orders", &t));
        assert_eq!(h.len(), r.len(), "\n{h}\n{r}");
        assert_eq!(h.split_whitespace().count(), r.split_whitespace().count());
    }
}
