//! The exporter: finished spans go into a bounded buffer (a short uncontended lock and a
//! push: the request path's only touch, never a wait, never a system call), and a thread of
//! its own takes the whole buffer every `flush_interval`, or as soon as a batch is full
//! (one wake-up per batch, not per span), and POSTs it to the collector as OTLP/HTTP
//! protobuf. A full buffer drops the span and counts it; a collector that refuses, fails or
//! hangs costs the batch (counted) and never a request.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

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

/// What the request path and the export thread share.
struct Shared {
    /// Finished spans, at most `queue` of them; allocated once at that size.
    spans: Mutex<Vec<SpanRecord>>,
    capacity: usize,
    batch: usize,
    /// Acknowledgements owed for a stop, sent once what was queued went out.
    waiting: Mutex<Vec<mpsc::Sender<()>>>,
    stop: AtomicBool,
    stats: Arc<Stats>,
}

/// The process's tracer: sampling thresholds and the exporter's queue.
pub struct Tracer {
    shared: Arc<Shared>,
    /// The export thread, woken when a batch is full or a stop is asked for.
    thread: std::thread::Thread,
    /// New traces with the low 56 bits of their id under this are recorded.
    threshold: u64,
    parent_based: bool,
    settings: Settings,
    handle: Mutex<Option<std::thread::JoinHandle<()>>>,
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
        let stats = Arc::new(Stats::default());
        let shared = Arc::new(Shared {
            spans: Mutex::new(Vec::with_capacity(settings.queue)),
            capacity: settings.queue,
            batch: settings.batch.max(1),
            waiting: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            stats: stats.clone(),
        });
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
            stats,
        };
        let queue = shared.clone();
        let handle = std::thread::Builder::new()
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
                exporter.run(&rt, &client, &queue);
            })?;
        // The threshold of a ratio over the 56 random low bits of a trace id (W3C trace
        // context level 2's "random" part): 1.0 records every trace, 0 none.
        let threshold = (settings.sample_ratio.clamp(0.0, 1.0) * (1u64 << 56) as f64) as u64;
        Ok(Arc::new(Tracer {
            shared,
            thread: handle.thread().clone(),
            threshold,
            parent_based: settings.parent_based,
            settings,
            handle: Mutex::new(Some(handle)),
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
        &self.shared.stats
    }

    /// Queues a finished span for export, or drops and counts it when the queue is full
    /// (or the exporter has stopped). Wakes the export thread when a batch is complete.
    pub fn export(&self, span: SpanRecord) {
        let q = &self.shared;
        let mut spans = q.spans.lock().unwrap_or_else(|p| p.into_inner());
        if spans.len() >= q.capacity || q.stop.load(Ordering::Relaxed) {
            drop(spans);
            q.stats.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
            return;
        }
        spans.push(span);
        let full = spans.len() == q.batch;
        drop(spans);
        if full {
            self.thread.unpark();
        }
    }

    /// Exports what is queued (waiting at most `timeout`) and stops the export thread.
    /// Spans offered later are dropped. Blocking: call it off any runtime's worker.
    pub fn shutdown(&self, timeout: Duration) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if self.ask(timeout) {
            if let Some(t) = self.handle.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = t.join();
            }
        }
    }

    fn ask(&self, timeout: Duration) -> bool {
        let (ack, done) = mpsc::channel();
        self.shared
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ack);
        self.thread.unpark();
        done.recv_timeout(timeout).is_ok()
    }
}

/// The export thread's state.
struct Exporter {
    settings: Settings,
    resource: ResourceInfo,
    stats: Arc<Stats>,
}

impl Exporter {
    /// Every `flush_interval`, or when woken (a full batch, a stop): takes what is
    /// queued and sends it, `batch` spans per request.
    fn run(&self, rt: &tokio::runtime::Runtime, client: &OtlpClient, q: &Shared) {
        let mut taken: Vec<SpanRecord> = Vec::with_capacity(q.capacity);
        loop {
            std::thread::park_timeout(self.settings.flush_interval);
            let stop = q.stop.load(Ordering::SeqCst);
            let acks = std::mem::take(&mut *q.waiting.lock().unwrap_or_else(|p| p.into_inner()));
            std::mem::swap(
                &mut *q.spans.lock().unwrap_or_else(|p| p.into_inner()),
                &mut taken,
            );
            for chunk in taken.chunks(q.batch) {
                rt.block_on(self.send(client, chunk));
            }
            taken.clear();
            for a in acks {
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
