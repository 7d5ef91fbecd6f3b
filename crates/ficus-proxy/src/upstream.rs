//! Upstream clients: keep-alive connection pools per upstream and worker thread (HTTP/1.1, or
//! HTTP/2 when configured; `https://` through rustls), and how a request is addressed to it.
//!
//! HTTP/1.1 goes through ficus's own client codec ([`crate::h1`]), run inside the request's
//! own task; HTTP/2 through hyper's connection API. Neither uses hyper-util's pooled `Client`:
//! it builds a connect future, hashes a pool key and spawns a task per request to learn when
//! a connection is idle again, which cost more CPU per request than nginx spends in total
//! (see bench/README.md). Here a pool is a per-worker LIFO stack of idle connections; a
//! connection goes back to it when the response body it carried has been read to the end.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ficus_config::{HostHeader, Upstream};
use http::request::Parts;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{header, HeaderValue, Method, Request, Response, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

use crate::body::{BoxError, RequestBody};
use crate::h1::{self, ExchangeError};

/// Why an upstream client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream \"{upstream}\": cannot read CA file {path}: {reason}")]
    CaFile {
        upstream: String,
        path: String,
        reason: String,
    },
    #[error("upstream \"{upstream}\": {reason}")]
    Invalid { upstream: String, reason: String },
}

/// Why a call to an upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Nothing was sent: no connection could be made (refused, timed out, TLS failed).
    #[error("{0}")]
    Connect(String),
    /// The request was sent, at least in part, and then the exchange failed.
    #[error(transparent)]
    Failed(BoxError),
}

/// What to do with the Host header on the way to this upstream.
#[derive(Debug, Clone)]
pub enum HostRewrite {
    Preserve,
    Set(HeaderValue),
}

thread_local! {
    static WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Marks the current thread as worker `id`: it then uses pool `id` of every upstream, so its
/// requests only ever use connections driven by its own runtime.
pub fn set_worker(id: usize) {
    WORKER.with(|w| w.set(id));
}

/// The current thread's worker index (0 outside worker threads).
#[inline]
pub fn worker() -> usize {
    WORKER.with(|w| w.get())
}

/// A keep-alive client for one upstream.
pub struct UpstreamClient {
    pub name: Arc<str>,
    /// The definition it was built from: a reload keeps the client (and its pools) when equal.
    pub config: Upstream,
    scheme: Scheme,
    authority: Authority,
    /// Where to connect.
    host: String,
    port: u16,
    /// Path prefix without trailing slash, or empty.
    prefix: String,
    pub host_rewrite: HostRewrite,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    pools: Box<[Arc<Pool>]>,
    /// `max_in_flight` with its wait queue (`None`: unlimited).
    pub limit: Option<ficus_protect::ConcurrencyLimit>,
    /// The circuit breaker (`None`: none configured).
    pub breaker: Option<ficus_protect::Breaker>,
    /// Where breaker state changes go (to become events).
    pub events: crate::events::Events,
    /// `scheme://authority` and the path prefix, and the host it connects to (no brackets
    /// around an IPv6 address), as trace spans name them.
    pub origin: Arc<str>,
    pub host_name: Arc<str>,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("name", &self.name)
            .field("url", &self.config.url)
            .finish()
    }
}

