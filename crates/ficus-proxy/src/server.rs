//! Listeners and the gateway's lifecycle: accept with a connection limit, serve HTTP/1.1 and
//! HTTP/2 (h2c prior knowledge, or ALPN over TLS), hot reload by swapping the route table,
//! graceful shutdown that drains in-flight requests.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use ficus_config::{defaults, Config, Listener};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::access_log;
use crate::proxy::{self, ConnInfo, Shared};
use crate::table::RouteTable;

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
}

/// A running gateway.
pub struct Gateway {
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
    listeners: Vec<Listener>,
    max_connections: usize,
    connections: Arc<Semaphore>,
    stop: watch::Sender<bool>,
    accept_tasks: Vec<tokio::task::JoinHandle<()>>,
    log_task: Option<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    /// Binds every listener and starts serving.
    pub async fn start(config: Config) -> Result<Gateway, GatewayError> {
        let table = RouteTable::compile(config, None)?;
        let cfg = table.config.clone();
        let (access_log, log_task) =
            match access_log::start(&cfg.access_log, defaults::ACCESS_LOG_QUEUE) {
                Ok((tx, task)) => (Some(tx), Some(task)),
                Err(e) => return Err(GatewayError::AccessLog(e)),
            };
        let shared = Arc::new(Shared {
            table: ArcSwap::from_pointee(table),
            access_log,
        });
        let max_connections = cfg.gateway.max_connections;
        let connections = Arc::new(Semaphore::new(max_connections));
        let (stop, _) = watch::channel(false);
        let mut addrs = Vec::new();
        let mut accept_tasks = Vec::new();
        for l in &cfg.listeners {
            let tls = l
                .tls
                .as_ref()
                .map(|t| tls_acceptor(&l.name, t))
                .transpose()?;
            let listener =
                TcpListener::bind(l.bind)
                    .await
                    .map_err(|source| GatewayError::Bind {
                        name: l.name.clone(),
                        addr: l.bind,
                        source,
                    })?;
            let addr = listener.local_addr().map_err(|source| GatewayError::Bind {
                name: l.name.clone(),
                addr: l.bind,
                source,
            })?;
            addrs.push(addr);
            accept_tasks.push(tokio::spawn(accept_loop(
                listener,
                tls,
                shared.clone(),
                connections.clone(),
                stop.subscribe(),
            )));
        }
        Ok(Gateway {
            shared,
            addrs,
            listeners: cfg.listeners.clone(),
            max_connections,
            connections,
            stop,
            accept_tasks,
            log_task,
        })
    }

    /// The bound address of each listener, in config order (useful with port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The route table serving now.
    pub fn table(&self) -> Arc<RouteTable> {
        self.shared.table.load_full()
    }

    /// Swaps in a new, already validated config. In-flight requests finish on the table they
    /// started with; the next request uses the new one. Listeners and `max_connections` are
    /// bound at start: a config that changes them is refused and the old table keeps serving.
    pub fn reload(&self, config: Config) -> Result<(), GatewayError> {
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
        let table = RouteTable::compile(config, Some(&current))?;
        self.shared.table.store(Arc::new(table));
        Ok(())
    }

    /// Connections being served now.
    pub fn open_connections(&self) -> usize {
        self.max_connections - self.connections.available_permits()
    }

    /// Stops accepting, asks every connection to finish its in-flight requests, and waits up
    /// to `grace` for them. Returns how many connections were still open at the deadline.
    pub async fn shutdown(self, grace: Duration) -> usize {
        let _ = self.stop.send(true);
        for t in &self.accept_tasks {
            t.abort();
        }
        let all = u32::try_from(self.max_connections).unwrap_or(u32::MAX);
        let drained = tokio::time::timeout(grace, self.connections.acquire_many(all)).await;
        let left = match drained {
            Ok(_) => 0,
            Err(_) => self.max_connections - self.connections.available_permits(),
        };
        drop(self.shared);
        if let (Some(t), 0) = (self.log_task, left) {
            // The writer ends, after writing what is queued, once the last sender is gone;
            // with connections still open past the grace period there is no waiting for it.
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
        left
    }
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
    stop: watch::Receiver<bool>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
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
        let stop = stop.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, tls, shared, stop).await;
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
    stop: watch::Receiver<bool>,
) {
    let gw = shared.table.load().config.gateway.clone();
    let builder = server_builder(&gw);
    match tls {
        None => {
            let conn = Arc::new(ConnInfo::new(peer, false));
            drive(builder, TokioIo::new(stream), conn, shared, stop).await;
        }
        Some(acceptor) => {
            // The handshake counts against the header read timeout: a slow client is a slow client.
            let Ok(Ok(tls_stream)) =
                tokio::time::timeout(gw.header_read_timeout, acceptor.accept(stream)).await
            else {
                return;
            };
            let conn = Arc::new(ConnInfo::new(peer, true));
            drive(builder, TokioIo::new(tls_stream), conn, shared, stop).await;
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
    mut stop: watch::Receiver<bool>,
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
    if *stop.borrow() {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            _ = connection.as_mut() => break,
            changed = stop.changed() => {
                connection.as_mut().graceful_shutdown();
                if changed.is_err() {
                    // The gateway is gone: finish this connection without watching further.
                    let _ = connection.as_mut().await;
                    break;
                }
            }
        }
    }
}
