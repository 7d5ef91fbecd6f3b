//! A node's part in the fleet: the tasks that make any number of gateways on one store act
//! as one, on the control runtime (never on the request path).
//!
//! - **follow**: LISTEN for the store's revision on a connection of its own (PostgreSQL),
//!   and read it every `poll_interval` in case a notification was lost; a newer revision,
//!   or a (re)connected listener, makes the node [`sync`](ControlPlane::sync): load,
//!   compile and swap what the store says through the one apply path.
//! - **heartbeat**: every `heartbeat`, take or renew the leader lease (the leader runs the
//!   rollout controller, the verify scheduler, webhook delivery and retention) and record
//!   the node in the registry: revision applied, rate, drift.
//! - **telemetry**: every `flush_interval`, write this node's closed seconds (and the
//!   minute rows) to the store, and read the other nodes' seconds into the fleet view. The
//!   rings of the last 15 minutes are the buffer while the store is away; older seconds
//!   are dropped and counted.
//! - **retention** (leader): prune old telemetry rows and long-silent nodes.
//!
//! When the store is unreachable every node keeps serving its last table (fail static) and
//! changes are refused; once it answers again the node catches up.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ficus_config::defaults;
use ficus_store::{Fence, NodeBeat, NodeRegistration, Notice, TelemetrySlot};
use ficus_telemetry::{decode_hist, encode_hist, SlotRow};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{unix_ms, ControlPlane, Leadership};

/// How often the leader prunes old rows.
const RETENTION_EVERY: Duration = Duration::from_secs(60);
/// Telemetry rows read from the store at a time.
const PULL_PAGE: u32 = 10_000;
/// A failing store is logged at most this often per task.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// What the fleet tasks have done, for `/metrics` and the API.
#[derive(Debug, Default)]
pub struct FleetStats {
    pub syncs: AtomicU64,
    pub sync_errors: AtomicU64,
    pub notifications: AtomicU64,
    /// `[fleet] listen`: whether this node LISTENs at all.
    pub listen: AtomicBool,
    pub listener_up: AtomicBool,
    pub seconds_sent: AtomicU64,
    pub seconds_received: AtomicU64,
    /// Closed seconds that left this node's rings before the store took them.
    pub seconds_dropped: AtomicU64,
    pub store_ok: AtomicBool,
    /// The latest store error any fleet task met, while it lasts.
    pub store_error: Mutex<Option<String>>,
    /// The registry as the last heartbeat read it.
    pub last_state: Mutex<Option<ficus_store::FleetState>>,
}

/// What the API shows of this node's part in the fleet.
#[derive(Debug, Clone, Serialize)]
pub struct LocalView {
    pub listen: bool,
    pub listener_up: bool,
    pub store_ok: bool,
    pub store_error: Option<String>,
    pub syncs: u64,
    pub sync_errors: u64,
    pub notifications: u64,
    pub seconds_sent: u64,
    pub seconds_received: u64,
    pub seconds_dropped: u64,
}

impl FleetStats {
    pub fn view(&self) -> LocalView {
        LocalView {
            listen: self.listen.load(Ordering::Relaxed),
            listener_up: self.listener_up.load(Ordering::Relaxed),
            store_ok: self.store_ok.load(Ordering::Relaxed),
            store_error: self
                .store_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            syncs: self.syncs.load(Ordering::Relaxed),
            sync_errors: self.sync_errors.load(Ordering::Relaxed),
            notifications: self.notifications.load(Ordering::Relaxed),
            seconds_sent: self.seconds_sent.load(Ordering::Relaxed),
            seconds_received: self.seconds_received.load(Ordering::Relaxed),
            seconds_dropped: self.seconds_dropped.load(Ordering::Relaxed),
        }
    }

    fn store_failed(&self, what: &str, e: &dyn std::fmt::Display, last_log: &mut Option<Instant>) {
        self.store_ok.store(false, Ordering::Relaxed);
        let msg = format!("{what}: {e}");
        *self.store_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(msg.clone());
        if last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            tracing::warn!("fleet: {msg}; this node keeps serving its last routes");
            *last_log = Some(Instant::now());
        }
    }

    fn store_answered(&self, last_log: &mut Option<Instant>) {
        if !self.store_ok.swap(true, Ordering::Relaxed) && last_log.is_some() {
            tracing::info!("fleet: the store answers again");
        }
        *self.store_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *last_log = None;
    }
}

