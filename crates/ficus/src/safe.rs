//! Text from outside (upstream bodies and headers, event messages and actors, route names,
//! database values) made safe for the two text channels ficus writes to: a terminal and a
//! text log line. Control characters (C0 such as ESC and newline, DEL, C1 such as CSI) and
//! the Unicode bidirectional overrides are written as escapes (`\n`, `\u{1b}`), so no
//! answer, message or name can move the cursor, retitle the terminal, recolour what
//! follows, reorder a line, or start a line of its own.
//!
//! One place per channel: the CLI escapes every string of an admin API answer once, as it
//! arrives ([`value`], in `client.rs`), before anything is printed; ficus's text log escapes
//! every field and message of every event ([`LogFields`], in `run::init_logging`). JSON
//! output (`--json`, `--log-format json`) is left as it is: JSON escapes control
//! characters itself.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use serde_json::Value;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;

/// Whether `c` must not reach a terminal or a log line as it is.
pub fn is_unsafe(c: char) -> bool {
    // `is_control`: C0 (U+0000-U+001F), DEL and C1 (U+0080-U+009F). The rest: the bidi
    // embeddings, overrides and isolates, which reorder how a line reads.
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every unsafe character escaped: `\n`, `\r`, `\t`, else `\u{..}` in hex.
/// Borrowed when there is nothing to escape.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Every string of `v`, object keys included, escaped: what the CLI prints from an admin
/// API answer.
pub fn value(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(match escape(&s) {
            Cow::Borrowed(_) => s,
            Cow::Owned(e) => e,
        }),
        Value::Array(a) => Value::Array(a.into_iter().map(value).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (escape(&k).into_owned(), value(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The fields of ficus's text log, as tracing-subscriber's default (`name=value`, the
/// message bare, separated by spaces), with every value and message escaped.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogFields;

impl<'w> FormatFields<'w> for LogFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut v = LogVisitor {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}

struct LogVisitor<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl tracing::field::Visit for LogVisitor<'_, '_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        // The message's Debug is its Display; strings come quoted and escaped by Debug
        // already, `%` (Display) values and the message do not.
        let text = format!("{value:?}");
        let sep = if self.first { "" } else { " " };
        self.first = false;
        self.result = if field.name() == "message" {
            write!(self.writer, "{sep}{}", escape(&text))
        } else {
            write!(self.writer, "{sep}{}={}", field.name(), escape(&text))
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_the_rest_kept() {
        assert_eq!(escape("plain café, 東京"), "plain café, 東京");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(escape("a\nb\r\tc"), "a\\nb\\r\\tc");
        assert_eq!(
            escape("\u{1b}[2J\u{1b}]0;title\u{7}"),
            "\\u{1b}[2J\\u{1b}]0;title\\u{7}"
        );
        assert_eq!(escape("\u{9b}31m \u{7f} \0"), "\\u{9b}31m \\u{7f} \\u{0}");
        assert_eq!(escape("abc\u{202e}fed"), "abc\\u{202e}fed");
    }

    #[test]
    fn values_are_escaped_keys_included() {
        let v = serde_json::json!({
            "message": "red \u{1b}[31m\nnext",
            "list": ["\u{7}", 1, null, {"k\u{1b}": "v"}],
            "n": 3,
        });
        let e = value(v);
        assert_eq!(e["message"], "red \\u{1b}[31m\\nnext");
        assert_eq!(e["list"][0], "\\u{7}");
        assert_eq!(e["list"][1], 1);
        assert_eq!(e["list"][3]["k\\u{1b}"], "v");
        assert_eq!(e["n"], 3);
    }

    /// A writer the log formatter writes each event to, kept for the test.
    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_log_event_is_one_line_whatever_its_message_and_fields_hold() {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(LogFields)
            .with_writer(move || out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let kind = "config.applied\nINFO forged";
            tracing::info!(
                actor = "api:cli:x",
                kind = %kind,
                "why\n2026-01-01T00:00:00Z  INFO forged line \u{1b}[2J"
            );
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains("why\\n2026-01-01T00:00:00Z  INFO forged line \\u{1b}[2J"),
            "{text}"
        );
        assert!(text.contains("kind=config.applied\\nINFO forged"), "{text}");
        assert!(text.contains("actor=\"api:cli:x\""), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
    }
}
