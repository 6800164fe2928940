//! The finality-aware answer cache: answers that can no longer change are kept and served
//! again without an upstream call, so a retried or re-run day's export does not pay the
//! provider twice.
//!
//! What is immutable: the chain id; a block or its receipts asked by block hash (a hash
//! commits to the content); and anything about a block at or below the final line: blocks,
//! receipts, traces, logs and code by number, and transactions and receipts by hash whose
//! block is that deep. Never kept: `null`, errors, anything above the line, an empty answer
//! that verification did not vouch for (data that may still appear), anything that failed
//! verification (it never reaches here). Keyed by the method and its canonical params
//! (re-serialised JSON, hex lower-cased), bounded in bytes, oldest out first
//! ([`crate::bounded`]). One mutex, held only to look up, insert or purge, recovering from
//! poisoning.
//!
//! # The final line
//! The monitor publishes it in the snapshot (`final_line`, shown in `/status`, gauge
//! `nodewatch_cache_final_line`), from a finality round every few probe rounds
//! ([`crate::upstream::finality`]):
//!
//! `line = min(best_head - final_depth, lowest finalized, highest checkpoint)`
//!
//! - `lowest finalized`: the lowest `finalized` block (`eth_getBlockByNumber("finalized")`)
//!   among the healthy, in-sync upstreams that report one, when `cache.use_finalized_tag`. A
//!   node without the tag (an error, `null`) has no say; when none has it, the depth alone
//!   decides. The tag only ever holds the line back (finality stalled, a lagging node):
//!   `final_depth` still caps it, so a lying or buggy node cannot push it up, and a chain
//!   with fast finality lowers `final_depth` to let the tag lead.
//! - `highest checkpoint`: the line never passes the highest block whose hash the monitor
//!   remembers (see below), so every kept answer is under a remembered hash.
//!
//! # Deep reorgs
//! Each finality round remembers the canonical hash of `best_head - final_depth` (a
//! checkpoint, the newest of a few dozen) and asks the upstreams again for the hash at the
//! newest one. A block hash commits to every block under it, so if any block at or below the
//! line changed, that hash changed: the monitor then walks the older checkpoints down to the
//! highest one that is unchanged and empties every entry about a block above it
//! ([`AnswerCache::purge_from`]: by-number entries, log ranges reaching it, transactions,
//! receipts and blocks by hash in those blocks); with no unchanged checkpoint, every entry
//! about a block. Counted in `nodewatch_cache_purged_total` (entries) and
//! `nodewatch_cache_deep_reorgs_total`, logged at warn with the heights. Until the round that
//! sees it (at most one finality round), the old answers are still served. A request that
//! began before a purge keeps none of its answers ([`AnswerCache::generation`]), so an answer
//! read from the old chain cannot come back after it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use prometheus::{IntCounter, IntCounterVec, IntGauge};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::blocks::{self, BlockNeed};
use crate::bounded::Bounded;
use crate::config::CacheConfig;
use crate::metrics::Metrics;
use crate::shared::Shared;

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

/// Whether `method(params)` is final, given the final line (`None`: not known yet).
pub fn finality(
    method: &str,
    params: Option<&RawValue>,
    final_head: Option<u64>,
    config: &CacheConfig,
) -> Finality {
    if !config.enabled {
        return Finality::Open;
    }
    if CHAIN_CONSTANT.contains(&method) {
        return Finality::Final;
    }
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

/// The highest block a kept answer is about, for purging after a deep reorg: the block
/// number asked for (a log range's upper end), else the one the answer states (a block's
/// `number`, a transaction's or receipt's `blockNumber`, a receipt list's first). `None`:
/// about no block (the chain id), never purged.
pub fn height(method: &str, params: Option<&RawValue>, result: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Located<'a> {
        #[serde(borrow)]
        number: Option<&'a str>,
        #[serde(rename = "blockNumber", borrow)]
        block_number: Option<&'a str>,
    }
    if let BlockNeed::Number(n) = blocks::need(method, params) {
        return Some(n);
    }
    if CHAIN_CONSTANT.contains(&method) {
        return None;
    }
    if result.trim_ascii_start().starts_with(b"[") {
        return first_block_number(result);
    }
    let located: Located<'_> = serde_json::from_slice(result).ok()?;
    crate::quantity::parse(located.number.or(located.block_number)?)
}

/// The `blockNumber` of the first item of a list answer (block receipts by hash).
fn first_block_number(result: &[u8]) -> Option<u64> {
    let items: Vec<&RawValue> = serde_json::from_slice(result).ok()?;
    block_number(items.first()?.get().as_bytes())
}

/// One kept answer.
#[derive(Debug)]
struct Kept {
    /// The answer's bytes.
    answer: Bytes,
    /// The highest block it is about ([`height`]): a deep reorg from there empties it.
    height: Option<u64>,
}

/// The entries and the purge generation, under one lock.
#[derive(Debug)]
struct Entries {
    /// The answers by key, weighed by key and answer length (`cache.max_bytes`).
    map: Bounded<String, Kept>,
    /// Purges so far: an answer read before one is not kept after it.
    generation: u64,
}

