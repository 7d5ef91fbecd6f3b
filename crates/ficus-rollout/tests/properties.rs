//! Properties of the judge over arbitrary inputs: it never panics, never puts a NaN in its
//! evidence, never promotes without enough data on both sides, its decision always follows
//! from its gates, fewer than five modern errors never confirm, and a latency within the
//! budget or within `min_delta` of legacy's never fails.

mod support;

use ficus_rollout::{
    judge, next_step, validate, Decision, ErrorGate, Gates, LatencyGate, Observed, Outcome,
    RolloutSpec, ShadowGate, ShadowWindow, SideWindow, StepSpec, Window, ERROR_RATE,
    MIN_CONFIRM_EVENTS,
};
use proptest::prelude::*;
use std::time::Duration;

/// Mostly realistic counts, sometimes anything (overflow hunting).
fn count() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0..3_000u64,
        1 => any::<u64>(),
    ]
}

fn any_f64() -> impl Strategy<Value = f64> {
    prop::num::f64::ANY
}

/// A threshold in `lo..hi`, or (when `wild`) sometimes any float: NaN, infinities,
/// negatives.
fn threshold(lo: f64, hi: f64, wild: bool) -> BoxedStrategy<f64> {
    if wild {
        prop_oneof![4 => lo..hi, 1 => any_f64()].boxed()
    } else {
        (lo..hi).boxed()
    }
}

/// Dense random histograms, or sparse ones with a few buckets (all mass at 0 us, one bucket
/// only, ...) where the edge cases live.
fn histogram() -> impl Strategy<Value = Vec<u64>> {
    prop_oneof![
        prop::collection::vec(count(), 0..60),
        prop::collection::vec((0..60usize, count()), 0..4).prop_map(|cells| {
            let mut h = vec![0; cells.iter().map(|(i, _)| i + 1).max().unwrap_or(0)];
            for (i, c) in cells {
                h[i] = c;
            }
            h
        }),
    ]
}

fn side() -> impl Strategy<Value = SideWindow> {
    (count(), count(), histogram()).prop_map(|(requests, errors, latency)| SideWindow {
        requests,
        errors,
        latency,
    })
}

fn layout() -> impl Strategy<Value = Vec<u64>> {
    prop_oneof![
        3 => Just(support::layout()),
        1 => prop::collection::vec(any::<u64>(), 0..60),
        1 => prop::collection::vec(any::<u64>(), 0..60).prop_map(|mut v| {
            v.sort_unstable();
            v.dedup();
            v
        }),
        // A few small buckets: a layout of just [0] puts every quantile at 0 us.
        1 => prop::collection::vec(0..4u64, 0..4).prop_map(|mut v| {
            v.sort_unstable();
            v.dedup();
            v
        }),
    ]
}

fn shadow() -> impl Strategy<Value = Option<ShadowWindow>> {
    prop::option::of((count(), prop_oneof![3 => 0.0..1.0f64, 1 => any_f64()])).prop_map(|o| {
        o.map(|(compared, differing_rate)| ShadowWindow {
            compared,
            differing_rate,
        })
    })
}

fn window() -> impl Strategy<Value = Window> {
    (
        side(),
        side(),
        shadow(),
        0..100_000u64,
        layout(),
        any::<bool>(),
    )
        .prop_map(
            |(mut legacy, mut modern, shadow, ms, bucket_lower_us, fit)| {
                // Half the time, histograms that fit the layout, so that short layouts are
                // exercised rather than rejected.
                if fit {
                    legacy.latency.truncate(bucket_lower_us.len());
                    modern.latency.truncate(bucket_lower_us.len());
                }
                Window {
                    legacy,
                    modern,
                    shadow,
                    elapsed_in_step: Duration::from_millis(ms),
                    bucket_lower_us,
                }
            },
        )
}

fn gates() -> impl Strategy<Value = Gates> {
    gates_with(true)
}

/// Gates whose limits pass validation.
fn valid_gates() -> impl Strategy<Value = Gates> {
    gates_with(false)
}

fn gates_with(wild: bool) -> impl Strategy<Value = Gates> {
    let error = (
        threshold(0.001, 0.2, wild),
        threshold(1.0, 3.0, wild),
        threshold(0.001, 0.1, wild),
        any::<bool>(),
    )
        .prop_map(|(max_absolute, max_relative, alpha, critical)| ErrorGate {
            max_absolute,
            max_relative,
            alpha,
            critical,
        });
    let latency = (
        threshold(1.0, 4.0, wild),
        0..50_000u64,
        prop::option::of(u64::from(!wild)..1_000_000u64),
        any::<bool>(),
        threshold(0.001, 0.1, wild),
        threshold(1.0, 2.0, wild),
        any::<bool>(),
    )
        .prop_map(
            |(max_p99_ratio, min_delta_us, max_p99_us, rank_test, alpha, min_effect, critical)| {
                LatencyGate {
                    max_p99_ratio,
                    min_delta: Duration::from_micros(min_delta_us),
                    max_p99: max_p99_us.map(Duration::from_micros),
                    rank_test,
                    alpha,
                    min_effect,
                    critical,
                }
            },
        );
    let shadow = (
        threshold(0.001, 0.5, wild),
        u64::from(!wild)..500u64,
        threshold(0.001, 0.1, wild),
        any::<bool>(),
    )
        .prop_map(|(max_rate, min_compared, alpha, critical)| ShadowGate {
            max_rate,
            min_compared,
            alpha,
            critical,
        });
    (
        prop::option::of(error),
        prop::option::of(latency),
        prop::option::of(shadow),
    )
        .prop_map(|(error, latency, shadow)| Gates {
            error,
            latency,
            shadow,
        })
}

