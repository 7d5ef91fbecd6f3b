//! Webhooks with real receivers on 127.0.0.1: an `https://` receiver trusted through its
//! `ca_file` gets every kind of event the control plane records (the boot's apply, a set, a
//! rollback, a cache purge, an apply), filtered by kind prefix; an `https://` receiver whose
//! certificate nobody vouches for gets nothing and holds nothing up, and both show in
//! `/metrics`; a receiver that accepts and never answers delays only its own events; a
//! `ca_file` that holds no certificate is refused at apply, naming the webhook; a receiver
//! with a `secret_file` gets each body signed (HMAC-SHA256, checked here by hand).

use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ficus_config::{Stage, Weight};
use ficus_control::{ControlError, ControlPlane};
use ficus_proxy::Gateway;
use ficus_store::Store;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// A POST a receiver got.
#[derive(Debug, Clone)]
struct Post {
    /// The `x-ficus-event` header.
    header: String,
    /// The body's `kind`.
    kind: String,
    /// The `x-ficus-signature-256` header.
    signature: Option<String>,
    body: Bytes,
}

/// Every POST a receiver got, in order.
type Got = Arc<Mutex<Vec<Post>>>;

/// A webhook receiver over TLS with a certificate for `localhost` signed by nobody: its PEM
/// is returned, for a `ca_file` that trusts it.
async fn tls_receiver() -> (u16, String, Got) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let pem = cert.cert.pem();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let (port, got) = receiver(Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls)))).await;
    (port, pem, got)
}

/// A webhook receiver on a free port, over TLS when given an acceptor, recording what it gets.
async fn receiver(tls: Option<tokio_rustls::TlsAcceptor>) -> (u16, Got) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let got: Got = Arc::default();
    let g = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let (g, tls) = (g.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    // A client that does not trust the certificate fails the handshake.
                    Some(acceptor) => {
                        if let Ok(s) = acceptor.accept(s).await {
                            serve_posts(s, g).await;
                        }
                    }
                    None => serve_posts(s, g).await,
                }
            });
        }
    });
    (port, got)
}

/// Answers 200 to each POST on one connection, recording its event header and kind.
async fn serve_posts<S>(s: S, got: Got)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let got = got.clone();
        async move {
            let text = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let header = text("x-ficus-event").unwrap_or_default();
            let signature = text("x-ficus-signature-256");
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let kind = v["kind"].as_str().unwrap_or("").to_string();
            got.lock().unwrap().push(Post {
                header,
                kind,
                signature,
                body,
            });
            Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::new())))
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(s), svc)
        .await;
}

/// A receiver that accepts connections and holds them without reading: every POST to it
/// times out. Its URL, and the connections it holds.
async fn hung_receiver() -> (String, Arc<Mutex<Vec<tokio::net::TcpStream>>>) {
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", hung.local_addr().unwrap());
    let held: Arc<Mutex<Vec<tokio::net::TcpStream>>> = Arc::default();
    let h = held.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = hung.accept().await {
            h.lock().unwrap().push(s);
        }
    });
    (url, held)
}

fn config(hooks: &str) -> String {
    format!(
        r#"
[[listener]]
bind = "127.0.0.1:0"
[upstream.legacy]
url = "http://127.0.0.1:9"
[upstream.modern]
url = "http://127.0.0.1:9"
[[route]]
name = "orders"
path_prefix = "/orders"
legacy = "legacy"
modern = "modern"
[route.cache]
[default]
legacy = "legacy"
[access_log]
enabled = false
{hooks}
"#
    )
}

async fn boot(dir: &Path, text: &str) -> Result<Arc<ControlPlane>, ControlError> {
    std::fs::write(dir.join("ficus.toml"), text).unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.join("state.db").display()))
        .await
        .unwrap();
    let boot = ControlPlane::boot(&dir.join("ficus.toml"), store).await?;
    let gw = Gateway::start(boot.effective().clone()).await.unwrap();
    Ok(ControlPlane::new(boot, Arc::new(gw)))
}

/// Waits until `got` holds `n` POSTs (or 10 s pass) and returns them.
async fn wait_for(got: &Got, n: usize) -> Vec<Post> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.lock().unwrap().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    got.lock().unwrap().clone()
}

