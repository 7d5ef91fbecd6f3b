//! Resumable runs: after each finished top-level segment, the state a later run resumes
//! from (the segments cut so far and which are finished, the counts and the differences of
//! the finished ones), tied to a fingerprint of the plan so that a checkpoint is never
//! applied to another verification. The CLI keeps it in a file (`--resume FILE`), the
//! scheduler in the store.
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::error::VerifyError;
use crate::job::Job;
use crate::plan::{ColumnPlan, Plan};
use crate::report::Difference;
use crate::sql::KeyVal;
use crate::watermark::{WatermarkValue, Window};

/// The shape of [`Checkpoint`]; a checkpoint of another version is refused.
pub const CHECKPOINT_VERSION: u32 = 1;

/// Lower-case hex md5.
pub fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a run verifies, as far as its results depend on it: a checkpoint applies only to a
/// run whose identity is the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanIdentity {
    /// `url table [where]` (the URL without its password).
    pub source: String,
    pub target: String,
    /// `source=target:kind` per key column.
    pub key: Vec<String>,
    /// `source=target:kind[~tolerance]` per compared column (expressions excluded).
    pub columns: Vec<String>,
    /// `target=target:kind as expression` per expression column.
    pub expressions: Vec<String>,
    /// `column>=bound` of an incremental run, `column` of a full run with a watermark.
    pub watermark: Option<String>,
}

fn describe(c: &ColumnPlan) -> String {
    let kind = serde_json::to_value(c.kind)
        .ok()
        .map(|v| v.to_string())
        .unwrap_or_default();
    let tol = c.tolerance.map(|t| format!("~{t}")).unwrap_or_default();
    format!("{}={}:{kind}{tol}", c.source.name, c.target.name)
}

impl PlanIdentity {
    /// `src_url` and `tgt_url` are the URLs as reports show them (password masked).
    pub fn new(
        job: &Job,
        plan: &Plan,
        window: Option<&Window>,
        src_url: &str,
        tgt_url: &str,
    ) -> PlanIdentity {
        let side = |url: &str, table: &str, w: &Option<String>| match w {
            Some(w) => format!("{url} {table} where {w}"),
            None => format!("{url} {table}"),
        };
        PlanIdentity {
            source: side(src_url, &job.source.table, &job.source.where_clause),
            target: side(tgt_url, &job.target.table, &job.target.where_clause),
            key: plan.key.iter().map(describe).collect(),
            columns: plan
                .cols
                .iter()
                .filter(|c| c.expr.is_none())
                .map(describe)
                .collect(),
            expressions: plan
                .cols
                .iter()
                .filter_map(|c| Some(format!("{} as {}", describe(c), c.expr.as_ref()?)))
                .collect(),
            watermark: window.map(|w| match w.bound {
                Some(b) => format!("{}={}>={b}", w.column.source.name, w.column.target.name),
                None => format!("{}={}", w.column.source.name, w.column.target.name),
            }),
        }
    }

    pub fn fingerprint(&self) -> String {
        md5_hex(serde_json::to_string(self).unwrap_or_default().as_bytes())
    }

    /// What differs between `self` (the checkpoint's) and `now`, for the error message.
    fn differences(&self, now: &PlanIdentity) -> Vec<String> {
        fn clip(s: String) -> String {
            if s.chars().count() > 160 {
                format!("{}…", s.chars().take(160).collect::<String>())
            } else {
                s
            }
        }
        let mut out = Vec::new();
        let mut field = |name: &str, a: String, b: String| {
            if a != b {
                out.push(format!(
                    "{name}: checkpoint `{}`, now `{}`",
                    clip(a),
                    clip(b)
                ));
            }
        };
        field("source", self.source.clone(), now.source.clone());
        field("target", self.target.clone(), now.target.clone());
        field("key", self.key.join(", "), now.key.join(", "));
        field("columns", self.columns.join(", "), now.columns.join(", "));
        field(
            "expressions",
            self.expressions.join(", "),
            now.expressions.join(", "),
        );
        let wm = |w: &Option<String>| w.clone().unwrap_or_else(|| "none".into());
        field("watermark", wm(&self.watermark), wm(&now.watermark));
        out
    }
}

