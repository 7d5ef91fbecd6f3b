//! SLOs end to end, with real upstreams, a real gateway, a SQLite store and real webhook
//! receivers: a modern side that starts failing fires modern's page alert; the rollout rolls
//! back naming the SLO (clients see no error: legacy answers the GETs modern fails); the
//! receivers get the firing alert, then the resolved one, as ficus events and as
//! Alertmanager bodies; and every surface (board, store, metrics) agrees.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ficus_control::fleet::FleetRuntime;
use ficus_control::rollout::{RolloutController, Status};
use ficus_control::slo::SloController;
use ficus_store::EventFilter;
use support::{boot, receiver, service, Load};

mod support;

fn file(legacy: &str, modern: &str, hook: &str, am_hook: &str) -> String {
    format!(
        r#"
[[listener]]
bind = "127.0.0.1:0"
[upstream.legacy]
url = "{legacy}"
[upstream.modern]
url = "{modern}"

[[route]]
name = "orders"
path_prefix = "/orders"
legacy = "legacy"
modern = "modern"
stage = "shadow"
sticky = "header:x-user"
[route.shadow]
sample = 0
[route.rollout]
steps = [50, 100]
interval = "1h"
min_requests = 40
# The judge's own error gate only holds here: the SLO is what rolls back.
gates = {{ error = {{ critical = false }} }}

[[route.slo]]
name = "modern-availability"
scope = "modern"
objective = 99.9

[[route.slo]]
name = "availability"
objective = 99.0

[slo]
evaluate_every = "1s"
min_requests = 20

# Short windows, so that recovery is seen within a minute: a window of one minute is the
# current minute.
[[slo.burn_rate]]
severity = "page"
long = "2m"
short = "1m"
factor = 14.4

[[slo.burn_rate]]
severity = "ticket"
long = "3d"
short = "6h"
factor = 1

[[webhook]]
url = "{hook}"
events = ["slo.", "rollout.rolled_back"]

[[webhook]]
url = "{am_hook}"
format = "alertmanager"

[default]
legacy = "legacy"
[access_log]
enabled = false
"#
    )
}

