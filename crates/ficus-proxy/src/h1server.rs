//! ficus's own HTTP/1.1 server loop for plain-TCP client connections, for the requests that
//! are most of a proxy's traffic: HTTP/1.x requests without a body (GET, HEAD, DELETE, ...)
//! or with a small one (an API's POST or PUT).
//!
//! Why: hyper's server connection (dispatcher, header map building, encoder, flush, timers)
//! cost about 5,500 instructions per proxied request more than this loop, a quarter of what
//! nginx spends on the whole request (bench/README.md). This loop reads a request head, parses it with
//! `httparse`, hands it to the same request path as hyper's (`proxy::handle_parts`), and
//! writes the response head and body with as few copies and system calls as it can.
//!
//! A body announced by `Content-Length` and no larger than [`MAX_INLINE_REQUEST_BODY`]
//! (16 KiB) is read whole before the request is routed (a slice of the read buffer, no
//! copy), then goes upstream in the same write as its head. It must arrive within the header
//! read timeout counted from the start of the request; a slower one is handed to hyper with
//! what has arrived, and hyper streams the rest, so a slow upload is never cut off here.
//!
//! Everything else goes to hyper, with the bytes read so far: a larger body, a chunked one
//! (`Transfer-Encoding`), a `Content-Length` list or conflict, `Expect`, `Upgrade`, HTTP/0.9 or
//! 2+ on the request line, absolute-form or `CONNECT` targets, the whole HTTP/2 preface (h2c; a
//! part of it waits here under the header read timeout, like any incomplete head), a head over
//! `max_header_bytes` or with more than [`MAX_HEADERS`] fields, or anything that does not
//! parse. hyper then serves the rest of that connection, with its own limits and error
//! responses (400, 431), exactly as before. TLS listeners are hyper's throughout.
//!
//! What this loop does itself: the header read timeout (per request head, idle keep-alive
//! time included), keep-alive (HTTP/1.0 only when asked) and `Connection: close`, pipelined
//! requests (answered in order), a client that goes away mid-request (the request is
//! dropped), `Date`, response framing (`Content-Length` from the body's exact size,
//! otherwise chunked; none for HEAD, 1xx, 204 and 304), and graceful shutdown (the request in
//! flight finishes, then the connection closes).

use std::mem::MaybeUninit;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, EXPECT, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body::Body as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::body::ResponseBody;
use crate::h1::{chunk_size_line, parse_length, restore_front, INLINE_BODY, READ_ROOM};
use crate::proxy::{ConnInfo, Inbound, Shared};

/// More header fields than this go to hyper (which answers 431).
pub const MAX_HEADERS: usize = 100;
/// A request body announced by `Content-Length` and no larger than this is read whole here,
/// then sent upstream with its head; a larger or chunked one goes to hyper, which streams it.
pub const MAX_INLINE_REQUEST_BODY: usize = INLINE_BODY;
/// A header map that is done with (a request's once it was written upstream, a response's
/// once it was written to the client) is kept, emptied, for a request the worker reads next
/// when it has room for no more than this many fields: the usual message reuses a map
/// instead of allocating two tables, and one outsized message does not pin its memory.
const SPARE_MAP_CAPACITY: usize = 64;
/// The most emptied header maps a worker keeps (see [`SPARE_MAP_CAPACITY`]).
const SPARE_MAPS: usize = 64;

thread_local! {
    static SPARES: std::cell::RefCell<Vec<HeaderMap>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Keeps `headers`, emptied, for a request this worker reads next (when it is not outsized
/// and the worker does not hold [`SPARE_MAPS`] already).
pub(crate) fn recycle_map(mut headers: HeaderMap) {
    let cap = headers.capacity();
    if cap == 0 || cap > SPARE_MAP_CAPACITY {
        return;
    }
    headers.clear();
    SPARES.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < SPARE_MAPS {
            s.push(headers);
        }
    });
}

/// An emptied header map kept by [`recycle_map`], if any.
fn spare_map() -> Option<HeaderMap> {
    SPARES.with(|s| s.borrow_mut().pop())
}

/// How a connection left this loop.
pub enum Ended {
    Closed,
    /// hyper takes over: the stream and the bytes already read from it (not yet answered).
    Handover(TcpStream, Bytes),
}

