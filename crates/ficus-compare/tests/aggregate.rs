//! Aggregation: rates, verdicts, samples, bounds and the delta/load cycle.

use std::cell::Cell;

use ficus_compare::{
    compare, Aggregator, Comparison, Delta, Difference, Exchange, Kind, Limits, RequestSample,
    ResponseSample, Rules, SampleData, Thresholds, Verdict,
};
use http::HeaderMap;

/// A small deterministic generator (xorshift64*), so the scenario is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn cmp(a: &str, b: &str) -> Comparison {
    let rules = Rules::default().compile().unwrap();
    let h = HeaderMap::new();
    compare(
        &rules,
        &Exchange {
            status: 200,
            headers: &h,
            body: a.as_bytes(),
        },
        &Exchange {
            status: 200,
            headers: &h,
            body: b.as_bytes(),
        },
    )
}

fn data(body: &str) -> SampleData {
    SampleData {
        request: RequestSample {
            method: "GET".into(),
            uri: "/orders/1".into(),
            ..RequestSample::default()
        },
        legacy: ResponseSample {
            status: 200,
            body: body.into(),
            ..ResponseSample::default()
        },
        modern: ResponseSample {
            status: 200,
            body: body.into(),
            ..ResponseSample::default()
        },
    }
}

fn diffs(paths: &[(&str, Kind)]) -> Comparison {
    Comparison {
        differences: paths
            .iter()
            .map(|(p, k)| Difference {
                path: (*p).into(),
                at: (*p).into(),
                kind: *k,
                left: None,
                right: None,
            })
            .collect(),
        truncated: false,
    }
}

#[test]
fn real_changes_stand_out_from_noise() {
    let mut rng = Rng(0x5eed);
    let mut agg = Aggregator::new(Limits::default(), Thresholds::default());
    let answer = |rng: &mut Rng, total: u64| {
        format!(
            r#"{{"request_id":"{:x}","ts":{},"total":{total},"items":[1,2,3]}}"#,
            rng.next(),
            rng.next() % 1_000_000
        )
    };
    let mut changed = 0;
    for i in 0..1000 {
        let legacy = answer(&mut rng, 100);
        let modern_total = if rng.chance(10) {
            changed += 1;
            101
        } else {
            100
        };
        let modern = answer(&mut rng, modern_total);
        let primary = cmp(&legacy, &modern);
        let noise = rng.chance(20).then(|| cmp(&legacy, &answer(&mut rng, 100)));
        agg.record(
            "api",
            "GET /orders/{id}",
            1_700_000_000_000 + i,
            &primary,
            noise.as_ref(),
            || data(&legacy),
        );
    }
    let report = agg.report(None);
    assert_eq!(report.routes.len(), 1);
    let ep = &report.routes[0].endpoints[0];
    assert_eq!(ep.compared, 1000);
    assert!(
        ep.noise_compared > 150 && ep.noise_compared < 250,
        "{}",
        ep.noise_compared
    );
    let field = |p: &str| ep.fields.iter().find(|f| f.path == p).unwrap();
    let total = field("$.total");
    assert_eq!(total.verdict, Verdict::Real);
    assert_eq!(total.differing, changed);
    assert_eq!(total.noise_differing, 0);
    assert!((total.rate - changed as f64 / 1000.0).abs() < 1e-9);
    for p in ["$.request_id", "$.ts"] {
        let f = field(p);
        assert_eq!(f.verdict, Verdict::Noise, "{p}");
        assert!(f.rate > 0.99 && f.noise_rate > 0.99, "{f:?}");
    }
    assert_eq!(ep.fields[0].path, "$.total", "real first");
    assert_eq!(ep.fields.len(), 3);
    assert!((report.routes[0].rate - total.rate).abs() < 1e-12);
    assert_eq!(total.sample_ids.len(), Limits::default().samples_per_field);
    let s = agg.sample(total.sample_ids[0]).unwrap();
    assert_eq!(
        (s.path.as_str(), s.kind, s.route.as_str()),
        ("$.total", Kind::Value, "api")
    );
    assert!(s.differences.iter().any(|d| d.path == "$.total"));

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["routes"][0]["endpoints"][0]["fields"][0]["verdict"],
        "real"
    );
    assert_eq!(
        json["routes"][0]["endpoints"][0]["fields"][0]["kind"],
        "value"
    );
    assert!(json["routes"][0]["endpoints"][0]["fields"][0]["noise_rate"].is_number());
}

