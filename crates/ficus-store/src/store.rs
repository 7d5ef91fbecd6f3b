//! The `Store`: opening and migrating a database, the reads, and the one atomic write path.
//!
//! The store holds an enum of two typed pools rather than sqlx's `Any` driver. `Any` does
//! run migrations, but one folder would have to fit both dialects (an identity column,
//! jsonb, plpgsql triggers vs SQLite's AUTOINCREMENT, STRICT tables and RAISE), and the
//! parts that matter most differ per backend anyway: SQLite needs `BEGIN IMMEDIATE`, WAL
//! and its pragmas, PostgreSQL a row lock, a search_path and server-side timeouts. The
//! query text itself is shared: both drivers accept `$1`-style parameters, and `on_pool!`
//! expands each query once per pool so both are type-checked.

use std::collections::btree_map::{BTreeMap, Entry};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::Connection;

use crate::error::ErrorContext;
use crate::options::{DEFAULT_PG_CONNECTIONS, DEFAULT_SQLITE_CONNECTIONS};
use crate::target::{self, Target};
use crate::types::*;
use crate::{validate, StoreError, StoreOptions};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static PG_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// A handle on the state store; cheap to clone (the clones share one pool).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    err: ErrorContext,
    /// The node (gateway process) this handle writes for: stamped on every event it
    /// appends, and left out when it tails the events of others. Set once.
    node: std::sync::OnceLock<String>,
    /// PostgreSQL only: how to open the dedicated LISTEN connection, and the schema that
    /// tells this store's notifications from those of other stores in the same database.
    listen: Option<crate::fleet::ListenTarget>,
    /// SQLite on a file: its path (for the one-node lock).
    sqlite_file: Option<std::path::PathBuf>,
    /// SQLite only: writers of this process queue here (in order, bounded by
    /// busy_timeout) before `BEGIN IMMEDIATE`, instead of all polling SQLite's busy handler
    /// at once. Writers of other processes are still held off by SQLite's own lock.
    write_queue: tokio::sync::Mutex<()>,
}

pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool the store has; the body is compiled
/// once per backend.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.inner.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

const SELECT_VERSION: &str =
    "SELECT number, sha256, text, author, message, created_at FROM config_versions";
const SELECT_EVENT: &str =
    "SELECT id, at, actor, kind, route, message, config_version, data, node FROM events";
const SELECT_VERIFY_RUN: &str = "SELECT id, job, route, source_table, target_table, \
     started_at, finished_at, outcome, rows_compared, missing, extra, changed, error, report, \
     mode, fingerprint, bound, watermark FROM verify_runs";
const INSERT_VERIFY_RUN: &str = "INSERT INTO verify_runs (job, route, source_table, \
     target_table, started_at, finished_at, outcome, rows_compared, missing, extra, changed, \
     error, report, mode, fingerprint, bound, watermark) VALUES ($1, $2, $3, $4, $5, $6, $7, \
     $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id";
// A run that finished (whatever it found) leaves nothing to resume.
const DELETE_VERIFY_PROGRESS: &str = "DELETE FROM verify_progress WHERE job = $1";
const SELECT_VERIFY_PROGRESS: &str = "SELECT job, fingerprint, mode, started_at, updated_at, \
     segments_done, checkpoint FROM verify_progress WHERE job = $1";
const UPSERT_VERIFY_PROGRESS: &str = "INSERT INTO verify_progress (job, fingerprint, mode, \
     started_at, updated_at, segments_done, checkpoint) VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (job) DO UPDATE SET fingerprint = excluded.fingerprint, mode = excluded.mode, \
     started_at = excluded.started_at, updated_at = excluded.updated_at, \
     segments_done = excluded.segments_done, checkpoint = excluded.checkpoint";
// Inside a commit: serialises PostgreSQL writers (see store_meta in the migration).
const LOCK_META_PG: &str = "SELECT id FROM store_meta WHERE id = 1 FOR UPDATE";
const LATEST_NUMBER: &str = "SELECT MAX(number) FROM config_versions";
const INSERT_VERSION: &str = "INSERT INTO config_versions \
     (number, sha256, text, author, message, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
const INSERT_EVENT: &str = "INSERT INTO events \
     (at, actor, kind, route, message, config_version, data, node) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";
// Every write another node must act on advances the revision, in its own transaction.
const BUMP_REVISION: &str = "UPDATE store_meta SET revision = revision + 1, revision_at = $1 \
     WHERE id = 1 RETURNING revision";
// PostgreSQL delivers it to every LISTENing node when the transaction commits.
const NOTIFY_REVISION: &str = "SELECT pg_notify($1, $2)";
// A NULL field keeps the route's current value (OverrideChange::Set merges).
const UPSERT_OVERRIDE: &str = "INSERT INTO route_overrides \
     (route, stage, weight_bp, updated_at, event_id) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (route) DO UPDATE SET \
     stage = COALESCE(excluded.stage, route_overrides.stage), \
     weight_bp = COALESCE(excluded.weight_bp, route_overrides.weight_bp), \
     updated_at = excluded.updated_at, event_id = excluded.event_id";

// The same for flags.
const UPSERT_FLAG_OVERRIDE: &str = "INSERT INTO flag_overrides \
     (flag, variant, enabled, updated_at, event_id) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (flag) DO UPDATE SET \
     variant = COALESCE(excluded.variant, flag_overrides.variant), \
     enabled = COALESCE(excluded.enabled, flag_overrides.enabled), \
     updated_at = excluded.updated_at, event_id = excluded.event_id";
pub(crate) const SELECT_FLAG_OVERRIDES: &str =
    "SELECT flag, variant, enabled, updated_at, event_id FROM flag_overrides ORDER BY flag";

const SELECT_SHADOW_ENDPOINT: &str = "SELECT route, endpoint, compared, differing, \
     noise_compared, noise_differing, last_ms FROM shadow_endpoints";
const SELECT_SHADOW_FIELD: &str = "SELECT route, endpoint, path, kind, differing, \
     noise_differing, last_ms FROM shadow_fields";
const SELECT_SHADOW_SAMPLE: &str =
    "SELECT id, route, endpoint, path, kind, at_ms, data FROM shadow_samples";
// The VALUES of these inserts are pushed per chunk; the upserts add the deltas to the stored
// counters and keep the later time, in one statement (atomic under concurrency).
const INSERT_SHADOW_ENDPOINTS: &str = "INSERT INTO shadow_endpoints \
     (route, endpoint, compared, differing, noise_compared, noise_differing, last_ms) ";
const UPSERT_SHADOW_ENDPOINTS: &str = " ON CONFLICT (route, endpoint) DO UPDATE SET \
     compared = shadow_endpoints.compared + excluded.compared, \
     differing = shadow_endpoints.differing + excluded.differing, \
     noise_compared = shadow_endpoints.noise_compared + excluded.noise_compared, \
     noise_differing = shadow_endpoints.noise_differing + excluded.noise_differing, \
     last_ms = CASE WHEN excluded.last_ms > shadow_endpoints.last_ms \
     THEN excluded.last_ms ELSE shadow_endpoints.last_ms END";
const INSERT_SHADOW_FIELDS: &str = "INSERT INTO shadow_fields \
     (route, endpoint, path, kind, differing, noise_differing, last_ms) ";
const UPSERT_SHADOW_FIELDS: &str = " ON CONFLICT (route, endpoint, path, kind) DO UPDATE SET \
     differing = shadow_fields.differing + excluded.differing, \
     noise_differing = shadow_fields.noise_differing + excluded.noise_differing, \
     last_ms = CASE WHEN excluded.last_ms > shadow_fields.last_ms \
     THEN excluded.last_ms ELSE shadow_fields.last_ms END";