/// The running fleet tasks of this node; [`FleetRuntime::stop`] them on shutdown.
pub struct FleetRuntime {
    control: Arc<ControlPlane>,
    stats: Arc<FleetStats>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    telemetry: Arc<tokio::sync::Mutex<TelemetryState>>,
}

#[derive(Default)]
struct TelemetryState {
    /// The end of the newest second written to the store, per (route, modern).
    flushed: std::collections::HashMap<(String, bool), u64>,
    /// The last write failed (the store was away): seconds may have left the rings.
    failing: bool,
    /// The last row of the other nodes read.
    seq: i64,
    /// The first minute of SLI counts to write next (the newest written is written again
    /// as it fills).
    sli_since: u64,
    last_log: Option<Instant>,
}

impl FleetRuntime {
    /// Starts this node's fleet tasks on the current (control) runtime. The node follows
    /// the lease from here on (until the first heartbeat decides, it does not lead), and
    /// takes its first heartbeat and reads the other nodes' recent seconds before this
    /// returns.
    pub async fn start(control: Arc<ControlPlane>) -> FleetRuntime {
        let settings = control.local().fleet.clone();
        let stats = Arc::new(FleetStats::default());
        stats.store_ok.store(true, Ordering::Relaxed);
        stats.listen.store(settings.listen, Ordering::Relaxed);
        control.set_leadership(Leadership::Follower);
        control
            .gateway()
            .telemetry()
            .set_extra("fleet", metrics(control.clone(), stats.clone()));
        let (stop, _) = watch::channel(false);
        let telemetry = Arc::new(tokio::sync::Mutex::new(TelemetryState::default()));
        if control.single_node() {
            // The one gateway of a SQLite store (it holds the file's lock): a lease left
            // behind by its own earlier process (killed) is not waited out.
            if let Err(e) = control
                .store()
                .force_lease(&control.node().id, settings.lease)
                .await
            {
                tracing::warn!(error = %e, "fleet: cannot take the lease at start");
            }
        }
        let mut beat = Heartbeat::default();
        beat.run(&control, &stats, settings.lease).await;
        exchange_telemetry(&control, &stats, &telemetry).await;

        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(follow(
            control.clone(),
            stats.clone(),
            settings.listen,
            settings.poll_interval,
            stop.subscribe(),
        )));
        tasks.push(tokio::spawn({
            let (control, stats, mut stopped) = (control.clone(), stats.clone(), stop.subscribe());
            async move {
                let mut tick = tokio::time::interval(settings.heartbeat);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = tick.tick() => beat.run(&control, &stats, settings.lease).await,
                        _ = stopped.changed() => break,
                    }
                }
            }
        }));
        tasks.push(tokio::spawn({
            let (control, stats, state, mut stopped) = (
                control.clone(),
                stats.clone(),
                telemetry.clone(),
                stop.subscribe(),
            );
            async move {
                let mut tick = tokio::time::interval(settings.flush_interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = tick.tick() => exchange_telemetry(&control, &stats, &state).await,
                        _ = stopped.changed() => break,
                    }
                }
            }
        }));
        tasks.push(tokio::spawn(retention(
            control.clone(),
            settings.prune_after,
            stop.subscribe(),
        )));
        FleetRuntime {
            control,
            stats,
            stop,
            tasks,
            telemetry,
        }
    }

    /// What the tasks have done.
    pub fn stats(&self) -> Arc<FleetStats> {
        self.stats.clone()
    }

    /// Stops the tasks, writes the last closed seconds, and records the node as stopped,
    /// giving up the lease if it held it so another node takes over at once.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        exchange_telemetry(&self.control, &self.stats, &self.telemetry).await;
        self.control.set_leadership(Leadership::Follower);
        if let Err(e) = self
            .control
            .store()
            .node_stopped(&self.control.node().id)
            .await
        {
            tracing::warn!(error = %e, "fleet: cannot record this node's stop");
        }
    }
}

