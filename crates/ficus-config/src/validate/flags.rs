//! `[[flag]]` (feature flags, fleet-wide) and `[ofrep]` (the listener that serves them over
//! OpenFeature's Remote Evaluation Protocol, node-local). A flag is checked here key by key
//! at its line, then as a whole by `ficus_flags::validate`, whose message is reported at the
//! flag's header.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use ficus_flags::{BucketHash, Condition, Flag, NumOp, Op, Outcome, Rule, SemVer, SemVerOp, Value};
use toml::de::{DeTable, DeValue};

use super::{int_value, Section, Validator};
use crate::model::{defaults, ForwardFlags, Ofrep, RouteFlag};
use crate::raw::{clip, describe, Entry};

/// Headers a route may not forward flags in: HTTP's own framing and hop-by-hop headers, and
/// those ficus sets itself.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "authorization",
    "cookie",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "x-request-id",
    "traceparent",
    "tracestate",
];

const FLAG_KEYS: &[&str] = &["key", "variants", "default", "enabled", "metadata", "rule"];
const RULE_KEYS: &[&str] = &["when", "variant", "split", "bucket_by", "seed"];
const CONDITION_OPS: &[&str] = &[
    "eq",
    "ne",
    "in",
    "not_in",
    "starts_with",
    "ends_with",
    "semver",
    "lt",
    "le",
    "gt",
    "ge",
    "exists",
];
const OFREP_KEYS: &[&str] = &[
    "bind",
    "keys_file",
    "max_body",
    "max_context_attributes",
    "per_second",
    "burst",
    "max_streams",
];
/// Longest flag key (OFREP keys travel in a URL path).
const MAX_KEY: usize = 256;
const KEY_HELP: &str = "a flag key is 1 to 256 letters, digits, '-', '_', '.' or ':'";

impl Validator<'_, '_> {
    pub(super) fn flags(&mut self, e: &Entry<'_, '_>) -> Vec<Flag> {
        let tables = self.array_of_tables(e, "flag", "[[flag]]");
        let mut out: Vec<Flag> = Vec::new();
        let mut keys: HashMap<String, usize> = HashMap::new();
        if tables.len() > defaults::MAX_FLAGS {
            self.error(
                &e.span,
                format!("{} flags, more than {}", tables.len(), defaults::MAX_FLAGS),
                Some("split them between several gateways' configs".into()),
            );
            return out;
        }
        for (i, (table, span)) in tables.into_iter().enumerate() {
            let sec = Section::new(format!("flag #{}", i + 1), "", span, table);
            let Some(flag) = self.flag(sec, &mut keys) else {
                continue;
            };
            out.push(flag);
        }
        out
    }

    fn flag(
        &mut self,
        mut sec: Section<'_, '_>,
        keys: &mut HashMap<String, usize>,
    ) -> Option<Flag> {
        self.unknown_keys(&sec, FLAG_KEYS, &[], "[[flag]]");
        let key = match self.string(&sec, "key") {
            Some((k, span)) => {
                let ok = !k.is_empty()
                    && k.len() <= MAX_KEY
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
                if !ok {
                    self.error(
                        &span,
                        format!("{}: invalid key {:?}", sec.ctx, clip(k)),
                        Some(KEY_HELP.into()),
                    );
                    return None;
                }
                if let Some(first) = keys.get(k) {
                    self.error(
                        &span,
                        format!("duplicate flag key {k:?}"),
                        Some(format!(
                            "the first flag {k:?} is at line {first}; flag keys are unique"
                        )),
                    );
                    return None;
                }
                keys.insert(k.to_string(), self.line(&span));
                sec.ctx = format!("flag {:?}", clip(k));
                k.to_string()
            }
            None => {
                if !sec.has("key") {
                    self.error(
                        &sec.span,
                        format!("{} has no key", sec.ctx),
                        Some(format!("add key = \"new-checkout\"; {KEY_HELP}")),
                    );
                }
                return None;
            }
        };
        let variants = self.variants(&sec)?;
        let default_variant = match self.string(&sec, "default") {
            Some((d, _)) => d.to_string(),
            None if variants.len() == 1 => variants.keys().next().cloned().unwrap_or_default(),
            None => {
                if !sec.has("default") {
                    let first = variants.keys().next().cloned().unwrap_or_default();
                    self.error(
                        &sec.span,
                        format!("{}: default is missing", sec.ctx),
                        Some(format!(
                            "name the variant served when no rule matches, e.g. default = {first:?}"
                        )),
                    );
                }
                return None;
            }
        };
        let enabled = self.boolean(&sec, "enabled", true);
        let metadata = self.flag_metadata(&sec);
        let rules = self.flag_rules(&sec);
        let flag = Flag {
            key,
            variants,
            default_variant,
            enabled,
            rules: rules?,
            metadata,
        };
        if let Err(e) = ficus_flags::validate(&flag) {
            self.error(
                &sec.span,
                format!("{}: {e}", sec.ctx),
                Some("see docs/flags.md for what a flag may hold".into()),
            );
            return None;
        }
        Some(flag)
    }

