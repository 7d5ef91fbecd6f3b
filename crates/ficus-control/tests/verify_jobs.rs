//! Scheduled `[[verify]]` jobs end to end: two real SQLite files as source and target, a
//! real store and gateway, the scheduler triggered with `run_now` so the test does not wait
//! for `every`. Equal first, then a planted difference with its counts, an event only when
//! the outcome changes, a job added by an apply that fails and keeps its schedule. A job
//! with a watermark: full, then incremental from the stored watermark, full again after
//! `full_every`; a full run stopped half-way resumes from its checkpoint in the store.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ficus_control::verify::{job_status, SchedulerOptions, VerifyScheduler};
use ficus_control::ControlPlane;
use ficus_proxy::Gateway;
use ficus_store::{EventFilter, Store};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

const BASE: &str = r#"
[[listener]]
bind = "127.0.0.1:0"
[upstream.legacy]
url = "http://127.0.0.1:9"
[[route]]
name = "orders"
path_prefix = "/orders"
legacy = "legacy"
[default]
legacy = "legacy"
[access_log]
enabled = false

[[verify]]
name = "orders-table"
route = "orders"
source = "sqlite://legacy.db"
target = "sqlite://modern.db"
source_table = "orders"
target_table = "orders"
key = ["id"]
every = "10s"
"#;

async fn sql(path: &Path, statements: &[&str]) {
    let mut c = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    for s in statements {
        sqlx::query(s).execute(&mut c).await.unwrap();
    }
    c.close().await.unwrap();
}

async fn make_table(path: &Path) {
    sql(
        path,
        &[
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL NOT NULL, status TEXT)",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) \
             INSERT INTO orders SELECT i, i * 1.5, 'paid' FROM n",
        ],
    )
    .await;
}

/// Triggers a run and waits (bounded) until `n` more runs have finished.
async fn run_now(s: &VerifyScheduler, n: u64) {
    let mut runs = s.runs();
    let target = *runs.borrow_and_update() + n;
    s.run_now();
    tokio::time::timeout(Duration::from_secs(30), async {
        while *runs.borrow_and_update() < target {
            runs.changed().await.unwrap();
        }
    })
    .await
    .expect("the verify runs finish within 30s");
}

