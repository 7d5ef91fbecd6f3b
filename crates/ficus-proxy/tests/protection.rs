//! Traffic protection through real sockets: rate limits answer 429 with exact headers,
//! concurrency limits queue and shed with 503 by priority, circuit breakers send modern's
//! traffic to legacy and recover, and an overload keeps accepted requests fast.

mod support;

use std::time::{Duration, Instant};

use support::*;

fn config(upstream_extra: &str, routes: &str) -> String {
    format!(
        r#"
[[listener]]
bind = "127.0.0.1:0"
[upstream.legacy]
url = "{{legacy}}"
{upstream_extra}
[upstream.modern]
url = "{{modern}}"
request_timeout = "2s"
{routes}
[default]
legacy = "legacy"
[access_log]
enabled = false
"#
    )
}

#[tokio::test]
async fn a_rate_limit_answers_429_with_exact_headers_after_the_burst() {
    let legacy = Upstream::start("legacy").await;
    let gw = TestGateway::start(
        &config(
            "",
            r#"[[route]]
name = "api"
path_prefix = "/"
legacy = "legacy"
[route.rate_limit]
per_second = 0.5
burst = 3
key = "header:x-user"
"#,
        ),
        &[("legacy", legacy.url()), ("modern", legacy.url())],
    )
    .await;
    for _ in 0..3 {
        let (s, _, _) = get(&gw.url("/a"), &[("x-user", "ana")]).await;
        assert_eq!(s.as_u16(), 200);
    }
    let (s, h, body) = get(&gw.url("/a"), &[("x-user", "ana")]).await;
    assert_eq!(s.as_u16(), 429);
    assert_eq!(header(&h, "content-type"), "application/problem+json");
    assert_eq!(header(&h, "ratelimit-limit"), "3");
    assert_eq!(header(&h, "ratelimit-remaining"), "0");
    // One request every 2 s: the next one is allowed in 2 s, the full burst in 6 s.
    assert_eq!(header(&h, "retry-after"), "2");
    assert_eq!(header(&h, "ratelimit-reset"), "6");
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["route"], "api");
    assert!(
        problem["fix"].as_str().unwrap().contains("Retry-After"),
        "{problem}"
    );
    assert_eq!(
        legacy.hits(),
        3,
        "the refused request never reached the upstream"
    );
    // Another key has its own budget.
    let (s, _, _) = get(&gw.url("/a"), &[("x-user", "bo")]).await;
    assert_eq!(s.as_u16(), 200);
    let text = gw.gateway().telemetry().prometheus();
    assert!(
        text.contains("ficus_rate_limited_total{route=\"api\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("ficus_rate_allowed_total{route=\"api\"} 4"),
        "{text}"
    );
}

#[tokio::test]
async fn a_rate_limiter_tracks_at_most_max_keys() {
    let legacy = Upstream::start("legacy").await;
    let gw = TestGateway::start(
        &config(
            "",
            r#"[[route]]
name = "api"
path_prefix = "/"
legacy = "legacy"
[route.rate_limit]
per_second = 1
burst = 1
key = "header:x-user"
max_keys = 64
"#,
        ),
        &[("legacy", legacy.url()), ("modern", legacy.url())],
    )
    .await;
    for u in 0..640 {
        let (s, _, _) = get(&gw.url("/k"), &[("x-user", &format!("user-{u}"))]).await;
        assert_eq!(s.as_u16(), 200, "every new key has its burst");
    }
    let table = gw.gateway().table();
    let c = table.routes()[0].rate.as_ref().unwrap().limiter.counters();
    assert!(c.tracked_keys <= 64, "{c:?}");
    assert!(c.evicted_keys >= 640 - 64, "{c:?}");
}

