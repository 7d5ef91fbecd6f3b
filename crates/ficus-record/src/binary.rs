//! The binary encoding of one exchange (format 2's records).
//!
//! Format 1 wrote each record as JSON, and escaping every body and header value was the
//! largest cost of recording (serde_json's string escaping was the top user-space symbol of
//! the gateway recording all of its traffic). Format 2 writes the same fields as
//! length-prefixed bytes, in this order:
//!
//! ```text
//! exchange = varint at_ns, varint duration_ns, str route, str stage, str side,
//!            u8 flags (1: fallback, 2: key follows, 4: shadow follows),
//!            [str key], str version, str method, str target,
//!            message request, varint status, message response, [shadow]
//! message  = varint truncated_from + 1 (0: not cut), varint n, (str name, bytes value) * n,
//!            bytes body
//! shadow   = varint status, message response, str verdict, varint n, str * n
//! str      = bytes holding UTF-8
//! bytes    = varint length, then that many bytes
//! varint   = unsigned LEB128, at most 10 bytes
//! ```
use crate::exchange::{Body, Exchange, Message, Shadow};

const FALLBACK: u8 = 1;
const KEY: u8 = 2;
const SHADOW: u8 = 4;

/// Appends the encoding of `ex` to `out`.
pub fn encode(ex: &Exchange, out: &mut Vec<u8>) {
    varint(out, ex.at_ns);
    varint(out, ex.duration_ns);
    bytes(out, ex.route.as_bytes());
    bytes(out, ex.stage.as_bytes());
    bytes(out, ex.side.as_bytes());
    let mut flags = 0;
    if ex.fallback {
        flags |= FALLBACK;
    }
    if ex.key.is_some() {
        flags |= KEY;
    }
    if ex.shadow.is_some() {
        flags |= SHADOW;
    }
    out.push(flags);
    if let Some(k) = &ex.key {
        bytes(out, k.as_bytes());
    }
    bytes(out, ex.version.as_bytes());
    bytes(out, ex.method.as_bytes());
    bytes(out, ex.target.as_bytes());
    message(out, &ex.request);
    varint(out, u64::from(ex.status));
    message(out, &ex.response);
    if let Some(s) = &ex.shadow {
        varint(out, u64::from(s.status));
        message(out, &s.response);
        bytes(out, s.verdict.as_bytes());
        varint(out, s.differences.len() as u64);
        for d in &s.differences {
            bytes(out, d.as_bytes());
        }
    }
}

fn message(out: &mut Vec<u8>, m: &Message) {
    varint(out, m.truncated_from.map_or(0, |n| n.saturating_add(1)));
    varint(out, m.headers.len() as u64);
    for (n, v) in &m.headers {
        bytes(out, n.as_bytes());
        bytes(out, &v.0);
    }
    bytes(out, &m.body.0);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Decodes one exchange that fills `input` exactly; `Err` says what is wrong.
pub fn decode(input: &[u8]) -> Result<Exchange, &'static str> {
    let mut d = Decoder { input, at: 0 };
    let at_ns = d.varint()?;
    let duration_ns = d.varint()?;
    let route = d.string()?;
    let stage = d.string()?;
    let side = d.string()?;
    let flags = d.byte()?;
    if flags & !(FALLBACK | KEY | SHADOW) != 0 {
        return Err("unknown flags");
    }
    let key = if flags & KEY != 0 {
        Some(d.string()?)
    } else {
        None
    };
    let version = d.string()?;
    let method = d.string()?;
    let target = d.string()?;
    let request = d.message()?;
    let status = d.status()?;
    let response = d.message()?;
    let shadow = if flags & SHADOW != 0 {
        let status = d.status()?;
        let response = d.message()?;
        let verdict = d.string()?;
        let n = d.count()?;
        let mut differences = Vec::with_capacity(n);
        for _ in 0..n {
            differences.push(d.string()?);
        }
        Some(Shadow {
            status,
            response,
            verdict,
            differences,
        })
    } else {
        None
    };
    if d.at != input.len() {
        return Err("bytes after the record");
    }
    Ok(Exchange {
        at_ns,
        duration_ns,
        route,
        stage,
        side,
        fallback: flags & FALLBACK != 0,
        key,
        version,
        method,
        target,
        request,
        status,
        response,
        shadow,
    })
}

