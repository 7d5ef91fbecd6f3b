//! Who may use the admin API and how: the `Host` names it answers (a DNS-rebinding page
//! reads nothing), reads needing a token when it listens beyond loopback (the admin token or
//! a read-only one, which changes nothing), the bearer scheme in any case, and secrets masked
//! in every text it shows back (and a masked text refused on apply).

use std::sync::Arc;

use bytes::Bytes;
use ficus_admin::AdminState;
use ficus_control::ControlPlane;
use ficus_proxy::Gateway;
use ficus_store::Store;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

const TOKEN: &str = "admin-token-0123456789abcdef0123456789";
const READER: &str = "reader-token-0123456789abcdef01234567";

struct Env {
    admin: String,
    control: Arc<ControlPlane>,
    _dir: tempfile::TempDir,
}

/// A node whose `[admin]` section is `admin` (the test's listener is on 127.0.0.1 whatever
/// it says: only the policy follows it), with a `[[verify]]` job and a webhook whose URLs
/// hold secrets.
async fn env(admin: &str, read_token: Option<&str>) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"[[listener]]
bind = "127.0.0.1:0"
[admin]
{admin}
[upstream.legacy]
url = "http://127.0.0.1:9"
[[route]]
name = "orders"
path_prefix = "/orders"
legacy = "legacy"
[default]
legacy = "legacy"
[access_log]
enabled = false
[[verify]]
name = "orders-table"
source = "postgres://app:hunter2@legacy-db/app"
target = "mysql://app@new-db/app?password=opensesame"
source_table = "orders"
target_table = "orders_v2"
key = ["id"]
[[webhook]]
url = "https://hooks.example/services/T000/B000/XXXX"
events = ["rollout."]
"#
    );
    std::fs::write(dir.path().join("ficus.toml"), text).unwrap();
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
    let control = ControlPlane::new(boot, Arc::new(gw));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = format!("http://{}", l.local_addr().unwrap());
    let state = AdminState::for_node(
        control.clone(),
        TOKEN.into(),
        read_token.map(str::to_string),
        None,
        None,
    );
    tokio::spawn(ficus_admin::serve(l, state, std::future::pending()));
    Env {
        admin,
        control,
        _dir: dir,
    }
}

