//! The one launcher of the real `nodewatch` binary, and the signal helpers every test uses.
//!
//! [`Binary`]: the server as a child process, started on `127.0.0.1:0` (the bound addresses
//! are read from its "nodewatch started" log line), its stderr kept in a file for inspection,
//! its memory read from `/proc/<pid>/status`, signalled, stopped with SIGTERM. [`run`]: a
//! subcommand run to completion. Both start from the one scrubbed environment
//! ([`crate::tools::scrubbed`]: no inherited `NODEWATCH__*` or `RUST_LOG`, no proxy). [`signal`] (and [`terminate`], [`stop`], [`cont`],
//! [`hangup`]) send a signal to any child: this binary, anvil, the exporter, PostgreSQL.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::poll::poll_sync;

/// A running `nodewatch` process.
pub struct Binary {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>` of the JSON-RPC listener.
    pub url: String,
    /// `127.0.0.1:<port>` of the JSON-RPC listener.
    pub addr: String,
    /// `http://127.0.0.1:<port>` of the admin listener.
    pub admin: String,
    /// Its stderr (the log).
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The `nodewatch` binary cargo built next to the running test or example.
pub fn path() -> PathBuf {
    crate::bin_path("nodewatch")
}

/// The `nodewatch-export` binary cargo built next to the running test or example.
pub fn exporter_path() -> PathBuf {
    crate::bin_path("nodewatch-export")
}

/// The signals tests send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: stop gracefully.
    Term,
    /// SIGKILL: die now.
    Kill,
    /// SIGHUP: reload the configuration.
    Hup,
    /// SIGSTOP: freeze.
    Stop,
    /// SIGCONT: thaw after [`Signal::Stop`].
    Cont,
    /// SIGQUIT: PostgreSQL's immediate shutdown.
    Quit,
    /// SIGINT: PostgreSQL's fast shutdown (clients disconnected, then a checkpoint).
    Int,
}

impl Signal {
    fn number(self) -> libc::c_int {
        match self {
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
            Signal::Hup => libc::SIGHUP,
            Signal::Stop => libc::SIGSTOP,
            Signal::Cont => libc::SIGCONT,
            Signal::Quit => libc::SIGQUIT,
            Signal::Int => libc::SIGINT,
        }
    }
}

/// Sends `sig` to process `pid` (a child of this test, not yet reaped); panics if kill(2)
/// fails.
pub fn signal(pid: u32, sig: Signal) {
    try_signal(pid, sig).unwrap_or_else(|e| panic!("kill({pid}, {sig:?}): {e}"));
}

