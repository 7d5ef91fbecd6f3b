//! Incremental and resumable `[[verify]]` runs in the store, on SQLite and PostgreSQL: what
//! each run covered (mode, bound, watermark, fingerprint), the freshness question "the
//! latest equal run of job J (full, or incremental after it) covering the writes up to T",
//! and the checkpoints of runs in progress, removed when a run finishes.

mod support;

use std::time::Duration;

use ficus_store::*;
use serde_json::json;
use support::*;

both_backends!(
    runs_record_what_they_covered,
    freshness_follows_the_chain_of_equal_runs,
    checkpoints_are_saved_resumed_and_removed,
    bad_scopes_and_checkpoints_are_refused,
);

fn new_run(job: &str, outcome: &str, at: i64) -> NewVerifyRun {
    NewVerifyRun {
        job: job.into(),
        route: None,
        source_table: "orders".into(),
        target_table: "orders".into(),
        started_at: at,
        finished_at: at + 100,
        outcome: outcome.into(),
        rows_compared: 10,
        missing: 0,
        extra: 0,
        changed: if outcome == "different" { 1 } else { 0 },
        error: (outcome == "error").then(|| "boom".to_string()),
        report: json!({}),
    }
}

fn full(watermark: &str) -> VerifyRunScope {
    VerifyRunScope {
        mode: "full".into(),
        fingerprint: Some("fp1".into()),
        bound: None,
        watermark: Some(watermark.into()),
    }
}

fn incremental(bound: &str, watermark: &str) -> VerifyRunScope {
    VerifyRunScope {
        mode: "incremental".into(),
        fingerprint: Some("fp1".into()),
        bound: Some(bound.into()),
        watermark: Some(watermark.into()),
    }
}

async fn runs_record_what_they_covered(db: Db) {
    let store = db.open().await;
    // The old way: a full run without a watermark.
    let plain = store
        .record_verify(new_run("j", "equal", 1_000))
        .await
        .unwrap();
    assert_eq!(plain.mode, "full");
    assert_eq!(
        (plain.fingerprint, plain.bound, plain.watermark),
        (None, None, None)
    );
    let inc = store
        .record_verify_run(new_run("j", "equal", 2_000), incremental("100", "250"))
        .await
        .unwrap();
    assert_eq!(inc.mode, "incremental");
    assert_eq!(inc.bound.as_deref(), Some("100"));
    let listed = store.verify_runs(Some("j"), 10).await.unwrap();
    assert_eq!(listed[0], inc);
    assert_eq!(listed[1].mode, "full");
    assert_eq!(store.latest_verify_runs().await.unwrap(), vec![inc.clone()]);
    // The latest full run that finished: errors do not count.
    store
        .record_verify_run(new_run("j", "error", 3_000), full("9"))
        .await
        .unwrap();
    assert_eq!(
        store
            .latest_full_verify_run("j")
            .await
            .unwrap()
            .map(|r| r.id),
        Some(plain.id)
    );
    assert_eq!(store.latest_full_verify_run("other").await.unwrap(), None);
    store.close().await;
    let store = db.open().await;
    assert_eq!(store.verify_runs(Some("j"), 10).await.unwrap()[1], inc);
}