/// The answers kept, shared by every request and the monitor (which purges it).
#[derive(Debug)]
pub struct AnswerCache {
    /// The answers and the purge generation.
    inner: Mutex<Entries>,
    /// `nodewatch_cache_bytes`.
    gauge: IntGauge,
    /// `nodewatch_cache_lookups_total{result}`.
    lookups: IntCounterVec,
    /// `nodewatch_cache_purged_total`.
    purged: IntCounter,
    /// The fleet's Redis, when final answers are shared there (`redis.cache`).
    shared: Option<Arc<Shared>>,
    /// A deep reorg was seen and Redis has not yet started a new cache epoch for it: until
    /// it has, nothing is read from the shared tier (it may hold answers about the old
    /// blocks).
    forget_pending: Arc<AtomicBool>,
}

impl AnswerCache {
    /// An empty cache of at most `limit` bytes, recording in `metrics`.
    pub fn new(limit: usize, metrics: &Metrics) -> Self {
        Self {
            inner: Mutex::new(Entries {
                map: Bounded::new(limit),
                generation: 0,
            }),
            gauge: metrics.cache_bytes.clone(),
            lookups: metrics.cache_lookups.clone(),
            purged: metrics.cache_purged.clone(),
            shared: None,
            forget_pending: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Shares final answers through the fleet's Redis too (a second tier behind memory).
    pub fn with_shared(mut self, shared: Option<Arc<Shared>>) -> Self {
        self.shared = shared.filter(|s| s.caches());
        self
    }

    /// What the fleet's Redis keeps for `keys` (memory lacked them), counted as
    /// `shared_hit` / `shared_miss`; hits are kept in memory too. `None`: no shared tier, or
    /// Redis could not answer (the calls go upstream). With the epoch to keep answers in.
    pub async fn get_shared(&self, keys: &[String]) -> Option<(String, Vec<Option<Bytes>>)> {
        let shared = self.shared.as_ref()?;
        if self.forget_pending.load(Ordering::Acquire) {
            shared.forget_answers().await.ok()?;
            self.forget_pending.store(false, Ordering::Release);
        }
        let (epoch, found) = shared.cached(keys).await.ok()?;
        let hits = found.iter().flatten().count();
        self.lookups
            .with_label_values(&["shared_hit"])
            .inc_by(hits as u64);
        let misses = (found.len() - hits) as u64;
        self.lookups
            .with_label_values(&["shared_miss"])
            .inc_by(misses);
        Some((epoch, found))
    }

    /// Keeps final answers in the fleet's Redis, in the background (the request does not
    /// wait), unless a deep reorg began a new epoch since `epoch` was read.
    pub fn put_shared(&self, epoch: String, entries: Vec<(String, Bytes)>) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        if entries.is_empty() {
            return;
        }
        tokio::spawn(async move {
            let _ = shared.keep(&epoch, &entries).await;
        });
    }

    /// The answer kept for `key`, counted as a hit or a miss.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        let found = self
            .lock()
            .map
            .get(&key.to_string())
            .map(|kept| kept.answer.clone());
        let result = if found.is_some() { "hit" } else { "miss" };
        self.lookups.with_label_values(&[result]).inc();
        found
    }

    /// The purge generation now: read it before asking upstreams, hand it to [`Self::put`].
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Keeps `answer` (copied: the upstream buffer it is a slice of is not held), about block
    /// `height`, unless a purge came since `generation` was read (it may be of the old chain).
    pub fn put(&self, key: String, answer: &[u8], height: Option<u64>, generation: u64) {
        let weight = key.len() + answer.len();
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        let kept = Kept {
            answer: Bytes::copy_from_slice(answer),
            height,
        };
        inner.map.insert(key, kept, weight);
        self.gauge.set(inner.map.weight() as i64);
    }

