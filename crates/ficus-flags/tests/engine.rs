//! Rules, context parsing, validation, semver, resolutions on the wire and ETags.
use std::collections::BTreeMap;

use ficus_flags::{
    etag, evaluate, validate, BucketHash, Condition, Context, ContextError, ErrorCode, Flag,
    FlagError, NumOp, Op, Outcome, Reason, Rule, SemVer, SemVerOp, Value, ValueKind,
};
use serde_json::json;

/// A flag from its serialized form (which this also exercises), validated.
fn flag(v: serde_json::Value) -> Flag {
    let f: Flag = serde_json::from_value(v).expect("flag parses");
    validate(&f).expect("flag is valid");
    f
}

fn ctx(v: serde_json::Value) -> Context {
    Context::from_json(&v).expect("context parses")
}

/// A string flag with variants "yes"/"no" (default "no") and one rule `cond -> yes`.
fn with_condition(attribute: &str, op: serde_json::Value) -> Flag {
    flag(json!({
        "key": "f",
        "variants": {"yes": "Y", "no": "N"},
        "defaultVariant": "no",
        "rules": [{"when": [{"attribute": attribute, "op": op}], "then": {"variant": "yes"}}],
    }))
}

fn holds(f: &Flag, c: &Context) -> bool {
    let r = evaluate(f, c);
    assert!(r.error.is_none(), "{r:?}");
    match r.reason {
        Reason::TargetingMatch => true,
        Reason::Default => false,
        other => panic!("unexpected reason {other:?}"),
    }
}

#[test]
fn every_operator() {
    let c = ctx(json!({
        "targetingKey": "user-42",
        "plan": "pro",
        "seats": 12,
        "ratio": 0.5,
        "beta": true,
        "email": "ann@example.com",
        "version": "2.3.1",
        "build": 7,
        "user": {"tier": {"name": "gold"}, "tags": ["a", "b"]},
        "nothing": null,
    }));
    let cases: &[(&str, serde_json::Value, bool)] = &[
        ("plan", json!({"eq": "pro"}), true),
        ("plan", json!({"eq": "free"}), false),
        ("seats", json!({"eq": 12.0}), true),
        ("beta", json!({"eq": true}), true),
        ("beta", json!({"eq": "true"}), false),
        ("user.tags", json!({"eq": ["a", "b"]}), true),
        ("user.tier", json!({"eq": {"name": "gold"}}), true),
        ("plan", json!({"not_eq": "free"}), true),
        ("plan", json!({"not_eq": "pro"}), false),
        ("plan", json!({"in": ["team", "pro"]}), true),
        ("plan", json!({"in": []}), false),
        ("seats", json!({"in": [1, 12]}), true),
        ("plan", json!({"not_in": ["free", "team"]}), true),
        ("plan", json!({"not_in": ["pro"]}), false),
        ("email", json!({"starts_with": "ann@"}), true),
        ("email", json!({"starts_with": "Ann@"}), false),
        ("email", json!({"ends_with": "@example.com"}), true),
        ("email", json!({"ends_with": ".org"}), false),
        ("seats", json!({"starts_with": "1"}), false),
        ("version", json!({"sem_ver": [">=", "2.3.0"]}), true),
        ("version", json!({"sem_ver": ["<", "2.3.1"]}), false),
        ("version", json!({"sem_ver": ["=", "v2.3.1"]}), true),
        ("version", json!({"sem_ver": ["!=", "2.3.1"]}), false),
        ("version", json!({"sem_ver": ["<=", "2.3.1"]}), true),
        ("version", json!({"sem_ver": [">", "2.3.1-rc.1"]}), true),
        ("version", json!({"sem_ver": ["^", "2.0.0"]}), true),
        ("version", json!({"sem_ver": ["^", "3.0.0"]}), false),
        ("version", json!({"sem_ver": ["~", "2.3.9"]}), true),
        ("version", json!({"sem_ver": ["~", "2.4.0"]}), false),
        ("build", json!({"sem_ver": [">", "6"]}), true),
        ("plan", json!({"sem_ver": [">", "0.0.0"]}), false),
        ("seats", json!({"num": [">", 10]}), true),
        ("seats", json!({"num": [">=", 12]}), true),
        ("seats", json!({"num": ["<", 12]}), false),
        ("ratio", json!({"num": ["<=", 0.5]}), true),
        ("plan", json!({"num": [">", 0]}), false),
        ("plan", json!({"exists": true}), true),
        ("plan", json!({"exists": false}), false),
        ("missing", json!({"exists": false}), true),
        ("missing", json!({"exists": true}), false),
        ("nothing", json!({"exists": false}), true),
        ("targetingKey", json!({"eq": "user-42"}), true),
        ("targetingKey", json!({"starts_with": "user-"}), true),
        ("user.tier.name", json!({"eq": "gold"}), true),
        ("user.tier.name", json!({"in": ["silver"]}), false),
    ];
    for (attribute, op, want) in cases {
        let f = with_condition(attribute, op.clone());
        assert_eq!(holds(&f, &c), *want, "{attribute} {op}");
    }
}

