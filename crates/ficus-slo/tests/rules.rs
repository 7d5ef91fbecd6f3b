//! The generated Prometheus rule file: structure (indentation), contents, windows and
//! determinism. No YAML parser is available, so the structure is checked line by line.

use ficus_slo::{
    default_burn_rules, prometheus_rules, BurnRule, Scope, Severity, Sli, Spec, Window,
};

fn availability() -> Spec {
    Spec {
        name: "availability".into(),
        route: "orders".into(),
        scope: Scope::Route,
        sli: Sli::Availability {
            bad_429: false,
            bad_4xx: false,
        },
        objective: 99.9,
        window: Window::Rolling { days: 30 },
        rules: default_burn_rules(),
        min_requests: 0,
    }
}

fn latency() -> Spec {
    Spec {
        name: "latency".into(),
        route: "users".into(),
        scope: Scope::Modern,
        sli: Sli::Latency {
            threshold_us: 300_000,
        },
        objective: 99.5,
        window: Window::CalendarMonth,
        rules: vec![
            BurnRule {
                severity: Severity::Page,
                long_s: 5400,
                short_s: 600,
                factor: 10.0,
            },
            BurnRule {
                severity: Severity::Page,
                long_s: 3600,
                short_s: 300,
                factor: 14.4,
            },
        ],
        min_requests: 20,
    }
}

/// Every line has one of the shapes the writer produces, at its indentation, and block
/// scalars only follow `expr: |`.
fn check_structure(text: &str) {
    let mut in_block = false;
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if in_block {
            if let Some(rest) = line.strip_prefix("      ") {
                assert!(!rest.is_empty(), "line {n}: empty block line");
                continue;
            }
            in_block = false;
        }
        let ok = line.starts_with("# ")
            || line == "groups:"
            || line.starts_with("- name: \"")
            || line == "  rules:"
            || line.starts_with("  - record: ")
            || line.starts_with("  - alert: ")
            || line.starts_with("    expr: ")
            || line == "    labels:"
            || line == "    annotations:"
            || (line.starts_with("      ") && !line[6..].starts_with(' ') && line.contains(": "));
        assert!(ok, "line {n} has an unexpected shape: {line:?}");
        if line == "    expr: |" {
            in_block = true;
        }
        // Quoted values are closed.
        if let Some((_, v)) = line.split_once(": \"") {
            assert!(v.ends_with('"'), "line {n}: unclosed quote");
        }
    }
}

