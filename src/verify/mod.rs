//! Verified data on the request path: every block, transaction, receipt and log answer is
//! checked against its block header (the checks are the `nodewatch-verify` crate's) before
//! [`crate::forward`] keeps it.
//!
//! [`judge`] takes the answers one forwarding round kept and returns a [`Verdict`] for each:
//! blocks and transactions are checked against themselves (no extra call); receipts against
//! their block's verified receipt set, block receipts against the verified header, logs
//! against the verified receipts of every block whose header bloom may match the filter
//! (which also proves no block is missing). What they are checked against comes from the
//! [`cache::VerifiedCache`] or is asked of the upstreams through the engine (`context`,
//! behind the [`Fetch`] trait the engine implements), itself verified on the way.
//!
//! - [`subject`]: which calls are verified and what each asked for;
//! - `context`: the headers and receipt sets answers are checked against;
//! - `judge`: the verdicts;
//! - [`cache`]: the bounded cache of verified headers and receipt sets;
//! - [`flight`]: one fetch of a block's receipt set at a time (the others wait for it).

pub mod cache;
mod context;
pub mod flight;
mod judge;
pub mod subject;

use nodewatch_verify::{Skipped, Wrong};

pub use context::Fetch;
pub use judge::{judge, Item, Verifier};

/// What verification says of one answer.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Every check that applies passed; `skipped` names the ones that could not run.
    Right {
        /// Checks that could not run on this answer (the rest passed).
        skipped: Vec<Skipped>,
    },
    /// The answer is wrong: the upstream that gave it is to blame.
    Wrong(Wrong),
    /// What the answer is checked against could not be had (every upstream failed to give
    /// it): the answer is not served, and no upstream is blamed.
    Unverifiable(String),
}

impl Verdict {
    /// A right answer with every check run.
    pub const RIGHT: Verdict = Verdict::Right {
        skipped: Vec::new(),
    };
}
