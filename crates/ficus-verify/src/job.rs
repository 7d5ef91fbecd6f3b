//! What to verify: the two tables, the key, the columns, and every limit with its default.
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Side, VerifyError};
use crate::watermark::Watermark;

/// Default limits; `docs/verify.md` lists each with its reason.
pub mod defaults {
    use std::time::Duration;

    /// Source rows per top-level segment. Large enough that per-statement overhead (about a
    /// millisecond a segment) is small next to hashing, small enough that a differing
    /// segment is cheap to read again in parts, and that a segment's checksum statement
    /// stays well under the statement timeout on a loaded server.
    pub const SEGMENT_ROWS: u64 = 20_000;
    /// Parts a differing segment is cut into; all of them are compared in one grouped
    /// statement per side.
    pub const BISECTION_FACTOR: u32 = 16;
    /// A differing segment or part with at most this many rows on each side is downloaded
    /// and diffed row by row instead of being cut further: past a few hundred rows,
    /// comparing 16 parts in the databases costs less than downloading.
    pub const DOWNLOAD_ROWS: u64 = 1_000;
    /// Connections per database (and so concurrent statements on each).
    pub const MAX_CONNECTIONS: u32 = 4;
    /// Per-statement timeout, enforced by the server and again by the client.
    pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);
    /// Time to connect (and to wait for a pooled connection).
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Differences kept with their values in the report (counts are always complete).
    pub const MAX_DIFFS: usize = 1_000;
    /// Pause after each source statement (0: no pacing).
    pub const PACE: Duration = Duration::ZERO;
    /// Keys per lookup statement (confirmation and recheck).
    pub const LOOKUP_BATCH: usize = 200;
    /// Subtracted from the bound of an incremental run over a timestamp watermark when no
    /// overlap is given: writes committed up to this long after a run read the highest
    /// watermark but stamped before it (long transactions, a clock behind the other
    /// side's) are still checked. Integer watermarks get no overlap by default.
    pub const WATERMARK_OVERLAP: Duration = Duration::from_secs(60);
}

/// One database table to compare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// `postgres://…`, `mysql://…` / `mariadb://…`, or `sqlite://path` / `sqlite:path`.
    pub url: String,
    /// `table` or `schema.table` (PostgreSQL schema, MySQL database).
    pub table: String,
    /// A SQL condition on this table's own columns, ANDed to every statement.
    #[serde(default)]
    pub where_clause: Option<String>,
}

/// The numbers that bound a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    pub segment_rows: u64,
    pub bisection_factor: u32,
    pub download_rows: u64,
    pub max_connections: u32,
    pub statement_timeout: Duration,
    pub connect_timeout: Duration,
    pub max_diffs: usize,
    pub pace: Duration,
    pub lookup_batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            segment_rows: defaults::SEGMENT_ROWS,
            bisection_factor: defaults::BISECTION_FACTOR,
            download_rows: defaults::DOWNLOAD_ROWS,
            max_connections: defaults::MAX_CONNECTIONS,
            statement_timeout: defaults::STATEMENT_TIMEOUT,
            connect_timeout: defaults::CONNECT_TIMEOUT,
            max_diffs: defaults::MAX_DIFFS,
            pace: defaults::PACE,
            lookup_batch: defaults::LOOKUP_BATCH,
        }
    }
}

/// A verification: what a CLI run or a scheduled `[[verify]]` job asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub source: Endpoint,
    pub target: Endpoint,
    /// Key columns, by their source names; must be unique on both sides.
    pub key: Vec<String>,
    /// Columns to compare besides the key, by source name. Empty: every source column that
    /// the target has (directly or through `map`).
    #[serde(default)]
    pub columns: Vec<String>,
    /// Columns to leave out of the default column set.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Renamed columns: (source name, target name).
    #[serde(default)]
    pub map: Vec<(String, String)>,
    /// Absolute tolerances for numeric columns: (source name, or the target name of an
    /// expression column; tolerance).
    #[serde(default)]
    pub tolerance: Vec<(String, f64)>,
    /// Expression columns: (target column, SQL expression over the source table's columns
    /// in the source engine's dialect). The target column is compared with the expression's
    /// value, evaluated in the source database, instead of with a source column.
    #[serde(default)]
    pub expr: Vec<(String, String)>,
    /// Re-check the differing rows after this delay, separating lag from divergence.
    #[serde(default)]
    pub recheck: Option<Duration>,
    /// Incremental verification over a watermark column (`--watermark`, `--changed-since`).
    #[serde(default)]
    pub watermark: Option<Watermark>,
    #[serde(default)]
    pub limits: Limits,
}

impl Job {
    /// A job with default limits and every column compared.
    pub fn new(source: Endpoint, target: Endpoint, key: Vec<String>) -> Job {
        Job {
            source,
            target,
            key,
            columns: Vec::new(),
            exclude: Vec::new(),
            map: Vec::new(),
            tolerance: Vec::new(),
            expr: Vec::new(),
            recheck: None,
            watermark: None,
            limits: Limits::default(),
        }
    }

    /// What the job compares, as a short hash: the tables (URLs without passwords), the
    /// filters, the key, the column choices and expressions, and the watermark column, but
    /// neither the watermark's bound nor the limits. Runs of jobs with the same fingerprint
    /// compare the same thing, so an incremental run continues the proof of an earlier
    /// full run only when both have it (the scheduler keeps it with each run).
    pub fn fingerprint(&self) -> String {
        let what = serde_json::json!({
            "source": [crate::db::redact(&self.source.url), &self.source.table, &self.source.where_clause],
            "target": [crate::db::redact(&self.target.url), &self.target.table, &self.target.where_clause],
            "key": &self.key,
            "columns": &self.columns,
            "exclude": &self.exclude,
            "map": &self.map,
            "tolerance": &self.tolerance,
            "expr": &self.expr,
            "watermark": self.watermark.as_ref().map(|w| &w.column),
        });
        crate::checkpoint::md5_hex(what.to_string().as_bytes())
    }

