//! SLI minutes and SLO statuses: each node writes the per-minute SLI counts of its routes'
//! covered scopes (rewriting the current minute as it fills); the leader reads them summed
//! over nodes, per minute or per longer bucket, and publishes what it evaluated so every
//! node can show it.

use serde::{Deserialize, Serialize};

use super::{now_sql, TELEMETRY_ROWS_PER_INSERT};
use crate::store::{Pool, Store};
use crate::StoreError;

/// SLO statuses in one multi-row upsert (4 parameters each).
const STATUS_ROWS_PER_INSERT: usize = 500;

/// Latency thresholds kept per row (more is refused: the gateway counts at most 4).
pub const MAX_SLI_THRESHOLDS: usize = 16;

/// One minute of one scope of one route on one node (what a node writes), or the sum over
/// nodes of one bucket of minutes (what [`Store::sli_sums`] reads).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliRow {
    /// Empty in sums.
    pub node_id: String,
    pub route: String,
    /// 0 route, 1 legacy, 2 modern.
    pub scope: i16,
    /// The minute (unix seconds / 60); in sums, the bucket's first minute.
    pub minute: i64,
    pub total: i64,
    pub c5xx: i64,
    pub c429: i64,
    pub c4xx: i64,
    /// Requests slower than each threshold (microseconds), by threshold.
    pub slow: Vec<(i64, i64)>,
}

/// One SLO's evaluation as the leader last published it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct SloStatusRow {
    pub slo: String,
    pub node_id: String,
    pub data: serde_json::Value,
    pub updated_at: i64,
}

