//! The judge on synthetic windows: every branch of the decision, the edge cases (empty
//! windows, ties, tiny samples, zero legacy errors) and the evidence it serializes.

mod support;

use ficus_rollout::{
    judge, Decision, ErrorGate, GateResult, Gates, LatencyGate, Observed, Outcome, ShadowGate,
    ShadowWindow, StepSpec, Verdict, Window, ERROR_RATE, LATENCY_P99, LATENCY_RANK,
    MIN_CONFIRM_EVENTS, SHADOW_DIFF,
};
use std::time::Duration;
use support::{side, spread, window};

fn spec() -> StepSpec {
    StepSpec {
        min_requests: 500,
        interval: Duration::from_secs(300),
    }
}

/// Legacy: 10,000 requests, 1 % errors, 10-30 ms. Modern: 1,000 requests at the same rate
/// and latency. Six and a half minutes into a five-minute step.
fn healthy() -> Window {
    window(
        side(10_000, 100, &spread(10_000, 10_000, 30_000)),
        side(1_000, 10, &spread(1_000, 10_000, 30_000)),
        400,
    )
}

fn gate<'a>(v: &'a Verdict, name: &str) -> &'a GateResult {
    v.gates
        .iter()
        .find(|g| g.gate == name)
        .unwrap_or_else(|| panic!("no gate {name} in {v:#?}"))
}

fn error_only(critical: bool) -> Gates {
    Gates {
        error: Some(ErrorGate {
            critical,
            ..ErrorGate::default()
        }),
        latency: None,
        shadow: None,
    }
}

#[test]
fn promotes_when_every_gate_passes_with_enough_data_and_time() {
    let v = judge(&spec(), &Gates::recommended(), &healthy());
    assert_eq!(v.decision, Decision::Promote, "{}", v.reason);
    assert_eq!(v.missing, None);
    let names: Vec<&str> = v.gates.iter().map(|g| g.gate).collect();
    assert_eq!(names, [ERROR_RATE, LATENCY_P99, LATENCY_RANK]);
    assert!(v
        .gates
        .iter()
        .all(|g| g.outcome == Outcome::Pass && !g.confirmed));
    assert_eq!(
        v.reason,
        "all 3 gates pass with 1000 modern and 10000 legacy requests after 400.0 s in \
         the step"
    );
}

#[test]
fn holds_with_the_missing_requests_and_time() {
    let w = window(
        side(10_000, 100, &spread(10_000, 10_000, 30_000)),
        side(120, 1, &spread(120, 10_000, 30_000)),
        180,
    );
    let v = judge(&spec(), &Gates::recommended(), &w);
    assert_eq!(v.decision, Decision::Hold, "{}", v.reason);
    let m = v
        .missing
        .expect("a hold on missing data says what is missing");
    assert_eq!(m.requests, 380);
    assert_eq!(m.legacy_requests, 0);
    assert_eq!(m.shadow_compared, 0);
    assert_eq!(m.time, Duration::from_secs(120));
    assert_eq!(
        v.reason,
        "needs 380 more modern requests and 120.0 s more in the step"
    );
}

#[test]
fn holds_until_the_interval_is_over_even_when_everything_passes() {
    let mut w = healthy();
    w.elapsed_in_step = Duration::from_secs(299);
    let v = judge(&spec(), &Gates::recommended(), &w);
    assert_eq!(v.decision, Decision::Hold);
    assert_eq!(v.missing.unwrap().time, Duration::from_secs(1));
    w.elapsed_in_step = Duration::from_secs(300);
    assert_eq!(
        judge(&spec(), &Gates::recommended(), &w).decision,
        Decision::Promote
    );
}

#[test]
fn legacy_needs_its_minimum_too() {
    let w = window(
        side(499, 5, &spread(499, 10_000, 30_000)),
        side(1_000, 10, &spread(1_000, 10_000, 30_000)),
        400,
    );
    let v = judge(&spec(), &Gates::recommended(), &w);
    assert_eq!(v.decision, Decision::Hold);
    assert_eq!(v.missing.unwrap().legacy_requests, 1);
}

