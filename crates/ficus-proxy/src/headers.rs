//! Header rewriting between client and upstream: hop-by-hop removal (RFC 9110 section 7.6.1)
//! and the `X-Forwarded-*` / `X-Request-Id` headers both sides receive.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Debug header naming who answered (`legacy`, `modern`, `legacy-fallback`), when enabled.
pub static X_FICUS_UPSTREAM: HeaderName = HeaderName::from_static("x-ficus-upstream");
/// The route that took the request, alongside the debug header.
pub static X_FICUS_ROUTE: HeaderName = HeaderName::from_static("x-ficus-route");
/// With `debug_header`: `hit`, `stale`, `coalesced` or `miss` on a cached route's answers.
pub static X_FICUS_CACHE: HeaderName = HeaderName::from_static("x-ficus-cache");

/// Headers that describe one connection and are never forwarded (besides those that
/// `Connection` names), with `Upgrade` last; [`HOP_BY_HOP_NAMES`] in the same order.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
/// The same names, ready for removal without parsing a string each time.
static HOP_BY_HOP_NAMES: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];
const CONNECTION_BIT: u16 = 1;
const UPGRADE_BIT: u16 = 1 << 8;

/// The position of a header name in [`HOP_BY_HOP`]. Names are lower-case; comparing lengths
/// first keeps this to a couple of instructions for the ordinary headers.
fn hop_index(name: &HeaderName) -> Option<usize> {
    let s = name.as_str();
    hop_candidates(s.len())
        .iter()
        .copied()
        .find(|&i| HOP_BY_HOP[i] == s)
}

/// [`hop_index`] for a name as it came off the wire, in any letter case.
pub(crate) fn hop_index_wire(name: &[u8]) -> Option<usize> {
    hop_candidates(name.len())
        .iter()
        .copied()
        .find(|&i| HOP_BY_HOP[i].as_bytes().eq_ignore_ascii_case(name))
}

/// Which entries of [`HOP_BY_HOP`] have a name of this length.
fn hop_candidates(len: usize) -> &'static [usize] {
    match len {
        2 => &[5],
        7 => &[6, 8],
        10 => &[0, 1],
        16 => &[2],
        17 => &[7],
        18 => &[3],
        19 => &[4],
        _ => &[],
    }
}

/// [`hop_index_wire`]'s answer for `Connection`.
pub(crate) const HOP_CONNECTION: usize = 0;
/// [`hop_index_wire`]'s answer for `Transfer-Encoding`.
pub(crate) const HOP_TRANSFER_ENCODING: usize = 7;

/// Whether a header is hop-by-hop by definition (not counting those `Connection` names).
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    hop_index(name).is_some()
}

/// Removes hop-by-hop headers in place. With `keep_upgrade`, `Connection: upgrade` and
/// `Upgrade` survive so a protocol switch (WebSocket) can pass through.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let present = headers
        .keys()
        .filter_map(hop_index)
        .fold(0, |m, i| m | 1 << i);
    strip_present(headers, present, keep_upgrade);
}

/// Removes the hop-by-hop headers whose bits are set in `present` (from one scan over the
/// names), so the usual message (at most `Connection: keep-alive`) costs one removal instead
/// of a hash lookup per hop-by-hop name.
fn strip_present(headers: &mut HeaderMap, mut present: u16, keep_upgrade: bool) {
    if present & CONNECTION_BIT != 0 {
        // Names listed in Connection are hop-by-hop too. Collected first: the map is borrowed.
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter(|v| !is_plain_keep_alive_or_close(v))
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            .filter(|n| !(keep_upgrade && n == header::UPGRADE))
            // The authority the request was routed by is forwarded whatever the client's
            // Connection lists.
            .filter(|n| n != header::HOST)
            .collect();
        for n in named {
            headers.remove(n);
        }
    }
    if keep_upgrade {
        present &= !UPGRADE_BIT;
    }
    for (i, name) in HOP_BY_HOP_NAMES.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Why a request has no one authority to route and forward by (RFC 9112 3.2, RFC 9113
/// 8.3.1): each is answered 400 before anything is routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    /// More than one `Host` field line.
    Repeated,
    /// An HTTP/1.1 request without `Host`.
    Missing,
    /// A `Host` (or target authority) that is not a valid `host[:port]`.
    Invalid,
    /// HTTP/2 `:authority` and `host` that name different authorities.
    Conflict,
}

impl HostError {
    pub fn as_str(self) -> &'static str {
        match self {
            HostError::Repeated => "the request has more than one Host header",
            HostError::Missing => "an HTTP/1.1 request must have a Host header",
            HostError::Invalid => "the Host header is not a valid host[:port]",
            HostError::Conflict => "the :authority and host of the HTTP/2 request differ",
        }
    }
}

