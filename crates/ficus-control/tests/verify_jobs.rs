//! Scheduled `[[verify]]` jobs end to end: two real SQLite files as source and target, a
//! real store and gateway, the scheduler triggered with `run_now` so the test does not wait
//! for `every`. Equal first, then a planted difference with its counts, an event only when
//! the outcome changes, a job added by an apply that fails and keeps its schedule.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ficus_control::verify::{SchedulerOptions, VerifyScheduler};
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
