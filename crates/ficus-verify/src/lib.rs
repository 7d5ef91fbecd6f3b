//! ficus-verify: proves that a table in the new service's database matches the legacy one.
//!
//! Both tables are cut into segments of equal source row counts; inside each database a
//! segment's row count and an order-independent 128-bit checksum of its rows are computed
//! (per-row hashes of a canonical, length-prefixed encoding of the compared columns, or,
//! between two PostgreSQL servers, typed per-column hashes of the same canonical values);
//! segments that differ are bisected, all parts of a segment compared in one statement per
//! side, and, once small, downloaded and diffed row by row. Values are normalized to one
//! canonical form per column kind before hashing, so PostgreSQL, MySQL/MariaDB and SQLite
//! compare with each other. See `docs/verify.md` for the algorithm, the normalization
//! rules, the limits and the guarantees.
//!
//! The entry point is [`verify`]: a [`Job`] in, a serializable [`Report`] out, with
//! [`Progress`] events on the way, so that the CLI and a scheduler call the same thing.
//! [`verify_with`] also resumes from a [`Checkpoint`] and hands one out after each finished
//! segment ([`RunOptions`]); a job's [`Watermark`] makes a run incremental (only the rows
//! written since a bound, on both sides).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod canon;
mod checkpoint;
mod civil;
mod db;
mod diff;
mod error;
mod expr;
mod job;
mod plan;
mod repair;
mod report;
mod scan;
mod schema;
mod sql;
mod watermark;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub use checkpoint::{
    Checkpoint, CollectorState, PlanIdentity, ScanTotals, SegmentState, CHECKPOINT_VERSION,
};
pub use db::{redact, Engine};
pub use error::{Side, TypeMismatch, VerifyError};
pub use job::{defaults, Endpoint, Job, Limits};
pub use plan::Kind;
pub use repair::repair_sql;
pub use report::{
    Change, ColumnReport, DiffKind, Difference, Mode, Outcome, Phase, Progress, RecheckReport,
    RecheckStatus, Report, ResumedReport, Summary, TableReport, WatermarkReport, REPORT_VERSION,
};
pub use sql::RowHash;
pub use watermark::{Overlap, Watermark, WatermarkValue};

use db::Db;
use plan::Plan;
use scan::{Collector, ScanStart, ScanStats, Sides, Tracker};
use schema::TableName;

/// Called after each finished top-level segment with the state to resume from; an error
/// (the checkpoint could not be saved) stops the run.
pub type CheckpointSink<'a> = dyn FnMut(&Checkpoint) -> Result<(), String> + Send + 'a;

/// How a run starts and what it leaves behind besides its report.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// Resume from this checkpoint: its finished segments are not scanned again.
    pub resume: Option<Checkpoint>,
    /// When `resume` belongs to another plan (or is damaged): start over instead of failing
    /// (the scheduler; the CLI refuses, naming what differs).
    pub restart_other_plan: bool,
    /// Told of every finished top-level segment.
    pub on_checkpoint: Option<&'a mut CheckpointSink<'a>>,
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs one verification. `progress` is called from the task running `verify` after each
/// completed unit of work (never concurrently).
pub async fn verify(
    job: &Job,
    progress: impl FnMut(Progress) + Send,
) -> Result<Report, VerifyError> {
    verify_with(job, RunOptions::default(), progress).await
}

/// [`verify`], resuming from a checkpoint and/or saving one after each finished segment.
pub async fn verify_with(
    job: &Job,
    options: RunOptions<'_>,
    mut progress: impl FnMut(Progress) + Send,
) -> Result<Report, VerifyError> {
    job.validate()?;
    let started = Instant::now();
    let mut tracker = Tracker {
        progress: &mut progress,
        rows_total: None,
        segments_total: None,
    };
    tracker.emit(Phase::Connecting, &ScanStats::default(), 0);
    let (src, tgt) = tokio::try_join!(
        Db::connect(Side::Source, &job.source.url, &job.limits),
        Db::connect(Side::Target, &job.target.url, &job.limits),
    )?;
    let result = run(job, &src, &tgt, &mut tracker, started, options).await;
    tokio::join!(src.close(), tgt.close());
    result
}

