//! The store against real databases: every shared test body runs on SQLite (a temp file)
//! and on PostgreSQL (a fresh schema of `FICUS_TEST_POSTGRES_URL`, dropped afterwards).
//! Without that variable the PostgreSQL half is skipped with a note, unless
//! `FICUS_REQUIRE_SERVICES=1`, which makes a missing or unreachable PostgreSQL a failure.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

use ficus_store::*;
use futures_util::FutureExt;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::sqlite::SqliteConnection;
use sqlx::Connection;
use support::*;

both_backends!(
    empty_store_answers,
    versions_are_gapless_with_sha256,
    events_append_and_filter,
    overrides_merge_clear_and_persist,
    flag_overrides_merge_clear_and_persist,
    stale_expected_version_conflicts,
    concurrent_commits_one_wins,
    failed_commit_leaves_nothing,
    invalid_changes_leave_nothing,
    schema_refuses_rewrites,
    concurrent_first_opens_agree,
    verify_runs_record_and_list,
    shadow_flush_adds_deltas,
    shadow_reset_removes_one_route,
    shadow_sample_by_id,
    shadow_concurrent_flushes_add_up,
    shadow_invalid_batches_store_nothing,
    shadow_failed_flush_stores_nothing,
    shadow_state_survives_reopen,
    shadow_schema_refuses_bad_rows,
);

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn applied(text: &str) -> NewVersion {
    NewVersion {
        text: text.to_string(),
        author: "alice".to_string(),
        message: format!("apply {} bytes", text.len()),
    }
}

fn version_change(expected: Option<i64>, text: &str) -> Change {
    Change {
        expected_version: expected,
        new_version: Some(applied(text)),
        overrides: OverrideChange::Keep,
        flag_overrides: FlagOverrideChange::Keep,
        events: vec![
            NewEvent::new("cli", "config.applied", "applied from the CLI")
                .with_version(VersionRef::New),
        ],
    }
}

fn set(route: &str, stage: Option<&str>, weight_bp: Option<i32>) -> OverrideSet {
    OverrideSet {
        route: route.to_string(),
        stage: stage.map(str::to_string),
        weight_bp,
    }
}

fn override_change(expected: Option<i64>, overrides: OverrideChange, event: NewEvent) -> Change {
    Change {
        expected_version: expected,
        new_version: None,
        overrides,
        flag_overrides: FlagOverrideChange::Keep,
        events: vec![event],
    }
}

async fn commit(store: &Store, change: Change) -> Committed {
    match store.commit(change).await {
        Ok(c) => c,
        Err(e) => panic!("commit failed: {e}"),
    }
}

