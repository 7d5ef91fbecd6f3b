//! The response cache through its public API: storing, expiry, eviction, purges, Vary,
//! stale-while-revalidate and request coalescing. moka runs on real time, so expiry tests
//! sleep for about a second; freshness classification uses `lookup_at` with explicit times.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ficus_protect::{CacheKey, CacheSpec, FetchError, Fetched, Lookup, ResponseCache, Served};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};

const GET: Method = Method::GET;

fn key<'a>(route: &'a str, path: &'a str) -> CacheKey<'a> {
    CacheKey {
        route,
        method: &GET,
        host: "shop.example",
        path_and_query: path,
    }
}

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

fn response(cache_control: &str, body: &str) -> Fetched {
    Fetched {
        status: StatusCode::OK,
        headers: headers(&[
            ("cache-control", cache_control),
            ("content-type", "text/plain"),
        ]),
        body: Bytes::from(body.to_owned()),
    }
}

async fn ok(fetched: Fetched) -> Result<Fetched, Infallible> {
    Ok(fetched)
}

async fn never() -> Result<Fetched, Infallible> {
    panic!("this request should not have fetched")
}

fn cache(spec: CacheSpec) -> ResponseCache {
    ResponseCache::new(spec).unwrap()
}

fn body(served: &Served) -> &[u8] {
    &served.response().body
}

