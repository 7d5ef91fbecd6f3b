//! From the spanned TOML tree to a validated [`Config`], collecting every problem on the way.
//!
//! Each section reader reports what is wrong with its keys and substitutes the default for a bad
//! value, so that one run finds all the problems of a file; the `Config` is only handed out when
//! no problem was found.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Uri};
use toml::de::{DeInteger, DeTable, DeValue};

use crate::model::*;
use crate::raw::{clip, describe, entries, Entry, LineIndex, Span};
use crate::suggest::{did_you_mean, nearest};
use crate::units::{self, UnitError};
use crate::{Diagnostic, Diagnostics, MAX_DIAGNOSTICS};

mod admin;
mod flags;
mod fleet;
mod migration;
mod record;
mod redact;
mod slo;
mod tracing;
mod verify_expr;
mod verify_incremental;

const TOP_LEVEL: [(&str, &str); 21] = [
    ("gateway", "[gateway]"),
    ("listener", "[[listener]]"),
    ("upstream", "[upstream.NAME]"),
    ("route", "[[route]]"),
    ("default", "[default]"),
    ("access_log", "[access_log]"),
    ("telemetry", "[telemetry]"),
    ("admin", "[admin]"),
    ("store", "store = \"URL\""),
    ("verify", "[[verify]]"),
    ("shadow", "[shadow]"),
    ("webhook", "[[webhook]]"),
    ("node", "[node]"),
    ("fleet", "[fleet]"),
    ("redact", "[redact]"),
    ("tracing", "[tracing]"),
    ("slo", "[slo]"),
    ("flag", "[[flag]]"),
    ("ofrep", "[ofrep]"),
    ("record", "[record]"),
    ("migration", "[[migration]]"),
];
const GATEWAY_KEYS: &[&str] = &[
    "header_read_timeout",
    "max_header_bytes",
    "max_connections",
    "shutdown_grace",
    "pid_file",
    "client_body_timeout",
    "send_timeout",
];
const LISTENER_KEYS: &[&str] = &["name", "bind", "tls"];
const TLS_KEYS: &[&str] = &["cert", "key"];
const UPSTREAM_KEYS: &[&str] = &[
    "url",
    "connect_timeout",
    "request_timeout",
    "max_idle_connections",
    "pool_idle_timeout",
    "read_timeout",
    "http2",
    "host",
    "ca_file",
    "max_in_flight",
    "queue",
    "queue_timeout",
    "breaker",
];
const BREAKER_KEYS: &[&str] = &[
    "consecutive_failures",
    "failure_rate",
    "min_requests",
    "window",
    "open_for",
    "half_open_probes",
];
const RATE_LIMIT_KEYS: &[&str] = &["per_second", "burst", "key", "max_keys"];
const CACHE_KEYS: &[&str] = &[
    "max_bytes",
    "max_entry_bytes",
    "ttl",
    "stale_while_revalidate",
    "max_variants",
    "allow_authorization",
    "allow_set_cookie",
];
const ROLLOUT_KEYS: &[&str] = &[
    "steps",
    "interval",
    "min_requests",
    "manual",
    "after",
    "retire_after",
    "on_rollback",
    "max_step_time",
    "gates",
];
const GATE_KEYS: &[&str] = &["error", "latency", "shadow"];
const RETRY_KEYS: &[&str] = &[
    "attempts",
    "budget",
    "min_per_second",
    "backoff",
    "max_backoff",
];
/// Keys of a `[[route]]` that say which requests it takes; `[default]` takes every request.
const MATCH_KEYS: &[&str] = &[
    "name",
    "host",
    "methods",
    "path_prefix",
    "path",
    "template",
    "headers",
];
/// Keys shared by `[[route]]` and `[default]`.
const ROUTE_KEYS: &[&str] = &[
    "legacy",
    "modern",
    "stage",
    "weight",
    "sticky",
    "max_body",
    "debug_header",
    "fallback",
    "shadow_writes",
    "shadow",
    "priority",
    "rate_limit",
    "retry",
    "cache",
    "rollout",
    "slo",
    "flag",
    "forward_flags",
    "record",
];
const ROUTE_SHADOW_KEYS: &[&str] = &[
    "sample",
    "canary",
    "noise_sample",
    "headers",
    "ignore_headers",
    "ignore",
    "tolerance",
    "unordered",
    "trim",
    "collapse_whitespace",
    "ignore_case",
    "redact",
];
const SHADOW_KEYS: &[&str] = &[
    "queue",
    "max_in_flight",
    "max_body",
    "samples_per_field",
    "max_fields",
    "noise_relative",
    "noise_absolute",
    "flush_interval",
];
const FALLBACK_KEYS: &[&str] = &[
    "enabled",
    "methods",
    "on_status",
    "on_timeout",
    "max_buffered_body",
];
const ACCESS_LOG_KEYS: &[&str] = &["enabled", "format", "path"];
const TELEMETRY_KEYS: &[&str] = &["enabled"];
const VERIFY_KEYS: &[&str] = &[
    "name",
    "route",
    "source",
    "target",
    "source_table",
    "target_table",
    "key",
    "columns",
    "map",
    "where",
    "tolerance",
    "expr",
    "every",
    "max_connections",
    "watermark",
    "watermark_overlap",
    "full_every",
    "recheck",
];
const PATH_KEYS: [&str; 3] = ["path_prefix", "path", "template"];

const NAME_HELP: &str = "names use letters, digits, '_', '.' and '-'";
const STICKY_HELP: &str =
    "use \"client-ip\", \"header:NAME\", \"cookie:NAME\" or \"query:NAME\", e.g. \"header:x-user-id\"";
const STAGES_HELP: &str = "stages are legacy, shadow, canary, modern and retired";
const METHOD_HELP: &str = "methods are upper-case HTTP method names such as \"GET\" or \"POST\"";
/// Continuation lines of a multi-line help line up under the text after `  help: `.
const HELP_INDENT: &str = "\n        ";

/// What a text is: a node's whole config file, or the fleet-wide part stored as a version
/// (where the node-local sections, `[[listener]]` among them, are optional: each node
/// brings its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    File,
    Fleet,
}

pub(crate) fn parse(
    text: &str,
    origin: &str,
    base_dir: &Path,
    scope: Scope,
) -> Result<Config, Diagnostics> {
    check_size(text.len(), origin)?;
    let mut v = Validator {
        lines: LineIndex::new(text),
        diags: Vec::new(),
        omitted: 0,
        base_dir,
        scope,
        route_flag_refs: Vec::new(),
        forward_flag_refs: Vec::new(),
    };
    let config = match DeTable::parse(text) {
        Ok(doc) => v.document(doc.get_ref(), doc.span()),
        Err(e) => {
            v.syntax_error(&e);
            None
        }
    };
    match config {
        Some(config) if v.diags.is_empty() => Ok(config),
        _ => {
            let mut items = v.diags;
            items.sort_by_key(|d| (d.line, d.col));
            Err(Diagnostics {
                origin: origin.to_string(),
                items,
                omitted: v.omitted,
            })
        }
    }
}

/// How to fix a TOML syntax error, from the parser's message and the line it is on.
fn syntax_help(msg: &str, line: &str) -> String {
    // `key = value`, the value without a trailing comment.
    let pair = line.split_once('=').map(|(k, v)| {
        let v = v.split(" #").next().unwrap_or(v);
        (k.trim(), v.trim())
    });
    if msg.starts_with("string values must be quoted") {
        return match pair {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => {
                format!("put the text in quotes: {k} = \"{}\"", clip(v))
            }
            Some((k, _)) if !k.is_empty() => format!(
                "give {k} a value after the =: text in quotes (\"...\"), a number, true or false"
            ),
            _ => "text values are quoted: name = \"orders\"".to_string(),
        };
    }
    let help = if msg.starts_with("unclosed table") {
        "close the header with ]: [gateway], [upstream.NAME], and [[route]] before each route"
    } else if msg.starts_with("invalid basic string") || msg.starts_with("invalid literal string") {
        "close the string on the same line with the quote that opened it: \"...\" or '...' \
         (inside \"...\", write a backslash as \\\\, or use '...')"
    } else if msg.starts_with("key with no value") {
        "write key = value; a key with spaces or dots in its name needs quotes: \"a key\" = 1"
    } else if msg.starts_with("unclosed array") {
        "close the array with ] and separate its items with commas: methods = [\"GET\", \"POST\"]"
    } else if msg.starts_with("unclosed inline table") {
        "close the inline table with } on the same line and separate its keys with commas: \
         breaker = { consecutive_failures = 5, open_for = \"30s\" }"
    } else {
        "each line is a [section] header, a key = value pair or a # comment, and text values \
         are quoted; the TOML syntax is at https://toml.io"
    };
    help.to_string()
}

/// A config file's bytes as text: refused beyond [`defaults::MAX_CONFIG_BYTES`] (the caller
/// reads at most one byte more), or when they are not UTF-8, at the line and column of the
/// first byte that is not.
pub(crate) fn text(bytes: Vec<u8>, origin: &str) -> Result<String, Diagnostics> {
    if bytes.len() > defaults::MAX_CONFIG_BYTES {
        return Err(too_large(origin, None));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        // Valid UTF-8 up to `at`, by definition.
        let before = std::str::from_utf8(&bytes[..at]).unwrap_or("");
        let (line, col) = LineIndex::new(before).line_col(before.len());
        one(
            origin,
            line,
            col,
            format!(
                "byte 0x{:02x} is not UTF-8 text: a config file is TOML, in UTF-8 (is this a \
                 binary file?)",
                bytes[at]
            ),
            "check that this is the config file (ficus.toml), not the state store, a log or \
             an archive; an editor can save it as UTF-8",
        )
    })
}

/// Refuses a config text of `len` bytes over [`defaults::MAX_CONFIG_BYTES`] (see
/// [`crate::check_size`]).
pub(crate) fn check_size(len: usize, origin: &str) -> Result<(), Diagnostics> {
    if len > defaults::MAX_CONFIG_BYTES {
        return Err(too_large(origin, Some(len)));
    }
    Ok(())
}

/// The text is larger than one config may be (`size` when known).
fn too_large(origin: &str, size: Option<usize>) -> Diagnostics {
    let max = defaults::MAX_CONFIG_BYTES;
    let what = size.map_or_else(
        || "more than".to_string(),
        |n| format!("{n} bytes, more than"),
    );
    one(
        origin,
        1,
        1,
        format!(
            "the config is {what} {max} bytes ({}), the largest ficus accepts",
            units::format_size(max as u64)
        ),
        "that is the largest config version the state store keeps: check that this is the \
         config file; a generated one must stay under the limit",
    )
}

fn one(origin: &str, line: usize, col: usize, message: String, help: &str) -> Diagnostics {
    Diagnostics {
        origin: origin.to_string(),
        items: vec![Diagnostic {
            line,
            col,
            message,
            help: Some(help.to_string()),
        }],
        omitted: 0,
    }
}

/// The keys of one table, and how to name it in messages.
struct Section<'a, 'i> {
    /// Who the message is about: `route "orders"`, `upstream "legacy"`, `[gateway]`.
    ctx: String,
    /// Prepended to key names in messages: `fallback.` for `[route.fallback]`.
    prefix: &'static str,
    /// The table's header (or inline table), where missing keys are reported.
    span: Span,
    entries: Vec<Entry<'a, 'i>>,
}

impl<'a, 'i> Section<'a, 'i> {
    fn new(ctx: String, prefix: &'static str, span: Span, table: &'a DeTable<'i>) -> Self {
        Section {
            ctx,
            prefix,
            span,
            entries: entries(table),
        }
    }

    fn get(&self, key: &str) -> Option<&Entry<'a, 'i>> {
        self.entries.iter().find(|e| e.key == key)
    }

    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The key as the user knows it: `fallback.methods`.
    fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }
}

/// The upstream names routes may refer to.
struct Upstreams {
    names: Vec<String>,
    /// The `upstream` section is malformed: do not report references as unknown.
    broken: bool,
}

struct Validator<'s, 'b> {
    lines: LineIndex<'s>,
    /// At most [`MAX_DIAGNOSTICS`], the first in file order.
    diags: Vec<Diagnostic>,
    /// Found beyond the cap.
    omitted: usize,
    base_dir: &'b Path,
    scope: Scope,
    /// Routes' flags (key, modern variant, span, route), checked once every flag is read.
    route_flag_refs: Vec<(String, String, Span, String)>,
    /// Each route's `forward_flags` keys: (key, span, route context), checked once the
    /// flags are read.
    forward_flag_refs: Vec<(String, Span, String)>,
}

