//! The exporter: finished spans go into a bounded queue with `try_send` (the request path's
//! only touch, never a wait), and a thread of its own batches them and POSTs each batch to
//! the collector as OTLP/HTTP protobuf. A full queue drops the span and counts it; a
//! collector that refuses, fails or hangs costs the batch (counted) and never a request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prost::Message;

use crate::otlp::{encode, ResourceInfo};
use crate::settings::Settings;
use crate::span::{SpanRecord, TraceId};

/// The largest collector answer read (its partial-success report).
const MAX_RESPONSE: usize = 64 * 1024;
/// Tries of one batch when the collector is unreachable or asks to retry (429, 502-504).
const ATTEMPTS: u32 = 3;
/// The first wait between tries; it doubles.
const BACKOFF: Duration = Duration::from_millis(250);

type OtlpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

enum Msg {
    Span(Box<SpanRecord>),
    /// Send what is batched now, then acknowledge.
    Flush(mpsc::Sender<()>),
    /// Send what is queued, acknowledge and end the thread.
    Stop(mpsc::Sender<()>),
}

/// What happened to spans, for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Accepted by the collector.
    pub exported: AtomicU64,
    /// Dropped on the request path: the queue was full.
    pub dropped_queue_full: AtomicU64,
    /// Lost with a batch the collector refused, failed or did not answer in time (or
    /// rejected in a partial success).
    pub dropped_export_failed: AtomicU64,
    /// Export requests, by outcome.
    pub batches_ok: AtomicU64,
    pub batches_failed: AtomicU64,
}

/// The process's tracer: sampling thresholds and the exporter's queue.
pub struct Tracer {
    tx: SyncSender<Msg>,
    stats: Arc<Stats>,
    /// New traces with the low 56 bits of their id under this are recorded.
    threshold: u64,
    parent_based: bool,
    settings: Settings,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("url", &self.settings.url)
            .finish_non_exhaustive()
    }
}