#[test]
fn a_field_counts_once_per_comparison() {
    let mut agg = Aggregator::default();
    let c = cmp(
        r#"{"items":[{"p":1},{"p":2},{"p":3}]}"#,
        r#"{"items":[{"p":5},{"p":6},{"p":7}]}"#,
    );
    assert_eq!(c.differences.len(), 3);
    agg.record("r", "e", 1, &c, None, || data(""));
    let f = &agg.report(None).routes[0].endpoints[0].fields;
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].path.as_str(), f[0].differing, f[0].rate),
        ("$.items[*].p", 1, 1.0)
    );
    assert_eq!(f[0].sample_ids.len(), 1);
}

#[test]
fn ranking() {
    let mut agg = Aggregator::default();
    for i in 0..100 {
        let mut paths = vec![("$.noisy", Kind::Value)];
        if i < 30 {
            paths.push(("$.often", Kind::Value));
        }
        if i < 10 {
            paths.push(("$.rare", Kind::Missing));
        }
        let noise = diffs(&[("$.noisy", Kind::Value)]);
        agg.record("r", "GET /worse", i, &diffs(&paths), Some(&noise), || {
            data("")
        });
        let mut p = vec![];
        if i < 5 {
            p.push(("$.x", Kind::Value));
        }
        agg.record("r", "GET /better", i, &diffs(&p), None, || data(""));
        agg.record("q", "GET /fine", i, &Comparison::default(), None, || {
            data("")
        });
    }
    let report = agg.report(None);
    assert_eq!(
        report
            .routes
            .iter()
            .map(|r| r.route.as_str())
            .collect::<Vec<_>>(),
        vec!["r", "q"]
    );
    let r = &report.routes[0];
    assert_eq!(r.compared, 200);
    assert_eq!(r.rate, 0.3);
    assert_eq!(
        r.endpoints
            .iter()
            .map(|e| e.endpoint.as_str())
            .collect::<Vec<_>>(),
        vec!["GET /worse", "GET /better"]
    );
    let worse = &r.endpoints[0];
    let fields: Vec<(&str, Kind, Verdict)> = worse
        .fields
        .iter()
        .map(|f| (f.path.as_str(), f.kind, f.verdict))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("$.often", Kind::Value, Verdict::Real),
            ("$.rare", Kind::Missing, Verdict::Real),
            ("$.noisy", Kind::Value, Verdict::Noise),
        ]
    );
    assert_eq!(report.routes[1].rate, 0.0);
    assert!(report.routes[1].endpoints[0].fields.is_empty());
    assert_eq!(agg.report(Some("q")).routes.len(), 1);
    assert_eq!(agg.report(Some("nope")).routes.len(), 0);
}

#[test]
fn samples_are_lazy_bounded_and_shared() {
    let limits = Limits {
        samples_per_field: 2,
        max_sample_body: 8,
        ..Limits::default()
    };
    let mut agg = Aggregator::new(limits, Thresholds::default());
    let calls = Cell::new(0);
    for i in 0..10 {
        let c = diffs(&[("$.a", Kind::Value), ("$.b", Kind::Extra)]);
        agg.record("r", "e", 5, &c, None, || {
            calls.set(calls.get() + 1);
            data(&format!("{i}-0123456789"))
        });
    }
    assert_eq!(
        calls.get(),
        2,
        "built only while a field still wants a sample"
    );
    assert_eq!(agg.sample_count(), 4, "one per field key and comparison");
    let report = agg.report(None);
    let ids: Vec<i64> = report.routes[0].endpoints[0]
        .fields
        .iter()
        .flat_map(|f| f.sample_ids.clone())
        .collect();
    assert_eq!(ids.len(), 4);
    let a = agg.sample(ids[0]).unwrap();
    assert_eq!(a.data.legacy.body, "0-012345", "cut to max_sample_body");
    assert!(a.data.legacy.truncated);
    // ids are unique, monotonic and seeded from the time
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 4);
    assert!(sorted[0] >= 5_000);
    // samples of the same comparison share their data
    let same: Vec<_> = ids
        .iter()
        .map(|id| agg.sample(*id).unwrap())
        .filter(|s| s.data.legacy.body.starts_with("0-"))
        .collect();
    assert_eq!(same.len(), 2);
    assert!(std::sync::Arc::ptr_eq(&same[0].data, &same[1].data));
}

