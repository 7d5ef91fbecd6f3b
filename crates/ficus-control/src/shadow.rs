//! Shadow comparison aggregates between the mirror and the store: loaded at start so they
//! survive restarts, flushed in batches every `[shadow] flush_interval` by a task on the
//! control runtime (the mirror never awaits the store, invariant 1), reset per route with
//! an event.
//!
//! The mirror's aggregator holds totals plus the deltas not yet flushed. A flush takes the
//! deltas and adds them to the stored counters in one transaction; a failed flush keeps its
//! batch and sends it again, before newer deltas, on the next tick. Flushes and resets are
//! serialized so a batch taken before a reset cannot land after it.
//!
//! In a fleet every node flushes its own deltas, so the stored counters are the fleet's
//! sums: after each flush a node refreshes its totals from them (keeping what it has not
//! stored yet), so every node reports, and the judge reads, the whole fleet's comparisons.
//! A reset made through another node reaches this one through the events it tails; until
//! then, the store leaves out this node's rows of that route (they may predate the reset).

use std::sync::Arc;
use std::time::Duration;

use ficus_compare::{Delta, Report, Sample};
use ficus_store::{Event, ShadowBatch, ShadowEndpoint, ShadowField, ShadowSample};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{ControlError, ControlPlane};

/// Converts the aggregator's delta into the store's rows.
pub fn to_batch(d: &Delta) -> ShadowBatch {
    ShadowBatch {
        endpoints: d
            .endpoints
            .iter()
            .map(|e| ShadowEndpoint {
                route: e.route.clone(),
                endpoint: e.endpoint.clone(),
                compared: e.compared,
                differing: e.differing,
                noise_compared: e.noise_compared,
                noise_differing: e.noise_differing,
                last_ms: e.last_ms,
            })
            .collect(),
        fields: d
            .fields
            .iter()
            .map(|f| ShadowField {
                route: f.route.clone(),
                endpoint: f.endpoint.clone(),
                path: f.path.clone(),
                kind: f.kind.as_str().to_string(),
                differing: f.differing,
                noise_differing: f.noise_differing,
                last_ms: f.last_ms,
            })
            .collect(),
        samples: d
            .samples
            .iter()
            .map(|s| ShadowSample {
                id: s.id,
                route: s.route.clone(),
                endpoint: s.endpoint.clone(),
                path: s.path.clone(),
                kind: s.kind.as_str().to_string(),
                at_ms: s.at_ms,
                data: serde_json::to_value(s).unwrap_or(serde_json::Value::Null),
            })
            .collect(),
    }
}

/// Converts stored rows back into the aggregator's shape (rows it cannot read are skipped
/// with a warning: a sample written by a newer ficus, say).
pub fn from_batch(b: ShadowBatch) -> Delta {
    Delta {
        endpoints: b
            .endpoints
            .into_iter()
            .map(|e| ficus_compare::EndpointRow {
                route: e.route,
                endpoint: e.endpoint,
                compared: e.compared,
                differing: e.differing,
                noise_compared: e.noise_compared,
                noise_differing: e.noise_differing,
                last_ms: e.last_ms,
            })
            .collect(),
        fields: b
            .fields
            .into_iter()
            .filter_map(|f| {
                let kind = f.kind.parse().ok().or_else(|| {
                    tracing::warn!(kind = %f.kind, "skipping a stored shadow field of unknown kind");
                    None
                })?;
                Some(ficus_compare::FieldRow {
                    route: f.route,
                    endpoint: f.endpoint,
                    path: f.path,
                    kind,
                    differing: f.differing,
                    noise_differing: f.noise_differing,
                    last_ms: f.last_ms,
                })
            })
            .collect(),
        samples: b
            .samples
            .into_iter()
            .filter_map(|s| match serde_json::from_value::<Sample>(s.data) {
                Ok(sample) => Some(sample),
                Err(e) => {
                    tracing::warn!(id = s.id, error = %e, "skipping an unreadable stored shadow sample");
                    None
                }
            })
            .collect(),
    }
}

/// State of the flushing, kept by the control plane.
#[derive(Default)]
pub(crate) struct FlushState {
    /// A batch whose flush failed, sent again first.
    retry: Option<ShadowBatch>,
}

impl ControlPlane {
    /// Loads the stored aggregates into the mirror's aggregator (once, at start).
    pub async fn load_shadow(&self) -> Result<(), ControlError> {
        let _g = self.shadow.lock().await;
        let stored = self.store.load_shadow().await?;
        let delta = from_batch(stored);
        self.gateway
            .mirror()
            .aggregator()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .load(delta);
        Ok(())
    }

