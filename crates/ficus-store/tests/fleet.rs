//! Fleet mode in the store, on SQLite and PostgreSQL: the revision every write that nodes
//! must act on advances (and NOTIFYs, heard on a LISTEN connection of its own), the node
//! registry, the leader lease and its fencing, per-second telemetry read back in commit
//! order by the other nodes, retention, the webhook cursor and rollout statuses.

mod support;

use std::time::Duration;

use ficus_store::*;
use serde_json::json;
use support::*;

both_backends!(
    every_change_advances_the_revision,
    events_carry_the_node_that_wrote_them,
    nodes_register_beat_and_stop,
    one_leader_and_fenced_writes,
    telemetry_rows_come_back_once_in_order,
    retention_prunes_old_rows_and_silent_nodes,
    webhook_cursor_only_moves_forward,
    rollout_statuses_are_published_by_the_leader,
    shadow_flush_skips_routes_reset_unseen,
);

fn node(id: &str) -> NodeRegistration {
    NodeRegistration {
        id: id.to_string(),
        name: format!("name-{id}"),
        host: "host".into(),
        pid: 42,
        version: "0.1.0".into(),
        admin_url: Some("http://127.0.0.1:9901".into()),
    }
}

fn slot(node: &str, route: &str, side: i16, at: i64, ok: i64) -> TelemetrySlot {
    TelemetrySlot {
        node_id: node.to_string(),
        route: route.to_string(),
        side,
        at,
        by_class: [0, ok, 0, 0, 1],
        fallbacks: 0,
        latency_sum_us: 1000 * ok,
        hist: vec![1, 0, 3, 0, 0, 0],
    }
}

async fn every_change_advances_the_revision(db: Db) {
    let store = db.open().await;
    let s0 = store.sync_state().await.unwrap();
    assert_eq!(
        (s0.revision, s0.latest_version, s0.last_event_id),
        (0, None, 0)
    );
    let committed = store
        .commit(Change {
            expected_version: None,
            new_version: Some(NewVersion {
                text: "a = 1\n".into(),
                author: "t".into(),
                message: "first".into(),
            }),
            overrides: OverrideChange::Set(vec![OverrideSet {
                route: "orders".into(),
                stage: Some("legacy".into()),
                weight_bp: Some(0),
            }]),
            flag_overrides: FlagOverrideChange::Keep,
            events: vec![
                NewEvent::new("t", "config.applied", "first").with_version(VersionRef::New)
            ],
        })
        .await
        .unwrap();
    let s1 = store.sync_state().await.unwrap();
    assert_eq!(s1.revision, 1);
    assert!(s1.revision_at > 0);
    assert_eq!(s1.latest_version, Some(1));
    assert_eq!(s1.latest_sha256, committed.version.map(|v| v.sha256));
    assert_eq!(s1.overrides.len(), 1);
    assert_eq!(s1.last_event_id, committed.events[0].id);

    store
        .append_events(vec![
            NewEvent::new("t", "cache.purged", "purge").with_route("orders")
        ])
        .await
        .unwrap();
    assert_eq!(store.sync_state().await.unwrap().revision, 2);
    store.reset_shadow("orders", "t", "reset").await.unwrap();
    assert_eq!(store.sync_state().await.unwrap().revision, 3);

    // Writes nobody else acts on leave it alone.
    store
        .flush_shadow(&ShadowBatch {
            endpoints: vec![ShadowEndpoint {
                route: "orders".into(),
                endpoint: "GET /orders".into(),
                compared: 1,
                differing: 0,
                noise_compared: 0,
                noise_differing: 0,
                last_ms: 1,
            }],
            ..ShadowBatch::default()
        })
        .await
        .unwrap();
    store
        .flush_telemetry(&[slot("n1", "orders", 0, 100, 5)], &[])
        .await
        .unwrap();
    assert_eq!(store.sync_state().await.unwrap().revision, 3);

    // A failed commit advances nothing.
    let conflict = store
        .commit(Change {
            expected_version: Some(7),
            flag_overrides: FlagOverrideChange::Keep,
            events: vec![NewEvent::new("t", "route.set", "x")],
            ..Change::default()
        })
        .await;
    assert!(matches!(conflict, Err(StoreError::Conflict { .. })));
    assert_eq!(store.sync_state().await.unwrap().revision, 3);

    // PostgreSQL: a LISTEN connection hears each new revision of this schema.
    if let Some(mut listener) = store.listen() {
        assert!(matches!(listener.next().await, Notice::Reconnected));
        let other = db.open().await;
        other
            .append_events(vec![NewEvent::new("t", "route.set", "from another node")])
            .await
            .unwrap();
        let heard = tokio::time::timeout(Duration::from_secs(10), listener.next())
            .await
            .expect("a notice within 10 s");
        assert!(
            matches!(heard, Notice::Revision(4)),
            "expected revision 4, heard {heard:?}"
        );
    } else {
        assert_eq!(db.backend, Backend::Sqlite);
    }
}

