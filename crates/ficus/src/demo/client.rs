//! The synthetic client: a steady, bounded stream of requests through the gateway across every
//! demo route, as a few dozen different users, so the periodic summary shows each stage at work
//! without anyone typing curl.
//!
//! Bounded on every axis: a fixed rate, at most [`MAX_IN_FLIGHT`] requests at once (a tick that
//! finds no free slot is skipped and counted, so a slow gateway is not buried), and a timeout
//! per request. The caller bounds the duration.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::random_u64;
use super::stats::{Answer, Sample, Stats};

/// Requests the client keeps open at most.
pub const MAX_IN_FLIGHT: usize = 64;
/// A request unanswered for this long counts as an error. Above the demo's upstream timeouts,
/// so the gateway's own answer (fallback or 504) normally comes first.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// What to send and where.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub gateway: SocketAddr,
    /// Requests per second.
    pub rate: u32,
    /// Distinct `x-user-id` values (`user-1` ...), the canary's sticky key.
    pub users: u64,
}

/// One kind of request in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    User,
    Users,
    Order,
    Orders,
    NewOrder,
    CatalogItem,
    DailyReport,
    Account,
    Stock,
    Health,
}

/// The mix and each call's relative weight: mostly reads by id, like real traffic. `/stock`
/// gets the most: modern breaks it mid-run, and how soon the judge can be sure of that (and
/// roll the route back) depends on how many requests modern answers there, not on time.
const MIX: [(Call, u64); 10] = [
    (Call::User, 4),
    (Call::Users, 1),
    (Call::Order, 4),
    (Call::Orders, 1),
    (Call::NewOrder, 1),
    (Call::CatalogItem, 3),
    (Call::DailyReport, 1),
    (Call::Account, 4),
    (Call::Stock, 12),
    (Call::Health, 1),
];

impl Call {
    /// Picks a call by weight from a random number.
    fn pick(r: u64) -> Call {
        let sum: u64 = MIX.iter().map(|(_, w)| w).sum();
        let mut at = r % sum;
        for (call, w) in MIX {
            if at < w {
                return call;
            }
            at -= w;
        }
        unreachable!("at < sum of weights")
    }

    /// The demo config's route for this call; used when no response says otherwise.
    fn route(self) -> &'static str {
        match self {
            Call::User | Call::Users => "users",
            Call::Order | Call::Orders | Call::NewOrder => "orders",
            Call::CatalogItem => "catalog",
            Call::DailyReport => "reports",
            Call::Account => "accounts",
            Call::Stock => "stock",
            Call::Health => "default",
        }
    }

    /// Method, path and body, with ids taken from `r`.
    fn request(self, r: u64) -> (Method, String, Bytes) {
        let id = 1 + r % 500;
        match self {
            Call::User => (Method::GET, format!("/users/{id}"), Bytes::new()),
            Call::Users => (Method::GET, "/users".into(), Bytes::new()),
            Call::Order => (Method::GET, format!("/orders/{id}"), Bytes::new()),
            Call::Orders => (Method::GET, "/orders".into(), Bytes::new()),
            Call::NewOrder => {
                let body = format!(
                    r#"{{"user_id": {}, "items": [{{"sku": "sku-{}", "qty": {}}}]}}"#,
                    1 + r % 1000,
                    1000 + r % 40,
                    1 + r % 3
                );
                (Method::POST, "/orders".into(), Bytes::from(body))
            }
            Call::CatalogItem => (
                Method::GET,
                format!("/catalog/sku-{}", 1000 + r % 40),
                Bytes::new(),
            ),
            Call::DailyReport => (Method::GET, "/reports/daily".into(), Bytes::new()),
            Call::Account => (Method::GET, format!("/accounts/{id}"), Bytes::new()),
            Call::Stock => (
                Method::GET,
                format!("/stock/sku-{}", 1000 + r % 40),
                Bytes::new(),
            ),
            Call::Health => (Method::GET, "/health".into(), Bytes::new()),
        }
    }
}

