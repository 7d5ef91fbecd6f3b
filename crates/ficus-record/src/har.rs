//! HAR 1.2 (the HTTP Archive format browsers and proxies export), both ways.
//!
//! Export writes every field HAR 1.2 requires (`log.version`, `creator`, and per entry
//! `startedDateTime`, `time`, `request`, `response`, `cache`, `timings`, with `cookies`,
//! `headers`, `queryString`, `headersSize`, `bodySize`, `content`...) and ficus's own
//! under `_` names, as HAR allows for custom fields: `_atNs`, `_durationNs`, `_route`,
//! `_stage`, `_side`, `_fallback`, `_key`, `_target`, the bodies' `_truncatedFrom`, and
//! `_shadow`. Importing such a file gives back the same exchanges; importing a browser's HAR
//! takes what HAR has (times in milliseconds, the URL's path and query as the target).
//! Bodies that are not UTF-8 are base64 with `encoding: "base64"`; header values that are not
//! UTF-8 are written as `b64:...`.
use base64::Engine as _;
use serde_json::{json, Value};

use crate::exchange::{Body, Exchange, Message, Shadow};

/// The HAR document of `exchanges`.
pub fn export(exchanges: &[Exchange], ficus_version: &str) -> Value {
    json!({
        "log": {
            "version": "1.2",
            "creator": {"name": "ficus", "version": ficus_version},
            "entries": exchanges.iter().map(entry).collect::<Vec<_>>(),
        }
    })
}

fn header_list(m: &Message) -> Vec<Value> {
    m.headers
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect()
}

fn text_or_b64(b: &Body) -> (String, Option<&'static str>) {
    match std::str::from_utf8(&b.0) {
        Ok(t) => (t.to_string(), None),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(&b.0),
            Some("base64"),
        ),
    }
}

fn mime(m: &Message) -> String {
    m.header("content-type").unwrap_or("").to_string()
}

fn cookies(m: &Message, header: &str) -> Vec<Value> {
    m.headers
        .iter()
        .filter(|(n, _)| n == header)
        .flat_map(|(_, v)| {
            let text = String::from_utf8_lossy(&v.0).into_owned();
            let pairs: Vec<String> = if header == "cookie" {
                text.split(';').map(|p| p.trim().to_string()).collect()
            } else {
                text.split(';')
                    .next()
                    .map(|p| p.trim().to_string())
                    .into_iter()
                    .collect()
            };
            pairs
                .into_iter()
                .filter_map(|p| {
                    let (n, v) = p.split_once('=')?;
                    Some(json!({"name": n.trim(), "value": v.trim()}))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn entry(e: &Exchange) -> Value {
    let host = e.request.header("host").unwrap_or("recorded.invalid");
    let url = format!("http://{host}{}", e.target);
    let query: Vec<Value> = e
        .target
        .split_once('?')
        .map(|(_, q)| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (n, v) = p.split_once('=').unwrap_or((p, ""));
                    json!({"name": n, "value": v})
                })
                .collect()
        })
        .unwrap_or_default();
    let mut request = json!({
        "method": e.method,
        "url": url,
        "httpVersion": e.version,
        "cookies": cookies(&e.request, "cookie"),
        "headers": header_list(&e.request),
        "queryString": query,
        "headersSize": -1,
        "bodySize": e.request.body.0.len(),
    });
    if !e.request.body.0.is_empty() {
        let (text, encoding) = text_or_b64(&e.request.body);
        request["postData"] = json!({"mimeType": mime(&e.request), "text": text});
        if let Some(enc) = encoding {
            request["postData"]["_encoding"] = json!(enc);
        }
    }
    if let Some(t) = e.request.truncated_from {
        request["_truncatedFrom"] = json!(t);
    }
    let (text, encoding) = text_or_b64(&e.response.body);
    let mut content = json!({
        "size": e.response.body.0.len(),
        "mimeType": mime(&e.response),
        "text": text,
    });
    if let Some(enc) = encoding {
        content["encoding"] = json!(enc);
    }
    let mut response = json!({
        "status": e.status,
        "statusText": "",
        "httpVersion": e.version,
        "cookies": cookies(&e.response, "set-cookie"),
        "headers": header_list(&e.response),
        "content": content,
        "redirectURL": e.response.header("location").unwrap_or(""),
        "headersSize": -1,
        "bodySize": e.response.body.0.len(),
    });
    if let Some(t) = e.response.truncated_from {
        response["_truncatedFrom"] = json!(t);
    }
    let ms = e.duration_ns as f64 / 1e6;
    let mut out = json!({
        "startedDateTime": rfc3339(e.at_ns),
        "time": ms,
        "request": request,
        "response": response,
        "cache": {},
        "timings": {"send": 0, "wait": ms, "receive": 0},
        "_atNs": e.at_ns,
        "_durationNs": e.duration_ns,
        "_route": e.route,
        "_stage": e.stage,
        "_side": e.side,
        "_fallback": e.fallback,
        "_target": e.target,
    });
    if let Some(k) = &e.key {
        out["_key"] = json!(k);
    }
    if let Some(s) = &e.shadow {
        out["_shadow"] = json!(s);
    }
    out
}

/// Why a HAR document cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a HAR 1.2 document: {0}")]
pub struct HarError(pub String);

/// The exchanges of a HAR document (ficus's `_` fields used when present; `route` names
/// the route of entries without `_route`).
pub fn import(doc: &Value, route: &str) -> Result<Vec<Exchange>, HarError> {
    let entries = doc["log"]["entries"]
        .as_array()
        .ok_or_else(|| HarError("no log.entries array".into()))?;
    entries
        .iter()
        .enumerate()
        .map(|(i, en)| import_entry(en, route).map_err(|e| HarError(format!("entry {i}: {e}"))))
        .collect()
}

fn str_of<'a>(v: &'a Value, what: &str) -> Result<&'a str, String> {
    v.as_str().ok_or_else(|| format!("{what} is not a string"))
}

