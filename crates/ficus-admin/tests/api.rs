//! The admin API over real sockets, with a real gateway, a real SQLite store file and real
//! upstreams: the OpenAPI document matches the router, auth guards every mutation without
//! leaking what exists, bad payloads name the field, changes answer with their events and
//! are live for the next request, concurrent applies resolve to one winner and a 409.

use std::sync::Arc;

use bytes::Bytes;
use ficus_admin::{openapi::ENDPOINTS, AdminState};
use ficus_control::ControlPlane;
use ficus_proxy::Gateway;
use ficus_store::Store;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

#[path = "support/upstream.rs"]
mod upstream;
use upstream::upstream;

const TOKEN: &str = "test-token-0123456789";

struct Env {
    admin: String,
    proxy: String,
    control: Arc<ControlPlane>,
    _dir: tempfile::TempDir,
}

fn file(legacy: &str, modern: &str) -> String {
    format!(
        r#"[[listener]]
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
stage = "canary"
weight = 0
sticky = "header:x-user"
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
target_table = "orders_v2"
key = ["id"]

[[flag]]
key = "new-checkout"
variants = {{ on = true, off = false }}
default = "off"
"#
    )
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, modern) = (upstream("legacy").await, upstream("modern").await);
    std::fs::write(dir.path().join("ficus.toml"), file(&legacy, &modern)).unwrap();
    let store = Store::open(&format!(
        "sqlite://{}",
        dir.path().join("state.db").display()
    ))
    .await
    .unwrap();
    let boot = ControlPlane::boot(&dir.path().join("ficus.toml"), store)
        .await
        .unwrap();
    let gw = Gateway::start(boot.effective().clone()).await.unwrap();
    let proxy = format!("http://{}", gw.local_addrs()[0]);
    let control = ControlPlane::new(boot, Arc::new(gw));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = format!("http://{}", l.local_addr().unwrap());
    let state = AdminState::new(control.clone(), TOKEN.into());
    tokio::spawn(ficus_admin::serve(l, state, std::future::pending()));
    Env {
        admin,
        proxy,
        control,
        _dir: dir,
    }
}

async fn call(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let c = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut b = hyper::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(v.to_string()))),
        None => b.body(Full::new(Bytes::new())),
    }
    .unwrap();
    let resp = c.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, v)
}

async fn proxied(url: &str, user: &str) -> String {
    let c = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let req = hyper::Request::get(url)
        .header("x-user", user)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = c.request(req).await.unwrap();
    String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).into()
}

#[tokio::test]
async fn the_openapi_document_matches_the_router() {
    let e = env().await;
    let (s, doc) = call(
        "GET",
        &format!("{}/api/v1/openapi.json", e.admin),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200);
    let paths = doc["paths"].as_object().unwrap();
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(documented, ENDPOINTS.len());
    for ep in ENDPOINTS {
        let path = ep
            .path
            .replace("{name}", "orders")
            .replace("{number}", "1")
            .replace("{job}", "orders-table")
            .replace("{route}", "orders")
            .replace("{command}", "pause")
            .replace("{key}", "new-checkout")
            // Not a sample id: answered 400, which still proves the route exists.
            .replace("{id}", "none");
        let body = (ep.method == "post").then(|| json!({}));
        let (status, v) = call(
            &ep.method.to_uppercase(),
            &format!("{}{}", e.admin, path),
            Some(TOKEN),
            body,
        )
        .await;
        assert!(
            status != 404 && status != 405,
            "{} {} answered {status}: {v}",
            ep.method,
            ep.path
        );
        assert!(
            paths[ep.path][ep.method].is_object(),
            "{} {} documented",
            ep.method,
            ep.path
        );
        if ep.mutation {
            assert!(paths[ep.path][ep.method]["security"].is_array());
        }
    }
    for (m, p) in [
        ("GET", "/api/v1/nope"),
        ("POST", "/api/v1/routes"),
        ("GET", "/api/v1/routes/orders/set"),
        ("DELETE", "/api/v1/events"),
    ] {
        let (status, _) = call(m, &format!("{}{}", e.admin, p), Some(TOKEN), None).await;
        assert!(
            status == 404 || status == 405,
            "{m} {p} is not an endpoint: {status}"
        );
    }
}

