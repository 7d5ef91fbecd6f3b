//! PostgreSQL to PostgreSQL: rows are hashed by typed per-column hash functions chained
//! into one row hash (no text encoding per row). Equal data hashes equal across every pair
//! of types verify compares (no differing segment at all), and differences that a weaker
//! scheme could confuse are all found, with the right key and column: NULL against 'NULL'
//! and '', values moved across columns ('ab','c' against 'a','bc') or swapped between rows,
//! bigints and keys that `hashint8extended` alone folds together (0 and 4294967297),
//! timestamps 2^32 + 1 microseconds apart, -0 against 0 (equal), case under a
//! case-insensitive collation, and wide tables whose columns are hashed in several chains.
mod support;

use ficus_verify::{DiffKind, Job, Outcome, RowHash};
use support::*;

const ROWS: i64 = 1_500;

/// Source and target column types: every pair verify compares between two PostgreSQL
/// tables, several of them across types (integer/bigint, numeric scales, real/double,
/// timestamp/timestamptz, timestamptz/timestamptz(3), uuid/text, char/text).
const SOURCE: &str = "id bigint PRIMARY KEY, i4 integer, s2 smallint, big bigint, dec numeric(12,4), \
    num numeric, f4 real, f8 double precision, ts timestamp, ts3 timestamptz, tm time, d date, \
    u uuid, ut uuid, b bytea, j jsonb, c char(5), ci text COLLATE fv_ci, t1 text, t2 text, bo boolean";
const TARGET: &str =
    "id bigint PRIMARY KEY, i4 bigint, s2 integer, big bigint, dec numeric(12,2), \
    num numeric, f4 double precision, f8 double precision, ts timestamptz, ts3 timestamptz(3), \
    tm time, d date, u uuid, ut text, b bytea, j jsonb, c text, ci text COLLATE fv_ci, t1 text, \
    t2 text, bo boolean";

/// Row `g` of the source: special values on a schedule (NULLs, -0, NaN, infinities, bigints
/// that fold alike, trailing zeros, padded chars, text spelled 'NULL').
const ROW: &str = "g, CASE WHEN g % 17 = 13 THEN NULL ELSE g * 3 - 5000 END, (g % 30000)::smallint, \
    CASE g % 7 WHEN 0 THEN 0 WHEN 1 THEN 4294967297 WHEN 2 THEN -1 \
      WHEN 3 THEN 9223372036854775807 WHEN 4 THEN -9223372036854775807 ELSE g * 1000003 END, \
    g / 7.0, \
    CASE g % 9 WHEN 0 THEN 'NaN'::numeric WHEN 1 THEN 1.50 WHEN 2 THEN NULL ELSE g / 3.0 END, \
    (g / 10.0)::real, \
    CASE g % 11 WHEN 0 THEN '-0'::float8 WHEN 1 THEN 'NaN' WHEN 2 THEN 'Infinity' WHEN 3 THEN NULL \
      ELSE g / 7.0 END, \
    CASE WHEN g % 97 = 0 THEN 'infinity'::timestamp \
      ELSE timestamp '2024-01-01' + g * interval '1 second 1 microsecond' END, \
    timestamptz '2024-01-01 00:00:00+00' + g * interval '1.2345 millisecond', \
    time '00:00' + g * interval '17.123457 second', \
    CASE g % 50 WHEN 0 THEN 'infinity'::date WHEN 1 THEN '-infinity'::date WHEN 2 THEN NULL \
      ELSE date '2000-01-01' + g END, \
    md5(g::text)::uuid, md5(g::text || 'u')::uuid, \
    CASE WHEN g % 20 = 6 THEN NULL WHEN g % 20 = 7 THEN ''::bytea ELSE decode(md5(g::text), 'hex') END, \
    jsonb_build_object('g', g, 'a', jsonb_build_array(1, 2)), \
    CASE WHEN g % 3 = 0 THEN 'ab' ELSE left(g::text, 5) END, \
    'Name' || g, \
    CASE WHEN g = 224 THEN 'ab' WHEN g % 13 = 0 THEN NULL WHEN g % 13 = 1 THEN '' \
      WHEN g % 13 = 2 THEN 'NULL' ELSE 'x' || g END, \
    CASE WHEN g = 224 THEN 'c' ELSE 'y' || g END, \
    CASE g % 3 WHEN 0 THEN true WHEN 1 THEN false END";

