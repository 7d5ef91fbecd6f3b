//! The JSON API under `/api/v1`: what runs with its live numbers, and the changes, each of
//! which goes through the control plane and answers with the events it recorded.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ficus_config::plan::RouteChange;
use ficus_config::{Route, Stage, Weight};
use ficus_control::{Applied, ControlError};
use ficus_store::EventFilter;
use ficus_telemetry::{SlotSummary, WindowStats};
use serde::{Deserialize, Serialize};

use crate::AdminState;

/// Seconds of history the route list's live numbers cover.
pub const LIVE_WINDOW_S: u32 = 60;

/// An error answer: `application/problem+json` naming what is wrong and how to fix it.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub kind: &'static str,
    pub detail: String,
    pub fix: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            kind,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn fix(mut self, f: impl Into<String>) -> Problem {
        self.fix = Some(f.into());
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({
            "type": format!("urn:ficus:problem:{}", self.kind),
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some(f) = self.fix {
            body["fix"] = f.into();
        }
        (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response()
    }
}

impl From<ControlError> for Problem {
    fn from(e: ControlError) -> Problem {
        let (status, kind) = match &e {
            ControlError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid-config"),
            ControlError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request"),
            ControlError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            ControlError::Conflict(_) => (StatusCode::CONFLICT, "version-conflict"),
            ControlError::NeedsRestart(_) => (StatusCode::CONFLICT, "needs-restart"),
            ControlError::StoreUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "store-unavailable")
            }
            ControlError::Store(_) | ControlError::Io(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        Problem::new(status, kind, e.to_string())
    }
}

/// `Json` whose rejections are problems naming the field that is wrong.
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                format!("the admin API reads request bodies up to {} bytes", crate::MAX_BODY_BYTES),
            )
            .fix(format!("that is twice the largest config ({} bytes) and more: check that the right file is being sent", ficus_config::defaults::MAX_CONFIG_BYTES))),
            Err(r) => Err(Problem::new(StatusCode::BAD_REQUEST, "bad-payload", r.body_text())
                .fix("send a JSON object with the fields the OpenAPI document (/api/v1/openapi.json) lists for this endpoint")),
        }
    }
}

/// `Query` whose rejections are problems.
pub struct Params<T>(pub T);

impl<S, T> FromRequestParts<S> for Params<T>
where
    Query<T>: FromRequestParts<S, Rejection = QueryRejection>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Params(v)),
            Err(r) => Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-query",
                r.body_text(),
            )),
        }
    }
}

/// `Path` whose rejections are problems (`/config/versions/abc`: a number was expected).
pub struct Segments<T>(pub T);

impl<S, T> FromRequestParts<S> for Segments<T>
where
    Path<T>: FromRequestParts<S, Rejection = PathRejection>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(Segments(v)),
            Err(r) => Err(Problem::new(r.status(), "bad-path", r.body_text())
                .fix("the endpoints and their path parameters (a config version is a number) are listed in /api/v1/openapi.json")),
        }
    }
}

pub(crate) type ApiResult<T> = Result<axum::Json<T>, Problem>;

/// One side's live numbers.
#[derive(Serialize)]
pub struct SideView {
    pub upstream: Option<String>,
    pub live: WindowStats,
}

/// A route as the map shows it.
#[derive(Serialize)]
pub struct RouteView {
    pub name: String,
    pub order: usize,
    pub stage: Stage,
    pub weight: Weight,
    /// What the file says (differs from stage/weight when a runtime override is in force).
    pub file: FileState,
    pub overridden: bool,
    #[serde(rename = "match")]
    pub matcher: String,
    pub sticky: String,
    /// Share of the route's requests answered by modern over the live window, in percent.
    pub modern_share: f64,
    pub legacy: SideView,
    pub modern: SideView,
    /// Rate limit, retries, cache and the upstreams' limits and breakers, with their counters.
    pub protection: serde_json::Value,
}