async fn freshness_follows_the_chain_of_equal_runs(db: Db) {
    let store = db.open().await;
    assert_eq!(
        store.latest_equal_verify_run("j", None).await.unwrap(),
        None
    );
    // A full run that found differences proves nothing.
    store
        .record_verify_run(new_run("j", "different", 1_000), full("50"))
        .await
        .unwrap();
    assert_eq!(
        store.latest_equal_verify_run("j", None).await.unwrap(),
        None
    );

    let f = store
        .record_verify_run(new_run("j", "equal", 2_000), full("100"))
        .await
        .unwrap();
    let fresh = store
        .latest_equal_verify_run("j", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fresh.run, f);
    assert_eq!((fresh.full_run_id, fresh.covers_until), (f.id, 2_000));
    assert_eq!(fresh.contradicted_by, None);

    // Incremental runs continue it; an error run changes nothing.
    let i1 = store
        .record_verify_run(new_run("j", "equal", 3_000), incremental("100", "120"))
        .await
        .unwrap();
    store
        .record_verify_run(new_run("j", "error", 3_500), incremental("120", "120"))
        .await
        .unwrap();
    let fresh = store
        .latest_equal_verify_run("j", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((fresh.run.id, fresh.full_run_id), (i1.id, f.id));
    assert_eq!(fresh.covers_until, 3_000);
    assert!(fresh.fresh(3_000 + 60_000, Duration::from_secs(61)));
    assert!(!fresh.fresh(3_000 + 60_000, Duration::from_secs(59)));
    // "Covering the writes up to T".
    assert!(store
        .latest_equal_verify_run("j", Some(3_000))
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store
            .latest_equal_verify_run("j", Some(3_001))
            .await
            .unwrap(),
        None
    );
    // An incremental run of another fingerprint does not continue the chain.
    let mut other = incremental("120", "130");
    other.fingerprint = Some("fp2".into());
    store
        .record_verify_run(new_run("j", "equal", 4_000), other)
        .await
        .unwrap();
    assert_eq!(
        store
            .latest_equal_verify_run("j", None)
            .await
            .unwrap()
            .unwrap()
            .run
            .id,
        i1.id
    );

    // A later run with differences contradicts it.
    let d = store
        .record_verify_run(new_run("j", "different", 5_000), incremental("120", "140"))
        .await
        .unwrap();
    let fresh = store
        .latest_equal_verify_run("j", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fresh.run.id, i1.id);
    assert_eq!(fresh.contradicted_by, Some(d.id));
    assert!(!fresh.fresh(5_000, Duration::from_secs(3600)));
    // Fixed: an equal run from the same bound, fresh again.
    let i2 = store
        .record_verify_run(new_run("j", "equal", 6_000), incremental("120", "150"))
        .await
        .unwrap();
    let fresh = store
        .latest_equal_verify_run("j", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((fresh.run.id, fresh.contradicted_by), (i2.id, None));
    // A lagging run (every difference resolved when re-checked) continues the chain and
    // contradicts nothing: tables under live writes lag, then match.
    let lag = store
        .record_verify_run(new_run("j", "lagging", 7_000), incremental("150", "160"))
        .await
        .unwrap();
    let fresh = store
        .latest_equal_verify_run("j", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((fresh.run.id, fresh.contradicted_by), (lag.id, None));
    assert_eq!(fresh.covers_until, 7_000);

    // A new full run with differences ends the chain.
    store
        .record_verify_run(new_run("j", "different", 7_000), full("160"))
        .await
        .unwrap();
    assert_eq!(
        store.latest_equal_verify_run("j", None).await.unwrap(),
        None
    );
    // Jobs recorded without scopes (full, no fingerprint) work too.
    let plain = store
        .record_verify(new_run("k", "equal", 1_000))
        .await
        .unwrap();
    let fresh = store
        .latest_equal_verify_run("k", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fresh.run, plain);
}

fn progress(job: &str, segments: i64) -> VerifyProgress {
    VerifyProgress {
        job: job.into(),
        fingerprint: "fp1".into(),
        mode: "full".into(),
        started_at: 1_000,
        updated_at: 1_000 + segments,
        segments_done: segments,
        checkpoint: json!({"segments": segments}),
    }
}

async fn checkpoints_are_saved_resumed_and_removed(db: Db) {
    let store = db.open().await;
    assert_eq!(store.verify_progress("j").await.unwrap(), None);
    store.save_verify_progress(&progress("j", 1)).await.unwrap();
    store.save_verify_progress(&progress("j", 2)).await.unwrap();
    store.save_verify_progress(&progress("k", 7)).await.unwrap();
    assert_eq!(
        store.verify_progress("j").await.unwrap(),
        Some(progress("j", 2))
    );
    // It survives a restart.
    store.close().await;
    let store = db.open().await;
    assert_eq!(
        store.verify_progress("j").await.unwrap(),
        Some(progress("j", 2))
    );
    // A failed run keeps it (the next one resumes); a finished one removes it.
    store
        .record_verify_run(new_run("j", "error", 2_000), VerifyRunScope::default())
        .await
        .unwrap();
    assert!(store.verify_progress("j").await.unwrap().is_some());
    store
        .record_verify_run(new_run("j", "different", 3_000), VerifyRunScope::default())
        .await
        .unwrap();
    assert_eq!(store.verify_progress("j").await.unwrap(), None);
    assert!(store.verify_progress("k").await.unwrap().is_some());
    store.clear_verify_progress("k").await.unwrap();
    assert_eq!(store.verify_progress("k").await.unwrap(), None);
}

async fn bad_scopes_and_checkpoints_are_refused(db: Db) {
    let store = db.open().await;
    let refused = |scope: VerifyRunScope, needle: &'static str| {
        let store = store.clone();
        async move {
            let e = store
                .record_verify_run(new_run("j", "equal", 1_000), scope)
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::Invalid(_)), "{e}");
            assert!(e.to_string().contains(needle), "{needle} not in {e}");
        }
    };
    let mut s = full("1");
    s.mode = "partial".into();
    refused(s, "mode \"partial\" is unknown").await;
    let mut s = incremental("1", "2");
    s.bound = None;
    refused(s, "has no bound").await;
    let mut s = full("1");
    s.bound = Some("1".into());
    refused(s, "only incremental runs").await;
    let mut s = full("1");
    s.watermark = Some(String::new());
    refused(s, "watermark is empty").await;
    assert!(store.verify_runs(None, 10).await.unwrap().is_empty());

    let mut p = progress("j", 1);
    p.updated_at = 0;
    assert!(store.save_verify_progress(&p).await.is_err());
    let mut p = progress("", 1);
    p.job = String::new();
    assert!(store.save_verify_progress(&p).await.is_err());
    let mut p = progress("j", 1);
    p.mode = "x".into();
    assert!(store.save_verify_progress(&p).await.is_err());
    assert_eq!(store.verify_progress("j").await.unwrap(), None);
}
