//! What an SLO is: the requests it counts ([`Scope`]), which of them are bad ([`Sli`]), the
//! objective, the budget period ([`Window`]) and the burn-rate alert table ([`BurnRule`]),
//! plus [`validate`], whose errors say what is wrong and how to fix it.

use serde::{Deserialize, Serialize};

/// Seconds in a day.
pub const DAY_S: u32 = 86_400;
/// Longest burn-rate window a rule may use: 31 days, what the history keeps at least.
pub const MAX_RULE_WINDOW_S: u32 = 31 * DAY_S;
/// Longest rolling SLO window, in days.
pub const MAX_ROLLING_DAYS: u32 = 90;

/// Which requests an SLO counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Each client request once, as the client saw it (after fallbacks and retries): the
    /// user-facing SLO.
    Route,
    /// Every call ficus made to the legacy side of the route.
    Legacy,
    /// Every call ficus made to the modern side of the route.
    Modern,
}

impl Scope {
    /// The serialized name, also the `scope` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Route => "route",
            Scope::Legacy => "legacy",
            Scope::Modern => "modern",
        }
    }
}

/// Which requests are bad. The caller classifies each request with [`Sli::is_bad`] (or the
/// same rules) and counts exactly; this crate only sees the counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Sli {
    /// Bad = every 5xx, ficus's own 502/503/504 (connect failures, timeouts, load
    /// shedding) included. A 429 is bad only with `bad_429`; any other 4xx only with
    /// `bad_4xx` (which does not cover 429).
    Availability {
        #[serde(default)]
        bad_429: bool,
        #[serde(default)]
        bad_4xx: bool,
    },
    /// Bad = answered slower than `threshold_us` microseconds (to the response head),
    /// whatever the status. Counted per request by the caller, so exact at any threshold.
    Latency { threshold_us: u64 },
}

impl Sli {
    /// Whether a request with this status and latency is bad under this SLI.
    ///
    /// ```
    /// use ficus_slo::Sli;
    /// let a = Sli::Availability { bad_429: false, bad_4xx: false };
    /// assert!(a.is_bad(503, 0) && !a.is_bad(429, 0) && !a.is_bad(404, 0));
    /// let l = Sli::Latency { threshold_us: 250_000 };
    /// assert!(!l.is_bad(200, 250_000) && l.is_bad(200, 250_001));
    /// ```
    pub fn is_bad(&self, status: u16, latency_us: u64) -> bool {
        match *self {
            Sli::Availability { bad_429, bad_4xx } => match status {
                500..=599 => true,
                429 => bad_429,
                400..=499 => bad_4xx,
                _ => false,
            },
            Sli::Latency { threshold_us } => latency_us > threshold_us,
        }
    }

    /// `"availability"` or `"latency"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Sli::Availability { .. } => "availability",
            Sli::Latency { .. } => "latency",
        }
    }
}

/// The period over which the objective and the error budget are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Window {
    /// The last `days` days, sliding (1..=90).
    Rolling { days: u32 },
    /// The current calendar month in UTC: the budget is whole again at 00:00 UTC on the 1st.
    CalendarMonth,
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Wake someone up: the budget goes in hours or days at this rate.
    Page,
    /// Look at it during working hours.
    Ticket,
}

impl Severity {
    /// Both severities, page first.
    pub const ALL: [Severity; 2] = [Severity::Page, Severity::Ticket];

    /// The serialized name, also the `severity` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

/// One line of the multi-window multi-burn-rate table: the rule fires when the burn rate
/// over both the long and the short window is at least `factor`. The long window makes the
/// alert significant, the short one makes it stop soon after the problem does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BurnRule {
    pub severity: Severity,
    /// Long window in seconds (a multiple of 60, at most 31 days).
    pub long_s: u32,
    /// Short window in seconds (a multiple of 60, shorter than `long_s`).
    pub short_s: u32,
    /// Burn rate both windows must reach: 1 spends exactly the budget over the SLO window.
    pub factor: f64,
}

