//! The threads that serve client connections. Each runs a current-thread runtime of its
//! own: a connection, its requests and the upstream connections they use stay on one
//! thread, which parks in its own `epoll_wait`, and no request is handed between threads
//! (on one multi-thread runtime, workers wake and steal from each other: a small call cost
//! a third more CPU). The accept loop gives each new connection to the thread serving the
//! fewest, so long-lived keep-alive connections are spread evenly.
//!
//! Upstream connections opened by a thread are reused only by it
//! ([`nodewatch_http::keep_connections_per_thread`]): a socket is driven by the runtime that
//! opened it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tracing::{debug, warn};

use super::conn::{drain, Conn};
use crate::proxy::Proxy;

/// What every serving thread serves with.
#[derive(Clone)]
pub(super) struct Serving {
    /// The JSON-RPC service.
    pub(super) proxy: Proxy,
    /// The HTTP/1.1 + h2 connection builder.
    pub(super) builder: auto::Builder<TokioExecutor>,
    /// How long a client has for its first byte, and how long it may stay idle.
    pub(super) first_byte: Duration,
    /// How long in-flight requests may run on once the threads are stopped.
    pub(super) grace: Duration,
}

/// A client connection on its way to a thread, with its connection slot.
struct Handoff {
    stream: std::net::TcpStream,
    permit: OwnedSemaphorePermit,
    load: Load,
}

/// One connection counted against its thread until dropped.
struct Load(Arc<AtomicUsize>);

impl Load {
    fn hold(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(count))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A serving thread, seen from the accept loop.
struct Thread {
    handoff: mpsc::UnboundedSender<Handoff>,
    connections: Arc<AtomicUsize>,
    done: oneshot::Receiver<()>,
}

/// The serving threads.
pub(super) struct Threads(Vec<Thread>);

impl Threads {
    /// Starts `count` threads (at least one).
    pub(super) fn start(count: usize, serving: &Serving) -> std::io::Result<Self> {
        (0..count.max(1))
            .map(|index| spawn(index, serving.clone()))
            .collect::<std::io::Result<_>>()
            .map(Self)
    }

    /// Gives an accepted client connection to the thread serving the fewest.
    pub(super) fn serve(&self, stream: TcpStream, permit: OwnedSemaphorePermit) {
        let Some(thread) = self
            .0
            .iter()
            .min_by_key(|t| t.connections.load(Ordering::Relaxed))
        else {
            return;
        };
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => return warn!(error = %e, "cannot hand a client connection over; closed"),
        };
        let load = Load::hold(&thread.connections);
        if thread
            .handoff
            .send(Handoff {
                stream,
                permit,
                load,
            })
            .is_err()
        {
            warn!("a serving thread has stopped; client connection closed");
        }
    }

    /// Stops the threads: each stops taking connections, lets its in-flight requests
    /// finish (bounded by the grace period), and ends.
    pub(super) async fn stop(self) {
        let done: Vec<_> = self
            .0
            .into_iter()
            .map(|thread| {
                drop(thread.handoff);
                thread.done
            })
            .collect();
        for thread in done {
            let _ = thread.await;
        }
    }
}

fn spawn(index: usize, serving: Serving) -> std::io::Result<Thread> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (handoff, handed) = mpsc::unbounded_channel();
    let (finished, done) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("nodewatch-serve-{index}"))
        .spawn(move || {
            nodewatch_http::keep_connections_per_thread();
            runtime.block_on(serve(handed, serving));
            // Dropping the runtime cancels what the grace period did not let finish.
            drop(runtime);
            let _ = finished.send(());
        })?;
    Ok(Thread {
        handoff,
        connections: Arc::new(AtomicUsize::new(0)),
        done,
    })
}

/// One thread's loop: serves the connections handed to it until the accept loop stops,
/// then drains them.
async fn serve(mut handed: mpsc::UnboundedReceiver<Handoff>, serving: Serving) {
    let graceful = GracefulShutdown::new();
    while let Some(Handoff {
        stream,
        permit,
        load,
    }) = handed.recv().await
    {
        let stream = match TcpStream::from_std(stream) {
            Ok(stream) => stream,
            Err(e) => {
                warn!(error = %e, "cannot take a client connection over; closed");
                continue;
            }
        };
        let conn = Conn {
            stream,
            builder: serving.builder.clone(),
            watcher: graceful.watcher(),
            first_byte: serving.first_byte,
        };
        let proxy = serving.proxy.clone();
        tokio::spawn(async move {
            conn.serve_client(proxy, permit).await;
            drop(load);
        });
    }
    drain(graceful, serving.grace, "in-flight requests").await;
    debug!("serving thread stopped");
}