/// The target's copy of the source: converted by each column's own assignment cast
/// (numeric(12,2) rounds, timestamptz(3) rounds, char to text drops the padding), a
/// timestamp read as UTC, -0 written as 0, 1.50 as 1.5, UUID text in upper case.
const COPY: &str = "id, i4, s2, big, dec, CASE WHEN num = 1.50 THEN 1.5 ELSE num END, f4, \
    CASE WHEN f8 = 0 THEN 0 ELSE f8 END, ts AT TIME ZONE 'UTC', ts3, tm, d, u, upper(ut::text), \
    b, j, c, ci, t1, t2, bo";

async fn tables(pg: &str) -> (Table, Table) {
    exec(
        pg,
        &[
            "CREATE COLLATION IF NOT EXISTS fv_ci (provider = icu, locale = 'und-u-ks-level2', \
             deterministic = false)"
                .into(),
        ],
    )
    .await;
    let (src, tgt) = (unique("tsrc"), unique("ttgt"));
    exec(
        pg,
        &[
            format!("CREATE TABLE {src} ({SOURCE})"),
            format!("INSERT INTO {src} SELECT {ROW} FROM generate_series(1, {ROWS}) g"),
            format!("CREATE TABLE {tgt} ({TARGET})"),
            format!("INSERT INTO {tgt} SELECT {COPY} FROM {src}"),
        ],
    )
    .await;
    (Table::existing(pg, &src), Table::existing(pg, &tgt))
}

