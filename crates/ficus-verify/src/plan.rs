//! The comparison plan: which source column pairs with which target column, under which
//! canonical kind, decided (and every incompatibility reported) before any row is read.
use serde::{Deserialize, Serialize};

use crate::error::{Side, TypeMismatch, VerifyError};
use crate::expr;
use crate::job::Job;
use crate::schema::{Column, Family};

/// The canonical form both sides of a column pair are reduced to before hashing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Kind {
    /// Decimal digits with a sign.
    Integer,
    /// Plain decimal, trailing fractional zeros trimmed, rounded (half away from zero) to
    /// `scale` when one side has more digits than the other keeps.
    Decimal { scale: Option<u32> },
    /// IEEE double (single when either side is single precision), compared exactly or
    /// within the column's tolerance.
    Float { single: bool },
    /// `t` / `f`.
    Bool,
    /// UTF-8 text.
    Text,
    /// Lowercase hex.
    Bytes,
    /// Lowercase hyphenated hex.
    Uuid,
    /// `YYYY-MM-DD`.
    Date,
    /// Microseconds since midnight, rounded to the common `precision`.
    Time { precision: u32 },
    /// Microseconds since the Unix epoch (UTC for time-zone-aware types), rounded to the
    /// common `precision`.
    Timestamp { precision: u32 },
    /// JSON text; rows compare as parsed JSON values.
    Json,
}

impl Kind {
    /// Kinds whose canonical text cannot contain `,`, so a comma terminates the field;
    /// the others are length-prefixed.
    pub fn restricted_alphabet(self) -> bool {
        !matches!(self, Kind::Text | Kind::Json)
    }

    pub fn numeric(self) -> bool {
        matches!(
            self,
            Kind::Integer | Kind::Decimal { .. } | Kind::Float { .. }
        )
    }

    /// Keys must order the same way on every engine for segments to line up (other key
    /// kinds are still exact: their unmatched rows are confirmed by key lookups).
    pub fn key_capable(self) -> bool {
        matches!(self, Kind::Integer | Kind::Text | Kind::Uuid | Kind::Date)
    }
}

/// The pair's kind, or why the two families cannot be compared.
pub fn unify(src: &Family, tgt: &Family) -> Result<Kind, String> {
    use Family as F;
    let scale_of = |f: &Family| match f {
        F::Decimal { scale } => *scale,
        _ => None,
    };
    Ok(match (src, tgt) {
        (F::Integer { .. }, F::Integer { .. }) => Kind::Integer,
        (F::Float { single: a }, F::Float { single: b }) => Kind::Float { single: *a || *b },
        (F::Float { single }, F::Integer { .. } | F::Decimal { .. })
        | (F::Integer { .. } | F::Decimal { .. }, F::Float { single }) => {
            Kind::Float { single: *single }
        }
        (F::Integer { .. } | F::Decimal { .. }, F::Integer { .. } | F::Decimal { .. }) => {
            let scale = match (scale_of(src), scale_of(tgt)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            Kind::Decimal { scale }
        }
        (F::Bool, F::Bool) => Kind::Bool,
        (F::Text, F::Text) => Kind::Text,
        (F::Bytes, F::Bytes) => Kind::Bytes,
        (F::Uuid(_), F::Uuid(_) | F::Text | F::Bytes) | (F::Text | F::Bytes, F::Uuid(_)) => {
            Kind::Uuid
        }
        (F::Json, F::Json | F::Text) | (F::Text, F::Json) => Kind::Json,
        (F::Date, F::Date) => Kind::Date,
        (F::Time { precision: a }, F::Time { precision: b }) => Kind::Time {
            precision: *a.min(b),
        },
        (F::Timestamp { precision: a, .. }, F::Timestamp { precision: b, .. }) => Kind::Timestamp {
            precision: *a.min(b),
        },
        (F::Other, _) | (_, F::Other) => {
            return Err("this type is not supported by verify; leave the column out".into())
        }
        _ => return Err("these types hold different kinds of values".into()),
    })
}

/// One compared column pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnPlan {
    /// The source column; for an expression column, a stand-in named like the target
    /// column, of the target's family (`expr::plan_column`).
    pub source: Column,
    pub target: Column,
    pub kind: Kind,
    /// Absolute tolerance (numeric kinds only).
    pub tolerance: Option<f64>,
    /// An expression column: the SQL expression evaluated on the source instead of a
    /// source column (`--expr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<String>,
}