struct Decoder<'a> {
    input: &'a [u8],
    at: usize,
}

impl Decoder<'_> {
    fn byte(&mut self) -> Result<u8, &'static str> {
        let b = *self.input.get(self.at).ok_or("cut short")?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err("varint overflows");
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long")
    }

    /// A count of items that each take at least one byte (so a damaged count cannot make
    /// the decoder allocate more than the record's size).
    fn count(&mut self) -> Result<usize, &'static str> {
        let n = self.varint()?;
        if n > (self.input.len() - self.at) as u64 {
            return Err("count beyond the record");
        }
        Ok(n as usize)
    }

    fn slice(&mut self) -> Result<&[u8], &'static str> {
        let n = self.varint()?;
        if n > (self.input.len() - self.at) as u64 {
            return Err("length beyond the record");
        }
        let s = &self.input[self.at..self.at + n as usize];
        self.at += n as usize;
        Ok(s)
    }

    fn string(&mut self) -> Result<String, &'static str> {
        let s = self.slice()?;
        std::str::from_utf8(s)
            .map(str::to_string)
            .map_err(|_| "text is not UTF-8")
    }

    fn status(&mut self) -> Result<u16, &'static str> {
        u16::try_from(self.varint()?).map_err(|_| "status out of range")
    }

    fn message(&mut self) -> Result<Message, &'static str> {
        let truncated = self.varint()?;
        let n = self.count()?;
        let mut headers = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.string()?;
            let value = Body(self.slice()?.to_vec());
            headers.push((name, value));
        }
        let body = Body(self.slice()?.to_vec());
        Ok(Message {
            headers,
            body,
            truncated_from: truncated.checked_sub(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Exchange {
        Exchange {
            at_ns: u64::MAX,
            duration_ns: 0,
            route: "orders".into(),
            stage: "shadow".into(),
            side: "legacy".into(),
            fallback: true,
            key: Some("hmac:abc".into()),
            version: "HTTP/2".into(),
            method: "POST".into(),
            target: "/orders?x=1".into(),
            request: Message {
                headers: vec![("x-bin".into(), Body(vec![0, 255, 10]))],
                body: Body(b"{\"a\":\"\\u0001\"}".to_vec()),
                truncated_from: Some(u64::MAX - 1),
            },
            status: 599,
            response: Message::default(),
            shadow: Some(Shadow {
                status: 200,
                response: Message {
                    headers: vec![],
                    body: Body(vec![1, 2, 3]),
                    truncated_from: Some(0),
                },
                verdict: "different".into(),
                differences: vec!["$.a".into(), "$.b[*]".into()],
            }),
        }
    }

    #[test]
    fn every_field_round_trips() {
        let ex = sample();
        let mut out = Vec::new();
        encode(&ex, &mut out);
        assert_eq!(decode(&out), Ok(ex));
        // Every cut is refused, never read as a different exchange.
        for cut in 0..out.len() {
            assert!(decode(&out[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = out.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_exchanges_round_trip(
            at in any::<u64>(),
            status in any::<u16>(),
            method in "[A-Z]{1,8}",
            target in "/[ -~]{0,40}",
            headers in proptest::collection::vec(("[a-z-]{1,12}", proptest::collection::vec(any::<u8>(), 0..20)), 0..6),
            body in proptest::collection::vec(any::<u8>(), 0..200),
            cut in proptest::option::of(any::<u64>()),
            key in proptest::option::of("[a-zA-Z0-9:_-]{0,30}"),
        ) {
            let mut ex = sample();
            ex.at_ns = at;
            ex.status = status;
            ex.method = method;
            ex.target = target;
            ex.key = key;
            ex.shadow = None;
            ex.request.headers = headers.into_iter().map(|(n, v)| (n, Body(v))).collect();
            ex.response.body = Body(body);
            ex.response.truncated_from = cut.map(|c| c.min(u64::MAX - 1));
            let mut out = Vec::new();
            encode(&ex, &mut out);
            prop_assert_eq!(decode(&out), Ok(ex));
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&data);
        }
    }
}
