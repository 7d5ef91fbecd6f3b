//! Webhooks: the events this process records (rollout decisions, applies, rollbacks, breaker
//! changes, cache purges, verify outcomes) POSTed as JSON to the `[[webhook]]` receivers
//! whose kind prefixes match, over `http://` or `https://`. The control plane offers each
//! recorded event to a bounded queue without waiting; a task sorts them into one bounded lane
//! per receiver, whose own task delivers them in order with a timeout and retries. A slow
//! or dead receiver therefore never holds up a change, a rollback or the other receivers.
//! When a queue is full the event is dropped for the webhooks (it is in the audit log all
//! the same) and counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use ficus_config::Webhook;
use ficus_store::Event;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;

use crate::ControlPlane;

/// Events waiting to be sorted into the receivers' lanes, and events waiting in each lane.
pub const QUEUE: usize = 256;

type HookClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The queue of events for the receivers, held by the control plane.
pub struct Webhooks {
    tx: mpsc::Sender<Event>,
    /// Taken by the delivery task when it starts.
    rx: Mutex<Option<mpsc::Receiver<Event>>>,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

impl Default for Webhooks {
    fn default() -> Self {
        Webhooks::new()
    }
}

impl Webhooks {
    /// An empty queue; events offered before [`Webhooks::start`] wait in it (up to
    /// [`QUEUE`]).
    pub fn new() -> Webhooks {
        let (tx, rx) = mpsc::channel(QUEUE);
        Webhooks {
            tx,
            rx: Mutex::new(Some(rx)),
            counts: Arc::default(),
        }
    }

    /// Starts delivering on the current runtime, once (later calls do nothing). Receivers are
    /// read from the running config for each event, so an apply changes them. Each receiver
    /// has a lane of its own (a queue of [`QUEUE`] and a task), so one that is slow or dead
    /// delays only its own events. The tasks end when the control plane is dropped, and a
    /// receiver's when an apply removes it and its queue is empty.
    pub(crate) fn start(&self, control: Weak<ControlPlane>) {
        let Some(mut rx) = self.rx.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let counts = self.counts.clone();
        tokio::spawn(async move {
            let mut lanes: HashMap<LaneKey, mpsc::Sender<(Event, Webhook)>> = HashMap::new();
            while let Some(event) = rx.recv().await {
                let Some(control) = control.upgrade() else {
                    break;
                };
                let receivers = control.snapshot().effective.webhooks.clone();
                drop(control);
                // Dropping a removed receiver's sender lets its task finish what it holds.
                lanes.retain(|k, _| receivers.iter().any(|w| lane_key(w) == *k));
                for w in receivers
                    .iter()
                    .filter(|w| w.events.iter().any(|p| event.kind.starts_with(p.as_str())))
                {
                    let lane = lanes
                        .entry(lane_key(w))
                        .or_insert_with(|| lane(counts.clone()));
                    if lane.try_send((event.clone(), w.clone())).is_err() {
                        counts.dropped.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(url = %w.url, event = event.id, "webhook dropped: {QUEUE} events already wait for this receiver");
                    }
                }
            }
        });
    }

