//! `ficus replay` against a real HTTP server on 127.0.0.1: recordings written with the
//! recording format's own writer, replayed by the binary. Timing as recorded and scaled,
//! per-key order, unsafe methods, filters, status mismatches and a torn file.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ficus_record::{Body, Exchange, FileHeader, Message, Writer, WriterOptions};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// What the target saw: (arrival, method, path, key header, seq header).
type Seen = Arc<Mutex<Vec<(Instant, String, String, String, u64)>>>;

/// A target: `/slow/{ms}` waits, `/missing` is 404, anything else 200.
async fn target() -> (String, Seen) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let seen = s2.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let h = |n: &str| {
                            req.headers()
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_string()
                        };
                        seen.lock().unwrap().push((
                            Instant::now(),
                            req.method().to_string(),
                            req.uri().path().to_string(),
                            h("x-key"),
                            h("x-seq").parse().unwrap_or(0),
                        ));
                        let path = req.uri().path().to_string();
                        if let Some(ms) = path.strip_prefix("/slow/") {
                            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0)))
                                .await;
                        }
                        let status = if path == "/missing" { 404 } else { 200 };
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::from_static(b"ok")))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

fn exchange(at_ns: u64, method: &str, path: &str, key: Option<&str>, seq: u64) -> Exchange {
    let mut headers = vec![("x-seq".to_string(), Body::text(&seq.to_string()))];
    if let Some(k) = key {
        headers.push(("x-key".to_string(), Body::text(k)));
    }
    Exchange {
        at_ns,
        duration_ns: 1_000_000,
        route: if path.starts_with("/admin") {
            "admin"
        } else {
            "orders"
        }
        .into(),
        stage: "legacy".into(),
        side: "legacy".into(),
        fallback: false,
        key: key.map(str::to_string),
        version: "HTTP/1.1".into(),
        method: method.into(),
        target: path.into(),
        request: Message {
            headers,
            body: Body::default(),
            truncated_from: None,
        },
        status: 200,
        response: Message::default(),
        shadow: None,
    }
}

