//! Wiring: builds the upstreams, the monitor, the proxy and admin services, serves both
//! listeners until the shutdown future completes, then drains in-flight requests (bounded
//! by the shutdown grace). The binary and the end-to-end tests both start nodewatch here,
//! the tests on `127.0.0.1:0`.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::admin::Admin;
use crate::config::{Config, ConfigError};
use crate::metrics::Metrics;
use crate::proxy::Proxy;
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

/// A running nodewatch's shared state, for callers that want to look inside (tests).
#[derive(Debug, Clone)]
pub struct Handle {
    /// The published health snapshot.
    pub snapshot: SharedSnapshot,
    /// The metrics registry.
    pub metrics: Metrics,
}

/// Serves until `shutdown` completes.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    run_with_handle(config, listeners, shutdown, |_| {}).await
}

/// As [`run`], first giving `on_start` a [`Handle`] to the running state.
pub async fn run_with_handle(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
    on_start: impl FnOnce(Handle),
) -> Result<(), ServerError> {
    let upstreams: Arc<[Upstream]> = Upstream::all(&config)?.into();
    let metrics = Metrics::new();
    let snapshot: SharedSnapshot = Arc::new(ArcSwap::from_pointee(Snapshot::initial(&upstreams)));
    let (monitor, reporter) = Monitor::new(
        Arc::clone(&upstreams),
        &config,
        Arc::clone(&snapshot),
        metrics.clone(),
    );
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let mut monitor_stop = stop_rx.clone();
    let monitor = tokio::spawn(monitor.run(async move {
        let _ = monitor_stop.wait_for(|stop| *stop).await;
    }));
    let proxy = Proxy::new(
        Arc::clone(&upstreams),
        Arc::clone(&snapshot),
        reporter,
        metrics.clone(),
        config.proxy.clone(),
    );
    let admin = Admin::new(Arc::clone(&snapshot), metrics.clone());
    on_start(Handle { snapshot, metrics });
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
    tokio::pin!(shutdown);
    loop {
        let (stream, is_admin) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listeners.proxy.accept() => (accepted, false),
            accepted = listeners.admin.accept() => (accepted, true),
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
        let io = TokioIo::new(stream);
        if is_admin {
            let admin = admin.clone();
            let service = service_fn(move |request| {
                let response = admin.handle(&request);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = graceful.watch(builder.serve_connection(io, service).into_owned());
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    debug!(error = %e, "admin connection ended with an error");
                }
            });
        } else {
            let proxy = proxy.clone();
            let service = service_fn(move |request| {
                let proxy = proxy.clone();
                async move { Ok::<_, Infallible>(proxy.handle(request).await) }
            });
            let connection = graceful.watch(builder.serve_connection(io, service).into_owned());
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    debug!(error = %e, "client connection ended with an error");
                }
            });
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
    stop_rx.mark_changed();
    info!("nodewatch stopped");
    Ok(())
}

fn local(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map_or_else(|_| "?".into(), |a| a.to_string())
}
