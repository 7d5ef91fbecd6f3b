//! Redaction when writing, failing closed.
//!
//! Always, whatever the policy:
//! - `Authorization` and `Proxy-Authorization` keep their scheme: `Bearer hmac:...`;
//! - `Cookie` keeps each cookie's name, `Set-Cookie` its name and attributes:
//!   `session=hmac:...; Path=/; HttpOnly`.
//!
//! By the policy: the values of the named headers (request and response), query parameters
//! (in the target) and JSON paths (in request and response bodies, and modern's on shadow
//! routes) become tokens. A JSON path is dotted, `*` standing for any key or array element
//! (`card.number`, `items.*.price`); JSON rules apply to bodies whose `Content-Type` says
//! JSON (`application/json`, `*+json`) and to any body that starts with `{` or `[`.
//!
//! A token is `hmac:` and the first 128 bits of HMAC-SHA256(key, value), base64url: equal
//! values give equal tokens (so sticky keys and diffs still line up) and the key never
//! leaves the machine. A body a JSON rule must reach but cannot (cut at the body cap, or not
//! JSON although it says so) fails the whole exchange ([`RedactError`]): the caller drops it
//! and counts it, and nothing is written raw.
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::exchange::{Body, Exchange, Message};

/// The shortest key accepted.
pub const MIN_KEY_BYTES: usize = 16;

/// What to replace besides the built-in rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Header names (any case).
    #[serde(default)]
    pub headers: Vec<String>,
    /// Query parameter names (exact).
    #[serde(default)]
    pub query: Vec<String>,
    /// Dotted JSON paths, `*` for any key or element.
    #[serde(default)]
    pub json: Vec<String>,
}

/// Version of the built-in rules, part of the policy hash.
const BUILT_IN: &str = "ficus-redact-1: authorization scheme, cookie names";

impl Policy {
    /// SHA-256 (hex) of the rules (not the key), the built-in ones included; a recording's
    /// header carries it.
    pub fn hash(&self) -> String {
        let mut headers: Vec<String> = self
            .headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        headers.sort();
        headers.dedup();
        let mut query = self.query.clone();
        query.sort();
        query.dedup();
        let mut json = self.json.clone();
        json.sort();
        json.dedup();
        let canon = serde_json::json!({
            "built_in": BUILT_IN,
            "headers": headers,
            "query": query,
            "json": json,
        });
        hex::encode(Sha256::digest(canon.to_string().as_bytes()))
    }
}

/// Why an exchange cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedactError {
    #[error(
        "the {0} body was cut at the recording's body cap, so its JSON paths cannot be redacted"
    )]
    Truncated(&'static str),
    #[error(
        "the {0} body says it is JSON but does not parse, so its JSON paths cannot be redacted"
    )]
    NotJson(&'static str),
    #[error("the redaction key is {0} bytes; use at least {MIN_KEY_BYTES} random bytes")]
    ShortKey(usize),
    #[error("bad JSON path {0:?}: use dotted names, * for any key or element (card.number, items.*.price)")]
    BadPath(String),
}

/// A policy with its key, ready to apply.
#[derive(Clone)]
pub struct Redactor {
    headers: Vec<String>,
    query: Vec<String>,
    json: Vec<Vec<String>>,
    mac: Hmac<Sha256>,
    hash: String,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("policy", &self.hash)
            .finish_non_exhaustive()
    }
}

impl Redactor {
    pub fn new(policy: &Policy, key: &[u8]) -> Result<Redactor, RedactError> {
        if key.len() < MIN_KEY_BYTES {
            return Err(RedactError::ShortKey(key.len()));
        }
        let mut json = Vec::new();
        for p in &policy.json {
            let parts: Vec<String> = p.split('.').map(str::to_string).collect();
            if p.is_empty() || parts.iter().any(String::is_empty) {
                return Err(RedactError::BadPath(p.clone()));
            }
            json.push(parts);
        }
        Ok(Redactor {
            headers: policy
                .headers
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            query: policy.query.clone(),
            json,
            mac: Hmac::<Sha256>::new_from_slice(key)
                .map_err(|_| RedactError::ShortKey(key.len()))?,
            hash: policy.hash(),
        })
    }

