//! ficus rollout: the judge that decides, from both sides' telemetry, whether a canary step
//! promotes, holds or rolls back, and the rollout spec it judges against. Pure functions over
//! plain data (DESIGN invariant 4); the controller that ticks, reads telemetry and acts
//! through `apply` lives elsewhere.
//!
//! A rollout walks a route's weight through [`RolloutSpec::steps`] (for example 1, 5, 25, 50,
//! 100 %). At every tick the controller builds a [`Window`] and calls [`judge()`], which
//! returns a [`Verdict`]: [`Decision::Promote`], [`Decision::Hold`] (with what is
//! [`Missing`]) or [`Decision::Rollback`], plus every gate's numbers. The rules and formulas
//! are in the [`judge`](mod@judge) module; the statistics in `stats`.
//!
//! # What the controller must do
//!
//! - **Windows are cumulative since the step started**: snapshot each side's telemetry
//!   totals (`SideStats::totals()`) when the weight changes and pass the differences
//!   (requests = sum of classes, errors = the 5xx class, latency = the fine histogram), with
//!   `bucket_lower_us` from `ficus_telemetry::fine_lower_us`. Not a sliding window: the
//!   error bounds are valid under continuous monitoring of one growing sequence, which is
//!   what lets the judge be asked every tick and still keep its false-alarm rate at `alpha`
//!   per step.
//! - **A rollback is terminal**: set the weight to 0 through `apply` and stop the rollout
//!   until an operator explicitly restarts it (from the first step). The judge is stateless;
//!   this rule is what makes flapping impossible by construction: weights only move up
//!   (promote) or to 0 once (rollback), never back and forth.
//! - **Promote** moves to [`next_step`]; when it returns `None` the rollout is complete.
//!   The windows restart with the new step.
//! - **At 100 % weight legacy answers nothing**, so pass a legacy baseline (for example the
//!   legacy window of the previous step); with no legacy requests the error gate is
//!   inconclusive and the step holds.
//! - **Hold** means ask again next tick. A step can hold for ever when a gate fails without
//!   ever being confirmed or data never arrives; bound a step's total time and pause the
//!   rollout for an operator when it runs out (never promote on a timeout).
//! - Each step spends its own `alpha`: over `k` steps a false rollback has probability at
//!   most `k * alpha` (each false rollback only costs a restart, never a bad promotion).
//! - Record every verdict that changes something (and holds, rate-limited) as an event with
//!   the verdict as evidence; it serializes with every number.
//! - Validate specs with [`validate`] when the config is loaded; the judge re-checks gate
//!   limits and treats a bad one as inconclusive, so it holds rather than guesses.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod gates;
pub mod judge;
mod spec;
mod stats;
mod window;

pub use gates::{ErrorGate, Gates, LatencyGate, ShadowGate, StepSpec};
pub use judge::{
    judge, Decision, ErrorEvidence, GateResult, Missing, Observed, Outcome, P99Evidence,
    RankEvidence, ShadowEvidence, Verdict, CONFIRM_ALPHA_DIVISOR, ERROR_RATE, LATENCY_P99,
    LATENCY_RANK, MIN_CONFIRM_EVENTS, MIN_P99_SAMPLES, MIN_RANK_SAMPLES, SHADOW_DIFF, SLO,
};
pub use spec::{next_step, validate, RolloutSpec, SpecError, MAX_STEPS};
pub use window::{ShadowWindow, SideWindow, Window};

/// Optional durations as seconds (`f64`) or `null` in serialized form.
mod secs_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => crate::secs::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Secs(#[serde(with = "crate::secs")] Duration);
        Ok(Option::<Secs>::deserialize(d)?.map(|s| s.0))
    }
}

/// Durations as seconds (`f64`) in serialized form: what people write in config and read in
/// evidence, rather than serde's `{secs, nanos}`.
mod secs {
    use std::time::Duration;

    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(|_| {
            D::Error::custom(format!(
                "{v} is not a duration: write a finite number of seconds, at least 0"
            ))
        })
    }
}