    /// Offers a recorded event without waiting.
    pub fn offer(&self, event: &Event) {
        if self.tx.try_send(event.clone()).is_err() {
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counts as a metric family, `ficus_webhook_events_total{outcome}`, for /metrics.
    pub(crate) fn metrics(&self) -> ficus_telemetry::ExtraMetrics {
        let counts = self.counts.clone();
        Box::new(move || {
            let samples = [
                ("delivered", &counts.delivered),
                ("failed", &counts.failed),
                ("dropped", &counts.dropped),
            ]
            .into_iter()
            .map(|(outcome, n)| {
                (
                    vec![("outcome", outcome.to_string())],
                    n.load(Ordering::Relaxed),
                )
            })
            .collect();
            vec![ficus_telemetry::Family {
                name: "ficus_webhook_events",
                help: "Events for [[webhook]] receivers, one per event and receiver: delivered (a 2xx), failed (after the retries), dropped (a queue was full).",
                gauge: false,
                samples,
            }]
        })
    }

    /// (delivered, failed after retries, dropped because the queue was full).
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.counts.delivered.load(Ordering::Relaxed),
            self.counts.failed.load(Ordering::Relaxed),
            self.counts.dropped.load(Ordering::Relaxed),
        )
    }
}

/// What tells receivers apart: their address and the roots they are checked against.
type LaneKey = (String, Option<std::path::PathBuf>);

fn lane_key(w: &Webhook) -> LaneKey {
    (w.url.to_string(), w.ca_file.clone())
}

/// One receiver's queue and the task that delivers from it, in order.
fn lane(counts: Arc<Counts>) -> mpsc::Sender<(Event, Webhook)> {
    let (tx, mut rx) = mpsc::channel::<(Event, Webhook)>(QUEUE);
    tokio::spawn(async move {
        while let Some((event, w)) = rx.recv().await {
            let delivered = match client(&w).and_then(|c| Ok((c, secret(&w)?))) {
                Ok((client, secret)) => post(&client, &w, secret.as_deref(), &event).await,
                Err(e) => {
                    tracing::warn!(url = %w.url, event = event.id, "webhook not sent: {e}");
                    false
                }
            };
            if delivered {
                counts.delivered.fetch_add(1, Ordering::Relaxed);
            } else {
                counts.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(url = %w.url, event = event.id, "webhook not delivered after its retries");
            }
        }
    });
    tx
}

/// Checks that every `https://` receiver's `ca_file` holds usable certificates and every
/// `secret_file` a key, so that an apply (or a start) with a broken one is refused instead
/// of failing each delivery later.
pub fn check(receivers: &[Webhook]) -> Result<(), String> {
    for (i, w) in receivers.iter().enumerate() {
        roots(w)
            .and_then(|_| secret(w))
            .map_err(|e| format!("webhook #{} ({}): {e}", i + 1, w.url))?;
    }
    Ok(())
}

/// The shortest signing key a `secret_file` may hold.
pub const MIN_SECRET_BYTES: usize = 16;

/// The receiver's signing key: its `secret_file`'s content without the trailing line end.
/// Read per delivery, so a rotated key needs no restart.
fn secret(w: &Webhook) -> Result<Option<Vec<u8>>, String> {
    let Some(path) = &w.secret_file else {
        return Ok(None);
    };
    let mut key =
        std::fs::read(path).map_err(|e| format!("secret_file {}: {e}", path.display()))?;
    while key.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
        key.pop();
    }
    if key.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "secret_file {}: {} bytes, fewer than {MIN_SECRET_BYTES}: put a long random key in it, e.g. `openssl rand -hex 32`",
            path.display(),
            key.len()
        ));
    }
    Ok(Some(key))
}

/// `sha256=` and the lower-case hex HMAC-SHA256 of `body` under `key`: what the
/// `x-ficus-signature-256` header carries, for the receiver to recompute.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    use hmac::Mac;
    // HMAC takes a key of any length.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A client for one receiver: plain HTTP, or TLS trusting the web PKI's roots plus the
/// receiver's `ca_file`. Made per delivery: events are seconds apart, and a rotated CA file
/// is read again without a restart.
fn client(w: &Webhook) -> Result<HookClient, String> {
    // No ALPN here: the connector sets it (http/1.1) and refuses a config that has one.
    let tls = ficus_proxy::upstream::client_tls(roots(w)?, Vec::new())
        .map_err(|e| format!("TLS: {e}"))?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// The roots the receiver's certificate is checked against: the web PKI's, plus its
/// `ca_file`'s.
fn roots(w: &Webhook) -> Result<rustls::RootCertStore, String> {
    ficus_proxy::upstream::trusted_roots(w.ca_file.as_deref()).map_err(|e| {
        let path = w.ca_file.as_deref().unwrap_or(std::path::Path::new(""));
        format!("ca_file {}: {e}", path.display())
    })
}

/// One event to one receiver, signed when it has a key: any 2xx is delivered; otherwise
/// tried `retries` more times, 200 ms, 400 ms, ... apart.
async fn post(client: &HookClient, w: &Webhook, key: Option<&[u8]>, event: &Event) -> bool {
    let body = Bytes::from(serde_json::to_vec(event).unwrap_or_default());
    let signed = key.map(|k| signature(k, &body));
    for attempt in 0..=w.retries {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200) * 2u32.pow(attempt - 1)).await;
        }
        let mut req = hyper::Request::post(w.url.clone())
            .header("content-type", "application/json")
            .header("x-ficus-event", event.kind.as_str());
        if let Some(sig) = &signed {
            req = req.header("x-ficus-signature-256", sig.as_str());
        }
        let req = req.body(Full::new(body.clone()));
        let Ok(req) = req else { return false };
        match tokio::time::timeout(w.timeout, client.request(req)).await {
            Ok(Ok(resp)) if resp.status().is_success() => return true,
            Ok(Ok(resp)) => {
                tracing::debug!(url = %w.url, status = resp.status().as_u16(), attempt, "webhook refused")
            }
            Ok(Err(e)) => tracing::debug!(url = %w.url, attempt, "webhook failed: {e}"),
            Err(_) => tracing::debug!(url = %w.url, attempt, "webhook timed out"),
        }
    }
    false
}
