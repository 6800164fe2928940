//! The pooled HTTP(S) client: one per set of trusted roots, shared by every endpoint that
//! trusts the same ones. `http://` goes through [`crate::direct`]'s connections, driven by
//! the task that sends; `https://` through hyper-util's pool (h2 by ALPN). Both keep
//! connections per authority.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;

use crate::direct;
pub use crate::direct::DEFAULT_READ_BUFFER_MAX;

/// How long an idle pooled connection is kept.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per host.
pub const DEFAULT_POOL_MAX_IDLE_PER_HOST: usize = 256;
/// TCP connect timeout (a dead host fails fast; the caller's timeout bounds the rest).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// hyper-util's client: requests carry a whole body.
pub type PooledClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The client: cheap to clone (clones share the connections).
#[derive(Clone)]
pub struct HttpClient {
    /// https (and any request not made by [`crate::send`]).
    pub(crate) pooled: PooledClient,
    /// Plain http.
    pub(crate) direct: Arc<direct::Pool>,
}

impl HttpClient {
    /// hyper-util's client, for requests other than [`crate::post`]'s (the status command's
    /// GETs).
    pub fn pooled(&self) -> &PooledClient {
        &self.pooled
    }
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

/// What a client is built with. `Default` is what the proxy uses for its upstreams.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Certificates trusted besides the webpki roots (a private CA).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// TCP connect timeout, `None` for the operating system's.
    pub connect_timeout: Option<Duration>,
    /// How long an idle connection stays in the pool.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per host.
    pub pool_max_idle_per_host: usize,
    /// Offer h2 by ALPN on https (plain http is always HTTP/1.1).
    pub http2: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            extra_roots: Vec::new(),
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            pool_max_idle_per_host: DEFAULT_POOL_MAX_IDLE_PER_HOST,
            http2: true,
        }
    }
}

/// Builds a client: keep-alive pool, HTTP/1.1 (and h2 by ALPN when asked), rustls (ring)
/// trusting the webpki roots plus `options.extra_roots`, TCP_NODELAY.
pub fn build(options: &ClientOptions) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(options.connect_timeout);
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in &options.extra_roots {
        // Unusable certificates are rejected by `load_ca_file` before they get here.
        let _ = roots.add(cert.clone());
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("the ring provider supports the default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1();
    let https = if options.http2 {
        builder.enable_http2().wrap_connector(http)
    } else {
        builder.wrap_connector(http)
    };
    let pooled = Client::builder(TokioExecutor::new())
        .http1_max_buf_size(DEFAULT_READ_BUFFER_MAX)
        .pool_idle_timeout(options.pool_idle_timeout)
        .pool_max_idle_per_host(options.pool_max_idle_per_host)
        .build(https);
    let direct = direct::Pool::new(
        options.pool_idle_timeout,
        options.pool_max_idle_per_host,
        options.connect_timeout,
    );
    HttpClient {
        pooled,
        direct: Arc::new(direct),
    }
}

/// Reads the CA certificates of a PEM file; at least one is required.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject as _;
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the file", path.display()));
    }
    let mut check = rustls::RootCertStore::empty();
    let (_, unusable) = check.add_parsable_certificates(certs.iter().cloned());
    if unusable > 0 {
        return Err(format!(
            "{}: {unusable} certificate(s) cannot be used as a trust anchor",
            path.display()
        ));
    }
    Ok(certs)
}