#[test]
fn missing_attributes_never_match() {
    let c = ctx(json!({"user": {"plan": "pro"}, "n": null, "s": "x"}));
    for attribute in [
        "absent",
        "user.absent",
        "user.plan.deeper",
        "s.x",
        "n",
        "user.",
    ] {
        for op in [
            json!({"eq": "pro"}),
            json!({"not_eq": "pro"}),
            json!({"in": ["pro"]}),
            json!({"not_in": ["pro"]}),
            json!({"starts_with": ""}),
            json!({"ends_with": ""}),
            json!({"sem_ver": ["!=", "1.0.0"]}),
            json!({"num": ["<", 1e300]}),
            json!({"exists": true}),
        ] {
            let f = with_condition(attribute, op.clone());
            assert!(!holds(&f, &c), "{attribute} {op} should not match");
        }
        assert!(holds(
            &with_condition(attribute, json!({"exists": false})),
            &c
        ));
    }
    // No targeting key: a condition on it does not match either.
    assert!(!holds(
        &with_condition("targetingKey", json!({"not_eq": "x"})),
        &Context::new()
    ));
}

#[test]
fn dotted_paths_and_flat_dotted_keys() {
    let c = ctx(json!({"app.version": "flat", "app": {"version": "nested"}, "a": {"b": {"c": 1}}}));
    // An exact top-level key wins over the path.
    assert!(holds(
        &with_condition("app.version", json!({"eq": "flat"})),
        &c
    ));
    assert!(holds(&with_condition("a.b.c", json!({"eq": 1})), &c));
    assert_eq!(c.get("a.b").unwrap().into_owned(), json!({"c": 1}));
    assert!(c.get("a.b.c.d").is_none());
}

#[test]
fn first_matching_rule_wins_and_reasons() {
    let f = flag(json!({
        "key": "order",
        "variants": {"first": 1, "second": 2, "default": 0},
        "defaultVariant": "default",
        "rules": [
            {"when": [{"attribute": "plan", "op": {"eq": "pro"}},
                      {"attribute": "country", "op": {"eq": "FR"}}],
             "then": {"variant": "first"}},
            {"when": [{"attribute": "plan", "op": {"eq": "pro"}}], "then": {"variant": "second"}},
            {"then": {"variant": "first"}, "when": [{"attribute": "never", "op": {"exists": true}}]},
        ],
        "metadata": {"owner": "team-a", "version": 3, "experiment": false},
    }));
    let r = evaluate(&f, &ctx(json!({"plan": "pro", "country": "FR"})));
    assert_eq!(
        (r.variant.as_deref(), r.reason),
        (Some("first"), Reason::TargetingMatch)
    );
    assert_eq!(r.value, Some(Value::Number(1.0)));
    assert_eq!(r.metadata["owner"], json!("team-a"));
    // The conjunction fails, so the second rule decides.
    let r = evaluate(&f, &ctx(json!({"plan": "pro", "country": "DE"})));
    assert_eq!(r.variant.as_deref(), Some("second"));
    // Nothing matches: the default, reason DEFAULT.
    let r = evaluate(&f, &ctx(json!({"plan": "free"})));
    assert_eq!(
        (r.variant.as_deref(), r.reason),
        (Some("default"), Reason::Default)
    );
    assert_eq!(r.value, Some(Value::Number(0.0)));
    assert!(r.error.is_none());

    // A rule without conditions always matches and shadows the rules after it.
    let f = flag(json!({
        "key": "always",
        "variants": {"a": true, "b": false},
        "defaultVariant": "b",
        "rules": [{"then": {"variant": "a"}},
                  {"when": [{"attribute": "x", "op": {"exists": false}}], "then": {"variant": "b"}}],
    }));
    let r = evaluate(&f, &Context::new());
    assert_eq!(
        (r.value, r.reason),
        (Some(Value::Bool(true)), Reason::TargetingMatch)
    );
}

#[test]
fn static_and_disabled() {
    let mut f = flag(json!({
        "key": "static",
        "variants": {"on": {"color": "red"}, "off": {"color": "blue"}},
        "defaultVariant": "off",
        "metadata": {"owner": "team-b"},
    }));
    let r = evaluate(&f, &Context::new());
    assert_eq!(
        (r.variant.as_deref(), r.reason),
        (Some("off"), Reason::Static)
    );
    assert_eq!(
        r.value.as_ref().map(Value::to_json),
        Some(json!({"color": "blue"}))
    );

    f.enabled = false;
    f.rules.push(Rule {
        when: vec![],
        then: Outcome::Variant("on".to_owned()),
    });
    let r = evaluate(&f, &Context::with_targeting_key("u"));
    assert_eq!(r.reason, Reason::Disabled);
    assert_eq!((r.value, r.variant, r.error), (None, None, None));
    assert_eq!(r.metadata["owner"], json!("team-b"));
}