/// A request with an optional `Authorization` value and `Host`.
async fn call(
    method: &str,
    url: &str,
    auth: Option<&str>,
    host: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let c = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut b = hyper::Request::builder().method(method).uri(url);
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    if let Some(h) = host {
        b = b.header("host", h);
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

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

#[tokio::test]
async fn a_loopback_admin_answers_only_its_own_host_names() {
    let e = env("bind = \"127.0.0.1:9901\"", None).await;
    let routes = format!("{}/api/v1/routes", e.admin);
    // A page that re-pointed its name at 127.0.0.1 (DNS rebinding) reads nothing.
    for host in [
        "rebind.attacker.example:9901",
        "evil.example",
        "127.0.0.1.evil.example",
    ] {
        let (s, v) = call("GET", &routes, None, Some(host), None).await;
        assert_eq!(s, 403, "{host}: {v}");
        assert_eq!(v["type"], "urn:ficus:problem:host-not-allowed", "{v}");
        assert!(v["fix"].as_str().unwrap().contains("allowed_hosts"), "{v}");
    }
    let (s, _) = call(
        "GET",
        &format!("{}/", e.admin),
        None,
        Some("rebind.attacker.example"),
        None,
    )
    .await;
    assert_eq!(s, 403, "the dashboard too");
    for host in [
        "127.0.0.1:9901",
        "localhost:9901",
        "LOCALHOST.",
        "[::1]:9901",
    ] {
        let (s, v) = call("GET", &routes, None, Some(host), None).await;
        assert_eq!(s, 200, "{host}: {v}");
    }
    // Reads are open on loopback; a mutation still needs the token, in any case of scheme.
    let set = format!("{}/api/v1/routes/orders/rollback", e.admin);
    let body = || Some(json!({"message": "x"}));
    assert_eq!(call("POST", &set, None, None, body()).await.0, 401);
    assert_eq!(
        call("POST", &set, Some(&format!("bearer {TOKEN}")), None, body())
            .await
            .0,
        200,
        "the scheme is case-insensitive (RFC 9110 11.1)"
    );
    assert_eq!(
        call("POST", &set, Some(&format!("BEARER {TOKEN}")), None, body())
            .await
            .0,
        200
    );
    assert_eq!(
        call("POST", &set, Some(&format!("Basic {TOKEN}")), None, body())
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn configured_host_names_are_answered_too() {
    let e = env(
        "bind = \"127.0.0.1:9901\"\nallowed_hosts = [\"ficus.internal\"]",
        None,
    )
    .await;
    let routes = format!("{}/api/v1/routes", e.admin);
    assert_eq!(
        call("GET", &routes, None, Some("ficus.internal:9901"), None)
            .await
            .0,
        200
    );
    assert_eq!(
        call("GET", &routes, None, Some("localhost"), None).await.0,
        200
    );
    assert_eq!(
        call("GET", &routes, None, Some("other.internal"), None)
            .await
            .0,
        403
    );
    let any = env("bind = \"127.0.0.1:9901\"\nallowed_hosts = [\"*\"]", None).await;
    let (s, _) = call(
        "GET",
        &format!("{}/api/v1/routes", any.admin),
        None,
        Some("anything.example"),
        None,
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn beyond_loopback_reads_need_a_token_and_a_read_token_changes_nothing() {
    let e = env("bind = \"0.0.0.0:9901\"", Some(READER)).await;
    let guarded = [
        "/api/v1/routes",
        "/api/v1/config",
        "/api/v1/config/versions",
        "/api/v1/events",
        "/api/v1/diffs",
        "/api/v1/fleet",
        "/metrics",
    ];
    for path in guarded {
        let url = format!("{}{path}", e.admin);
        let (s, v) = call("GET", &url, None, None, None).await;
        assert_eq!(s, 401, "{path}: {v}");
        assert!(
            v["fix"]
                .as_str()
                .unwrap()
                .contains("FICUS_ADMIN_READ_TOKEN"),
            "{v}"
        );
        assert_eq!(
            call("GET", &url, Some("Bearer wrong"), None, None).await.0,
            401,
            "{path}"
        );
        assert_eq!(
            call("GET", &url, Some(&bearer(READER)), None, None).await.0,
            200,
            "{path}"
        );
        assert_eq!(
            call("GET", &url, Some(&bearer(TOKEN)), None, None).await.0,
            200,
            "{path}"
        );
    }
    // Health probes and the dashboard's own files stay open (the page asks for the token).
    for path in ["/healthz", "/readyz", "/", "/ui/app.js"] {
        let (s, _) = call("GET", &format!("{}{path}", e.admin), None, None, None).await;
        assert_eq!(s, 200, "{path}");
    }
    // Planning reads, so the read token may; changing needs the admin token.
    let plan = format!("{}/api/v1/config/plan", e.admin);
    let text = std::fs::read_to_string(e.control.file()).unwrap();
    let (s, v) = call(
        "POST",
        &plan,
        Some(&bearer(READER)),
        None,
        Some(json!({"text": text})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let rollback = format!("{}/api/v1/routes/orders/rollback", e.admin);
    let (s, _) = call(
        "POST",
        &rollback,
        Some(&bearer(READER)),
        None,
        Some(json!({"message": "x"})),
    )
    .await;
    assert_eq!(s, 401, "a read token changes nothing");
    // With an unspecified bind any Host is answered: reads need the token anyway.
    let (s, _) = call(
        "GET",
        &format!("{}/api/v1/routes", e.admin),
        Some(&bearer(READER)),
        Some("gw-3.internal:9901"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    // reads = "open" opts out.
    let open = env("bind = \"0.0.0.0:9901\"\nreads = \"open\"", None).await;
    assert_eq!(
        call(
            "GET",
            &format!("{}/api/v1/routes", open.admin),
            None,
            None,
            None
        )
        .await
        .0,
        200
    );
}

#[tokio::test]
async fn secrets_are_masked_in_every_text_shown_back() {
    let e = env("bind = \"127.0.0.1:9901\"", None).await;
    let (_, cfg) = call(
        "GET",
        &format!("{}/api/v1/config", e.admin),
        None,
        None,
        None,
    )
    .await;
    let text = cfg["text"].as_str().unwrap();
    // A second version, so there is a diff to show.
    let next = std::fs::read_to_string(e.control.file())
        .unwrap()
        .replace("hunter2", "hunter3");
    let (s, v) = call(
        "POST",
        &format!("{}/api/v1/config/apply", e.admin),
        Some(&bearer(TOKEN)),
        None,
        Some(json!({"text": next, "message": "rotate the legacy password"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, v1) = call(
        "GET",
        &format!("{}/api/v1/config/versions/1", e.admin),
        None,
        None,
        None,
    )
    .await;
    let (_, diff) = call(
        "GET",
        &format!("{}/api/v1/config/versions/2/diff", e.admin),
        None,
        None,
        None,
    )
    .await;
    let (_, events) = call(
        "GET",
        &format!("{}/api/v1/events", e.admin),
        None,
        None,
        None,
    )
    .await;
    let (_, verify) = call(
        "GET",
        &format!("{}/api/v1/verify", e.admin),
        None,
        None,
        None,
    )
    .await;
    for (what, shown) in [
        ("config", text.to_string()),
        ("version 1", v1["text"].as_str().unwrap().to_string()),
        ("diff", diff.to_string()),
        ("events", events.to_string()),
        ("verify jobs", verify.to_string()),
    ] {
        for secret in ["hunter2", "hunter3", "opensesame", "B000/XXXX"] {
            assert!(!shown.contains(secret), "{what} shows {secret}: {shown}");
        }
    }
    assert!(text.contains("postgres://app:***@legacy-db/app"), "{text}");
    assert!(text.contains("https://hooks.example/***"), "{text}");
    // What the API showed cannot be applied back: it would store *** as the password.
    let (s, v) = call(
        "POST",
        &format!("{}/api/v1/config/apply", e.admin),
        Some(&bearer(TOKEN)),
        None,
        Some(json!({"text": text, "message": "from the API"})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("masked"), "{v}");
}
