//! Errors the gateway itself answers with: `application/problem+json` (RFC 9457) bodies that
//! name the route and say what to fix.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use crate::body::ResponseBody;

/// One error response produced by ficus (not by an upstream).
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    /// Stable kind, the last part of the `type` URI (`urn:ficus:problem:KIND`).
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub route: Option<String>,
    pub upstream: Option<String>,
    /// What the client or operator can do about it.
    pub fix: String,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &'static str, title: &'static str) -> Problem {
        Problem {
            status,
            kind,
            title,
            detail: String::new(),
            route: None,
            upstream: None,
            fix: String::new(),
        }
    }

    pub fn detail(mut self, d: impl Into<String>) -> Problem {
        self.detail = d.into();
        self
    }

    pub fn route(mut self, r: &str) -> Problem {
        self.route = Some(r.to_string());
        self
    }

    pub fn upstream(mut self, u: &str) -> Problem {
        self.upstream = Some(u.to_string());
        self
    }

    pub fn fix(mut self, f: impl Into<String>) -> Problem {
        self.fix = f.into();
        self
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "type": format!("urn:ficus:problem:{}", self.kind),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some(r) = &self.route {
            v["route"] = r.as_str().into();
        }
        if let Some(u) = &self.upstream {
            v["upstream"] = u.as_str().into();
        }
        if !self.fix.is_empty() {
            v["fix"] = self.fix.as_str().into();
        }
        v
    }

    pub fn into_response(self) -> Response<ResponseBody> {
        let body = Bytes::from(self.to_json().to_string());
        let mut resp = Response::new(ResponseBody::full(body));
        *resp.status_mut() = self.status;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}
