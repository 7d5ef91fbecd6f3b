//! `watermark`, `watermark_overlap` and `full_every` of `[[verify]]`: incremental runs over
//! a watermark column, with a full run every `full_every` (docs/verify.md, "Incremental
//! runs"). Checked here: the keys' types and values, that the overlap and `full_every` come
//! with a watermark, and that `full_every` is not shorter than `every`. Whether the column
//! exists and can be a watermark (an integer or a timestamp on both sides) needs the
//! databases: `ficus-verify` checks it when the job runs, before scanning.

use std::time::Duration;

use toml::de::DeValue;

use super::{describe, int_value, Section, Validator};
use crate::model::{defaults, VerifyOverlap};
use crate::raw::clip;
use crate::units;

/// What the three keys give a job.
pub(super) struct Incremental {
    pub watermark: Option<String>,
    pub overlap: Option<VerifyOverlap>,
    pub full_every: Option<Duration>,
}

const WATERMARK_HELP: &str = "name the source column every write advances, e.g. watermark = \
                              \"updated_at\" (a timestamp) or \"version\" (an integer)";

impl Validator<'_, '_> {
    /// `watermark = "col"`, `watermark_overlap = "5s" | 100`, `full_every = "24h"`; `every`
    /// is the job's.
    pub(super) fn verify_incremental(
        &mut self,
        sec: &Section<'_, '_>,
        every: Duration,
    ) -> Incremental {
        let watermark = match self.string(sec, "watermark") {
            Some((w, span)) if w.trim().is_empty() => {
                self.error(
                    &span,
                    format!("{}: watermark is empty", sec.ctx),
                    Some(WATERMARK_HELP.into()),
                );
                None
            }
            Some((w, _)) => Some(w.trim().to_string()),
            None => None,
        };
        let watermark_given = sec.has("watermark");
        let overlap = match sec.get("watermark_overlap") {
            None => None,
            Some(e) => {
                let span = e.span.clone();
                let value = match e.value {
                    DeValue::Integer(i) => match u64::try_from(int_value(i)) {
                        Ok(n) => Some(VerifyOverlap::Count(n)),
                        Err(_) => {
                            self.error(
                                &span,
                                format!(
                                    "{}: watermark_overlap {} is negative",
                                    sec.ctx,
                                    self.raw(&span)
                                ),
                                Some(
                                    "a count of versions of an integer watermark, 0 or more".into(),
                                ),
                            );
                            None
                        }
                    },
                    DeValue::String(s) => match units::parse_duration(s) {
                        Ok(d) => Some(VerifyOverlap::Duration(d)),
                        Err(err) => {
                            self.error(
                                &span,
                                format!("{}: watermark_overlap {:?} {err}", sec.ctx, clip(s)),
                                Some(
                                    "a duration for a timestamp watermark (watermark_overlap = \
                                     \"5s\"), a count for an integer one (watermark_overlap = \
                                     100), or 0 for none"
                                        .into(),
                                ),
                            );
                            None
                        }
                    },
                    other => {
                        self.error(
                            &span,
                            format!(
                                "{}: watermark_overlap must be a duration or a count, found {}",
                                sec.ctx,
                                describe(other)
                            ),
                            Some("e.g. watermark_overlap = \"5s\", or = 100 for versions".into()),
                        );
                        None
                    }
                };
                if !watermark_given {
                    self.error(
                        &span,
                        format!("{}: watermark_overlap without a watermark", sec.ctx),
                        Some(format!(
                            "the overlap is subtracted from the watermark of incremental runs; \
                             {WATERMARK_HELP}, or remove watermark_overlap"
                        )),
                    );
                }
                value
            }
        };
        let full_every = if sec.has("full_every") {
            let d = self.duration(sec, "full_every", defaults::VERIFY_FULL_EVERY);
            let span = sec
                .get("full_every")
                .map(|e| e.span.clone())
                .unwrap_or(sec.span.clone());
            if !watermark_given {
                self.error(
                    &span,
                    format!("{}: full_every without a watermark", sec.ctx),
                    Some(format!(
                        "without a watermark every run is full; {WATERMARK_HELP}, or remove \
                         full_every"
                    )),
                );
            } else if d < every {
                self.error(
                    &span,
                    format!(
                        "{}: full_every {} is shorter than every ({})",
                        sec.ctx,
                        self.raw(&span),
                        units::format_duration(every)
                    ),
                    Some(format!(
                        "a full run comes at most once per run: full_every = \"{}\" or more \
                         (default \"{}\")",
                        units::format_duration(every),
                        units::format_duration(defaults::VERIFY_FULL_EVERY)
                    )),
                );
            }
            Some(d)
        } else {
            None
        };
        let full_every = watermark
            .as_ref()
            .map(|_| full_every.unwrap_or(defaults::VERIFY_FULL_EVERY));
        Incremental {
            watermark,
            overlap,
            full_every,
        }
    }
}
