//! `[slo]` and `[[route.slo]]`: service-level objectives per route (and per side), the
//! burn-rate table their alerts use, and what gates a rollout on them. Fleet-wide: every
//! node holds the same SLOs; the leader evaluates them.

use std::collections::HashMap;
use std::time::Duration;

use ficus_slo::{BurnRule, Scope, Severity, Sli, Window};

use super::{Section, Validator};
use crate::model::{defaults, SloDef, SloSettings};
use crate::raw::{clip, Entry};
use crate::units;

const SLO_KEYS: &[&str] = &[
    "evaluate_every",
    "min_requests",
    "rollout_min_budget",
    "burn_rate",
    "default",
];
const DEF_KEYS: &[&str] = &[
    "name",
    "sli",
    "objective",
    "window",
    "scope",
    "threshold",
    "bad",
    "min_requests",
];
const BURN_KEYS: &[&str] = &["severity", "long", "short", "factor"];

/// The longest rolling window (what the evaluator keeps in memory: a month of hours).
const MAX_WINDOW_DAYS: u32 = 31;
/// The longest burn-rate window (the minute history the evaluator keeps).
const MAX_BURN_WINDOW: Duration = Duration::from_secs(3 * 24 * 3600);
const WINDOW_HELP: &str = "window is \"28d\" or \"30d\" (rolling, 1 to 31 days) or \
                           \"calendar-month\" (UTC)";
const NAME_HELP: &str = "an SLO name is 1 to 64 letters, digits, '-', '_' or '.'";