/// What the parser made of the buffered bytes. (A return value that lives for one match:
/// boxing the request's parts would only add an allocation per request.)
#[allow(clippy::large_enum_variant)]
enum Parsed {
    /// The request, whether the connection stays open after it, whether it is HTTP/1.0, and
    /// its body (when it has one).
    Request(http::request::Parts, bool, bool, Option<Bytes>),
    /// A whole head whose (small) body has not all arrived: the buffer needs this many bytes.
    NeedBody(usize),
    NeedMore,
    Hyper,
}

/// Serves requests until the connection ends or a request needs hyper.
pub async fn serve(
    mut stream: TcpStream,
    conn: &Arc<ConnInfo>,
    shared: &Arc<Shared>,
    stop: &mut tokio::sync::oneshot::Receiver<()>,
    header_read_timeout: Duration,
    max_header_bytes: usize,
    send_timeout: Duration,
) -> Ended {
    let mut rbuf = BytesMut::with_capacity(READ_ROOM);
    let mut wbuf: Vec<u8> = Vec::with_capacity(2048);
    // While a small body is on its way: the buffer length that holds the request whole.
    let mut need = 0;
    let timer = tokio::time::sleep(header_read_timeout);
    tokio::pin!(timer);
    loop {
        timer
            .as_mut()
            .reset(tokio::time::Instant::now() + header_read_timeout);
        let (parts, keep_alive, http10, body) = loop {
            if !rbuf.is_empty() && rbuf.len() >= need {
                match h2_preface(&rbuf) {
                    // h2c by prior knowledge: hyper's from here on.
                    Preface::Whole => return Ended::Handover(stream, rbuf.freeze()),
                    // Part of it: wait for the rest under the header read timeout, as for
                    // any incomplete head (hyper's version detection would wait forever).
                    Preface::Part => {}
                    Preface::No => match parse(&mut rbuf, max_header_bytes) {
                        Parsed::Request(parts, keep_alive, http10, body) => {
                            need = 0;
                            break (parts, keep_alive, http10, body);
                        }
                        Parsed::NeedBody(total) => need = total,
                        Parsed::Hyper => return Ended::Handover(stream, rbuf.freeze()),
                        Parsed::NeedMore if rbuf.len() > max_header_bytes => {
                            return Ended::Handover(stream, rbuf.freeze())
                        }
                        Parsed::NeedMore => {}
                    },
                }
            }
            if need > rbuf.len() {
                rbuf.reserve(need - rbuf.len());
            } else if rbuf.capacity() - rbuf.len() < READ_ROOM / 2 {
                rbuf.reserve(READ_ROOM);
            }
            tokio::select! {
                biased;
                r = stream.read_buf(&mut rbuf) => match r {
                    Ok(0) | Err(_) => return Ended::Closed,
                    Ok(_) => {}
                },
                // A body slower than the header read timeout is hyper's to stream (it has
                // its head already); a head that slow ends the connection.
                _ = &mut timer => return if need > 0 {
                    Ended::Handover(stream, rbuf.freeze())
                } else {
                    Ended::Closed
                },
                _ = &mut *stop => return Ended::Closed,
            }
        };
        let head_request = parts.method == Method::HEAD;
        let inbound = body.map_or(Inbound::Empty, Inbound::Full);
        let handled = crate::proxy::handle_parts(shared, conn, parts, inbound, false, None, true);
        tokio::pin!(handled);
        // While the request is in flight, watch the client: if it goes away, the request is
        // dropped (its upstream call with it), as hyper does. Bytes of a pipelined request
        // are kept for later, up to the head limit.
        let resp = loop {
            tokio::select! {
                biased;
                resp = &mut handled => break resp,
                // `poll_read_ready` takes the stream's single reader slot: no waiter list.
                ready = std::future::poll_fn(|cx| stream.poll_read_ready(cx)),
                    if rbuf.len() <= max_header_bytes =>
                {
                    if ready.is_err() {
                        return Ended::Closed;
                    }
                    if rbuf.capacity() - rbuf.len() < READ_ROOM / 2 {
                        rbuf.reserve(READ_ROOM);
                    }
                    match stream.try_read_buf(&mut rbuf) {
                        Ok(0) => return Ended::Closed,
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => return Ended::Closed,
                    }
                }
            }
        };
        // Graceful shutdown: the request in flight is answered, then the connection closes.
        let stopping = !matches!(
            stop.try_recv(),
            Err(tokio::sync::oneshot::error::TryRecvError::Empty)
        );
        let keep_alive = keep_alive && !stopping;
        let written = write_response(
            &mut stream,
            &mut wbuf,
            resp,
            head_request,
            keep_alive,
            http10,
            send_timeout,
        )
        .await;
        if !matches!(written, Ok(true)) {
            let _ = stream.shutdown().await;
            return Ended::Closed;
        }
    }
}

