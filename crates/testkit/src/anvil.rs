//! anvil (foundry's dev node) as a child process of a test.
//!
//! ```ignore
//! let Some(bin) = support::tools::require_anvil() else { return };
//! let mut node = Anvil::spawn(&bin).await;                        // chain id 31337
//! let other = Anvil::builder(&bin).chain_id(5).spawn().await;     // a different chain
//! support::chain::build_chain(&node.url()).await;
//! node.mine(3).await;                                             // deterministic timestamps
//! node.kill().await;                                              // snapshot state, SIGKILL
//! node.restart().await;                                           // same port, same chain
//! ```
//!
//! * anvil is started with `--port 0` and the fixture reads the port the process really bound
//!   (from /proc), so parallel tests never race for a port; `restart()` reuses that port.
//! * Fixed `--timestamp` (genesis time) and `--chain-id`: two nodes built alike are identical.
//! * The process is SIGKILLed on Drop, and also gets SIGKILL if the test process dies
//!   (PR_SET_PDEATHSIG). That signal follows the *thread* that spawned anvil, so create nodes
//!   from the test's own task (or a runtime worker), not from `spawn_blocking`, and do not
//!   share a node between tests through a static.
//!
//! Restart: `kill()` first takes a snapshot with `anvil_dumpState(true)` (gzip'd JSON,
//! including historical states), unpacks it to `<tempdir>/state.json`, then SIGKILLs the
//! process. `restart()` starts anvil on the same port with `--load-state state.json`. The
//! restarted node has the same head, block hashes, transactions, receipts and logs, and
//! answers historical state queries (eth_getBalance at old blocks). Runtime settings such as
//! `evm_setAutomine` are back to what the command line says.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::binary::Signal;
use crate::poll::{poll_until, wait_for_sync};
use crate::{chain, rpc};

pub const DEFAULT_CHAIN_ID: u64 = 31337;
/// Genesis timestamp (2023-11-14T22:13:20Z); blocks built by [`chain`] follow at 12 s steps.
pub const DEFAULT_GENESIS_TIMESTAMP: u64 = 1_700_000_000;

const START_TIMEOUT: Duration = Duration::from_secs(30);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(10);

/// Options for a node; finish with [`AnvilBuilder::spawn`].
#[derive(Clone, Debug)]
pub struct AnvilBuilder {
    bin: PathBuf,
    chain_id: u64,
    genesis_timestamp: u64,
    no_mining: bool,
    extra_args: Vec<String>,
}

impl AnvilBuilder {
    /// `--chain-id` (default 31337).
    pub fn chain_id(mut self, chain_id: u64) -> Self {
        self.chain_id = chain_id;
        self
    }

    /// `--timestamp`, the genesis block's time (default [`DEFAULT_GENESIS_TIMESTAMP`]).
    pub fn genesis_timestamp(mut self, ts: u64) -> Self {
        self.genesis_timestamp = ts;
        self
    }

    /// `--no-mining`: no automine; blocks only come from `evm_mine` / [`Anvil::mine`].
    /// ([`chain::build_chain`] turns automine off by itself while it builds.)
    pub fn no_mining(mut self) -> Self {
        self.no_mining = true;
        self
    }

    /// Any other anvil flag (kept on restart). Do not pass --port, --host or --silent.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// Start the node and wait until it answers `eth_blockNumber`. Panics (with anvil's
    /// stderr) if it does not start.
    pub async fn spawn(self) -> Anvil {
        let dir = tempfile::Builder::new()
            .prefix("nodewatch-anvil-")
            .tempdir()
            .expect("create a temp dir for anvil");
        let mut node = Anvil {
            cfg: self,
            dir,
            child: None,
            port: 0,
            snapshot: None,
            paused: false,
        };
        node.start(0).await;
        node
    }
}

#[derive(Clone, Debug)]
struct Snapshot {
    path: PathBuf,
    best_block: u64,
}

/// A running (or killed, restartable) anvil node on 127.0.0.1.
pub struct Anvil {
    cfg: AnvilBuilder,
    dir: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
    snapshot: Option<Snapshot>,
    paused: bool,
}

impl Anvil {
    pub fn builder(bin: impl AsRef<Path>) -> AnvilBuilder {
        AnvilBuilder {
            bin: bin.as_ref().to_path_buf(),
            chain_id: DEFAULT_CHAIN_ID,
            genesis_timestamp: DEFAULT_GENESIS_TIMESTAMP,
            no_mining: false,
            extra_args: Vec::new(),
        }
    }

