//! Traces for ficus: finished spans (`span`), their OTLP protobuf encoding (`otlp`), the
//! exporter thread with its bounded queue and counters (`export`), and the settings from
//! `[tracing]` and the standard `OTEL_*` variables (`settings`).
//!
//! The request path's part (reading and writing `traceparent`, sampling, which spans a
//! request makes) lives in `ficus-proxy::trace`; this crate knows nothing of routes.
//! It speaks the OpenTelemetry protocol (the wire format `opentelemetry-proto` defines, which
//! its tests decode with) but not the SDK's pipeline: one span costs a push into a bounded
//! buffer on the request path, and the exporter's thread and its limits are ficus's to
//! account for in `/metrics`.

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod export;
pub mod otlp;
pub mod settings;
pub mod span;

pub use export::{Stats, Tracer};
pub use settings::Settings;
pub use span::{hex, Kind, Link, SpanId, SpanRecord, Status, TraceId, Value};
