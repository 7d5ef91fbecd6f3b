//! `expr` of `[[verify]]`: target columns checked against SQL expressions over the source
//! table's columns, evaluated in the source database (docs/verify.md, "Expression
//! columns"). Only what is wrong in every dialect is checked here (an empty expression, a
//! `;` outside quotes, an expression standing for a key column or for a column that `map`
//! already pairs); `ficus-verify` checks the rest, with the database, when the job runs.

use toml::de::DeValue;

use super::{Section, Validator};
use crate::raw::clip;

const HELP: &str = "write the target column and an SQL expression over the source table's \
                    columns in the source database's dialect, e.g. expr = { email_lower = \
                    \"lower(email)\" }";

/// Whether `text` has a `;` outside quotes. With `escapes`, a backslash escapes the next
/// character inside quotes (MySQL strings); a `;` counts only when it is outside quotes
/// under both readings, so that no valid expression of any dialect is refused.
fn bare_semicolon(text: &str, escapes: bool) -> bool {
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(_) if escapes && c == '\\' => {
                chars.next();
            }
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if matches!(c, '\'' | '"' | '`') => quote = Some(c),
            None if c == ';' => return true,
            None => {}
        }
    }
    false
}

impl Validator<'_, '_> {
    /// `expr = { target_column = "SQL" }` in file order. `key` (source names) and `map`
    /// (source → target) are the job's.
    pub(super) fn verify_expr(
        &mut self,
        sec: &Section<'_, '_>,
        key: &[String],
        map: &[(String, String)],
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let Some((t, tspan)) = self.table(sec, "expr") else {
            return out;
        };
        let esec = Section::new(sec.ctx.clone(), "expr.", tspan, t);
        let target_of = |s: &str| {
            map.iter()
                .find(|(a, _)| a == s)
                .map(|(_, b)| b.clone())
                .unwrap_or_else(|| s.to_string())
        };
        for e in &esec.entries {
            let DeValue::String(text) = e.value else {
                self.type_error(&esec, e, "a string");
                continue;
            };
            let column = e.key;
            let problem = if column.trim().is_empty() {
                Some((
                    "the target column name is empty".to_string(),
                    HELP.to_string(),
                ))
            } else if text.trim().is_empty() {
                Some((format!("expr.{column} is empty"), HELP.to_string()))
            } else if bare_semicolon(text, false) && bare_semicolon(text, true) {
                Some((
                    format!(
                        "expr.{column} holds a `;`: {:?} is not one expression",
                        clip(text)
                    ),
                    "give one SQL expression, not statements (a `;` inside quotes is fine)"
                        .to_string(),
                ))
            } else if let Some(k) = key.iter().find(|k| target_of(k) == column) {
                Some((
                    format!("expr.{column}: `{column}` is a key column (key = [\"{k}\"])"),
                    "keys cannot be expressions: rows are matched by the key as stored on both \
                     sides; check a derived column instead"
                        .to_string(),
                ))
            } else if let Some((s, _)) = map.iter().find(|(_, t)| t == column) {
                Some((
                    format!("expr.{column}: `{column}` is also paired by map ({s} = \"{column}\")"),
                    "an expression replaces the comparison with a source column: keep only one \
                     of the two"
                        .to_string(),
                ))
            } else {
                None
            };
            match problem {
                Some((message, help)) => {
                    self.error(&e.span, format!("{}: {message}", sec.ctx), Some(help))
                }
                None => out.push((column.to_string(), text.trim().to_string())),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::bare_semicolon;

    #[test]
    fn semicolons_inside_quotes_are_text() {
        assert!(bare_semicolon("lower(a); drop table t", false));
        assert!(!bare_semicolon("split_part(a, ';', 1)", false));
        assert!(!bare_semicolon("lower(\"a;b\")", false));
        // `'it\'s;'` is one MySQL string: not refused, whichever dialect it is.
        let mysql = r"CONCAT(a, 'it\'s;')";
        assert!(bare_semicolon(mysql, false) && !bare_semicolon(mysql, true));
    }
}