#[test]
fn max_samples_bounds_the_total() {
    let limits = Limits {
        max_samples: 3,
        ..Limits::default()
    };
    let mut agg = Aggregator::new(limits, Thresholds::default());
    for i in 0..10 {
        let p = format!("$.f{i}");
        agg.record("r", "e", i, &diffs(&[(&p, Kind::Value)]), None, || data(""));
    }
    assert_eq!(agg.sample_count(), 3);
    let d = agg.take_delta();
    assert_eq!(d.samples.len(), 3);
    let calls = Cell::new(0);
    agg.record(
        "r",
        "e",
        99,
        &diffs(&[("$.new", Kind::Value)]),
        None,
        || {
            calls.set(calls.get() + 1);
            data("")
        },
    );
    assert_eq!(calls.get(), 0, "no sample is built when none can be kept");
}

#[test]
fn max_fields_refuses_new_keys() {
    let limits = Limits {
        max_fields: 3,
        ..Limits::default()
    };
    let mut agg = Aggregator::new(limits, Thresholds::default());
    let c = diffs(&[
        ("$.a", Kind::Value),
        ("$.a", Kind::Type),
        ("$.b", Kind::Value),
        ("$.c", Kind::Value),
    ]);
    agg.record(
        "r",
        "e",
        1,
        &c,
        Some(&diffs(&[("$.d", Kind::Value)])),
        || data(""),
    );
    assert_eq!(agg.field_count(), 3);
    assert_eq!(agg.dropped_fields(), 2);
    agg.record("r", "e", 2, &diffs(&[("$.a", Kind::Value)]), None, || {
        data("")
    });
    assert_eq!(agg.dropped_fields(), 2, "known keys still count");
    let f = &agg.report(None).routes[0].endpoints[0].fields;
    assert_eq!(f.len(), 3);
    assert_eq!(
        f.iter()
            .find(|f| f.path == "$.a" && f.kind == Kind::Value)
            .unwrap()
            .differing,
        2
    );
    // resetting the route frees the budget
    agg.reset("r");
    assert_eq!(agg.field_count(), 0);
    agg.record("r", "e", 3, &diffs(&[("$.z", Kind::Value)]), None, || {
        data("")
    });
    assert_eq!(agg.field_count(), 1);
}

#[test]
fn max_endpoints_refuses_new_endpoints() {
    let limits = Limits {
        max_endpoints: 2,
        ..Limits::default()
    };
    let mut agg = Aggregator::new(limits, Thresholds::default());
    for e in ["a", "b", "c", "a"] {
        agg.record("r", e, 1, &Comparison::default(), None, || data(""));
    }
    assert_eq!(agg.dropped_endpoints(), 1);
    assert_eq!(agg.report(None).routes[0].endpoints.len(), 2);
}