async fn verify_events(store: &Store) -> Vec<(String, String)> {
    let mut ev: Vec<_> = store
        .events(EventFilter {
            limit: 100,
            ..EventFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind.starts_with("verify."))
        .map(|e| (e.kind, e.message))
        .collect();
    ev.reverse();
    ev
}

#[tokio::test]
async fn scheduled_jobs_record_runs_and_events_on_change() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, modern) = (dir.path().join("legacy.db"), dir.path().join("modern.db"));
    make_table(&legacy).await;
    make_table(&modern).await;
    let file = dir.path().join("ficus.toml");
    std::fs::write(&file, BASE).unwrap();
    let store = Store::open(&format!(
        "sqlite://{}",
        dir.path().join("state.db").display()
    ))
    .await
    .unwrap();
    let boot = ControlPlane::boot(&file, store).await.unwrap();
    let gw = Gateway::start(boot.effective().clone()).await.unwrap();
    let cp = ControlPlane::new(boot, Arc::new(gw));
    // A first delay far beyond the test: every run below is one the test asked for.
    let scheduler = VerifyScheduler::spawn(
        cp.clone(),
        SchedulerOptions {
            first_run_delay: Duration::from_secs(3600),
            ..SchedulerOptions::default()
        },
    );
    let store = cp.store().clone();

    // 1. Equal.
    run_now(&scheduler, 1).await;
    let runs = store.verify_runs(Some("orders-table"), 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    assert_eq!(r.outcome, "equal", "{r:?}");
    assert_eq!(r.route.as_deref(), Some("orders"));
    assert_eq!(
        (r.source_table.as_str(), r.target_table.as_str()),
        ("orders", "orders")
    );
    assert_eq!(r.rows_compared, 500);
    assert_eq!((r.missing, r.extra, r.changed), (0, 0, 0));
    assert_eq!(r.report["outcome"], "equal");
    assert!(r.finished_at >= r.started_at);

    // 2. A planted difference: one row missing, one changed, one extra.
    sql(
        &modern,
        &[
            "DELETE FROM orders WHERE id = 7",
            "UPDATE orders SET total = 0 WHERE id = 300",
            "INSERT INTO orders VALUES (900, 1, 'ghost')",
        ],
    )
    .await;
    run_now(&scheduler, 1).await;
    let r = store
        .verify_runs(Some("orders-table"), 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(r.outcome, "different", "{r:?}");
    assert_eq!((r.missing, r.extra, r.changed), (1, 1, 1));
    assert_eq!(r.report["summary"]["missing"], 1);

    // 3. The same outcome again: a run, but no new event.
    run_now(&scheduler, 1).await;
    assert_eq!(
        store
            .verify_runs(Some("orders-table"), 10)
            .await
            .unwrap()
            .len(),
        3
    );
    let events = verify_events(&store).await;
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["verify.equal", "verify.different"], "{events:?}");
    assert!(
        events[1]
            .1
            .contains("1 missing, 1 extra, 1 changed of 500 rows (was equal)"),
        "{}",
        events[1].1
    );

    // 4. An apply adds a job whose target table does not exist: it records the error.
    let text = format!(
        "{BASE}\n[[verify]]\nname = \"broken\"\nsource = \"sqlite://legacy.db\"\n\
         target = \"sqlite://modern.db\"\nsource_table = \"orders\"\ntarget_table = \"nope\"\n\
         key = [\"id\"]\nevery = \"10s\"\n"
    );
    cp.apply_text(&text, "test", "add a job", cp.snapshot().version)
        .await
        .unwrap();
    run_now(&scheduler, 2).await;
    let latest = store.latest_verify_runs().await.unwrap();
    let names: Vec<&str> = latest.iter().map(|r| r.job.as_str()).collect();
    assert_eq!(names, ["broken", "orders-table"]);
    assert_eq!(latest[0].outcome, "error");
    let error = latest[0].error.as_deref().unwrap_or("");
    assert!(error.contains("nope"), "{error}");
    assert_eq!(latest[0].route, None);

    // 5. Fixed data: back to equal, one more event; the broken job keeps erroring quietly.
    sql(
        &modern,
        &[
            "INSERT INTO orders VALUES (7, 10.5, 'paid')",
            "UPDATE orders SET total = 450 WHERE id = 300",
            "DELETE FROM orders WHERE id = 900",
        ],
    )
    .await;
    run_now(&scheduler, 2).await;
    let kinds: Vec<String> = verify_events(&store)
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(
        kinds,
        [
            "verify.equal",
            "verify.different",
            "verify.error",
            "verify.equal"
        ]
    );
    assert_eq!(
        store.verify_runs(Some("broken"), 10).await.unwrap().len(),
        2
    );

    // 6. Removing the jobs stops them.
    let without = BASE.split("[[verify]]").next().unwrap().to_string();
    cp.apply_text(&without, "test", "drop the jobs", cp.snapshot().version)
        .await
        .unwrap();
    let mut runs = scheduler.runs();
    let before = *runs.borrow_and_update();
    // The scheduler looks at the config at least every second.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    scheduler.run_now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(*runs.borrow_and_update(), before);
    assert_eq!(store.verify_runs(None, 100).await.unwrap().len(), 7);

    tokio::time::timeout(Duration::from_secs(10), scheduler.stop())
        .await
        .expect("the scheduler stops");
}

#[test]
fn a_config_job_maps_onto_a_verify_job() {
    assert_eq!(
        ficus_config::defaults::VERIFY_MAX_CONNECTIONS,
        ficus_verify::defaults::MAX_CONNECTIONS,
        "the config's default is ficus-verify's"
    );
    let text = format!(
        "{}\n[[verify]]\nname = \"j\"\nsource = \"postgres://a/b\"\ntarget = \"mysql://c/d\"\n\
         source_table = \"s.t\"\ntarget_table = \"t\"\nkey = [\"id\"]\ncolumns = [\"x\"]\n\
         map = {{ x = \"y\" }}\nwhere = \"id > 3\"\ntolerance = {{ x = 0.5 }}\nmax_connections = 2\n",
        BASE.split("[[verify]]").next().unwrap()
    );
    let config = ficus_config::parse_str(&text, "ficus.toml", Path::new("/etc")).unwrap();
    let job = ficus_control::verify::to_job(&config.verify[0]);
    assert_eq!(job.source.url, "postgres://a/b");
    assert_eq!(job.source.table, "s.t");
    assert_eq!(job.target.url, "mysql://c/d");
    assert_eq!(job.target.table, "t");
    assert_eq!(job.source.where_clause.as_deref(), Some("id > 3"));
    assert_eq!(job.target.where_clause.as_deref(), Some("id > 3"));
    assert_eq!(job.key, ["id"]);
    assert_eq!(job.columns, ["x"]);
    assert_eq!(job.map, [("x".to_string(), "y".to_string())]);
    assert_eq!(job.tolerance, [("x".to_string(), 0.5)]);
    assert_eq!(job.limits.max_connections, 2);
    assert_eq!(job.recheck, None);
    job.validate().unwrap();
}

const INCREMENTAL: &str = r#"
[[listener]]
bind = "127.0.0.1:0"
[upstream.legacy]
url = "http://127.0.0.1:9"
[[route]]
name = "orders"
path_prefix = "/orders"
legacy = "legacy"
[default]
legacy = "legacy"
[access_log]
enabled = false

