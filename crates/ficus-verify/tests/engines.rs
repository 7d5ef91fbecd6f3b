//! Verification across real databases: PostgreSQL to PostgreSQL, PostgreSQL to MariaDB and
//! SQLite to PostgreSQL, equal data (no false positives, not even a differing segment) and
//! every kind of planted difference found exactly.
mod support;

use ficus_verify::{DiffKind, Outcome, RowHash};
use support::*;

const ROWS: i64 = 3_000;

/// The differences planted by `plant`, by engine-neutral description.
fn planted() -> std::collections::BTreeSet<(DiffKind, String, Vec<String>)> {
    let id = |i: i64| id_of(i).to_string();
    let items: Vec<(DiffKind, String, Vec<&str>)> = vec![
        (DiffKind::Missing, id(5), vec![]),
        (DiffKind::Extra, "999999999".into(), vec![]),
        (DiffKind::Changed, id(10), vec!["note"]), // NULL -> ''
        (DiffKind::Changed, id(21), vec!["note"]), // '' -> NULL
        (DiffKind::Changed, id(32), vec!["amount"]),
        (DiffKind::Changed, id(42), vec!["ratio"]),
        (DiffKind::Changed, id(52), vec!["flag"]),
        (DiffKind::Changed, id(62), vec!["created"]), // one microsecond
        (DiffKind::Changed, id(72), vec!["day"]),
        (DiffKind::Changed, id(82), vec!["uid"]),
        (DiffKind::Changed, id(92), vec!["payload"]),
        (DiffKind::Changed, id(102), vec!["doc"]),
        (DiffKind::Changed, id(112), vec!["name", "amount"]),
        (DiffKind::Changed, id(499), vec!["name"]), // a far key past a gap
    ];
    items
        .into_iter()
        .map(|(k, key, cols)| {
            let mut cols: Vec<String> = cols.into_iter().map(String::from).collect();
            cols.sort();
            (k, key, cols)
        })
        .collect()
}

/// Plants the differences of `planted` in `t` (PostgreSQL or MariaDB).
async fn plant(t: &Table) {
    let id = id_of;
    let extra = {
        let mut r = typed_row(77_777);
        r[0] = V::Int(999_999_999);
        let cols: Vec<String> = typed_columns().iter().map(|c| t.q(&c.name)).collect();
        let eng = t.eng;
        format!(
            "INSERT INTO {{t}} ({}) VALUES ({})",
            cols.join(", "),
            r.iter().map(|v| v.lit(eng)).collect::<Vec<_>>().join(", ")
        )
    };
    let pg = t.eng == Eng::Pg;
    let (us, day, bytes) = if pg {
        (
            "created + interval '1 microsecond'",
            "day + 1",
            "decode('ff', 'hex')",
        )
    } else {
        (
            "created + INTERVAL 1 MICROSECOND",
            "day + INTERVAL 1 DAY",
            "X'ff'",
        )
    };
    let stmts = vec![
        format!("DELETE FROM {{t}} WHERE id = {}", id(5)),
        extra,
        format!("UPDATE {{t}} SET note = '' WHERE id = {}", id(10)),
        format!("UPDATE {{t}} SET note = NULL WHERE id = {}", id(21)),
        format!(
            "UPDATE {{t}} SET amount = amount + 0.01 WHERE id = {}",
            id(32)
        ),
        format!(
            "UPDATE {{t}} SET ratio = ratio + 1e-9 WHERE id = {}",
            id(42)
        ),
        format!("UPDATE {{t}} SET flag = NOT flag WHERE id = {}", id(52)),
        format!("UPDATE {{t}} SET created = {us} WHERE id = {}", id(62)),
        format!("UPDATE {{t}} SET day = {day} WHERE id = {}", id(72)),
        format!(
            "UPDATE {{t}} SET uid = '00000000-0000-4000-8000-000000000000' WHERE id = {}",
            id(82)
        ),
        format!("UPDATE {{t}} SET payload = {bytes} WHERE id = {}", id(92)),
        format!(
            "UPDATE {{t}} SET doc = '{{\"i\": 0}}' WHERE id = {}",
            id(102)
        ),
        format!(
            "UPDATE {{t}} SET name = 'renamed', amount = -amount WHERE id = {}",
            id(112)
        ),
        format!("UPDATE {{t}} SET name = 'far' WHERE id = {}", id(499)),
    ];
    let refs: Vec<&str> = stmts.iter().map(String::as_str).collect();
    t.run(&refs).await;
}

