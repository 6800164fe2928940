//! Shared fixtures for nodewatch's integration tests.
//!
//! Include it from any `tests/*.rs` file with `mod support;`. Each test file is its own crate
//! and usually uses only part of this module, hence the module-wide `allow(dead_code)`.
//!
//! * [`tools`]: where anvil and ethereum-etl live, and the "skip locally, fail in CI" policy.
//! * [`rpc`]: a tiny async HTTP/JSON-RPC client.
//! * [`anvil`]: anvil dev nodes as child processes (free port, kill, state-preserving restart).
//! * [`chain`]: a deterministic ~30-block chain with every transaction kind ethereum-etl reads.
//! * [`etl`]: runs the real `ethereumetl` and compares its output files.
//! * [`fault`]: scripted misbehaving upstreams; [`nodewatch`]: the proxy in-process.
//! * [`postgres`]: a throwaway PostgreSQL 15 server on a loopback port.
//! * [`binary`]: the real binary as a child (RSS, logs); [`raw`]: raw HTTP/1.1 over TCP.
//! * [`relay`]: the soak's seeded fault relay in front of an anvil node.
//!
//! Everything here talks to 127.0.0.1 only.
#![allow(dead_code, unused_imports, unused_macros)]

pub mod anvil;
pub mod binary;
pub mod chain;
pub mod etl;
pub mod fault;
pub mod nodewatch;
pub mod postgres;
pub mod raw;
pub mod relay;
pub mod rpc;
pub mod tls;
pub mod tools;

use std::net::TcpListener;

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