const INSERT_SHADOW_SAMPLES: &str =
    "INSERT INTO shadow_samples (id, route, endpoint, path, kind, at_ms, data) ";
// A sample id that is already stored: a retried flush; the stored sample stays.
const KEEP_SHADOW_SAMPLES: &str = " ON CONFLICT (id) DO NOTHING";
const DELETE_SHADOW_ENDPOINTS: &str = "DELETE FROM shadow_endpoints WHERE route = $1";
const DELETE_SHADOW_FIELDS: &str = "DELETE FROM shadow_fields WHERE route = $1";
const DELETE_SHADOW_SAMPLES: &str = "DELETE FROM shadow_samples WHERE route = $1";
/// Rows per multi-row INSERT of counters (7 parameters each: far below SQLite's 32766 and
/// PostgreSQL's 65535 bind parameters per statement).
const SHADOW_ROWS_PER_INSERT: usize = 1000;
/// Samples per multi-row INSERT: with data of up to `MAX_SHADOW_SAMPLE_BYTES` each, a
/// statement stays far below PostgreSQL's 1 GiB message limit.
const SHADOW_SAMPLES_PER_INSERT: usize = 100;

/// Runs `$body` on a write transaction `$tx` that holds the store's write lock, as a commit
/// does (SQLite: this process's writer queue, then `BEGIN IMMEDIATE`; PostgreSQL: the
/// `store_meta` row lock), then commits. A `?` in the body returns from the calling
/// function and leaves the transaction to be rolled back when it is dropped. The body is
/// compiled once per backend.
macro_rules! in_write_tx {
    ($store:expr, $doing:expr, $tx:ident => $body:expr) => {
        in_write_tx!($store, $doing, false, $tx => $body)
    };
    ($store:expr, $doing:expr, $bump:expr, $tx:ident => $body:expr) => {{
        let store: &Store = $store;
        let doing: &str = $doing;
        let bump: bool = $bump;
        let err = store.err();
        match &store.inner.pool {
            Pool::Sqlite(pool) => {
                let _queued = store.queue_writer(doing).await?;
                let mut $tx = pool
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(|e| err.db("starting a write transaction", e))?;
                let out = $body;
                if bump {
                    bump_revision!(store, $tx, false);
                }
                $tx.commit()
                    .await
                    .map_err(|e| err.db(&format!("committing ({doing})"), e))?;
                out
            }
            Pool::Postgres(pool) => {
                let mut $tx = pool
                    .begin()
                    .await
                    .map_err(|e| err.db("starting a write transaction", e))?;
                sqlx::query(LOCK_META_PG)
                    .execute(&mut *$tx)
                    .await
                    .map_err(|e| err.db("taking the store's write lock", e))?;
                let out = $body;
                if bump {
                    bump_revision!(store, $tx, true);
                }
                $tx.commit()
                    .await
                    .map_err(|e| err.db(&format!("committing ({doing})"), e))?;
                out
            }
        }
    }};
}

/// Advances the store's revision inside the open write transaction `$tx` and, on
/// PostgreSQL, queues the NOTIFY that tells every listening node (delivered at commit, so
/// a rolled-back write announces nothing). Evaluates to the new revision.
macro_rules! bump_revision {
    ($store:expr, $tx:ident, $notify:expr) => {{
        let store: &Store = $store;
        let err = store.err();
        let revision: i64 = sqlx::query_scalar(BUMP_REVISION)
            .bind(unix_ms())
            .fetch_one(&mut *$tx)
            .await
            .map_err(|e| err.db("advancing the store's revision", e))?;
        if $notify {
            let payload = crate::fleet::notify_payload(store.inner.listen.as_ref(), revision);
            sqlx::query(NOTIFY_REVISION)
                .bind(crate::fleet::NOTIFY_CHANNEL)
                .bind(payload)
                .execute(&mut *$tx)
                .await
                .map_err(|e| err.db("notifying the fleet of the new revision", e))?;
        }
        revision
    }};
}

/// The body of a commit, on an open transaction `$tx` that already holds the write lock.
/// A macro rather than a function so it compiles against each backend's transaction
/// type; any `?` leaves the transaction to be rolled back when it is dropped.
macro_rules! apply_change {
    ($tx:ident, $change:ident, $check:expr, $now:expr, $err:expr, $node:expr) => {
        async {
            let err: &ErrorContext = $err;
            let node: Option<&str> = $node;
            let now: i64 = $now;
            let latest: Option<i64> = sqlx::query_scalar(LATEST_NUMBER)
                .fetch_one(&mut *$tx)
                .await
                .map_err(|e| err.db("reading the latest config version", e))?;
            if $check && latest != $change.expected_version {
                return Err(StoreError::Conflict {
                    expected: $change.expected_version,
                    actual: latest,
                });
            }

            let version = match $change.new_version {
                Some(v) => {
                    let number = latest.unwrap_or(0) + 1;
                    let sha256 = sha256_hex(&v.text);
                    sqlx::query(INSERT_VERSION)
                        .bind(number)
                        .bind(&sha256)
                        .bind(&v.text)
                        .bind(&v.author)
                        .bind(&v.message)
                        .bind(now)
                        .execute(&mut *$tx)
                        .await
                        .map_err(|e| err.db("storing the new config version", e))?;
                    Some(ConfigVersion {
                        number,
                        sha256,
                        text: v.text,
                        author: v.author,
                        message: v.message,
                        created_at: now,
                    })
                }
                None => None,
            };
            let new_number = version.as_ref().map(|v| v.number);

            let mut events = Vec::with_capacity($change.events.len());
            for (i, ev) in $change.events.into_iter().enumerate() {
                let config_version = match ev.config_version {
                    None => None,
                    Some(VersionRef::New) => new_number,
                    Some(VersionRef::Existing(n)) => Some(n),
                };
                let id: i64 = sqlx::query_scalar(INSERT_EVENT)
                    .bind(now)
                    .bind(&ev.actor)
                    .bind(&ev.kind)
                    .bind(&ev.route)
                    .bind(&ev.message)
                    .bind(config_version)
                    .bind(&ev.data)
                    .bind(node)
                    .fetch_one(&mut *$tx)
                    .await
                    .map_err(|e| event_error(err, i, &ev.kind, config_version, e))?;
                events.push(Event {
                    id,
                    at: now,
                    actor: ev.actor,
                    kind: ev.kind,
                    route: ev.route,
                    message: ev.message,
                    config_version,
                    data: ev.data,
                    node: node.map(str::to_string),
                });
            }

            match $change.overrides {
                OverrideChange::Keep => {}
                OverrideChange::Set(sets) => {
                    for s in sets {
                        let event_id = explaining_event(&events, &s.route);
                        sqlx::query(UPSERT_OVERRIDE)
                            .bind(&s.route)
                            .bind(&s.stage)
                            .bind(s.weight_bp)
                            .bind(now)
                            .bind(event_id)
                            .execute(&mut *$tx)
                            .await
                            .map_err(|e| err.db("storing a route override", e))?;
                    }
                }
                OverrideChange::ClearRoutes(routes) => {
                    for route in routes {
                        sqlx::query("DELETE FROM route_overrides WHERE route = $1")
                            .bind(&route)
                            .execute(&mut *$tx)
                            .await
                            .map_err(|e| err.db("clearing a route override", e))?;
                    }
                }
                OverrideChange::ClearAll => {
                    sqlx::query("DELETE FROM route_overrides")
                        .execute(&mut *$tx)
                        .await
                        .map_err(|e| err.db("clearing the route overrides", e))?;
                }
            }
            match $change.flag_overrides {
                FlagOverrideChange::Keep => {}
                FlagOverrideChange::Set(sets) => {
                    let event_id = events.first().map_or(0, |e| e.id);
                    for s in sets {
                        sqlx::query(UPSERT_FLAG_OVERRIDE)
                            .bind(&s.flag)
                            .bind(&s.variant)
                            .bind(s.enabled)
                            .bind(now)
                            .bind(event_id)
                            .execute(&mut *$tx)
                            .await
                            .map_err(|e| err.db("storing a flag override", e))?;
                    }
                }
                FlagOverrideChange::Clear(flags) => {
                    for flag in flags {
                        sqlx::query("DELETE FROM flag_overrides WHERE flag = $1")
                            .bind(&flag)
                            .execute(&mut *$tx)
                            .await
                            .map_err(|e| err.db("clearing a flag override", e))?;
                    }
                }
                FlagOverrideChange::ClearAll => {
                    sqlx::query("DELETE FROM flag_overrides")
                        .execute(&mut *$tx)
                        .await
                        .map_err(|e| err.db("clearing the flag overrides", e))?;
                }
            }

            Ok::<_, StoreError>(Committed {
                version,
                latest_version: new_number.or(latest),
                events,
            })
        }
        .await
    };
}

