//! The HTTP response cache for GETs: a byte-bounded moka cache of buffered responses with
//! per-entry expiry, `Vary` variants, stale-while-revalidate and request coalescing.
//!
//! Keys: the primary key is (route, method, host, path and query), hashed to 128 bits so a
//! lookup allocates nothing; the stored entry keeps the key's text and is checked against the
//! request, so a hash collision is a miss, never a wrong response. One moka entry holds every
//! stored variant of a primary key (newest first, at most `max_variants`), each with the
//! request values of its `Vary` names. moka's expiry for the entry is the latest moment any
//! variant may still be served (fresh or stale); finer decisions happen on lookup.
//!
//! Coalescing uses an in-flight map rather than moka's `try_get_with`: moka coalesces on the
//! primary key and would insert whatever the first fetch returned, while here a fetch may
//! produce another `Vary` variant than a waiter needs, or a response that must not be shared
//! at all. Rules:
//! - concurrent misses for one key (and, once known, one set of `Vary` values) make one fetch;
//!   the others wait for it and get the same `Arc`ed response;
//! - a response that turns out to be for another variant sends the waiter round again;
//! - a response that must not be stored (`private`, `Set-Cookie`, `no-store`, ...) is NOT
//!   handed to the waiters, since it may belong to the one client that asked: every waiter
//!   fetches for itself, and the key is marked uncacheable for `uncacheable_ttl` so later
//!   requests skip the queue (Varnish's hit-for-pass);
//! - a failed fetch fails its waiters with [`FetchError::Leader`] instead of multiplying the
//!   load on an upstream that is already failing; a leader that is cancelled hands the
//!   fetch to one of the waiters.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderMap, AGE};
use http::{Method, StatusCode};
use moka::future::Cache;
use moka::notification::RemovalCause;
use moka::Expiry;
use tokio::sync::watch;
use xxhash_rust::xxh3::Xxh3Default;

use crate::cache_policy::{request_cacheable, response_ttl, Freshness, Vary, VaryKey};
use crate::SpecError;

/// How big the cache is and what it stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSpec {
    /// Upper bound on the stored bytes (status, headers and body of every variant).
    pub max_bytes: u64,
    /// Bodies larger than this are served but not stored (default 1 MiB).
    pub max_entry_bytes: u64,
    /// Lifetime for cacheable responses that state none (`None`: store only those that do).
    pub default_ttl: Option<Duration>,
    /// Stale-while-revalidate window for responses that do not state one.
    pub stale_while_revalidate: Option<Duration>,
    /// `Vary` variants kept per primary key (default 8); the oldest goes first.
    pub max_variants: usize,
    /// Cache requests carrying `Authorization` (only when responses do not depend on it).
    pub allow_authorization: bool,
    /// Store responses carrying `Set-Cookie` (the cookie is then served to everyone).
    pub allow_set_cookie: bool,
    /// How long a key whose response was uncacheable skips coalescing (0: never marked).
    pub uncacheable_ttl: Duration,
}

impl Default for CacheSpec {
    fn default() -> Self {
        CacheSpec {
            max_bytes: 64 << 20,
            max_entry_bytes: 1 << 20,
            default_ttl: None,
            stale_while_revalidate: None,
            max_variants: 8,
            allow_authorization: false,
            allow_set_cookie: false,
            uncacheable_ttl: Duration::from_secs(10),
        }
    }
}

impl CacheSpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.max_bytes == 0 {
            return Err(SpecError::new(
                "cache.max_bytes",
                "must be above 0; disable the cache on the route instead",
            ));
        }
        if self.max_entry_bytes > self.max_bytes {
            return Err(SpecError::new(
                "cache.max_entry_bytes",
                "must not exceed max_bytes",
            ));
        }
        if self.max_variants == 0 {
            return Err(SpecError::new(
                "cache.max_variants",
                "must be at least 1; 8 is the default",
            ));
        }
        Ok(())
    }
}

/// The primary cache key of a request, borrowed from it.
#[derive(Debug, Clone, Copy)]
pub struct CacheKey<'a> {
    pub route: &'a str,
    pub method: &'a Method,
    pub host: &'a str,
    /// The path and query exactly as received (`/orders/1?expand=items`).
    pub path_and_query: &'a str,
}