/// The Google SRE workbook's table (chapter 5, "Alerting on SLOs"), for a 30-day budget:
/// page when 2 % of the budget goes in 1 h (14.4) or 5 % in 6 h (6), ticket when 10 % goes in
/// 3 days (1) or in 1 day (3); each with a short window of 1/12 of the long one.
pub fn default_burn_rules() -> Vec<BurnRule> {
    let rule = |severity, long_s, short_s, factor| BurnRule {
        severity,
        long_s,
        short_s,
        factor,
    };
    vec![
        rule(Severity::Page, 3600, 300, 14.4),
        rule(Severity::Page, 6 * 3600, 1800, 6.0),
        rule(Severity::Ticket, DAY_S, 2 * 3600, 3.0),
        rule(Severity::Ticket, 3 * DAY_S, 6 * 3600, 1.0),
    ]
}

/// One SLO of one route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// Unique within the route, for example `"availability"`.
    pub name: String,
    pub route: String,
    pub scope: Scope,
    pub sli: Sli,
    /// Percent of good requests to reach, strictly between 0 and 100 (for example 99.9).
    pub objective: f64,
    pub window: Window,
    /// The burn-rate alert table; [`default_burn_rules`] when left out.
    #[serde(default = "default_burn_rules")]
    pub rules: Vec<BurnRule>,
    /// A rule does not fire while either of its windows holds fewer requests than this, so
    /// that one error out of three requests does not page anyone. 0 disables the guard.
    #[serde(default)]
    pub min_requests: u64,
}

impl Spec {
    /// `"route/name"`: the SLO's identity in events, metrics (`slo` label) and alerts.
    pub fn id(&self) -> String {
        format!("{}/{}", self.route, self.name)
    }

    /// The fraction of requests allowed to be bad: `1 - objective / 100`.
    pub fn error_budget(&self) -> f64 {
        1.0 - self.objective / 100.0
    }

    /// Length in seconds of the budget period that contains `at`: `days * 86400` for a
    /// rolling window, the length of the current UTC month for a calendar one.
    pub fn period_s(&self, at: i64) -> i64 {
        match self.window {
            Window::Rolling { days } => i64::from(days) * i64::from(DAY_S),
            Window::CalendarMonth => crate::next_month_start(at) - crate::month_start(at),
        }
    }
}

/// What is wrong with a spec; the message names the field and the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error(
        "name is empty; give the SLO a name unique within its route, such as \"availability\""
    )]
    EmptyName,
    #[error(
        "name {0:?} contains '/', which separates route and name in the SLO id; use '-' or '_'"
    )]
    SlashInName(String),
    #[error("route is empty; name the route the SLO belongs to")]
    EmptyRoute,
    #[error("objective {0} is not a percentage strictly between 0 and 100; write 99.9 for 99.9 %")]
    Objective(f64),
    #[error("rolling window of {0} days is outside 1..={MAX_ROLLING_DAYS}; use 28 or 30 days, or a calendar month")]
    RollingDays(u32),
    #[error("latency threshold_us is 0, so every request would be bad; set the threshold in microseconds, such as 250000 for 250 ms")]
    ZeroThreshold,
    #[error("rules is empty, so the SLO could never alert; leave it out to get the default multi-window multi-burn-rate table")]
    NoRules,
    #[error("rules[{index}]: factor {factor} must be finite and greater than 0 (14.4 pages when 2 % of a 30-day budget goes in an hour)")]
    Factor { index: usize, factor: f64 },
    #[error("rules[{index}]: window of {seconds} s must be a positive multiple of 60 s (counts are kept per minute)")]
    Resolution { index: usize, seconds: u32 },
    #[error("rules[{index}]: short window {short_s} s must be shorter than long window {long_s} s (the workbook uses 1/12)")]
    ShortNotShorter {
        index: usize,
        short_s: u32,
        long_s: u32,
    },
    #[error("rules[{index}]: long window {long_s} s is longer than 31 days ({MAX_RULE_WINDOW_S} s), more than the history keeps")]
    LongTooLong { index: usize, long_s: u32 },
}

