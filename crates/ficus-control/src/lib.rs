//! ficus control plane: the one `apply` through which every routing change goes (a file
//! reload, the admin API, the CLI, the rollout controller), recorded in the store as a
//! config version and/or an event before it goes live (DESIGN.md invariant 3).
//!
//! What runs is the latest stored version of the fleet-wide config (the desired state) with
//! the runtime overrides (stage or weight set by the API, the CLI or a rollback) laid over
//! it, and this node's own node-local settings (listeners, admin, store, logs). Each change
//! is validated, compiled into a route table, committed to the store in one transaction,
//! and only then swapped in: nothing acknowledged is lost, and nothing runs that is not
//! recorded. The store is the source of truth: every node follows its revision
//! ([`ControlPlane::sync`], driven by [`fleet`]), so a change made through any node runs on
//! all of them, and a change is always made against the store's latest state.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod events;
pub mod flags;
pub mod fleet;
pub mod metrics;
pub mod migration;
pub mod record;
pub mod rollout;
pub mod shadow;
pub mod slo;
pub mod verify;
pub mod webhook;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use ficus_config::plan::{
    plan, surviving_flag_overrides, surviving_overrides, with_flag_overrides, with_overrides,
    FlagOverride, Override, RouteChange,
};
use ficus_config::{Config, Diagnostics, Stage, Weight};
use ficus_proxy::{Gateway, GatewayError};
use ficus_store::{
    Change, Event, EventFilter, Fence, FlagOverrideChange, FlagOverrideRow, NewEvent, NewVersion,
    NodeRegistration, OverrideChange, OverrideSet, RouteOverride, Store, StoreError, VersionRef,
};
use serde::Serialize;
use tokio::sync::watch;

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
    /// Optimistic concurrency: the change was based on another version than the latest
    /// (or a stale leader's controller acted after another node took over).
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
            StoreError::Conflict { .. } | StoreError::Fenced(_) => {
                ControlError::Conflict(e.to_string())
            }
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

/// What runs: the fleet's latest version, the overrides, and the two laid together (with
/// this node's node-local settings).
#[derive(Debug)]
pub struct Snapshot {
    /// The latest stored config version (`None` only before the first commit).
    pub version: Option<i64>,
    /// SHA-256 of the fleet-wide part of `text` ([`fleet_sha`]).
    pub sha256: String,
    /// The version's text as stored.
    pub text: Arc<str>,
    /// The fleet's desired state (that version, parsed, with this node's local settings).
    pub base: Arc<Config>,
    pub overrides: Vec<Override>,
    /// The flags' runtime overrides (`ficus flag set`).
    pub flag_overrides: Vec<FlagOverride>,
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

impl Applied {
    fn nothing(version: Option<i64>) -> Applied {
        Applied {
            version,
            events: vec![],
            changes: vec![],
        }
    }
}

/// How a node boots.
#[derive(Debug, Clone, Default)]
pub struct BootOptions {
    /// Store the file as the fleet's next version when its fleet-wide part differs from
    /// the store's latest (`ficus run --apply-file`; SIGHUP then applies it too). A SQLite
    /// store has one node, whose file always wins; on PostgreSQL the store's version wins
    /// unless this is set.
    pub apply_file: bool,
}

/// This process as a node of the fleet.
#[derive(Debug, Clone, Serialize)]
pub struct NodeIdentity {
    /// Unique per process: `NAME-XXXXXXXX`.
    pub id: String,
    pub name: String,
    pub host: String,
    /// Its registration number (unique for ever); its shadow sample ids carry it.
    pub seq: i64,
    pub admin_url: Option<String>,
}

/// Where this node is in following the store.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncInfo {
    /// The store revision last applied, when it was written (unix ms, the writer's clock)
    /// and when it was applied here.
    pub revision: i64,
    pub revision_at: i64,
    pub applied_at: i64,
    /// From the commit of the revision to its applying here, when this node caught up with
    /// it from the store (0 for what it found at start).
    pub apply_lag_ms: i64,
    /// The last event id looked at (other nodes' events are acted on: cache purges,
    /// shadow resets, rollout commands).
    pub last_event_id: i64,
    /// Why the latest version cannot run here, if it cannot.
    pub error: Option<String>,
    #[serde(skip)]
    raw_overrides: RawOverrides,
}

/// The overrides as stored (what `sync` compares to tell whether they changed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RawOverrides {
    routes: Vec<(String, Option<String>, Option<i32>)>,
    flags: Vec<(String, Option<String>, Option<bool>)>,
}

fn raw_overrides(routes: &[RouteOverride], flags: &[FlagOverrideRow]) -> RawOverrides {
    RawOverrides {
        routes: routes
            .iter()
            .map(|o| (o.route.clone(), o.stage.clone(), o.weight_bp))
            .collect(),
        flags: flags
            .iter()
            .map(|o| (o.flag.clone(), o.variant.clone(), o.enabled))
            .collect(),
    }
}

/// A config with the route and flag overrides laid over it: what runs.
fn lay(base: &Config, routes: &[Override], flags: &[FlagOverride]) -> Result<Config, ControlError> {
    with_overrides(base, routes)
        .and_then(|c| with_flag_overrides(c, flags))
        .map_err(|e| ControlError::BadRequest(e.to_string()))
}

