//! The comparison through the public API: every difference kind and every rule.

use ficus_compare::{
    compare, Comparison, Difference, Exchange, Kind, Rules, TextOptions, MAX_DIFFERENCES,
};
use http::{HeaderMap, HeaderName, HeaderValue};

fn cmp_with(rules: &Rules, a: &[u8], b: &[u8]) -> Comparison {
    let c = rules.compile().unwrap();
    let h = HeaderMap::new();
    compare(
        &c,
        &Exchange {
            status: 200,
            headers: &h,
            body: a,
        },
        &Exchange {
            status: 200,
            headers: &h,
            body: b,
        },
    )
}

fn diff_with(rules: &Rules, a: &str, b: &str) -> Vec<Difference> {
    let c = cmp_with(rules, a.as_bytes(), b.as_bytes());
    assert!(!c.truncated);
    c.differences
}

fn diff(a: &str, b: &str) -> Vec<Difference> {
    diff_with(&Rules::default(), a, b)
}

/// (at, kind) pairs, the usual thing to assert on.
fn short(d: &[Difference]) -> Vec<(&str, Kind)> {
    d.iter().map(|d| (d.at.as_str(), d.kind)).collect()
}

fn d(path: &str, at: &str, kind: Kind, left: Option<&str>, right: Option<&str>) -> Difference {
    Difference {
        path: path.into(),
        at: at.into(),
        kind,
        left: left.map(Into::into),
        right: right.map(Into::into),
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

#[test]
fn status_difference() {
    let c = Rules::default().compile().unwrap();
    let h = HeaderMap::new();
    let r = compare(
        &c,
        &Exchange {
            status: 200,
            headers: &h,
            body: b"",
        },
        &Exchange {
            status: 503,
            headers: &h,
            body: b"",
        },
    );
    assert_eq!(
        r.differences,
        vec![d("status", "status", Kind::Value, Some("200"), Some("503"))]
    );
}

#[test]
fn header_differences() {
    let rules = Rules {
        headers: vec![
            "Content-Type".into(),
            "Location".into(),
            "Vary".into(),
            "Cache-Control".into(),
        ],
        ..Rules::default()
    }
    .compile()
    .unwrap();
    let l = headers(&[
        ("content-type", "application/json"),
        ("location", "/a"),
        ("cache-control", "no-store"),
        ("vary", "accept"),
        ("vary", "origin"),
    ]);
    let r = headers(&[
        ("Content-Type", "text/plain"),
        ("cache-control", "no-store"),
        ("vary", "accept"),
        ("etag", "\"x\""),
    ]);
    let c = compare(
        &rules,
        &Exchange {
            status: 200,
            headers: &l,
            body: b"",
        },
        &Exchange {
            status: 200,
            headers: &r,
            body: b"",
        },
    );
    assert_eq!(
        c.differences,
        vec![
            d(
                "header.content-type",
                "header.content-type",
                Kind::Value,
                Some("application/json"),
                Some("text/plain")
            ),
            d(
                "header.location",
                "header.location",
                Kind::Missing,
                Some("/a"),
                None
            ),
            d(
                "header.vary",
                "header.vary",
                Kind::Value,
                Some("accept, origin"),
                Some("accept")
            ),
        ],
        "etag is not compared unless listed"
    );

    // Extra: only on the right.
    let c = compare(
        &rules,
        &Exchange {
            status: 200,
            headers: &HeaderMap::new(),
            body: b"",
        },
        &Exchange {
            status: 200,
            headers: &headers(&[("location", "/b")]),
            body: b"",
        },
    );
    assert_eq!(
        c.differences,
        vec![d(
            "header.location",
            "header.location",
            Kind::Extra,
            None,
            Some("/b")
        )]
    );
}

#[test]
fn date_server_and_request_ids_are_never_compared() {
    let rules = Rules {
        headers: vec![
            "Date".into(),
            "Server".into(),
            "X-Request-Id".into(),
            "X-Ficus-Upstream".into(),
            "Set-Cookie".into(),
            "Content-Type".into(),
        ],
        ..Rules::default()
    }
    .compile()
    .unwrap();
    let l = headers(&[
        ("date", "Mon, 01 Jan 2024 00:00:00 GMT"),
        ("server", "legacy/1"),
        ("x-request-id", "a"),
        ("x-ficus-upstream", "legacy"),
        ("set-cookie", "s=1"),
        ("content-type", "a/b"),
    ]);
    let r = headers(&[
        ("date", "Tue, 02 Jan 2024 00:00:00 GMT"),
        ("server", "modern/2"),
        ("x-request-id", "b"),
        ("x-ficus-upstream", "modern"),
        ("set-cookie", "s=2"),
        ("content-type", "a/b"),
    ]);
    let c = compare(
        &rules,
        &Exchange {
            status: 200,
            headers: &l,
            body: b"",
        },
        &Exchange {
            status: 200,
            headers: &r,
            body: b"",
        },
    );
    assert!(c.is_equal(), "{:?}", c.differences);
    // also with the defaults
    let c = compare(
        &Rules::default().compile().unwrap(),
        &Exchange {
            status: 200,
            headers: &l,
            body: b"",
        },
        &Exchange {
            status: 200,
            headers: &r,
            body: b"",
        },
    );
    assert!(c.is_equal(), "{:?}", c.differences);
}

#[test]
fn ignore_headers_removes_from_the_defaults() {
    let rules = Rules {
        ignore_headers: vec!["Content-Type".into()],
        ..Rules::default()
    }
    .compile()
    .unwrap();
    let c = compare(
        &rules,
        &Exchange {
            status: 200,
            headers: &headers(&[("content-type", "a/b")]),
            body: b"",
        },
        &Exchange {
            status: 200,
            headers: &headers(&[("content-type", "c/d")]),
            body: b"",
        },
    );
    assert!(c.is_equal());
}

#[test]
fn equal_json_in_any_layout() {
    assert!(diff(
        r#"{"a":1,"b":[1,2,{"c":null}]}"#,
        "{ \"b\" : [1, 2, {\"c\": null}],\n \"a\": 1 }"
    )
    .is_empty());
    assert!(diff("", "").is_empty());
    assert!(diff("[]", " [ ] ").is_empty());
}

#[test]
fn value_and_type() {
    assert_eq!(
        diff(r#"{"a":{"b":"x"}}"#, r#"{"a":{"b":"y"}}"#),
        vec![d(
            "$.a.b",
            "$.a.b",
            Kind::Value,
            Some("\"x\""),
            Some("\"y\"")
        )]
    );
    assert_eq!(
        diff(r#"{"id":1}"#, r#"{"id":"1"}"#),
        vec![d("$.id", "$.id", Kind::Type, Some("1"), Some("\"1\""))]
    );
    assert_eq!(
        short(&diff(r#"{"a":null}"#, r#"{"a":0}"#)),
        vec![("$.a", Kind::Type)]
    );
    assert_eq!(
        short(&diff(r#"{"a":[]}"#, r#"{"a":{}}"#)),
        vec![("$.a", Kind::Type)]
    );
    assert_eq!(
        short(&diff(r#"{"a":true}"#, r#"{"a":false}"#)),
        vec![("$.a", Kind::Value)]
    );
    assert_eq!(
        short(&diff("1", "2")),
        vec![("$", Kind::Value)],
        "scalar bodies"
    );
}

#[test]
fn numbers_compare_by_value() {
    assert!(diff(r#"{"a":1}"#, r#"{"a":1.0}"#).is_empty(), "1 == 1.0");
    assert!(diff(r#"[100, -0.0, 0.5]"#, r#"[1e2, 0, 5e-1]"#).is_empty());
    assert_eq!(
        short(&diff(r#"{"a":1}"#, r#"{"a":1.5}"#)),
        vec![("$.a", Kind::Value)]
    );
    // integers beyond 2^53 stay exact
    assert_eq!(
        short(&diff("[9007199254740993]", "[9007199254740992]")),
        vec![("$[0]", Kind::Value)]
    );
    assert_eq!(
        short(&diff("[9007199254740993]", "[9007199254740992.0]")),
        vec![("$[0]", Kind::Value)],
        "an integer that f64 cannot hold never equals a float"
    );
    assert_eq!(
        short(&diff("[18446744073709551615]", "[18446744073709551614]")),
        vec![("$[0]", Kind::Value)]
    );
    assert_eq!(
        short(&diff("[-9223372036854775808]", "[-9223372036854775807]")),
        vec![("$[0]", Kind::Value)]
    );
}

#[test]
fn missing_and_extra() {
    assert_eq!(
        diff(r#"{"a":1,"b":2}"#, r#"{"b":2,"c":{"x":[1]}}"#),
        vec![
            d("$.a", "$.a", Kind::Missing, Some("1"), None),
            d("$.c", "$.c", Kind::Extra, None, Some(r#"{"x":[1]}"#)),
        ]
    );
}

#[test]
fn length_and_common_prefix() {
    assert_eq!(
        diff(r#"{"l":[1,2,3]}"#, r#"{"l":[1,9]}"#),
        vec![
            d("$.l", "$.l", Kind::Length, Some("3"), Some("2")),
            d("$.l[*]", "$.l[1]", Kind::Value, Some("2"), Some("9")),
        ]
    );
}

#[test]
fn reordering_is_one_order_difference() {
    assert_eq!(
        diff(r#"{"l":[1,2,3]}"#, r#"{"l":[3,1,2]}"#),
        vec![d(
            "$.l",
            "$.l",
            Kind::Order,
            Some("[1,2,3]"),
            Some("[3,1,2]")
        )]
    );
    let a = r#"{"items":[{"id":1,"p":2.5},{"id":2,"p":3},{"id":3,"p":1}]}"#;
    let b = r#"{"items":[{"p":3,"id":2},{"id":3,"p":1.0},{"id":1,"p":2.5}]}"#;
    assert_eq!(short(&diff(a, b)), vec![("$.items", Kind::Order)]);
    // nested: the path generalizes the outer index
    assert_eq!(
        diff(r#"[{"t":[1,2]}]"#, r#"[{"t":[2,1]}]"#)
            .iter()
            .map(|d| (d.path.as_str(), d.at.as_str(), d.kind))
            .collect::<Vec<_>>(),
        vec![("$[*].t", "$[0].t", Kind::Order)]
    );
}

#[test]
fn different_multisets_are_not_order() {
    // same length, one element replaced and moved
    assert_eq!(
        short(&diff("[1,1,2]", "[1,2,2]")),
        vec![("$[1]", Kind::Value)]
    );
    assert_eq!(
        short(&diff("[1,1,2,3]", "[1,2,2,1]")),
        vec![("$[1]", Kind::Value), ("$[3]", Kind::Value)]
    );
    // a reordering with an added element: length plus element values
    assert_eq!(
        short(&diff("[1,2]", "[2,1,3]")),
        vec![
            ("$", Kind::Length),
            ("$[0]", Kind::Value),
            ("$[1]", Kind::Value)
        ]
    );
}

#[test]
fn unordered_arrays_compare_as_multisets() {
    let rules = Rules {
        unordered: vec!["$.tags".into(), "$.items".into()],
        ..Rules::default()
    };
    assert!(diff_with(
        &rules,
        r#"{"tags":["a","b","c"]}"#,
        r#"{"tags":["c","a","b"]}"#
    )
    .is_empty());
    assert_eq!(
        diff_with(&rules, r#"{"tags":["a","b"]}"#, r#"{"tags":["b","c"]}"#),
        vec![d(
            "$.tags[*]",
            "$.tags[*]",
            Kind::Value,
            Some("\"a\""),
            Some("\"c\"")
        )]
    );
    assert_eq!(
        diff_with(&rules, r#"{"tags":["a","b"]}"#, r#"{"tags":["b","a","a"]}"#),
        vec![d("$.tags", "$.tags", Kind::Length, Some("2"), Some("3"))],
        "only extra elements: the length says it"
    );
    assert_eq!(
        short(&diff_with(
            &rules,
            r#"{"tags":["a","b"]}"#,
            r#"{"tags":["c","x","y"]}"#
        )),
        vec![("$.tags", Kind::Length), ("$.tags[*]", Kind::Value)]
    );
    // other arrays keep their order
    assert_eq!(
        short(&diff_with(&rules, r#"{"o":[1,2]}"#, r#"{"o":[2,1]}"#)),
        vec![("$.o", Kind::Order)]
    );
    // objects as elements, with rules inside them
    let rules = Rules {
        unordered: vec!["$.items".into(), "$.items[*].tags".into()],
        ignore: vec!["$.items[*].updated_at".into()],
        tolerance: vec![("$.items[*].price".into(), 0.01)],
        ..Rules::default()
    };
    let a = r#"{"items":[{"id":1,"price":1.0,"updated_at":"t1","tags":["x","y"]},{"id":2,"price":2.0,"updated_at":"t2","tags":[]}]}"#;
    let b = r#"{"items":[{"id":2,"price":2.004,"updated_at":"t9","tags":[]},{"tags":["y","x"],"id":1,"price":1.0}]}"#;
    assert!(
        diff_with(&rules, a, b).is_empty(),
        "{:?}",
        diff_with(&rules, a, b)
    );
}

#[test]
fn ignore_paths_and_subtrees() {
    let rules = Rules {
        ignore: vec![
            "$.meta.request_id".into(),
            "$.items[*].updated_at".into(),
            "$.debug".into(),
            "$.extra.*".into(),
            "$.list[0]".into(),
        ],
        ..Rules::default()
    };
    let a = r#"{"meta":{"request_id":"a","v":1},"items":[{"updated_at":1,"price":1},{"updated_at":2,"price":2}],
               "debug":{"x":[1,2,3]},"extra":{"p":1,"q":2},"list":[1,2]}"#;
    let b = r#"{"meta":{"request_id":"b","v":1},"items":[{"updated_at":3,"price":1},{"price":5}],
               "extra":{"p":3},"list":[7,2]}"#;
    assert_eq!(
        diff_with(&rules, a, b),
        vec![d(
            "$.items[*].price",
            "$.items[1].price",
            Kind::Value,
            Some("2"),
            Some("5")
        )]
    );
    // ignoring the root ignores the whole body
    let all = Rules {
        ignore: vec!["$".into()],
        ..Rules::default()
    };
    assert!(diff_with(&all, "[1]", r#"{"a":2}"#).is_empty());
}

#[test]
fn tolerance_per_path() {
    let rules = Rules {
        tolerance: vec![("$.items[*].price".into(), 0.01), ("$.count".into(), 1.0)],
        ..Rules::default()
    };
    let a = r#"{"items":[{"price":1.0,"tax":0.2}],"count":100}"#;
    assert!(diff_with(
        &rules,
        a,
        r#"{"items":[{"price":1.005,"tax":0.2}],"count":101}"#
    )
    .is_empty());
    assert_eq!(
        short(&diff_with(
            &rules,
            a,
            r#"{"items":[{"price":1.02,"tax":0.2001}],"count":102}"#
        )),
        vec![
            ("$.count", Kind::Value),
            ("$.items[0].price", Kind::Value),
            ("$.items[0].tax", Kind::Value)
        ]
    );
}

#[test]
fn odd_keys_render_quoted() {
    let a = r#"{"a b":{"q\"":[{"x.y":1,"é":1,"":1}]}}"#;
    let b = r#"{"a b":{"q\"":[{"x.y":2,"é":2,"":2}]}}"#;
    let got = diff(a, b);
    let paths: Vec<(&str, &str)> = got
        .iter()
        .map(|d| (d.path.as_str(), d.at.as_str()))
        .collect();
    assert_eq!(
        paths,
        vec![
            (r#"$["a b"]["q\""][*][""]"#, r#"$["a b"]["q\""][0][""]"#),
            (
                r#"$["a b"]["q\""][*]["x.y"]"#,
                r#"$["a b"]["q\""][0]["x.y"]"#
            ),
            (r#"$["a b"]["q\""][*]["é"]"#, r#"$["a b"]["q\""][0]["é"]"#),
        ]
    );
    for d in &got {
        ficus_compare::parse_path(&d.at).unwrap();
        ficus_compare::parse_path(&d.path).unwrap();
    }
}

#[test]
fn long_values_are_cut() {
    let long = "x".repeat(1000);
    let got = diff(&format!(r#"{{"a":"{long}"}}"#), r#"{"a":"y"}"#);
    let left = got[0].left.as_deref().unwrap();
    assert_eq!(left.chars().count(), ficus_compare::MAX_RENDER_CHARS + 1);
    assert!(left.ends_with('…'));
}

#[test]
fn json_versus_not_json_is_a_type_difference() {
    assert_eq!(
        short(&diff(r#"{"a":1}"#, "<html>oops</html>")),
        vec![("body", Kind::Type)]
    );
    assert_eq!(short(&diff("", "{}")), vec![("body", Kind::Type)]);
    let got = diff("[1]", "Internal Server Error");
    assert_eq!(got[0].path, "body");
    assert_eq!(got[0].left.as_deref(), Some("[1]"));
    assert_eq!(got[0].right.as_deref(), Some("Internal Server Error"));
}

#[test]
fn text_bodies_with_normalization() {
    assert_eq!(
        diff("hello world", "hello there"),
        vec![d(
            "body",
            "body",
            Kind::Value,
            Some("hello world"),
            Some("hello there")
        )]
    );
    let all = Rules {
        text: TextOptions {
            trim: true,
            collapse_whitespace: true,
            ignore_case: true,
        },
        ..Rules::default()
    };
    assert!(diff_with(&all, "  Hello \t\n World\n", "hello world").is_empty());
    assert_eq!(diff(" a", "a").len(), 1, "exact by default");
    let trim = Rules {
        text: TextOptions {
            trim: true,
            ..TextOptions::default()
        },
        ..Rules::default()
    };
    assert!(diff_with(&trim, " a\n", "a").is_empty());
    assert_eq!(diff_with(&trim, "a  b", "a b").len(), 1);
    let case = Rules {
        text: TextOptions {
            ignore_case: true,
            ..TextOptions::default()
        },
        ..Rules::default()
    };
    assert!(diff_with(&case, "ÉTÉ OK", "été ok").is_empty());
    // the snippet starts shortly before the first difference
    let a = format!("{}A tail", "word ".repeat(100));
    let b = format!("{}B tail", "word ".repeat(100));
    let got = diff(&a, &b);
    let left = got[0].left.as_deref().unwrap();
    assert!(left.starts_with('…') && left.ends_with("A tail"), "{left}");
}

#[test]
fn bodies_that_are_not_utf8_compare_as_bytes() {
    let c = cmp_with(&Rules::default(), b"\xff\x00\x01", b"\xff\x00\x02");
    assert_eq!(c.differences.len(), 1);
    assert_eq!(
        c.differences[0].left.as_deref(),
        Some("<3 bytes, not UTF-8>")
    );
    assert!(cmp_with(&Rules::default(), b"\xff\x00", b"\xff\x00").is_equal());
}

#[test]
fn too_deep_is_not_json() {
    let deep_a = format!("{}1{}", "[".repeat(300), "]".repeat(300));
    let deep_b = format!("{}2{}", "[".repeat(300), "]".repeat(300));
    let c = cmp_with(&Rules::default(), deep_a.as_bytes(), deep_b.as_bytes());
    assert_eq!(short(&c.differences), vec![("body", Kind::Value)]);
}

#[test]
fn differences_are_capped() {
    let obj = |n: usize, v: usize| {
        let members: Vec<String> = (0..n).map(|i| format!("\"k{i:04}\":{v}")).collect();
        format!("{{{}}}", members.join(","))
    };
    let c = cmp_with(
        &Rules::default(),
        obj(MAX_DIFFERENCES, 1).as_bytes(),
        obj(MAX_DIFFERENCES, 2).as_bytes(),
    );
    assert_eq!(c.differences.len(), MAX_DIFFERENCES);
    assert!(!c.truncated, "exactly the cap is not truncated");
    let c = cmp_with(
        &Rules::default(),
        obj(1000, 1).as_bytes(),
        obj(1000, 2).as_bytes(),
    );
    assert_eq!(c.differences.len(), MAX_DIFFERENCES);
    assert!(c.truncated);
    assert_eq!(c.differences[255].at, "$.k0255");

    // an array whose element diffs hit the cap is still recognized as reordered
    let a: Vec<usize> = (0..1000).collect();
    let b: Vec<usize> = (0..1000).rev().collect();
    let c = cmp_with(
        &Rules::default(),
        serde_json::to_string(&a).unwrap().as_bytes(),
        serde_json::to_string(&b).unwrap().as_bytes(),
    );
    assert_eq!(short(&c.differences), vec![("$", Kind::Order)]);
    assert!(!c.truncated);
}

#[test]
fn kind_names() {
    for k in Kind::ALL {
        assert_eq!(k.as_str().parse::<Kind>().unwrap(), k);
        assert_eq!(
            serde_json::to_string(&k).unwrap(),
            format!("\"{}\"", k.as_str())
        );
        assert_eq!(k.to_string(), k.as_str());
    }
    assert_eq!("ORDER".parse::<Kind>().unwrap(), Kind::Order);
    let e = "size".parse::<Kind>().unwrap_err();
    assert!(e.to_string().contains("\"size\"") && e.to_string().contains("missing"));
}

#[test]
fn comparison_serializes() {
    let c = cmp_with(&Rules::default(), br#"{"a":1}"#, br#"{"a":"1"}"#);
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"differences":[{"path":"$.a","at":"$.a","kind":"type","left":"1","right":"\"1\""}],"truncated":false})
    );
}

#[test]
fn nested_unordered_mismatches_stay_bounded() {
    // Four levels of unordered arrays with nothing in common: without a global budget for
    // pairing leftovers this is 10^8 element comparisons.
    fn nest(depth: usize, seed: &mut u64, odd: u64) -> serde_json::Value {
        if depth == 0 {
            *seed += 1;
            return serde_json::json!(*seed * 2 + odd);
        }
        serde_json::Value::Array((0..10).map(|_| nest(depth - 1, seed, odd)).collect())
    }
    let a = nest(4, &mut 0, 0).to_string();
    let b = nest(4, &mut 0, 1).to_string();
    let rules = Rules {
        unordered: vec![
            "$".into(),
            "$[*]".into(),
            "$[*][*]".into(),
            "$[*][*][*]".into(),
        ],
        ..Rules::default()
    };
    let started = std::time::Instant::now();
    assert_eq!(
        short(&diff_with(&rules, &a, &b)),
        vec![("$[*]", Kind::Value)]
    );
    // ~10 ms with the budget, ~9 s (debug build) without it
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn shareable_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ficus_compare::CompiledRules>();
    send_sync::<ficus_compare::Aggregator>();
    send_sync::<ficus_compare::Sample>();
}
