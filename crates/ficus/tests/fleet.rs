//! Fleet mode end to end: real `ficus run` processes on one PostgreSQL schema
//! (`FICUS_TEST_POSTGRES_URL`) act as one gateway. A change through any node runs on all of
//! them (by NOTIFY, and by polling when the listeners are cut); files that differ only in
//! node-local keys are one version; a node restarted with an older file changes nothing
//! and reports its drift; each event reaches a webhook receiver once; a leader killed with
//! SIGKILL is replaced and its rollout goes on with no step repeated; the judge rolls back
//! on the fleet's numbers when modern fails behind one node only; a store outage never
//! fails traffic and refuses changes until the store is back.
//!
//! Without `FICUS_TEST_POSTGRES_URL` the tests pass after a note, unless
//! `FICUS_REQUIRE_SERVICES=1`, which makes that a failure.

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use sqlx::Connection;

// The store going away: the relay of ficus-admin's fault tests.
#[path = "../../ficus-admin/tests/support/relay.rs"]
mod relay;
use relay::Relay;

const TOKEN: &str = "fleet-test-token-0123456789abcdef";

// ---------------------------------------------------------------------------------------
// The database
// ---------------------------------------------------------------------------------------

/// A schema of its own in the test database, dropped at the end.
struct Pg {
    base: String,
    schema: String,
}

impl Pg {
    /// `None` (after a note) when PostgreSQL is not configured and not required.
    async fn new(name: &str) -> Option<Pg> {
        let base = match std::env::var("FICUS_TEST_POSTGRES_URL") {
            Ok(u) if !u.is_empty() => u,
            _ => {
                assert!(
                    std::env::var("FICUS_REQUIRE_SERVICES").as_deref() != Ok("1"),
                    "FICUS_REQUIRE_SERVICES=1 but FICUS_TEST_POSTGRES_URL is not set"
                );
                eprintln!("note: FICUS_TEST_POSTGRES_URL is not set; the fleet tests pass without running");
                return None;
            }
        };
        let pg = Pg {
            base,
            schema: format!("ficus_fleet_{name}_{}", std::process::id()),
        };
        pg.exec(&format!("DROP SCHEMA IF EXISTS {} CASCADE", pg.schema))
            .await;
        Some(pg)
    }

    /// The store URL, through `via` (a relay) when given.
    fn url(&self, via: Option<SocketAddr>) -> String {
        let mut u = url::Url::parse(&self.base).expect("a PostgreSQL URL");
        if let Some(a) = via {
            u.set_host(Some(&a.ip().to_string())).unwrap();
            u.set_port(Some(a.port())).unwrap();
        }
        u.query_pairs_mut().append_pair("schema", &self.schema);
        u.to_string()
    }

