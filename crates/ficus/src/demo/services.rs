//! The two sample services the demo migrates between: a "legacy" and a "modern" JSON API with
//! the same endpoints and deliberately different answers, so that routing, fallback and shadow
//! comparison have something real to show.
//!
//! Both derive their data from the ids in the path, so the same request gets the same data from
//! the same side every time, apart from realistic noise that changes on every response
//! (`generated_at`, a random `trace`), which is exactly what a comparison must learn to ignore.
//! Modern differs from legacy on purpose:
//! - every timestamp has milliseconds (`2021-03-04T05:06:07.000Z` vs `2021-03-04T05:06:07Z`);
//! - `/users/{id}`: `name` is renamed `full_name`, and there is an extra `links` object;
//! - `/orders/{id}`, `/orders`: `total` is a string (`"59.97"`) instead of a number, and `items`
//!   are sorted by sku (legacy keeps them in the order they were added);
//! - `/catalog/{sku}`: `price` is a string, `tags` are sorted, and there is an extra `currency`;
//! - `POST /orders`: `status` is `"CREATED"` instead of `"created"`.
//!
//! `/reports/daily` is the same on both sides. Modern also has a fault switch, `/_control`, to
//! make a share of its requests fail with 503 or to slow it down.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::random_u64;

/// Largest request body the sample services read (a demo order is a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;
/// Longest delay `/_control/delay` accepts, so a typo cannot hang the demo.
const MAX_DELAY_MS: u64 = 60_000;
/// How long stopping a service waits for its open connections to finish their requests.
const STOP_GRACE: Duration = Duration::from_secs(1);
/// 2020-01-01T00:00:00Z: generated timestamps fall in the four years after it.
const EPOCH_2020: u64 = 1_577_836_800;
const FOUR_YEARS: u64 = 4 * 365 * 86_400;

/// Which of the two sample services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Legacy,
    Modern,
}

impl Flavor {
    pub fn as_str(self) -> &'static str {
        match self {
            Flavor::Legacy => "legacy",
            Flavor::Modern => "modern",
        }
    }
}

/// Faults injected into every API request (only modern exposes the switch).
#[derive(Debug, Default)]
struct Faults {
    /// Share of requests answered 503, in hundredths of a percent (0..=10000).
    fail_basis_points: AtomicU32,
    delay_ms: AtomicU64,
    /// Only requests under this path prefix fail (`None`: every request).
    fail_path: std::sync::Mutex<Option<String>>,
}

impl Faults {
    /// Waits the configured delay, then says whether this request fails.
    async fn strike(&self, path: &str) -> bool {
        let delay = self.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let bp = u64::from(self.fail_basis_points.load(Ordering::Relaxed));
        let in_scope = match &*self.fail_path.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(prefix) => path.starts_with(prefix.as_str()),
            None => true,
        };
        bp > 0 && in_scope && random_u64() % 10_000 < bp
    }

    fn describe(&self) -> Value {
        json!({
            "fail_rate": f64::from(self.fail_basis_points.load(Ordering::Relaxed)) / 10_000.0,
            "fail_path": *self.fail_path.lock().unwrap_or_else(|p| p.into_inner()),
            "delay_ms": self.delay_ms.load(Ordering::Relaxed),
        })
    }
}

struct State {
    flavor: Flavor,
    faults: Faults,
}