#[tokio::test]
async fn an_https_receiver_gets_every_kind_of_recorded_event_it_asks_for() {
    let dir = tempfile::tempdir().unwrap();
    let (port, pem, got) = tls_receiver().await;
    std::fs::write(dir.path().join("hooks-ca.pem"), pem).unwrap();
    // A second receiver with the same certificate but no ca_file: nobody vouches for it.
    let (untrusted_port, _, untrusted) = tls_receiver().await;
    let hooks = format!(
        r#"
[[webhook]]
url = "https://localhost:{port}/hooks/ficus"
ca_file = "hooks-ca.pem"
events = ["config.", "route.", "cache."]
[[webhook]]
url = "https://localhost:{untrusted_port}/hook"
events = ["config.", "route."]
timeout = "500ms"
retries = 0
"#
    );
    let text = config(&hooks);
    let cp = boot(dir.path(), &text).await.unwrap();
    // The boot recorded the first version before the webhooks started: it waited for them.
    cp.start_webhooks();
    cp.set_route(
        "orders",
        Some(Stage::Canary),
        Some(Weight::from_basis_points(1000).unwrap()),
        "alice",
        "10 % to modern",
    )
    .await
    .unwrap();
    cp.rollback(Some("orders"), "alice", "errors on modern")
        .await
        .unwrap();
    cp.purge_cache("orders", None, "alice", "stale prices")
        .await
        .unwrap();
    let edited = text.replace("[route.cache]", "[route.cache]\nmax_bytes = \"1MiB\"");
    cp.apply_text(&edited, "alice", "smaller cache", None)
        .await
        .unwrap();

    let got = wait_for(&got, 5).await;
    let kinds: Vec<&str> = got.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "config.applied",
            "route.set",
            "route.rollback",
            "cache.purged",
            "config.applied"
        ],
        "{got:?}"
    );
    assert!(got.iter().all(|p| p.header == p.kind), "{got:?}");
    assert!(
        got.iter().all(|p| p.signature.is_none()),
        "no secret_file: unsigned"
    );
    // The untrusted receiver never got past the handshake: each of its four events failed,
    // in a lane of its own.
    let deadline = Instant::now() + Duration::from_secs(10);
    while cp.webhooks().counts() != (5, 4, 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(untrusted.lock().unwrap().is_empty());
    let (delivered, failed, dropped) = cp.webhooks().counts();
    assert_eq!(
        (delivered, failed, dropped),
        (5, 4, 0),
        "{:?}",
        cp.webhooks().counts()
    );
}

#[tokio::test]
async fn a_ca_file_without_a_certificate_is_refused_at_apply_and_at_boot() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.pem"), "not a certificate\n").unwrap();
    let good = config("");
    let cp = boot(dir.path(), &good).await.unwrap();
    let broken =
        config("[[webhook]]\nurl = \"https://hooks.example.com/ficus\"\nca_file = \"empty.pem\"\n");
    let err = cp
        .apply_text(&broken, "alice", "add a webhook", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        // The receiver by its host: a webhook URL's path is usually its secret.
        err.contains("webhook #1 (https://hooks.example.com/***)")
            && err.contains("empty.pem: no PEM certificate in the file"),
        "{err}"
    );
    // Nothing changed: the running version is still the first.
    assert_eq!(cp.snapshot().version, Some(1));
    drop(cp);

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    let err = boot(dir.path(), &broken).await.err().unwrap().to_string();
    assert!(err.contains("no PEM certificate in the file"), "{err}");
}

#[tokio::test]
async fn a_receiver_that_never_answers_delays_only_its_own_events() {
    let (hung_url, held) = hung_receiver().await;
    let (live_port, live) = receiver(None).await;
    let live_url = format!("http://127.0.0.1:{live_port}/hook");
    let dir = tempfile::tempdir().unwrap();
    // The hung receiver comes first: one lane would hold the live one's events 5 s each.
    let hooks = format!(
        "[[webhook]]\nurl = \"{hung_url}\"\nevents = [\"route.\"]\ntimeout = \"5s\"\nretries = 2\n\
         [[webhook]]\nurl = \"{live_url}\"\nevents = [\"route.\"]\n"
    );
    let cp = boot(dir.path(), &config(&hooks)).await.unwrap();
    cp.start_webhooks();
    let started = Instant::now();
    changes(&cp, 3).await;
    let got = wait_for(&live, 3).await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the live receiver waited for the hung one: {:?}",
        started.elapsed()
    );
    // The hung receiver has its first POST open, and nothing is counted for it yet.
    let deadline = Instant::now() + Duration::from_secs(2);
    while held.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!held.lock().unwrap().is_empty());
    while cp.webhooks().counts() != (3, 0, 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cp.webhooks().counts(), (3, 0, 0));
}

/// HMAC-SHA256 written out from RFC 2104, to check ficus's signature independently.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    format!("sha256={}", hex::encode(outer))
}

