//! Expression columns (`--expr TARGET=SQL`): a target column checked against an SQL
//! expression over the source table's columns, evaluated in the source database. Here: the
//! lexical checks made before any database sees the text, and the conversion of the
//! expression's value to the target column's type family in the source engine's dialect,
//! after which it is canonicalized exactly like a column of that family.
use crate::db::Engine;
use crate::schema::{Column, Family, UuidRepr};

/// What `declared` says of an expression column's source side (reports and messages).
pub const DECLARED: &str = "expression";

/// Checks an expression's text before any database sees it: not empty, and one
/// self-contained expression (no `;`, no comment, balanced quotes and parentheses, no
/// statement parameter of the source engine), so that `(expr)` can be placed in every
/// statement verify runs. `engine` is the source's (None: unknown, dialect checks skipped).
/// This is not a security boundary: the expression is the operator's own SQL, run in the
/// verify user's read-only session; the checks turn obvious mistakes into clear errors.
pub fn check(engine: Option<Engine>, text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("the expression is empty".into());
    }
    let mysql = engine == Some(Engine::MySql);
    let pg = engine == Some(Engine::Postgres);
    let sqlite = engine == Some(Engine::Sqlite);
    let b = text.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
    let mut depth = 0i32;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        match c {
            b'\'' | b'"' | b'`' => {
                // MySQL strings take backslash escapes (default sql_mode); PostgreSQL's only
                // in E'...' strings.
                let e_string = pg
                    && c == b'\''
                    && i > 0
                    && matches!(b[i - 1], b'e' | b'E')
                    && (i < 2 || !ident(b[i - 2]));
                let escapes = (mysql && c != b'`') || e_string;
                let what = match c {
                    b'\'' => "a string literal ('...')",
                    b'"' => "a quoted name (\"...\")",
                    _ => "a quoted name (`...`)",
                };
                i = skip_quoted(b, i, c, escapes).ok_or_else(|| format!("{what} is not closed"))?;
                continue;
            }
            b'$' if pg && (i == 0 || !ident(b[i - 1])) => {
                if next.is_some_and(|n| n.is_ascii_digit()) {
                    return Err(
                        "`$1`-style parameters cannot be bound: write the values into the expression"
                            .into(),
                    );
                }
                // Dollar quoting: $$...$$ or $tag$...$tag$.
                let mut j = i + 1;
                while j < b.len() && ident(b[j]) {
                    j += 1;
                }
                if b.get(j) == Some(&b'$') && (j == i + 1 || !b[i + 1].is_ascii_digit()) {
                    let tag = &text[i..=j];
                    let close = text[j + 1..].find(tag).ok_or_else(|| {
                        format!("the dollar-quoted string {tag}...{tag} is not closed")
                    })?;
                    i = j + 1 + close + tag.len();
                    continue;
                }
            }
            b'?' if !pg => {
                return Err(
                    "`?` is a statement parameter on this database: write the values into the expression"
                        .into(),
                );
            }
            b':' | b'@' | b'$' if sqlite && next.is_some_and(ident) => {
                return Err(format!(
                    "`{}name` is a statement parameter on SQLite: write the values into the expression",
                    c as char
                ));
            }
            b';' => {
                return Err("`;` ends a statement: give one expression, not statements".into());
            }
            b'-' if next == Some(b'-') => return Err("comments (`--`) are not allowed".into()),
            b'/' if next == Some(b'*') => return Err("comments (`/*`) are not allowed".into()),
            b'#' if mysql => return Err("comments (`#`) are not allowed".into()),
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced parentheses: a `)` closes nothing".into());
                }
            }
            _ => {}
        }
        i += 1;
    }
    if depth != 0 {
        return Err("unbalanced parentheses: a `(` is not closed".into());
    }
    Ok(())
}

