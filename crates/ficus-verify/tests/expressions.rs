//! Transform-aware verify: target columns checked against SQL expressions over the source
//! columns, evaluated in the source database. A legacy `customers(id, name, email, price)`
//! against a backfilled `people(id, first_name, last_name, display, email_lower,
//! price_cents, price_rounded)`: equal when the backfill is the transform of the old
//! rows, and every wrong transform found with its key, column and both values.
mod support;

use std::collections::BTreeSet;

use ficus_verify::{verify, DiffKind, Job, Outcome, Phase, Report, Side, VerifyError};
use support::*;

const ROWS: i64 = 2_000;

fn customer_columns() -> Vec<Col> {
    vec![
        col(
            "id",
            "bigint NOT NULL",
            "bigint NOT NULL",
            "INTEGER NOT NULL",
        ),
        col("name", "text", "varchar(100)", "TEXT"),
        col("email", "text", "varchar(100)", "TEXT"),
        col("price", "numeric(10,2)", "decimal(10,2)", "DECIMAL(10,2)"),
    ]
}

fn people_columns() -> Vec<Col> {
    vec![
        col(
            "id",
            "bigint NOT NULL",
            "bigint NOT NULL",
            "INTEGER NOT NULL",
        ),
        col("first_name", "text", "varchar(60)", "TEXT"),
        col("last_name", "varchar(60)", "varchar(60)", "VARCHAR(60)"),
        col("display", "text", "varchar(120)", "TEXT"),
        col("email_lower", "text", "varchar(100)", "TEXT"),
        col("price_cents", "bigint", "bigint", "INTEGER"),
        // A coarser scale: the target keeps one decimal of the source's two.
        col(
            "price_rounded",
            "numeric(10,1)",
            "decimal(10,1)",
            "DECIMAL(10,1)",
        ),
    ]
}

/// The legacy row `i`: ids with gaps, some non-ASCII first names, some NULL emails.
struct Customer {
    id: i64,
    first: String,
    last: String,
    email: Option<String>,
    cents: i64,
}

fn customer(i: i64) -> Customer {
    Customer {
        id: i * 3,
        first: if i % 7 == 0 {
            format!("Zoë{i}")
        } else {
            format!("Ann{i}")
        },
        last: format!("Lee-Ünal{i}"),
        email: (i % 50 != 0).then(|| format!("Ann{i}.Lee@Example.COM")),
        cents: (i * 37) % 100_000 + 1,
    }
}

fn email_of(i: i64) -> String {
    customer(i).email.expect("an email")
}

fn customer_row(c: &Customer) -> Vec<V> {
    vec![
        V::Int(c.id),
        V::Text(format!("{} {}", c.first, c.last)),
        c.email.clone().map(V::Text).unwrap_or(V::Null),
        V::Dec(format!("{}.{:02}", c.cents / 100, c.cents % 100)),
    ]
}

/// The backfilled row: what `up(old)` is, computed here independently of any database.
fn person_row(c: &Customer) -> Vec<V> {
    let dimes = (c.cents + 5) / 10; // half away from zero (cents are positive)
    vec![
        V::Int(c.id),
        V::Text(c.first.clone()),
        V::Text(c.last.clone()),
        V::Text(format!("{}, {}", c.last, c.first)),
        c.email
            .as_ref()
            .map(|e| V::Text(e.to_lowercase()))
            .unwrap_or(V::Null),
        V::Int(c.cents),
        V::Dec(format!("{}.{}", dimes / 10, dimes % 10)),
    ]
}

