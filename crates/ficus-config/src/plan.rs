//! Plans and overrides: the route-level difference between two configs (what `ficus plan`
//! shows and every applied change records), and runtime overrides of a route's stage and
//! weight laid over the file's desired state, and runtime overrides of a flag (a variant
//! served to everyone, its enabled switch). Pure functions over the model.

use serde::Serialize;

use crate::model::{Config, Route, Stage, Weight};

/// One route-level difference between a running config and a proposed one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum RouteChange {
    Added {
        route: String,
        stage: String,
        weight: String,
    },
    Removed {
        route: String,
    },
    Stage {
        route: String,
        from: String,
        to: String,
    },
    Weight {
        route: String,
        from: String,
        to: String,
    },
    /// Anything else about the route changed (match, upstreams, sticky key, fallback, limits).
    Settings {
        route: String,
        what: Vec<String>,
    },
    /// The order of routes changed (first match wins, so this can change who takes a request).
    Order {
        from: Vec<String>,
        to: Vec<String>,
    },
    /// Upstreams, listeners, gateway limits, access log, telemetry, admin or store changed.
    Global {
        what: Vec<String>,
    },
}

impl RouteChange {
    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            RouteChange::Added {
                route,
                stage,
                weight,
            } => {
                format!("+ route {route}: added ({stage}, weight {weight})")
            }
            RouteChange::Removed { route } => format!("- route {route}: removed"),
            RouteChange::Stage { route, from, to } => {
                format!("~ route {route}: stage {from} -> {to}")
            }
            RouteChange::Weight { route, from, to } => {
                format!("~ route {route}: weight {from} -> {to}")
            }
            RouteChange::Settings { route, what } => {
                format!("~ route {route}: {} changed", what.join(", "))
            }
            RouteChange::Order { from, to } => {
                format!("~ route order: {} -> {}", from.join(", "), to.join(", "))
            }
            RouteChange::Global { what } => format!("~ {} changed", what.join(", ")),
        }
    }
}

/// The route-level plan from `old` to `new`, in the order of `new`'s routes (removals last).
pub fn plan(old: &Config, new: &Config) -> Vec<RouteChange> {
    let mut out = Vec::new();
    let mut global = Vec::new();
    if old.upstreams != new.upstreams {
        global.push("upstreams".to_string());
    }
    if old.listeners != new.listeners {
        global.push("listeners".to_string());
    }
    if old.gateway != new.gateway {
        global.push("gateway limits".to_string());
    }
    if old.access_log != new.access_log {
        global.push("access log".to_string());
    }
    if old.telemetry != new.telemetry {
        global.push("telemetry".to_string());
    }
    if old.admin != new.admin {
        global.push("admin".to_string());
    }
    if old.store != new.store {
        global.push("store".to_string());
    }
    if old.verify != new.verify {
        global.push("verify jobs".to_string());
    }
    if !global.is_empty() {
        out.push(RouteChange::Global { what: global });
    }
    let find = |c: &'_ Config, name: &str| c.all_routes().find(|r| r.name == name).cloned();
    for r in new.all_routes() {
        match find(old, &r.name) {
            None => out.push(RouteChange::Added {
                route: r.name.clone(),
                stage: r.stage.to_string(),
                weight: r.weight.to_string(),
            }),
            Some(o) => out.extend(route_changes(&o, r)),
        }
    }
    for r in old.all_routes() {
        if find(new, &r.name).is_none() {
            out.push(RouteChange::Removed {
                route: r.name.clone(),
            });
        }
    }
    let order = |c: &Config| -> Vec<String> { c.routes.iter().map(|r| r.name.clone()).collect() };
    let (oo, no) = (order(old), order(new));
    let common_old: Vec<&String> = oo.iter().filter(|n| no.contains(n)).collect();
    let common_new: Vec<&String> = no.iter().filter(|n| oo.contains(n)).collect();
    if common_old != common_new {
        out.push(RouteChange::Order { from: oo, to: no });
    }
    out
}

