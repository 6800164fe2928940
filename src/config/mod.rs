//! Configuration: the TOML file, `NODEWATCH__SECTION__KEY` environment overrides and the
//! command line, merged in that order and validated once at start.
//!
//! Every default is a named `DEFAULT_*` constant; `config/nodewatch.toml` shows each key at its
//! default and a test keeps the two in step. Validation never panics: it returns a
//! [`ConfigError`] whose one-line message names the offending key and value.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

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
/// Upper bound on one client request, all failover attempts included: no shorter than the
/// clients' own (ethereum-etl's HTTP provider waits 60 s).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound on one attempt of an ordinary call (a block, a receipt, `eth_call`) against
/// one upstream before moving on to another candidate. The last candidate of a call gets the
/// rest of the request's time instead.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// As [`DEFAULT_ATTEMPT_TIMEOUT`], for light calls (`eth_blockNumber`, `eth_chainId`, …).
pub const DEFAULT_LIGHT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// As [`DEFAULT_ATTEMPT_TIMEOUT`], for heavy calls (traces, `eth_getLogs`, block receipts).
pub const DEFAULT_HEAVY_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Added to an attempt's timeout for every call of a batch after the first (a 400-block
/// batch is not an `eth_blockNumber`).
pub const DEFAULT_ATTEMPT_TIMEOUT_PER_ITEM: Duration = Duration::from_millis(25);
/// How long an upstream's "method not found / not available" is believed before the method
/// is tried there again.
pub const DEFAULT_UNSUPPORTED_TTL: Duration = Duration::from_secs(600);
/// Largest client request body accepted (HTTP 413 above it).
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Largest upstream answer read; larger answers count as a failed attempt.
pub const DEFAULT_RESPONSE_LIMIT: usize = 256 * 1024 * 1024;
/// Bytes of upstream answers held at once over every request (`proxy.max_inflight_bytes`):
/// sized for a sidecar with a 256 MiB memory limit (deploy/kubernetes), which leaves room for
/// the proxy's own ~10–20 MiB. Past it calls wait; one answer larger than it fails.
pub const DEFAULT_MAX_INFLIGHT_BYTES: usize = 128 * 1024 * 1024;
/// The largest `proxy.max_inflight_bytes` accepted (4 GiB - 1).
pub const MAX_INFLIGHT_BYTES_LIMIT: usize = u32::MAX as usize;
/// Most items one client batch may hold.
pub const DEFAULT_MAX_BATCH: usize = 1000;
/// How long in-flight requests may run on after SIGTERM/SIGINT.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Time a client has to send its request headers (slow clients cannot hold the proxy).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Most client connections served at once; further ones wait in the listen backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Threads serving client connections: 0 is one per CPU the process may use
/// (`std::thread::available_parallelism`, which counts a container's CPU limit).
pub const DEFAULT_THREADS: usize = 0;
/// The most `proxy.threads` accepted.
pub const MAX_THREADS: usize = 256;
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
/// Failed forwards in a row that open an upstream's circuit breaker.
pub const DEFAULT_BREAKER_FAILURES: u32 = 5;
/// How long an open breaker keeps its upstream out before one trial request.
pub const DEFAULT_BREAKER_COOLDOWN: Duration = Duration::from_secs(5);
/// Longest wait for a slot at a concurrency- or rate-limited upstream.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_millis(100);
/// Methods denied unless the configuration allows them (node administration, test-node
/// methods: they change one node's state).
pub const DEFAULT_DENY: &[&str] = &[
    "admin_*",
    "personal_*",
    "miner_*",
    "engine_*",
    "debug_setHead",
    "anvil_*",
    "hardhat_*",
    "evm_*",
];

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
    /// Hedged requests: a second upstream asked when the first is slow.
    pub hedge: HedgeConfig,
    /// The fork guard: upstreams whose blocks disagree with the majority are not used.
    pub fork: ForkConfig,
    /// Answers checked against their block header before they are served.
    pub verify: VerifyConfig,
    /// How each upstream's rate is learned from its limit answers (429, -32005).
    pub rate_limit: RateLimitConfig,
    /// Final answers kept and served again without an upstream call.
    pub cache: CacheConfig,
    /// The Redis a fleet of sidecars shares: exact budgets per `budget_key`, shared cache.
    pub redis: RedisConfig,
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
    /// Bound on one attempt of an ordinary call against one upstream, when another
    /// candidate is left to try.
    #[serde(with = "humantime_serde")]
    pub attempt_timeout: Duration,
    /// As `attempt_timeout`, for light calls.
    #[serde(with = "humantime_serde")]
    pub light_attempt_timeout: Duration,
    /// As `attempt_timeout`, for heavy calls (traces, logs, block receipts).
    #[serde(with = "humantime_serde")]
    pub heavy_attempt_timeout: Duration,
    /// Added to an attempt's timeout per batch item after the first.
    #[serde(with = "humantime_serde")]
    pub attempt_timeout_per_item: Duration,
    /// How long an upstream's "method not available" answer is remembered.
    #[serde(with = "humantime_serde")]
    pub unsupported_ttl: Duration,
    /// Largest client body in bytes.
    pub body_limit: usize,
    /// Largest upstream answer in bytes.
    pub response_limit: usize,
    /// Bytes of upstream answers held at once, over every request (read at start-up).
    pub max_inflight_bytes: usize,
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
    /// Threads serving client connections, 0 for one per CPU (read at start-up).
    pub threads: usize,
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
            failure_threshold: DEFAULT_BREAKER_FAILURES,
            cooldown: DEFAULT_BREAKER_COOLDOWN,
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
    #[serde(default)]
    pub url: String,
    /// The environment variable holding `url` instead (a provider URL with its key in it,
    /// from a Kubernetes Secret), read at load time.
    #[serde(default)]
    pub url_env: Option<String>,
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
    /// Most calls per second to this upstream, each batch item counting one as providers
    /// bill them (unset: no limit); e.g. a paid plan's limit. A hard ceiling over the rate
    /// learned from its limit answers.
    #[serde(default)]
    pub max_rps: Option<u32>,
    /// Whether calls that would wait for this upstream's budget may go to lower-ranked
    /// upstreams instead (false: they wait, when a paid fallback costs more than waiting).
    #[serde(default = "rate::default_spill")]
    pub spill: bool,
    /// Sidecars whose upstreams have the same `budget_key` share one budget (`max_rps`, or
    /// `credits.per_second` and `credits.per_month`) exactly, through `[redis]`: one
    /// provider key used by a fleet (unset: this sidecar's budget is its own).
    #[serde(default)]
    pub budget_key: Option<String>,
    /// Compute-unit billing: per-method costs, per-second and per-month budgets (unset:
    /// calls are counted, a batch item one each).
    #[serde(default)]
    pub credits: Option<CreditsConfig>,
    /// Which methods this upstream serves (unset: all; what it answers "not available" for
    /// is learned anyway). A method these lists refuse is never sent to it.
    #[serde(default)]
    pub methods: Option<UpstreamMethods>,
}