#[tokio::test]
async fn a_receiver_with_a_secret_file_gets_every_body_signed() {
    let (port, got) = receiver(None).await;
    let dir = tempfile::tempdir().unwrap();
    let key = "9f2c4e1a7b3d5f608e1c2a4b6d8f0a1c";
    std::fs::write(dir.path().join("hook.key"), format!("{key}\n")).unwrap();
    let hooks = format!(
        "[[webhook]]\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret_file = \"hook.key\"\nevents = [\"config.\", \"route.\"]\n"
    );
    let cp = boot(dir.path(), &config(&hooks)).await.unwrap();
    cp.start_webhooks();
    changes(&cp, 1).await;
    let got = wait_for(&got, 2).await;
    assert_eq!(got.len(), 2, "{got:?}");
    for p in &got {
        // The key without its line end, over the exact bytes sent.
        assert_eq!(
            p.signature.as_deref(),
            Some(hmac_sha256(key.as_bytes(), &p.body).as_str()),
            "{p:?}"
        );
    }

    // A key shorter than 16 bytes is refused at apply, with what to do.
    std::fs::write(dir.path().join("short.key"), "abc\n").unwrap();
    let short = config(&hooks.replace("hook.key", "short.key"));
    let err = cp
        .apply_text(&short, "alice", "short key", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("short.key: 3 bytes, fewer than 16") && err.contains("openssl rand"),
        "{err}"
    );
}

/// Makes `n` changes to the route, each a `route.set` event (weights 0.1 %, 0.2 %, ...).
async fn changes(cp: &ControlPlane, n: u16) {
    for i in 1..=n {
        cp.set_route(
            "orders",
            Some(Stage::Canary),
            Some(Weight::from_basis_points(10 * i).unwrap()),
            "alice",
            "step",
        )
        .await
        .unwrap();
    }
}

/// Waits until the counts are `want` (or 20 s pass) and returns them.
async fn counts_reach(cp: &ControlPlane, want: (u64, u64, u64)) -> (u64, u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while cp.webhooks().counts() != want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cp.webhooks().counts()
}

#[tokio::test]
async fn the_store_holds_events_until_delivery_and_each_lane_holds_256() {
    assert_eq!(ficus_control::webhook::QUEUE, 256);
    // The store is the queue: the boot's event and 260 changes recorded before delivery
    // starts are all delivered once it does, in order, none dropped.
    let (port, got) = receiver(None).await;
    let dir = tempfile::tempdir().unwrap();
    let hooks = format!(
        "[[webhook]]\nurl = \"http://127.0.0.1:{port}/hook\"\nevents = [\"config.\", \"route.\"]\n"
    );
    let cp = boot(dir.path(), &config(&hooks)).await.unwrap();
    changes(&cp, 260).await;
    assert_eq!(cp.webhooks().counts(), (0, 0, 0));
    cp.start_webhooks();
    assert_eq!(counts_reach(&cp, (261, 0, 0)).await, (261, 0, 0));
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 261);
    assert_eq!(got[0].kind, "config.applied");
    assert!(got[1..].iter().all(|p| p.kind == "route.set"));
    let ids: Vec<i64> = got
        .iter()
        .map(|p| {
            serde_json::from_slice::<serde_json::Value>(&p.body).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order, each once");

    // A receiver's own lane: one that never answers holds up only itself (its first event
    // in flight for a minute) while a live receiver gets all 300, and the stored cursor
    // waits for the slowest receiver.
    let (hung_url, _held) = hung_receiver().await;
    let (live_port, live) = receiver(None).await;
    let dir = tempfile::tempdir().unwrap();
    let hooks = format!(
        "[[webhook]]\nurl = \"{hung_url}\"\nevents = [\"route.\"]\ntimeout = \"60s\"\nretries = 0\n\
         [[webhook]]\nurl = \"http://127.0.0.1:{live_port}/hook\"\nevents = [\"route.\"]\n"
    );
    let cp = boot(dir.path(), &config(&hooks)).await.unwrap();
    cp.start_webhooks();
    changes(&cp, 300).await;
    assert_eq!(counts_reach(&cp, (300, 0, 0)).await, (300, 0, 0));
    assert_eq!(live.lock().unwrap().len(), 300);
    let cursor = cp.store().webhook_cursor().await.unwrap();
    assert!(
        cursor < 10,
        "cursor {cursor} ran ahead of the hung receiver"
    );

    // A receiver that fails (nothing listens) and is far behind: after its first failure
    // it tries only the newest 256 events (ids 46..=301 of 301) and drops the 43 older.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let hooks = format!(
        "[[webhook]]\nurl = \"http://127.0.0.1:{dead}/hook\"\nevents = [\"route.\"]\nretries = 0\n"
    );
    let cp = boot(dir.path(), &config(&hooks)).await.unwrap();
    changes(&cp, 300).await;
    cp.start_webhooks();
    assert_eq!(counts_reach(&cp, (0, 257, 43)).await, (0, 257, 43));
}
