//! Connections to the two databases: URL parsing, read-only sessions with statement
//! timeouts, bounded pools, and statements that return text cells.
use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{Executor, Row, TypeInfo, ValueRef};

use crate::error::{Side, VerifyError};
use crate::job::Limits;

/// The database engines verify reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Postgres,
    MySql,
    Sqlite,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::MySql => "mysql",
            Engine::Sqlite => "sqlite",
        }
    }
}

/// What the server said about itself.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    pub version: String,
    /// MariaDB rather than MySQL (their statement timeouts and collations differ).
    pub mariadb: bool,
    /// PostgreSQL `server_version_num` (e.g. 150004); 0 elsewhere.
    pub pg_version_num: u32,
    /// PostgreSQL's `server_encoding` is UTF8 (hash input must be UTF-8 bytes).
    pub utf8: bool,
}

/// A bound statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(String),
    Int(i64),
    Null,
}

/// A raw SQLite value: SQLite rows are normalized in Rust, not in SQL (see `canon`).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

enum Pool {
    Pg(PgPool),
    My(MySqlPool),
    Lite(SqlitePool),
}

/// One side's database.
pub struct Db {
    pub side: Side,
    pub engine: Engine,
    pub info: ServerInfo,
    /// The URL with its password masked, for messages and reports.
    pub url: String,
    timeout: Duration,
    pool: Pool,
}

/// Masks the password of `scheme://user:password@host`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// The engine of a URL, and the URL as sqlx wants it.
pub fn parse_url(side: Side, url: &str) -> Result<(Engine, String), VerifyError> {
    let bad = |reason: &str| VerifyError::BadUrl {
        side,
        url: redact(url),
        reason: reason.to_string(),
    };
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        Ok((Engine::Postgres, url.to_string()))
    } else if lower.starts_with("mysql://") {
        Ok((Engine::MySql, url.to_string()))
    } else if lower.starts_with("mariadb://") {
        Ok((
            Engine::MySql,
            format!("mysql://{}", &url["mariadb://".len()..]),
        ))
    } else if lower.starts_with("sqlite:") {
        let path = url["sqlite:".len()..].trim_start_matches("//");
        if path.is_empty() || path.starts_with(":memory:") {
            return Err(bad(
                "give the path of an existing SQLite file (sqlite://path/to/file.db)",
            ));
        }
        Ok((Engine::Sqlite, format!("sqlite://{path}")))
    } else {
        Err(bad(
            "expected postgres://, postgresql://, mysql://, mariadb:// or sqlite://",
        ))
    }
}

