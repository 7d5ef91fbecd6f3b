//! Telemetry through a real gateway: per (route, side) counts by class, fallbacks counted on
//! modern, ficus's own errors counted for the side they came from, windows and exposition.

mod support;

use support::*;

const CONFIG: &str = r#"
[[listener]]
bind = "127.0.0.1:0"
[upstream.legacy]
url = "{legacy}"
[upstream.modern]
url = "{modern}"
request_timeout = "300ms"
[[route]]
name = "orders"
methods = ["GET"]
legacy = "legacy"
modern = "modern"
stage = "modern"
[default]
legacy = "legacy"
"#;

#[tokio::test]
async fn sides_are_counted_apart_with_fallbacks_and_gateway_errors() {
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    let gw = TestGateway::start(
        CONFIG,
        &[("legacy", legacy.url()), ("modern", modern.url())],
    )
    .await;
    let t = gw.gateway().telemetry().clone();
    t.tick(1_000);

    for _ in 0..10 {
        assert_eq!(get(&gw.url("/orders/1"), &[]).await.0, 200);
    }
    modern.set_status(503);
    for _ in 0..4 {
        // GET: modern's 503 falls back to legacy.
        assert_eq!(get(&gw.url("/orders/2"), &[]).await.0, 200);
    }
    modern.set_status(200);
    assert_eq!(
        get(&gw.url("/sleep/1000"), &[]).await.0,
        200,
        "timeout, then legacy"
    );
    let post = http::Request::post(gw.url("/other"))
        .body(full("x"))
        .unwrap();
    assert_eq!(send(post).await.0, 200);
    t.tick(1_001);

    let orders = t.route("orders");
    let (m, l) = (orders.side(true).totals(), orders.side(false).totals());
    assert_eq!(
        m.by_class,
        [0, 10, 0, 0, 5],
        "10 ok, 4 x 503 and one 504 on modern"
    );
    assert_eq!(m.fallbacks, 5);
    assert_eq!(
        l.by_class,
        [0, 5, 0, 0, 0],
        "legacy answered the five fallbacks"
    );
    assert_eq!((m.in_flight, l.in_flight), (0, 0));
    assert_eq!(t.route("default").side(false).totals().requests(), 1);

    let w = orders.side(true).window(60);
    assert_eq!((w.requests, w.errors, w.fallbacks), (15, 5, 5));
    assert!((w.error_ratio - 5.0 / 15.0).abs() < 1e-9);
    let p99 = w.p99_ms.unwrap();
    assert!(p99 >= 250.0, "the timed-out call took ~300ms: p99 {p99}");

    let text = t.prometheus();
    assert!(
        text.contains(
            "ficus_requests_total{route=\"orders\",side=\"modern\",code_class=\"5xx\"} 5"
        ),
        "{text}"
    );
    assert!(
        text.contains("ficus_fallbacks_total{route=\"orders\",side=\"modern\"} 5"),
        "{text}"
    );
}

#[tokio::test]
async fn telemetry_can_be_turned_off() {
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    let text = format!("{CONFIG}\n[telemetry]\nenabled = false\n");
    let gw = TestGateway::start(&text, &[("legacy", legacy.url()), ("modern", modern.url())]).await;
    for _ in 0..3 {
        get(&gw.url("/orders/1"), &[]).await;
    }
    assert!(gw
        .gateway()
        .table()
        .routes()
        .iter()
        .all(|r| r.stats.is_none()));
    assert_eq!(
        gw.gateway()
            .telemetry()
            .route("orders")
            .side(true)
            .totals()
            .requests(),
        0
    );
}

#[tokio::test]
async fn the_inventory_folds_ids_and_counts_sides() {
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    let gw = TestGateway::start(
        CONFIG,
        &[("legacy", legacy.url()), ("modern", modern.url())],
    )
    .await;
    for id in [1, 2, 3] {
        get(&gw.url(&format!("/orders/{id}/items")), &[]).await;
    }
    get(&gw.url("/users/3f2b8c1e-9d4a-4b7e-8f00-1234567890ab"), &[]).await;
    let post = http::Request::post(gw.url("/checkout/77"))
        .body(full("x"))
        .unwrap();
    send(post).await;
    let v = gw.gateway().telemetry().inventory().view();
    let list: Vec<_> = v
        .endpoints
        .iter()
        .map(|e| {
            (
                e.method.as_str(),
                e.template.as_str(),
                e.route.as_str(),
                e.legacy,
                e.modern,
                e.legacy_only,
            )
        })
        .collect();
    assert_eq!(
        list,
        [
            ("GET", "/orders/{id}/items", "orders", 0, 3, false),
            ("POST", "/checkout/{id}", "default", 1, 0, true),
            ("GET", "/users/{id}", "orders", 0, 1, false),
        ]
    );
}
