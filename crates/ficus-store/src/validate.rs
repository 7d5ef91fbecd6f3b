//! Checks a change before it reaches the database, so bad input gets a message that names
//! the field and the limit instead of a constraint name, and both backends refuse the same
//! things (PostgreSQL rejects NUL characters in text that SQLite would store).

use crate::options::limits::*;
use crate::types::{Change, FlagOverrideChange, NewEvent, OverrideChange, ShadowBatch};
use crate::StoreError;

fn invalid(msg: String) -> StoreError {
    StoreError::Invalid(msg)
}

fn text(field: &str, value: &str, max: usize) -> Result<(), StoreError> {
    if value.len() > max {
        return Err(invalid(format!(
            "{field} is {} bytes, more than the limit of {max}; shorten it",
            value.len()
        )));
    }
    if value.contains('\0') {
        return Err(invalid(format!(
            "{field} contains a NUL character, which the store cannot keep; remove it"
        )));
    }
    Ok(())
}

fn name(field: &str, value: &str) -> Result<(), StoreError> {
    if value.trim().is_empty() {
        return Err(invalid(format!("{field} is empty; give it a value")));
    }
    text(field, value, MAX_NAME_BYTES)
}

pub(crate) fn page(limit: u32) -> Result<(), StoreError> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(invalid(format!(
            "limit {limit} is out of range; use 1 to {MAX_PAGE}"
        )));
    }
    Ok(())
}

fn event(i: usize, ev: &NewEvent, has_new_version: bool) -> Result<(), StoreError> {
    let at = |field: &str| format!("event {i} ({}) {field}", ev.kind);
    name(&format!("event {i} kind"), &ev.kind)?;
    name(&at("actor"), &ev.actor)?;
    if let Some(route) = &ev.route {
        name(&at("route"), route)?;
    }
    text(&at("message"), &ev.message, MAX_MESSAGE_BYTES)?;
    match ev.config_version {
        Some(crate::VersionRef::New) if !has_new_version => {
            return Err(invalid(format!(
                "{} refers to the new config version, but the change stores none; \
                 set new_version or refer to an existing version",
                at("config_version")
            )))
        }
        Some(crate::VersionRef::Existing(n)) if n < 1 => {
            return Err(invalid(format!(
                "{} is {n}; versions are numbered from 1",
                at("config_version")
            )))
        }
        _ => {}
    }
    json(
        &at("data"),
        &ev.data,
        MAX_EVENT_DATA_BYTES,
        "keep a summary of the evidence",
    )
}

/// JSON to store: at most `max` bytes serialised, no NUL; `hint` says how to shrink it.
fn json(field: &str, value: &serde_json::Value, max: usize, hint: &str) -> Result<(), StoreError> {
    // Serialised once here for its size; serde_json escapes NUL as \u0000, which
    // PostgreSQL's jsonb refuses, so it is caught here for both backends.
    let data = serde_json::to_string(value)
        .map_err(|e| invalid(format!("{field} cannot be serialised: {e}")))?;
    if data.len() > max {
        return Err(invalid(format!(
            "{field} is {} bytes of JSON, more than the limit of {max}; {hint}",
            data.len()
        )));
    }
    if data.contains("\\u0000") {
        return Err(invalid(format!(
            "{field} contains a NUL character, which the store cannot keep; remove it"
        )));
    }
    Ok(())
}

/// Checks everything in a change that does not need the database.
pub(crate) fn change(change: &Change) -> Result<(), StoreError> {
    if let Some(n) = change.expected_version {
        if n < 1 {
            return Err(invalid(format!(
                "expected_version is {n}; versions are numbered from 1 (use none before the first)"
            )));
        }
    }
    if let Some(v) = &change.new_version {
        text("config text", &v.text, MAX_CONFIG_BYTES)?;
        name("version author", &v.author)?;
        text("version message", &v.message, MAX_MESSAGE_BYTES)?;
    }
    if change.events.is_empty() {
        return Err(invalid(
            "the change has no event; every change needs at least one event saying who \
             made it and why"
                .to_string(),
        ));
    }
    if change.events.len() > MAX_EVENTS_PER_COMMIT {
        return Err(invalid(format!(
            "the change has {} events, more than the limit of {MAX_EVENTS_PER_COMMIT}; \
             split it",
            change.events.len()
        )));
    }
    for (i, ev) in change.events.iter().enumerate() {
        event(i, ev, change.new_version.is_some())?;
    }
    match &change.overrides {
        OverrideChange::Keep | OverrideChange::ClearAll => {}
        OverrideChange::Set(sets) => {
            too_many(sets.len())?;
            for s in sets {
                name("override route", &s.route)?;
                if s.stage.is_none() && s.weight_bp.is_none() {
                    return Err(invalid(format!(
                        "the override of route {} sets neither stage nor weight; set one, \
                         or clear the route",
                        s.route
                    )));
                }
                if let Some(stage) = &s.stage {
                    name(&format!("the override stage of route {}", s.route), stage)?;
                }
                if let Some(w) = s.weight_bp {
                    if !(0..=MAX_WEIGHT_BP).contains(&w) {
                        return Err(invalid(format!(
                            "the override weight of route {} is {w} basis points; use 0 \
                             to {MAX_WEIGHT_BP} (0 % to 100 %)",
                            s.route
                        )));
                    }
                }
            }
        }
        OverrideChange::ClearRoutes(routes) => {
            too_many(routes.len())?;
            for r in routes {
                name("cleared route", r)?;
            }
        }
    }
    match &change.flag_overrides {
        FlagOverrideChange::Keep | FlagOverrideChange::ClearAll => {}
        FlagOverrideChange::Set(sets) => {
            too_many(sets.len())?;
            for s in sets {
                name("override flag", &s.flag)?;
                if s.variant.is_none() && s.enabled.is_none() {
                    return Err(invalid(format!(
                        "the override of flag {} sets neither variant nor enabled; set one, \
                         or clear the flag",
                        s.flag
                    )));
                }
                if let Some(v) = &s.variant {
                    name(&format!("the override variant of flag {}", s.flag), v)?;
                }
            }
        }
        FlagOverrideChange::Clear(flags) => {
            too_many(flags.len())?;
            for f in flags {
                name("cleared flag", f)?;
            }
        }
    }
    Ok(())
}

