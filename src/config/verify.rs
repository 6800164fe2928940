//! The `[verify]` section: which answers nodewatch checks against their block header before
//! it serves them (the checks themselves live in the `nodewatch-verify` crate), what each
//! check costs, and how long an upstream that answers wrong data is kept out.

use std::time::Duration;

use serde::Deserialize;

/// Whether answers are verified at all.
pub const DEFAULT_VERIFY_ENABLED: bool = true;
/// Block hash from the header fields (no extra upstream call; ~2 µs per block).
pub const DEFAULT_VERIFY_HEADER: bool = true;
/// Transaction hashes and the transactions root of full blocks (no extra call).
pub const DEFAULT_VERIFY_TRANSACTIONS: bool = true;
/// The withdrawals root (no extra call).
pub const DEFAULT_VERIFY_WITHDRAWALS: bool = true;
/// Receipts against the receipts root: one `eth_getBlockReceipts` and one header per block
/// not yet verified (cached), for every receipt answer.
pub const DEFAULT_VERIFY_RECEIPTS: bool = true;
/// `eth_getLogs` against the verified receipts of every block whose header bloom may match
/// the filter, and completeness over the range: the headers of the range (one batch) and the
/// receipts of matching blocks (cached).
pub const DEFAULT_VERIFY_LOGS: bool = true;
/// Senders recovered from the signatures (one ecrecover per transaction): off by default,
/// it is the one check that costs more CPU than parsing the block.
pub const DEFAULT_VERIFY_SENDERS: bool = false;
/// Bytes of verified headers and receipt sets kept to verify later answers without asking
/// an upstream again.
pub const DEFAULT_VERIFY_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Wrong answers from one upstream, within `quarantine_window`, that take it out of rotation.
pub const DEFAULT_QUARANTINE_AFTER: u32 = 3;
/// The window over which wrong answers are counted.
pub const DEFAULT_QUARANTINE_WINDOW: Duration = Duration::from_secs(60);
/// How long an upstream that answered wrong data repeatedly is used only as a last resort.
pub const DEFAULT_QUARANTINE_FOR: Duration = Duration::from_secs(300);
/// The widest `eth_getLogs` block range whose completeness is checked; wider ranges have
/// each log checked against its block but not the blocks without logs.
pub const DEFAULT_MAX_LOG_RANGE: u64 = 2_000;

/// `[verify]`: every block, transaction, receipt and log answer checked against its block
/// header before it is served. A wrong answer is node trouble: the call goes to the next
/// candidate, the upstream is counted (`nodewatch_wrong_answers_total`) and, after
/// `quarantine_after` wrong answers within `quarantine_window`, used only as a last resort for
/// `quarantine_for`. A call no upstream answers correctly gets a JSON-RPC error naming the
/// block and the check, never the wrong data.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct VerifyConfig {
    /// Verify at all.
    pub enabled: bool,
    /// Block hash from the header fields.
    pub header: bool,
    /// Transaction hashes and transactions root.
    pub transactions: bool,
    /// Withdrawals root.
    pub withdrawals: bool,
    /// Receipts against the receipts root.
    pub receipts: bool,
    /// Logs against the verified receipts, and the completeness of a range.
    pub logs: bool,
    /// Senders recovered from signatures.
    pub senders: bool,
    /// Bytes of verified headers and receipt sets kept.
    pub cache_bytes: usize,
    /// Wrong answers within the window that quarantine an upstream.
    pub quarantine_after: u32,
    /// The window wrong answers are counted over.
    #[serde(with = "humantime_serde")]
    pub quarantine_window: Duration,
    /// How long a quarantine lasts.
    #[serde(with = "humantime_serde")]
    pub quarantine_for: Duration,
    /// Widest `eth_getLogs` range whose completeness is checked.
    pub max_log_range: u64,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            enabled: DEFAULT_VERIFY_ENABLED,
            header: DEFAULT_VERIFY_HEADER,
            transactions: DEFAULT_VERIFY_TRANSACTIONS,
            withdrawals: DEFAULT_VERIFY_WITHDRAWALS,
            receipts: DEFAULT_VERIFY_RECEIPTS,
            logs: DEFAULT_VERIFY_LOGS,
            senders: DEFAULT_VERIFY_SENDERS,
            cache_bytes: DEFAULT_VERIFY_CACHE_BYTES,
            quarantine_after: DEFAULT_QUARANTINE_AFTER,
            quarantine_window: DEFAULT_QUARANTINE_WINDOW,
            quarantine_for: DEFAULT_QUARANTINE_FOR,
            max_log_range: DEFAULT_MAX_LOG_RANGE,
        }
    }
}

impl VerifyConfig {
    /// The checks to run, as the verification crate takes them.
    pub fn checks(&self) -> nodewatch_verify::Checks {
        nodewatch_verify::Checks {
            header: self.header,
            transactions: self.transactions,
            withdrawals: self.withdrawals,
            receipts: self.receipts,
            logs: self.logs,
            senders: self.senders,
        }
    }
}
