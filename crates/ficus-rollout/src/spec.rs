//! The rollout spec (weight steps, what each step needs, the gates), its validation with
//! errors that name the field and the fix, and the walk from one step to the next.

use serde::{Deserialize, Serialize};

use crate::gates::{Gates, StepSpec};

/// Most steps a rollout may have: more would make each step too short to judge.
pub const MAX_STEPS: usize = 20;

/// A canary's automated walk: the weights, what each step needs, and the gates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RolloutSpec {
    /// Weights (percent of sticky keys on modern, two decimals) in the order the rollout
    /// visits them; strictly increasing, in (0, 100].
    pub steps: Vec<f64>,
    /// What every step needs before it may promote.
    pub step: StepSpec,
    pub gates: Gates,
}

impl Default for RolloutSpec {
    fn default() -> Self {
        RolloutSpec {
            steps: vec![1.0, 5.0, 25.0, 50.0, 100.0],
            step: StepSpec::default(),
            gates: Gates::recommended(),
        }
    }
}

/// One problem in a rollout spec. `field` is relative to the spec (`steps[2]`,
/// `gates.error.alpha`); the config crate prefixes it with the route's path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {problem}; {fix}")]
pub struct SpecError {
    pub field: String,
    pub problem: String,
    pub fix: String,
}

impl SpecError {
    pub(crate) fn new(field: &str, problem: &str, fix: &str) -> SpecError {
        SpecError {
            field: field.to_owned(),
            problem: problem.to_owned(),
            fix: fix.to_owned(),
        }
    }
}

/// Checks a rollout spec; every problem is reported, not just the first.
pub fn validate(spec: &RolloutSpec) -> Result<(), Vec<SpecError>> {
    let mut out = Vec::new();
    validate_steps(&spec.steps, &mut out);
    if spec.step.min_requests == 0 {
        out.push(SpecError::new(
            "min_requests",
            "is 0, but a step must see traffic before it can promote",
            "set it to at least 1 (a few hundred lets the gates resolve small differences)",
        ));
    }
    if spec.step.interval.as_secs() < 1 {
        out.push(SpecError::new(
            "interval",
            &format!(
                "is {:?}, shorter than one telemetry slot",
                spec.step.interval
            ),
            "set it to at least 1 s (minutes are typical)",
        ));
    }
    out.extend(spec.gates.problems("gates"));
    if out.is_empty() {
        Ok(())
    } else {
        Err(out)
    }
}

fn validate_steps(steps: &[f64], out: &mut Vec<SpecError>) {
    if steps.is_empty() {
        out.push(SpecError::new(
            "steps",
            "is empty",
            "list the weights to walk through, e.g. [1, 5, 25, 50, 100]",
        ));
        return;
    }
    if steps.len() > MAX_STEPS {
        out.push(SpecError::new(
            "steps",
            &format!("has {} steps, more than {MAX_STEPS}", steps.len()),
            &format!("use at most {MAX_STEPS} steps; each must last long enough to judge"),
        ));
    }
    let mut prev: Option<f64> = None;
    for (i, s) in steps.iter().copied().enumerate() {
        let field = format!("steps[{i}]");
        if !(s.is_finite() && s > 0.0 && s <= 100.0) {
            out.push(SpecError::new(
                &field,
                &format!("is {s}, not a weight in (0, 100]"),
                "use a percentage above 0 and at most 100",
            ));
            continue;
        }
        if ((s * 100.0).round() - s * 100.0).abs() > 1e-6 {
            out.push(SpecError::new(
                &field,
                &format!("is {s}, finer than the weight's two decimals"),
                &format!("round it to two decimals, e.g. {:.2}", s),
            ));
        }
        if let Some(p) = prev {
            if s <= p {
                out.push(SpecError::new(
                    &field,
                    &format!("is {s}, not above the previous step {p}"),
                    "list the steps in strictly increasing order without repeats",
                ));
            }
        }
        prev = Some(s);
    }
}

