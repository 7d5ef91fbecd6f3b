//! Webhooks: events (by default the rollout's) POSTed as JSON to the `[[webhook]]` receivers,
//! from a bounded queue by a task of their own, with a timeout and retries, so a slow or dead
//! receiver never holds up the controller: when the queue is full an event is dropped for
//! the webhooks (it is in the audit log all the same) and counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ficus_store::Event;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;

use crate::ControlPlane;

/// Events waiting to be POSTed.
pub const QUEUE: usize = 256;

/// The sending side, kept by whoever records events.
#[derive(Clone)]
pub struct Webhooks {
    tx: mpsc::Sender<Event>,
    dropped: Arc<AtomicU64>,
    delivered: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl Webhooks {
    /// Starts the delivery task on the current runtime; receivers are read from the running
    /// config for each event, so an apply changes them.
    pub fn spawn(control: Arc<ControlPlane>) -> Webhooks {
        let (tx, mut rx) = mpsc::channel::<Event>(QUEUE);
        let hooks = Webhooks {
            tx,
            dropped: Arc::default(),
            delivered: Arc::default(),
            failed: Arc::default(),
        };
        let (delivered, failed) = (hooks.delivered.clone(), hooks.failed.clone());
        tokio::spawn(async move {
            let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            while let Some(event) = rx.recv().await {
                let receivers = control.snapshot().effective.webhooks.clone();
                for w in receivers
                    .iter()
                    .filter(|w| w.events.iter().any(|p| event.kind.starts_with(p.as_str())))
                {
                    if post(&client, w, &event).await {
                        delivered.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(url = %w.url, event = event.id, "webhook not delivered after its retries");
                    }
                }
            }
        });
        hooks
    }

    /// Offers an event without waiting.
    pub fn offer(&self, event: &Event) {
        if self.tx.try_send(event.clone()).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// (delivered, failed after retries, dropped because the queue was full).
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.delivered.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }
}

/// One event to one receiver: any 2xx is delivered; otherwise tried `retries` more times,
/// 200 ms, 400 ms, ... apart.
async fn post(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    w: &ficus_config::Webhook,
    event: &Event,
) -> bool {
    let body = Bytes::from(serde_json::to_vec(event).unwrap_or_default());
    for attempt in 0..=w.retries {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200) * 2u32.pow(attempt - 1)).await;
        }
        let req = hyper::Request::post(w.url.clone())
            .header("content-type", "application/json")
            .header("x-ficus-event", event.kind.as_str())
            .body(Full::new(body.clone()));
        let Ok(req) = req else { return false };
        match tokio::time::timeout(w.timeout, client.request(req)).await {
            Ok(Ok(resp)) if resp.status().is_success() => return true,
            _ => {}
        }
    }
    false
}
