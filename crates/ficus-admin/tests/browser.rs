//! The dashboard in a real browser: headless Chromium, driven over the DevTools protocol,
//! against a real gateway (real upstreams on 127.0.0.1, a SQLite store file, the control
//! plane, the admin listener) with real traffic. The map lists the routes with live numbers;
//! a route page draws its charts; a wrong token is refused with the 401 shown and nothing
//! changed; the right token rolls the route back, in the store, in the gateway's table and
//! on the page. A route in stage shadow, whose two upstreams answer JSON that differs in one
//! field, shows its difference rate on the map, the field in its page's field tree, and a
//! sample's two answers side by side with the differing line marked. A route with a rate
//! limit and a cache shows both on its page (429s counted, cache hits) and on the map (a
//! flag while it limits), and purges its cache with the token. A route with a rollout that
//! needs more requests than it gets holds at its first step: its page shows the step
//! timeline, the hold with what it still needs, and pauses it with the token; the map shows
//! the rollout's state. Feature flags evaluated over a real OFREP listener show their counts
//! in the flags list and, by variant, on a flag's page, whose kill switch serves one variant
//! to everyone with the token (OFREP answers it at once) and goes back to the file. A route
//! recording from its `[route.record]` shows on the recordings page with the API's counts,
//! which add up, and another route is recorded at runtime from the page and stopped, with
//! the token; kept replay runs are listed, and a compared run's page ranks its real field
//! first and marks the noise. A migration plan walked by the real controller shows on the
//! migrations page and its own: its command's output, advance with the token, the switch
//! step's gate, the timeline, a refused command's 409, and hostile text shown as text.
//!
//! Without Chromium (`/usr/bin/chromium`, or `FICUS_CHROMIUM`), the test prints a note and
//! passes, unless `FICUS_REQUIRE_SERVICES=1` (as in CI), where it fails.

mod support {
    pub mod cdp;
    pub mod upstream;
}

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ficus_admin::AdminState;
use ficus_config::Stage;
use ficus_control::rollout::RolloutController;
use ficus_control::slo::SloController;
use ficus_control::ControlPlane;
use ficus_proxy::Gateway;
use ficus_store::Store;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use support::cdp::{self, Browser};
use support::upstream::{json_upstream, upstream};

const TOKEN: &str = "browser-test-token-0123456789";
/// The width the dashboard is designed for.
const WIDTH: u32 = 1280;

/// What the shadow route's two upstreams answer: the same document but for the second
/// item's price, so the mirror finds one real difference, `$.items[*].price`; `served`
/// counts each side's answers (`{n}`), so it differs between two answers of legacy too:
/// noise.
const CATALOG_LEGACY: &str = r#"{"id":7,"name":"Green tea","items":[{"sku":"tea-50g","price":4.5},{"sku":"tea-100g","price":8.25}],"currency":"EUR","served":{n}}"#;
const CATALOG_MODERN: &str = r#"{"id":7,"name":"Green tea","items":[{"sku":"tea-50g","price":4.5},{"sku":"tea-100g","price":8.5}],"currency":"EUR","served":{n}}"#;
/// Requests sent to the shadow route.
const CATALOG_REQUESTS: u64 = 12;
/// The protected route's rate limit: this many requests back to back, then one a second.
const SEARCH_BURST: usize = 3;

fn config(legacy: &str, modern: &str, catalog_legacy: &str, catalog_modern: &str) -> String {
    format!(
        r#"[[listener]]
bind = "127.0.0.1:0"
[upstream.legacy]
url = "{legacy}"
max_in_flight = 100
breaker = {{}}
[upstream.modern]
url = "{modern}"
[upstream.catalog-legacy]
url = "{catalog_legacy}"
[upstream.catalog-modern]
url = "{catalog_modern}"
[[route]]
name = "orders"
path_prefix = "/orders"
legacy = "legacy"
modern = "modern"
stage = "canary"
weight = 50
sticky = "header:x-user"
[[route]]
name = "users"
path_prefix = "/users"
legacy = "legacy"
modern = "modern"
stage = "modern"
[[route]]
name = "catalog"
path_prefix = "/catalog"
legacy = "catalog-legacy"
modern = "catalog-modern"
stage = "shadow"
sticky = "header:x-user"
[route.shadow]
noise_sample = 100
[[route]]
name = "reports"
path_prefix = "/reports"
legacy = "legacy"
# A 1 % error budget: one failed request in 151 spends two thirds of it.
[[route.slo]]
name = "availability"
objective = 99
[[route]]
name = "search"
path_prefix = "/search"
legacy = "legacy"
priority = "low"
[route.rate_limit]
per_second = 1
burst = {SEARCH_BURST}
key = "route"
[route.cache]
ttl = "60s"
[[route]]
name = "checkout"
path_prefix = "/checkout"
legacy = "legacy"
modern = "modern"
sticky = "header:x-user"
[route.rollout]
steps = [10, 100]
# The shortest interval: the judge's reason counts down the step's time, and a hold is
# recorded whenever the reason changes; after 1 s it holds only for the requests.
interval = "1s"
min_requests = 1000000
[default]
legacy = "legacy"
[access_log]
enabled = false
[slo]
evaluate_every = "1s"
[[verify]]
name = "orders-table"
route = "orders"
source = "sqlite://legacy.db"
target = "sqlite://modern.db"
source_table = "orders"
target_table = "orders_v2"
key = ["id"]
"#
    )
}

struct Env {
    admin: String,
    proxy: String,
    control: Arc<ControlPlane>,
    /// The admin API's state, to hand it controllers a test starts itself.
    state: Arc<AdminState>,
    _rollouts: Arc<RolloutController>,
    _fleet: ficus_control::fleet::FleetRuntime,
    _slos: Arc<SloController>,
    _dir: tempfile::TempDir,
}

async fn env() -> Env {
    env_with("").await
}

/// [`env`] with `routes` added before `[default]`.
async fn env_with(routes: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, modern) = (upstream("legacy").await, upstream("modern").await);
    let (catalog_legacy, catalog_modern) = (
        json_upstream(CATALOG_LEGACY).await,
        json_upstream(CATALOG_MODERN).await,
    );
    let file = dir.path().join("ficus.toml");
    std::fs::write(
        &file,
        config(&legacy, &modern, &catalog_legacy, &catalog_modern)
            .replace("[default]\n", &format!("{routes}[default]\n")),
    )
    .unwrap();
    let store = Store::open(&format!(
        "sqlite://{}",
        dir.path().join("state.db").display()
    ))
    .await
    .unwrap();
    let boot = ControlPlane::boot(&file, store).await.unwrap();
    let gw = Gateway::start(boot.effective().clone()).await.unwrap();
    let proxy = format!("http://{}", gw.local_addrs()[0]);
    let control = ControlPlane::new(boot, Arc::new(gw));
    // A fleet of one node: the registry and the lease, as `ficus run` has them; it also
    // writes the SLI minutes to the store, which the SLO controller (on the leader) evaluates.
    let fleet = ficus_control::fleet::FleetRuntime::start(control.clone()).await;
    let slos = SloController::spawn(control.clone());
    // A recorded run of the orders job, for the data-integrity column.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    control
        .store()
        .record_verify(ficus_store::NewVerifyRun {
            job: "orders-table".into(),
            route: Some("orders".into()),
            source_table: "orders".into(),
            target_table: "orders_v2".into(),
            started_at: now - 1_000,
            finished_at: now - 500,
            outcome: "different".into(),
            rows_compared: 1_000,
            missing: 2,
            extra: 0,
            changed: 1,
            error: None,
            report: serde_json::json!({}),
        })
        .await
        .unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = format!("http://{}", l.local_addr().unwrap());
    // The rollout controller, ticking fast: checkout starts at its first step at once and
    // holds there (it never gets its million requests).
    let rollouts = RolloutController::spawn(control.clone(), Duration::from_millis(100));
    let state = AdminState::for_node(
        control.clone(),
        TOKEN.into(),
        None,
        Some(rollouts.clone()),
        Some(fleet.stats()),
    );
    tokio::spawn(ficus_admin::serve(l, state.clone(), std::future::pending()));
    Env {
        admin,
        proxy,
        control,
        state,
        _rollouts: rollouts,
        _fleet: fleet,
        _slos: slos,
        _dir: dir,
    }
}