/// `up(old)` in the source engine's dialect.
fn expressions(src: Eng) -> Vec<(String, String)> {
    let e: [(&str, &str); 6] = match src {
        Eng::Pg => [
            ("first_name", "split_part(name, ' ', 1)"),
            ("last_name", "split_part(name, ' ', 2)"),
            (
                "display",
                "split_part(name, ' ', 2) || ', ' || split_part(name, ' ', 1)",
            ),
            ("email_lower", "lower(email)"),
            ("price_cents", "CAST(price * 100 AS BIGINT)"),
            ("price_rounded", "price"),
        ],
        Eng::My => [
            ("first_name", "SUBSTRING_INDEX(name, ' ', 1)"),
            ("last_name", "SUBSTRING_INDEX(name, ' ', -1)"),
            (
                "display",
                "CONCAT(SUBSTRING_INDEX(name, ' ', -1), ', ', SUBSTRING_INDEX(name, ' ', 1))",
            ),
            ("email_lower", "LOWER(email)"),
            ("price_cents", "CAST(price * 100 AS SIGNED)"),
            ("price_rounded", "price"),
        ],
        Eng::Lite => [
            ("first_name", "substr(name, 1, instr(name, ' ') - 1)"),
            ("last_name", "substr(name, instr(name, ' ') + 1)"),
            (
                "display",
                "substr(name, instr(name, ' ') + 1) || ', ' || substr(name, 1, instr(name, ' ') - 1)",
            ),
            ("email_lower", "lower(email)"),
            ("price_cents", "CAST(round(price * 100) AS INTEGER)"),
            ("price_rounded", "price"),
        ],
    };
    e.iter()
        .map(|(t, x)| (t.to_string(), x.to_string()))
        .collect()
}

struct Pair {
    src: Table,
    tgt: Table,
    job: Job,
}

impl Pair {
    async fn new(src_url: &str, tgt_url: &str) -> Pair {
        let customers: Vec<Customer> = (1..=ROWS).map(customer).collect();
        let src_rows: Vec<Vec<V>> = customers.iter().map(customer_row).collect();
        let tgt_rows: Vec<Vec<V>> = customers.iter().map(person_row).collect();
        let src = Table::new(
            src_url,
            "customers",
            &customer_columns(),
            &["id"],
            &src_rows,
        )
        .await;
        let tgt = Table::new(tgt_url, "people", &people_columns(), &["id"], &tgt_rows).await;
        let mut job = job(&src, &tgt, &["id"]);
        job.expr = expressions(src.eng);
        Pair { src, tgt, job }
    }

    async fn drop(self) {
        self.src.drop_table().await;
        self.tgt.drop_table().await;
    }
}

fn assert_equal(report: &Report) {
    assert_eq!(report.outcome, Outcome::Equal, "{:#?}", report.differences);
    assert_eq!(
        report.summary.segments_differing, 0,
        "the expressions' canonical values must hash like the target's"
    );
    assert_eq!(report.source.rows, ROWS as u64);
    assert!(report.summary.segments >= 5, "{:?}", report.summary);
}

/// Where the faults go: 3 emails not lower-cased, 2 last names truncated, a cents value off
/// by one, a missing row.
const NOT_LOWERED: [i64; 3] = [11, 812, 1999];
const TRUNCATED: [i64; 2] = [402, 1203];
const OFF_BY_ONE: i64 = 1500;
const MISSING: i64 = 777;

async fn plant_faults(t: &Table) {
    let mut stmts = Vec::new();
    for i in NOT_LOWERED {
        stmts.push(format!(
            "UPDATE {{t}} SET email_lower = '{}' WHERE id = {}",
            email_of(i),
            customer(i).id
        ));
    }
    for i in TRUNCATED {
        let c = customer(i);
        stmts.push(format!(
            "UPDATE {{t}} SET last_name = '{}' WHERE id = {}",
            c.last.chars().take(3).collect::<String>(),
            c.id
        ));
    }
    stmts.push(format!(
        "UPDATE {{t}} SET price_cents = price_cents + 1 WHERE id = {}",
        customer(OFF_BY_ONE).id
    ));
    stmts.push(format!(
        "DELETE FROM {{t}} WHERE id = {}",
        customer(MISSING).id
    ));
    let refs: Vec<&str> = stmts.iter().map(String::as_str).collect();
    t.run(&refs).await;
}

/// The planted faults as (kind, key, column, source value, target value), and the report's.
type Found = BTreeSet<(DiffKind, String, String, Option<String>, Option<String>)>;

