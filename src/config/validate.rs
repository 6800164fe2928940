//! Validation: every rule a running proxy relies on, checked once, into a [`ValidConfig`] that
//! already holds what the rest of the proxy would otherwise parse again: each upstream's
//! [`Endpoint`] (URL, Basic credentials, header map), its name, its CA certificates, and the
//! compiled method policy.

use std::collections::HashSet;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use nodewatch_http::client::load_ca_file;
use nodewatch_http::endpoint::redact_url;
use nodewatch_http::{Endpoint, EndpointError};
use rustls::pki_types::CertificateDer;

use super::{
    Config, ConfigError, UpstreamConfig, DEFAULT_DENY, MAX_INFLIGHT_BYTES_LIMIT, MAX_THREADS,
    MAX_UPSTREAMS,
};
use crate::policy::{MethodPolicy, PolicyError};

/// A configuration that passed [`Config::validate`]. Reads as the [`Config`] it was made from
/// (`Deref`), plus the parsed parts.
#[derive(Debug, Clone)]
pub struct ValidConfig {
    /// The values as loaded.
    config: Config,
    /// The upstreams in rank order (index = rank - 1), parsed.
    pub upstream_specs: Vec<UpstreamSpec>,
    /// The compiled `[methods]` lists.
    pub policy: MethodPolicy,
}

impl Deref for ValidConfig {
    type Target = Config;

    fn deref(&self) -> &Config {
        &self.config
    }
}

/// One upstream, parsed: what `Upstream::new` is built from.
#[derive(Debug, Clone)]
pub struct UpstreamSpec {
    /// Display name: configured, or `host:port`.
    pub name: String,
    /// URL and headers (secret: shown by name only).
    pub endpoint: Endpoint,
    /// Extra trusted CA certificates (`ca_file`), if any.
    pub ca_roots: Option<Arc<[CertificateDer<'static>]>>,
    /// The upstream's compiled `methods` lists, if configured.
    pub methods: Option<MethodPolicy>,
    /// The entry as configured: a reload keeps an upstream whose entry is unchanged.
    pub source: UpstreamConfig,
}

impl ValidConfig {
    /// Each upstream's display name, in rank order.
    pub fn upstream_names(&self) -> Vec<String> {
        self.upstream_specs.iter().map(|u| u.name.clone()).collect()
    }

    /// The values as loaded.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl Config {
    /// Checks every rule a running proxy relies on and returns the parsed configuration.
    pub fn validate(&self) -> Result<ValidConfig, ConfigError> {
        self.check_counts()?;
        self.check_nonzero()?;
        self.check_durations()?;
        if !(0.0..=100.0).contains(&self.retry.ratio) {
            return Err(ConfigError::new(
                "retry.ratio",
                format!("must be between 0 and 100 (got {})", self.retry.ratio),
            ));
        }
        if self.proxy.max_inflight_bytes > MAX_INFLIGHT_BYTES_LIMIT {
            return Err(ConfigError::new(
                "proxy.max_inflight_bytes",
                format!(
                    "must be at most {MAX_INFLIGHT_BYTES_LIMIT} (got {})",
                    self.proxy.max_inflight_bytes
                ),
            ));
        }
        if self.proxy.threads > MAX_THREADS {
            return Err(ConfigError::new(
                "proxy.threads",
                format!(
                    "must be at most {MAX_THREADS}, or 0 for one per CPU (got {})",
                    self.proxy.threads
                ),
            ));
        }
        self.check_guards()?;
        self.rate_limit.check()?;
        self.redis.check()?;
        let policy = self.policy()?;
        let mut names = HashSet::new();
        let upstreams = self
            .upstreams
            .iter()
            .enumerate()
            .map(|(i, upstream)| {
                let spec = upstream_spec(&format!("upstreams[{i}]"), upstream)?;
                if !names.insert(spec.name.clone()) {
                    return Err(ConfigError::new(
                        format!("upstreams[{i}].name"),
                        format!(
                            "duplicate upstream name {:?} (give each upstream a distinct name)",
                            spec.name
                        ),
                    ));
                }
                Ok(spec)
            })
            .collect::<Result<_, _>>()?;
        Ok(ValidConfig {
            config: self.clone(),
            upstream_specs: upstreams,
            policy,
        })
    }

