//! `parse_str`: a complete config into the exact model, and invalid configs into the exact
//! diagnostics a user sees from `ficus validate`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ficus_config::*;
use http::{HeaderName, HeaderValue, Method, Uri};

fn parse(text: &str) -> Result<Config, Diagnostics> {
    parse_str(text, "ficus.toml", Path::new("/etc/ficus"))
}

/// The rendered diagnostics of an invalid config.
fn errors(text: &str) -> String {
    match parse(text) {
        Ok(c) => panic!("expected errors, got {c:#?}"),
        Err(d) => d.to_string(),
    }
}

/// A valid file of 11 lines: what follows it starts at line 12.
const HEAD: &str = r#"[[listener]]
bind = "127.0.0.1:8080"

[upstream.legacy]
url = "http://127.0.0.1:9001"

[upstream.modern]
url = "http://127.0.0.1:9002"

[default]
legacy = "legacy"
"#;

/// `HEAD` followed by `rest`, whose first line is line 12.
fn with_head(rest: &str) -> String {
    assert_eq!(HEAD.lines().count(), 11);
    format!("{HEAD}{rest}")
}

const FULL: &str = r#"store = "postgres://ficus@db.internal/ficus"

[gateway]
header_read_timeout = "5s"
max_header_bytes = "16KiB"
max_connections = 500
shutdown_grace = "1m"
pid_file = "run/ficus.pid"

[[listener]]
name = "public"
bind = "0.0.0.0:8443"
tls = { cert = "tls/cert.pem", key = "/secrets/key.pem" }

[[listener]]
bind = "[::1]:8080"

[upstream.legacy]
url = "http://127.0.0.1:9001/"

[upstream.modern]
url = "https://modern.internal:8443/api/v2/"
connect_timeout = "500ms"
request_timeout = "10s"
max_idle_connections = 0
pool_idle_timeout = "2m"
http2 = true
host = "upstream"
ca_file = "ca.pem"

[upstream.billing]
url = "http://billing.internal"
host = "billing.example.com"

[[route]]
name = "orders"
host = "API.Example.com"
methods = ["GET", "POST"]
template = "/orders/{id}/items"
headers = { "X-Tenant" = "acme", "x-region" = "eu" }
legacy = "legacy"
modern = "modern"
stage = "canary"
weight = 12.5
sticky = "header:X-User-Id"
max_body = "1MiB"
debug_header = true

[route.fallback]
methods = ["GET", "PUT"]
on_status = [503, 599]
on_timeout = false
max_buffered_body = "128KiB"

[[route]]
name = "health"
path = "/health"
legacy = "legacy"

[[route]]
name = "billing.v2"
host = "*.billing.example.com"
path_prefix = "/invoices/"
legacy = "billing"
modern = "modern"
stage = "retired"
weight = 100
sticky = "cookie:session"
max_body = 0
fallback = { enabled = false }

[[route]]
name = "search"
path_prefix = "/"
legacy = "legacy"
modern = "modern"
stage = "shadow"
weight = 7
sticky = "query:account"

[default]
legacy = "legacy"
modern = "modern"
stage = "modern"
max_body = "32KiB"

[access_log]
enabled = false
format = "json"
path = "logs/access.log"

[telemetry]
enabled = false

[admin]
bind = "0.0.0.0:9911"
token_file = "secrets/admin.token"
"#;

/// `[record]` as a file in /etc/ficus without one gets it.
fn default_recording() -> ficus_config::Recording {
    ficus_config::Recording {
        dir: std::path::PathBuf::from("/etc/ficus/recordings"),
        key_file: None,
        queue: 4096,
        rotate_bytes: 256 * 1024 * 1024,
        rotate_every: std::time::Duration::from_secs(3600),
        max_total: 10 * 1024 * 1024 * 1024,
    }
}

fn route(name: &str, legacy: &str) -> Route {
    Route {
        name: name.to_string(),
        matcher: RouteMatch::default(),
        legacy: legacy.to_string(),
        modern: None,
        stage: Stage::Legacy,
        weight: Weight::ZERO,
        sticky: StickyKey::ClientIp,
        fallback: FallbackPolicy::default(),
        max_body_bytes: defaults::MAX_BODY_BYTES,
        debug_header: false,
        shadow_writes: false,
        shadow: ShadowPolicy::default(),
        priority: Priority::Normal,
        rate_limit: None,
        retry: None,
        cache: None,
        rollout: None,
        slos: Vec::new(),
        flag: None,
        forward_flags: None,
        record: None,
    }
}

#[test]
fn full_config_parses_into_the_model() {
    let config = parse(FULL).unwrap_or_else(|d| panic!("{d}"));
    let expected = Config {
        gateway: Gateway {
            header_read_timeout: Duration::from_secs(5),
            max_header_bytes: 16 * 1024,
            max_connections: 500,
            shutdown_grace: Duration::from_secs(60),
            pid_file: Some(PathBuf::from("/etc/ficus/run/ficus.pid")),
            client_body_timeout: defaults::CLIENT_BODY_TIMEOUT,
            send_timeout: defaults::SEND_TIMEOUT,
        },
        listeners: vec![
            Listener {
                name: "public".into(),
                bind: "0.0.0.0:8443".parse::<SocketAddr>().unwrap(),
                tls: Some(TlsFiles {
                    cert: PathBuf::from("/etc/ficus/tls/cert.pem"),
                    key: PathBuf::from("/secrets/key.pem"),
                }),
            },
            Listener {
                name: "listener-2".into(),
                bind: "[::1]:8080".parse::<SocketAddr>().unwrap(),
                tls: None,
            },
        ],
        upstreams: vec![
            Upstream {
                name: "legacy".into(),
                url: Uri::from_static("http://127.0.0.1:9001/"),
                connect_timeout: defaults::CONNECT_TIMEOUT,
                request_timeout: defaults::REQUEST_TIMEOUT,
                max_idle_connections: defaults::MAX_IDLE_CONNECTIONS,
                pool_idle_timeout: defaults::POOL_IDLE_TIMEOUT,
                read_timeout: defaults::READ_TIMEOUT,
                http2: false,
                host: HostHeader::Preserve,
                ca_file: None,
                limit: None,
                breaker: None,
            },
            Upstream {
                name: "modern".into(),
                url: Uri::from_static("https://modern.internal:8443/api/v2"),
                connect_timeout: Duration::from_millis(500),
                request_timeout: Duration::from_secs(10),
                max_idle_connections: 0,
                pool_idle_timeout: Duration::from_secs(120),
                read_timeout: defaults::READ_TIMEOUT,
                http2: true,
                host: HostHeader::Upstream,
                ca_file: Some(PathBuf::from("/etc/ficus/ca.pem")),
                limit: None,
                breaker: None,
            },
            Upstream {
                name: "billing".into(),
                url: Uri::from_static("http://billing.internal/"),
                connect_timeout: defaults::CONNECT_TIMEOUT,
                request_timeout: defaults::REQUEST_TIMEOUT,
                max_idle_connections: defaults::MAX_IDLE_CONNECTIONS,
                pool_idle_timeout: defaults::POOL_IDLE_TIMEOUT,
                read_timeout: defaults::READ_TIMEOUT,
                http2: false,
                host: HostHeader::Fixed("billing.example.com".into()),
                ca_file: None,
                limit: None,
                breaker: None,
            },
        ],
        routes: vec![
            Route {
                matcher: RouteMatch {
                    host: Some("api.example.com".into()),
                    methods: vec![Method::GET, Method::POST],
                    path: PathMatch::Template("/orders/{id}/items".into()),
                    headers: vec![
                        (
                            HeaderName::from_static("x-tenant"),
                            HeaderValue::from_static("acme"),
                        ),
                        (
                            HeaderName::from_static("x-region"),
                            HeaderValue::from_static("eu"),
                        ),
                    ],
                },
                modern: Some("modern".into()),
                stage: Stage::Canary,
                weight: Weight::from_basis_points(1250).unwrap(),
                sticky: StickyKey::Header(HeaderName::from_static("x-user-id")),
                fallback: FallbackPolicy {
                    enabled: true,
                    methods: vec![Method::GET, Method::PUT],
                    on_status: vec![503, 599],
                    on_timeout: false,
                    max_buffered_body: 128 * 1024,
                },
                max_body_bytes: 1024 * 1024,
                debug_header: true,
                ..route("orders", "legacy")
            },
            Route {
                matcher: RouteMatch {
                    path: PathMatch::Exact("/health".into()),
                    ..RouteMatch::default()
                },
                ..route("health", "legacy")
            },
            Route {
                matcher: RouteMatch {
                    host: Some("*.billing.example.com".into()),
                    path: PathMatch::Prefix("/invoices".into()),
                    ..RouteMatch::default()
                },
                modern: Some("modern".into()),
                stage: Stage::Retired,
                weight: Weight::MAX,
                sticky: StickyKey::Cookie("session".into()),
                // max_body 0: the default buffer limit shrinks to fit.
                fallback: FallbackPolicy {
                    enabled: false,
                    max_buffered_body: 0,
                    ..FallbackPolicy::default()
                },
                max_body_bytes: 0,
                ..route("billing.v2", "billing")
            },
            Route {
                matcher: RouteMatch {
                    path: PathMatch::Prefix("/".into()),
                    ..RouteMatch::default()
                },
                modern: Some("modern".into()),
                stage: Stage::Shadow,
                weight: Weight::from_percent(7.0).unwrap(),
                sticky: StickyKey::Query("account".into()),
                ..route("search", "legacy")
            },
        ],
        default_route: Route {
            modern: Some("modern".into()),
            stage: Stage::Modern,
            max_body_bytes: 32 * 1024,
            fallback: FallbackPolicy {
                max_buffered_body: 32 * 1024,
                ..FallbackPolicy::default()
            },
            ..route("default", "legacy")
        },
        access_log: AccessLog {
            enabled: false,
            format: LogFormat::Json,
            path: Some(PathBuf::from("/etc/ficus/logs/access.log")),
        },
        telemetry: Telemetry { enabled: false },
        admin: Admin {
            enabled: true,
            bind: "0.0.0.0:9911".parse().unwrap(),
            token_file: Some(PathBuf::from("/etc/ficus/secrets/admin.token")),
            ..Admin::default()
        },
        store: "postgres://ficus@db.internal/ficus".into(),
        verify: Vec::new(),
        shadow: ShadowSettings::default(),
        webhooks: Vec::new(),
        node: Node::default(),
        fleet: FleetSettings::default(),
        redact: Redaction::default(),
        tracing: Tracing::default(),
        slo: SloSettings::default(),
        flags: Vec::new(),
        ofrep: Ofrep::default(),
        recording: default_recording(),
        migrations: Vec::new(),
    };
    assert_eq!(config, expected);
    assert_eq!(config.upstreams[0].path_prefix(), "");
    assert_eq!(config.upstreams[1].path_prefix(), "/api/v2");
    let names: Vec<&str> = config.all_routes().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["orders", "health", "billing.v2", "search", "default"]
    );
}

