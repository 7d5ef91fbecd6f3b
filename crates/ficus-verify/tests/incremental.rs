//! Incremental and resumable verify on real databases: `--changed-since` over a timestamp
//! and an integer watermark (PostgreSQL to PostgreSQL, MariaDB to PostgreSQL) finds the
//! rows written since in both directions and reads far fewer rows than a full run; a run
//! interrupted after some segments resumes from its checkpoint without scanning them again
//! and ends with the uninterrupted run's report; bad watermarks and checkpoints of another
//! plan are refused before anything is scanned.
mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use ficus_verify::{
    verify, verify_with, Checkpoint, DiffKind, Job, Mode, Outcome, Overlap, Phase, Report,
    RunOptions, Side, VerifyError, Watermark, WatermarkValue,
};
use support::*;

fn ts(s: &str) -> WatermarkValue {
    s.parse().unwrap()
}

fn incremental(job: &Job, column: &str, since: Option<WatermarkValue>) -> Job {
    let mut j = job.clone();
    j.watermark = Some(Watermark {
        column: column.into(),
        since,
        overlap: None,
    });
    j
}

/// Rows read from the databases by a run: the rows of its checksums on both sides, the
/// rows downloaded and the rows looked up.
fn rows_read(r: &Report) -> u64 {
    r.source.rows + r.target.rows + r.summary.rows_downloaded + r.summary.rows_looked_up
}

const BIG: i64 = 200_000;

fn big_columns() -> Vec<Col> {
    vec![
        col("id", "bigint NOT NULL", "bigint NOT NULL", ""),
        col("name", "text", "text", ""),
        col("amount", "numeric(12,2)", "decimal(12,2)", ""),
        col(
            "updated_at",
            "timestamptz NOT NULL",
            "datetime(6) NOT NULL",
            "",
        ),
    ]
}

async fn big_table(url: &str, prefix: &str) -> Table {
    let t = Table::new(url, prefix, &big_columns(), &["id"], &[]).await;
    t.run(&[
        &format!(
            "INSERT INTO {{t}} SELECT g, 'name-' || g, g * 1.5, \
             TIMESTAMPTZ '2026-01-01 00:00:00+00' + g * INTERVAL '1 second' \
             FROM generate_series(1, {BIG}) g"
        ),
        "CREATE INDEX ON {t} (updated_at)",
        "ANALYZE {t}",
    ])
    .await;
    t
}

#[tokio::test]
async fn changed_since_finds_the_dropped_dual_writes_reading_few_rows() {
    let Some(pg) = postgres() else { return };
    let src = big_table(&pg, "inc_src").await;
    let tgt = big_table(&pg, "inc_tgt").await;
    // 1,000 rows updated on the source, each with a newer updated_at; the dual-write to
    // the target drops 1 % of them (ids 20000, 40000, ..., 200000).
    let update = "UPDATE {t} SET amount = amount + 1, updated_at = \
                  TIMESTAMPTZ '2026-12-07 10:00:00+00' + (id / 200) * INTERVAL '1 millisecond' \
                  WHERE id % 200 = 0";
    src.run(&[update]).await;
    tgt.run(&[&format!("{update} AND id % 20000 <> 0")]).await;
    let dropped: BTreeSet<(DiffKind, String, Vec<String>)> = (1..=10)
        .map(|k| {
            (
                DiffKind::Changed,
                (k * 20_000).to_string(),
                vec!["amount".to_string(), "updated_at".to_string()],
            )
        })
        .collect();
    let job = Job::new(src.endpoint(), tgt.endpoint(), vec!["id".into()]);

    let inc = run(&incremental(
        &job,
        "updated_at",
        Some(ts("2026-12-07T10:00:00Z")),
    ))
    .await;
    assert_eq!(inc.mode, Mode::Incremental);
    assert_eq!(found(&inc), dropped, "{:#?}", inc.differences);
    assert_eq!(
        (inc.summary.missing, inc.summary.extra, inc.summary.changed),
        (0, 0, 10)
    );
    assert_eq!(inc.outcome, Outcome::Different);
    // Only the rows written since (minus the default overlap of 60 s) were compared.
    assert_eq!((inc.source.rows, inc.target.rows), (1_000, 990));
    let w = inc.watermark.as_ref().expect("a watermark report");
    assert_eq!(w.since, Some(ts("2026-12-07T10:00:00Z")));
    assert_eq!(w.overlap, Overlap::Time(std::time::Duration::from_secs(60)));
    assert_eq!(w.bound, Some(ts("2026-12-07T09:59:00Z")));
    assert_eq!(w.source_high, Some(ts("2026-12-07T10:00:01Z")));
    assert_eq!(w.target_high, Some(ts("2026-12-07T10:00:00.999Z")));
    // The next run starts at the lower of the two: the target's writes lag.
    assert_eq!(w.next, Some(ts("2026-12-07T10:00:00.999Z")));

    let full = run(&incremental(&job, "updated_at", None)).await;
    assert_eq!(full.mode, Mode::Full);
    assert_eq!(found(&full), dropped);
    assert_eq!(
        (full.source.rows, full.target.rows),
        (BIG as u64, BIG as u64)
    );
    assert_eq!(full.watermark.as_ref().unwrap().next, w.next);
    eprintln!(
        "incremental read {} rows ({:?}), full {}",
        rows_read(&inc),
        inc.summary,
        rows_read(&full)
    );
    assert!(
        rows_read(&inc) * 100 < rows_read(&full),
        "incremental read {} rows, full {}",
        rows_read(&inc),
        rows_read(&full)
    );

    // Once the dropped writes are replayed, the same window is equal.
    tgt.run(&[&format!("{update} AND id % 20000 = 0")]).await;
    let inc = run(&incremental(
        &job,
        "updated_at",
        Some(ts("2026-12-07T10:00:00Z")),
    ))
    .await;
    assert_eq!(inc.outcome, Outcome::Equal, "{:#?}", inc.differences);
    assert_eq!(
        inc.watermark.unwrap().next,
        Some(ts("2026-12-07T10:00:01Z"))
    );
    src.drop_table().await;
    tgt.drop_table().await;
}