    async fn exec(&self, sql: &str) -> u64 {
        let mut c = sqlx::PgConnection::connect(&self.base)
            .await
            .expect("PostgreSQL at FICUS_TEST_POSTGRES_URL answers");
        let n = sqlx::query(sql)
            .execute(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .rows_affected();
        let _ = c.close().await;
        n
    }

    async fn scalar(&self, sql: &str) -> i64 {
        let mut c = sqlx::PgConnection::connect(&self.base).await.unwrap();
        let v: i64 = sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap();
        let _ = c.close().await;
        v
    }

    async fn drop(self) {
        self.exec(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .await;
    }
}

// ---------------------------------------------------------------------------------------
// Upstreams, receivers, relay
// ---------------------------------------------------------------------------------------

/// An upstream answering its name; `500` to requests carrying `x-fail: 1` when `faulty`.
async fn upstream(name: &'static str, faulty: bool) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| async move {
                        let fail = faulty && req.headers().contains_key("x-fail");
                        let mut resp = hyper::Response::new(Full::new(Bytes::from(name)));
                        if fail {
                            *resp.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
                        }
                        Ok::<_, Infallible>(resp)
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

/// A webhook receiver recording the id of each event it is sent.
async fn receiver() -> (String, Arc<Mutex<Vec<i64>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let got: Arc<Mutex<Vec<i64>>> = Arc::default();
    let g = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let g = g.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let g = g.clone();
                    async move {
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        if let Some(id) = v["id"].as_i64() {
                            g.lock().unwrap().push(id);
                        }
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (format!("http://{addr}/hook"), got)
}

// ---------------------------------------------------------------------------------------
// Nodes
// ---------------------------------------------------------------------------------------

/// A `ficus run` process: killed if the test ends without stopping it.
struct Node {
    name: String,
    child: Option<Child>,
    dir: PathBuf,
    gateway: String,
    admin: String,
    /// The OFREP listener's URL, when `[ofrep] bind` is set.
    ofrep: Option<String>,
    id: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Node {
    /// Writes `ficus.toml` (this node's own part, then `fleet_wide`) into its folder and
    /// starts it; returns once the gateway and the admin API listen.
    async fn start(
        root: &Path,
        name: &str,
        store: &str,
        fleet_wide: &str,
        extra_local: &str,
    ) -> Node {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let text = format!(
            "# node {name}: its own listener, admin API, name and store\n\
             store = {store:?}\n\n\
             [[listener]]\nbind = \"127.0.0.1:0\"\n\n\
             [admin]\nbind = \"127.0.0.1:0\"\n\n\
             [node]\nname = \"{name}\"\n\n\
             [fleet]\nheartbeat = \"250ms\"\nlease = \"1500ms\"\npoll_interval = \"1s\"\nflush_interval = \"250ms\"\n\n\
             [access_log]\nenabled = false\n\n\
             {extra_local}\n\
             {fleet_wide}"
        );
        std::fs::write(dir.join("ficus.toml"), text).unwrap();
        Node::spawn(name, dir).await
    }

    async fn spawn(name: &str, dir: PathBuf) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ficus"))
            .args(["run", "-c"])
            .arg(dir.join("ficus.toml"))
            .env("FICUS_ADMIN_TOKEN", TOKEN)
            .env("FICUS_WORKER_THREADS", "1")
            .env("FICUS_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let log = dir.join("ficus.log");
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(log).unwrap();
            for line in stderr.lines().map_while(Result::ok) {
                use std::io::Write;
                let _ = writeln!(file, "{line}");
                let _ = tx.send(line);
            }
        });
        let (mut gateway, mut admin, mut id, mut ofrep) = (None, None, None, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        while gateway.is_none() || admin.is_none() || id.is_none() {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| {
                    panic!(
                        "node {name} did not start; see {}",
                        dir.join("ficus.log").display()
                    )
                });
            let addr = || {
                let i = line.find("addr=")?;
                Some(line[i + 5..].split_whitespace().next()?.to_string())
            };
            if line.contains("admin API") {
                admin = addr();
            } else if line.contains("OFREP") {
                ofrep = addr();
            } else if line.contains("listening") {
                gateway = addr();
            }
            if let Some(i) = line.find("node=") {
                id = line[i + 5..].split_whitespace().next().map(str::to_string);
            }
        }
        // Keep draining stderr (the thread writes it to the log file).
        std::thread::spawn(move || while rx.recv().is_ok() {});
        Node {
            name: name.to_string(),
            child: Some(child),
            dir,
            gateway: format!("http://{}", gateway.unwrap()),
            admin: format!("http://{}", admin.unwrap()),
            ofrep: ofrep.map(|a| format!("http://{a}")),
            id: id.unwrap(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.admin)
    }

    /// SIGTERM, and wait (bounded) for the exit.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if c.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            panic!(
                "node {} did not stop on SIGTERM; see {}",
                self.name,
                self.dir.join("ficus.log").display()
            );
        }
    }

    /// SIGKILL: no goodbye, no lease handed over.
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Which side answered `GET path` through this node (its `x-ficus-upstream`).
    async fn side(&self, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let c = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .build_http::<Full<Bytes>>();
        let mut b = hyper::Request::get(format!("{}{path}", self.gateway));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        match tokio::time::timeout(
            Duration::from_secs(10),
            c.request(b.body(Full::default()).unwrap()),
        )
        .await
        {
            Ok(Ok(resp)) => {
                let status = resp.status().as_u16();
                let side = resp
                    .headers()
                    .get("x-ficus-upstream")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                let _ = resp.into_body().collect().await;
                (status, side)
            }
            Ok(Err(e)) => (0, format!("error: {e}")),
            Err(_) => (0, "timeout".into()),
        }
    }
}

async fn call(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let c = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut b = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", format!("Bearer {TOKEN}"));
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    let req = b
        .body(Full::new(Bytes::from(
            body.map(|v| v.to_string()).unwrap_or_default(),
        )))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(30), c.request(req))
        .await
        .expect("answered in time")
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())),
    )
}

/// Polls `check` every 20 ms until it holds; returns how long that took, or panics with
/// `what` after `bound`.
async fn within<F, Fut>(bound: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < bound, "{what}: not within {bound:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn root(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ficus-fleet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn routes(legacy: &str, modern: &str, route_extra: &str) -> String {
    format!(
        r#"[upstream.legacy]
url = "{legacy}"

[upstream.modern]
url = "{modern}"

[[route]]
name = "orders"
path_prefix = "/orders"
legacy = "legacy"
modern = "modern"
stage = "canary"
weight = 100
sticky = "header:x-user"
debug_header = true
{route_extra}

[default]
legacy = "legacy"
debug_header = true
"#
    )
}