fn split_flag(split: serde_json::Value, bucket_by: Option<&str>) -> Flag {
    let mut fractional = json!({"split": split});
    if let Some(b) = bucket_by {
        fractional["bucketBy"] = json!(b);
    }
    flag(json!({
        "key": "split-flag",
        "variants": {"a": "A", "b": "B", "c": "C", "off": "OFF"},
        "defaultVariant": "off",
        "rules": [{"then": {"fractional": fractional}}],
    }))
}

#[test]
fn fractional_distribution_within_two_percent() {
    for weights in [[50u32, 50, 0], [25, 25, 50], [10, 30, 60], [1, 1, 1]] {
        let f = split_flag(
            json!([["a", weights[0]], ["b", weights[1]], ["c", weights[2]]]),
            None,
        );
        let total: u32 = weights.iter().sum();
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        let n = 10_000;
        for i in 0..n {
            let r = evaluate(&f, &Context::with_targeting_key(format!("user-{i}")));
            assert_eq!(r.reason, Reason::Split);
            *counts.entry(r.variant.unwrap()).or_default() += 1;
        }
        for (variant, w) in ["a", "b", "c"].into_iter().zip(weights) {
            let got = f64::from(*counts.get(variant).unwrap_or(&0)) / f64::from(n);
            let want = f64::from(w) / f64::from(total);
            assert!(
                (got - want).abs() <= 0.02,
                "{weights:?}: {variant} got {got}, want {want}"
            );
        }
    }
}

#[test]
fn fractional_is_deterministic_and_sticky() {
    let f = split_flag(json!([["a", 1], ["b", 1], ["c", 1]]), Some("session"));
    let c = ctx(json!({"targetingKey": "u-1", "session": "s-9"}));
    let first = evaluate(&f, &c);
    for _ in 0..100 {
        assert_eq!(evaluate(&f, &c), first);
        assert_eq!(evaluate(&f.clone(), &c.clone()), first);
    }
    // bucketBy takes precedence over the targeting key...
    let other_tk = ctx(json!({"targetingKey": "u-2", "session": "s-9"}));
    assert_eq!(evaluate(&f, &other_tk).variant, first.variant);
    // ...and numbers and booleans bucket by their JSON text.
    let numeric = ctx(json!({"session": 1234}));
    let text = ctx(json!({"session": "1234"}));
    assert_eq!(evaluate(&f, &numeric).variant, evaluate(&f, &text).variant);
    // A custom seed replaces the flag key as prefix (flagd's {"cat": [seed, {"var": ..}]}).
    let mut seeded = f.clone();
    if let Outcome::Fractional { hash, .. } = &mut seeded.rules[0].then {
        *hash = BucketHash::FlagdCustomSeed("split-flag".to_owned());
    }
    assert_eq!(evaluate(&seeded, &c).variant, first.variant);
}

#[test]
fn fractional_without_unit_is_targeting_key_missing() {
    let f = split_flag(json!([["a", 1], ["b", 1]]), None);
    for c in [
        Context::new(),
        ctx(json!({"targetingKey": ""})),
        ctx(json!({"targetingKey": null, "x": 1})),
    ] {
        let r = evaluate(&f, &c);
        assert_eq!(r.reason, Reason::Error);
        let (code, details) = r.error.clone().unwrap();
        assert_eq!(code, ErrorCode::TargetingKeyMissing);
        assert!(details.contains("split-flag"), "{details}");
        // The default is filled in for the gateway's own use, not sent on the wire.
        assert_eq!(r.variant.as_deref(), Some("off"));
        assert_eq!(r.value, Some(Value::String("OFF".to_owned())));
        let wire = r.to_ofrep();
        assert_eq!(wire["errorCode"], json!("TARGETING_KEY_MISSING"));
        assert!(wire.get("value").is_none() && wire.get("reason").is_none());
    }
    // bucketBy absent (or empty, or an object) falls back to the targeting key, as flagd does.
    let g = split_flag(json!([["a", 1], ["b", 1]]), Some("session"));
    let by_tk = split_flag(json!([["a", 1], ["b", 1]]), None);
    for i in 0..50 {
        let tk = format!("user-{i}");
        let want = evaluate(&by_tk, &Context::with_targeting_key(&tk)).variant;
        for session in [json!(null), json!(""), json!({"id": 1})] {
            let c = Context::with_targeting_key(&tk).attr("session", session);
            assert_eq!(evaluate(&g, &c).variant, want);
        }
    }
    // Neither: the error names the bucketBy attribute.
    let r = evaluate(&g, &Context::new());
    assert!(r.error.unwrap().1.contains("session"));
    // A rule before the fractional one still resolves without a targeting key.
    let mut h = g.clone();
    h.rules.insert(
        0,
        Rule {
            when: vec![Condition {
                attribute: "plan".to_owned(),
                op: Op::Eq(json!("pro")),
            }],
            then: Outcome::Variant("c".to_owned()),
        },
    );
    let r = evaluate(&h, &ctx(json!({"plan": "pro"})));
    assert_eq!(
        (r.variant.as_deref(), r.reason),
        (Some("c"), Reason::TargetingMatch)
    );
}