fn headers_in(v: &Value) -> Result<Vec<(String, Body)>, String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|h| {
                    let name = str_of(&h["name"], "a header name")?.to_ascii_lowercase();
                    let value: Body = serde_json::from_value(h["value"].clone())
                        .map_err(|e| format!("header {name}: {e}"))?;
                    Ok((name, value))
                })
                .collect()
        })
        .unwrap_or_else(|| Ok(Vec::new()))
}

fn body_in(text: &Value, encoding: &Value) -> Result<Body, String> {
    let t = text.as_str().unwrap_or("");
    if encoding.as_str() == Some("base64") {
        base64::engine::general_purpose::STANDARD
            .decode(t)
            .map(Body)
            .map_err(|e| format!("base64 body: {e}"))
    } else {
        Ok(Body(t.as_bytes().to_vec()))
    }
}

fn import_entry(en: &Value, route: &str) -> Result<Exchange, String> {
    let req = &en["request"];
    let resp = &en["response"];
    let url = str_of(&req["url"], "request.url")?;
    let target = match en["_target"].as_str() {
        Some(t) => t.to_string(),
        None => target_of(url),
    };
    let at_ns = match en["_atNs"].as_u64() {
        Some(n) => n,
        None => parse_rfc3339(str_of(&en["startedDateTime"], "startedDateTime")?)
            .ok_or("startedDateTime is not an ISO 8601 date-time")?,
    };
    let duration_ns = en["_durationNs"]
        .as_u64()
        .unwrap_or_else(|| (en["time"].as_f64().unwrap_or(0.0).max(0.0) * 1e6) as u64);
    let shadow: Option<Shadow> = match en.get("_shadow") {
        Some(s) if !s.is_null() => {
            Some(serde_json::from_value(s.clone()).map_err(|e| format!("_shadow: {e}"))?)
        }
        _ => None,
    };
    Ok(Exchange {
        at_ns,
        duration_ns,
        route: en["_route"].as_str().unwrap_or(route).to_string(),
        stage: en["_stage"].as_str().unwrap_or("legacy").to_string(),
        side: en["_side"].as_str().unwrap_or("legacy").to_string(),
        fallback: en["_fallback"].as_bool().unwrap_or(false),
        key: en["_key"].as_str().map(str::to_string),
        version: req["httpVersion"]
            .as_str()
            .unwrap_or("HTTP/1.1")
            .to_string(),
        method: str_of(&req["method"], "request.method")?.to_string(),
        target,
        request: Message {
            headers: headers_in(&req["headers"])?,
            body: body_in(&req["postData"]["text"], &req["postData"]["_encoding"])?,
            truncated_from: req["_truncatedFrom"].as_u64(),
        },
        status: resp["status"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .ok_or("response.status is not a status")?,
        response: Message {
            headers: headers_in(&resp["headers"])?,
            body: body_in(&resp["content"]["text"], &resp["content"]["encoding"])?,
            truncated_from: resp["_truncatedFrom"].as_u64(),
        },
        shadow,
    })
}

/// The path and query of an absolute URL (`/` when it has none).
fn target_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find('/') {
        Some(i) => {
            let t = &rest[i..];
            t.split('#').next().unwrap_or(t).to_string()
        }
        None => match rest.find('?') {
            Some(i) => format!("/{}", &rest[i..]),
            None => "/".to_string(),
        },
    }
}

