//! `eth_getBlockReceipts` answers against a verified header: the receipts root (post-state
//! root and status receipts, every typed receipt), each receipt's bloom from its logs, the
//! header bloom as their union, counts, positions, gas used, and — given the block's full
//! transactions — each receipt against its transaction.

use alloy_consensus::proofs::ordered_trie_root_encoded;
use alloy_consensus::ReceiptWithBloom;
use alloy_primitives::{Bloom, B256};
use alloy_rlp::Encodable;

use crate::block::{slices, VerifiedBlock};
use crate::bloom::BloomCache;
use crate::facts::{read_receipt, ReadReceipt, ReceiptFacts};
use crate::header::Header;
use crate::rpc::{self, RpcReceipt};
use crate::verdict::{BlockRef, Check, Checks, Skipped, Wrong};
use crate::{against, positions};

/// Highest receipt type this crate can encode (EIP-7702).
const MAX_KNOWN_TYPE: u8 = 4;
/// Room reserved per receipt in the shared encoding buffer (bloom plus a few logs).
const RECEIPT_BYTES_GUESS: usize = 512;

/// A block's verified receipts: what single receipts and `eth_getLogs` answers are
/// compared against, and what a cache keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedReceipts {
    /// The block (number, hash) they belong to.
    pub block: (u64, B256),
    /// The receipts, in transaction order.
    pub receipts: Vec<ReceiptFacts>,
    /// Checks that could not run (e.g. the root, for a receipt type this crate cannot encode).
    pub skipped: Vec<Skipped>,
}

impl VerifiedReceipts {
    /// Number of receipts.
    pub fn len(&self) -> usize {
        self.receipts.len()
    }

    /// Whether the block has no receipts.
    pub fn is_empty(&self) -> bool {
        self.receipts.is_empty()
    }

    /// The receipt at transaction index `index`.
    pub fn get(&self, index: u64) -> Option<&ReceiptFacts> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.receipts.get(i))
    }

    /// Roughly the bytes this set holds, for a byte-bounded cache.
    pub fn approx_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .receipts
                .iter()
                .map(ReceiptFacts::approx_bytes)
                .sum::<usize>()
    }

    /// The block, for verdicts.
    pub fn block_ref(&self) -> BlockRef {
        BlockRef::new(self.block.0, self.block.1)
    }
}

/// Checks a block's receipts (`eth_getBlockReceipts` result array, in order) against its
/// verified header; with `block`, also the count and each receipt against its transaction.
/// See the crate docs for the order of checks.
pub fn verify_block_receipts(
    json: &[u8],
    header: &Header,
    block: Option<&VerifiedBlock>,
    checks: &Checks,
) -> Result<VerifiedReceipts, Wrong> {
    let at = header.block_ref();
    let list: Vec<RpcReceipt<'_>> = rpc::parse(json).map_err(|e| Wrong::malformed(at, e))?;
    if let Some(b) = block.filter(|_| checks.receipts) {
        if b.transaction_count != list.len() {
            let detail = format!(
                "{} receipts for {} transactions",
                list.len(),
                b.transaction_count
            );
            return Err(Wrong::new(at, Check::Count, detail));
        }
    }
    let mut read = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        let one = read_receipt(r).map_err(|e| Wrong::malformed(at, format!("receipt {i}: {e}")))?;
        read.push(one);
    }
    let mut skipped = Vec::new();
    if checks.receipts {
        check_blooms(&read, header)?;
        check_root(&read, header, &mut skipped)?;
    }
    positions::check_block(&mut read, header, checks)?;
    let receipts: Vec<ReceiptFacts> = read.into_iter().map(|r| r.facts).collect();
    if checks.receipts {
        against::check_gas(&receipts, header)?;
        if let Some(txs) = block.and_then(|b| b.transactions.as_deref()) {
            against::check_transactions(&receipts, txs, header)?;
        }
    }
    Ok(VerifiedReceipts {
        block: (header.number, header.hash),
        receipts,
        skipped,
    })
}

