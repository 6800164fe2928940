//! `eth_getBlockByNumber` / `eth_getBlockByHash` answers: the header hash, and with full
//! transactions each transaction's hash and positions, the transactions root and (optionally)
//! senders; the withdrawals root from the withdrawals.

use alloy_consensus::proofs::{calculate_withdrawals_root, ordered_trie_root_encoded};
use alloy_eips::eip4895::Withdrawal;
use alloy_primitives::Address;

use crate::header::{verify_header, Header};
use crate::hex::{self, BadField};
use crate::rpc::{self, RpcBlock, RpcTx, RpcWithdrawal, TxItem};
use crate::tx::{self, ReadTx, TxFacts};
use crate::verdict::{BlockRef, Check, Checks, Skipped, Wrong};

/// Room reserved per transaction in the shared encoding buffer (a typical mainnet size).
const TX_BYTES_GUESS: usize = 256;

/// What a verified block answer holds beyond its header.
#[derive(Clone, Debug)]
pub struct VerifiedBlock {
    /// The verified header.
    pub header: Header,
    /// Some when the answer had full transactions (each hash recomputed, root matched):
    /// receipts are then checked against them.
    pub transactions: Option<Vec<TxFacts>>,
    /// How many transactions the answer has (full or hashes-only): the receipt count.
    pub transaction_count: usize,
    /// Why some check could not run (e.g. an unknown transaction type 0x7e); the rest ran.
    pub skipped: Vec<Skipped>,
}

impl VerifiedBlock {
    /// The block this is, for verdicts.
    pub fn block_ref(&self) -> BlockRef {
        self.header.block_ref()
    }
}

/// Checks an `eth_getBlockByNumber`/`ByHash` result object (full or hashes-only): the header
/// hash from every fork's fields; with full transactions each transaction hash from its
/// fields, its `blockHash`/`blockNumber`/`transactionIndex`, the transactions root; the
/// withdrawals root from the withdrawals. `null` is no block: callers handle it before.
/// Unknown transaction types give `Skipped(TransactionsRoot)`, not `Wrong`.
pub fn verify_block(json: &[u8], checks: &Checks) -> Result<VerifiedBlock, Wrong> {
    let b: RpcBlock<'_> = rpc::parse(json).map_err(|e| Wrong::malformed(BlockRef::UNKNOWN, e))?;
    let header = verify_header(&b, checks.header)?;
    let mut skipped = Vec::new();
    let transactions = transactions(&b.transactions, &header, checks, &mut skipped)?;
    if checks.withdrawals {
        verify_withdrawals(b.withdrawals.as_deref(), &header)?;
    }
    Ok(VerifiedBlock {
        header,
        transactions,
        transaction_count: b.transactions.len(),
        skipped,
    })
}

/// The full transactions of a block (None for a hashes-only answer), checked.
fn transactions(
    items: &[TxItem<'_>],
    header: &Header,
    checks: &Checks,
    skipped: &mut Vec<Skipped>,
) -> Result<Option<Vec<TxFacts>>, Wrong> {
    let block = header.block_ref();
    if items.iter().any(|t| matches!(t, TxItem::Hash)) {
        return match items.iter().position(|t| matches!(t, TxItem::Full(_))) {
            Some(i) => Err(Wrong::malformed(
                block,
                format!("transaction {i} is an object among hashes"),
            )),
            None => Ok(None),
        };
    }
    let read = read_all(items, block, checks)?;
    if let Some((i, ty)) = read.unknown {
        let reason = format!("transaction {i} has type {ty:#x}, which this verifier cannot encode");
        skipped.push(Skipped {
            check: Check::TransactionsRoot,
            reason,
        });
    } else if checks.transactions {
        let root = ordered_trie_root_encoded(&slices(&read.buf, &read.ends));
        if root != header.transactions_root {
            let (n, expected) = (read.facts.len(), header.transactions_root);
            let detail = format!("{n} transactions build {root}, header has {expected}");
            return Err(Wrong::new(block, Check::TransactionsRoot, detail));
        }
    }
    if checks.transactions {
        for (i, item) in items.iter().enumerate() {
            if let TxItem::Full(rpc_tx) = item {
                tx_position(rpc_tx, header, i)?;
            }
        }
    }
    Ok(Some(read.facts))
}

/// A block's transactions read and encoded.
struct ReadAll {
    /// Each transaction's facts.
    facts: Vec<TxFacts>,
    /// The EIP-2718 encodings, one after the other (split at `ends`).
    buf: Vec<u8>,
    ends: Vec<usize>,
    /// The first transaction of a type this crate cannot encode: (index, type).
    unknown: Option<(usize, u8)>,
}

/// Reads, encodes and hashes every transaction; checks each hash (and signer).
fn read_all(items: &[TxItem<'_>], block: BlockRef, checks: &Checks) -> Result<ReadAll, Wrong> {
    let n = items.len();
    let mut read = ReadAll {
        facts: Vec::with_capacity(n),
        buf: Vec::with_capacity(n * TX_BYTES_GUESS),
        ends: Vec::with_capacity(n),
        unknown: None,
    };
    for (i, item) in items.iter().enumerate() {
        let TxItem::Full(rpc_tx) = item else { continue };
        let bad = |e: BadField| Wrong::malformed(block, format!("transaction {i}: {e}"));
        match tx::read_tx(rpc_tx, &mut read.buf, checks.senders).map_err(bad)? {
            ReadTx::Known {
                facts,
                claimed,
                signer,
            } => {
                if checks.transactions && facts.hash != claimed {
                    let detail = format!(
                        "transaction {i}: fields hash to {}, answer claims {claimed}",
                        facts.hash
                    );
                    return Err(Wrong::new(block, Check::TransactionHash, detail));
                }
                if let Some(signer) = signer {
                    check_sender(signer, &facts, i, block)?;
                }
                read.facts.push(facts);
            }
            ReadTx::Unknown(facts) => {
                read.unknown.get_or_insert((i, facts.tx_type));
                read.facts.push(facts);
            }
        }
        read.ends.push(read.buf.len());
    }
    Ok(read)
}

/// The pieces of `buf` ending at each of `ends`.
pub(crate) fn slices<'b>(buf: &'b [u8], ends: &[usize]) -> Vec<&'b [u8]> {
    let mut start = 0;
    ends.iter()
        .map(|&end| {
            let piece = &buf[start..end];
            start = end;
            piece
        })
        .collect()
}