fn check(r: &SliRow) -> Result<(), StoreError> {
    let at = || {
        format!(
            "SLI row {} {} scope {} minute {}",
            r.node_id, r.route, r.scope, r.minute
        )
    };
    if r.node_id.is_empty() || r.route.is_empty() {
        return Err(StoreError::Invalid(format!(
            "{}: node and route must be named",
            at()
        )));
    }
    if !(0..=2).contains(&r.scope) {
        return Err(StoreError::Invalid(format!(
            "{}: scope must be 0 (route), 1 (legacy) or 2 (modern)",
            at()
        )));
    }
    if [r.total, r.c5xx, r.c429, r.c4xx].iter().any(|c| *c < 0)
        || r.slow.iter().any(|(t, n)| *t <= 0 || *n < 0)
    {
        return Err(StoreError::Invalid(format!(
            "{}: counts must be >= 0 and thresholds > 0",
            at()
        )));
    }
    if r.slow.len() > MAX_SLI_THRESHOLDS {
        return Err(StoreError::Invalid(format!(
            "{}: {} thresholds, more than {MAX_SLI_THRESHOLDS}",
            at(),
            r.slow.len()
        )));
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct SumRecord {
    route: String,
    scope: i16,
    bucket: i64,
    total: i64,
    c5xx: i64,
    c429: i64,
    c4xx: i64,
}

#[derive(sqlx::FromRow)]
struct SlowRecord {
    route: String,
    scope: i16,
    bucket: i64,
    threshold_us: i64,
    slow: i64,
}

impl Store {
    /// Writes (or rewrites) this node's SLI minutes, in one transaction.
    pub async fn flush_sli(&self, rows: &[SliRow]) -> Result<(), StoreError> {
        for r in rows {
            check(r)?;
        }
        if rows.is_empty() {
            return Ok(());
        }
        let err = self.err();
        let slow: Vec<(&SliRow, i64, i64)> = rows
            .iter()
            .flat_map(|r| r.slow.iter().map(move |(t, n)| (r, *t, *n)))
            .collect();
        with_pool!(self, p => async {
            let mut tx = fenced_tx!(self, p, None, "starting an SLI flush");
            for chunk in rows.chunks(TELEMETRY_ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO sli_minutes (node_id, route, scope, minute, total, c5xx, c429, c4xx) ",
                );
                q.push_values(chunk, |mut row, r| {
                    row.push_bind(&r.node_id)
                        .push_bind(&r.route)
                        .push_bind(r.scope)
                        .push_bind(r.minute)
                        .push_bind(r.total)
                        .push_bind(r.c5xx)
                        .push_bind(r.c429)
                        .push_bind(r.c4xx);
                });
                q.push(
                    " ON CONFLICT (node_id, route, scope, minute) DO UPDATE SET \
                     total = excluded.total, c5xx = excluded.c5xx, c429 = excluded.c429, \
                     c4xx = excluded.c4xx",
                );
                q.build()
                    .persistent(false)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| err.db("storing SLI minutes", e))?;
            }
            for chunk in slow.chunks(TELEMETRY_ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO sli_slow_minutes (node_id, route, scope, minute, threshold_us, slow) ",
                );
                q.push_values(chunk, |mut row, (r, t, n)| {
                    row.push_bind(&r.node_id)
                        .push_bind(&r.route)
                        .push_bind(r.scope)
                        .push_bind(r.minute)
                        .push_bind(*t)
                        .push_bind(*n);
                });
                q.push(
                    " ON CONFLICT (node_id, route, scope, minute, threshold_us) DO UPDATE SET \
                     slow = excluded.slow",
                );
                q.build()
                    .persistent(false)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| err.db("storing SLI minutes", e))?;
            }
            tx.commit().await.map_err(|e| err.db("committing an SLI flush", e))
        }
        .await)
    }

    /// The SLI counts of minutes `from <= minute < to`, summed over nodes and over buckets
    /// of `bucket` minutes (1: per minute; 60: per hour, each bucket starting at a minute
    /// divisible by `bucket`), by route, scope and bucket.
    pub async fn sli_sums(
        &self,
        from: i64,
        to: i64,
        bucket: i64,
    ) -> Result<Vec<SliRow>, StoreError> {
        if bucket < 1 {
            return Err(StoreError::Invalid(format!(
                "bucket {bucket} must be at least one minute"
            )));
        }
        let err = self.err();
        // Minutes, and the hours older minutes were rolled up into (an hour row stands at
        // its first minute, so it counts when its start is in the range). PostgreSQL's SUM
        // of BIGINT is NUMERIC: cast back.
        let sums = "SELECT route, scope, (minute / $3) * $3 AS bucket, CAST(SUM(total) AS BIGINT) AS total, \
                    CAST(SUM(c5xx) AS BIGINT) AS c5xx, CAST(SUM(c429) AS BIGINT) AS c429, CAST(SUM(c4xx) AS BIGINT) AS c4xx FROM ( \
                    SELECT route, scope, minute, total, c5xx, c429, c4xx FROM sli_minutes \
                    WHERE minute >= $1 AND minute < $2 UNION ALL \
                    SELECT route, scope, hour, total, c5xx, c429, c4xx FROM sli_hours \
                    WHERE hour >= $1 AND hour < $2) AS m \
                    GROUP BY route, scope, bucket ORDER BY route, scope, bucket";
        let slow = "SELECT route, scope, (minute / $3) * $3 AS bucket, threshold_us, \
                    CAST(SUM(slow) AS BIGINT) AS slow FROM ( \
                    SELECT route, scope, minute, threshold_us, slow FROM sli_slow_minutes \
                    WHERE minute >= $1 AND minute < $2 UNION ALL \
                    SELECT route, scope, hour, threshold_us, slow FROM sli_slow_hours \
                    WHERE hour >= $1 AND hour < $2) AS m \
                    GROUP BY route, scope, bucket, threshold_us \
                    ORDER BY route, scope, bucket, threshold_us";
        let (sums, slow): (Vec<SumRecord>, Vec<SlowRecord>) = with_pool!(self, p => async {
            let a = sqlx::query_as::<_, SumRecord>(sums)
                .bind(from)
                .bind(to)
                .bind(bucket)
                .fetch_all(p)
                .await
                .map_err(|e| err.db("reading SLI minutes", e))?;
            let b = sqlx::query_as::<_, SlowRecord>(slow)
                .bind(from)
                .bind(to)
                .bind(bucket)
                .fetch_all(p)
                .await
                .map_err(|e| err.db("reading SLI minutes", e))?;
            Ok::<_, StoreError>((a, b))
        }
        .await)?;
        let mut out: Vec<SliRow> = sums
            .into_iter()
            .map(|s| SliRow {
                node_id: String::new(),
                route: s.route,
                scope: s.scope,
                minute: s.bucket,
                total: s.total,
                c5xx: s.c5xx,
                c429: s.c429,
                c4xx: s.c4xx,
                slow: Vec::new(),
            })
            .collect();
        // Both lists are ordered by (route, scope, bucket): merge.
        let mut i = 0;
        for s in slow {
            let key = (s.route.as_str(), s.scope, s.bucket);
            while i < out.len() && (out[i].route.as_str(), out[i].scope, out[i].minute) < key {
                i += 1;
            }
            match out.get_mut(i) {
                Some(r) if (r.route.as_str(), r.scope, r.minute) == key => {
                    r.slow.push((s.threshold_us, s.slow));
                }
                _ => {
                    // Slow counts of a bucket without totals (a row written half): kept
                    // with zero totals so nothing is lost.
                    out.insert(
                        i,
                        SliRow {
                            route: s.route,
                            scope: s.scope,
                            minute: s.bucket,
                            slow: vec![(s.threshold_us, s.slow)],
                            ..SliRow::default()
                        },
                    );
                }
            }
        }
        Ok(out)
    }

    /// Rolls the SLI minutes before `before` (a minute number, rounded down to a whole hour
    /// here) up into hours summed over nodes, and deletes them; deletes hours before
    /// `hours_before`. One transaction (with `Some(fence)`: only while that node leads), so
    /// no count is lost or counted twice. Returns the minute rows rolled up.
    pub async fn rollup_sli(
        &self,
        before: i64,
        hours_before: i64,
        fence: Option<&super::Fence>,
    ) -> Result<u64, StoreError> {
        let before = before.div_euclid(60) * 60;
        let err = self.err();
        with_pool!(self, p => async {
            let mut tx = fenced_tx!(self, p, fence, "starting an SLI rollup");
            sqlx::query(
                "INSERT INTO sli_hours (route, scope, hour, total, c5xx, c429, c4xx) \
                 SELECT route, scope, (minute / 60) * 60, SUM(total), SUM(c5xx), SUM(c429), \
                 SUM(c4xx) FROM sli_minutes WHERE minute < $1 \
                 GROUP BY route, scope, (minute / 60) * 60 \
                 ON CONFLICT (route, scope, hour) DO UPDATE SET \
                 total = sli_hours.total + excluded.total, c5xx = sli_hours.c5xx + excluded.c5xx, \
                 c429 = sli_hours.c429 + excluded.c429, c4xx = sli_hours.c4xx + excluded.c4xx",
            )
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(|e| err.db("rolling SLI minutes up", e))?;
            sqlx::query(
                "INSERT INTO sli_slow_hours (route, scope, hour, threshold_us, slow) \
                 SELECT route, scope, (minute / 60) * 60, threshold_us, SUM(slow) \
                 FROM sli_slow_minutes WHERE minute < $1 \
                 GROUP BY route, scope, (minute / 60) * 60, threshold_us \
                 ON CONFLICT (route, scope, hour, threshold_us) DO UPDATE SET \
                 slow = sli_slow_hours.slow + excluded.slow",
            )
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(|e| err.db("rolling SLI minutes up", e))?;
            let rolled = sqlx::query("DELETE FROM sli_minutes WHERE minute < $1")
                .bind(before)
                .execute(&mut *tx)
                .await
                .map_err(|e| err.db("rolling SLI minutes up", e))?
                .rows_affected();
            sqlx::query("DELETE FROM sli_slow_minutes WHERE minute < $1")
                .bind(before)
                .execute(&mut *tx)
                .await
                .map_err(|e| err.db("rolling SLI minutes up", e))?;
            for table in ["sli_hours", "sli_slow_hours"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE hour < $1"))
                    .bind(hours_before)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| err.db("pruning SLI hours", e))?;
            }
            tx.commit().await.map_err(|e| err.db("committing an SLI rollup", e))?;
            Ok(rolled)
        }
        .await)
    }

    /// Publishes SLO evaluations, `(id, data)`, in one transaction of multi-row upserts
    /// (with `Some(fence)`: only while that node leads).
    pub async fn put_slo_statuses(
        &self,
        statuses: &[(String, serde_json::Value)],
        fence: Option<&super::Fence>,
    ) -> Result<(), StoreError> {
        if statuses.is_empty() {
            return Ok(());
        }
        let err = self.err();
        let now = now_sql(self.pool());
        let node = fence.map_or_else(|| self.node().unwrap_or(""), |f| f.node_id.as_str());
        with_pool!(self, p => async {
            let mut tx = fenced_tx!(self, p, fence, "starting a transaction");
            for chunk in statuses.chunks(STATUS_ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO slo_status (slo, node_id, data, updated_at) ",
                );
                q.push_values(chunk, |mut row, (slo, data)| {
                    row.push_bind(slo)
                        .push_bind(node)
                        .push_bind(data)
                        .push(now);
                });
                q.push(
                    " ON CONFLICT (slo) DO UPDATE SET node_id = excluded.node_id, \
                     data = excluded.data, updated_at = excluded.updated_at",
                );
                q.build()
                    .persistent(false)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| err.db("publishing SLO statuses", e))?;
            }
            tx.commit().await.map_err(|e| err.db("publishing SLO statuses", e))
        }
        .await)
    }

    /// Removes the statuses of SLOs no longer configured (leader only with a fence).
    pub async fn retain_slo_statuses(
        &self,
        keep: &[String],
        fence: Option<&super::Fence>,
    ) -> Result<u64, StoreError> {
        let err = self.err();
        with_pool!(self, p => async {
            let mut tx = fenced_tx!(self, p, fence, "starting a transaction");
            let ids: Vec<String> = sqlx::query_scalar("SELECT slo FROM slo_status")
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| err.db("reading SLO statuses", e))?;
            let mut removed = 0;
            for id in ids.iter().filter(|id| !keep.contains(id)) {
                removed += sqlx::query("DELETE FROM slo_status WHERE slo = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| err.db("removing an SLO status", e))?
                    .rows_affected();
            }
            tx.commit().await.map_err(|e| err.db("removing SLO statuses", e))?;
            Ok(removed)
        }
        .await)
    }

    /// Every published SLO status, by SLO id.
    pub async fn slo_statuses(&self) -> Result<Vec<SloStatusRow>, StoreError> {
        let err = self.err();
        with_pool!(self, p => {
            sqlx::query_as::<_, SloStatusRow>(
                "SELECT slo, node_id, data, updated_at FROM slo_status ORDER BY slo",
            )
            .fetch_all(p)
            .await
        })
        .map_err(|e| err.db("reading SLO statuses", e))
    }
}
