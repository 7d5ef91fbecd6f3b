//! ficus admin API: on its own listener (default `127.0.0.1:9901`), JSON under `/api/v1`,
//! Prometheus metrics at `/metrics`, health at `/healthz` and `/readyz`, the OpenAPI
//! document at `/api/v1/openapi.json`, the dashboard at `/` (its files under `/ui/`). Every
//! mutation needs the bearer token; reads of the API and `/metrics` need the token or the
//! read-only token whenever the listener is beyond loopback (by default); requests whose
//! `Host` is not one the listener answers are refused (DNS rebinding). Every change goes
//! through the control plane and answers with the events it recorded.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod api;
pub mod auth;
pub mod dashboard;
mod diff;
pub mod flags;
pub mod fleet;
pub mod migration;
pub mod openapi;
pub mod record;
pub mod replay;
pub mod slo;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ficus_control::ControlPlane;

use crate::api::Problem;

/// Largest request body the admin API reads: room for the largest config text
/// (`ficus_config::defaults::MAX_CONFIG_BYTES`) once JSON has escaped it (at most twice its
/// size: a TOML file holds no control character but newline, tab and carriage return, each
/// escaped in two bytes, as are quotes and backslashes), plus 64 KiB for the other fields.
/// So every config that validates can be planned and applied; a larger text is refused by
/// validation, naming the limit, rather than by this one.
pub const MAX_BODY_BYTES: usize = 2 * ficus_config::defaults::MAX_CONFIG_BYTES + 64 * 1024;
/// How long `/readyz` waits for the store.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// What the handlers share.
pub struct AdminState {
    pub control: Arc<ControlPlane>,
    /// The rollout controller, when one runs.
    pub rollouts: Option<Arc<ficus_control::rollout::RolloutController>>,
    token: String,
    /// The read-only token, when one is configured.
    read_token: Option<String>,
    /// Whether reads of the API and `/metrics` need a token.
    reads_need_token: bool,
    /// The `Host` names answered (`None`: any).
    hosts: Option<Vec<String>>,
    /// The actor recorded for API changes that do not name one (`x-ficus-actor`).
    pub default_actor: String,
    /// This node's fleet tasks, when they run (`ficus run`).
    pub fleet: Option<Arc<ficus_control::fleet::FleetStats>>,
    /// The migration controller, once one runs ([`AdminState::set_migrations`]).
    pub migrations: std::sync::OnceLock<Arc<ficus_control::migration::MigrationController>>,
}

impl AdminState {
    pub fn new(control: Arc<ControlPlane>, token: String) -> Arc<AdminState> {
        AdminState::for_node(control, token, None, None, None)
    }

    /// The same, with the rollout controller the API commands go to.
    pub fn with_rollouts(
        control: Arc<ControlPlane>,
        token: String,
        rollouts: Arc<ficus_control::rollout::RolloutController>,
    ) -> Arc<AdminState> {
        AdminState::for_node(control, token, None, Some(rollouts), None)
    }

    /// The state of a node: its tokens (the read-only one when configured), its rollout
    /// controller and fleet tasks, when they run. Who may read and which `Host` names are
    /// answered follow the node's `[admin]` section.
    pub fn for_node(
        control: Arc<ControlPlane>,
        token: String,
        read_token: Option<String>,
        rollouts: Option<Arc<ficus_control::rollout::RolloutController>>,
        fleet: Option<Arc<ficus_control::fleet::FleetStats>>,
    ) -> Arc<AdminState> {
        let admin = control.local().admin.clone();
        Arc::new(AdminState {
            reads_need_token: admin.reads_need_token(),
            hosts: allowed_hosts(&admin),
            control,
            rollouts,
            token,
            read_token,
            default_actor: "api".into(),
            fleet,
            migrations: std::sync::OnceLock::new(),
        })
    }

    /// Sets the migration controller the API's migration commands go to (once).
    pub fn set_migrations(&self, c: Arc<ficus_control::migration::MigrationController>) {
        let _ = self.migrations.set(c);
    }
}

/// The `Host` names the admin listener answers: the configured ones (any with `"*"`) plus
/// the loopback names; by default the loopback names and the bind address, or any name when
/// the bind is the unspecified address (reads then need a token).
fn allowed_hosts(admin: &ficus_config::Admin) -> Option<Vec<String>> {
    let loopback = ["localhost", "127.0.0.1", "::1"].map(String::from);
    match &admin.allowed_hosts {
        Some(list) if list.iter().any(|h| h == "*") => None,
        Some(list) => Some(loopback.into_iter().chain(list.iter().cloned()).collect()),
        None if admin.bind.ip().is_unspecified() => None,
        None => Some(
            loopback
                .into_iter()
                .chain([admin.bind.ip().to_string()])
                .collect(),
        ),
    }
}

/// The host of a `Host` header or an `:authority`: lower case, without port, brackets or a
/// trailing dot.
fn host_name(authority: &str) -> String {
    let a = authority.trim().to_ascii_lowercase();
    let host = if let Some(rest) = a.strip_prefix('[') {
        rest.split(']').next().unwrap_or("").to_string()
    } else {
        match a.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h.to_string(),
            _ => a,
        }
    };
    host.trim_end_matches('.').to_string()
}

impl AdminState {
    /// Whether a request's `Host` is one this listener answers.
    fn host_allowed(&self, req: &Request) -> Result<(), String> {
        let Some(hosts) = &self.hosts else {
            return Ok(());
        };
        let authority = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| req.uri().authority().map(|a| a.to_string()));
        let Some(authority) = authority else {
            return Err("(none)".into());
        };
        let name = host_name(&authority);
        if hosts.contains(&name) {
            Ok(())
        } else {
            Err(authority)
        }
    }
}