/// A block transaction's `blockHash`, `blockNumber` and `transactionIndex` (when present)
/// say where it sits.
fn tx_position(tx: &RpcTx<'_>, header: &Header, i: usize) -> Result<(), Wrong> {
    let block = header.block_ref();
    let bad = |e: BadField| Wrong::malformed(block, format!("transaction {i}: {e}"));
    let wrong = |what: &str, got: String, expected: String| {
        let detail = format!("transaction {i}: {what} is {got}, expected {expected}");
        Err(Wrong::new(block, Check::Position, detail))
    };
    if let Some(h) = tx.block_hash {
        let h = hex::fixed::<32>("blockHash", h).map_err(bad)?;
        if h != header.hash {
            return wrong("blockHash", h.to_string(), header.hash.to_string());
        }
    }
    if let Some(n) = tx.block_number {
        let n = hex::u64q("blockNumber", n).map_err(bad)?;
        if n != header.number {
            return wrong("blockNumber", n.to_string(), header.number.to_string());
        }
    }
    if let Some(x) = tx.transaction_index {
        let x = hex::u64q("transactionIndex", x).map_err(bad)?;
        if x != i as u64 {
            return wrong("transactionIndex", x.to_string(), i.to_string());
        }
    }
    Ok(())
}

/// The signer recovered from the signature is the stated `from`.
pub(crate) fn check_sender(
    signer: Result<Address, String>,
    f: &TxFacts,
    i: usize,
    block: BlockRef,
) -> Result<(), Wrong> {
    let signer =
        signer.map_err(|e| Wrong::new(block, Check::Sender, format!("transaction {i}: {e}")))?;
    if signer != f.from {
        let detail = format!(
            "transaction {i}: signature recovers {signer}, answer says from {}",
            f.from
        );
        return Err(Wrong::new(block, Check::Sender, detail));
    }
    Ok(())
}