impl CacheKey<'_> {
    fn hash(&self) -> u128 {
        let mut h = Xxh3Default::new();
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        for part in [
            self.route,
            self.method.as_str(),
            self.host,
            self.path_and_query,
        ] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.digest128()
    }
}

/// A response as the upstream sent it, body buffered.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A response held by the cache (or, from [`Served::Fetched`] with `stored: false`, one that
/// was not stored).
#[derive(Debug)]
pub struct CachedResponse {
    pub status: StatusCode,
    /// The upstream's headers less `Age`; set `Age` from [`CachedResponse::age_at`].
    pub headers: HeaderMap,
    pub body: Bytes,
    pub stored_at: Instant,
    /// `stale_while_revalidate` is always `Some`: the response's own or the cache default.
    pub freshness: Freshness,
    vary: VaryKey,
}

impl CachedResponse {
    fn unstored(fetched: Fetched, now: Instant) -> CachedResponse {
        CachedResponse {
            status: fetched.status,
            headers: fetched.headers,
            body: fetched.body,
            stored_at: now,
            freshness: Freshness {
                ttl: Duration::ZERO,
                stale_while_revalidate: Some(Duration::ZERO),
                initial_age: Duration::ZERO,
            },
            vary: VaryKey::default(),
        }
    }

    /// The `Age` header value at `now`: the age it arrived with plus the time stored.
    pub fn age_at(&self, now: Instant) -> u64 {
        (self.freshness.initial_age + now.saturating_duration_since(self.stored_at)).as_secs()
    }

    /// The `Vary` values this response was stored under.
    pub fn vary_key(&self) -> &VaryKey {
        &self.vary
    }

    fn swr(&self) -> Duration {
        self.freshness.stale_while_revalidate.unwrap_or_default()
    }

    /// Until when this response may be served at all.
    fn servable_until(&self) -> Instant {
        self.stored_at + self.freshness.ttl + self.swr()
    }

    fn weight(&self) -> usize {
        // Fixed overhead approximates the struct, the Arc and the map slot.
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 32)
            .sum();
        128 + headers + self.body.len() + self.vary.weight()
    }
}

/// The answer of [`ResponseCache::lookup`].
#[derive(Debug, Clone)]
pub enum Lookup {
    /// Serve it, with `Age: age`.
    Fresh(Arc<CachedResponse>, u64),
    /// Serve it, with `Age: age`, and refresh it in the background
    /// ([`ResponseCache::refresh`]).
    Stale(Arc<CachedResponse>, u64),
    Miss,
}

/// The answer of [`ResponseCache::get_or_fetch`].
#[derive(Debug, Clone)]
pub enum Served {
    /// From the cache, fresh.
    Hit {
        response: Arc<CachedResponse>,
        age: u64,
    },
    /// From the cache, stale within stale-while-revalidate: spawn [`ResponseCache::refresh`].
    Stale {
        response: Arc<CachedResponse>,
        age: u64,
    },
    /// Fetched by a concurrent request for the same key and shared with this one.
    Coalesced {
        response: Arc<CachedResponse>,
        age: u64,
    },
    /// Fetched by this call's own `fetch`; `stored` says whether it went into the cache.
    Fetched {
        response: Arc<CachedResponse>,
        stored: bool,
    },
}

impl Served {
    pub fn response(&self) -> &Arc<CachedResponse> {
        match self {
            Served::Hit { response, .. }
            | Served::Stale { response, .. }
            | Served::Coalesced { response, .. }
            | Served::Fetched { response, .. } => response,
        }
    }

    /// The `Age` to send, `None` for a response this call fetched itself (its upstream
    /// headers go out unchanged).
    pub fn age(&self) -> Option<u64> {
        match self {
            Served::Hit { age, .. } | Served::Stale { age, .. } | Served::Coalesced { age, .. } => {
                Some(*age)
            }
            Served::Fetched { .. } => None,
        }
    }
}

