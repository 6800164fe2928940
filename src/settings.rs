//! [`Settings`]: the part of the configuration the request path reads on every call and a
//! reload may swap (limits, timeouts, the method policy, filter bookkeeping, the retry
//! budget, hedging, verification, the cache's finality rule), taken from a validated configuration.

use crate::config::{
    CacheConfig, FiltersConfig, HedgeConfig, ProxyConfig, RetryConfig, ValidConfig, VerifyConfig,
};
use crate::policy::MethodPolicy;

/// Request-path settings that a reload may change.
#[derive(Debug)]
pub struct Settings {
    /// Limits and timeouts.
    pub proxy: ProxyConfig,
    /// Allowed methods.
    pub policy: MethodPolicy,
    /// Filter bookkeeping.
    pub filters: FiltersConfig,
    /// Retry budget parameters (a change replaces the budget).
    pub retry: RetryConfig,
    /// When slow attempts are hedged.
    pub hedge: HedgeConfig,
    /// Which answers are verified, and the wrong-data quarantine.
    pub verify: VerifyConfig,
    /// Which answers are cached.
    pub cache: CacheConfig,
}

impl Settings {
    /// The settings of a validated configuration (nothing left to fail).
    pub fn new(config: &ValidConfig) -> Self {
        Self {
            proxy: config.proxy.clone(),
            policy: config.policy.clone(),
            filters: config.filters,
            retry: config.retry,
            hedge: config.hedge,
            verify: config.verify,
            cache: config.cache,
        }
    }
}