impl Store {
    /// Opens (creating if needed) the store at `url` with default options and brings its
    /// schema up to date. See [`Store::open_with`].
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, StoreOptions::default()).await
    }

    /// Opens the store at `url`: `sqlite://PATH`, `sqlite:PATH`, a bare file path
    /// (SQLite; the file is created if missing, its directory must exist),
    /// `sqlite::memory:` (this process only, not durable; for tests), or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?schema=NAME&sslmode=...]`. Then runs
    /// the migrations that the database has not seen yet.
    ///
    /// Errors: `Invalid` for a URL it cannot use, `Unavailable` when the database cannot
    /// be reached within `connect_timeout` or is locked beyond `busy_timeout`,
    /// `Migration` when the schema cannot be brought up to date.
    pub async fn open_with(url: &str, options: StoreOptions) -> Result<Store, StoreError> {
        let parsed = target::parse(url, &options)?;
        let err = ErrorContext {
            url: parsed.display,
            busy_timeout: options.busy_timeout,
            connect_timeout: options.connect_timeout,
            statement_timeout: options.statement_timeout,
        };
        let mut listen = None;
        let mut sqlite_file = None;
        let pool = match parsed.target {
            Target::Sqlite {
                options: connect,
                in_memory,
            } => {
                if !in_memory {
                    sqlite_file = Some(connect.get_filename().to_path_buf());
                }
                let mut pool = SqlitePoolOptions::new()
                    .max_connections(
                        options
                            .max_connections
                            .unwrap_or(DEFAULT_SQLITE_CONNECTIONS)
                            .max(1),
                    )
                    .acquire_timeout(options.connect_timeout);
                if in_memory {
                    // The database lives as long as a connection to it: keep exactly one,
                    // which also spares the shared cache its table-level locking.
                    pool = pool
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None);
                }
                Pool::Sqlite(open_sqlite(pool, &connect, &err).await?)
            }
            Target::Postgres {
                options: connect,
                schema,
            } => {
                // `ficus-listener SCHEMA`: an operator (or a test) can tell this store's
                // LISTEN connections apart in pg_stat_activity.
                let name: String = format!(
                    "{} {}",
                    crate::fleet::LISTENER_APPLICATION,
                    schema.as_deref().unwrap_or("public")
                )
                .chars()
                .take(63)
                .collect();
                listen = Some(crate::fleet::ListenTarget {
                    options: (*connect).clone().application_name(&name),
                    schema: schema.clone(),
                });
                // One direct connection first: the pool would retry a refused connection
                // until its acquire timeout and then report only "timed out"; this fails
                // at once with the real cause.
                let mut conn = match tokio::time::timeout(
                    options.connect_timeout,
                    PgConnection::connect_with(&connect),
                )
                .await
                {
                    Ok(Ok(conn)) => conn,
                    Ok(Err(e)) => return Err(err.db("connecting to PostgreSQL", e)),
                    Err(_) => {
                        return Err(err.unavailable(format!(
                            "no answer within connect_timeout ({} ms): check the host and \
                             port, and that no firewall drops the connection",
                            options.connect_timeout.as_millis()
                        )))
                    }
                };
                if let Some(schema) = &schema {
                    // The name was checked to be a plain lower-case identifier.
                    let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                        .execute(&mut conn)
                        .await;
                    match created {
                        Ok(_) => {}
                        // IF NOT EXISTS is not atomic: a process opening the same schema at
                        // the same moment may have created it between check and insert.
                        Err(sqlx::Error::Database(e))
                            if e.kind() == sqlx::error::ErrorKind::UniqueViolation => {}
                        Err(e) => return Err(err.db(&format!("creating schema {schema}"), e)),
                    }
                }
                // Closing politely only saves the server a log line; failure is harmless.
                let _ = conn.close().await;
                let pool = PgPoolOptions::new()
                    .max_connections(
                        options
                            .max_connections
                            .unwrap_or(DEFAULT_PG_CONNECTIONS)
                            .max(1),
                    )
                    .acquire_timeout(options.connect_timeout)
                    .connect_lazy_with((*connect).application_name("ficus"));
                PG_MIGRATIONS
                    .run(&pool)
                    .await
                    .map_err(|e| err.migration(e))?;
                Pool::Postgres(pool)
            }
        };
        let store = Store {
            inner: Arc::new(Inner {
                pool,
                err,
                node: std::sync::OnceLock::new(),
                listen,
                sqlite_file,
                write_queue: tokio::sync::Mutex::new(()),
            }),
        };
        tracing::info!(store = %store.url(), kind = store.kind(), "state store ready");
        Ok(store)
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn kind(&self) -> &'static str {
        match self.inner.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// The URL the store was opened with, password replaced by `***`.
    pub fn url(&self) -> &str {
        &self.inner.err.url
    }

    pub(crate) fn err(&self) -> &ErrorContext {
        &self.inner.err
    }

    /// Names the node this handle writes for (once; later calls are ignored): its events
    /// carry the id.
    pub fn set_node(&self, id: &str) {
        let _ = self.inner.node.set(id.to_string());
    }

    /// The node set with [`Store::set_node`].
    pub fn node(&self) -> Option<&str> {
        self.inner.node.get().map(String::as_str)
    }

    /// A SQLite store has one node: the gateway process takes this lock (an exclusive lock
    /// on `PATH.lock` beside the database, released when the returned file is dropped or
    /// the process ends) so that a second `ficus run` on the same file is refused with a
    /// clear error instead of two gateways silently diverging. `None` for PostgreSQL and
    /// in-memory stores, where there is nothing to lock.
    pub fn lock_single_node(&self) -> Result<Option<std::fs::File>, StoreError> {
        let Some(db) = &self.inner.sqlite_file else {
            return Ok(None);
        };
        let mut path = db.clone().into_os_string();
        path.push(".lock");
        let path = std::path::PathBuf::from(path);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                StoreError::Invalid(format!("cannot open the lock file {}: {e}", path.display()))
            })?;
        match file.try_lock() {
            Ok(()) => {
                use std::io::{Seek, Write};
                let _ = file.set_len(0);
                let _ = file.seek(std::io::SeekFrom::Start(0));
                let _ = writeln!(file, "{}", std::process::id());
                Ok(Some(file))
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                Err(StoreError::Invalid(format!(
                    "state store {} is in use by another ficus (pid {}): a SQLite store serves \
                     one gateway; stop the other one, give this one its own store, or run \
                     several gateways on one PostgreSQL store (docs/fleet.md)",
                    self.url(),
                    holder.trim()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Invalid(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }

    pub(crate) fn listen_target(&self) -> Option<&crate::fleet::ListenTarget> {
        self.inner.listen.as_ref()
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// One cheap query that proves the database answers and holds a ficus schema (for
    /// `/readyz`). On SQLite it succeeds while another process holds the write lock:
    /// WAL readers are never blocked.
    pub async fn health(&self) -> Result<(), StoreError> {
        let row: Option<i64> = on_pool!(self, p => {
            sqlx::query_scalar("SELECT CAST(id AS BIGINT) FROM store_meta WHERE id = 1")
                .fetch_optional(p)
                .await
        })
        .map_err(|e| self.err().db("checking the store", e))?;
        match row {
            Some(_) => Ok(()),
            None => Err(self.err().db(
                "checking the store (its store_meta row is missing: is this a ficus store?)",
                sqlx::Error::RowNotFound,
            )),
        }
    }

    /// Closes the pool: waits for connections in use to come back, then closes them all.
    /// Later calls fail with `Unavailable`.
    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }

    /// The latest config version, with its text; `None` before the first commit of one.
    pub async fn current_version(&self) -> Result<Option<ConfigVersion>, StoreError> {
        let sql = format!("{SELECT_VERSION} ORDER BY number DESC LIMIT 1");
        on_pool!(self, p => {
            sqlx::query_as::<_, ConfigVersion>(&sql).fetch_optional(p).await
        })
        .map_err(|e| self.err().db("reading the current config version", e))
    }

    /// Version `number`, with its text; `None` if there is no such version.
    pub async fn version(&self, number: i64) -> Result<Option<ConfigVersion>, StoreError> {
        let sql = format!("{SELECT_VERSION} WHERE number = $1");
        on_pool!(self, p => {
            sqlx::query_as::<_, ConfigVersion>(&sql).bind(number).fetch_optional(p).await
        })
        .map_err(|e| self.err().db("reading a config version", e))
    }

    /// Up to `limit` (1..=`MAX_PAGE`) versions without their text, newest first; with
    /// `before`, only versions numbered below it (the next page).
    pub async fn versions(
        &self,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<ConfigVersionSummary>, StoreError> {
        validate::page(limit)?;
        let sql = "SELECT number, sha256, author, message, created_at FROM config_versions \
                   WHERE number < $1 ORDER BY number DESC LIMIT $2";
        let before = before.unwrap_or(i64::MAX);
        let limit = i64::from(limit);
        on_pool!(self, p => {
            sqlx::query_as::<_, ConfigVersionSummary>(sql)
                .bind(before)
                .bind(limit)
                .fetch_all(p)
                .await
        })
        .map_err(|e| self.err().db("listing config versions", e))
    }

    /// Events matching `filter`. With `after_id`: the events with a larger id, ascending
    /// (oldest first), at most `limit` of them; poll again with the last id to tail the log.
    /// Without: the newest `limit` events, newest first.
    pub async fn events(&self, filter: EventFilter) -> Result<Vec<Event>, StoreError> {
        validate::page(filter.limit)?;
        let mut conditions = Vec::new();
        let mut n = 0;
        let mut param = || {
            n += 1;
            n
        };
        if filter.route.is_some() {
            conditions.push(format!("route = ${}", param()));
        }
        if filter.kind.is_some() {
            conditions.push(format!("kind = ${}", param()));
        }
        if filter.kind_prefix.is_some() {
            conditions.push(format!("kind LIKE ${} ESCAPE '!'", param()));
        }
        if filter.after_id.is_some() {
            conditions.push(format!("id > ${}", param()));
        }
        if filter.before_id.is_some() {
            conditions.push(format!("id < ${}", param()));
        }
        let mut sql = SELECT_EVENT.to_string();
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        sql.push_str(if filter.after_id.is_some() {
            " ORDER BY id ASC"
        } else {
            " ORDER BY id DESC"
        });
        sql.push_str(&format!(" LIMIT ${}", param()));
        let limit = i64::from(filter.limit);
        on_pool!(self, p => {
            let mut q = sqlx::query_as::<_, Event>(&sql);
            if let Some(route) = &filter.route {
                q = q.bind(route);
            }
            if let Some(kind) = &filter.kind {
                q = q.bind(kind);
            }
            if let Some(prefix) = &filter.kind_prefix {
                let escaped = prefix.replace('!', "!!").replace('%', "!%").replace('_', "!_");
                q = q.bind(format!("{escaped}%"));
            }
            if let Some(after) = filter.after_id {
                q = q.bind(after);
            }
            if let Some(before) = filter.before_id {
                q = q.bind(before);
            }
            q.bind(limit).fetch_all(p).await
        })
        .map_err(|e| self.err().db("reading events", e))
    }

    /// Every route override, by route name.
    pub async fn overrides(&self) -> Result<Vec<RouteOverride>, StoreError> {
        let sql = "SELECT route, stage, weight_bp, updated_at, event_id FROM route_overrides \
                   ORDER BY route";
        on_pool!(self, p => sqlx::query_as::<_, RouteOverride>(sql).fetch_all(p).await)
            .map_err(|e| self.err().db("reading route overrides", e))
    }

    /// Every flag override, by flag key.
    pub async fn flag_overrides(&self) -> Result<Vec<FlagOverrideRow>, StoreError> {
        on_pool!(self, p => sqlx::query_as::<_, FlagOverrideRow>(SELECT_FLAG_OVERRIDES)
            .fetch_all(p)
            .await)
        .map_err(|e| self.err().db("reading flag overrides", e))
    }

    /// Records one run of a `[[verify]]` job (a full run without a watermark); returns it
    /// with its id. See [`record_verify_run`](Self::record_verify_run).
    pub async fn record_verify(&self, run: NewVerifyRun) -> Result<VerifyRun, StoreError> {
        self.record_verify_run(run, VerifyRunScope::default()).await
    }

    /// Records one run of a `[[verify]]` job with what it covered (`scope`: full or
    /// incremental, the bound, the watermark it read, the job's fingerprint); returns it
    /// with its id. A run that did not fail also removes the job's checkpoint
    /// ([`save_verify_progress`](Self::save_verify_progress)), in the same transaction:
    /// nothing is left to resume. A failed run keeps it, so the next run resumes.
    pub async fn record_verify_run(
        &self,
        run: NewVerifyRun,
        scope: VerifyRunScope,
    ) -> Result<VerifyRun, StoreError> {
        validate::verify_run(&run)?;
        validate::verify_scope(&scope)?;
        let err = self.err();
        let finished = run.outcome != "error";
        let id: i64 = in_write_tx!(self, "recording a verify run", tx => {
            let id: i64 = sqlx::query_scalar(INSERT_VERIFY_RUN)
                .bind(&run.job)
                .bind(&run.route)
                .bind(&run.source_table)
                .bind(&run.target_table)
                .bind(run.started_at)
                .bind(run.finished_at)
                .bind(&run.outcome)
                .bind(run.rows_compared)
                .bind(run.missing)
                .bind(run.extra)
                .bind(run.changed)
                .bind(&run.error)
                .bind(&run.report)
                .bind(&scope.mode)
                .bind(&scope.fingerprint)
                .bind(&scope.bound)
                .bind(&scope.watermark)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| err.db("recording a verify run", e))?;
            if finished {
                sqlx::query(DELETE_VERIFY_PROGRESS)
                    .bind(&run.job)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| err.db("removing a finished verify run's checkpoint", e))?;
            }
            id
        });
        Ok(VerifyRun {
            id,
            job: run.job,
            route: run.route,
            source_table: run.source_table,
            target_table: run.target_table,
            started_at: run.started_at,
            finished_at: run.finished_at,
            outcome: run.outcome,
            rows_compared: run.rows_compared,
            missing: run.missing,
            extra: run.extra,
            changed: run.changed,
            error: run.error,
            report: run.report,
            mode: scope.mode,
            fingerprint: scope.fingerprint,
            bound: scope.bound,
            watermark: scope.watermark,
        })
    }

    /// The latest full run of `job` that finished (any outcome but `error`).
    pub async fn latest_full_verify_run(&self, job: &str) -> Result<Option<VerifyRun>, StoreError> {
        let sql = format!(
            "{SELECT_VERIFY_RUN} WHERE job = $1 AND mode = 'full' AND outcome <> 'error' \
             ORDER BY id DESC LIMIT 1"
        );
        on_pool!(self, p => sqlx::query_as::<_, VerifyRun>(&sql).bind(job).fetch_optional(p).await)
            .map_err(|e| self.err().db("reading the latest full verify run", e))
    }

    /// The latest equal run of `job` that proves its tables equal: the latest full run that
    /// finished, when it is equal, or the latest equal incremental run after it with the
    /// same fingerprint (an incremental run compares only the rows written since its bound;
    /// with the full run before it, every row). A `lagging` run counts as equal: every
    /// difference it found had resolved when re-checked (the target lagged, then matched),
    /// which is what tables under live dual-writes look like. None when the latest full run
    /// found differences that persisted, when there is none, or when `covering` (unix ms)
    /// is given and that run started before it: "verified equal, covering the writes up to
    /// T". A later run that found persisting differences is named in `contradicted_by`;
    /// [`VerifyFreshness::fresh`] checks both for a gate.
    pub async fn latest_equal_verify_run(
        &self,
        job: &str,
        covering: Option<i64>,
    ) -> Result<Option<VerifyFreshness>, StoreError> {
        let Some(full) = self.latest_full_verify_run(job).await? else {
            return Ok(None);
        };
        if full.outcome != "equal" && full.outcome != "lagging" {
            return Ok(None);
        }
        let err = || self.err();
        let sql = format!(
            "{SELECT_VERIFY_RUN} WHERE job = $1 AND id >= $2 AND outcome IN ('equal', 'lagging') \
             AND (id = $2 OR (mode = 'incremental' AND COALESCE(fingerprint, '') = $3)) \
             ORDER BY id DESC LIMIT 1"
        );
        let fingerprint = full.fingerprint.clone().unwrap_or_default();
        let run = on_pool!(self, p => sqlx::query_as::<_, VerifyRun>(&sql)
            .bind(job)
            .bind(full.id)
            .bind(&fingerprint)
            .fetch_optional(p)
            .await)
        .map_err(|e| err().db("reading the latest equal verify run", e))?
        .unwrap_or_else(|| full.clone());
        if covering.is_some_and(|t| run.started_at < t) {
            return Ok(None);
        }
        let later = "SELECT MIN(id) FROM verify_runs WHERE job = $1 AND id > $2 \
                     AND outcome = 'different'";
        let contradicted_by: Option<i64> = on_pool!(self, p => sqlx::query_scalar(later)
            .bind(job)
            .bind(run.id)
            .fetch_one(p)
            .await)
        .map_err(|e| err().db("reading the verify runs after an equal one", e))?;
        Ok(Some(VerifyFreshness {
            full_run_id: full.id,
            full_started_at: full.started_at,
            covers_until: run.started_at,
            contradicted_by,
            run,
        }))
    }

    /// Saves the checkpoint of `progress.job`'s run in progress (replacing the job's
    /// previous one), so that the run resumes from it if this process does not finish it.
    pub async fn save_verify_progress(&self, progress: &VerifyProgress) -> Result<(), StoreError> {
        validate::verify_progress(progress)?;
        let err = self.err();
        let _queued = match &self.inner.pool {
            Pool::Sqlite(_) => Some(self.queue_writer("saving a verify checkpoint").await?),
            Pool::Postgres(_) => None,
        };
        on_pool!(self, p => sqlx::query(UPSERT_VERIFY_PROGRESS)
            .bind(&progress.job)
            .bind(&progress.fingerprint)
            .bind(&progress.mode)
            .bind(progress.started_at)
            .bind(progress.updated_at)
            .bind(progress.segments_done)
            .bind(&progress.checkpoint)
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(|e| err.db("saving a verify checkpoint", e))?;
        Ok(())
    }

    /// The checkpoint of `job`'s unfinished run, if there is one.
    pub async fn verify_progress(&self, job: &str) -> Result<Option<VerifyProgress>, StoreError> {
        on_pool!(self, p => sqlx::query_as::<_, VerifyProgress>(SELECT_VERIFY_PROGRESS)
            .bind(job)
            .fetch_optional(p)
            .await)
        .map_err(|e| self.err().db("reading a verify checkpoint", e))
    }

    /// Forgets `job`'s checkpoint (its run will start over).
    pub async fn clear_verify_progress(&self, job: &str) -> Result<(), StoreError> {
        let err = self.err();
        let _queued = match &self.inner.pool {
            Pool::Sqlite(_) => Some(self.queue_writer("removing a verify checkpoint").await?),
            Pool::Postgres(_) => None,
        };
        on_pool!(self, p => sqlx::query(DELETE_VERIFY_PROGRESS)
            .bind(job)
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(|e| err.db("removing a verify checkpoint", e))?;
        Ok(())
    }

    /// Up to `limit` (1..=`MAX_PAGE`) verify runs, newest first; of one job when given.
    pub async fn verify_runs(
        &self,
        job: Option<&str>,
        limit: u32,
    ) -> Result<Vec<VerifyRun>, StoreError> {
        validate::page(limit)?;
        let limit = i64::from(limit);
        on_pool!(self, p => {
            match job {
                Some(job) => {
                    let sql = format!("{SELECT_VERIFY_RUN} WHERE job = $1 ORDER BY id DESC LIMIT $2");
                    sqlx::query_as::<_, VerifyRun>(&sql).bind(job).bind(limit).fetch_all(p).await
                }
                None => {
                    let sql = format!("{SELECT_VERIFY_RUN} ORDER BY id DESC LIMIT $1");
                    sqlx::query_as::<_, VerifyRun>(&sql).bind(limit).fetch_all(p).await
                }
            }
        })
        .map_err(|e| self.err().db("reading verify runs", e))
    }

    /// The latest run of every job that has one, by job name.
    pub async fn latest_verify_runs(&self) -> Result<Vec<VerifyRun>, StoreError> {
        let sql = format!(
            "{SELECT_VERIFY_RUN} WHERE id IN (SELECT MAX(id) FROM verify_runs GROUP BY job) \
             ORDER BY job"
        );
        on_pool!(self, p => sqlx::query_as::<_, VerifyRun>(&sql).fetch_all(p).await)
            .map_err(|e| self.err().db("reading the latest verify runs", e))
    }

    /// Adds a batch of shadow-comparison deltas in one transaction: each endpoint's and
    /// field's counters are added to the stored ones (a row that is not stored yet is
    /// inserted), `last_ms` becomes the larger of the stored and the given one, and the
    /// samples are inserted, except those whose id is already stored (so retrying a flush
    /// whose outcome is unknown stores no sample twice; the counters, being deltas, would
    /// be added twice). Rows of one key that occur more than once in the batch are added
    /// up first. Either all of the batch is stored or none of it.
    ///
    /// Concurrent flushes (of this or other processes) add up exactly: each upsert adds to
    /// the row as stored at that moment, under the store's write lock.
    ///
    /// Errors: `Invalid` (naming the row and field) for an empty route, endpoint, path or
    /// kind, a negative counter or time, sample data that is too large, or more rows than
    /// [`MAX_SHADOW_ROWS_PER_FLUSH`](crate::limits::MAX_SHADOW_ROWS_PER_FLUSH).
    pub async fn flush_shadow(&self, batch: &ShadowBatch) -> Result<(), StoreError> {
        self.flush_shadow_seen(batch, None).await.map(|_| ())
    }

    /// [`flush_shadow`](Self::flush_shadow) for one node of a fleet, which learns of other
    /// nodes' resets by tailing the events: `seen` is the last event id the node has acted
    /// on. The rows of a route reset by another node in an event after `seen` are left out,
    /// since the node counted them before it knew of the reset (a comparison from before a
    /// reset never survives it). Returns the routes left out, sorted.
    pub async fn flush_shadow_seen(
        &self,
        batch: &ShadowBatch,
        seen: Option<i64>,
    ) -> Result<Vec<String>, StoreError> {
        validate::shadow_batch(batch)?;
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // Merged and sorted by key: PostgreSQL refuses an upsert that touches one row twice,
        // and rows locked in one order by every writer cannot deadlock.
        let mut endpoints = merge_shadow_endpoints(&batch.endpoints)?;
        let mut fields = merge_shadow_fields(&batch.fields)?;
        let mut samples = unique_shadow_samples(&batch.samples);
        let err = self.err();
        let skipped = in_write_tx!(self, "flushing shadow aggregates", tx => {
            let mut skipped: Vec<String> = match seen {
                // The write lock is held: no reset can commit between this read and ours.
                // This node's own resets it applied to its aggregate as it made them.
                Some(after) => sqlx::query_scalar(
                    "SELECT DISTINCT route FROM events WHERE kind = $1 AND id > $2 \
                     AND route IS NOT NULL AND (node IS NULL OR node <> $3)",
                )
                .bind(SHADOW_RESET_KIND)
                .bind(after)
                .bind(self.node().unwrap_or(""))
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| err.db("looking for shadow resets", e))?,
                None => Vec::new(),
            };
            skipped.sort_unstable();
            if !skipped.is_empty() {
                let keep = |r: &String| skipped.binary_search(r).is_err();
                endpoints.retain(|e| keep(&e.route));
                fields.retain(|f| keep(&f.route));
                samples.retain(|s| keep(&s.route));
            }
            for chunk in endpoints.chunks(SHADOW_ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::new(INSERT_SHADOW_ENDPOINTS);
                q.push_values(chunk, |mut row, e| {
                    row.push_bind(&e.route)
                        .push_bind(&e.endpoint)
                        .push_bind(e.compared)
                        .push_bind(e.differing)
                        .push_bind(e.noise_compared)
                        .push_bind(e.noise_differing)
                        .push_bind(e.last_ms);
                });
                q.push(UPSERT_SHADOW_ENDPOINTS);
                q.build()
                    .persistent(false)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| err.db("adding shadow endpoint counters", e))?;
            }
            for chunk in fields.chunks(SHADOW_ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::new(INSERT_SHADOW_FIELDS);
                q.push_values(chunk, |mut row, f| {
                    row.push_bind(&f.route)
                        .push_bind(&f.endpoint)
                        .push_bind(&f.path)
                        .push_bind(&f.kind)
                        .push_bind(f.differing)
                        .push_bind(f.noise_differing)
                        .push_bind(f.last_ms);
                });
                q.push(UPSERT_SHADOW_FIELDS);
                q.build()
                    .persistent(false)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| err.db("adding shadow field counters", e))?;
            }
            for chunk in samples.chunks(SHADOW_SAMPLES_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::new(INSERT_SHADOW_SAMPLES);
                q.push_values(chunk, |mut row, s| {
                    row.push_bind(s.id)
                        .push_bind(&s.route)
                        .push_bind(&s.endpoint)
                        .push_bind(&s.path)
                        .push_bind(&s.kind)
                        .push_bind(s.at_ms)
                        .push_bind(&s.data);
                });
                q.push(KEEP_SHADOW_SAMPLES);
                q.build()
                    .persistent(false)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| err.db("storing shadow samples", e))?;
            }
            skipped
        });
        Ok(skipped)
    }

    /// Every stored shadow aggregate of every route, samples included, to seed the
    /// comparator's aggregator at boot. Read in one snapshot, so a flush that commits
    /// meanwhile is either wholly in it or not at all. Sorted by key (byte order of route,
    /// endpoint, path, kind; samples by id), the same on both backends.
    pub async fn load_shadow(&self) -> Result<ShadowBatch, StoreError> {
        self.load_shadow_rows(true).await
    }

    /// [`load_shadow`](Self::load_shadow) without the samples: the counters a node of a
    /// fleet refreshes its view from after each flush.
    pub async fn load_shadow_counts(&self) -> Result<ShadowBatch, StoreError> {
        self.load_shadow_rows(false).await
    }

    async fn load_shadow_rows(&self, with_samples: bool) -> Result<ShadowBatch, StoreError> {
        let err = self.err();
        // SQLite (WAL): a deferred transaction reads one snapshot from its first read on.
        let begin = match self.inner.pool {
            Pool::Sqlite(_) => "BEGIN",
            Pool::Postgres(_) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        };
        let mut batch = on_pool!(self, p => {
            async {
                let mut tx = p
                    .begin_with(begin)
                    .await
                    .map_err(|e| err.db("starting a read transaction", e))?;
                let endpoints = sqlx::query_as::<_, ShadowEndpoint>(SELECT_SHADOW_ENDPOINT)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| err.db("reading shadow endpoints", e))?;
                let fields = sqlx::query_as::<_, ShadowField>(SELECT_SHADOW_FIELD)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| err.db("reading shadow fields", e))?;
                let samples = if with_samples {
                    sqlx::query_as::<_, ShadowSample>(SELECT_SHADOW_SAMPLE)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(|e| err.db("reading shadow samples", e))?
                } else {
                    Vec::new()
                };
                tx.commit()
                    .await
                    .map_err(|e| err.db("ending the read transaction", e))?;
                Ok::<_, StoreError>(ShadowBatch {
                    endpoints,
                    fields,
                    samples,
                })
            }
            .await
        })?;
        // Sorted here rather than by ORDER BY: PostgreSQL would sort text by the database's
        // collation, SQLite by bytes.
        batch
            .endpoints
            .sort_unstable_by(|a, b| (&a.route, &a.endpoint).cmp(&(&b.route, &b.endpoint)));
        batch.fields.sort_unstable_by(|a, b| {
            (&a.route, &a.endpoint, &a.path, &a.kind).cmp(&(
                &b.route,
                &b.endpoint,
                &b.path,
                &b.kind,
            ))
        });
        batch.samples.sort_unstable_by_key(|s| s.id);
        Ok(batch)
    }

    /// Deletes the shadow endpoints, fields and samples of `route` and appends an event
    /// (kind [`SHADOW_RESET_KIND`], the route, `actor`, message `reason`, data
    /// `{"endpoints": n, "fields": n, "samples": n}`: the rows removed), in one
    /// transaction; returns the event. A route with nothing stored gets the event too
    /// (with zeros). Other routes are untouched.
    pub async fn reset_shadow(
        &self,
        route: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Event, StoreError> {
        validate::shadow_reset(route, actor, reason)?;
        let err = self.err();
        let node = self.node();
        let event = in_write_tx!(self, "resetting shadow aggregates", true, tx => {
            let mut removed = [0u64; 3];
            for (n, (sql, what)) in removed.iter_mut().zip([
                (DELETE_SHADOW_ENDPOINTS, "deleting shadow endpoints"),
                (DELETE_SHADOW_FIELDS, "deleting shadow fields"),
                (DELETE_SHADOW_SAMPLES, "deleting shadow samples"),
            ]) {
                *n = sqlx::query(sql)
                    .bind(route)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| err.db(what, e))?
                    .rows_affected();
            }
            let now = unix_ms();
            let data = serde_json::json!({
                "endpoints": removed[0],
                "fields": removed[1],
                "samples": removed[2],
            });
            let id: i64 = sqlx::query_scalar(INSERT_EVENT)
                .bind(now)
                .bind(actor)
                .bind(SHADOW_RESET_KIND)
                .bind(route)
                .bind(reason)
                .bind(None::<i64>)
                .bind(&data)
                .bind(node)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| err.db("storing the shadow.reset event", e))?;
            Event {
                id,
                at: now,
                actor: actor.to_string(),
                kind: SHADOW_RESET_KIND.to_string(),
                route: Some(route.to_string()),
                message: reason.to_string(),
                config_version: None,
                data,
                node: node.map(str::to_string),
            }
        });
        Ok(event)
    }

    /// The shadow sample with this id; `None` if there is none (never stored, or reset).
    pub async fn shadow_sample(&self, id: i64) -> Result<Option<ShadowSample>, StoreError> {
        let sql = format!("{SELECT_SHADOW_SAMPLE} WHERE id = $1");
        on_pool!(self, p => {
            sqlx::query_as::<_, ShadowSample>(&sql).bind(id).fetch_optional(p).await
        })
        .map_err(|e| self.err().db("reading a shadow sample", e))
    }

    /// SQLite: waits (in order, up to busy_timeout) behind this process's other writers, as
    /// `write` does. Hold the guard until the transaction has ended.
    async fn queue_writer(
        &self,
        doing: &str,
    ) -> Result<tokio::sync::MutexGuard<'_, ()>, StoreError> {
        let err = self.err();
        tokio::time::timeout(err.busy_timeout, self.inner.write_queue.lock())
            .await
            .map_err(|_| {
                err.unavailable(format!(
                    "writers in this process have been queued for longer than busy_timeout \
                     ({} ms) while {doing}: the disk is too slow for the write rate, or raise \
                     busy_timeout",
                    err.busy_timeout.as_millis()
                ))
            })
    }

    /// Applies `change` in one transaction: checks that the latest version is still
    /// `change.expected_version` (else `Conflict`), stores the new version (numbered
    /// latest + 1, sha256 computed here), appends the events, applies the override
    /// change. Everything is stored or nothing is; once this returns `Ok` the commit is
    /// durable (SQLite: fsynced WAL; PostgreSQL: the server's commit).
    ///
    /// Concurrent commits are serialised (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a row
    /// lock on `store_meta`), so of several commits expecting the same version that all
    /// store a new one, exactly one succeeds and the others get `Conflict`.
    pub async fn commit(&self, change: Change) -> Result<Committed, StoreError> {
        validate::change(&change)?;
        self.write(change, true, None).await
    }

    /// [`commit`](Self::commit) for a write only the fleet's leader may make (a rollout
    /// controller's step): refused with `Fenced` unless `fence` still holds the lease.
    pub async fn commit_fenced(
        &self,
        change: Change,
        fence: &crate::fleet::Fence,
    ) -> Result<Committed, StoreError> {
        validate::change(&change)?;
        self.write(change, true, Some(fence)).await
    }

    /// Appends events without checking or changing the config version or the overrides
    /// (a rollout verdict to hold, a note): nothing they say depends on the latest version.
    /// `VersionRef::New` is refused; the same limits as a commit apply.
    pub async fn append_events(&self, events: Vec<NewEvent>) -> Result<Vec<Event>, StoreError> {
        let change = Change {
            events,
            ..Change::default()
        };
        validate::change(&change)?;
        Ok(self.write(change, false, None).await?.events)
    }

    /// [`append_events`](Self::append_events) for the leader only (a rollout verdict).
    pub async fn append_events_fenced(
        &self,
        events: Vec<NewEvent>,
        fence: &crate::fleet::Fence,
    ) -> Result<Vec<Event>, StoreError> {
        let change = Change {
            events,
            ..Change::default()
        };
        validate::change(&change)?;
        Ok(self.write(change, false, Some(fence)).await?.events)
    }

    async fn write(
        &self,
        change: Change,
        check: bool,
        fence: Option<&crate::fleet::Fence>,
    ) -> Result<Committed, StoreError> {
        let err = self.err();
        let node = self.node();
        match &self.inner.pool {
            Pool::Sqlite(pool) => {
                let _queued = tokio::time::timeout(err.busy_timeout, self.inner.write_queue.lock())
                    .await
                    .map_err(|_| {
                        err.unavailable(format!(
                            "writers in this process have been queued for longer than \
                             busy_timeout ({} ms): the disk is too slow for the write rate, \
                             or raise busy_timeout",
                            err.busy_timeout.as_millis()
                        ))
                    })?;
                // IMMEDIATE takes the write lock before the version check reads, so no
                // other writer (of any process) can commit between the check and the
                // insert; a DEFERRED transaction would fail to upgrade instead.
                let mut tx = pool
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(|e| err.db("starting a write transaction", e))?;
                check_fence!(self, tx, fence, false);
                // Taken after BEGIN so that time spent waiting for the lock is not in it.
                let now = unix_ms();
                let out = apply_change!(tx, change, check, now, err, node)?;
                bump_revision!(self, tx, false);
                tx.commit()
                    .await
                    .map_err(|e| err.db("committing the change", e))?;
                Ok(out)
            }
            Pool::Postgres(pool) => {
                let mut tx = pool
                    .begin()
                    .await
                    .map_err(|e| err.db("starting a write transaction", e))?;
                sqlx::query(LOCK_META_PG)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| err.db("taking the store's write lock", e))?;
                check_fence!(self, tx, fence, true);
                let now = unix_ms();
                let out = apply_change!(tx, change, check, now, err, node)?;
                bump_revision!(self, tx, true);
                tx.commit()
                    .await
                    .map_err(|e| err.db("committing the change", e))?;
                Ok(out)
            }
        }
    }
}

