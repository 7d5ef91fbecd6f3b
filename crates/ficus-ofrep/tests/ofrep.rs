//! OFREP over real HTTP on 127.0.0.1, against a real control plane on a SQLite store: each
//! kind of flag and reason, the bulk endpoint's ETag and 304, a config change reaching the
//! next evaluation, and every refusal the spec gives (bad JSON, a bad context, too large,
//! unknown flag, no key, a wrong key, over the rate), each changing nothing.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use ficus_control::ControlPlane;
use ficus_ofrep::OfrepState;
use ficus_proxy::Gateway;
use ficus_store::Store;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

const KEY: &str = "eval-key-0123456789abcdef";

fn config(flags_extra: &str) -> String {
    format!(
        r#"[[listener]]
bind = "127.0.0.1:0"
[upstream.legacy]
url = "http://127.0.0.1:9"
[default]
legacy = "legacy"
[access_log]
enabled = false

[[flag]]
key = "new-checkout"
variants = {{ on = true, off = false }}
default = "off"
metadata = {{ owner = "payments" }}
[[flag.rule]]
when = [{{ attribute = "plan", in = ["pro", "team"] }}]
variant = "on"
[[flag.rule]]
split = {{ on = 50, off = 50 }}

[[flag]]
key = "theme"
variants = {{ light = "light", dark = "dark" }}
default = "light"

[[flag]]
key = "page-size"
variants = {{ small = 10, large = 50 }}
default = "large"

[[flag]]
key = "banner"
variants = {{ spring = {{ color = "green" }}, none = {{}} }}
default = "spring"

[[flag]]
key = "old-thing"
variants = {{ on = true, off = false }}
default = "on"
enabled = false
{flags_extra}
"#
    )
}

