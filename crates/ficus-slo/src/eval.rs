//! The evaluation of one SLO at one instant: the SLI and error budget over the SLO window,
//! burn rates over the alert windows, and which burn-rate rules fire.
//!
//! # Windows
//!
//! "The last N seconds" at `now` are the minutes `[now/60 - N/60 + 1, now/60 + 1)`: the
//! current, partly filled minute included (the caller sets it as it fills) and the oldest
//! minute whole, so a window is N seconds long to within a minute. The SLO window is the
//! last `days` days for a rolling window (its oldest edge rounded up to the hour where it
//! reaches past the minute ring, see [`crate::history`]), or the current UTC month from
//! 00:00 on the 1st for a calendar one.
//!
//! # Numbers
//!
//! With `budget = 1 - objective/100` and a window's counts `(total, bad)`:
//!
//! - burn rate = `(bad / total) / budget`, `None` without requests. A burn rate of 1 spends
//!   exactly the budget over the SLO window; 14.4 spends 2 % of a 30-day budget in an hour.
//! - budget remaining = `1 - bad / (budget * total)` over the SLO window: 1 with nothing
//!   spent, 0 when spent, negative when overspent; 1 without requests.
//! - time to exhaustion = `budget_remaining * period_s / burn_rate_1h`: how long the rest
//!   of the budget lasts if the last hour's error rate and the window's average traffic
//!   continue. `period_s` is the rolling window or the length of the current month.
//!
//! # Rules
//!
//! A rule fires when the burn rates over its long and its short window both reach its
//! factor (within a relative 1e-9, so that a decimal objective does not miss an exact
//! threshold) and both windows hold at least `min_requests` requests. Page and ticket are
//! independent: a page does not imply a ticket (with the default table a ticket rule
//! usually fires too during an outage, but nothing makes it).

use serde::{Deserialize, Serialize};

use crate::history::{Counts, History};
use crate::spec::{Severity, Spec, Window};
use crate::time::{month_start, next_month_start};

/// Windows always evaluated, for the Sloth-named series and the dashboards: 5m, 30m, 1h,
/// 2h, 6h, 1d and 3d.
pub const STANDARD_WINDOWS_S: [u32; 7] = [300, 1800, 3600, 7200, 21_600, 86_400, 259_200];

/// Relative tolerance on the burn-rate comparison of a rule.
const FACTOR_TOLERANCE: f64 = 1e-9;

/// One window's counts and burn rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowBurn {
    pub seconds: u32,
    pub counts: Counts,
    /// `(bad / total) / error_budget`, `None` without requests.
    pub burn_rate: Option<f64>,
}

/// One burn-rate rule at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleEval {
    pub severity: Severity,
    pub long_s: u32,
    pub short_s: u32,
    pub factor: f64,
    pub long: WindowBurn,
    pub short: WindowBurn,
    /// Either window holds fewer than `min_requests` requests: the rule cannot fire.
    pub guarded: bool,
    /// Both burn rates reach `factor` and the rule is not guarded.
    pub firing: bool,
}

/// Everything known about one SLO at one instant; serializes with every number, for
/// events, the API and alert payloads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// [`Spec::id`].
    pub slo: String,
    /// Unix seconds of the evaluation.
    pub at: i64,
    /// Percent, as in the spec.
    pub objective: f64,
    /// Unix seconds where the SLO window starts, after hour rounding (module docs).
    pub window_start: i64,
    /// Length of the budget period in seconds (rolling days, or the current month).
    pub period_s: i64,
    /// Counts over the SLO window.
    pub window: Counts,
    /// Good ratio (0..=1) over the SLO window, `None` without requests.
    pub sli: Option<f64>,
    /// Good ratio over the last 5 minutes ("SLI now"), `None` without requests.
    pub sli_5m: Option<f64>,
    /// `1 - bad / (error_budget * total)` over the SLO window; 1 without requests; may go
    /// negative.
    pub budget_remaining: f64,
    /// One entry per window length of the rules and of [`STANDARD_WINDOWS_S`], ascending.
    pub burn_rates: Vec<WindowBurn>,
    /// Seconds until the budget is spent at the 1-hour burn rate; `None` when that burn rate
    /// is 0 or unknown, `Some(0.0)` when the budget is already spent.
    pub time_to_exhaustion_s: Option<f64>,
    /// One entry per rule, in the spec's order.
    pub rules: Vec<RuleEval>,
    /// Any page rule fires.
    pub page: bool,
    /// Any ticket rule fires (independent of `page`).
    pub ticket: bool,
}