/// The step after `current`: the smallest step above it (with a tolerance well below the
/// weight's 0.01 resolution), or `None` when `current` is the last step and the rollout is
/// complete. `current = 0` (not started) gives the first step.
pub fn next_step(steps: &[f64], current: f64) -> Option<f64> {
    steps
        .iter()
        .copied()
        .filter(|s| s.is_finite() && *s > current + 1e-9)
        .min_by(f64::total_cmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gates::{ErrorGate, LatencyGate, ShadowGate};
    use std::time::Duration;

    fn fields(r: Result<(), Vec<SpecError>>) -> Vec<String> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn the_default_is_valid() {
        assert_eq!(validate(&RolloutSpec::default()), Ok(()));
    }

    #[test]
    fn steps_must_increase_within_range() {
        let mut s = RolloutSpec {
            steps: vec![0.0, 5.0, 5.0, 3.0, 101.0, f64::NAN, 50.555],
            ..RolloutSpec::default()
        };
        assert_eq!(
            fields(validate(&s)),
            ["steps[0]", "steps[2]", "steps[3]", "steps[4]", "steps[5]", "steps[6]"]
        );
        s.steps = vec![];
        assert_eq!(fields(validate(&s)), ["steps"]);
        s.steps = (1..=21).map(f64::from).collect();
        assert_eq!(fields(validate(&s)), ["steps"]);
        s.steps = vec![0.01, 12.5, 100.0];
        assert_eq!(validate(&s), Ok(()));
    }

    #[test]
    fn step_and_gate_limits() {
        let s = RolloutSpec {
            steps: vec![50.0],
            step: StepSpec {
                min_requests: 0,
                interval: Duration::from_millis(500),
            },
            gates: Gates {
                error: Some(ErrorGate {
                    max_absolute: 0.0,
                    max_relative: f64::INFINITY,
                    alpha: 0.01,
                    critical: true,
                }),
                latency: Some(LatencyGate {
                    max_p99_ratio: 0.9,
                    max_p99: Some(Duration::ZERO),
                    alpha: 1.0,
                    min_effect: f64::NAN,
                    ..LatencyGate::default()
                }),
                shadow: Some(ShadowGate {
                    max_rate: 2.0,
                    min_compared: 0,
                    alpha: -0.1,
                    critical: false,
                }),
            },
        };
        let errs = validate(&s).unwrap_err();
        let got: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            got,
            [
                "min_requests",
                "interval",
                "gates.error.max_absolute",
                "gates.error.max_relative",
                "gates.latency.max_p99_ratio",
                "gates.latency.max_p99",
                "gates.latency.alpha",
                "gates.latency.min_effect",
                "gates.shadow.max_rate",
                "gates.shadow.min_compared",
                "gates.shadow.alpha",
            ]
        );
        // Messages name the field, the problem and the fix.
        let msg = errs[2].to_string();
        assert!(msg.starts_with("gates.error.max_absolute: is 0"), "{msg}");
        assert!(msg.contains("e.g. 0.01"), "{msg}");
        let msg = errs[5].to_string();
        assert_eq!(
            msg,
            "gates.latency.max_p99: is 0, so no modern could ever be within the budget; leave \
             max_p99 out for no budget, or set the p99 your users accept, e.g. 250ms"
        );
    }

    #[test]
    fn latency_durations_need_no_check_but_the_budget() {
        // Any min_delta is meaningful (0: purely relative limits), any budget above 0 too.
        for (min_delta, max_p99) in [
            (Duration::ZERO, None),
            (Duration::from_millis(5), Some(Duration::from_micros(1))),
            (Duration::from_secs(3600), Some(Duration::from_secs(3600))),
        ] {
            let s = RolloutSpec {
                gates: Gates {
                    latency: Some(LatencyGate {
                        min_delta,
                        max_p99,
                        ..LatencyGate::default()
                    }),
                    ..Gates::default()
                },
                ..RolloutSpec::default()
            };
            assert_eq!(validate(&s), Ok(()), "{min_delta:?} {max_p99:?}");
        }
    }

    #[test]
    fn at_least_one_gate() {
        let s = RolloutSpec {
            gates: Gates::default(),
            ..RolloutSpec::default()
        };
        assert_eq!(fields(validate(&s)), ["gates"]);
    }

    #[test]
    fn walking_the_steps() {
        let steps = [1.0, 5.0, 25.0, 50.0, 100.0];
        assert_eq!(next_step(&steps, 0.0), Some(1.0));
        assert_eq!(next_step(&steps, 1.0), Some(5.0));
        assert_eq!(next_step(&steps, 3.0), Some(5.0));
        assert_eq!(next_step(&steps, 50.0), Some(100.0));
        assert_eq!(next_step(&steps, 100.0), None);
        assert_eq!(next_step(&[], 0.0), None);
        assert_eq!(next_step(&steps, f64::NAN), None);
        // A weight stored with rounding error still counts as its step.
        assert_eq!(next_step(&steps, 25.0 + 1e-12), Some(50.0));
    }
}
