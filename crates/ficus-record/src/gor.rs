//! Importing GoReplay's `.gor` files, so captures made with GoReplay can be replayed and
//! compared by ficus.
//!
//! The layout (GoReplay's file output, `--output-file`): payloads separated by a line
//! holding only `🐵🙈🙉`; each payload is a meta line `TYPE ID TIMESTAMP_NS [LATENCY_NS]`
//! (type `1` a request, `2` the original response, `3` a replayed one) and then the raw HTTP
//! message. A request and its original response share the ID. A request without a response
//! is kept with status 0 (replay then reports every answer as a status mismatch; filter on
//! `status=` to leave them out); replayed responses are ignored.
use std::collections::HashMap;

use crate::exchange::{Body, Exchange, Message};

/// The line between payloads.
const SEPARATOR: &[u8] = "🐵🙈🙉".as_bytes();

/// What an import found besides the exchanges.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportStats {
    pub requests: u64,
    pub responses: u64,
    /// Payloads that did not parse (a bad meta line or HTTP message), skipped.
    pub malformed: u64,
    /// Requests with no original response (kept, status 0).
    pub unanswered: u64,
}

/// Parses a whole `.gor` file into exchanges in request order (by timestamp), attributed to
/// `route`.
pub fn import(data: &[u8], route: &str) -> (Vec<Exchange>, ImportStats) {
    let mut stats = ImportStats::default();
    let mut requests: Vec<(String, Exchange)> = Vec::new();
    let mut responses: HashMap<String, (u16, Message, u64)> = HashMap::new();
    for payload in split(data) {
        let Some(nl) = payload.iter().position(|b| *b == b'\n') else {
            stats.malformed += 1;
            continue;
        };
        let meta = String::from_utf8_lossy(&payload[..nl]);
        let fields: Vec<&str> = meta.split_whitespace().collect();
        let raw = &payload[nl + 1..];
        let (Some(kind), Some(id), Some(ts)) = (
            fields.first(),
            fields.get(1),
            fields.get(2).and_then(|t| t.parse::<u64>().ok()),
        ) else {
            stats.malformed += 1;
            continue;
        };
        let latency = fields
            .get(3)
            .and_then(|l| l.parse::<u64>().ok())
            .unwrap_or(0);
        match *kind {
            "1" => match request(raw, ts, route) {
                Some(ex) => {
                    stats.requests += 1;
                    requests.push((id.to_string(), ex));
                }
                None => stats.malformed += 1,
            },
            "2" => match response(raw) {
                Some((status, msg)) => {
                    stats.responses += 1;
                    responses.insert(id.to_string(), (status, msg, latency));
                }
                None => stats.malformed += 1,
            },
            _ => {}
        }
    }
    let mut out: Vec<Exchange> = requests
        .into_iter()
        .map(|(id, mut ex)| {
            match responses.remove(&id) {
                Some((status, msg, latency)) => {
                    ex.status = status;
                    ex.response = msg;
                    ex.duration_ns = latency;
                }
                None => stats.unanswered += 1,
            }
            ex
        })
        .collect();
    out.sort_by_key(|e| e.at_ns);
    (out, stats)
}

/// The payloads between separator lines.
fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut line_start = 0;
    for (i, b) in data.iter().enumerate() {
        if *b != b'\n' {
            continue;
        }
        let line = &data[line_start..i];
        if line == SEPARATOR {
            // The payload ends with the newline before the separator line.
            let end = line_start.saturating_sub(1).max(start);
            out.push(&data[start..end]);
            start = i + 1;
        }
        line_start = i + 1;
    }
    if start < data.len() && !data[start..].iter().all(u8::is_ascii_whitespace) {
        out.push(&data[start..]);
    }
    out
}

fn headers_of(parsed: &[httparse::Header<'_>]) -> Vec<(String, Body)> {
    parsed
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), Body(h.value.to_vec())))
        .collect()
}

fn request(raw: &[u8], at_ns: u64, route: &str) -> Option<Exchange> {
    let mut hs = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut hs);
    let head = match req.parse(raw).ok()? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return None,
    };
    let version = match req.version? {
        0 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    Some(Exchange {
        at_ns,
        duration_ns: 0,
        route: route.to_string(),
        stage: "legacy".into(),
        side: "legacy".into(),
        fallback: false,
        key: None,
        version: version.into(),
        method: req.method?.to_string(),
        target: req.path?.to_string(),
        request: Message {
            headers: headers_of(req.headers),
            body: Body(raw[head..].to_vec()),
            truncated_from: None,
        },
        status: 0,
        response: Message::default(),
        shadow: None,
    })
}

fn response(raw: &[u8]) -> Option<(u16, Message)> {
    let mut hs = [httparse::EMPTY_HEADER; 128];
    let mut resp = httparse::Response::new(&mut hs);
    let head = match resp.parse(raw).ok()? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return None,
    };
    Some((
        resp.code?,
        Message {
            headers: headers_of(resp.headers),
            body: Body(raw[head..].to_vec()),
            truncated_from: None,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A capture as GoReplay's file output writes it (its documented layout, written by
    /// hand here: meta line, raw message, separator line).
    fn fixture() -> Vec<u8> {
        let mut f = Vec::new();
        let mut push = |meta: &str, raw: &str| {
            f.extend_from_slice(meta.as_bytes());
            f.push(b'\n');
            f.extend_from_slice(raw.as_bytes());
            f.extend_from_slice("\n🐵🙈🙉\n".as_bytes());
        };
        push(
            "1 8a4f1e0c2b3d4e5f6a7b8c9d 1700000000000000000 0",
            "GET /orders/1?expand=items HTTP/1.1\r\nHost: legacy.internal\r\nX-User-Id: u1\r\n\r\n",
        );
        push(
            "2 8a4f1e0c2b3d4e5f6a7b8c9d 1700000000002500000 2500000",
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"id\":1}",
        );
        push(
            "1 11aa22bb33cc44dd55ee66ff 1700000000500000000 0",
            "POST /orders HTTP/1.1\r\nHost: legacy.internal\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"sku\":\"a\"}",
        );
        push(
            "2 11aa22bb33cc44dd55ee66ff 1700000000510000000 10000000",
            "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        );
        push(
            "3 11aa22bb33cc44dd55ee66ff 1700000000600000000 9000000",
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
        );
        push(
            "1 ffffffffffffffffffffffff 1700000001000000000 0",
            "GET /health HTTP/1.1\r\nHost: legacy.internal\r\n\r\n",
        );
        push("garbage", "");
        f
    }

    #[test]
    fn a_gor_file_becomes_exchanges_with_their_original_responses() {
        let (ex, stats) = import(&fixture(), "orders");
        assert_eq!(
            stats,
            ImportStats {
                requests: 3,
                responses: 2,
                malformed: 1,
                unanswered: 1
            }
        );
        assert_eq!(ex.len(), 3);
        assert_eq!(
            (ex[0].method.as_str(), ex[0].target.as_str(), ex[0].status),
            ("GET", "/orders/1?expand=items", 200)
        );
        assert_eq!(ex[0].at_ns, 1_700_000_000_000_000_000);
        assert_eq!(ex[0].duration_ns, 2_500_000);
        assert_eq!(ex[0].request.header("x-user-id"), Some("u1"));
        assert_eq!(ex[0].response.body.0, b"{\"id\":1}");
        assert_eq!((ex[1].method.as_str(), ex[1].status), ("POST", 201));
        assert_eq!(ex[1].request.body.0, b"{\"sku\":\"a\"}");
        assert_eq!(ex[2].status, 0, "no original response");
        assert!(ex.iter().all(|e| e.route == "orders"));
    }
}
