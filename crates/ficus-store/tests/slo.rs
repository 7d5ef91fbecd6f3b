//! SLI minutes and SLO statuses in the store, on SQLite and PostgreSQL: nodes' minutes are
//! rewritten as they fill and summed over nodes per minute or per hour; the leader's rollup
//! folds old minutes into hours without losing or doubling a count; statuses are published
//! in one transaction, fenced, and pruned to the configured SLOs.

mod support;

use std::time::Duration;

use ficus_store::*;
use serde_json::json;
use support::*;

both_backends!(
    sli_minutes_are_rewritten_and_summed_over_nodes,
    the_rollup_keeps_every_count,
    slo_statuses_are_published_fenced_and_pruned,
    bad_sli_rows_are_refused,
);

fn row(node: &str, route: &str, scope: i16, minute: i64, total: i64, c5xx: i64) -> SliRow {
    SliRow {
        node_id: node.into(),
        route: route.into(),
        scope,
        minute,
        total,
        c5xx,
        c429: 1,
        c4xx: 2,
        slow: vec![(250_000, total / 10)],
    }
}

async fn sli_minutes_are_rewritten_and_summed_over_nodes(db: Db) {
    let store = db.open().await;
    store
        .flush_sli(&[
            row("a", "orders", 0, 100, 10, 1),
            row("b", "orders", 0, 100, 20, 2),
        ])
        .await
        .unwrap();
    // Node a's minute fills: the row is replaced, not added.
    store
        .flush_sli(&[
            row("a", "orders", 0, 100, 30, 3),
            row("a", "orders", 2, 101, 5, 0),
        ])
        .await
        .unwrap();
    let sums = store.sli_sums(100, 102, 1).await.unwrap();
    assert_eq!(sums.len(), 2, "{sums:?}");
    assert_eq!(
        (sums[0].route.as_str(), sums[0].scope, sums[0].minute),
        ("orders", 0, 100)
    );
    assert_eq!(
        (sums[0].total, sums[0].c5xx, sums[0].c429, sums[0].c4xx),
        (50, 5, 2, 4)
    );
    assert_eq!(sums[0].slow, vec![(250_000, 5)]);
    assert_eq!((sums[1].scope, sums[1].minute, sums[1].total), (2, 101, 5));
    // An hour bucket starts at a minute divisible by 60.
    let hours = store.sli_sums(0, 200, 60).await.unwrap();
    assert_eq!(hours.len(), 2);
    assert_eq!((hours[0].minute, hours[0].total), (60, 50));
    // Outside the range: nothing.
    assert!(store.sli_sums(102, 200, 1).await.unwrap().is_empty());
    assert!(
        store.sli_sums(0, 10, 0).await.is_err(),
        "a bucket of 0 minutes"
    );
}

async fn the_rollup_keeps_every_count(db: Db) {
    let store = db.open().await;
    // Three hours of minutes (60..240) from two nodes, then a rollup before minute 150:
    // hours 60..120 go whole; 120..180 is cut at 120 (a rollup never splits an hour).
    let mut rows = Vec::new();
    for m in 60..240 {
        rows.push(row("a", "orders", 0, m, 10, m % 2));
        rows.push(row("b", "orders", 0, m, 5, 0));
    }
    store.flush_sli(&rows).await.unwrap();
    let before = store.sli_sums(0, 300, 60).await.unwrap();
    let whole = store.sli_sums(0, 300, 1_000_000).await.unwrap();
    let rolled = store.rollup_sli(150, 0, None).await.unwrap();
    assert_eq!(rolled, 120, "60 minutes of two nodes");
    assert_eq!(store.sli_sums(0, 300, 60).await.unwrap(), before);
    assert_eq!(store.sli_sums(0, 300, 1_000_000).await.unwrap(), whole);
    // Per minute, the rolled-up hour stands at its first minute.
    let minutes = store.sli_sums(60, 125, 1).await.unwrap();
    assert_eq!(minutes.len(), 6, "{minutes:?}");
    assert_eq!((minutes[0].minute, minutes[0].total), (60, 900));
    assert_eq!(minutes[0].slow, vec![(250_000, 60)]);
    assert_eq!((minutes[1].minute, minutes[1].total), (120, 15));
    // Again: nothing left to roll up there; a later rollup adds to existing hours.
    assert_eq!(store.rollup_sli(150, 0, None).await.unwrap(), 0);
    store
        .flush_sli(&[row("c", "orders", 0, 61, 7, 7)])
        .await
        .unwrap();
    store.rollup_sli(150, 0, None).await.unwrap();
    let h = store.sli_sums(60, 61, 1).await.unwrap();
    assert_eq!((h[0].total, h[0].c5xx), (907, 37));
    // Hours before `hours_before` are pruned.
    store.rollup_sli(150, 120, None).await.unwrap();
    assert!(store.sli_sums(0, 120, 1).await.unwrap().is_empty());
    assert_eq!(
        store.sli_sums(120, 300, 1_000_000).await.unwrap()[0].total,
        15 * 120
    );
}

async fn slo_statuses_are_published_fenced_and_pruned(db: Db) {
    let store = db.open().await;
    store
        .acquire_lease("a", Duration::from_secs(5))
        .await
        .unwrap();
    let fence = Fence {
        node_id: "a".into(),
        epoch: 1,
    };
    let statuses: Vec<(String, serde_json::Value)> = (0..1200)
        .map(|i| {
            (
                format!("r{i}/availability"),
                json!({"evaluation": {"at": i}}),
            )
        })
        .collect();
    store
        .put_slo_statuses(&statuses, Some(&fence))
        .await
        .unwrap();
    store
        .put_slo_statuses(
            &[("r0/availability".into(), json!({"evaluation": {"at": 99}}))],
            Some(&fence),
        )
        .await
        .unwrap();
    let all = store.slo_statuses().await.unwrap();
    assert_eq!(all.len(), 1200);
    let r0 = all.iter().find(|s| s.slo == "r0/availability").unwrap();
    assert_eq!(
        (r0.node_id.as_str(), &r0.data["evaluation"]["at"]),
        ("a", &json!(99))
    );
    let keep = vec!["r1/availability".to_string(), "r2/availability".to_string()];
    assert_eq!(
        store
            .retain_slo_statuses(&keep, Some(&fence))
            .await
            .unwrap(),
        1198
    );
    assert_eq!(store.slo_statuses().await.unwrap().len(), 2);
    // A node that no longer leads publishes nothing.
    let stale = Fence {
        node_id: "b".into(),
        epoch: 1,
    };
    let err = store
        .put_slo_statuses(&[("r1/availability".into(), json!({}))], Some(&stale))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err}");
}

async fn bad_sli_rows_are_refused(db: Db) {
    let store = db.open().await;
    for bad in [
        row("", "orders", 0, 1, 1, 0),
        row("a", "", 0, 1, 1, 0),
        row("a", "orders", 3, 1, 1, 0),
        row("a", "orders", 0, 1, -1, 0),
        SliRow {
            slow: vec![(0, 1)],
            ..row("a", "orders", 0, 1, 1, 0)
        },
    ] {
        let err = store
            .flush_sli(std::slice::from_ref(&bad))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{bad:?}: {err}");
    }
    assert!(
        store.sli_sums(0, 10, 1).await.unwrap().is_empty(),
        "nothing written"
    );
}
