//! Which block a request needs: read from the method's block parameter, so routing can
//! prefer upstreams that have that block and a `null` answer can be recognised as "this node
//! does not have it yet" rather than "it does not exist".
//!
//! Pure functions over the raw `params`; nothing here allocates for requests without a
//! block parameter.

use serde::Deserialize;
use serde_json::value::RawValue;

/// What a request needs of an upstream's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockNeed {
    /// Nothing block-specific (or `earliest`): any upstream will do.
    Any,
    /// The chain head as the best node sees it (`latest`, `pending`, `safe`, `finalized`).
    Latest,
    /// This block number (for `eth_getLogs`, the range's upper end).
    Number(u64),
    /// An object known by hash (block, transaction, receipt): a node behind the others may
    /// not have it yet.
    ByHash,
}

/// Methods that answer `null` when the node lacks the object asked for. Only their `null`
/// answers are retried on another upstream.
const NULLABLE: &[&str] = &[
    "eth_getBlockByNumber",
    "eth_getBlockByHash",
    "eth_getBlockReceipts",
    "eth_getBlockTransactionCountByNumber",
    "eth_getBlockTransactionCountByHash",
    "eth_getTransactionByHash",
    "eth_getTransactionReceipt",
    "eth_getTransactionByBlockNumberAndIndex",
    "eth_getTransactionByBlockHashAndIndex",
    "eth_getUncleByBlockNumberAndIndex",
    "eth_getUncleByBlockHashAndIndex",
    "eth_getUncleCountByBlockNumber",
    "eth_getUncleCountByBlockHash",
];

/// Whether a `null` result of `method` may mean "not on this node yet".
pub fn is_nullable(method: &str) -> bool {
    NULLABLE.contains(&method)
}

/// Position of the block parameter, and whether it defaults to `latest` when absent.
fn block_param(method: &str) -> Option<(usize, bool)> {
    Some(match method {
        "eth_getBlockByNumber"
        | "eth_getBlockTransactionCountByNumber"
        | "eth_getTransactionByBlockNumberAndIndex"
        | "eth_getBlockReceipts"
        | "eth_getUncleByBlockNumberAndIndex"
        | "eth_getUncleCountByBlockNumber"
        | "trace_block"
        | "trace_replayBlockTransactions"
        | "debug_traceBlockByNumber" => (0, false),
        "eth_call"
        | "eth_estimateGas"
        | "eth_getBalance"
        | "eth_getCode"
        | "eth_getTransactionCount" => (1, true),
        "eth_getStorageAt" | "eth_getProof" => (2, true),
        _ => return None,
    })
}

const BY_HASH: &[&str] = &[
    "eth_getBlockByHash",
    "eth_getBlockTransactionCountByHash",
    "eth_getTransactionByHash",
    "eth_getTransactionReceipt",
    "eth_getTransactionByBlockHashAndIndex",
    "eth_getUncleByBlockHashAndIndex",
    "eth_getUncleCountByBlockHash",
    "trace_transaction",
    "debug_traceTransaction",
];

/// The block a call needs.
pub fn need(method: &str, params: Option<&RawValue>) -> BlockNeed {
    if BY_HASH.contains(&method) {
        return BlockNeed::ByHash;
    }
    if method == "eth_getLogs" {
        return params
            .and_then(|p| serde_json::from_str::<[LogFilter<'_>; 1]>(p.get()).ok())
            .map_or(BlockNeed::Latest, |[filter]| filter.need());
    }
    let Some((position, default_latest)) = block_param(method) else {
        return BlockNeed::Any;
    };
    let default = if default_latest {
        BlockNeed::Latest
    } else {
        BlockNeed::Any
    };
    let Some(params) = params else { return default };
    let Ok(list) = serde_json::from_str::<Vec<&RawValue>>(params.get()) else {
        return BlockNeed::Any;
    };
    list.get(position)
        .map_or(default, |raw| block_tag(raw).unwrap_or(BlockNeed::Any))
}

/// An `eth_getLogs` filter's block fields.
#[derive(Deserialize)]
struct LogFilter<'a> {
    #[serde(default, borrow, rename = "fromBlock")]
    from: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "toBlock")]
    to: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "blockHash")]
    hash: Option<&'a RawValue>,
}

impl LogFilter<'_> {
    fn need(&self) -> BlockNeed {
        if self.hash.is_some_and(|h| h.get() != "null") {
            return BlockNeed::ByHash;
        }
        // The upper end decides; an absent toBlock means latest.
        let to = self.to.map_or(Some(BlockNeed::Latest), block_tag);
        let from = self.from.and_then(block_tag);
        match (from, to) {
            (_, Some(BlockNeed::Latest)) | (Some(BlockNeed::Latest), _) => BlockNeed::Latest,
            (Some(BlockNeed::Number(a)), Some(BlockNeed::Number(b))) => BlockNeed::Number(a.max(b)),
            (_, Some(need)) => need,
            (Some(need), None) => need,
            (None, None) => BlockNeed::Any,
        }
    }
}

