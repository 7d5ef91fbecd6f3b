//! The errors `verify` returns: each names what is wrong and what to change.
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which of the two databases something refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The legacy database, the one that is right by definition.
    Source,
    /// The new service's database, checked against the source.
    Target,
}

impl Side {
    /// Both sides, source first.
    pub const BOTH: [Side; 2] = [Side::Source, Side::Target];
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Source => "source",
            Side::Target => "target",
        })
    }
}

/// One column pair whose types cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeMismatch {
    pub source_column: String,
    pub source_type: String,
    pub target_column: String,
    pub target_type: String,
    pub reason: String,
}

impl fmt::Display for TypeMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "source `{}` ({}) vs target `{}` ({}): {}",
            self.source_column, self.source_type, self.target_column, self.target_type, self.reason
        )
    }
}

/// Everything that stops a verification. The CLI maps every variant to exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("invalid verify job: {0}")]
    InvalidJob(String),

    #[error("{side}: unsupported database URL `{url}`: {reason}")]
    BadUrl {
        side: Side,
        url: String,
        reason: String,
    },

    #[error("{side}: cannot connect to {url}: {source}; check the URL, that the server runs and accepts this user")]
    Connect {
        side: Side,
        url: String,
        #[source]
        source: sqlx::Error,
    },

    #[error("{side}: table `{table}` not found in {url}; check the name and schema (`schema.table`); names are case-sensitive")]
    TableNotFound {
        side: Side,
        table: String,
        url: String,
    },

    #[error("{side}: column `{column}` not found in table `{table}` ({role}); the table has: {available}; {fix}")]
    ColumnNotFound {
        side: Side,
        table: String,
        column: String,
        role: &'static str,
        available: String,
        fix: &'static str,
    },

    #[error("incompatible column types, nothing was scanned: {}; map the column to a comparable one with --map, or leave it out with --exclude", list(.0))]
    IncompatibleTypes(Vec<TypeMismatch>),

    #[error("key column `{column}` has type {ty}, which cannot be a verify key: {reason}")]
    UnsupportedKey {
        column: String,
        ty: String,
        reason: String,
    },

    #[error("--tolerance for column `{column}`: {reason}")]
    BadTolerance { column: String, reason: String },

    /// An expression column (`--expr COLUMN=SQL`) that cannot be used; nothing was scanned.
    #[error("--expr {column}=\"{expr}\": {reason}; nothing was scanned")]
    BadExpression {
        /// The target column.
        column: String,
        expr: String,
        reason: String,
    },

    /// A watermark (`--watermark`, `--changed-since`, `--watermark-overlap`) that cannot be
    /// used; nothing was scanned.
    #[error("--watermark {column}: {reason}; nothing was scanned")]
    BadWatermark { column: String, reason: String },

    /// A checkpoint to resume from that belongs to another run or is damaged; nothing was
    /// scanned.
    #[error("cannot resume from the checkpoint: {0}; nothing was scanned")]
    BadCheckpoint(String),

    /// Saving a checkpoint failed (the run stops: it could not be resumed from there).
    #[error("cannot save the checkpoint: {0}")]
    Checkpoint(String),

    #[error("{side}: query failed while {context}: {source}")]
    Query {
        side: Side,
        context: String,
        #[source]
        source: sqlx::Error,
    },

    #[error("{side}: statement timed out after {timeout:?} while {context}; raise --statement-timeout or lower --segment-rows")]
    Timeout {
        side: Side,
        context: String,
        timeout: Duration,
    },

    #[error("{side}: {message}")]
    Data { side: Side, message: String },
}

fn list(items: &[TypeMismatch]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
