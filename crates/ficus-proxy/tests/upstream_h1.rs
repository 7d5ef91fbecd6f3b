//! ficus's own HTTP/1.1 client codec against upstreams that send exact bytes: chunked bodies
//! with extensions and trailers, close-delimited bodies, bodiless responses, interim 1xx
//! responses, HTTP/1.0, broken or oversized response heads (502 naming the limit), a body
//! cut short, and a streamed request body's chunked framing. Connection counts show when a
//! connection is (and is not) reused.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use support::*;
use tokio::io::AsyncWriteExt;

fn config() -> String {
    "[[listener]]\nbind = \"127.0.0.1:0\"\n[upstream.legacy]\nurl = \"{legacy}\"\n[default]\nlegacy = \"legacy\"\n".into()
}

async fn gateway(up: &Raw) -> TestGateway {
    TestGateway::start(&config(), &[("legacy", up.url.clone())]).await
}

#[tokio::test]
async fn a_chunked_response_with_extensions_and_trailers_passes_and_the_connection_is_reused() {
    let up = raw(script(|_| {
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\ncontent-type: text/plain\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n".to_vec(),
            false,
        )
    }))
    .await;
    let gw = gateway(&up).await;
    for _ in 0..3 {
        let (s, h, body) = get(&gw.url("/c"), &[]).await;
        assert_eq!((s.as_u16(), &body[..]), (200, &b"hello world"[..]));
        assert_eq!(header(&h, "content-type"), "text/plain");
    }
    assert_eq!(
        up.conns.load(Ordering::SeqCst),
        1,
        "one connection carried all three"
    );
}

