//! The shared test harness of ficus-store: every test body runs on SQLite (a temp file) and
//! on PostgreSQL (a fresh schema of `FICUS_TEST_POSTGRES_URL`, dropped afterwards). Without
//! that variable the PostgreSQL half is skipped with a note, unless
//! `FICUS_REQUIRE_SERVICES=1`, which makes a missing or unreachable PostgreSQL a failure.
#![allow(dead_code)]

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use ficus_store::*;
use futures_util::FutureExt;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::Connection;

// ---------------------------------------------------------------------------------------
// Test databases
// ---------------------------------------------------------------------------------------

pub const PG_ENV: &str = "FICUS_TEST_POSTGRES_URL";
pub const REQUIRE_ENV: &str = "FICUS_REQUIRE_SERVICES";

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One test's database: a SQLite file in its own temp dir, or a PostgreSQL schema.
#[derive(Clone)]
pub struct Db {
    pub backend: Backend,
    pub url: String,
    pub options: StoreOptions,
    /// SQLite: the file; keeps its temp dir alive as long as a clone exists.
    pub sqlite: Option<(PathBuf, Arc<tempfile::TempDir>)>,
    /// PostgreSQL: the base URL and the test's schema.
    pub pg: Option<(String, String)>,
}

impl Db {
    pub async fn open(&self) -> Store {
        match Store::open_with(&self.url, self.options.clone()).await {
            Ok(store) => store,
            Err(e) => panic!("opening {}: {e}", self.url),
        }
    }

    pub async fn open_with(&self, f: impl FnOnce(&mut StoreOptions)) -> Result<Store, StoreError> {
        let mut options = self.options.clone();
        f(&mut options);
        Store::open_with(&self.url, options).await
    }

    /// Runs one statement on a connection of its own, outside the store.
    pub async fn raw(&self, sql: &str) -> Result<u64, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => {
                let mut c = SqliteConnection::connect_with(&self.sqlite_options()).await?;
                let r = sqlx::query(sql).execute(&mut c).await;
                c.close().await?;
                Ok(r?.rows_affected())
            }
            Backend::Postgres => {
                let (base, schema) = self.pg.as_ref().expect("postgres db");
                let options =
                    PgConnectOptions::from_str(base)?.options([("search_path", schema.as_str())]);
                let mut c = PgConnection::connect_with(&options).await?;
                let r = sqlx::query(sql).execute(&mut c).await;
                c.close().await?;
                Ok(r?.rows_affected())
            }
        }
    }

    pub fn sqlite_options(&self) -> SqliteConnectOptions {
        let (path, _) = self.sqlite.as_ref().expect("sqlite db");
        SqliteConnectOptions::new().filename(path)
    }
}

pub fn sqlite_db() -> Db {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.db");
    Db {
        backend: Backend::Sqlite,
        url: format!("sqlite://{}", path.display()),
        options: StoreOptions::default(),
        sqlite: Some((path, Arc::new(dir))),
        pg: None,
    }
}

pub fn services_required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// `None` (after a note) when PostgreSQL is not configured and not required.
pub async fn postgres_db() -> Option<Db> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = match std::env::var(PG_ENV) {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                !services_required(),
                "{REQUIRE_ENV}=1 but {PG_ENV} is not set: point it at a PostgreSQL database, \
                 e.g. postgres://postgres@127.0.0.1:5432/test"
            );
            // Once per run, and past libtest's output capture (which only catches the
            // print macros), so that the skip shows in a normal `cargo test`.
            static NOTED: std::sync::Once = std::sync::Once::new();
            NOTED.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "note: {PG_ENV} is not set; the PostgreSQL tests of ficus-store pass \
                     without running (set {REQUIRE_ENV}=1 to make that a failure)"
                );
            });
            return None;
        }
    };
    let schema = format!(
        "ficus_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    // Leftovers of an earlier run that died before its cleanup (same pid, same counter).
    drop_schema(&base, &schema).await;
    Some(Db {
        backend: Backend::Postgres,
        url: base.clone(),
        options: StoreOptions {
            pg_schema: Some(schema.clone()),
            ..StoreOptions::default()
        },
        sqlite: None,
        pg: Some((base, schema)),
    })
}

pub async fn drop_schema(base: &str, schema: &str) {
    let mut conn = match PgConnection::connect(base).await {
        Ok(c) => c,
        Err(e) => panic!("PostgreSQL at {PG_ENV} is unreachable: {e}"),
    };
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut conn)
        .await
        .expect("drop test schema");
    let _ = conn.close().await;
}

/// Runs `body` on a fresh database of `backend`, then removes it (PostgreSQL), also when
/// the body panicked.
pub async fn run<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let db = match backend {
        Backend::Sqlite => sqlite_db(),
        Backend::Postgres => match postgres_db().await {
            Some(db) => db,
            None => return,
        },
    };
    let outcome = AssertUnwindSafe(body(db.clone())).catch_unwind().await;
    if let Some((base, schema)) = &db.pg {
        drop_schema(base, schema).await;
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// A module per shared body with one test per backend: `NAME::sqlite`, `NAME::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::run(super::Backend::Sqlite, super::$name).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::run(super::Backend::Postgres, super::$name).await
            }
        }
    )*};
}
