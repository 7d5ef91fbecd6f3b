//! Fleet-wide versus node-local settings: the stored part of a file, and a node's own
//! settings laid over a fleet-wide version; `[node]` and `[fleet]` validation.

use std::path::Path;
use std::time::Duration;

use ficus_config::*;

const NODE_A: &str = r#"# node A of the fleet
store = "postgres://ficus@db/ficus"

[gateway]
header_read_timeout = "5s"
max_connections = 500
pid_file = "/run/ficus-a.pid"

[[listener]]
bind = "127.0.0.1:8080"

[admin]
bind = "127.0.0.1:9901"

[access_log]
format = "json"

[node]
name = "gw-a"

[fleet]
heartbeat = "500ms"

# The service being replaced.
[upstream.legacy]
url = "http://127.0.0.1:9001"

[upstream.modern]
url = "http://127.0.0.1:9002"

[[route]]
name = "orders"
path = "/orders/*"
legacy = "legacy"
modern = "modern"
stage = "canary"
weight = 10

[default]
legacy = "legacy"
"#;

/// Node B: the same fleet-wide settings, its own ports, name, log and limits.
fn node_b() -> String {
    NODE_A
        .replace("8080", "8081")
        .replace("9901", "9902")
        .replace("gw-a", "gw-b")
        .replace("max_connections = 500", "max_connections = 900")
        .replace("ficus-a.pid", "ficus-b.pid")
        .replace("format = \"json\"", "format = \"text\"")
        .replace("heartbeat = \"500ms\"", "")
}

fn parse(text: &str) -> Config {
    parse_str(text, "ficus.toml", Path::new("/etc/ficus")).unwrap_or_else(|d| panic!("{d}"))
}

#[test]
fn files_that_differ_only_in_node_local_keys_share_one_fleet_text() {
    let a = fleet_text(NODE_A).unwrap();
    let b = fleet_text(&node_b()).unwrap();
    assert_eq!(a, b);
    for gone in [
        "[[listener]]",
        "[admin]",
        "store =",
        "[access_log]",
        "[node]",
        "[fleet]",
        "max_connections",
        "pid_file",
    ] {
        assert!(!a.contains(gone), "{gone} left in:\n{a}");
    }
    // What stays keeps its comments and layout.
    for kept in [
        "header_read_timeout = \"5s\"",
        "# The service being replaced.\n[upstream.legacy]",
        "weight = 10",
        "[default]",
    ] {
        assert!(a.contains(kept), "{kept} missing from:\n{a}");
    }
    // Idempotent: a stored fleet text is its own fleet text.
    assert_eq!(fleet_text(&a).unwrap(), a);
    // A fleet-wide change does show.
    let c = fleet_text(&NODE_A.replace("weight = 10", "weight = 20")).unwrap();
    assert_ne!(a, c);
    assert!(fleet_text("[[route]\n").is_err());
}

#[test]
fn a_node_runs_the_fleet_text_with_its_own_local_settings() {
    let a = parse(NODE_A);
    let b = parse(&node_b());
    let stored = fleet_text(NODE_A).unwrap();
    // The stored text alone has no listener: valid as a fleet-wide version only.
    assert!(parse_str(&stored, "v1", Path::new("/etc/ficus")).is_err());
    let on_b = parse_fleet_str(&stored, "version 1", Path::new("/etc/ficus"), &b)
        .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(on_b, b, "node B runs exactly its own file");
    let on_a = parse_fleet_str(&stored, "version 1", Path::new("/etc/ficus"), &a).unwrap();
    assert_eq!(on_a, a);
    assert_eq!(on_b.listeners[0].bind.port(), 8081);
    assert_eq!(on_b.gateway.max_connections, 900);
    assert_eq!(on_b.gateway.header_read_timeout, Duration::from_secs(5));
    assert_eq!(on_b.node.name.as_deref(), Some("gw-b"));
    // An older version that still holds another node's local sections: they are ignored.
    let on_b = parse_fleet_str(NODE_A, "version 0", Path::new("/etc/ficus"), &b).unwrap();
    assert_eq!(on_b, b);
}

#[test]
fn every_top_level_section_is_classified() {
    for local in [
        "listener",
        "admin",
        "store",
        "access_log",
        "telemetry",
        "node",
        "fleet",
    ] {
        assert!(is_node_local(local, None), "{local}");
        assert!(is_node_local(local, Some("any")), "{local}");
    }
    for fleet in [
        "upstream", "route", "default", "shadow", "webhook", "verify", "gateway",
    ] {
        assert!(!is_node_local(fleet, None), "{fleet}");
    }
    assert!(is_node_local("gateway", Some("pid_file")));
    assert!(!is_node_local("gateway", Some("header_read_timeout")));
}

