//! Fleet-wide and node-local settings. Several gateways (nodes) on one store run one
//! fleet-wide config: upstreams, routes, the default route, shadow, webhooks, verify jobs,
//! rollouts, the edge limits of `[gateway]`. What each node binds, where it logs and how it
//! takes part in the fleet is its own. A stored config version holds only the fleet-wide
//! part ([`fleet_text`]), so files that differ only in node-local keys are one version; a
//! node lays its own node-local settings over the fleet's ([`Config::with_node_local`]).

use std::path::Path;

use toml_edit::{DocumentMut, Item};

use crate::model::Config;
use crate::validate::{self, Scope};
use crate::Diagnostics;

/// The node-local settings: whole top-level sections (`key = None`) and single keys of a
/// section otherwise fleet-wide. Everything else in a config file is fleet-wide.
pub const NODE_LOCAL: &[(&str, Option<&str>)] = &[
    ("listener", None),
    ("admin", None),
    ("store", None),
    ("access_log", None),
    ("telemetry", None),
    ("node", None),
    ("fleet", None),
    ("tracing", None),
    ("ofrep", None),
    ("record", None),
    ("gateway", Some("max_connections")),
    ("gateway", Some("shutdown_grace")),
    ("gateway", Some("pid_file")),
];

/// Whether `section` (a top-level key such as `admin`) or its `key` is node-local.
pub fn is_node_local(section: &str, key: Option<&str>) -> bool {
    NODE_LOCAL
        .iter()
        .any(|(s, k)| *s == section && (k.is_none() || *k == key))
}

/// The fleet-wide part of a config text: the text with its node-local sections and keys
/// removed, everything else (comments included) as written. Two files that differ only in
/// node-local settings give the same text. Fails only on text that is not TOML.
pub fn fleet_text(text: &str) -> Result<String, String> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| e.message().to_string())?;
    for (section, key) in NODE_LOCAL {
        match key {
            None => {
                doc.remove(section);
            }
            Some(key) => {
                let emptied = match doc.get_mut(section) {
                    Some(Item::Table(t)) => {
                        t.remove(key);
                        t.is_empty()
                    }
                    Some(Item::Value(toml_edit::Value::InlineTable(t))) => {
                        t.remove(key);
                        t.is_empty()
                    }
                    _ => false,
                };
                if emptied {
                    doc.remove(section);
                }
            }
        }
    }
    tidy_table(doc.as_table_mut(), true);
    let mut out = doc.to_string();
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    if !out.is_empty() {
        out.push('\n');
    }
    Ok(out.trim_start_matches('\n').to_string())
}

/// Makes blank lines canonical where they cannot matter (between tables and keys, never
/// inside a value): removed sections leave the blank lines of their neighbourhood behind,
/// and two files that differ only there must give the same text. Every table starts after
/// one blank line; keys follow each other without one; comments stay where they were.
fn tidy_table(t: &mut toml_edit::Table, top: bool) {
    if !top {
        let prefix = t.decor().prefix().and_then(|p| p.as_str()).unwrap_or("");
        let tidied = format!("\n{}", without_blank_lines(prefix));
        t.decor_mut().set_prefix(tidied);
    }
    let keys: Vec<String> = t.iter().map(|(k, _)| k.to_string()).collect();
    for k in keys {
        if let Some(mut key) = t.key_mut(&k) {
            let prefix = key
                .leaf_decor()
                .prefix()
                .and_then(|p| p.as_str())
                .unwrap_or("")
                .to_string();
            key.leaf_decor_mut()
                .set_prefix(without_blank_lines(&prefix));
        }
        match t.get_mut(&k) {
            Some(Item::Table(sub)) => tidy_table(sub, false),
            Some(Item::ArrayOfTables(a)) => a.iter_mut().for_each(|sub| tidy_table(sub, false)),
            _ => {}
        }
    }
}

fn without_blank_lines(decor: &str) -> String {
    decor
        .split_inclusive('\n')
        .filter(|line| !line.trim().is_empty())
        .collect()
}

impl Config {
    /// This config with the node-local settings of `local` (a node's own file) in place of
    /// its own: what that node runs of a fleet-wide version.
    pub fn with_node_local(mut self, local: &Config) -> Config {
        self.listeners = local.listeners.clone();
        self.admin = local.admin.clone();
        self.store = local.store.clone();
        self.access_log = local.access_log.clone();
        self.telemetry = local.telemetry.clone();
        self.node = local.node.clone();
        self.fleet = local.fleet.clone();
        self.tracing = local.tracing.clone();
        self.ofrep = local.ofrep.clone();
        self.recording = local.recording.clone();
        self.gateway.max_connections = local.gateway.max_connections;
        self.gateway.shutdown_grace = local.gateway.shutdown_grace;
        self.gateway.pid_file = local.gateway.pid_file.clone();
        self
    }
}

/// Parses a fleet-wide text (a stored version; node-local sections in it, as older
/// versions have, are ignored) and lays `local`'s node-local settings over it. Relative
/// paths resolve against `base_dir`, the node's config folder.
pub fn parse_fleet_str(
    text: &str,
    origin: &str,
    base_dir: &Path,
    local: &Config,
) -> Result<Config, Diagnostics> {
    validate::parse(text, origin, base_dir, Scope::Fleet).map(|c| c.with_node_local(local))
}
