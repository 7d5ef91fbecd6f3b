//! Hot reload under load and graceful shutdown, on real sockets.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::*;

const CONFIG: &str = r#"
[[listener]]
bind = "127.0.0.1:0"
[upstream.legacy]
url = "{legacy}"
[upstream.modern]
url = "{modern}"
[[route]]
name = "api"
path_prefix = "/api"
legacy = "legacy"
modern = "modern"
stage = "canary"
weight = 0
debug_header = true
[default]
legacy = "legacy"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_concurrent_load_fails_no_request() {
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    let vars = [("legacy", legacy.url()), ("modern", modern.url())];
    let gw = Arc::new(TestGateway::start(CONFIG, &vars).await);
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..8 {
        let (gw, ok, failed, stop) = (gw.clone(), ok.clone(), failed.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let client = client();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 2000 {
                i += 1;
                let req = http::Request::get(gw.url(&format!("/api/{c}/{i}")))
                    .header("x-user-id", format!("{c}-{i}"))
                    .body(full(""))
                    .unwrap();
                match client.request(req).await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for round in 0..20 {
        let weight = (round * 5) % 101;
        let text = CONFIG.replace("weight = 0", &format!("weight = {weight}"));
        gw.gateway()
            .reload(config(&text, &vars))
            .expect("valid reload");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert!(
        ok.load(Ordering::Relaxed) > 200,
        "load ran: {}",
        ok.load(Ordering::Relaxed)
    );
    assert!(modern.hits() > 0 && legacy.hits() > 0);
}

#[tokio::test]
async fn a_reload_that_changes_listeners_is_refused_and_the_old_table_serves() {
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    let vars = [("legacy", legacy.url()), ("modern", modern.url())];
    let gw = TestGateway::start(CONFIG, &vars).await;
    let text = CONFIG
        .replace("bind = \"127.0.0.1:0\"", "bind = \"127.0.0.1:1\"")
        .replace("weight = 0", "weight = 100");
    let err = gw.gateway().reload(config(&text, &vars)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "[[listener]] cannot change on reload; restart ficus to apply it"
    );
    let (_, h, _) = get(&gw.url("/api/x"), &[]).await;
    assert_eq!(
        header(&h, "x-ficus-upstream"),
        "legacy",
        "the old table (weight 0) still serves"
    );
}

#[tokio::test]
async fn reload_keeps_warm_upstream_pools() {
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    let vars = [("legacy", legacy.url()), ("modern", modern.url())];
    let gw = TestGateway::start(CONFIG, &vars).await;
    let before = gw.gateway().table();
    let text = CONFIG.replace("weight = 0", "weight = 50");
    gw.gateway().reload(config(&text, &vars)).unwrap();
    let after = gw.gateway().table();
    assert!(!Arc::ptr_eq(&before, &after));
    for (a, b) in before.upstreams().iter().zip(after.upstreams()) {
        assert!(
            Arc::ptr_eq(a, b),
            "unchanged upstream {} keeps its client",
            a.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_requests_and_stops_accepting() {
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    let vars = [("legacy", legacy.url()), ("modern", modern.url())];
    let mut gw = TestGateway::start(CONFIG, &vars).await;
    let url = gw.url("/sleep/700");
    let in_flight = tokio::spawn(async move { get(&url, &[]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let addr = gw.addr;
    let left = gw.gw.take().unwrap().shutdown(Duration::from_secs(5)).await;
    assert_eq!(left, 0, "every connection drained within the grace period");
    let (status, _, body) = in_flight.await.unwrap();
    assert_eq!(
        (status.as_u16(), &body[..]),
        (200, &b"legacy"[..]),
        "the in-flight request was answered"
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener is closed after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_up_at_the_grace_period() {
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    let vars = [("legacy", legacy.url()), ("modern", modern.url())];
    let text = CONFIG.replace(
        "url = \"{legacy}\"",
        "url = \"{legacy}\"\nrequest_timeout = \"60s\"",
    );
    let mut gw = TestGateway::start(&text, &vars).await;
    let url = gw.url("/sleep/5000");
    let _slow = tokio::spawn(async move { get(&url, &[]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = std::time::Instant::now();
    let left = gw
        .gw
        .take()
        .unwrap()
        .shutdown(Duration::from_millis(300))
        .await;
    assert_eq!(left, 1);
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_threads_share_the_port_reload_together_and_drain() {
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    let vars = [("legacy", legacy.url()), ("modern", modern.url())];
    let gw = ficus_proxy::Gateway::start_with_workers(config(CONFIG, &vars), 3)
        .await
        .expect("gateway starts with 3 workers");
    let addr = gw.local_addrs()[0];
    assert_ne!(addr.port(), 0);
    // Many fresh connections: the kernel spreads them over the workers' sockets.
    for i in 0..30 {
        let (s, h, _) = get(
            &format!("http://{addr}/api/{i}"),
            &[("connection", "close")],
        )
        .await;
        assert_eq!(
            (s.as_u16(), header(&h, "x-ficus-upstream")),
            (200, "legacy")
        );
    }
    gw.reload(config(&CONFIG.replace("weight = 0", "weight = 100"), &vars))
        .unwrap();
    for i in 0..30 {
        let (_, h, _) = get(
            &format!("http://{addr}/api/{i}"),
            &[("connection", "close")],
        )
        .await;
        assert_eq!(
            header(&h, "x-ficus-upstream"),
            "modern",
            "every worker sees the new table"
        );
    }
    let slow = tokio::spawn(async move { get(&format!("http://{addr}/sleep/500"), &[]).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(gw.shutdown(Duration::from_secs(5)).await, 0);
    assert_eq!(
        slow.await.unwrap().0,
        200,
        "the in-flight request was answered"
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "every worker socket is closed"
    );
}