/// The leader as `/api/v1/fleet` (through `node`) shows it.
async fn leader(node: &Node) -> Option<String> {
    let (s, v) = call("GET", &node.url("/api/v1/fleet"), None).await;
    if s != 200 {
        return None;
    }
    v["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["leader"] == true && n["state"] == "up")
        .and_then(|n| n["id"].as_str().map(str::to_string))
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_act_as_one() {
    let Some(pg) = Pg::new("one").await else {
        return;
    };
    let root = root("one");
    let legacy = upstream("legacy", false).await;
    let modern = upstream("modern", false).await;
    let (hook, hooked) = receiver().await;
    // orders moves to modern; catalog is mirrored (compared) and cached.
    let fleet_wide = format!(
        "{}\n[[route]]\nname = \"catalog\"\npath_prefix = \"/catalog\"\nlegacy = \"legacy\"\n\
         modern = \"modern\"\nstage = \"shadow\"\n[route.cache]\nttl = \"60s\"\n\n\
         [[webhook]]\nurl = \"{hook}\"\nevents = [\"config.\", \"route.\", \"cache.\"]\n",
        routes(&legacy, &modern, "")
    );
    let store = pg.url(None);
    let mut nodes = Vec::new();
    for name in ["n1", "n2", "n3"] {
        // Files that differ in node-local keys only (ports, names, a comment).
        nodes.push(Node::start(&root, name, &store, &fleet_wide, "").await);
    }

    // One version, whatever the ports; one leader; every node up.
    let (_, versions) = call("GET", &nodes[2].url("/api/v1/config/versions"), None).await;
    assert_eq!(versions.as_array().unwrap().len(), 1, "{versions}");
    within(
        Duration::from_secs(10),
        "three nodes up, one leader",
        || async {
            let (_, v) = call("GET", &nodes[0].url("/api/v1/fleet"), None).await;
            let ns = v["nodes"].as_array().cloned().unwrap_or_default();
            ns.iter().filter(|n| n["state"] == "up").count() == 3
                && ns.iter().filter(|n| n["leader"] == true).count() == 1
        },
    )
    .await;
    for n in &nodes {
        assert_eq!(
            n.side("/orders/1", &[("x-user", "a")]).await,
            (200, "modern".into())
        );
    }

    // A rollback through node 1 is served by nodes 2 and 3 within a second or so.
    let (s, v) = call(
        "POST",
        &nodes[0].url("/api/v1/routes/orders/rollback"),
        Some(json!({"message": "modern misbehaves"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    for n in &nodes[1..] {
        let took = within(
            Duration::from_secs(5),
            "the rollback on every node",
            || async { n.side("/orders/1", &[("x-user", "a")]).await.1 == "legacy" },
        )
        .await;
        eprintln!("rollback live on {} after {took:?}", n.name);
    }

    // A change through node 2 made against the store's latest state, live everywhere.
    let (s, v) = call(
        "POST",
        &nodes[1].url("/api/v1/routes/orders/set"),
        Some(json!({"stage": "canary", "weight": 100, "message": "try again"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    for n in [&nodes[0], &nodes[2]] {
        within(Duration::from_secs(5), "the set on every node", || async {
            n.side("/orders/1", &[("x-user", "a")]).await.1 == "modern"
        })
        .await;
    }

    // Every LISTEN connection killed, then a change at once: polling brings it everywhere.
    let killed = pg
        .scalar(&format!(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = 'ficus-listener {}'",
            pg.schema
        ))
        .await;
    assert_eq!(killed, 3, "one LISTEN connection per node");
    let (s, v) = call(
        "POST",
        &nodes[2].url("/api/v1/routes/orders/rollback"),
        Some(json!({"message": "while nobody listens"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    for n in &nodes[..2] {
        within(
            Duration::from_secs(6),
            "the change through polling",
            || async { n.side("/orders/1", &[("x-user", "a")]).await.1 == "legacy" },
        )
        .await;
    }

    // Each event reaches the webhook receiver exactly once, whichever node recorded it.
    let (_, events) = call("GET", &nodes[0].url("/api/v1/events?limit=100"), None).await;
    let mut want: Vec<i64> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            let k = e["kind"].as_str().unwrap_or("");
            k.starts_with("config.") || k.starts_with("route.") || k.starts_with("cache.")
        })
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    want.sort_unstable();
    assert_eq!(
        want.len(),
        4,
        "first version, rollback, set, rollback: {events}"
    );
    within(Duration::from_secs(10), "every event delivered", || async {
        hooked.lock().unwrap().len() >= want.len()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut got = hooked.lock().unwrap().clone();
    got.sort_unstable();
    assert_eq!(got, want, "each event once, none twice");

    // An apply through node 3 and a revert through node 1 run everywhere.
    // The reviewed file (the API shows secrets masked: what it shows cannot be applied).
    let text = std::fs::read_to_string(nodes[2].dir.join("ficus.toml"))
        .unwrap()
        .replace("ttl = \"60s\"", "ttl = \"30s\"");
    let (s, v) = call(
        "POST",
        &nodes[2].url("/api/v1/config/apply"),
        Some(json!({"text": text, "message": "a shorter cache"})),
    )
    .await;
    assert_eq!((s, &v["version"]), (200, &json!(2)), "{v}");
    for n in &nodes {
        within(Duration::from_secs(5), "version 2 everywhere", || async {
            let (_, v) = call("GET", &n.url("/api/v1/config"), None).await;
            v["version"] == 2 && v["text"].as_str().unwrap_or("").contains("ttl = \"30s\"")
        })
        .await;
    }
    let (s, v) = call(
        "POST",
        &nodes[0].url("/api/v1/config/revert"),
        Some(json!({"version": 1, "message": "back to 60s"})),
    )
    .await;
    assert_eq!((s, &v["version"]), (200, &json!(3)), "{v}");
    for n in &nodes {
        within(Duration::from_secs(5), "the revert everywhere", || async {
            let (_, v) = call("GET", &n.url("/api/v1/config"), None).await;
            v["version"] == 3 && v["text"].as_str().unwrap_or("").contains("ttl = \"60s\"")
        })
        .await;
    }

    // Node 2 caches and compares catalog answers; every node shows its comparisons.
    for i in 0..20 {
        assert_eq!(nodes[1].side(&format!("/catalog/{i}"), &[]).await.0, 200);
    }
    // (hits, misses) of catalog's cache on a node.
    let cache = |n: &Node| {
        let url = n.url("/api/v1/routes");
        async move {
            let (_, v) = call("GET", &url, None).await;
            let c = v["routes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["name"] == "catalog")
                .map(|r| r["protection"]["cache"].clone())
                .unwrap_or_default();
            (
                c["hits"].as_u64().unwrap_or(0),
                c["misses"].as_u64().unwrap_or(0),
            )
        }
    };
    let compared = |n: &Node| {
        let url = n.url("/api/v1/diffs?route=catalog");
        async move {
            let (_, v) = call("GET", &url, None).await;
            v[0]["report"]["compared"].as_i64().unwrap_or(0)
        }
    };
    assert_eq!(nodes[1].side("/catalog/0", &[]).await.0, 200);
    assert_eq!(
        cache(&nodes[1]).await,
        (1, 20),
        "answered from node 2's cache"
    );
    within(
        Duration::from_secs(10),
        "node 1 shows node 2's comparisons",
        || async { compared(&nodes[0]).await >= 20 },
    )
    .await;
    // A purge through node 1 empties node 2's cache: each probe asks for another path
    // cached before, a hit until the purge arrives, then a miss.
    let (s, v) = call(
        "POST",
        &nodes[0].url("/api/v1/cache/catalog/purge"),
        Some(json!({"message": "stale prices"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let probe = AtomicU64::new(1);
    within(Duration::from_secs(5), "node 2's cache purged", || async {
        let (_, misses) = cache(&nodes[1]).await;
        let i = probe.fetch_add(1, Ordering::Relaxed);
        assert!(i < 20, "ran out of cached paths to probe");
        nodes[1].side(&format!("/catalog/{i}"), &[]).await;
        cache(&nodes[1]).await.1 == misses + 1
    })
    .await;
    // A reset through node 3 forgets the comparisons on every node.
    let (s, v) = call(
        "POST",
        &nodes[2].url("/api/v1/diffs/catalog/reset"),
        Some(json!({"message": "modern v2 deployed"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    for n in &nodes {
        within(
            Duration::from_secs(5),
            "the comparisons forgotten",
            || async { compared(n).await == 0 },
        )
        .await;
    }

    // Node 2 restarted with an older file: it runs the store's version, stores nothing,
    // and reports the drift.
    nodes[1].stop();
    let older = fleet_wide.replace("weight = 100", "weight = 0");
    let dir = root.join("n2");
    let text = std::fs::read_to_string(dir.join("ficus.toml")).unwrap();
    std::fs::write(dir.join("ficus.toml"), text.replace(&fleet_wide, &older)).unwrap();
    nodes[1] = Node::spawn("n2", dir).await;
    let (_, versions) = call("GET", &nodes[0].url("/api/v1/config/versions"), None).await;
    assert_eq!(
        versions.as_array().unwrap().len(),
        3,
        "the older file stored nothing"
    );
    // Its file says weight 0; the fleet's version (reverted to 1) says 100.
    assert_eq!(
        nodes[1].side("/orders/1", &[("x-user", "a")]).await.1,
        "modern"
    );
    let (_, routes) = call("GET", &nodes[1].url("/api/v1/routes"), None).await;
    let drift = routes["file_drift"].as_str().unwrap_or("");
    assert!(drift.contains("differs from the fleet's"), "{routes}");
    let n2 = nodes[1].id.clone();
    within(
        Duration::from_secs(5),
        "the drift in the registry",
        || async {
            let (_, v) = call("GET", &nodes[0].url("/api/v1/fleet"), None).await;
            v["nodes"].as_array().into_iter().flatten().any(|n| {
                n["id"] == n2.as_str() && n["drift"].as_str().is_some_and(|d| d.contains("differs"))
            })
        },
    )
    .await;

    for n in &mut nodes {
        n.stop();
    }
    pg.drop().await;
}

/// GETs as many users to every node, until stopped; counts answers that were not 200.
struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    failed: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `headers[i]` go with the requests to `gateways[i]`.
    fn start(gateways: Vec<String>, headers: Vec<Vec<(&'static str, &'static str)>>) -> Load {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let failed = Arc::new(AtomicU64::new(0));
        let sent = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for (g, h) in gateways.into_iter().zip(headers) {
            let (stop, failed, sent) = (stop.clone(), failed.clone(), sent.clone());
            tasks.push(tokio::spawn(async move {
                let c = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                    .build_http::<Full<Bytes>>();
                let mut user = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    user += 1;
                    let mut b = hyper::Request::get(format!("{g}/orders/{user}"))
                        .header("x-user", format!("u{}", user % 997));
                    for (k, v) in &h {
                        b = b.header(*k, *v);
                    }
                    let ok = matches!(
                        tokio::time::timeout(Duration::from_secs(10), c.request(b.body(Full::default()).unwrap())).await,
                        Ok(Ok(r)) if r.status() == 200
                    );
                    sent.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }));
        }
        Load {
            stop,
            failed,
            sent,
            tasks,
        }
    }

    async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        (
            self.sent.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// The route's `rollout.*` events, oldest first: (kind, node, step weight).
async fn rollout_events(node: &Node) -> Vec<(String, String, f64)> {
    let (_, v) = call(
        "GET",
        &node.url("/api/v1/events?route=orders&limit=1000"),
        None,
    )
    .await;
    let mut out: Vec<(i64, String, String, f64)> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"].as_str().unwrap_or("").starts_with("rollout."))
        .map(|e| {
            (
                e["id"].as_i64().unwrap(),
                e["kind"].as_str().unwrap().to_string(),
                e["node"].as_str().unwrap_or("").to_string(),
                e["data"]["weight"]["to"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    out.sort_by_key(|e| e.0);
    out.into_iter().map(|(_, k, n, w)| (k, n, w)).collect()
}

const ROLLOUT: &str = r#"[route.rollout]
steps = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
interval = "1s"
min_requests = 20
gates = { error = { max_absolute = 1, max_relative = 1.5, alpha = 0.01, critical = true } }"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_and_its_rollout_goes_on() {
    let Some(pg) = Pg::new("kill").await else {
        return;
    };
    let root = root("kill");
    let legacy = upstream("legacy", false).await;
    let modern = upstream("modern", false).await;
    let fleet_wide = routes(&legacy, &modern, ROLLOUT).replace("weight = 100", "weight = 0");
    let store = pg.url(None);
    let mut first = Node::start(&root, "n1", &store, &fleet_wide, "").await;
    within(Duration::from_secs(10), "n1 leads", || async {
        leader(&first).await.as_deref() == Some(first.id.as_str())
    })
    .await;
    let mut others = vec![
        Node::start(&root, "n2", &store, &fleet_wide, "").await,
        Node::start(&root, "n3", &store, &fleet_wide, "").await,
    ];
    let load = Load::start(
        vec![
            first.gateway.clone(),
            others[0].gateway.clone(),
            others[1].gateway.clone(),
        ],
        vec![vec![], vec![], vec![]],
    );
    // Let the leader take a few steps, then kill it without a goodbye.
    within(Duration::from_secs(60), "two promotions by n1", || async {
        rollout_events(&others[0])
            .await
            .iter()
            .filter(|e| e.0 == "rollout.promoted")
            .count()
            >= 2
    })
    .await;
    first.kill9();
    let old = first.id.clone();
    let took = within(Duration::from_secs(8), "another node leads", || async {
        leader(&others[0]).await.is_some_and(|l| l != old)
    })
    .await;
    eprintln!("a new leader {:?} after SIGKILL (lease 1.5 s)", took);
    assert!(
        took <= Duration::from_secs(4),
        "replaced within the lease: {took:?}"
    );
    let new = leader(&others[0]).await.unwrap();
    // The new leader goes on from the stored step: promotions continue, by it.
    within(
        Duration::from_secs(60),
        "a promotion by the new leader",
        || async {
            rollout_events(&others[0])
                .await
                .iter()
                .any(|e| e.0 == "rollout.promoted" && e.1 == new)
        },
    )
    .await;
    // (Requests sent to the killed node fail: no assertion on those.)
    let (sent, _) = load.stop().await;
    assert!(sent > 100, "{sent}");
    let events = rollout_events(&others[0]).await;
    let steps: Vec<f64> = events
        .iter()
        .filter(|e| {
            e.0 == "rollout.promoted" || e.0 == "rollout.started" || e.0 == "rollout.resumed"
        })
        .map(|e| e.2)
        .collect();
    eprintln!("rollout events: {events:?}");
    assert!(
        steps.windows(2).all(|w| w[1] > w[0]),
        "every step once, in order, none repeated or skipped back: {steps:?}"
    );
    let promoted: Vec<f64> = events
        .iter()
        .filter(|e| e.0 == "rollout.promoted")
        .map(|e| e.2)
        .collect();
    for w in promoted.windows(2) {
        assert!(
            (w[1] - w[0] - 10.0).abs() < 1e-9,
            "no step skipped: {promoted:?}"
        );
    }
    assert!(
        events.iter().all(|e| e.0 != "rollout.rolled_back"),
        "a healthy canary is not rolled back: {events:?}"
    );
    for n in &mut others {
        n.stop();
    }
    pg.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_judge_rolls_back_on_the_whole_fleets_numbers() {
    let Some(pg) = Pg::new("judge").await else {
        return;
    };
    let root = root("judge");
    let legacy = upstream("legacy", false).await;
    // Modern fails the requests marked `x-fail`: only those sent through node 3.
    let modern = upstream("modern", true).await;
    let fleet_wide = routes(&legacy, &modern, ROLLOUT)
        .replace("weight = 100", "weight = 0")
        .replace(
            "steps = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]",
            "steps = [50, 100]",
        )
        .replace("interval = \"1s\"", "interval = \"60s\"");
    let store = pg.url(None);
    let mut n1 = Node::start(&root, "n1", &store, &fleet_wide, "").await;
    within(Duration::from_secs(10), "n1 leads", || async {
        leader(&n1).await.as_deref() == Some(n1.id.as_str())
    })
    .await;
    let mut n2 = Node::start(&root, "n2", &store, &fleet_wide, "").await;
    let mut n3 = Node::start(&root, "n3", &store, &fleet_wide, "").await;
    let load = Load::start(
        vec![n1.gateway.clone(), n2.gateway.clone(), n3.gateway.clone()],
        vec![vec![], vec![], vec![("x-fail", "1")]],
    );
    within(
        Duration::from_secs(60),
        "a rollback by the leader",
        || async {
            rollout_events(&n2)
                .await
                .iter()
                .any(|e| e.0 == "rollout.rolled_back")
        },
    )
    .await;
    load.stop().await;
    let events = rollout_events(&n2).await;
    let back = events
        .iter()
        .find(|e| e.0 == "rollout.rolled_back")
        .unwrap();
    assert_eq!(back.1, n1.id, "the leader judged: {events:?}");
    // Node 1 itself saw no modern error: only the fleet's numbers show them.
    let (_, metrics) = {
        let c = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .build_http::<Full<Bytes>>();
        let r = c.get(n1.url("/metrics").parse().unwrap()).await.unwrap();
        let b = r.into_body().collect().await.unwrap().to_bytes();
        ((), String::from_utf8_lossy(&b).into_owned())
    };
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("ficus_requests_total")
                && l.contains("route=\"orders\"")
                && l.contains("side=\"modern\"")
                && l.contains("code_class=\"5xx\"")
                && !l.ends_with(" 0")),
        "node 1 served no failing modern request itself"
    );
    // The verdict's error gate counted the errors that happened behind node 3.
    let (_, ev) = call(
        "GET",
        &n1.url("/api/v1/events?route=orders&kind=rollout.rolled_back"),
        None,
    )
    .await;
    let gate = ev[0]["data"]["verdict"]["gates"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|g| g["gate"] == "error-rate")
        .cloned()
        .unwrap_or_else(|| panic!("an error gate in {ev}"));
    let errors = gate["observed"]["modern_errors"].as_u64().unwrap_or(0);
    assert!(errors >= 5, "{gate}");
    for n in [&mut n1, &mut n2, &mut n3] {
        n.stop();
    }
    pg.drop().await;
}

const SLO: &str = r#"[[route.slo]]
name = "modern-availability"
scope = "modern"
objective = 99
min_requests = 10"#;

/// The SLO's evaluation as `/api/v1/slo` (through `node`) shows it.
async fn slo_view(node: &Node) -> Value {
    let (s, v) = call("GET", &node.url("/api/v1/slo"), None).await;
    assert_eq!(s, 200, "{v}");
    v.as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == "orders/modern-availability"))
        .cloned()
        .unwrap_or(Value::Null)
}

async fn page_events(node: &Node) -> Vec<Value> {
    let (_, ev) = call(
        "GET",
        &node.url("/api/v1/events?route=orders&kind=slo.firing&limit=100"),
        None,
    )
    .await;
    ev.as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["data"]["severity"] == "page")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slos_count_the_whole_fleet_and_a_new_leader_keeps_the_alert() {
    let Some(pg) = Pg::new("slo").await else {
        return;
    };
    let root = root("slo");
    let legacy = upstream("legacy", false).await;
    // Modern fails the requests marked `x-fail`: only those sent through node 2.
    let modern = upstream("modern", true).await;
    let fleet_wide = format!(
        "[slo]\nevaluate_every = \"1s\"\n\n{}",
        routes(&legacy, &modern, SLO)
    );
    let store = pg.url(None);
    let mut n1 = Node::start(&root, "n1", &store, &fleet_wide, "").await;
    within(Duration::from_secs(10), "n1 leads", || async {
        leader(&n1).await.as_deref() == Some(n1.id.as_str())
    })
    .await;
    let mut n2 = Node::start(&root, "n2", &store, &fleet_wide, "").await;
    let load = Load::start(
        vec![n1.gateway.clone(), n2.gateway.clone()],
        vec![vec![], vec![("x-fail", "1")]],
    );
    // The leader pages on errors that all happened behind the other node.
    within(Duration::from_secs(30), "modern's page alert", || async {
        !page_events(&n1).await.is_empty()
    })
    .await;
    let fired = page_events(&n1).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["actor"], "slo");
    // Both nodes show the leader's evaluation, whose counts are the fleet's.
    let (v1, v2) = (slo_view(&n1).await, slo_view(&n2).await);
    for v in [&v1, &v2] {
        assert!(v["page_since"].is_i64(), "{v}");
        let w = &v["evaluation"]["window"];
        assert!(w["bad"].as_u64().unwrap() > 0, "{v}");
        assert!(
            w["bad"].as_u64() < w["total"].as_u64(),
            "good calls of n1 too: {v}"
        );
    }
    assert_eq!(v1["evaluation"]["slo"], v2["evaluation"]["slo"]);
    // Node 1 itself sent no failing modern call: only the fleet's numbers hold them.
    let bad_here = |text: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("ficus_slo_bad_requests_total{")
                    && l.contains("orders/modern-availability")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
    };
    let metrics = |n: &Node| {
        let url = n.url("/metrics");
        async move {
            let c = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                .build_http::<Full<Bytes>>();
            let r = c.get(url.parse().unwrap()).await.unwrap();
            let b = r.into_body().collect().await.unwrap().to_bytes();
            String::from_utf8_lossy(&b).into_owned()
        }
    };
    assert_eq!(bad_here(&metrics(&n1).await), Some(0));
    assert!(bad_here(&metrics(&n2).await).unwrap_or(0) > 0);

    // The leader dies: node 2 takes over, restores the open alert from the events, and does
    // not page a second time while modern keeps failing.
    n1.kill9();
    within(Duration::from_secs(15), "n2 leads", || async {
        leader(&n2).await.as_deref() == Some(n2.id.as_str())
    })
    .await;
    within(Duration::from_secs(15), "n2 evaluates", || async {
        let v = slo_view(&n2).await;
        v["age_ms"].as_i64().is_some_and(|a| a < 1500) && v["page_since"].is_i64()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let v = slo_view(&n2).await;
    assert_eq!(v["page_since"], v1["page_since"], "the same alert: {v}");
    assert_eq!(page_events(&n2).await.len(), 1, "paged once");
    load.stop().await;
    n2.stop();
    pg.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_kill_switch_reaches_every_node_within_a_second() {
    let Some(pg) = Pg::new("flags").await else {
        return;
    };
    let root = root("flags");
    let legacy = upstream("legacy", false).await;
    let modern = upstream("modern", false).await;
    // orders' canary follows the flag: modern for the pro plan.
    let fleet_wide = format!(
        "{}\n[[flag]]\nkey = \"new-orders\"\nvariants = {{ on = true, off = false }}\n\
         default = \"off\"\n[[flag.rule]]\nwhen = [{{ attribute = \"plan\", eq = \"pro\" }}]\n\
         variant = \"on\"\n",
        routes(
            &legacy,
            &modern,
            "flag = { key = \"new-orders\", modern = \"on\", context = [\"plan\"] }"
        )
    );
    let store = pg.url(None);
    let ofrep = "[ofrep]\nbind = \"127.0.0.1:0\"\n";
    let n1 = Node::start(&root, "n1", &store, &fleet_wide, ofrep).await;
    let n2 = Node::start(&root, "n2", &store, &fleet_wide, ofrep).await;
    let pro = [("x-user", "u1"), ("plan", "pro")];
    let eval = |node: &Node| {
        let url = format!(
            "{}/ofrep/v1/evaluate/flags/new-orders",
            node.ofrep.clone().expect("OFREP listens")
        );
        async move {
            call(
                "POST",
                &url,
                Some(json!({"context": {"targetingKey": "u1", "plan": "pro"}})),
            )
            .await
            .1
        }
    };
    for n in [&n1, &n2] {
        assert_eq!(n.side("/orders/1", &pro).await, (200, "modern".into()));
        assert_eq!(eval(n).await["variant"], "on");
    }

    // The kill switch through n1: n2 serves it within a second, to its routes and over
    // OFREP.
    let (s, v) = call(
        "POST",
        &n1.url("/api/v1/flags/new-orders/set"),
        Some(json!({"variant": "off", "message": "orders bug"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let took = within(
        Duration::from_secs(1),
        "n2 follows the kill switch",
        || async {
            n2.side("/orders/1", &pro).await.1 == "legacy" && eval(&n2).await["variant"] == "off"
        },
    )
    .await;
    println!("flag set on n1 to served on n2: {took:?}");
    let (_, f) = call("GET", &n2.url("/api/v1/flags"), None).await;
    assert_eq!(
        f[0]["override"],
        json!({"flag": "new-orders", "variant": "off", "enabled": null}),
        "{f}"
    );
    // One event, recorded once, by n1.
    let (_, events) = call("GET", &n2.url("/api/v1/events?limit=100"), None).await;
    let sets: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "flag.set")
        .collect();
    assert_eq!(sets.len(), 1, "{events}");
    assert_eq!(sets[0]["node"], n1.id.as_str());

    // A node that starts now runs the override too.
    let n3 = Node::start(&root, "n3", &store, &fleet_wide, ofrep).await;
    assert_eq!(n3.side("/orders/1", &pro).await, (200, "legacy".into()));

    // Reset through n2: everyone follows the rules again.
    let (s, v) = call(
        "POST",
        &n2.url("/api/v1/flags/new-orders/reset"),
        Some(json!({"message": "fixed"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    within(
        Duration::from_secs(1),
        "n1 and n3 follow the reset",
        || async {
            n1.side("/orders/1", &pro).await.1 == "modern"
                && n3.side("/orders/1", &pro).await.1 == "modern"
                && eval(&n1).await["variant"] == "on"
        },
    )
    .await;
    drop((n1, n2, n3));
    pg.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_started_on_one_node_records_on_every_node() {
    let Some(pg) = Pg::new("record").await else {
        return;
    };
    let root = root("record");
    let legacy = upstream("legacy", false).await;
    let modern = upstream("modern", false).await;
    let fleet_wide = routes(&legacy, &modern, "");
    let store = pg.url(None);
    let n1 = Node::start(&root, "n1", &store, &fleet_wide, "").await;
    let n2 = Node::start(&root, "n2", &store, &fleet_wide, "").await;
    let (s, v) = call(
        "POST",
        &n1.url("/api/v1/record/orders/start"),
        Some(json!({"sample": 100, "for": "10m", "message": "capture before the move"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // n2 follows within a second: its own traffic is recorded into its own folder.
    within(Duration::from_secs(1), "n2 records", || async {
        let (_, v) = call("GET", &n2.url("/api/v1/record"), None).await;
        v["routes"].as_array().is_some_and(|r| {
            r.iter()
                .any(|x| x["route"] == "orders" && x["state"] == "recording")
        })
    })
    .await;
    for i in 0..20 {
        let user = format!("u{i}");
        assert_eq!(n2.side("/orders/1", &[("x-user", &user)]).await.0, 200);
    }
    within(Duration::from_secs(5), "n2's exchanges written", || async {
        let (_, v) = call("GET", &n2.url("/api/v1/record"), None).await;
        v["routes"][0]["recorded"] == 20
    })
    .await;
    let files = std::fs::read_dir(n2.dir.join("recordings").join("orders"))
        .unwrap()
        .count();
    assert_eq!(files, 1);
    // Stopped through n2: n1 stops too.
    let (s, v) = call(
        "POST",
        &n2.url("/api/v1/record/orders/stop"),
        Some(json!({"message": "enough"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    within(Duration::from_secs(1), "n1 stops", || async {
        let (_, v) = call("GET", &n1.url("/api/v1/record"), None).await;
        v["routes"][0]["state"] == "stopped"
    })
    .await;
    drop((n1, n2));
    pg.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_keeps_traffic_and_refuses_changes_until_it_is_back() {
    let Some(pg) = Pg::new("outage").await else {
        return;
    };
    let root = root("outage");
    let legacy = upstream("legacy", false).await;
    let modern = upstream("modern", false).await;
    let fleet_wide = routes(&legacy, &modern, "");
    let pg_addr: SocketAddr = {
        let u = url::Url::parse(&pg.base).unwrap();
        let host = u.host_str().unwrap_or("127.0.0.1");
        let ip = if host == "localhost" {
            "127.0.0.1"
        } else {
            host
        };
        format!("{ip}:{}", u.port().unwrap_or(5432))
            .parse()
            .unwrap()
    };
    let relay = Relay::start(pg_addr).await;
    let store = pg.url(Some(relay.addr));
    let mut n1 = Node::start(&root, "n1", &store, &fleet_wide, "").await;
    let mut n2 = Node::start(&root, "n2", &store, &fleet_wide, "").await;
    let load = Load::start(
        vec![n1.gateway.clone(), n2.gateway.clone()],
        vec![vec![], vec![]],
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    relay.cut();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (s, v) = call(
        "POST",
        &n1.url("/api/v1/routes/orders/rollback"),
        Some(json!({"message": "during the outage"})),
    )
    .await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["type"], "urn:ficus:problem:store-unavailable", "{v}");
    let (s, v) = call("GET", &n2.url("/readyz"), None).await;
    assert_eq!((s, &v["store"]), (200, &json!("unavailable")), "{v}");
    assert_eq!(
        n2.side("/orders/1", &[("x-user", "a")]).await,
        (200, "modern".into())
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    relay.restore().await;
    let took = within(
        Duration::from_secs(20),
        "a change accepted again",
        || async {
            call(
                "POST",
                &n1.url("/api/v1/routes/orders/rollback"),
                Some(json!({"message": "after the outage"})),
            )
            .await
            .0 == 200
        },
    )
    .await;
    eprintln!("changes accepted {took:?} after the store came back");
    within(Duration::from_secs(6), "the rollback on node 2", || async {
        n2.side("/orders/1", &[("x-user", "a")]).await.1 == "legacy"
    })
    .await;
    let (sent, failed) = load.stop().await;
    assert!(sent > 100, "{sent}");
    assert_eq!(failed, 0, "no request failed during the outage");
    n1.stop();
    n2.stop();
    pg.drop().await;
}

#[test]
fn a_second_gateway_on_one_sqlite_file_is_refused() {
    let root = root("sqlite");
    let text = |port: u16| {
        format!(
            "store = \"sqlite://{}\"\n[[listener]]\nbind = \"127.0.0.1:0\"\n[admin]\nbind = \"127.0.0.1:{port}\"\n\
             [upstream.legacy]\nurl = \"http://127.0.0.1:9\"\n[default]\nlegacy = \"legacy\"\n",
            root.join("state.db").display()
        )
    };
    std::fs::write(root.join("a.toml"), text(0)).unwrap();
    std::fs::write(root.join("b.toml"), text(0)).unwrap();
    let mut a = Command::new(env!("CARGO_BIN_EXE_ficus"))
        .args(["run", "-c"])
        .arg(root.join("a.toml"))
        .env("FICUS_ADMIN_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(a.stderr.take().unwrap()).lines();
    let mut lines = lines.map_while(Result::ok);
    assert!(
        lines.any(|l| l.contains("admin API")),
        "the first gateway starts"
    );
    let b = Command::new(env!("CARGO_BIN_EXE_ficus"))
        .args(["run", "-c"])
        .arg(root.join("b.toml"))
        .env("FICUS_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    let _ = a.kill();
    let _ = a.wait();
    assert_eq!(b.status.code(), Some(2));
    let err = String::from_utf8_lossy(&b.stderr);
    assert!(err.contains("in use by another ficus"), "{err}");
    assert!(
        err.contains(&a.id().to_string()),
        "names the other process: {err}"
    );
}

/// The `migration.*` events as a node's API shows them: (kind, node that recorded it).
async fn migration_events(node: &Node) -> Vec<(String, String)> {
    let (s, v) = call(
        "GET",
        &node.url("/api/v1/events?kind_prefix=migration.&limit=200"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let mut out: Vec<(String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or("").to_string(),
                e["node"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.reverse();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_plan_runs_on_the_leader_and_survives_its_death() {
    let Some(pg) = Pg::new("migration").await else {
        return;
    };
    let root = root("migration");
    let legacy = upstream("legacy", false).await;
    let modern = upstream("modern", false).await;
    let fleet_wide = format!(
        "{}\n[[migration]]\nname = \"orders-move\"\nroutes = [\"orders\"]\n\
         [[migration.step]]\nkind = \"switch_reads\"\nmanual = true\nsoak = \"3s\"\n",
        routes(&legacy, &modern, "").replace("stage = \"canary\"\nweight = 100\n", "")
    );
    let store = pg.url(None);
    let mut first = Node::start(&root, "n1", &store, &fleet_wide, "").await;
    within(Duration::from_secs(10), "n1 leads", || async {
        leader(&first).await.as_deref() == Some(first.id.as_str())
    })
    .await;
    let mut second = Node::start(&root, "n2", &store, &fleet_wide, "").await;
    within(Duration::from_secs(10), "the plan waits", || async {
        let (_, v) = call("GET", &second.url("/api/v1/migrations"), None).await;
        v[0]["status"] == "waiting"
    })
    .await;
    // One leader walks the plan: it started once, not once per node.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = migration_events(&second).await;
    assert_eq!(
        events.iter().filter(|e| e.0 == "migration.waiting").count(),
        1,
        "{events:?}"
    );
    // A command through the follower is carried out by the leader.
    let (s, v) = call(
        "POST",
        &second.url("/api/v1/migrations/orders-move/advance"),
        Some(json!({ "message": "reads are ready" })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let kinds: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["migration.advanced"], "{v}");
    assert_eq!(v["events"][0]["node"], first.id.as_str(), "{v}");
    // The switch happens; then the leader dies in the middle of the soak.
    within(
        Duration::from_secs(10),
        "orders on modern via n2",
        || async { second.side("/orders/1", &[("x-user", "u1")]).await.1 == "modern" },
    )
    .await;
    first.kill9();
    let old = first.id.clone();
    within(Duration::from_secs(8), "n2 leads", || async {
        leader(&second).await.is_some_and(|l| l != old)
    })
    .await;
    within(
        Duration::from_secs(20),
        "the plan completes on n2",
        || async {
            let (_, v) = call("GET", &second.url("/api/v1/migrations"), None).await;
            v[0]["status"] == "completed"
        },
    )
    .await;
    let events = migration_events(&second).await;
    eprintln!("migration events: {events:?}");
    // Switched once (the new leader resumed the step, it did not start it over), and
    // completed by the new leader.
    assert_eq!(
        events
            .iter()
            .filter(|e| e.0 == "migration.switched")
            .count(),
        1,
        "{events:?}"
    );
    let done = events
        .iter()
        .find(|e| e.0 == "migration.completed")
        .unwrap();
    assert_eq!(done.1, second.id, "{events:?}");
    second.stop();
    pg.drop().await;
}
