//! Configuration: the TOML file, `NODEWATCH__SECTION__KEY` environment overrides and the
//! command line, merged in that order and validated once at start.
//!
//! Every default is a named `DEFAULT_*` constant; `config/nodewatch.toml` shows each key at its
//! default and a test keeps the two in step. Validation never panics: it returns a
//! [`ConfigError`] whose one-line message names the offending key and value.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

/// Where the proxy listens for JSON-RPC clients.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8545";
/// Where `/metrics`, `/healthz`, `/readyz` and `/status` are served.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9545";
/// How often every upstream is probed with `eth_blockNumber`.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// How long one probe may take before it counts as a failure.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Consecutive failed observations that take a healthy upstream out of rotation.
pub const DEFAULT_FAIL_THRESHOLD: u32 = 2;
/// Consecutive successful probes that bring an unhealthy upstream back.
pub const DEFAULT_RECOVER_THRESHOLD: u32 = 2;
/// Blocks an upstream may trail the best head and still count as in sync.
pub const DEFAULT_MAX_LAG: u64 = 5;
/// Upper bound on one client request, all failover attempts included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound on one attempt against one upstream, so a hung node leaves time to fail over.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest client request body accepted (HTTP 413 above it).
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Largest upstream answer read; larger answers count as a failed attempt.
pub const DEFAULT_RESPONSE_LIMIT: usize = 256 * 1024 * 1024;
/// Most items one client batch may hold.
pub const DEFAULT_MAX_BATCH: usize = 1000;
/// How long in-flight requests may run on after SIGTERM/SIGINT.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Time a client has to send its request headers (slow clients cannot hold the proxy).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Most client connections served at once; further ones wait in the listen backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Share of recent requests that may be retried on another upstream (tower's retry budget).
pub const DEFAULT_RETRY_RATIO: f32 = 0.2;
/// Retries per second always allowed, whatever the traffic.
pub const DEFAULT_RETRY_MIN_PER_SECOND: u32 = 10;
/// Window over which the retry budget counts requests.
pub const DEFAULT_RETRY_WINDOW: Duration = Duration::from_secs(10);
/// A filter not polled for this long is forgotten ("filter not found"), as nodes do.
pub const DEFAULT_FILTER_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Most filters held at once.
pub const DEFAULT_MAX_FILTERS: usize = 10_000;
/// Most upstreams one proxy takes.
pub const MAX_UPSTREAMS: usize = 64;

/// Log line format on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The whole, validated configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Client (JSON-RPC) listener address.
    pub listen: SocketAddr,
    /// Admin listener address.
    pub admin_listen: SocketAddr,
    /// Log format.
    pub log_format: LogFormat,
    /// Expected chain id; when unset, the chain most upstreams report (ties: best rank).
    pub chain_id: Option<u64>,
    /// Probe timing.
    pub probe: ProbeConfig,
    /// Health thresholds.
    pub health: HealthConfig,
    /// Request-path limits and timeouts.
    pub proxy: ProxyConfig,
    /// Circuit breaker of each upstream.
    pub breaker: BreakerConfig,
    /// Retry budget.
    pub retry: RetryConfig,
    /// Which methods clients may call.
    pub methods: MethodsConfig,
    /// Filters (eth_newFilter & co.) kept by nodewatch.
    pub filters: FiltersConfig,
    /// Whether `POST /reload` on the admin listener re-reads the configuration (SIGHUP always
    /// does).
    pub admin_reload: bool,
    /// Upstreams, in rank order: the first is rank 1, the primary.
    pub upstreams: Vec<UpstreamConfig>,
}

/// Active health checking.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeConfig {
    /// Time between two probe rounds.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Time one probe may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

/// Thresholds of the health state machine.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Consecutive failures before an upstream is marked unhealthy.
    pub fail_threshold: u32,
    /// Consecutive successes before an unhealthy upstream is marked healthy.
    pub recover_threshold: u32,
    /// Blocks behind the best head before an upstream counts as lagging.
    pub max_lag: u64,
}

