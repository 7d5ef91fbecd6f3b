//! Repair SQL: the statements that would make the target match the source for the reported
//! differences, printed for review and never run by ficus.
use std::fmt::Write;

use crate::db::Engine;
use crate::plan::Kind;
use crate::report::{ColumnReport, DiffKind, Difference, Report};
use crate::schema::{Family, UuidRepr};
use crate::sql::{quote_ident, quote_table};

fn quote(engine: Engine, s: &str) -> String {
    // MySQL treats backslashes as escapes unless NO_BACKSLASH_ESCAPES is set; a hex
    // literal means the same in either mode.
    if engine == Engine::MySql && s.contains('\\') {
        let hex: String = s.bytes().map(|b| format!("{b:02X}")).collect();
        return format!("_utf8mb4 X'{hex}'");
    }
    format!("'{}'", s.replace('\'', "''"))
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.parse::<f64>().is_ok_and(f64::is_finite) && !s.contains(['i', 'I', 'n', 'N'])
}

/// A literal for `value` in a target column.
fn literal(engine: Engine, col: &ColumnReport, value: Option<&str>) -> String {
    let Some(v) = value else {
        return "NULL".into();
    };
    let family = col.target_family.as_ref();
    let binary_uuid = matches!(family, Some(Family::Bytes | Family::Uuid(UuidRepr::Binary)));
    match col.kind {
        Kind::Integer | Kind::Decimal { .. } | Kind::Float { .. } if is_number(v) => v.to_string(),
        Kind::Integer | Kind::Decimal { .. } | Kind::Float { .. } => match engine {
            Engine::Postgres => format!("{}::float8", quote(engine, v)),
            _ => quote(engine, v),
        },
        Kind::Bool => match (engine, v) {
            (Engine::Postgres, "t") => "TRUE".into(),
            (Engine::Postgres, _) => "FALSE".into(),
            (_, "t") => "1".into(),
            _ => "0".into(),
        },
        Kind::Bytes => match engine {
            Engine::Postgres => format!("decode('{v}', 'hex')"),
            _ => format!("X'{v}'"),
        },
        Kind::Uuid if binary_uuid => {
            let hex = v.replace('-', "");
            match engine {
                Engine::Postgres => format!("decode('{hex}', 'hex')"),
                _ => format!("X'{hex}'"),
            }
        }
        Kind::Timestamp { .. }
            if engine == Engine::Postgres
                && matches!(family, Some(Family::Timestamp { tz: true, .. })) =>
        {
            format!("'{v}+00'")
        }
        _ => quote(engine, v),
    }
}

