//! Route matching: the config's matchers compiled into a form that tests a request without
//! allocating. Pure; first match wins, the default route catches the rest.

use ficus_config::{PathMatch, RouteMatch};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

/// A compiled [`RouteMatch`].
#[derive(Debug, Clone)]
pub struct Matcher {
    host: HostMatch,
    /// Empty: any method.
    methods: Vec<Method>,
    path: CompiledPath,
    headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Debug, Clone)]
enum HostMatch {
    Any,
    Exact(String),
    /// `*.example.com` stored as `.example.com`.
    Suffix(String),
}

#[derive(Debug, Clone)]
enum CompiledPath {
    Any,
    Prefix(String),
    Exact(String),
    /// `None` is a `{param}` segment.
    Template(Vec<Option<String>>),
}

/// The parts of a request a matcher looks at.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a Method,
    /// Lower-case host without port, when known.
    pub host: Option<&'a str>,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
}

impl Matcher {
    pub fn compile(m: &RouteMatch) -> Matcher {
        let host = match &m.host {
            None => HostMatch::Any,
            Some(h) => match h.strip_prefix('*') {
                Some(suffix) => HostMatch::Suffix(suffix.to_ascii_lowercase()),
                None => HostMatch::Exact(h.to_ascii_lowercase()),
            },
        };
        let path = match &m.path {
            PathMatch::Any => CompiledPath::Any,
            PathMatch::Prefix(p) if p == "/" => CompiledPath::Any,
            PathMatch::Prefix(p) => CompiledPath::Prefix(p.trim_end_matches('/').to_string()),
            PathMatch::Exact(p) => CompiledPath::Exact(p.clone()),
            PathMatch::Template(t) => CompiledPath::Template(
                segments(t)
                    .map(|s| {
                        if s.starts_with('{') && s.ends_with('}') {
                            None
                        } else {
                            Some(s.to_string())
                        }
                    })
                    .collect(),
            ),
        };
        Matcher {
            host,
            methods: m.methods.clone(),
            path,
            headers: m.headers.clone(),
        }
    }

    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        if !self.methods.is_empty() && !self.methods.iter().any(|m| m == req.method) {
            return false;
        }
        match &self.host {
            HostMatch::Any => {}
            HostMatch::Exact(h) => {
                if req.host.is_none_or(|rh| !rh.eq_ignore_ascii_case(h)) {
                    return false;
                }
            }
            HostMatch::Suffix(s) => {
                let ok = req.host.is_some_and(|rh| {
                    rh.len() > s.len()
                        && rh.is_char_boundary(rh.len() - s.len())
                        && rh[rh.len() - s.len()..].eq_ignore_ascii_case(s)
                });
                if !ok {
                    return false;
                }
            }
        }
        if !self.path_matches(req.path) {
            return false;
        }
        self.headers
            .iter()
            .all(|(name, value)| req.headers.get_all(name).iter().any(|v| v == value))
    }

    fn path_matches(&self, path: &str) -> bool {
        match &self.path {
            CompiledPath::Any => true,
            CompiledPath::Exact(p) => path == p,
            CompiledPath::Prefix(p) => {
                path.starts_with(p.as_str())
                    && matches!(path.as_bytes().get(p.len()), None | Some(b'/'))
            }
            CompiledPath::Template(want) => {
                let mut got = segments(path);
                for seg in want {
                    match (seg, got.next()) {
                        (_, None) => return false,
                        (Some(lit), Some(g)) if lit != g => return false,
                        (None, Some("")) => return false,
                        _ => {}
                    }
                }
                got.next().is_none()
            }
        }
    }
}

/// Path segments after the leading slash; a trailing slash yields a final empty segment.
fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.strip_prefix('/').unwrap_or(path).split('/')
}

