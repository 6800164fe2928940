//! The finality-aware answer cache: answers that can no longer change are kept and served
//! again without an upstream call, so a retried or re-run day's export does not pay the
//! provider twice.
//!
//! What is immutable: the chain id; a block or its receipts asked by block hash (a hash
//! commits to the content); and anything about a block at or below the final depth
//! (`cache.final_depth` blocks under the best head): blocks, receipts, traces, logs and
//! code by number, and transactions and receipts by hash whose block is that deep. Never
//! kept: `null`, errors, anything above the depth, an empty answer that verification did not
//! vouch for (data that may still appear), anything that failed verification (it never
//! reaches here). Keyed by the method and its canonical params (re-serialised JSON, hex
//! lower-cased), bounded in bytes, oldest out first ([`crate::bounded`]). One mutex, held only to look up or
//! insert, recovering from poisoning.

use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use prometheus::{IntCounterVec, IntGauge};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::blocks::{self, BlockNeed};
use crate::bounded::Bounded;
use crate::config::CacheConfig;

/// Methods whose answers never change on a chain.
const CHAIN_CONSTANT: &[&str] = &["eth_chainId", "net_version"];

/// Methods whose answer about one final block never changes.
const BY_BLOCK: &[&str] = &[
    "eth_getBlockByNumber",
    "eth_getBlockByHash",
    "eth_getBlockReceipts",
    "eth_getBlockTransactionCountByNumber",
    "eth_getBlockTransactionCountByHash",
    "eth_getTransactionByBlockNumberAndIndex",
    "eth_getTransactionByBlockHashAndIndex",
    "eth_getLogs",
    "eth_getCode",
    "trace_block",
    "trace_replayBlockTransactions",
    "debug_traceBlockByNumber",
];

/// Methods asked by transaction hash: final once the block holding the transaction is.
const BY_TRANSACTION: &[&str] = &[
    "eth_getTransactionByHash",
    "eth_getTransactionReceipt",
    "trace_transaction",
];

/// Methods asked by block hash whose answer is the same for ever (a hash names one block).
const BY_BLOCK_HASH: &[&str] = &["eth_getBlockByHash", "eth_getBlockReceipts"];

/// Whether a call may be answered from, or kept in, the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finality {
    /// Its answer can never change: look it up, keep it.
    Final,
    /// Final if the answer's own `blockNumber` is at or below this final head.
    IfAnswerAtOrBelow(u64),
    /// It may still change: neither.
    Open,
}

/// Whether `method(params)` is final, given the best head (`None`: not known yet).
pub fn finality(
    method: &str,
    params: Option<&RawValue>,
    best_head: Option<u64>,
    config: &CacheConfig,
) -> Finality {
    if !config.enabled {
        return Finality::Open;
    }
    if CHAIN_CONSTANT.contains(&method) {
        return Finality::Final;
    }
    let final_head = best_head.and_then(|h| h.checked_sub(config.final_depth));
    let need = blocks::need(method, params);
    match (need, final_head) {
        _ if BY_BLOCK_HASH.contains(&method) && need == BlockNeed::ByHash => Finality::Final,
        (BlockNeed::Number(n), Some(f)) if n <= f && BY_BLOCK.contains(&method) => Finality::Final,
        (BlockNeed::ByHash, Some(f)) if BY_TRANSACTION.contains(&method) => {
            Finality::IfAnswerAtOrBelow(f)
        }
        _ => Finality::Open,
    }
}

/// The key of a call: its method and canonical params.
pub fn key(method: &str, params: Option<&RawValue>) -> Option<String> {
    let canonical = match params {
        None => String::new(),
        Some(raw) => serde_json::from_str::<serde_json::Value>(raw.get())
            .ok()?
            .to_string()
            .to_ascii_lowercase(),
    };
    Some(format!("{method}{canonical}"))
}

/// Whether an answer of a call with `finality` may be kept: not `null`, not empty unless
/// `verified`, and for answers by transaction hash, in a block at or below the final head.
pub fn keepable(finality: Finality, result: &[u8], verified: bool) -> bool {
    let empty = matches!(result, b"null" | b"[]" | b"{}" | b"\"0x\"");
    if result.is_empty() || result == b"null" || (empty && !verified) {
        return false;
    }
    match finality {
        Finality::Final => true,
        Finality::IfAnswerAtOrBelow(f) => block_number(result).is_some_and(|n| n <= f),
        Finality::Open => false,
    }
}

/// The `blockNumber` an answer states, if any.
fn block_number(result: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Located<'a> {
        #[serde(rename = "blockNumber", borrow)]
        block_number: Option<&'a str>,
    }
    let located: Located<'_> = serde_json::from_slice(result).ok()?;
    crate::quantity::parse(located.block_number?)
}

/// The answers kept, shared by every request.
#[derive(Debug)]
pub struct AnswerCache {
    /// The answers by key, weighed by key and answer length (`cache.max_bytes`).
    inner: Mutex<Bounded<String, Bytes>>,
    /// `nodewatch_cache_bytes`.
    gauge: IntGauge,
    /// `nodewatch_cache_lookups_total{result}`.
    lookups: IntCounterVec,
}

