//! Column types as each engine reports them, reduced to the families verify knows how to
//! normalize, and the catalog queries that read them.
use serde::{Deserialize, Serialize};

use crate::db::{Db, Engine, Param};
use crate::error::{Side, VerifyError};

/// How a UUID is stored on one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UuidRepr {
    /// PostgreSQL `uuid`, MariaDB `UUID`.
    Native,
    /// 16 raw bytes (`BINARY(16)`, `bytea`, SQLite blob).
    Binary,
}

/// What a column holds, independent of the engine's spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Family {
    Integer {
        unsigned: bool,
    },
    /// Exact decimal; `scale` is None when the column does not fix one.
    Decimal {
        scale: Option<u32>,
    },
    Float {
        single: bool,
    },
    Bool,
    Text,
    Bytes,
    Uuid(UuidRepr),
    Date,
    /// Time of day with `precision` fractional digits (0..=6).
    Time {
        precision: u32,
    },
    /// Date and time; `tz` when the engine stores an instant (converted to UTC).
    Timestamp {
        tz: bool,
        precision: u32,
    },
    Json,
    /// Anything else (arrays, geometry, intervals, enums...): not comparable.
    Other,
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// The type as the engine prints it, for messages.
    pub declared: String,
    /// PostgreSQL base type name, used to cast bound key values; empty elsewhere.
    pub base: String,
    pub family: Family,
    /// The column sorts in the byte order of its canonical text (binary collations, UUID
    /// types that sort by bytes, numbers and dates by value). Key columns that do not are
    /// sorted by a binary-collated expression instead, so both sides cut the same ranges.
    #[serde(default)]
    pub bytewise: bool,
}

/// PostgreSQL collations that sort by bytes (code points, for UTF-8).
fn pg_collation_is_bytewise(name: &str) -> bool {
    matches!(name, "C" | "POSIX" | "ucs_basic" | "pg_c_utf8") || name.starts_with("C.")
}

/// Whether a column of `family` with `collation` sorts by its canonical text's bytes.
fn bytewise(engine: Engine, family: &Family, collation: &str) -> bool {
    match family {
        Family::Text => match engine {
            Engine::Postgres => pg_collation_is_bytewise(collation),
            // `_bin` collations of the UTF-8 character sets compare code points; SQLite's
            // default BINARY collation compares bytes.
            Engine::MySql => collation.starts_with("utf8") && collation.ends_with("_bin"),
            Engine::Sqlite => true,
        },
        // MariaDB's UUID type sorts by its time fields, not its bytes.
        Family::Uuid(UuidRepr::Native) => engine != Engine::MySql,
        _ => true,
    }
}

/// `schema.table` split; the schema is optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub schema: Option<String>,
    pub name: String,
}

impl TableName {
    pub fn parse(s: &str) -> TableName {
        match s.split_once('.') {
            Some((schema, name)) => TableName {
                schema: Some(schema.to_string()),
                name: name.to_string(),
            },
            None => TableName {
                schema: None,
                name: s.to_string(),
            },
        }
    }
}

/// Scale of a PostgreSQL `numeric` typmod, or None when the column does not fix one.
fn pg_numeric_scale(typmod: i32) -> Option<u32> {
    (typmod >= 4).then(|| ((typmod - 4) & 0xffff) as u32)
}

/// Family of a PostgreSQL column from its base type name and typmod.
pub fn classify_pg(typname: &str, typmod: i32) -> Family {
    let precision = if typmod >= 0 { typmod.min(6) as u32 } else { 6 };
    match typname {
        "int2" | "int4" | "int8" | "oid" => Family::Integer { unsigned: false },
        "numeric" => Family::Decimal {
            scale: pg_numeric_scale(typmod),
        },
        "float4" => Family::Float { single: true },
        "float8" => Family::Float { single: false },
        "bool" => Family::Bool,
        "text" | "varchar" | "bpchar" | "name" | "citext" => Family::Text,
        "bytea" => Family::Bytes,
        "uuid" => Family::Uuid(UuidRepr::Native),
        "date" => Family::Date,
        "time" => Family::Time { precision },
        "timestamp" => Family::Timestamp {
            tz: false,
            precision,
        },
        "timestamptz" => Family::Timestamp {
            tz: true,
            precision,
        },
        "json" | "jsonb" => Family::Json,
        _ => Family::Other,
    }
}

