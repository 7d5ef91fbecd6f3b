//! The SLO controller: on the leader, every `[slo] evaluate_every`, it reads the fleet's
//! per-minute SLI counts from the store (the current, partial minute included: every node
//! rewrites it as it fills), evaluates every SLO's burn rates with `ficus_slo`, records an
//! `slo.firing` / `slo.resolved` event when an alert changes (so webhooks carry it), and
//! publishes each evaluation for every node to show. The rollout controller reads the
//! [`Board`] to gate promotions and roll back on modern's page alert.
//!
//! Histories are loaded once (per SLO, when it appears or the node takes the lead): whole
//! hours beyond the last three days, minutes within them; each tick then rereads the current
//! and the previous minute, and once a minute the last [`REREAD_MINUTES`], so a node that
//! wrote late is still counted. Alert states
//! are restored from the latest `slo.*` events, so a new leader neither repeats a firing
//! alert nor forgets one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ficus_slo::{AlertState, Counts, Evaluation, History, Scope, Severity, Sli, Spec, Transition};
use ficus_store::{EventFilter, NewEvent, SliRow};
use serde::Serialize;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::{ControlError, ControlPlane};

/// Who the SLO controller's events name.
pub const SLO_ACTOR: &str = "slo";
/// Minutes reread from the store once a minute (a node's late rows land within them);
/// the other ticks reread the current and the previous minute.
pub const REREAD_MINUTES: i64 = 15;
/// Minutes of per-minute history loaded (beyond, whole hours): the longest burn-rate window.
const MINUTE_HISTORY: i64 = 3 * 24 * 60;
/// Days of history loaded: the longest window (a 31-day month) and a day of margin.
const LOAD_DAYS: i64 = 32;

/// The store's scope number.
pub fn scope_code(scope: Scope) -> i16 {
    match scope {
        Scope::Route => 0,
        Scope::Legacy => 1,
        Scope::Modern => 2,
    }
}

/// What counts as bad for `spec` in one row of SLI counts.
pub fn counts(spec: &Spec, row: &SliRow) -> Counts {
    let total = u64::try_from(row.total).unwrap_or(0);
    let bad = match &spec.sli {
        Sli::Availability { bad_429, bad_4xx } => {
            row.c5xx + if *bad_429 { row.c429 } else { 0 } + if *bad_4xx { row.c4xx } else { 0 }
        }
        Sli::Latency { threshold_us } => row
            .slow
            .iter()
            .find(|(t, _)| u64::try_from(*t).ok() == Some(*threshold_us))
            .map_or(0, |(_, n)| *n),
    };
    Counts {
        total,
        bad: u64::try_from(bad).unwrap_or(0).min(total),
    }
}

/// One SLO as the leader knows it now.
#[derive(Debug, Clone, Serialize)]
pub struct SloView {
    pub spec: Spec,
    pub evaluation: Evaluation,
    /// Since when (unix s) the page and ticket alerts fire, if they do.
    pub page_since: Option<i64>,
    pub ticket_since: Option<i64>,
}

/// The latest evaluations, by SLO id, as this node's controller made them (the leader's).
#[derive(Debug, Default)]
pub struct Board {
    views: Mutex<HashMap<String, SloView>>,
}

/// What the SLOs of a route say about promoting its rollout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Gate {
    /// Nothing against it.
    Clear,
    /// Do not promote: the route's page alert fires, or too little budget is left.
    Hold { slo: String, reason: String },
    /// Roll back: modern's own page alert fires.
    Rollback { slo: String, reason: String },
}

