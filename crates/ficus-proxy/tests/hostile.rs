//! Hostile input, over raw sockets, each vector once found to get through: bytes of the
//! HTTP/2 preface that escaped the header timeout, client faults counted as the upstream's,
//! a host routed on and a host forwarded that differed, response splitting by an upstream
//! sending both framing headers, access-log injection through `X-Request-Id`, and an HTTP/2
//! `content-length: 0` with a DATA frame. Upstreams here record the exact bytes they receive,
//! so anything smuggled past the gateway shows.

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `request` on a fresh connection and reads until the gateway closes it (at most 5 s).
async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// An upstream that answers every request `200` with `up:{name}:{path}` as its body.
async fn recorder(name: &'static str) -> Raw {
    raw(script(move |req| {
        let path = req.split(' ').nth(1).unwrap_or("?").to_string();
        let body = format!("up:{name}:{path}");
        (
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
            false,
        )
    }))
    .await
}

fn requests(up: &Raw) -> Vec<String> {
    up.requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .collect()
}

/// Splits what a client received into responses, framed as a client would: `(head, body)`.
fn responses(mut bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
            out.push((String::from_utf8_lossy(bytes).into_owned(), Vec::new()));
            break;
        };
        let head = String::from_utf8_lossy(&bytes[..end]).to_lowercase();
        bytes = &bytes[end + 4..];
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse::<usize>().unwrap());
        let body = if head.contains("transfer-encoding: chunked") {
            let mut body = Vec::new();
            loop {
                let line_end = bytes.windows(2).position(|w| w == b"\r\n").unwrap();
                let size =
                    usize::from_str_radix(std::str::from_utf8(&bytes[..line_end]).unwrap(), 16)
                        .unwrap();
                bytes = &bytes[line_end + 2..];
                if size == 0 {
                    bytes = &bytes[2..];
                    break;
                }
                body.extend_from_slice(&bytes[..size]);
                bytes = &bytes[size + 2..];
            }
            body
        } else if let Some(n) = length {
            let n = n.min(bytes.len());
            let b = bytes[..n].to_vec();
            bytes = &bytes[n..];
            b
        } else {
            let b = bytes.to_vec();
            bytes = &[];
            b
        };
        out.push((head, body));
    }
    out
}

// ---- 1. the HTTP/2 preface and the header timeout ------------------------------------------

#[tokio::test]
async fn bytes_of_the_h2_preface_are_closed_at_the_header_read_timeout() {
    let up = recorder("legacy").await;
    let gw = TestGateway::start(
        "[gateway]\nheader_read_timeout = \"300ms\"\n[[listener]]\nbind = \"127.0.0.1:0\"\n[upstream.legacy]\nurl = \"{legacy}\"\n[default]\nlegacy = \"legacy\"\n",
        &[("legacy", up.url.clone())],
    )
    .await;
    for start in [
        &b"P"[..],
        b"PRI * HTTP/2.0\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n",
    ] {
        let t = Instant::now();
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(start).await.unwrap();
        let mut buf = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut buf)).await;
        assert!(
            r.is_ok(),
            "{:?}: the gateway closed the connection",
            String::from_utf8_lossy(start)
        );
        let waited = t.elapsed();
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(gw.gateway().open_connections(), 0);
    assert!(requests(&up).is_empty());
}

// ---- 2. client faults are not the upstream's -----------------------------------------------

const CANARY: &str = r#"
[gateway]
header_read_timeout = "2s"
[[listener]]
bind = "127.0.0.1:0"
[upstream.legacy]
url = "{legacy}"
[upstream.modern]
url = "{modern}"
request_timeout = "400ms"
[upstream.modern.breaker]
consecutive_failures = 3
open_for = "10s"
[access_log]
format = "text"
path = "{log}"
[[route]]
name = "api"
path_prefix = "/"
legacy = "legacy"
modern = "modern"
stage = "modern"
debug_header = true
[default]
legacy = "legacy"
"#;

