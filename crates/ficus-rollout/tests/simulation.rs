//! Simulated rollouts with a seeded generator: the judge is asked every few requests, as the
//! controller will ask it every tick, and must keep false rollbacks rare while catching a
//! real regression within a couple of hundred requests.
//!
//! Run with `--nocapture` to see the measured rates and delays.

mod support;

use ficus_rollout::{
    judge, Decision, ErrorGate, Gates, LatencyGate, Observed, SideWindow, StepSpec, Window,
};
use std::time::Duration;
use support::{fine_index, layout, Rng, FINE_BUCKETS};

/// A step that never promotes, so that only rollbacks end a run.
fn endless() -> StepSpec {
    StepSpec {
        min_requests: u64::MAX,
        interval: Duration::from_secs(1 << 40),
    }
}

fn error_gates() -> Gates {
    Gates {
        error: Some(ErrorGate::default()),
        latency: None,
        shadow: None,
    }
}

struct ErrorScenario {
    legacy_rate: f64,
    modern_rate: f64,
    /// Legacy requests per modern request (1 at 50 % weight, 19 at 5 %).
    legacy_per_modern: u64,
    check_every: u64,
    max_modern: u64,
}

/// One run: the modern request count at the first rollback, if any.
fn error_run(s: &ErrorScenario, seed: u64, naive: bool) -> Option<u64> {
    let mut rng = Rng::new(seed);
    let (mut m, mut l) = (SideWindow::default(), SideWindow::default());
    let gates = error_gates();
    while m.requests < s.max_modern {
        for _ in 0..s.check_every {
            m.requests += 1;
            m.errors += u64::from(rng.bernoulli(s.modern_rate));
            for _ in 0..s.legacy_per_modern {
                l.requests += 1;
                l.errors += u64::from(rng.bernoulli(s.legacy_rate));
            }
        }
        let rollback = if naive {
            naive_z_test(&m, &l)
        } else {
            let w = Window {
                legacy: l.clone(),
                modern: m.clone(),
                ..Window::default()
            };
            judge(&endless(), &gates, &w).decision == Decision::Rollback
        };
        if rollback {
            return Some(m.requests);
        }
    }
    None
}

/// What the judge must not do: a fixed-sample one-sided z test at 1 % against the point
/// estimate of the limit, repeated at every check.
fn naive_z_test(m: &SideWindow, l: &SideWindow) -> bool {
    let pm = m.errors as f64 / m.requests as f64;
    let pl = l.errors as f64 / l.requests as f64;
    let limit = (pl + 0.01).max(pl * 1.5);
    let se = (pm * (1.0 - pm) / m.requests as f64 + pl * (1.0 - pl) / l.requests as f64).sqrt();
    se > 0.0 && (pm - limit) / se > 2.326
}

fn false_alarms(s: &ErrorScenario, runs: u64, naive: bool) -> u64 {
    (0..runs)
        .filter(|seed| error_run(s, seed + 1, naive).is_some())
        .count() as u64
}

fn at_limit(legacy_rate: f64, modern_rate: f64, legacy_per_modern: u64) -> ErrorScenario {
    ErrorScenario {
        legacy_rate,
        modern_rate,
        legacy_per_modern,
        check_every: 100,
        max_modern: 10_000,
    }
}

#[test]
fn errors_at_the_limit_rarely_roll_back_when_checked_every_100_requests() {
    // Modern exactly at the limit (alpha = 1 %), 500 runs of 10,000 modern requests, checked
    // 100 times each. The bound allows at most 1 %; we accept up to 2 % of runs (10).
    let cases = [
        (
            "legacy 1 %, modern 2 % (absolute limit), 50 % weight",
            at_limit(0.01, 0.02, 1),
        ),
        (
            "legacy 1 %, modern 2 %, 10 % weight",
            at_limit(0.01, 0.02, 9),
        ),
        (
            "legacy 0 %, modern 1 % (absolute limit only)",
            at_limit(0.0, 0.01, 1),
        ),
        (
            "legacy 10 %, modern 15 % (relative limit)",
            at_limit(0.10, 0.15, 1),
        ),
    ];
    for (name, s) in cases {
        let fa = false_alarms(&s, 500, false);
        eprintln!(
            "false rollbacks, {name}: {fa} of 500 runs ({:.1} %)",
            fa as f64 / 5.0
        );
        assert!(fa <= 10, "{name}: {fa} false rollbacks in 500 runs");
    }
}

