//! Listeners and the gateway's lifecycle: accept with a connection limit, serve HTTP/1.1 and
//! HTTP/2 (h2c prior knowledge, or ALPN over TLS), hot reload by swapping the route table,
//! graceful shutdown that drains in-flight requests.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use ficus_config::{defaults, Config, Listener};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::access_log;
use crate::proxy::{self, ConnInfo, Shared};
use crate::table::RouteTable;
use ficus_telemetry::Telemetry;

use crate::mirror::Mirror;

/// Why the gateway could not start or reload.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot listen on {addr} (listener \"{name}\"): {source}")]
    Bind {
        name: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("listener \"{name}\": TLS: {reason}")]
    Tls { name: String, reason: String },
    #[error(transparent)]
    Upstream(#[from] crate::upstream::UpstreamError),
    #[error("cannot open the access log: {0}")]
    AccessLog(std::io::Error),
    #[error("{0} cannot change on reload; restart ficus to apply it")]
    NeedsRestart(&'static str),
    #[error("route \"{route}\": [route.shadow]: {reason}")]
    Shadow { route: String, reason: String },
    #[error("cannot start the mirror worker thread: {0}")]
    Mirror(std::io::Error),
    #[error("route \"{route}\": {reason}")]
    Protection { route: String, reason: String },
    #[error("{0}")]
    Tracing(String),
    #[error("recording: {0}")]
    Record(String),
}

/// A running gateway.
pub struct Gateway {
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
    listeners: Vec<Listener>,
    max_connections: usize,
    workers: usize,
    connections: Arc<Semaphore>,
    stop: watch::Sender<bool>,
    drain: Arc<Drain>,
    accept_tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Worker threads (thread-per-core mode) and the signal that ends their runtimes.
    worker_threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    workers_done: watch::Sender<bool>,
    telemetry: Arc<Telemetry>,
    mirror: Arc<Mirror>,
    recorder: Arc<crate::record::Recorder>,
    events: crate::events::Events,
    ticker: tokio::task::JoinHandle<()>,
}

/// Tells open connections to finish when the gateway stops. Each connection registers a
/// oneshot once (a lock per connection, not per request); polling a oneshot is lock-free,
/// unlike a shared watch channel, which every connection would lock on every wake-up.
#[derive(Default)]
struct Drain {
    stopping: AtomicBool,
    next: AtomicU64,
    conns: Mutex<HashMap<u64, oneshot::Sender<()>>>,
}

impl Drain {
    /// Registers a connection; `None` when the gateway is already stopping.
    fn register(&self) -> Option<(u64, oneshot::Receiver<()>)> {
        let (tx, rx) = oneshot::channel();
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        // Checked after inserting, so a stop that raced with us either sees the entry or is
        // seen here.
        if self.stopping.load(Ordering::SeqCst) {
            self.unregister(id);
            return None;
        }
        Some((id, rx))
    }

    fn unregister(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let conns = std::mem::take(&mut *self.conns.lock().unwrap_or_else(|p| p.into_inner()));
        for (_, tx) in conns {
            let _ = tx.send(());
        }
    }
}

/// A listener socket ready to be handed to a runtime.
struct Bound {
    socket: std::net::TcpListener,
    tls: Option<TlsAcceptor>,
}

impl Gateway {
    /// Binds every listener and starts serving on the caller's tokio runtime.
    pub async fn start(config: Config) -> Result<Gateway, GatewayError> {
        Gateway::start_with_workers(config, 0).await
    }

    /// Binds every listener and starts serving. With `workers > 0`, serving runs on that many
    /// threads, each with its own single-threaded runtime, its own `SO_REUSEPORT` socket per
    /// listener (the kernel spreads connections) and its own upstream connection pools, so a
    /// request never crosses threads (the nginx model). With `workers == 0` it runs on the
    /// caller's runtime (tests, the demo).
    pub async fn start_with_workers(
        config: Config,
        workers: usize,
    ) -> Result<Gateway, GatewayError> {
        let telemetry = Telemetry::new(workers.max(1));
        let tracer = start_tracer(&config)?;
        // Pools 0..workers serve the request workers; the last one is the mirror thread's.
        let mirror = Mirror::start(config.shadow.clone(), workers.max(1), tracer.clone())
            .map_err(GatewayError::Mirror)?;
        let events = crate::events::Events::new(crate::events::QUEUE);
        let recorder = crate::record::Recorder::start(
            config.recording.clone(),
            &config
                .node
                .name
                .clone()
                .unwrap_or_else(crate::record::host_name),
        )
        .map_err(|e| GatewayError::Record(format!("cannot start the writer thread: {e}")))?;
        let table = RouteTable::compile(
            config,
            None,
            workers.max(1) + 1,
            &telemetry,
            &mirror,
            &events,
            Some(&recorder),
        )?;
        configure_sli(&table, &telemetry);
        recorder
            .configure(&table.config)
            .map_err(GatewayError::Record)?;
        telemetry.set_extra("record", crate::record::metrics(Arc::downgrade(&recorder)));
        let cfg = table.config.clone();
        let access_log = match access_log::start(
            &cfg.access_log,
            defaults::ACCESS_LOG_QUEUE,
            cfg.redact.all_query(),
        ) {
            Ok((tx, _writer)) => Some(tx),
            Err(e) => return Err(GatewayError::AccessLog(e)),
        };
        if let Some(t) = &tracer {
            telemetry.set_extra("tracing", trace_metrics(t.clone()));
        }
        let shared = Arc::new(Shared {
            table: ArcSwap::from_pointee(table),
            access_log,
            telemetry: telemetry.clone(),
            tracer,
        });
        // Weak: the telemetry is shared with `shared`, which must not keep itself alive.
        let weak = Arc::downgrade(&shared);
        telemetry.set_extra(
            "protection",
            Box::new(move || {
                weak.upgrade()
                    .map(|s| crate::table::protection_metrics(&s.table.load()))
                    .unwrap_or_default()
            }),
        );
        let max_connections = cfg.gateway.max_connections;
        let connections = Arc::new(Semaphore::new(max_connections));
        let (stop, _) = watch::channel(false);
        let drain = Arc::new(Drain::default());
        let (workers_done, _) = watch::channel(false);
        let sockets_per_listener = workers.max(1);
        let mut addrs = Vec::new();
        // bound[w] holds worker w's socket for every listener.
        let mut bound: Vec<Vec<Bound>> = (0..sockets_per_listener).map(|_| Vec::new()).collect();
        for l in &cfg.listeners {
            let tls = l
                .tls
                .as_ref()
                .map(|t| tls_acceptor(&l.name, t))
                .transpose()?;
            let bind_err = |source| GatewayError::Bind {
                name: l.name.clone(),
                addr: l.bind,
                source,
            };
            let first = bind(l.bind, workers > 0).map_err(bind_err)?;
            // With port 0 every worker must share the port the first socket got.
            let addr = first.local_addr().map_err(bind_err)?;
            addrs.push(addr);
            bound[0].push(Bound {
                socket: first,
                tls: tls.clone(),
            });
            for b in bound.iter_mut().skip(1) {
                b.push(Bound {
                    socket: bind(addr, true).map_err(bind_err)?,
                    tls: tls.clone(),
                });
            }
        }
        let mut accept_tasks = Vec::new();
        let mut worker_threads = Vec::new();
        if workers == 0 {
            for b in bound.pop().unwrap_or_default() {
                let listener =
                    TcpListener::from_std(b.socket).map_err(|source| GatewayError::Bind {
                        name: "listener".into(),
                        addr: addrs[0],
                        source,
                    })?;
                accept_tasks.push(tokio::spawn(accept_loop(
                    listener,
                    b.tls,
                    shared.clone(),
                    connections.clone(),
                    stop.subscribe(),
                    drain.clone(),
                )));
            }
        } else {
            for (id, sockets) in bound.into_iter().enumerate() {
                let (shared, connections, drain) =
                    (shared.clone(), connections.clone(), drain.clone());
                let (stop, mut done) = (stop.subscribe(), workers_done.subscribe());
                let spawned = std::thread::Builder::new()
                    .name(format!("ficus-worker-{id}"))
                    .spawn(move || {
                        crate::upstream::set_worker(id);
                        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                            Ok(rt) => rt,
                            Err(e) => {
                                tracing::error!(worker = id, error = %e, "cannot start a worker runtime");
                                return;
                            }
                        };
                        rt.block_on(async move {
                            for b in sockets {
                                match TcpListener::from_std(b.socket) {
                                    Ok(l) => {
                                        tokio::spawn(accept_loop(l, b.tls, shared.clone(), connections.clone(), stop.clone(), drain.clone()));
                                    }
                                    Err(e) => tracing::error!(worker = id, error = %e, "cannot register a listener"),
                                }
                            }
                            let _ = done.wait_for(|d| *d).await;
                        });
                        // Dropping the runtime closes whatever is still open after the grace period.
                    })
                    .map_err(|source| GatewayError::Bind {
                        name: format!("worker {id}"),
                        addr: addrs.first().copied().unwrap_or_else(|| ([127, 0, 0, 1], 0).into()),
                        source,
                    })?;
                worker_threads.push(spawned);
            }
        }
        Ok(Gateway {
            shared,
            addrs,
            listeners: cfg.listeners.clone(),
            max_connections,
            workers: workers.max(1),
            connections,
            stop,
            drain,
            accept_tasks,
            worker_threads: Mutex::new(worker_threads),
            workers_done,
            ticker: tokio::spawn(tick(telemetry.clone())),
            telemetry,
            mirror,
            recorder,
            events,
        })
    }

    /// This node's recorder: the routes' recording counts and settings.
    pub fn recorder(&self) -> &Arc<crate::record::Recorder> {
        &self.recorder
    }

    /// Events the data plane raises (breaker state changes): take the receiver once and
    /// append what arrives to the audit log.
    pub fn events(&self) -> &crate::events::Events {
        &self.events
    }

    /// The mirror (shadow traffic) and its comparison aggregates.
    pub fn mirror(&self) -> &Arc<Mirror> {
        &self.mirror
    }

    /// The bound address of each listener, in config order (useful with port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Per (route, side) statistics.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// The route table serving now.
    pub fn table(&self) -> Arc<RouteTable> {
        self.shared.table.load_full()
    }

    /// Swaps in a new, already validated config. In-flight requests finish on the table they
    /// started with; the next request uses the new one. Listeners and `max_connections` are
    /// bound at start: a config that changes them is refused and the old table keeps serving.
    pub fn reload(&self, config: Config) -> Result<(), GatewayError> {
        let table = self.prepare(config)?;
        self.swap(table);
        Ok(())
    }

    /// Checks and compiles a config into a table without serving it yet, so a caller can
    /// record the change durably before [`swap`](Self::swap) makes it live.
    pub fn prepare(&self, config: Config) -> Result<RouteTable, GatewayError> {
        if config.listeners != self.listeners {
            return Err(GatewayError::NeedsRestart("[[listener]]"));
        }
        if config.gateway.max_connections != self.max_connections {
            return Err(GatewayError::NeedsRestart("gateway.max_connections"));
        }
        let current = self.shared.table.load_full();
        if config.access_log.format != current.config.access_log.format
            || config.access_log.path != current.config.access_log.path
        {
            return Err(GatewayError::NeedsRestart(
                "access_log.format / access_log.path",
            ));
        }
        if config.admin != current.config.admin {
            return Err(GatewayError::NeedsRestart("[admin]"));
        }
        if config.store != current.config.store {
            return Err(GatewayError::NeedsRestart("store"));
        }
        if config.shadow != current.config.shadow {
            return Err(GatewayError::NeedsRestart("[shadow]"));
        }
        if config.tracing != current.config.tracing {
            return Err(GatewayError::NeedsRestart("[tracing]"));
        }
        if config.ofrep != current.config.ofrep {
            return Err(GatewayError::NeedsRestart("[ofrep]"));
        }
        if config.recording != current.config.recording {
            return Err(GatewayError::NeedsRestart("[record]"));
        }
        if config.all_routes().any(|r| r.record.is_some()) {
            // The redaction key must be there before a route may record.
            self.recorder.ready().map_err(GatewayError::Record)?;
        }
        RouteTable::compile(
            config,
            Some(&current),
            self.workers + 1,
            &self.telemetry,
            &self.mirror,
            &self.events,
            Some(&self.recorder),
        )
    }

    /// Makes a prepared table live: the very next request uses it.
    pub fn swap(&self, table: RouteTable) {
        configure_sli(&table, &self.telemetry);
        if let Err(e) = self.recorder.configure(&table.config) {
            tracing::error!(error = %e, "recording: the routes' recording settings could not be applied");
        }
        self.shared.table.store(Arc::new(table));
    }

    /// Connections being served now.
    pub fn open_connections(&self) -> usize {
        self.max_connections - self.connections.available_permits()
    }

    /// Stops accepting, asks every connection to finish its in-flight requests, and waits up
    /// to `grace` for them. Returns how many connections were still open at the deadline.
    pub async fn shutdown(&self, grace: Duration) -> usize {
        let _ = self.stop.send(true);
        self.drain.stop();
        self.ticker.abort();
        for t in &self.accept_tasks {
            t.abort();
        }
        let all = u32::try_from(self.max_connections).unwrap_or(u32::MAX);
        let left = match tokio::time::timeout(grace, self.connections.acquire_many(all)).await {
            // Keep the permits: nothing is accepted any more anyway.
            Ok(Ok(permits)) => {
                permits.forget();
                0
            }
            _ => self.max_connections - self.connections.available_permits(),
        };
        let _ = self.workers_done.send(true);
        let threads = std::mem::take(
            &mut *self
                .worker_threads
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        if let Some(log) = &self.shared.access_log {
            log.close(Duration::from_secs(2)).await;
        }
        let mirror = self.mirror.clone();
        let _ = tokio::task::spawn_blocking(move || mirror.stop()).await;
        let recorder = self.recorder.clone();
        let _ = tokio::task::spawn_blocking(move || recorder.stop()).await;
        if let Some(t) = self.shared.tracer.clone() {
            // The spans of the last requests, at most two seconds more.
            let _ = tokio::task::spawn_blocking(move || t.shutdown(Duration::from_secs(2))).await;
        }
        left
    }
}

/// The settings `[tracing]` and the `OTEL_*` variables give, and the TLS roots for an
/// `https://` collector: checked by [`preflight`] before `ficus run` writes anything.
fn tracing_settings(
    config: &Config,
) -> Result<Option<(ficus_trace::Settings, rustls::ClientConfig)>, GatewayError> {
    let settings =
        ficus_trace::Settings::resolve(&config.tracing, config.node.name.as_deref(), |k| {
            std::env::var(k).ok()
        })
        .map_err(GatewayError::Tracing)?;
    let Some(settings) = settings else {
        return Ok(None);
    };
    let roots = crate::upstream::trusted_roots(settings.ca_file.as_deref()).map_err(|e| {
        let path = settings
            .ca_file
            .as_deref()
            .unwrap_or(std::path::Path::new(""));
        GatewayError::Tracing(format!("tracing: ca_file {}: {e}", path.display()))
    })?;
    let tls = crate::upstream::client_tls(roots, Vec::new())
        .map_err(|e| GatewayError::Tracing(format!("tracing: TLS: {e}")))?;
    Ok(Some((settings, tls)))
}

/// Counts the SLI of every route scope an SLO covers, at the latency thresholds its SLOs
/// name, and nothing of the others.
fn configure_sli(table: &RouteTable, telemetry: &Telemetry) {
    let specs = table.config.slo_specs();
    for route in table
        .config
        .routes
        .iter()
        .chain(std::iter::once(&table.config.default_route))
    {
        let stats = telemetry.route(&route.name);
        for scope in ficus_telemetry::SliScope::ALL {
            let mine: Vec<&ficus_slo::Spec> = specs
                .iter()
                .filter(|s| s.route == route.name && sli_scope(s.scope) == scope)
                .collect();
            let thresholds: Vec<u64> = mine
                .iter()
                .filter_map(|s| match s.sli {
                    ficus_slo::Sli::Latency { threshold_us } => Some(threshold_us),
                    ficus_slo::Sli::Availability { .. } => None,
                })
                .collect();
            stats.sli(scope).configure(!mine.is_empty(), &thresholds);
        }
    }
}

fn sli_scope(scope: ficus_slo::Scope) -> ficus_telemetry::SliScope {
    match scope {
        ficus_slo::Scope::Route => ficus_telemetry::SliScope::Route,
        ficus_slo::Scope::Legacy => ficus_telemetry::SliScope::Legacy,
        ficus_slo::Scope::Modern => ficus_telemetry::SliScope::Modern,
    }
}

fn start_tracer(config: &Config) -> Result<Option<Arc<ficus_trace::Tracer>>, GatewayError> {
    let Some((settings, tls)) = tracing_settings(config)? else {
        return Ok(None);
    };
    let url = settings.url.clone();
    let tracer = ficus_trace::Tracer::start(settings, tls).map_err(|e| {
        GatewayError::Tracing(format!("tracing: cannot start the export thread: {e}"))
    })?;
    tracing::info!(collector = %url, "tracing: spans are exported over OTLP/HTTP");
    Ok(Some(tracer))
}

/// The exporter's counters for `/metrics`.
fn trace_metrics(t: Arc<ficus_trace::Tracer>) -> ficus_telemetry::ExtraMetrics {
    Box::new(move || {
        let s = t.stats();
        let n = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        let outcome = |v: &str| vec![("outcome", v.to_string())];
        vec![
            ficus_telemetry::Family {
                name: "ficus_trace_spans",
                help: "Finished spans: exported (accepted by the collector), dropped because the queue was full, or lost with a failed export.",
                gauge: false,
                samples: vec![
                    (outcome("exported"), n(&s.exported)),
                    (outcome("queue_full"), n(&s.dropped_queue_full)),
                    (outcome("export_failed"), n(&s.dropped_export_failed)),
                ],
            },
            ficus_telemetry::Family {
                name: "ficus_trace_exports",
                help: "Export requests to the collector, by outcome.",
                gauge: false,
                samples: vec![
                    (outcome("ok"), n(&s.batches_ok)),
                    (outcome("error"), n(&s.batches_failed)),
                ],
            },
        ]
    })
}

/// Closes a one-second telemetry slot every second, on the second.
async fn tick(telemetry: Arc<Telemetry>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every.tick().await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        telemetry.tick(now);
    }
}