/// Family of a MySQL/MariaDB column from `DATA_TYPE`, `COLUMN_TYPE` and the catalog numbers.
pub fn classify_mysql(
    data_type: &str,
    column_type: &str,
    scale: Option<u32>,
    datetime_precision: Option<u32>,
) -> Family {
    let column_type = column_type.to_ascii_lowercase();
    let precision = datetime_precision.unwrap_or(0).min(6);
    match data_type.to_ascii_lowercase().as_str() {
        // MySQL's BOOLEAN is TINYINT(1); that spelling is the only sign of intent it keeps.
        "tinyint" if column_type.starts_with("tinyint(1)") => Family::Bool,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => {
            Family::Integer {
                unsigned: column_type.contains("unsigned"),
            }
        }
        "bit" if column_type == "bit(1)" => Family::Bool,
        "decimal" | "numeric" => Family::Decimal { scale },
        "float" => Family::Float { single: true },
        "double" | "real" => Family::Float { single: false },
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" => {
            Family::Text
        }
        "binary" if column_type == "binary(16)" => Family::Uuid(UuidRepr::Binary),
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => Family::Bytes,
        "uuid" => Family::Uuid(UuidRepr::Native),
        "date" => Family::Date,
        "time" => Family::Time { precision },
        "datetime" => Family::Timestamp {
            tz: false,
            precision,
        },
        "timestamp" => Family::Timestamp {
            tz: true,
            precision,
        },
        "json" => Family::Json,
        _ => Family::Other,
    }
}

/// Family of a SQLite column from its declared type, following SQLite's affinity rules
/// where they apply and the common spellings (`BOOLEAN`, `DATETIME`, `UUID`) where they do not.
pub fn classify_sqlite(declared: &str) -> Family {
    let d = declared.to_ascii_uppercase();
    let scale = || {
        let inner = d.split_once('(')?.1.split_once(')')?.0;
        inner.split_once(',')?.1.trim().parse().ok()
    };
    if d.contains("BOOL") {
        Family::Bool
    } else if d.contains("UUID") || d.contains("GUID") {
        Family::Uuid(UuidRepr::Native)
    } else if d.contains("INT") {
        Family::Integer { unsigned: false }
    } else if d.contains("DATETIME") || d.contains("TIMESTAMP") {
        Family::Timestamp {
            tz: false,
            precision: 6,
        }
    } else if d.contains("DATE") {
        Family::Date
    } else if d.contains("TIME") {
        Family::Time { precision: 6 }
    } else if d.contains("JSON") {
        Family::Json
    } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
        Family::Text
    } else if d.contains("BLOB") || d.contains("BINARY") {
        Family::Bytes
    } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
        Family::Float { single: false }
    } else if d.contains("DEC") || d.contains("NUM") {
        Family::Decimal { scale: scale() }
    } else {
        Family::Other
    }
}