impl Db {
    /// Opens a bounded pool of read-only sessions and checks that one connects.
    pub async fn connect(side: Side, url: &str, limits: &Limits) -> Result<Db, VerifyError> {
        let (engine, url) = parse_url(side, url)?;
        let shown = redact(&url);
        let bad = |e: sqlx::Error| VerifyError::BadUrl {
            side,
            url: shown.clone(),
            reason: e.to_string(),
        };
        let connect_err = |e: sqlx::Error| VerifyError::Connect {
            side,
            url: shown.clone(),
            source: e,
        };
        let timeout = limits.statement_timeout;
        let ms = timeout.as_millis().max(1);
        // Waiting for a pooled connection can take as long as the statements ahead of it.
        let acquire = limits.connect_timeout + timeout;
        let pool = match engine {
            Engine::Postgres => {
                // Startup parameters: every transaction read-only, a server-side statement
                // timeout (and lock timeout, so a pending ALTER cannot park us), UTC and ISO
                // output so that text forms do not depend on the server's defaults.
                let options = PgConnectOptions::from_str(&url)
                    .map_err(bad)?
                    .application_name("ficus-verify")
                    .options([
                        ("default_transaction_read_only", "on".to_string()),
                        ("statement_timeout", ms.to_string()),
                        ("lock_timeout", ms.to_string()),
                        ("TimeZone", "UTC".to_string()),
                        ("DateStyle", "ISO".to_string()),
                        ("extra_float_digits", "1".to_string()),
                    ]);
                probe::<sqlx::PgConnection>(&options, limits.connect_timeout)
                    .await
                    .map_err(connect_err)?;
                Pool::Pg(
                    PgPoolOptions::new()
                        .max_connections(limits.max_connections)
                        .min_connections(0)
                        .acquire_timeout(acquire)
                        .connect_lazy_with(options),
                )
            }
            Engine::MySql => {
                let options = MySqlConnectOptions::from_str(&url).map_err(bad)?;
                probe::<sqlx::MySqlConnection>(&options, limits.connect_timeout)
                    .await
                    .map_err(connect_err)?;
                let pool = MySqlPoolOptions::new()
                    .max_connections(limits.max_connections)
                    .min_connections(0)
                    .acquire_timeout(acquire)
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            let version: String = sqlx::query_scalar("SELECT VERSION()")
                                .fetch_one(&mut *conn)
                                .await?;
                            // MariaDB and MySQL name the statement timeout differently.
                            let limit = if version.contains("MariaDB") {
                                format!("SET SESSION max_statement_time = {}", ms as f64 / 1000.0)
                            } else {
                                format!("SET SESSION max_execution_time = {ms}")
                            };
                            conn.execute("SET SESSION TRANSACTION READ ONLY").await?;
                            conn.execute("SET time_zone = '+00:00'").await?;
                            conn.execute(limit.as_str()).await?;
                            Ok(())
                        })
                    })
                    .connect_lazy_with(options);
                Pool::My(pool)
            }
            Engine::Sqlite => {
                let options = SqliteConnectOptions::from_str(&url)
                    .map_err(bad)?
                    .read_only(true)
                    .create_if_missing(false)
                    .busy_timeout(timeout);
                probe::<sqlx::SqliteConnection>(&options, limits.connect_timeout)
                    .await
                    .map_err(connect_err)?;
                Pool::Lite(
                    SqlitePoolOptions::new()
                        .max_connections(limits.max_connections)
                        .min_connections(0)
                        .acquire_timeout(acquire)
                        .connect_lazy_with(options),
                )
            }
        };
        let mut db = Db {
            side,
            engine,
            info: ServerInfo::default(),
            url: shown,
            timeout,
            pool,
        };
        db.info = db.server_info().await?;
        Ok(db)
    }

    async fn server_info(&self) -> Result<ServerInfo, VerifyError> {
        let ctx = "reading the server version";
        Ok(match self.engine {
            Engine::Postgres => {
                let r = self
                    .text_rows(
                        "SELECT version(), current_setting('server_version_num'), current_setting('server_encoding')",
                        &[],
                        ctx,
                    )
                    .await?;
                let get = |i: usize| r[0][i].clone().unwrap_or_default();
                ServerInfo {
                    version: get(0),
                    mariadb: false,
                    pg_version_num: get(1).parse().unwrap_or(0),
                    utf8: get(2).eq_ignore_ascii_case("UTF8"),
                }
            }
            Engine::MySql => {
                let r = self.text_rows("SELECT VERSION()", &[], ctx).await?;
                let version = r[0][0].clone().unwrap_or_default();
                ServerInfo {
                    mariadb: version.contains("MariaDB"),
                    version,
                    pg_version_num: 0,
                    utf8: true,
                }
            }
            Engine::Sqlite => {
                let r = self.text_rows("SELECT sqlite_version()", &[], ctx).await?;
                ServerInfo {
                    version: format!("SQLite {}", r[0][0].clone().unwrap_or_default()),
                    utf8: true,
                    ..ServerInfo::default()
                }
            }
        })
    }

    /// Runs `sql` and returns each cell as text (SQLite cells are converted as SQLite would).
    pub async fn text_rows(
        &self,
        sql: &str,
        params: &[Param],
        context: &str,
    ) -> Result<Vec<Vec<Option<String>>>, VerifyError> {
        match &self.pool {
            Pool::Pg(pool) => {
                let mut q = sqlx::query(sql);
                for p in params {
                    q = match p {
                        Param::Text(s) => q.bind(s.clone()),
                        Param::Int(i) => q.bind(*i),
                        Param::Null => q.bind(None::<String>),
                    };
                }
                let rows = self.bounded(q.fetch_all(pool), context).await?;
                Ok(rows.iter().map(pg_text_row).collect())
            }
            Pool::My(pool) => {
                let mut q = sqlx::query(sql);
                for p in params {
                    q = match p {
                        Param::Text(s) => q.bind(s.clone()),
                        Param::Int(i) => q.bind(*i),
                        Param::Null => q.bind(None::<String>),
                    };
                }
                let rows = self.bounded(q.fetch_all(pool), context).await?;
                Ok(rows.iter().map(mysql_text_row).collect())
            }
            Pool::Lite(_) => Ok(self
                .cells(sql, params, context)
                .await?
                .into_iter()
                .map(|r| {
                    r.into_iter()
                        .map(|c| match c {
                            Cell::Null => None,
                            Cell::Int(i) => Some(i.to_string()),
                            Cell::Real(f) => Some(f.to_string()),
                            Cell::Text(s) => Some(s),
                            Cell::Blob(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                        })
                        .collect()
                })
                .collect()),
        }
    }

    /// Runs `sql` on SQLite and returns the raw values (for normalization in Rust).
    pub async fn cells(
        &self,
        sql: &str,
        params: &[Param],
        context: &str,
    ) -> Result<Vec<Vec<Cell>>, VerifyError> {
        let Pool::Lite(pool) = &self.pool else {
            return Err(VerifyError::Data {
                side: self.side,
                message: "raw cells are read from SQLite only".into(),
            });
        };
        let mut q = sqlx::query(sql);
        for p in params {
            q = match p {
                Param::Text(s) => q.bind(s.clone()),
                Param::Int(i) => q.bind(*i),
                Param::Null => q.bind(None::<String>),
            };
        }
        let rows = self.bounded(q.fetch_all(pool), context).await?;
        Ok(rows.iter().map(sqlite_row).collect())
    }

    /// Enforces the statement timeout on the client too: SQLite has no server-side one, and
    /// a server that ignores its own (or a dead network) must not hang verify.
    async fn bounded<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, sqlx::Error>>,
        context: &str,
    ) -> Result<T, VerifyError> {
        let grace = Duration::from_secs(2);
        match tokio::time::timeout(self.timeout + grace, fut).await {
            Err(_) => Err(self.timeout_error(context)),
            Ok(Err(e)) if is_timeout(&e) => Err(self.timeout_error(context)),
            Ok(Err(e)) => Err(VerifyError::Query {
                side: self.side,
                context: context.to_string(),
                source: e,
            }),
            Ok(Ok(v)) => Ok(v),
        }
    }

    fn timeout_error(&self, context: &str) -> VerifyError {
        VerifyError::Timeout {
            side: self.side,
            context: context.to_string(),
            timeout: self.timeout,
        }
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Pg(p) => p.close().await,
            Pool::My(p) => p.close().await,
            Pool::Lite(p) => p.close().await,
        }
    }
}

