//! A throwaway PostgreSQL server (Debian's postgresql-15, installed by `make pg-tools`) for one
//! test: `initdb` into a fresh directory under cargo's `target/tmp` (git-ignored), then
//! `postgres` on a free 127.0.0.1 port with TCP only (no Unix socket), trust authentication
//! and `fsync=off`.
//!
//! ```ignore
//! let Some(bin) = support::tools::require_postgres() else { return };
//! let pg = Postgres::start(&bin).await;
//! pg.create_database("ours").await;
//! let url = pg.url("ours");            // postgresql://postgres@127.0.0.1:PORT/ours
//! ```
//!
//! initdb and postgres refuse to run as root, so when the tests run as root both are started
//! as the `postgres` OS user (created by the Debian package) with `Command::uid/gid`, in a data
//! directory that user owns. The server is a direct child of the test process: it gets
//! SIGKILL if the test process dies (PR_SET_PDEATHSIG, set after the uid switch), and Drop
//! stops it (SIGQUIT: immediate shutdown) and removes the directory.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::binary::Signal;
use crate::poll::poll_sync;

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running server; stopped and deleted on drop.
pub struct Postgres {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// `(uid, gid)` of the `postgres` user when running as root, else None (run as ourselves).
fn run_as() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("run id");
        assert!(
            out.status.success(),
            "running as root, but there is no `postgres` OS user to run PostgreSQL as \
             (it comes with the Debian postgresql-15 package: make pg-tools)"
        );
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    Some((id("-u"), id("-g")))
}

fn command(bin: &Path, user: Option<(u32, u32)>) -> Command {
    let mut cmd = Command::new(bin);
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    cmd.stdin(Stdio::null()).env("LC_ALL", "C");
    cmd
}

impl Postgres {
    /// initdb + start; panics with the server log when it does not come up.
    pub async fn start(bin_dir: &Path) -> Postgres {
        let user = run_as();
        let tmp = crate::target_dir().join("tmp");
        let base = tmp.join("pg");
        std::fs::create_dir_all(&base).unwrap();
        let dir = tempfile::Builder::new()
            .prefix("cluster-")
            .tempdir_in(&base)
            .unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        if let Some((uid, gid)) = user {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            std::os::unix::fs::chown(&data, Some(uid), Some(gid)).unwrap();
        }
        let out = command(&bin_dir.join("initdb"), user)
            .args(["-D", data.to_str().unwrap()])
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
            .args(["--no-sync", "--no-instructions"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let log = dir.path().join("postgres.log");
        // Another process may take the port between crate::free_port() and the bind: try a few.
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = crate::free_port();
            let mut child = start_server(bin_dir, user, &data, &log, port);
            if wait_ready(&mut child, port).await {
                return Postgres {
                    child,
                    port,
                    log,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
            if !last_log.contains("could not bind") {
                break;
            }
        }
        panic!("PostgreSQL did not start:\n{last_log}");
    }

    /// The server log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `postgresql://postgres@127.0.0.1:PORT/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A connected client (the connection is driven by a spawned task).
    pub async fn client(&self, db: &str) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url(db), tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.url(db)));
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }

    /// `CREATE DATABASE <name>`.
    pub async fn create_database(&self, name: &str) {
        self.client("postgres")
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
    }

    /// Every row of `table` as text (NULL as None), sorted.
    pub async fn rows(&self, db: &str, table: &str) -> Vec<Vec<Option<String>>> {
        let client = self.client(db).await;
        let mut rows: Vec<Vec<Option<String>>> = Vec::new();
        for msg in client
            .simple_query(&format!("SELECT * FROM {table}"))
            .await
            .unwrap()
        {
            if let tokio_postgres::SimpleQueryMessage::Row(r) = msg {
                rows.push((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect());
            }
        }
        rows.sort();
        rows
    }

    /// Column names of `table`, in order.
    pub async fn columns(&self, db: &str, table: &str) -> Vec<String> {
        let client = self.client(db).await;
        client
            .query(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_name = $1 ORDER BY ordinal_position",
                &[&table],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

/// Waits until the server accepts connections; false if it exits or never does.
async fn wait_ready(child: &mut Child, port: u16) -> bool {
    let url = format!("postgresql://postgres@127.0.0.1:{port}/postgres");
    let started = Instant::now();
    while started.elapsed() < START_TIMEOUT {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn start_server(
    bin_dir: &Path,
    user: Option<(u32, u32)>,
    data: &Path,
    log: &Path,
    port: u16,
) -> Child {
    let log_file = std::fs::File::create(log).unwrap();
    let mut cmd = command(&bin_dir.join("postgres"), user);
    cmd.args(["-D", data.to_str().unwrap(), "-p", &port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1"])
        .args(["-c", "unix_socket_directories="])
        .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec. std runs
    // this after the uid/gid switch, which would otherwise reset the death signal.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin_dir.join("postgres").display()))
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGQUIT: immediate shutdown (the data is thrown away anyway).
        let _ = crate::binary::try_signal(self.child.id(), Signal::Quit);
        let child = &mut self.child;
        if poll_sync(Duration::from_secs(10), || child.try_wait().ok().flatten()).is_some() {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
