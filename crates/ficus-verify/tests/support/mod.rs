//! Shared test support: the services from the environment, uniquely named tables on
//! PostgreSQL, MariaDB and SQLite files, and literal rendering per engine.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ficus_verify::{DiffKind, Endpoint, Job, Limits, Report};
use sqlx::{Connection, Executor};

/// The URL of a service from `var`; None (with a note) when unset, unless
/// `FICUS_REQUIRE_SERVICES=1` makes a missing service a failure.
fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("FICUS_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{var} is not set but FICUS_REQUIRE_SERVICES=1 requires it");
            }
            eprintln!("note: {var} is not set; skipping this test");
            None
        }
    }
}

pub fn postgres() -> Option<String> {
    service("FICUS_TEST_POSTGRES_URL")
}

pub fn mysql() -> Option<String> {
    service("FICUS_TEST_MYSQL_URL")
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A table name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "fv_{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh SQLite file URL in the temp dir.
pub fn sqlite_url(prefix: &str) -> (PathBuf, String) {
    let path = std::env::temp_dir().join(format!("{}.db", unique(prefix)));
    let _ = std::fs::remove_file(&path);
    let url = format!("sqlite://{}", path.display());
    (path, url)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Eng {
    Pg,
    My,
    Lite,
}

impl Eng {
    pub fn of(url: &str) -> Eng {
        if url.starts_with("postgres") {
            Eng::Pg
        } else if url.starts_with("mysql") {
            Eng::My
        } else {
            Eng::Lite
        }
    }
}

/// A value for a test row, rendered as a literal for each engine.
#[derive(Clone, Debug, PartialEq)]
pub enum V {
    Null,
    Int(i64),
    Dec(String),
    Float(f64),
    Text(String),
    Bool(bool),
    /// UTC `YYYY-MM-DD HH:MM:SS.ffffff`.
    Ts(String),
    Date(String),
    Bytes(Vec<u8>),
    /// Per-engine literal: (postgres, mysql, sqlite).
    Raw(String, String, String),
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl V {
    pub fn lit(&self, e: Eng) -> String {
        match self {
            V::Null => "NULL".into(),
            V::Int(i) => i.to_string(),
            V::Dec(s) => s.clone(),
            V::Float(f) => format!("{f:e}"),
            V::Text(s) => quote(s),
            V::Bool(b) => match e {
                Eng::Pg => b.to_string(),
                _ => (*b as i32).to_string(),
            },
            V::Ts(s) => match e {
                Eng::Pg => quote(&format!("{s}+00")),
                _ => quote(s),
            },
            V::Date(s) => quote(s),
            V::Bytes(b) => {
                let hex: String = b.iter().map(|b| format!("{b:02x}")).collect();
                match e {
                    Eng::Pg => format!("decode('{hex}', 'hex')"),
                    _ => format!("X'{hex}'"),
                }
            }
            V::Raw(pg, my, lite) => match e {
                Eng::Pg => pg.clone(),
                Eng::My => my.clone(),
                Eng::Lite => lite.clone(),
            },
        }
    }
}

/// A column: name and its type on each engine.
#[derive(Clone, Debug)]
pub struct Col {
    pub name: String,
    pub pg: String,
    pub my: String,
    pub lite: String,
}

pub fn col(name: &str, pg: &str, my: &str, lite: &str) -> Col {
    Col {
        name: name.into(),
        pg: pg.into(),
        my: my.into(),
        lite: lite.into(),
    }
}

/// A test table on one engine: created on `new`, dropped on `drop_table`.
pub struct Table {
    pub url: String,
    pub name: String,
    pub eng: Eng,
    sqlite_path: Option<PathBuf>,
}

/// Runs statements on a fresh connection (each test uses its own).
pub async fn exec(url: &str, stmts: &[String]) {
    match Eng::of(url) {
        Eng::Pg => {
            let mut c = sqlx::PgConnection::connect(url)
                .await
                .expect("connect to postgres");
            for s in stmts {
                c.execute(s.as_str())
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
        }
        Eng::My => {
            let mut c = sqlx::MySqlConnection::connect(url)
                .await
                .expect("connect to mysql");
            c.execute("SET time_zone = '+00:00'").await.unwrap();
            for s in stmts {
                c.execute(s.as_str())
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
        }
        Eng::Lite => {
            let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
            let mut c = sqlx::SqliteConnection::connect_with(&opts.create_if_missing(true))
                .await
                .expect("open sqlite");
            for s in stmts {
                c.execute(s.as_str())
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
        }
    }
}

impl Table {
    /// Creates `name` with `cols` and primary key `key`, and inserts `rows`.
    pub async fn new(
        url: &str,
        prefix: &str,
        cols: &[Col],
        key: &[&str],
        rows: &[Vec<V>],
    ) -> Table {
        let eng = Eng::of(url);
        let name = unique(prefix);
        let q = |n: &str| match eng {
            Eng::My => format!("`{n}`"),
            _ => format!("\"{n}\""),
        };
        let defs: Vec<String> = cols
            .iter()
            .map(|c| {
                let ty = match eng {
                    Eng::Pg => &c.pg,
                    Eng::My => &c.my,
                    Eng::Lite => &c.lite,
                };
                format!("{} {ty}", q(&c.name))
            })
            .collect();
        let pk: Vec<String> = key.iter().map(|k| q(k)).collect();
        let mut stmts = vec![
            format!("DROP TABLE IF EXISTS {}", q(&name)),
            format!(
                "CREATE TABLE {} ({}, PRIMARY KEY ({}))",
                q(&name),
                defs.join(", "),
                pk.join(", ")
            ),
        ];
        let names: Vec<String> = cols.iter().map(|c| q(&c.name)).collect();
        for chunk in rows.chunks(500) {
            let values: Vec<String> = chunk
                .iter()
                .map(|r| {
                    format!(
                        "({})",
                        r.iter().map(|v| v.lit(eng)).collect::<Vec<_>>().join(", ")
                    )
                })
                .collect();
            stmts.push(format!(
                "INSERT INTO {} ({}) VALUES {}",
                q(&name),
                names.join(", "),
                values.join(", ")
            ));
        }
        exec(url, &stmts).await;
        let sqlite_path =
            (eng == Eng::Lite).then(|| PathBuf::from(url.trim_start_matches("sqlite://")));
        Table {
            url: url.to_string(),
            name,
            eng,
            sqlite_path,
        }
    }

    /// A table the test created itself (PostgreSQL or MariaDB), dropped like the others.
    pub fn existing(url: &str, name: &str) -> Table {
        Table {
            url: url.to_string(),
            name: name.to_string(),
            eng: Eng::of(url),
            sqlite_path: None,
        }
    }

    pub fn q(&self, n: &str) -> String {
        match self.eng {
            Eng::My => format!("`{n}`"),
            _ => format!("\"{n}\""),
        }
    }

    /// Runs statements with `{t}` replaced by the quoted table name.
    pub async fn run(&self, stmts: &[&str]) {
        let t = self.q(&self.name);
        let stmts: Vec<String> = stmts.iter().map(|s| s.replace("{t}", &t)).collect();
        exec(&self.url, &stmts).await;
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            url: self.url.clone(),
            table: self.name.clone(),
            where_clause: None,
        }
    }

    /// Drops the table now (also done on drop, so a failing test cleans up too).
    pub async fn drop_table(mut self) {
        self.cleanup_now().await;
    }

    async fn cleanup_now(&mut self) {
        if self.name.is_empty() {
            return;
        }
        match &self.sqlite_path {
            Some(p) => {
                let _ = std::fs::remove_file(p);
            }
            None => {
                exec(
                    &self.url,
                    &[format!("DROP TABLE IF EXISTS {}", self.q(&self.name))],
                )
                .await
            }
        }
        self.name.clear();
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        if self.name.is_empty() {
            return;
        }
        // A panicking test still drops its tables: on a thread of its own, since the test's
        // runtime may be the one unwinding.
        let mut me = Table {
            url: self.url.clone(),
            name: std::mem::take(&mut self.name),
            eng: self.eng,
            sqlite_path: self.sqlite_path.take(),
        };
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(me.cleanup_now());
            }
        })
        .join();
    }
}

/// A job over two tables with small limits, so that a few thousand rows exercise several
/// segments, bisection and downloads.
pub fn job(src: &Table, tgt: &Table, key: &[&str]) -> Job {
    let mut job = Job::new(
        src.endpoint(),
        tgt.endpoint(),
        key.iter().map(|k| k.to_string()).collect(),
    );
    job.limits = Limits {
        segment_rows: 400,
        bisection_factor: 4,
        download_rows: 40,
        max_connections: 3,
        statement_timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    job
}

/// The differences as (kind, key values joined by `/`, changed columns), sorted.
pub fn found(report: &Report) -> BTreeSet<(DiffKind, String, Vec<String>)> {
    report
        .differences
        .iter()
        .map(|d| {
            let key = report
                .key
                .iter()
                .map(|k| d.key[k].clone())
                .collect::<Vec<_>>()
                .join("/");
            let mut cols: Vec<String> = d.changes.iter().map(|c| c.column.clone()).collect();
            cols.sort();
            (d.kind, key, cols)
        })
        .collect()
}

pub fn expect(items: &[(DiffKind, &str, &[&str])]) -> BTreeSet<(DiffKind, String, Vec<String>)> {
    items
        .iter()
        .map(|(k, key, cols)| {
            let mut cols: Vec<String> = cols.iter().map(|c| c.to_string()).collect();
            cols.sort();
            (*k, key.to_string(), cols)
        })
        .collect()
}

/// The common typed table used across engines: every kind of column.
pub fn typed_columns() -> Vec<Col> {
    vec![
        col(
            "id",
            "bigint NOT NULL",
            "bigint NOT NULL",
            "INTEGER NOT NULL",
        ),
        col("name", "text", "text", "TEXT"),
        col("note", "varchar(60)", "varchar(60)", "VARCHAR(60)"),
        col("amount", "numeric(12,2)", "decimal(12,2)", "DECIMAL(12,2)"),
        col("ratio", "double precision", "double", "REAL"),
        col("flag", "boolean", "boolean", "BOOLEAN"),
        col("created", "timestamptz", "datetime(6)", "DATETIME"),
        col("day", "date", "date", "DATE"),
        col("uid", "uuid", "char(36)", "UUID"),
        col("payload", "bytea", "blob", "BLOB"),
        col("doc", "jsonb", "json", "JSON"),
    ]
}

pub fn uuid_of(i: i64) -> String {
    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h >> 20) & 0xfff,
        i
    )
}

/// Row `i` of the typed table. Ids have gaps (multiples of 7 plus a few far-away ones);
/// every tenth note is NULL and every tenth-plus-one is empty.
pub fn typed_row(i: i64) -> Vec<V> {
    let id = if i % 500 == 499 { i * 1_000_003 } else { i * 7 };
    let note = match i % 10 {
        0 => V::Null,
        1 => V::Text(String::new()),
        _ => V::Text(format!("note {i}, it's ünïcode ✓")),
    };
    let micros = (i * 7919) % 1_000_000;
    let secs = 1_700_000_000 + i * 3_671;
    let ts = {
        let days = secs.div_euclid(86_400);
        let (y, m, d) = civil(days);
        let t = secs.rem_euclid(86_400);
        format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{micros:06}",
            t / 3600,
            t / 60 % 60,
            t % 60
        )
    };
    let (y, m, d) = civil(18_000 + i % 3000);
    vec![
        V::Int(id),
        V::Text(format!("name-{i}")),
        note,
        V::Dec(format!("{}.{:02}", (i * 37) % 100_000 - 500, i % 100)),
        if i % 13 == 0 {
            V::Null
        } else {
            V::Float(i as f64 / 7.0)
        },
        V::Bool(i % 3 == 0),
        V::Ts(ts),
        V::Date(format!("{y:04}-{m:02}-{d:02}")),
        V::Text(uuid_of(i)),
        V::Bytes(format!("bytes-{i}").into_bytes()),
        V::Text(format!("{{\"i\": {i}, \"tags\": [\"a\", \"b\"]}}")),
    ]
}

pub fn id_of(i: i64) -> i64 {
    if i % 500 == 499 {
        i * 1_000_003
    } else {
        i * 7
    }
}

fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn typed_rows(n: i64) -> Vec<Vec<V>> {
    (1..=n).map(typed_row).collect()
}

pub async fn run(job: &Job) -> Report {
    ficus_verify::verify(job, |_| {})
        .await
        .expect("verify runs")
}