    /// A node with the default options (chain id 31337, fixed genesis time, automine on).
    pub async fn spawn(bin: impl AsRef<Path>) -> Anvil {
        Self::builder(bin).spawn().await
    }

    /// `http://127.0.0.1:<port>`; stays the same across [`Anvil::restart`].
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn chain_id(&self) -> u64 {
        self.cfg.chain_id
    }

    pub fn genesis_timestamp(&self) -> u64 {
        self.cfg.genesis_timestamp
    }

    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is alive (it may be paused).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// `eth_blockNumber`.
    pub async fn block_number(&self) -> u64 {
        rpc::block_number(&self.url()).await
    }

    /// Mine `n` blocks at deterministic timestamps (see [`chain::mine`]); returns the new head.
    /// Two nodes holding the same chain that both `mine(n)` stay identical; mining only on one
    /// of them makes the other one lag behind by `n` blocks on the same chain.
    pub async fn mine(&self, n: u64) -> u64 {
        chain::mine(&self.url(), n).await
    }

    /// What anvil wrote to stdout/stderr so far (all runs of this node).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("anvil.log")
    }

    /// Save the chain (with historical states) so a later [`Anvil::restart`] brings it back.
    /// [`Anvil::kill`] does this by itself. Returns the saved head block number.
    pub async fn snapshot(&mut self) -> u64 {
        match self.try_snapshot().await {
            Ok(n) => n,
            Err(e) => panic!("anvil snapshot at {} failed: {e}", self.url()),
        }
    }

    async fn try_snapshot(&mut self) -> Result<u64, String> {
        let dump = rpc::try_call_timeout(
            &self.url(),
            "anvil_dumpState",
            json!([true]),
            SNAPSHOT_TIMEOUT,
        )
        .await
        .map_err(|e| e.to_string())?;
        let hex = dump
            .as_str()
            .ok_or_else(|| format!("anvil_dumpState returned {dump}"))?;
        let raw = hex_decode(hex)?;
        // anvil returns gzip'd JSON; --load-state wants the plain JSON.
        let json_bytes = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .map_err(|e| format!("gunzip anvil_dumpState: {e}"))?;
            out
        } else {
            raw
        };
        let state: Value = serde_json::from_slice(&json_bytes)
            .map_err(|e| format!("anvil_dumpState is not JSON: {e}"))?;
        let best = &state["best_block_number"];
        let best_block = best
            .as_u64()
            .or_else(|| best.as_str().map(|_| rpc::quantity(best)))
            .ok_or_else(|| format!("no best_block_number in anvil state (got {best})"))?;
        let path = self.dir.path().join("state.json");
        fs::write(&path, &json_bytes).map_err(|e| format!("write {}: {e}", path.display()))?;
        self.snapshot = Some(Snapshot { path, best_block });
        Ok(best_block)
    }

    /// Crash the node: snapshot its state (best effort: skipped if it is paused or does not
    /// answer), then SIGKILL and reap it. The port is then closed (connection refused).
    pub async fn kill(&mut self) {
        if self.child.is_none() {
            return;
        }
        if !self.paused {
            if let Err(e) = self.try_snapshot().await {
                eprintln!(
                    "warning: could not snapshot anvil at {} before kill ({e}); restart() will \
                     use the previous snapshot, if any",
                    self.url()
                );
            }
        }
        self.kill_now();
    }

    /// SIGKILL without taking a snapshot (a restart gets the last snapshot, or a fresh chain).
    pub fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// Start the node again on the same port with the chain saved by the last snapshot
    /// ([`Anvil::kill`] takes one). Kills it first if it is still running. Panics if the
    /// restarted node's head differs from the snapshot's.
    pub async fn restart(&mut self) {
        if self.child.is_some() {
            self.kill().await;
        }
        if self.snapshot.is_none() {
            eprintln!(
                "warning: restarting anvil at {} without a snapshot: fresh chain",
                self.url()
            );
        }
        let port = self.port;
        self.start(port).await;
        if let Some(s) = &self.snapshot {
            let head = self.block_number().await;
            assert_eq!(
                head,
                s.best_block,
                "anvil restarted from {} has head {head}, snapshot had {}",
                s.path.display(),
                s.best_block
            );
        }
    }

    /// Freeze the process (SIGSTOP): connections are accepted by the kernel but never
    /// answered, like a hung node. Returns once every thread of anvil has stopped (a signal
    /// is asynchronous: on a busy machine anvil can go on answering for some milliseconds).
    pub fn pause(&mut self) {
        self.signal(Signal::Stop);
        self.paused = true;
        let pid = self.pid().unwrap();
        wait_for_sync(
            &format!("anvil (pid {pid}) to stop after SIGSTOP"),
            Duration::from_secs(10),
            || all_threads_stopped(pid).then_some(()),
        );
    }

    /// Undo [`Anvil::pause`] (SIGCONT).
    pub fn resume(&mut self) {
        self.signal(Signal::Cont);
        self.paused = false;
    }

    fn signal(&self, sig: Signal) {
        crate::binary::signal(self.pid().expect("anvil is not running"), sig);
    }

    fn command(&self, port: u16) -> Command {
        let cfg = &self.cfg;
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open anvil log");
        let mut cmd = Command::new(&cfg.bin);
        cmd.arg("--silent")
            .args(["--host", "127.0.0.1"])
            .args(["--port", &port.to_string()])
            .args(["--chain-id", &cfg.chain_id.to_string()])
            .args(["--timestamp", &cfg.genesis_timestamp.to_string()]);
        if cfg.no_mining {
            cmd.arg("--no-mining");
        }
        if let Some(s) = &self.snapshot {
            cmd.arg("--load-state").arg(&s.path);
        }
        cmd.args(&cfg.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup anvil log"))
            .stderr(log);
        crate::binary::die_with_parent(&mut cmd);
        cmd
    }

    /// Start anvil (port 0 = any free port) and wait until it answers.
    async fn start(&mut self, port: u16) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let mut child = self
                .command(port)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run anvil at {}: {e}", self.cfg.bin.display()));
            match wait_ready(&mut child, port, deadline).await {
                Ok(bound) => {
                    self.child = Some(child);
                    self.port = bound;
                    return;
                }
                // On restart the old port may still be held for a moment (or been taken):
                // anvil exits with "address in use"; try again until the deadline.
                Err(StartError::Exited(_)) if port != 0 && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "anvil did not start ({e}); command: {:?}\n--- anvil output ---\n{}",
                        self.command(port),
                        self.log()
                    );
                }
            }
        }
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        self.kill_now();
    }
}

