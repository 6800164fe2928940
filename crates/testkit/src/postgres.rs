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
//!
//! [`Postgres::start_tls`] also turns on `ssl` with a certificate the test made
//! ([`crate::tls::TestCa`]); [`Postgres::stop_fast`] and [`Postgres::restart`] take the server
//! down (fast shutdown) and bring it back on the same port and data directory. Every server
//! logs its connections (`log_connections`), which says whether each used TLS.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::binary::Signal;
use crate::poll::{poll_sync, poll_until};
use crate::tls::Issued;

const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server; stopped and deleted on drop.
pub struct Postgres {
    /// `None` between [`Postgres::stop_fast`] and [`Postgres::restart`].
    child: Option<Child>,
    pub port: u16,
    log: PathBuf,
    /// What a restart needs: the binaries, the OS user, the data directory, the `-c` settings.
    bin_dir: PathBuf,
    user: Option<(u32, u32)>,
    data: PathBuf,
    settings: Vec<String>,
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
        Postgres::start_with(bin_dir, None).await
    }

    /// As [`Postgres::start`], with `ssl=on` and `server` as the server's certificate and key
    /// (plain-text connections are still accepted).
    pub async fn start_tls(bin_dir: &Path, server: &Issued) -> Postgres {
        Postgres::start_with(bin_dir, Some(server)).await
    }

    async fn start_with(bin_dir: &Path, tls: Option<&Issued>) -> Postgres {
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
        let mut settings = vec!["log_connections=on".to_string()];
        if let Some(server) = tls {
            settings.extend(server_tls_files(&data, server, user));
        }
        // Another process may take the port between crate::free_port() and the bind: try a few.
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = crate::free_port();
            let mut child = start_server(bin_dir, user, &data, &log, port, &settings);
            if wait_ready(&mut child, port).await {
                return Postgres {
                    child: Some(child),
                    port,
                    log,
                    bin_dir: bin_dir.to_owned(),
                    user,
                    data,
                    settings,
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

    /// Fast shutdown (SIGINT: open sessions are ended, as a DBA's `pg_ctl stop` does); waits
    /// until the server has exited.
    pub fn stop_fast(&mut self) {
        let mut child = self.child.take().expect("the server is running");
        crate::binary::signal(child.id(), Signal::Int);
        let exited = poll_sync(STOP_TIMEOUT, || child.try_wait().ok().flatten());
        assert!(
            exited.is_some(),
            "PostgreSQL did not stop within {STOP_TIMEOUT:?}:\n{}",
            self.log_text()
        );
    }

    /// Starts the server again after [`Postgres::stop_fast`]: same port, data and settings.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let mut child = start_server(
            &self.bin_dir,
            self.user,
            &self.data,
            &self.log,
            self.port,
            &self.settings,
        );
        let ready = wait_ready(&mut child, self.port).await;
        assert!(ready, "PostgreSQL did not restart:\n{}", self.log_text());
        self.child = Some(child);
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
    let ready = poll_until(START_TIMEOUT, async || {
        if let Ok(Some(_)) = child.try_wait() {
            return Some(false);
        }
        let connected = tokio_postgres::connect(&url, tokio_postgres::NoTls).await;
        connected.is_ok().then_some(true)
    });
    ready.await.unwrap_or(false)
}

/// Writes the server's certificate and key into the data directory (the key readable by the
/// server's user only, as PostgreSQL demands); returns the settings that use them.
fn server_tls_files(data: &Path, server: &Issued, user: Option<(u32, u32)>) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let (cert, key) = (data.join("server.crt"), data.join("server.key"));
    std::fs::write(&cert, &server.cert_pem).unwrap();
    std::fs::write(&key, &server.key_pem).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    if let Some((uid, gid)) = user {
        for f in [&cert, &key] {
            std::os::unix::fs::chown(f, Some(uid), Some(gid)).unwrap();
        }
    }
    vec![
        "ssl=on".into(),
        format!("ssl_cert_file={}", cert.display()),
        format!("ssl_key_file={}", key.display()),
    ]
}

fn start_server(
    bin_dir: &Path,
    user: Option<(u32, u32)>,
    data: &Path,
    log: &Path,
    port: u16,
    settings: &[String],
) -> Child {
    // Appended to: a restart keeps the log of the runs before it.
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut cmd = command(&bin_dir.join("postgres"), user);
    cmd.args(["-D", data.to_str().unwrap(), "-p", &port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1"])
        .args(["-c", "unix_socket_directories="])
        .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
        .args(settings.iter().flat_map(|s| ["-c", s.as_str()]))
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
        let Some(child) = self.child.as_mut() else {
            return;
        };
        // SIGQUIT: immediate shutdown (the data is thrown away anyway).
        let _ = crate::binary::try_signal(child.id(), Signal::Quit);
        if poll_sync(Duration::from_secs(10), || child.try_wait().ok().flatten()).is_some() {
            return;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