#[test]
fn deltas_carry_increments_and_load_restores_totals() {
    let mut agg = Aggregator::default();
    agg.record(
        "r",
        "e",
        10,
        &diffs(&[("$.a", Kind::Value), ("$.a", Kind::Value)]),
        None,
        || data("1"),
    );
    agg.record(
        "r",
        "e",
        20,
        &Comparison::default(),
        Some(&diffs(&[("$.a", Kind::Value)])),
        || data("2"),
    );
    agg.record(
        "s",
        "e",
        15,
        &diffs(&[("$.b", Kind::Missing)]),
        None,
        || data("3"),
    );
    let first = agg.take_delta();
    assert_eq!(first.endpoints.len(), 2);
    let r = &first.endpoints[0];
    assert_eq!(
        (
            r.route.as_str(),
            r.compared,
            r.differing,
            r.noise_compared,
            r.noise_differing,
            r.last_ms
        ),
        ("r", 2, 1, 1, 1, 20)
    );
    let f = &first.fields[0];
    assert_eq!(
        (
            f.path.as_str(),
            f.kind,
            f.differing,
            f.noise_differing,
            f.last_ms
        ),
        ("$.a", Kind::Value, 1, 1, 20)
    );
    assert_eq!(first.samples.len(), 2);
    assert!(
        agg.take_delta().is_empty(),
        "a take empties the pending changes"
    );

    agg.record("r", "e", 30, &diffs(&[("$.a", Kind::Value)]), None, || {
        data("4")
    });
    let second = agg.take_delta();
    assert_eq!(second.endpoints.len(), 1);
    assert_eq!(
        (
            second.endpoints[0].compared,
            second.endpoints[0].differing,
            second.endpoints[0].last_ms
        ),
        (1, 1, 30)
    );
    assert_eq!(second.fields.len(), 1);
    assert_eq!(second.fields[0].differing, 1);
    assert_eq!(second.samples.len(), 1);

    // what a store would hold: the deltas summed
    let stored = Delta {
        endpoints: first
            .endpoints
            .iter()
            .chain(&second.endpoints)
            .cloned()
            .collect(),
        fields: first.fields.iter().chain(&second.fields).cloned().collect(),
        samples: first
            .samples
            .iter()
            .chain(&second.samples)
            .cloned()
            .collect(),
    };
    // through JSON, as the store keeps samples
    let stored: Delta = serde_json::from_str(&serde_json::to_string(&stored).unwrap()).unwrap();
    let mut restored = Aggregator::default();
    restored.load(stored);
    assert_eq!(restored.report(None), agg.report(None));
    assert!(
        restored.take_delta().is_empty(),
        "loaded totals are not pending"
    );
    let max_loaded = agg
        .report(None)
        .routes
        .iter()
        .flat_map(|r| &r.endpoints)
        .flat_map(|e| &e.fields)
        .flat_map(|f| f.sample_ids.clone())
        .max()
        .unwrap();
    // a new sample id stays above the loaded ones even with an earlier clock
    restored.record("t", "e", 0, &diffs(&[("$.c", Kind::Value)]), None, || {
        data("5")
    });
    let d = restored.take_delta();
    assert!(d.samples[0].id > max_loaded);
    assert_eq!(
        restored.sample(d.samples[0].id).unwrap().data.legacy.body,
        "5"
    );
}

#[test]
fn reset_forgets_a_route_entirely() {
    let mut agg = Aggregator::default();
    agg.record("r", "e", 1, &diffs(&[("$.a", Kind::Value)]), None, || {
        data("")
    });
    agg.record("s", "e", 1, &diffs(&[("$.a", Kind::Value)]), None, || {
        data("")
    });
    let id = agg.report(Some("r")).routes[0].endpoints[0].fields[0].sample_ids[0];
    agg.reset("r");
    assert!(agg.report(Some("r")).routes.is_empty());
    assert!(agg.sample(id).is_none());
    let d = agg.take_delta();
    assert!(d.endpoints.iter().all(|e| e.route == "s"));
    assert!(d.fields.iter().all(|f| f.route == "s"));
    assert!(d.samples.iter().all(|s| s.route == "s"));
    assert_eq!(d.endpoints.len(), 1);
    assert_eq!(agg.report(None).routes.len(), 1);
}

#[test]
fn load_respects_the_limits() {
    let mut source = Aggregator::default();
    for i in 0..4 {
        let p = format!("$.f{i}");
        source.record("r", "e", i, &diffs(&[(&p, Kind::Value)]), None, || data(""));
    }
    let state = source.take_delta();
    let mut small = Aggregator::new(
        Limits {
            max_fields: 2,
            max_samples: 1,
            ..Limits::default()
        },
        Thresholds::default(),
    );
    small.load(state);
    assert_eq!(small.field_count(), 2);
    assert_eq!(small.sample_count(), 1);
    assert!(small.dropped_fields() > 0);
}