/// A block parameter: a hex number, a tag, or an EIP-1898 object.
fn block_tag(raw: &RawValue) -> Option<BlockNeed> {
    let text = raw.get();
    if text.starts_with('{') {
        #[derive(Deserialize)]
        struct Eip1898<'a> {
            #[serde(default, borrow, rename = "blockNumber")]
            number: Option<&'a RawValue>,
            #[serde(default, borrow, rename = "blockHash")]
            hash: Option<&'a RawValue>,
        }
        let object: Eip1898<'_> = serde_json::from_str(text).ok()?;
        if object.hash.is_some() {
            return Some(BlockNeed::ByHash);
        }
        return object.number.and_then(block_tag);
    }
    let tag: &str = serde_json::from_str(text).ok()?;
    Some(match tag {
        "latest" | "pending" | "safe" | "finalized" => BlockNeed::Latest,
        "earliest" => BlockNeed::Any,
        hex if hex.len() == 66 => BlockNeed::ByHash,
        hex => BlockNeed::Number(crate::quantity::parse(hex)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    fn need_of(method: &str, params: &str) -> BlockNeed {
        need(method, Some(&raw(params)))
    }

    #[test]
    fn block_number_methods() {
        assert_eq!(
            need_of("eth_getBlockByNumber", r#"["0x1b4", true]"#),
            BlockNeed::Number(436)
        );
        assert_eq!(
            need_of("eth_getBlockByNumber", r#"["latest", false]"#),
            BlockNeed::Latest
        );
        assert_eq!(
            need_of("eth_getBlockByNumber", r#"["earliest", false]"#),
            BlockNeed::Any
        );
        assert_eq!(
            need_of("eth_getBlockByNumber", r#"["finalized", false]"#),
            BlockNeed::Latest
        );
        assert_eq!(
            need_of("eth_getBlockReceipts", r#"["0x10"]"#),
            BlockNeed::Number(16)
        );
        let hash = format!(r#"["0x{}"]"#, "ab".repeat(32));
        assert_eq!(need_of("eth_getBlockReceipts", &hash), BlockNeed::ByHash);
        assert_eq!(need_of("trace_block", r#"["0x5"]"#), BlockNeed::Number(5));
        assert_eq!(
            need_of("debug_traceBlockByNumber", r#"["0x6", {}]"#),
            BlockNeed::Number(6)
        );
        assert_eq!(
            need_of(
                "eth_getTransactionByBlockNumberAndIndex",
                r#"["0x7","0x0"]"#
            ),
            BlockNeed::Number(7)
        );
        assert_eq!(
            need_of("eth_getUncleByBlockNumberAndIndex", r#"["0x8","0x0"]"#),
            BlockNeed::Number(8)
        );
    }

    #[test]
    fn state_methods_default_to_latest() {
        assert_eq!(need_of("eth_getBalance", r#"["0xabc"]"#), BlockNeed::Latest);
        assert_eq!(
            need_of("eth_getBalance", r#"["0xabc", "0x2"]"#),
            BlockNeed::Number(2)
        );
        assert_eq!(
            need_of("eth_call", r#"[{"to":"0x1"}, "0x3"]"#),
            BlockNeed::Number(3)
        );
        assert_eq!(
            need_of("eth_call", r#"[{"to":"0x1"}, {"blockNumber":"0x4"}]"#),
            BlockNeed::Number(4)
        );
        assert_eq!(
            need_of("eth_call", r#"[{"to":"0x1"}, {"blockHash":"0x4"}]"#),
            BlockNeed::ByHash
        );
        assert_eq!(
            need_of("eth_getStorageAt", r#"["0x1","0x0","0x9"]"#),
            BlockNeed::Number(9)
        );
        assert_eq!(
            need_of("eth_getProof", r#"["0x1",[],"pending"]"#),
            BlockNeed::Latest
        );
        assert_eq!(need("eth_getCode", None), BlockNeed::Latest);
    }

    #[test]
    fn logs_use_the_upper_end() {
        assert_eq!(
            need_of("eth_getLogs", r#"[{"fromBlock":"0x1","toBlock":"0x20"}]"#),
            BlockNeed::Number(32)
        );
        assert_eq!(
            need_of("eth_getLogs", r#"[{"fromBlock":"0x1"}]"#),
            BlockNeed::Latest
        );
        assert_eq!(
            need_of("eth_getLogs", r#"[{"fromBlock":"0x1","toBlock":"latest"}]"#),
            BlockNeed::Latest
        );
        assert_eq!(
            need_of("eth_getLogs", r#"[{"blockHash":"0xab"}]"#),
            BlockNeed::ByHash
        );
        assert_eq!(
            need_of(
                "eth_getLogs",
                r#"[{"fromBlock":"earliest","toBlock":"0x5"}]"#
            ),
            BlockNeed::Number(5)
        );
    }

    #[test]
    fn by_hash_and_unrelated_methods() {
        assert_eq!(
            need_of("eth_getTransactionReceipt", r#"["0xab"]"#),
            BlockNeed::ByHash
        );
        assert_eq!(
            need_of("eth_getBlockByHash", r#"["0xab", false]"#),
            BlockNeed::ByHash
        );
        assert_eq!(need_of("eth_chainId", "[]"), BlockNeed::Any);
        assert_eq!(need("eth_blockNumber", None), BlockNeed::Any);
    }

    #[test]
    fn malformed_params_need_nothing_and_never_panic() {
        for params in [
            "{}",
            "[]",
            "[1]",
            "[null]",
            r#"["0xzz"]"#,
            r#"["0x"]"#,
            "[[[]]]",
            r#"[{"toBlock":7}]"#,
            "\"x\"",
        ] {
            let _ = need_of("eth_getBlockByNumber", params);
            let _ = need_of("eth_getLogs", params);
            let _ = need_of("eth_call", params);
        }
        assert_eq!(need_of("eth_getBlockByNumber", "[]"), BlockNeed::Any);
        assert_eq!(
            need_of("eth_getBlockByNumber", r#"["0xffffffffffffffffff"]"#),
            BlockNeed::Any
        );
    }

    #[test]
    fn nullable_methods() {
        assert!(is_nullable("eth_getBlockByNumber"));
        assert!(is_nullable("eth_getTransactionReceipt"));
        assert!(!is_nullable("eth_call"));
    }
}

#[cfg(test)]
mod proptests;