/// A non-blocking listening socket; with `reuse_port`, several sockets (one per worker) can
/// share the address and the kernel spreads connections over them.
/// What can refuse [`Gateway::start_with_workers`], checked without serving anything: each
/// listener's address can be bound (then released; port 0 always can), each TLS listener's
/// files load, and the access log's folder exists. `ficus run` calls it before it writes to
/// the store, so that a start refused for these reasons changes nothing.
pub fn preflight(config: &Config) -> Result<(), GatewayError> {
    tracing_settings(config)?;
    for l in &config.listeners {
        if let Some(t) = &l.tls {
            tls_acceptor(&l.name, t)?;
        }
        if l.bind.port() != 0 {
            // SO_REUSEPORT as the workers bind: a test socket must not fail where they would
            // succeed (nor the other way round).
            drop(bind(l.bind, true).map_err(|source| GatewayError::Bind {
                name: l.name.clone(),
                addr: l.bind,
                source,
            })?);
        }
    }
    if let (true, Some(path)) = (config.access_log.enabled, &config.access_log.path) {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir.filter(|d| !d.is_dir()) {
            return Err(GatewayError::AccessLog(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "{}: its folder {} does not exist",
                    path.display(),
                    dir.display()
                ),
            )));
        }
    }
    Ok(())
}

