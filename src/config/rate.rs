//! The `[rate_limit]` section: how each upstream's rate is learned from its limit answers
//! (HTTP 429, JSON-RPC -32005, "rate limit", "exceeded … capacity"), with its defaults. The
//! per-upstream parts (`max_rps`, the hard ceiling, and `spill`) are in `[[upstreams]]`.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// Factor an upstream's learned rate is multiplied by on a limit answer (the multiplicative
/// decrease): 0.9 keeps the sawtooth between 90% and 100% of the provider's limit, so an
/// export runs at ~95% of it; a limit answer costs one call, not a tenth of the throughput.
pub const DEFAULT_RATE_DECREASE: f64 = 0.9;
/// Calls per second added to the learned rate for each second in which calls waited for it
/// and no limit answer came (the additive increase): at 2/s a 120 calls/s plan is back at its
/// limit ~6 s after a decrease; additive, so sidecars sharing a key converge to fair shares.
pub const DEFAULT_RATE_INCREASE: f64 = 2.0;
/// The learned rate never goes below this many calls per second.
pub const DEFAULT_RATE_MIN_RPS: f64 = 1.0;
/// Pause after a limit answer that names no `Retry-After` (a -32005 answer, a bare 429):
/// providers count per second.
pub const DEFAULT_RATE_BACKOFF: Duration = Duration::from_secs(1);
/// The longest `Retry-After` honoured; a longer one pauses this long (and the request's own
/// deadline bounds every wait anyway).
pub const DEFAULT_RATE_MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Whether calls that must wait for an upstream's budget may go to lower-ranked upstreams
/// instead (per upstream: `spill`).
pub const DEFAULT_SPILL: bool = true;

/// `[rate_limit]`: an upstream that answers "slow down" is paced, not failed. Its calls wait
/// for its budget (within the request's deadline) when no other upstream may take them.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Multiplicative decrease on a limit answer, in (0, 1].
    pub decrease: f64,
    /// Additive increase, calls/s per second of waiting calls without a limit answer.
    pub increase: f64,
    /// Floor of the learned rate, calls/s.
    pub min_rps: f64,
    /// Pause after a limit answer without `Retry-After`.
    #[serde(with = "humantime_serde")]
    pub backoff: Duration,
    /// Longest `Retry-After` honoured.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            decrease: DEFAULT_RATE_DECREASE,
            increase: DEFAULT_RATE_INCREASE,
            min_rps: DEFAULT_RATE_MIN_RPS,
            backoff: DEFAULT_RATE_BACKOFF,
            max_backoff: DEFAULT_RATE_MAX_BACKOFF,
        }
    }
}

impl RateLimitConfig {
    /// Checks the values a pacer relies on.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !(self.decrease > 0.0 && self.decrease <= 1.0) {
            return Err(ConfigError::new(
                "rate_limit.decrease",
                format!("must be above 0 and at most 1 (got {})", self.decrease),
            ));
        }
        if !(self.increase.is_finite() && self.increase >= 0.0) {
            return Err(ConfigError::new(
                "rate_limit.increase",
                format!("must be 0 or more (got {})", self.increase),
            ));
        }
        if !(self.min_rps.is_finite() && self.min_rps > 0.0) {
            return Err(ConfigError::new(
                "rate_limit.min_rps",
                format!("must be above 0 (got {})", self.min_rps),
            ));
        }
        if self.backoff > self.max_backoff {
            return Err(ConfigError::new(
                "rate_limit.backoff",
                format!(
                    "must not exceed rate_limit.max_backoff ({:?} > {:?})",
                    self.backoff, self.max_backoff
                ),
            ));
        }
        Ok(())
    }
}

/// `spill`'s default for serde.
pub(super) fn default_spill() -> bool {
    DEFAULT_SPILL
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{Config, Overrides};

    #[test]
    fn the_example_file_shows_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/nodewatch.toml");
        let config = Config::load_with_env(Some(&path), Overrides::default(), []).unwrap();
        assert_eq!(config.rate_limit, RateLimitConfig::default());
        assert!(config.upstreams.iter().all(|u| u.spill == DEFAULT_SPILL));
    }

    #[test]
    fn bad_values_name_their_key() {
        let bad = |f: fn(&mut RateLimitConfig)| {
            let mut c = RateLimitConfig::default();
            f(&mut c);
            c.check().unwrap_err().to_string()
        };
        assert!(bad(|c| c.decrease = 0.0).contains("rate_limit.decrease"));
        assert!(bad(|c| c.decrease = 1.5).contains("rate_limit.decrease"));
        assert!(bad(|c| c.increase = -1.0).contains("rate_limit.increase"));
        assert!(bad(|c| c.min_rps = 0.0).contains("rate_limit.min_rps"));
        assert!(bad(|c| c.backoff = Duration::from_secs(90)).contains("rate_limit.backoff"));
        assert!(RateLimitConfig::default().check().is_ok());
    }
}