    /// The target name of a source column.
    pub fn target_name<'a>(&'a self, source: &'a str) -> &'a str {
        self.map
            .iter()
            .find(|(s, _)| s == source)
            .map(|(_, t)| t.as_str())
            .unwrap_or(source)
    }

    /// Checks what can be checked without a database.
    pub fn validate(&self) -> Result<(), VerifyError> {
        let bad = |m: String| Err(VerifyError::InvalidJob(m));
        if self.key.is_empty() {
            return bad(
                "no key column: pass --key COL[,COL...] (a unique key present on both sides)"
                    .into(),
            );
        }
        for (name, t) in [("source", &self.source), ("target", &self.target)] {
            if t.table.trim().is_empty() {
                return bad(format!("the {name} table name is empty"));
            }
        }
        let l = &self.limits;
        if l.segment_rows < 2 {
            return bad("--segment-rows must be at least 2".into());
        }
        if l.bisection_factor < 2 {
            return bad("--bisection-factor must be at least 2".into());
        }
        if l.download_rows < 1 {
            return bad("--download-rows must be at least 1".into());
        }
        if l.max_connections < 1 {
            return bad("--max-connections must be at least 1".into());
        }
        if l.statement_timeout.is_zero() {
            return bad("--statement-timeout must be positive".into());
        }
        if l.lookup_batch < 1 {
            return bad("lookup batch must be at least 1".into());
        }
        for (col, tol) in &self.tolerance {
            if !(tol.is_finite() && *tol > 0.0) {
                return Err(VerifyError::BadTolerance {
                    column: col.clone(),
                    reason: format!("{tol} is not a positive finite number"),
                });
            }
        }
        let mut seen = std::collections::HashSet::new();
        for k in &self.key {
            if !seen.insert(k) {
                return bad(format!("key column `{k}` is listed twice"));
            }
        }
        if let Some(w) = &self.watermark {
            if w.column.trim().is_empty() {
                return bad(
                    "--watermark names no column: give the source's watermark column \
                            (an integer version or an updated-at timestamp)"
                        .into(),
                );
            }
        }
        let engine = crate::db::parse_url(Side::Source, &self.source.url)
            .ok()
            .map(|(e, _)| e);
        let mut targets = std::collections::HashSet::new();
        for (column, text) in &self.expr {
            let wrong = |reason: String| {
                Err(VerifyError::BadExpression {
                    column: column.clone(),
                    expr: text.clone(),
                    reason,
                })
            };
            if column.trim().is_empty() {
                return wrong("the target column name is empty (write --expr COLUMN=SQL)".into());
            }
            if !targets.insert(column) {
                return wrong(format!(
                    "target column `{column}` has more than one expression"
                ));
            }
            if let Err(reason) = crate::expr::check(engine, text) {
                return wrong(reason);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(t: &str) -> Endpoint {
        Endpoint {
            url: "sqlite://x.db".into(),
            table: t.into(),
            where_clause: None,
        }
    }

    #[test]
    fn validation_names_the_fix() {
        let mut job = Job::new(ep("a"), ep("b"), vec![]);
        assert!(job.validate().unwrap_err().to_string().contains("--key"));
        job.key = vec!["id".into()];
        job.validate().unwrap();
        job.tolerance = vec![("x".into(), -1.0)];
        assert!(job.validate().unwrap_err().to_string().contains("`x`"));
        job.tolerance.clear();
        job.limits.max_connections = 0;
        assert!(job
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--max-connections"));
    }

    #[test]
    fn expressions_are_checked_before_connecting() {
        let mut job = Job::new(ep("a"), ep("b"), vec!["id".into()]);
        job.expr = vec![("full_name".into(), "first || ' ' || last".into())];
        job.validate().unwrap();
        for (expr, needle) in [
            (("full_name", ""), "empty"),
            (("", "x"), "target column name is empty"),
            (("full_name", "lower(x); DELETE FROM t"), "`;`"),
        ] {
            job.expr = vec![(expr.0.into(), expr.1.into())];
            let e = job.validate().unwrap_err();
            assert!(matches!(e, VerifyError::BadExpression { .. }), "{e}");
            assert!(e.to_string().contains(needle), "{e}");
        }
        job.expr = vec![("a".into(), "x".into()), ("a".into(), "y".into())];
        let e = job.validate().unwrap_err().to_string();
        assert!(e.contains("more than one"), "{e}");
    }

    #[test]
    fn map_renames() {
        let mut job = Job::new(ep("a"), ep("b"), vec!["id".into()]);
        job.map = vec![("old".into(), "new".into())];
        assert_eq!(job.target_name("old"), "new");
        assert_eq!(job.target_name("id"), "id");
    }

    #[test]
    fn job_round_trips_through_json_with_defaults() {
        let job = Job::new(ep("a"), ep("b"), vec!["id".into()]);
        let text = serde_json::to_string(&job).unwrap();
        let back: Job = serde_json::from_str(&text).unwrap();
        assert_eq!(back, job);
        let minimal: Job = serde_json::from_str(
            r#"{"source":{"url":"sqlite://a","table":"t"},"target":{"url":"sqlite://b","table":"t"},"key":["id"]}"#,
        )
        .unwrap();
        assert_eq!(minimal.limits, Limits::default());
    }
}
