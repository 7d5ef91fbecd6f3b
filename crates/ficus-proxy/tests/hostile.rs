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

// ---- 3. one authority for routing and forwarding -------------------------------------------

const HOSTS: &str = r#"
[[listener]]
bind = "127.0.0.1:0"
[upstream.admin]
url = "{admin}"
[upstream.public]
url = "{public}"
[[route]]
name = "admin"
host = "admin.example"
path_prefix = "/"
legacy = "admin"
[[route]]
name = "public"
host = "public.example"
path_prefix = "/"
legacy = "public"
[default]
legacy = "public"
"#;

async fn hosts() -> (Raw, Raw, TestGateway) {
    let admin = recorder("admin").await;
    let public = recorder("public").await;
    let gw = TestGateway::start(
        HOSTS,
        &[("admin", admin.url.clone()), ("public", public.url.clone())],
    )
    .await;
    (admin, public, gw)
}

fn host_lines(req: &str) -> Vec<String> {
    req.lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("host:"))
        .map(|l| l[5..].trim().to_string())
        .collect()
}

#[tokio::test]
async fn an_absolute_form_target_decides_the_host_for_routing_and_forwarding() {
    let (admin, public, gw) = hosts().await;
    let resp = exchange(
        gw.addr,
        b"GET http://public.example/x HTTP/1.1\r\nHost: admin.example\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.ends_with("up:public:/x"), "{resp}");
    let got = requests(&public);
    assert_eq!(host_lines(&got[0]), ["public.example"], "{got:?}");
    assert!(requests(&admin).is_empty());

    let resp = exchange(
        gw.addr,
        b"GET http://admin.example/y HTTP/1.1\r\nHost: public.example\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.ends_with("up:admin:/y"), "{resp}");
    let got = requests(&admin);
    assert_eq!(host_lines(&got[0]), ["admin.example"], "{got:?}");
}

#[tokio::test]
async fn two_hosts_or_none_on_http_1_1_are_400_and_go_nowhere() {
    let (admin, public, gw) = hosts().await;
    for bad in [
        &b"GET /x HTTP/1.1\r\nHost: public.example\r\nHost: admin.example\r\nconnection: close\r\n\r\n"[..],
        b"GET /x HTTP/1.1\r\nHost: admin.example\r\nhost: admin.example\r\nconnection: close\r\n\r\n",
        b"GET /x HTTP/1.1\r\nconnection: close\r\n\r\n",
        b"POST /x HTTP/1.1\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n0\r\n\r\n",
        b"GET http://admin.example/x HTTP/1.1\r\nconnection: close\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: bad host\r\nconnection: close\r\n\r\n",
    ] {
        let resp = exchange(gw.addr, bad).await;
        assert!(
            resp.starts_with("HTTP/1.1 400"),
            "{}\n=> {resp}",
            String::from_utf8_lossy(bad)
        );
        assert!(resp.contains("application/problem+json"), "{resp}");
    }
    assert!(requests(&admin).is_empty(), "{:?}", requests(&admin));
    assert!(requests(&public).is_empty(), "{:?}", requests(&public));
    // HTTP/1.0 needs no Host.
    let resp = exchange(gw.addr, b"GET /old HTTP/1.0\r\n\r\n").await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.ends_with("up:public:/old"), "{resp}");
}

#[tokio::test]
async fn connection_host_keeps_the_host_and_a_trailing_dot_is_normalised() {
    let (admin, _public, gw) = hosts().await;
    let resp = exchange(
        gw.addr,
        b"GET /a HTTP/1.1\r\nHost: admin.example\r\nConnection: host, close\r\n\r\n",
    )
    .await;
    assert!(resp.ends_with("up:admin:/a"), "{resp}");
    let resp = exchange(
        gw.addr,
        b"GET /b HTTP/1.1\r\nHost: admin.example.\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.ends_with("up:admin:/b"), "{resp}");
    let resp = exchange(
        gw.addr,
        b"GET /c HTTP/1.1\r\nHost: ADMIN.example.:80\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.ends_with("up:admin:/c"), "{resp}");
    let got = requests(&admin);
    assert_eq!(host_lines(&got[0]), ["admin.example"], "{got:?}");
    assert_eq!(host_lines(&got[1]), ["admin.example"], "{got:?}");
    assert_eq!(host_lines(&got[2]), ["ADMIN.example:80"], "{got:?}");
}

/// One HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(9 + payload.len());
    let len = payload.len() as u32;
    f.extend_from_slice(&len.to_be_bytes()[1..]);
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK literal header field without indexing: by static table index, or a new name.
fn hpack(out: &mut Vec<u8>, index: u8, name: &str, value: &str) {
    if index == 0 {
        out.push(0);
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
    } else if index < 15 {
        out.push(index);
    } else {
        out.push(15);
        out.push(index - 15);
    }
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
}

/// Sends one HTTP/2 request over prior knowledge (HEADERS with `fields`, then `data` when
/// given) and returns the frames the gateway sent back within a second: `(type, stream,
/// payload)`.
async fn h2_request(
    addr: std::net::SocketAddr,
    fields: &[(u8, &str, &str)],
    data: Option<&[u8]>,
) -> Vec<(u8, u32, Vec<u8>)> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(4, 0, 0, &[]));
    let mut block = Vec::new();
    for (i, n, v) in fields {
        hpack(&mut block, *i, n, v);
    }
    // END_HEADERS, and END_STREAM when there is no DATA frame.
    let flags = if data.is_some() { 0x4 } else { 0x5 };
    out.extend(frame(1, flags, 1, &block));
    if let Some(d) = data {
        out.extend(frame(0, 0x1, 1, d));
    }
    s.write_all(&out).await.unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline.into(), s.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let mut frames = Vec::new();
    let mut b = &got[..];
    while b.len() >= 9 {
        let len = u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize;
        let stream = u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff;
        if b.len() < 9 + len {
            break;
        }
        frames.push((b[3], stream, b[9..9 + len].to_vec()));
        b = &b[9 + len..];
    }
    frames
}

/// Whether the frames answer stream 1 with `:status 400` (HPACK static index 12) or reset it.
fn refused(frames: &[(u8, u32, Vec<u8>)]) -> bool {
    frames
        .iter()
        .any(|(t, s, p)| *s == 1 && ((*t == 1 && p.first() == Some(&0x8c)) || *t == 3))
}

#[tokio::test]
async fn h2_authority_and_host_that_disagree_are_400() {
    let (admin, public, gw) = hosts().await;
    let frames = h2_request(
        gw.addr,
        &[
            (2, ":method", "GET"),
            (6, ":scheme", "http"),
            (4, ":path", "/x"),
            (1, ":authority", "public.example"),
            (38, "host", "admin.example"),
        ],
        None,
    )
    .await;
    assert!(
        frames
            .iter()
            .any(|(t, s, p)| *s == 1 && *t == 1 && p.first() == Some(&0x8c)),
        "a 400 HEADERS frame: {frames:?}"
    );
    // Agreeing ones pass, forwarded with one Host.
    let frames = h2_request(
        gw.addr,
        &[
            (2, ":method", "GET"),
            (6, ":scheme", "http"),
            (4, ":path", "/y"),
            (1, ":authority", "admin.example"),
            (38, "host", "admin.example"),
        ],
        None,
    )
    .await;
    assert!(
        frames
            .iter()
            .any(|(t, s, p)| *s == 1 && *t == 1 && p.first() == Some(&0x88)),
        "a 200: {frames:?}"
    );
    let got = requests(&admin);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(host_lines(&got[0]), ["admin.example"]);
    assert!(requests(&public).is_empty());
}

// ---- 4. response splitting by an upstream ---------------------------------------------------

/// The fake response an upstream tries to smuggle inside a chunk.
const SMUGGLED: &str = "HTTP/1.1 200 OK\r\ncontent-length: 8\r\nx-smuggled: yes\r\n\r\nSMUGGLED";

#[tokio::test]
async fn transfer_encoding_wins_over_content_length_and_nothing_is_smuggled() {
    let up = raw(script(|req| {
        if req.starts_with("GET /split") {
            let chunk = format!("{:x}\r\n{SMUGGLED}\r\n0\r\n\r\n", SMUGGLED.len());
            (
                format!(
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n{chunk}"
                )
                .into_bytes(),
                true,
            )
        } else if req.starts_with("GET /identity") {
            (
                format!(
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\n{SMUGGLED}"
                )
                .into_bytes(),
                true,
            )
        } else {
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nreal".to_vec(),
                false,
            )
        }
    }))
    .await;
    let gw = TestGateway::start(
        "[[listener]]\nbind = \"127.0.0.1:0\"\n[upstream.legacy]\nurl = \"{legacy}\"\n[default]\nlegacy = \"legacy\"\n",
        &[("legacy", up.url.clone())],
    )
    .await;
    for path in ["/split", "/identity"] {
        // Pipelined on one connection, through the own loop; then through hyper (a request
        // with a chunked body).
        for first in [
            format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n"),
            format!(
                "GET {path} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
            ),
        ] {
            let mut s = TcpStream::connect(gw.addr).await.unwrap();
            let req = format!("{first}GET /next HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
            s.write_all(req.as_bytes()).await.unwrap();
            let mut out = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
            let got = responses(&out);
            assert_eq!(got.len(), 2, "{path}: {:?}", String::from_utf8_lossy(&out));
            assert!(got[0].0.starts_with("http/1.1 200"), "{got:?}");
            assert!(!got[0].0.contains("content-length: 5"), "{got:?}");
            assert_eq!(String::from_utf8_lossy(&got[0].1), SMUGGLED, "{got:?}");
            assert!(!got[1].0.contains("x-smuggled"), "{got:?}");
            assert_eq!(got[1].1, b"real", "{got:?}");
        }
    }
}

#[tokio::test]
async fn an_unknown_transfer_coding_from_an_upstream_is_a_502() {
    let up = raw(script(|req| {
        let coding = if req.starts_with("GET /a") {
            "x-custom"
        } else {
            "x-custom, chunked"
        };
        (
            format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: {coding}\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
            )
            .into_bytes(),
            true,
        )
    }))
    .await;
    let gw = TestGateway::start(
        "[[listener]]\nbind = \"127.0.0.1:0\"\n[upstream.legacy]\nurl = \"{legacy}\"\n[default]\nlegacy = \"legacy\"\n",
        &[("legacy", up.url.clone())],
    )
    .await;
    for path in ["/a", "/b"] {
        let (s, h, b) = get(&gw.url(path), &[]).await;
        assert_eq!(s, 502, "{path}");
        assert_eq!(header(&h, "content-type"), "application/problem+json");
        let p: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert!(
            p["detail"].as_str().unwrap().contains("transfer coding"),
            "{p}"
        );
    }
}

