//! Trace context on the request path (W3C Trace Context): the client's `traceparent` is
//! continued, or a trace is started; each upstream attempt gets a `traceparent` of its own
//! (a child span of ficus's server span); a sampled request's spans go to the exporter
//! (`ficus_trace::Tracer`) when its response head is ready.
//!
//! Cost, by design: tracing off is one branch per request. On, an unsampled request costs
//! one id and one header value (none when it continues a caller's unsampled trace); only a
//! sampled one takes clock readings, builds spans and pushes them to the exporter.

use std::borrow::Cow;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ficus_trace::{Kind, Link, SpanId, SpanRecord, Status, TraceId, Tracer, Value};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::split::Side;

pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// A caller's span, from a valid `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub sampled: bool,
}

/// The caller's span from a request's `traceparent` values: exactly one, and valid (W3C
/// Trace Context, level 1: version `00` exactly 55 characters, a later version at least
/// that, lower-case hex, ids not all zero; version `ff` is invalid).
pub fn parent<'a>(mut values: impl Iterator<Item = &'a HeaderValue>) -> Option<Parent> {
    let first = values.next()?;
    match values.next() {
        None => parse_traceparent(first.as_bytes()),
        Some(_) => None,
    }
}

pub fn parse_traceparent(b: &[u8]) -> Option<Parent> {
    if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let version = hex_byte(b[0], b[1])?;
    match version {
        0xff => return None,
        0 if b.len() != 55 => return None,
        // A later version may add fields after a dash.
        _ if b.len() > 55 && b[55] != b'-' => return None,
        _ => {}
    }
    let mut trace_id = [0u8; 16];
    for (i, out) in trace_id.iter_mut().enumerate() {
        *out = hex_byte(b[3 + 2 * i], b[4 + 2 * i])?;
    }
    let mut span_id = [0u8; 8];
    for (i, out) in span_id.iter_mut().enumerate() {
        *out = hex_byte(b[36 + 2 * i], b[37 + 2 * i])?;
    }
    let flags = hex_byte(b[53], b[54])?;
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some(Parent {
        trace_id,
        span_id,
        sampled: flags & 1 == 1,
    })
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn hex_byte(hi: u8, lo: u8) -> Option<u8> {
    Some(hex_digit(hi)? << 4 | hex_digit(lo)?)
}

/// `00-<trace id>-<span id>-<flags>`.
pub fn traceparent(trace_id: &TraceId, span_id: &SpanId, sampled: bool) -> HeaderValue {
    let mut b = [0u8; 55];
    b[..3].copy_from_slice(b"00-");
    write_hex(&mut b[3..35], trace_id);
    b[35] = b'-';
    write_hex(&mut b[36..52], span_id);
    b[52..].copy_from_slice(if sampled { b"-01" } else { b"-00" });
    HeaderValue::from_bytes(&b).expect("hex digits and dashes are a header value")
}

fn write_hex(out: &mut [u8], id: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, byte) in out.chunks_exact_mut(2).zip(id) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
}

fn new_trace_id() -> TraceId {
    loop {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&crate::rand::next_u64().to_be_bytes());
        id[8..].copy_from_slice(&crate::rand::next_u64().to_be_bytes());
        if id != [0; 16] {
            return id;
        }
    }
}