fn step() -> impl Strategy<Value = StepSpec> {
    (count(), 0..2_000u64).prop_map(|(min_requests, s)| StepSpec {
        min_requests,
        interval: Duration::from_secs(s),
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_verdict_is_consistent_and_finite(spec in step(), g in gates(), w in window()) {
        let v = judge(&spec, &g, &w);
        for x in support::numbers(&v) {
            prop_assert!(x.is_finite(), "non-finite evidence in {v:#?}");
        }
        for r in &v.gates {
            prop_assert!(!r.confirmed || r.outcome == Outcome::Fail, "{r:#?}");
        }
        let min = spec.min_requests.max(1);
        match v.decision {
            Decision::Promote => {
                prop_assert!(v.gates.iter().all(|r| r.outcome == Outcome::Pass));
                prop_assert!(w.modern.requests >= min && w.legacy.requests >= min);
                prop_assert!(w.elapsed_in_step >= spec.interval);
            }
            Decision::Rollback => {
                prop_assert!(v.gates.iter().any(|r| r.critical && r.confirmed));
            }
            Decision::Hold => {
                prop_assert!(!v.gates.iter().any(|r| r.critical && r.confirmed));
            }
        }
        prop_assert!(v.missing.is_none() || v.decision == Decision::Hold);
        prop_assert!(serde_json::to_string(&v).is_ok());
        // Stateless: asking again gives the same answer.
        prop_assert_eq!(judge(&spec, &g, &w), v);
    }

    #[test]
    fn never_promotes_below_min_requests(
        spec in step(),
        g in gates(),
        mut w in window(),
        short_modern in any::<bool>(),
        frac in 0.0..1.0f64,
    ) {
        let min = spec.min_requests.max(1);
        let below = ((min - 1) as f64 * frac) as u64;
        if short_modern {
            w.modern.requests = below;
        } else {
            w.legacy.requests = below;
        }
        let v = judge(&spec, &g, &w);
        prop_assert_ne!(v.decision, Decision::Promote, "{}", v.reason);
        if v.decision == Decision::Hold {
            let m = v.missing.expect("a side below min_requests is missing data");
            prop_assert!(m.requests > 0 || m.legacy_requests > 0);
        }
    }

    #[test]
    fn valid_gates_and_rates_never_print_nan(
        spec in step(),
        g in valid_gates(),
        mut w in window(),
    ) {
        let spec_ok = validate(&RolloutSpec {
            gates: g.clone(),
            ..RolloutSpec::default()
        })
        .is_ok();
        let no_gates = g.error.is_none() && g.latency.is_none() && g.shadow.is_none();
        prop_assert!(spec_ok || no_gates, "the strategy makes valid gates");
        if let Some(s) = &mut w.shadow {
            if !s.differing_rate.is_finite() {
                s.differing_rate = 0.5;
            }
        }
        let v = judge(&spec, &g, &w);
        let texts = std::iter::once(&v.reason).chain(v.gates.iter().map(|r| &r.detail));
        for t in texts {
            prop_assert!(!t.contains("NaN") && !t.contains("inf"), "{t}");
        }
    }

    #[test]
    fn fewer_than_five_modern_errors_never_confirm(
        spec in step(),
        g in gates(),
        mut w in window(),
        errors in 0..MIN_CONFIRM_EVENTS,
    ) {
        w.modern.errors = errors;
        let v = judge(&spec, &g, &w);
        for r in v.gates.iter().filter(|r| r.gate == ERROR_RATE) {
            prop_assert!(!r.confirmed, "{r:#?}");
        }
    }

    #[test]
    fn latency_within_the_budget_or_min_delta_never_fails(
        spec in step(),
        g in gates(),
        w in window(),
    ) {
        let v = judge(&spec, &g, &w);
        for r in &v.gates {
            let (budget, small) = match &r.observed {
                Observed::LatencyP99(p) => (
                    p.within_budget,
                    p.delta_ms.is_some_and(|d| d < p.min_delta_ms),
                ),
                Observed::LatencyRank(k) => (
                    k.within_budget,
                    k.median_delta_ms.is_some_and(|d| d < k.min_delta_ms),
                ),
                _ => continue,
            };
            if budget || small {
                prop_assert_ne!(r.outcome, Outcome::Fail, "{:#?}", r);
                prop_assert!(!r.confirmed);
            }
        }
    }

    #[test]
    fn validation_and_stepping_never_panic(
        steps in prop::collection::vec(any_f64(), 0..25),
        g in gates(),
        spec in step(),
        current in any_f64(),
    ) {
        let s = RolloutSpec { steps: steps.clone(), step: spec, gates: g };
        if let Err(errs) = validate(&s) {
            prop_assert!(!errs.is_empty());
            for e in errs {
                prop_assert!(!e.field.is_empty() && !e.fix.is_empty());
            }
        }
        if let Some(next) = next_step(&steps, current) {
            prop_assert!(next > current && steps.contains(&next));
        }
    }
}
