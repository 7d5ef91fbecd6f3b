//! The route table: a validated [`Config`] compiled for the request path (matchers built,
//! upstream clients resolved, header values pre-made). One snapshot is loaded per request and
//! swapped whole on reload.

use std::sync::Arc;

use ficus_config::{Config, Route, Stage, StickyKey, Weight};
use ficus_telemetry::{RouteStats, Telemetry};
use http::Method;
use http::{HeaderMap, HeaderValue};

pub use crate::flags::{FlagForward, FlagSplit};
use crate::mirror::{Mirror, MirrorRoute};
use crate::router::{Matcher, RequestView};
use crate::server::GatewayError;
use crate::split::{self, Side};
use crate::upstream::UpstreamClient;

/// A compiled route.
#[derive(Debug)]
pub struct CompiledRoute {
    pub name: Arc<str>,
    /// The route name as a header value, for the debug header.
    pub name_header: HeaderValue,
    matcher: Matcher,
    pub legacy: Arc<UpstreamClient>,
    pub modern: Option<Arc<UpstreamClient>>,
    /// Telemetry handles, resolved once per compile (`None` when telemetry is off).
    pub stats: Option<Arc<RouteStats>>,
    pub stage: Stage,
    pub weight: Weight,
    pub sticky: StickyKey,
    pub fallback_enabled: bool,
    fallback_methods: Vec<Method>,
    fallback_status: Vec<u16>,
    pub fallback_on_timeout: bool,
    pub max_buffered_body: u64,
    pub max_body_bytes: u64,
    /// `[gateway] client_body_timeout`: idle time allowed while ficus reads a body whole.
    pub body_timeout: std::time::Duration,
    pub debug_header: bool,
    /// Present when the route mirrors requests to modern (see [`crate::mirror`]).
    pub mirror: Option<Arc<MirrorRoute>>,
    /// Shedding order at an upstream's concurrency limit.
    pub priority: ficus_protect::Priority,
    /// `[route.rate_limit]`.
    pub rate: Option<Arc<RouteRate>>,
    /// `[route.retry]`.
    pub retry: Option<Arc<RouteRetry>>,
    /// `[route.cache]`.
    pub cache: Option<Arc<RouteCache>>,
    /// The route's position in its table (for tasks that outlive the request).
    pub index: usize,
    /// The path pattern it matches, as trace spans name it (`http.route`): `/orders/{id}`,
    /// `/orders/*` for a prefix; `None` for a route that matches any path.
    pub http_route: Option<Arc<str>>,
    /// On the canary stage, the flag whose evaluation picks the side (instead of the weight).
    pub flag: Option<Arc<FlagSplit>>,
    /// Flags evaluated for each request and sent to the upstreams in a header.
    pub forward_flags: Option<Arc<FlagForward>>,
    /// The route's recording state (whether it records now is the slot's business).
    pub record: Option<Arc<crate::record::RecordSlot>>,
}

/// A route's response cache. Keys carry the side, so a canary never crosses its answers.
#[derive(Debug)]
pub struct RouteCache {
    pub policy: ficus_config::CachePolicy,
    /// The whole route it was built for: any change to the route empties the cache.
    route: ficus_config::Route,
    pub cache: ficus_protect::ResponseCache,
    keys: [String; 2],
}

impl RouteCache {
    fn new(
        route: &ficus_config::Route,
        p: &ficus_config::CachePolicy,
    ) -> Result<RouteCache, ficus_protect::SpecError> {
        Ok(RouteCache {
            cache: ficus_protect::ResponseCache::new(ficus_protect::CacheSpec {
                max_bytes: p.max_bytes,
                max_entry_bytes: p.max_entry_bytes,
                default_ttl: p.ttl,
                stale_while_revalidate: p.stale_while_revalidate,
                max_variants: p.max_variants,
                allow_authorization: p.allow_authorization,
                allow_set_cookie: p.allow_set_cookie,
                ..ficus_protect::CacheSpec::default()
            })?,
            policy: p.clone(),
            route: route.clone(),
            keys: [
                format!("{}#legacy", route.name),
                format!("{}#modern", route.name),
            ],
        })
    }