fn route_changes(old: &Route, new: &Route) -> Vec<RouteChange> {
    let mut out = Vec::new();
    if old.stage != new.stage {
        out.push(RouteChange::Stage {
            route: new.name.clone(),
            from: old.stage.to_string(),
            to: new.stage.to_string(),
        });
    }
    if old.weight != new.weight {
        out.push(RouteChange::Weight {
            route: new.name.clone(),
            from: old.weight.to_string(),
            to: new.weight.to_string(),
        });
    }
    let mut what = Vec::new();
    if old.matcher != new.matcher {
        what.push("match".to_string());
    }
    if old.legacy != new.legacy || old.modern != new.modern {
        what.push("upstreams".to_string());
    }
    if old.sticky != new.sticky {
        what.push("sticky key".to_string());
    }
    if old.fallback != new.fallback {
        what.push("fallback".to_string());
    }
    if old.max_body_bytes != new.max_body_bytes {
        what.push("max_body".to_string());
    }
    if old.debug_header != new.debug_header {
        what.push("debug_header".to_string());
    }
    if old.shadow_writes != new.shadow_writes {
        what.push("shadow_writes".to_string());
    }
    if old.shadow != new.shadow {
        what.push("shadow".to_string());
    }
    if old.priority != new.priority {
        what.push("priority".to_string());
    }
    if old.rate_limit != new.rate_limit {
        what.push("rate_limit".to_string());
    }
    if old.retry != new.retry {
        what.push("retry".to_string());
    }
    if old.cache != new.cache {
        what.push("cache".to_string());
    }
    if old.rollout != new.rollout {
        what.push("rollout".to_string());
    }
    if old.slos != new.slos {
        what.push("slo".to_string());
    }
    if old.flag != new.flag {
        what.push("flag".to_string());
    }
    if old.forward_flags != new.forward_flags {
        what.push("forward_flags".to_string());
    }
    if old.record != new.record {
        what.push("record".to_string());
    }
    if !what.is_empty() {
        out.push(RouteChange::Settings {
            route: new.name.clone(),
            what,
        });
    }
    out
}

/// A runtime override of a route's stage and/or weight (set by the API, the CLI, a
/// rollback or the rollout controller) that wins over the file until the file changes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Override {
    pub route: String,
    pub stage: Option<Stage>,
    pub weight: Option<Weight>,
}

/// Why an override cannot be applied to a config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    #[error("no route named {route:?}; routes are: {known}")]
    UnknownRoute { route: String, known: String },
    #[error("route {route:?} has no modern upstream, so it cannot be on stage {stage}; add modern = \"...\" to the route in the file first")]
    NoModern { route: String, stage: Stage },
    #[error("no flag named {flag:?}; flags are: {known}")]
    UnknownFlag { flag: String, known: String },
    #[error("flag {flag:?} has no variant {variant:?}; its variants are: {known}")]
    UnknownVariant {
        flag: String,
        variant: String,
        known: String,
    },
}

/// A runtime override of a flag (`ficus flag set`): the variant everyone gets, whatever
/// the rules say (the kill switch), and/or its enabled switch. It wins over the file until
/// the file changes that flag. `None` fields are not overridden.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagOverride {
    pub flag: String,
    pub variant: Option<String>,
    pub enabled: Option<bool>,
}

/// The metadata key an overridden flag carries (`true`) in every OFREP resolution, so a
/// client can tell a kill switch from its rules.
pub const FLAG_OVERRIDE_METADATA: &str = "ficusOverride";