impl<'s> Validator<'s, '_> {
    // ---- reporting -------------------------------------------------------------------------

    fn error(&mut self, span: &Span, message: impl Into<String>, help: Option<String>) {
        let (line, col) = self.lines.line_col(span.start);
        let d = Diagnostic {
            line,
            col,
            message: message.into(),
            help,
        };
        if self.diags.len() < MAX_DIAGNOSTICS {
            self.diags.push(d);
            return;
        }
        // Full: keep the first ones in file order, the new one in place of the last kept
        // when it comes before it.
        self.omitted += 1;
        let last = self
            .diags
            .iter()
            .enumerate()
            .max_by_key(|(_, k)| (k.line, k.col))
            .map(|(i, k)| (i, (k.line, k.col)));
        if let Some((i, at)) = last {
            if (line, col) < at {
                self.diags[i] = d;
            }
        }
    }

    fn line(&self, span: &Span) -> usize {
        self.lines.line_col(span.start).0
    }

    fn syntax_error(&mut self, e: &toml::de::Error) {
        let span = e.span().unwrap_or(0..0);
        let msg = e.message().trim().to_string();
        if msg == "duplicate key" {
            let key = self.lines.text().get(span.clone()).unwrap_or("").trim();
            self.error(
                &span,
                format!("TOML syntax error: duplicate key {key:?}"),
                Some("a key can appear only once in a table; remove or rename one of them".into()),
            );
        } else {
            let (line, _) = self.lines.line_col(span.start);
            let text = self.lines.text().lines().nth(line - 1).unwrap_or("");
            self.error(
                &span,
                format!("TOML syntax error: {msg}"),
                Some(syntax_help(&msg, text)),
            );
        }
    }

    fn type_error(&mut self, sec: &Section<'_, '_>, e: &Entry<'_, '_>, expected: &str) {
        let key = sec.key(e.key);
        let help = match (e.value, expected) {
            (DeValue::String(s), "true or false") if s == "true" || s == "false" => {
                format!("remove the quotes: {} = {s}", e.key)
            }
            (DeValue::String(s), "an integer") if s.trim().parse::<i64>().is_ok() => {
                format!("remove the quotes: {} = {}", e.key, s.trim())
            }
            (DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_), "a string") => {
                format!("put it in quotes: {} = \"{}\"", e.key, self.raw(&e.span))
            }
            (_, "true or false") => format!("write {} = true or {} = false", e.key, e.key),
            (_, "an integer") => {
                format!("write a whole number without quotes, e.g. {} = 100", e.key)
            }
            (_, "a string") => format!("write {} = \"...\"", e.key),
            (_, "a table") => format!("write {} = {{ ... }}, or a section of its own", e.key),
            (DeValue::String(s), "an array of strings") => {
                format!("put it in brackets: {} = [{:?}]", e.key, clip(s))
            }
            (_, "an array of strings") => format!("write {} = [\"...\", \"...\"]", e.key),
            (_, "a number from 0 to 100") => format!(
                "write the percentage as a bare number, e.g. {} = 25 or {} = 2.5",
                e.key, e.key
            ),
            (_, "an array of status codes") => format!("write {} = [502, 503, 504]", e.key),
            (_, "a number") => format!("write a bare number, e.g. {} = 50", e.key),
            (_, "a duration such as \"10s\"") => units::duration_help(e.key),
            (_, "a size such as \"64KiB\"") => units::size_help(e.key),
            _ => String::new(),
        };
        self.error(
            &e.span,
            format!(
                "{}: {key} must be {expected}, found {}",
                sec.ctx,
                describe(e.value)
            ),
            (!help.is_empty()).then_some(help),
        );
    }

    /// Reports keys not in `known` (nor in `skip`, which the caller reports itself).
    fn unknown_keys(&mut self, sec: &Section<'_, '_>, known: &[&str], skip: &[&str], table: &str) {
        for e in &sec.entries {
            if known.contains(&e.key) || skip.contains(&e.key) {
                continue;
            }
            let help = match nearest(e.key, known.iter().copied()) {
                Some(near) => format!("did you mean {:?}?", sec.key(near)),
                None => format!("{table} keys are: {}", known.join(", ")),
            };
            self.error(
                &e.key_span,
                format!("{}: unknown key {:?}", sec.ctx, sec.key(e.key)),
                Some(help),
            );
        }
    }

    /// The source text of a span, shortened for messages.
    fn raw(&self, span: &Span) -> String {
        clip(self.lines.text().get(span.clone()).unwrap_or("").trim())
    }

    // ---- typed getters: report a wrong type and return None ----------------------------------

    fn string<'a>(&mut self, sec: &Section<'a, '_>, key: &str) -> Option<(&'a str, Span)> {
        let e = sec.get(key)?;
        match e.value {
            DeValue::String(s) => Some((s.as_ref(), e.span.clone())),
            _ => {
                self.type_error(sec, e, "a string");
                None
            }
        }
    }

    fn boolean(&mut self, sec: &Section<'_, '_>, key: &str, default: bool) -> bool {
        let Some(e) = sec.get(key) else {
            return default;
        };
        match e.value {
            DeValue::Boolean(b) => *b,
            _ => {
                self.type_error(sec, e, "true or false");
                default
            }
        }
    }

    /// An integer; values beyond 64 bits are reported as out of range by the callers' checks.
    fn integer(&mut self, sec: &Section<'_, '_>, key: &str) -> Option<(i128, Span)> {
        let e = sec.get(key)?;
        match e.value {
            DeValue::Integer(i) => Some((int_value(i), e.span.clone())),
            _ => {
                self.type_error(sec, e, "an integer");
                None
            }
        }
    }

    fn table<'a, 'i>(
        &mut self,
        sec: &Section<'a, 'i>,
        key: &str,
    ) -> Option<(&'a DeTable<'i>, Span)> {
        let e = sec.get(key)?;
        match e.value {
            DeValue::Table(t) => Some((t, e.span.clone())),
            _ => {
                self.type_error(sec, e, "a table");
                None
            }
        }
    }

    /// An array of strings; a non-string item is reported and skipped.
    fn strings<'a>(
        &mut self,
        sec: &Section<'a, '_>,
        key: &str,
    ) -> Option<(Vec<(&'a str, Span)>, Span)> {
        let e = sec.get(key)?;
        let DeValue::Array(items) = e.value else {
            self.type_error(sec, e, "an array of strings");
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push((s.as_ref(), item.span())),
                other => self.error(
                    &item.span(),
                    format!(
                        "{}: {} must be an array of strings, found {} in it",
                        sec.ctx,
                        sec.key(key),
                        describe(other)
                    ),
                    None,
                ),
            }
        }
        Some((out, e.span.clone()))
    }

    fn duration(&mut self, sec: &Section<'_, '_>, key: &str, default: Duration) -> Duration {
        let Some(e) = sec.get(key) else {
            return default;
        };
        let name = sec.key(key);
        match e.value {
            DeValue::String(s) => match units::parse_duration(s) {
                Ok(d) => d,
                Err(err) => {
                    let help = match err.suggestion() {
                        Some(fixed) => {
                            format!("did you mean {fixed:?}? {}", units::duration_help(e.key))
                        }
                        None => units::duration_help(e.key),
                    };
                    self.error(
                        &e.span,
                        format!("{}: {name} {:?} {err}", sec.ctx, clip(s)),
                        Some(help),
                    );
                    default
                }
            },
            DeValue::Integer(i) => {
                self.error(
                    &e.span,
                    format!("{}: {name} {} has no unit", sec.ctx, self.raw(&e.span)),
                    Some(format!(
                        "durations are strings with a unit: {} = \"{}s\" or \"{}ms\"",
                        e.key,
                        int_value(i),
                        int_value(i)
                    )),
                );
                default
            }
            _ => {
                self.type_error(sec, e, "a duration such as \"10s\"");
                default
            }
        }
    }

    fn size(&mut self, sec: &Section<'_, '_>, key: &str) -> Option<(u64, Span)> {
        let e = sec.get(key)?;
        let name = sec.key(key);
        match e.value {
            DeValue::String(s) => match units::parse_size(s) {
                Ok(n) => Some((n, e.span.clone())),
                Err(err) => {
                    let help = match &err {
                        UnitError::UnknownUnit {
                            unit,
                            suggestion: Some(fixed),
                        } if !unit.to_ascii_lowercase().contains('i') && unit != "b" => format!(
                            "did you mean {fixed:?}? sizes use binary units (1KiB = 1024 bytes): \
                             B, KiB, MiB, GiB; decimal units such as {unit} are not accepted"
                        ),
                        UnitError::UnknownUnit {
                            suggestion: Some(fixed),
                            ..
                        } => format!("did you mean {fixed:?}? units are case-sensitive"),
                        _ => units::size_help(e.key),
                    };
                    self.error(
                        &e.span,
                        format!("{}: {name} {:?} {err}", sec.ctx, clip(s)),
                        Some(help),
                    );
                    None
                }
            },
            DeValue::Integer(i) => match u64::try_from(int_value(i)) {
                Ok(n) => Some((n, e.span.clone())),
                Err(_) => {
                    self.error(
                        &e.span,
                        format!(
                            "{}: {name} {} is not a size in bytes",
                            sec.ctx,
                            self.raw(&e.span)
                        ),
                        Some(units::size_help(e.key)),
                    );
                    None
                }
            },
            _ => {
                self.type_error(sec, e, "a size such as \"64KiB\"");
                None
            }
        }
    }

    /// A file path, resolved against the config file's folder.
    fn path(&mut self, sec: &Section<'_, '_>, key: &str) -> Option<PathBuf> {
        let (s, span) = self.string(sec, key)?;
        if s.trim().is_empty() {
            self.error(
                &span,
                format!("{}: {} is empty", sec.ctx, sec.key(key)),
                Some(format!(
                    "give a file path (relative to the config file's folder), or remove {}",
                    sec.key(key)
                )),
            );
            return None;
        }
        Some(self.base_dir.join(s))
    }

    /// `ca_file` (extra trusted roots for TLS to `what`), which only an `https://` url can use.
    fn ca_file(&mut self, sec: &Section<'_, '_>, url: Option<&Uri>, what: &str) -> Option<PathBuf> {
        let ca_file = self.path(sec, "ca_file")?;
        if url.is_some_and(|u| u.scheme_str() != Some("https")) {
            let span = sec
                .get("ca_file")
                .map_or(sec.span.clone(), |e| e.span.clone());
            self.error(
                &span,
                format!("{}: ca_file is set but url is not https", sec.ctx),
                Some(format!(
                    "ca_file adds trusted roots for TLS to the {what}; use an https:// url or \
                     remove ca_file"
                )),
            );
        }
        Some(ca_file)
    }

    /// The table of a top-level key (`[gateway]`), or None after reporting another type.
    fn top_table<'a, 'i>(
        &mut self,
        e: &Entry<'a, 'i>,
        ctx: &str,
        header: &str,
    ) -> Option<Section<'a, 'i>> {
        match e.value {
            DeValue::Table(t) => Some(Section::new(ctx.to_string(), "", e.span.clone(), t)),
            other => {
                self.error(
                    &e.key_span,
                    format!("{} must be a table, found {}", e.key, describe(other)),
                    Some(format!("write it as a {header} section")),
                );
                None
            }
        }
    }

    // ---- the document ------------------------------------------------------------------------

    fn document<'a, 'i>(&mut self, root: &'a DeTable<'i>, root_span: Span) -> Option<Config> {
        let top = entries(root);
        let find = |k: &str| top.iter().find(|e| e.key == k);
        // Sections written under a misspelled name: not reported missing on top of the typo.
        let mut misspelled: Vec<&str> = Vec::new();
        for e in &top {
            if TOP_LEVEL.iter().any(|(k, _)| *k == e.key) {
                continue;
            }
            let help = match nearest(e.key, TOP_LEVEL.iter().map(|(k, _)| *k)) {
                Some(near) => {
                    misspelled.push(near);
                    let header = TOP_LEVEL.iter().find(|(k, _)| *k == near).map(|(_, h)| *h);
                    format!("did you mean {}?", header.unwrap_or(near))
                }
                None => format!("the sections are {}", TOP_LEVEL.map(|(_, h)| h).join(", ")),
            };
            self.error(
                &e.key_span,
                format!("unknown top-level key {:?}", e.key),
                Some(help),
            );
        }

        let gateway = match find("gateway") {
            Some(e) => self.gateway(e),
            None => Gateway::default(),
        };
        let listeners = self.listeners(find("listener"));
        let (upstreams, mut names) = self.upstreams(find("upstream"));
        if find("upstream").is_none() && misspelled.contains(&"upstream") {
            names.broken = true;
        }
        let missing = |k: &str| find(k).is_none() && !misspelled.contains(&k);
        let routes = self.routes(find("route"), &names);
        let default_route = match find("default") {
            Some(e) => self
                .top_table(e, "default route", "[default]")
                .map(|mut sec| self.default_route(&mut sec, &names)),
            None => None,
        };
        let access_log = match find("access_log") {
            Some(e) => self.access_log(e),
            None => AccessLog::default(),
        };
        let telemetry = match find("telemetry") {
            Some(e) => self.telemetry(e),
            None => Telemetry::default(),
        };
        let admin = match find("admin") {
            Some(e) => self.admin(e),
            None => Admin::default(),
        };
        let store = match find("store") {
            Some(e) => self.store(e),
            None => None,
        }
        .unwrap_or_else(|| default_store(self.base_dir));
        let route_names: Vec<&str> = routes
            .iter()
            .map(|r| r.name.as_str())
            .chain(std::iter::once("default"))
            .collect();
        let verify = match find("verify") {
            Some(e) => self.verify_jobs(e, &route_names),
            None => Vec::new(),
        };
        let shadow = match find("shadow") {
            Some(e) => self.shadow_settings(e),
            None => ShadowSettings::default(),
        };
        let webhooks = match find("webhook") {
            Some(e) => self.webhooks(e),
            None => Vec::new(),
        };
        let node = match find("node") {
            Some(e) => self.node(e),
            None => Node::default(),
        };
        let fleet = match find("fleet") {
            Some(e) => self.fleet(e),
            None => FleetSettings::default(),
        };
        let redact = match find("redact") {
            Some(e) => self.redaction(e),
            None => Redaction::default(),
        };
        let tracing = match find("tracing") {
            Some(e) => self.tracing(e),
            None => Tracing::default(),
        };
        let slo = match find("slo") {
            Some(e) => self.slo_settings(e),
            None => SloSettings::default(),
        };
        let flags = match find("flag") {
            Some(e) => self.flags(e),
            None => Vec::new(),
        };
        self.check_route_flags(&flags);
        let ofrep = match find("ofrep") {
            Some(e) => self.ofrep(e),
            None => Ofrep::default(),
        };
        let recording = self.recording(find("record"));
        let migrations = match find("migration") {
            Some(e) => self.migrations(e, &routes, &verify),
            None => Vec::new(),
        };

        // Whole-file problems are reported at 1:1.
        let start = root_span.start..root_span.start;
        if missing("listener") && self.scope == Scope::File {
            self.error(
                &start,
                "no [[listener]] configured: ficus would not accept any connection",
                Some(format!(
                    "add one:{HELP_INDENT}[[listener]]{HELP_INDENT}bind = \"0.0.0.0:8080\""
                )),
            );
        }
        if missing("upstream") {
            self.error(
                &start,
                "no upstreams configured",
                Some(format!(
                    "add the service ficus sits in front of:{HELP_INDENT}[upstream.legacy]\
                     {HELP_INDENT}url = \"http://127.0.0.1:9001\""
                )),
            );
        }
        if missing("default") {
            let first = upstreams.first().map_or("legacy", |u| u.name.as_str());
            self.error(
                &start,
                "missing [default] route",
                Some(format!(
                    "add the catch-all route, which takes every request no [[route]] matches:\
                     {HELP_INDENT}[default]{HELP_INDENT}legacy = {first:?}"
                )),
            );
        }

        Some(Config {
            gateway,
            listeners,
            upstreams,
            routes,
            default_route: default_route?,
            access_log,
            telemetry,
            admin,
            store,
            verify,
            shadow,
            webhooks,
            node,
            fleet,
            redact,
            tracing,
            slo,
            flags,
            ofrep,
            recording,
            migrations,
        })
    }

    fn webhooks(&mut self, e: &Entry<'_, '_>) -> Vec<Webhook> {
        let tables = self.array_of_tables(e, "webhook", "[[webhook]]");
        let mut out = Vec::new();
        for (i, (table, span)) in tables.into_iter().enumerate() {
            let sec = Section::new(format!("webhook #{}", i + 1), "", span, table);
            self.unknown_keys(
                &sec,
                &[
                    "url",
                    "events",
                    "timeout",
                    "retries",
                    "ca_file",
                    "secret_file",
                    "format",
                ],
                &[],
                "[[webhook]]",
            );
            let url = match self.string(&sec, "url") {
                Some((u, uspan)) => match u.parse::<Uri>() {
                    Ok(uri)
                        if matches!(uri.scheme_str(), Some("http" | "https"))
                            && uri.authority().is_some() =>
                    {
                        Some(uri)
                    }
                    _ => {
                        self.error(
                            &uspan,
                            format!("{}: url {:?} is not an http:// or https:// URL", sec.ctx, clip(u)),
                            Some("write the receiver's address, e.g. url = \"https://hooks.example.com/ficus\" or \"http://127.0.0.1:9000/hooks/ficus\"".into()),
                        );
                        None
                    }
                },
                None => {
                    if !sec.has("url") {
                        self.error(
                            &sec.span,
                            format!("{}: missing url", sec.ctx),
                            Some("add url = \"https://...\" (or http://)".into()),
                        );
                    }
                    None
                }
            };
            let ca_file = self.ca_file(&sec, url.as_ref(), "receiver");
            let secret_file = self.path(&sec, "secret_file");
            let format = match self.string(&sec, "format") {
                None | Some(("ficus", _)) => WebhookFormat::Ficus,
                Some(("alertmanager", _)) => WebhookFormat::Alertmanager,
                Some((other, span)) => {
                    self.error(
                        &span,
                        format!("{}: unknown format {:?}", sec.ctx, clip(other)),
                        Some(
                            "format is \"ficus\" (each event as JSON, the default) or \
                             \"alertmanager\" (SLO alerts in the body Alertmanager sends to \
                             webhook receivers)"
                                .into(),
                        ),
                    );
                    WebhookFormat::Ficus
                }
            };
            let events = match self.strings(&sec, "events") {
                Some((items, _)) => items.into_iter().map(|(s, _)| s.to_string()).collect(),
                None if format == WebhookFormat::Alertmanager => vec!["slo.".to_string()],
                None => vec!["rollout.".to_string()],
            };
            let timeout = self.duration(&sec, "timeout", defaults::WEBHOOK_TIMEOUT);
            let retries = self
                .bounded(
                    &sec,
                    "retries",
                    0,
                    10,
                    "retries is how many more times a failed POST is tried",
                )
                .map_or(defaults::WEBHOOK_RETRIES, |n| n as u32);
            if let Some(url) = url {
                out.push(Webhook {
                    url,
                    ca_file,
                    secret_file,
                    events,
                    timeout,
                    retries,
                    format,
                });
            }
        }
        out
    }

    fn gateway(&mut self, e: &Entry<'_, '_>) -> Gateway {
        let mut g = Gateway::default();
        let Some(sec) = self.top_table(e, "[gateway]", "[gateway]") else {
            return g;
        };
        self.unknown_keys(&sec, GATEWAY_KEYS, &[], "[gateway]");
        g.header_read_timeout =
            self.duration(&sec, "header_read_timeout", defaults::HEADER_READ_TIMEOUT);
        if let Some((n, span)) = self.size(&sec, "max_header_bytes") {
            if n < defaults::MIN_HEADER_BYTES {
                self.error(
                    &span,
                    format!(
                        "[gateway]: max_header_bytes {} is below the minimum of {}",
                        self.raw(&span),
                        units::format_size(defaults::MIN_HEADER_BYTES)
                    ),
                    Some(format!(
                        "the HTTP/1 parser needs room for at least {} bytes of request head; use \
                         \"{}\" or more (default \"{}\")",
                        defaults::MIN_HEADER_BYTES,
                        units::format_size(defaults::MIN_HEADER_BYTES),
                        units::format_size(defaults::MAX_HEADER_BYTES)
                    )),
                );
            } else {
                g.max_header_bytes = n;
            }
        }
        if let Some((n, span)) = self.integer(&sec, "max_connections") {
            match usize::try_from(n) {
                Ok(n) if n >= 1 => g.max_connections = n,
                _ => self.error(
                    &span,
                    format!(
                        "[gateway]: max_connections {} is out of range",
                        self.raw(&span)
                    ),
                    Some(format!(
                        "max_connections is how many client connections are served at once: at \
                         least 1 (default {})",
                        defaults::MAX_CONNECTIONS
                    )),
                ),
            }
        }
        g.shutdown_grace = self.duration(&sec, "shutdown_grace", defaults::SHUTDOWN_GRACE);
        g.client_body_timeout =
            self.duration(&sec, "client_body_timeout", defaults::CLIENT_BODY_TIMEOUT);
        g.send_timeout = self.duration(&sec, "send_timeout", defaults::SEND_TIMEOUT);
        g.pid_file = self.path(&sec, "pid_file");
        g
    }

    // ---- listeners ---------------------------------------------------------------------------

    fn listeners(&mut self, e: Option<&Entry<'_, '_>>) -> Vec<Listener> {
        let Some(e) = e else {
            return Vec::new();
        };
        let tables = self.array_of_tables(e, "listener", "[[listener]]");
        if tables.is_empty() && matches!(e.value, DeValue::Array(_)) {
            self.error(
                &e.key_span,
                "no listeners configured: listener is empty",
                Some(format!(
                    "add one:{HELP_INDENT}[[listener]]{HELP_INDENT}bind = \"0.0.0.0:8080\""
                )),
            );
        }
        let mut out: Vec<Listener> = Vec::new();
        let mut names: HashMap<String, (usize, usize, bool)> = HashMap::new();
        let mut binds: Vec<(SocketAddr, String)> = Vec::new();
        for (i, (table, span)) in tables.into_iter().enumerate() {
            let index = i + 1;
            let mut sec = Section::new(format!("listener #{index}"), "", span.clone(), table);
            let mut name = format!("listener-{index}");
            let mut name_span = span.clone();
            if let Some((n, nspan)) = self.string(&sec, "name") {
                if !valid_name(n) {
                    self.error(
                        &nspan,
                        format!("listener #{index}: invalid name {:?}", clip(n)),
                        Some(NAME_HELP.to_string()),
                    );
                }
                sec.ctx = format!("listener {n:?}");
                name = n.to_string();
                name_span = nspan;
            }
            match names.get(&name) {
                Some((first_line, first_index, first_explicit)) => {
                    let help = if *first_explicit {
                        format!(
                            "the first listener named {name:?} is at line {first_line}; listener \
                             names must be unique"
                        )
                    } else {
                        format!(
                            "listener #{first_index} (line {first_line}) has no name, so it is \
                             called {name:?}; listener names must be unique"
                        )
                    };
                    let message = if sec.has("name") {
                        format!("duplicate listener name {name:?}")
                    } else {
                        format!("{}: its default name {name:?} is already taken", sec.ctx)
                    };
                    self.error(&name_span, message, Some(help));
                }
                None => {
                    let line = self.line(&name_span);
                    names.insert(name.clone(), (line, index, sec.has("name")));
                }
            }
            self.unknown_keys(&sec, LISTENER_KEYS, &[], "[[listener]]");

            let bind = match self.string(&sec, "bind") {
                Some((b, bspan)) => match b.trim().parse::<SocketAddr>() {
                    Ok(addr) => {
                        self.check_bind(&sec.ctx, addr, &bspan, &binds);
                        binds.push((addr, sec.ctx.clone()));
                        Some(addr)
                    }
                    Err(_) => {
                        let help = if b.trim().parse::<IpAddr>().is_ok() {
                            format!("add a port, e.g. \"{}:8080\"", b.trim())
                        } else {
                            "write an IP address and a port, e.g. \"0.0.0.0:8080\", \
                             \"127.0.0.1:8080\" or \"[::]:8443\" (host names are not resolved)"
                                .to_string()
                        };
                        self.error(
                            &bspan,
                            format!(
                                "{}: bind {:?} is not an IP address and port",
                                sec.ctx,
                                clip(b)
                            ),
                            Some(help),
                        );
                        None
                    }
                },
                None => {
                    if !sec.has("bind") {
                        self.error(
                            &sec.span,
                            format!("{}: missing bind", sec.ctx),
                            Some(
                                "add the address to listen on, e.g. bind = \"0.0.0.0:8080\"".into(),
                            ),
                        );
                    }
                    None
                }
            };

            let tls = self.table(&sec, "tls").and_then(|(t, tspan)| {
                let tsec = Section::new(sec.ctx.clone(), "tls.", tspan, t);
                self.unknown_keys(&tsec, TLS_KEYS, &[], "tls");
                let cert = self.required_path(&tsec, "cert", "the certificate chain (PEM)");
                let key = self.required_path(&tsec, "key", "the private key (PEM)");
                Some(TlsFiles {
                    cert: cert?,
                    key: key?,
                })
            });

            out.push(Listener {
                name,
                bind: bind.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
                tls,
            });
        }
        out
    }

    fn required_path(&mut self, sec: &Section<'_, '_>, key: &str, what: &str) -> Option<PathBuf> {
        if !sec.has(key) {
            self.error(
                &sec.span,
                format!("{}: missing {}", sec.ctx, sec.key(key)),
                Some(format!("add {key} = \"FILE\", the path of {what}")),
            );
            return None;
        }
        self.path(sec, key)
    }

    fn check_bind(
        &mut self,
        ctx: &str,
        addr: SocketAddr,
        span: &Span,
        seen: &[(SocketAddr, String)],
    ) {
        if addr.port() == 0 {
            // Port 0 asks the OS for any free port: two such listeners never collide.
            return;
        }
        for (other, other_ctx) in seen {
            if *other == addr {
                self.error(
                    span,
                    format!("{ctx}: bind {addr} is already used by {other_ctx}"),
                    Some("each listener needs its own address and port".into()),
                );
                return;
            }
            let same_family = other.is_ipv4() == addr.is_ipv4();
            if same_family
                && other.port() == addr.port()
                && (other.ip().is_unspecified() || addr.ip().is_unspecified())
            {
                self.error(
                    span,
                    format!("{ctx}: bind {addr} overlaps {other_ctx} ({other})"),
                    Some(format!(
                        "an unspecified address listens on every address of port {}; use \
                         another port or drop one of the listeners",
                        addr.port()
                    )),
                );
                return;
            }
        }
    }

    /// The tables of `[[key]]`; a lone `[key]` is reported but still read.
    fn array_of_tables<'a, 'i>(
        &mut self,
        e: &Entry<'a, 'i>,
        key: &str,
        header: &str,
    ) -> Vec<(&'a DeTable<'i>, Span)> {
        match e.value {
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item.get_ref() {
                        DeValue::Table(t) => out.push((t, item.span())),
                        other => self.error(
                            &item.span(),
                            format!(
                                "{key} #{} must be a table, found {}",
                                i + 1,
                                describe(other)
                            ),
                            Some(format!("write each {key} as a {header} section")),
                        ),
                    }
                }
                out
            }
            DeValue::Table(t) => {
                self.error(
                    &e.span,
                    format!("{key} must be an array of tables: write {header}"),
                    Some(format!(
                        "use double brackets, {header}, once for each {key}: a file can have \
                         several"
                    )),
                );
                vec![(t, e.span.clone())]
            }
            other => {
                self.error(
                    &e.key_span,
                    format!(
                        "{key} must be an array of tables, found {}",
                        describe(other)
                    ),
                    Some(format!("write each {key} as a {header} section")),
                );
                Vec::new()
            }
        }
    }

    // ---- upstreams ---------------------------------------------------------------------------

    fn upstreams(&mut self, e: Option<&Entry<'_, '_>>) -> (Vec<Upstream>, Upstreams) {
        let mut names = Upstreams {
            names: Vec::new(),
            broken: false,
        };
        let Some(e) = e else {
            return (Vec::new(), names);
        };
        let DeValue::Table(table) = e.value else {
            names.broken = true;
            let help = if matches!(e.value, DeValue::Array(_)) {
                "upstreams are named tables: write [upstream.legacy], [upstream.modern], ..."
            } else {
                "write each upstream as a named table: [upstream.legacy] with url = \"...\""
            };
            self.error(
                &e.key_span,
                format!(
                    "upstream must be a table of named upstreams, found {}",
                    describe(e.value)
                ),
                Some(help.to_string()),
            );
            return (Vec::new(), names);
        };
        let items = entries(table);
        if items.is_empty() {
            self.error(
                &e.span,
                "no upstreams configured: [upstream] is empty",
                Some(format!(
                    "name each upstream:{HELP_INDENT}[upstream.legacy]\
                     {HELP_INDENT}url = \"http://127.0.0.1:9001\""
                )),
            );
        }
        let mut out = Vec::new();
        for item in &items {
            let DeValue::Table(t) = item.value else {
                names.broken = true;
                let help = if UPSTREAM_KEYS.contains(&item.key) {
                    format!(
                        "{} belongs inside a named upstream: [upstream.legacy] then {} = ...",
                        item.key, item.key
                    )
                } else {
                    format!("write [upstream.{}] with url = \"...\"", item.key)
                };
                self.error(
                    &item.key_span,
                    format!(
                        "upstream {:?} must be a table, found {}",
                        item.key,
                        describe(item.value)
                    ),
                    Some(help),
                );
                continue;
            };
            if !valid_name(item.key) {
                self.error(
                    &item.key_span,
                    format!("invalid upstream name {:?}", clip(item.key)),
                    Some(NAME_HELP.to_string()),
                );
            }
            names.names.push(item.key.to_string());
            let sec = Section::new(format!("upstream {:?}", item.key), "", item.span.clone(), t);
            out.push(self.upstream(item.key, &sec));
        }
        (out, names)
    }

    fn upstream(&mut self, name: &str, sec: &Section<'_, '_>) -> Upstream {
        self.unknown_keys(sec, UPSTREAM_KEYS, &[], "[upstream.NAME]");
        let url = match self.string(sec, "url") {
            Some((s, span)) => match parse_upstream_url(s) {
                Ok(uri) => Some(uri),
                Err((problem, help)) => {
                    self.error(
                        &span,
                        format!("{}: url {:?} {problem}", sec.ctx, clip(s)),
                        Some(help),
                    );
                    None
                }
            },
            None => {
                if !sec.has("url") {
                    self.error(
                        &sec.span,
                        format!("{}: missing url", sec.ctx),
                        Some(
                            "add the service's address, e.g. url = \"http://127.0.0.1:9001\""
                                .into(),
                        ),
                    );
                }
                None
            }
        };
        let connect_timeout = self.duration(sec, "connect_timeout", defaults::CONNECT_TIMEOUT);
        let request_timeout = self.duration(sec, "request_timeout", defaults::REQUEST_TIMEOUT);
        let mut max_idle_connections = defaults::MAX_IDLE_CONNECTIONS;
        if let Some((n, span)) = self.integer(sec, "max_idle_connections") {
            match usize::try_from(n) {
                Ok(n) => max_idle_connections = n,
                Err(_) => self.error(
                    &span,
                    format!(
                        "{}: max_idle_connections {} is out of range",
                        sec.ctx,
                        self.raw(&span)
                    ),
                    Some(format!(
                        "the number of idle connections kept open to this upstream: 0 or more \
                         (default {})",
                        defaults::MAX_IDLE_CONNECTIONS
                    )),
                ),
            }
        }
        let pool_idle_timeout =
            self.duration(sec, "pool_idle_timeout", defaults::POOL_IDLE_TIMEOUT);
        let read_timeout = self.duration(sec, "read_timeout", defaults::READ_TIMEOUT);
        let http2 = self.boolean(sec, "http2", false);
        let host = match self.string(sec, "host") {
            None => HostHeader::Preserve,
            Some(("preserve", _)) => HostHeader::Preserve,
            Some(("upstream", _)) => HostHeader::Upstream,
            Some((h, span)) => {
                if h.is_empty() || HeaderValue::from_str(h).is_err() {
                    let problem = if h.is_empty() {
                        "is empty"
                    } else {
                        "is not a valid Host header"
                    };
                    self.error(
                        &span,
                        format!("{}: host {:?} {problem}", sec.ctx, clip(h)),
                        Some(
                            "use \"preserve\" (the client's Host), \"upstream\" (the url's host \
                             and port) or a fixed host name such as \"orders.internal\""
                                .into(),
                        ),
                    );
                }
                HostHeader::Fixed(h.to_string())
            }
        };
        let ca_file = self.ca_file(sec, url.as_ref(), "upstream");
        let limit = self.concurrency(sec);
        let breaker = match self.table(sec, "breaker") {
            Some((t, span)) => {
                let bsec = Section::new(sec.ctx.clone(), "breaker.", span, t);
                Some(self.breaker(&bsec))
            }
            None => None,
        };
        Upstream {
            name: name.to_string(),
            url: url.unwrap_or_default(),
            connect_timeout,
            request_timeout,
            max_idle_connections,
            pool_idle_timeout,
            read_timeout,
            http2,
            host,
            ca_file,
            limit,
            breaker,
        }
    }

    // ---- protection --------------------------------------------------------------------------

    /// A whole number in `min..=max`, reported with `what` (which explains the key) otherwise.
    fn bounded(
        &mut self,
        sec: &Section<'_, '_>,
        key: &str,
        min: i128,
        max: i128,
        what: &str,
    ) -> Option<i128> {
        let (n, span) = self.integer(sec, key)?;
        if (min..=max).contains(&n) {
            return Some(n);
        }
        self.error(
            &span,
            format!(
                "{}: {} {} is out of range",
                sec.ctx,
                sec.key(key),
                self.raw(&span)
            ),
            Some(format!("{what}: from {min} to {max}")),
        );
        None
    }

    /// A number (integer or float) in `min..=max`.
    fn number(
        &mut self,
        sec: &Section<'_, '_>,
        key: &str,
        min: f64,
        max: f64,
        what: &str,
    ) -> Option<f64> {
        let e = sec.get(key)?;
        let n = match e.value {
            DeValue::Integer(i) => int_value(i) as f64,
            DeValue::Float(f) => f.as_str().parse::<f64>().unwrap_or(f64::NAN),
            _ => {
                self.type_error(sec, e, "a number");
                return None;
            }
        };
        if n.is_finite() && n >= min && n <= max {
            return Some(n);
        }
        let span = e.span.clone();
        self.error(
            &span,
            format!(
                "{}: {} {} is out of range",
                sec.ctx,
                sec.key(key),
                self.raw(&span)
            ),
            Some(format!("{what}: from {min} to {max}")),
        );
        None
    }

    fn concurrency(&mut self, sec: &Section<'_, '_>) -> Option<ConcurrencyPolicy> {
        let max = self.bounded(
            sec,
            "max_in_flight",
            1,
            1_000_000,
            "max_in_flight is how many requests this upstream gets at once; beyond, requests \
             wait in its queue or are shed with 503",
        );
        let queue = self
            .bounded(
                sec,
                "queue",
                0,
                1_000_000,
                "queue is how many requests may wait for a slot (0: shed at once)",
            )
            .map_or(defaults::UPSTREAM_QUEUE, |n| n as usize);
        let queue_timeout = self.duration(sec, "queue_timeout", defaults::UPSTREAM_QUEUE_TIMEOUT);
        if !sec.has("max_in_flight") {
            for k in ["queue", "queue_timeout"] {
                if let Some(e) = sec.get(k) {
                    let span = e.key_span.clone();
                    self.error(
                        &span,
                        format!("{}: {k} is set without max_in_flight", sec.ctx),
                        Some("the queue holds requests beyond max_in_flight; set max_in_flight too, or remove it".into()),
                    );
                }
            }
        }
        max.map(|m| ConcurrencyPolicy {
            max_in_flight: m as usize,
            queue,
            queue_timeout,
        })
    }

    fn breaker(&mut self, sec: &Section<'_, '_>) -> BreakerPolicy {
        self.unknown_keys(sec, BREAKER_KEYS, &[], "[upstream.NAME.breaker]");
        let d = BreakerPolicy::default();
        let u32_key = |v: &mut Self, key: &str, min: i128, default: u32, what: &str| {
            v.bounded(sec, key, min, i128::from(u32::MAX), what)
                .map_or(default, |n| n as u32)
        };
        BreakerPolicy {
            consecutive_failures: u32_key(
                self,
                "consecutive_failures",
                0,
                d.consecutive_failures,
                "breaker.consecutive_failures opens the breaker after that many failures in a row (0 turns this trigger off)",
            ),
            failure_rate: self
                .number(
                    sec,
                    "failure_rate",
                    1.0,
                    100.0,
                    "breaker.failure_rate is the percentage of failed requests in the window that opens the breaker",
                )
                .map_or(d.failure_rate, |p| p / 100.0),
            min_requests: u32_key(
                self,
                "min_requests",
                1,
                d.min_requests,
                "breaker.min_requests is how many requests the window needs before its failure rate counts",
            ),
            window: self.duration(sec, "window", d.window),
            open_for: self.duration(sec, "open_for", d.open_for),
            half_open_probes: u32_key(
                self,
                "half_open_probes",
                1,
                d.half_open_probes,
                "breaker.half_open_probes is how many trial requests a half-open breaker lets through",
            ),
        }
    }

    fn retry(&mut self, sec: &Section<'_, '_>) -> RetryPolicy {
        self.unknown_keys(sec, RETRY_KEYS, &[], "[route.retry]");
        let d = RetryPolicy::default();
        let attempts = self
            .bounded(
                sec,
                "attempts",
                1,
                10,
                "retry.attempts is how many times a failed request is sent again",
            )
            .map_or(d.attempts, |n| n as u32);
        let budget = self
            .number(
                sec,
                "budget",
                0.0,
                100.0,
                "retry.budget is the percentage of extra requests retries may add (over the last 10 s)",
            )
            .map_or(d.budget, |p| p / 100.0);
        let min_per_second = self
            .bounded(
                sec,
                "min_per_second",
                0,
                100_000,
                "retry.min_per_second is how many retries per second are allowed whatever the budget",
            )
            .map_or(d.min_per_second, |n| n as u32);
        let backoff = self.duration(sec, "backoff", d.backoff);
        let max_backoff = self.duration(sec, "max_backoff", d.max_backoff.max(backoff));
        if max_backoff < backoff {
            if let Some(e) = sec.get("max_backoff") {
                let span = e.span.clone();
                self.error(
                    &span,
                    format!(
                        "{}: retry.max_backoff is shorter than retry.backoff",
                        sec.ctx
                    ),
                    Some("max_backoff caps the doubling backoff; make it at least backoff".into()),
                );
            }
        }
        RetryPolicy {
            attempts,
            budget,
            min_per_second,
            backoff,
            max_backoff,
        }
    }

    fn cache(&mut self, sec: &Section<'_, '_>) -> CachePolicy {
        self.unknown_keys(sec, CACHE_KEYS, &[], "[route.cache]");
        let d = CachePolicy::default();
        let max_bytes = match self.size(sec, "max_bytes") {
            Some((0, span)) => {
                self.error(
                    &span,
                    format!("{}: cache.max_bytes is 0", sec.ctx),
                    Some(
                        "give the cache room, e.g. max_bytes = \"64MiB\", or remove [route.cache]"
                            .into(),
                    ),
                );
                d.max_bytes
            }
            Some((n, _)) => n,
            None => d.max_bytes,
        };
        let max_entry_bytes = match self.size(sec, "max_entry_bytes") {
            Some((n, span)) if n > max_bytes => {
                self.error(
                    &span,
                    format!(
                        "{}: cache.max_entry_bytes ({}) is larger than cache.max_bytes ({})",
                        sec.ctx,
                        units::format_size(n),
                        units::format_size(max_bytes)
                    ),
                    Some(
                        "one response cannot be larger than the whole cache; lower max_entry_bytes"
                            .into(),
                    ),
                );
                d.max_entry_bytes.min(max_bytes)
            }
            Some((n, _)) => n,
            None => d.max_entry_bytes.min(max_bytes),
        };
        let ttl = sec
            .has("ttl")
            .then(|| self.duration(sec, "ttl", Duration::ZERO));
        let stale_while_revalidate = sec
            .has("stale_while_revalidate")
            .then(|| self.duration(sec, "stale_while_revalidate", Duration::ZERO));
        let max_variants = self
            .bounded(
                sec,
                "max_variants",
                1,
                1000,
                "cache.max_variants is how many Vary variants are kept per URL",
            )
            .map_or(d.max_variants, |n| n as usize);
        CachePolicy {
            max_bytes,
            max_entry_bytes,
            ttl,
            stale_while_revalidate,
            max_variants,
            allow_authorization: self.boolean(sec, "allow_authorization", false),
            allow_set_cookie: self.boolean(sec, "allow_set_cookie", false),
        }
    }

    fn rate_limit(&mut self, sec: &Section<'_, '_>) -> Option<RateLimit> {
        self.unknown_keys(sec, RATE_LIMIT_KEYS, &[], "[route.rate_limit]");
        let per_second = match self.number(
            sec,
            "per_second",
            0.001,
            1_000_000_000.0,
            "rate_limit.per_second is the sustained requests per second each key may make",
        ) {
            Some(n) => Some(n),
            None => {
                if !sec.has("per_second") {
                    self.error(
                        &sec.span,
                        format!("{}: [route.rate_limit] has no per_second", sec.ctx),
                        Some("add per_second = 50 (requests per second per key; 0.5 is one every 2 s)".into()),
                    );
                }
                None
            }
        };
        let burst = self.bounded(
            sec,
            "burst",
            1,
            i128::from(u32::MAX),
            "rate_limit.burst is how many requests a key may make back to back",
        );
        let key = match self.string(sec, "key") {
            None | Some(("client-ip", _)) => RateKey::ClientIp,
            Some(("sticky", _)) => RateKey::Sticky,
            Some(("route", _)) => RateKey::Route,
            Some((k, span)) => match k
                .strip_prefix("header:")
                .map(|h| HeaderName::from_bytes(h.as_bytes()))
            {
                Some(Ok(h)) => RateKey::Header(h),
                _ => {
                    self.error(
                        &span,
                        format!("{}: rate_limit.key {:?} is not a key", sec.ctx, clip(k)),
                        Some("use \"client-ip\" (default), \"header:NAME\", \"sticky\" (the route's sticky key) or \"route\" (one budget for the route)".into()),
                    );
                    RateKey::ClientIp
                }
            },
        };
        let max_keys = self
            .bounded(
                sec,
                "max_keys",
                1,
                100_000_000,
                "rate_limit.max_keys bounds the keys tracked at once",
            )
            .map_or(defaults::RATE_MAX_KEYS, |n| n as usize);
        let per_second = per_second?;
        Some(RateLimit {
            per_second,
            burst: burst.map_or_else(|| (per_second.ceil() as u32).max(1), |n| n as u32),
            key,
            max_keys,
        })
    }

    // ---- routes ------------------------------------------------------------------------------

    fn routes(&mut self, e: Option<&Entry<'_, '_>>, ups: &Upstreams) -> Vec<Route> {
        let Some(e) = e else {
            return Vec::new();
        };
        let tables = self.array_of_tables(e, "route", "[[route]]");
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::new();
        for (i, (table, span)) in tables.into_iter().enumerate() {
            let mut sec = Section::new(format!("route #{}", i + 1), "", span, table);
            out.push(self.route(&mut sec, ups, &mut names));
        }
        out
    }

    fn route(
        &mut self,
        sec: &mut Section<'_, '_>,
        ups: &Upstreams,
        names: &mut HashMap<String, usize>,
    ) -> Route {
        let name = match self.string(sec, "name") {
            Some((n, span)) => {
                if n.is_empty() {
                    self.error(
                        &span,
                        format!("{}: name is empty", sec.ctx),
                        Some(format!("give the route a name; {NAME_HELP}")),
                    );
                } else if !valid_name(n) {
                    self.error(
                        &span,
                        format!("{}: invalid name {:?}", sec.ctx, clip(n)),
                        Some(NAME_HELP.to_string()),
                    );
                } else if n.eq_ignore_ascii_case("default") {
                    self.error(
                        &span,
                        format!("{}: the name {n:?} is reserved", sec.ctx),
                        Some(
                            "\"default\" names the [default] route, which takes every request no \
                             [[route]] matches; choose another name"
                                .into(),
                        ),
                    );
                } else if let Some(first) = names.get(n) {
                    self.error(
                        &span,
                        format!("duplicate route name {n:?}"),
                        Some(format!(
                            "the first route named {n:?} is at line {first}; route names must be \
                             unique"
                        )),
                    );
                } else {
                    names.insert(n.to_string(), self.line(&span));
                }
                if !n.is_empty() {
                    sec.ctx = format!("route {:?}", clip(n));
                }
                n.to_string()
            }
            None => {
                if !sec.has("name") {
                    self.error(
                        &sec.span,
                        format!("{} has no name", sec.ctx),
                        Some(format!(
                            "add name = \"...\"; the name identifies the route in logs, metrics \
                             and commands ({NAME_HELP})"
                        )),
                    );
                }
                String::new()
            }
        };
        let known: Vec<&str> = MATCH_KEYS.iter().chain(ROUTE_KEYS).copied().collect();
        self.unknown_keys(sec, &known, &[], "[[route]]");

        let host = self
            .string(sec, "host")
            .and_then(|(h, span)| self.route_host(sec, h, &span));
        let methods = self.methods(sec, "methods", false).unwrap_or_default();
        let path = self.path_match(sec);
        let headers = self.headers(sec);
        let matcher = RouteMatch {
            host,
            methods,
            path,
            headers,
        };
        self.route_common(sec, name, matcher, ups)
    }

    fn default_route(&mut self, sec: &mut Section<'_, '_>, ups: &Upstreams) -> Route {
        for e in &sec.entries {
            if !MATCH_KEYS.contains(&e.key) {
                continue;
            }
            let (message, help) = if e.key == "name" {
                (
                    "default route: name is not allowed: the default route is always named \
                     \"default\""
                        .to_string(),
                    "remove name".to_string(),
                )
            } else {
                (
                    format!(
                        "default route: {} is not allowed: the default route matches every request",
                        e.key
                    ),
                    format!(
                        "move {} into a [[route]]; [default] takes every request no route matches",
                        e.key
                    ),
                )
            };
            let span = e.key_span.clone();
            self.error(&span, message, Some(help));
        }
        self.unknown_keys(sec, ROUTE_KEYS, MATCH_KEYS, "[default]");
        self.route_common(sec, "default".to_string(), RouteMatch::default(), ups)
    }

    /// The keys `[[route]]` and `[default]` share: the migration state.
    fn route_common(
        &mut self,
        sec: &Section<'_, '_>,
        name: String,
        matcher: RouteMatch,
        ups: &Upstreams,
    ) -> Route {
        let legacy = match self.string(sec, "legacy") {
            Some((l, span)) => {
                self.check_upstream(sec, l, &span, ups);
                l.to_string()
            }
            None => {
                if !sec.has("legacy") {
                    let example = ups.names.first().map_or("legacy", |n| n.as_str());
                    self.error(
                        &sec.span,
                        format!("{}: missing legacy", sec.ctx),
                        Some(format!(
                            "add legacy = {example:?}, naming the upstream that serves these \
                             requests today{}",
                            known_upstreams(ups, "; ")
                        )),
                    );
                }
                String::new()
            }
        };
        let modern = self.string(sec, "modern").map(|(m, span)| {
            self.check_upstream(sec, m, &span, ups);
            if m == legacy {
                self.error(
                    &span,
                    format!("{}: modern and legacy are both {m:?}", sec.ctx),
                    Some(
                        "modern names the new service's upstream; it must differ from legacy"
                            .into(),
                    ),
                );
            }
            m.to_string()
        });
        let stage = match self.string(sec, "stage") {
            None => Stage::Legacy,
            Some((s, span)) => match Stage::parse(s) {
                Some(stage) => {
                    if stage.uses_modern() && !sec.has("modern") {
                        self.error(
                            &span,
                            format!("{}: stage {s:?} needs a modern upstream", sec.ctx),
                            Some("add modern = \"...\" naming the new service's upstream".into()),
                        );
                    }
                    stage
                }
                None => {
                    let stages = Stage::ALL.map(Stage::as_str);
                    self.error(
                        &span,
                        format!("{}: unknown stage {:?}", sec.ctx, clip(s)),
                        Some(format!("{}{STAGES_HELP}", did_you_mean(s, stages))),
                    );
                    Stage::Legacy
                }
            },
        };
        let weight = self.weight(sec);
        let sticky = match self.string(sec, "sticky") {
            None => StickyKey::ClientIp,
            Some((s, span)) => match parse_sticky(s) {
                Ok(k) => k,
                Err((problem, help)) => {
                    self.error(
                        &span,
                        format!("{}: invalid sticky key {:?}{problem}", sec.ctx, clip(s)),
                        Some(help),
                    );
                    StickyKey::ClientIp
                }
            },
        };
        let max_body_bytes = self
            .size(sec, "max_body")
            .map_or(defaults::MAX_BODY_BYTES, |(n, _)| n);
        let debug_header = self.boolean(sec, "debug_header", false);
        let shadow_writes = self.boolean(sec, "shadow_writes", false);
        let priority = match self.string(sec, "priority") {
            None => Priority::Normal,
            Some((p, span)) => Priority::parse(p).unwrap_or_else(|| {
                self.error(
                    &span,
                    format!("{}: unknown priority {:?}", sec.ctx, clip(p)),
                    Some("priority is \"critical\" (shed last), \"normal\" (default) or \"low\" (shed first)".into()),
                );
                Priority::Normal
            }),
        };
        let retry = match self.table(sec, "retry") {
            Some((t, span)) => {
                let rsec = Section::new(sec.ctx.clone(), "retry.", span, t);
                Some(self.retry(&rsec))
            }
            None => None,
        };
        let cache = match self.table(sec, "cache") {
            Some((t, span)) => {
                let csec = Section::new(sec.ctx.clone(), "cache.", span, t);
                Some(self.cache(&csec))
            }
            None => None,
        };
        let rollout = match self.table(sec, "rollout") {
            Some((t, span)) => {
                if !sec.has("modern") {
                    self.error(
                        &span,
                        format!("{}: [route.rollout] needs a modern upstream", sec.ctx),
                        Some(
                            "a rollout moves users from legacy to modern; add modern = \"...\""
                                .into(),
                        ),
                    );
                }
                let rsec = Section::new(sec.ctx.clone(), "rollout.", span, t);
                self.rollout(&rsec)
            }
            None => None,
        };
        let slos = self.route_slos(sec);
        let flag = self.route_flag(sec);
        let forward_flags = self.forward_flags(sec);
        let record = self.route_record(sec);
        let rate_limit = match self.table(sec, "rate_limit") {
            Some((t, span)) => {
                let rsec = Section::new(sec.ctx.clone(), "rate_limit.", span, t);
                self.rate_limit(&rsec)
            }
            None => None,
        };
        let shadow = match self.table(sec, "shadow") {
            Some((t, span)) => {
                let ssec = Section::new(sec.ctx.clone(), "shadow.", span, t);
                self.route_shadow(&ssec)
            }
            None => ShadowPolicy::default(),
        };
        let fallback = match self.table(sec, "fallback") {
            Some((t, span)) => {
                let fsec = Section::new(sec.ctx.clone(), "fallback.", span, t);
                self.fallback(&fsec, max_body_bytes)
            }
            None => FallbackPolicy {
                max_buffered_body: defaults::MAX_BUFFERED_BODY.min(max_body_bytes),
                ..FallbackPolicy::default()
            },
        };
        Route {
            name,
            matcher,
            legacy,
            modern,
            stage,
            weight,
            sticky,
            fallback,
            max_body_bytes,
            debug_header,
            shadow_writes,
            shadow,
            priority,
            rate_limit,
            retry,
            cache,
            rollout,
            slos,
            flag,
            forward_flags,
            record,
        }
    }

    /// An array of numbers (percentages), reported item by item.
    fn numbers(&mut self, sec: &Section<'_, '_>, key: &str) -> Option<Vec<f64>> {
        let e = sec.get(key)?;
        let DeValue::Array(items) = e.value else {
            self.type_error(sec, e, "an array of numbers");
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::Integer(i) => out.push(int_value(i) as f64),
                DeValue::Float(f) => out.push(f.as_str().parse::<f64>().unwrap_or(f64::NAN)),
                other => self.error(
                    &item.span(),
                    format!(
                        "{}: {} must be an array of numbers, found {} in it",
                        sec.ctx,
                        sec.key(key),
                        describe(other)
                    ),
                    Some(format!("write e.g. {key} = [1, 5, 25, 50, 100]")),
                ),
            }
        }
        Some(out)
    }

    fn rollout(&mut self, sec: &Section<'_, '_>) -> Option<RolloutPolicy> {
        self.unknown_keys(sec, ROLLOUT_KEYS, &[], "[route.rollout]");
        let mut spec = ficus_rollout::RolloutSpec {
            steps: defaults::ROLLOUT_STEPS.to_vec(),
            step: ficus_rollout::StepSpec {
                min_requests: defaults::ROLLOUT_MIN_REQUESTS,
                interval: defaults::ROLLOUT_INTERVAL,
            },
            gates: ficus_rollout::Gates::recommended(),
        };
        if let Some(steps) = self.numbers(sec, "steps") {
            spec.steps = steps;
        }
        spec.step.interval = self.duration(sec, "interval", defaults::ROLLOUT_INTERVAL);
        if let Some(n) = self.bounded(
            sec,
            "min_requests",
            1,
            1_000_000_000,
            "rollout.min_requests is how many requests each side needs in a step before it may promote",
        ) {
            spec.step.min_requests = n as u64;
        }
        if let Some((g, gspan)) = self.table(sec, "gates") {
            let gsec = Section::new(sec.ctx.clone(), "rollout.gates.", gspan, g);
            self.unknown_keys(&gsec, GATE_KEYS, &[], "[route.rollout.gates]");
            // Listing any gate means exactly the gates listed.
            spec.gates = ficus_rollout::Gates::default();
            let d = ficus_rollout::Gates::recommended();
            if let Some((t, span)) = self.table(&gsec, "error") {
                let esec = Section::new(sec.ctx.clone(), "rollout.gates.error.", span, t);
                self.unknown_keys(
                    &esec,
                    &["max_absolute", "max_relative", "alpha", "critical"],
                    &[],
                    "[route.rollout.gates] error",
                );
                let mut e = d.error.clone().unwrap_or_default();
                if let Some(n) = self.number(&esec, "max_absolute", 0.0, 100.0, "max_absolute is how many percentage points modern's error rate may exceed legacy's") {
                    e.max_absolute = n / 100.0;
                }
                if let Some(n) = self.number(
                    &esec,
                    "max_relative",
                    1.0,
                    1000.0,
                    "max_relative is how many times legacy's error rate modern may reach",
                ) {
                    e.max_relative = n;
                }
                if let Some(n) = self.number(
                    &esec,
                    "alpha",
                    0.000001,
                    0.5,
                    "alpha is the false-rollback probability per step",
                ) {
                    e.alpha = n;
                }
                e.critical = self.boolean(&esec, "critical", e.critical);
                spec.gates.error = Some(e);
            }
            if let Some((t, span)) = self.table(&gsec, "latency") {
                let lsec = Section::new(sec.ctx.clone(), "rollout.gates.latency.", span, t);
                self.unknown_keys(
                    &lsec,
                    &[
                        "max_p99_ratio",
                        "min_delta",
                        "max_p99",
                        "rank_test",
                        "alpha",
                        "min_effect",
                        "critical",
                    ],
                    &[],
                    "[route.rollout.gates] latency",
                );
                let mut l = d.latency.clone().unwrap_or_default();
                if let Some(n) = self.number(
                    &lsec,
                    "max_p99_ratio",
                    1.0,
                    1000.0,
                    "max_p99_ratio is how many times legacy's p99 modern's may reach",
                ) {
                    l.max_p99_ratio = n;
                }
                // A slowdown smaller than this never fails the gate, however significant.
                l.min_delta = self.duration(&lsec, "min_delta", l.min_delta);
                // An invalid budget is reported here; keeping none avoids a second error.
                l.max_p99 = lsec
                    .has("max_p99")
                    .then(|| self.duration(&lsec, "max_p99", Duration::ZERO))
                    .filter(|d| !d.is_zero());
                l.rank_test = self.boolean(&lsec, "rank_test", l.rank_test);
                if let Some(n) = self.number(
                    &lsec,
                    "alpha",
                    0.000001,
                    0.5,
                    "alpha is the significance of the rank test",
                ) {
                    l.alpha = n;
                }
                if let Some(n) = self.number(&lsec, "min_effect", 1.0, 1000.0, "min_effect is the median slowdown (modern / legacy) below which the rank test never fails") {
                    l.min_effect = n;
                }
                l.critical = self.boolean(&lsec, "critical", l.critical);
                spec.gates.latency = Some(l);
            }
            if let Some((t, span)) = self.table(&gsec, "shadow") {
                let ssec = Section::new(sec.ctx.clone(), "rollout.gates.shadow.", span, t);
                self.unknown_keys(
                    &ssec,
                    &["max_rate", "min_compared", "alpha", "critical"],
                    &[],
                    "[route.rollout.gates] shadow",
                );
                let mut g = ficus_rollout::ShadowGate::default();
                if let Some(n) = self.number(&ssec, "max_rate", 0.0, 100.0, "max_rate is the highest real-difference rate (percent) of the shadow comparison") {
                    g.max_rate = n / 100.0;
                }
                if let Some(n) = self.bounded(
                    &ssec,
                    "min_compared",
                    1,
                    1_000_000_000,
                    "min_compared is how many comparisons the gate needs",
                ) {
                    g.min_compared = n as u64;
                }
                if let Some(n) = self.number(
                    &ssec,
                    "alpha",
                    0.000001,
                    0.5,
                    "alpha is the false-failure probability of the gate",
                ) {
                    g.alpha = n;
                }
                g.critical = self.boolean(&ssec, "critical", g.critical);
                spec.gates.shadow = Some(g);
            }
        }
        if let Err(errors) = ficus_rollout::validate(&spec) {
            for e in errors {
                let span = sec
                    .get(e.field.split(['.', '[']).next().unwrap_or(""))
                    .map_or(sec.span.clone(), |x| x.span.clone());
                self.error(
                    &span,
                    format!("{}: rollout.{}: {}", sec.ctx, e.field, e.problem),
                    Some(e.fix.clone()),
                );
            }
        }
        let manual = self.numbers(sec, "manual").unwrap_or_default();
        for m in &manual {
            if !spec.steps.contains(m) {
                let span = sec
                    .get("manual")
                    .map_or(sec.span.clone(), |x| x.span.clone());
                self.error(
                    &span,
                    format!("{}: rollout.manual {m} is not one of the steps", sec.ctx),
                    Some(
                        "manual lists the steps (weights) that wait for `ficus rollout promote`"
                            .into(),
                    ),
                );
            }
        }
        let stage_key = |v: &mut Self, key: &str, default: Stage, allowed: &[Stage]| -> Stage {
            match v.string(sec, key) {
                None => default,
                Some((s, span)) => match Stage::parse(s).filter(|st| allowed.contains(st)) {
                    Some(st) => st,
                    None => {
                        let names: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
                        v.error(
                            &span,
                            format!("{}: rollout.{key} {:?} is not allowed", sec.ctx, clip(s)),
                            Some(format!("use one of: {}", names.join(", "))),
                        );
                        default
                    }
                },
            }
        };
        let after = stage_key(
            self,
            "after",
            Stage::Modern,
            &[Stage::Modern, Stage::Retired],
        );
        let on_rollback = stage_key(
            self,
            "on_rollback",
            Stage::Shadow,
            &[Stage::Shadow, Stage::Legacy],
        );
        let retire_after = sec
            .has("retire_after")
            .then(|| self.duration(sec, "retire_after", Duration::ZERO));
        let max_step_time = self.duration(sec, "max_step_time", defaults::ROLLOUT_MAX_STEP_TIME);
        Some(RolloutPolicy {
            spec,
            manual,
            after,
            retire_after,
            on_rollback,
            max_step_time,
        })
    }

    // ---- shadow ------------------------------------------------------------------------------

    fn route_shadow(&mut self, sec: &Section<'_, '_>) -> ShadowPolicy {
        self.unknown_keys(sec, ROUTE_SHADOW_KEYS, &[], "[route.shadow]");
        let d = ShadowPolicy::default();
        let sample = self.percent(
            sec,
            "sample",
            d.sample,
            "shadow.sample is the percentage of sticky keys whose requests are mirrored to modern",
        );
        let noise_sample = self.percent(
            sec,
            "noise_sample",
            d.noise_sample,
            "shadow.noise_sample is the percentage of mirrored safe requests also sent to legacy \
             a second time, to learn which fields legacy itself changes",
        );
        let header_names = |v: &mut Self, key: &str| -> Vec<String> {
            let Some((items, _)) = v.strings(sec, key) else {
                return Vec::new();
            };
            let mut out = Vec::new();
            for (h, span) in items {
                if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                    v.error(
                        &span,
                        format!(
                            "{}: {} {:?} is not a header name",
                            sec.ctx,
                            sec.key(key),
                            clip(h)
                        ),
                        Some("header names are tokens such as \"content-type\"".into()),
                    );
                } else {
                    out.push(h.to_ascii_lowercase());
                }
            }
            out
        };
        let headers = header_names(self, "headers");
        let ignore_headers = header_names(self, "ignore_headers");
        let redact = header_names(self, "redact");
        let json_paths = |v: &mut Self, key: &str| -> Vec<String> {
            let Some((items, _)) = v.strings(sec, key) else {
                return Vec::new();
            };
            let mut out = Vec::new();
            for (p, span) in items {
                if v.check_json_path(sec, key, p, &span) {
                    out.push(p.to_string());
                }
            }
            out
        };
        let ignore = json_paths(self, "ignore");
        let unordered = json_paths(self, "unordered");
        let mut tolerance = Vec::new();
        if let Some((t, tspan)) = self.table(sec, "tolerance") {
            let tsec = Section::new(sec.ctx.clone(), "shadow.tolerance.", tspan, t);
            for e in &tsec.entries {
                let v = match e.value {
                    DeValue::Integer(i) => Some(int_value(i) as f64),
                    DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
                    _ => None,
                };
                if !self.check_json_path(&tsec, "", e.key, &e.key_span) {
                    continue;
                }
                match v {
                    Some(v) if v.is_finite() && v >= 0.0 => tolerance.push((e.key.to_string(), v)),
                    _ => self.error(
                        &e.span,
                        format!(
                            "{}: shadow.tolerance.{:?} must be a number of at least 0, found {}",
                            sec.ctx,
                            e.key,
                            describe(e.value)
                        ),
                        Some(format!(
                            "write the largest difference that still counts as equal, e.g. \
                             \"{}\" = 0.01",
                            e.key
                        )),
                    ),
                }
            }
        }
        ShadowPolicy {
            sample,
            canary: self.boolean(sec, "canary", d.canary),
            noise_sample,
            headers,
            ignore_headers,
            ignore,
            tolerance,
            unordered,
            trim: self.boolean(sec, "trim", d.trim),
            collapse_whitespace: self.boolean(sec, "collapse_whitespace", d.collapse_whitespace),
            ignore_case: self.boolean(sec, "ignore_case", d.ignore_case),
            redact,
        }
    }

    /// A JSON path pattern as ficus-compare reads it; reports it and returns false otherwise.
    fn check_json_path(&mut self, sec: &Section<'_, '_>, key: &str, p: &str, span: &Span) -> bool {
        match ficus_compare::parse_path(p) {
            Ok(_) => true,
            Err(e) => {
                // The error names the pattern, the position and what paths look like.
                let key = if key.is_empty() {
                    "shadow.tolerance".to_string()
                } else {
                    sec.key(key)
                };
                self.error(span, format!("{}: {key}: {e}", sec.ctx), None);
                false
            }
        }
    }

    fn shadow_settings(&mut self, e: &Entry<'_, '_>) -> ShadowSettings {
        let mut s = ShadowSettings::default();
        let Some(sec) = self.top_table(e, "[shadow]", "[shadow]") else {
            return s;
        };
        self.unknown_keys(&sec, SHADOW_KEYS, &[], "[shadow]");
        let counts: [(&str, i128, i128, &mut usize, &str); 4] = [
            (
                "queue",
                1,
                1 << 20,
                &mut s.queue,
                "queue is how many mirrored requests may wait for the mirror worker",
            ),
            (
                "max_in_flight",
                1,
                10_000,
                &mut s.max_in_flight,
                "max_in_flight is how many mirror exchanges run at once",
            ),
            (
                "samples_per_field",
                0,
                100,
                &mut s.samples_per_field,
                "samples_per_field is how many example exchanges are kept per field path",
            ),
            (
                "max_fields",
                1,
                1_000_000,
                &mut s.max_fields,
                "max_fields bounds the (route, endpoint, field) keys tracked",
            ),
        ];
        for (key, min, max, slot, what) in counts {
            if let Some(n) = self.bounded(&sec, key, min, max, what) {
                *slot = n as usize;
            }
        }
        if let Some((n, span)) = self.size(&sec, "max_body") {
            if n == 0 || n > 64 * 1024 * 1024 {
                self.error(
                    &span,
                    format!("[shadow]: max_body {} is out of range", self.raw(&span)),
                    Some(format!(
                        "max_body is the largest body kept for a comparison: from 1 byte to \
                         \"64MiB\" (default \"{}\")",
                        units::format_size(defaults::SHADOW_MAX_BODY)
                    )),
                );
            } else {
                s.max_body = n;
            }
        }
        for (key, slot, what) in [
            (
                "noise_relative",
                &mut s.noise_relative,
                "noise_relative is how much more often (percent of its own rate) a field must differ legacy-vs-modern than legacy-vs-legacy to count as real",
            ),
            (
                "noise_absolute",
                &mut s.noise_absolute,
                "noise_absolute is by how many percentage points a field's legacy-vs-modern rate must exceed its legacy-vs-legacy rate to count as real",
            ),
        ] {
            if let Some(n) = self.number(&sec, key, 0.0, 100.0, what) {
                *slot = n / 100.0;
            }
        }
        // parse_duration refuses zero.
        s.flush_interval = self.duration(&sec, "flush_interval", defaults::SHADOW_FLUSH_INTERVAL);
        s
    }

    fn check_upstream(&mut self, sec: &Section<'_, '_>, name: &str, span: &Span, ups: &Upstreams) {
        if ups.broken || ups.names.iter().any(|n| n == name) {
            return;
        }
        let help = if ups.names.is_empty() {
            format!("no upstreams are defined; add [upstream.{name}] with its url")
        } else {
            format!(
                "{}{}",
                did_you_mean(name, ups.names.iter().map(String::as_str)),
                known_upstreams(ups, "")
            )
        };
        self.error(
            span,
            format!("{}: unknown upstream {:?}", sec.ctx, clip(name)),
            Some(help),
        );
    }

    fn weight(&mut self, sec: &Section<'_, '_>) -> Weight {
        self.percent(
            sec,
            "weight",
            Weight::ZERO,
            "weight is the percentage of sticky keys that modern answers",
        )
    }

    /// A percentage with at most two decimals (a [`Weight`]); `what` explains the key.
    fn percent(&mut self, sec: &Section<'_, '_>, key: &str, default: Weight, what: &str) -> Weight {
        let Some(e) = sec.get(key) else {
            return default;
        };
        let name = sec.key(key);
        let percent = match e.value {
            // Beyond f64's integer precision is far out of range anyway.
            DeValue::Integer(i) => int_value(i) as f64,
            DeValue::Float(f) => f.as_str().parse::<f64>().unwrap_or(f64::NAN),
            _ => {
                self.type_error(sec, e, "a number from 0 to 100");
                return default;
            }
        };
        if let Some(w) = Weight::from_percent(percent) {
            return w;
        }
        let raw = self.raw(&e.span);
        if !(0.0..=100.0).contains(&percent) {
            self.error(
                &e.span,
                format!("{}: {name} {raw} is out of range", sec.ctx),
                Some(format!("{what}: a number from 0 to 100")),
            );
        } else {
            let bp = percent * 100.0;
            let show = |bp: f64| {
                let w = Weight::from_basis_points(bp as u16).unwrap_or(Weight::MAX);
                w.to_string().trim_end_matches('%').to_string()
            };
            self.error(
                &e.span,
                format!("{}: {name} {raw} has more than two decimals", sec.ctx),
                Some(format!(
                    "{} go in steps of 0.01 percent; use {} or {}",
                    if key == "weight" {
                        "weights"
                    } else {
                        "percentages"
                    },
                    show(bp.floor()),
                    show(bp.ceil())
                )),
            );
        }
        default
    }

    fn fallback(&mut self, sec: &Section<'_, '_>, max_body: u64) -> FallbackPolicy {
        self.unknown_keys(sec, FALLBACK_KEYS, &[], "[route.fallback]");
        let mut f = FallbackPolicy {
            max_buffered_body: defaults::MAX_BUFFERED_BODY.min(max_body),
            ..FallbackPolicy::default()
        };
        f.enabled = self.boolean(sec, "enabled", f.enabled);
        if let Some(methods) = self.methods(sec, "methods", true) {
            f.methods = methods;
        }
        if let Some(e) = sec.get("on_status") {
            match e.value {
                DeValue::Array(items) => {
                    let mut statuses: Vec<u16> = Vec::new();
                    for item in items.iter() {
                        let span = item.span();
                        match item.get_ref() {
                            DeValue::Integer(i) => {
                                let n = int_value(i);
                                match u16::try_from(n) {
                                    Ok(s) if (500..=599).contains(&s) => {
                                        if statuses.contains(&s) {
                                            self.error(
                                                &span,
                                                format!(
                                                    "{}: status {s} is listed twice in \
                                                     fallback.on_status",
                                                    sec.ctx
                                                ),
                                                Some(format!("remove the second {s}")),
                                            );
                                        } else {
                                            statuses.push(s);
                                        }
                                    }
                                    _ => self.error(
                                        &span,
                                        format!(
                                            "{}: fallback.on_status {n} is not a 5xx status",
                                            sec.ctx
                                        ),
                                        Some(
                                            "fallback only retries server errors, 500 to 599; \
                                             any other status from modern is an answer"
                                                .into(),
                                        ),
                                    ),
                                }
                            }
                            other => self.error(
                                &span,
                                format!(
                                    "{}: fallback.on_status must be an array of status codes, \
                                     found {} in it",
                                    sec.ctx,
                                    describe(other)
                                ),
                                Some("write e.g. on_status = [502, 503, 504]".into()),
                            ),
                        }
                    }
                    f.on_status = statuses;
                }
                _ => self.type_error(sec, e, "an array of status codes"),
            }
        }
        f.on_timeout = self.boolean(sec, "on_timeout", f.on_timeout);
        if let Some((n, span)) = self.size(sec, "max_buffered_body") {
            if n > max_body {
                self.error(
                    &span,
                    format!(
                        "{}: fallback.max_buffered_body ({}) is larger than max_body ({})",
                        sec.ctx,
                        units::format_size(n),
                        units::format_size(max_body)
                    ),
                    Some(format!(
                        "only a body the route accepts can be buffered; lower \
                         fallback.max_buffered_body to at most \"{}\" or raise max_body",
                        units::format_size(max_body)
                    )),
                );
            } else {
                f.max_buffered_body = n;
            }
        }
        f
    }

    /// A method list: upper-case tokens, no duplicates; empty only when `allow_empty`.
    fn methods(
        &mut self,
        sec: &Section<'_, '_>,
        key: &str,
        allow_empty: bool,
    ) -> Option<Vec<Method>> {
        let (items, span) = self.strings(sec, key)?;
        let name = sec.key(key);
        if items.is_empty() && !allow_empty {
            self.error(
                &span,
                format!("{}: {name} is empty", sec.ctx),
                Some(format!("remove {key} to match every method")),
            );
        }
        let mut out: Vec<Method> = Vec::new();
        for (m, mspan) in items {
            match Method::from_bytes(m.as_bytes()) {
                Ok(_) if m.bytes().any(|b| b.is_ascii_lowercase()) => {
                    self.error(
                        &mspan,
                        format!("{}: method {m:?} in {name} must be upper-case", sec.ctx),
                        Some(format!("write {:?}", m.to_ascii_uppercase())),
                    );
                }
                Ok(method) => {
                    if out.contains(&method) {
                        self.error(
                            &mspan,
                            format!("{}: method {m:?} is listed twice in {name}", sec.ctx),
                            Some(format!("remove the second {m:?}")),
                        );
                    } else {
                        out.push(method);
                    }
                }
                Err(_) => self.error(
                    &mspan,
                    format!("{}: invalid method {:?} in {name}", sec.ctx, clip(m)),
                    Some(METHOD_HELP.into()),
                ),
            }
        }
        Some(out)
    }

    fn route_host(&mut self, sec: &Section<'_, '_>, h: &str, span: &Span) -> Option<String> {
        let lower = h.to_ascii_lowercase();
        if let Some(inner) = lower.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            if inner.parse::<Ipv6Addr>().is_ok() {
                return Some(lower);
            }
        }
        let problem = if lower.is_empty() {
            Some(("is empty", "remove host to match every host".to_string()))
        } else if let Some((bare, _)) = lower.split_once(':').filter(|_| !lower.starts_with('[')) {
            Some((
                "must not include a port",
                format!("hosts are matched without the port: write host = {bare:?}"),
            ))
        } else {
            let body = lower.strip_prefix("*.").unwrap_or(&lower);
            let ok = body.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
            (!ok).then(|| {
                (
                    "is not a valid host name",
                    "write a host name such as \"api.example.com\", or \"*.example.com\" for \
                     its subdomains"
                        .to_string(),
                )
            })
        };
        match problem {
            None => Some(lower),
            Some((problem, help)) => {
                self.error(
                    span,
                    format!("{}: host {:?} {problem}", sec.ctx, clip(h)),
                    Some(help),
                );
                None
            }
        }
    }

    fn path_match(&mut self, sec: &Section<'_, '_>) -> PathMatch {
        let present: Vec<&Entry<'_, '_>> = sec
            .entries
            .iter()
            .filter(|e| PATH_KEYS.contains(&e.key))
            .collect();
        if let Some(first) = present.first() {
            for extra in &present[1..] {
                self.error(
                    &extra.key_span,
                    format!("{}: both {} and {} are set", sec.ctx, first.key, extra.key),
                    Some(
                        "a route matches on at most one of path_prefix, path and template; \
                         use one route for each"
                            .into(),
                    ),
                );
            }
        }
        let mut result = PathMatch::Any;
        for (i, key) in present.iter().map(|e| e.key).enumerate() {
            let Some((p, span)) = self.string(sec, key) else {
                continue;
            };
            let Some(m) = self.check_path(sec, key, p, &span) else {
                continue;
            };
            if i == 0 {
                result = m;
            }
        }
        result
    }

    fn check_path(
        &mut self,
        sec: &Section<'_, '_>,
        key: &str,
        p: &str,
        span: &Span,
    ) -> Option<PathMatch> {
        if !p.starts_with('/') {
            self.error(
                span,
                format!("{}: {key} {:?} must start with \"/\"", sec.ctx, clip(p)),
                Some(format!("write {key} = \"/{p}\"")),
            );
            return None;
        }
        if let Some(c) = p
            .chars()
            .find(|c| !c.is_ascii_graphic() || *c == '?' || *c == '#')
        {
            let (what, help) = match c {
                '?' => (
                    "a query ('?')".to_string(),
                    "routes match the path only; remove the query",
                ),
                '#' => (
                    "a fragment ('#')".to_string(),
                    "fragments never reach the server; remove it",
                ),
                ' ' => (
                    "a space".to_string(),
                    "write the path as it is sent, percent-encoded: a space is %20",
                ),
                c => (
                    format!("{c:?}"),
                    "write the path as it is sent, percent-encoded (e.g. %C3%A9 for 'é')",
                ),
            };
            self.error(
                span,
                format!("{}: {key} {:?} contains {what}", sec.ctx, clip(p)),
                Some(help.to_string()),
            );
            return None;
        }
        match key {
            "path_prefix" => {
                let trimmed = p.trim_end_matches('/');
                Some(PathMatch::Prefix(if trimmed.is_empty() {
                    "/".to_string()
                } else {
                    trimmed.to_string()
                }))
            }
            "path" => Some(PathMatch::Exact(p.to_string())),
            _ => self
                .check_template(sec, p, span)
                .then(|| PathMatch::Template(p.to_string())),
        }
    }

    fn check_template(&mut self, sec: &Section<'_, '_>, t: &str, span: &Span) -> bool {
        let mut names: Vec<&str> = Vec::new();
        let mut ok = true;
        for seg in t[1..].split('/') {
            let placeholder = seg
                .strip_prefix('{')
                .and_then(|s| s.strip_suffix('}'))
                .filter(|n| {
                    !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                });
            match placeholder {
                Some(name) => {
                    if names.contains(&name) {
                        self.error(
                            span,
                            format!("{}: template {:?} uses {{{name}}} twice", sec.ctx, clip(t)),
                            Some(
                                "give each placeholder its own name, e.g. {order} and {item}"
                                    .into(),
                            ),
                        );
                        ok = false;
                    }
                    names.push(name);
                }
                None if seg.contains(['{', '}']) => {
                    self.error(
                        span,
                        format!(
                            "{}: template {:?} has an invalid segment {:?}",
                            sec.ctx,
                            clip(t),
                            clip(seg)
                        ),
                        Some(
                            "a segment is either literal text or a whole {name} placeholder \
                             (letters, digits, _), e.g. \"/orders/{id}/items\""
                                .into(),
                        ),
                    );
                    ok = false;
                }
                None => {}
            }
        }
        ok
    }

    fn headers(&mut self, sec: &Section<'_, '_>) -> Vec<(HeaderName, HeaderValue)> {
        let Some((t, span)) = self.table(sec, "headers") else {
            return Vec::new();
        };
        let hsec = Section::new(sec.ctx.clone(), "headers.", span, t);
        let mut out: Vec<(HeaderName, HeaderValue)> = Vec::new();
        for e in &hsec.entries {
            let name =
                match HeaderName::from_bytes(e.key.as_bytes()) {
                    Ok(n) => Some(n),
                    Err(_) => {
                        self.error(
                        &e.key_span,
                        format!("{}: invalid header name {:?} in headers", sec.ctx, clip(e.key)),
                        Some(
                            "header names are letters, digits and !#$%&'*+-.^_`|~ (no spaces or \
                             colons)"
                                .into(),
                        ),
                    );
                        None
                    }
                };
            let value = match e.value {
                DeValue::String(v) => match HeaderValue::from_str(v) {
                    Ok(v) => Some(v),
                    Err(_) => {
                        self.error(
                            &e.span,
                            format!("{}: invalid value for header {:?}", sec.ctx, clip(e.key)),
                            Some("header values cannot contain control characters such as line breaks".into()),
                        );
                        None
                    }
                },
                _ => {
                    self.error(
                        &e.span,
                        format!(
                            "{}: header {:?} must be a string, found {}",
                            sec.ctx,
                            clip(e.key),
                            describe(e.value)
                        ),
                        Some(format!("put it in quotes: \"{}\"", self.raw(&e.span))),
                    );
                    None
                }
            };
            if let (Some(name), Some(value)) = (name, value) {
                if out.iter().any(|(n, _)| *n == name) {
                    self.error(
                        &e.key_span,
                        format!(
                            "{}: header {:?} is listed twice in headers",
                            sec.ctx,
                            name.as_str()
                        ),
                        Some("header names are case-insensitive; keep one of them".into()),
                    );
                } else {
                    out.push((name, value));
                }
            }
        }
        out
    }

    // ---- telemetry, admin, store ---------------------------------------------------------------

    fn telemetry(&mut self, e: &Entry<'_, '_>) -> Telemetry {
        let Some(sec) = self.top_table(e, "[telemetry]", "[telemetry]") else {
            return Telemetry::default();
        };
        self.unknown_keys(&sec, TELEMETRY_KEYS, &[], "[telemetry]");
        Telemetry {
            enabled: self.boolean(&sec, "enabled", true),
        }
    }

    fn store(&mut self, e: &Entry<'_, '_>) -> Option<String> {
        let toml::de::DeValue::String(v) = e.value else {
            self.error(
                &e.span,
                format!("store must be a string, not {}", describe(e.value)),
                Some(
                    "write store = \"sqlite://ficus.db\" or store = \"postgres://user@host/db\""
                        .into(),
                ),
            );
            return None;
        };
        let v = v.trim();
        if let Some(rest) = v
            .strip_prefix("sqlite://")
            .or_else(|| v.strip_prefix("sqlite:"))
        {
            if rest.is_empty() {
                self.error(
                    &e.span,
                    "store: the SQLite URL names no file",
                    Some("write store = \"sqlite://ficus.db\"".into()),
                );
                return None;
            }
            let path = self.base_dir.join(rest);
            return Some(format!("sqlite://{}", path.display()));
        }
        if v.starts_with("postgres://") || v.starts_with("postgresql://") {
            return Some(v.to_string());
        }
        self.error(
            &e.span,
            format!("store: unsupported URL {:?}", clip(v)),
            Some("the store is SQLite (store = \"sqlite://ficus.db\", the default) or PostgreSQL (store = \"postgres://user@host/db\")".into()),
        );
        None
    }

    // ---- verify jobs -------------------------------------------------------------------------

    fn verify_jobs(&mut self, e: &Entry<'_, '_>, routes: &[&str]) -> Vec<VerifyJob> {
        let tables = self.array_of_tables(e, "verify", "[[verify]]");
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::new();
        for (i, (table, span)) in tables.into_iter().enumerate() {
            let mut sec = Section::new(format!("verify #{}", i + 1), "", span, table);
            if let Some(job) = self.verify_job(&mut sec, routes, &mut names) {
                out.push(job);
            }
        }
        out
    }

    fn verify_job(
        &mut self,
        sec: &mut Section<'_, '_>,
        routes: &[&str],
        names: &mut HashMap<String, usize>,
    ) -> Option<VerifyJob> {
        let name = self.unique_name(
            sec,
            names,
            "verify job",
            "verify",
            "name the job, e.g. name = \"orders-table\"",
        );
        self.unknown_keys(sec, VERIFY_KEYS, &[], "[[verify]]");
        let route = match self.string(sec, "route") {
            Some((r, span)) => {
                if !routes.contains(&r) {
                    self.error(
                        &span,
                        format!("{}: unknown route {:?}", sec.ctx, clip(r)),
                        Some(format!(
                            "{}known routes: {}",
                            did_you_mean(r, routes.iter().copied()),
                            routes.join(", ")
                        )),
                    );
                }
                Some(r.to_string())
            }
            None => None,
        };
        let source = self.verify_url(sec, "source");
        let target = self.verify_url(sec, "target");
        let source_table = self.required_string(
            sec,
            "source_table",
            "the table to read, e.g. source_table = \"orders\"",
        );
        let target_table = self.required_string(
            sec,
            "target_table",
            "the table to compare it with, e.g. target_table = \"orders\"",
        );
        let key = match self.strings(sec, "key") {
            Some((items, span)) => {
                if items.is_empty() {
                    self.error(
                        &span,
                        format!("{}: key is empty", sec.ctx),
                        Some("name the unique key column(s), e.g. key = [\"id\"]".into()),
                    );
                    None
                } else {
                    Some(items.iter().map(|(s, _)| s.to_string()).collect::<Vec<_>>())
                }
            }
            None => {
                if !sec.has("key") {
                    self.error(
                        &sec.span,
                        format!("{}: missing key", sec.ctx),
                        Some(
                            "add the unique key present on both sides, e.g. key = [\"id\"]".into(),
                        ),
                    );
                }
                None
            }
        };
        let columns = self
            .strings(sec, "columns")
            .map(|(items, _)| items.iter().map(|(s, _)| s.to_string()).collect())
            .unwrap_or_default();
        let mut map = Vec::new();
        if let Some((t, tspan)) = self.table(sec, "map") {
            let msec = Section::new(sec.ctx.clone(), "map.", tspan, t);
            for e in &msec.entries {
                match e.value {
                    DeValue::String(v) => map.push((e.key.to_string(), v.to_string())),
                    _ => self.type_error(&msec, e, "a string"),
                }
            }
        }
        let where_clause = self.string(sec, "where").map(|(w, _)| w.to_string());
        let mut tolerance = Vec::new();
        if let Some((t, tspan)) = self.table(sec, "tolerance") {
            let tsec = Section::new(sec.ctx.clone(), "tolerance.", tspan, t);
            for e in &tsec.entries {
                let v = match e.value {
                    DeValue::Integer(i) => Some(int_value(i) as f64),
                    DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
                    _ => None,
                };
                match v {
                    Some(v) if v.is_finite() && v >= 0.0 => tolerance.push((e.key.to_string(), v)),
                    _ => self.error(
                        &e.span,
                        format!(
                            "{}: tolerance.{} must be a number of at least 0, found {}",
                            sec.ctx,
                            e.key,
                            describe(e.value)
                        ),
                        Some(format!(
                            "write an absolute tolerance, e.g. {} = 0.01",
                            e.key
                        )),
                    ),
                }
            }
        }
        let expr = self.verify_expr(sec, key.as_deref().unwrap_or_default(), &map);
        let every = self.duration(sec, "every", defaults::VERIFY_EVERY);
        if every < defaults::VERIFY_MIN_EVERY {
            if let Some(e) = sec.get("every") {
                let span = e.span.clone();
                self.error(
                    &span,
                    format!(
                        "{}: every {} is below the minimum of {}",
                        sec.ctx,
                        self.raw(&span),
                        units::format_duration(defaults::VERIFY_MIN_EVERY)
                    ),
                    Some(format!(
                        "each run reads both tables; run it at most every \"{}\" (default \"{}\")",
                        units::format_duration(defaults::VERIFY_MIN_EVERY),
                        units::format_duration(defaults::VERIFY_EVERY)
                    )),
                );
            }
        }
        let mut max_connections = defaults::VERIFY_MAX_CONNECTIONS;
        if let Some((n, span)) = self.integer(sec, "max_connections") {
            match u32::try_from(n) {
                Ok(n) if (1..=64).contains(&n) => max_connections = n,
                _ => self.error(
                    &span,
                    format!(
                        "{}: max_connections {} is out of range",
                        sec.ctx,
                        self.raw(&span)
                    ),
                    Some(format!(
                        "connections per database: 1 to 64 (default {})",
                        defaults::VERIFY_MAX_CONNECTIONS
                    )),
                ),
            }
        }
        let incremental = self.verify_incremental(sec, every);
        let recheck = sec.has("recheck").then(|| {
            let d = self.duration(sec, "recheck", Duration::from_secs(1));
            if d > Duration::from_secs(600) {
                let span = sec
                    .get("recheck")
                    .map(|e| e.span.clone())
                    .unwrap_or(sec.span.clone());
                self.error(
                    &span,
                    format!("{}: recheck is longer than 10m", sec.ctx),
                    Some(
                        "the delay before differing rows are read again: longer than the \
                         replication or dual-write lag, e.g. recheck = \"5s\""
                            .into(),
                    ),
                );
            }
            d
        });
        Some(VerifyJob {
            name: name?,
            route,
            source: source?,
            target: target?,
            source_table: source_table?,
            target_table: target_table?,
            key: key?,
            columns,
            map,
            where_clause,
            tolerance,
            expr,
            every,
            max_connections,
            watermark: incremental.watermark,
            watermark_overlap: incremental.overlap,
            full_every: incremental.full_every,
            recheck,
        })
    }

    /// The `name` of an entry of an array of tables whose names are unique (`[[verify]]`,
    /// `[[migration]]`): valid, not seen before (`names` keeps each name's line), and from
    /// here on the section's context (`{ctx_word} "NAME"`). `what` names the kind in
    /// messages; `example` is the help for a missing name.
    pub(super) fn unique_name(
        &mut self,
        sec: &mut Section<'_, '_>,
        names: &mut HashMap<String, usize>,
        what: &str,
        ctx_word: &str,
        example: &str,
    ) -> Option<String> {
        match self.string(sec, "name") {
            Some((n, span)) => {
                if !valid_name(n) {
                    self.error(
                        &span,
                        format!("{}: invalid name {:?}", sec.ctx, clip(n)),
                        Some(NAME_HELP.to_string()),
                    );
                } else if let Some(first) = names.get(n) {
                    self.error(
                        &span,
                        format!("duplicate {what} name {n:?}"),
                        Some(format!(
                            "the first {what} named {n:?} is at line {first}; {what} names must \
                             be unique"
                        )),
                    );
                } else {
                    names.insert(n.to_string(), self.line(&span));
                }
                if !n.is_empty() {
                    sec.ctx = format!("{ctx_word} {:?}", clip(n));
                }
                Some(n.to_string())
            }
            None => {
                if !sec.has("name") {
                    self.error(
                        &sec.span,
                        format!("{}: missing name", sec.ctx),
                        Some(format!("{example}; {NAME_HELP}")),
                    );
                }
                None
            }
        }
    }

    fn required_string(&mut self, sec: &Section<'_, '_>, key: &str, help: &str) -> Option<String> {
        match self.string(sec, key) {
            Some((s, span)) if s.trim().is_empty() => {
                self.error(
                    &span,
                    format!("{}: {} is empty", sec.ctx, sec.key(key)),
                    Some(help.to_string()),
                );
                None
            }
            Some((s, _)) => Some(s.trim().to_string()),
            None => {
                if !sec.has(key) {
                    self.error(
                        &sec.span,
                        format!("{}: missing {}", sec.ctx, sec.key(key)),
                        Some(format!("add {help}")),
                    );
                }
                None
            }
        }
    }

    /// A verify job's database URL; a relative SQLite path is resolved against the config's folder.
    fn verify_url(&mut self, sec: &Section<'_, '_>, key: &str) -> Option<String> {
        const HELP: &str =
            "write \"postgres://user@host/db\", \"mysql://user@host/db\" or \"sqlite://FILE\"";
        let url = self.required_string(sec, key, &format!("{key} = URL: {HELP}"))?;
        if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if rest.is_empty() {
                let span = sec
                    .get(key)
                    .map(|e| e.span.clone())
                    .unwrap_or(sec.span.clone());
                self.error(
                    &span,
                    format!("{}: {key}: the SQLite URL names no file", sec.ctx),
                    Some(HELP.to_string()),
                );
                return None;
            }
            let path = self.base_dir.join(rest);
            return Some(format!("sqlite://{}", path.display()));
        }
        let ok = ["postgres://", "postgresql://", "mysql://", "mariadb://"]
            .iter()
            .any(|p| url.starts_with(p));
        if !ok {
            let span = sec
                .get(key)
                .map(|e| e.span.clone())
                .unwrap_or(sec.span.clone());
            self.error(
                &span,
                format!("{}: {key}: unsupported URL {:?}", sec.ctx, clip(&url)),
                Some(format!(
                    "verify reads PostgreSQL, MySQL/MariaDB and SQLite: {HELP}"
                )),
            );
            return None;
        }
        Some(url)
    }

    // ---- access log --------------------------------------------------------------------------

    fn access_log(&mut self, e: &Entry<'_, '_>) -> AccessLog {
        let mut log = AccessLog::default();
        let Some(sec) = self.top_table(e, "[access_log]", "[access_log]") else {
            return log;
        };
        self.unknown_keys(&sec, ACCESS_LOG_KEYS, &[], "[access_log]");
        log.enabled = self.boolean(&sec, "enabled", true);
        if let Some((f, span)) = self.string(&sec, "format") {
            match f {
                "text" => log.format = LogFormat::Text,
                "json" => log.format = LogFormat::Json,
                other => self.error(
                    &span,
                    format!("[access_log]: unknown format {:?}", clip(other)),
                    Some(format!(
                        "{}formats are \"text\" and \"json\"",
                        did_you_mean(other, ["text", "json"])
                    )),
                ),
            }
        }
        log.path = self.path(&sec, "path");
        log
    }
}

