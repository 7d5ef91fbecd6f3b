//! `GET /api/v1/slo` and `/api/v1/slo/{route}`: every SLO's objective, SLI now, budget left,
//! burn rate per window, time to exhaustion and alerts, as the leader last evaluated them
//! (on any node: a follower reads what the leader published). The route view adds the
//! budget left over the window hour by hour (starting at 100 %), the alert history and the
//! compliance of past calendar months, read from the store's minute counts.
//! `GET /api/v1/slo-rules`: the Prometheus rule file for teams that alert from Prometheus.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use ficus_slo::{Counts, Spec};
use ficus_store::EventFilter;
use serde::Serialize;

use crate::api::{ApiResult, Problem, Segments};
use crate::AdminState;

/// Alert events shown per route.
const ALERT_HISTORY: u32 = 50;
/// Past calendar months whose compliance is shown (the store keeps hours for 400 days).
const PAST_MONTHS: usize = 12;

/// One SLO as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SloStatus {
    pub id: String,
    pub spec: Spec,
    /// The leader's latest evaluation (`None` until it has evaluated this SLO).
    pub evaluation: Option<serde_json::Value>,
    pub page_since: Option<i64>,
    pub ticket_since: Option<i64>,
    /// Milliseconds since the leader evaluated it.
    pub age_ms: Option<i64>,
}

/// The budget left after each hour of the window, cumulative from its start.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetPoint {
    /// Unix seconds at the end of the hour (or now, for the last point).
    pub t: i64,
    pub budget_remaining: f64,
    pub total: u64,
    pub bad: u64,
}

/// One past calendar month.
#[derive(Debug, Clone, Serialize)]
pub struct Compliance {
    /// Unix seconds of the month's first instant (UTC).
    pub month_start: i64,
    pub total: u64,
    pub bad: u64,
    pub sli: Option<f64>,
    pub met: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SloDetail {
    #[serde(flatten)]
    pub status: SloStatus,
    pub budget: Vec<BudgetPoint>,
    pub compliance: Vec<Compliance>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteSlos {
    pub route: String,
    pub slos: Vec<SloDetail>,
    /// The route's `slo.firing` / `slo.resolved` events, newest first.
    pub alerts: Vec<ficus_store::Event>,
}

/// Every configured SLO with its latest evaluation.
pub(crate) async fn statuses(st: &AdminState) -> Result<Vec<SloStatus>, Problem> {
    let specs = st.control.snapshot().effective.slo_specs();
    if st.control.leadership().leads() {
        let views = st.control.slo_board().views();
        return Ok(specs
            .into_iter()
            .map(|spec| {
                let id = spec.id();
                match views.iter().find(|v| v.spec.id() == id) {
                    Some(v) => SloStatus {
                        id,
                        evaluation: serde_json::to_value(&v.evaluation).ok(),
                        page_since: v.page_since,
                        ticket_since: v.ticket_since,
                        age_ms: Some((ficus_control::unix_ms() - v.evaluation.at * 1000).max(0)),
                        spec,
                    },
                    None => unevaluated(spec),
                }
            })
            .collect());
    }
    let stored = stored(st.control.store().slo_statuses().await)?;
    let now = ficus_control::unix_ms();
    Ok(specs
        .into_iter()
        .map(|spec| {
            let id = spec.id();
            match stored.iter().find(|r| r.slo == id) {
                Some(row) => SloStatus {
                    id,
                    evaluation: row.data.get("evaluation").cloned(),
                    page_since: row.data.get("page_since").and_then(|v| v.as_i64()),
                    ticket_since: row.data.get("ticket_since").and_then(|v| v.as_i64()),
                    age_ms: Some((now - row.updated_at).max(0)),
                    spec,
                },
                None => unevaluated(spec),
            }
        })
        .collect())
}

fn unevaluated(spec: Spec) -> SloStatus {
    SloStatus {
        id: spec.id(),
        spec,
        evaluation: None,
        page_since: None,
        ticket_since: None,
        age_ms: None,
    }
}

/// `GET /api/v1/slo`
pub async fn list(State(st): State<Arc<AdminState>>) -> ApiResult<Vec<SloStatus>> {
    Ok(axum::Json(statuses(&st).await?))
}

/// `GET /api/v1/slo/{route}`
pub async fn route(
    State(st): State<Arc<AdminState>>,
    Segments(route): Segments<String>,
) -> ApiResult<RouteSlos> {
    let snap = st.control.snapshot();
    if !snap.effective.all_routes().any(|r| r.name == route) {
        let known: Vec<_> = snap
            .effective
            .all_routes()
            .map(|r| r.name.clone())
            .collect();
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "unknown-route",
            format!("no route named {route:?}"),
        )
        .fix(format!("routes are: {}", known.join(", "))));
    }
    let now = ficus_control::unix_ms() / 1000;
    let mut slos = Vec::new();
    for status in statuses(&st).await? {
        if status.spec.route != route {
            continue;
        }
        let budget = budget_series(&st, &status.spec, now).await?;
        let compliance = compliance(&st, &status.spec, now).await?;
        slos.push(SloDetail {
            status,
            budget,
            compliance,
        });
    }
    let mut alerts = Vec::new();
    for kind in ["slo.firing", "slo.resolved"] {
        alerts.extend(
            st.control
                .store()
                .events(EventFilter {
                    route: Some(route.clone()),
                    kind: Some(kind.into()),
                    limit: ALERT_HISTORY,
                    ..Default::default()
                })
                .await
                .map_err(ficus_control::ControlError::from)?,
        );
    }
    alerts.sort_by_key(|e| std::cmp::Reverse(e.id));
    alerts.truncate(ALERT_HISTORY as usize);
    Ok(axum::Json(RouteSlos {
        route,
        slos,
        alerts,
    }))
}