/// The config with flag overrides laid over it. A variant override drops the flag's rules
/// and makes that variant its default, so every context resolves to it with reason
/// `STATIC`; an enabled override sets the switch (a disabled flag resolves to no value,
/// whatever its variant).
pub fn with_flag_overrides(
    mut cfg: Config,
    overrides: &[FlagOverride],
) -> Result<Config, OverrideError> {
    for o in overrides {
        let known = cfg
            .flags
            .iter()
            .map(|f| f.key.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let flag = cfg
            .flags
            .iter_mut()
            .find(|f| f.key == o.flag)
            .ok_or_else(|| OverrideError::UnknownFlag {
                flag: o.flag.clone(),
                known: if known.is_empty() {
                    "(none)".to_string()
                } else {
                    known
                },
            })?;
        if let Some(v) = &o.variant {
            if !flag.variants.contains_key(v) {
                return Err(OverrideError::UnknownVariant {
                    flag: o.flag.clone(),
                    variant: v.clone(),
                    known: flag.variants.keys().cloned().collect::<Vec<_>>().join(", "),
                });
            }
            flag.rules.clear();
            flag.default_variant = v.clone();
        }
        if let Some(e) = o.enabled {
            flag.enabled = e;
        }
        if o.variant.is_some() || o.enabled.is_some() {
            flag.metadata.insert(
                FLAG_OVERRIDE_METADATA.to_string(),
                serde_json::Value::Bool(true),
            );
        }
    }
    Ok(cfg)
}

/// The flag overrides still meaningful after the file changed from `old` to `new`: an
/// override of a flag the file changed or removed is dropped (the reviewed file wins).
pub fn surviving_flag_overrides(
    old: &Config,
    new: &Config,
    overrides: &[FlagOverride],
) -> Vec<FlagOverride> {
    overrides
        .iter()
        .filter(|o| {
            let (Some(was), Some(now)) = (
                old.flags.iter().find(|f| f.key == o.flag),
                new.flags.iter().find(|f| f.key == o.flag),
            ) else {
                return false;
            };
            was == now
        })
        .cloned()
        .collect()
}

/// The config with overrides laid over it: what actually runs.
pub fn with_overrides(base: &Config, overrides: &[Override]) -> Result<Config, OverrideError> {
    let mut cfg = base.clone();
    for o in overrides {
        let known = || {
            base.all_routes()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let route = cfg
            .routes
            .iter_mut()
            .chain(std::iter::once(&mut cfg.default_route))
            .find(|r| r.name == o.route)
            .ok_or_else(|| OverrideError::UnknownRoute {
                route: o.route.clone(),
                known: known(),
            })?;
        if let Some(stage) = o.stage {
            if stage.uses_modern() && route.modern.is_none() {
                return Err(OverrideError::NoModern {
                    route: o.route.clone(),
                    stage,
                });
            }
            route.stage = stage;
        }
        if let Some(w) = o.weight {
            route.weight = w;
        }
    }
    Ok(cfg)
}

/// The overrides still meaningful after the file changed from `old` to `new`: an override of
/// a route whose stage or weight the file itself changed (or that the file removed) is
/// dropped, since the file is the desired state and a reviewed change to it wins.
pub fn surviving_overrides(old: &Config, new: &Config, overrides: &[Override]) -> Vec<Override> {
    overrides
        .iter()
        .filter(|o| {
            let (Some(was), Some(now)) = (
                old.all_routes().find(|r| r.name == o.route),
                new.all_routes().find(|r| r.name == o.route),
            ) else {
                return false;
            };
            was.stage == now.stage && was.weight == now.weight
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const BASE: &str = r#"
[[listener]]
bind = "127.0.0.1:8080"
[upstream.legacy]
url = "http://127.0.0.1:9001"
[upstream.modern]
url = "http://127.0.0.1:9002"
[[route]]
name = "orders"
path_prefix = "/orders"
legacy = "legacy"
modern = "modern"
stage = "canary"
weight = 10
[[route]]
name = "users"
path_prefix = "/users"
legacy = "legacy"
[default]
legacy = "legacy"
"#;

    fn cfg(text: &str) -> Config {
        crate::parse_str(text, "t.toml", Path::new("/")).unwrap_or_else(|d| panic!("{d}"))
    }

    #[test]
    fn plans_show_route_level_changes() {
        let old = cfg(BASE);
        let new = cfg(&BASE
            .replace("weight = 10", "weight = 25")
            .replace("path_prefix = \"/users\"", "path_prefix = \"/people\"")
            .replace(
                "[default]",
                "[[route]]\nname = \"search\"\npath = \"/search\"\nlegacy = \"legacy\"\n[default]",
            ));
        let p = plan(&old, &new);
        let lines: Vec<String> = p.iter().map(RouteChange::describe).collect();
        assert_eq!(
            lines,
            [
                "~ route orders: weight 10% -> 25%",
                "~ route users: match changed",
                "+ route search: added (legacy, weight 0%)",
            ]
        );
        assert!(plan(&old, &old).is_empty());
        let removed = plan(&new, &old);
        assert!(removed.contains(&RouteChange::Removed {
            route: "search".into()
        }));
    }

    #[test]
    fn a_routes_slos_and_flag_are_settings_a_plan_shows() {
        let old = cfg(&format!(
            "{BASE}[[flag]]\nkey = \"f\"\nvariants = {{ on = true, off = false }}\ndefault = \"off\"\n"
        ));
        let new = cfg(&format!(
            "{BASE}[[flag]]\nkey = \"f\"\nvariants = {{ on = true, off = false }}\ndefault = \"off\"\n"
        )
        .replace(
            "weight = 10\n",
            "weight = 10\nflag = { key = \"f\" }\n[[route.slo]]\nname = \"a\"\nobjective = 99\n",
        ));
        let lines: Vec<String> = plan(&old, &new).iter().map(RouteChange::describe).collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("slo") && lines[0].contains("flag"),
            "{lines:?}"
        );
    }

    #[test]
    fn reordering_routes_is_a_change() {
        let old = cfg(BASE);
        let text = r#"
[[listener]]
bind = "127.0.0.1:8080"
[upstream.legacy]
url = "http://127.0.0.1:9001"
[upstream.modern]
url = "http://127.0.0.1:9002"
[[route]]
name = "users"
path_prefix = "/users"
legacy = "legacy"
[[route]]
name = "orders"
path_prefix = "/orders"
legacy = "legacy"
modern = "modern"
stage = "canary"
weight = 10
[default]
legacy = "legacy"
"#;
        let p = plan(&old, &cfg(text));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(matches!(&p[0], RouteChange::Order { .. }));
    }

    #[test]
    fn overrides_lay_over_the_file_and_are_checked() {
        let base = cfg(BASE);
        let o = Override {
            route: "orders".into(),
            stage: Some(Stage::Legacy),
            weight: Some(Weight::ZERO),
        };
        let eff = with_overrides(&base, &[o]).unwrap();
        let orders = eff.routes.iter().find(|r| r.name == "orders").unwrap();
        assert_eq!((orders.stage, orders.weight), (Stage::Legacy, Weight::ZERO));

        let bad = Override {
            route: "users".into(),
            stage: Some(Stage::Canary),
            weight: None,
        };
        assert!(matches!(
            with_overrides(&base, &[bad]),
            Err(OverrideError::NoModern { .. })
        ));
        let unknown = Override {
            route: "nope".into(),
            stage: None,
            weight: None,
        };
        let err = with_overrides(&base, &[unknown]).unwrap_err().to_string();
        assert_eq!(
            err,
            "no route named \"nope\"; routes are: orders, users, default"
        );
    }

    const FLAGS: &str = r#"
[[flag]]
key = "checkout"
variants = { on = true, off = false }
default = "off"
[[flag.rule]]
when = [{ attribute = "user.plan", eq = "pro" }]
variant = "on"
[[flag]]
key = "banner"
variants = { a = "A", b = "B" }
default = "a"
"#;

    #[test]
    fn flag_overrides_lay_over_the_file_and_are_checked() {
        let base = cfg(&format!("{BASE}{FLAGS}"));
        let kill = FlagOverride {
            flag: "checkout".into(),
            variant: Some("off".into()),
            enabled: None,
        };
        let eff = with_flag_overrides(base.clone(), std::slice::from_ref(&kill)).unwrap();
        let f = eff.flags.iter().find(|f| f.key == "checkout").unwrap();
        assert!(f.rules.is_empty());
        assert_eq!(f.default_variant, "off");
        assert_eq!(f.metadata[FLAG_OVERRIDE_METADATA], serde_json::json!(true));
        let pro = ficus_flags::Context {
            targeting_key: Some("u1".into()),
            attrs: serde_json::json!({"user": {"plan": "pro"}})
                .as_object()
                .unwrap()
                .clone(),
        };
        let r = ficus_flags::evaluate(f, &pro);
        assert_eq!(r.variant.as_deref(), Some("off"));
        assert_eq!(r.reason, ficus_flags::Reason::Static);
        // The other flag is untouched.
        assert_eq!(
            eff.flags.iter().find(|f| f.key == "banner"),
            base.flags.iter().find(|f| f.key == "banner")
        );

        let off = FlagOverride {
            flag: "banner".into(),
            variant: None,
            enabled: Some(false),
        };
        let eff = with_flag_overrides(base.clone(), &[off]).unwrap();
        let f = eff.flags.iter().find(|f| f.key == "banner").unwrap();
        assert!(!f.enabled);
        assert_eq!(f.default_variant, "a");

        let err = with_flag_overrides(
            base.clone(),
            &[FlagOverride {
                flag: "checkout".into(),
                variant: Some("maybe".into()),
                enabled: None,
            }],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "flag \"checkout\" has no variant \"maybe\"; its variants are: off, on"
        );
        let err = with_flag_overrides(
            base,
            &[FlagOverride {
                flag: "nope".into(),
                variant: None,
                enabled: Some(true),
            }],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "no flag named \"nope\"; flags are: checkout, banner");
    }

    #[test]
    fn a_file_change_to_a_flag_drops_its_override() {
        let old = cfg(&format!("{BASE}{FLAGS}"));
        let overrides = vec![
            FlagOverride {
                flag: "checkout".into(),
                variant: Some("off".into()),
                enabled: None,
            },
            FlagOverride {
                flag: "banner".into(),
                variant: None,
                enabled: Some(false),
            },
        ];
        assert_eq!(surviving_flag_overrides(&old, &old, &overrides), overrides);
        let new = cfg(&format!(
            "{BASE}{}",
            FLAGS.replace("default = \"a\"", "default = \"b\"")
        ));
        assert_eq!(
            surviving_flag_overrides(&old, &new, &overrides),
            overrides[..1].to_vec()
        );
        let removed = cfg(BASE);
        assert!(surviving_flag_overrides(&old, &removed, &overrides).is_empty());
    }

    #[test]
    fn a_file_change_to_a_route_drops_its_override() {
        let old = cfg(BASE);
        let overrides = vec![
            Override {
                route: "orders".into(),
                stage: Some(Stage::Legacy),
                weight: None,
            },
            Override {
                route: "default".into(),
                stage: None,
                weight: Some(Weight::ZERO),
            },
        ];
        let same = surviving_overrides(&old, &old, &overrides);
        assert_eq!(same, overrides);
        let new = cfg(&BASE.replace("weight = 10", "weight = 50"));
        let left = surviving_overrides(&old, &new, &overrides);
        assert_eq!(left, overrides[1..].to_vec());
    }
}
