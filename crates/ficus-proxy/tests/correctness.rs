//! Proxy correctness: headers both ways, streaming without buffering, WebSocket upgrade,
//! 100-continue, HTTP/2 clients (h2c and TLS with ALPN).

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONFIG: &str = r#"
[[listener]]
bind = "127.0.0.1:0"
[upstream.legacy]
url = "{legacy}"
[upstream.rewritten]
url = "{legacy}"
host = "upstream"
[upstream.fixed]
url = "{legacy}/base/"
host = "legacy.internal"
[[route]]
name = "rewrite"
path_prefix = "/rewrite"
legacy = "rewritten"
[[route]]
name = "fixed"
path_prefix = "/fixed"
legacy = "fixed"
[default]
legacy = "legacy"
max_body = "1GiB"
"#;

async fn setup() -> (Upstream, TestGateway) {
    let legacy = Upstream::start("legacy").await;
    let gw = TestGateway::start(CONFIG, &[("legacy", legacy.url())]).await;
    (legacy, gw)
}

#[tokio::test]
async fn hop_by_hop_headers_are_removed_and_forwarded_headers_set() {
    let (legacy, gw) = setup().await;
    let req = Request::get(gw.url("/h?q=1"))
        .header("connection", "x-private")
        .header("x-private", "secret")
        .header("keep-alive", "timeout=5")
        .header("te", "trailers")
        .header("proxy-authorization", "Basic x")
        .header("x-forwarded-for", "10.1.2.3")
        .header("host", "shop.test:8443")
        .header("x-custom", "kept")
        .body(full(""))
        .unwrap();
    let (status, _, _) = send(req).await;
    assert_eq!(status, 200);
    let seen = legacy.last();
    assert_eq!(seen.path, "/h");
    for gone in [
        "connection",
        "x-private",
        "keep-alive",
        "te",
        "proxy-authorization",
        "upgrade",
    ] {
        assert!(
            !seen.headers.contains_key(gone),
            "{gone} was forwarded: {:?}",
            seen.headers
        );
    }
    assert_eq!(seen.headers["x-custom"], "kept");
    assert_eq!(seen.headers["x-forwarded-for"], "10.1.2.3, 127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
    assert_eq!(seen.headers["x-forwarded-host"], "shop.test:8443");
    assert_eq!(
        seen.headers["host"], "shop.test:8443",
        "Host is preserved by default"
    );
    assert_eq!(seen.headers["x-request-id"].len(), 32);

    let (_, _, _) = get(&gw.url("/h"), &[("x-request-id", "abc-123")]).await;
    assert_eq!(
        legacy.last().headers["x-request-id"],
        "abc-123",
        "a client's id is kept"
    );
}

#[tokio::test]
async fn hop_by_hop_headers_are_removed_from_responses() {
    // A raw upstream that sends hop-by-hop headers back.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        s.write_all(b"HTTP/1.1 200 OK\r\nconnection: x-hop\r\nx-hop: 1\r\nkeep-alive: timeout=3\r\nx-end: 2\r\ncontent-length: 2\r\n\r\nok")
            .await
            .unwrap();
    });
    let gw = TestGateway::start(CONFIG, &[("legacy", format!("http://{addr}"))]).await;
    let (status, h, body) = get(&gw.url("/"), &[]).await;
    assert_eq!((status.as_u16(), &body[..]), (200, &b"ok"[..]));
    assert!(
        !h.contains_key("x-hop") && !h.contains_key("keep-alive"),
        "{h:?}"
    );
    assert_eq!(header(&h, "x-end"), "2");
}

#[tokio::test]
async fn host_is_rewritten_per_upstream_and_the_path_prefix_applied() {
    let (legacy, gw) = setup().await;
    get(&gw.url("/rewrite/a"), &[("host", "shop.test")]).await;
    assert_eq!(legacy.last().headers["host"], legacy.addr.to_string());
    get(&gw.url("/fixed/b?x=1"), &[("host", "shop.test")]).await;
    let seen = legacy.last();
    assert_eq!(seen.headers["host"], "legacy.internal");
    assert_eq!(seen.path, "/base/fixed/b");
    assert_eq!(seen.headers["x-forwarded-host"], "shop.test");
}

