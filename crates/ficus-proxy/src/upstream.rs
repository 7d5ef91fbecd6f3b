//! Upstream clients: one pooled keep-alive client per configured upstream (HTTP/1.1, or HTTP/2
//! when configured; `https://` through rustls), and how a request URI is rewritten for it.

use std::sync::Arc;

use ficus_config::{HostHeader, Upstream};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::body::RequestBody;

/// Why an upstream client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream \"{upstream}\": cannot read CA file {path}: {reason}")]
    CaFile {
        upstream: String,
        path: String,
        reason: String,
    },
    #[error("upstream \"{upstream}\": {reason}")]
    Tls { upstream: String, reason: String },
}

/// What to do with the Host header on the way to this upstream.
#[derive(Debug, Clone)]
pub enum HostRewrite {
    Preserve,
    Set(HeaderValue),
}

/// A pooled client for one upstream.
pub struct UpstreamClient {
    pub name: Arc<str>,
    /// The definition it was built from: a reload keeps the client (and its pool) when equal.
    pub config: Upstream,
    scheme: Scheme,
    authority: Authority,
    /// Path prefix without trailing slash, or empty.
    prefix: String,
    pub host: HostRewrite,
    client: Client<HttpsConnector<HttpConnector>, RequestBody>,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("name", &self.name)
            .field("url", &self.config.url)
            .finish()
    }
}

impl UpstreamClient {
    pub fn new(cfg: &Upstream) -> Result<UpstreamClient, UpstreamError> {
        let scheme = cfg.url.scheme().cloned().unwrap_or(Scheme::HTTP);
        let authority = cfg
            .url
            .authority()
            .cloned()
            .expect("validated upstream URLs have an authority");
        let prefix = cfg.path_prefix().to_string();
        let host = match &cfg.host {
            HostHeader::Preserve => HostRewrite::Preserve,
            HostHeader::Upstream => HostRewrite::Set(
                HeaderValue::from_str(authority.as_str()).expect("an authority is a header value"),
            ),
            HostHeader::Fixed(h) => {
                HostRewrite::Set(HeaderValue::from_str(h).map_err(|_| UpstreamError::Tls {
                    upstream: cfg.name.clone(),
                    reason: format!("host {h:?} is not a valid header value"),
                })?)
            }
        };

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(cfg.connect_timeout));
        http.set_keepalive(Some(std::time::Duration::from_secs(60)));

        let tls = tls_config(cfg)?;
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        let connector = if cfg.http2 {
            builder.enable_all_versions().wrap_connector(http)
        } else {
            builder.enable_http1().wrap_connector(http)
        };

        let mut b = Client::builder(TokioExecutor::new());
        b.pool_max_idle_per_host(cfg.max_idle_connections)
            .pool_idle_timeout(cfg.pool_idle_timeout)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .set_host(true);
        if cfg.http2 && scheme == Scheme::HTTP {
            // Plain-text HTTP/2 needs prior knowledge; over TLS it is negotiated by ALPN.
            b.http2_only(true);
        }
        let client = b.build(connector);
        Ok(UpstreamClient {
            name: Arc::from(cfg.name.as_str()),
            config: cfg.clone(),
            scheme,
            authority,
            prefix,
            host,
            client,
        })
    }

    /// The absolute URI for a request path (and query) on this upstream.
    pub fn uri_for(&self, pq: Option<&PathAndQuery>) -> Uri {
        let pq = match (self.prefix.is_empty(), pq) {
            (true, Some(pq)) => pq.clone(),
            (true, None) => PathAndQuery::from_static("/"),
            (false, pq) => {
                let rest = pq.map_or("/", |p| p.as_str());
                PathAndQuery::try_from(format!("{}{}", self.prefix, rest))
                    .unwrap_or_else(|_| PathAndQuery::from_static("/"))
            }
        };
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(pq);
        Uri::from_parts(parts).expect("scheme, authority and path make a URI")
    }

    pub fn request_timeout(&self) -> std::time::Duration {
        self.config.request_timeout
    }

    pub fn client(&self) -> &Client<HttpsConnector<HttpConnector>, RequestBody> {
        &self.client
    }
}

fn tls_config(cfg: &Upstream) -> Result<rustls::ClientConfig, UpstreamError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &cfg.ca_file {
        let ca_err = |reason: String| UpstreamError::CaFile {
            upstream: cfg.name.clone(),
            path: path.display().to_string(),
            reason,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| ca_err(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| ca_err(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_err("no PEM certificate in the file".into()));
        }
        for c in certs {
            roots.add(c).map_err(|e| ca_err(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // ALPN is set by the connector builder from the enabled HTTP versions.
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| UpstreamError::Tls {
            upstream: cfg.name.clone(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tls)
}
