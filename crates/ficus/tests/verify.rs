//! `ficus verify` as a process: exit codes 0/1/2, text and JSON reports, repair SQL that
//! really repairs, and clear errors.
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, Executor};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "fvcli_{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A SQLite file removed when dropped.
struct Lite {
    path: PathBuf,
}

impl Lite {
    fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    async fn new(stmts: &[&str]) -> Lite {
        let path = std::env::temp_dir().join(format!("{}.db", unique("db")));
        let lite = Lite { path };
        lite.exec(stmts).await;
        lite
    }

    async fn exec(&self, stmts: &[&str]) {
        let opts: sqlx::sqlite::SqliteConnectOptions = self.url().parse().unwrap();
        let mut c = sqlx::SqliteConnection::connect_with(&opts.create_if_missing(true))
            .await
            .unwrap();
        for s in stmts {
            c.execute(*s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        c.close().await.unwrap();
    }
}

impl Drop for Lite {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

const TABLE: &str =
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, total DECIMAL(10,2), \
                     placed DATETIME, paid BOOLEAN)";

fn rows() -> String {
    let values: Vec<String> = (1..=300)
        .map(|i| {
            format!(
                "({i}, 'customer {i}', {}.{:02}, '2024-03-{:02} 10:{:02}:00', {})",
                i * 3,
                i % 100,
                i % 28 + 1,
                i % 60,
                i % 2
            )
        })
        .collect();
    format!("INSERT INTO orders VALUES {}", values.join(", "))
}

fn ficus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ficus"))
        .arg("verify")
        .args(args)
        .output()
        .expect("run ficus")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn base<'a>(src: &'a str, tgt: &'a str) -> Vec<&'a str> {
    vec![
        "--source",
        src,
        "--source-table",
        "orders",
        "--target",
        tgt,
        "--key",
        "id",
        "--no-progress",
        "--segment-rows",
        "100",
    ]
}

#[tokio::test]
async fn equal_tables_exit_0_with_a_json_report() {
    let rows = rows();
    let src = Lite::new(&[TABLE, &rows]).await;
    let tgt = Lite::new(&[TABLE, &rows]).await;
    let (s, t) = (src.url(), tgt.url());
    let mut args = base(&s, &t);
    args.push("--json");
    let out = ficus(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["outcome"], "equal");
    assert_eq!(report["summary"]["segments"], 3);
    assert_eq!(report["source"]["rows"], 300);
    assert_eq!(report["columns"].as_array().unwrap().len(), 5);
    assert_eq!(report["columns"][2]["kind"], "decimal");
}

#[tokio::test]
async fn differences_exit_1_and_the_repair_sql_repairs_them() {
    let rows = rows();
    let src = Lite::new(&[TABLE, &rows]).await;
    let tgt = Lite::new(&[
        TABLE,
        &rows,
        "DELETE FROM orders WHERE id = 3",
        "INSERT INTO orders VALUES (1000, 'ghost', 1, '2024-01-01 00:00:00', 0)",
        "UPDATE orders SET customer = '' WHERE id = 150",
        "UPDATE orders SET total = total + 0.01, paid = 1 - paid WHERE id = 299",
    ])
    .await;
    let (s, t) = (src.url(), tgt.url());
    let repair = std::env::temp_dir().join(format!("{}.sql", unique("repair")));
    let repair_path = repair.display().to_string();
    let mut args = base(&s, &t);
    args.extend(["--repair-sql", &repair_path]);
    let out = ficus(&args);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for expected in [
        "missing in target: id=3",
        "extra in target:   id=1000",
        "changed:           id=150",
        "customer: source 'customer 150' | target ''",
        "total: source '897.99' | target '898'",
        "DIFFERENT: 1 missing, 1 extra, 2 changed",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    let sql = std::fs::read_to_string(&repair).expect("repair SQL written");
    assert!(
        sql.contains("INSERT INTO \"orders\"")
            && sql.contains("DELETE FROM \"orders\" WHERE \"id\" = 1000;"),
        "{sql}"
    );

    // Applying the printed statements makes the target equal.
    let stmts: Vec<&str> = sql
        .lines()
        .filter(|l| !l.starts_with("--") && !l.trim().is_empty())
        .collect();
    tgt.exec(&stmts).await;
    let out = ficus(&base(&s, &t));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let _ = std::fs::remove_file(repair);
}

#[tokio::test]
async fn errors_exit_2_and_name_the_fix() {
    let src = Lite::new(&[TABLE, &rows()]).await;
    let tgt = Lite::new(&[
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER, total DECIMAL(10,2))",
    ])
    .await;
    let (s, t) = (src.url(), tgt.url());

    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (
            vec![
                "--source",
                "oracle://x",
                "--source-table",
                "orders",
                "--target",
                &t,
                "--key",
                "id",
            ],
            &["source", "postgres://"],
        ),
        (
            vec![
                "--source",
                &s,
                "--source-table",
                "nope",
                "--target",
                &t,
                "--key",
                "id",
            ],
            &["table `nope` not found"],
        ),
        (
            vec![
                "--source",
                &s,
                "--source-table",
                "orders",
                "--target",
                &t,
                "--key",
                "order_id",
            ],
            &["`order_id`", "--key"],
        ),
        (
            vec![
                "--source",
                &s,
                "--source-table",
                "orders",
                "--target",
                &t,
                "--key",
                "id",
            ],
            &["incompatible", "`customer`"],
        ),
        (
            vec![
                "--source",
                &s,
                "--source-table",
                "orders",
                "--target",
                &t,
                "--key",
                "id",
                "--tolerance",
                "total=abc",
            ],
            &["not a number"],
        ),
    ];
    for (args, needles) in cases {
        let mut args = args.clone();
        args.push("--no-progress");
        let out = ficus(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{args:?}: `{n}` not in {stderr}");
        }
    }

    // With --json the error is JSON on stdout too.
    let out = ficus(&[
        "--source",
        &s,
        "--source-table",
        "orders",
        "--target",
        &t,
        "--key",
        "id",
        "--json",
        "--no-progress",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["exit_code"], 2);
    assert!(v["error"].as_str().unwrap().contains("customer"));
}

/// PostgreSQL to SQLite through the CLI, with a renamed column and a tolerance.
#[tokio::test]
async fn postgres_to_sqlite_with_map_and_tolerance() {
    let Ok(pg) = std::env::var("FICUS_TEST_POSTGRES_URL") else {
        assert_ne!(
            std::env::var("FICUS_REQUIRE_SERVICES").as_deref(),
            Ok("1"),
            "FICUS_TEST_POSTGRES_URL is required"
        );
        eprintln!("note: FICUS_TEST_POSTGRES_URL is not set; skipping");
        return;
    };
    let table = unique("pg");
    let mut c = sqlx::PgConnection::connect(&pg).await.unwrap();
    c.execute(
        format!("CREATE TABLE {table} (id int PRIMARY KEY, who text, ratio float8)").as_str(),
    )
    .await
    .unwrap();
    c.execute(
        format!("INSERT INTO {table} SELECT g, 'w' || g, g / 8.0 FROM generate_series(1, 500) g")
            .as_str(),
    )
    .await
    .unwrap();
    let values: Vec<String> = (1..=500)
        .map(|g| format!("({g}, 'w{g}', {})", g as f64 / 8.0 + 0.0005))
        .collect();
    let lite = Lite::new(&[
        &format!("CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT, ratio REAL)"),
        &format!("INSERT INTO {table} VALUES {}", values.join(", ")),
    ])
    .await;
    let t = lite.url();
    let args = [
        "--source",
        &pg,
        "--source-table",
        &table,
        "--target",
        &t,
        "--key",
        "id",
        "--map",
        "who=name",
        "--no-progress",
    ];
    let out = ficus(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("500 changed"),
        "{}",
        text(&out.stdout)
    );
    let mut tolerant = args.to_vec();
    tolerant.extend(["--tolerance", "ratio=0.001"]);
    let out = ficus(&tolerant);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    c.execute(format!("DROP TABLE {table}").as_str())
        .await
        .unwrap();
}

/// `--expr`: a backfilled SQLite table checked against expressions over the legacy one.
#[tokio::test]
async fn expressions_check_a_backfill() {
    let legacy = "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, \
                  price DECIMAL(10,2))";
    let people = "CREATE TABLE people (id INTEGER PRIMARY KEY, first_name TEXT, \
                  email_lower TEXT, price_cents INTEGER)";
    let (mut old, mut new) = (Vec::new(), Vec::new());
    for i in 1..=250 {
        old.push(format!(
            "({i}, 'Ann{i} Lee', 'Ann{i}@Example.COM', {}.{:02})",
            i * 3,
            i % 100
        ));
        new.push(format!(
            "({i}, 'Ann{i}', 'ann{i}@example.com', {})",
            i * 300 + i % 100
        ));
    }
    let src = Lite::new(&[
        legacy,
        &format!("INSERT INTO customers VALUES {}", old.join(", ")),
    ])
    .await;
    let tgt = Lite::new(&[
        people,
        &format!("INSERT INTO people VALUES {}", new.join(", ")),
    ])
    .await;
    let (s, t) = (src.url(), tgt.url());
    let args = |exprs: &[&str]| {
        let mut a: Vec<String> = [
            "--source",
            &s,
            "--source-table",
            "customers",
            "--target",
            &t,
            "--target-table",
            "people",
            "--key",
            "id",
            "--no-progress",
            "--segment-rows",
            "100",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        for e in exprs {
            a.push("--expr".into());
            a.push(e.to_string());
        }
        a
    };
    let run = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        ficus(&refs)
    };
    let good = [
        "first_name=substr(name, 1, instr(name, ' ') - 1)",
        "email_lower = lower(email)",
        "price_cents=CAST(round(price * 100) AS INTEGER)",
    ];
    let mut json = args(&good);
    json.push("--json".into());
    let out = run(json);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"], "equal");
    assert_eq!(report["columns"][2]["target"], "email_lower");
    assert_eq!(report["columns"][2]["expr"], "lower(email)");

    tgt.exec(&["UPDATE people SET email_lower = 'Ann7@Example.COM' WHERE id = 7"])
        .await;
    let out = run(args(&good));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    for expected in [
        "expr: email_lower = lower(email) (evaluated on the source)",
        "changed:           id=7",
        "email_lower: source 'ann7@example.com' | target 'Ann7@Example.COM'",
        "DIFFERENT: 0 missing, 0 extra, 1 changed",
    ] {
        assert!(stdout.contains(expected), "`{expected}` not in:\n{stdout}");
    }

    for (bad, needles) in [
        ("email_lower=", &["--expr", "empty"][..]),
        ("=lower(email)", &["target column", "empty"]),
        ("lower(email)", &["TARGET_COLUMN=SQL"]),
        ("nope=lower(email)", &["`nope`", "--expr", "email_lower"]),
        (
            "email_lower=lower(emial)",
            &["--expr email_lower", "refused", "emial"],
        ),
        ("email_lower=lower(email); DELETE FROM customers", &["`;`"]),
    ] {
        let out = run(args(&[bad]));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{bad}: `{n}` not in {stderr}");
        }
    }
}

fn postgres_url() -> Option<String> {
    match std::env::var("FICUS_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert_ne!(
                std::env::var("FICUS_REQUIRE_SERVICES").as_deref(),
                Ok("1"),
                "FICUS_TEST_POSTGRES_URL is required"
            );
            eprintln!("note: FICUS_TEST_POSTGRES_URL is not set; skipping");
            None
        }
    }
}

