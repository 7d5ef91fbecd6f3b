//! What the exporter runs with: `[tracing]` from the file, and for every setting the file
//! leaves out, the standard OpenTelemetry environment variables (the SDK specification's
//! names), then ficus's defaults. Read once, when the gateway starts.

use std::path::PathBuf;
use std::time::Duration;

use ficus_config::{defaults, Tracing};
use http::{HeaderName, HeaderValue, Uri};

/// The collector address OpenTelemetry SDKs use when none is given.
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4318";

/// The exporter's settings, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The full URL spans are POSTed to (`.../v1/traces`).
    pub url: Uri,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The share of new traces recorded, 0 to 1.
    pub sample_ratio: f64,
    /// Follow the caller's sampled flag when a request carries a `traceparent`.
    pub parent_based: bool,
    /// Resource attributes, `service.name` first.
    pub resource: Vec<(String, String)>,
    pub timeout: Duration,
    pub queue: usize,
    pub batch: usize,
    pub flush_interval: Duration,
    pub ca_file: Option<PathBuf>,
}

/// Which variable (or key) was wrong, and how.
fn bad(name: &str, value: &str, help: &str) -> String {
    format!("tracing: {name}={value:?} is not valid: {help}")
}

impl Settings {
    /// The settings of `cfg` with the environment (`env`, e.g. `std::env::var(..).ok()`)
    /// filling what it leaves out. `Ok(None)`: tracing is off (`enabled = false`,
    /// `OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none`, or no endpoint anywhere).
    /// `instance`: this node's name, the default `service.instance.id`.
    pub fn resolve(
        cfg: &Tracing,
        instance: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Settings>, String> {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if cfg.enabled == Some(false) {
            return Ok(None);
        }
        if cfg.enabled.is_none() {
            if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
                return Ok(None);
            }
            match var("OTEL_TRACES_EXPORTER").map(|v| v.trim().to_ascii_lowercase()) {
                Some(v) if v == "none" => return Ok(None),
                Some(v) if v != "otlp" => {
                    return Err(bad(
                        "OTEL_TRACES_EXPORTER",
                        &v,
                        "ficus exports spans over OTLP only: use otlp or none",
                    ))
                }
                _ => {}
            }
        }
        for name in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(p) = var(name) {
                if p.trim() != "http/protobuf" {
                    return Err(bad(
                        name,
                        &p,
                        "ficus sends OTLP over HTTP with protobuf bodies (http/protobuf, \
                         usually port 4318); grpc and http/json are not supported",
                    ));
                }
                break;
            }
        }
        let url = match (&cfg.endpoint, var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) {
            (Some(base), _) => Some(traces_url(&base.to_string(), "[tracing] endpoint")?),
            (None, Some(full)) => Some(
                full.trim()
                    .parse::<Uri>()
                    .ok()
                    .filter(is_http_url)
                    .ok_or_else(|| {
                        bad(
                            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                            &full,
                            "give the full http(s) URL of the collector's traces endpoint",
                        )
                    })?,
            ),
            (None, None) => match var("OTEL_EXPORTER_OTLP_ENDPOINT") {
                Some(base) => Some(traces_url(&base, "OTEL_EXPORTER_OTLP_ENDPOINT")?),
                None => None,
            },
        };
        let url = match (url, cfg.enabled) {
            (Some(u), _) => u,
            (None, Some(true)) => traces_url(DEFAULT_ENDPOINT, "the default endpoint")?,
            (None, _) => return Ok(None),
        };