#[test]
fn unvalidated_flags_fail_general() {
    let mut f = split_flag(json!([["a", 1]]), None);
    f.rules[0].then = Outcome::Variant("nope".to_owned());
    let r = evaluate(&f, &Context::new());
    assert_eq!(r.reason, Reason::Error);
    assert_eq!(r.error.as_ref().unwrap().0, ErrorCode::General);
    assert_eq!((r.value, r.variant), (None, None));

    f.rules[0].then = Outcome::Fractional {
        bucket_by: None,
        hash: BucketHash::Flagd,
        split: vec![("a".to_owned(), 0)],
    };
    let r = evaluate(&f, &Context::with_targeting_key("u"));
    assert_eq!(r.error.unwrap().0, ErrorCode::General);

    f.rules.clear();
    f.default_variant = "gone".to_owned();
    assert_eq!(
        evaluate(&f, &Context::new()).error.unwrap().0,
        ErrorCode::General
    );
}

#[test]
fn resolutions_on_the_wire() {
    let f = flag(json!({
        "key": "limit",
        "variants": {"low": 10, "high": 2.5},
        "defaultVariant": "low",
        "metadata": {"team": "edge"},
    }));
    let wire = evaluate(&f, &Context::new()).to_ofrep();
    // Whole numbers go out as JSON integers (OFREP tells integers from floats by spelling).
    assert_eq!(
        serde_json::to_string(&wire).unwrap(),
        r#"{"key":"limit","metadata":{"team":"edge"},"reason":"STATIC","value":10,"variant":"low"}"#
    );
    assert_eq!(serde_json::to_string(&Value::Number(2.5)).unwrap(), "2.5");

    let mut disabled = f.clone();
    disabled.enabled = false;
    assert_eq!(
        evaluate(&disabled, &Context::new()).to_ofrep(),
        json!({"key": "limit", "reason": "DISABLED", "metadata": {"team": "edge"}})
    );

    let nf = ficus_flags::Resolution::flag_not_found("ghost");
    assert_eq!(nf.error.as_ref().unwrap().0.http_status(), 404);
    let wire = nf.to_ofrep();
    assert_eq!(wire["errorCode"], json!("FLAG_NOT_FOUND"));
    assert_eq!(wire["key"], json!("ghost"));

    for (reason, s) in [
        (Reason::Static, "\"STATIC\""),
        (Reason::TargetingMatch, "\"TARGETING_MATCH\""),
        (Reason::Split, "\"SPLIT\""),
        (Reason::Disabled, "\"DISABLED\""),
        (Reason::Default, "\"DEFAULT\""),
        (Reason::Error, "\"ERROR\""),
    ] {
        assert_eq!(serde_json::to_string(&reason).unwrap(), s);
        assert_eq!(format!("\"{reason}\""), s);
    }
    for (code, s) in [
        (ErrorCode::ParseError, "PARSE_ERROR"),
        (ErrorCode::TargetingKeyMissing, "TARGETING_KEY_MISSING"),
        (ErrorCode::InvalidContext, "INVALID_CONTEXT"),
        (ErrorCode::FlagNotFound, "FLAG_NOT_FOUND"),
        (ErrorCode::General, "GENERAL"),
    ] {
        assert_eq!(serde_json::to_value(code).unwrap(), json!(s));
        assert_eq!(code.as_str(), s);
    }
}

#[test]
fn context_parsing() {
    for bad in [json!([]), json!("ctx"), json!(null), json!(1), json!(true)] {
        let e = Context::from_json(&bad).unwrap_err();
        assert!(matches!(e, ContextError::NotAnObject { .. }), "{bad}");
        assert_eq!(e.code(), ErrorCode::InvalidContext);
    }
    for bad in [json!(1), json!(true), json!({"id": "x"}), json!(["a"])] {
        let e = Context::from_json(&json!({"targetingKey": bad})).unwrap_err();
        assert!(matches!(e, ContextError::TargetingKeyNotString { .. }));
        assert_eq!(e.code(), ErrorCode::InvalidContext);
        assert!(
            e.to_string().contains("targetingKey must be a string"),
            "{e}"
        );
    }
    let c = Context::from_json(&json!({"targetingKey": "u-1", "plan": "pro"})).unwrap();
    assert_eq!(c.targeting_key.as_deref(), Some("u-1"));
    assert!(!c.attrs.contains_key("targetingKey"));
    assert_eq!(c.get("targetingKey").unwrap().into_owned(), json!("u-1"));
    assert_eq!(c.get("plan").unwrap().into_owned(), json!("pro"));
    assert_eq!(Context::from_json(&json!({})).unwrap(), Context::new());

    // The whole OFREP request body.
    let body = json!({"context": {"targetingKey": "u-2", "x": 1}});
    assert_eq!(
        Context::from_request_body(&body).unwrap(),
        Context::with_targeting_key("u-2").attr("x", 1)
    );
    assert_eq!(
        Context::from_request_body(&json!({})).unwrap(),
        Context::new()
    );
    assert!(matches!(
        Context::from_request_body(&json!({"context": [1]})),
        Err(ContextError::NotAnObject { .. })
    ));
    assert!(matches!(
        Context::from_request_body(&json!("body")),
        Err(ContextError::BodyNotAnObject { .. })
    ));
    assert!(Context::from_request_body(&json!({"context": {"targetingKey": 7}})).is_err());
}

