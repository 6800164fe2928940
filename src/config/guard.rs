//! The `[hedge]` and `[fork]` sections: the guards against nodes that are alive but wrong
//! (slow or hung, or on a minority fork), with their defaults.

use std::time::Duration;

use serde::Deserialize;

/// Whether slow attempts are hedged.
pub const DEFAULT_HEDGE_ENABLED: bool = true;
/// The quantile of an upstream's recent latency (per method class) after which a second
/// upstream is asked too.
pub const DEFAULT_HEDGE_QUANTILE: f64 = 0.95;
/// The hedge delay is never shorter than this (a fast node is not hedged on jitter).
pub const DEFAULT_HEDGE_MIN_DELAY: Duration = Duration::from_millis(50);
/// The hedge delay is never longer than this (a hung node costs at most this much).
pub const DEFAULT_HEDGE_MAX_DELAY: Duration = Duration::from_secs(1);
/// Extra upstreams one attempt may be hedged to.
pub const DEFAULT_HEDGE_MAX_EXTRA: usize = 1;

/// Whether the fork guard runs.
pub const DEFAULT_FORK_ENABLED: bool = true;
/// Blocks below the lowest in-sync head at which block hashes are compared: deep enough that
/// a reorg of the newest block or two (which every node goes through) is not a fork.
pub const DEFAULT_FORK_DEPTH: u64 = 3;
/// Agreeing checks in a row after which a forked upstream rejoins.
pub const DEFAULT_FORK_REJOIN_AFTER: u32 = 2;

/// `[hedge]`: when an attempt has not answered after a delay, the same calls go to the next
/// candidate too and the first trustworthy answer wins. Calls with side effects are never
/// hedged; hedges draw on the retry budget.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HedgeConfig {
    /// Hedge at all.
    pub enabled: bool,
    /// Latency quantile (0..1) of the upstream's recent attempts for the same method class.
    pub quantile: f64,
    /// Lower bound on the delay.
    #[serde(with = "humantime_serde")]
    pub min_delay: Duration,
    /// Upper bound on the delay.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Most extra upstreams asked for one attempt.
    pub max_extra: usize,
}

impl Default for HedgeConfig {
    fn default() -> Self {
        Self {
            enabled: DEFAULT_HEDGE_ENABLED,
            quantile: DEFAULT_HEDGE_QUANTILE,
            min_delay: DEFAULT_HEDGE_MIN_DELAY,
            max_delay: DEFAULT_HEDGE_MAX_DELAY,
            max_extra: DEFAULT_HEDGE_MAX_EXTRA,
        }
    }
}

/// `[fork]`: each probe round the monitor asks every upstream for the hash of the block
/// `depth` below the lowest in-sync head; an upstream whose hash disagrees with the majority
/// (no majority: with the best-ranked upstream) is `forked` and not used until it agrees
/// `rejoin_after` times in a row.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ForkConfig {
    /// Run the guard.
    pub enabled: bool,
    /// Blocks below the lowest in-sync head where hashes are compared.
    pub depth: u64,
    /// Agreeing checks in a row before a forked upstream is used again.
    pub rejoin_after: u32,
}

impl Default for ForkConfig {
    fn default() -> Self {
        Self {
            enabled: DEFAULT_FORK_ENABLED,
            depth: DEFAULT_FORK_DEPTH,
            rejoin_after: DEFAULT_FORK_REJOIN_AFTER,
        }
    }
}
