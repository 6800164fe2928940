//! nodewatch: a health-checking JSON-RPC failover proxy for Ethereum ETL exports.
//!
//! ethereum-etl points at one node; when that node dies or falls behind, the export fails
//! or silently writes gaps. nodewatch sits in between on `127.0.0.1:8545`, keeps a ranked
//! list of upstream nodes, probes each, and sends every request — single or batch — to the
//! best healthy one, failing over within the same client request.
//!
//! # Layout
//!
//! The request path, in the order a request travels:
//!
//! - [`server`]: accepts connections on the proxy and admin listeners, hands them to the
//!   services, drains on shutdown.
//! - [`proxy`]: HTTP in; parse with [`jsonrpc`]; ask [`router::select`] for candidates; forward
//!   with a deadline through [`upstream::Upstream::send`]; fail over on [`error`]s that say
//!   so; answer.
//! - [`jsonrpc`]: the envelope only: ids rewritten to positions upstream, `params`/`result`
//!   kept raw and passed through byte for byte; short or mismatched batch answers rejected.
//! - [`router`]: the pure candidate order (in sync, lagging, unknown, unhealthy; by rank).
//!
//! The background, off the request path:
//!
//! - [`upstream::monitor`]: probes every upstream ([`upstream::probe`]) each interval, feeds
//!   probe results and passive failures into the pure state machine [`upstream::health`],
//!   and publishes an immutable [`upstream::Snapshot`] through `ArcSwap`, so requests never
//!   take a lock.
//! - [`admin`]: `/healthz`, `/readyz`, `/status`, `/metrics` ([`metrics`]).
//!
//! Start-up: [`config`] merges the TOML file, `NODEWATCH__*` environment and CLI, and
//! validates once; the `nodewatch` binary is only that plus [`server::run`].
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod admin;
pub mod blocks;
pub mod config;
pub mod error;
pub mod filters;
pub mod forward;
#[cfg(test)]
mod fuzzing;
pub mod jsonrpc;
pub mod metrics;
pub mod policy;
pub mod proxy;
pub mod router;
pub mod server;
pub mod upstream;
