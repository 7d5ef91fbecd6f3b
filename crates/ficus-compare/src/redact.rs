//! Redaction of secrets from headers and query strings before a sample is kept or shown,
//! or a request is logged. The default lists cover the usual credential headers and query
//! parameters; `[redact]` in the config adds names to them.

use http::HeaderMap;

/// Header names whose values are credentials or sessions.
pub const DEFAULT_SENSITIVE: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-api-token",
    "x-auth-token",
    "x-access-token",
    "x-refresh-token",
    "x-session-token",
    "x-csrf-token",
    "x-xsrf-token",
    "x-amz-security-token",
    "x-goog-api-key",
    "x-vault-token",
    "private-token",
];

/// Query parameters whose values are credentials (compared without case).
pub const DEFAULT_SENSITIVE_QUERY: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "pass",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "api-key",
    "key",
    "auth",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-security-token",
    "x-amz-credential",
    "sslpassword",
];

/// A request target (path and query) with the values of the sensitive query parameters
/// (`sensitive`, any case) replaced by [`REDACTED`]; everything else as it came. A target
/// without a query comes back unchanged.
pub fn redact_query<'a>(target: &'a str, sensitive: &[String]) -> std::borrow::Cow<'a, str> {
    let Some((path, query)) = target.split_once('?') else {
        return std::borrow::Cow::Borrowed(target);
    };
    let secret = |name: &str| {
        let name = percent_decoded_lower(name);
        sensitive.iter().any(|s| s.eq_ignore_ascii_case(&name))
    };
    if !query
        .split('&')
        .any(|p| secret(p.split('=').next().unwrap_or("")))
    {
        return std::borrow::Cow::Borrowed(target);
    }
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if secret(k) => format!("{k}={REDACTED}"),
            _ => pair.to_string(),
        })
        .collect();
    std::borrow::Cow::Owned(format!("{path}?{}", redacted.join("&")))
}

/// A query parameter name with `%XX` escapes decoded (so `api%5Fkey` is `api_key`).
fn percent_decoded_lower(name: &str) -> String {
    let b = name.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).to_ascii_lowercase()
}

/// [`DEFAULT_SENSITIVE_QUERY`] as owned names plus `extra`.
pub fn sensitive_query(extra: &[String]) -> Vec<String> {
    DEFAULT_SENSITIVE_QUERY
        .iter()
        .map(|s| (*s).to_owned())
        .chain(extra.iter().cloned())
        .collect()
}

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// The headers as (lowercase name, value) pairs in map order, with the values of `sensitive`
/// names (any case) replaced by [`REDACTED`]. Values that are not UTF-8 are shown lossily.
pub fn redact(headers: &HeaderMap, sensitive: &[String]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let name = name.as_str();
            let value = if sensitive.iter().any(|s| s.eq_ignore_ascii_case(name)) {
                REDACTED.to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.to_owned(), value)
        })
        .collect()
}

/// [`DEFAULT_SENSITIVE`] as owned names, the usual start of a sensitive list.
pub fn default_sensitive() -> Vec<String> {
    DEFAULT_SENSITIVE.iter().map(|s| (*s).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn credential_query_values_are_redacted_and_the_rest_kept() {
        let q = sensitive_query(&["session_id".into()]);
        assert_eq!(
            redact_query("/orders?api_key=abc&page=2&TOKEN=t&api%5Fkey=x&session_id=9", &q),
            "/orders?api_key=[redacted]&page=2&TOKEN=[redacted]&api%5Fkey=[redacted]&session_id=[redacted]"
        );
        assert_eq!(redact_query("/orders?page=2", &q), "/orders?page=2");
        assert!(matches!(
            redact_query("/orders?page=2", &q),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(redact_query("/orders", &q), "/orders");
        assert_eq!(
            redact_query("/x?key", &q),
            "/x?key",
            "no value, nothing to hide"
        );
        assert_eq!(redact_query("/x?sig=a=b", &q), "/x?sig=[redacted]");
    }

    #[test]
    fn redacts_sensitive_values_and_keeps_order() {
        let mut h = HeaderMap::new();
        h.insert("Content-Type", HeaderValue::from_static("application/json"));
        h.insert("Authorization", HeaderValue::from_static("Bearer secret"));
        h.append("Cookie", HeaderValue::from_static("a=1"));
        h.append("Cookie", HeaderValue::from_static("b=2"));
        h.insert("X-Custom-Token", HeaderValue::from_static("t0ken"));
        h.insert("X-Bin", HeaderValue::from_bytes(b"\xffok").unwrap());
        let mut sensitive = default_sensitive();
        sensitive.push("X-CUSTOM-TOKEN".into());
        let r = redact(&h, &sensitive);
        assert_eq!(
            r,
            vec![
                ("content-type".into(), "application/json".into()),
                ("authorization".into(), REDACTED.into()),
                ("cookie".into(), REDACTED.into()),
                ("cookie".into(), REDACTED.into()),
                ("x-custom-token".into(), REDACTED.into()),
                ("x-bin".into(), "\u{fffd}ok".into()),
            ]
        );
        let flat = format!("{r:?}");
        assert!(!flat.contains("secret") && !flat.contains("a=1") && !flat.contains("t0ken"));
    }
}