impl Tracer {
    /// Starts the export thread. `tls`: the client configuration for an `https://`
    /// collector (the caller's roots and `ca_file`); plain `http://` needs none.
    pub fn start(settings: Settings, tls: rustls::ClientConfig) -> std::io::Result<Arc<Tracer>> {
        let (tx, rx) = mpsc::sync_channel(settings.queue);
        let stats = Arc::new(Stats::default());
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let exporter = Exporter {
            settings: settings.clone(),
            resource: ResourceInfo {
                attributes: settings.resource.clone(),
            },
            stats: stats.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("ficus-trace".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "tracing: cannot start the export runtime; spans will be dropped");
                        return;
                    }
                };
                let client: OtlpClient = rt.block_on(async {
                    Client::builder(TokioExecutor::new()).build(connector)
                });
                exporter.run(&rt, &client, rx);
            })?;
        // The threshold of a ratio over the 56 random low bits of a trace id (W3C trace
        // context level 2's "random" part): 1.0 records every trace, 0 none.
        let threshold = (settings.sample_ratio.clamp(0.0, 1.0) * (1u64 << 56) as f64) as u64;
        Ok(Arc::new(Tracer {
            tx,
            stats,
            threshold,
            parent_based: settings.parent_based,
            settings,
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// Whether a new trace (no caller's decision to follow) is recorded: a pure function of
    /// its id, so every node decides the same for the same trace.
    #[inline]
    pub fn samples(&self, trace_id: &TraceId) -> bool {
        let mut low = [0u8; 8];
        low[1..].copy_from_slice(&trace_id[9..]);
        u64::from_be_bytes(low) < self.threshold
    }

    /// Whether a caller's sampled flag decides (the parent-based sampler).
    #[inline]
    pub fn parent_based(&self) -> bool {
        self.parent_based
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Queues a finished span for export, or drops and counts it when the queue is full.
    pub fn export(&self, span: SpanRecord) {
        match self.tx.try_send(Msg::Span(Box::new(span))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats
                    .dropped_queue_full
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sends what is batched now and waits (at most `timeout`) until that is done.
    /// Blocking: call it off any runtime's worker (tests, shutdown).
    pub fn flush(&self, timeout: Duration) -> bool {
        let (ack, done) = mpsc::channel();
        self.control(Msg::Flush(ack), done, timeout)
    }

    /// Exports what is queued (waiting at most `timeout`) and stops the export thread.
    /// Spans offered later are dropped. Blocking, like [`Tracer::flush`].
    pub fn shutdown(&self, timeout: Duration) {
        let (ack, done) = mpsc::channel();
        if self.control(Msg::Stop(ack), done, timeout) {
            if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = t.join();
            }
        }
    }

    fn control(&self, msg: Msg, done: mpsc::Receiver<()>, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut msg = msg;
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(m)) => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                    msg = m;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        done.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }
}

/// The export thread's state.
struct Exporter {
    settings: Settings,
    resource: ResourceInfo,
    stats: Arc<Stats>,
}

impl Exporter {
    fn run(&self, rt: &tokio::runtime::Runtime, client: &OtlpClient, rx: mpsc::Receiver<Msg>) {
        let mut batch: Vec<SpanRecord> = Vec::with_capacity(self.settings.batch);
        loop {
            // Wait for the first span of a batch, then at most flush_interval for the rest.
            let first = match rx.recv() {
                Ok(m) => m,
                Err(_) => return,
            };
            let mut ack = None;
            let mut stop = false;
            let mut next = Some(first);
            let deadline = Instant::now() + self.settings.flush_interval;
            loop {
                match next.take() {
                    Some(Msg::Span(s)) => batch.push(*s),
                    Some(Msg::Flush(a)) => {
                        ack = Some(a);
                        break;
                    }
                    Some(Msg::Stop(a)) => {
                        // What is queued behind the stop was offered before it: keep it.
                        while let Ok(Msg::Span(s)) = rx.try_recv() {
                            batch.push(*s);
                        }
                        ack = Some(a);
                        stop = true;
                        break;
                    }
                    None => {}
                }
                if batch.len() >= self.settings.batch {
                    break;
                }
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(m) => next = Some(m),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => {
                        stop = true;
                        break;
                    }
                }
            }
            for chunk in batch.chunks(self.settings.batch.max(1)) {
                rt.block_on(self.send(client, chunk));
            }
            batch.clear();
            if let Some(a) = ack {
                let _ = a.send(());
            }
            if stop {
                return;
            }
        }
    }

    /// POSTs one batch, trying again (with a doubling wait) when the collector cannot be
    /// reached or answers 429, 502, 503 or 504, within one `timeout` for the whole batch.
    async fn send(&self, client: &OtlpClient, spans: &[SpanRecord]) {
        let body = Bytes::from(encode(&self.resource, spans));
        let n = spans.len() as u64;
        let deadline = tokio::time::Instant::now() + self.settings.timeout;
        let mut wait = BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let mut req = Request::post(self.settings.url.clone())
                .header(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-protobuf"),
                )
                .body(Full::new(body.clone()))
                .expect("a POST to a valid URL");
            for (name, value) in &self.settings.headers {
                req.headers_mut().insert(name.clone(), value.clone());
            }
            let outcome = tokio::time::timeout_at(deadline, async {
                let resp = client
                    .request(req)
                    .await
                    .map_err(|e| (true, e.to_string()))?;
                let status = resp.status();
                let body = Limited::new(resp.into_body(), MAX_RESPONSE)
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                if status.is_success() {
                    Ok(body)
                } else {
                    let retry = matches!(status.as_u16(), 429 | 502..=504);
                    Err((retry, format!("the collector answered {status}")))
                }
            })
            .await;
            match outcome {
                Ok(Ok(body)) => {
                    let rejected = rejected_spans(&body).min(n);
                    self.stats.batches_ok.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .exported
                        .fetch_add(n - rejected, Ordering::Relaxed);
                    if rejected > 0 {
                        self.stats
                            .dropped_export_failed
                            .fetch_add(rejected, Ordering::Relaxed);
                        tracing::warn!(rejected, "tracing: the collector rejected spans");
                    }
                    return;
                }
                Ok(Err((true, why)))
                    if attempt < ATTEMPTS && tokio::time::Instant::now() + wait < deadline =>
                {
                    tracing::debug!(error = %why, attempt, "tracing: export failed; trying again");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Ok(Err((_, why))) => return self.failed(n, &why),
                Err(_) => {
                    let why = format!("no answer within {} ms", self.settings.timeout.as_millis());
                    return self.failed(n, &why);
                }
            }
        }
    }

    fn failed(&self, n: u64, why: &str) {
        self.stats.batches_failed.fetch_add(1, Ordering::Relaxed);
        self.stats
            .dropped_export_failed
            .fetch_add(n, Ordering::Relaxed);
        tracing::warn!(
            spans = n,
            url = %self.settings.url,
            error = %why,
            "tracing: a batch of spans was lost"
        );
    }
}

/// The spans a collector's partial success says it rejected (0 for an empty answer).
fn rejected_spans(body: &[u8]) -> u64 {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    ExportTraceServiceResponse::decode(body)
        .ok()
        .and_then(|r| r.partial_success)
        .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracer(ratio: f64) -> Arc<Tracer> {
        let settings = Settings::resolve(
            &ficus_config::Tracing {
                endpoint: Some("http://127.0.0.1:9".parse().unwrap()),
                sample_ratio: Some(ratio),
                ..Default::default()
            },
            None,
            |_| None,
        )
        .unwrap()
        .unwrap();
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        Tracer::start(settings, tls).unwrap()
    }

    fn id(n: u64) -> TraceId {
        // Spread the counter over the id as a random id would be.
        let mut id = [0u8; 16];
        let x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (n >> 7);
        id[8..].copy_from_slice(&x.to_be_bytes());
        id[..8].copy_from_slice(&(!x).to_be_bytes());
        id
    }

    #[test]
    fn sampling_is_a_function_of_the_trace_id_alone() {
        let (none, all, tenth) = (tracer(0.0), tracer(1.0), tracer(0.1));
        let other = tracer(0.1);
        let mut kept = 0;
        for n in 0..10_000u64 {
            let t = id(n);
            assert!(!none.samples(&t));
            assert!(all.samples(&t));
            // Two tracers (two nodes) with one ratio decide alike for one trace.
            assert_eq!(tenth.samples(&t), other.samples(&t));
            kept += usize::from(tenth.samples(&t));
        }
        assert!((800..=1200).contains(&kept), "{kept} of 10000 at 0.1");
        assert!(all.samples(&[0xff; 16]), "the largest id at ratio 1");
        for t in [none, all, tenth, other] {
            t.shutdown(Duration::from_secs(1));
        }
    }
}