/// Sends GETs concurrently; returns (status, elapsed, problem type) per request, in order.
async fn burst(urls: Vec<String>) -> Vec<(u16, Duration, String)> {
    let tasks: Vec<_> = urls
        .into_iter()
        .map(|u| {
            tokio::spawn(async move {
                let t = Instant::now();
                let (s, h, body) = get(&u, &[]).await;
                let kind = if h
                    .get("content-type")
                    .is_some_and(|v| v == "application/problem+json")
                {
                    serde_json::from_slice::<serde_json::Value>(&body).unwrap()["type"]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                } else {
                    String::new()
                };
                (s.as_u16(), t.elapsed(), kind)
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_full_upstream_queues_then_sheds_with_503_and_retry_after() {
    let legacy = Upstream::start("legacy").await;
    let gw = TestGateway::start(
        &config(
            "max_in_flight = 2\nqueue = 1\nqueue_timeout = \"200ms\"",
            "",
        ),
        &[("legacy", legacy.url()), ("modern", legacy.url())],
    )
    .await;
    let urls = (0..5).map(|_| gw.url("/sleep/1000")).collect();
    let results = burst(urls).await;
    let ok = results.iter().filter(|r| r.0 == 200).count();
    assert_eq!(ok, 2, "two slots: {results:?}");
    let full: Vec<_> = results
        .iter()
        .filter(|r| r.2.ends_with("overloaded") && r.1 < Duration::from_millis(150))
        .collect();
    assert_eq!(full.len(), 2, "two shed at once (queue full): {results:?}");
    let timed_out: Vec<_> = results
        .iter()
        .filter(|r| {
            r.0 == 503 && r.1 >= Duration::from_millis(190) && r.1 < Duration::from_millis(900)
        })
        .collect();
    assert_eq!(
        timed_out.len(),
        1,
        "one waited its 200 ms queue_timeout: {results:?}"
    );
    let (s, h, _) = {
        // While the two slow ones still hold their slots, a new request is shed with Retry-After.
        let url = gw.url("/sleep/1");
        let slow: Vec<_> = (0..2).map(|_| gw.url("/sleep/500")).collect();
        let held = tokio::spawn(burst(slow));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let queued = tokio::spawn({
            let u = gw.url("/sleep/1");
            async move { get(&u, &[]).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let r = get(&url, &[]).await;
        let _ = (held.await, queued.await);
        r
    };
    assert_eq!(s.as_u16(), 503);
    assert_eq!(header(&h, "retry-after"), "1");
    let text = gw.gateway().telemetry().prometheus();
    // Two shed at once and one timed out in the first burst; in the second, the queued one
    // timed out behind the 500 ms requests and the last one found the queue full.
    assert!(
        text.contains("ficus_upstream_shed_total{upstream=\"legacy\",reason=\"queue_timeout\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("ficus_upstream_shed_total{upstream=\"legacy\",reason=\"queue_full\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("ficus_upstream_in_flight{upstream=\"legacy\"} 0"),
        "slots come back: {text}"
    );
}

#[tokio::test]
async fn critical_routes_are_shed_last() {
    let legacy = Upstream::start("legacy").await;
    let gw = TestGateway::start(
        &config(
            "max_in_flight = 1\nqueue = 1\nqueue_timeout = \"5s\"",
            r#"[[route]]
name = "checkout"
path = "/sleep/2"
legacy = "legacy"
priority = "critical"
[[route]]
name = "prefetch"
path_prefix = "/sleep"
legacy = "legacy"
priority = "low"
"#,
        ),
        &[("legacy", legacy.url()), ("modern", legacy.url())],
    )
    .await;
    // The one slot is busy; a low-priority request waits in the one queue place...
    let busy = tokio::spawn(burst(vec![gw.url("/sleep/400")]));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let low = tokio::spawn(burst(vec![gw.url("/sleep/1")]));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ...until a critical one takes its place.
    let critical = burst(vec![gw.url("/sleep/2")]).await;
    let low = low.await.unwrap();
    assert_eq!(critical[0].0, 200, "{critical:?}");
    assert_eq!(low[0].0, 503, "{low:?}");
    assert!(
        low[0].1 < Duration::from_millis(300),
        "shed when displaced, not at its timeout: {low:?}"
    );
    assert_eq!(busy.await.unwrap()[0].0, 200);
    let text = gw.gateway().telemetry().prometheus();
    assert!(
        text.contains("ficus_upstream_shed_total{upstream=\"legacy\",reason=\"preempted\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn modern_behind_an_open_breaker_is_answered_by_legacy_then_recovers() {
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    modern.set_status(503);
    let text = config(
        "",
        r#"[[route]]
name = "api"
path_prefix = "/"
legacy = "legacy"
modern = "modern"
stage = "modern"
debug_header = true
"#,
    )
    .replace(
        "request_timeout = \"2s\"",
        "request_timeout = \"2s\"\n[upstream.modern.breaker]\nconsecutive_failures = 3\nopen_for = \"300ms\"\nhalf_open_probes = 1",
    );
    let gw = TestGateway::start(&text, &[("legacy", legacy.url()), ("modern", modern.url())]).await;
    let mut events = gw.gateway().events().take_receiver().unwrap();
    for _ in 0..3 {
        let (s, h, _) = get(&gw.url("/x"), &[]).await;
        assert_eq!(
            (s.as_u16(), header(&h, "x-ficus-upstream")),
            (200, "legacy-fallback")
        );
    }
    assert_eq!(modern.hits(), 3);
    // Open: modern is not called at all, legacy answers straight away.
    for _ in 0..5 {
        let (s, h, _) = get(&gw.url("/x"), &[]).await;
        assert_eq!(
            (s.as_u16(), header(&h, "x-ficus-upstream")),
            (200, "legacy-fallback")
        );
    }
    assert_eq!(
        modern.hits(),
        3,
        "the open breaker kept requests from modern"
    );
    let opened = events.try_recv().expect("an event for the opening");
    assert_eq!(opened.kind, "breaker.open");
    assert_eq!(opened.data["upstream"], "modern");
    assert!(opened.message.contains("3"), "{}", opened.message);
    let metrics = gw.gateway().telemetry().prometheus();
    assert!(
        metrics.contains("ficus_breaker_state{upstream=\"modern\"} 2"),
        "{metrics}"
    );

    // Modern heals; after open_for one probe goes through and closes the breaker.
    modern.set_status(200);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (s, h, _) = get(&gw.url("/x"), &[]).await;
    assert_eq!(
        (s.as_u16(), header(&h, "x-ficus-upstream")),
        (200, "modern")
    );
    let (_, h, _) = get(&gw.url("/x"), &[]).await;
    assert_eq!(header(&h, "x-ficus-upstream"), "modern");
    let kinds: Vec<String> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["breaker.half_open", "breaker.closed"]);
    let metrics = gw.gateway().telemetry().prometheus();
    assert!(
        metrics.contains("ficus_breaker_state{upstream=\"modern\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ficus_breaker_trips_total{upstream=\"modern\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_open_breaker_on_legacy_answers_503_circuit_open() {
    let legacy = Upstream::start("legacy").await;
    legacy.set_status(502);
    let gw = TestGateway::start(
        &config(
            "[upstream.legacy.breaker]\nconsecutive_failures = 2\nopen_for = \"5s\"",
            "",
        ),
        &[("legacy", legacy.url()), ("modern", legacy.url())],
    )
    .await;
    for _ in 0..2 {
        let (s, _, _) = get(&gw.url("/y"), &[]).await;
        assert_eq!(s.as_u16(), 502, "legacy's own answer");
    }
    let (s, h, body) = get(&gw.url("/y"), &[]).await;
    assert_eq!(s.as_u16(), 503);
    let secs: u64 = header(&h, "retry-after").parse().unwrap();
    assert!((4..=5).contains(&secs), "the time left open: {secs}");
    let p: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(p["type"].as_str().unwrap().ends_with("circuit-open"), "{p}");
    assert_eq!(legacy.hits(), 2);
}

#[tokio::test]
async fn at_twice_its_capacity_accepted_requests_stay_fast_and_the_rest_get_fast_503s() {
    let legacy = Upstream::start("legacy").await;
    // Capacity: 4 slots x 50 ms = 80 requests/s; 8 closed-loop clients offer twice that.
    let gw = TestGateway::start(
        &config("max_in_flight = 4\nqueue = 0", ""),
        &[("legacy", legacy.url()), ("modern", legacy.url())],
    )
    .await;
    let until = Instant::now() + Duration::from_secs(1);
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let url = gw.url("/sleep/50");
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while Instant::now() < until {
                    let t = Instant::now();
                    let (s, _, _) = get(&url, &[]).await;
                    seen.push((s.as_u16(), t.elapsed()));
                    if s.as_u16() == 503 {
                        // A well-behaved client backs off a little after a 503.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                seen
            })
        })
        .collect();
    let mut all = Vec::new();
    for c in clients {
        all.extend(c.await.unwrap());
    }
    let accepted: Vec<Duration> = all.iter().filter(|r| r.0 == 200).map(|r| r.1).collect();
    let shed: Vec<Duration> = all.iter().filter(|r| r.0 == 503).map(|r| r.1).collect();
    assert_eq!(accepted.len() + shed.len(), all.len(), "only 200s and 503s");
    assert!(
        accepted.len() >= 40,
        "the upstream kept serving near its capacity: {}",
        accepted.len()
    );
    assert!(!shed.is_empty(), "the excess was shed");
    // Generous bounds (CI machines are busy): p95s, far apart from the unprotected case where
    // every request would queue behind the others for hundreds of milliseconds.
    let p95 = |mut v: Vec<Duration>| {
        v.sort();
        v[(v.len() * 95 / 100).min(v.len() - 1)]
    };
    let accepted_p95 = p95(accepted);
    assert!(
        accepted_p95 < Duration::from_millis(150),
        "accepted requests kept their latency (50 ms upstream): p95 {accepted_p95:?}"
    );
    let shed_p95 = p95(shed);
    assert!(
        shed_p95 < Duration::from_millis(30),
        "503s are fast: p95 {shed_p95:?}"
    );
}

/// An upstream whose even-numbered requests (0, 2, 4...) answer 503 and odd ones 200;
/// returns its URL and its request counter.
async fn flaky() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |_req: http::Request<hyper::body::Incoming>| {
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        async move {
                            let status = if n.is_multiple_of(2) { 503 } else { 200 };
                            Ok::<_, std::convert::Infallible>(
                                http::Response::builder()
                                    .status(status)
                                    .body(full(format!("{n}")))
                                    .unwrap(),
                            )
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (url, hits)
}

#[tokio::test]
async fn safe_requests_are_retried_past_a_flaky_upstream_and_writes_are_not() {
    use std::sync::atomic::Ordering;
    let (url, hits) = flaky().await;
    let gw = TestGateway::start(
        &config(
            "",
            r#"[[route]]
name = "api"
path_prefix = "/"
legacy = "legacy"
[route.retry]
attempts = 2
backoff = "1ms"
max_backoff = "5ms"
"#,
        ),
        &[("legacy", url.clone()), ("modern", url)],
    )
    .await;
    for _ in 0..20 {
        let (s, _, _) = get(&gw.url("/r"), &[]).await;
        assert_eq!(s.as_u16(), 200, "the retry found the healthy answer");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 40, "one retry per request");
    // A POST is never sent twice: it gets the 503 (its turn is an even one).
    let (s, _, _) = send(http::Request::post(gw.url("/r")).body(full("x")).unwrap()).await;
    assert_eq!(s.as_u16(), 503);
    assert_eq!(hits.load(Ordering::SeqCst), 41);
    let text = gw.gateway().telemetry().prometheus();
    assert!(
        text.contains("ficus_retries_total{route=\"api\"} 20"),
        "{text}"
    );
}

#[tokio::test]
async fn the_retry_budget_caps_amplification_when_the_upstream_is_down() {
    let legacy = Upstream::start("legacy").await;
    legacy.set_status(503);
    let gw = TestGateway::start(
        &config(
            "",
            r#"[[route]]
name = "api"
path_prefix = "/"
legacy = "legacy"
[route.retry]
attempts = 3
budget = 10
min_per_second = 0
backoff = "1ms"
max_backoff = "2ms"
"#,
        ),
        &[("legacy", legacy.url()), ("modern", legacy.url())],
    )
    .await;
    for _ in 0..100 {
        let (s, _, _) = get(&gw.url("/down"), &[]).await;
        assert_eq!(s.as_u16(), 503);
    }
    // Unbudgeted, 3 retries each would make 400 calls; the budget allows 10 % extra.
    let calls = legacy.hits();
    assert!(
        (100..=111).contains(&calls),
        "{calls} upstream calls for 100 requests"
    );
    let text = gw.gateway().telemetry().prometheus();
    assert!(
        text.contains("ficus_retry_budget_exhausted_total{route=\"api\"}"),
        "{text}"
    );
}