/// A running sample service.
pub struct Service {
    addr: SocketAddr,
    state: Arc<State>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Service {
    /// Starts on 127.0.0.1: on `preferred_port` if it is free (so the printed curl commands stay
    /// the same from run to run), else on any free port.
    pub async fn start(flavor: Flavor, preferred_port: Option<u16>) -> std::io::Result<Service> {
        let listener = bind(preferred_port).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let state = Arc::new(State {
            flavor,
            faults: Faults::default(),
        });
        let task = tokio::spawn(serve(listener, state.clone(), stopped));
        Ok(Service {
            addr,
            state,
            stop,
            task,
        })
    }

    /// A handle on the service's fault switch that outlives borrows of the service.
    pub fn fault_switch(&self) -> FaultSwitch {
        FaultSwitch(self.state.clone())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and gives open connections a moment to finish their requests.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Turns a sample service's injected failures on or off from the demo itself.
pub struct FaultSwitch(Arc<State>);

impl FaultSwitch {
    /// Makes `rate` (0..=1) of the requests under `path` fail with 503 from now on.
    pub fn fail(&self, rate: f64, path: Option<&str>) {
        let bp = (rate.clamp(0.0, 1.0) * 10_000.0).round() as u32;
        *self
            .0
            .faults
            .fail_path
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = path.map(str::to_string);
        self.0.faults.fail_basis_points.store(bp, Ordering::Relaxed);
    }
}

async fn bind(preferred_port: Option<u16>) -> std::io::Result<TcpListener> {
    if let Some(port) = preferred_port {
        if let Ok(l) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            return Ok(l);
        }
    }
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await
}

async fn serve(listener: TcpListener, state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        let svc = service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(handle(&state, req).await) }
        });
        let conn =
            graceful.watch(http1::Builder::new().serve_connection(TokioIo::new(stream), svc));
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(STOP_GRACE, graceful.shutdown()).await;
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let flavor = state.flavor;
    if flavor == Flavor::Modern && (path == "/_control" || path.starts_with("/_control/")) {
        let (status, value) = control(
            &state.faults,
            parts.method.as_str(),
            path,
            parts.uri.query(),
        );
        return reply(flavor, status, value);
    }
    if state.faults.strike(path).await {
        let value = json!({
            "error": "injected failure",
            "detail": "the modern service was told to fail a share of its requests",
            "fix": "POST /_control/fail?rate=0 on the modern service heals it",
        });
        return reply(flavor, StatusCode::SERVICE_UNAVAILABLE, value);
    }
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let value = json!({ "error": format!("cannot read the request body: {e}") });
            return reply(flavor, StatusCode::BAD_REQUEST, value);
        }
    };
    let (status, mut value) = api(flavor, parts.method.as_str(), path, &body);
    add_noise(&mut value, SystemTime::now(), random_u64());
    reply(flavor, status, value)
}

fn reply(flavor: Flavor, status: StatusCode, value: Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(value.to_string())));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert("x-served-by", HeaderValue::from_static(flavor.as_str()));
    resp
}

/// The fault switch: `GET /_control` shows it, `POST /_control/fail?rate=R` (0..=1) and
/// `POST /_control/delay?ms=N` set it.
fn control(faults: &Faults, method: &str, path: &str, query: Option<&str>) -> (StatusCode, Value) {
    let bad = |msg: &str| (StatusCode::BAD_REQUEST, json!({ "error": msg }));
    match (method, path) {
        ("GET", "/_control") => (StatusCode::OK, faults.describe()),
        ("POST", "/_control/fail") => {
            match query_param(query, "rate").and_then(|r| r.parse::<f64>().ok()) {
                Some(rate) if (0.0..=1.0).contains(&rate) => {
                    let bp = (rate * 10_000.0).round() as u32;
                    *faults.fail_path.lock().unwrap_or_else(|p| p.into_inner()) =
                        query_param(query, "path").map(str::to_string);
                    faults.fail_basis_points.store(bp, Ordering::Relaxed);
                    (StatusCode::OK, faults.describe())
                }
                _ => bad("give the share of requests to fail as ?rate=R with R from 0 to 1, e.g. ?rate=0.3 (and ?path=/stock to fail only those)"),
            }
        }
        ("POST", "/_control/delay") => {
            match query_param(query, "ms").and_then(|ms| ms.parse::<u64>().ok()) {
                Some(ms) if ms <= MAX_DELAY_MS => {
                    faults.delay_ms.store(ms, Ordering::Relaxed);
                    (StatusCode::OK, faults.describe())
                }
                _ => bad("give the added latency as ?ms=N with N from 0 to 60000, e.g. ?ms=2500"),
            }
        }
        _ => (
            StatusCode::NOT_FOUND,
            json!({ "error": "unknown control; use GET /_control, POST /_control/fail?rate=R or POST /_control/delay?ms=N" }),
        ),
    }
}

fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// The API itself, without noise: a pure function of the request, so tests can compare sides.
pub(crate) fn api(flavor: Flavor, method: &str, path: &str, body: &[u8]) -> (StatusCode, Value) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["health"]) => ok(json!({ "status": "ok", "service": flavor.as_str() })),
        ("GET", ["users"]) => ok(json!({
            "users": (1..=5).map(|id| user(flavor, id)).collect::<Vec<_>>(),
            "total": 1000,
        })),
        ("GET", ["users", id]) => by_id(id, "user", |id| user(flavor, id)),
        ("GET", ["orders"]) => ok(json!({
            "orders": (1..=5).map(|id| order(flavor, id)).collect::<Vec<_>>(),
            "total": 500,
        })),
        ("GET", ["orders", id]) => by_id(id, "order", |id| order(flavor, id)),
        ("POST", ["orders"]) => create_order(flavor, body),
        ("GET", ["catalog", sku]) if !sku.is_empty() => ok(catalog_item(flavor, sku)),
        ("GET", ["reports", "daily"]) => ok(daily_report()),
        ("GET", ["accounts", id]) => by_id(
            id,
            "account",
            |id| json!({ "id": id, "currency": "EUR", "balance": money_number(mix(id) % 100_000) }),
        ),
        ("GET", ["stock", sku]) if !sku.is_empty() => {
            let h = hash_bytes(sku.as_bytes());
            ok(
                json!({ "sku": sku, "available": h % 250, "warehouse": pick(&["north", "south", "east"], h >> 9) }),
            )
        }
        _ => (
            StatusCode::NOT_FOUND,
            json!({ "error": "not found", "path": path }),
        ),
    }
}

fn ok(v: Value) -> (StatusCode, Value) {
    (StatusCode::OK, v)
}

/// Looks up a numbered resource; ids start at 1.
fn by_id(id: &str, what: &str, make: impl FnOnce(u64) -> Value) -> (StatusCode, Value) {
    match id.parse::<u64>() {
        Ok(0) => (
            StatusCode::NOT_FOUND,
            json!({ "error": format!("no {what} 0") }),
        ),
        Ok(n) => ok(make(n)),
        Err(_) => (
            StatusCode::BAD_REQUEST,
            json!({ "error": format!("{what} id must be a positive number, got {id:?}") }),
        ),
    }
}

const FIRST: [&str; 12] = [
    "Ada", "Grace", "Alan", "Barbara", "Edsger", "Frances", "Donald", "Margaret", "Ken", "Radia",
    "Tim", "Hedy",
];
const LAST: [&str; 12] = [
    "Lovelace", "Hopper", "Turing", "Liskov", "Dijkstra", "Allen", "Knuth", "Hamilton", "Thompson",
    "Perlman", "Lee", "Lamarr",
];
const PLANS: [&str; 3] = ["free", "team", "enterprise"];
const ORDER_STATUS: [&str; 4] = ["placed", "paid", "shipped", "delivered"];
const PRODUCTS: [&str; 8] = [
    "Trellis",
    "Pruning shears",
    "Potted fig tree",
    "Watering can",
    "Seed tray",
    "Garden gloves",
    "Compost bin",
    "Rain barrel",
];
const TAGS: [&str; 7] = [
    "garden",
    "outdoor",
    "tools",
    "eco",
    "bestseller",
    "new",
    "sale",
];

fn user(flavor: Flavor, id: u64) -> Value {
    let h = mix(id);
    let first = pick(&FIRST, h);
    let last = pick(&LAST, h >> 16);
    let name = format!("{first} {last}");
    let email = format!(
        "{}.{}{id}@example.com",
        first.to_lowercase(),
        last.to_lowercase()
    );
    let plan = pick(&PLANS, h >> 32);
    let created_at = timestamp(flavor, EPOCH_2020 + (h >> 24) % FOUR_YEARS);
    match flavor {
        Flavor::Legacy => json!({
            "id": id, "name": name, "email": email, "plan": plan, "created_at": created_at,
        }),
        Flavor::Modern => json!({
            "id": id, "full_name": name, "email": email, "plan": plan, "created_at": created_at,
            "links": { "self": format!("/users/{id}") },
        }),
    }
}

