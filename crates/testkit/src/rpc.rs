//! A tiny async HTTP / JSON-RPC client for tests (hyper-util's legacy client, plain HTTP).
//!
//! A new client (and connection) is made per request: tests run each in their own tokio
//! runtime, and a pooled connection must not outlive the runtime that opened it.
//!
//! Every request has a wall-clock timeout ([`DEFAULT_TIMEOUT`]). Do not use these helpers in
//! a test with tokio's paused clock (`start_paused = true`): with real sockets the paused clock
//! auto-advances and the timeouts fire at once.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// POST `body` as `application/json`; returns (HTTP status, response body). Err on a transport
/// failure (connection refused, reset, timeout, ...) with a description.
pub async fn try_post_timeout(
    url: &str,
    body: &str,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http();
    let req = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .map_err(|e| format!("bad request for {url}: {e}"))?;
    let exchange = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| format!("POST {url}: {e:?}"))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("POST {url}: reading body: {e}"))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(format!("POST {url}: no response within {timeout:?}")),
    }
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
    let client: Client<_, http_body_util::Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http();
    let uri = url.parse().map_err(|e| format!("bad URL {url}: {e}"))?;
    let exchange = async {
        let response = client
            .get(uri)
            .await
            .map_err(|e| format!("GET {url}: {e:?}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("GET {url}: reading body: {e}"))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(DEFAULT_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("GET {url}: no response within {DEFAULT_TIMEOUT:?}")))
}

/// [`try_get`], panicking on a transport failure.
pub async fn get(url: &str) -> (u16, String) {
    try_get(url).await.unwrap_or_else(|e| panic!("{e}"))
}