#[test]
fn rolls_back_on_errors_mid_interval() {
    // 30 % errors against legacy's 1 %, ten seconds into a five-minute step, with a fifth of
    // min_requests: the always-valid bound makes waiting unnecessary.
    let w = window(
        side(2_000, 20, &spread(2_000, 10_000, 30_000)),
        side(100, 30, &spread(100, 10_000, 30_000)),
        10,
    );
    let v = judge(&spec(), &Gates::recommended(), &w);
    assert_eq!(v.decision, Decision::Rollback, "{}", v.reason);
    assert_eq!(v.missing, None);
    let e = gate(&v, ERROR_RATE);
    assert!(e.confirmed && e.outcome == Outcome::Fail);
    let Observed::ErrorRate(ev) = &e.observed else {
        panic!("{:?}", e.observed)
    };
    assert_eq!(ev.modern_rate, Some(0.3));
    assert_eq!(ev.legacy_rate, Some(0.01));
    assert_eq!(ev.limit, Some(0.02));
    assert!(ev.legacy_upper_bound > 0.01 && ev.confirm_limit > 0.02);
    assert!(ev.modern_lower_bound > ev.confirm_limit && ev.modern_lower_bound < 0.3);
    assert!(
        v.reason
            .starts_with("error-rate breached with high confidence after 10.0 s in the step: "),
        "{}",
        v.reason
    );
    assert!(
        v.reason.contains("modern 30.00 % errors (30 of 100)"),
        "{}",
        v.reason
    );
}

#[test]
fn a_couple_of_errors_never_roll_back() {
    // Two of two and four of four modern requests failed: statistically striking against a
    // 2 % limit, but bursts of failures are not independent trials.
    for n in [2, 4] {
        let w = window(side(50_000, 500, &[]), side(n, n, &[]), 5);
        let v = judge(&spec(), &error_only(true), &w);
        assert_eq!(v.decision, Decision::Hold, "{n}: {}", v.reason);
        let e = gate(&v, ERROR_RATE);
        assert_eq!((e.outcome, e.confirmed), (Outcome::Fail, false));
    }
    // Five of five is enough.
    let w = window(side(50_000, 500, &[]), side(5, 5, &[]), 5);
    assert_eq!(
        judge(&spec(), &error_only(true), &w).decision,
        Decision::Rollback
    );
}

#[test]
fn a_legacy_with_few_requests_does_not_confirm() {
    // Modern at 10 % looks far worse than legacy's 0 of 20, but 20 legacy requests cannot
    // rule out a legacy at 10 % too.
    let w = window(side(20, 0, &[]), side(200, 20, &[]), 60);
    let v = judge(&spec(), &error_only(true), &w);
    let e = gate(&v, ERROR_RATE);
    assert_eq!((e.outcome, e.confirmed), (Outcome::Fail, false));
    assert_eq!(v.decision, Decision::Hold);
    // The same modern against 20,000 clean legacy requests is a confirmed breach.
    let w = window(side(20_000, 0, &[]), side(200, 20, &[]), 60);
    assert_eq!(
        judge(&spec(), &error_only(true), &w).decision,
        Decision::Rollback
    );
}

#[test]
fn rolls_back_when_the_whole_latency_distribution_triples() {
    let w = window(
        side(2_000, 20, &spread(2_000, 10_000, 30_000)),
        side(200, 2, &spread(200, 30_000, 90_000)),
        20,
    );
    let v = judge(&spec(), &Gates::recommended(), &w);
    assert_eq!(v.decision, Decision::Rollback, "{}", v.reason);
    assert_eq!(gate(&v, ERROR_RATE).outcome, Outcome::Pass);
    let p99 = gate(&v, LATENCY_P99);
    let Observed::LatencyP99(p) = &p99.observed else {
        panic!()
    };
    let ratio = p.ratio.unwrap();
    assert!((2.7..3.3).contains(&ratio), "p99 tripled: {ratio}");
    let rank = gate(&v, LATENCY_RANK);
    let Observed::LatencyRank(r) = &rank.observed else {
        panic!()
    };
    assert!(r.p_value < 1e-10, "{}", r.p_value);
    assert!(r.median_ratio.unwrap() > 2.5);
    assert!(p99.confirmed && rank.confirmed);
    assert!(
        v.reason.contains("latency-p99 and latency-rank breached"),
        "{}",
        v.reason
    );
}

#[test]
fn a_slow_tail_alone_fails_the_p99_but_only_holds() {
    // Same body, but modern's slowest 3 % take 100 ms: the p99 ratio is far over 1.5, the
    // rank test sees no shift of the distribution, so the breach is not confirmed.
    let legacy = spread(2_000, 10_000, 30_000);
    let mut modern = spread(1_000, 10_000, 30_000);
    for v in modern.iter_mut().rev().take(30) {
        *v = 100_000;
    }
    let w = window(side(2_000, 20, &legacy), side(1_000, 10, &modern), 400);
    let v = judge(&spec(), &Gates::recommended(), &w);
    assert_eq!(v.decision, Decision::Hold, "{}", v.reason);
    let p99 = gate(&v, LATENCY_P99);
    assert_eq!((p99.outcome, p99.confirmed), (Outcome::Fail, false));
    assert_eq!(gate(&v, LATENCY_RANK).outcome, Outcome::Pass);
    assert_eq!(v.missing, None, "nothing countable is missing");
    assert!(
        v.reason
            .starts_with("failing: latency-p99 (p99 103.77 ms vs limit 45.61 ms (ratio"),
        "{}",
        v.reason
    );
    assert!(
        v.reason.contains("critical, not confirmed yet"),
        "{}",
        v.reason
    );
}