impl Validator<'_, '_> {
    pub(super) fn slo_settings(&mut self, e: &Entry<'_, '_>) -> SloSettings {
        let mut s = SloSettings::default();
        let Some(sec) = self.top_table(e, "[slo]", "[slo]") else {
            return s;
        };
        self.unknown_keys(&sec, SLO_KEYS, &[], "[slo]");
        s.evaluate_every = self.duration(&sec, "evaluate_every", defaults::SLO_EVALUATE_EVERY);
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&s.evaluate_every) {
            let span = sec.get("evaluate_every").map(|e| e.span.clone());
            self.error(
                &span.unwrap_or(sec.span.clone()),
                "[slo]: evaluate_every is out of range",
                Some("from 1s to 60s (default 5s): a page should fire within a minute".into()),
            );
            s.evaluate_every = defaults::SLO_EVALUATE_EVERY;
        }
        if let Some(n) = self.bounded(
            &sec,
            "min_requests",
            0,
            1_000_000_000,
            "requests both windows of a burn-rate rule need before it may fire",
        ) {
            s.min_requests = n as u64;
        }
        if let Some(b) = self.number(
            &sec,
            "rollout_min_budget",
            0.0,
            1.0,
            "the share of error budget left under which a rollout does not promote",
        ) {
            s.rollout_min_budget = b;
        }
        if let Some(e) = sec.get("burn_rate") {
            let rules = self.burn_rates(e);
            if !rules.is_empty() {
                s.burn_rates = rules;
            }
        }
        if let Some(e) = sec.get("default") {
            s.defaults = self.slo_defs(e, "[[slo.default]]", "slo.default");
        }
        s
    }

    /// `[[route.slo]]` of one route.
    pub(super) fn route_slos(&mut self, sec: &Section<'_, '_>) -> Vec<SloDef> {
        match sec.get("slo") {
            Some(e) => {
                let ctx = format!("{}: slo", sec.ctx);
                self.slo_defs(e, "[[route.slo]]", &ctx)
            }
            None => Vec::new(),
        }
    }

    fn slo_defs(&mut self, e: &Entry<'_, '_>, header: &str, ctx: &str) -> Vec<SloDef> {
        let tables = self.array_of_tables(e, "slo", header);
        let mut out: Vec<SloDef> = Vec::new();
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut thresholds: HashMap<Scope, Vec<u64>> = HashMap::new();
        for (i, (table, span)) in tables.into_iter().enumerate() {
            let sec = Section::new(format!("{ctx} #{}", i + 1), "", span, table);
            self.unknown_keys(&sec, DEF_KEYS, &[], header);
            if let Some(def) = self.slo_def(&sec) {
                if let Some(first) = names.get(&def.name) {
                    self.error(
                        &sec.span,
                        format!("{}: duplicate SLO name {:?}", sec.ctx, def.name),
                        Some(format!(
                            "the first SLO named {:?} is at line {first}; names are unique per route",
                            def.name
                        )),
                    );
                    continue;
                }
                names.insert(def.name.clone(), self.line(&sec.span));
                if let Sli::Latency { threshold_us } = def.sli {
                    let t = thresholds.entry(def.scope).or_default();
                    if !t.contains(&threshold_us) {
                        t.push(threshold_us);
                    }
                    if t.len() > defaults::SLO_MAX_THRESHOLDS {
                        self.error(
                            &sec.span,
                            format!(
                                "{}: more than {} latency thresholds on one scope",
                                sec.ctx,
                                defaults::SLO_MAX_THRESHOLDS
                            ),
                            Some(
                                "each threshold is counted per request; share thresholds \
                                 between SLOs or use another scope"
                                    .into(),
                            ),
                        );
                    }
                }
                out.push(def);
            }
        }
        out
    }

    fn slo_def(&mut self, sec: &Section<'_, '_>) -> Option<SloDef> {
        let name = match self.string(sec, "name") {
            Some((n, span)) => {
                let ok = !n.is_empty()
                    && n.len() <= 64
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                if !ok {
                    self.error(
                        &span,
                        format!("{}: invalid SLO name {:?}", sec.ctx, clip(n)),
                        Some(NAME_HELP.into()),
                    );
                    return None;
                }
                n.to_string()
            }
            None => {
                if !sec.has("name") {
                    self.error(
                        &sec.span,
                        format!("{} has no name", sec.ctx),
                        Some(format!(
                            "add name = \"availability\" (or \"latency\"...); {NAME_HELP}"
                        )),
                    );
                }
                return None;
            }
        };
        let objective = match sec.get("objective") {
            None => {
                self.error(
                    &sec.span,
                    format!("{}: objective is missing", sec.ctx),
                    Some(
                        "add the percentage of good requests promised, e.g. objective = 99.9"
                            .into(),
                    ),
                );
                None
            }
            Some(_) => self.number(
                sec,
                "objective",
                0.0,
                100.0,
                "the percentage of good requests promised, above 0 and below 100",
            ),
        };
        if let Some(o) = objective {
            if o <= 0.0 || o >= 100.0 {
                let span = sec.get("objective").map(|e| e.span.clone());
                self.error(
                    &span.unwrap_or(sec.span.clone()),
                    format!("{}: objective {o} leaves no room", sec.ctx),
                    Some(
                        "an objective is above 0 and below 100: at 100 any error exhausts the \
                         budget; e.g. objective = 99.9"
                            .into(),
                    ),
                );
            }
        }
        let scope = match self.string(sec, "scope") {
            None => Scope::Route,
            Some((s, span)) => match s {
                "route" => Scope::Route,
                "legacy" => Scope::Legacy,
                "modern" => Scope::Modern,
                other => {
                    self.error(
                        &span,
                        format!("{}: unknown scope {:?}", sec.ctx, clip(other)),
                        Some(
                            "scope is \"route\" (each client request as the client saw it, the \
                             default), \"legacy\" or \"modern\" (that side's own answers)"
                                .into(),
                        ),
                    );
                    Scope::Route
                }
            },
        };
        let window = self.slo_window(sec);
        let kind = self
            .string(sec, "sli")
            .map(|(k, span)| (k.to_string(), span));
        let sli = match kind.as_ref().map(|(k, s)| (k.as_str(), s.clone())) {
            None | Some(("availability", _)) => {
                if sec.has("threshold") {
                    let span = sec.get("threshold").map(|e| e.key_span.clone());
                    self.error(
                        &span.unwrap_or(sec.span.clone()),
                        format!("{}: threshold is for sli = \"latency\"", sec.ctx),
                        Some("remove threshold, or write sli = \"latency\"".into()),
                    );
                }
                let (bad_429, bad_4xx) = self.slo_bad(sec);
                Some(Sli::Availability { bad_429, bad_4xx })
            }
            Some(("latency", span)) => {
                if sec.has("bad") {
                    let span = sec.get("bad").map(|e| e.key_span.clone());
                    self.error(
                        &span.unwrap_or(sec.span.clone()),
                        format!("{}: bad is for sli = \"availability\"", sec.ctx),
                        Some("a latency SLO counts requests slower than threshold as bad".into()),
                    );
                }
                match sec.get("threshold") {
                    None => {
                        self.error(
                            &span,
                            format!("{}: a latency SLO needs a threshold", sec.ctx),
                            Some("add threshold = \"300ms\": slower requests count as bad".into()),
                        );
                        None
                    }
                    Some(_) => {
                        let d = self.duration(sec, "threshold", Duration::ZERO);
                        if d.is_zero() || d > Duration::from_secs(3600) {
                            let span = sec.get("threshold").map(|e| e.span.clone());
                            self.error(
                                &span.unwrap_or(sec.span.clone()),
                                format!("{}: threshold is out of range", sec.ctx),
                                Some("from 1us to 1h, e.g. threshold = \"250ms\"".into()),
                            );
                            None
                        } else {
                            Some(Sli::Latency {
                                threshold_us: u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
                            })
                        }
                    }
                }
            }
            Some((other, span)) => {
                self.error(
                    &span,
                    format!("{}: unknown sli {:?}", sec.ctx, clip(other)),
                    Some(
                        "sli is \"availability\" (5xx, timeouts, connect failures and sheds are \
                         bad) or \"latency\" (requests slower than threshold are bad)"
                            .into(),
                    ),
                );
                None
            }
        };
        let min_requests = self
            .bounded(
                sec,
                "min_requests",
                0,
                1_000_000_000,
                "requests both windows of a burn-rate rule need before it may fire",
            )
            .map(|n| n as u64);
        Some(SloDef {
            name,
            scope,
            sli: sli?,
            objective: objective.filter(|o| *o > 0.0 && *o < 100.0)?,
            window: window?,
            min_requests,
        })
    }

    /// `bad = ["429", "4xx"]`: what counts as bad beside 5xx.
    fn slo_bad(&mut self, sec: &Section<'_, '_>) -> (bool, bool) {
        let mut out = (false, false);
        if let Some((items, _)) = self.strings(sec, "bad") {
            for (item, span) in items {
                match item {
                    "5xx" => {}
                    "429" => out.0 = true,
                    "4xx" => out.1 = true,
                    other => self.error(
                        &span,
                        format!("{}: unknown kind of bad answer {:?}", sec.ctx, clip(other)),
                        Some(
                            "5xx (with ficus's own timeouts, connect failures and sheds) is \
                             always bad; add \"429\" and/or \"4xx\" (4xx other than 429)"
                                .into(),
                        ),
                    ),
                }
            }
        }
        out
    }

    fn slo_window(&mut self, sec: &Section<'_, '_>) -> Option<Window> {
        let Some((w, span)) = self.string(sec, "window") else {
            return (!sec.has("window")).then_some(Window::Rolling {
                days: defaults::SLO_WINDOW_DAYS,
            });
        };
        if w == "calendar-month" || w == "month" {
            return Some(Window::CalendarMonth);
        }
        match w.strip_suffix('d').and_then(|d| d.parse::<u32>().ok()) {
            Some(days) if (1..=MAX_WINDOW_DAYS).contains(&days) => Some(Window::Rolling { days }),
            _ => {
                self.error(
                    &span,
                    format!("{}: window {:?} is not a window", sec.ctx, clip(w)),
                    Some(WINDOW_HELP.into()),
                );
                None
            }
        }
    }

    fn burn_rates(&mut self, e: &Entry<'_, '_>) -> Vec<BurnRule> {
        let tables = self.array_of_tables(e, "burn_rate", "[[slo.burn_rate]]");
        let mut out = Vec::new();
        let mut bad = false;
        for (i, (table, span)) in tables.into_iter().enumerate() {
            let sec = Section::new(format!("slo.burn_rate #{}", i + 1), "", span, table);
            self.unknown_keys(&sec, BURN_KEYS, &[], "[[slo.burn_rate]]");
            let severity = match self.string(&sec, "severity") {
                Some(("page", _)) => Some(Severity::Page),
                Some(("ticket", _)) => Some(Severity::Ticket),
                Some((other, span)) => {
                    self.error(
                        &span,
                        format!("{}: unknown severity {:?}", sec.ctx, clip(other)),
                        Some("severity is \"page\" or \"ticket\"".into()),
                    );
                    None
                }
                None => {
                    self.missing(&sec, "severity", "severity = \"page\"");
                    None
                }
            };
            let long = self.burn_window(&sec, "long");
            let short = self.burn_window(&sec, "short");
            let factor = match sec.get("factor") {
                None => {
                    self.missing(&sec, "factor", "factor = 14.4");
                    None
                }
                Some(_) => self.number(
                    &sec,
                    "factor",
                    0.001,
                    1_000_000.0,
                    "the burn rate (times the sustainable rate) both windows must reach",
                ),
            };
            if let (Some(l), Some(s)) = (long, short) {
                if s >= l {
                    self.error(
                        &sec.span,
                        format!("{}: short must be shorter than long", sec.ctx),
                        Some(
                            "the short window confirms the long one is still burning, e.g. \
                             long = \"1h\", short = \"5m\""
                                .into(),
                        ),
                    );
                    bad = true;
                    continue;
                }
            }
            match (severity, long, short, factor) {
                (Some(severity), Some(long), Some(short), Some(factor)) => out.push(BurnRule {
                    severity,
                    long_s: long,
                    short_s: short,
                    factor,
                }),
                _ => bad = true,
            }
        }
        if bad {
            Vec::new()
        } else {
            out
        }
    }

    /// A burn-rate window: whole minutes, up to 3 days ("5m", "1h", "3d").
    fn burn_window(&mut self, sec: &Section<'_, '_>, key: &str) -> Option<u32> {
        let Some((w, span)) = self.string(sec, key) else {
            if !sec.has(key) {
                self.missing(sec, key, &format!("{key} = \"1h\""));
            }
            return None;
        };
        let d = match w.strip_suffix('d').and_then(|d| d.parse::<u64>().ok()) {
            Some(days) => Ok(Duration::from_secs(days.saturating_mul(86_400))),
            None => units::parse_duration(w).map_err(|e| e.to_string()),
        };
        match d {
            Ok(d)
                if d >= Duration::from_secs(60)
                    && d <= MAX_BURN_WINDOW
                    && d.as_secs().is_multiple_of(60)
                    && d.subsec_nanos() == 0 =>
            {
                Some(d.as_secs() as u32)
            }
            _ => {
                self.error(
                    &span,
                    format!("{}: {key} {:?} is not a burn-rate window", sec.ctx, clip(w)),
                    Some("a whole number of minutes from \"1m\" to \"3d\", e.g. \"5m\", \"1h\", \"6h\", \"3d\"".into()),
                );
                None
            }
        }
    }

    fn missing(&mut self, sec: &Section<'_, '_>, key: &str, example: &str) {
        self.error(
            &sec.span,
            format!("{}: {key} is missing", sec.ctx),
            Some(format!("add {example}")),
        );
    }
}
