//! Upstream connection pooling: reuse, the idle bound and timeout, and an upstream that closes
//! idle keep-alive connections (the request goes out on a fresh connection, never a 502).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config(upstream_extra: &str) -> String {
    format!(
        "[[listener]]\nbind = \"127.0.0.1:0\"\n[upstream.legacy]\nurl = \"{{legacy}}\"\n{upstream_extra}\n[default]\nlegacy = \"legacy\"\n"
    )
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let legacy = Upstream::start("legacy").await;
    let gw = TestGateway::start(&config(""), &[("legacy", legacy.url())]).await;
    for i in 0..50 {
        let (s, _, _) = get(&gw.url(&format!("/r/{i}")), &[]).await;
        assert_eq!(s, 200);
    }
    assert_eq!(legacy.hits(), 50);
    assert_eq!(
        legacy.conns.load(Ordering::SeqCst),
        1,
        "one keep-alive connection served all"
    );
}

#[tokio::test]
async fn concurrent_requests_open_connections_and_keep_at_most_max_idle() {
    let legacy = Upstream::start("legacy").await;
    let gw = TestGateway::start(
        &config("max_idle_connections = 2"),
        &[("legacy", legacy.url())],
    )
    .await;
    // 8 slow requests at once need 8 connections.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = gw.url("/sleep/200");
        tasks.push(tokio::spawn(async move { get(&url, &[]).await.0 }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(legacy.conns.load(Ordering::SeqCst), 8);
    // Only two were kept: the next three sequential requests need no new connection, and
    // three concurrent ones need exactly one more.
    for _ in 0..3 {
        get(&gw.url("/x"), &[]).await;
    }
    assert_eq!(legacy.conns.load(Ordering::SeqCst), 8);
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let url = gw.url("/sleep/200");
        tasks.push(tokio::spawn(async move { get(&url, &[]).await.0 }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(legacy.conns.load(Ordering::SeqCst), 9);
}

#[tokio::test]
async fn idle_connections_expire_and_zero_idle_means_no_reuse() {
    let legacy = Upstream::start("legacy").await;
    let gw = TestGateway::start(
        &config("pool_idle_timeout = \"100ms\""),
        &[("legacy", legacy.url())],
    )
    .await;
    get(&gw.url("/a"), &[]).await;
    get(&gw.url("/b"), &[]).await;
    assert_eq!(legacy.conns.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(250)).await;
    get(&gw.url("/c"), &[]).await;
    assert_eq!(
        legacy.conns.load(Ordering::SeqCst),
        2,
        "the idle connection had expired"
    );

    let other = Upstream::start("other").await;
    let gw = TestGateway::start(
        &config("max_idle_connections = 0"),
        &[("legacy", other.url())],
    )
    .await;
    for _ in 0..3 {
        get(&gw.url("/x"), &[]).await;
    }
    assert_eq!(other.conns.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_upstream_closing_idle_connections_causes_no_error() {
    // An HTTP/1.1 upstream that answers one request per connection with keep-alive, then
    // closes the socket shortly after: the pooled connection is dead when reused.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let counted = conns.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok",
                    )
                    .await;
                tokio::time::sleep(Duration::from_millis(20)).await;
                // Dropping the socket closes it, as a keep-alive timeout would.
            });
        }
    });
    let gw = TestGateway::start(&config(""), &[("legacy", format!("http://{addr}"))]).await;
    for i in 0..10 {
        let (s, _, body) = get(&gw.url("/"), &[]).await;
        assert_eq!((s.as_u16(), &body[..]), (200, &b"ok"[..]), "request {i}");
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert_eq!(conns.load(Ordering::SeqCst), 10);
}