async fn equal_then_planted(src_url: &str, tgt_url: &str, expect_hash: RowHash) {
    let cols = typed_columns();
    let rows = typed_rows(ROWS);
    let src = Table::new(src_url, "src", &cols, &["id"], &rows).await;
    let tgt = Table::new(tgt_url, "tgt", &cols, &["id"], &rows).await;
    let job = job(&src, &tgt, &["id"]);

    let report = run(&job).await;
    assert_eq!(report.row_hash, expect_hash);
    assert!(report.differences.is_empty(), "{:#?}", report.differences);
    assert_eq!(report.outcome, Outcome::Equal);
    assert_eq!(
        report.summary.segments_differing, 0,
        "equal data must hash equal on both engines"
    );
    assert_eq!(
        (report.source.rows, report.target.rows),
        (ROWS as u64, ROWS as u64)
    );
    assert!(report.summary.segments >= 7, "{:?}", report.summary);
    assert!(
        report.skipped_columns.is_empty(),
        "{:?}",
        report.skipped_columns
    );

    plant(&tgt).await;
    let report = run(&job).await;
    assert_eq!(found(&report), planted());
    assert_eq!(report.outcome, Outcome::Different);
    assert_eq!(
        (
            report.summary.missing,
            report.summary.extra,
            report.summary.changed
        ),
        (1, 1, 12)
    );
    // Bisection downloads only small segments, not the table.
    assert!(
        report.summary.rows_downloaded < 1_500,
        "{:?}",
        report.summary
    );

    // The NULL-versus-empty difference shows both values.
    let d = report
        .differences
        .iter()
        .find(|d| d.key["id"] == id_of(10).to_string())
        .unwrap();
    assert_eq!(
        (
            d.changes[0].source.as_deref(),
            d.changes[0].target.as_deref()
        ),
        (None, Some(""))
    );

    src.drop_table().await;
    tgt.drop_table().await;
}

#[tokio::test]
async fn postgres_to_postgres() {
    let Some(pg) = postgres() else { return };
    equal_then_planted(&pg, &pg, RowHash::PgHashExtended).await;
}

#[tokio::test]
async fn postgres_to_mariadb() {
    let (Some(pg), Some(my)) = (postgres(), mysql()) else {
        return;
    };
    equal_then_planted(&pg, &my, RowHash::Md5).await;
}

/// MariaDB as the source: its statements never materialize anything.
#[tokio::test]
async fn mariadb_to_postgres() {
    let (Some(pg), Some(my)) = (postgres(), mysql()) else {
        return;
    };
    equal_then_planted(&my, &pg, RowHash::Md5).await;
}

#[tokio::test]
async fn sqlite_to_postgres() {
    let Some(pg) = postgres() else { return };
    let (path, lite) = sqlite_url("lite");
    let cols = typed_columns();
    let rows = typed_rows(ROWS);
    let src = Table::new(&lite, "src", &cols, &["id"], &rows).await;
    let tgt = Table::new(&pg, "tgt", &cols, &["id"], &rows).await;
    let job = job(&src, &tgt, &["id"]);
    let report = run(&job).await;
    assert!(report.differences.is_empty(), "{:#?}", report.differences);
    assert_eq!(report.summary.segments_differing, 0);
    assert_eq!(report.row_hash, RowHash::Md5);

    plant(&tgt).await;
    let report = run(&job).await;
    assert_eq!(found(&report), planted());
    src.drop_table().await;
    tgt.drop_table().await;
    let _ = std::fs::remove_file(path);
}