/// Waits (bounded) for `check` to hold; on timeout says what `show` shows.
async fn until<F, S>(what: &str, secs: u64, mut check: F, show: S)
where
    F: FnMut() -> bool,
    S: Fn() -> String,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {}",
            show()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn kinds(got: &std::sync::Mutex<Vec<serde_json::Value>>) -> Vec<String> {
    got.lock()
        .unwrap()
        .iter()
        .map(|v| v["kind"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_modern_pages_rolls_back_naming_the_slo_and_resolves() {
    let (legacy, modern) = (service("legacy").await, service("modern").await);
    let (hook, got) = receiver().await;
    let (am_hook, am_got) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ficus.toml"),
        file(&legacy.url, &modern.url, &hook, &am_hook),
    )
    .unwrap();
    let cp = boot(dir.path()).await;
    let fleet = FleetRuntime::start(cp.clone()).await;
    let slos = SloController::spawn(cp.clone());
    let rollouts = RolloutController::spawn(cp.clone(), Duration::from_millis(100));
    let load = Load::start(&cp, 8);

    // Healthy: both SLOs evaluated, nothing firing, the rollout running at 50 %.
    let board = || cp.slo_board().views();
    until(
        "both SLOs evaluated with modern traffic",
        30,
        || {
            let v = board();
            v.len() == 2
                && v.iter()
                    .all(|s| s.evaluation.burn(300).is_some_and(|b| b.counts.total > 0))
        },
        || format!("{:#?}", board()),
    )
    .await;
    assert!(board().iter().all(|v| v.page_since.is_none()));
    let status = rollouts.status();
    assert_eq!(status[0].status, Status::Running, "{status:?}");

    // Modern fails every request: legacy answers the GETs, modern's own SLO pages.
    modern.fail_permille.store(1000, Ordering::Relaxed);
    let failed_at = Instant::now();
    until(
        "the rollout to roll back",
        60,
        || rollouts.status()[0].status == Status::RolledBack,
        || format!("{:#?}\n{:#?}", rollouts.status(), board()),
    )
    .await;
    let took = failed_at.elapsed();
    let page = board()
        .into_iter()
        .find(|v| v.spec.name == "modern-availability")
        .unwrap();
    assert!(page.page_since.is_some(), "{page:#?}");
    let (sent, errors) = load.stop().await;
    assert_eq!(errors, 0, "clients saw no error in {sent} requests");

    // The rollback names the SLO, in its message and in the verdict's gates.
    let events = cp
        .store()
        .events(EventFilter {
            route: Some("orders".into()),
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    let back = events
        .iter()
        .find(|e| e.kind == "rollout.rolled_back")
        .unwrap();
    assert!(
        back.message.contains("orders/modern-availability"),
        "{}",
        back.message
    );
    assert!(
        back.message.contains("page alert firing"),
        "{}",
        back.message
    );
    let gates = back.data["verdict"]["gates"].as_array().unwrap();
    let slo_gate = gates.iter().find(|g| g["gate"] == "slo").unwrap();
    assert_eq!(slo_gate["observed"]["slo"], "orders/modern-availability");
    let firing = events
        .iter()
        .find(|e| e.kind == "slo.firing" && e.data["severity"] == "page")
        .unwrap();
    assert_eq!(firing.data["slo"], "orders/modern-availability");
    // The numbers that caused it: every modern call failed.
    let rule = &firing.data["evaluation"]["rules"][0];
    assert_eq!(rule["firing"], true, "{}", firing.data);
    assert!(rule["short"]["burn_rate"].as_f64().unwrap() >= 14.4);
    // The route as clients saw it never paged: legacy answered every GET.
    assert!(
        !events
            .iter()
            .any(|e| e.kind == "slo.firing" && e.data["slo"] == "orders/availability"),
        "{events:#?}"
    );

    // With modern out of the path, its page resolves once the one-minute window holds too
    // little traffic to fire (at the next minute at the latest).
    until(
        "the page to resolve",
        75,
        || kinds(&got).iter().any(|k| k == "slo.resolved"),
        || format!("{:?}\n{:#?}", kinds(&got), board()),
    )
    .await;
    let k = kinds(&got);
    let pos = |kind: &str| k.iter().position(|x| x == kind).unwrap();
    assert!(pos("slo.firing") < pos("slo.resolved"), "{k:?}");
    assert!(k.iter().any(|x| x == "rollout.rolled_back"), "{k:?}");
    // The Alertmanager receiver got the same page, firing then resolved, and only alerts
    // (the ticket fires too: a 6-hour window that is a third bad burns far over 1x).
    let pages = || -> Vec<serde_json::Value> {
        am_got
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b["alerts"][0]["labels"]["severity"] == "page")
            .cloned()
            .collect()
    };
    until(
        "the Alertmanager body of the resolution",
        10,
        || pages().len() >= 2,
        || format!("{:#?}", am_got.lock().unwrap()),
    )
    .await;
    assert!(am_got
        .lock()
        .unwrap()
        .iter()
        .all(|b| b["alerts"][0]["labels"]["alertname"].is_string()));
    let am = pages();
    assert_eq!(am.len(), 2, "{am:#?}");
    assert_eq!(am[0]["version"], "4");
    assert_eq!(am[0]["status"], "firing");
    assert_eq!(am[1]["status"], "resolved");
    let alert = &am[0]["alerts"][0];
    assert_eq!(alert["labels"]["severity"], "page");
    assert_eq!(alert["labels"]["route"], "orders");
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    assert_ne!(am[1]["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        am[0]["alerts"][0]["fingerprint"],
        am[1]["alerts"][0]["fingerprint"]
    );
    println!("modern failing to rollback: {took:?}");

    // What the leader published is what every node shows.
    let stored = cp.store().slo_statuses().await.unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().any(|s| s.slo == "orders/modern-availability"));
    // /metrics: the exact counters and the Sloth-named series.
    let text = cp.gateway().telemetry().prometheus();
    assert!(
        text.contains("ficus_slo_requests_total{slo=\"orders/modern-availability\",route=\"orders\",scope=\"modern\"}"),
        "{text}"
    );
    assert!(text.contains("slo:sli_error:ratio_rate5m{"), "{text}");
    assert!(
        text.contains("slo:period_error_budget_remaining:ratio{"),
        "{text}"
    );

    rollouts.stop().await;
    slos.stop().await;
    fleet.stop().await;
}
