//! `ficus demo`: the whole migration story on one machine, with nothing to install or configure.
//!
//! Starts a sample legacy and a sample modern service ([`services`]), the gateway in front of
//! them on an embedded config with one route per stage (`ficus-demo.toml`), run exactly as
//! `ficus run` runs it: the config written to a temporary folder, a SQLite state store beside
//! it, the control plane, and the admin API with the dashboard (default `127.0.0.1:9901`,
//! with a generated token). Prints what to try, and drives a bounded synthetic client
//! ([`client`]) whose per-route summary ([`stats`]) shows who answered. Stops on Ctrl-C,
//! SIGTERM or `--duration`, and always within ten minutes; the temporary folder goes with it.

mod client;
mod screen;
mod services;
mod stats;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ficus_control::ControlPlane;
use ficus_proxy::{Gateway, GatewayError};
use tokio::sync::watch;

use self::services::{Flavor, Service};
use self::stats::{Stats, Tallies};

/// The demo's gateway config; `{{...}}` placeholders are filled in by [`render_config`].
const TEMPLATE: &str = include_str!("ficus-demo.toml");
/// The demo ends by itself after this long, so a forgotten terminal does not run forever.
const MAX_DURATION: Duration = Duration::from_secs(600);
/// How often the periodic summary is printed.
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// The column header is repeated every this many reports, so it stays on screen.
const HEADER_EVERY: u32 = 6;
/// Drain time for the gateway at the end: the client has already stopped, so little is left.
const GATEWAY_GRACE: Duration = Duration::from_secs(2);
/// Distinct users the synthetic client plays.
const USERS: u64 = 50;
/// How long the admin listener gets to finish its requests at the end.
const ADMIN_GRACE: Duration = Duration::from_secs(2);
/// When the demo makes modern's /stock start failing, and how much of it.
const STOCK_FAULT_AT: Duration = Duration::from_secs(25);
const STOCK_FAULT_RATE: f64 = 0.5;

/// Options of `ficus demo`.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoOptions {
    /// Where the gateway listens. The sample services take the next two ports when free
    /// (8081 legacy, 8082 modern by default), else any free port; all on 127.0.0.1.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Stop after this many seconds (default: on Ctrl-C, at the latest after 600).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=600))]
    pub duration: Option<u64>,
    /// Requests per second the synthetic client sends through the gateway. The judge of a
    /// rollout decides on evidence, not time: with less traffic, it takes longer to be sure
    /// (the default rolls stock back a few seconds after modern breaks it; at 20, about 15).
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub rate: u32,
    /// No periodic summary lines; only the instructions and the final summary.
    #[arg(long)]
    pub quiet: bool,
    /// Write the gateway's access log (one line per request) to FILE; `-` for standard output,
    /// where it interleaves with the summary.
    #[arg(long, value_name = "FILE")]
    pub access_log: Option<PathBuf>,
    /// Where the admin API and the dashboard listen; when the port is taken, any free port
    /// (the demo says which).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9901")]
    pub admin: SocketAddr,
}