/// What protects a route now, from the table serving it: settings and live counters.
fn protection_view(st: &AdminState, r: &Route) -> serde_json::Value {
    use serde_json::json;
    let table = st.control.gateway().table();
    let Some(c) = table.routes().iter().find(|c| *c.name == *r.name) else {
        return json!(null);
    };
    let rate = c.rate.as_ref().map(|x| {
        let n = x.limiter.counters();
        json!({
            "per_second": x.spec.per_second, "burst": x.spec.burst, "key": x.spec.key.to_string(),
            "max_keys": x.spec.max_keys, "allowed": n.allowed, "limited": n.limited,
            "tracked_keys": n.tracked_keys,
        })
    });
    let retry = c.retry.as_ref().map(|x| {
        let n = x.budget.counters();
        json!({
            "attempts": x.spec.attempts, "budget_percent": x.spec.budget * 100.0,
            "min_per_second": x.spec.min_per_second, "retries": n.withdrawals,
            "exhausted": n.exhausted,
        })
    });
    let cache = c.cache.as_ref().map(|x| {
        let n = x.cache.counters();
        json!({
            "max_bytes": x.policy.max_bytes, "max_entry_bytes": x.policy.max_entry_bytes,
            "ttl_s": x.policy.ttl.map(|d| d.as_secs_f64()),
            "stale_while_revalidate_s": x.policy.stale_while_revalidate.map(|d| d.as_secs_f64()),
            "hits": n.hits, "stale_hits": n.stale_hits, "misses": n.misses,
            "coalesced": n.coalesced, "entries": n.entries, "bytes": n.bytes,
            "evictions": n.evictions,
        })
    });
    let upstream = |side: &str, u: &ficus_proxy::upstream::UpstreamClient| {
        let limit = u.limit.as_ref().map(|l| {
            let n = l.counters();
            json!({
                "max_in_flight": u.config.limit.as_ref().map(|p| p.max_in_flight),
                "in_flight": n.in_flight, "queued": n.queued,
                "shed": n.shed_queue_full + n.shed_queue_timeout + n.shed_preempted,
            })
        });
        let breaker = u.breaker.as_ref().map(|b| {
            let n = b.counters();
            json!({"state": n.state.as_str(), "trips": n.trips, "rejected": n.rejected})
        });
        json!({"side": side, "upstream": &*u.name, "limit": limit, "breaker": breaker})
    };
    let mut upstreams = vec![upstream("legacy", &c.legacy)];
    if let Some(m) = &c.modern {
        upstreams.push(upstream("modern", m));
    }
    json!({
        "priority": r.priority.as_str(),
        "rate_limit": rate,
        "retry": retry,
        "cache": cache,
        "upstreams": upstreams,
    })
}

#[derive(Serialize)]
pub struct FileState {
    pub stage: Stage,
    pub weight: Weight,
}

#[derive(Serialize)]
pub struct RoutesView {
    pub version: Option<i64>,
    /// Set when the config file on disk differs from the running version (or, in a fleet,
    /// this node's file from the fleet's version).
    pub file_drift: Option<String>,
    /// The nodes whose numbers are summed here (this one included), and this node.
    pub fleet: crate::fleet::FleetSummary,
    pub window_seconds: u32,
    pub routes: Vec<RouteView>,
}

pub async fn routes(State(st): State<Arc<AdminState>>) -> ApiResult<RoutesView> {
    let snap = st.control.snapshot();
    let routes = snap
        .effective
        .all_routes()
        .enumerate()
        .map(|(i, r)| route_view(&st, &snap.base, i, r))
        .collect();
    Ok(axum::Json(RoutesView {
        version: snap.version,
        file_drift: st.control.drift(),
        fleet: crate::fleet::fleet_summary(&st),
        window_seconds: LIVE_WINDOW_S,
        routes,
    }))
}