// ---- 5. X-Request-Id and the access log ----------------------------------------------------

#[tokio::test]
async fn request_ids_that_could_forge_log_fields_are_replaced() {
    let up = recorder("legacy").await;
    let log = std::env::temp_dir().join(format!(
        "ficus-hostile-rid-{}-{}.log",
        std::process::id(),
        up.url.rsplit(':').next().unwrap()
    ));
    let _ = std::fs::remove_file(&log);
    let gw = TestGateway::start(
        "[[listener]]\nbind = \"127.0.0.1:0\"\n[upstream.legacy]\nurl = \"{legacy}\"\n[access_log]\nformat = \"text\"\npath = \"{log}\"\n[default]\nlegacy = \"legacy\"\n",
        &[("legacy", up.url.clone()), ("log", log.display().to_string())],
    )
    .await;
    let long = "a".repeat(10 * 1024);
    let cases = [
        ("abc status=200 route=forged", false),
        (long.as_str(), false),
        ("a\"b", false),
        ("req-42_x.y:z", true),
        ("4bf92f3577b34da6a3ce929d0e0e4736", true),
    ];
    for (id, _) in &cases {
        let resp = exchange(
            gw.addr,
            format!(
                "GET /p HTTP/1.1\r\nhost: x\r\nx-request-id: {id}\r\nconnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    }
    // A path with a quote cannot end the quoted field early.
    let resp = exchange(
        gw.addr,
        b"GET /q\"x HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let got = requests(&up);
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>();
        if lines.len() == cases.len() + 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(lines.len(), cases.len() + 1, "{lines:?}");
    for (i, (id, kept)) in cases.iter().enumerate() {
        let sent = got[i]
            .lines()
            .find_map(|l| l.strip_prefix("x-request-id: "))
            .unwrap()
            .to_string();
        let logged = lines[i].rsplit_once("request_id=").unwrap().1;
        if *kept {
            assert_eq!(sent, *id);
        } else {
            assert_eq!(sent.len(), 32, "a generated id: {sent}");
            assert!(sent.bytes().all(|b| b.is_ascii_hexdigit()), "{sent}");
        }
        assert_eq!(logged, sent, "{}", lines[i]);
        assert_eq!(lines[i].matches("status=").count(), 0, "{}", lines[i]);
        assert_eq!(lines[i].matches("route=").count(), 1, "{}", lines[i]);
    }
    assert!(
        lines[cases.len()].contains("\"GET /q\\\"x\" 200 "),
        "{}",
        lines[cases.len()]
    );
}

// ---- 6. HTTP/2 content-length: 0 with a DATA frame -----------------------------------------

#[tokio::test]
async fn h2_content_length_zero_with_data_never_reaches_the_upstream() {
    let up = recorder("legacy").await;
    let gw = TestGateway::start(
        "[[listener]]\nbind = \"127.0.0.1:0\"\n[upstream.legacy]\nurl = \"{legacy}\"\n[default]\nlegacy = \"legacy\"\n",
        &[("legacy", up.url.clone())],
    )
    .await;
    let frames = h2_request(
        gw.addr,
        &[
            (3, ":method", "POST"),
            (6, ":scheme", "http"),
            (4, ":path", "/x"),
            (1, ":authority", "x"),
            (28, "content-length", "0"),
        ],
        Some(b"hello"),
    )
    .await;
    assert!(refused(&frames), "{frames:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(requests(&up).is_empty(), "{:?}", requests(&up));
    assert_eq!(up.conns.load(Ordering::SeqCst), 0);
    // A POST whose empty body ends with an empty DATA frame still passes.
    let frames = h2_request(
        gw.addr,
        &[
            (3, ":method", "POST"),
            (6, ":scheme", "http"),
            (4, ":path", "/y"),
            (1, ":authority", "x"),
            (28, "content-length", "0"),
        ],
        Some(b""),
    )
    .await;
    assert!(
        frames
            .iter()
            .any(|(t, s, p)| *s == 1 && *t == 1 && p.first() == Some(&0x88)),
        "{frames:?}"
    );
    assert_eq!(requests(&up).len(), 1);
}

// ---- where ficus follows nginx: Upgrade: h2c ----------------------------------------------

#[tokio::test]
async fn an_h2c_upgrade_goes_upstream_as_a_plain_request() {
    let up = recorder("legacy").await;
    let gw = TestGateway::start(
        "[[listener]]\nbind = \"127.0.0.1:0\"\n[upstream.legacy]\nurl = \"{legacy}\"\n[default]\nlegacy = \"legacy\"\n",
        &[("legacy", up.url.clone())],
    )
    .await;
    let resp = exchange(
        gw.addr,
        b"GET /h2c HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let got = requests(&up);
    assert_eq!(got.len(), 1, "{got:?}");
    let head = got[0].to_ascii_lowercase();
    for gone in ["upgrade", "http2-settings", "connection:"] {
        assert!(!head.contains(gone), "{gone} was forwarded: {head}");
    }
}
