//! One receipt (`eth_getTransactionReceipt`) or one transaction (`eth_getTransactionByHash`,
//! `…ByBlockNumberAndIndex`, `…ByBlockHashAndIndex`): where it says it lives, and whether it
//! equals the verified block's receipt or transaction at that place.

use alloy_primitives::B256;

use crate::block::{check_sender, VerifiedBlock};
use crate::facts::{read_receipt, Claimed, ReceiptFacts};
use crate::hex::{self, need, opt_fixed, opt_u64, BadField};
use crate::positions;
use crate::receipts::VerifiedReceipts;
use crate::rpc::{self, RpcReceipt, RpcTx};
use crate::tx::{read_tx, ReadTx, TxFacts};
use crate::verdict::{BlockRef, Check, Checks, Skipped, Wrong};

/// Where a transaction answer says it lives (all `None` for a pending transaction), and
/// what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxLocation {
    /// The block number.
    pub number: Option<u64>,
    /// The block hash.
    pub hash: Option<B256>,
    /// The position in the block.
    pub index: Option<u64>,
    /// The transaction (hash recomputed unless `skipped` says otherwise).
    pub tx: TxFacts,
    /// A check that could not run (an unknown transaction type: its hash is the claimed one).
    pub skipped: Option<Skipped>,
}

/// Where a single receipt says it lives: (block number, block hash, transaction index).
pub fn receipt_location(json: &[u8]) -> Result<(u64, B256, u64), Wrong> {
    let r: RpcReceipt<'_> = rpc::parse(json).map_err(|e| Wrong::malformed(BlockRef::UNKNOWN, e))?;
    let read = || -> Result<_, BadField> {
        let number = hex::u64q("blockNumber", need("blockNumber", r.block_number)?)?;
        let hash = hex::fixed::<32>("blockHash", need("blockHash", r.block_hash)?)?;
        let index = hex::u64q(
            "transactionIndex",
            need("transactionIndex", r.transaction_index)?,
        )?;
        Ok((number, hash, index))
    };
    read().map_err(|e| Wrong::malformed(BlockRef::UNKNOWN, format!("receipt {e}")))
}

/// A single receipt equals the verified set's receipt at its index: every field
/// ethereum-etl reads, logs and their positions included.
pub fn verify_receipt(json: &[u8], set: &VerifiedReceipts) -> Result<(), Wrong> {
    let block = set.block_ref();
    let r: RpcReceipt<'_> = rpc::parse(json).map_err(|e| Wrong::malformed(block, e))?;
    let read = read_receipt(&r).map_err(|e| Wrong::malformed(block, format!("receipt {e}")))?;
    let index = read.facts.transaction_index;
    let position =
        |detail: String| Wrong::new(block, Check::Position, format!("receipt {index}: {detail}"));
    let Some(want) = set.get(index) else {
        return Err(position(format!("the block has {} receipts", set.len())));
    };
    let expected = Claimed {
        block_hash: Some(set.block.1),
        block_number: Some(set.block.0),
        ..Claimed::default()
    };
    positions::compare(&read.at, &expected).map_err(position)?;
    for (j, at) in read.log_at.iter().enumerate() {
        let expected = Claimed {
            transaction_hash: Some(want.transaction_hash),
            transaction_index: Some(index),
            log_index: Some(want.first_log_index + j as u64),
            ..expected
        };
        positions::compare(at, &expected).map_err(|e| position(format!("log {j}: {e}")))?;
    }
    let got = ReceiptFacts {
        first_log_index: want.first_log_index,
        ..read.facts
    };
    match first_difference(&got, want) {
        None => Ok(()),
        Some(field) => Err(Wrong::new(
            block,
            Check::Receipt,
            format!("receipt {index}: {field} differs from the verified receipt"),
        )),
    }
}

/// The first field (by JSON name) in which two receipts differ.
fn first_difference(got: &ReceiptFacts, want: &ReceiptFacts) -> Option<&'static str> {
    let fields: [(&'static str, bool); 14] = [
        (
            "transactionHash",
            got.transaction_hash == want.transaction_hash,
        ),
        ("type", got.tx_type == want.tx_type),
        (
            "from",
            got.from == want.from || got.from.is_none() || want.from.is_none(),
        ),
        ("to", got.to == want.to),
        ("status", got.receipt.status == want.receipt.status),
        (
            "cumulativeGasUsed",
            got.receipt.cumulative_gas_used == want.receipt.cumulative_gas_used,
        ),
        ("gasUsed", got.gas_used == want.gas_used),
        ("logsBloom", got.logs_bloom == want.logs_bloom),
        ("logs", got.receipt.logs == want.receipt.logs),
        (
            "effectiveGasPrice",
            got.effective_gas_price == want.effective_gas_price,
        ),
        (
            "contractAddress",
            got.contract_address == want.contract_address,
        ),
        ("blobGasUsed", got.blob_gas_used == want.blob_gas_used),
        ("blobGasPrice", got.blob_gas_price == want.blob_gas_price),
        ("l1Fee fields", got.l2_fees == want.l2_fees),
    ];
    fields.iter().find(|(_, same)| !same).map(|(name, _)| *name)
}