async fn events_carry_the_node_that_wrote_them(db: Db) {
    let plain = db.open().await;
    let node_a = db.open().await;
    node_a.set_node("node-a");
    node_a.set_node("ignored: set once");
    assert_eq!(node_a.node(), Some("node-a"));
    plain
        .append_events(vec![NewEvent::new("t", "k", "no node")])
        .await
        .unwrap();
    let written = node_a
        .append_events(vec![NewEvent::new("t", "k", "from a")])
        .await
        .unwrap();
    assert_eq!(written[0].node.as_deref(), Some("node-a"));
    let reset = node_a.reset_shadow("orders", "t", "r").await.unwrap();
    assert_eq!(reset.node.as_deref(), Some("node-a"));
    let all = plain
        .events(EventFilter {
            after_id: Some(0),
            ..EventFilter::default()
        })
        .await
        .unwrap();
    let nodes: Vec<Option<&str>> = all.iter().map(|e| e.node.as_deref()).collect();
    assert_eq!(nodes, vec![None, Some("node-a"), Some("node-a")]);
}

async fn nodes_register_beat_and_stop(db: Db) {
    let store = db.open().await;
    let a = store.register_node(&node("a")).await.unwrap();
    let b = store.register_node(&node("b")).await.unwrap();
    assert!(b > a, "seqs grow: {a} {b}");
    assert!(
        store.register_node(&node("a")).await.is_err(),
        "an id registers once"
    );
    let beat = NodeBeat {
        revision: 7,
        applied_at: 1234,
        apply_lag_ms: 25,
        config_version: Some(3),
        rate: 12.5,
        drift: Some("differs".into()),
    };
    assert!(store.heartbeat("a", &beat).await.unwrap());
    assert!(
        !store.heartbeat("nobody", &beat).await.unwrap(),
        "an unknown node is told to register again"
    );
    let bad = NodeBeat {
        rate: f64::NAN,
        ..beat.clone()
    };
    assert!(matches!(
        store.heartbeat("a", &bad).await,
        Err(StoreError::Invalid(_))
    ));
    store.node_stopped("b").await.unwrap();
    let fleet = store.fleet().await.unwrap();
    assert_eq!(fleet.nodes.len(), 2);
    let na = &fleet.nodes[0];
    assert_eq!(
        (
            na.id.as_str(),
            na.revision,
            na.apply_lag_ms,
            na.config_version,
            na.rate,
            na.drift.as_deref()
        ),
        ("a", 7, 25, Some(3), 12.5, Some("differs"))
    );
    assert!(na.stopped_at.is_none());
    assert!(
        (fleet.now - na.heartbeat_at).abs() < 60_000,
        "database clock"
    );
    assert!(fleet.nodes[1].stopped_at.is_some());
    // Bad registrations are refused with the field named.
    let mut empty = node("c");
    empty.name = String::new();
    match store.register_node(&empty).await {
        Err(StoreError::Invalid(m)) => assert!(m.contains("name"), "{m}"),
        other => panic!("{other:?}"),
    }
}

async fn one_leader_and_fenced_writes(db: Db) {
    let store = db.open().await;
    let lease = Duration::from_millis(400);
    let e1 = store.acquire_lease("a", lease).await.unwrap();
    assert_eq!(e1, Some(1));
    assert_eq!(store.acquire_lease("b", lease).await.unwrap(), None);
    assert_eq!(
        store.acquire_lease("a", lease).await.unwrap(),
        Some(1),
        "renewing keeps the epoch"
    );
    let fence_a = Fence {
        node_id: "a".into(),
        epoch: 1,
    };
    store
        .append_events_fenced(
            vec![NewEvent::new("rollout", "rollout.hold", "a leads")],
            &fence_a,
        )
        .await
        .unwrap();
    // a stops renewing; once the lease expires b takes it under a new epoch...
    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    assert_eq!(store.acquire_lease("b", lease).await.unwrap(), Some(2));
    let leader = store.fleet().await.unwrap().leader;
    assert_eq!((leader.node_id.as_deref(), leader.epoch), (Some("b"), 2));
    // ...and every leader-only write of a is refused from then on, changing nothing.
    let before = store.sync_state().await.unwrap();
    let stale = store
        .commit_fenced(
            Change {
                expected_version: None,
                overrides: OverrideChange::Set(vec![OverrideSet {
                    route: "orders".into(),
                    stage: Some("legacy".into()),
                    weight_bp: Some(0),
                }]),
                flag_overrides: FlagOverrideChange::Keep,
                events: vec![NewEvent::new("rollout", "rollout.rolled_back", "stale")],
                ..Change::default()
            },
            &fence_a,
        )
        .await;
    match stale {
        Err(StoreError::Fenced(m)) => assert!(m.contains("epoch 2") && m.contains('b'), "{m}"),
        other => panic!("expected Fenced, got {other:?}"),
    }
    assert!(matches!(
        store
            .append_events_fenced(vec![NewEvent::new("rollout", "k", "stale")], &fence_a)
            .await,
        Err(StoreError::Fenced(_))
    ));
    assert!(matches!(
        store.set_webhook_cursor(5, Some(&fence_a)).await,
        Err(StoreError::Fenced(_))
    ));
    assert!(matches!(
        store
            .put_rollout_status("orders", &json!({}), Some(&fence_a))
            .await,
        Err(StoreError::Fenced(_))
    ));
    assert!(matches!(
        store.prune_fleet(0, 0, 0, Some(&fence_a)).await,
        Err(StoreError::Fenced(_))
    ));
    assert_eq!(store.sync_state().await.unwrap(), before);
    // The new leader's writes go through; a stopped leader gives the lease up at once.
    let fence_b = Fence {
        node_id: "b".into(),
        epoch: 2,
    };
    store
        .append_events_fenced(vec![NewEvent::new("rollout", "k", "b leads")], &fence_b)
        .await
        .unwrap();
    store.register_node(&node("b")).await.unwrap();
    store.node_stopped("b").await.unwrap();
    assert_eq!(store.acquire_lease("a", lease).await.unwrap(), Some(3));
}