/// The recommended gates with a latency gate of pure ratios (no absolute delta, no
/// effect size): the rank test is the plain "is modern slower at all".
fn plain_latency() -> Gates {
    let mut g = Gates::recommended();
    let l = g.latency.as_mut().unwrap();
    l.min_delta = Duration::ZERO;
    l.min_effect = 1.0;
    g
}

fn rank(v: &Verdict) -> &ficus_rollout::RankEvidence {
    match &gate(v, LATENCY_RANK).observed {
        Observed::LatencyRank(r) => r,
        other => panic!("{other:?}"),
    }
}

fn p99(v: &Verdict) -> &ficus_rollout::P99Evidence {
    match &gate(v, LATENCY_P99).observed {
        Observed::LatencyP99(p) => p,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_significant_but_tiny_slowdown_passes_the_rank_test() {
    // 5 % slower everywhere, 20,000 samples a side.
    let w = window(
        side(20_000, 0, &spread(20_000, 10_000, 30_000)),
        side(20_000, 0, &spread(20_000, 10_500, 31_500)),
        400,
    );
    // The plain test finds it, with a p far below alpha...
    let v = judge(&spec(), &plain_latency(), &w);
    assert!(rank(&v).p_value < 1e-6, "significant: {}", rank(&v).p_value);
    assert_eq!(gate(&v, LATENCY_RANK).outcome, Outcome::Fail);
    // ...but against legacy raised by the 1.1 effect (and the 5 ms delta) modern is faster.
    let v = judge(&spec(), &Gates::recommended(), &w);
    assert!(rank(&v).p_value > 0.5, "{}", rank(&v).p_value);
    assert!(rank(&v).median_ratio.unwrap() < 1.1);
    assert_eq!(gate(&v, LATENCY_RANK).outcome, Outcome::Pass);
    assert_eq!(v.decision, Decision::Promote, "{}", v.reason);
}

#[test]
fn a_tenth_of_a_millisecond_between_fast_services_is_no_slowdown() {
    // The warm-up: legacy 0.25-0.35 ms; modern 0.1 ms slower and with a longer tail
    // (its slowest 3 % take 0.9-1.2 ms): median x1.33, p99 about x3, the plain rank test
    // sure of it (p far below 1e-10) with 20,000 samples a side.
    let legacy = spread(20_000, 250, 350);
    let mut modern = spread(20_000, 350, 450);
    for (i, v) in modern.iter_mut().rev().take(600).enumerate() {
        *v = 900 + i as u64 / 2;
    }
    let w = window(side(20_000, 0, &legacy), side(20_000, 0, &modern), 400);
    let plain = judge(&spec(), &plain_latency(), &w);
    assert_eq!(plain.decision, Decision::Rollback, "{}", plain.reason);
    assert!(rank(&plain).p_value < 1e-10);
    assert!(p99(&plain).ratio.unwrap() > 2.5, "{:?}", p99(&plain));

    // With the default 5 ms: both latency gates pass and the step promotes.
    let v = judge(&spec(), &Gates::recommended(), &w);
    assert_eq!(v.decision, Decision::Promote, "{}", v.reason);
    let p = p99(&v);
    assert!(p.ratio.unwrap() > 2.5, "the ratio alone is over 1.5: {p:?}");
    assert!(p.delta_ms.unwrap() < 1.0 && p.min_delta_ms == 5.0, "{p:?}");
    let limit = p.limit_ms.unwrap();
    assert!(
        (limit - (p.legacy_p99_ms.unwrap() + 5.0)).abs() < 1e-9,
        "the delta is the binding limit: {limit}"
    );
    assert!(!p.within_budget && p.max_p99_ms.is_none());
    assert_eq!(gate(&v, LATENCY_P99).outcome, Outcome::Pass);
    assert_eq!(gate(&v, LATENCY_RANK).outcome, Outcome::Pass);
    assert!(rank(&v).p_value > 0.99, "{}", rank(&v).p_value);
    assert!(
        gate(&v, LATENCY_P99)
            .detail
            .contains("within the limit 5.35 ms = max(legacy x 1.5, legacy + 5.00 ms)"),
        "{}",
        gate(&v, LATENCY_P99).detail
    );
}

#[test]
fn min_delta_is_the_smallest_slowdown_that_counts() {
    // Legacy 1-3 ms, modern 3-7 ms: more than twice as slow, by about 3 ms at the median
    // and 4 ms at the p99.
    let w = window(
        side(5_000, 0, &spread(5_000, 1_000, 3_000)),
        side(1_000, 0, &spread(1_000, 3_000, 7_000)),
        400,
    );
    // Under the default 5 ms: not a slowdown anyone feels.
    let v = judge(&spec(), &Gates::recommended(), &w);
    assert_eq!(v.decision, Decision::Promote, "{}", v.reason);
    assert!(p99(&v).ratio.unwrap() > 2.0);
    let d = p99(&v).delta_ms.unwrap();
    assert!((3.5..5.0).contains(&d), "{d}");
    // For a service called many times per user request, 2 ms: rolled back, by both gates.
    let mut gates = Gates::recommended();
    gates.latency.as_mut().unwrap().min_delta = Duration::from_millis(2);
    let v = judge(&spec(), &gates, &w);
    assert_eq!(v.decision, Decision::Rollback, "{}", v.reason);
    assert!(gate(&v, LATENCY_P99).confirmed && gate(&v, LATENCY_RANK).confirmed);
    assert_eq!(p99(&v).min_delta_ms, 2.0);
    // The ratio still counts too: the same +4 ms on a 100-300 ms legacy is within x1.5.
    let w = window(
        side(5_000, 0, &spread(5_000, 100_000, 300_000)),
        side(1_000, 0, &spread(1_000, 104_000, 304_000)),
        400,
    );
    let v = judge(&spec(), &gates, &w);
    assert_eq!(v.decision, Decision::Promote, "{}", v.reason);
}

#[test]
fn a_modern_within_max_p99_always_passes_the_latency_gate() {
    // Modern three times slower (30-90 ms against 10-30 ms): rolled back by default...
    let w = window(
        side(2_000, 0, &spread(2_000, 10_000, 30_000)),
        side(1_000, 0, &spread(1_000, 30_000, 90_000)),
        400,
    );
    assert_eq!(
        judge(&spec(), &Gates::recommended(), &w).decision,
        Decision::Rollback
    );
    // ...but its p99 (about 89 ms) is within a 250 ms budget: both gates pass.
    let mut gates = Gates::recommended();
    gates.latency.as_mut().unwrap().max_p99 = Some(Duration::from_millis(250));
    let v = judge(&spec(), &gates, &w);
    assert_eq!(v.decision, Decision::Promote, "{}", v.reason);
    assert!(p99(&v).within_budget && rank(&v).within_budget);
    assert_eq!(p99(&v).max_p99_ms, Some(250.0));
    assert!(
        rank(&v).p_value < 1e-10,
        "still significant: {}",
        rank(&v).p_value
    );
    for name in [LATENCY_P99, LATENCY_RANK] {
        let g = gate(&v, name);
        assert_eq!((g.outcome, g.confirmed), (Outcome::Pass, false), "{name}");
        assert!(
            g.detail.contains("is within the budget max_p99 250.00 ms"),
            "{}",
            g.detail
        );
    }
    // A budget the p99 is over changes nothing.
    gates.latency.as_mut().unwrap().max_p99 = Some(Duration::from_millis(50));
    let v = judge(&spec(), &gates, &w);
    assert_eq!(v.decision, Decision::Rollback, "{}", v.reason);
    assert!(!p99(&v).within_budget);
    // And no data is still no data: 10 samples under budget stay inconclusive.
    gates.latency.as_mut().unwrap().max_p99 = Some(Duration::from_millis(250));
    let w = window(
        side(2_000, 0, &spread(2_000, 10_000, 30_000)),
        side(10, 0, &spread(10, 30_000, 90_000)),
        400,
    );
    let v = judge(&spec(), &gates, &w);
    assert_eq!(gate(&v, LATENCY_P99).outcome, Outcome::Inconclusive);
    assert_eq!(gate(&v, LATENCY_RANK).outcome, Outcome::Inconclusive);
    assert_eq!(v.decision, Decision::Hold);
}

#[test]
fn one_or_two_errors_never_roll_back_a_healthy_modern_at_any_traffic() {
    // Legacy at 0 errors, modern with one or two (up to four): whatever the traffic on either
    // side, whatever the (valid) limits, never a rollback. Bursts are not independent trials.
    let levels = [
        1,
        2,
        3,
        4,
        5,
        10,
        50,
        100,
        1_000,
        100_000,
        10_000_000,
        u64::MAX / 4,
    ];
    let strict = ErrorGate {
        max_absolute: 0.0001,
        max_relative: 1.0,
        alpha: 0.5,
        critical: true,
    };
    for gate_under_test in [ErrorGate::default(), strict] {
        let gates = Gates {
            error: Some(gate_under_test.clone()),
            latency: None,
            shadow: None,
        };
        for modern in levels {
            for legacy in std::iter::once(0).chain(levels) {
                for errors in 1..MIN_CONFIRM_EVENTS {
                    let w = window(side(legacy, 0, &[]), side(modern, errors, &[]), 5);
                    let v = judge(&spec(), &gates, &w);
                    assert_ne!(
                        v.decision,
                        Decision::Rollback,
                        "{errors} errors of {modern} against 0 of {legacy}: {}",
                        v.reason
                    );
                    assert!(!gate(&v, ERROR_RATE).confirmed);
                }
            }
        }
        // The floor is the only thing in the way: five errors of five roll back.
        let w = window(side(100_000, 0, &[]), side(5, 5, &[]), 5);
        assert_eq!(judge(&spec(), &gates, &w).decision, Decision::Rollback);
    }
}

#[test]
fn a_non_critical_failure_holds_even_when_confirmed() {
    let w = window(
        side(10_000, 100, &spread(10_000, 10_000, 30_000)),
        side(1_000, 300, &spread(1_000, 10_000, 30_000)),
        400,
    );
    let mut gates = Gates::recommended();
    gates.error.as_mut().unwrap().critical = false;
    let v = judge(&spec(), &gates, &w);
    assert_eq!(v.decision, Decision::Hold, "{}", v.reason);
    let e = gate(&v, ERROR_RATE);
    assert!(e.confirmed && !e.critical && e.outcome == Outcome::Fail);
    assert!(
        v.reason.contains(
            "failing: error-rate (modern 30.00 % vs limit 2.00 %; non-critical, confirmed)"
        ),
        "{}",
        v.reason
    );
}

#[test]
fn an_inconclusive_gate_holds() {
    let mut w = healthy();
    w.shadow = Some(ShadowWindow {
        compared: 40,
        differing_rate: 0.0,
    });
    let mut gates = Gates::recommended();
    gates.shadow = Some(ShadowGate::default());
    let v = judge(&spec(), &gates, &w);
    assert_eq!(v.decision, Decision::Hold, "{}", v.reason);
    assert_eq!(gate(&v, SHADOW_DIFF).outcome, Outcome::Inconclusive);
    assert_eq!(v.missing.as_ref().unwrap().shadow_compared, 60);
    assert!(
        v.reason.contains("needs 60 more shadow comparisons"),
        "{}",
        v.reason
    );
    assert!(
        v.reason.contains("inconclusive: shadow-diff"),
        "{}",
        v.reason
    );
}

#[test]
fn empty_windows_hold_and_say_what_is_missing() {
    let w = Window::default();
    let v = judge(&spec(), &Gates::recommended(), &w);
    assert_eq!(v.decision, Decision::Hold);
    assert!(
        v.gates.iter().all(|g| g.outcome == Outcome::Inconclusive),
        "{v:#?}"
    );
    let m = v.missing.clone().unwrap();
    assert_eq!((m.requests, m.legacy_requests), (500, 500));
    assert_eq!(m.time, Duration::from_secs(300));
    let Observed::ErrorRate(e) = &gate(&v, ERROR_RATE).observed else {
        panic!()
    };
    // No data is not 0 % errors.
    assert_eq!((e.modern_rate, e.legacy_rate, e.limit), (None, None, None));
    assert_eq!((e.modern_lower_bound, e.legacy_upper_bound), (0.0, 1.0));
    assert!(support::numbers(&v).iter().all(|x| x.is_finite()));

    // Even with min_requests 0, no gates and the interval over, no data does not promote.
    let lax = StepSpec {
        min_requests: 0,
        interval: Duration::ZERO,
    };
    let v = judge(&lax, &Gates::default(), &w);
    assert_eq!(v.decision, Decision::Hold);
    assert_eq!(v.missing.unwrap().requests, 1);
}

#[test]
fn zero_requests_on_one_side() {
    // Legacy silent (as at 100 % weight without a baseline): nothing to compare with.
    let mut w = healthy();
    w.legacy = Default::default();
    let v = judge(&spec(), &Gates::recommended(), &w);
    assert_eq!(v.decision, Decision::Hold);
    let e = gate(&v, ERROR_RATE);
    assert_eq!((e.outcome, e.confirmed), (Outcome::Inconclusive, false));
    assert!(e.detail.contains("legacy baseline"), "{}", e.detail);
    assert_eq!(gate(&v, LATENCY_P99).outcome, Outcome::Inconclusive);
    // Even a modern failing every request cannot be confirmed against no legacy.
    w.modern.errors = w.modern.requests;
    assert_eq!(
        judge(&spec(), &Gates::recommended(), &w).decision,
        Decision::Hold
    );

    let mut w = healthy();
    w.modern = Default::default();
    let v = judge(&spec(), &Gates::recommended(), &w);
    assert_eq!(v.decision, Decision::Hold);
    assert_eq!(gate(&v, ERROR_RATE).detail, "no modern requests yet");
}

#[test]
fn identical_histograms_are_a_tie() {
    // Without an effect size or delta the rank test compares the histograms as they are.
    let h = spread(600, 5_000, 50_000);
    let w = window(side(600, 0, &h), side(600, 0, &h), 400);
    let v = judge(&spec(), &plain_latency(), &w);
    let r = rank(&v);
    assert_eq!(r.u, 600.0 * 600.0 / 2.0);
    assert_eq!(r.u, r.u_expected);
    assert_eq!((r.z, r.p_value), (0.0, 0.5));
    assert_eq!(r.median_ratio, Some(1.0));
    assert_eq!(r.median_delta_ms, Some(0.0));
    assert_eq!(p99(&v).ratio, Some(1.0));
    assert_eq!(p99(&v).delta_ms, Some(0.0));
    assert_eq!(v.decision, Decision::Promote, "{}", v.reason);
    // With the defaults legacy is raised by max(x 1.1, + 5 ms): modern looks faster.
    let v = judge(&spec(), &Gates::recommended(), &w);
    assert!(rank(&v).u < rank(&v).u_expected && rank(&v).p_value > 0.99);
    assert_eq!(v.decision, Decision::Promote, "{}", v.reason);

    // Every sample in the same bucket on both sides: all tied, no evidence either way.
    let w = window(
        side(600, 0, &[7_000; 600]),
        side(500, 0, &[7_000; 500]),
        400,
    );
    let v = judge(&spec(), &plain_latency(), &w);
    let r = rank(&v);
    assert_eq!((r.u, r.z, r.p_value), (150_000.0, 0.0, 0.5));
    assert_eq!(v.decision, Decision::Promote, "{}", v.reason);
    // Raised by 5 ms, every legacy value is above every modern one.
    let v = judge(&spec(), &Gates::recommended(), &w);
    assert_eq!(rank(&v).u, 0.0);
    assert_eq!(v.decision, Decision::Promote, "{}", v.reason);
}

#[test]
fn tiny_samples_are_inconclusive_and_never_roll_back() {
    // Ten modern calls, ten times slower: striking, but 10 samples prove little.
    let w = window(
        side(1_000, 0, &spread(1_000, 10_000, 30_000)),
        side(10, 0, &spread(10, 100_000, 300_000)),
        30,
    );
    let v = judge(&spec(), &Gates::recommended(), &w);
    assert_eq!(v.decision, Decision::Hold, "{}", v.reason);
    for name in [LATENCY_P99, LATENCY_RANK] {
        let g = gate(&v, name);
        assert_eq!(
            (g.outcome, g.confirmed),
            (Outcome::Inconclusive, false),
            "{name}"
        );
    }
    assert!(gate(&v, LATENCY_RANK).detail.contains("needs 20 each"));
    assert!(
        v.reason.contains("inconclusive: latency-p99"),
        "{}",
        v.reason
    );
    assert_eq!(v.missing.unwrap().requests, 490);

    // At 20 samples the rank test speaks; the p99 needs 100.
    let w = window(
        side(1_000, 0, &spread(1_000, 10_000, 30_000)),
        side(20, 0, &spread(20, 10_000, 30_000)),
        30,
    );
    let v = judge(&spec(), &Gates::recommended(), &w);
    assert_eq!(gate(&v, LATENCY_RANK).outcome, Outcome::Pass);
    assert_eq!(gate(&v, LATENCY_P99).outcome, Outcome::Inconclusive);
}

#[test]
fn zero_legacy_errors_leave_the_absolute_limit() {
    let gates = error_only(true);
    // 0.8 % against a clean legacy: within the 1-point absolute limit.
    let w = window(side(20_000, 0, &[]), side(1_000, 8, &[]), 400);
    let v = judge(&spec(), &gates, &w);
    let Observed::ErrorRate(e) = &gate(&v, ERROR_RATE).observed else {
        panic!()
    };
    assert_eq!((e.legacy_rate, e.limit), (Some(0.0), Some(0.01)));
    assert_eq!(v.decision, Decision::Promote, "{}", v.reason);
    // 1.5 % fails the absolute limit but is not confirmed: hold.
    let w = window(side(20_000, 0, &[]), side(1_000, 15, &[]), 400);
    let v = judge(&spec(), &gates, &w);
    assert_eq!(gate(&v, ERROR_RATE).outcome, Outcome::Fail);
    assert_eq!(v.decision, Decision::Hold);
}

#[test]
fn the_relative_limit_takes_over_for_a_failing_legacy() {
    // Legacy at 10 %: limit = max(10 % + 1 pt, 10 % x 1.5) = 15 %.
    let gates = error_only(true);
    let w = window(side(10_000, 1_000, &[]), side(1_000, 140, &[]), 400);
    let v = judge(&spec(), &gates, &w);
    let Observed::ErrorRate(e) = &gate(&v, ERROR_RATE).observed else {
        panic!()
    };
    assert!((e.limit.unwrap() - 0.15).abs() < 1e-12);
    assert_eq!(
        v.decision,
        Decision::Promote,
        "14 % is within 15 %: {}",
        v.reason
    );
    let w = window(side(10_000, 1_000, &[]), side(1_000, 160, &[]), 400);
    assert_eq!(judge(&spec(), &gates, &w).decision, Decision::Hold);
}

#[test]
fn errors_above_requests_are_capped() {
    let w = window(side(10_000, 100, &[]), side(1_000, 5_000, &[]), 400);
    let v = judge(&spec(), &error_only(true), &w);
    let Observed::ErrorRate(e) = &gate(&v, ERROR_RATE).observed else {
        panic!()
    };
    assert_eq!((e.modern_errors, e.modern_rate), (1_000, Some(1.0)));
    assert_eq!(v.decision, Decision::Rollback);
}

#[test]
fn the_shadow_gate() {
    let shadow_only = |critical| Gates {
        error: None,
        latency: None,
        shadow: Some(ShadowGate {
            critical,
            ..ShadowGate::default()
        }),
    };
    let with = |compared, differing_rate| {
        let mut w = healthy();
        w.shadow = Some(ShadowWindow {
            compared,
            differing_rate,
        });
        w
    };
    // 0.5 % of 2,000 within 1 %: pass.
    let v = judge(&spec(), &shadow_only(false), &with(2_000, 0.005));
    assert_eq!(v.decision, Decision::Promote, "{}", v.reason);
    // 3 % of 2,000: a confirmed breach, but the gate is advisory: hold.
    let v = judge(&spec(), &shadow_only(false), &with(2_000, 0.03));
    let g = gate(&v, SHADOW_DIFF);
    assert!(g.confirmed && g.outcome == Outcome::Fail);
    assert_eq!(v.decision, Decision::Hold);
    // The same when critical rolls back.
    assert_eq!(
        judge(&spec(), &shadow_only(true), &with(2_000, 0.03)).decision,
        Decision::Rollback
    );
    // 1.2 % of 2,000 fails without confirmation: hold even when critical.
    let v = judge(&spec(), &shadow_only(true), &with(2_000, 0.012));
    let g = gate(&v, SHADOW_DIFF);
    assert_eq!((g.outcome, g.confirmed), (Outcome::Fail, false));
    assert_eq!(v.decision, Decision::Hold);
    // No shadow window, or a NaN rate: inconclusive.
    let v = judge(&spec(), &shadow_only(true), &healthy());
    assert_eq!(gate(&v, SHADOW_DIFF).outcome, Outcome::Inconclusive);
    assert_eq!(v.missing.unwrap().shadow_compared, 100);
    let v = judge(&spec(), &shadow_only(true), &with(2_000, f64::NAN));
    assert_eq!(gate(&v, SHADOW_DIFF).outcome, Outcome::Inconclusive);
    assert_eq!(v.decision, Decision::Hold);
}

#[test]
fn a_misconfigured_gate_never_passes() {
    let gates = Gates {
        error: Some(ErrorGate {
            max_absolute: f64::NAN,
            ..ErrorGate::default()
        }),
        latency: Some(LatencyGate {
            max_p99_ratio: f64::INFINITY,
            ..LatencyGate::default()
        }),
        shadow: None,
    };
    let v = judge(&spec(), &gates, &healthy());
    assert_eq!(v.decision, Decision::Hold);
    assert!(v.gates.iter().all(|g| g.outcome == Outcome::Inconclusive));
    assert!(
        gate(&v, ERROR_RATE)
            .detail
            .starts_with("gates.error.max_absolute: is NaN"),
        "{}",
        gate(&v, ERROR_RATE).detail
    );
}

#[test]
fn an_unusable_latency_layout_is_inconclusive() {
    let mut w = healthy();
    w.bucket_lower_us.truncate(10);
    let v = judge(&spec(), &Gates::recommended(), &w);
    assert_eq!(gate(&v, LATENCY_P99).outcome, Outcome::Inconclusive);
    assert!(gate(&v, LATENCY_RANK).detail.contains("layout only 10"));
    assert_eq!(v.decision, Decision::Hold);

    let mut w = healthy();
    w.bucket_lower_us.swap(3, 4);
    let v = judge(&spec(), &Gates::recommended(), &w);
    assert_eq!(
        gate(&v, LATENCY_P99).detail,
        "the bucket layout does not strictly ascend"
    );
}

#[test]
fn the_rank_test_can_be_turned_off() {
    let mut gates = Gates::recommended();
    gates.latency.as_mut().unwrap().rank_test = false;
    let w = window(
        side(2_000, 20, &spread(2_000, 10_000, 30_000)),
        side(200, 2, &spread(200, 30_000, 90_000)),
        400,
    );
    let v = judge(&spec(), &gates, &w);
    assert!(v.gates.iter().all(|g| g.gate != LATENCY_RANK));
    // Without the rank test a tripled p99 fails but cannot confirm: hold, not roll back.
    assert_eq!(gate(&v, LATENCY_P99).outcome, Outcome::Fail);
    assert_eq!(v.decision, Decision::Hold);
}

#[test]
fn the_verdict_serializes_as_evidence() {
    let w = window(
        side(2_000, 20, &spread(2_000, 10_000, 30_000)),
        side(100, 30, &spread(100, 10_000, 30_000)),
        10,
    );
    let v = judge(&spec(), &Gates::recommended(), &w);
    let j = serde_json::to_value(&v).unwrap();
    assert_eq!(j["decision"], "rollback");
    assert_eq!(j["gates"][0]["gate"], "error-rate");
    assert_eq!(j["gates"][0]["outcome"], "fail");
    assert_eq!(j["gates"][0]["confirmed"], true);
    assert_eq!(j["gates"][0]["observed"]["modern_errors"], 30);
    assert_eq!(j["gates"][0]["observed"]["limit"], 0.02);
    assert_eq!(j["gates"][1]["observed"]["max_ratio"], 1.5);
    assert_eq!(j["gates"][1]["observed"]["min_delta_ms"], 5.0);
    assert_eq!(
        j["gates"][1]["observed"]["max_p99_ms"],
        serde_json::Value::Null
    );
    assert_eq!(j["gates"][1]["observed"]["within_budget"], false);
    assert!(j["gates"][1]["observed"]["limit_ms"].is_f64());
    assert_eq!(j["gates"][2]["observed"]["min_delta_ms"], 5.0);
    assert!(j["gates"][2]["observed"]["median_delta_ms"].is_f64());
    assert_eq!(j["gates"][2]["outcome"], "pass");
    assert!(j["gates"][2]["observed"]["p_value"].is_f64());
    assert_eq!(j["missing"], serde_json::Value::Null);

    let hold = judge(&spec(), &Gates::recommended(), &Window::default());
    let j = serde_json::to_value(&hold).unwrap();
    assert_eq!(j["decision"], "hold");
    assert_eq!(j["missing"]["time"], 300.0);
    assert_eq!(j["gates"][0]["outcome"], "inconclusive");
    assert_eq!(
        j["gates"][0]["observed"]["modern_rate"],
        serde_json::Value::Null
    );
}

#[test]
fn inputs_round_trip_with_durations_in_seconds() {
    let w = healthy();
    let j = serde_json::to_value(&w).unwrap();
    assert_eq!(j["elapsed_in_step"], 400.0);
    let back: Window = serde_json::from_value(j).unwrap();
    assert_eq!(back, w);
    // Gates too: durations in seconds, and a latency gate written before min_delta and
    // max_p99 existed reads with their defaults.
    let mut gates = Gates::recommended();
    gates.latency.as_mut().unwrap().max_p99 = Some(Duration::from_millis(250));
    let j = serde_json::to_value(&gates).unwrap();
    assert_eq!(j["latency"]["min_delta"], 0.005);
    assert_eq!(j["latency"]["max_p99"], 0.25);
    let back: Gates = serde_json::from_value(j).unwrap();
    assert_eq!(back, gates);
    let old = serde_json::json!({ "max_p99_ratio": 2.0, "rank_test": true, "alpha": 0.01,
        "min_effect": 1.1, "critical": true });
    let l: LatencyGate = serde_json::from_value(old).unwrap();
    assert_eq!(l.min_delta, LatencyGate::DEFAULT_MIN_DELTA);
    assert_eq!((l.max_p99, l.max_p99_ratio), (None, 2.0));
    let none = serde_json::to_value(LatencyGate::default()).unwrap();
    assert_eq!(none["max_p99"], serde_json::Value::Null);

    let bad = serde_json::json!({ "min_requests": 1, "interval": -1.0 });
    let err = serde_json::from_value::<StepSpec>(bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("finite number of seconds"), "{err}");
}
