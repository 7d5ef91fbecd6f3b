//! ficus OFREP: the running config's `[[flag]]`s served over OpenFeature's Remote Evaluation
//! Protocol (v0.3), on the listener of `[ofrep]` (node-local: apps reach their nearest
//! gateway), so any OpenFeature SDK with an OFREP provider reads them with no ficus client.
//!
//! - `POST /ofrep/v1/evaluate/flags/{key}`: one flag for the request's context; `200` with
//!   the value, variant, reason and metadata, `404` `FLAG_NOT_FOUND`, `400` for a bad context.
//! - `POST /ofrep/v1/evaluate/flags`: every flag, by key, with an `ETag` (the same on every
//!   node for the same flags and context, new when either changes); `If-None-Match` with
//!   the current one is answered `304`.
//!
//! Every request is, in this order: authenticated (a key from `[ofrep] keys_file`, as
//! `Authorization: Bearer KEY` or `X-API-Key: KEY`: none is `401`, an unknown one `403`),
//! rate limited per key (per client address without keys; `429` with `Retry-After`), read
//! up to `max_body` (`413`), parsed (`400` `PARSE_ERROR`), its context checked (`400`
//! `INVALID_CONTEXT`, at most `max_context_attributes`), then evaluated against the flags of
//! the config this node runs now. Nothing here writes anything.

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use ficus_config::Ofrep;
use ficus_control::ControlPlane;
use ficus_flags::{Context, ErrorCode, Flag, Resolution};
use ficus_protect::{RateLimiter, RateSpec};
use serde_json::{json, Value};
use tokio::sync::watch;

/// The longest the flags go without being compared with the running config's (each new
/// snapshot wakes the comparison at once).
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// A comment line keeps an idle event stream (and the proxies on its way) open.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Where the event stream is served, relative to the OFREP base URL.
pub const EVENTS_PATH: &str = "/ofrep/v1/events";

/// The shortest evaluation key accepted in `keys_file`.
pub const MIN_KEY_BYTES: usize = 16;

/// What the OFREP listener serves from and by.
pub struct OfrepState {
    control: Arc<ControlPlane>,
    settings: Ofrep,
    /// Evaluation keys; `None`: open (a loopback listener without `keys_file`).
    keys: Option<Vec<String>>,
    limiter: RateLimiter,
    /// The flags of the running config by key, rebuilt when the config changes.
    index: Mutex<Option<Arc<Index>>>,
    /// The latest change of the flags, for the event streams.
    changes: watch::Sender<Change>,
    /// Set when the listener shuts down: event streams end.
    closing: watch::Sender<bool>,
    /// Event streams open now.
    streams: AtomicUsize,
    /// Refusals by kind, for `/metrics` (evaluations are counted by the control plane).
    refusals: Mutex<HashMap<&'static str, u64>>,
}

/// A change of the flags the event streams announce.
#[derive(Debug, Clone, Default)]
struct Change {
    /// 0 before any change; then 1, 2, ...
    id: u64,
    /// The flags' ETag (over the empty context).
    etag: String,
    /// Unix seconds of the change.
    at: u64,
}

struct Index {
    /// The config this index was built from (compared by pointer).
    config: Arc<ficus_config::Config>,
    version: String,
    by_key: HashMap<String, usize>,
    /// The flags' part of every bulk ETag, hashed once per config.
    etag: ficus_flags::EtagPrefix,
    /// Indexes of the flags, by key.
    sorted: Vec<usize>,
}

impl OfrepState {
    /// The state of a listener with these settings; reads `keys_file` now.
    pub fn new(control: Arc<ControlPlane>, settings: Ofrep) -> Result<Arc<OfrepState>, String> {
        let keys = match &settings.keys_file {
            Some(path) => Some(load_keys(path)?),
            None => None,
        };
        let limiter = RateLimiter::new(RateSpec {
            per_second: settings.per_second,
            burst: settings.burst,
            ..RateSpec::default()
        })
        .map_err(|e| format!("[ofrep] rate: {e}"))?;
        let (changes, _) = watch::channel(Change::default());
        let (closing, _) = watch::channel(false);
        let state = Arc::new(OfrepState {
            control,
            settings,
            keys,
            limiter,
            index: Mutex::new(None),
            changes,
            closing,
            streams: AtomicUsize::new(0),
            refusals: Mutex::new(HashMap::new()),
        });
        state
            .control
            .gateway()
            .telemetry()
            .set_extra("ofrep", metrics(Arc::downgrade(&state)));
        tokio::spawn(watch_flags(Arc::downgrade(&state)));
        Ok(state)
    }