fn order(flavor: Flavor, id: u64) -> Value {
    let h = mix(id ^ 0x6f72_6465_7273);
    let lines: Vec<(String, u64)> = (0..1 + (h >> 8) % 3)
        .map(|i| {
            (
                format!("sku-{}", 1000 + mix(h.wrapping_add(i)) % 40),
                1 + (mix(h.wrapping_add(i)) >> 8) % 3,
            )
        })
        .collect();
    let mut body = priced(flavor, &lines);
    body["id"] = json!(id);
    body["user_id"] = json!(1 + h % 1000);
    body["status"] = json!(pick(&ORDER_STATUS, h >> 16));
    body["placed_at"] = json!(timestamp(flavor, EPOCH_2020 + (h >> 24) % FOUR_YEARS));
    body
}

/// `items` with their prices, and the `total`: the part of an order where the sides disagree on
/// types (total) and on order (items).
fn priced(flavor: Flavor, lines: &[(String, u64)]) -> Value {
    let mut items: Vec<(&str, u64, u64)> = lines
        .iter()
        .map(|(sku, qty)| (sku.as_str(), *qty, price_cents(sku)))
        .collect();
    let total: u64 = items.iter().map(|(_, qty, cents)| qty * cents).sum();
    if flavor == Flavor::Modern {
        items.sort_by(|a, b| a.0.cmp(b.0));
    }
    let items: Vec<Value> = items
        .iter()
        .map(|(sku, qty, cents)| json!({ "sku": sku, "qty": qty, "price": money_number(*cents) }))
        .collect();
    let total = match flavor {
        Flavor::Legacy => money_number(total),
        Flavor::Modern => json!(money_string(total)),
    };
    json!({ "items": items, "total": total })
}

/// `POST /orders` with `{"user_id": 7, "items": [{"sku": "sku-1001", "qty": 2}]}`.
fn create_order(flavor: Flavor, body: &[u8]) -> (StatusCode, Value) {
    let parsed: Option<(u64, Vec<(String, u64)>)> =
        serde_json::from_slice::<Value>(body).ok().and_then(|v| {
            let user_id = v.get("user_id")?.as_u64()?;
            let lines = v
                .get("items")?
                .as_array()?
                .iter()
                .map(|it| {
                    Some((
                        it.get("sku")?.as_str()?.to_string(),
                        it.get("qty")?.as_u64()?,
                    ))
                })
                .collect::<Option<Vec<_>>>()?;
            (!lines.is_empty()).then_some((user_id, lines))
        });
    let Some((user_id, lines)) = parsed else {
        return (
            StatusCode::BAD_REQUEST,
            json!({ "error": "expected {\"user_id\": N, \"items\": [{\"sku\": \"sku-1001\", \"qty\": 1}]}" }),
        );
    };
    let mut order = priced(flavor, &lines);
    order["id"] = json!(100_000 + hash_bytes(body) % 900_000);
    order["user_id"] = json!(user_id);
    order["status"] = json!(match flavor {
        Flavor::Legacy => "created",
        Flavor::Modern => "CREATED",
    });
    (StatusCode::CREATED, order)
}

fn catalog_item(flavor: Flavor, sku: &str) -> Value {
    let h = hash_bytes(sku.as_bytes());
    let cents = price_cents(sku);
    // Three distinct tags: TAGS has a prime length, so any stride visits distinct entries.
    let (start, stride) = (
        h % TAGS.len() as u64,
        1 + (h >> 8) % (TAGS.len() as u64 - 1),
    );
    let mut tags: Vec<&str> = (0..3).map(|i| pick(&TAGS, start + i * stride)).collect();
    let (name, stock) = (pick(&PRODUCTS, h >> 40), (h >> 20) % 120);
    match flavor {
        Flavor::Legacy => json!({
            "sku": sku, "name": name, "price": money_number(cents), "stock": stock, "tags": tags,
        }),
        Flavor::Modern => {
            tags.sort_unstable();
            json!({
                "sku": sku, "name": name, "price": money_string(cents), "currency": "EUR",
                "stock": stock, "tags": tags,
            })
        }
    }
}