async fn telemetry_rows_come_back_once_in_order(db: Db) {
    let store = db.open().await;
    let first = [
        slot("n1", "orders", 0, 100, 5),
        slot("n1", "orders", 1, 100, 2),
    ];
    let minutes = [slot("n1", "orders", 0, 1, 5)];
    store.flush_telemetry(&first, &minutes).await.unwrap();
    // A retried flush (its outcome unknown) stores no second twice; a minute is rewritten.
    let minutes2 = [slot("n1", "orders", 0, 1, 9)];
    store.flush_telemetry(&first, &minutes2).await.unwrap();
    store
        .flush_telemetry(&[slot("n2", "orders", 0, 100, 7)], &[])
        .await
        .unwrap();
    let all = store.telemetry_after(0, None, 100).await.unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "ascending seq");
    assert_eq!(all[0].1, first[0]);
    assert_eq!(all[2].1.node_id, "n2");
    // A node reads the others' rows, and tails from the last seq it saw.
    let others = store.telemetry_after(0, Some("n1"), 100).await.unwrap();
    assert_eq!(others.len(), 1);
    assert_eq!(others[0].1.by_class[1], 7);
    let tail = store.telemetry_after(all[1].0, None, 100).await.unwrap();
    assert_eq!(tail.len(), 1);
    assert!(store
        .telemetry_after(all[2].0, None, 100)
        .await
        .unwrap()
        .is_empty());
    let page = store.telemetry_after(0, None, 2).await.unwrap();
    assert_eq!(page.len(), 2);
    assert!(matches!(
        store.telemetry_after(0, None, 0).await,
        Err(StoreError::Invalid(_))
    ));
    let m = store.telemetry_minutes(0).await.unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].by_class[1], 9, "the minute row was rewritten");

    // Bad rows are refused before anything is written.
    let mut bad = slot("n1", "orders", 2, 101, 1);
    assert!(matches!(
        store.flush_telemetry(&[bad.clone()], &[]).await,
        Err(StoreError::Invalid(_))
    ));
    bad.side = 0;
    bad.by_class[0] = -1;
    assert!(matches!(
        store.flush_telemetry(&[bad], &[]).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.telemetry_after(0, None, 100).await.unwrap().len(), 3);

    // Concurrent flushes from several nodes: every row exactly once, seqs in commit order.
    let mut tasks = Vec::new();
    for n in 0..4 {
        let s = db.open().await;
        tasks.push(tokio::spawn(async move {
            for at in 0..25 {
                let rows = [slot(&format!("c{n}"), "r", 0, 1000 + at, 1)];
                s.flush_telemetry(&rows, &[]).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut seen = 0;
    let mut after = 0;
    loop {
        let page = store.telemetry_after(after, None, 7).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.0;
        seen += page.len();
    }
    assert_eq!(seen, 3 + 100);
}

async fn retention_prunes_old_rows_and_silent_nodes(db: Db) {
    let store = db.open().await;
    store
        .flush_telemetry(
            &[
                slot("n1", "r", 0, 100, 1),
                slot("n1", "r", 0, 200, 1),
                slot("n1", "r", 0, 300, 1),
            ],
            &[slot("n1", "r", 0, 1, 1), slot("n1", "r", 0, 5, 1)],
        )
        .await
        .unwrap();
    store.register_node(&node("old")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let cut = store.fleet().await.unwrap().now;
    store.register_node(&node("new")).await.unwrap();
    assert_eq!(
        store
            .acquire_lease("new", Duration::from_secs(5))
            .await
            .unwrap(),
        Some(1)
    );
    let fence = Fence {
        node_id: "new".into(),
        epoch: 1,
    };
    let pruned = store.prune_fleet(250, 3, cut, Some(&fence)).await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            seconds: 2,
            minutes: 1,
            nodes: 1
        }
    );
    let left = store.telemetry_after(0, None, 100).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].1.at, 300);
    let nodes = store.fleet().await.unwrap().nodes;
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].id, "new");
}