impl Board {
    /// Every SLO's latest view, by id.
    pub fn views(&self) -> Vec<SloView> {
        let mut v: Vec<SloView> = self
            .views
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|a| a.spec.id());
        v
    }

    fn set(&self, views: HashMap<String, SloView>) {
        *self.views.lock().unwrap_or_else(|p| p.into_inner()) = views;
    }

    pub fn clear(&self) {
        self.views.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The gate the route's SLOs put on its rollout: modern's page alert rolls back; any
    /// other page alert of the route, or a budget under `min_budget`, holds.
    pub fn gate(&self, route: &str, min_budget: f64) -> Gate {
        let views = self.views.lock().unwrap_or_else(|p| p.into_inner());
        let mut mine: Vec<&SloView> = views.values().filter(|v| v.spec.route == route).collect();
        mine.sort_by_key(|v| v.spec.id());
        for v in &mine {
            if v.spec.scope == Scope::Modern && v.page_since.is_some() {
                return Gate::Rollback {
                    slo: v.spec.id(),
                    reason: format!(
                        "SLO {} (modern, {}): page alert firing, {}",
                        v.spec.id(),
                        objective(&v.spec),
                        burn_summary(&v.evaluation, Severity::Page)
                    ),
                };
            }
        }
        for v in &mine {
            if v.page_since.is_some() {
                return Gate::Hold {
                    slo: v.spec.id(),
                    reason: format!(
                        "SLO {} ({}, {}): page alert firing, {}",
                        v.spec.id(),
                        v.spec.scope.as_str(),
                        objective(&v.spec),
                        burn_summary(&v.evaluation, Severity::Page)
                    ),
                };
            }
        }
        for v in &mine {
            // Legacy's own budget says nothing against modern.
            if v.spec.scope != Scope::Legacy && v.evaluation.budget_remaining < min_budget {
                return Gate::Hold {
                    slo: v.spec.id(),
                    reason: format!(
                        "SLO {} ({}, {}): {:.1}% of the error budget left, under the {:.1}% \
                         a rollout needs to promote ([slo] rollout_min_budget)",
                        v.spec.id(),
                        v.spec.scope.as_str(),
                        objective(&v.spec),
                        v.evaluation.budget_remaining * 100.0,
                        min_budget * 100.0
                    ),
                };
            }
        }
        Gate::Clear
    }
}

fn objective(spec: &Spec) -> String {
    match &spec.sli {
        Sli::Availability { .. } => format!("availability {}%", spec.objective),
        Sli::Latency { threshold_us } => format!(
            "{}% under {}",
            spec.objective,
            short_duration(Duration::from_micros(*threshold_us))
        ),
    }
}