impl UpstreamClient {
    /// A client with `pools` independent connection pools (one per worker thread).
    pub fn new(
        cfg: &Upstream,
        pools: usize,
        events: &crate::events::Events,
    ) -> Result<UpstreamClient, UpstreamError> {
        let invalid = |reason: String| UpstreamError::Invalid {
            upstream: cfg.name.clone(),
            reason,
        };
        let scheme = cfg.url.scheme().cloned().unwrap_or(Scheme::HTTP);
        let authority = cfg
            .url
            .authority()
            .cloned()
            .ok_or_else(|| invalid("the url has no host".into()))?;
        let https = scheme == Scheme::HTTPS;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let host_rewrite = match &cfg.host {
            HostHeader::Preserve => HostRewrite::Preserve,
            HostHeader::Upstream => HostRewrite::Set(
                HeaderValue::from_str(authority.as_str())
                    .map_err(|_| invalid("its authority is not a header value".into()))?,
            ),
            HostHeader::Fixed(h) => HostRewrite::Set(
                HeaderValue::from_str(h)
                    .map_err(|_| invalid(format!("host {h:?} is not a valid header value")))?,
            ),
        };
        let tls = if https {
            let name = ServerName::try_from(host.clone())
                .map_err(|e| invalid(format!("{host:?} is not a TLS server name: {e}")))?;
            Some((
                tokio_rustls::TlsConnector::from(Arc::new(tls_config(cfg)?)),
                name,
            ))
        } else {
            None
        };
        let pools = (0..pools.max(1))
            .map(|_| {
                Arc::new(Pool {
                    http2: cfg.http2,
                    idle: Mutex::new(Vec::new()),
                    h2: Mutex::new(None),
                    max_idle: cfg.max_idle_connections,
                    idle_timeout: cfg.pool_idle_timeout,
                })
            })
            .collect();
        let protect = |e: ficus_protect::SpecError| invalid(e.to_string());
        let limit = cfg
            .limit
            .as_ref()
            .map(|l| {
                ficus_protect::ConcurrencyLimit::new(l.max_in_flight, l.queue, l.queue_timeout)
            })
            .transpose()
            .map_err(protect)?;
        let breaker = cfg
            .breaker
            .as_ref()
            .map(|b| {
                ficus_protect::Breaker::new(ficus_protect::BreakerSpec {
                    consecutive_failures: b.consecutive_failures,
                    failure_rate: b.failure_rate,
                    min_requests: b.min_requests,
                    window: b.window,
                    open_for: b.open_for,
                    max_open_for: ficus_config::defaults::BREAKER_MAX_OPEN_FOR.max(b.open_for),
                    half_open_probes: b.half_open_probes,
                })
            })
            .transpose()
            .map_err(protect)?;
        let prefix = cfg.path_prefix().to_string();
        Ok(UpstreamClient {
            origin: format!("{scheme}://{authority}{prefix}").into(),
            host_name: host.as_str().into(),
            limit,
            breaker,
            events: events.clone(),
            name: Arc::from(cfg.name.as_str()),
            config: cfg.clone(),
            scheme,
            authority,
            host,
            port,
            prefix,
            host_rewrite,
            tls,
            pools,
        })
    }

    pub fn pools(&self) -> usize {
        self.pools.len()
    }

    pub fn request_timeout(&self) -> Duration {
        self.config.request_timeout
    }

    /// The port it connects to, for trace spans.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path (and query) to send for a client's path: the upstream's prefix prepended.
    pub fn path_for(&self, pq: Option<&PathAndQuery>) -> PathAndQuery {
        match (self.prefix.is_empty(), pq) {
            (true, Some(pq)) => pq.clone(),
            (true, None) => PathAndQuery::from_static("/"),
            (false, pq) => {
                let rest = pq.map_or("/", |p| p.as_str());
                PathAndQuery::try_from(format!("{}{}", self.prefix, rest))
                    .unwrap_or_else(|_| PathAndQuery::from_static("/"))
            }
        }
    }

    /// Sends a request whose URI is origin-form (path and query). Idle pooled connections are
    /// used first. A pooled connection that turns out to have been closed by the upstream
    /// before it saw the request (a keep-alive race: nothing came back) is dropped and the
    /// request goes out again on another connection when that is safe: an idempotent method
    /// with a body that can be sent again. So an upstream's keep-alive timeout never shows as
    /// an error.
    ///
    /// `now` is the request's start, used as the clock for pool bookkeeping (one clock read
    /// per request; idle ages then count from the start of a connection's last request,
    /// which only ever expires it a little early).
    ///
    /// `raw`: the response goes to ficus's own HTTP/1.1 server loop, which can write an
    /// HTTP/1.1 upstream's header lines as they came ([`h1::RawHead`]) instead of a map.
    pub async fn send(
        &self,
        req: Request<RequestBody>,
        now: Instant,
        raw: bool,
    ) -> Result<UpstreamResponse, CallError> {
        let pool = &self.pools[worker() % self.pools.len()];
        let (mut parts, mut body) = req.into_parts();
        // A HEAD response keeps its Content-Length as it is: the map's way.
        let raw = raw && parts.method != Method::HEAD;
        loop {
            let (sender, reused) = match pool.checkout(now) {
                Some(s) => (s, true),
                // Boxed: connecting (TCP, TLS, handshake) is a large future that the common,
                // pooled path should not carry (and copy) in its own state.
                None => (Box::pin(self.connect(pool)).await?, false),
            };
            let mut conn = match sender {
                Sender::H1(c) => c,
                Sender::H2(s) => {
                    return Box::pin(self.send_h2(pool, s, reused, parts, body)).await;
                }
            };
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let mode = conn.encode_head(&parts, path, &body);
            let spare = if reused && idempotent(&parts.method) {
                body.try_clone()
            } else {
                None
            };
            match conn.exchange(body, mode, raw).await {
                Ok(head) => {
                    if raw {
                        // Written: the request's header map can take the headers of a
                        // request this worker's server loop reads next (the response
                        // brings no map of its own).
                        crate::h1server::recycle_map(std::mem::take(&mut parts.headers));
                    }
                    let home = Home {
                        pool: pool.clone(),
                        since: now,
                    };
                    let response =
                        head.into_response(conn, parts.method == Method::HEAD, Some(home));
                    return Ok(UpstreamResponse::new(response.map(UpstreamBody::H1)));
                }
                Err(ExchangeError::Stale(e)) => match spare {
                    Some(b) => {
                        tracing::debug!(upstream = %self.name, error = %e, "pooled connection was closed by the upstream; sending again");
                        body = b;
                    }
                    None => return Err(CallError::Failed(Box::new(e))),
                },
                Err(ExchangeError::Body(e)) => return Err(CallError::Failed(e)),
                Err(ExchangeError::Failed(e)) => return Err(CallError::Failed(Box::new(e))),
            }
        }
    }