pub fn main(opts: DemoOptions) -> ExitCode {
    crate::run::init_logging("text");
    let result = crate::run::runtime().and_then(|rt| rt.block_on(run(opts)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ficus demo: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    let dir = DemoDir::create()?;
    let (legacy, modern) = start_services(opts.listen).await?;
    let started = match start_gateway(&opts, &dir, &legacy, &modern).await {
        Ok(started) => started,
        Err(e) => {
            stop_services(legacy, modern).await;
            return Err(e);
        }
    };
    let Started {
        control,
        admin,
        admin_note,
        token,
        token_file,
        admin_stop,
        admin_task,
        rollouts,
        slos,
        fleet,
    } = started;
    let cfg = control.snapshot().effective.clone();
    let gw = control.gateway().clone();
    let gateway = reachable(gw.local_addrs()[0]);
    let until = match opts.duration {
        Some(s) => format!("for {s}s"),
        None => format!("until Ctrl-C (at most {}s)", MAX_DURATION.as_secs()),
    };
    let reading = screen::emit(&screen::intro(&screen::Setup {
        cfg: &cfg,
        gateway,
        legacy: legacy.addr(),
        modern: modern.addr(),
        admin: screen::Admin {
            url: format!("http://{}", reachable(admin)),
            note: admin_note,
            token: &token,
            token_file: token_file.as_deref(),
            config_file: &dir.path().join("ficus.toml"),
            program: program_name(),
        },
        rate: opts.rate,
        users: USERS,
        until,
        report_every: REPORT_EVERY,
    }));
    let shadow =
        ficus_control::shadow::ShadowFlusher::spawn(control.clone(), cfg.shadow.flush_interval);
    // Midway, modern's /stock starts failing: the rollout of route stock is rolled back.
    let switch = modern.fault_switch();
    let fault = tokio::spawn(async move {
        tokio::time::sleep(STOCK_FAULT_AT).await;
        switch.fail(STOCK_FAULT_RATE, Some("/stock"));
        screen::emit(&format!(
            "\n{}s: the modern service now fails {:.0}% of /stock requests; watch the judge roll route stock back (`ficus rollout status`) as soon as modern's errors are beyond doubt: seconds at the default --rate, longer with less traffic; fallback keeps every GET answered\n",
            STOCK_FAULT_AT.as_secs(),
            STOCK_FAULT_RATE * 100.0
        ));
    });
    let gateway_events = ficus_control::events::EventPump::spawn(control.clone());
    let order: Vec<String> = cfg.all_routes().map(|r| r.name.clone()).collect();
    // Nobody reads the instructions (`ficus demo | head`): nothing to show, stop right away.
    let seen = if reading {
        drive_client(&opts, gateway, &order).await
    } else {
        Seen::default()
    };

    fault.abort();
    rollouts.stop().await;
    slos.stop().await;
    let left = gw.shutdown(GATEWAY_GRACE).await;
    shadow.stop().await;
    if let Some(p) = gateway_events {
        p.stop().await;
    }
    let _ = admin_stop.send(());
    let _ = tokio::time::timeout(ADMIN_GRACE, admin_task).await;
    fleet.stop().await;
    control.store().close().await;
    stop_services(legacy, modern).await;
    if left > 0 {
        screen::emit(&format!(
            "(the gateway closed {left} connection(s) still open after {GATEWAY_GRACE:?})\n"
        ));
    }
    screen::emit(&screen::summary(
        &seen.totals,
        &order,
        seen.elapsed,
        seen.skipped,
        client::MAX_IN_FLIGHT,
    ));
    drop(dir);
    Ok(())
}

/// The demo's own folder under the system's temporary directory: the rendered config, the
/// SQLite store and the generated admin token. Owner-only, and removed when dropped (at the
/// end of the demo, also after an error).
struct DemoDir(PathBuf);

impl DemoDir {
    fn create() -> anyhow::Result<DemoDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("ficus-demo-{}-{nanos:09}", std::process::id()));
        let mut b = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(&path)
            .with_context(|| format!("cannot create the demo folder {}", path.display()))?;
        Ok(DemoDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for DemoDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How the printed commands name this program: as it was started when that was a path
/// (`target/release/ficus`), else `ficus`.
fn program_name() -> String {
    std::env::args()
        .next()
        .filter(|a| a.contains('/') && !a.contains(char::is_whitespace))
        .unwrap_or_else(|| "ficus".into())
}

/// What the synthetic client saw over the whole run.
#[derive(Default)]
struct Seen {
    totals: Tallies,
    elapsed: Duration,
    skipped: u64,
}

/// Runs the synthetic client, with the periodic report, until the demo should end; then stops
/// it and waits for its requests in flight.
async fn drive_client(opts: &DemoOptions, gateway: SocketAddr, order: &[String]) -> Seen {
    let stats = Arc::new(Stats::default());
    let (stop_client, stopped) = watch::channel(false);
    let plan = client::Plan {
        gateway,
        rate: opts.rate,
        users: USERS,
    };
    let started = Instant::now();
    let client_task = tokio::spawn(client::run(plan, stats.clone(), stopped));
    let limit = opts
        .duration
        .map_or(MAX_DURATION, Duration::from_secs)
        .min(MAX_DURATION);
    let mut totals = report_until(limit, &stats, order, opts.quiet).await;
    let _ = stop_client.send(true);
    let _ = client_task.await;
    stats::merge_into(&mut totals, &stats.take_interval());
    Seen {
        totals,
        elapsed: started.elapsed(),
        skipped: stats.skipped(),
    }
}

async fn stop_services(legacy: Service, modern: Service) {
    tokio::join!(legacy.stop(), modern.stop());
}

/// Starts legacy and modern, next to the gateway's port when it is fixed (8081, 8082 for the
/// default 8080), so the printed curl commands are the same from run to run.
async fn start_services(listen: SocketAddr) -> anyhow::Result<(Service, Service)> {
    let near = |offset: u16| {
        listen
            .port()
            .checked_add(offset)
            .filter(|_| listen.port() != 0)
    };
    let legacy = Service::start(Flavor::Legacy, near(1))
        .await
        .context("cannot start the sample legacy service on 127.0.0.1")?;
    let modern = match Service::start(Flavor::Modern, near(2)).await {
        Ok(m) => m,
        Err(e) => {
            legacy.stop().await;
            return Err(e).context("cannot start the sample modern service on 127.0.0.1");
        }
    };
    Ok((legacy, modern))
}

/// What [`start_gateway`] started.
struct Started {
    control: Arc<ControlPlane>,
    /// Where the admin API listens.
    admin: SocketAddr,
    /// Set when the asked-for admin address was taken and another port was used.
    admin_note: Option<String>,
    token: String,
    /// The file the token was written to (`None` when it came from `FICUS_ADMIN_TOKEN`).
    token_file: Option<PathBuf>,
    admin_stop: tokio::sync::oneshot::Sender<()>,
    admin_task: tokio::task::JoinHandle<std::io::Result<()>>,
    rollouts: Arc<ficus_control::rollout::RolloutController>,
    slos: Arc<ficus_control::slo::SloController>,
    fleet: ficus_control::fleet::FleetRuntime,
}

/// Binds the admin listener, writes the embedded config (with the real addresses) into the
/// demo folder, then does what `ficus run` does: open the store, boot the control plane
/// from the file, start the gateway on the result, and serve the admin API.
async fn start_gateway(
    opts: &DemoOptions,
    dir: &DemoDir,
    legacy: &Service,
    modern: &Service,
) -> anyhow::Result<Started> {
    let (listener, admin_note) = bind_admin(opts.admin).await?;
    let admin = listener.local_addr()?;
    let text = render_config(
        opts.listen,
        admin,
        legacy.addr(),
        modern.addr(),
        opts.access_log.as_deref(),
    );
    let file = dir.path().join("ficus.toml");
    std::fs::write(&file, &text).with_context(|| format!("cannot write {}", file.display()))?;
    let cfg = ficus_config::load(&file).map_err(|e| {
        anyhow::anyhow!("the embedded demo config does not validate (a bug in ficus):\n{e}")
    })?;
    let store = ficus_store::Store::open(&cfg.store)
        .await
        .with_context(|| format!("cannot open the demo's state store {}", cfg.store))?;
    let boot = ControlPlane::boot(&file, store)
        .await
        .context("cannot start the control plane")?;
    let gw = match Gateway::start(boot.effective().clone()).await {
        Ok(gw) => gw,
        Err(GatewayError::Bind { addr, source, .. })
            if source.kind() == std::io::ErrorKind::AddrInUse =>
        {
            anyhow::bail!(
                "{addr} is already in use (another ficus demo?); pick another address with \
                 `--listen 127.0.0.1:8090`, or `--listen 127.0.0.1:0` for any free port"
            )
        }
        Err(e) => return Err(e).context("cannot start the gateway"),
    };
    let control = ControlPlane::new(boot, Arc::new(gw));
    // A fleet of one: the node registry, the lease and the per-second numbers, as `run`.
    let fleet = ficus_control::fleet::FleetRuntime::start(control.clone()).await;
    // Every recorded event (the boot's too) goes to the [[webhook]] receivers.
    control.start_webhooks();
    let (token, source) = ficus_admin::auth::load_token(admin, None, dir.path())?;
    let token_file = match source {
        ficus_admin::auth::TokenSource::Generated(p) | ficus_admin::auth::TokenSource::File(p) => {
            Some(p)
        }
        ficus_admin::auth::TokenSource::Env => None,
    };
    let (admin_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let rollouts = ficus_control::rollout::RolloutController::spawn(
        control.clone(),
        ficus_control::rollout::TICK,
    );
    let slos = ficus_control::slo::SloController::spawn(control.clone());
    let state = ficus_admin::AdminState::for_node(
        control.clone(),
        token.clone(),
        None,
        Some(rollouts.clone()),
        Some(fleet.stats()),
    );
    let admin_task = tokio::spawn(ficus_admin::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Ok(Started {
        control,
        admin,
        admin_note,
        token,
        token_file,
        admin_stop,
        admin_task,
        rollouts,
        slos,
        fleet,
    })
}

/// The admin listener on `addr`, or on a free port of the same address when that one is
/// taken (a `ficus run` or another demo may hold 9901), with a note saying so.
async fn bind_admin(addr: SocketAddr) -> anyhow::Result<(tokio::net::TcpListener, Option<String>)> {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => Ok((l, None)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && addr.port() != 0 => {
            let any = SocketAddr::new(addr.ip(), 0);
            let l = tokio::net::TcpListener::bind(any)
                .await
                .with_context(|| format!("cannot listen on {any} for the admin API"))?;
            let note = format!(
                "{addr} is taken (another ficus?), so the admin API and dashboard use {} instead",
                l.local_addr()?
            );
            Ok((l, Some(note)))
        }
        Err(e) => Err(e).with_context(|| {
            format!("cannot listen on {addr} for the admin API and dashboard (--admin)")
        }),
    }
}

/// The embedded config with the real addresses filled in.
fn render_config(
    listen: SocketAddr,
    admin: SocketAddr,
    legacy: SocketAddr,
    modern: SocketAddr,
    access_log: Option<&Path>,
) -> String {
    let access_log = match access_log {
        None => "[access_log]\nenabled = false\n".to_string(),
        Some(p) if p == Path::new("-") => {
            "[access_log]\nenabled = true\nformat = \"text\"\n".to_string()
        }
        // A JSON string is a valid TOML basic string: this quotes any path safely.
        Some(p) => format!(
            "[access_log]\nenabled = true\nformat = \"text\"\npath = {}\n",
            serde_json::Value::from(p.to_string_lossy())
        ),
    };
    TEMPLATE
        .replace("{{LISTEN}}", &listen.to_string())
        .replace("{{ADMIN}}", &admin.to_string())
        .replace("{{LEGACY_URL}}", &format!("http://{legacy}"))
        .replace("{{MODERN_URL}}", &format!("http://{modern}"))
        .replace("{{ACCESS_LOG}}", &access_log)
}

/// An address curl can reach: a wildcard bind (`0.0.0.0`) is reached through loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port()))
    } else {
        addr
    }
}

/// Prints a summary every [`REPORT_EVERY`] until `limit` has passed, the process is asked to
/// stop, or nobody reads the output any more; returns the totals of every interval.
async fn report_until(limit: Duration, stats: &Stats, order: &[String], quiet: bool) -> Tallies {
    let start = tokio::time::Instant::now();
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let mut every = tokio::time::interval_at(start + REPORT_EVERY, REPORT_EVERY);
    let mut totals = Tallies::new();
    // Reports left before the column header is printed again.
    let mut until_header = 0u32;
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            _ = &mut stop => {
                screen::emit("\nstopping (signal received)\n");
                break;
            }
            _ = every.tick() => {
                let interval = stats.take_interval();
                stats::merge_into(&mut totals, &interval);
                if !quiet {
                    let with_header = until_header == 0;
                    if with_header {
                        until_header = HEADER_EVERY;
                    }
                    until_header -= 1;
                    if !screen::emit(&screen::interval(start.elapsed(), order, &interval, with_header)) {
                        break;
                    }
                }
            }
        }
    }
    totals
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Random bits for noise and for the client's choices. Hand-written instead of a `rand`
/// dependency: std's randomly keyed hasher over a counter is enough for a demo, which needs
/// variety, not cryptography.
pub(crate) fn random_u64() -> u64 {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    std::collections::hash_map::RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ficus_config::{Config, Stage};
    use ficus_proxy::split::Side;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn demo_config(access_log: Option<&Path>) -> Config {
        let text = render_config(
            addr("127.0.0.1:0"),
            addr("127.0.0.1:9901"),
            addr("127.0.0.1:9001"),
            addr("127.0.0.1:9002"),
            access_log,
        );
        ficus_config::parse_str(&text, "ficus-demo.toml", Path::new("."))
            .unwrap_or_else(|d| panic!("{d}\n{text}"))
    }

    #[test]
    fn the_embedded_config_has_one_route_per_stage_and_two_rollouts() {
        let cfg = demo_config(None);
        let stages: Vec<(&str, Stage)> = cfg
            .all_routes()
            .map(|r| (r.name.as_str(), r.stage))
            .collect();
        assert_eq!(
            stages,
            [
                ("users", Stage::Modern),
                ("orders", Stage::Canary),
                ("catalog", Stage::Shadow),
                ("accounts", Stage::Legacy),
                ("stock", Stage::Legacy),
                ("reports", Stage::Legacy),
                ("default", Stage::Legacy),
            ]
        );
        let rollouts: Vec<&str> = cfg
            .routes
            .iter()
            .filter(|r| r.rollout.is_some())
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(rollouts, ["accounts", "stock"]);
        assert!(
            cfg.all_routes().all(|r| r.debug_header),
            "everyone should see who answered"
        );
        assert!(!cfg.access_log.enabled);
        assert_eq!(cfg.admin.bind, addr("127.0.0.1:9901"));
        assert_eq!(
            cfg.upstream("modern").unwrap().url.to_string(),
            "http://127.0.0.1:9002/"
        );
    }

    #[test]
    fn the_access_log_option() {
        let cfg = demo_config(Some(Path::new("-")));
        assert!(cfg.access_log.enabled && cfg.access_log.path.is_none());
        let cfg = demo_config(Some(Path::new("/tmp/a \"b\".log")));
        assert_eq!(
            cfg.access_log.path.as_deref(),
            Some(Path::new("/tmp/a \"b\".log"))
        );
    }

    #[test]
    fn canary_examples_cover_both_sides() {
        let cfg = demo_config(None);
        let examples = screen::canary_examples(&cfg);
        assert_eq!(
            examples.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
            [Side::Modern, Side::Legacy]
        );
    }

    #[test]
    fn wildcard_binds_are_reached_through_loopback() {
        assert_eq!(reachable(addr("0.0.0.0:8080")), addr("127.0.0.1:8080"));
        assert_eq!(reachable(addr("127.0.0.1:1")), addr("127.0.0.1:1"));
    }
}
