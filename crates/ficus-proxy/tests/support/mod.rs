//! Real servers on 127.0.0.1 ephemeral ports for the gateway's integration tests: a
//! configurable test upstream and a gateway started from TOML text.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// What a test upstream saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub version: http::Version,
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body_len: usize,
}

/// A test upstream. Paths:
/// - `/status/{code}`: that status, body `{name}`;
/// - `/sleep/{ms}`: waits, then 200;
/// - `/stream/{bytes}`: sends 64 KiB chunks; after the first chunk waits for `release()`;
/// - `/hold-body`: answers 200 once the first request body chunk arrived, reporting it;
/// - `/echo`: 200 with the request body as the response body;
/// - any request with `Upgrade`: 101, then echoes raw bytes;
/// - anything else: 200 with `x-served-by: {name}` and the body length in `x-body-len`.
pub struct Upstream {
    pub name: &'static str,
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    /// Connections accepted.
    pub conns: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub release: Arc<Notify>,
    /// Status every plain request answers with (default 200).
    pub status: Arc<Mutex<u16>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub async fn start(name: &'static str) -> Upstream {
        Upstream::start_with(name, None).await
    }

    /// An upstream serving HTTPS (HTTP/1.1 and HTTP/2 by ALPN) with the given certificate.
    pub async fn start_tls(name: &'static str, cert_pem: &str, key_pem: &str) -> Upstream {
        use rustls_pki_types::pem::PemObject;
        let certs =
            vec![rustls_pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()];
        let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Upstream::start_with(name, Some(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))).await
    }

    async fn start_with(name: &'static str, tls: Option<tokio_rustls::TlsAcceptor>) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let conns = Arc::new(AtomicUsize::new(0));
        let accepted = conns.clone();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let release = Arc::new(Notify::new());
        let status = Arc::new(Mutex::new(200u16));
        let st = State {
            name,
            hits: hits.clone(),
            seen: seen.clone(),
            release: release.clone(),
            status: status.clone(),
            version: Arc::new(Mutex::new(http::Version::HTTP_11)),
        };
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let st = st.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let st = st.clone();
                        async move { Ok::<_, Infallible>(st.handle(req).await) }
                    });
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = match tls {
                        None => {
                            builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                                .await
                        }
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(s) => {
                                builder
                                    .serve_connection_with_upgrades(TokioIo::new(s), svc)
                                    .await
                            }
                            Err(_) => Ok(()),
                        },
                    };
                });
            }
        });
        Upstream {
            name,
            addr,
            hits,
            conns,
            seen,
            release,
            status,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the upstream saw a request")
    }

    pub fn set_status(&self, s: u16) {
        *self.status.lock().unwrap() = s;
    }
}

#[derive(Clone)]
struct State {
    name: &'static str,
    hits: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    release: Arc<Notify>,
    status: Arc<Mutex<u16>>,
    version: Arc<Mutex<http::Version>>,
}

impl State {
    async fn handle(&self, mut req: Request<Incoming>) -> Response<BoxBody> {
        self.hits.fetch_add(1, Ordering::SeqCst);
        let path = req.uri().path().to_string();
        let method = req.method().to_string();
        let headers = req.headers().clone();
        *self.version.lock().unwrap() = req.version();
        if headers.contains_key(http::header::UPGRADE) {
            self.record(method, path, headers, 0);
            let on = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(up) = on.await {
                    let mut io = TokioIo::new(up);
                    let (mut r, mut w) = tokio::io::split(&mut io);
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                }
            });
            return Response::builder()
                .status(101)
                .header("connection", "upgrade")
                .header("upgrade", "websocket")
                .body(full(""))
                .unwrap();
        }
        if path == "/hold-body" {
            let mut body = req.into_body();
            let first = loop {
                match body.frame().await {
                    Some(Ok(f)) => {
                        if let Ok(d) = f.into_data() {
                            break d.len();
                        }
                    }
                    _ => break 0,
                }
            };
            self.record(method, path, headers, first);
            // Keep draining in the background so the client can finish sending.
            tokio::spawn(async move { while body.frame().await.is_some() {} });
            return text(200, self.name, &format!("first-chunk={first}"));
        }
        let body = req
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        self.record(method, path.clone(), headers, body.len());
        let mut parts = path.trim_start_matches('/').splitn(2, '/');
        match (parts.next(), parts.next()) {
            (Some("status"), Some(code)) => text(code.parse().unwrap_or(500), self.name, self.name),
            (Some("echo"), None) => Response::builder()
                .header("x-served-by", self.name)
                .body(full(body))
                .unwrap(),
            (Some("sleep"), Some(ms)) => {
                tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
                text(200, self.name, self.name)
            }
            (Some("stream"), Some(n)) => {
                let total: usize = n.parse().unwrap_or(0);
                let release = self.release.clone();
                let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
                tokio::spawn(async move {
                    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                    let mut sent = 0;
                    let mut first = true;
                    while sent < total {
                        let n = chunk.len().min(total - sent);
                        if tx.send(Ok(Frame::data(chunk.slice(..n)))).await.is_err() {
                            return;
                        }
                        sent += n;
                        if first {
                            first = false;
                            release.notified().await;
                        }
                    }
                });
                let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|f| (f, rx))
                });
                Response::builder()
                    .header("x-served-by", self.name)
                    .body(BodyExt::boxed(StreamBody::new(stream)))
                    .unwrap()
            }
            _ => {
                let status = *self.status.lock().unwrap();
                let mut r = text(status, self.name, self.name);
                r.headers_mut().insert("x-body-len", body.len().into());
                r
            }
        }
    }

    fn record(&self, method: String, path: String, headers: HeaderMap, body_len: usize) {
        let version = *self.version.lock().unwrap();
        self.seen.lock().unwrap().push(Seen {
            version,
            method,
            path,
            headers,
            body_len,
        });
    }
}