/// The index just past the quote closing the one at `start` (a doubled quote is part of
/// the text), or None when it is not closed.
fn skip_quoted(b: &[u8], start: usize, quote: u8, escapes: bool) -> Option<usize> {
    let mut i = start + 1;
    while i < b.len() {
        if escapes && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

/// Whether the expression names `column` (as a bare word, compared case-insensitively, or
/// quoted with `"` or backticks), outside string literals. Only for notes in the report:
/// a column read by an expression is not reported as merely "not compared".
pub fn mentions(text: &str, column: &str) -> bool {
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' => i = skip_quoted(b, i, b'\'', false).unwrap_or(b.len()),
            q @ (b'"' | b'`') => {
                let (end, inner) = match skip_quoted(b, i, q, false) {
                    Some(end) => (end, &text[i + 1..end - 1]),
                    None => (b.len(), &text[i + 1..]),
                };
                let q = q as char;
                if inner.replace(&format!("{q}{q}"), &q.to_string()) == column {
                    return true;
                }
                i = end;
            }
            c if word(c) => {
                let start = i;
                while i < b.len() && word(b[i]) {
                    i += 1;
                }
                if text[start..i].eq_ignore_ascii_case(column) {
                    return true;
                }
            }
            _ => i += 1,
        }
    }
    false
}

/// The column an expression stands for in the plan: named like its target column (so that
/// differences, reports and repair SQL name the target column), of the target's family.
pub fn plan_column(target: &Column) -> Column {
    Column {
        name: target.name.clone(),
        declared: DECLARED.into(),
        base: String::new(),
        family: target.family.clone(),
        bytewise: true,
    }
}