fn daily_report() -> Value {
    json!({
        "date": "2024-06-01",
        "orders": 1284,
        "revenue": 48213.55,
        "top_skus": ["sku-1007", "sku-1013", "sku-1002"],
    })
}

/// What the sides add to every object answer and that differs on every response.
fn add_noise(value: &mut Value, now: SystemTime, trace: u64) {
    if let Value::Object(map) = value {
        map.insert(
            "generated_at".into(),
            json!(ficus_proxy::access_log::rfc3339(now)),
        );
        map.insert("trace".into(), json!(format!("{trace:016x}")));
    }
}

fn price_cents(sku: &str) -> u64 {
    199 + hash_bytes(sku.as_bytes()) % 9_800
}

fn money_number(cents: u64) -> Value {
    // Two-decimal values print as such: serde_json writes the shortest round-tripping form.
    json!(cents as f64 / 100.0)
}

fn money_string(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// RFC 3339 in UTC: legacy to the second, modern to the millisecond.
fn timestamp(flavor: Flavor, unix_secs: u64) -> String {
    let millis = ficus_proxy::access_log::rfc3339(UNIX_EPOCH + Duration::from_secs(unix_secs));
    match flavor {
        Flavor::Modern => millis,
        // `YYYY-MM-DDTHH:MM:SS.mmmZ` without `.mmm`.
        Flavor::Legacy => format!("{}Z", &millis[..19]),
    }
}

fn pick<T: Copy>(items: &[T], h: u64) -> T {
    items[(h % items.len() as u64) as usize]
}

/// SplitMix64's finalizer: spreads ids so neighbouring ids get unrelated data.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// FNV-1a, then mixed: stable across runs and platforms (std's hasher is not).
fn hash_bytes(bytes: &[u8]) -> u64 {
    mix(bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(method: &str, path: &str, body: &[u8]) -> (Value, Value) {
        let (ls, legacy) = api(Flavor::Legacy, method, path, body);
        let (ms, modern) = api(Flavor::Modern, method, path, body);
        assert_eq!(
            ls, ms,
            "{method} {path}: both sides answer with the same status"
        );
        (legacy, modern)
    }

    #[test]
    fn answers_are_deterministic() {
        for path in [
            "/users/7",
            "/orders/42",
            "/catalog/sku-1001",
            "/users",
            "/orders",
        ] {
            assert_eq!(
                api(Flavor::Legacy, "GET", path, b""),
                api(Flavor::Legacy, "GET", path, b"")
            );
        }
        assert_ne!(user(Flavor::Legacy, 1), user(Flavor::Legacy, 2));
    }

    #[test]
    fn users_rename_a_field_and_add_links() {
        let (legacy, modern) = both("GET", "/users/7", b"");
        assert_eq!(legacy["name"], modern["full_name"]);
        assert!(modern.get("name").is_none() && legacy.get("full_name").is_none());
        assert_eq!(modern["links"]["self"], "/users/7");
        assert!(legacy.get("links").is_none());
    }

    #[test]
    fn timestamps_differ_in_precision_only() {
        let (legacy, modern) = both("GET", "/users/7", b"");
        let (l, m) = (
            legacy["created_at"].as_str().unwrap(),
            modern["created_at"].as_str().unwrap(),
        );
        assert_eq!(l.len(), "2021-03-04T05:06:07Z".len(), "{l}");
        assert_eq!(m, format!("{}.000Z", &l[..19]));
    }

    #[test]
    fn order_totals_are_numbers_on_legacy_and_strings_on_modern() {
        let (legacy, modern) = both("GET", "/orders/42", b"");
        let total = legacy["total"].as_f64().expect("legacy total is a number");
        let text = modern["total"].as_str().expect("modern total is a string");
        assert_eq!(format!("{total:.2}"), text);
    }

    #[test]
    fn order_items_are_sorted_on_modern_and_the_same_set() {
        // Some order with several items out of sku order shows the difference.
        let id = (1..200)
            .find(|id| {
                let items = order(Flavor::Legacy, *id)["items"]
                    .as_array()
                    .unwrap()
                    .clone();
                items
                    .windows(2)
                    .any(|w| w[0]["sku"].as_str() > w[1]["sku"].as_str())
            })
            .expect("some legacy order lists items out of sku order");
        let (legacy, modern) = (order(Flavor::Legacy, id), order(Flavor::Modern, id));
        let mut sorted = legacy["items"].as_array().unwrap().clone();
        sorted.sort_by(|a, b| a["sku"].as_str().cmp(&b["sku"].as_str()));
        assert_ne!(legacy["items"], modern["items"]);
        assert_eq!(Value::Array(sorted), modern["items"]);
    }

    #[test]
    fn catalog_prices_are_strings_with_a_currency_on_modern() {
        let (legacy, modern) = both("GET", "/catalog/sku-1001", b"");
        assert!(legacy["price"].is_f64());
        assert!(modern["price"].is_string());
        assert_eq!(modern["currency"], "EUR");
        assert!(legacy.get("currency").is_none());
        assert_eq!(legacy["stock"], modern["stock"]);
    }

    #[test]
    fn new_orders_differ_in_status_case() {
        let body = br#"{"user_id": 7, "items": [{"sku": "sku-1001", "qty": 2}]}"#;
        let (legacy, modern) = both("POST", "/orders", body);
        assert_eq!(
            (legacy["status"].as_str(), modern["status"].as_str()),
            (Some("created"), Some("CREATED"))
        );
        assert_eq!(legacy["id"], modern["id"]);
        assert_eq!(
            api(Flavor::Legacy, "POST", "/orders", b"{}").0,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn reports_agree() {
        let (legacy, modern) = both("GET", "/reports/daily", b"");
        assert_eq!(legacy, modern);
    }

    #[test]
    fn noise_differs_between_responses() {
        let (mut a, mut b) = (json!({}), json!({}));
        add_noise(&mut a, SystemTime::now(), random_u64());
        add_noise(&mut b, SystemTime::now(), random_u64());
        assert_ne!(a["trace"], b["trace"]);
        assert!(a["generated_at"].is_string());
    }

    #[test]
    fn unknown_paths_and_bad_ids() {
        assert_eq!(
            api(Flavor::Legacy, "GET", "/nope", b"").0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            api(Flavor::Legacy, "GET", "/users/0", b"").0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            api(Flavor::Modern, "GET", "/users/abc", b"").0,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn the_fault_switch() {
        let f = Faults::default();
        assert_eq!(
            control(&f, "POST", "/_control/fail", Some("rate=0.3")).0,
            StatusCode::OK
        );
        assert_eq!(f.fail_basis_points.load(Ordering::Relaxed), 3000);
        assert_eq!(
            control(&f, "POST", "/_control/fail", Some("rate=2")).0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            control(&f, "POST", "/_control/delay", Some("ms=250")).0,
            StatusCode::OK
        );
        let (_, shown) = control(&f, "GET", "/_control", None);
        assert_eq!(
            shown,
            json!({ "fail_rate": 0.3, "fail_path": null, "delay_ms": 250 })
        );
        assert_eq!(
            control(&f, "POST", "/_control/fail", Some("rate=0")).0,
            StatusCode::OK
        );
        assert_eq!(f.fail_basis_points.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_fault_can_be_scoped_to_a_path() {
        let f = Faults::default();
        control(&f, "POST", "/_control/fail", Some("rate=1&path=/stock"));
        assert!(f.strike("/stock/sku-1").await);
        assert!(!f.strike("/accounts/1").await, "other paths are spared");
    }
}