    /// The key prefix of one side's answers.
    pub fn key(&self, side: Side) -> &str {
        &self.keys[usize::from(side == Side::Modern)]
    }

    /// Forgets every answer of the route, or those of one path (and query) on both sides.
    pub fn purge(&self, path: Option<&str>) {
        for k in &self.keys {
            match path {
                Some(p) => self.cache.purge_key(k, p),
                None => self.cache.purge_route(k),
            }
        }
    }
}

/// A route's retry policy and budget.
#[derive(Debug)]
pub struct RouteRetry {
    pub spec: ficus_config::RetryPolicy,
    pub budget: ficus_protect::RetryBudget,
}

impl RouteRetry {
    /// How long a deposit counts in the budget.
    pub const BUDGET_TTL: std::time::Duration = std::time::Duration::from_secs(10);

    fn new(spec: &ficus_config::RetryPolicy) -> Result<RouteRetry, ficus_protect::SpecError> {
        Ok(RouteRetry {
            budget: ficus_protect::RetryBudget::new(
                spec.budget,
                spec.min_per_second,
                Self::BUDGET_TTL,
            )?,
            spec: spec.clone(),
        })
    }
}

/// A route's rate limiter and what it counts per.
#[derive(Debug)]
pub struct RouteRate {
    pub spec: ficus_config::RateLimit,
    pub limiter: ficus_protect::RateLimiter,
}

impl RouteRate {
    fn new(spec: &ficus_config::RateLimit) -> Result<RouteRate, ficus_protect::SpecError> {
        Ok(RouteRate {
            limiter: ficus_protect::RateLimiter::new(ficus_protect::RateSpec {
                per_second: spec.per_second,
                burst: spec.burst,
                max_keys: spec.max_keys,
            })?,
            spec: spec.clone(),
        })
    }

    /// The decision for one request: per client IP, a header (its absence counts as the
    /// client IP), the route's sticky key, or the whole route.
    pub fn check(
        &self,
        sticky: &StickyKey,
        headers: &HeaderMap,
        query: Option<&str>,
        client_ip: &[u8],
    ) -> ficus_protect::RateDecision {
        use ficus_config::RateKey;
        let key = match &self.spec.key {
            RateKey::ClientIp => client_ip,
            RateKey::Header(h) => headers.get(h).map_or(client_ip, |v| v.as_bytes()),
            RateKey::Sticky => sticky_key(sticky, headers, query, client_ip).unwrap_or(client_ip),
            RateKey::Route => return self.limiter.check(0),
        };
        self.limiter.check_bytes(key)
    }
}

impl CompiledRoute {
    /// Which side answers, from the stage, the weight and the request's sticky key. A request
    /// without its key gets a random bucket (it is split fairly but not sticky).
    pub fn decide(&self, headers: &HeaderMap, query: Option<&str>, client_ip: &[u8]) -> Side {
        if self.modern.is_none() {
            return Side::Legacy;
        }
        if let (Stage::Canary, Some(f)) = (self.stage, &self.flag) {
            return f.side(sticky_key(&self.sticky, headers, query, client_ip), headers);
        }
        split::choose(self.stage, self.weight, || {
            match sticky_key(&self.sticky, headers, query, client_ip) {
                Some(key) => split::bucket(&self.name, key),
                None => (crate::rand::next_u64() % u64::from(split::BUCKETS)) as u16,
            }
        })
    }

    /// Whether a request of this method that reached modern may be re-sent to legacy.
    pub fn may_resend(&self, method: &Method) -> bool {
        self.fallback_enabled && self.fallback_methods.iter().any(|m| m == method)
    }

    /// Whether a modern response status sends the request to legacy instead.
    pub fn falls_back_on(&self, status: u16) -> bool {
        self.fallback_status.contains(&status)
    }