/// Decides the one authority of a request, used both to route it and to forward it: the
/// `Host` header afterwards holds it, normalised, and is the only one. An absolute-form
/// target's authority replaces `Host` (RFC 9112 3.2.2), HTTP/2's `:authority` is used when
/// there is no `host` or when both agree; a trailing dot of the host name is removed
/// (`admin.example.` is `admin.example`). The usual request (one valid `Host`, origin-form)
/// costs one lookup and a scan of the value, and changes nothing.
#[inline(never)]
pub fn decide_authority(parts: &mut http::request::Parts) -> Result<(), HostError> {
    let mut all = parts.headers.get_all(header::HOST).iter();
    let host = all.next();
    if all.next().is_some() {
        return Err(HostError::Repeated);
    }
    let target = parts.uri.authority();
    let value: &[u8] = match (target, host) {
        (None, Some(h)) => h.as_bytes(),
        (Some(a), Some(h)) if parts.version == http::Version::HTTP_2 => {
            if !a.as_str().as_bytes().eq_ignore_ascii_case(h.as_bytes()) {
                return Err(HostError::Conflict);
            }
            h.as_bytes()
        }
        (Some(_), None) if parts.version == http::Version::HTTP_11 => {
            return Err(HostError::Missing)
        }
        (Some(a), _) => a.as_str().as_bytes(),
        (None, None) if parts.version == http::Version::HTTP_11 => return Err(HostError::Missing),
        (None, None) => return Ok(()),
    };
    if !valid_authority(value) {
        return Err(HostError::Invalid);
    }
    let normalised = without_trailing_dot(value);
    let same = host.is_some_and(|h| h.as_bytes() == normalised.as_ref());
    if !same {
        let v = HeaderValue::from_bytes(&normalised).map_err(|_| HostError::Invalid)?;
        parts.headers.insert(header::HOST, v);
    }
    Ok(())
}

/// Bytes of a plain `name[:port]` authority (RFC 3986 reg-name characters and `:`).
static PLAIN_AUTHORITY: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
            );
        c += 1;
    }
    t
};

/// The usual request's host, without its port, when [`decide_authority`] would change
/// nothing: HTTP/1.x in origin-form with exactly one `Host` that is a plain `name[:port]`
/// without a trailing dot. One lookup and one table-driven scan; `None` sends the request
/// through [`decide_authority`] (absolute-form, HTTP/2, IP literals, a trailing dot, and
/// everything it refuses).
#[inline]
pub fn plain_host(parts: &http::request::Parts) -> Option<&str> {
    if parts.uri.authority().is_some() {
        return None;
    }
    let mut all = parts.headers.get_all(header::HOST).iter();
    let h = all.next()?;
    if all.next().is_some() {
        return None;
    }
    let b = h.as_bytes();
    let mut colon = b.len();
    for (i, &c) in b.iter().enumerate() {
        if !PLAIN_AUTHORITY[usize::from(c)] {
            return None;
        }
        if c == b':' {
            if colon != b.len() {
                return None;
            }
            colon = i;
        }
    }
    let port = b.get(colon + 1..).unwrap_or_default();
    if colon == 0
        || b[colon - 1] == b'.'
        || (colon < b.len()
            && (port.is_empty() || port.len() > 5 || !port.iter().all(u8::is_ascii_digit)))
    {
        return None;
    }
    std::str::from_utf8(&b[..colon]).ok()
}

