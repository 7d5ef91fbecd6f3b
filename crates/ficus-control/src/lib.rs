//! ficus control plane: the one `apply` through which every routing change goes (a file
//! reload, the admin API, the CLI, later the rollout controller), recorded in the store as a
//! config version and/or an event before it goes live (DESIGN.md invariant 3).
//!
//! What runs is the latest stored version of the file (the desired state) with the runtime
//! overrides (stage or weight set by the API, the CLI or a rollback) laid over it. Each
//! change is validated, compiled into a route table, committed to the store in one
//! transaction, and only then swapped in: nothing acknowledged is lost, and nothing runs
//! that is not recorded.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod events;
pub mod rollout;
pub mod shadow;
pub mod verify;
pub mod webhook;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use ficus_config::plan::{plan, surviving_overrides, with_overrides, Override, RouteChange};
use ficus_config::{Config, Diagnostics, Stage, Weight};
use ficus_proxy::{Gateway, GatewayError};
use ficus_store::{
    Change, Event, NewEvent, NewVersion, OverrideChange, OverrideSet, Store, StoreError, VersionRef,
};
use serde::Serialize;

/// Why a change was refused. Nothing was stored and nothing changed in the gateway.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The config text does not validate.
    #[error("{0}")]
    Invalid(Diagnostics),
    /// The request names something wrong (an unknown route, a stage the route cannot take).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// Optimistic concurrency: the change was based on another version than the latest.
    #[error("{0}")]
    Conflict(String),
    /// The gateway cannot take this config without a restart (listeners, admin, store...).
    #[error("{0}")]
    NeedsRestart(String),
    /// The store cannot be reached: changes are refused until it can (the gateway keeps
    /// serving its current table).
    #[error("{0}")]
    StoreUnavailable(String),
    #[error("{0}")]
    Store(StoreError),
    #[error("{0}")]
    Io(String),
}

impl From<StoreError> for ControlError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => ControlError::Conflict(e.to_string()),
            StoreError::Unavailable { .. } => ControlError::StoreUnavailable(format!(
                "{e}; the change was not made and the gateway keeps serving its current routes"
            )),
            StoreError::NotFound(m) => ControlError::NotFound(m),
            StoreError::Invalid(m) => ControlError::BadRequest(m),
            other => ControlError::Store(other),
        }
    }
}

impl From<GatewayError> for ControlError {
    fn from(e: GatewayError) -> Self {
        match e {
            GatewayError::NeedsRestart(_) => ControlError::NeedsRestart(e.to_string()),
            other => ControlError::BadRequest(other.to_string()),
        }
    }
}

/// What is running: the file's latest version, the overrides, and the two laid together.
#[derive(Debug)]
pub struct Snapshot {
    /// The latest stored config version (`None` only before the first commit).
    pub version: Option<i64>,
    pub sha256: String,
    pub text: Arc<str>,
    /// The file's desired state (that version, parsed).
    pub base: Arc<Config>,
    pub overrides: Vec<Override>,
    /// What the gateway serves.
    pub effective: Arc<Config>,
}

/// The result of an applied change.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    /// The latest config version after the change.
    pub version: Option<i64>,
    /// The events the change recorded.
    pub events: Vec<Event>,
    /// The route-level changes of what runs.
    pub changes: Vec<RouteChange>,
}

/// The control plane's state after reconciling the file with the store, before the gateway
/// starts: start the gateway with [`Boot::effective`], then hand both to
/// [`ControlPlane::new`].
pub struct Boot {
    store: Store,
    file: PathBuf,
    snapshot: Snapshot,
    /// Events recorded while booting (a changed file applied).
    pub events: Vec<Event>,
}

impl Boot {
    pub fn effective(&self) -> &Config {
        &self.snapshot.effective
    }
}

/// The control plane.
pub struct ControlPlane {
    gateway: Arc<Gateway>,
    store: Store,
    file: PathBuf,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Serializes changes within this process; the store's version check serializes them
    /// across processes.
    changes: tokio::sync::Mutex<()>,
    /// Serializes shadow flushes and resets (see [`shadow`]).
    shadow: tokio::sync::Mutex<shadow::FlushState>,
    /// Every event this process records is offered to the `[[webhook]]` receivers.
    hooks: webhook::Webhooks,
}

