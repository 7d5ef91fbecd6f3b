//! The result of a verification, serializable for `--json`, the store and the dashboard,
//! and the progress events a caller receives while it runs.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::db::Engine;
use crate::job::Limits;
use crate::plan::Kind;
use crate::schema::Family;
use crate::sql::RowHash;
use crate::watermark::{Overlap, WatermarkValue};

/// Version of the report's JSON shape; bumped on incompatible changes.
pub const REPORT_VERSION: u32 = 1;

/// What was found, overall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No differences.
    Equal,
    /// Differences that persist (or that were not re-checked).
    Different,
    /// Every difference was re-checked and had resolved: the target lags but converges.
    Lagging,
}

/// The kind of one difference, from the target's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    /// The source has the key, the target does not.
    Missing,
    /// The target has a key the source does not.
    Extra,
    /// Both have the key with different values.
    Changed,
}

/// What a re-check found for one difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecheckStatus {
    /// Still different after the delay: divergence.
    Persisted,
    /// Equal after the delay: replication lag.
    Resolved,
}

/// One differing column of a changed row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub column: String,
    pub target_column: String,
    pub source: Option<String>,
    pub target: Option<String>,
}

/// One row that differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    pub kind: DiffKind,
    /// Key column (source name) to value.
    pub key: BTreeMap<String, String>,
    /// For `changed`: the columns that differ.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// For `missing`: the source row (source column names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<BTreeMap<String, Option<String>>>,
    /// For `extra`: the target row (source column names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<BTreeMap<String, Option<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RecheckStatus>,
    /// The canonical key, in key column order (for lookups).
    #[serde(skip)]
    pub key_values: Vec<String>,
}

/// One side's table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableReport {
    pub engine: Engine,
    /// The URL with the password masked.
    pub url: String,
    pub table: String,
    pub server: String,
    /// Rows counted by the scan (after `where`).
    pub rows: u64,
}

/// One compared column pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnReport {
    pub source: String,
    pub target: String,
    #[serde(flatten)]
    pub kind: Kind,
    pub source_type: String,
    pub target_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    pub key: bool,
    /// For an expression column (`--expr`): the SQL expression evaluated on the source;
    /// `source` then names the target column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<String>,
    /// The target's family, for repair SQL literals.
    #[serde(skip)]
    pub target_family: Option<Family>,
}

/// Counts and rates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub missing: u64,
    pub extra: u64,
    pub changed: u64,
    /// Top-level segments scanned, and how many of them differed.
    pub segments: u64,
    pub segments_differing: u64,
    /// Checksum statements run per side (top-level and bisection).
    pub checksums: u64,
    /// Rows downloaded for row-level comparison, both sides.
    pub rows_downloaded: u64,
    /// Key lookups (confirmation and re-check), both sides.
    pub rows_looked_up: u64,
    pub elapsed_ms: u64,
    /// Source rows verified per second.
    pub rows_per_second: f64,
    /// More differences than `max_diffs` were found: `differences` holds the first ones.
    pub truncated: bool,
}

impl Summary {
    pub fn differences(&self) -> u64 {
        self.missing + self.extra + self.changed
    }
}

/// What `--recheck` found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecheckReport {
    pub delay_ms: u64,
    pub rechecked: u64,
    /// Still different: divergence.
    pub persisted: u64,
    /// Equal after the delay: lag.
    pub resolved: u64,
    /// Differences beyond `max_diffs`, not re-checked.
    pub unchecked: u64,
}

/// Whether a run compared every row or only the rows written since a bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every row (within `--where`).
    #[default]
    Full,
    /// Only the rows whose watermark is at or after the bound (on either side).
    Incremental,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Incremental => "incremental",
        }
    }
}

/// The watermark of a run (`--watermark`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatermarkReport {
    /// The column, by its source name, and the target's.
    pub column: String,
    pub target_column: String,
    /// `integer` or `timestamp`.
    pub kind: String,
    /// The bound asked for (`--changed-since`); None in a full run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<WatermarkValue>,
    pub overlap: Overlap,
    /// `since` minus the overlap: rows with a watermark at or after it were compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<WatermarkValue>,
    /// The highest watermark of each side when the scan started (within the bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_high: Option<WatermarkValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_high: Option<WatermarkValue>,
    /// Where the next incremental run starts (`--changed-since`): the lower of the two
    /// highs, and never before `since`. None when neither side has a row with a watermark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<WatermarkValue>,
}

/// What a resumed run took from its checkpoint instead of scanning it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumedReport {
    /// When the interrupted run started (unix milliseconds).
    pub started_at_ms: i64,
    /// Top-level segments finished before the interruption (not scanned again), and their
    /// source rows and checksum statements (included in the summary's totals).
    pub segments: u64,
    pub rows: u64,
    pub checksums: u64,
}

/// The full result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub version: u32,
    pub outcome: Outcome,
    pub source: TableReport,
    pub target: TableReport,
    pub key: Vec<String>,
    pub columns: Vec<ColumnReport>,
    pub skipped_columns: Vec<String>,
    pub row_hash: RowHash,
    /// `full` or `incremental` (`--changed-since`).
    #[serde(default)]
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<WatermarkReport>,
    /// Set when the run resumed from a checkpoint (`--resume`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed: Option<ResumedReport>,
    pub summary: Summary,
    pub differences: Vec<Difference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recheck: Option<RecheckReport>,
    pub limits: Limits,
}

impl Report {
    /// CLI exit code: 0 equal (or lag that resolved), 1 different.
    pub fn exit_code(&self) -> u8 {
        match self.outcome {
            Outcome::Equal | Outcome::Lagging => 0,
            Outcome::Different => 1,
        }
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Connecting,
    Planning,
    Scanning,
    /// Looking up unmatched keys on both sides (text and UUID keys).
    Confirming,
    /// Waiting for `--recheck`, then looking the differences up again.
    Rechecking,
    Done,
}

/// A progress event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub phase: Phase,
    /// Source rows verified by top-level segments so far.
    pub rows_done: u64,
    /// Source rows expected: the catalog estimate, exact once the key space is cut.
    pub rows_total: Option<u64>,
    pub segments_done: u64,
    pub segments_total: Option<u64>,
    pub differences: u64,
}