/// Connects and migrates. A new file starts in rollback-journal mode, and while several
/// processes open it at once (each switching it to WAL and migrating), SQLite answers some
/// of them SQLITE_BUSY at once, without waiting in the busy handler (its deadlock
/// avoidance between a reader and a writer that both want to write). That only happens
/// on first opens, so a busy open is retried, with growing pauses, for up to busy_timeout.
async fn open_sqlite(
    pool: SqlitePoolOptions,
    connect: &SqliteConnectOptions,
    err: &ErrorContext,
) -> Result<SqlitePool, StoreError> {
    let deadline = Instant::now() + err.busy_timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        let failure = match pool.clone().connect_with(connect.clone()).await {
            Ok(p) => match migrate_sqlite(&p).await {
                Ok(()) => return Ok(p),
                Err(failure) => {
                    p.close().await;
                    failure
                }
            },
            Err(e) => OpenFailure::Db("opening the SQLite database", e),
        };
        if !failure.is_busy() || Instant::now() + pause >= deadline {
            return Err(failure.into_store_error(err));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

enum OpenFailure {
    Db(&'static str, sqlx::Error),
    Migrate(MigrateError),
}

impl OpenFailure {
    fn is_busy(&self) -> bool {
        let e = match self {
            OpenFailure::Db(_, e)
            | OpenFailure::Migrate(MigrateError::Execute(e))
            | OpenFailure::Migrate(MigrateError::ExecuteMigration(e, _)) => e,
            OpenFailure::Migrate(_) => return false,
        };
        let code = match e {
            sqlx::Error::Database(db) => db.code(),
            _ => None,
        };
        // SQLITE_BUSY and SQLITE_LOCKED with their extended codes (low byte 5 or 6).
        code.and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6))
    }

    fn into_store_error(self, err: &ErrorContext) -> StoreError {
        match self {
            OpenFailure::Db(context, e) => err.db(context, e),
            OpenFailure::Migrate(e) => err.migration(e),
        }
    }
}

/// Runs the SQLite migrations inside one `BEGIN IMMEDIATE` transaction (sqlx turns each
/// migration's own transaction into a savepoint). sqlx takes no lock for SQLite, so two
/// processes opening a new file at once would otherwise both try to create the tables;
/// this way the second waits (up to busy_timeout), then finds them applied.
async fn migrate_sqlite(pool: &SqlitePool) -> Result<(), OpenFailure> {
    let mut tx = pool
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(|e| OpenFailure::Db("locking the database to migrate it", e))?;
    // `run_direct`, not `run`: `run` takes an `Acquire`, and `&mut` of a transaction's
    // connection trips the "Acquire is not general enough" limitation in a future that
    // must be Send (sqlx names `run_direct` as the way around it).
    SQLITE_MIGRATIONS
        .run_direct(&mut *tx)
        .await
        .map_err(OpenFailure::Migrate)?;
    tx.commit()
        .await
        .map_err(|e| OpenFailure::Db("committing the schema migration", e))
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("kind", &self.kind())
            .field("url", &self.url())
            .finish()
    }
}