impl ControlPlane {
    /// Reads the config file and reconciles it with the store: a file that differs from the
    /// latest stored version is stored as a new version (an event by `startup`), dropping
    /// the overrides of routes whose stage or weight the file changed. Overrides that no
    /// longer fit the file (a removed route) are dropped too.
    pub async fn boot(file: &Path, store: Store) -> Result<Boot, ControlError> {
        let text = read(file)?;
        let new = parse(&text, file)?;
        let latest = store.current_version().await?;
        let stored = store.overrides().await?;
        let overrides: Vec<Override> = stored.iter().filter_map(to_override).collect();
        let mut events = Vec::new();
        let (version, base, kept) = match &latest {
            Some(v) if v.sha256 == sha256_hex(&text) => {
                let kept = fitting(&new, overrides);
                (Some(v.number), new, kept)
            }
            _ => {
                let old = latest.as_ref().and_then(|v| parse(&v.text, file).ok());
                let kept = match &old {
                    Some(old) => fitting(&new, surviving_overrides(old, &new, &overrides)),
                    None => fitting(&new, overrides.clone()),
                };
                let changes = old.as_ref().map(|o| plan(o, &new)).unwrap_or_default();
                let dropped = dropped_routes(&overrides, &kept);
                let message = match &latest {
                    None => format!("first version, from {}", file.display()),
                    Some(v) => format!(
                        "{} changed since version {} (applied at startup)",
                        file.display(),
                        v.number
                    ),
                };
                let committed = store
                    .commit(Change {
                        expected_version: latest.as_ref().map(|v| v.number),
                        new_version: Some(NewVersion {
                            text: text.clone(),
                            author: "startup".into(),
                            message: message.clone(),
                        }),
                        overrides: clear(&dropped),
                        events: vec![NewEvent::new("startup", "config.applied", message)
                            .with_version(VersionRef::New)
                            .with_data(serde_json::json!({
                                "file": file.display().to_string(),
                                "changes": changes,
                                "overrides_dropped": dropped,
                            }))],
                    })
                    .await?;
                events = committed.events;
                (committed.latest_version, new, kept)
            }
        };
        let effective =
            with_overrides(&base, &kept).map_err(|e| ControlError::BadRequest(e.to_string()))?;
        webhook::check(&effective.webhooks).map_err(ControlError::BadRequest)?;
        Ok(Boot {
            store,
            file: file.to_path_buf(),
            snapshot: Snapshot {
                version,
                sha256: sha256_hex(&text),
                text: Arc::from(text.as_str()),
                base: Arc::new(base),
                overrides: kept,
                effective: Arc::new(effective),
            },
            events,
        })
    }

    /// The control plane over a booted state and its gateway. The events the boot recorded
    /// wait for the webhooks until [`ControlPlane::start_webhooks`].
    pub fn new(boot: Boot, gateway: Arc<Gateway>) -> Arc<ControlPlane> {
        let hooks = webhook::Webhooks::new();
        boot.events.iter().for_each(|e| hooks.offer(e));
        gateway.telemetry().set_extra("webhooks", hooks.metrics());
        Arc::new(ControlPlane {
            gateway,
            store: boot.store,
            file: boot.file,
            snapshot: RwLock::new(Arc::new(boot.snapshot)),
            changes: tokio::sync::Mutex::new(()),
            shadow: tokio::sync::Mutex::new(shadow::FlushState::default()),
            hooks,
        })
    }

    /// Starts delivering recorded events to the webhooks on the current runtime (once; later
    /// calls do nothing).
    pub fn start_webhooks(self: &Arc<Self>) {
        self.hooks.start(Arc::downgrade(self));
    }

    /// The webhooks' queue and its counts.
    pub fn webhooks(&self) -> &webhook::Webhooks {
        &self.hooks
    }

    /// Appends events to the audit log and offers them to the webhooks.
    pub async fn record_events(&self, events: Vec<NewEvent>) -> Result<Vec<Event>, StoreError> {
        let recorded = self.store.append_events(events).await?;
        self.announce(&recorded);
        Ok(recorded)
    }