/// `GET /api/v1/slo-rules`: a Prometheus rule file (YAML) for every configured SLO.
pub async fn rules(State(st): State<Arc<AdminState>>) -> Response {
    let specs = st.control.snapshot().effective.slo_specs();
    (
        [(header::CONTENT_TYPE, "application/yaml; charset=utf-8")],
        ficus_slo::prometheus_rules(&specs),
    )
        .into_response()
}

fn row_counts(spec: &Spec, rows: &[ficus_store::SliRow]) -> Vec<(i64, Counts)> {
    let code = ficus_control::slo::scope_code(spec.scope);
    rows.iter()
        .filter(|r| r.route == spec.route && r.scope == code)
        .map(|r| (r.minute, ficus_control::slo::counts(spec, r)))
        .collect()
}

/// The budget left after each hour of the current window, from 100 % at its start.
async fn budget_series(
    st: &AdminState,
    spec: &Spec,
    now: i64,
) -> Result<Vec<BudgetPoint>, Problem> {
    let start = match spec.window {
        ficus_slo::Window::Rolling { days } => now - i64::from(days) * 86_400,
        ficus_slo::Window::CalendarMonth => ficus_slo::month_start(now),
    };
    let from = start.div_euclid(3600) * 60;
    let to = now.div_euclid(60) + 1;
    let rows = stored(st.control.store().sli_sums(from, to, 60).await)?;
    let hours = row_counts(spec, &rows);
    let budget = spec.error_budget();
    let mut out = Vec::with_capacity(hours.len() + 1);
    let (mut total, mut bad) = (0u64, 0u64);
    out.push(BudgetPoint {
        t: start,
        budget_remaining: 1.0,
        total: 0,
        bad: 0,
    });
    for (minute, c) in hours {
        total += c.total;
        bad += c.bad;
        let remaining = if total == 0 {
            1.0
        } else {
            1.0 - bad as f64 / (budget * total as f64)
        };
        out.push(BudgetPoint {
            t: ((minute + 60) * 60).min(now),
            budget_remaining: remaining,
            total,
            bad,
        });
    }
    Ok(out)
}

/// The compliance of the last calendar months the store still has minutes of.
async fn compliance(st: &AdminState, spec: &Spec, now: i64) -> Result<Vec<Compliance>, Problem> {
    let mut out = Vec::new();
    let mut end = ficus_slo::month_start(now);
    for _ in 0..PAST_MONTHS {
        let start = ficus_slo::month_start(end - 1);
        let span = (end - start) / 60;
        let rows = stored(
            st.control
                .store()
                .sli_sums(start / 60, end / 60, span.max(1))
                .await,
        )?;
        let c = row_counts(spec, &rows)
            .into_iter()
            .fold(Counts::default(), |a, (_, c)| Counts {
                total: a.total + c.total,
                bad: a.bad + c.bad,
            });
        if c.total > 0 {
            let sli = c.good_ratio();
            out.push(Compliance {
                month_start: start,
                total: c.total,
                bad: c.bad,
                sli,
                met: sli.map(|s| s * 100.0 >= spec.objective),
            });
        }
        end = start;
    }
    Ok(out)
}

fn stored<T>(r: Result<T, ficus_store::StoreError>) -> Result<T, Problem> {
    r.map_err(|e| Problem::from(ficus_control::ControlError::from(e)))
}