fn versioned_columns() -> Vec<Col> {
    vec![
        col(
            "id",
            "bigint NOT NULL",
            "bigint NOT NULL",
            "INTEGER NOT NULL",
        ),
        col("name", "text", "varchar(60)", "TEXT"),
        col(
            "version",
            "bigint NOT NULL",
            "bigint NOT NULL",
            "INTEGER NOT NULL",
        ),
        col(
            "changed_at",
            "timestamptz NOT NULL",
            "datetime(6) NOT NULL",
            "DATETIME NOT NULL",
        ),
    ]
}

fn versioned_row(i: i64) -> Vec<V> {
    vec![
        V::Int(i),
        V::Text(format!("name-{i}")),
        V::Int(i),
        V::Ts(format!(
            "2026-01-01 {:02}:{:02}:{:02}.000000",
            i / 3600,
            i / 60 % 60,
            i % 60
        )),
    ]
}

/// Writes after version 3000 / 2026-12-07 10:00, each as the dual-write did it (or not) on
/// the target. Returns what an incremental run must find.
async fn plant_versions(src: &Table, tgt: &Table) -> BTreeSet<(DiffKind, String, Vec<String>)> {
    let at = |n: i64| {
        format!(
            "'2026-12-07 10:00:{n:02}{}'",
            if src.eng == Eng::Pg { "+00" } else { "" }
        )
    };
    let at_t = |n: i64| format!("'2026-12-07 10:00:{n:02}+00'");
    let up = |v: i64, name: &str, id: i64, when: String| {
        format!(
            "UPDATE {{t}} SET version = {v}, name = '{name}', changed_at = {when} WHERE id = {id}"
        )
    };
    src.run(&[
        &up(3001, "v2-10", 10, at(1)),
        &up(3002, "v2-20", 20, at(2)),
        &up(3003, "v2-30", 30, at(3)),
        &up(3004, "v2-40", 40, at(4)),
        // A delete on the source: no watermark is left to see it by.
        "DELETE FROM {t} WHERE id = 60",
    ])
    .await;
    tgt.run(&[
        // Written to both: equal.
        &up(3001, "v2-10", 10, at_t(1)),
        // id 20: the dual-write was dropped (the target keeps version 20).
        // id 30: written with the wrong value.
        &up(3003, "v2-30-wrong", 30, at_t(3)),
        // id 40: lost on the target altogether.
        "DELETE FROM {t} WHERE id = 40",
        // Written on the target only: a new row, and a change to an old one.
        "INSERT INTO {t} (id, name, version, changed_at) \
         VALUES (99999, 'rogue', 3005, '2026-12-07 10:00:05+00')",
        &up(3006, "rogue-50", 50, at_t(6)),
    ])
    .await;
    expect(&[
        (DiffKind::Changed, "20", &["changed_at", "name", "version"]),
        (DiffKind::Changed, "30", &["name"]),
        (DiffKind::Missing, "40", &[]),
        (DiffKind::Changed, "50", &["changed_at", "name", "version"]),
        (DiffKind::Extra, "99999", &[]),
    ])
}

