//! The one scripted upstream every test server is a use of: an HTTP server on 127.0.0.1:0
//! (HTTP/1.1 and h2, optionally behind TLS with a private CA) that hands each request, body
//! read, to a script (an async closure) and sends back whatever the script answers. It counts
//! the requests, the most it answered at once, and (when asked) records each one.
//!
//! The fault server ([`crate::fault`]), the HTTPS relay ([`crate::tls`]), the soak's chaos
//! relay ([`crate::relay`]) and the tests' echo, recorder and synthetic nodes are scripts.
//!
//! A script answers a [`Reply`]: `Ok(response)` is sent, `Err(_)` closes the connection
//! without an answer (a dead node). A body stream that fails half-way closes it mid-body.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_rustls::rustls;

/// A response body: whole, or a stream that may fail half-way.
pub use crate::rpc::{body, Body};

/// What a script answers: a response, or `Err` to close the connection without one.
pub type Reply = Result<http::Response<Body>, std::io::Error>;

type Script = Arc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

/// One request as the script sees it, its body read whole.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: http::Method,
    pub uri: http::Uri,
    pub version: http::Version,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Request {
    /// The body as text (empty if it is not UTF-8).
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or("")
    }

    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// Whether the body is a JSON-RPC batch (starts with `[`).
    pub fn is_batch(&self) -> bool {
        self.body.first() == Some(&b'[')
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A response with this status and an `application/json` body.
pub fn reply(status: u16, bytes: impl Into<Bytes>) -> http::Response<Body> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body(bytes))
        .expect("a valid response")
}

/// [`reply`] as a [`Reply`].
pub fn ok(status: u16, bytes: impl Into<Bytes>) -> Reply {
    Ok(reply(status, bytes))
}

/// Closes the connection without an answer.
pub fn close(why: &str) -> Reply {
    Err(std::io::Error::other(why.to_string()))
}

/// Relays the request body to `target` (an http URL): (status, body), or `None` when the
/// target did not answer.
pub async fn forward(target: &str, req: &Request) -> Option<(u16, String)> {
    crate::rpc::try_post(target, req.text()).await.ok()
}

/// How to start a [`Scripted`] upstream.
#[derive(Debug, Default, Clone, Copy)]
pub struct Builder {
    tls: bool,
    record: bool,
}

impl Builder {
    /// Serve HTTPS (`https://localhost:PORT`, h2 and HTTP/1.1 by ALPN) with a certificate
    /// from a private CA made for the test ([`Scripted::ca_file`]).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Keep every request ([`Scripted::seen`]); off by default, so a long soak does not grow.
    pub fn record(mut self) -> Self {
        self.record = true;
        self
    }

    /// Binds 127.0.0.1:0 and serves `script` for every request until dropped.
    pub async fn start<F, Fut>(self, script: F) -> Scripted
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let script: Script = Arc::new(move |req| Box::pin(script(req)));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a scripted upstream on 127.0.0.1:0");
        let addr = listener.local_addr().expect("a bound address");
        let (dir, acceptor) = if self.tls {
            let (dir, acceptor) = tls_acceptor();
            (Some(dir), Some(acceptor))
        } else {
            (None, None)
        };
        let url = match acceptor {
            Some(_) => format!("https://localhost:{}", addr.port()),
            None => format!("http://{addr}"),
        };
        let stats = Arc::new(Stats {
            record: self.record,
            ..Stats::default()
        });
        let task = tokio::spawn(accept(listener, acceptor, script, Arc::clone(&stats)));
        Scripted {
            url,
            addr,
            stats,
            dir,
            task,
        }
    }
}

/// A running scripted upstream; stops when dropped.
pub struct Scripted {
    url: String,
    addr: SocketAddr,
    stats: Arc<Stats>,
    /// Holds the CA file of a TLS server.
    dir: Option<tempfile::TempDir>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Stats {
    record: bool,
    requests: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    seen: Mutex<Vec<Request>>,
}

impl Scripted {
    /// A plain-HTTP scripted upstream that does not record requests.
    pub async fn start<F, Fut>(script: F) -> Scripted
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        Builder::default().start(script).await
    }

    /// The options: [`Builder::tls`], [`Builder::record`].
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// `http://127.0.0.1:PORT` (or `https://localhost:PORT`).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// PEM file of the CA that signed a TLS server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        let dir = self.dir.as_ref().expect("a TLS scripted upstream");
        dir.path().join("ca.pem")
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.stats.requests.load(Ordering::SeqCst)
    }

    /// Most requests it was answering at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.stats.max_in_flight.load(Ordering::SeqCst)
    }

    /// The requests received so far, in order (with [`Builder::record`]).
    pub fn seen(&self) -> Vec<Request> {
        assert!(self.stats.record, "start with Scripted::builder().record()");
        self.stats.seen.lock().unwrap().clone()
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    script: Script,
    stats: Arc<Stats>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (tls, script, stats) = (tls.clone(), Arc::clone(&script), Arc::clone(&stats));
        tokio::spawn(async move {
            let service =
                service_fn(move |req| serve(Arc::clone(&script), Arc::clone(&stats), req));
            let builder = auto::Builder::new(TokioExecutor::new());
            let _ = match tls {
                Some(tls) => match tls.accept(stream).await {
                    Ok(stream) => {
                        builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                    }
                    Err(_) => return,
                },
                None => {
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
            };
        });
    }
}

async fn serve(
    script: Script,
    stats: Arc<Stats>,
    req: http::Request<hyper::body::Incoming>,
) -> Reply {
    stats.requests.fetch_add(1, Ordering::SeqCst);
    let now = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    stats.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let _leave = Leave(&stats.in_flight);
    let (head, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let req = Request {
        method: head.method,
        uri: head.uri,
        version: head.version,
        headers: head.headers,
        body,
    };
    if stats.record {
        stats.seen.lock().unwrap().push(req.clone());
    }
    script(req).await
}

/// Decrements the in-flight count when a request is done (or dropped).
struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A private CA, a `localhost` certificate it signed, and an acceptor offering h2 and
/// HTTP/1.1; the CA's PEM is `ca.pem` in the returned directory.
fn tls_acceptor() -> (tempfile::TempDir, tokio_rustls::TlsAcceptor) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![server.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).unwrap(),
    )
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (dir, tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// A node that answers every call at once: `eth_chainId` with 1, `eth_syncing` with
/// `false`, anything else with `result`; while `refusing`, a 429 with `Retry-After: 1`
/// instead.
pub async fn constant_node(result: &'static str, refusing: Arc<AtomicBool>) -> Scripted {
    Scripted::start(move |req| {
        let refusing = refusing.load(Ordering::SeqCst);
        async move {
            if refusing {
                let mut r = reply(
                    429,
                    r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32005,"message":"rate limit"}}"#,
                );
                r.headers_mut()
                    .insert("retry-after", http::HeaderValue::from_static("1"));
                return Ok(r);
            }
            let answer = |call: &serde_json::Value| {
                let value = match call["method"].as_str() {
                    Some("eth_syncing") => serde_json::Value::Bool(false),
                    Some("eth_chainId") => serde_json::Value::String("0x1".into()),
                    _ => serde_json::Value::String(result.into()),
                };
                serde_json::json!({"jsonrpc": "2.0", "id": call["id"], "result": value})
            };
            let body = match req.json() {
                Some(serde_json::Value::Array(calls)) => {
                    serde_json::Value::Array(calls.iter().map(answer).collect())
                }
                Some(call) => answer(&call),
                None => return ok(400, "not JSON"),
            };
            ok(200, body.to_string())
        }
    })
    .await
}
