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

const FORWARD: &str = r#"
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

[[flag]]
key = "theme"
variants = { dark = "dark", light = "light" }
default = "light"
[[flag.rule]]
split = { dark = 50, light = 50 }

[[route]]
name = "orders"
path_prefix = "/orders"
legacy = "legacy"
modern = "modern"
stage = "shadow"
sticky = "header:x-user-id"
forward_flags = { flags = ["new-checkout", "theme"], context = ["x-plan"] }

[default]
legacy = "legacy"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_forwards_each_requests_evaluated_flags_and_drops_a_forged_header() {
    let legacy = Upstream::start("legacy").await;
    let modern = Upstream::start("modern").await;
    let vars = [("legacy", legacy.url()), ("modern", modern.url())];
    let gw = TestGateway::start(FORWARD, &vars).await;
    let cfg = config(FORWARD, &vars);
    let theme = |user: &str| {
        ficus_flags::evaluate(
            &cfg.flags[1],
            &ficus_flags::Context {
                targeting_key: Some(user.into()),
                ..Default::default()
            },
        )
        .variant
        .unwrap()
    };
    for i in 0..20 {
        let user = format!("user-{i}");
        let plan = if i % 2 == 0 { "pro" } else { "free" };
        let (s, _, _) = get(
            &gw.url("/orders/1"),
            &[
                ("x-user-id", &user),
                ("x-plan", plan),
                ("x-ficus-flags", "new-checkout=on"),
            ],
        )
        .await;
        assert_eq!(s.as_u16(), 200);
        let want = format!(
            "new-checkout={}, theme={}",
            if plan == "pro" { "on" } else { "off" },
            theme(&user)
        );
        assert_eq!(
            header(&client_request(&legacy, &user).headers, "x-ficus-flags"),
            want
        );
    }
    // The shadow copy to modern carries the same header.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while modern.hits() < 20 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let seen = modern.last();
    assert!(
        header(&seen.headers, "x-ficus-flags").starts_with("new-checkout="),
        "{seen:?}"
    );
    // Without a sticky key the split serves nothing and is left out.
    get(&gw.url("/orders/2"), &[("x-plan", "pro")]).await;
    assert_eq!(
        header(&client_request(&legacy, "").headers, "x-ficus-flags"),
        "new-checkout=on"
    );
    // Another route forwards nothing, not even the client's header... which it passes on as
    // any other header (only a route that forwards flags owns the name).
    get(&gw.url("/other"), &[("x-ficus-flags", "mine")]).await;
    let other = legacy
        .seen
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|s| s.path == "/other")
        .cloned()
        .unwrap();
    assert_eq!(header(&other.headers, "x-ficus-flags"), "mine");
}

/// The latest request `user` sent (`""`: without `x-user-id`) that reached `up` itself,
/// not a mirror's copy: the noise sample sends legacy a second copy, marked
/// `x-ficus-shadow`, at its own pace.
fn client_request(up: &Upstream, user: &str) -> Seen {
    up.seen
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|s| {
            header(&s.headers, "x-user-id") == user && !s.headers.contains_key("x-ficus-shadow")
        })
        .cloned()
        .unwrap_or_else(|| panic!("no request of {user:?}"))
}

#[test]
fn forward_flags_must_name_flags_and_a_header_of_its_own() {
    let parse = |text: &str| {
        ficus_config::parse_str(text, "ficus.toml", std::path::Path::new("/etc/ficus"))
            .map_err(|d| d.to_string())
    };
    let base = FORWARD
        .replace("{legacy}", "http://127.0.0.1:9")
        .replace("{modern}", "http://127.0.0.1:8");
    let cfg = parse(&base).unwrap();
    let ff = cfg.routes[0].forward_flags.as_ref().unwrap();
    assert_eq!(ff.header, "x-ficus-flags");
    assert_eq!(ff.flags, ["new-checkout", "theme"]);
    let line = "forward_flags = { flags = [\"new-checkout\", \"theme\"], context = [\"x-plan\"] }";
    for (bad, want) in [
        (
            "forward_flags = { flags = [\"nope\"] }",
            "route \"orders\": forward_flags names \"nope\", which is not a [[flag]]",
        ),
        (
            "forward_flags = { flags = [] }",
            "forward_flags.flags has 0 flags; name 1 to 64",
        ),
        (
            "forward_flags = { flags = [\"theme\", \"theme\"] }",
            "forward_flags.flags names \"theme\" twice",
        ),
        (
            "forward_flags = { flags = [\"theme\"], header = \"authorization\" }",
            "forward_flags.header \"authorization\" is a header ficus or HTTP itself manages",
        ),
        (
            "forward_flags = { flags = [\"theme\"], header = \"bad header\" }",
            "forward_flags.header \"bad header\" is not a header name",
        ),
        (
            "forward_flags = { header = \"x-f\" }",
            "forward_flags has no flags",
        ),
        (
            "forward_flags = { flags = [\"theme\"], extra = 1 }",
            "extra",
        ),
    ] {
        let e = parse(&base.replace(line, bad)).unwrap_err();
        assert!(e.contains(want), "{bad}: {e}");
    }
    let custom = parse(&base.replace(
        line,
        "forward_flags = { flags = [\"theme\"], header = \"X-Flags\" }",
    ))
    .unwrap();
    assert_eq!(
        custom.routes[0].forward_flags.as_ref().unwrap().header,
        "x-flags"
    );
}