#[tokio::test]
async fn typed_hashes_agree_across_types_and_tell_confusable_values_apart() {
    let Some(pg) = postgres() else { return };
    let (src, tgt) = tables(&pg).await;
    let job: Job = job(&src, &tgt, &["id"]);

    let report = run(&job).await;
    assert_eq!(report.row_hash, RowHash::PgHashExtended);
    assert!(report.differences.is_empty(), "{:#?}", report.differences);
    assert_eq!(report.outcome, Outcome::Equal);
    assert_eq!(
        report.summary.segments_differing, 0,
        "equal values of every type pair must hash alike: {:?}",
        report.summary
    );
    assert_eq!(report.columns.len(), 21);

    // Each difference sits alone in its part of a segment (they are 40 rows apart or more),
    // so that it is found by its hash, not because a neighbour's part was downloaded.
    tgt.run(&[
        // hashint8extended alone folds these together.
        "UPDATE {t} SET big = 4294967297 WHERE id = 14",
        "UPDATE {t} SET big = 0 WHERE id = 57",
        // NULL against 'NULL', '' against NULL, 'NULL' against NULL.
        "UPDATE {t} SET t1 = 'NULL' WHERE id = 104",
        "UPDATE {t} SET t1 = NULL WHERE id = 144",
        "UPDATE {t} SET t1 = NULL WHERE id = 184",
        // ('ab', 'c') against ('a', 'bc').
        "UPDATE {t} SET t1 = 'a', t2 = 'bc' WHERE id = 224",
        // Values swapped between two rows.
        "UPDATE {t} SET t2 = CASE id WHEN 264 THEN 'y265' ELSE 'y264' END WHERE id IN (264, 265)",
        "UPDATE {t} SET f8 = 0 WHERE id = 309",
        // One microsecond, and 2^32 + 1 microseconds.
        "UPDATE {t} SET ts = ts + interval '1 microsecond' WHERE id = 349",
        "UPDATE {t} SET ts = ts + interval '4294.967297 second' WHERE id = 389",
        "UPDATE {t} SET d = '-infinity' WHERE id = 450",
        "UPDATE {t} SET d = d + 1 WHERE id = 490",
        "UPDATE {t} SET u = md5('other')::uuid WHERE id = 530",
        "UPDATE {t} SET ut = upper(md5('other')::uuid::text) WHERE id = 570",
        // NULL against empty bytes, empty against one zero byte.
        "UPDATE {t} SET b = ''::bytea WHERE id = 626",
        "UPDATE {t} SET b = decode('00', 'hex') WHERE id = 667",
        "UPDATE {t} SET dec = dec + 0.01 WHERE id = 707",
        "UPDATE {t} SET num = num + 0.000001 WHERE id = 748",
        // A trailing space the source's char(5) cannot hold.
        "UPDATE {t} SET c = c || ' ' WHERE id = 789",
        // Only the case differs, under a case-insensitive collation.
        "UPDATE {t} SET ci = upper(ci) WHERE id = 829",
        "UPDATE {t} SET bo = false WHERE id = 869",
        "UPDATE {t} SET tm = tm + interval '1 microsecond' WHERE id = 909",
        "UPDATE {t} SET i4 = 0 WHERE id = 965",
        "UPDATE {t} SET s2 = s2 + 1 WHERE id = 1005",
        "UPDATE {t} SET f4 = f4 + 0.001 WHERE id = 1045",
        "UPDATE {t} SET j = jsonb_build_object('g', 0) WHERE id = 1085",
        "UPDATE {t} SET ts3 = ts3 + interval '1 millisecond' WHERE id = 1125",
        // NULL against -infinity (hashed alike but for the NULL flag).
        "UPDATE {t} SET d = '-infinity' WHERE id = 1202",
        // A missing key and an extra one that hashint8extended folds together, with the
        // same values, in the same (last) segment: the counts match.
        "INSERT INTO {t} SELECT 4294968787, i4, s2, big, dec, num, f4, f8, ts, ts3, tm, d, u, ut, \
         b, j, c, ci, t1, t2, bo FROM {t} WHERE id = 1490",
        "DELETE FROM {t} WHERE id = 1490",
    ])
    .await;
    let report = run(&job).await;
    let changed = |id: &'static str, cols: &'static [&'static str]| (DiffKind::Changed, id, cols);
    let want = expect(&[
        changed("14", &["big"]),
        changed("57", &["big"]),
        changed("104", &["t1"]),
        changed("144", &["t1"]),
        changed("184", &["t1"]),
        changed("224", &["t1", "t2"]),
        changed("264", &["t2"]),
        changed("265", &["t2"]),
        changed("309", &["f8"]),
        changed("349", &["ts"]),
        changed("389", &["ts"]),
        changed("450", &["d"]),
        changed("490", &["d"]),
        changed("530", &["u"]),
        changed("570", &["ut"]),
        changed("626", &["b"]),
        changed("667", &["b"]),
        changed("707", &["dec"]),
        changed("748", &["num"]),
        changed("789", &["c"]),
        changed("829", &["ci"]),
        changed("869", &["bo"]),
        changed("909", &["tm"]),
        changed("965", &["i4"]),
        changed("1005", &["s2"]),
        changed("1045", &["f4"]),
        changed("1085", &["j"]),
        changed("1125", &["ts3"]),
        changed("1202", &["d"]),
        (DiffKind::Missing, "1490", &[]),
        (DiffKind::Extra, "4294968787", &[]),
    ]);
    assert_eq!(found(&report), want, "{:#?}", report.differences);
    assert_eq!(report.summary.differences(), want.len() as u64);
    // Bisection narrowed the differing segments before downloading.
    assert!(
        report.summary.rows_downloaded < 2_000,
        "{:?}",
        report.summary
    );
    src.drop_table().await;
    tgt.drop_table().await;
}

/// More columns than one chain takes: the chains are combined and mixed once more, and a
/// difference in any chain is found.
#[tokio::test]
async fn wide_tables_hash_in_several_chains() {
    let Some(pg) = postgres() else { return };
    let n = 130;
    let defs: Vec<String> = (0..n).map(|i| format!("c{i} integer")).collect();
    let vals: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "CASE WHEN (g + {i}) % 11 = 0 THEN NULL ELSE g * {} END",
                i + 1
            )
        })
        .collect();
    let (src, tgt) = (unique("wsrc"), unique("wtgt"));
    exec(
        &pg,
        &[
            format!(
                "CREATE TABLE {src} (id bigint PRIMARY KEY, {})",
                defs.join(", ")
            ),
            format!(
                "INSERT INTO {src} SELECT g, {} FROM generate_series(1, 1000) g",
                vals.join(", ")
            ),
            format!("CREATE TABLE {tgt} (LIKE {src} INCLUDING ALL)"),
            format!("INSERT INTO {tgt} SELECT * FROM {src}"),
        ],
    )
    .await;
    let (src, tgt) = (Table::existing(&pg, &src), Table::existing(&pg, &tgt));
    let job = job(&src, &tgt, &["id"]);
    let report = run(&job).await;
    assert_eq!(report.outcome, Outcome::Equal);
    assert_eq!(report.summary.segments_differing, 0, "{:?}", report.summary);

    tgt.run(&[
        "UPDATE {t} SET c0 = c0 + 1 WHERE id = 7",
        "UPDATE {t} SET c45 = NULL WHERE id = 300",
        "UPDATE {t} SET c129 = -c129 WHERE id = 901",
        // Values swapped between two columns of different chains.
        "UPDATE {t} SET c3 = c90, c90 = c3 WHERE id = 500",
    ])
    .await;
    let report = run(&job).await;
    assert_eq!(
        found(&report),
        expect(&[
            (DiffKind::Changed, "7", &["c0"]),
            (DiffKind::Changed, "300", &["c45"]),
            (DiffKind::Changed, "901", &["c129"]),
            (DiffKind::Changed, "500", &["c3", "c90"]),
        ])
    );
    src.drop_table().await;
    tgt.drop_table().await;
}