    fn count(&self, r: &Resolution) {
        // An error serves no variant (the SDK's default applies).
        let variant = match r.error {
            Some(_) => "",
            None => r.variant.as_deref().unwrap_or_default(),
        };
        self.control
            .flag_evaluations()
            .count(&r.key, variant, reason_str(r), 1);
    }

    fn refused(&self, kind: &'static str) {
        *self
            .refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind)
            .or_insert(0) += 1;
    }

    /// The flags of the config this node runs now, indexed by key.
    fn flags(&self) -> Arc<Index> {
        let snap = self.control.snapshot();
        let mut slot = self.index.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = slot
            .as_ref()
            .filter(|i| Arc::ptr_eq(&i.config, &snap.effective))
        {
            return i.clone();
        }
        let by_key = snap
            .effective
            .flags
            .iter()
            .enumerate()
            .map(|(i, f)| (f.key.clone(), i))
            .collect();
        let version = snap.version.map_or_else(String::new, |v| v.to_string());
        let mut flags: Vec<&Flag> = snap.effective.flags.iter().collect();
        flags.sort_by(|a, b| a.key.cmp(&b.key));
        let etag = ficus_flags::etag_prefix(&flags, &version);
        let mut sorted: Vec<usize> = (0..snap.effective.flags.len()).collect();
        sorted.sort_by(|a, b| {
            snap.effective.flags[*a]
                .key
                .cmp(&snap.effective.flags[*b].key)
        });
        let index = Arc::new(Index {
            config: snap.effective.clone(),
            version,
            by_key,
            etag,
            sorted,
        });
        *slot = Some(index.clone());
        index
    }
}

impl Index {
    fn get(&self, key: &str) -> Option<&Flag> {
        self.by_key.get(key).map(|i| &self.config.flags[*i])
    }

    /// Every flag, by key.
    fn all(&self) -> Vec<&Flag> {
        self.sorted.iter().map(|i| &self.config.flags[*i]).collect()
    }
}

/// The keys of a `keys_file`: one per line; blank lines and `#` comments are skipped.
pub fn load_keys(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("[ofrep] keys_file {}: {e}", path.display()))?;
    let keys: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if keys.is_empty() {
        return Err(format!(
            "[ofrep] keys_file {}: no key in it: put one evaluation key per line (e.g. `openssl rand -hex 32`)",
            path.display()
        ));
    }
    if let Some(k) = keys.iter().find(|k| k.len() < MIN_KEY_BYTES) {
        return Err(format!(
            "[ofrep] keys_file {}: a key of {} bytes, fewer than {MIN_KEY_BYTES}: use long random keys",
            path.display(),
            k.len()
        ));
    }
    Ok(keys)
}

/// The OFREP router.
pub fn router(state: Arc<OfrepState>) -> Router {
    Router::new()
        .route("/ofrep/v1/evaluate/flags/{key}", post(evaluate_one))
        .route("/ofrep/v1/evaluate/flags", post(evaluate_all))
        .route(EVENTS_PATH, axum::routing::get(events))
        .fallback(not_found)
        .with_state(state)
}

/// Serves OFREP on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<OfrepState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let closing = state.closing.clone();
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        // Event streams never end on their own: end them, so the listener can.
        let _ = closing.send(true);
    })
    .await
}

/// `POST /ofrep/v1/evaluate/flags/{key}`
async fn evaluate_one(
    State(st): State<Arc<OfrepState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(key): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ctx = match admit(&st, peer, &headers, body).await {
        Ok(ctx) => ctx,
        Err(refused) => return refused.single(&key),
    };
    let index = st.flags();
    let resolution = match index.get(&key) {
        Some(flag) => ficus_flags::evaluate(flag, &ctx),
        None => Resolution::flag_not_found(&key),
    };
    st.count(&resolution);
    let status = match resolution.error {
        Some((code, _)) => status(code.http_status()),
        None => StatusCode::OK,
    };
    (status, axum::Json(resolution.to_ofrep())).into_response()
}

