//! Webhooks: the recorded events (rollout decisions, applies, rollbacks, breaker changes,
//! cache purges, verify outcomes) POSTed as JSON to the `[[webhook]]` receivers whose kind
//! prefixes match, over `http://` or `https://`.
//!
//! The store is the queue. The leader of the fleet (or a node alone) runs one lane per
//! receiver: a task that reads the events after its position from the store and delivers
//! the matching ones in order, with a timeout and retries, so every event reaches a
//! receiver once per fleet, whichever node recorded it, and a slow or dead receiver never
//! holds up a change, a rollback or the other receivers. A healthy receiver gets every
//! event, however far behind it is; one whose last delivery failed gets only the newest
//! [`QUEUE`] events, the older ones counted as dropped for it (the audit log keeps them all
//! the same), so a receiver that comes back is not flooded with stale news. The leader stores the slowest lane's
//! position as the cursor (fenced by its lease); a new leader starts every lane there, so a
//! leader change may deliver an event a second time (receivers can tell by its `id`), never
//! skip one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use ficus_config::{Webhook, WebhookFormat};
use ficus_store::{Event, EventFilter, StoreError};
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{watch, Notify};

use crate::ControlPlane;

/// How many of the newest events a failing receiver's lane still tries.
pub const QUEUE: usize = 256;
/// Events a lane reads from the store at a time.
const PAGE: u32 = 64;
/// How often lanes and the cursor look without being woken (other nodes record too).
const POLL: Duration = Duration::from_secs(1);

type HookClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The delivery of events to the receivers, held by the control plane.
pub struct Webhooks {
    /// Counts this node's recorded events: lanes wake when it moves.
    kick: watch::Sender<u64>,
    /// Wakes the cursor keeper.
    keeper: Arc<Notify>,
    started: AtomicBool,
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

/// A receiver's lane: its task, and the last event id it has dealt with.
struct Lane {
    pos: Arc<AtomicI64>,
    stop: watch::Sender<bool>,
}

impl Drop for Lane {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Webhooks {
    /// Delivery that has not started: events wait in the store.
    pub fn new() -> Webhooks {
        Webhooks {
            kick: watch::channel(0).0,
            keeper: Arc::new(Notify::new()),
            started: AtomicBool::new(false),
            counts: Arc::default(),
        }
    }

    /// Starts delivering on the current runtime, once (later calls do nothing). Receivers are
    /// read from the running config as it changes: an apply adds a lane (starting at the
    /// cursor) or ends one. Everything ends when the control plane is dropped.
    pub(crate) fn start(&self, control: Weak<ControlPlane>) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let counts = self.counts.clone();
        let keeper = self.keeper.clone();
        let kick = self.kick.subscribe();
        tokio::spawn(async move {
            let mut lanes: HashMap<LaneKey, Lane> = HashMap::new();
            loop {
                let Some(cp) = control.upgrade() else { break };
                let mut leadership = cp.watch_leadership();
                let lead = leadership.borrow_and_update().clone();
                if !lead.leads() {
                    lanes.clear();
                    drop(cp);
                    if leadership.changed().await.is_err() {
                        break;
                    }
                    continue;
                }
                match keep_cursor(&cp, &lead, &mut lanes, &counts, &kick).await {
                    Ok(()) => {}
                    // Another node leads: the leadership will say so.
                    Err(StoreError::Fenced(_)) => lanes.clear(),
                    Err(e) => {
                        tracing::warn!(error = %e, "webhooks: cannot reach the store; trying again")
                    }
                }
                drop(cp);
                tokio::select! {
                    _ = keeper.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                    _ = leadership.changed() => {}
                }
            }
        });
    }

    /// Wakes the delivery: the store holds new events.
    pub fn kick(&self) {
        self.kick.send_modify(|n| *n += 1);
        self.keeper.notify_one();
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
                help: "Events for [[webhook]] receivers, one per event and receiver: delivered (a 2xx), failed (after the retries), dropped (older than the newest 256 while the receiver fails).",
                gauge: false,
                samples,
            }]
        })
    }

    /// (delivered, failed after retries, dropped while a receiver failed far behind).
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.counts.delivered.load(Ordering::Relaxed),
            self.counts.failed.load(Ordering::Relaxed),
            self.counts.dropped.load(Ordering::Relaxed),
        )
    }
}

/// Starts a lane for each receiver that has none (at the stored cursor), ends the lanes of
/// removed receivers, and stores the slowest lane's position as the cursor.
async fn keep_cursor(
    cp: &Arc<ControlPlane>,
    lead: &crate::Leadership,
    lanes: &mut HashMap<LaneKey, Lane>,
    counts: &Arc<Counts>,
    kick: &watch::Receiver<u64>,
) -> Result<(), StoreError> {
    let cursor = cp.store().webhook_cursor().await?;
    let receivers = cp.snapshot().effective.webhooks.clone();
    lanes.retain(|k, _| receivers.iter().any(|w| lane_key(w) == *k));
    for w in &receivers {
        lanes.entry(lane_key(w)).or_insert_with(|| {
            lane(
                Arc::downgrade(cp),
                lane_key(w),
                cursor,
                counts.clone(),
                kick.clone(),
            )
        });
    }
    let slowest = match lanes.values().map(|l| l.pos.load(Ordering::Relaxed)).min() {
        Some(p) => p,
        // No receivers: nothing waits for the events recorded so far.
        None => cp.synced().last_event_id.max(cursor),
    };
    if slowest > cursor {
        cp.store().set_webhook_cursor(slowest, lead.fence()).await?;
    }
    Ok(())
}