/// Request-path settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Bound on a whole client request including failover.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Bound on one attempt against one upstream.
    #[serde(with = "humantime_serde")]
    pub attempt_timeout: Duration,
    /// Largest client body in bytes.
    pub body_limit: usize,
    /// Largest upstream answer in bytes.
    pub response_limit: usize,
    /// Most items in one batch.
    pub max_batch: usize,
    /// Time for in-flight requests after a shutdown signal.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Time a client has to send its headers.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Most client connections at once.
    pub max_connections: usize,
    /// Longest wait for a slot at a concurrency- or rate-limited upstream.
    #[serde(with = "humantime_serde")]
    pub queue_timeout: Duration,
}

/// Circuit breaker thresholds (see `upstream::breaker`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Failed forwards in a row that open a breaker.
    pub failure_threshold: u32,
    /// How long an open breaker keeps its upstream out before one trial request.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: crate::upstream::breaker::DEFAULT_BREAKER_FAILURES,
            cooldown: crate::upstream::breaker::DEFAULT_BREAKER_COOLDOWN,
        }
    }
}

/// Retry budget: retries are at most `ratio` of recent requests plus `min_per_second`, so an
/// outage cannot multiply traffic onto the remaining nodes.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Retries allowed per request, on average (0.2 = one retry per five requests).
    pub ratio: f32,
    /// Retries per second always allowed.
    pub min_per_second: u32,
    /// Window the budget remembers.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            ratio: DEFAULT_RETRY_RATIO,
            min_per_second: DEFAULT_RETRY_MIN_PER_SECOND,
            window: DEFAULT_RETRY_WINDOW,
        }
    }
}

/// Allow and deny lists of method-name glob patterns.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MethodsConfig {
    /// When non-empty, only these methods are allowed.
    pub allow: Vec<String>,
    /// Denied methods; unset means `policy::DEFAULT_DENY`.
    pub deny: Option<Vec<String>>,
}

/// Filter bookkeeping.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct FiltersConfig {
    /// A filter not used for this long is dropped.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Most filters held at once.
    pub max: usize,
}

impl Default for FiltersConfig {
    fn default() -> Self {
        Self {
            idle_timeout: DEFAULT_FILTER_IDLE_TIMEOUT,
            max: DEFAULT_MAX_FILTERS,
        }
    }
}

/// One upstream node as configured.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Name used in logs, metrics and `/status`; defaults to `host:port` so secrets in the
    /// URL path or query never show.
    #[serde(default)]
    pub name: Option<String>,
    /// `http://` or `https://` URL of the node's JSON-RPC endpoint.
    pub url: String,
    /// Extra request headers (e.g. `Authorization`); their values are never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// PEM file of extra CA certificates to trust for this upstream's HTTPS (a private CA),
    /// on top of the webpki roots.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// Most requests in flight to this upstream at once (unset: no limit).
    #[serde(default)]
    pub max_concurrency: Option<usize>,
    /// Most requests per second to this upstream (unset: no limit); e.g. a paid plan's limit.
    #[serde(default)]
    pub max_rps: Option<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            admin_listen: DEFAULT_ADMIN_LISTEN.parse().expect("valid default address"),
            log_format: LogFormat::Text,
            chain_id: None,
            probe: ProbeConfig::default(),
            health: HealthConfig::default(),
            proxy: ProxyConfig::default(),
            breaker: BreakerConfig::default(),
            retry: RetryConfig::default(),
            methods: MethodsConfig::default(),
            filters: FiltersConfig::default(),
            admin_reload: false,
            upstreams: Vec::new(),
        }
    }
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            interval: DEFAULT_PROBE_INTERVAL,
            timeout: DEFAULT_PROBE_TIMEOUT,
        }
    }
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            fail_threshold: DEFAULT_FAIL_THRESHOLD,
            recover_threshold: DEFAULT_RECOVER_THRESHOLD,
            max_lag: DEFAULT_MAX_LAG,
        }
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            body_limit: DEFAULT_BODY_LIMIT,
            response_limit: DEFAULT_RESPONSE_LIMIT,
            max_batch: DEFAULT_MAX_BATCH,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            queue_timeout: crate::upstream::limit::DEFAULT_QUEUE_TIMEOUT,
        }
    }
}

/// A configuration that cannot be used; the message names the key and the value.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

