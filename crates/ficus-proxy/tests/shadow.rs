//! Shadow traffic through real sockets: the mirror never holds up the client, drops and
//! counts what it cannot take, mirrors writes only when told to, copies bodies byte-exact,
//! and the comparison separates real differences from legacy's own noise.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ficus_telemetry::ShadowTotals;
use http::{HeaderMap, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::*;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// One request a JSON service received, in full.
#[derive(Debug, Clone)]
struct Got {
    method: String,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

type Handler = Arc<dyn Fn(&Got, u64) -> (u16, String) + Send + Sync>;

/// A service answering through `handler(request, n)` (n: 0, 1, 2... per request), recording
/// every request; with `hold`, it answers only after `release` is notified.
struct Service {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Got>>>,
    answered: Arc<AtomicUsize>,
    release: Arc<Notify>,
    hold: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Service {
    async fn start(handler: Handler) -> Service {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let answered = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());
        let hold = Arc::new(AtomicBool::new(false));
        let counter = Arc::new(AtomicUsize::new(0));
        let (g, a, r, h) = (got.clone(), answered.clone(), release.clone(), hold.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (g, a, r, h, handler, counter) = (
                    g.clone(),
                    a.clone(),
                    r.clone(),
                    h.clone(),
                    handler.clone(),
                    counter.clone(),
                );
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (g, a, r, h, handler, counter) = (
                            g.clone(),
                            a.clone(),
                            r.clone(),
                            h.clone(),
                            handler.clone(),
                            counter.clone(),
                        );
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|c| c.to_bytes())
                                .unwrap_or_default();
                            let got = Got {
                                method: parts.method.to_string(),
                                path: parts.uri.path().to_string(),
                                headers: parts.headers,
                                body,
                            };
                            g.lock().unwrap().push(got.clone());
                            if h.load(Ordering::SeqCst) {
                                r.notified().await;
                            }
                            let n = counter.fetch_add(1, Ordering::SeqCst) as u64;
                            let (status, text) = handler(&got, n);
                            a.fetch_add(1, Ordering::SeqCst);
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .header("date", format!("n{n}"))
                                    .body(full(text))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Service {
            addr,
            got,
            answered,
            release,
            hold,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
}

fn fixed(body: &'static str) -> Handler {
    Arc::new(move |_, _| (200, body.to_string()))
}

fn config(route_extra: &str, top_extra: &str) -> String {
    format!(
        r#"
[[listener]]
bind = "127.0.0.1:0"
[upstream.legacy]
url = "{{legacy}}"
[upstream.modern]
url = "{{modern}}"
request_timeout = "5s"
[[route]]
name = "api"
path_prefix = "/"
legacy = "legacy"
modern = "modern"
stage = "shadow"
debug_header = true
{route_extra}
[default]
legacy = "legacy"
{top_extra}
"#
    )
}

async fn start(legacy: &Service, modern: &Service, route_extra: &str, top: &str) -> TestGateway {
    TestGateway::start(
        &config(route_extra, top),
        &[("legacy", legacy.url()), ("modern", modern.url())],
    )
    .await
}

fn totals(gw: &TestGateway) -> ShadowTotals {
    gw.gateway().telemetry().route("api").shadow.totals()
}

/// Waits (bounded) until the counters satisfy `done`.
async fn wait_for(
    gw: &TestGateway,
    what: &str,
    done: impl Fn(&ShadowTotals) -> bool,
) -> ShadowTotals {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let t = totals(gw);
        if done(&t) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {t:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_client_is_answered_before_a_hung_modern_has_answered() {
    let legacy = Service::start(fixed(r#"{"ok":true}"#)).await;
    let modern = Service::start(fixed(r#"{"ok":true}"#)).await;
    modern.hold.store(true, Ordering::SeqCst);
    let gw = start(&legacy, &modern, "", "").await;

    for i in 0..5 {
        let started = Instant::now();
        let (s, h, body) = get(&gw.url(&format!("/items/{i}")), &[]).await;
        assert_eq!(
            (s.as_u16(), header(&h, "x-ficus-upstream")),
            (200, "legacy")
        );
        assert_eq!(&body[..], br#"{"ok":true}"#);
        assert_eq!(
            modern.answered.load(Ordering::SeqCst),
            0,
            "modern has not answered any copy yet"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the client was not held up"
        );
    }
    // The copies did reach modern, marked as copies.
    let t = wait_for(&gw, "5 copies at modern", |_| modern.got().len() == 5).await;
    assert_eq!(t.mirrored, 5);
    for g in modern.got() {
        assert_eq!(g.headers.get("x-ficus-shadow").unwrap(), "1");
    }
    // Released, modern answers and every copy is compared; equal answers, no difference.
    modern.hold.store(false, Ordering::SeqCst);
    modern.release.notify_waiters();
    let t = wait_for(&gw, "5 comparisons", |t| t.compared == 5).await;
    assert_eq!((t.differing, t.dropped()), (0, 0));
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_without_touching_the_client() {
    let legacy = Service::start(fixed(r#"{"ok":true}"#)).await;
    let modern = Service::start(fixed(r#"{"ok":true}"#)).await;
    modern.hold.store(true, Ordering::SeqCst);
    let gw = start(
        &legacy,
        &modern,
        "",
        "[shadow]\nqueue = 2\nmax_in_flight = 1",
    )
    .await;
    for i in 0..20 {
        let (s, h, _) = get(&gw.url(&format!("/q/{i}")), &[]).await;
        assert_eq!(
            (s.as_u16(), header(&h, "x-ficus-upstream")),
            (200, "legacy")
        );
        if i == 0 {
            // The mirror worker has taken the first copy (its only slot) before more come.
            let deadline = Instant::now() + Duration::from_secs(10);
            while modern.got().is_empty() {
                assert!(Instant::now() < deadline, "the first copy reached modern");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    // One copy in flight at modern (held), two waiting in the queue, the rest dropped.
    let t = wait_for(&gw, "drops", |t| t.mirrored + t.dropped_queue_full == 20).await;
    assert_eq!(t.mirrored, 3, "{t:?}");
    assert_eq!(t.dropped_queue_full, 17, "{t:?}");
    let text = gw.gateway().telemetry().prometheus();
    assert!(
        text.contains("ficus_shadow_dropped_total{route=\"api\",reason=\"queue-full\"} 17"),
        "{text}"
    );
    modern.hold.store(false, Ordering::SeqCst);
    modern.release.notify_waiters();
    // The held one and the two queued ones are compared in turn.
    let deadline = Instant::now() + Duration::from_secs(10);
    while totals(&gw).compared != 3 {
        assert!(
            Instant::now() < deadline,
            "the 3 accepted copies are compared"
        );
        modern.release.notify_waiters();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn writes_are_mirrored_only_with_shadow_writes_and_byte_exact() {
    let legacy = Service::start(fixed(r#"{"ok":true}"#)).await;
    let modern = Service::start(fixed(r#"{"ok":true}"#)).await;
    let gw = start(&legacy, &modern, "", "").await;
    let body: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (s, _, _) = send(
        Request::post(gw.url("/orders"))
            .body(full(body.clone()))
            .unwrap(),
    )
    .await;
    assert_eq!(s.as_u16(), 200);
    let (s, _, _) = get(&gw.url("/orders/1"), &[]).await;
    assert_eq!(s.as_u16(), 200);
    wait_for(&gw, "the GET compared", |t| t.compared == 1).await;
    let methods: Vec<String> = modern.got().iter().map(|g| g.method.clone()).collect();
    assert_eq!(
        methods,
        ["GET"],
        "POST is not mirrored without shadow_writes"
    );
    drop(gw);

    let modern = Service::start(fixed(r#"{"ok":true}"#)).await;
    let gw = start(&legacy, &modern, "shadow_writes = true", "").await;
    // A streamed (chunked) body: the copy is teed while it streams to legacy.
    let chunks: Vec<Result<hyper::body::Frame<Bytes>, Infallible>> = body
        .chunks(3000)
        .map(|c| Ok(hyper::body::Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let streamed = BodyExt::boxed(http_body_util::StreamBody::new(futures_util::stream::iter(
        chunks,
    )));
    let (s, _, _) = send(
        Request::put(gw.url("/orders/7"))
            .header("x-request-id", "req-42")
            .body(streamed)
            .unwrap(),
    )
    .await;
    assert_eq!(s.as_u16(), 200);
    wait_for(&gw, "the PUT compared", |t| t.compared == 1).await;
    let at_modern = modern.got();
    assert_eq!(at_modern.len(), 1);
    let copy = &at_modern[0];
    assert_eq!(
        (copy.method.as_str(), copy.path.as_str()),
        ("PUT", "/orders/7")
    );
    assert_eq!(copy.body.len(), body.len());
    assert!(copy.body[..] == body[..], "the mirrored body is byte-exact");
    assert_eq!(
        copy.headers.get("x-request-id").unwrap(),
        "req-42",
        "same request id on both sides"
    );
    let at_legacy = legacy.got();
    assert!(at_legacy.last().unwrap().body[..] == body[..]);
    assert!(at_legacy
        .last()
        .unwrap()
        .headers
        .get("x-ficus-shadow")
        .is_none());
}

#[tokio::test]
async fn bodies_over_the_mirror_limit_are_dropped_as_too_large() {
    let big = "x".repeat(4000);
    let legacy_big: Handler = Arc::new(move |g, _| {
        if g.path == "/big" {
            (200, format!("\"{big}\""))
        } else {
            (200, "{}".into())
        }
    });
    let legacy = Service::start(legacy_big).await;
    let modern = Service::start(fixed("{}")).await;
    let gw = start(
        &legacy,
        &modern,
        "shadow_writes = true",
        "[shadow]\nmax_body = \"1KiB\"",
    )
    .await;
    let (s, _, b) = get(&gw.url("/big"), &[]).await;
    assert_eq!(
        (s.as_u16(), b.len()),
        (200, 4002),
        "the client gets the whole body"
    );
    let (s, _, _) = send(
        Request::post(gw.url("/small"))
            .body(full(vec![b'y'; 2048]))
            .unwrap(),
    )
    .await;
    assert_eq!(s.as_u16(), 200);
    let t = wait_for(&gw, "two drops", |t| t.dropped_too_large == 2).await;
    assert_eq!((t.mirrored, t.compared), (0, 0));
    assert!(modern.got().is_empty());
}

#[tokio::test]
async fn sampling_is_sticky_by_the_route_key() {
    let legacy = Service::start(fixed("{}")).await;
    let modern = Service::start(fixed("{}")).await;
    let gw = start(
        &legacy,
        &modern,
        "sticky = \"header:x-user\"\n[route.shadow]\nsample = 50",
        "",
    )
    .await;
    for round in 0..2 {
        for u in 0..40 {
            get(
                &gw.url(&format!("/r{round}")),
                &[("x-user", &format!("user-{u}"))],
            )
            .await;
        }
    }
    let t = wait_for(&gw, "comparisons", |t| {
        t.mirrored > 0 && t.compared == t.mirrored
    })
    .await;
    let users = |path: &str| -> Vec<String> {
        let mut v: Vec<String> = modern
            .got()
            .iter()
            .filter(|g| g.path == path)
            .map(|g| g.headers["x-user"].to_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        users("/r0"),
        users("/r1"),
        "the same users are mirrored every time"
    );
    let n = users("/r0").len();
    assert!(
        (8..=32).contains(&n),
        "about half of 40 users mirrored, got {n} ({t:?})"
    );
}

#[tokio::test]
async fn noise_is_told_apart_from_real_differences() {
    // Both sides stamp a random request id and a timestamp; modern changes `total` on one
    // order in ten.
    let answer = |modern: bool| -> Handler {
        Arc::new(move |g, n| {
            let id: u64 = g
                .path
                .rsplit('/')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let rid = xorshift(n ^ (id << 20) ^ if modern { 0xABCD } else { 0x1234 });
            let total = if modern && id % 10 == 3 {
                id * 100 + 1
            } else {
                id * 100
            };
            let body = serde_json::json!({
                "id": id,
                "request_id": format!("{rid:016x}"),
                "generated_at": format!("2026-11-21T10:00:{:02}.{:06}Z", n % 60, rid % 1_000_000),
                "total": total,
                "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}],
            });
            (200, body.to_string())
        })
    };
    let legacy = Service::start(answer(false)).await;
    let modern = Service::start(answer(true)).await;
    let gw = start(&legacy, &modern, "[route.shadow]\nnoise_sample = 50", "").await;
    for id in 0..200 {
        let (s, _, _) = get(&gw.url(&format!("/orders/{id}")), &[]).await;
        assert_eq!(s.as_u16(), 200);
    }
    let t = wait_for(&gw, "200 comparisons", |t| t.compared == 200).await;
    assert!(t.noise_compared > 50, "{t:?}");
    let report = gw
        .gateway()
        .mirror()
        .aggregator()
        .lock()
        .unwrap()
        .report(Some("api"));
    let route = &report.routes[0];
    let ep = route
        .endpoints
        .iter()
        .find(|e| e.endpoint == "GET /orders/{id}")
        .unwrap_or_else(|| panic!("endpoint by template: {route:?}"));
    let verdict = |path: &str| {
        ep.fields
            .iter()
            .find(|f| f.path == path)
            .map(|f| (f.verdict, f.rate))
            .unwrap_or_else(|| panic!("{path} reported: {:?}", ep.fields))
    };
    let (v, rate) = verdict("$.total");
    assert_eq!(v, ficus_compare::Verdict::Real);
    assert!(
        (0.08..=0.12).contains(&rate),
        "total differs on 10 %: {rate}"
    );
    assert_eq!(verdict("$.request_id").0, ficus_compare::Verdict::Noise);
    assert_eq!(verdict("$.generated_at").0, ficus_compare::Verdict::Noise);
    assert!(ep
        .fields
        .iter()
        .all(|f| f.path != "$.items" && !f.path.starts_with("$.items")));
    assert!(
        ep.fields.iter().all(|f| f.path != "header.date"),
        "Date is never compared"
    );
}

#[tokio::test]
async fn samples_redact_sensitive_headers() {
    let legacy = Service::start(fixed(r#"{"v":1}"#)).await;
    let modern = Service::start(fixed(r#"{"v":2}"#)).await;
    let gw = start(
        &legacy,
        &modern,
        "[route.shadow]\nredact = [\"x-secret\"]",
        "",
    )
    .await;
    get(
        &gw.url("/thing"),
        &[
            ("authorization", "Bearer s3cr3t"),
            ("cookie", "session=abc"),
            ("x-secret", "hush"),
            ("x-visible", "yes"),
        ],
    )
    .await;
    wait_for(&gw, "1 comparison", |t| t.compared == 1).await;
    let agg = gw.gateway().mirror().aggregator().clone();
    let report = agg.lock().unwrap().report(Some("api"));
    let field = &report.routes[0].endpoints[0].fields[0];
    assert_eq!(field.path, "$.v");
    let id = field.sample_ids[0];
    let sample = agg
        .lock()
        .unwrap()
        .sample(id)
        .cloned()
        .expect("a sample is kept");
    let h = |name: &str| {
        sample
            .data
            .request
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(h("authorization"), "[redacted]");
    assert_eq!(h("cookie"), "[redacted]");
    assert_eq!(h("x-secret"), "[redacted]");
    assert_eq!(h("x-visible"), "yes");
    assert_eq!(sample.data.legacy.body, r#"{"v":1}"#);
    assert_eq!(sample.data.modern.body, r#"{"v":2}"#);
}

#[tokio::test]
async fn a_dead_modern_counts_as_failed_and_shows_as_a_status_difference() {
    let legacy = Service::start(fixed("{}")).await;
    let gw = TestGateway::start(
        &config("", ""),
        &[("legacy", legacy.url()), ("modern", dead_url().await)],
    )
    .await;
    let (s, h, _) = get(&gw.url("/x"), &[]).await;
    assert_eq!(
        (s.as_u16(), header(&h, "x-ficus-upstream")),
        (200, "legacy")
    );
    let t = wait_for(&gw, "1 comparison", |t| t.compared == 1).await;
    assert_eq!((t.failed, t.differing), (1, 1));
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}