pub fn full(s: impl Into<Bytes>) -> BoxBody {
    BodyExt::boxed(Full::new(s.into()))
}

fn text(status: u16, name: &str, body: &str) -> Response<BoxBody> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("x-served-by", name)
        .header("content-type", "text/plain")
        .body(full(body.to_string()))
        .unwrap()
}

/// A gateway started from config text. `{legacy}` and `{modern}` in the text are replaced by
/// the upstreams' URLs; the listener should bind `127.0.0.1:0`.
pub struct TestGateway {
    pub gw: Option<ficus_proxy::Gateway>,
    pub addr: SocketAddr,
}

impl TestGateway {
    pub async fn start(toml: &str, vars: &[(&str, String)]) -> TestGateway {
        let cfg = config(toml, vars);
        let gw = ficus_proxy::Gateway::start(cfg)
            .await
            .expect("gateway starts");
        let addr = gw.local_addrs()[0];
        TestGateway { gw: Some(gw), addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn gateway(&self) -> &ficus_proxy::Gateway {
        self.gw.as_ref().unwrap()
    }
}

/// Parses config text after substituting `{name}` variables; panics with the diagnostics.
pub fn config(toml: &str, vars: &[(&str, String)]) -> ficus_config::Config {
    let mut text = toml.to_string();
    for (k, v) in vars {
        text = text.replace(&format!("{{{k}}}"), v);
    }
    ficus_config::parse_str(&text, "test.toml", std::path::Path::new("."))
        .unwrap_or_else(|d| panic!("test config is invalid:\n{d}\n---\n{text}"))
}

/// A plain HTTP/1.1 client.
pub fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, BoxBody> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends a request and collects the response.
pub async fn send(req: Request<BoxBody>) -> (StatusCode, HeaderMap, Bytes) {
    let resp = client().request(req).await.expect("the gateway answers");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("a complete body").to_bytes();
    (parts.status, parts.headers, body)
}

pub async fn get(url: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Bytes) {
    let mut b = Request::get(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(b.body(full("")).unwrap()).await
}

pub fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

/// Counts of a header's values over many responses.
pub fn tally(values: impl IntoIterator<Item = String>) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for v in values {
        *m.entry(v).or_default() += 1;
    }
    m
}

/// A port on which nothing listens (bound, then closed).
pub async fn dead_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    format!("http://{a}")
}

/// What a raw upstream does with one request: the bytes to answer, and whether to close the
/// connection afterwards.
pub type Script = Arc<dyn Fn(&str) -> (Vec<u8>, bool) + Send + Sync>;

pub struct Raw {
    pub url: String,
    pub conns: Arc<AtomicUsize>,
    /// Every request as received (head and body bytes), in order.
    pub requests: Arc<Mutex<Vec<Vec<u8>>>>,
}

/// An upstream that reads a request head (and a body framed by Content-Length or chunked)
/// and writes whatever the script says.
pub async fn raw(script: Script) -> Raw {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let conns = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (c, r) = (conns.clone(), requests.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            c.fetch_add(1, Ordering::SeqCst);
            let (script, r) = (script.clone(), r.clone());
            tokio::spawn(async move {
                let mut got: Vec<u8> = Vec::new();
                let mut buf = vec![0u8; 65536];
                loop {
                    let Some(end) = read_message(&mut s, &mut got, &mut buf).await else {
                        return;
                    };
                    let msg: Vec<u8> = got.drain(..end).collect();
                    let head = String::from_utf8_lossy(&msg).to_string();
                    r.lock().unwrap().push(msg);
                    let (answer, close) = script(&head);
                    if s.write_all(&answer).await.is_err() || close {
                        return;
                    }
                }
            });
        }
    });
    Raw {
        url,
        conns,
        requests,
    }
}

/// Reads one whole request into `got`; returns its length.
pub async fn read_message(
    s: &mut tokio::net::TcpStream,
    got: &mut Vec<u8>,
    buf: &mut [u8],
) -> Option<usize> {
    loop {
        if let Some(h) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..h]).to_lowercase();
            let body_start = h + 4;
            if head.contains("transfer-encoding: chunked") {
                if let Some(e) = got[body_start..].windows(5).position(|w| w == b"0\r\n\r\n") {
                    return Some(body_start + e + 5);
                }
            } else {
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                if got.len() >= body_start + len {
                    return Some(body_start + len);
                }
            }
        }
        match s.read(buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

pub fn script(f: impl Fn(&str) -> (Vec<u8>, bool) + Send + Sync + 'static) -> Script {
    Arc::new(f)
}
