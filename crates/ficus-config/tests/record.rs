//! `[route.record]` and `[record]`: defaults, values, node-locality, and every mistake
//! reported at its line with a way out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ficus_config::*;

fn parse(text: &str) -> Result<Config, Diagnostics> {
    parse_str(text, "ficus.toml", Path::new("/etc/ficus"))
}

const BASE: &str = r#"[[listener]]
bind = "127.0.0.1:8080"

[upstream.legacy]
url = "http://127.0.0.1:9001"

[[route]]
name = "orders"
path_prefix = "/orders"
legacy = "legacy"
"#;

const TAIL: &str = "\n[default]\nlegacy = \"legacy\"\n";

#[test]
fn defaults_and_values() {
    let cfg = parse(&format!("{BASE}[route.record]\n{TAIL}")).unwrap();
    let p = cfg.routes[0].record.as_ref().unwrap();
    assert_eq!(p.sample, Weight::MAX);
    assert_eq!((p.max_body, p.max_size), (64 * 1024, 1024 * 1024 * 1024));
    assert_eq!(p.over_cap, OverCap::Truncate);
    assert_eq!(cfg.recording.dir, PathBuf::from("/etc/ficus/recordings"));
    assert_eq!(cfg.recording.queue, 4096);
    assert!(cfg.default_route.record.is_none());

    let cfg = parse(&format!(
        "{BASE}[route.record]\nsample = 2.5\nmax_body = \"0B\"\nover_cap = \"drop\"\nmax_size = \"10MiB\"\n\
         redact = {{ headers = [\"X-Api-Key\"], query = [\"token\"], json = [\"card.number\", \"items.*.ssn\"] }}\n\
         {TAIL}\n[record]\ndir = \"/var/lib/ficus/rec\"\nkey_file = \"keys/rec.key\"\nqueue = 10\n\
         rotate_bytes = \"2MiB\"\nrotate_every = \"10m\"\nmax_total = \"5GiB\"\n"
    ))
    .unwrap();
    let p = cfg.routes[0].record.as_ref().unwrap();
    assert_eq!(p.sample, Weight::from_percent(2.5).unwrap());
    assert_eq!((p.max_body, p.max_size), (0, 10 * 1024 * 1024));
    assert_eq!(p.over_cap, OverCap::Drop);
    assert_eq!(p.redact_headers, ["x-api-key"]);
    assert_eq!(p.redact_query, ["token"]);
    assert_eq!(p.redact_json, ["card.number", "items.*.ssn"]);
    let r = &cfg.recording;
    assert_eq!(r.dir, PathBuf::from("/var/lib/ficus/rec"));
    assert_eq!(
        r.key_file.as_deref(),
        Some(Path::new("/etc/ficus/keys/rec.key"))
    );
    assert_eq!((r.queue, r.rotate_bytes), (10, 2 * 1024 * 1024));
    assert_eq!(r.rotate_every, Duration::from_secs(600));
    assert_eq!(r.max_total, 5 * 1024 * 1024 * 1024);
    // [record] is node-local, [route.record] fleet-wide.
    assert!(is_node_local("record", None));
    assert!(!is_node_local("route", None));
}

#[test]
fn mistakes_are_reported_with_a_way_out() {
    for (bad, want) in [
        (
            "[route.record]\nsample = 120\n",
            "record.sample 120 is out of range",
        ),
        (
            "[route.record]\nmax_body = \"1GiB\"\n",
            "record.max_body \"1GiB\" is out of range",
        ),
        (
            "[route.record]\nover_cap = \"cut\"\n",
            "record.over_cap \"cut\" is not truncate or drop",
        ),
        (
            "[route.record]\nmax_size = \"1KiB\"\n",
            "record.max_size \"1KiB\" is too small",
        ),
        (
            "[route.record]\nredact = { json = [\"a..b\"] }\n",
            "record.redact.json \"a..b\" is not a name",
        ),
        (
            "[route.record]\nredact = { cookies = [\"a\"] }\n",
            "cookies",
        ),
        ("[route.record]\nsampel = 5\n", "sampel"),
    ] {
        let e = parse(&format!("{BASE}{bad}{TAIL}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{bad}: {e}");
        assert!(e.contains("ficus.toml:1"), "{bad}: located: {e}");
    }
    for (bad, want) in [
        ("queue = 0\n", "queue"),
        (
            "rotate_bytes = \"1KiB\"\n",
            "[record]: rotate_bytes \"1KiB\" is too small",
        ),
        (
            "rotate_every = \"10ms\"\n",
            "[record]: rotate_every is under a second",
        ),
        (
            "max_total = \"1KiB\"\n",
            "[record]: max_total \"1KiB\" is too small",
        ),
        ("dir = \"\"\n", "dir is empty"),
        ("bogus = 1\n", "bogus"),
    ] {
        let e = parse(&format!("{BASE}{TAIL}\n[record]\n{bad}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{bad}: {e}");
    }
}
