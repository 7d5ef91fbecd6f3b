//! Row-level comparison of downloaded rows (pure): which keys are missing, extra or
//! changed, and in which columns.
use std::collections::{BTreeMap, HashMap};

use crate::canon::{display, values_equal};
use crate::error::{Side, VerifyError};
use crate::plan::Plan;
use crate::report::{Change, DiffKind, Difference};
use crate::sql::KeyVal;

/// A downloaded row: key columns then compared columns, canonical value text.
pub type Row = Vec<Option<String>>;

/// One differing key, before it becomes a reported `Difference`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawDiff {
    pub kind: DiffKind,
    pub key: KeyVal,
    pub source: Option<Row>,
    pub target: Option<Row>,
    /// Indexes (into the row) of the columns that differ, for `Changed`.
    pub changed: Vec<usize>,
}

fn index(plan: &Plan, side: Side, rows: Vec<Row>) -> Result<HashMap<KeyVal, Row>, VerifyError> {
    let n = plan.key.len();
    let mut map = HashMap::with_capacity(rows.len());
    for row in rows {
        let mut key = Vec::with_capacity(n);
        for (i, k) in plan.key.iter().enumerate() {
            match &row[i] {
                Some(v) => key.push(v.clone()),
                None => {
                    return Err(VerifyError::Data {
                        side,
                        message: format!(
                            "key column `{}` holds NULL; --key must name NOT NULL unique columns",
                            k.column(side).name
                        ),
                    })
                }
            }
        }
        if map.contains_key(&key) {
            return Err(VerifyError::Data {
                side,
                message: format!(
                    "key ({}) appears more than once; --key must be unique",
                    key.join(", ")
                ),
            });
        }
        map.insert(key, row);
    }
    Ok(map)
}

/// Compares the rows of the same key range (or the same looked-up keys) on both sides.
/// The result is sorted by key for stable output.
pub fn diff_rows(
    plan: &Plan,
    source: Vec<Row>,
    target: Vec<Row>,
) -> Result<Vec<RawDiff>, VerifyError> {
    let src = index(plan, Side::Source, source)?;
    let mut tgt = index(plan, Side::Target, target)?;
    let cols: Vec<_> = plan.all().collect();
    let mut out = Vec::new();
    for (key, s) in src {
        match tgt.remove(&key) {
            None => out.push(RawDiff {
                kind: DiffKind::Missing,
                key,
                source: Some(s),
                target: None,
                changed: vec![],
            }),
            Some(t) => {
                let changed: Vec<usize> = (plan.key.len()..cols.len())
                    .filter(|&i| !values_equal(cols[i], s[i].as_deref(), t[i].as_deref()))
                    .collect();
                if !changed.is_empty() {
                    out.push(RawDiff {
                        kind: DiffKind::Changed,
                        key,
                        source: Some(s),
                        target: Some(t),
                        changed,
                    });
                }
            }
        }
    }
    for (key, t) in tgt {
        out.push(RawDiff {
            kind: DiffKind::Extra,
            key,
            source: None,
            target: Some(t),
            changed: vec![],
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// The reported form of a raw difference, with values as people read them.
pub fn to_difference(plan: &Plan, raw: &RawDiff) -> Difference {
    let cols: Vec<_> = plan.all().collect();
    let show = |i: usize, v: &Option<String>| v.as_deref().map(|v| display(cols[i].kind, v));
    let full = |row: &Option<Row>| {
        row.as_ref().map(|r| {
            r.iter()
                .enumerate()
                .map(|(i, v)| (cols[i].source.name.clone(), show(i, v)))
                .collect::<BTreeMap<_, _>>()
        })
    };
    let changes = raw
        .changed
        .iter()
        .map(|&i| Change {
            column: cols[i].source.name.clone(),
            target_column: cols[i].target.name.clone(),
            source: raw.source.as_ref().and_then(|r| show(i, &r[i])),
            target: raw.target.as_ref().and_then(|r| show(i, &r[i])),
        })
        .collect();
    Difference {
        kind: raw.kind,
        key: plan
            .key
            .iter()
            .zip(&raw.key)
            .enumerate()
            .map(|(i, (k, v))| (k.source.name.clone(), display(cols[i].kind, v)))
            .collect(),
        changes,
        source: if raw.kind == DiffKind::Missing {
            full(&raw.source)
        } else {
            None
        },
        target: if raw.kind == DiffKind::Extra {
            full(&raw.target)
        } else {
            None
        },
        status: None,
        key_values: raw.key.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{ColumnPlan, Kind};
    use crate::schema::{Column, Family};

    fn plan() -> Plan {
        let c = |name: &str, kind, tolerance| {
            let col = Column {
                name: name.into(),
                declared: "t".into(),
                base: String::new(),
                family: Family::Text,
                bytewise: true,
            };
            ColumnPlan {
                source: col.clone(),
                target: col,
                kind,
                tolerance,
                expr: None,
            }
        };
        Plan {
            key: vec![c("id", Kind::Integer, None)],
            cols: vec![
                c("name", Kind::Text, None),
                c("score", Kind::Float { single: false }, Some(0.01)),
            ],
            skipped: vec![],
        }
    }

    fn row(id: &str, name: Option<&str>, score: &str) -> Row {
        vec![Some(id.into()), name.map(Into::into), Some(score.into())]
    }

    #[test]
    fn every_kind_of_difference_is_found_once() {
        let src = vec![
            row("1", Some("a"), "1"),
            row("2", Some(""), "2"),
            row("3", Some("c"), "3"),
            row("4", Some("d"), "4"),
        ];
        let tgt = vec![
            row("1", Some("a"), "1.005"),
            row("2", None, "2"),
            row("4", Some("d"), "4.5"),
            row("5", Some("e"), "5"),
        ];
        let d = diff_rows(&plan(), src, tgt).unwrap();
        let kinds: Vec<_> = d
            .iter()
            .map(|d| (d.key[0].as_str(), d.kind, d.changed.clone()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("2", DiffKind::Changed, vec![1]),
                ("3", DiffKind::Missing, vec![]),
                ("4", DiffKind::Changed, vec![2]),
                ("5", DiffKind::Extra, vec![]),
            ]
        );
        let shown = to_difference(&plan(), &d[0]);
        assert_eq!(shown.changes[0].source.as_deref(), Some(""));
        assert_eq!(shown.changes[0].target, None);
        assert_eq!(shown.key["id"], "2");
    }

    #[test]
    fn duplicate_and_null_keys_are_errors() {
        let err = diff_rows(
            &plan(),
            vec![row("1", None, "1"), row("1", None, "1")],
            vec![],
        )
        .unwrap_err();
        assert!(err.to_string().contains("unique"), "{err}");
        let err = diff_rows(&plan(), vec![], vec![vec![None, None, None]]).unwrap_err();
        assert!(
            err.to_string().contains("NULL") && err.to_string().contains("target"),
            "{err}"
        );
    }
}
