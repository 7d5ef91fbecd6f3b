//! Replay runs on both backends: recorded with their report, listed newest first, read back
//! equal; bad runs refused with nothing stored.

mod support;

use ficus_store::*;
use serde_json::json;
use support::*;

both_backends!(replay_runs_record_list_and_read_back);

fn sample_run(target: &str, real: i64) -> NewReplayRun {
    NewReplayRun {
        actor: "cli:tester".into(),
        file: "orders.ficusrec".into(),
        target: target.into(),
        reference: "recording".into(),
        sent: 100,
        real,
        report: json!({"sent": 100, "comparison": {"routes": [{"route": "orders",
            "endpoints": [{"endpoint": "GET /item/{id}", "fields": [{"path": "$.price", "verdict": "real"}]}]}]}}),
    }
}

async fn replay_runs_record_list_and_read_back(db: Db) {
    let store = db.open().await;
    assert!(store.replay_runs(10).await.unwrap().is_empty());
    let a = store
        .record_replay(sample_run("http://a:1", 1))
        .await
        .unwrap();
    let b = store
        .record_replay(sample_run("http://b:2", 0))
        .await
        .unwrap();
    assert!(b.id > a.id);
    let list = store.replay_runs(10).await.unwrap();
    assert_eq!(list.iter().map(|r| r.id).collect::<Vec<_>>(), [b.id, a.id]);
    assert_eq!(store.replay_run(a.id).await.unwrap().unwrap(), a);
    assert_eq!(a.report["comparison"]["routes"][0]["route"], "orders");
    assert!(store.replay_run(a.id + 100).await.unwrap().is_none());
    for bad in [
        NewReplayRun {
            reference: "guess".into(),
            ..sample_run("http://c:3", 0)
        },
        NewReplayRun {
            target: " ".into(),
            ..sample_run("http://c:3", 0)
        },
        NewReplayRun {
            sent: -1,
            ..sample_run("http://c:3", 0)
        },
    ] {
        assert!(matches!(
            store.record_replay(bad).await,
            Err(StoreError::Invalid(_))
        ));
    }
    assert_eq!(store.replay_runs(10).await.unwrap().len(), 2);
    store.close().await;
}
