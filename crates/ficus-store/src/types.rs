//! The records the store keeps and the change a commit applies, as plain serde types.
//!
//! Times are unix milliseconds (`i64`); weights are basis points (`i32`, 0..=10000, so
//! 12.34 % is 1234), the unit the proxy's split uses.

use serde::{Deserialize, Serialize};

/// One stored version of `ficus.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ConfigVersion {
    /// 1, 2, 3, ... without gaps, assigned by the store.
    pub number: i64,
    /// Lower-case hex SHA-256 of `text`, computed by the store.
    pub sha256: String,
    /// The full file as it was applied.
    pub text: String,
    pub author: String,
    pub message: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// A config version without its text, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ConfigVersionSummary {
    pub number: i64,
    pub sha256: String,
    pub author: String,
    pub message: String,
    pub created_at: i64,
}

/// One entry of the audit log. Events are never updated or deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Event {
    /// Monotonic: a later commit's events have larger ids.
    pub id: i64,
    /// Unix milliseconds; every event of one commit has the same `at`.
    pub at: i64,
    /// Who: `file-reload`, `api:alice`, `cli`, `rollout`, ...
    pub actor: String,
    /// What: `config.applied`, `route.weight_set`, `route.rollback`, ...
    pub kind: String,
    pub route: Option<String>,
    /// Why, in words.
    pub message: String,
    /// The config version the event produced or refers to.
    pub config_version: Option<i64>,
    /// Details and evidence.
    pub data: serde_json::Value,
    /// The id of the node (gateway process) that recorded the event; `None` for events
    /// written before fleet mode or through a store handle that names no node.
    #[serde(default)]
    pub node: Option<String>,
}

/// The runtime stage and/or weight of one route, which wins over the file until the file
/// itself changes that route. `None` fields are not overridden.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct RouteOverride {
    pub route: String,
    pub stage: Option<String>,
    pub weight_bp: Option<i32>,
    /// Unix milliseconds of the commit that last changed this row.
    pub updated_at: i64,
    /// The event of that commit that explains it (see [`OverrideChange::Set`]).
    pub event_id: i64,
}

/// Everything one [`Store::commit`](crate::Store::commit) applies, atomically.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The latest version number the caller based this change on (`None`: no version has
    /// been stored yet). A different latest version fails the whole commit with
    /// [`StoreError::Conflict`](crate::StoreError::Conflict).
    pub expected_version: Option<i64>,
    /// A new config version to store as latest + 1.
    pub new_version: Option<NewVersion>,
    pub overrides: OverrideChange,
    /// What it does to the flags' runtime overrides.
    #[serde(default)]
    pub flag_overrides: FlagOverrideChange,
    /// The audit events of this change. A commit must carry at least one: every change is
    /// an event with an actor and a reason.
    pub events: Vec<NewEvent>,
}

/// A config file to store as the next version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewVersion {
    pub text: String,
    pub author: String,
    pub message: String,
}

/// What a commit does to the runtime overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideChange {
    /// Leave them as they are.
    #[default]
    Keep,
    /// Upsert per route. A `None` field keeps that route's current value, so setting the
    /// weight keeps a stage set earlier and vice versa (clear a route to drop both). Each
    /// row records the id of the commit's first event about that route, or else of the
    /// commit's first event.
    Set(Vec<OverrideSet>),
    /// Drop the overrides of these routes (the file changed them, or an operator reset
    /// them). Routes without an override are ignored.
    ClearRoutes(Vec<String>),
    /// Drop every override (for example when reverting to an older config version).
    ClearAll,
}

/// One route's override in [`OverrideChange::Set`]; at least one of the two is `Some`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideSet {
    pub route: String,
    pub stage: Option<String>,
    pub weight_bp: Option<i32>,
}

/// A flag's runtime variant and/or enabled switch, which wins over the file until the file
/// itself changes that flag. `None` fields are not overridden.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct FlagOverrideRow {
    pub flag: String,
    pub variant: Option<String>,
    pub enabled: Option<bool>,
    /// Unix milliseconds of the commit that last changed this row.
    pub updated_at: i64,
    /// The event of that commit that explains it (its first event).
    pub event_id: i64,
}

/// What a commit does to the flags' runtime overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagOverrideChange {
    /// Leave them as they are.
    #[default]
    Keep,
    /// Upsert per flag; a `None` field keeps that flag's current value.
    Set(Vec<FlagOverrideSet>),
    /// Drop the overrides of these flags. Flags without one are ignored.
    Clear(Vec<String>),
    /// Drop every flag override.
    ClearAll,
}