/// How the buffer compares with the HTTP/2 connection preface.
#[derive(Debug, PartialEq, Eq)]
enum Preface {
    /// It starts with the whole preface: an h2c client with prior knowledge.
    Whole,
    /// It is a strict prefix of the preface: more bytes decide.
    Part,
    No,
}

/// The HTTP/2 client connection preface (RFC 9113 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether the buffer holds the HTTP/2 connection preface, part of it, or something else.
/// Only the whole preface goes to hyper: a prefix of it waits here, under the header read
/// timeout, so that a client sending `P` and nothing more is closed like any slow head.
fn h2_preface(buf: &[u8]) -> Preface {
    // The usual first byte of an HTTP/1 request decides at once.
    if buf.first() != Some(&b'P') || buf.get(1).is_some_and(|&b| b != b'R') {
        return Preface::No;
    }
    let n = buf.len().min(H2_PREFACE.len());
    match (buf[..n] == H2_PREFACE[..n], n == H2_PREFACE.len()) {
        (true, true) => Preface::Whole,
        (true, false) => Preface::Part,
        (false, _) => Preface::No,
    }
}

/// Parses one request head from the front of `rbuf`, taking it (and its body) out of the
/// buffer when this loop can serve it. Header values and the body become slices of the
/// buffer's bytes.
fn parse(rbuf: &mut BytesMut, max_head: usize) -> Parsed {
    let all = rbuf.split().freeze();
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_request_with_uninit_headers(&mut req, &all, &mut slots)
    {
        // hyper answers an oversized head with 431.
        Ok(httparse::Status::Complete(len)) if len <= max_head => len,
        Ok(httparse::Status::Complete(_)) => {
            restore_front(rbuf, all);
            return Parsed::Hyper;
        }
        Ok(httparse::Status::Partial) => {
            restore_front(rbuf, all);
            return Parsed::NeedMore;
        }
        Err(_) => {
            restore_front(rbuf, all);
            return Parsed::Hyper;
        }
    };
    let built = build(&all, &req);
    let Some((parts, keep_alive, http10, body_len)) = built else {
        restore_front(rbuf, all);
        return Parsed::Hyper;
    };
    let end = len + body_len;
    if all.len() < end {
        recycle_map(parts.headers);
        restore_front(rbuf, all);
        return Parsed::NeedBody(end);
    }
    let body = (body_len > 0).then(|| all.slice(len..end));
    let rest = all.slice(end..);
    drop(all);
    if !rest.is_empty() {
        // A pipelined request behind this one.
        restore_front(rbuf, rest);
    }
    Parsed::Request(parts, keep_alive, http10, body)
}

/// The request's parts, whether the connection stays open, whether it is HTTP/1.0, and the
/// length of its body; `None` when hyper should serve it.
fn build(
    all: &Bytes,
    req: &httparse::Request<'_, '_>,
) -> Option<(http::request::Parts, bool, bool, usize)> {
    let http10 = match req.version {
        Some(1) => false,
        Some(0) => true,
        _ => return None,
    };
    let method = Method::from_bytes(req.method?.as_bytes()).ok()?;
    if method == Method::CONNECT {
        return None;
    }
    let path = req.path?;
    if !path.starts_with('/') {
        return None;
    }
    let uri = Uri::from_maybe_shared(all.slice_ref(path.as_bytes())).ok()?;
    // Room for the headers ficus adds on the way (`X-Forwarded-*`, `X-Request-Id`).
    let room = req.headers.len() + 4;
    let mut headers = match spare_map() {
        Some(mut h) => {
            h.reserve(room);
            h
        }
        None => HeaderMap::with_capacity(room),
    };
    // HTTP/1.1 stays open unless told otherwise; HTTP/1.0 only when asked to.
    let mut keep_alive = !http10;
    let mut length: Option<u64> = None;
    for h in req.headers.iter() {
        let name = crate::headers::wire_name(h.name.as_bytes()).ok()?;
        if name == CONTENT_LENGTH {
            // A repeated field or a list ("5, 5"), even of one value, an invalid value, or a
            // body over the inline limit is hyper's to judge: forwarded here, a repeat would
            // reach the upstream as it came.
            if length.is_some() || h.value.contains(&b',') {
                return None;
            }
            let n = parse_length(h.value)?;
            if n > MAX_INLINE_REQUEST_BODY as u64 {
                return None;
            }
            length = Some(n);
        } else if name == TRANSFER_ENCODING || name == EXPECT || name == UPGRADE {
            return None;
        } else if name == CONNECTION {
            for t in h.value.split(|&b| b == b',') {
                let t = t.trim_ascii();
                if t.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if http10 && t.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                } else if t.eq_ignore_ascii_case(b"upgrade") {
                    return None;
                }
            }
        }
        let value = HeaderValue::from_maybe_shared(all.slice_ref(h.value)).ok()?;
        headers.append(name, value);
    }
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    if http10 {
        *request.version_mut() = http::Version::HTTP_10;
    }
    let (parts, ()) = request.into_parts();
    let body_len = usize::try_from(length.unwrap_or(0)).ok()?;
    Some((parts, keep_alive, http10, body_len))
}

