//! Replay runs: `POST /api/v1/replays` keeps a run's report (`ficus replay ... --save`),
//! `GET /api/v1/replays` lists them, `GET /api/v1/replays/{id}` gives one with its ranked
//! fields.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use ficus_store::{NewReplayRun, ReplayRun};
use serde::{Deserialize, Serialize};

use crate::api::{actor, ApiResult, Body, Problem, Segments};
use crate::AdminState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveBody {
    pub file: String,
    pub target: String,
    /// `none`, `recording` or `compare-with`.
    pub reference: String,
    pub report: serde_json::Value,
}

/// A run in the list (without its report).
#[derive(Serialize)]
pub struct RunSummary {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub file: String,
    pub target: String,
    pub reference: String,
    pub sent: i64,
    pub real: i64,
}

/// Fields with the verdict `real` in a replay report's comparison.
fn real_fields(report: &serde_json::Value) -> i64 {
    report["comparison"]["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["endpoints"].as_array().into_iter().flatten())
        .flat_map(|e| e["fields"].as_array().into_iter().flatten())
        .filter(|f| f["verdict"] == "real")
        .count() as i64
}

/// `POST /api/v1/replays`
pub async fn save(
    State(st): State<Arc<AdminState>>,
    headers: axum::http::HeaderMap,
    Body(b): Body<SaveBody>,
) -> ApiResult<ReplayRun> {
    let run = st
        .control
        .store()
        .record_replay(NewReplayRun {
            actor: actor(&st, &headers),
            file: b.file,
            target: b.target,
            reference: b.reference,
            sent: b.report["sent"].as_i64().unwrap_or(0),
            real: real_fields(&b.report),
            report: b.report,
        })
        .await
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "bad-payload", e.to_string()))?;
    Ok(axum::Json(run))
}

/// `GET /api/v1/replays`
pub async fn list(State(st): State<Arc<AdminState>>) -> ApiResult<Vec<RunSummary>> {
    let runs = st
        .control
        .store()
        .replay_runs(100)
        .await
        .map_err(|e| Problem::new(StatusCode::SERVICE_UNAVAILABLE, "store", e.to_string()))?;
    Ok(axum::Json(
        runs.into_iter()
            .map(|r| RunSummary {
                id: r.id,
                at: r.at,
                actor: r.actor,
                file: r.file,
                target: r.target,
                reference: r.reference,
                sent: r.sent,
                real: r.real,
            })
            .collect(),
    ))
}

/// `GET /api/v1/replays/{id}`
pub async fn show(
    State(st): State<Arc<AdminState>>,
    Segments(id): Segments<i64>,
) -> ApiResult<ReplayRun> {
    match st
        .control
        .store()
        .replay_run(id)
        .await
        .map_err(|e| Problem::new(StatusCode::SERVICE_UNAVAILABLE, "store", e.to_string()))?
    {
        Some(r) => Ok(axum::Json(r)),
        None => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "unknown-replay",
            format!("no replay run {id}"),
        )
        .fix("`ficus replays` lists them")),
    }
}
