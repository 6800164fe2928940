//! A throwaway `redis-server` (Debian's, installed by `make tools`) for one test: on a free
//! 127.0.0.1 port, no persistence, a direct child of the test process (SIGKILL if the test
//! dies, killed on drop). [`RedisServer::stop`] and [`RedisServer::restart`] take it down
//! and bring it back on the same port, for the "Redis down" tests.
//!
//! ```ignore
//! let Some(bin) = tools::require_redis() else { return };
//! let redis = RedisServer::start(&bin);
//! let url = redis.url();               // redis://127.0.0.1:PORT/0
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::poll::poll_sync;

const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running server; killed on drop.
pub struct RedisServer {
    /// `None` between [`RedisServer::stop`] and [`RedisServer::restart`].
    child: Option<Child>,
    pub port: u16,
    bin: PathBuf,
}

impl RedisServer {
    /// Starts `redis-server` at `bin` on a free port and waits until it answers PING.
    pub fn start(bin: &Path) -> RedisServer {
        let port = crate::free_port();
        let mut server = RedisServer {
            child: None,
            port,
            bin: bin.to_path_buf(),
        };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (its port refuses connections until [`RedisServer::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: no persistence) and waits for PING.
    pub fn restart(&mut self) {
        self.stop();
        let mut cmd = Command::new(&self.bin);
        cmd.args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--protected-mode", "yes"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        crate::binary::die_with_parent(&mut cmd);
        let child = cmd.spawn().expect("redis-server starts");
        self.child = Some(child);
        let port = self.port;
        poll_sync(START_TIMEOUT, || ping(port).then_some(()))
            .unwrap_or_else(|| panic!("redis-server on port {port} did not answer PING"));
    }

    /// Whether it answers PING now.
    pub fn is_up(&self) -> bool {
        ping(self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `PING` and reads `+PONG`.
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}
