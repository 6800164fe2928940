//! What the exporter trusts and what it remembers. [`Verifier`] runs nodewatch-verify's
//! checks on the raw JSON of each answer, before it is parsed and mapped to rows, and turns a
//! verdict into [`Failure::Wrong`] (the next provider is asked); it keeps the verified headers
//! and receipt sets of recent blocks, shared by the batches of a job and by the jobs of
//! `export_all` and of a `stream` round, so a block split across two batches, or needed by
//! two jobs, is fetched and verified once; and it remembers which providers lack
//! `eth_getBlockReceipts`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use nodewatch_verify::{verify_block, BlockRef, Check, Checks, Header, Wrong};
pub use nodewatch_verify::{VerifiedBlock, VerifiedReceipts, B256};
use serde_json::value::RawValue;

use crate::batch::Failure;

/// Headers kept (a few hundred bytes each): more than the blocks a `stream` round or a
/// batch of `export_token_transfers` covers.
const RECENT_HEADERS: usize = 4096;

/// Receipt sets kept, by count: the blocks the batches in flight share.
const RECENT_RECEIPT_SETS: usize = 256;

/// Receipt sets kept, by size (their approximate bytes), whichever bound comes first.
const RECENT_RECEIPT_BYTES: usize = 64 << 20;

/// A verdict as the failure of the attempt that got it.
pub(crate) fn wrong(w: Wrong) -> Failure {
    Failure::Wrong(w.to_string())
}

/// A verdict about `block`: the answer is another block than the one asked for.
pub(crate) fn not_the_block(asked: BlockRef, got: &Header) -> Failure {
    wrong(Wrong::new(
        asked,
        Check::Position,
        format!("asked for {asked}, the answer is {}", got.block_ref()),
    ))
}

/// The checks, and the verified data of recent blocks. Shared by every task of an export.
pub struct Verifier {
    /// Which checks run (nodewatch-verify's defaults: all but the costly sender recovery).
    checks: Checks,
    /// Verified headers by block hash.
    headers: Mutex<Recent<Header>>,
    /// Verified receipt sets by block hash.
    receipts: Mutex<Recent<Arc<VerifiedReceipts>>>,
    /// Providers (by name) that answered `eth_getBlockReceipts` with "method not found":
    /// they get the per-transaction fallback at once.
    without_block_receipts: Mutex<HashSet<String>>,
    /// One lock per block whose receipts a task is fetching, so that batches in flight that
    /// share a block (a block split across two batches) fetch it once: the others wait, then
    /// find it remembered.
    fetching: Mutex<HashMap<B256, Arc<tokio::sync::Mutex<()>>>>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier::new(Checks::default())
    }
}

impl Verifier {
    /// A verifier running `checks`.
    pub fn new(checks: Checks) -> Self {
        Verifier {
            checks,
            headers: Mutex::new(Recent::new(RECENT_HEADERS, usize::MAX)),
            receipts: Mutex::new(Recent::new(RECENT_RECEIPT_SETS, RECENT_RECEIPT_BYTES)),
            without_block_receipts: Mutex::new(HashSet::new()),
            fetching: Mutex::new(HashMap::new()),
        }
    }

    /// The checks that run.
    pub fn checks(&self) -> &Checks {
        &self.checks
    }

    /// Verifies a block answer (`eth_getBlockBy*`, full or hashes-only) and remembers its
    /// header.
    pub fn block(&self, raw: &RawValue) -> Result<VerifiedBlock, Failure> {
        let block = verify_block(raw.get().as_bytes(), &self.checks).map_err(wrong)?;
        self.remember_header(&block.header);
        Ok(block)
    }

    /// The remembered verified header of block `hash`.
    pub fn header(&self, hash: &B256) -> Option<Header> {
        lock(&self.headers).get(hash).cloned()
    }

    fn remember_header(&self, header: &Header) {
        lock(&self.headers).insert(header.hash, header.clone(), 1);
    }