/// MariaDB's own stored forms: precision, a `BINARY(16)` UUID, `TINYINT(1)`, `FLOAT`.
#[tokio::test]
async fn postgres_to_mariadb_precision_and_storage_forms() {
    let (Some(pg), Some(my)) = (postgres(), mysql()) else {
        return;
    };
    let cols = vec![
        col("id", "int NOT NULL", "int NOT NULL", ""),
        // Seconds on the target: the source's microseconds are rounded before comparing.
        col("at", "timestamp(6)", "datetime", ""),
        // Two decimals on the target: the source's four are rounded half away from zero.
        col("price", "numeric(10,4)", "decimal(10,2)", ""),
        col("u", "uuid", "binary(16)", ""),
        col("ok", "boolean", "tinyint(1)", ""),
        col("f", "real", "float", ""),
        col("neg", "double precision", "double", ""),
    ];
    let row = |i: i64, at: &str, price: &str, f: f64| {
        let u = uuid_of(i);
        vec![
            V::Int(i),
            V::Ts(at.into()),
            V::Dec(price.into()),
            V::Raw(
                format!("'{u}'"),
                format!("UNHEX(REPLACE('{u}', '-', ''))"),
                String::new(),
            ),
            V::Bool(i % 2 == 0),
            V::Float(f),
            V::Raw("'-0'::float8".into(), "-0e0".into(), String::new()),
        ]
    };
    let src_rows = vec![
        row(1, "2024-05-01 10:00:00.400000", "1.2349", 0.1),
        row(2, "2024-05-01 10:00:00.500000", "1.2350", 1.0 / 3.0),
        row(3, "2024-05-01 10:00:59.999999", "-1.2350", 16_777_216.0),
        row(4, "1969-12-31 23:59:59.500000", "0.0000", -2.5),
    ];
    let tgt_rows = vec![
        row(1, "2024-05-01 10:00:00", "1.23", 0.1),
        row(2, "2024-05-01 10:00:01", "1.24", 1.0 / 3.0),
        row(3, "2024-05-01 10:01:00", "-1.24", 16_777_216.0),
        row(4, "1970-01-01 00:00:00", "0.00", -2.5),
    ];
    let src = Table::new(&pg, "prec_src", &cols, &["id"], &src_rows).await;
    let tgt = Table::new(&my, "prec_tgt", &cols, &["id"], &tgt_rows).await;
    let job = job(&src, &tgt, &["id"]);
    let report = run(&job).await;
    assert!(report.differences.is_empty(), "{:#?}", report.differences);
    assert_eq!(report.summary.segments_differing, 0);

    tgt.run(&[
        "UPDATE {t} SET at = '2024-05-01 10:00:01' WHERE id = 1",
        "UPDATE {t} SET price = 1.25 WHERE id = 2",
        "UPDATE {t} SET u = UNHEX('00000000000040008000000000000000') WHERE id = 3",
        "UPDATE {t} SET ok = 1 - ok, f = 0.5 WHERE id = 4",
    ])
    .await;
    let report = run(&job).await;
    assert_eq!(
        found(&report),
        expect(&[
            (DiffKind::Changed, "1", &["at"]),
            (DiffKind::Changed, "2", &["price"]),
            (DiffKind::Changed, "3", &["u"]),
            (DiffKind::Changed, "4", &["f", "ok"]),
        ])
    );
    let at = &report.differences[0].changes[0];
    assert_eq!(
        (at.source.as_deref(), at.target.as_deref()),
        (Some("2024-05-01 10:00:00"), Some("2024-05-01 10:00:01"))
    );
    src.drop_table().await;
    tgt.drop_table().await;
}

