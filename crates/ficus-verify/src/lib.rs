//! ficus-verify: proves that a table in the new service's database matches the legacy one.
//!
//! Both tables are cut into segments of equal source row counts; inside each database a
//! segment's row count and an order-independent 128-bit checksum of a canonical,
//! length-prefixed encoding of the compared columns are computed; segments that differ are
//! bisected and, once small, downloaded and diffed row by row. Values are normalized to one
//! canonical form per column kind before hashing, so PostgreSQL, MySQL/MariaDB and SQLite
//! compare with each other. See `docs/verify.md` for the algorithm, the normalization
//! rules, the limits and the guarantees.
//!
//! The entry point is [`verify`]: a [`Job`] in, a serializable [`Report`] out, with
//! [`Progress`] events on the way, so that the CLI and a scheduler call the same thing.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod canon;
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

use std::time::Instant;

pub use db::{redact, Engine};
pub use error::{Side, TypeMismatch, VerifyError};
pub use job::{defaults, Endpoint, Job, Limits};
pub use plan::Kind;
pub use repair::repair_sql;
pub use report::{
    Change, ColumnReport, DiffKind, Difference, Outcome, Phase, Progress, RecheckReport,
    RecheckStatus, Report, Summary, TableReport, REPORT_VERSION,
};
pub use sql::RowHash;

use db::Db;
use plan::Plan;
use scan::{Collector, ScanStats, Sides, Tracker};
use schema::TableName;

/// Runs one verification. `progress` is called from the task running `verify` after each
/// completed unit of work (never concurrently).
pub async fn verify(
    job: &Job,
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
    let result = run(job, &src, &tgt, &mut tracker, started).await;
    tokio::join!(src.close(), tgt.close());
    result
}

async fn run(
    job: &Job,
    src: &Db,
    tgt: &Db,
    tracker: &mut Tracker<'_>,
    started: Instant,
) -> Result<Report, VerifyError> {
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
    // hashtextextended exists from PostgreSQL 11 and is the same function on both sides
    // only when both are PostgreSQL; everything else shares md5.
    let row_hash = if src.engine == Engine::Postgres
        && tgt.engine == Engine::Postgres
        && src.info.pg_version_num >= 110_000
        && tgt.info.pg_version_num >= 110_000
    {
        RowHash::PgHashExtended
    } else {
        RowHash::Md5
    };
    let side_sql = |db: &Db, ep: &Endpoint| {
        sql::SideSql::new(
            db.side,
            db.engine,
            &db.info,
            &ep.table,
            ep.where_clause.as_deref(),
            &plan,
            row_hash,
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
    if job.source.where_clause.is_none() {
        let quoted = sql::quote_table(src.engine, &job.source.table);
        tracker.rows_total = schema::estimate_rows(src, &src_table, &quoted).await?;
    }

    let mut stats = ScanStats::default();
    let mut collector = Collector::new(job.limits.max_diffs, !plan.key_order_is_universal());
    sides.scan(&mut collector, &mut stats, tracker).await?;
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
            rows_per_second: stats.src_rows as f64 / elapsed.as_secs_f64().max(1e-9),
            truncated: collector.truncated,
        },
        differences: collector.details,
        recheck,
        limits: job.limits.clone(),
    })
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
