//! The judge: from both sides' windows and the gates, a verdict (promote, hold or roll back)
//! with every gate's numbers, so that the event recording the verdict explains it.
//!
//! # Gates
//!
//! Each gate yields an [`Outcome`] (pass, fail, or inconclusive for too little data) and a
//! `confirmed` flag: the breach holds with high confidence under a test that stays valid
//! however often the judge is asked. `confirmed` implies `Fail`.
//!
//! **error-rate.** With modern `e_m` errors of `n_m` requests and legacy `e_l` of `n_l`:
//!
//! ```text
//! limit(r)   = min(1, max(r + max_absolute, r * max_relative))
//! fail       : e_m / n_m > limit(e_l / n_l)                      (point estimates)
//! confirmed  : e_m >= 5  and  LB_m > limit(UB_l)
//! ```
//!
//! where `LB_m` is the lower end of modern's always-valid confidence sequence and `UB_l` the
//! upper end of legacy's, each at level `alpha / 2`. The sequence is Robbins' beta-binomial
//! mixture: after `s` bad of `n`, with `f = n - s` and a Beta(1/2, 1/2) prior,
//!
//! ```text
//! M_n(q) = B(1/2 + s, 1/2 + f) / B(1/2, 1/2) / (q^s (1 - q)^f)
//! CS_n   = { q : M_n(q) < 2 / alpha }          LB = inf CS_n,  UB = sup CS_n
//! ```
//!
//! `M_n(p)` at the true rate `p` is a nonnegative martingale starting at 1, so by Ville's
//! inequality `CS_n` misses `p` at *any* `n` with probability at most `alpha / 2`. If
//! modern's true rate is within the true limit, a false confirmation needs legacy's sequence
//! to miss legacy's rate or modern's to miss modern's, at any tick of the step: by the union
//! bound that happens with probability at most `alpha`, however often the controller asks.
//! That is how legacy's own uncertainty is accounted for: a legacy with few requests has a
//! wide `UB_l`, hence a high confirmation limit, hence no hasty rollback. The relative limit
//! of a legacy at 0 % is 0, so the absolute limit alone applies there. Without modern or
//! legacy requests the gate is inconclusive (there is nothing to compare) and cannot be
//! confirmed (`UB_l = 1`).
//!
//! Measured in `tests/simulation.rs` (500 runs each, judged every 100 modern requests up to
//! 10,000): a modern exactly at the limit was never rolled back (legacy 1 % / modern 2 %,
//! legacy 0 % / modern 1 %, legacy 10 % / modern 15 %), where a repeated fixed-sample z test
//! false-alarms in about 7 % of runs; a modern at 30 % against legacy 1 % is rolled back
//! after a median of 30 modern requests at 5 % weight and 110 at 50 % weight (judged every
//! 10), where legacy's own small sample keeps `UB_l` wide for longer.
//!
//! The floor of 5 errors is not statistics: the bounds assume independent requests, and
//! real failures come in bursts (a pod restarting fails a handful of requests in a row), so
//! no breach is confirmed on "a couple of errors" however few requests there were. It holds
//! at any traffic: with legacy at 0 errors, one to four modern errors never confirm (so never
//! roll back) whatever either side's request count and the gate's limits
//! (`tests/judge.rs`, `one_or_two_errors_never_roll_back_a_healthy_modern_at_any_traffic`,
//! and a property over arbitrary windows in `tests/properties.rs`).
//!
//! **Practical significance.** Both latency results hold modern to legacy raised by
//! `h(x) = max(x * ratio, x + min_delta)`: slower by the ratio **and** by `min_delta` (5 ms
//! by default, [`LatencyGate::DEFAULT_MIN_DELTA`]). A statistical test only says whether a
//! difference is real; with enough samples every difference is, and on a busy machine the
//! quieter of two sub-millisecond services is reliably a tenth of a millisecond slower. The
//! judge must not act on a difference nobody can feel, so the absolute part of the limit is
//! what makes a difference matter, as Kayenta, Argo Rollouts and Flagger let a latency check
//! pass under an absolute bound. With a `max_p99` budget, a modern whose p99 is within it
//! passes both latency results whatever legacy does (not with too few samples: those stay
//! inconclusive).
//!
//! **latency-p99.** `ratio = max(p99_m, 1 us) / max(p99_l, 1 us)` and `delta = p99_m -
//! p99_l` with quantiles interpolated linearly inside the histogram bucket that holds them
//! (a quantile in the open last bucket is its lower bound). Fails when `ratio >
//! max_p99_ratio` **and** `delta > min_delta` (that is, `p99_m > max(p99_l * max_p99_ratio,
//! p99_l + min_delta)`, the evidence's `limit_ms`), unless modern is within the budget;
//! inconclusive below 100 latency samples on either side, where a "p99" is just the maximum.
//!
//! **latency-rank** (when `rank_test`). One-sided Mann-Whitney U "modern slower than legacy
//! raised by `h(x) = max(x * min_effect, x + min_delta)`", on the two histograms, all values
//! in a bucket tied (mid-ranks). Legacy's histogram is raised first: each bucket's count is
//! spread over the buckets its image `[h(lo), h(hi))` overlaps, in proportion (fractional
//! counts; moving whole buckets by their midpoint would bias the test towards "slower",
//! see `stats::raised`). With `m_b`, `l_b` the modern and raised legacy counts of bucket
//! `b`, `n1`, `n2` their totals, `N = n1 + n2`, `t_b = m_b + l_b`:
//!
//! ```text
//! U     = sum_b m_b * (legacy count below b + l_b / 2)
//! sigma = sqrt(n1 n2 / 12 * ((N + 1) - sum_b max(t_b^3 - t_b, 0) / (N (N - 1))))
//! z     = sign(U - n1 n2 / 2) * max(|U - n1 n2 / 2| - 1/2, 0) / sigma,   p = P(Z >= z)
//! ```
//!
//! (identical histograms with `min_effect = 1` and `min_delta = 0`: `U = n1 n2 / 2`, `p =
//! 1/2`; `sigma = 0`: `z = 0`). The null hypothesis is "modern is no slower than `h(legacy)`"
//! rather than "no slower than legacy", so a tiny real difference with a tiny plain p-value
//! is not significant. Fails when `p < alpha` **and** the medians differ on the same terms,
//! `median_m > h(median_l)` (ratio above `min_effect`, difference above `min_delta`), unless
//! modern is within the budget. Inconclusive below 20 samples on either side, where the
//! normal approximation is poor and one slow call moves everything.
//!
//! **latency, confirmed** (both latency results carry the same flag): the p99 is over its
//! limit **and** the rank test fails at `alpha / 10` (with the median condition and the
//! 20-sample minimum). The rank test's p-value is a fixed-sample p-value and the controller
//! looks every tick; dividing alpha by 10 pays (by the union bound) for ten independent
//! looks, and looks at one growing sample are strongly correlated, so many more ticks cost
//! far less than proportionally. Requiring the p99 over its limit at the same time means a
//! chance alarm needs two different statistics to go wrong together. Without the rank test
//! the latency gate never confirms: a p99 alone is no sequential test.
//!
//! Measured in `tests/simulation.rs` (500 runs each, judged every 20 modern requests up to
//! 2,000, 100 looks): identical distributions under the plain test gave no false rollback,
//! and the rank test alone reached `alpha / 10` in 4 runs; a modern exactly at the default
//! limit (every request `h` of a legacy one) gave no rollback, the raised rank test alone
//! reaching `alpha / 10` in 3 runs. Under both default gates, judged every tick at the
//! bench's 10 % weight, no healthy modern was rolled back in 500 runs with +0.1 ms on
//! 0.3 ms, with the bench's warm-up shape (median x1.3, p99 x2-3, all under a millisecond),
//! with +2 % on 50 ms, or x1.6 on 1 ms over 20,000 requests a side; the judge before
//! `min_delta` rolled back 114, 500, 2 and 500 of them. A modern 3x slower on 20 ms is
//! still rolled back after a median of 20 modern requests (the slowest of 200 runs: 80), as
//! before, and a modern failing 30 % as fast as before (the error gate does not change).
//!
//! **shadow-diff.** `rate` is the real-difference rate of the step's comparisons. Fails when
//! `rate > max_rate`; inconclusive below `min_compared` comparisons or without a shadow
//! window. Confirmed when `rate * compared >= 5` and the always-valid lower bound (level
//! `alpha`) of `rate * compared` differing of `compared` exceeds `max_rate`. (The rate is
//! usually the worst field's, a maximum over fields, so this confirmation is approximate;
//! the gate is non-critical by default.)
//!
//! A gate whose own limits are invalid (NaN, out of range: see [`crate::validate`]) or whose
//! input is unusable (a histogram longer than the bucket layout, a layout that does not
//! ascend, a NaN rate) is inconclusive, never a pass.
//!
//! # Decision
//!
//! 1. **Roll back** when any *critical* gate is confirmed: at once, whatever `min_requests`
//!    and `interval` say (mid-interval), because the confirmation is a sequential test.
//! 2. **Promote** when every gate passes, each side has at least `max(min_requests, 1)`
//!    requests and `elapsed_in_step >= interval`. Inconclusive never counts as a pass: no
//!    data never counts as success.
//! 3. **Hold** otherwise, with [`Missing`] saying how many more requests (per side), shadow
//!    comparisons and how much more time the step needs, and the reason naming the
//!    inconclusive and failing gates. A failing gate that is not critical, or critical but
//!    not yet confirmed, holds: it neither promotes (modern looks worse) nor rolls back (the
//!    breach is not established, or the operator marked the gate as advisory). Such a hold
//!    ends when more data confirms the breach or clears it; if it never does, the step
//!    holds until an operator acts.

