//! Traces through real sockets: a real OTLP/HTTP receiver on loopback decodes what ficus
//! exports with the protocol's own message types (`opentelemetry-proto`), and the test
//! upstreams report the `traceparent` each attempt carried.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, Span};
use prost::Message;
use support::*;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// How the receiver answers export requests.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// 200 with an empty `ExportTraceServiceResponse`.
    Accept,
    /// Reads the request, then never answers until released.
    Hang,
    /// 503 to every request.
    Refuse,
}

/// A received span with its resource's attributes (and the `x-api-key` header it came with).
type Received = (Vec<(String, String)>, Span);

/// An OTLP/HTTP receiver on 127.0.0.1.
struct Collector {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Received>>>,
    /// Export requests received (answered or not).
    requests: Arc<AtomicUsize>,
    /// Export requests answered.
    answered: Arc<AtomicUsize>,
    release: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Collector {
    async fn start(mode: Mode) -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(AtomicUsize::new(0));
        let answered = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());
        let (s, r, a, rel) = (
            spans.clone(),
            requests.clone(),
            answered.clone(),
            release.clone(),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (s, r, a, rel) = (s.clone(), r.clone(), a.clone(), rel.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (s, r, a, rel) = (s.clone(), r.clone(), a.clone(), rel.clone());
                        async move {
                            assert_eq!(req.uri().path(), "/v1/traces");
                            assert_eq!(req.headers()["content-type"], "application/x-protobuf");
                            let key = req
                                .headers()
                                .get("x-api-key")
                                .map(|v| v.to_str().unwrap().to_string());
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            r.fetch_add(1, Ordering::SeqCst);
                            if mode == Mode::Hang {
                                rel.notified().await;
                            }
                            let export = ExportTraceServiceRequest::decode(body).unwrap();
                            if mode == Mode::Accept {
                                let mut kept = s.lock().unwrap();
                                for rs in export.resource_spans {
                                    let mut res: Vec<(String, String)> = rs
                                        .resource
                                        .map(|r| {
                                            r.attributes
                                                .into_iter()
                                                .map(|kv| {
                                                    (kv.key, text(kv.value.and_then(|v| v.value)))
                                                })
                                                .collect()
                                        })
                                        .unwrap_or_default();
                                    if let Some(k) = &key {
                                        res.push(("x-api-key header".into(), k.clone()));
                                    }
                                    for ss in rs.scope_spans {
                                        for span in ss.spans {
                                            kept.push((res.clone(), span));
                                        }
                                    }
                                }
                            }
                            a.fetch_add(1, Ordering::SeqCst);
                            let status = if mode == Mode::Refuse { 503 } else { 200 };
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(status)
                                    .header("content-type", "application/x-protobuf")
                                    .body(Full::new(Bytes::new()))
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
        Collector {
            addr,
            spans,
            requests,
            answered,
            release,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn spans(&self) -> Vec<Span> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// Waits (bounded) until at least `n` spans arrived.
    async fn wait_for(&self, n: usize) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let spans = self.spans();
            if spans.len() >= n {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n} spans; got {}: {spans:#?}",
                spans.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn text(v: Option<Value>) -> String {
    match v {
        Some(Value::StringValue(s)) => s,
        Some(Value::IntValue(n)) => n.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    }
}

fn attr(s: &Span, key: &str) -> Option<String> {
    s.attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| text(kv.value.clone().and_then(|v| v.value)))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The trace id and parent id of a `traceparent` value.
fn ids(tp: &str) -> (String, String, String) {
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{tp}");
    (parts[1].into(), parts[2].into(), parts[3].into())
}

fn traceparents(up: &Upstream) -> Vec<String> {
    up.seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|s| {
            s.headers
                .get("traceparent")
                .map(|v| v.to_str().unwrap().to_string())
        })
        .collect()
}

fn config(route: &str, tracing: &str) -> String {
    format!(
        r#"
[[listener]]
bind = "127.0.0.1:0"
[upstream.legacy]
url = "{{legacy}}"
[upstream.modern]
url = "{{modern}}"
[[route]]
name = "api"
path_prefix = "/api"
legacy = "legacy"
modern = "modern"
debug_header = true
{route}
[default]
legacy = "legacy"
[tracing]
endpoint = "{{collector}}"
flush_interval = "20ms"
{tracing}
"#
    )
}

/// The two test upstreams every test routes to.
async fn upstreams() -> (Upstream, Upstream) {
    (
        Upstream::start("legacy").await,
        Upstream::start("modern").await,
    )
}

async fn gateway(
    legacy: &Upstream,
    modern: &Upstream,
    collector: &str,
    route: &str,
    tracing: &str,
) -> TestGateway {
    TestGateway::start(
        &config(route, tracing),
        &[
            ("legacy", legacy.url()),
            ("modern", modern.url()),
            ("collector", collector.to_string()),
        ],
    )
    .await
}

#[tokio::test]
async fn a_fallback_is_one_trace_a_server_span_and_a_client_span_per_attempt() {
    let collector = Collector::start(Mode::Accept).await;
    let (legacy, modern) = upstreams().await;
    modern.set_status(503);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let tracing = format!(
        "headers = {{ \"x-api-key\" = \"k1\" }}\n[tracing.resource]\n\"deployment.environment\" = \"test\"\n\
         [access_log]\npath = {:?}\n",
        log.display().to_string()
    );
    let gw = gateway(
        &legacy,
        &modern,
        &collector.url(),
        "stage = \"modern\"",
        &tracing,
    )
    .await;
    let (s, h, _) = get(&gw.url("/api/orders/7?token=x"), &[]).await;
    assert_eq!(
        (s.as_u16(), header(&h, "x-ficus-upstream")),
        (200, "legacy-fallback")
    );

    let spans = collector.wait_for(3).await;
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let server = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .expect("a server span");
    let trace = hex(&server.trace_id);
    assert!(spans.iter().all(|s| hex(&s.trace_id) == trace), "one trace");
    assert!(
        server.parent_span_id.is_empty(),
        "a new trace starts at ficus"
    );
    assert_eq!(server.name, "GET /api/*");
    for (k, v) in [
        ("http.request.method", "GET"),
        ("url.path", "/api/orders/7"),
        ("http.route", "/api/*"),
        ("http.response.status_code", "200"),
        ("ficus.route", "api"),
        ("ficus.stage", "modern"),
        ("ficus.side", "modern"),
        ("ficus.answered", "legacy-fallback"),
        ("ficus.fallback", "true"),
        ("client.address", "127.0.0.1"),
        ("network.protocol.version", "1.1"),
    ] {
        assert_eq!(attr(server, k).as_deref(), Some(v), "server span {k}");
    }
    assert!(
        attr(server, "url.query").is_none(),
        "no query (it may hold secrets)"
    );
    let clients: Vec<&Span> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client as i32)
        .collect();
    assert!(clients.iter().all(|c| c.parent_span_id == server.span_id));
    let side = |name: &str| {
        *clients
            .iter()
            .find(|c| attr(c, "ficus.side").as_deref() == Some(name))
            .unwrap_or_else(|| panic!("a client span to {name}: {clients:#?}"))
    };
    let (m, l) = (side("modern"), side("legacy"));
    assert_eq!(attr(m, "http.response.status_code").as_deref(), Some("503"));
    assert_eq!(attr(m, "error.type").as_deref(), Some("503"));
    assert_eq!(attr(m, "ficus.upstream").as_deref(), Some("modern"));
    assert_eq!(attr(m, "server.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(
        attr(m, "url.full"),
        Some(format!("{}/api/orders/7", modern.url()))
    );
    assert_eq!(attr(l, "ficus.fallback").as_deref(), Some("true"));
    assert_eq!(attr(l, "http.response.status_code").as_deref(), Some("200"));
    assert!(m.start_time_unix_nano <= l.start_time_unix_nano);
    assert!(server.start_time_unix_nano <= m.start_time_unix_nano);
    assert!(l.end_time_unix_nano <= server.end_time_unix_nano);

    // Each upstream got its own attempt's span as the parent.
    let (t, p, f) = ids(&traceparents(&modern)[0]);
    assert_eq!(
        (t.as_str(), p, f.as_str()),
        (trace.as_str(), hex(&m.span_id), "01")
    );
    let (t, p, _) = ids(&traceparents(&legacy)[0]);
    assert_eq!((t, p), (trace.clone(), hex(&l.span_id)));

    // The resource names the service, and the configured header reached the collector.
    let res = collector.spans.lock().unwrap()[0].0.clone();
    assert!(
        res.contains(&("service.name".into(), "ficus".into())),
        "{res:?}"
    );
    assert!(res.contains(&("deployment.environment".into(), "test".into())));
    assert!(res.contains(&("x-api-key header".into(), "k1".into())));

    // The access log line leads to the trace.
    drop(gw);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(&format!("trace_id={trace}")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no trace id in the access log: {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_incoming_traceparent_is_continued_not_replaced() {
    let collector = Collector::start(Mode::Accept).await;
    let (legacy, modern) = upstreams().await;
    let gw = gateway(&legacy, &modern, &collector.url(), "", "").await;
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let (s, _, _) = get(
        &gw.url("/api/x"),
        &[
            (
                "traceparent",
                &format!("00-{caller_trace}-{caller_span}-01"),
            ),
            ("tracestate", "congo=t61rcWkgMzE"),
        ],
    )
    .await;
    assert_eq!(s.as_u16(), 200);
    let spans = collector.wait_for(2).await;
    let server = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .unwrap();
    assert_eq!(hex(&server.trace_id), caller_trace);
    assert_eq!(hex(&server.parent_span_id), caller_span);
    assert_eq!(server.trace_state, "congo=t61rcWkgMzE");
    let client = spans
        .iter()
        .find(|s| s.kind == SpanKind::Client as i32)
        .unwrap();
    let seen = legacy.seen.lock().unwrap()[0].headers.clone();
    let (t, p, f) = ids(seen["traceparent"].to_str().unwrap());
    assert_eq!((t.as_str(), f.as_str()), (caller_trace, "01"));
    assert_eq!(
        p,
        hex(&client.span_id),
        "the upstream's parent is ficus's client span"
    );
    assert_eq!(
        seen["tracestate"], "congo=t61rcWkgMzE",
        "tracestate passed on as it came"
    );

    // The caller decided not to sample: nothing is recorded, and its traceparent goes on
    // as it came (parent-based sampling, the default).
    let unsampled = format!("00-{caller_trace}-{caller_span}-00");
    let (s, _, _) = get(&gw.url("/api/y"), &[("traceparent", &unsampled)]).await;
    assert_eq!(s.as_u16(), 200);
    assert_eq!(traceparents(&legacy)[1], unsampled);
    // An invalid traceparent is replaced by a new trace (and its tracestate dropped).
    let (s, _, _) = get(
        &gw.url("/api/z"),
        &[
            (
                "traceparent",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            ),
            ("tracestate", "congo=x"),
        ],
    )
    .await;
    assert_eq!(s.as_u16(), 200);
    let spans = collector.wait_for(4).await;
    let fresh = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Server as i32)
        .find(|s| hex(&s.trace_id) != caller_trace)
        .expect("a new trace for the invalid traceparent");
    assert!(fresh.parent_span_id.is_empty());
    assert!(fresh.trace_state.is_empty());
    let seen = legacy.seen.lock().unwrap()[2].headers.clone();
    assert_eq!(
        ids(seen["traceparent"].to_str().unwrap()).0,
        hex(&fresh.trace_id)
    );
    assert!(
        seen.get("tracestate").is_none(),
        "the invalid parent's tracestate is not passed on"
    );
    assert_eq!(
        spans.len(),
        4,
        "the unsampled request made no spans: {spans:#?}"
    );
}

#[tokio::test]
async fn the_sample_ratio_decides_new_traces_and_every_request_still_carries_one() {
    let collector = Collector::start(Mode::Accept).await;
    let (legacy, modern) = upstreams().await;
    let gw = gateway(
        &legacy,
        &modern,
        &collector.url(),
        "",
        "sample_ratio = 0.25",
    )
    .await;
    const N: usize = 400;
    for i in 0..N {
        let (s, _, _) = get(&gw.url(&format!("/api/{i}")), &[]).await;
        assert_eq!(s.as_u16(), 200);
    }
    let tps = traceparents(&legacy);
    assert_eq!(tps.len(), N, "every request carries a traceparent");
    let sampled = tps.iter().filter(|t| t.ends_with("-01")).count();
    let traces: std::collections::HashSet<String> = tps.iter().map(|t| ids(t).0).collect();
    assert_eq!(traces.len(), N, "a new trace per request");
    // 100 expected; the binomial standard deviation is about 8.7.
    assert!(
        (55..=145).contains(&sampled),
        "{sampled} of {N} sampled at 0.25"
    );
    // Exactly the sampled ones were exported, each as a server and a client span.
    let spans = collector.wait_for(2 * sampled).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(collector.spans().len(), 2 * sampled, "{}", spans.len());
    let exported: std::collections::HashSet<String> =
        spans.iter().map(|s| hex(&s.trace_id)).collect();
    let sampled_traces: std::collections::HashSet<String> = tps
        .iter()
        .filter(|t| t.ends_with("-01"))
        .map(|t| ids(t).0)
        .collect();
    assert_eq!(exported, sampled_traces);
}

#[tokio::test]
async fn a_collector_that_hangs_or_refuses_never_holds_up_a_request() {
    let hung = Collector::start(Mode::Hang).await;
    let (legacy, modern) = upstreams().await;
    // One span per export request and a tiny queue: the exporter is stuck on the hung
    // collector after the first span, and the rest overflows.
    let gw = gateway(
        &legacy,
        &modern,
        &hung.url(),
        "",
        "batch = 1\nqueue = 4\ntimeout = \"60s\"",
    )
    .await;
    let (s, _, _) = get(&gw.url("/api/first"), &[]).await;
    assert_eq!(s.as_u16(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while hung.requests.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "no export reached the collector");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The collector holds its first export request: every request still completes, before
    // any export does.
    for i in 0..50 {
        let (s, _, _) = get(&gw.url(&format!("/api/{i}")), &[]).await;
        assert_eq!(s.as_u16(), 200);
    }
    assert_eq!(
        hung.answered.load(Ordering::SeqCst),
        0,
        "requests finished first"
    );
    let metrics = gw.gateway().telemetry().prometheus();
    let dropped = metrics
        .lines()
        .find(|l| l.starts_with("ficus_trace_spans_total{outcome=\"queue_full\"}"))
        .unwrap_or_else(|| panic!("no drop counter:\n{metrics}"));
    let n: u64 = dropped.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        n >= 90,
        "spans beyond the queue are dropped and counted: {dropped}"
    );
    hung.release.notify_waiters();

    // A collector that refuses: requests are served, the lost spans counted.
    let refusing = Collector::start(Mode::Refuse).await;
    let gw = gateway(&legacy, &modern, &refusing.url(), "", "batch = 2").await;
    for i in 0..5 {
        let (s, _, _) = get(&gw.url(&format!("/api/r{i}")), &[]).await;
        assert_eq!(s.as_u16(), 200);
    }
    wait_export_failed(&gw, 10).await;
    // Refused with 503, each batch was tried again before it was given up.
    assert!(refusing.requests.load(Ordering::SeqCst) > 5);

    // No collector at all (connection refused): the same.
    let gw = gateway(&legacy, &modern, &dead_url().await, "", "batch = 2").await;
    for i in 0..3 {
        let (s, _, _) = get(&gw.url(&format!("/api/d{i}")), &[]).await;
        assert_eq!(s.as_u16(), 200);
    }
    wait_export_failed(&gw, 6).await;
}

/// Waits (bounded) until `n` spans are counted as lost with failed exports, and the failed
/// export requests too.
async fn wait_export_failed(gw: &TestGateway, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let metrics = gw.gateway().telemetry().prometheus();
        let failed = metrics
            .lines()
            .find(|l| l.starts_with("ficus_trace_spans_total{outcome=\"export_failed\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0);
        if failed == n {
            assert!(
                metrics.contains("ficus_trace_exports_total{outcome=\"error\"}"),
                "{metrics}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "export failures not counted:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_reload_that_changes_tracing_is_refused_as_needing_a_restart() {
    let collector = Collector::start(Mode::Accept).await;
    let (legacy, modern) = upstreams().await;
    let vars = [
        ("legacy", legacy.url()),
        ("modern", modern.url()),
        ("collector", collector.url()),
    ];
    let gw = TestGateway::start(&config("", ""), &vars).await;
    let changed = support::config(&config("", "sample_ratio = 0.5"), &vars);
    let err = gw.gateway().reload(changed).unwrap_err().to_string();
    assert!(
        err.contains("[tracing]") && err.contains("restart"),
        "{err}"
    );
    // The same [tracing] reloads.
    gw.gateway()
        .reload(support::config(&config("", ""), &vars))
        .unwrap();
}

#[tokio::test]
async fn a_shadow_copy_is_a_trace_of_its_own_linked_to_the_request() {
    let collector = Collector::start(Mode::Accept).await;
    let (legacy, modern) = upstreams().await;
    let gw = gateway(&legacy, &modern, &collector.url(), "stage = \"shadow\"", "").await;
    let (s, h, _) = get(&gw.url("/api/items"), &[]).await;
    assert_eq!(
        (s.as_u16(), header(&h, "x-ficus-upstream")),
        (200, "legacy")
    );
    // Request: server + legacy client; copy: root + modern client.
    let spans = collector.wait_for(4).await;
    let server = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .unwrap();
    let root = spans
        .iter()
        .find(|s| s.name == "shadow GET")
        .unwrap_or_else(|| panic!("a shadow root span: {spans:#?}"));
    assert_ne!(
        root.trace_id, server.trace_id,
        "the copy is a trace of its own"
    );
    assert!(root.parent_span_id.is_empty());
    assert_eq!(root.links.len(), 1);
    assert_eq!(root.links[0].trace_id, server.trace_id);
    assert_eq!(root.links[0].span_id, server.span_id);
    assert_eq!(attr(root, "ficus.route").as_deref(), Some("api"));
    assert!(attr(root, "ficus.shadow.verdict").is_some());
    let copy = spans
        .iter()
        .find(|s| s.trace_id == root.trace_id && s.kind == SpanKind::Client as i32)
        .expect("the copy's call to modern");
    assert_eq!(copy.parent_span_id, root.span_id);
    assert_eq!(attr(copy, "ficus.side").as_deref(), Some("modern"));
    let seen = modern.seen.lock().unwrap()[0].headers.clone();
    assert_eq!(seen["x-ficus-shadow"], "1");
    let (t, p, _) = ids(seen["traceparent"].to_str().unwrap());
    assert_eq!((t, p), (hex(&root.trace_id), hex(&copy.span_id)));
}

#[tokio::test]
async fn retries_are_client_spans_with_their_resend_count() {
    let collector = Collector::start(Mode::Accept).await;
    let (legacy, modern) = upstreams().await;
    legacy.set_status(503);
    let gw = gateway(
        &legacy,
        &modern,
        &collector.url(),
        "[route.retry]\nattempts = 2\nbackoff = \"1ms\"",
        "",
    )
    .await;
    let (s, _, _) = get(&gw.url("/api/r"), &[]).await;
    assert_eq!(s.as_u16(), 503);
    let spans = collector.wait_for(4).await;
    let mut resends: Vec<Option<String>> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client as i32)
        .map(|s| attr(s, "http.request.resend_count"))
        .collect();
    resends.sort();
    assert_eq!(resends, [None, Some("1".into()), Some("2".into())]);
    let server = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .unwrap();
    assert_eq!(attr(server, "error.type").as_deref(), Some("503"));
    assert_eq!(
        server.status.as_ref().map(|s| s.code),
        Some(2),
        "status ERROR"
    );
    // Three attempts, three distinct parents at the upstream.
    let parents: std::collections::HashSet<String> =
        traceparents(&legacy).iter().map(|t| ids(t).1).collect();
    assert_eq!(parents.len(), 3);
}

#[tokio::test]
async fn spans_still_queued_at_shutdown_are_exported() {
    let collector = Collector::start(Mode::Accept).await;
    let (legacy, modern) = upstreams().await;
    // A batch would wait a minute to fill: only the shutdown sends it.
    let text = config("", "").replace("flush_interval = \"20ms\"", "flush_interval = \"60s\"");
    let mut gw = TestGateway::start(
        &text,
        &[
            ("legacy", legacy.url()),
            ("modern", modern.url()),
            ("collector", collector.url()),
        ],
    )
    .await;
    let (s, _, _) = get(&gw.url("/api/last"), &[]).await;
    assert_eq!(s.as_u16(), 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        collector.spans().is_empty(),
        "nothing sent before the batch is due"
    );
    gw.gw.take().unwrap().shutdown(Duration::from_secs(1)).await;
    let spans = collector.wait_for(2).await;
    assert_eq!(spans.len(), 2);
}
