//! Aggregation of comparisons into per-endpoint and per-field difference rates, with bounded
//! evidence samples, ranked reports and deltas for batched flushing to the store.
//!
//! Keys: an endpoint is (route, endpoint); a field is (route, endpoint, path, kind). A field
//! counts a comparison at most once, however many array elements differed under its path,
//! so `differing / compared` reads as "how often does this field differ". Noise counts come
//! from the legacy-vs-legacy comparison of noise-sampled requests and feed
//! [`crate::classify`].
//!
//! Every structure is bounded by [`Limits`]: new keys beyond a limit are refused and counted,
//! never stored. Each entry keeps its total and the increment since the last
//! [`Aggregator::take_delta`], so a flush costs one pass over the keys and the store applies
//! increments (`load` at boot puts the stored totals back as the base).

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::diff::{Comparison, Difference, Kind};
use crate::noise::{classify, Rates, Thresholds, Verdict};
use crate::sample::SampleData;

/// Sample ids of a fleet's nodes differ in their residue modulo this.
pub const NODE_SLOTS: i64 = 1024;

/// Bounds of an [`Aggregator`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Distinct (route, endpoint) keys.
    pub max_endpoints: usize,
    /// Distinct (route, endpoint, path, kind) keys.
    pub max_fields: usize,
    /// Samples kept per field key: the first ones seen.
    pub samples_per_field: usize,
    /// Samples kept in all (one per field key a comparison was kept for).
    pub max_samples: usize,
    /// Bytes kept of each body in a sample; longer bodies are cut and flagged.
    pub max_sample_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_endpoints: 1_000,
            max_fields: 10_000,
            samples_per_field: 5,
            max_samples: 2_000,
            max_sample_body: 16 * 1024,
        }
    }
}

/// One comparison kept as evidence for one field key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub id: i64,
    pub route: String,
    pub endpoint: String,
    /// The field key this sample is evidence for.
    pub path: String,
    pub kind: Kind,
    pub at_ms: i64,
    /// Shared by the samples of the same comparison kept for several fields.
    #[serde(with = "shared")]
    pub data: Arc<SampleData>,
    /// All differences of that comparison, shared likewise.
    #[serde(with = "shared")]
    pub differences: Arc<Vec<Difference>>,
}

/// Serializes an `Arc<T>` as `T` (serde's own impl needs its `rc` feature, which would be
/// switched on for the whole workspace).
mod shared {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(v: &Arc<T>, s: S) -> Result<S::Ok, S::Error> {
        T::serialize(v, s)
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Arc<T>, D::Error> {
        T::deserialize(d).map(Arc::new)
    }
}

/// Changes since the last [`Aggregator::take_delta`] (or, for [`Aggregator::load`], the
/// stored totals).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    pub endpoints: Vec<EndpointRow>,
    pub fields: Vec<FieldRow>,
    pub samples: Vec<Sample>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty() && self.fields.is_empty() && self.samples.is_empty()
    }
}

/// Counts of one endpoint: increments in a delta, totals in a loaded state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRow {
    pub route: String,
    pub endpoint: String,
    pub compared: i64,
    pub differing: i64,
    pub noise_compared: i64,
    pub noise_differing: i64,
    /// The latest comparison time in the delta.
    pub last_ms: i64,
}

/// Counts of one field key: increments in a delta, totals in a loaded state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldRow {
    pub route: String,
    pub endpoint: String,
    pub path: String,
    pub kind: Kind,
    pub differing: i64,
    pub noise_differing: i64,
    /// The latest time this field differed in the delta.
    pub last_ms: i64,
}