/// Each receipt's bloom is the bloom of its logs; the header's bloom is their union.
fn check_blooms(read: &[ReadReceipt], header: &Header) -> Result<(), Wrong> {
    let mut cache = BloomCache::default();
    let mut union = Bloom::ZERO;
    for (i, r) in read.iter().enumerate() {
        let computed = cache.bloom_of(&r.facts.receipt.logs);
        if computed != r.facts.logs_bloom {
            let detail = format!(
                "receipt {i}: its {} logs give a different bloom than its logsBloom",
                r.facts.receipt.logs.len()
            );
            return Err(Wrong::new(header.block_ref(), Check::ReceiptBloom, detail));
        }
        union |= computed;
    }
    if union != header.logs_bloom {
        let detail = "the union of the receipts' blooms differs from the header's logsBloom";
        return Err(Wrong::new(header.block_ref(), Check::LogsBloom, detail));
    }
    Ok(())
}

/// The receipts build the header's receipts root (skipped for a type this crate cannot encode).
fn check_root(
    read: &[ReadReceipt],
    header: &Header,
    skipped: &mut Vec<Skipped>,
) -> Result<(), Wrong> {
    if let Some((i, r)) = read
        .iter()
        .enumerate()
        .find(|(_, r)| r.facts.tx_type > MAX_KNOWN_TYPE)
    {
        let reason = format!(
            "receipt {i} has type {:#x}, which this verifier cannot encode",
            r.facts.tx_type
        );
        skipped.push(Skipped {
            check: Check::ReceiptsRoot,
            reason,
        });
        return Ok(());
    }
    let mut buf = Vec::with_capacity(read.len() * RECEIPT_BYTES_GUESS);
    let mut ends = Vec::with_capacity(read.len());
    for r in read {
        encode_receipt(&r.facts, &mut buf);
        ends.push(buf.len());
    }
    let encodings = slices(&buf, &ends);
    let root = ordered_trie_root_encoded(&encodings);
    if root != header.receipts_root {
        let detail = format!(
            "{} receipts build {root}, header has {}",
            read.len(),
            header.receipts_root
        );
        return Err(Wrong::new(header.block_ref(), Check::ReceiptsRoot, detail));
    }
    Ok(())
}

