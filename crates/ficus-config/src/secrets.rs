//! Secrets in config texts, masked wherever a text is read back (the admin API's config,
//! versions and their diffs): a URL's password (`postgres://ficus:***@db/...`), the values of
//! credential-like query parameters (`?token=***`), and a webhook's whole path and query
//! (`https://hooks.example/***`: a webhook URL is usually a capability, the path being the
//! secret). Everything else is kept as written, comments included.
//!
//! A masked text cannot be applied back ([`contains_masked`]): an operator who edits what the
//! API showed would otherwise store `***` as a password.

use toml_edit::{DocumentMut, Item, Value};

/// What replaces a secret.
pub const MASK: &str = "***";

/// Query parameters whose values are credentials, wherever they appear (compared without
/// case): the list shadow samples and the access log use too.
pub const SECRET_QUERY_PARAMS: &[&str] = ficus_compare::DEFAULT_SENSITIVE_QUERY;

/// Whether a query parameter's value is a credential.
pub fn is_secret_param(name: &str) -> bool {
    SECRET_QUERY_PARAMS
        .iter()
        .any(|p| p.eq_ignore_ascii_case(name))
}

/// A URL with its password and credential-like query values masked (`whole_path`: the path
/// and every query value too). Text that is not a URL comes back unchanged.
pub fn mask_url(url: &str, whole_path: bool) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{MASK}@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    if whole_path {
        let masked = if tail.is_empty() || tail == "/" {
            tail.to_string()
        } else {
            format!("/{MASK}")
        };
        return format!("{scheme}://{authority}{masked}");
    }
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    let query = query.map(|q| {
        let (q, fragment) = match q.split_once('#') {
            Some((q, f)) => (q, Some(f)),
            None => (q, None),
        };
        let masked: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if is_secret_param(k) => format!("{k}={MASK}"),
                _ => pair.to_string(),
            })
            .collect();
        let mut out = masked.join("&");
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(f);
        }
        out
    });
    match query {
        Some(q) => format!("{scheme}://{authority}{path}?{q}"),
        None => format!("{scheme}://{authority}{path}"),
    }
}

/// A config text with every secret masked (see the module). A text that is not TOML comes
/// back with the passwords of its URLs masked, line by line.
pub fn mask_text(text: &str) -> String {
    let Ok(mut doc) = text.parse::<DocumentMut>() else {
        return text.split_inclusive('\n').map(mask_words).collect();
    };
    for (key, item) in doc.as_table_mut().iter_mut() {
        let webhook = key.get() == "webhook";
        mask_item(item, webhook, false);
        if key.get() == "tracing" {
            mask_header_values(item);
        }
    }
    doc.to_string()
}

/// Whether a text carries a secret masked by [`mask_text`] (applying it would store the
/// mask as the secret).
pub fn contains_masked(text: &str) -> bool {
    text.contains(&format!(":{MASK}@"))
        || text.contains(&format!("={MASK}"))
        || text.contains(&format!("\"{MASK}\""))
        || text.contains(&format!("/{MASK}\""))
}

/// `[tracing] headers`: every value, since a collector's headers are usually credentials
/// (an API key, a bearer token).
fn mask_header_values(section: &mut Item) {
    let Some(headers) = section.get_mut("headers") else {
        return;
    };
    let mask = |v: &mut Value| {
        if let Value::String(s) = v {
            let decor = s.decor().clone();
            let mut new = toml_edit::Formatted::new(MASK.to_string());
            *new.decor_mut() = decor;
            *s = new;
        }
    };
    match headers {
        Item::Table(t) => t.iter_mut().for_each(|(_, i)| {
            if let Item::Value(v) = i {
                mask(v)
            }
        }),
        Item::Value(Value::InlineTable(t)) => t.iter_mut().for_each(|(_, v)| mask(v)),
        _ => {}
    }
}

fn mask_item(item: &mut Item, webhook: bool, url_key: bool) {
    match item {
        Item::Value(v) => mask_value(v, webhook, url_key),
        Item::Table(t) => {
            for (k, i) in t.iter_mut() {
                let is_url = k.get() == "url";
                mask_item(i, webhook, is_url);
            }
        }
        Item::ArrayOfTables(a) => {
            for t in a.iter_mut() {
                for (k, i) in t.iter_mut() {
                    let is_url = k.get() == "url";
                    mask_item(i, webhook, is_url);
                }
            }
        }
        Item::None => {}
    }
}