#[test]
fn semver_ordering() {
    // Strictly increasing, semver 2.0 §11's example and more.
    let ordered = [
        "0.0.1",
        "0.1.0",
        "1.0.0-0",
        "1.0.0-2",
        "1.0.0-10",
        "1.0.0-99999999999999999999",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.2.0",
        "1.10.0",
        "2.0.0",
        "10.0.0",
        "123456789012345678901234567890.0.0",
    ];
    let parsed: Vec<SemVer> = ordered.iter().map(|s| s.parse().unwrap()).collect();
    for (i, a) in parsed.iter().enumerate() {
        for (j, b) in parsed.iter().enumerate() {
            assert_eq!(a.cmp(b), i.cmp(&j), "{} vs {}", ordered[i], ordered[j]);
        }
    }
    let v = |s: &str| SemVer::parse(s).unwrap();
    assert_eq!(v("1.0.0+build.1"), v("1.0.0+other"));
    assert_eq!(v("v1"), v("1.0.0"));
    assert_eq!(v("V1.2"), v("1.2.0"));
    assert!(v("1.0.0-rc.1").is_prerelease());
    assert!(SemVerOp::Caret.matches(&v("3.9.0-rc.1"), &v("3.0.0")));
    assert!(SemVerOp::Tilde.matches(&v("3.0.9"), &v("3.0.0")));
    assert!(!SemVerOp::Tilde.matches(&v("3.1.0"), &v("3.0.0")));
}

/// open-feature/flagd-testbed `evaluator/gherkin/semver.feature` (commit 82ba89ec).
#[test]
fn upstream_flagd_testbed_semver() {
    let ladder = flag(json!({
        "key": "equal-greater-lesser-version-flag",
        "variants": {"equal": "equal", "greater": "greater", "lesser": "lesser", "none": "none"},
        "defaultVariant": "none",
        "rules": [
            {"when": [{"attribute": "version", "op": {"sem_ver": ["=", "2.0.0"]}}], "then": {"variant": "equal"}},
            {"when": [{"attribute": "version", "op": {"sem_ver": [">", "2.0.0"]}}], "then": {"variant": "greater"}},
            {"when": [{"attribute": "version", "op": {"sem_ver": ["<", "2.0.0"]}}], "then": {"variant": "lesser"}},
        ],
    }));
    let range = flag(json!({
        "key": "major-minor-version-flag",
        "variants": {"minor": "minor", "major": "major", "none": "none"},
        "defaultVariant": "none",
        "rules": [
            {"when": [{"attribute": "version", "op": {"sem_ver": ["~", "3.0.0"]}}], "then": {"variant": "minor"}},
            {"when": [{"attribute": "version", "op": {"sem_ver": ["^", "3.0.0"]}}], "then": {"variant": "major"}},
        ],
    }));
    let single = |literal: &str, op: &str| {
        flag(json!({
            "key": "f",
            "variants": {"match": "match", "no-match": "no-match"},
            "defaultVariant": "no-match",
            "rules": [{"when": [{"attribute": "version", "op": {"sem_ver": [op, literal]}}],
                       "then": {"variant": "match"}}],
        }))
    };
    let cases: Vec<(Flag, serde_json::Value, &str)> = vec![
        (ladder.clone(), json!("2.0.0"), "equal"),
        (ladder.clone(), json!("2.1.0"), "greater"),
        (ladder.clone(), json!("1.9.0"), "lesser"),
        (ladder.clone(), json!("2.0.0-alpha"), "lesser"),
        (ladder.clone(), json!("2.0.0.0"), "none"),
        (range.clone(), json!("3.0.1"), "minor"),
        (range.clone(), json!("3.1.0"), "major"),
        (range.clone(), json!("4.0.0"), "none"),
        (single("v1.0.0", "="), json!("1.0.0"), "match"),
        (single("v1.0.0", "="), json!("v1.0.0"), "match"),
        (single("v1.0.0", "="), json!("V1.0.0"), "match"),
        (single("v1.0.0", "="), json!("2.0.0"), "no-match"),
        (single("1", "^"), json!("1.5.0"), "match"),
        (single("1", "^"), json!("1.0"), "match"),
        (single("1", "^"), json!("1"), "match"),
        (single("1", "^"), json!(1), "match"),
        (single("1", "^"), json!(1.0), "match"),
        (single("1", "^"), json!(1.2), "match"),
        (single("1", "^"), json!("2.0.0"), "no-match"),
        (single("1.1", ">"), json!(1.2), "match"),
        (single("1.1", ">"), json!(1.1), "no-match"),
        (single("1.1", ">"), json!(2), "match"),
        (single("1.1", ">"), json!(1), "no-match"),
        (single("1.1", ">"), json!("1.2"), "match"),
        (single("1.0.0+build", "="), json!("1.0.0"), "match"),
        (single("1.0.0+build", "="), json!("1.0.0+other"), "match"),
        (single("1.0.0+build", "="), json!("2.0.0"), "no-match"),
        // semver-invalid-version-flag: falls back to the default with reason DEFAULT.
        (single("1.0.0", "="), json!("not-a-version"), "no-match"),
    ];
    for (f, version, want) in cases {
        let r = evaluate(&f, &Context::new().attr("version", version.clone()));
        assert_eq!(r.variant.as_deref(), Some(want), "{} {version}", f.key);
    }
}

