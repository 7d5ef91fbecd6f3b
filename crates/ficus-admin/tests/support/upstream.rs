//! A real upstream HTTP server on 127.0.0.1 for the admin tests: it answers its name (as the
//! body), or 500 for paths ending in `/boom`.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// An upstream answering its name, or 500 for paths ending in `/boom` (an error that is
/// not a fallback status, so it reaches the client and the error charts).
pub async fn upstream(name: &'static str) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| async move {
                        let mut resp = hyper::Response::new(Full::new(Bytes::from(name)));
                        if req.uri().path().ends_with("/boom") {
                            *resp.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
                        }
                        Ok::<_, Infallible>(resp)
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}