/// Writes a response: the head (with `Date` and framing), then the body. `Ok(true)`: the
/// connection can carry another request.
async fn write_response(
    stream: &mut TcpStream,
    w: &mut Vec<u8>,
    resp: Response<ResponseBody>,
    head_request: bool,
    keep_alive: bool,
    http10: bool,
    send_timeout: Duration,
) -> std::io::Result<bool> {
    let (parts, mut body) = resp.into_parts();
    // An upstream's header lines as they came (their hop-by-hop headers left out already);
    // the map then holds only what ficus added.
    let raw = body.take_raw();
    let status = parts.status;
    w.clear();
    w.extend_from_slice(b"HTTP/1.1 ");
    w.extend_from_slice(status.as_str().as_bytes());
    w.push(b' ');
    w.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    w.extend_from_slice(b"\r\n");
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    // HEAD and 304 keep the headers that describe the representation as they are.
    let framed = !bodiless && !head_request;
    let exact = body.size_hint().exact();
    let mut has_date = false;
    let mut declared: Option<u64> = None;
    let mut raw_length = false;
    if let Some(r) = &raw {
        w.extend_from_slice(&r.lines);
        has_date = r.has_date;
        raw_length = r.has_length;
    }
    for (name, value) in &parts.headers {
        if name == DATE {
            has_date = true;
        } else if framed && name == CONTENT_LENGTH {
            // Re-written below from the body itself.
            declared = std::str::from_utf8(value.as_bytes())
                .ok()
                .and_then(|v| v.trim().parse().ok());
            continue;
        } else if name == TRANSFER_ENCODING || name == CONNECTION {
            continue;
        }
        w.extend_from_slice(name.as_str().as_bytes());
        w.extend_from_slice(b": ");
        w.extend_from_slice(value.as_bytes());
        w.extend_from_slice(b"\r\n");
    }
    if !has_date {
        w.extend_from_slice(b"date: ");
        date(w);
        w.extend_from_slice(b"\r\n");
    }
    let length = exact.or(declared);
    // An HTTP/1.0 client cannot read chunks: a body of unknown length ends with the
    // connection.
    let keep_alive = keep_alive && !(framed && http10 && length.is_none());
    let chunked = framed && !http10 && length.is_none();
    if !keep_alive {
        w.extend_from_slice(b"connection: close\r\n");
    } else if http10 {
        w.extend_from_slice(b"connection: keep-alive\r\n");
    }
    if framed {
        // A Content-Length among the raw lines frames the body already.
        if let Some(n) = length.filter(|_| !raw_length) {
            w.extend_from_slice(b"content-length: ");
            w.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            w.extend_from_slice(b"\r\n");
        } else if chunked {
            w.extend_from_slice(b"transfer-encoding: chunked\r\n");
        }
    }
    w.extend_from_slice(b"\r\n");
    recycle_map(parts.headers);
    if !framed {
        send(stream, w, send_timeout).await?;
        return Ok(keep_alive);
    }
    // `w` holds what is not sent yet: the head, then small frames (and chunk framing) ride
    // along with it, so a small response goes out in one write.
    loop {
        let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await;
        let data = match frame {
            None => break,
            // Headers may be out already: close so the client sees a broken response.
            Some(Err(e)) => return Err(std::io::Error::other(e)),
            Some(Ok(f)) => match f.into_data() {
                Ok(d) if !d.is_empty() => d,
                _ => continue,
            },
        };
        if w.is_empty() && !chunked {
            send(stream, &data, send_timeout).await?;
            continue;
        }
        if chunked {
            let mut line = [0u8; 18];
            let n = chunk_size_line(data.len(), &mut line);
            w.extend_from_slice(&line[..n]);
        }
        if data.len() <= INLINE_BODY {
            w.extend_from_slice(&data);
            if chunked {
                w.extend_from_slice(b"\r\n");
            }
            if body.is_end_stream() {
                break;
            }
            send(stream, w, send_timeout).await?;
            w.clear();
        } else {
            send(stream, w, send_timeout).await?;
            w.clear();
            send(stream, &data, send_timeout).await?;
            if chunked {
                w.extend_from_slice(b"\r\n");
            }
        }
    }
    if chunked {
        w.extend_from_slice(b"0\r\n\r\n");
    }
    if !w.is_empty() {
        send(stream, w, send_timeout).await?;
    }
    Ok(keep_alive)
}

