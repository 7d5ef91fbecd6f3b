//! Properties of the diff over generated JSON values.

use ficus_compare::{compare, parse_path, Comparison, Exchange, Kind, Rules, Segment};
use http::HeaderMap;
use proptest::prelude::*;
use serde_json::Value;

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-c]",
        1 => Just("odd key".to_string()),
        1 => Just("q\"\\".to_string()),
        1 => Just(String::new()),
        1 => Just("é.x[0]".to_string()),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..3).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![
            Just(0.5f64),
            Just(1.0),
            Just(-2.25),
            Just(1e300),
            -1e6f64..1e6
        ]
        .prop_map(Value::from),
        "[a-c]{0,3}".prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(m) => m.values().map(count).sum(),
        _ => 0,
    }
}

/// Applies one edit to the `target`-th node in preorder.
fn mutate(v: &mut Value, target: &mut usize, op: u8, with: &Value) -> bool {
    if *target == 0 {
        match (op, &mut *v) {
            (1, Value::Array(a)) if !a.is_empty() => {
                a.remove(0);
            }
            (1, Value::Object(m)) if !m.is_empty() => {
                let k = m.keys().next().cloned().unwrap_or_default();
                m.remove(&k);
            }
            (2, Value::Array(a)) => a.push(with.clone()),
            (2, Value::Object(m)) => {
                m.insert("zz".into(), with.clone());
            }
            (3, Value::Array(a)) => a.reverse(),
            // a same-type change of a leaf
            (_, Value::Bool(b)) => *b = !*b,
            (_, Value::String(s)) => s.push('z'),
            (_, Value::Number(n)) => *v = Value::from(n.as_f64().unwrap_or(0.0) + 1.5),
            _ => *v = with.clone(),
        }
        return true;
    }
    *target -= 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|e| mutate(e, target, op, with)),
        Value::Object(m) => m.values_mut().any(|e| mutate(e, target, op, with)),
        _ => false,
    }
}

/// A value and a copy with one or two edits, or two independent values (small alphabets
/// make them overlap).
fn pair() -> impl Strategy<Value = (Value, Value)> {
    let edit = (any::<usize>(), 0u8..5, value());
    prop_oneof![
        4 => (value(), prop::collection::vec(edit, 1..3)).prop_map(|(a, edits)| {
            let mut b = a.clone();
            for (target, op, with) in edits {
                let mut target = target % count(&b);
                mutate(&mut b, &mut target, op, &with);
            }
            (a, b)
        }),
        1 => (value(), value()),
    ]
}

fn run(rules: &Rules, a: &Value, b: &Value) -> Comparison {
    let c = rules.compile().unwrap();
    let h = HeaderMap::new();
    // Different layouts, so the byte-equality shortcut does not hide the walk.
    let la = serde_json::to_vec(a).unwrap();
    let lb = serde_json::to_vec_pretty(b).unwrap();
    compare(
        &c,
        &Exchange {
            status: 200,
            headers: &h,
            body: &la,
        },
        &Exchange {
            status: 200,
            headers: &h,
            body: &lb,
        },
    )
}

fn resolve<'v>(v: &'v Value, at: &str) -> Option<&'v Value> {
    let p = parse_path(at).ok()?;
    let mut cur = v;
    for s in p.segments() {
        cur = match s {
            Segment::Key(k) => cur.as_object()?.get(k)?,
            Segment::Index(i) => cur.as_array()?.get(*i)?,
            Segment::AnyIndex => cur.as_array()?.first()?,
            Segment::AnyKey => return None,
        };
    }
    Some(cur)
}

fn rule_sets() -> Vec<Rules> {
    vec![
        Rules::default(),
        Rules {
            unordered: vec!["$".into(), "$.a".into(), "$[*].b".into()],
            ignore: vec!["$.b[*]".into(), "$.c.a".into()],
            tolerance: vec![("$.a[*]".into(), 0.5), ("$.*".into(), 2.0)],
            ..Rules::default()
        },
    ]
}