fn mask_value(v: &mut Value, webhook: bool, url_key: bool) {
    match v {
        Value::String(s) => {
            let raw = s.value().to_string();
            if raw.contains("://") {
                let masked = mask_url(&raw, webhook && url_key);
                if masked != raw {
                    let decor = s.decor().clone();
                    let mut new = toml_edit::Formatted::new(masked);
                    *new.decor_mut() = decor;
                    *s = new;
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| mask_value(x, webhook, false)),
        Value::InlineTable(t) => {
            for (k, x) in t.iter_mut() {
                let is_url = k.get() == "url";
                mask_value(x, webhook, is_url);
            }
        }
        _ => {}
    }
}

/// The passwords of the URLs in a line of free text.
fn mask_words(line: &str) -> String {
    line.split(' ')
        .map(|w| {
            if w.contains("://") {
                let quoted = w.trim_matches(|c| c == '"' || c == '\'');
                w.replace(quoted, &mask_url(quoted, false))
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collectors_headers_are_masked_and_cannot_be_applied_back() {
        let text = "[tracing]\nendpoint = \"https://otlp.example\"\nheaders = { \"x-api-key\" = \"k3y\" } # vendor key\n\n[tracing.resource]\nteam = \"payments\"\n";
        let masked = mask_text(text);
        assert!(!masked.contains("k3y"), "{masked}");
        assert!(masked.contains("\"x-api-key\" = \"***\""), "{masked}");
        assert!(masked.contains("# vendor key"), "{masked}");
        assert!(masked.contains("team = \"payments\""), "{masked}");
        assert!(contains_masked(&masked));
        let table = "[tracing.headers]\nauthorization = \"Bearer abc\"\n";
        assert_eq!(
            mask_text(table),
            "[tracing.headers]\nauthorization = \"***\"\n"
        );
    }

    #[test]
    fn urls_lose_their_passwords_and_credential_values() {
        assert_eq!(
            mask_url(
                "postgres://ficus:s3cret@db:5432/ficus?sslmode=require&password=x",
                false
            ),
            "postgres://ficus:***@db:5432/ficus?sslmode=require&password=***"
        );
        assert_eq!(
            mask_url("mysql://root@db/test", false),
            "mysql://root@db/test"
        );
        assert_eq!(
            mask_url("https://api.example/v1?API_KEY=abc&q=1#f", false),
            "https://api.example/v1?API_KEY=***&q=1#f"
        );
        assert_eq!(
            mask_url("https://hooks.slack.com/services/T0/B0/XXXX?x=1", true),
            "https://hooks.slack.com/***"
        );
        assert_eq!(mask_url("http://127.0.0.1:9/", true), "http://127.0.0.1:9/");
        assert_eq!(mask_url("not a url", false), "not a url");
    }

    #[test]
    fn config_texts_are_masked_where_secrets_live_and_nowhere_else() {
        let text = r#"# the store: keep the password out of sight
store = "postgres://ficus:pw@db/ficus"

[upstream.legacy]
url = "http://svc:8080" # comment kept

[[verify]]
name = "orders"
source = "postgres://app:hunter2@legacy-db/app"
target = "mysql://app@new-db/app?password=opensesame"

[[webhook]]
url = "https://hooks.slack.com/services/T000/B000/XXXX"
events = ["rollout."]
"#;
        let masked = mask_text(text);
        for gone in ["pw@", "hunter2", "opensesame", "B000/XXXX"] {
            assert!(!masked.contains(gone), "{gone} in:\n{masked}");
        }
        for kept in [
            "# the store: keep the password out of sight",
            "postgres://ficus:***@db/ficus",
            "url = \"http://svc:8080\" # comment kept",
            "postgres://app:***@legacy-db/app",
            "mysql://app@new-db/app?password=***",
            "url = \"https://hooks.slack.com/***\"",
            "events = [\"rollout.\"]",
        ] {
            assert!(masked.contains(kept), "{kept} missing from:\n{masked}");
        }
        assert!(contains_masked(&masked));
        assert!(!contains_masked(text));
        assert_eq!(mask_text("a = 1\n"), "a = 1\n");
        // Not TOML: the URLs' passwords are masked all the same.
        assert_eq!(
            mask_text("broken [ \"postgres://u:pw@h/d\"\nnext\n"),
            "broken [ \"postgres://u:***@h/d\"\nnext\n"
        );
    }
}