/// One flag's override in [`FlagOverrideChange::Set`]; at least one of the two is `Some`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagOverrideSet {
    pub flag: String,
    pub variant: Option<String>,
    pub enabled: Option<bool>,
}

/// Which config version an event refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionRef {
    /// The version this same commit stores (its number is not known before the commit).
    New,
    /// A version already stored.
    Existing(i64),
}

/// An event to append; the store assigns `id` and `at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub actor: String,
    pub kind: String,
    pub route: Option<String>,
    pub message: String,
    pub config_version: Option<VersionRef>,
    pub data: serde_json::Value,
}

impl NewEvent {
    /// An event without route, version or data (`data` is `{}`).
    pub fn new(
        actor: impl Into<String>,
        kind: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        NewEvent {
            actor: actor.into(),
            kind: kind.into(),
            route: None,
            message: message.into(),
            config_version: None,
            data: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    pub fn with_route(mut self, route: impl Into<String>) -> Self {
        self.route = Some(route.into());
        self
    }

    pub fn with_version(mut self, version: VersionRef) -> Self {
        self.config_version = Some(version);
        self
    }

    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }
}

/// What a successful commit stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    /// The new config version, if the change had one.
    pub version: Option<ConfigVersion>,
    /// The latest version number after the commit: the `expected_version` of the next one.
    pub latest_version: Option<i64>,
    /// The appended events, in the order given, with their ids and time.
    pub events: Vec<Event>,
}

/// Which events [`Store::events`](crate::Store::events) returns.
///
/// With `after_id` the result is ascending by id (events newer than that id, oldest first:
/// tailing); without it, the newest `limit` events, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    /// Only events about this route.
    pub route: Option<String>,
    /// Only events of this kind (exact match).
    pub kind: Option<String>,
    /// Only events whose kind starts with this (`migration.`); `%` and `_` are literal.
    pub kind_prefix: Option<String>,
    /// Only events with a larger id, ascending.
    pub after_id: Option<i64>,
    /// Only events with a smaller id (newest first): the next page back.
    pub before_id: Option<i64>,
    /// 1..=[`MAX_PAGE`](crate::limits::MAX_PAGE).
    pub limit: u32,
}

impl Default for EventFilter {
    fn default() -> Self {
        EventFilter {
            route: None,
            kind: None,
            kind_prefix: None,
            after_id: None,
            before_id: None,
            limit: crate::limits::DEFAULT_PAGE,
        }
    }
}

/// One run of a scheduled `[[verify]]` job, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct VerifyRun {
    /// Monotonic: a later run has a larger id.
    pub id: i64,
    pub job: String,
    /// The route whose data the tables hold, when the job names one.
    pub route: Option<String>,
    pub source_table: String,
    pub target_table: String,
    /// Unix milliseconds.
    pub started_at: i64,
    pub finished_at: i64,
    /// `equal`, `different`, `lagging` or `error`.
    pub outcome: String,
    pub rows_compared: i64,
    pub missing: i64,
    pub extra: i64,
    pub changed: i64,
    /// Why the run failed (outcome `error`).
    pub error: Option<String>,
    /// ficus-verify's report (`{}` when the run failed before producing one).
    pub report: serde_json::Value,
    /// `full` (every row) or `incremental` (the rows written since `bound`).
    pub mode: String,
    /// What the job compares (`ficus_verify::Job::fingerprint`): an incremental run
    /// continues the proof of the full run before it only when both have the same one.
    pub fingerprint: Option<String>,
    /// Incremental runs: the lowest watermark compared (inclusive), as text (an integer's
    /// digits, or an RFC 3339 UTC timestamp).
    pub bound: Option<String>,
    /// The highest watermark the run read before it scanned: where the next incremental
    /// run starts (minus its overlap).
    pub watermark: Option<String>,
}

/// A run to record: [`VerifyRun`] without the id the store assigns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewVerifyRun {
    pub job: String,
    pub route: Option<String>,
    pub source_table: String,
    pub target_table: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub outcome: String,
    pub rows_compared: i64,
    pub missing: i64,
    pub extra: i64,
    pub changed: i64,
    pub error: Option<String>,
    pub report: serde_json::Value,
}

/// The outcomes a [`VerifyRun`] may have.
pub const VERIFY_OUTCOMES: [&str; 4] = ["equal", "different", "lagging", "error"];

/// The modes a [`VerifyRun`] may have.
pub const VERIFY_MODES: [&str; 2] = ["full", "incremental"];

