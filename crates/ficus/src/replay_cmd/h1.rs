//! The replay's own HTTP/1.1 client: at most N keep-alive connections to one target, each
//! carrying one request at a time, run in the task of the request that holds it.
//!
//! Why not hyper-util's pooled client: it checks a connection out of its pool and runs a
//! connection task per connection, handing each request and response across channels, and it
//! opens a new connection for every request that finds none idle, so 100,000 requests due at
//! once meant 100,000 connections (most refused). Here a request first takes one of the
//! pool's N slots (a FIFO semaphore: beyond N, requests wait in due order, and their lateness
//! shows it), then an idle connection or a new one when none is idle (so at most N are ever
//! open), writes its pre-encoded bytes with one `write`, and reads and parses the response
//! itself. The connection goes back to the idle stack before the slot is released.
//!
//! Framing follows RFC 9112 section 6: no body after a HEAD request or for 1xx, 204 and 304;
//! `Transfer-Encoding: chunked` (trailers read and dropped); `Content-Length`; otherwise until
//! the target closes. Interim 1xx responses other than 101 are skipped. A connection is kept
//! only when the response was framed by length or chunks, nothing followed it, and neither
//! side said `Connection: close` (an HTTP/1.0 answer needs `keep-alive`). An idle connection
//! that became readable was closed by the target and is dropped before use; a connection that
//! had served requests and ends or is reset before the first byte of the answer (the target
//! closed it meanwhile) is retried once on a new connection for idempotent methods.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The largest response head (status line and header lines) accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// The most header fields in a response head.
pub const MAX_HEADERS: usize = 128;
/// The longest chunk-size line.
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// The most bytes of trailers after a chunked body.
const MAX_TRAILERS: usize = 64 * 1024;
/// Room asked for in the read buffer before each read.
const READ_ROOM: usize = 16 * 1024;

/// Why a request got no response, as the report counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No connection could be opened.
    Connect,
    /// No whole response within `--timeout` of the send.
    Timeout,
    /// The connection was reset (or the write found it broken).
    Reset,
    /// The target closed the connection before the response was whole.
    Closed,
    /// Anything else: an invalid response, a limit exceeded.
    Other,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Connect => "connect",
            Failure::Timeout => "timeout",
            Failure::Reset => "reset",
            Failure::Closed => "closed",
            Failure::Other => "other",
        }
    }

    fn io(e: &std::io::Error) -> Failure {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => Failure::Reset,
            K::UnexpectedEof => Failure::Closed,
            _ => Failure::Other,
        }
    }
}