        let headers = if cfg.headers.is_empty() {
            match var("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
                .map(|v| ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", v))
                .or_else(|| {
                    var("OTEL_EXPORTER_OTLP_HEADERS").map(|v| ("OTEL_EXPORTER_OTLP_HEADERS", v))
                }) {
                Some((name, v)) => env_headers(name, &v)?,
                None => Vec::new(),
            }
        } else {
            cfg.headers.clone()
        };

        // The sampler: OTEL_TRACES_SAMPLER sets both halves; each file key wins over it.
        let (mut ratio, mut parent_based) = (defaults::TRACING_SAMPLE_RATIO, true);
        if let Some(s) = var("OTEL_TRACES_SAMPLER") {
            let arg = match var("OTEL_TRACES_SAMPLER_ARG") {
                Some(a) => Some(
                    a.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|r| (0.0..=1.0).contains(r))
                        .ok_or_else(|| bad("OTEL_TRACES_SAMPLER_ARG", &a, "a ratio from 0 to 1"))?,
                ),
                None => None,
            };
            (ratio, parent_based) = match s.trim() {
                "always_on" => (1.0, false),
                "always_off" => (0.0, false),
                "traceidratio" => (arg.unwrap_or(1.0), false),
                "parentbased_always_on" => (1.0, true),
                "parentbased_always_off" => (0.0, true),
                "parentbased_traceidratio" => (arg.unwrap_or(1.0), true),
                other => {
                    return Err(bad(
                        "OTEL_TRACES_SAMPLER",
                        other,
                        "one of always_on, always_off, traceidratio, parentbased_always_on, \
                         parentbased_always_off, parentbased_traceidratio",
                    ))
                }
            };
        }
        if let Some(r) = cfg.sample_ratio {
            ratio = r;
        }
        if let Some(p) = cfg.parent_based {
            parent_based = p;
        }

        let mut resource: Vec<(String, String)> = match var("OTEL_RESOURCE_ATTRIBUTES") {
            Some(v) => pairs("OTEL_RESOURCE_ATTRIBUTES", &v)?,
            None => Vec::new(),
        };
        for (k, v) in &cfg.resource {
            set(&mut resource, k, v);
        }
        let service = cfg
            .service_name
            .clone()
            .or_else(|| var("OTEL_SERVICE_NAME"))
            .or_else(|| {
                resource
                    .iter()
                    .find(|(k, _)| k == "service.name")
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_else(|| defaults::TRACING_SERVICE_NAME.to_string());
        resource.retain(|(k, _)| k != "service.name");
        resource.insert(0, ("service.name".into(), service));
        if !resource.iter().any(|(k, _)| k == "service.version") {
            resource.push(("service.version".into(), env!("CARGO_PKG_VERSION").into()));
        }
        if let Some(node) = instance {
            if !resource.iter().any(|(k, _)| k == "service.instance.id") {
                resource.push(("service.instance.id".into(), node.to_string()));
            }
        }

        let millis = |names: &[&str]| -> Result<Option<Duration>, String> {
            for name in names {
                if let Some(v) = var(name) {
                    return v
                        .trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .map(|n| Some(Duration::from_millis(n)))
                        .ok_or_else(|| bad(name, &v, "a whole number of milliseconds above 0"));
                }
            }
            Ok(None)
        };
        let count = |name: &str| -> Result<Option<usize>, String> {
            match var(name) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=defaults::TRACING_MAX_QUEUE).contains(n))
                    .map(Some)
                    .ok_or_else(|| {
                        bad(
                            name,
                            &v,
                            &format!("a count from 1 to {}", defaults::TRACING_MAX_QUEUE),
                        )
                    }),
            }
        };
        let timeout = match cfg.timeout {
            Some(t) => t,
            None => millis(&[
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ])?
            .unwrap_or(defaults::TRACING_TIMEOUT),
        };
        let flush_interval = match cfg.flush_interval {
            Some(t) => t,
            None => {
                millis(&["OTEL_BSP_SCHEDULE_DELAY"])?.unwrap_or(defaults::TRACING_FLUSH_INTERVAL)
            }
        };
        let queue = match cfg.queue {
            Some(q) => q,
            None => count("OTEL_BSP_MAX_QUEUE_SIZE")?.unwrap_or(defaults::TRACING_QUEUE),
        };
        let batch = match cfg.batch {
            Some(b) => b,
            None => count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")?.unwrap_or(defaults::TRACING_BATCH),
        }
        .min(queue);
        let ca_file = cfg.ca_file.clone().or_else(|| {
            var("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE")
                .or_else(|| var("OTEL_EXPORTER_OTLP_CERTIFICATE"))
                .map(PathBuf::from)
        });
        Ok(Some(Settings {
            url,
            headers,
            sample_ratio: ratio,
            parent_based,
            resource,
            timeout,
            queue,
            batch,
            flush_interval,
            ca_file,
        }))
    }
}

fn is_http_url(u: &Uri) -> bool {
    matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
}

/// A base URL with `/v1/traces` appended, as the specification has it for
/// `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn traces_url(base: &str, what: &str) -> Result<Uri, String> {
    let base = base.trim();
    let joined = format!("{}/v1/traces", base.trim_end_matches('/'));
    joined
        .parse::<Uri>()
        .ok()
        .filter(is_http_url)
        .ok_or_else(|| {
            bad(
                what,
                base,
                "give the collector's http(s) base URL, e.g. http://127.0.0.1:4318",
            )
        })
}

/// `k=v,k2=v2` with percent-encoded values (the W3C Baggage format the specification uses
/// for headers and resource attributes).
fn pairs(name: &str, text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(bad(
                name,
                text,
                "a list of key=value pairs separated by commas",
            ));
        };
        let (k, v) = (percent_decode(k.trim()), percent_decode(v.trim()));
        if k.is_empty() {
            return Err(bad(name, text, "a key is empty"));
        }
        set(&mut out, &k, &v);
    }
    Ok(out)
}

fn set(list: &mut Vec<(String, String)>, k: &str, v: &str) {
    match list.iter_mut().find(|(key, _)| key == k) {
        Some(slot) => slot.1 = v.to_string(),
        None => list.push((k.to_string(), v.to_string())),
    }
}

