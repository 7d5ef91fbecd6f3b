//! What the SLO controller costs the leader, on a real store: `bench/slo.sh` runs it.
//!
//! 1. **A steady tick** with `ROUTES` routes, each with one SLO (`[[slo.default]]`) and
//!    traffic in each of the last 20 minutes: reread the last 15 minutes from the store,
//!    evaluate every SLO, publish every evaluation (one transaction). Timed over `TICKS`
//!    ticks after the first.
//! 2. **Taking the lead** with `LOAD_ROUTES` routes holding 30 days of counts each, rolled
//!    up as the leader's retention does (minutes for the last 3 days, hours before): the
//!    rollup itself, then the first tick of a new controller, which loads every history and
//!    restores the alert states. With `ROUTES=1`, the store then holds about `LOAD_ROUTES`
//!    route-months: what `bench/slo.sh` measures the space of.
//!
//! Each route's minutes carry one latency threshold's count too, as a route with an
//! availability and a latency SLO writes them.
//!
//! Usage: `cargo run --release -p ficus-control --example slo_tick -- STORE_URL` (a
//! `sqlite://` file that does not exist yet, or a `postgres://...?schema=S` whose schema is
//! empty). Prints one `key=value` line per measurement.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ficus_control::fleet::FleetRuntime;
use ficus_control::slo::SloController;
use ficus_control::ControlPlane;
use ficus_proxy::Gateway;
use ficus_store::{SliRow, Store};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(routes: usize) -> String {
    let mut s = String::from(
        "[[listener]]\nbind = \"127.0.0.1:0\"\n[upstream.legacy]\nurl = \"http://127.0.0.1:9\"\n\
         [access_log]\nenabled = false\n[slo]\nevaluate_every = \"60s\"\n\
         [[slo.default]]\nname = \"availability\"\nobjective = 99.9\n\n",
    );
    for i in 0..routes {
        s.push_str(&format!(
            "[[route]]\nname = \"r{i}\"\npath_prefix = \"/r{i}/\"\nlegacy = \"legacy\"\n\n"
        ));
    }
    s.push_str("[default]\nlegacy = \"legacy\"\n");
    s
}

fn rows(route: &str, minutes: std::ops::Range<i64>) -> Vec<SliRow> {
    minutes
        .map(|m| SliRow {
            node_id: "bench-node".into(),
            route: route.to_string(),
            scope: 0,
            minute: m,
            total: 600 + m % 50,
            c5xx: i64::from(m % 97 == 0),
            c429: 0,
            c4xx: 0,
            // One latency threshold counted too (a latency SLO's row beside each minute).
            slow: vec![(250_000, m % 7)],
        })
        .collect()
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .expect("usage: slo_tick STORE_URL (sqlite://FILE or postgres://...?schema=S)");
    let routes = env("ROUTES", 1000);
    let load_routes = env("LOAD_ROUTES", 20);
    let ticks = env("TICKS", 20);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ficus.toml"), config(routes)).unwrap();
    let store = Store::open(&url).await.expect("the store opens");
    let boot = ControlPlane::boot(&dir.path().join("ficus.toml"), store.clone())
        .await
        .expect("boots");
    let gw = Gateway::start(boot.effective().clone()).await.unwrap();
    let cp = ControlPlane::new(boot, Arc::new(gw));
    let fleet = FleetRuntime::start(cp.clone()).await;
    let t = Instant::now();
    while !cp.leadership().leads() {
        assert!(t.elapsed() < Duration::from_secs(30), "never led");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let now_min = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 60;

    // 1. Steady ticks: every route has traffic in each of the last 20 minutes.
    let recent: Vec<SliRow> = (0..routes)
        .flat_map(|i| rows(&format!("r{i}"), now_min - 19..now_min + 1))
        .collect();
    for chunk in recent.chunks(5000) {
        store.flush_sli(chunk).await.unwrap();
    }
    let slos = SloController::spawn(cp.clone());
    let t = Instant::now();
    slos.tick_now().await.unwrap();
    println!("routes={routes}");
    println!("first_tick_ms={}", ms(t.elapsed()));
    let mut times = Vec::new();
    for _ in 0..ticks {
        let t = Instant::now();
        slos.tick_now().await.unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    if let (Some(mid), Some(max)) = (times.get(times.len() / 2), times.last()) {
        println!("tick_p50_ms={}", ms(*mid));
        println!("tick_max_ms={}", ms(*max));
    }
    let statuses = store.slo_statuses().await.unwrap();
    let status_bytes: usize = statuses.iter().map(|s| s.data.to_string().len()).sum();
    println!("statuses={}", statuses.len());
    println!(
        "status_json_bytes_per_slo={}",
        status_bytes / statuses.len().max(1)
    );
    slos.stop().await;

    // 2. A new leader's first tick with 30 days of minutes for LOAD_ROUTES routes.
    let t = Instant::now();
    for i in 0..load_routes {
        let month = rows(&format!("r{i}"), now_min - 30 * 1440..now_min - 19);
        for chunk in month.chunks(5000) {
            store.flush_sli(chunk).await.unwrap();
        }
    }
    println!("load_routes={load_routes}");
    println!("seed_s={:.1}", t.elapsed().as_secs_f64());
    // The leader's rollup: minutes older than 3 days and 2 hours become hours.
    let t = Instant::now();
    let rolled = store
        .rollup_sli(now_min - (3 * 24 + 2) * 60, 0, None)
        .await
        .unwrap();
    println!("rolled_minutes={rolled}");
    println!("rollup_s={:.1}", t.elapsed().as_secs_f64());
    let fresh = SloController::spawn(cp.clone());
    let t = Instant::now();
    fresh.tick_now().await.unwrap();
    println!("load_tick_ms={}", ms(t.elapsed()));
    fresh.stop().await;
    fleet.stop().await;
}
