//! Recording in the gateway, through real upstreams and real files: every request of a
//! recording route accounted for under concurrent load, redaction failing closed (no
//! configured secret anywhere in the files), bodies cut at the cap, the shadow verdict, and
//! a size cap that drops and counts while every request is still answered.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use ficus_proxy::record::{DropReason, RecordSlot};
use ficus_record::{Exchange, Reader};
use http::Request;
use support::*;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ficus-record-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config(dir: &Path, route_record: &str) -> String {
    config_with(dir, route_record, "")
}

fn config_with(dir: &Path, route_record: &str, record_extra: &str) -> String {
    format!(
        r#"
[[listener]]
bind = "127.0.0.1:0"
[upstream.legacy]
url = "{{legacy}}"
[upstream.modern]
url = "{{modern}}"
[record]
dir = "{}"
key_file = "{}"
{record_extra}

[[route]]
name = "pay"
path_prefix = "/"
legacy = "legacy"
modern = "modern"
stage = "shadow"
sticky = "header:x-user-id"
shadow = {{ sample = 100 }}
[route.record]
{route_record}

[default]
legacy = "legacy"
"#,
        dir.display(),
        dir.join("key").display()
    )
}

/// Every exchange in every recording under `dir`, and the files' raw bytes.
fn read_all(dir: &Path) -> (Vec<Exchange>, Vec<u8>) {
    let mut out = Vec::new();
    let mut raw = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "ficusrec") {
                raw.extend(std::fs::read(&p).unwrap());
                let mut r = Reader::open(&p).unwrap();
                out.extend(r.by_ref());
                assert!(r.torn().is_none(), "{}: {:?}", p.display(), r.torn());
            }
        }
    }
    out.sort_by_key(|e| e.at_ns);
    (out, raw)
}