    /// The policy's hash ([`Policy::hash`]).
    pub fn policy_hash(&self) -> &str {
        &self.hash
    }

    /// The token of a value.
    pub fn token(&self, value: &[u8]) -> String {
        let mut m = self.mac.clone();
        m.update(value);
        let out = m.finalize().into_bytes();
        format!(
            "hmac:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&out[..16])
        )
    }

    /// Redacts an exchange in place; on an error the exchange must not be written.
    pub fn redact(&self, ex: &mut Exchange) -> Result<(), RedactError> {
        ex.target = self.target(&ex.target);
        self.message(&mut ex.request, "request")?;
        self.message(&mut ex.response, "response")?;
        if let Some(s) = &mut ex.shadow {
            self.message(&mut s.response, "modern response")?;
        }
        Ok(())
    }

    fn message(&self, m: &mut Message, which: &'static str) -> Result<(), RedactError> {
        for (name, value) in &mut m.headers {
            match name.as_str() {
                "authorization" | "proxy-authorization" => *value = self.credentials(&value.0),
                "cookie" => *value = self.cookies(&value.0),
                "set-cookie" => *value = self.set_cookie(&value.0),
                n if self.headers.iter().any(|h| h == n) => {
                    *value = Body(self.token(&value.0).into_bytes())
                }
                _ => {}
            }
        }
        if self.json.is_empty() || m.body.0.is_empty() || !(is_json(m) || looks_like_json(m)) {
            return Ok(());
        }
        if m.truncated_from.is_some() {
            return Err(RedactError::Truncated(which));
        }
        let mut v: serde_json::Value =
            serde_json::from_slice(&m.body.0).map_err(|_| RedactError::NotJson(which))?;
        let mut changed = false;
        for path in &self.json {
            changed |= self.json_path(&mut v, path);
        }
        if changed {
            m.body = Body(serde_json::to_vec(&v).map_err(|_| RedactError::NotJson(which))?);
        }
        Ok(())
    }

    /// `Scheme credentials` → `Scheme token`; a value without a scheme becomes a token.
    fn credentials(&self, v: &[u8]) -> Body {
        let text = String::from_utf8_lossy(v);
        let t = text.trim();
        Body(
            match t.split_once(' ') {
                Some((scheme, cred)) if !scheme.is_empty() => {
                    format!("{scheme} {}", self.token(cred.trim().as_bytes()))
                }
                _ => self.token(t.as_bytes()),
            }
            .into_bytes(),
        )
    }

    /// `a=1; b=2` → `a=tok; b=tok`.
    fn cookies(&self, v: &[u8]) -> Body {
        let text = String::from_utf8_lossy(v);
        let out: Vec<String> = text
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) => format!("{name}={}", self.token(value.as_bytes())),
                None => self.token(pair.as_bytes()),
            })
            .collect();
        Body(out.join("; ").into_bytes())
    }

    /// `name=value; Path=/; HttpOnly` → `name=tok; Path=/; HttpOnly`.
    fn set_cookie(&self, v: &[u8]) -> Body {
        let text = String::from_utf8_lossy(v);
        let (first, attrs) = match text.split_once(';') {
            Some((f, a)) => (f, Some(a)),
            None => (text.as_ref(), None),
        };
        let first = match first.split_once('=') {
            Some((name, value)) => {
                format!("{}={}", name.trim(), self.token(value.trim().as_bytes()))
            }
            None => self.token(first.trim().as_bytes()),
        };
        Body(
            match attrs {
                Some(a) => format!("{first};{a}"),
                None => first,
            }
            .into_bytes(),
        )
    }

    /// The named query parameters' values become tokens; the rest of the target is kept
    /// byte for byte.
    fn target(&self, target: &str) -> String {
        if self.query.is_empty() {
            return target.to_string();
        }
        let Some((path, query)) = target.split_once('?') else {
            return target.to_string();
        };
        let parts: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) if self.query.iter().any(|q| q == name) => {
                    format!("{name}={}", self.token(value.as_bytes()))
                }
                _ => pair.to_string(),
            })
            .collect();
        format!("{path}?{}", parts.join("&"))
    }

    /// Replaces what `path` reaches with tokens (of its JSON text); whether anything was.
    fn json_path(&self, v: &mut serde_json::Value, path: &[String]) -> bool {
        let Some((head, rest)) = path.split_first() else {
            let text = v.to_string();
            *v = serde_json::Value::String(self.token(text.as_bytes()));
            return true;
        };
        let mut changed = false;
        match v {
            serde_json::Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    if head == "*" || k == head {
                        changed |= self.json_path(child, rest);
                    }
                }
            }
            serde_json::Value::Array(items) => {
                for (i, child) in items.iter_mut().enumerate() {
                    if head == "*" || head.parse::<usize>() == Ok(i) {
                        changed |= self.json_path(child, rest);
                    }
                }
            }
            _ => {}
        }
        changed
    }
}

