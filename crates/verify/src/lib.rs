//! Verifies Ethereum JSON-RPC answers: raw JSON bytes in, verdicts out. Pure: no I/O, no
//! HTTP, no async. A block answer is checked against its own hash (every fork's header
//! fields), its transactions against the transactions root, its withdrawals against the
//! withdrawals root; a block's receipts against the verified header's receipts root and
//! logs bloom; single receipts and transactions against verified sets; `eth_getLogs`
//! answers against verified receipts, with completeness judged from header blooms.
//!
//! Built on the alloy consensus types (they encode and hash themselves): the answers are
//! read into borrowed serde structs of our own (hex fields as `&str`, unknown fields
//! ignored), so a bad field is named exactly and nothing is copied twice.
//!
//! # Layout
//! - [`verdict`]: [`Check`], [`BlockRef`], [`Wrong`] (the one verdict type), [`Skipped`], [`Checks`].
//! - `hex`: hex quantities and fixed-size values, each error naming its field.
//! - `rpc`: the borrowed serde shapes of blocks, transactions, receipts, logs, withdrawals.
//! - `header`: [`Header`] and the header hash from every fork's fields.
//! - `tx`: a transaction's consensus encoding, hash, signer and [`TxFacts`].
//! - `block`: [`verify_block`] and [`VerifiedBlock`].
//! - `facts`: [`ReceiptFacts`] and [`LogFacts`], read from receipts and logs with the
//!   positions each answer claims.
//! - `bloom`: blooms of logs, each distinct address and topic hashed once per block.
//! - `receipts`: [`verify_block_receipts`] and [`VerifiedReceipts`]: bloom, union, root.
//! - `positions`: block, transaction and log positions inside a block's receipts.
//! - `against`: receipt fields that follow from gas totals and from the transactions.
//! - `single`: one receipt or transaction: [`receipt_location`], [`verify_receipt`],
//!   [`verify_transaction`].
//! - `filter`: [`LogFilter`], an `eth_getLogs` filter (addresses, topics, bloom test).
//! - `logs`: [`LogsCheck`], the sans-IO `eth_getLogs` check the caller drives.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod against;
mod block;
mod bloom;
mod facts;
mod filter;
mod header;
mod hex;
mod logs;
mod positions;
mod receipts;
mod rpc;
mod single;
mod tx;
pub mod verdict;

pub use alloy_primitives::{Address, Bloom, B256};

pub use block::{verify_block, VerifiedBlock};
pub use facts::{LogFacts, ReceiptFacts};
pub use filter::LogFilter;
pub use header::Header;
pub use logs::{HeadersNeeded, LogsCheck};
pub use receipts::{verify_block_receipts, VerifiedReceipts};
pub use single::{
    receipt_location, verify_receipt, verify_transaction, verify_transaction_with, TxLocation,
};
pub use tx::TxFacts;
pub use verdict::{BlockRef, Check, Checks, Skipped, Wrong};

#[cfg(test)]
mod testdata;
