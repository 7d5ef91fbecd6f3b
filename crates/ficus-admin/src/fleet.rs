//! `GET /api/v1/fleet`: every node sharing the store, as the registry has them (state,
//! revision and how far behind the store it is, commit-to-apply lag, rate, drift), the
//! leader, and this node's own part (listener, store, telemetry exchange).

use std::sync::Arc;

use axum::extract::State;
use ficus_store::{FleetState, NodeRow};
use serde::Serialize;

use crate::api::{ApiResult, Problem};
use crate::AdminState;

/// What `/api/v1/routes` says of the fleet its numbers come from.
#[derive(Debug, Clone, Serialize)]
pub struct FleetSummary {
    /// This node's id and name.
    pub node: String,
    pub name: String,
    /// Whether this node leads (runs the rollout controller and the other singletons).
    pub leader: bool,
    /// Nodes up (heartbeat within `dead_after`), and registered.
    pub nodes_up: usize,
    pub nodes: usize,
}

/// One node of the fleet.
#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    #[serde(flatten)]
    pub row: NodeRow,
    /// `up` (a heartbeat within `dead_after`), `down` (silent longer), `stopped` (cleanly).
    pub state: &'static str,
    pub leader: bool,
    /// This node.
    pub this: bool,
    /// Milliseconds since its last heartbeat.
    pub heartbeat_age_ms: i64,
    /// Store revisions it has not applied yet.
    pub revision_skew: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LeaderView {
    pub node: Option<String>,
    pub epoch: i64,
    /// Milliseconds until the lease expires unless renewed (negative: expired).
    pub expires_in_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FleetView {
    /// `postgres` (a fleet) or `sqlite` (one node).
    pub store: &'static str,
    pub revision: i64,
    pub leader: LeaderView,
    pub dead_after_ms: i64,
    pub nodes: Vec<NodeView>,
    /// This node's own part: listener, store, telemetry exchanged.
    pub local: Option<ficus_control::fleet::LocalView>,
    /// Set when the registry could not be read now (the view is the last one read).
    pub stale: Option<String>,
}

pub(crate) fn fleet_summary(st: &AdminState) -> FleetSummary {
    let node = st.control.node();
    let dead_after = dead_after_ms(st);
    let (nodes_up, nodes) = st
        .fleet
        .as_ref()
        .and_then(|f| {
            f.last_state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        })
        .map_or((1, 1), |s| {
            let up = s
                .nodes
                .iter()
                .filter(|n| state_of(n, s.now, dead_after) == "up")
                .count();
            (up, s.nodes.len())
        });
    FleetSummary {
        node: node.id.clone(),
        name: node.name.clone(),
        leader: st.control.leadership().leads(),
        nodes_up,
        nodes,
    }
}

fn dead_after_ms(st: &AdminState) -> i64 {
    i64::try_from(st.control.local().fleet.dead_after.as_millis()).unwrap_or(i64::MAX)
}

fn state_of(n: &NodeRow, now: i64, dead_after: i64) -> &'static str {
    if n.stopped_at.is_some() {
        "stopped"
    } else if now - n.heartbeat_at <= dead_after {
        "up"
    } else {
        "down"
    }
}

/// `GET /api/v1/fleet`.
pub async fn fleet(State(st): State<Arc<AdminState>>) -> ApiResult<FleetView> {
    let cached = || {
        st.fleet.as_ref().and_then(|f| {
            f.last_state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        })
    };
    let (state, stale): (FleetState, Option<String>) = match st.control.store().fleet().await {
        Ok(s) => (s, None),
        Err(e) => match cached() {
            Some(s) => (
                s,
                Some(format!(
                    "the store does not answer ({e}); this is the registry as last read"
                )),
            ),
            None => return Err(Problem::from(ficus_control::ControlError::from(e))),
        },
    };
    let dead_after = dead_after_ms(&st);
    let me = st.control.node().id.clone();
    let leader = state.leader.node_id.clone();
    let nodes = state
        .nodes
        .iter()
        .map(|n| NodeView {
            state: state_of(n, state.now, dead_after),
            leader: leader.as_deref() == Some(n.id.as_str())
                && state.leader.expires_at >= state.now,
            this: n.id == me,
            heartbeat_age_ms: state.now - n.heartbeat_at,
            revision_skew: (state.revision - n.revision).max(0),
            row: n.clone(),
        })
        .collect();
    Ok(axum::Json(FleetView {
        store: st.control.store().kind(),
        revision: state.revision,
        leader: LeaderView {
            node: leader,
            epoch: state.leader.epoch,
            expires_in_ms: state.leader.expires_at - state.now,
        },
        dead_after_ms: dead_after,
        nodes,
        local: st.fleet.as_ref().map(|f| f.view()),
        stale,
    }))
}