/// Reads the columns of `table` on one side, in table order; an empty list means no table.
pub async fn columns(db: &Db, table: &TableName) -> Result<Vec<Column>, VerifyError> {
    let ctx = "reading the table's columns";
    let schema = table.schema.clone();
    match db.engine {
        Engine::Postgres => {
            let sql = "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), bt.typname::text, \
                 (CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END)::text, \
                 coalesce(nullif(co.collname::text, 'default'), \
                   (SELECT datcollate::text FROM pg_database WHERE datname = current_database())) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
                 JOIN pg_type t ON t.oid = a.atttypid \
                 JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END \
                 LEFT JOIN pg_collation co ON co.oid = a.attcollation \
                 WHERE c.relname = $1 AND n.nspname = coalesce($2, current_schema()) \
                 AND c.relkind IN ('r', 'v', 'm', 'p', 'f') ORDER BY a.attnum";
            let params = vec![Param::Text(table.name.clone()), opt_param(schema)];
            let rows = db.text_rows(sql, &params, ctx).await?;
            Ok(rows
                .into_iter()
                .map(|r| {
                    let typmod: i32 = cell(&r, 3).parse().unwrap_or(-1);
                    let base = cell(&r, 2);
                    let family = classify_pg(&base, typmod);
                    Column {
                        name: cell(&r, 0),
                        declared: cell(&r, 1),
                        bytewise: bytewise(Engine::Postgres, &family, &cell(&r, 4)),
                        family,
                        base,
                    }
                })
                .collect())
        }
        Engine::MySql => {
            let sql = "SELECT CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR), CAST(COLUMN_TYPE AS CHAR), \
                 CAST(NUMERIC_SCALE AS CHAR), CAST(DATETIME_PRECISION AS CHAR), CAST(COLLATION_NAME AS CHAR) \
                 FROM information_schema.COLUMNS WHERE TABLE_NAME = ? AND TABLE_SCHEMA = COALESCE(?, DATABASE()) \
                 ORDER BY ORDINAL_POSITION";
            let params = vec![Param::Text(table.name.clone()), opt_param(schema)];
            let rows = db.text_rows(sql, &params, ctx).await?;
            Ok(rows
                .into_iter()
                .map(|r| {
                    let num = |i: usize| r.get(i).cloned().flatten().and_then(|s| s.parse().ok());
                    let family = classify_mysql(&cell(&r, 1), &cell(&r, 2), num(3), num(4));
                    Column {
                        name: cell(&r, 0),
                        declared: cell(&r, 2),
                        base: String::new(),
                        bytewise: bytewise(Engine::MySql, &family, &cell(&r, 5)),
                        family,
                    }
                })
                .collect())
        }
        Engine::Sqlite => {
            let sql = "SELECT name, type FROM pragma_table_info(?)";
            let rows = db
                .text_rows(sql, &[Param::Text(table.name.clone())], ctx)
                .await?;
            Ok(rows
                .into_iter()
                .map(|r| {
                    let family = classify_sqlite(&cell(&r, 1));
                    Column {
                        name: cell(&r, 0),
                        declared: cell(&r, 1),
                        base: String::new(),
                        bytewise: bytewise(Engine::Sqlite, &family, ""),
                        family,
                    }
                })
                .collect())
        }
    }
}

/// The catalog's row estimate for progress (None when unknown or filtered by `where`).
pub async fn estimate_rows(
    db: &Db,
    table: &TableName,
    quoted: &str,
) -> Result<Option<u64>, VerifyError> {
    let ctx = "reading the row estimate";
    let rows = match db.engine {
        Engine::Postgres => {
            db.text_rows(
                "SELECT c.reltuples::bigint::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relname = $1 AND n.nspname = coalesce($2, current_schema())",
                &[Param::Text(table.name.clone()), opt_param(table.schema.clone())],
                ctx,
            )
            .await?
        }
        Engine::MySql => {
            db.text_rows(
                "SELECT CAST(TABLE_ROWS AS CHAR) FROM information_schema.TABLES \
                 WHERE TABLE_NAME = ? AND TABLE_SCHEMA = COALESCE(?, DATABASE())",
                &[Param::Text(table.name.clone()), opt_param(table.schema.clone())],
                ctx,
            )
            .await?
        }
        // A local file: counting is cheap next to the scan that follows.
        Engine::Sqlite => {
            db.text_rows(&format!("SELECT CAST(count(*) AS TEXT) FROM {quoted}"), &[], ctx)
                .await?
        }
    };
    Ok(rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .map(|n| n as u64))
}