    /// Whether legacy is still called for this route (everything but `retired`).
    pub fn legacy_is_fallback(&self) -> bool {
        self.fallback_enabled && self.stage != Stage::Retired
    }
}

fn compile_route(
    r: &Route,
    name: Arc<str>,
    legacy: Arc<UpstreamClient>,
    modern: Option<Arc<UpstreamClient>>,
    mirror: Option<Arc<MirrorRoute>>,
    telemetry_on: bool,
    telemetry: &Telemetry,
) -> CompiledRoute {
    CompiledRoute {
        name_header: HeaderValue::from_str(&r.name)
            .unwrap_or_else(|_| HeaderValue::from_static("invalid")),
        name,
        matcher: Matcher::compile(&r.matcher),
        legacy,
        modern,
        stats: telemetry_on.then(|| telemetry.route(&r.name)),
        stage: r.stage,
        weight: r.weight,
        sticky: r.sticky.clone(),
        fallback_enabled: r.fallback.enabled,
        fallback_methods: r.fallback.methods.clone(),
        fallback_status: r.fallback.on_status.clone(),
        fallback_on_timeout: r.fallback.on_timeout,
        max_buffered_body: r.fallback.max_buffered_body.min(r.max_body_bytes),
        max_body_bytes: r.max_body_bytes,
        body_timeout: ficus_config::defaults::CLIENT_BODY_TIMEOUT,
        debug_header: r.debug_header,
        mirror,
        priority: match r.priority {
            ficus_config::Priority::Critical => ficus_protect::Priority::Critical,
            ficus_config::Priority::Normal => ficus_protect::Priority::Normal,
            ficus_config::Priority::Low => ficus_protect::Priority::Low,
        },
        rate: None,
        retry: None,
        cache: None,
        index: 0,
        http_route: http_route(&r.matcher.path),
        flag: None,
        forward_flags: None,
        record: None,
    }
}

fn http_route(p: &ficus_config::PathMatch) -> Option<Arc<str>> {
    match p {
        ficus_config::PathMatch::Any => None,
        ficus_config::PathMatch::Prefix(p) => Some(format!("{}/*", p.trim_end_matches('/')).into()),
        ficus_config::PathMatch::Exact(p) | ficus_config::PathMatch::Template(p) => {
            Some(p.as_str().into())
        }
    }
}

/// The sticky key's bytes in a request, if present.
pub fn sticky_key<'a>(
    key: &StickyKey,
    headers: &'a HeaderMap,
    query: Option<&'a str>,
    client_ip: &'a [u8],
) -> Option<&'a [u8]> {
    match key {
        StickyKey::ClientIp => Some(client_ip),
        StickyKey::Header(name) => headers
            .get(name)
            .map(|v| v.as_bytes())
            .filter(|v| !v.is_empty()),
        StickyKey::Cookie(name) => headers
            .get_all(http::header::COOKIE)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
            .find_map(|pair| {
                let pair = pair.trim_ascii_start();
                let rest = pair.strip_prefix(name.as_bytes())?;
                rest.strip_prefix(b"=")
            })
            .filter(|v| !v.is_empty()),
        StickyKey::Query(name) => query?
            .split('&')
            .find_map(|pair| pair.strip_prefix(name.as_str())?.strip_prefix('='))
            .map(str::as_bytes)
            .filter(|v| !v.is_empty()),
    }
}

/// Every route compiled, the default last, plus the upstream clients they use.
#[derive(Debug)]
pub struct RouteTable {
    routes: Vec<CompiledRoute>,
    upstreams: Vec<Arc<UpstreamClient>>,
    pub config: Arc<Config>,
}