    /// `variants = { on = true, off = false }`: names to values of one kind.
    fn variants(&mut self, sec: &Section<'_, '_>) -> Option<BTreeMap<String, Value>> {
        let Some((table, span)) = self.table(sec, "variants") else {
            if !sec.has("variants") {
                self.error(
                    &sec.span,
                    format!("{}: variants is missing", sec.ctx),
                    Some(
                        "name each value the flag can take, e.g. variants = { on = true, off = false }"
                            .into(),
                    ),
                );
            }
            return None;
        };
        let vsec = Section::new(sec.ctx.clone(), "variants.", span, table);
        let mut out = BTreeMap::new();
        let mut ok = true;
        for e in &vsec.entries {
            let value = match e.value {
                DeValue::Boolean(b) => Some(Value::Bool(*b)),
                DeValue::String(s) => Some(Value::String(s.to_string())),
                DeValue::Integer(i) => Some(Value::Number(int_value(i) as f64)),
                DeValue::Float(f) => f.as_str().parse::<f64>().ok().map(Value::Number),
                DeValue::Table(t) => match table_json(t) {
                    Some(serde_json::Value::Object(m)) => Some(Value::Object(m)),
                    _ => None,
                },
                _ => None,
            };
            match value {
                Some(v) => {
                    out.insert(e.key.to_string(), v);
                }
                None => {
                    ok = false;
                    self.error(
                        &e.span,
                        format!(
                            "{}: variant {:?} must be a boolean, a string, a number or a table, found {}",
                            sec.ctx,
                            e.key,
                            describe(e.value)
                        ),
                        Some("e.g. variants = { on = true, off = false } or { small = 10, large = 50 }".into()),
                    );
                }
            }
        }
        ok.then_some(out)
    }

    fn flag_metadata(&mut self, sec: &Section<'_, '_>) -> BTreeMap<String, serde_json::Value> {
        let mut out = BTreeMap::new();
        let Some((table, span)) = self.table(sec, "metadata") else {
            return out;
        };
        let msec = Section::new(sec.ctx.clone(), "metadata.", span, table);
        for e in &msec.entries {
            match e.value {
                DeValue::String(_)
                | DeValue::Integer(_)
                | DeValue::Float(_)
                | DeValue::Boolean(_) => {
                    if let Some(v) = json(e.value) {
                        out.insert(e.key.to_string(), v);
                    }
                }
                other => self.error(
                    &e.span,
                    format!(
                        "{}: metadata {:?} must be a string, a number or a boolean, found {}",
                        sec.ctx,
                        e.key,
                        describe(other)
                    ),
                    Some(
                        "OFREP carries flag metadata as flat strings, numbers and booleans".into(),
                    ),
                ),
            }
        }
        out
    }

