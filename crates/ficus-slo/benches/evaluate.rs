//! One evaluation round of the SLO controller's pure part: 1,000 SLOs (one per route), each
//! with 30 days of minute counts (steady traffic with a sprinkle of errors), evaluated at
//! one instant: every window's sums, budget, burn rates and rules. Also prints the memory
//! the histories hold. `cargo bench -p ficus-slo --bench evaluate`.

use criterion::{criterion_group, criterion_main, Criterion};
use ficus_slo::{default_burn_rules, evaluate, Counts, History, Scope, Sli, Spec, Window};
use std::hint::black_box;

const ROUTES: usize = 1000;
const DAYS: i64 = 30;

fn spec(i: usize) -> Spec {
    Spec {
        name: "availability".into(),
        route: format!("route-{i}"),
        scope: Scope::Route,
        sli: Sli::Availability {
            bad_429: false,
            bad_4xx: false,
        },
        objective: 99.9,
        window: Window::Rolling { days: 30 },
        rules: default_burn_rules(),
        min_requests: 100,
    }
}

fn histories(now_min: i64) -> Vec<(Spec, History)> {
    (0..ROUTES)
        .map(|i| {
            let s = spec(i);
            let mut h = History::for_spec(&s);
            for m in (now_min - DAYS * 1440)..=now_min {
                let total = 600 + ((m as u64 * 7 + i as u64) % 50);
                let bad = u64::from((m + i as i64) % 97 == 0);
                h.set_minute(m, Counts { total, bad });
            }
            (s, h)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let now = 1_765_000_000i64;
    let all = histories(now / 60);
    let bytes: usize = all.iter().map(|(_, h)| h.heap_bytes()).sum();
    eprintln!(
        "{ROUTES} SLOs with {DAYS} days of minutes: histories hold {:.1} MB ({} bytes each)",
        bytes as f64 / 1e6,
        bytes / ROUTES
    );
    let mut g = c.benchmark_group("slo");
    g.sample_size(20);
    g.bench_function("evaluate_1000_slos_30_days", |b| {
        b.iter(|| {
            for (s, h) in &all {
                black_box(evaluate(s, h, black_box(now)));
            }
        })
    });
    g.bench_function("evaluate_one_slo_30_days", |b| {
        let (s, h) = &all[0];
        b.iter(|| black_box(evaluate(s, h, black_box(now))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
