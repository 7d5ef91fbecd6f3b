//! ficus SLOs: service level objectives and error budgets per route, evaluated with the
//! Google SRE workbook's multi-window multi-burn-rate alerts, which can gate rollouts.
//! Pure functions over plain data: no I/O, no clock (time is always passed in as unix
//! seconds), no threads. The caller keeps the counts, stores them, ticks, records events
//! and serves HTTP.
//!
//! An SLO is a [`Spec`]: which requests of a route ([`Scope`]), which of them are bad
//! ([`Sli`]), an objective in percent over a [`Window`], and a burn-rate table
//! ([`default_burn_rules`]). Its counts live in a [`History`] of per-minute
//! [`Counts`]; [`evaluate`] turns spec and history into an [`Evaluation`] (SLI, budget
//! remaining, burn rates, which rules fire); an [`AlertState`] turns evaluations into
//! [`Transition`]s, and [`alertmanager_body`] into webhook payloads. [`prometheus_rules`]
//! writes the equivalent Prometheus rules for teams that alert from Prometheus.
//!
//! # What the caller must do
//!
//! - **Validate** every spec with [`validate`] when the config is loaded; the evaluator
//!   assumes valid specs.
//! - **Count exactly, fleet-wide, per minute**: for each SLO, every request of its scope
//!   (for [`Scope::Route`], each client request once as the client saw it) and the bad
//!   ones by [`Sli::is_bad`]; sum the nodes' counts per minute (minute = unix seconds / 60).
//! - **Keep one [`History`] per SLO** and set the current minute with
//!   [`History::set_minute`] as it fills (it *replaces* the minute). At start-up, load the
//!   stored minutes of the last 32 days, each once ([`History::for_spec`] for rolling
//!   windows over 31 days); older minutes are folded into hours (see [`history`]).
//! - **Evaluate every few seconds** with [`evaluate`] at the current time; feed each
//!   evaluation to the SLO's [`AlertState::update`] and record every [`Transition`] as an
//!   event. Gate rollouts on [`Evaluation::page`] (or on the page alert being open).
//! - **After a restart or a leader change**, restore each [`AlertState`] from the last
//!   recorded transitions with [`AlertState::restore`] before the first update.
//! - **Monthly reports**: compute [`compliance`] of a finished calendar month within a day
//!   of its end (the hour buckets keep 32 days) and record the result.
//! - **Prometheus**: export `ficus_slo_requests_total{slo, route, scope}` and
//!   `ficus_slo_bad_requests_total{slo, route, scope}` (the same counts, `slo` =
//!   [`Spec::id`]) and serve [`prometheus_rules`] to teams that want them.
//!
//! # Cost
//!
//! A [`History`] holds 47,328 bytes (about 142 MB for 3,000 SLOs); [`evaluate`] walks the
//! minute ring once as far as the longest window in it and the hour buckets of the SLO
//! window once, whatever the number of windows: about 4 µs per SLO with a full 30-day
//! history in a release build (so some 12 ms per round for 3,000 SLOs).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod alerts;
pub mod eval;
pub mod history;
pub mod rules;
pub mod spec;
mod time;

pub use alerts::{
    alert_name, alertmanager_body, fingerprint, sloth_labels, AlertState, Transition,
};
pub use eval::{
    compliance, evaluate, month_bounds, Evaluation, RuleEval, WindowBurn, STANDARD_WINDOWS_S,
};
pub use history::{Counts, History, HOURS_SPAN, MINUTE_SPAN};
pub use rules::{prom_duration, prometheus_rules, PROM_BUCKETS_SECONDS};
pub use spec::{
    default_burn_rules, validate, BurnRule, Scope, Severity, Sli, Spec, SpecError, Window,
};
pub use time::{month_start, next_month_start, rfc3339, ZERO_TIME};
