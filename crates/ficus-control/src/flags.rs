//! Runtime flag changes: `ficus flag set KEY --variant off` (the kill switch: everyone gets
//! that variant, whatever the rules say) and `--enable` / `--disable`, and `ficus flag reset`.
//!
//! A flag override is kept in the store beside the route overrides and taken the way every
//! change is: against the store's latest state, validated, compiled (a route whose canary
//! follows the flag follows the override too), committed with its `flag.set` / `flag.reset`
//! event in one transaction, then swapped in. Other nodes pick it up from the revision like
//! any change; OFREP clients are told through their event streams. A file change to the flag
//! (or its removal) drops the override, like a file change to a route's stage; a revert drops
//! them all.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ficus_config::plan::FlagOverride;
use ficus_config::Config;
use ficus_store::{
    Change, FlagOverrideChange, FlagOverrideRow, FlagOverrideSet, NewEvent, OverrideChange,
    StoreError,
};

use crate::{lay, Applied, ControlError, ControlPlane, Snapshot, CHANGE_TRIES};

/// The event kind of a flag override set through the API or the CLI.
pub const FLAG_SET: &str = "flag.set";
/// The event kind of a flag override removed: the flag follows the file again.
pub const FLAG_RESET: &str = "flag.reset";

/// The flag evaluations this node answered over OFREP, by flag, variant (empty when none was
/// served) and reason, since it started: `/metrics`, the API and the dashboard read them.
#[derive(Debug, Default)]
pub struct Evaluations {
    /// Flag, then variant, then (reason, count): looked up by `&str`, so counting an
    /// evaluation already seen allocates nothing.
    counts: Mutex<HashMap<String, ByVariant>>,
}

/// One flag's counts: per variant, (reason, count).
type ByVariant = HashMap<String, Vec<(&'static str, u64)>>;

/// One count of [`Evaluations`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct EvaluationCount {
    pub flag: String,
    pub variant: String,
    pub reason: &'static str,
    pub count: u64,
}

impl Evaluations {
    /// Counts `n` evaluations of `flag` that served `variant` for `reason`.
    pub fn count(&self, flag: &str, variant: &str, reason: &'static str, n: u64) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if !counts.contains_key(flag) {
            counts.insert(flag.to_string(), HashMap::new());
        }
        let Some(variants) = counts.get_mut(flag) else {
            return;
        };
        if !variants.contains_key(variant) {
            variants.insert(variant.to_string(), Vec::new());
        }
        let Some(reasons) = variants.get_mut(variant) else {
            return;
        };
        match reasons.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, c)) => *c += n,
            None => reasons.push((reason, n)),
        }
    }

    /// Every count, sorted by flag, variant and reason; only `flag`'s when given.
    pub fn counts(&self, flag: Option<&str>) -> Vec<EvaluationCount> {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<EvaluationCount> = counts
            .iter()
            .filter(|(f, _)| flag.is_none_or(|k| k == f.as_str()))
            .flat_map(|(f, variants)| {
                variants.iter().flat_map(move |(v, reasons)| {
                    reasons.iter().map(move |(r, n)| EvaluationCount {
                        flag: f.clone(),
                        variant: v.clone(),
                        reason: r,
                        count: *n,
                    })
                })
            })
            .collect();
        out.sort();
        out
    }
}

impl ControlPlane {
    /// The flag evaluations this node answered over OFREP.
    pub fn flag_evaluations(&self) -> &Evaluations {
        &self.flag_evaluations
    }

    /// Overrides a flag at runtime: `variant` is served to every context (its rules are set
    /// aside), `enabled` sets its switch. A `None` keeps what an earlier override set.
    pub async fn set_flag(
        &self,
        key: &str,
        variant: Option<String>,
        enabled: Option<bool>,
        actor: &str,
        message: &str,
    ) -> Result<Applied, ControlError> {
        if variant.is_none() && enabled.is_none() {
            return Err(ControlError::BadRequest(
                "give a variant, an enabled switch, or both".into(),
            ));
        }
        let set = FlagOverride {
            flag: key.to_string(),
            variant,
            enabled,
        };
        self.change_flag(key, Some(set), actor, message).await
    }

    /// Removes a flag's runtime override: it follows the file again. Nothing is recorded
    /// when the flag has none.
    pub async fn reset_flag(
        &self,
        key: &str,
        actor: &str,
        message: &str,
    ) -> Result<Applied, ControlError> {
        self.change_flag(key, None, actor, message).await
    }