proptest! {
    // Failures print their minimal input; persisting them needs a lib.rs beside the test.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_value_equals_itself(a in value()) {
        for rules in rule_sets() {
            let c = run(&rules, &a, &a);
            prop_assert!(c.is_equal(), "{:?}", c.differences);
        }
    }

    #[test]
    fn every_difference_is_where_it_says((a, b) in pair()) {
        for rules in rule_sets() {
            let c = run(&rules, &a, &b);
            prop_assert!(c.differences.len() <= ficus_compare::MAX_DIFFERENCES);
            for d in &c.differences {
                let (l, r) = (resolve(&a, &d.at), resolve(&b, &d.at));
                match d.kind {
                    Kind::Missing => prop_assert!(l.is_some() && r.is_none(), "{d:?}"),
                    Kind::Extra => prop_assert!(l.is_none() && r.is_some(), "{d:?}"),
                    Kind::Length | Kind::Order => prop_assert!(
                        l.is_some_and(Value::is_array) && r.is_some_and(Value::is_array), "{d:?}"
                    ),
                    Kind::Value | Kind::Type => prop_assert!(l.is_some() && r.is_some(), "{d:?}"),
                }
                prop_assert_eq!(d.left.is_some(), l.is_some());
                prop_assert_eq!(d.right.is_some(), r.is_some());
                // `path` is `at` with indices generalized
                let at = parse_path(&d.at).unwrap();
                let general: Vec<Segment> = at
                    .segments()
                    .iter()
                    .map(|s| if let Segment::Index(_) = s { Segment::AnyIndex } else { s.clone() })
                    .collect();
                let path = parse_path(&d.path).unwrap();
                prop_assert_eq!(path.segments(), &general[..]);
            }
        }
    }

    #[test]
    fn the_diff_is_symmetric((a, b) in pair()) {
        for rules in rule_sets() {
            let ab = run(&rules, &a, &b);
            let ba = run(&rules, &b, &a);
            let flip = |k: Kind| match k {
                Kind::Missing => Kind::Extra,
                Kind::Extra => Kind::Missing,
                k => k,
            };
            let x: Vec<(String, Kind)> = ab.differences.iter().map(|d| (d.at.clone(), flip(d.kind))).collect();
            let y: Vec<(String, Kind)> = ba.differences.iter().map(|d| (d.at.clone(), d.kind)).collect();
            prop_assert_eq!(x, y);
            prop_assert_eq!(ab.truncated, ba.truncated);
        }
    }

    #[test]
    fn ignoring_a_reported_path_silences_it((a, b) in pair()) {
        let c = run(&Rules::default(), &a, &b);
        for d in c.differences.iter().take(5) {
            let rules = Rules { ignore: vec![d.path.clone()], ..Rules::default() };
            let again = run(&rules, &a, &b);
            for e in &again.differences {
                let under = e.path == d.path
                    || (e.path.starts_with(&d.path)
                        && matches!(e.path.as_bytes().get(d.path.len()), Some(b'.' | b'[')));
                prop_assert!(!under, "ignored {} but got {:?}", d.path, e);
            }
        }
    }

    #[test]
    fn shuffled_unordered_arrays_are_equal(
        (list, shuffled) in prop::collection::vec(value(), 0..8)
            .prop_flat_map(|l| (Just(l.clone()), Just(l).prop_shuffle()))
    ) {
        let a = serde_json::json!({"list": list, "x": 1});
        let b = serde_json::json!({"x": 1, "list": shuffled});
        let unordered = Rules { unordered: vec!["$.list".into()], ..Rules::default() };
        let c = run(&unordered, &a, &b);
        prop_assert!(c.is_equal(), "{:?}", c.differences);
        // without the rule, a shuffle is at most one Order difference
        let c = run(&Rules::default(), &a, &b);
        let got: Vec<(&str, Kind)> = c.differences.iter().map(|d| (d.at.as_str(), d.kind)).collect();
        prop_assert!(got.is_empty() || got == vec![("$.list", Kind::Order)], "{:?}", got);
    }
}
