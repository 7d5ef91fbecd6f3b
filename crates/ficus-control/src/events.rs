//! Appends the events the data plane raises (circuit breaker state changes) to the audit
//! log. The gateway offers them to a bounded channel without waiting; this task, on the
//! control runtime, drains it in batches and writes them to the store, retrying a failed
//! write a few times before giving the batch up (logged), so a store outage never backs up
//! into the request path.

use std::sync::Arc;
use std::time::Duration;

use ficus_store::NewEvent;
use tokio::task::JoinHandle;

use crate::ControlPlane;

/// The actor of data-plane events.
pub const GATEWAY_ACTOR: &str = "gateway";
/// Most events written in one store call.
const BATCH: usize = 256;
/// Tries per batch before it is dropped (with a log line).
const TRIES: u32 = 5;

/// The running pump; stop it with [`EventPump::stop`] (what has arrived is written first).
pub struct EventPump {
    task: JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl EventPump {
    /// Starts draining the gateway's events; `None` when another pump already took them.
    pub fn spawn(control: Arc<ControlPlane>) -> Option<EventPump> {
        let mut rx = control.gateway().events().take_receiver()?;
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let mut batch = Vec::new();
            loop {
                let n = tokio::select! {
                    n = rx.recv_many(&mut batch, BATCH) => n,
                    _ = stopped.changed() => {
                        while let Ok(e) = rx.try_recv() {
                            batch.push(e);
                        }
                        0
                    }
                };
                if !batch.is_empty() {
                    write(&control, std::mem::take(&mut batch)).await;
                }
                if n == 0 {
                    break;
                }
            }
        });
        Some(EventPump { task, stop })
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn write(control: &ControlPlane, batch: Vec<ficus_proxy::events::GatewayEvent>) {
    let events: Vec<NewEvent> = batch
        .into_iter()
        .map(|e| {
            let ev = NewEvent::new(GATEWAY_ACTOR, e.kind, e.message).with_data(e.data);
            match e.route {
                Some(r) => ev.with_route(r),
                None => ev,
            }
        })
        .collect();
    for attempt in 1..=TRIES {
        match control.record_events(events.clone()).await {
            Ok(_) => return,
            Err(e) if attempt < TRIES => {
                tracing::warn!(error = %e, attempt, "cannot record gateway events yet; retrying");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
            Err(e) => {
                tracing::error!(error = %e, events = events.len(), "gateway events not recorded: the store keeps failing");
            }
        }
    }
}

impl ControlPlane {
    /// Empties a route's response cache (or one path's entries) and records it as an event,
    /// which every other node of the fleet acts on too. The event is written first: a purge
    /// the store refuses did not happen.
    pub async fn purge_cache(
        &self,
        route: &str,
        path: Option<&str>,
        actor: &str,
        reason: &str,
    ) -> Result<ficus_store::Event, crate::ControlError> {
        if self.route_cache(route).is_none() {
            return Err(crate::ControlError::BadRequest(format!(
                "route {route:?} has no response cache; add [route.cache] to it"
            )));
        }
        // The audit log keeps the path without the values of credential query parameters.
        let sensitive = self.snapshot().effective.redact.all_query();
        let shown = path.map(|p| ficus_compare::redact_query(p, &sensitive).into_owned());
        let what = shown
            .clone()
            .unwrap_or_else(|| "every cached response".to_string());
        let event = NewEvent::new(actor, "cache.purged", reason)
            .with_route(route)
            .with_data(serde_json::json!({ "path": shown, "purged": what }));
        let mut recorded = self.record_events(vec![event]).await?;
        self.purge_local_cache(route, path).await;
        Ok(recorded.remove(0))
    }

    /// Empties this node's cache of a route (a purge recorded here or by another node).
    pub(crate) async fn purge_local_cache(&self, route: &str, path: Option<&str>) {
        if let Some(cache) = self.route_cache(route) {
            cache.purge(path);
            // So the entry and byte counts shown right after reflect the purge.
            cache.cache.run_pending_tasks().await;
        }
    }

    fn route_cache(&self, route: &str) -> Option<std::sync::Arc<ficus_proxy::table::RouteCache>> {
        let table = self.gateway().table();
        table
            .routes()
            .iter()
            .find(|r| &*r.name == route)
            .and_then(|r| r.cache.clone())
    }
}