/// `POST /ofrep/v1/evaluate/flags`
async fn evaluate_all(
    State(st): State<Arc<OfrepState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ctx = match admit(&st, peer, &headers, body).await {
        Ok(ctx) => ctx,
        Err(refused) => return refused.bulk(),
    };
    let index = st.flags();
    let flags = index.all();
    let etag = index.etag.etag(&ctx);
    let unchanged = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == etag || t.trim() == "*");
    let etag_header = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    if unchanged {
        st.refused("not_modified");
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response();
    }
    let evaluated: Vec<Value> = flags
        .iter()
        .map(|f| {
            let r = ficus_flags::evaluate(f, &ctx);
            st.count(&r);
            r.to_ofrep()
        })
        .collect();
    // Clients connect here and refetch when told the flags changed (OFREP ADR 0008); the
    // origin is the one they reached OFREP at.
    let mut body = json!({
        "flags": evaluated,
        "eventStreams": [{
            "type": "sse",
            "endpoint": { "requestUri": EVENTS_PATH },
            "inactivityDelaySec": 120,
        }],
    });
    if !index.version.is_empty() {
        body["metadata"] = json!({ "version": index.version });
    }
    (
        StatusCode::OK,
        [(header::ETAG, etag_header)],
        axum::Json(body),
    )
        .into_response()
}

/// Why a request was refused before evaluation.
struct Refused {
    status: StatusCode,
    code: Option<ErrorCode>,
    detail: String,
    retry_after: Option<u64>,
}

impl Refused {
    fn new(status: StatusCode, code: Option<ErrorCode>, detail: impl Into<String>) -> Refused {
        Refused {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// As the single-flag endpoint answers it (the flag's key in the failure).
    fn single(self, key: &str) -> Response {
        let body = match self.code {
            Some(code) => {
                json!({ "key": key, "errorCode": code.as_str(), "errorDetails": self.detail })
            }
            None => json!({ "errorDetails": self.detail }),
        };
        self.respond(body)
    }

    /// As the bulk endpoint answers it.
    fn bulk(self) -> Response {
        let body = match self.code {
            Some(code) => json!({ "errorCode": code.as_str(), "errorDetails": self.detail }),
            None => json!({ "errorDetails": self.detail }),
        };
        self.respond(body)
    }

    fn respond(self, body: Value) -> Response {
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"ofrep\""),
            );
        }
        resp
    }
}

/// Authenticates, rate limits, reads and parses a request: its evaluation context.
async fn admit(
    st: &OfrepState,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Body,
) -> Result<Context, Refused> {
    let key = authenticate(st, headers).inspect_err(|r| {
        st.refused(if r.status == StatusCode::UNAUTHORIZED {
            "unauthorized"
        } else {
            "forbidden"
        })
    })?;
    let decision = match &key {
        Some(k) => st.limiter.check_bytes(k.as_bytes()),
        None => st.limiter.check_bytes(peer.ip().to_string().as_bytes()),
    };
    if !decision.is_allowed() {
        let mut r = Refused::new(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            format!(
                "more than {} evaluations a second ([ofrep] per_second, burst {})",
                st.settings.per_second, st.settings.burst
            ),
        );
        r.retry_after = Some(decision.retry_after_secs().unwrap_or(1).max(1));
        st.refused("rate_limited");
        return Err(r);
    }
    let max = usize::try_from(st.settings.max_body).unwrap_or(usize::MAX);
    let bytes = axum::body::to_bytes(body, max).await.map_err(|_| {
        st.refused("too_large");
        Refused::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Some(ErrorCode::InvalidContext),
            format!(
                "the request body is larger than {} bytes ([ofrep] max_body)",
                st.settings.max_body
            ),
        )
    })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        st.refused("bad_request");
        Refused::new(
            StatusCode::BAD_REQUEST,
            Some(ErrorCode::ParseError),
            format!("the request body is not JSON: {e}"),
        )
    })?;
    let attributes = count_attributes(value.get("context").unwrap_or(&Value::Null));
    if attributes > st.settings.max_context_attributes {
        st.refused("bad_request");
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            Some(ErrorCode::InvalidContext),
            format!(
                "the context has {attributes} attributes, more than {} ([ofrep] max_context_attributes)",
                st.settings.max_context_attributes
            ),
        ));
    }
    Context::from_request_body(&value).map_err(|e| {
        st.refused("bad_request");
        Refused::new(
            StatusCode::BAD_REQUEST,
            Some(ErrorCode::InvalidContext),
            e.to_string(),
        )
    })
}

