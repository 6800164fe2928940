//! The `[cache]` section: which answers nodewatch keeps and serves again without an upstream
//! call (the finality-aware cache, [`crate::cache`]).

use serde::Deserialize;

/// Whether final answers are cached.
pub const DEFAULT_CACHE_ENABLED: bool = true;
/// Blocks under the best head at and below which a block counts as final (two epochs on
/// Ethereum mainnet: a reorg deeper than this has not happened since the Merge). Chains
/// with faster finality can lower it; a chain with deep reorgs must raise it.
pub const DEFAULT_CACHE_FINAL_DEPTH: u64 = 64;
/// Whether the upstreams' `finalized` tag holds the final line back: a chain whose
/// `finalized` block is unreliable (or a node that reports a made-up one) can switch it off
/// and rely on `final_depth` alone.
pub const DEFAULT_CACHE_USE_FINALIZED_TAG: bool = true;
/// Bytes of answers kept (the sidecar's memory limit in deploy/kubernetes is 256 MiB).
pub const DEFAULT_CACHE_MAX_BYTES: usize = 64 * 1024 * 1024;

/// `[cache]`: answers about blocks at or below the final line (and blocks and receipts by
/// block hash, and the chain id) are kept, up to `max_bytes`, and served again without asking
/// an upstream. The final line is `final_depth` blocks under the best head, held back to the
/// lowest `finalized` block the upstreams report when `use_finalized_tag` ([`crate::cache`]).
/// Never kept: `null`, errors, empty answers verification did not vouch for, anything above
/// the line.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Cache at all.
    pub enabled: bool,
    /// Blocks under the best head at and below which answers are final (the line is never
    /// higher, whatever the nodes' `finalized` tag says).
    pub final_depth: u64,
    /// Hold the line at the lowest `finalized` block the upstreams report.
    pub use_finalized_tag: bool,
    /// Bytes of answers kept (read at start-up).
    pub max_bytes: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: DEFAULT_CACHE_ENABLED,
            final_depth: DEFAULT_CACHE_FINAL_DEPTH,
            use_finalized_tag: DEFAULT_CACHE_USE_FINALIZED_TAG,
            max_bytes: DEFAULT_CACHE_MAX_BYTES,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{Config, Overrides};

    #[test]
    fn the_example_file_shows_every_key_at_its_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/nodewatch.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        for key in ["enabled", "final_depth", "use_finalized_tag", "max_bytes"] {
            assert!(text.contains(&format!("\n{key} = ")), "{key} is shown");
        }
        let config = Config::load_with_env(Some(&path), Overrides::default(), []).unwrap();
        assert_eq!(config.cache, CacheConfig::default());
    }
}
