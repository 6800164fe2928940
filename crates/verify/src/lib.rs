//! Verifies Ethereum JSON-RPC answers: raw JSON bytes in, verdicts out. Pure: no I/O, no
//! HTTP, no async, no clock. Answers are read into borrowed serde structs of our own (hex
//! fields as `&str`, unknown fields ignored), so a bad field is named exactly, then built
//! into the alloy consensus types, which encode and hash themselves.
//!
//! # Checks, in the order they run
//! - [`verify_block`]: the header hash (keccak of the RLP header from every fork's fields:
//!   base fee, withdrawals root, blob gas, parent beacon root, requests hash) against `hash`
//!   ([`Check::HeaderHash`]); with full transactions each one built into its type (legacy with
//!   and without EIP-155, 2930, 1559, 4844, 7702), EIP-2718 encoded and hashed against its
//!   `hash` ([`Check::TransactionHash`]), optionally its signer recovered against `from`
//!   ([`Check::Sender`]), the encodings' trie against `transactionsRoot`
//!   ([`Check::TransactionsRoot`]), then each transaction's `blockHash`/`blockNumber`/
//!   `transactionIndex` ([`Check::Position`]); the withdrawals' trie against
//!   `withdrawalsRoot` ([`Check::WithdrawalsRoot`]). An unknown type (an L2's 0x7e) skips the
//!   root ([`Skipped`]), it is not a verdict.
//! - [`verify_block_receipts`]: the count against the block's transactions ([`Check::Count`]);
//!   each receipt's bloom from its logs ([`Check::ReceiptBloom`]); the receipts' trie
//!   (post-state-root and status receipts, every typed receipt) against `receiptsRoot`
//!   ([`Check::ReceiptsRoot`]); the blooms' union against the header's ([`Check::LogsBloom`]);
//!   receipt and log positions, `logIndex` consecutive from 0 across the block
//!   ([`Check::Position`]); `gasUsed` as the cumulative difference and the last cumulative
//!   as the header's `gasUsed`; with the block's transactions the hash at each position
//!   ([`Check::Position`]), `type`, `from`, `to`, `effectiveGasPrice`, `contractAddress`,
//!   `blobGasUsed`, and one `blobGasPrice` per block ([`Check::Receipt`]).
//! - [`verify_receipt`], [`verify_transaction`]: one answer against a verified set / block.
//! - [`LogsCheck`]: an `eth_getLogs` answer against verified headers (completeness from their
//!   blooms) and verified receipts ([`Check::Logs`], [`Check::LogsMissing`]).
//!
//! Content checks run before position checks, so a dropped item is reported by the root that
//! covers it, and a renumbered one by its position.
//!
//! # Cost
//! `cargo bench -p nodewatch-verify` measures on real mainnet blocks (on-CPU time of one
//! core). Keccak is about 40% of the work (hashes, two tries, blooms), JSON reading most of
//! the rest. `Checks::senders` adds one ecrecover per transaction (libsecp256k1, ~45 µs on
//! the 2.6 GHz machine the figures in the bench's header were taken on), about ten times the
//! rest of a block's verification: that is why it is off by default.
//!
//! # Layout
//! - `verdict`: [`Check`], [`BlockRef`], [`Wrong`] (the one verdict type), [`Skipped`], [`Checks`].
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
//! - `testdata` (tests only): anvil answers and helpers that tamper with one value.
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
mod verdict;

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
