//! ficus's own HTTP/1.1 client connection: how a request goes to an upstream and how its
//! response comes back, run inside the task of the client request that needs it.
//!
//! Why not hyper's client connection: it runs every upstream connection as a task of its own
//! and hands requests, response heads and body chunks across channels, which costs each
//! proxied request two extra task wake-ups and about 12,000 instructions (callgrind, see
//! bench/README.md), more than this whole codec. Here the request task writes the request
//! head (and a small body) with one `write`, reads and parses the response head with
//! `httparse`, and the response body is read straight from the socket by whoever polls it:
//! hyper's server encoder, when the body goes back to the client. A connection goes back to
//! its pool the moment the last byte of its response is read; an idle connection in the pool
//! is checked without a system call (tokio's readiness: an idle upstream connection that
//! became readable has been closed, or sent garbage).
//!
//! Message framing follows RFC 9112 section 6: no body after a HEAD request or for 1xx, 204
//! and 304; `Transfer-Encoding: chunked`; `Content-Length`; otherwise until the upstream
//! closes. `Transfer-Encoding` wins over `Content-Length` (RFC 9112 6.3), which is then not
//! passed on (the client's copy is framed again; passed on, the rest of the body would be
//! read as the next response), and a transfer coding other than `chunked` (final, once) and
//! `identity` is a 502: ficus could not decode it for the client. Interim 1xx responses other than 101 are skipped. Limits:
//! [`MAX_RESPONSE_HEAD`] bytes and [`MAX_RESPONSE_HEADERS`] headers per response head,
//! [`MAX_CHUNK_LINE`] bytes per chunk-size line and [`MAX_TRAILERS`] bytes of trailers; an
//! upstream that exceeds one gets a 502 `upstream-failed` problem naming the limit.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::body::{BoxError, RequestBody};
use crate::upstream::Home;

/// The largest response head (status line and headers) accepted from an upstream.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// The most header fields accepted in one response head.
pub const MAX_RESPONSE_HEADERS: usize = 128;
/// The longest chunk-size line (size and extensions) accepted in a chunked response body.
pub const MAX_CHUNK_LINE: usize = 4 * 1024;
/// The most trailer bytes accepted after a chunked response body (they are read and dropped).
pub const MAX_TRAILERS: usize = 64 * 1024;
/// A body up to this size goes out in the same `write` as its head (both directions).
pub(crate) const INLINE_BODY: usize = 16 * 1024;
/// Reads ask for at least this much room in the read buffer.
pub(crate) const READ_ROOM: usize = 8 * 1024;

