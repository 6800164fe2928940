//! The real `nodewatch` binary as a child process: started from a TOML configuration on
//! `127.0.0.1:0` (the bound addresses are read from its "nodewatch started" log line), its
//! stderr kept in a file for inspection, its memory read from `/proc/<pid>/status`, stopped
//! with SIGTERM. Used where the proxy must be measured or read on its own: RSS, log lines.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

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

impl Binary {
    /// Starts `nodewatch --config <toml> --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0
    /// <args>` with `env` added (RUST_LOG, ...); waits until it serves.
    pub fn start(toml: &str, args: &[&str], env: &[(&str, &str)]) -> Binary {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("nodewatch.toml");
        fs::write(&config, toml).unwrap();
        let log = dir.path().join("nodewatch.log");
        let file = fs::File::create(&log).unwrap();
        let mut cmd = Command::new(path());
        cmd.arg("--config")
            .arg(&config)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("run the nodewatch binary");
        let deadline = Instant::now() + Duration::from_secs(30);
        let (listen, admin) = loop {
            let text = strip_ansi(&fs::read_to_string(&log).unwrap_or_default());
            if let Some(line) = text.lines().find(|l| l.contains("nodewatch started")) {
                break (field(line, "listen"), field(line, "admin"));
            }
            assert!(
                Instant::now() < deadline,
                "nodewatch did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
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

    /// Resident memory in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
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
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on our own unreaped child.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("nodewatch did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
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

/// `VmRSS` of a process in KiB (0 if it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
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