struct Env {
    _dir: tempfile::TempDir,
    control: Arc<ControlPlane>,
    url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(ofrep: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("keys"),
        format!("# evaluation keys\n{KEY}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("ficus.toml"),
        format!("{}\n[ofrep]\nbind = \"127.0.0.1:0\"\n{ofrep}\n", config("")),
    )
    .unwrap();
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
    let settings = control.snapshot().effective.ofrep.clone();
    let state = OfrepState::new(control.clone(), settings).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(ficus_ofrep::serve(listener, state, async move {
        let _ = rx.await;
    }));
    Env {
        _dir: dir,
        control,
        url: format!("http://{addr}"),
        _stop: tx,
    }
}

/// POSTs `body` (raw bytes) to `path` with `headers`; status, headers, JSON (or Null).
async fn post(
    env: &Env,
    path: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> (u16, http::HeaderMap, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = hyper::Request::post(format!("{}{path}", env.url))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .request(req.body(Full::new(Bytes::copy_from_slice(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn eval(env: &Env, key: &str, context: Value) -> (u16, Value) {
    let body = json!({ "context": context }).to_string();
    let (s, _, v) = post(
        env,
        &format!("/ofrep/v1/evaluate/flags/{key}"),
        body.as_bytes(),
        &[("authorization", &format!("Bearer {KEY}"))],
    )
    .await;
    (s, v)
}

const KEYS: &str = "keys_file = \"keys\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_flag_and_reason() {
    let env = start(KEYS).await;
    let (s, v) = eval(
        &env,
        "new-checkout",
        json!({"targetingKey": "u1", "plan": "pro"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"key": "new-checkout", "value": true, "variant": "on", "reason": "TARGETING_MATCH", "metadata": {"owner": "payments"}})
    );
    // The split: about half of the users, each always the same.
    let mut on = 0;
    for i in 0..200 {
        let (s, v) = eval(
            &env,
            "new-checkout",
            json!({"targetingKey": format!("user-{i}")}),
        )
        .await;
        assert_eq!((s, &v["reason"]), (200, &json!("SPLIT")), "{v}");
        let again = eval(
            &env,
            "new-checkout",
            json!({"targetingKey": format!("user-{i}")}),
        )
        .await;
        assert_eq!(again.1["variant"], v["variant"], "sticky");
        on += usize::from(v["value"] == true);
    }
    assert!((70..=130).contains(&on), "{on} of 200 on");
    // Without a targeting key the split cannot bucket.
    let (s, v) = eval(&env, "new-checkout", json!({"plan": "free"})).await;
    assert_eq!(
        (s, &v["errorCode"]),
        (400, &json!("TARGETING_KEY_MISSING")),
        "{v}"
    );
    assert!(v.get("value").is_none(), "errors carry no value: {v}");
    let (s, v) = eval(&env, "theme", json!({})).await;
    assert_eq!(
        (s, &v["value"], &v["reason"]),
        (200, &json!("light"), &json!("STATIC"))
    );
    let (_, v) = eval(&env, "page-size", json!({})).await;
    assert_eq!(v["value"], json!(50));
    let (_, v) = eval(&env, "banner", json!({})).await;
    assert_eq!(v["value"], json!({"color": "green"}));
    let (s, v) = eval(&env, "old-thing", json!({})).await;
    assert_eq!((s, &v["reason"]), (200, &json!("DISABLED")), "{v}");
    assert!(
        v.get("value").is_none(),
        "the client's code default applies: {v}"
    );
    let (s, v) = eval(&env, "nope", json!({})).await;
    assert_eq!(
        (s, &v["key"], &v["errorCode"]),
        (404, &json!("nope"), &json!("FLAG_NOT_FOUND"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_has_an_etag_answers_304_and_changes_with_the_config_or_the_context() {
    let env = start(KEYS).await;
    let auth = format!("Bearer {KEY}");
    let body = json!({"context": {"targetingKey": "u1", "plan": "pro"}}).to_string();
    let (s, h, v) = post(
        &env,
        "/ofrep/v1/evaluate/flags",
        body.as_bytes(),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let keys: Vec<&str> = v["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["banner", "new-checkout", "old-thing", "page-size", "theme"]
    );
    let etag = h["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    // Unchanged: 304, no body.
    let (s, h2, v2) = post(
        &env,
        "/ofrep/v1/evaluate/flags",
        body.as_bytes(),
        &[("authorization", &auth), ("if-none-match", &etag)],
    )
    .await;
    assert_eq!((s, &v2), (304, &Value::Null));
    assert_eq!(h2["etag"].to_str().unwrap(), etag);
    // Another context: another ETag.
    let other = json!({"context": {"targetingKey": "u2"}}).to_string();
    let (_, h3, _) = post(
        &env,
        "/ofrep/v1/evaluate/flags",
        other.as_bytes(),
        &[("authorization", &auth)],
    )
    .await;
    assert_ne!(h3["etag"], h["etag"]);
    // A config change reaches the next evaluation and changes the ETag.
    let text = format!(
        "{}\n[ofrep]\nbind = \"127.0.0.1:0\"\n{KEYS}\n",
        config("").replace("default = \"light\"", "default = \"dark\"")
    );
    env.control
        .apply_text(&text, "test", "dark by default", None)
        .await
        .unwrap();
    let (s, h4, _) = post(
        &env,
        "/ofrep/v1/evaluate/flags",
        body.as_bytes(),
        &[("authorization", &auth), ("if-none-match", &etag)],
    )
    .await;
    assert_eq!(s, 200, "flags changed: no 304");
    assert_ne!(h4["etag"].to_str().unwrap(), etag);
    let (_, v) = eval(&env, "theme", json!({})).await;
    assert_eq!(v["value"], "dark");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_specs_errors() {
    let env = start(&format!(
        "{KEYS}\nmax_body = \"1KiB\"\nmax_context_attributes = 5"
    ))
    .await;
    let auth = format!("Bearer {KEY}");
    let path = "/ofrep/v1/evaluate/flags/theme";
    let (s, _, v) = post(&env, path, b"{not json", &[("authorization", &auth)]).await;
    assert_eq!(
        (s, &v["errorCode"], &v["key"]),
        (400, &json!("PARSE_ERROR"), &json!("theme"))
    );
    let (s, _, v) = post(
        &env,
        path,
        br#"{"context": [1, 2]}"#,
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(
        (s, &v["errorCode"]),
        (400, &json!("INVALID_CONTEXT")),
        "{v}"
    );
    let (s, _, v) = post(
        &env,
        path,
        br#"{"context": {"targetingKey": 7}}"#,
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(
        (s, &v["errorCode"]),
        (400, &json!("INVALID_CONTEXT")),
        "{v}"
    );
    let many = json!({"context": {"a": 1, "b": 2, "c": 3, "d": {"e": 1, "f": 2}}}).to_string();
    let (s, _, v) = post(&env, path, many.as_bytes(), &[("authorization", &auth)]).await;
    assert_eq!(
        (s, &v["errorCode"]),
        (400, &json!("INVALID_CONTEXT")),
        "{v}"
    );
    assert!(v["errorDetails"]
        .as_str()
        .unwrap()
        .contains("max_context_attributes"));
    let big = format!("{{\"context\": {{\"pad\": \"{}\"}}}}", "x".repeat(2000));
    let (s, _, v) = post(&env, path, big.as_bytes(), &[("authorization", &auth)]).await;
    assert_eq!(s, 413, "{v}");
    assert!(v["errorDetails"].as_str().unwrap().contains("max_body"));
    // Bulk: the failure has no key.
    let (s, _, v) = post(
        &env,
        "/ofrep/v1/evaluate/flags",
        b"[]",
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(
        (s, &v["errorCode"]),
        (400, &json!("INVALID_CONTEXT")),
        "{v}"
    );
    assert!(v.get("key").is_none());
    // Nothing changed: the flag evaluates as before.
    let (s, v) = eval(&env, "theme", json!({})).await;
    assert_eq!((s, &v["value"]), (200, &json!("light")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_required_and_checked_and_the_rate_is_bounded() {
    let env = start(&format!("{KEYS}\nper_second = 1\nburst = 3")).await;
    let path = "/ofrep/v1/evaluate/flags/theme";
    let body = br#"{"context": {}}"#;
    let (s, h, _) = post(&env, path, body, &[]).await;
    assert_eq!(s, 401);
    assert!(h.contains_key("www-authenticate"));
    let (s, _, _) = post(
        &env,
        path,
        body,
        &[("authorization", "Bearer wrong-key-0123456789")],
    )
    .await;
    assert_eq!(s, 403);
    let (s, _, _) = post(&env, path, body, &[("x-api-key", KEY)]).await;
    assert_eq!(s, 200, "X-API-Key works too");
    // Burst 3: two more, then 429 with Retry-After.
    for _ in 0..2 {
        let (s, _, _) = post(&env, path, body, &[("x-api-key", KEY)]).await;
        assert_eq!(s, 200);
    }
    let (s, h, _) = post(&env, path, body, &[("x-api-key", KEY)]).await;
    assert_eq!(s, 429);
    let after: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&after), "{after}");
    // Unknown paths answer 404 in JSON.
    let (s, _, v) = post(&env, "/ofrep/v2/whatever", body, &[]).await;
    assert_eq!(s, 404, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_file_without_keys_or_with_short_ones_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("keys");
    std::fs::write(&p, "# nothing\n\n").unwrap();
    assert!(ficus_ofrep::load_keys(&p).unwrap_err().contains("no key"));
    std::fs::write(&p, "short\n").unwrap();
    assert!(ficus_ofrep::load_keys(&p)
        .unwrap_err()
        .contains("fewer than 16"));
    std::fs::write(&p, format!("{KEY}\n  {KEY}2  \n")).unwrap();
    assert_eq!(ficus_ofrep::load_keys(&p).unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_ofrep_section_waits_for_a_restart() {
    let env = start(KEYS).await;
    // The node's own file gets a new [ofrep] and is reloaded (SIGHUP): the listener's
    // settings are node-local and bound at start, so they stay until the restart.
    let text = format!(
        "{}\n[ofrep]\nbind = \"127.0.0.1:0\"\n{KEYS}\nburst = 7\n",
        config("")
    );
    std::fs::write(env._dir.path().join("ficus.toml"), text).unwrap();
    env.control.reload_file("test").await.unwrap();
    assert_eq!(
        env.control.snapshot().effective.ofrep.burst,
        ficus_config::defaults::OFREP_BURST
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_says_refetch_within_a_second_of_a_change() {
    let env = start(KEYS).await;
    // The bulk answer points at the stream.
    let auth = format!("Bearer {KEY}");
    let (_, _, v) = post(
        &env,
        "/ofrep/v1/evaluate/flags",
        br#"{"context": {}}"#,
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(
        v["eventStreams"],
        json!([{"type": "sse", "endpoint": {"requestUri": "/ofrep/v1/events"}, "inactivityDelaySec": 120}])
    );
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    // Without a key: refused; with one (header or query): a stream.
    let resp = client
        .request(
            hyper::Request::get(format!("{}/ofrep/v1/events", env.url))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client
        .request(
            hyper::Request::get(format!("{}/ofrep/v1/events?key={KEY}", env.url))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with(": ficus OFREP events"));
    // A change of a flag: the stream says so within a second.
    let text = format!(
        "{}\n[ofrep]\nbind = \"127.0.0.1:0\"\n{KEYS}\n",
        config("").replace("default = \"light\"", "default = \"dark\"")
    );
    let applied = std::time::Instant::now();
    env.control
        .apply_text(&text, "test", "dark by default", None)
        .await
        .unwrap();
    let frame = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        loop {
            let f = body.frame().await.unwrap().unwrap().into_data().unwrap();
            let s = String::from_utf8_lossy(&f).into_owned();
            if s.contains("refetchEvaluation") {
                return s;
            }
        }
    })
    .await
    .expect("a refetchEvaluation event within a second");
    let took = applied.elapsed();
    assert!(
        frame.starts_with("id: 1\nevent: message\ndata: "),
        "{frame}"
    );
    let data: Value = serde_json::from_str(
        frame
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(data["type"], "refetchEvaluation");
    assert!(data["etag"].as_str().unwrap().starts_with('"'));
    assert!(data["lastModified"].as_u64().unwrap() > 1_700_000_000);
    println!("change to event: {took:?}");
    // A change that leaves the flags alone says nothing.
    let same = format!("{text}\n# a comment\n");
    env.control
        .apply_text(
            &same.replace("[access_log]", "[access_log]\n"),
            "test",
            "no flag change",
            None,
        )
        .await
        .ok();
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(400), body.frame()).await;
    assert!(quiet.is_err(), "no event without a flag change");
    // /metrics counts evaluations by flag, variant and reason, and the open stream.
    let text = env.control.gateway().telemetry().prometheus();
    assert!(
        text.contains(
            "ficus_flag_evaluations_total{flag=\"theme\",variant=\"light\",reason=\"STATIC\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("ficus_ofrep_event_streams{} 1"), "{text}");
    assert!(
        text.contains("ficus_ofrep_refused_total{why=\"unauthorized\"} 1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_beyond_max_streams_are_refused_until_one_closes() {
    let env = start(&format!("{KEYS}\nmax_streams = 1")).await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let open = || {
        client.request(
            hyper::Request::get(format!("{}/ofrep/v1/events?key={KEY}", env.url))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
    };
    let first = open().await.unwrap();
    assert_eq!(first.status(), 200);
    let second = open().await.unwrap();
    assert_eq!(second.status(), 503);
    let body = second.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        v["errorDetails"]
            .as_str()
            .unwrap()
            .contains("[ofrep] max_streams"),
        "{v}"
    );
    // Closing the first makes room.
    drop(first);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let again = open().await.unwrap();
        if again.status() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the closed stream was never released"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_override_wins_until_the_file_changes_the_flag_or_a_revert() {
    let env = start(KEYS).await;
    let auth = format!("Bearer {KEY}");
    let pro = json!({"targetingKey": "u1", "plan": "pro"});
    let bulk = |env: &Env| {
        let auth = auth.clone();
        let env_url = env.url.clone();
        async move {
            let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            let resp = client
                .request(
                    hyper::Request::post(format!("{env_url}/ofrep/v1/evaluate/flags"))
                        .header("authorization", auth)
                        .body(Full::new(Bytes::from_static(br#"{"context": {}}"#)))
                        .unwrap(),
                )
                .await
                .unwrap();
            resp.headers()["etag"].to_str().unwrap().to_string()
        }
    };
    let (_, v) = eval(&env, "new-checkout", pro.clone()).await;
    assert_eq!(
        (v["variant"].as_str(), v["reason"].as_str()),
        (Some("on"), Some("TARGETING_MATCH"))
    );
    let etag_before = bulk(&env).await;

    // Refused: an unknown flag, an unknown variant, neither field; nothing recorded.
    let events_before = env
        .control
        .store()
        .events(Default::default())
        .await
        .unwrap()
        .len();
    let e = env
        .control
        .set_flag("nope", Some("on".into()), None, "test", "x")
        .await;
    assert!(
        matches!(e, Err(ficus_control::ControlError::NotFound(_))),
        "{e:?}"
    );
    let e = env
        .control
        .set_flag("new-checkout", Some("maybe".into()), None, "test", "x")
        .await;
    assert!(
        matches!(&e, Err(ficus_control::ControlError::BadRequest(m)) if m.contains("no variant \"maybe\"")),
        "{e:?}"
    );
    let e = env
        .control
        .set_flag("new-checkout", None, None, "test", "x")
        .await;
    assert!(
        matches!(e, Err(ficus_control::ControlError::BadRequest(_))),
        "{e:?}"
    );
    assert_eq!(
        env.control
            .store()
            .events(Default::default())
            .await
            .unwrap()
            .len(),
        events_before
    );

    // The kill switch: everyone gets off, STATIC, marked in the metadata; the ETag moves.
    let applied = env
        .control
        .set_flag(
            "new-checkout",
            Some("off".into()),
            None,
            "test",
            "checkout bug",
        )
        .await
        .unwrap();
    let ev = &applied.events[0];
    assert_eq!(ev.kind, "flag.set");
    assert_eq!(ev.data["flag"], "new-checkout");
    assert_eq!(ev.data["variant"], json!({"from": null, "to": "off"}));
    assert_eq!(ev.data["file"]["rules"], 2);
    let (_, v) = eval(&env, "new-checkout", pro.clone()).await;
    assert_eq!(v["variant"], "off");
    assert_eq!(v["value"], false);
    assert_eq!(v["reason"], "STATIC");
    assert_eq!(
        v["metadata"],
        json!({"owner": "payments", "ficusOverride": true})
    );
    assert_ne!(bulk(&env).await, etag_before);
    // The switch as well: disabled, no value; the variant override stays.
    env.control
        .set_flag("new-checkout", None, Some(false), "test", "off entirely")
        .await
        .unwrap();
    let (_, v) = eval(&env, "new-checkout", pro.clone()).await;
    assert_eq!(v["reason"], "DISABLED");
    assert!(v.get("value").is_none(), "{v}");
    assert_eq!(
        env.control.snapshot().flag_overrides,
        [ficus_config::plan::FlagOverride {
            flag: "new-checkout".into(),
            variant: Some("off".into()),
            enabled: Some(false),
        }]
    );

    // A file change to another flag keeps it...
    let base = format!("{}\n[ofrep]\nbind = \"127.0.0.1:0\"\n{KEYS}\n", config(""));
    let other = base.replace("default = \"light\"", "default = \"dark\"");
    env.control
        .apply_text(&other, "test", "dark", None)
        .await
        .unwrap();
    let (_, v) = eval(&env, "new-checkout", pro.clone()).await;
    assert_eq!(v["reason"], "DISABLED");
    // ...a file change to this flag drops it (the reviewed file wins), and says so.
    let changed = other.replace("owner = \"payments\"", "owner = \"checkout\"");
    let applied = env
        .control
        .apply_text(&changed, "test", "new owner", None)
        .await
        .unwrap();
    assert_eq!(
        applied.events[0].data["flag_overrides_dropped"],
        json!(["new-checkout"])
    );
    let (_, v) = eval(&env, "new-checkout", pro.clone()).await;
    assert_eq!(
        (v["variant"].as_str(), v["reason"].as_str()),
        (Some("on"), Some("TARGETING_MATCH"))
    );
    assert!(env
        .control
        .store()
        .flag_overrides()
        .await
        .unwrap()
        .is_empty());

    // Reset: back to the rules; a second reset records nothing.
    env.control
        .set_flag("theme", Some("light".into()), None, "test", "light again")
        .await
        .unwrap();
    let (_, v) = eval(&env, "theme", json!({})).await;
    assert_eq!(v["variant"], "light");
    let applied = env
        .control
        .reset_flag("theme", "test", "back")
        .await
        .unwrap();
    assert_eq!(applied.events[0].kind, "flag.reset");
    let (_, v) = eval(&env, "theme", json!({})).await;
    assert_eq!(v["variant"], "dark");
    let applied = env
        .control
        .reset_flag("theme", "test", "again")
        .await
        .unwrap();
    assert!(applied.events.is_empty());

    // A revert to an older version drops every override.
    env.control
        .set_flag("theme", Some("light".into()), None, "test", "light")
        .await
        .unwrap();
    env.control
        .revert(1, "test", "back to v1", None)
        .await
        .unwrap();
    assert!(env.control.snapshot().flag_overrides.is_empty());
    assert!(env
        .control
        .store()
        .flag_overrides()
        .await
        .unwrap()
        .is_empty());
    let (_, v) = eval(&env, "theme", json!({})).await;
    assert_eq!(v["variant"], "light");
    assert!(v["metadata"].get("ficusOverride").is_none(), "{v}");
}