/// The default store: a SQLite file beside the config file.
fn default_store(base_dir: &Path) -> String {
    format!("sqlite://{}", base_dir.join(defaults::STORE_FILE).display())
}

fn int_value(i: &DeInteger<'_>) -> i128 {
    // Parsing only fails beyond 128 bits; saturate so range checks reject it.
    i128::from_str_radix(i.as_str(), i.radix()).unwrap_or(if i.as_str().starts_with('-') {
        i128::MIN
    } else {
        i128::MAX
    })
}

/// Route, listener and upstream names: `[A-Za-z0-9_.-]+`.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn known_upstreams(ups: &Upstreams, sep: &str) -> String {
    if ups.names.is_empty() {
        String::new()
    } else {
        format!("{sep}known upstreams: {}", ups.names.join(", "))
    }
}

/// `Ok(key)` or `Err((" : why", help))`; the problem text is appended to the message.
fn parse_sticky(s: &str) -> Result<StickyKey, (String, String)> {
    if s == "client-ip" {
        return Ok(StickyKey::ClientIp);
    }
    let Some((kind, name)) = s.split_once(':') else {
        return Err((
            String::new(),
            format!("{}{STICKY_HELP}", did_you_mean(s, ["client-ip"])),
        ));
    };
    let name_problem = |what: &str| {
        Err((
            format!(": the {what} name is empty"),
            format!("name the {what}, e.g. \"{kind}:{}\"", example_name(kind)),
        ))
    };
    match kind {
        "header" => {
            if name.is_empty() {
                return name_problem("header");
            }
            HeaderName::from_bytes(name.as_bytes())
                .map(StickyKey::Header)
                .map_err(|_| {
                    (
                        format!(": {name:?} is not a valid header name"),
                        "header names are letters, digits and !#$%&'*+-.^_`|~".to_string(),
                    )
                })
        }
        "cookie" => {
            if name.is_empty() {
                return name_problem("cookie");
            }
            let token = name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
            if token {
                Ok(StickyKey::Cookie(name.to_string()))
            } else {
                Err((
                    format!(": {name:?} is not a valid cookie name"),
                    "cookie names are letters, digits and !#$%&'*+-.^_`|~".to_string(),
                ))
            }
        }
        "query" => {
            if name.is_empty() {
                return name_problem("query parameter");
            }
            if name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"&=#?".contains(&b))
            {
                Ok(StickyKey::Query(name.to_string()))
            } else {
                Err((
                    format!(": {name:?} is not a valid query parameter name"),
                    "write the parameter name as it appears in the URL, without '&', '=', '#', \
                     '?' or spaces"
                        .to_string(),
                ))
            }
        }
        other => {
            let help = match nearest(other, ["header", "cookie", "query"]) {
                Some(near) => format!("did you mean \"{near}:{name}\"? {STICKY_HELP}"),
                None => STICKY_HELP.to_string(),
            };
            Err((String::new(), help))
        }
    }
}

