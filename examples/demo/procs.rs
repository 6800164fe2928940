//! Child processes the demo owns: started with `PR_SET_PDEATHSIG` (the kernel kills them if
//! the demo dies), stopped with SIGTERM then SIGKILL, and always reaped — on [`Proc::stop`]
//! and on drop, so an error or Ctrl-C leaves nothing running.

use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::Value;

/// A running child process.
pub struct Proc {
    name: String,
    child: Option<Child>,
    /// Where its stderr goes, for start-up messages.
    log: Option<std::path::PathBuf>,
}

impl Proc {
    /// Starts `cmd` as `name`.
    pub fn spawn(name: &str, mut cmd: Command) -> anyhow::Result<Proc> {
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name} ({:?})", cmd.get_program()))?;
        Ok(Proc {
            name: name.to_owned(),
            child: Some(child),
            log: None,
        })
    }

    /// The real `nodewatch` binary with `config`, on free loopback ports, JSON logs to `log`.
    pub fn nodewatch(bin: &Path, config: &Path, log: &Path) -> anyhow::Result<Proc> {
        let mut cmd = Command::new(bin);
        cmd.arg("--config")
            .arg(config)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(["--log-format", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(log).with_context(|| format!("create {}", log.display()))?);
        let mut proc = Proc::spawn("nodewatch", cmd)?;
        proc.log = Some(log.to_owned());
        Ok(proc)
    }

    /// Waits for nodewatch's "nodewatch started" log line; returns (JSON-RPC URL, admin URL).
    pub async fn wait_started(&mut self, within: Duration) -> anyhow::Result<(String, String)> {
        let log = self.log.clone().context("no log file")?;
        let deadline = Instant::now() + within;
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            for line in text.lines() {
                let Ok(entry) = serde_json::from_str::<Value>(line) else {
                    continue;
                };
                if entry["message"] == "nodewatch started" {
                    let field = |key: &str| entry[key].as_str().map(|a| format!("http://{a}"));
                    if let (Some(proxy), Some(admin)) = (field("listen"), field("admin")) {
                        return Ok((proxy, admin));
                    }
                }
            }
            if let Some(status) = self.exited() {
                bail!("nodewatch exited ({status}) at start:\n{text}");
            }
            if Instant::now() > deadline {
                bail!("nodewatch did not start within {within:?}:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `Some(exit status)` once the process has ended.
    pub fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL; reaps the process.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            // SAFETY: kill(2) on our own child, which has not been reaped yet.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + grace;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(child.try_wait(), Ok(None)) {
                eprintln!("  {} did not stop within {grace:?}: SIGKILL", self.name);
                let _ = child.kill();
            }
        }
        let _ = child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
    }
}