/// `host[:port]` as RFC 3986 allows it in an authority (no userinfo): a reg-name or IPv4
/// address, or an IP literal in brackets, and an optional port of digits.
fn valid_authority(v: &[u8]) -> bool {
    let (host, port) = match v.first() {
        Some(b'[') => match v.iter().position(|&b| b == b']') {
            Some(end) => {
                let inner = &v[1..end];
                if inner.is_empty()
                    || !inner
                        .iter()
                        .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
                {
                    return false;
                }
                (&v[..=end], &v[end + 1..])
            }
            None => return false,
        },
        _ => match v.iter().position(|&b| b == b':') {
            Some(i) => (&v[..i], &v[i..]),
            None => (v, &[][..]),
        },
    };
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    let host_ok = host.first() == Some(&b'[')
        || (!host.is_empty()
            && host.iter().all(|&b| {
                b.is_ascii_alphanumeric()
                    || matches!(
                        b,
                        b'-' | b'.'
                            | b'_'
                            | b'~'
                            | b'%'
                            | b'!'
                            | b'$'
                            | b'&'
                            | b'\''
                            | b'('
                            | b')'
                            | b'*'
                            | b'+'
                            | b','
                            | b';'
                            | b'='
                    )
            }));
    port_ok && host_ok
}

/// The authority without a trailing dot on its host name (`a.example.:80` -> `a.example:80`).
fn without_trailing_dot(v: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if v.first() == Some(&b'[') {
        return v.into();
    }
    let end = v.iter().position(|&b| b == b':').unwrap_or(v.len());
    if end > 1 && v[end - 1] == b'.' {
        let mut out = Vec::with_capacity(v.len() - 1);
        out.extend_from_slice(&v[..end - 1]);
        out.extend_from_slice(&v[end..]);
        out.into()
    } else {
        v.into()
    }
}

/// Rewrites a client's request headers for an upstream, in one scan over the names: removes
/// hop-by-hop headers and `Expect` (ficus itself answers `100-continue`), makes sure `Host`
/// is present, sets `X-Forwarded-*`, and adds `X-Request-Id` when absent. Returns the
/// request id when `want_id` (the access log's; otherwise the copy is not made).
pub fn prepare_request(
    headers: &mut HeaderMap,
    authority: Option<&http::uri::Authority>,
    keep_upgrade: bool,
    client_ip: &HeaderValue,
    proto: &HeaderValue,
    want_id: bool,
) -> Option<HeaderValue> {
    let (mut present, mut expect, mut xff, mut request_id) = (0u16, false, false, false);
    for name in headers.keys() {
        if let Some(i) = hop_index(name) {
            present |= 1 << i;
        } else if name == header::EXPECT {
            expect = true;
        } else if name == X_FORWARDED_FOR {
            xff = true;
        } else if name == X_REQUEST_ID {
            request_id = true;
        }
    }
    strip_present(headers, present, keep_upgrade);
    if expect {
        headers.remove(header::EXPECT);
    }
    let host = match headers.get(header::HOST) {
        Some(h) => Some(h.clone()),
        // HTTP/2 and absolute-form requests carry the host in the URI.
        None => authority
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            .inspect(|h| {
                headers.insert(header::HOST, h.clone());
            }),
    };
    if xff {
        set_forwarded(headers, client_ip, proto, host);
    } else {
        headers.insert(X_FORWARDED_FOR.clone(), client_ip.clone());
        headers.insert(X_FORWARDED_PROTO.clone(), proto.clone());
        if let Some(h) = host {
            headers.insert(X_FORWARDED_HOST.clone(), h);
        }
    }
    if request_id && acceptable_request_id(headers) {
        want_id.then(|| ensure_request_id(headers))
    } else {
        let id = new_request_id();
        let copy = want_id.then(|| id.clone());
        headers.insert(X_REQUEST_ID.clone(), id);
        copy
    }
}

fn is_plain_keep_alive_or_close(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    b.eq_ignore_ascii_case(b"keep-alive") || b.eq_ignore_ascii_case(b"close")
}

/// Whether the request asks to switch protocols (`Connection: upgrade` plus `Upgrade`) to
/// something ficus passes through (WebSocket and the like). `Upgrade: h2c` is not: passed
/// on, an upstream that accepts it would speak HTTP/2 with the client on a tunnel outside
/// ficus's routing, limits and logs (h2c smuggling); such a request goes upstream as a
/// plain request, its `Upgrade` and `HTTP2-Settings` removed as hop-by-hop, as nginx does.
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers.get(header::UPGRADE).is_some_and(|u| {
        u.as_bytes()
            .split(|&b| b == b',')
            .any(|t| !t.trim_ascii().eq_ignore_ascii_case(b"h2c"))
    }) && headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Appends the client address to `X-Forwarded-For` and sets `X-Forwarded-Proto` and