/// A body that starts like a JSON object or array, whatever its `Content-Type` says (or
/// without one): JSON rules apply to it too, failing closed if it does not parse.
fn looks_like_json(m: &Message) -> bool {
    matches!(
        m.body.0.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{') | Some(b'[')
    )
}

fn is_json(m: &Message) -> bool {
    m.header("content-type").is_some_and(|ct| {
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        mime == "application/json" || mime.ends_with("+json")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::Shadow;

    fn ex() -> Exchange {
        Exchange {
            at_ns: 1,
            duration_ns: 1,
            route: "pay".into(),
            stage: "shadow".into(),
            side: "legacy".into(),
            fallback: false,
            key: None,
            version: "HTTP/1.1".into(),
            method: "POST".into(),
            target: "/pay?card=4111111111111111&amount=12&token=s3cr3t-q".into(),
            request: Message {
                headers: vec![
                    ("authorization".into(), Body::text("Bearer s3cr3t-bearer")),
                    (
                        "cookie".into(),
                        Body::text("session=s3cr3t-session; theme=dark"),
                    ),
                    ("x-api-key".into(), Body::text("s3cr3t-api-key")),
                    (
                        "content-type".into(),
                        Body::text("application/json; charset=utf-8"),
                    ),
                ],
                body: Body::text(
                    r#"{"card":{"number":"4111111111111111","cvc":"123"},"items":[{"sku":"a","ssn":"s3cr3t-ssn-1"},{"sku":"b","ssn":"s3cr3t-ssn-2"}]}"#,
                ),
                truncated_from: None,
            },
            status: 200,
            response: Message {
                headers: vec![
                    (
                        "set-cookie".into(),
                        Body::text("session=s3cr3t-new; Path=/; HttpOnly"),
                    ),
                    (
                        "content-type".into(),
                        Body::text("application/vnd.api+json"),
                    ),
                ],
                body: Body::text(r#"{"card":{"number":"4111111111111111"},"ok":true}"#),
                truncated_from: None,
            },
            shadow: Some(Shadow {
                status: 200,
                response: Message {
                    headers: vec![("content-type".into(), Body::text("application/json"))],
                    body: Body::text(r#"{"card":{"number":"4111111111111111"}}"#),
                    truncated_from: None,
                },
                verdict: "equal".into(),
                differences: vec![],
            }),
        }
    }

    fn policy() -> Policy {
        Policy {
            headers: vec!["X-Api-Key".into()],
            query: vec!["card".into(), "token".into()],
            json: vec![
                "card.number".into(),
                "card.cvc".into(),
                "items.*.ssn".into(),
            ],
        }
    }

    const KEY: &[u8] = b"0123456789abcdef-redaction-key";

    #[test]
    fn no_secret_survives_and_structure_does() {
        let r = Redactor::new(&policy(), KEY).unwrap();
        let mut e = ex();
        r.redact(&mut e).unwrap();
        let text = serde_json::to_string(&e).unwrap();
        for secret in ["s3cr3t", "4111111111111111", "\"123\""] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(e
            .request
            .header("authorization")
            .unwrap()
            .starts_with("Bearer hmac:"));
        let cookie = e.request.header("cookie").unwrap();
        assert!(
            cookie.starts_with("session=hmac:") && cookie.contains("; theme=hmac:"),
            "{cookie}"
        );
        assert!(e
            .response
            .header("set-cookie")
            .unwrap()
            .ends_with("; Path=/; HttpOnly"));
        assert!(
            e.target.starts_with("/pay?card=hmac:") && e.target.contains("&amount=12&token=hmac:")
        );
        let body: serde_json::Value = serde_json::from_slice(&e.request.body.0).unwrap();
        assert_eq!(body["items"][0]["sku"], "a");
        // Equal values, equal tokens: the card number is the same token in all three bodies.
        let resp: serde_json::Value = serde_json::from_slice(&e.response.body.0).unwrap();
        let shadow: serde_json::Value =
            serde_json::from_slice(&e.shadow.as_ref().unwrap().response.body.0).unwrap();
        assert_eq!(body["card"]["number"], resp["card"]["number"]);
        assert_eq!(resp["card"]["number"], shadow["card"]["number"]);
        assert_ne!(body["items"][0]["ssn"], body["items"][1]["ssn"]);
        assert_eq!(resp["ok"], true);
        // Another key, other tokens.
        let other = Redactor::new(&policy(), b"another-key-of-16-bytes").unwrap();
        assert_ne!(other.token(b"x"), r.token(b"x"));
    }

    #[test]
    fn a_body_a_json_rule_cannot_reach_fails_the_exchange() {
        let r = Redactor::new(&policy(), KEY).unwrap();
        let mut e = ex();
        e.request.truncated_from = Some(1 << 20);
        assert_eq!(r.redact(&mut e), Err(RedactError::Truncated("request")));
        let mut e = ex();
        e.response.body = Body::text("{\"card\": oops");
        assert_eq!(r.redact(&mut e), Err(RedactError::NotJson("response")));
        // Without a JSON content type a body that starts like JSON is held to the rules too.
        let mut e = ex();
        e.request.headers.retain(|(n, _)| n != "content-type");
        e.request.truncated_from = Some(1 << 20);
        assert_eq!(r.redact(&mut e), Err(RedactError::Truncated("request")));
        let mut e = ex();
        e.request.headers.retain(|(n, _)| n != "content-type");
        r.redact(&mut e).unwrap();
        assert!(!String::from_utf8_lossy(&e.request.body.0).contains("4111"));
        // Neither JSON by type nor by look: JSON rules do not apply; a cut is fine.
        let mut e = ex();
        e.request.headers.retain(|(n, _)| n != "content-type");
        e.request.body = Body::text("card=4111111111111111");
        e.request.truncated_from = Some(1 << 20);
        r.redact(&mut e).unwrap();
        // Without JSON rules, nothing to reach.
        let no_json = Redactor::new(&Policy::default(), KEY).unwrap();
        let mut e = ex();
        e.request.truncated_from = Some(1 << 20);
        no_json.redact(&mut e).unwrap();
    }

    #[test]
    fn the_policy_hash_is_stable_and_keys_are_checked() {
        let mut p = policy();
        let h = p.hash();
        p.headers = vec!["x-api-key".into(), "X-API-KEY".into()];
        assert_eq!(p.hash(), h, "case and duplicates do not matter");
        p.json.push("other".into());
        assert_ne!(p.hash(), h);
        assert!(matches!(
            Redactor::new(&p, b"short"),
            Err(RedactError::ShortKey(5))
        ));
        p.json.push("a..b".into());
        assert!(matches!(
            Redactor::new(&p, KEY),
            Err(RedactError::BadPath(_))
        ));
    }
}
