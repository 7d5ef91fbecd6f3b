//! The response cache through real sockets: hits with `Age`, expiry, the `Cache-Control`
//! rules (no-store, private, max-age), `Vary`, no `Set-Cookie` or `Authorization` caching,
//! request coalescing (100 concurrent misses, one upstream request), stale-while-revalidate,
//! large bodies served unstored, and purge.

mod support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Request;
use support::*;

/// An upstream whose answers say how to cache them; each body is the number of times that
/// path was requested (so a re-fetch shows), plus the Accept-Language for `/vary`.
struct Origin {
    url: String,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl Origin {
    async fn start() -> Origin {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let counts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let c = counts.clone();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else {
                    continue;
                };
                let c = c.clone();
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let c = c.clone();
                            async move { Ok::<_, Infallible>(answer(&c, req).await) }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        Origin { url, counts }
    }

    fn count(&self, path: &str) -> usize {
        self.counts.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

async fn answer(
    counts: &Mutex<HashMap<String, usize>>,
    req: Request<hyper::body::Incoming>,
) -> http::Response<BoxBody> {
    let path = req.uri().path().to_string();
    let n = {
        let mut m = counts.lock().unwrap();
        let e = m.entry(path.clone()).or_default();
        *e += 1;
        *e
    };
    let mut b = http::Response::builder().header("content-type", "text/plain");
    let mut body = format!("{n}");
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match seg.as_slice() {
        ["max-age", s] => b = b.header("cache-control", format!("max-age={s}")),
        ["no-store"] => b = b.header("cache-control", "no-store"),
        ["private"] => b = b.header("cache-control", "private, max-age=60"),
        ["cookie"] => {
            b = b
                .header("cache-control", "max-age=60")
                .header("set-cookie", "s=1")
        }
        ["vary"] => {
            let lang = req
                .headers()
                .get("accept-language")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            body = format!("{n} {lang}");
            b = b
                .header("cache-control", "max-age=60")
                .header("vary", "Accept-Language");
        }
        ["slow", ms] => {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
            b = b.header("cache-control", "max-age=60");
        }
        ["swr"] => b = b.header("cache-control", "max-age=1, stale-while-revalidate=30"),
        ["big"] => {
            body = "x".repeat(3 * 1024 * 1024);
            b = b.header("cache-control", "max-age=60");
        }
        ["error"] => {
            b = b.status(503).header("cache-control", "max-age=60");
        }
        _ => {}
    }
    b.body(full(body)).unwrap()
}

fn config(cache: &str) -> String {
    format!(
        r#"
[[listener]]
bind = "127.0.0.1:0"
[upstream.legacy]
url = "{{legacy}}"
[[route]]
name = "api"
path_prefix = "/"
legacy = "legacy"
debug_header = true
[route.cache]
{cache}
[default]
legacy = "legacy"
[access_log]
enabled = false
"#
    )
}

async fn start(origin: &Origin, cache: &str) -> TestGateway {
    TestGateway::start(&config(cache), &[("legacy", origin.url.clone())]).await
}

/// (status, body, x-ficus-cache, age)
async fn fetch(
    gw: &TestGateway,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String, String) {
    let (s, h, body) = get(&gw.url(path), headers).await;
    (
        s.as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
        header(&h, "x-ficus-cache").to_string(),
        header(&h, "age").to_string(),
    )
}

#[tokio::test]
async fn a_hit_carries_age_and_expires_with_max_age() {
    let o = Origin::start().await;
    let gw = start(&o, "").await;
    assert_eq!(
        fetch(&gw, "/max-age/1", &[]).await,
        (200, "1".into(), "miss".into(), "".into())
    );
    let (s, body, how, age) = fetch(&gw, "/max-age/1", &[]).await;
    assert_eq!(
        (s, body.as_str(), how.as_str(), age.as_str()),
        (200, "1", "hit", "0")
    );
    let (_, h, _) = get(&gw.url("/max-age/1"), &[]).await;
    assert_eq!(header(&h, "x-ficus-upstream"), "cache");
    assert_eq!(o.count("/max-age/1"), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        fetch(&gw, "/max-age/1", &[]).await.1,
        "2",
        "expired, fetched again"
    );
    let text = gw.gateway().telemetry().prometheus();
    assert!(
        text.contains("ficus_cache_hits_total{route=\"api\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("ficus_cache_misses_total{route=\"api\"} 2"),
        "{text}"
    );
}

#[tokio::test]
async fn no_store_private_set_cookie_errors_and_authorization_are_not_cached() {
    let o = Origin::start().await;
    let gw = start(&o, "").await;
    for path in ["/no-store", "/private", "/cookie", "/error"] {
        fetch(&gw, path, &[]).await;
        let (_, body, how, _) = fetch(&gw, path, &[]).await;
        assert_eq!(body, "2", "{path} fetched again ({how})");
        assert_ne!(how, "hit", "{path}");
    }
    // A request with Authorization passes the cache (the answer may be the user's own).
    fetch(&gw, "/max-age/60", &[]).await;
    let (_, body, _, _) = fetch(&gw, "/max-age/60", &[("authorization", "Bearer x")]).await;
    assert_eq!(body, "2");
    assert_eq!(fetch(&gw, "/max-age/60", &[]).await.2, "hit");
    // Without an explicit lifetime nothing is kept, unless the route gives a ttl.
    fetch(&gw, "/plain", &[]).await;
    assert_eq!(fetch(&gw, "/plain", &[]).await.1, "2");
    let o2 = Origin::start().await;
    let gw2 = start(&o2, "ttl = \"60s\"").await;
    fetch(&gw2, "/plain", &[]).await;
    assert_eq!(
        fetch(&gw2, "/plain", &[]).await,
        (200, "1".into(), "hit".into(), "0".into())
    );
}

#[tokio::test]
async fn vary_keeps_one_answer_per_variant() {
    let o = Origin::start().await;
    let gw = start(&o, "").await;
    assert_eq!(
        fetch(&gw, "/vary", &[("accept-language", "en")]).await.1,
        "1 en"
    );
    assert_eq!(
        fetch(&gw, "/vary", &[("accept-language", "de")]).await.1,
        "2 de"
    );
    let (_, body, how, _) = fetch(&gw, "/vary", &[("accept-language", "en")]).await;
    assert_eq!((body.as_str(), how.as_str()), ("1 en", "hit"));
    let (_, body, how, _) = fetch(&gw, "/vary", &[("accept-language", "de")]).await;
    assert_eq!((body.as_str(), how.as_str()), ("2 de", "hit"));
}

#[tokio::test]
async fn a_hundred_concurrent_misses_make_one_upstream_request() {
    let o = Origin::start().await;
    let gw = Arc::new(start(&o, "").await);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let gw = gw.clone();
            tokio::spawn(async move { fetch(&gw, "/slow/300", &[]).await })
        })
        .collect();
    let mut how = HashMap::new();
    for t in tasks {
        let (s, body, h, _) = t.await.unwrap();
        assert_eq!(
            (s, body.as_str()),
            (200, "1"),
            "every client got the one answer"
        );
        *how.entry(h).or_insert(0) += 1;
    }
    assert_eq!(
        o.count("/slow/300"),
        1,
        "exactly one upstream request: {how:?}"
    );
    assert_eq!(how.get("miss"), Some(&1), "{how:?}");
}

#[tokio::test]
async fn stale_while_revalidate_answers_at_once_and_refreshes_in_the_background() {
    let o = Origin::start().await;
    let gw = start(&o, "").await;
    fetch(&gw, "/swr", &[]).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, body, how, _) = fetch(&gw, "/swr", &[]).await;
    assert_eq!((body.as_str(), how.as_str()), ("1", "stale"));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while o.count("/swr") < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the background refresh ran"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, body, how, _) = fetch(&gw, "/swr", &[]).await;
    assert_eq!(
        (body.as_str(), how.as_str()),
        ("2", "hit"),
        "the refreshed answer"
    );
}

#[tokio::test]
async fn a_body_over_max_entry_bytes_is_served_whole_and_not_stored() {
    let o = Origin::start().await;
    let gw = start(&o, "max_entry_bytes = \"1MiB\"").await;
    for i in 1..=2 {
        let (s, _, body) = get(&gw.url("/big"), &[]).await;
        assert_eq!((s.as_u16(), body.len()), (200, 3 * 1024 * 1024));
        assert_eq!(o.count("/big"), i);
    }
}

#[tokio::test]
async fn purge_empties_a_route_or_one_path() {
    let o = Origin::start().await;
    let gw = start(&o, "").await;
    fetch(&gw, "/max-age/60", &[]).await;
    fetch(&gw, "/max-age/61", &[]).await;
    let table = gw.gateway().table();
    let cache = table.routes()[0].cache.clone().unwrap();
    cache.purge(Some("/max-age/60"));
    assert_eq!(fetch(&gw, "/max-age/60", &[]).await.2, "miss");
    assert_eq!(fetch(&gw, "/max-age/61", &[]).await.2, "hit");
    cache.purge(None);
    assert_eq!(fetch(&gw, "/max-age/61", &[]).await.2, "miss");
}