/// Follows the store's revision: notifications, and polling as the fallback.
async fn follow(
    control: Arc<ControlPlane>,
    stats: Arc<FleetStats>,
    listen: bool,
    poll_interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut listener = if listen {
        control.store().listen()
    } else {
        None
    };
    let mut poll = tokio::time::interval(poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_log = None;
    let mut listener_log = None;
    loop {
        let notice = async {
            match listener.as_mut() {
                Some(l) => l.next().await,
                None => std::future::pending().await,
            }
        };
        let sync_needed = tokio::select! {
            n = notice => match n {
                Notice::Revision(r) => {
                    stats.notifications.fetch_add(1, Ordering::Relaxed);
                    r > control.synced().revision
                }
                Notice::Reconnected => {
                    // Notices may have been missed while it was down: catch up in full.
                    if !stats.listener_up.swap(true, Ordering::Relaxed) && listener_log.is_some() {
                        tracing::info!("fleet: listening for changes again");
                    }
                    listener_log = None;
                    true
                }
                Notice::Lost(e) => {
                    stats.listener_up.store(false, Ordering::Relaxed);
                    if listener_log.is_none_or(|t: Instant| t.elapsed() >= LOG_EVERY) {
                        tracing::warn!(error = %e, "fleet: the LISTEN connection is down; polling every {:?} until it is back", poll_interval);
                        listener_log = Some(Instant::now());
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(poll_interval.min(Duration::from_secs(1))) => {}
                        _ = stop.changed() => break,
                    }
                    false
                }
            },
            _ = poll.tick() => match control.store().revision().await {
                Ok(r) => {
                    stats.store_answered(&mut last_log);
                    r > control.synced().revision
                }
                Err(e) => {
                    stats.store_failed("reading the revision", &e, &mut last_log);
                    false
                }
            },
            _ = stop.changed() => break,
        };
        if sync_needed {
            match control.sync().await {
                Ok(_) => {
                    stats.syncs.fetch_add(1, Ordering::Relaxed);
                    stats.store_answered(&mut last_log);
                }
                Err(e) => {
                    stats.sync_errors.fetch_add(1, Ordering::Relaxed);
                    stats.store_failed("catching up with the store", &e, &mut last_log);
                }
            }
        }
    }
}

/// The heartbeat's memory between beats.
#[derive(Default)]
struct Heartbeat {
    /// When the last renewal of the lease was sent (it holds `lease` from then, at most).
    renewed: Option<Instant>,
    last_log: Option<Instant>,
}

impl Heartbeat {
    async fn run(&mut self, control: &ControlPlane, stats: &FleetStats, lease: Duration) {
        let node = control.node();
        let store = control.store();
        let sent = Instant::now();
        match store.acquire_lease(&node.id, lease).await {
            Ok(Some(epoch)) => {
                self.renewed = Some(sent);
                let fence = Fence {
                    node_id: node.id.clone(),
                    epoch,
                };
                if control.leadership() != Leadership::Leader(fence.clone()) {
                    tracing::info!(
                        epoch,
                        "fleet: this node leads (rollouts, verify jobs, webhooks, retention)"
                    );
                }
                control.set_leadership(Leadership::Leader(fence));
            }
            Ok(None) => {
                if control.leadership().leads() {
                    tracing::info!("fleet: another node leads now");
                }
                self.renewed = None;
                control.set_leadership(Leadership::Follower);
            }
            Err(e) => {
                stats.store_failed("renewing the lease", &e, &mut self.last_log);
                // Cut off from the store: once the lease may have expired, stop acting as
                // the leader (another node may hold it by now).
                if self.renewed.is_none_or(|t| t.elapsed() >= lease) && control.leadership().leads()
                {
                    tracing::warn!(
                        "fleet: the lease ran out without renewal; this node stops leading"
                    );
                    control.set_leadership(Leadership::Follower);
                }
                return;
            }
        }
        let synced = control.synced();
        let snap = control.snapshot();
        let drift = control.drift().or(synced.error.clone());
        let beat = NodeBeat {
            revision: synced.revision,
            applied_at: synced.applied_at,
            apply_lag_ms: synced.apply_lag_ms,
            config_version: snap.version,
            rate: rate(control),
            drift,
        };
        match store.heartbeat(&node.id, &beat).await {
            Ok(true) => {
                stats.store_answered(&mut self.last_log);
                if let Ok(state) = store.fleet().await {
                    *stats.last_state.lock().unwrap_or_else(|p| p.into_inner()) = Some(state);
                }
            }
            Ok(false) => {
                // Pruned while it could not reach the store: register again.
                let again = NodeRegistration {
                    id: node.id.clone(),
                    name: node.name.clone(),
                    host: node.host.clone(),
                    pid: i64::from(std::process::id()),
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    admin_url: node.admin_url.clone(),
                };
                if let Err(e) = store.register_node(&again).await {
                    stats.store_failed("registering the node again", &e, &mut self.last_log);
                }
            }
            Err(e) => stats.store_failed("recording the heartbeat", &e, &mut self.last_log),
        }
    }
}

/// Requests per second this node answered over the last 10 seconds.
fn rate(control: &ControlPlane) -> f64 {
    control
        .gateway()
        .telemetry()
        .routes()
        .iter()
        .map(|r| {
            let (l, m) = (r.side(false).window(10), r.side(true).window(10));
            l.rate_per_s + m.rate_per_s * (1.0 - fallback_share(&m))
        })
        .sum()
}

fn fallback_share(w: &ficus_telemetry::WindowStats) -> f64 {
    if w.requests == 0 {
        0.0
    } else {
        (w.fallbacks.min(w.requests)) as f64 / w.requests as f64
    }
}

/// Writes this node's closed seconds (and minutes), then reads the other nodes' seconds.
async fn exchange_telemetry(
    control: &ControlPlane,
    stats: &FleetStats,
    state: &tokio::sync::Mutex<TelemetryState>,
) {
    let mut st = state.lock().await;
    let st = &mut *st;
    let telemetry = control.gateway().telemetry();
    let node_id = control.node().id.clone();
    let rows = telemetry.closed_after(|route, modern| {
        st.flushed
            .get(&(route.to_string(), modern))
            .copied()
            .unwrap_or(0)
    });
    if !rows.is_empty() {
        let seconds: Vec<TelemetrySlot> = rows.iter().map(|r| slot(&node_id, r, r.at_s)).collect();
        let minutes = minute_rows(&node_id, &rows, telemetry);
        match control.store().flush_telemetry(&seconds, &minutes).await {
            Ok(()) => {
                // Seconds the rings let go of while the store was away: a ring keeps
                // WINDOW_SLOTS seconds, so what ended before those is gone.
                let kept_from = telemetry
                    .newest_closed()
                    .unwrap_or(0)
                    .saturating_sub(ficus_telemetry::WINDOW_SLOTS as u64);
                for r in &rows {
                    let mark = st.flushed.entry((r.route.clone(), r.modern)).or_insert(0);
                    if st.failing && *mark > 0 && kept_from > *mark {
                        stats
                            .seconds_dropped
                            .fetch_add(kept_from - *mark, Ordering::Relaxed);
                    }
                    *mark = (*mark).max(r.at_s);
                }
                st.failing = false;
                stats
                    .seconds_sent
                    .fetch_add(seconds.len() as u64, Ordering::Relaxed);
                stats.store_answered(&mut st.last_log);
            }
            Err(e) => {
                st.failing = true;
                stats.store_failed("writing telemetry", &e, &mut st.last_log);
                return;
            }
        }
    }
    let sli = telemetry.sli_minutes(st.sli_since);
    if let Some(newest) = sli.iter().map(|m| m.minute).max() {
        let rows: Vec<ficus_store::SliRow> = sli.iter().map(|m| sli_row(&node_id, m)).collect();
        match control.store().flush_sli(&rows).await {
            Ok(()) => st.sli_since = newest,
            Err(e) => {
                st.failing = true;
                stats.store_failed("writing SLI minutes", &e, &mut st.last_log);
                return;
            }
        }
    }
    let now_s = unix_s();
    loop {
        let page = match control
            .store()
            .telemetry_after(st.seq, Some(&node_id), PULL_PAGE)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                stats.store_failed("reading the other nodes' telemetry", &e, &mut st.last_log);
                return;
            }
        };
        for (seq, s) in &page {
            st.seq = *seq;
            let Some(hist) = decode_hist(&s.hist) else {
                continue;
            };
            let row = SlotRow {
                route: s.route.clone(),
                modern: s.side == 1,
                at_s: u64::try_from(s.at).unwrap_or(0),
                by_class: s.by_class.map(|c| u32::try_from(c).unwrap_or(u32::MAX)),
                fallbacks: u32::try_from(s.fallbacks).unwrap_or(u32::MAX),
                latency_sum_us: u64::try_from(s.latency_sum_us).unwrap_or(0),
                hist,
            };
            telemetry.add_remote(&row, now_s);
        }
        stats
            .seconds_received
            .fetch_add(page.len() as u64, Ordering::Relaxed);
        if page.len() < PULL_PAGE as usize {
            break;
        }
    }
}