    async fn change_flag(
        &self,
        key: &str,
        set: Option<FlagOverride>,
        actor: &str,
        message: &str,
    ) -> Result<Applied, ControlError> {
        let _one_at_a_time = self.changes.lock().await;
        let mut tries = 0;
        loop {
            tries += 1;
            self.sync_locked().await?;
            let snap = self.snapshot();
            let Some(file_flag) = snap.base.flags.iter().find(|f| f.key == key) else {
                return Err(ControlError::NotFound(format!(
                    "no flag named {key:?} in config version {}; `ficus flag list` shows them",
                    snap.version.unwrap_or(0)
                )));
            };
            let before = snap.flag_overrides.iter().find(|o| o.flag == key).cloned();
            let mut flag_overrides = snap.flag_overrides.clone();
            let after = match &set {
                Some(s) => {
                    let merged = FlagOverride {
                        flag: key.to_string(),
                        variant: s
                            .variant
                            .clone()
                            .or_else(|| before.as_ref().and_then(|b| b.variant.clone())),
                        enabled: s
                            .enabled
                            .or_else(|| before.as_ref().and_then(|b| b.enabled)),
                    };
                    flag_overrides.retain(|o| o.flag != key);
                    flag_overrides.push(merged.clone());
                    flag_overrides.sort_by(|a, b| a.flag.cmp(&b.flag));
                    Some(merged)
                }
                None if before.is_none() => return Ok(Applied::nothing(snap.version)),
                None => {
                    flag_overrides.retain(|o| o.flag != key);
                    None
                }
            };
            let effective = lay(&snap.base, &snap.overrides, &flag_overrides)?;
            let changes = ficus_config::plan::plan(&snap.effective, &effective);
            let table = self.gateway.prepare(effective.clone())?;
            let data = serde_json::json!({
                "flag": key,
                "variant": {
                    "from": before.as_ref().and_then(|b| b.variant.clone()),
                    "to": after.as_ref().and_then(|a| a.variant.clone()),
                },
                "enabled": {
                    "from": before.as_ref().and_then(|b| b.enabled),
                    "to": after.as_ref().and_then(|a| a.enabled),
                },
                "file": {
                    "default": file_flag.default_variant,
                    "enabled": file_flag.enabled,
                    "rules": file_flag.rules.len(),
                },
            });
            let (kind, flags) = match &after {
                Some(a) => (
                    FLAG_SET,
                    FlagOverrideChange::Set(vec![FlagOverrideSet {
                        flag: key.to_string(),
                        variant: a.variant.clone(),
                        enabled: a.enabled,
                    }]),
                ),
                None => (FLAG_RESET, FlagOverrideChange::Clear(vec![key.to_string()])),
            };
            let committed = self
                .store
                .commit(Change {
                    expected_version: snap.version,
                    new_version: None,
                    overrides: OverrideChange::Keep,
                    flag_overrides: flags,
                    events: vec![NewEvent::new(actor, kind, message).with_data(data)],
                })
                .await;
            let committed = match committed {
                Ok(c) => c,
                // Another node applied a version between our catching up and our commit.
                Err(StoreError::Conflict { .. }) if tries < CHANGE_TRIES => continue,
                Err(e) => return Err(e.into()),
            };
            self.gateway.swap(table);
            let mut raw = self.synced().raw_overrides;
            raw.flags.retain(|r| r.0 != key);
            if let Some(a) = &after {
                raw.flags
                    .push((key.to_string(), a.variant.clone(), a.enabled));
                raw.flags.sort();
            }
            self.publish(
                Snapshot {
                    version: snap.version,
                    sha256: snap.sha256.clone(),
                    text: snap.text.clone(),
                    base: snap.base.clone(),
                    overrides: snap.overrides.clone(),
                    flag_overrides,
                    effective: Arc::new(effective),
                },
                raw,
            );
            tracing::info!(actor, kind, flag = key, "{message}");
            self.announce(&committed.events);
            self.caught_up_after_own_change().await;
            return Ok(Applied {
                version: committed.latest_version,
                events: committed.events,
                changes,
            });
        }
    }
}

pub(crate) fn to_flag_override(o: &FlagOverrideRow) -> FlagOverride {
    FlagOverride {
        flag: o.flag.clone(),
        variant: o.variant.clone(),
        enabled: o.enabled,
    }
}

/// Keeps the flag overrides that fit a config (their flag and variant exist).
pub(crate) fn fitting(cfg: &Config, overrides: Vec<FlagOverride>) -> Vec<FlagOverride> {
    overrides
        .into_iter()
        .filter(|o| {
            cfg.flags.iter().find(|f| f.key == o.flag).is_some_and(|f| {
                o.variant
                    .as_ref()
                    .is_none_or(|v| f.variants.contains_key(v))
            })
        })
        .collect()
}

/// The flags whose override is in `before` and not in `after`.
pub(crate) fn dropped(before: &[FlagOverride], after: &[FlagOverride]) -> Vec<String> {
    before
        .iter()
        .filter(|o| !after.iter().any(|a| a.flag == o.flag))
        .map(|o| o.flag.clone())
        .collect()
}

pub(crate) fn clear(flags: &[String]) -> FlagOverrideChange {
    if flags.is_empty() {
        FlagOverrideChange::Keep
    } else {
        FlagOverrideChange::Clear(flags.to_vec())
    }
}