/// Compound keys with a text part in a linguistic collation: parts of a differing segment
/// are told apart by comparing whole keys in byte order.
#[tokio::test]
async fn compound_text_keys_bisect_in_byte_order() {
    let Some(pg) = postgres() else { return };
    let (src, tgt) = (unique("ksrc"), unique("ktgt"));
    exec(
        &pg,
        &[
            format!(
                "CREATE TABLE {src} (a integer, k text COLLATE \"en-x-icu\", v text, PRIMARY KEY (a, k))"
            ),
            format!(
                "INSERT INTO {src} SELECT g % 4, CASE WHEN g % 2 = 0 THEN 'Key' ELSE 'key' END || g, \
                 'v' || g FROM generate_series(1, 2000) g"
            ),
            format!("CREATE TABLE {tgt} (LIKE {src} INCLUDING ALL)"),
            format!("INSERT INTO {tgt} SELECT * FROM {src}"),
        ],
    )
    .await;
    let (src, tgt) = (Table::existing(&pg, &src), Table::existing(&pg, &tgt));
    let job = job(&src, &tgt, &["a", "k"]);
    let report = run(&job).await;
    assert_eq!(report.outcome, Outcome::Equal, "{:#?}", report.differences);
    tgt.run(&[
        "UPDATE {t} SET v = 'changed' WHERE a = 1 AND k = 'key1001'",
        "DELETE FROM {t} WHERE a = 2 AND k = 'Key10'",
        "INSERT INTO {t} VALUES (3, 'KEY0', 'new')",
    ])
    .await;
    let report = run(&job).await;
    assert_eq!(
        found(&report),
        expect(&[
            (DiffKind::Changed, "1/key1001", &["v"]),
            (DiffKind::Missing, "2/Key10", &[]),
            (DiffKind::Extra, "3/KEY0", &[]),
        ])
    );
    src.drop_table().await;
    tgt.drop_table().await;
}
