//! The request path: match a route, decide the side, call the upstream, fall back to legacy
//! where allowed, stream the response back. Never awaits anything but the upstreams.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::request::Parts;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::access_log::{AccessLogSender, AccessRecord};
use crate::body::{self, Capped, Reclaimable, RequestBody, ResponseBody};
use crate::headers::{self, X_FICUS_ROUTE, X_FICUS_UPSTREAM};
use crate::mirror::Tap;
use crate::problem::Problem;
use crate::router::{self, RequestView};
use crate::split::Side;
use crate::table::{CompiledRoute, RouteTable};
use crate::trace::{AttemptEnd, Served, Trace};
use crate::upstream::{worker, CallError, HostRewrite, UpstreamClient, UpstreamResponse};
use ficus_telemetry::SliScope;

/// State shared by every connection: the current table, the access-log channel and the
/// tracer (`[tracing]`, fixed at start).
pub struct Shared {
    pub table: arc_swap::ArcSwap<RouteTable>,
    pub access_log: Option<AccessLogSender>,
    pub telemetry: std::sync::Arc<ficus_telemetry::Telemetry>,
    pub tracer: Option<Arc<ficus_trace::Tracer>>,
}

/// What is known about a client connection, computed once per connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// The peer IP as a header value: `X-Forwarded-For` and the `client-ip` sticky key.
    pub peer_ip: HeaderValue,
    /// `http` or `https`, for `X-Forwarded-Proto`.
    pub proto: HeaderValue,
}

impl ConnInfo {
    pub fn new(peer: SocketAddr, tls: bool) -> ConnInfo {
        ConnInfo {
            peer,
            peer_ip: HeaderValue::from_str(&peer.ip().to_string())
                .expect("an IP address is a header value"),
            proto: HeaderValue::from_static(if tls { "https" } else { "http" }),
        }
    }
}

/// Who produced the response, for the debug header, the access log and telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    Legacy,
    Modern,
    /// Modern failed and legacy answered the same request.
    LegacyFallback,
    /// ficus answered itself (an error before or instead of any upstream answer).
    Gateway,
    /// The route's response cache answered (a hit, a stale hit or a coalesced fetch).
    Cache,
}

impl Answered {
    pub fn as_str(self) -> &'static str {
        match self {
            Answered::Legacy => "legacy",
            Answered::Modern => "modern",
            Answered::LegacyFallback => "legacy-fallback",
            Answered::Cache => "cache",
            Answered::Gateway => "gateway",
        }
    }

    fn header(self) -> HeaderValue {
        HeaderValue::from_static(self.as_str())
    }
}

/// The result of one upstream call.
enum Outcome {
    Response(UpstreamResponse),
    /// Nothing was sent: the connection could not be made.
    Connect(String),
    /// No response head within the upstream's request timeout.
    Timeout,
    /// The client's body went over the route's limit while streaming.
    BodyTooLarge(u64),
    /// Sent (at least partly), then the exchange failed.
    Failed(body::BoxError),
    /// Not sent: the upstream's circuit breaker is open (retry after this long).
    Open(std::time::Duration),
    /// Not sent: the upstream is at its concurrency limit and the request was shed.
    Shed(ficus_protect::Shed),
    /// The client's body failed (malformed, the client left, or it stalled): the client's
    /// fault, never counted against the upstream.
    Client(body::ClientFault),
}

impl Outcome {
    /// What the client would see from this side: ficus's own 502/504 for failures.
    fn status(&self) -> u16 {
        match self {
            Outcome::Response(r) => r.response.status().as_u16(),
            Outcome::Connect(_) | Outcome::Failed(_) => 502,
            Outcome::Timeout => 504,
            Outcome::BodyTooLarge(_) => 413,
            Outcome::Open(_) | Outcome::Shed(_) => 503,
            Outcome::Client(f) => f.status(),
        }
    }

    /// Why there is no response, as a trace span's `error.type` says it.
    fn error_type(&self) -> Option<&'static str> {
        match self {
            Outcome::Response(_) => None,
            Outcome::Connect(_) => Some("connect"),
            Outcome::Timeout => Some("timeout"),
            Outcome::BodyTooLarge(_) => Some("body_too_large"),
            Outcome::Failed(_) => Some("failed"),
            Outcome::Open(_) => Some("breaker_open"),
            Outcome::Shed(_) => Some("shed"),
            Outcome::Client(_) => Some("client_fault"),
        }
    }
}