/// The byte stream to an upstream: plain TCP or TLS over TCP.
pub enum Io {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Bytes in memory, for the fuzz target (`fuzz/`, built with `--cfg fuzzing`).
    #[cfg(fuzzing)]
    Mem(fuzzing::MemIo),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            #[cfg(fuzzing)]
            Io::Mem(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            #[cfg(fuzzing)]
            Io::Mem(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            #[cfg(fuzzing)]
            Io::Mem(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Tcp(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
            #[cfg(fuzzing)]
            Io::Mem(_) => false,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            #[cfg(fuzzing)]
            Io::Mem(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            #[cfg(fuzzing)]
            Io::Mem(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Why an exchange with an upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum H1Error {
    #[error("the upstream closed the connection without sending a response")]
    ClosedBeforeResponse,
    #[error("the upstream closed the connection in the middle of the response head")]
    ClosedInHead,
    #[error("the upstream closed the connection after {read} of {expected} body bytes")]
    ClosedInBody { read: u64, expected: u64 },
    #[error("the upstream closed the connection in the middle of a chunked body")]
    ClosedInChunks,
    #[error("invalid response head from the upstream: {0}")]
    Parse(httparse::Error),
    #[error("invalid response from the upstream: {0}")]
    Invalid(&'static str),
    #[error("the upstream's response head is larger than {MAX_RESPONSE_HEAD} bytes")]
    HeadTooLarge,
    #[error("the upstream's response head has more than {MAX_RESPONSE_HEADERS} header fields")]
    TooManyHeaders,
    #[error("I/O error with the upstream: {0}")]
    Io(#[from] std::io::Error),
}

impl H1Error {
    /// Whether this failure, on a connection that had served requests before, means the
    /// upstream had closed it before it saw this request (a keep-alive race): nothing of the
    /// response arrived and the connection ended or was reset.
    fn is_stale(&self) -> bool {
        match self {
            H1Error::ClosedBeforeResponse => true,
            H1Error::Io(e) => matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionAborted
            ),
            _ => false,
        }
    }
}

/// Why a request could not be exchanged, and whether it may go out again on a new connection.
pub enum ExchangeError {
    /// The connection was stale (see [`H1Error::is_stale`]): the request went nowhere.
    Stale(H1Error),
    /// The request body failed (over the route's limit, or the client went away).
    Body(BoxError),
    /// Anything else: the request may have reached the upstream.
    Failed(H1Error),
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many bytes are still to come.
    Length(u64),
    Chunked(Chunk),
    /// Until the upstream closes the connection (no length, no chunking): never reusable.
    Close,
    Done,
}

/// Where a chunked body's decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, with this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty line; bytes of trailers so far.
    Trailers(usize),
}

/// One HTTP/1.1 connection to an upstream, with its buffers.
pub struct Conn {
    io: Io,
    /// Bytes read from the upstream and not yet consumed: `pending` (what followed a
    /// response head, shared with that head's header values) comes before `rbuf`.
    pending: Bytes,
    rbuf: BytesMut,
    /// The request being written (kept between requests to reuse its allocation).
    wbuf: Vec<u8>,
}

impl Conn {
    pub fn new(io: Io) -> Box<Conn> {
        Box::new(Conn {
            io,
            pending: Bytes::new(),
            rbuf: BytesMut::with_capacity(READ_ROOM),
            wbuf: Vec::with_capacity(1024),
        })
    }

    /// Whether an idle pooled connection can carry a request: nothing is waiting to be read
    /// on it. An idle upstream connection that became readable was closed by the upstream
    /// (or sent bytes nobody asked for); either way it is done. Costs no system call unless
    /// the socket is readable.
    pub fn is_reusable(&mut self) -> bool {
        if self.buffered() > 0 {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        matches!(self.poll_fill(&mut cx), Poll::Pending)
    }

    /// Reads what the socket has into the read buffer: `Ok(0)` at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if self.rbuf.capacity() - self.rbuf.len() < READ_ROOM / 2 {
            self.rbuf.reserve(READ_ROOM);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.rbuf)
    }

    /// Writes the request head for `parts` into the write buffer, with the framing headers
    /// the body needs. Returns how the body must be sent.
    pub fn encode_head(&mut self, parts: &Parts, path: &str, body: &RequestBody) -> BodyMode {
        let w = &mut self.wbuf;
        w.clear();
        w.extend_from_slice(parts.method.as_str().as_bytes());
        w.push(b' ');
        w.extend_from_slice(path.as_bytes());
        w.extend_from_slice(b" HTTP/1.1\r\n");
        let mut has_length = false;
        for (name, value) in &parts.headers {
            if name == CONTENT_LENGTH {
                has_length = true;
            }
            w.extend_from_slice(name.as_str().as_bytes());
            w.extend_from_slice(b": ");
            w.extend_from_slice(value.as_bytes());
            w.extend_from_slice(b"\r\n");
        }
        let hint = http_body::Body::size_hint(body);
        let mode = match (body, hint.exact()) {
            (RequestBody::Empty, _) | (_, Some(0)) => {
                if !has_length && method_implies_body(&parts.method) {
                    w.extend_from_slice(b"content-length: 0\r\n");
                }
                BodyMode::None
            }
            (_, Some(n)) => {
                if !has_length {
                    w.extend_from_slice(b"content-length: ");
                    w.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                    w.extend_from_slice(b"\r\n");
                }
                BodyMode::Length
            }
            (_, None) if has_length => BodyMode::Length,
            (_, None) => {
                w.extend_from_slice(b"transfer-encoding: chunked\r\n");
                BodyMode::Chunked
            }
        };
        w.extend_from_slice(b"\r\n");
        mode
    }

    /// Sends the encoded head and `body`, then reads the response head (with `raw`, as
    /// header lines where it can: see [`RawHead`]).
    pub async fn exchange(
        &mut self,
        body: RequestBody,
        mode: BodyMode,
        raw: bool,
    ) -> Result<Head, ExchangeError> {
        match self.write_request(body, mode).await {
            Ok(None) => {}
            Ok(Some(early)) => return Ok(early),
            Err(WriteError::Body(e)) => return Err(ExchangeError::Body(e)),
            Err(WriteError::Head(e)) => return Err(ExchangeError::Failed(e)),
            Err(WriteError::Io(e)) => {
                // The upstream may have answered early (say, a 413) and closed: take the
                // response when there is one.
                if let Ok(head) = self.read_head(false).await {
                    return Ok(Head {
                        reusable: false,
                        ..head
                    });
                }
                let e = H1Error::Io(e);
                return Err(if e.is_stale() {
                    ExchangeError::Stale(e)
                } else {
                    ExchangeError::Failed(e)
                });
            }
        }
        self.read_head(raw).await.map_err(|e| {
            if e.is_stale() {
                ExchangeError::Stale(e)
            } else {
                ExchangeError::Failed(e)
            }
        })
    }

    /// Writes the request. `Some`: the upstream answered before the body was sent whole
    /// (the rest of the body is not sent, and the connection is not reused).
    async fn write_request(
        &mut self,
        body: RequestBody,
        mode: BodyMode,
    ) -> Result<Option<Head>, WriteError> {
        let mut body = match (mode, body) {
            (BodyMode::None, _) => {
                self.io.write_all(&self.wbuf).await?;
                self.io.flush().await?;
                return Ok(None);
            }
            (BodyMode::Length, RequestBody::Full(Some(b)) | RequestBody::Once(Some(b)))
                if b.len() <= INLINE_BODY =>
            {
                self.wbuf.extend_from_slice(&b);
                self.io.write_all(&self.wbuf).await?;
                self.io.flush().await?;
                return Ok(None);
            }
            (_, body) => body,
        };
        self.io.write_all(&self.wbuf).await?;
        self.io.flush().await?;
        let chunked = mode == BodyMode::Chunked;
        loop {
            // While waiting for the client's next bytes, watch for an early response.
            let step = std::future::poll_fn(|cx| {
                if let Poll::Ready(frame) = Pin::new(&mut body).poll_frame(cx) {
                    return Poll::Ready(Ok(frame));
                }
                self.poll_fill(cx).map(Err)
            })
            .await;
            let frame = match step {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(read) => {
                    if read? == 0 {
                        return Err(WriteError::Io(std::io::ErrorKind::UnexpectedEof.into()));
                    }
                    match self.parse_head(false) {
                        Ok(Some(head)) => {
                            return Ok(Some(Head {
                                reusable: false,
                                ..head
                            }))
                        }
                        Ok(None) if self.rbuf.len() < MAX_RESPONSE_HEAD => continue,
                        Ok(None) => return Err(WriteError::Head(H1Error::HeadTooLarge)),
                        Err(e) => return Err(WriteError::Head(e)),
                    }
                }
            };
            let Ok(data) = frame.map_err(WriteError::Body)?.into_data() else {
                continue; // trailers of the client's body are not forwarded
            };
            if data.is_empty() {
                continue;
            }
            if chunked {
                let mut line = [0u8; 18];
                let n = chunk_size_line(data.len(), &mut line);
                self.io.write_all(&line[..n]).await?;
                self.io.write_all(&data).await?;
                self.io.write_all(b"\r\n").await?;
            } else {
                self.io.write_all(&data).await?;
            }
        }
        if chunked {
            self.io.write_all(b"0\r\n\r\n").await?;
        }
        self.io.flush().await?;
        Ok(None)
    }

    /// Reads until a complete final response head is in the buffer, and parses it.
    async fn read_head(&mut self, raw: bool) -> Result<Head, H1Error> {
        loop {
            if let Some(head) = self.parse_head(raw)? {
                return Ok(head);
            }
            if self.rbuf.len() >= MAX_RESPONSE_HEAD {
                return Err(H1Error::HeadTooLarge);
            }
            if self.rbuf.capacity() - self.rbuf.len() < READ_ROOM / 2 {
                self.rbuf.reserve(READ_ROOM);
            }
            let empty = self.buffered() == 0;
            if self.io.read_buf(&mut self.rbuf).await? == 0 {
                return Err(if empty {
                    H1Error::ClosedBeforeResponse
                } else {
                    H1Error::ClosedInHead
                });
            }
        }
    }

    /// Parses a response head from the buffer, skipping interim (1xx) responses other than
    /// 101. `None`: more bytes are needed.
    ///
    /// The buffered bytes are frozen first, so header values become slices of them (no copy)
    /// while the parser still borrows them; what follows the head stays in `pending`.
    /// Hop-by-hop headers (and those `Connection` names) are left out of the map, except in a
    /// 101 response, whose `Connection` and `Upgrade` the client needs.
    ///
    /// With `raw` (the response goes to a client connection that writes header lines as
    /// they are), no header map is built where the head allows it: see [`RawHead`].
    fn parse_head(&mut self, raw: bool) -> Result<Option<Head>, H1Error> {
        loop {
            self.merge_pending();
            if self.rbuf.is_empty() {
                return Ok(None);
            }
            let all = self.rbuf.split().freeze();
            let mut slots =
                [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_RESPONSE_HEADERS];
            let mut resp = httparse::Response::new(&mut []);
            let parsed = httparse::ParserConfig::default()
                .parse_response_with_uninit_headers(&mut resp, &all, &mut slots);
            let len = match parsed {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) => {
                    self.restore(all);
                    return Ok(None);
                }
                Err(httparse::Error::TooManyHeaders) => return Err(H1Error::TooManyHeaders),
                Err(e) => return Err(H1Error::Parse(e)),
            };
            let code = resp.code.unwrap_or(0);
            if (100..200).contains(&code) && code != 101 {
                let rest = all.slice(len..);
                drop(all);
                self.restore(rest);
                continue;
            }
            let status = StatusCode::from_u16(code).map_err(|_| H1Error::Invalid("bad status"))?;
            let version = resp.version.unwrap_or(1);
            let keep_hop = code == 101;
            // A response without a body keeps its representation headers (Content-Length
            // among them) as they are: the map's way.
            let bodiless = status.is_informational()
                || status == StatusCode::NO_CONTENT
                || status == StatusCode::NOT_MODIFIED;
            let raw_head = match raw && !bodiless {
                true => raw_lines(&all, len, resp.headers, version)?,
                false => None,
            };
            let (headers, raw_head, mut fr) = match raw_head {
                Some((lines, fr)) => (HeaderMap::new(), Some(lines), fr),
                None => {
                    let (map, fr) = header_map(&all, resp.headers, keep_hop, version)?;
                    (map, None, fr)
                }
            };
            self.pending = all.slice(len..);
            drop(all);
            let mut response = Response::new(());
            *response.status_mut() = status;
            *response.version_mut() = if version == 0 {
                Version::HTTP_10
            } else {
                Version::HTTP_11
            };
            *response.headers_mut() = headers;
            let framing = fr.framing();
            return Ok(Some(Head {
                response,
                framing,
                reusable: !fr.close,
                hop_by_hop_stripped: !keep_hop,
                raw: raw_head,
            }));
        }
    }

    /// Puts bytes taken out of the read buffer back in front of it (a partial head).
    fn restore(&mut self, bytes: Bytes) {
        restore_front(&mut self.rbuf, bytes);
    }

    /// Moves bytes left after a head back into the read buffer, for decoders that need
    /// one contiguous buffer (chunked bodies, the next head). A copy, but only of what was
    /// read past a head and not consumed as plain body bytes.
    fn merge_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        if self.rbuf.is_empty() {
            self.restore(pending);
        } else {
            let mut m = BytesMut::with_capacity(pending.len() + self.rbuf.len() + READ_ROOM);
            m.extend_from_slice(&pending);
            m.extend_from_slice(&self.rbuf);
            self.rbuf = m;
        }
    }

    /// Bytes received and not consumed yet.
    fn buffered(&self) -> usize {
        self.pending.len() + self.rbuf.len()
    }

    /// Up to `max` buffered bytes, in order.
    fn take(&mut self, max: usize) -> Bytes {
        if !self.pending.is_empty() {
            let n = max.min(self.pending.len());
            return self.pending.split_to(n);
        }
        let n = max.min(self.rbuf.len());
        self.rbuf.split_to(n).freeze()
    }
}

/// What a response head's framing headers say.
struct FramingHeaders {
    length: Option<u64>,
    /// A `Transfer-Encoding` header is present; `chunked`: chunked is its last coding.
    coded: bool,
    chunked: bool,
    close: bool,
    version: u8,
}

impl FramingHeaders {
    fn new(version: u8) -> FramingHeaders {
        FramingHeaders {
            length: None,
            coded: false,
            chunked: false,
            close: version == 0,
            version,
        }
    }

    fn content_length(&mut self, value: &[u8]) -> Result<(), H1Error> {
        let n = parse_length(value).ok_or(H1Error::Invalid("bad Content-Length"))?;
        if self.length.is_some_and(|l| l != n) {
            return Err(H1Error::Invalid("conflicting Content-Length values"));
        }
        self.length = Some(n);
        Ok(())
    }

    /// Takes in a `Transfer-Encoding` line. ficus reads `chunked` (which must be the final
    /// coding, and only once) and `identity`; any other coding would reach the client
    /// undecoded once ficus re-frames the body, so it fails the exchange (502).
    fn transfer_encoding(&mut self, value: &[u8]) -> Result<(), H1Error> {
        self.coded = true;
        for t in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            if self.chunked {
                return Err(H1Error::Invalid(
                    "transfer coding after chunked (chunked must be the final transfer coding)",
                ));
            }
            if t.eq_ignore_ascii_case(b"chunked") {
                self.chunked = true;
            } else if !t.is_empty() && !t.eq_ignore_ascii_case(b"identity") {
                return Err(H1Error::Invalid(
                    "unsupported transfer coding (ficus reads chunked and identity)",
                ));
            }
        }
        Ok(())
    }

    /// Takes in a `Connection` header's `close` and `keep-alive`; calls `other` with each
    /// other name it lists.
    fn connection(&mut self, value: &[u8], mut other: impl FnMut(&[u8])) {
        for t in value.split(|&b| b == b',') {
            let t = t.trim_ascii();
            if t.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if t.eq_ignore_ascii_case(b"keep-alive") {
                if self.version == 0 {
                    self.close = false;
                }
            } else if !t.is_empty() {
                other(t);
            }
        }
    }

    fn framing(&mut self) -> Framing {
        if self.coded {
            // Transfer-Encoding overrides Content-Length (RFC 9112 6.3), and such a
            // message must not leave the connection open for another one.
            if self.length.is_some() {
                self.close = true;
            }
            if self.chunked {
                Framing::Chunked(Chunk::Size)
            } else {
                Framing::Close
            }
        } else {
            match self.length {
                Some(n) => Framing::Length(n),
                None => Framing::Close,
            }
        }
    }
}

/// A response head's headers as a map (values are slices of `all`). Hop-by-hop headers and
/// the names `Connection` lists are left out unless `keep_hop` (a 101 response).
fn header_map(
    all: &Bytes,
    parsed: &[httparse::Header<'_>],
    keep_hop: bool,
    version: u8,
) -> Result<(HeaderMap, FramingHeaders), H1Error> {
    let mut fr = FramingHeaders::new(version);
    let mut headers = HeaderMap::with_capacity(parsed.len());
    // Names that `Connection` lists besides keep-alive and close (rare).
    let mut named: Vec<HeaderName> = Vec::new();
    for h in parsed {
        let name = crate::headers::wire_name(h.name.as_bytes())
            .map_err(|_| H1Error::Invalid("bad header name"))?;
        if name == CONTENT_LENGTH {
            fr.content_length(h.value)?;
        } else if name == TRANSFER_ENCODING {
            fr.transfer_encoding(h.value)?;
        } else if name == CONNECTION {
            fr.connection(h.value, |t| {
                if let Ok(n) = HeaderName::from_bytes(t) {
                    named.push(n);
                }
            });
        }
        if !keep_hop && crate::headers::is_hop_by_hop(&name) {
            continue;
        }
        let value = HeaderValue::from_maybe_shared(all.slice_ref(h.value))
            .map_err(|_| H1Error::Invalid("bad header value"))?;
        headers.append(name, value);
    }
    if !keep_hop {
        for n in named {
            headers.remove(n);
        }
    }
    if fr.coded && fr.length.is_some() {
        // Transfer-Encoding wins (RFC 9112 6.3): the length is not the body's, and passed
        // on it would frame the client's copy wrongly (the rest of the body read as the
        // next response: response splitting).
        headers.remove(CONTENT_LENGTH);
    }
    Ok((headers, fr))
}

/// A response head's header lines to pass on as they came, without a header map (see
/// [`RawHead`]); `None` when the head needs the map after all: a `Connection` header that
/// names other headers, a `Content-Length` repeated, listing values or beside
/// `Transfer-Encoding`, or lines not ended by CRLF. `len` is the head's length in `all`.
fn raw_lines(
    all: &Bytes,
    len: usize,
    parsed: &[httparse::Header<'_>],
    version: u8,
) -> Result<Option<(RawHead, FramingHeaders)>, H1Error> {
    use crate::headers::{hop_index_wire, HOP_CONNECTION, HOP_TRANSFER_ENCODING};
    // The head ends with an empty line; a bare LF anywhere goes the map's way.
    if parsed.len() > u128::BITS as usize || !all[..len].ends_with(b"\r\n\r\n") {
        return Ok(None);
    }
    let mut fr = FramingHeaders::new(version);
    let base = all.as_ptr() as usize;
    let start = |h: &httparse::Header<'_>| h.name.as_ptr() as usize - base;
    let (mut has_date, mut has_length, mut named) = (false, false, false);
    // Kept lines: which ones, and the span they cover while they are contiguous.
    let mut kept = 0u128;
    let mut span: Option<(usize, usize)> = None;
    let mut contiguous = true;
    for (i, h) in parsed.iter().enumerate() {
        let from = start(h);
        let to = parsed.get(i + 1).map_or(len - 2, start);
        if !all[..to].ends_with(b"\r\n") {
            return Ok(None);
        }
        let name = h.name.as_bytes();
        let keep = match hop_index_wire(name) {
            Some(HOP_CONNECTION) => {
                fr.connection(h.value, |_| named = true);
                false
            }
            Some(HOP_TRANSFER_ENCODING) => {
                fr.transfer_encoding(h.value)?;
                false
            }
            Some(_) => false,
            None if name.eq_ignore_ascii_case(b"content-length") => {
                fr.content_length(h.value)?;
                // Passed on only as one plain number (a list such as `5, 5` is written
                // again from the body's length, the map's way).
                let digits = h.value.trim_ascii();
                if has_length || !digits.iter().all(u8::is_ascii_digit) {
                    return Ok(None);
                }
                has_length = true;
                true
            }
            None => {
                has_date |= name.eq_ignore_ascii_case(b"date");
                true
            }
        };
        if keep {
            kept |= 1 << i;
            span = match span {
                None => Some((from, to)),
                Some((a, b)) => {
                    contiguous &= b == from;
                    Some((a, to))
                }
            };
        }
    }
    if named || (fr.coded && has_length) {
        return Ok(None);
    }
    let lines = match span {
        None => Bytes::new(),
        Some((a, b)) if contiguous => all.slice(a..b),
        Some((a, b)) => {
            // Left-out lines sit between kept ones: copy the kept ones together.
            let mut out = BytesMut::with_capacity(b - a);
            for (i, h) in parsed.iter().enumerate() {
                if kept & (1 << i) != 0 {
                    let to = parsed.get(i + 1).map_or(len - 2, start);
                    out.extend_from_slice(&all[start(h)..to]);
                }
            }
            out.freeze()
        }
    };
    let raw = RawHead {
        lines,
        has_date,
        has_length,
    };
    Ok(Some((raw, fr)))
}

/// An upstream response's header lines as they came, for a client connection that writes
/// them out as they are (ficus's own HTTP/1.1 server loop), so that no header map is built
/// for the response. The response's own map then holds only what ficus adds.
pub struct RawHead {
    /// The header lines to pass on, each ending in CRLF: without hop-by-hop headers and
    /// `Transfer-Encoding` (the response is framed again for the client).
    pub lines: Bytes,
    /// A `Date` line is among them.
    pub has_date: bool,
    /// A `Content-Length` line is among them, the one the body is framed by.
    pub has_length: bool,
}

/// A parsed response head and how its body is framed (before the request method and status
/// have had their say: see [`Head::into_body`]).
pub struct Head {
    pub response: Response<()>,
    framing: Framing,
    reusable: bool,
    /// Hop-by-hop headers were left out of the map.
    hop_by_hop_stripped: bool,
    /// The header lines as they came, instead of a map (see [`RawHead`]).
    raw: Option<RawHead>,
}

impl Head {
    /// The response with its body, which reads from `conn` and gives it back to its `home`
    /// pool once the whole message was read (if the connection may carry another one).
    pub fn into_response(
        self,
        conn: Box<Conn>,
        head_request: bool,
        home: Option<Home>,
    ) -> Response<H1Body> {
        let status = self.response.status();
        let upgrade = status == StatusCode::SWITCHING_PROTOCOLS;
        let framing = if head_request
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            Framing::Done
        } else {
            self.framing
        };
        let reusable = self.reusable && framing != Framing::Close && !upgrade;
        let mut conn = conn;
        if matches!(framing, Framing::Chunked(_)) {
            conn.merge_pending();
        }
        let mut body = H1Body {
            conn: Some(conn),
            framing,
            read: 0,
            upgrade,
            hop_by_hop_stripped: self.hop_by_hop_stripped,
            home: if reusable { home } else { None },
            raw: self.raw,
        };
        if !upgrade {
            body.settle();
        }
        self.response.map(|()| body)
    }
}

/// How the request body goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    None,
    Length,
    Chunked,
}

enum WriteError {
    Io(std::io::Error),
    Body(BoxError),
    /// An early response that could not be parsed.
    Head(H1Error),
}

impl From<std::io::Error> for WriteError {
    fn from(e: std::io::Error) -> Self {
        WriteError::Io(e)
    }
}

/// A response body read straight from its upstream connection.
pub struct H1Body {
    conn: Option<Box<Conn>>,
    framing: Framing,
    /// Body bytes read so far (for errors).
    read: u64,
    /// A 101 response: the connection belongs to the upgrade, not to a body.
    upgrade: bool,
    /// The head's hop-by-hop headers were left out already.
    hop_by_hop_stripped: bool,
    /// Where the connection goes when the message is complete (its pool).
    home: Option<Home>,
    /// The head's header lines, when they were kept as they came instead of a map.
    raw: Option<RawHead>,
}

impl std::fmt::Debug for H1Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H1Body")
            .field("framing", &self.framing)
            .field("read", &self.read)
            .finish()
    }
}

impl H1Body {
    /// For a 101 response: the connection and the bytes that already arrived after the head.
    pub fn into_upgraded(mut self) -> Option<(Io, Bytes)> {
        if !self.upgrade {
            return None;
        }
        let mut conn = self.conn.take()?;
        conn.merge_pending();
        let Conn { io, rbuf, .. } = *conn;
        Some((io, rbuf.freeze()))
    }

