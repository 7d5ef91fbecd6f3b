//! Circuit breakers per upstream side: stop sending requests to a side that keeps failing,
//! probe it after a pause, and close again once probes succeed.
//!
//! Closed is the state every healthy request sees, so it costs one atomic load to admit and a
//! CAS or two to record; the mutex is taken only to change state, and in the rare Open and
//! HalfOpen states. Every method takes `now` from the caller, so the state machine is a pure
//! function of the calls and tests drive time explicitly.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::window::WindowCounter;
use crate::SpecError;

/// When a breaker opens and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSpec {
    /// Open after this many failures in a row (0 disables this trigger).
    pub consecutive_failures: u32,
    /// Open when at least this share of the requests in `window` failed...
    pub failure_rate: f64,
    /// ...and the window holds at least this many requests.
    pub min_requests: u32,
    /// The sliding window for the failure rate, counted in up to 60 buckets.
    pub window: Duration,
    /// How long the first trip stays open; each probe failure doubles it.
    pub open_for: Duration,
    /// The ceiling for the doubling.
    pub max_open_for: Duration,
    /// Probes admitted in half-open; this many successes close the breaker.
    pub half_open_probes: u32,
}

impl Default for BreakerSpec {
    fn default() -> Self {
        BreakerSpec {
            consecutive_failures: 5,
            failure_rate: 0.5,
            min_requests: 20,
            window: Duration::from_secs(10),
            open_for: Duration::from_secs(10),
            max_open_for: Duration::from_secs(300),
            half_open_probes: 3,
        }
    }
}

impl BreakerSpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        if !(self.failure_rate > 0.0 && self.failure_rate <= 1.0) {
            return Err(SpecError::new(
                "breaker.failure_rate",
                format!(
                    "must be above 0 and at most 1 (got {}); 0.5 opens at half the requests failing",
                    self.failure_rate
                ),
            ));
        }
        if self.min_requests == 0 {
            return Err(SpecError::new(
                "breaker.min_requests",
                "must be at least 1, or one early failure opens the breaker; 20 is the default",
            ));
        }
        if self.window < Duration::from_millis(100) {
            return Err(SpecError::new(
                "breaker.window",
                "must be at least 100ms; 10s is the default",
            ));
        }
        if self.open_for.is_zero() {
            return Err(SpecError::new(
                "breaker.open_for",
                "must be above 0; 10s is the default",
            ));
        }
        if self.max_open_for < self.open_for {
            return Err(SpecError::new(
                "breaker.max_open_for",
                "must be at least open_for",
            ));
        }
        if self.half_open_probes == 0 {
            return Err(SpecError::new(
                "breaker.half_open_probes",
                "must be at least 1; 3 is the default",
            ));
        }
        Ok(())
    }
}

/// The three states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    fn from_u8(v: u8) -> BreakerState {
        match v {
            0 => BreakerState::Closed,
            1 => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state change, for the caller to turn into an event and a metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
    /// Human-readable, with the numbers that caused it.
    pub reason: String,
}

/// Whether to send a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    /// Send it; record its outcome with `probe = false`.
    Allow,
    /// Send it as a probe; record its outcome with `probe = true`, always (a probe that is
    /// never recorded holds its probe slot until `open_for` has passed). `transition` is set
    /// for the call that moved the breaker from Open to HalfOpen.
    Probe { transition: Option<Transition> },
    /// Do not send it (answer 503 or fall back); `retry_after` is the time left open, or 1 s
    /// while the half-open probes are out.
    Reject { retry_after: Duration },
}

/// What happened to an admitted request, as the caller judges it (connect error, timeout,
/// 502/503/504 are failures; whatever else the route counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

/// Snapshot of one breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BreakerCounters {
    pub state: BreakerState,
    /// Times it opened (from Closed or from HalfOpen).
    pub trips: u64,
    pub rejected: u64,
    pub probes: u64,
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