    /// The remembered verified receipts of block `hash`.
    pub fn receipts(&self, hash: &B256) -> Option<Arc<VerifiedReceipts>> {
        lock(&self.receipts).get(hash).cloned()
    }

    /// Remembers a block's verified receipts.
    pub fn remember_receipts(&self, set: &Arc<VerifiedReceipts>) {
        let weight = set.approx_bytes();
        lock(&self.receipts).insert(set.block.1, Arc::clone(set), weight);
    }

    /// Whether the node named `node` is known to lack `eth_getBlockReceipts`.
    pub fn lacks_block_receipts(&self, node: &str) -> bool {
        lock(&self.without_block_receipts).contains(node)
    }

    /// Notes that the node named `node` lacks `eth_getBlockReceipts`.
    pub fn note_lacks_block_receipts(&self, node: &str) {
        lock(&self.without_block_receipts).insert(node.to_string());
    }

    /// Waits until no other task is fetching the receipts of `blocks`, and keeps them from
    /// starting until the claim is dropped. The locks are taken in hash order, so two tasks
    /// claiming overlapping sets cannot wait on each other.
    pub async fn claim(&self, blocks: &[B256]) -> Claim<'_> {
        let mut sorted = blocks.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let locks: Vec<(B256, Arc<tokio::sync::Mutex<()>>)> = {
            let mut fetching = lock(&self.fetching);
            let mut entry = |h: B256| Arc::clone(fetching.entry(h).or_default());
            sorted.iter().map(|h| (*h, entry(*h))).collect()
        };
        let mut guards = Vec::with_capacity(locks.len());
        for (hash, l) in locks {
            guards.push((hash, l.lock_owned().await));
        }
        Claim { v: self, guards }
    }
}