    /// Whether the response head's hop-by-hop headers were left out already (so the
    /// proxy need not look for them).
    pub fn hop_by_hop_stripped(&self) -> bool {
        self.hop_by_hop_stripped
    }

    /// The head's header lines as they came, when the response was read that way (its
    /// header map then holds only what ficus added).
    pub fn take_raw(&mut self) -> Option<RawHead> {
        self.raw.take()
    }

    /// The same, left in place (a recording copies the lines).
    pub fn raw(&self) -> Option<&RawHead> {
        self.raw.as_ref()
    }

    /// The message is complete: hand the connection back when it can carry another one.
    fn finish(&mut self) {
        self.framing = Framing::Done;
        match (self.conn.take(), self.home.take()) {
            (Some(conn), Some(home)) if conn.buffered() == 0 => home.put(conn),
            _ => {}
        }
    }

    /// A body already at its end (no body, or a zero length) completes at once.
    fn settle(&mut self) {
        if matches!(self.framing, Framing::Done | Framing::Length(0)) {
            self.finish();
        }
    }

    /// Decodes what is buffered: `Ready(Some)` a data frame, `Ready(None)` the end,
    /// `Pending` when more bytes must be read first.
    fn decode(&mut self) -> Poll<Option<Result<Bytes, H1Error>>> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match self.framing {
                Framing::Done => return Poll::Ready(None),
                Framing::Length(rem) => {
                    if conn.buffered() == 0 {
                        return Poll::Pending;
                    }
                    let data = conn.take(usize::try_from(rem).unwrap_or(usize::MAX));
                    let n = data.len() as u64;
                    self.read += n;
                    self.framing = Framing::Length(rem - n);
                    if rem == n {
                        self.finish();
                    }
                    return Poll::Ready(Some(Ok(data)));
                }
                Framing::Close => {
                    if conn.buffered() == 0 {
                        return Poll::Pending;
                    }
                    let data = conn.take(usize::MAX);
                    self.read += data.len() as u64;
                    return Poll::Ready(Some(Ok(data)));
                }
                _ => {}
            }
            // Chunked: decoded from one contiguous buffer.
            conn.merge_pending();
            let buf = &mut conn.rbuf;
            match self.framing {
                // Handled above.
                Framing::Done | Framing::Length(_) | Framing::Close => return Poll::Ready(None),
                Framing::Chunked(Chunk::Size) => {
                    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
                        if buf.len() > MAX_CHUNK_LINE {
                            return Poll::Ready(Some(Err(H1Error::Invalid(
                                "chunk-size line too long",
                            ))));
                        }
                        return Poll::Pending;
                    };
                    if end > MAX_CHUNK_LINE {
                        return Poll::Ready(Some(Err(H1Error::Invalid(
                            "chunk-size line too long",
                        ))));
                    }
                    let size = match parse_chunk_size(&buf[..end]) {
                        Some(s) => s,
                        None => return Poll::Ready(Some(Err(H1Error::Invalid("bad chunk size")))),
                    };
                    buf.advance(end + 1);
                    self.framing = Framing::Chunked(if size == 0 {
                        Chunk::Trailers(0)
                    } else {
                        Chunk::Data(size)
                    });
                }
                Framing::Chunked(Chunk::Data(rem)) => {
                    if buf.is_empty() {
                        return Poll::Pending;
                    }
                    let n = rem.min(buf.len() as u64);
                    let data = buf.split_to(n as usize).freeze();
                    self.read += n;
                    self.framing = Framing::Chunked(if rem == n {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(rem - n)
                    });
                    return Poll::Ready(Some(Ok(data)));
                }
                Framing::Chunked(Chunk::DataEnd) => {
                    if buf.len() < 2 {
                        if buf.first().is_some_and(|&b| b != b'\r') {
                            return Poll::Ready(Some(Err(H1Error::Invalid(
                                "chunk data not followed by CRLF",
                            ))));
                        }
                        return Poll::Pending;
                    }
                    if &buf[..2] != b"\r\n" {
                        return Poll::Ready(Some(Err(H1Error::Invalid(
                            "chunk data not followed by CRLF",
                        ))));
                    }
                    buf.advance(2);
                    self.framing = Framing::Chunked(Chunk::Size);
                }
                Framing::Chunked(Chunk::Trailers(seen)) => {
                    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
                        if seen + buf.len() > MAX_TRAILERS {
                            return Poll::Ready(Some(Err(H1Error::Invalid("trailers too large"))));
                        }
                        return Poll::Pending;
                    };
                    let line = &buf[..end];
                    let empty = line.is_empty() || line == b"\r";
                    buf.advance(end + 1);
                    if empty {
                        self.finish();
                        return Poll::Ready(None);
                    }
                    if seen + end + 1 > MAX_TRAILERS {
                        return Poll::Ready(Some(Err(H1Error::Invalid("trailers too large"))));
                    }
                    self.framing = Framing::Chunked(Chunk::Trailers(seen + end + 1));
                }
            }
        }
    }

    /// The end of the stream arrived: the end of a close-delimited body, an error otherwise.
    fn eof(&mut self) -> Option<H1Error> {
        match self.framing {
            Framing::Close => {
                self.framing = Framing::Done;
                self.conn = None;
                None
            }
            Framing::Length(rem) => Some(H1Error::ClosedInBody {
                read: self.read,
                expected: self.read + rem,
            }),
            Framing::Chunked(_) => Some(H1Error::ClosedInChunks),
            Framing::Done => None,
        }
    }
}