pub(crate) fn new_span_id() -> SpanId {
    loop {
        let id = crate::rand::next_u64().to_be_bytes();
        if id != [0; 8] {
            return id;
        }
    }
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Span times: one wall-clock reading when a trace begins, monotonic instants after it.
struct Clock {
    wall: SystemTime,
    started: Instant,
}

impl Clock {
    fn ns_at(&self, t: Instant) -> u64 {
        let since = t.saturating_duration_since(self.started);
        unix_ns(self.wall) + u64::try_from(since.as_nanos()).unwrap_or(0)
    }
}

/// What every client span says of its call: method, upstream, side.
fn call_attributes(
    up: &crate::upstream::UpstreamClient,
    method: &Method,
    side: Side,
) -> Vec<(&'static str, Value)> {
    vec![
        ("http.request.method", method_value(method)),
        ("server.address", up.host_name.clone().into()),
        ("server.port", i64::from(up.port()).into()),
        ("ficus.upstream", up.name.clone().into()),
        ("ficus.side", side_name(side).into()),
    ]
}

/// A span's `error.type`: why there was no response, or a 5xx status.
fn error_type(status: u16, error: Option<&'static str>) -> Option<Cow<'static, str>> {
    error
        .map(Cow::Borrowed)
        .or_else(|| (status >= 500).then(|| Cow::Owned(status.to_string())))
}

/// One request's trace: nothing when tracing is off.
pub struct Trace<'t>(State<'t>);

enum State<'t> {
    Off,
    /// Propagated, not recorded: the request's headers carry its `traceparent` (`begin`).
    Unsampled {
        trace_id: TraceId,
    },
    Sampled(Box<Recording<'t>>),
}

/// A sampled request's spans in the making.
struct Recording<'t> {
    tracer: &'t Tracer,
    trace_id: TraceId,
    /// ficus's server span.
    span_id: SpanId,
    parent: Option<SpanId>,
    trace_state: Option<String>,
    clock: Clock,
    side: Option<Side>,
    cache: Option<&'static str>,
    /// Attempts so far, per side (legacy, modern).
    attempts: [u32; 2],
    spans: Vec<SpanRecord>,
}

/// A client span started by [`Trace::attempt`], ended by [`Trace::attempt_end`].
#[must_use]
pub struct Attempt(Option<(SpanId, Instant, Side, u32, bool)>);

impl Attempt {
    /// Whether a span is being recorded (the trace is sampled).
    #[inline]
    pub fn recording(&self) -> bool {
        self.0.is_some()
    }
}

/// What an upstream attempt came to, for its span.
pub struct AttemptEnd<'a> {
    pub method: &'a Method,
    pub upstream: &'a crate::upstream::UpstreamClient,
    /// The client's request target (its path goes into `url.full`, after the upstream's
    /// origin and prefix).
    pub uri: &'a http::Uri,
    /// The response status, or ficus's own for a failure.
    pub status: u16,
    /// Why there was no response (`timeout`, `connect`, ...), if so.
    pub error: Option<&'static str>,
}

/// What the server span says of the request.
pub struct Served<'a> {
    pub route: &'a crate::table::CompiledRoute,
    pub parts: &'a http::request::Parts,
    pub conn: &'a crate::proxy::ConnInfo,
    pub status: u16,
    pub answered: crate::proxy::Answered,
}

impl<'t> Trace<'t> {
    pub const OFF: Trace<'static> = Trace(State::Off);