/// Writes all of `buf` to the client. A write the socket takes at once costs what
/// `write_all` costs, and no timer; only when the client's receive window is full does a
/// timer start: no byte taken within `send_timeout` (nginx's `send_timeout`) ends the
/// connection.
async fn send(
    stream: &mut TcpStream,
    mut buf: &[u8],
    send_timeout: Duration,
) -> std::io::Result<()> {
    while !buf.is_empty() {
        match stream.try_write(buf) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                Box::pin(writable(stream, send_timeout)).await?
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Waits until the client takes bytes again, at most `send_timeout`.
#[cold]
#[inline(never)]
async fn writable(stream: &TcpStream, send_timeout: Duration) -> std::io::Result<()> {
    match tokio::time::timeout(send_timeout, stream.writable()).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the client read nothing within send_timeout",
        )),
    }
}

/// The current time as an IMF-fixdate, formatted once per second per thread.
fn date(w: &mut Vec<u8>) {
    use std::cell::RefCell;
    thread_local! {
        static CACHED: RefCell<(u64, [u8; 29])> = const { RefCell::new((0, [0; 29])) };
    }
    let now = std::time::SystemTime::now();
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHED.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            let s = httpdate::fmt_http_date(now);
            if s.len() == 29 {
                c.1.copy_from_slice(s.as_bytes());
                c.0 = secs;
            } else {
                w.extend_from_slice(s.as_bytes());
                return;
            }
        }
        w.extend_from_slice(&c.1);
    });
}

/// A client connection hyper serves: first the bytes already read from it (handed over by
/// this loop), and writes under `send_timeout` (a write the client leaves pending that long
/// fails, which ends hyper's connection). Also wraps TLS connections, with no prefix.
pub struct Prefixed<S> {
    prefix: Bytes,
    stream: S,
    send_timeout: Duration,
    /// Started when a write finds the client's window full; reset by any progress.
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    armed: bool,
}

impl<S> Prefixed<S> {
    pub fn new(prefix: Bytes, stream: S, send_timeout: Duration) -> Prefixed<S> {
        Prefixed {
            prefix,
            stream,
            send_timeout,
            timer: None,
            armed: false,
        }
    }

    /// A write or flush returned `polled`: a pending one counts against `send_timeout`.
    fn watch<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::future::Future;
        if polled.is_ready() {
            self.armed = false;
            return polled;
        }
        if !self.armed {
            let deadline = tokio::time::Instant::now() + self.send_timeout;
            match &mut self.timer {
                Some(t) => t.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.armed = true;
        }
        match self.timer.as_mut().map(|t| t.as_mut().poll(cx)) {
            Some(std::task::Poll::Ready(())) => std::task::Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client read nothing within send_timeout",
            ))),
            _ => std::task::Poll::Pending,
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Prefixed<S> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix.split_to(n));
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.stream).poll_write(cx, buf);
        this.watch(cx, polled)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.stream).poll_flush(cx);
        this.watch(cx, polled)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// What the fuzz target (`fuzz/fuzz_targets/h1_server.rs`) drives: the own loop's parser over