fn key_condition(engine: Engine, cols: &[ColumnReport], d: &Difference) -> String {
    cols.iter()
        .filter(|c| c.key)
        .map(|c| {
            format!(
                "{} = {}",
                quote_ident(engine, &c.target),
                literal(engine, c, d.key.get(&c.source).map(String::as_str))
            )
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The repair script for `report`'s target, as text.
pub fn repair_sql(report: &Report) -> String {
    let engine = report.target.engine;
    let table = quote_table(engine, &report.target.table);
    let cols = &report.columns;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "-- ficus verify: repair script for {} ({}), generated from the source {}.",
        report.target.table,
        engine.name(),
        report.source.table
    );
    let _ = writeln!(
        out,
        "-- Review before running; ficus never runs it. The values are those read during"
    );
    let _ = writeln!(
        out,
        "-- the verification: if the source changed since, verify again first."
    );
    if !report.skipped_columns.is_empty() {
        let _ = writeln!(
            out,
            "-- Columns that were not compared keep their defaults on INSERT."
        );
    }
    if report.summary.truncated {
        let _ = writeln!(
            out,
            "-- Only the first {} of {} differences are covered (raise --max-diffs).",
            report.differences.len(),
            report.summary.differences()
        );
    }
    let pending: Vec<&Difference> = report
        .differences
        .iter()
        .filter(|d| d.status != Some(crate::report::RecheckStatus::Resolved))
        .collect();
    if pending.is_empty() {
        let _ = writeln!(out, "-- Nothing to repair.");
        return out;
    }
    match engine {
        Engine::MySql => {
            let _ = writeln!(out, "SET time_zone = '+00:00';");
            let _ = writeln!(out, "START TRANSACTION;");
        }
        _ => {
            let _ = writeln!(out, "BEGIN;");
        }
    }
    for d in pending {
        match d.kind {
            DiffKind::Missing => {
                let Some(row) = &d.source else { continue };
                let names: Vec<String> = cols
                    .iter()
                    .map(|c| quote_ident(engine, &c.target))
                    .collect();
                let values: Vec<String> = cols
                    .iter()
                    .map(|c| literal(engine, c, row.get(&c.source).cloned().flatten().as_deref()))
                    .collect();
                let _ = writeln!(
                    out,
                    "INSERT INTO {table} ({}) VALUES ({});",
                    names.join(", "),
                    values.join(", ")
                );
            }
            DiffKind::Extra => {
                let _ = writeln!(
                    out,
                    "DELETE FROM {table} WHERE {};",
                    key_condition(engine, cols, d)
                );
            }
            DiffKind::Changed => {
                let sets: Vec<String> = d
                    .changes
                    .iter()
                    .filter_map(|ch| {
                        let c = cols.iter().find(|c| c.source == ch.column)?;
                        Some(format!(
                            "{} = {}",
                            quote_ident(engine, &c.target),
                            literal(engine, c, ch.source.as_deref())
                        ))
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "UPDATE {table} SET {} WHERE {};",
                    sets.join(", "),
                    key_condition(engine, cols, d)
                );
            }
        }
    }
    let _ = writeln!(out, "COMMIT;");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Change, Outcome, Summary, TableReport};
    use crate::sql::RowHash;
    use std::collections::BTreeMap;

    fn col(name: &str, kind: Kind, family: Family, key: bool) -> ColumnReport {
        ColumnReport {
            source: name.into(),
            target: format!("{name}_t"),
            kind,
            source_type: String::new(),
            target_type: String::new(),
            tolerance: None,
            key,
            expr: None,
            target_family: Some(family),
        }
    }

    fn report(engine: Engine, differences: Vec<Difference>) -> Report {
        let side = |engine| TableReport {
            engine,
            url: String::new(),
            table: "app.orders".into(),
            server: String::new(),
            rows: 0,
        };
        Report {
            version: 1,
            outcome: Outcome::Different,
            source: side(Engine::Postgres),
            target: side(engine),
            key: vec!["id".into()],
            columns: vec![
                col(
                    "id",
                    Kind::Integer,
                    Family::Integer { unsigned: false },
                    true,
                ),
                col("note", Kind::Text, Family::Text, false),
                col(
                    "at",
                    Kind::Timestamp { precision: 6 },
                    Family::Timestamp {
                        tz: true,
                        precision: 6,
                    },
                    false,
                ),
                col("u", Kind::Uuid, Family::Uuid(UuidRepr::Binary), false),
            ],
            skipped_columns: vec![],
            row_hash: RowHash::Md5,
            mode: Default::default(),
            watermark: None,
            resumed: None,
            summary: Summary::default(),
            differences,
            recheck: None,
            limits: Default::default(),
        }
    }

    fn diff(kind: DiffKind, id: &str) -> Difference {
        let row: BTreeMap<String, Option<String>> = [
            ("id".to_string(), Some(id.to_string())),
            ("note".to_string(), Some("it's \\ here".to_string())),
            (
                "at".to_string(),
                Some("2024-01-02 03:04:05.000000".to_string()),
            ),
            ("u".to_string(), None),
        ]
        .into();
        Difference {
            kind,
            key: [("id".to_string(), id.to_string())].into(),
            changes: if kind == DiffKind::Changed {
                vec![Change {
                    column: "note".into(),
                    target_column: "note_t".into(),
                    source: None,
                    target: Some("x".into()),
                }]
            } else {
                vec![]
            },
            source: (kind == DiffKind::Missing).then(|| row.clone()),
            target: (kind == DiffKind::Extra).then_some(row),
            status: None,
            key_values: vec![id.into()],
        }
    }

    #[test]
    fn postgres_repair_statements() {
        let r = report(
            Engine::Postgres,
            vec![
                diff(DiffKind::Missing, "1"),
                diff(DiffKind::Extra, "2"),
                diff(DiffKind::Changed, "3"),
            ],
        );
        let sql = repair_sql(&r);
        assert!(sql.contains(
            r#"INSERT INTO "app"."orders" ("id_t", "note_t", "at_t", "u_t") VALUES (1, 'it''s \ here', '2024-01-02 03:04:05.000000+00', NULL);"#
        ), "{sql}");
        assert!(
            sql.contains(r#"DELETE FROM "app"."orders" WHERE "id_t" = 2;"#),
            "{sql}"
        );
        assert!(
            sql.contains(r#"UPDATE "app"."orders" SET "note_t" = NULL WHERE "id_t" = 3;"#),
            "{sql}"
        );
        assert!(
            sql.starts_with("--") && sql.contains("BEGIN;") && sql.trim_end().ends_with("COMMIT;")
        );
    }

    #[test]
    fn mysql_strings_with_backslashes_become_hex() {
        let sql = repair_sql(&report(Engine::MySql, vec![diff(DiffKind::Missing, "1")]));
        assert!(sql.contains("_utf8mb4 X'6974277320"), "{sql}");
        assert!(
            sql.contains("`app`.`orders`") && sql.contains("START TRANSACTION;"),
            "{sql}"
        );
    }

    #[test]
    fn resolved_differences_need_no_repair() {
        let mut d = diff(DiffKind::Extra, "2");
        d.status = Some(crate::report::RecheckStatus::Resolved);
        let sql = repair_sql(&report(Engine::Sqlite, vec![d]));
        assert!(
            sql.contains("Nothing to repair") && !sql.contains("DELETE"),
            "{sql}"
        );
    }
}