fn route_view(st: &AdminState, base: &ficus_config::Config, order: usize, r: &Route) -> RouteView {
    // The whole fleet's numbers: this node's plus the seconds the others flushed.
    let telemetry = st.control.gateway().telemetry();
    let (l, m) = (
        telemetry.fleet_window(&r.name, false, LIVE_WINDOW_S),
        telemetry.fleet_window(&r.name, true, LIVE_WINDOW_S),
    );
    let file = base.all_routes().find(|b| b.name == r.name);
    let total = l.requests + m.requests - m.fallbacks.min(m.requests);
    let modern_answered = m.requests.saturating_sub(m.fallbacks);
    RouteView {
        name: r.name.clone(),
        order: order + 1,
        stage: r.stage,
        weight: r.weight,
        file: FileState {
            stage: file.map_or(r.stage, |f| f.stage),
            weight: file.map_or(r.weight, |f| f.weight),
        },
        overridden: file.is_some_and(|f| f.stage != r.stage || f.weight != r.weight),
        matcher: r.matcher.to_string(),
        sticky: r.sticky.to_string(),
        modern_share: if total == 0 {
            0.0
        } else {
            100.0 * modern_answered as f64 / total as f64
        },
        legacy: SideView {
            upstream: Some(r.legacy.clone()),
            live: l,
        },
        modern: SideView {
            upstream: r.modern.clone(),
            live: m,
        },
        protection: protection_view(st, r),
    }
}

#[derive(Serialize)]
pub struct RouteDetail {
    #[serde(flatten)]
    pub route: RouteView,
    pub series: Series,
    pub events: Vec<ficus_store::Event>,
}

#[derive(Serialize)]
pub struct Series {
    pub legacy: Vec<SlotSummary>,
    pub modern: Vec<SlotSummary>,
}

#[derive(Deserialize)]
pub struct SeriesParams {
    /// Seconds of history (default and maximum: 900).
    pub seconds: Option<u32>,
}

pub async fn route(
    State(st): State<Arc<AdminState>>,
    Segments(name): Segments<String>,
    Params(p): Params<SeriesParams>,
) -> ApiResult<RouteDetail> {
    let snap = st.control.snapshot();
    let Some((i, r)) = snap
        .effective
        .all_routes()
        .enumerate()
        .find(|(_, r)| r.name == name)
    else {
        return Err(unknown_route(&name, &snap.effective));
    };
    let seconds = p.seconds.unwrap_or(900).min(900);
    let telemetry = st.control.gateway().telemetry();
    let events = st
        .control
        .store()
        .events(EventFilter {
            route: Some(name.clone()),
            limit: 100,
            ..Default::default()
        })
        .await
        .map_err(|e| Problem::from(ControlError::from(e)))?;
    Ok(axum::Json(RouteDetail {
        route: route_view(&st, &snap.base, i, r),
        series: Series {
            legacy: telemetry.fleet_series(&r.name, false, seconds),
            modern: telemetry.fleet_series(&r.name, true, seconds),
        },
        events,
    }))
}

fn unknown_route(name: &str, cfg: &ficus_config::Config) -> Problem {
    let known: Vec<_> = cfg.all_routes().map(|r| r.name.as_str()).collect();
    Problem::new(
        StatusCode::NOT_FOUND,
        "unknown-route",
        format!("no route named {name:?}"),
    )
    .fix(format!("routes are: {}", known.join(", ")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetBody {
    /// legacy, shadow, canary, modern or retired.
    pub stage: Option<String>,
    /// Percent of sticky keys on modern, 0..=100 with at most two decimals.
    pub weight: Option<f64>,
    /// Why (recorded in the event).
    pub message: String,
}

/// The answer to a change: the events it recorded and what changed.
#[derive(Serialize)]
pub struct ChangeView {
    pub version: Option<i64>,
    pub events: Vec<ficus_store::Event>,
    pub changes: Vec<String>,
}

impl From<Applied> for ChangeView {
    fn from(a: Applied) -> Self {
        ChangeView {
            version: a.version,
            events: a.events,
            changes: a.changes.iter().map(RouteChange::describe).collect(),
        }
    }
}

pub(crate) fn actor(st: &AdminState, headers: &axum::http::HeaderMap) -> String {
    let who = headers
        .get("x-ficus-actor")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim())
        .filter(|s| !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_graphic()));
    match who {
        Some(w) => format!("api:{w}"),
        None => st.default_actor.clone(),
    }
}

pub(crate) fn message(m: &str) -> Result<&str, Problem> {
    let m = m.trim();
    if m.is_empty() {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-payload",
            "message: must say why (it is recorded in the audit log)",
        ));
    }
    if m.len() > 2000 {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-payload",
            "message: at most 2000 bytes",
        ));
    }
    Ok(m)
}