/// The whole log, oldest first, by tailing.
async fn all_events(store: &Store) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    loop {
        let page = store
            .events(EventFilter {
                after_id: Some(out.last().map_or(0, |e| e.id)),
                limit: limits::MAX_PAGE,
                ..EventFilter::default()
            })
            .await
            .expect("events");
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// Every version summary, newest first, by paging.
async fn all_versions(store: &Store) -> Vec<ConfigVersionSummary> {
    let mut out: Vec<ConfigVersionSummary> = Vec::new();
    loop {
        let page = store
            .versions(limits::MAX_PAGE, out.last().map(|v| v.number))
            .await
            .expect("versions");
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

fn random_u64() -> u64 {
    RandomState::new().build_hasher().finish()
}

// ---------------------------------------------------------------------------------------
// Shared bodies
// ---------------------------------------------------------------------------------------

async fn empty_store_answers(db: Db) {
    let store = db.open().await;
    store.health().await.expect("health");
    assert_eq!(
        store.kind(),
        match db.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    );
    assert_eq!(store.current_version().await.unwrap(), None);
    assert_eq!(store.version(1).await.unwrap(), None);
    assert_eq!(store.version(0).await.unwrap(), None);
    assert_eq!(store.version(-3).await.unwrap(), None);
    assert!(store.versions(10, None).await.unwrap().is_empty());
    assert!(store
        .events(EventFilter::default())
        .await
        .unwrap()
        .is_empty());
    assert!(store.overrides().await.unwrap().is_empty());
    // Opening again finds the migrations applied and the (empty) data intact.
    let again = db.open().await;
    again.health().await.expect("health after reopen");
    store.close().await;
    assert!(matches!(
        store.health().await,
        Err(StoreError::Unavailable { .. })
    ));
    again.close().await;
}

async fn versions_are_gapless_with_sha256(db: Db) {
    let store = db.open().await;
    let texts = [
        "abc",
        "[listen]\naddr = \"127.0.0.1:8080\"\n# naïve 🌿\n",
        "",
    ];
    let started = now_ms();
    let mut expected = None;
    for (i, text) in texts.iter().enumerate() {
        let c = commit(&store, version_change(expected, text)).await;
        let v = c.version.expect("new version");
        assert_eq!(v.number, i as i64 + 1);
        assert_eq!(v.sha256, sha256_hex(text));
        assert_eq!(v.text, *text);
        assert_eq!(v.author, "alice");
        assert!(v.created_at >= started && v.created_at <= now_ms() + 1000);
        assert_eq!(c.latest_version, Some(v.number));
        assert_eq!(c.events.len(), 1);
        assert_eq!(c.events[0].config_version, Some(v.number));
        expected = Some(v.number);
    }
    assert_eq!(
        sha256_hex("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );

    for (i, text) in texts.iter().enumerate() {
        let v = store.version(i as i64 + 1).await.unwrap().expect("stored");
        assert_eq!(v.text, *text);
        assert_eq!(v.sha256, sha256_hex(text));
    }
    assert_eq!(store.version(4).await.unwrap(), None);
    let current = store.current_version().await.unwrap().expect("current");
    assert_eq!((current.number, current.text.as_str()), (3, ""));

    let numbers = |vs: Vec<ConfigVersionSummary>| vs.iter().map(|v| v.number).collect::<Vec<_>>();
    assert_eq!(numbers(store.versions(10, None).await.unwrap()), [3, 2, 1]);
    assert_eq!(numbers(store.versions(2, None).await.unwrap()), [3, 2]);
    assert_eq!(numbers(store.versions(2, Some(2)).await.unwrap()), [1]);
    assert!(store.versions(5, Some(1)).await.unwrap().is_empty());
    let summary = &store.versions(1, None).await.unwrap()[0];
    assert_eq!(summary.sha256, sha256_hex(""));
    for bad in [0, limits::MAX_PAGE + 1] {
        match store.versions(bad, None).await {
            Err(StoreError::Invalid(msg)) => assert!(msg.contains("limit"), "{msg}"),
            other => panic!("limit {bad}: {other:?}"),
        }
    }
    // Storing the same text again is a new version: deduplication is the caller's choice.
    let c = commit(&store, version_change(Some(3), "")).await;
    assert_eq!(c.version.map(|v| v.number), Some(4));
    store.close().await;
}

async fn events_append_and_filter(db: Db) {
    let store = db.open().await;
    let evidence = json!({
        "window": {"requests": 1200, "errors": 3, "p99_ms": 41.5},
        "differences": [{"path": "$.items[0].price", "kind": "value"}],
        "note": "ünïcode ✓"
    });
    let first = commit(
        &store,
        Change {
            expected_version: None,
            new_version: Some(applied("v1")),
            overrides: OverrideChange::Keep,
            flag_overrides: FlagOverrideChange::Keep,
            events: vec![
                NewEvent::new("file-reload", "config.applied", "file changed")
                    .with_version(VersionRef::New)
                    .with_data(json!({"routes": 2})),
                NewEvent::new("file-reload", "route.stage_set", "orders to shadow")
                    .with_route("orders")
                    .with_version(VersionRef::New),
            ],
        },
    )
    .await;
    assert_eq!(first.events.len(), 2);
    assert!(first.events[0].id < first.events[1].id);
    assert_eq!(first.events[0].at, first.events[1].at);
    assert_eq!(first.events[1].config_version, Some(1));
    assert_eq!(first.events[0].data, json!({"routes": 2}));

    let held = store
        .append_events(vec![NewEvent::new(
            "rollout",
            "rollout.verdict",
            "hold: too few requests",
        )
        .with_route("orders")
        .with_data(evidence.clone())])
        .await
        .expect("append");
    assert_eq!(held[0].config_version, None);
    let third = commit(
        &store,
        override_change(
            Some(1),
            OverrideChange::Set(vec![set("users", None, Some(500))]),
            NewEvent::new("api:alice", "route.weight_set", "users to 5 %")
                .with_route("users")
                .with_version(VersionRef::Existing(1)),
        ),
    )
    .await;
    assert_eq!(third.version, None);
    assert_eq!(third.latest_version, Some(1));
    assert_eq!(third.events[0].config_version, Some(1));

    let all = all_events(&store).await;
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(all[2], held[0], "stored as returned");
    assert_eq!(all[2].data, evidence, "JSON data round-trips");
    assert_eq!(all[3], third.events[0]);

    let ids = |es: Vec<Event>| es.iter().map(|e| e.id).collect::<Vec<_>>();
    let id = |i: usize| all[i].id;
    // Without after_id: newest first.
    assert_eq!(
        ids(store.events(EventFilter::default()).await.unwrap()),
        [id(3), id(2), id(1), id(0)]
    );
    assert_eq!(
        ids(store
            .events(EventFilter {
                limit: 2,
                ..EventFilter::default()
            })
            .await
            .unwrap()),
        [id(3), id(2)]
    );
    let by_route = EventFilter {
        route: Some("orders".into()),
        ..EventFilter::default()
    };
    assert_eq!(
        ids(store.events(by_route.clone()).await.unwrap()),
        [id(2), id(1)]
    );
    let by_kind = EventFilter {
        kind: Some("config.applied".into()),
        ..EventFilter::default()
    };
    assert_eq!(ids(store.events(by_kind).await.unwrap()), [id(0)]);
    let both = EventFilter {
        route: Some("orders".into()),
        kind: Some("rollout.verdict".into()),
        ..EventFilter::default()
    };
    assert_eq!(ids(store.events(both).await.unwrap()), [id(2)]);
    // With after_id: ascending, for tailing.
    let tail = EventFilter {
        after_id: Some(id(0)),
        ..EventFilter::default()
    };
    assert_eq!(
        ids(store.events(tail.clone()).await.unwrap()),
        [id(1), id(2), id(3)]
    );
    assert_eq!(
        ids(store
            .events(EventFilter { limit: 1, ..tail })
            .await
            .unwrap()),
        [id(1)]
    );
    let tail_orders = EventFilter {
        after_id: Some(id(1)),
        ..by_route
    };
    assert_eq!(ids(store.events(tail_orders).await.unwrap()), [id(2)]);
    assert!(store
        .events(EventFilter {
            after_id: Some(id(3)),
            ..EventFilter::default()
        })
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .events(EventFilter {
            route: Some("nope".into()),
            ..EventFilter::default()
        })
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        store
            .events(EventFilter {
                limit: 0,
                ..EventFilter::default()
            })
            .await,
        Err(StoreError::Invalid(_))
    ));
    // append_events cannot refer to a version it does not store.
    assert!(matches!(
        store
            .append_events(vec![
                NewEvent::new("cli", "x", "y").with_version(VersionRef::New)
            ])
            .await,
        Err(StoreError::Invalid(_))
    ));
    store.close().await;
}

async fn overrides_merge_clear_and_persist(db: Db) {
    let store = db.open().await;
    commit(&store, version_change(None, "v1")).await;
    let c = commit(
        &store,
        override_change(
            Some(1),
            OverrideChange::Set(vec![set("orders", Some("canary"), Some(1000))]),
            NewEvent::new("api:alice", "route.stage_set", "canary at 10 %").with_route("orders"),
        ),
    )
    .await;
    let o = store.overrides().await.unwrap();
    assert_eq!(o.len(), 1);
    assert_eq!(
        (o[0].route.as_str(), o[0].stage.as_deref(), o[0].weight_bp),
        ("orders", Some("canary"), Some(1000))
    );
    assert_eq!(o[0].event_id, c.events[0].id);
    assert_eq!(o[0].updated_at, c.events[0].at);

    // Setting only the weight keeps the stage; the row points at the explaining event.
    let c = commit(
        &store,
        Change {
            expected_version: Some(1),
            new_version: None,
            overrides: OverrideChange::Set(vec![
                set("orders", None, Some(2500)),
                set("users", Some("shadow"), None),
            ]),
            flag_overrides: FlagOverrideChange::Keep,
            events: vec![
                NewEvent::new("cli", "route.stage_set", "users to shadow").with_route("users"),
                NewEvent::new("cli", "route.weight_set", "orders to 25 %").with_route("orders"),
            ],
        },
    )
    .await;
    let o = store.overrides().await.unwrap();
    assert_eq!(o.len(), 2);
    assert_eq!(
        (o[0].route.as_str(), o[0].stage.as_deref(), o[0].weight_bp),
        ("orders", Some("canary"), Some(2500))
    );
    assert_eq!(o[0].event_id, c.events[1].id);
    assert_eq!(
        (o[1].route.as_str(), o[1].stage.as_deref(), o[1].weight_bp),
        ("users", Some("shadow"), None)
    );
    assert_eq!(o[1].event_id, c.events[0].id);

    // A route without an event of its own points at the commit's first event.
    let c = commit(
        &store,
        override_change(
            Some(1),
            OverrideChange::Set(vec![set("search", Some("legacy"), Some(0))]),
            NewEvent::new("rollout", "route.rollback", "error rate 4 % > 1 %"),
        ),
    )
    .await;
    let before_reopen = store.overrides().await.unwrap();
    assert_eq!(before_reopen.len(), 3);
    assert_eq!(before_reopen[1].route, "search");
    assert_eq!(before_reopen[1].event_id, c.events[0].id);

    // Overrides persist across a restart.
    store.close().await;
    let store = db.open().await;
    assert_eq!(store.overrides().await.unwrap(), before_reopen);

    commit(
        &store,
        override_change(
            Some(1),
            OverrideChange::ClearRoutes(vec!["orders".into(), "not-overridden".into()]),
            NewEvent::new("file-reload", "config.applied", "the file changed orders"),
        ),
    )
    .await;
    let routes: Vec<String> = store
        .overrides()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.route)
        .collect();
    assert_eq!(routes, ["search", "users"]);

    // A new version and a full clear in one commit (a revert).
    let c = commit(
        &store,
        Change {
            expected_version: Some(1),
            new_version: Some(applied("v1 again")),
            overrides: OverrideChange::ClearAll,
            flag_overrides: FlagOverrideChange::Keep,
            events: vec![NewEvent::new("api:bob", "config.reverted", "back to v1")
                .with_version(VersionRef::New)
                .with_data(json!({"reverted_to": 1}))],
        },
    )
    .await;
    assert_eq!(c.latest_version, Some(2));
    assert!(store.overrides().await.unwrap().is_empty());
    store.close().await;
    let store = db.open().await;
    assert!(store.overrides().await.unwrap().is_empty());
    assert_eq!(all_events(&store).await.len(), 7);
    store.close().await;
}

fn flag_set(flag: &str, variant: Option<&str>, enabled: Option<bool>) -> FlagOverrideSet {
    FlagOverrideSet {
        flag: flag.to_string(),
        variant: variant.map(str::to_string),
        enabled,
    }
}

fn flag_change(flags: FlagOverrideChange, event: NewEvent) -> Change {
    Change {
        expected_version: Some(1),
        new_version: None,
        overrides: OverrideChange::Keep,
        flag_overrides: flags,
        events: vec![event],
    }
}

async fn flag_overrides_merge_clear_and_persist(db: Db) {
    let store = db.open().await;
    commit(&store, version_change(None, "v1")).await;
    assert!(store.flag_overrides().await.unwrap().is_empty());
    let rev = store.sync_state().await.unwrap().revision;
    let c = commit(
        &store,
        flag_change(
            FlagOverrideChange::Set(vec![flag_set("checkout", Some("off"), None)]),
            NewEvent::new("cli", "flag.set", "kill switch"),
        ),
    )
    .await;
    let state = store.sync_state().await.unwrap();
    assert!(
        state.revision > rev,
        "a flag override advances the revision"
    );
    assert_eq!(state.flag_overrides, store.flag_overrides().await.unwrap());
    let o = store.flag_overrides().await.unwrap();
    assert_eq!(o.len(), 1);
    assert_eq!(
        (o[0].flag.as_str(), o[0].variant.as_deref(), o[0].enabled),
        ("checkout", Some("off"), None)
    );
    assert_eq!(
        (o[0].event_id, o[0].updated_at),
        (c.events[0].id, c.events[0].at)
    );

    // Setting only the switch keeps the variant; a second flag is added.
    commit(
        &store,
        flag_change(
            FlagOverrideChange::Set(vec![
                flag_set("checkout", None, Some(false)),
                flag_set("banner", None, Some(true)),
            ]),
            NewEvent::new("cli", "flag.set", "both"),
        ),
    )
    .await;
    let o = store.flag_overrides().await.unwrap();
    let got: Vec<_> = o
        .iter()
        .map(|o| (o.flag.as_str(), o.variant.as_deref(), o.enabled))
        .collect();
    assert_eq!(
        got,
        [
            ("banner", None, Some(true)),
            ("checkout", Some("off"), Some(false))
        ]
    );

    // They persist across a restart.
    store.close().await;
    let store = db.open().await;
    assert_eq!(store.flag_overrides().await.unwrap(), o);

    // Neither field set, or an empty key: refused, nothing stored.
    for bad in [
        FlagOverrideChange::Set(vec![flag_set("checkout", None, None)]),
        FlagOverrideChange::Set(vec![flag_set(" ", Some("on"), None)]),
    ] {
        let err = store
            .commit(flag_change(bad, NewEvent::new("cli", "flag.set", "bad")))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    }
    assert_eq!(store.flag_overrides().await.unwrap(), o);

    commit(
        &store,
        flag_change(
            FlagOverrideChange::Clear(vec!["checkout".into(), "never-set".into()]),
            NewEvent::new("cli", "flag.reset", "back to the rules"),
        ),
    )
    .await;
    let left: Vec<String> = store
        .flag_overrides()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.flag)
        .collect();
    assert_eq!(left, ["banner"]);
    commit(
        &store,
        Change {
            expected_version: Some(1),
            new_version: Some(applied("v1 again")),
            overrides: OverrideChange::ClearAll,
            flag_overrides: FlagOverrideChange::ClearAll,
            events: vec![
                NewEvent::new("cli", "config.reverted", "back to v1").with_version(VersionRef::New)
            ],
        },
    )
    .await;
    assert!(store.flag_overrides().await.unwrap().is_empty());
    store.close().await;
}

async fn stale_expected_version_conflicts(db: Db) {
    let store = db.open().await;
    // Before the first version, only `None` is current.
    match store.commit(version_change(Some(1), "x")).await {
        Err(StoreError::Conflict { expected, actual }) => {
            assert_eq!((expected, actual), (Some(1), None))
        }
        other => panic!("{other:?}"),
    }
    commit(&store, version_change(None, "v1")).await;
    for stale in [None, Some(2), Some(7)] {
        let err = store.commit(version_change(stale, "v2")).await.unwrap_err();
        match &err {
            StoreError::Conflict { expected, actual } => {
                assert_eq!((*expected, *actual), (stale, Some(1)))
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("the latest is version 1"), "{err}");
    }
    // An override change checks the version too.
    let err = store
        .commit(override_change(
            None,
            OverrideChange::Set(vec![set("orders", None, Some(100))]),
            NewEvent::new("cli", "route.weight_set", "1 %"),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert!(store.overrides().await.unwrap().is_empty());
    assert_eq!(all_events(&store).await.len(), 1);
    assert_eq!(store.current_version().await.unwrap().unwrap().number, 1);
    store.close().await;
}

async fn concurrent_commits_one_wins(db: Db) {
    let store = db.open().await;
    commit(&store, version_change(None, "v1")).await;

    // Many commits based on the same version: exactly one wins.
    const RACERS: usize = 24;
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .commit(version_change(Some(1), &format!("racer {i}")))
                .await
        }));
    }
    let (mut won, mut lost) = (0, 0);
    for t in tasks {
        match t.await.expect("task") {
            Ok(c) => {
                won += 1;
                assert_eq!(c.version.unwrap().number, 2);
            }
            Err(StoreError::Conflict { expected, actual }) => {
                lost += 1;
                assert_eq!((expected, actual), (Some(1), Some(2)));
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!((won, lost), (1, RACERS - 1));

    // Writers that retry on conflict: every success is a new number, none lost or doubled.
    const WRITERS: usize = 6;
    const EACH: usize = 5;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            let mut conflicts = 0;
            while done < EACH {
                let current = store.current_version().await.unwrap().map(|v| v.number);
                let mut change = version_change(current, &format!("writer {w} commit {done}"));
                change.overrides =
                    OverrideChange::Set(vec![set(&format!("w{w}"), None, Some(done as i32))]);
                match store.commit(change).await {
                    Ok(_) => done += 1,
                    Err(StoreError::Conflict { .. }) => conflicts += 1,
                    Err(e) => panic!("writer {w}: {e}"),
                }
            }
            conflicts
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let total = 2 + (WRITERS * EACH) as i64;
    let versions = all_versions(&store).await;
    let numbers: Vec<i64> = versions.iter().rev().map(|v| v.number).collect();
    assert_eq!(
        numbers,
        (1..=total).collect::<Vec<_>>(),
        "gapless, no duplicates"
    );
    // One event per version, in version order: commits are serialised.
    let events = all_events(&store).await;
    let refs: Vec<Option<i64>> = events.iter().map(|e| e.config_version).collect();
    assert_eq!(refs, (1..=total).map(Some).collect::<Vec<_>>());
    for v in &versions {
        let full = store.version(v.number).await.unwrap().unwrap();
        assert_eq!(full.sha256, sha256_hex(&full.text));
    }
    let overrides = store.overrides().await.unwrap();
    assert_eq!(overrides.len(), WRITERS);
    assert!(overrides
        .iter()
        .all(|o| o.weight_bp == Some(EACH as i32 - 1)));
    store.close().await;
}

/// A commit whose event insert fails in the database (a foreign key) after its version
/// and before its overrides were written leaves nothing behind.
async fn failed_commit_leaves_nothing(db: Db) {
    let store = db.open().await;
    commit(&store, version_change(None, "v1")).await;
    commit(
        &store,
        override_change(
            Some(1),
            OverrideChange::Set(vec![set("orders", Some("canary"), Some(1000))]),
            NewEvent::new("cli", "route.stage_set", "canary").with_route("orders"),
        ),
    )
    .await;
    let overrides = store.overrides().await.unwrap();
    let events = all_events(&store).await;

    for overrides_change in [
        OverrideChange::Set(vec![
            set("orders", None, Some(5000)),
            set("users", Some("shadow"), None),
        ]),
        OverrideChange::ClearAll,
        OverrideChange::ClearRoutes(vec!["orders".into()]),
    ] {
        let err = store
            .commit(Change {
                expected_version: Some(1),
                new_version: Some(applied("v2")),
                overrides: overrides_change,
                flag_overrides: FlagOverrideChange::Keep,
                events: vec![
                    NewEvent::new("cli", "config.applied", "v2").with_version(VersionRef::New),
                    NewEvent::new("cli", "config.reverted", "to a version that is not there")
                        .with_version(VersionRef::Existing(999)),
                ],
            })
            .await
            .unwrap_err();
        match &err {
            StoreError::NotFound(msg) => assert!(msg.contains("999"), "{msg}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(store.current_version().await.unwrap().unwrap().number, 1);
        assert_eq!(store.overrides().await.unwrap(), overrides);
        assert_eq!(all_events(&store).await, events);
    }
    // No number was used up: the next version is 2.
    let c = commit(&store, version_change(Some(1), "v2")).await;
    assert_eq!(c.version.unwrap().number, 2);
    store.close().await;
}

/// Input the store refuses before writing: each gets `Invalid` naming the problem.
async fn invalid_changes_leave_nothing(db: Db) {
    let store = db.open().await;
    commit(&store, version_change(None, "v1")).await;
    let ok_event = || NewEvent::new("cli", "route.weight_set", "why");
    let weight = |w| {
        override_change(
            Some(1),
            OverrideChange::Set(vec![set("orders", None, Some(w))]),
            ok_event(),
        )
    };
    let cases: Vec<(&str, Change)> = vec![
        ("weight", weight(10_001)),
        ("weight", weight(-1)),
        (
            "neither",
            override_change(
                Some(1),
                OverrideChange::Set(vec![set("orders", None, None)]),
                ok_event(),
            ),
        ),
        (
            "empty",
            override_change(
                Some(1),
                OverrideChange::Set(vec![set(" ", Some("canary"), None)]),
                ok_event(),
            ),
        ),
        (
            "actor",
            override_change(Some(1), OverrideChange::Keep, NewEvent::new("", "k", "m")),
        ),
        (
            "kind",
            override_change(Some(1), OverrideChange::Keep, NewEvent::new("cli", "", "m")),
        ),
        (
            "new config version",
            override_change(
                Some(1),
                OverrideChange::Keep,
                ok_event().with_version(VersionRef::New),
            ),
        ),
        (
            "no event",
            Change {
                expected_version: Some(1),
                ..Change::default()
            },
        ),
        ("NUL", version_change(Some(1), "a\0b")),
        (
            "NUL",
            override_change(
                Some(1),
                OverrideChange::Keep,
                ok_event().with_data(json!({"x": "a\u{0}b"})),
            ),
        ),
        ("numbered from 1", version_change(Some(0), "x")),
        (
            "limit",
            override_change(
                Some(1),
                OverrideChange::Keep,
                ok_event().with_data(json!("x".repeat(limits::MAX_EVENT_DATA_BYTES))),
            ),
        ),
        (
            "limit",
            version_change(Some(1), &"#".repeat(limits::MAX_CONFIG_BYTES + 1)),
        ),
    ];
    for (needle, change) in cases {
        match store.commit(change).await {
            Err(StoreError::Invalid(msg)) => {
                assert!(msg.contains(needle), "{needle:?} not in {msg:?}")
            }
            other => panic!("{needle}: {other:?}"),
        }
    }
    assert_eq!(store.current_version().await.unwrap().unwrap().number, 1);
    assert_eq!(all_events(&store).await.len(), 1);
    assert!(store.overrides().await.unwrap().is_empty());
    store.close().await;
}

/// The database itself keeps the log append-only and the versions immutable and gapless,
/// whatever client writes to it.
async fn schema_refuses_rewrites(db: Db) {
    let store = db.open().await;
    commit(&store, version_change(None, "v1")).await;
    for sql in [
        "UPDATE events SET message = 'rewritten'",
        "DELETE FROM events",
        "UPDATE config_versions SET text = 'rewritten'",
        "DELETE FROM config_versions",
        "INSERT INTO config_versions (number, sha256, text, author, message, created_at) \
         VALUES (3, '0000000000000000000000000000000000000000000000000000000000000000', '', 'a', 'm', 0)",
        "INSERT INTO route_overrides (route, stage, weight_bp, updated_at, event_id) \
         VALUES ('r', NULL, 10001, 0, 1)",
    ] {
        let r = db.raw(sql).await;
        assert!(r.is_err(), "{sql} was allowed: {r:?}");
    }
    if db.backend == Backend::Postgres {
        assert!(db.raw("TRUNCATE events").await.is_err());
    } else {
        assert!(db.raw("INSERT INTO events (at, actor, kind, message, data) VALUES (0, 'a', 'k', 'm', 'not json')").await.is_err());
    }
    assert_eq!(all_events(&store).await.len(), 1);
    assert_eq!(store.version(1).await.unwrap().unwrap().text, "v1");
    store.close().await;
}

/// Several processes (here: stores with pools of their own) opening a new database at the
/// same moment: one migrates it, the others wait and find it migrated.
async fn concurrent_first_opens_agree(db: Db) {
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move { db.open().await }));
    }
    let mut stores = Vec::new();
    for t in tasks {
        stores.push(t.await.expect("open task"));
    }
    commit(&stores[0], version_change(None, "v1")).await;
    for s in &stores {
        assert_eq!(s.current_version().await.unwrap().unwrap().number, 1);
        s.close().await;
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

// ---------------------------------------------------------------------------------------
// SQLite only
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn sqlite_first_open_creates_the_file_in_wal_mode() {
    let db = sqlite_db();
    let (path, dir) = db.sqlite.clone().unwrap();
    assert!(!path.exists());
    let store = db.open().await;
    assert!(path.exists(), "created on first open");
    commit(&store, version_change(None, "v1")).await;
    let mut wal = path.clone().into_os_string();
    wal.push("-wal");
    assert!(
        PathBuf::from(wal).exists(),
        "a -wal file next to the database"
    );
    let mut raw = SqliteConnection::connect_with(&db.sqlite_options())
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut raw)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    raw.close().await.unwrap();
    store.close().await;

    // The other URL forms reach the same file.
    for url in [
        format!("sqlite:{}", path.display()),
        path.display().to_string(),
    ] {
        let store = Store::open(&url).await.expect(&url);
        assert_eq!(
            store.current_version().await.unwrap().unwrap().text,
            "v1",
            "{url}"
        );
        store.close().await;
    }

    // A missing directory is not created: the error says what to check.
    let missing = dir.path().join("no-such-dir").join("state.db");
    let url = format!("sqlite://{}", missing.display());
    match Store::open(&url).await {
        Err(StoreError::Unavailable { url: u, reason }) => {
            assert_eq!(u, url);
            assert!(reason.contains("directory exists"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A file that is not a database is refused, not overwritten.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
    let err = Store::open(junk.to_str().unwrap()).await.unwrap_err();
    assert!(err.to_string().contains("junk.db"), "{err}");
    assert_eq!(std::fs::read(&junk).unwrap(), vec![b'x'; 4096]);
}

#[tokio::test]
async fn sqlite_locked_beyond_busy_timeout_is_unavailable() {
    let db = sqlite_db();
    let store = db
        .open_with(|o| o.busy_timeout = Duration::from_millis(300))
        .await
        .unwrap();
    commit(&store, version_change(None, "v1")).await;

    // Another connection (as another process would) takes the write lock and holds it.
    let mut holder = SqliteConnection::connect_with(&db.sqlite_options())
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();

    let started = Instant::now();
    let err = store
        .commit(version_change(Some(1), "v2"))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    match &err {
        StoreError::Unavailable { url, reason } => {
            assert_eq!(url, &db.url);
            assert!(
                reason.contains("locked") && reason.contains("busy_timeout (300 ms)"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains(&db.url), "{err}");
    assert!(
        waited >= Duration::from_millis(250),
        "gave up after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    // Opening takes the write lock for its migration check, so it waits and gives up too.
    let started = Instant::now();
    match db
        .open_with(|o| o.busy_timeout = Duration::from_millis(300))
        .await
    {
        Err(StoreError::Unavailable { reason, .. }) => {
            assert!(reason.contains("locked"), "{reason}")
        }
        other => panic!("open while locked: {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    // WAL: readers are not blocked by the writer, so /readyz and reads still work.
    store.health().await.expect("health while locked");
    assert_eq!(store.current_version().await.unwrap().unwrap().number, 1);

    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    holder.close().await.unwrap();
    let c = commit(&store, version_change(Some(1), "v2")).await;
    assert_eq!(c.version.unwrap().number, 2);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_in_memory_store_is_shared_by_its_connections() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append_events(vec![NewEvent::new("test", "note", format!("note {i}"))])
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    commit(&store, version_change(None, "v1")).await;
    assert_eq!(all_events(&store).await.len(), 9);
    // Another in-memory store is another database.
    let other = Store::open("sqlite::memory:").await.unwrap();
    assert_eq!(other.current_version().await.unwrap(), None);
}

const CRASH_CHILD_ENV: &str = "FICUS_STORE_TEST_CRASH_CHILD";
const CRASH_ROUTES: i64 = 5;
const CRASH_EVENTS_PER_COMMIT: usize = 3;

/// The child side of the kill -9 test: commits in a loop and prints each acknowledged
/// version number, until it is killed.
async fn crash_child(path: String) {
    let store = Store::open(&path).await.expect("child open");
    loop {
        let current = store.current_version().await.unwrap().map(|v| v.number);
        let n = current.unwrap_or(0) + 1;
        // Large texts (up to ~400 KiB) so that a kill often lands inside a write.
        let lines = (random_u64() % 8000) as usize + 10;
        let mut text = String::with_capacity(lines * 48);
        for i in 0..lines {
            text.push_str(&format!("# version {n} line {i:06} padding padding pad\n"));
        }
        text.push_str(&format!("# end of version {n}\n"));
        let route = format!("r{}", n % CRASH_ROUTES);
        let change = Change {
            expected_version: current,
            new_version: Some(applied(&text)),
            overrides: OverrideChange::Set(vec![set(
                &route,
                Some("canary"),
                Some((n % 10_001) as i32),
            )]),
            flag_overrides: FlagOverrideChange::Keep,
            events: vec![
                NewEvent::new("crash-child", "config.applied", "loop")
                    .with_version(VersionRef::New),
                NewEvent::new("crash-child", "route.weight_set", "loop")
                    .with_route(route.clone())
                    .with_version(VersionRef::New)
                    .with_data(json!({"n": n})),
                NewEvent::new("crash-child", "note", "third").with_version(VersionRef::New),
            ],
        };
        println!("committing {n}");
        let c = store.commit(change).await.expect("child commit");
        println!("committed {}", c.version.unwrap().number);
    }
}

/// Re-runs this test binary as a child that commits in a loop, SIGKILLs it at a random
/// moment, and checks after each kill that the store holds only whole commits and every
/// commit the child saw acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kill9_mid_commit_keeps_whole_commits() {
    if let Ok(path) = std::env::var(CRASH_CHILD_ENV) {
        crash_child(path).await;
        return;
    }
    let db = sqlite_db();
    // Create and migrate before any child runs.
    db.open().await.close().await;
    let path = db.sqlite.as_ref().unwrap().0.display().to_string();
    let exe = std::env::current_exe().unwrap();
    let mut acknowledged = 0;
    let mut killed_inside_commit = 0;
    const ROUNDS: usize = 12;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "sqlite_kill9_mid_commit_keeps_whole_commits",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().unwrap();
        let (acks_tx, acks) = std::sync::mpsc::channel::<i64>();
        // Returns whether the child's last words were "committing": killed inside a commit.
        let reader = std::thread::spawn(move || {
            let mut inside = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("committing ") {
                    inside = true;
                } else if let Some(n) = line.strip_prefix("committed ").and_then(|n| n.parse().ok())
                {
                    inside = false;
                    // The receiver stops listening after the kill; later acks are counted
                    // from what is left in the channel.
                    let _ = acks_tx.send(n);
                }
            }
            inside
        });
        // Let it commit a few times, then kill it at a random moment.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = 0;
        while seen < 2 {
            let left = deadline.saturating_duration_since(Instant::now());
            match acks.recv_timeout(left) {
                Ok(n) => {
                    acknowledged = acknowledged.max(n);
                    seen += 1;
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("round {round}: the child acknowledged no commit in 60 s");
                }
            }
        }
        std::thread::sleep(Duration::from_micros(random_u64() % 60_000));
        child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
        child.wait().expect("reap child");
        if reader.join().unwrap() {
            killed_inside_commit += 1;
        }
        acknowledged = acknowledged.max(acks.try_iter().max().unwrap_or(0));

        let store = db.open().await;
        let versions = all_versions(&store).await;
        let latest = versions.first().map_or(0, |v| v.number);
        assert!(
            latest >= acknowledged,
            "round {round}: acknowledged {acknowledged} but stored {latest}"
        );
        let numbers: Vec<i64> = versions.iter().rev().map(|v| v.number).collect();
        assert_eq!(
            numbers,
            (1..=latest).collect::<Vec<_>>(),
            "round {round}: gapless"
        );
        let events = all_events(&store).await;
        assert_eq!(
            events.len(),
            latest as usize * CRASH_EVENTS_PER_COMMIT,
            "round {round}: no partial commit"
        );
        for v in &versions {
            let full = store.version(v.number).await.unwrap().unwrap();
            assert_eq!(
                full.sha256,
                sha256_hex(&full.text),
                "round {round}: version {}",
                v.number
            );
            assert!(full
                .text
                .ends_with(&format!("# end of version {}\n", v.number)));
            let own = events
                .iter()
                .filter(|e| e.config_version == Some(v.number))
                .count();
            assert_eq!(
                own, CRASH_EVENTS_PER_COMMIT,
                "round {round}: events of version {}",
                v.number
            );
        }
        // Every override is the one its latest commit set, pointing at that commit's event.
        for o in store.overrides().await.unwrap() {
            let k: i64 = o.route[1..].parse().unwrap();
            let last = (1..=latest).rev().find(|n| n % CRASH_ROUTES == k).unwrap();
            assert_eq!(o.weight_bp, Some((last % 10_001) as i32));
            let ev = events
                .iter()
                .find(|e| e.id == o.event_id)
                .expect("override event exists");
            assert_eq!(
                (ev.config_version, ev.route.as_deref()),
                (Some(last), Some(o.route.as_str()))
            );
        }
        store.close().await;
        eprintln!("kill -9 round {round}: {latest} versions intact, {acknowledged} acknowledged");
    }
    eprintln!("kill -9: {killed_inside_commit} of {ROUNDS} kills landed inside Store::commit");
    // A commit (a fsynced write of up to ~400 KiB) is most of the child's loop, so random
    // kills land inside one nearly every time; none at all would mean the test tests nothing.
    assert!(killed_inside_commit > 0, "no kill landed inside a commit");
}

// ---------------------------------------------------------------------------------------
// PostgreSQL only
// ---------------------------------------------------------------------------------------

/// Needs no server: a closed port on 127.0.0.1 fails at once (the store makes one direct
/// connection attempt before building its pool), well within the connect timeout.
#[tokio::test]
async fn postgres_unreachable_is_unavailable_quickly() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // closed again here
    let url = format!("postgres://ficus:s3cret@127.0.0.1:{port}/ficus");
    let started = Instant::now();
    let err = Store::open_with(
        &url,
        StoreOptions {
            connect_timeout: Duration::from_secs(2),
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap_err();
    let took = started.elapsed();
    match &err {
        StoreError::Unavailable { url, reason } => {
            assert_eq!(url, &format!("postgres://ficus:***@127.0.0.1:{port}/ficus"));
            assert!(reason.contains("connection refused"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(!msg.contains("s3cret"), "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn postgres_missing_database_says_so() {
    let Some(db) = postgres_db().await else {
        return;
    };
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_path("/ficus_no_such_database");
    let err = Store::open(url.as_str()).await.unwrap_err();
    match &err {
        StoreError::Unavailable { reason, .. } => {
            assert!(reason.contains("does not exist"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

/// Two stores in two schemas of one database are independent.
#[tokio::test]
async fn postgres_schemas_isolate_stores() {
    let Some(a) = postgres_db().await else { return };
    let Some(b) = postgres_db().await else { return };
    let run = async {
        let sa = a.open().await;
        // The schema can also come from the URL.
        let (base, schema) = b.pg.clone().unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let sb = Store::open(&format!("{base}{sep}schema={schema}"))
            .await
            .unwrap();
        commit(&sa, version_change(None, "a1")).await;
        assert_eq!(sb.current_version().await.unwrap(), None);
        commit(&sb, version_change(None, "b1")).await;
        assert_eq!(sa.current_version().await.unwrap().unwrap().text, "a1");
        // The shadow tables too.
        let batch = ShadowBatch {
            endpoints: vec![shadow_endpoint("orders", "GET /orders", [1, 0, 0, 0], 5)],
            ..ShadowBatch::default()
        };
        sa.flush_shadow(&batch).await.unwrap();
        assert_eq!(sa.load_shadow().await.unwrap(), batch);
        assert_eq!(sb.load_shadow().await.unwrap(), ShadowBatch::default());
        sa.close().await;
        sb.close().await;
    };
    let outcome = AssertUnwindSafe(run).catch_unwind().await;
    for db in [&a, &b] {
        let (base, schema) = db.pg.as_ref().unwrap();
        drop_schema(base, schema).await;
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

// ---------------------------------------------------------------------------------------

fn verify_run(job: &str, outcome: &str, at: i64) -> NewVerifyRun {
    NewVerifyRun {
        job: job.into(),
        route: Some("orders".into()),
        source_table: "public.orders".into(),
        target_table: "orders".into(),
        started_at: at,
        finished_at: at + 250,
        outcome: outcome.into(),
        rows_compared: 1000,
        missing: if outcome == "different" { 2 } else { 0 },
        extra: 0,
        changed: if outcome == "different" { 1 } else { 0 },
        error: (outcome == "error").then(|| "cannot connect to the source".to_string()),
        report: json!({"outcome": outcome, "rows": {"source": 1000}}),
    }
}

async fn verify_runs_record_and_list(db: Db) {
    let store = db.open().await;
    assert!(store.latest_verify_runs().await.unwrap().is_empty());
    assert!(store.verify_runs(None, 10).await.unwrap().is_empty());

    let a1 = store
        .record_verify(verify_run("a", "equal", 1_000))
        .await
        .unwrap();
    let b1 = store
        .record_verify(verify_run("b", "error", 2_000))
        .await
        .unwrap();
    let a2 = store
        .record_verify(verify_run("a", "different", 3_000))
        .await
        .unwrap();
    assert!(a1.id < b1.id && b1.id < a2.id);
    assert_eq!(a2.missing, 2);
    assert_eq!(
        a2.report,
        json!({"outcome": "different", "rows": {"source": 1000}})
    );

    // Newest first, per job or all.
    let runs = store.verify_runs(Some("a"), 10).await.unwrap();
    assert_eq!(runs, vec![a2.clone(), a1.clone()]);
    let runs = store.verify_runs(None, 2).await.unwrap();
    assert_eq!(runs, vec![a2.clone(), b1.clone()]);
    assert!(store
        .verify_runs(Some("nope"), 10)
        .await
        .unwrap()
        .is_empty());

    // Latest per job, by job name.
    let latest = store.latest_verify_runs().await.unwrap();
    assert_eq!(latest, vec![a2.clone(), b1.clone()]);
    assert_eq!(
        latest[1].error.as_deref(),
        Some("cannot connect to the source")
    );
    assert_eq!(latest[1].route.as_deref(), Some("orders"));

    // Bad runs are refused with a message, and store nothing.
    let mut bad = verify_run("a", "maybe", 4_000);
    let e = store.record_verify(bad.clone()).await.unwrap_err();
    assert!(
        e.to_string().contains("outcome \"maybe\" is unknown"),
        "{e}"
    );
    bad.outcome = "equal".into();
    bad.job = String::new();
    assert!(store.record_verify(bad).await.is_err());
    assert!(store.verify_runs(None, 0).await.is_err());
    assert_eq!(store.verify_runs(None, 100).await.unwrap().len(), 3);

    // The runs survive a reopen.
    store.close().await;
    let store = db.open().await;
    assert_eq!(store.latest_verify_runs().await.unwrap(), vec![a2, b1]);
}

// ---------------------------------------------------------------------------------------
// Shadow aggregates
// ---------------------------------------------------------------------------------------

/// `counts`: compared, differing, noise_compared, noise_differing.
fn shadow_endpoint(route: &str, endpoint: &str, counts: [i64; 4], last_ms: i64) -> ShadowEndpoint {
    ShadowEndpoint {
        route: route.into(),
        endpoint: endpoint.into(),
        compared: counts[0],
        differing: counts[1],
        noise_compared: counts[2],
        noise_differing: counts[3],
        last_ms,
    }
}

/// `counts`: differing, noise_differing.
fn shadow_field(
    route: &str,
    endpoint: &str,
    path: &str,
    kind: &str,
    counts: [i64; 2],
    last_ms: i64,
) -> ShadowField {
    ShadowField {
        route: route.into(),
        endpoint: endpoint.into(),
        path: path.into(),
        kind: kind.into(),
        differing: counts[0],
        noise_differing: counts[1],
        last_ms,
    }
}

fn shadow_sample_of(id: i64, route: &str, endpoint: &str, path: &str) -> ShadowSample {
    ShadowSample {
        id,
        route: route.into(),
        endpoint: endpoint.into(),
        path: path.into(),
        kind: "value".into(),
        at_ms: 1_000 + id.rem_euclid(1_000_000),
        data: json!({
            "legacy": {"total": 10.5, "id": id},
            "modern": {"total": "10.50"},
            "request": "GET /orders/7?ünï=✓",
        }),
    }
}

/// The counters as a map, for comparing totals without caring about order.
fn endpoint_totals(
    batch: &ShadowBatch,
) -> std::collections::BTreeMap<(String, String), ([i64; 4], i64)> {
    batch
        .endpoints
        .iter()
        .map(|e| {
            (
                (e.route.clone(), e.endpoint.clone()),
                (
                    [e.compared, e.differing, e.noise_compared, e.noise_differing],
                    e.last_ms,
                ),
            )
        })
        .collect()
}

async fn flush(store: &Store, batch: &ShadowBatch) {
    if let Err(e) = store.flush_shadow(batch).await {
        panic!("flush_shadow failed: {e}");
    }
}

async fn shadow_flush_adds_deltas(db: Db) {
    let store = db.open().await;
    assert_eq!(store.load_shadow().await.unwrap(), ShadowBatch::default());
    flush(&store, &ShadowBatch::default()).await;
    assert_eq!(store.load_shadow().await.unwrap(), ShadowBatch::default());

    let first = ShadowBatch {
        endpoints: vec![
            shadow_endpoint("users", "GET /users/{id}", [1, 1, 0, 0], 700),
            shadow_endpoint("orders", "GET /orders/{id}", [10, 2, 5, 1], 1_000),
            shadow_endpoint("orders", "POST /orders", [3, 0, 0, 0], 500),
        ],
        fields: vec![
            shadow_field(
                "orders",
                "GET /orders/{id}",
                "$.total",
                "value",
                [2, 1],
                1_000,
            ),
            shadow_field("users", "GET /users/{id}", "$.name", "missing", [1, 0], 700),
        ],
        samples: vec![
            shadow_sample_of(2, "orders", "GET /orders/{id}", "$.total"),
            shadow_sample_of(1, "users", "GET /users/{id}", "$.name"),
        ],
    };
    flush(&store, &first).await;
    // Loaded sorted by key, samples by id.
    let mut expected = first.clone();
    expected.endpoints.rotate_left(1);
    expected.fields.sort_by(|a, b| a.route.cmp(&b.route));
    expected.samples.reverse();
    assert_eq!(store.load_shadow().await.unwrap(), expected);

    let mut changed_sample = shadow_sample_of(2, "orders", "GET /orders/{id}", "$.total");
    changed_sample.data = json!({"retried": true});
    let second = ShadowBatch {
        endpoints: vec![
            // An older time: last_ms stays 1000.
            shadow_endpoint("orders", "GET /orders/{id}", [5, 1, 2, 0], 900),
            // A newer time: last_ms becomes 1500.
            shadow_endpoint("orders", "POST /orders", [1, 1, 0, 0], 1_500),
            shadow_endpoint("orders", "GET /orders", [2, 0, 0, 0], 1_200),
        ],
        fields: vec![
            shadow_field(
                "orders",
                "GET /orders/{id}",
                "$.total",
                "value",
                [3, 0],
                1_100,
            ),
            shadow_field(
                "orders",
                "GET /orders/{id}",
                "$.items",
                "length",
                [1, 1],
                1_100,
            ),
        ],
        // Sample 2 again (a retried flush: the stored one stays), and a new one.
        samples: vec![
            changed_sample,
            shadow_sample_of(3, "orders", "POST /orders", "$.id"),
        ],
    };
    flush(&store, &second).await;
    let loaded = store.load_shadow().await.unwrap();
    let ep =
        |route: &str, endpoint: &str, counts, last| shadow_endpoint(route, endpoint, counts, last);
    assert_eq!(
        loaded.endpoints,
        vec![
            ep("orders", "GET /orders", [2, 0, 0, 0], 1_200),
            ep("orders", "GET /orders/{id}", [15, 3, 7, 1], 1_000),
            ep("orders", "POST /orders", [4, 1, 0, 0], 1_500),
            ep("users", "GET /users/{id}", [1, 1, 0, 0], 700),
        ]
    );
    assert_eq!(
        loaded.fields,
        vec![
            shadow_field(
                "orders",
                "GET /orders/{id}",
                "$.items",
                "length",
                [1, 1],
                1_100
            ),
            shadow_field(
                "orders",
                "GET /orders/{id}",
                "$.total",
                "value",
                [5, 1],
                1_100
            ),
            shadow_field("users", "GET /users/{id}", "$.name", "missing", [1, 0], 700),
        ]
    );
    assert_eq!(
        loaded.samples,
        vec![
            shadow_sample_of(1, "users", "GET /users/{id}", "$.name"),
            shadow_sample_of(2, "orders", "GET /orders/{id}", "$.total"),
            shadow_sample_of(3, "orders", "POST /orders", "$.id"),
        ],
        "a sample id already stored is ignored; JSON data round-trips"
    );

    // The same key twice in one batch is added up; the same sample id twice is stored once.
    let doubled = ShadowBatch {
        endpoints: vec![
            shadow_endpoint("orders", "POST /orders", [1, 0, 1, 0], 100),
            shadow_endpoint("orders", "POST /orders", [2, 1, 0, 1], 2_000),
        ],
        fields: vec![
            shadow_field("users", "GET /users/{id}", "$.name", "missing", [1, 0], 800),
            shadow_field("users", "GET /users/{id}", "$.name", "missing", [1, 2], 750),
        ],
        samples: vec![
            shadow_sample_of(4, "users", "GET /users/{id}", "$.name"),
            shadow_sample_of(4, "orders", "GET /orders", "$"),
        ],
    };
    flush(&store, &doubled).await;
    let loaded = store.load_shadow().await.unwrap();
    assert_eq!(
        endpoint_totals(&loaded)[&("orders".to_string(), "POST /orders".to_string())],
        ([7, 2, 1, 1], 2_000)
    );
    assert_eq!(
        loaded.fields[2],
        shadow_field("users", "GET /users/{id}", "$.name", "missing", [3, 2], 800)
    );
    assert_eq!(loaded.samples.len(), 4);
    assert_eq!(
        loaded.samples[3],
        shadow_sample_of(4, "users", "GET /users/{id}", "$.name")
    );

    // Batches larger than one INSERT statement (1000 counter rows, 100 samples).
    let bulk = ShadowBatch {
        endpoints: (0..2_500)
            .map(|i| shadow_endpoint("bulk", &format!("GET /e/{i}"), [i, 0, 1, 0], i))
            .collect(),
        fields: (0..2_500)
            .map(|i| shadow_field("bulk", "GET /e/0", &format!("$.f{i}"), "value", [1, 0], i))
            .collect(),
        samples: (0..250)
            .map(|i| shadow_sample_of(10_000 + i, "bulk", "GET /e/0", "$.f0"))
            .collect(),
    };
    flush(&store, &bulk).await;
    flush(&store, &bulk).await;
    let loaded = store.load_shadow().await.unwrap();
    let bulk_endpoints: Vec<&ShadowEndpoint> = loaded
        .endpoints
        .iter()
        .filter(|e| e.route == "bulk")
        .collect();
    assert_eq!(bulk_endpoints.len(), 2_500);
    assert!(bulk_endpoints.iter().all(|e| {
        let i: i64 = e.endpoint["GET /e/".len()..].parse().unwrap();
        (e.compared, e.noise_compared, e.last_ms) == (2 * i, 2, i)
    }));
    let bulk_fields = loaded.fields.iter().filter(|f| f.route == "bulk");
    assert_eq!(bulk_fields.clone().count(), 2_500);
    assert!(bulk_fields.clone().all(|f| f.differing == 2));
    assert_eq!(loaded.samples.len(), 4 + 250);
    assert!(loaded.samples.windows(2).all(|w| w[0].id < w[1].id));
    // Nothing of this wrote an event.
    assert!(all_events(&store).await.is_empty());
    store.close().await;
}

async fn shadow_reset_removes_one_route(db: Db) {
    let store = db.open().await;
    let batch = ShadowBatch {
        endpoints: vec![
            shadow_endpoint("orders", "GET /orders/{id}", [10, 2, 0, 0], 1_000),
            shadow_endpoint("orders", "POST /orders", [3, 0, 0, 0], 500),
            shadow_endpoint("users", "GET /users/{id}", [1, 1, 0, 0], 700),
        ],
        fields: vec![
            shadow_field(
                "orders",
                "GET /orders/{id}",
                "$.total",
                "value",
                [2, 0],
                1_000,
            ),
            shadow_field("users", "GET /users/{id}", "$.name", "missing", [1, 0], 700),
        ],
        samples: vec![
            shadow_sample_of(1, "orders", "GET /orders/{id}", "$.total"),
            shadow_sample_of(2, "orders", "GET /orders/{id}", "$.total"),
            shadow_sample_of(3, "users", "GET /users/{id}", "$.name"),
        ],
    };
    flush(&store, &batch).await;
    let note = store
        .append_events(vec![NewEvent::new("cli", "note", "before the reset")])
        .await
        .unwrap();

    let started = now_ms();
    let event = store
        .reset_shadow("orders", "api:alice", "modern v2 deployed")
        .await
        .unwrap();
    assert!(event.id > note[0].id);
    assert!(event.at >= started && event.at <= now_ms() + 1000);
    assert_eq!(event.kind, "shadow.reset");
    assert_eq!(event.kind, SHADOW_RESET_KIND);
    assert_eq!(event.route.as_deref(), Some("orders"));
    assert_eq!(event.actor, "api:alice");
    assert_eq!(event.message, "modern v2 deployed");
    assert_eq!(event.config_version, None);
    assert_eq!(
        event.data,
        json!({"endpoints": 2, "fields": 1, "samples": 2})
    );

    // Only that route is gone.
    let loaded = store.load_shadow().await.unwrap();
    assert_eq!(
        loaded,
        ShadowBatch {
            endpoints: vec![batch.endpoints[2].clone()],
            fields: vec![batch.fields[1].clone()],
            samples: vec![batch.samples[2].clone()],
        }
    );
    assert_eq!(store.shadow_sample(1).await.unwrap(), None);
    assert_eq!(
        store.shadow_sample(3).await.unwrap().as_ref(),
        Some(&batch.samples[2])
    );

    // The event is in the log as returned.
    let resets = store
        .events(EventFilter {
            kind: Some(SHADOW_RESET_KIND.into()),
            ..EventFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(resets, vec![event.clone()]);
    let about_orders = store
        .events(EventFilter {
            route: Some("orders".into()),
            ..EventFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(about_orders, vec![event.clone()]);

    // Again, or for a route with nothing stored: an event with zeros.
    let again = store.reset_shadow("orders", "cli", "").await.unwrap();
    assert_eq!(
        again.data,
        json!({"endpoints": 0, "fields": 0, "samples": 0})
    );
    let never = store
        .reset_shadow("no-such-route", "cli", "tidy")
        .await
        .unwrap();
    assert_eq!(
        never.data,
        json!({"endpoints": 0, "fields": 0, "samples": 0})
    );
    assert_eq!(store.load_shadow().await.unwrap(), loaded);

    // Counting starts again from zero; a reset sample id may be stored again.
    flush(
        &store,
        &ShadowBatch {
            endpoints: vec![shadow_endpoint("orders", "POST /orders", [1, 0, 0, 0], 5)],
            samples: vec![shadow_sample_of(1, "orders", "POST /orders", "$.id")],
            ..ShadowBatch::default()
        },
    )
    .await;
    let loaded = store.load_shadow().await.unwrap();
    assert_eq!(
        loaded.endpoints[0],
        shadow_endpoint("orders", "POST /orders", [1, 0, 0, 0], 5)
    );
    assert_eq!(
        store.shadow_sample(1).await.unwrap().unwrap().endpoint,
        "POST /orders"
    );

    // A reset needs a route and an actor; a refused one writes nothing.
    for (route, actor, reason, needle) in [
        ("", "cli", "why", "route is empty"),
        ("orders", " ", "why", "actor is empty"),
        ("orders", "cli", "a\0b", "NUL"),
    ] {
        match store.reset_shadow(route, actor, reason).await {
            Err(StoreError::Invalid(msg)) => assert!(msg.contains(needle), "{needle:?} in {msg:?}"),
            other => panic!("{needle}: {other:?}"),
        }
    }
    let long = "x".repeat(limits::MAX_MESSAGE_BYTES + 1);
    assert!(matches!(
        store.reset_shadow("orders", "cli", &long).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.load_shadow().await.unwrap(), loaded);
    assert_eq!(all_events(&store).await.len(), 4);
    store.close().await;
}

async fn shadow_sample_by_id(db: Db) {
    let store = db.open().await;
    assert_eq!(store.shadow_sample(1).await.unwrap(), None);
    let mut big = shadow_sample_of(i64::MAX, "orders", "GET /orders/{id}", "$.items[*].price");
    big.kind = "type".into();
    big.data = json!({"nested": {"list": [1, 2.5, null, true, "ünï ✓"], "empty": {}}});
    let samples = vec![
        shadow_sample_of(-5, "orders", "GET /orders/{id}", "$.total"),
        shadow_sample_of(0, "orders", "GET /orders/{id}", "$.total"),
        big.clone(),
    ];
    flush(
        &store,
        &ShadowBatch {
            samples: samples.clone(),
            ..ShadowBatch::default()
        },
    )
    .await;
    for s in &samples {
        assert_eq!(store.shadow_sample(s.id).await.unwrap().as_ref(), Some(s));
    }
    assert_eq!(store.shadow_sample(1).await.unwrap(), None);
    assert_eq!(store.shadow_sample(i64::MIN).await.unwrap(), None);
    assert_eq!(store.load_shadow().await.unwrap().samples, samples);
    store.close().await;
}

/// Many writers flushing +1 deltas at once, through two stores (two pools, as two ficus
/// processes would have): the totals are exact.
async fn shadow_concurrent_flushes_add_up(db: Db) {
    const TASKS: i64 = 8;
    const FLUSHES: i64 = 20;
    let stores = [db.open().await, db.open().await];
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = stores[t as usize % 2].clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..FLUSHES {
                let at = t * 1_000 + i;
                let mut endpoints = vec![
                    shadow_endpoint("orders", "GET /orders/{id}", [1, 1, 1, 1], at),
                    shadow_endpoint("orders", "POST /orders", [1, 0, 0, 0], at),
                    shadow_endpoint("orders", &format!("GET /task/{t}"), [1, 0, 0, 0], at),
                ];
                // Writers list the shared rows in different orders.
                if t % 2 == 1 {
                    endpoints.reverse();
                }
                let batch = ShadowBatch {
                    endpoints,
                    fields: vec![shadow_field(
                        "orders",
                        "GET /orders/{id}",
                        "$.total",
                        "value",
                        [1, 1],
                        at,
                    )],
                    samples: vec![shadow_sample_of(
                        at,
                        "orders",
                        "GET /orders/{id}",
                        "$.total",
                    )],
                };
                store
                    .flush_shadow(&batch)
                    .await
                    .unwrap_or_else(|e| panic!("task {t} flush {i}: {e}"));
            }
        }));
    }
    for t in tasks {
        t.await.expect("flush task");
    }
    let n = TASKS * FLUSHES;
    let last = (TASKS - 1) * 1_000 + FLUSHES - 1;
    let loaded = stores[0].load_shadow().await.unwrap();
    let totals = endpoint_totals(&loaded);
    let key = |e: &str| ("orders".to_string(), e.to_string());
    assert_eq!(totals[&key("GET /orders/{id}")], ([n, n, n, n], last));
    assert_eq!(totals[&key("POST /orders")], ([n, 0, 0, 0], last));
    for t in 0..TASKS {
        assert_eq!(
            totals[&key(&format!("GET /task/{t}"))],
            ([FLUSHES, 0, 0, 0], t * 1_000 + FLUSHES - 1)
        );
    }
    assert_eq!(loaded.endpoints.len(), 2 + TASKS as usize);
    assert_eq!(
        loaded.fields,
        vec![shadow_field(
            "orders",
            "GET /orders/{id}",
            "$.total",
            "value",
            [n, n],
            last
        )]
    );
    assert_eq!(loaded.samples.len(), n as usize);
    for s in stores {
        s.close().await;
    }
}

/// Input the store refuses before writing: each gets `Invalid` naming the row and field.
async fn shadow_invalid_batches_store_nothing(db: Db) {
    let store = db.open().await;
    let ok = ShadowBatch {
        endpoints: vec![shadow_endpoint("orders", "GET /orders", [1, 0, 0, 0], 1)],
        fields: vec![shadow_field(
            "orders",
            "GET /orders",
            "$.a",
            "value",
            [1, 0],
            1,
        )],
        samples: vec![shadow_sample_of(1, "orders", "GET /orders", "$.a")],
    };
    flush(&store, &ok).await;
    let stored = store.load_shadow().await.unwrap();

    // Each case spoils one row of an otherwise good batch.
    let with = |f: &dyn Fn(&mut ShadowBatch)| {
        let mut b = ok.clone();
        b.endpoints
            .push(shadow_endpoint("users", "GET /users", [1, 0, 0, 0], 2));
        b.samples
            .push(shadow_sample_of(2, "users", "GET /users", "$"));
        f(&mut b);
        b
    };
    let cases: Vec<(&str, ShadowBatch)> = vec![
        (
            "shadow endpoint 1 route is empty",
            with(&|b| b.endpoints[1].route = String::new()),
        ),
        (
            "shadow endpoint 1 endpoint is empty",
            with(&|b| b.endpoints[1].endpoint = " ".into()),
        ),
        (
            "shadow endpoint 1 (users GET /users) compared is negative (-1)",
            with(&|b| b.endpoints[1].compared = -1),
        ),
        (
            "differing is negative",
            with(&|b| b.endpoints[0].differing = -2),
        ),
        (
            "noise_compared is negative",
            with(&|b| b.endpoints[0].noise_compared = -3),
        ),
        (
            "noise_differing is negative",
            with(&|b| b.endpoints[0].noise_differing = -4),
        ),
        (
            "shadow endpoint 0 (orders GET /orders) last_ms is negative",
            with(&|b| b.endpoints[0].last_ms = -1),
        ),
        (
            "shadow field 0 route is empty",
            with(&|b| b.fields[0].route = String::new()),
        ),
        (
            "shadow field 0 endpoint is empty",
            with(&|b| b.fields[0].endpoint = String::new()),
        ),
        (
            "shadow field 0 path is empty",
            with(&|b| b.fields[0].path = String::new()),
        ),
        (
            "shadow field 0 kind is empty",
            with(&|b| b.fields[0].kind = String::new()),
        ),
        (
            "shadow field 0 (orders GET /orders $.a value) differing is negative",
            with(&|b| b.fields[0].differing = -1),
        ),
        (
            "shadow field 0 (orders GET /orders $.a value) noise_differing is negative",
            with(&|b| b.fields[0].noise_differing = -1),
        ),
        ("last_ms is negative", with(&|b| b.fields[0].last_ms = -1)),
        (
            "shadow sample 1 (id 2) route is empty",
            with(&|b| b.samples[1].route = String::new()),
        ),
        (
            "shadow sample 1 (id 2) endpoint is empty",
            with(&|b| b.samples[1].endpoint = String::new()),
        ),
        (
            "shadow sample 1 (id 2) path is empty",
            with(&|b| b.samples[1].path = String::new()),
        ),
        (
            "shadow sample 1 (id 2) kind is empty",
            with(&|b| b.samples[1].kind = String::new()),
        ),
        (
            "shadow sample 1 (id 2) at_ms is negative",
            with(&|b| b.samples[1].at_ms = -1),
        ),
        (
            "data contains a NUL",
            with(&|b| b.samples[1].data = json!({"x": "a\u{0}b"})),
        ),
        (
            "route contains a NUL",
            with(&|b| b.endpoints[1].route = "a\0b".into()),
        ),
        (
            "limit of 1048576",
            with(&|b| b.samples[1].data = json!("x".repeat(limits::MAX_SHADOW_SAMPLE_BYTES))),
        ),
        (
            "limit of 1024",
            with(&|b| b.fields[0].path = "$".repeat(limits::MAX_SHADOW_PATH_BYTES + 1)),
        ),
        (
            "limit of 256",
            with(&|b| b.fields[0].kind = "k".repeat(limits::MAX_NAME_BYTES + 1)),
        ),
        (
            "endpoints, more than the limit",
            with(&|b| {
                b.endpoints = vec![
                    shadow_endpoint("users", "GET /users", [1, 0, 0, 0], 2);
                    limits::MAX_SHADOW_ROWS_PER_FLUSH + 1
                ]
            }),
        ),
        (
            "compared: the deltas of this flush add up to more than a 64-bit counter",
            with(&|b| {
                b.endpoints.push(shadow_endpoint(
                    "users",
                    "GET /users",
                    [i64::MAX, 0, 0, 0],
                    2,
                ))
            }),
        ),
    ];
    for (needle, batch) in cases {
        match store.flush_shadow(&batch).await {
            Err(StoreError::Invalid(msg)) => {
                assert!(msg.contains(needle), "{needle:?} not in {msg:?}")
            }
            other => panic!("{needle}: {other:?}"),
        }
    }
    assert_eq!(store.load_shadow().await.unwrap(), stored);
    store.close().await;
}

/// A flush that the database refuses part-way (a stored counter would overflow, after
/// other rows of the batch were written) leaves nothing of the batch behind.
async fn shadow_failed_flush_stores_nothing(db: Db) {
    let store = db.open().await;
    flush(
        &store,
        &ShadowBatch {
            endpoints: vec![shadow_endpoint("orders", "z", [i64::MAX - 1, 0, 0, 0], 1)],
            ..ShadowBatch::default()
        },
    )
    .await;
    let stored = store.load_shadow().await.unwrap();
    let bad = ShadowBatch {
        endpoints: vec![
            shadow_endpoint("orders", "z", [2, 0, 0, 0], 1),
            // Sorts first, so it is written before the failing row.
            shadow_endpoint("orders", "a", [1, 0, 0, 0], 1),
        ],
        fields: vec![shadow_field("orders", "a", "$", "value", [1, 0], 1)],
        samples: vec![shadow_sample_of(1, "orders", "a", "$")],
    };
    let err = store.flush_shadow(&bad).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Database { .. }),
        "overflow: {err:?}"
    );
    assert_eq!(store.load_shadow().await.unwrap(), stored);
    // The store works on.
    flush(
        &store,
        &ShadowBatch {
            endpoints: vec![shadow_endpoint("orders", "z", [1, 0, 0, 0], 1)],
            ..ShadowBatch::default()
        },
    )
    .await;
    assert_eq!(
        store.load_shadow().await.unwrap().endpoints[0].compared,
        i64::MAX
    );
    store.close().await;
}

async fn shadow_state_survives_reopen(db: Db) {
    let store = db.open().await;
    let batch = ShadowBatch {
        endpoints: vec![shadow_endpoint(
            "orders",
            "GET /orders/{id}",
            [10, 2, 5, 1],
            1_000,
        )],
        fields: vec![shadow_field(
            "orders",
            "GET /orders/{id}",
            "$.total",
            "value",
            [2, 1],
            1_000,
        )],
        samples: vec![shadow_sample_of(7, "orders", "GET /orders/{id}", "$.total")],
    };
    flush(&store, &batch).await;
    store.close().await;

    let store = db.open().await;
    assert_eq!(store.load_shadow().await.unwrap(), batch);
    // And the totals keep growing from there.
    flush(&store, &batch).await;
    store.close().await;
    let store = db.open().await;
    let loaded = store.load_shadow().await.unwrap();
    assert_eq!(
        loaded.endpoints,
        vec![shadow_endpoint(
            "orders",
            "GET /orders/{id}",
            [20, 4, 10, 2],
            1_000
        )]
    );
    assert_eq!(
        loaded.fields,
        vec![shadow_field(
            "orders",
            "GET /orders/{id}",
            "$.total",
            "value",
            [4, 2],
            1_000
        )]
    );
    assert_eq!(loaded.samples, batch.samples);
    store.close().await;
}

/// The database itself refuses what validation refuses, whatever client writes to it.
async fn shadow_schema_refuses_bad_rows(db: Db) {
    let store = db.open().await;
    for sql in [
        "INSERT INTO shadow_endpoints (route, endpoint, compared, differing, noise_compared, \
         noise_differing, last_ms) VALUES ('', 'e', 0, 0, 0, 0, 0)",
        "INSERT INTO shadow_endpoints (route, endpoint, compared, differing, noise_compared, \
         noise_differing, last_ms) VALUES ('r', '', 0, 0, 0, 0, 0)",
        "INSERT INTO shadow_endpoints (route, endpoint, compared, differing, noise_compared, \
         noise_differing, last_ms) VALUES ('r', 'e', -1, 0, 0, 0, 0)",
        "INSERT INTO shadow_endpoints (route, endpoint, compared, differing, noise_compared, \
         noise_differing, last_ms) VALUES ('r', 'e', 0, 0, 0, -1, 0)",
        "INSERT INTO shadow_endpoints (route, endpoint, compared, differing, noise_compared, \
         noise_differing, last_ms) VALUES ('r', 'e', 'many', 0, 0, 0, 0)",
        "INSERT INTO shadow_fields (route, endpoint, path, kind, differing, noise_differing, \
         last_ms) VALUES ('r', 'e', '', 'value', 0, 0, 0)",
        "INSERT INTO shadow_fields (route, endpoint, path, kind, differing, noise_differing, \
         last_ms) VALUES ('r', 'e', '$', '', 0, 0, 0)",
        "INSERT INTO shadow_fields (route, endpoint, path, kind, differing, noise_differing, \
         last_ms) VALUES ('r', 'e', '$', 'value', 0, -1, 0)",
        "INSERT INTO shadow_samples (id, route, endpoint, path, kind, at_ms, data) \
         VALUES (1, 'r', 'e', '$', 'value', -1, '{}')",
        "INSERT INTO shadow_samples (id, route, endpoint, path, kind, at_ms, data) \
         VALUES (1, 'r', 'e', '$', 'value', 0, 'not json')",
    ] {
        let r = db.raw(sql).await;
        assert!(r.is_err(), "{sql} was allowed: {r:?}");
    }
    // A well-formed row written by another client is loaded like any other.
    db.raw(
        "INSERT INTO shadow_samples (id, route, endpoint, path, kind, at_ms, data) \
         VALUES (9, 'r', 'e', '$', 'value', 0, '{\"a\": [1]}')",
    )
    .await
    .unwrap();
    assert_eq!(
        store.shadow_sample(9).await.unwrap().unwrap().data,
        json!({"a": [1]})
    );
    assert_eq!(store.load_shadow().await.unwrap().samples.len(), 1);
    store.close().await;
}
