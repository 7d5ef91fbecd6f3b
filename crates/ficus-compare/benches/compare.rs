//! Comparison throughput on a ~10 KB order list (50 orders with ids, prices, names and
//! nested objects), in bytes of both bodies per second.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ficus_compare::{compare, Exchange, Rules};
use http::HeaderMap;
use serde_json::{json, Value};
use std::hint::black_box;

fn orders() -> Value {
    let orders: Vec<Value> = (0..50)
        .map(|i| {
            json!({
                "id": 100_000 + i,
                "status": if i % 3 == 0 { "shipped" } else { "open" },
                "total": 19.99 + f64::from(i),
                "customer": {
                    "id": 5_000 + i,
                    "name": format!("Customer {i}"),
                    "address": {"city": "Lisbon", "zip": format!("1{i:03}-001")}
                },
                "lines": [
                    {"sku": format!("SKU-{i}-A"), "qty": 1 + i % 4, "price": 9.5}
                ],
                "tags": ["web", "priority"]
            })
        })
        .collect();
    json!({"orders": orders, "page": {"size": 50, "next": "cursor-abc"}})
}

fn bench(c: &mut Criterion) {
    let legacy = serde_json::to_vec(&orders()).unwrap();
    // Equal content in different bytes, so the byte-equality shortcut does not apply.
    let mut equal = legacy.clone();
    equal.push(b'\n');
    let mut changed = orders();
    changed["orders"][5]["total"] = json!(24.98);
    changed["orders"][20]["customer"]["name"] = json!("Customer twenty");
    changed["orders"][40]["lines"][0]["qty"] = json!(3);
    let changed = serde_json::to_vec(&changed).unwrap();

    let h = HeaderMap::new();
    let plain = Rules::default().compile().unwrap();
    let with_rules = Rules {
        ignore: vec!["$.page.next".into(), "$.orders[*].customer.address".into()],
        tolerance: vec![("$.orders[*].total".into(), 0.001)],
        unordered: vec!["$.orders[*].tags".into()],
        ..Rules::default()
    }
    .compile()
    .unwrap();

    eprintln!(
        "bodies: legacy {} bytes, changed {} bytes; {} differences",
        legacy.len(),
        changed.len(),
        compare(
            &plain,
            &Exchange {
                status: 200,
                headers: &h,
                body: &legacy
            },
            &Exchange {
                status: 200,
                headers: &h,
                body: &changed
            }
        )
        .differences
        .len()
    );

    let mut g = c.benchmark_group("compare_10kb");
    let cases: [(&str, &ficus_compare::CompiledRules, &[u8]); 5] = [
        ("identical_bytes", &plain, &legacy),
        ("equal", &plain, &equal),
        ("3_differences", &plain, &changed),
        ("equal_with_rules", &with_rules, &equal),
        ("3_differences_with_rules", &with_rules, &changed),
    ];
    for (name, rules, right) in cases {
        g.throughput(Throughput::Bytes((legacy.len() + right.len()) as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                compare(
                    black_box(rules),
                    &Exchange {
                        status: 200,
                        headers: &h,
                        body: black_box(&legacy),
                    },
                    &Exchange {
                        status: 200,
                        headers: &h,
                        body: black_box(right),
                    },
                )
            })
        });
    }
    // For scale: only parsing both bodies into serde_json::Value.
    g.throughput(Throughput::Bytes((legacy.len() + changed.len()) as u64));
    g.bench_function("baseline_serde_json_value_parse", |b| {
        b.iter(|| {
            let a: Value = serde_json::from_slice(black_box(&legacy)).unwrap();
            let b: Value = serde_json::from_slice(black_box(&changed)).unwrap();
            (a, b)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