fn planted_faults() -> Found {
    let mut out = Found::new();
    for i in NOT_LOWERED {
        out.insert((
            DiffKind::Changed,
            customer(i).id.to_string(),
            "email_lower".into(),
            Some(email_of(i).to_lowercase()),
            Some(email_of(i)),
        ));
    }
    for i in TRUNCATED {
        let c = customer(i);
        out.insert((
            DiffKind::Changed,
            c.id.to_string(),
            "last_name".into(),
            Some(c.last.clone()),
            Some(c.last.chars().take(3).collect()),
        ));
    }
    let c = customer(OFF_BY_ONE);
    out.insert((
        DiffKind::Changed,
        c.id.to_string(),
        "price_cents".into(),
        Some(c.cents.to_string()),
        Some((c.cents + 1).to_string()),
    ));
    out.insert((
        DiffKind::Missing,
        customer(MISSING).id.to_string(),
        String::new(),
        None,
        None,
    ));
    out
}

fn found_faults(report: &Report) -> Found {
    let mut out = Found::new();
    for d in &report.differences {
        let key = d.key["id"].clone();
        if d.changes.is_empty() {
            out.insert((d.kind, key.clone(), String::new(), None, None));
        }
        for c in &d.changes {
            // Expression columns are named by their target column on both sides.
            assert_eq!(c.column, c.target_column);
            out.insert((
                d.kind,
                key.clone(),
                c.column.clone(),
                c.source.clone(),
                c.target.clone(),
            ));
        }
    }
    out
}

fn assert_faults_found(report: &Report) {
    assert_eq!(found_faults(report), planted_faults());
    assert_eq!(report.outcome, Outcome::Different);
    assert_eq!(
        (
            report.summary.missing,
            report.summary.extra,
            report.summary.changed
        ),
        (1, 0, 6)
    );
    // The missing row is shown with the expressions' values, by target column name, so the
    // repair SQL inserts what the backfill should have written.
    let missing = report
        .differences
        .iter()
        .find(|d| d.kind == DiffKind::Missing)
        .expect("the missing row");
    let c = customer(MISSING);
    let row = missing.source.as_ref().expect("the source row");
    assert_eq!(row["display"], Some(format!("{}, {}", c.last, c.first)));
    assert_eq!(row["price_cents"], Some(c.cents.to_string()));
    let sql = ficus_verify::repair_sql(report);
    assert!(
        sql.contains("email_lower") && sql.contains("price_cents"),
        "{sql}"
    );
}

#[tokio::test]
async fn postgres_to_postgres_transforms() {
    let Some(pg) = postgres() else { return };
    let pair = Pair::new(&pg, &pg).await;
    let report = run(&pair.job).await;
    assert_equal(&report);

    // The report names each expression column by its target column, with its expression.
    let cols: Vec<(&str, &str, Option<&str>)> = report
        .columns
        .iter()
        .map(|c| (c.source.as_str(), c.target.as_str(), c.expr.as_deref()))
        .collect();
    assert_eq!(cols[0], ("id", "id", None));
    assert_eq!(cols.len(), 7, "{cols:?}");
    assert!(cols.contains(&("email_lower", "email_lower", Some("lower(email)"))));
    let price = report
        .columns
        .iter()
        .find(|c| c.target == "price_cents")
        .unwrap();
    assert_eq!(
        (price.kind, price.source_type.as_str()),
        (ficus_verify::Kind::Integer, "expression")
    );
    // Source columns read only by expressions are named as such, not as forgotten ones.
    let notes = report.skipped_columns.join("\n");
    for c in ["name", "email", "price"] {
        assert!(
            notes.contains(&format!(
                "source column `{c}` has no target column of its own"
            )),
            "{notes}"
        );
    }

    plant_faults(&pair.tgt).await;
    let report = run(&pair.job).await;
    assert_faults_found(&report);

    // The same faults without the transforms: a plain copy check cannot see them at all
    // (no target column has a source counterpart besides the key).
    let mut plain = pair.job.clone();
    plain.expr.clear();
    let report = run(&plain).await;
    assert_eq!(report.columns.len(), 1);
    assert_eq!(report.summary.changed, 0);
    pair.drop().await;
}

/// The same check from MariaDB, in MariaDB's dialect (`SUBSTRING_INDEX`, `CONCAT`,
/// `LOWER`, `CAST ... AS SIGNED`), to PostgreSQL.
#[tokio::test]
async fn mariadb_to_postgres_transforms() {
    let (Some(pg), Some(my)) = (postgres(), mysql()) else {
        return;
    };
    let pair = Pair::new(&my, &pg).await;
    assert_equal(&run(&pair.job).await);
    plant_faults(&pair.tgt).await;
    assert_faults_found(&run(&pair.job).await);
    pair.drop().await;
}