/// Two PostgreSQL tables of `rows` rows, dropped when the value is dropped.
struct PgPair {
    url: String,
    src: String,
    tgt: String,
}

impl PgPair {
    async fn new(url: &str, rows: i64) -> PgPair {
        let pair = PgPair {
            url: url.to_string(),
            src: unique("src"),
            tgt: unique("tgt"),
        };
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        for t in [&pair.src, &pair.tgt] {
            for s in [
                format!("CREATE TABLE {t} (id bigint PRIMARY KEY, note text, n bigint)"),
                format!(
                    "INSERT INTO {t} SELECT g, 'note ' || g, g * 7 FROM generate_series(1, {rows}) g"
                ),
                format!("ANALYZE {t}"),
            ] {
                c.execute(s.as_str()).await.unwrap();
            }
        }
        c.close().await.unwrap();
        pair
    }

    async fn target(&self, stmts: &[&str]) {
        let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
        for s in stmts {
            let s = s.replace("{t}", &self.tgt);
            c.execute(s.as_str()).await.unwrap();
        }
        c.close().await.unwrap();
    }
}

impl Drop for PgPair {
    fn drop(&mut self) {
        let (url, src, tgt) = (self.url.clone(), self.src.clone(), self.tgt.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&url).await {
                    let _ = c
                        .execute(format!("DROP TABLE IF EXISTS {src}, {tgt}").as_str())
                        .await;
                }
            });
        })
        .join();
    }
}