/// Why [`ResponseCache::get_or_fetch`] has no response.
#[derive(Debug)]
pub enum FetchError<E> {
    /// This call's own fetch failed.
    Fetch(E),
    /// This call waited for another request's fetch of the same key, and that failed; treat it
    /// like an upstream error (answer 502/503 or fall back), do not retry into the cache.
    Leader,
}

impl<E: std::fmt::Display> std::fmt::Display for FetchError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Fetch(e) => write!(f, "upstream fetch failed: {e}"),
            FetchError::Leader => f.write_str("the coalesced upstream fetch for this key failed"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for FetchError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FetchError::Fetch(e) => Some(e),
            FetchError::Leader => None,
        }
    }
}

/// Snapshot of one cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheCounters {
    /// Served fresh from the cache.
    pub hits: u64,
    /// Served stale within stale-while-revalidate.
    pub stale_hits: u64,
    /// `get_or_fetch` calls that fetched for themselves, plus `lookup` calls that found
    /// nothing servable.
    pub misses: u64,
    /// Requests answered by another request's fetch.
    pub coalesced: u64,
    /// Requests the cache did not apply to (not a GET, `Authorization`, `no-cache`, ...).
    pub bypassed: u64,
    /// Responses stored.
    pub inserts: u64,
    /// Fetched responses the policy refused to store.
    pub uncacheable: u64,
    /// Cacheable responses larger than `max_entry_bytes`.
    pub too_large: u64,
    /// Entries dropped to stay within `max_bytes`.
    pub evictions: u64,
    /// Entries dropped because no variant could be served any more.
    pub expirations: u64,
    /// Weighted size now (approximate between maintenance runs).
    pub bytes: u64,
    /// Entries (primary keys) now.
    pub entries: u64,
}

#[derive(Default)]
struct Stats {
    hits: AtomicU64,
    stale_hits: AtomicU64,
    misses: AtomicU64,
    coalesced: AtomicU64,
    bypassed: AtomicU64,
    inserts: AtomicU64,
    uncacheable: AtomicU64,
    too_large: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// All stored variants of one primary key.
#[derive(Clone)]
struct Slot(Arc<SlotInner>);

struct SlotInner {
    route: Box<str>,
    method: Method,
    host: Box<str>,
    path_and_query: Box<str>,
    /// Newest first.
    variants: Vec<Arc<CachedResponse>>,
    weight: u32,
    servable_until: Instant,
}

impl SlotInner {
    fn is_for(&self, key: &CacheKey<'_>) -> bool {
        *self.path_and_query == *key.path_and_query
            && *self.host == *key.host
            && *self.route == *key.route
            && self.method == *key.method
    }

    /// Whether `path` names this entry: exactly, or as its path without the query.
    fn matches_path(&self, path: &str) -> bool {
        let stored = &*self.path_and_query;
        stored == path
            || (!path.contains('?')
                && stored.len() > path.len()
                && stored.starts_with(path)
                && stored.as_bytes()[path.len()] == b'?')
    }
}

struct SlotExpiry;

impl Expiry<u128, Slot> for SlotExpiry {
    fn expire_after_create(&self, _: &u128, slot: &Slot, created_at: Instant) -> Option<Duration> {
        Some(slot.0.servable_until.saturating_duration_since(created_at))
    }

    fn expire_after_update(
        &self,
        _: &u128,
        slot: &Slot,
        updated_at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(slot.0.servable_until.saturating_duration_since(updated_at))
    }
}

/// What a finished fetch tells the requests that waited for it.
#[derive(Clone)]
enum FlightOutcome {
    /// A shareable response (stored, or cacheable but too large to store).
    Shared(Arc<CachedResponse>),
    /// Must not be shared: each waiter fetches for itself.
    Uncacheable,
    Failed,
}

type FlightMap = Mutex<HashMap<u128, watch::Receiver<Option<FlightOutcome>>>>;

/// The fetch in progress for one flight key; removes itself from the map when dropped, which
/// also wakes the waiters if it never finished (they then take over).
struct Flight<'a> {
    flights: &'a FlightMap,
    key: u128,
    sender: watch::Sender<Option<FlightOutcome>>,
}