impl Evaluation {
    /// The burn rate over a window of `seconds`, when it was evaluated.
    pub fn burn(&self, seconds: u32) -> Option<&WindowBurn> {
        self.burn_rates
            .binary_search_by_key(&seconds, |w| w.seconds)
            .ok()
            .map(|i| &self.burn_rates[i])
    }

    /// Whether any rule of `severity` fires.
    pub fn firing(&self, severity: Severity) -> bool {
        match severity {
            Severity::Page => self.page,
            Severity::Ticket => self.ticket,
        }
    }
}

/// Evaluates `spec` over `history` at `now` (unix seconds). Pure; `history` must hold the
/// spec's series with the current minute set as it fills.
///
/// Cost: one backwards pass over the minute ring as far as the longest window within it
/// (4,320 minutes for the default 3-day window) plus one over the hour buckets of the SLO
/// window (up to about 700 for 30 days), whatever the number of windows: a few
/// microseconds in a release build, and two small allocations per window list.
pub fn evaluate(spec: &Spec, history: &History, now: i64) -> Evaluation {
    let to = now.div_euclid(60) + 1;
    let budget = spec.error_budget();

    let mut seconds: Vec<u32> = STANDARD_WINDOWS_S
        .iter()
        .copied()
        .chain(spec.rules.iter().flat_map(|r| [r.long_s, r.short_s]))
        .collect();
    seconds.sort_unstable();
    seconds.dedup();

    let window_from = match spec.window {
        Window::Rolling { days } => to - i64::from(days) * 1440,
        Window::CalendarMonth => month_start(now).div_euclid(60),
    };
    let mut froms: Vec<i64> = seconds.iter().map(|&s| to - i64::from(s / 60)).collect();
    froms.push(window_from);
    let sums = history.sums(to, &froms);
    let window = sums[seconds.len()];

    let burn = |c: Counts| c.bad_ratio().map(|r| r / budget);
    let burn_rates: Vec<WindowBurn> = seconds
        .iter()
        .zip(&sums)
        .map(|(&seconds, &counts)| WindowBurn {
            seconds,
            counts,
            burn_rate: burn(counts),
        })
        .collect();
    let find = |s: u32| {
        let i = seconds.binary_search(&s).unwrap_or(0);
        burn_rates[i]
    };

    let budget_remaining = if window.total == 0 {
        1.0
    } else {
        1.0 - window.bad as f64 / (budget * window.total as f64)
    };
    let period_s = spec.period_s(now);
    let time_to_exhaustion_s = if budget_remaining <= 0.0 {
        Some(0.0)
    } else {
        match find(3600).burn_rate {
            Some(b) if b > 0.0 => Some(budget_remaining * period_s as f64 / b),
            _ => None,
        }
    };

    let reaches = |w: &WindowBurn, factor: f64| {
        w.burn_rate
            .is_some_and(|b| b >= factor * (1.0 - FACTOR_TOLERANCE))
    };
    let rules: Vec<RuleEval> = spec
        .rules
        .iter()
        .map(|r| {
            let (long, short) = (find(r.long_s), find(r.short_s));
            let guarded =
                long.counts.total < spec.min_requests || short.counts.total < spec.min_requests;
            RuleEval {
                severity: r.severity,
                long_s: r.long_s,
                short_s: r.short_s,
                factor: r.factor,
                long,
                short,
                guarded,
                firing: !guarded && reaches(&long, r.factor) && reaches(&short, r.factor),
            }
        })
        .collect();
    let any = |s: Severity| rules.iter().any(|r| r.severity == s && r.firing);

    Evaluation {
        slo: spec.id(),
        at: now,
        objective: spec.objective,
        window_start: match spec.window {
            Window::CalendarMonth if history.newest_minute().is_none() => month_start(now),
            _ => history.effective_start(window_from) * 60,
        },
        period_s,
        window,
        sli: window.good_ratio(),
        sli_5m: find(300).counts.good_ratio(),
        budget_remaining,
        time_to_exhaustion_s,
        page: any(Severity::Page),
        ticket: any(Severity::Ticket),
        burn_rates,
        rules,
    }
}