    /// Offers events the store recorded (with a change) to the webhooks.
    fn announce(&self, events: &[Event]) {
        events.iter().for_each(|e| self.hooks.offer(e));
    }

    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// What runs now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether the file on disk differs from the running version (someone edited it and
    /// has not applied it yet): `Some(message)` when it does.
    pub fn file_drift(&self) -> Option<String> {
        let snap = self.snapshot();
        match std::fs::read_to_string(&self.file) {
            Ok(text) if sha256_hex(&text) == snap.sha256 => None,
            Ok(_) => Some(format!(
                "{} differs from the running version {}: review it with `ficus plan`, then `ficus apply`",
                self.file.display(),
                snap.version.map_or("(none)".to_string(), |v| v.to_string())
            )),
            Err(e) => Some(format!("cannot read {}: {e}", self.file.display())),
        }
    }

    /// The route-level changes applying `text` would make to what runs now.
    pub fn plan(&self, text: &str) -> Result<Vec<RouteChange>, ControlError> {
        let new = parse(text, &self.file)?;
        let snap = self.snapshot();
        let kept = fitting(&new, surviving_overrides(&snap.base, &new, &snap.overrides));
        let effective =
            with_overrides(&new, &kept).map_err(|e| ControlError::BadRequest(e.to_string()))?;
        Ok(plan(&snap.effective, &effective))
    }

    /// Applies a config text as the next version. `expected_version` guards against
    /// applying on top of a change the caller has not seen (409 when it differs).
    pub async fn apply_text(
        &self,
        text: &str,
        actor: &str,
        message: &str,
        expected_version: Option<i64>,
    ) -> Result<Applied, ControlError> {
        self.apply_version(
            text,
            actor,
            message,
            expected_version,
            "config.applied",
            None,
        )
        .await
    }

    /// Reads the config file again and applies it (SIGHUP, `ficus reload`).
    pub async fn reload_file(&self, actor: &str) -> Result<Applied, ControlError> {
        let text = read(&self.file)?;
        if sha256_hex(&text) == self.snapshot().sha256 {
            return Ok(Applied {
                version: self.snapshot().version,
                events: vec![],
                changes: vec![],
            });
        }
        let message = format!("{} reloaded", self.file.display());
        self.apply_version(&text, actor, &message, None, "config.applied", None)
            .await
    }

    /// Applies the text of an older version as the next version; runtime overrides are
    /// cleared, so what runs is exactly that version.
    pub async fn revert(
        &self,
        version: i64,
        actor: &str,
        message: &str,
        expected_version: Option<i64>,
    ) -> Result<Applied, ControlError> {
        let old = self.store.version(version).await?.ok_or_else(|| {
            ControlError::NotFound(format!(
                "there is no config version {version}; `ficus history` lists them"
            ))
        })?;
        self.apply_version(
            &old.text,
            actor,
            message,
            expected_version,
            "config.reverted",
            Some(version),
        )
        .await
    }