/// Compound integer keys, UUID keys (MariaDB's UUID type orders differently from
/// PostgreSQL's) and text keys (MariaDB's collation ignores case, PostgreSQL's does not).
#[tokio::test]
async fn compound_uuid_and_text_keys_across_engines() {
    let (Some(pg), Some(my)) = (postgres(), mysql()) else {
        return;
    };

    // Compound key with gaps.
    let cols = vec![
        col("tenant", "int NOT NULL", "int NOT NULL", ""),
        col("seq", "bigint NOT NULL", "bigint NOT NULL", ""),
        col("v", "text", "text", ""),
    ];
    let rows: Vec<Vec<V>> = (0..1_200)
        .map(|i| {
            vec![
                V::Int(i % 5),
                V::Int((i / 5) * 1_000 + i % 7),
                V::Text(format!("v{i}")),
            ]
        })
        .collect();
    let src = Table::new(&pg, "ck_src", &cols, &["tenant", "seq"], &rows).await;
    let tgt = Table::new(&my, "ck_tgt", &cols, &["tenant", "seq"], &rows).await;
    let ck = job(&src, &tgt, &["tenant", "seq"]);
    assert!(run(&ck).await.differences.is_empty());
    tgt.run(&[
        "DELETE FROM {t} WHERE tenant = 3 AND seq = 100006",
        "UPDATE {t} SET v = 'x' WHERE tenant = 0 AND seq = 239005",
        "INSERT INTO {t} VALUES (2, 5, 'new')",
    ])
    .await;
    let report = run(&ck).await;
    assert_eq!(
        found(&report),
        expect(&[
            (DiffKind::Changed, "0/239005", &["v"]),
            (DiffKind::Extra, "2/5", &[]),
            (DiffKind::Missing, "3/100006", &[]),
        ])
    );
    src.drop_table().await;
    tgt.drop_table().await;

    // UUID key: PostgreSQL uuid against MariaDB's UUID type.
    let cols = vec![
        col("id", "uuid NOT NULL", "uuid NOT NULL", ""),
        col("n", "int", "int", ""),
    ];
    let rows: Vec<Vec<V>> = (0..1_000)
        .map(|i| vec![V::Text(uuid_of(i)), V::Int(i)])
        .collect();
    let src = Table::new(&pg, "uk_src", &cols, &["id"], &rows).await;
    let tgt = Table::new(&my, "uk_tgt", &cols, &["id"], &rows).await;
    let uk = job(&src, &tgt, &["id"]);
    let report = run(&uk).await;
    assert!(report.differences.is_empty(), "{:#?}", report.differences);
    tgt.run(&[
        &format!("DELETE FROM {{t}} WHERE id = '{}'", uuid_of(17)),
        &format!("UPDATE {{t}} SET n = -1 WHERE id = '{}'", uuid_of(600)),
        "INSERT INTO {t} VALUES ('ffffffff-0000-4000-8000-000000000001', 1)",
    ])
    .await;
    let report = run(&uk).await;
    assert_eq!(
        found(&report),
        expect(&[
            (DiffKind::Missing, &uuid_of(17), &[]),
            (DiffKind::Changed, &uuid_of(600), &["n"]),
            (DiffKind::Extra, "ffffffff-0000-4000-8000-000000000001", &[]),
        ])
    );
    src.drop_table().await;
    tgt.drop_table().await;

    // Text key: mixed case orders differently under MariaDB's case-insensitive collation.
    let cols = vec![
        col("k", "varchar(20) NOT NULL", "varchar(20) NOT NULL", ""),
        col("n", "int", "int", ""),
    ];
    let key = |i: i64| {
        if i % 2 == 0 {
            format!("Key{i:04}")
        } else {
            format!("key{i:04}")
        }
    };
    let rows: Vec<Vec<V>> = (0..900).map(|i| vec![V::Text(key(i)), V::Int(i)]).collect();
    let src = Table::new(&pg, "tk_src", &cols, &["k"], &rows).await;
    let tgt = Table::new(&my, "tk_tgt", &cols, &["k"], &rows).await;
    let tk = job(&src, &tgt, &["k"]);
    let report = run(&tk).await;
    assert!(report.differences.is_empty(), "{:#?}", report.differences);
    tgt.run(&[
        "DELETE FROM {t} WHERE k = 'key0301'",
        "UPDATE {t} SET n = 0 WHERE k = 'Key0400'",
    ])
    .await;
    let report = run(&tk).await;
    assert_eq!(
        found(&report),
        expect(&[
            (DiffKind::Missing, "key0301", &[]),
            (DiffKind::Changed, "Key0400", &["n"])
        ])
    );
    src.drop_table().await;
    tgt.drop_table().await;
}

