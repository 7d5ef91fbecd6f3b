//! The judge's policy: what a step needs before it may promote ([`StepSpec`]) and which gates
//! modern must pass ([`Gates`]), each with its limits, its significance level and whether
//! it is critical (a confirmed breach rolls back) or not (a failure only holds).
//!
//! Every limit is checked by [`crate::validate`] with an error naming the field and the fix;
//! the judge runs the same checks and treats a misconfigured gate as inconclusive, so an
//! unvalidated NaN can never pass a gate.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::spec::SpecError;

/// What a step needs, besides passing gates, before the judge promotes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepSpec {
    /// Requests each side must have answered in the step (modern and legacy alike). 0 counts
    /// as 1: no data never counts as success.
    pub min_requests: u64,
    /// Minimum time in the step before promotion (seconds in serialized form). A confirmed
    /// breach of a critical gate does not wait for it.
    #[serde(with = "crate::secs")]
    pub interval: Duration,
}

impl Default for StepSpec {
    /// 500 requests per side and 5 minutes: enough for the default error gate to resolve a
    /// 1-point difference and for a p99 of a few hundred samples.
    fn default() -> Self {
        StepSpec {
            min_requests: 500,
            interval: Duration::from_secs(300),
        }
    }
}

/// The gates modern must pass; `None` disables a gate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Gates {
    pub error: Option<ErrorGate>,
    pub latency: Option<LatencyGate>,
    pub shadow: Option<ShadowGate>,
}

impl Gates {
    /// The gates a rollout gets when it names none: errors and latency, both critical.
    /// Shadow is left out because it needs the canary to be shadowed, which is optional.
    pub fn recommended() -> Gates {
        Gates {
            error: Some(ErrorGate::default()),
            latency: Some(LatencyGate::default()),
            shadow: None,
        }
    }

    pub(crate) fn problems(&self, prefix: &str) -> Vec<SpecError> {
        let mut out = Vec::new();
        if self.error.is_none() && self.latency.is_none() && self.shadow.is_none() {
            out.push(SpecError::new(
                prefix,
                "no gate is enabled, so promotion would rest on traffic volume alone",
                "enable at least one of `error`, `latency`, `shadow`",
            ));
        }
        let sub = |name: &str| format!("{prefix}.{name}");
        if let Some(g) = &self.error {
            out.extend(g.problems(&sub("error")));
        }
        if let Some(g) = &self.latency {
            out.extend(g.problems(&sub("latency")));
        }
        if let Some(g) = &self.shadow {
            out.extend(g.problems(&sub("shadow")));
        }
        out
    }
}

/// Modern's error rate (5xx, ficus's own 502/504 included) against legacy's over the same
/// window.
///
/// The limit is `max(legacy + max_absolute, legacy * max_relative)`: the absolute part keeps
/// a legacy at 0 % errors from forbidding any error at all, the relative part scales with a
/// legacy that already fails often.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorGate {
    /// Points modern may exceed legacy by, as a fraction: 0.01 = 1 point.
    pub max_absolute: f64,
    /// Multiple of legacy's rate modern may reach: 1.5 = 1.5 times.
    pub max_relative: f64,
    /// Probability of a false confirmed breach over the whole step, however often the judge
    /// is asked (always-valid bounds).
    pub alpha: f64,
    pub critical: bool,
}

impl Default for ErrorGate {
    fn default() -> Self {
        ErrorGate {
            max_absolute: 0.01,
            max_relative: 1.5,
            alpha: 0.01,
            critical: true,
        }
    }
}

impl ErrorGate {
    pub(crate) fn problems(&self, prefix: &str) -> Vec<SpecError> {
        let mut out = Vec::new();
        fraction(
            &mut out,
            prefix,
            "max_absolute",
            self.max_absolute,
            "0.01 (1 point)",
        );
        at_least_one(&mut out, prefix, "max_relative", self.max_relative, "1.5");
        alpha(&mut out, prefix, self.alpha);
        out
    }
}

/// Modern's latency against legacy's: the p99 and, optionally, a Mann-Whitney rank test on
/// the whole distributions (the method of Kayenta's judge).
///
/// A slowdown counts only when it matters in absolute terms as well as relative ones: modern
/// must be slower than legacy by more than `min_delta` **and** by more than the ratio, so
/// that a tenth of a millisecond between two fast services, statistically certain as it may
/// be with enough samples, never fails the gate. With a `max_p99` budget, a modern whose p99
/// is within it passes whatever legacy does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyGate {
    /// Largest allowed `modern p99 / legacy p99`.
    pub max_p99_ratio: f64,
    /// Largest allowed `modern p99 - legacy p99`, and the shift of legacy in the rank test
    /// (seconds in serialized form). A p99 fails only when it is over both limits:
    /// `p99_m > max(p99_l * max_p99_ratio, p99_l + min_delta)`.
    #[serde(with = "crate::secs", default = "LatencyGate::default_min_delta")]
    pub min_delta: Duration,
    /// Modern's p99 at or under this always passes the latency gate, however it compares
    /// with legacy's (seconds in serialized form); `None`: no budget.
    #[serde(with = "crate::secs_opt", default)]
    pub max_p99: Option<Duration>,
    /// Run the one-sided rank test "modern is slower". Without it the latency gate can hold
    /// but never confirm a breach (a p99 alone is not a sequential test).
    pub rank_test: bool,
    /// Significance level of the rank test.
    pub alpha: f64,
    /// The rank test compares modern with legacy raised to `max(x * min_effect, x +
    /// min_delta)`, and fails only if modern's median is above legacy's so raised: large
    /// samples make even a 1 % slowdown significant.
    pub min_effect: f64,
    pub critical: bool,
}