pub async fn set_route(
    State(st): State<Arc<AdminState>>,
    headers: axum::http::HeaderMap,
    Segments(name): Segments<String>,
    Body(b): Body<SetBody>,
) -> ApiResult<ChangeView> {
    let msg = message(&b.message)?;
    let stage = match &b.stage {
        None => None,
        Some(s) => Some(Stage::parse(s).ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-payload",
                format!("stage: unknown stage {s:?}"),
            )
            .fix("stage is one of legacy, shadow, canary, modern, retired")
        })?),
    };
    let weight = match b.weight {
        None => None,
        Some(w) => Some(Weight::from_percent(w).ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-payload",
                format!("weight: {w} is not a percentage from 0 to 100 with at most two decimals"),
            )
        })?),
    };
    if stage.is_none() && weight.is_none() {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-payload",
            "stage, weight: give at least one",
        ));
    }
    let snap = st.control.snapshot();
    if !snap.effective.all_routes().any(|r| r.name == name) {
        return Err(unknown_route(&name, &snap.effective));
    }
    let applied = st
        .control
        .set_route(&name, stage, weight, &actor(&st, &headers), msg)
        .await?;
    Ok(axum::Json(applied.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    pub message: String,
}

pub async fn rollback_route(
    State(st): State<Arc<AdminState>>,
    headers: axum::http::HeaderMap,
    Segments(name): Segments<String>,
    Body(b): Body<MessageBody>,
) -> ApiResult<ChangeView> {
    let msg = message(&b.message)?;
    let snap = st.control.snapshot();
    if !snap.effective.all_routes().any(|r| r.name == name) {
        return Err(unknown_route(&name, &snap.effective));
    }
    let applied = st
        .control
        .rollback(Some(&name), &actor(&st, &headers), msg)
        .await?;
    Ok(axum::Json(applied.into()))
}

pub async fn rollback_all(
    State(st): State<Arc<AdminState>>,
    headers: axum::http::HeaderMap,
    Body(b): Body<MessageBody>,
) -> ApiResult<ChangeView> {
    let msg = message(&b.message)?;
    let applied = st
        .control
        .rollback(None, &actor(&st, &headers), msg)
        .await?;
    Ok(axum::Json(applied.into()))
}

#[derive(Serialize)]
pub struct ConfigView {
    pub version: Option<i64>,
    pub sha256: String,
    pub text: String,
    pub overrides: Vec<ficus_config::plan::Override>,
    pub file: String,
    pub file_drift: Option<String>,
}

pub async fn config(State(st): State<Arc<AdminState>>) -> ApiResult<ConfigView> {
    let snap = st.control.snapshot();
    Ok(axum::Json(ConfigView {
        version: snap.version,
        sha256: snap.sha256.clone(),
        // Secrets (URL passwords, credential query values, webhook paths) never leave in a
        // read: the reviewed file in git holds them.
        text: ficus_config::secrets::mask_text(&snap.text),
        overrides: snap.overrides.clone(),
        file: st.control.file().display().to_string(),
        file_drift: st.control.file_drift(),
    }))
}

#[derive(Deserialize)]
pub struct PageParams {
    pub limit: Option<u32>,
    pub before: Option<i64>,
}

pub async fn versions(
    State(st): State<Arc<AdminState>>,
    Params(p): Params<PageParams>,
) -> ApiResult<Vec<ficus_store::ConfigVersionSummary>> {
    let v = st
        .control
        .store()
        .versions(p.limit.unwrap_or(50).clamp(1, 500), p.before)
        .await
        .map_err(|e| Problem::from(ControlError::from(e)))?;
    Ok(axum::Json(v))
}

pub async fn version(
    State(st): State<Arc<AdminState>>,
    Segments(n): Segments<i64>,
) -> ApiResult<ficus_store::ConfigVersion> {
    match st.control.store().version(n).await {
        Ok(Some(mut v)) => {
            v.text = ficus_config::secrets::mask_text(&v.text);
            Ok(axum::Json(v))
        }
        Ok(None) => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("there is no config version {n}"),
        )),
        Err(e) => Err(ControlError::from(e).into()),
    }
}