/// The admin router.
pub fn router(state: Arc<AdminState>) -> Router {
    let api = Router::new()
        .route(
            "/openapi.json",
            get(|| async { axum::Json(openapi::document()) }),
        )
        .route("/routes", get(api::routes))
        .route("/routes/{name}", get(api::route))
        .route("/routes/{name}/set", post(api::set_route))
        .route("/routes/{name}/rollback", post(api::rollback_route))
        .route("/rollback", post(api::rollback_all))
        .route("/config", get(api::config))
        .route("/config/versions", get(api::versions))
        .route("/config/versions/{number}", get(api::version))
        .route("/config/versions/{number}/diff", get(api::version_diff))
        .route("/config/plan", post(api::plan))
        .route("/config/apply", post(api::apply))
        .route("/config/revert", post(api::revert))
        .route("/events", get(api::events))
        .route("/inventory", get(api::inventory))
        .route("/verify", get(api::verify_jobs))
        .route("/verify/{job}", get(api::verify_job))
        .route("/diffs", get(api::diffs))
        .route("/diffs/samples/{id}", get(api::diff_sample))
        .route("/diffs/{route}/reset", post(api::reset_diffs))
        .route("/cache/{route}/purge", post(api::purge_cache))
        .route("/rollouts", get(api::rollouts))
        .route("/slo", get(slo::list))
        .route("/slo/{route}", get(slo::route))
        .route("/slo-rules", get(slo::rules))
        .route("/flags", get(flags::list))
        .route("/flags/{key}", get(flags::show))
        .route("/flags/{key}/set", post(flags::set))
        .route("/flags/{key}/reset", post(flags::reset))
        .route("/record", get(record::list))
        .route("/replays", get(replay::list).post(replay::save))
        .route("/replays/{id}", get(replay::show))
        .route("/record/{route}/start", post(record::start))
        .route("/record/{route}/stop", post(record::stop))
        .route("/fleet", get(fleet::fleet))
        .route("/migrations", get(migration::list))
        .route("/migrations/{name}", get(migration::show))
        .route("/migrations/{name}/{command}", post(migration::command))
        .route("/rollouts/{route}/{command}", post(api::rollout_command));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .nest("/api/v1", api)
        .merge(dashboard::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            check_host,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// A request whose `Host` the listener does not answer is refused before anything else: a
/// web page that re-points its own name at 127.0.0.1 (DNS rebinding) reads nothing.
async fn check_host(State(st): State<Arc<AdminState>>, req: Request, next: Next) -> Response {
    match st.host_allowed(&req) {
        Ok(()) => next.run(req).await,
        Err(host) => Problem::new(
            StatusCode::FORBIDDEN,
            "host-not-allowed",
            format!("the admin API does not answer for Host {host:?}"),
        )
        .fix("reach it by a loopback name or its bind address, or add the name to [admin] allowed_hosts")
        .into_response(),
    }
}

/// Every request that could change something needs the admin token; reads of the API and
/// `/metrics` need it or the read-only token when reads are not open. Checked before
/// routing, so a 401 says nothing about whether the route or version exists.
/// `/api/v1/config/plan` only reads, but takes a body. `/healthz`, `/readyz` (health probes)
/// and the dashboard's own files are always open: the page asks for the token itself.
async fn require_token(State(st): State<Arc<AdminState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let read_only = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || path == "/api/v1/config/plan";
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::bearer)
        .unwrap_or("");
    let admin = auth::token_matches(presented.as_bytes(), st.token.as_bytes());
    if read_only {
        let guarded = path.starts_with("/api/") || path == "/metrics";
        let reader = st
            .read_token
            .as_ref()
            .is_some_and(|t| auth::token_matches(presented.as_bytes(), t.as_bytes()));
        if !guarded || !st.reads_need_token || admin || reader {
            return next.run(req).await;
        }
        return unauthorized(
            "reading the admin API needs a token here (it listens beyond loopback)",
            format!(
                "send Authorization: Bearer <token>: the admin token, or the read-only token ({} or [admin] read_token_file)",
                auth::READ_TOKEN_ENV
            ),
        );
    }
    if admin {
        return next.run(req).await;
    }
    unauthorized(
        "this request changes the gateway and needs the admin bearer token",
        format!("send Authorization: Bearer <token> (the token is in {} or [admin] token_file, or the generated {} beside the config file)", auth::TOKEN_ENV, auth::GENERATED_TOKEN_FILE),
    )
}

fn unauthorized(detail: &str, fix: String) -> Response {
    let mut resp = Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
        .fix(fix)
        .into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}

async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "not-found", "no such admin endpoint")
        .fix("the endpoints are listed in /api/v1/openapi.json")
}

/// Ready while the gateway serves: a node without its store still serves its last routes
/// (fail static), so it stays in the load balancer; the body says whether the store
/// answers, since changes are refused until it does.
async fn readyz(State(st): State<Arc<AdminState>>) -> Response {
    let store = match tokio::time::timeout(READY_TIMEOUT, st.control.store().health()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("state store: {e}")),
        Err(_) => Some(format!(
            "state store did not answer within {READY_TIMEOUT:?}"
        )),
    };
    let body = match store {
        None => serde_json::json!({"ready": true, "store": "ok"}),
        Some(reason) => serde_json::json!({
            "ready": true,
            "store": "unavailable",
            "reason": reason,
            "serving": "the gateway keeps serving its current routes; changes are refused until the store answers",
        }),
    };
    axum::Json(body).into_response()
}

async fn metrics(State(st): State<Arc<AdminState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.control.gateway().telemetry().prometheus(),
    )
        .into_response()
}

/// Serves the admin API until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AdminState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
