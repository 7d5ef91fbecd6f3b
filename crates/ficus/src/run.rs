//! `ficus run`, `validate`, `routes` and `reload`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use ficus_config::{Config, LoadError, Stage};
use std::sync::Arc;
use std::time::Duration;

use ficus_control::ControlPlane;
use ficus_proxy::Gateway;

pub fn validate(path: &Path) -> ExitCode {
    match ficus_config::load(path) {
        Ok(cfg) if cfg.admin.enabled => match ficus_admin::auth::check_tokens(
            cfg.admin.bind,
            cfg.admin.token_file.as_deref(),
            cfg.admin.read_token_file.as_deref(),
        ) {
            Ok(()) => valid(path, &cfg),
            Err(e) => {
                eprintln!("{}: error: [admin]: {e}", path.display());
                ExitCode::from(1)
            }
        },
        Ok(cfg) => valid(path, &cfg),
        Err(e) => {
            eprintln!("{e}");
            if let LoadError::Invalid(d) = &e {
                eprintln!("{}: {} error(s)", path.display(), d.count());
            }
            ExitCode::from(1)
        }
    }
}

fn valid(path: &Path, cfg: &Config) -> ExitCode {
    println!(
        "{}: ok ({} listener(s), {} upstream(s), {} route(s) + default)",
        path.display(),
        cfg.listeners.len(),
        cfg.upstreams.len(),
        cfg.routes.len()
    );
    ExitCode::SUCCESS
}