#[tokio::test]
async fn integer_and_timestamp_watermarks_from_mariadb_to_postgres() {
    let (Some(pg), Some(my)) = (postgres(), mysql()) else {
        return;
    };
    let rows: Vec<Vec<V>> = (1..=3_000).map(versioned_row).collect();
    let src = Table::new(&my, "ver_src", &versioned_columns(), &["id"], &rows).await;
    let tgt = Table::new(&pg, "ver_tgt", &versioned_columns(), &["id"], &rows).await;
    let expected = plant_versions(&src, &tgt).await;
    let base = job(&src, &tgt, &["id"]);

    // Integer: every version after 3000, in both directions.
    let inc = run(&incremental(
        &base,
        "version",
        Some(WatermarkValue::Integer(3001)),
    ))
    .await;
    assert_eq!(inc.mode, Mode::Incremental);
    assert_eq!(found(&inc), expected, "{:#?}", inc.differences);
    let w = inc.watermark.as_ref().unwrap();
    assert_eq!(w.kind, "integer");
    assert_eq!(w.overlap, Overlap::Count(0));
    assert_eq!(w.bound, Some(WatermarkValue::Integer(3001)));
    assert_eq!(w.source_high, Some(WatermarkValue::Integer(3004)));
    assert_eq!(w.target_high, Some(WatermarkValue::Integer(3006)));
    assert_eq!(w.next, Some(WatermarkValue::Integer(3004)));
    assert_eq!((inc.source.rows, inc.target.rows), (4, 4));

    // The same window by time, with MariaDB's datetime(6) against timestamptz.
    let mut by_time = incremental(&base, "changed_at", Some(ts("2026-12-07T10:00:00Z")));
    by_time.watermark.as_mut().unwrap().overlap = Some(Overlap::Count(0));
    let inc = run(&by_time).await;
    assert_eq!(found(&inc), expected, "{:#?}", inc.differences);
    assert_eq!(
        inc.watermark.as_ref().unwrap().next,
        Some(ts("2026-12-07T10:00:04Z"))
    );

    // A full run sees the source's delete too: the target still has id 60.
    let full = run(&incremental(&base, "version", None)).await;
    let mut all = expected.clone();
    all.insert((DiffKind::Extra, "60".into(), vec![]));
    assert_eq!(found(&full), all);
    assert_eq!(full.mode, Mode::Full);
    assert_eq!(full.source.rows, 2_999);
    src.drop_table().await;
    tgt.drop_table().await;
}

/// Runs a job expected to fail, and checks that nothing was scanned.
async fn refused(job: &Job, options: RunOptions<'_>) -> VerifyError {
    let mut phases = Vec::new();
    let e = verify_with(job, options, |p| phases.push(p.phase))
        .await
        .expect_err("verify must fail");
    assert!(
        !phases.contains(&Phase::Scanning),
        "{e}: scanned anyway ({phases:?})"
    );
    e
}