#[tokio::test]
async fn postgres_to_mariadb_transforms() {
    let (Some(pg), Some(my)) = (postgres(), mysql()) else {
        return;
    };
    let pair = Pair::new(&pg, &my).await;
    assert_equal(&run(&pair.job).await);
    plant_faults(&pair.tgt).await;
    assert_faults_found(&run(&pair.job).await);
    pair.drop().await;
}

/// SQLite on either side: its expression values are normalized in Rust.
#[tokio::test]
async fn sqlite_transforms_both_ways() {
    let Some(pg) = postgres() else { return };
    let (path, lite) = sqlite_url("expr");
    let pair = Pair::new(&lite, &pg).await;
    assert_equal(&run(&pair.job).await);
    plant_faults(&pair.tgt).await;
    assert_faults_found(&run(&pair.job).await);
    pair.drop().await;
    let _ = std::fs::remove_file(&path);

    let (path, lite) = sqlite_url("expr");
    let pair = Pair::new(&pg, &lite).await;
    assert_equal(&run(&pair.job).await);
    plant_faults(&pair.tgt).await;
    assert_faults_found(&run(&pair.job).await);
    pair.drop().await;
    let _ = std::fs::remove_file(&path);
}

/// Runs a job expected to fail, and checks that nothing was scanned.
async fn refused(job: &Job) -> VerifyError {
    let mut phases = Vec::new();
    let e = verify(job, |p| phases.push(p.phase))
        .await
        .expect_err("verify must fail");
    assert!(
        !phases.contains(&Phase::Scanning),
        "{e}: scanned anyway ({phases:?})"
    );
    e
}

#[tokio::test]
async fn bad_expressions_are_clear_errors_before_scanning() {
    let (Some(pg), Some(my)) = (postgres(), mysql()) else {
        return;
    };
    let pair = Pair::new(&pg, &pg).await;
    let with = |column: &str, expr: &str| {
        let mut job = pair.job.clone();
        job.expr = vec![(column.into(), expr.into())];
        job
    };

    let e = refused(&with("email_lower", "  ")).await;
    assert!(
        matches!(&e, VerifyError::BadExpression { column, .. } if column == "email_lower"),
        "{e}"
    );
    assert!(e.to_string().contains("empty"), "{e}");

    let e = refused(&with("email_lower", "lower(email); DROP TABLE people")).await;
    assert!(e.to_string().contains("`;`"), "{e}");

    let e = refused(&with("email_lowr", "lower(email)")).await;
    assert!(
        matches!(
            &e,
            VerifyError::ColumnNotFound { side: Side::Target, column, .. } if column == "email_lowr"
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("email_lower"),
        "lists the columns: {e}"
    );

    // A misspelled source column: the database's own message, the column and the expression.
    let e = refused(&with("email_lower", "lower(emial)")).await;
    let text = e.to_string();
    assert!(matches!(e, VerifyError::BadExpression { .. }), "{e}");
    assert!(
        text.contains("email_lower")
            && text.contains("lower(emial)")
            && text.contains("refused")
            && text.contains("\"emial\" does not exist"),
        "{text}"
    );

    // Valid SQL whose value cannot take the target's type: found on the first row.
    let e = refused(&with("price_cents", "name")).await.to_string();
    assert!(
        e.contains("price_cents") && e.contains("invalid input syntax"),
        "{e}"
    );

    let e = refused(&with("id", "id + 1")).await.to_string();
    assert!(e.contains("keys cannot be expressions"), "{e}");
    pair.drop().await;

    // MariaDB as the source: its message.
    let pair = Pair::new(&my, &pg).await;
    let mut job = pair.job.clone();
    job.expr = vec![("email_lower".into(), "LOWER(emial)".into())];
    let e = refused(&job).await.to_string();
    assert!(
        e.contains("email_lower") && e.contains("Unknown column 'emial'"),
        "{e}"
    );
    job.expr = vec![("email_lower".into(), "LOWER(email) = ?".into())];
    let e = refused(&job).await.to_string();
    assert!(e.contains("parameter"), "{e}");
    pair.drop().await;
}