fn short_duration(d: Duration) -> String {
    if !d.as_micros().is_multiple_of(1000) {
        format!("{}us", d.as_micros())
    } else if !d.as_millis().is_multiple_of(1000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

/// "burn 1h 20.0x and 5m 41.3x over 14.4x" for the firing rules of a severity.
pub fn burn_summary(e: &Evaluation, severity: Severity) -> String {
    let parts: Vec<String> = e
        .rules
        .iter()
        .filter(|r| r.severity == severity && r.firing)
        .map(|r| {
            format!(
                "burn rate {} {:.1}x and {} {:.1}x over {}x",
                window_name(r.long_s),
                r.long.burn_rate.unwrap_or(0.0),
                window_name(r.short_s),
                r.short.burn_rate.unwrap_or(0.0),
                r.factor
            )
        })
        .collect();
    if parts.is_empty() {
        "no rule firing".to_string()
    } else {
        parts.join("; ")
    }
}

/// "5m", "1h", "3d".
pub fn window_name(seconds: u32) -> String {
    if seconds.is_multiple_of(86_400) {
        format!("{}d", seconds / 86_400)
    } else if seconds.is_multiple_of(3600) {
        format!("{}h", seconds / 3600)
    } else {
        format!("{}m", seconds / 60)
    }
}

struct Series {
    spec: Spec,
    history: History,
    alerts: AlertState,
}

#[derive(Default)]
struct State {
    series: HashMap<String, Series>,
    /// The SLO ids whose statuses the store holds (sorted), once pruned to them.
    published: Option<Vec<String>>,
    /// The minute of the last wide reread.
    reread_at: Option<i64>,
}

struct Inner {
    control: Arc<ControlPlane>,
    state: tokio::sync::Mutex<State>,
    kick: Notify,
}

/// The running SLO controller.
pub struct SloController {
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

fn unix_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl SloController {
    /// Starts the controller on the current (control) runtime; it evaluates while this node
    /// leads, every `[slo] evaluate_every` of the running config.
    pub fn spawn(control: Arc<ControlPlane>) -> Arc<SloController> {
        let telemetry = control.gateway().telemetry();
        telemetry.set_extra("slo", families(Arc::downgrade(&control)));
        telemetry.set_extra_gauges("slo", gauges(Arc::downgrade(&control)));
        let inner = Arc::new(Inner {
            control,
            state: tokio::sync::Mutex::new(State::default()),
            kick: Notify::new(),
        });
        let (stop, mut stopped) = watch::channel(false);
        let me = inner.clone();
        let task = tokio::spawn(async move {
            let mut led = false;
            loop {
                let every = me.control.snapshot().effective.slo.evaluate_every;
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = me.kick.notified() => {}
                    _ = stopped.changed() => break,
                }
                let leads = me.control.leadership().leads();
                if leads != led {
                    // Taking or losing the lead: histories and alert states are read again.
                    *me.state.lock().await = State::default();
                    me.control.slo_board().clear();
                    led = leads;
                }
                if !leads {
                    continue;
                }
                if let Err(e) = me.tick_once(unix_s()).await {
                    tracing::warn!(error = %e, "SLO evaluation failed; trying again next tick");
                }
            }
        });
        Arc::new(SloController {
            inner,
            stop,
            task: Mutex::new(Some(task)),
        })
    }

    /// Stops evaluating (a tick in progress finishes first).
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }

    /// Evaluates now (tests; the CLI's `ficus slo` after a change).
    pub async fn tick_now(&self) -> Result<(), ControlError> {
        self.inner.tick_once(unix_s()).await
    }

    /// Asks for an evaluation at once instead of at the next tick.
    pub fn kick(&self) {
        self.inner.kick.notify_one();
    }
}

impl Inner {
    async fn tick_once(&self, now: i64) -> Result<(), ControlError> {
        let snap = self.control.snapshot();
        let specs = snap.effective.slo_specs();
        let mut st = self.state.lock().await;
        let ids: Vec<String> = specs.iter().map(Spec::id).collect();
        st.series.retain(|id, s| {
            specs
                .iter()
                .any(|x| &x.id() == id && x.sli == s.spec.sli && x.scope == s.spec.scope)
        });
        let now_min = now.div_euclid(60);
        let new: Vec<Spec> = specs
            .iter()
            .filter(|s| !st.series.contains_key(&s.id()))
            .cloned()
            .collect();
        if !new.is_empty() {
            self.load(&mut st, new, now).await?;
        }
        // Objective, window or rules changed without a change of what is counted: the
        // history stays.
        for s in &specs {
            if let Some(series) = st.series.get_mut(&s.id()) {
                series.spec = s.clone();
            }
        }
        // The last two minutes every tick (the current one fills; the previous one gets its
        // last seconds); the last REREAD_MINUTES once a minute, for a node that wrote late.
        let reread = if st.reread_at == Some(now_min) {
            2
        } else {
            REREAD_MINUTES
        };
        let rows = self
            .control
            .store()
            .sli_sums(now_min - reread + 1, now_min + 1, 1)
            .await?;
        st.reread_at = Some(now_min);
        let mut by_series: HashMap<(&str, i16), Vec<&SliRow>> = HashMap::new();
        for r in &rows {
            by_series
                .entry((r.route.as_str(), r.scope))
                .or_default()
                .push(r);
        }
        for series in st.series.values_mut() {
            let key = (series.spec.route.as_str(), scope_code(series.spec.scope));
            for r in by_series.get(&key).into_iter().flatten() {
                series.history.set_minute(r.minute, counts(&series.spec, r));
            }
        }
        let mut events = Vec::new();
        let mut views = HashMap::new();
        for series in st.series.values_mut() {
            let eval = ficus_slo::evaluate(&series.spec, &series.history, now);
            for t in series.alerts.update(&eval) {
                events.push(alert_event(&series.spec, &t, &eval));
            }
            views.insert(
                series.spec.id(),
                SloView {
                    spec: series.spec.clone(),
                    evaluation: eval,
                    page_since: series.alerts.firing(Severity::Page),
                    ticket_since: series.alerts.firing(Severity::Ticket),
                },
            );
        }
        drop(st);
        let statuses: Vec<(String, serde_json::Value)> = views
            .iter()
            .filter_map(|(id, v)| Some((id.clone(), serde_json::to_value(v).ok()?)))
            .collect();
        self.control.slo_board().set(views);
        if !events.is_empty() {
            self.control.record_events_as_leader(events).await?;
        }
        let lead = self.control.leadership();
        self.control
            .store()
            .put_slo_statuses(&statuses, lead.fence())
            .await?;
        // Statuses of SLOs no longer configured go when the set changes (and at the lead).
        let mut ids = ids;
        ids.sort();
        let mut st = self.state.lock().await;
        if st.published.as_ref() != Some(&ids) {
            self.control
                .store()
                .retain_slo_statuses(&ids, lead.fence())
                .await?;
            st.published = Some(ids);
        }
        Ok(())
    }

    /// Loads the histories of SLOs the controller does not follow yet, and their alert
    /// states from the latest `slo.*` events.
    async fn load(&self, st: &mut State, specs: Vec<Spec>, now: i64) -> Result<(), ControlError> {
        let now_min = now.div_euclid(60);
        let recent_from = now_min - MINUTE_HISTORY;
        let old_from = (now_min - LOAD_DAYS * 24 * 60).div_euclid(60) * 60;
        let store = self.control.store();
        // Whole hours up to the hour the minutes start in (that hour's minutes before
        // `recent_from` come in its bucket; the rest as minutes).
        let hours = store.sli_sums(old_from, recent_from, 60).await?;
        let minutes = store.sli_sums(recent_from, now_min + 1, 1).await?;
        let fired = self.last_alerts().await?;
        // Hours first, then minutes: older minutes are added into their hours.
        let mut by_series: HashMap<(&str, i16), Vec<&SliRow>> = HashMap::new();
        for r in hours.iter().chain(minutes.iter()) {
            by_series
                .entry((r.route.as_str(), r.scope))
                .or_default()
                .push(r);
        }
        for spec in specs {
            let mut history = History::for_spec(&spec);
            let key = (spec.route.as_str(), scope_code(spec.scope));
            for r in by_series.get(&key).into_iter().flatten() {
                history.set_minute(r.minute, counts(&spec, r));
            }
            let mut alerts = AlertState::new();
            for sev in Severity::ALL {
                if let Some(since) = fired.get(&(spec.id(), sev)) {
                    alerts.restore(sev, Some(*since));
                }
            }
            st.series.insert(
                spec.id(),
                Series {
                    spec,
                    history,
                    alerts,
                },
            );
        }
        Ok(())
    }

    /// The alerts whose latest event is `slo.firing`, with the time they started.
    async fn last_alerts(&self) -> Result<HashMap<(String, Severity), i64>, ControlError> {
        let mut latest: HashMap<(String, Severity), (i64, Option<i64>)> = HashMap::new();
        for kind in ["slo.firing", "slo.resolved"] {
            let events = self
                .control
                .store()
                .events(EventFilter {
                    kind: Some(kind.to_string()),
                    limit: ficus_store::limits::MAX_PAGE,
                    ..Default::default()
                })
                .await?;
            for e in events {
                let Some(slo) = e.data.get("slo").and_then(|v| v.as_str()) else {
                    continue;
                };
                let Some(sev) = e
                    .data
                    .get("severity")
                    .and_then(|v| serde_json::from_value::<Severity>(v.clone()).ok())
                else {
                    continue;
                };
                let since = (kind == "slo.firing")
                    .then(|| e.data.get("since").and_then(|v| v.as_i64()))
                    .flatten();
                let entry = latest
                    .entry((slo.to_string(), sev))
                    .or_insert((e.id, since));
                if e.id >= entry.0 {
                    *entry = (e.id, since);
                }
            }
        }
        Ok(latest
            .into_iter()
            .filter_map(|(k, (_, since))| Some((k, since?)))
            .collect())
    }
}

/// The event of an alert firing or resolving, with the numbers that caused it and the body
/// an Alertmanager-style receiver takes.
fn alert_event(spec: &Spec, t: &Transition, eval: &Evaluation) -> NewEvent {
    let (kind, severity, message, since) = match t {
        Transition::Firing { severity, since } => (
            "slo.firing",
            *severity,
            format!(
                "SLO {} ({}, {}): {} alert firing: {}; {:.1}% of the error budget left",
                spec.id(),
                spec.scope.as_str(),
                objective(spec),
                severity.as_str(),
                burn_summary(eval, *severity),
                eval.budget_remaining * 100.0
            ),
            Some(*since),
        ),
        Transition::Resolved { severity, .. } => (
            "slo.resolved",
            *severity,
            format!(
                "SLO {} ({}, {}): {} alert resolved; {:.1}% of the error budget left",
                spec.id(),
                spec.scope.as_str(),
                objective(spec),
                severity.as_str(),
                eval.budget_remaining * 100.0
            ),
            None,
        ),
    };
    NewEvent::new(SLO_ACTOR, kind, &message)
        .with_route(&spec.route)
        .with_data(serde_json::json!({
            "slo": spec.id(),
            "severity": severity,
            "scope": spec.scope,
            "since": since,
            "transition": t,
            "evaluation": eval,
            "alertmanager": ficus_slo::alertmanager_body(spec, t, eval, "ficus", ""),
        }))
}

/// Sloth's name of the error ratio over a window of `seconds` (`slo:sli_error:ratio_rate5m`),
/// one static string per distinct window (at most the rule windows and 90 day counts).
fn ratio_name(seconds: u32) -> &'static str {
    static NAMES: Mutex<Vec<(u32, &'static str)>> = Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, n)) = names.iter().find(|(s, _)| *s == seconds) {
        return n;
    }
    let n: &'static str =
        Box::leak(format!("slo:sli_error:ratio_rate{}", window_name(seconds)).into_boxed_str());
    names.push((seconds, n));
    n
}

