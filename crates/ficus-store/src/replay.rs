//! Replay runs (`ficus replay ... --save`): each run's report kept, so its compared fields
//! can be listed and ranked later by the CLI, the API and the dashboard.

use serde::{Deserialize, Serialize};

use crate::store::{Pool, Store};
use crate::StoreError;

/// The largest report kept (the comparison keeps at most 10,000 fields and 2,000 samples of
/// 16 KiB; a report is normally far smaller).
pub const MAX_REPORT_BYTES: usize = 16 * 1024 * 1024;

/// A replay run to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewReplayRun {
    pub actor: String,
    /// The recording replayed (as the CLI named it).
    pub file: String,
    pub target: String,
    /// `none`, `recording` or `compare-with`.
    pub reference: String,
    pub sent: i64,
    /// Fields with the verdict `real`.
    pub real: i64,
    pub report: serde_json::Value,
}

/// A recorded replay run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ReplayRun {
    pub id: i64,
    /// Unix ms.
    pub at: i64,
    pub actor: String,
    pub file: String,
    pub target: String,
    pub reference: String,
    pub sent: i64,
    pub real: i64,
    pub report: serde_json::Value,
}

const INSERT: &str =
    "INSERT INTO replay_runs (at, actor, file, target, reference, sent, real, report) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";
const SELECT: &str =
    "SELECT id, at, actor, file, target, reference, sent, real, report FROM replay_runs";

fn invalid(m: String) -> StoreError {
    StoreError::Invalid(m)
}

impl Store {
    /// Records a replay run; returns it with its id.
    pub async fn record_replay(&self, run: NewReplayRun) -> Result<ReplayRun, StoreError> {
        if run.actor.trim().is_empty() || run.target.trim().is_empty() {
            return Err(invalid("a replay run needs an actor and a target".into()));
        }
        if !["none", "recording", "compare-with"].contains(&run.reference.as_str()) {
            return Err(invalid(format!(
                "reference {:?}: none, recording or compare-with",
                run.reference
            )));
        }
        if run.sent < 0 || run.real < 0 {
            return Err(invalid("sent and real are counts (0 or more)".into()));
        }
        let size = serde_json::to_vec(&run.report).map_or(0, |v| v.len());
        if size > MAX_REPORT_BYTES {
            return Err(invalid(format!(
                "the replay report is {size} bytes, more than the limit of {MAX_REPORT_BYTES}"
            )));
        }
        for (what, v) in [
            ("file", &run.file),
            ("target", &run.target),
            ("actor", &run.actor),
        ] {
            if v.len() > 4096 || v.contains('\0') {
                return Err(invalid(format!("{what}: at most 4096 bytes, no NUL")));
            }
        }
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let err = self.err();
        let q = |id: i64| ReplayRun {
            id,
            at,
            actor: run.actor.clone(),
            file: run.file.clone(),
            target: run.target.clone(),
            reference: run.reference.clone(),
            sent: run.sent,
            real: run.real,
            report: run.report.clone(),
        };
        let id: i64 = match self.pool() {
            Pool::Sqlite(p) => {
                sqlx::query_scalar(INSERT)
                    .bind(at)
                    .bind(&run.actor)
                    .bind(&run.file)
                    .bind(&run.target)
                    .bind(&run.reference)
                    .bind(run.sent)
                    .bind(run.real)
                    .bind(&run.report)
                    .fetch_one(p)
                    .await
            }
            Pool::Postgres(p) => {
                sqlx::query_scalar(INSERT)
                    .bind(at)
                    .bind(&run.actor)
                    .bind(&run.file)
                    .bind(&run.target)
                    .bind(&run.reference)
                    .bind(run.sent)
                    .bind(run.real)
                    .bind(&run.report)
                    .fetch_one(p)
                    .await
            }
        }
        .map_err(|e| err.db("recording a replay run", e))?;
        Ok(q(id))
    }

    /// The latest replay runs, newest first (at most `limit`).
    pub async fn replay_runs(&self, limit: u32) -> Result<Vec<ReplayRun>, StoreError> {
        crate::validate::page(limit)?;
        let sql = format!("{SELECT} ORDER BY id DESC LIMIT $1");
        let err = self.err();
        match self.pool() {
            Pool::Sqlite(p) => {
                sqlx::query_as::<_, ReplayRun>(&sql)
                    .bind(i64::from(limit))
                    .fetch_all(p)
                    .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as::<_, ReplayRun>(&sql)
                    .bind(i64::from(limit))
                    .fetch_all(p)
                    .await
            }
        }
        .map_err(|e| err.db("reading replay runs", e))
    }

    /// One replay run.
    pub async fn replay_run(&self, id: i64) -> Result<Option<ReplayRun>, StoreError> {
        let sql = format!("{SELECT} WHERE id = $1");
        let err = self.err();
        match self.pool() {
            Pool::Sqlite(p) => {
                sqlx::query_as::<_, ReplayRun>(&sql)
                    .bind(id)
                    .fetch_optional(p)
                    .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as::<_, ReplayRun>(&sql)
                    .bind(id)
                    .fetch_optional(p)
                    .await
            }
        }
        .map_err(|e| err.db("reading a replay run", e))
    }
}