/// Who runs the controllers (rollouts, verify jobs, webhook delivery, retention).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Leadership {
    /// No fleet runtime: this process acts alone, unfenced (tests, tools).
    Solo,
    /// This node holds the lease under this fence.
    Leader(Fence),
    /// Another node leads (or nobody yet).
    Follower,
}

impl Leadership {
    /// Whether this node runs the controllers now.
    pub fn leads(&self) -> bool {
        !matches!(self, Leadership::Follower)
    }

    /// The fence its leader-only writes carry (`None` when solo).
    pub fn fence(&self) -> Option<&Fence> {
        match self {
            Leadership::Leader(f) => Some(f),
            _ => None,
        }
    }
}

/// The control plane's state after reconciling the file with the store, before the gateway
/// starts: start the gateway with [`Boot::effective`], then hand both to
/// [`ControlPlane::new`].
pub struct Boot {
    store: Store,
    file: PathBuf,
    local: Arc<Config>,
    snapshot: Snapshot,
    node: NodeIdentity,
    options: BootOptions,
    synced: SyncInfo,
    /// Set when the file's fleet-wide part differs from what the fleet runs.
    pub drift: Option<String>,
    /// Events recorded while booting (a changed file applied).
    pub events: Vec<Event>,
}

impl Boot {
    pub fn effective(&self) -> &Config {
        &self.snapshot.effective
    }

    pub fn node(&self) -> &NodeIdentity {
        &self.node
    }
}

/// The control plane.
pub struct ControlPlane {
    gateway: Arc<Gateway>,
    store: Store,
    file: PathBuf,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Serializes changes and syncs within this process; the store's version check
    /// serializes them across processes.
    changes: tokio::sync::Mutex<()>,
    /// Serializes shadow flushes and resets (see [`shadow`]).
    shadow: tokio::sync::Mutex<shadow::FlushState>,
    /// Delivers the recorded events to the `[[webhook]]` receivers (from the leader).
    hooks: webhook::Webhooks,
    /// This node's own file as it started (its node-local settings).
    local: Arc<Config>,
    node: NodeIdentity,
    options: BootOptions,
    /// A SQLite store: one node, whose file is the source of truth.
    single: bool,
    synced: Mutex<SyncInfo>,
    drift: RwLock<Option<String>>,
    leadership: watch::Sender<Leadership>,
    /// Routes whose rollout another node changed (a command): the leader re-reads them.
    stale_rollouts: Mutex<HashSet<String>>,
    /// Rollbacks this node committed, for `/metrics`.
    rollbacks: metrics::Rollbacks,
    /// The SLO controller's latest evaluations (while this node leads).
    slo_board: slo::Board,
    flag_evaluations: flags::Evaluations,
    /// Bumped each time a new snapshot runs (what OFREP's event streams wait on).
    published: watch::Sender<u64>,
    /// The migration controller's requests to the verify scheduler.
    verify_requests: verify::Requests,
}

/// Tries of a change that meets a concurrent change of another node (a version applied
/// between this node's catching up and its commit) before it gives up with a conflict.
const CHANGE_TRIES: usize = 3;

impl ControlPlane {
    /// Reads the config file and reconciles it with the store; see [`ControlPlane::boot_with`].
    pub async fn boot(file: &Path, store: Store) -> Result<Boot, ControlError> {
        ControlPlane::boot_with(file, store, BootOptions::default()).await
    }