/// `ficus_slo_requests_total` and `ficus_slo_bad_requests_total{slo,route,scope}`: this
/// node's exact SLI counts per SLO (what the evaluator and `ficus slo rules` count with).
/// Summed over the fleet, every request of the scope.
pub(crate) fn families(control: std::sync::Weak<ControlPlane>) -> ficus_telemetry::ExtraMetrics {
    Box::new(move || {
        let Some(control) = control.upgrade() else {
            return Vec::new();
        };
        let telemetry = control.gateway().telemetry();
        let mut total = ficus_telemetry::Family {
            name: "ficus_slo_requests",
            help: "Requests an SLO counted on this node (its route and scope: route = each client request once, legacy/modern = that side's calls).",
            gauge: false,
            samples: Vec::new(),
        };
        let mut bad = ficus_telemetry::Family {
            name: "ficus_slo_bad_requests",
            help: "Requests an SLO counted as bad on this node: 5xx (and 429 or 4xx when configured) for availability, slower than the threshold (exactly) for latency.",
            gauge: false,
            samples: Vec::new(),
        };
        for spec in control.snapshot().effective.slo_specs() {
            let stats = telemetry.route(&spec.route);
            let scope = match spec.scope {
                Scope::Route => ficus_telemetry::SliScope::Route,
                Scope::Legacy => ficus_telemetry::SliScope::Legacy,
                Scope::Modern => ficus_telemetry::SliScope::Modern,
            };
            let t = stats.sli(scope).totals();
            let n = match &spec.sli {
                Sli::Availability { bad_429, bad_4xx } => {
                    t.c5xx + if *bad_429 { t.c429 } else { 0 } + if *bad_4xx { t.c4xx } else { 0 }
                }
                Sli::Latency { threshold_us } => t.slow_at(*threshold_us).unwrap_or(0),
            };
            let labels = vec![
                ("slo", spec.id()),
                ("route", spec.route.clone()),
                ("scope", spec.scope.as_str().to_string()),
            ];
            total.samples.push((labels.clone(), t.total));
            bad.samples.push((labels, n));
        }
        vec![total, bad]
    })
}

