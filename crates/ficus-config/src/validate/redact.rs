//! `[redact]`: header and query parameter names whose values never leave ficus, added to
//! the built-in lists (fleet-wide). Shadow samples, the access log and the logs use them.

use super::Validator;
use crate::model::Redaction;
use crate::raw::{clip, Entry};

const REDACT_KEYS: &[&str] = &["headers", "query"];

impl Validator<'_, '_> {
    pub(super) fn redaction(&mut self, e: &Entry<'_, '_>) -> Redaction {
        let mut r = Redaction::default();
        let Some(sec) = self.top_table(e, "[redact]", "[redact]") else {
            return r;
        };
        self.unknown_keys(&sec, REDACT_KEYS, &[], "[redact]");
        for (key, out) in [("headers", &mut r.headers), ("query", &mut r.query)] {
            let Some((names, _)) = self.strings(&sec, key) else {
                continue;
            };
            for (n, span) in names {
                let name = n.trim().to_ascii_lowercase();
                let ok = !name.is_empty()
                    && name.len() <= 256
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && !matches!(b, b'=' | b'&' | b':'));
                if ok {
                    out.push(name);
                } else {
                    self.error(
                        &span,
                        format!("[redact]: {key} {:?} is not a name", clip(n)),
                        Some(format!(
                            "write the {} names without values, e.g. {key} = [\"x-my-token\"]",
                            if key == "headers" {
                                "header"
                            } else {
                                "query parameter"
                            }
                        )),
                    );
                }
            }
        }
        r
    }
}