/// `2023-11-14T22:13:20.123456789Z` from Unix nanoseconds.
pub fn rfc3339(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Unix nanoseconds of an RFC 3339 date-time (`Z` or `±hh:mm`, any fraction).
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ns: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() {
            return None;
        }
        let kept: String = digits.chars().take(9).collect();
        frac_ns = kept.parse::<i64>().ok()? * 10i64.pow(9 - kept.len() as u32);
    }
    let offset = match s.get(i..)? {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (tz.get(1..3)?.parse::<i64>().ok()? * 3600
                + tz.get(4..6)?.parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset;
    u64::try_from(secs * 1_000_000_000 + frac_ns).ok()
}

// Howard Hinnant's civil-from-days and days-from-civil (public domain algorithms).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Exchange> {
        let mut a = Exchange {
            at_ns: 1_700_000_000_123_456_789,
            duration_ns: 2_345_678,
            route: "orders".into(),
            stage: "shadow".into(),
            side: "legacy".into(),
            fallback: false,
            key: Some("hmac:abc".into()),
            version: "HTTP/1.1".into(),
            method: "POST".into(),
            target: "/orders?x=1&y=".into(),
            request: Message {
                headers: vec![
                    ("host".into(), Body::text("shop.example")),
                    ("cookie".into(), Body::text("a=1; b=2")),
                    ("content-type".into(), Body::text("application/json")),
                    ("x-bin".into(), Body(vec![0xff, 0x00])),
                ],
                body: Body::text("{\"sku\":\"a\"}"),
                truncated_from: None,
            },
            status: 201,
            response: Message {
                headers: vec![("set-cookie".into(), Body::text("s=9; Path=/"))],
                body: Body(vec![0x89, b'P', b'N', b'G']),
                truncated_from: Some(100_000),
            },
            shadow: Some(Shadow {
                status: 500,
                response: Message::default(),
                verdict: "different".into(),
                differences: vec!["status".into()],
            }),
        };
        let mut b = a.clone();
        b.at_ns += 1_000_000;
        b.method = "GET".into();
        b.request.body = Body::default();
        b.key = None;
        b.shadow = None;
        b.fallback = true;
        a.request.truncated_from = None;
        vec![a, b]
    }

    #[test]
    fn export_has_har_1_2_structure_and_imports_back_equal() {
        let doc = export(&sample(), "0.1.0");
        let log = &doc["log"];
        assert_eq!(log["version"], "1.2");
        assert_eq!(log["creator"]["name"], "ficus");
        for en in log["entries"].as_array().unwrap() {
            // Every field HAR 1.2 requires, with its type.
            assert!(en["startedDateTime"].is_string() && en["time"].is_number());
            assert!(en["cache"].is_object() && en["timings"]["wait"].is_number());
            assert!(en["timings"]["send"].is_number() && en["timings"]["receive"].is_number());
            let r = &en["request"];
            for k in ["method", "url", "httpVersion"] {
                assert!(r[k].is_string(), "request.{k}");
            }
            for k in ["cookies", "headers", "queryString"] {
                assert!(r[k].is_array(), "request.{k}");
            }
            assert!(r["headersSize"].is_number() && r["bodySize"].is_number());
            let p = &en["response"];
            assert!(p["status"].is_number() && p["statusText"].is_string());
            assert!(p["httpVersion"].is_string() && p["redirectURL"].is_string());
            assert!(p["cookies"].is_array() && p["headers"].is_array());
            assert!(p["content"]["size"].is_number() && p["content"]["mimeType"].is_string());
            assert!(p["headersSize"].is_number() && p["bodySize"].is_number());
            // Custom fields start with an underscore.
            for k in en.as_object().unwrap().keys() {
                assert!(
                    [
                        "startedDateTime",
                        "time",
                        "request",
                        "response",
                        "cache",
                        "timings"
                    ]
                    .contains(&k.as_str())
                        || k.starts_with('_'),
                    "{k}"
                );
            }
        }
        let first = &log["entries"][0];
        assert_eq!(first["startedDateTime"], "2023-11-14T22:13:20.123456789Z");
        assert_eq!(first["request"]["url"], "http://shop.example/orders?x=1&y=");
        assert_eq!(
            first["request"]["queryString"],
            json!([{"name": "x", "value": "1"}, {"name": "y", "value": ""}])
        );
        assert_eq!(
            first["request"]["cookies"],
            json!([{"name": "a", "value": "1"}, {"name": "b", "value": "2"}])
        );
        assert_eq!(first["response"]["content"]["encoding"], "base64");
        // Back, equal.
        let back = import(&doc, "unused").unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn a_browsers_har_imports_with_what_har_has() {
        let doc = json!({"log": {"version": "1.2", "creator": {"name": "Firefox", "version": "120"},
        "entries": [{
            "startedDateTime": "2024-02-29T12:00:00.5+01:00",
            "time": 12.5,
            "request": {"method": "GET", "url": "https://shop.example/a/b?c=d#frag", "httpVersion": "HTTP/2",
                "cookies": [], "headers": [{"name": "Accept", "value": "*/*"}], "queryString": [], "headersSize": -1, "bodySize": 0},
            "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/2", "cookies": [], "headers": [],
                "content": {"size": 2, "mimeType": "text/plain", "text": "ok"}, "redirectURL": "", "headersSize": -1, "bodySize": 2},
            "cache": {}, "timings": {"send": 0, "wait": 12.5, "receive": 0}
        }]}});
        let ex = import(&doc, "shop").unwrap();
        assert_eq!(ex[0].route, "shop");
        assert_eq!(ex[0].target, "/a/b?c=d");
        assert_eq!(ex[0].request.header("accept"), Some("*/*"));
        assert_eq!(
            ex[0].at_ns,
            parse_rfc3339("2024-02-29T11:00:00.500Z").unwrap()
        );
        assert_eq!(ex[0].duration_ns, 12_500_000);
        assert_eq!(ex[0].response.body.0, b"ok");
        assert!(import(&json!({"log": {}}), "x")
            .unwrap_err()
            .0
            .contains("log.entries"));
    }

    #[test]
    fn dates_round_trip() {
        for ns in [
            0u64,
            951_782_400_000_000_001,
            1_700_000_000_123_456_789,
            4_102_444_800_000_000_000,
        ] {
            assert_eq!(parse_rfc3339(&rfc3339(ns)), Some(ns), "{}", rfc3339(ns));
        }
        assert_eq!(
            rfc3339(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z"),
            Some(951_782_400_000_000_000)
        );
        assert!(parse_rfc3339("yesterday").is_none());
        assert!(parse_rfc3339("2000-13-01T00:00:00Z").is_none());
    }
}