#[test]
fn the_harness_catches_a_test_that_is_not_sequential() {
    // The same schedule with a fixed-sample z test: repeated looks inflate its nominal 1 %.
    // If this stopped failing often, the simulation above would prove nothing.
    let fa = false_alarms(&at_limit(0.01, 0.02, 1), 500, true);
    eprintln!(
        "naive repeated z test at the limit: {fa} of 500 runs ({:.1} %)",
        fa as f64 / 5.0
    );
    assert!(fa > 15, "naive test: only {fa} false alarms in 500 runs");
}

fn delays(s: &ErrorScenario, runs: u64) -> Vec<u64> {
    let mut d: Vec<u64> = (0..runs)
        .map(|seed| error_run(s, 1_000 + seed, false).unwrap_or(u64::MAX))
        .collect();
    d.sort_unstable();
    d
}

fn pct(d: &[u64], q: f64) -> u64 {
    d[((d.len() - 1) as f64 * q).round() as usize]
}

#[test]
fn thirty_percent_errors_roll_back_within_about_200_modern_requests() {
    // (check every, legacy per modern, slowest p95 allowed, slowest run allowed). At 50 %
    // weight legacy has as little data as modern: its upper bound stays wide for a while
    // (0 of 50 only rules out rates above ~15 %), and the relative limit multiplies it, so
    // detection takes longer than at 5 % weight, where legacy's rate is known at once.
    let cases = [
        (10, 1, 200, 250),
        (100, 1, 200, 300),
        (10, 19, 60, 100),
        (100, 19, 100, 100),
    ];
    for (every, legacy_per_modern, p95, max) in cases {
        let s = ErrorScenario {
            legacy_rate: 0.01,
            modern_rate: 0.30,
            legacy_per_modern,
            check_every: every,
            max_modern: 10_000,
        };
        let d = delays(&s, 500);
        eprintln!(
            "30 % vs 1 %, checked every {every}, legacy x{legacy_per_modern}: rollback after \
             median {} / p95 {} / max {} modern requests",
            pct(&d, 0.5),
            pct(&d, 0.95),
            pct(&d, 1.0)
        );
        assert!(pct(&d, 0.95) <= p95, "p95 detection {}", pct(&d, 0.95));
        assert!(pct(&d, 1.0) <= max, "slowest detection {}", pct(&d, 1.0));
    }
}

#[test]
fn a_modest_regression_is_caught_within_the_step() {
    // 5 % against a 2 % limit.
    let s = ErrorScenario {
        legacy_rate: 0.01,
        modern_rate: 0.05,
        legacy_per_modern: 4,
        check_every: 50,
        max_modern: 10_000,
    };
    let d = delays(&s, 300);
    eprintln!(
        "5 % vs 1 % (limit 2 %), checked every 50: rollback after median {} / p95 {} modern \
         requests",
        pct(&d, 0.5),
        pct(&d, 0.95)
    );
    assert!(pct(&d, 0.95) <= 2_000, "p95 {}", pct(&d, 0.95));
}

/// Latency runs: log-normal latencies, a critical latency gate, checks every `every` modern
/// requests from the 20th on. Returns the modern count at the first rollback.
fn latency_run(seed: u64, modern_median_us: f64, every: u64, max_modern: u64) -> Option<u64> {
    let modern = lognormal(modern_median_us, 0.5);
    latency_run_with(
        seed,
        &modern,
        LatencyGate::default(),
        every,
        max_modern,
        &mut false,
    )
}