fn bind(addr: SocketAddr, reuse_port: bool) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

fn tls_acceptor(name: &str, files: &ficus_config::TlsFiles) -> Result<TlsAcceptor, GatewayError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let err = |reason: String| GatewayError::Tls {
        name: name.to_string(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| {
            err(format!(
                "cannot read certificate file {}: {e}",
                files.cert.display()
            ))
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            err(format!(
                "bad certificate file {}: {e}",
                files.cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(err(format!("no certificate in {}", files.cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        err(format!(
            "cannot read private key {}: {e}",
            files.key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| err(format!("certificate and key do not fit: {e}")))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    connections: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
    drain: Arc<Drain>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        let drain = drain.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, tls, shared, &drain).await;
            drop(permit);
        });
    }
}

/// Over the connection limit: a short 503 problem, then close.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str = r#"{"type":"urn:ficus:problem:too-many-connections","title":"Too many connections","status":503,"detail":"the gateway is serving its maximum number of connections","fix":"retry shortly, or raise gateway.max_connections"}"#;
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(resp.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    drain: &Drain,
) {
    let gw = shared.table.load().config.gateway.clone();
    match tls {
        None => {
            let conn = Arc::new(ConnInfo::new(peer, false));
            // ficus's own loop first; hyper takes over the connection for what it does not
            // serve (see h1server).
            let Some((id, mut stop)) = drain.register() else {
                return;
            };
            let ended = crate::h1server::serve(
                stream,
                &conn,
                &shared,
                &mut stop,
                gw.header_read_timeout,
                usize::try_from(gw.max_header_bytes).unwrap_or(usize::MAX),
                gw.send_timeout,
            )
            .await;
            drain.unregister(id);
            if let crate::h1server::Ended::Handover(stream, read) = ended {
                let builder = server_builder(&gw);
                let io = crate::h1server::Prefixed::new(read, stream, gw.send_timeout);
                // Boxed here and below: hyper's connection future is large, and inlined into
                // this one it spread ficus's own request loop over a 30 KB function, a cost
                // in instruction cache misses on every request.
                Box::pin(drive(builder, TokioIo::new(io), conn, shared, drain)).await;
            }
        }
        Some(acceptor) => {
            let builder = server_builder(&gw);
            // The handshake counts against the header read timeout: a slow client is a slow client.
            let Ok(Ok(tls_stream)) =
                tokio::time::timeout(gw.header_read_timeout, acceptor.accept(stream)).await
            else {
                return;
            };
            let conn = Arc::new(ConnInfo::new(peer, true));
            let io = crate::h1server::Prefixed::new(Bytes::new(), tls_stream, gw.send_timeout);
            Box::pin(drive(builder, TokioIo::new(io), conn, shared, drain)).await;
        }
    }
}

fn server_builder(gw: &ficus_config::Gateway) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(gw.header_read_timeout)
        .max_buf_size(usize::try_from(gw.max_header_bytes).unwrap_or(usize::MAX))
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(gw.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    b
}

async fn drive<I>(
    builder: auto::Builder<TokioExecutor>,
    io: TokioIo<I>,
    conn: Arc<ConnInfo>,
    shared: Arc<Shared>,
    drain: &Drain,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let shared = shared.clone();
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(proxy::handle(&shared, &conn, req).await) }
    });
    let connection = builder.serve_connection_with_upgrades(io, svc);
    tokio::pin!(connection);
    let Some((id, mut stop)) = drain.register() else {
        connection.as_mut().graceful_shutdown();
        let _ = connection.await;
        return;
    };
    tokio::select! {
        biased;
        _ = connection.as_mut() => {}
        _ = &mut stop => {
            // Finish the in-flight requests, then close (HTTP/1.1) or GOAWAY (HTTP/2).
            connection.as_mut().graceful_shutdown();
            let _ = connection.as_mut().await;
        }
    }
    drain.unregister(id);
}
