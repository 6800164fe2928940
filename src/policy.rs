//! Method policy: which JSON-RPC methods clients may call through the proxy.
//!
//! By default node-administration and test-node methods are denied (they change a node's
//! state, or only one node's); configuration adds allow and deny glob patterns. A denied
//! call is answered locally with -32601 "method not allowed" and never reaches an upstream.

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::config::ConfigError;

/// Methods denied unless the configuration allows them.
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

/// JSON-RPC code for a denied method (as for an unknown one).
pub const METHOD_NOT_ALLOWED: i64 = -32601;

/// Compiled allow and deny lists.
#[derive(Debug, Clone)]
pub struct MethodPolicy {
    /// When non-empty, only matching methods are allowed.
    allow: Option<GlobSet>,
    /// Matching methods are denied (checked after `allow`).
    deny: GlobSet,
}

fn compile(key: &str, patterns: &[String]) -> Result<GlobSet, ConfigError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = Glob::new(pattern)
            .map_err(|e| ConfigError::from(format!("{key}: bad pattern {pattern:?}: {e}")))?;
        builder.add(glob);
    }
    builder
        .build()
        .map_err(|e| ConfigError::from(format!("{key}: {e}")))
}

impl MethodPolicy {
    /// Compiles the lists. `deny` replaces [`DEFAULT_DENY`] when given.
    pub fn new(allow: &[String], deny: Option<&[String]>) -> Result<Self, ConfigError> {
        let default: Vec<String> = DEFAULT_DENY.iter().map(|s| s.to_string()).collect();
        Ok(Self {
            allow: if allow.is_empty() {
                None
            } else {
                Some(compile("methods.allow", allow)?)
            },
            deny: compile("methods.deny", deny.unwrap_or(&default))?,
        })
    }

    /// Whether a client may call `method`.
    pub fn allows(&self, method: &str) -> bool {
        self.allow
            .as_ref()
            .is_none_or(|allow| allow.is_match(method))
            && !self.deny.is_match(method)
    }
}

impl Default for MethodPolicy {
    fn default() -> Self {
        Self::new(&[], None).expect("the default deny list compiles")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn default_denies_admin_and_test_node_methods() {
        let p = MethodPolicy::default();
        for m in [
            "admin_addPeer",
            "personal_unlockAccount",
            "miner_start",
            "engine_newPayloadV3",
            "debug_setHead",
            "anvil_mine",
            "hardhat_reset",
            "evm_mine",
        ] {
            assert!(!p.allows(m), "{m}");
        }
        for m in [
            "eth_getBlockByNumber",
            "debug_traceTransaction",
            "trace_block",
            "net_version",
            "eth_newFilter",
        ] {
            assert!(p.allows(m), "{m}");
        }
    }

    #[test]
    fn allow_list_restricts_and_deny_list_replaces_the_default() {
        let p = MethodPolicy::new(
            &strings(&["eth_*", "net_version"]),
            Some(&strings(&["eth_sendRawTransaction"])),
        )
        .unwrap();
        assert!(p.allows("eth_getLogs"));
        assert!(p.allows("net_version"));
        assert!(!p.allows("web3_clientVersion"));
        assert!(!p.allows("eth_sendRawTransaction"));
        let open = MethodPolicy::new(&[], Some(&[])).unwrap();
        assert!(open.allows("evm_mine"));
    }

    #[test]
    fn bad_patterns_are_config_errors() {
        let e = MethodPolicy::new(&strings(&["eth_[x"]), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("methods.allow") && e.contains("eth_[x"), "{e}");
    }
}
