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
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

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
}

struct Index {
    /// The config this index was built from (compared by pointer).
    config: Arc<ficus_config::Config>,
    version: String,
    by_key: HashMap<String, usize>,
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
        Ok(Arc::new(OfrepState {
            control,
            settings,
            keys,
            limiter,
            index: Mutex::new(None),
        }))
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
        let index = Arc::new(Index {
            config: snap.effective.clone(),
            version: snap.version.map_or_else(String::new, |v| v.to_string()),
            by_key,
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
        let mut v: Vec<&Flag> = self.config.flags.iter().collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
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
        .fallback(not_found)
        .with_state(state)
}

/// Serves OFREP on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<OfrepState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
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
    let etag = ficus_flags::etag(&flags, &ctx, &index.version);
    let unchanged = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == etag || t.trim() == "*");
    let etag_header = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response();
    }
    let evaluated: Vec<Value> = flags
        .iter()
        .map(|f| ficus_flags::evaluate(f, &ctx).to_ofrep())
        .collect();
    let mut body = json!({ "flags": evaluated });
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
    let key = authenticate(st, headers)?;
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
        return Err(r);
    }
    let max = usize::try_from(st.settings.max_body).unwrap_or(usize::MAX);
    let bytes = axum::body::to_bytes(body, max).await.map_err(|_| {
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
        Refused::new(
            StatusCode::BAD_REQUEST,
            Some(ErrorCode::ParseError),
            format!("the request body is not JSON: {e}"),
        )
    })?;
    let attributes = count_attributes(value.get("context").unwrap_or(&Value::Null));
    if attributes > st.settings.max_context_attributes {
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
    let Some(keys) = &st.keys else {
        return Ok(None);
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
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