/// What a run covered, recorded with it ([`Store::record_verify_run`](crate::Store::record_verify_run)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyRunScope {
    /// `full` or `incremental`.
    pub mode: String,
    pub fingerprint: Option<String>,
    /// Required for an incremental run; none for a full one.
    pub bound: Option<String>,
    pub watermark: Option<String>,
}

impl Default for VerifyRunScope {
    /// A full run without a watermark (what [`Store::record_verify`](crate::Store::record_verify) records).
    fn default() -> Self {
        VerifyRunScope {
            mode: "full".into(),
            fingerprint: None,
            bound: None,
            watermark: None,
        }
    }
}

/// The checkpoint of a job's run in progress: resumed by the next run of the job when the
/// process did not finish it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct VerifyProgress {
    pub job: String,
    /// The job's fingerprint when the run started: a run of a changed job starts over.
    pub fingerprint: String,
    /// `full` or `incremental`.
    pub mode: String,
    /// When the interrupted run started (unix ms).
    pub started_at: i64,
    pub updated_at: i64,
    /// Top-level segments finished so far.
    pub segments_done: i64,
    /// ficus-verify's `Checkpoint`.
    pub checkpoint: serde_json::Value,
}

/// Evidence that a job's tables are equal ([`Store::latest_equal_verify_run`](crate::Store::latest_equal_verify_run)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyFreshness {
    /// The latest equal run that continues an equal full run: that full run itself, or an
    /// incremental run after it with the same fingerprint.
    pub run: VerifyRun,
    /// The equal full run the proof starts from (`run.id` when `run` is full).
    pub full_run_id: i64,
    pub full_started_at: i64,
    /// Writes made before this (unix ms) are verified: the run's start (a full run read
    /// every row after it; an incremental run every row written since its bound).
    pub covers_until: i64,
    /// A later run of the job that found differences (`different` or `lagging`), if any:
    /// the tables were equal then, but are not known to be now.
    pub contradicted_by: Option<i64>,
}

impl VerifyFreshness {
    /// Verified equal less than `max_age` before `now_ms` (unix ms), and not contradicted
    /// by a later run: what a gate asks.
    pub fn fresh(&self, now_ms: i64, max_age: std::time::Duration) -> bool {
        let age = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        self.contradicted_by.is_none() && self.covers_until >= now_ms.saturating_sub(age)
    }
}

/// The shadow comparisons of one endpoint of a route: totals when loaded, deltas when
/// flushed ([`Store::flush_shadow`](crate::Store::flush_shadow) adds them up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ShadowEndpoint {
    pub route: String,
    /// The endpoint as the comparator names it (for example `GET /orders/{id}`).
    pub endpoint: String,
    /// Mirrored responses compared with the ones that answered the client.
    pub compared: i64,
    /// Of those, the ones with at least one difference.
    pub differing: i64,
    /// Noise comparisons (legacy against itself).
    pub noise_compared: i64,
    pub noise_differing: i64,
    /// Unix milliseconds of the latest comparison; the store keeps the largest it was given.
    pub last_ms: i64,
}

/// How often one field path of an endpoint differed in one way: totals when loaded,
/// deltas when flushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ShadowField {
    pub route: String,
    pub endpoint: String,
    /// The field path (for example `$.items[*].price`).
    pub path: String,
    /// The kind of difference: `value`, `type`, `missing`, `extra`, `length`, `order`, ...
    pub kind: String,
    pub differing: i64,
    pub noise_differing: i64,
    /// Unix milliseconds; the store keeps the largest it was given.
    pub last_ms: i64,
}

/// One example difference, kept as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ShadowSample {
    /// Chosen by the caller, unique: flushing a sample whose id is already stored changes
    /// nothing, so a retried flush stores each sample once.
    pub id: i64,
    pub route: String,
    pub endpoint: String,
    pub path: String,
    pub kind: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The evidence (both values, the request, ...), as the comparator shaped it.
    pub data: serde_json::Value,
}

/// Shadow aggregates: the deltas one [`Store::flush_shadow`](crate::Store::flush_shadow)
/// adds, or everything [`Store::load_shadow`](crate::Store::load_shadow) found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowBatch {
    pub endpoints: Vec<ShadowEndpoint>,
    pub fields: Vec<ShadowField>,
    pub samples: Vec<ShadowSample>,
}

impl ShadowBatch {
    /// No endpoint, field or sample.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty() && self.fields.is_empty() && self.samples.is_empty()
    }
}

/// The event kind [`Store::reset_shadow`](crate::Store::reset_shadow) appends.
pub const SHADOW_RESET_KIND: &str = "shadow.reset";