    fn check_counts(&self) -> Result<(), ConfigError> {
        if self.upstreams.is_empty() {
            return Err(ConfigError::new(
                "upstreams",
                "at least one upstream is required (--upstream URL or [[upstreams]])",
            ));
        }
        if self.upstreams.len() > MAX_UPSTREAMS {
            return Err(ConfigError::new(
                "upstreams",
                format!(
                    "at most {MAX_UPSTREAMS} upstreams (got {})",
                    self.upstreams.len()
                ),
            ));
        }
        Ok(())
    }

    fn check_nonzero(&self) -> Result<(), ConfigError> {
        let nonzero = [
            ("health.fail_threshold", self.health.fail_threshold as u64),
            (
                "health.recover_threshold",
                self.health.recover_threshold as u64,
            ),
            ("proxy.body_limit", self.proxy.body_limit as u64),
            ("proxy.response_limit", self.proxy.response_limit as u64),
            (
                "proxy.max_inflight_bytes",
                self.proxy.max_inflight_bytes as u64,
            ),
            ("proxy.max_batch", self.proxy.max_batch as u64),
            ("proxy.max_connections", self.proxy.max_connections as u64),
            (
                "breaker.failure_threshold",
                self.breaker.failure_threshold as u64,
            ),
            ("filters.max", self.filters.max as u64),
        ];
        match nonzero.into_iter().find(|&(_, value)| value == 0) {
            Some((key, _)) => Err(ConfigError::new(key, "must be at least 1 (got 0)")),
            None => Ok(()),
        }
    }

    fn check_durations(&self) -> Result<(), ConfigError> {
        let durations: [(&str, Duration); 14] = [
            ("probe.interval", self.probe.interval),
            ("probe.timeout", self.probe.timeout),
            ("proxy.request_timeout", self.proxy.request_timeout),
            ("proxy.attempt_timeout", self.proxy.attempt_timeout),
            (
                "proxy.light_attempt_timeout",
                self.proxy.light_attempt_timeout,
            ),
            (
                "proxy.heavy_attempt_timeout",
                self.proxy.heavy_attempt_timeout,
            ),
            ("proxy.unsupported_ttl", self.proxy.unsupported_ttl),
            ("proxy.header_read_timeout", self.proxy.header_read_timeout),
            ("proxy.queue_timeout", self.proxy.queue_timeout),
            ("breaker.cooldown", self.breaker.cooldown),
            ("retry.window", self.retry.window),
            ("filters.idle_timeout", self.filters.idle_timeout),
            ("verify.quarantine_window", self.verify.quarantine_window),
            ("verify.quarantine_for", self.verify.quarantine_for),
        ];
        match durations.into_iter().find(|(_, value)| value.is_zero()) {
            Some((key, _)) => Err(ConfigError::new(key, "must be longer than 0s (got 0s)")),
            None => Ok(()),
        }
    }

    fn check_guards(&self) -> Result<(), ConfigError> {
        let hedge = &self.hedge;
        if !(hedge.quantile > 0.0 && hedge.quantile < 1.0) {
            return Err(ConfigError::new(
                "hedge.quantile",
                format!(
                    "must be between 0 and 1, exclusive (got {})",
                    hedge.quantile
                ),
            ));
        }
        if hedge.min_delay > hedge.max_delay {
            return Err(ConfigError::new(
                "hedge.min_delay",
                format!(
                    "must not exceed hedge.max_delay ({:?} > {:?})",
                    hedge.min_delay, hedge.max_delay
                ),
            ));
        }
        if self.verify.quarantine_after == 0 {
            return Err(ConfigError::new(
                "verify.quarantine_after",
                "must be at least 1 (got 0)",
            ));
        }
        if self.fork.rejoin_after == 0 {
            return Err(ConfigError::new(
                "fork.rejoin_after",
                "must be at least 1 (got 0)",
            ));
        }
        Ok(())
    }

