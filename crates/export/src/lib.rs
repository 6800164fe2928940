//! `nodewatch-export`: ethereum-etl 2.4.2's export commands, flags and output files,
//! byte-identical to ethereum-etl's, much faster. It talks JSON-RPC over HTTP(S) through
//! the shared client (`nodewatch-http`), usually to a `nodewatch` sidecar.
//!
//! # Layout
//!
//! Bottom up:
//!
//! - [`pyvalue`] (JSON values with Python semantics), [`pyfmt`] and [`hexnum`]
//!   (Python-exact formatting and hex parsing);
//! - [`sink`] and [`input`]: files in ethereum-etl's CSV / JSON-lines dialects;
//! - [`batch`] (what a batch is and how its answer is matched, ethereum-etl's retry rules)
//!   and [`rpc`] (the batch client on `nodewatch-http`: the providers of `-p a,b`, each a
//!   `Node`, and the retries that move to the next one);
//! - [`verified`]: what the exporter trusts: nodewatch-verify's checks on the raw JSON of
//!   each answer before it is mapped (a wrong answer is asked again of the next provider),
//!   and the verified headers and receipt sets of recent blocks (`--no-verify` turns it off);
//! - [`pipeline`]: ordered, bounded concurrency, and the jobs' one way of writing
//!   batches in order; [`progress`]: the progress bar;
//! - [`mappers`]: RPC objects to ethereum-etl's rows;
//! - [`jobs`]: the commands (blocks, receipts, token transfers, extract, `stream`), and
//!   `jobs::block_receipts`: a block's verified receipts from one provider (one
//!   `eth_getBlockReceipts`, or the per-transaction fallback);
//! - [`round`]: what one `stream` round holds, and [`outputs`]: where `stream` writes it
//!   (console, PostgreSQL with TLS as libpq's `sslmode`, a directory);
//! - [`cli`]: flags and dispatch; [`error`]: typed errors and their exit codes.
//!
//! The binary (`src/main.rs`) only parses the command line and maps errors to exit codes.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// `unreachable_pub` (the other crates' second root lint) is not on yet: ~230 `pub` items in
// the `pub(crate)` modules would become `pub(crate)`.

pub(crate) mod batch;
pub mod cli;
pub mod error;
pub(crate) mod hexnum;
pub(crate) mod input;
pub(crate) mod jobs;
pub(crate) mod mappers;
pub(crate) mod outputs;
pub(crate) mod pipeline;
pub(crate) mod progress;
pub(crate) mod pyfmt;
pub(crate) mod pyvalue;
pub(crate) mod round;
pub(crate) mod rpc;
pub(crate) mod sink;
pub(crate) mod verified;

pub use error::{ExportError, Result};