/// Sends `plan.rate` requests per second until `stop` turns true (or its sender is gone), then
/// waits for the requests in flight so the final summary counts every request that was sent.
pub async fn run(plan: Plan, stats: Arc<Stats>, mut stop: watch::Receiver<bool>) {
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .build_http();
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tick = tokio::time::interval(Duration::from_secs(1) / plan.rate.max(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut in_flight = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            _ = tick.tick() => {}
        }
        while in_flight.try_join_next().is_some() {}
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            stats.skip();
            continue;
        };
        let (client, stats) = (client.clone(), stats.clone());
        in_flight.spawn(async move {
            let sample = send(&client, &plan, random_u64()).await;
            stats.record(&sample);
            drop(slot);
        });
    }
    while in_flight.join_next().await.is_some() {}
}

/// Sends one random request of the mix and reports what came back.
async fn send(client: &HttpClient, plan: &Plan, r: u64) -> Sample {
    let call = Call::pick(r);
    let (method, path, body) = call.request(r >> 8);
    let user = 1 + (r >> 32) % plan.users.max(1);
    let req = Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", plan.gateway))
        .header("x-user-id", format!("user-{user}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .expect("a request built from valid parts");
    let started = Instant::now();
    let exchange = async {
        let resp = client.request(req).await.ok()?;
        let (parts, body) = resp.into_parts();
        // Read the whole body: the latency then covers the full answer, and the connection
        // goes back to the pool.
        body.collect().await.ok()?;
        Some(parts)
    };
    let parts = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .ok()
        .flatten();
    let latency = started.elapsed();
    match parts {
        Some(p) => Sample {
            route: p
                .headers
                .get("x-ficus-route")
                .and_then(|v| v.to_str().ok())
                .unwrap_or(call.route())
                .to_string(),
            answer: Answer::from_header(p.headers.get("x-ficus-upstream").map(|v| v.as_bytes())),
            status: Some(p.status.as_u16()),
            latency,
        },
        None => Sample {
            route: call.route().to_string(),
            answer: Answer::Other,
            status: None,
            latency,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_covers_every_call_by_weight() {
        let sum: u64 = MIX.iter().map(|(_, w)| w).sum();
        let picked: Vec<Call> = (0..sum).map(Call::pick).collect();
        for (call, w) in MIX {
            assert_eq!(
                picked.iter().filter(|c| **c == call).count() as u64,
                w,
                "{call:?}"
            );
        }
    }

    /// The judge rolls a broken route back once modern's errors are beyond doubt, which takes
    /// a number of modern requests, not a time: at the default rate, /stock gets enough for
    /// that to come seconds after the fault (about 3 s at 18.75/s, measured; at the former
    /// 3.3/s it took 19 to 25 s).
    #[test]
    fn at_the_default_rate_stock_gets_traffic_enough_for_a_quick_rollback() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            demo: crate::demo::DemoOptions,
        }
        let rate = f64::from(<Cli as clap::Parser>::parse_from(["demo"]).demo.rate);
        let sum: u64 = MIX.iter().map(|(_, w)| w).sum();
        let share = |call: Call| {
            MIX.iter().find(|(c, _)| *c == call).map_or(0, |(_, w)| *w) as f64 / sum as f64
        };
        let stock = rate * share(Call::Stock);
        assert!(stock >= 15.0, "{stock} /stock requests per second");
        // Every other rollout still gets its share: accounts, a few per second.
        assert!(rate * share(Call::Account) >= 5.0);
    }

    #[test]
    fn requests_name_the_route_they_aim_at() {
        for (call, _) in MIX {
            let (_, path, _) = call.request(7);
            let prefix = format!("/{}", call.route());
            assert!(
                call == Call::Health || path.starts_with(&prefix),
                "{path} vs {prefix}"
            );
        }
    }
}