/// a buffer of pipelined requests, as the loop calls it. Only with `--cfg fuzzing`.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    /// Parses `input` as the loop would: request after request while they parse here, each
    /// time checking what the loop relies on (bytes left for hyper or for more reading are
    /// left as they were; a request takes bytes off the front). Returns the requests served.
    pub fn parse_all(input: &[u8], max_head: usize) -> usize {
        let max_head = max_head.max(1);
        let mut buf = BytesMut::from(input);
        let mut served = 0;
        loop {
            if buf.is_empty() {
                return served;
            }
            if h2_preface(&buf) != Preface::No {
                return served;
            }
            let before = buf.clone().freeze();
            match parse(&mut buf, max_head) {
                Parsed::Request(parts, _, http10, body) => {
                    assert!(buf.len() < before.len(), "a request took no bytes");
                    assert!(
                        before.ends_with(&buf),
                        "what follows a request stays in order"
                    );
                    assert_eq!(http10, parts.version == http::Version::HTTP_10);
                    assert!(parts.uri.path().starts_with('/'));
                    let len = body.as_ref().map_or(0, |b| b.len());
                    assert!(len <= MAX_INLINE_REQUEST_BODY);
                    if let Some(cl) = parts.headers.get(CONTENT_LENGTH) {
                        assert_eq!(crate::h1::parse_length(cl.as_bytes()), Some(len as u64));
                    } else {
                        assert_eq!(len, 0);
                    }
                    assert!(!parts.headers.contains_key(TRANSFER_ENCODING));
                    served += 1;
                }
                Parsed::NeedBody(total) => {
                    assert!(total > buf.len(), "the whole request was there");
                    assert_eq!(buf, before, "nothing taken while the body is on its way");
                    return served;
                }
                Parsed::NeedMore | Parsed::Hyper => {
                    assert_eq!(buf, before, "the bytes are left as they came");
                    return served;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h2_preface_is_recognised_only_whole() {
        assert_eq!(
            h2_preface(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            Preface::Whole
        );
        assert_eq!(
            h2_preface(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0"),
            Preface::Whole
        );
        for part in [
            &b"P"[..],
            b"PR",
            b"PRI * HTTP/2.0\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n",
        ] {
            assert_eq!(h2_preface(part), Preface::Part, "{part:?}");
        }
        for no in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"POST / HTTP/1.1\r\n",
            b"PUT / HTTP/1.1\r\n",
            b"PRIX / HTTP/1.1\r\n",
            b"PRI * HTTP/2.0\r\n\r\nXX",
        ] {
            assert_eq!(h2_preface(no), Preface::No, "{no:?}");
        }
    }

    #[test]
    fn maps_are_kept_emptied_unless_outsized_or_too_many() {
        // Each test runs on a thread of its own: this worker's pool starts empty.
        assert!(spare_map().is_none());
        let mut usual = HeaderMap::new();
        usual.insert("server", HeaderValue::from_static("up"));
        recycle_map(usual);
        let kept = spare_map().expect("a small map is kept");
        assert!(kept.is_empty() && kept.capacity() > 0);
        assert!(spare_map().is_none());
        let mut big = HeaderMap::new();
        for i in 0..=SPARE_MAP_CAPACITY {
            big.insert(
                http::HeaderName::try_from(format!("x-{i}")).unwrap(),
                HeaderValue::from_static("v"),
            );
        }
        assert!(big.capacity() > SPARE_MAP_CAPACITY);
        recycle_map(big);
        assert!(spare_map().is_none(), "an outsized map is dropped");
        recycle_map(HeaderMap::new());
        assert!(
            spare_map().is_none(),
            "a map without room is not worth keeping"
        );
        for _ in 0..SPARE_MAPS + 3 {
            recycle_map(HeaderMap::with_capacity(4));
        }
        let mut n = 0;
        while spare_map().is_some() {
            n += 1;
        }
        assert_eq!(n, SPARE_MAPS);
    }

    #[test]
    fn small_bodies_stay_here_whole_or_wait_for_the_rest() {
        let mut b = BytesMut::from(
            &b"POST /o HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n"[..],
        );
        match parse(&mut b, 8192) {
            Parsed::Request(p, true, false, Some(body)) => {
                assert_eq!(p.method, Method::POST);
                assert_eq!(&body[..], b"abc");
            }
            _ => panic!("served here with its body"),
        }
        assert_eq!(&b[..], b"GET / HTTP/1.1\r\n\r\n", "the next request stays");
        let head = b"PUT /o HTTP/1.1\r\nContent-Length: 10\r\n\r\n";
        let mut partial = BytesMut::from(&head[..]);
        partial.extend_from_slice(b"hello");
        assert!(matches!(
            parse(&mut partial, 8192),
            Parsed::NeedBody(n) if n == head.len() + 10
        ));
        assert_eq!(partial.len(), head.len() + 5, "nothing taken yet");
        partial.extend_from_slice(b"world");
        assert!(matches!(
            parse(&mut partial, 8192),
            Parsed::Request(_, _, _, Some(body)) if &body[..] == b"helloworld"
        ));
        assert!(partial.is_empty());
        let over = format!(
            "POST / HTTP/1.1\r\ncontent-length: {}\r\n\r\n",
            MAX_INLINE_REQUEST_BODY + 1
        );
        for hyper in [
            over.as_bytes(),
            b"POST / HTTP/1.1\r\ncontent-length: 3, 3\r\n\r\nabc",
            b"POST / HTTP/1.1\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd",
            b"POST / HTTP/1.1\r\ncontent-length: 3\r\ncontent-length: 3\r\n\r\nabc",
            b"POST / HTTP/1.1\r\ncontent-length: -3\r\n\r\n",
        ] {
            let mut b = BytesMut::from(hyper);
            assert!(matches!(parse(&mut b, 8192), Parsed::Hyper), "{hyper:?}");
            assert_eq!(&b[..], hyper, "the bytes are left for hyper");
        }
    }

    #[test]
    fn only_plain_http_1_x_requests_stay_here() {
        let mut ok = BytesMut::from(
            &b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"[..],
        );
        // A kept map is taken for the request's headers.
        recycle_map(HeaderMap::with_capacity(32));
        match parse(&mut ok, 8192) {
            Parsed::Request(p, ka, http10, body) => {
                assert!(body.is_none());
                assert!(!http10);
                assert_eq!(p.uri.path(), "/a");
                assert_eq!(p.uri.query(), Some("b=1"));
                assert_eq!(p.headers["host"], "x");
                assert_eq!(p.headers.len(), 2, "{:?}", p.headers);
                assert!(p.headers.capacity() >= 32);
                assert!(ka);
            }
            _ => panic!("served here"),
        }
        assert!(spare_map().is_none());
        assert!(ok.is_empty());
        for hyper in [
            &b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"[..],
            b"GET http://x/ HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
            b"PUT / HTTP/1.1\r\nexpect: 100-continue\r\ncontent-length: 0\r\n\r\n",
            b"CONNECT x:443 HTTP/1.1\r\n\r\n",
            b"NOT A REQUEST\r\n\r\n",
        ] {
            let mut b = BytesMut::from(hyper);
            assert!(matches!(parse(&mut b, 8192), Parsed::Hyper), "{hyper:?}");
            assert_eq!(&b[..], hyper, "the bytes are left for hyper");
        }
        let mut partial = BytesMut::from(&b"GET / HTTP/1.1\r\nhost"[..]);
        assert!(matches!(parse(&mut partial, 8192), Parsed::NeedMore));
        assert_eq!(&partial[..], b"GET / HTTP/1.1\r\nhost");
        let mut close = BytesMut::from(
            &b"GET / HTTP/1.1\r\nconnection: close\r\n\r\nGET /next HTTP/1.1\r\n\r\n"[..],
        );
        assert!(matches!(
            parse(&mut close, 8192),
            Parsed::Request(_, false, false, None)
        ));
        let mut old = BytesMut::from(&b"GET / HTTP/1.0\r\n\r\n"[..]);
        assert!(matches!(
            parse(&mut old, 8192),
            Parsed::Request(_, false, true, None)
        ));
        let mut old_ka = BytesMut::from(&b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"[..]);
        assert!(matches!(
            parse(&mut old_ka, 8192),
            Parsed::Request(_, true, true, None)
        ));
        let mut big = BytesMut::from(&b"GET / HTTP/1.1\r\nx: 0123456789\r\n\r\n"[..]);
        assert!(
            matches!(parse(&mut big, 16), Parsed::Hyper),
            "over max_header_bytes: hyper's 431"
        );
        assert_eq!(
            &close[..],
            b"GET /next HTTP/1.1\r\n\r\n",
            "the pipelined request waits"
        );
    }

    #[test]
    fn dates_are_imf_fixdate() {
        let mut w = Vec::new();
        date(&mut w);
        let s = String::from_utf8(w).unwrap();
        assert_eq!(s.len(), 29, "{s}");
        assert!(s.ends_with(" GMT"), "{s}");
    }
}