    /// Reads the config file, registers this process as a node and reconciles the file with
    /// the store. The store is the source of truth: when the file's fleet-wide part differs
    /// from the latest stored version, the node runs the stored version and reports the
    /// drift, unless the store is SQLite (one node) or `apply_file` is set, in which case
    /// the file is stored as the next version (an event by `startup`), dropping the
    /// overrides of routes whose stage or weight it changed. The first node of an empty
    /// store stores its file as version 1. Overrides that no longer fit (a removed route)
    /// are dropped from what runs.
    pub async fn boot_with(
        file: &Path,
        store: Store,
        options: BootOptions,
    ) -> Result<Boot, ControlError> {
        let text = read(file)?;
        let local = Arc::new(parse_file(&text, file)?);
        let mine = ficus_config::fleet_text(&text).map_err(ControlError::BadRequest)?;
        let node = register(&store, &local).await?;
        let single = store.kind() == "sqlite";
        let mut events = Vec::new();
        let mut drift = None;
        let mut tries = 0;
        let (synced, version, stored_text, overrides, flag_overrides) = loop {
            tries += 1;
            let state = store.sync_state().await?;
            let latest = store.current_version().await?;
            let stored = store.overrides().await?;
            let stored_flags = store.flag_overrides().await?;
            let overrides: Vec<Override> = stored.iter().filter_map(to_override).collect();
            let flag_overrides: Vec<FlagOverride> =
                stored_flags.iter().map(flags::to_flag_override).collect();
            let synced = SyncInfo {
                revision: state.revision,
                revision_at: state.revision_at,
                applied_at: unix_ms(),
                apply_lag_ms: 0,
                last_event_id: state.last_event_id,
                error: None,
                raw_overrides: raw_overrides(&stored, &stored_flags),
            };
            let same = latest
                .as_ref()
                .is_some_and(|v| fleet_sha(&v.text) == sha256_hex(&mine));
            if let Some(v) = latest
                .as_ref()
                .filter(|_| same || !(single || options.apply_file))
            {
                if !same {
                    drift = Some(format!(
                        "{} differs from the fleet's version {} (the store is the source of \
                         truth: this node runs version {}); review it with `ficus plan -c {}`, \
                         roll it out with `ficus apply`, or start with `ficus run --apply-file`",
                        file.display(),
                        v.number,
                        v.number,
                        file.display()
                    ));
                }
                break (
                    synced,
                    Some(v.number),
                    v.text.clone(),
                    overrides,
                    flag_overrides,
                );
            }
            // Store the file: the first version, or a changed file on a single node (or
            // with --apply-file).
            let old = latest
                .as_ref()
                .and_then(|v| parse_fleet(&v.text, "the stored version", file, &local).ok());
            let new = parse_fleet(&mine, &file.display().to_string(), file, &local)?;
            // Refused before anything is stored.
            webhook::check(&new.webhooks).map_err(ControlError::BadRequest)?;
            let kept = match &old {
                Some(old) => fitting(&new, surviving_overrides(old, &new, &overrides)),
                None => fitting(&new, overrides.clone()),
            };
            let kept_flags = match &old {
                Some(old) => {
                    flags::fitting(&new, surviving_flag_overrides(old, &new, &flag_overrides))
                }
                None => flags::fitting(&new, flag_overrides.clone()),
            };
            let changes = old.as_ref().map(|o| plan(o, &new)).unwrap_or_default();
            let dropped = dropped_routes(&overrides, &kept);
            let dropped_flags = flags::dropped(&flag_overrides, &kept_flags);
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
                        text: mine.clone(),
                        author: "startup".into(),
                        message: message.clone(),
                    }),
                    overrides: clear(&dropped),
                    flag_overrides: flags::clear(&dropped_flags),
                    events: vec![NewEvent::new("startup", "config.applied", message)
                        .with_version(VersionRef::New)
                        .with_data(serde_json::json!({
                            "file": file.display().to_string(),
                            "changes": changes,
                            "overrides_dropped": dropped,
                            "flag_overrides_dropped": dropped_flags,
                        }))],
                })
                .await;
            match committed {
                Ok(c) => {
                    events = c.events;
                    // Read back what is stored now (the revision this commit made).
                    continue;
                }
                // Another node stored a version at the same moment: look again.
                Err(StoreError::Conflict { .. }) if tries < CHANGE_TRIES => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let base = parse_fleet(
            &stored_text,
            &format!("config version {}", version.unwrap_or(0)),
            file,
            &local,
        )?;
        let kept = fitting(&base, overrides);
        let kept_flags = flags::fitting(&base, flag_overrides);
        let effective = lay(&base, &kept, &kept_flags)?;
        webhook::check(&effective.webhooks).map_err(ControlError::BadRequest)?;
        Ok(Boot {
            store,
            file: file.to_path_buf(),
            local,
            snapshot: Snapshot {
                version,
                sha256: fleet_sha(&stored_text),
                text: Arc::from(stored_text.as_str()),
                base: Arc::new(base),
                overrides: kept,
                flag_overrides: kept_flags,
                effective: Arc::new(effective),
            },
            node,
            options,
            synced,
            drift,
            events,
        })
    }

    /// The control plane over a booted state and its gateway. The events the boot recorded
    /// reach the webhooks once [`ControlPlane::start_webhooks`] runs (from the store).
    pub fn new(boot: Boot, gateway: Arc<Gateway>) -> Arc<ControlPlane> {
        let hooks = webhook::Webhooks::new();
        gateway.telemetry().set_extra("webhooks", hooks.metrics());
        gateway
            .mirror()
            .aggregator()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_node_slot(boot.node.seq);
        let single = boot.store.kind() == "sqlite";
        let control = Arc::new(ControlPlane {
            gateway,
            store: boot.store,
            file: boot.file,
            snapshot: RwLock::new(Arc::new(boot.snapshot)),
            changes: tokio::sync::Mutex::new(()),
            shadow: tokio::sync::Mutex::new(shadow::FlushState::default()),
            hooks,
            local: boot.local,
            node: boot.node,
            options: boot.options,
            single,
            synced: Mutex::new(boot.synced),
            drift: RwLock::new(boot.drift),
            leadership: watch::channel(Leadership::Solo).0,
            stale_rollouts: Mutex::new(HashSet::new()),
            rollbacks: metrics::Rollbacks::default(),
            slo_board: slo::Board::default(),
            flag_evaluations: flags::Evaluations::default(),
            published: watch::channel(0).0,
            verify_requests: verify::Requests::default(),
        });
        metrics::register(&control);
        control
    }

    /// Starts delivering recorded events to the webhooks on the current runtime (once; later
    /// calls do nothing). Only the leader delivers, from the store, so each event reaches a
    /// receiver once per fleet.
    pub fn start_webhooks(self: &Arc<Self>) {
        self.hooks.start(Arc::downgrade(self));
    }

    /// The webhooks' lanes and their counts.
    pub fn webhooks(&self) -> &webhook::Webhooks {
        &self.hooks
    }

    /// What the migration controller asks of the verify scheduler.
    pub fn verify_requests(&self) -> &verify::Requests {
        &self.verify_requests
    }

    /// Appends events to the audit log (and wakes the webhook delivery).
    pub async fn record_events(&self, events: Vec<NewEvent>) -> Result<Vec<Event>, StoreError> {
        let recorded = self.store.append_events(events).await?;
        self.announce(&recorded);
        Ok(recorded)
    }

    /// [`record_events`](Self::record_events) for the leader's controllers: refused once
    /// another node has taken the lead.
    pub async fn record_events_as_leader(
        &self,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Event>, StoreError> {
        let recorded = match self.leadership().fence() {
            Some(fence) => self.store.append_events_fenced(events, fence).await?,
            None => self.store.append_events(events).await?,
        };
        self.announce(&recorded);
        Ok(recorded)
    }

    /// Tells the webhook delivery that the store holds new events.
    fn announce(&self, events: &[Event]) {
        if !events.is_empty() {
            self.hooks.kick();
        }
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

    /// This node's own config as it started (for its node-local settings).
    pub fn local(&self) -> &Arc<Config> {
        &self.local
    }

    /// This process as a node of the fleet.
    pub fn node(&self) -> &NodeIdentity {
        &self.node
    }

    /// Whether the store is SQLite: one node, whose file is the source of truth.
    pub fn single_node(&self) -> bool {
        self.single
    }

    /// Where this node is in following the store.
    pub fn synced(&self) -> SyncInfo {
        self.synced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The SLO controller's latest evaluations (empty unless this node leads).
    pub fn slo_board(&self) -> &slo::Board {
        &self.slo_board
    }

    /// Who runs the controllers, as this node sees it now.
    pub fn leadership(&self) -> Leadership {
        self.leadership.borrow().clone()
    }

    /// Follows changes of leadership.
    pub fn watch_leadership(&self) -> watch::Receiver<Leadership> {
        self.leadership.subscribe()
    }

    /// Sets the leadership (the fleet runtime does, from the lease).
    pub fn set_leadership(&self, l: Leadership) {
        self.leadership.send_if_modified(|cur| {
            if *cur == l {
                return false;
            }
            *cur = l;
            true
        });
    }

    /// Routes whose rollout another node changed since the last call.
    pub fn take_stale_rollouts(&self) -> HashSet<String> {
        std::mem::take(
            &mut *self
                .stale_rollouts
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        )
    }

    /// What runs now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether this node's config file differs from what runs: its fleet-wide part from the
    /// running version (someone edited it and has not applied it; or, in a fleet, the
    /// fleet moved on), or its node-local part from what the node started with (a restart
    /// applies it). `Some(message)` when it does.
    pub fn file_drift(&self) -> Option<String> {
        let snap = self.snapshot();
        let version = snap.version.map_or("(none)".to_string(), |v| v.to_string());
        let text = match std::fs::read_to_string(&self.file) {
            Ok(text) => text,
            Err(e) => return Some(format!("cannot read {}: {e}", self.file.display())),
        };
        if fleet_sha(&text) != snap.sha256 {
            return Some(if self.single {
                format!(
                    "{} differs from the running version {version}: review it with `ficus plan`, then `ficus apply`",
                    self.file.display()
                )
            } else {
                format!(
                    "{} differs from the fleet's running version {version} (every node runs \
                     the store's version): review it with `ficus plan -c {}`, then `ficus apply`",
                    self.file.display(),
                    self.file.display()
                )
            });
        }
        match parse_file(&text, &self.file) {
            Ok(now) if now.clone().with_node_local(&self.local) != now => Some(format!(
                "node-local settings in {} changed since this node started: restart it to \
                 apply them",
                self.file.display()
            )),
            _ => None,
        }
    }

    /// A stored version's text (or a file's fleet-wide part) as this node would run it,
    /// with its own node-local settings.
    pub fn parse_version(&self, text: &str, origin: &str) -> Result<Config, ControlError> {
        parse_fleet(text, origin, &self.file, &self.local)
    }

    /// The route-level changes applying `text` would make to what runs now.
    pub fn plan(&self, text: &str) -> Result<Vec<RouteChange>, ControlError> {
        self.plan_from(text, None)
    }

    /// [`ControlPlane::plan`], with diagnostics naming the text `origin` (the caller's file)
    /// rather than this node's config file.
    pub fn plan_from(
        &self,
        text: &str,
        origin: Option<&str>,
    ) -> Result<Vec<RouteChange>, ControlError> {
        let new = parse_fleet(text, &self.origin(origin), &self.file, &self.local)?;
        let snap = self.snapshot();
        let kept = fitting(&new, surviving_overrides(&snap.base, &new, &snap.overrides));
        let kept_flags = flags::fitting(
            &new,
            surviving_flag_overrides(&snap.base, &new, &snap.flag_overrides),
        );
        let effective = lay(&new, &kept, &kept_flags)?;
        Ok(plan(&snap.effective, &effective))
    }

    /// Applies a config text (its fleet-wide part) as the next version. `expected_version`
    /// guards against applying on top of a change the caller has not seen (409 when it
    /// differs). A text whose fleet-wide part is what runs changes nothing.
    pub async fn apply_text(
        &self,
        text: &str,
        actor: &str,
        message: &str,
        expected_version: Option<i64>,
    ) -> Result<Applied, ControlError> {
        self.apply_text_from(text, None, actor, message, expected_version)
            .await
    }

    /// [`ControlPlane::apply_text`], with diagnostics naming the text `origin` (the
    /// caller's file) rather than this node's config file.
    pub async fn apply_text_from(
        &self,
        text: &str,
        origin: Option<&str>,
        actor: &str,
        message: &str,
        expected_version: Option<i64>,
    ) -> Result<Applied, ControlError> {
        self.apply_version(
            text,
            &self.origin(origin),
            actor,
            message,
            expected_version,
            None,
        )
        .await
    }

    /// What diagnostics call a text: the caller's name for it, else this node's file.
    fn origin(&self, origin: Option<&str>) -> String {
        origin.map_or_else(|| self.file.display().to_string(), str::to_string)
    }

    /// Reads the config file again (SIGHUP, `ficus reload`) and applies it, when this node
    /// may: on a single node, or one started with `--apply-file`. Otherwise the file only
    /// updates the drift report: in a fleet, `ficus apply` rolls a file out.
    pub async fn reload_file(&self, actor: &str) -> Result<Applied, ControlError> {
        let text = read(&self.file)?;
        let now = parse_file(&text, &self.file)?;
        if now.clone().with_node_local(&self.local) != now {
            tracing::warn!(
                file = %self.file.display(),
                "node-local settings (listeners, [admin], store, [access_log], [node], [fleet], \
                 [tracing], [ofrep], gateway limits) changed: they apply at the next restart"
            );
        }
        if fleet_sha(&text) == self.snapshot().sha256 {
            *self.drift.write().unwrap_or_else(|p| p.into_inner()) = None;
            return Ok(Applied::nothing(self.snapshot().version));
        }
        if !(self.single || self.options.apply_file) {
            let msg = self.file_drift().unwrap_or_default();
            *self.drift.write().unwrap_or_else(|p| p.into_inner()) = Some(msg.clone());
            return Err(ControlError::BadRequest(format!(
                "this node shares a PostgreSQL store with the fleet, so reloading its file does \
                 not change what the fleet runs: {msg} (or start the node with --apply-file)"
            )));
        }
        let message = format!("{} reloaded", self.file.display());
        let applied = self
            .apply_version(&text, &self.origin(None), actor, &message, None, None)
            .await?;
        *self.drift.write().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(applied)
    }

    /// Why this node's file differs from what the fleet runs, as found at boot or at the
    /// last reload; `None` when it does not.
    pub fn drift(&self) -> Option<String> {
        self.drift
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .or_else(|| self.file_drift())
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
            &format!("config version {version}"),
            actor,
            message,
            expected_version,
            Some(version),
        )
        .await
    }

    async fn apply_version(
        &self,
        text: &str,
        origin: &str,
        actor: &str,
        message: &str,
        expected_version: Option<i64>,
        reverted_to: Option<i64>,
    ) -> Result<Applied, ControlError> {
        if reverted_to.is_none() && ficus_config::secrets::contains_masked(text) {
            return Err(ControlError::BadRequest(
                "this text has secrets masked as *** (as the admin API shows a config): applying \
                 it would store the mask as the password; apply the reviewed file itself \
                 (ficus apply -c FILE)"
                    .into(),
            ));
        }
        let kind = match reverted_to {
            None => "config.applied",
            Some(_) => "config.reverted",
        };
        let _one_at_a_time = self.changes.lock().await;
        let stored_text = ficus_config::fleet_text(text).map_err(ControlError::BadRequest)?;
        let mut tries = 0;
        loop {
            tries += 1;
            // Against the store's latest state, never this node's possibly older one.
            self.sync_locked().await?;
            let snap = self.snapshot();
            check_expected(expected_version, snap.version)?;
            let new = parse_fleet(text, origin, &self.file, &self.local)?;
            // Normalising can lengthen a text that validation accepted (a final newline, a
            // blank line before each table): the stored text is held to the same limit.
            ficus_config::check_size(&stored_text, &format!("{origin} (as stored)"))
                .map_err(ControlError::Invalid)?;
            if reverted_to.is_none() && sha256_hex(&stored_text) == snap.sha256 {
                return Ok(Applied::nothing(snap.version));
            }
            let (kept, kept_flags) = if reverted_to.is_some() {
                (Vec::new(), Vec::new())
            } else {
                (
                    fitting(&new, surviving_overrides(&snap.base, &new, &snap.overrides)),
                    flags::fitting(
                        &new,
                        surviving_flag_overrides(&snap.base, &new, &snap.flag_overrides),
                    ),
                )
            };
            let dropped = dropped_routes(&snap.overrides, &kept);
            let dropped_flags = flags::dropped(&snap.flag_overrides, &kept_flags);
            let effective = lay(&new, &kept, &kept_flags)?;
            let changes = plan(&snap.effective, &effective);
            let table = self.gateway.prepare(effective.clone())?;
            webhook::check(&effective.webhooks).map_err(ControlError::BadRequest)?;
            let committed = self
                .store
                .commit(Change {
                    expected_version: snap.version,
                    new_version: Some(NewVersion {
                        text: stored_text.clone(),
                        author: actor.to_string(),
                        message: message.to_string(),
                    }),
                    overrides: if reverted_to.is_some() {
                        OverrideChange::ClearAll
                    } else {
                        clear(&dropped)
                    },
                    flag_overrides: if reverted_to.is_some() {
                        FlagOverrideChange::ClearAll
                    } else {
                        flags::clear(&dropped_flags)
                    },
                    events: vec![NewEvent::new(actor, kind, message)
                        .with_version(VersionRef::New)
                        .with_data(serde_json::json!({
                            "changes": changes,
                            "overrides_dropped": dropped,
                            "flag_overrides_dropped": dropped_flags,
                            "reverted_to": reverted_to,
                        }))],
                })
                .await;
            let committed = match committed {
                Ok(c) => c,
                // Another node applied a version between our catching up and our commit.
                Err(StoreError::Conflict { .. })
                    if expected_version.is_none() && tries < CHANGE_TRIES =>
                {
                    continue
                }
                Err(e) => return Err(e.into()),
            };
            self.gateway.swap(table);
            let raw = if reverted_to.is_some() {
                RawOverrides::default()
            } else {
                let mut raw = self.synced().raw_overrides;
                raw.routes.retain(|o| !dropped.contains(&o.0));
                raw.flags.retain(|o| !dropped_flags.contains(&o.0));
                raw
            };
            self.publish(
                Snapshot {
                    version: committed.latest_version,
                    sha256: sha256_hex(&stored_text),
                    text: Arc::from(stored_text.as_str()),
                    base: Arc::new(new),
                    overrides: kept,
                    flag_overrides: kept_flags,
                    effective: Arc::new(effective),
                },
                raw,
            );
            tracing::info!(actor, kind, version = ?committed.latest_version, "{message}");
            self.announce(&committed.events);
            self.caught_up_after_own_change().await;
            return Ok(Applied {
                version: committed.latest_version,
                events: committed.events,
                changes,
            });
        }
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
        self.override_routes(vec![o], actor, "route.set", message, None, false)
            .await
    }

    /// A route change with its own event kind and evidence merged into the event's data (the
    /// rollout controller's steps, promotions and rollbacks): one transaction, like every
    /// change. With `as_leader`, the change is refused once another node leads.
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
        as_leader: bool,
    ) -> Result<Applied, ControlError> {
        let o = Override {
            route: route.to_string(),
            stage,
            weight,
        };
        self.override_routes(vec![o], actor, kind, message, Some(evidence), as_leader)
            .await
    }

    /// Sends a route (or, with `None`, every route that uses modern) back to legacy:
    /// stage `legacy`, weight 0, effective for the very next request on every node.
    pub async fn rollback(
        &self,
        route: Option<&str>,
        actor: &str,
        message: &str,
    ) -> Result<Applied, ControlError> {
        // Which routes use modern: as the store has them now.
        self.sync().await?;
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
            return Ok(Applied::nothing(snap.version));
        }
        let overrides = routes
            .into_iter()
            .map(|route| Override {
                route,
                stage: Some(Stage::Legacy),
                weight: Some(Weight::ZERO),
            })
            .collect();
        self.override_routes(overrides, actor, "route.rollback", message, None, false)
            .await
    }

    async fn override_routes(
        &self,
        set: Vec<Override>,
        actor: &str,
        kind: &str,
        message: &str,
        evidence: Option<serde_json::Value>,
        as_leader: bool,
    ) -> Result<Applied, ControlError> {
        let _one_at_a_time = self.changes.lock().await;
        let fence = if as_leader {
            match self.leadership() {
                Leadership::Follower => {
                    return Err(ControlError::Conflict(format!(
                        "node {} no longer leads the fleet; the leader's controllers carry on",
                        self.node.id
                    )))
                }
                l => l.fence().cloned(),
            }
        } else {
            None
        };
        let mut tries = 0;
        loop {
            tries += 1;
            // A runtime change is taken against the store's latest state: it is never
            // refused because this node had not caught up yet.
            self.sync_locked().await?;
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
            let effective = lay(&snap.base, &overrides, &snap.flag_overrides)?;
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
            let sets: Vec<OverrideSet> = set
                .iter()
                .map(|o| OverrideSet {
                    route: o.route.clone(),
                    stage: o.stage.map(|s| s.as_str().to_string()),
                    weight_bp: o.weight.map(|w| i32::from(w.basis_points())),
                })
                .collect();
            let change = Change {
                expected_version: snap.version,
                new_version: None,
                overrides: OverrideChange::Set(sets.clone()),
                flag_overrides: FlagOverrideChange::Keep,
                events,
            };
            let committed = match &fence {
                Some(f) => self.store.commit_fenced(change, f).await,
                None => self.store.commit(change).await,
            };
            let committed = match committed {
                Ok(c) => c,
                // Another node applied a version between our catching up and our commit.
                Err(StoreError::Conflict { .. }) if tries < CHANGE_TRIES => continue,
                Err(e) => return Err(e.into()),
            };
            self.gateway.swap(table);
            if let Some(by) = metrics::rollback_by(kind) {
                for o in &set {
                    self.rollbacks.count(&o.route, by);
                }
            }
            let mut raw = self.synced().raw_overrides;
            for s in sets {
                match raw.routes.iter_mut().find(|r| r.0 == s.route) {
                    Some(r) => {
                        r.1 = s.stage.or(r.1.take());
                        r.2 = s.weight_bp.or(r.2);
                    }
                    None => raw.routes.push((s.route, s.stage, s.weight_bp)),
                }
            }
            raw.routes.sort();
            self.publish(
                Snapshot {
                    version: snap.version,
                    sha256: snap.sha256.clone(),
                    text: snap.text.clone(),
                    base: snap.base.clone(),
                    overrides,
                    flag_overrides: snap.flag_overrides.clone(),
                    effective: Arc::new(effective),
                },
                raw,
            );
            for c in &changes {
                tracing::info!(actor, kind, "{}", c.describe());
            }
            self.announce(&committed.events);
            self.caught_up_after_own_change().await;
            return Ok(Applied {
                version: committed.latest_version,
                events: committed.events,
                changes,
            });
        }
    }

    /// Brings this node up to the store's latest state: a newer version or other
    /// overrides are compiled and swapped in through the same path as every change, and
    /// what other nodes recorded (cache purges, shadow resets, rollout commands) is acted
    /// on. Returns whether what runs changed. The fleet runtime calls it when the revision
    /// moves (NOTIFY) and every `poll_interval`; every change calls it first.
    pub async fn sync(&self) -> Result<bool, ControlError> {
        let _one_at_a_time = self.changes.lock().await;
        self.sync_locked().await
    }

    async fn sync_locked(&self) -> Result<bool, ControlError> {
        let state = self.store.sync_state().await?;
        let info = self.synced();
        let snap = self.snapshot();
        let raw = raw_overrides(&state.overrides, &state.flag_overrides);
        let mut changed = false;
        let mut error = None;
        if state.latest_version != snap.version || raw != info.raw_overrides {
            let newer = match state.latest_version {
                Some(n) if Some(n) != snap.version => {
                    let v = self.store.version(n).await?.ok_or_else(|| {
                        ControlError::NotFound(format!("config version {n} vanished"))
                    })?;
                    Some(v)
                }
                _ => None,
            };
            let overrides: Vec<Override> = state.overrides.iter().filter_map(to_override).collect();
            let flag_overrides: Vec<FlagOverride> = state
                .flag_overrides
                .iter()
                .map(flags::to_flag_override)
                .collect();
            let candidate = match &newer {
                Some(v) => parse_fleet(
                    &v.text,
                    &format!("config version {}", v.number),
                    &self.file,
                    &self.local,
                )
                .map(|base| {
                    (
                        Some(v.number),
                        Arc::<str>::from(v.text.as_str()),
                        Arc::new(base),
                    )
                }),
                None => Ok((snap.version, snap.text.clone(), snap.base.clone())),
            };
            let applied = candidate.and_then(|(version, text, base)| {
                let kept = fitting(&base, overrides.clone());
                let kept_flags = flags::fitting(&base, flag_overrides.clone());
                let effective = lay(&base, &kept, &kept_flags)?;
                let table = self.gateway.prepare(effective.clone())?;
                Ok((version, text, base, kept, kept_flags, effective, table))
            });
            match applied {
                Ok((version, text, base, kept, kept_flags, effective, table)) => {
                    let changes = plan(&snap.effective, &effective);
                    self.gateway.swap(table);
                    self.publish(
                        Snapshot {
                            version,
                            sha256: fleet_sha(&text),
                            text,
                            base,
                            overrides: kept,
                            flag_overrides: kept_flags,
                            effective: Arc::new(effective),
                        },
                        raw.clone(),
                    );
                    for c in &changes {
                        tracing::info!(
                            revision = state.revision,
                            "from the store: {}",
                            c.describe()
                        );
                    }
                    changed = true;
                }
                Err(e) => {
                    // The version cannot run here (a [shadow] change needs a restart, a CA
                    // file missing on this machine): keep serving, but lay the new overrides
                    // (a rollback!) over the base that runs.
                    let msg = format!(
                        "config version {} cannot run on this node: {e}",
                        state.latest_version.unwrap_or(0)
                    );
                    if info.error.as_deref() != Some(msg.as_str()) {
                        tracing::error!("{msg}; it keeps serving version {:?}", snap.version);
                    }
                    let kept = fitting(&snap.base, overrides);
                    let kept_flags = flags::fitting(&snap.base, flag_overrides);
                    if let Ok(effective) = lay(&snap.base, &kept, &kept_flags) {
                        if let Ok(table) = self.gateway.prepare(effective.clone()) {
                            self.gateway.swap(table);
                            self.publish(
                                Snapshot {
                                    version: snap.version,
                                    sha256: snap.sha256.clone(),
                                    text: snap.text.clone(),
                                    base: snap.base.clone(),
                                    overrides: kept,
                                    flag_overrides: kept_flags,
                                    effective: Arc::new(effective),
                                },
                                raw.clone(),
                            );
                            changed = true;
                        }
                    }
                    error = Some(msg);
                }
            }
        }
        // What the other nodes recorded since we last looked.
        let mut after = info.last_event_id;
        loop {
            let page = self
                .store
                .events(EventFilter {
                    after_id: Some(after),
                    limit: ficus_store::limits::MAX_PAGE,
                    ..EventFilter::default()
                })
                .await?;
            for e in &page {
                if e.node.as_deref() != Some(self.node.id.as_str()) {
                    self.on_foreign_event(e).await;
                }
                after = after.max(e.id);
            }
            if page.len() < ficus_store::limits::MAX_PAGE as usize {
                break;
            }
        }
        let mut synced = self.synced.lock().unwrap_or_else(|p| p.into_inner());
        if state.revision > synced.revision || changed {
            synced.applied_at = unix_ms();
            synced.apply_lag_ms = (synced.applied_at - state.revision_at).max(0);
        }
        synced.revision = synced.revision.max(state.revision);
        synced.revision_at = state.revision_at;
        synced.last_event_id = synced.last_event_id.max(after);
        synced.error = error;
        if changed {
            synced.raw_overrides = raw;
        }
        Ok(changed)
    }

    /// After this node's own commit: its revision (and what runs) is the store's now, unless
    /// another node changed something in between, which this picks up as well. A failure
    /// here changes nothing: the follow loop catches up later.
    async fn caught_up_after_own_change(&self) {
        if let Err(e) = self.sync_locked().await {
            tracing::debug!(error = %e, "catching up after a change failed; the next poll will");
        }
    }

    /// Acts on an event another node recorded.
    async fn on_foreign_event(&self, e: &Event) {
        let Some(route) = e.route.as_deref() else {
            return;
        };
        match e.kind.as_str() {
            "cache.purged" => {
                let path = e.data.get("path").and_then(|p| p.as_str());
                self.purge_local_cache(route, path).await;
            }
            ficus_store::SHADOW_RESET_KIND => self.forget_shadow(route).await,
            record::RECORD_STARTED | record::RECORD_STOPPED => {
                if let Err(err) = self.apply_record_event(e) {
                    tracing::error!(route, error = %err, "cannot apply another node's recording change");
                }
            }
            k if k.starts_with("rollout.") => {
                self.stale_rollouts
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(route.to_string());
            }
            _ => {}
        }
    }

    fn publish(&self, snap: Snapshot, raw: RawOverrides) {
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snap);
        self.synced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .raw_overrides = raw;
        self.published.send_modify(|n| *n += 1);
    }

    /// Changes each time a new snapshot runs (a change made here or synced from the store):
    /// for tasks that act on what runs at once rather than by polling [`Self::snapshot`].
    pub fn watch_snapshot(&self) -> watch::Receiver<u64> {
        self.published.subscribe()
    }
}

