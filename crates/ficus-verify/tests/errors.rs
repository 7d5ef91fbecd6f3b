//! Clear errors before any scanning: bad URLs, unreachable servers, missing tables and
//! columns, incompatible types.
mod support;

use ficus_verify::{verify, Endpoint, Job, Side, VerifyError};
use support::*;

fn ep(url: &str, table: &str) -> Endpoint {
    Endpoint {
        url: url.into(),
        table: table.into(),
        where_clause: None,
    }
}

async fn fails(job: &Job) -> VerifyError {
    verify(job, |_| {}).await.expect_err("verify must fail")
}

#[tokio::test]
async fn bad_and_unreachable_urls() {
    let job = Job::new(
        ep("oracle://db/x", "t"),
        ep("sqlite://x.db", "t"),
        vec!["id".into()],
    );
    let e = fails(&job).await;
    assert!(
        matches!(
            e,
            VerifyError::BadUrl {
                side: Side::Source,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("postgres://"), "{e}");

    let (_path, lite) = sqlite_url("nofile");
    let job = Job::new(ep(&lite, "t"), ep(&lite, "t"), vec!["id".into()]);
    let e = fails(&job).await;
    assert!(matches!(e, VerifyError::Connect { .. }), "{e}");

    // Nothing listens on port 1: refused at once.
    let job = Job::new(
        ep("postgres://u:secret@127.0.0.1:1/x", "t"),
        ep("postgres://u@127.0.0.1:1/x", "t"),
        vec!["id".into()],
    );
    let e = fails(&job).await.to_string();
    assert!(e.contains("cannot connect") && !e.contains("secret"), "{e}");
}

#[tokio::test]
async fn missing_table_key_and_incompatible_types() {
    let Some(pg) = postgres() else { return };
    let Some(my) = mysql() else { return };
    let cols = vec![
        col("id", "int NOT NULL", "int NOT NULL", ""),
        col("code", "text", "int", ""),
        col("at", "date", "datetime", ""),
        col("ok", "int", "int", ""),
    ];
    let rows = vec![vec![
        V::Int(1),
        V::Raw("'a'".into(), "1".into(), String::new()),
        V::Date("2024-01-01".into()),
        V::Int(1),
    ]];
    let src = Table::new(&pg, "err_src", &cols, &["id"], &rows).await;
    let tgt = Table::new(&my, "err_tgt", &cols, &["id"], &rows).await;

    let mut job = Job::new(
        src.endpoint(),
        ep(&my, "fv_no_such_table"),
        vec!["id".into()],
    );
    let e = fails(&job).await;
    assert!(
        matches!(
            e,
            VerifyError::TableNotFound {
                side: Side::Target,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("fv_no_such_table"), "{e}");

    job.target = tgt.endpoint();
    job.key = vec!["ident".into()];
    let e = fails(&job).await.to_string();
    assert!(
        e.contains("`ident`") && e.contains("--key") && e.contains("id, code, at, ok"),
        "{e}"
    );

    job.key = vec!["id".into()];
    let e = fails(&job).await;
    let VerifyError::IncompatibleTypes(list) = &e else {
        panic!("{e}")
    };
    let named: Vec<&str> = list.iter().map(|m| m.source_column.as_str()).collect();
    assert_eq!(named, ["code", "at"], "{e}");
    assert!(e.to_string().contains("nothing was scanned"), "{e}");

    job.exclude = vec!["code".into(), "at".into()];
    let report = verify(&job, |_| {}).await.unwrap();
    assert!(report.differences.is_empty());

    job.tolerance = vec![("id".into(), 1.0)];
    let e = fails(&job).await.to_string();
    assert!(e.contains("--tolerance") && e.contains("key"), "{e}");
    src.drop_table().await;
    tgt.drop_table().await;
}
