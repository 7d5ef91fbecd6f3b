//! ficus's own HTTP/1.1 server loop (bodiless requests on plain listeners) over raw client
//! sockets: HTTP/1.0 keep-alive, `Connection: close`, pipelining, HEAD, framing of a body of
//! unknown length (chunked for HTTP/1.1, close-delimited for HTTP/1.0), `Date`, small request
//! bodies read whole, and the hand-over to hyper in the middle of a connection when a request
//! has a large, chunked or slow body.

mod support;

use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn config() -> String {
    "[[listener]]\nbind = \"127.0.0.1:0\"\n[upstream.legacy]\nurl = \"{legacy}\"\n[default]\nlegacy = \"legacy\"\n".into()
}

/// Reads from the socket until `count` whole responses (framed by Content-Length, chunked
/// encoding, or the end of the stream) have arrived; returns them as text.
async fn responses(s: &mut TcpStream, count: usize) -> Vec<String> {
    let mut got: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        // Cut complete responses off the front.
        while let Some(h) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..h]).to_lowercase();
            let start = h + 4;
            let end = if head.starts_with("http/1.1 204") || head.starts_with("http/1.1 304") {
                Some(start)
            } else if let Some(len) = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map(|v| v.trim().parse::<usize>().unwrap())
            {
                (got.len() >= start + len).then_some(start + len)
            } else if head.contains("transfer-encoding: chunked") {
                got[start..]
                    .windows(5)
                    .position(|w| w == b"0\r\n\r\n")
                    .map(|e| start + e + 5)
            } else {
                None // until close
            };
            match end {
                Some(e) => out.push(
                    String::from_utf8_lossy(&got.drain(..e).collect::<Vec<_>>()).into_owned(),
                ),
                None => break,
            }
            if out.len() == count {
                return out;
            }
        }
        let n = tokio::time::timeout_at(deadline, s.read(&mut buf))
            .await
            .expect("responses in time")
            .unwrap();
        if n == 0 {
            if !got.is_empty() {
                out.push(String::from_utf8_lossy(&got).into_owned());
            }
            return out;
        }
        got.extend_from_slice(&buf[..n]);
    }
}