    /// `[[flag.rule]]`, in order: the first whose `when` holds decides.
    fn flag_rules(&mut self, sec: &Section<'_, '_>) -> Option<Vec<Rule>> {
        let Some(e) = sec.get("rule") else {
            return Some(Vec::new());
        };
        let tables = self.array_of_tables(e, "rule", "[[flag.rule]]");
        let mut out = Vec::new();
        let mut ok = true;
        for (i, (table, span)) in tables.into_iter().enumerate() {
            let rsec = Section::new(format!("{} rule #{}", sec.ctx, i + 1), "", span, table);
            self.unknown_keys(&rsec, RULE_KEYS, &[], "[[flag.rule]]");
            let when = self.conditions(&rsec);
            let then = self.outcome(&rsec);
            match (when, then) {
                (Some(when), Some(then)) => out.push(Rule { when, then }),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn outcome(&mut self, sec: &Section<'_, '_>) -> Option<Outcome> {
        match (sec.get("variant"), sec.get("split")) {
            (Some(_), Some(e)) => {
                self.error(
                    &e.key_span,
                    format!("{}: a rule has variant or split, not both", sec.ctx),
                    Some("variant = \"on\" serves one variant; split = { on = 10, off = 90 } splits users by weight".into()),
                );
                None
            }
            (Some(_), None) => {
                for k in ["bucket_by", "seed"] {
                    if let Some(e) = sec.get(k) {
                        self.error(
                            &e.key_span,
                            format!("{}: {k} is for a split", sec.ctx),
                            Some(format!("remove {k}, or use split = {{ ... }}")),
                        );
                    }
                }
                self.string(sec, "variant")
                    .map(|(v, _)| Outcome::Variant(v.to_string()))
            }
            (None, Some(_)) => {
                let (table, span) = self.table(sec, "split")?;
                let ssec = Section::new(sec.ctx.clone(), "split.", span, table);
                let mut split = Vec::new();
                for e in &ssec.entries {
                    match e.value {
                        DeValue::Integer(i)
                            if (0..=i128::from(ficus_flags::MAX_TOTAL_WEIGHT))
                                .contains(&int_value(i)) =>
                        {
                            split.push((e.key.to_string(), int_value(i) as u32));
                        }
                        other => {
                            self.error(
                                &e.span,
                                format!(
                                    "{}: split weight of {:?} must be a whole number from 0, found {}",
                                    sec.ctx,
                                    e.key,
                                    describe(other)
                                ),
                                Some("weights are relative: split = { on = 10, off = 90 } sends one user in ten to on".into()),
                            );
                            return None;
                        }
                    }
                }
                let bucket_by = self.string(sec, "bucket_by").map(|(b, _)| b.to_string());
                let hash = match self.string(sec, "seed") {
                    Some((s, _)) => BucketHash::FlagdCustomSeed(s.to_string()),
                    None => BucketHash::Flagd,
                };
                Some(Outcome::Fractional {
                    bucket_by,
                    hash,
                    split,
                })
            }
            (None, None) => {
                self.error(
                    &sec.span,
                    format!("{}: a rule needs variant or split", sec.ctx),
                    Some("add variant = \"on\", or split = { on = 10, off = 90 }".into()),
                );
                None
            }
        }
    }

    /// `when = [{ attribute = "plan", in = ["pro", "team"] }, ...]`: all must hold.
    fn conditions(&mut self, sec: &Section<'_, '_>) -> Option<Vec<Condition>> {
        let Some(e) = sec.get("when") else {
            return Some(Vec::new());
        };
        let DeValue::Array(items) = e.value else {
            self.error(
                &e.span,
                format!(
                    "{}: when must be an array of conditions, found {}",
                    sec.ctx,
                    describe(e.value)
                ),
                Some("when = [{ attribute = \"plan\", eq = \"pro\" }]".into()),
            );
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items.iter() {
            let span = item.span();
            let DeValue::Table(t) = item.get_ref() else {
                self.error(
                    &span,
                    format!(
                        "{}: a condition must be a table, found {}",
                        sec.ctx,
                        describe(item.get_ref())
                    ),
                    Some("{ attribute = \"plan\", eq = \"pro\" }".into()),
                );
                ok = false;
                continue;
            };
            let csec = Section::new(sec.ctx.clone(), "when.", span, t);
            match self.condition(&csec) {
                Some(c) => out.push(c),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn condition(&mut self, sec: &Section<'_, '_>) -> Option<Condition> {
        let mut known = vec!["attribute"];
        known.extend_from_slice(CONDITION_OPS);
        self.unknown_keys(sec, &known, &[], "a condition");
        let attribute = match self.string(sec, "attribute") {
            Some((a, _)) if !a.is_empty() => a.to_string(),
            _ => {
                self.error(
                    &sec.span,
                    format!("{}: a condition needs an attribute", sec.ctx),
                    Some("attribute = \"targetingKey\", or a context key such as \"plan\" or \"user.country\"".into()),
                );
                return None;
            }
        };
        let ops: Vec<&Entry<'_, '_>> = sec
            .entries
            .iter()
            .filter(|e| CONDITION_OPS.contains(&e.key))
            .collect();
        let [e] = ops.as_slice() else {
            self.error(
                &sec.span,
                format!(
                    "{}: a condition on {attribute:?} needs exactly one operator",
                    sec.ctx
                ),
                Some(format!("operators are: {}", CONDITION_OPS.join(", "))),
            );
            return None;
        };
        let op = self.op(sec, e)?;
        Some(Condition { attribute, op })
    }

    fn op(&mut self, sec: &Section<'_, '_>, e: &Entry<'_, '_>) -> Option<Op> {
        let bad = |this: &mut Self, what: &str| {
            this.error(
                &e.span,
                format!(
                    "{}: {} must be {what}, found {}",
                    sec.ctx,
                    e.key,
                    describe(e.value)
                ),
                None,
            );
            None
        };
        match e.key {
            "eq" | "ne" => match json(e.value) {
                Some(v) if !v.is_array() && !v.is_object() => Some(if e.key == "eq" {
                    Op::Eq(v)
                } else {
                    Op::NotEq(v)
                }),
                _ => bad(self, "a string, a number or a boolean"),
            },
            "in" | "not_in" => match json(e.value) {
                Some(serde_json::Value::Array(items))
                    if !items.is_empty()
                        && items.iter().all(|v| !v.is_array() && !v.is_object()) =>
                {
                    Some(if e.key == "in" {
                        Op::In(items)
                    } else {
                        Op::NotIn(items)
                    })
                }
                _ => bad(self, "a non-empty array of strings, numbers or booleans"),
            },
            "starts_with" | "ends_with" => match e.value {
                DeValue::String(s) => Some(if e.key == "starts_with" {
                    Op::StartsWith(s.to_string())
                } else {
                    Op::EndsWith(s.to_string())
                }),
                _ => bad(self, "a string"),
            },
            "semver" => {
                let DeValue::String(s) = e.value else {
                    return bad(self, "a string such as \">= 2.1.0\"");
                };
                let (op, version) = match s.trim().split_once(' ') {
                    Some((o, v)) => (o.trim(), v.trim()),
                    None => ("=", s.trim()),
                };
                match (op.parse::<SemVerOp>(), version.parse::<SemVer>()) {
                    (Ok(op), Ok(_)) => Some(Op::SemVer(op, version.to_string())),
                    _ => {
                        self.error(
                            &e.span,
                            format!("{}: semver {:?} is not a comparison with a version", sec.ctx, clip(s)),
                            Some("an operator (=, !=, <, <=, >, >=, ^ same major, ~ same minor), a space and a version: semver = \">= 2.1.0\"".into()),
                        );
                        None
                    }
                }
            }
            "lt" | "le" | "gt" | "ge" => {
                let n = match e.value {
                    DeValue::Integer(i) => Some(int_value(i) as f64),
                    DeValue::Float(f) => f.as_str().parse::<f64>().ok().filter(|x| x.is_finite()),
                    _ => None,
                };
                let Some(n) = n else {
                    return bad(self, "a number");
                };
                let op = match e.key {
                    "lt" => NumOp::Lt,
                    "le" => NumOp::Le,
                    "gt" => NumOp::Gt,
                    _ => NumOp::Ge,
                };
                Some(Op::Num(op, n))
            }
            "exists" => match e.value {
                DeValue::Boolean(b) => Some(Op::Exists(*b)),
                _ => bad(self, "true or false"),
            },
            _ => None,
        }
    }

    /// A route's `flag = { key = "...", modern = "on", context = ["x-plan"] }`. Whether the
    /// flag and its variant exist is checked once every flag is read
    /// ([`Self::check_route_flags`]).
    pub(super) fn route_flag(&mut self, sec: &Section<'_, '_>) -> Option<RouteFlag> {
        let (table, span) = self.table(sec, "flag")?;
        let fsec = Section::new(sec.ctx.clone(), "flag.", span.clone(), table);
        self.unknown_keys(&fsec, &["key", "modern", "context"], &[], "a route's flag");
        if !sec.has("modern") {
            self.error(
                &span,
                format!("{}: flag needs a modern upstream", sec.ctx),
                Some(
                    "the flag decides who of legacy and modern answers; add modern = \"...\""
                        .into(),
                ),
            );
        }
        if sec.has("rollout") {
            self.error(
                &span,
                format!("{}: a route follows a flag or a rollout, not both", sec.ctx),
                Some("a rollout moves the weight; with a flag the weight is not used".into()),
            );
        }
        let key = self.string(&fsec, "key").map(|(k, _)| k.to_string());
        let modern = self
            .string(&fsec, "modern")
            .map_or_else(|| "on".to_string(), |(m, _)| m.to_string());
        let mut context = Vec::new();
        if let Some((items, _)) = self.strings(&fsec, "context") {
            for (h, hspan) in items {
                match http::HeaderName::from_bytes(h.as_bytes()) {
                    Ok(n) => context.push(n),
                    Err(_) => self.error(
                        &hspan,
                        format!("{}: flag.context {:?} is not a header name", sec.ctx, clip(h)),
                        Some("request headers whose values go into the evaluation context, e.g. context = [\"x-plan\"]".into()),
                    ),
                }
            }
        }
        let Some(key) = key else {
            self.error(
                &span,
                format!("{}: flag has no key", sec.ctx),
                Some("flag = { key = \"new-checkout\", modern = \"on\" }".into()),
            );
            return None;
        };
        self.route_flag_refs
            .push((key.clone(), modern.clone(), span, sec.ctx.clone()));
        Some(RouteFlag {
            key,
            modern,
            context,
        })
    }

    /// A route's `forward_flags = { flags = ["a", "b"], header = "x-ficus-flags", context =
    /// ["x-plan"] }`. Whether the flags exist is checked once every flag is read.
    pub(super) fn forward_flags(&mut self, sec: &Section<'_, '_>) -> Option<ForwardFlags> {
        let (table, span) = self.table(sec, "forward_flags")?;
        let fsec = Section::new(sec.ctx.clone(), "forward_flags.", span.clone(), table);
        self.unknown_keys(
            &fsec,
            &["flags", "header", "context"],
            &[],
            "a route's forward_flags",
        );
        let mut flags = Vec::new();
        match self.strings(&fsec, "flags") {
            Some((items, lspan)) => {
                if items.is_empty() || items.len() > defaults::MAX_FORWARD_FLAGS {
                    self.error(
                        &lspan,
                        format!(
                            "{}: forward_flags.flags has {} flags; name 1 to {}",
                            sec.ctx,
                            items.len(),
                            defaults::MAX_FORWARD_FLAGS
                        ),
                        Some("each is evaluated for every request of the route".into()),
                    );
                }
                for (k, kspan) in items {
                    if flags.iter().any(|f| f == k) {
                        self.error(
                            &kspan,
                            format!("{}: forward_flags.flags names {:?} twice", sec.ctx, clip(k)),
                            None,
                        );
                        continue;
                    }
                    self.forward_flag_refs
                        .push((k.to_string(), kspan, sec.ctx.clone()));
                    flags.push(k.to_string());
                }
            }
            None => self.error(
                &span,
                format!("{}: forward_flags has no flags", sec.ctx),
                Some("forward_flags = { flags = [\"new-checkout\"] }".into()),
            ),
        }
        let header = match self.string(&fsec, "header") {
            None => http::HeaderName::from_static(defaults::FORWARD_FLAGS_HEADER),
            Some((h, hspan)) => match http::HeaderName::from_bytes(h.as_bytes()) {
                Ok(n) if !RESERVED_HEADERS.contains(&n.as_str()) => n,
                Ok(n) => {
                    self.error(
                        &hspan,
                        format!(
                            "{}: forward_flags.header {:?} is a header ficus or HTTP itself manages",
                            sec.ctx,
                            n.as_str()
                        ),
                        Some(format!("use a header of your own, e.g. {:?}", defaults::FORWARD_FLAGS_HEADER)),
                    );
                    http::HeaderName::from_static(defaults::FORWARD_FLAGS_HEADER)
                }
                Err(_) => {
                    self.error(
                        &hspan,
                        format!(
                            "{}: forward_flags.header {:?} is not a header name",
                            sec.ctx,
                            clip(h)
                        ),
                        Some("header names are tokens such as \"x-ficus-flags\"".into()),
                    );
                    http::HeaderName::from_static(defaults::FORWARD_FLAGS_HEADER)
                }
            },
        };
        let mut context = Vec::new();
        if let Some((items, _)) = self.strings(&fsec, "context") {
            for (h, hspan) in items {
                match http::HeaderName::from_bytes(h.as_bytes()) {
                    Ok(n) => context.push(n),
                    Err(_) => self.error(
                        &hspan,
                        format!(
                            "{}: forward_flags.context {:?} is not a header name",
                            sec.ctx,
                            clip(h)
                        ),
                        Some("request headers whose values go into the evaluation context, e.g. context = [\"x-plan\"]".into()),
                    ),
                }
            }
        }
        Some(ForwardFlags {
            flags,
            header,
            context,
        })
    }

    /// Every route's flag names a `[[flag]]` that has its `modern` variant, and every
    /// forwarded flag is a `[[flag]]`.
    pub(super) fn check_route_flags(&mut self, flags: &[Flag]) {
        for (key, span, ctx) in std::mem::take(&mut self.forward_flag_refs) {
            if !flags.iter().any(|f| f.key == key) {
                self.error(
                    &span,
                    format!(
                        "{ctx}: forward_flags names {:?}, which is not a [[flag]]",
                        clip(&key)
                    ),
                    Some("add the [[flag]], or name one the config has".into()),
                );
            }
        }
        for (key, modern, span, ctx) in std::mem::take(&mut self.route_flag_refs) {
            match flags.iter().find(|f| f.key == key) {
                None => self.error(
                    &span,
                    format!("{ctx}: flag {:?} is not a [[flag]]", clip(&key)),
                    Some("add the [[flag]], or name one the config has".into()),
                ),
                Some(f) if !f.variants.contains_key(&modern) => {
                    let names: Vec<&str> = f.variants.keys().map(String::as_str).collect();
                    self.error(
                        &span,
                        format!("{ctx}: flag {key:?} has no variant {:?}", clip(&modern)),
                        Some(format!("its variants are: {}", names.join(", "))),
                    );
                }
                Some(_) => {}
            }
        }
    }

    pub(super) fn ofrep(&mut self, e: &Entry<'_, '_>) -> Ofrep {
        let mut o = Ofrep::default();
        let Some(sec) = self.top_table(e, "[ofrep]", "[ofrep]") else {
            return o;
        };
        self.unknown_keys(&sec, OFREP_KEYS, &[], "[ofrep]");
        if let Some((b, span)) = self.string(&sec, "bind") {
            match b.parse::<SocketAddr>() {
                Ok(a) => o.bind = Some(a),
                Err(_) => self.error(
                    &span,
                    format!("[ofrep]: bind {:?} is not an address", clip(b)),
                    Some("an IP address and a port, e.g. bind = \"127.0.0.1:8016\"".into()),
                ),
            }
        }
        o.keys_file = self.path(&sec, "keys_file");
        if let (Some(bind), None) = (o.bind, &o.keys_file) {
            if !bind.ip().is_loopback() {
                let span = sec.get("bind").map_or(sec.span.clone(), |e| e.span.clone());
                self.error(
                    &span,
                    format!("[ofrep]: bind {bind} is not loopback and there is no keys_file"),
                    Some("flags are read by anyone who reaches the listener: give keys_file = \"ofrep-keys\" (one evaluation key per line), or bind to 127.0.0.1".into()),
                );
            }
        }
        if let Some((n, span)) = self.size(&sec, "max_body") {
            if (1024..=16 * 1024 * 1024).contains(&n) {
                o.max_body = n;
            } else {
                self.error(
                    &span,
                    format!("[ofrep]: max_body {} is out of range", self.raw(&span)),
                    Some("from \"1KiB\" to \"16MiB\" (default \"64KiB\")".into()),
                );
            }
        }
        if let Some(n) = self.bounded(
            &sec,
            "max_context_attributes",
            1,
            100_000,
            "the most attributes, at any depth, an evaluation context may hold",
        ) {
            o.max_context_attributes = n as usize;
        }
        if let Some(n) = self.number(
            &sec,
            "per_second",
            0.001,
            1_000_000_000.0,
            "evaluations per second each key (or client address) may make",
        ) {
            o.per_second = n;
        }
        if let Some(n) = self.bounded(
            &sec,
            "burst",
            1,
            i128::from(u32::MAX),
            "evaluations a key may make back to back",
        ) {
            o.burst = n as u32;
        }
        if let Some(n) = self.bounded(
            &sec,
            "max_streams",
            1,
            1_000_000,
            "event streams open at once on this node",
        ) {
            o.max_streams = n as usize;
        }
        o
    }
}

/// A TOML value as JSON (datetimes, which JSON has not, are `None`).
fn json(v: &DeValue<'_>) -> Option<serde_json::Value> {
    Some(match v {
        DeValue::String(s) => serde_json::Value::String(s.to_string()),
        DeValue::Integer(i) => serde_json::Value::from(i64::try_from(int_value(i)).ok()?),
        DeValue::Float(f) => {
            serde_json::Value::from(f.as_str().parse::<f64>().ok().filter(|x| x.is_finite())?)
        }
        DeValue::Boolean(b) => serde_json::Value::Bool(*b),
        DeValue::Datetime(_) => return None,
        DeValue::Array(items) => serde_json::Value::Array(
            items
                .iter()
                .map(|i| json(i.get_ref()))
                .collect::<Option<Vec<_>>>()?,
        ),
        DeValue::Table(t) => table_json(t)?,
    })
}

fn table_json(t: &DeTable<'_>) -> Option<serde_json::Value> {
    let mut m = serde_json::Map::new();
    for (k, v) in t.iter() {
        m.insert(k.get_ref().to_string(), json(v.get_ref())?);
    }
    Some(serde_json::Value::Object(m))
}
