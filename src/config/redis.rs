//! The `[redis]` section: the Redis a fleet of sidecars shares (the one an Airflow Celery
//! deployment already runs), for exact budgets on one provider key (`budget_key`) and a shared
//! answer cache. Unset `url`: no Redis, every sidecar on its own.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// The longest one Redis call may take before the sidecar stops waiting and falls back to
/// its local limiter and memory cache: a Redis next to the workers answers in about a
/// millisecond; a slower one must not slow every request.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(100);
/// After Redis failed, how long the sidecar serves on its own before it tries Redis again
/// (requests never wait on a Redis that is down).
pub const DEFAULT_REDIS_RETRY: Duration = Duration::from_secs(5);
/// The prefix of every key nodewatch writes (`<prefix>:budget:<budget_key>`, …).
pub const DEFAULT_REDIS_PREFIX: &str = "nodewatch";
/// Whether final answers are shared through Redis too (when `url` is set).
pub const DEFAULT_REDIS_CACHE: bool = true;
/// How long a shared cache entry lives: final answers never change, but a Redis without
/// `maxmemory` must not grow for ever.
pub const DEFAULT_REDIS_CACHE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// `[redis]`: where the fleet's shared budgets and answer cache live.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port[/db]`; unset: no Redis.
    pub url: Option<String>,
    /// Longest wait for one Redis call.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Time on the local fallback before Redis is tried again.
    #[serde(with = "humantime_serde")]
    pub retry: Duration,
    /// Prefix of nodewatch's keys.
    pub prefix: String,
    /// Share final answers through Redis.
    pub cache: bool,
    /// Lifetime of a shared cache entry.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            timeout: DEFAULT_REDIS_TIMEOUT,
            retry: DEFAULT_REDIS_RETRY,
            prefix: DEFAULT_REDIS_PREFIX.to_owned(),
            cache: DEFAULT_REDIS_CACHE,
            cache_ttl: DEFAULT_REDIS_CACHE_TTL,
        }
    }
}

impl RedisConfig {
    /// The URL when one is set (an empty string, as an unset environment variable gives,
    /// is none).
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref().filter(|u| !u.trim().is_empty())
    }

    /// Checks the URL's form and the durations.
    pub fn check(&self) -> Result<(), ConfigError> {
        if let Some(url) = self.url() {
            let parsed = url::Url::parse(url).map_err(|e| {
                ConfigError::new(
                    "redis.url",
                    format!("not a URL ({e}): {}", redact_redis_url(url)),
                )
            })?;
            if parsed.scheme() != "redis" {
                return Err(ConfigError::new(
                    "redis.url",
                    format!(
                        "must start with redis:// (got {}://; TLS to Redis is not supported)",
                        parsed.scheme()
                    ),
                ));
            }
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(ConfigError::new("redis.url", "names no host"));
            }
        }
        if self.timeout.is_zero() || self.retry.is_zero() || self.cache_ttl.is_zero() {
            return Err(ConfigError::new(
                "redis",
                "timeout, retry and cache_ttl must be above 0",
            ));
        }
        if self.prefix.is_empty() || self.prefix.contains(char::is_whitespace) {
            return Err(ConfigError::new(
                "redis.prefix",
                format!("must be a non-empty word (got {:?})", self.prefix),
            ));
        }
        Ok(())
    }
}

/// A Redis URL with its password (if any) replaced, for logs and `/status`.
pub fn redact_redis_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(url: &str) -> RedisConfig {
        RedisConfig {
            url: Some(url.to_owned()),
            ..RedisConfig::default()
        }
    }

    #[test]
    fn urls_are_checked_and_passwords_never_shown() {
        assert!(with_url("redis://127.0.0.1:6379/0").check().is_ok());
        assert!(with_url("").check().is_ok(), "empty is unset");
        assert_eq!(with_url("  ").url(), None);
        let tls = with_url("rediss://h:6380").check().unwrap_err().to_string();
        assert!(tls.contains("redis.url") && tls.contains("rediss"), "{tls}");
        let junk = with_url("not a url").check().unwrap_err().to_string();
        assert!(junk.contains("redis.url"), "{junk}");
        let shown = redact_redis_url("redis://:s3cret@redis:6379/0");
        assert!(
            !shown.contains("s3cret") && shown.contains("redis:6379"),
            "{shown}"
        );
        let bad = RedisConfig {
            timeout: Duration::ZERO,
            ..RedisConfig::default()
        };
        assert!(bad.check().is_err());
    }
}