fn sli_row(node_id: &str, m: &ficus_telemetry::SliMinute) -> ficus_store::SliRow {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    ficus_store::SliRow {
        node_id: node_id.to_string(),
        route: m.route.clone(),
        scope: m.scope.code(),
        minute: n(m.minute),
        total: n(m.counts.total),
        c5xx: n(m.counts.c5xx),
        c429: n(m.counts.c429),
        c4xx: n(m.counts.c4xx),
        slow: m.counts.slow.iter().map(|(t, c)| (n(*t), n(*c))).collect(),
    }
}

fn slot(node_id: &str, r: &SlotRow, at: u64) -> TelemetrySlot {
    TelemetrySlot {
        node_id: node_id.to_string(),
        route: r.route.clone(),
        side: i16::from(r.modern),
        at: i64::try_from(at).unwrap_or(i64::MAX),
        by_class: r.by_class.map(i64::from),
        fallbacks: i64::from(r.fallbacks),
        latency_sum_us: i64::try_from(r.latency_sum_us).unwrap_or(i64::MAX),
        hist: encode_hist(&r.hist),
    }
}

/// The whole of every minute these seconds fall in, summed from the rings (so a minute row
/// written again as its seconds close is the same or larger, never counted twice).
fn minute_rows(
    node_id: &str,
    rows: &[SlotRow],
    telemetry: &ficus_telemetry::Telemetry,
) -> Vec<TelemetrySlot> {
    // The second ending at `at_s` belongs to the minute of its start.
    let minute = |at_s: u64| at_s.saturating_sub(1) / 60;
    let Some(first) = rows.iter().map(|r| minute(r.at_s)).min() else {
        return Vec::new();
    };
    let touched: std::collections::BTreeSet<(String, bool, u64)> = rows
        .iter()
        .map(|r| (r.route.clone(), r.modern, minute(r.at_s)))
        .collect();
    let mut sums: BTreeMap<(String, bool, u64), SlotRow> = BTreeMap::new();
    for r in telemetry.closed_after(|_, _| first * 60) {
        let key = (r.route.clone(), r.modern, minute(r.at_s));
        if !touched.contains(&key) {
            continue;
        }
        let sum = sums.entry(key).or_insert_with(|| SlotRow {
            route: r.route.clone(),
            modern: r.modern,
            ..SlotRow::default()
        });
        add_row(sum, &r);
    }
    sums.into_iter()
        .map(|((_, _, m), r)| slot(node_id, &r, m))
        .collect()
}