struct Control {
    /// When the current Open period started, or the current HalfOpen round.
    since: Instant,
    /// The current open period; doubles on each failed half-open round.
    open_for: Duration,
    probes_admitted: u32,
    probe_successes: u32,
}

/// One upstream side's breaker.
pub struct Breaker {
    spec: BreakerSpec,
    state: AtomicU8,
    consecutive: AtomicU32,
    /// a = requests, b = failures.
    window: WindowCounter,
    control: Mutex<Control>,
    trips: AtomicU64,
    rejected: AtomicU64,
    probes: AtomicU64,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("spec", &self.spec)
            .field("counters", &self.counters())
            .finish()
    }
}

impl Breaker {
    /// A closed breaker. Times passed to it should not be earlier than its creation (earlier
    /// ones count as the creation instant); see [`Breaker::with_origin`].
    pub fn new(spec: BreakerSpec) -> Result<Breaker, SpecError> {
        Breaker::with_origin(spec, Instant::now())
    }

    /// A closed breaker whose window starts at `origin`.
    pub fn with_origin(spec: BreakerSpec, origin: Instant) -> Result<Breaker, SpecError> {
        spec.validate()?;
        Ok(Breaker {
            window: WindowCounter::new(spec.window, origin),
            control: Mutex::new(Control {
                since: origin,
                open_for: spec.open_for,
                probes_admitted: 0,
                probe_successes: 0,
            }),
            spec,
            state: AtomicU8::new(CLOSED),
            consecutive: AtomicU32::new(0),
            trips: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            probes: AtomicU64::new(0),
        })
    }

    pub fn state(&self) -> BreakerState {
        BreakerState::from_u8(self.state.load(Ordering::Acquire))
    }

