//! What the control-plane tests share: upstream services whose failures and delay change
//! while they run, a webhook receiver, and clients sending GETs as many users.

#![allow(dead_code)]

use std::convert::Infallible;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ficus_control::ControlPlane;
use ficus_proxy::Gateway;
use ficus_store::Store;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// A service whose failure share (per mille) and delay can be changed while it runs.
pub struct Service {
    pub url: String,
    pub fail_permille: Arc<AtomicU64>,
    pub delay_ms: Arc<AtomicU64>,
}

pub async fn service(name: &'static str) -> Service {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let fail_permille = Arc::new(AtomicU64::new(0));
    let delay_ms = Arc::new(AtomicU64::new(0));
    let n = Arc::new(AtomicU64::new(0));
    let (f, d) = (fail_permille.clone(), delay_ms.clone());
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let (f, d, n) = (f.clone(), d.clone(), n.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |_req: hyper::Request<hyper::body::Incoming>| {
                        let (f, d, n) = (f.clone(), d.clone(), n.clone());
                        async move {
                            let ms = d.load(Ordering::Relaxed);
                            if ms > 0 {
                                tokio::time::sleep(Duration::from_millis(ms)).await;
                            }
                            // Every (1000 / permille)-th request fails: an exact share.
                            let i = n.fetch_add(1, Ordering::Relaxed);
                            let p = f.load(Ordering::Relaxed);
                            let fail = p > 0 && (i * p) % 1000 < p;
                            let mut resp = hyper::Response::new(Full::new(Bytes::from(name)));
                            if fail {
                                *resp.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                            }
                            Ok::<_, Infallible>(resp)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    Service {
        url,
        fail_permille,
        delay_ms,
    }
}

/// A webhook receiver recording the JSON bodies it gets.
pub async fn receiver() -> (String, Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let got: Arc<std::sync::Mutex<Vec<serde_json::Value>>> = Arc::default();
    let g = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let g = g.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let g = g.clone();
                        async move {
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            if let Ok(v) = serde_json::from_slice(&body) {
                                g.lock().unwrap().push(v);
                            }
                            Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::new())))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (url, got)
}

/// Clients sending GETs as many users until stopped; counts answers that were not 200.
pub struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    errors: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn start(cp: &ControlPlane, clients: usize) -> Load {
        let base = format!("http://{}", cp.gateway().local_addrs()[0]);
        let (stop, sent, errors) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let tasks = (0..clients)
            .map(|c| {
                let (base, stop, sent, errors) =
                    (base.clone(), stop.clone(), sent.clone(), errors.clone());
                tokio::spawn(async move {
                    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                        .build_http::<Full<Bytes>>();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let req = hyper::Request::get(format!("{base}/orders/{i}"))
                            .header("x-user", format!("u{c}-{}", i % 97))
                            .body(Full::new(Bytes::new()))
                            .unwrap();
                        match client.request(req).await {
                            Ok(r) => {
                                if r.status() != 200 {
                                    errors.fetch_add(1, Ordering::Relaxed);
                                }
                                let _ = r.into_body().collect().await;
                            }
                            Err(_) => {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Load {
            stop,
            sent,
            errors,
            tasks,
        }
    }

    pub async fn stop(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        (
            self.sent.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }
}

/// The control plane of `dir/ficus.toml` on a SQLite store in `dir`, with its gateway.
pub async fn boot(dir: &Path) -> Arc<ControlPlane> {
    let store = Store::open(&format!("sqlite://{}", dir.join("state.db").display()))
        .await
        .unwrap();
    let boot = ControlPlane::boot(&dir.join("ficus.toml"), store)
        .await
        .unwrap();
    let gw = Gateway::start(boot.effective().clone()).await.unwrap();
    ControlPlane::new(boot, Arc::new(gw))
}