impl From<String> for ConfigError {
    fn from(msg: String) -> Self {
        Self(msg)
    }
}

/// Values given on the command line; each `Some` wins over file and environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--upstream` URLs in rank order; non-empty replaces the file's list.
    pub upstreams: Vec<String>,
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--admin-listen`.
    pub admin_listen: Option<SocketAddr>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
}

impl Config {
    /// Loads the optional file, then `NODEWATCH__*` environment variables, then `overrides`,
    /// and validates the result.
    pub fn load(path: Option<&Path>, overrides: Overrides) -> Result<Self, ConfigError> {
        Self::load_with_env(path, overrides, std::env::vars())
    }

    /// As [`Config::load`], with the environment given explicitly (for tests).
    pub fn load_with_env(
        path: Option<&Path>,
        overrides: Overrides,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut builder = ::config::Config::builder();
        if let Some(path) = path {
            if !path.is_file() {
                return Err(ConfigError::new(format!(
                    "--config {}: no such file",
                    path.display()
                )));
            }
            builder =
                builder.add_source(::config::File::from(path).format(::config::FileFormat::Toml));
        }
        let env: ::config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("NODEWATCH__"))
            .collect();
        builder = builder.add_source(
            ::config::Environment::with_prefix("NODEWATCH")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env)),
        );
        let merged = builder
            .build()
            .map_err(|e| ConfigError::new(one_line(&e.to_string())))?;
        let mut config: Config = merged
            .try_deserialize()
            .map_err(|e| ConfigError::new(one_line(&e.to_string())))?;
        config.apply(overrides);
        config.validate()?;
        Ok(config)
    }

    fn apply(&mut self, o: Overrides) {
        if !o.upstreams.is_empty() {
            self.upstreams = o
                .upstreams
                .into_iter()
                .map(|url| UpstreamConfig {
                    name: None,
                    url,
                    headers: BTreeMap::new(),
                    ca_file: None,
                    max_concurrency: None,
                    max_rps: None,
                })
                .collect();
        }
        if let Some(listen) = o.listen {
            self.listen = listen;
        }
        if let Some(admin) = o.admin_listen {
            self.admin_listen = admin;
        }
        if let Some(format) = o.log_format {
            self.log_format = format;
        }
    }

    /// Checks every rule a running proxy relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.upstreams.is_empty() {
            return Err(ConfigError::new(
                "upstreams: at least one upstream is required (--upstream URL or [[upstreams]])",
            ));
        }
        let nonzero = [
            ("health.fail_threshold", self.health.fail_threshold as u64),
            (
                "health.recover_threshold",
                self.health.recover_threshold as u64,
            ),
            ("proxy.body_limit", self.proxy.body_limit as u64),
            ("proxy.response_limit", self.proxy.response_limit as u64),
            ("proxy.max_batch", self.proxy.max_batch as u64),
            ("proxy.max_connections", self.proxy.max_connections as u64),
            (
                "breaker.failure_threshold",
                self.breaker.failure_threshold as u64,
            ),
            ("filters.max", self.filters.max as u64),
        ];
        for (key, value) in nonzero {
            if value == 0 {
                return Err(ConfigError::new(format!(
                    "{key}: must be at least 1 (got 0)"
                )));
            }
        }
        let durations = [
            ("probe.interval", self.probe.interval),
            ("probe.timeout", self.probe.timeout),
            ("proxy.request_timeout", self.proxy.request_timeout),
            ("proxy.attempt_timeout", self.proxy.attempt_timeout),
            ("proxy.header_read_timeout", self.proxy.header_read_timeout),
            ("proxy.queue_timeout", self.proxy.queue_timeout),
            ("breaker.cooldown", self.breaker.cooldown),
            ("retry.window", self.retry.window),
            ("filters.idle_timeout", self.filters.idle_timeout),
        ];
        for (key, value) in durations {
            if value.is_zero() {
                return Err(ConfigError::new(format!(
                    "{key}: must be longer than 0s (got 0s)"
                )));
            }
        }
        if !(0.0..=100.0).contains(&self.retry.ratio) {
            return Err(ConfigError::new(format!(
                "retry.ratio: must be between 0 and 100 (got {})",
                self.retry.ratio
            )));
        }
        if self.upstreams.len() > MAX_UPSTREAMS {
            return Err(ConfigError::new(format!(
                "upstreams: at most {MAX_UPSTREAMS} upstreams (got {})",
                self.upstreams.len()
            )));
        }
        crate::policy::MethodPolicy::new(&self.methods.allow, self.methods.deny.as_deref())?;
        let mut names = std::collections::HashSet::new();
        for (i, upstream) in self.upstreams.iter().enumerate() {
            let key = format!("upstreams[{i}]");
            let url = parse_upstream_url(&upstream.url).map_err(|why| {
                ConfigError::new(format!(
                    "{key}.url: {why} (got {:?})",
                    redact_url(&upstream.url)
                ))
            })?;
            let name = upstream.name.clone().unwrap_or_else(|| default_name(&url));
            if name.is_empty() {
                return Err(ConfigError::new(format!("{key}.name: must not be empty")));
            }
            if !names.insert(name.clone()) {
                return Err(ConfigError::new(format!(
                    "{key}.name: duplicate upstream name {name:?} (give each upstream a distinct name)"
                )));
            }
            if upstream.max_concurrency == Some(0) || upstream.max_rps == Some(0) {
                return Err(ConfigError::new(format!(
                    "{key}: max_concurrency and max_rps must be at least 1 (got 0)"
                )));
            }
            if let Some(path) = &upstream.ca_file {
                load_ca_file(path)
                    .map_err(|why| ConfigError::new(format!("{key}.ca_file: {why}")))?;
            }
            for (header, value) in &upstream.headers {
                http::HeaderName::try_from(header.as_str()).map_err(|_| {
                    ConfigError::new(format!("{key}.headers: invalid header name {header:?}"))
                })?;
                http::HeaderValue::try_from(value.as_str()).map_err(|_| {
                    ConfigError::new(format!("{key}.headers.{header}: invalid header value"))
                })?;
            }
        }
        Ok(())
    }

    /// Each upstream's display name, in rank order.
    pub fn upstream_names(&self) -> Vec<String> {
        self.upstreams
            .iter()
            .map(|u| {
                u.name.clone().unwrap_or_else(|| {
                    parse_upstream_url(&u.url)
                        .map(|url| default_name(&url))
                        .unwrap_or_default()
                })
            })
            .collect()
    }
}

/// Reads the CA certificates of a PEM file; at least one is required.
pub fn load_ca_file(
    path: &Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject as _;
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the file", path.display()));
    }
    Ok(certs)
}

/// Parses and checks an upstream URL: http or https with a host.
pub fn parse_upstream_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(format!("scheme must be http or https, not {other:?}")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("URL has no host".into());
    }
    Ok(url)
}

/// `host:port` of a URL: the name an upstream gets when none is configured.
pub fn default_name(url: &Url) -> String {
    let host = url.host_str().unwrap_or("upstream");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// A loader error on one line, without the source excerpt a TOML parse error quotes (`3 |
/// url = "…/KEY"` and its `^^^` marker): the excerpt spans lines and can hold a secret.
/// String values quoted in the message (`invalid type: string "…"`) are cut too: a header
/// value or keyed URL written under the wrong key would otherwise be printed.
fn one_line(message: &str) -> String {
    let joined = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.contains(" | "))
        .collect::<Vec<_>>()
        .join(" ");
    let mut out = String::with_capacity(joined.len());
    let mut rest = joined.as_str();
    while let Some(start) = rest.find("string \"") {
        let (head, quoted) = rest.split_at(start + "string \"".len());
        out.push_str(head);
        out.push_str("…\"");
        // The value is Debug-escaped: skip to the first quote not preceded by a backslash.
        let mut escaped = false;
        let end = quoted.char_indices().find(|&(_, c)| {
            let closes = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            closes
        });
        rest = end.map_or("", |(i, _)| &quoted[i + 1..]);
    }
    out.push_str(rest);
    out
}

/// A URL with path, query, user and password cut, safe to print.
pub fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(url) if url.host_str().is_some() => {
            format!("{}://{}/…", url.scheme(), default_name(&url))
        }
        _ => "<unparseable URL>".to_string(),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