/// The expression converted, in the source engine's dialect, to the type family of the
/// target column, as storing it there would convert it (integers rounded, decimals taken
/// exactly and then rounded to the target's scale by the canonical form, text as text,
/// timestamps as timestamps ...), and the column that `sql::canon` then canonicalizes it
/// as: the same canonical form as any source column of that family. Not used for SQLite,
/// whose values are normalized in Rust by the target's kind.
pub fn typed(engine: Engine, expr: &str, target: &Column) -> (String, Column) {
    let e = format!("({expr})");
    let cast = |ty: &str| format!("CAST({e} AS {ty})");
    let (sql, family) = match engine {
        Engine::Postgres => match &target.family {
            Family::Integer { unsigned: false } => (cast("bigint"), target.family.clone()),
            // Beyond bigint: a numeric without fractional digits prints the same digits.
            Family::Integer { unsigned: true } => (cast("numeric(20, 0)"), target.family.clone()),
            Family::Decimal { .. } => (cast("numeric"), Family::Decimal { scale: None }),
            Family::Float { .. } => (cast("float8"), Family::Float { single: false }),
            Family::Bool => (cast("boolean"), Family::Bool),
            Family::Text => (cast("text"), Family::Text),
            Family::Bytes => (cast("bytea"), Family::Bytes),
            Family::Uuid(_) => (cast("uuid"), Family::Uuid(UuidRepr::Native)),
            // The target's own JSON type when it is PostgreSQL's (then the texts match and
            // equal rows hash alike); jsonb's normalized text otherwise.
            Family::Json => match target.base.as_str() {
                "json" => (cast("json"), Family::Json),
                _ => (cast("jsonb"), Family::Json),
            },
            Family::Date => (cast("date"), Family::Date),
            Family::Time { .. } => (cast("time"), Family::Time { precision: 6 }),
            Family::Timestamp { tz, .. } => (
                cast(if *tz { "timestamptz" } else { "timestamp" }),
                Family::Timestamp {
                    tz: *tz,
                    precision: 6,
                },
            ),
            Family::Other => (e, Family::Other),
        },
        Engine::MySql => match &target.family {
            Family::Integer { unsigned } => (
                cast(if *unsigned { "UNSIGNED" } else { "SIGNED" }),
                target.family.clone(),
            ),
            Family::Decimal { scale } => {
                // MySQL's largest decimal scale; the canonical form rounds to the target's.
                let s = scale.unwrap_or(30).min(30);
                (
                    cast(&format!("DECIMAL(65, {s})")),
                    Family::Decimal { scale: Some(s) },
                )
            }
            // The canonical double form adds 0E0, which makes any number a double.
            Family::Float { .. } => (e, Family::Float { single: false }),
            Family::Date => (cast("DATE"), Family::Date),
            Family::Time { .. } => (cast("TIME(6)"), Family::Time { precision: 6 }),
            Family::Timestamp { .. } => (
                cast("DATETIME(6)"),
                Family::Timestamp {
                    tz: false,
                    precision: 6,
                },
            ),
            // Text (CONVERT ... USING utf8mb4), bytes (HEX), booleans (<> 0) and JSON
            // (CAST AS CHAR) take any value as it is; a UUID is read from its text.
            Family::Uuid(_) => (e, Family::Text),
            other => (e, other.clone()),
        },
        Engine::Sqlite => (e, target.family.clone()),
    };
    let column = Column {
        name: target.name.clone(),
        declared: DECLARED.into(),
        base: String::new(),
        family,
        bytewise: true,
    };
    (sql, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obvious_mistakes_are_refused_with_the_reason() {
        let pg = Some(Engine::Postgres);
        let my = Some(Engine::MySql);
        let lite = Some(Engine::Sqlite);
        for ok in [
            "first_name || ' ' || last_name",
            "split_part(name, ';', 1)",
            "lower(\"E;mail\")",
            "CAST(price * 100 AS BIGINT)",
            "'it''s' || x",
            "E'it\\'s;' || x",
            "$$a;b$$ || x",
            "$t$a;b$t$ || x",
            "doc ? 'key'",
            "x::text",
        ] {
            check(pg, ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        check(my, "CONCAT(first, ' ', last, 'it\\'s;')").unwrap();
        check(my, "SUBSTRING_INDEX(`na;me`, ' ', 1)").unwrap();
        check(lite, "first || ' ' || last").unwrap();
        for (engine, bad, why) in [
            (pg, "", "empty"),
            (pg, "   ", "empty"),
            (pg, "lower(email); DROP TABLE x", "`;`"),
            (pg, "lower(email) -- note", "comments"),
            (pg, "lower(email) /* note */", "comments"),
            (my, "lower(email) # note", "comments"),
            (pg, "lower(email", "not closed"),
            (pg, "lower(email))", "closes nothing"),
            (pg, "a) , (b", "closes nothing"),
            (pg, "'abc", "not closed"),
            (pg, "\"abc", "not closed"),
            (pg, "x + $1", "parameters"),
            (pg, "$$abc", "not closed"),
            (my, "x + ?", "parameter"),
            (my, "'it\\'s", "not closed"),
            (lite, "x + :y", "parameter"),
            (None, "a; b", "`;`"),
        ] {
            let e = check(engine, bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn mentions_finds_names_outside_literals() {
        assert!(mentions("first_name || ' ' || last_name", "last_name"));
        assert!(mentions("LOWER(Email)", "email"));
        assert!(mentions("lower(\"Odd Name\")", "Odd Name"));
        assert!(mentions("SUBSTRING_INDEX(`name`, ' ', 1)", "name"));
        assert!(!mentions("'name' || x", "name"));
        assert!(!mentions("first_name", "name"));
    }

    #[test]
    fn expressions_take_the_target_family_per_dialect() {
        let target = |family: Family, base: &str| Column {
            name: "t".into(),
            declared: base.into(),
            base: base.into(),
            family,
            bytewise: true,
        };
        let (sql, col) = typed(
            Engine::Postgres,
            "price * 100",
            &target(Family::Integer { unsigned: false }, "int8"),
        );
        assert_eq!(sql, "CAST((price * 100) AS bigint)");
        assert_eq!(col.family, Family::Integer { unsigned: false });
        let (sql, col) = typed(
            Engine::MySql,
            "price / 3",
            &target(Family::Decimal { scale: Some(2) }, ""),
        );
        assert_eq!(sql, "CAST((price / 3) AS DECIMAL(65, 2))");
        assert_eq!(col.family, Family::Decimal { scale: Some(2) });
        let (sql, col) = typed(
            Engine::Postgres,
            "x",
            &target(
                Family::Timestamp {
                    tz: true,
                    precision: 3,
                },
                "timestamptz",
            ),
        );
        assert_eq!(sql, "CAST((x) AS timestamptz)");
        assert_eq!(
            col.family,
            Family::Timestamp {
                tz: true,
                precision: 6
            }
        );
        let (sql, col) = typed(
            Engine::MySql,
            "CONCAT(a, b)",
            &target(Family::Uuid(UuidRepr::Native), "uuid"),
        );
        assert_eq!((sql.as_str(), col.family), ("(CONCAT(a, b))", Family::Text));
    }
}
