//! Route matching order, templates, the sticky weighted split and stickiness, through a real
//! gateway and real upstreams.

mod support;

use ficus_proxy::split;
use support::*;

const CONFIG: &str = r#"
[[listener]]
bind = "127.0.0.1:0"
[upstream.legacy]
url = "{legacy}"
[upstream.modern]
url = "{modern}"

[[route]]
name = "order-items"
template = "/orders/{id}/items"
legacy = "legacy"
modern = "modern"
stage = "modern"
debug_header = true

[[route]]
name = "orders-admin"
path_prefix = "/orders"
headers = { "x-role" = "admin" }
legacy = "legacy"
debug_header = true

[[route]]
name = "orders"
path_prefix = "/orders"
methods = ["GET", "POST"]
legacy = "legacy"
modern = "modern"
stage = "canary"
weight = 25
sticky = "header:x-user-id"
debug_header = true

[[route]]
name = "health"
path = "/health"
host = "api.test"
legacy = "legacy"
modern = "modern"
stage = "retired"
debug_header = true

[[route]]
name = "catalog"
path_prefix = "/catalog"
legacy = "legacy"
modern = "modern"
stage = "shadow"
weight = 100
debug_header = true

[default]
legacy = "legacy"
debug_header = true
"#;

async fn setup() -> (Upstream, Upstream, TestGateway) {
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    let gw = TestGateway::start(
        CONFIG,
        &[("legacy", legacy.url()), ("modern", modern.url())],
    )
    .await;
    (legacy, modern, gw)
}

#[tokio::test]
async fn first_match_wins_and_templates_match_whole_segments() {
    let (_l, _m, gw) = setup().await;
    // (method, path, request headers, expected route, expected side)
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case<'_>] = &[
        ("GET", "/orders/7/items", &[], "order-items", "modern"),
        ("GET", "/orders/7/items/", &[], "orders", ""),
        (
            "GET",
            "/orders/7",
            &[("x-role", "admin")],
            "orders-admin",
            "legacy",
        ),
        (
            "GET",
            "/orders/7/items",
            &[("x-role", "admin")],
            "order-items",
            "modern",
        ),
        ("DELETE", "/orders/7", &[], "default", "legacy"),
        ("GET", "/ordersx", &[], "default", "legacy"),
        (
            "GET",
            "/health",
            &[("host", "api.test")],
            "health",
            "modern",
        ),
        ("GET", "/health", &[], "default", "legacy"),
        ("GET", "/catalog/9", &[], "catalog", "legacy"),
    ];
    for (method, path, headers, route, side) in cases {
        let mut b = http::Request::builder().method(*method).uri(gw.url(path));
        for (k, v) in *headers {
            b = b.header(*k, *v);
        }
        let (status, h, _) = send(b.body(full("")).unwrap()).await;
        assert_eq!(status, 200, "{method} {path}");
        assert_eq!(header(&h, "x-ficus-route"), *route, "{method} {path}");
        if !side.is_empty() {
            assert_eq!(header(&h, "x-ficus-upstream"), *side, "{method} {path}");
            assert_eq!(header(&h, "x-served-by"), *side, "{method} {path}");
        }
    }
}

#[tokio::test]
async fn canary_split_is_sticky_and_matches_the_documented_hash() {
    let (_l, _m, gw) = setup().await;
    let mut modern = 0;
    for i in 0..400 {
        let user = format!("user-{i}");
        let expect_modern = split::bucket("orders", user.as_bytes()) < 2500;
        for _ in 0..2 {
            let (_, h, _) = get(&gw.url("/orders/1"), &[("x-user-id", &user)]).await;
            let side = header(&h, "x-served-by");
            assert_eq!(side == "modern", expect_modern, "{user} went to {side}");
        }
        modern += usize::from(expect_modern);
    }
    // 400 keys at 25%: well inside 15%..35% for any sane hash.
    assert!((60..=140).contains(&modern), "{modern} of 400 on modern");
}

#[tokio::test]
async fn raising_the_weight_by_reload_never_moves_a_user_back() {
    let (legacy, modern, gw) = setup().await;
    let vars = [("legacy", legacy.url()), ("modern", modern.url())];
    let users: Vec<String> = (0..200).map(|i| format!("u{i}")).collect();
    let mut on_modern = vec![false; users.len()];
    for weight in ["5", "25", "50", "90"] {
        let text = CONFIG.replace("weight = 25", &format!("weight = {weight}"));
        gw.gateway().reload(config(&text, &vars)).expect("reload");
        for (i, u) in users.iter().enumerate() {
            let (_, h, _) = get(&gw.url("/orders"), &[("x-user-id", u)]).await;
            let now_modern = header(&h, "x-served-by") == "modern";
            assert!(
                now_modern || !on_modern[i],
                "{u} moved back to legacy at weight {weight}"
            );
            on_modern[i] = now_modern;
        }
    }
    let share = on_modern.iter().filter(|m| **m).count();
    assert!(share > 150, "at 90% most users are on modern: {share}");
}

#[tokio::test]
async fn requests_without_the_sticky_key_are_split_too() {
    let (_l, _m, gw) = setup().await;
    let sides: Vec<String> = futures_join(200, |_| {
        let url = gw.url("/orders");
        async move { header(&get(&url, &[]).await.1, "x-served-by").to_string() }
    })
    .await;
    let t = tally(sides);
    let m = t.get("modern").copied().unwrap_or(0);
    assert!(
        (15..=90).contains(&m),
        "no key: random buckets, about 25% modern: {t:?}"
    );
}

async fn futures_join<F, Fut, T>(n: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(f(i).await);
    }
    out
}
