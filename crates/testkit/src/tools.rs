//! Locating the external test tools installed by `make tools`, and [`scrubbed`], the one
//! environment scrub every child program of the tests (ethereumetl, nodewatch-export) runs
//! with.
//!
//! `make test` exports `NODEWATCH_ANVIL`, `NODEWATCH_ETHEREUMETL` and `NODEWATCH_PG_BIN`
//! (absolute paths; `make pg-tools` installs PostgreSQL 15 from Debian). Without
//! them (plain `cargo test`), the default locations under `.tools/` in the crate root are used.
//!
//! Policy for a missing tool: when `CI=true` it is a test *failure* (panic); otherwise the test
//! prints "skipping: <tool> not installed, run make tools" and returns early:
//!
//! ```ignore
//! let Some(anvil) = support::tools::require_anvil() else { return };
//! ```

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub const ANVIL_ENV: &str = "NODEWATCH_ANVIL";
pub const ETHEREUMETL_ENV: &str = "NODEWATCH_ETHEREUMETL";
/// Relative to the workspace root; where `make tools` puts it.
pub const DEFAULT_ANVIL: &str = ".tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";
/// Relative to the workspace root; where `make tools` puts it.
pub const DEFAULT_ETHEREUMETL: &str = ".tools/venv/bin/ethereumetl";

fn manifest_dir() -> PathBuf {
    crate::workspace_root()
}

fn configured(env: &str, default: &str) -> PathBuf {
    match std::env::var_os(env) {
        Some(v) if !v.is_empty() => manifest_dir().join(PathBuf::from(v)),
        _ => manifest_dir().join(default),
    }
}

/// True when running in CI (`CI=true`, as CI sets it; `CI=1` is accepted too).
pub fn is_ci() -> bool {
    std::env::var("CI")
        .map(|v| v.eq_ignore_ascii_case("true") || v == "1")
        .unwrap_or(false)
}

/// Where anvil is expected: `$NODEWATCH_ANVIL`, else `.tools/...` in the crate root. The file
/// may not exist; use [`require_anvil`] in tests.
pub fn anvil_path() -> PathBuf {
    configured(ANVIL_ENV, DEFAULT_ANVIL)
}

/// The ethereumetl executable (`$NODEWATCH_ETHEREUMETL`, else `.tools/venv/bin/ethereumetl`),
/// or None when there is no file there.
pub fn ethereumetl_path() -> Option<PathBuf> {
    Some(configured(ETHEREUMETL_ENV, DEFAULT_ETHEREUMETL)).filter(|p| p.is_file())
}

fn require(tool: &str, env: &str, path: PathBuf) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path);
    }
    if is_ci() {
        panic!(
            "{tool} not found at {} (set {env} or run `make tools`); CI=true, so a missing \
             tool is a failure, not a skip",
            path.display()
        );
    }
    eprintln!(
        "skipping: {tool} not installed, run make tools (looked at {})",
        path.display()
    );
    None
}

/// The anvil binary, or None (after printing a skip notice) when it is missing outside CI.
/// Panics in CI when it is missing.
pub fn require_anvil() -> Option<PathBuf> {
    require("anvil", ANVIL_ENV, anvil_path())
}

/// The ethereumetl executable, or None (after printing a skip notice) when it is missing
/// outside CI. Panics in CI when it is missing.
pub fn require_ethereumetl() -> Option<PathBuf> {
    require(
        "ethereumetl",
        ETHEREUMETL_ENV,
        configured(ETHEREUMETL_ENV, DEFAULT_ETHEREUMETL),
    )
}

/// Both tools, for tests that drive ethereum-etl against anvil nodes.
pub struct Tools {
    pub anvil: PathBuf,
    pub ethereumetl: PathBuf,
}

/// Both tools or None (skip notice printed for each missing one); panics in CI if either is
/// missing.
pub fn require_all() -> Option<Tools> {
    let anvil = require_anvil();
    let ethereumetl = require_ethereumetl();
    Some(Tools {
        anvil: anvil?,
        ethereumetl: ethereumetl?,
    })
}

pub const REDIS_ENV: &str = "NODEWATCH_REDIS_SERVER";
/// Debian's redis-server (absolute; `make tools` installs the package).
pub const DEFAULT_REDIS: &str = "/usr/bin/redis-server";

/// The `redis-server` binary (`$NODEWATCH_REDIS_SERVER`, else Debian's), or None (after a
/// skip notice) when missing outside CI. Panics in CI when it is missing.
pub fn require_redis() -> Option<PathBuf> {
    require(
        "redis-server",
        REDIS_ENV,
        configured(REDIS_ENV, DEFAULT_REDIS),
    )
}

pub const PG_BIN_ENV: &str = "NODEWATCH_PG_BIN";
/// Debian's postgresql-15 binaries (absolute; `make pg-tools` installs the package).
pub const DEFAULT_PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The directory holding PostgreSQL's `initdb` and `postgres` (`$NODEWATCH_PG_BIN`, else
/// Debian's `/usr/lib/postgresql/15/bin`), or None (after a skip notice) when `initdb` is
/// missing outside CI. Panics in CI when it is missing.
pub fn require_postgres() -> Option<PathBuf> {
    let dir = configured(PG_BIN_ENV, DEFAULT_PG_BIN);
    require("PostgreSQL 15 (initdb)", PG_BIN_ENV, dir.join("initdb"))?;
    Some(dir)
}

/// A command for `program` with the one environment scrub of the tests: 127.0.0.1 is reached
/// directly whatever proxy the environment names, Python writes no bytecode next to the
/// tools, no inherited `NODEWATCH__*` setting or `RUST_LOG`
/// reaches it, and stdin is closed.
pub fn scrubbed(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("NODEWATCH__") || name == "RUST_LOG" {
            cmd.env_remove(&key);
        }
    }
    for proxy in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        cmd.env_remove(proxy).env_remove(proxy.to_lowercase());
    }
    cmd.env("NO_PROXY", "*")
        .env("no_proxy", "*")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null());
    cmd
}