/// Registers this process as a node: its name (`[node] name`, else the host name), a
/// process-unique id, and its admin URL.
async fn register(store: &Store, local: &Config) -> Result<NodeIdentity, ControlError> {
    let host = host_name();
    let name = local.node.name.clone().unwrap_or_else(|| host.clone());
    let id = format!("{name}-{:08x}", random_u32());
    let admin_url = local.node.admin_url.clone().or_else(|| {
        local
            .admin
            .enabled
            .then(|| format!("http://{}", local.admin.bind))
    });
    store.set_node(&id);
    let seq = store
        .register_node(&NodeRegistration {
            id: id.clone(),
            name: name.clone(),
            host: host.clone(),
            pid: i64::from(std::process::id()),
            version: env!("CARGO_PKG_VERSION").to_string(),
            admin_url: admin_url.clone(),
        })
        .await?;
    Ok(NodeIdentity {
        id,
        name,
        host,
        seq,
        admin_url,
    })
}

/// The machine's host name (Linux: the kernel's; else `HOSTNAME`), or `ficus`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| {
            h.trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .take(64)
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "ficus".to_string())
}

/// 32 random bits from the standard library's randomly keyed hasher.
fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish() as u32
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

/// A node's whole config file.
fn parse_file(text: &str, file: &Path) -> Result<Config, ControlError> {
    let base = file.parent().unwrap_or_else(|| Path::new("."));
    ficus_config::parse_str(text, &file.display().to_string(), base).map_err(ControlError::Invalid)
}

/// A fleet-wide text (a stored version, or a file's fleet-wide part) as this node runs it.
fn parse_fleet(
    text: &str,
    origin: &str,
    file: &Path,
    local: &Config,
) -> Result<Config, ControlError> {
    let base = file.parent().unwrap_or_else(|| Path::new("."));
    ficus_config::parse_fleet_str(text, origin, base, local).map_err(ControlError::Invalid)
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

/// SHA-256 of a config text's fleet-wide part: what versions, plans and drift compare, so
/// texts that differ only in node-local settings compare equal.
pub fn fleet_sha(text: &str) -> String {
    match ficus_config::fleet_text(text) {
        Ok(fleet) => sha256_hex(&fleet),
        Err(_) => sha256_hex(text),
    }
}

/// Now in unix milliseconds.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