/// The event an override row points at: the commit's first event about that route, or
/// else its first event (validation guarantees there is one).
fn explaining_event(events: &[Event], route: &str) -> i64 {
    events
        .iter()
        .find(|e| e.route.as_deref() == Some(route))
        .or(events.first())
        .map_or(0, |e| e.id)
}

fn event_error(
    err: &ErrorContext,
    i: usize,
    kind: &str,
    config_version: Option<i64>,
    e: sqlx::Error,
) -> StoreError {
    let violation = match &e {
        sqlx::Error::Database(db) => Some(db.kind()),
        _ => None,
    };
    match (violation, config_version) {
        (Some(sqlx::error::ErrorKind::ForeignKeyViolation), Some(n)) => {
            StoreError::NotFound(format!(
                "config version {n} does not exist (event {i}, {kind}, refers to it); refer to \
                 a stored version"
            ))
        }
        (Some(sqlx::error::ErrorKind::CheckViolation), _) => StoreError::Invalid(format!(
            "event {i} ({kind}) breaks a rule of the events table: {e}"
        )),
        _ => err.db(&format!("storing event {i} ({kind})"), e),
    }
}

/// Adds up the rows of one key (counters summed, the later time kept), sorted by key.
fn merge_shadow_endpoints(rows: &[ShadowEndpoint]) -> Result<Vec<ShadowEndpoint>, StoreError> {
    let mut merged: BTreeMap<(&str, &str), ShadowEndpoint> = BTreeMap::new();
    for e in rows {
        match merged.entry((&e.route, &e.endpoint)) {
            Entry::Vacant(v) => {
                v.insert(e.clone());
            }
            Entry::Occupied(mut o) => {
                let m = o.get_mut();
                let at = || format!("shadow endpoint {} {}", e.route, e.endpoint);
                m.compared = add_delta(m.compared, e.compared, &at, "compared")?;
                m.differing = add_delta(m.differing, e.differing, &at, "differing")?;
                m.noise_compared =
                    add_delta(m.noise_compared, e.noise_compared, &at, "noise_compared")?;
                m.noise_differing =
                    add_delta(m.noise_differing, e.noise_differing, &at, "noise_differing")?;
                m.last_ms = m.last_ms.max(e.last_ms);
            }
        }
    }
    Ok(merged.into_values().collect())
}