/// Opens and closes one connection, so that a wrong URL, password or host fails at once
/// with the server's own message (a pool would retry until its timeout).
async fn probe<C: sqlx::Connection>(
    options: &C::Options,
    timeout: Duration,
) -> Result<(), sqlx::Error> {
    let conn = tokio::time::timeout(timeout, C::connect_with(options))
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)??;
    conn.close().await
}

/// Server-side statement timeouts: PostgreSQL 57014, MariaDB 1969, MySQL 3024.
fn is_timeout(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            matches!(d.code().as_deref(), Some("57014" | "70100")) || {
                let m = d.message();
                m.contains("max_statement_time") || m.contains("maximum statement execution time")
            }
        }
        _ => false,
    }
}

fn pg_text_row(row: &PgRow) -> Vec<Option<String>> {
    (0..row.len())
        .map(|i| {
            row.try_get::<Option<String>, _>(i)
                .or_else(|_| {
                    row.try_get::<Option<i64>, _>(i)
                        .map(|v| v.map(|v| v.to_string()))
                })
                .or_else(|_| {
                    row.try_get::<Option<i32>, _>(i)
                        .map(|v| v.map(|v| v.to_string()))
                })
                .unwrap_or(None)
        })
        .collect()
}

fn mysql_text_row(row: &MySqlRow) -> Vec<Option<String>> {
    (0..row.len())
        .map(|i| {
            row.try_get::<Option<String>, _>(i)
                .or_else(|_| {
                    row.try_get::<Option<Vec<u8>>, _>(i)
                        .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()))
                })
                .or_else(|_| {
                    row.try_get::<Option<i64>, _>(i)
                        .map(|v| v.map(|v| v.to_string()))
                })
                .or_else(|_| {
                    row.try_get::<Option<u64>, _>(i)
                        .map(|v| v.map(|v| v.to_string()))
                })
                .unwrap_or(None)
        })
        .collect()
}

fn sqlite_row(row: &SqliteRow) -> Vec<Cell> {
    (0..row.len())
        .map(|i| {
            let Ok(raw) = row.try_get_raw(i) else {
                return Cell::Null;
            };
            if raw.is_null() {
                return Cell::Null;
            }
            // The value's own storage class, not the column's declared type: SQLite is
            // dynamically typed and a column may hold several classes.
            match raw.type_info().name() {
                "INTEGER" | "BOOLEAN" => row.try_get_unchecked::<i64, _>(i).map(Cell::Int),
                "REAL" => row.try_get_unchecked::<f64, _>(i).map(Cell::Real),
                "BLOB" => row.try_get_unchecked::<Vec<u8>, _>(i).map(Cell::Blob),
                _ => row.try_get_unchecked::<String, _>(i).map(Cell::Text),
            }
            .unwrap_or(Cell::Null)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_engine() {
        assert_eq!(
            parse_url(Side::Source, "postgres://u@h/db").unwrap().0,
            Engine::Postgres
        );
        assert_eq!(
            parse_url(Side::Source, "mariadb://u@h/db").unwrap(),
            (Engine::MySql, "mysql://u@h/db".to_string())
        );
        assert_eq!(
            parse_url(Side::Source, "sqlite:data/x.db").unwrap(),
            (Engine::Sqlite, "sqlite://data/x.db".to_string())
        );
        let e = parse_url(Side::Target, "oracle://x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("target") && e.contains("postgres://"), "{e}");
        assert!(parse_url(Side::Source, "sqlite::memory:").is_err());
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(
            redact("mysql://root@127.0.0.1/test"),
            "mysql://root@127.0.0.1/test"
        );
        assert_eq!(redact("sqlite://a.db"), "sqlite://a.db");
    }
}
