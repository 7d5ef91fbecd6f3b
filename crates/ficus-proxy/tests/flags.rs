//! A canary split that follows a feature flag, through a real gateway and real upstreams:
//! the flag's targeting rule sends its users to modern whatever the weight, its split keeps
//! each user on one side, and each request's side is the variant the same flag gives the
//! same context over OFREP (the engine is one).

mod support;

use support::*;

const CONFIG: &str = r#"
[[listener]]
bind = "127.0.0.1:0"
[upstream.legacy]
url = "{legacy}"
[upstream.modern]
url = "{modern}"

[[flag]]
key = "new-checkout"
variants = { on = true, off = false }
default = "off"
[[flag.rule]]
when = [{ attribute = "x-plan", eq = "pro" }]
variant = "on"
[[flag.rule]]
split = { on = 30, off = 70 }

[[route]]
name = "checkout"
path_prefix = "/checkout"
legacy = "legacy"
modern = "modern"
stage = "canary"
weight = 0
sticky = "header:x-user-id"
debug_header = true
flag = { key = "new-checkout", modern = "on", context = ["x-plan"] }

[default]
legacy = "legacy"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_follows_the_flag_for_the_same_users_as_ofrep() {
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    let gw = TestGateway::start(
        CONFIG,
        &[("legacy", legacy.url()), ("modern", modern.url())],
    )
    .await;
    let cfg = config(
        CONFIG,
        &[("legacy", legacy.url()), ("modern", modern.url())],
    );
    let flag = &cfg.flags[0];

    // The targeting rule: pro users go to modern, though the weight is 0.
    for i in 0..20 {
        let user = format!("pro-{i}");
        let (s, h, _) = get(
            &gw.url("/checkout/1"),
            &[("x-user-id", &user), ("x-plan", "pro")],
        )
        .await;
        assert_eq!(
            (s.as_u16(), header(&h, "x-ficus-upstream")),
            (200, "modern")
        );
    }
    // The split: about 30 % of the others, each always on the same side, and exactly the
    // users the flag itself puts on `on`.
    let mut on = 0;
    for i in 0..300 {
        let user = format!("user-{i}");
        let ctx = ficus_flags::Context {
            targeting_key: Some(user.clone()),
            ..ficus_flags::Context::default()
        };
        let want = match ficus_flags::evaluate(flag, &ctx).variant.as_deref() {
            Some("on") => "modern",
            _ => "legacy",
        };
        for _ in 0..2 {
            let (_, h, _) = get(&gw.url("/checkout/1"), &[("x-user-id", &user)]).await;
            assert_eq!(header(&h, "x-ficus-upstream"), want, "{user}");
        }
        on += usize::from(want == "modern");
    }
    assert!((60..=120).contains(&on), "{on} of 300 on modern");
}

#[test]
fn a_route_flag_must_name_a_flag_and_variant_and_leave_the_weight_to_it() {
    let parse = |text: &str| {
        ficus_config::parse_str(text, "ficus.toml", std::path::Path::new("/etc/ficus"))
            .map(|_| ())
            .map_err(|d| d.to_string())
    };
    let base = CONFIG
        .replace("{legacy}", "http://127.0.0.1:9")
        .replace("{modern}", "http://127.0.0.1:8");
    parse(&base).unwrap();
    let e = parse(&base.replace("key = \"new-checkout\", modern", "key = \"nope\", modern"))
        .unwrap_err();
    assert!(
        e.contains("route \"checkout\": flag \"nope\" is not a [[flag]]"),
        "{e}"
    );
    let e =
        parse(&base.replace("modern = \"on\", context", "modern = \"yes\", context")).unwrap_err();
    assert!(
        e.contains("flag \"new-checkout\" has no variant \"yes\""),
        "{e}"
    );
    assert!(e.contains("its variants are: off, on"), "{e}");
    let line = "flag = { key = \"new-checkout\", modern = \"on\", context = [\"x-plan\"] }";
    let e = parse(&base.replace(line, &format!("{line}\n[route.rollout]\nsteps = [50, 100]")))
        .unwrap_err();
    assert!(
        e.contains("a route follows a flag or a rollout, not both"),
        "{e}"
    );
}
