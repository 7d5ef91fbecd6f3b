//! Fleet mode: what lets several gateways (nodes) on one store act as one. The revision
//! every node follows (read with [`Store::sync_state`], announced by PostgreSQL
//! `NOTIFY` and heard through a [`RevisionListener`] on a connection of its own), the node
//! registry, the leader lease with its fencing epoch, each node's per-second traffic
//! numbers, the webhook cursor and the rollout status the leader publishes.
//!
//! Times in the fleet tables come from the database's clock on PostgreSQL (so nodes on
//! machines whose clocks disagree still agree on who is alive and whose lease expired) and
//! from this process's clock on SQLite (one node, the same machine).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use crate::store::{Pool, Store};
use crate::types::{FlagOverrideRow, RouteOverride};
use crate::StoreError;

/// The PostgreSQL channel every write that advances the revision notifies.
pub const NOTIFY_CHANNEL: &str = "ficus_revision";
/// `application_name` of the LISTEN connection (`pg_stat_activity` shows it), followed by
/// the store's schema (`public` without one).
pub const LISTENER_APPLICATION: &str = "ficus-listener";
/// Telemetry rows in one multi-row INSERT (13 parameters each).
const TELEMETRY_ROWS_PER_INSERT: usize = 500;
/// Largest page of [`Store::telemetry_after`].
pub const MAX_TELEMETRY_PAGE: u32 = 10_000;

const NOW_PG: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";
const NOW_SQLITE: &str = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";

/// What a leader-only write proves it may do: the node and the lease epoch it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    pub node_id: String,
    pub epoch: i64,
}

/// What a node compares with what it runs, read in this order (the revision first, so the
/// rest is at least as new as it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncState {
    pub revision: i64,
    /// Unix ms of the write that made this revision.
    pub revision_at: i64,
    pub latest_version: Option<i64>,
    pub latest_sha256: Option<String>,
    pub overrides: Vec<RouteOverride>,
    pub flag_overrides: Vec<FlagOverrideRow>,
    /// The largest event id (0 without events).
    pub last_event_id: i64,
}

/// A node as it registers at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRegistration {
    /// Unique per process: a restarted node registers again under a new id.
    pub id: String,
    pub name: String,
    pub host: String,
    pub pid: i64,
    pub version: String,
    pub admin_url: Option<String>,
}

/// What a node reports at each heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeBeat {
    /// The revision it has applied, and when (unix ms, its own clock).
    pub revision: i64,
    pub applied_at: i64,
    /// From the commit of that revision to its applying here (ms).
    pub apply_lag_ms: i64,
    pub config_version: Option<i64>,
    /// Requests per second it served over the last seconds.
    pub rate: f64,
    /// Why its own config file differs from what the fleet runs, if it does.
    pub drift: Option<String>,
}

/// One row of the node registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct NodeRow {
    pub id: String,
    pub seq: i64,
    pub name: String,
    pub host: String,
    pub pid: i64,
    pub version: String,
    pub admin_url: Option<String>,
    pub started_at: i64,
    pub heartbeat_at: i64,
    pub revision: i64,
    pub applied_at: i64,
    pub apply_lag_ms: i64,
    pub config_version: Option<i64>,
    pub rate: f64,
    pub drift: Option<String>,
    /// Set when the node stopped cleanly.
    pub stopped_at: Option<i64>,
}

/// The leader lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct LeaderRow {
    pub node_id: Option<String>,
    pub epoch: i64,
    pub expires_at: i64,
    pub acquired_at: i64,
}

/// The registry, the lease and the revision, read together with the database's clock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetState {
    /// The database's clock (unix ms) when this was read: compare heartbeats with it.
    pub now: i64,
    pub revision: i64,
    pub revision_at: i64,
    pub leader: LeaderRow,
    /// Oldest registration first.
    pub nodes: Vec<NodeRow>,
}