async fn get(url: &str, user: &str) -> (u16, String) {
    let c = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let req = hyper::Request::get(url)
        .header("x-user", user)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = c.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn post(url: &str, body: Value) -> (u16, Value) {
    let c = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let req = hyper::Request::post(url)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = c.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn api(url: &str) -> Value {
    let (status, body) = get(url, "-").await;
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Traffic over a few seconds, so the per-second series have several points on both sides
/// (the gateway's ticker closes a slot every second).
async fn traffic(proxy: &str) {
    for round in 0..3 {
        for i in 0..40 {
            let user = format!("user-{i}");
            get(&format!("{proxy}/orders/{i}"), &user).await;
            if i % 10 == 0 {
                get(&format!("{proxy}/orders/{i}/boom"), &user).await;
            }
            if i % 2 == 0 {
                get(&format!("{proxy}/users/{i}"), &user).await;
                get(&format!("{proxy}/reports/daily"), &user).await;
            }
        }
        if round == 0 {
            // The shadow route: legacy answers, the mirror compares modern's copy.
            for i in 0..CATALOG_REQUESTS {
                let (status, body) =
                    get(&format!("{proxy}/catalog/{i}"), &format!("user-{i}")).await;
                assert_eq!(status, 200, "{body}");
                assert!(body.contains(r#""price":8.25"#), "legacy answers: {body}");
            }
        }
        if round < 2 {
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
    }
    // Let the ticker close the last second.
    tokio::time::sleep(Duration::from_millis(1300)).await;
}

/// `n` requests for one URL of the protected route, back to back: the first fills its cache
/// (the upstream sends no cache headers: `ttl` applies), the next ones are hits until the
/// rate limit's burst is spent, then 429s. Returns (answered, refused).
async fn search_traffic(proxy: &str, n: usize) -> (usize, usize) {
    let (mut answered, mut limited) = (0, 0);
    for _ in 0..n {
        let (status, body) = get(&format!("{proxy}/search/q?term=tea"), "user-1").await;
        match status {
            200 => answered += 1,
            429 => limited += 1,
            s => panic!("the search route answered {s}: {body}"),
        }
    }
    (answered, limited)
}

/// Polls `/api/v1/diffs?route=catalog` until the mirror has compared every request sent
/// (bounded: the mirror runs on its own thread, after each response reached the client).
async fn wait_for_comparisons(admin: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let v = api(&format!("{admin}/api/v1/diffs?route=catalog")).await;
        if v[0]["counters"]["compared"].as_u64() >= Some(CATALOG_REQUESTS) {
            return v[0].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the mirror compared too little in 15 s: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn route_stage(control: &ControlPlane, name: &str) -> (Stage, f64) {
    let table = control.gateway().table();
    let r = table
        .config
        .all_routes()
        .find(|r| r.name == name)
        .expect("route in the gateway's table");
    (r.stage, r.weight.percent())
}

/// Headless Chromium with one page at the width the dashboard is designed for.
async fn open_page(chromium: &std::path::Path) -> (Browser, cdp::Page) {
    let browser = Browser::launch(chromium).await.unwrap();
    let mut page = match browser.page().await {
        Ok(p) => p,
        Err(err) => panic!("{err}\n{}", browser.log()),
    };
    page.viewport(WIDTH, 900).await.unwrap();
    (browser, page)
}

fn screenshot_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ficus-dashboard-{name}.png"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_map_draws_charts_and_rolls_back_with_the_token() {
    let Some(chromium) = cdp::chromium_path() else {
        let required = std::env::var("FICUS_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "FICUS_REQUIRE_SERVICES=1 but Chromium is missing: install it (apt-get install chromium) or set FICUS_CHROMIUM"
        );
        eprintln!("skipping the browser test: no /usr/bin/chromium (apt-get install chromium, or set FICUS_CHROMIUM)");
        return;
    };
    let e = env().await;
    traffic(&e.proxy).await;
    let diffs = wait_for_comparisons(&e.admin).await;
    assert_eq!(diffs["mirroring"], true, "{diffs}");
    assert!(diffs["report"]["rate"].as_f64() > Some(0.0), "{diffs}");
    let (answered, limited) = search_traffic(&e.proxy, 2 * SEARCH_BURST).await;
    assert!(
        answered >= 2 && limited >= 1,
        "{answered} answered, {limited} refused"
    );
    let search = api(&format!("{}/api/v1/routes/search", e.admin)).await;
    let p = &search["protection"];
    assert!(p["rate_limit"]["limited"].as_u64() >= Some(1), "{p}");
    assert!(p["cache"]["hits"].as_u64() >= Some(1), "{p}");

    let (browser, mut page) = open_page(&chromium).await;

    // The map: every route in match order, with live numbers.
    page.navigate(&format!("{}/", e.admin)).await.unwrap();
    let names = page
        .wait_for(
            "the map's rows",
            "(() => { const r = [...document.querySelectorAll('#map tbody tr[data-route]')].map(t => t.dataset.route); return r.length === 7 && r; })()",
        )
        .await;
    assert_eq!(
        names,
        serde_json::json!([
            "orders", "users", "catalog", "reports", "search", "checkout", "default"
        ])
    );
    // The rollout's state beside the stage.
    let tag = page
        .wait_for(
            "checkout's rollout state in the map",
            "(() => { const t = document.querySelector('#map tr[data-route=checkout] .rollout-tag[data-status=running]'); return t && t.innerText; })()",
        )
        .await;
    assert_eq!(tag, "rollout 10% · running");
    let orders_row = page
        .eval("document.querySelector('#map tr[data-route=orders]').innerText")
        .await
        .unwrap();
    let orders_row = orders_row.as_str().unwrap();
    assert!(
        orders_row.contains("canary") && orders_row.contains("50%"),
        "{orders_row}"
    );
    assert!(orders_row.contains("/orders/*"), "the match: {orders_row}");
    // The data-integrity column: the job's outcome, naming its tables.
    let integrity = page
        .wait_for(
            "the orders data-integrity cell",
            "(() => { const c = document.querySelector('#map tr[data-route=orders] .integrity .verify-line[data-outcome=different]'); return c && c.innerText; })()",
        )
        .await;
    let integrity = integrity.as_str().unwrap();
    assert!(
        integrity.contains("orders → orders_v2") && integrity.contains("2 missing"),
        "{integrity}"
    );
    // Some requests went to each side: the share bar is neither empty nor full.
    let share: f64 = page
        .eval("Number(document.querySelector('#map tr[data-route=orders] [role=progressbar]').getAttribute('aria-valuenow'))")
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    assert!(
        share > 0.0 && share < 100.0,
        "modern share of orders: {share}"
    );
    // The Differences column: the shadow route's real-difference rate (every comparison
    // differs in one price: 100%), "—" for routes that do not mirror.
    let cell = page
        .wait_for(
            "the catalog Differences cell",
            "(() => { const c = document.querySelector('#map tr[data-route=catalog] td.diffs[data-rate]'); return c && Number(c.dataset.rate) > 0 && { rate: Number(c.dataset.rate), compared: Number(c.dataset.compared), text: c.innerText }; })()",
        )
        .await;
    assert_eq!(cell["rate"], 1.0, "{cell}");
    assert!(
        cell["compared"].as_u64() >= Some(CATALOG_REQUESTS),
        "{cell}"
    );
    let text = cell["text"].as_str().unwrap();
    assert!(
        text.contains("100%") && text.contains(&format!("of {}", cell["compared"])),
        "{text}"
    );
    assert!(
        page.eval("document.querySelector('#map tr[data-route=catalog] td.diffs .diffs-rate').classList.contains('bad')")
            .await
            .unwrap()
            .as_bool()
            .unwrap(),
        "a non-zero rate is styled as a warning"
    );
    for route in ["orders", "reports"] {
        let v = page
            .eval(&format!(
                "document.querySelector('#map tr[data-route={route}] td.diffs').dataset.state + ' ' + document.querySelector('#map tr[data-route={route}] td.diffs').innerText"
            ))
            .await
            .unwrap();
        assert_eq!(v, "none —", "{route} does not mirror");
    }
    let users_row = page
        .eval("document.querySelector('#map tr[data-route=users]').innerText")
        .await
        .unwrap();
    assert!(
        users_row.as_str().unwrap().contains("modern"),
        "{users_row}"
    );
    page.wait_for(
        "the connection status",
        "document.querySelector('#conn').classList.contains('conn-ok')",
    )
    .await;
    // The search route refuses requests while the map is shown: its row is flagged at the
    // next refresh (the count rose since the previous one); other rows are not.
    let (_, limited) = search_traffic(&e.proxy, 2 * SEARCH_BURST).await;
    assert!(limited >= 1, "the burst was spent again");
    let flag = page
        .wait_for(
            "the search row's limiting flag",
            "document.querySelector('#map tr[data-route=search] .prot-flag[data-flag=limiting]')?.title",
        )
        .await;
    assert!(flag.as_str().unwrap().contains("429"), "{flag}");
    let flagged = page
        .eval("[...document.querySelectorAll('#map tr[data-protection]:not([data-protection=\"\"])')].map(t => t.dataset.route)")
        .await
        .unwrap();
    assert_eq!(
        flagged,
        serde_json::json!(["search"]),
        "only search is flagged"
    );
    // With the Differences column and a flag, the map still fits the width it is designed for.
    let fits = page
        .eval("(() => { const m = document.querySelector('#main'); return document.querySelector('#map').getBoundingClientRect().right <= m.getBoundingClientRect().right - parseFloat(getComputedStyle(m).paddingRight) + 0.5; })()")
        .await
        .unwrap();
    assert_eq!(fits, true, "the map overflows {WIDTH} px");
    page.screenshot(WIDTH, &screenshot_path("map"))
        .await
        .unwrap();

    // The route page: charts drawn from the per-second series, the boot's config event
    // marked on the time axis.
    page.click("#map tr[data-route=orders] .route-name a")
        .await
        .unwrap();
    for (chart, side) in [
        ("chart-requests", "legacy"),
        ("chart-requests", "modern"),
        ("chart-errors", "modern"),
        ("chart-p99", "legacy"),
        ("chart-p99", "modern"),
    ] {
        let points = page
            .wait_for(
                &format!("the {side} line of {chart}"),
                &format!(
                    "(() => {{ const p = document.querySelector('#{chart} path.series[data-side={side}]'); return p && Number(p.dataset.points) >= 2 && Number(p.dataset.points); }})()"
                ),
            )
            .await;
        assert!(points.as_f64().unwrap() >= 2.0, "{chart} {side}: {points}");
    }
    let d = page
        .eval("document.querySelector('#chart-requests path.series[data-side=modern]').getAttribute('d')")
        .await
        .unwrap();
    assert!(
        d.as_str().unwrap().starts_with('M') && d.as_str().unwrap().contains('L'),
        "{d}"
    );
    page.wait_for(
        "the config.applied marker",
        "document.querySelector('#chart-requests .marker-config-applied title')?.textContent.includes('config.applied')",
    )
    .await;
    page.wait_for(
        "the promote button's next step",
        "document.querySelector('#promote-route').textContent.includes('canary 100%')",
    )
    .await;

    // A wrong token: refused, the 401 shown, nothing changed.
    page.click("#token-button").await.unwrap();
    page.fill("#token-input", "not-the-token").await.unwrap();
    page.click("#token-save").await.unwrap();
    page.wait_for(
        "the token button to say set",
        "document.querySelector('#token-button').textContent.includes(': set')",
    )
    .await;
    page.click("#rollback-route").await.unwrap();
    page.wait_for(
        "the confirm dialog",
        "document.querySelector('#confirm-dialog').open",
    )
    .await;
    let reason = page
        .eval("document.querySelector('#confirm-message').value")
        .await
        .unwrap();
    assert!(
        !reason.as_str().unwrap().is_empty(),
        "a reason is prefilled"
    );
    page.fill("#confirm-message", "browser test: wrong token")
        .await
        .unwrap();
    page.click("#confirm-ok").await.unwrap();
    let shown = page
        .wait_for(
            "the 401 problem",
            "(() => { const r = document.querySelector('#result.result-problem'); return r && !r.hidden && r.innerText; })()",
        )
        .await;
    let shown = shown.as_str().unwrap();
    assert!(
        shown.contains("401") && shown.contains("wrong or missing admin token"),
        "{shown}"
    );
    assert!(shown.contains("Nothing was changed"), "{shown}");
    assert!(
        shown.contains("Authorization: Bearer"),
        "the fix is shown: {shown}"
    );
    assert_eq!(route_stage(&e.control, "orders"), (Stage::Canary, 50.0));
    page.screenshot(WIDTH, &screenshot_path("refused"))
        .await
        .unwrap();
    let events = api(&format!("{}/api/v1/events?route=orders", e.admin)).await;
    assert_eq!(
        events.as_array().unwrap().len(),
        0,
        "nothing recorded: {events}"
    );
    assert!(page
        .eval("document.querySelector('.badges .stage').textContent")
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .contains("canary"));
    page.wait_for(
        "the wrong token to be forgotten",
        "document.querySelector('#token-button').textContent.includes('not set')",
    )
    .await;

    // The right token: the route goes to legacy, in the gateway and on the page.
    page.click("#rollback-route").await.unwrap();
    page.wait_for("the confirm dialog asking for the token", "document.querySelector('#confirm-dialog').open && !document.querySelector('#confirm-token-row').hidden").await;
    page.fill("#confirm-message", "browser test: errors on modern")
        .await
        .unwrap();
    page.fill("#confirm-token", TOKEN).await.unwrap();
    page.click("#confirm-ok").await.unwrap();
    let shown = page
        .wait_for(
            "the recorded rollback event",
            "(() => { const r = document.querySelector('#result.result-ok'); return r && !r.hidden && r.innerText; })()",
        )
        .await;
    let shown = shown.as_str().unwrap();
    assert!(
        shown.contains("route.rollback") && shown.contains("browser test: errors on modern"),
        "{shown}"
    );
    assert!(shown.contains("by api:dashboard"), "the actor: {shown}");
    assert_eq!(route_stage(&e.control, "orders"), (Stage::Legacy, 0.0));
    let routes = api(&format!("{}/api/v1/routes", e.admin)).await;
    assert_eq!(routes["routes"][0]["stage"], "legacy");
    assert_eq!(routes["routes"][0]["overridden"], true);
    for i in 0..10 {
        let (_, who) = get(&format!("{}/orders/{i}", e.proxy), &format!("user-{i}")).await;
        assert_eq!(who, "legacy", "user-{i} after the rollback");
    }
    page.wait_for(
        "the legacy stage on the page",
        "document.querySelector('.badges .stage-legacy')",
    )
    .await;
    page.wait_for(
        "the override tag",
        "document.querySelector('.badges .override')?.textContent.includes('file: canary 50%')",
    )
    .await;
    page.wait_for(
        "the event in the route's events",
        "document.querySelector('#route-events tr[data-kind=\"route.rollback\"]')?.innerText.includes('browser test: errors on modern')",
    )
    .await;
    page.wait_for(
        "the rollback marker on the charts",
        "document.querySelector('#chart-requests .marker-route-rollback')",
    )
    .await;
    page.wait_for(
        "the rollback button disabled",
        "document.querySelector('#rollback-route').disabled",
    )
    .await;
    page.screenshot(WIDTH, &screenshot_path("route"))
        .await
        .unwrap();

    // Promote: from legacy, the first canary step; the token is remembered for the tab.
    page.wait_for(
        "the promote button's first step",
        "document.querySelector('#promote-route').textContent.includes('canary 1%')",
    )
    .await;
    page.click("#promote-route").await.unwrap();
    page.wait_for(
        "the confirm dialog without a token field",
        "document.querySelector('#confirm-dialog').open && document.querySelector('#confirm-token-row').hidden",
    )
    .await;
    page.click("#confirm-ok").await.unwrap();
    page.wait_for(
        "the recorded route.set event",
        "document.querySelector('#result.result-ok')?.innerText.includes('route.set')",
    )
    .await;
    assert_eq!(route_stage(&e.control, "orders"), (Stage::Canary, 1.0));
    page.wait_for(
        "canary 1% on the page and in the set form",
        "document.querySelector('.badges .stage-canary') && document.querySelector('.badges .weight')?.textContent === '1%' && document.querySelector('#set-weight').value === '1'",
    )
    .await;

    // The events timeline and the config versions.
    page.click("nav a[data-nav=events]").await.unwrap();
    page.wait_for(
        "the events timeline",
        "document.querySelector('#events tr[data-kind=\"route.rollback\"]') && document.querySelector('#events tr[data-kind=\"config.applied\"]')",
    )
    .await;
    // Back on the map, the row follows.
    page.click("nav a[data-nav=map]").await.unwrap();
    page.wait_for(
        "orders on canary 1% in the map, overridden",
        "document.querySelector('#map tr[data-route=orders]')?.dataset.stage === 'canary' && document.querySelector('#map tr[data-route=orders]').innerText.includes('override')",
    )
    .await;

    // A new config version (through the API): the versions page shows its diff, colored.
    let cfg = api(&format!("{}/api/v1/config", e.admin)).await;
    let text = cfg["text"]
        .as_str()
        .unwrap()
        .replace("weight = 50", "weight = 25");
    let (status, v) = post(
        &format!("{}/api/v1/config/apply", e.admin),
        serde_json::json!({"text": text, "message": "browser test: a smaller canary"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    page.click("nav a[data-nav=versions]").await.unwrap();
    page.wait_for(
        "version 2 and its diff",
        "document.querySelector('#versions a[aria-current]')?.textContent.includes('v2') && document.querySelector('#version-diff .changes')?.textContent.includes('weight') && document.querySelector('#version-diff pre.diff .del')?.textContent.includes('weight = 50') && document.querySelector('#version-diff pre.diff .add')?.textContent.includes('weight = 25')",
    )
    .await;
    page.screenshot(WIDTH, &screenshot_path("versions"))
        .await
        .unwrap();

    // The fleet page: this one node, up, leading, at the store's revision.
    page.click("nav a[data-nav=fleet]").await.unwrap();
    page.wait_for(
        "the node on the fleet page",
        "document.querySelectorAll('#fleet tbody tr[data-state=up]').length === 1 && document.querySelector('#fleet tbody tr.this-node .leader-badge') && document.querySelector('#fleet-summary')?.textContent.includes('1 of 1 node(s) up on a sqlite store')",
    )
    .await;
    page.screenshot(WIDTH, &screenshot_path("fleet"))
        .await
        .unwrap();

    // The shadow route's page: the mirror's counters and the field tree, the one differing
    // field real, first.
    page.click("nav a[data-nav=map]").await.unwrap();
    page.wait_for(
        "the catalog row",
        "document.querySelector('#map tr[data-route=catalog] .route-name a')",
    )
    .await;
    page.click("#map tr[data-route=catalog] .route-name a")
        .await
        .unwrap();
    let field = page
        .wait_for(
            "the real field in the field tree",
            "(() => { const r = [...document.querySelectorAll('#route-shadow .fields-real tr.field')]; return r.length && r.map(t => ({ path: t.dataset.path, kind: t.dataset.kind, verdict: t.dataset.verdict, rate: Number(t.dataset.rate), text: t.innerText })); })()",
        )
        .await;
    assert_eq!(
        field.as_array().unwrap().len(),
        1,
        "one real field: {field}"
    );
    let field = &field[0];
    assert_eq!(
        (&field["path"], &field["kind"], &field["verdict"]),
        (
            &Value::from("$.items[*].price"),
            &Value::from("value"),
            &Value::from("real")
        ),
        "{field}"
    );
    assert_eq!(field["rate"], 1.0, "{field}");
    assert!(field["text"].as_str().unwrap().contains("100%"), "{field}");
    // The counter differs between two answers of legacy as well: noise, listed apart, below
    // its heading.
    let noise = page
        .eval("(() => { const b = document.querySelector('#route-shadow .fields-noise'); return b && { head: b.querySelector('.noise-head').innerText, rows: [...b.querySelectorAll('tr.field')].map(t => [t.dataset.path, t.dataset.verdict]) }; })()")
        .await
        .unwrap();
    assert_eq!(
        noise["rows"],
        serde_json::json!([["$.served", "noise"]]),
        "{noise}"
    );
    assert!(
        noise["head"].as_str().unwrap().starts_with("Noise (1)"),
        "{noise}"
    );
    let compared = page
        .eval("Number(document.querySelector('#shadow-counters dd[data-counter=compared]').textContent)")
        .await
        .unwrap();
    assert!(compared.as_u64() >= Some(CATALOG_REQUESTS), "{compared}");
    let endpoint = page
        .eval("document.querySelector('#route-shadow .endpoint').dataset.endpoint")
        .await
        .unwrap();
    assert_eq!(endpoint, "GET /catalog/{id}");

    // Its sample: the difference at the concrete path, both answers side by side, the
    // differing line marked on each side and nothing else.
    page.click("#route-shadow tr.field[data-verdict=real] button.sample-link")
        .await
        .unwrap();
    let diff = page
        .wait_for(
            "the sample's differences",
            "(() => { const r = document.querySelector('#shadow-sample #sample-differences tr[data-at=\"$.items[1].price\"]'); return r && !document.querySelector('#shadow-sample').hidden && r.innerText; })()",
        )
        .await;
    let diff = diff.as_str().unwrap();
    assert!(
        diff.contains("value") && diff.contains("8.25") && diff.contains("8.5"),
        "{diff}"
    );
    let rows = page
        .eval("[...document.querySelectorAll('#sample-differences tbody tr')].map(t => [t.dataset.at, t.dataset.verdict])")
        .await
        .unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .contains(&serde_json::json!(["$.items[1].price", "real"])),
        "{rows}"
    );
    for (side, line) in [
        ("legacy", r#""price": 8.25"#),
        ("modern", r#""price": 8.5"#),
    ] {
        let body = page
            .eval(&format!(
                "(() => {{ const p = document.querySelector('#shadow-sample .sample-side[data-side={side}] pre.sample-body[data-format=json]'); return p && {{ real: [...p.querySelectorAll('.hl:not(.hl-noise)')].map(m => ({{ path: m.dataset.path, text: m.textContent.trim() }})), noise: [...p.querySelectorAll('.hl-noise')].map(m => m.dataset.path), text: p.textContent, status: p.parentElement.querySelector('.sample-status').dataset.status }}; }})()"
            ))
            .await
            .unwrap();
        assert_eq!(
            body["real"],
            serde_json::json!([{"path": "$.items[1].price", "text": line}]),
            "{side}: {body}"
        );
        // The counter, when it differed in this exchange, is marked as noise.
        assert!(
            body["noise"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p == "$.served"),
            "{side}: {body}"
        );
        let text = body["text"].as_str().unwrap();
        assert!(
            text.contains(r#""sku": "tea-100g","#) && text.contains(r#""currency": "EUR""#),
            "{side}, pretty-printed: {text}"
        );
        assert_eq!(body["status"], "200", "{side}");
    }
    let beside = page
        .eval("(() => { const [l, m] = ['legacy', 'modern'].map(s => document.querySelector(`#shadow-sample .sample-side[data-side=${s}]`).getBoundingClientRect()); return l.right <= m.left && Math.abs(l.top - m.top) < 2; })()")
        .await
        .unwrap();
    assert_eq!(beside, true, "legacy and modern side by side");
    page.screenshot(WIDTH, &screenshot_path("shadow"))
        .await
        .unwrap();

    // A sample of the noise field: the counter's line is marked too, but as noise.
    page.click("#route-shadow tr.field[data-verdict=noise] button.sample-link:last-child")
        .await
        .unwrap();
    page.wait_for(
        "the noise field's sample, marked as noise",
        "['legacy', 'modern'].every(s => document.querySelector(`#shadow-sample .sample-side[data-side=${s}] mark.hl-noise[data-path=\"$.served\"]`)) && document.querySelector('#sample-differences tr[data-at=\"$.served\"]')?.dataset.verdict === 'noise'",
    )
    .await;

    // Reset: confirmed with a reason (the token is already set for the tab), recorded as an
    // event; the page then waits for new traffic.
    page.click("#reset-diffs").await.unwrap();
    page.wait_for(
        "the reset confirm dialog",
        "document.querySelector('#confirm-dialog').open && document.querySelector('#confirm-title').textContent.includes('catalog')",
    )
    .await;
    page.fill("#confirm-message", "browser test: fixed the price")
        .await
        .unwrap();
    page.click("#confirm-ok").await.unwrap();
    let shown = page
        .wait_for(
            "the recorded shadow.reset event",
            "(() => { const r = document.querySelector('#result.result-ok'); return r && !r.hidden && r.innerText; })()",
        )
        .await;
    let shown = shown.as_str().unwrap();
    assert!(
        shown.contains("shadow.reset") && shown.contains("browser test: fixed the price"),
        "{shown}"
    );
    let after = api(&format!("{}/api/v1/diffs?route=catalog", e.admin)).await;
    assert!(after[0]["report"].is_null(), "{after}");
    page.wait_for(
        "the route waiting for traffic, the sample closed",
        "document.querySelector('#shadow-waiting') && document.querySelector('#shadow-sample').hidden",
    )
    .await;
    page.wait_for(
        "the reset in the route's events",
        "document.querySelector('#route-events tr[data-kind=\"shadow.reset\"]')?.innerText.includes('browser test: fixed the price')",
    )
    .await;

    // The protected route's page: the rate limit with its 429s, the cache with its hits,
    // the shared legacy upstream's slots and closed breaker, retries not configured.
    page.click("nav a[data-nav=map]").await.unwrap();
    page.wait_for(
        "the search row",
        "document.querySelector('#map tr[data-route=search] .route-name a')",
    )
    .await;
    page.click("#map tr[data-route=search] .route-name a")
        .await
        .unwrap();
    let shown = page
        .wait_for(
            "the Protection section's rate limit and cache",
            "(() => { const v = (card, k) => { const d = document.querySelector(`#route-protection #protection-${card} dd[data-counter=${k}]`); return d ? Number(d.dataset.value) : null; }; const limited = v('rate', 'limited'), hits = v('cache', 'hits'); return limited >= 1 && hits >= 1 && { limited, hits, ratio: v('cache', 'hit_ratio'), limitedWarn: document.querySelector('#protection-rate dd[data-counter=limited]').classList.contains('warn'), priority: document.querySelector('#protection-priority')?.dataset.priority, breaker: document.querySelector('#protection-upstream-legacy')?.dataset.breaker, slots: document.querySelector('#protection-upstream-legacy dd[data-counter=in_flight]')?.innerText, retry: document.querySelector('#protection-retry')?.dataset.configured, purge: !document.querySelector('#purge-cache').hidden, text: document.querySelector('#route-protection').innerText }; })()",
        )
        .await;
    assert_eq!(
        shown["limitedWarn"], true,
        "limited is highlighted: {shown}"
    );
    assert!(
        shown["ratio"].as_f64().is_some_and(|r| r > 0.0 && r < 1.0),
        "a miss, then hits: {shown}"
    );
    assert_eq!(
        (&shown["priority"], &shown["breaker"], &shown["retry"]),
        (
            &Value::from("low"),
            &Value::from("closed"),
            &Value::from("false")
        ),
        "{shown}"
    );
    assert_eq!(shown["slots"], "0 / 100", "{shown}");
    assert_eq!(shown["purge"], true, "a cache can be purged: {shown}");
    let text = shown["text"].as_str().unwrap();
    assert!(
        text.contains("1/s for the whole route, burst 3") && text.contains("ttl 60 s"),
        "the settings: {text}"
    );

    // Purge one URL, confirmed with the token (forgotten first, so the dialog asks for it).
    page.click("#token-button").await.unwrap();
    page.wait_for(
        "the token dialog",
        "document.querySelector('#token-dialog').open",
    )
    .await;
    page.click("#token-forget").await.unwrap();
    page.wait_for(
        "the token to be forgotten",
        "document.querySelector('#token-button').textContent.includes('not set')",
    )
    .await;
    page.click("#purge-cache").await.unwrap();
    page.wait_for(
        "the purge dialog with a path and a token field",
        "document.querySelector('#confirm-dialog').open && document.querySelector('#confirm-title').textContent.includes('search') && !document.querySelector('#confirm-path-row').hidden && !document.querySelector('#confirm-token-row').hidden",
    )
    .await;
    page.fill("#confirm-message", "browser test: stale search results")
        .await
        .unwrap();
    page.fill("#confirm-path", "/search/q?term=tea")
        .await
        .unwrap();
    page.fill("#confirm-token", TOKEN).await.unwrap();
    page.click("#confirm-ok").await.unwrap();
    let shown = page
        .wait_for(
            "the recorded cache.purged event",
            "(() => { const r = document.querySelector('#result.result-ok'); return r && !r.hidden && r.innerText.includes('cache.purged') && r.innerText; })()",
        )
        .await;
    let shown = shown.as_str().unwrap();
    assert!(
        shown.contains("browser test: stale search results")
            && shown.contains("/search/q?term=tea")
            && !shown.contains("null"),
        "{shown}"
    );
    // The URL's next request is a miss (the cache's entry count cannot tell: moka updates
    // it lazily, on later cache operations). The rate limit has refilled by now; a
    // 429 is waited out, bounded.
    let cache = |v: &Value, k: &str| v["protection"]["cache"][k].as_u64().unwrap();
    let before = api(&format!("{}/api/v1/routes/search", e.admin)).await;
    let mut tries = 0;
    while search_traffic(&e.proxy, 1).await.0 == 0 {
        tries += 1;
        assert!(tries < 5, "the search route kept refusing");
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let after = api(&format!("{}/api/v1/routes/search", e.admin)).await;
    assert_eq!(
        (cache(&after, "misses"), cache(&after, "hits")),
        (cache(&before, "misses") + 1, cache(&before, "hits")),
        "purged: a miss, not a hit: {}",
        after["protection"]
    );
    page.wait_for(
        "the purge in the route's events",
        "document.querySelector('#route-events tr[data-kind=\"cache.purged\"]')?.innerText.includes('browser test: stale search results')",
    )
    .await;
    page.screenshot(WIDTH, &screenshot_path("protection"))
        .await
        .unwrap();

    // The rollout route: its step timeline at the first step, the hold with what it still
    // needs, a pause with the token.
    page.click("nav a[data-nav=map]").await.unwrap();
    page.wait_for(
        "the checkout row",
        "document.querySelector('#map tr[data-route=checkout] .route-name a')",
    )
    .await;
    page.click("#map tr[data-route=checkout] .route-name a")
        .await
        .unwrap();
    let steps = page
        .wait_for(
            "the rollout's step timeline",
            "(() => { const s = [...document.querySelectorAll('#rollout-steps li[data-step]:not([data-step=end])')]; return s.length === 2 && s.map(li => [li.dataset.state, li.innerText.replace(/\\s+/g, ' ')]); })()",
        )
        .await;
    assert_eq!(steps[0][0], "current", "{steps}");
    assert_eq!(steps[1][0], "upcoming", "{steps}");
    let first = steps[0][1].as_str().unwrap();
    assert!(
        first.contains("step 1") && first.contains("10%") && first.contains("running"),
        "{steps}"
    );
    let hold = page
        .wait_for(
            "the hold verdict with the requests it needs",
            "(() => { const v = document.querySelector('#rollout-verdict[data-decision=hold]'); const m = v && v.querySelector('dd[data-missing=requests]'); return m && { requests: Number(m.dataset.value), gates: [...v.querySelectorAll('tr.gate')].map(t => [t.dataset.gate, t.dataset.outcome]), text: v.innerText }; })()",
        )
        .await;
    assert!(
        hold["requests"].as_u64() > Some(999_000),
        "modern needs about a million more requests: {hold}"
    );
    assert!(
        hold["text"].as_str().unwrap().contains("more"),
        "the missing numbers are shown: {hold}"
    );
    assert!(
        hold["gates"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(["error-rate", "inconclusive"])),
        "no data is no pass: {hold}"
    );
    page.wait_for(
        "the start in the rollout history and on the charts",
        "document.querySelector('#rollout-history tr[data-kind=\"rollout.started\"]') && document.querySelector('#chart-requests .marker-rollout-started')",
    )
    .await;
    page.wait_for(
        "Pause enabled, Resume not",
        "!document.querySelector('#rollout-pause').disabled && document.querySelector('#rollout-resume').disabled && document.querySelector('#rollout-start').disabled",
    )
    .await;
    page.click("#rollout-pause").await.unwrap();
    page.wait_for(
        "the pause confirm dialog",
        "document.querySelector('#confirm-dialog').open && document.querySelector('#confirm-title').textContent.includes('checkout')",
    )
    .await;
    page.fill(
        "#confirm-message",
        "browser test: hold the checkout rollout",
    )
    .await
    .unwrap();
    let asks_token = page
        .eval("!document.querySelector('#confirm-token-row').hidden")
        .await
        .unwrap();
    if asks_token == Value::Bool(true) {
        page.fill("#confirm-token", TOKEN).await.unwrap();
    }
    page.click("#confirm-ok").await.unwrap();
    let shown = page
        .wait_for(
            "the recorded rollout.paused event",
            "(() => { const r = document.querySelector('#result.result-ok'); return r && !r.hidden && r.innerText.includes('rollout.paused') && r.innerText; })()",
        )
        .await;
    assert!(
        shown
            .as_str()
            .unwrap()
            .contains("browser test: hold the checkout rollout"),
        "{shown}"
    );
    page.wait_for(
        "the rollout paused on the page",
        "document.querySelector('#rollout-status')?.dataset.status === 'paused' && document.querySelector('#rollout-steps li[data-step=\"0\"]')?.innerText.includes('paused') && !document.querySelector('#rollout-resume').disabled && document.querySelector('#rollout-pause').disabled",
    )
    .await;
    let status = api(&format!("{}/api/v1/rollouts", e.admin)).await;
    let checkout = status
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == "checkout")
        .expect("checkout's rollout");
    assert_eq!(
        (&checkout["status"], &checkout["step"]),
        (&Value::from("paused"), &Value::from(0)),
        "{checkout}"
    );
    assert_eq!(route_stage(&e.control, "checkout"), (Stage::Canary, 10.0));
    // A hold in the history shows its evidence when clicked.
    page.click("#rollout-history tr[data-kind=\"rollout.hold\"] button")
        .await
        .unwrap();
    page.wait_for(
        "a hold's evidence",
        "document.querySelector('#rollout-evidence .verdict-block[data-decision=hold] dd[data-missing=requests]')",
    )
    .await;
    page.screenshot(WIDTH, &screenshot_path("rollout"))
        .await
        .unwrap();

    // The refused rollback is the one failed load the browser should have logged.
    let problems: Vec<&String> = page
        .problems
        .iter()
        .filter(|p| !(p.contains("status of 401") && p.contains("/rollback")))
        .collect();
    assert!(
        problems.is_empty(),
        "the page logged problems: {problems:#?}"
    );
    eprintln!(
        "screenshots: {}, {}, {}, {}, {}, {}, {}",
        screenshot_path("map").display(),
        screenshot_path("refused").display(),
        screenshot_path("route").display(),
        screenshot_path("versions").display(),
        screenshot_path("shadow").display(),
        screenshot_path("protection").display(),
        screenshot_path("rollout").display()
    );
    drop(page);
    drop(browser);
}

/// A field judged against its route's pooled noise (its endpoint has too few legacy-vs-legacy
/// comparisons of its own) shows that noise rate, marked "route", with its counts: the
/// figure `ficus diffs` prints, not "—".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_judged_on_its_routes_pooled_noise_shows_that_noise() {
    let Some(chromium) = cdp::chromium_path() else {
        let required = std::env::var("FICUS_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "FICUS_REQUIRE_SERVICES=1 but Chromium is missing"
        );
        eprintln!("skipping the browser test: no /usr/bin/chromium");
        return;
    };
    // A shadow route whose paths are not ids: each is its own endpoint, and only about half
    // the requests are asked of legacy twice.
    let e = env_with(
        "[[route]]\nname = \"prices\"\npath_prefix = \"/prices\"\nlegacy = \"catalog-legacy\"\n\
         modern = \"catalog-modern\"\nstage = \"shadow\"\n[route.shadow]\nnoise_sample = 50\n",
    )
    .await;
    // Until one endpoint has no noise sample of its own while the route has some (each
    // request is its own endpoint: a few suffice, bounded).
    let mut sent = 0;
    let (endpoint, field) = loop {
        assert!(sent < 200, "no endpoint without its own noise sample");
        for _ in 0..4 {
            let word: String = (0..3)
                .map(|i| (b'a' + ((sent >> (2 * i)) % 4) as u8 + 4 * i) as char)
                .collect();
            let (status, _) = get(&format!("{}/prices/{word}", e.proxy), "u").await;
            assert_eq!(status, 200);
            sent += 1;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let v = loop {
            let v = api(&format!("{}/api/v1/diffs?route=prices", e.admin)).await;
            if v[0]["counters"]["compared"].as_u64() >= Some(sent) {
                break v;
            }
            assert!(std::time::Instant::now() < deadline, "{v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let rep = &v[0]["report"];
        let own_less =
            rep["endpoints"].as_array().unwrap().iter().find(|ep| {
                ep["noise_compared"] == 0 && !ep["fields"].as_array().unwrap().is_empty()
            });
        if let (Some(ep), true) = (own_less, rep["noise_compared"].as_u64() > Some(0)) {
            let f = ep["fields"][0].clone();
            break (ep["endpoint"].as_str().unwrap().to_string(), f);
        }
    };
    assert_eq!(field["noise_scope"], "route", "{field}");
    assert!(field["noise_compared"].as_u64() > Some(0), "{field}");

    let (_browser, mut page) = open_page(&chromium).await;
    // The pooled noise of the field, as the API (and so `ficus diffs`) gives it.
    page.navigate(&format!("{}/#/routes/prices", e.admin))
        .await
        .unwrap();
    let row = format!(
        "tr.field[data-path=\"{}\"][data-kind=\"{}\"] td.noise",
        field["path"].as_str().unwrap(),
        field["kind"].as_str().unwrap()
    );
    let cell = page
        .wait_for(
            "the noise cell of the endpoint without its own noise sample",
            &format!(
                "(() => {{ const ep = [...document.querySelectorAll('#route-shadow .endpoint')].find(b => b.dataset.endpoint === {endpoint:?}); const td = ep && ep.querySelector({row:?}); return td && {{ text: td.innerText, scope: td.dataset.scope || null, title: td.title }}; }})()"
            ),
        )
        .await;
    let text = cell["text"].as_str().unwrap();
    assert!(!text.contains('—'), "{cell}");
    assert_eq!(cell["scope"], "route", "{cell}");
    assert!(text.contains("(route)"), "{cell}");
    assert!(
        text.contains(&format!(
            "{} / {}",
            field["noise_differing"], field["noise_compared"]
        )),
        "{cell} vs {field}"
    );
}

/// Changes in the same second are one chart marker (the latest one's label with "+N", every
/// change in its title), not labels drawn over each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_in_the_same_second_are_one_chart_marker() {
    let Some(chromium) = cdp::chromium_path() else {
        let required = std::env::var("FICUS_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "FICUS_REQUIRE_SERVICES=1 but Chromium is missing"
        );
        eprintln!("skipping the browser test: no /usr/bin/chromium");
        return;
    };
    let e = env().await;
    // Three changes of orders within a second, well after the boot's config.applied.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (path, body) in [
        (
            "set",
            serde_json::json!({"weight": 60, "message": "marker one"}),
        ),
        ("rollback", serde_json::json!({"message": "marker two"})),
        (
            "set",
            serde_json::json!({"stage": "canary", "weight": 5, "message": "marker three"}),
        ),
    ] {
        let (status, v) = post(&format!("{}/api/v1/routes/orders/{path}", e.admin), body).await;
        assert_eq!(status, 200, "{v}");
    }

    let (_browser, mut page) = open_page(&chromium).await;
    page.navigate(&format!("{}/#/routes/orders", e.admin))
        .await
        .unwrap();
    let markers = page
        .wait_for(
            "the three changes as one marker",
            "(() => { const m = [...document.querySelectorAll('#chart-requests g.marker')].map(g => ({ count: Number(g.dataset.count), label: g.querySelector('text').textContent, title: g.querySelector('title').textContent })); return m.some(x => x.count === 3) && m; })()",
        )
        .await;
    let markers = markers.as_array().unwrap();
    assert_eq!(
        markers.len(),
        2,
        "config.applied, then the group: {markers:?}"
    );
    let group = markers.iter().find(|m| m["count"] == 3).unwrap();
    assert_eq!(group["label"], "set +2", "{group}");
    let title = group["title"].as_str().unwrap();
    for m in ["marker one", "marker two", "marker three"] {
        assert!(title.contains(m), "{title}");
    }
    assert_eq!(title.lines().count(), 3, "{title}");
    assert_eq!(
        markers.iter().find(|m| m["count"] == 1).unwrap()["label"],
        "v1"
    );
}

/// `good` answered requests to the reports route, then `bad` ones its upstream fails (500).
async fn reports_traffic(proxy: &str, good: usize, bad: usize) {
    for i in 0..good {
        let (status, body) = get(&format!("{proxy}/reports/{i}"), "user-1").await;
        assert_eq!(status, 200, "{body}");
    }
    for _ in 0..bad {
        let (status, body) = get(&format!("{proxy}/reports/boom"), "user-1").await;
        assert_eq!(status, 500, "{body}");
    }
}

/// The SLO pages, on `reports`' availability SLO (99 % over 30 days rolling, the default
/// burn-rate rules, which need 100 requests per window). After 150 answered requests and
/// one 500, the overview row shows the objective, the window, the SLI over the window, the
/// budget left as an amber bar and when it runs out; the route's SLO page draws the budget
/// from 100 % (an SVG path, the 0 % line), the burn rate of every window and the four rules,
/// none firing. Two more 500s make the 3d/6h ticket rule fire: the page, refreshing on its
/// own, shows the rule firing, the TICKET badge, the budget overspent and the `slo.firing`
/// event, in the alert history and on the chart; the overview row says TICKET too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slo_pages_show_the_budget_the_burn_rates_and_the_alerts() {
    let Some(chromium) = cdp::chromium_path() else {
        let required = std::env::var("FICUS_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "FICUS_REQUIRE_SERVICES=1 but Chromium is missing"
        );
        eprintln!("skipping the browser test: no /usr/bin/chromium");
        return;
    };
    let e = env().await;
    reports_traffic(&e.proxy, 150, 1).await;
    // Every window holds the same requests: 1 bad in 151 against a 1 % budget.
    let error_budget: f64 = 1.0 - 99.0 / 100.0;
    let burn = 1.0 / (151.0 * error_budget);
    let left = 1.0 - burn;
    let gone_in = (left * 30.0 * 86_400.0 / burn).round() as u64;
    let gone_in = format!("{} d {} h", gone_in / 86_400, gone_in % 86_400 / 3600);

    let (_browser, mut page) = open_page(&chromium).await;
    page.navigate(&format!("{}/#/slo", e.admin)).await.unwrap();
    let row = page
        .wait_for(
            "the reports SLO evaluated over the 151 requests",
            "(() => { const r = document.querySelector('#slo tr[data-slo=\"reports/availability\"][data-total=\"151\"]'); const q = (s) => r.querySelector(s); return r && { bad: r.dataset.bad, objective: q('.slo-objective').innerText, window: q('.slo-window').innerText, sli: q('.slo-sli').firstChild.textContent, budget: Number(q('.budget').dataset.budget), level: q('.budget').dataset.level, fill: parseFloat(q('.budget-fill').style.width), label: q('.budget-label').innerText, burn: q('.slo-burn').innerText, gone: q('.slo-tte').innerText, alerts: q('.slo-alerts').innerText, ticket: r.dataset.ticket }; })()",
        )
        .await;
    assert_eq!(row["bad"], "1", "{row}");
    assert_eq!(row["objective"], "99 % available", "{row}");
    assert_eq!(row["window"], "30 d rolling", "{row}");
    assert_eq!(row["sli"], "99.337 %", "150 of 151: {row}");
    assert!(
        (row["budget"].as_f64().unwrap() - left).abs() < 1e-9,
        "{left}: {row}"
    );
    assert_eq!(
        (&row["level"], &row["label"]),
        (&Value::from("warn"), &Value::from("33.8 %")),
        "amber from 10 to 50 %: {row}"
    );
    assert!(
        (row["fill"].as_f64().unwrap() - left * 100.0).abs() < 0.01,
        "{row}"
    );
    assert_eq!(row["burn"], "0.66×", "{row}");
    assert_eq!(row["gone"], gone_in.as_str(), "{row}");
    assert_eq!(
        (&row["alerts"], &row["ticket"]),
        (&Value::from("none"), &Value::from("false")),
        "{row}"
    );
    page.screenshot(WIDTH, &screenshot_path("slo"))
        .await
        .unwrap();

    // The route's SLO page, through the row's link.
    page.click("#slo tr[data-slo=\"reports/availability\"] a.slo-route-link")
        .await
        .unwrap();
    let card =
        "document.querySelector('#slo-cards section.slo-card[data-slo=\"reports/availability\"]')";
    let shown = page
        .wait_for(
            "the budget chart, the burn rates and the rules",
            &format!(
                "(() => {{ const c = {card}; const p = c && c.querySelector('.slo-budget-chart path.series[data-points]'); return p && c.querySelector('table.burn-rates tr[data-window]') && {{ points: Number(p.dataset.points), d: p.getAttribute('d'), zero: Boolean(c.querySelector('.slo-budget-chart line.zero-line')), ticks: [...c.querySelectorAll('.slo-budget-chart text.tick[text-anchor=end]')].map(t => t.textContent), windows: [...c.querySelectorAll('table.burn-rates tr[data-window]')].map(t => [t.dataset.window, t.querySelector('.burn-rate').innerText, t.dataset.hot]), rules: [...c.querySelectorAll('table.slo-rules tr.rule')].map(t => [t.dataset.severity, t.cells[1].innerText, t.cells[2].innerText, t.dataset.state]) }}; }})()"
            ),
        )
        .await;
    let d = shown["d"].as_str().unwrap();
    assert!(
        shown["points"].as_u64() >= Some(3) && d.starts_with('M') && d.contains('L'),
        "from 100 % at the window's start to now: {shown}"
    );
    assert_eq!(shown["zero"], true, "{shown}");
    assert_eq!(
        shown["ticks"],
        serde_json::json!(["0 %", "25 %", "50 %", "75 %", "100 %"]),
        "{shown}"
    );
    let windows: Vec<&str> = shown["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w[0].as_str().unwrap())
        .collect();
    assert_eq!(
        windows,
        ["5m", "30m", "1h", "2h", "6h", "1d", "3d"],
        "{shown}"
    );
    for w in shown["windows"].as_array().unwrap() {
        assert_eq!(
            (&w[1], &w[2]),
            (&Value::from("0.66×"), &Value::from("false")),
            "{w}"
        );
    }
    assert_eq!(
        shown["rules"],
        serde_json::json!([
            ["page", "1h / 5m", "≥ 14.4×", "ok"],
            ["page", "6h / 30m", "≥ 6×", "ok"],
            ["ticket", "1d / 2h", "≥ 3×", "ok"],
            ["ticket", "3d / 6h", "≥ 1×", "ok"]
        ]),
        "{shown}"
    );

    // 3 bad in 153: a burn rate of 1.96 reaches the 3d/6h ticket rule's factor 1 only.
    reports_traffic(&e.proxy, 0, 2).await;
    let fired = page
        .wait_for(
            "the ticket rule firing and its alert",
            &format!(
                "(() => {{ const c = {card}; const a = document.querySelector('#slo-alerts tr[data-kind=\"slo.firing\"]'); const r = c && c.querySelector('table.slo-rules tr.rule[data-severity=ticket][data-long=\"259200\"][data-state=firing]'); return a && r && {{ states: [...c.querySelectorAll('table.slo-rules tr.rule')].map(t => t.dataset.state), hot: [...c.querySelectorAll('table.burn-rates tr[data-hot=true]')].map(t => t.dataset.window), badge: c.querySelector('.slo-card-head .slo-alert-ticket')?.innerText, level: c.querySelector('.budget').dataset.level, label: c.querySelector('.budget-label').innerText, gone: c.querySelector('.slo-tte').innerText, ticks: [...c.querySelectorAll('.slo-budget-chart text.tick[text-anchor=end]')].map(t => t.textContent), marker: Boolean(c.querySelector('.slo-budget-chart g.marker-slo-firing')), alert: a.innerText }}; }})()"
            ),
        )
        .await;
    assert_eq!(
        fired["states"],
        serde_json::json!(["ok", "ok", "ok", "firing"]),
        "{fired}"
    );
    assert_eq!(fired["hot"], serde_json::json!(["6h", "3d"]), "{fired}");
    assert!(
        fired["badge"]
            .as_str()
            .unwrap()
            .starts_with("TICKET since "),
        "{fired}"
    );
    assert_eq!(
        (&fired["level"], &fired["label"], &fired["gone"]),
        (
            &Value::from("bad"),
            &Value::from("-96.1 % overspent"),
            &Value::from("spent")
        ),
        "{fired}"
    );
    assert_eq!(
        fired["ticks"],
        serde_json::json!(["-100 %", "-50 %", "0 %", "50 %", "100 %"]),
        "the axis reaches below 0 %: {fired}"
    );
    assert_eq!(fired["marker"], true, "{fired}");
    let alert = fired["alert"].as_str().unwrap();
    assert!(
        alert.contains("slo.firing")
            && alert.contains("TICKET")
            && alert.contains("reports/availability")
            && alert.contains("ticket alert firing"),
        "{alert}"
    );
    page.screenshot(WIDTH, &screenshot_path("slo-route"))
        .await
        .unwrap();

    // Back on the overview, the row says so too.
    page.click("nav a[data-nav=slo]").await.unwrap();
    page.wait_for(
        "the TICKET badge and the red bar in the overview",
        "(() => { const r = document.querySelector('#slo tr[data-slo=\"reports/availability\"][data-ticket=true]'); return r && r.querySelector('.slo-alert-ticket')?.innerText.startsWith('TICKET since') && r.querySelector('.budget[data-level=bad]') && r.querySelector('.slo-tte').innerText === 'spent'; })()",
    )
    .await;
    // The route page links to the route's SLO page.
    page.navigate(&format!("{}/#/routes/reports", e.admin))
        .await
        .unwrap();
    page.wait_for(
        "the SLOs link on the route page",
        "document.querySelector('#route-slo-link')",
    )
    .await;
    page.click("#route-slo-link").await.unwrap();
    page.wait_for(
        "the reports SLO page",
        "location.hash === '#/slo/reports' && document.querySelector('#slo-cards section.slo-card[data-slo=\"reports/availability\"] .slo-alert-ticket')",
    )
    .await;
    assert!(
        page.problems.is_empty(),
        "the page logged problems: {:#?}",
        page.problems
    );
    eprintln!(
        "screenshots: {}, {}",
        screenshot_path("slo").display(),
        screenshot_path("slo-route").display()
    );
}

/// The flags of the flag test (added to [`config`] by [`env_with`]): a rule on `plan` and
/// the app's version, a split, a disabled flag; and the OFREP section the listener reads.
const FLAGS: &str = r#"[[flag]]
key = "new-checkout"
variants = { on = true, off = false }
default = "off"
metadata = { owner = "payments" }
[[flag.rule]]
when = [
  { attribute = "plan", in = ["pro", "team"] },
  { attribute = "appVersion", semver = ">= 2.1.0" },
]
variant = "on"
[[flag]]
key = "theme"
variants = { light = "light", dark = "dark" }
default = "light"
[[flag.rule]]
split = { dark = 10, light = 90 }
[[flag]]
key = "old-banner"
variants = { spring = { color = "green" }, none = {} }
default = "spring"
enabled = false
[ofrep]
bind = "127.0.0.1:0"
"#;

/// An OFREP listener on 127.0.0.1:0 for `control`, as `ficus run` starts it; its base URL.
async fn ofrep(control: &Arc<ControlPlane>) -> String {
    let settings = control.snapshot().effective.ofrep.clone();
    let state = ficus_ofrep::OfrepState::new(control.clone(), settings).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(ficus_ofrep::serve(listener, state, std::future::pending()));
    url
}

/// One OFREP evaluation of `key` for `context`, over HTTP; the resolution.
async fn evaluate(ofrep: &str, key: &str, context: Value) -> Value {
    let c = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let req = hyper::Request::post(format!("{ofrep}/ofrep/v1/evaluate/flags/{key}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            serde_json::json!({ "context": context }).to_string(),
        )))
        .unwrap();
    let resp = c.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    assert_eq!(status, 200, "{key} {context}: {v}");
    v
}

/// A pro user on a recent app: new-checkout's rule matches.
fn pro_user(i: usize) -> Value {
    serde_json::json!({ "targetingKey": format!("user-{i}"), "plan": "pro", "appVersion": "2.3.0" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flag_pages_show_the_evaluations_and_the_kill_switch_serves_off_to_everyone() {
    let Some(chromium) = cdp::chromium_path() else {
        let required = std::env::var("FICUS_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "FICUS_REQUIRE_SERVICES=1 but Chromium is missing"
        );
        eprintln!("skipping the browser test: no /usr/bin/chromium");
        return;
    };
    let e = env_with(FLAGS).await;
    let ofrep = ofrep(&e.control).await;
    // 30 pro users on a recent app get on by the rule; 20 without a plan get the default.
    for i in 0..30 {
        let v = evaluate(&ofrep, "new-checkout", pro_user(i)).await;
        assert_eq!(
            (&v["variant"], &v["reason"]),
            (&Value::from("on"), &Value::from("TARGETING_MATCH")),
            "{v}"
        );
    }
    for i in 30..50 {
        let v = evaluate(
            &ofrep,
            "new-checkout",
            serde_json::json!({ "targetingKey": format!("user-{i}") }),
        )
        .await;
        assert_eq!(
            (&v["variant"], &v["reason"]),
            (&Value::from("off"), &Value::from("DEFAULT")),
            "{v}"
        );
    }
    // 40 users through the split: whatever their buckets, the page counts what OFREP served.
    let mut theme = std::collections::BTreeMap::<String, u64>::new();
    for i in 0..40 {
        let v = evaluate(
            &ofrep,
            "theme",
            serde_json::json!({ "targetingKey": format!("user-{i}") }),
        )
        .await;
        assert_eq!(v["reason"], "SPLIT", "{v}");
        *theme
            .entry(v["variant"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    for _ in 0..5 {
        let v = evaluate(&ofrep, "old-banner", serde_json::json!({})).await;
        assert_eq!(v["reason"], "DISABLED", "{v}");
    }

    let (_browser, mut page) = open_page(&chromium).await;
    page.navigate(&format!("{}/#/flags", e.admin))
        .await
        .unwrap();
    let rows = page
        .wait_for(
            "the three flags with their evaluations",
            "(() => { const r = [...document.querySelectorAll('#flags tbody tr[data-flag]')]; return r.length === 3 && r.map(t => [t.dataset.flag, t.dataset.evaluations, t.dataset.enabled, t.dataset.override, [...t.cells].map(c => c.innerText.trim())]); })()",
        )
        .await;
    assert_eq!(
        rows,
        serde_json::json!([
            [
                "new-checkout",
                "50",
                "true",
                "",
                [
                    "new-checkout",
                    "boolean",
                    "enabled",
                    "off",
                    "off, on",
                    "1",
                    "—",
                    "50",
                    "—"
                ]
            ],
            [
                "old-banner",
                "5",
                "false",
                "",
                [
                    "old-banner",
                    "object",
                    "disabled",
                    "spring",
                    "none, spring",
                    "0",
                    "—",
                    "5",
                    "—"
                ]
            ],
            [
                "theme",
                "40",
                "true",
                "",
                [
                    "theme",
                    "string",
                    "enabled",
                    "light",
                    "dark, light",
                    "1",
                    "—",
                    "40",
                    "—"
                ]
            ]
        ]),
        "sorted by key; no rate before a second refresh"
    );
    assert_eq!(
        page.eval("document.querySelector('nav a[data-nav=flags]').getAttribute('aria-current')")
            .await
            .unwrap(),
        "page"
    );
    // Evaluations while the list is shown: the next refresh has a rate.
    for _ in 0..10 {
        evaluate(&ofrep, "old-banner", serde_json::json!({})).await;
    }
    let rate = page
        .wait_for(
            "old-banner's rate after 10 more evaluations",
            "(() => { const r = document.querySelector('#flags tr[data-flag=\"old-banner\"][data-evaluations=\"15\"]'); return r && Number(r.dataset.rate) > 0 && r.querySelector('.flag-rate').innerText; })()",
        )
        .await;
    assert!(rate.as_str().unwrap().ends_with("/s"), "{rate}");
    page.screenshot(WIDTH, &screenshot_path("flags"))
        .await
        .unwrap();

    // The flag's page, through the list's link: the rule in words, the bars with the counts.
    page.click("#flags tr[data-flag=\"new-checkout\"] a.flag-link")
        .await
        .unwrap();
    let shown = page
        .wait_for(
            "new-checkout's page with its evaluations",
            "(() => { const t = document.querySelector('#flag-evaluations'); const on = t && t.querySelector('tr[data-variant=\"on\"][data-count=\"30\"]'); return on && { total: t.dataset.total, bars: [...t.querySelectorAll('tbody tr')].map(r => [r.dataset.variant, Number(r.dataset.count), Number(r.dataset.share), parseFloat(r.querySelector('.flag-bar-fill').style.width), r.querySelector('.flag-eval-count').innerText, r.querySelector('.flag-eval-share').innerText, [...r.querySelectorAll('.flag-reason')].map(s => [s.dataset.reason, Number(s.dataset.count)])]), rules: [...document.querySelectorAll('#flag-rules li .flag-rule-text')].map(l => l.innerText), variants: [...document.querySelectorAll('#flag-variants tbody tr')].map(r => [r.dataset.variant, r.cells[1].innerText]), banner: document.querySelector('#flag-override').hidden, reset: document.querySelector('#flag-reset').hidden, sub: document.querySelector('#flag-summary').innerText }; })()",
        )
        .await;
    assert_eq!(shown["total"], "50", "{shown}");
    assert_eq!(
        shown["bars"],
        serde_json::json!([
            ["off", 20, 0.4, 40, "20", "40 %", [["DEFAULT", 20]]],
            ["on", 30, 0.6, 60, "30", "60 %", [["TARGETING_MATCH", 30]]]
        ]),
        "{shown}"
    );
    assert_eq!(
        shown["rules"],
        serde_json::json!([
            "when plan in [pro, team] and appVersion >= 2.1.0 → on",
            "no rule matched → off"
        ]),
        "{shown}"
    );
    assert_eq!(
        shown["variants"],
        serde_json::json!([["off", "false"], ["on", "true"]]),
        "{shown}"
    );
    assert_eq!(
        (&shown["banner"], &shown["reset"]),
        (&Value::Bool(true), &Value::Bool(true)),
        "not overridden: {shown}"
    );
    let sub = shown["sub"].as_str().unwrap();
    assert!(
        sub.contains("boolean")
            && sub.contains("default off")
            && sub.contains("owner: \"payments\""),
        "{sub}"
    );

    // The split in percentages, and its counts, on its own page.
    page.navigate(&format!("{}/#/flags/theme", e.admin))
        .await
        .unwrap();
    let split = page
        .wait_for(
            "theme's split and its evaluations",
            "(() => { const t = document.querySelector('#flag-evaluations[data-total=\"40\"]'); return t && { rules: [...document.querySelectorAll('#flag-rules li .flag-rule-text')].map(l => l.innerText), counts: Object.fromEntries([...t.querySelectorAll('tbody tr')].map(r => [r.dataset.variant, Number(r.dataset.count)])) }; })()",
        )
        .await;
    assert_eq!(
        split["rules"],
        serde_json::json!([
            "everyone → dark 10 % · light 90 %, by targetingKey",
            "no rule matched → light"
        ]),
        "{split}"
    );
    let mut expected = serde_json::json!({ "dark": 0, "light": 0 });
    for (variant, n) in &theme {
        expected[variant] = Value::from(*n);
    }
    assert_eq!(split["counts"], expected, "as OFREP served them: {split}");
    // The disabled flag: the evaluations that served no value.
    page.navigate(&format!("{}/#/flags/old-banner", e.admin))
        .await
        .unwrap();
    let none = page
        .wait_for(
            "old-banner's evaluations without a value",
            "(() => { const r = document.querySelector('#flag-evaluations tr[data-variant=\"\"][data-count=\"15\"]'); return r && { label: r.cells[0].innerText, reasons: r.querySelector('.flag-reasons').innerText, enable: document.querySelector('#flag-enable').disabled, disable: document.querySelector('#flag-disable').disabled }; })()",
        )
        .await;
    assert_eq!(
        none,
        serde_json::json!({ "label": "(no value)", "reasons": "DISABLED 15", "enable": false, "disable": true }),
        "{none}"
    );

    // The kill switch: serve off to everyone, with the token typed in the dialog.
    page.navigate(&format!("{}/#/flags/new-checkout", e.admin))
        .await
        .unwrap();
    page.wait_for(
        "the kill switch's variants",
        "document.querySelectorAll('#flag-variant option').length === 2",
    )
    .await;
    page.fill("#flag-variant", "off").await.unwrap();
    page.click("#flag-serve").await.unwrap();
    page.wait_for(
        "the confirm dialog asking for the token",
        "document.querySelector('#confirm-dialog').open && !document.querySelector('#confirm-token-row').hidden && document.querySelector('#confirm-title').textContent === 'Kill switch on new-checkout: serve off to everyone'",
    )
    .await;
    page.fill("#confirm-message", "browser test: checkout errors, INC-1")
        .await
        .unwrap();
    page.fill("#confirm-token", TOKEN).await.unwrap();
    page.click("#confirm-ok").await.unwrap();
    let result = page
        .wait_for(
            "the recorded flag.set event",
            "(() => { const r = document.querySelector('#result.result-ok'); return r && !r.hidden && r.innerText.includes('flag.set') && r.innerText; })()",
        )
        .await;
    let events = api(&format!("{}/api/v1/events?kind=flag.set", e.admin)).await;
    let id = events[0]["id"].as_i64().unwrap();
    let result = result.as_str().unwrap();
    assert!(
        result.contains(&format!("event #{id} by api:dashboard"))
            && result.contains("browser test: checkout errors, INC-1")
            && result.contains("flag new-checkout: variant (rules) → off"),
        "{result}"
    );
    let banner = page
        .wait_for(
            "the override banner",
            "(() => { const b = document.querySelector('#flag-override'); const f = document.querySelector('#flag-file'); return b && !b.hidden && f && !document.querySelector('#flag-reset').hidden && document.querySelector('#flag-rules.set-aside') && { text: b.innerText, override: b.dataset.override, file: [f.dataset.default, f.dataset.rules, f.dataset.enabled], badge: document.querySelector('.badges .flag-override')?.innerText }; })()",
        )
        .await;
    assert_eq!(banner["override"], "variant off", "{banner}");
    assert_eq!(
        banner["file"],
        serde_json::json!(["off", "1", "true"]),
        "{banner}"
    );
    assert_eq!(banner["badge"], "override · variant off", "{banner}");
    let text = banner["text"].as_str().unwrap();
    assert!(
        text.contains("Kill switch: every context gets off (false)")
            && text.contains("In the file: default off, 1 rule, enabled.")
            && text.contains(&format!("event #{id}")),
        "{text}"
    );
    let api_flag = api(&format!("{}/api/v1/flags/new-checkout", e.admin)).await;
    assert_eq!(
        api_flag["override"],
        serde_json::json!({ "flag": "new-checkout", "variant": "off", "enabled": null }),
        "{api_flag}"
    );
    assert_eq!(
        e.control.snapshot().flag_overrides,
        vec![ficus_config::plan::FlagOverride {
            flag: "new-checkout".into(),
            variant: Some("off".into()),
            enabled: None,
        }]
    );
    // A pro user now gets off, marked as the override's.
    let v = evaluate(&ofrep, "new-checkout", pro_user(0)).await;
    assert_eq!(
        (&v["variant"], &v["reason"], &v["metadata"]["ficusOverride"]),
        (
            &Value::from("off"),
            &Value::from("STATIC"),
            &Value::Bool(true)
        ),
        "{v}"
    );
    page.wait_for(
        "the STATIC evaluation on the page",
        "document.querySelector('#flag-evaluations tr[data-variant=\"off\"][data-count=\"21\"] .flag-reason[data-reason=STATIC][data-count=\"1\"]')",
    )
    .await;
    page.screenshot(WIDTH, &screenshot_path("flag"))
        .await
        .unwrap();

    // The list shows the override too.
    page.click("nav a[data-nav=flags]").await.unwrap();
    let badge = page
        .wait_for(
            "the override badge in the list",
            "(() => { const r = document.querySelector('#flags tr[data-flag=\"new-checkout\"][data-override=\"variant off\"]'); return r && r.querySelector('.flag-override').title; })()",
        )
        .await;
    assert!(
        badge.as_str().unwrap().contains("every context gets off"),
        "{badge}"
    );

    // Back to the file, from the flag's page: the token is remembered for the tab.
    page.click("#flags tr[data-flag=\"new-checkout\"] a.flag-link")
        .await
        .unwrap();
    page.wait_for(
        "the Back to the file button",
        "document.querySelector('#flag-reset') && !document.querySelector('#flag-reset').hidden",
    )
    .await;
    page.click("#flag-reset").await.unwrap();
    page.wait_for(
        "the confirm dialog without a token field",
        "document.querySelector('#confirm-dialog').open && document.querySelector('#confirm-token-row').hidden",
    )
    .await;
    page.fill("#confirm-message", "browser test: fixed")
        .await
        .unwrap();
    page.click("#confirm-ok").await.unwrap();
    page.wait_for(
        "the recorded flag.reset event",
        "document.querySelector('#result.result-ok')?.innerText.includes('flag.reset')",
    )
    .await;
    page.wait_for(
        "the banner gone and the rules back",
        "document.querySelector('#flag-override').hidden && document.querySelector('#flag-reset').hidden && document.querySelector('#flag-rules:not(.set-aside)') && !document.querySelector('.badges .flag-override')",
    )
    .await;
    let api_flag = api(&format!("{}/api/v1/flags/new-checkout", e.admin)).await;
    assert!(api_flag.get("override").is_none(), "{api_flag}");
    assert!(e.control.snapshot().flag_overrides.is_empty());
    let v = evaluate(&ofrep, "new-checkout", pro_user(0)).await;
    assert_eq!(
        (&v["variant"], &v["reason"]),
        (&Value::from("on"), &Value::from("TARGETING_MATCH")),
        "{v}"
    );
    assert!(
        page.problems.is_empty(),
        "the page logged problems: {:#?}",
        page.problems
    );
    eprintln!(
        "screenshots: {}, {}",
        screenshot_path("flags").display(),
        screenshot_path("flag").display()
    );
}

/// A route that records from the file: half its sticky keys, bodies over 16 bytes dropped
/// (`over_cap = "drop"`), into a `[record] dir` with a key written by the test.
fn record_routes(dir: &std::path::Path) -> String {
    format!(
        r#"[[route]]
name = "archive"
path_prefix = "/archive"
legacy = "legacy"
sticky = "header:x-user"
[route.record]
sample = 50
max_body = "16B"
over_cap = "drop"
[record]
dir = "{dir}"
key_file = "{key}"
"#,
        dir = dir.join("recordings").display(),
        key = dir.join("redaction.key").display(),
    )
}

/// A POST with a body through the gateway as `user`; the status.
async fn post_as(url: &str, user: &str, body: &str) -> u16 {
    let c = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let req = hyper::Request::post(url)
        .header("x-user", user)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = c.request(req).await.unwrap();
    let status = resp.status().as_u16();
    resp.into_body().collect().await.unwrap();
    status
}

/// Polls `GET /api/v1/record` until `route` has seen `requests` requests and every one is
/// accounted for (nothing in progress: the writer writes a block at least every second).
async fn wait_for_recorded(admin: &str, route: &str, requests: u64) -> (Value, Value) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let all = api(&format!("{admin}/api/v1/record")).await;
        let r = all["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["route"] == route)
            .cloned();
        if let Some(r) = r {
            let n = |k: &str| r[k].as_u64().unwrap();
            if n("requests") == requests
                && n("in_progress") == 0
                && n("recorded") + n("sampled_out") + n("dropped_total") == requests
            {
                return (all, r);
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{route} did not account for {requests} requests in 15 s: {all}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The page's row of `route` on the recordings page, once it shows `requests` requests:
/// its data attributes, its cells' text and its dropped reasons.
const RECORD_ROW_JS: &str = "(() => { const r = document.querySelector('#recordings tr[data-route=\"ROUTE\"][data-requests=\"REQUESTS\"][data-state=\"STATE\"]'); return r && { data: Object.assign({}, r.dataset), cells: [...r.cells].map(c => c.innerText.trim()), drops: [...r.querySelectorAll('.rec-drop')].map(s => [s.dataset.reason, Number(s.dataset.count), s.innerText]), action: r.querySelector('td.actions button')?.className }; })()";

fn record_row_js(route: &str, requests: u64, state: &str) -> String {
    RECORD_ROW_JS
        .replace("ROUTE", route)
        .replace("REQUESTS", &requests.to_string())
        .replace("STATE", state)
}

/// The first number in a cell's text ("= 1,234" → 1234).
fn cell_number(text: &Value) -> u64 {
    let t = text.as_str().unwrap();
    let digits: String = t
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number in {t:?}"))
}

/// A run's report as `ficus replay --json --compare` writes it: against the recording, one
/// price that differs on one item in five (real) and a timestamp that differs on every call,
/// the target's own answers included (noise).
fn compared_report() -> Value {
    let field =
        |path: &str, differing: u64, noise_differing: u64, verdict: &str, samples: &[u64]| {
            serde_json::json!({
                "path": path, "kind": "value", "differing": differing,
                "rate": differing as f64 / 100.0, "noise_scope": "endpoint", "noise_compared": 25,
                "noise_differing": noise_differing, "noise_rate": noise_differing as f64 / 25.0,
                "route_rate": null, "verdict": verdict, "last_ms": 1_700_000_000_000i64,
                "sample_ids": samples
            })
        };
    let endpoint = serde_json::json!({
        "endpoint": "GET /catalog/{id}",
        "compared": 100,
        "differing": 100,
        "noise_compared": 25,
        "noise_differing": 25,
        "rate": 0.2,
        "last_ms": 1_700_000_000_000i64,
        "fields": [field("$.price", 20, 0, "real", &[3, 17]), field("$.ts", 100, 25, "noise", &[1])]
    });
    let comparison = serde_json::json!({
        "against": "recording",
        "compared": 98,
        "skipped_truncated": 1,
        "reference_failed": 0,
        "routes": [{
            "route": "catalog",
            "compared": 100,
            "differing": 100,
            "noise_compared": 25,
            "noise_differing": 25,
            "rate": 0.2,
            "endpoints": [endpoint]
        }]
    });
    serde_json::json!({
        "planned": 104,
        "sent": 100,
        "answered": 98,
        "errors": [{ "kind": "timeout", "count": 2 }],
        "dropped_in_flight": 0,
        "skipped": { "filter": 0, "unsafe": 3, "truncated_body": 1 },
        "statuses": [
            { "status": 200, "count": 94 },
            { "status": 404, "count": 3 },
            { "status": 500, "count": 1 }
        ],
        "status_mismatches": 4,
        "mismatches": [
            { "recorded": 200, "replayed": 404, "count": 3 },
            { "recorded": 200, "replayed": 500, "count": 1 }
        ],
        "latency": { "p50_us": 1830, "p99_us": 12400, "p999_us": 25100, "max_us": 31000 },
        "lateness": { "p50_us": 40, "p99_us": 380, "p999_us": 900, "max_us": 1200 },
        "schedule_s": 10.0,
        "sending_s": 10.002,
        "took_s": 10.4,
        "rate_per_s": 9.998,
        "torn": null,
        "comparison": comparison
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recordings_page_adds_up_starts_and_stops_and_the_replays_rank_their_fields() {
    let Some(chromium) = cdp::chromium_path() else {
        let required = std::env::var("FICUS_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "FICUS_REQUIRE_SERVICES=1 but Chromium is missing"
        );
        eprintln!("skipping the browser test: no /usr/bin/chromium");
        return;
    };
    let rec = tempfile::tempdir().unwrap();
    std::fs::write(
        rec.path().join("redaction.key"),
        "a-redaction-key-of-32-bytes-0123",
    )
    .unwrap();
    let e = env_with(&record_routes(rec.path())).await;

    // 40 users read (about half of them sampled out), 20 upload a body over the 16-byte cap
    // (those sampled in are dropped: body_over_cap): every request answered all the same.
    for i in 0..40 {
        let (status, body) = get(&format!("{}/archive/{i}", e.proxy), &format!("user-{i}")).await;
        assert_eq!(status, 200, "{body}");
    }
    let upload = "x".repeat(100);
    for i in 0..20 {
        let status = post_as(
            &format!("{}/archive/upload", e.proxy),
            &format!("user-{i}"),
            &upload,
        )
        .await;
        assert_eq!(status, 200);
    }
    let (all, archive) = wait_for_recorded(&e.admin, "archive", 60).await;
    let n = |r: &Value, k: &str| r[k].as_u64().unwrap();
    assert_eq!(
        (&archive["state"], &archive["source"]),
        (&Value::from("recording"), &Value::from("config")),
        "{archive}"
    );
    assert!(
        n(&archive, "recorded") > 0 && n(&archive, "sampled_out") > 0,
        "{archive}"
    );
    assert!(
        n(&archive["dropped"], "body_over_cap") > 0,
        "uploads of sampled-in users are dropped: {archive}"
    );

    let (_browser, mut page) = open_page(&chromium).await;
    page.navigate(&format!("{}/#/recordings", e.admin))
        .await
        .unwrap();
    let row = page
        .wait_for(
            "archive's row with every request accounted for",
            &record_row_js("archive", 60, "recording"),
        )
        .await;
    // The page's numbers are the API's.
    let data = &row["data"];
    for (attr, key) in [
        ("requests", "requests"),
        ("recorded", "recorded"),
        ("sampledOut", "sampled_out"),
        ("dropped", "dropped_total"),
        ("inProgress", "in_progress"),
        ("bytes", "bytes"),
        ("files", "files"),
    ] {
        assert_eq!(
            data[attr].as_str().unwrap(),
            archive[key].to_string(),
            "{attr}: {row} vs {archive}"
        );
    }
    assert_eq!(
        (&data["source"], &data["sample"], &data["addsUp"]),
        (
            &Value::from("config"),
            &Value::from("50"),
            &Value::from("true")
        ),
        "{row}"
    );
    // And the cells show them, visibly adding up: requests = recorded + sampled out +
    // dropped + in progress.
    let cells = row["cells"].as_array().unwrap();
    assert_eq!(
        cells[..5],
        [
            Value::from("archive"),
            Value::from("recording"),
            Value::from("config"),
            Value::from("50 %"),
            Value::from("while configured")
        ],
        "{row}"
    );
    let shown: Vec<u64> = cells[5..10].iter().map(cell_number).collect();
    assert_eq!(
        shown,
        vec![
            60,
            n(&archive, "recorded"),
            n(&archive, "sampled_out"),
            n(&archive, "dropped_total"),
            0
        ],
        "{row}"
    );
    assert_eq!(shown[0], shown[1..].iter().sum::<u64>(), "{row}");
    for (i, op) in [(6, "= "), (7, "+ "), (8, "+ "), (9, "+ ")] {
        assert!(cells[i].as_str().unwrap().starts_with(op), "{row}");
    }
    assert_eq!(cell_number(&cells[12]), n(&archive, "files"), "{row}");
    // The dropped reasons that happened, and only those.
    let mut reasons: Vec<Value> = Vec::new();
    for (k, v) in archive["dropped"].as_object().unwrap() {
        if v.as_u64().unwrap() > 0 {
            reasons.push(serde_json::json!([k, v]));
        }
    }
    let drops: Vec<Value> = row["drops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| serde_json::json!([d[0], d[1]]))
        .collect();
    assert_eq!(drops, reasons, "{row} vs {archive}");
    assert!(
        row["drops"][0][2]
            .as_str()
            .unwrap()
            .ends_with("body over cap"),
        "{row}"
    );
    assert!(
        row["action"].as_str().unwrap().contains("record-stop"),
        "{row}"
    );
    // The node's folder and bytes.
    let node = page
        .eval("(() => { const p = document.querySelector('#recordings-node'); return Object.assign({ text: p.innerText }, p.dataset); })()")
        .await
        .unwrap();
    assert_eq!(node["dir"], all["dir"], "{node}");
    assert_eq!(node["node"], all["node"], "{node}");
    assert_eq!(node["totalBytes"], all["total_bytes"].to_string(), "{node}");
    assert!(
        all["dir"]
            .as_str()
            .unwrap()
            .starts_with(&rec.path().display().to_string()),
        "{all}"
    );
    assert_eq!(
        page.eval(
            "document.querySelector('nav a[data-nav=recordings]').getAttribute('aria-current')"
        )
        .await
        .unwrap(),
        "page"
    );

    // A runtime recording of orders, from the page's form, with the token typed in the dialog.
    page.wait_for(
        "the routes in the start form",
        "[...document.querySelectorAll('#record-route option')].some(o => o.value === 'orders')",
    )
    .await;
    page.fill("#record-route", "orders").await.unwrap();
    page.fill("#record-sample", "10").await.unwrap();
    page.fill("#record-for", "1h").await.unwrap();
    page.fill("#record-max-size", "2MiB").await.unwrap();
    page.click("#record-start").await.unwrap();
    page.wait_for(
        "the confirm dialog asking for the token",
        "document.querySelector('#confirm-dialog').open && !document.querySelector('#confirm-token-row').hidden && document.querySelector('#confirm-title').textContent === 'Start recording orders'",
    )
    .await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    page.fill("#confirm-message", "browser test: capture before the move")
        .await
        .unwrap();
    page.fill("#confirm-token", TOKEN).await.unwrap();
    page.click("#confirm-ok").await.unwrap();
    let result = page
        .wait_for(
            "the recorded record.started event",
            "(() => { const r = document.querySelector('#result.result-ok'); return r && !r.hidden && r.innerText.includes('record.started') && r.innerText; })()",
        )
        .await;
    let events = api(&format!("{}/api/v1/events?kind=record.started", e.admin)).await;
    let id = events[0]["id"].as_i64().unwrap();
    assert_eq!(events[0]["route"], "orders", "{events}");
    assert_eq!(events[0]["data"]["sample_bp"], 1000, "{events}");
    let result = result.as_str().unwrap();
    assert!(
        result.contains(&format!("event #{id} by api:dashboard"))
            && result.contains("browser test: capture before the move")
            && result.contains("recording: sample 10%, until ")
            && result.contains("at most 2 MiB per node"),
        "{result}"
    );
    let listed = api(&format!("{}/api/v1/record", e.admin)).await;
    let orders = listed["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == "orders")
        .cloned()
        .unwrap_or_else(|| panic!("orders is not listed: {listed}"));
    assert_eq!(
        (
            &orders["state"],
            &orders["source"],
            &orders["sample_percent"],
            &orders["max_size"],
            &orders["event_id"]
        ),
        (
            &Value::from("recording"),
            &Value::from("runtime"),
            &Value::from(10.0),
            &Value::from(2 * 1024 * 1024),
            &Value::from(id)
        ),
        "{orders}"
    );
    let until = orders["until_ms"].as_u64().unwrap();
    assert!(
        until >= before + 3_590_000 && until <= before + 3_610_000,
        "until {until}, started about {before}"
    );
    // Its traffic: a tenth of the users recorded, the rest sampled out, all accounted for.
    for i in 0..30 {
        get(&format!("{}/orders/{i}", e.proxy), &format!("user-{i}")).await;
    }
    let (_, orders) = wait_for_recorded(&e.admin, "orders", 30).await;
    let row = page
        .wait_for(
            "orders recording at runtime on the page",
            &record_row_js("orders", 30, "recording"),
        )
        .await;
    assert_eq!(row["data"]["source"], "runtime", "{row}");
    assert_eq!(row["data"]["until"], until.to_string(), "{row}");
    assert_eq!(row["data"]["addsUp"], "true", "{row}");
    let cells = row["cells"].as_array().unwrap();
    assert_eq!(
        cells[2..4],
        [Value::from("runtime"), Value::from("10 %")],
        "{row}"
    );
    let left = cells[4].as_str().unwrap();
    assert!(
        left.starts_with("59 min") || left == "1 h",
        "about an hour left: {row}"
    );
    let shown: Vec<u64> = cells[5..10].iter().map(cell_number).collect();
    assert_eq!(
        shown,
        vec![
            30,
            n(&orders, "recorded"),
            n(&orders, "sampled_out"),
            n(&orders, "dropped_total"),
            0
        ],
        "{row} vs {orders}"
    );
    assert!(cells[11].as_str().unwrap().contains("of 2 MiB"), "{row}");
    let fits = page
        .eval("(() => { const m = document.querySelector('#main'); return document.querySelector('#recordings').getBoundingClientRect().right <= m.getBoundingClientRect().right - parseFloat(getComputedStyle(m).paddingRight) + 0.5; })()")
        .await
        .unwrap();
    assert_eq!(fits, true, "the recordings overflow {WIDTH} px");
    page.screenshot(WIDTH, &screenshot_path("recordings"))
        .await
        .unwrap();

    // Stop it from its row: the token is remembered for the tab.
    page.click("#recordings tr[data-route=\"orders\"] button.record-stop")
        .await
        .unwrap();
    page.wait_for(
        "the stop's confirm dialog without a token field",
        "document.querySelector('#confirm-dialog').open && document.querySelector('#confirm-token-row').hidden && document.querySelector('#confirm-title').textContent === 'Stop recording orders'",
    )
    .await;
    page.fill("#confirm-message", "browser test: enough")
        .await
        .unwrap();
    page.click("#confirm-ok").await.unwrap();
    page.wait_for(
        "the recorded record.stopped event",
        "document.querySelector('#result.result-ok')?.innerText.includes('record.stopped')",
    )
    .await;
    let stopped = api(&format!("{}/api/v1/events?kind=record.stopped", e.admin)).await;
    assert_eq!(
        (&stopped[0]["route"], &stopped[0]["message"]),
        (&Value::from("orders"), &Value::from("browser test: enough")),
        "{stopped}"
    );
    let listed = api(&format!("{}/api/v1/record", e.admin)).await;
    let orders = listed["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == "orders")
        .cloned()
        .unwrap();
    assert_eq!(
        (&orders["state"], &orders["source"]),
        (&Value::from("stopped"), &Value::Null),
        "{orders}"
    );
    let row = page
        .wait_for(
            "orders stopped on the page",
            &record_row_js("orders", 30, "stopped"),
        )
        .await;
    assert_eq!(
        row["cells"].as_array().unwrap()[1..5],
        [
            Value::from("stopped"),
            Value::from("—"),
            Value::from("—"),
            Value::from("—")
        ],
        "{row}"
    );
    assert!(
        row["action"].as_str().unwrap().contains("record-prefill"),
        "{row}"
    );
    // archive records on.
    page.wait_for(
        "archive still recording",
        "document.querySelector('#recordings tr[data-route=\"archive\"][data-state=\"recording\"] button.record-stop')",
    )
    .await;

    // Replays: none kept yet, then two saved as `ficus replay --save` does.
    page.click("nav a[data-nav=replays]").await.unwrap();
    let none = page
        .wait_for(
            "the replays' empty state",
            "document.querySelector('#replays-none')?.innerText",
        )
        .await;
    assert!(
        none.as_str()
            .unwrap()
            .contains("ficus replay FILE --target URL --compare --save"),
        "{none}"
    );
    let plain = serde_json::json!({
        "planned": 120, "sent": 120, "answered": 120, "errors": [], "dropped_in_flight": 0,
        "skipped": { "filter": 0, "unsafe": 0, "truncated_body": 0 },
        "statuses": [{ "status": 200, "count": 120 }], "status_mismatches": 0, "mismatches": [],
        "latency": { "p50_us": 900, "p99_us": 4000, "p999_us": 6000, "max_us": 6100 },
        "lateness": { "p50_us": 30, "p99_us": 200, "p999_us": 300, "max_us": 310 },
        "schedule_s": 12.0, "sending_s": 12.0, "took_s": 12.1, "rate_per_s": 10.0, "torn": null
    });
    let (status, first) = post(
        &format!("{}/api/v1/replays", e.admin),
        serde_json::json!({ "file": "recordings/archive/archive-a.ficusrec", "target": "http://staging:8080", "reference": "none", "report": plain }),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = post(
        &format!("{}/api/v1/replays", e.admin),
        serde_json::json!({ "file": "recordings/catalog/catalog-b.ficusrec", "target": "http://modern:8080", "reference": "recording", "report": compared_report() }),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["real"], 1, "{second}");
    let (id1, id2) = (
        first["id"].as_i64().unwrap(),
        second["id"].as_i64().unwrap(),
    );
    let runs = api(&format!("{}/api/v1/replays", e.admin)).await;
    let rows = page
        .wait_for(
            "the two runs, newest first",
            "(() => { const r = [...document.querySelectorAll('#replays tbody tr[data-replay]')]; return r.length === 2 && !document.querySelector('#replays-none') && r.map(t => ({ id: Number(t.dataset.replay), real: t.dataset.real, highlighted: t.classList.contains('has-real'), cells: [...t.cells].map(c => c.innerText.trim()) })); })()",
        )
        .await;
    assert_eq!(rows[0]["id"], id2, "{rows}");
    assert_eq!(rows[1]["id"], id1, "{rows}");
    assert_eq!(
        (&rows[0]["real"], &rows[0]["highlighted"]),
        (&Value::from("1"), &Value::Bool(true)),
        "{rows}"
    );
    assert_eq!(
        (&rows[1]["real"], &rows[1]["highlighted"]),
        (&Value::from("0"), &Value::Bool(false)),
        "{rows}"
    );
    let (c0, c1) = (
        rows[0]["cells"].as_array().unwrap(),
        rows[1]["cells"].as_array().unwrap(),
    );
    assert_eq!(c0[0], format!("#{id2}"), "{rows}");
    assert_eq!(c0[2], runs[0]["actor"], "{rows} vs {runs}");
    assert_eq!(
        c0[3..],
        [
            Value::from("recordings/catalog/catalog-b.ficusrec"),
            Value::from("http://modern:8080"),
            Value::from("the recording"),
            Value::from("100"),
            Value::from("1 real")
        ],
        "{rows}"
    );
    assert_eq!(
        c1[5..],
        [
            Value::from("not compared"),
            Value::from("120"),
            Value::from("—")
        ],
        "{rows}"
    );
    assert!(page
        .eval("document.querySelector('#replays-summary').innerText")
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .contains("2 runs kept · 1 with real differences"));
    let fits = page
        .eval("(() => { const m = document.querySelector('#main'); return document.querySelector('#replays').getBoundingClientRect().right <= m.getBoundingClientRect().right - parseFloat(getComputedStyle(m).paddingRight) + 0.5; })()")
        .await
        .unwrap();
    assert_eq!(fits, true, "the replays overflow {WIDTH} px");
    page.screenshot(WIDTH, &screenshot_path("replays"))
        .await
        .unwrap();

    // The compared run's page: its summary and its fields, ranked like the shadow diffs.
    page.click(&format!("#replays tr[data-replay=\"{id2}\"] a.replay-link"))
        .await
        .unwrap();
    let shown = page
        .wait_for(
            "the run's summary and its ranked fields",
            "(() => { const c = document.querySelector('#replay-comparison'); const rows = c && [...c.querySelectorAll('.replay-route .endpoint tr.field')]; if (!rows || !rows.length) return null; const counter = (k) => document.querySelector(`#replay-summary dd[data-counter=${k}]`); return { fields: rows.map(t => ({ path: t.dataset.path, verdict: t.dataset.verdict, rate: Number(t.dataset.rate), group: t.parentElement.className, rateText: t.querySelector('.field-rate').innerText, badge: t.querySelector('.verdict').innerText, samples: t.querySelector('.samples').innerText })), noiseHead: c.querySelector('.noise-head')?.innerText, endpoint: c.querySelector('.endpoint').dataset.endpoint, route: c.querySelector('.replay-route').dataset.route, summary: document.querySelector('#replay-comparison-summary').innerText, real: document.querySelector('#replay-comparison-summary').dataset.real, counters: Object.fromEntries(['planned', 'sent', 'answered', 'errors', 'dropped_in_flight', 'p50_us', 'p99_us', 'p999_us', 'max_us'].map(k => [k, [counter(k).dataset.value, counter(k).innerText]])), errors: document.querySelector('#replay-errors')?.innerText, skipped: document.querySelector('#replay-skipped').innerText, lateness: document.querySelector('#replay-lateness').innerText, mismatches: [...document.querySelectorAll('#replay-mismatches tbody tr')].map(r => [Number(r.dataset.recorded), Number(r.dataset.replayed), Number(r.dataset.count)]), mismatchCount: document.querySelector('#replay-mismatch-summary').dataset.count, badge: document.querySelector('.badges .replay-badge').innerText, meta: document.querySelector('#replay-meta').innerText }; })()",
        )
        .await;
    let fields = &shown["fields"];
    assert_eq!(fields.as_array().unwrap().len(), 2, "{shown}");
    assert_eq!(
        (
            &fields[0]["path"],
            &fields[0]["verdict"],
            &fields[0]["rate"],
            &fields[0]["group"],
            &fields[0]["badge"]
        ),
        (
            &Value::from("$.price"),
            &Value::from("real"),
            &Value::from(0.2),
            &Value::from("fields-real"),
            &Value::from("real")
        ),
        "the real field first: {shown}"
    );
    assert_eq!(fields[0]["rateText"], "20.0%\n20 / 100", "{shown}");
    assert_eq!(fields[0]["samples"], "#3 #17", "{shown}");
    assert_eq!(
        (
            &fields[1]["path"],
            &fields[1]["verdict"],
            &fields[1]["group"],
            &fields[1]["badge"]
        ),
        (
            &Value::from("$.ts"),
            &Value::from("noise"),
            &Value::from("fields-noise"),
            &Value::from("noise")
        ),
        "the noise below, marked noise: {shown}"
    );
    assert!(
        shown["noiseHead"]
            .as_str()
            .unwrap()
            .starts_with("Noise (1)"),
        "{shown}"
    );
    assert_eq!(
        (&shown["route"], &shown["endpoint"], &shown["real"]),
        (
            &Value::from("catalog"),
            &Value::from("GET /catalog/{id}"),
            &Value::from("1")
        ),
        "{shown}"
    );
    let summary = shown["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("Compared against the recording: 98 responses; 1 recorded body cut")
            && summary.contains("1 real field"),
        "{summary}"
    );
    assert_eq!(
        shown["counters"],
        serde_json::json!({
            "planned": ["104", "104"],
            "sent": ["100", "100"],
            "answered": ["98", "98"],
            "errors": ["2", "2"],
            "dropped_in_flight": ["0", "0"],
            "p50_us": ["1830", "1.8 ms"],
            "p99_us": ["12400", "12 ms"],
            "p999_us": ["25100", "25 ms"],
            "max_us": ["31000", "31 ms"]
        }),
        "{shown}"
    );
    assert_eq!(shown["errors"], "errors: 2 timeout", "{shown}");
    assert_eq!(
        shown["skipped"],
        "skipped: 3 unsafe (--unsafe allow sends them), 1 with a body cut at the recording's cap",
        "{shown}"
    );
    assert_eq!(
        shown["lateness"], "send lateness: p50 0.04 ms · p99 0.38 ms · max 1.2 ms",
        "{shown}"
    );
    assert_eq!(
        (&shown["mismatches"], &shown["mismatchCount"]),
        (
            &serde_json::json!([[200, 404, 3], [200, 500, 1]]),
            &Value::from("4")
        ),
        "{shown}"
    );
    assert_eq!(shown["badge"], "1 real difference", "{shown}");
    assert!(
        shown["meta"].as_str().unwrap().contains(
            "recordings/catalog/catalog-b.ficusrec → http://modern:8080 · against the recording"
        ),
        "{shown}"
    );
    page.screenshot(WIDTH, &screenshot_path("replay"))
        .await
        .unwrap();

    // The plain run says how to compare.
    page.navigate(&format!("{}/#/replays/{id1}", e.admin))
        .await
        .unwrap();
    page.wait_for(
        "the plain run, not compared",
        "document.querySelector('#replay-not-compared') && document.querySelector('.badges .replay-badge')?.innerText === 'not compared'",
    )
    .await;
    assert!(
        page.problems.is_empty(),
        "the page logged problems: {:#?}",
        page.problems
    );
    eprintln!(
        "screenshots: {}, {}, {}",
        screenshot_path("recordings").display(),
        screenshot_path("replays").display(),
        screenshot_path("replay").display()
    );
}

/// A plan that needs no database: an `expand` step whose command prints a line with markup
/// in it (a command's output is untrusted text) and a line on stderr, then a manual
/// `switch_reads` of `orders` (on real upstreams) with a 1 s soak and no verify job.
const MIGRATION: &str = r#"[node]
migration_commands = true
[[migration]]
name = "orders-v2"
routes = ["orders"]
[[migration.step]]
kind = "expand"
name = "create-orders-v2"
run = ["sh", "-c", "echo 'created orders_v2 <img src=x onerror=window.__xss=1>'; echo 'NOTICE: orders_v2 exists' >&2"]
timeout = "30s"
[[migration.step]]
kind = "switch_reads"
manual = true
soak = "1s"
timeout = "30s"
"#;

/// The actor name given in the page (it goes out as `x-ficus-actor`), and the reason typed
/// for the advance: both come back in the plan's events, to be shown as text.
const HOSTILE_ACTOR: &str = "<img/src=x/onerror=window.__xss=3>";
const HOSTILE_MESSAGE: &str = "reads are ready <img src=x onerror=window.__xss=2>";

/// The migration timeline's rows: kind, step, actor cell, message cell, whether it opens.
const TIMELINE_JS: &str = "[...document.querySelectorAll('#migration-timeline tr.mig-event')].map(r => ({ id: Number(r.dataset.event), kind: r.dataset.kind, step: r.querySelector('.mig-event-step').innerText, actor: r.querySelector('.mig-event-actor').innerText, message: r.querySelector('.mig-event-message').innerText, evidence: r.dataset.evidence === 'true' }))";

/// The evidence opened under the row of event `id`: the gate's checks and the command's output.
fn evidence_js(id: i64) -> String {
    format!(
        "(() => {{ const d = document.querySelector('#migration-timeline .mig-evidence[data-event=\"{id}\"]'); return d && {{ checks: [...d.querySelectorAll('tr.mig-check')].map(r => [r.dataset.check, r.dataset.ok, r.querySelector('.mig-check-detail').innerText]), command: d.querySelector('.mig-command')?.innerText, exit: d.querySelector('.mig-exit')?.innerText, output: d.querySelector('.mig-output')?.innerText, stdout: d.querySelector('pre.mig-stdout')?.textContent, stderr: d.querySelector('pre.mig-stderr')?.textContent }}; }})()"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_pages_walk_a_plan_with_its_evidence_and_commands() {
    let Some(chromium) = cdp::chromium_path() else {
        let required = std::env::var("FICUS_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "FICUS_REQUIRE_SERVICES=1 but Chromium is missing"
        );
        eprintln!("skipping the browser test: no /usr/bin/chromium");
        return;
    };
    let e = env_with(MIGRATION).await;
    // The controller as `ficus run` starts it (without the rollout controller: orders has
    // no [route.rollout], so the switch moves its stage), ticking fast.
    let migrations = ficus_control::migration::MigrationController::spawn(
        e.control.clone(),
        None,
        Duration::from_millis(100),
    );
    e.state.set_migrations(migrations.clone());
    assert_eq!(route_stage(&e.control, "orders"), (Stage::Canary, 50.0));

    let (_browser, mut page) = open_page(&chromium).await;
    // From the map (which shows the running version in the header) through the nav entry;
    // the header keeps its nine views, the version, the status and the token on one line.
    page.navigate(&format!("{}/", e.admin)).await.unwrap();
    page.wait_for(
        "the map and the running version",
        "document.querySelector('#map tr[data-route=orders]') && document.querySelector('#running-version').textContent.startsWith('running config v')",
    )
    .await;
    page.click("nav a[data-nav=migrations]").await.unwrap();
    let header = page
        .eval("(() => { const top = document.querySelector('.top'); return { fits: top.scrollWidth <= top.clientWidth, tall: [...top.querySelectorAll('nav a, .top-right > *')].filter(x => x.getBoundingClientRect().height > 36).map(x => x.innerText) }; })()")
        .await
        .unwrap();
    assert_eq!(
        header,
        serde_json::json!({ "fits": true, "tall": [] }),
        "the header wraps at {WIDTH} px: {header}"
    );
    // The expand step's command runs at once and passes; the manual switch waits.
    let card = page
        .wait_for(
            "the plan waiting at its manual step",
            "(() => { const c = document.querySelector('#migrations .mig-card[data-migration=\"orders-v2\"][data-status=\"waiting\"]'); return c && { steps: [...c.querySelectorAll('li.mig-step')].map(s => [s.dataset.step, s.dataset.kind, s.dataset.state, s.dataset.manual || null, s.innerText.replace(/\\s+/g, ' ').trim()]), status: c.querySelector('.mig-status').innerText, where: c.querySelector('.mig-where').innerText, gate: c.querySelector('.mig-gate').dataset.outcome, gateText: c.querySelector('.mig-gate').innerText, scope: c.querySelector('.mig-scope').innerText, summary: document.querySelector('#migrations-summary').innerText, nav: document.querySelector('nav a[data-nav=migrations]').getAttribute('aria-current') }; })()",
        )
        .await;
    assert_eq!(
        card["steps"],
        serde_json::json!([
            [
                "create-orders-v2",
                "expand",
                "done",
                null,
                "1 · expand create-orders-v2 ✓ done"
            ],
            [
                "switch_reads",
                "switch_reads",
                "current",
                "true",
                "2 · switch_reads MANUAL switch_reads waiting"
            ]
        ]),
        "{card}"
    );
    assert_eq!(card["status"], "waiting", "{card}");
    assert_eq!(card["nav"], "page", "{card}");
    assert_eq!(card["summary"], "1 plan · 1 waiting", "{card}");
    assert!(
        card["where"]
            .as_str()
            .unwrap()
            .starts_with("step 2 of 2: switch_reads, not begun · since "),
        "{card}"
    );
    assert_eq!(card["scope"], "routes orders · verify none", "{card}");
    // The latest gate is the expand step's, which passed: no failing check to list.
    assert_eq!(card["gate"], "pass", "{card}");
    let gate_text = card["gateText"].as_str().unwrap();
    assert!(
        gate_text
            .starts_with("Gate: pass of step create-orders-v2, before step switch_reads began · ")
            && gate_text.ends_with("· 1 check ok"),
        "{gate_text}"
    );
    page.screenshot(WIDTH, &screenshot_path("migrations"))
        .await
        .unwrap();

    // The plan's page: the steps in words, the timeline with the command's output.
    page.click("#migrations .mig-card[data-migration=\"orders-v2\"] a.mig-link")
        .await
        .unwrap();
    let shown = page
        .wait_for(
            "the plan's steps and its timeline",
            &format!("(() => {{ const steps = [...document.querySelectorAll('#migration-steps li')]; const tl = {TIMELINE_JS}; return steps.length === 2 && tl.length && {{ steps: steps.map(s => [s.dataset.step, s.dataset.state, s.dataset.manual || null, s.querySelector('.mig-action').innerText, s.querySelector('.mig-way-back-text').innerText]), timeline: tl, badge: document.querySelector('.badges .mig-status').innerText, buttons: [...document.querySelectorAll('#migration-controls button')].map(b => [b.id, b.dataset.accepted]) }}; }})()"),
        )
        .await;
    let steps = shown["steps"].as_array().unwrap();
    assert_eq!(
        (&steps[0][0], &steps[0][1], &steps[0][2]),
        (
            &Value::from("create-orders-v2"),
            &Value::from("done"),
            &Value::Null
        ),
        "{shown}"
    );
    let action = steps[0][3].as_str().unwrap();
    assert!(
        action
            == "Action: run echo 'created orders_v2 <img src=x onerror=window.__xss=1>'; echo \
                'NOTICE: orders_v2 exists' >&2; done when it exits 0",
        "a shell line as written: {action}"
    );
    assert_eq!(
        steps[0][4], "Way back: none configured (back undoes nothing)",
        "{shown}"
    );
    assert_eq!(
        (&steps[1][0], &steps[1][1], &steps[1][2]),
        (
            &Value::from("switch_reads"),
            &Value::from("current"),
            &Value::from("true")
        ),
        "{shown}"
    );
    assert!(
        steps[1][3].as_str().unwrap().starts_with(
            "Action: read routes orders to modern (their rollout, else the stage); done after 1"
        ),
        "{shown}"
    );
    assert_eq!(
        steps[1][4], "Way back: read routes orders back to their stage before",
        "{shown}"
    );
    assert_eq!(shown["badge"], "waiting", "{shown}");
    assert_eq!(
        shown["buttons"],
        serde_json::json!([
            ["migration-advance", "true"],
            ["migration-pause", "true"],
            ["migration-resume", "false"],
            ["migration-back", "true"]
        ]),
        "{shown}"
    );
    let timeline = shown["timeline"].as_array().unwrap();
    assert_eq!(timeline[0]["kind"], "migration.step.done", "{shown}");
    assert_eq!(timeline[0]["step"], "create-orders-v2", "{shown}");
    assert_eq!(timeline[0]["evidence"], true, "{shown}");
    assert_eq!(
        timeline.last().unwrap()["kind"],
        "migration.started",
        "oldest last: {shown}"
    );
    // The step's event opens to its gate and its command's output, as text.
    let done = timeline[0]["id"].as_i64().unwrap();
    page.click(&format!(
        "#migration-timeline tr[data-event=\"{done}\"] button.mig-event-time"
    ))
    .await
    .unwrap();
    let ev = page
        .wait_for("the expand step's evidence", &evidence_js(done))
        .await;
    assert_eq!(ev["checks"][0][0], "command", "{ev}");
    assert_eq!(ev["checks"][0][1], "true", "{ev}");
    assert!(
        ev["checks"][0][2]
            .as_str()
            .unwrap()
            .contains(": exited 0 after "),
        "{ev}"
    );
    assert!(
        ev["command"]
            .as_str()
            .unwrap()
            .starts_with("echo 'created orders_v2 <img src=x"),
        "{ev}"
    );
    assert_eq!(ev["exit"], "exit code 0", "{ev}");
    assert_eq!(
        ev["stdout"], "created orders_v2 <img src=x onerror=window.__xss=1>\n",
        "{ev}"
    );
    assert_eq!(ev["stderr"], "NOTICE: orders_v2 exists\n", "{ev}");

    // Advance, with a name (an actor) and a reason full of markup, the token typed in the dialog.
    page.eval(&format!(
        "sessionStorage.setItem('ficus.admin.actor', {})",
        serde_json::to_string(HOSTILE_ACTOR).unwrap()
    ))
    .await
    .unwrap();
    page.click("#migration-advance").await.unwrap();
    let what = page
        .wait_for(
            "the confirm dialog asking for the token",
            "document.querySelector('#confirm-dialog').open && !document.querySelector('#confirm-token-row').hidden && document.querySelector('#confirm-title').textContent === 'Advance orders-v2' && document.querySelector('#confirm-what').textContent",
        )
        .await;
    assert!(
        what.as_str().unwrap().starts_with(
            "Starts step switch_reads (switch_reads) now: read routes orders to modern"
        ),
        "{what}"
    );
    page.fill("#confirm-message", HOSTILE_MESSAGE)
        .await
        .unwrap();
    page.fill("#confirm-token", TOKEN).await.unwrap();
    page.click("#confirm-ok").await.unwrap();
    let result = page
        .wait_for(
            "the recorded migration.advanced event",
            "(() => { const r = document.querySelector('#result.result-ok'); return r && !r.hidden && r.innerText.includes('migration.advanced') && r.innerText; })()",
        )
        .await;
    assert!(
        result.as_str().unwrap().contains(&format!(
            "by api:dashboard:{HOSTILE_ACTOR}: {HOSTILE_MESSAGE}"
        )),
        "{result}"
    );
    // The page, refreshing on its own, follows the plan to its end.
    let tl = page
        .wait_for(
            "the plan completed in the timeline",
            &format!("(() => {{ const tl = {TIMELINE_JS}; return tl.length && tl[0].kind === 'migration.completed' && document.querySelector('.badges .mig-status').innerText === 'completed' && tl; }})()"),
        )
        .await;
    let tl = tl.as_array().unwrap();
    let kinds: Vec<&str> = tl.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    let at = |k: &str| {
        kinds
            .iter()
            .position(|x| *x == k)
            .unwrap_or_else(|| panic!("{k} in {kinds:?}"))
    };
    assert!(
        at("migration.completed") < at("migration.step.started")
            && at("migration.step.started") < at("migration.advanced")
            && at("migration.advanced") < at("migration.step.done"),
        "newest first: {kinds:?}"
    );
    let advanced = &tl[at("migration.advanced")];
    assert_eq!(
        advanced["actor"],
        format!("api:dashboard:{HOSTILE_ACTOR}"),
        "{advanced}"
    );
    assert!(
        advanced["message"].as_str().unwrap().contains(&format!(
            "(re)started by api:dashboard:{HOSTILE_ACTOR}: {HOSTILE_MESSAGE}"
        )),
        "{advanced}"
    );
    // The completion's gate: the route on modern and the soak.
    let completed = tl[0]["id"].as_i64().unwrap();
    page.click(&format!(
        "#migration-timeline tr[data-event=\"{completed}\"] button.mig-event-time"
    ))
    .await
    .unwrap();
    let ev = page
        .wait_for("the completion's gate", &evidence_js(completed))
        .await;
    let checks = ev["checks"].as_array().unwrap();
    assert_eq!(
        checks
            .iter()
            .map(|c| (c[0].as_str().unwrap(), c[1].as_str().unwrap()))
            .collect::<Vec<_>>(),
        vec![("route orders", "true"), ("soak", "true")],
        "{ev}"
    );
    assert!(
        checks[1][2]
            .as_str()
            .unwrap()
            .contains("on modern with SLOs clear (needs 1s)"),
        "{ev}"
    );
    // Both opened entries stay open across the refreshes.
    page.wait_for(
        "a refresh later, both entries still open",
        &format!("(() => {{ const t0 = Date.now(); return new Promise(r => setTimeout(() => r(document.querySelectorAll('#migration-timeline .mig-evidence').length === 2 && !!document.querySelector('#migration-timeline .mig-evidence[data-event=\"{done}\"]') && !!document.querySelector('#migration-timeline .mig-evidence[data-event=\"{completed}\"]') && Date.now() - t0 > 2000), 2500)); }})()"),
    )
    .await;
    let page_state = page
        .eval("(() => ({ steps: [...document.querySelectorAll('#migration-strip li.mig-step')].map(s => s.dataset.state), gate: document.querySelector('#migration-gate').dataset.outcome, checks: [...document.querySelectorAll('#migration-gate tr.mig-check')].map(r => [r.dataset.check, r.dataset.ok]) }))()")
        .await
        .unwrap();
    assert_eq!(
        page_state,
        serde_json::json!({ "steps": ["done", "done"], "gate": "pass", "checks": [["route orders", "true"], ["soak", "true"]] }),
        "{page_state}"
    );
    assert_eq!(route_stage(&e.control, "orders").0, Stage::Modern);
    let api_plan = api(&format!("{}/api/v1/migrations/orders-v2", e.admin)).await;
    assert_eq!(api_plan["status"], "completed", "{api_plan}");

    // Markup from the command, the actor and the reason is text: no element, no script ran.
    let xss = page
        .eval("({ imgs: document.querySelectorAll('#main img, #result img').length, ran: window.__xss === undefined ? null : window.__xss })")
        .await
        .unwrap();
    assert_eq!(xss, serde_json::json!({ "imgs": 0, "ran": null }), "{xss}");
    page.screenshot(WIDTH, &screenshot_path("migration"))
        .await
        .unwrap();

    // Back on a completed plan: the controller refuses it, the page shows the 409's detail.
    page.click("#migration-back").await.unwrap();
    let what = page
        .wait_for(
            "the confirm dialog, the token remembered",
            "document.querySelector('#confirm-dialog').open && document.querySelector('#confirm-token-row').hidden && document.querySelector('#confirm-what').textContent",
        )
        .await;
    assert!(
        what.as_str()
            .unwrap()
            .contains("it is completed now, so it will likely refuse it (409)"),
        "{what}"
    );
    page.fill("#confirm-message", "browser test: undo")
        .await
        .unwrap();
    page.click("#confirm-ok").await.unwrap();
    let refused = page
        .wait_for(
            "the refusal",
            "(() => { const r = document.querySelector('#result.result-problem'); return r && !r.hidden && { head: r.querySelector('.result-head').innerText, detail: r.querySelector('.problem-detail')?.innerText }; })()",
        )
        .await;
    assert!(
        refused["head"].as_str().unwrap().starts_with("✗ 409 ")
            && refused["head"]
                .as_str()
                .unwrap()
                .ends_with("Back: orders-v2 was refused. Nothing was changed."),
        "{refused}"
    );
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("a completed plan has no way back"),
        "{refused}"
    );
    assert_eq!(route_stage(&e.control, "orders").0, Stage::Modern);
    let problems: Vec<&String> = page
        .problems
        .iter()
        .filter(|p| !(p.contains("status of 409") && p.contains("/back")))
        .collect();
    assert!(
        problems.is_empty(),
        "the page logged problems: {problems:#?}"
    );
    migrations.stop().await;
    eprintln!(
        "screenshots: {}, {}",
        screenshot_path("migrations").display(),
        screenshot_path("migration").display()
    );
}
