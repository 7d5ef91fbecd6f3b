//! `GET /api/v1/flags` and `/api/v1/flags/{key}`: the feature flags of the running config
//! (served over OFREP by the `[ofrep]` listener), as the config defines them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::api::{ApiResult, Problem, Segments};
use crate::AdminState;

/// One flag in the list.
#[derive(Debug, Clone, Serialize)]
pub struct FlagSummary {
    pub key: String,
    pub enabled: bool,
    /// `boolean`, `string`, `number` or `object`.
    pub kind: &'static str,
    pub variants: Vec<String>,
    pub default: String,
    pub rules: usize,
}

fn kind(f: &ficus_flags::Flag) -> &'static str {
    match f.variants.values().next().map(|v| v.kind()) {
        Some(ficus_flags::ValueKind::Boolean) => "boolean",
        Some(ficus_flags::ValueKind::String) => "string",
        Some(ficus_flags::ValueKind::Number) => "number",
        Some(ficus_flags::ValueKind::Object) | None => "object",
    }
}

/// `GET /api/v1/flags`
pub async fn list(State(st): State<Arc<AdminState>>) -> ApiResult<Vec<FlagSummary>> {
    let snap = st.control.snapshot();
    let mut out: Vec<FlagSummary> = snap
        .effective
        .flags
        .iter()
        .map(|f| FlagSummary {
            key: f.key.clone(),
            enabled: f.enabled,
            kind: kind(f),
            variants: f.variants.keys().cloned().collect(),
            default: f.default_variant.clone(),
            rules: f.rules.len(),
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(axum::Json(out))
}

/// `GET /api/v1/flags/{key}`: the whole definition (variants with their values, rules).
pub async fn show(
    State(st): State<Arc<AdminState>>,
    Segments(key): Segments<String>,
) -> ApiResult<ficus_flags::Flag> {
    let snap = st.control.snapshot();
    match snap.effective.flags.iter().find(|f| f.key == key) {
        Some(f) => Ok(axum::Json(f.clone())),
        None => {
            let mut known: Vec<&str> = snap
                .effective
                .flags
                .iter()
                .map(|f| f.key.as_str())
                .collect();
            known.sort_unstable();
            Err(Problem::new(
                StatusCode::NOT_FOUND,
                "unknown-flag",
                format!("no flag with key {key:?}"),
            )
            .fix(if known.is_empty() {
                "the config has no [[flag]]".to_string()
            } else {
                format!("flags are: {}", known.join(", "))
            }))
        }
    }
}