/// An upstream's own method lists (glob patterns).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamMethods {
    /// When non-empty, only these methods are sent to the upstream.
    pub allow: Vec<String>,
    /// These methods are never sent to the upstream.
    pub deny: Vec<String>,
}

impl UpstreamConfig {
    /// An entry with only a URL (as `--upstream URL` gives): no name, headers, CA or limits.
    pub fn from_url(url: impl Into<String>) -> Self {
        Self {
            name: None,
            url: url.into(),
            url_env: None,
            headers: BTreeMap::new(),
            ca_file: None,
            max_concurrency: None,
            max_rps: None,
            spill: DEFAULT_SPILL,
            budget_key: None,
            credits: None,
            methods: None,
        }
    }
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
            hedge: HedgeConfig::default(),
            fork: ForkConfig::default(),
            verify: VerifyConfig::default(),
            rate_limit: RateLimitConfig::default(),
            cache: CacheConfig::default(),
            redis: RedisConfig::default(),
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

impl ProxyConfig {
    /// How many threads serve clients: `threads`, or with 0 one per CPU the process may use.
    pub fn thread_count(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            light_attempt_timeout: DEFAULT_LIGHT_ATTEMPT_TIMEOUT,
            heavy_attempt_timeout: DEFAULT_HEAVY_ATTEMPT_TIMEOUT,
            attempt_timeout_per_item: DEFAULT_ATTEMPT_TIMEOUT_PER_ITEM,
            unsupported_ttl: DEFAULT_UNSUPPORTED_TTL,
            body_limit: DEFAULT_BODY_LIMIT,
            response_limit: DEFAULT_RESPONSE_LIMIT,
            max_inflight_bytes: DEFAULT_MAX_INFLIGHT_BYTES,
            max_batch: DEFAULT_MAX_BATCH,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            threads: DEFAULT_THREADS,
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
        }
    }
}

mod cache;
mod credits;
mod error;
mod guard;
mod load;
mod rate;
mod redis;
mod validate;
mod verify;

pub use cache::*;
pub use credits::*;
pub use error::ConfigError;
pub use guard::*;
pub use load::Overrides;
pub use nodewatch_http::endpoint::redact_url;
pub use rate::*;
pub use redis::*;
pub use validate::{UpstreamSpec, ValidConfig};
pub use verify::*;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