#[test]
fn minimal_config_gets_every_default() {
    let config = parse(HEAD).unwrap_or_else(|d| panic!("{d}"));
    let upstream = |name: &str, url: &'static str| Upstream {
        name: name.into(),
        url: Uri::from_static(url),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(30),
        max_idle_connections: 64,
        pool_idle_timeout: Duration::from_secs(90),
        read_timeout: Duration::from_secs(60),
        http2: false,
        host: HostHeader::Preserve,
        ca_file: None,
        limit: None,
        breaker: None,
    };
    let expected = Config {
        gateway: Gateway {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 32 * 1024,
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(30),
            pid_file: None,
            client_body_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
        },
        listeners: vec![Listener {
            name: "listener-1".into(),
            bind: "127.0.0.1:8080".parse().unwrap(),
            tls: None,
        }],
        upstreams: vec![
            upstream("legacy", "http://127.0.0.1:9001/"),
            upstream("modern", "http://127.0.0.1:9002/"),
        ],
        routes: vec![],
        default_route: Route {
            name: "default".into(),
            matcher: RouteMatch {
                host: None,
                methods: vec![],
                path: PathMatch::Any,
                headers: vec![],
            },
            legacy: "legacy".into(),
            modern: None,
            stage: Stage::Legacy,
            weight: Weight::ZERO,
            sticky: StickyKey::ClientIp,
            fallback: FallbackPolicy {
                enabled: true,
                methods: vec![Method::GET, Method::HEAD, Method::OPTIONS],
                on_status: vec![502, 503, 504],
                on_timeout: true,
                max_buffered_body: 64 * 1024,
            },
            max_body_bytes: 10 * 1024 * 1024,
            debug_header: false,
            shadow_writes: false,
            shadow: ShadowPolicy::default(),
            priority: Priority::Normal,
            rate_limit: None,
            retry: None,
            cache: None,
            rollout: None,
            slos: Vec::new(),
            flag: None,
            forward_flags: None,
            record: None,
        },
        access_log: AccessLog {
            enabled: true,
            format: LogFormat::Text,
            path: None,
        },
        telemetry: Telemetry { enabled: true },
        admin: Admin {
            enabled: true,
            bind: "127.0.0.1:9901".parse().unwrap(),
            token_file: None,
            ..Admin::default()
        },
        store: "sqlite:///etc/ficus/ficus.db".into(),
        verify: Vec::new(),
        shadow: ShadowSettings::default(),
        webhooks: Vec::new(),
        node: Node::default(),
        fleet: FleetSettings::default(),
        redact: Redaction::default(),
        tracing: Tracing::default(),
        slo: SloSettings::default(),
        flags: Vec::new(),
        ofrep: Ofrep::default(),
        recording: default_recording(),
        migrations: Vec::new(),
    };
    assert_eq!(config, expected);
}

#[test]
fn upstreams_keep_file_order() {
    let text = r#"[[listener]]
bind = "127.0.0.1:8080"
[upstream.zulu]
url = "http://z:1"
[upstream.alpha]
url = "http://a:1"
[upstream.mike]
url = "http://m:1"
[default]
legacy = "mike"
"#;
    let config = parse(text).unwrap();
    let names: Vec<&str> = config.upstreams.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["zulu", "alpha", "mike"]);
    assert_eq!(config.upstream("alpha").unwrap().url, "http://a:1/");
}

