//! The control plane over a real SQLite store file and a real gateway: every change is a
//! stored version or override plus an event, runtime overrides survive restarts, the file
//! wins when it changes a route, and conflicting or invalid changes change nothing.

use std::path::Path;
use std::sync::Arc;

use ficus_config::{Stage, Weight};
use ficus_control::{ControlError, ControlPlane};
use ficus_proxy::Gateway;
use ficus_store::{EventFilter, Store};

const FILE: &str = r#"
[[listener]]
bind = "127.0.0.1:0"
[upstream.legacy]
url = "http://127.0.0.1:9"
[upstream.modern]
url = "http://127.0.0.1:9"
[[route]]
name = "orders"
path_prefix = "/orders"
legacy = "legacy"
modern = "modern"
stage = "canary"
weight = 10
[[route]]
name = "users"
path_prefix = "/users"
legacy = "legacy"
modern = "modern"
stage = "modern"
[default]
legacy = "legacy"
[access_log]
enabled = false
"#;

async fn start(dir: &Path) -> Arc<ControlPlane> {
    let store = Store::open(&format!("sqlite://{}", dir.join("state.db").display()))
        .await
        .unwrap();
    let boot = ControlPlane::boot(&dir.join("ficus.toml"), store)
        .await
        .unwrap();
    let gw = Gateway::start(boot.effective().clone()).await.unwrap();
    ControlPlane::new(boot, Arc::new(gw))
}

fn route_state(cp: &ControlPlane, name: &str) -> (Stage, Weight) {
    let table = cp.gateway().table();
    let r = table.routes().iter().find(|r| &*r.name == name).unwrap();
    (r.stage, r.weight)
}

#[tokio::test]
async fn every_change_is_versioned_or_overridden_with_an_event_and_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ficus.toml"), FILE).unwrap();
    let cp = start(dir.path()).await;
    assert_eq!(
        cp.snapshot().version,
        Some(1),
        "the first boot stores the file"
    );

    // A runtime change: an override and an event, live at once.
    let applied = cp
        .set_route(
            "orders",
            None,
            Weight::from_percent(50.0),
            "api:alice",
            "more traffic",
        )
        .await
        .unwrap();
    assert_eq!(applied.events.len(), 1);
    assert_eq!(applied.events[0].kind, "route.set");
    assert_eq!(applied.events[0].actor, "api:alice");
    assert_eq!(applied.events[0].data["weight"]["from"], 10.0);
    assert_eq!(applied.events[0].data["weight"]["to"], 50.0);
    assert_eq!(
        route_state(&cp, "orders"),
        (Stage::Canary, Weight::from_percent(50.0).unwrap())
    );
    assert_eq!(
        cp.snapshot().version,
        Some(1),
        "an override is not a new version"
    );

    // A restart with the same file keeps the override.
    cp.gateway()
        .shutdown(std::time::Duration::from_secs(1))
        .await;
    drop(cp);
    let cp = start(dir.path()).await;
    assert_eq!(cp.snapshot().version, Some(1));
    assert_eq!(
        route_state(&cp, "orders").1,
        Weight::from_percent(50.0).unwrap()
    );

    // Rollback of everything that uses modern: legacy, weight 0, for the next request.
    let applied = cp.rollback(None, "cli", "modern is failing").await.unwrap();
    let routes: Vec<_> = applied
        .events
        .iter()
        .map(|e| e.route.clone().unwrap())
        .collect();
    assert_eq!(routes, ["orders", "users"]);
    assert!(applied.events.iter().all(|e| e.kind == "route.rollback"));
    assert_eq!(route_state(&cp, "orders"), (Stage::Legacy, Weight::ZERO));
    assert_eq!(route_state(&cp, "users"), (Stage::Legacy, Weight::ZERO));

    // The file changes users' stage: the file wins for users, the override of orders stays.
    let edited = FILE.replace("stage = \"modern\"", "stage = \"retired\"");
    let applied = cp
        .apply_text(&edited, "cli", "retire users", Some(1))
        .await
        .unwrap();
    assert_eq!(applied.version, Some(2));
    assert_eq!(applied.events[0].kind, "config.applied");
    assert_eq!(applied.events[0].config_version, Some(2));
    assert_eq!(
        applied.events[0].data["overrides_dropped"],
        serde_json::json!(["users"])
    );
    assert_eq!(route_state(&cp, "users").0, Stage::Retired);
    assert_eq!(route_state(&cp, "orders").0, Stage::Legacy);
    let v2 = cp.store().version(2).await.unwrap().unwrap();
    // What every node shares: the file without its node-local sections.
    assert_eq!(v2.text, ficus_config::fleet_text(&edited).unwrap());
    assert!(!v2.text.contains("[[listener]]") && !v2.text.contains("[access_log]"));
    assert_eq!(v2.author, "cli");

    // A change based on an old version is refused and changes nothing.
    let err = cp
        .apply_text(FILE, "cli", "stale", Some(1))
        .await
        .unwrap_err();
    assert!(matches!(err, ControlError::Conflict(_)), "{err}");
    assert_eq!(cp.snapshot().version, Some(2));

    // An invalid file is refused with its diagnostics.
    let err = cp
        .apply_text("[[route]]\nname = 1\n", "cli", "bad", None)
        .await
        .unwrap_err();
    assert!(matches!(err, ControlError::Invalid(_)), "{err}");

    // An override the route cannot take is refused.
    let err = cp
        .set_route("default", Some(Stage::Canary), None, "cli", "nope")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("has no modern upstream"), "{err}");

    // Revert to version 1: a new version 3 with version 1's text, overrides cleared.
    let applied = cp.revert(1, "cli", "back to v1", None).await.unwrap();
    assert_eq!(applied.version, Some(3));
    assert_eq!(applied.events[0].kind, "config.reverted");
    assert_eq!(applied.events[0].data["reverted_to"], 1);
    assert_eq!(
        route_state(&cp, "orders"),
        (Stage::Canary, Weight::from_percent(10.0).unwrap())
    );
    assert_eq!(route_state(&cp, "users").0, Stage::Modern);
    assert!(cp.snapshot().overrides.is_empty());
    assert!(matches!(
        cp.revert(99, "cli", "x", None).await,
        Err(ControlError::NotFound(_))
    ));

    // The audit log holds all of it, in order.
    let events = cp
        .store()
        .events(EventFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let kinds: Vec<_> = events.iter().rev().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "config.applied",
            "route.set",
            "route.rollback",
            "route.rollback",
            "config.applied",
            "config.reverted"
        ]
    );
}