    /// Writes what the mirror learned since the last flush, then (in a fleet) refreshes the
    /// totals from the store's fleet-wide counters. Returns the rows written.
    pub async fn flush_shadow(&self) -> Result<usize, ControlError> {
        let mut st = self.shadow.lock().await;
        let seen = Some(self.synced().last_event_id);
        if let Some(batch) = st.retry.take() {
            if let Err(e) = self.store.flush_shadow_seen(&batch, seen).await {
                st.retry = Some(batch);
                return Err(e.into());
            }
        }
        let delta = self
            .gateway
            .mirror()
            .aggregator()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take_delta();
        let batch = to_batch(&delta);
        let rows = batch.endpoints.len() + batch.fields.len() + batch.samples.len();
        if rows > 0 {
            if let Err(e) = self.store.flush_shadow_seen(&batch, seen).await {
                st.retry = Some(batch);
                return Err(e.into());
            }
        }
        if !self.single_node() {
            let stored = from_batch(self.store.load_shadow_counts().await?);
            self.gateway
                .mirror()
                .aggregator()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .refresh_counts(&stored, &ficus_compare::Delta::default());
        }
        Ok(rows)
    }

    /// Forgets a route's comparisons here after another node reset them (the store's rows
    /// are gone already), with anything not yet flushed.
    pub(crate) async fn forget_shadow(&self, route: &str) {
        let mut st = self.shadow.lock().await;
        if let Some(b) = st.retry.as_mut() {
            b.endpoints.retain(|e| e.route != route);
            b.fields.retain(|f| f.route != route);
            b.samples.retain(|s| s.route != route);
        }
        self.gateway
            .mirror()
            .aggregator()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .reset(route);
    }

    /// Forgets a route's comparisons (in memory and in the store), as an event.
    pub async fn reset_shadow(
        &self,
        route: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Event, ControlError> {
        let snap = self.snapshot();
        let known = snap.effective.all_routes().any(|r| r.name == route)
            || !self.shadow_report(Some(route)).routes.is_empty();
        if !known {
            return Err(ControlError::NotFound(format!(
                "no route named {route:?} and no comparisons kept for one"
            )));
        }
        let mut st = self.shadow.lock().await;
        // Pending rows of this route must not come back after the reset.
        if let Some(b) = st.retry.as_mut() {
            b.endpoints.retain(|e| e.route != route);
            b.fields.retain(|f| f.route != route);
            b.samples.retain(|s| s.route != route);
        }
        let event = self.store.reset_shadow(route, actor, reason).await?;
        self.gateway
            .mirror()
            .aggregator()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .reset(route);
        Ok(event)
    }

    /// Differences by route, endpoint and field path, ranked, noise shown apart.
    pub fn shadow_report(&self, route: Option<&str>) -> Report {
        self.gateway
            .mirror()
            .aggregator()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .report(route)
    }

    /// One sample exchange: from memory, or from the store when the aggregator no longer
    /// holds it.
    pub async fn shadow_sample(&self, id: i64) -> Result<Option<Sample>, ControlError> {
        let held = self
            .gateway
            .mirror()
            .aggregator()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sample(id)
            .cloned();
        if held.is_some() {
            return Ok(held);
        }
        Ok(self
            .store
            .shadow_sample(id)
            .await?
            .and_then(|s| serde_json::from_value(s.data).ok()))
    }
}

/// The flushing task; [`stop`](Self::stop) flushes one last time.
pub struct ShadowFlusher {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ShadowFlusher {
    /// Loads the stored aggregates, then flushes every `interval`. Runs on the current
    /// (control) runtime.
    pub fn spawn(control: Arc<ControlPlane>, interval: Duration) -> ShadowFlusher {
        let (stop, mut stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            // Retried until it works: counts must not start from zero over stored ones.
            let mut loaded = false;
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop_rx.changed() => break,
                }
                if !loaded {
                    match control.load_shadow().await {
                        Ok(()) => loaded = true,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot load shadow comparisons from the store; retrying");
                            continue;
                        }
                    }
                }
                if let Err(e) = control.flush_shadow().await {
                    tracing::warn!(error = %e, "cannot flush shadow comparisons to the store; kept for the next try");
                }
            }
            if loaded {
                if let Err(e) = control.flush_shadow().await {
                    tracing::warn!(error = %e, "last flush of shadow comparisons failed");
                }
            }
        });
        ShadowFlusher { stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