impl LatencyGate {
    /// The default `min_delta`, 5 ms. Two healthy services on a shared host differ by a few
    /// milliseconds in their tails (scheduler time slices, a garbage collection, one more
    /// network hop) without either being slower, and no user feels 5 ms (people notice
    /// delays of about 100 ms); the regressions a canary is there to catch (a lost index, a
    /// synchronous call, a cold cache) cost tens of milliseconds and more. Set it lower for
    /// fast services that are called many times per user request.
    pub const DEFAULT_MIN_DELTA: Duration = Duration::from_millis(5);

    fn default_min_delta() -> Duration {
        Self::DEFAULT_MIN_DELTA
    }
}

impl Default for LatencyGate {
    fn default() -> Self {
        LatencyGate {
            max_p99_ratio: 1.5,
            min_delta: Self::DEFAULT_MIN_DELTA,
            max_p99: None,
            rank_test: true,
            alpha: 0.01,
            min_effect: 1.1,
            critical: true,
        }
    }
}

impl LatencyGate {
    pub(crate) fn problems(&self, prefix: &str) -> Vec<SpecError> {
        let mut out = Vec::new();
        at_least_one(&mut out, prefix, "max_p99_ratio", self.max_p99_ratio, "1.5");
        if self.max_p99 == Some(Duration::ZERO) {
            out.push(SpecError::new(
                &format!("{prefix}.max_p99"),
                "is 0, so no modern could ever be within the budget",
                "leave max_p99 out for no budget, or set the p99 your users accept, e.g. 250ms",
            ));
        }
        alpha(&mut out, prefix, self.alpha);
        at_least_one(&mut out, prefix, "min_effect", self.min_effect, "1.1");
        out
    }
}

/// The real-difference rate of shadow comparisons (after noise filtering) in the step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShadowGate {
    /// Largest allowed rate, as a fraction: 0.01 = 1 %.
    pub max_rate: f64,
    /// Comparisons needed before the gate can pass.
    pub min_compared: u64,
    /// Probability of a false confirmed breach (see [`ErrorGate::alpha`]).
    pub alpha: f64,
    pub critical: bool,
}

impl Default for ShadowGate {
    /// Not critical: a difference rate says "look at this", not "users are failing".
    fn default() -> Self {
        ShadowGate {
            max_rate: 0.01,
            min_compared: 100,
            alpha: 0.01,
            critical: false,
        }
    }
}

impl ShadowGate {
    pub(crate) fn problems(&self, prefix: &str) -> Vec<SpecError> {
        let mut out = Vec::new();
        fraction(&mut out, prefix, "max_rate", self.max_rate, "0.01 (1 %)");
        if self.min_compared == 0 {
            out.push(SpecError::new(
                &format!("{prefix}.min_compared"),
                "is 0, so the gate could pass without a single comparison",
                "set it to at least 1 (100 is a sensible start)",
            ));
        }
        alpha(&mut out, prefix, self.alpha);
        out
    }
}

fn fraction(out: &mut Vec<SpecError>, prefix: &str, name: &str, v: f64, example: &str) {
    if !(v.is_finite() && v > 0.0 && v <= 1.0) {
        out.push(SpecError::new(
            &format!("{prefix}.{name}"),
            &format!("is {v}, not a fraction in (0, 1]"),
            &format!("write it as a fraction, e.g. {example}"),
        ));
    }
}

fn at_least_one(out: &mut Vec<SpecError>, prefix: &str, name: &str, v: f64, example: &str) {
    if !(v.is_finite() && v >= 1.0) {
        out.push(SpecError::new(
            &format!("{prefix}.{name}"),
            &format!("is {v}, but a ratio below 1 would fail a modern identical to legacy"),
            &format!("use a finite ratio of at least 1, e.g. {example}"),
        ));
    }
}

fn alpha(out: &mut Vec<SpecError>, prefix: &str, v: f64) {
    if !(v.is_finite() && v > 0.0 && v <= 0.5) {
        out.push(SpecError::new(
            &format!("{prefix}.alpha"),
            &format!("is {v}, not a significance level in (0, 0.5]"),
            "use a small probability, e.g. 0.01",
        ));
    }
}
