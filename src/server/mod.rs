//! Wiring: builds the upstreams, the monitor, the proxy and admin services, serves both
//! listeners until the shutdown future completes, then drains in-flight requests (bounded
//! by the shutdown grace). Client connections are served on the threads of `threads`; the
//! accept loops, the admin endpoints and the monitor run on the caller's runtime. The
//! binary and the end-to-end tests both start nodewatch here, the tests on `127.0.0.1:0`.

mod conn;
mod threads;

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
use crate::cache::AnswerCache;
use crate::config::{Config, ConfigError, ValidConfig};
use crate::metrics::Metrics;
use crate::proxy::Proxy;
pub use crate::reload::{ConfigSource, Reloader};
use crate::settings::Settings;
use crate::shared::Shared;
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
    /// A thread serving clients could not be started.
    #[error("cannot start the threads serving clients: {0}")]
    Threads(std::io::Error),
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
    let builder = connection_builder(&config);
    let serving = threads::Serving {
        proxy: parts.proxy.clone(),
        builder: builder.clone(),
        first_byte: config.proxy.header_read_timeout,
        grace: config.proxy.shutdown_grace,
    };
    let threads = match threads::Threads::start(config.proxy.thread_count(), &serving) {
        Ok(threads) => threads,
        Err(e) => {
            let _ = parts.stop_monitor.send(true);
            return Err(ServerError::Threads(e));
        }
    };
    on_start(handle);
    let graceful = GracefulShutdown::new();
    let accepting = Accepting {
        builder,
        graceful: &graceful,
        threads: &threads,
        connections: Arc::new(Semaphore::new(config.proxy.max_connections)),
        first_byte: config.proxy.header_read_timeout,
    };
    accept_until(&listeners, &parts, &accepting, shutdown).await;
    info!("shutting down: no new connections, finishing in-flight requests");
    drop(listeners);
    let admin = conn::drain(graceful, config.proxy.shutdown_grace, "admin requests");
    tokio::join!(admin, threads.stop());
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
    let metrics = Metrics::new();
    let shared = Shared::new(
        &config.redis,
        metrics.redis_up.clone(),
        metrics.redis_errors.clone(),
    )
    .map(Arc::new);
    let upstreams = Upstream::all(config, shared.as_ref());
    let snapshot: SharedSnapshot = Arc::new(ArcSwap::from_pointee(Snapshot::initial(&upstreams)));
    // Shared by the request path and the monitor (which purges it after a deep reorg).
    let answers =
        Arc::new(AnswerCache::new(config.cache.max_bytes, &metrics).with_shared(shared.clone()));
    let (monitor, reporter) = Monitor::new(
        &upstreams,
        config,
        Arc::clone(&snapshot),
        metrics.clone(),
        Arc::clone(&answers),
    );
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
        answers,
    );
    let reloader = Reloader {
        source,
        proxy: proxy.clone(),
        reporter,
        snapshot: Arc::clone(&snapshot),
        metrics: metrics.clone(),
        listen: (config.listen, config.admin_listen),
        threads: config.proxy.threads,
        redis: config.redis.clone(),
        shared: shared.clone(),
    };
    let admin = Admin::new(
        Arc::clone(&snapshot),
        metrics.clone(),
        config.admin_reload.then(|| reloader.clone()),
    )
    .with_shared(shared.clone());
    info!(
        listen = %local(&listeners.proxy),
        admin = %local(&listeners.admin),
        threads = config.proxy.thread_count(),
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

/// The HTTP/1.1 + h2 server settings every connection is served with.
fn connection_builder(config: &Config) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.proxy.header_read_timeout)
        .keep_alive(true);
    builder
}

/// What the accept loop hands connections to.
struct Accepting<'a> {
    /// For admin connections.
    builder: auto::Builder<TokioExecutor>,
    /// Drains the admin connections.
    graceful: &'a GracefulShutdown,
    /// Serve the client connections.
    threads: &'a threads::Threads,
    /// Client connection slots (`proxy.max_connections`).
    connections: Arc<Semaphore>,
    /// How long an admin client has for its first byte.
    first_byte: Duration,
}

/// Accepts on both listeners until `shutdown` completes: client connections go to the
/// serving threads, admin ones get a task here.
async fn accept_until(
    listeners: &Listeners,
    parts: &Parts,
    accepting: &Accepting<'_>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let (accepted, permit): (_, Option<OwnedSemaphorePermit>) = tokio::select! {
            _ = &mut shutdown => return,
            (permit, accepted) = next_client(&accepting.connections, &listeners.proxy) => {
                (accepted, permit)
            }
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
        match permit {
            Some(permit) => accepting.threads.serve(stream, permit),
            None => {
                let conn = conn::Conn {
                    stream,
                    builder: accepting.builder.clone(),
                    watcher: accepting.graceful.watcher(),
                    first_byte: accepting.first_byte,
                };
                tokio::spawn(conn.serve_admin(parts.admin.clone()));
            }
        }
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
