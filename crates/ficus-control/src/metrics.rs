//! The control plane's families for `/metrics`: rollbacks this node committed, and every
//! route's stage and weight as they run here (for dashboards, annotations and alerts).
//!
//! A rollback is counted once, by the node whose commit records it (the one the CLI or API
//! call reached, or the leader whose rollout judge rolled back): summed over the fleet, the
//! counter is the number of rollbacks. The other nodes apply the same change through
//! [`sync`](crate::ControlPlane::sync) and count nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use ficus_config::Stage;
use ficus_telemetry::{ExtraGauges, ExtraMetrics, Family, GaugeFamily};

use crate::ControlPlane;

/// Who rolled a route back, as the `by` label says: `manual` (`ficus rollback`, the admin
/// API's rollback, an event of kind `route.rollback`) or `rollout` (the rollout judge's
/// verdict, `rollout.rolled_back`).
pub const ROLLBACK_BY: [&str; 2] = ["manual", "rollout"];

/// The `by` label of a committed change's event kind, if it is a rollback.
pub(crate) fn rollback_by(kind: &str) -> Option<&'static str> {
    match kind {
        "route.rollback" => Some("manual"),
        "rollout.rolled_back" => Some("rollout"),
        _ => None,
    }
}

/// Rollbacks this node committed, per (route, by).
#[derive(Debug, Default)]
pub(crate) struct Rollbacks(Mutex<BTreeMap<(String, &'static str), u64>>);

impl Rollbacks {
    pub(crate) fn count(&self, route: &str, by: &'static str) {
        *self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((route.to_string(), by))
            .or_insert(0) += 1;
    }

    fn snapshot(&self) -> BTreeMap<(String, &'static str), u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// `ficus_rollbacks_total{route,by}` and `ficus_route_stage{route,stage}`. Every route the
/// running config has is present with zeros, so the first rollback is an increase that
/// `increase()` and `changes()` see, not a series that appears at 1.
pub(crate) fn families(control: Weak<ControlPlane>) -> ExtraMetrics {
    Box::new(move || {
        let Some(control) = control.upgrade() else {
            return Vec::new();
        };
        let snap = control.snapshot();
        let mut counts = control.rollbacks.snapshot();
        for r in snap.effective.all_routes() {
            for by in ROLLBACK_BY {
                counts.entry((r.name.clone(), by)).or_insert(0);
            }
        }
        let rollbacks = Family {
            name: "ficus_rollbacks",
            help: "Rollbacks this node committed, per route and by whom: manual (ficus rollback, the admin API) or rollout (the rollout judge). Summed over the fleet, the number of rollbacks.",
            gauge: false,
            samples: counts
                .into_iter()
                .map(|((route, by), n)| (vec![("route", route), ("by", by.to_string())], n))
                .collect(),
        };
        let mut stages = Family {
            name: "ficus_route_stage",
            help: "A route's stage as it runs on this node: 1 for the current stage, 0 for the others.",
            gauge: true,
            samples: Vec::new(),
        };
        for r in snap.effective.all_routes() {
            for s in Stage::ALL {
                stages.samples.push((
                    vec![("route", r.name.clone()), ("stage", s.as_str().to_string())],
                    u64::from(r.stage == s),
                ));
            }
        }
        vec![rollbacks, stages]
    })
}

/// `ficus_route_weight{route}` and `ficus_route_modern_percent{route}`, in percent with
/// their two decimals.
pub(crate) fn gauges(control: Weak<ControlPlane>) -> ExtraGauges {
    Box::new(move || {
        let Some(control) = control.upgrade() else {
            return Vec::new();
        };
        let snap = control.snapshot();
        let per_route = |get: &dyn Fn(&ficus_config::Route) -> f64| {
            snap.effective
                .all_routes()
                .map(|r| (vec![("route", r.name.clone())], get(r)))
                .collect()
        };
        vec![
            GaugeFamily {
                name: "ficus_route_weight",
                help: "A route's weight as it runs on this node (0 to 100, percent of sticky keys modern answers on the canary stage; kept but unused on the others).",
                samples: per_route(&|r| r.weight.percent()),
            },
            GaugeFamily {
                name: "ficus_route_modern_percent",
                help: "Percent of a route's sticky keys modern answers now, from stage and weight: 0 on legacy and shadow, the weight on canary, 100 on modern and retired.",
                samples: per_route(&|r| r.stage.modern_keys(r.weight).percent()),
            },
        ]
    })
}

/// Registers the control plane's families with its gateway's telemetry.
pub(crate) fn register(control: &Arc<ControlPlane>) {
    let telemetry = control.gateway().telemetry();
    telemetry.set_extra("control", families(Arc::downgrade(control)));
    telemetry.set_extra_gauges("control", gauges(Arc::downgrade(control)));
}