    /// The trace of a request with these headers: the caller's continued or a new one,
    /// sampled by the caller's flag (parent-based) or by the tracer's ratio.
    ///
    /// An unsampled trace's `traceparent` is settled here, in the request's `headers`, for
    /// every attempt to carry (nothing is recorded, so one parent id serves them all): the
    /// caller's as it came, or the new trace's in place of none or of an invalid one (whose
    /// `tracestate` goes too: it belongs to another trace). One lookup of the header for the
    /// usual request, which has none.
    pub fn begin(
        tracer: Option<&'t Tracer>,
        headers: &mut HeaderMap,
        started: Instant,
    ) -> Trace<'t> {
        let Some(tracer) = tracer else {
            return Trace(State::Off);
        };
        Trace::start(tracer, headers, started)
    }

    #[inline(never)]
    fn start(tracer: &'t Tracer, headers: &mut HeaderMap, started: Instant) -> Trace<'t> {
        use http::header::Entry;
        let (parent, invalid) = match headers.entry(&TRACEPARENT) {
            Entry::Vacant(slot) => {
                let trace_id = new_trace_id();
                if !tracer.samples(&trace_id) {
                    slot.insert(traceparent(&trace_id, &new_span_id(), false));
                    return Trace(State::Unsampled { trace_id });
                }
                return Trace::recording(tracer, None, trace_id, None, started);
            }
            Entry::Occupied(e) => {
                let p = parent(e.iter());
                (p, p.is_none())
            }
        };
        if invalid {
            headers.remove(&TRACESTATE);
        }
        let trace_id = parent.map_or_else(new_trace_id, |p| p.trace_id);
        let sampled = match parent {
            Some(p) if tracer.parent_based() => p.sampled,
            _ => tracer.samples(&trace_id),
        };
        if !sampled {
            if invalid {
                headers.insert(
                    TRACEPARENT.clone(),
                    traceparent(&trace_id, &new_span_id(), false),
                );
            }
            return Trace(State::Unsampled { trace_id });
        }
        // The caller's tracestate belongs to the caller's trace only.
        let trace_state = parent
            .and_then(|_| headers.get(&TRACESTATE))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Trace::recording(tracer, parent, trace_id, trace_state, started)
    }

    /// A sampled trace: each attempt will carry a `traceparent` of its own.
    fn recording(
        tracer: &'t Tracer,
        parent: Option<Parent>,
        trace_id: TraceId,
        trace_state: Option<String>,
        started: Instant,
    ) -> Trace<'t> {
        Trace(State::Sampled(Box::new(Recording {
            tracer,
            trace_id,
            span_id: new_span_id(),
            parent: parent.map(|p| p.span_id),
            trace_state,
            clock: Clock {
                wall: SystemTime::now(),
                started,
            },
            side: None,
            cache: None,
            attempts: [0, 0],
            spans: Vec::with_capacity(2),
        })))
    }

    /// The trace id, for the access log.
    pub fn trace_id(&self) -> Option<TraceId> {
        match &self.0 {
            State::Off => None,
            State::Unsampled { trace_id, .. } => Some(*trace_id),
            State::Sampled(r) => Some(r.trace_id),
        }
    }

    /// The span a shadow copy of this request links to.
    pub fn link(&self) -> Option<Link> {
        match &self.0 {
            State::Off => None,
            State::Unsampled { trace_id, .. } => Some(Link {
                trace_id: *trace_id,
                span_id: [0; 8],
                sampled: false,
            }),
            State::Sampled(r) => Some(Link {
                trace_id: r.trace_id,
                span_id: r.span_id,
                sampled: true,
            }),
        }
    }

    /// The side the route chose.
    pub fn side(&mut self, side: Side) {
        if let State::Sampled(r) = &mut self.0 {
            r.side = Some(side);
        }
    }

    /// How the response cache served the request (`hit`, `miss`, `stale`, `coalesced`).
    pub fn cache(&mut self, outcome: &'static str) {
        if let State::Sampled(r) = &mut self.0 {
            r.cache = Some(outcome);
        }
    }

    /// Starts an attempt to `side`: its `traceparent` goes into `headers` (replacing the
    /// caller's), and for a sampled trace a client span begins.
    #[inline]
    pub fn attempt(&mut self, headers: &mut HeaderMap, side: Side) -> Attempt {
        match &mut self.0 {
            State::Off => Attempt(None),
            // Its traceparent is in the request's headers already (`begin`).
            State::Unsampled { .. } => Attempt(None),
            State::Sampled(r) => {
                let span_id = new_span_id();
                headers.insert(
                    TRACEPARENT.clone(),
                    traceparent(&r.trace_id, &span_id, true),
                );
                let i = usize::from(side == Side::Modern);
                let resend = r.attempts[i];
                r.attempts[i] += 1;
                // Legacy after modern: the fallback.
                let fallback = side == Side::Legacy && r.attempts[1] > 0;
                Attempt(Some((span_id, Instant::now(), side, resend, fallback)))
            }
        }
    }

    /// Ends an attempt's client span.
    pub fn attempt_end(&mut self, attempt: Attempt, end: AttemptEnd<'_>) {
        let (State::Sampled(r), Some((span_id, began, side, resend, fallback))) =
            (&mut self.0, attempt.0)
        else {
            return;
        };
        let up = end.upstream;
        let mut attributes = call_attributes(up, end.method, side);
        attributes.push(("url.full", Value::Url(up.origin.clone(), end.uri.clone())));
        if end.error.is_none() {
            attributes.push(("http.response.status_code", i64::from(end.status).into()));
        }
        if resend > 0 {
            attributes.push(("http.request.resend_count", i64::from(resend).into()));
        }
        if fallback {
            attributes.push(("ficus.fallback", true.into()));
        }
        let error = error_type(end.status, end.error);
        if let Some(e) = &error {
            attributes.push(("error.type", Value::Str(e.clone())));
        }
        let start_ns = r.clock.ns_at(began);
        r.spans.push(SpanRecord {
            trace_id: r.trace_id,
            span_id,
            parent: Some(r.span_id),
            trace_state: None,
            name: method_name(end.method),
            kind: Kind::Client,
            start_ns,
            end_ns: r.clock.ns_at(Instant::now()),
            attributes,
            status: error.map_or(Status::Unset, Status::Error),
            links: Vec::new(),
        });
    }

    /// The response head is ready: the server span ends and the request's spans are
    /// exported.
    pub fn finish(self, s: Served<'_>) {
        if let State::Sampled(r) = self.0 {
            (*r).finish(s);
        }
    }
}