    /// Empties every entry about block `from` or above (a deep reorg changed it); returns how
    /// many went.
    pub fn purge_from(&self, from: u64) -> usize {
        let mut inner = self.lock();
        inner.generation += 1;
        let gone = inner
            .map
            .retain(|_, kept| kept.height.is_none_or(|h| h < from));
        self.gauge.set(inner.map.weight() as i64);
        self.purged.inc_by(gone as u64);
        if let Some(shared) = self.shared.clone() {
            // The fleet's kept answers may be about the changed blocks too: a new epoch, and
            // none of them read until it has begun.
            self.forget_pending.store(true, Ordering::Release);
            let pending = Arc::clone(&self.forget_pending);
            tokio::spawn(async move {
                match shared.forget_answers().await {
                    Ok(()) => pending.store(false, Ordering::Release),
                    Err(e) => tracing::warn!(
                        error = %e,
                        "redis: no new cache epoch after a deep reorg yet; the shared cache is \
                         not read until there is"
                    ),
                }
            });
        }
        gone
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_string()).unwrap()
    }

    fn at(method: &str, params: &str, line: Option<u64>) -> Finality {
        finality(method, Some(&raw(params)), line, &CacheConfig::default())
    }

    #[test]
    fn final_is_at_or_below_the_line_or_by_block_hash() {
        let line = 936;
        let deep = format!(r#"["{line:#x}", true]"#);
        let shallow = format!(r#"["{:#x}", true]"#, line + 1);
        assert_eq!(
            at("eth_getBlockByNumber", &deep, Some(line)),
            Finality::Final
        );
        assert_eq!(
            at("eth_getBlockByNumber", &shallow, Some(line)),
            Finality::Open
        );
        assert_eq!(
            at("eth_getBlockByNumber", &deep, None),
            Finality::Open,
            "no line yet"
        );
        assert_eq!(
            at("eth_getBlockByNumber", r#"["latest", true]"#, Some(line)),
            Finality::Open
        );
        let h = format!(r#"["0x{}", true]"#, "ab".repeat(32));
        assert_eq!(at("eth_getBlockByHash", &h, None), Finality::Final);
        assert_eq!(
            at(
                "eth_getTransactionReceipt",
                &format!(r#"["0x{}"]"#, "cd".repeat(32)),
                Some(line)
            ),
            Finality::IfAnswerAtOrBelow(line)
        );
        assert_eq!(at("eth_chainId", "[]", None), Finality::Final);
        assert_eq!(at("eth_getBalance", &deep, Some(line)), Finality::Open);
        assert_eq!(at("eth_call", "[{}, \"0x1\"]", Some(line)), Finality::Open);
        let off = CacheConfig {
            enabled: false,
            ..CacheConfig::default()
        };
        assert_eq!(finality("eth_chainId", None, None, &off), Finality::Open);
    }

    #[test]
    fn an_entry_is_about_the_block_asked_for_or_the_one_its_answer_states() {
        let by = |method: &str, params: &str, result: &str| {
            height(method, Some(&raw(params)), result.as_bytes())
        };
        assert_eq!(
            by("eth_getBlockByNumber", r#"["0x10", false]"#, "{}"),
            Some(16)
        );
        let logs = r#"[{"fromBlock": "0x5", "toBlock": "0x9"}]"#;
        assert_eq!(
            by("eth_getLogs", logs, "[]"),
            Some(9),
            "a range's upper end"
        );
        let hash = format!(r#"["0x{}", false]"#, "ab".repeat(32));
        let block = r#"{"number":"0x20","transactions":[{"blockNumber":"0x20"}]}"#;
        assert_eq!(by("eth_getBlockByHash", &hash, block), Some(32));
        let receipts = r#"[{"blockNumber":"0x21","status":"0x1"}]"#;
        assert_eq!(by("eth_getBlockReceipts", &hash, receipts), Some(33));
        let receipt = r#"{"blockNumber":"0x22","status":"0x1"}"#;
        assert_eq!(by("eth_getTransactionReceipt", &hash, receipt), Some(34));
        assert_eq!(by("eth_chainId", "[]", "\"0x1\""), None);
        assert_eq!(by("eth_getBlockReceipts", &hash, "[]"), None);
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
        let metrics = Metrics::new();
        let cache = AnswerCache::new(30, &metrics);
        cache.put("a".into(), &[b'1'; 10], None, 0);
        cache.put("b".into(), &[b'2'; 10], None, 0);
        assert!(cache.get("a").is_some());
        cache.put("c".into(), &[b'3'; 10], None, 0);
        assert!(cache.get("a").is_none(), "oldest out");
        assert_eq!(cache.get("c").as_deref(), Some(&[b'3'; 10][..]));
        assert_eq!(metrics.cache_bytes.get(), 22);
        let lookups = &metrics.cache_lookups;
        assert_eq!(lookups.with_label_values(&["hit"]).get(), 2);
        assert_eq!(lookups.with_label_values(&["miss"]).get(), 1);
        cache.put("huge".into(), &[0; 100], None, 0);
        assert!(
            cache.get("huge").is_none(),
            "larger than the bound: not kept"
        );
    }

    #[test]
    fn a_purge_empties_the_blocks_from_its_height_up_and_bars_older_answers() {
        let metrics = Metrics::new();
        let cache = AnswerCache::new(1024, &metrics);
        for (key, height) in [
            ("chain", None),
            ("b9", Some(9)),
            ("b10", Some(10)),
            ("b11", Some(11)),
        ] {
            cache.put(key.into(), b"x", height, cache.generation());
        }
        let before = cache.generation();
        assert_eq!(cache.purge_from(10), 2);
        assert!(cache.get("chain").is_some() && cache.get("b9").is_some());
        assert!(cache.get("b10").is_none() && cache.get("b11").is_none());
        assert_eq!(metrics.cache_purged.get(), 2);
        assert_eq!(metrics.cache_bytes.get(), 9, "chain + x, b9 + x");
        cache.put("b10".into(), b"old", Some(10), before);
        assert!(
            cache.get("b10").is_none(),
            "read before the purge: not kept"
        );
        cache.put("b10".into(), b"new", Some(10), cache.generation());
        assert_eq!(cache.get("b10").as_deref(), Some(&b"new"[..]));
    }
}