impl AnswerCache {
    /// An empty cache of at most `limit` bytes.
    pub fn new(limit: usize, gauge: IntGauge, lookups: IntCounterVec) -> Self {
        Self {
            inner: Mutex::new(Bounded::new(limit)),
            gauge,
            lookups,
        }
    }

    /// The answer kept for `key`, counted as a hit or a miss.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        let found = self.lock().get(&key.to_string()).cloned();
        let result = if found.is_some() { "hit" } else { "miss" };
        self.lookups.with_label_values(&[result]).inc();
        found
    }

    /// Keeps `answer` (copied: the upstream buffer it is a slice of is not held).
    pub fn put(&self, key: String, answer: &[u8]) {
        let weight = key.len() + answer.len();
        let mut inner = self.lock();
        inner.insert(key, Bytes::copy_from_slice(answer), weight);
        self.gauge.set(inner.weight() as i64);
    }

    fn lock(&self) -> MutexGuard<'_, Bounded<String, Bytes>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_string()).unwrap()
    }

    fn at(method: &str, params: &str, head: Option<u64>) -> Finality {
        finality(method, Some(&raw(params)), head, &CacheConfig::default())
    }

    #[test]
    fn final_is_at_or_below_the_depth_or_by_block_hash() {
        let depth = CacheConfig::default().final_depth;
        let head = 1000;
        let deep = format!(r#"["{:#x}", true]"#, head - depth);
        let shallow = format!(r#"["{:#x}", true]"#, head - depth + 1);
        assert_eq!(
            at("eth_getBlockByNumber", &deep, Some(head)),
            Finality::Final
        );
        assert_eq!(
            at("eth_getBlockByNumber", &shallow, Some(head)),
            Finality::Open
        );
        assert_eq!(
            at("eth_getBlockByNumber", &deep, None),
            Finality::Open,
            "no head yet"
        );
        assert_eq!(
            at("eth_getBlockByNumber", r#"["latest", true]"#, Some(head)),
            Finality::Open
        );
        let h = format!(r#"["0x{}", true]"#, "ab".repeat(32));
        assert_eq!(at("eth_getBlockByHash", &h, None), Finality::Final);
        assert_eq!(
            at(
                "eth_getTransactionReceipt",
                &format!(r#"["0x{}"]"#, "cd".repeat(32)),
                Some(head)
            ),
            Finality::IfAnswerAtOrBelow(head - depth)
        );
        assert_eq!(at("eth_chainId", "[]", None), Finality::Final);
        assert_eq!(at("eth_getBalance", &deep, Some(head)), Finality::Open);
        assert_eq!(at("eth_call", "[{}, \"0x1\"]", Some(head)), Finality::Open);
        let off = CacheConfig {
            enabled: false,
            ..CacheConfig::default()
        };
        assert_eq!(finality("eth_chainId", None, None, &off), Finality::Open);
    }

    #[test]
    fn null_empty_and_recent_answers_are_not_kept() {
        assert!(!keepable(Finality::Final, b"null", true));
        assert!(
            !keepable(Finality::Final, b"[]", false),
            "empty, not vouched for"
        );
        assert!(keepable(Finality::Final, b"[]", true), "empty and verified");
        assert!(keepable(Finality::Final, b"{\"hash\":\"0x1\"}", false));
        assert!(!keepable(Finality::Open, b"{\"hash\":\"0x1\"}", true));
        let receipt = br#"{"blockNumber":"0x10","status":"0x1"}"#;
        assert!(keepable(Finality::IfAnswerAtOrBelow(16), receipt, true));
        assert!(!keepable(Finality::IfAnswerAtOrBelow(15), receipt, true));
        assert!(!keepable(
            Finality::IfAnswerAtOrBelow(99),
            b"{\"status\":\"0x1\"}",
            true
        ));
    }

    #[test]
    fn keys_ignore_spacing_and_hex_case() {
        let a = key("eth_getBlockByNumber", Some(&raw(r#"[ "0x1B4",  true ]"#)));
        let b = key("eth_getBlockByNumber", Some(&raw(r#"["0x1b4",true]"#)));
        assert_eq!(a, b);
        assert_ne!(
            a,
            key("eth_getBlockByNumber", Some(&raw(r#"["0x1b4",false]"#)))
        );
    }

    #[test]
    fn bounded_in_bytes_oldest_out_first() {
        let lookups = IntCounterVec::new(prometheus::Opts::new("l", "l"), &["result"]).unwrap();
        let gauge = IntGauge::new("g", "g").unwrap();
        let cache = AnswerCache::new(30, gauge.clone(), lookups.clone());
        cache.put("a".into(), &[b'1'; 10]);
        cache.put("b".into(), &[b'2'; 10]);
        assert!(cache.get("a").is_some());
        cache.put("c".into(), &[b'3'; 10]);
        assert!(cache.get("a").is_none(), "oldest out");
        assert_eq!(cache.get("c").as_deref(), Some(&[b'3'; 10][..]));
        assert_eq!(gauge.get(), 22);
        assert_eq!(lookups.with_label_values(&["hit"]).get(), 2);
        assert_eq!(lookups.with_label_values(&["miss"]).get(), 1);
        cache.put("huge".into(), &[0; 100]);
        assert!(
            cache.get("huge").is_none(),
            "larger than the bound: not kept"
        );
    }
}