/// `X-Forwarded-Host` (the host the client asked for).
pub fn set_forwarded(
    headers: &mut HeaderMap,
    client_ip: &HeaderValue,
    proto: &HeaderValue,
    host: Option<HeaderValue>,
) {
    let xff = match headers.get(&X_FORWARDED_FOR) {
        None => client_ip.clone(),
        Some(prev) => {
            let mut v = Vec::with_capacity(prev.len() + 2 + client_ip.len());
            v.extend_from_slice(prev.as_bytes());
            v.extend_from_slice(b", ");
            v.extend_from_slice(client_ip.as_bytes());
            HeaderValue::from_bytes(&v).unwrap_or_else(|_| client_ip.clone())
        }
    };
    headers.insert(X_FORWARDED_FOR.clone(), xff);
    headers.insert(X_FORWARDED_PROTO.clone(), proto.clone());
    if let Some(h) = host {
        headers.insert(X_FORWARDED_HOST.clone(), h);
    }
}

/// Whether the client's `X-Request-Id` may be kept: one field of 1 to
/// [`REQUEST_ID_MAX_LEN`](ficus_config::defaults::REQUEST_ID_MAX_LEN) characters from
/// `A-Z a-z 0-9 - _ . : + / =` (UUIDs, ULIDs, hex and base64 ids, W3C trace ids), so that it
/// can neither forge access-log fields nor grow every log line and upstream request. Any
/// other is replaced by a generated id.
fn acceptable_request_id(headers: &HeaderMap) -> bool {
    let mut all = headers.get_all(&X_REQUEST_ID).iter();
    let Some(v) = all.next() else { return false };
    all.next().is_none() && valid_request_id(v.as_bytes())
}

/// See [`acceptable_request_id`].
pub fn valid_request_id(v: &[u8]) -> bool {
    !v.is_empty()
        && v.len() <= ficus_config::defaults::REQUEST_ID_MAX_LEN
        && v.iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'+' | b'/' | b'=')
        })
}

/// Returns the request id, adding a fresh one when the client sent none.
pub fn ensure_request_id(headers: &mut HeaderMap) -> HeaderValue {
    if let Some(v) = headers.get(&X_REQUEST_ID) {
        return v.clone();
    }
    let id = new_request_id();
    headers.insert(X_REQUEST_ID.clone(), id.clone());
    id
}

/// 128 random bits as 32 lower-case hex digits.
fn new_request_id() -> HeaderValue {
    let (a, b) = (crate::rand::next_u64(), crate::rand::next_u64());
    let mut buf = [0u8; 32];
    for (i, half) in [a >> 32, a, b >> 32, b].into_iter().enumerate() {
        buf[8 * i..8 * i + 8].copy_from_slice(&hex8(half as u32).to_be_bytes());
    }
    HeaderValue::from_bytes(&buf).expect("hex is a valid header value")
}

/// Eight lower-case hex digits for `v`, most significant first when written big-endian:
/// the nibbles are spread one per byte, then turned into ASCII all at once (`'0'` plus the
/// nibble, plus `'a' - '0' - 10` where the nibble is over 9).
fn hex8(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = ((x & 0xFFFF_0000) << 16) | (x & 0xFFFF);
    x = ((x & 0x0000_FF00_0000_FF00) << 8) | (x & 0x0000_00FF_0000_00FF);
    x = ((x & 0x00F0_00F0_00F0_00F0) << 4) | (x & 0x000F_000F_000F_000F);
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    x + 0x3030_3030_3030_3030 + letters * 0x27
}