fn write(path: &Path, exchanges: &[Exchange]) {
    let header = FileHeader {
        format: ficus_record::FORMAT_VERSION,
        ficus: "test".into(),
        policy: "none".into(),
        route: None,
        node: None,
        created_ns: 0,
        source: "ficus".into(),
    };
    let mut w = Writer::create(
        path,
        &header,
        WriterOptions {
            block_bytes: 4096,
            level: 1,
        },
    )
    .unwrap();
    for e in exchanges {
        w.append(e).unwrap();
    }
    w.finish().unwrap();
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ficus-replay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `ficus replay` with `args`; its JSON report.
fn replay(file: &Path, target: &str, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ficus"))
        .arg("replay")
        .arg(file)
        .args(["--target", target, "--json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

const S: u64 = 1_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_replays_as_recorded_and_twice_as_fast() {
    let d = dir("timing");
    // 10 s of traffic: 201 requests at uneven gaps (bursts and pauses).
    let mut at = 0u64;
    let mut exchanges = Vec::new();
    for i in 0..=200u64 {
        exchanges.push(exchange(
            1_700_000_000 * S + at,
            "GET",
            "/orders/1",
            None,
            i,
        ));
        at += if i % 20 < 15 { 20_000_000 } else { 140_000_000 };
    }
    let recorded = exchanges.last().unwrap().at_ns - exchanges[0].at_ns;
    assert!((9 * S..=11 * S).contains(&recorded), "{recorded}");
    let file = d.join("ten-seconds.ficusrec");
    write(&file, &exchanges);
    for (args, factor) in [(&["--as-recorded"][..], 1.0), (&["--speed", "2x"][..], 2.0)] {
        let (url, seen) = target().await;
        let r = replay(&file, &url, args);
        assert_eq!(
            (r["sent"].as_u64(), r["answered"].as_u64()),
            (Some(201), Some(201)),
            "{r}"
        );
        let seen = seen.lock().unwrap();
        let span = seen.last().unwrap().0 - seen[0].0;
        let want = recorded as f64 / 1e9 / factor;
        let err = (span.as_secs_f64() - want).abs() / want;
        println!(
            "{args:?}: first to last arrival {span:?}, recorded {want:.3} s, off by {:.2} %",
            err * 100.0
        );
        assert!(err < 0.02, "{args:?}: {span:?} vs {want} s");
        // Each request arrived near its own due time too, not only the last.
        let late = r["lateness"]["p99_us"].as_u64().unwrap();
        assert!(late < 20_000, "send lateness p99 {late} us");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_order_unsafe_methods_filters_mismatches_and_a_torn_file() {
    let d = dir("order");
    let mut exchanges = Vec::new();
    // 5 keys, 8 requests each, interleaved; every other one of a key is slow, so a later
    // request of the key would overtake it if order were not kept.
    for i in 0..40u64 {
        let key = format!("k{}", i % 5);
        let path = if (i / 5) % 2 == 0 {
            "/slow/60"
        } else {
            "/fast"
        };
        exchanges.push(exchange(S + i * 1_000_000, "GET", path, Some(&key), i));
    }
    exchanges.push(exchange(S + 41_000_000, "POST", "/orders", None, 41));
    exchanges.push(exchange(S + 42_000_000, "GET", "/missing", None, 42));
    exchanges.push(exchange(S + 43_000_000, "DELETE", "/admin/x", None, 43));
    let file = d.join("order.ficusrec");
    write(&file, &exchanges);

    let (url, seen) = target().await;
    let r = replay(&file, &url, &["--rate", "2000/s"]);
    assert_eq!(r["sent"], 41, "{r}");
    assert_eq!(r["skipped"]["unsafe"], 2, "{r}");
    assert_eq!(r["status_mismatches"], 1, "{r}");
    assert_eq!(
        r["mismatches"][0],
        serde_json::json!({"recorded": 200, "replayed": 404, "count": 1})
    );
    {
        let seen = seen.lock().unwrap();
        for k in 0..5 {
            let key = format!("k{k}");
            let seqs: Vec<u64> = seen.iter().filter(|s| s.3 == key).map(|s| s.4).collect();
            assert_eq!(seqs.len(), 8, "{key}");
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{key}: {seqs:?}");
        }
        // Different keys ran in parallel: the 40 keyed requests, 20 of them 60 ms slow, took
        // far less than 20 x 60 ms.
        let keyed: Vec<Instant> = seen
            .iter()
            .filter(|s| !s.3.is_empty())
            .map(|s| s.0)
            .collect();
        let span = *keyed.iter().max().unwrap() - *keyed.iter().min().unwrap();
        assert!(span < Duration::from_millis(700), "{span:?}");
    }

    // --unsafe allow sends them; a filter selects.
    let (url, seen) = target().await;
    let r = replay(
        &file,
        &url,
        &[
            "--rate",
            "2000/s",
            "--unsafe",
            "allow",
            "--filter",
            "method=POST",
        ],
    );
    assert_eq!(r["sent"], 1, "{r}");
    assert_eq!(seen.lock().unwrap()[0].1, "POST");
    let (url, _) = target().await;
    let r = replay(
        &file,
        &url,
        &["--rate", "2000/s", "--unsafe", "allow", "--route", "admin"],
    );
    assert_eq!(r["sent"], 1, "{r}");

    // A torn file replays up to the tear and says so.
    let bytes = std::fs::read(&file).unwrap();
    let torn = d.join("torn.ficusrec");
    std::fs::write(&torn, &bytes[..bytes.len() - 7]).unwrap();
    let (url, _) = target().await;
    let r = replay(&torn, &url, &["--rate", "2000/s"]);
    assert!(r["torn"]["offset"].as_u64().is_some(), "{r}");
    assert!(r["sent"].as_u64().unwrap() < 41, "{r}");

    // Bad arguments: a clear error, nothing sent.
    let out = Command::new(env!("CARGO_BIN_EXE_ficus"))
        .args(["replay"])
        .arg(&file)
        .args(["--target", "ftp://x", "--speed", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2x"), "{err}");
}

/// A GoReplay capture as its file output writes it (meta line `TYPE ID TIMESTAMP_NS
/// LATENCY_NS`, the raw message, a separator line), imported, replayed, exported to HAR and
/// imported back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goreplay_capture_imports_replays_and_round_trips_through_har() {
    let d = dir("gor");
    let mut gor = Vec::new();
    for i in 0..20u64 {
        let id = format!("{i:024x}");
        let at = 1_700_000_000_000_000_000 + i * 10_000_000;
        gor.extend_from_slice(
            format!(
                "1 {id} {at} 0\nGET /orders/{i} HTTP/1.1\r\nHost: legacy\r\nX-Seq: {i}\r\n\r\n\n🐵🙈🙉\n"
            )
            .as_bytes(),
        );
        let status = if i == 7 { "404 Not Found" } else { "200 OK" };
        gor.extend_from_slice(
            format!(
                "2 {id} {} 1000000\nHTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok\n🐵🙈🙉\n",
                at + 1_000_000
            )
            .as_bytes(),
        );
    }
    std::fs::write(d.join("capture.gor"), &gor).unwrap();
    let ficus = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_ficus"))
            .args(args)
            .current_dir(&d)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = ficus(&[
        "record",
        "import",
        "capture.gor",
        "-o",
        "capture.ficusrec",
        "--route",
        "orders",
    ]);
    assert!(
        out.contains("20 exchanges") && out.contains("20 requests, 20 original responses"),
        "{out}"
    );
    let (url, seen) = target().await;
    let r = replay(&d.join("capture.ficusrec"), &url, &["--speed", "10x"]);
    assert_eq!(r["sent"], 20, "{r}");
    // The recorded 404 (/orders/7) is answered 200 now.
    assert_eq!(r["status_mismatches"], 1, "{r}");
    // Without sticky keys the requests run in parallel: all arrive, in any order.
    let mut seqs: Vec<u64> = seen.lock().unwrap().iter().map(|s| s.4).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..20).collect::<Vec<_>>());

    ficus(&[
        "record",
        "export",
        "capture.ficusrec",
        "--har",
        "-o",
        "capture.har",
    ]);
    let har: Value =
        serde_json::from_slice(&std::fs::read(d.join("capture.har")).unwrap()).unwrap();
    assert_eq!(har["log"]["version"], "1.2");
    assert_eq!(har["log"]["entries"].as_array().unwrap().len(), 20);
    ficus(&["record", "import", "capture.har", "-o", "again.ficusrec"]);
    let a: Vec<Exchange> = ficus_record::Reader::open(&d.join("capture.ficusrec"))
        .unwrap()
        .collect();
    let b: Vec<Exchange> = ficus_record::Reader::open(&d.join("again.ficusrec"))
        .unwrap()
        .collect();
    assert_eq!(a, b);
}

/// A JSON service: `/item/N` is `{"id": N, "price": P, "ts": <now>}`; `planted` makes the
/// price of every fifth item 11 instead of 10 (the difference a replay must find), while
/// `ts` differs on every call (the noise it must filter).
async fn json_target(planted: bool) -> String {
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
                        let n: u64 = req
                            .uri()
                            .path()
                            .rsplit('/')
                            .next()
                            .and_then(|x| x.parse().ok())
                            .unwrap_or(0);
                        let price = if planted && n.is_multiple_of(5) {
                            11
                        } else {
                            10
                        };
                        let ts = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_nanos();
                        let body = format!(r#"{{"id":{n},"price":{price},"ts":{ts}}}"#);
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(body)))
                                .unwrap(),
                        )
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

fn field<'a>(r: &'a Value, path: &str) -> &'a Value {
    r["comparison"]["routes"][0]["endpoints"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("no field {path}: {r}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_difference_is_found_on_replay_and_noise_is_filtered() {
    let d = dir("compare");
    // The recording: 100 GETs of /item/N as legacy answered them (price 10, old ts).
    let exchanges: Vec<Exchange> = (0..100u64)
        .map(|i| {
            let mut e = exchange(S + i * 1_000_000, "GET", &format!("/item/{i}"), None, i);
            e.response = Message {
                headers: vec![("content-type".into(), Body::text("application/json"))],
                body: Body(format!(r#"{{"id":{i},"price":10,"ts":{}}}"#, 1000 + i).into_bytes()),
                truncated_from: None,
            };
            e
        })
        .collect();
    let file = d.join("items.ficusrec");
    write(&file, &exchanges);

    // Against the recording: a target with the planted price.
    let modern = json_target(true).await;
    let r = replay(
        &file,
        &modern,
        &["--rate", "2000/s", "--compare", "--noise-sample", "100"],
    );
    assert_eq!(r["comparison"]["compared"], 100, "{r}");
    let price = field(&r, "$.price");
    assert_eq!(price["verdict"], "real", "{price}");
    assert_eq!(price["differing"], 20, "{price}");
    let ts = field(&r, "$.ts");
    assert_eq!(ts["verdict"], "noise", "{ts}");
    // Ranked: the real difference first.
    let first = &r["comparison"]["routes"][0]["endpoints"][0]["fields"][0];
    assert_eq!(first["path"], "$.price", "{r}");

    // Two targets against each other: the same verdicts.
    let legacy = json_target(false).await;
    let r = replay(
        &file,
        &modern,
        &[
            "--rate",
            "2000/s",
            "--compare-with",
            &legacy,
            "--noise-sample",
            "100",
        ],
    );
    assert_eq!(r["comparison"]["against"], "compare-with", "{r}");
    assert_eq!(field(&r, "$.price")["verdict"], "real");
    assert_eq!(field(&r, "$.price")["differing"], 20);
    assert_eq!(field(&r, "$.ts")["verdict"], "noise");
    // Without the plant, nothing real.
    let r = replay(
        &file,
        &legacy,
        &[
            "--rate",
            "2000/s",
            "--compare-with",
            &legacy,
            "--noise-sample",
            "100",
        ],
    );
    let fields = r["comparison"]["routes"][0]["endpoints"][0]["fields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(fields.iter().all(|f| f["verdict"] != "real"), "{r}");
}

/// What a raw target saw: connections accepted, the most open at once, requests.
#[derive(Default)]
struct Raw {
    accepted: std::sync::atomic::AtomicUsize,
    open: std::sync::atomic::AtomicUsize,
    max_open: std::sync::atomic::AtomicUsize,
    requests: std::sync::atomic::AtomicUsize,
}

/// The body every raw target's response carries (the recording expects it).
const RAW_BODY: &str = r#"{"id":7,"items":[1,2,3],"name":"chunks"}"#;

/// A target written on TCP directly, to answer in each framing HTTP/1.1 allows:
/// `/chunked` (chunks with an extension, and a trailer), `/close` (no length: the body ends
/// when the connection does), `/http10` (an HTTP/1.0 answer, then close), `/continue` (an
/// interim 100 first), `/nocontent` (204), `/sneaky` (a length, then the connection closed
/// without saying so), `/slow/{ms}` (waits); anything else a plain `Content-Length` answer.
async fn raw_target() -> (String, Arc<Raw>) {
    use std::sync::atomic::Ordering::SeqCst;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let raw = Arc::new(Raw::default());
    let r2 = raw.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            let raw = r2.clone();
            raw.accepted.fetch_add(1, SeqCst);
            let now = raw.open.fetch_add(1, SeqCst) + 1;
            raw.max_open.fetch_max(now, SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                'conn: loop {
                    let end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => break 'conn,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    buf.drain(..end);
                    raw.requests.fetch_add(1, SeqCst);
                    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                    let b = RAW_BODY;
                    let (out, close) = match path.as_str() {
                        "/chunked" => (
                            format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\n{}\r\n{:x}\r\n{}\r\n0\r\nx-trailer: t\r\n\r\n",
                                &b[..5],
                                b.len() - 5,
                                &b[5..]
                            ),
                            false,
                        ),
                        "/close" => (
                            format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{b}"),
                            true,
                        ),
                        "/http10" => (
                            format!("HTTP/1.0 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}", b.len()),
                            true,
                        ),
                        "/continue" => (
                            format!("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}", b.len()),
                            false,
                        ),
                        "/nocontent" => ("HTTP/1.1 204 No Content\r\n\r\n".to_string(), false),
                        "/sneaky" => (
                            format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}", b.len()),
                            true,
                        ),
                        p => {
                            if let Some(ms) = p.strip_prefix("/slow/") {
                                tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
                            }
                            (
                                format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}", b.len()),
                                false,
                            )
                        }
                    };
                    // Written in two pieces, so a head or body split across reads is read whole.
                    let (one, two) = out.as_bytes().split_at(out.len() / 2);
                    if s.write_all(one).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    if s.write_all(two).await.is_err() || close {
                        break;
                    }
                }
                raw.open.fetch_sub(1, SeqCst);
            });
        }
    });
    (format!("http://{addr}"), raw)
}

