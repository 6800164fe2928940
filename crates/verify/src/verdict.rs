//! The verdict vocabulary: which check failed ([`Check`]), about which block ([`BlockRef`]),
//! the one error type ([`Wrong`]), the checks that could not run ([`Skipped`]) and the
//! switches that choose which checks run ([`Checks`]).

use std::fmt;

use alloy_primitives::B256;

/// Which check failed. [`Check::label`] is the metric label (snake_case, stable);
/// `Display` gives the human words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Check {
    /// The answer is not the JSON shape expected, or a field is not valid hex / a quantity.
    Malformed,
    /// The header's fields do not hash to the block hash it claims.
    HeaderHash,
    /// A transaction's fields do not hash to the hash it claims.
    TransactionHash,
    /// The transactions do not build the header's transactions root.
    TransactionsRoot,
    /// A transaction's `from` is not the signer its signature recovers to.
    Sender,
    /// The withdrawals do not build the header's withdrawals root.
    WithdrawalsRoot,
    /// The receipts do not build the header's receipts root.
    ReceiptsRoot,
    /// A receipt's logs bloom is not the bloom of its logs.
    ReceiptBloom,
    /// The header's logs bloom is not the union of its receipts' blooms.
    LogsBloom,
    /// A count disagrees (receipts vs transactions, for example).
    Count,
    /// A position field (block hash, number, transaction index, log index) is not where the item sits.
    Position,
    /// A receipt field disagrees with the transaction or with the verified receipt.
    Receipt,
    /// An `eth_getLogs` answer holds a log that differs from the verified one, or an extra log.
    Logs,
    /// An `eth_getLogs` answer lacks a log that the verified receipts hold.
    LogsMissing,
}

impl Check {
    /// Every check, in declaration order (to pre-register metric labels).
    pub const ALL: &'static [Check] = &[
        Check::Malformed,
        Check::HeaderHash,
        Check::TransactionHash,
        Check::TransactionsRoot,
        Check::Sender,
        Check::WithdrawalsRoot,
        Check::ReceiptsRoot,
        Check::ReceiptBloom,
        Check::LogsBloom,
        Check::Count,
        Check::Position,
        Check::Receipt,
        Check::Logs,
        Check::LogsMissing,
    ];

    /// The metric label: snake_case and stable.
    pub fn label(self) -> &'static str {
        match self {
            Check::Malformed => "malformed",
            Check::HeaderHash => "header_hash",
            Check::TransactionHash => "transaction_hash",
            Check::TransactionsRoot => "transactions_root",
            Check::Sender => "sender",
            Check::WithdrawalsRoot => "withdrawals_root",
            Check::ReceiptsRoot => "receipts_root",
            Check::ReceiptBloom => "receipt_bloom",
            Check::LogsBloom => "logs_bloom",
            Check::Count => "count",
            Check::Position => "position",
            Check::Receipt => "receipt",
            Check::Logs => "logs",
            Check::LogsMissing => "logs_missing",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label().replace('_', " "))
    }
}

/// The block a verdict is about, as far as it is known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockRef {
    /// The block number, when the answer said it (or the caller knew it).
    pub number: Option<u64>,
    /// The block hash, when the answer said it (or the caller knew it).
    pub hash: Option<B256>,
}

impl BlockRef {
    /// A block nothing is known about.
    pub const UNKNOWN: BlockRef = BlockRef {
        number: None,
        hash: None,
    };

    /// A block known by number and hash.
    pub fn new(number: u64, hash: B256) -> Self {
        BlockRef {
            number: Some(number),
            hash: Some(hash),
        }
    }
}

impl fmt::Display for BlockRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.number, self.hash) {
            (Some(n), Some(h)) => write!(f, "block {n} ({h})"),
            (Some(n), None) => write!(f, "block {n}"),
            (None, Some(h)) => write!(f, "block {h}"),
            (None, None) => f.write_str("unknown block"),
        }
    }
}

/// An answer that is wrong: the block, the check that failed and the evidence
/// (one line, expected vs got). Reads "block 17034870 (0x…): header hash check failed: …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{block}: {check} check failed: {detail}")]
pub struct Wrong {
    /// The block the answer was about, as far as known.
    pub block: BlockRef,
    /// Which check failed (the metric label).
    pub check: Check,
    /// The evidence, one line: which item and field, expected vs got.
    pub detail: String,
}

impl Wrong {
    /// A verdict for `block`.
    pub fn new(block: BlockRef, check: Check, detail: impl Into<String>) -> Self {
        Wrong {
            block,
            check,
            detail: detail.into(),
        }
    }

    /// A `Malformed` verdict.
    pub fn malformed(block: BlockRef, detail: impl Into<String>) -> Self {
        Wrong::new(block, Check::Malformed, detail)
    }
}

/// A check that could not run (the rest still ran), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The check that did not run.
    pub check: Check,
    /// Why, for the log line (e.g. "transaction 3: unknown type 0x7e").
    pub reason: String,
}

/// Which checks run. All are on by default except `senders`: recovering a signer costs
/// an ecrecover per transaction, which is several times the cost of every other check of a
/// block together (see the crate's bench, `FIGURE verify_block_senders`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checks {
    /// Header hash from the header's fields.
    pub header: bool,
    /// Each transaction's hash from its fields, its positions, the transactions root.
    pub transactions: bool,
    /// The withdrawals root from the withdrawals.
    pub withdrawals: bool,
    /// Receipts root, receipt blooms, header bloom, counts, positions, receipt fields.
    pub receipts: bool,
    /// Each log's positions (log index, block, transaction) inside a block's receipts.
    pub logs: bool,
    /// Each transaction's `from` against the signer its signature recovers to (costly).
    pub senders: bool,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            header: true,
            transactions: true,
            withdrawals: true,
            receipts: true,
            logs: true,
            senders: false,
        }
    }
}

impl Checks {
    /// Every check, `senders` included.
    pub fn all() -> Self {
        Checks {
            senders: true,
            ..Checks::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_snake_case_and_display_is_words() {
        let mut seen = std::collections::HashSet::new();
        for check in Check::ALL {
            let label = check.label();
            assert!(seen.insert(label), "duplicate label {label}");
            assert!(
                label.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{label}"
            );
            assert!(!check.to_string().contains('_'));
        }
        assert_eq!(seen.len(), 14);
        assert_eq!(Check::TransactionsRoot.to_string(), "transactions root");
        assert_eq!(Check::HeaderHash.to_string(), "header hash");
    }

    #[test]
    fn block_ref_display_leaves_unknown_parts_out() {
        let hash = B256::repeat_byte(0xab);
        assert_eq!(
            BlockRef::new(17, hash).to_string(),
            format!("block 17 ({hash})")
        );
        assert_eq!(
            BlockRef {
                number: Some(5),
                hash: None
            }
            .to_string(),
            "block 5"
        );
        assert_eq!(BlockRef::UNKNOWN.to_string(), "unknown block");
        let wrong = Wrong::new(
            BlockRef {
                number: Some(5),
                hash: None,
            },
            Check::Count,
            "x",
        );
        assert_eq!(wrong.to_string(), "block 5: count check failed: x");
    }

    #[test]
    fn senders_are_off_by_default() {
        let checks = Checks::default();
        assert!(!checks.senders);
        assert!(checks.header && checks.transactions && checks.receipts && checks.logs);
        assert!(Checks::all().senders);
    }
}
