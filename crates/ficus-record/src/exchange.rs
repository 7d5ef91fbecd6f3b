//! One recorded exchange.
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A request or a response as recorded: its head, and its body up to the recording's cap.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Message {
    /// Header fields in order, names lower-case; values as bytes (not always UTF-8).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, Body)>,
    #[serde(default)]
    pub body: Body,
    /// The body's full length when the recording kept only its first `body` bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_from: Option<u64>,
}

impl Message {
    /// The first value of header `name` (lower-case), as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| std::str::from_utf8(&v.0).ok())
    }
}

/// Bytes, serialized as a string: UTF-8 text as is, anything else as `"b64:..."`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Body(pub Vec<u8>);

impl Body {
    pub fn text(s: &str) -> Body {
        Body(s.as_bytes().to_vec())
    }
}

const B64: &str = "b64:";

impl Serialize for Body {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(t) if !t.starts_with(B64) => s.serialize_str(t),
            _ => s.serialize_str(&format!(
                "{B64}{}",
                base64::engine::general_purpose::STANDARD.encode(&self.0)
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.strip_prefix(B64) {
            Some(b) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .map(Body)
                .map_err(serde::de::Error::custom),
            None => Ok(Body(s.into_bytes())),
        }
    }
}

/// On a shadow route: modern's answer to the mirrored copy and the comparison's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shadow {
    pub status: u16,
    #[serde(default)]
    pub response: Message,
    /// `equal`, `different` or `failed` (modern did not answer).
    pub verdict: String,
    /// Field paths that differed (at most a few; the comparison aggregates keep the rest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<String>,
}

/// One exchange as the gateway served it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    /// When the request's head arrived: nanoseconds since the Unix epoch.
    pub at_ns: u64,
    /// From the head's arrival to the response's end, in nanoseconds.
    pub duration_ns: u64,
    pub route: String,
    /// The route's stage then (`legacy`, `shadow`, `canary`, `modern`, `retired`).
    pub stage: String,
    /// Which side answered: `legacy`, `modern`, or `gateway` (ficus itself: a 429, a shed).
    pub side: String,
    /// Modern failed and legacy answered.
    #[serde(default)]
    pub fallback: bool,
    /// The sticky key as a keyed token (equal keys, equal tokens; replay keeps their order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `HTTP/1.1`, `HTTP/2`.
    pub version: String,
    pub method: String,
    /// Path and query as the client sent them (redacted query parameters replaced).
    pub target: String,
    pub request: Message,
    pub status: u16,
    pub response: Message,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<Shadow>,
}