/// Everything recorded, ranked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Worst rate first.
    pub routes: Vec<RouteReport>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteReport {
    pub route: String,
    pub compared: i64,
    pub differing: i64,
    pub noise_compared: i64,
    pub noise_differing: i64,
    /// The highest rate among the route's real fields; 0 when none.
    pub rate: f64,
    /// Worst real rate first.
    pub endpoints: Vec<EndpointReport>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointReport {
    pub endpoint: String,
    pub compared: i64,
    pub differing: i64,
    pub noise_compared: i64,
    pub noise_differing: i64,
    /// The highest rate among the endpoint's real fields; 0 when none.
    pub rate: f64,
    pub last_ms: i64,
    /// Real fields by rate, then noise fields by rate. Fields that only ever differed
    /// legacy-vs-legacy are left out.
    pub fields: Vec<FieldReport>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldReport {
    pub path: String,
    pub kind: Kind,
    pub differing: i64,
    /// `differing / compared` of the endpoint.
    pub rate: f64,
    /// Where the noise this field is judged against was measured: the endpoint's own
    /// legacy-vs-legacy comparisons, or (fewer than [`MIN_ENDPOINT_NOISE`] of them) the
    /// route's, pooled over its endpoints.
    pub noise_scope: NoiseScope,
    /// Legacy-vs-legacy comparisons in that scope ...
    pub noise_compared: i64,
    /// ... of which differed at this field.
    pub noise_differing: i64,
    /// `noise_differing / noise_compared`.
    pub noise_rate: f64,
    /// With a route scope: how often the field differs over all of the route's
    /// comparisons, which the verdict weighs too.
    pub route_rate: Option<f64>,
    pub verdict: Verdict,
    pub last_ms: i64,
    /// Ascending.
    pub sample_ids: Vec<i64>,
}

/// Where a field's noise was measured (see [`FieldReport::noise_scope`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoiseScope {
    Endpoint,
    Route,
}

#[derive(Clone, Copy, Debug, Default)]
struct EpCounts {
    compared: i64,
    differing: i64,
    noise_compared: i64,
    noise_differing: i64,
    last_ms: i64,
}

impl EpCounts {
    fn add(&mut self, o: &EpCounts) {
        self.compared += o.compared;
        self.differing += o.differing;
        self.noise_compared += o.noise_compared;
        self.noise_differing += o.noise_differing;
        self.last_ms = self.last_ms.max(o.last_ms);
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct FieldCounts {
    differing: i64,
    noise_differing: i64,
    last_ms: i64,
}

impl FieldCounts {
    fn add(&mut self, o: &FieldCounts) {
        self.differing += o.differing;
        self.noise_differing += o.noise_differing;
        self.last_ms = self.last_ms.max(o.last_ms);
    }
}

#[derive(Debug, Default)]
struct FieldAgg {
    total: FieldCounts,
    /// The increment since the last delta; `None` when unchanged.
    pending: Option<FieldCounts>,
    samples: Vec<i64>,
}

impl FieldAgg {
    fn bump(&mut self, inc: FieldCounts) {
        self.total.add(&inc);
        self.pending.get_or_insert_with(Default::default).add(&inc);
    }
}

/// The field keys of one path, indexed by [`Kind::index`]: nesting by path then kind lets
/// lookups borrow the path instead of building an owned key per difference.
type Kinds = [Option<FieldAgg>; 6];

#[derive(Debug, Default)]
struct EndpointAgg {
    total: EpCounts,
    pending: Option<EpCounts>,
    fields: HashMap<String, Kinds>,
}

/// Legacy-vs-legacy comparisons an endpoint needs before its own noise rates are used
/// rather than its route's pooled ones (see [`Aggregator::report`]).
pub const MIN_ENDPOINT_NOISE: i64 = 20;

/// Difference counts and samples of every route and endpoint, bounded by [`Limits`].
#[derive(Debug)]
pub struct Aggregator {
    limits: Limits,
    thresholds: Thresholds,
    routes: HashMap<String, HashMap<String, EndpointAgg>>,
    endpoint_count: usize,
    field_count: usize,
    dropped_endpoints: u64,
    dropped_fields: u64,
    samples: HashMap<i64, Sample>,
    pending_samples: Vec<Sample>,
    /// The counter part of the next sample id (see [`Aggregator::set_node_slot`]).
    next_id: i64,
    /// This node's residue of sample ids modulo [`NODE_SLOTS`].
    node_slot: i64,
}

impl Aggregator {
    pub fn new(limits: Limits, thresholds: Thresholds) -> Self {
        Aggregator {
            limits,
            thresholds,
            routes: HashMap::new(),
            endpoint_count: 0,
            field_count: 0,
            dropped_endpoints: 0,
            dropped_fields: 0,
            samples: HashMap::new(),
            pending_samples: Vec::new(),
            next_id: 1,
            node_slot: 0,
        }
    }

    /// One mirrored request. `noise` is the legacy-vs-legacy comparison when this request
    /// was noise-sampled. `sample` is called only when a sample will be kept (lazy:
    /// building it copies bodies); its bodies are cut to `max_sample_body` here.
    pub fn record(
        &mut self,
        route: &str,
        endpoint: &str,
        at_ms: i64,
        primary: &Comparison,
        noise: Option<&Comparison>,
        sample: impl FnOnce() -> SampleData,
    ) {
        let limits = self.limits;
        let Some(ep) = endpoint_mut(
            &mut self.routes,
            route,
            endpoint,
            &mut self.endpoint_count,
            limits.max_endpoints,
        ) else {
            self.dropped_endpoints += 1;
            return;
        };
        let inc = EpCounts {
            compared: 1,
            differing: i64::from(!primary.is_equal()),
            noise_compared: i64::from(noise.is_some()),
            noise_differing: i64::from(noise.is_some_and(|n| !n.is_equal())),
            last_ms: at_ms,
        };
        ep.total.add(&inc);
        ep.pending.get_or_insert_with(Default::default).add(&inc);

        let mut wants: Vec<(&str, Kind)> = Vec::new();
        for (path, kind) in distinct(&primary.differences) {
            match field_mut(
                &mut ep.fields,
                path,
                kind,
                &mut self.field_count,
                limits.max_fields,
            ) {
                Some(f) => {
                    f.bump(FieldCounts {
                        differing: 1,
                        noise_differing: 0,
                        last_ms: at_ms,
                    });
                    if f.samples.len() < limits.samples_per_field {
                        wants.push((path, kind));
                    }
                }
                None => self.dropped_fields += 1,
            }
        }
        if let Some(n) = noise {
            for (path, kind) in distinct(&n.differences) {
                match field_mut(
                    &mut ep.fields,
                    path,
                    kind,
                    &mut self.field_count,
                    limits.max_fields,
                ) {
                    Some(f) => f.bump(FieldCounts {
                        differing: 0,
                        noise_differing: 1,
                        last_ms: at_ms,
                    }),
                    None => self.dropped_fields += 1,
                }
            }
        }

        if wants.is_empty() || self.samples.len() >= limits.max_samples {
            return;
        }
        let mut data = sample();
        data.clip(limits.max_sample_body);
        let data = Arc::new(data);
        let differences = Arc::new(primary.differences.clone());
        for (path, kind) in wants {
            if self.samples.len() >= limits.max_samples {
                break;
            }
            let Some(f) = ep
                .fields
                .get_mut(path)
                .and_then(|k| k[kind.index()].as_mut())
            else {
                continue;
            };
            // Seeded from the clock so ids stay ahead of those stored before a restart even
            // when nothing was loaded; monotonic within the process regardless. The node's
            // slot keeps the ids of the nodes of a fleet apart. Milliseconds times
            // NODE_SLOTS stays below 2^53 (exact in JavaScript, which the dashboard reads
            // the ids with) until the year 2248.
            self.next_id = self.next_id.max(at_ms);
            let id = self
                .next_id
                .saturating_mul(NODE_SLOTS)
                .saturating_add(self.node_slot);
            self.next_id += 1;
            f.samples.push(id);
            let s = Sample {
                id,
                route: route.to_owned(),
                endpoint: endpoint.to_owned(),
                path: path.to_owned(),
                kind,
                at_ms,
                data: Arc::clone(&data),
                differences: Arc::clone(&differences),
            };
            self.samples.insert(id, s.clone());
            self.pending_samples.push(s);
        }
    }

    /// Rates and verdicts of every route (or one), ranked: routes and endpoints by their
    /// worst real rate, fields real first, each by rate.
    ///
    /// An endpoint with fewer than [`MIN_ENDPOINT_NOISE`] legacy-vs-legacy comparisons of its
    /// own is judged against its route's noise, pooled over its endpoints: what legacy
    /// changes between two answers (a timestamp, a trace id) is a trait of the service more
    /// than of one URL. Such a field is real only when it is real both at the endpoint (its
    /// rate against the pooled noise) and over the route (the route's rate for the field
    /// against the same noise): a field that is noise on the route's pooled sample is not
    /// called real on an endpoint whose few comparisons happened to differ more often.
    pub fn report(&self, route: Option<&str>) -> Report {
        let mut routes = Vec::new();
        for (name, eps) in &self.routes {
            if route.is_some_and(|r| r != name) {
                continue;
            }
            // The route's counts, pooled over its endpoints, per (path, kind).
            let pooled_compared: i64 = eps.values().map(|e| e.total.compared).sum();
            let pooled_noise_compared: i64 = eps.values().map(|e| e.total.noise_compared).sum();
            let mut pooled: HashMap<(&str, Kind), FieldCounts> = HashMap::new();
            for ep in eps.values() {
                for (path, kinds) in &ep.fields {
                    for (kind, f) in Kind::ALL.into_iter().zip(kinds) {
                        if let Some(f) = f {
                            pooled
                                .entry((path.as_str(), kind))
                                .or_default()
                                .add(&f.total);
                        }
                    }
                }
            }
            let judge = |ep: &EndpointAgg, path: &str, kind: Kind, f: &FieldAgg| {
                let own = |differing: i64, noise_compared: i64, noise_differing: i64| Rates {
                    compared: non_negative(ep.total.compared),
                    differing: non_negative(differing),
                    noise_compared: non_negative(noise_compared),
                    noise_differing: non_negative(noise_differing),
                };
                if ep.total.noise_compared >= MIN_ENDPOINT_NOISE {
                    let r = own(
                        f.total.differing,
                        ep.total.noise_compared,
                        f.total.noise_differing,
                    );
                    return (
                        r,
                        NoiseScope::Endpoint,
                        None,
                        classify(&r, &self.thresholds),
                    );
                }
                let p = pooled.get(&(path, kind)).copied().unwrap_or_default();
                let r = own(f.total.differing, pooled_noise_compared, p.noise_differing);
                let over_route = Rates {
                    compared: non_negative(pooled_compared),
                    differing: non_negative(p.differing),
                    ..r
                };
                // Verdicts order real < noise < equal: the less real of the two.
                let verdict =
                    classify(&r, &self.thresholds).max(classify(&over_route, &self.thresholds));
                (r, NoiseScope::Route, Some(over_route.raw()), verdict)
            };
            let mut endpoints = Vec::with_capacity(eps.len());
            for (ename, ep) in eps {
                let mut fields = Vec::new();
                for (path, kinds) in &ep.fields {
                    for (kind, f) in Kind::ALL.into_iter().zip(kinds) {
                        let Some(f) = f else { continue };
                        if f.total.differing <= 0 {
                            continue;
                        }
                        let (r, noise_scope, route_rate, verdict) = judge(ep, path, kind, f);
                        let mut sample_ids = f.samples.clone();
                        sample_ids.sort_unstable();
                        fields.push(FieldReport {
                            path: path.clone(),
                            kind,
                            differing: f.total.differing,
                            rate: r.raw(),
                            noise_scope,
                            noise_compared: r.noise_compared as i64,
                            noise_differing: r.noise_differing as i64,
                            noise_rate: r.noise(),
                            route_rate,
                            verdict,
                            last_ms: f.total.last_ms,
                            sample_ids,
                        });
                    }
                }
                fields.sort_by(|a, b| {
                    a.verdict
                        .cmp(&b.verdict)
                        .then(b.rate.total_cmp(&a.rate))
                        .then_with(|| a.path.cmp(&b.path))
                        .then(a.kind.cmp(&b.kind))
                });
                endpoints.push(EndpointReport {
                    endpoint: ename.clone(),
                    compared: ep.total.compared,
                    differing: ep.total.differing,
                    noise_compared: ep.total.noise_compared,
                    noise_differing: ep.total.noise_differing,
                    rate: worst_real(&fields),
                    last_ms: ep.total.last_ms,
                    fields,
                });
            }
            endpoints.sort_by(|a, b| {
                b.rate
                    .total_cmp(&a.rate)
                    .then_with(|| a.endpoint.cmp(&b.endpoint))
            });
            routes.push(RouteReport {
                route: name.clone(),
                compared: endpoints.iter().map(|e| e.compared).sum(),
                differing: endpoints.iter().map(|e| e.differing).sum(),
                noise_compared: endpoints.iter().map(|e| e.noise_compared).sum(),
                noise_differing: endpoints.iter().map(|e| e.noise_differing).sum(),
                rate: endpoints.iter().map(|e| e.rate).fold(0.0, f64::max),
                endpoints,
            });
        }
        routes.sort_by(|a, b| {
            b.rate
                .total_cmp(&a.rate)
                .then_with(|| a.route.cmp(&b.route))
        });
        Report { routes }
    }

    /// A kept sample by id.
    pub fn sample(&self, id: i64) -> Option<&Sample> {
        self.samples.get(&id)
    }

    /// Replaces the totals with `stored` (the store's counters, which the other nodes of a
    /// fleet add to) plus `unstored` (a taken delta whose flush has not succeeded yet) plus
    /// what is pending here: the fleet-wide counts, with nothing of this node's counted
    /// twice or lost. Samples are left as they are.
    pub fn refresh_counts(&mut self, stored: &Delta, unstored: &Delta) {
        for eps in self.routes.values_mut() {
            for ep in eps.values_mut() {
                ep.total = ep.pending.unwrap_or_default();
                for kinds in ep.fields.values_mut() {
                    for f in kinds.iter_mut().flatten() {
                        f.total = f.pending.unwrap_or_default();
                    }
                }
            }
        }
        let limits = self.limits;
        for row in stored.endpoints.iter().chain(&unstored.endpoints) {
            let Some(ep) = endpoint_mut(
                &mut self.routes,
                &row.route,
                &row.endpoint,
                &mut self.endpoint_count,
                limits.max_endpoints,
            ) else {
                self.dropped_endpoints += 1;
                continue;
            };
            ep.total.add(&EpCounts {
                compared: row.compared,
                differing: row.differing,
                noise_compared: row.noise_compared,
                noise_differing: row.noise_differing,
                last_ms: row.last_ms,
            });
        }
        for row in stored.fields.iter().chain(&unstored.fields) {
            let Some(f) = self.field_for_load(&row.route, &row.endpoint, &row.path, row.kind)
            else {
                continue;
            };
            f.total.add(&FieldCounts {
                differing: row.differing,
                noise_differing: row.noise_differing,
                last_ms: row.last_ms,
            });
        }
    }

    /// Sets this node's slot (its registration number in the fleet, modulo [`NODE_SLOTS`]):
    /// sample ids are `counter * NODE_SLOTS + slot`, so nodes sharing a store never pick
    /// the same id for different samples.
    pub fn set_node_slot(&mut self, seq: i64) {
        self.node_slot = seq.rem_euclid(NODE_SLOTS);
    }

    /// Forgets a route: counts, samples and pending increments (the store clears its rows).
    pub fn reset(&mut self, route: &str) {
        if let Some(eps) = self.routes.remove(route) {
            self.endpoint_count -= eps.len();
            self.field_count -= eps.values().map(field_keys).sum::<usize>();
        }
        self.samples.retain(|_, s| s.route != route);
        self.pending_samples.retain(|s| s.route != route);
    }

    /// What changed since the last take: counter increments, latest times and new samples,
    /// in key order.
    pub fn take_delta(&mut self) -> Delta {
        let mut d = Delta::default();
        for (route, eps) in &mut self.routes {
            for (endpoint, ep) in eps {
                if let Some(p) = ep.pending.take() {
                    d.endpoints.push(EndpointRow {
                        route: route.clone(),
                        endpoint: endpoint.clone(),
                        compared: p.compared,
                        differing: p.differing,
                        noise_compared: p.noise_compared,
                        noise_differing: p.noise_differing,
                        last_ms: p.last_ms,
                    });
                }
                for (path, kinds) in &mut ep.fields {
                    for (kind, f) in Kind::ALL.into_iter().zip(kinds.iter_mut()) {
                        if let Some(p) = f.as_mut().and_then(|f| f.pending.take()) {
                            d.fields.push(FieldRow {
                                route: route.clone(),
                                endpoint: endpoint.clone(),
                                path: path.clone(),
                                kind,
                                differing: p.differing,
                                noise_differing: p.noise_differing,
                                last_ms: p.last_ms,
                            });
                        }
                    }
                }
            }
        }
        d.endpoints
            .sort_by(|a, b| (&a.route, &a.endpoint).cmp(&(&b.route, &b.endpoint)));
        d.fields.sort_by(|a, b| {
            (&a.route, &a.endpoint, &a.path, a.kind).cmp(&(&b.route, &b.endpoint, &b.path, b.kind))
        });
        d.samples = std::mem::take(&mut self.pending_samples);
        d
    }

    /// Restores stored totals at boot: rows are added as the base (not as pending changes),
    /// samples kept within the limits, and sample ids continue above the loaded ones.
    pub fn load(&mut self, state: Delta) {
        let limits = self.limits;
        for row in state.endpoints {
            let Some(ep) = endpoint_mut(
                &mut self.routes,
                &row.route,
                &row.endpoint,
                &mut self.endpoint_count,
                limits.max_endpoints,
            ) else {
                self.dropped_endpoints += 1;
                continue;
            };
            ep.total.add(&EpCounts {
                compared: row.compared,
                differing: row.differing,
                noise_compared: row.noise_compared,
                noise_differing: row.noise_differing,
                last_ms: row.last_ms,
            });
        }
        for row in state.fields {
            let Some(f) = self.field_for_load(&row.route, &row.endpoint, &row.path, row.kind)
            else {
                continue;
            };
            f.total.add(&FieldCounts {
                differing: row.differing,
                noise_differing: row.noise_differing,
                last_ms: row.last_ms,
            });
        }
        let mut samples = state.samples;
        samples.sort_by_key(|s| s.id);
        for s in samples {
            self.next_id = self.next_id.max((s.id / NODE_SLOTS).saturating_add(1));
            if self.samples.len() >= limits.max_samples || self.samples.contains_key(&s.id) {
                continue;
            }
            let kept = match self.field_for_load(&s.route, &s.endpoint, &s.path, s.kind) {
                Some(f) if f.samples.len() < limits.samples_per_field => {
                    f.samples.push(s.id);
                    true
                }
                _ => false,
            };
            if kept {
                self.samples.insert(s.id, s);
            }
        }
    }

    fn field_for_load(
        &mut self,
        route: &str,
        endpoint: &str,
        path: &str,
        kind: Kind,
    ) -> Option<&mut FieldAgg> {
        let limits = self.limits;
        let Some(ep) = endpoint_mut(
            &mut self.routes,
            route,
            endpoint,
            &mut self.endpoint_count,
            limits.max_endpoints,
        ) else {
            self.dropped_endpoints += 1;
            return None;
        };
        let f = field_mut(
            &mut ep.fields,
            path,
            kind,
            &mut self.field_count,
            limits.max_fields,
        );
        if f.is_none() {
            self.dropped_fields += 1;
        }
        f
    }

    /// Field keys refused because `max_fields` was reached (counted per refusal).
    pub fn dropped_fields(&self) -> u64 {
        self.dropped_fields
    }

    /// Comparisons (or loaded rows) refused because `max_endpoints` was reached.
    pub fn dropped_endpoints(&self) -> u64 {
        self.dropped_endpoints
    }

    /// Field keys held.
    pub fn field_count(&self) -> usize {
        self.field_count
    }

    /// Samples held.
    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }
}

impl Default for Aggregator {
    fn default() -> Self {
        Aggregator::new(Limits::default(), Thresholds::default())
    }
}

fn non_negative(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn worst_real(fields: &[FieldReport]) -> f64 {
    fields
        .iter()
        .filter(|f| f.verdict == Verdict::Real)
        .map(|f| f.rate)
        .fold(0.0, f64::max)
}

fn field_keys(ep: &EndpointAgg) -> usize {
    ep.fields
        .values()
        .map(|k| k.iter().filter(|f| f.is_some()).count())
        .sum()
}

/// The distinct (path, kind) pairs of a comparison: a field counts once per comparison.
fn distinct(diffs: &[Difference]) -> Vec<(&str, Kind)> {
    let mut keys: Vec<(&str, Kind)> = diffs.iter().map(|d| (d.path.as_str(), d.kind)).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

fn endpoint_mut<'m>(
    routes: &'m mut HashMap<String, HashMap<String, EndpointAgg>>,
    route: &str,
    endpoint: &str,
    count: &mut usize,
    max: usize,
) -> Option<&'m mut EndpointAgg> {
    if !routes.get(route).is_some_and(|r| r.contains_key(endpoint)) {
        if *count >= max {
            return None;
        }
        routes
            .entry(route.to_owned())
            .or_default()
            .insert(endpoint.to_owned(), EndpointAgg::default());
        *count += 1;
    }
    routes.get_mut(route)?.get_mut(endpoint)
}

fn field_mut<'m>(
    fields: &'m mut HashMap<String, Kinds>,
    path: &str,
    kind: Kind,
    count: &mut usize,
    max: usize,
) -> Option<&'m mut FieldAgg> {
    if fields.get(path).is_none_or(|k| k[kind.index()].is_none()) {
        if *count >= max {
            return None;
        }
        fields.entry(path.to_owned()).or_default()[kind.index()] = Some(FieldAgg::default());
        *count += 1;
    }
    fields.get_mut(path)?[kind.index()].as_mut()
}
