//! Properties over generated inputs: bucketing, evaluation, semver and ETag invariants.
use ficus_flags::{
    bucket_index, etag, evaluate, validate, BucketHash, Context, Flag, Outcome, Reason, Rule,
    SemVer, Value,
};
use proptest::prelude::*;
use serde_json::json;

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        (-1e9f64..1e9).prop_map(serde_json::Value::from),
        "[a-z0-9.\\-]{0,8}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn split_of(weights: &[u32]) -> Vec<(String, u32)> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| (format!("v{i}"), w))
        .collect()
}

fn fractional(weights: &[u32]) -> Flag {
    let split = split_of(weights);
    let mut variants: std::collections::BTreeMap<String, Value> = split
        .iter()
        .map(|(v, _)| (v.clone(), Value::String(v.clone())))
        .collect();
    variants.insert("default".to_owned(), Value::String("d".to_owned()));
    Flag {
        key: "prop".to_owned(),
        variants,
        default_variant: "default".to_owned(),
        enabled: true,
        rules: vec![Rule {
            when: vec![],
            then: Outcome::Fractional {
                bucket_by: None,
                hash: BucketHash::Flagd,
                split,
            },
        }],
        metadata: Default::default(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The chosen entry always has positive weight, and matches the definition
    /// `bucket = hash * total / 2^32`, first entry whose running sum exceeds it.
    #[test]
    fn bucket_index_picks_a_weighted_entry(
        hash in any::<u32>(),
        weights in prop::collection::vec(0u32..1_000_000, 1..8),
    ) {
        let split = split_of(&weights);
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        match bucket_index(hash, &split) {
            None => prop_assert_eq!(total, 0),
            Some(i) => {
                prop_assert!(weights[i] > 0);
                let bucket = (u64::from(hash) * total) >> 32;
                let before: u64 = weights[..i].iter().map(|&w| u64::from(w)).sum();
                prop_assert!(before <= bucket && bucket < before + u64::from(weights[i]));
            }
        }
    }

    /// Moving weight from entry i+1 to entry i only moves users from i+1 to i: nobody
    /// else changes variant (what makes a gradual rollout gradual).
    #[test]
    fn shifting_weight_moves_only_across_the_boundary(
        hash in any::<u32>(),
        weights in prop::collection::vec(1u32..1000, 2..6),
        at in 0usize..5,
        amount in 1u32..1000,
    ) {
        let i = at % (weights.len() - 1);
        let moved = amount.min(weights[i + 1]);
        let mut after = weights.clone();
        after[i] += moved;
        after[i + 1] -= moved;
        let a = bucket_index(hash, &split_of(&weights)).unwrap();
        let b = bucket_index(hash, &split_of(&after)).unwrap();
        prop_assert!(a == b || (a == i + 1 && b == i), "{} -> {}", a, b);
    }

    /// Evaluation never panics, is deterministic, and a fractional flag with a targeting
    /// key always splits to a positive-weight variant.
    #[test]
    fn fractional_evaluation_is_total(
        tk in "\\PC{0,24}",
        weights in prop::collection::vec(0u32..100, 1..6),
        attrs in prop::collection::btree_map("[a-z]{1,3}", arb_json(), 0..4),
    ) {
        prop_assume!(weights.iter().any(|&w| w > 0));
        let flag = fractional(&weights);
        prop_assert!(validate(&flag).is_ok());
        let mut ctx = Context::with_targeting_key(tk.clone());
        ctx.attrs = attrs.into_iter().collect();
        let r = evaluate(&flag, &ctx);
        prop_assert_eq!(&r, &evaluate(&flag, &ctx));
        if tk.is_empty() {
            prop_assert_eq!(r.reason, Reason::Error);
        } else {
            prop_assert_eq!(r.reason, Reason::Split);
            let v = r.variant.unwrap();
            let i: usize = v[1..].parse().unwrap();
            prop_assert!(weights[i] > 0);
        }
    }

    /// Context parsing never panics; objects without a non-string targetingKey parse.
    #[test]
    fn context_parsing_is_total(v in arb_json()) {
        let parsed = Context::from_json(&v);
        match &v {
            serde_json::Value::Object(m) => match m.get("targetingKey") {
                None | Some(serde_json::Value::Null) | Some(serde_json::Value::String(_)) => {
                    prop_assert!(parsed.is_ok())
                }
                Some(_) => prop_assert!(parsed.is_err()),
            },
            _ => prop_assert!(parsed.is_err()),
        }
    }

    /// Plain numeric versions order like their (major, minor, patch) tuples, and
    /// printing then parsing gives the same version.
    #[test]
    fn semver_orders_like_tuples(
        a in (0u64..1000, 0u64..1000, 0u64..1000),
        b in (0u64..1000, 0u64..1000, 0u64..1000),
        pre in prop::option::of("(0|[1-9][0-9]{0,3}|[a-z][a-z0-9-]{0,5})(\\.(0|[1-9][0-9]{0,3}|[a-z][a-z0-9-]{0,5})){0,2}"),
    ) {
        let va: SemVer = format!("{}.{}.{}", a.0, a.1, a.2).parse().unwrap();
        let vb: SemVer = format!("v{}.{}.{}", b.0, b.1, b.2).parse().unwrap();
        prop_assert_eq!(va.cmp(&vb), a.cmp(&b));
        if let Some(pre) = pre {
            let p: SemVer = format!("{}.{}.{}-{pre}", a.0, a.1, a.2).parse().unwrap();
            prop_assert!(p < va);
            prop_assert_eq!(p.to_string().parse::<SemVer>().unwrap(), p.clone());
            prop_assert!(p.is_prerelease());
        }
    }

    /// The ETag ignores the order of the flags and of the context's keys.
    #[test]
    fn etag_ignores_order(
        attrs in prop::collection::vec(("[a-z]{1,4}", arb_json()), 0..6),
        weights in prop::collection::vec(1u32..10, 1..4),
        rev in "[a-z0-9]{0,6}",
    ) {
        let a = fractional(&weights);
        let mut b = fractional(&weights);
        b.key = "other".to_owned();
        b.metadata.insert("n".to_owned(), json!(1));
        let forward: serde_json::Map<_, _> = attrs.iter().cloned().collect();
        // Same map, inserted in reverse (later duplicates lose, so dedupe first).
        let mut reverse = serde_json::Map::new();
        for (k, v) in forward.iter().rev() {
            reverse.insert(k.clone(), v.clone());
        }
        let c1 = Context { targeting_key: Some("u".to_owned()), attrs: forward };
        let c2 = Context { targeting_key: Some("u".to_owned()), attrs: reverse };
        prop_assert_eq!(etag(&[&a, &b], &c1, &rev), etag(&[&b, &a], &c2, &rev));
    }
}
