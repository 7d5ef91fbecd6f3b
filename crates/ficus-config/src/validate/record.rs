//! `[route.record]` (which exchanges of a route are recorded, fleet-wide) and `[record]`
//! (where this node writes recordings, node-local).

use super::{Section, Validator};
use crate::model::{defaults, OverCap, RecordPolicy, Recording, Weight};
use crate::raw::{clip, Entry};

const ROUTE_RECORD_KEYS: &[&str] = &["sample", "max_body", "over_cap", "max_size", "redact"];
const REDACT_KEYS: &[&str] = &["headers", "query", "json"];
const RECORD_KEYS: &[&str] = &[
    "dir",
    "key_file",
    "queue",
    "rotate_bytes",
    "rotate_every",
    "max_total",
];

impl Validator<'_, '_> {
    /// A route's `[route.record]`.
    pub(super) fn route_record(&mut self, sec: &Section<'_, '_>) -> Option<RecordPolicy> {
        let (table, span) = self.table(sec, "record")?;
        let rsec = Section::new(sec.ctx.clone(), "record.", span, table);
        self.unknown_keys(&rsec, ROUTE_RECORD_KEYS, &[], "[route.record]");
        let sample = self.percent(
            &rsec,
            "sample",
            Weight::MAX,
            "record.sample is the percentage of sticky keys whose exchanges are recorded",
        );
        let mut p = RecordPolicy {
            sample,
            max_body: defaults::RECORD_MAX_BODY,
            over_cap: OverCap::Truncate,
            max_size: defaults::RECORD_MAX_SIZE,
            redact_headers: Vec::new(),
            redact_query: Vec::new(),
            redact_json: Vec::new(),
        };
        if let Some((n, span)) = self.size(&rsec, "max_body") {
            if n <= 64 * 1024 * 1024 {
                p.max_body = n;
            } else {
                self.error(
                    &span,
                    format!(
                        "{}: record.max_body {} is out of range",
                        sec.ctx,
                        self.raw(&span)
                    ),
                    Some("from \"0B\" (heads only) to \"64MiB\" (default \"64KiB\")".into()),
                );
            }
        }
        if let Some((v, span)) = self.string(&rsec, "over_cap") {
            match v {
                "truncate" => p.over_cap = OverCap::Truncate,
                "drop" => p.over_cap = OverCap::Drop,
                other => self.error(
                    &span,
                    format!("{}: record.over_cap {:?} is not truncate or drop", sec.ctx, clip(other)),
                    Some("truncate keeps the first max_body bytes of a larger body; drop leaves the exchange out (counted as body_over_cap)".into()),
                ),
            }
        }
        if let Some((n, span)) = self.size(&rsec, "max_size") {
            if n >= 1024 * 1024 {
                p.max_size = n;
            } else {
                self.error(
                    &span,
                    format!(
                        "{}: record.max_size {} is too small",
                        sec.ctx,
                        self.raw(&span)
                    ),
                    Some("at least \"1MiB\" (default \"1GiB\")".into()),
                );
            }
        }
        if let Some((t, span)) = self.table(&rsec, "redact") {
            let dsec = Section::new(sec.ctx.clone(), "record.redact.", span, t);
            self.unknown_keys(&dsec, REDACT_KEYS, &[], "record.redact");
            for (key, out) in [
                ("headers", &mut p.redact_headers),
                ("query", &mut p.redact_query),
                ("json", &mut p.redact_json),
            ] {
                let Some((names, _)) = self.strings(&dsec, key) else {
                    continue;
                };
                for (n, nspan) in names {
                    let name = if key == "headers" {
                        n.trim().to_ascii_lowercase()
                    } else {
                        n.trim().to_string()
                    };
                    let ok = !name.is_empty()
                        && name.len() <= 256
                        && name.bytes().all(|b| b.is_ascii_graphic())
                        && (key != "json" || name.split('.').all(|part| !part.is_empty()));
                    if ok {
                        out.push(name);
                    } else {
                        self.error(
                            &nspan,
                            format!("{}: record.redact.{key} {:?} is not a name", sec.ctx, clip(n)),
                            Some(match key {
                                "json" => "dotted JSON paths, * for any key or element: json = [\"card.number\", \"items.*.ssn\"]".into(),
                                _ => format!("{key} names without values, e.g. {key} = [\"x-my-token\"]"),
                            }),
                        );
                    }
                }
            }
        }
        Some(p)
    }

    /// `[record]` (node-local).
    pub(super) fn recording(&mut self, e: Option<&Entry<'_, '_>>) -> Recording {
        let mut r = Recording {
            dir: self.base_dir.join(defaults::RECORD_DIR),
            key_file: None,
            queue: defaults::RECORD_QUEUE,
            rotate_bytes: defaults::RECORD_ROTATE_BYTES,
            rotate_every: defaults::RECORD_ROTATE_EVERY,
            max_total: defaults::RECORD_MAX_TOTAL,
        };
        let Some(e) = e else {
            return r;
        };
        let Some(sec) = self.top_table(e, "[record]", "[record]") else {
            return r;
        };
        self.unknown_keys(&sec, RECORD_KEYS, &[], "[record]");
        if let Some(d) = self.path(&sec, "dir") {
            r.dir = d;
        }
        r.key_file = self.path(&sec, "key_file");
        if let Some(n) = self.bounded(
            &sec,
            "queue",
            1,
            1_000_000,
            "exchanges waiting for the recording writer",
        ) {
            r.queue = n as usize;
        }
        if let Some((n, span)) = self.size(&sec, "rotate_bytes") {
            if n >= 1024 * 1024 {
                r.rotate_bytes = n;
            } else {
                self.error(
                    &span,
                    format!("[record]: rotate_bytes {} is too small", self.raw(&span)),
                    Some("at least \"1MiB\" (default \"256MiB\")".into()),
                );
            }
        }
        r.rotate_every = self.duration(&sec, "rotate_every", defaults::RECORD_ROTATE_EVERY);
        if r.rotate_every < std::time::Duration::from_secs(1) {
            let span = sec
                .get("rotate_every")
                .map_or(sec.span.clone(), |e| e.span.clone());
            self.error(
                &span,
                "[record]: rotate_every is under a second",
                Some("at least \"1s\" (default \"1h\")".into()),
            );
        }
        if let Some((n, span)) = self.size(&sec, "max_total") {
            if n >= 1024 * 1024 {
                r.max_total = n;
            } else {
                self.error(
                    &span,
                    format!("[record]: max_total {} is too small", self.raw(&span)),
                    Some("at least \"1MiB\" (default \"10GiB\")".into()),
                );
            }
        }
        r
    }
}