[[verify]]
name = "orders-versions"
route = "orders"
source = "sqlite://legacy.db"
target = "sqlite://modern.db"
source_table = "orders"
target_table = "orders"
key = ["id"]
every = "10s"
watermark = "version"
full_every = "10s"
"#;

async fn versioned_table(path: &Path, rows: i64) {
    sql(
        path,
        &[
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL NOT NULL, \
             version INTEGER NOT NULL)",
            &format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
                 INSERT INTO orders SELECT i, i * 1.5, i FROM n"
            ),
            "CREATE INDEX orders_version ON orders (version)",
        ],
    )
    .await;
}

async fn control_plane(dir: &Path, config: &str) -> Arc<ControlPlane> {
    let file = dir.join("ficus.toml");
    std::fs::write(&file, config).unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.join("state.db").display()))
        .await
        .unwrap();
    let boot = ControlPlane::boot(&file, store).await.unwrap();
    let gw = Gateway::start(boot.effective().clone()).await.unwrap();
    ControlPlane::new(boot, Arc::new(gw))
}

#[tokio::test]
async fn a_watermark_job_runs_full_then_incremental_then_full_again() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, modern) = (dir.path().join("legacy.db"), dir.path().join("modern.db"));
    versioned_table(&legacy, 500).await;
    versioned_table(&modern, 500).await;
    let cp = control_plane(dir.path(), INCREMENTAL).await;
    let scheduler = VerifyScheduler::spawn(
        cp.clone(),
        SchedulerOptions {
            first_run_delay: Duration::from_secs(3600),
            ..SchedulerOptions::default()
        },
    );
    let store = cp.store().clone();
    let job = cp.snapshot().effective.verify[0].clone();
    let latest = || async {
        store
            .verify_runs(Some("orders-versions"), 1)
            .await
            .unwrap()
            .remove(0)
    };
    let status = job_status(&store, &job).await.unwrap();
    assert_eq!(status.next.mode, ficus_verify::Mode::Full);
    assert_eq!(status.next.reason, "no full run yet");

    // 1. Full, equal: the highest version both sides had is the next run's start.
    run_now(&scheduler, 1).await;
    let full = latest().await;
    assert_eq!(
        (full.mode.as_str(), full.outcome.as_str()),
        ("full", "equal")
    );
    assert_eq!(full.rows_compared, 500);
    assert_eq!(full.bound, None);
    assert_eq!(full.watermark.as_deref(), Some("500"));
    assert!(full.fingerprint.is_some());

    // 2. New writes; the dual-write dropped the one of id 8.
    let writes = [
        "UPDATE orders SET total = 1, version = 501 WHERE id = 7",
        "UPDATE orders SET total = 2, version = 502 WHERE id = 8",
    ];
    sql(&legacy, &writes).await;
    sql(&modern, &writes[..1]).await;
    let status = job_status(&store, &job).await.unwrap();
    assert_eq!(status.next.mode, ficus_verify::Mode::Incremental);
    assert_eq!(
        status.next.since.map(|s| s.to_string()).as_deref(),
        Some("500")
    );
    run_now(&scheduler, 1).await;
    let inc = latest().await;
    assert_eq!(
        (inc.mode.as_str(), inc.outcome.as_str()),
        ("incremental", "different")
    );
    // Only the rows with version >= 500: ids 500, 7 and 8 on the source.
    assert_eq!(inc.rows_compared, 3);
    assert_eq!((inc.missing, inc.extra, inc.changed), (0, 0, 1));
    assert_eq!(inc.bound.as_deref(), Some("500"));
    assert_eq!(inc.report["differences"][0]["key"]["id"], "8");
    // The freshness: the full run, contradicted by this one.
    let f = store
        .latest_equal_verify_run("orders-versions", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((f.run.id, f.contradicted_by), (full.id, Some(inc.id)));

    // 3. Differences do not move the watermark: the same rows are checked again, and now
    // the write has been replayed.
    sql(&modern, &writes[1..]).await;
    run_now(&scheduler, 1).await;
    let again = latest().await;
    assert_eq!(
        (again.mode.as_str(), again.outcome.as_str()),
        ("incremental", "equal")
    );
    assert_eq!(again.bound.as_deref(), Some("500"));
    assert_eq!(again.watermark.as_deref(), Some("502"));
    let f = store
        .latest_equal_verify_run("orders-versions", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (f.run.id, f.full_run_id, f.contradicted_by),
        (again.id, full.id, None)
    );
    assert!(f.fresh(again.finished_at, Duration::from_secs(60)));
    let status = job_status(&store, &job).await.unwrap();
    assert_eq!(status.freshness, Some(f));
    assert_eq!(
        status.next.since.map(|s| s.to_string()).as_deref(),
        Some("502")
    );

    // 4. An incremental run from 502; then full_every brings a full run back.
    run_now(&scheduler, 1).await;
    let next = latest().await;
    assert_eq!(
        (next.mode.as_str(), next.bound.as_deref()),
        ("incremental", Some("502"))
    );
    assert_eq!(next.rows_compared, 1);
    let wait = (full.started_at + 10_500 - next.finished_at).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    run_now(&scheduler, 1).await;
    // The first run after that one (the one asked for, or the job's own, due `every` after
    // the last) starts 10 s or more after the full run: full again.
    let after: Vec<_> = store
        .verify_runs(Some("orders-versions"), 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.id > next.id)
        .collect();
    let full2 = after.last().expect("a run after the incremental one");
    assert!(full2.started_at >= full.started_at + 10_000);
    assert_eq!(
        (full2.mode.as_str(), full2.outcome.as_str()),
        ("full", "equal")
    );
    assert_eq!(full2.rows_compared, 500);

    let kinds: Vec<String> = verify_events(&store)
        .await
        .into_iter()
        .map(|e| e.1)
        .collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert!(
        kinds[1].contains("different: 0 missing, 0 extra, 1 changed of 3 rows written since 500"),
        "{}",
        kinds[1]
    );
    tokio::time::timeout(Duration::from_secs(10), scheduler.stop())
        .await
        .expect("the scheduler stops");
}