    async fn send_h2(
        &self,
        pool: &Pool,
        mut s: http2::SendRequest<RequestBody>,
        mut reused: bool,
        parts: Parts,
        body: RequestBody,
    ) -> Result<UpstreamResponse, CallError> {
        let mut req = Request::from_parts(parts, body);
        self.to_h2(&mut req);
        loop {
            match s.try_send_request(req).await {
                Ok(resp) => return Ok(UpstreamResponse::new(resp.map(UpstreamBody::H2))),
                Err(mut e) => match e.take_message() {
                    Some(r) if reused => {
                        pool.forget_h2();
                        req = r;
                        s = match Box::pin(self.connect(pool)).await? {
                            Sender::H2(s) => s,
                            Sender::H1(_) => {
                                return Err(CallError::Connect(
                                    "the upstream no longer speaks HTTP/2".into(),
                                ))
                            }
                        };
                        reused = false;
                    }
                    Some(_) => return Err(CallError::Connect(e.into_error().to_string())),
                    None => return Err(CallError::Failed(Box::new(e.into_error()))),
                },
            }
        }
    }

    /// HTTP/2 carries the host in `:authority`, from an absolute URI.
    fn to_h2(&self, req: &mut Request<RequestBody>) {
        let authority = req
            .headers_mut()
            .remove(header::HOST)
            .and_then(|h| Authority::try_from(h.as_bytes()).ok())
            .unwrap_or_else(|| self.authority.clone());
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(authority);
        parts.path_and_query = req.uri().path_and_query().cloned();
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
        *req.version_mut() = Version::HTTP_2;
    }