#[test]
fn an_endpoint_without_its_own_noise_sample_uses_the_routes_pooled_noise() {
    let mut agg = Aggregator::new(Limits::default(), Thresholds::default());
    // Endpoint A is noise-sampled every time: its timestamp differs legacy-vs-legacy too.
    for i in 0..30 {
        let p = cmp(
            &format!(r#"{{"ts":{i},"v":1}}"#),
            &format!(r#"{{"ts":{},"v":1}}"#, i + 1),
        );
        let n = cmp(
            &format!(r#"{{"ts":{i}}}"#),
            &format!(r#"{{"ts":{}}}"#, i + 2),
        );
        agg.record("api", "GET /a", i, &p, Some(&n), || data("{}"));
    }
    // Endpoint B never was, and modern also gets `v` wrong there.
    for i in 0..5 {
        let p = cmp(
            &format!(r#"{{"ts":{i},"v":1}}"#),
            &format!(r#"{{"ts":{},"v":2}}"#, i + 1),
        );
        agg.record("api", "GET /b", i, &p, None, || data("{}"));
    }
    let report = agg.report(Some("api"));
    let b = report.routes[0]
        .endpoints
        .iter()
        .find(|e| e.endpoint == "GET /b")
        .unwrap();
    let verdict = |path: &str| b.fields.iter().find(|f| f.path == path).unwrap().verdict;
    assert_eq!(
        verdict("$.ts"),
        Verdict::Noise,
        "the route's noise tells the timestamp apart"
    );
    assert_eq!(verdict("$.v"), Verdict::Real);
    assert_eq!(
        b.noise_compared, 0,
        "the endpoint's own counts are still shown as they are"
    );
}

#[test]
fn fleet_counts_are_the_stored_ones_plus_what_is_not_stored_yet() {
    // Two nodes of a fleet compare the same endpoint; each flushes its deltas to the store
    // (here: a Delta summed by hand) and refreshes from it.
    let mut a = Aggregator::default();
    let mut b = Aggregator::default();
    a.set_node_slot(1);
    b.set_node_slot(2);
    for i in 0..3 {
        a.record(
            "r",
            "e",
            10 + i,
            &diffs(&[("$.a", Kind::Value)]),
            None,
            || data("a"),
        );
    }
    for i in 0..5 {
        b.record("r", "e", 20 + i, &Comparison::default(), None, || data("b"));
    }
    let da = a.take_delta();
    let db = b.take_delta();
    // Sample ids of the two nodes never collide.
    let ids: Vec<i64> = da.samples.iter().chain(&db.samples).map(|s| s.id).collect();
    assert!(ids
        .iter()
        .all(|id| id.rem_euclid(ficus_compare::NODE_SLOTS) == 1));
    let mut stored = da.clone();
    stored.endpoints[0].compared += db.endpoints[0].compared;
    stored.endpoints[0].last_ms = 24;
    // a compares twice more before the refresh; b's flush of 5 is stored.
    a.record("r", "e", 30, &Comparison::default(), None, || data("a"));
    a.record("r", "e", 31, &diffs(&[("$.a", Kind::Value)]), None, || {
        data("a")
    });
    a.refresh_counts(&stored, &Delta::default());
    let r = a.report(Some("r"));
    let e = &r.routes[0].endpoints[0];
    assert_eq!((e.compared, e.differing), (3 + 5 + 2, 3 + 1));
    assert_eq!(e.last_ms, 31);
    assert_eq!(e.fields[0].differing, 4);
    // A delta taken but not stored yet (its flush failed) still counts, once.
    let pending = a.take_delta();
    assert_eq!(pending.endpoints[0].compared, 2);
    a.refresh_counts(&stored, &pending);
    assert_eq!(a.report(Some("r")).routes[0].endpoints[0].compared, 10);
    // Refreshing again changes nothing.
    a.refresh_counts(&stored, &pending);
    assert_eq!(a.report(Some("r")).routes[0].endpoints[0].compared, 10);
    // Ids loaded from other nodes do not pull this node's ids into their slot.
    let mut c = Aggregator::default();
    c.set_node_slot(3);
    c.load(db.clone());
    c.record("r", "e", 40, &diffs(&[("$.z", Kind::Value)]), None, || {
        data("c")
    });
    let dc = c.take_delta();
    assert_eq!(dc.samples.len(), 1);
    assert_eq!(dc.samples[0].id.rem_euclid(ficus_compare::NODE_SLOTS), 3);
}

#[test]
fn sample_ids_stay_exact_in_javascript() {
    // The dashboard reads ids as JavaScript numbers: exact only below 2^53.
    let mut a = Aggregator::default();
    a.set_node_slot(1023);
    for at_ms in [1_800_000_000_000i64, 6_500_000_000_000] {
        a.record(
            "r",
            &format!("e{at_ms}"),
            at_ms,
            &diffs(&[("$.a", Kind::Value)]),
            None,
            || data("x"),
        );
    }
    let ids: Vec<i64> = a.take_delta().samples.iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|id| *id < (1i64 << 53)), "{ids:?}");
}

/// The demo's catalog: many endpoints with a few comparisons each, a timestamp that legacy
/// changes between two of its own answers about as often as modern differs from it, and a
/// price that modern really gets wrong. The timestamp is noise on the route's pooled sample,
/// so no endpoint may call it real, even one whose three comparisons all differed.
#[test]
fn a_field_that_is_noise_over_the_route_is_noise_on_every_endpoint_without_its_own_sample() {
    let mut agg = Aggregator::new(Limits::default(), Thresholds::default());
    let body = |ts: u32, price: &str| format!(r#"{{"ts":{ts},"price":{price}}}"#);
    for e in 0..18u32 {
        let endpoint = format!("GET /catalog/sku-{}", 1000 + e);
        for i in 0..3u32 {
            // The first 6 endpoints differ at ts every time, the others 2 times in 3.
            let ts_differs = e < 6 || i > 0;
            let p = cmp(
                &body(1, "4.5"),
                &body(if ts_differs { 2 } else { 1 }, "\"4.50\""),
            );
            // One legacy-vs-legacy comparison per endpoint; ts differs in 14 of 18.
            let n =
                (i == 0).then(|| cmp(&body(1, "4.5"), &body(if e < 14 { 3 } else { 1 }, "4.5")));
            agg.record("catalog", &endpoint, i64::from(i), &p, n.as_ref(), || {
                data("{}")
            });
        }
    }
    // One endpoint where modern also drops a field: real there, whatever the others do.
    for i in 0..3 {
        let p = cmp(
            r#"{"ts":1,"price":4.5,"stock":3}"#,
            r#"{"ts":2,"price":"4.50"}"#,
        );
        agg.record("catalog", "GET /catalog/sku-1000", 10 + i, &p, None, || {
            data("{}")
        });
    }
    let report = agg.report(Some("catalog"));
    let route = &report.routes[0];
    assert_eq!(route.endpoints.len(), 18);
    for ep in &route.endpoints {
        let field = |path: &str| ep.fields.iter().find(|f| f.path == path).unwrap();
        let ts = field("$.ts");
        assert_eq!(
            ts.verdict,
            Verdict::Noise,
            "{}: $.ts at {} against {}",
            ep.endpoint,
            ts.rate,
            ts.noise_rate
        );
        // The noise shown is what it was judged against: the route's, with its counts.
        assert_eq!(ts.noise_scope, ficus_compare::NoiseScope::Route);
        assert_eq!((ts.noise_differing, ts.noise_compared), (14, 18));
        assert!((ts.noise_rate - 14.0 / 18.0).abs() < 1e-9);
        let over_route = (6.0 * 3.0 + 12.0 * 2.0 + 3.0) / 57.0;
        assert!((ts.route_rate.unwrap() - over_route).abs() < 1e-9, "{ts:?}");
        assert_eq!(field("$.price").verdict, Verdict::Real, "{}", ep.endpoint);
        let stock = ep.fields.iter().find(|f| f.path == "$.stock");
        assert_eq!(
            stock.map(|f| f.verdict),
            (ep.endpoint == "GET /catalog/sku-1000").then_some(Verdict::Real),
            "{}",
            ep.endpoint
        );
    }
}
