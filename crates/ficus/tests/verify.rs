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
