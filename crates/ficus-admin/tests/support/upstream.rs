//! A real upstream HTTP server on 127.0.0.1 for the admin tests: it answers its name (as the
//! body), or 500 for paths ending in `/boom`; or, for the shadow comparisons, a JSON
//! document.

// Each test binary uses the helpers it needs.
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// An upstream answering its name, or 500 for paths ending in `/boom` (an error that is
/// not a fallback status, so it reaches the client and the error charts).
pub async fn upstream(name: &'static str) -> String {
    serve(move |path: &str| {
        let mut resp = hyper::Response::new(Full::new(Bytes::from(name)));
        if path.ends_with("/boom") {
            *resp.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        }
        resp
    })
    .await
}

/// An upstream answering `body` as `application/json` to every request, with `{n}` replaced
/// by the number of the request (1, 2, ...): a legacy and a modern one with documents that
/// differ in one field give the mirror something to find, and `{n}` a field that differs
/// between two answers of the same side (noise).
pub async fn json_upstream(body: &'static str) -> String {
    let count = Arc::new(AtomicU64::new(0));
    serve(move |_: &str| {
        let n = count.fetch_add(1, Ordering::Relaxed) + 1;
        let body = body.replace("{n}", &n.to_string());
        let mut resp = hyper::Response::new(Full::new(Bytes::from(body)));
        resp.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        resp
    })
    .await
}

/// Serves HTTP/1.1 on a fresh 127.0.0.1 port, answering with `answer(path)`.
async fn serve<F>(answer: F) -> String
where
    F: Fn(&str) -> hyper::Response<Full<Bytes>> + Clone + Send + Sync + 'static,
{
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let resp = answer(req.uri().path());
                    async move { Ok::<_, Infallible>(resp) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}