/// Handles one client request (as hyper's server hands it over) end to end.
pub async fn handle(
    shared: &Shared,
    conn: &ConnInfo,
    mut req: Request<Incoming>,
) -> Response<ResponseBody> {
    let upgrade = headers::is_upgrade_request(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    handle_parts(
        shared,
        conn,
        parts,
        Inbound::Body(body),
        upgrade,
        client_upgrade,
        false,
    )
    .await
}

/// Handles one client request end to end, from its head and body (hyper's stream, or the
/// whole small body, or none, of a request read by [`crate::h1server`]).
pub async fn handle_parts(
    shared: &Shared,
    conn: &ConnInfo,
    mut parts: Parts,
    body: Inbound,
    upgrade: bool,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    raw: bool,
) -> Response<ResponseBody> {
    let started = Instant::now();
    let table = shared.table.load_full();
    let route = {
        // One authority for routing and forwarding (`headers::decide_authority`); the usual
        // request's is read as it is.
        let host = match headers::plain_host(&parts) {
            Some(h) => Some(h),
            None => {
                if let Err(e) = headers::decide_authority(&mut parts) {
                    return bad_host(shared, &table, conn, &parts, e, started);
                }
                router::request_host(&parts.uri, &parts.headers)
            }
        };
        let view = RequestView {
            method: &parts.method,
            host,
            path: parts.uri.path(),
            headers: &parts.headers,
        };
        table.route_for(&view)
    };
    let log = shared
        .access_log
        .as_ref()
        .filter(|_| table.config.access_log.enabled)
        .map(|tx| {
            (
                tx,
                parts.method.clone(),
                parts.uri.path_and_query().cloned(),
            )
        });

    // Recording (a route that records, a sampled request): the head as it reached ficus, the
    // body copied as it streams.
    let rec = match &route.record {
        Some(slot) => slot.begin(&mut parts, conn.peer_ip.as_bytes(), route.stage, upgrade),
        None => None,
    };
    let body = match &rec {
        Some(t) => t.tee_request(body),
        None => body,
    };
    let mut trace = Trace::begin(shared.tracer.as_deref(), &mut parts.headers, started);
    let (mut resp, answered, request_id) = route_request(
        &table,
        route,
        conn,
        &mut parts,
        &mut trace,
        body,
        upgrade,
        client_upgrade,
        started,
        log.is_some(),
        // The debug headers replace any of the same name from the upstream: the map's way.
        // A recording copies the raw header lines as they are.
        raw && !route.debug_header,
    )
    .await;

    if let Some(sli) = route
        .stats
        .as_deref()
        .map(|s| s.sli(SliScope::Route))
        .filter(|sli| sli.enabled())
    {
        // The route's SLI: each client request once, as the client saw it (the clock is
        // read only while an SLO covers the route).
        sli.record(worker(), resp.status().as_u16(), started.elapsed());
    }
    if route.stats.is_some() && answered != Answered::Gateway {
        let modern = answered == Answered::Modern;
        shared.telemetry.inventory().observe(
            worker(),
            &route.name,
            parts.method.as_str(),
            parts.uri.path(),
            modern,
        );
    }
    if route.debug_header {
        let h = resp.headers_mut();
        h.insert(X_FICUS_UPSTREAM.clone(), answered.header());
        h.insert(X_FICUS_ROUTE.clone(), route.name_header.clone());
    }
    if let Some(mut t) = rec {
        // The response as the client gets it; offered to the recorder once it got it whole.
        let lines = resp.body().raw_head().map(|r| &r.lines[..]);
        t.response_head(resp.status(), lines, resp.headers(), answered);
        resp = resp.map(|b| ResponseBody::recorded(b, t));
    }
    let trace_id = trace.trace_id();
    trace.finish(Served {
        route,
        parts: &parts,
        conn,
        status: resp.status().as_u16(),
        answered,
    });
    if let Some((tx, method, path)) = log {
        tx.send(AccessRecord {
            at: std::time::SystemTime::now(),
            duration: started.elapsed(),
            client: conn.peer.ip(),
            method,
            path,
            route: route.name.clone(),
            answered,
            status: resp.status().as_u16(),
            request_id: request_id.unwrap_or_else(|| HeaderValue::from_static("-")),
            trace_id,
        });
    }
    resp
}

#[allow(clippy::too_many_arguments)]
async fn route_request(
    table: &Arc<RouteTable>,
    route: &CompiledRoute,
    conn: &ConnInfo,
    parts: &mut Parts,
    trace: &mut Trace<'_>,
    body: Inbound,
    upgrade: bool,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    started: Instant,
    want_id: bool,
    raw: bool,
) -> (Response<ResponseBody>, Answered, Option<HeaderValue>) {
    // Both sides (and the access log) see the same id, the client's or a new one.
    let request_id = headers::prepare_request(
        &mut parts.headers,
        parts.uri.authority(),
        upgrade,
        &conn.peer_ip,
        &conn.proto,
        want_id,
    );
    let (resp, answered) = forward(
        table,
        route,
        conn,
        parts,
        trace,
        body,
        upgrade,
        client_upgrade,
        started,
        raw,
    )
    .await;
    (resp, answered, request_id)
}

/// A client's request body as the request path takes it: hyper's stream, a small body the
/// server loop read whole, or none (also for a request ficus sends on its own behalf, such as
/// a cache refresh or a coalesced fetch).
pub enum Inbound {
    Empty,
    Body(Incoming),
    /// hyper's stream, copied into a recording as it goes.
    Teed(Incoming, Arc<crate::mirror::Capture>),
    /// Never empty.
    Full(bytes::Bytes),
}

impl Inbound {
    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            Inbound::Empty => http_body::SizeHint::with_exact(0),
            Inbound::Body(b) | Inbound::Teed(b, _) => b.size_hint(),
            Inbound::Full(b) => http_body::SizeHint::with_exact(b.len() as u64),
        }
    }

    /// The body to stream upstream, capped at the route's limit and, for a mirrored
    /// request, copied into the mirror's capture as it goes.
    fn stream(self, limit: u64, tee: Option<Arc<crate::mirror::Capture>>) -> RequestBody {
        match (self, tee) {
            (Inbound::Empty, Some(t)) => {
                t.complete();
                RequestBody::Empty
            }
            (Inbound::Empty, None) => RequestBody::Empty,
            // Over-limit bodies were refused (413) before anything was sent.
            (Inbound::Full(b), Some(t)) => {
                t.push(&b);
                t.complete();
                RequestBody::Full(Some(b))
            }
            (Inbound::Full(b), None) => RequestBody::Full(Some(b)),
            (Inbound::Body(b), Some(t)) => RequestBody::Stream(Capped::teed(b, limit, t)),
            (Inbound::Body(b), None) => RequestBody::Stream(Capped::new(b, limit)),
            // Recorded, and mirrored: the mirror's copy passes each frame on.
            (Inbound::Teed(b, r), Some(t)) => {
                t.chain(r);
                RequestBody::Stream(Capped::teed(b, limit, t))
            }
            (Inbound::Teed(b, r), None) => RequestBody::Stream(Capped::teed(b, limit, r)),
        }
    }
}