/// Counts, good ratio and whether the objective was met over `[month_start, month_end)`
/// (unix seconds, normally [`month_start`] and [`next_month_start`] of a past month), for
/// monthly compliance reports. Met means `bad <= error_budget * total` (relative tolerance
/// 1e-9).
///
/// `None` without requests in the period, or when the history no longer holds its start:
/// the hour buckets keep 32 days, so compute a month's compliance within a day of its end
/// and record it. Bounds are rounded up to the minute and, before the minute ring, to the
/// hour (exact for month boundaries).
pub fn compliance(
    spec: &Spec,
    history: &History,
    month_start: i64,
    month_end: i64,
) -> Option<(Counts, f64, bool)> {
    let ceil_min = |s: i64| s.div_euclid(60) + i64::from(s.rem_euclid(60) != 0);
    let (from, to) = (ceil_min(month_start), ceil_min(month_end));
    if from < history.oldest_minute()? {
        return None;
    }
    let c = history.sum(from, to);
    let good = c.good_ratio()?;
    let met = c.bad as f64 <= spec.error_budget() * c.total as f64 * (1.0 + FACTOR_TOLERANCE);
    Some((c, good, met))
}

/// The calendar month of `at` as `(start, end)` unix seconds.
pub fn month_bounds(at: i64) -> (i64, i64) {
    (month_start(at), next_month_start(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{default_burn_rules, Scope, Sli};

    /// 2023-11-14T22:00:00Z.
    const T0: i64 = 1_699_999_200;

    fn spec(window: Window) -> Spec {
        Spec {
            name: "availability".into(),
            route: "orders".into(),
            scope: Scope::Route,
            sli: Sli::Availability {
                bad_429: false,
                bad_4xx: false,
            },
            objective: 99.9,
            window,
            rules: default_burn_rules(),
            min_requests: 0,
        }
    }

    fn c(total: u64, bad: u64) -> Counts {
        Counts { total, bad }
    }

    #[test]
    fn empty_history_is_quiet() {
        let s = spec(Window::Rolling { days: 30 });
        let e = evaluate(&s, &History::new(), T0);
        assert_eq!(e.slo, "orders/availability");
        assert_eq!(e.window, c(0, 0));
        assert_eq!(e.sli, None);
        assert_eq!(e.sli_5m, None);
        assert_eq!(e.budget_remaining, 1.0);
        assert_eq!(e.time_to_exhaustion_s, None);
        assert!(!e.page && !e.ticket);
        assert_eq!(e.window_start, T0 - 30 * 86_400 + 60);
        let secs: Vec<u32> = e.burn_rates.iter().map(|w| w.seconds).collect();
        assert_eq!(secs, STANDARD_WINDOWS_S);
        assert!(e.burn_rates.iter().all(|w| w.burn_rate.is_none()));
        assert_eq!(e.rules.len(), 4);
    }

    #[test]
    fn rule_windows_join_the_standard_ones() {
        let mut s = spec(Window::Rolling { days: 7 });
        s.rules.push(crate::BurnRule {
            severity: Severity::Ticket,
            long_s: 7 * 86_400,
            short_s: 600,
            factor: 1.0,
        });
        let e = evaluate(&s, &History::new(), T0);
        let secs: Vec<u32> = e.burn_rates.iter().map(|w| w.seconds).collect();
        assert_eq!(
            secs,
            [300, 600, 1800, 3600, 7200, 21_600, 86_400, 259_200, 604_800]
        );
        assert_eq!(e.burn(600).unwrap().seconds, 600);
        assert!(e.burn(601).is_none());
    }

    #[test]
    fn budget_and_time_to_exhaustion_by_hand() {
        let s = spec(Window::Rolling { days: 30 });
        let mut h = History::new();
        let now_min = T0 / 60 + 59; // evaluate at the end of the hour after T0
                                    // 10 days of 1,000 requests a minute, 1 bad (0.1 %: burn 1)...
        for m in now_min - 10 * 1440 + 1..=now_min - 60 {
            h.set_minute(m, c(1000, 1));
        }
        // ... then an hour at 2 % (burn 20).
        for m in now_min - 59..=now_min {
            h.set_minute(m, c(1000, 20));
        }
        let e = evaluate(&s, &h, now_min * 60 + 59);
        let minutes = 10 * 1440u64;
        let total = minutes * 1000;
        let bad = (minutes - 60) + 60 * 20;
        assert_eq!(e.window, c(total, bad));
        // budget remaining = 1 - bad / (0.001 * total) = 1 - 15,540 / 14,400
        let remaining = 1.0 - bad as f64 / (0.001 * total as f64);
        assert!((e.budget_remaining - remaining).abs() < 1e-9);
        assert!((e.budget_remaining - (1.0 - 15_540.0 / 14_400.0)).abs() < 1e-9);
        assert!(e.budget_remaining < 0.0);
        assert_eq!(e.time_to_exhaustion_s, Some(0.0));
        let burn_1h = e.burn(3600).unwrap().burn_rate.unwrap();
        assert!((burn_1h - 20.0).abs() < 1e-9);
        assert!((e.sli.unwrap() - (1.0 - bad as f64 / total as f64)).abs() < 1e-12);
        assert!((e.sli_5m.unwrap() - 0.98).abs() < 1e-12);
        // 1h and 5m at 20 >= 14.4: page.
        assert!(e.page);

        // Same with 0.05 % before the bad hour: some budget left.
        let mut h = History::new();
        for m in now_min - 10 * 1440 + 1..=now_min - 60 {
            h.set_minute(m, c(2000, 1));
        }
        for m in now_min - 59..=now_min {
            h.set_minute(m, c(2000, 40));
        }
        let e = evaluate(&s, &h, now_min * 60 + 59);
        let total = minutes * 2000;
        let bad = (minutes - 60) + 60 * 40;
        // bad = 16,740; budget = 0.001 * 28,800,000 = 28,800; remaining = 0.41875
        assert_eq!(bad, 16_740);
        assert!((e.budget_remaining - 0.418_75).abs() < 1e-9);
        // At burn 20 the rest goes in 0.41875 * 30 days / 20 = 54,270 s (15 h 4.5 min).
        let tte = e.time_to_exhaustion_s.unwrap();
        assert!((tte - 54_270.0).abs() < 1e-3, "{tte}");
        assert!((e.budget_remaining - (1.0 - bad as f64 / (0.001 * total as f64))).abs() < 1e-9);
    }

    #[test]
    fn no_burn_no_exhaustion() {
        let s = spec(Window::Rolling { days: 30 });
        let mut h = History::new();
        for m in T0 / 60 - 120..T0 / 60 {
            h.set_minute(m, c(10, 0));
        }
        let e = evaluate(&s, &h, T0);
        assert_eq!(e.burn(3600).unwrap().burn_rate, Some(0.0));
        assert_eq!(e.time_to_exhaustion_s, None);
        assert_eq!(e.budget_remaining, 1.0);
        assert_eq!(e.sli, Some(1.0));
    }

    #[test]
    fn windows_include_the_current_minute() {
        let s = spec(Window::Rolling { days: 30 });
        let mut h = History::new();
        let now = T0 + 30; // half way through minute T0/60
        h.set_minute(T0 / 60 - 5, c(100, 100)); // just outside the 5m window
        h.set_minute(T0 / 60 - 4, c(1, 0));
        h.set_minute(T0 / 60, c(3, 1));
        let e = evaluate(&s, &h, now);
        assert_eq!(e.burn(300).unwrap().counts, c(4, 1));
        assert_eq!(e.burn(1800).unwrap().counts, c(104, 101));
    }

    #[test]
    fn exact_threshold_fires() {
        // 1.44 % errors is burn 14.4 at 99.9 %, despite 1 - 0.999 not being 0.001 in f64.
        let s = spec(Window::Rolling { days: 30 });
        let mut h = History::new();
        for m in T0 / 60 - 59..=T0 / 60 {
            h.set_minute(m, c(10_000, 144));
        }
        let e = evaluate(&s, &h, T0 + 59);
        assert!(e.rules[0].firing);
        assert!(e.page);
    }

    #[test]
    fn compliance_of_a_past_month() {
        let s = spec(Window::CalendarMonth);
        let (start, end) = month_bounds(T0); // November 2023
        let mut h = History::new();
        for m in (start / 60..end / 60).step_by(7) {
            h.set_minute(m, c(100, u64::from(m % 3 == 0)));
        }
        h.set_minute(end / 60 + 30, c(5, 5)); // December: not counted
        let (counts, good, met) = compliance(&s, &h, start, end).unwrap();
        let n = (start / 60..end / 60).step_by(7).count() as u64;
        let bad = (start / 60..end / 60)
            .step_by(7)
            .filter(|m| m % 3 == 0)
            .count() as u64;
        assert_eq!(counts, c(n * 100, bad));
        assert!((good - (1.0 - bad as f64 / (n * 100) as f64)).abs() < 1e-12);
        // About 1 bad in 300: 0.33 % > 0.1 %.
        assert!(!met);
        let lenient = Spec {
            objective: 99.0,
            ..s.clone()
        };
        assert!(compliance(&lenient, &h, start, end).unwrap().2);
        // Exactly at the objective is met.
        let mut h2 = History::new();
        h2.set_minute(start / 60, c(1000, 1));
        h2.set_minute(end / 60, c(0, 0));
        assert!(compliance(&s, &h2, start, end).unwrap().2);
        // No requests: None. Too old: None.
        assert_eq!(compliance(&s, &History::new(), start, end), None);
        let mut late = h.clone();
        late.set_minute((end + 3 * 86_400) / 60, c(1, 0));
        assert_eq!(compliance(&s, &late, start, end), None);
    }
}