struct Canary {
    legacy: Upstream,
    modern: Upstream,
    gw: TestGateway,
    log: std::path::PathBuf,
    events: tokio::sync::mpsc::Receiver<ficus_proxy::events::GatewayEvent>,
}

async fn canary(tag: &str) -> Canary {
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    let log = std::env::temp_dir().join(format!(
        "ficus-hostile-{tag}-{}-{}.log",
        std::process::id(),
        modern.addr.port()
    ));
    let _ = std::fs::remove_file(&log);
    let gw = TestGateway::start(
        CANARY,
        &[
            ("legacy", legacy.url()),
            ("modern", modern.url()),
            ("log", log.display().to_string()),
        ],
    )
    .await;
    let events = gw.gateway().events().take_receiver().unwrap();
    Canary {
        legacy,
        modern,
        gw,
        log,
        events,
    }
}

impl Canary {
    /// Modern still answers, its breaker never opened, and it has no 5xx in its telemetry.
    async fn modern_is_unblamed(&mut self) {
        let (s, h, _) = get(&self.gw.url("/after"), &[]).await;
        assert_eq!(
            (s.as_u16(), header(&h, "x-ficus-upstream")),
            (200, "modern")
        );
        let kinds: Vec<String> = std::iter::from_fn(|| self.events.try_recv().ok())
            .map(|e| e.kind)
            .collect();
        assert!(kinds.is_empty(), "no breaker event: {kinds:?}");
        let metrics = self.gw.gateway().telemetry().prometheus();
        assert!(
            metrics.contains(
                "ficus_requests_total{route=\"api\",side=\"modern\",code_class=\"5xx\"} 0"
            ),
            "{metrics}"
        );
        assert_eq!(self.legacy.hits(), 0, "nothing fell back to legacy");
    }

    /// The access log's lines so far (waits for `n`).
    async fn log_lines(&self, n: usize) -> Vec<String> {
        for _ in 0..100 {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            if lines.len() >= n {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("fewer than {n} access log lines");
    }
}

#[tokio::test]
async fn a_malformed_chunked_body_is_a_400_and_not_modern_s_failure() {
    let mut c = canary("chunk").await;
    for _ in 0..3 {
        let resp = exchange(
            c.gw.addr,
            b"POST /upload HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nmore\r\n",
        )
        .await;
        assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
        assert!(resp.contains("application/problem+json"), "{resp}");
        assert!(
            resp.contains("urn:ficus:problem:client-body-invalid"),
            "{resp}"
        );
        assert!(!resp.contains("check the logs of upstream"), "{resp}");
    }
    c.modern_is_unblamed().await;
}

#[tokio::test]
async fn a_slow_upload_is_a_408_and_not_modern_s_failure() {
    let mut c = canary("slow").await;
    for _ in 0..3 {
        // Larger than the 64 KiB kept for a re-send: streamed to modern as it comes.
        let mut s = TcpStream::connect(c.gw.addr).await.unwrap();
        s.write_all(b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 200000\r\n\r\n")
            .await
            .unwrap();
        s.write_all(&[b'a'; 1000]).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        let resp = String::from_utf8_lossy(&out);
        assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
        assert!(
            resp.contains("urn:ficus:problem:client-body-timeout"),
            "{resp}"
        );
    }
    c.modern_is_unblamed().await;
}

#[tokio::test]
async fn a_client_hanging_up_mid_upload_is_logged_499_and_not_modern_s_failure() {
    let mut c = canary("gone").await;
    for _ in 0..3 {
        let mut s = TcpStream::connect(c.gw.addr).await.unwrap();
        s.write_all(b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 200000\r\n\r\n")
            .await
            .unwrap();
        s.write_all(&[b'a'; 1000]).await.unwrap();
        // Let the body start streaming to modern, then leave.
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(s);
    }
    let lines = c.log_lines(3).await;
    for l in &lines[..3] {
        assert!(l.contains("\"POST /upload\" 499 "), "{l}");
    }
    c.modern_is_unblamed().await;
    assert!(c.modern.hits() >= 1);
}
