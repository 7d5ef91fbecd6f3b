//! Spans to OTLP protobuf (`ExportTraceServiceRequest`), written straight into the body
//! with prost's wire-format primitives: one pass per span, no intermediate messages (building
//! `opentelemetry-proto`'s structs and encoding them cost about three times as much, most of
//! it in allocations and in lengths computed again at each level of nesting). The
//! protocol's own types check it: the tests decode what this writes with them and compare
//! it with what they encode themselves.

use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};

use crate::span::{Kind, SpanRecord, Status as SpanStatus, Value};

/// W3C trace flags bit: sampled.
const SAMPLED: u32 = 1;
/// OTLP span flags: whether the parent (or link) is remote is known (bit 8) and it is (bit 9).
const REMOTE_KNOWN: u32 = 0x100;
const REMOTE: u32 = 0x200;

/// The resource every span of this process shares: `service.name` and the rest.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    pub attributes: Vec<(String, String)>,
}

// Field numbers (opentelemetry/proto/trace/v1/trace.proto, common/v1, resource/v1).
const REQUEST_RESOURCE_SPANS: u32 = 1;
const RESOURCE_SPANS_RESOURCE: u32 = 1;
const RESOURCE_SPANS_SCOPE_SPANS: u32 = 2;
const RESOURCE_ATTRIBUTES: u32 = 1;
const SCOPE_SPANS_SCOPE: u32 = 1;
const SCOPE_SPANS_SPANS: u32 = 2;
const SCOPE_NAME: u32 = 1;
const SCOPE_VERSION: u32 = 2;
const SPAN_TRACE_ID: u32 = 1;
const SPAN_SPAN_ID: u32 = 2;
const SPAN_TRACE_STATE: u32 = 3;
const SPAN_PARENT_SPAN_ID: u32 = 4;
const SPAN_NAME: u32 = 5;
const SPAN_KIND: u32 = 6;
const SPAN_START: u32 = 7;
const SPAN_END: u32 = 8;
const SPAN_ATTRIBUTES: u32 = 9;
const SPAN_LINKS: u32 = 13;
const SPAN_STATUS: u32 = 15;
const SPAN_FLAGS: u32 = 16;
const LINK_TRACE_ID: u32 = 1;
const LINK_SPAN_ID: u32 = 2;
const LINK_FLAGS: u32 = 6;
const STATUS_MESSAGE: u32 = 2;
const STATUS_CODE: u32 = 3;
const KEY_VALUE_KEY: u32 = 1;
const KEY_VALUE_VALUE: u32 = 2;
const ANY_STRING: u32 = 1;
const ANY_BOOL: u32 = 2;
const ANY_INT: u32 = 3;
/// `Span.SpanKind` and `Status.StatusCode` values.
const KIND_INTERNAL: u64 = 1;
const KIND_SERVER: u64 = 2;
const KIND_CLIENT: u64 = 3;
const STATUS_ERROR: u64 = 2;

fn bytes_field(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    encode_key(field, WireType::LengthDelimited, out);
    encode_varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

fn varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    encode_key(field, WireType::Varint, out);
    encode_varint(v, out);
}

fn fixed64_field(out: &mut Vec<u8>, field: u32, v: u64) {
    encode_key(field, WireType::SixtyFourBit, out);
    out.extend_from_slice(&v.to_le_bytes());
}

fn fixed32_field(out: &mut Vec<u8>, field: u32, v: u32) {
    encode_key(field, WireType::ThirtyTwoBit, out);
    out.extend_from_slice(&v.to_le_bytes());
}

/// A nested message whose body `body` writes: written to `scratch` first for its length.
fn message_field(
    out: &mut Vec<u8>,
    field: u32,
    scratch: &mut Vec<u8>,
    body: impl FnOnce(&mut Vec<u8>),
) {
    scratch.clear();
    body(scratch);
    bytes_field(out, field, scratch);
}