/// A checkpoint file's finished segments, if the file is there and complete.
fn finished_segments(path: &std::path::Path) -> Option<Vec<usize>> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    Some(
        v["segments"]
            .as_array()?
            .iter()
            .enumerate()
            .filter(|(_, s)| s["done"] == true)
            .map(|(i, _)| i)
            .collect(),
    )
}

fn differences(report: &serde_json::Value) -> Vec<String> {
    let mut d: Vec<String> = report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.to_string())
        .collect();
    d.sort();
    d
}

/// `--resume FILE`: a run killed with SIGKILL resumes from its last finished segment,
/// scans only the rest, and reports what an uninterrupted run reports.
#[tokio::test]
async fn a_run_killed_with_sigkill_resumes_from_its_checkpoint() {
    let Some(pg) = postgres_url() else { return };
    let pair = PgPair::new(&pg, 100_000).await;
    pair.target(&[
        "DELETE FROM {t} WHERE id IN (15, 45678, 99999)",
        "UPDATE {t} SET note = 'changed' WHERE id IN (2500, 77777)",
        "UPDATE {t} SET n = NULL WHERE id = 60001",
        "INSERT INTO {t} VALUES (100500, 'extra', 1)",
    ])
    .await;
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "--source",
            &pg,
            "--source-table",
            &pair.src,
            "--target",
            &pg,
            "--target-table",
            &pair.tgt,
            "--key",
            "id",
            "--segment-rows",
            "1000",
            "--download-rows",
            "50",
            "--no-progress",
            "--json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let json = |out: &Output| -> serde_json::Value {
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)))
    };
    let run = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        ficus(&refs)
    };

    // The reference: one uninterrupted run.
    let fresh = run(args(&[]));
    assert_eq!(fresh.status.code(), Some(1), "{}", text(&fresh.stderr));
    let fresh = json(&fresh);
    assert_eq!(fresh["summary"]["segments"], 100);
    assert_eq!(fresh["summary"]["missing"], 3);
    assert_eq!(fresh["summary"]["extra"], 1);
    assert_eq!(fresh["summary"]["changed"], 3);

    // The same run, paced to take seconds, killed once some segments are saved.
    let file = std::env::temp_dir().join(format!("{}.checkpoint.json", unique("resume")));
    let file_arg = file.display().to_string();
    let slow = args(&[
        "--resume",
        &file_arg,
        "--pace",
        "30ms",
        "--max-connections",
        "1",
    ]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ficus"))
        .arg("verify")
        .args(&slow)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if finished_segments(&file).is_some_and(|d| d.len() >= 10) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint within 60s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let done = finished_segments(&file).expect("the checkpoint survives the kill");
    assert!(done.len() >= 10 && done.len() < 100, "{done:?}");
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();

    // A checkpoint of another plan is refused before anything is scanned, and kept.
    let foreign = std::env::temp_dir().join(format!("{}.checkpoint.json", unique("foreign")));
    std::fs::copy(&file, &foreign).unwrap();
    let foreign_arg = foreign.display().to_string();
    let out = run(args(&["--resume", &foreign_arg, "--exclude", "note"]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for needle in [
        "--resume",
        "another verification",
        "columns: checkpoint",
        "nothing was scanned",
    ] {
        assert!(stderr.contains(needle), "`{needle}` not in {stderr}");
    }
    assert!(foreign.exists());
    std::fs::write(&foreign, b"{\"not\": \"a checkpoint\"}").unwrap();
    let out = run(args(&["--resume", &foreign_arg]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not a ficus verify checkpoint"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_file(&foreign);

    // Resumed: it finishes, with the uninterrupted run's report.
    let out = run(args(&["--resume", &file_arg]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let resumed = json(&out);
    assert_eq!(resumed["resumed"]["segments"], done.len() as u64);
    assert_eq!(resumed["resumed"]["started_at_ms"], saved["started_at_ms"]);
    // It scanned only the segments that were not finished: its checksums beyond the
    // checkpoint's are the uninterrupted run's beyond the same segments.
    let n = |v: &serde_json::Value| v.as_u64().unwrap();
    assert_eq!(
        n(&resumed["resumed"]["checksums"]),
        n(&saved["totals"]["checksums"])
    );
    for field in [
        "missing",
        "extra",
        "changed",
        "segments",
        "segments_differing",
        "checksums",
        "rows_downloaded",
    ] {
        assert_eq!(
            resumed["summary"][field], fresh["summary"][field],
            "summary.{field}"
        );
    }
    assert_eq!(resumed["source"]["rows"], fresh["source"]["rows"]);
    assert_eq!(resumed["target"]["rows"], fresh["target"]["rows"]);
    assert_eq!(resumed["outcome"], fresh["outcome"]);
    assert_eq!(differences(&resumed), differences(&fresh));
    assert!(!file.exists(), "a finished run removes its checkpoint");
}

/// `--watermark` and `--changed-since` through the CLI: the incremental scope in the text
/// and JSON reports, and clear errors.
#[tokio::test]
async fn changed_since_through_the_cli() {
    let table = "CREATE TABLE orders (id INTEGER PRIMARY KEY, total DECIMAL(10,2), \
                 version INTEGER NOT NULL)";
    let values: Vec<String> = (1..=500)
        .map(|i| format!("({i}, {}.50, {i})", i * 2))
        .collect();
    let insert = format!("INSERT INTO orders VALUES {}", values.join(", "));
    let src = Lite::new(&[
        table,
        &insert,
        "UPDATE orders SET total = 1, version = 501 WHERE id = 10",
        "UPDATE orders SET total = 2, version = 502 WHERE id = 20",
        // An old difference, before the window: not seen by the incremental run.
        "UPDATE orders SET total = 3 WHERE id = 30",
    ])
    .await;
    let tgt = Lite::new(&[
        table,
        &insert,
        "UPDATE orders SET total = 1, version = 501 WHERE id = 10",
    ])
    .await;
    let (s, t) = (src.url(), tgt.url());
    let mut args = base(&s, &t);
    args.extend(["--watermark", "version", "--changed-since", "501"]);
    let out = ficus(&args);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    for expected in [
        "incremental: rows with version >= 501 on either side (--changed-since 501 minus an overlap of 0)",
        "deleted source rows are not seen",
        "watermark: highest version when the scan started: 501",
        "changed:           id=20",
        "DIFFERENT: 0 missing, 0 extra, 1 changed",
    ] {
        assert!(stdout.contains(expected), "`{expected}` not in:\n{stdout}");
    }
    args.push("--json");
    let out = ficus(&args);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["mode"], "incremental");
    assert_eq!(report["watermark"]["bound"], "501");
    assert_eq!(report["watermark"]["source_high"], "502");
    assert_eq!(report["watermark"]["next"], "501");
    assert_eq!(report["source"]["rows"], 2);

    // A full run with a watermark: every row, and where the next incremental run starts.
    let mut full = base(&s, &t);
    full.extend(["--watermark", "version", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&ficus(&full).stdout).unwrap();
    assert_eq!(report["mode"], "full");
    assert_eq!(report["summary"]["changed"], 2);
    assert_eq!(report["watermark"]["next"], "501");

    for (extra, needles) in [
        (
            vec!["--watermark", "version", "--changed-since", "15m"],
            &["--watermark version", "a timestamp", "nothing was scanned"][..],
        ),
        (
            vec!["--watermark", "total", "--changed-since", "3"],
            &["--watermark total", "cannot order writes"],
        ),
        (
            vec!["--watermark", "nope", "--changed-since", "3"],
            &["`nope`", "--watermark"],
        ),
        (vec!["--changed-since", "3"], &["--watermark"]),
        (
            vec!["--watermark", "version", "--changed-since", "soon"],
            &["not a time"],
        ),
    ] {
        let mut a = base(&s, &t);
        a.extend(extra.iter().copied());
        let out = ficus(&a);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{extra:?}: `{n}` not in {stderr}");
        }
    }
}