use std::time::Duration;

use serde::Serialize;

use crate::gates::{ErrorGate, Gates, LatencyGate, ShadowGate, StepSpec};
use crate::stats::{lower_bound, mann_whitney_raised, quantile_us, raised, upper_bound};
use crate::window::{SideWindow, Window};

/// Gate name of the error-rate comparison.
pub const ERROR_RATE: &str = "error-rate";
/// Gate name of the p99 latency ratio.
pub const LATENCY_P99: &str = "latency-p99";
/// Gate name of the Mann-Whitney rank test on latency.
pub const LATENCY_RANK: &str = "latency-rank";
/// Gate name of the shadow difference rate.
pub const SHADOW_DIFF: &str = "shadow-diff";
/// Gate name of the route's SLOs (added by the controller from the SLO evaluator: the judge
/// itself never produces it).
pub const SLO: &str = "slo";

/// Latency samples per side below which the rank test is inconclusive.
pub const MIN_RANK_SAMPLES: u64 = 20;
/// Latency samples per side below which the p99 ratio is inconclusive.
pub const MIN_P99_SAMPLES: u64 = 100;
/// Bad events (errors, differing comparisons) below which no breach is confirmed.
pub const MIN_CONFIRM_EVENTS: u64 = 5;
/// The rank test confirms a latency breach at `alpha / CONFIRM_ALPHA_DIVISOR`.
pub const CONFIRM_ALPHA_DIVISOR: f64 = 10.0;

