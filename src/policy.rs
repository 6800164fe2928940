//! Method policy: which JSON-RPC methods clients may call through the proxy.
//!
//! By default node-administration and test-node methods are denied (they change a node's
//! state, or only one node's); configuration adds allow and deny glob patterns. A denied
//! call is answered locally with -32601 "method not allowed" and never reaches an upstream.

use globset::{Glob, GlobSet, GlobSetBuilder};

/// JSON-RPC code for a denied method (as for an unknown one).
pub const METHOD_NOT_ALLOWED: i64 = -32601;

/// A pattern list that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad pattern {pattern:?}: {reason}")]
pub struct PolicyError {
    /// Which list: `allow` or `deny`.
    pub list: &'static str,
    /// The pattern (or the whole list, when the set fails to build).
    pub pattern: String,
    /// The glob compiler's reason.
    pub reason: String,
}

/// Compiled allow and deny lists.
#[derive(Debug, Clone)]
pub struct MethodPolicy {
    /// When non-empty, only matching methods are allowed.
    allow: Option<GlobSet>,
    /// Matching methods are denied (checked after `allow`).
    deny: GlobSet,
}

fn compile<S: AsRef<str>>(list: &'static str, patterns: &[S]) -> Result<GlobSet, PolicyError> {
    let error = |pattern: &str, e: globset::Error| PolicyError {
        list,
        pattern: pattern.to_string(),
        reason: e.kind().to_string(),
    };
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let pattern = pattern.as_ref();
        builder.add(Glob::new(pattern).map_err(|e| error(pattern, e))?);
    }
    builder.build().map_err(|e| error("", e))
}

impl MethodPolicy {
    /// Compiles the lists: only methods matching `allow` (when non-empty), and none matching
    /// `deny`.
    pub fn new<S: AsRef<str>>(allow: &[S], deny: &[S]) -> Result<Self, PolicyError> {
        Ok(Self {
            allow: if allow.is_empty() {
                None
            } else {
                Some(compile("allow", allow)?)
            },
            deny: compile("deny", deny)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn default_denies_admin_and_test_node_methods() {
        let p = MethodPolicy::new(&[], crate::config::DEFAULT_DENY).unwrap();
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
            &strings(&["eth_sendRawTransaction"]),
        )
        .unwrap();
        assert!(p.allows("eth_getLogs"));
        assert!(p.allows("net_version"));
        assert!(!p.allows("web3_clientVersion"));
        assert!(!p.allows("eth_sendRawTransaction"));
        let open = MethodPolicy::new::<&str>(&[], &[]).unwrap();
        assert!(open.allows("evm_mine"));
    }

    #[test]
    fn bad_patterns_are_errors_naming_list_and_pattern() {
        let e = MethodPolicy::new(&strings(&["eth_[x"]), &[]).unwrap_err();
        assert_eq!((e.list, e.pattern.as_str()), ("allow", "eth_[x"));
    }
}