impl Flight<'_> {
    fn finish(self, outcome: FlightOutcome) {
        self.sender.send_replace(Some(outcome));
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

enum Join<'a> {
    Lead(Flight<'a>),
    Follow(watch::Receiver<Option<FlightOutcome>>),
}

/// A lookup's result plus what coalescing needs to know.
struct Found {
    lookup: Lookup,
    flight_key: u128,
}

/// The response cache; share it behind an `Arc`.
pub struct ResponseCache {
    spec: CacheSpec,
    entries: Cache<u128, Slot>,
    /// Keys recently found uncacheable: fetched directly, without coalescing.
    passes: Option<Cache<u128, ()>>,
    flights: FlightMap,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("spec", &self.spec)
            .field("counters", &self.counters())
            .finish()
    }
}

impl ResponseCache {
    pub fn new(spec: CacheSpec) -> Result<ResponseCache, SpecError> {
        spec.validate()?;
        let stats = Arc::new(Stats::default());
        let listener_stats = Arc::clone(&stats);
        let entries = Cache::builder()
            .max_capacity(spec.max_bytes)
            .weigher(|_: &u128, slot: &Slot| slot.0.weight)
            .expire_after(SlotExpiry)
            .support_invalidation_closures()
            .eviction_listener(move |_, _, cause| match cause {
                RemovalCause::Size => bump(&listener_stats.evictions),
                RemovalCause::Expired => bump(&listener_stats.expirations),
                RemovalCause::Explicit | RemovalCause::Replaced => {}
            })
            .build();
        let passes = (!spec.uncacheable_ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(10_000)
                .time_to_live(spec.uncacheable_ttl)
                .build()
        });
        Ok(ResponseCache {
            spec,
            entries,
            passes,
            flights: Mutex::new(HashMap::new()),
            stats,
        })
    }

    pub fn spec(&self) -> &CacheSpec {
        &self.spec
    }

    /// Whether the cache applies to this request at all (see
    /// [`crate::cache_policy::request_cacheable`]).
    pub fn applies_to(&self, method: &Method, req_headers: &HeaderMap) -> bool {
        request_cacheable(method, req_headers, self.spec.allow_authorization)
    }

    /// Looks a request up without fetching.
    pub async fn lookup(&self, key: &CacheKey<'_>, req_headers: &HeaderMap) -> Lookup {
        self.lookup_at(key, req_headers, Instant::now()).await
    }

    /// [`ResponseCache::lookup`] as of `now` (at or after the store time, before moka's own
    /// expiry removes the entry).
    pub async fn lookup_at(
        &self,
        key: &CacheKey<'_>,
        req_headers: &HeaderMap,
        now: Instant,
    ) -> Lookup {
        let lookup = self.find(key, key.hash(), req_headers, now).await.lookup;
        match &lookup {
            Lookup::Fresh(..) => bump(&self.stats.hits),
            Lookup::Stale(..) => bump(&self.stats.stale_hits),
            Lookup::Miss => bump(&self.stats.misses),
        }
        lookup
    }

    async fn find(
        &self,
        key: &CacheKey<'_>,
        primary: u128,
        req_headers: &HeaderMap,
        now: Instant,
    ) -> Found {
        let miss = |flight_key| Found {
            lookup: Lookup::Miss,
            flight_key,
        };
        let Some(slot) = self.entries.get(&primary).await else {
            return miss(primary);
        };
        if !slot.0.is_for(key) {
            return miss(primary);
        }
        for variant in &slot.0.variants {
            if !variant.vary.matches(req_headers) {
                continue;
            }
            let age = variant.age_at(now);
            let elapsed = now.saturating_duration_since(variant.stored_at);
            let lookup = if elapsed < variant.freshness.ttl {
                Lookup::Fresh(Arc::clone(variant), age)
            } else if elapsed < variant.freshness.ttl + variant.swr() {
                Lookup::Stale(Arc::clone(variant), age)
            } else {
                Lookup::Miss
            };
            return Found {
                lookup,
                flight_key: flight_key(primary, &variant.vary, req_headers),
            };
        }
        // Requests that differ in the newest variant's Vary values fetch separately.
        let flight_key = slot.0.variants.first().map_or(primary, |newest| {
            flight_key(primary, &newest.vary, req_headers)
        });
        miss(flight_key)
    }

    /// Answers a request from the cache, or by running `fetch` (at most one fetch per key at
    /// a time; concurrent callers wait for it), storing what may be stored.
    ///
    /// `fetch` is only polled if this call has to fetch for itself; the response of a request
    /// the cache does not apply to is fetched and returned unstored. On [`Served::Stale`] the
    /// caller serves the stale response and spawns [`ResponseCache::refresh`].
    pub async fn get_or_fetch<F, E>(
        &self,
        key: &CacheKey<'_>,
        req_headers: &HeaderMap,
        fetch: F,
    ) -> Result<Served, FetchError<E>>
    where
        F: Future<Output = Result<Fetched, E>>,
    {
        if !self.applies_to(key.method, req_headers) {
            bump(&self.stats.bypassed);
            let fetched = fetch.await.map_err(FetchError::Fetch)?;
            return Ok(Served::Fetched {
                response: Arc::new(CachedResponse::unstored(fetched, Instant::now())),
                stored: false,
            });
        }
        let primary = key.hash();
        let mut fetch = Some(fetch);
        loop {
            let found = self.find(key, primary, req_headers, Instant::now()).await;
            match found.lookup {
                Lookup::Fresh(response, age) => {
                    bump(&self.stats.hits);
                    return Ok(Served::Hit { response, age });
                }
                Lookup::Stale(response, age) => {
                    bump(&self.stats.stale_hits);
                    return Ok(Served::Stale { response, age });
                }
                Lookup::Miss => {}
            }
            let passing = match &self.passes {
                Some(passes) => passes.contains_key(&primary),
                None => false,
            };
            if passing {
                return self
                    .fetch_alone(key, primary, req_headers, &mut fetch)
                    .await;
            }
            match self.join(found.flight_key) {
                Join::Lead(flight) => {
                    // A flight for this key may have finished between the lookup and joining.
                    if let Lookup::Fresh(response, age) = self
                        .find(key, primary, req_headers, Instant::now())
                        .await
                        .lookup
                    {
                        bump(&self.stats.hits);
                        flight.finish(FlightOutcome::Shared(Arc::clone(&response)));
                        return Ok(Served::Hit { response, age });
                    }
                    bump(&self.stats.misses);
                    let fetch = fetch
                        .take()
                        .expect("fetch is only taken once, then returned");
                    let fetched = match fetch.await {
                        Ok(fetched) => fetched,
                        Err(e) => {
                            flight.finish(FlightOutcome::Failed);
                            return Err(FetchError::Fetch(e));
                        }
                    };
                    let (response, outcome, stored) =
                        self.store(key, primary, req_headers, fetched).await;
                    flight.finish(outcome);
                    return Ok(Served::Fetched { response, stored });
                }
                Join::Follow(mut receiver) => {
                    let outcome = match receiver.wait_for(Option::is_some).await {
                        Ok(outcome) => outcome.clone(),
                        Err(_) => None,
                    };
                    match outcome {
                        Some(FlightOutcome::Shared(response))
                            if response.vary.matches(req_headers) =>
                        {
                            bump(&self.stats.coalesced);
                            let age = response.age_at(Instant::now());
                            return Ok(Served::Coalesced { response, age });
                        }
                        // Another variant: look again, now that its Vary is known.
                        Some(FlightOutcome::Shared(_)) => {}
                        Some(FlightOutcome::Uncacheable) => {
                            return self
                                .fetch_alone(key, primary, req_headers, &mut fetch)
                                .await;
                        }
                        Some(FlightOutcome::Failed) => {
                            bump(&self.stats.coalesced);
                            return Err(FetchError::Leader);
                        }
                        // The leader was cancelled: try again, maybe as the leader.
                        None => {}
                    }
                }
            }
        }
    }

    /// Refreshes a stale entry: runs `fetch` and stores the result, unless a fetch for the
    /// same key is already running (then returns `Ok(false)` without polling `fetch`).
    /// Returns whether a response was stored. Meant for a spawned task after
    /// [`Served::Stale`] or [`Lookup::Stale`].
    pub async fn refresh<F, E>(
        &self,
        key: &CacheKey<'_>,
        req_headers: &HeaderMap,
        fetch: F,
    ) -> Result<bool, FetchError<E>>
    where
        F: Future<Output = Result<Fetched, E>>,
    {
        let primary = key.hash();
        let found = self.find(key, primary, req_headers, Instant::now()).await;
        let Join::Lead(flight) = self.join(found.flight_key) else {
            return Ok(false);
        };
        match fetch.await {
            Ok(fetched) => {
                let (_, outcome, stored) = self.store(key, primary, req_headers, fetched).await;
                flight.finish(outcome);
                Ok(stored)
            }
            Err(e) => {
                flight.finish(FlightOutcome::Failed);
                Err(FetchError::Fetch(e))
            }
        }
    }

    /// Stores a response obtained elsewhere, as `get_or_fetch` would. Returns whether it was
    /// stored.
    pub async fn insert(
        &self,
        key: &CacheKey<'_>,
        req_headers: &HeaderMap,
        fetched: Fetched,
    ) -> bool {
        if !self.applies_to(key.method, req_headers) {
            return false;
        }
        self.store(key, key.hash(), req_headers, fetched).await.2
    }

    async fn fetch_alone<F, E>(
        &self,
        key: &CacheKey<'_>,
        primary: u128,
        req_headers: &HeaderMap,
        fetch: &mut Option<F>,
    ) -> Result<Served, FetchError<E>>
    where
        F: Future<Output = Result<Fetched, E>>,
    {
        bump(&self.stats.misses);
        let fetch = fetch
            .take()
            .expect("fetch is only taken once, then returned");
        let fetched = fetch.await.map_err(FetchError::Fetch)?;
        let (response, _, stored) = self.store(key, primary, req_headers, fetched).await;
        Ok(Served::Fetched { response, stored })
    }

    fn join(&self, flight_key: u128) -> Join<'_> {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(receiver) = flights.get(&flight_key) {
            return Join::Follow(receiver.clone());
        }
        let (sender, receiver) = watch::channel(None);
        flights.insert(flight_key, receiver);
        Join::Lead(Flight {
            flights: &self.flights,
            key: flight_key,
            sender,
        })
    }

    /// Applies the storage policy to a fetched response and stores it if allowed.
    async fn store(
        &self,
        key: &CacheKey<'_>,
        primary: u128,
        req_headers: &HeaderMap,
        fetched: Fetched,
    ) -> (Arc<CachedResponse>, FlightOutcome, bool) {
        let now = Instant::now();
        let policy = response_ttl(
            fetched.status,
            &fetched.headers,
            self.spec.default_ttl,
            self.spec.allow_set_cookie,
        );
        let Some(mut freshness) = policy else {
            bump(&self.stats.uncacheable);
            if let Some(passes) = &self.passes {
                passes.insert(primary, ()).await;
            }
            let response = Arc::new(CachedResponse::unstored(fetched, now));
            return (response, FlightOutcome::Uncacheable, false);
        };
        freshness.stale_while_revalidate = Some(
            freshness
                .stale_while_revalidate
                .or(self.spec.stale_while_revalidate)
                .unwrap_or_default(),
        );
        let vary = match Vary::parse(&fetched.headers) {
            Vary::Names(names) => VaryKey::capture(&names, req_headers),
            // `Vary: *` never gets here: response_ttl refuses it.
            Vary::None | Vary::Any => VaryKey::default(),
        };
        let mut headers = fetched.headers;
        headers.remove(AGE);
        let response = Arc::new(CachedResponse {
            status: fetched.status,
            headers,
            body: fetched.body,
            stored_at: now,
            freshness,
            vary,
        });
        let outcome = FlightOutcome::Shared(Arc::clone(&response));
        if response.body.len() as u64 > self.spec.max_entry_bytes {
            bump(&self.stats.too_large);
            return (response, outcome, false);
        }
        if let Some(passes) = &self.passes {
            passes.invalidate(&primary).await;
        }
        let new = Arc::clone(&response);
        let max_variants = self.spec.max_variants;
        self.entries
            .entry(primary)
            .and_upsert_with(|existing| {
                let existing = existing.map(|entry| entry.into_value());
                std::future::ready(merge(existing, key, new, max_variants, now))
            })
            .await;
        bump(&self.stats.inserts);
        (response, outcome, true)
    }

    /// Drops every entry of `route`.
    pub fn purge_route(&self, route: &str) {
        let route: Box<str> = route.into();
        self.entries
            .invalidate_entries_if(move |_, slot| slot.0.route == route)
            .expect("invalidation closures are enabled in new()");
    }

    /// Drops the entries of `route` for `path` on any host: `path` with a query names one
    /// entry, a path without one names it under every query string too.
    pub fn purge_key(&self, route: &str, path: &str) {
        let route: Box<str> = route.into();
        let path: Box<str> = path.into();
        self.entries
            .invalidate_entries_if(move |_, slot| {
                slot.0.route == route && slot.0.matches_path(&path)
            })
            .expect("invalidation closures are enabled in new()");
    }

    /// Drops everything.
    pub fn purge_all(&self) {
        self.entries.invalidate_all();
    }

    /// The `Age` header value for `entry` at `now`.
    pub fn age(&self, entry: &CachedResponse, now: Instant) -> u64 {
        entry.age_at(now)
    }

    /// Runs moka's pending maintenance (evictions, expirations, purges) now; otherwise it
    /// runs piecemeal on later cache operations.
    pub async fn run_pending_tasks(&self) {
        self.entries.run_pending_tasks().await;
    }

    pub fn counters(&self) -> CacheCounters {
        let s = &self.stats;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheCounters {
            hits: load(&s.hits),
            stale_hits: load(&s.stale_hits),
            misses: load(&s.misses),
            coalesced: load(&s.coalesced),
            bypassed: load(&s.bypassed),
            inserts: load(&s.inserts),
            uncacheable: load(&s.uncacheable),
            too_large: load(&s.too_large),
            evictions: load(&s.evictions),
            expirations: load(&s.expirations),
            bytes: self.entries.weighted_size(),
            entries: self.entries.entry_count(),
        }
    }
}