async fn run(
    job: &Job,
    src: &Db,
    tgt: &Db,
    tracker: &mut Tracker<'_>,
    started: Instant,
    mut options: RunOptions<'_>,
) -> Result<Report, VerifyError> {
    let started_at_ms = unix_ms();
    let stats = ScanStats::default();
    tracker.emit(Phase::Planning, &stats, 0);
    let src_table = TableName::parse(&job.source.table);
    let tgt_table = TableName::parse(&job.target.table);
    let (src_cols, tgt_cols) = tokio::try_join!(
        schema::columns(src, &src_table),
        schema::columns(tgt, &tgt_table)
    )?;
    if src_cols.is_empty() {
        return Err(schema::not_found(Side::Source, &job.source.table, &src.url));
    }
    if tgt_cols.is_empty() {
        return Err(schema::not_found(Side::Target, &job.target.table, &tgt.url));
    }
    let plan = plan::build(job, &src_cols, &tgt_cols)?;
    let window = watermark::resolve(job, &src_cols, &tgt_cols, (src.engine, tgt.engine))?;
    let identity = PlanIdentity::new(job, &plan, window.as_ref(), &src.url, &tgt.url);
    let fingerprint = identity.fingerprint();
    let resume = match options.resume.take() {
        Some(cp) => match cp.check(&identity) {
            Ok(()) => Some(cp),
            Err(_) if options.restart_other_plan => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    // PostgreSQL's own hash functions are the same functions on both sides only when both
    // are PostgreSQL; everything else shares md5.
    let hashing = sql::Hashing::choose((src.engine, &src.info), (tgt.engine, &tgt.info));
    let row_hash = hashing.reported();
    let side_sql = |db: &Db, ep: &Endpoint| {
        sql::SideSql::new(
            db.side,
            db.engine,
            &db.info,
            &ep.table,
            ep.where_clause.as_deref(),
            &plan,
            hashing,
        )
        .with_window(
            window
                .as_ref()
                .and_then(|w| w.predicate(db.side, db.engine)),
        )
    };
    let sides = Sides {
        plan: &plan,
        src,
        tgt,
        src_sql: side_sql(src, &job.source),
        tgt_sql: side_sql(tgt, &job.target),
        limits: &job.limits,
    };
    probe_expressions(&plan, src, &sides.src_sql).await?;
    let incremental = window.as_ref().is_some_and(|w| w.bound.is_some());
    if job.source.where_clause.is_none() && !incremental {
        let quoted = sql::quote_table(src.engine, &job.source.table);
        tracker.rows_total = schema::estimate_rows(src, &src_table, &quoted).await?;
    }
    // The highest watermark of each side before anything is scanned (a resumed run keeps
    // the one read when it first started): rows written during the scan carry a later one,
    // so the next incremental run checks them.
    let highs = match (&window, &resume) {
        (None, _) => (None, None),
        (Some(_), Some(cp)) => (cp.high, cp.high),
        (Some(w), None) => tokio::try_join!(
            read_high(w, src, &sides.src_sql),
            read_high(w, tgt, &sides.tgt_sql)
        )?,
    };
    let next_watermark = window.as_ref().and_then(|w| w.next(highs.0, highs.1));

    // Incremental runs see only the rows in their window on each side: a row in one
    // side's window only is looked up on both sides (without the window) before it counts.
    let confirm = !plan.key_order_is_universal() || incremental;
    let (mut collector, mut stats, start, resumed) = match &resume {
        Some(cp) => (
            Collector::restore(job.limits.max_diffs, confirm, &cp.collector),
            ScanStats::from_totals(&cp.totals),
            ScanStart {
                segments: cp.segments.clone(),
                totals: cp.totals,
            },
            Some(ResumedReport {
                started_at_ms: cp.started_at_ms,
                segments: cp.totals.segments,
                rows: cp.totals.src_rows,
                checksums: cp.totals.checksums,
            }),
        ),
        None => (
            Collector::new(job.limits.max_diffs, confirm),
            ScanStats::default(),
            ScanStart::default(),
            None,
        ),
    };
    let first_started_at = resumed.as_ref().map_or(started_at_ms, |r| r.started_at_ms);
    let mut sink = options.on_checkpoint.take();
    let mut on_segment = |segments: &[SegmentState],
                          totals: &ScanTotals,
                          collector: &Collector|
     -> Result<(), VerifyError> {
        let Some(sink) = sink.as_mut() else {
            return Ok(());
        };
        let cp = Checkpoint {
            version: CHECKPOINT_VERSION,
            fingerprint: fingerprint.clone(),
            plan: identity.clone(),
            started_at_ms: first_started_at,
            // A resumed run keeps the next watermark read when the run first started
            // (`Window::next` of it is itself).
            high: next_watermark,
            segments: segments.to_vec(),
            totals: *totals,
            collector: collector.state(),
        };
        sink(&cp).map_err(VerifyError::Checkpoint)
    };
    sides
        .scan(&mut collector, &mut stats, tracker, start, &mut on_segment)
        .await?;
    tracker.emit(Phase::Confirming, &stats, collector.total());
    sides.confirm(&mut collector, &mut stats).await?;

    let total = collector.total();
    let recheck = match job.recheck {
        Some(delay) if total > 0 => {
            tracker.emit(Phase::Rechecking, &stats, total);
            Some(
                sides
                    .recheck(&mut collector.details, total, delay, &mut stats)
                    .await?,
            )
        }
        _ => None,
    };
    let outcome = match &recheck {
        _ if total == 0 => Outcome::Equal,
        Some(r) if r.persisted == 0 && r.unchecked == 0 => Outcome::Lagging,
        _ => Outcome::Different,
    };
    tracker.emit(Phase::Done, &stats, total);

    let elapsed = started.elapsed();
    let table_report = |db: &Db, ep: &Endpoint, rows: u64| TableReport {
        engine: db.engine,
        url: db.url.clone(),
        table: ep.table.clone(),
        server: db.info.version.clone(),
        rows,
    };
    Ok(Report {
        version: REPORT_VERSION,
        outcome,
        source: table_report(src, &job.source, stats.src_rows),
        target: table_report(tgt, &job.target, stats.tgt_rows),
        key: job.key.clone(),
        columns: plan
            .all()
            .enumerate()
            .map(|(i, c)| ColumnReport {
                source: c.source.name.clone(),
                target: c.target.name.clone(),
                kind: c.kind,
                source_type: c.source.declared.clone(),
                target_type: c.target.declared.clone(),
                tolerance: c.tolerance,
                key: i < plan.key.len(),
                expr: c.expr.clone(),
                target_family: Some(c.target.family.clone()),
            })
            .collect(),
        skipped_columns: plan.skipped.clone(),
        row_hash,
        mode: if incremental {
            Mode::Incremental
        } else {
            Mode::Full
        },
        watermark: window.as_ref().map(|w| WatermarkReport {
            column: w.column.source.name.clone(),
            target_column: w.column.target.name.clone(),
            kind: match w.column.kind {
                Kind::Integer => "integer".into(),
                _ => "timestamp".into(),
            },
            since: w.since,
            overlap: w.overlap,
            bound: w.bound,
            source_high: if resumed.is_some() { None } else { highs.0 },
            target_high: if resumed.is_some() { None } else { highs.1 },
            next: next_watermark,
        }),
        resumed: resumed.clone(),
        summary: Summary {
            missing: collector.missing,
            extra: collector.extra,
            changed: collector.changed,
            segments: stats.segments,
            segments_differing: stats.segments_differing,
            checksums: stats.checksums,
            rows_downloaded: stats.rows_downloaded,
            rows_looked_up: stats.rows_looked_up,
            elapsed_ms: elapsed.as_millis() as u64,
            // This session's rows: a resumed run's earlier segments took their own time.
            rows_per_second: stats
                .src_rows
                .saturating_sub(resumed.as_ref().map_or(0, |r| r.rows))
                as f64
                / elapsed.as_secs_f64().max(1e-9),
            truncated: collector.truncated,
        },
        differences: collector.details,
        recheck,
        limits: job.limits.clone(),
    })
}

/// The highest watermark of one side's rows (in an incremental run's window).
async fn read_high(
    w: &watermark::Window,
    db: &Db,
    sql: &sql::SideSql,
) -> Result<Option<WatermarkValue>, VerifyError> {
    let stmt = sql.watermark_high(&w.high_expr(db.side, db.engine, &db.info));
    let rows = db
        .text_rows(&stmt.sql, &stmt.params, "reading the highest watermark")
        .await?;
    let text = rows
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next().flatten());
    w.parse_high(db.side, text.as_deref())
}

/// Runs each expression column once on the source (one row, both canonical forms), so that
/// an expression the database refuses, or whose value cannot take the target column's
/// type, is an error naming the column and the expression before anything is scanned.
async fn probe_expressions(plan: &Plan, src: &Db, sql: &sql::SideSql) -> Result<(), VerifyError> {
    for (i, c) in plan.all().enumerate() {
        let Some(expr) = &c.expr else { continue };
        let bad = |reason: String| VerifyError::BadExpression {
            column: c.target.name.clone(),
            expr: expr.clone(),
            reason,
        };
        let target = format!("target column `{}` ({})", c.target.name, c.target.declared);
        let stmt = sql.probe(i);
        let context = format!("checking the --expr of `{}`", c.target.name);
        let result = match src.engine {
            Engine::Sqlite => {
                let rows = src.cells(&stmt.sql, &stmt.params, &context).await;
                rows.and_then(|rows| {
                    let Some(cell) = rows.first().and_then(|r| r.first()) else {
                        return Ok(());
                    };
                    for p in [canon::Purpose::Hash, canon::Purpose::Value] {
                        canon::sqlite_canon(cell, c, &c.source.family, p).map_err(|m| {
                            bad(format!(
                                "its value on the first row does not fit {target}: {m}"
                            ))
                        })?;
                    }
                    Ok(())
                })
            }
            _ => src
                .text_rows(&stmt.sql, &stmt.params, &context)
                .await
                .map(|_| ()),
        };
        match result {
            Err(VerifyError::Query { source, .. }) => {
                let message = match &source {
                    sqlx::Error::Database(d) => d.message().to_string(),
                    other => other.to_string(),
                };
                return Err(bad(format!(
                    "the source database refused it ({message}); the expression is SQL in the \
                     source database's dialect over the source table's columns, converted to \
                     the type of {target}"
                )));
            }
            other => other?,
        }
    }
    Ok(())
}