fn accounted(slot: &RecordSlot) -> (u64, u64) {
    let s = &slot.stats;
    (
        s.requests.load(Ordering::Relaxed),
        s.recorded.load(Ordering::Relaxed)
            + s.sampled_out.load(Ordering::Relaxed)
            + s.dropped_total(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_accounted_for_and_no_secret_is_written() {
    let d = dir("load");
    std::fs::write(d.join("key"), "a-redaction-key-of-32-bytes-0123").unwrap();
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    let text = config(
        &d,
        "sample = 50\nmax_body = \"1KiB\"\nredact = { headers = [\"x-api-key\"], query = [\"card\"], json = [\"card.number\", \"card.cvc\"] }",
    );
    let gw = TestGateway::start(&text, &[("legacy", legacy.url()), ("modern", modern.url())]).await;

    // 8 clients, 50 requests each: GETs with secrets in headers and the query, JSON POSTs
    // with secrets in the body (echoed back by legacy), some bodies over the cap.
    let mut tasks = Vec::new();
    for c in 0..8 {
        let url = gw.url("");
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                let user = format!("user-{c}-{i}");
                let req = if i % 2 == 0 {
                    Request::get(format!("{url}/status/200?card=4111111111111111&n={i}"))
                        .header("x-user-id", &user)
                        .header("authorization", "Bearer s3cr3t-bearer-token")
                        .header("x-api-key", "s3cr3t-api-key")
                        .header("cookie", "session=s3cr3t-session")
                        .body(full(""))
                        .unwrap()
                } else {
                    let pad = if i % 10 == 1 {
                        "x".repeat(3000)
                    } else {
                        String::new()
                    };
                    let body = if pad.is_empty() {
                        format!(
                            r#"{{"card":{{"number":"4111111111111111","cvc":"987"}},"amount":{i}}}"#
                        )
                    } else {
                        // Over the cap, not JSON-parsable when cut: dropped, never written.
                        format!(r#"{{"card":{{"number":"4111111111111111"}},"pad":"{pad}"}}"#)
                    };
                    Request::post(format!("{url}/echo"))
                        .header("x-user-id", &user)
                        .header("content-type", "application/json")
                        .body(full(body))
                        .unwrap()
                };
                let (s, _, _) = send(req).await;
                assert_eq!(s.as_u16(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rec = gw.gateway().recorder().clone();
    let slot = rec.slot("pay");
    // Everything queued is written (shadow verdicts included), then the books balance.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        assert!(tokio::task::spawn_blocking({
            let rec = rec.clone();
            move || rec.flush(Duration::from_secs(15))
        })
        .await
        .unwrap());
        let (requests, sum) = accounted(&slot);
        if requests == sum || std::time::Instant::now() > deadline {
            assert_eq!(requests, 400);
            assert_eq!(sum, 400, "recorded + sampled out + dropped = requests");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = &slot.stats;
    let recorded = s.recorded.load(Ordering::Relaxed);
    let sampled_out = s.sampled_out.load(Ordering::Relaxed);
    let failed = s.dropped(DropReason::RedactionFailed);
    println!("recorded {recorded}, sampled out {sampled_out}, redaction failed {failed}");
    assert!(
        (120..=280).contains(&sampled_out),
        "about half sampled out: {sampled_out}"
    );
    assert!(failed >= 1, "cut JSON bodies are dropped");
    assert_eq!(s.dropped_total(), failed, "nothing else dropped");

    let (all, raw) = read_all(&d);
    assert_eq!(all.len() as u64, recorded);
    let text = serde_json::to_string(&all).unwrap();
    for secret in ["s3cr3t", "4111111111111111", "\"987\""] {
        assert!(!text.contains(secret), "{secret} in the recordings");
        assert!(
            !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} in the raw files"
        );
    }
    let get = all.iter().find(|e| e.method == "GET").unwrap();
    assert!(get
        .request
        .header("authorization")
        .unwrap()
        .starts_with("Bearer hmac:"));
    assert!(
        get.target.contains("card=hmac:") && get.target.contains("&n="),
        "{}",
        get.target
    );
    assert!(get.key.as_deref().unwrap().starts_with("hmac:"));
    assert_eq!(
        (get.route.as_str(), get.stage.as_str(), get.side.as_str()),
        ("pay", "shadow", "legacy")
    );
    let post = all.iter().find(|e| e.method == "POST").unwrap();
    let body: serde_json::Value = serde_json::from_slice(&post.request.body.0).unwrap();
    assert!(body["card"]["number"]
        .as_str()
        .unwrap()
        .starts_with("hmac:"));
    assert!(body["amount"].is_number());
    // The echoed response is redacted the same way: the same token.
    let echoed: serde_json::Value = serde_json::from_slice(&post.response.body.0).unwrap();
    assert_eq!(echoed["card"]["number"], body["card"]["number"]);
    // Shadow route: each recorded GET (mirrored; POSTs are not, without shadow_writes)
    // carries modern's answer and the verdict.
    for e in &all {
        match e.method.as_str() {
            "GET" => {
                let sh = e.shadow.as_ref().unwrap_or_else(|| panic!("{e:?}"));
                assert_eq!(sh.status, 200);
                assert!(
                    ["equal", "different"].contains(&sh.verdict.as_str()),
                    "{sh:?}"
                );
            }
            _ => assert!(e.shadow.is_none()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_cap_are_cut_and_a_size_cap_drops_and_counts() {
    let d = dir("cap");
    std::fs::write(d.join("key"), "a-redaction-key-of-32-bytes-0123").unwrap();
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    let text = config(&d, "max_body = \"64KiB\"\nmax_size = \"1MiB\"");
    let gw = TestGateway::start(&text, &[("legacy", legacy.url()), ("modern", modern.url())]).await;
    // 60 posts of 100 KiB of incompressible-ish text, echoed: ~128 KiB kept per exchange
    // before compression, far more than 1 MiB in all.
    for i in 0..60u64 {
        // Random letters: zstd cannot shrink them much.
        let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ i;
        let body: String = (0..100 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect();
        let (s, _, echoed) = send(
            Request::post(gw.url("/echo"))
                .header("x-user-id", format!("u{i}"))
                .body(full(body.clone()))
                .unwrap(),
        )
        .await;
        assert_eq!(
            s.as_u16(),
            200,
            "the proxy never fails a request because of recording"
        );
        assert_eq!(echoed.len(), body.len());
    }
    let rec = gw.gateway().recorder().clone();
    assert!(tokio::task::spawn_blocking({
        let rec = rec.clone();
        move || rec.flush(Duration::from_secs(15))
    })
    .await
    .unwrap());
    let slot = rec.slot("pay");
    let (requests, sum) = accounted(&slot);
    assert_eq!((requests, sum), (60, 60));
    let s = &slot.stats;
    assert!(
        s.dropped(DropReason::MaxSize) > 0,
        "the size cap was reached"
    );
    assert!(s.bytes.load(Ordering::Relaxed) <= 1024 * 1024);
    let (all, _) = read_all(&d);
    assert_eq!(all.len() as u64, s.recorded.load(Ordering::Relaxed));
    let first = &all[0];
    assert_eq!(first.request.body.0.len(), 64 * 1024);
    assert_eq!(first.request.truncated_from, Some(100 * 1024));
    assert_eq!(first.response.truncated_from, Some(100 * 1024));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_rotate_at_their_size_and_every_record_stays_readable() {
    let d = dir("rotate");
    std::fs::write(d.join("key"), "a-redaction-key-of-32-bytes-0123").unwrap();
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    let text = config_with(
        &d,
        "max_body = \"128KiB\"\nmax_size = \"64MiB\"",
        "rotate_bytes = \"1MiB\"",
    );
    let gw = TestGateway::start(&text, &[("legacy", legacy.url()), ("modern", modern.url())]).await;
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in 0..40u64 {
        let body: String = (0..100 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect();
        let (s, _, _) = send(
            Request::post(gw.url("/echo"))
                .header("x-user-id", format!("u{i}"))
                .body(full(body))
                .unwrap(),
        )
        .await;
        assert_eq!(s.as_u16(), 200);
    }
    let rec = gw.gateway().recorder().clone();
    assert!(tokio::task::spawn_blocking({
        let rec = rec.clone();
        move || rec.flush(Duration::from_secs(15))
    })
    .await
    .unwrap());
    let slot = rec.slot("pay");
    assert_eq!(accounted(&slot), (40, 40));
    let files: Vec<_> = std::fs::read_dir(d.join("pay"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(files.len() >= 2, "rotated: {files:?}");
    assert_eq!(slot.stats.files.load(Ordering::Relaxed), files.len() as u64);
    for f in &files {
        // A file closes once it reaches 1 MiB: at most one block (256 KiB of records,
        // compressed) beyond.
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len < 1024 * 1024 + 300 * 1024, "{}: {len}", f.display());
    }
    let (all, _) = read_all(&d);
    assert_eq!(all.len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_exchanges_are_recorded_with_their_bodies() {
    let d = dir("h2");
    std::fs::write(d.join("key"), "a-redaction-key-of-32-bytes-0123").unwrap();
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    let gw = TestGateway::start(
        &config(&d, "sample = 100"),
        &[("legacy", legacy.url()), ("modern", modern.url())],
    )
    .await;
    let c = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<BoxBody>();
    for i in 0..10 {
        let resp = c
            .request(
                Request::post(gw.url("/echo"))
                    .header("x-user-id", format!("h2-{i}"))
                    .body(full(format!("hello over h2 #{i}")))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.version(), http::Version::HTTP_2);
        let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
    }
    let rec = gw.gateway().recorder().clone();
    assert!(tokio::task::spawn_blocking({
        let rec = rec.clone();
        move || rec.flush(Duration::from_secs(15))
    })
    .await
    .unwrap());
    assert_eq!(accounted(&rec.slot("pay")), (10, 10));
    let (all, _) = read_all(&d);
    assert_eq!(all.len(), 10);
    for e in &all {
        assert_eq!(e.version, "HTTP/2");
        let sent = String::from_utf8(e.request.body.0.clone()).unwrap();
        assert!(sent.starts_with("hello over h2 #"), "{sent}");
        assert_eq!(e.response.body.0, e.request.body.0, "legacy echoed it");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_rotate_at_their_age() {
    let d = dir("age");
    std::fs::write(d.join("key"), "a-redaction-key-of-32-bytes-0123").unwrap();
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    let text = config_with(&d, "sample = 100", "rotate_every = \"1s\"");
    let gw = TestGateway::start(&text, &[("legacy", legacy.url()), ("modern", modern.url())]).await;
    for round in 0..2 {
        for i in 0..5 {
            let (s, _, _) = get(&gw.url(&format!("/r{round}/{i}")), &[("x-user-id", "u")]).await;
            assert_eq!(s.as_u16(), 200);
        }
        if round == 0 {
            tokio::time::sleep(Duration::from_millis(1300)).await;
        }
    }
    let rec = gw.gateway().recorder().clone();
    assert!(tokio::task::spawn_blocking({
        let rec = rec.clone();
        move || rec.flush(Duration::from_secs(15))
    })
    .await
    .unwrap());
    let files = std::fs::read_dir(d.join("pay")).unwrap().count();
    assert_eq!(files, 2, "one file per second of age");
    let (all, _) = read_all(&d);
    assert_eq!(all.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_is_a_tunnel_counted_as_incomplete_never_recorded() {
    let d = dir("upgrade");
    std::fs::write(d.join("key"), "a-redaction-key-of-32-bytes-0123").unwrap();
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    let gw = TestGateway::start(
        &config(&d, "sample = 100"),
        &[("legacy", legacy.url()), ("modern", modern.url())],
    )
    .await;
    let (s, _, _) = send(
        Request::get(gw.url("/ws"))
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("x-user-id", "u1")
            .body(full(""))
            .unwrap(),
    )
    .await;
    assert_eq!(s.as_u16(), 101);
    let rec = gw.gateway().recorder().clone();
    assert!(tokio::task::spawn_blocking({
        let rec = rec.clone();
        move || rec.flush(Duration::from_secs(15))
    })
    .await
    .unwrap());
    let slot = rec.slot("pay");
    assert_eq!(accounted(&slot), (1, 1));
    assert_eq!(slot.stats.dropped(DropReason::Incomplete), 1);
    assert_eq!(read_all(&d).0.len(), 0);
}

/// A plain HTTP/1.1 GET on a route without a mirror goes out with the upstream's header
/// lines as they came (no header map): the recording copies those lines, names lower-cased,
/// and the body the client got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_passed_on_as_raw_header_lines_are_recorded_with_them() {
    let d = dir("raw");
    std::fs::write(d.join("key"), "a-redaction-key-of-32-bytes-0123").unwrap();
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    let text = config(&d, "sample = 100").replace("stage = \"shadow\"", "stage = \"legacy\"");
    let gw = TestGateway::start(&text, &[("legacy", legacy.url()), ("modern", modern.url())]).await;
    let mut bodies = Vec::new();
    for i in 0..5 {
        let (s, h, body) = send(
            Request::get(gw.url(&format!("/status/200?n={i}")))
                .header("x-user-id", "u1")
                .body(full(""))
                .unwrap(),
        )
        .await;
        assert_eq!(s.as_u16(), 200);
        assert_eq!(header(&h, "x-served-by"), "legacy");
        bodies.push(body);
    }
    let rec = gw.gateway().recorder().clone();
    assert!(
        tokio::task::spawn_blocking(move || rec.flush(Duration::from_secs(15)))
            .await
            .unwrap()
    );
    let (all, _) = read_all(&d);
    assert_eq!(all.len(), 5);
    for e in &all {
        assert_eq!(e.status, 200);
        assert_eq!(e.response.header("x-served-by"), Some("legacy"), "{e:?}");
        assert!(e.response.header("content-length").is_some(), "{e:?}");
        assert!(e.response.header("date").is_some(), "{e:?}");
        assert!(
            e.response
                .headers
                .iter()
                .all(|(n, _)| *n == n.to_ascii_lowercase()),
            "{e:?}"
        );
        assert!(
            bodies.iter().any(|b| b[..] == e.response.body.0[..]),
            "{e:?}"
        );
    }
}
