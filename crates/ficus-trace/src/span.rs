//! A finished span as the request path hands it over: ids, timing, attributes, status and
//! links, owned and ready to encode. Nothing here does I/O.

use std::borrow::Cow;
use std::sync::Arc;

/// A W3C trace id: 16 bytes, never all zero.
pub type TraceId = [u8; 16];
/// A W3C span id (parent id in `traceparent`): 8 bytes, never all zero.
pub type SpanId = [u8; 8];

/// The span's role (OTLP `SpanKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Internal,
    /// ficus handling a client's request.
    Server,
    /// ficus calling an upstream.
    Client,
}

/// An attribute value. The request path hands over what it has (an address, a URI, a
/// header value: reference-counted or plain data) and the exporter's thread writes it out,
/// so a sampled request formats no text.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(Cow<'static, str>),
    /// A name the table holds already (a route's, an upstream's): no copy per span.
    Shared(Arc<str>),
    Int(i64),
    Bool(bool),
    Ip(std::net::IpAddr),
    /// The path of a URI.
    Path(http::Uri),
    /// An origin (`http://host:port` and any path prefix) followed by a URI's path.
    Url(Arc<str>, http::Uri),
    /// A header's value, as text (invalid UTF-8 lossily).
    Header(http::HeaderValue),
}

impl Value {
    /// The value as text (`None` for a number or a boolean).
    pub fn text(&self) -> Option<Cow<'_, str>> {
        Some(match self {
            Value::Str(s) => Cow::Borrowed(s),
            Value::Shared(s) => Cow::Borrowed(s),
            Value::Ip(ip) => Cow::Owned(ip.to_string()),
            Value::Path(u) => Cow::Borrowed(u.path()),
            Value::Url(origin, u) => Cow::Owned(format!("{origin}{}", u.path())),
            Value::Header(h) => String::from_utf8_lossy(h.as_bytes()),
            Value::Int(_) | Value::Bool(_) => return None,
        })
    }
}

impl From<&'static str> for Value {
    fn from(s: &'static str) -> Value {
        Value::Str(Cow::Borrowed(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(Cow::Owned(s))
    }
}

impl From<Arc<str>> for Value {
    fn from(s: Arc<str>) -> Value {
        Value::Shared(s)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

/// The span's outcome (OTLP `Status`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Status {
    #[default]
    Unset,
    Error(Cow<'static, str>),
}

/// A link to a span of another trace (the shadow copy's trace points at the request it
/// copies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub sampled: bool,
}

/// One finished span.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent: Option<SpanId>,
    /// The caller's `tracestate`, on the span that continues the caller's trace.
    pub trace_state: Option<String>,
    pub name: Cow<'static, str>,
    pub kind: Kind,
    /// Nanoseconds since the Unix epoch.
    pub start_ns: u64,
    pub end_ns: u64,
    pub attributes: Vec<(&'static str, Value)>,
    pub status: Status,
    pub links: Vec<Link>,
}

impl SpanRecord {
    /// The first value of attribute `key`, if set.
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// Lower-case hex of an id, as `traceparent` and the access log write it.
pub fn hex<const N: usize>(id: &[u8; N]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(N * 2);
    for b in id {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}
