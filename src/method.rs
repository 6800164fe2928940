//! What the proxy knows of a method by its name alone: its cost class (which attempt
//! timeout and which latency history it gets), whether calling it twice is harmless (only
//! then may it be hedged), and whether an error answer says the node lacks the method.

use serde::Serialize;

/// How heavy a call is, for attempt timeouts and hedge delays; ordered light to heavy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodClass {
    /// Answered from memory: `eth_blockNumber`, `eth_chainId`, `net_version`, gas prices.
    Light,
    /// One object or one execution: blocks, transactions, receipts, `eth_call`.
    Ordinary,
    /// Scans or re-executes much of a block or range: traces, `eth_getLogs`, block receipts.
    Heavy,
}

/// Every class, in a fixed order (for per-class tables).
pub const CLASSES: [MethodClass; 3] = [
    MethodClass::Light,
    MethodClass::Ordinary,
    MethodClass::Heavy,
];

impl MethodClass {
    /// The class of `method`; an unknown method is ordinary.
    pub fn of(method: &str) -> Self {
        const HEAVY_PREFIXES: &[&str] = &["trace_", "debug_trace", "arbtrace_", "ots_"];
        const HEAVY: &[&str] = &["eth_getLogs", "eth_getFilterLogs", "eth_getBlockReceipts"];
        const LIGHT: &[&str] = &[
            "eth_blockNumber",
            "eth_chainId",
            "eth_gasPrice",
            "eth_maxPriorityFeePerGas",
            "eth_syncing",
            "net_version",
            "net_listening",
            "net_peerCount",
            "web3_clientVersion",
            "web3_sha3",
        ];
        if HEAVY.contains(&method) || HEAVY_PREFIXES.iter().any(|p| method.starts_with(p)) {
            MethodClass::Heavy
        } else if LIGHT.contains(&method) {
            MethodClass::Light
        } else {
            MethodClass::Ordinary
        }
    }

    /// Index into [`CLASSES`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The label used in metrics and `/status`.
    pub fn label(self) -> &'static str {
        match self {
            MethodClass::Light => "light",
            MethodClass::Ordinary => "ordinary",
            MethodClass::Heavy => "heavy",
        }
    }
}

/// Whether sending `method` to two nodes could do something twice (a transaction broadcast,
/// a node-side filter or subscription): such calls are never hedged.
pub fn has_side_effects(method: &str) -> bool {
    const SIDE_EFFECTS: &[&str] = &[
        "eth_sendRawTransaction",
        "eth_sendTransaction",
        "eth_sendRawTransactionConditional",
        "eth_sendBundle",
        "eth_sendPrivateTransaction",
        "eth_submitWork",
        "eth_submitHashrate",
        "eth_newFilter",
        "eth_newBlockFilter",
        "eth_newPendingTransactionFilter",
        "eth_uninstallFilter",
        "eth_subscribe",
        "eth_unsubscribe",
        "personal_sendTransaction",
    ];
    SIDE_EFFECTS.contains(&method)
}

/// Phrases nodes and providers use when they do not serve a method (geth, erigon,
/// nethermind, besu, and hosted providers), lower-case.
const UNSUPPORTED_PHRASES: &[&str] = &[
    "does not exist/is not available",
    "method not found",
    "method not supported",
    "unsupported method",
    "method not available",
    "is not available",
    "not supported",
    "not enabled",
    "is disabled",
];

/// Whether a JSON-RPC error says the node does not serve the method (another node may):
/// code -32601, or a server or request error whose message says so.
pub fn is_unsupported(code: i64, message: &str) -> bool {
    if code == -32601 {
        return true;
    }
    let server_error = code == -32600 || code == -32603 || (-32099..=-32000).contains(&code);
    let message = message.to_ascii_lowercase();
    server_error && UNSUPPORTED_PHRASES.iter().any(|p| message.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(MethodClass::of("eth_blockNumber"), MethodClass::Light);
        assert_eq!(
            MethodClass::of("eth_getBlockByNumber"),
            MethodClass::Ordinary
        );
        assert_eq!(MethodClass::of("trace_block"), MethodClass::Heavy);
        assert_eq!(
            MethodClass::of("debug_traceBlockByNumber"),
            MethodClass::Heavy
        );
        assert_eq!(MethodClass::of("eth_getLogs"), MethodClass::Heavy);
        assert_eq!(MethodClass::of("something_new"), MethodClass::Ordinary);
        for (i, class) in CLASSES.iter().enumerate() {
            assert_eq!(class.index(), i);
        }
    }

    #[test]
    fn side_effects_are_never_hedged() {
        assert!(has_side_effects("eth_sendRawTransaction"));
        assert!(has_side_effects("eth_newFilter"));
        assert!(!has_side_effects("eth_getBlockByNumber"));
        assert!(!has_side_effects("eth_call"));
    }

    #[test]
    fn unsupported_answers_in_the_wordings_nodes_use() {
        assert!(is_unsupported(
            -32601,
            "the method trace_block does not exist/is not available"
        ));
        assert!(is_unsupported(-32601, "Method not found"));
        assert!(is_unsupported(-32000, "method not supported"));
        assert!(is_unsupported(-32004, "Method not supported"));
        assert!(is_unsupported(-32600, "Unsupported method: trace_block"));
        assert!(is_unsupported(-32000, "debug namespace is not enabled"));
        // Deterministic answers are not about the method.
        assert!(!is_unsupported(3, "execution reverted"));
        assert!(!is_unsupported(-32000, "nonce too low"));
        assert!(!is_unsupported(-32602, "invalid argument 0: not supported"));
    }
}