    async fn apply_version(
        &self,
        text: &str,
        actor: &str,
        message: &str,
        expected_version: Option<i64>,
        kind: &str,
        reverted_to: Option<i64>,
    ) -> Result<Applied, ControlError> {
        let _one_at_a_time = self.changes.lock().await;
        let snap = self.snapshot();
        check_expected(expected_version, snap.version)?;
        let new = parse(text, &self.file)?;
        let kept = if reverted_to.is_some() {
            Vec::new()
        } else {
            fitting(&new, surviving_overrides(&snap.base, &new, &snap.overrides))
        };
        let dropped = dropped_routes(&snap.overrides, &kept);
        let effective =
            with_overrides(&new, &kept).map_err(|e| ControlError::BadRequest(e.to_string()))?;
        let changes = plan(&snap.effective, &effective);
        let table = self.gateway.prepare(effective.clone())?;
        webhook::check(&effective.webhooks).map_err(ControlError::BadRequest)?;
        let committed = self
            .store
            .commit(Change {
                expected_version: snap.version,
                new_version: Some(NewVersion {
                    text: text.to_string(),
                    author: actor.to_string(),
                    message: message.to_string(),
                }),
                overrides: if reverted_to.is_some() {
                    OverrideChange::ClearAll
                } else {
                    clear(&dropped)
                },
                events: vec![NewEvent::new(actor, kind, message)
                    .with_version(VersionRef::New)
                    .with_data(serde_json::json!({
                        "changes": changes,
                        "overrides_dropped": dropped,
                        "reverted_to": reverted_to,
                    }))],
            })
            .await?;
        self.gateway.swap(table);
        self.publish(Snapshot {
            version: committed.latest_version,
            sha256: sha256_hex(text),
            text: Arc::from(text),
            base: Arc::new(new),
            overrides: kept,
            effective: Arc::new(effective),
        });
        tracing::info!(actor, kind, version = ?committed.latest_version, "{message}");
        self.announce(&committed.events);
        Ok(Applied {
            version: committed.latest_version,
            events: committed.events,
            changes,
        })
    }

    /// Sets a route's stage and/or weight at runtime (an override of the file).
    pub async fn set_route(
        &self,
        route: &str,
        stage: Option<Stage>,
        weight: Option<Weight>,
        actor: &str,
        message: &str,
    ) -> Result<Applied, ControlError> {
        if stage.is_none() && weight.is_none() {
            return Err(ControlError::BadRequest(
                "give a stage, a weight, or both".into(),
            ));
        }
        let o = Override {
            route: route.to_string(),
            stage,
            weight,
        };
        self.override_routes(vec![o], actor, "route.set", message, None)
            .await
    }

    /// A route change with its own event kind and evidence merged into the event's data (the
    /// rollout controller's steps, promotions and rollbacks): one transaction, like every
    /// change.
    #[allow(clippy::too_many_arguments)]
    pub async fn change_route(
        &self,
        route: &str,
        stage: Option<Stage>,
        weight: Option<Weight>,
        actor: &str,
        kind: &str,
        message: &str,
        evidence: serde_json::Value,
    ) -> Result<Applied, ControlError> {
        let o = Override {
            route: route.to_string(),
            stage,
            weight,
        };
        self.override_routes(vec![o], actor, kind, message, Some(evidence))
            .await
    }

    /// Sends a route (or, with `None`, every route that uses modern) back to legacy:
    /// stage `legacy`, weight 0, effective for the very next request.
    pub async fn rollback(
        &self,
        route: Option<&str>,
        actor: &str,
        message: &str,
    ) -> Result<Applied, ControlError> {
        let snap = self.snapshot();
        let routes: Vec<String> = match route {
            Some(r) => vec![r.to_string()],
            None => snap
                .effective
                .all_routes()
                .filter(|r| r.stage != Stage::Legacy || r.weight != Weight::ZERO)
                .map(|r| r.name.clone())
                .collect(),
        };
        if routes.is_empty() {
            return Ok(Applied {
                version: snap.version,
                events: vec![],
                changes: vec![],
            });
        }
        let overrides = routes
            .into_iter()
            .map(|route| Override {
                route,
                stage: Some(Stage::Legacy),
                weight: Some(Weight::ZERO),
            })
            .collect();
        self.override_routes(overrides, actor, "route.rollback", message, None)
            .await
    }

