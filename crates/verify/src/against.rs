//! Receipt fields that follow from elsewhere: `gasUsed` from the cumulative gas (and the
//! header's gas used), and — given the block's full transactions — the transaction hash at
//! each position, `from`/`to`, `effectiveGasPrice`, `contractAddress`, `blobGasUsed`.

use crate::facts::ReceiptFacts;
use crate::header::Header;
use crate::tx::TxFacts;
use crate::verdict::{Check, Wrong};

/// `gasUsed` is the cumulative difference; the last cumulative is the header's gas used.
pub(crate) fn check_gas(receipts: &[ReceiptFacts], header: &Header) -> Result<(), Wrong> {
    let wrong = |detail: String| Err(Wrong::new(header.block_ref(), Check::Receipt, detail));
    let mut before = 0u64;
    for (i, r) in receipts.iter().enumerate() {
        let cumulative = r.receipt.cumulative_gas_used;
        let Some(used) = cumulative.checked_sub(before) else {
            return wrong(format!(
                "receipt {i}: cumulativeGasUsed {cumulative} below the previous {before}"
            ));
        };
        if used != r.gas_used {
            return wrong(format!(
                "receipt {i}: gasUsed is {}, cumulative difference is {used}",
                r.gas_used
            ));
        }
        before = cumulative;
    }
    if before != header.gas_used {
        return wrong(format!(
            "receipts use {before} gas, header gasUsed is {}",
            header.gas_used
        ));
    }
    Ok(())
}

/// Each receipt agrees with the block's transaction at its position.
pub(crate) fn check_transactions(
    receipts: &[ReceiptFacts],
    txs: &[TxFacts],
    header: &Header,
) -> Result<(), Wrong> {
    let block = header.block_ref();
    let blob_price = receipts.iter().find_map(|r| r.blob_gas_price);
    for (i, (r, tx)) in receipts.iter().zip(txs).enumerate() {
        if r.transaction_hash != tx.hash {
            let detail = format!(
                "receipt {i}: transactionHash is {}, the block's transaction {i} is {}",
                r.transaction_hash, tx.hash
            );
            return Err(Wrong::new(block, Check::Position, detail));
        }
        against_tx(r, tx, header)
            .map_err(|e| Wrong::new(block, Check::Receipt, format!("receipt {i}: {e}")))?;
        if r.blob_gas_price.is_some() && r.blob_gas_price != blob_price {
            let detail = format!(
                "receipt {i}: blobGasPrice {:?} differs from the block's {:?}",
                r.blob_gas_price, blob_price
            );
            return Err(Wrong::new(block, Check::Receipt, detail));
        }
    }
    Ok(())
}

/// One receipt against its transaction.
pub(crate) fn against_tx(r: &ReceiptFacts, tx: &TxFacts, header: &Header) -> Result<(), String> {
    if r.tx_type != tx.tx_type {
        return Err(format!(
            "type is {:#x}, the transaction's is {:#x}",
            r.tx_type, tx.tx_type
        ));
    }
    if let Some(from) = r.from.filter(|f| *f != tx.from) {
        return Err(format!("from is {from}, the transaction's is {}", tx.from));
    }
    if let Some(to) = r.to.filter(|to| *to != tx.to) {
        return Err(format!("to is {to:?}, the transaction's is {:?}", tx.to));
    }
    let expected_price = tx.effective_gas_price(header.base_fee);
    if let (Some(got), Some(want)) = (r.effective_gas_price, expected_price) {
        if got != want {
            return Err(format!(
                "effectiveGasPrice is {got}, the transaction and base fee give {want}"
            ));
        }
    }
    match (tx.created_address(), r.contract_address) {
        (Some(want), Some(got)) if got != want => {
            return Err(format!(
                "contractAddress is {got}, sender and nonce give {want}"
            ));
        }
        (Some(want), None) if r.status() == Some(true) => {
            return Err(format!(
                "contractAddress is null, sender and nonce give {want}"
            ));
        }
        (None, Some(got)) => return Err(format!("contractAddress is {got} for a call")),
        _ => {}
    }
    if let Some(got) = r.blob_gas_used.filter(|_| tx.tx_type == 3) {
        if got != tx.blob_gas() {
            return Err(format!(
                "blobGasUsed is {got}, {} blobs use {}",
                tx.blob_count,
                tx.blob_gas()
            ));
        }
    }
    Ok(())
}
