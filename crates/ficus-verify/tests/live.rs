//! Live writes: `recheck` looks the differences up again after a delay and separates the
//! ones that resolved (lag) from the ones that persisted (divergence).
mod support;

use std::time::Duration;

use ficus_verify::{verify, Outcome, Phase, RecheckStatus};
use support::*;

fn rows() -> Vec<Vec<V>> {
    (0..1_000)
        .map(|i| vec![V::Int(i), V::Text(format!("v{i}"))])
        .collect()
}

fn cols() -> Vec<Col> {
    vec![
        col("id", "int NOT NULL", "int NOT NULL", ""),
        col("v", "text", "text", ""),
    ]
}

/// Runs `job`, applying `fixes` to the target as soon as the re-check delay starts.
async fn verify_fixing(
    job: &ficus_verify::Job,
    tgt: &Table,
    fixes: &'static [&'static str],
) -> ficus_verify::Report {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let url = tgt.url.clone();
    let name = tgt.q(&tgt.name);
    let fixer = tokio::spawn(async move {
        if rx.recv().await.is_some() {
            let stmts: Vec<String> = fixes.iter().map(|s| s.replace("{t}", &name)).collect();
            exec(&url, &stmts).await;
        }
    });
    let report = verify(job, move |p| {
        if p.phase == Phase::Rechecking {
            let _ = tx.send(());
        }
    })
    .await
    .unwrap();
    fixer.await.unwrap();
    report
}

#[tokio::test]
async fn recheck_separates_lag_from_divergence() {
    let (Some(pg), Some(my)) = (postgres(), mysql()) else {
        return;
    };
    let src = Table::new(&pg, "live_src", &cols(), &["id"], &rows()).await;
    let tgt = Table::new(&my, "live_tgt", &cols(), &["id"], &rows()).await;
    tgt.run(&[
        "UPDATE {t} SET v = 'stale' WHERE id IN (10, 20, 30)",
        "DELETE FROM {t} WHERE id = 40",
    ])
    .await;
    let mut job = job(&src, &tgt, &["id"]);
    job.recheck = Some(Duration::from_millis(1_500));

    // The replication catches up on 10, 20 and 40 during the delay; 30 diverged.
    let report = verify_fixing(
        &job,
        &tgt,
        &[
            "UPDATE {t} SET v = CONCAT('v', id) WHERE id IN (10, 20)",
            "INSERT INTO {t} VALUES (40, 'v40')",
        ],
    )
    .await;
    let r = report.recheck.clone().expect("recheck ran");
    assert_eq!(
        (r.rechecked, r.persisted, r.resolved, r.unchecked),
        (4, 1, 3, 0)
    );
    let status = |id: &str| {
        report
            .differences
            .iter()
            .find(|d| d.key["id"] == id)
            .unwrap()
            .status
    };
    assert_eq!(status("30"), Some(RecheckStatus::Persisted));
    assert_eq!(status("40"), Some(RecheckStatus::Resolved));
    assert_eq!(report.outcome, Outcome::Different);
    assert_eq!(report.exit_code(), 1);

    // Only lag: every difference resolves, the stores agree.
    let report = verify_fixing(&job, &tgt, &["UPDATE {t} SET v = 'v30' WHERE id = 30"]).await;
    assert_eq!(report.recheck.as_ref().unwrap().resolved, 1);
    assert_eq!(report.outcome, Outcome::Lagging);
    assert_eq!(report.exit_code(), 0);
    src.drop_table().await;
    tgt.drop_table().await;
}