/// [`latency_run`] with any modern latency against legacy's log-normal 20 ms (four legacy
/// requests per modern one) and any latency gate, also telling whether the rank test alone
/// ever reached `alpha / 10`.
fn latency_run_with(
    seed: u64,
    modern: Latency<'_>,
    gate: LatencyGate,
    every: u64,
    max_modern: u64,
    rank_alone: &mut bool,
) -> Option<u64> {
    let mut rng = Rng::new(seed);
    let gates = Gates {
        error: None,
        latency: Some(gate),
        shadow: None,
    };
    let bounds = layout();
    let (mut mh, mut lh) = (vec![0u64; FINE_BUCKETS], vec![0u64; FINE_BUCKETS]);
    let mut n = 0;
    while n < max_modern {
        for _ in 0..every {
            n += 1;
            mh[fine_index(modern(&mut rng))] += 1;
            for _ in 0..4 {
                lh[fine_index(rng.latency_us(20_000.0, 0.5))] += 1;
            }
        }
        let w = Window {
            legacy: SideWindow {
                requests: 4 * n,
                errors: 0,
                latency: lh.clone(),
            },
            modern: SideWindow {
                requests: n,
                errors: 0,
                latency: mh.clone(),
            },
            shadow: None,
            elapsed_in_step: Duration::from_secs(n),
            bucket_lower_us: bounds.clone(),
        };
        let v = judge(&endless(), &gates, &w);
        if v.gates
            .iter()
            .any(|g| matches!(&g.observed, Observed::LatencyRank(r) if r.p_value < r.confirm_alpha))
        {
            *rank_alone = true;
        }
        if v.decision == Decision::Rollback {
            return Some(n);
        }
    }
    None
}

/// Rollbacks and runs in which the rank test alone reached `alpha / 10`, of 500 runs checked
/// every 20 modern requests up to 2,000 (100 looks each).
fn false_latency_alarms(modern: Latency<'_>, gate: &LatencyGate) -> (usize, usize) {
    let (mut fa, mut rank_alone) = (0, 0);
    for seed in 0..500 {
        let mut alone = false;
        let run = latency_run_with(seed + 1, modern, gate.clone(), 20, 2_000, &mut alone);
        fa += usize::from(run.is_some());
        rank_alone += usize::from(alone);
    }
    (fa, rank_alone)
}

#[test]
fn identical_latencies_rarely_roll_back_when_checked_often() {
    // The plain rank test (no effect size, no delta: "is modern slower at all"), so that
    // identical distributions are exactly its null hypothesis.
    let plain = LatencyGate {
        min_delta: Duration::ZERO,
        min_effect: 1.0,
        ..LatencyGate::default()
    };
    let (fa, rank_alone) = false_latency_alarms(&lognormal(20_000.0, 0.5), &plain);
    eprintln!(
        "false latency rollbacks, identical distributions, plain rank test: {fa} of 500 runs; \
         the rank test alone reached alpha/10 in {rank_alone} runs"
    );
    assert!(fa <= 10, "{fa} false rollbacks in 500 runs");
    // Even the rank test alone, looked at 100 times, stays near its nominal alpha (1 %):
    // the divisor of 10 pays for the repeated looks.
    assert!(
        rank_alone <= 10,
        "rank test alone: {rank_alone} of 500 runs"
    );
}

#[test]
fn a_modern_exactly_at_the_practical_limit_rarely_rolls_back() {
    // The default gate's null hypothesis at its edge: every modern request takes what a
    // legacy one would, raised to max(x 1.1, x + 5 ms). The raised rank test must keep its
    // nominal alpha there, as the plain one does for identical distributions.
    let gate = LatencyGate::default();
    let delta = gate.min_delta.as_micros() as f64;
    let at_limit = move |rng: &mut Rng| {
        let x = rng.latency_us(20_000.0, 0.5) as f64;
        (x * 1.1).max(x + delta) as u64
    };
    let (fa, rank_alone) = false_latency_alarms(&at_limit, &gate);
    eprintln!(
        "latency rollbacks, modern at max(legacy x 1.1, legacy + 5 ms): {fa} of 500 runs; the \
         rank test alone reached alpha/10 in {rank_alone} runs"
    );
    assert!(fa <= 10, "{fa} rollbacks in 500 runs");
    assert!(
        rank_alone <= 10,
        "rank test alone: {rank_alone} of 500 runs"
    );
}

#[test]
fn a_tripled_latency_rolls_back_within_a_few_dozen_requests() {
    // Modern 3x slower on 20 ms, the default gate (5 ms minimum difference): rolled back in
    // every run. Main's judge before the minimum difference: median 20, slowest 80.
    let mut d: Vec<u64> = (0..200)
        .map(|seed| latency_run(5_000 + seed, 60_000.0, 20, 2_000).unwrap_or(u64::MAX))
        .collect();
    d.sort_unstable();
    eprintln!(
        "latency x3, checked every 20: rollback after median {} / max {} modern requests",
        pct(&d, 0.5),
        pct(&d, 1.0)
    );
    assert!(pct(&d, 0.5) <= 20, "median detection {}", pct(&d, 0.5));
    assert!(pct(&d, 1.0) <= 100, "slowest detection {}", pct(&d, 1.0));
}

