//! One accepted connection: served as admin or as a client connection (which holds a
//! connection slot), closed when it sends nothing or stays idle, drained on shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tracing::{debug, warn};

use crate::admin::Admin;
use crate::proxy::Proxy;
use crate::sync::lock;

/// An accepted connection and what it is served with.
pub(super) struct Conn {
    /// The socket.
    pub(super) stream: TcpStream,
    /// The HTTP/1.1 + h2 connection builder.
    pub(super) builder: auto::Builder<TokioExecutor>,
    /// Lets a graceful shutdown wait for this connection.
    pub(super) watcher: Watcher,
    /// How long the client has for its first byte, and how long it may stay idle.
    pub(super) first_byte: Duration,
}

impl Conn {
    /// Serves the admin endpoints.
    pub(super) async fn serve_admin(self, admin: Admin) {
        if !sends_within(&self.stream, self.first_byte).await {
            return;
        }
        let service = service_fn(move |request| {
            let admin = admin.clone();
            async move { Ok::<_, Infallible>(admin.handle(request).await) }
        });
        let io = TokioIo::new(self.stream);
        let connection = self
            .watcher
            .watch(self.builder.serve_connection(io, service).into_owned());
        if let Err(e) = connection.await {
            debug!(error = %e, "admin connection ended with an error");
        }
    }

    /// Serves JSON-RPC clients, holding `permit` (a connection slot) until the connection
    /// ends or has been idle for the first-byte timeout.
    pub(super) async fn serve_client(self, proxy: Proxy, permit: OwnedSemaphorePermit) {
        if !sends_within(&self.stream, self.first_byte).await {
            drop(permit);
            return;
        }
        let idle = Idle::default();
        let activity = idle.clone();
        let service = service_fn(move |request| {
            let (proxy, busy) = (proxy.clone(), activity.begin());
            async move {
                // Busy until the answer is written, not just made: a large answer to a slow
                // reader is not an idle connection.
                let response = proxy
                    .handle(request)
                    .await
                    .map(|body| Guarded { body, _busy: busy });
                Ok::<_, Infallible>(response)
            }
        });
        let io = TokioIo::new(self.stream);
        let connection = self
            .watcher
            .watch(self.builder.serve_connection(io, service).into_owned());
        tokio::select! {
            result = connection => {
                if let Err(e) = result {
                    debug!(error = %e, "client connection ended with an error");
                }
            }
            () = idle.expired(self.first_byte) => {
                debug!("client connection idle; closed");
            }
        }
        drop(permit);
    }
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
        lock(&self.0).0 += 1;
        Busy(self.clone())
    }

    /// Completes once the connection has had no request in flight for `timeout`.
    async fn expired(&self, timeout: Duration) {
        let started = tokio::time::Instant::now();
        loop {
            let (in_flight, last) = *lock(&self.0);
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
        let mut state = lock(&self.0 .0);
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
async fn sends_within(stream: &TcpStream, timeout: Duration) -> bool {
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

/// Tells the connections `graceful` watches to finish, and waits for them at most `grace`;
/// what still runs then is cut off by the caller. `what` names them in the warning.
pub(super) async fn drain(graceful: GracefulShutdown, grace: Duration, what: &str) {
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(
            ?grace,
            "{what} still running after the grace period; closing"
        );
    }
}