#[tokio::test]
async fn response_bodies_stream_without_buffering() {
    let (legacy, gw) = setup().await;
    let resp = client()
        .request(
            Request::get(gw.url("/stream/1048576"))
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = resp.into_body();
    // The upstream sent one chunk and now waits: the client must already have it.
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("the first chunk arrives before the upstream finished")
        .unwrap()
        .unwrap();
    let first = first.into_data().unwrap().len();
    assert!(first > 0 && first <= 64 * 1024, "{first}");
    legacy.release.notify_one();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(first + rest.len(), 1048576);
}

#[tokio::test]
async fn request_bodies_stream_without_buffering() {
    let (legacy, gw) = setup().await;
    let (tx, rx) = tokio::sync::mpsc::channel::<
        Result<hyper::body::Frame<Bytes>, std::convert::Infallible>,
    >(2);
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    let body = BodyExt::boxed(http_body_util::StreamBody::new(stream));
    tx.send(Ok(hyper::body::Frame::data(Bytes::from(vec![1u8; 1000]))))
        .await
        .unwrap();
    // The client has not finished its body (tx is open), yet the upstream answers after the
    // first chunk: the gateway forwarded it without waiting for the rest.
    let resp = tokio::time::timeout(
        Duration::from_secs(5),
        client().request(Request::post(gw.url("/hold-body")).body(body).unwrap()),
    )
    .await
    .expect("the upstream saw the first chunk while the client was still sending")
    .unwrap();
    assert_eq!(resp.status(), 200);
    drop(tx);
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&b[..], b"first-chunk=1000");
    assert_eq!(legacy.last().path, "/hold-body");
}

