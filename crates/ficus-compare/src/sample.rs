//! Samples: one mirrored request with both answers, kept as evidence for a differing field,
//! with secrets redacted and bodies bounded.

use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::redact::redact;

/// Request and both responses of one comparison.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleData {
    pub request: RequestSample,
    pub legacy: ResponseSample,
    pub modern: ResponseSample,
}

/// The mirrored request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestSample {
    pub method: String,
    pub uri: String,
    /// Redacted, lowercase names, in order.
    pub headers: Vec<(String, String)>,
    /// The body as text; bytes that are not UTF-8 show as U+FFFD.
    pub body: String,
    /// The body was cut to the sample limit.
    pub truncated: bool,
}

/// One side's response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseSample {
    pub status: u16,
    /// Redacted, lowercase names, in order.
    pub headers: Vec<(String, String)>,
    /// The body as text; bytes that are not UTF-8 show as U+FFFD.
    pub body: String,
    /// The body was cut to the sample limit.
    pub truncated: bool,
}

impl RequestSample {
    /// Captures a request: headers (`sensitive`) and query values (`sensitive_query`)
    /// redacted, body cut to `max_body` bytes.
    pub fn capture(
        method: &str,
        uri: &str,
        headers: &HeaderMap,
        body: &[u8],
        sensitive: &[String],
        sensitive_query: &[String],
        max_body: usize,
    ) -> RequestSample {
        let (body, truncated) = body_text(body, max_body);
        RequestSample {
            method: method.to_owned(),
            uri: crate::redact::redact_query(uri, sensitive_query).into_owned(),
            headers: redact(headers, sensitive),
            body,
            truncated,
        }
    }
}

impl ResponseSample {
    /// Captures a response: headers redacted, body cut to `max_body` bytes.
    pub fn capture(
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        sensitive: &[String],
        max_body: usize,
    ) -> ResponseSample {
        let (body, truncated) = body_text(body, max_body);
        ResponseSample {
            status,
            headers: redact(headers, sensitive),
            body,
            truncated,
        }
    }
}

impl SampleData {
    /// Cuts every body to at most `max_body` bytes (at a character boundary), setting the
    /// `truncated` flags; the aggregator applies this whatever the caller built.
    pub fn clip(&mut self, max_body: usize) {
        clip(
            &mut self.request.body,
            &mut self.request.truncated,
            max_body,
        );
        clip(&mut self.legacy.body, &mut self.legacy.truncated, max_body);
        clip(&mut self.modern.body, &mut self.modern.truncated, max_body);
    }

    /// Bytes held by the bodies, for memory accounting.
    pub fn body_bytes(&self) -> usize {
        self.request.body.len() + self.legacy.body.len() + self.modern.body.len()
    }
}

fn clip(body: &mut String, truncated: &mut bool, max: usize) {
    if body.len() > max {
        let mut cut = max;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
        *truncated = true;
    }
}

/// A body as text of at most `max` bytes, and whether it was cut. Bytes that are not UTF-8
/// show as U+FFFD (lossy, but a sample is for reading); a character cut by the limit is
/// dropped rather than shown as one.
pub fn body_text(body: &[u8], max: usize) -> (String, bool) {
    let truncated = body.len() > max;
    let kept = &body[..body.len().min(max)];
    match std::str::from_utf8(kept) {
        Ok(s) => (s.to_owned(), truncated),
        // Only the end was cut mid-character.
        Err(e) if truncated && e.error_len().is_none() => (
            String::from_utf8_lossy(&kept[..e.valid_up_to()]).into_owned(),
            true,
        ),
        Err(_) => {
            // U+FFFD takes three bytes where the bad byte took one: cut again.
            let mut s = String::from_utf8_lossy(kept).into_owned();
            clip(&mut s, &mut false, max);
            (s, truncated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn bodies_are_bounded_and_flagged() {
        assert_eq!(body_text(b"hello", 10), ("hello".into(), false));
        assert_eq!(body_text(b"hello", 3), ("hel".into(), true));
        // "é" is two bytes; cutting after its first byte drops it
        assert_eq!(body_text("aé".as_bytes(), 2), ("a".into(), true));
        let (s, truncated) = body_text(b"\xff\xfeab", 100);
        assert!(!truncated);
        assert_eq!(s, "\u{fffd}\u{fffd}ab");
        let (s, truncated) = body_text(&[0xff; 100], 10);
        assert!(truncated && s.len() <= 10 && s.starts_with('\u{fffd}'));
    }

    #[test]
    fn capture_redacts_and_clip_bounds() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer x"));
        h.insert("x-auth-token", HeaderValue::from_static("t0k3n"));
        let r = RequestSample::capture(
            "GET",
            "/a?b=1&api_key=s3cret",
            &h,
            b"{}",
            &crate::default_sensitive(),
            &crate::sensitive_query(&[]),
            100,
        );
        assert_eq!(
            r.headers,
            vec![
                ("authorization".into(), "[redacted]".into()),
                ("x-auth-token".into(), "[redacted]".into())
            ]
        );
        assert_eq!(r.uri, "/a?b=1&api_key=[redacted]");
        let mut d = SampleData {
            request: r,
            legacy: ResponseSample::capture(200, &h, "ééé".as_bytes(), &[], 100),
            modern: ResponseSample::default(),
        };
        assert_eq!(d.legacy.headers[0].1, "Bearer x");
        d.clip(3);
        assert_eq!(d.legacy.body, "é");
        assert!(d.legacy.truncated && !d.modern.truncated && !d.request.truncated);
        assert_eq!(d.body_bytes(), 2 + 2);
    }
}