/// One closed second (or, in [`TelemetryMinute`], minute) of one side of one route on one
/// node: counts by status class (1xx..5xx), fallbacks, latency sum, and the sparse fine
/// histogram in the encoding of `ficus_telemetry` (opaque to the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TelemetrySlot {
    pub node_id: String,
    pub route: String,
    /// 0 legacy, 1 modern.
    pub side: i16,
    /// Unix seconds at the end of the slot (per-second rows) or the minute number
    /// (unix seconds / 60, per-minute rows).
    pub at: i64,
    pub by_class: [i64; 5],
    pub fallbacks: i64,
    pub latency_sum_us: i64,
    pub hist: Vec<u8>,
}

/// What retention removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    pub seconds: u64,
    pub minutes: u64,
    pub nodes: u64,
}

/// One route's rollout status as the leader last published it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct RolloutStatusRow {
    pub route: String,
    pub node_id: String,
    pub data: serde_json::Value,
    pub updated_at: i64,
}

/// Where the LISTEN connection goes.
#[derive(Debug, Clone)]
pub(crate) struct ListenTarget {
    pub options: PgConnectOptions,
    pub schema: Option<String>,
}

/// `SCHEMA:REVISION`: one channel serves every store in the database, and a node keeps only
/// its own schema's notices (a few bytes, far below PostgreSQL's 8000-byte payload limit).
pub(crate) fn notify_payload(target: Option<&ListenTarget>, revision: i64) -> String {
    let schema = target.and_then(|t| t.schema.as_deref()).unwrap_or("");
    format!("{schema}:{revision}")
}

/// What a [`RevisionListener`] heard.
#[derive(Debug)]
pub enum Notice {
    /// A write advanced the revision to this.
    Revision(i64),
    /// The LISTEN connection is (again) up: notices may have been missed meanwhile, so
    /// resynchronise fully.
    Reconnected,
    /// The LISTEN connection is down; call `next` again after a pause to reconnect.
    Lost(StoreError),
}

/// A dedicated PostgreSQL connection, outside the pool, that LISTENs for revisions.
pub struct RevisionListener {
    store: Store,
    target: ListenTarget,
    listener: Option<PgListener>,
}

impl RevisionListener {
    /// Waits for the next notice. The first call connects (and says `Reconnected`).
    pub async fn next(&mut self) -> Notice {
        let err = self.store.err().clone();
        let Some(listener) = self.listener.as_mut() else {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(err.connect_timeout)
                .connect_lazy_with(self.target.options.clone());
            let connected = async {
                let mut l = PgListener::connect_with(&pool).await?;
                l.listen(NOTIFY_CHANNEL).await?;
                Ok::<_, sqlx::Error>(l)
            }
            .await;
            return match connected {
                Ok(l) => {
                    self.listener = Some(l);
                    Notice::Reconnected
                }
                Err(e) => Notice::Lost(err.db("listening for revisions", e)),
            };
        };
        let schema = self.target.schema.as_deref().unwrap_or("");
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    let Some((s, rev)) = n.payload().rsplit_once(':') else {
                        continue;
                    };
                    if s != schema {
                        continue;
                    }
                    if let Ok(rev) = rev.parse() {
                        return Notice::Revision(rev);
                    }
                }
                // sqlx reconnected at once (and LISTENs again).
                Ok(None) => return Notice::Reconnected,
                Err(e) => {
                    // A terminated backend answers with an error, not a clean close: start
                    // over with a fresh connection on the next call.
                    self.listener = None;
                    return Notice::Lost(err.db("listening for revisions", e));
                }
            }
        }
    }
}

fn now_sql(pool: &Pool) -> &'static str {
    match pool {
        Pool::Sqlite(_) => NOW_SQLITE,
        Pool::Postgres(_) => NOW_PG,
    }
}

/// Runs `$body` with `$pool` bound to the store's pool, once per backend.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store.pool() {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

/// Opens a write transaction on `$p` (SQLite: `BEGIN IMMEDIATE`, so the write lock is taken
/// before anything is read) and checks the leader fence in it, when there is one.
macro_rules! fenced_tx {
    ($store:expr, $p:ident, $fence:expr, $doing:expr) => {{
        let store: &Store = $store;
        let (begin, pg) = match store.pool() {
            Pool::Sqlite(_) => ("BEGIN IMMEDIATE", false),
            Pool::Postgres(_) => ("BEGIN", true),
        };
        let mut tx = $p
            .begin_with(begin)
            .await
            .map_err(|e| store.err().db($doing, e))?;
        check_fence!(store, tx, $fence, pg);
        tx
    }};
}