#[tokio::test]
async fn a_full_run_stopped_half_way_resumes_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, modern) = (dir.path().join("legacy.db"), dir.path().join("modern.db"));
    make_table(&legacy).await;
    make_table(&modern).await;
    let rows = "WITH RECURSIVE n(i) AS (SELECT 501 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
                INSERT INTO orders SELECT i, i * 1.5, 'paid' FROM n";
    sql(&legacy, &[rows]).await;
    sql(&modern, &[rows]).await;
    sql(
        &modern,
        &[
            "DELETE FROM orders WHERE id = 15000",
            "UPDATE orders SET status = 'lost' WHERE id = 19000",
        ],
    )
    .await;
    let cp = control_plane(dir.path(), BASE).await;
    let options = SchedulerOptions {
        first_run_delay: Duration::from_secs(3600),
        limits: Some(ficus_verify::Limits {
            segment_rows: 200,
            pace: Duration::from_millis(15),
            ..ficus_verify::Limits::default()
        }),
    };
    let store = cp.store().clone();

    // A run, stopped (as a shutdown or a crash would) once some segments are saved.
    let first = VerifyScheduler::spawn(cp.clone(), options.clone());
    first.run_now();
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Some(p) = store.verify_progress("orders-table").await.unwrap() {
                if p.segments_done >= 10 {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a checkpoint within 60s");
    first.stop().await;
    // Whatever the last save was, once the abandoned run's writer is done.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let saved = store
        .verify_progress("orders-table")
        .await
        .unwrap()
        .unwrap();
    assert!(store.verify_runs(None, 10).await.unwrap().is_empty());
    assert!(
        saved.segments_done >= 10 && saved.segments_done < 100,
        "{saved:?}"
    );

    // The next scheduler resumes it.
    let second = VerifyScheduler::spawn(cp.clone(), options);
    let job = cp.snapshot().effective.verify[0].clone();
    let status = job_status(&store, &job).await.unwrap();
    assert_eq!(
        status.next.resumes_segments,
        Some(saved.segments_done as u64)
    );
    run_now(&second, 1).await;
    let resumed = store
        .verify_runs(Some("orders-table"), 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(resumed.outcome, "different", "{resumed:?}");
    assert_eq!(resumed.report["resumed"]["segments"], saved.segments_done);
    assert_eq!(resumed.started_at, saved.started_at);
    assert_eq!(store.verify_progress("orders-table").await.unwrap(), None);

    // A fresh run of the same data: the same report.
    run_now(&second, 1).await;
    let fresh = store
        .verify_runs(Some("orders-table"), 1)
        .await
        .unwrap()
        .remove(0);
    assert!(fresh.report.get("resumed").is_none());
    for field in [
        "missing",
        "extra",
        "changed",
        "segments",
        "segments_differing",
        "checksums",
    ] {
        assert_eq!(
            resumed.report["summary"][field], fresh.report["summary"][field],
            "{field}"
        );
    }
    assert_eq!(resumed.report["differences"], fresh.report["differences"]);
    assert_eq!(
        (resumed.missing, resumed.changed, resumed.rows_compared),
        (1, 1, 20_000)
    );
    tokio::time::timeout(Duration::from_secs(10), second.stop())
        .await
        .expect("the scheduler stops");
}
