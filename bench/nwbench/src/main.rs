//! `nwbench`: the Rust helpers behind `make bench` (driven by `bench/bench.py`).
//!
//! - `chain`: mines a benchmark chain on an anvil node (many blocks with a few transfers
//!   each, then a few "big" blocks with hundreds of transfers for large-body requests).
//! - `fetch`: the bare parallel batch fetch — the same `eth_getBlockByNumber(n, true)` batches
//!   that `ethereumetl export_blocks_and_transactions` sends, with nothing else done: the
//!   limit set by the node.
//! - `replay`: a replay upstream — blocks recorded from a node once, then served from memory
//!   for any block number (block `n` is recorded block `n % recorded`, renumbered), on one or
//!   more ports.
//! - `failover`: a closed-loop load that kills (or stops) the primary node mid-run and
//!   reports when the backup first answered, what the in-flight requests paid, and failures.
//! - `limiter`: a paid provider's rate limit (a token bucket of calls per second, HTTP 429
//!   over it) in front of a node: the tests' own `nodewatch_testkit::limiter`, logging the
//!   calls it answered and the requests it refused each second.
//!
//! Every command prints one JSON object on stdout (the `replay` server prints `ready` once it
//! listens; the `limiter` prints `ready <url>`, then answers commands on stdin) and logs to
//! stderr.

mod chain;
mod failover;
mod fetch;
mod limiter;
mod replay;
mod rpc;

use clap::{Parser, Subcommand};

/// Benchmark helpers for nodewatch (see bench/bench.py).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Mine the benchmark chain on an anvil node (idempotent: a built chain is left alone).
    Chain(chain::Args),
    /// Bare parallel batch fetch of blocks with full transactions.
    Fetch(fetch::Args),
    /// Serve recorded blocks from memory (replay upstream).
    Replay(replay::Args),
    /// Closed-loop load across a primary kill/stop; reports failover figures.
    Failover(failover::Args),
    /// A rate-limited provider in front of a node; logs per-second counts.
    Limiter(limiter::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let threads = match &cli.command {
        Command::Replay(args) => args.threads,
        Command::Fetch(args) => args.threads,
        _ => 2,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Chain(args) => chain::run(args).await,
            Command::Fetch(args) => fetch::run(args).await,
            Command::Replay(args) => replay::run(args).await,
            Command::Failover(args) => failover::run(args).await,
            Command::Limiter(args) => limiter::run(args).await,
        }
    })
}

/// Peak resident set size of this process in KiB (VmHWM), 0 if unknown.
pub(crate) fn max_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
