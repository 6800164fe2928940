//! The one HTTP / JSON-RPC client of the tests (hyper-util's legacy client, plain HTTP).
//!
//! The free functions ([`post`], [`call`], [`get`], ...) make a new client (and connection)
//! per request: tests run each in their own tokio runtime, and a pooled connection must not
//! outlive the runtime that opened it. A [`Client`] keeps its connections, for a test that
//! sends many requests from one runtime (load, fuzzing), speaks HTTP/2 with prior knowledge,
//! or sends a body of its own making (a stream, no Content-Type).
//!
//! Every request has a wall-clock timeout ([`DEFAULT_TIMEOUT`]). Do not use these helpers in
//! a test with tokio's paused clock (`start_paused = true`): with real sockets the paused clock
//! auto-advances and the timeouts fire at once.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A request body: whole ([`body`]) or streamed ([`stream_body`]).
pub type Body = BoxBody<Bytes, std::io::Error>;

/// A whole body.
pub fn body(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|e| match e {}).boxed()
}

/// A body sent as these chunks (chunked transfer encoding: no Content-Length).
pub fn stream_body(chunks: Vec<Bytes>) -> Body {
    let frames = chunks.into_iter().map(|c| Ok(Frame::data(c)));
    StreamBody::new(futures_util::stream::iter(frames)).boxed()
}

/// What came back: the response head and the whole body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub version: http::Version,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An HTTP client that keeps its connections, with a wall-clock timeout per exchange.
pub struct Client {
    inner: LegacyClient<HttpConnector, Body>,
    timeout: Duration,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// HTTP/1.1, keep-alive, [`DEFAULT_TIMEOUT`].
    pub fn new() -> Client {
        Self::from_builder(LegacyClient::builder(TokioExecutor::new()))
    }

    /// HTTP/2 with prior knowledge (no upgrade), [`DEFAULT_TIMEOUT`].
    pub fn http2() -> Client {
        let mut builder = LegacyClient::builder(TokioExecutor::new());
        builder.http2_only(true);
        Self::from_builder(builder)
    }

    /// A connection per request, closed after it (what the free functions use).
    fn once() -> Client {
        let mut builder = LegacyClient::builder(TokioExecutor::new());
        builder.pool_max_idle_per_host(0);
        Self::from_builder(builder)
    }

    fn from_builder(builder: hyper_util::client::legacy::Builder) -> Client {
        Client {
            inner: builder.build_http(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same client with another timeout per exchange.
    pub fn timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// Sends `request`, reads the whole answer. Err on a transport failure (connection
    /// refused, reset, timeout, ...) with a description.
    pub async fn send(&self, request: http::Request<Body>) -> Result<Answer, String> {
        let what = format!("{} {}", request.method(), request.uri());
        let exchange = async {
            let response = self
                .inner
                .request(request)
                .await
                .map_err(|e| format!("{what}: {e:?}"))?;
            let (head, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| format!("{what}: reading body: {e}"))?
                .to_bytes();
            Ok(Answer {
                status: head.status.as_u16(),
                version: head.version,
                headers: head.headers,
                body,
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("{what}: no response within {:?}", self.timeout)),
        }
    }

    /// POST `body` as `application/json`.
    pub async fn post(&self, url: &str, body: impl Into<Bytes>) -> Result<Answer, String> {
        let request = http::Request::post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(self::body(body))
            .map_err(|e| format!("bad request for {url}: {e}"))?;
        self.send(request).await
    }

    /// GET `url`.
    pub async fn get(&self, url: &str) -> Result<Answer, String> {
        let request = http::Request::get(url)
            .body(self::body(Bytes::new()))
            .map_err(|e| format!("bad request for {url}: {e}"))?;
        self.send(request).await
    }
}

/// POST `body` as `application/json`; returns (HTTP status, response body). Err on a transport
/// failure (connection refused, reset, timeout, ...) with a description.
pub async fn try_post_timeout(
    url: &str,
    body: &str,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let answer = Client::once()
        .timeout(timeout)
        .post(url, body.to_owned())
        .await?;
    Ok((answer.status, answer.text()))
}

/// [`try_post_timeout`] with [`DEFAULT_TIMEOUT`].
pub async fn try_post(url: &str, body: &str) -> Result<(u16, String), String> {
    try_post_timeout(url, body, DEFAULT_TIMEOUT).await
}

/// POST `body` as `application/json`; returns (HTTP status, response body). Panics on a
/// transport failure.
pub async fn post(url: &str, body: &str) -> (u16, String) {
    try_post(url, body).await.unwrap_or_else(|e| panic!("{e}"))
}

/// Why a JSON-RPC call did not return a result.
#[derive(Debug, Clone, PartialEq)]
pub enum RpcError {
    /// No HTTP response (connection refused, timeout, ...).
    Transport(String),
    /// An HTTP status other than 200, or a body that is not a JSON-RPC response.
    Http { status: u16, body: String },
    /// A JSON-RPC error object.
    Rpc {
        code: i64,
        message: String,
        data: Option<Value>,
    },
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcError::Transport(e) => write!(f, "transport error: {e}"),
            RpcError::Http { status, body } => write!(f, "HTTP {status}: {body}"),
            RpcError::Rpc {
                code,
                message,
                data,
            } => {
                write!(f, "JSON-RPC error {code}: {message}")?;
                if let Some(d) = data {
                    write!(f, " (data: {d})")?;
                }
                Ok(())
            }
        }
    }
}

/// A JSON-RPC 2.0 request object with a fresh id.
pub fn request(method: &str, params: Value) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": NEXT_ID.fetch_add(1, Ordering::Relaxed),
        "method": method,
        "params": params,
    })
}

