//! `GET /api/v1/migrations`: every `[[migration]]` plan and where it is (step, status, the
//! latest gate's evidence, the throttle). `GET /api/v1/migrations/{name}`: one plan and its
//! timeline (its events, newest first). `POST /api/v1/migrations/{name}/{command}`:
//! `advance`, `pause`, `resume` or `back`, each an audited event (sent to the leader when
//! this node does not lead).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use ficus_control::migration::{MigrationController, MigrationView};
use serde::Serialize;

use crate::api::{actor, message, ApiResult, Body, ChangeView, MessageBody, Problem, Segments};
use crate::AdminState;

const COMMANDS: [&str; 4] = ["advance", "pause", "resume", "back"];

#[derive(Serialize)]
pub struct MigrationDetail {
    #[serde(flatten)]
    pub view: MigrationView,
    pub timeline: Vec<ficus_store::Event>,
}

fn controller(st: &AdminState) -> Result<&Arc<MigrationController>, Problem> {
    st.migrations.get().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no-migration-controller",
            "this gateway runs no migration controller",
        )
        .fix("migration plans run under `ficus run` and `ficus demo`")
    })
}

/// `GET /api/v1/migrations`
pub async fn list(State(st): State<Arc<AdminState>>) -> ApiResult<Vec<MigrationView>> {
    match st.migrations.get() {
        Some(c) => Ok(axum::Json(c.view().await?)),
        None => Ok(axum::Json(Vec::new())),
    }
}

/// `GET /api/v1/migrations/{name}`
pub async fn show(
    State(st): State<Arc<AdminState>>,
    Segments(name): Segments<String>,
) -> ApiResult<MigrationDetail> {
    let (view, timeline) = controller(&st)?.detail(&name).await?;
    Ok(axum::Json(MigrationDetail { view, timeline }))
}

/// `POST /api/v1/migrations/{name}/{command}`
pub async fn command(
    State(st): State<Arc<AdminState>>,
    headers: axum::http::HeaderMap,
    Segments((name, command)): Segments<(String, String)>,
    Body(b): Body<MessageBody>,
) -> ApiResult<ChangeView> {
    let msg = message(&b.message)?;
    if !COMMANDS.contains(&command.as_str()) {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "unknown-command",
            format!("no migration command {command:?}"),
        )
        .fix("migration commands are advance, pause, resume and back"));
    }
    let events = controller(&st)?
        .command(&name, &command, &actor(&st, &headers), msg)
        .await?;
    Ok(axum::Json(ChangeView {
        version: None,
        events,
        changes: Vec::new(),
    }))
}