/// The leader's evaluations under Sloth's names (`slo:sli_error:ratio_rate5m`,
/// `slo:period_error_budget_remaining:ratio`...), labelled `sloth_id`, `sloth_service`
/// ("ficus"), `sloth_slo`, `route` and `scope`, plus `ficus_slo_alert{severity}` (1 while
/// firing) and `ficus_slo_time_to_exhaustion_seconds`. Only the leader evaluates: scrape
/// every node, the series come from whichever leads.
pub(crate) fn gauges(control: std::sync::Weak<ControlPlane>) -> ficus_telemetry::ExtraGauges {
    use ficus_telemetry::GaugeFamily;
    Box::new(move || {
        let Some(control) = control.upgrade() else {
            return Vec::new();
        };
        let views = control.slo_board().views();
        if views.is_empty() {
            return Vec::new();
        }
        let mut families: Vec<GaugeFamily> = Vec::new();
        let mut push = |name: &'static str,
                        help: &'static str,
                        labels: Vec<(&'static str, String)>,
                        v: f64| {
            match families.iter_mut().find(|f| f.name == name) {
                Some(f) => f.samples.push((labels, v)),
                None => families.push(GaugeFamily {
                    name,
                    help,
                    samples: vec![(labels, v)],
                }),
            }
        };
        for v in &views {
            let labels = vec![
                (
                    "sloth_id",
                    format!("ficus-{}-{}", v.spec.route, v.spec.name),
                ),
                ("sloth_service", "ficus".to_string()),
                ("sloth_slo", format!("{}-{}", v.spec.route, v.spec.name)),
                ("route", v.spec.route.clone()),
                ("scope", v.spec.scope.as_str().to_string()),
            ];
            let e = &v.evaluation;
            for b in &e.burn_rates {
                if let Some(r) = b.counts.bad_ratio() {
                    push(
                        ratio_name(b.seconds),
                        "The SLI's error ratio over the window, as ficus's leader counted it.",
                        labels.clone(),
                        r,
                    );
                }
            }
            let period_days = (e.period_s as f64 / 86_400.0).round();
            if let Some(r) = e.window.bad_ratio() {
                push(
                    ratio_name((period_days as u32).max(1) * 86_400),
                    "The SLI's error ratio over the window, as ficus's leader counted it.",
                    labels.clone(),
                    r,
                );
            }
            let budget = v.spec.error_budget();
            push(
                "slo:objective:ratio",
                "The SLO's objective as a ratio.",
                labels.clone(),
                v.spec.objective / 100.0,
            );
            push(
                "slo:error_budget:ratio",
                "The SLO's error budget as a ratio (1 - objective).",
                labels.clone(),
                budget,
            );
            push(
                "slo:time_period:days",
                "The SLO's window in days.",
                labels.clone(),
                period_days,
            );
            if let Some(b) = e.burn(300).and_then(|b| b.burn_rate) {
                push(
                    "slo:current_burn_rate:ratio",
                    "The burn rate over the last 5 minutes.",
                    labels.clone(),
                    b,
                );
            }
            if let Some(r) = e.window.bad_ratio() {
                push(
                    "slo:period_burn_rate:ratio",
                    "The burn rate over the whole window.",
                    labels.clone(),
                    r / budget,
                );
            }
            push(
                "slo:period_error_budget_remaining:ratio",
                "The share of the window's error budget left (negative once overspent).",
                labels.clone(),
                e.budget_remaining,
            );
            if let Some(t) = e.time_to_exhaustion_s {
                push(
                    "ficus_slo_time_to_exhaustion_seconds",
                    "Seconds until the error budget is spent at the 1h burn rate (absent when it is not burning).",
                    labels.clone(),
                    t,
                );
            }
            for (sev, since) in [
                (Severity::Page, v.page_since),
                (Severity::Ticket, v.ticket_since),
            ] {
                let mut l = labels.clone();
                l.push(("severity", sev.as_str().to_string()));
                push(
                    "ficus_slo_alert",
                    "1 while the SLO's page or ticket burn-rate alert fires, else 0.",
                    l,
                    if since.is_some() { 1.0 } else { 0.0 },
                );
            }
        }
        families
    })
}
