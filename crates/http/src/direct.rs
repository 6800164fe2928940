//! Plain-http HTTP/1.1 connections driven by the task that sends on them.
//!
//! hyper-util's pool gives every connection a task of its own: a request is handed to it
//! over a channel, and its answer head and every body chunk come back over channels, so
//! each exchange wakes two tasks several times (often on two threads). Here a request's own
//! task polls the connection ([`hyper::client::conn::http1::Connection`]) while it waits for
//! the head and while it reads the body ([`AnswerBody`]), and the connection goes back to an
//! idle list once the body is read. An idle connection is polled once when it is taken out:
//! one the server closed meanwhile shows as finished and is dropped, not used.
//!
//! A connection's socket is registered with the runtime that opened it, and is only driven
//! by that runtime's I/O driver. A server that runs one current-thread runtime per thread
//! calls [`keep_connections_per_thread`] on each of them, so connections are kept per
//! thread and never used where their driver does not run; elsewhere (one multi-thread
//! runtime, whose workers share a driver) every thread shares the same idle lists.
//!
//! Only `http://` goes this way. `https://` keeps hyper-util's pool, which negotiates h2 by
//! ALPN and multiplexes on it.

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::Authority;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::{innermost_cause, SendError};

/// The most an HTTP/1.1 connection buffers of what it reads (hyper's default is ~400 KiB): a
/// bound on what an answer holds before its reader has room for it, per connection.
pub const DEFAULT_READ_BUFFER_MAX: usize = 64 * 1024;

type Driver = http1::Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// The last per-thread connection set handed out; 0 is the shared one.
static LAST_THREAD_SET: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Which connections this thread may use: 0 (the shared ones) unless
    /// [`keep_connections_per_thread`] gave it its own.
    static THREAD_SET: Cell<u64> = const { Cell::new(0) };
}

/// Gives the calling thread connections of its own: from now on, the connections it opens
/// are reused only by it. For a thread that runs its own current-thread runtime (whose I/O
/// driver is the only one that can drive what it opens). Calling it again changes nothing.
pub fn keep_connections_per_thread() {
    THREAD_SET.with(|set| {
        if set.get() == 0 {
            set.set(LAST_THREAD_SET.fetch_add(1, Ordering::Relaxed) + 1);
        }
    });
}

/// Where idle connections are kept: per host, and per thread set.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    thread_set: u64,
    authority: Authority,
}

impl Key {
    fn here(authority: &Authority) -> Self {
        Self {
            thread_set: THREAD_SET.with(Cell::get),
            authority: authority.clone(),
        }
    }
}

/// One connection: the handle requests are sent with, and the future that does its I/O.
struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: Driver,
}

impl Conn {
    /// Polls the connection's I/O once; `true` when it has finished (closed by either side,
    /// or broken) and cannot carry another request.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        Pin::new(&mut self.driver).poll(cx).is_ready()
    }

    /// Whether the connection is open and idle, ready for a request now.
    fn is_reusable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        !self.drive(&mut cx) && matches!(self.sender.poll_ready(&mut cx), Poll::Ready(Ok(())))
    }
}

struct Idle {
    /// Boxed: a connection is ~800 bytes, moved between the idle list and answer bodies.
    conn: Box<Conn>,
    since: Instant,
}

/// Idle connections per host (and thread set), most recently used last.
pub(crate) struct Pool {
    idle: Mutex<HashMap<Key, Vec<Idle>>>,
    idle_timeout: Duration,
    max_idle_per_host: usize,
    connect_timeout: Option<Duration>,
}

impl Pool {
    pub(crate) fn new(
        idle_timeout: Duration,
        max_idle_per_host: usize,
        connect_timeout: Option<Duration>,
    ) -> Self {
        Self {
            idle: Mutex::new(HashMap::new()),
            idle_timeout,
            max_idle_per_host,
            connect_timeout,
        }
    }

