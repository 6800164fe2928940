//! nodewatch-testkit: the one toolkit behind the proxy's and the exporter's end-to-end tests
//! (and `make demo`). A dev-dependency only; it never ships.
//!
//! # Layout
//!
//! * [`tools`]: where anvil, ethereum-etl and PostgreSQL live, the "skip locally, fail in
//!   CI" policy, and the one environment scrub every child program runs with.
//! * [`rpc`]: the one HTTP/JSON-RPC client (per-request helpers, and a pooled [`rpc::Client`]
//!   for h2, streamed bodies and load).
//! * [`anvil`]: anvil dev nodes as child processes (free port, kill, state-preserving restart).
//! * [`chain`]: a deterministic ~30-block chain with every transaction kind ethereum-etl reads.
//! * [`etl`]: runs the real `ethereumetl`, builds the export command lines both programs
//!   share, and compares output files.
//! * [`export`]: the exporter fixture chain and the one `nodewatch-export` runner.
//! * [`scripted`]: the one scripted upstream (a closure per request; HTTP/1.1 and h2, TLS
//!   optional, requests counted and recorded) that every test server below is a use of.
//! * [`contracts`]: hand-assembled token, router and factory contracts for the trace,
//!   contract and token tests; [`reference`]: ethereum-etl on Python 3.10 for them.
//! * [`fault`]: scripted misbehaving upstreams; [`tls`]: an HTTPS upstream with a private CA.
//! * [`limiter`]: a paid provider's rate limit in front of a node (a token bucket of calls per
//!   second, batch items billed one each; HTTP 429 `Retry-After: 1` or -32005 over it).
//! * `postgres` (feature `postgres`, so the proxy's test tree has no PostgreSQL client): a
//!   throwaway PostgreSQL 15 server on a loopback port.
//! * [`redis`]: a throwaway `redis-server` on a loopback port (stopped and restarted on the
//!   same port for the "Redis down" tests).
//! * [`binary`]: the one launcher of the `nodewatch` binary (RSS, logs, subcommands) and the
//!   signal helpers for every child; [`raw`]: raw HTTP/1.1 over TCP.
//! * [`relay`]: the soak's seeded fault relay in front of an anvil node.
//! * [`wrong`]: the wrong-data relay in front of an anvil node (heads and headers true, the
//!   data wrong in a mode switched at run time), for the verified-data tests.
//! * [`poll`]: `wait_for` a condition with a deadline, instead of sleeping.
//! * [`wheels`]: the wheels `make wheel` writes (found, checked fresh, installed with pip).
//!
//! Everything here talks to 127.0.0.1 only.
// A dev-dependency only: every module says its job (tests/layout.rs), and its items are read
// beside the tests that use them, so undocumented fields and getters are allowed here.
#![allow(missing_docs)]
#![warn(unreachable_pub)]

pub mod anvil;
pub mod binary;
pub mod chain;
pub mod contracts;
pub mod etl;
pub mod export;
pub mod fault;
pub mod limiter;
pub mod poll;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod raw;
pub mod redis;
pub mod reference;
pub mod relay;
pub mod rpc;
pub mod scripted;
pub mod tls;
pub mod tools;
pub mod wheels;
pub mod wrong;

use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, release it).
///
/// Another process can take it before you bind it again; prefer letting the program under test
/// bind port 0 itself when it can. (The [`anvil::Anvil`] fixture does not use this: it starts
/// anvil on port 0 and reads the port it actually bound.)
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// The workspace root (where `.tools/`, `deploy/` and `config/` are).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Cargo's profile directory of the running test or example (`target/debug`): the test
/// binary lives in its `deps/`, an example in its `examples/`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the running executable's path");
    let dir = exe.parent().expect("an executable has a directory");
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("deps" | "examples") => dir.parent().unwrap_or(dir).to_path_buf(),
        _ => dir.to_path_buf(),
    }
}

/// A binary of the workspace, built by the same `cargo test` / `cargo build` run (cargo
/// builds every member's binaries before it runs any test). Panics with the command to run
/// when it is not there.
pub fn bin_path(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build --bins` (or `cargo test` from the workspace root)",
        path.display()
    );
    path
}