#[tokio::test]
async fn mutations_need_the_token_and_a_401_does_not_say_what_exists() {
    let e = env().await;
    let set = |route: &str| format!("{}/api/v1/routes/{route}/set", e.admin);
    let body = json!({"weight": 50, "message": "try"});
    for token in [None, Some("wrong"), Some("test-token-012345678"), Some("")] {
        for route in ["orders", "no-such-route"] {
            let (s, v) = call("POST", &set(route), token, Some(body.clone())).await;
            assert_eq!(s, 401, "{token:?} {route}");
            assert_eq!(v["type"], "urn:ficus:problem:unauthorized");
            assert!(
                !v.to_string().contains(route),
                "the 401 names no route: {v}"
            );
        }
    }
    let (s, v) = call(
        "POST",
        &set("no-such-route"),
        Some(TOKEN),
        Some(body.clone()),
    )
    .await;
    assert_eq!(s, 404, "{v}");
    assert!(v["fix"].as_str().unwrap().contains("orders"));
    // Reads are open.
    assert_eq!(
        call("GET", &format!("{}/api/v1/routes", e.admin), None, None)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn bad_payloads_get_400_naming_the_field() {
    let e = env().await;
    let url = format!("{}/api/v1/routes/orders/set", e.admin);
    for (body, field) in [
        (json!({"weight": 50}), "message"),
        (json!({"weight": 101, "message": "x"}), "weight"),
        (json!({"weight": 12.345, "message": "x"}), "weight"),
        (json!({"stage": "canery", "message": "x"}), "stage"),
        (json!({"message": "x"}), "stage, weight"),
        (json!({"weight": "ten", "message": "x"}), "weight"),
        (json!({"weight": 10, "message": "x", "wieght": 3}), "wieght"),
        (json!({"weight": 10, "message": "   "}), "message"),
    ] {
        let (s, v) = call("POST", &url, Some(TOKEN), Some(body.clone())).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert!(v["detail"].as_str().unwrap().contains(field), "{body}: {v}");
    }
    let (s, v) = call(
        "POST",
        &format!("{}/api/v1/config/apply", e.admin),
        Some(TOKEN),
        Some(json!({"text": "[[route]]\nname = 1\n", "message": "bad"})),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(v["type"], "urn:ficus:problem:invalid-config");
    assert!(
        v["detail"].as_str().unwrap().contains(":2:8: error:"),
        "{v}"
    );
    // The caller's file name in the diagnostics, for plan and apply alike.
    for (path, token, extra) in [
        ("plan", None, json!({})),
        ("apply", Some(TOKEN), json!({"message": "bad"})),
    ] {
        let mut body = json!({"text": "[[route]]\nname = 1\n", "origin": "mine/ficus.toml"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (s, v) = call(
            "POST",
            &format!("{}/api/v1/config/{path}", e.admin),
            token,
            Some(body),
        )
        .await;
        assert_eq!(s, 400, "{path}: {v}");
        let detail = v["detail"].as_str().unwrap();
        assert!(
            detail.contains("mine/ficus.toml:2:8: error:"),
            "{path}: {v}"
        );
        let server_file = e.control.file().display().to_string();
        assert!(!detail.contains(&server_file), "{path}: {v}");
    }
    // An origin is a file name: 1 to MAX_ORIGIN_BYTES bytes.
    for origin in [
        String::new(),
        "x".repeat(ficus_admin::api::MAX_ORIGIN_BYTES + 1),
    ] {
        let (s, v) = call(
            "POST",
            &format!("{}/api/v1/config/plan", e.admin),
            None,
            Some(json!({"text": "", "origin": origin})),
        )
        .await;
        assert_eq!(s, 400, "{v}");
        assert!(v["detail"].as_str().unwrap().starts_with("origin: "), "{v}");
    }
    // A path parameter that is not what the endpoint takes: a problem too.
    for url in [
        "/api/v1/config/versions/abc",
        "/api/v1/config/versions/abc/diff",
    ] {
        let (s, v) = call("GET", &format!("{}{url}", e.admin), None, None).await;
        assert_eq!(s, 400, "{url}: {v}");
        assert_eq!(v["type"], "urn:ficus:problem:bad-path", "{url}: {v}");
        assert!(v["detail"].as_str().unwrap().contains("abc"), "{v}");
    }
}

#[tokio::test]
async fn a_change_answers_with_its_event_and_is_live_for_the_next_request() {
    let e = env().await;
    assert_eq!(
        proxied(&format!("{}/orders/1", e.proxy), "u1").await,
        "legacy"
    );
    let (s, v) = call(
        "POST",
        &format!("{}/api/v1/routes/orders/set", e.admin),
        Some(TOKEN),
        Some(json!({"weight": 100, "message": "all in"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["events"][0]["kind"], "route.set");
    assert_eq!(v["events"][0]["actor"], "api");
    assert_eq!(v["events"][0]["message"], "all in");
    assert_eq!(v["changes"][0], "~ route orders: weight 0% -> 100%");
    assert_eq!(
        proxied(&format!("{}/orders/1", e.proxy), "u1").await,
        "modern"
    );

    let (_, routes) = call("GET", &format!("{}/api/v1/routes", e.admin), None, None).await;
    let orders = &routes["routes"][0];
    assert_eq!(
        (
            orders["name"].as_str(),
            orders["weight"].as_f64(),
            orders["overridden"].as_bool()
        ),
        (Some("orders"), Some(100.0), Some(true))
    );
    assert_eq!(orders["file"]["weight"], 0.0);

    let (s, v) = call(
        "POST",
        &format!("{}/api/v1/routes/orders/rollback", e.admin),
        Some(TOKEN),
        Some(json!({"message": "errors"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["events"][0]["kind"], "route.rollback");
    assert_eq!(
        proxied(&format!("{}/orders/1", e.proxy), "u1").await,
        "legacy",
        "the very next request"
    );

    let (_, ev) = call(
        "GET",
        &format!("{}/api/v1/events?route=orders", e.admin),
        None,
        None,
    )
    .await;
    let kinds: Vec<_> = ev
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["route.rollback", "route.set"]);

    let (_, m) = call("GET", &format!("{}/metrics", e.admin), None, None).await;
    let m = m.as_str().unwrap();
    assert!(
        m.contains("ficus_requests_total{route=\"orders\",side=\"modern\",code_class=\"2xx\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("ficus_requests_total{route=\"orders\",side=\"legacy\",code_class=\"2xx\"} 2"),
        "{m}"
    );
    assert_eq!(
        call("GET", &format!("{}/readyz", e.admin), None, None)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn concurrent_applies_one_wins_one_gets_409() {
    let e = env().await;
    let (_, cfg) = call("GET", &format!("{}/api/v1/config", e.admin), None, None).await;
    let version = cfg["version"].as_i64().unwrap();
    let text = cfg["text"].as_str().unwrap().to_string();
    let url = format!("{}/api/v1/config/apply", e.admin);
    let mut tasks = Vec::new();
    for w in [10, 20, 30, 40] {
        let (url, text) = (
            url.clone(),
            text.replace("weight = 0", &format!("weight = {w}")),
        );
        tasks.push(tokio::spawn(async move {
            call("POST", &url, Some(TOKEN), Some(json!({"text": text, "message": format!("to {w}"), "expected_version": version}))).await
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap().0);
    }
    statuses.sort();
    assert_eq!(statuses, [200, 409, 409, 409]);
    assert_eq!(e.control.snapshot().version, Some(version + 1));

    let (s, v) = call(
        "POST",
        &url,
        Some(TOKEN),
        Some(json!({"text": text, "message": "stale", "expected_version": version})),
    )
    .await;
    assert_eq!(s, 409);
    assert_eq!(v["type"], "urn:ficus:problem:version-conflict");

    let (s, diff) = call(
        "GET",
        &format!("{}/api/v1/config/versions/{}/diff", e.admin, version + 1),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        diff["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().starts_with("+ weight = ")),
        "{diff}"
    );
    let (s, plan) = call(
        "POST",
        &format!("{}/api/v1/config/plan", e.admin),
        None,
        Some(json!({"text": text})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(plan["summary"].as_array().unwrap().len(), 1, "{plan}");
}

#[tokio::test]
async fn verify_jobs_show_their_latest_run_and_history() {
    let e = env().await;
    let get = |p: &str| {
        let url = format!("{}{p}", e.admin);
        async move { call("GET", &url, None, None).await }
    };
    // Configured but never run.
    let (s, v) = get("/api/v1/verify").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v[0]["job"], "orders-table");
    assert_eq!(v[0]["route"], "orders");
    assert_eq!(v[0]["target_table"], "orders_v2");
    assert_eq!(v[0]["every_ms"], 3_600_000);
    assert_eq!(v[0]["configured"], true);
    assert!(v[0]["outcome"].is_null());

    let store = e.control.store();
    let run = |outcome: &str, at: i64| ficus_store::NewVerifyRun {
        job: "orders-table".into(),
        route: Some("orders".into()),
        source_table: "orders".into(),
        target_table: "orders_v2".into(),
        started_at: at,
        finished_at: at + 40,
        outcome: outcome.into(),
        rows_compared: 10,
        missing: 1,
        extra: 0,
        changed: 2,
        error: None,
        report: json!({"outcome": outcome}),
    };
    store.record_verify(run("equal", 1_000)).await.unwrap();
    store.record_verify(run("different", 2_000)).await.unwrap();
    let mut gone = run("error", 3_000);
    gone.job = "removed-job".into();
    gone.error = Some("no table".into());
    store.record_verify(gone).await.unwrap();

    let (s, v) = get("/api/v1/verify").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v[0]["outcome"], "different");
    assert_eq!(v[0]["missing"], 1);
    assert_eq!(v[0]["changed"], 2);
    assert_eq!(v[0]["finished_at"], 2_040);
    assert_eq!(v[1]["job"], "removed-job");
    assert_eq!(v[1]["configured"], false);
    assert_eq!(v[1]["error"], "no table");

    let (s, v) = get("/api/v1/verify/orders-table?limit=5").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["outcome"], "different");
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["outcome"], "different");
    assert_eq!(runs[1]["report"]["outcome"], "equal");

    let (s, v) = get("/api/v1/verify/nope").await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["type"], "urn:ficus:problem:unknown-verify-job");
    assert_eq!(v["fix"], "verify jobs are: orders-table");
}

#[tokio::test]
async fn an_oversized_body_gets_413_naming_the_limit() {
    let e = env().await;
    let text = "#".repeat(ficus_admin::MAX_BODY_BYTES + 1);
    let (s, v) = call(
        "POST",
        &format!("{}/api/v1/config/plan", e.admin),
        Some(TOKEN),
        Some(json!({ "text": text })),
    )
    .await;
    assert_eq!(s, 413, "{v}");
    assert_eq!(v["type"], "urn:ficus:problem:body-too-large");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("{} bytes", ficus_admin::MAX_BODY_BYTES)),
        "{v}"
    );
}

/// One limit for a config's size holds everywhere: what validation accepts (the file for
/// `ficus run`), what the admin API reads, and what the store keeps. A config of exactly
/// the limit, written so that JSON escapes it to nearly twice its size, is applied through
/// the API; one byte more is refused by validation with the limit named, not with a 413;
/// and a text that only normalising (a final newline) would take over the limit is refused
/// the same way, before the store would.
#[tokio::test]
async fn a_config_as_large_as_validation_accepts_is_applied_through_the_api() {
    let max = ficus_config::defaults::MAX_CONFIG_BYTES;
    assert_eq!(ficus_store::limits::MAX_CONFIG_BYTES, max);
    let e = env().await;
    let cfg = call("GET", &format!("{}/api/v1/config", e.admin), None, None)
        .await
        .1;
    // The stored text is normalised already: comment lines added at its end stay as they are.
    let mut text = cfg["text"].as_str().unwrap().to_string();
    // Comment lines of quotes: every byte but the `#` and the newline doubles in JSON.
    let line = format!("#{}\n", "\"".repeat(98));
    while text.len() + line.len() <= max {
        text.push_str(&line);
    }
    text.push_str(&"#".repeat(max - text.len() - 1));
    text.push('\n');
    assert_eq!(text.len(), max);
    let body = json!({"text": text, "message": "as large as it gets"});
    assert!(
        body.to_string().len() > max * 19 / 10,
        "JSON nearly doubles it"
    );
    let (s, v) = call(
        "POST",
        &format!("{}/api/v1/config/apply", e.admin),
        Some(TOKEN),
        Some(body),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["version"], 2, "{v}");
    let stored = call(
        "GET",
        &format!("{}/api/v1/config/versions/2", e.admin),
        None,
        None,
    )
    .await
    .1;
    assert_eq!(stored["text"].as_str().unwrap().len(), max);

    // One byte more: refused by validation.
    text.push('#');
    let (s, v) = call(
        "POST",
        &format!("{}/api/v1/config/apply", e.admin),
        Some(TOKEN),
        Some(json!({"text": text, "origin": "big.toml", "message": "one byte more"})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["type"], "urn:ficus:problem:invalid-config");
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!(
            "big.toml:1:1: error: the config is {} bytes, more than {max} bytes (4MiB)",
            max + 1
        )),
        "{detail}"
    );
    // The limit without the final newline, which the stored text gets: refused as well.
    text.truncate(max - 1);
    text.push('#');
    let (s, v) = call(
        "POST",
        &format!("{}/api/v1/config/apply", e.admin),
        Some(TOKEN),
        Some(json!({"text": text, "origin": "big.toml", "message": "no newline"})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["type"], "urn:ficus:problem:invalid-config");
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("big.toml (as stored):1:1: error: the config is ")
            && detail.contains(&format!("bytes, more than {max} bytes (4MiB)")),
        "{v}"
    );
}

/// Polls `/api/v1/diffs?route=R` until `done` holds (bounded).
async fn diffs_until(e: &Env, route: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (s, v) = call(
            "GET",
            &format!("{}/api/v1/diffs?route={route}", e.admin),
            None,
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        if done(&v[0]) {
            return v[0].clone();
        }
        assert!(std::time::Instant::now() < deadline, "timed out: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn shadow_comparisons_are_served_kept_and_reset() {
    let e = env().await;
    let (s, v) = call(
        "POST",
        &format!("{}/api/v1/routes/orders/set", e.admin),
        Some(TOKEN),
        Some(json!({"stage": "shadow", "message": "compare before any user moves"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    for u in 0..10 {
        // Legacy answers; modern gets the copy and answers differently ("modern").
        assert_eq!(
            proxied(&format!("{}/orders/{u}", e.proxy), &format!("u{u}")).await,
            "legacy"
        );
    }
    // The counters and the per-endpoint report are two updates on the mirror thread: wait
    // for both (a read between them saw compared = 10 beside a report of 9).
    let r = diffs_until(&e, "orders", |r| {
        r["counters"]["compared"] == 10 && r["report"]["endpoints"][0]["compared"] == 10
    })
    .await;
    assert_eq!(r["mirroring"], true);
    assert_eq!(r["stage"], "shadow");
    assert_eq!(r["counters"]["mirrored"], 10);
    let ep = &r["report"]["endpoints"][0];
    assert_eq!(ep["endpoint"], "GET /orders/{id}");
    assert_eq!(ep["compared"], 10);
    let field = &ep["fields"][0];
    assert_eq!(
        (field["path"].as_str(), field["kind"].as_str()),
        (Some("body"), Some("value"))
    );
    assert_eq!(field["verdict"], "real");
    assert_eq!(r["report"]["rate"], 1.0);

    // One sample, side by side.
    let id = field["sample_ids"][0].as_i64().unwrap();
    let (s, sample) = call(
        "GET",
        &format!("{}/api/v1/diffs/samples/{id}", e.admin),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200, "{sample}");
    assert_eq!(sample["data"]["legacy"]["body"], "legacy");
    assert_eq!(sample["data"]["modern"]["body"], "modern");
    assert_eq!(sample["data"]["request"]["method"], "GET");
    let (s, v) = call(
        "GET",
        &format!("{}/api/v1/diffs/samples/999", e.admin),
        None,
        None,
    )
    .await;
    assert_eq!(
        (s, v["type"].as_str()),
        (404, Some("urn:ficus:problem:unknown-sample")),
        "{v}"
    );
    let (s, v) = call(
        "GET",
        &format!("{}/api/v1/diffs?route=nope", e.admin),
        None,
        None,
    )
    .await;
    assert_eq!(s, 404, "{v}");

    // Flushed to the store, the comparisons survive a restart of the control plane.
    let rows = e.control.flush_shadow().await.unwrap();
    assert_eq!(rows, 7, "an endpoint, a field and 5 samples");
    let stored = e.control.store().load_shadow().await.unwrap();
    assert_eq!(stored.endpoints[0].compared, 10);
    assert_eq!(
        stored.samples.len(),
        5,
        "samples_per_field (5) samples of the field"
    );
    let other = Gateway::start(e.control.snapshot().effective.as_ref().clone())
        .await
        .unwrap();
    {
        let mut fresh = other.mirror().aggregator().lock().unwrap();
        fresh.load(ficus_control::shadow::from_batch(stored));
        let rep = fresh.report(Some("orders"));
        assert_eq!(rep.routes[0].compared, 10);
        assert!(rep.routes[0].endpoints[0].fields[0]
            .sample_ids
            .contains(&id));
        assert!(fresh.sample(id).is_some());
    }
    other.shutdown(std::time::Duration::from_secs(1)).await;

    // Reset: needs the token, is an event, empties memory and store.
    let url = format!("{}/api/v1/diffs/orders/reset", e.admin);
    let (s, _) = call(
        "POST",
        &url,
        None,
        Some(json!({"message": "fixed the body"})),
    )
    .await;
    assert_eq!(s, 401);
    let (s, v) = call("POST", &url, Some(TOKEN), Some(json!({"message": ""}))).await;
    assert_eq!(s, 400, "{v}");
    let (s, ev) = call(
        "POST",
        &url,
        Some(TOKEN),
        Some(json!({"message": "fixed the body"})),
    )
    .await;
    assert_eq!(s, 200, "{ev}");
    assert_eq!(
        (
            ev["events"][0]["kind"].as_str(),
            ev["events"][0]["route"].as_str()
        ),
        (Some("shadow.reset"), Some("orders"))
    );
    assert_eq!(ev["events"][0]["message"], "fixed the body");
    let (_, v) = call(
        "GET",
        &format!("{}/api/v1/diffs?route=orders", e.admin),
        None,
        None,
    )
    .await;
    assert!(v[0]["report"].is_null(), "{v}");
    assert!(e.control.store().load_shadow().await.unwrap().is_empty());
    let (s, _) = call(
        "GET",
        &format!("{}/api/v1/diffs/samples/{id}", e.admin),
        None,
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (_, events) = call(
        "GET",
        &format!("{}/api/v1/events?kind=shadow.reset", e.admin),
        None,
        None,
    )
    .await;
    assert_eq!(events.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_cache_purge_is_an_event_and_empties_the_cache() {
    let e = env().await;
    let (_, cfg) = call("GET", &format!("{}/api/v1/config", e.admin), None, None).await;
    let text = cfg["text"]
        .as_str()
        .unwrap()
        .replace("[default]", "[route.cache]\nttl = \"60s\"\n\n[default]");
    let (s, v) = call(
        "POST",
        &format!("{}/api/v1/config/apply", e.admin),
        Some(TOKEN),
        Some(json!({"text": text, "message": "cache orders"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let cache = || async {
        let (_, v) = call("GET", &format!("{}/api/v1/routes", e.admin), None, None).await;
        v["routes"][0]["protection"]["cache"].clone()
    };
    for _ in 0..3 {
        assert_eq!(
            proxied(&format!("{}/orders/7", e.proxy), "u1").await,
            "legacy"
        );
    }
    let c = cache().await;
    assert_eq!(
        (c["misses"].as_u64(), c["hits"].as_u64()),
        (Some(1), Some(2)),
        "{c}"
    );

    let url = format!("{}/api/v1/cache/orders/purge", e.admin);
    let (s, _) = call("POST", &url, None, Some(json!({"message": "stale prices"}))).await;
    assert_eq!(s, 401);
    let (s, v) = call(
        "POST",
        &url,
        Some(TOKEN),
        Some(json!({"message": "x", "path": "orders/7"})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = call(
        "POST",
        &url,
        Some(TOKEN),
        Some(json!({"message": "stale prices", "path": "/orders/7"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let ev = &v["events"][0];
    assert_eq!(
        (ev["kind"].as_str(), ev["route"].as_str()),
        (Some("cache.purged"), Some("orders"))
    );
    assert_eq!(ev["data"]["path"], "/orders/7");
    assert_eq!(
        proxied(&format!("{}/orders/7", e.proxy), "u1").await,
        "legacy"
    );
    let c = cache().await;
    assert_eq!(
        c["misses"].as_u64(),
        Some(2),
        "fetched again after the purge: {c}"
    );
    // A route without a cache: 400 naming the fix.
    let (s, v) = call(
        "POST",
        &format!("{}/api/v1/cache/default/purge", e.admin),
        Some(TOKEN),
        Some(json!({"message": "x"})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("[route.cache]"),
        "{v}"
    );
}
