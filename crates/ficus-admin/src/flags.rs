//! `GET /api/v1/flags` and `/api/v1/flags/{key}`: the feature flags as they run (the
//! config's `[[flag]]`s with the runtime overrides laid over them; served over OFREP by the
//! `[ofrep]` listener), and this node's evaluation counts. `POST /api/v1/flags/{key}/set`
//! and `/reset`: the runtime override (the kill switch), recorded with an event.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use ficus_config::plan::FlagOverride;
use serde::{Deserialize, Serialize};

use crate::api::{actor, message, ApiResult, Body, ChangeView, Problem, Segments};
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
    /// The runtime override, when one is set (`ficus flag set`).
    #[serde(rename = "override", skip_serializing_if = "Option::is_none")]
    pub overridden: Option<FlagOverride>,
    /// Evaluations this node answered over OFREP since it started.
    pub evaluations: u64,
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
    let mut evaluated = std::collections::HashMap::<String, u64>::new();
    for c in st.control.flag_evaluations().counts(None) {
        *evaluated.entry(c.flag).or_default() += c.count;
    }
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
            overridden: snap
                .flag_overrides
                .iter()
                .find(|o| o.flag == f.key)
                .cloned(),
            evaluations: evaluated.get(&f.key).copied().unwrap_or(0),
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(axum::Json(out))
}

/// `GET /api/v1/flags/{key}`: the whole definition as it runs (variants with their values,
/// rules, metadata, in OFREP's camelCase), plus `override` (when set), `file` (the
/// definition in the config version, when an override changes it) and `evaluations` (this
/// node's counts by variant and reason).
pub async fn show(
    State(st): State<Arc<AdminState>>,
    Segments(key): Segments<String>,
) -> ApiResult<serde_json::Value> {
    let snap = st.control.snapshot();
    match snap.effective.flags.iter().find(|f| f.key == key) {
        Some(f) => {
            let mut v = serde_json::to_value(f).unwrap_or_default();
            if let Some(o) = snap.flag_overrides.iter().find(|o| o.flag == key) {
                v["override"] = serde_json::json!(o);
                if let Some(file) = snap.base.flags.iter().find(|b| b.key == key) {
                    v["file"] = serde_json::json!(file);
                }
            }
            v["evaluations"] = serde_json::json!(st
                .control
                .flag_evaluations()
                .counts(Some(&key))
                .into_iter()
                .map(|c| serde_json::json!({
                    "variant": c.variant,
                    "reason": c.reason,
                    "count": c.count,
                }))
                .collect::<Vec<_>>());
            Ok(axum::Json(v))
        }
        None => Err(unknown_flag(&snap, &key)),
    }
}

fn unknown_flag(snap: &ficus_control::Snapshot, key: &str) -> Problem {
    {
        {
            let mut known: Vec<&str> = snap
                .effective
                .flags
                .iter()
                .map(|f| f.key.as_str())
                .collect();
            known.sort_unstable();
            Problem::new(
                StatusCode::NOT_FOUND,
                "unknown-flag",
                format!("no flag with key {key:?}"),
            )
            .fix(if known.is_empty() {
                "the config has no [[flag]]".to_string()
            } else {
                format!("flags are: {}", known.join(", "))
            })
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagSetBody {
    /// The variant every context gets (the kill switch); the rules are set aside.
    pub variant: Option<String>,
    /// The flag's switch: `false` serves no value (SDKs use their code default).
    pub enabled: Option<bool>,
    /// Why (recorded in the event).
    pub message: String,
}

/// `POST /api/v1/flags/{key}/set`: a runtime override of the flag, on every node.
pub async fn set(
    State(st): State<Arc<AdminState>>,
    headers: axum::http::HeaderMap,
    Segments(key): Segments<String>,
    Body(b): Body<FlagSetBody>,
) -> ApiResult<ChangeView> {
    let msg = message(&b.message)?;
    if b.variant.is_none() && b.enabled.is_none() {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-payload",
            "variant, enabled: give at least one",
        ));
    }
    let snap = st.control.snapshot();
    let Some(flag) = snap.effective.flags.iter().find(|f| f.key == key) else {
        return Err(unknown_flag(&snap, &key));
    };
    if let Some(v) = &b.variant {
        if !flag.variants.contains_key(v) {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-payload",
                format!("variant: flag {key:?} has no variant {v:?}"),
            )
            .fix(format!(
                "its variants are: {}",
                flag.variants.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let applied = st
        .control
        .set_flag(&key, b.variant, b.enabled, &actor(&st, &headers), msg)
        .await?;
    Ok(axum::Json(applied.into()))
}

/// `POST /api/v1/flags/{key}/reset`: drop the flag's runtime override; it follows the file
/// again. Records nothing when there is none.
pub async fn reset(
    State(st): State<Arc<AdminState>>,
    headers: axum::http::HeaderMap,
    Segments(key): Segments<String>,
    Body(b): Body<crate::api::MessageBody>,
) -> ApiResult<ChangeView> {
    let msg = message(&b.message)?;
    let snap = st.control.snapshot();
    if !snap.effective.flags.iter().any(|f| f.key == key) {
        return Err(unknown_flag(&snap, &key));
    }
    let applied = st
        .control
        .reset_flag(&key, &actor(&st, &headers), msg)
        .await?;
    Ok(axum::Json(applied.into()))
}
