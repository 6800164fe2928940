//! Wiring: builds the upstreams, the monitor, the proxy and admin services, serves both
//! listeners until the shutdown future completes, then drains in-flight requests (bounded
//! by the shutdown grace). The binary and the end-to-end tests both start nodewatch here,
//! the tests on `127.0.0.1:0`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Semaphore};
use tracing::{debug, error, info, warn};

use crate::admin::Admin;
use crate::config::{Config, ConfigError, Overrides};
use crate::forward::Settings;
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::upstream::monitor::{HealthReporter, Monitor, Reload};
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

/// Where the configuration came from, so a reload reads it again the same way.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// `--config` file, if any.
    pub path: Option<PathBuf>,
    /// Command-line values.
    pub overrides: Overrides,
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

/// Re-reads the configuration and applies it live: upstreams added, removed and re-ranked,
/// thresholds and limits changed, without dropping in-flight requests; an invalid new
/// configuration is refused and the running one stays.
#[derive(Debug, Clone)]
pub struct Reloader {
    source: Option<ConfigSource>,
    proxy: Proxy,
    reporter: HealthReporter,
    snapshot: SharedSnapshot,
    metrics: Metrics,
    /// Addresses bound at start; a reload cannot move them.
    listen: (SocketAddr, SocketAddr),
}

impl Reloader {
    /// Reloads; counts and logs the result.
    pub async fn reload(&self) -> Result<(), ConfigError> {
        let result = self.try_reload().await;
        let label = if result.is_ok() { "ok" } else { "error" };
        self.metrics
            .config_reloads
            .with_label_values(&[label])
            .inc();
        match &result {
            Ok(()) => info!("configuration reloaded"),
            Err(e) => {
                error!(error = %e, "configuration reload refused; the running configuration stays")
            }
        }
        result
    }

    async fn try_reload(&self) -> Result<(), ConfigError> {
        let source = self.source.as_ref().ok_or_else(|| {
            ConfigError::from(
                "reload: nodewatch was started without a configuration source".to_string(),
            )
        })?;
        let config = Config::load(source.path.as_deref(), source.overrides.clone())?;
        if (config.listen, config.admin_listen) != self.listen {
            warn!("listen addresses cannot change on reload; restart nodewatch to move them");
        }
        let settings = Settings::from_config(&config)?;
        let upstreams = Upstream::rebuild(&config, &self.snapshot.load().handles)?;
        self.proxy.reconfigure(settings);
        let (done, published) = oneshot::channel();
        self.reporter
            .reload(Reload {
                upstreams,
                config,
                done,
            })
            .await;
        let _ = published.await;
        Ok(())
    }
}

/// Serves until `shutdown` completes.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    run_with_handle(config, None, listeners, shutdown, |_| {}).await
}

