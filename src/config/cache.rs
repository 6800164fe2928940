//! The `[cache]` section: which answers nodewatch keeps and serves again without an upstream
//! call (the finality-aware cache, [`crate::cache`]).

use serde::Deserialize;

/// Whether final answers are cached.
pub const DEFAULT_CACHE_ENABLED: bool = true;
/// Blocks under the best head at and below which a block counts as final (two epochs on
/// Ethereum mainnet: a reorg deeper than this has not happened since the Merge). Chains
/// with faster finality can lower it; a chain with deep reorgs must raise it.
pub const DEFAULT_CACHE_FINAL_DEPTH: u64 = 64;
/// Bytes of answers kept (the sidecar's memory limit in deploy/kubernetes is 256 MiB).
pub const DEFAULT_CACHE_MAX_BYTES: usize = 64 * 1024 * 1024;

/// `[cache]`: answers about blocks at or below `final_depth` under the best head (and blocks
/// and receipts by block hash, and the chain id) are kept, up to `max_bytes`, and served
/// again without asking an upstream. Never kept: `null`, errors, empty answers verification
/// did not vouch for, anything above the depth.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Cache at all.
    pub enabled: bool,
    /// Blocks under the best head at and below which answers are final.
    pub final_depth: u64,
    /// Bytes of answers kept (read at start-up).
    pub max_bytes: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: DEFAULT_CACHE_ENABLED,
            final_depth: DEFAULT_CACHE_FINAL_DEPTH,
            max_bytes: DEFAULT_CACHE_MAX_BYTES,
        }
    }
}