#[tokio::test]
async fn a_large_body_streams_through_both_ways() {
    let (_legacy, gw) = setup().await;
    // 64 MiB up, counted by the upstream; far above any buffer the gateway keeps.
    let size = 64 * 1024 * 1024;
    let (tx, rx) = tokio::sync::mpsc::channel::<
        Result<hyper::body::Frame<Bytes>, std::convert::Infallible>,
    >(4);
    tokio::spawn(async move {
        let chunk = Bytes::from(vec![7u8; 1024 * 1024]);
        for _ in 0..64 {
            if tx
                .send(Ok(hyper::body::Frame::data(chunk.clone())))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    let req = Request::post(gw.url("/upload"))
        .body(BodyExt::boxed(http_body_util::StreamBody::new(stream)))
        .unwrap();
    let (status, h, _) = send(req).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-body-len"), size.to_string());
}

#[tokio::test]
async fn websocket_upgrade_passes_through() {
    let (legacy, gw) = setup().await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("upgrade: websocket"),
        "{head}"
    );
    assert_eq!(legacy.last().headers["upgrade"], "websocket");
    assert_eq!(
        legacy.last().headers["sec-websocket-key"],
        "dGhlIHNhbXBsZSBub25jZQ=="
    );
    for msg in [&b"hello"[..], b"frames pass both ways"] {
        s.write_all(msg).await.unwrap();
        let mut got = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, msg);
    }
}

#[tokio::test]
async fn expect_100_continue_is_answered() {
    let (legacy, gw) = setup().await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(
        b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 100 Continue"), "{head}");
    s.write_all(b"hello").await.unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("x-body-len: 5"), "{head}");
    assert!(!legacy.last().headers.contains_key("expect"));
}

#[tokio::test]
async fn http2_prior_knowledge_clients_are_served() {
    let (legacy, gw) = setup().await;
    let c = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<BoxBody>();
    let resp = c
        .request(Request::get(gw.url("/h2")).body(full("")).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let seen = legacy.last();
    assert_eq!(seen.path, "/h2");
    assert_eq!(seen.headers["x-forwarded-host"], gw.addr.to_string());
}

#[tokio::test]
async fn tls_listener_negotiates_h2_and_http1_by_alpn() {
    let legacy = Upstream::start("legacy").await;
    let dir = std::env::temp_dir().join(format!("ficus-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
    let text = CONFIG.replacen(
        "bind = \"127.0.0.1:0\"",
        &format!(
            "bind = \"127.0.0.1:0\"\ntls = {{ cert = \"{}\", key = \"{}\" }}",
            dir.join("cert.pem").display(),
            dir.join("key.pem").display()
        ),
        1,
    );
    let gw = TestGateway::start(&text, &[("legacy", legacy.url())]).await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    for version in [http::Version::HTTP_2, http::Version::HTTP_11] {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        // Offer only one protocol by ALPN, so the listener must negotiate exactly it.
        let b = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only();
        let connector = if version == http::Version::HTTP_2 {
            b.enable_http2().build()
        } else {
            b.enable_http1().build()
        };
        let c = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build::<_, BoxBody>(connector);
        let url = format!("https://localhost:{}/tls", gw.addr.port());
        let resp = c
            .request(Request::get(url).body(full("")).unwrap())
            .await
            .unwrap();
        assert_eq!((resp.status().as_u16(), resp.version()), (200, version));
        assert_eq!(legacy.last().headers["x-forwarded-proto"], "https");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Reads one response head (through the blank line).
pub async fn read_head(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut byte))
            .await
            .expect("a response head in time")
            .unwrap();
        if n == 0 {
            break;
        }
        buf.push(byte[0]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn upstreams_over_http2_and_https() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("ficus-up-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let h2c = Upstream::start("h2c").await;
    let https =
        Upstream::start_tls("https", &cert.cert.pem(), &cert.key_pair.serialize_pem()).await;
    let text = format!(
        r#"
[[listener]]
bind = "127.0.0.1:0"
[upstream.h2c]
url = "{h2c}"
http2 = true
[upstream.https]
url = "https://localhost:{port}"
ca_file = "{ca}"
[upstream.https2]
url = "https://localhost:{port}"
ca_file = "{ca}"
http2 = true
[[route]]
name = "h2c"
path_prefix = "/h2c"
legacy = "h2c"
[[route]]
name = "https2"
path_prefix = "/https2"
legacy = "https2"
[default]
legacy = "https"
"#,
        h2c = h2c.url(),
        port = https.addr.port(),
        ca = ca.display()
    );
    let gw = TestGateway::start(&text, &[]).await;

    let (s, h, _) = get(&gw.url("/h2c/x"), &[]).await;
    assert_eq!((s.as_u16(), header(&h, "x-served-by")), (200, "h2c"));
    assert_eq!(
        h2c.last().version,
        http::Version::HTTP_2,
        "prior-knowledge HTTP/2 upstream"
    );

    let (s, h, _) = get(&gw.url("/plain"), &[]).await;
    assert_eq!((s.as_u16(), header(&h, "x-served-by")), (200, "https"));
    assert_eq!(https.last().version, http::Version::HTTP_11);

    let (s, _, _) = get(&gw.url("/https2/y"), &[]).await;
    assert_eq!(s, 200);
    assert_eq!(
        https.last().version,
        http::Version::HTTP_2,
        "HTTP/2 negotiated by ALPN"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_untrusted_https_upstream_is_a_502_naming_it() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let https =
        Upstream::start_tls("https", &cert.cert.pem(), &cert.key_pair.serialize_pem()).await;
    let text = format!(
        "[[listener]]\nbind = \"127.0.0.1:0\"\n[upstream.https]\nurl = \"https://localhost:{}\"\n[default]\nlegacy = \"https\"\n",
        https.addr.port()
    );
    let gw = TestGateway::start(&text, &[]).await;
    let (s, _, body) = get(&gw.url("/"), &[]).await;
    assert_eq!(s, 502);
    let p: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(p["upstream"], "https");
    assert!(p["detail"].as_str().unwrap().contains("certificate"), "{p}");
    assert_eq!(https.hits(), 0);
}