#[test]
fn fleet_settings_default_and_parse() {
    let cfg = parse(&NODE_A.replace(
        "heartbeat = \"500ms\"",
        "heartbeat = \"500ms\"\nlisten = false\npoll_interval = \"1s\"\nlease = \"3s\"\ndead_after = \"4s\"\n\
         prune_after = \"10m\"\nflush_interval = \"250ms\"",
    ));
    assert_eq!(
        cfg.fleet,
        FleetSettings {
            listen: false,
            poll_interval: Duration::from_secs(1),
            heartbeat: Duration::from_millis(500),
            dead_after: Duration::from_secs(4),
            prune_after: Duration::from_secs(600),
            lease: Duration::from_secs(3),
            flush_interval: Duration::from_millis(250),
        }
    );
    let plain = parse(&node_b().replace("[fleet]", ""));
    assert_eq!(plain.fleet, FleetSettings::default());
    assert_eq!(plain.fleet.poll_interval, defaults::FLEET_POLL_INTERVAL);
    assert_eq!(plain.fleet.heartbeat, Duration::from_secs(1));
    assert_eq!(plain.fleet.lease, Duration::from_secs(5));
    assert_eq!(plain.fleet.dead_after, Duration::from_secs(10));
    assert_eq!(plain.fleet.flush_interval, Duration::from_secs(1));
}

fn errors(text: &str) -> Vec<String> {
    match parse_str(text, "f.toml", Path::new(".")) {
        Ok(_) => Vec::new(),
        Err(d) => d
            .items
            .iter()
            .map(|i| format!("{}:{} {}", i.line, i.col, i.message))
            .collect(),
    }
}

#[test]
fn fleet_and_node_problems_are_reported_at_their_keys() {
    let with = |extra: &str| NODE_A.replace("heartbeat = \"500ms\"", extra);
    let e = errors(&with("heartbeat = \"2s\"\nlease = \"3s\""));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("lease 3s is shorter than two heartbeats (4s)"),
        "{e:?}"
    );
    let e = errors(&with("heartbeat = \"10ms\""));
    assert!(
        e.iter()
            .any(|m| m.contains("heartbeat 10ms is out of range")),
        "{e:?}"
    );
    let e = errors(&with("poll_interval = \"5m\""));
    assert!(
        e.iter()
            .any(|m| m.contains("poll_interval 5m is out of range")),
        "{e:?}"
    );
    let e = errors(&with("dead_after = \"1s\""));
    assert!(
        e.iter().any(|m| m.contains("dead_after 1s is shorter")),
        "{e:?}"
    );
    let e = errors(&with("prune_after = \"5s\""));
    assert!(
        e.iter()
            .any(|m| m.contains("prune_after 5s is shorter than dead_after")),
        "{e:?}"
    );
    let e = errors(&with("leese = \"5s\""));
    assert!(e.iter().any(|m| m.contains("leese")), "{e:?}");
    let e = errors(&NODE_A.replace("name = \"gw-a\"", "name = \"gw a/1\""));
    assert!(e.iter().any(|m| m.contains("is not a node name")), "{e:?}");
    let e = errors(&NODE_A.replace("name = \"gw-a\"", "admin_url = \"ftp://x\""));
    assert!(e.iter().any(|m| m.contains("admin_url")), "{e:?}");
    let ok = parse(&NODE_A.replace("name = \"gw-a\"", "admin_url = \"http://10.0.0.5:9901/\""));
    assert_eq!(ok.node.admin_url.as_deref(), Some("http://10.0.0.5:9901"));
}

#[test]
fn redact_lists_add_to_the_built_in_ones() {
    let cfg = parse(&format!(
        "{NODE_A}\n[redact]\nheaders = [\"X-My-Secret\"]\nquery = [\"session_id\"]\n"
    ));
    assert_eq!(cfg.redact.headers, ["x-my-secret"]);
    let headers = cfg.redact.all_headers();
    assert!(headers.contains(&"x-auth-token".to_string()));
    assert!(headers.contains(&"x-my-secret".to_string()));
    let query = cfg.redact.all_query();
    assert!(query.contains(&"api_key".to_string()) && query.contains(&"session_id".to_string()));
    let e = errors(&format!(
        "{NODE_A}\n[redact]\nquery = [\"a=b\"]\nheadrs = []\n"
    ));
    assert!(
        e.iter().any(|m| m.contains("query \"a=b\" is not a name")),
        "{e:?}"
    );
    assert!(e.iter().any(|m| m.contains("headrs")), "{e:?}");
}