/// The key a request presents, checked against `keys_file` (`None` when the listener needs
/// none).
fn authenticate(st: &OfrepState, headers: &HeaderMap) -> Result<Option<String>, Refused> {
    authenticate_with(st, headers, None)
}

/// As [`authenticate`], also taking the key from a `key` query parameter (an event stream
/// opened by a browser's `EventSource`, which cannot send headers).
fn authenticate_with(
    st: &OfrepState,
    headers: &HeaderMap,
    query_key: Option<&str>,
) -> Result<Option<String>, Refused> {
    let Some(keys) = &st.keys else {
        return Ok(None);
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .or(query_key)
        .map(str::trim);
    let Some(presented) = presented.filter(|p| !p.is_empty()) else {
        return Err(Refused::new(
            StatusCode::UNAUTHORIZED,
            None,
            "no evaluation key: send Authorization: Bearer KEY or X-API-Key: KEY",
        ));
    };
    // Every key is compared in full, whichever matches, so timing says nothing of them.
    let mut found = false;
    for k in keys {
        found |= constant_time_eq(k.as_bytes(), presented.as_bytes());
    }
    if found {
        Ok(Some(presented.to_string()))
    } else {
        Err(Refused::new(
            StatusCode::FORBIDDEN,
            None,
            "this evaluation key is not one of [ofrep] keys_file's",
        ))
    }
}

/// `GET /ofrep/v1/events`: a server-sent event stream (OFREP ADR 0008) that says
/// `refetchEvaluation` whenever the flags change, with their ETag and the time; a comment
/// line every 15 s keeps it open. At most `[ofrep] max_streams` at once.
async fn events(
    State(st): State<Arc<OfrepState>>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let query_key = query.as_deref().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("key="))
            .map(str::to_string)
    });
    if let Err(r) = authenticate_with(&st, &headers, query_key.as_deref()) {
        st.refused(if r.status == StatusCode::UNAUTHORIZED {
            "unauthorized"
        } else {
            "forbidden"
        });
        return r.bulk();
    }
    let max = st.settings.max_streams;
    if st.streams.fetch_add(1, Ordering::Relaxed) >= max {
        st.streams.fetch_sub(1, Ordering::Relaxed);
        st.refused("too_many_streams");
        return Refused::new(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            format!(
                "{max} event streams are open ([ofrep] max_streams); poll the bulk endpoint instead"
            ),
        )
        .bulk();
    }
    let open = Open(st.clone());
    let mut changes = st.changes.subscribe();
    changes.mark_unchanged();
    let mut closing = st.closing.subscribe();
    let first = Some(bytes::Bytes::from_static(
        b": ficus OFREP events: refetch when told\nretry: 1000\n\n",
    ));
    let stream = futures_util::stream::unfold(
        (first, changes, closing.clone(), open),
        move |(first, mut changes, mut closing, open)| async move {
            if let Some(b) = first {
                return Some((Ok::<_, Infallible>(b), (None, changes, closing, open)));
            }
            if *closing.borrow() {
                return None;
            }
            let frame = tokio::select! {
                r = changes.changed() => {
                    r.ok()?;
                    let c = changes.borrow_and_update().clone();
                    bytes::Bytes::from(event_frame(&c))
                }
                _ = closing.changed() => return None,
                _ = tokio::time::sleep(HEARTBEAT) => bytes::Bytes::from_static(b": keep-alive\n\n"),
            };
            Some((Ok(frame), (None, changes, closing, open)))
        },
    );
    let _ = closing.borrow_and_update();
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Counts an open event stream until it is dropped.
struct Open(Arc<OfrepState>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

fn event_frame(c: &Change) -> String {
    let data = json!({ "type": "refetchEvaluation", "etag": c.etag, "lastModified": c.at });
    format!("id: {}\nevent: message\ndata: {data}\n\n", c.id)
}

/// Compares the flags with the running config's whenever a new snapshot runs (and at least
/// every [`WATCH_EVERY`]) and announces a change to the event streams; ends with the state.
async fn watch_flags(state: Weak<OfrepState>) {
    let mut last: Option<Arc<ficus_config::Config>> = None;
    let mut published = match state.upgrade() {
        Some(st) => st.control.watch_snapshot(),
        None => return,
    };
    loop {
        let Some(st) = state.upgrade() else { return };
        let snap = st.control.snapshot();
        let changed = match &last {
            None => false,
            Some(l) if Arc::ptr_eq(l, &snap.effective) => false,
            Some(l) => l.flags != snap.effective.flags,
        };
        if changed || last.is_none() {
            let flags: Vec<&Flag> = snap.effective.flags.iter().collect();
            let version = snap.version.map_or_else(String::new, |v| v.to_string());
            let etag = ficus_flags::etag(&flags, &Context::default(), &version);
            let at = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            st.changes.send_modify(|c| {
                if changed {
                    c.id += 1;
                    c.at = at;
                }
                c.etag = etag;
            });
        }
        last = Some(snap.effective.clone());
        drop(st);
        // Woken by the next snapshot; the period is a backstop.
        let _ = tokio::time::timeout(WATCH_EVERY, published.changed()).await;
    }
}

fn reason_str(r: &Resolution) -> &'static str {
    match r.reason {
        ficus_flags::Reason::Static => "STATIC",
        ficus_flags::Reason::TargetingMatch => "TARGETING_MATCH",
        ficus_flags::Reason::Split => "SPLIT",
        ficus_flags::Reason::Disabled => "DISABLED",
        ficus_flags::Reason::Default => "DEFAULT",
        ficus_flags::Reason::Error => "ERROR",
    }
}