    /// Sends `request` (origin-form URI, `Host` set) to `authority` on an idle connection or
    /// a new one, and returns the answer's head; the body is read through [`AnswerBody`],
    /// which keeps the connection going and gives it back when the body is done.
    pub(crate) async fn send(
        self: &Arc<Self>,
        authority: &Authority,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<AnswerBody>, SendError> {
        let key = Key::here(authority);
        let mut conn = match self.checkout(&key) {
            Some(conn) => conn,
            None => self.connect(authority).await?,
        };
        let mut answer = std::pin::pin!(conn.sender.send_request(request));
        let head = std::future::poll_fn(|cx| {
            let finished = conn.drive(cx);
            match answer.as_mut().poll(cx) {
                Poll::Ready(result) => Poll::Ready(result.map_err(|e| describe(&e))),
                Poll::Pending if finished => Poll::Ready(Err(SendError::Connect(
                    "connection closed before the answer".into(),
                ))),
                Poll::Pending => Poll::Pending,
            }
        })
        .await?;
        let (parts, body) = head.into_parts();
        let body = AnswerBody::direct(body, conn, (Arc::clone(self), key));
        Ok(Response::from_parts(parts, body))
    }

    /// The most recently used idle connection for `key` that is still open.
    fn checkout(&self, key: &Key) -> Option<Box<Conn>> {
        let authority = &key.authority;
        loop {
            let idle = {
                let mut hosts = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                let list = hosts.get_mut(key)?;
                // Expired ones are closed here (the probes come by every few seconds).
                let now = Instant::now();
                list.retain(|i| now.duration_since(i.since) < self.idle_timeout);
                list.pop()?
            };
            let mut conn = idle.conn;
            if conn.is_reusable() {
                tracing::trace!(%authority, "reusing an idle connection");
                return Some(conn);
            }
            tracing::trace!(%authority, "an idle connection was closed meanwhile; dropped");
        }
    }

    /// Puts a connection whose answer was read in full back on the idle list, if it can
    /// carry another request (the server may have asked to close it).
    fn checkin(&self, key: Key, mut conn: Box<Conn>) {
        let authority = &key.authority;
        if !conn.is_reusable() {
            tracing::trace!(%authority, "connection not reusable after its answer; closed");
            return;
        }
        tracing::trace!(%authority, "connection idle");
        let now = Instant::now();
        let mut hosts = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = hosts.entry(key).or_default();
        list.retain(|i| now.duration_since(i.since) < self.idle_timeout);
        if list.len() >= self.max_idle_per_host {
            list.remove(0);
        }
        list.push(Idle { conn, since: now });
    }

    async fn connect(&self, authority: &Authority) -> Result<Box<Conn>, SendError> {
        tracing::trace!(%authority, "connecting");
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port = authority.port_u16().unwrap_or(80);
        let connect = TcpStream::connect((host, port));
        let stream = match self.connect_timeout {
            Some(limit) => tokio::time::timeout(limit, connect)
                .await
                .map_err(|_| SendError::Connect(format!("connect: timed out after {limit:?}")))?,
            None => connect.await,
        }
        .map_err(|e| SendError::Connect(format!("connect: {e}")))?;
        stream
            .set_nodelay(true)
            .map_err(|e| SendError::Connect(format!("connect: {e}")))?;
        let (sender, driver) = http1::Builder::new()
            .max_buf_size(DEFAULT_READ_BUFFER_MAX)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| describe(&e))?;
        Ok(Box::new(Conn { sender, driver }))
    }
}

/// An answer's body: read from a connection this task drives ([`Pool`]), or from
/// hyper-util's pool. Dropped before its end, it closes a driven connection (the rest of
/// the answer would be in the way of the next one).
pub struct AnswerBody(Source);

enum Source {
    /// From a connection of [`Pool`], which goes back at the body's end.
    Direct {
        /// The body, fed by `conn` as it is polled.
        body: Incoming,
        /// The connection (`None` once finished or given back).
        conn: Option<Box<Conn>>,
        /// Where the connection goes back to.
        home: Option<(Arc<Pool>, Key)>,
    },
    /// From hyper-util's pool.
    Pooled(Incoming),
}

impl AnswerBody {
    /// A body from hyper-util's pool.
    pub(crate) fn pooled(body: Incoming) -> Self {
        Self(Source::Pooled(body))
    }

    fn direct(body: Incoming, conn: Box<Conn>, home: (Arc<Pool>, Key)) -> Self {
        Self(Source::Direct {
            body,
            conn: Some(conn),
            home: Some(home),
        })
    }

    fn incoming(&self) -> &Incoming {
        match &self.0 {
            Source::Direct { body, .. } | Source::Pooled(body) => body,
        }
    }
}

impl std::fmt::Debug for AnswerBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Source::Direct { .. } => "AnswerBody::Direct",
            Source::Pooled(_) => "AnswerBody::Pooled",
        })
    }
}

impl Body for AnswerBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut self.get_mut().0 {
            Source::Pooled(body) => Pin::new(body).poll_frame(cx),
            Source::Direct { body, conn, home } => {
                if conn.as_mut().is_some_and(|c| c.drive(cx)) {
                    *conn = None; // finished: what it read is in `body`
                }
                let frame = std::task::ready!(Pin::new(&mut *body).poll_frame(cx));
                // At the end, or past the last byte of a declared length (a reader that has
                // all it was told to expect need not ask again), the connection is free.
                if frame.is_none() || body.is_end_stream() {
                    if let (Some(c), Some((pool, key))) = (conn.take(), home.take()) {
                        pool.checkin(key, c);
                    }
                }
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming().is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming().size_hint()
    }
}

/// A hyper error as a [`SendError`]: its innermost cause, no URL (hyper's errors carry none).
fn describe(e: &hyper::Error) -> SendError {
    SendError::Connect(innermost_cause(e))
}