/// The route's evaluated flags, in the header its upstreams read (the client's own value of
/// that header dropped).
fn forward_flags(
    route: &CompiledRoute,
    ff: &crate::flags::FlagForward,
    conn: &ConnInfo,
    parts: &mut Parts,
) {
    // Evaluated while the sticky key still borrows the headers, then written: no copy.
    let value = ff.value(
        crate::table::sticky_key(
            &route.sticky,
            &parts.headers,
            parts.uri.query(),
            conn.peer_ip.as_bytes(),
        ),
        &parts.headers,
    );
    ff.replace(value, &mut parts.headers);
}

#[allow(clippy::too_many_arguments)]
async fn forward(
    table: &Arc<RouteTable>,
    route: &CompiledRoute,
    conn: &ConnInfo,
    parts: &mut Parts,
    trace: &mut Trace<'_>,
    body: Inbound,
    upgrade: bool,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    started: Instant,
    raw: bool,
) -> (Response<ResponseBody>, Answered) {
    if parts.method == http::Method::CONNECT {
        return (connect_refused(route), Answered::Gateway);
    }
    // HTTP/2 announces an empty body with `content-length: 0`, but the stream may still
    // carry DATA: it must end without any before the request goes anywhere.
    let body = match body {
        Inbound::Body(b)
            if parts.version == http::Version::HTTP_2 && b.size_hint().exact() == Some(0) =>
        {
            match h2_empty_body(route, b).await {
                Ok(()) => Inbound::Empty,
                Err(fault) => return (client_fault(route, None, fault), Answered::Gateway),
            }
        }
        Inbound::Teed(b, r)
            if parts.version == http::Version::HTTP_2 && b.size_hint().exact() == Some(0) =>
        {
            match h2_empty_body(route, b).await {
                Ok(()) => {
                    r.complete();
                    Inbound::Empty
                }
                Err(fault) => return (client_fault(route, None, fault), Answered::Gateway),
            }
        }
        other => other,
    };
    // hyper parsed Content-Length already: an announced body over the limit is refused
    // before anything is read or sent.
    if body.size_hint().lower() > route.max_body_bytes {
        return (too_large(route, route.max_body_bytes), Answered::Gateway);
    }
    if let Some(rate) = &route.rate {
        let d = rate.check(
            &route.sticky,
            &parts.headers,
            parts.uri.query(),
            conn.peer_ip.as_bytes(),
        );
        if !d.is_allowed() {
            return (rate_limited(route, rate, &d), Answered::Gateway);
        }
    }
    let side = route.decide(&parts.headers, parts.uri.query(), conn.peer_ip.as_bytes());
    trace.side(side);
    if let Some(ff) = &route.forward_flags {
        forward_flags(route, ff, conn, parts);
    }
    if let Some(cache) = &route.cache {
        if !upgrade
            && body.size_hint().exact() == Some(0)
            && cache.cache.applies_to(&parts.method, &parts.headers)
        {
            // Boxed: the cache's future is large and must not be carried (and copied) by
            // every request's future, cached or not.
            return Box::pin(crate::cached::serve(
                table, route, cache, conn, parts, trace, side, started,
            ))
            .await;
        }
    }
    proxy_to(
        route,
        conn,
        parts,
        trace,
        body,
        side,
        upgrade,
        client_upgrade,
        started,
        raw,
    )
    .await
}

