//! `[node]` and `[fleet]`: a process's identity and timings among the gateways sharing one
//! store. Both sections are node-local (see `scope.rs`): each node reads its own at start.

use std::time::Duration;

use super::{Section, Validator};
use crate::model::{defaults, FleetSettings, Node};
use crate::raw::{clip, Entry};
use crate::units::format_duration;

pub(super) const NODE_KEYS: &[&str] = &["name", "admin_url", "migration_commands"];
pub(super) const FLEET_KEYS: &[&str] = &[
    "listen",
    "poll_interval",
    "heartbeat",
    "dead_after",
    "prune_after",
    "lease",
    "flush_interval",
];

/// Longest node name: it is stored in the registry and shown in tables.
const MAX_NODE_NAME: usize = 128;

impl Validator<'_, '_> {
    pub(super) fn node(&mut self, e: &Entry<'_, '_>) -> Node {
        let mut node = Node::default();
        let Some(sec) = self.top_table(e, "[node]", "[node]") else {
            return node;
        };
        self.unknown_keys(&sec, NODE_KEYS, &[], "[node]");
        if let Some((name, span)) = self.string(&sec, "name") {
            let ok = !name.is_empty()
                && name.len() <= MAX_NODE_NAME
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if ok {
                node.name = Some(name.to_string());
            } else {
                self.error(
                    &span,
                    format!("[node]: name {:?} is not a node name", clip(name)),
                    Some(format!(
                        "use letters, digits, '-', '_' and '.', at most {MAX_NODE_NAME} \
                         characters, e.g. name = \"gw-eu-1\" (default: the host name)"
                    )),
                );
            }
        }
        if let Some((url, span)) = self.string(&sec, "admin_url") {
            match url.parse::<http::Uri>() {
                Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {
                    node.admin_url = Some(url.trim_end_matches('/').to_string());
                }
                _ => self.error(
                    &span,
                    format!("[node]: admin_url {:?} is not an http(s) URL", clip(url)),
                    Some(
                        "write the address people reach this node's admin API at, e.g. \
                         admin_url = \"http://10.0.0.5:9901\" (default: from [admin] bind)"
                            .into(),
                    ),
                ),
            }
        }
        node.migration_commands = self.boolean(&sec, "migration_commands", false);
        node
    }

    pub(super) fn fleet(&mut self, e: &Entry<'_, '_>) -> FleetSettings {
        let mut f = FleetSettings::default();
        let Some(sec) = self.top_table(e, "[fleet]", "[fleet]") else {
            return f;
        };
        self.unknown_keys(&sec, FLEET_KEYS, &[], "[fleet]");
        f.listen = self.boolean(&sec, "listen", true);
        f.poll_interval = self.interval(&sec, "poll_interval", defaults::FLEET_POLL_INTERVAL);
        f.heartbeat = self.interval(&sec, "heartbeat", defaults::FLEET_HEARTBEAT);
        f.flush_interval = self.interval(&sec, "flush_interval", defaults::FLEET_FLUSH_INTERVAL);
        f.lease = self.duration(&sec, "lease", defaults::FLEET_LEASE);
        f.dead_after = self.duration(&sec, "dead_after", defaults::FLEET_DEAD_AFTER);
        f.prune_after = self.duration(&sec, "prune_after", defaults::FLEET_PRUNE_AFTER);
        // A leader renews its lease every heartbeat: with less than two heartbeats per
        // lease, one slow renewal would hand the lead to another node.
        let at = |k: &str| sec.get(k).or(sec.get("heartbeat")).map(|e| e.span.clone());
        if f.lease < f.heartbeat * 2 {
            let span = at("lease").unwrap_or_else(|| sec.span.clone());
            self.error(
                &span,
                format!(
                    "[fleet]: lease {} is shorter than two heartbeats ({})",
                    format_duration(f.lease),
                    format_duration(f.heartbeat * 2)
                ),
                Some(format!(
                    "the leader renews its lease every heartbeat; make lease at least twice \
                     heartbeat (defaults: lease = \"{}\", heartbeat = \"{}\")",
                    format_duration(defaults::FLEET_LEASE),
                    format_duration(defaults::FLEET_HEARTBEAT)
                )),
            );
        }
        if f.dead_after < f.heartbeat * 2 {
            let span = at("dead_after").unwrap_or_else(|| sec.span.clone());
            self.error(
                &span,
                format!(
                    "[fleet]: dead_after {} is shorter than two heartbeats ({})",
                    format_duration(f.dead_after),
                    format_duration(f.heartbeat * 2)
                ),
                Some(format!(
                    "a node would show as down between two of its own heartbeats; make \
                     dead_after at least twice heartbeat (default \"{}\")",
                    format_duration(defaults::FLEET_DEAD_AFTER)
                )),
            );
        }
        if f.prune_after < f.dead_after {
            let span = at("prune_after").unwrap_or_else(|| sec.span.clone());
            self.error(
                &span,
                format!(
                    "[fleet]: prune_after {} is shorter than dead_after {}",
                    format_duration(f.prune_after),
                    format_duration(f.dead_after)
                ),
                Some(format!(
                    "a node is removed from the registry only after it has shown as down; \
                     make prune_after at least dead_after (default \"{}\")",
                    format_duration(defaults::FLEET_PRUNE_AFTER)
                )),
            );
        }
        f
    }

    /// A duration within [`defaults::FLEET_MIN_INTERVAL`, `defaults::FLEET_MAX_INTERVAL`].
    fn interval(&mut self, sec: &Section<'_, '_>, key: &str, default: Duration) -> Duration {
        let d = self.duration(sec, key, default);
        let (min, max) = (defaults::FLEET_MIN_INTERVAL, defaults::FLEET_MAX_INTERVAL);
        if (min..=max).contains(&d) {
            return d;
        }
        if let Some(e) = sec.get(key) {
            let span = e.span.clone();
            self.error(
                &span,
                format!("[fleet]: {key} {} is out of range", format_duration(d)),
                Some(format!(
                    "use {} to {} (default \"{}\")",
                    format_duration(min),
                    format_duration(max),
                    format_duration(default)
                )),
            );
        }
        default
    }
}