/// The withdrawals build the header's withdrawals root (both absent before Shanghai).
fn verify_withdrawals(list: Option<&[RpcWithdrawal<'_>]>, header: &Header) -> Result<(), Wrong> {
    let block = header.block_ref();
    let (list, root) = match (list, header.withdrawals_root) {
        (None, None) => return Ok(()),
        (Some(list), Some(root)) => (list, root),
        (Some(_), None) => {
            return Err(Wrong::malformed(
                block,
                "withdrawals without withdrawalsRoot",
            ))
        }
        // A block answer may leave its withdrawals out: nothing to check then.
        (None, Some(_)) => return Ok(()),
    };
    let read = |(i, w): (usize, &RpcWithdrawal<'_>)| {
        withdrawal(w).map_err(|e| Wrong::malformed(block, format!("withdrawal {i}: {e}")))
    };
    let withdrawals: Vec<Withdrawal> = list
        .iter()
        .enumerate()
        .map(read)
        .collect::<Result<_, _>>()?;
    let computed = calculate_withdrawals_root(&withdrawals);
    if computed != root {
        let detail = format!(
            "{} withdrawals build {computed}, header has {root}",
            withdrawals.len()
        );
        return Err(Wrong::new(block, Check::WithdrawalsRoot, detail));
    }
    Ok(())
}

/// One withdrawal's fields.
fn withdrawal(w: &RpcWithdrawal<'_>) -> Result<Withdrawal, BadField> {
    Ok(Withdrawal {
        index: hex::u64q("index", w.index)?,
        validator_index: hex::u64q("validatorIndex", w.validator_index)?,
        address: hex::fixed::<20>("address", w.address)?.into(),
        amount: hex::u64q("amount", w.amount)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{anvil, remove, set};
    use serde_json::json;

    const FORKS: [&str; 2] = ["prague", "london"];

    fn check(json: &[u8]) -> Result<VerifiedBlock, Wrong> {
        verify_block(json, &Checks::all())
    }

    fn fails(json: &[u8], expected: Check) -> Wrong {
        let wrong = check(json).expect_err("tampered answer must fail");
        assert_eq!(wrong.check, expected, "{wrong}");
        wrong
    }

    #[test]
    fn anvil_blocks_verify_full_and_hashes_only() {
        for fork in FORKS {
            for file in ["block.json", "block1.json"] {
                let block =
                    check(&anvil(fork, file)).unwrap_or_else(|e| panic!("{fork} {file}: {e}"));
                let txs = block.transactions.expect("full transactions");
                assert_eq!(txs.len(), block.transaction_count);
                assert!(block.skipped.is_empty());
            }
            let hashes = check(&anvil(fork, "block_hashes.json")).unwrap();
            assert!(hashes.transactions.is_none());
            assert_eq!(hashes.transaction_count, 6);
        }
    }

    #[test]
    fn header_field_changes_break_the_header_hash() {
        let json = anvil("prague", "block.json");
        for (pointer, value) in [
            ("/stateRoot", json!(format!("0x{}", "11".repeat(32)))),
            ("/gasUsed", json!("0x1")),
            ("/requestsHash", json!(format!("0x{}", "22".repeat(32)))),
            (
                "/parentBeaconBlockRoot",
                json!(format!("0x{}", "33".repeat(32))),
            ),
            ("/excessBlobGas", json!("0x1")),
            ("/extraData", json!("0x00")),
        ] {
            let wrong = fails(&set(&json, pointer, value), Check::HeaderHash);
            assert_eq!(wrong.block.number, Some(2));
        }
    }

    #[test]
    fn transaction_tampering_is_caught() {
        let json = anvil("prague", "block.json");
        fails(
            &set(&json, "/transactions/1/value", json!("0x1235")),
            Check::TransactionHash,
        );
        fails(
            &set(&json, "/transactions/2/accessList", json!([])),
            Check::TransactionHash,
        );
        fails(
            &set(&json, "/transactions/0/maxPriorityFeePerGas", json!("0x1")),
            Check::TransactionHash,
        );
        fails(&remove(&json, "/transactions/3"), Check::TransactionsRoot);
        fails(
            &set(&json, "/transactions/2/transactionIndex", json!("0x5")),
            Check::Position,
        );
        fails(
            &set(&json, "/transactions/2/blockNumber", json!("0x3")),
            Check::Position,
        );
        let other = anvil("prague", "block1.json");
        let moved: serde_json::Value = serde_json::from_slice(&other).unwrap();
        let foreign = moved["transactions"][0]["hash"].clone();
        fails(
            &set(&json, "/transactions/0/hash", foreign),
            Check::TransactionHash,
        );
    }

    #[test]
    fn a_wrong_sender_is_caught_only_with_senders_on() {
        let json = anvil("prague", "block.json");
        let lie = set(
            &json,
            "/transactions/1/from",
            json!("0x0000000000000000000000000000000000000001"),
        );
        fails(&lie, Check::Sender);
        assert!(verify_block(&lie, &Checks::default()).is_ok());
    }

    #[test]
    fn withdrawals_build_the_root() {
        let json = anvil("prague", "block.json");
        let w = json!([{"index":"0x0","validatorIndex":"0x1","address":"0x0000000000000000000000000000000000000002","amount":"0x3"}]);
        fails(&set(&json, "/withdrawals", w), Check::WithdrawalsRoot);
    }

    #[test]
    fn malformed_answers_are_wrong_not_panics() {
        let json = anvil("prague", "block.json");
        for bad in [
            b"null".to_vec(),
            b"[]".to_vec(),
            b"{".to_vec(),
            set(&json, "/number", json!(2)),
            set(&json, "/transactions/1/v", json!("0x1d")),
            set(&json, "/transactions/1/input", json!("0xabc")),
            set(&json, "/transactions/1/to", json!("0x1234")),
            set(&json, "/logsBloom", json!("0x00")),
        ] {
            fails(&bad, Check::Malformed);
        }
        for v in ["0x1c0", "0x1c"] {
            fails(
                &set(&json, "/transactions/1/v", json!(v)),
                Check::TransactionHash,
            );
        }
    }
}