#[tokio::test]
async fn bad_watermarks_and_foreign_checkpoints_are_refused_before_scanning() {
    let Some(pg) = postgres() else { return };
    let cols = vec![
        col("id", "bigint NOT NULL", "", ""),
        col("note", "text", "", ""),
        col("flag", "boolean", "", ""),
        col("version", "bigint", "", ""),
        col("at", "timestamptz", "", ""),
    ];
    let rows: Vec<Vec<V>> = (1..=2_000)
        .map(|i| {
            vec![
                V::Int(i),
                V::Text(format!("n{i}")),
                V::Bool(i % 2 == 0),
                V::Int(i),
                V::Ts("2026-01-01 00:00:00".into()),
            ]
        })
        .collect();
    let src = Table::new(&pg, "bad_src", &cols, &["id"], &rows).await;
    let tgt = Table::new(&pg, "bad_tgt", &cols, &["id"], &rows).await;
    let base = job(&src, &tgt, &["id"]);
    let with = |column: &str, since: Option<WatermarkValue>| incremental(&base, column, since);

    let e = refused(&with("updated", None), RunOptions::default()).await;
    assert!(
        matches!(&e, VerifyError::ColumnNotFound { side: Side::Source, column, role: "--watermark", .. } if column == "updated"),
        "{e}"
    );
    assert!(e.to_string().contains("version"), "lists the columns: {e}");

    for column in ["note", "flag"] {
        let e = refused(&with(column, None), RunOptions::default()).await;
        assert!(matches!(e, VerifyError::BadWatermark { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains(column)
                && text.contains("cannot order writes")
                && text.contains("nothing was scanned"),
            "{text}"
        );
    }

    let e = refused(
        &with("version", Some(ts("2026-12-07T10:00:00Z"))),
        RunOptions::default(),
    )
    .await
    .to_string();
    assert!(
        e.contains("is a timestamp") && e.contains("an integer"),
        "{e}"
    );
    let mut j = with("at", Some(ts("2026-12-07T10:00:00Z")));
    j.watermark.as_mut().unwrap().overlap = Some(Overlap::Count(10));
    let e = refused(&j, RunOptions::default()).await.to_string();
    assert!(e.contains("give a duration"), "{e}");

    // A checkpoint of this plan, then the same checkpoint offered to another plan.
    let saved: Arc<Mutex<Option<Checkpoint>>> = Arc::default();
    let keep = saved.clone();
    let mut sink = move |cp: &Checkpoint| {
        *keep.lock().unwrap() = Some(cp.clone());
        Ok(())
    };
    verify_with(
        &base,
        RunOptions {
            on_checkpoint: Some(&mut sink),
            ..RunOptions::default()
        },
        |_| {},
    )
    .await
    .unwrap();
    let cp = saved.lock().unwrap().clone().expect("a checkpoint");
    assert_eq!(cp.segments_done(), 5);
    let mut other = base.clone();
    other.exclude = vec!["note".into()];
    let e = refused(
        &other,
        RunOptions {
            resume: Some(cp.clone()),
            ..RunOptions::default()
        },
    )
    .await;
    assert!(matches!(e, VerifyError::BadCheckpoint(_)), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("another verification") && text.contains("columns: checkpoint"),
        "{text}"
    );
    // The scheduler's way: start over instead.
    let r = verify_with(
        &other,
        RunOptions {
            resume: Some(cp.clone()),
            restart_other_plan: true,
            ..RunOptions::default()
        },
        |_| {},
    )
    .await
    .unwrap();
    assert!(r.resumed.is_none() && r.summary.segments == 5);
    // A damaged one.
    let mut bad = cp.clone();
    bad.segments.remove(1);
    let e = refused(
        &base,
        RunOptions {
            resume: Some(bad),
            ..RunOptions::default()
        },
    )
    .await
    .to_string();
    assert!(e.contains("do not cover the key space"), "{e}");
    src.drop_table().await;
    tgt.drop_table().await;
}

/// The differences as comparable values, whatever their order in the report.
fn diff_set(r: &Report) -> BTreeSet<String> {
    r.differences
        .iter()
        .map(|d| serde_json::to_string(d).unwrap())
        .collect()
}

#[tokio::test]
async fn an_interrupted_run_resumes_without_rescanning_and_reports_the_same() {
    let Some(pg) = postgres() else { return };
    // A text key (not byte-ordered in PostgreSQL's default collation): differences wait for
    // confirming lookups, so the checkpoint carries pending keys too.
    let cols = vec![
        col("code", "text NOT NULL", "", ""),
        col("n", "bigint", "", ""),
        col("note", "text", "", ""),
    ];
    let rows: Vec<Vec<V>> = (0..20_000)
        .map(|i| {
            vec![
                V::Text(format!("k{i:06}")),
                V::Int(i),
                V::Text(format!("note {i}")),
            ]
        })
        .collect();
    let src = Table::new(&pg, "res_src", &cols, &["code"], &rows).await;
    let tgt = Table::new(&pg, "res_tgt", &cols, &["code"], &rows).await;
    tgt.run(&[
        "DELETE FROM {t} WHERE code IN ('k000100', 'k009000', 'k019990')",
        "UPDATE {t} SET note = 'changed' WHERE code IN ('k000500', 'k012345')",
        "INSERT INTO {t} VALUES ('k015000x', 1, 'extra')",
    ])
    .await;
    let job = job(&src, &tgt, &["code"]);
    let whole = run(&job).await;
    assert_eq!(
        (
            whole.summary.missing,
            whole.summary.extra,
            whole.summary.changed
        ),
        (3, 1, 2)
    );
    assert_eq!(whole.summary.segments, 50);

    // Interrupted after the tenth finished segment (as a crash would: the sink's last
    // checkpoint is what survives).
    let saved: Arc<Mutex<Vec<Checkpoint>>> = Arc::default();
    let keep = saved.clone();
    let mut sink = move |cp: &Checkpoint| {
        let mut v = keep.lock().unwrap();
        v.push(cp.clone());
        if v.len() == 10 {
            Err("interrupted by the test".to_string())
        } else {
            Ok(())
        }
    };
    let e = verify_with(
        &job,
        RunOptions {
            on_checkpoint: Some(&mut sink),
            ..RunOptions::default()
        },
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("interrupted by the test"), "{e}");
    let cp = saved.lock().unwrap().last().cloned().unwrap();
    assert_eq!(cp.segments_done(), 10);
    let done_before: BTreeSet<usize> = cp
        .segments
        .iter()
        .enumerate()
        .filter(|(_, s)| s.done)
        .map(|(i, _)| i)
        .collect();
    // Through JSON, as the file and the store keep it.
    let cp: Checkpoint = serde_json::from_str(&serde_json::to_string(&cp).unwrap()).unwrap();

    let finished_now: Arc<Mutex<BTreeSet<usize>>> = Arc::default();
    let seen = finished_now.clone();
    let before = done_before.clone();
    let mut watch = move |c: &Checkpoint| {
        let mut s = seen.lock().unwrap();
        for (i, seg) in c.segments.iter().enumerate() {
            if seg.done && !before.contains(&i) {
                s.insert(i);
            }
        }
        Ok(())
    };
    let resumed = verify_with(
        &job,
        RunOptions {
            resume: Some(cp.clone()),
            on_checkpoint: Some(&mut watch),
            ..RunOptions::default()
        },
        |_| {},
    )
    .await
    .unwrap();
    let r = resumed.resumed.as_ref().expect("resumed");
    assert_eq!(r.segments, 10);
    assert_eq!(r.checksums, cp.totals.checksums);
    // Every segment not finished before was scanned now, and none of the finished ones.
    let now = finished_now.lock().unwrap().clone();
    assert_eq!(now.len() as u64, whole.summary.segments - 10);
    assert!(now.is_disjoint(&done_before));
    // The same report as the uninterrupted run's.
    assert_eq!(resumed.outcome, whole.outcome);
    assert_eq!(resumed.source.rows, whole.source.rows);
    assert_eq!(resumed.target.rows, whole.target.rows);
    let (a, b) = (&resumed.summary, &whole.summary);
    assert_eq!(
        (
            a.missing,
            a.extra,
            a.changed,
            a.segments,
            a.segments_differing,
            a.checksums,
            a.rows_downloaded
        ),
        (
            b.missing,
            b.extra,
            b.changed,
            b.segments,
            b.segments_differing,
            b.checksums,
            b.rows_downloaded
        )
    );
    assert_eq!(diff_set(&resumed), diff_set(&whole));
    src.drop_table().await;
    tgt.drop_table().await;
}

#[tokio::test]
async fn plain_verify_still_works_without_options() {
    let Some(pg) = postgres() else { return };
    let cols = vec![col("id", "int NOT NULL", "", ""), col("v", "text", "", "")];
    let rows: Vec<Vec<V>> = (0..100)
        .map(|i| vec![V::Int(i), V::Text(i.to_string())])
        .collect();
    let src = Table::new(&pg, "plain_src", &cols, &["id"], &rows).await;
    let tgt = Table::new(&pg, "plain_tgt", &cols, &["id"], &rows).await;
    let r = verify(&job(&src, &tgt, &["id"]), |_| {}).await.unwrap();
    assert_eq!(r.outcome, Outcome::Equal);
    assert_eq!(r.mode, Mode::Full);
    assert!(r.watermark.is_none() && r.resumed.is_none());
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["mode"], "full");
    assert!(json.get("watermark").is_none());
    src.drop_table().await;
    tgt.drop_table().await;
}
