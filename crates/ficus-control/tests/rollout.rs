//! The rollout controller with real upstreams, a real gateway and a SQLite store: a healthy
//! modern is promoted through every step; one failing 30 % of its requests is rolled back
//! while clients see no GET error; one three times slower is rolled back; too little traffic
//! holds; a restart resumes at the stored step; a manual gate waits; every decision is an
//! event with its numbers.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ficus_config::Stage;
use ficus_control::rollout::{RolloutController, Status};
use ficus_control::ControlPlane;
use ficus_store::EventFilter;
use support::{boot, receiver, service, Load};

mod support;

fn file(legacy: &str, modern: &str, rollout: &str) -> String {
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
steps = [10, 50, 100]
interval = "1s"
min_requests = 40
{rollout}
[default]
legacy = "legacy"
[access_log]
enabled = false
"#
    )
}

async fn rollout_events(cp: &ControlPlane) -> Vec<ficus_store::Event> {
    let mut ev = cp
        .store()
        .events(EventFilter {
            route: Some("orders".into()),
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    ev.reverse();
    ev.retain(|e| e.kind.starts_with("rollout."));
    ev
}

/// Waits (bounded) for a rollout status; on timeout says where it is and why.
async fn until_status(ctl: &RolloutController, want: Status, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = ctl.status();
        if v.first().is_some_and(|r| r.status == want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {want:?}: {}",
            serde_json::to_string_pretty(&v).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn status(c: &RolloutController) -> (Status, usize) {
    let v = c.status();
    (v[0].status, v[0].step)
}

fn route(cp: &ControlPlane) -> (Stage, f64) {
    let snap = cp.snapshot();
    let r = snap
        .effective
        .all_routes()
        .find(|r| r.name == "orders")
        .unwrap();
    (r.stage, r.weight.percent())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_modern_is_promoted_through_every_step() {
    let (legacy, modern) = (service("legacy").await, service("modern").await);
    let dir = tempfile::tempdir().unwrap();
    // The default gates: sub-millisecond loopback latencies move a lot when the test machine
    // is busy (tests run in parallel), but never by the 5 ms a slowdown must reach to count.
    std::fs::write(
        dir.path().join("ficus.toml"),
        file(&legacy.url, &modern.url, ""),
    )
    .unwrap();
    let cp = boot(dir.path()).await;
    let ctl = RolloutController::spawn(cp.clone(), Duration::from_millis(50));
    let load = Load::start(&cp, 8);
    until_status(&ctl, Status::Completed, 60).await;
    let (sent, errors) = load.stop().await;
    assert_eq!(errors, 0, "{sent} requests");
    assert_eq!(route(&cp), (Stage::Modern, 100.0));
    let kinds: Vec<String> = rollout_events(&cp)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    let decisive: Vec<&str> = kinds
        .iter()
        .map(String::as_str)
        .filter(|k| *k != "rollout.hold")
        .collect();
    assert_eq!(
        decisive,
        [
            "rollout.started",
            "rollout.promoted",
            "rollout.promoted",
            "rollout.completed"
        ]
    );
    // Every promotion carries the verdict's numbers.
    let ev = rollout_events(&cp).await;
    let promoted = ev.iter().find(|e| e.kind == "rollout.promoted").unwrap();
    let gates = promoted.data["verdict"]["gates"].as_array().unwrap();
    assert!(
        gates
            .iter()
            .any(|g| g["gate"] == "error-rate" && g["outcome"] == "pass"),
        "{}",
        promoted.data
    );
    assert_eq!(promoted.data["weight"]["from"], 10.0);
    assert_eq!(promoted.data["weight"]["to"], 50.0);
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_failing_30_percent_is_rolled_back_and_no_get_fails() {
    let (legacy, modern) = (service("legacy").await, service("modern").await);
    modern.fail_permille.store(300, Ordering::Relaxed);
    let dir = tempfile::tempdir().unwrap();
    // A webhook receiver, and a dead one that must not hold anything up.
    let (hook_url, received) = receiver().await;
    let dead = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        format!("http://{a}/hook")
    };
    let text = format!(
        "{}\n[[webhook]]\nurl = \"{hook_url}\"\n[[webhook]]\nurl = \"{dead}\"\ntimeout = \"100ms\"\nretries = 1\n",
        file(&legacy.url, &modern.url, "")
    );
    std::fs::write(dir.path().join("ficus.toml"), text).unwrap();
    let cp = boot(dir.path()).await;
    let ctl = RolloutController::spawn(cp.clone(), Duration::from_millis(50));
    let load = Load::start(&cp, 8);
    let started = Instant::now();
    until_status(&ctl, Status::RolledBack, 30).await;
    let took = started.elapsed();
    let (sent, errors) = load.stop().await;
    assert_eq!(
        errors, 0,
        "fallback answered every failed GET ({sent} sent)"
    );
    assert_eq!(route(&cp), (Stage::Shadow, 0.0), "back to shadow, weight 0");
    assert!(
        took < Duration::from_secs(10),
        "rolled back in {took:?}, well within the 1 s interval's first steps"
    );
    let ev = rollout_events(&cp).await;
    let back = ev.iter().find(|e| e.kind == "rollout.rolled_back").unwrap();
    let error_gate = back.data["verdict"]["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"] == "error-rate")
        .unwrap();
    assert_eq!(error_gate["outcome"], "fail", "{}", back.data);
    assert_eq!(error_gate["confirmed"], true);
    assert!(
        back.message.contains("rolled back at 10%"),
        "{}",
        back.message
    );
    // /metrics counts the judge's rollback once, as the rollout's, and the route's stage.
    let text = cp.gateway().telemetry().prometheus();
    for line in [
        "ficus_rollbacks_total{route=\"orders\",by=\"rollout\"} 1\n",
        "ficus_rollbacks_total{route=\"orders\",by=\"manual\"} 0\n",
        "ficus_route_stage{route=\"orders\",stage=\"shadow\"} 1\n",
        "ficus_route_weight{route=\"orders\"} 0.0\n",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
    // The webhook got the decisions as JSON, the dead one did not stop anything.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let kinds: Vec<String> = received
            .lock()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap_or("").to_string())
            .collect();
        if kinds.iter().any(|k| k == "rollout.rolled_back") {
            assert_eq!(
                kinds.first().map(String::as_str),
                Some("rollout.started"),
                "{kinds:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no webhook for the rollback: {kinds:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Terminal: nothing else happens until someone starts it again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status(&ctl).0, Status::RolledBack);
    assert_eq!(route(&cp), (Stage::Shadow, 0.0));
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_three_times_slower_is_rolled_back() {
    let (legacy, modern) = (service("legacy").await, service("modern").await);
    // Three times slower, by 20 ms: a slowdown users feel, well over the default 5 ms minimum
    // even when the gateway's own queueing on a busy test machine adds a few milliseconds to
    // both sides.
    legacy.delay_ms.store(10, Ordering::Relaxed);
    modern.delay_ms.store(30, Ordering::Relaxed);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ficus.toml"),
        file(&legacy.url, &modern.url, ""),
    )
    .unwrap();
    let cp = boot(dir.path()).await;
    let ctl = RolloutController::spawn(cp.clone(), Duration::from_millis(50));
    let load = Load::start(&cp, 6);
    until_status(&ctl, Status::RolledBack, 40).await;
    let _ = load.stop().await;
    let ev = rollout_events(&cp).await;
    let back = ev.iter().find(|e| e.kind == "rollout.rolled_back").unwrap();
    let p99 = back.data["verdict"]["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"] == "latency-p99")
        .unwrap();
    assert_eq!(p99["outcome"], "fail", "{}", back.data);
    assert_eq!(p99["confirmed"], true, "{}", back.data);
    // Over both limits: the ratio and the absolute minimum.
    let o = &p99["observed"];
    assert!(o["ratio"].as_f64().unwrap() > 1.5, "{o}");
    assert!(
        o["delta_ms"].as_f64().unwrap() > o["min_delta_ms"].as_f64().unwrap(),
        "{o}"
    );
    assert_eq!(o["min_delta_ms"], 5.0);
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_little_traffic_holds_and_says_what_is_missing() {
    let (legacy, modern) = (service("legacy").await, service("modern").await);
    let dir = tempfile::tempdir().unwrap();
    let text =
        file(&legacy.url, &modern.url, "").replace("min_requests = 40", "min_requests = 100000");
    std::fs::write(dir.path().join("ficus.toml"), text).unwrap();
    let cp = boot(dir.path()).await;
    let ctl = RolloutController::spawn(cp.clone(), Duration::from_millis(50));
    let load = Load::start(&cp, 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _ = load.stop().await;
    assert_eq!(
        status(&ctl),
        (Status::Running, 0),
        "still at the first step"
    );
    assert_eq!(route(&cp), (Stage::Canary, 10.0));
    let ev = rollout_events(&cp).await;
    let hold = ev
        .iter()
        .find(|e| e.kind == "rollout.hold")
        .expect("a hold event");
    let missing = &hold.data["verdict"]["missing"];
    assert!(
        missing["requests"].as_u64().unwrap() > 90_000,
        "{}",
        hold.data
    );
    // The decision is said once: "holding at 10%: needs ...", not "holding at 10%: hold: ...".
    assert!(
        hold.message.starts_with("holding at 10%: needs "),
        "{}",
        hold.message
    );
    // 30 ticks of holding are a handful of events, not one per tick.
    let holds = ev.iter().filter(|e| e.kind == "rollout.hold").count();
    assert!(holds <= 5, "{holds} hold events in 1.5 s");
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_gate_waits_and_a_restart_resumes_at_the_stored_step() {
    let (legacy, modern) = (service("legacy").await, service("modern").await);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ficus.toml"),
        file(&legacy.url, &modern.url, "manual = [50]"),
    )
    .unwrap();
    let cp = boot(dir.path()).await;
    let ctl = RolloutController::spawn(cp.clone(), Duration::from_millis(50));
    let load = Load::start(&cp, 8);
    until_status(&ctl, Status::Waiting, 30).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status(&ctl), (Status::Waiting, 0), "it waits");
    assert_eq!(route(&cp).1, 10.0);
    let events = ctl
        .command("orders", "promote", "cli:ana", "looks good")
        .await
        .unwrap();
    assert_eq!(events.last().unwrap().kind, "rollout.promoted");
    assert_eq!(events.last().unwrap().actor, "cli:ana");
    assert_eq!(route(&cp), (Stage::Canary, 50.0));
    let _ = load.stop().await;
    ctl.stop().await;
    let err = {
        // A command that does not fit the state is refused and changes nothing.
        let c2 = RolloutController::spawn(cp.clone(), Duration::from_secs(3600));
        let e = c2
            .command("orders", "resume", "cli:ana", "x")
            .await
            .unwrap_err();
        c2.stop().await;
        e
    };
    assert!(err.to_string().contains("only a paused rollout"), "{err}");

    // Restart: a new gateway and control plane from the same file and store.
    cp.gateway().shutdown(Duration::from_secs(1)).await;
    drop(cp);
    let cp = boot(dir.path()).await;
    assert_eq!(
        route(&cp),
        (Stage::Canary, 50.0),
        "the weight override survived"
    );
    let ctl = RolloutController::spawn(cp.clone(), Duration::from_millis(50));
    ctl.tick_now().await.unwrap();
    assert_eq!(
        status(&ctl),
        (Status::Running, 1),
        "resumed at the 50 % step"
    );
    let kinds: Vec<String> = rollout_events(&cp)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        !kinds.iter().skip(3).any(|k| k == "rollout.started"),
        "not started over: {kinds:?}"
    );
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revert_after_completion_ends_the_rollout_and_every_surface_says_so() {
    let (legacy, modern) = (service("legacy").await, service("modern").await);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ficus.toml"),
        file(&legacy.url, &modern.url, ""),
    )
    .unwrap();
    let cp = boot(dir.path()).await;
    // Ticks are driven by hand.
    let ctl = RolloutController::spawn(cp.clone(), Duration::from_secs(3600));
    ctl.tick_now().await.unwrap();
    for _ in 0..3 {
        ctl.command("orders", "promote", "alice", "ship it")
            .await
            .unwrap();
    }
    assert_eq!(ctl.status()[0].status, Status::Completed);
    assert_eq!(route(&cp).0, Stage::Modern);
    // Reverting to version 1 puts the route back where the file had it.
    cp.revert(1, "bob", "back to the file", None).await.unwrap();
    assert_ne!(route(&cp).0, Stage::Modern);
    ctl.tick_now().await.unwrap();
    let view = &ctl.status()[0];
    assert_eq!(
        view.status,
        Status::Aborted,
        "not 'completed' on a route that is not on modern"
    );
    let last = rollout_events(&cp).await.into_iter().last().unwrap();
    assert_eq!(last.kind, "rollout.aborted");
    assert!(last.message.contains("moved by hand"), "{}", last.message);
    // It stays ended: later ticks record nothing more.
    let n = rollout_events(&cp).await.len();
    ctl.tick_now().await.unwrap();
    assert_eq!(rollout_events(&cp).await.len(), n);
    // And `start` begins again from the first step.
    ctl.command("orders", "start", "alice", "again")
        .await
        .unwrap();
    assert_eq!(ctl.status()[0].status, Status::Running);
    ctl.stop().await;
}
