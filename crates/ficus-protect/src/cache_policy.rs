//! What a shared cache may store and for how long (RFC 9111), as pure functions over request
//! and response headers: `Cache-Control`, `Expires`/`Date`, `Age`, `Set-Cookie`,
//! `Authorization` and `Vary`.
//!
//! The cache never revalidates with conditional requests, so anything that demands
//! revalidation before reuse (`no-cache`, `max-age=0`) is simply not stored, and anything
//! that forbids serving stale (`must-revalidate`, `proxy-revalidate`, `s-maxage`) is stored
//! without a stale-while-revalidate window.

use std::time::Duration;

use http::header::{
    HeaderMap, HeaderName, HeaderValue, AGE, AUTHORIZATION, CACHE_CONTROL, DATE, EXPIRES, PRAGMA,
    RANGE, SET_COOKIE, VARY,
};
use http::{Method, StatusCode};

/// Largest delta-seconds value honoured (RFC 9111 §1.2.2 suggests 2^31).
const MAX_DELTA_SECONDS: u64 = 1 << 31;

/// The `Cache-Control` directives a shared cache acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheControl {
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
    pub public: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    pub stale_while_revalidate: Option<u64>,
    /// The header was not visible ASCII; callers treat that like `no-store`.
    pub malformed: bool,
}

impl CacheControl {
    /// Parses every `Cache-Control` field line in `headers`.
    pub fn parse(headers: &HeaderMap) -> CacheControl {
        let mut cc = CacheControl::default();
        for value in headers.get_all(CACHE_CONTROL) {
            match value.to_str() {
                Ok(text) => cc.parse_line(text),
                Err(_) => cc.malformed = true,
            }
        }
        cc
    }

    fn parse_line(&mut self, line: &str) {
        for directive in split_list(line) {
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(unquote(a.trim()))),
                None => (directive, None),
            };
            let seconds = || arg.map(delta_seconds).unwrap_or(0);
            match name.to_ascii_lowercase().as_str() {
                "no-store" => self.no_store = true,
                // The field-name forms (`no-cache="Set-Cookie"`) restrict only some fields;
                // treating them as the whole-response form is the safe reading.
                "no-cache" => self.no_cache = true,
                "private" => self.private = true,
                "public" => self.public = true,
                "must-revalidate" => self.must_revalidate = true,
                "proxy-revalidate" => self.proxy_revalidate = true,
                // A repeated freshness directive is a conflict; RFC 9111 §4.2.1 says to
                // consider the response stale.
                "max-age" => self.max_age = Some(self.max_age.map_or_else(seconds, |_| 0)),
                "s-maxage" => self.s_maxage = Some(self.s_maxage.map_or_else(seconds, |_| 0)),
                "stale-while-revalidate" => self.stale_while_revalidate = Some(seconds()),
                _ => {}
            }
        }
    }
}

/// Splits a comma-separated list, ignoring commas inside quoted strings and empty elements.
fn split_list(line: &str) -> impl Iterator<Item = &str> {
    let mut rest = line;
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        let mut quoted = false;
        let mut escaped = false;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                ',' if !quoted => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let item = rest[..end].trim();
        rest = rest.get(end + 1..).unwrap_or("");
        if !item.is_empty() {
            return Some(item);
        }
    })
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// delta-seconds: digits only; anything else reads as 0 (stale), which never over-caches.
fn delta_seconds(s: &str) -> u64 {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    s.parse::<u64>()
        .unwrap_or(MAX_DELTA_SECONDS)
        .min(MAX_DELTA_SECONDS)
}

/// Whether a request may be answered from, and its response stored in, the cache: a GET
/// without `Range`, without `no-store`/`no-cache`/`max-age=0` (a client asking to bypass) and
/// without `Authorization` unless the route says responses do not depend on it.
pub fn request_cacheable(
    method: &Method,
    req_headers: &HeaderMap,
    allow_authorization: bool,
) -> bool {
    if method != Method::GET {
        return false;
    }
    if req_headers.contains_key(RANGE) {
        return false;
    }
    if !allow_authorization && req_headers.contains_key(AUTHORIZATION) {
        return false;
    }
    if req_headers.contains_key(CACHE_CONTROL) {
        let cc = CacheControl::parse(req_headers);
        !(cc.no_store || cc.no_cache || cc.max_age == Some(0) || cc.malformed)
    } else {
        // HTTP/1.0 clients say no-cache with Pragma (ignored when Cache-Control is present).
        !req_headers.get_all(PRAGMA).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains("no-cache"))
        })
    }
}