fn example_name(kind: &str) -> &'static str {
    match kind {
        "header" => "x-user-id",
        "cookie" => "session",
        _ => "account",
    }
}

/// Checks and normalizes an upstream URL; `Err((problem, help))`.
fn parse_upstream_url(s: &str) -> Result<Uri, (String, String)> {
    const EXAMPLE: &str = "e.g. \"http://10.0.0.5:8080\" or \"https://orders.internal/api\"";
    let fail = |problem: &str, help: String| Err((problem.to_string(), help));
    if s.contains('#') {
        return fail(
            "must not have a fragment",
            format!("an upstream url is a scheme, a host, an optional port and an optional path prefix, {EXAMPLE}"),
        );
    }
    let uri: Uri = match s.parse() {
        Ok(u) => u,
        Err(_) => return fail("is not a valid URL", format!("write {EXAMPLE}")),
    };
    let Some(scheme) = uri.scheme_str() else {
        return fail(
            "has no scheme",
            format!(
                "write \"http://{}\" (or https://)",
                s.trim_start_matches('/')
            ),
        );
    };
    if scheme != "http" && scheme != "https" {
        return fail(
            "must use http:// or https://",
            format!("ficus speaks HTTP to its upstreams, {EXAMPLE}"),
        );
    }
    let Some(authority) = uri.authority() else {
        return fail("has no host", format!("write {EXAMPLE}"));
    };
    if authority.as_str().contains('@') {
        return fail(
            "must not contain credentials",
            "remove the \"user@\" part; ficus forwards the client's own headers".to_string(),
        );
    }
    let host = authority.host();
    if host.is_empty() {
        return fail("has no host", format!("write {EXAMPLE}"));
    }
    let rest = &authority.as_str()[host.len()..];
    if let Some(port) = rest.strip_prefix(':') {
        if !matches!(port.parse::<u16>(), Ok(p) if p > 0) {
            return fail(
                "has an invalid port",
                "a port is a number from 1 to 65535; leave it out for 80 (http) or 443 (https)"
                    .to_string(),
            );
        }
    }
    if uri.query().is_some() {
        return fail(
            "must not have a query string",
            format!("an upstream url is a scheme, a host, an optional port and an optional path prefix, {EXAMPLE}"),
        );
    }
    let path = uri.path().trim_end_matches('/');
    let path = if path.is_empty() { "/" } else { path };
    Uri::builder()
        .scheme(scheme)
        .authority(authority.as_str())
        .path_and_query(path)
        .build()
        .map_err(|_| ("is not a valid URL".to_string(), format!("write {EXAMPLE}")))
}