/// Checks a spec; the first problem found is returned. Call it when the config is loaded:
/// the evaluator assumes a valid spec (an invalid one gives meaningless numbers, never a
/// panic).
pub fn validate(spec: &Spec) -> Result<(), SpecError> {
    if spec.name.is_empty() {
        return Err(SpecError::EmptyName);
    }
    if spec.name.contains('/') {
        return Err(SpecError::SlashInName(spec.name.clone()));
    }
    if spec.route.is_empty() {
        return Err(SpecError::EmptyRoute);
    }
    // NaN fails both comparisons.
    if !(spec.objective > 0.0 && spec.objective < 100.0) {
        return Err(SpecError::Objective(spec.objective));
    }
    if let Window::Rolling { days } = spec.window {
        if !(1..=MAX_ROLLING_DAYS).contains(&days) {
            return Err(SpecError::RollingDays(days));
        }
    }
    if let Sli::Latency { threshold_us: 0 } = spec.sli {
        return Err(SpecError::ZeroThreshold);
    }
    if spec.rules.is_empty() {
        return Err(SpecError::NoRules);
    }
    for (index, r) in spec.rules.iter().enumerate() {
        if !(r.factor.is_finite() && r.factor > 0.0) {
            return Err(SpecError::Factor {
                index,
                factor: r.factor,
            });
        }
        for seconds in [r.short_s, r.long_s] {
            if seconds == 0 || seconds % 60 != 0 {
                return Err(SpecError::Resolution { index, seconds });
            }
        }
        if r.short_s >= r.long_s {
            return Err(SpecError::ShortNotShorter {
                index,
                short_s: r.short_s,
                long_s: r.long_s,
            });
        }
        if r.long_s > MAX_RULE_WINDOW_S {
            return Err(SpecError::LongTooLong {
                index,
                long_s: r.long_s,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            name: "availability".into(),
            route: "orders".into(),
            scope: Scope::Route,
            sli: Sli::Availability {
                bad_429: false,
                bad_4xx: false,
            },
            objective: 99.9,
            window: Window::Rolling { days: 30 },
            rules: default_burn_rules(),
            min_requests: 0,
        }
    }

    #[test]
    fn valid_spec_and_id() {
        let s = spec();
        assert_eq!(validate(&s), Ok(()));
        assert_eq!(s.id(), "orders/availability");
        assert!((s.error_budget() - 0.001).abs() < 1e-12);
        assert_eq!(s.period_s(0), 30 * 86_400);
        let cal = Spec {
            window: Window::CalendarMonth,
            ..s
        };
        // February 1970 has 28 days.
        assert_eq!(cal.period_s(40 * 86_400), 28 * 86_400);
    }

    #[test]
    fn each_problem_is_reported() {
        type Change = Box<dyn Fn(&mut Spec)>;
        let cases: Vec<(Change, SpecError)> = vec![
            (Box::new(|s| s.name.clear()), SpecError::EmptyName),
            (
                Box::new(|s| s.name = "a/b".into()),
                SpecError::SlashInName("a/b".into()),
            ),
            (Box::new(|s| s.route.clear()), SpecError::EmptyRoute),
            (
                Box::new(|s| s.objective = 100.0),
                SpecError::Objective(100.0),
            ),
            (Box::new(|s| s.objective = 0.0), SpecError::Objective(0.0)),
            (
                Box::new(|s| s.window = Window::Rolling { days: 0 }),
                SpecError::RollingDays(0),
            ),
            (
                Box::new(|s| s.window = Window::Rolling { days: 91 }),
                SpecError::RollingDays(91),
            ),
            (
                Box::new(|s| s.sli = Sli::Latency { threshold_us: 0 }),
                SpecError::ZeroThreshold,
            ),
            (Box::new(|s| s.rules.clear()), SpecError::NoRules),
            (
                Box::new(|s| s.rules[1].factor = f64::INFINITY),
                SpecError::Factor {
                    index: 1,
                    factor: f64::INFINITY,
                },
            ),
            (
                Box::new(|s| s.rules[0].factor = 0.0),
                SpecError::Factor {
                    index: 0,
                    factor: 0.0,
                },
            ),
            (
                Box::new(|s| s.rules[2].short_s = 90),
                SpecError::Resolution {
                    index: 2,
                    seconds: 90,
                },
            ),
            (
                Box::new(|s| s.rules[2].short_s = 0),
                SpecError::Resolution {
                    index: 2,
                    seconds: 0,
                },
            ),
            (
                Box::new(|s| s.rules[0].short_s = 3600),
                SpecError::ShortNotShorter {
                    index: 0,
                    short_s: 3600,
                    long_s: 3600,
                },
            ),
            (
                Box::new(|s| s.rules[3].long_s = 32 * DAY_S),
                SpecError::LongTooLong {
                    index: 3,
                    long_s: 32 * DAY_S,
                },
            ),
        ];
        for (change, want) in cases {
            let mut s = spec();
            change(&mut s);
            assert_eq!(validate(&s), Err(want.clone()));
            assert!(!want.to_string().is_empty());
        }
        let mut s = spec();
        s.objective = f64::NAN;
        assert!(matches!(validate(&s), Err(SpecError::Objective(_))));
        s.objective = 50.0;
        s.window = Window::Rolling { days: 90 };
        s.rules[3].long_s = MAX_RULE_WINDOW_S;
        assert_eq!(validate(&s), Ok(()));
    }

    #[test]
    fn default_table_is_the_workbook_one() {
        let r = default_burn_rules();
        let rows: Vec<_> = r
            .iter()
            .map(|r| (r.severity, r.long_s, r.short_s, r.factor))
            .collect();
        assert_eq!(
            rows,
            vec![
                (Severity::Page, 3600, 300, 14.4),
                (Severity::Page, 21_600, 1800, 6.0),
                (Severity::Ticket, 86_400, 7200, 3.0),
                (Severity::Ticket, 259_200, 21_600, 1.0),
            ]
        );
    }

    #[test]
    fn serde_shapes() {
        let s = spec();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["scope"], "route");
        assert_eq!(v["sli"]["kind"], "availability");
        assert_eq!(v["window"]["kind"], "rolling");
        assert_eq!(v["rules"][0]["severity"], "page");
        let back: Spec = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
        // Rules, min_requests and the availability flags default.
        let short: Spec = serde_json::from_str(
            r#"{"name":"latency","route":"orders","scope":"modern",
                "sli":{"kind":"latency","threshold_us":250000},
                "objective":99,"window":{"kind":"calendar_month"}}"#,
        )
        .unwrap();
        assert_eq!(short.rules, default_burn_rules());
        assert_eq!(short.min_requests, 0);
        assert_eq!(short.window, Window::CalendarMonth);
        let a: Sli = serde_json::from_str(r#"{"kind":"availability"}"#).unwrap();
        assert_eq!(
            a,
            Sli::Availability {
                bad_429: false,
                bad_4xx: false
            }
        );
    }

    #[test]
    fn bad_requests() {
        let strict = Sli::Availability {
            bad_429: true,
            bad_4xx: true,
        };
        assert!(strict.is_bad(429, 0) && strict.is_bad(404, 0) && !strict.is_bad(302, 0));
        let only_4xx = Sli::Availability {
            bad_429: false,
            bad_4xx: true,
        };
        assert!(!only_4xx.is_bad(429, 0) && only_4xx.is_bad(400, 0));
        let lenient = Sli::Availability {
            bad_429: false,
            bad_4xx: false,
        };
        for code in [500, 502, 503, 504, 599] {
            assert!(lenient.is_bad(code, 0));
        }
        assert!(!lenient.is_bad(200, u64::MAX));
    }
}
