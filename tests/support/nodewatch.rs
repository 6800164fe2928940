//! nodewatch started in-process on 127.0.0.1:0, as the binary starts it
//! (`server::run_with_handle`), with test-speed probe timing.

use std::time::Duration;

use nodewatch::config::{Config, UpstreamConfig};
use nodewatch::server::{self, ConfigSource, Handle, Listeners};
use nodewatch::upstream::health::Status;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running in-process proxy.
pub struct Nodewatch {
    /// JSON-RPC URL.
    pub url: String,
    /// Admin base URL.
    pub admin: String,
    /// Live state.
    pub handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A configuration for tests: fast probes, short timeouts, upstreams in rank order.
pub fn test_config(upstreams: &[String]) -> Config {
    let mut config = Config::default();
    config.probe.interval = Duration::from_millis(100);
    config.probe.timeout = Duration::from_millis(500);
    config.proxy.attempt_timeout = Duration::from_secs(2);
    config.proxy.light_attempt_timeout = Duration::from_secs(2);
    config.proxy.heavy_attempt_timeout = Duration::from_secs(2);
    config.proxy.request_timeout = Duration::from_secs(10);
    config.proxy.shutdown_grace = Duration::from_secs(5);
    config.upstreams = upstreams
        .iter()
        .enumerate()
        .map(|(i, url)| UpstreamConfig {
            name: Some(format!("u{}", i + 1)),
            ..UpstreamConfig::from_url(url.clone())
        })
        .collect();
    config
}

impl Nodewatch {
    /// Starts nodewatch with [`test_config`] for these upstreams (named u1, u2, ...).
    pub async fn start(upstreams: &[String]) -> Nodewatch {
        Self::start_with(test_config(upstreams)).await
    }

    /// Starts nodewatch with a given configuration (its listen addresses are ignored).
    pub async fn start_with(config: Config) -> Nodewatch {
        Self::start_with_source(config, None).await
    }

    /// As [`Nodewatch::start_with`], remembering where the configuration came from so that
    /// `handle.reloader` can re-read it.
    pub async fn start_with_source(config: Config, source: Option<ConfigSource>) -> Nodewatch {
        let config = config.validate().expect("valid test config");
        let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", proxy.local_addr().unwrap());
        let admin_url = format!("http://{}", admin.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let (handle_tx, handle_rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            server::run_with_handle(
                config,
                source,
                Listeners { proxy, admin },
                async move {
                    let _ = stopped.await;
                },
                move |h| {
                    let _ = handle_tx.send(h);
                },
            )
            .await
            .expect("nodewatch runs");
        });
        let handle = handle_rx.await.expect("nodewatch started");
        Nodewatch {
            url,
            admin: admin_url,
            handle,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Status of upstream `rank` (1-based) in the current snapshot.
    pub fn status(&self, rank: usize) -> Status {
        self.handle.snapshot.load().upstreams[rank - 1].status
    }

    /// Waits (up to `within`) until `check` holds on the snapshot; panics otherwise.
    pub async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        check: impl Fn(&nodewatch::upstream::Snapshot) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if check(&self.handle.snapshot.load()) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out after {within:?} waiting for {what}: {:#?}",
                    self.handle.snapshot.load()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every upstream has been probed healthy and the fork guard has judged its
    /// first round. That round is a second probe of every upstream, sent as soon as the first
    /// one has told the heads: a test counting the requests an upstream receives must not
    /// start while it is out.
    pub async fn wait_all_healthy(&self) {
        self.wait_for(
            "all upstreams healthy, first fork round judged",
            Duration::from_secs(10),
            |s| !s.fork_pending && s.upstreams.iter().all(|u| u.status == Status::Healthy),
        )
        .await;
    }

    /// The value of a metric line (exact name with labels) in `/metrics`, or 0.
    pub fn metric(&self, line_prefix: &str) -> f64 {
        let text = String::from_utf8(self.handle.metrics.encode()).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(line_prefix)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Stops the server (graceful) and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("nodewatch task");
        }
    }
}

impl Drop for Nodewatch {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