fn env_headers(name: &str, text: &str) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    pairs(name, text)?
        .into_iter()
        .map(|(k, v)| {
            let n = HeaderName::from_bytes(k.trim().as_bytes())
                .map_err(|_| bad(name, &k, "a header name is not valid"))?;
            let v = HeaderValue::from_str(&v)
                .map_err(|_| bad(name, &k, "a header value has control characters"))?;
            Ok((n, v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn off_without_an_endpoint_and_on_with_one_from_the_environment() {
        let cfg = Tracing::default();
        assert_eq!(Settings::resolve(&cfg, None, env(&[])).unwrap(), None);
        let s = Settings::resolve(
            &cfg,
            Some("gw-1"),
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=a%20b,team=pay"),
                ("OTEL_SERVICE_NAME", "edge"),
                (
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "deployment.environment=prod,service.name=x",
                ),
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
                ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
                ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "500"),
                ("OTEL_BSP_SCHEDULE_DELAY", "200"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.url, "http://collector:4318/v1/traces");
        assert_eq!(s.headers[0].1, "a b");
        assert_eq!(s.resource[0], ("service.name".into(), "edge".into()));
        assert!(s
            .resource
            .contains(&("deployment.environment".into(), "prod".into())));
        assert!(s
            .resource
            .contains(&("service.instance.id".into(), "gw-1".into())));
        assert_eq!((s.sample_ratio, s.parent_based), (0.25, true));
        assert_eq!(s.timeout, Duration::from_millis(2500));
        // A batch never exceeds the queue.
        assert_eq!((s.queue, s.batch), (100, 100));
        assert_eq!(s.flush_interval, Duration::from_millis(200));
    }

    #[test]
    fn the_file_wins_key_by_key_and_can_turn_tracing_off() {
        let cfg = Tracing {
            endpoint: Some("https://otlp.example/base".parse().unwrap()),
            sample_ratio: Some(0.01),
            service_name: Some("gateway".into()),
            ..Tracing::default()
        };
        let vars = [
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://other:4318/v1/traces",
            ),
            ("OTEL_TRACES_SAMPLER", "always_on"),
            ("OTEL_SERVICE_NAME", "ignored"),
        ];
        let s = Settings::resolve(&cfg, None, env(&vars)).unwrap().unwrap();
        assert_eq!(s.url, "https://otlp.example/base/v1/traces");
        // The sampler's kind from the environment, the ratio from the file.
        assert_eq!((s.sample_ratio, s.parent_based), (0.01, false));
        assert_eq!(s.resource[0].1, "gateway");
        let off = Tracing {
            enabled: Some(false),
            ..cfg
        };
        assert_eq!(Settings::resolve(&off, None, env(&vars)).unwrap(), None);
        let on = Tracing {
            enabled: Some(true),
            ..Tracing::default()
        };
        let s = Settings::resolve(&on, None, env(&[])).unwrap().unwrap();
        assert_eq!(s.url, "http://localhost:4318/v1/traces");
        // The signal's own variable is a full URL, taken as it is.
        let s = Settings::resolve(&Tracing::default(), None, env(&vars[..1]))
            .unwrap()
            .unwrap();
        assert_eq!(s.url, "http://other:4318/v1/traces");
    }

    #[test]
    fn disabled_or_unsupported_settings_are_named() {
        let vars = |extra: (&'static str, &'static str)| {
            vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), extra]
        };
        let cfg = Tracing::default();
        let v = vars(("OTEL_SDK_DISABLED", "true"));
        assert_eq!(Settings::resolve(&cfg, None, env(&v)).unwrap(), None);
        let v = vars(("OTEL_TRACES_EXPORTER", "none"));
        assert_eq!(Settings::resolve(&cfg, None, env(&v)).unwrap(), None);
        for (name, value, needle) in [
            (
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "grpc",
                "grpc and http/json are not supported",
            ),
            ("OTEL_TRACES_SAMPLER", "sometimes", "one of always_on"),
            ("OTEL_TRACES_SAMPLER_ARG", "2", "a ratio from 0 to 1"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon", "milliseconds"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "0", "a count from 1"),
            ("OTEL_TRACES_EXPORTER", "zipkin", "OTLP only"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue", "key=value"),
        ] {
            let mut v = vars((name, value));
            if name == "OTEL_TRACES_SAMPLER_ARG" {
                v.push(("OTEL_TRACES_SAMPLER", "traceidratio"));
            }
            let err = Settings::resolve(&cfg, None, env(&v)).unwrap_err();
            assert!(err.contains(name) && err.contains(needle), "{err}");
        }
        let v = [("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://c")];
        let err = Settings::resolve(&cfg, None, env(&v)).unwrap_err();
        assert!(err.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{err}");
    }
}