/// Blocks whose receipts this task may fetch while others wait ([`Verifier::claim`]).
pub struct Claim<'a> {
    v: &'a Verifier,
    guards: Vec<(B256, tokio::sync::OwnedMutexGuard<()>)>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut fetching = lock(&self.v.fetching);
        for (hash, guard) in self.guards.drain(..) {
            drop(guard);
            // The map's own reference is the last one: nobody waits for this block.
            if fetching
                .get(&hash)
                .is_some_and(|l| Arc::strong_count(l) == 1)
            {
                fetching.remove(&hash);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A bounded map from block hash to value: the oldest entries go first once there are more
/// than `max_entries`, or their weights add up to more than `max_weight`.
struct Recent<V> {
    map: HashMap<B256, (V, usize)>,
    /// Insertion order, oldest first.
    order: VecDeque<B256>,
    weight: usize,
    max_entries: usize,
    max_weight: usize,
}

impl<V> Recent<V> {
    fn new(max_entries: usize, max_weight: usize) -> Self {
        Recent {
            map: HashMap::new(),
            order: VecDeque::new(),
            weight: 0,
            max_entries,
            max_weight,
        }
    }

    fn get(&self, key: &B256) -> Option<&V> {
        self.map.get(key).map(|(v, _)| v)
    }

    fn insert(&mut self, key: B256, value: V, weight: usize) {
        if let Some((_, old)) = self.map.insert(key, (value, weight)) {
            self.weight -= old;
        } else {
            self.order.push_back(key);
        }
        self.weight += weight;
        while self.map.len() > self.max_entries || self.weight > self.max_weight {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some((_, w)) = self.map.remove(&oldest) {
                self.weight -= w;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> B256 {
        B256::repeat_byte(i)
    }

    #[test]
    fn recent_drops_the_oldest_by_count_and_by_weight() {
        let mut r = Recent::new(2, 100);
        r.insert(key(1), "a", 10);
        r.insert(key(2), "b", 10);
        r.insert(key(3), "c", 10);
        assert_eq!((r.get(&key(1)), r.get(&key(3))), (None, Some(&"c")));
        r.insert(key(4), "d", 95);
        assert_eq!(r.map.len(), 1, "weight 105 > 100 drops the older ones");
        assert_eq!(r.get(&key(4)), Some(&"d"));
        r.insert(key(4), "e", 5);
        assert_eq!(
            (r.get(&key(4)), r.weight, r.order.len()),
            (Some(&"e"), 5, 1)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_claimed_block_makes_the_next_claimer_wait_until_it_is_released() {
        let v = Arc::new(Verifier::default());
        let first = v.claim(&[key(2), key(1), key(2)]).await;
        assert_eq!(first.guards.len(), 2, "deduplicated");
        let waiter = {
            let v = Arc::clone(&v);
            tokio::spawn(async move {
                let claim = v.claim(&[key(3), key(1)]).await;
                claim.guards.len()
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        assert!(!waiter.is_finished(), "block 1 is claimed");
        let other = v.claim(&[key(4)]).await;
        drop(other);
        drop(first);
        assert_eq!(waiter.await.unwrap(), 2);
        assert!(lock(&v.fetching).is_empty(), "released locks are forgotten");
    }

    #[test]
    fn a_verdict_is_a_wrong_answer_naming_block_and_check() {
        let at = BlockRef::new(5, key(0xab));
        let f = wrong(Wrong::new(at, Check::TransactionsRoot, "evidence"));
        let Failure::Wrong(line) = f else {
            panic!("{f:?}")
        };
        assert!(line.starts_with("block 5 (0xabab"), "{line}");
        assert!(
            line.ends_with("transactions root check failed: evidence"),
            "{line}"
        );
    }

    /// Two ways to verify the raw JSON of a batch of full blocks, against the unverified
    /// parse: split the answer into raw results, verify, then parse each (what the exporter
    /// does), or parse to `PyValue` and `json_dumps` each result back for verification.
    /// A mainnet block (22196189: 274 transactions) 20 times in one batch answer.
    /// `cargo test --release -p nodewatch-export --lib -- --ignored --nocapture raw_results`
    #[test]
    #[ignore = "measurement; run by hand"]
    fn raw_results_cost_less_than_dumping_parsed_ones() {
        use crate::batch::{match_batch, parse_answer, Call};
        use crate::pyfmt::json_dumps;
        use crate::pyvalue::PyValue;
        use std::time::Instant;
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../verify/tests/fixtures/cancun-22196189/block.json"
        );
        let block = std::fs::read_to_string(fixture).unwrap();
        let n = 20;
        let items: Vec<String> = (0..n)
            .map(|i| format!("{{\"jsonrpc\":\"2.0\",\"id\":{i},\"result\":{block}}}"))
            .collect();
        let answer = format!("[{}]", items.join(","));
        let calls: Vec<Call> = (0..n)
            .map(|i| Call {
                method: "eth_getBlockByNumber",
                params: PyValue::List(vec![]),
                label: format!("block {i}"),
            })
            .collect();
        let v = Verifier::default();
        let time = |what: &str, f: &dyn Fn()| {
            f();
            let reps = 10;
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            let per_block = t.elapsed() / (reps * n as u32);
            eprintln!("FIGURE verify-raw {what}: {per_block:?} per block");
        };
        time("unverified (parse to PyValue)", &|| {
            let r: Vec<PyValue> =
                match_batch(&calls, parse_answer(&calls, answer.as_bytes()).unwrap()).unwrap();
            assert_eq!(r.len(), n);
        });
        time("raw split + verify + parse", &|| {
            let raws: Vec<Box<RawValue>> =
                match_batch(&calls, parse_answer(&calls, answer.as_bytes()).unwrap()).unwrap();
            for raw in &raws {
                v.block(raw).unwrap();
                crate::rpc::parse_raw(raw).unwrap();
            }
        });
        time("parse + json_dumps + verify", &|| {
            let r: Vec<PyValue> =
                match_batch(&calls, parse_answer(&calls, answer.as_bytes()).unwrap()).unwrap();
            for value in &r {
                verify_block(json_dumps(value).as_bytes(), v.checks()).unwrap();
            }
        });
        time("verify alone", &|| {
            verify_block(block.as_bytes(), v.checks()).unwrap();
        });
    }
}