/// A transaction answer: its hash recomputed from its fields; with `block`, it is the
/// block's transaction at its index (and in that block).
pub fn verify_transaction(json: &[u8], block: Option<&VerifiedBlock>) -> Result<TxLocation, Wrong> {
    verify_transaction_with(json, block, &Checks::default())
}

/// [`verify_transaction`] with chosen checks (`senders` recovers the signer).
pub fn verify_transaction_with(
    json: &[u8],
    block: Option<&VerifiedBlock>,
    checks: &Checks,
) -> Result<TxLocation, Wrong> {
    let at = block.map_or(BlockRef::UNKNOWN, VerifiedBlock::block_ref);
    let t: RpcTx<'_> = rpc::parse(json).map_err(|e| Wrong::malformed(at, e))?;
    let place = || -> Result<_, BadField> {
        Ok((
            opt_u64("blockNumber", t.block_number)?,
            opt_fixed::<32>("blockHash", t.block_hash)?,
            opt_u64("transactionIndex", t.transaction_index)?,
        ))
    };
    let (number, hash, index) =
        place().map_err(|e| Wrong::malformed(at, format!("transaction {e}")))?;
    let at = BlockRef {
        number: number.or(at.number),
        hash: hash.or(at.hash),
    };
    let (tx, skipped) = rehashed(&t, at, index, checks)?;
    let location = TxLocation {
        number,
        hash,
        index,
        tx,
        skipped,
    };
    if let Some(b) = block {
        in_block(&location, b)?;
    }
    Ok(location)
}

/// The transaction's facts with its hash recomputed (and signer recovered with `senders`);
/// an unknown type is taken as claimed, and says so.
fn rehashed(
    t: &RpcTx<'_>,
    at: BlockRef,
    index: Option<u64>,
    checks: &Checks,
) -> Result<(TxFacts, Option<Skipped>), Wrong> {
    let mut buf = Vec::new();
    let read = read_tx(t, &mut buf, checks.senders)
        .map_err(|e| Wrong::malformed(at, format!("transaction {e}")))?;
    match read {
        ReadTx::Known {
            facts,
            claimed,
            signer,
        } => {
            if facts.hash != claimed {
                let detail = format!("fields hash to {}, answer claims {claimed}", facts.hash);
                return Err(Wrong::new(at, Check::TransactionHash, detail));
            }
            if let Some(signer) = signer {
                check_sender(signer, &facts, index.unwrap_or_default() as usize, at)?;
            }
            Ok((facts, None))
        }
        ReadTx::Unknown(facts) => {
            let reason = format!(
                "type {:#x} cannot be encoded: hash not recomputed",
                facts.tx_type
            );
            Ok((
                facts,
                Some(Skipped {
                    check: Check::TransactionHash,
                    reason,
                }),
            ))
        }
    }
}