/// A response: its status always; its headers and body only when asked to keep them (the
/// body is read either way, to keep the connection).
#[derive(Debug, Default)]
pub struct Response {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// One request, encoded once when the replay is planned.
#[derive(Debug, Clone)]
pub struct Wire {
    /// Request line, headers and body, as written.
    pub bytes: Bytes,
    /// A HEAD request: the response has no body whatever its headers say.
    pub head: bool,
    /// Safe to send again when a reused connection turns out to be closed (RFC 9110 9.2.2).
    pub idempotent: bool,
}

impl Wire {
    /// Encodes a request to `authority` (its `Host`): `headers` must not hold the framing
    /// or connection headers (the caller leaves them out); `Content-Length` is added when
    /// there is a body or the method implies one.
    pub fn encode(
        method: &http::Method,
        target: &str,
        authority: &str,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Wire {
        let mut w = Vec::with_capacity(64 + target.len() + headers.len() * 32 + body.len());
        w.extend_from_slice(method.as_str().as_bytes());
        w.push(b' ');
        w.extend_from_slice(target.as_bytes());
        w.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        w.extend_from_slice(authority.as_bytes());
        w.extend_from_slice(b"\r\n");
        for (n, v) in headers {
            w.extend_from_slice(n.as_str().as_bytes());
            w.extend_from_slice(b": ");
            w.extend_from_slice(v.as_bytes());
            w.extend_from_slice(b"\r\n");
        }
        if !body.is_empty()
            || matches!(
                *method,
                http::Method::POST | http::Method::PUT | http::Method::PATCH
            )
        {
            w.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        }
        w.extend_from_slice(b"\r\n");
        w.extend_from_slice(body);
        Wire {
            bytes: Bytes::from(w),
            head: *method == http::Method::HEAD,
            idempotent: matches!(
                *method,
                http::Method::GET
                    | http::Method::HEAD
                    | http::Method::OPTIONS
                    | http::Method::TRACE
                    | http::Method::PUT
                    | http::Method::DELETE
            ),
        }
    }
}

/// At most `max` connections to one target.
pub struct Pool {
    addrs: Vec<SocketAddr>,
    slots: Arc<Semaphore>,
    idle: Mutex<Vec<Conn>>,
    /// Connections opened so far.
    opened: AtomicU64,
    /// Requests that found every slot taken and waited for one.
    waited: AtomicU64,
}

/// A slot of a pool: the right to use one connection.
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl Pool {
    /// A pool for `authority` (`host:port`; a name is resolved once, here).
    pub async fn new(authority: &str, max: usize) -> Result<Pool, String> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(authority)
            .await
            .map_err(|e| format!("{authority}: {e}"))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("{authority}: no address"));
        }
        Ok(Pool {
            addrs,
            slots: Arc::new(Semaphore::new(max.clamp(1, Semaphore::MAX_PERMITS))),
            idle: Mutex::new(Vec::new()),
            opened: AtomicU64::new(0),
            waited: AtomicU64::new(0),
        })
    }

    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    pub fn waited(&self) -> u64 {
        self.waited.load(Ordering::Relaxed)
    }

    /// Waits for a slot (first come, first served).
    pub async fn slot(&self) -> Slot {
        match self.slots.clone().try_acquire_owned() {
            Ok(p) => Slot(p),
            Err(_) => {
                self.waited.fetch_add(1, Ordering::Relaxed);
                // The semaphore is never closed.
                Slot(
                    self.slots
                        .clone()
                        .acquire_owned()
                        .await
                        .expect("the pool's semaphore is never closed"),
                )
            }
        }
    }

    /// Sends `wire` on a connection of `slot` and reads the whole response, within
    /// `timeout`. With `keep`, the response's headers and body are kept.
    pub async fn call(
        &self,
        slot: Slot,
        wire: &Wire,
        keep: bool,
        timeout: Duration,
    ) -> Result<Response, Failure> {
        let out = match tokio::time::timeout(timeout, self.exchange(wire, keep)).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Timeout),
        };
        // The connection (if kept) is back on the idle stack before the slot is released.
        drop(slot);
        out
    }

    async fn exchange(&self, wire: &Wire, keep: bool) -> Result<Response, Failure> {
        let mut retried = false;
        loop {
            let (mut conn, reused) = match self.take_idle() {
                Some(c) => (c, true),
                None => (self.connect().await?, false),
            };
            match conn.round_trip(wire, keep).await {
                Ok((resp, reusable)) => {
                    if reusable {
                        self.idle
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(conn);
                    }
                    return Ok(resp);
                }
                Err(Error::Stale(_)) if reused && wire.idempotent && !retried => {
                    retried = true;
                }
                Err(Error::Stale(f) | Error::Failed(f)) => return Err(f),
            }
        }
    }

    /// The most recently used idle connection that is still open.
    fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(mut c) = idle.pop() {
            if c.is_idle() {
                return Some(c);
            }
        }
        None
    }

    async fn connect(&self) -> Result<Conn, Failure> {
        let mut last = None;
        for a in &self.addrs {
            match TcpStream::connect(a).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    self.opened.fetch_add(1, Ordering::Relaxed);
                    return Ok(Conn {
                        stream: s,
                        buf: BytesMut::with_capacity(READ_ROOM),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        drop(last);
        Err(Failure::Connect)
    }
}

/// Why a round trip failed: `Stale` when nothing of a response arrived and the connection
/// ended or was reset (on a reused connection: the target had closed it).
enum Error {
    Stale(Failure),
    Failed(Failure),
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    Close,
}

/// What the head says.
struct Head {
    status: u16,
    /// Bytes of the head, up to and including its empty line.
    len: usize,
    framing: Framing,
    keep_alive: bool,
    headers: http::HeaderMap,
}

struct Conn {
    stream: TcpStream,
    /// Bytes read and not consumed yet.
    buf: BytesMut,
}

impl Conn {
    /// An idle connection is usable when nothing is waiting to be read on it: readable
    /// means the target closed it (or sent bytes nobody asked for). No system call unless
    /// the socket is readable.
    fn is_idle(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut b = [0u8; 1];
                matches!(self.stream.try_read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Reads more into the buffer: the bytes read (0 at the end of the stream).
    async fn fill(&mut self) -> Result<usize, Failure> {
        if self.buf.capacity() - self.buf.len() < READ_ROOM / 2 {
            self.buf.reserve(READ_ROOM);
        }
        self.stream
            .read_buf(&mut self.buf)
            .await
            .map_err(|e| Failure::io(&e))
    }

    /// Writes the request and reads the response; whether the connection can carry another.
    async fn round_trip(&mut self, wire: &Wire, keep: bool) -> Result<(Response, bool), Error> {
        if let Err(e) = self.stream.write_all(&wire.bytes).await {
            let f = Failure::io(&e);
            return Err(if f == Failure::Reset {
                Error::Stale(f)
            } else {
                Error::Failed(f)
            });
        }
        // The final head (interim 1xx answers skipped).
        let head = loop {
            let mut scanned = 0;
            let head = loop {
                if let Some(h) = parse_head(&self.buf, &mut scanned, keep).map_err(Error::Failed)? {
                    break h;
                }
                if self.buf.len() >= MAX_HEAD {
                    return Err(Error::Failed(Failure::Other));
                }
                let nothing_yet = self.buf.is_empty();
                match self.fill().await {
                    Ok(0) if nothing_yet => return Err(Error::Stale(Failure::Closed)),
                    Ok(0) => return Err(Error::Failed(Failure::Closed)),
                    Ok(_) => {}
                    Err(Failure::Reset) if nothing_yet => return Err(Error::Stale(Failure::Reset)),
                    Err(f) => return Err(Error::Failed(f)),
                }
            };
            self.buf.advance(head.len);
            if (100..200).contains(&head.status) && head.status != 101 {
                continue;
            }
            break head;
        };
        let framing = if wire.head || head.status < 200 || head.status == 204 || head.status == 304
        {
            Framing::None
        } else {
            head.framing
        };
        let body = match framing {
            Framing::None => Bytes::new(),
            Framing::Length(n) => self.length_body(n, keep).await.map_err(Error::Failed)?,
            Framing::Chunked => self.chunked_body(keep).await.map_err(Error::Failed)?,
            Framing::Close => self.close_body(keep).await.map_err(Error::Failed)?,
        };
        let reusable = head.keep_alive
            && framing != Framing::Close
            && head.status != 101
            && self.buf.is_empty();
        Ok((
            Response {
                status: head.status,
                headers: head.headers,
                body,
            },
            reusable,
        ))
    }

    async fn length_body(&mut self, n: u64, keep: bool) -> Result<Bytes, Failure> {
        if keep {
            let n = usize::try_from(n).map_err(|_| Failure::Other)?;
            if self.buf.len() < n {
                self.buf.reserve((n - self.buf.len()).min(16 << 20));
            }
            while self.buf.len() < n {
                if self.fill().await? == 0 {
                    return Err(Failure::Closed);
                }
            }
            return Ok(self.buf.split_to(n).freeze());
        }
        let mut left = n;
        loop {
            let take = left.min(self.buf.len() as u64);
            self.buf.advance(take as usize);
            left -= take;
            if left == 0 {
                return Ok(Bytes::new());
            }
            if self.fill().await? == 0 {
                return Err(Failure::Closed);
            }
        }
    }

    async fn close_body(&mut self, keep: bool) -> Result<Bytes, Failure> {
        loop {
            if !keep {
                self.buf.clear();
            }
            if self.fill().await? == 0 {
                return Ok(if keep {
                    self.buf.split().freeze()
                } else {
                    Bytes::new()
                });
            }
        }
    }

    /// A line ending in LF (CRLF or bare LF) at the front of the buffer: its length without
    /// the line end, and with it.
    async fn line(&mut self, max: usize) -> Result<(usize, usize), Failure> {
        let mut from = 0;
        loop {
            if let Some(i) = self.buf[from..].iter().position(|&b| b == b'\n') {
                let end = from + i;
                let text = if end > 0 && self.buf[end - 1] == b'\r' {
                    end - 1
                } else {
                    end
                };
                return Ok((text, end + 1));
            }
            from = self.buf.len();
            if from > max {
                return Err(Failure::Other);
            }
            if self.fill().await? == 0 {
                return Err(Failure::Closed);
            }
        }
    }

    async fn chunked_body(&mut self, keep: bool) -> Result<Bytes, Failure> {
        let mut body = BytesMut::new();
        loop {
            let (text, line) = self.line(MAX_CHUNK_LINE).await?;
            let size = parse_chunk_size(&self.buf[..text]).ok_or(Failure::Other)?;
            self.buf.advance(line);
            if size == 0 {
                // Trailers, until an empty line.
                let mut seen = 0;
                loop {
                    let (text, line) = self.line(MAX_TRAILERS - seen).await?;
                    self.buf.advance(line);
                    if text == 0 {
                        return Ok(body.freeze());
                    }
                    seen += line;
                    if seen > MAX_TRAILERS {
                        return Err(Failure::Other);
                    }
                }
            }
            let mut left = size;
            while left > 0 {
                if self.buf.is_empty() && self.fill().await? == 0 {
                    return Err(Failure::Closed);
                }
                let take = left.min(self.buf.len() as u64) as usize;
                if keep {
                    body.extend_from_slice(&self.buf[..take]);
                }
                self.buf.advance(take);
                left -= take as u64;
            }
            let (text, line) = self.line(2).await?;
            if text != 0 {
                return Err(Failure::Other);
            }
            self.buf.advance(line);
        }
    }
}

/// A chunk-size line: hex digits, then optional extensions after `;`.
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.split(|&b| b == b';').next()?.trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut n = 0u64;
    for &d in digits {
        n = n * 16 + u64::from((d as char).to_digit(16)?);
    }
    Some(n)
}

/// Parses a response head at the front of `buf` once it is complete (`Ok(None)`: more
/// bytes are needed; `scanned` remembers how far the search for its end got).
fn parse_head(buf: &[u8], scanned: &mut usize, keep: bool) -> Result<Option<Head>, Failure> {
    // The end: an empty line (CRLF CRLF, or bare LFs).
    let from = scanned.saturating_sub(3);
    let mut end = None;
    let mut i = from;
    while let Some(p) = buf[i..].iter().position(|&b| b == b'\n') {
        let at = i + p;
        let next = at + 1;
        if buf.get(next) == Some(&b'\n') {
            end = Some(next + 1);
            break;
        }
        if buf.get(next) == Some(&b'\r') && buf.get(next + 1) == Some(&b'\n') {
            end = Some(next + 2);
            break;
        }
        i = next;
    }
    let Some(len) = end else {
        *scanned = buf.len();
        return Ok(None);
    };
    let mut lines = buf[..len].split(|&b| b == b'\n').map(|l| match l {
        [rest @ .., b'\r'] => rest,
        l => l,
    });
    let status_line = lines.next().ok_or(Failure::Other)?;
    // "HTTP/1.x NNN reason"
    if status_line.len() < 12 || &status_line[..7] != b"HTTP/1." || status_line[8] != b' ' {
        return Err(Failure::Other);
    }
    let http10 = status_line[7] == b'0';
    let code = &status_line[9..12];
    if !code.iter().all(u8::is_ascii_digit) || status_line.get(12).is_some_and(|&b| b != b' ') {
        return Err(Failure::Other);
    }
    let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut other_coding = false;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut headers = http::HeaderMap::new();
    let mut count = 0;
    for line in lines {
        if line.is_empty() {
            break;
        }
        count += 1;
        if count > MAX_HEADERS {
            return Err(Failure::Other);
        }
        let colon = line.iter().position(|&b| b == b':').ok_or(Failure::Other)?;
        let name = &line[..colon];
        if name.is_empty() || name.iter().any(|b| b.is_ascii_whitespace()) {
            return Err(Failure::Other);
        }
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            let v = std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(Failure::Other)?;
            if length.is_some_and(|l| l != v) {
                return Err(Failure::Other);
            }
            length = Some(v);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // The final coding decides: chunked, or the body runs until the close.
            for coding in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if coding.is_empty() {
                    continue;
                }
                if coding.eq_ignore_ascii_case(b"chunked") {
                    chunked = true;
                    other_coding = false;
                } else if !coding.eq_ignore_ascii_case(b"identity") {
                    chunked = false;
                    other_coding = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        if keep {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name),
                http::HeaderValue::from_bytes(value),
            ) {
                headers.append(n, v);
            }
        }
    }
    // Transfer-Encoding wins over Content-Length (RFC 9112 6.3).
    let framing = if chunked {
        Framing::Chunked
    } else if other_coding {
        Framing::Close
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::Close
    };
    Ok(Some(Head {
        status,
        len,
        framing,
        keep_alive: !close && (!http10 || keep_alive_token),
        headers,
    }))
}

/// A pool is shared by the runtime's tasks.
const _: () = {
    const fn is<T: Send + Sync>() {}
    is::<Pool>();
};

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str) -> Result<Option<Head>, Failure> {
        let mut scanned = 0;
        parse_head(s.as_bytes(), &mut scanned, true)
    }

    #[test]
    fn heads_parse_with_their_framing() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-A: b\r\n\r\nbody")
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.status, h.framing, h.keep_alive),
            (200, Framing::Length(12), true)
        );
        assert_eq!(
            h.len,
            "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-A: b\r\n\r\n".len()
        );
        assert_eq!(h.headers["x-a"], "b");
        let h = head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        let h = head("HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Close, false));
        let h = head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.keep_alive);
        let h = head("HTTP/1.1 204 No Content\nConnection: close\n\n")
            .unwrap()
            .unwrap();
        assert_eq!((h.status, h.keep_alive), (204, false));
        assert!(head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n")
            .unwrap()
            .is_none());
        assert!(head("HTTP/1.1 2x0 OK\r\n\r\n").is_err());
        assert!(head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").is_err());
        assert_eq!(parse_chunk_size(b"1a;ext=1"), Some(26));
        assert_eq!(parse_chunk_size(b"zz"), None);
    }

    #[test]
    fn the_head_end_is_found_across_reads() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let mut scanned = 0;
        for cut in 1..full.len() {
            assert!(
                parse_head(&full[..cut], &mut scanned, false)
                    .unwrap()
                    .is_none(),
                "{cut}"
            );
        }
        assert!(parse_head(full, &mut scanned, false).unwrap().is_some());
    }
}
