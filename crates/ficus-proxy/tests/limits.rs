//! Limits against bad input: 431, 413, 504, slow clients, the connection limit. Each limit
//! is configured small here and checked over real sockets.

mod support;

use std::time::{Duration, Instant};

use http::Request;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONFIG: &str = r#"
[gateway]
header_read_timeout = "500ms"
max_header_bytes = "8KiB"
max_connections = 2
[[listener]]
bind = "127.0.0.1:0"
[upstream.legacy]
url = "{legacy}"
request_timeout = "300ms"
[[route]]
name = "small"
path_prefix = "/small"
legacy = "legacy"
max_body = "1KiB"
[default]
legacy = "legacy"
"#;

async fn setup() -> (Upstream, TestGateway) {
    let legacy = Upstream::start("legacy").await;
    let gw = TestGateway::start(CONFIG, &[("legacy", legacy.url())]).await;
    (legacy, gw)
}

async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let (legacy, gw) = setup().await;
    let big = "a".repeat(10 * 1024);
    let resp = raw(
        gw.addr,
        format!("GET / HTTP/1.1\r\nhost: x\r\nx-big: {big}\r\nconnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 431"), "{resp}");
    assert_eq!(legacy.hits(), 0);
    // Just under the limit is fine.
    let ok = "a".repeat(6 * 1024);
    let (s, _, _) = get(&gw.url("/"), &[("x-big", &ok)]).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn bodies_over_the_route_limit_get_413_with_a_problem() {
    let (legacy, gw) = setup().await;
    let body: &'static str = Box::leak("b".repeat(2048).into_boxed_str());
    let (s, h, b) = send(Request::post(gw.url("/small/x")).body(full(body)).unwrap()).await;
    assert_eq!(s, 413);
    assert_eq!(header(&h, "content-type"), "application/problem+json");
    let p: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(p["status"], 413);
    assert_eq!(p["route"], "small");
    assert_eq!(p["type"], "urn:ficus:problem:body-too-large");
    assert!(p["detail"].as_str().unwrap().contains("1024 bytes"), "{p}");
    assert!(p["fix"].as_str().unwrap().contains("max_body"), "{p}");
    assert_eq!(legacy.hits(), 0, "refused before calling the upstream");

    // The same body without Content-Length (chunked) is cut off while streaming.
    let resp = raw(
        gw.addr,
        format!(
            "POST /small/x HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n800\r\n{body}\r\n0\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");

    // Within the limit passes.
    let (s, _, _) = send(
        Request::post(gw.url("/small/x"))
            .body(full("tiny"))
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn a_slow_upstream_gets_504() {
    let (_legacy, gw) = setup().await;
    let t = Instant::now();
    let (s, h, b) = get(&gw.url("/sleep/3000"), &[]).await;
    assert_eq!(s, 504);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "answered at the timeout, not when the upstream did"
    );
    assert_eq!(header(&h, "content-type"), "application/problem+json");
    let p: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(p["type"], "urn:ficus:problem:upstream-timeout");
    assert_eq!(p["route"], "default");
}

#[tokio::test]
async fn a_dead_upstream_gets_502_naming_it() {
    let gw = TestGateway::start(CONFIG, &[("legacy", dead_url().await)]).await;
    let (s, _, b) = get(&gw.url("/"), &[]).await;
    assert_eq!(s, 502);
    let p: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(p["upstream"], "legacy");
    assert!(
        p["fix"].as_str().unwrap().contains("running and reachable"),
        "{p}"
    );
}

#[tokio::test]
async fn slow_clients_are_cut_off_at_the_header_read_timeout() {
    let (legacy, gw) = setup().await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let t = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    // Never finish the head: the gateway must close the connection on its own.
    let mut buf = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "the connection was closed by the gateway");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(legacy.hits(), 0);
}

#[tokio::test]
async fn connections_over_the_limit_get_503_and_are_closed() {
    let (_legacy, gw) = setup().await;
    // Two idle keep-alive connections take both slots.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(gw.gateway().open_connections(), 2);
    let resp = raw(gw.addr, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(resp.starts_with("HTTP/1.1 503"), "{resp}");
    assert!(
        resp.contains("application/problem+json") && resp.contains("max_connections"),
        "{resp}"
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (s, _, _) = get(&gw.url("/"), &[]).await;
    assert_eq!(s, 200, "a freed slot is used again");
}

#[tokio::test]
async fn malformed_requests_get_400_and_the_gateway_keeps_serving() {
    let (legacy, gw) = setup().await;
    for bad in [
        &b"NOT A REQUEST\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n",
        b"GET / HTTP/1.1\r\nbad header line\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
    ] {
        let resp = raw(gw.addr, bad).await;
        assert!(
            resp.is_empty() || resp.starts_with("HTTP/1.1 400"),
            "{resp}"
        );
    }
    assert_eq!(legacy.hits(), 0);
    let (s, _, _) = get(&gw.url("/"), &[]).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn connect_tunnels_are_refused_with_405() {
    let (legacy, gw) = setup().await;
    let resp = raw(
        gw.addr,
        b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 405"), "{resp}");
    assert!(
        resp.contains("urn:ficus:problem:connect-not-supported"),
        "{resp}"
    );
    assert_eq!(legacy.hits(), 0);
}

/// A canary route: bodies up to `max_buffered_body` are read whole before modern is called.
const CANARY: &str = r#"
[gateway]
header_read_timeout = "300ms"
client_body_timeout = "300ms"
[[listener]]
bind = "127.0.0.1:0"
[upstream.legacy]
url = "{legacy}"
[upstream.modern]
url = "{modern}"
[[route]]
name = "api"
path_prefix = "/"
legacy = "legacy"
modern = "modern"
stage = "modern"
[default]
legacy = "legacy"
"#;

#[tokio::test]
async fn a_stalled_buffered_body_gets_408_at_the_client_body_timeout() {
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    let gw = TestGateway::start(
        CANARY,
        &[("legacy", legacy.url()), ("modern", modern.url())],
    )
    .await;
    let t = Instant::now();
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"POST /x HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let mut out = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    assert!(r.is_ok(), "answered and closed");
    let resp = String::from_utf8_lossy(&out);
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
    assert!(
        resp.contains("urn:ficus:problem:client-body-timeout"),
        "{resp}"
    );
    assert!(resp.contains("client_body_timeout"), "{resp}");
    // The own loop's 300 ms for the small body, then 300 ms without a byte.
    let waited = t.elapsed();
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!((legacy.hits(), modern.hits()), (0, 0));
}

#[tokio::test]
async fn an_upstream_silent_mid_body_is_cut_off_at_its_read_timeout() {
    // The head and 3 of 100 bytes, then nothing (the connection stays open).
    let up = support::raw(script(|_| {
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc".to_vec(),
            false,
        )
    }))
    .await;
    let gw = TestGateway::start(
        "[[listener]]\nbind = \"127.0.0.1:0\"\n[upstream.legacy]\nurl = \"{legacy}\"\nread_timeout = \"300ms\"\n[default]\nlegacy = \"legacy\"\n",
        &[("legacy", up.url.clone())],
    )
    .await;
    for request in [
        // The own loop, then hyper (a request with a chunked body).
        &b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n"[..],
        b"POST /a HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
    ] {
        let t = Instant::now();
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut out = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        assert!(r.is_ok(), "the gateway closed the connection");
        let resp = String::from_utf8_lossy(&out);
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        assert!(resp.ends_with("abc"), "the response was cut short: {resp}");
        let waited = t.elapsed();
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
    }
}

#[tokio::test]
async fn a_client_that_never_reads_is_closed_at_the_send_timeout() {
    // 64 MiB: far more than the socket buffers between client, gateway and upstream hold.
    const BIG: usize = 64 << 20;
    let up = support::raw(script(|_| {
        let mut r = format!("HTTP/1.1 200 OK\r\ncontent-length: {BIG}\r\n\r\n").into_bytes();
        r.resize(r.len() + BIG, b'x');
        (r, false)
    }))
    .await;
    let gw = TestGateway::start(
        "[gateway]\nsend_timeout = \"300ms\"\n[[listener]]\nbind = \"127.0.0.1:0\"\n[upstream.legacy]\nurl = \"{legacy}\"\n[default]\nlegacy = \"legacy\"\n",
        &[("legacy", up.url.clone())],
    )
    .await;
    for request in [
        // The own loop, then hyper (a request with a chunked body).
        &b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n"[..],
        b"POST /big HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let t = Instant::now();
        while gw.gateway().open_connections() == 0 {
            assert!(t.elapsed() < Duration::from_secs(2), "never accepted");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Never read: the gateway must give up on this client by itself.
        while gw.gateway().open_connections() > 0 {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "the connection is still open after {:?}",
                t.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            t.elapsed() >= Duration::from_millis(250),
            "{:?}",
            t.elapsed()
        );
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got)).await;
        assert!(got.len() < BIG, "the response was cut short");
    }
}