/// One JSON-RPC call; Ok(result) or the reason there is none.
pub async fn try_call_timeout(
    url: &str,
    method: &str,
    params: Value,
    timeout: Duration,
) -> Result<Value, RpcError> {
    let body = request(method, params).to_string();
    let (status, text) = try_post_timeout(url, &body, timeout)
        .await
        .map_err(RpcError::Transport)?;
    let http_err = || RpcError::Http {
        status,
        body: text.clone(),
    };
    if status != 200 {
        return Err(http_err());
    }
    let mut resp: Value = serde_json::from_str(&text).map_err(|_| http_err())?;
    if let Some(err) = resp.get("error").filter(|e| !e.is_null()) {
        return Err(RpcError::Rpc {
            code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            data: err.get("data").cloned(),
        });
    }
    match resp.get_mut("result") {
        Some(r) => Ok(r.take()),
        None => Err(http_err()),
    }
}

/// [`try_call_timeout`] with [`DEFAULT_TIMEOUT`].
pub async fn try_call(url: &str, method: &str, params: Value) -> Result<Value, RpcError> {
    try_call_timeout(url, method, params, DEFAULT_TIMEOUT).await
}

/// One JSON-RPC call; returns `result`, panics (with the error message) otherwise.
pub async fn call(url: &str, method: &str, params: Value) -> Value {
    match try_call(url, method, params.clone()).await {
        Ok(v) => v,
        Err(e) => panic!("{method}({params}) at {url} failed: {e}"),
    }
}

/// Parse a JSON-RPC quantity ("0x1a") as u64. Panics on anything else.
pub fn quantity(v: &Value) -> u64 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("expected a hex quantity, got {v}"));
    u64::from_str_radix(s.trim_start_matches("0x"), 16)
        .unwrap_or_else(|e| panic!("bad hex quantity {s:?}: {e}"))
}

/// `eth_blockNumber` as u64.
pub async fn block_number(url: &str) -> u64 {
    quantity(&call(url, "eth_blockNumber", json!([])).await)
}

/// GET `url`; (HTTP status, body). Err on a transport failure.
pub async fn try_get(url: &str) -> Result<(u16, String), String> {
    let answer = Client::once().get(url).await?;
    Ok((answer.status, answer.text()))
}

/// [`try_get`], panicking on a transport failure.
pub async fn get(url: &str) -> (u16, String) {
    try_get(url).await.unwrap_or_else(|e| panic!("{e}"))
}