/// As [`run`], with the configuration's source (for reloads), first giving `on_start` a
/// [`Handle`] to the running state.
pub async fn run_with_handle(
    config: Config,
    source: Option<ConfigSource>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
    on_start: impl FnOnce(Handle),
) -> Result<(), ServerError> {
    let upstreams = Upstream::all(&config)?;
    let settings = Settings::from_config(&config)?;
    let metrics = Metrics::new();
    let snapshot: SharedSnapshot = Arc::new(ArcSwap::from_pointee(Snapshot::initial(&upstreams)));
    let (monitor, reporter) =
        Monitor::new(&upstreams, &config, Arc::clone(&snapshot), metrics.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut monitor_stop = stop_rx.clone();
    let monitor = tokio::spawn(monitor.run(async move {
        let _ = monitor_stop.wait_for(|stop| *stop).await;
    }));
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
    on_start(Handle {
        snapshot,
        metrics,
        reloader,
        proxy: proxy.clone(),
    });
    info!(
        listen = %local(&listeners.proxy),
        admin = %local(&listeners.admin),
        upstreams = ?upstreams.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
        "nodewatch started"
    );

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.proxy.header_read_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(config.proxy.max_connections));
    tokio::pin!(shutdown);
    loop {
        // A client connection is accepted only when a connection slot is free; until then
        // new clients wait in the kernel's listen backlog.
        let next_client = async {
            let permit = Arc::clone(&connections).acquire_owned().await;
            (permit.ok(), listeners.proxy.accept().await)
        };
        let (stream, permit) = tokio::select! {
            _ = &mut shutdown => break,
            (permit, accepted) = next_client => (accepted, permit),
            accepted = listeners.admin.accept() => (accepted, None),
        };
        let stream = match stream {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        let first_byte = config.proxy.header_read_timeout;
        match permit {
            None => {
                let admin = admin.clone();
                tokio::spawn(async move {
                    if !sends_within(&stream, first_byte).await {
                        return;
                    }
                    let service = service_fn(move |request| {
                        let admin = admin.clone();
                        async move { Ok::<_, Infallible>(admin.handle(request).await) }
                    });
                    let io = TokioIo::new(stream);
                    let connection =
                        watcher.watch(builder.serve_connection(io, service).into_owned());
                    if let Err(e) = connection.await {
                        debug!(error = %e, "admin connection ended with an error");
                    }
                });
            }
            Some(permit) => {
                let proxy = proxy.clone();
                tokio::spawn(async move {
                    if !sends_within(&stream, first_byte).await {
                        drop(permit);
                        return;
                    }
                    let idle = Idle::default();
                    let activity = idle.clone();
                    let service = service_fn(move |request| {
                        let (proxy, busy) = (proxy.clone(), activity.begin());
                        async move {
                            // Busy until the answer is written, not just made: a large
                            // answer to a slow reader is not an idle connection.
                            let response = proxy
                                .handle(request)
                                .await
                                .map(|body| Guarded { body, _busy: busy });
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let io = TokioIo::new(stream);
                    let connection =
                        watcher.watch(builder.serve_connection(io, service).into_owned());
                    tokio::select! {
                        result = connection => {
                            if let Err(e) = result {
                                debug!(error = %e, "client connection ended with an error");
                            }
                        }
                        () = idle.expired(first_byte) => {
                            debug!("client connection idle; closed");
                        }
                    }
                    drop(permit);
                });
            }
        }
    }

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
    let _ = stop_tx.send(true);
    let _ = monitor.await;
    info!("nodewatch stopped");
    Ok(())
}

/// Requests in flight on one client connection and when the last one ended. HTTP/1.1
/// keep-alive connections are closed by hyper's header read timeout once idle; HTTP/2 ones
/// have no such bound, so a client that opens one and sends no request would hold a
/// connection slot forever. A connection with no request in flight for the header read
/// timeout is closed (nothing is lost: no request is running on it).
#[derive(Clone, Default)]
struct Idle(Arc<std::sync::Mutex<(usize, Option<tokio::time::Instant>)>>);

/// Marks a request in flight until dropped.
struct Busy(Idle);

impl Idle {
    fn begin(&self) -> Busy {
        self.0.lock().expect("idle state").0 += 1;
        Busy(self.clone())
    }

    /// Completes once the connection has had no request in flight for `timeout`.
    async fn expired(&self, timeout: Duration) {
        let started = tokio::time::Instant::now();
        loop {
            let (in_flight, last) = *self.0.lock().expect("idle state");
            let deadline = last.unwrap_or(started) + timeout;
            if in_flight == 0 && tokio::time::Instant::now() >= deadline {
                return;
            }
            let wake = if in_flight == 0 {
                deadline
            } else {
                tokio::time::Instant::now() + timeout
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut state = self.0 .0.lock().expect("idle state");
        state.0 -= 1;
        state.1 = Some(tokio::time::Instant::now());
    }
}

/// A response body that keeps its connection [`Busy`] until it is written (or dropped); size
/// and end are passed through, so the answer keeps its Content-Length.
struct Guarded<B> {
    body: B,
    _busy: Busy,
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Guarded<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// Whether a new connection sends its first byte within `timeout`. hyper's header read
/// timeout starts only once the HTTP version is known, and that needs a first byte: without
/// this bound, a client that connects and sends nothing holds a connection slot forever,
/// and `max_connections` such clients lock everyone else out.
async fn sends_within(stream: &tokio::net::TcpStream, timeout: Duration) -> bool {
    let mut first = [0u8; 1];
    match tokio::time::timeout(timeout, stream.peek(&mut first)).await {
        Ok(Ok(n)) => n > 0,
        Ok(Err(_)) => false,
        Err(_) => {
            debug!(?timeout, "connection sent nothing; closed");
            false
        }
    }
}

fn local(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map_or_else(|_| "?".into(), |a| a.to_string())
}
