//! `[slo]` and `[[route.slo]]`: SLOs parsed into the model, resolved per route, and every
//! mistake reported at its line with a way out.

use std::path::Path;

use ficus_config::*;
use ficus_slo::{BurnRule, Scope, Severity, Sli, Window};

fn parse(text: &str) -> Result<Config, Diagnostics> {
    parse_str(text, "ficus.toml", Path::new("/etc/ficus"))
}

fn errors(text: &str) -> String {
    match parse(text) {
        Ok(c) => panic!("expected errors, got {:#?}", c.slo),
        Err(d) => d.to_string(),
    }
}

/// A valid file of 13 lines: what follows starts at line 14.
const HEAD: &str = r#"[[listener]]
bind = "127.0.0.1:8080"

[upstream.legacy]
url = "http://127.0.0.1:9001"

[upstream.modern]
url = "http://127.0.0.1:9002"

[default]
legacy = "legacy"

# SLOs
"#;

fn with_head(rest: &str) -> String {
    assert_eq!(HEAD.lines().count(), 13);
    format!("{HEAD}{rest}")
}

#[test]
fn slos_parse_and_resolve_per_route() {
    let cfg = parse(&with_head(
        r#"
[slo]
evaluate_every = "2s"
min_requests = 50
rollout_min_budget = 0.25

[[slo.burn_rate]]
severity = "page"
long = "1h"
short = "5m"
factor = 14.4

[[slo.burn_rate]]
severity = "ticket"
long = "3d"
short = "6h"
factor = 1

[[slo.default]]
name = "availability"
objective = 99.9

[[route]]
name = "checkout"
path = "/checkout"
legacy = "legacy"
modern = "modern"
stage = "canary"
weight = 5

[[route.slo]]
name = "modern-availability"
scope = "modern"
objective = 99.5
window = "28d"
bad = ["5xx", "429"]
min_requests = 10

[[route.slo]]
name = "fast"
sli = "latency"
threshold = "237ms"
objective = 99
window = "calendar-month"
"#,
    ))
    .unwrap();
    assert_eq!(cfg.slo.evaluate_every, std::time::Duration::from_secs(2));
    assert_eq!(cfg.slo.min_requests, 50);
    assert_eq!(cfg.slo.rollout_min_budget, 0.25);
    assert_eq!(
        cfg.slo.burn_rates,
        vec![
            BurnRule {
                severity: Severity::Page,
                long_s: 3600,
                short_s: 300,
                factor: 14.4
            },
            BurnRule {
                severity: Severity::Ticket,
                long_s: 3 * 86_400,
                short_s: 6 * 3600,
                factor: 1.0
            },
        ]
    );
    let specs = cfg.slo_specs();
    let ids: Vec<String> = specs.iter().map(|s| s.id()).collect();
    // The route's own SLOs replace the defaults; the default route gets the defaults.
    assert_eq!(
        ids,
        [
            "checkout/modern-availability",
            "checkout/fast",
            "default/availability"
        ]
    );
    let modern = &specs[0];
    assert_eq!(modern.scope, Scope::Modern);
    assert_eq!(
        modern.sli,
        Sli::Availability {
            bad_429: true,
            bad_4xx: false
        }
    );
    assert_eq!(modern.window, Window::Rolling { days: 28 });
    assert_eq!(modern.min_requests, 10);
    assert_eq!(modern.rules, cfg.slo.burn_rates);
    let fast = &specs[1];
    assert_eq!(
        fast.sli,
        Sli::Latency {
            threshold_us: 237_000
        }
    );
    assert_eq!(fast.window, Window::CalendarMonth);
    assert_eq!(fast.scope, Scope::Route);
    assert_eq!(fast.min_requests, 50, "[slo] min_requests");
    let default = &specs[2];
    assert_eq!(default.window, Window::Rolling { days: 30 });
    assert_eq!(default.objective, 99.9);
    for s in &specs {
        ficus_slo::validate(s).unwrap();
    }
}

#[test]
fn without_slo_sections_nothing_is_evaluated_and_the_workbook_table_is_the_default() {
    let cfg = parse(HEAD).unwrap();
    assert!(cfg.slo_specs().is_empty());
    assert_eq!(cfg.slo.burn_rates, ficus_slo::default_burn_rules());
    assert_eq!(cfg.slo.min_requests, defaults::SLO_MIN_REQUESTS);
    assert_eq!(cfg.slo.evaluate_every, defaults::SLO_EVALUATE_EVERY);
}