impl Body for H1Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.upgrade {
            return Poll::Ready(None);
        }
        loop {
            match this.decode() {
                Poll::Ready(Some(Ok(data))) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Poll::Ready(Some(Err(e))) => {
                    this.conn = None;
                    this.framing = Framing::Done;
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => {}
            }
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match ready!(conn.poll_fill(cx)) {
                Ok(0) => {
                    if let Some(e) = this.eof() {
                        this.conn = None;
                        this.framing = Framing::Done;
                        return Poll::Ready(Some(Err(Box::new(e))));
                    }
                    return Poll::Ready(None);
                }
                Ok(_) => {}
                Err(e) => {
                    this.conn = None;
                    this.framing = Framing::Done;
                    return Poll::Ready(Some(Err(Box::new(H1Error::Io(e)))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.framing == Framing::Done || self.upgrade
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(n) => SizeHint::with_exact(n),
            Framing::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

impl Drop for H1Body {
    fn drop(&mut self) {
        // A body dropped unread (a fallback status, a client gone) still saves its
        // connection when the rest of the message is already buffered.
        if self.home.is_some() && !self.upgrade {
            while let Poll::Ready(Some(Ok(_))) = self.decode() {}
        }
    }
}

/// Whether a request with this method carries a body by definition, so an empty one needs
/// `Content-Length: 0`.
fn method_implies_body(m: &Method) -> bool {
    *m == Method::POST || *m == Method::PUT || *m == Method::PATCH
}

/// A decimal Content-Length value (a list of identical values counts as one).
pub(crate) fn parse_length(v: &[u8]) -> Option<u64> {
    let mut result: Option<u64> = None;
    for part in v.split(|&b| b == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = part
            .iter()
            .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
        if result.is_some_and(|r| r != n) {
            return None;
        }
        result = Some(n);
    }
    result
}

/// The size of a chunk-size line (without its LF): hex digits, then optional extensions
/// after `;`, then an optional CR.
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or(line)
        .trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut n = 0u64;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        n = n * 16 + u64::from(v);
    }
    Some(n)
}

/// Puts bytes split off a read buffer (which holds no data now, only spare room) back in
/// front of it: without a copy when nothing else shares them, since they sit right before
/// that room.
pub(crate) fn restore_front(rbuf: &mut BytesMut, bytes: Bytes) {
    let spare = std::mem::take(rbuf);
    *rbuf = match bytes.try_into_mut() {
        Ok(mut m) => {
            m.unsplit(spare);
            m
        }
        Err(b) => {
            let mut m = BytesMut::with_capacity(b.len() + spare.len() + READ_ROOM);
            m.extend_from_slice(&b);
            m.extend_from_slice(&spare);
            m
        }
    };
}

/// Writes `{len:x}\r\n` into `out`, returning its length.
pub(crate) fn chunk_size_line(len: usize, out: &mut [u8; 18]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1) as usize;
    for i in 0..digits {
        out[digits - 1 - i] = HEX[(len >> (4 * i)) & 15];
    }
    out[digits] = b'\r';
    out[digits + 1] = b'\n';
    digits + 2
}

/// Copies bytes both ways between an upgraded client connection and an upstream connection
/// taken from a 101 response (`early`: bytes the upstream sent right after its head).
pub async fn tunnel<C>(client: C, upstream: Io, early: Bytes)
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let mut client = client;
    let mut upstream = upstream;
    if !early.is_empty() && client.write_all(&early).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// What the fuzz target (`fuzz/fuzz_targets/h1_response.rs`) drives: the codec reading an
/// upstream's response from bytes in memory. Only in builds with `--cfg fuzzing`.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    use super::*;
    use std::future::Future;

    /// An upstream connection whose response is `input`, read at most `step` bytes at a time
    /// (so heads and chunks arrive split); what ficus writes is dropped.
    pub struct MemIo {
        input: Bytes,
        step: usize,
    }

    impl AsyncRead for MemIo {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            let this = self.get_mut();
            let n = this.input.len().min(this.step).min(buf.remaining());
            buf.put_slice(&this.input.split_to(n));
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for MemIo {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// What a response came to: its status, and its body bytes or the point where it failed.
    #[derive(Debug, PartialEq, Eq)]
    pub enum Outcome {
        Failed,
        Response {
            status: u16,
            body: Vec<u8>,
            body_failed: bool,
        },
    }

    /// Sends a request (a HEAD one with `head_request`) and reads `input` as the response,
    /// with the head as header lines (`raw`) or as a map, reads at most `step` bytes long.
    pub fn exchange(input: &[u8], step: usize, raw: bool, head_request: bool) -> Outcome {
        let conn = Conn::new(Io::Mem(MemIo {
            input: Bytes::copy_from_slice(input),
            step: step.max(1),
        }));
        // The memory stream is always ready: one poll drives the whole exchange.
        let mut cx = Context::from_waker(Waker::noop());
        let mut fut = std::pin::pin!(run(conn, raw, head_request));
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(o) => o,
            Poll::Pending => panic!("an exchange over bytes in memory never waits"),
        }
    }

    async fn run(mut conn: Box<Conn>, raw: bool, head_request: bool) -> Outcome {
        let method = if head_request {
            Method::HEAD
        } else {
            Method::GET
        };
        let (parts, ()) = http::Request::builder()
            .method(method)
            .uri("/")
            .header("host", "up")
            .body(())
            .expect("a valid request")
            .into_parts();
        let mode = conn.encode_head(&parts, "/", &RequestBody::Empty);
        let head = match conn.exchange(RequestBody::Empty, mode, raw).await {
            Ok(h) => h,
            Err(_) => return Outcome::Failed,
        };
        let response = head.into_response(conn, head_request, None);
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        let mut body_failed = false;
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            match frame {
                Ok(f) => {
                    if let Ok(d) = f.into_data() {
                        assert!(!d.is_empty() || body.is_end_stream(), "an empty data frame");
                        bytes.extend_from_slice(&d);
                    }
                }
                Err(_) => {
                    body_failed = true;
                    break;
                }
            }
        }
        Outcome::Response {
            status,
            body: bytes,
            body_failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `raw_lines` over a response head: the lines kept, whether they were sliced out of
    /// the buffer (not copied), `has_date`, `has_length`, and the framing found.
    fn raw_of(head: &[u8]) -> Option<(String, bool, bool, bool, Framing)> {
        let all = Bytes::copy_from_slice(head);
        let mut slots = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut slots);
        let Ok(httparse::Status::Complete(len)) = resp.parse(&all) else {
            panic!("incomplete head");
        };
        let (raw, mut fr) = raw_lines(&all, len, resp.headers, resp.version.unwrap()).unwrap()?;
        let within = all.as_ptr_range().contains(&raw.lines.as_ptr());
        let text = String::from_utf8(raw.lines.to_vec()).unwrap();
        Some((text, within, raw.has_date, raw.has_length, fr.framing()))
    }

    #[test]
    fn raw_header_lines_leave_out_hop_by_hop_ones() {
        // Contiguous kept lines are a slice of the read buffer; names keep their case.
        let (lines, sliced, date, length, framing) = raw_of(
            b"HTTP/1.1 200 OK\r\nServer: up\r\nDate: x\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok",
        )
        .unwrap();
        assert_eq!(lines, "Server: up\r\nDate: x\r\nContent-Length: 2\r\n");
        assert!(sliced && date && length);
        assert_eq!(framing, Framing::Length(2));

        // Left-out lines between kept ones: the kept ones are copied together, repeated
        // fields in their order.
        let (lines, sliced, date, length, _) = raw_of(
            b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nKeep-Alive: timeout=5\r\nSet-Cookie: b=2\r\nPROXY-CONNECTION: x\r\nX-Case:  MiXeD \r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            lines,
            "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Case:  MiXeD \r\n"
        );
        assert!(!sliced && !date && !length);

        // Transfer-Encoding frames the body and is left out (the client's framing is
        // ficus's to choose).
        let (lines, _, _, length, framing) =
            raw_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n").unwrap();
        assert_eq!((lines.as_str(), length), ("X-A: 1\r\n", false));
        assert_eq!(framing, Framing::Chunked(Chunk::Size));

        // No headers at all.
        let (lines, ..) = raw_of(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        assert_eq!(lines, "");
    }

    #[test]
    fn heads_that_need_the_header_map() {
        for head in [
            // Connection names another header, which must go too.
            &b"HTTP/1.1 200 OK\r\nConnection: x-secret\r\nX-Secret: 1\r\n\r\n"[..],
            // A repeated or listed Content-Length is written again from the body.
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n",
            // Both framing headers: Content-Length must not reach the client.
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
            // Lines ended by a bare LF are written again with CRLF.
            b"HTTP/1.1 200 OK\nX-Lf: 1\nContent-Length: 2\n\n",
            b"HTTP/1.1 200 OK\r\nX-Lf: 1\nContent-Length: 2\r\n\r\n",
        ] {
            assert!(raw_of(head).is_none(), "{}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn lengths() {
        assert_eq!(parse_length(b"0"), Some(0));
        assert_eq!(parse_length(b" 1024 "), Some(1024));
        assert_eq!(parse_length(b"5, 5"), Some(5));
        assert_eq!(parse_length(b"5, 6"), None);
        assert_eq!(parse_length(b"-1"), None);
        assert_eq!(parse_length(b"1e3"), None);
        assert_eq!(parse_length(b""), None);
        assert_eq!(parse_length(b"99999999999999999999"), None);
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"0\r"), Some(0));
        assert_eq!(parse_chunk_size(b"1A\r"), Some(26));
        assert_eq!(parse_chunk_size(b"ff;name=value\r"), Some(255));
        assert_eq!(parse_chunk_size(b"10"), Some(16));
        assert_eq!(parse_chunk_size(b"\r"), None);
        assert_eq!(parse_chunk_size(b"xyz\r"), None);
        assert_eq!(parse_chunk_size(b"1000000000000000\r"), None);
        let mut out = [0u8; 18];
        for n in [1usize, 15, 16, 255, 4096, 1 << 40] {
            let len = chunk_size_line(n, &mut out);
            let line = std::str::from_utf8(&out[..len]).unwrap();
            assert_eq!(line, format!("{n:x}\r\n"));
        }
    }

    #[test]
    fn transfer_codings() {
        let fr = |lines: &[&[u8]]| {
            let mut f = FramingHeaders::new(1);
            for l in lines {
                f.transfer_encoding(l)?;
            }
            Ok::<_, H1Error>(f.framing())
        };
        assert_eq!(fr(&[b"chunked"]).unwrap(), Framing::Chunked(Chunk::Size));
        assert_eq!(
            fr(&[b"Identity, Chunked"]).unwrap(),
            Framing::Chunked(Chunk::Size)
        );
        assert_eq!(fr(&[b"identity"]).unwrap(), Framing::Close);
        assert_eq!(
            fr(&[b"identity", b"chunked"]).unwrap(),
            Framing::Chunked(Chunk::Size)
        );
        for bad in [
            &[&b"gzip, chunked"[..]][..],
            &[b"x-custom"],
            &[b"chunked, chunked"],
            &[b"chunked, identity"],
            &[b"chunked", b"identity"],
        ] {
            assert!(fr(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn transfer_encoding_removes_content_length_from_the_map() {
        let all = Bytes::from_static(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\nX-A: 1\r\n\r\n",
        );
        let mut slots = [httparse::EMPTY_HEADER; 8];
        let mut resp = httparse::Response::new(&mut slots);
        resp.parse(&all).unwrap();
        let (map, mut fr) = header_map(&all, resp.headers, false, 1).unwrap();
        assert!(!map.contains_key(CONTENT_LENGTH), "{map:?}");
        assert_eq!(map["x-a"], "1");
        assert_eq!(fr.framing(), Framing::Chunked(Chunk::Size));
        assert!(fr.close, "not reused after both framing headers");
    }
}
