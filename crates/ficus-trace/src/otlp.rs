//! Spans to OTLP protobuf (`ExportTraceServiceRequest`), with the message types of the
//! `opentelemetry-proto` crate.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message;

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

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn value(v: &Value) -> any_value::Value {
    match v {
        Value::Str(s) => any_value::Value::StringValue(s.to_string()),
        Value::Shared(s) => any_value::Value::StringValue(s.to_string()),
        Value::Int(n) => any_value::Value::IntValue(*n),
        Value::Bool(b) => any_value::Value::BoolValue(*b),
    }
}

fn encode_span(s: &SpanRecord) -> Span {
    let remote_parent = s.kind == Kind::Server && s.parent.is_some();
    Span {
        trace_id: s.trace_id.to_vec(),
        span_id: s.span_id.to_vec(),
        trace_state: s.trace_state.clone().unwrap_or_default(),
        parent_span_id: s.parent.map_or_else(Vec::new, |p| p.to_vec()),
        flags: SAMPLED | REMOTE_KNOWN | if remote_parent { REMOTE } else { 0 },
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
    }
}

/// One export request's body: `spans` under `resource`, scope `ficus`.
pub fn encode(resource: &ResourceInfo, spans: &[SpanRecord]) -> Vec<u8> {
    let request = ExportTraceServiceRequest {
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
                spans: spans.iter().map(encode_span).collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    request.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Link;

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