/// How long a stored response may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Remaining freshness when received: the lifetime minus the `Age` it arrived with.
    pub ttl: Duration,
    /// Serving stale is allowed this long after `ttl` while a refresh runs. `None` when the
    /// response did not say (the cache's default applies); `Some(ZERO)` when it forbids it.
    pub stale_while_revalidate: Option<Duration>,
    /// The `Age` the response arrived with, added to the `Age` the cache sends.
    pub initial_age: Duration,
}

/// Statuses RFC 9110 §15.1 calls heuristically cacheable, less 206 (no range support):
/// the only ones this cache stores.
pub fn cacheable_status(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Whether and how long a shared cache may store a response; `None` means do not store.
///
/// Never stored: statuses outside [`cacheable_status`], `no-store`, `no-cache`, `private`,
/// malformed `Cache-Control`, `Vary: *` (or an unparsable `Vary`), `Set-Cookie` unless
/// `allow_set_cookie`, and responses with no remaining freshness. The lifetime is
/// `s-maxage`, else `max-age`, else `Expires - Date`, else `default_ttl` (the route's
/// heuristic). An `Expires` without a `Date` is ignored (the origin's clock is unknown); an
/// invalid `Expires` means already expired.
pub fn response_ttl(
    status: StatusCode,
    resp_headers: &HeaderMap,
    default_ttl: Option<Duration>,
    allow_set_cookie: bool,
) -> Option<Freshness> {
    if !cacheable_status(status) {
        return None;
    }
    let cc = CacheControl::parse(resp_headers);
    if cc.no_store || cc.no_cache || cc.private || cc.malformed {
        return None;
    }
    if !allow_set_cookie && resp_headers.contains_key(SET_COOKIE) {
        return None;
    }
    if matches!(Vary::parse(resp_headers), Vary::Any) {
        return None;
    }
    let lifetime = match cc.s_maxage.or(cc.max_age) {
        Some(secs) => Duration::from_secs(secs),
        None => match expires_lifetime(resp_headers) {
            Some(lifetime) => lifetime,
            None => default_ttl?,
        },
    };
    let initial_age = resp_headers
        .get(AGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| Duration::from_secs(delta_seconds(v.trim())))
        .unwrap_or_default();
    let ttl = lifetime.saturating_sub(initial_age);
    // s-maxage implies proxy-revalidate for a shared cache (RFC 9111 §5.2.2.10).
    let no_stale = cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage.is_some();
    let stale_while_revalidate = if no_stale {
        Some(Duration::ZERO)
    } else {
        cc.stale_while_revalidate.map(Duration::from_secs)
    };
    // Nothing fresh and no explicit permission to serve stale: storing would be useless.
    if ttl.is_zero() && stale_while_revalidate.unwrap_or_default().is_zero() {
        return None;
    }
    Some(Freshness {
        ttl,
        stale_while_revalidate,
        initial_age,
    })
}

/// `Some(lifetime)` from `Expires` and `Date`; `Some(ZERO)` for an invalid `Expires`.
fn expires_lifetime(headers: &HeaderMap) -> Option<Duration> {
    let expires = headers.get(EXPIRES)?;
    let date = parse_http_date(headers.get(DATE)?)?;
    match parse_http_date(expires) {
        Some(expires) => Some(Duration::from_secs(expires.saturating_sub(date))),
        None => Some(Duration::ZERO),
    }
}

/// Seconds since the Unix epoch of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only
/// format RFC 9110 lets senders generate. The obsolete formats read as invalid, which for
/// `Expires` means "expired": the conservative outcome.
pub fn parse_http_date(value: &HeaderValue) -> Option<u64> {
    let s = value.to_str().ok()?.trim();
    let b = s.as_bytes();
    if b.len() != 29 || &b[3..5] != b", " || &b[25..] != b" GMT" {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u64> {
        let part = &s[range];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let day = num(5..7)?;
    let month = match &s[8..11] {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year = num(12..16)?;
    let (hour, minute, second) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if b[7] != b' ' || b[11] != b' ' || b[16] != b' ' || b[19] != b':' || b[22] != b':' {
        return None;
    }
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 || year < 1970 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A response's `Vary`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vary {
    /// No `Vary`: one stored response serves every request for the key.
    None,
    /// The request headers whose values select the stored response, lowercased and deduped.
    Names(Vec<HeaderName>),
    /// `Vary: *` or an unparsable `Vary`: never reusable.
    Any,
}

impl Vary {
    pub fn parse(resp_headers: &HeaderMap) -> Vary {
        let mut names: Vec<HeaderName> = Vec::new();
        for value in resp_headers.get_all(VARY) {
            let Ok(text) = value.to_str() else {
                return Vary::Any;
            };
            for item in split_list(text) {
                if item == "*" {
                    return Vary::Any;
                }
                match HeaderName::from_bytes(item.as_bytes()) {
                    Ok(name) if !names.contains(&name) => names.push(name),
                    Ok(_) => {}
                    Err(_) => return Vary::Any,
                }
            }
        }
        if names.is_empty() {
            Vary::None
        } else {
            Vary::Names(names)
        }
    }
}

/// The values a request had for a response's `Vary` names: the secondary cache key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VaryKey {
    fields: Vec<(HeaderName, Vec<HeaderValue>)>,
}

impl VaryKey {
    /// Records `req_headers`' values for `names` (absent headers recorded as absent).
    pub fn capture(names: &[HeaderName], req_headers: &HeaderMap) -> VaryKey {
        VaryKey {
            fields: names
                .iter()
                .map(|name| {
                    (
                        name.clone(),
                        req_headers.get_all(name).iter().cloned().collect(),
                    )
                })
                .collect(),
        }
    }

    /// Whether a new request selects the same stored response: the same values, in order,
    /// for every recorded name (an absent header only matches an absent header).
    pub fn matches(&self, req_headers: &HeaderMap) -> bool {
        self.fields
            .iter()
            .all(|(name, values)| req_headers.get_all(name).iter().eq(values.iter()))
    }

    /// The recorded names.
    pub fn names(&self) -> impl Iterator<Item = &HeaderName> {
        self.fields.iter().map(|(name, _)| name)
    }

    pub(crate) fn weight(&self) -> usize {
        self.fields
            .iter()
            .map(|(n, vs)| n.as_str().len() + vs.iter().map(|v| v.len() + 16).sum::<usize>() + 32)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    /// (name, response headers, default ttl, expected freshness)
    type ResponseCase<'a> = (
        &'a str,
        Vec<(&'a str, &'a str)>,
        Option<Duration>,
        Option<Freshness>,
    );
    /// (name, method, request headers, allow Authorization, expected)
    type RequestCase<'a> = (&'a str, &'a Method, Vec<(&'a str, &'a str)>, bool, bool);

    const DATE_0: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const DATE_60: &str = "Sun, 06 Nov 1994 08:50:37 GMT";

    #[test]
    fn response_directive_table() {
        let s = Duration::from_secs;
        let fresh = |ttl: u64, swr: Option<u64>| {
            Some(Freshness {
                ttl: s(ttl),
                stale_while_revalidate: swr.map(s),
                initial_age: Duration::ZERO,
            })
        };
        let ok = StatusCode::OK;
        #[rustfmt::skip]
        let table: Vec<ResponseCase<'_>> = vec![
            ("max-age", vec![("cache-control", "max-age=60")], None, fresh(60, None)),
            ("public max-age", vec![("cache-control", "public, max-age=60")], None, fresh(60, None)),
            ("case and spaces", vec![("cache-control", " Max-Age = 60 ")], None, fresh(60, None)),
            ("s-maxage wins, no stale", vec![("cache-control", "max-age=60, s-maxage=120, stale-while-revalidate=30")], None, fresh(120, Some(0))),
            ("swr", vec![("cache-control", "max-age=60, stale-while-revalidate=30")], None, fresh(60, Some(30))),
            ("must-revalidate", vec![("cache-control", "max-age=60, must-revalidate, stale-while-revalidate=30")], None, fresh(60, Some(0))),
            ("proxy-revalidate", vec![("cache-control", "max-age=60, proxy-revalidate")], None, fresh(60, Some(0))),
            ("no-store", vec![("cache-control", "max-age=60, no-store")], Some(s(5)), None),
            ("no-cache", vec![("cache-control", "no-cache, max-age=60")], None, None),
            ("no-cache with fields", vec![("cache-control", "no-cache=\"set-cookie, x\", max-age=60")], None, None),
            ("private", vec![("cache-control", "private, max-age=60")], None, None),
            ("private with fields", vec![("cache-control", "private=\"x\", max-age=60")], None, None),
            ("split lines", vec![("cache-control", "max-age=60"), ("cache-control", "no-store")], None, None),
            ("max-age=0", vec![("cache-control", "max-age=0")], Some(s(5)), None),
            ("max-age=0 with swr", vec![("cache-control", "max-age=0, stale-while-revalidate=10")], None, fresh(0, Some(10))),
            ("bad max-age is stale", vec![("cache-control", "max-age=abc")], Some(s(5)), None),
            ("duplicate max-age is stale", vec![("cache-control", "max-age=60, max-age=30")], None, None),
            ("quoted max-age", vec![("cache-control", "max-age=\"60\"")], None, fresh(60, None)),
            ("huge max-age clamps", vec![("cache-control", "max-age=99999999999999999999999")], None, fresh(1 << 31, None)),
            ("unknown directives", vec![("cache-control", "immutable, foo=\"a,b\", max-age=7")], None, fresh(7, None)),
            ("default ttl", vec![], Some(s(5)), fresh(5, None)),
            ("no freshness at all", vec![], None, None),
            ("expires - date", vec![("date", DATE_0), ("expires", DATE_60)], None, fresh(60, None)),
            ("expires in the past", vec![("date", DATE_60), ("expires", DATE_0)], Some(s(5)), None),
            ("invalid expires", vec![("date", DATE_0), ("expires", "0")], Some(s(5)), None),
            ("expires without date", vec![("expires", DATE_60)], Some(s(5)), fresh(5, None)),
            ("max-age beats expires", vec![("date", DATE_0), ("expires", DATE_60), ("cache-control", "max-age=10")], None, fresh(10, None)),
            ("set-cookie", vec![("cache-control", "max-age=60"), ("set-cookie", "a=b")], None, None),
            ("vary *", vec![("cache-control", "max-age=60"), ("vary", "accept, *")], None, None),
            ("vary names", vec![("cache-control", "max-age=60"), ("vary", "Accept-Encoding")], None, fresh(60, None)),
        ];
        for (name, pairs, default_ttl, expected) in table {
            assert_eq!(
                response_ttl(ok, &headers(&pairs), default_ttl, false),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn age_reduces_ttl() {
        let h = headers(&[("cache-control", "max-age=60"), ("age", "25")]);
        let f = response_ttl(StatusCode::OK, &h, None, false).unwrap();
        assert_eq!(f.ttl, Duration::from_secs(35));
        assert_eq!(f.initial_age, Duration::from_secs(25));
        let old = headers(&[("cache-control", "max-age=60"), ("age", "90")]);
        assert_eq!(response_ttl(StatusCode::OK, &old, None, false), None);
    }

    #[test]
    fn set_cookie_allowed_by_route() {
        let h = headers(&[("cache-control", "max-age=60"), ("set-cookie", "a=b")]);
        assert!(response_ttl(StatusCode::OK, &h, None, true).is_some());
    }

    #[test]
    fn status_rule() {
        let h = headers(&[("cache-control", "max-age=60")]);
        for code in [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501] {
            let status = StatusCode::from_u16(code).unwrap();
            assert!(response_ttl(status, &h, None, false).is_some(), "{code}");
            assert!(
                response_ttl(
                    status,
                    &HeaderMap::new(),
                    Some(Duration::from_secs(1)),
                    false
                )
                .is_some(),
                "{code} with default ttl"
            );
        }
        for code in [
            201, 202, 206, 302, 303, 304, 307, 400, 401, 403, 429, 500, 502, 503, 504,
        ] {
            let status = StatusCode::from_u16(code).unwrap();
            assert!(response_ttl(status, &h, None, false).is_none(), "{code}");
        }
    }

    #[test]
    fn request_rules() {
        let get = Method::GET;
        #[rustfmt::skip]
        let table: Vec<RequestCase<'_>> = vec![
            ("plain get", &get, vec![], false, true),
            ("head", &Method::HEAD, vec![], false, false),
            ("post", &Method::POST, vec![], false, false),
            ("authorization", &get, vec![("authorization", "Bearer x")], false, false),
            ("authorization allowed", &get, vec![("authorization", "Bearer x")], true, true),
            ("range", &get, vec![("range", "bytes=0-10")], false, false),
            ("no-store", &get, vec![("cache-control", "no-store")], false, false),
            ("no-cache", &get, vec![("cache-control", "no-cache")], false, false),
            ("max-age=0 reload", &get, vec![("cache-control", "max-age=0")], false, false),
            ("max-age=60", &get, vec![("cache-control", "max-age=60")], false, true),
            ("pragma", &get, vec![("pragma", "no-cache")], false, false),
            ("pragma ignored with cache-control", &get, vec![("pragma", "no-cache"), ("cache-control", "max-age=5")], false, true),
        ];
        for (name, method, pairs, allow_auth, expected) in table {
            assert_eq!(
                request_cacheable(method, &headers(&pairs), allow_auth),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn vary_match_mismatch_and_star() {
        let resp = headers(&[
            ("vary", "Accept-Encoding, accept-language"),
            ("vary", "accept-encoding"),
        ]);
        let Vary::Names(names) = Vary::parse(&resp) else {
            panic!("names expected")
        };
        assert_eq!(
            names,
            vec![http::header::ACCEPT_ENCODING, http::header::ACCEPT_LANGUAGE]
        );
        let req = headers(&[("accept-encoding", "gzip"), ("user-agent", "x")]);
        let key = VaryKey::capture(&names, &req);
        assert!(key.matches(&req));
        assert!(key.matches(&headers(&[
            ("accept-encoding", "gzip"),
            ("user-agent", "y")
        ])));
        assert!(!key.matches(&headers(&[("accept-encoding", "br")])));
        // Absent only matches absent.
        assert!(!key.matches(&headers(&[
            ("accept-encoding", "gzip"),
            ("accept-language", "de")
        ])));
        assert!(!key.matches(&HeaderMap::new()));
        // Multiple values must match in order.
        let multi = headers(&[("accept-encoding", "gzip"), ("accept-encoding", "br")]);
        let key = VaryKey::capture(&names, &multi);
        assert!(key.matches(&multi));
        assert!(!key.matches(&headers(&[
            ("accept-encoding", "br"),
            ("accept-encoding", "gzip")
        ])));

        assert_eq!(Vary::parse(&headers(&[("vary", "*")])), Vary::Any);
        assert_eq!(Vary::parse(&headers(&[("vary", "a b")])), Vary::Any);
        assert_eq!(Vary::parse(&HeaderMap::new()), Vary::None);
        assert_eq!(Vary::parse(&headers(&[("vary", " , ")])), Vary::None);
    }

    #[test]
    fn http_dates() {
        let d = |s: &str| parse_http_date(&HeaderValue::from_str(s).unwrap());
        assert_eq!(d(DATE_0), Some(784_111_777));
        assert_eq!(d("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(d("Tue, 29 Feb 2000 12:00:00 GMT"), Some(951_825_600));
        assert_eq!(d("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(d("Sun Nov  6 08:49:37 1994"), None);
        assert_eq!(d("Sun, 06 Foo 1994 08:49:37 GMT"), None);
        assert_eq!(d("Sun, 06 Nov 1994 25:49:37 GMT"), None);
        assert_eq!(d("0"), None);
    }
}