fn raw_exchange(i: u64, path: &str) -> Exchange {
    let mut e = exchange(S + i * 1_000_000, "GET", path, None, i);
    let nocontent = path == "/nocontent";
    e.status = if nocontent { 204 } else { 200 };
    e.response = Message {
        headers: vec![("content-type".into(), Body::text("application/json"))],
        body: if nocontent {
            Body::default()
        } else {
            Body::text(RAW_BODY)
        },
        truncated_from: None,
    };
    if nocontent {
        e.response.headers.clear();
    }
    e
}

/// Every framing HTTP/1.1 allows reads back the body byte for byte (the comparison against
/// the recording finds nothing), connections are reused where the answer allows and closed
/// where it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_in_every_framing_are_read_whole() {
    let d = dir("framing");
    let paths = [
        "/chunked",
        "/close",
        "/http10",
        "/continue",
        "/nocontent",
        "/sneaky",
        "/plain",
    ];
    let exchanges: Vec<Exchange> = (0..70u64)
        .map(|i| raw_exchange(i, paths[i as usize % paths.len()]))
        .collect();
    let file = d.join("framing.ficusrec");
    write(&file, &exchanges);
    let (url, raw) = raw_target().await;
    let r = replay(
        &file,
        &url,
        &["--rate", "200/s", "--compare", "--noise-sample", "0"],
    );
    assert_eq!(
        (r["sent"].as_u64(), r["answered"].as_u64()),
        (Some(70), Some(70)),
        "{r}"
    );
    assert_eq!(r["errors"], serde_json::json!([]), "{r}");
    assert_eq!(r["status_mismatches"], 0, "{r}");
    assert_eq!(r["comparison"]["compared"], 70, "{r}");
    let differing: u64 = r["comparison"]["routes"][0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["differing"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(differing, 0, "{r}");
    // 30 answers end their connection (close, http10, sneaky: 10 each); the other 40 share
    // connections, so far fewer than 70 were opened, and at least the 30 plus one.
    let accepted = raw.accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!((31..=45).contains(&accepted), "{accepted} connections: {r}");
    assert_eq!(
        r["connections"]["opened"].as_u64(),
        Some(accepted as u64),
        "{r}"
    );
}

/// `--max-in-flight N` bounds the connections: with a slow target the target never sees more
/// than N at once, every request is still sent (waiting for a connection, which its lateness
/// shows), and `--timeout` cuts a request that takes too long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_in_flight_bounds_connections_and_queues_the_rest() {
    let d = dir("bound");
    let slow: Vec<Exchange> = (0..40u64).map(|i| raw_exchange(i, "/slow/100")).collect();
    let file = d.join("slow.ficusrec");
    write(&file, &slow);
    let (url, raw) = raw_target().await;
    let r = replay(&file, &url, &["--rate", "1000/s", "--max-in-flight", "4"]);
    assert_eq!(
        (r["sent"].as_u64(), r["answered"].as_u64()),
        (Some(40), Some(40)),
        "{r}"
    );
    let max_open = raw.max_open.load(std::sync::atomic::Ordering::SeqCst);
    let accepted = raw.accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        max_open <= 4 && accepted <= 4,
        "{max_open} open at once, {accepted} in all"
    );
    assert_eq!(r["dropped_in_flight"], 0, "{r}");
    assert!(r["connections"]["waited"].as_u64().unwrap() >= 5, "{r}");
    // 10 rounds of 100 ms on 4 connections: the last requests left about 900 ms late.
    let late = r["lateness"]["max_us"].as_u64().unwrap();
    assert!(
        (700_000..2_000_000).contains(&late),
        "lateness max {late} us: {r}"
    );

    // Everything due at once, 2,000 requests on 8 connections: all answered.
    let many: Vec<Exchange> = (0..2000u64).map(|i| raw_exchange(i, "/plain")).collect();
    let file = d.join("many.ficusrec");
    write(&file, &many);
    let (url, raw) = raw_target().await;
    let r = replay(
        &file,
        &url,
        &["--rate", "10000000/s", "--max-in-flight", "8"],
    );
    assert_eq!(
        (r["sent"].as_u64(), r["answered"].as_u64()),
        (Some(2000), Some(2000)),
        "{r}"
    );
    assert!(
        raw.accepted.load(std::sync::atomic::Ordering::SeqCst) <= 8,
        "{r}"
    );

    // A request slower than --timeout is counted as a timeout.
    let one = [raw_exchange(0, "/slow/2000"), raw_exchange(1, "/plain")];
    let file = d.join("timeout.ficusrec");
    write(&file, &one);
    let (url, _) = raw_target().await;
    let r = replay(&file, &url, &["--rate", "100/s", "--timeout", "200ms"]);
    assert_eq!(r["answered"], 1, "{r}");
    assert_eq!(
        r["errors"],
        serde_json::json!([{"kind": "timeout", "count": 1}]),
        "{r}"
    );
    // Nothing listening: connect errors.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let r = replay(&file, &dead, &["--rate", "100/s"]);
    assert_eq!(
        r["errors"],
        serde_json::json!([{"kind": "connect", "count": 2}]),
        "{r}"
    );
}