/// One top-level segment cut so far: `[lo, hi)` in key order, and whether its work
/// (checksums, bisection, downloads) is finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentState {
    pub lo: Option<KeyVal>,
    pub hi: Option<KeyVal>,
    pub done: bool,
}

/// The counts of finished segments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanTotals {
    pub src_rows: u64,
    pub tgt_rows: u64,
    pub segments: u64,
    pub segments_differing: u64,
    pub checksums: u64,
    pub rows_downloaded: u64,
}

impl ScanTotals {
    pub fn add(&mut self, o: &ScanTotals) {
        self.src_rows += o.src_rows;
        self.tgt_rows += o.tgt_rows;
        self.segments += o.segments;
        self.segments_differing += o.segments_differing;
        self.checksums += o.checksums;
        self.rows_downloaded += o.rows_downloaded;
    }
}

/// The differences of the finished segments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CollectorState {
    pub missing: u64,
    pub extra: u64,
    pub changed: u64,
    /// The listed differences (at most `max_diffs`), each with its canonical key.
    pub details: Vec<(KeyVal, Difference)>,
    pub truncated: bool,
    /// Keys found on one side only, waiting for the lookup on both sides that settles them
    /// (text and UUID keys, incremental runs).
    pub pending: Vec<KeyVal>,
    /// Keys already settled (not looked up again).
    pub seen: Vec<KeyVal>,
}

/// The state a run resumes from, written after each finished segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    /// The md5 of `plan`.
    pub fingerprint: String,
    pub plan: PlanIdentity,
    /// When the interrupted run started (unix milliseconds): a resumed run reports it as
    /// its own start, since its earliest segments were read then.
    pub started_at_ms: i64,
    /// The highest watermark read when the run started (runs with a watermark).
    #[serde(default)]
    pub high: Option<WatermarkValue>,
    /// Every segment cut so far, in key order: contiguous from the start of the key space.
    pub segments: Vec<SegmentState>,
    /// The counts of the finished segments.
    pub totals: ScanTotals,
    pub collector: CollectorState,
}

impl Checkpoint {
    /// Segments already finished.
    pub fn segments_done(&self) -> u64 {
        self.segments.iter().filter(|s| s.done).count() as u64
    }

    /// Refuses a checkpoint that does not belong to the run about to start (`now`), or that
    /// is not a consistent checkpoint at all.
    pub fn check(&self, now: &PlanIdentity) -> Result<(), VerifyError> {
        if self.version != CHECKPOINT_VERSION {
            return Err(VerifyError::BadCheckpoint(format!(
                "it has version {}, this ficus writes version {CHECKPOINT_VERSION}; delete it \
                 to start over",
                self.version
            )));
        }
        if self.fingerprint != self.plan.fingerprint() {
            return Err(VerifyError::BadCheckpoint(
                "its fingerprint does not match its own plan (edited or damaged); delete it to \
                 start over"
                    .into(),
            ));
        }
        if self.plan != *now {
            return Err(VerifyError::BadCheckpoint(format!(
                "it was written by another verification ({}); resume with the same tables, \
                 key, columns, expressions and watermark, or give another checkpoint file",
                self.plan.differences(now).join("; ")
            )));
        }
        let mut expected: Option<&KeyVal> = None;
        for (i, s) in self.segments.iter().enumerate() {
            let contiguous = if i == 0 {
                s.lo.is_none()
            } else {
                s.lo.as_ref() == expected
            };
            let last = i + 1 == self.segments.len();
            if !contiguous || (s.hi.is_none() && !last) {
                return Err(VerifyError::BadCheckpoint(
                    "its segments do not cover the key space in order (edited or damaged); \
                     delete it to start over"
                        .into(),
                ));
            }
            expected = s.hi.as_ref();
        }
        if self.totals.segments != self.segments_done() {
            return Err(VerifyError::BadCheckpoint(
                "its counts do not match its segments (edited or damaged); delete it to start \
                 over"
                    .into(),
            ));
        }
        Ok(())
    }
}