impl Recording<'_> {
    #[cold]
    fn finish(mut self, s: Served<'_>) {
        let r = &mut self;
        let route = s.route;
        let mut attributes: Vec<(&'static str, Value)> = vec![
            ("http.request.method", method_value(&s.parts.method)),
            ("url.path", Value::Path(s.parts.uri.clone())),
            (
                "url.scheme",
                if s.conn.proto.as_bytes() == b"https" {
                    "https"
                } else {
                    "http"
                }
                .into(),
            ),
            ("client.address", Value::Ip(s.conn.peer.ip())),
            (
                "network.protocol.version",
                match s.parts.version {
                    http::Version::HTTP_2 => "2",
                    http::Version::HTTP_10 => "1.0",
                    _ => "1.1",
                }
                .into(),
            ),
            ("http.response.status_code", i64::from(s.status).into()),
            ("ficus.route", route.name.clone().into()),
            ("ficus.stage", route.stage.as_str().into()),
            ("ficus.answered", s.answered.as_str().into()),
            (
                "ficus.fallback",
                (s.answered == crate::proxy::Answered::LegacyFallback).into(),
            ),
        ];
        if let Some(h) = crate::router::request_host(&s.parts.uri, &s.parts.headers) {
            attributes.push(("server.address", h.to_string().into()));
        }
        if let Some(t) = &route.http_route {
            attributes.push(("http.route", t.clone().into()));
        }
        if let Some(side) = r.side {
            attributes.push(("ficus.side", side_name(side).into()));
        }
        if let Some(c) = r.cache {
            attributes.push(("ficus.cache", c.into()));
        }
        let error = (s.status >= 500).then(|| s.status.to_string());
        if let Some(e) = &error {
            attributes.push(("error.type", e.clone().into()));
        }
        let name = match &route.http_route {
            Some(t) => Cow::Owned(format!("{} {t}", s.parts.method)),
            None => method_name(&s.parts.method),
        };
        let server = SpanRecord {
            trace_id: r.trace_id,
            span_id: r.span_id,
            parent: r.parent,
            trace_state: r.trace_state.take(),
            name,
            kind: Kind::Server,
            start_ns: unix_ns(r.clock.wall),
            end_ns: r.clock.ns_at(Instant::now()),
            attributes,
            status: error.map_or(Status::Unset, |e| Status::Error(Cow::Owned(e))),
            links: Vec::new(),
        };
        r.tracer.export(server);
        for span in std::mem::take(&mut r.spans) {
            r.tracer.export(span);
        }
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Legacy => "legacy",
        Side::Modern => "modern",
    }
}

/// The method as semantic conventions name it: the known ones as they are, any other as
/// `_OTHER` (a client chooses it, and span names must stay few).
fn method_name(m: &Method) -> Cow<'static, str> {
    Cow::Borrowed(known_method(m).unwrap_or("_OTHER"))
}

fn method_value(m: &Method) -> Value {
    match known_method(m) {
        Some(k) => k.into(),
        None => "_OTHER".into(),
    }
}

fn known_method(m: &Method) -> Option<&'static str> {
    Some(match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => return None,
    })
}

/// The mirror's trace for one shadow copy: a trace of its own (the copy is not part of the
/// client's request), linked to the request's server span, recorded when the request was.
pub struct ShadowTrace<'t> {
    tracer: &'t Tracer,
    pub trace_id: TraceId,
    /// The root span: the whole copy, its calls and the comparison.
    pub span_id: SpanId,
    link: Link,
    clock: Clock,
    spans: Vec<SpanRecord>,
}