impl RouteTable {
    /// Compiles a config, with `pools` connection pools per upstream (one per worker thread,
    /// plus the mirror's). Upstream clients of `previous` whose definition is unchanged are
    /// reused, so a reload keeps their warm connection pools. Routes that mirror send their
    /// copies to `mirror`.
    pub fn compile(
        config: Config,
        previous: Option<&RouteTable>,
        pools: usize,
        telemetry: &Telemetry,
        mirror: &Arc<Mirror>,
        events: &crate::events::Events,
        recorder: Option<&crate::record::Recorder>,
    ) -> Result<RouteTable, GatewayError> {
        let telemetry_on = config.telemetry.enabled;
        let mut upstreams = Vec::with_capacity(config.upstreams.len());
        for u in &config.upstreams {
            let reused = previous.and_then(|p| {
                p.upstreams
                    .iter()
                    .find(|c| c.config == *u && c.pools() == pools.max(1))
                    .cloned()
            });
            upstreams.push(match reused {
                Some(c) => c,
                None => Arc::new(UpstreamClient::new(u, pools, events)?),
            });
        }
        let find = |name: &str| {
            upstreams
                .iter()
                .find(|c| &*c.name == name)
                .cloned()
                .expect("validated routes name known upstreams")
        };
        let mut routes = Vec::with_capacity(config.routes.len() + 1);
        for r in config.all_routes() {
            let name: Arc<str> = Arc::from(r.name.as_str());
            let legacy = find(&r.legacy);
            let modern = r.modern.as_deref().map(find);
            let mirror = match &modern {
                Some(m) if crate::mirror::mirrors(r.stage, &r.shadow) => Some(Arc::new(
                    MirrorRoute::new(
                        name.clone(),
                        &r.shadow,
                        &config.redact,
                        r.shadow_writes,
                        r.sticky.clone(),
                        // Mirror counters are kept even with telemetry off: drops must show.
                        telemetry.route(&r.name),
                        legacy.clone(),
                        m.clone(),
                        mirror.clone(),
                    )
                    .map_err(|e| GatewayError::Shadow {
                        route: r.name.clone(),
                        reason: e.to_string(),
                    })?,
                )),
                _ => None,
            };
            // Limiters and budgets keep their state across a reload that leaves them unchanged.
            let prev = previous.and_then(|p| p.routes.iter().find(|c| *c.name == *r.name));
            let protection = |e: ficus_protect::SpecError| GatewayError::Protection {
                route: r.name.clone(),
                reason: e.to_string(),
            };
            let rate = match &r.rate_limit {
                None => None,
                Some(spec) => Some(
                    match prev
                        .and_then(|c| c.rate.clone())
                        .filter(|x| x.spec == *spec)
                    {
                        Some(kept) => kept,
                        None => Arc::new(RouteRate::new(spec).map_err(protection)?),
                    },
                ),
            };
            let retry = match &r.retry {
                None => None,
                Some(spec) => Some(
                    match prev
                        .and_then(|c| c.retry.clone())
                        .filter(|x| x.spec == *spec)
                    {
                        Some(kept) => kept,
                        None => Arc::new(RouteRetry::new(spec).map_err(protection)?),
                    },
                ),
            };
            let cache = match &r.cache {
                None => None,
                Some(policy) => Some(
                    match prev.and_then(|c| c.cache.clone()).filter(|x| x.route == *r) {
                        Some(kept) => kept,
                        None => Arc::new(RouteCache::new(r, policy).map_err(protection)?),
                    },
                ),
            };
            let mut route = compile_route(r, name, legacy, modern, mirror, telemetry_on, telemetry);
            route.rate = rate;
            route.retry = retry;
            route.cache = cache;
            route.index = routes.len();
            route.body_timeout = config.gateway.client_body_timeout;
            route.flag = r.flag.as_ref().and_then(|rf| {
                let flag = config.flags.iter().find(|f| f.key == rf.key)?;
                Some(Arc::new(FlagSplit {
                    flag: flag.clone(),
                    modern: rf.modern.clone(),
                    context: rf.context.clone(),
                }))
            });
            route.forward_flags = r
                .forward_flags
                .as_ref()
                .map(|ff| Arc::new(FlagForward::new(ff, &config.flags)));
            route.record = recorder.map(|rec| rec.slot(&r.name));
            routes.push(route);
        }
        Ok(RouteTable {
            routes,
            upstreams,
            config: Arc::new(config),
        })
    }