fn opt_param(v: Option<String>) -> Param {
    match v {
        Some(s) => Param::Text(s),
        None => Param::Null,
    }
}

fn cell(row: &[Option<String>], i: usize) -> String {
    row.get(i).cloned().flatten().unwrap_or_default()
}

/// The error for a table that has no columns (does not exist) on `side`.
pub fn not_found(side: Side, table: &str, url: &str) -> VerifyError {
    VerifyError::TableNotFound {
        side,
        table: table.to_string(),
        url: url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_types() {
        assert_eq!(
            classify_pg("numeric", (10 << 16) | (2 + 4)),
            Family::Decimal { scale: Some(2) }
        );
        assert_eq!(classify_pg("numeric", -1), Family::Decimal { scale: None });
        assert_eq!(
            classify_pg("timestamptz", -1),
            Family::Timestamp {
                tz: true,
                precision: 6
            }
        );
        assert_eq!(
            classify_pg("timestamp", 3),
            Family::Timestamp {
                tz: false,
                precision: 3
            }
        );
        assert_eq!(classify_pg("uuid", -1), Family::Uuid(UuidRepr::Native));
        assert_eq!(classify_pg("int4[]", -1), Family::Other);
    }

    #[test]
    fn mysql_types() {
        assert_eq!(
            classify_mysql("tinyint", "tinyint(1)", Some(0), None),
            Family::Bool
        );
        assert_eq!(
            classify_mysql("bigint", "bigint(20) unsigned", Some(0), None),
            Family::Integer { unsigned: true }
        );
        assert_eq!(
            classify_mysql("datetime", "datetime", None, Some(0)),
            Family::Timestamp {
                tz: false,
                precision: 0
            }
        );
        assert_eq!(
            classify_mysql("binary", "binary(16)", None, None),
            Family::Uuid(UuidRepr::Binary)
        );
        assert_eq!(
            classify_mysql("decimal", "decimal(12,4)", Some(4), None),
            Family::Decimal { scale: Some(4) }
        );
    }

    #[test]
    fn sqlite_types_follow_affinity() {
        assert_eq!(
            classify_sqlite("INTEGER"),
            Family::Integer { unsigned: false }
        );
        assert_eq!(classify_sqlite("boolean"), Family::Bool);
        assert_eq!(classify_sqlite("VARCHAR(20)"), Family::Text);
        assert_eq!(
            classify_sqlite("DECIMAL(10, 2)"),
            Family::Decimal { scale: Some(2) }
        );
        assert_eq!(
            classify_sqlite("DATETIME"),
            Family::Timestamp {
                tz: false,
                precision: 6
            }
        );
        assert_eq!(
            classify_sqlite("DOUBLE PRECISION"),
            Family::Float { single: false }
        );
        assert_eq!(classify_sqlite(""), Family::Other);
    }

    #[test]
    fn byte_order_by_collation() {
        assert!(bytewise(Engine::Postgres, &Family::Text, "C.UTF-8"));
        assert!(!bytewise(Engine::Postgres, &Family::Text, "en_US.UTF-8"));
        assert!(bytewise(Engine::MySql, &Family::Text, "utf8mb4_bin"));
        assert!(!bytewise(
            Engine::MySql,
            &Family::Text,
            "utf8mb4_general_ci"
        ));
        assert!(!bytewise(
            Engine::MySql,
            &Family::Uuid(UuidRepr::Native),
            ""
        ));
        assert!(bytewise(
            Engine::Postgres,
            &Family::Uuid(UuidRepr::Native),
            ""
        ));
        assert!(bytewise(
            Engine::MySql,
            &Family::Integer { unsigned: false },
            ""
        ));
    }

    #[test]
    fn table_names_split_on_the_first_dot() {
        assert_eq!(
            TableName::parse("app.orders"),
            TableName {
                schema: Some("app".into()),
                name: "orders".into()
            }
        );
        assert_eq!(TableName::parse("orders").schema, None);
    }
}
