//! Wiring: builds the upstreams, the monitor, the proxy and admin services, serves both
//! listeners until the shutdown future completes, then drains in-flight requests (bounded
//! by the shutdown grace). The binary and the end-to-end tests both start nodewatch here,
//! the tests on `127.0.0.1:0`.

mod conn;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::admin::Admin;
use crate::config::{Config, ConfigError, ValidConfig};
use crate::metrics::Metrics;
use crate::proxy::Proxy;
pub use crate::reload::{ConfigSource, Reloader};
use crate::settings::Settings;
use crate::upstream::monitor::Monitor;
use crate::upstream::{SharedSnapshot, Snapshot, Upstream};

/// Pause after a failed `accept` (e.g. out of file descriptors) before the next one.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// The two bound listeners.
#[derive(Debug)]
pub struct Listeners {
    /// JSON-RPC clients.
    pub proxy: TcpListener,
    /// Admin endpoints.
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds both addresses of a configuration.
    pub async fn bind(config: &Config) -> std::io::Result<Self> {
        Ok(Self {
            proxy: TcpListener::bind(config.listen).await?,
            admin: TcpListener::bind(config.admin_listen).await?,
        })
    }
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A running nodewatch's shared state, for the binary (SIGHUP) and tests.
#[derive(Debug, Clone)]
pub struct Handle {
    /// The published health snapshot.
    pub snapshot: SharedSnapshot,
    /// The metrics registry.
    pub metrics: Metrics,
    /// Re-reads the configuration.
    pub reloader: Reloader,
    /// The proxy service (e.g. for its filter count).
    pub proxy: Proxy,
}

/// Serves until `shutdown` completes.
pub async fn run(
    config: ValidConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    run_with_handle(config, None, listeners, shutdown, |_| {}).await
}

/// As [`run`], with the configuration's source (for reloads), first giving `on_start` a
/// [`Handle`] to the running state.
pub async fn run_with_handle(
    config: ValidConfig,
    source: Option<ConfigSource>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
    on_start: impl FnOnce(Handle),
) -> Result<(), ServerError> {
    let (parts, handle) = start(&config, source, &listeners);
    on_start(handle);
    let graceful = GracefulShutdown::new();
    accept_until(&config, &listeners, &parts, &graceful, shutdown).await;
    info!("shutting down: no new connections, finishing in-flight requests");
    drop(listeners);
    let grace = config.proxy.shutdown_grace;
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(
            ?grace,
            "in-flight requests still running after the grace period; closing"
        );
    }
    let _ = parts.stop_monitor.send(true);
    let _ = parts.monitor.await;
    info!("nodewatch stopped");
    Ok(())
}

/// What the accept loop serves with, and how the monitor is stopped afterwards.
struct Parts {
    /// The JSON-RPC service.
    proxy: Proxy,
    /// The admin service.
    admin: Admin,
    /// Set to `true` to stop the monitor.
    stop_monitor: watch::Sender<bool>,
    /// The monitor task.
    monitor: JoinHandle<()>,
}

/// Builds the upstreams, starts the monitor, and makes the proxy and admin services.
fn start(
    config: &ValidConfig,
    source: Option<ConfigSource>,
    listeners: &Listeners,
) -> (Parts, Handle) {
    let upstreams = Upstream::all(config);
    let metrics = Metrics::new();
    let snapshot: SharedSnapshot = Arc::new(ArcSwap::from_pointee(Snapshot::initial(&upstreams)));
    let (monitor, reporter) =
        Monitor::new(&upstreams, config, Arc::clone(&snapshot), metrics.clone());
    let (stop_monitor, mut stop) = watch::channel(false);
    let monitor = tokio::spawn(monitor.run(async move {
        let _ = stop.wait_for(|stop| *stop).await;
    }));
    let settings = Settings::new(config);
    let proxy = Proxy::new(
        Arc::clone(&snapshot),
        reporter.clone(),
        metrics.clone(),
        settings,
    );
    let reloader = Reloader {
        source,
        proxy: proxy.clone(),
        reporter,
        snapshot: Arc::clone(&snapshot),
        metrics: metrics.clone(),
        listen: (config.listen, config.admin_listen),
    };
    let admin = Admin::new(
        Arc::clone(&snapshot),
        metrics.clone(),
        config.admin_reload.then(|| reloader.clone()),
    );
    info!(
        listen = %local(&listeners.proxy),
        admin = %local(&listeners.admin),
        upstreams = ?upstreams.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
        "nodewatch started"
    );
    let handle = Handle {
        snapshot,
        metrics,
        reloader,
        proxy: proxy.clone(),
    };
    let parts = Parts {
        proxy,
        admin,
        stop_monitor,
        monitor,
    };
    (parts, handle)
}

/// Accepts on both listeners until `shutdown` completes, one task per connection.
async fn accept_until(
    config: &Config,
    listeners: &Listeners,
    parts: &Parts,
    graceful: &GracefulShutdown,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.proxy.header_read_timeout)
        .keep_alive(true);
    let connections = Arc::new(Semaphore::new(config.proxy.max_connections));
    let first_byte = config.proxy.header_read_timeout;
    tokio::pin!(shutdown);
    loop {
        let (accepted, permit): (_, Option<OwnedSemaphorePermit>) = tokio::select! {
            _ = &mut shutdown => return,
            (permit, accepted) = next_client(&connections, &listeners.proxy) => (accepted, permit),
            accepted = listeners.admin.accept() => (accepted, None),
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = conn::Conn {
            stream,
            builder: builder.clone(),
            watcher: graceful.watcher(),
            first_byte,
        };
        match permit {
            None => tokio::spawn(conn.serve_admin(parts.admin.clone())),
            Some(permit) => tokio::spawn(conn.serve_client(parts.proxy.clone(), permit)),
        };
    }
}

/// The next client connection, accepted only when a connection slot is free; until then
/// new clients wait in the kernel's listen backlog.
async fn next_client(
    connections: &Arc<Semaphore>,
    listener: &TcpListener,
) -> (
    Option<OwnedSemaphorePermit>,
    std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)>,
) {
    let permit = Arc::clone(connections).acquire_owned().await;
    (permit.ok(), listener.accept().await)
}

fn local(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map_or_else(|_| "?".into(), |a| a.to_string())
}
