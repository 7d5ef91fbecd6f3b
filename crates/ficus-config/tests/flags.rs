//! `[[flag]]` and `[ofrep]`: flags parsed into the evaluation engine's model, and every
//! mistake reported at its line with a way out.

use std::path::Path;

use ficus_config::*;
use ficus_flags::{BucketHash, Condition, NumOp, Op, Outcome, SemVerOp, Value};

fn parse(text: &str) -> Result<Config, Diagnostics> {
    parse_str(text, "ficus.toml", Path::new("/etc/ficus"))
}

fn errors(text: &str) -> String {
    match parse(text) {
        Ok(c) => panic!("expected errors, got {:#?}", c.flags),
        Err(d) => d.to_string(),
    }
}

/// A valid file of 9 lines: what follows starts at line 10.
const HEAD: &str = r#"[[listener]]
bind = "127.0.0.1:8080"

[upstream.legacy]
url = "http://127.0.0.1:9001"

[default]
legacy = "legacy"

"#;

fn with_head(rest: &str) -> String {
    assert_eq!(HEAD.lines().count(), 9);
    format!("{HEAD}{rest}")
}

#[test]
fn flags_parse_into_the_engine_model() {
    let cfg = parse(&with_head(
        r#"[[flag]]
key = "new-checkout"
variants = { on = true, off = false }
default = "off"
metadata = { owner = "payments", ticket = 42 }

[[flag.rule]]
when = [
  { attribute = "plan", in = ["pro", "team"] },
  { attribute = "appVersion", semver = ">= 2.1.0" },
  { attribute = "age", ge = 18 },
  { attribute = "email", ends_with = "@example.com" },
  { attribute = "beta", exists = true },
]
variant = "on"

[[flag.rule]]
split = { on = 10, off = 90 }
bucket_by = "orgId"
seed = "checkout-2026"

[[flag]]
key = "banner"
variants = { spring = { color = "green", size = 3 }, none = {} }
default = "none"
enabled = false

[ofrep]
bind = "127.0.0.1:8016"
max_body = "16KiB"
per_second = 50
burst = 100
"#,
    ))
    .unwrap();
    assert_eq!(cfg.flags.len(), 2);
    let f = &cfg.flags[0];
    assert_eq!(f.key, "new-checkout");
    assert_eq!(f.variants["on"], Value::Bool(true));
    assert_eq!(f.default_variant, "off");
    assert!(f.enabled);
    assert_eq!(f.metadata["owner"], "payments");
    assert_eq!(f.metadata["ticket"], 42);
    assert_eq!(f.rules.len(), 2);
    assert_eq!(
        f.rules[0].when,
        vec![
            Condition {
                attribute: "plan".into(),
                op: Op::In(vec!["pro".into(), "team".into()])
            },
            Condition {
                attribute: "appVersion".into(),
                op: Op::SemVer(SemVerOp::Ge, "2.1.0".into())
            },
            Condition {
                attribute: "age".into(),
                op: Op::Num(NumOp::Ge, 18.0)
            },
            Condition {
                attribute: "email".into(),
                op: Op::EndsWith("@example.com".into())
            },
            Condition {
                attribute: "beta".into(),
                op: Op::Exists(true)
            },
        ]
    );
    assert_eq!(f.rules[0].then, Outcome::Variant("on".into()));
    // The split keeps the file's order: it decides who lands where.
    assert_eq!(
        f.rules[1].then,
        Outcome::Fractional {
            bucket_by: Some("orgId".into()),
            hash: BucketHash::FlagdCustomSeed("checkout-2026".into()),
            split: vec![("on".into(), 10), ("off".into(), 90)],
        }
    );
    let b = &cfg.flags[1];
    assert!(!b.enabled);
    let Value::Object(spring) = &b.variants["spring"] else {
        panic!("{:?}", b.variants)
    };
    assert_eq!(spring["color"], "green");
    assert_eq!(cfg.ofrep.bind, Some("127.0.0.1:8016".parse().unwrap()));
    assert_eq!(cfg.ofrep.max_body, 16 * 1024);
    assert_eq!((cfg.ofrep.per_second, cfg.ofrep.burst), (50.0, 100));
    assert_eq!(
        cfg.ofrep.max_context_attributes,
        defaults::OFREP_MAX_CONTEXT_ATTRIBUTES
    );
}