    fn lock(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides whether to send a request now.
    pub fn admit(&self, now: Instant) -> Admit {
        if self.state.load(Ordering::Acquire) == CLOSED {
            return Admit::Allow;
        }
        let mut control = self.lock();
        match self.state.load(Ordering::Acquire) {
            CLOSED => Admit::Allow,
            OPEN => {
                let reopen_at = control.since + control.open_for;
                if now < reopen_at {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    return Admit::Reject {
                        retry_after: reopen_at - now,
                    };
                }
                let open_for = control.open_for;
                self.start_probing(&mut control, now);
                Admit::Probe {
                    transition: Some(Transition {
                        from: BreakerState::Open,
                        to: BreakerState::HalfOpen,
                        reason: format!(
                            "open for {}; admitting {} probe(s)",
                            fmt_duration(open_for),
                            self.spec.half_open_probes
                        ),
                    }),
                }
            }
            _ => {
                if control.probes_admitted >= self.spec.half_open_probes
                    && now >= control.since + control.open_for
                {
                    // The round's probes never all reported back (dropped by the caller):
                    // presume them lost and start a new round rather than stay stuck.
                    self.start_probing(&mut control, now);
                    return Admit::Probe { transition: None };
                }
                if control.probes_admitted < self.spec.half_open_probes {
                    control.probes_admitted += 1;
                    self.probes.fetch_add(1, Ordering::Relaxed);
                    Admit::Probe { transition: None }
                } else {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    Admit::Reject {
                        retry_after: Duration::from_secs(1),
                    }
                }
            }
        }
    }

    fn start_probing(&self, control: &mut Control, now: Instant) {
        control.since = now;
        control.probes_admitted = 1;
        control.probe_successes = 0;
        self.probes.fetch_add(1, Ordering::Relaxed);
        self.state.store(HALF_OPEN, Ordering::Release);
    }

    /// Records the outcome of a request that [`Breaker::admit`] let through; `probe` says
    /// whether it was admitted as a probe. Returns the state change it caused, if any.
    pub fn record(&self, now: Instant, outcome: Outcome, probe: bool) -> Option<Transition> {
        if probe {
            return self.record_probe(now, outcome);
        }
        if self.state.load(Ordering::Acquire) != CLOSED {
            // Sent before the breaker opened; the probes decide what happens next.
            return None;
        }
        match outcome {
            Outcome::Success => {
                self.window.add(now, 1, 0);
                // Skip the store when already 0 so healthy traffic does not bounce the line.
                if self.consecutive.load(Ordering::Relaxed) != 0 {
                    self.consecutive.store(0, Ordering::Relaxed);
                }
                None
            }
            Outcome::Failure => {
                self.window.add(now, 1, 1);
                let in_a_row = self.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
                let limit = self.spec.consecutive_failures;
                if limit > 0 && in_a_row >= limit {
                    return self.trip(
                        now,
                        format!("{in_a_row} consecutive failures (limit {limit})"),
                    );
                }
                let (requests, failures) = self.window.sum(now);
                if requests >= u64::from(self.spec.min_requests)
                    && failures as f64 >= self.spec.failure_rate * requests as f64
                {
                    return self.trip(
                        now,
                        format!(
                            "failure rate {:.1}% ({failures} of {requests}) over {} reached {:.1}% (min {} requests)",
                            100.0 * failures as f64 / requests as f64,
                            fmt_duration(self.spec.window),
                            100.0 * self.spec.failure_rate,
                            self.spec.min_requests,
                        ),
                    );
                }
                None
            }
        }
    }

    fn trip(&self, now: Instant, cause: String) -> Option<Transition> {
        let mut control = self.lock();
        if self.state.load(Ordering::Acquire) != CLOSED {
            // Another worker tripped it first.
            return None;
        }
        control.since = now;
        control.open_for = self.spec.open_for;
        self.state.store(OPEN, Ordering::Release);
        self.trips.fetch_add(1, Ordering::Relaxed);
        Some(Transition {
            from: BreakerState::Closed,
            to: BreakerState::Open,
            reason: format!("{cause}; open for {}", fmt_duration(control.open_for)),
        })
    }

    fn record_probe(&self, now: Instant, outcome: Outcome) -> Option<Transition> {
        let mut control = self.lock();
        if self.state.load(Ordering::Acquire) != HALF_OPEN {
            // A late probe from a round that already failed.
            return None;
        }
        match outcome {
            Outcome::Failure => {
                let previous = control.open_for;
                control.open_for = (previous * 2).min(self.spec.max_open_for);
                control.since = now;
                self.state.store(OPEN, Ordering::Release);
                self.trips.fetch_add(1, Ordering::Relaxed);
                Some(Transition {
                    from: BreakerState::HalfOpen,
                    to: BreakerState::Open,
                    reason: format!(
                        "probe failed after {} of {} succeeded; open for {} (was {})",
                        control.probe_successes,
                        self.spec.half_open_probes,
                        fmt_duration(control.open_for),
                        fmt_duration(previous),
                    ),
                })
            }
            Outcome::Success => {
                control.probe_successes += 1;
                if control.probe_successes < self.spec.half_open_probes {
                    return None;
                }
                control.open_for = self.spec.open_for;
                control.probes_admitted = 0;
                // Old failures must not trip the breaker again the moment it closes.
                self.window.clear();
                self.consecutive.store(0, Ordering::Relaxed);
                self.state.store(CLOSED, Ordering::Release);
                Some(Transition {
                    from: BreakerState::HalfOpen,
                    to: BreakerState::Closed,
                    reason: format!(
                        "{} of {} probes succeeded",
                        control.probe_successes, self.spec.half_open_probes
                    ),
                })
            }
        }
    }

    pub fn counters(&self) -> BreakerCounters {
        BreakerCounters {
            state: self.state(),
            trips: self.trips.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            probes: self.probes.load(Ordering::Relaxed),
        }
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn breaker(spec: BreakerSpec) -> (Breaker, Instant) {
        let t0 = Instant::now();
        (Breaker::with_origin(spec, t0).unwrap(), t0)
    }

    /// Opens the breaker with consecutive failures; returns the time it opened.
    fn trip(b: &Breaker, at: Instant) {
        for _ in 0..b.spec.consecutive_failures {
            assert_eq!(b.admit(at), Admit::Allow);
            b.record(at, Outcome::Failure, false);
        }
        assert_eq!(b.state(), BreakerState::Open);
    }

    fn probe(b: &Breaker, at: Instant) -> Option<Transition> {
        match b.admit(at) {
            Admit::Probe { transition } => transition,
            other => panic!("expected a probe at {at:?}, got {other:?}"),
        }
    }

    #[test]
    fn consecutive_failures_trip() {
        let (b, t0) = breaker(BreakerSpec::default());
        for i in 0..4 {
            assert_eq!(b.record(t0, Outcome::Failure, false), None, "failure {i}");
        }
        // A success resets the run.
        b.record(t0, Outcome::Success, false);
        for _ in 0..4 {
            assert_eq!(b.record(t0, Outcome::Failure, false), None);
        }
        let t = b
            .record(t0, Outcome::Failure, false)
            .expect("5th in a row trips");
        assert_eq!((t.from, t.to), (BreakerState::Closed, BreakerState::Open));
        assert_eq!(t.reason, "5 consecutive failures (limit 5); open for 10s");
        assert_eq!(b.counters().trips, 1);
    }

    #[test]
    fn failure_rate_trips_only_after_min_requests() {
        let spec = BreakerSpec {
            consecutive_failures: 0,
            ..BreakerSpec::default()
        };
        let (b, t0) = breaker(spec);
        // Alternate failure/success: 50% failures, but under 20 requests nothing happens.
        for i in 0..19 {
            let outcome = if i % 2 == 0 {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            assert_eq!(
                b.record(t0 + secs(i / 4), outcome, false),
                None,
                "request {i}"
            );
        }
        // 19 requests, 10 failures; the 20th (a failure) makes 11/20 = 55%.
        let t = b
            .record(t0 + secs(5), Outcome::Failure, false)
            .expect("rate trip");
        assert_eq!(
            t.reason,
            "failure rate 55.0% (11 of 20) over 10s reached 50.0% (min 20 requests); open for 10s"
        );
    }

    #[test]
    fn failure_rate_forgets_old_buckets() {
        let spec = BreakerSpec {
            consecutive_failures: 0,
            min_requests: 10,
            ..BreakerSpec::default()
        };
        let (b, t0) = breaker(spec);
        for _ in 0..9 {
            b.record(t0, Outcome::Failure, false);
        }
        // Ten seconds later those nine have left the window.
        for _ in 0..9 {
            assert_eq!(b.record(t0 + secs(10), Outcome::Success, false), None);
        }
        assert_eq!(b.record(t0 + secs(10), Outcome::Failure, false), None);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn open_rejects_until_open_for_passes() {
        let (b, t0) = breaker(BreakerSpec::default());
        trip(&b, t0);
        assert_eq!(
            b.admit(t0 + secs(3)),
            Admit::Reject {
                retry_after: secs(7)
            }
        );
        // Outcomes of requests sent before the trip change nothing.
        assert_eq!(b.record(t0 + secs(3), Outcome::Success, false), None);
        assert_eq!(b.state(), BreakerState::Open);
        let t = probe(&b, t0 + secs(10)).expect("open -> half-open");
        assert_eq!((t.from, t.to), (BreakerState::Open, BreakerState::HalfOpen));
        assert_eq!(t.reason, "open for 10s; admitting 3 probe(s)");
        assert_eq!(b.counters().rejected, 1);
    }

    #[test]
    fn half_open_admits_only_the_probe_count_and_closes_after_successes() {
        let (b, t0) = breaker(BreakerSpec::default());
        trip(&b, t0);
        let t = t0 + secs(10);
        assert!(probe(&b, t).is_some());
        assert!(probe(&b, t).is_none());
        assert!(probe(&b, t).is_none());
        assert_eq!(
            b.admit(t),
            Admit::Reject {
                retry_after: secs(1)
            }
        );
        assert_eq!(b.record(t, Outcome::Success, true), None);
        assert_eq!(b.record(t, Outcome::Success, true), None);
        let closed = b.record(t, Outcome::Success, true).expect("closes");
        assert_eq!(
            (closed.from, closed.to, closed.reason.as_str()),
            (
                BreakerState::HalfOpen,
                BreakerState::Closed,
                "3 of 3 probes succeeded"
            )
        );
        assert_eq!(b.admit(t), Admit::Allow);
        // The failures that tripped it are forgotten: four more do not trip it again.
        for _ in 0..4 {
            assert_eq!(b.record(t, Outcome::Failure, false), None);
        }
        let c = b.counters();
        assert_eq!((c.state, c.trips, c.probes), (BreakerState::Closed, 1, 3));
    }

    #[test]
    fn probe_failure_reopens_with_doubling_up_to_max() {
        let spec = BreakerSpec {
            max_open_for: secs(35),
            ..BreakerSpec::default()
        };
        let (b, t0) = breaker(spec);
        trip(&b, t0);
        let mut at = t0;
        let mut expected = 10;
        for (round, next) in [(1, 20), (2, 35), (3, 35)] {
            at += secs(expected);
            assert!(probe(&b, at).is_some(), "round {round}");
            assert!(probe(&b, at).is_none());
            assert_eq!(b.record(at, Outcome::Success, true), None);
            let t = b.record(at, Outcome::Failure, true).expect("reopens");
            assert_eq!((t.from, t.to), (BreakerState::HalfOpen, BreakerState::Open));
            assert_eq!(
                t.reason,
                format!("probe failed after 1 of 3 succeeded; open for {next}s (was {expected}s)")
            );
            // The other probe's late result changes nothing.
            assert_eq!(b.record(at, Outcome::Failure, true), None);
            assert_eq!(
                b.admit(at + secs(next) - Duration::from_millis(1)),
                Admit::Reject {
                    retry_after: Duration::from_millis(1)
                }
            );
            expected = next;
        }
        // Closing resets the period: the next trip is open for 10 s again.
        at += secs(expected);
        probe(&b, at);
        for _ in 0..3 {
            b.record(at, Outcome::Success, true);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        trip(&b, at);
        assert_eq!(
            b.admit(at),
            Admit::Reject {
                retry_after: secs(10)
            }
        );
        assert_eq!(b.counters().trips, 5);
    }

    #[test]
    fn lost_probes_do_not_wedge_half_open() {
        let (b, t0) = breaker(BreakerSpec::default());
        trip(&b, t0);
        let t = t0 + secs(10);
        for _ in 0..3 {
            probe(&b, t);
        }
        assert!(matches!(b.admit(t + secs(9)), Admit::Reject { .. }));
        // No probe reported within open_for: a new round starts.
        assert!(probe(&b, t + secs(10)).is_none());
        assert_eq!(b.state(), BreakerState::HalfOpen);
    }

    #[test]
    fn invalid_specs_are_refused() {
        for (spec, field) in [
            (
                BreakerSpec {
                    failure_rate: 0.0,
                    ..BreakerSpec::default()
                },
                "breaker.failure_rate",
            ),
            (
                BreakerSpec {
                    failure_rate: 1.5,
                    ..BreakerSpec::default()
                },
                "breaker.failure_rate",
            ),
            (
                BreakerSpec {
                    half_open_probes: 0,
                    ..BreakerSpec::default()
                },
                "breaker.half_open_probes",
            ),
            (
                BreakerSpec {
                    max_open_for: secs(1),
                    ..BreakerSpec::default()
                },
                "breaker.max_open_for",
            ),
        ] {
            assert_eq!(Breaker::new(spec).unwrap_err().field, field);
        }
    }
}