    /// A new connection: TCP (and TLS) within the connect timeout, then the HTTP handshake.
    async fn connect(&self, pool: &Pool) -> Result<Sender, CallError> {
        let deadline = tokio::time::Instant::now() + self.config.connect_timeout;
        let timed_out = || {
            CallError::Connect(format!(
                "no connection within connect_timeout ({:?})",
                self.config.connect_timeout
            ))
        };
        let tcp = tokio::time::timeout_at(
            deadline,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| timed_out())?
        .map_err(|e| CallError::Connect(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let sender = match &self.tls {
            None if self.config.http2 => h2_handshake(TokioIo::new(tcp)).await?,
            None => Sender::H1(h1::Conn::new(h1::Io::Tcp(tcp))),
            Some((connector, name)) => {
                let tls = tokio::time::timeout_at(deadline, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|e| CallError::Connect(format!("TLS handshake failed: {e}")))?;
                if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                    h2_handshake(TokioIo::new(tls)).await?
                } else {
                    Sender::H1(h1::Conn::new(h1::Io::Tls(Box::new(tls))))
                }
            }
        };
        if let Sender::H2(s) = &sender {
            // One multiplexed connection serves every request of this worker.
            *pool.h2.lock().unwrap_or_else(|p| p.into_inner()) = Some(s.clone());
        }
        Ok(sender)
    }
}

async fn h2_handshake<I>(io: I) -> Result<Sender, CallError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .handshake(io)
        .await
        .map_err(|e| CallError::Connect(format!("HTTP/2 handshake failed: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Sender::H2(sender))
}

/// Methods whose request may be sent twice without changing the outcome (RFC 9110 9.2.2).
fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

enum Sender {
    H1(Box<h1::Conn>),
    H2(http2::SendRequest<RequestBody>),
}

/// One worker's connections to one upstream.
struct Pool {
    /// Whether HTTP/2 may be spoken (configured; over TLS it also takes ALPN's agreement).
    http2: bool,
    /// Idle HTTP/1.1 connections, most recently used last.
    idle: Mutex<Vec<Idle>>,
    /// The HTTP/2 connection, shared by concurrent requests.
    h2: Mutex<Option<http2::SendRequest<RequestBody>>>,
    max_idle: usize,
    idle_timeout: Duration,
}

struct Idle {
    conn: Box<h1::Conn>,
    since: Instant,
}

impl Pool {
    fn checkout(&self, now: Instant) -> Option<Sender> {
        if self.http2 {
            if let Some(h2) = self.h2.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                if !h2.is_closed() {
                    return Some(Sender::H2(h2.clone()));
                }
            }
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(mut c) = idle.pop() {
            if now.saturating_duration_since(c.since) < self.idle_timeout && c.conn.is_reusable() {
                return Some(Sender::H1(c.conn));
            }
        }
        None
    }

    fn put(&self, conn: Box<h1::Conn>, now: Instant) {
        if self.max_idle == 0 {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // The oldest sit at the front: drop those past the idle timeout or the size bound.
        // (Closed ones are found when they are checked out.)
        let expired = idle
            .iter()
            .take_while(|c| now.duration_since(c.since) >= self.idle_timeout)
            .count();
        let over = (idle.len() - expired + 1).saturating_sub(self.max_idle);
        idle.drain(..expired + over);
        idle.push(Idle { conn, since: now });
    }

    fn forget_h2(&self) {
        *self.h2.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Where an HTTP/1.1 connection goes back to once its response has been read to the end.
pub struct Home {
    pool: Arc<Pool>,
    /// When the request on this connection started: its idle age counts from here.
    since: Instant,
}

impl Home {
    pub(crate) fn put(self, conn: Box<h1::Conn>) {
        self.pool.put(conn, self.since);
    }
}

/// An upstream's response body: read straight from an HTTP/1.1 connection, or hyper's for
/// HTTP/2.
#[derive(Debug)]
pub enum UpstreamBody {
    H1(h1::H1Body),
    H2(Incoming),
}

impl UpstreamBody {
    /// For a 101 response over HTTP/1.1: the connection and the bytes already read past the
    /// head.
    pub fn into_upgraded(self) -> Option<(h1::Io, Bytes)> {
        match self {
            UpstreamBody::H1(b) => b.into_upgraded(),
            UpstreamBody::H2(_) => None,
        }
    }

    /// The head's header lines as they came, when the response was read that way.
    pub fn take_raw(&mut self) -> Option<h1::RawHead> {
        match self {
            UpstreamBody::H1(b) => b.take_raw(),
            UpstreamBody::H2(_) => None,
        }
    }

    /// The same, left in place.
    pub fn raw(&self) -> Option<&h1::RawHead> {
        match self {
            UpstreamBody::H1(b) => b.raw(),
            UpstreamBody::H2(_) => None,
        }
    }

    /// Whether the response's hop-by-hop headers were left out when its head was parsed.
    pub fn hop_by_hop_stripped(&self) -> bool {
        match self {
            UpstreamBody::H1(b) => b.hop_by_hop_stripped(),
            UpstreamBody::H2(_) => false,
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            UpstreamBody::H1(b) => std::pin::Pin::new(b).poll_frame(cx),
            UpstreamBody::H2(b) => std::pin::Pin::new(b)
                .poll_frame(cx)
                .map_err(|e| Box::new(e) as BoxError),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::H1(b) => b.is_end_stream(),
            UpstreamBody::H2(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::H1(b) => b.size_hint(),
            UpstreamBody::H2(b) => b.size_hint(),
        }
    }
}

/// An upstream's response.
#[derive(Debug)]
pub struct UpstreamResponse {
    pub response: Response<UpstreamBody>,
    /// The upstream's concurrency slot, held until the response body ends.
    pub permit: Option<ficus_protect::Permit>,
}

impl UpstreamResponse {
    fn new(response: Response<UpstreamBody>) -> UpstreamResponse {
        UpstreamResponse {
            response,
            permit: None,
        }
    }

    /// Drops a response ficus will not forward (a fallback status). Its connection goes
    /// back to the pool when the rest of the response was already read.
    pub fn discard(self) {
        drop(self);
    }
}

fn tls_config(cfg: &Upstream) -> Result<rustls::ClientConfig, UpstreamError> {
    let roots = trusted_roots(cfg.ca_file.as_deref()).map_err(|reason| UpstreamError::CaFile {
        upstream: cfg.name.clone(),
        path: cfg
            .ca_file
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        reason,
    })?;
    let alpn = if cfg.http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    client_tls(roots, alpn).map_err(|e| UpstreamError::Invalid {
        upstream: cfg.name.clone(),
        reason: e.to_string(),
    })
}

/// The roots a TLS client of ficus trusts: the web PKI's, plus the PEM certificates of
/// `ca_file` when given (an internal CA). The error says what is wrong with the file.
pub fn trusted_roots(ca_file: Option<&std::path::Path>) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| e.to_string())?
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        if certs.is_empty() {
            return Err("no PEM certificate in the file".into());
        }
        for c in certs {
            roots.add(c).map_err(|e| e.to_string())?;
        }
    }
    Ok(roots)
}

/// A TLS client configuration (ring, TLS 1.2 and 1.3, no client certificate) trusting
/// `roots` and offering `alpn`.
pub fn client_tls(
    roots: rustls::RootCertStore,
    alpn: Vec<Vec<u8>>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = alpn;
    Ok(tls)
}