impl ColumnPlan {
    pub fn column(&self, side: Side) -> &Column {
        match side {
            Side::Source => &self.source,
            Side::Target => &self.target,
        }
    }
}

/// All compared columns: the key first, then the others, in source table order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub key: Vec<ColumnPlan>,
    pub cols: Vec<ColumnPlan>,
    /// Columns present on one side only (not compared), as notes for the report.
    pub skipped: Vec<String>,
}

impl Plan {
    /// Key columns then compared columns; row values use this order everywhere.
    pub fn all(&self) -> impl Iterator<Item = &ColumnPlan> {
        self.key.iter().chain(self.cols.iter())
    }

    /// Whether a key orders identically on every engine (integers, dates), so that a row
    /// missing from one segment cannot sit in another: then no confirmation lookups.
    pub fn key_order_is_universal(&self) -> bool {
        self.key
            .iter()
            .all(|c| matches!(c.kind, Kind::Integer | Kind::Date))
    }
}

fn find<'a>(cols: &'a [Column], name: &str) -> Option<&'a Column> {
    cols.iter().find(|c| c.name == name)
}

fn names(cols: &[Column]) -> String {
    cols.iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn bad_expr(column: &str, expr: &str, reason: String) -> VerifyError {
    VerifyError::BadExpression {
        column: column.to_string(),
        expr: expr.to_string(),
        reason,
    }
}

/// The target columns of `--expr`, each with its expression, in the order given.
fn expression_targets(
    job: &Job,
    tgt_cols: &[Column],
    missing: &dyn Fn(Side, &str, &'static str, &'static str) -> VerifyError,
) -> Result<Vec<(Column, String)>, VerifyError> {
    let mut out = Vec::new();
    for (t, e) in &job.expr {
        let c = find(tgt_cols, t).ok_or_else(|| {
            missing(
                Side::Target,
                t,
                "--expr",
                "the left side of --expr is a target column; the right side an SQL expression over source columns",
            )
        })?;
        out.push((c.clone(), e.clone()));
    }
    Ok(out)
}

/// Builds the plan, or the first error that names what to change.
pub fn build(job: &Job, src_cols: &[Column], tgt_cols: &[Column]) -> Result<Plan, VerifyError> {
    let missing = |side: Side, column: &str, role: &'static str, fix: &'static str| {
        let (table, cols) = match side {
            Side::Source => (&job.source.table, src_cols),
            Side::Target => (&job.target.table, tgt_cols),
        };
        VerifyError::ColumnNotFound {
            side,
            table: table.clone(),
            column: column.to_string(),
            role,
            available: names(cols),
            fix,
        }
    };
    let pair = |name: &str, role: &'static str| -> Result<(Column, Column), VerifyError> {
        let s = find(src_cols, name).ok_or_else(|| {
            missing(
                Side::Source,
                name,
                role,
                "use the source table's column names",
            )
        })?;
        let tname = job.target_name(name);
        let t = find(tgt_cols, tname).ok_or_else(|| {
            missing(
                Side::Target,
                tname,
                role,
                "map renamed columns with --map SOURCE=TARGET",
            )
        })?;
        Ok((s.clone(), t.clone()))
    };
    for (s, t) in &job.map {
        find(src_cols, s).ok_or_else(|| {
            missing(
                Side::Source,
                s,
                "--map",
                "the left side of --map is a source column",
            )
        })?;
        find(tgt_cols, t).ok_or_else(|| {
            missing(
                Side::Target,
                t,
                "--map",
                "the right side of --map is a target column",
            )
        })?;
    }
    for name in &job.exclude {
        find(src_cols, name).ok_or_else(|| {
            missing(
                Side::Source,
                name,
                "--exclude",
                "exclude source column names",
            )
        })?;
    }

    let exprs = expression_targets(job, tgt_cols, &missing)?;
    let is_expr = |target: &str| exprs.iter().any(|(t, _)| t.name == target);
    for (s, t) in &job.map {
        if let Some((_, e)) = exprs.iter().find(|(c, _)| &c.name == t) {
            return Err(bad_expr(
                t,
                e,
                format!("target column `{t}` is also the right side of --map {s}={t}; keep one of the two"),
            ));
        }
    }

    let mut key_pairs = Vec::new();
    for k in &job.key {
        let tname = job.target_name(k);
        if let Some((_, e)) = exprs.iter().find(|(c, _)| c.name == tname) {
            return Err(bad_expr(
                tname,
                e,
                format!(
                    "target column `{tname}` is a key column (--key {k}), and keys cannot be \
                     expressions: rows are matched by the key as stored on both sides"
                ),
            ));
        }
        key_pairs.push(pair(k, "--key")?);
    }
    let mut skipped = Vec::new();
    let mut col_pairs = Vec::new();
    if job.columns.is_empty() {
        for s in src_cols {
            if job.key.contains(&s.name) || job.exclude.contains(&s.name) {
                continue;
            }
            let tname = job.target_name(&s.name);
            if is_expr(tname) {
                skipped.push(format!(
                    "source column `{}` is not compared by name: target column `{tname}` is checked against its --expr",
                    s.name
                ));
                continue;
            }
            match find(tgt_cols, tname) {
                Some(t) => col_pairs.push((s.clone(), t.clone())),
                None => {
                    let readers: Vec<&str> = exprs
                        .iter()
                        .filter(|(_, e)| expr::mentions(e, &s.name))
                        .map(|(t, _)| t.name.as_str())
                        .collect();
                    skipped.push(if readers.is_empty() {
                        format!(
                            "source column `{}` has no target column and is not compared (map it with --map {}=NEW)",
                            s.name, s.name
                        )
                    } else {
                        format!(
                            "source column `{}` has no target column of its own; it is read by the --expr of {}",
                            s.name,
                            readers
                                .iter()
                                .map(|t| format!("`{t}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    });
                }
            }
        }
        for t in tgt_cols {
            let used = key_pairs
                .iter()
                .chain(col_pairs.iter())
                .any(|(_, c)| c.name == t.name)
                || is_expr(&t.name);
            let excluded = job.exclude.iter().any(|e| job.target_name(e) == t.name);
            if !used && !excluded {
                skipped.push(format!(
                    "target column `{}` has no source column and is not compared",
                    t.name
                ));
            }
        }
    } else {
        for name in &job.columns {
            if job.key.contains(name) {
                continue;
            }
            let tname = job.target_name(name);
            if let Some((_, e)) = exprs.iter().find(|(c, _)| c.name == tname) {
                return Err(bad_expr(
                    tname,
                    e,
                    format!(
                        "target column `{tname}` is also compared with source column `{name}` \
                         (--columns); an expression replaces that comparison: leave `{name}` out of --columns"
                    ),
                ));
            }
            col_pairs.push(pair(name, "--columns")?);
        }
    }
    // Rows are reported by source column name, and an expression column by its target
    // column's name: the two must not meet.
    for (s, t) in key_pairs.iter().chain(col_pairs.iter()) {
        if let Some((_, e)) = exprs.iter().find(|(c, _)| c.name == s.name) {
            return Err(bad_expr(
                &s.name,
                e,
                format!(
                    "source column `{}` is compared with target column `{}` while target column `{}` \
                     is checked against this expression, and differences could not tell them apart; \
                     leave `{}` out (--exclude) or compare it differently",
                    s.name, t.name, s.name, s.name
                ),
            ));
        }
    }

    let mut mismatches = Vec::new();
    let mut plan_of =
        |(s, t): (Column, Column), expr: Option<String>| match unify(&s.family, &t.family) {
            Ok(kind) => Some(ColumnPlan {
                tolerance: None,
                source: s,
                target: t,
                kind,
                expr,
            }),
            Err(reason) => {
                mismatches.push(TypeMismatch {
                    source_column: match &expr {
                        Some(e) => e.clone(),
                        None => s.name.clone(),
                    },
                    source_type: s.declared.clone(),
                    target_column: t.name.clone(),
                    target_type: t.declared.clone(),
                    reason,
                });
                None
            }
        };
    let key: Vec<ColumnPlan> = key_pairs
        .into_iter()
        .filter_map(|p| plan_of(p, None))
        .collect();
    let mut cols: Vec<ColumnPlan> = col_pairs
        .into_iter()
        .filter_map(|p| plan_of(p, None))
        .collect();
    // Expression columns: the target column's own kind (the stand-in has its family).
    cols.extend(
        exprs
            .into_iter()
            .filter_map(|(t, e)| plan_of((expr::plan_column(&t), t), Some(e))),
    );
    if !mismatches.is_empty() {
        return Err(VerifyError::IncompatibleTypes(mismatches));
    }
    for k in &key {
        if !k.kind.key_capable() {
            return Err(VerifyError::UnsupportedKey {
                column: k.source.name.clone(),
                ty: k.source.declared.clone(),
                reason: "keys must be integers, text, UUIDs or dates".into(),
            });
        }
    }
    for (name, tol) in &job.tolerance {
        if job.key.contains(name) {
            return Err(VerifyError::BadTolerance {
                column: name.clone(),
                reason: "key columns are compared exactly".into(),
            });
        }
        let Some(c) = cols.iter_mut().find(|c| &c.source.name == name) else {
            return Err(VerifyError::BadTolerance {
                column: name.clone(),
                reason: "not a compared column (use the source column name, or the target \
                         column of an --expr)"
                    .into(),
            });
        };
        if !c.kind.numeric() {
            return Err(VerifyError::BadTolerance {
                column: name.clone(),
                reason: format!(
                    "tolerance applies to numeric columns; this one is {}",
                    c.source.declared
                ),
            });
        }
        c.tolerance = Some(*tol);
    }
    Ok(Plan { key, cols, skipped })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Endpoint;
    use crate::schema::UuidRepr;

    fn col(name: &str, family: Family) -> Column {
        Column {
            name: name.into(),
            declared: format!("{family:?}"),
            base: String::new(),
            family,
            bytewise: true,
        }
    }

    fn job() -> Job {
        let ep = |t: &str| Endpoint {
            url: "sqlite://x".into(),
            table: t.into(),
            where_clause: None,
        };
        Job::new(ep("s"), ep("t"), vec!["id".into()])
    }

    const INT: Family = Family::Integer { unsigned: false };

    #[test]
    fn numeric_families_unify_to_the_coarser_scale() {
        let d = |s| Family::Decimal { scale: s };
        assert_eq!(
            unify(&d(Some(4)), &d(Some(2))),
            Ok(Kind::Decimal { scale: Some(2) })
        );
        assert_eq!(
            unify(&d(None), &d(Some(2))),
            Ok(Kind::Decimal { scale: Some(2) })
        );
        assert_eq!(
            unify(&INT, &d(Some(2))),
            Ok(Kind::Decimal { scale: Some(2) })
        );
        assert_eq!(
            unify(&Family::Float { single: true }, &d(None)),
            Ok(Kind::Float { single: true })
        );
        assert_eq!(
            unify(
                &Family::Timestamp {
                    tz: true,
                    precision: 6
                },
                &Family::Timestamp {
                    tz: false,
                    precision: 0
                }
            ),
            Ok(Kind::Timestamp { precision: 0 })
        );
        assert_eq!(
            unify(&Family::Uuid(UuidRepr::Binary), &Family::Text),
            Ok(Kind::Uuid)
        );
        assert!(unify(&Family::Text, &INT).is_err());
        assert!(unify(&Family::Bool, &INT).is_err());
        assert!(unify(&Family::Other, &Family::Other).is_err());
    }

    #[test]
    fn every_incompatible_pair_is_named() {
        let src = [
            col("id", INT),
            col("a", Family::Text),
            col("b", Family::Date),
            col("c", INT),
        ];
        let tgt = [
            col("id", INT),
            col("a", INT),
            col("b", Family::Bool),
            col("c", INT),
        ];
        let err = build(&job(), &src, &tgt).unwrap_err().to_string();
        assert!(
            err.contains("`a`") && err.contains("`b`") && !err.contains("`c`"),
            "{err}"
        );
    }

    #[test]
    fn default_columns_skip_one_sided_ones_and_follow_the_map() {
        let src = [col("id", INT), col("old", Family::Text), col("gone", INT)];
        let tgt = [col("id", INT), col("new", Family::Text), col("added", INT)];
        let mut j = job();
        j.map = vec![("old".into(), "new".into())];
        let plan = build(&j, &src, &tgt).unwrap();
        assert_eq!(plan.cols.len(), 1);
        assert_eq!(plan.cols[0].target.name, "new");
        assert_eq!(plan.skipped.len(), 2, "{:?}", plan.skipped);
    }

    #[test]
    fn expression_columns_join_the_compared_set() {
        let dec = |s| Family::Decimal { scale: Some(s) };
        let src = [
            col("id", INT),
            col("name", Family::Text),
            col("email", Family::Text),
            col("price", dec(2)),
            col("note", Family::Text),
        ];
        let tgt = [
            col("id", INT),
            col("first_name", Family::Text),
            col("email", Family::Text),
            col("price_cents", INT),
            col("note", Family::Text),
            col("added", INT),
        ];
        let mut j = job();
        j.expr = vec![
            ("first_name".into(), "split_part(name, ' ', 1)".into()),
            ("email".into(), "lower(email)".into()),
            ("price_cents".into(), "price * 100".into()),
        ];
        j.tolerance = vec![("price_cents".into(), 1.0)];
        let plan = build(&j, &src, &tgt).unwrap();
        let cols: Vec<(&str, &str, Option<&str>, Kind)> = plan
            .cols
            .iter()
            .map(|c| {
                (
                    c.source.name.as_str(),
                    c.target.name.as_str(),
                    c.expr.as_deref(),
                    c.kind,
                )
            })
            .collect();
        assert_eq!(
            cols,
            [
                ("note", "note", None, Kind::Text),
                (
                    "first_name",
                    "first_name",
                    Some("split_part(name, ' ', 1)"),
                    Kind::Text
                ),
                ("email", "email", Some("lower(email)"), Kind::Text),
                (
                    "price_cents",
                    "price_cents",
                    Some("price * 100"),
                    Kind::Integer
                ),
            ]
        );
        assert_eq!(plan.cols[3].tolerance, Some(1.0));
        assert_eq!(plan.cols[3].source.declared, "expression");
        let notes = plan.skipped.join("\n");
        for needle in [
            "source column `name` has no target column of its own; it is read by the --expr of `first_name`",
            "source column `email` is not compared by name: target column `email` is checked against its --expr",
            "source column `price` has no target column of its own; it is read by the --expr of `price_cents`",
            "target column `added` has no source column",
        ] {
            assert!(notes.contains(needle), "{needle} not in {notes}");
        }
        assert_eq!(plan.skipped.len(), 4, "{notes}");

        // An explicit column list keeps the expression columns.
        let mut k = j.clone();
        k.columns = vec!["note".into()];
        assert_eq!(build(&k, &src, &tgt).unwrap().cols.len(), 4);
    }

    #[test]
    fn expression_conflicts_are_errors() {
        let src = [
            col("id", INT),
            col("a", Family::Text),
            col("b", Family::Text),
        ];
        let tgt = [
            col("id", INT),
            col("a", Family::Text),
            col("c", Family::Text),
            col("odd", Family::Other),
        ];
        let err = |expr: (&str, &str), edit: &dyn Fn(&mut Job)| {
            let mut j = job();
            j.expr = vec![(expr.0.into(), expr.1.into())];
            edit(&mut j);
            build(&j, &src, &tgt).unwrap_err().to_string()
        };
        let e = err(("nope", "a"), &|_| {});
        assert!(
            e.contains("target") && e.contains("`nope`") && e.contains("--expr"),
            "{e}"
        );
        let e = err(("id", "a || 'x'"), &|_| {});
        assert!(e.contains("keys cannot be expressions"), "{e}");
        let e = err(("c", "upper(a)"), &|j| {
            j.map = vec![("b".into(), "c".into())]
        });
        assert!(e.contains("--map b=c"), "{e}");
        let e = err(("c", "upper(a)"), &|j| {
            j.map = vec![("b".into(), "c".into())];
            j.expr[0].0 = "a".into();
            j.columns = vec!["a".into()];
        });
        assert!(e.contains("leave `a` out of --columns"), "{e}");
        // Source `a` compared with target `c` while target `a` has an expression: the
        // report could not tell the two `a`s apart.
        let e = err(("a", "upper(b)"), &|j| {
            j.map = vec![("a".into(), "c".into())]
        });
        assert!(e.contains("could not tell them apart"), "{e}");
        let e = err(("odd", "a"), &|_| {});
        assert!(e.contains("incompatible") && e.contains("`odd`"), "{e}");
    }

    #[test]
    fn missing_key_and_bad_tolerance_are_errors() {
        let src = [col("id", INT), col("t", Family::Text)];
        let tgt = [col("ident", INT), col("t", Family::Text)];
        let err = build(&job(), &src, &tgt).unwrap_err().to_string();
        assert!(
            err.contains("target") && err.contains("`id`") && err.contains("--map"),
            "{err}"
        );
        let mut j = job();
        j.tolerance = vec![("t".into(), 0.1)];
        let err = build(&j, &src, &src).unwrap_err().to_string();
        assert!(err.contains("numeric"), "{err}");
        let src = [col("id", Family::Float { single: false })];
        let err = build(&job(), &src, &src).unwrap_err().to_string();
        assert!(err.contains("cannot be a verify key"), "{err}");
    }
}