async fn webhook_cursor_only_moves_forward(db: Db) {
    let store = db.open().await;
    assert_eq!(
        store.webhook_cursor().await.unwrap(),
        0,
        "a new store delivers everything"
    );
    store
        .acquire_lease("a", Duration::from_secs(5))
        .await
        .unwrap();
    let fence = Fence {
        node_id: "a".into(),
        epoch: 1,
    };
    store.set_webhook_cursor(9, Some(&fence)).await.unwrap();
    store.set_webhook_cursor(4, Some(&fence)).await.unwrap();
    assert_eq!(store.webhook_cursor().await.unwrap(), 9);
}

async fn rollout_statuses_are_published_by_the_leader(db: Db) {
    let store = db.open().await;
    store
        .acquire_lease("a", Duration::from_secs(5))
        .await
        .unwrap();
    let fence = Fence {
        node_id: "a".into(),
        epoch: 1,
    };
    store
        .put_rollout_status(
            "orders",
            &json!({"status": "running", "step": 0}),
            Some(&fence),
        )
        .await
        .unwrap();
    store
        .put_rollout_status(
            "orders",
            &json!({"status": "running", "step": 1}),
            Some(&fence),
        )
        .await
        .unwrap();
    store
        .put_rollout_status("users", &json!({"status": "paused"}), Some(&fence))
        .await
        .unwrap();
    let all = store.rollout_statuses().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        (all[0].route.as_str(), &all[0].data["step"]),
        ("orders", &json!(1))
    );
    assert_eq!(all[1].node_id, "a");
}

async fn shadow_flush_skips_routes_reset_unseen(db: Db) {
    let store = db.open().await;
    let ep = |route: &str| ShadowEndpoint {
        route: route.into(),
        endpoint: "GET /x".into(),
        compared: 10,
        differing: 1,
        noise_compared: 0,
        noise_differing: 0,
        last_ms: 5,
    };
    let batch = ShadowBatch {
        endpoints: vec![ep("a"), ep("b")],
        ..ShadowBatch::default()
    };
    let seen = store.sync_state().await.unwrap().last_event_id;
    // Another node resets route a after this node last looked at the events.
    store.reset_shadow("a", "t", "modern v2").await.unwrap();
    let skipped = store.flush_shadow_seen(&batch, Some(seen)).await.unwrap();
    assert_eq!(skipped, vec!["a".to_string()]);
    let stored = store.load_shadow().await.unwrap();
    assert_eq!(stored.endpoints.len(), 1);
    assert_eq!(stored.endpoints[0].route, "b");
    // Once the node has seen the reset, its later comparisons count again.
    let seen = store.sync_state().await.unwrap().last_event_id;
    assert!(store
        .flush_shadow_seen(&batch, Some(seen))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.load_shadow().await.unwrap().endpoints.len(), 2);
    // A node's own reset (applied to its aggregate as it made it) holds nothing back.
    let own = db.open().await;
    own.set_node("n-own");
    let seen = own.sync_state().await.unwrap().last_event_id;
    own.reset_shadow("b", "t", "own").await.unwrap();
    assert!(own
        .flush_shadow_seen(&batch, Some(seen))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_sqlite_store_serves_one_gateway() {
    let db = sqlite_db();
    let a = db.open().await;
    let b = db.open().await;
    let held = a.lock_single_node().unwrap();
    assert!(held.is_some());
    match b.lock_single_node() {
        Err(StoreError::Invalid(m)) => {
            assert!(m.contains("in use by another ficus"), "{m}");
            assert!(
                m.contains(&std::process::id().to_string()),
                "names the pid: {m}"
            );
            assert!(m.contains("PostgreSQL"), "says what to do: {m}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    drop(held);
    assert!(
        b.lock_single_node().unwrap().is_some(),
        "free once released"
    );
    let mem = Store::open("sqlite::memory:").await.unwrap();
    assert!(mem.lock_single_node().unwrap().is_none());
    if let Some(pg) = postgres_db().await {
        let s = pg.open().await;
        assert!(s.lock_single_node().unwrap().is_none());
        if let Some((base, schema)) = &pg.pg {
            drop_schema(base, schema).await;
        }
    }
}