/// `ficus_flag_evaluations_total{flag,variant,reason}`, `ficus_ofrep_refused_total{why}` and
/// `ficus_ofrep_event_streams` for `/metrics`.
fn metrics(state: Weak<OfrepState>) -> ficus_telemetry::ExtraMetrics {
    Box::new(move || {
        let Some(st) = state.upgrade() else {
            return Vec::new();
        };
        let evaluations: Vec<_> = st
            .control
            .flag_evaluations()
            .counts(None)
            .into_iter()
            .map(|c| {
                (
                    vec![
                        ("flag", c.flag),
                        ("variant", c.variant),
                        ("reason", c.reason.to_string()),
                    ],
                    c.count,
                )
            })
            .collect();
        let mut refused: Vec<_> = st
            .refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, n)| (vec![("why", k.to_string())], *n))
            .collect();
        refused.sort();
        vec![
            ficus_telemetry::Family {
                name: "ficus_flag_evaluations",
                help: "Flag evaluations this node answered over OFREP, by flag, variant (empty without one) and reason.",
                gauge: false,
                samples: evaluations,
            },
            ficus_telemetry::Family {
                name: "ficus_ofrep_refused",
                help: "OFREP requests answered before any evaluation: unauthorized, forbidden, rate_limited, too_large, bad_request, and not_modified (a bulk request whose ETag matched).",
                gauge: false,
                samples: refused,
            },
            ficus_telemetry::Family {
                name: "ficus_ofrep_event_streams",
                help: "OFREP event streams open now.",
                gauge: true,
                samples: vec![(Vec::new(), st.streams.load(Ordering::Relaxed) as u64)],
            },
        ]
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// Attributes at any depth: every object member and array item.
fn count_attributes(v: &Value) -> usize {
    match v {
        Value::Object(m) => m.values().map(|x| 1 + count_attributes(x)).sum(),
        Value::Array(a) => a.iter().map(|x| 1 + count_attributes(x)).sum(),
        _ => 0,
    }
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({
            "errorDetails": "not an OFREP endpoint: POST /ofrep/v1/evaluate/flags/{key} or /ofrep/v1/evaluate/flags"
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_counted_at_any_depth() {
        assert_eq!(count_attributes(&json!({})), 0);
        assert_eq!(count_attributes(&json!({"a": 1, "b": {"c": [1, 2]}})), 5);
    }

    #[test]
    fn keys_compare_in_full() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