#[derive(Debug)]
enum StartError {
    Exited(ExitStatus),
    Timeout,
    WrongPort(u16),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Exited(s) => write!(f, "anvil exited: {s}"),
            StartError::Timeout => write!(f, "no answer within {START_TIMEOUT:?}"),
            StartError::WrongPort(p) => write!(f, "anvil listens on unexpected port {p}"),
        }
    }
}

/// Wait until *our* child listens (checked through /proc, so an unrelated process on the
/// same port is never mistaken for it) and answers eth_blockNumber.
async fn wait_ready(
    child: &mut Child,
    want_port: u16,
    deadline: Instant,
) -> Result<u16, StartError> {
    let within = deadline.saturating_duration_since(Instant::now());
    let ready = poll_until(within, async || {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(Err(StartError::Exited(status)));
        }
        let port = listening_port(child.id())?;
        if want_port != 0 && port != want_port {
            return Some(Err(StartError::WrongPort(port)));
        }
        let url = format!("http://127.0.0.1:{port}");
        rpc::try_call_timeout(&url, "eth_blockNumber", json!([]), PROBE_TIMEOUT)
            .await
            .ok()
            .map(|_| Ok(port))
    });
    ready.await.unwrap_or(Err(StartError::Timeout))
}

/// The TCP port process `pid` listens on, from /proc/<pid>/fd and /proc/<pid>/net/tcp{,6}.
fn listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|e| {
            let target = fs::read_link(e.ok()?.path()).ok()?;
            let s = target.to_str()?;
            Some(s.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    for table in ["tcp", "tcp6"] {
        let text = fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
                let port = f[1].rsplit(':').next()?;
                return u16::from_str_radix(port, 16).ok();
            }
        }
    }
    None
}

/// Whether every thread of `pid` is in the stopped state ('T' in /proc/<pid>/task/*/stat).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let mut any = false;
    for task in tasks.flatten() {
        let stat = fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // "<tid> (<comm>) <state> ...": comm may contain spaces and parentheses.
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next());
        match state {
            Some("T") | Some("t") => any = true,
            None => {} // thread exited meanwhile
            Some(_) => return false,
        }
    }
    any
}

fn hex_decode(s: &str) -> Result<Vec<u8>, String> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if !s.len().is_multiple_of(2) {
        return Err("odd-length hex".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| format!("bad hex: {e}")))
        .collect()
}