fn add_row(sum: &mut SlotRow, r: &SlotRow) {
    for (a, b) in sum.by_class.iter_mut().zip(r.by_class) {
        *a = a.saturating_add(b);
    }
    sum.fallbacks = sum.fallbacks.saturating_add(r.fallbacks);
    sum.latency_sum_us = sum.latency_sum_us.saturating_add(r.latency_sum_us);
    let mut merged: BTreeMap<u16, u32> = sum.hist.iter().copied().collect();
    for (i, c) in &r.hist {
        let e = merged.entry(*i).or_insert(0);
        *e = e.saturating_add(*c);
    }
    sum.hist = merged.into_iter().collect();
}

/// The leader prunes old telemetry rows and long-silent nodes.
async fn retention(
    control: Arc<ControlPlane>,
    prune_after: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(RETENTION_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let lead = control.leadership();
        if !lead.leads() {
            continue;
        }
        let now_s = i64::try_from(unix_s()).unwrap_or(i64::MAX);
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let seconds_before = now_s - secs(defaults::FLEET_SECONDS_KEPT);
        let minutes_before = (now_s - secs(defaults::FLEET_MINUTES_KEPT)) / 60;
        let nodes_before = unix_ms() - i64::try_from(prune_after.as_millis()).unwrap_or(i64::MAX);
        let sli_before = (now_s - secs(defaults::SLO_MINUTES_KEPT)) / 60;
        let sli_hours_before = (now_s - secs(defaults::SLO_HOURS_KEPT)) / 60;
        if let Err(e) = control
            .store()
            .rollup_sli(sli_before, sli_hours_before, lead.fence())
            .await
        {
            tracing::debug!(error = %e, "fleet: SLI rollup skipped");
        }
        match control
            .store()
            .prune_fleet(seconds_before, minutes_before, nodes_before, lead.fence())
            .await
        {
            Ok(p) if p.nodes > 0 => tracing::info!(
                nodes = p.nodes,
                "fleet: pruned nodes silent for longer than prune_after"
            ),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "fleet: retention skipped"),
        }
    }
}

