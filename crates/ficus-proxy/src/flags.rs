//! Feature flags on the request path: a route's canary split that follows a flag
//! ([`FlagSplit`]), and a route's evaluated flags forwarded to its upstreams in one header
//! ([`FlagForward`]). Both evaluate the flags of the running config (runtime overrides laid
//! over) with `ficus-flags`, the engine OFREP serves from, with the route's sticky key as
//! the targeting key: a user's app reading a flag over OFREP with the same key, the gateway's
//! side and the upstream's header agree.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::split::Side;

/// A route's canary split by a feature flag: the flag as the running config defines it
/// (the same one OFREP serves, so a user gets the same answer from both), the variant that
/// means modern, and the headers that go into the evaluation context.
#[derive(Debug)]
pub struct FlagSplit {
    pub flag: ficus_flags::Flag,
    pub modern: String,
    pub context: Vec<HeaderName>,
}

impl FlagSplit {
    /// Modern or legacy for one request: the targeting key is the route's sticky key; each
    /// context header present becomes an attribute of its name.
    pub(crate) fn side(&self, key: Option<&[u8]>, headers: &HeaderMap) -> Side {
        let ctx = context(key, &self.context, headers);
        let r = ficus_flags::evaluate(&self.flag, &ctx);
        if r.error.is_none() && r.variant.as_deref() == Some(self.modern.as_str()) {
            Side::Modern
        } else {
            Side::Legacy
        }
    }
}

/// A route's `forward_flags`: each request carries `header: key=variant, key=variant` to
/// the upstream (legacy, modern, the mirror's copy). A flag that serves no variant for the
/// request (disabled, or a split without a sticky key) is left out, so the upstream applies
/// its own default. Keys and variants are percent-encoded outside `A-Z a-z 0-9 - . _ ~ :`
/// (W3C baggage's list syntax). A client's own header of that name never reaches the
/// upstream: it cannot claim a flag.
#[derive(Debug)]
pub struct FlagForward {
    /// In the order the route names them; a key the config lacks (validation refuses it)
    /// is skipped.
    flags: Vec<ficus_flags::Flag>,
    pub header: HeaderName,
    context: Vec<HeaderName>,
}

impl FlagForward {
    pub fn new(spec: &ficus_config::ForwardFlags, flags: &[ficus_flags::Flag]) -> FlagForward {
        FlagForward {
            flags: spec
                .flags
                .iter()
                .filter_map(|k| flags.iter().find(|f| &f.key == k).cloned())
                .collect(),
            header: spec.header.clone(),
            context: spec.context.clone(),
        }
    }

    /// Replaces the request's `header` with this request's evaluated flags (removes it when
    /// none serves a variant).
    #[cfg(test)]
    fn apply(&self, key: Option<&[u8]>, headers: &mut HeaderMap) {
        let value = self.value(key, headers);
        self.replace(value, headers);
    }

    /// Puts `value` (from [`FlagForward::value`]) in place of the request's header.
    pub(crate) fn replace(&self, value: Option<HeaderValue>, headers: &mut HeaderMap) {
        headers.remove(&self.header);
        if let Some(v) = value {
            headers.insert(self.header.clone(), v);
        }
    }

    /// `key=variant, key=variant` for one request; `None` when no flag serves a variant.
    pub fn value(&self, key: Option<&[u8]>, headers: &HeaderMap) -> Option<HeaderValue> {
        let ctx = context(key, &self.context, headers);
        let mut out = String::new();
        for f in &self.flags {
            let r = ficus_flags::evaluate(f, &ctx);
            let Some(variant) = r.variant.as_deref().filter(|_| r.error.is_none()) else {
                continue;
            };
            if !out.is_empty() {
                out.push_str(", ");
            }
            encode(&f.key, &mut out);
            out.push('=');
            encode(variant, &mut out);
        }
        if out.is_empty() {
            return None;
        }
        // Only visible ASCII after encoding.
        HeaderValue::from_str(&out).ok()
    }
}

/// The evaluation context of one request: the sticky key as the targeting key, each named
/// header present as an attribute of its (lower-case) name.
fn context(key: Option<&[u8]>, names: &[HeaderName], headers: &HeaderMap) -> ficus_flags::Context {
    let mut ctx = ficus_flags::Context {
        targeting_key: key.map(|k| String::from_utf8_lossy(k).into_owned()),
        ..ficus_flags::Context::default()
    };
    for h in names {
        if let Some(v) = headers.get(h).and_then(|v| v.to_str().ok()) {
            ctx.attrs
                .insert(h.as_str().to_string(), serde_json::Value::from(v));
        }
    }
    ctx
}

/// Percent-encodes everything but `A-Z a-z 0-9 - . _ ~ :`.
fn encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(key: &str, json: serde_json::Value) -> ficus_flags::Flag {
        let mut v = json;
        v["key"] = serde_json::Value::from(key);
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_header_lists_each_served_variant_encoded_in_order() {
        let flags = vec![
            flag(
                "new-checkout",
                serde_json::json!({"variants": {"on": true, "off": false}, "defaultVariant": "off",
                    "rules": [{"when": [{"attribute": "x-plan", "op": {"eq": "pro"}}], "then": {"variant": "on"}}]}),
            ),
            flag(
                "theme",
                serde_json::json!({"variants": {"dark mode": "d", "light": "l"}, "defaultVariant": "dark mode"}),
            ),
            flag(
                "old",
                serde_json::json!({"variants": {"on": true}, "defaultVariant": "on", "enabled": false}),
            ),
            flag(
                "ab",
                serde_json::json!({"variants": {"a": 1, "b": 2}, "defaultVariant": "a",
                    "rules": [{"then": {"fractional": {"split": [["a", 1], ["b", 1]]}}}]}),
            ),
        ];
        let spec = ficus_config::ForwardFlags {
            flags: vec![
                "theme".into(),
                "new-checkout".into(),
                "old".into(),
                "ab".into(),
            ],
            header: HeaderName::from_static("x-ficus-flags"),
            context: vec![HeaderName::from_static("x-plan")],
        };
        let fwd = FlagForward::new(&spec, &flags);
        let mut h = HeaderMap::new();
        h.insert("x-plan", HeaderValue::from_static("pro"));
        // A client's own value is replaced.
        h.insert(
            "x-ficus-flags",
            HeaderValue::from_static("new-checkout=on, admin=yes"),
        );
        fwd.apply(Some(b"user-1"), &mut h);
        let ab = ficus_flags::evaluate(
            &flags[3],
            &ficus_flags::Context {
                targeting_key: Some("user-1".into()),
                ..Default::default()
            },
        )
        .variant
        .unwrap();
        assert_eq!(
            h["x-ficus-flags"],
            format!("theme=dark%20mode, new-checkout=on, ab={ab}").as_str()
        );
        // No sticky key: the split serves nothing and is left out; no plan: the default.
        let mut h = HeaderMap::new();
        h.insert("x-ficus-flags", HeaderValue::from_static("forged"));
        fwd.apply(None, &mut h);
        assert_eq!(h["x-ficus-flags"], "theme=dark%20mode, new-checkout=off");
        // Nothing served at all: no header, and the client's is gone.
        let only_old = FlagForward::new(
            &ficus_config::ForwardFlags {
                flags: vec!["old".into()],
                ..spec
            },
            &flags,
        );
        let mut h = HeaderMap::new();
        h.insert("x-ficus-flags", HeaderValue::from_static("forged"));
        only_old.apply(Some(b"u"), &mut h);
        assert!(h.get("x-ficus-flags").is_none());
    }
}
