//! Positions inside a block's receipts: each receipt's `blockHash`, `blockNumber` and
//! `transactionIndex`; each log's `logIndex` (consecutive from 0 across the block) and its
//! `blockHash`, `blockNumber`, `transactionHash` and `transactionIndex`.

use crate::facts::{Claimed, ReadReceipt};
use crate::header::Header;
use crate::verdict::{Check, Checks, Wrong};

/// Checks every claimed position and sets each receipt's verified first log index.
pub(crate) fn check_block(
    read: &mut [ReadReceipt],
    header: &Header,
    checks: &Checks,
) -> Result<(), Wrong> {
    let mut next_log = 0u64;
    for (i, r) in read.iter_mut().enumerate() {
        let index = i as u64;
        if checks.receipts {
            let expected = Claimed {
                transaction_index: Some(index),
                ..expected_block(header)
            };
            compare(&r.at, &expected).map_err(|e| wrong(header, format!("receipt {i}: {e}")))?;
        }
        r.facts.first_log_index = next_log;
        if checks.logs {
            let expected = Claimed {
                transaction_hash: Some(r.facts.transaction_hash),
                transaction_index: Some(index),
                ..expected_block(header)
            };
            for (j, at) in r.log_at.iter().enumerate() {
                let expected = Claimed {
                    log_index: Some(next_log + j as u64),
                    ..expected
                };
                if at.log_index.is_none() {
                    return Err(Wrong::malformed(
                        header.block_ref(),
                        format!("receipt {i} log {j}: no logIndex"),
                    ));
                }
                compare(at, &expected)
                    .map_err(|e| wrong(header, format!("receipt {i} log {j}: {e}")))?;
            }
        }
        next_log += r.log_at.len() as u64;
    }
    Ok(())
}

/// The block part of the expected positions.
fn expected_block(header: &Header) -> Claimed {
    Claimed {
        block_hash: Some(header.hash),
        block_number: Some(header.number),
        ..Claimed::default()
    }
}

fn wrong(header: &Header, detail: String) -> Wrong {
    Wrong::new(header.block_ref(), Check::Position, detail)
}

/// Compares each position the answer states with the expected one (absent ones pass).
pub(crate) fn compare(got: &Claimed, expected: &Claimed) -> Result<(), String> {
    fn one<T: PartialEq + std::fmt::Display>(
        name: &str,
        got: Option<T>,
        want: Option<T>,
    ) -> Result<(), String> {
        match (got, want) {
            (Some(g), Some(w)) if g != w => Err(format!("{name} is {g}, expected {w}")),
            _ => Ok(()),
        }
    }
    one("blockHash", got.block_hash, expected.block_hash)?;
    one("blockNumber", got.block_number, expected.block_number)?;
    one(
        "transactionHash",
        got.transaction_hash,
        expected.transaction_hash,
    )?;
    one(
        "transactionIndex",
        got.transaction_index,
        expected.transaction_index,
    )?;
    one("logIndex", got.log_index, expected.log_index)
}
