//! `GET /api/v1/record`: this node's recordings (each route that records or recorded: its
//! state, settings and counts, which add up: requests = recorded + sampled out + dropped +
//! in progress). `POST /api/v1/record/{route}/start` and `/stop`: recording at runtime on
//! every node, recorded as events.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use ficus_config::Weight;
use ficus_proxy::record::{DropReason, RuntimeState};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::api::{actor, message, ApiResult, Body, MessageBody, Problem, Segments};
use crate::AdminState;

#[derive(Serialize)]
pub struct RecordingsView {
    pub node: String,
    pub dir: String,
    /// Bytes of every recording this node wrote since it started.
    pub total_bytes: u64,
    pub max_total: u64,
    pub routes: Vec<Value>,
}

/// `GET /api/v1/record`
pub async fn list(State(st): State<Arc<AdminState>>) -> ApiResult<RecordingsView> {
    let rec = st.control.gateway().recorder().clone();
    let mut routes = Vec::new();
    for slot in rec.slots() {
        let session = slot.session();
        let runtime = rec.runtime(&slot.route);
        let s = &slot.stats;
        let requests = s.requests.load(Ordering::Relaxed);
        if session.is_none() && requests == 0 && runtime.is_none() {
            continue;
        }
        let recorded = s.recorded.load(Ordering::Relaxed);
        let sampled_out = s.sampled_out.load(Ordering::Relaxed);
        let dropped_total = s.dropped_total();
        let mut dropped = serde_json::Map::new();
        for r in DropReason::ALL {
            dropped.insert(r.as_str().to_string(), json!(s.dropped(r)));
        }
        let state = match (&session, &runtime) {
            (Some(x), _) if x.expired() => "ended",
            (Some(_), _) => "recording",
            (None, Some(RuntimeState::Stopped)) => "stopped",
            (None, _) => "off",
        };
        routes.push(json!({
            "route": slot.route.as_ref(),
            "state": state,
            "source": session.as_ref().map(|x| if x.runtime.is_some() { "runtime" } else { "config" }),
            "sample_percent": session.as_ref().map(|x| x.policy.sample.basis_points() as f64 / 100.0),
            "until_ms": session.as_ref().and_then(|x| x.runtime.as_ref()).and_then(|r| r.until).map(|u| {
                u.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
            }),
            "event_id": session.as_ref().and_then(|x| x.runtime.as_ref()).map(|r| r.event_id),
            "max_size": session.as_ref().map(|x| x.policy.max_size),
            "max_body": session.as_ref().map(|x| x.policy.max_body),
            "started_ms": session.as_ref().map(|x| x.started_ms),
            "requests": requests,
            "recorded": recorded,
            "sampled_out": sampled_out,
            "dropped": dropped,
            "dropped_total": dropped_total,
            "in_progress": requests.saturating_sub(recorded + sampled_out + dropped_total),
            "bytes": s.bytes.load(Ordering::Relaxed),
            "files": s.files.load(Ordering::Relaxed),
        }));
    }
    Ok(axum::Json(RecordingsView {
        node: rec.node().to_string(),
        dir: rec.settings().dir.display().to_string(),
        total_bytes: rec.total_bytes(),
        max_total: rec.settings().max_total,
        routes,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    /// Percent of sticky keys recorded (default 100).
    pub sample: Option<f64>,
    /// How long, e.g. `"1h"` (default: until stopped).
    #[serde(rename = "for")]
    pub for_: Option<String>,
    /// Size cap per node, e.g. `"1GiB"`.
    pub max_size: Option<String>,
    pub message: String,
}

fn bad(detail: String) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "bad-payload", detail)
}

/// `POST /api/v1/record/{route}/start`
pub async fn start(
    State(st): State<Arc<AdminState>>,
    headers: axum::http::HeaderMap,
    Segments(route): Segments<String>,
    Body(b): Body<StartBody>,
) -> ApiResult<Value> {
    let msg = message(&b.message)?;
    let sample = match b.sample {
        None => Weight::MAX,
        Some(p) => Weight::from_percent(p).ok_or_else(|| {
            bad(format!(
                "sample: {p} is not a percentage from 0 to 100 with at most two decimals"
            ))
        })?,
    };
    let for_ = b
        .for_
        .as_deref()
        .map(ficus_config::units::parse_duration)
        .transpose()
        .map_err(|e| bad(format!("for: {e}")))?;
    let max_size = b
        .max_size
        .as_deref()
        .map(ficus_config::units::parse_size)
        .transpose()
        .map_err(|e| bad(format!("max_size: {e}")))?;
    let e = st
        .control
        .record_start(
            &route,
            ficus_control::record::StartRecording {
                sample,
                for_,
                max_size,
            },
            &actor(&st, &headers),
            msg,
        )
        .await?;
    Ok(axum::Json(json!({ "events": [e] })))
}

/// `POST /api/v1/record/{route}/stop`
pub async fn stop(
    State(st): State<Arc<AdminState>>,
    headers: axum::http::HeaderMap,
    Segments(route): Segments<String>,
    Body(b): Body<MessageBody>,
) -> ApiResult<Value> {
    let msg = message(&b.message)?;
    let e = st
        .control
        .record_stop(&route, &actor(&st, &headers), msg)
        .await?;
    Ok(axum::Json(json!({ "events": [e] })))
}