#[tokio::test]
async fn a_file_changed_while_stopped_is_applied_at_startup_and_drift_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ficus.toml");
    std::fs::write(&file, FILE).unwrap();
    let cp = start(dir.path()).await;
    cp.set_route("orders", Some(Stage::Legacy), None, "cli", "hold")
        .await
        .unwrap();
    assert!(cp.file_drift().is_none());
    std::fs::write(&file, FILE.replace("weight = 10", "weight = 20")).unwrap();
    let drift = cp.file_drift().unwrap();
    assert!(
        drift.contains("differs from the running version 1"),
        "{drift}"
    );

    // SIGHUP: the file reload applies it; the file changed orders, so its override goes.
    let applied = cp.reload_file("file-reload").await.unwrap();
    assert_eq!(applied.version, Some(2));
    assert_eq!(
        route_state(&cp, "orders"),
        (Stage::Canary, Weight::from_percent(20.0).unwrap())
    );
    assert!(cp.file_drift().is_none());
    // Reloading an unchanged file records nothing.
    assert!(cp
        .reload_file("file-reload")
        .await
        .unwrap()
        .events
        .is_empty());

    cp.gateway()
        .shutdown(std::time::Duration::from_secs(1))
        .await;
    drop(cp);
    std::fs::write(&file, FILE.replace("weight = 10", "weight = 30")).unwrap();
    let cp = start(dir.path()).await;
    assert_eq!(cp.snapshot().version, Some(3));
    let last = cp
        .store()
        .events(EventFilter {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (last[0].actor.as_str(), last[0].kind.as_str()),
        ("startup", "config.applied")
    );
    assert_eq!(
        route_state(&cp, "orders").1,
        Weight::from_percent(30.0).unwrap()
    );
}
