//! The reference for the trace, contract and token commands: ethereum-etl 2.4.2 as `make
//! tools` installs it (`.tools/venv`, the same venv as [`crate::tools`]'s), which runs every
//! command, contract calls included: it keeps the parsimonious 0.8.1 that eth-abi 2.2.0 asks
//! for, made to import on Python 3.11 by `scripts/ethereum_etl_py311_compat.py` (with
//! parsimonious 0.10 every contract call fails with a `VisitationError`; that module's
//! docstring says why).
//!
//! `$NODEWATCH_ETHEREUMETL310` overrides the location (the name is from when this was a
//! separate venv on Python 3.10). Missing: a skip locally, a failure under `CI=true`, as for
//! the other tools.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::tools::{is_ci, scrubbed};

pub const ETHEREUMETL310_ENV: &str = "NODEWATCH_ETHEREUMETL310";
/// Relative to the workspace root; where `make tools` puts it.
pub const DEFAULT_ETHEREUMETL310: &str = ".tools/venv/bin/ethereumetl";
/// Kill the reference and fail the test after this long.
pub const TIMEOUT: Duration = Duration::from_secs(180);

/// The reference ethereumetl, or None (after a skip notice) outside CI; panics in CI.
pub fn require_ethereumetl310() -> Option<PathBuf> {
    let path = match std::env::var_os(ETHEREUMETL310_ENV) {
        Some(v) if !v.is_empty() => crate::workspace_root().join(PathBuf::from(v)),
        _ => crate::workspace_root().join(DEFAULT_ETHEREUMETL310),
    };
    if path.is_file() {
        return Some(path);
    }
    if is_ci() {
        panic!(
            "ethereumetl (the reference) not found at {} (set {ETHEREUMETL310_ENV} or run \
             `make tools`); CI=true, so a missing tool is a failure, not a skip",
            path.display()
        );
    }
    eprintln!(
        "skipping: ethereumetl (the reference) not installed, run make tools (looked at {})",
        path.display()
    );
    None
}

/// Runs `bin <args>` (the reference ethereumetl) against 127.0.0.1 only; returns how long it
/// took and its stdout. Panics with its stderr when it fails or runs past [`TIMEOUT`].
pub async fn run(bin: &PathBuf, args: &[String]) -> (Duration, Vec<u8>) {
    let started = Instant::now();
    let child = tokio::process::Command::from(scrubbed(bin))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let out = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("ethereumetl {} ran past {TIMEOUT:?}", args.join(" ")))
        .expect("wait for ethereumetl");
    assert!(
        out.status.success(),
        "ethereumetl {} failed: {}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (started.elapsed(), out.stdout)
}