#[test]
fn validation_errors() {
    let base = json!({
        "key": "ok",
        "variants": {"on": true, "off": false},
        "defaultVariant": "off",
        "rules": [{"when": [{"attribute": "a", "op": {"eq": 1}}], "then": {"variant": "on"}}],
    });
    let parse = |v: &serde_json::Value| serde_json::from_value::<Flag>(v.clone()).unwrap();
    assert!(validate(&parse(&base)).is_ok());

    let mutate = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = base.clone();
        f(&mut v);
        validate(&parse(&v)).unwrap_err()
    };
    let e = mutate(&|v| v["key"] = json!(""));
    assert_eq!(e, FlagError::EmptyKey);
    let e = mutate(&|v| v["key"] = json!("a/b"));
    assert!(matches!(e, FlagError::InvalidKey { .. }), "{e}");
    assert!(e.to_string().contains("'/'"), "{e}");
    let e = mutate(&|v| v["key"] = json!("a\nb"));
    assert!(matches!(e, FlagError::InvalidKey { .. }));
    let e = mutate(&|v| v["variants"] = json!({}));
    assert!(matches!(e, FlagError::NoVariants { .. }));
    let e = mutate(&|v| v["variants"][""] = json!(true));
    assert!(matches!(e, FlagError::EmptyVariantName { .. }));
    let e = mutate(&|v| v["variants"]["on"] = json!("yes"));
    match &e {
        FlagError::MixedKinds {
            expected, found, ..
        } => {
            assert_eq!((*expected, *found), (ValueKind::Boolean, ValueKind::String));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("one kind"), "{e}");
    let e = mutate(&|v| v["defaultVariant"] = json!("maybe"));
    assert!(matches!(e, FlagError::UnknownDefaultVariant { .. }));
    assert!(e.to_string().contains("\"maybe\""), "{e}");
    let e = mutate(&|v| v["rules"][0]["then"] = json!({"variant": "nope"}));
    assert!(matches!(e, FlagError::UnknownRuleVariant { rule: 0, .. }));
    let e = mutate(&|v| {
        v["rules"][0]["then"] = json!({"fractional": {"split": [["on", 1], ["ghost", 1]]}})
    });
    assert!(matches!(e, FlagError::UnknownRuleVariant { .. }));
    let e = mutate(&|v| {
        v["rules"][0]["then"] = json!({"fractional": {"split": [["on", 0], ["off", 0]]}})
    });
    assert!(matches!(e, FlagError::ZeroWeights { .. }));
    let e = mutate(&|v| v["rules"][0]["then"] = json!({"fractional": {"split": []}}));
    assert!(matches!(e, FlagError::ZeroWeights { .. }));
    let e = mutate(&|v| {
        v["rules"][0]["then"] =
            json!({"fractional": {"split": [["on", 2_000_000_000u32], ["off", 147_483_648u32]]}})
    });
    assert!(matches!(
        e,
        FlagError::WeightsTooLarge {
            total: 2_147_483_648,
            ..
        }
    ));
    // Exactly i32::MAX is allowed.
    let mut ok = base.clone();
    ok["rules"][0]["then"] =
        json!({"fractional": {"split": [["on", 2_000_000_000u32], ["off", 147_483_647u32]]}});
    assert!(validate(&parse(&ok)).is_ok());
    let e = mutate(&|v| {
        v["rules"][0]["then"] = json!({"fractional": {"bucketBy": "", "split": [["on", 1]]}})
    });
    assert!(matches!(e, FlagError::EmptyBucketBy { .. }));
    let e = mutate(&|v| v["rules"][0]["when"][0]["attribute"] = json!(""));
    assert!(matches!(e, FlagError::EmptyAttribute { .. }));
    let e = mutate(&|v| v["rules"][0]["when"][0]["op"] = json!({"sem_ver": [">=", "1.x"]}));
    assert!(matches!(e, FlagError::InvalidSemVer { .. }));
    assert!(e.to_string().contains("1.x"), "{e}");
    let e = mutate(&|v| v["rules"][0]["when"][0]["op"] = json!({"eq": null}));
    assert!(matches!(e, FlagError::NullLiteral { .. }));
    let e = mutate(&|v| v["rules"][0]["when"][0]["op"] = json!({"not_in": [1, null]}));
    assert!(matches!(e, FlagError::NullLiteral { .. }));
    let e = mutate(&|v| v["metadata"] = json!({"tags": ["a"]}));
    assert!(matches!(e, FlagError::InvalidMetadata { .. }));
    assert!(e.to_string().contains("an array"), "{e}");

    // Built directly (serde cannot produce these).
    let mut f = parse(&base);
    f.rules[0].when[0].op = Op::Num(NumOp::Lt, f64::NAN);
    assert!(matches!(
        validate(&f),
        Err(FlagError::NonFiniteLiteral { .. })
    ));
    let mut f = parse(&base);
    f.variants = [("x".to_owned(), Value::Number(f64::INFINITY))].into();
    f.default_variant = "x".to_owned();
    f.rules.clear();
    assert!(matches!(
        validate(&f),
        Err(FlagError::NonFiniteValue { .. })
    ));

    // Serde rejects what the model cannot hold.
    for bad in [
        json!({"key": "k", "variants": {"a": [1]}, "defaultVariant": "a"}),
        json!({"key": "k", "variants": {"a": null}, "defaultVariant": "a"}),
        json!({"key": "k", "variants": {"a": 1}, "defaultVariant": "a", "state": "ENABLED"}),
        json!({"key": "k", "variants": {"a": 1}, "defaultVariant": "a",
               "rules": [{"then": {"fractional": {"split": [["a", -1]]}}}]}),
        json!({"key": "k", "variants": {"a": 1}, "defaultVariant": "a",
               "rules": [{"when": [{"attribute": "v", "op": {"sem_ver": ["==", "1.0.0"]}}],
                          "then": {"variant": "a"}}]}),
    ] {
        assert!(
            serde_json::from_value::<Flag>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn serde_round_trip() {
    let f = flag(json!({
        "key": "everything",
        "variants": {"a": "A", "b": "B"},
        "defaultVariant": "a",
        "enabled": false,
        "rules": [
            {"when": [
                {"attribute": "x", "op": {"eq": 1}},
                {"attribute": "x", "op": {"not_eq": "1"}},
                {"attribute": "x", "op": {"in": [1, 2]}},
                {"attribute": "x", "op": {"not_in": [3]}},
                {"attribute": "s", "op": {"starts_with": "p"}},
                {"attribute": "s", "op": {"ends_with": "q"}},
                {"attribute": "v", "op": {"sem_ver": ["~", "1.2"]}},
                {"attribute": "n", "op": {"num": [">=", 1.5]}},
                {"attribute": "e", "op": {"exists": false}},
            ], "then": {"variant": "b"}},
            {"then": {"fractional": {"bucketBy": "user.id", "hash": {"flagd_custom_seed": "s"},
                                     "split": [["a", 1], ["b", 3]]}}},
            {"then": {"fractional": {"hash": "flagd", "split": [["b", 1]]}}},
        ],
        "metadata": {"n": 1, "s": "x", "b": true},
    }));
    let text = serde_json::to_string(&f).unwrap();
    let back: Flag = serde_json::from_str(&text).unwrap();
    assert_eq!(back, f);
    assert!(matches!(
        &f.rules[0].when[6].op,
        Op::SemVer(SemVerOp::Tilde, s) if s == "1.2"
    ));
    // Defaults: enabled, no rules, no metadata.
    let minimal: Flag =
        serde_json::from_value(json!({"key": "m", "variants": {"x": 1}, "defaultVariant": "x"}))
            .unwrap();
    assert!(minimal.enabled && minimal.rules.is_empty() && minimal.metadata.is_empty());
}

fn etag_flags() -> (Flag, Flag) {
    let a = flag(json!({
        "key": "alpha",
        "variants": {"on": {"x": 1, "y": [1, 2]}, "off": {"x": 0, "y": []}},
        "defaultVariant": "off",
        "rules": [{"when": [{"attribute": "plan", "op": {"in": ["pro"]}}], "then": {"variant": "on"}}],
        "metadata": {"owner": "a", "rev": 1},
    }));
    let b = flag(json!({
        "key": "beta",
        "variants": {"v1": "one", "v2": "two"},
        "defaultVariant": "v1",
        "rules": [{"then": {"fractional": {"split": [["v1", 1], ["v2", 1]]}}}],
    }));
    (a, b)
}

#[test]
fn etag_is_stable() {
    let (a, b) = etag_flags();
    let c = ctx(json!({"targetingKey": "u", "plan": "pro", "nested": {"k1": 1, "k2": [true]}}));
    let tag = etag(&[&a, &b], &c, "rev-7");
    assert_eq!(tag.len(), 34);
    assert!(tag.starts_with('"') && tag.ends_with('"'));
    assert!(tag[1..33]
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));

    // Same flags written with keys and variants in other orders, listed in another order,
    // and the same context built in another order.
    let a2 = flag(json!({
        "metadata": {"rev": 1, "owner": "a"},
        "rules": [{"then": {"variant": "on"}, "when": [{"op": {"in": ["pro"]}, "attribute": "plan"}]}],
        "defaultVariant": "off",
        "variants": {"off": {"y": [], "x": 0}, "on": {"y": [1, 2], "x": 1}},
        "key": "alpha",
    }));
    let b2 = flag(json!({
        "rules": [{"then": {"fractional": {"split": [["v1", 1], ["v2", 1]], "hash": "flagd"}}}],
        "variants": {"v2": "two", "v1": "one"},
        "enabled": true,
        "defaultVariant": "v1",
        "key": "beta",
    }));
    let c2 = Context::new()
        .attr("nested", json!({"k2": [true], "k1": 1}))
        .attr("plan", "pro")
        .attr("targetingKey", "u");
    assert_eq!(etag(&[&b2, &a2], &c2, "rev-7"), tag);
    assert_eq!(etag(&[&b, &a], &c, "rev-7"), tag);
    // (The exact bytes are pinned against Python in tests/vectors.rs.)
    assert_eq!(
        etag(&[], &Context::new(), ""),
        etag(&[], &ctx(json!({})), "")
    );
}

#[test]
fn etag_changes_with_any_input() {
    let (a, b) = etag_flags();
    let c = ctx(json!({"targetingKey": "u", "plan": "pro"}));
    let tag = etag(&[&a, &b], &c, "rev-7");
    let mut seen = std::collections::BTreeSet::from([tag.clone()]);
    let mut distinct = |t: String, what: &str| {
        assert!(seen.insert(t), "etag did not change: {what}");
    };

    distinct(etag(&[&a, &b], &c, "rev-8"), "revision");
    distinct(etag(&[&a], &c, "rev-7"), "flag removed");
    distinct(etag(&[&a, &b, &b], &c, "rev-7"), "flag duplicated");
    distinct(
        etag(
            &[&a, &b],
            &ctx(json!({"targetingKey": "v", "plan": "pro"})),
            "rev-7",
        ),
        "targeting key",
    );
    distinct(
        etag(&[&a, &b], &ctx(json!({"plan": "pro"})), "rev-7"),
        "no targeting key",
    );
    distinct(
        etag(
            &[&a, &b],
            &ctx(json!({"targetingKey": "u", "plan": "free"})),
            "rev-7",
        ),
        "attribute",
    );
    distinct(
        etag(
            &[&a, &b],
            &ctx(json!({"targetingKey": "u", "plan": "pro", "x": null})),
            "rev-7",
        ),
        "attribute added",
    );
    type Edit = Box<dyn Fn(&mut Flag)>;
    let edits: Vec<(&str, Edit)> = vec![
        ("enabled", Box::new(|f| f.enabled = false)),
        ("default", Box::new(|f| f.default_variant = "on".to_owned())),
        (
            "value",
            Box::new(|f| {
                f.variants
                    .insert("on".to_owned(), Value::Object(serde_json::Map::new()));
            }),
        ),
        (
            "metadata",
            Box::new(|f| {
                f.metadata.insert("rev".to_owned(), json!(2));
            }),
        ),
        (
            "rule op",
            Box::new(|f| f.rules[0].when[0].op = Op::In(vec![json!("team")])),
        ),
        (
            "rule attribute",
            Box::new(|f| f.rules[0].when[0].attribute = "tier".to_owned()),
        ),
        ("rule removed", Box::new(|f| f.rules.clear())),
        ("key", Box::new(|f| f.key = "alpha2".to_owned())),
    ];
    for (what, edit) in edits {
        let mut a2 = a.clone();
        edit(&mut a2);
        distinct(etag(&[&a2, &b], &c, "rev-7"), what);
    }
    let mut b2 = b.clone();
    if let Outcome::Fractional { split, .. } = &mut b2.rules[0].then {
        split[0].1 = 2;
    }
    distinct(etag(&[&a, &b2], &c, "rev-7"), "weight");
    // Field boundaries are framed: moving text between revision and context changes it.
    distinct(
        etag(&[], &Context::with_targeting_key("b"), "a"),
        "framing 1",
    );
    distinct(
        etag(&[], &Context::with_targeting_key(""), "ab"),
        "framing 2",
    );
}