/// The request path after the checks: the chosen side, fallback, the response. `raw`: the
/// response goes to ficus's own HTTP/1.1 server loop, which can take an upstream's header
/// lines as they came (never for a mirrored response, whose headers the mirror compares).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn proxy_to(
    route: &CompiledRoute,
    conn: &ConnInfo,
    parts: &mut Parts,
    trace: &mut Trace<'_>,
    body: Inbound,
    side: Side,
    upgrade: bool,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    started: Instant,
    raw: bool,
) -> (Response<ResponseBody>, Answered) {
    let modern = match (side, &route.modern) {
        (Side::Modern, Some(m)) => m,
        _ => {
            let tap = match &route.mirror {
                Some(m) if !upgrade => m.tap(
                    parts,
                    body.size_hint().exact(),
                    conn.peer_ip.as_bytes(),
                    trace.link(),
                ),
                _ => None,
            };
            let body = body.stream(
                route.max_body_bytes,
                tap.as_ref().map(|t| t.request.clone()),
            );
            let headers = std::mem::take(&mut parts.headers);
            let raw = raw && tap.is_none();
            let outcome = send_retrying(
                route,
                Side::Legacy,
                raw,
                parts,
                trace,
                headers,
                body,
                started,
            )
            .await;
            return answer(
                route,
                &route.legacy,
                outcome,
                Answered::Legacy,
                client_upgrade,
                tap,
            );
        }
    };

    let can_fall_back = route.legacy_is_fallback() && !upgrade;
    if !can_fall_back {
        let body = body.stream(route.max_body_bytes, None);
        let headers = std::mem::take(&mut parts.headers);
        let outcome = send_retrying(
            route,
            Side::Modern,
            raw,
            parts,
            trace,
            headers,
            body,
            started,
        )
        .await;
        return answer(
            route,
            modern,
            outcome,
            Answered::Modern,
            client_upgrade,
            None,
        );
    }

    // Keep what is needed to send the same request to legacy.
    let body = match prepare_resendable(route, body).await {
        Ok(b) => b,
        Err(resp) => return (resp, Answered::Gateway),
    };
    let resend = body.try_clone();
    let if_unsent = IfUnsent::of(&body);
    let outcome = send(
        route,
        Side::Modern,
        raw,
        parts,
        trace,
        parts.headers.clone(),
        body,
        Instant::now(),
    )
    .await;
    let may_resend = route.may_resend(&parts.method);
    let retry_body = match outcome {
        Outcome::Response(resp) => {
            let status = resp.response.status().as_u16();
            match resend.filter(|_| may_resend && route.falls_back_on(status)) {
                Some(b) => {
                    resp.discard();
                    b
                }
                None => {
                    return answer(
                        route,
                        modern,
                        Outcome::Response(resp),
                        Answered::Modern,
                        None,
                        None,
                    )
                }
            }
        }
        // Nothing reached modern (no connection, its breaker open, or shed at its limit): any
        // method may go to legacy, with the body kept or reclaimed.
        unsent @ (Outcome::Connect(_) | Outcome::Open(_) | Outcome::Shed(_)) => {
            match resend.or_else(|| if_unsent.take()) {
                Some(b) => b,
                None => return answer(route, modern, unsent, Answered::Modern, None, None),
            }
        }
        Outcome::Timeout => match resend.filter(|_| may_resend && route.fallback_on_timeout) {
            Some(b) => b,
            None => {
                return answer(
                    route,
                    modern,
                    Outcome::Timeout,
                    Answered::Modern,
                    None,
                    None,
                )
            }
        },
        Outcome::Failed(e) => match resend.filter(|_| may_resend) {
            Some(b) => b,
            None => {
                return answer(
                    route,
                    modern,
                    Outcome::Failed(e),
                    Answered::Modern,
                    None,
                    None,
                )
            }
        },
        Outcome::BodyTooLarge(limit) => return (too_large(route, limit), Answered::Gateway),
        Outcome::Client(fault) => {
            return (client_fault(route, Some(modern), fault), Answered::Gateway)
        }
    };
    let headers = std::mem::take(&mut parts.headers);
    if let Some(stats) = &route.stats {
        stats.side(true).record_fallback(worker());
    }
    let outcome = send_retrying(
        route,
        Side::Legacy,
        raw,
        parts,
        trace,
        headers,
        retry_body,
        Instant::now(),
    )
    .await;
    answer(
        route,
        &route.legacy,
        outcome,
        Answered::LegacyFallback,
        None,
        None,
    )
}

/// What of a body that cannot be sent twice may still go to legacy when nothing of it went
/// to modern (no connection, an open breaker, shed): a body held whole (`Once`) is copied up
/// front, a stream (`Shared`) is taken back if it was never polled.
enum IfUnsent {
    Nothing,
    Copy(bytes::Bytes),
    Reclaim(Reclaimable),
}

impl IfUnsent {
    fn of(body: &RequestBody) -> IfUnsent {
        match body {
            RequestBody::Once(Some(b)) => IfUnsent::Copy(b.clone()),
            RequestBody::Shared(r) => IfUnsent::Reclaim(r.clone()),
            _ => IfUnsent::Nothing,
        }
    }

    fn take(self) -> Option<RequestBody> {
        match self {
            IfUnsent::Nothing => None,
            IfUnsent::Copy(b) => Some(RequestBody::Once(Some(b))),
            IfUnsent::Reclaim(r) => r.reclaim().map(RequestBody::Stream),
        }
    }
}

/// Buffers a small body so it can be sent twice; larger or unannounced bodies stream, and can
/// only be re-sent if the first send never read them.
async fn prepare_resendable(
    route: &CompiledRoute,
    body: Inbound,
) -> Result<RequestBody, Response<ResponseBody>> {
    let (body, tee) = match body {
        Inbound::Empty => return Ok(RequestBody::Empty),
        // Already in memory; kept for a re-send within the route's buffer, like hyper's.
        Inbound::Full(b) if b.len() as u64 <= route.max_buffered_body => {
            return Ok(RequestBody::Full(Some(b)))
        }
        Inbound::Full(b) => return Ok(RequestBody::Once(Some(b))),
        Inbound::Body(b) => (b, None),
        Inbound::Teed(b, r) => (b, Some(r)),
    };
    if body.is_end_stream() {
        if let Some(r) = &tee {
            r.complete();
        }
        return Ok(RequestBody::Empty);
    }
    match body.size_hint().exact() {
        Some(n) if n <= route.max_buffered_body => match read_whole(route, body, n).await {
            Ok(b) => {
                if let Some(r) = &tee {
                    r.push(&b);
                    r.complete();
                }
                Ok(RequestBody::Full(Some(b)))
            }
            Err(Err(fault)) => Err(client_fault(route, None, fault)),
            Err(Ok(limit)) => Err(too_large(route, limit)),
        },
        _ => Ok(RequestBody::Shared(Reclaimable::new(match tee {
            Some(r) => Capped::teed(body, route.max_body_bytes, r),
            None => Capped::new(body, route.max_body_bytes),
        }))),
    }
}

