//! Recording at runtime: `ficus record start ROUTE --sample 10% --for 1h --max-size 1GiB`
//! and `ficus record stop ROUTE`, each an audited event (`record.started`,
//! `record.stopped`) that every node acts on (its own at once, the others' when it syncs),
//! and that a restarted node restores from the latest event per route. A runtime start wins
//! over the route's `[route.record]` (whose redaction rules it keeps) until it ends or is
//! stopped; a stop wins until the next start. Each node records its own share of the
//! route's traffic into its own `[record] dir`.
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ficus_config::Weight;
use ficus_proxy::record::{Runtime, RuntimeState};
use ficus_store::{Event, EventFilter, NewEvent};

use crate::{unix_ms, ControlError, ControlPlane};

/// The event of `ficus record start`.
pub const RECORD_STARTED: &str = "record.started";
/// The event of `ficus record stop`.
pub const RECORD_STOPPED: &str = "record.stopped";
/// The longest `--for`.
pub const MAX_FOR: Duration = Duration::from_secs(31 * 24 * 3600);

/// What `ficus record start` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct StartRecording {
    pub sample: Weight,
    /// How long; `None`: until stopped.
    pub for_: Option<Duration>,
    /// The recording's size cap on each node; `None`: the route's `max_size` (or 1 GiB).
    pub max_size: Option<u64>,
}

impl ControlPlane {
    /// Starts recording a route on every node (a `record.started` event).
    pub async fn record_start(
        &self,
        route: &str,
        spec: StartRecording,
        actor: &str,
        message: &str,
    ) -> Result<Event, ControlError> {
        self.known_route(route)?;
        if spec.sample == Weight::ZERO {
            return Err(ControlError::BadRequest(
                "sample: more than 0 % (a recording of nothing records nothing)".into(),
            ));
        }
        if let Some(d) = spec.for_ {
            if d < Duration::from_secs(1) || d > MAX_FOR {
                return Err(ControlError::BadRequest(
                    "for: from 1s to 31 days (or leave it out: until stopped)".into(),
                ));
            }
        }
        if let Some(m) = spec.max_size {
            if m < 1024 * 1024 {
                return Err(ControlError::BadRequest("max_size: at least 1 MiB".into()));
            }
        }
        // The redaction key must be there before anything is recorded.
        self.gateway()
            .recorder()
            .ready()
            .map_err(ControlError::BadRequest)?;
        let until_ms = spec.for_.map(|d| unix_ms() + d.as_millis() as i64);
        let event = NewEvent::new(actor, RECORD_STARTED, message)
            .with_route(route)
            .with_data(serde_json::json!({
                "sample_bp": spec.sample.basis_points(),
                "until_ms": until_ms,
                "max_size": spec.max_size,
            }));
        let mut recorded = self.record_events(vec![event]).await?;
        let e = recorded.remove(0);
        self.apply_record_event(&e)?;
        Ok(e)
    }

    /// Stops recording a route on every node (a `record.stopped` event).
    pub async fn record_stop(
        &self,
        route: &str,
        actor: &str,
        message: &str,
    ) -> Result<Event, ControlError> {
        self.known_route(route)?;
        let event = NewEvent::new(actor, RECORD_STOPPED, message).with_route(route);
        let mut recorded = self.record_events(vec![event]).await?;
        let e = recorded.remove(0);
        self.apply_record_event(&e)?;
        Ok(e)
    }

    /// At start: each route's latest `record.*` event applied, so a restarted node records
    /// what the fleet records.
    pub async fn restore_recordings(&self) -> Result<(), ControlError> {
        let mut latest: HashMap<String, Event> = HashMap::new();
        for kind in [RECORD_STARTED, RECORD_STOPPED] {
            let events = self
                .store()
                .events(EventFilter {
                    kind: Some(kind.to_string()),
                    limit: ficus_store::limits::MAX_PAGE,
                    ..EventFilter::default()
                })
                .await?;
            for e in events {
                let Some(route) = e.route.clone() else {
                    continue;
                };
                if latest.get(&route).is_none_or(|l| l.id < e.id) {
                    latest.insert(route, e);
                }
            }
        }
        for e in latest.values() {
            if let Err(err) = self.apply_record_event(e) {
                tracing::error!(route = ?e.route, error = %err, "cannot restore a recording");
            }
        }
        Ok(())
    }

    /// Acts on a `record.*` event (this node's or another's).
    pub(crate) fn apply_record_event(&self, e: &Event) -> Result<(), ControlError> {
        let Some(route) = e.route.as_deref() else {
            return Ok(());
        };
        let state = match e.kind.as_str() {
            RECORD_STARTED => {
                let sample = e.data["sample_bp"]
                    .as_u64()
                    .and_then(|b| u16::try_from(b).ok())
                    .and_then(Weight::from_basis_points)
                    .unwrap_or(Weight::MAX);
                let until = e.data["until_ms"]
                    .as_i64()
                    .map(|ms| UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64));
                RuntimeState::Started(Runtime {
                    sample,
                    until,
                    max_size: e.data["max_size"].as_u64(),
                    event_id: e.id,
                })
            }
            RECORD_STOPPED => RuntimeState::Stopped,
            _ => return Ok(()),
        };
        if let RuntimeState::Started(rt) = &state {
            if rt.until.is_some_and(|u| u <= SystemTime::now()) {
                // Over already: nothing to record (the status shows the file's state).
                return self
                    .gateway()
                    .recorder()
                    .set_runtime(route, None)
                    .map_err(ControlError::BadRequest);
            }
        }
        self.gateway()
            .recorder()
            .set_runtime(route, Some(state))
            .map_err(ControlError::BadRequest)
    }

    fn known_route(&self, route: &str) -> Result<(), ControlError> {
        let snap = self.snapshot();
        if snap.effective.all_routes().any(|r| r.name == route) {
            return Ok(());
        }
        let known: Vec<&str> = snap
            .effective
            .all_routes()
            .map(|r| r.name.as_str())
            .collect();
        Err(ControlError::NotFound(format!(
            "no route named {route:?}; routes are: {}",
            known.join(", ")
        )))
    }
}
