//! nodewatch: a health-checking JSON-RPC failover proxy for Ethereum ETL exports.
//!
//! ethereum-etl points at one node; when that node dies or falls behind, the export fails
//! or silently writes gaps. nodewatch sits in between on `127.0.0.1:8545`, keeps a ranked
//! list of upstream nodes, probes each, and sends every request — single or batch — to the
//! best healthy one, failing over within the same client request.
//!
//! # Layout
//!
//! This crate is the proxy; the exporter (`crates/export`), the HTTP client both use
//! (`crates/http`, `nodewatch-http`), the verification both use (`crates/verify`,
//! `nodewatch-verify`: pure, no I/O) and the test toolkit (`crates/testkit`) are crates of
//! their own in the same workspace.
//!
//! The request path, in the order a request travels:
//!
//! - [`server`]: accepts connections on the proxy and admin listeners, hands each to the
//!   services (`server::conn`: first-byte and idle bounds, connection slots), client ones
//!   on the serving threads, each with a runtime of its own and the fewest connections
//!   gets the next (`server::threads`, `proxy.threads`); drains on shutdown.
//! - [`proxy`]: HTTP in; parse with [`jsonrpc`]; deny by [`policy`]; answer filter calls from
//!   [`filters`]; hand the rest to [`forward`]; merge the answers in request order into a
//!   [`body`] of chunks that shares the upstream answers' bytes instead of copying them.
//! - [`forward`]: per call, the block it needs ([`blocks`]), what its name says ([`method`]:
//!   cost class, whether it may be hedged) and its candidate order ([`router::select`]);
//!   rounds of grouped upstream requests through [`upstream::Upstream::send_within`] (the
//!   shared `nodewatch-http` client; admission by [`upstream::limit`], guarded by
//!   [`upstream::breaker`]; each answer's buffer held in the in-flight answer [`budget`])
//!   until each call has a trustworthy answer; retries drawn from a retry budget; typed
//!   [`error`]s say what is retryable. It reads the reloadable [`settings`].
//! - [`verify`]: every kept block, transaction, receipt and log answer checked against its
//!   block header (the `nodewatch-verify` crate's checks) before it is served; what it is
//!   checked against comes from a bounded cache of verified headers and receipt sets or is
//!   fetched through the engine. A wrong answer moves on like node trouble, is counted and
//!   may quarantine its upstream ([`upstream::wrong`]); it is never served.
//! - [`cache`]: the finality-aware answer cache: calls whose answers can no longer change
//!   (final blocks, blocks by hash, the chain id) are answered from it before the first
//!   round, and the final answers upstreams gave and verification passed are kept. It and
//!   the verification cache keep their entries in a [`bounded`] map (bytes, oldest out).
//! - [`jsonrpc`]: the envelope only: ids rewritten to positions upstream, `params`/`result`
//!   kept raw and passed through byte for byte; short or mismatched batch answers rejected.
//! - [`router`]: the pure candidate order (healthy, unknown, unhealthy, breaker-open or
//!   quarantined; has the block, or in sync; by rank).
//! - [`shared`]: the Redis a fleet of sidecars shares (`[redis]`): each `budget_key`'s
//!   ceiling and month reserved there by one script on Redis's clock, and final answers;
//!   bounded by `redis.timeout`, and when Redis fails the sidecar serves on its own for
//!   `redis.retry` (the local pace and memory cache), saying so.
//!
//! The background, off the request path:
//!
//! - [`upstream::monitor`]: probes every upstream ([`upstream::probe`]) each interval, feeds
//!   probe results and passive failures into the pure state machine [`upstream::health`],
//!   and publishes an immutable [`upstream::Snapshot`] through `ArcSwap`, so requests never
//!   take a lock. Probes go through [`upstream::Upstream::send`] (no answer budget). Every
//!   few probe rounds a finality round ([`upstream::finality`]) sets the answer cache's
//!   final line from the upstreams' `finalized` blocks and purges the cache after a reorg
//!   deeper than it.
//! - [`admin`]: `/healthz`, `/readyz`, `/status`, `/metrics` ([`metrics`]), and for people
//!   the HTML status page at `/` and `/history`.
//!
//! Status at a glance, off the request path:
//!
//! - [`status`]: the upstream table shared by `nodewatch status`, the admin page and
//!   `make demo` ([`status::table`], [`status::page`]); the head history sampled in the
//!   background ([`status::history`]); the admin client behind `nodewatch status` and
//!   `nodewatch healthcheck` ([`status::client`]).
//!
//! Start-up: [`config`] merges the TOML file, `NODEWATCH__*` environment and CLI, and
//! validates once into a [`config::ValidConfig`] (parsed URLs and headers, CA certificates,
//! the compiled [`policy`]) that the upstreams and the engine are built from; the `nodewatch`
//! binary is only that plus [`server::run_with_handle`]. A reload ([`reload::Reloader`], on
//! SIGHUP or `POST /reload`) re-reads it, swaps the request-path [`settings`] and hands the
//! monitor the new upstream list. [`quantity`] is the one hex-quantity parser; `sync` the one
//! lock helper (a poisoned lock is taken anyway); `fuzzing` (tests only) drives the property
//! tests.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
// `std::time::Instant` is banned here (clippy.toml): timing is tested on tokio's paused clock.
#![warn(clippy::disallowed_types, clippy::disallowed_methods)]

pub mod admin;
pub mod blocks;
pub mod body;
pub mod bounded;
pub mod budget;
pub mod cache;
pub mod config;
pub mod error;
pub mod filters;
pub mod forward;
#[cfg(test)]
mod fuzzing;
pub mod jsonrpc;
pub mod method;
pub mod metrics;
pub mod policy;
pub mod proxy;
pub mod quantity;
pub mod reload;
pub mod router;
pub mod server;
pub mod settings;
pub mod shared;
pub mod status;
mod sync;
pub mod upstream;
pub mod verify;