    fn policy(&self) -> Result<MethodPolicy, ConfigError> {
        let default: Vec<String> = DEFAULT_DENY.iter().map(|s| s.to_string()).collect();
        let deny = self.methods.deny.as_deref().unwrap_or(&default);
        MethodPolicy::new(&self.methods.allow, deny).map_err(|e: PolicyError| {
            ConfigError::new(format!("methods.{}", e.list), e.to_string())
        })
    }
}

/// Parses one `[[upstreams]]` entry (`key` is `upstreams[i]`).
fn upstream_spec(key: &str, upstream: &UpstreamConfig) -> Result<UpstreamSpec, ConfigError> {
    let mut endpoint = Endpoint::parse(&upstream.url).map_err(|why| {
        ConfigError::new(
            format!("{key}.url"),
            format!("{why} (got {:?})", redact_url(&upstream.url)),
        )
    })?;
    for (header, value) in &upstream.headers {
        endpoint = endpoint.with_header(header, value).map_err(|e| match e {
            EndpointError::HeaderName(_) => ConfigError::new(
                format!("{key}.headers"),
                format!("invalid header name {header:?}"),
            ),
            _ => ConfigError::new(format!("{key}.headers.{header}"), "invalid header value"),
        })?;
    }
    let name = upstream
        .name
        .clone()
        .unwrap_or_else(|| endpoint.default_name().to_string());
    if name.is_empty() {
        return Err(ConfigError::new(format!("{key}.name"), "must not be empty"));
    }
    if upstream.max_concurrency == Some(0) || upstream.max_rps == Some(0) {
        return Err(ConfigError::new(
            key,
            "max_concurrency and max_rps must be at least 1 (got 0)",
        ));
    }
    check_billing(key, upstream)?;
    let ca_roots = match &upstream.ca_file {
        None => None,
        Some(path) => Some(
            load_ca_file(path)
                .map_err(|why| ConfigError::new(format!("{key}.ca_file"), why))?
                .into(),
        ),
    };
    let methods =
        match &upstream.methods {
            None => None,
            Some(lists) => Some(MethodPolicy::new(&lists.allow, &lists.deny).map_err(|e| {
                ConfigError::new(format!("{key}.methods.{}", e.list), e.to_string())
            })?),
        };
    Ok(UpstreamSpec {
        name,
        endpoint,
        ca_roots,
        methods,
        source: upstream.clone(),
    })
}

/// Checks an upstream's `budget_key` and `credits`: one unit per upstream (calls, or compute
/// units with `credits`), so `max_rps` and `credits.per_second` are not both set.
fn check_billing(key: &str, upstream: &UpstreamConfig) -> Result<(), ConfigError> {
    if let Some(budget_key) = &upstream.budget_key {
        let word = |c: char| c.is_ascii_alphanumeric() || "-_.:".contains(c);
        if budget_key.is_empty() || !budget_key.chars().all(word) {
            return Err(ConfigError::new(
                format!("{key}.budget_key"),
                format!("must be letters, digits and - _ . : (got {budget_key:?})"),
            ));
        }
    }
    let Some(credits) = &upstream.credits else {
        return Ok(());
    };
    credits.check(key.trim_start_matches("upstreams[").trim_end_matches(']'))?;
    if upstream.max_rps.is_some() && credits.per_second.is_some() {
        return Err(ConfigError::new(
            format!("{key}.max_rps"),
            "max_rps counts calls and credits.per_second compute units: set one of them",
        ));
    }
    Ok(())
}