/// What the controller should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Move to the next step (or finish after the last).
    Promote,
    /// Stay at this weight and ask again next tick.
    Hold,
    /// Set the weight to 0 and stop the rollout until an operator restarts it.
    Rollback,
}

/// One gate's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    /// Too little (or unusable) data to say; never counts as a pass.
    Inconclusive,
}

/// The judge's answer, stored as the evidence of a `rollout.verdict` event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    pub decision: Decision,
    /// One sentence with the numbers behind the decision (not the decision itself, which
    /// every reader shows from `decision`).
    pub reason: String,
    /// Every enabled gate, in the order error-rate, latency-p99, latency-rank, shadow-diff.
    pub gates: Vec<GateResult>,
    /// On a hold: what the step still needs. `None` when nothing countable is missing (a
    /// hold on a failing gate) and on promote or rollback.
    pub missing: Option<Missing>,
}

/// What a held step still needs before it could promote.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Missing {
    /// More modern requests (or latency samples, when a latency gate needs more).
    pub requests: u64,
    /// More legacy requests (or latency samples).
    pub legacy_requests: u64,
    /// More shadow comparisons, when a shadow gate needs more.
    pub shadow_compared: u64,
    /// More time in the step (seconds in serialized form).
    #[serde(with = "crate::secs")]
    pub time: Duration,
}

impl Missing {
    fn is_nothing(&self) -> bool {
        *self == Missing::default()
    }
}

/// One gate's outcome with its numbers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GateResult {
    /// [`ERROR_RATE`], [`LATENCY_P99`], [`LATENCY_RANK`] or [`SHADOW_DIFF`].
    pub gate: &'static str,
    pub critical: bool,
    pub outcome: Outcome,
    /// Breached with high confidence (module doc); a critical gate's confirmation rolls back.
    pub confirmed: bool,
    pub observed: Observed,
    /// One sentence with the numbers.
    pub detail: String,
}