    async fn override_routes(
        &self,
        set: Vec<Override>,
        actor: &str,
        kind: &str,
        message: &str,
        evidence: Option<serde_json::Value>,
    ) -> Result<Applied, ControlError> {
        let _one_at_a_time = self.changes.lock().await;
        let snap = self.snapshot();
        let mut overrides = snap.overrides.clone();
        for o in &set {
            match overrides.iter_mut().find(|x| x.route == o.route) {
                Some(x) => {
                    x.stage = o.stage.or(x.stage);
                    x.weight = o.weight.or(x.weight);
                }
                None => overrides.push(o.clone()),
            }
        }
        let effective = with_overrides(&snap.base, &overrides)
            .map_err(|e| ControlError::BadRequest(e.to_string()))?;
        let changes = plan(&snap.effective, &effective);
        let table = self.gateway.prepare(effective.clone())?;
        let events = set
            .iter()
            .map(|o| {
                let before = snap.effective.all_routes().find(|r| r.name == o.route);
                let after = effective.all_routes().find(|r| r.name == o.route);
                let mut data = serde_json::json!({
                    "stage": {"from": before.map(|r| r.stage), "to": after.map(|r| r.stage)},
                    "weight": {"from": before.map(|r| r.weight), "to": after.map(|r| r.weight)},
                    "file": snap.base.all_routes().find(|r| r.name == o.route)
                        .map(|r| serde_json::json!({"stage": r.stage, "weight": r.weight})),
                });
                if let (Some(serde_json::Value::Object(extra)), Some(d)) =
                    (evidence.clone(), data.as_object_mut())
                {
                    d.extend(extra);
                }
                NewEvent::new(actor, kind, message)
                    .with_route(o.route.clone())
                    .with_data(data)
            })
            .collect();
        let committed = self
            .store
            .commit(Change {
                expected_version: snap.version,
                new_version: None,
                overrides: OverrideChange::Set(
                    set.iter()
                        .map(|o| OverrideSet {
                            route: o.route.clone(),
                            stage: o.stage.map(|s| s.as_str().to_string()),
                            weight_bp: o.weight.map(|w| i32::from(w.basis_points())),
                        })
                        .collect(),
                ),
                events,
            })
            .await?;
        self.gateway.swap(table);
        self.publish(Snapshot {
            version: snap.version,
            sha256: snap.sha256.clone(),
            text: snap.text.clone(),
            base: snap.base.clone(),
            overrides,
            effective: Arc::new(effective),
        });
        for c in &changes {
            tracing::info!(actor, kind, "{}", c.describe());
        }
        self.announce(&committed.events);
        Ok(Applied {
            version: committed.latest_version,
            events: committed.events,
            changes,
        })
    }

    fn publish(&self, snap: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snap);
    }
}

fn check_expected(expected: Option<i64>, current: Option<i64>) -> Result<(), ControlError> {
    match expected {
        Some(e) if Some(e) != current => Err(ControlError::Conflict(format!(
            "the change was based on version {e}, but the running version is {}; look at `ficus history`, then apply again",
            current.map_or("(none)".to_string(), |c| c.to_string())
        ))),
        _ => Ok(()),
    }
}

fn read(file: &Path) -> Result<String, ControlError> {
    std::fs::read_to_string(file)
        .map_err(|e| ControlError::Io(format!("cannot read config file {}: {e}", file.display())))
}

fn parse(text: &str, file: &Path) -> Result<Config, ControlError> {
    let base = file.parent().unwrap_or_else(|| Path::new("."));
    ficus_config::parse_str(text, &file.display().to_string(), base).map_err(ControlError::Invalid)
}

/// Keeps the overrides that fit a config (their route exists and can take the stage).
fn fitting(cfg: &Config, overrides: Vec<Override>) -> Vec<Override> {
    overrides
        .into_iter()
        .filter(|o| with_overrides(cfg, std::slice::from_ref(o)).is_ok())
        .collect()
}

fn dropped_routes(before: &[Override], after: &[Override]) -> Vec<String> {
    before
        .iter()
        .filter(|o| !after.iter().any(|a| a.route == o.route))
        .map(|o| o.route.clone())
        .collect()
}

fn clear(routes: &[String]) -> OverrideChange {
    if routes.is_empty() {
        OverrideChange::Keep
    } else {
        OverrideChange::ClearRoutes(routes.to_vec())
    }
}

fn to_override(o: &ficus_store::RouteOverride) -> Option<Override> {
    Some(Override {
        route: o.route.clone(),
        stage: match &o.stage {
            Some(s) => Some(Stage::parse(s)?),
            None => None,
        },
        weight: match o.weight_bp {
            Some(bp) => Some(Weight::from_basis_points(u16::try_from(bp).ok()?)?),
            None => None,
        },
    })
}

/// Lower-case hex SHA-256, as the store computes it for a version.
pub fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(text.as_bytes()))
}
