//! The response cache on the request path: a route with `[route.cache]` answers its GETs
//! from `ficus_protect::ResponseCache` (RFC 9111 rules, `Vary`, stale-while-revalidate) and
//! fetches a miss once however many clients ask for it at the same time (request
//! coalescing).
//!
//! Keys carry the side (`route#legacy`, `route#modern`), so a canary never serves one side's
//! answer to the other side's users, and only an answer from the side the request was sent to
//! is stored (a legacy fallback answer for a modern-bucket user is served, not stored). A
//! miss is fetched through the normal path ([`proxy_to`]), so fallback, breakers, limits,
//! retries and the mirror all apply to it; its body is read up to `max_entry_bytes` to be
//! stored, and a larger one is streamed on to the client unstored.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use ficus_protect::{CacheKey, FetchError, Fetched, Served};
use http::request::Parts;
use http::{HeaderValue, Request, Response};
use http_body_util::BodyExt;

use crate::body::ResponseBody;
use crate::headers::X_FICUS_CACHE;
use crate::proxy::{proxy_to, Answered, ConnInfo, Inbound};
use crate::split::Side;
use crate::table::{CompiledRoute, RouteCache, RouteTable};
use crate::trace::Trace;

/// Why a fetched response is not handed to the cache: it is served as it is.
pub(crate) struct Passthrough(Response<ResponseBody>, Answered);

impl std::fmt::Debug for Passthrough {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Passthrough({}, {:?})", self.0.status(), self.1)
    }
}

/// Answers a cacheable request from the route's cache.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve(
    table: &Arc<RouteTable>,
    route: &CompiledRoute,
    cache: &Arc<RouteCache>,
    conn: &ConnInfo,
    parts: &Parts,
    trace: &mut Trace<'_>,
    side: Side,
    started: Instant,
) -> (Response<ResponseBody>, Answered) {
    let key = key(cache, parts, side);
    let fetch = fetch(
        route,
        conn,
        parts,
        trace,
        side,
        started,
        cache.policy.max_entry_bytes,
    );
    let served = cache.cache.get_or_fetch(&key, &parts.headers, fetch).await;
    match served {
        Ok(served) => {
            if let Served::Stale { .. } = served {
                refresh(table, route, cache, conn, parts, side);
            }
            let label = match &served {
                Served::Hit { .. } => "hit",
                Served::Stale { .. } => "stale",
                Served::Coalesced { .. } => "coalesced",
                Served::Fetched { .. } => "miss",
            };
            let answered = match served {
                Served::Fetched { .. } => answered_by(side),
                _ => Answered::Cache,
            };
            trace.cache(label);
            let mut resp = respond(&served);
            if route.debug_header {
                resp.headers_mut()
                    .insert(X_FICUS_CACHE.clone(), HeaderValue::from_static(label));
            }
            (resp, answered)
        }
        Err(FetchError::Fetch(Passthrough(resp, answered))) => {
            trace.cache("miss");
            (resp, answered)
        }
        // The coalesced fetch this request waited for failed (or was too large to share):
        // fetch for this request alone, past the cache.
        Err(FetchError::Leader) => {
            let mut own = copy(parts);
            trace.cache("miss");
            proxy_to(
                route,
                conn,
                &mut own,
                trace,
                Inbound::Empty,
                side,
                false,
                None,
                Instant::now(),
                false,
            )
            .await
        }
    }
}

/// The cache key of a request: the side's key prefix, method, host, path and query.
fn key<'a>(cache: &'a RouteCache, parts: &'a Parts, side: Side) -> CacheKey<'a> {
    CacheKey {
        route: cache.key(side),
        method: &parts.method,
        host: crate::router::request_host(&parts.uri, &parts.headers).unwrap_or(""),
        path_and_query: parts.uri.path_and_query().map_or("/", |p| p.as_str()),
    }
}

fn answered_by(side: Side) -> Answered {
    match side {
        Side::Legacy => Answered::Legacy,
        Side::Modern => Answered::Modern,
    }
}

/// A response from the cache: its status, headers and body, with `Age` for one that was
/// stored before.
fn respond(served: &Served) -> Response<ResponseBody> {
    let r = served.response();
    let mut resp = Response::new(ResponseBody::full(r.body.clone()));
    *resp.status_mut() = r.status;
    *resp.headers_mut() = r.headers.clone();
    if let Some(age) = served.age() {
        resp.headers_mut()
            .insert(http::header::AGE, HeaderValue::from(age));
    }
    resp
}

/// The request head again, for a request ficus sends itself (a coalesced miss, a refresh).
fn copy(parts: &Parts) -> Parts {
    let (mut p, ()) = Request::new(()).into_parts();
    p.method = parts.method.clone();
    p.uri = parts.uri.clone();
    p.version = parts.version;
    p.headers = parts.headers.clone();
    p
}

/// Fetches a miss through the normal path and buffers what may be stored.
async fn fetch(
    route: &CompiledRoute,
    conn: &ConnInfo,
    parts: &Parts,
    trace: &mut Trace<'_>,
    side: Side,
    started: Instant,
    max_entry: u64,
) -> Result<Fetched, Passthrough> {
    let mut own = copy(parts);
    let (resp, answered) = proxy_to(
        route,
        conn,
        &mut own,
        trace,
        Inbound::Empty,
        side,
        false,
        None,
        started,
        false,
    )
    .await;
    if answered != answered_by(side) {
        // ficus's own error, or legacy answering for modern: serve it, never store it.
        return Err(Passthrough(resp, answered));
    }
    let (head, mut body) = resp.into_parts();
    let mut buf = BytesMut::new();
    loop {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Some(d) = frame.data_ref() {
                    buf.extend_from_slice(d);
                    if buf.len() as u64 > max_entry {
                        // Too large to store: the client gets it streamed, read part first.
                        let chained = ResponseBody::chain(buf.freeze(), body);
                        return Err(Passthrough(Response::from_parts(head, chained), answered));
                    }
                }
            }
            Some(Err(_)) => {
                // The upstream broke off mid-body: nothing to store; the client sees the
                // truncated exchange the same way it would without the cache.
                let chained = ResponseBody::chain(buf.freeze(), ResponseBody::empty());
                return Err(Passthrough(
                    Response::from_parts(head, chained),
                    Answered::Gateway,
                ));
            }
        }
    }
    Ok(Fetched {
        status: head.status,
        headers: head.headers,
        body: Bytes::from(buf),
    })
}

/// Refreshes a stale entry in the background: the client already has the stale answer.
fn refresh(
    table: &Arc<RouteTable>,
    route: &CompiledRoute,
    cache: &Arc<RouteCache>,
    conn: &ConnInfo,
    parts: &Parts,
    side: Side,
) {
    let (table, cache, conn, parts) = (table.clone(), cache.clone(), conn.clone(), copy(parts));
    let index = route.index;
    tokio::spawn(async move {
        let route = &table.routes()[index];
        let key = key(&cache, &parts, side);
        // The client has its answer: the refresh is no part of its trace.
        let mut off = Trace::OFF;
        let f = fetch(
            route,
            &conn,
            &parts,
            &mut off,
            side,
            Instant::now(),
            cache.policy.max_entry_bytes,
        );
        let _ = cache.cache.refresh(&key, &parts.headers, f).await;
    });
}