/// The flight key: the primary key, refined by the request's values for `vary`'s names.
fn flight_key(primary: u128, vary: &VaryKey, req_headers: &HeaderMap) -> u128 {
    let mut names = vary.names().peekable();
    if names.peek().is_none() {
        return primary;
    }
    let mut h = Xxh3Default::new();
    h.update(&primary.to_le_bytes());
    for name in names {
        h.update(name.as_str().as_bytes());
        for value in req_headers.get_all(name) {
            h.update(&(value.len() as u64).to_le_bytes());
            h.update(value.as_bytes());
        }
        h.update(&[0xff]);
    }
    h.digest128()
}

/// The slot after storing `new`: it replaces the variant with the same Vary values, joins
/// the live ones, and the oldest beyond `max_variants` go.
fn merge(
    existing: Option<Slot>,
    key: &CacheKey<'_>,
    new: Arc<CachedResponse>,
    max_variants: usize,
    now: Instant,
) -> Slot {
    let mut variants = vec![Arc::clone(&new)];
    if let Some(Slot(old)) = existing.filter(|slot| slot.0.is_for(key)) {
        variants.extend(
            old.variants
                .iter()
                .filter(|v| v.vary != new.vary && v.servable_until() > now)
                .take(max_variants - 1)
                .cloned(),
        );
    }
    let key_bytes = key.route.len() + key.host.len() + key.path_and_query.len();
    let weight = 64 + key_bytes + variants.iter().map(|v| v.weight()).sum::<usize>();
    let servable_until = variants
        .iter()
        .map(|v| v.servable_until())
        .max()
        .unwrap_or(now);
    Slot(Arc::new(SlotInner {
        route: key.route.into(),
        method: key.method.clone(),
        host: key.host.into(),
        path_and_query: key.path_and_query.into(),
        variants,
        weight: u32::try_from(weight).unwrap_or(u32::MAX),
        servable_until,
    }))
}