#[derive(Serialize)]
pub struct VersionDiff {
    pub from: Option<i64>,
    pub to: i64,
    pub changes: Vec<String>,
    /// Lines prefixed with "  ", "- " or "+ ".
    pub lines: Vec<String>,
}

pub async fn version_diff(
    State(st): State<Arc<AdminState>>,
    Segments(n): Segments<i64>,
) -> ApiResult<VersionDiff> {
    let store = st.control.store();
    let to = match store.version(n).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("there is no config version {n}"),
            ))
        }
        Err(e) => return Err(ControlError::from(e).into()),
    };
    let from = if n > 1 {
        store
            .version(n - 1)
            .await
            .map_err(|e| Problem::from(ControlError::from(e)))?
    } else {
        None
    };
    // Only the fleet-wide part: a version stored before fleet mode still holds the
    // node-local sections of the node that stored it.
    let fleet = |t: &str| {
        ficus_config::secrets::mask_text(
            &ficus_config::fleet_text(t).unwrap_or_else(|_| t.to_string()),
        )
    };
    let old_text = from.as_ref().map_or(String::new(), |v| fleet(&v.text));
    let new_text = fleet(&to.text);
    let parse = |t: &str| st.control.parse_version(t, "version").ok();
    let changes = match (from.as_ref().and_then(|v| parse(&v.text)), parse(&to.text)) {
        (Some(a), Some(b)) => ficus_config::plan::plan(&a, &b)
            .iter()
            .map(RouteChange::describe)
            .collect(),
        _ => Vec::new(),
    };
    let lines = crate::diff::lines(&old_text, &new_text);
    Ok(axum::Json(VersionDiff {
        from: from.as_ref().map(|v| v.number),
        to: n,
        changes,
        lines,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextBody {
    /// The full config file.
    pub text: String,
    /// What diagnostics call the text (`FILE:line:col`): the caller's file name. Default:
    /// this node's config file.
    pub origin: Option<String>,
}

/// Longest `origin` accepted (a path; Linux's PATH_MAX).
pub const MAX_ORIGIN_BYTES: usize = 4096;

fn origin(o: &Option<String>) -> Result<Option<&str>, Problem> {
    match o.as_deref() {
        Some(o) if o.is_empty() || o.len() > MAX_ORIGIN_BYTES => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-payload",
            format!("origin: the file name, 1 to {MAX_ORIGIN_BYTES} bytes"),
        )
        .fix("leave origin out to have errors name the gateway's own config file")),
        o => Ok(o),
    }
}

#[derive(Serialize)]
pub struct PlanView {
    pub version: Option<i64>,
    pub changes: Vec<RouteChange>,
    pub summary: Vec<String>,
}

pub async fn plan(
    State(st): State<Arc<AdminState>>,
    Body(b): Body<TextBody>,
) -> ApiResult<PlanView> {
    let changes = st.control.plan_from(&b.text, origin(&b.origin)?)?;
    Ok(axum::Json(PlanView {
        version: st.control.snapshot().version,
        summary: changes.iter().map(RouteChange::describe).collect(),
        changes,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyBody {
    pub text: String,
    /// As in [`TextBody::origin`].
    pub origin: Option<String>,
    pub message: String,
    /// The version the change is based on: 409 when the running version differs.
    pub expected_version: Option<i64>,
}

pub async fn apply(
    State(st): State<Arc<AdminState>>,
    headers: axum::http::HeaderMap,
    Body(b): Body<ApplyBody>,
) -> ApiResult<ChangeView> {
    let msg = message(&b.message)?;
    let applied = st
        .control
        .apply_text_from(
            &b.text,
            origin(&b.origin)?,
            &actor(&st, &headers),
            msg,
            b.expected_version,
        )
        .await?;
    Ok(axum::Json(applied.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevertBody {
    pub version: i64,
    pub message: String,
    pub expected_version: Option<i64>,
}

pub async fn revert(
    State(st): State<Arc<AdminState>>,
    headers: axum::http::HeaderMap,
    Body(b): Body<RevertBody>,
) -> ApiResult<ChangeView> {
    let msg = message(&b.message)?;
    let applied = st
        .control
        .revert(b.version, &actor(&st, &headers), msg, b.expected_version)
        .await?;
    Ok(axum::Json(applied.into()))
}

#[derive(Deserialize)]
pub struct EventParams {
    pub route: Option<String>,
    pub kind: Option<String>,
    /// Kinds starting with this (`migration.`).
    pub kind_prefix: Option<String>,
    pub after: Option<i64>,
    /// Events older than this id (newest first): the next page back.
    pub before: Option<i64>,
    pub limit: Option<u32>,
}

pub async fn events(
    State(st): State<Arc<AdminState>>,
    Params(p): Params<EventParams>,
) -> ApiResult<Vec<ficus_store::Event>> {
    let ev = st
        .control
        .store()
        .events(EventFilter {
            route: p.route,
            kind: p.kind,
            kind_prefix: p.kind_prefix,
            after_id: p.after,
            before_id: p.before,
            limit: p.limit.unwrap_or(100).clamp(1, 500),
        })
        .await
        .map_err(|e| Problem::from(ControlError::from(e)))?;
    Ok(axum::Json(ev))
}

pub async fn inventory(
    State(st): State<Arc<AdminState>>,
) -> ApiResult<ficus_telemetry::inventory::InventoryView> {
    Ok(axum::Json(
        st.control.gateway().telemetry().inventory().view(),
    ))
}

/// One `[[verify]]` job with its latest run (the data-integrity column of the dashboard).
#[derive(Debug, Serialize)]
pub struct VerifyJobView {
    pub job: String,
    pub route: Option<String>,
    pub source_table: String,
    pub target_table: String,
    /// Milliseconds between runs; `None` for a job no longer in the running config.
    pub every_ms: Option<u64>,
    /// Whether the running config has this job (runs of removed jobs stay listed).
    pub configured: bool,
    /// `equal`, `different`, `lagging`, `error`, or `None` before the first run.
    pub outcome: Option<String>,
    pub rows_compared: Option<i64>,
    pub missing: Option<i64>,
    pub extra: Option<i64>,
    pub changed: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
    pub run_id: Option<i64>,
}

impl VerifyJobView {
    fn new(
        job: Option<&ficus_config::VerifyJob>,
        run: Option<&ficus_store::VerifyRun>,
    ) -> VerifyJobView {
        let pick = |a: Option<&String>, b: Option<&String>| a.or(b).cloned().unwrap_or_default();
        VerifyJobView {
            job: pick(job.map(|j| &j.name), run.map(|r| &r.job)),
            route: match job {
                Some(j) => j.route.clone(),
                None => run.and_then(|r| r.route.clone()),
            },
            source_table: pick(job.map(|j| &j.source_table), run.map(|r| &r.source_table)),
            target_table: pick(job.map(|j| &j.target_table), run.map(|r| &r.target_table)),
            every_ms: job.map(|j| u64::try_from(j.every.as_millis()).unwrap_or(u64::MAX)),
            configured: job.is_some(),
            outcome: run.map(|r| r.outcome.clone()),
            rows_compared: run.map(|r| r.rows_compared),
            missing: run.map(|r| r.missing),
            extra: run.map(|r| r.extra),
            changed: run.map(|r| r.changed),
            started_at: run.map(|r| r.started_at),
            finished_at: run.map(|r| r.finished_at),
            error: run.and_then(|r| r.error.clone()),
            run_id: run.map(|r| r.id),
        }
    }
}

/// `GET /api/v1/verify`: every configured job with its latest run (in config order), then
/// jobs that are no longer configured but have runs.
pub async fn verify_jobs(State(st): State<Arc<AdminState>>) -> ApiResult<Vec<VerifyJobView>> {
    let snap = st.control.snapshot();
    let latest = st
        .control
        .store()
        .latest_verify_runs()
        .await
        .map_err(|e| Problem::from(ControlError::from(e)))?;
    let mut out: Vec<VerifyJobView> = snap
        .effective
        .verify
        .iter()
        .map(|j| VerifyJobView::new(Some(j), latest.iter().find(|r| r.job == j.name)))
        .collect();
    out.extend(
        latest
            .iter()
            .filter(|r| !snap.effective.verify.iter().any(|j| j.name == r.job))
            .map(|r| VerifyJobView::new(None, Some(r))),
    );
    Ok(axum::Json(out))
}

#[derive(Deserialize)]
pub struct VerifyRunParams {
    pub limit: Option<u32>,
}

/// One job and its recent runs.
#[derive(Debug, Serialize)]
pub struct VerifyJobRuns {
    #[serde(flatten)]
    pub job: VerifyJobView,
    /// Newest first, each with ficus-verify's JSON report.
    pub runs: Vec<ficus_store::VerifyRun>,
}

/// `GET /api/v1/verify/{job}`: the job's recent runs (query: limit, default 20, at most 100).
pub async fn verify_job(
    State(st): State<Arc<AdminState>>,
    Segments(name): Segments<String>,
    Params(p): Params<VerifyRunParams>,
) -> ApiResult<VerifyJobRuns> {
    let snap = st.control.snapshot();
    let runs = st
        .control
        .store()
        .verify_runs(Some(&name), p.limit.unwrap_or(20).clamp(1, 100))
        .await
        .map_err(|e| Problem::from(ControlError::from(e)))?;
    let job = snap.effective.verify.iter().find(|j| j.name == name);
    if job.is_none() && runs.is_empty() {
        let known: Vec<_> = snap
            .effective
            .verify
            .iter()
            .map(|j| j.name.as_str())
            .collect();
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "unknown-verify-job",
            format!("no verify job named {name:?}"),
        )
        .fix(if known.is_empty() {
            "no [[verify]] jobs are configured; add one to ficus.toml".to_string()
        } else {
            format!("verify jobs are: {}", known.join(", "))
        }));
    }
    Ok(axum::Json(VerifyJobRuns {
        job: VerifyJobView::new(job, runs.first()),
        runs,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffParams {
    pub route: Option<String>,
}

/// One route's shadow comparisons: the mirror's counters and the ranked differences.
#[derive(Debug, Serialize)]
pub struct RouteDiffs {
    pub route: String,
    /// The route's stage now, and whether it mirrors now.
    pub stage: Option<String>,
    pub mirroring: bool,
    /// Since this ficus started: copies sent, dropped by reason, failed, compared.
    pub counters: ficus_telemetry::ShadowTotals,
    /// Since the last reset, across restarts: per endpoint and field path.
    pub report: Option<ficus_compare::RouteReport>,
}

/// `GET /api/v1/diffs`: every route that mirrors or has comparisons (query: route).
pub async fn diffs(
    State(st): State<Arc<AdminState>>,
    Params(p): Params<DiffParams>,
) -> ApiResult<Vec<RouteDiffs>> {
    let snap = st.control.snapshot();
    if let Some(name) = &p.route {
        if !snap.effective.all_routes().any(|r| &r.name == name) {
            return Err(unknown_route(name, &snap.effective));
        }
    }
    let report = st.control.shadow_report(p.route.as_deref());
    let telemetry = st.control.gateway().telemetry();
    let mut out = Vec::new();
    for r in snap.effective.all_routes() {
        if p.route.as_ref().is_some_and(|n| n != &r.name) {
            continue;
        }
        let mirroring = r.modern.is_some() && ficus_proxy::mirror::mirrors(r.stage, &r.shadow);
        let rep = report.routes.iter().find(|x| x.route == r.name).cloned();
        let counters = telemetry.route(&r.name).shadow.totals();
        if !mirroring && rep.is_none() && counters == Default::default() && p.route.is_none() {
            continue;
        }
        out.push(RouteDiffs {
            route: r.name.clone(),
            stage: Some(r.stage.as_str().to_string()),
            mirroring,
            counters,
            report: rep,
        });
    }
    // Comparisons of routes no longer in the config stay visible until reset.
    for rep in report.routes {
        if !snap.effective.all_routes().any(|r| r.name == rep.route) {
            out.push(RouteDiffs {
                route: rep.route.clone(),
                stage: None,
                mirroring: false,
                counters: Default::default(),
                report: Some(rep),
            });
        }
    }
    Ok(axum::Json(out))
}

/// `GET /api/v1/diffs/samples/{id}`: one sample exchange, request and both responses.
pub async fn diff_sample(
    State(st): State<Arc<AdminState>>,
    Segments(id): Segments<String>,
) -> ApiResult<ficus_compare::Sample> {
    let n: i64 = id.parse().map_err(|_| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-path",
            format!("sample id {id:?} is not an integer"),
        )
        .fix("take sample ids from GET /api/v1/diffs (fields[].sample_ids)")
    })?;
    match st.control.shadow_sample(n).await? {
        Some(s) => Ok(axum::Json(s)),
        None => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "unknown-sample",
            format!("no sample with id {n}"),
        )
        .fix("samples are removed when their route's comparisons are reset; list current ones with GET /api/v1/diffs")),
    }
}

/// `POST /api/v1/diffs/{route}/reset`: forget the route's comparisons (an event). Routes no
/// longer in the config can be reset too while they still have comparisons.
pub async fn reset_diffs(
    State(st): State<Arc<AdminState>>,
    headers: axum::http::HeaderMap,
    Segments(name): Segments<String>,
    Body(b): Body<MessageBody>,
) -> ApiResult<ChangeView> {
    let msg = message(&b.message)?;
    let snap = st.control.snapshot();
    let configured = snap.effective.all_routes().any(|r| r.name == name);
    if !configured && st.control.shadow_report(Some(&name)).routes.is_empty() {
        return Err(unknown_route(&name, &snap.effective));
    }
    let event = st
        .control
        .reset_shadow(&name, &actor(&st, &headers), msg)
        .await?;
    Ok(axum::Json(ChangeView {
        version: None,
        events: vec![event],
        changes: Vec::new(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeBody {
    /// A path (and query) as clients send it, e.g. `/orders/1?expand=items`; absent: all.
    pub path: Option<String>,
    pub message: String,
}

/// `POST /api/v1/cache/{route}/purge`: forget a route's cached answers, or one path's (an
/// event).
pub async fn purge_cache(
    State(st): State<Arc<AdminState>>,
    headers: axum::http::HeaderMap,
    Segments(name): Segments<String>,
    Body(b): Body<PurgeBody>,
) -> ApiResult<ChangeView> {
    let msg = message(&b.message)?;
    if let Some(p) = &b.path {
        if !p.starts_with('/') || p.len() > 8192 {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-payload",
                "path: must start with / (the path and query as clients send them), at most 8 KiB",
            ));
        }
    }
    let snap = st.control.snapshot();
    if !snap.effective.all_routes().any(|r| r.name == name) {
        return Err(unknown_route(&name, &snap.effective));
    }
    let event = st
        .control
        .purge_cache(&name, b.path.as_deref(), &actor(&st, &headers), msg)
        .await?;
    Ok(axum::Json(ChangeView {
        version: None,
        events: vec![event],
        changes: Vec::new(),
    }))
}

/// `GET /api/v1/rollouts`: every rollout and where it is (from the leader, on any node).
pub async fn rollouts(State(st): State<Arc<AdminState>>) -> ApiResult<Vec<serde_json::Value>> {
    Ok(axum::Json(match &st.rollouts {
        Some(r) => r.view().await?,
        None => Vec::new(),
    }))
}

/// `POST /api/v1/rollouts/{route}/{command}`: pause, resume, promote, abort or start.
pub async fn rollout_command(
    State(st): State<Arc<AdminState>>,
    headers: axum::http::HeaderMap,
    Segments((name, command)): Segments<(String, String)>,
    Body(b): Body<MessageBody>,
) -> ApiResult<ChangeView> {
    let msg = message(&b.message)?;
    if !["pause", "resume", "promote", "abort", "start"].contains(&command.as_str()) {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "unknown-command",
            format!("no rollout command {command:?}"),
        )
        .fix("rollout commands are pause, resume, promote, abort and start"));
    }
    let Some(ctl) = &st.rollouts else {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no-rollout-controller",
            "this gateway runs no rollout controller",
        )
        .fix("rollouts run under `ficus run` and `ficus demo`"));
    };
    let snap = st.control.snapshot();
    if !snap.effective.all_routes().any(|r| r.name == name) {
        return Err(unknown_route(&name, &snap.effective));
    }
    let events = ctl
        .command(&name, &command, &actor(&st, &headers), msg)
        .await?;
    Ok(axum::Json(ChangeView {
        version: None,
        events,
        changes: Vec::new(),
    }))
}
