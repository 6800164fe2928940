//! Upstream nodes: how one is reached ([`Upstream::send`]) and the published view of all of
//! them ([`Snapshot`]) that the request path reads without a lock.
//!
//! All upstreams share one hyper-util client, whose pool keeps connections alive per
//! scheme and authority; HTTPS goes through rustls with the webpki roots, HTTP/1.1 or h2 by
//! ALPN. An upstream is known by its name everywhere: its URL and header values are never
//! logged or shown.

pub mod breaker;
pub mod health;
pub mod limit;
pub mod monitor;
pub mod probe;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;

use crate::config::{
    default_name, load_ca_file, parse_upstream_url, Config, ConfigError, UpstreamConfig,
};
use crate::error::{UpstreamError, UpstreamErrorKind};
use breaker::{Breaker, BreakerState};
use health::Status;
use limit::Limits;
use rustls::pki_types::CertificateDer;

/// How long an idle pooled connection is kept.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per upstream.
pub const DEFAULT_POOL_MAX_IDLE_PER_HOST: usize = 256;
/// TCP connect timeout (a dead host fails fast; the attempt timeout bounds the rest).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The shared HTTP(S) client.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Builds a client: keep-alive pool, HTTP/1.1 and h2 (by ALPN), rustls trusting the webpki
/// roots plus `extra_roots`.
pub fn http_client(extra_roots: &[CertificateDer<'static>]) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(DEFAULT_CONNECT_TIMEOUT));
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in extra_roots {
        // Unusable certificates were rejected when the configuration was validated.
        let _ = roots.add(cert.clone());
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("the ring provider supports the default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(DEFAULT_POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(DEFAULT_POOL_MAX_IDLE_PER_HOST)
        .build(https)
}

/// One configured upstream node.
#[derive(Debug)]
pub struct Upstream {
    /// Display name (configured, or `host:port`).
    pub name: String,
    /// Passive circuit breaker.
    pub breaker: Breaker,
    /// Concurrency and rate limits.
    pub limits: Limits,
    /// The configuration it was built from: a reload keeps this upstream (and its health
    /// history) when the new entry is identical.
    spec: UpstreamConfig,
    /// Full endpoint URI (secret: never printed).
    uri: Uri,
    /// Extra headers such as `Authorization` (secret: never printed).
    headers: HeaderMap,
    /// Shared pooled client.
    client: HttpClient,
}

impl Upstream {
    /// Builds upstream `rank` from its configuration.
    pub fn new(
        rank: usize,
        config: &UpstreamConfig,
        client: HttpClient,
        settings: &Config,
    ) -> Result<Self, ConfigError> {
        let mut url = parse_upstream_url(&config.url)
            .map_err(|why| ConfigError::from(format!("upstreams[{}].url: {why}", rank - 1)))?;
        // User info is not sent by hyper, and would be printed by its connection-pool logs:
        // cut it from the URI and send it as HTTP Basic credentials instead.
        let basic = basic_credentials(&url);
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let uri: Uri = url
            .as_str()
            .parse()
            .map_err(|e| ConfigError::from(format!("upstreams[{}].url: {e}", rank - 1)))?;
        let mut headers = HeaderMap::new();
        for (k, v) in &config.headers {
            let name = HeaderName::try_from(k.as_str()).map_err(|_| {
                ConfigError::from(format!("upstreams[{}].headers: bad name {k:?}", rank - 1))
            })?;
            let mut value = HeaderValue::try_from(v.as_str()).map_err(|_| {
                ConfigError::from(format!("upstreams[{}].headers.{k}: bad value", rank - 1))
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if let Some(basic) = basic {
            if !headers.contains_key(http::header::AUTHORIZATION) {
                let mut value = HeaderValue::try_from(basic).map_err(|_| {
                    ConfigError::from(format!("upstreams[{}].url: bad user info", rank - 1))
                })?;
                value.set_sensitive(true);
                headers.insert(http::header::AUTHORIZATION, value);
            }
        }
        Ok(Self {
            name: config.name.clone().unwrap_or_else(|| default_name(&url)),
            breaker: Breaker::new(
                settings.breaker.failure_threshold,
                settings.breaker.cooldown,
                tokio::time::Instant::now(),
            ),
            limits: Limits::new(
                config.max_concurrency,
                config.max_rps,
                settings.proxy.queue_timeout,
            ),
            spec: config.clone(),
            uri,
            headers,
            client,
        })
    }

    /// Builds every upstream of a configuration, in rank order, on one shared client (an
    /// upstream with its own `ca_file` gets a client of its own).
    pub fn all(config: &Config) -> Result<Vec<Arc<Upstream>>, ConfigError> {
        Self::rebuild(config, &[])
    }

    /// As [`Upstream::all`], reusing each of `current` whose configuration is unchanged
    /// (so its connections, breaker and health history carry over a reload).
    pub fn rebuild(
        config: &Config,
        current: &[Arc<Upstream>],
    ) -> Result<Vec<Arc<Upstream>>, ConfigError> {
        let shared = current
            .iter()
            .find(|u| u.spec.ca_file.is_none())
            .map_or_else(|| http_client(&[]), |u| u.client.clone());
        config
            .upstreams
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                if let Some(kept) = current.iter().find(|u| u.spec == *spec) {
                    kept.breaker
                        .configure(config.breaker.failure_threshold, config.breaker.cooldown);
                    return Ok(Arc::clone(kept));
                }
                let client = match &spec.ca_file {
                    None => shared.clone(),
                    Some(path) => http_client(&load_ca_file(path).map_err(|why| {
                        ConfigError::from(format!("upstreams[{i}].ca_file: {why}"))
                    })?),
                };
                Upstream::new(i + 1, spec, client, config).map(Arc::new)
            })
            .collect()
    }

    /// POSTs a JSON body and returns the answer body. Fails on connect errors, on a status
    /// other than 200, on an answer larger than `limit`, and when the whole exchange takes
    /// longer than `timeout`.
    pub async fn send(
        &self,
        body: Bytes,
        timeout: Duration,
        limit: usize,
    ) -> Result<Bytes, UpstreamError> {
        let err = |kind| UpstreamError::new(self.name.clone(), kind);
        match tokio::time::timeout(timeout, self.exchange(body, limit)).await {
            Ok(result) => result.map_err(err),
            Err(_) => Err(err(UpstreamErrorKind::Timeout(timeout))),
        }
    }

    async fn exchange(&self, body: Bytes, limit: usize) -> Result<Bytes, UpstreamErrorKind> {
        let mut request = Request::post(self.uri.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(body))
            .map_err(|e| UpstreamErrorKind::Connect(e.to_string()))?;
        request
            .headers_mut()
            .extend(self.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| UpstreamErrorKind::Connect(describe_client_error(&e)))?;
        let status = response.status();
        if status != http::StatusCode::OK {
            return Err(UpstreamErrorKind::Status(status.as_u16()));
        }
        let declared = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(UpstreamErrorKind::TooLarge(limit));
        }
        match Limited::new(response.into_body(), limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                Err(UpstreamErrorKind::TooLarge(limit))
            }
            Err(e) => Err(UpstreamErrorKind::Connect(format!(
                "answer body broke off: {e}"
            ))),
        }
    }
}

/// `Basic <base64(user:password)>` for a URL with user info (percent-decoded), else `None`.
fn basic_credentials(url: &url::Url) -> Option<String> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let mut raw = percent_decode(url.username());
    raw.push(b':');
    raw.extend(percent_decode(url.password().unwrap_or("")));
    Some(format!("Basic {}", base64(&raw)))
}

fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Standard base64 with padding (RFC 4648).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The innermost cause of a client error, without any URL (hyper's errors carry none, and
/// we print only the cause chain's messages).
fn describe_client_error(e: &hyper_util::client::legacy::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    if e.is_connect() {
        format!("connect: {source}")
    } else {
        source.to_string()
    }
}

/// The state of every upstream at one moment, published by the monitor and read lock-free
/// by the request path and the admin endpoints.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The upstreams themselves, aligned with `upstreams` (index = rank - 1).
    #[serde(skip)]
    pub handles: Vec<Arc<Upstream>>,
    /// Highest head among healthy upstreams on the expected chain.
    pub best_head: Option<u64>,
    /// The chain id the proxy serves, once known.
    pub chain_id: Option<u64>,
    /// One entry per upstream, in rank order (index = rank - 1).
    pub upstreams: Vec<UpstreamState>,
}

/// One upstream's published state.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamState {
    /// Display name.
    pub name: String,
    /// Rank (1 = primary).
    pub rank: usize,
    /// Health status.
    pub status: Status,
    /// Last reported head.
    pub head: Option<u64>,
    /// Blocks behind the best head.
    pub lag: Option<u64>,
    /// Whether it lags by more than the allowed `max_lag`.
    pub lagging: bool,
    /// Latency EWMA in milliseconds.
    pub latency_ms: Option<f64>,
    /// Chain id the node reports.
    pub chain_id: Option<u64>,
    /// Whether that chain id differs from the proxy's: such an upstream is never used.
    pub wrong_chain: bool,
    /// Last failure (redacted: names and error kinds only).
    pub last_error: Option<String>,
    /// Circuit breaker state when published.
    pub breaker: BreakerState,
    /// Seconds since the status last changed.
    pub status_age_secs: f64,
    /// When the status last changed, as Unix seconds.
    pub since_unix: Option<u64>,
}

impl UpstreamState {
    /// An upstream not yet probed.
    pub fn unknown(name: &str, rank: usize) -> Self {
        Self {
            name: name.to_string(),
            rank,
            status: Status::Unknown,
            head: None,
            lag: None,
            lagging: false,
            latency_ms: None,
            chain_id: None,
            wrong_chain: false,
            last_error: None,
            breaker: BreakerState::Closed,
            status_age_secs: 0.0,
            since_unix: None,
        }
    }
}

impl Snapshot {
    /// The state before the first probe: every upstream unknown.
    pub fn initial(upstreams: &[Arc<Upstream>]) -> Self {
        Self {
            handles: upstreams.to_vec(),
            best_head: None,
            chain_id: None,
            upstreams: upstreams
                .iter()
                .enumerate()
                .map(|(i, u)| UpstreamState::unknown(&u.name, i + 1))
                .collect(),
        }
    }

    /// Whether any upstream is healthy and in sync (readiness).
    pub fn is_ready(&self) -> bool {
        self.upstreams
            .iter()
            .any(|u| u.status == Status::Healthy && !u.lagging && !u.wrong_chain)
    }
}

/// The shared, atomically replaced snapshot.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;