fn too_many(n: usize) -> Result<(), StoreError> {
    if n > MAX_OVERRIDES_PER_COMMIT {
        return Err(invalid(format!(
            "the change touches {n} overrides, more than the limit of \
             {MAX_OVERRIDES_PER_COMMIT}; split it"
        )));
    }
    Ok(())
}

/// A verify run: names, bounded texts, a known outcome, sane counts and times.
pub(crate) fn verify_run(run: &crate::types::NewVerifyRun) -> Result<(), StoreError> {
    name("verify run job", &run.job)?;
    if let Some(route) = &run.route {
        name("verify run route", route)?;
    }
    text("verify run source_table", &run.source_table, MAX_NAME_BYTES)?;
    text("verify run target_table", &run.target_table, MAX_NAME_BYTES)?;
    if !crate::types::VERIFY_OUTCOMES.contains(&run.outcome.as_str()) {
        return Err(invalid(format!(
            "verify run outcome {:?} is unknown; use one of {}",
            run.outcome,
            crate::types::VERIFY_OUTCOMES.join(", ")
        )));
    }
    if let Some(e) = &run.error {
        text("verify run error", e, MAX_MESSAGE_BYTES)?;
    }
    if run.finished_at < run.started_at {
        return Err(invalid(
            "verify run finished_at is before started_at".to_string(),
        ));
    }
    for (field, n) in [
        ("rows_compared", run.rows_compared),
        ("missing", run.missing),
        ("extra", run.extra),
        ("changed", run.changed),
    ] {
        if n < 0 {
            return Err(invalid(format!("verify run {field} is negative ({n})")));
        }
    }
    Ok(())
}

/// What a verify run covered: a known mode, an incremental run with its bound, bounded texts.
pub(crate) fn verify_scope(scope: &crate::types::VerifyRunScope) -> Result<(), StoreError> {
    if !crate::types::VERIFY_MODES.contains(&scope.mode.as_str()) {
        return Err(invalid(format!(
            "verify run mode {:?} is unknown; use one of {}",
            scope.mode,
            crate::types::VERIFY_MODES.join(", ")
        )));
    }
    match (scope.mode.as_str(), &scope.bound) {
        ("incremental", None) => {
            return Err(invalid(
                "an incremental verify run has no bound; give the lowest watermark it compared"
                    .to_string(),
            ))
        }
        ("full", Some(_)) => {
            return Err(invalid(
                "a full verify run has a bound; only incremental runs have one".to_string(),
            ))
        }
        _ => {}
    }
    for (field, v) in [
        ("verify run fingerprint", &scope.fingerprint),
        ("verify run bound", &scope.bound),
        ("verify run watermark", &scope.watermark),
    ] {
        if let Some(v) = v {
            name(field, v)?;
        }
    }
    Ok(())
}

/// A verify run's checkpoint: a known job and mode, sane times, storable JSON.
pub(crate) fn verify_progress(p: &crate::types::VerifyProgress) -> Result<(), StoreError> {
    name("verify progress job", &p.job)?;
    name("verify progress fingerprint", &p.fingerprint)?;
    if !crate::types::VERIFY_MODES.contains(&p.mode.as_str()) {
        return Err(invalid(format!(
            "verify progress mode {:?} is unknown; use one of {}",
            p.mode,
            crate::types::VERIFY_MODES.join(", ")
        )));
    }
    if p.updated_at < p.started_at {
        return Err(invalid(
            "verify progress updated_at is before started_at".to_string(),
        ));
    }
    if p.segments_done < 0 {
        return Err(invalid(format!(
            "verify progress segments_done is negative ({})",
            p.segments_done
        )));
    }
    json(
        "verify progress checkpoint",
        &p.checkpoint,
        MAX_VERIFY_CHECKPOINT_BYTES,
        "lower max_diffs, or verify fewer rows per run",
    )
}

