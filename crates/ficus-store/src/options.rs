//! Connection settings with their defaults, and the size limits the store enforces.

use std::time::Duration;

/// How [`Store::open_with`](crate::Store::open_with) connects. `Default` gives the numbers
/// documented in `docs/store.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// PostgreSQL only: the schema that holds ficus's tables (created if missing, then
    /// the connection's `search_path`). Same as `?schema=NAME` in the URL; giving both
    /// with different names is an error. Lower-case letters, digits and `_`, at most 63
    /// bytes. `None`: the server's default `search_path` (normally `public`).
    pub pg_schema: Option<String>,
    /// Pool size. `None`: [`DEFAULT_SQLITE_CONNECTIONS`] or [`DEFAULT_PG_CONNECTIONS`].
    pub max_connections: Option<u32>,
    /// How long a write waits for another writer's lock before failing with
    /// `Unavailable`: SQLite's `busy_timeout` (plus the in-process writer queue) and
    /// PostgreSQL's `lock_timeout`.
    pub busy_timeout: Duration,
    /// How long opening a connection, or waiting for a free one from the pool, may take.
    pub connect_timeout: Duration,
    /// PostgreSQL only: the server cancels any statement running longer
    /// (`statement_timeout`). SQLite statements are bounded by `busy_timeout` instead.
    pub statement_timeout: Duration,
}

pub const DEFAULT_SQLITE_CONNECTIONS: u32 = 4;
pub const DEFAULT_PG_CONNECTIONS: u32 = 8;
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            pg_schema: None,
            max_connections: None,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
        }
    }
}

/// Sizes the store refuses to exceed, with `StoreError::Invalid` naming the limit. They
/// keep one bad request from filling the disk or the memory of a reader of the log.
pub mod limits {
    /// Largest `ficus.toml` stored as a version.
    pub const MAX_CONFIG_BYTES: usize = 4 * 1024 * 1024;
    /// Actor, kind, route, author, stage.
    pub const MAX_NAME_BYTES: usize = 256;
    /// Event and version messages.
    pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
    /// An event's `data`, serialised as JSON.
    pub const MAX_EVENT_DATA_BYTES: usize = 1024 * 1024;
    pub const MAX_EVENTS_PER_COMMIT: usize = 1000;
    /// Entries of `OverrideChange::Set` or `ClearRoutes` in one commit.
    pub const MAX_OVERRIDES_PER_COMMIT: usize = 10_000;
    /// 100 %: weights are basis points.
    pub const MAX_WEIGHT_BP: i32 = 10_000;
    /// Largest `limit` of a listing.
    pub const MAX_PAGE: u32 = 1000;
    /// `EventFilter::default().limit`.
    pub const DEFAULT_PAGE: u32 = 100;
    /// Endpoints, fields and samples (each) in one `Store::flush_shadow`.
    pub const MAX_SHADOW_ROWS_PER_FLUSH: usize = 100_000;
    /// A shadow endpoint name or field path.
    pub const MAX_SHADOW_PATH_BYTES: usize = 1024;
    /// A shadow sample's `data`, serialised as JSON.
    pub const MAX_SHADOW_SAMPLE_BYTES: usize = 1024 * 1024;
    /// A telemetry row's encoded histogram (6 bytes per non-empty bucket; a few hundred
    /// buckets exist).
    pub const MAX_TELEMETRY_HIST_BYTES: usize = 64 * 1024;
    /// A verify run's checkpoint, serialised as JSON (`Store::save_verify_progress`): the
    /// segments cut so far and at most `max_diffs` differences, plus the keys of rows still
    /// to be looked up.
    pub const MAX_VERIFY_CHECKPOINT_BYTES: usize = 64 * 1024 * 1024;
}