// ---- practical significance: whole rollouts with both default gates -------------------------

/// One request's latency in microseconds.
type Latency<'a> = &'a dyn Fn(&mut Rng) -> u64;

/// A canary step under the recommended gates (error and latency, both critical): each modern
/// request comes with `legacy_per_modern` legacy ones (9 at 10 % weight, 1 at 50 %) and the
/// judge is asked every `every` modern requests, as the controller asks it every tick.
struct Step<'a> {
    legacy: Latency<'a>,
    modern: Latency<'a>,
    legacy_errors: f64,
    modern_errors: f64,
    legacy_per_modern: u64,
    every: u64,
    max_modern: u64,
}

/// How a run ended in a rollback: modern requests and looks so far, and the confirmed gates.
struct Stopped {
    modern: u64,
    looks: u64,
    confirmed: Vec<&'static str>,
}

fn step_run(s: &Step<'_>, seed: u64) -> Option<Stopped> {
    let mut rng = Rng::new(seed);
    let gates = Gates::recommended();
    let bounds = layout();
    let (mut m, mut l) = (
        SideWindow {
            latency: vec![0; FINE_BUCKETS],
            ..SideWindow::default()
        },
        SideWindow {
            latency: vec![0; FINE_BUCKETS],
            ..SideWindow::default()
        },
    );
    let mut looks = 0;
    while m.requests < s.max_modern {
        for _ in 0..s.every {
            m.requests += 1;
            m.errors += u64::from(rng.bernoulli(s.modern_errors));
            m.latency[fine_index((s.modern)(&mut rng))] += 1;
            for _ in 0..s.legacy_per_modern {
                l.requests += 1;
                l.errors += u64::from(rng.bernoulli(s.legacy_errors));
                l.latency[fine_index((s.legacy)(&mut rng))] += 1;
            }
        }
        looks += 1;
        let w = Window {
            legacy: l.clone(),
            modern: m.clone(),
            shadow: None,
            elapsed_in_step: Duration::from_secs(looks),
            bucket_lower_us: bounds.clone(),
        };
        let v = judge(&endless(), &gates, &w);
        if v.decision == Decision::Rollback {
            let confirmed = v
                .gates
                .iter()
                .filter(|g| g.confirmed)
                .map(|g| g.gate)
                .collect();
            return Some(Stopped {
                modern: m.requests,
                looks,
                confirmed,
            });
        }
    }
    None
}

/// A log-normal latency with this median (us) and shape.
fn lognormal(median_us: f64, sigma: f64) -> impl Fn(&mut Rng) -> u64 {
    move |rng: &mut Rng| rng.latency_us(median_us, sigma)
}

/// A loopback service on a busy shared machine, as `bench/rollback.sh` sees one: a body of
/// `median_us` (shape 0.25) and, for a `stalled` share of requests, a scheduling stall of
/// exponentially distributed length with mean `stall_us`.
fn loopback(median_us: f64, stalled: f64, stall_us: f64) -> impl Fn(&mut Rng) -> u64 {
    move |rng: &mut Rng| {
        let mut us = rng.latency_us(median_us, 0.25);
        if rng.bernoulli(stalled) {
            us += (-stall_us * (1.0 - rng.uniform()).ln()) as u64;
        }
        us
    }
}

