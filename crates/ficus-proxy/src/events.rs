//! Events the data plane raises itself (a circuit breaker opening or closing), handed to the
//! control plane through a bounded channel so the request path never awaits the store
//! (invariant 1). A full channel drops the event and counts it; the metric still changes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

/// Events waiting for the control plane; beyond, new ones are dropped and counted.
pub const QUEUE: usize = 1024;

/// One event for the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayEvent {
    /// `breaker.open`, `breaker.half_open`, `breaker.closed`.
    pub kind: String,
    pub route: Option<String>,
    pub message: String,
    pub data: serde_json::Value,
}

/// The sending side, cloned into whatever raises events.
#[derive(Debug, Clone)]
pub struct Events {
    tx: mpsc::Sender<GatewayEvent>,
    rx: Arc<Mutex<Option<mpsc::Receiver<GatewayEvent>>>>,
    dropped: Arc<AtomicU64>,
}

impl Events {
    pub fn new(capacity: usize) -> Events {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        Events {
            tx,
            rx: Arc::new(Mutex::new(Some(rx))),
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Offers an event without waiting.
    pub fn emit(&self, e: GatewayEvent) {
        if self.tx.try_send(e).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The receiving side, once (for the control plane's event pump).
    pub fn take_receiver(&self) -> Option<mpsc::Receiver<GatewayEvent>> {
        self.rx.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Events dropped because nobody took them in time.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The event of a breaker state change.
pub fn breaker_event(upstream: &str, t: &ficus_protect::Transition) -> GatewayEvent {
    GatewayEvent {
        kind: format!("breaker.{}", t.to.as_str()),
        route: None,
        message: format!(
            "upstream {upstream}: circuit breaker {} -> {}: {}",
            t.from.as_str(),
            t.to.as_str(),
            t.reason
        ),
        data: serde_json::json!({
            "upstream": upstream,
            "from": t.from.as_str(),
            "to": t.to.as_str(),
            "reason": t.reason,
        }),
    }
}