#[tokio::test]
async fn stores_then_hits() {
    let cache = cache(CacheSpec::default());
    let req = HeaderMap::new();
    let k = key("orders", "/orders/1");
    let first = cache
        .get_or_fetch(&k, &req, ok(response("max-age=60", "one")))
        .await
        .unwrap();
    assert!(matches!(first, Served::Fetched { stored: true, .. }));
    assert_eq!(first.age(), None);
    let second = cache.get_or_fetch(&k, &req, never()).await.unwrap();
    match &second {
        Served::Hit { response, age } => {
            assert_eq!(*age, 0);
            assert_eq!(response.status, StatusCode::OK);
            assert_eq!(response.headers["content-type"], "text/plain");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(body(&second), b"one");
    // Another path, host or route is another key.
    for other in [
        key("orders", "/orders/2"),
        key("orders-v2", "/orders/1"),
        CacheKey {
            host: "other.example",
            ..k
        },
    ] {
        assert!(matches!(cache.lookup(&other, &req).await, Lookup::Miss));
    }
    // moka's sizes are settled by its maintenance pass.
    cache.run_pending_tasks().await;
    let c = cache.counters();
    assert_eq!((c.hits, c.misses, c.inserts, c.entries), (1, 4, 1, 1));
    assert!(c.bytes > 3, "{c:?}");
}

#[tokio::test]
async fn freshness_and_stale_while_revalidate_window() {
    let cache = cache(CacheSpec::default());
    let req = HeaderMap::new();
    let k = key("r", "/swr");
    cache
        .insert(
            &k,
            &req,
            Fetched {
                status: StatusCode::OK,
                headers: headers(&[
                    ("cache-control", "max-age=10, stale-while-revalidate=20"),
                    ("age", "3"),
                ]),
                body: Bytes::from_static(b"x"),
            },
        )
        .await;
    // Taken after the store, so every offset below is a little more than it says.
    let before = Instant::now();
    let s = Duration::from_secs;
    // max-age 10 minus the 3 it arrived with: fresh for 7 s, then stale for 20.
    match cache.lookup_at(&k, &req, before + s(1)).await {
        Lookup::Fresh(r, age) => {
            assert_eq!(age, 4);
            // Age is recomputed by the cache, never passed through.
            assert!(r.headers.get("age").is_none());
            assert_eq!(cache.age(&r, before + s(5)), 8);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        cache.lookup_at(&k, &req, before + s(8)).await,
        Lookup::Stale(_, 11)
    ));
    assert!(matches!(
        cache.lookup_at(&k, &req, before + s(26)).await,
        Lookup::Stale(..)
    ));
    assert!(matches!(
        cache.lookup_at(&k, &req, before + s(28)).await,
        Lookup::Miss
    ));
    let c = cache.counters();
    assert_eq!((c.hits, c.stale_hits, c.misses), (1, 2, 1));
}

#[tokio::test]
async fn default_swr_applies_only_when_response_is_silent() {
    let spec = CacheSpec {
        default_ttl: Some(Duration::from_secs(5)),
        stale_while_revalidate: Some(Duration::from_secs(30)),
        ..CacheSpec::default()
    };
    let cache = cache(spec);
    let req = HeaderMap::new();
    let t = Instant::now();
    let s = Duration::from_secs;
    cache
        .insert(
            &key("r", "/silent"),
            &req,
            Fetched {
                status: StatusCode::NOT_FOUND,
                headers: HeaderMap::new(),
                body: Bytes::new(),
            },
        )
        .await;
    cache
        .insert(
            &key("r", "/strict"),
            &req,
            response("max-age=5, must-revalidate", "s"),
        )
        .await;
    assert!(matches!(
        cache.lookup_at(&key("r", "/silent"), &req, t + s(20)).await,
        Lookup::Stale(..)
    ));
    assert!(matches!(
        cache.lookup_at(&key("r", "/strict"), &req, t + s(6)).await,
        Lookup::Miss
    ));
}

#[tokio::test]
async fn entries_expire_in_real_time() {
    let cache = cache(CacheSpec::default());
    let req = HeaderMap::new();
    let k = key("r", "/short");
    cache
        .get_or_fetch(&k, &req, ok(response("max-age=1", "v1")))
        .await
        .unwrap();
    assert!(matches!(
        cache.get_or_fetch(&k, &req, never()).await.unwrap(),
        Served::Hit { .. }
    ));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = cache
        .get_or_fetch(&k, &req, ok(response("max-age=1", "v2")))
        .await
        .unwrap();
    assert!(matches!(again, Served::Fetched { stored: true, .. }));
    assert_eq!(body(&again), b"v2");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    cache.run_pending_tasks().await;
    let c = cache.counters();
    assert_eq!(c.entries, 0, "{c:?}");
    assert!(c.expirations >= 1, "{c:?}");
}

#[tokio::test]
async fn stale_is_served_and_refreshed_once() {
    let cache = Arc::new(cache(CacheSpec::default()));
    let req = HeaderMap::new();
    let k = key("r", "/stale");
    cache
        .insert(
            &k,
            &req,
            response("max-age=1, stale-while-revalidate=5", "old"),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let served = cache.get_or_fetch(&k, &req, never()).await.unwrap();
    assert!(matches!(served, Served::Stale { .. }));
    assert_eq!(body(&served), b"old");

    // Two refreshes at once: one fetch; the other returns without fetching.
    let fetches = Arc::new(AtomicUsize::new(0));
    let refresh = |fetches: Arc<AtomicUsize>| {
        let cache = Arc::clone(&cache);
        async move {
            let req = HeaderMap::new();
            cache
                .refresh(&key("r", "/stale"), &req, async {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, Infallible>(response("max-age=60", "new"))
                })
                .await
                .unwrap()
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(refresh(Arc::clone(&fetches))),
        tokio::spawn(refresh(Arc::clone(&fetches)))
    );
    let mut stored = [a.unwrap(), b.unwrap()];
    stored.sort();
    assert_eq!(stored, [false, true]);
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    let fresh = cache.get_or_fetch(&k, &req, never()).await.unwrap();
    assert!(matches!(fresh, Served::Hit { .. }));
    assert_eq!(body(&fresh), b"new");
}

#[tokio::test]
async fn byte_bound_evicts() {
    let max_bytes = 20_000;
    let cache = cache(CacheSpec {
        max_bytes,
        max_entry_bytes: 4_000,
        ..CacheSpec::default()
    });
    let req = HeaderMap::new();
    let body = "x".repeat(1_000);
    for i in 0..50 {
        let path = format!("/item/{i}");
        assert!(
            cache
                .insert(&key("r", &path), &req, response("max-age=60", &body))
                .await
        );
    }
    cache.run_pending_tasks().await;
    let c = cache.counters();
    assert!(c.bytes <= max_bytes, "{c:?}");
    assert!(c.entries < 50 && c.entries > 0, "{c:?}");
    assert_eq!(c.evictions + c.entries, 50, "{c:?}");

    // Bodies over max_entry_bytes are served but never stored.
    let big = cache
        .get_or_fetch(
            &key("r", "/big"),
            &req,
            ok(response("max-age=60", &"y".repeat(5_000))),
        )
        .await
        .unwrap();
    assert!(matches!(big, Served::Fetched { stored: false, .. }));
    assert_eq!(body_len(&big), 5_000);
    assert_eq!(cache.counters().too_large, 1);
}

fn body_len(s: &Served) -> usize {
    s.response().body.len()
}

#[tokio::test]
async fn purge_by_route_and_key() {
    let cache = cache(CacheSpec::default());
    let req = HeaderMap::new();
    let paths = ["/x", "/x?page=2", "/xy", "/y"];
    for route in ["a", "b"] {
        for path in paths {
            cache
                .insert(&key(route, path), &req, response("max-age=60", path))
                .await;
        }
    }
    let other_host = CacheKey {
        host: "other.example",
        ..key("b", "/x")
    };
    cache
        .insert(&other_host, &req, response("max-age=60", "h"))
        .await;

    cache.purge_route("a");
    cache.purge_key("b", "/x");
    let present = |l: Lookup| !matches!(l, Lookup::Miss);
    for path in paths {
        assert!(
            !present(cache.lookup(&key("a", path), &req).await),
            "a {path}"
        );
    }
    assert!(!present(cache.lookup(&key("b", "/x"), &req).await));
    assert!(!present(cache.lookup(&key("b", "/x?page=2"), &req).await));
    assert!(!present(cache.lookup(&other_host, &req).await));
    assert!(present(cache.lookup(&key("b", "/xy"), &req).await));
    assert!(present(cache.lookup(&key("b", "/y"), &req).await));

    // A path with a query purges only that query.
    cache
        .insert(&key("b", "/x?page=2"), &req, response("max-age=60", "p2"))
        .await;
    cache
        .insert(&key("b", "/x?page=3"), &req, response("max-age=60", "p3"))
        .await;
    cache.purge_key("b", "/x?page=2");
    assert!(!present(cache.lookup(&key("b", "/x?page=2"), &req).await));
    assert!(present(cache.lookup(&key("b", "/x?page=3"), &req).await));

    cache.run_pending_tasks().await;
    assert_eq!(cache.counters().entries, 3);
}

#[tokio::test]
async fn vary_variants_match_and_are_bounded() {
    let cache = cache(CacheSpec {
        max_variants: 2,
        ..CacheSpec::default()
    });
    let k = key("r", "/v");
    let varying = |body: &str| Fetched {
        status: StatusCode::OK,
        headers: headers(&[("cache-control", "max-age=60"), ("vary", "Accept-Encoding")]),
        body: Bytes::from(body.to_owned()),
    };
    let gzip = headers(&[("accept-encoding", "gzip")]);
    let br = headers(&[("accept-encoding", "br")]);
    let plain = HeaderMap::new();
    cache
        .get_or_fetch(&k, &gzip, ok(varying("gz")))
        .await
        .unwrap();
    assert!(matches!(cache.lookup(&k, &br).await, Lookup::Miss));
    assert!(matches!(cache.lookup(&k, &plain).await, Lookup::Miss));
    let stored = cache
        .get_or_fetch(&k, &br, ok(varying("br")))
        .await
        .unwrap();
    assert!(matches!(stored, Served::Fetched { stored: true, .. }));
    assert_eq!(
        body(&cache.get_or_fetch(&k, &gzip, never()).await.unwrap()),
        b"gz"
    );
    assert_eq!(
        body(&cache.get_or_fetch(&k, &br, never()).await.unwrap()),
        b"br"
    );
    // A third variant pushes out the oldest (gzip).
    cache
        .get_or_fetch(&k, &plain, ok(varying("plain")))
        .await
        .unwrap();
    assert_eq!(
        body(&cache.get_or_fetch(&k, &plain, never()).await.unwrap()),
        b"plain"
    );
    assert_eq!(
        body(&cache.get_or_fetch(&k, &br, never()).await.unwrap()),
        b"br"
    );
    assert!(matches!(cache.lookup(&k, &gzip).await, Lookup::Miss));
    // Re-storing a variant replaces it rather than adding a copy.
    cache.insert(&k, &br, varying("br2")).await;
    assert_eq!(
        body(&cache.get_or_fetch(&k, &br, never()).await.unwrap()),
        b"br2"
    );
    assert_eq!(
        body(&cache.get_or_fetch(&k, &plain, never()).await.unwrap()),
        b"plain"
    );

    // Vary: * is never stored.
    let star = Fetched {
        status: StatusCode::OK,
        headers: headers(&[("cache-control", "max-age=60"), ("vary", "*")]),
        body: Bytes::new(),
    };
    assert!(!cache.insert(&key("r", "/star"), &plain, star).await);
}

#[tokio::test]
async fn uncacheable_requests_and_responses_are_not_stored() {
    let cache = cache(CacheSpec::default());
    let plain = HeaderMap::new();
    // Authorization: bypass, fetched, not stored.
    let auth = headers(&[("authorization", "Bearer t")]);
    let k = key("r", "/me");
    let served = cache
        .get_or_fetch(&k, &auth, ok(response("max-age=60", "mine")))
        .await
        .unwrap();
    assert!(matches!(served, Served::Fetched { stored: false, .. }));
    assert!(matches!(cache.lookup(&k, &plain).await, Lookup::Miss));
    // Set-Cookie and private responses: served, not stored.
    let cookie = Fetched {
        status: StatusCode::OK,
        headers: headers(&[("cache-control", "max-age=60"), ("set-cookie", "s=1")]),
        body: Bytes::from_static(b"c"),
    };
    let served = cache
        .get_or_fetch(&key("r", "/c"), &plain, ok(cookie))
        .await
        .unwrap();
    assert!(matches!(served, Served::Fetched { stored: false, .. }));
    assert_eq!(body(&served), b"c");
    let served = cache
        .get_or_fetch(
            &key("r", "/p"),
            &plain,
            ok(response("private, max-age=60", "p")),
        )
        .await
        .unwrap();
    assert!(matches!(served, Served::Fetched { stored: false, .. }));
    // A non-GET never touches the cache.
    let post = CacheKey {
        method: &Method::POST,
        ..key("r", "/c")
    };
    cache
        .get_or_fetch(&post, &plain, ok(response("max-age=60", "x")))
        .await
        .unwrap();
    let c = cache.counters();
    assert_eq!(
        (c.bypassed, c.uncacheable, c.inserts, c.entries),
        (2, 2, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_misses_make_one_fetch() {
    let cache = Arc::new(cache(CacheSpec::default()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let cache = Arc::clone(&cache);
        let fetches = Arc::clone(&fetches);
        tasks.push(tokio::spawn(async move {
            let req = headers(&[("accept", "application/json")]);
            let served = cache
                .get_or_fetch(&key("orders", "/orders/hot"), &req, async {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok::<_, Infallible>(response("max-age=60", "hot body"))
                })
                .await
                .unwrap();
            served
        }));
    }
    let mut fetched = 0;
    for t in tasks {
        let served = t.await.unwrap();
        assert_eq!(body(&served), b"hot body");
        if matches!(served, Served::Fetched { .. }) {
            fetched += 1;
        }
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    assert_eq!(fetched, 1);
    let c = cache.counters();
    assert_eq!(c.misses, 1, "{c:?}");
    assert_eq!(c.coalesced + c.hits, 99, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncacheable_response_is_not_shared_with_waiters() {
    let cache = Arc::new(cache(CacheSpec::default()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let cache = Arc::clone(&cache);
        let fetches = Arc::clone(&fetches);
        tasks.push(tokio::spawn(async move {
            let served = cache
                .get_or_fetch(&key("r", "/private"), &HeaderMap::new(), async {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, Infallible>(response("private, max-age=60", &format!("for {i}")))
                })
                .await
                .unwrap();
            (i, served)
        }));
    }
    for t in tasks {
        let (i, served) = t.await.unwrap();
        // Everyone gets their own response, never someone else's.
        assert_eq!(body(&served), format!("for {i}").as_bytes());
        assert!(matches!(served, Served::Fetched { stored: false, .. }));
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 10);
    let c = cache.counters();
    assert_eq!((c.misses, c.uncacheable, c.coalesced), (10, 10, 0), "{c:?}");
}

#[derive(Debug, PartialEq)]
struct Boom;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_fetch_fails_its_waiters_once() {
    let cache = Arc::new(cache(CacheSpec::default()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let cache = Arc::clone(&cache);
        let fetches = Arc::clone(&fetches);
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_fetch(&key("r", "/down"), &HeaderMap::new(), async {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err::<Fetched, _>(Boom)
                })
                .await
        }));
    }
    let mut own = 0;
    let mut leader = 0;
    for t in tasks {
        match t.await.unwrap() {
            Err(FetchError::Fetch(Boom)) => own += 1,
            Err(FetchError::Leader) => leader += 1,
            Ok(s) => panic!("{s:?}"),
        }
    }
    assert_eq!((own, leader), (1, 9));
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_leader_hands_over_to_a_waiter() {
    let cache = Arc::new(cache(CacheSpec::default()));
    let leader = {
        let cache = Arc::clone(&cache);
        tokio::spawn(async move {
            cache
                .get_or_fetch(&key("r", "/slow"), &HeaderMap::new(), async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok::<_, Infallible>(response("max-age=60", "never"))
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let waiter = {
        let cache = Arc::clone(&cache);
        tokio::spawn(async move {
            cache
                .get_or_fetch(
                    &key("r", "/slow"),
                    &HeaderMap::new(),
                    ok(response("max-age=60", "mine")),
                )
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        !waiter.is_finished(),
        "the waiter should be waiting for the leader"
    );
    leader.abort();
    let served = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("waiter took over")
        .unwrap()
        .unwrap();
    assert!(matches!(served, Served::Fetched { stored: true, .. }));
    assert_eq!(body(&served), b"mine");
}

#[tokio::test]
async fn invalid_specs_are_refused() {
    let err = ResponseCache::new(CacheSpec {
        max_bytes: 0,
        ..CacheSpec::default()
    })
    .unwrap_err();
    assert_eq!(err.field, "cache.max_bytes");
    let err = ResponseCache::new(CacheSpec {
        max_variants: 0,
        ..CacheSpec::default()
    })
    .unwrap_err();
    assert_eq!(err.field, "cache.max_variants");
}