#[test]
fn healthy_canaries_with_a_small_real_difference_are_never_rolled_back() {
    // Modern really is slower in each case, by a margin nobody can feel, and over enough
    // requests the rank test finds it with p far below any alpha. 500 runs each, judged every
    // tick (20 modern requests at 10 % weight, 200 at 50 %), 100 looks per run.
    let fast = loopback(300.0, 0.01, 300.0);
    let fast_plus = |rng: &mut Rng| fast(rng) + 100;
    let jittery = loopback(400.0, 0.05, 1_000.0);
    let fifty = lognormal(50_000.0, 0.5);
    let fifty_plus = |rng: &mut Rng| fifty(rng) * 102 / 100;
    let one = lognormal(1_000.0, 0.5);
    let one_slower = |rng: &mut Rng| one(rng) * 16 / 10;
    let cases: [(&str, Step<'_>); 4] = [
        (
            "+0.1 ms on 0.3 ms, 10 % weight",
            Step {
                legacy: &fast,
                modern: &fast_plus,
                legacy_errors: 0.0,
                modern_errors: 0.0,
                legacy_per_modern: 9,
                every: 20,
                max_modern: 2_000,
            },
        ),
        (
            "+0.1 ms on 0.3 ms with 5 % of modern's requests stalled ~1 ms (the bench's \
             warm-up: median x1.3, p99 x2-3), 10 % weight",
            Step {
                legacy: &fast,
                modern: &jittery,
                legacy_errors: 0.0,
                modern_errors: 0.0,
                legacy_per_modern: 9,
                every: 20,
                max_modern: 2_000,
            },
        ),
        (
            "+2 % on 50 ms, 10 % weight",
            Step {
                legacy: &fifty,
                modern: &fifty_plus,
                legacy_errors: 0.0,
                modern_errors: 0.0,
                legacy_per_modern: 9,
                every: 20,
                max_modern: 2_000,
            },
        ),
        (
            "x1.6 on 1 ms (+0.6 ms median, +1.3 ms p99), 50 % weight, 20,000 requests a side",
            Step {
                legacy: &one,
                modern: &one_slower,
                legacy_errors: 0.0,
                modern_errors: 0.0,
                legacy_per_modern: 1,
                every: 200,
                max_modern: 20_000,
            },
        ),
    ];
    let mut failures = Vec::new();
    for (name, s) in &cases {
        let stops: Vec<Stopped> = (0..500)
            .filter_map(|seed| step_run(s, 7_000 + seed))
            .collect();
        let latency = stops
            .iter()
            .filter(|s| s.confirmed.iter().any(|g| g.starts_with("latency")))
            .count();
        eprintln!(
            "healthy, {name}: rolled back in {} of 500 runs ({latency} on latency)",
            stops.len()
        );
        if !stops.is_empty() {
            failures.push(format!("{name}: {} of 500", stops.len()));
        }
    }
    assert!(failures.is_empty(), "false rollbacks: {failures:?}");
}

#[test]
fn thirty_percent_errors_roll_back_as_fast_with_the_latency_gate_on() {
    // The recommended gates (the bench's and the default config's), both sides with the same
    // latency: the latency gate must not slow the error gate down. (every, legacy per modern,
    // median, p95 and slowest modern requests to rollback, as measured with main's judge
    // before the latency gate learnt practical significance; 500 runs.)
    let same = loopback(300.0, 0.01, 300.0);
    let cases = [
        // The bench's shape: 10 % weight at 200 req/s, judged every 1 s tick.
        (20, 9, 40, 80, 100),
        (10, 1, 110, 170, 230),
        (100, 1, 200, 200, 300),
        (10, 19, 30, 50, 90),
        (100, 19, 100, 100, 100),
    ];
    let mut slower = Vec::new();
    for (every, legacy_per_modern, median, p95, max) in cases {
        let s = Step {
            legacy: &same,
            modern: &same,
            legacy_errors: 0.01,
            modern_errors: 0.30,
            legacy_per_modern,
            every,
            max_modern: 10_000,
        };
        let runs: Vec<Option<Stopped>> = (0..500).map(|seed| step_run(&s, 1_000 + seed)).collect();
        for r in runs.iter().flatten() {
            assert_eq!(r.confirmed, ["error-rate"], "only the error gate confirms");
        }
        let mut d: Vec<u64> = runs
            .iter()
            .map(|r| r.as_ref().map_or(u64::MAX, |r| r.modern))
            .collect();
        d.sort_unstable();
        let looks: Vec<u64> = runs.iter().flatten().map(|r| r.looks).collect();
        eprintln!(
            "30 % vs 1 %, recommended gates, checked every {every}, legacy x{legacy_per_modern}: \
             rollback after median {} / p95 {} / max {} modern requests ({} to {} looks)",
            pct(&d, 0.5),
            pct(&d, 0.95),
            pct(&d, 1.0),
            looks.iter().min().unwrap_or(&0),
            looks.iter().max().unwrap_or(&0),
        );
        if pct(&d, 0.5) > median || pct(&d, 0.95) > p95 || pct(&d, 1.0) > max {
            slower.push(format!(
                "every {every}, legacy x{legacy_per_modern}: median {} / p95 {} / max {}, was \
                 {median} / {p95} / {max}",
                pct(&d, 0.5),
                pct(&d, 0.95),
                pct(&d, 1.0)
            ));
        }
    }
    assert!(slower.is_empty(), "slower than main's judge: {slower:?}");
}