/// As [`merge_shadow_endpoints`], for fields.
fn merge_shadow_fields(rows: &[ShadowField]) -> Result<Vec<ShadowField>, StoreError> {
    let mut merged: BTreeMap<(&str, &str, &str, &str), ShadowField> = BTreeMap::new();
    for f in rows {
        match merged.entry((&f.route, &f.endpoint, &f.path, &f.kind)) {
            Entry::Vacant(v) => {
                v.insert(f.clone());
            }
            Entry::Occupied(mut o) => {
                let m = o.get_mut();
                let at = || {
                    format!(
                        "shadow field {} {} {} {}",
                        f.route, f.endpoint, f.path, f.kind
                    )
                };
                m.differing = add_delta(m.differing, f.differing, &at, "differing")?;
                m.noise_differing =
                    add_delta(m.noise_differing, f.noise_differing, &at, "noise_differing")?;
                m.last_ms = m.last_ms.max(f.last_ms);
            }
        }
    }
    Ok(merged.into_values().collect())
}

/// One sample per id (the first of the batch wins, as the stored one would), sorted by id.
fn unique_shadow_samples(rows: &[ShadowSample]) -> Vec<&ShadowSample> {
    let mut unique: BTreeMap<i64, &ShadowSample> = BTreeMap::new();
    for s in rows {
        unique.entry(s.id).or_insert(s);
    }
    unique.into_values().collect()
}

fn add_delta(a: i64, b: i64, at: &dyn Fn() -> String, field: &str) -> Result<i64, StoreError> {
    a.checked_add(b).ok_or_else(|| {
        StoreError::Invalid(format!(
            "{} {field}: the deltas of this flush add up to more than a 64-bit counter holds",
            at()
        ))
    })
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Now in unix milliseconds; a clock before 1970 gives 0 rather than a panic.
fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis()
        .try_into()
        .unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_is_lower_hex_of_the_text() {
        // FIPS 180-2 test vector.
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn override_event_prefers_the_routes_own_event() {
        let ev = |id, route: Option<&str>| Event {
            id,
            at: 0,
            actor: "t".into(),
            kind: "k".into(),
            route: route.map(Into::into),
            message: String::new(),
            config_version: None,
            data: serde_json::Value::Null,
            node: None,
        };
        let events = [ev(7, None), ev(8, Some("a")), ev(9, Some("b"))];
        assert_eq!(explaining_event(&events, "b"), 9);
        assert_eq!(explaining_event(&events, "zzz"), 7);
    }
}