pub fn routes(path: &Path) -> ExitCode {
    match ficus_config::load(path) {
        Ok(cfg) => {
            print!("{}", route_table(&cfg));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

/// `ficus slo rules`: the Prometheus rule file of the config file's SLOs, on stdout.
pub fn slo_rules(path: &Path) -> ExitCode {
    match ficus_config::load(path) {
        Ok(cfg) => {
            let specs = cfg.slo_specs();
            if specs.is_empty() {
                eprintln!(
                    "{}: no SLO configured: add [[route.slo]] or [[slo.default]] (see docs/slo.md)",
                    path.display()
                );
                return ExitCode::from(1);
            }
            print!("{}", ficus_slo::prometheus_rules(&specs));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

/// The compiled table as text: one line per route in match order.
pub fn route_table(cfg: &Config) -> String {
    use std::fmt::Write;
    let mut rows = vec![[
        "#".to_string(),
        "ROUTE".into(),
        "MATCH".into(),
        "STAGE".into(),
        "WEIGHT".into(),
        "ANSWERS".into(),
        "FALLBACK".into(),
        "STICKY".into(),
    ]];
    for (i, r) in cfg.all_routes().enumerate() {
        let modern = r.modern.as_deref().unwrap_or("-");
        let answers = match r.stage {
            Stage::Legacy => r.legacy.clone(),
            Stage::Shadow if r.shadow.sample == ficus_config::Weight::ZERO => {
                format!("{} (no copies: [route.shadow] sample = 0%)", r.legacy)
            }
            Stage::Shadow => format!(
                "{}, copies {} of keys to {modern}",
                r.legacy, r.shadow.sample
            ),
            Stage::Canary => format!(
                "{modern} for {} of keys, {} for the rest",
                r.weight, r.legacy
            ),
            Stage::Modern => modern.to_string(),
            Stage::Retired => format!("{modern} only"),
        };
        let fallback = match r.stage {
            Stage::Canary | Stage::Modern if r.fallback.enabled => format!(
                "{} on {}",
                r.legacy,
                r.fallback
                    .on_status
                    .iter()
                    .map(|s| s.to_string())
                    .chain(r.fallback.on_timeout.then(|| "timeout".to_string()))
                    .chain(["connect".to_string()])
                    .collect::<Vec<_>>()
                    .join("/")
            ),
            _ => "-".into(),
        };
        rows.push([
            (i + 1).to_string(),
            r.name.clone(),
            r.matcher.to_string(),
            r.stage.to_string(),
            r.stage.modern_keys(r.weight).to_string(),
            answers,
            fallback,
            r.sticky.to_string(),
        ]);
    }
    let mut widths = [0usize; 8];
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

pub fn reload(path: &Path) -> ExitCode {
    let cfg = match ficus_config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}\nnot reloading: the running gateway keeps its current table");
            return ExitCode::from(1);
        }
    };
    let Some(pid_file) = &cfg.gateway.pid_file else {
        eprintln!(
            "{}: gateway.pid_file is not set, so the running gateway cannot be found; set it, or send SIGHUP to the ficus process",
            path.display()
        );
        return ExitCode::from(1);
    };
    let pid = match std::fs::read_to_string(pid_file) {
        Ok(s) => s.trim().to_string(),
        Err(e) => {
            eprintln!(
                "cannot read pid file {}: {e} (is ficus running?)",
                pid_file.display()
            );
            return ExitCode::from(1);
        }
    };
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        eprintln!("pid file {} does not hold a process id", pid_file.display());
        return ExitCode::from(1);
    }
    match std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
    {
        Ok(s) if s.success() => {
            println!(
                "sent SIGHUP to ficus (pid {pid}); it reloads {}",
                path.display()
            );
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("could not signal pid {pid} from {}", pid_file.display());
            ExitCode::from(1)
        }
    }
}

pub fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FICUS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if format == "json" {
        b.json().init();
    } else {
        // Every field and message escaped: nothing logged can start a line of its own or
        // drive the terminal (see `safe`).
        b.fmt_fields(crate::safe::LogFields).init();
    }
}

/// A multi-threaded tokio runtime (the demo, the CLI's own work).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}

/// How many worker threads serve traffic: `FICUS_WORKER_THREADS`, default one per core.
pub fn worker_threads() -> usize {
    std::env::var("FICUS_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

pub fn run(path: &Path, log_format: &str, apply_file: bool) -> ExitCode {
    init_logging(log_format);
    // The control thread (signals, reloads, the fleet's tasks) runs on its own small
    // runtime; traffic is served by the gateway's worker threads.
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
        .and_then(|rt| rt.block_on(serve(path, apply_file)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("ficus: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn serve(path: &Path, apply_file: bool) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Every check that can refuse the start runs before anything is written or bound:
    // the file validates, the admin token is usable, the store answers and (SQLite) no
    // other gateway uses it.
    let cfg = ficus_config::load(path)?;
    let config_dir = path.parent().unwrap_or_else(|| Path::new("."));
    ficus_proxy::server::preflight(&cfg)?;
    if cfg.admin.enabled {
        ficus_admin::auth::check_tokens(
            cfg.admin.bind,
            cfg.admin.token_file.as_deref(),
            cfg.admin.read_token_file.as_deref(),
        )?;
        if cfg.admin.bind.port() != 0 {
            drop(
                std::net::TcpListener::bind(cfg.admin.bind).with_context(|| {
                    format!(
                        "cannot listen on {} for the admin API ([admin] bind)",
                        cfg.admin.bind
                    )
                })?,
            );
        }
    }
    // OFREP: its keys are readable and its port is free.
    if let Some(bind) = cfg.ofrep.bind {
        if let Some(keys) = &cfg.ofrep.keys_file {
            ficus_ofrep::load_keys(keys).map_err(anyhow::Error::msg)?;
        }
        if bind.port() != 0 {
            drop(
                std::net::TcpListener::bind(bind)
                    .with_context(|| format!("cannot listen on {bind} for OFREP ([ofrep] bind)"))?,
            );
        }
    }
    let admin_token = if cfg.admin.enabled {
        let (token, source) = ficus_admin::auth::load_token(
            cfg.admin.bind,
            cfg.admin.token_file.as_deref(),
            config_dir,
        )?;
        let read = ficus_admin::auth::load_read_token(
            cfg.admin.bind,
            cfg.admin.read_token_file.as_deref(),
        )?;
        Some((token, read, source))
    } else {
        None
    };
    let store = ficus_store::Store::open(&cfg.store).await?;
    let _single_node = store.lock_single_node()?;
    tracing::info!(store = store.kind(), "state store open");
    let boot =
        ControlPlane::boot_with(path, store, ficus_control::BootOptions { apply_file }).await?;
    for e in &boot.events {
        tracing::info!(event = e.id, kind = %e.kind, "{}", e.message);
    }
    if let Some(drift) = &boot.drift {
        tracing::warn!("{drift}");
    }
    tracing::info!(node = %boot.node().id, "this process is node {}", boot.node().name);
    let cfg = boot.effective().clone();
    let pid_file = cfg.gateway.pid_file.clone();
    let admin = cfg.admin.clone();
    let workers = worker_threads();
    let gw = Arc::new(Gateway::start_with_workers(cfg, workers).await?);
    let control = ControlPlane::new(boot, gw.clone());
    // Recordings started at runtime (`ficus record start`) go on after a restart.
    if let Err(e) = control.restore_recordings().await {
        tracing::warn!(error = %e, "cannot restore the routes' runtime recordings");
    }
    // Follow the store, heartbeat, exchange telemetry; decide who leads.
    let fleet = ficus_control::fleet::FleetRuntime::start(control.clone()).await;
    // The leader delivers every recorded event (the boot's too) to the [[webhook]]
    // receivers.
    control.start_webhooks();
    for a in gw.local_addrs() {
        tracing::info!(addr = %a, workers, "listening");
    }
    // Automated rollouts tick on this (control) runtime too.
    let rollouts = ficus_control::rollout::RolloutController::spawn(
        control.clone(),
        ficus_control::rollout::TICK,
    );
    // SLOs are evaluated by the leader, on this runtime too.
    let slos = ficus_control::slo::SloController::spawn(control.clone());
    // Migration plans, walked by the leader, on this runtime too.
    let migrations = ficus_control::migration::MigrationController::spawn(
        control.clone(),
        Some(rollouts.clone()),
        ficus_control::migration::TICK,
    );
    // Flags over OFREP, on a listener of their own.
    let (ofrep_stop, ofrep_task) = match control.snapshot().effective.ofrep.clone() {
        ficus_config::Ofrep {
            bind: Some(bind), ..
        } => {
            let settings = control.snapshot().effective.ofrep.clone();
            let state = ficus_ofrep::OfrepState::new(control.clone(), settings)
                .map_err(anyhow::Error::msg)?;
            let listener = tokio::net::TcpListener::bind(bind)
                .await
                .with_context(|| format!("cannot listen on {bind} for OFREP ([ofrep] bind)"))?;
            tracing::info!(addr = %listener.local_addr()?, "OFREP listening");
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(ficus_ofrep::serve(listener, state, async move {
                let _ = rx.await;
            }));
            (Some(tx), Some(task))
        }
        _ => (None, None),
    };
    let (admin_stop, admin_task) = if let Some((token, read_token, source)) = admin_token {
        let listener = tokio::net::TcpListener::bind(admin.bind)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} for the admin API ([admin] bind)",
                    admin.bind
                )
            })?;
        tracing::info!(addr = %listener.local_addr()?, token = ?source, "admin API, /metrics and dashboard listening");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = ficus_admin::AdminState::for_node(
            control.clone(),
            token,
            read_token,
            Some(rollouts.clone()),
            Some(fleet.stats()),
        );
        state.set_migrations(migrations.clone());
        let task = tokio::spawn(ficus_admin::serve(listener, state, async move {
            let _ = rx.await;
        }));
        (Some(tx), Some(task))
    } else {
        (None, None)
    };
    // Scheduled [[verify]] jobs run on this (control) runtime, never on the worker threads.
    let verify = ficus_control::verify::VerifyScheduler::spawn(
        control.clone(),
        ficus_control::verify::SchedulerOptions::default(),
    );
    // Comparison aggregates: loaded from the store, flushed in batches on this runtime.
    let shadow = ficus_control::shadow::ShadowFlusher::spawn(
        control.clone(),
        gw.table().config.shadow.flush_interval,
    );
    // Breaker state changes raised by the data plane, into the audit log.
    let gateway_events = ficus_control::events::EventPump::spawn(control.clone());
    if let Some(p) = &pid_file {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot write pid file {}", p.display()))?;
    }
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hup.recv() => match control.reload_file("file-reload").await {
                Ok(applied) if applied.events.is_empty() => tracing::info!(file = %path.display(), "reloaded: unchanged"),
                Ok(applied) => tracing::info!(file = %path.display(), version = ?applied.version, "reloaded"),
                Err(e) => tracing::error!(file = %path.display(), "reload refused, the previous table keeps serving:\n{e}"),
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    let grace = gw.table().config.gateway.shutdown_grace;
    tracing::info!(grace = ?grace, open = gw.open_connections(), "shutting down: draining in-flight requests");
    let (left, ()) = tokio::join!(gw.shutdown(grace), verify.stop());
    migrations.stop().await;
    rollouts.stop().await;
    slos.stop().await;
    shadow.stop().await;
    if let Some(p) = gateway_events {
        p.stop().await;
    }
    // The last seconds of traffic, and the lease handed over at once.
    fleet.stop().await;
    if let Some(tx) = ofrep_stop {
        let _ = tx.send(());
    }
    if let Some(t) = ofrep_task {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    if let Some(tx) = admin_stop {
        let _ = tx.send(());
    }
    if let Some(t) = admin_task {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    if left > 0 {
        tracing::warn!(
            connections = left,
            "grace period over; closing connections still open"
        );
    } else {
        tracing::info!("drained; bye");
    }
    if let Some(p) = &pid_file {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}