/// The fleet's families for `/metrics`.
fn metrics(control: Arc<ControlPlane>, stats: Arc<FleetStats>) -> ficus_telemetry::ExtraMetrics {
    let control = Arc::downgrade(&control);
    Box::new(move || {
        let Some(control) = control.upgrade() else {
            return Vec::new();
        };
        let synced = control.synced();
        let gauge = |name, help, v: u64| ficus_telemetry::Family {
            name,
            help,
            gauge: true,
            samples: vec![(Vec::new(), v)],
        };
        let counter = |name, help, samples| ficus_telemetry::Family {
            name,
            help,
            gauge: false,
            samples,
        };
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            gauge(
                "ficus_store_up",
                "1 while the state store answers this node's fleet tasks (heartbeat, revision polls, syncs, telemetry), 0 since one failed: the node serves its last routes and refuses changes.",
                u64::from(stats.store_ok.load(Ordering::Relaxed)),
            ),
            gauge(
                "ficus_fleet_apply_error",
                "1 while the store's latest config version cannot run on this node (it keeps serving the one before, with the overrides laid over it).",
                u64::from(synced.error.is_some()),
            ),
            gauge(
                "ficus_fleet_revision",
                "The store revision this node has applied.",
                u64::try_from(synced.revision).unwrap_or(0),
            ),
            gauge(
                "ficus_fleet_apply_lag_milliseconds",
                "From the commit of the revision this node applied last to its applying it here (clocks of the two nodes).",
                u64::try_from(synced.apply_lag_ms).unwrap_or(0),
            ),
            gauge(
                "ficus_fleet_leader",
                "1 while this node holds the leader lease (runs rollouts, verify jobs, webhook delivery, retention).",
                u64::from(control.leadership().leads()),
            ),
            gauge(
                "ficus_fleet_listener_up",
                "1 while the LISTEN connection for changes is up (else changes arrive by polling).",
                u64::from(stats.listener_up.load(Ordering::Relaxed)),
            ),
            counter(
                "ficus_fleet_syncs",
                "Times this node caught up with the store, by outcome.",
                vec![
                    (vec![("outcome", "ok".to_string())], n(&stats.syncs)),
                    (vec![("outcome", "error".to_string())], n(&stats.sync_errors)),
                ],
            ),
            counter(
                "ficus_fleet_telemetry_seconds",
                "Per-second rows of route traffic: sent to the store, received from other nodes, dropped (left the 15-minute buffer while the store was away).",
                vec![
                    (vec![("direction", "sent".to_string())], n(&stats.seconds_sent)),
                    (vec![("direction", "received".to_string())], n(&stats.seconds_received)),
                    (vec![("direction", "dropped".to_string())], n(&stats.seconds_dropped)),
                ],
            ),
        ]
    })
}

fn unix_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
