//! `[tracing]`: W3C trace context and spans exported over OTLP/HTTP (node-local: each node
//! exports to its own collector). What the file leaves out may come from the standard
//! `OTEL_*` variables when the gateway starts; only the file is checked here.

use std::time::Duration;

use toml::de::DeValue;

use super::{Section, Validator};
use crate::model::{defaults, Tracing};
use crate::raw::{clip, describe, Entry};
use crate::units::format_duration;

pub(super) const TRACING_KEYS: &[&str] = &[
    "enabled",
    "endpoint",
    "headers",
    "sample_ratio",
    "parent_based",
    "service_name",
    "resource",
    "timeout",
    "queue",
    "batch",
    "flush_interval",
    "ca_file",
];

/// Longest service name and resource attribute key or value.
const MAX_NAME: usize = 256;

impl Validator<'_, '_> {
    pub(super) fn tracing(&mut self, e: &Entry<'_, '_>) -> Tracing {
        let mut t = Tracing::default();
        let Some(sec) = self.top_table(e, "[tracing]", "[tracing]") else {
            return t;
        };
        self.unknown_keys(&sec, TRACING_KEYS, &[], "[tracing]");
        if sec.get("enabled").is_some() {
            t.enabled = Some(self.boolean(&sec, "enabled", true));
        }
        if let Some((url, span)) = self.string(&sec, "endpoint") {
            match url.parse::<http::Uri>() {
                Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {
                    t.endpoint = Some(u);
                }
                _ => self.error(
                    &span,
                    format!("[tracing]: endpoint {:?} is not an http(s) URL", clip(url)),
                    Some(
                        "give the collector's OTLP/HTTP address; /v1/traces is appended, e.g. \
                         endpoint = \"http://127.0.0.1:4318\""
                            .into(),
                    ),
                ),
            }
        }
        t.headers = self.headers(&sec);
        t.sample_ratio = self.number(
            &sec,
            "sample_ratio",
            0.0,
            1.0,
            "the share of new traces recorded",
        );
        if sec.get("parent_based").is_some() {
            t.parent_based = Some(self.boolean(&sec, "parent_based", true));
        }
        if let Some((name, span)) = self.string(&sec, "service_name") {
            if name.trim().is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control)
            {
                self.error(
                    &span,
                    format!("[tracing]: service_name {:?} is not a name", clip(name)),
                    Some(format!(
                        "a name of 1 to {MAX_NAME} printable characters (default \"{}\")",
                        defaults::TRACING_SERVICE_NAME
                    )),
                );
            } else {
                t.service_name = Some(name.to_string());
            }
        }
        t.resource = self.resource(&sec);
        t.timeout = self.tracing_duration(
            &sec,
            "timeout",
            Duration::from_millis(100),
            Duration::from_secs(300),
            defaults::TRACING_TIMEOUT,
        );
        t.flush_interval = self.tracing_duration(
            &sec,
            "flush_interval",
            Duration::from_millis(10),
            Duration::from_secs(60),
            defaults::TRACING_FLUSH_INTERVAL,
        );
        let max = defaults::TRACING_MAX_QUEUE as i128;
        t.queue = self
            .bounded(&sec, "queue", 1, max, "finished spans waiting for export")
            .map(|n| n as usize);
        t.batch = self
            .bounded(
                &sec,
                "batch",
                1,
                max,
                "the most spans in one export request",
            )
            .map(|n| n as usize);
        t.ca_file = self.ca_file(&sec, t.endpoint.as_ref(), "collector");
        t
    }

    fn tracing_duration(
        &mut self,
        sec: &Section<'_, '_>,
        key: &str,
        min: Duration,
        max: Duration,
        default: Duration,
    ) -> Option<Duration> {
        let e = sec.get(key)?;
        let span = e.span.clone();
        let d = self.duration(sec, key, default);
        if (min..=max).contains(&d) {
            return Some(d);
        }
        self.error(
            &span,
            format!("[tracing]: {key} {} is out of range", format_duration(d)),
            Some(format!(
                "use {} to {} (default \"{}\")",
                format_duration(min),
                format_duration(max),
                format_duration(default)
            )),
        );
        None
    }

    /// `resource = { "deployment.environment" = "prod" }`: string keys and values.
    fn resource(&mut self, sec: &Section<'_, '_>) -> Vec<(String, String)> {
        let Some((table, span)) = self.table(sec, "resource") else {
            return Vec::new();
        };
        let rsec = Section::new(sec.ctx.clone(), "resource.", span, table);
        let mut out = Vec::new();
        for e in &rsec.entries {
            let ok_key = !e.key.is_empty() && e.key.len() <= MAX_NAME;
            match e.value {
                DeValue::String(v) if ok_key && v.len() <= MAX_NAME => {
                    out.push((e.key.to_string(), v.to_string()));
                }
                DeValue::String(_) => self.error(
                    &e.span,
                    format!(
                        "[tracing]: resource attribute {:?} is too long or empty",
                        clip(e.key)
                    ),
                    Some(format!("keys and values of 1 to {MAX_NAME} characters")),
                ),
                other => self.error(
                    &e.span,
                    format!(
                        "[tracing]: resource attribute {:?} must be a string, found {}",
                        clip(e.key),
                        describe(other)
                    ),
                    Some("write it as \"deployment.environment\" = \"prod\"".into()),
                ),
            }
        }
        out
    }
}