/// A header name as read off the wire. The names nearly every request and response carry
/// are recognised in their usual spellings by a comparison or two; anything else goes
/// through [`HeaderName::from_bytes`], which lower-cases and validates.
pub fn wire_name(b: &[u8]) -> Result<HeaderName, header::InvalidHeaderName> {
    use header::*;
    let known = match b.len() {
        3 => match b {
            b"Age" | b"age" => Some(AGE),
            _ => None,
        },
        4 => match b {
            b"Host" | b"host" => Some(HOST),
            b"Date" | b"date" => Some(DATE),
            b"ETag" | b"Etag" | b"etag" => Some(ETAG),
            b"Vary" | b"vary" => Some(VARY),
            _ => None,
        },
        6 => match b {
            b"Accept" | b"accept" => Some(ACCEPT),
            b"Server" | b"server" => Some(SERVER),
            b"Cookie" | b"cookie" => Some(COOKIE),
            b"Origin" | b"origin" => Some(ORIGIN),
            _ => None,
        },
        7 => match b {
            b"Referer" | b"referer" => Some(REFERER),
            b"Expires" | b"expires" => Some(EXPIRES),
            _ => None,
        },
        8 => match b {
            b"Location" | b"location" => Some(LOCATION),
            _ => None,
        },
        10 => match b {
            b"Connection" | b"connection" => Some(CONNECTION),
            b"User-Agent" | b"user-agent" => Some(USER_AGENT),
            b"Set-Cookie" | b"set-cookie" => Some(SET_COOKIE),
            b"Keep-Alive" | b"keep-alive" => Some(KEEP_ALIVE.clone()),
            _ => None,
        },
        12 => match b {
            b"Content-Type" | b"content-type" => Some(CONTENT_TYPE),
            b"X-Request-Id" | b"X-Request-ID" | b"x-request-id" => Some(X_REQUEST_ID.clone()),
            _ => None,
        },
        13 => match b {
            b"Cache-Control" | b"cache-control" => Some(CACHE_CONTROL),
            b"Authorization" | b"authorization" => Some(AUTHORIZATION),
            b"Last-Modified" | b"last-modified" => Some(LAST_MODIFIED),
            _ => None,
        },
        14 => match b {
            b"Content-Length" | b"content-length" => Some(CONTENT_LENGTH),
            _ => None,
        },
        15 => match b {
            b"Accept-Encoding" | b"accept-encoding" => Some(ACCEPT_ENCODING),
            b"Accept-Language" | b"accept-language" => Some(ACCEPT_LANGUAGE),
            b"X-Forwarded-For" | b"x-forwarded-for" => Some(X_FORWARDED_FOR.clone()),
            _ => None,
        },
        16 => match b {
            b"Content-Encoding" | b"content-encoding" => Some(CONTENT_ENCODING),
            _ => None,
        },
        17 => match b {
            b"Transfer-Encoding" | b"transfer-encoding" => Some(TRANSFER_ENCODING),
            _ => None,
        },
        _ => None,
    };
    match known {
        Some(n) => Ok(n),
        None => HeaderName::from_bytes(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("upgrade", HeaderValue::from_static("h2c"));
        h.insert("proxy-authorization", HeaderValue::from_static("x"));
        h.insert("x-keep", HeaderValue::from_static("yes"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["x-keep"], "yes");
    }

    #[test]
    fn every_hop_by_hop_name_is_found_and_nothing_else() {
        for (i, n) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_index(&HeaderName::from_static(n)), Some(i), "{n}");
        }
        for n in [
            "host",
            "content-type",
            "x-connection",
            "tee",
            "upgrades",
            "keep-alivex",
        ] {
            assert_eq!(
                hop_index(&HeaderName::from_bytes(n.as_bytes()).unwrap()),
                None,
                "{n}"
            );
        }
    }

    #[test]
    fn prepare_request_rewrites_in_one_pass() {
        let ip = HeaderValue::from_static("127.0.0.1");
        let proto = HeaderValue::from_static("http");
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("shop.test"));
        h.insert("connection", HeaderValue::from_static("keep-alive"));
        h.insert("expect", HeaderValue::from_static("100-continue"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        let id = prepare_request(&mut h, None, false, &ip, &proto, true).unwrap();
        assert_eq!(id.len(), 32);
        assert_eq!(h["x-request-id"], id);
        assert_eq!(h["x-forwarded-for"], "127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "shop.test");
        assert!(!h.contains_key("connection") && !h.contains_key("expect"));
        assert_eq!(h.len(), 6, "{h:?}");

        // An HTTP/2 request: the host comes from the URI; existing ids and chains are kept.
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("given"));
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        let authority = http::uri::Authority::from_static("api.test:8443");
        let id = prepare_request(&mut h, Some(&authority), false, &ip, &proto, true);
        assert_eq!(id.unwrap(), "given");
        assert_eq!(h["host"], "api.test:8443");
        assert_eq!(h["x-forwarded-host"], "api.test:8443");
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
    }

    #[test]
    fn one_authority_is_decided() {
        fn decide(req: http::Request<()>) -> Result<Option<String>, HostError> {
            let (mut parts, ()) = req.into_parts();
            decide_authority(&mut parts)?;
            let hosts: Vec<_> = parts.headers.get_all("host").iter().collect();
            assert!(hosts.len() <= 1);
            Ok(hosts.first().map(|h| h.to_str().unwrap().to_string()))
        }
        let get = |uri: &str| http::Request::get(uri);
        let ok = |r: Result<Option<String>, HostError>| r.unwrap().unwrap();
        assert_eq!(
            ok(decide(get("/").header("host", "a.test").body(()).unwrap())),
            "a.test"
        );
        assert_eq!(
            ok(decide(
                get("http://b.test/")
                    .header("host", "a.test")
                    .body(())
                    .unwrap()
            )),
            "b.test"
        );
        assert_eq!(
            ok(decide(get("/").header("host", "a.test.").body(()).unwrap())),
            "a.test"
        );
        assert_eq!(
            ok(decide(
                get("/").header("host", "A.test.:8080").body(()).unwrap()
            )),
            "A.test:8080"
        );
        assert_eq!(
            ok(decide(
                get("/").header("host", "[::1]:8080").body(()).unwrap()
            )),
            "[::1]:8080"
        );
        let two = get("/")
            .header("host", "a")
            .header("host", "a")
            .body(())
            .unwrap();
        assert_eq!(decide(two), Err(HostError::Repeated));
        assert_eq!(decide(get("/").body(()).unwrap()), Err(HostError::Missing));
        assert_eq!(
            decide(get("http://b.test/").body(()).unwrap()),
            Err(HostError::Missing)
        );
        for bad in ["a b", "", "a:x", "u@a", "[zz]", "a:123456", ":80"] {
            let r = get("/").header("host", bad).body(()).unwrap();
            assert_eq!(decide(r), Err(HostError::Invalid), "{bad:?}");
        }
        let old = get("/").version(http::Version::HTTP_10).body(()).unwrap();
        assert_eq!(decide(old), Ok(None));
        let h2 = |host: Option<&str>| {
            let mut b = get("http://a.test/").version(http::Version::HTTP_2);
            if let Some(h) = host {
                b = b.header("host", h);
            }
            decide(b.body(()).unwrap())
        };
        assert_eq!(ok(h2(None)), "a.test");
        assert_eq!(ok(h2(Some("A.test"))), "A.test");
        assert_eq!(h2(Some("b.test")), Err(HostError::Conflict));
    }

    #[test]
    fn the_plain_host_fast_path_agrees_with_decide_authority() {
        for host in [
            "a.test",
            "a.test:8080",
            "A-b_c.test",
            "127.0.0.1:18284",
            "a.test.",
            "a.test.:80",
            "a.test:",
            "a.test:123456",
            "a:b:c",
            ":80",
            "[::1]:80",
            "a b",
            "u@a",
        ] {
            let (mut parts, ()) = http::Request::get("/x")
                .header("host", host)
                .body(())
                .unwrap()
                .into_parts();
            let fast = plain_host(&parts).map(str::to_string);
            let before = parts.headers.clone();
            let decided = decide_authority(&mut parts);
            if let Some(h) = fast {
                assert_eq!(decided, Ok(()), "{host}");
                assert_eq!(parts.headers, before, "{host}: nothing to change");
                let uri: http::Uri = "/x".parse().unwrap();
                assert_eq!(
                    crate::router::request_host(&uri, &parts.headers),
                    Some(h.as_str())
                );
            }
        }
    }

    #[test]
    fn connection_never_removes_host() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("a.test"));
        h.insert("connection", HeaderValue::from_static("host, x-a"));
        h.insert("x-a", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["host"], "a.test");
    }

    #[test]
    fn h2c_is_no_upgrade_to_pass_on() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("Upgrade, HTTP2-Settings"),
        );
        h.insert("upgrade", HeaderValue::from_static("h2c"));
        h.insert(
            "http2-settings",
            HeaderValue::from_static("AAMAAABkAAQCAAAAAAIAAAAA"),
        );
        assert!(!is_upgrade_request(&h));
        strip_hop_by_hop(&mut h, false);
        assert!(h.is_empty(), "{h:?}");
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("upgrade"));
        h.insert("upgrade", HeaderValue::from_static("H2C, websocket"));
        assert!(
            is_upgrade_request(&h),
            "one of the offered protocols is not h2c"
        );
    }

    #[test]
    fn upgrade_survives_when_kept() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        assert!(is_upgrade_request(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
    }

    #[test]
    fn forwarded_for_appends() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        set_forwarded(
            &mut h,
            &HeaderValue::from_static("127.0.0.1"),
            &HeaderValue::from_static("https"),
            Some(HeaderValue::from_static("shop.test")),
        );
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "shop.test");
    }

    #[test]
    fn hex_digits_match_the_formatter() {
        for v in [
            0u32,
            1,
            9,
            10,
            15,
            16,
            0xdead_beef,
            0x0123_4567,
            0x89ab_cdef,
            u32::MAX,
        ] {
            assert_eq!(
                hex8(v).to_be_bytes(),
                *format!("{v:08x}").as_bytes(),
                "{v:#x}"
            );
        }
        let mut x = 0x9E37_79B9_u32;
        for _ in 0..10_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            assert_eq!(hex8(x).to_be_bytes(), *format!("{x:08x}").as_bytes());
        }
        let id = new_request_id();
        assert!(
            id.as_bytes()
                .iter()
                .all(|b| b"0123456789abcdef".contains(b)),
            "{id:?}"
        );
    }

    #[test]
    fn wire_names_are_the_names_from_bytes_gives() {
        let spellings = [
            "Age",
            "Host",
            "host",
            "Date",
            "ETag",
            "Etag",
            "etag",
            "Vary",
            "Accept",
            "Server",
            "Cookie",
            "Origin",
            "Referer",
            "Expires",
            "Location",
            "Connection",
            "User-Agent",
            "Set-Cookie",
            "Keep-Alive",
            "Content-Type",
            "X-Request-Id",
            "X-Request-ID",
            "Cache-Control",
            "Authorization",
            "Last-Modified",
            "Content-Length",
            "Accept-Encoding",
            "Accept-Language",
            "X-Forwarded-For",
            "Content-Encoding",
            "Transfer-Encoding",
            "transfer-encoding",
            // Not in the short list: the general path.
            "X-Custom",
            "HOST",
            "x-forwarded-proto",
            "Content-Lengths",
        ];
        for s in spellings {
            let want = HeaderName::from_bytes(s.as_bytes()).unwrap();
            assert_eq!(wire_name(s.as_bytes()).unwrap(), want, "{s}");
            assert_eq!(
                wire_name(s.as_bytes()).unwrap().as_str(),
                want.as_str(),
                "{s}"
            );
        }
        for bad in ["", "bad name", "a:b", "\u{1}"] {
            assert!(wire_name(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_plain_short_request_ids_are_kept() {
        let ip = HeaderValue::from_static("127.0.0.1");
        let proto = HeaderValue::from_static("http");
        let long = "a".repeat(ficus_config::defaults::REQUEST_ID_MAX_LEN + 1);
        let max = "a".repeat(ficus_config::defaults::REQUEST_ID_MAX_LEN);
        for (given, kept) in [
            ("abc status=200 route=forged", false),
            ("a\"b", false),
            ("", false),
            (long.as_str(), false),
            (max.as_str(), true),
            ("req-42_x.y:z", true),
            ("YWJj+/==", true),
            ("01ARZ3NDEKTSV4RRFFQ69G5FAV", true),
        ] {
            let mut h = HeaderMap::new();
            h.insert("x-request-id", HeaderValue::from_str(given).unwrap());
            let id = prepare_request(&mut h, None, false, &ip, &proto, true).unwrap();
            assert_eq!(h["x-request-id"], id);
            assert_eq!(id == given, kept, "{given:?} -> {id:?}");
            if !kept {
                assert_eq!(id.len(), 32);
            }
        }
        let mut h = HeaderMap::new();
        h.append("x-request-id", HeaderValue::from_static("a"));
        h.append("x-request-id", HeaderValue::from_static("b"));
        let id = prepare_request(&mut h, None, false, &ip, &proto, false);
        assert!(id.is_none());
        assert_eq!(h.get_all("x-request-id").iter().count(), 1);
        assert_eq!(h["x-request-id"].len(), 32);
    }

    #[test]
    fn request_id_is_kept_or_made() {
        let mut h = HeaderMap::new();
        let id = ensure_request_id(&mut h);
        assert_eq!(id.len(), 32);
        assert_eq!(ensure_request_id(&mut h), id);
        let other = ensure_request_id(&mut HeaderMap::new());
        assert_ne!(other, id);
    }
}