/// A shadow flush: names present and bounded, counters and times not negative, sample
/// data storable, and not too many rows.
pub(crate) fn shadow_batch(batch: &ShadowBatch) -> Result<(), StoreError> {
    for (what, n) in [
        ("endpoints", batch.endpoints.len()),
        ("fields", batch.fields.len()),
        ("samples", batch.samples.len()),
    ] {
        if n > MAX_SHADOW_ROWS_PER_FLUSH {
            return Err(invalid(format!(
                "the shadow flush has {n} {what}, more than the limit of \
                 {MAX_SHADOW_ROWS_PER_FLUSH}; flush more often or in parts"
            )));
        }
    }
    for (i, e) in batch.endpoints.iter().enumerate() {
        let at = |field: &str| format!("shadow endpoint {i} {field}");
        name(&at("route"), &e.route)?;
        path(&at("endpoint"), &e.endpoint)?;
        let at = |field: &str| format!("shadow endpoint {i} ({} {}) {field}", e.route, e.endpoint);
        not_negative(&at, "compared", e.compared)?;
        not_negative(&at, "differing", e.differing)?;
        not_negative(&at, "noise_compared", e.noise_compared)?;
        not_negative(&at, "noise_differing", e.noise_differing)?;
        not_negative(&at, "last_ms", e.last_ms)?;
    }
    for (i, f) in batch.fields.iter().enumerate() {
        let at = |field: &str| format!("shadow field {i} {field}");
        name(&at("route"), &f.route)?;
        path(&at("endpoint"), &f.endpoint)?;
        path(&at("path"), &f.path)?;
        name(&at("kind"), &f.kind)?;
        let at = |field: &str| {
            format!(
                "shadow field {i} ({} {} {} {}) {field}",
                f.route, f.endpoint, f.path, f.kind
            )
        };
        not_negative(&at, "differing", f.differing)?;
        not_negative(&at, "noise_differing", f.noise_differing)?;
        not_negative(&at, "last_ms", f.last_ms)?;
    }
    for (i, s) in batch.samples.iter().enumerate() {
        let at = |field: &str| format!("shadow sample {i} (id {}) {field}", s.id);
        name(&at("route"), &s.route)?;
        path(&at("endpoint"), &s.endpoint)?;
        path(&at("path"), &s.path)?;
        name(&at("kind"), &s.kind)?;
        not_negative(&at, "at_ms", s.at_ms)?;
        json(
            &at("data"),
            &s.data,
            MAX_SHADOW_SAMPLE_BYTES,
            "keep an excerpt of the bodies",
        )?;
    }
    Ok(())
}

/// A shadow endpoint name or field path: like a name, with a larger limit.
fn path(field: &str, value: &str) -> Result<(), StoreError> {
    if value.trim().is_empty() {
        return Err(invalid(format!("{field} is empty; give it a value")));
    }
    text(field, value, MAX_SHADOW_PATH_BYTES)
}

fn not_negative(at: &dyn Fn(&str) -> String, field: &str, n: i64) -> Result<(), StoreError> {
    if n < 0 {
        return Err(invalid(format!(
            "{} is negative ({n}); a flush adds counts and times of 0 or more",
            at(field)
        )));
    }
    Ok(())
}

/// A shadow reset: the route, who and why.
pub(crate) fn shadow_reset(route: &str, actor: &str, reason: &str) -> Result<(), StoreError> {
    name("shadow reset route", route)?;
    name("shadow reset actor", actor)?;
    text("shadow reset reason", reason, MAX_MESSAGE_BYTES)
}

pub(crate) fn node(node: &crate::fleet::NodeRegistration) -> Result<(), StoreError> {
    name("node id", &node.id)?;
    name(&format!("node {} name", node.id), &node.name)?;
    text(
        &format!("node {} host", node.id),
        &node.host,
        MAX_NAME_BYTES,
    )?;
    text(
        &format!("node {} version", node.id),
        &node.version,
        MAX_NAME_BYTES,
    )?;
    if let Some(url) = &node.admin_url {
        text(&format!("node {} admin_url", node.id), url, MAX_NAME_BYTES)?;
    }
    Ok(())
}

pub(crate) fn telemetry_slot(s: &crate::fleet::TelemetrySlot) -> Result<(), StoreError> {
    let at = || {
        format!(
            "telemetry row {} {} side {} at {}",
            s.node_id, s.route, s.side, s.at
        )
    };
    name("telemetry node id", &s.node_id)?;
    name(&format!("{} route", at()), &s.route)?;
    if !(0..=1).contains(&s.side) {
        return Err(invalid(format!(
            "{}: side must be 0 (legacy) or 1 (modern)",
            at()
        )));
    }
    if s.by_class.iter().any(|c| *c < 0) || s.fallbacks < 0 || s.latency_sum_us < 0 {
        return Err(invalid(format!("{}: counts must be >= 0", at())));
    }
    if s.hist.len() > MAX_TELEMETRY_HIST_BYTES {
        return Err(invalid(format!(
            "{}: the histogram is {} bytes, more than the limit of {MAX_TELEMETRY_HIST_BYTES}",
            at(),
            s.hist.len()
        )));
    }
    Ok(())
}