    /// The first route whose matcher takes the request; the default route otherwise.
    pub fn route_for(&self, req: &RequestView<'_>) -> &CompiledRoute {
        let (default, ordered) = self.routes.split_last().expect("the default route exists");
        ordered
            .iter()
            .find(|r| r.matcher.matches(req))
            .unwrap_or(default)
    }

    pub fn routes(&self) -> &[CompiledRoute] {
        &self.routes
    }

    pub fn upstreams(&self) -> &[Arc<UpstreamClient>] {
        &self.upstreams
    }
}

/// The protection counters of a table, as Prometheus families: per route its rate limiter,
/// per upstream its concurrency limit and circuit breaker.
pub fn protection_metrics(table: &RouteTable) -> Vec<ficus_telemetry::Family> {
    use ficus_telemetry::Family;
    let fam = |name, help, gauge| Family {
        name,
        help,
        gauge,
        samples: Vec::new(),
    };
    let mut allowed = fam(
        "ficus_rate_allowed",
        "Requests a route's rate limit let through.",
        false,
    );
    let mut limited = fam(
        "ficus_rate_limited",
        "Requests answered 429 by a route's rate limit.",
        false,
    );
    let mut keys = fam(
        "ficus_rate_tracked_keys",
        "Keys a route's rate limiter tracks now.",
        true,
    );
    let mut evicted = fam(
        "ficus_rate_evicted_keys",
        "Keys dropped to keep a rate limiter within max_keys.",
        false,
    );
    for r in &table.routes {
        if let Some(rate) = &r.rate {
            let c = rate.limiter.counters();
            let l = || vec![("route", r.name.to_string())];
            allowed.samples.push((l(), c.allowed));
            limited.samples.push((l(), c.limited));
            keys.samples.push((l(), c.tracked_keys));
            evicted.samples.push((l(), c.evicted_keys));
        }
    }
    let mut retries = fam(
        "ficus_retries",
        "Requests sent again after a connect error or a 502/503/504.",
        false,
    );
    let mut exhausted = fam(
        "ficus_retry_budget_exhausted",
        "Retries not made because the route's retry budget was spent.",
        false,
    );
    for r in &table.routes {
        if let Some(retry) = &r.retry {
            let c = retry.budget.counters();
            retries
                .samples
                .push((vec![("route", r.name.to_string())], c.withdrawals));
            exhausted
                .samples
                .push((vec![("route", r.name.to_string())], c.exhausted));
        }
    }
    type CacheFamily = (
        &'static str,
        &'static str,
        bool,
        fn(&ficus_protect::CacheCounters) -> u64,
    );
    let cache_fams: [CacheFamily; 8] = [
        (
            "ficus_cache_hits",
            "Requests answered fresh from a route's cache.",
            false,
            |c| c.hits,
        ),
        (
            "ficus_cache_stale_hits",
            "Requests answered stale (stale-while-revalidate) while one refreshes.",
            false,
            |c| c.stale_hits,
        ),
        (
            "ficus_cache_misses",
            "Requests that fetched for the cache.",
            false,
            |c| c.misses,
        ),
        (
            "ficus_cache_coalesced",
            "Requests answered by another request's fetch of the same key.",
            false,
            |c| c.coalesced,
        ),
        ("ficus_cache_inserts", "Responses stored.", false, |c| {
            c.inserts
        }),
        (
            "ficus_cache_evictions",
            "Responses evicted to stay within max_bytes.",
            false,
            |c| c.evictions,
        ),
        (
            "ficus_cache_bytes",
            "Bytes a route's cache holds.",
            true,
            |c| c.bytes,
        ),
        (
            "ficus_cache_entries",
            "Responses a route's cache holds.",
            true,
            |c| c.entries,
        ),
    ];
    let mut caches: Vec<Family> = cache_fams
        .iter()
        .map(|(n, h, g, _)| fam(n, h, *g))
        .collect();
    for r in &table.routes {
        if let Some(cache) = &r.cache {
            let c = cache.cache.counters();
            for (f, (_, _, _, get)) in caches.iter_mut().zip(cache_fams.iter()) {
                f.samples
                    .push((vec![("route", r.name.to_string())], get(&c)));
            }
        }
    }
    let mut in_flight = fam(
        "ficus_upstream_in_flight",
        "Requests holding one of an upstream's max_in_flight slots.",
        true,
    );
    let mut queued = fam(
        "ficus_upstream_queued",
        "Requests waiting for an upstream slot.",
        true,
    );
    let mut shed = fam(
        "ficus_upstream_shed",
        "Requests shed (503) at an upstream's concurrency limit, by reason.",
        false,
    );
    let mut state = fam(
        "ficus_breaker_state",
        "An upstream's circuit breaker: 0 closed, 1 half-open, 2 open.",
        true,
    );
    let mut trips = fam(
        "ficus_breaker_trips",
        "Times an upstream's circuit breaker opened.",
        false,
    );
    let mut rejected = fam(
        "ficus_breaker_rejected",
        "Requests an open circuit breaker kept from its upstream.",
        false,
    );
    for u in &table.upstreams {
        let l = |extra: Option<(&'static str, &str)>| {
            let mut v = vec![("upstream", u.name.to_string())];
            v.extend(extra.map(|(k, x)| (k, x.to_string())));
            v
        };
        if let Some(lim) = &u.limit {
            let c = lim.counters();
            in_flight.samples.push((l(None), c.in_flight));
            queued.samples.push((l(None), c.queued));
            for (reason, n) in [
                ("queue_full", c.shed_queue_full),
                ("queue_timeout", c.shed_queue_timeout),
                ("preempted", c.shed_preempted),
            ] {
                shed.samples.push((l(Some(("reason", reason))), n));
            }
        }
        if let Some(b) = &u.breaker {
            let c = b.counters();
            let s = match c.state {
                ficus_protect::BreakerState::Closed => 0,
                ficus_protect::BreakerState::HalfOpen => 1,
                ficus_protect::BreakerState::Open => 2,
            };
            state.samples.push((l(None), s));
            trips.samples.push((l(None), c.trips));
            rejected.samples.push((l(None), c.rejected));
        }
    }
    [
        allowed, limited, keys, evicted, retries, exhausted, in_flight, queued, shed, state, trips,
        rejected,
    ]
    .into_iter()
    .chain(caches)
    .filter(|f| !f.samples.is_empty())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sticky_keys_are_found() {
        let mut h = HeaderMap::new();
        h.insert("x-user-id", HeaderValue::from_static("u-42"));
        h.insert(
            "cookie",
            HeaderValue::from_static("a=1; session=abc; sessionx=no"),
        );
        let ip = b"127.0.0.1".as_slice();
        let hk = StickyKey::Header(http::HeaderName::from_static("x-user-id"));
        assert_eq!(sticky_key(&hk, &h, None, ip), Some(b"u-42".as_slice()));
        assert_eq!(
            sticky_key(&StickyKey::Cookie("session".into()), &h, None, ip),
            Some(b"abc".as_slice())
        );
        assert_eq!(
            sticky_key(&StickyKey::Cookie("nope".into()), &h, None, ip),
            None
        );
        let q = Some("x=1&account=77&accounts=9");
        assert_eq!(
            sticky_key(&StickyKey::Query("account".into()), &h, q, ip),
            Some(b"77".as_slice())
        );
        assert_eq!(
            sticky_key(&StickyKey::Query("account".into()), &h, None, ip),
            None
        );
        assert_eq!(sticky_key(&StickyKey::ClientIp, &h, None, ip), Some(ip));
    }
}