// After the macros, which it uses.
mod slo;
pub use slo::{SliRow, SloStatusRow, MAX_SLI_THRESHOLDS};

/// Binds a telemetry row's columns, from `node_id` to `hist`, in table order.
macro_rules! push_slot {
    ($row:ident, $s:expr) => {{
        let s: &TelemetrySlot = $s;
        $row.push_bind(&s.node_id)
            .push_bind(&s.route)
            .push_bind(s.side)
            .push_bind(s.at)
            .push_bind(s.by_class[0])
            .push_bind(s.by_class[1])
            .push_bind(s.by_class[2])
            .push_bind(s.by_class[3])
            .push_bind(s.by_class[4])
            .push_bind(s.fallbacks)
            .push_bind(s.latency_sum_us)
            .push_bind(&s.hist);
    }};
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// A LISTEN connection for revisions (PostgreSQL); `None` on SQLite, where the one node
    /// is the only writer and polling suffices.
    pub fn listen(&self) -> Option<RevisionListener> {
        let target = self.listen_target()?.clone();
        Some(RevisionListener {
            store: self.clone(),
            target,
            listener: None,
        })
    }

    /// The revision, the latest config version, the overrides and the last event id.
    pub async fn sync_state(&self) -> Result<SyncState, StoreError> {
        let err = self.err();
        with_pool!(self, p => async {
            let (revision, revision_at): (i64, i64) =
                sqlx::query_as("SELECT revision, revision_at FROM store_meta WHERE id = 1")
                    .fetch_one(p)
                    .await
                    .map_err(|e| err.db("reading the store's revision", e))?;
            let latest: Option<(i64, String)> = sqlx::query_as(
                "SELECT number, sha256 FROM config_versions ORDER BY number DESC LIMIT 1",
            )
            .fetch_optional(p)
            .await
            .map_err(|e| err.db("reading the latest config version", e))?;
            let overrides = sqlx::query_as::<_, RouteOverride>(
                "SELECT route, stage, weight_bp, updated_at, event_id FROM route_overrides \
                 ORDER BY route",
            )
            .fetch_all(p)
            .await
            .map_err(|e| err.db("reading route overrides", e))?;
            let flag_overrides =
                sqlx::query_as::<_, FlagOverrideRow>(crate::store::SELECT_FLAG_OVERRIDES)
                    .fetch_all(p)
                    .await
                    .map_err(|e| err.db("reading flag overrides", e))?;
            let last_event_id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM events")
                .fetch_one(p)
                .await
                .map_err(|e| err.db("reading the last event id", e))?;
            Ok(SyncState {
                revision,
                revision_at,
                latest_version: latest.as_ref().map(|l| l.0),
                latest_sha256: latest.map(|l| l.1),
                overrides,
                flag_overrides,
                last_event_id: last_event_id.unwrap_or(0),
            })
        }
        .await)
    }

    /// Records a starting node; returns its `seq` (unique for ever, also across restarts).
    pub async fn register_node(&self, node: &NodeRegistration) -> Result<i64, StoreError> {
        crate::validate::node(node)?;
        let err = self.err();
        let now = now_sql(self.pool());
        let sql = format!(
            "INSERT INTO fleet_nodes (id, seq, name, host, pid, version, admin_url, \
             started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6, $7, {now}, {now})"
        );
        with_pool!(self, p => async {
            let mut tx = p.begin().await.map_err(|e| err.db("starting a transaction", e))?;
            let seq: i64 = sqlx::query_scalar(
                "UPDATE store_meta SET node_seq = node_seq + 1 WHERE id = 1 RETURNING node_seq",
            )
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| err.db("numbering the node", e))?;
            sqlx::query(&sql)
                .bind(&node.id)
                .bind(seq)
                .bind(&node.name)
                .bind(&node.host)
                .bind(node.pid)
                .bind(&node.version)
                .bind(&node.admin_url)
                .execute(&mut *tx)
                .await
                .map_err(|e| err.db("registering the node", e))?;
            tx.commit().await.map_err(|e| err.db("registering the node", e))?;
            Ok(seq)
        }
        .await)
    }

    /// A node's heartbeat. `Ok(false)` when its row is gone (pruned while the node could not
    /// reach the store): register again.
    pub async fn heartbeat(&self, node_id: &str, beat: &NodeBeat) -> Result<bool, StoreError> {
        if !beat.rate.is_finite() || beat.rate < 0.0 {
            return Err(StoreError::Invalid(format!(
                "node {node_id}: rate {} is not a finite number >= 0",
                beat.rate
            )));
        }
        let err = self.err();
        let now = now_sql(self.pool());
        let sql = format!(
            "UPDATE fleet_nodes SET heartbeat_at = {now}, revision = $2, applied_at = $3, \
             config_version = $4, rate = $5, drift = $6, apply_lag_ms = $7, stopped_at = NULL \
             WHERE id = $1"
        );
        let n = with_pool!(self, p => {
            sqlx::query(&sql)
                .bind(node_id)
                .bind(beat.revision)
                .bind(beat.applied_at)
                .bind(beat.config_version)
                .bind(beat.rate)
                .bind(&beat.drift)
                .bind(beat.apply_lag_ms)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(|e| err.db("recording the node's heartbeat", e))?;
        Ok(n == 1)
    }

    /// Marks a node as stopped cleanly (it shows as stopped, not down) and gives up its
    /// lease if it held it, so another node takes over at once.
    pub async fn node_stopped(&self, node_id: &str) -> Result<(), StoreError> {
        let err = self.err();
        let now = now_sql(self.pool());
        let stop = format!("UPDATE fleet_nodes SET stopped_at = {now} WHERE id = $1");
        let release = "UPDATE fleet_leader SET expires_at = 0 WHERE id = 1 AND node_id = $1";
        with_pool!(self, p => async {
            sqlx::query(&stop).bind(node_id).execute(p).await?;
            sqlx::query(release).bind(node_id).execute(p).await?;
            Ok::<_, sqlx::Error>(())
        }
        .await)
        .map_err(|e| err.db("recording the node's stop", e))
    }

    /// The registry, the lease and the revision, with the database's clock.
    pub async fn fleet(&self) -> Result<FleetState, StoreError> {
        let err = self.err();
        let now = now_sql(self.pool());
        let meta = format!("SELECT revision, revision_at, {now} FROM store_meta WHERE id = 1");
        with_pool!(self, p => async {
            let (revision, revision_at, now): (i64, i64, i64) = sqlx::query_as(&meta)
                .fetch_one(p)
                .await
                .map_err(|e| err.db("reading the store's revision", e))?;
            let leader = sqlx::query_as::<_, LeaderRow>(
                "SELECT node_id, epoch, expires_at, acquired_at FROM fleet_leader WHERE id = 1",
            )
            .fetch_one(p)
            .await
            .map_err(|e| err.db("reading the leader lease", e))?;
            let nodes = sqlx::query_as::<_, NodeRow>(
                "SELECT id, seq, name, host, pid, version, admin_url, started_at, \
                 heartbeat_at, revision, applied_at, apply_lag_ms, config_version, rate, drift, \
                 stopped_at FROM fleet_nodes ORDER BY seq",
            )
            .fetch_all(p)
            .await
            .map_err(|e| err.db("reading the node registry", e))?;
            Ok(FleetState {
                now,
                revision,
                revision_at,
                leader,
                nodes,
            })
        }
        .await)
    }

    /// Takes the leader lease when it is free or expired (a new epoch), or renews it when
    /// `node_id` holds it, for `lease` from now (the database's clock). `Some(epoch)` while
    /// `node_id` holds it after the call, `None` when another node does.
    pub async fn acquire_lease(
        &self,
        node_id: &str,
        lease: Duration,
    ) -> Result<Option<i64>, StoreError> {
        let err = self.err();
        let now = now_sql(self.pool());
        let sql = format!(
            "UPDATE fleet_leader SET \
             epoch = CASE WHEN node_id = $1 THEN epoch ELSE epoch + 1 END, \
             acquired_at = CASE WHEN node_id = $1 THEN acquired_at ELSE {now} END, \
             node_id = $1, expires_at = {now} + $2 \
             WHERE id = 1 AND (node_id IS NULL OR node_id = $1 OR expires_at < {now}) \
             RETURNING epoch"
        );
        with_pool!(self, p => {
            sqlx::query_scalar::<_, i64>(&sql)
                .bind(node_id)
                .bind(ms(lease))
                .fetch_optional(p)
                .await
        })
        .map_err(|e| err.db("taking the leader lease", e))
    }

    /// Takes the leader lease whoever holds it (a new epoch): for a node that knows it is
    /// alone, a SQLite store's one gateway (it holds the file's lock), after a restart
    /// that left its old lease behind.
    pub async fn force_lease(&self, node_id: &str, lease: Duration) -> Result<i64, StoreError> {
        let err = self.err();
        let now = now_sql(self.pool());
        let sql = format!(
            "UPDATE fleet_leader SET epoch = epoch + 1, acquired_at = {now}, node_id = $1, \
             expires_at = {now} + $2 WHERE id = 1 RETURNING epoch"
        );
        with_pool!(self, p => {
            sqlx::query_scalar::<_, i64>(&sql)
                .bind(node_id)
                .bind(ms(lease))
                .fetch_one(p)
                .await
        })
        .map_err(|e| err.db("taking the leader lease", e))
    }

    /// Writes this node's closed seconds (each exactly once: a retried flush skips the
    /// seconds already stored) and rewrites its per-minute rows, in one transaction.
    /// Flushes serialise on one row, so the seconds' `seq` becomes visible in ascending
    /// order and [`Store::telemetry_after`] never skips one.
    pub async fn flush_telemetry(
        &self,
        seconds: &[TelemetrySlot],
        minutes: &[TelemetrySlot],
    ) -> Result<(), StoreError> {
        for s in seconds.iter().chain(minutes) {
            crate::validate::telemetry_slot(s)?;
        }
        if seconds.is_empty() && minutes.is_empty() {
            return Ok(());
        }
        let err = self.err();
        let n = i64::try_from(seconds.len()).unwrap_or(i64::MAX);
        with_pool!(self, p => async {
            // One writer at a time on SQLite: the lock is taken before the counter is read.
            let mut tx = fenced_tx!(self, p, None, "starting a telemetry flush");
            // Locks the counter row until commit: flushes take turns, seqs commit in order.
            let last: i64 = sqlx::query_scalar(
                "UPDATE telemetry_meta SET seq = seq + $1 WHERE id = 1 RETURNING seq",
            )
            .bind(n)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| err.db("numbering telemetry rows", e))?;
            let first = last - n + 1;
            let numbered: Vec<(i64, &TelemetrySlot)> =
                seconds.iter().enumerate().map(|(i, s)| (first + i as i64, s)).collect();
            for chunk in numbered.chunks(TELEMETRY_ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO telemetry_seconds (seq, node_id, route, side, at_s, c1xx, \
                     c2xx, c3xx, c4xx, c5xx, fallbacks, latency_sum_us, hist) ",
                );
                q.push_values(chunk, |mut row, (seq, s)| {
                    row.push_bind(*seq);
                    push_slot!(row, s);
                });
                q.push(" ON CONFLICT (node_id, route, side, at_s) DO NOTHING");
                q.build()
                    .persistent(false)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| err.db("storing telemetry seconds", e))?;
            }
            for chunk in minutes.chunks(TELEMETRY_ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO telemetry_minutes (node_id, route, side, minute, c1xx, c2xx, \
                     c3xx, c4xx, c5xx, fallbacks, latency_sum_us, hist) ",
                );
                q.push_values(chunk, |mut row, s| {
                    push_slot!(row, s);
                });
                q.push(
                    " ON CONFLICT (node_id, route, side, minute) DO UPDATE SET \
                     c1xx = excluded.c1xx, c2xx = excluded.c2xx, c3xx = excluded.c3xx, \
                     c4xx = excluded.c4xx, c5xx = excluded.c5xx, \
                     fallbacks = excluded.fallbacks, \
                     latency_sum_us = excluded.latency_sum_us, hist = excluded.hist",
                );
                q.build()
                    .persistent(false)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| err.db("storing telemetry minutes", e))?;
            }
            tx.commit().await.map_err(|e| err.db("committing a telemetry flush", e))
        }
        .await)
    }

    /// Per-second rows with `seq > after`, ascending, of every node but `except` (a node
    /// reads the others'), at most `limit` (1..=[`MAX_TELEMETRY_PAGE`]). Tail with the
    /// last row's seq.
    pub async fn telemetry_after(
        &self,
        after: i64,
        except: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(i64, TelemetrySlot)>, StoreError> {
        if limit == 0 || limit > MAX_TELEMETRY_PAGE {
            return Err(StoreError::Invalid(format!(
                "limit {limit} is out of range; use 1 to {MAX_TELEMETRY_PAGE}"
            )));
        }
        let err = self.err();
        let sql = "SELECT seq, node_id, route, side, at_s, c1xx, c2xx, c3xx, c4xx, c5xx, \
                   fallbacks, latency_sum_us, hist FROM telemetry_seconds \
                   WHERE seq > $1 AND node_id <> $2 ORDER BY seq LIMIT $3";
        let rows: Vec<SlotRecord> = with_pool!(self, p => {
            sqlx::query_as::<_, SlotRecord>(sql)
                .bind(after)
                .bind(except.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(p)
                .await
        })
        .map_err(|e| err.db("reading telemetry seconds", e))?;
        Ok(rows.into_iter().map(SlotRecord::into_slot).collect())
    }

    /// Per-minute rows of every node with `minute >= since` (unix seconds / 60), by minute,
    /// then node, route and side.
    pub async fn telemetry_minutes(&self, since: i64) -> Result<Vec<TelemetrySlot>, StoreError> {
        let err = self.err();
        let sql = "SELECT CAST(0 AS BIGINT) AS seq, node_id, route, side, minute AS at_s, c1xx, c2xx, c3xx, \
                   c4xx, c5xx, fallbacks, latency_sum_us, hist FROM telemetry_minutes \
                   WHERE minute >= $1 ORDER BY minute, node_id, route, side";
        let rows: Vec<SlotRecord> = with_pool!(self, p => {
            sqlx::query_as::<_, SlotRecord>(sql).bind(since).fetch_all(p).await
        })
        .map_err(|e| err.db("reading telemetry minutes", e))?;
        Ok(rows.into_iter().map(|r| r.into_slot().1).collect())
    }

    /// Retention: per-second rows older than `seconds_before` (unix s), per-minute rows
    /// older than `minutes_before` (minute number), and nodes silent since `nodes_before`
    /// (unix ms, database clock). With `Some(fence)`: only while that node leads.
    pub async fn prune_fleet(
        &self,
        seconds_before: i64,
        minutes_before: i64,
        nodes_before: i64,
        fence: Option<&Fence>,
    ) -> Result<Pruned, StoreError> {
        let err = self.err();
        with_pool!(self, p => async {
            let mut tx = fenced_tx!(self, p, fence, "starting retention");
            let seconds = sqlx::query("DELETE FROM telemetry_seconds WHERE at_s < $1")
                .bind(seconds_before)
                .execute(&mut *tx)
                .await
                .map_err(|e| err.db("pruning telemetry seconds", e))?
                .rows_affected();
            let minutes = sqlx::query("DELETE FROM telemetry_minutes WHERE minute < $1")
                .bind(minutes_before)
                .execute(&mut *tx)
                .await
                .map_err(|e| err.db("pruning telemetry minutes", e))?
                .rows_affected();
            let nodes = sqlx::query("DELETE FROM fleet_nodes WHERE heartbeat_at < $1")
                .bind(nodes_before)
                .execute(&mut *tx)
                .await
                .map_err(|e| err.db("pruning silent nodes", e))?
                .rows_affected();
            tx.commit().await.map_err(|e| err.db("committing retention", e))?;
            Ok(Pruned { seconds, minutes, nodes })
        }
        .await)
    }

    /// The store's revision alone: the cheap check a node polls.
    pub async fn revision(&self) -> Result<i64, StoreError> {
        let err = self.err();
        with_pool!(self, p => {
            sqlx::query_scalar::<_, i64>("SELECT revision FROM store_meta WHERE id = 1")
                .fetch_one(p)
                .await
        })
        .map_err(|e| err.db("reading the store's revision", e))
    }

    /// The last event handed to the webhook receivers.
    pub async fn webhook_cursor(&self) -> Result<i64, StoreError> {
        let err = self.err();
        with_pool!(self, p => {
            sqlx::query_scalar::<_, i64>("SELECT event_id FROM webhook_cursor WHERE id = 1")
                .fetch_one(p)
                .await
        })
        .map_err(|e| err.db("reading the webhook cursor", e))
    }

    /// Moves the webhook cursor (it never goes back). With `Some(fence)`: only while that
    /// node still leads.
    pub async fn set_webhook_cursor(
        &self,
        event_id: i64,
        fence: Option<&Fence>,
    ) -> Result<(), StoreError> {
        let err = self.err();
        with_pool!(self, p => async {
            let mut tx = fenced_tx!(self, p, fence, "starting a transaction");
            sqlx::query(
                "UPDATE webhook_cursor SET event_id = $1 WHERE id = 1 AND event_id < $1",
            )
            .bind(event_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| err.db("moving the webhook cursor", e))?;
            tx.commit().await.map_err(|e| err.db("moving the webhook cursor", e))
        }
        .await)
    }

    /// Publishes a route's rollout status (with `Some(fence)`: only while that node leads).
    pub async fn put_rollout_status(
        &self,
        route: &str,
        data: &serde_json::Value,
        fence: Option<&Fence>,
    ) -> Result<(), StoreError> {
        let err = self.err();
        let now = now_sql(self.pool());
        let sql = format!(
            "INSERT INTO rollout_status (route, node_id, data, updated_at) \
             VALUES ($1, $2, $3, {now}) ON CONFLICT (route) DO UPDATE SET \
             node_id = excluded.node_id, data = excluded.data, updated_at = excluded.updated_at"
        );
        with_pool!(self, p => async {
            let mut tx = fenced_tx!(self, p, fence, "starting a transaction");
            sqlx::query(&sql)
                .bind(route)
                .bind(fence.map_or_else(|| self.node().unwrap_or(""), |f| f.node_id.as_str()))
                .bind(data)
                .execute(&mut *tx)
                .await
                .map_err(|e| err.db("publishing a rollout status", e))?;
            tx.commit().await.map_err(|e| err.db("publishing a rollout status", e))
        }
        .await)
    }

    /// Every published rollout status, by route.
    pub async fn rollout_statuses(&self) -> Result<Vec<RolloutStatusRow>, StoreError> {
        let err = self.err();
        with_pool!(self, p => {
            sqlx::query_as::<_, RolloutStatusRow>(
                "SELECT route, node_id, data, updated_at FROM rollout_status ORDER BY route",
            )
            .fetch_all(p)
            .await
        })
        .map_err(|e| err.db("reading rollout statuses", e))
    }
}

#[derive(sqlx::FromRow)]
struct SlotRecord {
    seq: i64,
    node_id: String,
    route: String,
    side: i16,
    at_s: i64,
    c1xx: i64,
    c2xx: i64,
    c3xx: i64,
    c4xx: i64,
    c5xx: i64,
    fallbacks: i64,
    latency_sum_us: i64,
    hist: Vec<u8>,
}

impl SlotRecord {
    fn into_slot(self) -> (i64, TelemetrySlot) {
        (
            self.seq,
            TelemetrySlot {
                node_id: self.node_id,
                route: self.route,
                side: self.side,
                at: self.at_s,
                by_class: [self.c1xx, self.c2xx, self.c3xx, self.c4xx, self.c5xx],
                fallbacks: self.fallbacks,
                latency_sum_us: self.latency_sum_us,
                hist: self.hist,
            },
        )
    }
}