/// Whether an HTTP/2 body announced as `content-length: 0` ends without data: at once for
/// a stream that ended with its HEADERS (one poll, no allocation); otherwise its end is
/// awaited (boxed, under `client_body_timeout`). A DATA frame with bytes is a malformed
/// request (RFC 9113 8.1.1), refused before anything is sent upstream.
async fn h2_empty_body(route: &CompiledRoute, mut b: Incoming) -> Result<(), body::ClientFault> {
    let first = {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        std::pin::Pin::new(&mut b).poll_frame(&mut cx)
    };
    match first {
        std::task::Poll::Ready(None) => Ok(()),
        std::task::Poll::Ready(Some(Err(e))) => Err(body::ClientFault::of(&e)),
        std::task::Poll::Ready(Some(Ok(f))) if f.data_ref().is_some_and(|d| !d.is_empty()) => {
            Err(body::ClientFault::Malformed)
        }
        _ => Box::pin(h2_empty_body_end(route, b)).await,
    }
}

#[cold]
#[inline(never)]
async fn h2_empty_body_end(
    route: &CompiledRoute,
    mut b: Incoming,
) -> Result<(), body::ClientFault> {
    loop {
        match tokio::time::timeout(route.body_timeout, b.frame()).await {
            Err(_) => return Err(body::ClientFault::Slow),
            Ok(None) => return Ok(()),
            Ok(Some(Err(e))) => return Err(body::ClientFault::of(&e)),
            Ok(Some(Ok(f))) if f.data_ref().is_some_and(|d| !d.is_empty()) => {
                return Err(body::ClientFault::Malformed)
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Reads a client's body of `len` announced bytes whole, allowing the route's
/// `client_body_timeout` between two reads (nginx's `client_body_timeout`). `Err(Ok(limit))`:
/// more than the route's `max_body`; `Err(Err(fault))`: the client's body failed or stalled.
async fn read_whole(
    route: &CompiledRoute,
    mut body: Incoming,
    len: u64,
) -> Result<bytes::Bytes, Result<u64, body::ClientFault>> {
    let mut buf = bytes::BytesMut::with_capacity(usize::try_from(len).unwrap_or(0));
    loop {
        let frame = match tokio::time::timeout(route.body_timeout, body.frame()).await {
            Err(_) => return Err(Err(body::ClientFault::Slow)),
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(e))) => return Err(Err(body::ClientFault::of(&e))),
            Ok(Some(Ok(f))) => f,
        };
        if let Ok(d) = frame.into_data() {
            if (buf.len() + d.len()) as u64 > route.max_body_bytes {
                return Err(Ok(route.max_body_bytes));
            }
            buf.extend_from_slice(&d);
        }
    }
}

/// Sends a request, and again after a connect error or a 502/503/504 when the route has
/// `[route.retry]`, the method is safe, the body can be sent again and the route's retry
/// budget allows it (so retries never multiply an outage: at most `budget` extra load plus
/// `min_per_second`). Each retry waits a jittered, doubling backoff and gets a fresh
/// request timeout. A circuit breaker's refusal or a shed request is not retried: both mean
/// "send less". Modern's failures on a route with fallback go to legacy instead (see
/// [`forward`]), which is why the first modern call there is a plain [`send`].
#[allow(clippy::too_many_arguments)]
async fn send_retrying(
    route: &CompiledRoute,
    side: Side,
    raw: bool,
    parts: &Parts,
    trace: &mut Trace<'_>,
    headers: HeaderMap,
    body: RequestBody,
    started: Instant,
) -> Outcome {
    match &route.retry {
        None => send(route, side, raw, parts, trace, headers, body, started).await,
        // Boxed, like the cache: a route without retries must not carry the retry loop's
        // state in its request future.
        Some(retry) => {
            Box::pin(send_with_retries(
                route, retry, side, raw, parts, trace, headers, body, started,
            ))
            .await
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn send_with_retries(
    route: &CompiledRoute,
    retry: &crate::table::RouteRetry,
    side: Side,
    raw: bool,
    parts: &Parts,
    trace: &mut Trace<'_>,
    headers: HeaderMap,
    body: RequestBody,
    started: Instant,
) -> Outcome {
    retry.budget.deposit();
    let body = body.settled();
    let again = match body.try_clone() {
        Some(b) if ficus_protect::retryable(&parts.method, &[]) => b,
        _ => return send(route, side, raw, parts, trace, headers, body, started).await,
    };
    let mut outcome = send(
        route,
        side,
        raw,
        parts,
        trace,
        headers.clone(),
        body,
        started,
    )
    .await;
    let mut spare = Some(again);
    for attempt in 0..retry.spec.attempts {
        let failed = match &outcome {
            Outcome::Connect(_) => true,
            Outcome::Response(r) => matches!(r.response.status().as_u16(), 502..=504),
            _ => false,
        };
        if !failed || !retry.budget.try_withdraw() {
            break;
        }
        let Some(body) = spare.take() else { break };
        spare = body.try_clone();
        if let Outcome::Response(r) = outcome {
            r.discard();
        }
        let seed = crate::rand::next_u64();
        tokio::time::sleep(ficus_protect::backoff(
            attempt,
            retry.spec.backoff,
            retry.spec.max_backoff,
            seed,
        ))
        .await;
        outcome = send(
            route,
            side,
            raw,
            parts,
            trace,
            headers.clone(),
            body,
            Instant::now(),
        )
        .await;
    }
    outcome
}

/// Sends one request to an upstream. Its request timeout counts from `started`: the arrival
/// of the request for a plain call (saving a clock read per request), the moment of sending
/// for a call after ficus buffered the body or after a failed first attempt.
#[allow(clippy::too_many_arguments)]
async fn send(
    route: &CompiledRoute,
    side: Side,
    raw: bool,
    parts: &Parts,
    trace: &mut Trace<'_>,
    mut headers: HeaderMap,
    body: RequestBody,
    started: Instant,
) -> Outcome {
    let up = match (side, &route.modern) {
        (Side::Modern, Some(m)) => m,
        _ => &route.legacy,
    };
    // The attempt's traceparent (tracing on); its span ends with the outcome (sampled).
    let attempt = trace.attempt(&mut headers, side);
    // The breaker first (an open one costs nothing downstream), then a concurrency slot.
    let probe = match &up.breaker {
        None => None,
        Some(b) => match b.admit(started) {
            ficus_protect::Admit::Allow => Some(false),
            ficus_protect::Admit::Probe { transition } => {
                if let Some(t) = transition {
                    up.events.emit(crate::events::breaker_event(&up.name, &t));
                }
                Some(true)
            }
            ficus_protect::Admit::Reject { retry_after } => {
                side_sli(route, side, started);
                return ended(trace, attempt, parts, up, Outcome::Open(retry_after));
            }
        },
    };
    let permit = match &up.limit {
        None => None,
        Some(l) => match l.acquire(route.priority).await {
            Ok(p) => Some(p),
            Err(shed) => {
                if probe == Some(true) {
                    // Give the probe slot back: nothing was learnt about the upstream.
                    record_breaker(up, started, None, true);
                }
                side_sli(route, side, started);
                return ended(trace, attempt, parts, up, Outcome::Shed(shed));
            }
        },
    };
    let stats = route.stats.as_deref().map(|s| s.side(side == Side::Modern));
    let w = worker();
    let _in_flight = stats.map(|s| s.begin(w));
    if let HostRewrite::Set(h) = &up.host_rewrite {
        headers.insert(header::HOST, h.clone());
    }
    // A streamed body tells whether a timeout found ficus waiting for the client.
    let mut body = body;
    let progress = body.progress();
    let mut req = Request::new(body);
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = Uri::from(up.path_for(parts.uri.path_and_query()));
    *req.headers_mut() = headers;
    let deadline = tokio::time::Instant::from_std(started + up.request_timeout());
    let outcome = match tokio::time::timeout_at(deadline, up.send(req, started, raw)).await {
        Err(_) => match progress {
            Some(p) if p.waiting_for_client() => Outcome::Client(body::ClientFault::Slow),
            _ => Outcome::Timeout,
        },
        Ok(Ok(resp)) => Outcome::Response(resp),
        Ok(Err(CallError::Connect(e))) => Outcome::Connect(e),
        Ok(Err(CallError::Failed(e))) => match body::is_body_too_large(&*e) {
            Some(limit) => Outcome::BodyTooLarge(limit),
            None => match body::client_fault(&*e) {
                Some(fault) => Outcome::Client(fault),
                None => Outcome::Failed(e),
            },
        },
    };
    let status = outcome.status();
    // A client's fault says nothing about the upstream: not in its numbers (which the
    // rollout judge reads), not in its breaker.
    let client = matches!(outcome, Outcome::Client(_));
    if let Some(s) = stats.filter(|_| !client) {
        let latency = started.elapsed();
        s.record(w, status, latency);
        if let Some(r) = &route.stats {
            r.sli(SliScope::side(side == Side::Modern))
                .record(w, status, latency);
        }
    }
    if let Some(probe) = probe {
        // A body over the route's limit is the client's doing, not the upstream's.
        let failed = match &outcome {
            Outcome::BodyTooLarge(_) | Outcome::Client(_) => None,
            _ => Some(matches!(status, 502..=504)),
        };
        record_breaker(up, started, failed, probe);
    }
    if attempt.recording() {
        trace_attempt(trace, attempt, parts, up, &outcome);
    }
    match outcome {
        Outcome::Response(mut r) => {
            r.permit = permit;
            Outcome::Response(r)
        }
        other => other,
    }
}

/// A side's SLI counts an attempt refused before it was sent (an open breaker, shed) as the
/// 503 the client would get from it.
fn side_sli(route: &CompiledRoute, side: Side, started: Instant) {
    if let Some(sli) = route
        .stats
        .as_deref()
        .map(|s| s.sli(SliScope::side(side == Side::Modern)))
        .filter(|sli| sli.enabled())
    {
        sli.record(worker(), 503, started.elapsed());
    }
}

/// An attempt that ended before anything was sent (an open breaker, shed).
fn ended(
    trace: &mut Trace<'_>,
    attempt: crate::trace::Attempt,
    parts: &Parts,
    up: &UpstreamClient,
    outcome: Outcome,
) -> Outcome {
    if attempt.recording() {
        trace_attempt(trace, attempt, parts, up, &outcome);
    }
    outcome
}

/// Ends a sampled attempt's client span.
#[cold]
#[inline(never)]
fn trace_attempt(
    trace: &mut Trace<'_>,
    attempt: crate::trace::Attempt,
    parts: &Parts,
    up: &UpstreamClient,
    outcome: &Outcome,
) {
    trace.attempt_end(
        attempt,
        AttemptEnd {
            method: &parts.method,
            upstream: up,
            uri: &parts.uri,
            status: outcome.status(),
            error: outcome.error_type(),
        },
    );
}

/// Tells the upstream's breaker how a call went (`None`: nothing learnt, which only frees a
/// probe slot), and raises an event when that changes its state.
fn record_breaker(up: &UpstreamClient, now: Instant, failed: Option<bool>, probe: bool) {
    let Some(b) = &up.breaker else { return };
    let outcome = match failed {
        Some(true) => ficus_protect::Outcome::Failure,
        Some(false) => ficus_protect::Outcome::Success,
        None if probe => ficus_protect::Outcome::Success,
        None => return,
    };
    if let Some(t) = b.record(now, outcome, probe) {
        up.events.emit(crate::events::breaker_event(&up.name, &t));
    }
}

/// Turns an upstream outcome into the client's response.
fn answer(
    route: &CompiledRoute,
    up: &UpstreamClient,
    outcome: Outcome,
    answered: Answered,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    tap: Option<Box<Tap>>,
) -> (Response<ResponseBody>, Answered) {
    match outcome {
        Outcome::Response(UpstreamResponse {
            mut response,
            permit,
        }) => {
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                // The connection now belongs to the tunnel, never to the pool.
                let (head, body) = response.into_parts();
                if let (Some(client), Some((upstream, early))) =
                    (client_upgrade, body.into_upgraded())
                {
                    tokio::spawn(tunnel(client, upstream, early));
                }
                return (Response::from_parts(head, ResponseBody::empty()), answered);
            } else if !response.body().hop_by_hop_stripped() {
                headers::strip_hop_by_hop(response.headers_mut(), false);
            }
            let tap = tap.map(|mut t| {
                t.response_head(response.status(), response.headers());
                t
            });
            (
                response.map(|b| ResponseBody::held(b, permit, tap, up.config.read_timeout)),
                answered,
            )
        }
        failed => (
            failure(route, up, failed, answered == Answered::LegacyFallback),
            Answered::Gateway,
        ),
    }
}

/// ficus's own answer when the upstream gave none: a problem naming the route, the upstream
/// and what to fix. Cold, and kept out of line: its formatting is most of [`answer`]'s code,
/// and inlined it spread the path every proxied response takes over more cache lines.
#[cold]
#[inline(never)]
fn failure(
    route: &CompiledRoute,
    up: &UpstreamClient,
    outcome: Outcome,
    fell_back: bool,
) -> Response<ResponseBody> {
    let also = if fell_back {
        " (after the modern upstream failed)"
    } else {
        ""
    };
    match outcome {
        Outcome::Response(r) => r
            .response
            .map(|b| ResponseBody::held(b, r.permit, None, up.config.read_timeout)),
        Outcome::Connect(e) =>
            Problem::new(StatusCode::BAD_GATEWAY, "upstream-unreachable", "Upstream unreachable")
                .route(&route.name)
                .upstream(&up.name)
                .detail(format!(
                    "could not connect to upstream \"{}\" at {}{also}: {e}",
                    up.name, up.config.url,
                ))
                .fix(format!(
                    "check that upstream \"{}\" is running and reachable at {} (connect_timeout = {:?})",
                    up.name, up.config.url, up.config.connect_timeout
                ))
                .into_response(),
        Outcome::Timeout =>
            Problem::new(StatusCode::GATEWAY_TIMEOUT, "upstream-timeout", "Upstream timed out")
                .route(&route.name)
                .upstream(&up.name)
                .detail(format!(
                    "upstream \"{}\" sent no response within its request_timeout of {:?}{also}",
                    up.name, up.config.request_timeout
                ))
                .fix(format!(
                    "make upstream \"{}\" answer faster, or raise request_timeout in [upstream.{}]",
                    up.name, up.name
                ))
                .into_response(),
        Outcome::BodyTooLarge(limit) => too_large(route, limit),
        Outcome::Client(fault) => client_fault(route, Some(up), fault),
        Outcome::Open(retry_after) =>
            unavailable(
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "circuit-open",
                    "Upstream circuit open",
                )
                .route(&route.name)
                .upstream(&up.name)
                .detail(format!(
                    "upstream \"{}\" failed repeatedly{also}; its circuit breaker lets no request through for now",
                    up.name
                ))
                .fix(format!(
                    "retry after {} s; the breaker probes upstream \"{}\" and closes when it answers again ([upstream.{}.breaker])",
                    secs(retry_after),
                    up.name,
                    up.name
                )),
                retry_after,
            ),
        Outcome::Shed(shed) =>
            unavailable(
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "Upstream at its concurrency limit",
                )
                .route(&route.name)
                .upstream(&up.name)
                .detail(format!(
                    "upstream \"{}\" is at its max_in_flight and the request was shed ({}){also}",
                    up.name,
                    shed.reason.as_str()
                ))
                .fix(format!(
                    "retry after {} s; raise max_in_flight or queue of [upstream.{}] if it has room, or give route \"{}\" a higher priority",
                    secs(shed.retry_after),
                    up.name,
                    route.name
                )),
                shed.retry_after,
            ),
        Outcome::Failed(e) =>
            Problem::new(StatusCode::BAD_GATEWAY, "upstream-failed", "Upstream failed")
                .route(&route.name)
                .upstream(&up.name)
                .detail(format!(
                    "the exchange with upstream \"{}\" failed{also}: {}",
                    up.name,
                    error_chain(&*e)
                ))
                .fix(format!(
                    "check the logs of upstream \"{}\": it closed the connection or sent an invalid response",
                    up.name
                ))
                .into_response(),
    }
}

/// A request without one authority (two Hosts, none on HTTP/1.1, an invalid one, or HTTP/2
/// `:authority` and `host` that disagree): 400 before any route is chosen, logged under
/// the route name `-`.
#[cold]
#[inline(never)]
fn bad_host(
    shared: &Shared,
    table: &RouteTable,
    conn: &ConnInfo,
    parts: &Parts,
    e: headers::HostError,
    started: Instant,
) -> Response<ResponseBody> {
    let resp = Problem::new(StatusCode::BAD_REQUEST, "bad-host", "Bad Host header")
        .detail(e.as_str())
        .fix("send exactly one Host header with the host (and port) the request is for; over HTTP/2, a host header must match :authority")
        .into_response();
    if let Some(tx) = shared
        .access_log
        .as_ref()
        .filter(|_| table.config.access_log.enabled)
    {
        tx.send(AccessRecord {
            at: std::time::SystemTime::now(),
            duration: started.elapsed(),
            client: conn.peer.ip(),
            method: parts.method.clone(),
            path: parts.uri.path_and_query().cloned(),
            route: Arc::from("-"),
            answered: Answered::Gateway,
            status: 400,
            request_id: HeaderValue::from_static("-"),
            trace_id: None,
        });
    }
    resp
}

#[cold]
#[inline(never)]
fn connect_refused(route: &CompiledRoute) -> Response<ResponseBody> {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "connect-not-supported",
        "CONNECT is not supported",
    )
    .route(&route.name)
    .detail("ficus is a reverse proxy in front of HTTP services; it does not open tunnels")
    .fix("send the request itself to ficus instead of a CONNECT tunnel")
    .into_response()
}

/// The answer to a client whose request body failed. `up`: the upstream the body was being
/// sent to (whose request_timeout ran out for a [`body::ClientFault::Slow`] body).
#[cold]
#[inline(never)]
pub(crate) fn client_fault(
    route: &CompiledRoute,
    up: Option<&UpstreamClient>,
    fault: body::ClientFault,
) -> Response<ResponseBody> {
    let status = StatusCode::from_u16(fault.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let p = match fault {
        body::ClientFault::Malformed => Problem::new(
            status,
            "client-body-invalid",
            "Malformed request body",
        )
        .detail("the request body is not validly framed (a bad chunk size or chunk delimiter, or more data than its Content-Length)")
        .fix("send the body as HTTP requires: exactly Content-Length bytes, or valid chunked encoding"),
        body::ClientFault::Gone => Problem::new(
            status,
            "client-closed-request",
            "Client closed the request",
        )
        .detail("the client closed the connection before its request body was complete")
        .fix("nothing to fix on the gateway: the client gave up (a cancelled upload or a client-side timeout)"),
        body::ClientFault::Slow => {
            let within = match up {
                Some(u) => format!(
                    "upstream \"{}\"'s request_timeout of {:?}",
                    u.name, u.config.request_timeout
                ),
                None => format!("client_body_timeout of {:?} ([gateway])", route.body_timeout),
            };
            Problem::new(status, "client-body-timeout", "Request body too slow")
                .detail(format!(
                    "the client was still sending its request body when the {within} ran out"
                ))
                .fix("send the body without pausing, or raise the timeout named above")
        }
    };
    p.route(&route.name).into_response()
}

/// Whole seconds for `Retry-After`: rounded up, at least 1.
fn secs(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cold]
#[inline(never)]
fn unavailable(p: Problem, retry_after: std::time::Duration) -> Response<ResponseBody> {
    let mut resp = p.into_response();
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(secs(retry_after).max(1)),
    );
    resp
}

#[cold]
#[inline(never)]
fn rate_limited(
    route: &CompiledRoute,
    rate: &crate::table::RouteRate,
    d: &ficus_protect::RateDecision,
) -> Response<ResponseBody> {
    let mut resp = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "Too many requests",
    )
    .route(&route.name)
    .detail(format!(
        "route \"{}\" allows {} requests per second per {} (bursts of {})",
        route.name, rate.spec.per_second, rate.spec.key, rate.spec.burst
    ))
    .fix(format!(
        "wait {} s (Retry-After) before sending again, or raise [route.rate_limit] of route \"{}\"",
        d.retry_after_secs().unwrap_or(1),
        route.name
    ))
    .into_response();
    d.write_headers(resp.headers_mut());
    resp
}

#[cold]
#[inline(never)]
fn too_large(route: &CompiledRoute, limit: u64) -> Response<ResponseBody> {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        "Request body too large",
    )
    .route(&route.name)
    .detail(format!(
        "route \"{}\" accepts request bodies up to {limit} bytes",
        route.name
    ))
    .fix(format!(
        "send a smaller body, or raise max_body on route \"{}\"",
        route.name
    ))
    .into_response()
}

/// Copies bytes both ways between an upgraded client connection and the upstream connection
/// that answered 101 (`early`: what the upstream sent right after its head).
async fn tunnel(client: hyper::upgrade::OnUpgrade, upstream: crate::h1::Io, early: bytes::Bytes) {
    let Ok(c) = client.await else {
        return;
    };
    crate::h1::tunnel(TokioIo::new(c), upstream, early).await;
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let m = inner.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = inner.source();
    }
    s
}