/// An attribute's value as the wire has it: text, or a varint under its field number.
enum Any<'a> {
    Text(std::borrow::Cow<'a, str>),
    Number(u32, u64),
}

impl<'a> Any<'a> {
    fn of(v: &'a Value) -> Any<'a> {
        match v {
            // int64 on the wire: two's complement as a 64-bit varint.
            Value::Int(n) => Any::Number(ANY_INT, *n as u64),
            Value::Bool(b) => Any::Number(ANY_BOOL, u64::from(*b)),
            other => Any::Text(other.text().unwrap_or_default()),
        }
    }
}

/// One attribute (`KeyValue` holding an `AnyValue`), its lengths computed, not measured.
fn key_value(out: &mut Vec<u8>, field: u32, key: &str, value: Any<'_>) {
    let any_len = 1 + match &value {
        Any::Text(t) => encoded_len_varint(t.len() as u64) + t.len(),
        Any::Number(_, n) => encoded_len_varint(*n),
    };
    let kv_len = 1
        + encoded_len_varint(key.len() as u64)
        + key.len()
        + 1
        + encoded_len_varint(any_len as u64)
        + any_len;
    encode_key(field, WireType::LengthDelimited, out);
    encode_varint(kv_len as u64, out);
    bytes_field(out, KEY_VALUE_KEY, key.as_bytes());
    encode_key(KEY_VALUE_VALUE, WireType::LengthDelimited, out);
    encode_varint(any_len as u64, out);
    match value {
        Any::Text(t) => bytes_field(out, ANY_STRING, t.as_bytes()),
        Any::Number(tag, n) => varint_field(out, tag, n),
    }
}

fn span_body(out: &mut Vec<u8>, s: &SpanRecord, scratch: &mut Vec<u8>) {
    let remote_parent = s.kind == Kind::Server && s.parent.is_some();
    bytes_field(out, SPAN_TRACE_ID, &s.trace_id);
    bytes_field(out, SPAN_SPAN_ID, &s.span_id);
    if let Some(ts) = s.trace_state.as_deref().filter(|t| !t.is_empty()) {
        bytes_field(out, SPAN_TRACE_STATE, ts.as_bytes());
    }
    if let Some(p) = &s.parent {
        bytes_field(out, SPAN_PARENT_SPAN_ID, p);
    }
    bytes_field(out, SPAN_NAME, s.name.as_bytes());
    let kind = match s.kind {
        Kind::Internal => KIND_INTERNAL,
        Kind::Server => KIND_SERVER,
        Kind::Client => KIND_CLIENT,
    };
    varint_field(out, SPAN_KIND, kind);
    fixed64_field(out, SPAN_START, s.start_ns);
    fixed64_field(out, SPAN_END, s.end_ns.max(s.start_ns));
    for (k, v) in &s.attributes {
        key_value(out, SPAN_ATTRIBUTES, k, Any::of(v));
    }
    for l in &s.links {
        message_field(out, SPAN_LINKS, scratch, |b| {
            bytes_field(b, LINK_TRACE_ID, &l.trace_id);
            bytes_field(b, LINK_SPAN_ID, &l.span_id);
            fixed32_field(b, LINK_FLAGS, u32::from(l.sampled) | REMOTE_KNOWN);
        });
    }
    if let SpanStatus::Error(msg) = &s.status {
        message_field(out, SPAN_STATUS, scratch, |b| {
            if !msg.is_empty() {
                bytes_field(b, STATUS_MESSAGE, msg.as_bytes());
            }
            varint_field(b, STATUS_CODE, STATUS_ERROR);
        });
    }
    fixed32_field(
        out,
        SPAN_FLAGS,
        SAMPLED | REMOTE_KNOWN | if remote_parent { REMOTE } else { 0 },
    );
}

/// One export request's body: `spans` under `resource`, scope `ficus`.
pub fn encode(resource: &ResourceInfo, spans: &[SpanRecord]) -> Vec<u8> {
    let (mut span, mut small) = (Vec::with_capacity(1024), Vec::with_capacity(128));
    // ScopeSpans: the scope, then each span.
    let mut scope_spans = Vec::with_capacity(spans.len() * 512 + 64);
    message_field(&mut scope_spans, SCOPE_SPANS_SCOPE, &mut small, |b| {
        bytes_field(b, SCOPE_NAME, b"ficus");
        bytes_field(b, SCOPE_VERSION, env!("CARGO_PKG_VERSION").as_bytes());
    });
    for s in spans {
        span.clear();
        span_body(&mut span, s, &mut small);
        bytes_field(&mut scope_spans, SCOPE_SPANS_SPANS, &span);
    }
    // ResourceSpans: the resource, then the scope's spans.
    let mut resource_spans = Vec::with_capacity(scope_spans.len() + 256);
    message_field(
        &mut resource_spans,
        RESOURCE_SPANS_RESOURCE,
        &mut small,
        |b| {
            for (k, v) in &resource.attributes {
                key_value(b, RESOURCE_ATTRIBUTES, k, Any::Text(v.into()));
            }
        },
    );
    bytes_field(
        &mut resource_spans,
        RESOURCE_SPANS_SCOPE_SPANS,
        &scope_spans,
    );
    let mut out = Vec::with_capacity(resource_spans.len() + 8);
    bytes_field(&mut out, REQUEST_RESOURCE_SPANS, &resource_spans);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Link;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        any_value, AnyValue, InstrumentationScope, KeyValue,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{
        span, status, ResourceSpans, ScopeSpans, Span, Status,
    };
    use prost::Message;

    /// The same request built with the protocol's own message types.
    fn reference(resource: &ResourceInfo, spans: &[SpanRecord]) -> ExportTraceServiceRequest {
        let kv = |key: &str, value: any_value::Value| KeyValue {
            key: key.to_string(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        };
        let value = |v: &Value| match v {
            Value::Int(n) => any_value::Value::IntValue(*n),
            Value::Bool(b) => any_value::Value::BoolValue(*b),
            other => any_value::Value::StringValue(other.text().unwrap().into_owned()),
        };
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: resource
                        .attributes
                        .iter()
                        .map(|(k, v)| kv(k, any_value::Value::StringValue(v.clone())))
                        .collect(),
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "ficus".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    spans: spans
                        .iter()
                        .map(|s| Span {
                            trace_id: s.trace_id.to_vec(),
                            span_id: s.span_id.to_vec(),
                            trace_state: s.trace_state.clone().unwrap_or_default(),
                            parent_span_id: s.parent.map_or_else(Vec::new, |p| p.to_vec()),
                            flags: SAMPLED
                                | REMOTE_KNOWN
                                | if s.kind == Kind::Server && s.parent.is_some() {
                                    REMOTE
                                } else {
                                    0
                                },
                            name: s.name.to_string(),
                            kind: match s.kind {
                                Kind::Internal => span::SpanKind::Internal,
                                Kind::Server => span::SpanKind::Server,
                                Kind::Client => span::SpanKind::Client,
                            } as i32,
                            start_time_unix_nano: s.start_ns,
                            end_time_unix_nano: s.end_ns.max(s.start_ns),
                            attributes: s.attributes.iter().map(|(k, v)| kv(k, value(v))).collect(),
                            links: s
                                .links
                                .iter()
                                .map(|l| span::Link {
                                    trace_id: l.trace_id.to_vec(),
                                    span_id: l.span_id.to_vec(),
                                    flags: u32::from(l.sampled) | REMOTE_KNOWN,
                                    ..Default::default()
                                })
                                .collect(),
                            status: match &s.status {
                                SpanStatus::Unset => None,
                                SpanStatus::Error(msg) => Some(Status {
                                    message: msg.to_string(),
                                    code: status::StatusCode::Error as i32,
                                }),
                            },
                            ..Default::default()
                        })
                        .collect(),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    #[test]
    fn the_direct_encoding_is_what_the_protocols_types_read_and_write() {
        let server = SpanRecord {
            trace_id: [7; 16],
            span_id: [8; 8],
            parent: None,
            trace_state: None,
            name: "GET /orders/*".into(),
            kind: Kind::Server,
            start_ns: 1_700_000_000_000_000_000,
            end_ns: 1_700_000_000_000_500_000,
            attributes: vec![
                ("url.path", "/orders/7".into()),
                ("ficus.route", Value::Shared("orders".into())),
                ("http.response.status_code", 200i64.into()),
                ("negative", (-3i64).into()),
                ("ficus.fallback", false.into()),
                ("long", "x".repeat(300).into()),
                ("client.address", Value::Ip("::1".parse().unwrap())),
                ("url.path", Value::Path("/a/b?q=1".parse().unwrap())),
                (
                    "url.full",
                    Value::Url("http://up:8080/base".into(), "/a?q=1".parse().unwrap()),
                ),
                (
                    "server.address",
                    Value::Header(http::HeaderValue::from_static("shop.example")),
                ),
            ],
            status: SpanStatus::Unset,
            links: vec![],
        };
        let client = SpanRecord {
            span_id: [9; 8],
            parent: Some([8; 8]),
            kind: Kind::Client,
            name: "GET".into(),
            status: SpanStatus::Error("".into()),
            links: vec![Link {
                trace_id: [1; 16],
                span_id: [2; 8],
                sampled: false,
            }],
            ..server.clone()
        };
        let resource = ResourceInfo {
            attributes: vec![
                ("service.name".into(), "ficus".into()),
                ("deployment.environment".into(), "test".into()),
            ],
        };
        for spans in [vec![], vec![server.clone()], vec![server, client]] {
            let ours = encode(&resource, &spans);
            let decoded = ExportTraceServiceRequest::decode(ours.as_slice()).unwrap();
            assert_eq!(decoded, reference(&resource, &spans));
        }
    }

    #[test]
    fn a_span_round_trips_through_the_protocols_own_types() {
        let s = SpanRecord {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent: Some([3; 8]),
            trace_state: Some("vendor=x".into()),
            name: "GET orders".into(),
            kind: Kind::Server,
            start_ns: 10,
            end_ns: 25,
            attributes: vec![
                ("http.request.method", "GET".into()),
                ("http.response.status_code", 502i64.into()),
                ("ficus.fallback", true.into()),
            ],
            status: SpanStatus::Error("upstream failed".into()),
            links: vec![Link {
                trace_id: [4; 16],
                span_id: [5; 8],
                sampled: true,
            }],
        };
        let resource = ResourceInfo {
            attributes: vec![("service.name".into(), "ficus".into())],
        };
        let bytes = encode(&resource, std::slice::from_ref(&s));
        let back = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
        let rs = &back.resource_spans[0];
        let attrs = &rs.resource.as_ref().unwrap().attributes;
        assert_eq!(attrs[0].key, "service.name");
        let span = &rs.scope_spans[0].spans[0];
        assert_eq!(span.trace_id, vec![1; 16]);
        assert_eq!(span.parent_span_id, vec![3; 8]);
        assert_eq!(span.trace_state, "vendor=x");
        assert_eq!(span.kind, span::SpanKind::Server as i32);
        assert_eq!(span.flags, SAMPLED | REMOTE_KNOWN | REMOTE);
        assert_eq!(
            (span.start_time_unix_nano, span.end_time_unix_nano),
            (10, 25)
        );
        assert_eq!(span.attributes.len(), 3);
        assert_eq!(
            span.attributes[1].value.as_ref().unwrap().value,
            Some(any_value::Value::IntValue(502))
        );
        assert_eq!(span.links[0].span_id, vec![5; 8]);
        let status = span.status.as_ref().unwrap();
        assert_eq!(status.code, status::StatusCode::Error as i32);
    }
}