#[tokio::test]
async fn a_close_delimited_response_passes_and_its_connection_is_not_reused() {
    let up = raw(script(|_| {
        (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil close".to_vec(),
            true,
        )
    }))
    .await;
    let gw = gateway(&up).await;
    for _ in 0..2 {
        let (s, _, body) = get(&gw.url("/c"), &[]).await;
        assert_eq!((s.as_u16(), &body[..]), (200, &b"until close"[..]));
    }
    assert_eq!(up.conns.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn head_204_and_304_have_no_body_and_keep_the_connection() {
    let up = raw(script(|req| {
        let answer: &[u8] = if req.starts_with("HEAD") {
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n"
        } else if req.starts_with("GET /none") {
            b"HTTP/1.1 204 No Content\r\n\r\n"
        } else {
            b"HTTP/1.1 304 Not Modified\r\netag: \"v1\"\r\ncontent-length: 10\r\n\r\n"
        };
        (answer.to_vec(), false)
    }))
    .await;
    let gw = gateway(&up).await;
    let (s, h, body) = send(Request::head(gw.url("/h")).body(full("")).unwrap()).await;
    assert_eq!((s.as_u16(), body.len()), (200, 0));
    assert_eq!(header(&h, "content-length"), "10");
    let (s, _, body) = get(&gw.url("/none"), &[]).await;
    assert_eq!((s.as_u16(), body.len()), (204, 0));
    let (s, h, body) = get(&gw.url("/cached"), &[("if-none-match", "\"v1\"")]).await;
    assert_eq!((s.as_u16(), body.len()), (304, 0));
    assert_eq!(header(&h, "etag"), "\"v1\"");
    assert_eq!(up.conns.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn interim_responses_are_skipped() {
    let up = raw(script(|_| {
        (
            b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
            false,
        )
    }))
    .await;
    let gw = gateway(&up).await;
    let (s, _, body) = get(&gw.url("/i"), &[]).await;
    assert_eq!((s.as_u16(), &body[..]), (200, &b"ok"[..]));
    let (s, _, _) = get(&gw.url("/i"), &[]).await;
    assert_eq!(s, 200);
    assert_eq!(up.conns.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_http_1_0_response_is_not_kept_alive_unless_it_says_so() {
    let up = raw(script(|req| {
        let answer: &[u8] = if req.starts_with("GET /ka") {
            b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\nka"
        } else {
            b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok"
        };
        (answer.to_vec(), false)
    }))
    .await;
    let gw = gateway(&up).await;
    for _ in 0..2 {
        let (s, _, body) = get(&gw.url("/plain"), &[]).await;
        assert_eq!((s.as_u16(), &body[..]), (200, &b"ok"[..]));
    }
    assert_eq!(
        up.conns.load(Ordering::SeqCst),
        2,
        "HTTP/1.0 closes by default"
    );
    for _ in 0..2 {
        let (s, _, body) = get(&gw.url("/ka"), &[]).await;
        assert_eq!((s.as_u16(), &body[..]), (200, &b"ka"[..]));
    }
    assert_eq!(up.conns.load(Ordering::SeqCst), 3, "keep-alive keeps it");
}

async fn problem_detail(gw: &TestGateway) -> String {
    let (s, h, body) = get(&gw.url("/p"), &[]).await;
    assert_eq!(s, 502);
    assert_eq!(header(&h, "content-type"), "application/problem+json");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["type"], "urn:ficus:problem:upstream-failed");
    v["detail"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_oversized_response_head_is_a_502_naming_the_limit() {
    let up = raw(script(|_| {
        let mut r = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
        r.extend(std::iter::repeat_n(b'a', 70 * 1024));
        r.extend_from_slice(b"\r\ncontent-length: 0\r\n\r\n");
        (r, true)
    }))
    .await;
    let gw = gateway(&up).await;
    let detail = problem_detail(&gw).await;
    assert!(
        detail.contains("response head is larger than 65536 bytes"),
        "{detail}"
    );
}

#[tokio::test]
async fn too_many_response_headers_are_a_502_naming_the_limit() {
    let up = raw(script(|_| {
        let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..200 {
            r.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
        }
        r.extend_from_slice(b"content-length: 0\r\n\r\n");
        (r, true)
    }))
    .await;
    let gw = gateway(&up).await;
    let detail = problem_detail(&gw).await;
    assert!(detail.contains("more than 128 header fields"), "{detail}");
}

#[tokio::test]
async fn invalid_framing_is_a_502() {
    for (answer, expected) in [
        (
            &b"HTTP/1.1 200 OK\r\ncontent-length: ten\r\n\r\n"[..],
            "bad Content-Length",
        ),
        (
            &b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab"[..],
            "conflicting Content-Length",
        ),
        (&b"HTTP/1.1 2x0 OK\r\n\r\n"[..], "invalid response head"),
        (
            &b"HTTP/1.1 200 OK\r\ncontent-"[..],
            "middle of the response head",
        ),
        (&b""[..], "without sending a response"),
    ] {
        let up = raw(script(move |_| (answer.to_vec(), true))).await;
        let gw = gateway(&up).await;
        let detail = problem_detail(&gw).await;
        assert!(detail.contains(expected), "{expected:?} not in {detail}");
    }
}

#[tokio::test]
async fn a_body_cut_short_fails_the_client_response() {
    let up = raw(script(|_| {
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly some bytes".to_vec(),
            true,
        )
    }))
    .await;
    let gw = gateway(&up).await;
    // Either the response never starts (the whole short body was already in hand when
    // the head was due) or its body fails: never a short body taken as whole.
    let whole = tokio::time::timeout(Duration::from_secs(5), async {
        let resp = client()
            .request(Request::get(gw.url("/cut")).body(full("")).unwrap())
            .await
            .ok()?;
        resp.into_body().collect().await.ok()
    })
    .await
    .expect("the exchange ends");
    assert!(
        whole.is_none(),
        "the client must not take a short body as whole"
    );
}

#[tokio::test]
async fn a_streamed_request_body_goes_out_chunked() {
    let up = raw(script(|_| {
        (
            b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n".to_vec(),
            false,
        )
    }))
    .await;
    let gw = gateway(&up).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<
        Result<hyper::body::Frame<Bytes>, std::convert::Infallible>,
    >(4);
    tokio::spawn(async move {
        for part in ["first,", "second,", "third"] {
            let _ = tx
                .send(Ok(hyper::body::Frame::data(Bytes::from(part))))
                .await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    let body = BodyExt::boxed(http_body_util::StreamBody::new(stream));
    let (s, _, _) = send(Request::post(gw.url("/upload")).body(body).unwrap()).await;
    assert_eq!(s, 201);
    let seen = up.requests.lock().unwrap()[0].clone();
    let text = String::from_utf8(seen).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_lowercase().contains("transfer-encoding: chunked"),
        "{head}"
    );
    assert!(!head.to_lowercase().contains("content-length"), "{head}");
    // Decode the chunks the upstream received.
    let mut rest = body;
    let mut decoded = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").unwrap();
        let n = usize::from_str_radix(size, 16).unwrap();
        if n == 0 {
            assert_eq!(after, "\r\n");
            break;
        }
        decoded.push_str(&after[..n]);
        assert_eq!(&after[n..n + 2], "\r\n");
        rest = &after[n + 2..];
    }
    assert_eq!(decoded, "first,second,third");
}

#[tokio::test]
async fn a_small_post_goes_out_with_its_length_in_one_piece() {
    let up = raw(script(|_| {
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
            false,
        )
    }))
    .await;
    let gw = gateway(&up).await;
    let (s, _, _) = send(
        Request::post(gw.url("/form"))
            .header("content-type", "application/json")
            .body(full(r#"{"a":1}"#))
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _, _) = send(Request::post(gw.url("/empty")).body(full("")).unwrap()).await;
    assert_eq!(s, 200);
    let seen = up.requests.lock().unwrap().clone();
    let first = String::from_utf8(seen[0].clone()).unwrap();
    assert!(first.starts_with("POST /form HTTP/1.1\r\n"), "{first}");
    assert!(first.contains("content-length: 7\r\n"), "{first}");
    assert!(first.ends_with("\r\n\r\n{\"a\":1}"), "{first}");
    let second = String::from_utf8(seen[1].clone()).unwrap();
    assert!(second.contains("content-length: 0\r\n"), "{second}");
    assert_eq!(up.conns.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn hop_by_hop_headers_and_those_connection_names_do_not_reach_the_client() {
    let up = raw(script(|_| {
        (
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\nX-Secret: 1\r\nX-Public: 2\r\ncontent-length: 2\r\n\r\nok".to_vec(),
            false,
        )
    }))
    .await;
    let gw = gateway(&up).await;
    let (s, h, body) = get(&gw.url("/h"), &[]).await;
    assert_eq!((s.as_u16(), &body[..]), (200, &b"ok"[..]));
    assert_eq!(header(&h, "x-public"), "2");
    assert!(h.get("x-secret").is_none(), "{h:?}");
    assert!(h.get("keep-alive").is_none(), "{h:?}");
}

#[tokio::test]
async fn a_head_and_body_arriving_in_pieces_are_put_together() {
    // The head comes in three writes, the body in two: each piece is read on its own.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = vec![0u8; 4096];
                while read_message(&mut s, &mut got, &mut buf).await.is_some() {
                    got.clear();
                    for piece in [
                        &b"HTTP/1.1 200 OK\r\ncontent-"[..],
                        b"type: text/plain\r\ncontent-length: 11\r\n",
                        b"\r\nhello",
                        b" world",
                    ] {
                        if s.write_all(piece).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(15)).await;
                    }
                }
            });
        }
    });
    let gw = TestGateway::start(&config(), &[("legacy", url)]).await;
    for _ in 0..2 {
        let (s, h, body) = get(&gw.url("/p"), &[]).await;
        assert_eq!((s.as_u16(), &body[..]), (200, &b"hello world"[..]));
        assert_eq!(header(&h, "content-type"), "text/plain");
    }
}

/// Fetches `/x` through a gateway in front of an upstream that answers `answer`; `None`
/// when the client did not get a whole response.
async fn whole_body(answer: &'static [u8]) -> Option<Bytes> {
    let up = raw(script(move |_| (answer.to_vec(), true))).await;
    let gw = gateway(&up).await;
    tokio::time::timeout(Duration::from_secs(5), async {
        let resp = client()
            .request(Request::get(gw.url("/x")).body(full("")).unwrap())
            .await
            .ok()?;
        resp.into_body().collect().await.ok().map(|c| c.to_bytes())
    })
    .await
    .expect("the exchange ends")
}

#[tokio::test]
async fn chunk_size_lines_over_4_kib_and_trailers_over_64_kib_break_the_response() {
    static LONG_LINE: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
        let mut r = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2;ext=".to_vec();
        r.extend(std::iter::repeat_n(b'a', 5 * 1024));
        r.extend_from_slice(b"\r\nok\r\n0\r\n\r\n");
        r
    });
    static BIG_TRAILERS: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
        let mut r =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n".to_vec();
        for i in 0..1100 {
            r.extend_from_slice(format!("x-trailer-{i:04}: {}\r\n", "v".repeat(48)).as_bytes());
        }
        r.extend_from_slice(b"\r\n");
        r
    });
    assert_eq!(whole_body(LONG_LINE.as_slice()).await, None);
    assert_eq!(whole_body(BIG_TRAILERS.as_slice()).await, None);
    // Just under both limits is fine.
    static FINE: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
        let mut r = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2;ext=".to_vec();
        r.extend(std::iter::repeat_n(b'a', 3 * 1024));
        r.extend_from_slice(b"\r\nok\r\n0\r\n");
        for i in 0..900 {
            r.extend_from_slice(format!("x-trailer-{i:04}: {}\r\n", "v".repeat(48)).as_bytes());
        }
        r.extend_from_slice(b"\r\n");
        r
    });
    assert_eq!(
        whole_body(FINE.as_slice()).await.as_deref(),
        Some(&b"ok"[..])
    );
    assert_eq!(
        whole_body(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n")
            .await,
        None,
        "a chunk size that is not hex"
    );
}