#[test]
fn mistakes_are_reported_at_their_lines() {
    let e = errors(&with_head(
        r#"[[slo.default]]
name = "a"
sli = "availabilty"
objective = 99.9

[[slo.default]]
name = "b"
sli = "latency"
objective = 99

[[slo.default]]
name = "c"
objective = 100

[[slo.default]]
name = "d"
objective = 99
window = "45d"
bad = ["5xx", "404"]
budget = 3
"#,
    ));
    assert!(
        e.contains("ficus.toml:16:7: error: slo.default #1: unknown sli \"availabilty\""),
        "{e}"
    );
    assert!(
        e.contains("ficus.toml:21:7: error: slo.default #2: a latency SLO needs a threshold"),
        "{e}"
    );
    assert!(e.contains("add threshold = \"300ms\""), "{e}");
    assert!(
        e.contains("ficus.toml:26:13: error: slo.default #3: objective 100 leaves no room"),
        "{e}"
    );
    assert!(
        e.contains("ficus.toml:31:10: error: slo.default #4: window \"45d\" is not a window"),
        "{e}"
    );
    assert!(e.contains("1 to 31 days"), "{e}");
    assert!(
        e.contains("ficus.toml:32:15: error: slo.default #4: unknown kind of bad answer \"404\""),
        "{e}"
    );
    assert!(
        e.contains("ficus.toml:33:1: error: slo.default #4: unknown key \"budget\""),
        "{e}"
    );
}

#[test]
fn route_slos_need_unique_names_and_at_most_four_thresholds_per_scope() {
    let mut text = with_head(
        r#"[[route]]
name = "r"
path = "/r"
legacy = "legacy"

[[route.slo]]
name = "same"
objective = 99

[[route.slo]]
name = "same"
objective = 98
"#,
    );
    let e = errors(&text);
    assert!(
        e.contains("route \"r\": slo #2: duplicate SLO name \"same\""),
        "{e}"
    );
    assert!(
        e.contains("the first SLO named \"same\" is at line 19"),
        "{e}"
    );

    text = with_head("[[route]]\nname = \"r\"\npath = \"/r\"\nlegacy = \"legacy\"\n");
    for (i, ms) in [100, 200, 300, 400, 500].iter().enumerate() {
        text.push_str(&format!(
            "\n[[route.slo]]\nname = \"l{i}\"\nsli = \"latency\"\nthreshold = \"{ms}ms\"\nobjective = 99\n"
        ));
    }
    let e = errors(&text);
    assert!(
        e.contains("slo #5: more than 4 latency thresholds on one scope"),
        "{e}"
    );
    // Four are fine, and one threshold shared by two SLOs counts once.
    let four = text.replace("threshold = \"500ms\"", "threshold = \"100ms\"");
    parse(&four).unwrap();
}

#[test]
fn a_burn_rate_table_with_a_mistake_is_refused_whole() {
    let e = errors(&with_head(
        r#"[[slo.burn_rate]]
severity = "page"
long = "5m"
short = "1h"
factor = 14.4

[[slo.burn_rate]]
severity = "pager"
long = "90s"
short = "7d"
"#,
    ));
    assert!(
        e.contains("slo.burn_rate #1: short must be shorter than long"),
        "{e}"
    );
    assert!(
        e.contains("slo.burn_rate #2: unknown severity \"pager\""),
        "{e}"
    );
    assert!(
        e.contains("slo.burn_rate #2: long \"90s\" is not a burn-rate window"),
        "{e}"
    );
    assert!(
        e.contains("slo.burn_rate #2: short \"7d\" is not a burn-rate window"),
        "{e}"
    );
    assert!(e.contains("slo.burn_rate #2: factor is missing"), "{e}");
}

#[test]
fn slo_settings_are_bounded() {
    let e = errors(&with_head(
        "[slo]\nevaluate_every = \"5m\"\nrollout_min_budget = 2\nmin_requests = -1\n",
    ));
    assert!(e.contains("[slo]: evaluate_every is out of range"), "{e}");
    assert!(
        e.contains("[slo]: rollout_min_budget 2 is out of range"),
        "{e}"
    );
    assert!(e.contains("[slo]: min_requests -1 is out of range"), "{e}");
}