/// The expression of the rule `kind: name` in the group whose name contains `group`.
fn expr_of(text: &str, group: &str, item: &str) -> String {
    let group_at = text.find(&format!("- name: \"{group}")).expect(group);
    let rest = &text[group_at..];
    let at = rest.find(&format!("  - {item}\n")).expect(item);
    let rest = &rest[at..];
    let lines: Vec<&str> = rest.lines().skip(1).collect();
    let first = lines[0].strip_prefix("    expr: ").unwrap();
    if first != "|" {
        return first.to_owned();
    }
    lines[1..]
        .iter()
        .take_while(|l| {
            l.starts_with("      ") && !l.starts_with("      sloth") && !l.contains(": \"")
        })
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn default_spec_rules() {
    let text = prometheus_rules(&[availability()]);
    check_structure(&text);
    assert!(text.starts_with("# Prometheus rules for ficus SLOs"));
    assert!(text.contains("\ngroups:\n"));
    for g in [
        "sloth-slo-sli-recordings-ficus-orders-availability",
        "sloth-slo-meta-recordings-ficus-orders-availability",
        "sloth-slo-alerts-ficus-orders-availability",
    ] {
        assert_eq!(
            text.matches(&format!("- name: \"{g}\"\n  rules:\n"))
                .count(),
            1,
            "{g}"
        );
    }
    // One SLI recording per window, each over its own window on both counters.
    for w in ["5m", "30m", "1h", "2h", "6h", "1d", "3d"] {
        let e = expr_of(
            &text,
            "sloth-slo-sli",
            &format!("record: slo:sli_error:ratio_rate{w}"),
        );
        assert_eq!(
            e,
            format!(
                "(sum(rate(ficus_slo_bad_requests_total{{slo=\"orders/availability\"}}[{w}])))\n/\n(sum(rate(ficus_slo_requests_total{{slo=\"orders/availability\"}}[{w}])))"
            )
        );
        assert!(text.contains(&format!("      sloth_window: \"{w}\"\n")));
    }
    let period = expr_of(
        &text,
        "sloth-slo-sli",
        "record: slo:sli_error:ratio_rate30d",
    );
    assert!(period.contains("sum_over_time(slo:sli_error:ratio_rate5m{"));
    assert!(period.contains("count_over_time(slo:sli_error:ratio_rate5m{"));
    assert_eq!(period.matches("[30d]").count(), 2);
    // Metadata.
    let meta = "sloth-slo-meta";
    assert_eq!(
        expr_of(&text, meta, "record: slo:objective:ratio"),
        "vector(0.999)"
    );
    assert_eq!(
        expr_of(&text, meta, "record: slo:error_budget:ratio"),
        "vector(0.001)"
    );
    assert_eq!(
        expr_of(&text, meta, "record: slo:time_period:days"),
        "vector(30)"
    );
    assert!(expr_of(&text, meta, "record: slo:current_burn_rate:ratio")
        .starts_with("slo:sli_error:ratio_rate5m{"));
    assert!(expr_of(&text, meta, "record: slo:period_burn_rate:ratio")
        .starts_with("slo:sli_error:ratio_rate30d{"));
    assert!(expr_of(
        &text,
        meta,
        "record: slo:period_error_budget_remaining:ratio"
    )
    .starts_with("1 - slo:period_burn_rate:ratio{"));
    assert_eq!(expr_of(&text, meta, "record: sloth_slo_info"), "vector(1)");
    assert!(text.contains("      sloth_objective: \"99.9\"\n"));
    // Labels on every recording.
    let records = text.matches("  - record: ").count();
    assert_eq!(records, 8 + 7);
    for l in [
        "      route: \"orders\"\n",
        "      scope: \"route\"\n",
        "      slo: \"orders/availability\"\n",
        "      sloth_id: \"ficus-orders-availability\"\n",
        "      sloth_service: \"ficus\"\n",
        "      sloth_slo: \"orders-availability\"\n",
    ] {
        assert_eq!(text.matches(l).count(), records, "{l:?}");
    }
    // Alerts: the workbook table, each condition on the right windows and factor.
    let page = expr_of(&text, "sloth-slo-alerts", "alert: FicusSLOPage");
    let sel = "{slo=\"orders/availability\", sloth_id=\"ficus-orders-availability\", sloth_service=\"ficus\", sloth_slo=\"orders-availability\"}";
    let cond = |w: &str, f: &str| {
        format!("max(slo:sli_error:ratio_rate{w}{sel} > ({f} * 0.001)) without (sloth_window)")
    };
    assert_eq!(
        page,
        format!(
            "(\n{}\nand\n{}\n)\nor\n(\n{}\nand\n{}\n)",
            cond("1h", "14.4"),
            cond("5m", "14.4"),
            cond("6h", "6"),
            cond("30m", "6")
        )
    );
    let ticket = expr_of(&text, "sloth-slo-alerts", "alert: FicusSLOTicket");
    assert_eq!(
        ticket,
        format!(
            "(\n{}\nand\n{}\n)\nor\n(\n{}\nand\n{}\n)",
            cond("1d", "3"),
            cond("2h", "3"),
            cond("3d", "1"),
            cond("6h", "1")
        )
    );
    assert!(text.contains("      severity: \"page\"\n      sloth_severity: \"page\"\n"));
    assert!(text.contains("      severity: \"ticket\"\n      sloth_severity: \"ticket\"\n"));
    assert_eq!(text.matches("    annotations:\n      summary: ").count(), 2);
    // No traffic guard without min_requests.
    assert!(!text.contains("increase("));
}

#[test]
fn custom_rules_calendar_window_and_guard() {
    let text = prometheus_rules(&[latency()]);
    check_structure(&text);
    // The rule windows join the standard ones, in ascending order.
    let order: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("  - record: slo:sli_error:ratio_rate"))
        .collect();
    assert_eq!(
        order,
        ["5m", "10m", "30m", "1h", "90m", "2h", "6h", "1d", "3d", "30d"]
    );
    // A calendar month is 30 days in Prometheus.
    assert!(text.contains("    expr: vector(30)\n"));
    assert!(text.contains("    expr: vector(0.995)\n"));
    assert!(text.contains("    expr: vector(0.005)\n"));
    // Only a page alert: the spec has no ticket rule.
    assert!(text.contains("  - alert: FicusSLOPage\n"));
    assert!(!text.contains("FicusSLOTicket"));
    let page = expr_of(&text, "sloth-slo-alerts", "alert: FicusSLOPage");
    assert!(page.contains("ratio_rate90m{") && page.contains("(10 * 0.005)"));
    assert!(page.contains("ratio_rate10m{") && page.contains("(14.4 * 0.005)"));
    // The traffic guard on each of the four windows.
    for w in ["90m", "10m", "1h", "5m"] {
        assert!(
            page.contains(&format!(
                "and on()\nsum(increase(ficus_slo_requests_total{{slo=\"users/latency\"}}[{w}])) >= 20"
            )),
            "{w}"
        );
    }
    // The latency threshold is not a histogram edge: said in the comment.
    assert!(
        text.contains("# SLO users/latency: latency, bad = slower than 0.3 s (no histogram edge")
    );
    assert!(text.contains("      scope: \"modern\"\n"));
}

#[test]
fn several_specs_in_order_and_deterministic() {
    let specs = [availability(), latency()];
    let a = prometheus_rules(&specs);
    let b = prometheus_rules(&specs);
    assert_eq!(a, b);
    check_structure(&a);
    let first = a
        .find("sloth-slo-sli-recordings-ficus-orders-availability")
        .unwrap();
    let second = a
        .find("sloth-slo-sli-recordings-ficus-users-latency")
        .unwrap();
    assert!(first < second);
    assert_eq!(a.matches("\ngroups:\n").count(), 1);
    assert_eq!(a.matches("- name: ").count(), 6);
    // Reversed specs, reversed groups.
    let r = prometheus_rules(&[latency(), availability()]);
    assert!(r.find("ficus-users-latency").unwrap() < r.find("ficus-orders-availability").unwrap());
}

#[test]
fn empty_and_escaped() {
    let text = prometheus_rules(&[]);
    assert!(text.ends_with("groups: []\n"));
    let mut odd = availability();
    odd.route = "we\"ird\\route".into();
    let text = prometheus_rules(&[odd]);
    check_structure(&text);
    assert!(text.contains(r#"      route: "we\"ird\\route""#));
    assert!(text.contains(r#"{slo="we\"ird\\route/availability"}"#));
}
