//! `[admin]`: where the admin API listens and who may use it (node-local).

use std::net::SocketAddr;

use super::Validator;
use crate::model::{defaults, Admin, ReadAccess};
use crate::raw::{clip, Entry};

const ADMIN_KEYS: &[&str] = &[
    "enabled",
    "bind",
    "token_file",
    "read_token_file",
    "reads",
    "allowed_hosts",
];

impl Validator<'_, '_> {
    pub(super) fn admin(&mut self, e: &Entry<'_, '_>) -> Admin {
        let mut admin = Admin::default();
        let Some(sec) = self.top_table(e, "[admin]", "[admin]") else {
            return admin;
        };
        self.unknown_keys(&sec, ADMIN_KEYS, &[], "[admin]");
        admin.enabled = self.boolean(&sec, "enabled", true);
        if let Some((b, span)) = self.string(&sec, "bind") {
            match b.parse::<SocketAddr>() {
                Ok(a) => admin.bind = a,
                Err(_) => self.error(
                    &span,
                    format!("[admin]: bind {:?} is not an address", clip(b)),
                    Some(format!(
                        "write IP:PORT, e.g. bind = {:?}",
                        defaults::ADMIN_BIND
                    )),
                ),
            }
        }
        admin.token_file = self.path(&sec, "token_file");
        admin.read_token_file = self.path(&sec, "read_token_file");
        if let Some((r, span)) = self.string(&sec, "reads") {
            match r {
                "open" => admin.reads = Some(ReadAccess::Open),
                "token" => admin.reads = Some(ReadAccess::Token),
                other => self.error(
                    &span,
                    format!("[admin]: reads {:?} is not an access mode", clip(other)),
                    Some(
                        "write reads = \"token\" (reads need a token) or reads = \"open\"; \
                         the default is open on a loopback bind and token otherwise"
                            .into(),
                    ),
                ),
            }
        }
        if let Some((hosts, _)) = self.strings(&sec, "allowed_hosts") {
            let mut out = Vec::new();
            for (h, span) in hosts {
                let name = h.trim().trim_end_matches('.').to_ascii_lowercase();
                let ok = name == "*"
                    || (!name.is_empty()
                        && name.len() <= 253
                        && name.bytes().all(|b| {
                            b.is_ascii_alphanumeric()
                                || matches!(b, b'-' | b'.' | b':' | b'[' | b']')
                        }));
                if ok {
                    out.push(
                        name.trim_start_matches('[')
                            .trim_end_matches(']')
                            .to_string(),
                    );
                } else {
                    self.error(
                        &span,
                        format!("[admin]: allowed_hosts {:?} is not a host name", clip(h)),
                        Some(
                            "write names or addresses without port, e.g. allowed_hosts = \
                             [\"ficus.internal\", \"10.0.0.5\"], or [\"*\"] for any"
                                .into(),
                        ),
                    );
                }
            }
            admin.allowed_hosts = Some(out);
        }
        admin
    }
}