/// Renamed columns through `map`, a `where` filter on each side, and tolerance.
#[tokio::test]
async fn map_where_and_tolerance() {
    let Some(pg) = postgres() else { return };
    let (path, lite) = sqlite_url("map");
    let src_cols = vec![
        col("id", "int NOT NULL", "", "INTEGER NOT NULL"),
        col("title", "text", "", "TEXT"),
        col("score", "double precision", "", "REAL"),
        col("deleted", "boolean", "", "BOOLEAN"),
    ];
    let tgt_cols = vec![
        col("id", "int NOT NULL", "", ""),
        col("headline", "text", "", ""),
        col("score", "double precision", "", ""),
        col("archived", "boolean", "", ""),
    ];
    let rows = |bump: f64| -> Vec<Vec<V>> {
        (0..800)
            .map(|i| {
                vec![
                    V::Int(i),
                    V::Text(format!("t{i}")),
                    V::Float(i as f64 * 0.37 + if i == 101 { bump } else { 0.0 }),
                    V::Bool(i % 50 == 0),
                ]
            })
            .collect()
    };
    let src = Table::new(&lite, "map_src", &src_cols, &["id"], &rows(0.0)).await;
    let tgt = Table::new(&pg, "map_tgt", &tgt_cols, &["id"], &rows(0.0004)).await;
    let mut job = job(&src, &tgt, &["id"]);

    // Without a map the renamed columns are not compared, and the report says so.
    let report = run(&job).await;
    assert_eq!(
        report.skipped_columns.len(),
        4,
        "{:?}",
        report.skipped_columns
    );
    assert_eq!(
        found(&report),
        expect(&[(DiffKind::Changed, "101", &["score"])])
    );

    job.map = vec![
        ("title".into(), "headline".into()),
        ("deleted".into(), "archived".into()),
    ];
    tgt.run(&[
        "UPDATE {t} SET headline = 'changed' WHERE id = 7",
        "DELETE FROM {t} WHERE id = 50",
    ])
    .await;
    let report = run(&job).await;
    assert!(report.skipped_columns.is_empty());
    assert_eq!(
        found(&report),
        expect(&[
            (DiffKind::Changed, "7", &["title"]),
            (DiffKind::Missing, "50", &[]),
            (DiffKind::Changed, "101", &["score"]),
        ])
    );

    // 0.0004 is within a tolerance of 0.001, and row 50 is filtered out on both sides.
    job.tolerance = vec![("score".into(), 0.001)];
    job.source.where_clause = Some("NOT deleted".into());
    job.target.where_clause = Some("NOT archived".into());
    let report = run(&job).await;
    assert_eq!(
        found(&report),
        expect(&[(DiffKind::Changed, "7", &["title"])])
    );
    assert_eq!(report.source.rows, 800 - 16);

    // A tolerance smaller than the difference reports it again.
    job.tolerance = vec![("score".into(), 0.0001)];
    let report = run(&job).await;
    assert_eq!(
        found(&report),
        expect(&[
            (DiffKind::Changed, "7", &["title"]),
            (DiffKind::Changed, "101", &["score"])
        ])
    );
    src.drop_table().await;
    tgt.drop_table().await;
    let _ = std::fs::remove_file(path);
}
