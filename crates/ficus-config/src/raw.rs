//! The spanned TOML tree as `toml` parses it, and what the validator needs around it: entries in
//! file order, positions as line:col, and human descriptions of values.
//!
//! The validator walks `toml::de::DeTable` (every key and value carries its byte span) instead of
//! deserializing into structs with serde: that way one pass reports every problem, unknown keys
//! and wrongly typed values included, each at its own position, instead of stopping at the first.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

pub(crate) type Span = Range<usize>;

/// One `key = value` of a table, with the spans of both.
pub(crate) struct Entry<'a, 'i> {
    pub key: &'a str,
    pub key_span: Span,
    pub value: &'a DeValue<'i>,
    pub span: Span,
}

/// The entries of a table in file order.
pub(crate) fn entries<'a, 'i>(table: &'a DeTable<'i>) -> Vec<Entry<'a, 'i>> {
    let mut out: Vec<Entry<'a, 'i>> = table
        .iter()
        .map(|(k, v)| Entry {
            key: k.get_ref().as_ref(),
            key_span: k.span(),
            value: v.get_ref(),
            span: v.span(),
        })
        .collect();
    // The map is ordered by key (unless toml's `preserve_order` is on); file order is span order.
    out.sort_by_key(|e| e.key_span.start);
    out
}

/// Maps byte offsets to 1-based line and column (columns count characters, not bytes).
pub(crate) struct LineIndex<'s> {
    text: &'s str,
    line_starts: Vec<usize>,
}

impl<'s> LineIndex<'s> {
    pub fn new(text: &'s str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, line_starts }
    }

    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, col + 1)
    }

    pub fn text(&self) -> &'s str {
        self.text
    }
}

/// `string "abc"`, `integer 5`, `a table`: what was found where something else was expected.
pub(crate) fn describe(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("string {:?}", clip(s)),
        DeValue::Integer(i) => format!("integer {i}"),
        DeValue::Float(f) => format!("float {f}"),
        DeValue::Boolean(b) => format!("boolean {b}"),
        DeValue::Datetime(d) => format!("datetime {d}"),
        DeValue::Array(_) => "an array".to_string(),
        DeValue::Table(_) => "a table".to_string(),
    }
}

/// Long values are shortened in messages.
pub(crate) fn clip(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(MAX).collect();
        c.push('…');
        c
    }
}