/// The host a request is for, without port: the Host header, else the URI authority.
/// Returns `None` when absent or not valid UTF-8.
pub fn request_host<'a>(uri: &'a http::Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    // The Host header first: `headers::decide_authority` made it the request's one
    // authority (from an absolute-form target or `:authority` too), normalised.
    let raw = match headers.get(http::header::HOST) {
        Some(h) => h.to_str().ok()?,
        None => uri.host()?,
    };
    Some(strip_port(raw))
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // [::1]:8080 -> [::1]
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rfind(':') {
        Some(i) if host[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &host[..i],
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(host: Option<&str>, methods: &[Method], path: PathMatch) -> Matcher {
        Matcher::compile(&RouteMatch {
            host: host.map(str::to_string),
            methods: methods.to_vec(),
            path,
            headers: vec![],
        })
    }

    fn view<'a>(
        method: &'a Method,
        host: Option<&'a str>,
        path: &'a str,
        h: &'a HeaderMap,
    ) -> RequestView<'a> {
        RequestView {
            method,
            host,
            path,
            headers: h,
        }
    }

    #[test]
    fn prefix_is_segment_aware() {
        let m = matcher(None, &[], PathMatch::Prefix("/orders".into()));
        let h = HeaderMap::new();
        for (p, want) in [
            ("/orders", true),
            ("/orders/", true),
            ("/orders/7", true),
            ("/ordersx", false),
            ("/order", false),
            ("/", false),
        ] {
            assert_eq!(m.path_matches(p), want, "{p}");
        }
        assert!(m.matches(&view(&Method::GET, None, "/orders/1", &h)));
    }

    #[test]
    fn templates_match_whole_segments() {
        let m = matcher(None, &[], PathMatch::Template("/orders/{id}/items".into()));
        for (p, want) in [
            ("/orders/7/items", true),
            ("/orders/abc-def/items", true),
            ("/orders//items", false),
            ("/orders/7/items/", false),
            ("/orders/7", false),
            ("/orders/7/items/9", false),
            ("/orders/7/itemz", false),
        ] {
            assert_eq!(m.path_matches(p), want, "{p}");
        }
    }

    #[test]
    fn exact_host_methods_and_headers() {
        let m = Matcher::compile(&RouteMatch {
            host: Some("api.example.com".into()),
            methods: vec![Method::GET, Method::HEAD],
            path: PathMatch::Exact("/health".into()),
            headers: vec![(
                HeaderName::from_static("x-tenant"),
                HeaderValue::from_static("acme"),
            )],
        });
        let mut h = HeaderMap::new();
        h.insert("x-tenant", HeaderValue::from_static("acme"));
        assert!(m.matches(&view(&Method::GET, Some("API.example.com"), "/health", &h)));
        assert!(!m.matches(&view(&Method::POST, Some("api.example.com"), "/health", &h)));
        assert!(!m.matches(&view(&Method::GET, Some("example.com"), "/health", &h)));
        assert!(!m.matches(&view(&Method::GET, None, "/health", &h)));
        assert!(!m.matches(&view(&Method::GET, Some("api.example.com"), "/health/", &h)));
        let empty = HeaderMap::new();
        assert!(!m.matches(&view(
            &Method::GET,
            Some("api.example.com"),
            "/health",
            &empty
        )));
    }

    #[test]
    fn wildcard_host_matches_subdomains_only() {
        let m = matcher(Some("*.example.com"), &[], PathMatch::Any);
        let h = HeaderMap::new();
        assert!(m.matches(&view(&Method::GET, Some("a.example.com"), "/", &h)));
        assert!(m.matches(&view(&Method::GET, Some("a.b.example.com"), "/", &h)));
        assert!(!m.matches(&view(&Method::GET, Some("example.com"), "/", &h)));
        assert!(!m.matches(&view(&Method::GET, Some("badexample.com"), "/", &h)));
    }

    #[test]
    fn host_without_port() {
        let h = HeaderMap::new();
        let uri: http::Uri = "http://Example.com:8080/x".parse().unwrap();
        assert_eq!(request_host(&uri, &h), Some("Example.com"));
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("[::1]:8080"));
        assert_eq!(request_host(&"/x".parse().unwrap(), &h), Some("[::1]"));
        h.insert("host", HeaderValue::from_static("shop.test"));
        assert_eq!(request_host(&"/x".parse().unwrap(), &h), Some("shop.test"));
    }
}