/// The numbers behind a gate's outcome. Every `f64` is finite; a quantity that does not
/// exist yet (a rate without requests) is `None`, never NaN.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Observed {
    ErrorRate(ErrorEvidence),
    LatencyP99(P99Evidence),
    LatencyRank(RankEvidence),
    ShadowDiff(ShadowEvidence),
    /// The SLO whose alert or budget stands against promoting.
    Slo {
        slo: String,
    },
    /// No numbers: the gate's limits or its input are unusable, or its input is absent.
    Unavailable {
        problem: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErrorEvidence {
    pub modern_requests: u64,
    pub modern_errors: u64,
    pub legacy_requests: u64,
    pub legacy_errors: u64,
    pub modern_rate: Option<f64>,
    pub legacy_rate: Option<f64>,
    /// `limit(legacy_rate)`: what modern's point estimate is held to.
    pub limit: Option<f64>,
    /// Always-valid lower bound of modern's rate (level `alpha / 2`).
    pub modern_lower_bound: f64,
    /// Always-valid upper bound of legacy's rate (level `alpha / 2`).
    pub legacy_upper_bound: f64,
    /// `limit(legacy_upper_bound)`: what `modern_lower_bound` must exceed to confirm.
    pub confirm_limit: f64,
    pub alpha: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct P99Evidence {
    pub modern_samples: u64,
    pub legacy_samples: u64,
    pub modern_p99_ms: Option<f64>,
    pub legacy_p99_ms: Option<f64>,
    pub ratio: Option<f64>,
    pub max_ratio: f64,
    /// `modern_p99_ms - legacy_p99_ms`.
    pub delta_ms: Option<f64>,
    pub min_delta_ms: f64,
    /// What modern's p99 is held to: `max(legacy * max_ratio, legacy + min_delta)`; `None`
    /// without legacy samples (or for a limit too large for an `f64`).
    pub limit_ms: Option<f64>,
    /// The absolute budget, if any.
    pub max_p99_ms: Option<f64>,
    /// Modern's p99 is within `max_p99`: the latency gate passes whatever legacy does.
    pub within_budget: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RankEvidence {
    pub modern_samples: u64,
    pub legacy_samples: u64,
    /// Pairs (modern, legacy) in which modern is slower than the legacy value raised to
    /// `max(x * min_effect, x + min_delta)`, ties counting one half.
    pub u: f64,
    /// `U` under no difference: `modern_samples * legacy_samples / 2`.
    pub u_expected: f64,
    pub z: f64,
    /// One-sided: probability of a `z` this high if modern were no slower.
    pub p_value: f64,
    pub alpha: f64,
    /// Level at which the rank test confirms a breach: `alpha / 10`.
    pub confirm_alpha: f64,
    pub modern_median_ms: Option<f64>,
    pub legacy_median_ms: Option<f64>,
    pub median_ratio: Option<f64>,
    pub min_effect: f64,
    /// `modern_median_ms - legacy_median_ms`.
    pub median_delta_ms: Option<f64>,
    pub min_delta_ms: f64,
    /// The absolute budget on modern's p99, if any.
    pub max_p99_ms: Option<f64>,
    /// Modern's p99 is within `max_p99`: the latency gate passes whatever legacy does.
    pub within_budget: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShadowEvidence {
    pub compared: u64,
    pub differing_rate: f64,
    pub max_rate: f64,
    pub min_compared: u64,
    /// Always-valid lower bound of the difference rate (level `alpha`).
    pub lower_bound: f64,
    pub alpha: f64,
}

/// Judges one tick of a step (module doc). Pure and stateless: the same inputs always give
/// the same verdict.
pub fn judge(spec: &StepSpec, gates: &Gates, w: &Window) -> Verdict {
    let mut results = Vec::with_capacity(4);
    if let Some(g) = &gates.error {
        results.push(error_gate(g, w));
    }
    if let Some(g) = &gates.latency {
        latency_gates(g, w, &mut results);
    }
    if let Some(g) = &gates.shadow {
        results.push(shadow_gate(g, w));
    }
    decide(spec, gates, w, results)
}

fn decide(spec: &StepSpec, gates: &Gates, w: &Window, results: Vec<GateResult>) -> Verdict {
    let elapsed = secs(w.elapsed_in_step);
    let breaches: Vec<&GateResult> = results
        .iter()
        .filter(|r| r.critical && r.confirmed)
        .collect();
    if !breaches.is_empty() {
        let names = join_names(breaches.iter().map(|r| r.gate));
        let details: Vec<&str> = breaches.iter().map(|r| r.detail.as_str()).collect();
        let reason = format!(
            "{names} breached with high confidence after {elapsed} in the step: {}",
            details.join("; ")
        );
        return Verdict {
            decision: Decision::Rollback,
            reason,
            gates: results,
            missing: None,
        };
    }

    let modern = side(&w.modern);
    let legacy = side(&w.legacy);
    let min = spec.min_requests.max(1);
    let mut missing = Missing {
        requests: min.saturating_sub(modern.requests),
        legacy_requests: min.saturating_sub(legacy.requests),
        shadow_compared: 0,
        time: spec.interval.saturating_sub(w.elapsed_in_step),
    };
    if gates.latency.is_some() {
        let need = MIN_P99_SAMPLES;
        missing.requests = missing
            .requests
            .max(need.saturating_sub(histogram_total(&w.modern.latency)));
        missing.legacy_requests = missing
            .legacy_requests
            .max(need.saturating_sub(histogram_total(&w.legacy.latency)));
    }
    if let Some(g) = &gates.shadow {
        let compared = w.shadow.as_ref().map_or(0, |s| s.compared);
        missing.shadow_compared = g.min_compared.saturating_sub(compared);
    }

    let all_pass = results.iter().all(|r| r.outcome == Outcome::Pass);
    if all_pass && modern.requests >= min && legacy.requests >= min && missing.time.is_zero() {
        let reason = format!(
            "{} with {} modern and {} legacy requests after {elapsed} in the step",
            match results.len() {
                0 => "no gate is enabled".to_owned(),
                1 => format!("gate {} passes", results[0].gate),
                n => format!("all {n} gates pass"),
            },
            modern.requests,
            legacy.requests,
        );
        return Verdict {
            decision: Decision::Promote,
            reason,
            gates: results,
            missing: None,
        };
    }

    let mut parts = Vec::new();
    let mut needs = Vec::new();
    if missing.requests > 0 {
        needs.push(format!("{} more modern requests", missing.requests));
    }
    if missing.legacy_requests > 0 {
        needs.push(format!("{} more legacy requests", missing.legacy_requests));
    }
    if missing.shadow_compared > 0 {
        needs.push(format!(
            "{} more shadow comparisons",
            missing.shadow_compared
        ));
    }
    if !missing.time.is_zero() {
        needs.push(format!("{} more in the step", secs(missing.time)));
    }
    if !needs.is_empty() {
        parts.push(format!("needs {}", join_and(&needs)));
    }
    let inconclusive: Vec<String> = results
        .iter()
        .filter(|r| r.outcome == Outcome::Inconclusive)
        .map(|r| format!("{} ({})", r.gate, headline(r)))
        .collect();
    if !inconclusive.is_empty() {
        parts.push(format!("inconclusive: {}", inconclusive.join(", ")));
    }
    let failing: Vec<String> = results
        .iter()
        .filter(|r| r.outcome == Outcome::Fail)
        .map(|r| {
            let kind = if r.critical {
                "critical, not confirmed yet"
            } else if r.confirmed {
                "non-critical, confirmed"
            } else {
                "non-critical"
            };
            format!("{} ({}; {kind})", r.gate, headline(r))
        })
        .collect();
    if !failing.is_empty() {
        parts.push(format!("failing: {}", failing.join(", ")));
    }
    Verdict {
        decision: Decision::Hold,
        reason: parts.join("; "),
        gates: results,
        missing: (!missing.is_nothing()).then_some(missing),
    }
}

/// A side's counts with errors capped at requests.
struct Counts {
    requests: u64,
    errors: u64,
}

fn side(s: &SideWindow) -> Counts {
    Counts {
        requests: s.requests,
        errors: s.errors.min(s.requests),
    }
}

fn histogram_total(h: &[u64]) -> u64 {
    h.iter().fold(0u64, |a, c| a.saturating_add(*c))
}

fn error_gate(g: &ErrorGate, w: &Window) -> GateResult {
    if let Some(p) = g.problems("gates.error").into_iter().next() {
        return unavailable(ERROR_RATE, g.critical, p.to_string());
    }
    let (m, l) = (side(&w.modern), side(&w.legacy));
    let (mn, me, ln, le) = (
        m.requests as f64,
        m.errors as f64,
        l.requests as f64,
        l.errors as f64,
    );
    let limit_of = |r: f64| (r + g.max_absolute).max(r * g.max_relative).min(1.0);
    let half = g.alpha / 2.0;
    let modern_rate = (m.requests > 0).then(|| me / mn);
    let legacy_rate = (l.requests > 0).then(|| le / ln);
    let limit = legacy_rate.map(limit_of);
    let modern_lower_bound = lower_bound(me, mn, half);
    let legacy_upper_bound = upper_bound(le, ln, half);
    let confirm_limit = limit_of(legacy_upper_bound);
    let confirmed = m.errors >= MIN_CONFIRM_EVENTS && modern_lower_bound > confirm_limit;

    let (outcome, detail) = match (modern_rate, legacy_rate, limit) {
        (None, _, _) => (Outcome::Inconclusive, "no modern requests yet".to_owned()),
        (_, None, _) | (_, _, None) => (
            Outcome::Inconclusive,
            "no legacy requests to compare with (at 100 % weight the controller must pass a \
             legacy baseline)"
                .to_owned(),
        ),
        (Some(mr), Some(lr), Some(limit)) => {
            let over = mr > limit;
            let verdict = if confirmed {
                format!(
                    "confirmed: modern is at least {} (alpha {}), above the limit's worst case {}",
                    pct(modern_lower_bound),
                    g.alpha,
                    pct(confirm_limit)
                )
            } else {
                format!(
                    "not confirmed: modern at least {} vs the limit's worst case {} (alpha {})",
                    pct(modern_lower_bound),
                    pct(confirm_limit),
                    g.alpha
                )
            };
            (
                // `confirmed` implies `over` (LB <= estimate, UB >= estimate), kept explicit.
                if over || confirmed {
                    Outcome::Fail
                } else {
                    Outcome::Pass
                },
                format!(
                    "modern {} errors ({} of {}) {} the limit {} = max(legacy {} + {}, legacy x {}) \
                     with legacy at {} of {}; {verdict}",
                    pct(mr),
                    m.errors,
                    m.requests,
                    if over { "above" } else { "within" },
                    pct(limit),
                    pct(lr),
                    pts(g.max_absolute),
                    g.max_relative,
                    l.errors,
                    l.requests,
                ),
            )
        }
    };
    GateResult {
        gate: ERROR_RATE,
        critical: g.critical,
        outcome,
        confirmed,
        observed: Observed::ErrorRate(ErrorEvidence {
            modern_requests: m.requests,
            modern_errors: m.errors,
            legacy_requests: l.requests,
            legacy_errors: l.errors,
            modern_rate,
            legacy_rate,
            limit,
            modern_lower_bound,
            legacy_upper_bound,
            confirm_limit,
            alpha: g.alpha,
        }),
        detail,
    }
}

/// Why the latency histograms cannot be read, if they cannot.
fn layout_problem(w: &Window) -> Option<String> {
    let lower = &w.bucket_lower_us;
    let longest = w.modern.latency.len().max(w.legacy.latency.len());
    if longest > lower.len() {
        return Some(format!(
            "a latency histogram has {longest} buckets but the layout only {}",
            lower.len()
        ));
    }
    if lower.windows(2).any(|p| p[0] >= p[1]) {
        return Some("the bucket layout does not strictly ascend".to_owned());
    }
    None
}

fn latency_gates(g: &LatencyGate, w: &Window, out: &mut Vec<GateResult>) {
    let problem = g
        .problems("gates.latency")
        .into_iter()
        .next()
        .map(|p| p.to_string())
        .or_else(|| layout_problem(w));
    if let Some(p) = problem {
        out.push(unavailable(LATENCY_P99, g.critical, p.clone()));
        if g.rank_test {
            out.push(unavailable(LATENCY_RANK, g.critical, p));
        }
        return;
    }
    let (m, l, lower) = (&w.modern.latency, &w.legacy.latency, &w.bucket_lower_us);
    let (mn, ln) = (histogram_total(m), histogram_total(l));
    let ms = |us: Option<f64>| us.map(|v| v / 1000.0);
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        // Floored at the 1 us resolution: no division by zero, no NaN.
        (Some(a), Some(b)) => Some(a.max(1.0) / b.max(1.0)),
        _ => None,
    };
    let minus = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a - b);
    let delta_us = g.min_delta.as_secs_f64() * 1e6;
    let budget_us = g.max_p99.map(|d| d.as_secs_f64() * 1e6);
    let (p99_m, p99_l) = (quantile_us(m, lower, 0.99), quantile_us(l, lower, 0.99));
    let (med_m, med_l) = (quantile_us(m, lower, 0.5), quantile_us(l, lower, 0.5));
    let p99_ratio = ratio(p99_m, p99_l);
    let p99_delta = minus(p99_m, p99_l);
    let median_ratio = ratio(med_m, med_l);
    let median_delta = minus(med_m, med_l);
    let within_budget = budget_us.is_some_and(|b| p99_m.is_some_and(|p| p <= b));
    // Over both limits, the relative and the absolute one, and not within the budget.
    let p99_over = !within_budget
        && p99_ratio.is_some_and(|r| r > g.max_p99_ratio)
        && p99_delta.is_some_and(|d| d > delta_us);
    let p99_limit = p99_l
        .map(|l| (l.max(1.0) * g.max_p99_ratio).max(l + delta_us))
        .filter(|v| v.is_finite());

    let rank = g.rank_test.then(|| {
        let raised_legacy = raised(l, lower, g.min_effect, delta_us);
        mann_whitney_raised(m, &raised_legacy)
    });
    let rank_enough = mn >= MIN_RANK_SAMPLES && ln >= MIN_RANK_SAMPLES;
    // The same terms for the medians: above legacy's by the ratio and by the delta.
    let effect = !within_budget
        && median_ratio.is_some_and(|r| r > g.min_effect)
        && median_delta.is_some_and(|d| d > delta_us);
    let slower_at = |alpha: f64| rank.is_some_and(|r| rank_enough && effect && r.p_value < alpha);
    let confirm_alpha = g.alpha / CONFIRM_ALPHA_DIVISOR;
    let confirmed = p99_over && slower_at(confirm_alpha);
    let budget_note = |what: &str| match g.max_p99 {
        Some(b) if within_budget => format!(
            "; modern's p99 {} is within the budget max_p99 {}, so {what} passes",
            ms_text(ms(p99_m)),
            ms_text(Some(b.as_secs_f64() * 1000.0))
        ),
        _ => String::new(),
    };

    let p99_enough = mn >= MIN_P99_SAMPLES && ln >= MIN_P99_SAMPLES;
    let p99_outcome = if confirmed || (p99_enough && p99_over) {
        Outcome::Fail
    } else if p99_enough {
        Outcome::Pass
    } else {
        Outcome::Inconclusive
    };
    let p99_detail = match (p99_ratio, p99_delta) {
        (Some(r), Some(d)) => format!(
            "modern p99 {} vs legacy {}: ratio {} and {} {} the limit {} = max(legacy x {}, \
             legacy + {}){}{}",
            ms_text(ms(p99_m)),
            ms_text(ms(p99_l)),
            fixed(r),
            delta_text(d / 1000.0),
            if p99_over { "above" } else { "within" },
            ms_text(ms(p99_limit)),
            g.max_p99_ratio,
            ms_text(Some(delta_us / 1000.0)),
            budget_note("the latency gate"),
            if p99_enough {
                String::new()
            } else {
                format!(" ({mn} modern and {ln} legacy samples, needs {MIN_P99_SAMPLES} each)")
            }
        ),
        _ => format!(
            "no latency samples yet ({mn} modern, {ln} legacy; needs {MIN_P99_SAMPLES} each)"
        ),
    };
    let max_p99_ms = g.max_p99.map(|b| b.as_secs_f64() * 1000.0);
    let min_delta_ms = delta_us / 1000.0;
    out.push(GateResult {
        gate: LATENCY_P99,
        critical: g.critical,
        outcome: p99_outcome,
        confirmed,
        observed: Observed::LatencyP99(P99Evidence {
            modern_samples: mn,
            legacy_samples: ln,
            modern_p99_ms: ms(p99_m),
            legacy_p99_ms: ms(p99_l),
            ratio: p99_ratio,
            max_ratio: g.max_p99_ratio,
            delta_ms: ms(p99_delta),
            min_delta_ms,
            limit_ms: ms(p99_limit),
            max_p99_ms,
            within_budget,
        }),
        detail: p99_detail,
    });

    let Some(rank) = rank else { return };
    let slower = slower_at(g.alpha);
    let outcome = if confirmed || slower {
        Outcome::Fail
    } else if rank_enough {
        Outcome::Pass
    } else {
        Outcome::Inconclusive
    };
    let detail = if rank_enough {
        format!(
            "Mann-Whitney U {:.1} of {:.0} pairs against legacy raised to max(x {}, x + {}) \
             (z {}, one-sided p {}) {} at alpha {}; median {} vs legacy {} (ratio {}, {}){}{}",
            rank.u,
            rank.n1 * rank.n2,
            g.min_effect,
            ms_text(Some(min_delta_ms)),
            fixed(rank.z),
            p_text(rank.p_value),
            if rank.p_value < g.alpha {
                "significant"
            } else {
                "not significant"
            },
            g.alpha,
            ms_text(ms(med_m)),
            ms_text(ms(med_l)),
            median_ratio.map_or("n/a".to_owned(), fixed),
            median_delta.map_or("n/a".to_owned(), |d| delta_text(d / 1000.0)),
            budget_note("the rank test"),
            if confirmed {
                format!("; confirmed with the p99 over its limit and p below {confirm_alpha}")
            } else {
                String::new()
            }
        )
    } else {
        format!("{mn} modern and {ln} legacy samples, needs {MIN_RANK_SAMPLES} each")
    };
    out.push(GateResult {
        gate: LATENCY_RANK,
        critical: g.critical,
        outcome,
        confirmed,
        observed: Observed::LatencyRank(RankEvidence {
            modern_samples: mn,
            legacy_samples: ln,
            u: rank.u,
            u_expected: rank.n1 * rank.n2 / 2.0,
            z: rank.z,
            p_value: rank.p_value,
            alpha: g.alpha,
            confirm_alpha,
            modern_median_ms: ms(med_m),
            legacy_median_ms: ms(med_l),
            median_ratio,
            min_effect: g.min_effect,
            median_delta_ms: ms(median_delta),
            min_delta_ms,
            max_p99_ms,
            within_budget,
        }),
        detail,
    });
}

fn shadow_gate(g: &ShadowGate, w: &Window) -> GateResult {
    if let Some(p) = g.problems("gates.shadow").into_iter().next() {
        return unavailable(SHADOW_DIFF, g.critical, p.to_string());
    }
    let Some(s) = &w.shadow else {
        return unavailable(
            SHADOW_DIFF,
            g.critical,
            "no shadow comparisons in the window; is the canary shadowed?".to_owned(),
        );
    };
    if !s.differing_rate.is_finite() {
        return unavailable(
            SHADOW_DIFF,
            g.critical,
            format!("the difference rate is {}", s.differing_rate),
        );
    }
    let rate = s.differing_rate.clamp(0.0, 1.0);
    let n = s.compared as f64;
    let differing = rate * n;
    let lower = lower_bound(differing, n, g.alpha);
    let confirmed = differing >= MIN_CONFIRM_EVENTS as f64 && lower > g.max_rate;
    let enough = s.compared >= g.min_compared;
    let over = rate > g.max_rate;
    let outcome = if confirmed || (enough && over) {
        Outcome::Fail
    } else if enough {
        Outcome::Pass
    } else {
        Outcome::Inconclusive
    };
    let detail = format!(
        "{} of {} comparisons differ, {} the limit {}{}",
        pct(rate),
        s.compared,
        if over { "above" } else { "within" },
        pct(g.max_rate),
        if !enough {
            format!(" (needs {} comparisons)", g.min_compared)
        } else if confirmed {
            format!("; confirmed: at least {} (alpha {})", pct(lower), g.alpha)
        } else {
            String::new()
        }
    );
    GateResult {
        gate: SHADOW_DIFF,
        critical: g.critical,
        outcome,
        confirmed,
        observed: Observed::ShadowDiff(ShadowEvidence {
            compared: s.compared,
            differing_rate: rate,
            max_rate: g.max_rate,
            min_compared: g.min_compared,
            lower_bound: lower,
            alpha: g.alpha,
        }),
        detail,
    }
}

fn unavailable(gate: &'static str, critical: bool, problem: String) -> GateResult {
    GateResult {
        gate,
        critical,
        outcome: Outcome::Inconclusive,
        confirmed: false,
        detail: problem.clone(),
        observed: Observed::Unavailable { problem },
    }
}

/// The few numbers of a gate worth repeating in the verdict's reason.
fn headline(r: &GateResult) -> String {
    match &r.observed {
        Observed::ErrorRate(e) => match (e.modern_rate, e.limit) {
            (Some(m), Some(l)) => format!("modern {} vs limit {}", pct(m), pct(l)),
            _ => r.detail.clone(),
        },
        Observed::LatencyP99(p) => match (p.modern_p99_ms, p.limit_ms) {
            (Some(m), Some(limit)) if r.outcome != Outcome::Inconclusive => format!(
                "p99 {} vs limit {} (ratio {}, {})",
                ms_text(Some(m)),
                ms_text(Some(limit)),
                p.ratio.map_or("n/a".to_owned(), fixed),
                p.delta_ms.map_or("n/a".to_owned(), delta_text)
            ),
            _ => format!(
                "{} modern and {} legacy samples, needs {MIN_P99_SAMPLES} each",
                p.modern_samples, p.legacy_samples
            ),
        },
        Observed::LatencyRank(k) if r.outcome != Outcome::Inconclusive => format!(
            "p {}, median ratio {}",
            p_text(k.p_value),
            k.median_ratio.map_or("n/a".to_owned(), fixed)
        ),
        Observed::ShadowDiff(s) => format!(
            "{} of {} compared vs limit {}",
            pct(s.differing_rate),
            s.compared,
            pct(s.max_rate)
        ),
        Observed::LatencyRank(_) | Observed::Slo { .. } | Observed::Unavailable { .. } => {
            r.detail.clone()
        }
    }
}

fn join_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<String> = names.map(str::to_owned).collect();
    join_and(&v)
}

fn join_and(v: &[String]) -> String {
    match v {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn pct(x: f64) -> String {
    format!("{:.2} %", x * 100.0)
}

fn pts(x: f64) -> String {
    format!("{:.2} pt", x * 100.0)
}

fn fixed(x: f64) -> String {
    format!("{x:.2}")
}

fn p_text(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

fn ms_text(v: Option<f64>) -> String {
    v.map_or("n/a".to_owned(), |v| format!("{v:.2} ms"))
}

fn delta_text(ms: f64) -> String {
    format!("{ms:+.2} ms")
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