impl<'t> ShadowTrace<'t> {
    pub fn new(tracer: &'t Tracer, link: Link) -> ShadowTrace<'t> {
        ShadowTrace {
            tracer,
            trace_id: new_trace_id(),
            span_id: new_span_id(),
            link,
            clock: Clock {
                wall: SystemTime::now(),
                started: Instant::now(),
            },
            spans: Vec::new(),
        }
    }

    /// The `traceparent` of one call of the copy; `Some(span)` when it is recorded.
    pub fn call(&self) -> (HeaderValue, Option<(SpanId, Instant)>) {
        let span_id = new_span_id();
        let header = traceparent(&self.trace_id, &span_id, self.link.sampled);
        (header, self.link.sampled.then(|| (span_id, Instant::now())))
    }

    /// A call of the copy ended with `status` (ficus's own 502/504 for a failure).
    pub fn call_end(
        &mut self,
        span: Option<(SpanId, Instant)>,
        up: &crate::upstream::UpstreamClient,
        method: &Method,
        side: Side,
        status: u16,
    ) {
        let Some((span_id, began)) = span else { return };
        let mut attributes = call_attributes(up, method, side);
        attributes.push(("http.response.status_code", i64::from(status).into()));
        let error = error_type(status, None);
        if let Some(e) = &error {
            attributes.push(("error.type", Value::Str(e.clone())));
        }
        self.spans.push(SpanRecord {
            trace_id: self.trace_id,
            span_id,
            parent: Some(self.span_id),
            trace_state: None,
            name: method_name(method),
            kind: Kind::Client,
            start_ns: self.clock.ns_at(began),
            end_ns: self.clock.ns_at(Instant::now()),
            attributes,
            status: error.map_or(Status::Unset, Status::Error),
            links: Vec::new(),
        });
    }

    /// The comparison is done: the root span ends and the copy's spans are exported.
    pub fn finish(self, route: &std::sync::Arc<str>, method: &Method, differences: usize) {
        if !self.link.sampled {
            return;
        }
        let root = SpanRecord {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent: None,
            trace_state: None,
            name: Cow::Owned(format!("shadow {}", method_name(method))),
            kind: Kind::Internal,
            start_ns: unix_ns(self.clock.wall),
            end_ns: self.clock.ns_at(Instant::now()),
            attributes: vec![
                ("ficus.route", route.clone().into()),
                ("ficus.shadow", true.into()),
                (
                    "ficus.shadow.differences",
                    i64::try_from(differences).unwrap_or(i64::MAX).into(),
                ),
                (
                    "ficus.shadow.verdict",
                    if differences == 0 { "match" } else { "differ" }.into(),
                ),
            ],
            status: Status::Unset,
            links: vec![self.link],
        };
        self.tracer.export(root);
        for s in self.spans {
            self.tracer.export(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_parsed_as_the_w3c_specification_says() {
        let ok = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let p = parse_traceparent(ok).unwrap();
        assert_eq!(p.trace_id[0], 0x4b);
        assert_eq!(p.span_id[7], 0xb7);
        assert!(p.sampled);
        assert!(
            !parse_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
                .unwrap()
                .sampled
        );
        // A later version with more fields is read for what level 1 knows.
        assert!(parse_traceparent(
            b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next"
        )
        .is_some());
        for bad in [
            // version ff, upper case, all-zero ids, too short, extra bytes on version 00,
            // no dash after a later version's flags, wrong separators.
            &b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..],
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            b"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
        ] {
            assert_eq!(
                parse_traceparent(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // Two traceparent headers: neither is trusted.
        let mut h = HeaderMap::new();
        h.append(
            &TRACEPARENT,
            HeaderValue::from_static(std::str::from_utf8(ok).unwrap()),
        );
        assert!(parent(h.get_all(&TRACEPARENT).iter()).is_some());
        h.append(
            &TRACEPARENT,
            HeaderValue::from_static(std::str::from_utf8(ok).unwrap()),
        );
        assert_eq!(parent(h.get_all(&TRACEPARENT).iter()), None);
    }

    #[test]
    fn a_written_traceparent_reads_back() {
        let (t, s) = (new_trace_id(), new_span_id());
        for sampled in [true, false] {
            let v = traceparent(&t, &s, sampled);
            assert_eq!(v.len(), 55);
            let p = parse_traceparent(v.as_bytes()).unwrap();
            assert_eq!((p.trace_id, p.span_id, p.sampled), (t, s, sampled));
        }
        assert_eq!(
            traceparent(&[0xab; 16], &[0x01; 8], true),
            "00-abababababababababababababababab-0101010101010101-01"
        );
    }
}
