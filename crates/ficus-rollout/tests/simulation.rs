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
    latency_run_with(seed, modern_median_us, every, max_modern, &mut false)
}

/// [`latency_run`], also telling whether the rank test alone ever reached `alpha / 10`.
fn latency_run_with(
    seed: u64,
    modern_median_us: f64,
    every: u64,
    max_modern: u64,
    rank_alone: &mut bool,
) -> Option<u64> {
    let mut rng = Rng::new(seed);
    let gates = Gates {
        error: None,
        latency: Some(LatencyGate::default()),
        shadow: None,
    };
    let bounds = layout();
    let (mut mh, mut lh) = (vec![0u64; FINE_BUCKETS], vec![0u64; FINE_BUCKETS]);
    let mut n = 0;
    while n < max_modern {
        for _ in 0..every {
            n += 1;
            mh[fine_index(rng.latency_us(modern_median_us, 0.5))] += 1;
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

#[test]
fn identical_latencies_rarely_roll_back_when_checked_often() {
    // 500 runs, checked every 20 modern requests up to 2,000 (100 looks each).
    let (mut fa, mut rank_alone) = (0, 0);
    for seed in 0..500 {
        let mut alone = false;
        fa += usize::from(latency_run_with(seed + 1, 20_000.0, 20, 2_000, &mut alone).is_some());
        rank_alone += usize::from(alone);
    }
    eprintln!(
        "false latency rollbacks, identical distributions: {fa} of 500 runs; the rank test \
         alone reached alpha/10 in {rank_alone} runs"
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
fn a_tripled_latency_rolls_back_within_a_few_dozen_requests() {
    let mut d: Vec<u64> = (0..200)
        .map(|seed| latency_run(5_000 + seed, 60_000.0, 20, 2_000).unwrap_or(u64::MAX))
        .collect();
    d.sort_unstable();
    eprintln!(
        "latency x3, checked every 20: rollback after median {} / max {} modern requests",
        pct(&d, 0.5),
        pct(&d, 1.0)
    );
    assert!(pct(&d, 1.0) <= 100, "slowest detection {}", pct(&d, 1.0));
}