/// The EIP-2718 encoding of a receipt, as `ReceiptEnvelope::encode_2718` writes it: the type
/// byte (none for legacy), then the receipt with its bloom.
pub(crate) fn encode_receipt(facts: &ReceiptFacts, buf: &mut Vec<u8>) {
    if facts.tx_type != 0 {
        buf.push(facts.tx_type);
    }
    ReceiptWithBloom {
        receipt: &facts.receipt,
        logs_bloom: facts.logs_bloom,
    }
    .encode(buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::verify_block;
    use crate::testdata::{anvil, remove, set};
    use serde_json::json;

    fn block(fork: &str, file: &str) -> VerifiedBlock {
        verify_block(&anvil(fork, file), &Checks::default()).unwrap()
    }

    fn check(json: &[u8], b: &VerifiedBlock) -> Result<VerifiedReceipts, Wrong> {
        verify_block_receipts(json, &b.header, Some(b), &Checks::default())
    }

    fn fails(json: &[u8], b: &VerifiedBlock, expected: Check) {
        let wrong = check(json, b).expect_err("tampered receipts must fail");
        assert_eq!(wrong.check, expected, "{wrong}");
    }

    #[test]
    fn anvil_receipts_verify_with_and_without_the_block() {
        for fork in ["prague", "london"] {
            for (b, r) in [
                ("block.json", "receipts.json"),
                ("block1.json", "receipts1.json"),
            ] {
                let b = block(fork, b);
                let set = check(&anvil(fork, r), &b).unwrap_or_else(|e| panic!("{fork}: {e}"));
                assert_eq!(set.len(), b.transaction_count);
                assert_eq!(set.block, (b.header.number, b.header.hash));
                assert!(set.approx_bytes() > set.len() * std::mem::size_of::<ReceiptFacts>());
                let alone =
                    verify_block_receipts(&anvil(fork, r), &b.header, None, &Checks::default())
                        .unwrap();
                assert_eq!(alone, set);
            }
        }
    }

    #[test]
    fn log_indexes_run_across_the_block() {
        let b = block("prague", "block.json");
        let set = check(&anvil("prague", "receipts.json"), &b).unwrap();
        let indexes: Vec<u64> = set
            .receipts
            .iter()
            .flat_map(|r| r.logs().map(|l| l.log_index))
            .collect();
        assert_eq!(indexes, (0..indexes.len() as u64).collect::<Vec<_>>());
        assert!(
            indexes.len() >= 3,
            "the fixture has logs in several receipts"
        );
    }

    #[test]
    fn root_bloom_count_and_position_tampering_is_caught() {
        let b = block("prague", "block.json");
        let json = anvil("prague", "receipts.json");
        fails(
            &set(&json, "/0/logs/0/data", json!("0x01")),
            &b,
            Check::ReceiptsRoot,
        );
        fails(
            &set(&json, "/3/status", json!("0x1")),
            &b,
            Check::ReceiptsRoot,
        );
        fails(
            &set(&json, "/1/type", json!("0x2")),
            &b,
            Check::ReceiptsRoot,
        );
        fails(&remove(&json, "/0/logs/0"), &b, Check::ReceiptBloom);
        fails(
            &set(
                &json,
                "/0/logsBloom",
                json!(format!("0x{}", "00".repeat(256))),
            ),
            &b,
            Check::ReceiptBloom,
        );
        fails(&remove(&json, "/5"), &b, Check::Count);
        fails(
            &set(&json, "/2/logs/0/logIndex", json!("0x0")),
            &b,
            Check::Position,
        );
        fails(
            &set(&json, "/2/logs/0/transactionIndex", json!("0x1")),
            &b,
            Check::Position,
        );
        fails(
            &set(&json, "/2/transactionIndex", json!("0x3")),
            &b,
            Check::Position,
        );
        fails(
            &set(&json, "/2/blockNumber", json!("0x3")),
            &b,
            Check::Position,
        );
    }

    #[test]
    fn fields_checked_against_the_transactions() {
        let b = block("prague", "block.json");
        let json = anvil("prague", "receipts.json");
        fails(&set(&json, "/0/gasUsed", json!("0x1")), &b, Check::Receipt);
        fails(
            &set(&json, "/0/effectiveGasPrice", json!("0x1")),
            &b,
            Check::Receipt,
        );
        fails(
            &set(
                &json,
                "/0/from",
                json!("0x0000000000000000000000000000000000000001"),
            ),
            &b,
            Check::Receipt,
        );
        fails(&set(&json, "/0/to", json!(null)), &b, Check::Receipt);
        fails(
            &set(
                &json,
                "/4/contractAddress",
                json!("0x0000000000000000000000000000000000000001"),
            ),
            &b,
            Check::Receipt,
        );
        fails(
            &set(&json, "/4/contractAddress", json!(null)),
            &b,
            Check::Receipt,
        );
        fails(
            &set(
                &json,
                "/0/contractAddress",
                json!("0x0000000000000000000000000000000000000001"),
            ),
            &b,
            Check::Receipt,
        );
        let other = block("prague", "block1.json");
        fails(&json, &other, Check::Count);
    }

    #[test]
    fn switched_off_checks_do_not_run() {
        let b = block("prague", "block.json");
        let json = set(
            &anvil("prague", "receipts.json"),
            "/2/logs/0/logIndex",
            json!("0x9"),
        );
        let checks = Checks {
            logs: false,
            ..Checks::default()
        };
        let set = verify_block_receipts(&json, &b.header, Some(&b), &checks).unwrap();
        assert_eq!(
            set.receipts[2].first_log_index, 1,
            "the verified index, not the answer's"
        );
    }

    #[test]
    fn unknown_receipt_types_skip_the_root() {
        let b = block("prague", "block.json");
        let json = set(&anvil("prague", "receipts.json"), "/1/type", json!("0x7e"));
        let checks = Checks::default();
        let set = verify_block_receipts(&json, &b.header, None, &checks).unwrap();
        assert_eq!(set.skipped.len(), 1);
        assert_eq!(set.skipped[0].check, Check::ReceiptsRoot);
    }

    #[test]
    fn malformed_receipts_are_wrong_not_panics() {
        let b = block("prague", "block.json");
        let json = anvil("prague", "receipts.json");
        for bad in [
            b"null".to_vec(),
            b"{}".to_vec(),
            set(&json, "/0/logs/0/topics/0", json!("0x12")),
            set(&json, "/0/cumulativeGasUsed", json!(null)),
            set(
                &json,
                "/0/logs/0/topics",
                json!(["0x01", "0x02", "0x03", "0x04", "0x05"]),
            ),
        ] {
            fails(&bad, &b, Check::Malformed);
        }
    }
}