/// The transaction sits in `block` at its index.
fn in_block(location: &TxLocation, block: &VerifiedBlock) -> Result<(), Wrong> {
    let at = block.block_ref();
    let position = |detail: String| {
        Err(Wrong::new(
            at,
            Check::Position,
            format!("transaction {}: {detail}", location.tx.hash),
        ))
    };
    let claimed = Claimed {
        block_hash: location.hash,
        block_number: location.number,
        ..Claimed::default()
    };
    let expected = Claimed {
        block_hash: Some(block.header.hash),
        block_number: Some(block.header.number),
        ..Claimed::default()
    };
    if let Err(e) = positions::compare(&claimed, &expected) {
        return position(e);
    }
    let (Some(index), Some(txs)) = (location.index, block.transactions.as_deref()) else {
        return Ok(());
    };
    let Some(there) = usize::try_from(index).ok().and_then(|i| txs.get(i)) else {
        return position(format!(
            "index {index}, the block has {} transactions",
            txs.len()
        ));
    };
    if there.hash != location.tx.hash {
        return position(format!("index {index} holds {} in the block", there.hash));
    }
    if there.from != location.tx.from {
        let detail = format!(
            "transaction {}: from is {}, the block's says {}",
            there.hash, location.tx.from, there.from
        );
        return Err(Wrong::new(at, Check::Sender, detail));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::verify_block;
    use crate::receipts::verify_block_receipts;
    use crate::testdata::{anvil, edit, set};
    use serde_json::json;

    fn verified() -> (VerifiedBlock, VerifiedReceipts) {
        let block = verify_block(&anvil("prague", "block.json"), &Checks::default()).unwrap();
        let set = verify_block_receipts(
            &anvil("prague", "receipts.json"),
            &block.header,
            Some(&block),
            &Checks::default(),
        )
        .unwrap();
        (block, set)
    }

    /// Receipt `i` of the block receipts fixture, alone.
    fn receipt(i: usize) -> Vec<u8> {
        let all: serde_json::Value =
            serde_json::from_slice(&anvil("prague", "receipts.json")).unwrap();
        serde_json::to_vec(&all[i]).unwrap()
    }

    #[test]
    fn a_receipt_says_where_it_lives_and_equals_the_set() {
        let (block, set) = verified();
        let json = anvil("prague", "receipt.json");
        assert_eq!(receipt_location(&json).unwrap(), (2, block.header.hash, 1));
        verify_receipt(&json, &set).unwrap();
        for i in 0..set.len() {
            verify_receipt(&receipt(i), &set).unwrap_or_else(|e| panic!("receipt {i}: {e}"));
        }
        assert_eq!(receipt_location(b"{}").unwrap_err().check, Check::Malformed);
        assert_eq!(
            receipt_location(b"null").unwrap_err().check,
            Check::Malformed
        );
    }

    #[test]
    fn a_receipt_that_differs_from_the_set_is_wrong() {
        let (_, verified_set) = verified();
        let one = receipt(2);
        let cases = [
            (set(&one, "/logs/0/data", json!("0x00")), Check::Receipt),
            (set(&one, "/gasUsed", json!("0x1")), Check::Receipt),
            (set(&one, "/status", json!("0x0")), Check::Receipt),
            (edit(&one, |v| v["logs"] = json!([])), Check::Receipt),
            (set(&one, "/logs/0/logIndex", json!("0x7")), Check::Position),
            (
                set(&one, "/blockHash", json!(format!("0x{}", "11".repeat(32)))),
                Check::Position,
            ),
            (
                set(&one, "/transactionIndex", json!("0x40")),
                Check::Position,
            ),
            (
                set(&one, "/transactionIndex", json!("0x1")),
                Check::Position,
            ),
            (set(&one, "/logsBloom", json!("0x1")), Check::Malformed),
        ];
        for (json, expected) in cases {
            assert_eq!(
                verify_receipt(&json, &verified_set).unwrap_err().check,
                expected
            );
        }
    }

    #[test]
    fn a_transaction_is_rehashed_and_found_in_its_block() {
        let (block, _) = verified();
        let json = anvil("prague", "tx.json");
        let location = verify_transaction(&json, Some(&block)).unwrap();
        assert_eq!(
            (location.number, location.hash, location.index),
            (Some(2), Some(block.header.hash), Some(1))
        );
        assert_eq!(location.tx.tx_type, 0);
        assert!(location.skipped.is_none());
        assert!(verify_transaction(&json, None).is_ok());
        let pending = edit(&json, |v| {
            for k in ["blockHash", "blockNumber", "transactionIndex"] {
                v[k] = json!(null);
            }
        });
        let location = verify_transaction(&pending, Some(&block)).unwrap();
        assert_eq!(
            (location.number, location.hash, location.index),
            (None, None, None)
        );
    }

    #[test]
    fn a_transaction_that_differs_is_wrong() {
        let (block, _) = verified();
        let json = anvil("prague", "tx.json");
        let check = |json: &[u8]| verify_transaction(json, Some(&block)).unwrap_err().check;
        assert_eq!(
            check(&set(&json, "/value", json!("0x1"))),
            Check::TransactionHash
        );
        assert_eq!(
            check(&set(&json, "/transactionIndex", json!("0x2"))),
            Check::Position
        );
        assert_eq!(
            check(&set(&json, "/transactionIndex", json!("0x9"))),
            Check::Position
        );
        assert_eq!(
            check(&set(&json, "/blockNumber", json!("0x3"))),
            Check::Position
        );
        let lie = set(
            &json,
            "/from",
            json!("0x0000000000000000000000000000000000000001"),
        );
        assert_eq!(check(&lie), Check::Sender);
        let wrong = verify_transaction_with(&lie, None, &Checks::all()).unwrap_err();
        assert_eq!(wrong.check, Check::Sender);
        assert_eq!(check(b"[]"), Check::Malformed);
        let unknown = set(&json, "/type", json!("0x7e"));
        let location = verify_transaction(&unknown, None).unwrap();
        assert_eq!(
            location.skipped.map(|s| s.check),
            Some(Check::TransactionHash)
        );
    }
}
