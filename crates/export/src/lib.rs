//! `nodewatch-export`: a drop-in replacement for ethereum-etl 2.4.2's export
//! commands whose output files are byte-identical to ethereum-etl's.
//!
//! Layers, bottom up: [`pyvalue`] (JSON values with Python semantics),
//! [`pyfmt`] and [`hexnum`] (Python-exact formatting and hex parsing),
//! [`sink`] and [`input`] (files in ethereum-etl's CSV / JSON-lines dialects),
//! [`rpc`] and [`batch`] (JSON-RPC batches with validation and retries), [`pipeline`]
//! (ordered bounded concurrency), [`mappers`] (RPC objects to rows),
//! [`jobs`] (the commands), [`outputs`] (where `stream` writes: console,
//! PostgreSQL, directories) and [`cli`] (flags and dispatch).
#![forbid(unsafe_code)]

pub mod batch;
pub mod cli;
pub mod error;
pub mod hexnum;
pub mod input;
pub mod jobs;
pub mod mappers;
pub mod outputs;
pub mod pipeline;
pub mod progress;
pub mod pyfmt;
pub mod pyvalue;
pub mod rpc;
pub mod sink;

pub use error::{ExportError, Result};