/// Whether the gateway closed the connection (reads the end of the stream in time).
async fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn http_1_0_keep_alive_and_close() {
    let legacy = Upstream::start("legacy").await;
    let gw = TestGateway::start(&config(), &[("legacy", legacy.url())]).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    for i in 0..3 {
        s.write_all(
            format!("GET /ka/{i} HTTP/1.0\r\nHost: x\r\nConnection: Keep-Alive\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let r = responses(&mut s, 1).await;
        assert!(r[0].starts_with("HTTP/1.1 200 OK\r\n"), "{}", r[0]);
        assert!(
            r[0].to_lowercase().contains("connection: keep-alive"),
            "{}",
            r[0]
        );
        assert!(r[0].ends_with("legacy"), "{}", r[0]);
    }
    s.write_all(b"GET /plain HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let r = responses(&mut s, 1).await;
    assert!(r[0].starts_with("HTTP/1.1 200 OK\r\n"), "{}", r[0]);
    assert!(
        r[0].to_lowercase().contains("connection: close"),
        "{}",
        r[0]
    );
    assert!(closed(&mut s).await, "HTTP/1.0 without keep-alive closes");
    assert_eq!(legacy.hits(), 4);
}

#[tokio::test]
async fn connection_close_is_honoured_and_answers_carry_date_and_length() {
    let legacy = Upstream::start("legacy").await;
    let gw = TestGateway::start(&config(), &[("legacy", legacy.url())]).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let r = responses(&mut s, 1).await;
    let lower = r[0].to_lowercase();
    assert!(lower.contains("connection: close"), "{}", r[0]);
    assert!(lower.contains("\r\ndate: "), "{}", r[0]);
    assert!(lower.contains("content-length: 6\r\n"), "{}", r[0]);
    assert!(closed(&mut s).await);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let legacy = Upstream::start("legacy").await;
    let gw = TestGateway::start(&config(), &[("legacy", legacy.url())]).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(
        b"GET /status/201 HTTP/1.1\r\nHost: x\r\n\r\nGET /status/202 HTTP/1.1\r\nHost: x\r\n\r\nGET /status/203 HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await
    .unwrap();
    let r = responses(&mut s, 3).await;
    assert_eq!(r.len(), 3, "{r:?}");
    assert!(r[0].starts_with("HTTP/1.1 201 "), "{}", r[0]);
    assert!(r[1].starts_with("HTTP/1.1 202 "), "{}", r[1]);
    assert!(r[2].starts_with("HTTP/1.1 203 "), "{}", r[2]);
    assert_eq!(legacy.hits(), 3);
}

#[tokio::test]
async fn a_head_answer_keeps_its_length_and_sends_no_body() {
    let legacy = Upstream::start("legacy").await;
    let gw = TestGateway::start(&config(), &[("legacy", legacy.url())]).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8(got).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_lowercase().contains("content-length: 6"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "no body after the head: {head}");
    // The next answer on the same connection starts right away: no body bytes were sent.
    s.write_all(b"GET /status/202 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let r = responses(&mut s, 1).await;
    assert!(r[0].starts_with("HTTP/1.1 202 "), "{}", r[0]);
}

#[tokio::test]
async fn a_body_of_unknown_length_is_chunked_for_1_1_and_close_delimited_for_1_0() {
    let up = raw(script(|_| {
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".to_vec(),
            false,
        )
    }))
    .await;
    let gw = TestGateway::start(&config(), &[("legacy", up.url.clone())]).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let r = responses(&mut s, 1).await;
    assert!(
        r[0].to_lowercase().contains("transfer-encoding: chunked"),
        "{}",
        r[0]
    );
    let body = r[0].split_once("\r\n\r\n").unwrap().1;
    let decoded: String = {
        let mut rest = body;
        let mut out = String::new();
        loop {
            let (size, after) = rest.split_once("\r\n").unwrap();
            let n = usize::from_str_radix(size, 16).unwrap();
            if n == 0 {
                break out;
            }
            out.push_str(&after[..n]);
            rest = &after[n + 2..];
        }
    };
    assert_eq!(decoded, "hello world");

    let mut old = TcpStream::connect(gw.addr).await.unwrap();
    old.write_all(b"GET /c HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
        .await
        .unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), old.read_to_end(&mut all))
        .await
        .expect("the gateway closes to end the body")
        .unwrap();
    let text = String::from_utf8(all).unwrap();
    assert!(!text.to_lowercase().contains("chunked"), "{text}");
    assert!(text.to_lowercase().contains("connection: close"), "{text}");
    assert!(text.ends_with("\r\n\r\nhello world"), "{text}");
}

#[tokio::test]
async fn a_large_or_chunked_body_hands_the_connection_to_hyper_midway() {
    let legacy = Upstream::start("legacy").await;
    let gw = TestGateway::start(&config(), &[("legacy", legacy.url())]).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(responses(&mut s, 1).await[0].starts_with("HTTP/1.1 200"));
    // A POST with a body over the inline limit and a GET right behind it, in one write:
    // both answered in order.
    let big = ficus_proxy::h1server::MAX_INLINE_REQUEST_BODY + 1;
    let mut msg =
        format!("POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: {big}\r\n\r\n").into_bytes();
    msg.extend(std::iter::repeat_n(b'b', big));
    msg.extend_from_slice(b"GET /third HTTP/1.1\r\nHost: x\r\n\r\n");
    s.write_all(&msg).await.unwrap();
    let r = responses(&mut s, 2).await;
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(r[0].starts_with("HTTP/1.1 200"), "{}", r[0]);
    assert!(
        r[0].to_lowercase().contains(&format!("x-body-len: {big}")),
        "{}",
        r[0]
    );
    assert!(r[1].starts_with("HTTP/1.1 200"), "{}", r[1]);
    assert_eq!(legacy.hits(), 3);
    assert_eq!(legacy.last().path, "/third");

    // A chunked body on a fresh connection: hyper's too.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        .await
        .unwrap();
    let r = responses(&mut s, 1).await;
    assert!(r[0].starts_with("HTTP/1.1 200"), "{}", r[0]);
    assert!(r[0].ends_with("\r\n\r\nhello"), "{}", r[0]);
}

#[tokio::test]
async fn a_small_body_is_read_whole_and_pipelined_requests_behind_it_are_kept() {
    let legacy = Upstream::start("legacy").await;
    let gw = TestGateway::start(&config(), &[("legacy", legacy.url())]).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    // A POST with a body, a GET and another POST right behind it, in one write.
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /third HTTP/1.1\r\nHost: x\r\n\r\nPUT /echo HTTP/1.1\r\nHost: x\r\ncontent-length: 3\r\n\r\nabc")
        .await
        .unwrap();
    let r = responses(&mut s, 3).await;
    assert_eq!(r.len(), 3, "{r:?}");
    assert!(r[0].starts_with("HTTP/1.1 200"), "{}", r[0]);
    assert!(r[0].ends_with("\r\n\r\nhello"), "{}", r[0]);
    assert!(r[1].starts_with("HTTP/1.1 200"), "{}", r[1]);
    assert!(r[2].ends_with("\r\n\r\nabc"), "{}", r[2]);
    let seen = legacy.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert_eq!((seen[0].method.as_str(), seen[0].body_len), ("POST", 5));
    assert_eq!(seen[0].headers["content-length"], "5");
    assert_eq!((seen[1].method.as_str(), seen[1].body_len), ("GET", 0));
    assert_eq!((seen[2].method.as_str(), seen[2].body_len), ("PUT", 3));

    // A body at the inline limit exactly, arriving in pieces well apart: the loop waits for
    // the rest of it.
    let max = ficus_proxy::h1server::MAX_INLINE_REQUEST_BODY;
    let body: Vec<u8> = (0..max).map(|i| b'a' + (i % 26) as u8).collect();
    s.write_all(
        format!("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {max}\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    for piece in body.chunks(max / 4) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.write_all(piece).await.unwrap();
    }
    let r = responses(&mut s, 1).await;
    assert!(r[0].starts_with("HTTP/1.1 200"), "{}", r[0]);
    assert!(r[0].as_bytes().ends_with(&body), "the body came back whole");
    assert_eq!(legacy.last().body_len, max);
}

#[tokio::test]
async fn a_body_slower_than_the_header_read_timeout_is_streamed_by_hyper() {
    let legacy = Upstream::start("legacy").await;
    let toml = format!("[gateway]\nheader_read_timeout = \"300ms\"\n{}", config());
    let gw = TestGateway::start(&toml, &[("legacy", legacy.url())]).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
        .await
        .unwrap();
    // Past the header read timeout: the connection is not dropped, hyper takes the request
    // (head and the half body already read) and waits for the rest.
    tokio::time::sleep(Duration::from_millis(700)).await;
    s.write_all(b"world").await.unwrap();
    let r = responses(&mut s, 1).await;
    assert!(r[0].starts_with("HTTP/1.1 200"), "{}", r[0]);
    assert!(r[0].ends_with("\r\n\r\nhelloworld"), "{}", r[0]);
}

#[tokio::test]
async fn a_small_body_over_the_route_limit_gets_413_and_the_connection_goes_on() {
    let legacy = Upstream::start("legacy").await;
    let toml = "[[listener]]\nbind = \"127.0.0.1:0\"\n[upstream.legacy]\nurl = \"{legacy}\"\n[[route]]\nname = \"small\"\npath_prefix = \"/small\"\nlegacy = \"legacy\"\nmax_body = \"4B\"\n[default]\nlegacy = \"legacy\"\n";
    let gw = TestGateway::start(toml, &[("legacy", legacy.url())]).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let r = responses(&mut s, 2).await;
    assert!(r[0].starts_with("HTTP/1.1 413"), "{}", r[0]);
    assert!(r[0].contains("application/problem+json"), "{}", r[0]);
    assert!(r[1].starts_with("HTTP/1.1 200"), "{}", r[1]);
    assert_eq!(legacy.hits(), 1, "the refused body never went upstream");
    assert_eq!(legacy.last().path, "/after");
}

#[tokio::test]
async fn more_than_100_request_headers_get_431() {
    let legacy = Upstream::start("legacy").await;
    let gw = TestGateway::start(&config(), &[("legacy", legacy.url())]).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let mut req = String::from("GET /many HTTP/1.1\r\nHost: x\r\n");
    for i in 0..120 {
        req.push_str(&format!("x-h{i}: v\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let r = responses(&mut s, 1).await;
    assert!(r[0].starts_with("HTTP/1.1 431"), "{}", r[0]);
    assert_eq!(legacy.hits(), 0);
    // Under the limit is fine (90 here: the test upstream, itself limited to 100, also gets
    // the four headers ficus adds).
    let mut ok = TcpStream::connect(gw.addr).await.unwrap();
    let mut req = String::from("GET /ninety HTTP/1.1\r\nHost: x\r\n");
    for i in 0..89 {
        req.push_str(&format!("x-h{i}: v\r\n"));
    }
    req.push_str("\r\n");
    ok.write_all(req.as_bytes()).await.unwrap();
    let r = responses(&mut ok, 1).await;
    assert!(r[0].starts_with("HTTP/1.1 200"), "{}", r[0]);
}

#[tokio::test]
async fn a_client_that_goes_away_mid_request_frees_its_connection_at_once() {
    let legacy = Upstream::start("legacy").await;
    let gw = TestGateway::start(&config(), &[("legacy", legacy.url())]).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /sleep/3000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // The request is in flight (the upstream sleeps 3 s); the client leaves.
    for _ in 0..100 {
        if legacy.hits() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(legacy.hits(), 1);
    assert_eq!(gw.gateway().open_connections(), 1);
    drop(s);
    let t = tokio::time::Instant::now();
    while gw.gateway().open_connections() > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "the gateway still holds the connection of a client that left"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn upstream_header_lines_pass_as_they_came_without_their_hop_by_hop_ones() {
    let up = raw(script(|req| {
        let path = req.split(' ').nth(1).unwrap_or("");
        let answer: &[u8] = match path {
            // Hop-by-hop lines between kept ones; repeated fields; names in any case.
            "/plain" => b"HTTP/1.1 200 OK\r\nServer: up\r\nKeep-Alive: timeout=5\r\nSet-Cookie: a=1\r\nConnection: keep-alive\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\nX-Case: MiXeD\r\n\r\nok",
            "/dated" => b"HTTP/1.1 200 OK\r\nDate: Sat, 01 Jan 2000 00:00:00 GMT\r\nContent-Length: 2\r\n\r\nok",
            "/chunked" => b"HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\nX-B: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            // These take the header map's way (see h1::raw_lines).
            "/named" => b"HTTP/1.1 200 OK\r\nConnection: x-secret\r\nX-Secret: 1\r\nContent-Length: 2\r\n\r\nok",
            "/bare-lf" => b"HTTP/1.1 200 OK\nX-Lf: 1\nContent-Length: 2, 2\n\nok",
            _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        };
        (answer.to_vec(), false)
    }))
    .await;
    let gw = TestGateway::start(&config(), &[("legacy", up.url.clone())]).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let mut pipelined = String::new();
    for p in ["/plain", "/dated", "/chunked", "/named", "/bare-lf"] {
        pipelined.push_str(&format!("GET {p} HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
    s.write_all(pipelined.as_bytes()).await.unwrap();
    let r = responses(&mut s, 5).await;
    assert_eq!(r.len(), 5, "{r:?}");
    let lines = |resp: &str| -> Vec<String> {
        let head = &resp[..resp.find("\r\n\r\n").unwrap()];
        assert!(!head.contains("\n\n") && !head.replace("\r\n", "").contains('\n'));
        head.split("\r\n").skip(1).map(str::to_owned).collect()
    };
    let count = |l: &[String], name: &str| {
        l.iter()
            .filter(|h| h.to_lowercase().starts_with(&format!("{name}:")))
            .count()
    };

    let plain = lines(&r[0]);
    assert!(r[0].starts_with("HTTP/1.1 200 OK\r\n") && r[0].ends_with("\r\n\r\nok"));
    assert_eq!(
        plain[..5],
        [
            "Server: up",
            "Set-Cookie: a=1",
            "Set-Cookie: b=2",
            "Content-Length: 2",
            "X-Case: MiXeD"
        ],
        "{plain:?}"
    );
    assert_eq!(count(&plain, "keep-alive") + count(&plain, "connection"), 0);
    assert_eq!(
        (count(&plain, "content-length"), count(&plain, "date")),
        (1, 1)
    );

    let dated = lines(&r[1]);
    assert_eq!(count(&dated, "date"), 1, "{dated:?}");
    assert!(dated.contains(&"Date: Sat, 01 Jan 2000 00:00:00 GMT".to_owned()));

    let chunked = lines(&r[2]);
    assert!(r[2].ends_with("\r\n\r\n2\r\nok\r\n0\r\n\r\n"), "{}", r[2]);
    assert_eq!(chunked[..2], ["X-A: 1", "X-B: 2"], "{chunked:?}");
    assert_eq!(count(&chunked, "transfer-encoding"), 1);

    let named = lines(&r[3]);
    assert_eq!(count(&named, "x-secret") + count(&named, "connection"), 0);
    assert!(r[3].ends_with("\r\n\r\nok"));

    let bare = lines(&r[4]);
    assert!(bare.contains(&"x-lf: 1".to_owned()), "{bare:?}");
    assert!(bare.contains(&"content-length: 2".to_owned()), "{bare:?}");
    assert_eq!(up.conns.load(std::sync::atomic::Ordering::SeqCst), 1);
}