#[test]
fn load_resolves_paths_against_the_file_folder() {
    let dir = std::env::temp_dir().join(format!("ficus-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ficus.toml");
    std::fs::write(
        &file,
        format!("{HEAD}[access_log]\npath = \"access.log\"\n"),
    )
    .unwrap();
    let config = load(&file).unwrap();
    assert_eq!(config.access_log.path, Some(dir.join("access.log")));

    let missing = dir.join("missing.toml");
    let err = load(&missing).unwrap_err();
    assert!(matches!(err, LoadError::Io { .. }), "{err:?}");
    assert!(err
        .to_string()
        .starts_with(&format!("cannot read config file {}: ", missing.display())));

    std::fs::write(&file, "[gateway\n").unwrap();
    let err = load(&file).unwrap_err();
    let LoadError::Invalid(d) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(d.origin, file.display().to_string());
    assert_eq!(d.items.len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- invalid configs: the exact diagnostics -------------------------------------------------

#[test]
fn unknown_upstream_with_suggestion() {
    let text = with_head(
        r#"[[route]]
name = "orders"
path_prefix = "/orders"
legacy = "legacy"
modern = "modrn"
stage = "shadow"
"#,
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:16:10: error: route "orders": unknown upstream "modrn"
  help: did you mean "modern"? known upstreams: legacy, modern"#
    );
}

#[test]
fn unknown_upstream_without_near_name_lists_the_known_ones() {
    let text = with_head(
        r#"[[route]]
name = "orders"
legacy = "billing"
"#,
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:14:10: error: route "orders": unknown upstream "billing"
  help: known upstreams: legacy, modern"#
    );
}

#[test]
fn unknown_stage() {
    let text = with_head(
        r#"[[route]]
name = "orders"
legacy = "legacy"
modern = "modern"
stage = "canry"
"#,
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:16:9: error: route "orders": unknown stage "canry"
  help: did you mean "canary"? stages are legacy, shadow, canary, modern and retired"#
    );
}

#[test]
fn weight_out_of_range() {
    let text = with_head(
        r#"[[route]]
name = "orders"
legacy = "legacy"
modern = "modern"
stage = "canary"
weight = 101
"#,
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:17:10: error: route "orders": weight 101 is out of range
  help: weight is the percentage of sticky keys that modern answers: a number from 0 to 100"#
    );
}

#[test]
fn weight_too_precise() {
    let text = with_head(
        r#"[[route]]
name = "orders"
legacy = "legacy"
modern = "modern"
stage = "canary"
weight = 12.345
"#,
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:17:10: error: route "orders": weight 12.345 has more than two decimals
  help: weights go in steps of 0.01 percent; use 12.34 or 12.35"#
    );
}

#[test]
fn weight_as_a_string() {
    let text = with_head(
        r#"[[route]]
name = "orders"
legacy = "legacy"
weight = "25%"
"#,
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:15:10: error: route "orders": weight must be a number from 0 to 100, found string "25%"
  help: write the percentage as a bare number, e.g. weight = 25 or weight = 2.5"#
    );
}

#[test]
fn bad_sticky() {
    let text = with_head(
        r#"[[route]]
name = "orders"
legacy = "legacy"
sticky = "session"

[[route]]
name = "users"
legacy = "legacy"
sticky = "headers:X-User-Id"

[[route]]
name = "carts"
legacy = "legacy"
sticky = "cookie:"
"#,
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:15:10: error: route "orders": invalid sticky key "session"
  help: use "client-ip", "header:NAME", "cookie:NAME" or "query:NAME", e.g. "header:x-user-id"
ficus.toml:20:10: error: route "users": invalid sticky key "headers:X-User-Id"
  help: did you mean "header:X-User-Id"? use "client-ip", "header:NAME", "cookie:NAME" or "query:NAME", e.g. "header:x-user-id"
ficus.toml:25:10: error: route "carts": invalid sticky key "cookie:": the cookie name is empty
  help: name the cookie, e.g. "cookie:session""#
    );
}

#[test]
fn duplicate_route_names() {
    let text = with_head(
        r#"[[route]]
name = "orders"
path_prefix = "/orders"
legacy = "legacy"

[[route]]
name = "orders"
path_prefix = "/v2/orders"
legacy = "legacy"
"#,
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:18:8: error: duplicate route name "orders"
  help: the first route named "orders" is at line 13; route names must be unique"#
    );
}

#[test]
fn two_path_matchers_on_one_route() {
    let text = with_head(
        r#"[[route]]
name = "orders"
path_prefix = "/orders"
template = "/orders/{id}"
legacy = "legacy"
"#,
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:15:1: error: route "orders": both path_prefix and template are set
  help: a route matches on at most one of path_prefix, path and template; use one route for each"#
    );
}

#[test]
fn template_with_bad_segment() {
    let text = with_head(
        r#"[[route]]
name = "items"
template = "/orders/{id/items"
legacy = "legacy"

[[route]]
name = "pairs"
template = "/a/{id}/b/{id}"
legacy = "legacy"
"#,
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:14:12: error: route "items": template "/orders/{id/items" has an invalid segment "{id"
  help: a segment is either literal text or a whole {name} placeholder (letters, digits, _), e.g. "/orders/{id}/items"
ficus.toml:19:12: error: route "pairs": template "/a/{id}/b/{id}" uses {id} twice
  help: give each placeholder its own name, e.g. {order} and {item}"#
    );
}

#[test]
fn bad_duration() {
    let text = r#"[[listener]]
bind = "127.0.0.1:8080"

[upstream.legacy]
url = "http://127.0.0.1:9001"
connect_timeout = "10 parsecs"
request_timeout = 30
pool_idle_timeout = "90sec"

[default]
legacy = "legacy"
"#;
    assert_eq!(
        errors(text),
        r#"ficus.toml:6:19: error: upstream "legacy": connect_timeout "10 parsecs" has an unknown unit "parsecs"
  help: write connect_timeout = "10s": a whole number and a unit (ms, s, m or h), e.g. "250ms", "10s", "5m"
ficus.toml:7:19: error: upstream "legacy": request_timeout 30 has no unit
  help: durations are strings with a unit: request_timeout = "30s" or "30ms"
ficus.toml:8:21: error: upstream "legacy": pool_idle_timeout "90sec" has an unknown unit "sec"
  help: did you mean "90s"? write pool_idle_timeout = "10s": a whole number and a unit (ms, s, m or h), e.g. "250ms", "10s", "5m""#
    );
}

#[test]
fn bad_size() {
    let text = with_head(
        r#"[[route]]
name = "uploads"
legacy = "legacy"
max_body = "10MB"

[[route]]
name = "avatars"
legacy = "legacy"
max_body = "lots"
"#,
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:15:12: error: route "uploads": max_body "10MB" has an unknown unit "MB"
  help: did you mean "10MiB"? sizes use binary units (1KiB = 1024 bytes): B, KiB, MiB, GiB; decimal units such as MB are not accepted
ficus.toml:20:12: error: route "avatars": max_body "lots" does not start with a number
  help: write max_body = 65536 (bytes), or a whole number and a binary unit (B, KiB, MiB or GiB) in quotes, e.g. max_body = "64KiB""#
    );
}

#[test]
fn unknown_key_with_suggestion() {
    let text = with_head(
        r#"[[route]]
name = "orders"
legacy = "legacy"
modern = "modern"
stage = "canary"
wieght = 10

[route.fallback]
enabeld = false
"#,
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:17:1: error: route "orders": unknown key "wieght"
  help: did you mean "weight"?
ficus.toml:20:1: error: route "orders": unknown key "fallback.enabeld"
  help: did you mean "fallback.enabled"?"#
    );
}

#[test]
fn unknown_key_without_near_name_lists_the_known_ones() {
    let text = format!("[access_log]\nrotate = true\n{HEAD}");
    assert_eq!(
        errors(&text),
        r#"ficus.toml:2:1: error: [access_log]: unknown key "rotate"
  help: [access_log] keys are: enabled, format, path"#
    );
}

#[test]
fn unknown_top_level_table() {
    let text = with_head("[[routes]]\nname = \"x\"\n");
    assert_eq!(
        errors(&text),
        r#"ficus.toml:12:3: error: unknown top-level key "routes"
  help: did you mean [[route]]?"#
    );
}

#[test]
fn misspelled_section_is_not_also_reported_missing() {
    let text = r#"[[listener]]
bind = "127.0.0.1:8080"

[upstreams.legacy]
url = "http://127.0.0.1:9001"

[default]
legacy = "legacy"
"#;
    assert_eq!(
        errors(text),
        r#"ficus.toml:4:2: error: unknown top-level key "upstreams"
  help: did you mean [upstream.NAME]?"#
    );
}

#[test]
fn two_listeners_on_port_zero_do_not_collide() {
    let text = format!(
        "{HEAD}[[listener]]\nbind = \"127.0.0.1:0\"\n[[listener]]\nbind = \"127.0.0.1:0\"\n"
    );
    assert_eq!(parse(&text).unwrap().listeners.len(), 3);
}

#[test]
fn missing_default_route() {
    let text = r#"[[listener]]
bind = "127.0.0.1:8080"

[upstream.monolith]
url = "http://127.0.0.1:9001"
"#;
    assert_eq!(
        errors(text),
        r#"ficus.toml:1:1: error: missing [default] route
  help: add the catch-all route, which takes every request no [[route]] matches:
        [default]
        legacy = "monolith""#
    );
}

#[test]
fn no_listener() {
    let text = r#"[upstream.legacy]
url = "http://127.0.0.1:9001"

[default]
legacy = "legacy"
"#;
    assert_eq!(
        errors(text),
        r#"ficus.toml:1:1: error: no [[listener]] configured: ficus would not accept any connection
  help: add one:
        [[listener]]
        bind = "0.0.0.0:8080""#
    );
}

#[test]
fn canary_without_modern() {
    let text = with_head(
        r#"[[route]]
name = "orders"
legacy = "legacy"
stage = "canary"
weight = 5
"#,
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:15:9: error: route "orders": stage "canary" needs a modern upstream
  help: add modern = "..." naming the new service's upstream"#
    );
}

#[test]
fn modern_same_as_legacy() {
    let text = with_head(
        r#"[[route]]
name = "orders"
legacy = "legacy"
modern = "legacy"
stage = "shadow"
"#,
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:15:10: error: route "orders": modern and legacy are both "legacy"
  help: modern names the new service's upstream; it must differ from legacy"#
    );
}

#[test]
fn toml_syntax_error() {
    let text = "[gateway]\nmax_connections = \n";
    assert_eq!(
        errors(text),
        "ficus.toml:2:19: error: TOML syntax error: string values must be quoted, expected literal string\n  help: give max_connections a value after the =: text in quotes (\"...\"), a number, true or false"
    );
    let text = with_head("[default]\nlegacy = \"modern\"\n");
    assert_eq!(
        errors(&text),
        r#"ficus.toml:12:2: error: TOML syntax error: duplicate key "default"
  help: a key can appear only once in a table; remove or rename one of them"#
    );
}

#[test]
fn max_header_bytes_too_small() {
    let text = format!("[gateway]\nmax_header_bytes = 4096\n\n{HEAD}");
    assert_eq!(
        errors(&text),
        r#"ficus.toml:2:20: error: [gateway]: max_header_bytes 4096 is below the minimum of 8KiB
  help: the HTTP/1 parser needs room for at least 8192 bytes of request head; use "8KiB" or more (default "32KiB")"#
    );
}

#[test]
fn fallback_buffer_larger_than_max_body() {
    let text = with_head(
        r#"[[route]]
name = "uploads"
legacy = "legacy"
modern = "modern"
stage = "modern"
max_body = "64KiB"
fallback = { max_buffered_body = "1MiB" }
"#,
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:18:34: error: route "uploads": fallback.max_buffered_body (1MiB) is larger than max_body (64KiB)
  help: only a body the route accepts can be buffered; lower fallback.max_buffered_body to at most "64KiB" or raise max_body"#
    );
}

#[test]
fn default_route_rejects_matchers() {
    let text = r#"[[listener]]
bind = "127.0.0.1:8080"

[upstream.legacy]
url = "http://127.0.0.1:9001"

[default]
name = "catch-all"
legacy = "legacy"
path_prefix = "/"
"#;
    assert_eq!(
        errors(text),
        r#"ficus.toml:8:1: error: default route: name is not allowed: the default route is always named "default"
  help: remove name
ficus.toml:10:1: error: default route: path_prefix is not allowed: the default route matches every request
  help: move path_prefix into a [[route]]; [default] takes every request no route matches"#
    );
}

#[test]
fn listener_problems() {
    let text = r#"[[listener]]
name = "public"
bind = "0.0.0.0:8080"

[[listener]]
name = "public"
bind = "0.0.0.0:8080"

[[listener]]
bind = "localhost:8081"
tls = { cert = "cert.pem" }

[upstream.legacy]
url = "http://127.0.0.1:9001"

[default]
legacy = "legacy"
"#;
    assert_eq!(
        errors(text),
        r#"ficus.toml:6:8: error: duplicate listener name "public"
  help: the first listener named "public" is at line 2; listener names must be unique
ficus.toml:7:8: error: listener "public": bind 0.0.0.0:8080 is already used by listener "public"
  help: each listener needs its own address and port
ficus.toml:10:8: error: listener #3: bind "localhost:8081" is not an IP address and port
  help: write an IP address and a port, e.g. "0.0.0.0:8080", "127.0.0.1:8080" or "[::]:8443" (host names are not resolved)
ficus.toml:11:7: error: listener #3: missing tls.key
  help: add key = "FILE", the path of the private key (PEM)"#
    );
}

#[test]
fn upstream_problems() {
    let text = r#"[[listener]]
bind = "127.0.0.1:8080"

[upstream.legacy]
url = "ftp://legacy.internal"

[upstream.modern]
url = "http://modern.internal?v=2"

[upstream.search]
url = "http://search.internal:8080"
ca_file = "ca.pem"
max_idle_connections = -1

[upstream.billing]
connect_timeout = "1s"

[default]
legacy = "legacy"
"#;
    assert_eq!(
        errors(text),
        r#"ficus.toml:5:7: error: upstream "legacy": url "ftp://legacy.internal" must use http:// or https://
  help: ficus speaks HTTP to its upstreams, e.g. "http://10.0.0.5:8080" or "https://orders.internal/api"
ficus.toml:8:7: error: upstream "modern": url "http://modern.internal?v=2" must not have a query string
  help: an upstream url is a scheme, a host, an optional port and an optional path prefix, e.g. "http://10.0.0.5:8080" or "https://orders.internal/api"
ficus.toml:12:11: error: upstream "search": ca_file is set but url is not https
  help: ca_file adds trusted roots for TLS to the upstream; use an https:// url or remove ca_file
ficus.toml:13:24: error: upstream "search": max_idle_connections -1 is out of range
  help: the number of idle connections kept open to this upstream: 0 or more (default 64)
ficus.toml:15:1: error: upstream "billing": missing url
  help: add the service's address, e.g. url = "http://127.0.0.1:9001""#
    );
}

#[test]
fn route_matcher_problems() {
    let text = with_head(
        r#"[[route]]
name = "api"
host = "api.example.com:443"
methods = ["get", "POST", "POST", "GE T"]
path_prefix = "orders"
headers = { "x tenant" = "acme" }
legacy = "legacy"
"#,
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:14:8: error: route "api": host "api.example.com:443" must not include a port
  help: hosts are matched without the port: write host = "api.example.com"
ficus.toml:15:12: error: route "api": method "get" in methods must be upper-case
  help: write "GET"
ficus.toml:15:27: error: route "api": method "POST" is listed twice in methods
  help: remove the second "POST"
ficus.toml:15:35: error: route "api": invalid method "GE T" in methods
  help: methods are upper-case HTTP method names such as "GET" or "POST"
ficus.toml:16:15: error: route "api": path_prefix "orders" must start with "/"
  help: write path_prefix = "/orders"
ficus.toml:17:13: error: route "api": invalid header name "x tenant" in headers
  help: header names are letters, digits and !#$%&'*+-.^_`|~ (no spaces or colons)"#
    );
}

#[test]
fn fallback_problems() {
    let text = with_head(
        r#"[[route]]
name = "orders"
legacy = "legacy"
modern = "modern"
stage = "modern"

[route.fallback]
on_status = [404, 503, 503]
on_timeout = "yes"
"#,
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:19:14: error: route "orders": fallback.on_status 404 is not a 5xx status
  help: fallback only retries server errors, 500 to 599; any other status from modern is an answer
ficus.toml:19:24: error: route "orders": status 503 is listed twice in fallback.on_status
  help: remove the second 503
ficus.toml:20:14: error: route "orders": fallback.on_timeout must be true or false, found string "yes"
  help: write on_timeout = true or on_timeout = false"#
    );
}

#[test]
fn multiple_errors_are_reported_together_in_file_order() {
    let text = r#"[gateway]
max_connections = 0

[upstream.legacy]
url = "http://127.0.0.1:9001"

[upstream.modern]
url = "http://127.0.0.1:9002"

[[route]]
name = "orders"
legacy = "legacy"
modern = "modrn"
stage = "canary"
weight = 150

[[route]]
legacy = "legacy"
sticky = "ip"

[access_log]
format = "jsn"
"#;
    assert_eq!(
        errors(text),
        r#"ficus.toml:1:1: error: no [[listener]] configured: ficus would not accept any connection
  help: add one:
        [[listener]]
        bind = "0.0.0.0:8080"
ficus.toml:1:1: error: missing [default] route
  help: add the catch-all route, which takes every request no [[route]] matches:
        [default]
        legacy = "legacy"
ficus.toml:2:19: error: [gateway]: max_connections 0 is out of range
  help: max_connections is how many client connections are served at once: at least 1 (default 10000)
ficus.toml:13:10: error: route "orders": unknown upstream "modrn"
  help: did you mean "modern"? known upstreams: legacy, modern
ficus.toml:15:10: error: route "orders": weight 150 is out of range
  help: weight is the percentage of sticky keys that modern answers: a number from 0 to 100
ficus.toml:17:1: error: route #2 has no name
  help: add name = "..."; the name identifies the route in logs, metrics and commands (names use letters, digits, '_', '.' and '-')
ficus.toml:19:10: error: route #2: invalid sticky key "ip"
  help: use "client-ip", "header:NAME", "cookie:NAME" or "query:NAME", e.g. "header:x-user-id"
ficus.toml:22:10: error: [access_log]: unknown format "jsn"
  help: did you mean "json"? formats are "text" and "json""#
    );
    // Every problem is a separate item, in file order.
    let d = parse(text).unwrap_err();
    assert_eq!(d.items.len(), 8);
    let positions: Vec<(usize, usize)> = d.items.iter().map(|i| (i.line, i.col)).collect();
    let mut sorted = positions.clone();
    sorted.sort();
    assert_eq!(positions, sorted);
}

#[test]
fn single_brackets_for_a_list_section() {
    let text = r#"[listener]
bind = "127.0.0.1:8080"

[upstream.legacy]
url = "http://127.0.0.1:9001"

[default]
legacy = "legacy"
"#;
    assert_eq!(
        errors(text),
        r#"ficus.toml:1:1: error: listener must be an array of tables: write [[listener]]
  help: use double brackets, [[listener]], once for each listener: a file can have several"#
    );
}

// ---- Weight ---------------------------------------------------------------------------------

#[test]
fn weight_from_percent() {
    let bp = |p: f64| Weight::from_percent(p).map(Weight::basis_points);
    assert_eq!(bp(0.0), Some(0));
    assert_eq!(bp(100.0), Some(10_000));
    assert_eq!(bp(25.0), Some(2500));
    assert_eq!(bp(0.5), Some(50));
    assert_eq!(bp(12.34), Some(1234));
    assert_eq!(bp(0.01), Some(1));
    assert_eq!(bp(33.33), Some(3333));
    assert_eq!(bp(12.345), None);
    assert_eq!(bp(0.001), None);
    assert_eq!(bp(100.01), None);
    assert_eq!(bp(-1.0), None);
    assert_eq!(bp(f64::NAN), None);
    assert_eq!(bp(f64::INFINITY), None);
    assert_eq!(Weight::from_basis_points(10_001), None);
    assert_eq!(Weight::from_percent(12.5).unwrap().to_string(), "12.50%");
    assert_eq!(Weight::from_percent(5.0).unwrap().to_string(), "5%");
    assert_eq!(Weight::from_percent(0.25).unwrap().percent(), 0.25);
}

#[test]
fn every_two_decimal_weight_parses() {
    for bp in 0..=10_000u16 {
        let text = with_head(&format!(
            "[[route]]\nname = \"r\"\nlegacy = \"legacy\"\nweight = {}.{:02}\n",
            bp / 100,
            bp % 100
        ));
        let config = parse(&text).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(config.routes[0].weight.basis_points(), bp);
    }
}

// ---- docs -----------------------------------------------------------------------------------

#[test]
fn the_documented_example_is_valid() {
    let doc = include_str!("../../../docs/configuration.md");
    let start = doc
        .find("## Complete example")
        .expect("the example section");
    let block = &doc[start..];
    let block = &block[block.find("```toml\n").expect("a toml block") + "```toml\n".len()..];
    let block = &block[..block.find("```").expect("end of the block")];
    let config = parse(block).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(config.listeners.len(), 2);
    assert_eq!(config.routes.len(), 3);
    assert_eq!(config.routes[1].weight, Weight::from_percent(12.5).unwrap());
    assert_eq!(config.upstream("modern").unwrap().path_prefix(), "/api");
}

#[test]
fn idle_timeouts_parse_and_zero_is_refused() {
    let text = format!("[gateway]\nclient_body_timeout = \"5s\"\nsend_timeout = \"90s\"\n{HEAD}")
        .replace(
            "url = \"http://127.0.0.1:9001\"",
            "url = \"http://127.0.0.1:9001\"\nread_timeout = \"2m\"",
        );
    let config = parse(&text).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(config.gateway.client_body_timeout, Duration::from_secs(5));
    assert_eq!(config.gateway.send_timeout, Duration::from_secs(90));
    assert_eq!(config.upstreams[0].read_timeout, Duration::from_secs(120));
    let text = format!("[gateway]\nclient_body_timeout = \"0s\"\n{HEAD}");
    assert_eq!(
        errors(&text),
        r#"ficus.toml:2:23: error: [gateway]: client_body_timeout "0s" must be greater than zero
  help: write client_body_timeout = "10s": a whole number and a unit (ms, s, m or h), e.g. "250ms", "10s", "5m""#
    );
}

#[test]
fn the_documented_defaults_are_the_code_defaults() {
    let doc = include_str!("../../../docs/configuration.md");
    let row = |key: &str| {
        doc.lines()
            .find(|l| l.starts_with(&format!("| `{key}` |")))
            .unwrap_or_else(|| panic!("no row for {key}"))
            .to_string()
    };
    // The documented defaults are written in seconds.
    let d = |v: Duration| format!("`\"{}s\"`", v.as_secs());
    let s = |v: u64| format!("`\"{}\"`", units::format_size(v));
    assert!(row("header_read_timeout").contains(&d(defaults::HEADER_READ_TIMEOUT)));
    assert!(row("max_header_bytes").contains(&s(defaults::MAX_HEADER_BYTES)));
    assert!(row("max_header_bytes").contains(&s(defaults::MIN_HEADER_BYTES)));
    assert!(row("max_connections").contains(&format!("`{}`", defaults::MAX_CONNECTIONS)));
    assert!(row("shutdown_grace").contains(&d(defaults::SHUTDOWN_GRACE)));
    assert!(row("client_body_timeout").contains(&d(defaults::CLIENT_BODY_TIMEOUT)));
    assert!(row("send_timeout").contains(&d(defaults::SEND_TIMEOUT)));
    assert!(row("connect_timeout").contains(&d(defaults::CONNECT_TIMEOUT)));
    assert!(row("request_timeout").contains(&d(defaults::REQUEST_TIMEOUT)));
    assert!(row("max_idle_connections").contains(&format!("`{}`", defaults::MAX_IDLE_CONNECTIONS)));
    assert!(row("pool_idle_timeout").contains(&d(defaults::POOL_IDLE_TIMEOUT)));
    assert!(row("read_timeout").contains(&d(defaults::READ_TIMEOUT)));
    assert!(row("max_body").contains(&s(defaults::MAX_BODY_BYTES)));
    assert!(row("max_buffered_body").contains(&s(defaults::MAX_BUFFERED_BODY)));
    assert!(doc.contains(&format!("queue of {}", defaults::ACCESS_LOG_QUEUE)));
    assert!(doc.contains(&format!("first {MAX_DIAGNOSTICS} problems")));
    assert!(doc.contains(&format!(
        "at most {} ({} bytes",
        units::format_size(defaults::MAX_CONFIG_BYTES as u64),
        defaults::MAX_CONFIG_BYTES
    )));
}

#[test]
fn admin_store_and_telemetry_problems() {
    let text = format!(
        "store = \"mysql://db/ficus\"\n{}\n[admin]\nbind = \"localhost\"\nport = 9901\n\n[telemetry]\nenabled = \"yes\"\n",
        HEAD.trim_end()
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:1:9: error: store: unsupported URL "mysql://db/ficus"
  help: the store is SQLite (store = "sqlite://ficus.db", the default) or PostgreSQL (store = "postgres://user@host/db")
ficus.toml:14:8: error: [admin]: bind "localhost" is not an address
  help: write IP:PORT, e.g. bind = "127.0.0.1:9901"
ficus.toml:15:1: error: [admin]: unknown key "port"
  help: [admin] keys are: enabled, bind, token_file, read_token_file, reads, allowed_hosts
ficus.toml:18:11: error: [telemetry]: enabled must be true or false, found string "yes"
  help: write enabled = true or enabled = false"#
    );
}

#[test]
fn verify_jobs_parse_with_defaults_and_resolved_sqlite_paths() {
    let text = format!(
        r#"{HEAD}
[[route]]
name = "orders"
path_prefix = "/orders"
legacy = "legacy"

[[verify]]
name = "orders-table"
route = "orders"
source = "postgres://ficus@legacy-db/shop"
target = "sqlite://data/modern.db"
source_table = "public.orders"
target_table = "orders"
key = ["id"]
columns = ["total", "status"]
map = {{ total = "amount" }}
where = "created_at > '2024-01-01'"
tolerance = {{ total = 0.01 }}
expr = {{ status_code = "CASE status WHEN 'open' THEN 1 ELSE 0 END", note = "split_part(tags, ';', 1)" }}
every = "5m"
max_connections = 2
watermark = "updated_at"
watermark_overlap = "5s"
full_every = "6h"

[[verify]]
name = "minimal"
source = "sqlite:a.db"
target = "mysql://root@db/shop"
source_table = "t"
target_table = "t"
key = ["a", "b"]
"#
    );
    let config = parse(&text).expect("valid");
    assert_eq!(config.verify.len(), 2);
    let j = &config.verify[0];
    assert_eq!(
        *j,
        VerifyJob {
            name: "orders-table".into(),
            route: Some("orders".into()),
            source: "postgres://ficus@legacy-db/shop".into(),
            target: "sqlite:///etc/ficus/data/modern.db".into(),
            source_table: "public.orders".into(),
            target_table: "orders".into(),
            key: vec!["id".into()],
            columns: vec!["total".into(), "status".into()],
            map: vec![("total".into(), "amount".into())],
            where_clause: Some("created_at > '2024-01-01'".into()),
            tolerance: vec![("total".into(), 0.01)],
            expr: vec![
                (
                    "status_code".into(),
                    "CASE status WHEN 'open' THEN 1 ELSE 0 END".into()
                ),
                ("note".into(), "split_part(tags, ';', 1)".into()),
            ],
            every: Duration::from_secs(300),
            max_connections: 2,
            watermark: Some("updated_at".into()),
            watermark_overlap: Some(VerifyOverlap::Duration(Duration::from_secs(5))),
            full_every: Some(Duration::from_secs(6 * 3600)),
            recheck: None,
        }
    );
    let m = &config.verify[1];
    assert_eq!(m.route, None);
    assert_eq!(m.source, "sqlite:///etc/ficus/a.db");
    assert_eq!(m.every, defaults::VERIFY_EVERY);
    assert_eq!(m.max_connections, defaults::VERIFY_MAX_CONNECTIONS);
    assert!(
        m.columns.is_empty() && m.map.is_empty() && m.tolerance.is_empty() && m.expr.is_empty()
    );
    assert_eq!(
        (m.watermark.as_deref(), m.watermark_overlap, m.full_every),
        (None, None, None)
    );
}

#[test]
fn verify_incremental_settings() {
    let job = |extra: &str| {
        format!(
            "[[verify]]\nname = \"j\"\nsource = \"sqlite://a.db\"\ntarget = \"sqlite://b.db\"\n\
             source_table = \"t\"\ntarget_table = \"t\"\nkey = [\"id\"]\n{extra}"
        )
    };
    // An integer watermark with a count overlap; full_every defaults to a day.
    let config = parse(&with_head(&job(
        "watermark = \"version\"\nwatermark_overlap = 100\n",
    )))
    .expect("valid");
    let j = &config.verify[0];
    assert_eq!(j.watermark.as_deref(), Some("version"));
    assert_eq!(j.watermark_overlap, Some(VerifyOverlap::Count(100)));
    assert_eq!(j.full_every, Some(defaults::VERIFY_FULL_EVERY));
    assert_eq!(defaults::VERIFY_FULL_EVERY, Duration::from_secs(24 * 3600));

    let text = with_head(&job(
        "watermark = \"  \"\nwatermark_overlap = -1\nfull_every = \"5s\"\n",
    ));
    assert_eq!(
        errors(&text),
        r#"ficus.toml:19:13: error: verify "j": watermark is empty
  help: name the source column every write advances, e.g. watermark = "updated_at" (a timestamp) or "version" (an integer)
ficus.toml:20:21: error: verify "j": watermark_overlap -1 is negative
  help: a count of versions of an integer watermark, 0 or more
ficus.toml:21:14: error: verify "j": full_every "5s" is shorter than every (1h)
  help: a full run comes at most once per run: full_every = "1h" or more (default "24h")"#
    );
    let text = with_head(&job("watermark_overlap = \"5d\"\nfull_every = \"2h\"\n"));
    assert_eq!(
        errors(&text),
        r#"ficus.toml:19:21: error: verify "j": watermark_overlap "5d" has an unknown unit "d"
  help: a duration for a timestamp watermark (watermark_overlap = "5s"), a count for an integer one (watermark_overlap = 100), or 0 for none
ficus.toml:19:21: error: verify "j": watermark_overlap without a watermark
  help: the overlap is subtracted from the watermark of incremental runs; name the source column every write advances, e.g. watermark = "updated_at" (a timestamp) or "version" (an integer), or remove watermark_overlap
ficus.toml:20:14: error: verify "j": full_every without a watermark
  help: without a watermark every run is full; name the source column every write advances, e.g. watermark = "updated_at" (a timestamp) or "version" (an integer), or remove full_every"#
    );
}

#[test]
fn verify_expression_problems() {
    let text = with_head(
        r#"[[verify]]
name = "people"
source = "sqlite://a.db"
target = "sqlite://b.db"
source_table = "customers"
target_table = "people"
key = ["id"]
map = { old_code = "code" }
expr = { first_name = "  ", email_lower = "lower(email); DROP TABLE people", code = "upper(c)", id = "id + 1", n = 3, ok = "CONCAT(a, ';')" }
"#,
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:20:23: error: verify "people": expr.first_name is empty
  help: write the target column and an SQL expression over the source table's columns in the source database's dialect, e.g. expr = { email_lower = "lower(email)" }
ficus.toml:20:43: error: verify "people": expr.email_lower holds a `;`: "lower(email); DROP TABLE people" is not one expression
  help: give one SQL expression, not statements (a `;` inside quotes is fine)
ficus.toml:20:85: error: verify "people": expr.code: `code` is also paired by map (old_code = "code")
  help: an expression replaces the comparison with a source column: keep only one of the two
ficus.toml:20:102: error: verify "people": expr.id: `id` is a key column (key = ["id"])
  help: keys cannot be expressions: rows are matched by the key as stored on both sides; check a derived column instead
ficus.toml:20:116: error: verify "people": expr.n must be a string, found integer 3
  help: put it in quotes: n = "3""#
    );
}

#[test]
fn verify_job_problems() {
    let text = format!(
        r#"{HEAD}
[[route]]
name = "orders"
path_prefix = "/orders"
legacy = "legacy"

[[verify]]
name = "orders-table"
route = "ordres"
source = "oracle://db/shop"
target = "sqlite://modern.db"
source_table = "orders"
key = []
every = "5s"

[[verify]]
name = "orders-table"
source = "sqlite://a.db"
target = "sqlite://b.db"
source_table = "t"
target_table = "t"
key = ["id"]
intervall = "1h"
"#
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:18:1: error: verify "orders-table": missing target_table
  help: add the table to compare it with, e.g. target_table = "orders"
ficus.toml:20:9: error: verify "orders-table": unknown route "ordres"
  help: did you mean "orders"? known routes: orders, default
ficus.toml:21:10: error: verify "orders-table": source: unsupported URL "oracle://db/shop"
  help: verify reads PostgreSQL, MySQL/MariaDB and SQLite: write "postgres://user@host/db", "mysql://user@host/db" or "sqlite://FILE"
ficus.toml:24:7: error: verify "orders-table": key is empty
  help: name the unique key column(s), e.g. key = ["id"]
ficus.toml:25:9: error: verify "orders-table": every "5s" is below the minimum of 10s
  help: each run reads both tables; run it at most every "10s" (default "1h")
ficus.toml:28:8: error: duplicate verify job name "orders-table"
  help: the first verify job named "orders-table" is at line 19; verify job names must be unique
ficus.toml:34:1: error: verify "orders-table": unknown key "intervall"
  help: [[verify]] keys are: name, route, source, target, source_table, target_table, key, columns, map, where, tolerance, expr, every, max_connections, watermark, watermark_overlap, full_every, recheck"#
    );
}

#[test]
fn shadow_settings_parse() {
    let text = with_head(
        r#"[[route]]
name = "catalog"
legacy = "legacy"
modern = "modern"
stage = "shadow"
shadow_writes = true

[route.shadow]
sample = 12.5
canary = true
noise_sample = 0
headers = ["Content-Type", "etag"]
ignore_headers = ["vary"]
ignore = ["$.meta.request_id", "$.items[*].updated_at", '$["odd key"]']
tolerance = { "$.total" = 0.01, "$.items[*].price" = 1 }
unordered = ["$.tags"]
trim = true
collapse_whitespace = true
ignore_case = true
redact = ["X-Secret"]

[shadow]
queue = 16
max_in_flight = 4
max_body = "64KiB"
samples_per_field = 2
max_fields = 500
noise_relative = 10
noise_absolute = 0.5
flush_interval = "500ms"
"#,
    );
    let c = parse(&text).unwrap_or_else(|d| panic!("{d}"));
    let r = &c.routes[0];
    assert!(r.shadow_writes);
    let s = &r.shadow;
    assert_eq!(s.sample, Weight::from_basis_points(1250).unwrap());
    assert!(s.canary);
    assert_eq!(s.noise_sample, Weight::ZERO);
    assert_eq!(s.headers, ["content-type", "etag"]);
    assert_eq!(s.ignore_headers, ["vary"]);
    assert_eq!(s.ignore.len(), 3);
    assert_eq!(
        s.tolerance,
        [
            ("$.total".to_string(), 0.01),
            ("$.items[*].price".to_string(), 1.0)
        ]
    );
    assert_eq!(s.unordered, ["$.tags"]);
    assert!(s.trim && s.collapse_whitespace && s.ignore_case);
    assert_eq!(s.redact, ["x-secret"]);
    assert_eq!(
        c.shadow,
        ShadowSettings {
            queue: 16,
            max_in_flight: 4,
            max_body: 64 * 1024,
            samples_per_field: 2,
            max_fields: 500,
            noise_relative: 0.10,
            noise_absolute: 0.005,
            flush_interval: Duration::from_millis(500),
        }
    );
    // Unset, everything has its documented default.
    let plain = parse(&with_head("")).unwrap();
    assert_eq!(plain.shadow, ShadowSettings::default());
    assert_eq!(plain.default_route.shadow, ShadowPolicy::default());
    assert_eq!(ShadowPolicy::default().sample, Weight::MAX);
    assert_eq!(
        ShadowPolicy::default().noise_sample,
        Weight::from_basis_points(1000).unwrap()
    );
}

#[test]
fn shadow_problems() {
    let text = with_head(
        r#"[[route]]
name = "catalog"
legacy = "legacy"
modern = "modern"
stage = "shadow"

[route.shadow]
sample = 150
ignore = ["items[*]", "$.a[x]"]
tolerance = { "$.total" = -1, "total" = 1 }
headers = ["bad header"]
samples = 3

[shadow]
queue = 0
noise_relative = 150
flush_interval = "0s"
"#,
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:19:10: error: route "catalog": shadow.sample 150 is out of range
  help: shadow.sample is the percentage of sticky keys whose requests are mirrored to modern: a number from 0 to 100
ficus.toml:20:11: error: route "catalog": shadow.ignore: invalid path pattern "items[*]" at byte 0: a path starts with `$` (the body's root) (patterns look like $.items[*].price, $.meta["odd key"] or $.list[0])
ficus.toml:20:23: error: route "catalog": shadow.ignore: invalid path pattern "$.a[x]" at byte 4: expected `*`, an index such as 3, or a quoted name such as "a key" after `[` (patterns look like $.items[*].price, $.meta["odd key"] or $.list[0])
ficus.toml:21:27: error: route "catalog": shadow.tolerance."$.total" must be a number of at least 0, found integer -1
  help: write the largest difference that still counts as equal, e.g. "$.total" = 0.01
ficus.toml:21:31: error: route "catalog": shadow.tolerance: invalid path pattern "total" at byte 0: a path starts with `$` (the body's root) (patterns look like $.items[*].price, $.meta["odd key"] or $.list[0])
ficus.toml:22:12: error: route "catalog": shadow.headers "bad header" is not a header name
  help: header names are tokens such as "content-type"
ficus.toml:23:1: error: route "catalog": unknown key "shadow.samples"
  help: did you mean "shadow.sample"?
ficus.toml:26:9: error: [shadow]: queue 0 is out of range
  help: queue is how many mirrored requests may wait for the mirror worker: from 1 to 1048576
ficus.toml:27:18: error: [shadow]: noise_relative 150 is out of range
  help: noise_relative is how much more often (percent of its own rate) a field must differ legacy-vs-modern than legacy-vs-legacy to count as real: from 0 to 100
ficus.toml:28:18: error: [shadow]: flush_interval "0s" must be greater than zero
  help: write flush_interval = "10s": a whole number and a unit (ms, s, m or h), e.g. "250ms", "10s", "5m""#
    );
}

#[test]
fn shadow_defaults_are_documented() {
    let doc = include_str!("../../../docs/configuration.md");
    for row in [
        format!("| `queue` | integer | `{}` |", defaults::SHADOW_QUEUE),
        format!(
            "| `max_in_flight` | integer | `{}` |",
            defaults::SHADOW_MAX_IN_FLIGHT
        ),
        format!(
            "| `max_body` | size | `\"{}\"` |",
            units::format_size(defaults::SHADOW_MAX_BODY)
        ),
        format!(
            "| `samples_per_field` | integer | `{}` |",
            defaults::SHADOW_SAMPLES_PER_FIELD
        ),
        format!(
            "| `max_fields` | integer | `{}` |",
            defaults::SHADOW_MAX_FIELDS
        ),
        format!(
            "| `noise_relative` | percentage | `{}` |",
            defaults::SHADOW_NOISE_RELATIVE * 100.0
        ),
        format!(
            "| `noise_absolute` | percentage | `{}` |",
            defaults::SHADOW_NOISE_ABSOLUTE * 100.0
        ),
        format!(
            "| `flush_interval` | duration | `\"{}s\"` |",
            defaults::SHADOW_FLUSH_INTERVAL.as_secs()
        ),
        format!(
            "| `sample` | percentage | `{}` |",
            defaults::SHADOW_SAMPLE_PERCENT
        ),
        format!(
            "| `noise_sample` | percentage | `{}` |",
            defaults::SHADOW_NOISE_SAMPLE_PERCENT
        ),
    ] {
        assert!(
            doc.contains(&row),
            "docs/configuration.md lacks the row {row:?}"
        );
    }
}

#[test]
fn protection_settings_parse() {
    let text = HEAD.replace(
        "url = \"http://127.0.0.1:9002\"\n",
        "url = \"http://127.0.0.1:9002\"\nmax_in_flight = 64\nqueue = 10\nqueue_timeout = \"250ms\"\n[upstream.modern.breaker]\nconsecutive_failures = 0\nfailure_rate = 25\nmin_requests = 50\nwindow = \"30s\"\nopen_for = \"1m\"\nhalf_open_probes = 5\n",
    ) + r#"
[[route]]
name = "orders"
legacy = "legacy"
priority = "critical"
[route.rate_limit]
per_second = 2.5
key = "header:x-user-id"

[[route]]
name = "batch"
legacy = "legacy"
priority = "low"
[route.rate_limit]
per_second = 100
burst = 10
key = "route"
max_keys = 10
"#;
    let c = parse(&text).unwrap_or_else(|d| panic!("{d}"));
    let modern = c.upstream("modern").unwrap();
    assert_eq!(
        modern.limit,
        Some(ConcurrencyPolicy {
            max_in_flight: 64,
            queue: 10,
            queue_timeout: Duration::from_millis(250)
        })
    );
    assert_eq!(
        modern.breaker,
        Some(BreakerPolicy {
            consecutive_failures: 0,
            failure_rate: 0.25,
            min_requests: 50,
            window: Duration::from_secs(30),
            open_for: Duration::from_secs(60),
            half_open_probes: 5,
        })
    );
    assert_eq!(c.upstream("legacy").unwrap().limit, None);
    assert_eq!(c.upstream("legacy").unwrap().breaker, None);
    let orders = &c.routes[0];
    assert_eq!(orders.priority, Priority::Critical);
    assert_eq!(
        orders.rate_limit,
        Some(RateLimit {
            per_second: 2.5,
            burst: 3,
            key: RateKey::Header(HeaderName::from_static("x-user-id")),
            max_keys: defaults::RATE_MAX_KEYS,
        }),
        "burst defaults to per_second rounded up"
    );
    let batch = &c.routes[1];
    assert_eq!(batch.priority, Priority::Low);
    assert_eq!(batch.rate_limit.as_ref().unwrap().key, RateKey::Route);
    assert_eq!(batch.rate_limit.as_ref().unwrap().max_keys, 10);
    // An empty breaker table means every default.
    let text = HEAD.replace(
        "url = \"http://127.0.0.1:9002\"\n",
        "url = \"http://127.0.0.1:9002\"\nbreaker = {}\n",
    );
    let c = parse(&text).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        c.upstream("modern").unwrap().breaker,
        Some(BreakerPolicy::default())
    );
}

#[test]
fn protection_problems() {
    let text = HEAD.replace(
        "url = \"http://127.0.0.1:9002\"\n",
        "url = \"http://127.0.0.1:9002\"\nqueue = 5\nmax_in_flight = 0\n[upstream.modern.breaker]\nfailure_rate = 0\nhalf_open_probes = 0\ntrips = 3\n",
    ) + r#"
[[route]]
name = "orders"
legacy = "legacy"
priority = "urgent"
[route.rate_limit]
burst = 0
key = "cookie:session"
"#;
    assert_eq!(
        errors(&text),
        r#"ficus.toml:10:17: error: upstream "modern": max_in_flight 0 is out of range
  help: max_in_flight is how many requests this upstream gets at once; beyond, requests wait in its queue or are shed with 503: from 1 to 1000000
ficus.toml:12:16: error: upstream "modern": breaker.failure_rate 0 is out of range
  help: breaker.failure_rate is the percentage of failed requests in the window that opens the breaker: from 1 to 100
ficus.toml:13:20: error: upstream "modern": breaker.half_open_probes 0 is out of range
  help: breaker.half_open_probes is how many trial requests a half-open breaker lets through: from 1 to 4294967295
ficus.toml:14:1: error: upstream "modern": unknown key "breaker.trips"
  help: [upstream.NAME.breaker] keys are: consecutive_failures, failure_rate, min_requests, window, open_for, half_open_probes
ficus.toml:22:12: error: route "orders": unknown priority "urgent"
  help: priority is "critical" (shed last), "normal" (default) or "low" (shed first)
ficus.toml:23:1: error: route "orders": [route.rate_limit] has no per_second
  help: add per_second = 50 (requests per second per key; 0.5 is one every 2 s)
ficus.toml:24:9: error: route "orders": rate_limit.burst 0 is out of range
  help: rate_limit.burst is how many requests a key may make back to back: from 1 to 4294967295
ficus.toml:25:7: error: route "orders": rate_limit.key "cookie:session" is not a key
  help: use "client-ip" (default), "header:NAME", "sticky" (the route's sticky key) or "route" (one budget for the route)"#
    );
}

#[test]
fn protection_defaults_are_documented() {
    let doc = include_str!("../../../docs/configuration.md");
    let d = |v: Duration| format!("`\"{}s\"`", v.as_secs());
    for row in [
        format!("| `queue` | integer | `{}` |", defaults::UPSTREAM_QUEUE),
        format!(
            "| `queue_timeout` | duration | {} |",
            d(defaults::UPSTREAM_QUEUE_TIMEOUT)
        ),
        format!(
            "| `consecutive_failures` | integer | `{}` |",
            defaults::BREAKER_CONSECUTIVE_FAILURES
        ),
        format!(
            "| `failure_rate` | percentage | `{}` |",
            defaults::BREAKER_FAILURE_RATE * 100.0
        ),
        format!(
            "| `min_requests` | integer | `{}` |",
            defaults::BREAKER_MIN_REQUESTS
        ),
        format!("| `window` | duration | {} |", d(defaults::BREAKER_WINDOW)),
        format!(
            "| `open_for` | duration | {} |",
            d(defaults::BREAKER_OPEN_FOR)
        ),
        format!(
            "| `half_open_probes` | integer | `{}` |",
            defaults::BREAKER_HALF_OPEN_PROBES
        ),
        format!("| `max_keys` | integer | `{}` |", defaults::RATE_MAX_KEYS),
    ] {
        assert!(
            doc.contains(&row),
            "docs/configuration.md lacks the row {row:?}"
        );
    }
    assert_eq!(defaults::BREAKER_MAX_OPEN_FOR, Duration::from_secs(300));
    assert!(doc.contains("up to 5 minutes"));
}

#[test]
fn retry_settings_parse_and_are_checked() {
    let text = with_head(
        r#"[[route]]
name = "orders"
legacy = "legacy"
[route.retry]
attempts = 3
budget = 5
backoff = "10ms"
"#,
    );
    let c = parse(&text).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        c.routes[0].retry,
        Some(RetryPolicy {
            attempts: 3,
            budget: 0.05,
            min_per_second: defaults::RETRY_MIN_PER_SECOND,
            backoff: Duration::from_millis(10),
            max_backoff: defaults::RETRY_MAX_BACKOFF,
        })
    );
    let text = with_head(
        r#"[[route]]
name = "orders"
legacy = "legacy"
[route.retry]
attempts = 0
budget = 150
backoff = "1s"
max_backoff = "10ms"
"#,
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:16:12: error: route "orders": retry.attempts 0 is out of range
  help: retry.attempts is how many times a failed request is sent again: from 1 to 10
ficus.toml:17:10: error: route "orders": retry.budget 150 is out of range
  help: retry.budget is the percentage of extra requests retries may add (over the last 10 s): from 0 to 100
ficus.toml:19:15: error: route "orders": retry.max_backoff is shorter than retry.backoff
  help: max_backoff caps the doubling backoff; make it at least backoff"#
    );
    let doc = include_str!("../../../docs/configuration.md");
    let d = RetryPolicy::default();
    for row in [
        format!("| `attempts` | integer | `{}` |", d.attempts),
        format!("| `budget` | percentage | `{}` |", d.budget * 100.0),
        format!("| `min_per_second` | integer | `{}` |", d.min_per_second),
        format!(
            "| `backoff` | duration | `\"{}ms\"` |",
            d.backoff.as_millis()
        ),
        format!(
            "| `max_backoff` | duration | `\"{}ms\"` |",
            d.max_backoff.as_millis()
        ),
    ] {
        assert!(
            doc.contains(&row),
            "docs/configuration.md lacks the row {row:?}"
        );
    }
}

#[test]
fn cache_settings_parse_and_are_checked() {
    let text = with_head(
        r#"[[route]]
name = "catalog"
legacy = "legacy"
[route.cache]
max_bytes = "8MiB"
ttl = "30s"
stale_while_revalidate = "5s"
allow_set_cookie = true
"#,
    );
    let c = parse(&text).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        c.routes[0].cache,
        Some(CachePolicy {
            max_bytes: 8 * 1024 * 1024,
            max_entry_bytes: defaults::CACHE_MAX_ENTRY_BYTES,
            ttl: Some(Duration::from_secs(30)),
            stale_while_revalidate: Some(Duration::from_secs(5)),
            max_variants: defaults::CACHE_MAX_VARIANTS,
            allow_authorization: false,
            allow_set_cookie: true,
        })
    );
    let text = with_head(
        r#"[[route]]
name = "catalog"
legacy = "legacy"
[route.cache]
max_bytes = "1MiB"
max_entry_bytes = "2MiB"
max_variants = 0
size = 3
"#,
    );
    assert_eq!(
        errors(&text),
        r#"ficus.toml:17:19: error: route "catalog": cache.max_entry_bytes (2MiB) is larger than cache.max_bytes (1MiB)
  help: one response cannot be larger than the whole cache; lower max_entry_bytes
ficus.toml:18:16: error: route "catalog": cache.max_variants 0 is out of range
  help: cache.max_variants is how many Vary variants are kept per URL: from 1 to 1000
ficus.toml:19:1: error: route "catalog": unknown key "cache.size"
  help: [route.cache] keys are: max_bytes, max_entry_bytes, ttl, stale_while_revalidate, max_variants, allow_authorization, allow_set_cookie"#
    );
    let doc = include_str!("../../../docs/configuration.md");
    let s = |v: u64| format!("`\"{}\"`", units::format_size(v));
    for row in [
        format!("| `max_bytes` | size | {} |", s(defaults::CACHE_MAX_BYTES)),
        format!(
            "| `max_entry_bytes` | size | {} |",
            s(defaults::CACHE_MAX_ENTRY_BYTES)
        ),
        format!(
            "| `max_variants` | integer | `{}` |",
            defaults::CACHE_MAX_VARIANTS
        ),
    ] {
        assert!(
            doc.contains(&row),
            "docs/configuration.md lacks the row {row:?}"
        );
    }
}

#[test]
fn rollout_settings_parse_and_are_checked() {
    let text = with_head(
        r#"[[route]]
name = "orders"
legacy = "legacy"
modern = "modern"
stage = "shadow"
[route.rollout]
steps = [1, 10, 100]
interval = "2m"
min_requests = 500
manual = [100]
retire_after = "1h"
on_rollback = "legacy"
[route.rollout.gates]
error = { max_absolute = 0.5, critical = true }
shadow = { max_rate = 2, min_compared = 50 }
"#,
    );
    let c = parse(&text).unwrap_or_else(|d| panic!("{d}"));
    let r = c.routes[0].rollout.as_ref().unwrap();
    assert_eq!(r.spec.steps, [1.0, 10.0, 100.0]);
    assert_eq!(r.spec.step.interval, Duration::from_secs(120));
    assert_eq!(r.spec.step.min_requests, 500);
    assert_eq!(r.manual, [100.0]);
    assert_eq!((r.after, r.on_rollback), (Stage::Modern, Stage::Legacy));
    assert_eq!(r.retire_after, Some(Duration::from_secs(3600)));
    assert_eq!(r.max_step_time, defaults::ROLLOUT_MAX_STEP_TIME);
    let e = r.spec.gates.error.as_ref().unwrap();
    assert_eq!((e.max_absolute, e.critical), (0.005, true));
    assert!(
        r.spec.gates.latency.is_none(),
        "listing gates means exactly those"
    );
    let s = r.spec.gates.shadow.as_ref().unwrap();
    assert_eq!((s.max_rate, s.min_compared, s.critical), (0.02, 50, false));
    // Without [gates]: the recommended error and latency gates, both critical.
    let text = with_head(
        "[[route]]\nname = \"orders\"\nlegacy = \"legacy\"\nmodern = \"modern\"\n[route.rollout]\n",
    );
    let c = parse(&text).unwrap_or_else(|d| panic!("{d}"));
    let r = c.routes[0].rollout.as_ref().unwrap();
    assert_eq!(r.spec.steps, defaults::ROLLOUT_STEPS);
    assert_eq!(r.spec.gates, ficus_rollout::Gates::recommended());

    let text = with_head(
        r#"[[route]]
name = "orders"
legacy = "legacy"
[route.rollout]
steps = [50, 10]
manual = [20]
after = "canary"
"#,
    );
    let errs = errors(&text);
    assert!(
        errs.contains("[route.rollout] needs a modern upstream"),
        "{errs}"
    );
    assert!(errs.contains("rollout.steps"), "{errs}");
    assert!(
        errs.contains("rollout.manual 20 is not one of the steps"),
        "{errs}"
    );
    assert!(
        errs.contains("rollout.after \"canary\" is not allowed"),
        "{errs}"
    );
}

#[test]
fn webhooks_parse_and_are_checked() {
    let text = format!(
        "{HEAD}\n[[webhook]]\nurl = \"http://127.0.0.1:9000/hook\"\n\n[[webhook]]\nurl = \"http://hooks.internal/ficus\"\nevents = [\"rollout.\", \"breaker.\"]\ntimeout = \"500ms\"\nretries = 0\n"
    );
    let c = parse(&text).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(c.webhooks.len(), 2);
    assert_eq!(c.webhooks[0].events, ["rollout."]);
    assert_eq!(
        (c.webhooks[0].timeout, c.webhooks[0].retries),
        (defaults::WEBHOOK_TIMEOUT, defaults::WEBHOOK_RETRIES)
    );
    assert_eq!(c.webhooks[1].events, ["rollout.", "breaker."]);
    assert_eq!(
        (c.webhooks[1].timeout, c.webhooks[1].retries),
        (Duration::from_millis(500), 0)
    );
    let text = format!(
        "{HEAD}\n[[webhook]]\nurl = \"https://hooks.example.com/ficus\"\nca_file = \"tls/ca.pem\"\n"
    );
    let c = parse(&text).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(c.webhooks[0].url.scheme_str(), Some("https"));
    assert!(c.webhooks[0]
        .ca_file
        .as_ref()
        .unwrap()
        .ends_with("tls/ca.pem"));
    assert_eq!(c.webhooks[0].secret_file, None);
    let text = format!(
        "{HEAD}\n[[webhook]]\nurl = \"https://hooks.example.com/ficus\"\nsecret_file = \"secrets/hook.key\"\n"
    );
    let c = parse(&text).unwrap_or_else(|d| panic!("{d}"));
    assert!(c.webhooks[0]
        .secret_file
        .as_ref()
        .unwrap()
        .ends_with("secrets/hook.key"));
    let text = format!(
        "{HEAD}\n[[webhook]]\nurl = \"ftp://x/y\"\nretries = 11\n\n[[webhook]]\nurl = \"http://x/y\"\nca_file = \"ca.pem\"\n"
    );
    let errs = errors(&text);
    assert!(
        errs.contains("url \"ftp://x/y\" is not an http:// or https:// URL"),
        "{errs}"
    );
    assert!(errs.contains("retries 11 is out of range"), "{errs}");
    assert!(
        errs.contains("webhook #2: ca_file is set but url is not https"),
        "{errs}"
    );
    let doc = include_str!("../../../docs/configuration.md");
    assert!(doc.contains("| `timeout` | duration | `\"2s\"` |"));
    assert!(doc.contains(&format!(
        "| `retries` | integer | `{}` |",
        defaults::WEBHOOK_RETRIES
    )));
}

#[test]
fn rollout_latency_gate_min_delta_and_max_p99() {
    let route = |latency: &str| {
        with_head(&format!(
            "[[route]]\nname = \"orders\"\nlegacy = \"legacy\"\nmodern = \"modern\"\n\
             [route.rollout]\n[route.rollout.gates]\nlatency = {latency}\n"
        ))
    };
    let latency = |text: &str| {
        let c = parse(text).unwrap_or_else(|d| panic!("{d}"));
        c.routes[0]
            .rollout
            .as_ref()
            .unwrap()
            .spec
            .gates
            .latency
            .clone()
            .unwrap()
    };
    // Defaults: 5 ms, no budget, whether the gate is listed or comes recommended.
    let l = latency(&route("{}"));
    assert_eq!(l.min_delta, Duration::from_millis(5));
    assert_eq!(l.min_delta, ficus_rollout::LatencyGate::DEFAULT_MIN_DELTA);
    assert_eq!(l.max_p99, None);
    let text = with_head(
        "[[route]]\nname = \"orders\"\nlegacy = \"legacy\"\nmodern = \"modern\"\n[route.rollout]\n",
    );
    assert_eq!(latency(&text), ficus_rollout::LatencyGate::default());
    // Both set.
    let l = latency(&route(
        "{ min_delta = \"2ms\", max_p99 = \"250ms\", max_p99_ratio = 2 }",
    ));
    assert_eq!(l.min_delta, Duration::from_millis(2));
    assert_eq!(l.max_p99, Some(Duration::from_millis(250)));
    assert_eq!(l.max_p99_ratio, 2.0);
    assert_eq!(
        (l.min_effect, l.alpha, l.rank_test),
        (1.1, 0.01, true),
        "the rest keeps its defaults"
    );

    // As a section of its own, as the reference shows.
    let l = latency(&with_head(
        "[[route]]\nname = \"orders\"\nlegacy = \"legacy\"\nmodern = \"modern\"\n\
         [route.rollout]\n[route.rollout.gates.latency]\nmin_delta = \"1ms\"\n",
    ));
    assert_eq!((l.min_delta, l.max_p99), (Duration::from_millis(1), None));

    // The reference says so.
    let doc = include_str!("../../../docs/configuration.md");
    for row in [
        format!(
            "| `latency.min_delta` | duration | `\"{}\"` |",
            units::format_duration(ficus_rollout::LatencyGate::DEFAULT_MIN_DELTA)
        ),
        "| `latency.max_p99` | duration | none |".to_string(),
    ] {
        assert!(
            doc.contains(&row),
            "docs/configuration.md lacks the row {row:?}"
        );
    }

    // Errors, with line:col and the fix.
    assert_eq!(
        errors(&route("{ min_delta = 5, max_p99 = \"0ms\" }")),
        r#"ficus.toml:18:25: error: route "orders": rollout.gates.latency.min_delta 5 has no unit
  help: durations are strings with a unit: min_delta = "5s" or "5ms"
ficus.toml:18:38: error: route "orders": rollout.gates.latency.max_p99 "0ms" must be greater than zero
  help: write max_p99 = "10s": a whole number and a unit (ms, s, m or h), e.g. "250ms", "10s", "5m""#
    );
    assert_eq!(
        errors(&route("{ min_delta = \"5 msec\", max_p99 = 250 }")),
        r#"ficus.toml:18:25: error: route "orders": rollout.gates.latency.min_delta "5 msec" has an unknown unit "msec"
  help: did you mean "5ms"? write min_delta = "10s": a whole number and a unit (ms, s, m or h), e.g. "250ms", "10s", "5m"
ficus.toml:18:45: error: route "orders": rollout.gates.latency.max_p99 250 has no unit
  help: durations are strings with a unit: max_p99 = "250s" or "250ms""#
    );
    assert_eq!(
        errors(&route("{ max_p99_ms = 250, min_delta = \"1.5ms\" }")),
        r#"ficus.toml:18:13: error: route "orders": unknown key "rollout.gates.latency.max_p99_ms"
  help: did you mean "rollout.gates.latency.max_p99"?
ficus.toml:18:43: error: route "orders": rollout.gates.latency.min_delta "1.5ms" is not a whole number
  help: write min_delta = "10s": a whole number and a unit (ms, s, m or h), e.g. "250ms", "10s", "5m""#
    );
}

#[test]
fn at_most_max_diagnostics_are_reported_the_first_in_file_order_with_a_count_of_the_rest() {
    // 2,000 misspelled sections, each an error.
    let typos: String = (0..2000).map(|i| format!("[gatewy{i}]\n")).collect();
    let d = parse(&with_head(&typos)).unwrap_err();
    assert_eq!(d.items.len(), MAX_DIAGNOSTICS);
    assert_eq!(d.count(), 2000);
    assert_eq!(d.omitted, 2000 - MAX_DIAGNOSTICS);
    let lines: Vec<usize> = d.items.iter().map(|i| i.line).collect();
    assert_eq!(lines, (12..12 + MAX_DIAGNOSTICS).collect::<Vec<_>>());
    let text = d.to_string();
    assert!(
        text.ends_with(&format!(
            "ficus.toml: ... and {} more error(s) not shown (at most {MAX_DIAGNOSTICS} are \
             reported: fix these and check again)",
            2000 - MAX_DIAGNOSTICS
        )),
        "{}",
        &text[text.len() - 300..]
    );
    assert!(text.lines().count() <= 2 * MAX_DIAGNOSTICS + 1);
}

#[test]
fn a_syntax_error_says_how_to_fix_it() {
    for (line, help) in [
        (
            "stage = canary",
            "help: put the text in quotes: stage = \"canary\"",
        ),
        ("[route", "help: close the header with ]"),
        ("name = \"abc", "help: close the string on the same line"),
        ("a b = 1", "help: write key = value"),
        ("methods = [\"GET\"", "help: close the array with ]"),
        ("x = 1 2", "help: put the text in quotes: x = \"1 2\""),
        ("weight = 1.2.3", "help: each line is a [section] header"),
    ] {
        let e = errors(&with_head(&format!("{line}\n")));
        assert!(e.starts_with("ficus.toml:12:"), "{line}: {e}");
        assert!(e.contains("TOML syntax error: "), "{line}: {e}");
        assert!(e.contains(help), "{line}: {e}");
    }
}

#[test]
fn load_reports_a_binary_file_at_its_first_byte_that_is_not_utf8() {
    let dir = std::env::temp_dir().join(format!("ficus-config-binary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ficus.db");
    std::fs::write(&file, b"SQLite format 3\0\n\x01\x02 ok\n\xff\xfe rest").unwrap();
    let err = load(&file).unwrap_err();
    let LoadError::Invalid(d) = &err else {
        panic!("{err:?}")
    };
    assert_eq!((d.items[0].line, d.items[0].col), (3, 1), "{d}");
    let text = d.to_string();
    assert!(
        text.starts_with(&format!(
            "{}:3:1: error: byte 0xff is not UTF-8 text",
            file.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("help: check that this is the config file"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn one_size_limit_for_every_config_text() {
    let max = defaults::MAX_CONFIG_BYTES;
    assert_eq!(max, 4 * 1024 * 1024);
    // Exactly the limit: valid.
    let mut text = with_head("");
    text.push_str(&"#".repeat(max - text.len()));
    assert!(parse(&text).is_ok());
    // One byte more: refused at 1:1, naming the limit.
    text.push('#');
    let e = errors(&text);
    assert!(
        e.starts_with(&format!(
            "ficus.toml:1:1: error: the config is {} bytes, more than {max} bytes (4MiB), the \
             largest ficus accepts",
            max + 1
        )),
        "{e}"
    );
    // A file is not read beyond the limit (nor all of a huge one).
    let dir = std::env::temp_dir().join(format!("ficus-config-size-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ficus.toml");
    std::fs::write(&file, &text).unwrap();
    let err = load(&file).unwrap_err().to_string();
    assert!(
        err.contains(":1:1: error: the config is more than 4194304 bytes (4MiB)"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_type_error_help_names_its_own_key() {
    let verify = |key: &str| {
        with_head(&format!(
            "[[verify]]\nname = \"t\"\nsource = \"sqlite://a.db\"\ntarget = \"sqlite://b.db\"\n\
             source_table = \"a\"\ntarget_table = \"b\"\n{key}\n"
        ))
    };
    let e = errors(&verify("key = \"id\""));
    assert!(
        e.contains("help: put it in brackets: key = [\"id\"]"),
        "{e}"
    );
    assert!(!e.contains("GET"), "not the help of methods: {e}");
    let e = errors(&verify("key = 5"));
    assert!(e.contains("help: write key = [\"...\", \"...\"]"), "{e}");
    let route = |kv: &str| {
        with_head(&format!(
            "[[route]]\nname = \"r\"\npath_prefix = \"/r\"\nlegacy = \"legacy\"\n{kv}\n"
        ))
    };
    for (kv, help) in [
        (
            "methods = \"GET\"",
            "help: put it in brackets: methods = [\"GET\"]",
        ),
        ("max_body = true", "help: write max_body = 65536 (bytes)"),
        ("weight = \"25\"", "e.g. weight = 25"),
        (
            "fallback = { on_timeout = \"yes\" }",
            "write on_timeout = true or on_timeout = false",
        ),
        (
            "shadow = { sample = \"5\" }",
            "e.g. sample = 25 or sample = 2.5",
        ),
    ] {
        let e = errors(&route(kv));
        assert!(e.contains(help), "{kv}: {e}");
    }
    let e = errors(&with_head(
        "[upstream.other]\nurl = \"http://x:1\"\nrequest_timeout = true\n",
    ));
    assert!(e.contains("help: write request_timeout = \"10s\""), "{e}");
    let e = errors(&with_head(
        "[upstream.other]\nurl = \"http://x:1\"\nrequest_timeout = \"10 sec\"\n",
    ));
    assert!(e.contains("write request_timeout = \"10s\""), "{e}");
}

#[test]
fn tracing_is_read_with_every_key() {
    let text = format!(
        "{HEAD}\n[tracing]\nendpoint = \"https://otlp.example:4318\"\nheaders = {{ \"x-api-key\" = \"k\" }}\n\
         sample_ratio = 0.05\nparent_based = false\nservice_name = \"edge\"\ntimeout = \"3s\"\n\
         queue = 4096\nbatch = 256\nflush_interval = \"500ms\"\nca_file = \"ca.pem\"\n\
         [tracing.resource]\n\"deployment.environment\" = \"prod\"\n"
    );
    let t = parse(&text).unwrap_or_else(|d| panic!("{d}")).tracing;
    assert_eq!(t.enabled, None);
    assert_eq!(t.endpoint.unwrap(), "https://otlp.example:4318/");
    assert_eq!(t.headers.len(), 1);
    assert_eq!(t.sample_ratio, Some(0.05));
    assert_eq!(t.parent_based, Some(false));
    assert_eq!(t.service_name.as_deref(), Some("edge"));
    assert_eq!(t.timeout, Some(Duration::from_secs(3)));
    assert_eq!((t.queue, t.batch), (Some(4096), Some(256)));
    assert_eq!(t.flush_interval, Some(Duration::from_millis(500)));
    assert_eq!(t.ca_file, Some(PathBuf::from("/etc/ficus/ca.pem")));
    assert_eq!(
        t.resource,
        vec![("deployment.environment".to_string(), "prod".to_string())]
    );
}

#[test]
fn tracing_mistakes_are_named_with_their_fix() {
    let e = errors(&format!(
        "{HEAD}\n[tracing]\nendpoint = \"udp://c:4317\"\nsample_ratio = 1.5\ntimeout = \"1ms\"\n\
         queue = 0\nservice_name = \"\"\nsampler = \"x\"\nresource = {{ team = 3 }}\n"
    ));
    for needle in [
        "[tracing]: endpoint \"udp://c:4317\" is not an http(s) URL",
        "/v1/traces is appended",
        "[tracing]: sample_ratio 1.5 is out of range",
        "[tracing]: timeout 1ms is out of range",
        "[tracing]: queue 0 is out of range",
        "[tracing]: service_name \"\" is not a name",
        "unknown key \"sampler\"",
        "resource attribute \"team\" must be a string",
    ] {
        assert!(e.contains(needle), "missing {needle:?} in:\n{e}");
    }
    // ca_file only for an https collector.
    let e = errors(&format!(
        "{HEAD}\n[tracing]\nendpoint = \"http://c:4318\"\nca_file = \"ca.pem\"\n"
    ));
    assert!(e.contains("ca_file is set but url is not https"), "{e}");
}

#[test]
fn tracing_is_node_local() {
    assert!(ficus_config::is_node_local("tracing", None));
    let text = format!("{HEAD}\n[tracing]\nendpoint = \"http://c:4318\"\n");
    let fleet = ficus_config::fleet_text(&text).unwrap();
    assert!(!fleet.contains("[tracing]"), "{fleet}");
}
