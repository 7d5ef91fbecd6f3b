//! The access log: one line per request (text or JSON), formatted and written by a writer task
//! so the request path only does a non-blocking channel send. When the writer falls behind,
//! records are dropped and counted, never waited for.

use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ficus_config::{AccessLog, LogFormat};
use http::uri::PathAndQuery;
use http::{HeaderValue, Method};
use tokio::sync::mpsc;

use crate::proxy::Answered;

/// One request, as logged.
#[derive(Debug)]
pub struct AccessRecord {
    pub at: SystemTime,
    /// From the request's arrival to the response head.
    pub duration: Duration,
    pub client: IpAddr,
    pub method: Method,
    /// Path and query as the client sent them.
    pub path: Option<PathAndQuery>,
    pub route: Arc<str>,
    pub answered: Answered,
    pub status: u16,
    pub request_id: HeaderValue,
    /// The request's trace (tracing on): written as 32 hex digits; no field when off.
    pub trace_id: Option<ficus_trace::TraceId>,
}

/// What the writer receives.
enum Msg {
    Record(Box<AccessRecord>),
    /// Write what is queued, flush, acknowledge and stop.
    Close(tokio::sync::oneshot::Sender<()>),
}

/// The request path's end of the log.
#[derive(Debug, Clone)]
pub struct AccessLogSender {
    tx: mpsc::Sender<Msg>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

impl AccessLogSender {
    pub fn send(&self, rec: AccessRecord) {
        if self.tx.try_send(Msg::Record(Box::new(rec))).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes and flushes everything queued, then stops the writer (records sent later are
    /// dropped). Waits at most `timeout`.
    pub async fn close(&self, timeout: std::time::Duration) {
        let (ack, done) = tokio::sync::oneshot::channel();
        if self.tx.send_timeout(Msg::Close(ack), timeout).await.is_ok() {
            let _ = tokio::time::timeout(timeout, done).await;
        }
    }

    /// Records dropped because the writer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Starts the writer task; returns the sender and the task (which ends when every sender is
/// dropped, after writing what was queued).
/// The values of the `redact_query` parameters (`[redact]` and the built-in list, taken at
/// start) are written as `[redacted]`.
pub fn start(
    cfg: &AccessLog,
    queue: usize,
    redact_query: Vec<String>,
) -> std::io::Result<(AccessLogSender, tokio::task::JoinHandle<()>)> {
    let out: Box<dyn Write + Send> = match &cfg.path {
        None => Box::new(std::io::stdout()),
        Some(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
    };
    let (tx, mut rx) = mpsc::channel::<Msg>(queue);
    let format = cfg.format;
    let task = tokio::task::spawn_blocking(move || {
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
        let mut line = String::with_capacity(256);
        while let Some(msg) = rx.blocking_recv() {
            let rec = match msg {
                Msg::Record(rec) => rec,
                Msg::Close(ack) => {
                    rx.close();
                    let _ = out.flush();
                    let _ = ack.send(());
                    return;
                }
            };
            line.clear();
            format_record(&mut line, &rec, format, &redact_query);
            let _ = out.write_all(line.as_bytes());
            // Flush when the queue is drained, so lines appear promptly under light load and
            // are batched under heavy load.
            if rx.is_empty() {
                let _ = out.flush();
            }
        }
        let _ = out.flush();
    });
    Ok((
        AccessLogSender {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        },
        task,
    ))
}

/// Formats one record, newline-terminated, the values of the `redact_query` parameters of
/// its target replaced.
pub fn format_record(
    line: &mut String,
    r: &AccessRecord,
    format: LogFormat,
    redact_query: &[String],
) {
    use std::fmt::Write as _;
    let ts = rfc3339(r.at);
    let rid = r.request_id.to_str().unwrap_or("-");
    let uri =
        ficus_compare::redact_query(r.path.as_ref().map_or("/", |p| p.as_str()), redact_query);
    let uri = uri.as_ref();
    let fallback = r.answered == Answered::LegacyFallback;
    match format {
        LogFormat::Text => {
            // Values a client chose are escaped, so no value can end its field early and
            // forge the ones after it.
            let _ = write!(
                line,
                "{ts} {client} \"{method} ",
                client = r.client,
                method = r.method
            );
            escape_into(line, uri);
            let _ = write!(
                line,
                "\" {status} route={route} upstream={up} fallback={fallback} duration_ms={ms:.3} request_id=",
                status = r.status,
                route = r.route,
                up = r.answered.as_str(),
                ms = r.duration.as_secs_f64() * 1000.0,
            );
            if rid
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
            {
                line.push_str(rid);
            } else {
                line.push('"');
                escape_into(line, rid);
                line.push('"');
            }
            if let Some(t) = &r.trace_id {
                line.push_str(" trace_id=");
                line.push_str(&ficus_trace::hex(t));
            }
            line.push('\n');
        }
        LogFormat::Json => {
            let mut v = serde_json::json!({
                "ts": ts,
                "client": r.client.to_string(),
                "method": r.method.as_str(),
                "uri": uri,
                "status": r.status,
                "route": &*r.route,
                "upstream": r.answered.as_str(),
                "fallback": fallback,
                "duration_ms": (r.duration.as_secs_f64() * 1e6).round() / 1e3,
                "request_id": rid,
            });
            if let (Some(t), Some(o)) = (&r.trace_id, v.as_object_mut()) {
                o.insert("trace_id".into(), ficus_trace::hex(t).into());
            }
            let _ = writeln!(line, "{v}");
        }
    }
}

/// Appends `s` with `"` and `\\` escaped by a backslash and control characters as `\\xNN`.
fn escape_into(line: &mut String, s: &str) {
    use std::fmt::Write as _;
    for c in s.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(line, "\\x{:02x}", c as u32);
            }
            c => line.push(c),
        }
    }
}

/// RFC 3339 UTC timestamp with milliseconds (hand-written: one function, no date crate).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, dd) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        assert_eq!(rfc3339(t), "2026-11-18T11:06:40.123Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn lines() {
        let rec = AccessRecord {
            at: SystemTime::UNIX_EPOCH,
            duration: Duration::from_micros(1500),
            client: "127.0.0.1".parse().unwrap(),
            method: Method::GET,
            path: Some(PathAndQuery::from_static("/orders/1?x=2")),
            route: Arc::from("orders"),
            answered: Answered::LegacyFallback,
            status: 200,
            request_id: HeaderValue::from_static("abc"),
            trace_id: None,
        };
        let mut s = String::new();
        format_record(&mut s, &rec, LogFormat::Text, &[]);
        assert_eq!(
            s,
            "1970-01-01T00:00:00.000Z 127.0.0.1 \"GET /orders/1?x=2\" 200 route=orders upstream=legacy-fallback fallback=true duration_ms=1.500 request_id=abc\n"
        );
        // Values a client chose cannot end their field early.
        let forged = AccessRecord {
            path: Some(PathAndQuery::from_static("/a\"b")),
            request_id: HeaderValue::from_static("x status=500"),
            ..rec
        };
        s.clear();
        format_record(&mut s, &forged, LogFormat::Text, &[]);
        assert!(
            s.ends_with("\"GET /a\\\"b\" 200 route=orders upstream=legacy-fallback fallback=true duration_ms=1.500 request_id=\"x status=500\"\n"),
            "{s}"
        );
        let rec = forged;
        s.clear();
        format_record(&mut s, &rec, LogFormat::Json, &[]);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["route"], "orders");
        assert_eq!(v["fallback"], true);
        assert_eq!(v["duration_ms"], 1.5);
        assert!(v.get("trace_id").is_none());
        // Tracing on: the trace id joins the line, so a log line leads to its trace.
        let traced = AccessRecord {
            trace_id: Some([0xab; 16]),
            ..rec
        };
        s.clear();
        format_record(&mut s, &traced, LogFormat::Text, &[]);
        assert!(
            s.ends_with(" trace_id=abababababababababababababababab\n"),
            "{s}"
        );
        s.clear();
        format_record(&mut s, &traced, LogFormat::Json, &[]);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["trace_id"], "abababababababababababababababab");
    }

    #[test]
    fn credential_query_values_never_reach_the_log() {
        let rec = AccessRecord {
            at: SystemTime::UNIX_EPOCH,
            duration: Duration::from_micros(1500),
            client: "127.0.0.1".parse().unwrap(),
            method: Method::GET,
            path: Some(PathAndQuery::from_static(
                "/orders?api_key=s3cret&page=2&my_tok=x",
            )),
            route: Arc::from("orders"),
            answered: Answered::Legacy,
            status: 200,
            request_id: HeaderValue::from_static("abc"),
            trace_id: None,
        };
        let sensitive = ficus_compare::sensitive_query(&["my_tok".into()]);
        for format in [LogFormat::Text, LogFormat::Json] {
            let mut s = String::new();
            format_record(&mut s, &rec, format, &sensitive);
            assert!(!s.contains("s3cret") && !s.contains("my_tok=x"), "{s}");
            assert!(
                s.contains("api_key=[redacted]&page=2&my_tok=[redacted]"),
                "{s}"
            );
        }
    }
}
