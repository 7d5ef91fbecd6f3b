//! Redaction of secrets from headers before a sample is kept or shown.

use http::HeaderMap;

/// Header names whose values are credentials or sessions.
pub const DEFAULT_SENSITIVE: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
];

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