/// A receiver's URL as logs show it: a webhook URL is usually a capability (the path or a
/// `?token=` is the secret), so only its scheme and host appear.
fn shown(w: &Webhook) -> String {
    ficus_config::secrets::mask_url(&w.url.to_string(), true)
}

/// What tells receivers apart: their address and the roots they are checked against.
type LaneKey = (String, Option<std::path::PathBuf>);

fn lane_key(w: &Webhook) -> LaneKey {
    (w.url.to_string(), w.ca_file.clone())
}

/// One receiver's lane: reads the events after `start` and delivers the matching ones in
/// order, reading the receiver's settings from the running config for each event.
fn lane(
    control: Weak<ControlPlane>,
    key: LaneKey,
    start: i64,
    counts: Arc<Counts>,
    mut kick: watch::Receiver<u64>,
) -> Lane {
    let pos = Arc::new(AtomicI64::new(start));
    let (stop, mut stopped) = watch::channel(false);
    let at = pos.clone();
    tokio::spawn(async move {
        // Whether the receiver's last delivery failed (after its retries).
        let mut failing = false;
        loop {
            if *stopped.borrow() {
                return;
            }
            let Some(cp) = control.upgrade() else { return };
            let after = at.load(Ordering::Relaxed);
            let page = cp
                .store()
                .events(EventFilter {
                    after_id: Some(after),
                    limit: PAGE,
                    ..EventFilter::default()
                })
                .await;
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    tracing::debug!(error = %e, "webhook lane: cannot read events");
                    Vec::new()
                }
            };
            // Too far behind: skip ahead to the newest QUEUE events, counting what is skipped.
            let newest = match page.len() {
                0 => 0,
                n if n < PAGE as usize => page.last().map_or(0, |e| e.id),
                _ => cp
                    .store()
                    .events(EventFilter {
                        limit: 1,
                        ..EventFilter::default()
                    })
                    .await
                    .ok()
                    .and_then(|e| e.first().map(|e| e.id))
                    .unwrap_or(0),
            };
            let receiver = cp
                .snapshot()
                .effective
                .webhooks
                .iter()
                .find(|w| lane_key(w) == key)
                .cloned();
            drop(cp);
            let Some(w) = receiver else { return };
            let wants = |e: &Event| {
                w.events.iter().any(|p| e.kind.starts_with(p.as_str()))
                    && (w.format == WebhookFormat::Ficus || e.data.get("alertmanager").is_some())
            };
            for event in &page {
                if *stopped.borrow() {
                    return;
                }
                if wants(event) {
                    if failing && newest - event.id >= QUEUE as i64 {
                        counts.dropped.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(url = %shown(&w), event = event.id, "webhook dropped: the receiver fails and is more than {QUEUE} events behind");
                    } else {
                        failing = !deliver(&w, event, &counts).await;
                    }
                }
                at.store(event.id, Ordering::Relaxed);
            }
            if page.len() < PAGE as usize {
                tokio::select! {
                    _ = kick.changed() => {}
                    _ = tokio::time::sleep(POLL) => {}
                    _ = stopped.changed() => return,
                }
            }
        }
    });
    Lane { pos, stop }
}

/// One event to one receiver, counted; whether it was delivered.
async fn deliver(w: &Webhook, event: &Event, counts: &Counts) -> bool {
    let delivered = match client(w).and_then(|c| Ok((c, secret(w)?))) {
        Ok((client, secret)) => post(&client, w, secret.as_deref(), event).await,
        Err(e) => {
            tracing::warn!(url = %shown(w), event = event.id, "webhook not sent: {e}");
            false
        }
    };
    if delivered {
        counts.delivered.fetch_add(1, Ordering::Relaxed);
    } else {
        counts.failed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(url = %shown(w), event = event.id, "webhook not delivered after its retries");
    }
    delivered
}

/// Checks that every `https://` receiver's `ca_file` holds usable certificates and every
/// `secret_file` a key, so that an apply (or a start) with a broken one is refused instead
/// of failing each delivery later.
pub fn check(receivers: &[Webhook]) -> Result<(), String> {
    for (i, w) in receivers.iter().enumerate() {
        roots(w)
            .and_then(|_| secret(w))
            .map_err(|e| format!("webhook #{} ({}): {e}", i + 1, shown(w)))?;
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
    let body = match w.format {
        WebhookFormat::Ficus => serde_json::to_vec(event),
        // Only events that carry one are sent to such a receiver (see `wants`).
        WebhookFormat::Alertmanager => serde_json::to_vec(&event.data["alertmanager"]),
    };
    let body = Bytes::from(body.unwrap_or_default());
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
                tracing::debug!(url = %shown(w), status = resp.status().as_u16(), attempt, "webhook refused")
            }
            Ok(Err(e)) => tracing::debug!(url = %shown(w), attempt, "webhook failed: {e}"),
            Err(_) => tracing::debug!(url = %shown(w), attempt, "webhook timed out"),
        }
    }
    false
}