/// [`signal`], returning kill(2)'s error instead of panicking (for `Drop`).
pub fn try_signal(pid: u32, sig: Signal) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    // SAFETY: plain kill(2) on our own child, which has not been reaped.
    match unsafe { libc::kill(pid, sig.number()) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// SIGTERM.
pub fn terminate(pid: u32) {
    signal(pid, Signal::Term);
}

/// SIGHUP.
pub fn hangup(pid: u32) {
    signal(pid, Signal::Hup);
}

/// SIGSTOP.
pub fn stop(pid: u32) {
    signal(pid, Signal::Stop);
}

/// SIGCONT.
pub fn cont(pid: u32) {
    signal(pid, Signal::Cont);
}

/// A `nodewatch` command with the scrubbed environment ([`crate::tools::scrubbed`]) and no
/// colour; then `env` added.
fn command(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = crate::tools::scrubbed(program);
    cmd.args(args).env("NO_COLOR", "1");
    cmd.envs(env.iter().copied());
    cmd
}

/// What a [`run`] printed, and how it exited.
#[derive(Debug)]
pub struct Ran {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `nodewatch <args>` to completion (within 20 s) with the scrubbed environment plus
/// `env`. Awaited, so an in-process server of the same test keeps serving meanwhile.
pub async fn run(args: &[&str], env: &[(&str, &str)]) -> Ran {
    let mut cmd = tokio::process::Command::from(command(&path(), args, env));
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("nodewatch {args:?} did not finish within 20 s"));
    ran(out)
}

/// [`run`] for a test without a runtime (no time limit: these commands exit at once).
pub fn run_blocking(args: &[&str], env: &[(&str, &str)]) -> Ran {
    ran(command(&path(), args, env).output())
}

fn ran(out: std::io::Result<std::process::Output>) -> Ran {
    let out = out.expect("run the nodewatch binary");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Binary {
    /// Starts `nodewatch --config <toml> --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0
    /// <args>` with `env` added (RUST_LOG, ...); waits until it serves.
    pub fn start(toml: &str, args: &[&str], env: &[(&str, &str)]) -> Binary {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("nodewatch.toml");
        fs::write(&config, toml).unwrap();
        let config = config.to_str().expect("a UTF-8 temporary path").to_string();
        let args: Vec<&str> = ["--config", config.as_str()]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        Self::start_in(&path(), dir, &args, env)
    }

    /// Starts `nodewatch --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 <args>` (a
    /// configuration file of the test's own, `--upstream`s, ...); waits until it serves.
    pub fn start_args(args: &[&str], env: &[(&str, &str)]) -> Binary {
        Self::start_in(&path(), tempfile::tempdir().unwrap(), args, env)
    }

    /// [`Binary::start_args`] with another build of nodewatch (`pip install nodewatch`'s).
    pub fn start_program(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Binary {
        Self::start_in(program, tempfile::tempdir().unwrap(), args, env)
    }

    fn start_in(
        program: &Path,
        dir: tempfile::TempDir,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Binary {
        let log = dir.path().join("nodewatch.log");
        let file = fs::File::create(&log).unwrap();
        let mut cmd = command(
            program,
            &["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
            env,
        );
        cmd.args(args).stdout(Stdio::null()).stderr(file);
        let child = cmd.spawn().expect("run the nodewatch binary");
        let read = || strip_ansi(&fs::read_to_string(&log).unwrap_or_default());
        let started = poll_sync(Duration::from_secs(30), || {
            let text = read();
            let line = text.lines().find(|l| l.contains("nodewatch started"))?;
            Some((field(line, "listen"), field(line, "admin")))
        });
        let (listen, admin) =
            started.unwrap_or_else(|| panic!("nodewatch did not start:\n{}", read()));
        Binary {
            child: Some(child),
            url: format!("http://{listen}"),
            addr: listen,
            admin: format!("http://{admin}"),
            log,
            _dir: dir,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Resident memory in KiB (`VmRSS`); `None` when it cannot be read.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid())
    }

    /// Peak resident memory so far in KiB (`VmHWM`); `None` when it cannot be read.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        peak_rss_kib(self.pid())
    }

    /// Sends `sig` to the process.
    pub fn signal(&self, sig: Signal) {
        signal(self.pid(), sig);
    }

    /// Waits (up to 10 s) until `/status` shows every upstream `healthy`: probed, and ready
    /// for the test's traffic.
    pub async fn wait_all_healthy(&self) {
        let url = format!("{}/status", self.admin);
        crate::poll::wait_until(
            "every upstream healthy",
            Duration::from_secs(10),
            async || {
                let Ok((200, text)) = crate::rpc::try_get(&url).await else {
                    return false;
                };
                let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                doc["upstreams"]
                    .as_array()
                    .is_some_and(|u| !u.is_empty() && u.iter().all(|u| u["status"] == "healthy"))
            },
        )
        .await;
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// The log so far, without colour codes.
    pub fn log_text(&self) -> String {
        strip_ansi(&fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// SIGTERM, then wait (SIGKILL after 20 s); returns the exit status.
    pub fn stop(mut self) -> ExitStatus {
        self.stop_within(Duration::from_secs(20))
    }

    /// SIGTERM, then wait up to `within` (then SIGKILL and panic); returns the exit status.
    /// The log stays readable afterwards.
    pub fn stop_within(&mut self, within: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        terminate(child.id());
        let mut waited = || child.try_wait().unwrap();
        match poll_sync(within, &mut waited) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                panic!("nodewatch did not stop within {within:?} of SIGTERM");
            }
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `VmRSS` of a process in KiB; `None` if it is gone or the line cannot be read, so a
/// memory check cannot pass on zeros.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// `VmHWM` (the peak resident memory so far) of a process in KiB; `None` as for [`rss_kib`].
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `key=value` (text log) or `"key":"value"` (JSON log) of a log line.
fn field(line: &str, key: &str) -> String {
    for pat in [format!("{key}="), format!("\"{key}\":\"")] {
        if let Some(at) = line.find(&pat) {
            return line[at + pat.len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                .collect();
        }
    }
    panic!("no {key} in {line}");
}

/// The text without ANSI escape sequences.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Has the kernel SIGKILL `cmd`'s process when the thread that spawns it ends (the test
/// died): no server outlives its test.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