#[test]
fn the_split_order_is_the_files() {
    let cfg = parse(&with_head(
        "[[flag]]\nkey = \"f\"\nvariants = { z = 1, a = 2 }\ndefault = \"a\"\n[[flag.rule]]\nsplit = { z = 1, a = 3 }\n",
    ))
    .unwrap();
    let Outcome::Fractional { split, .. } = &cfg.flags[0].rules[0].then else {
        panic!()
    };
    assert_eq!(split, &[("z".to_string(), 1), ("a".to_string(), 3)]);
}

#[test]
fn mistakes_are_reported_at_their_lines() {
    let e = errors(&with_head(
        r#"[[flag]]
key = "bad key"
variants = { on = true }

[[flag]]
key = "mixed"
variants = { on = true, off = "no" }
default = "off"

[[flag]]
key = "rules"
variants = { on = true, off = false }
default = "maybe"
[[flag.rule]]
when = [{ attribute = "v", semver = "newer than 2" }, { attribute = "plan", eq = "a", ne = "b" }]
variant = "on"
[[flag.rule]]
variant = "on"
split = { on = 1 }
[[flag.rule]]
when = [{ eq = 1 }]
"#,
    ));
    assert!(
        e.contains("ficus.toml:11:7: error: flag #1: invalid key \"bad key\""),
        "{e}"
    );
    assert!(
        e.contains("ficus.toml:14:1: error: flag \"mixed\": "),
        "{e}"
    );
    assert!(
        e.contains("semver \"newer than 2\" is not a comparison with a version"),
        "{e}"
    );
    assert!(
        e.contains("a condition on \"plan\" needs exactly one operator"),
        "{e}"
    );
    assert!(e.contains("a rule has variant or split, not both"), "{e}");
    assert!(e.contains("a condition needs an attribute"), "{e}");
}

#[test]
fn an_unknown_default_variant_and_duplicate_keys_are_refused() {
    let e = errors(&with_head(
        "[[flag]]\nkey = \"f\"\nvariants = { on = true, off = false }\ndefault = \"maybe\"\n\n\
         [[flag]]\nkey = \"f\"\nvariants = { on = true }\n",
    ));
    assert!(e.contains("flag \"f\": "), "{e}");
    assert!(e.contains("maybe"), "{e}");
    assert!(e.contains("duplicate flag key \"f\""), "{e}");
}

#[test]
fn ofrep_off_loopback_needs_keys_and_limits_are_bounded() {
    let e = errors(&with_head(
        "[ofrep]\nbind = \"0.0.0.0:8016\"\nmax_body = \"1B\"\nburst = 0\n",
    ));
    assert!(
        e.contains("bind 0.0.0.0:8016 is not loopback and there is no keys_file"),
        "{e}"
    );
    assert!(
        e.contains("[ofrep]: max_body 1B is out of range")
            || e.contains("max_body \"1B\" is out of range"),
        "{e}"
    );
    assert!(e.contains("[ofrep]: burst 0 is out of range"), "{e}");
    let ok = parse(&with_head(
        "[ofrep]\nbind = \"0.0.0.0:8016\"\nkeys_file = \"ofrep-keys\"\n",
    ))
    .unwrap();
    assert_eq!(
        ok.ofrep.keys_file.as_deref(),
        Some(Path::new("/etc/ficus/ofrep-keys"))
    );
}

#[test]
fn ofrep_is_node_local_and_flags_are_fleet_wide() {
    let text = with_head(
        "[ofrep]\nbind = \"127.0.0.1:8016\"\n\n[[flag]]\nkey = \"f\"\nvariants = { on = true }\n",
    );
    let fleet = fleet_text(&text).unwrap();
    assert!(!fleet.contains("[ofrep]"), "{fleet}");
    assert!(fleet.contains("[[flag]]"), "{fleet}");
}

#[test]
fn more_flags_than_the_limit_are_refused() {
    let mut text = with_head("");
    for i in 0..=defaults::MAX_FLAGS {
        text.push_str(&format!(
            "[[flag]]\nkey = \"f{i}\"\nvariants = {{ on = true }}\n"
        ));
    }
    let e = errors(&text);
    assert!(e.contains("10001 flags, more than 10000"), "{e}");
}

#[test]
fn max_streams_is_bounded() {
    let e = errors(&with_head(
        "[ofrep]\nbind = \"127.0.0.1:8016\"\nmax_streams = 0\n",
    ));
    assert!(e.contains("[ofrep]: max_streams 0 is out of range"), "{e}");
    let ok = parse(&with_head(
        "[ofrep]\nbind = \"127.0.0.1:8016\"\nmax_streams = 3\n",
    ))
    .unwrap();
    assert_eq!(ok.ofrep.max_streams, 3);
}
