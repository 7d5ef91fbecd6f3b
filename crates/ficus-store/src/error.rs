//! `StoreError` and the translation of sqlx errors into it, with messages that say what to
//! fix. Every message names the store by its URL with any password removed.

use std::time::Duration;

use sqlx::migrate::MigrateError;
use sqlx::postgres::PgDatabaseError;
use sqlx::sqlite::SqliteError;

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is locked beyond the configured timeout. Retrying
    /// later may succeed; the API answers 503.
    #[error("state store {url} is unavailable: {reason}")]
    Unavailable { url: String, reason: String },
    /// The change was based on another latest version than the stored one; nothing was
    /// written. The API answers 409.
    #[error(
        "config version conflict: the change was based on {}, but the latest is {}; \
         reload the current config and apply the change again",
        show_version(.expected),
        show_version(.actual)
    )]
    Conflict {
        expected: Option<i64>,
        actual: Option<i64>,
    },
    /// A write only the fleet's leader may make came from a node that no longer holds the
    /// leader lease (another node took it over); nothing was written. The API answers 409.
    #[error("{0}")]
    Fenced(String),
    /// Something the change refers to does not exist; nothing was written.
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong (a bad URL, an empty actor, a weight above 100 %, ...);
    /// the message names the field and the fix. Nothing was written.
    #[error("{0}")]
    Invalid(String),
    /// The schema could not be brought up to date at open.
    #[error("state store {url}: migrating the schema failed: {source}; {hint}")]
    Migration {
        url: String,
        hint: String,
        #[source]
        source: MigrateError,
    },
    /// Any other database error.
    #[error("state store {url}: {context} failed: {source}")]
    Database {
        url: String,
        context: String,
        #[source]
        source: sqlx::Error,
    },
}

fn show_version(v: &Option<i64>) -> String {
    match v {
        Some(n) => format!("version {n}"),
        None => "no version".to_string(),
    }
}

/// What error messages need to know about the store they come from.
#[derive(Debug, Clone)]
pub(crate) struct ErrorContext {
    /// Without password.
    pub url: String,
    pub busy_timeout: Duration,
    pub connect_timeout: Duration,
    pub statement_timeout: Duration,
}

impl ErrorContext {
    pub fn unavailable(&self, reason: impl Into<String>) -> StoreError {
        StoreError::Unavailable {
            url: self.url.clone(),
            reason: reason.into(),
        }
    }

    /// `context` says what was being done ("reading events").
    pub fn db(&self, context: &str, err: sqlx::Error) -> StoreError {
        match self.unavailable_reason(&err) {
            Some(reason) => self.unavailable(reason),
            None => StoreError::Database {
                url: self.url.clone(),
                context: context.to_string(),
                source: err,
            },
        }
    }

    pub fn migration(&self, err: MigrateError) -> StoreError {
        if let MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) = &err {
            if let Some(reason) = self.unavailable_reason(e) {
                return self.unavailable(reason);
            }
        }
        let hint = match &err {
            MigrateError::VersionMissing(v) => format!(
                "the database has schema migration {v}, which this ficus does not know: a \
                 newer ficus wrote it; run that version, or restore a backup of the store"
            ),
            MigrateError::VersionMismatch(v) => format!(
                "schema migration {v} in the database differs from the one built into this \
                 ficus; run the ficus build that created the store"
            ),
            MigrateError::Execute(_) | MigrateError::ExecuteMigration(..) => {
                "the database refused the schema change; check that the user may create \
                 schemas, tables and functions there, then start again"
                    .to_string()
            }
            _ => "check that the URL points at a ficus state store".to_string(),
        };
        StoreError::Migration {
            url: self.url.clone(),
            hint,
            source: err,
        }
    }

    /// `Some(reason)` when the error means "cannot reach or lock the database", as opposed
    /// to a problem with the data or the query.
    fn unavailable_reason(&self, err: &sqlx::Error) -> Option<String> {
        let ms = |d: Duration| d.as_millis();
        match err {
            sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Some(
                "connection refused: check that PostgreSQL is running and listening at the \
                 URL's host and port"
                    .to_string(),
            ),
            sqlx::Error::Io(e) => Some(format!("I/O error: {e}; check the network or the disk")),
            sqlx::Error::Tls(e) => Some(format!(
                "TLS failed: {e}; check sslmode in the URL and the server's certificate"
            )),
            sqlx::Error::PoolTimedOut => Some(format!(
                "no database connection within connect_timeout ({} ms): the database is \
                 unreachable or every pooled connection stayed busy; check that it is running, \
                 or raise max_connections",
                ms(self.connect_timeout)
            )),
            sqlx::Error::PoolClosed => {
                Some("the store has been closed (ficus is shutting down)".to_string())
            }
            sqlx::Error::WorkerCrashed => {
                Some("the SQLite worker thread stopped unexpectedly; restart ficus".to_string())
            }
            sqlx::Error::Database(db) => {
                if let Some(e) = db.try_downcast_ref::<SqliteError>() {
                    self.sqlite_reason(e)
                } else if let Some(e) = db.try_downcast_ref::<PgDatabaseError>() {
                    self.pg_reason(e)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    fn sqlite_reason(&self, e: &SqliteError) -> Option<String> {
        use sqlx::error::DatabaseError;
        let extended: i32 = e.code().and_then(|c| c.parse().ok())?;
        // The primary result code is the low byte of the extended one.
        Some(match extended & 0xff {
            5 | 6 => format!(
                "the SQLite database is locked: another connection or process held the write \
                 lock for longer than busy_timeout ({} ms); stop the other writer (is a second \
                 ficus using the same file?) or raise busy_timeout",
                self.busy_timeout.as_millis()
            ),
            14 => format!(
                "cannot open the SQLite file ({}): check that its directory exists and that \
                 ficus may read and write there",
                e.message()
            ),
            8 => "the SQLite file is read-only: let ficus write the file and its directory"
                .to_string(),
            3 => "permission denied on the SQLite file: let ficus read and write it".to_string(),
            13 => "the disk holding the SQLite file is full: free some space".to_string(),
            10 => format!(
                "disk I/O error on the SQLite file ({}): check the disk and the file system",
                e.message()
            ),
            _ => return None,
        })
    }

    fn pg_reason(&self, e: &PgDatabaseError) -> Option<String> {
        let code = e.code();
        let msg = e.message();
        Some(match code {
            c if c.starts_with("08") => {
                format!("connection failure ({msg}): check the network path to the server")
            }
            "57P01" | "57P02" | "57P03" => {
                format!("the server is shutting down or starting up ({msg}); retry shortly")
            }
            "53300" => format!(
                "the server has no free connection slots ({msg}): lower max_connections or \
                 raise the server's max_connections"
            ),
            "53100" => format!("the server's disk is full ({msg}): free some space"),
            "57014" => format!(
                "a statement ran longer than statement_timeout ({} ms) and was cancelled; \
                 check the server's load",
                self.statement_timeout.as_millis()
            ),
            "55P03" => format!(
                "another writer held the store's lock for longer than busy_timeout ({} ms, \
                 PostgreSQL lock_timeout); retry, or look for a stuck transaction",
                self.busy_timeout.as_millis()
            ),
            "28P01" | "28000" => format!(
                "authentication failed ({msg}): check the user and password in the URL and \
                 the server's pg_hba.conf"
            ),
            "3D000" => format!(
                "the database does not exist ({msg}): create it (createdb NAME) or fix the \
                 database name in the URL"
            ),
            _ => return None,
        })
    }
}
