//! A minimal JSON-RPC over HTTP/1.1 client on hyper-util's pooled client.

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// A keep-alive HTTP/1.1 client.
pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A client that keeps up to `idle` connections alive.
pub(crate) fn client(idle: usize) -> HttpClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(idle)
        .build(http)
}

/// POSTs a JSON body; returns the status and the whole answer body.
pub(crate) async fn post(
    client: &HttpClient,
    uri: &Uri,
    body: Bytes,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let request = Request::post(uri.clone())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))?;
    let response = client.request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// One item of a JSON-RPC answer, with the result left raw.
#[derive(Debug, Deserialize)]
pub(crate) struct RawAnswer<'a> {
    /// The id we sent (we always send numbers).
    pub(crate) id: Option<u64>,
    /// The result, unparsed.
    #[serde(borrow, default)]
    pub(crate) result: Option<&'a RawValue>,
    /// The error object, unparsed.
    #[serde(borrow, default)]
    pub(crate) error: Option<&'a RawValue>,
}

/// One call; fails on a transport error, a non-200 status or a JSON-RPC error.
pub(crate) async fn call(
    client: &HttpClient,
    uri: &Uri,
    method: &str,
    params: Value,
) -> anyhow::Result<Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let (status, bytes) = post(client, uri, Bytes::from(body.to_string())).await?;
    if status != StatusCode::OK {
        bail!("{method}: HTTP {status}");
    }
    let mut answer: Value = serde_json::from_slice(&bytes).context(method.to_string())?;
    if let Some(e) = answer.get("error") {
        bail!("{method}: {e}");
    }
    answer
        .get_mut("result")
        .map(Value::take)
        .ok_or_else(|| anyhow!("{method}: no result"))
}

/// A batch of calls; returns the results in call order. Fails on any error item.
pub(crate) async fn batch(
    client: &HttpClient,
    uri: &Uri,
    calls: &[(&str, Value)],
) -> anyhow::Result<Vec<Value>> {
    let body: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (m, p))| json!({"jsonrpc": "2.0", "id": i, "method": m, "params": p}))
        .collect();
    let (status, bytes) = post(client, uri, Bytes::from(Value::from(body).to_string())).await?;
    if status != StatusCode::OK {
        bail!("batch: HTTP {status}");
    }
    let answers: Vec<Value> = serde_json::from_slice(&bytes).context("batch answer")?;
    if answers.len() != calls.len() {
        bail!("batch: {} answers for {} calls", answers.len(), calls.len());
    }
    let mut results = vec![Value::Null; calls.len()];
    for mut a in answers {
        if let Some(e) = a.get("error") {
            bail!("batch item: {e}");
        }
        let id = a
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow!("batch: answer without a numeric id"))?;
        let slot = results
            .get_mut(id as usize)
            .ok_or_else(|| anyhow!("batch: unknown id {id}"))?;
        *slot = a.get_mut("result").map(Value::take).unwrap_or(Value::Null);
    }
    Ok(results)
}

/// `0x`-prefixed hex quantity.
pub(crate) fn quantity(n: u64) -> String {
    format!("0x{n:x}")
}

/// Parses a `0x` quantity.
pub(crate) fn parse_quantity(v: &Value) -> anyhow::Result<u64> {
    let s = v.as_str().ok_or_else(|| anyhow!("not a quantity: {v}"))?;
    Ok(u64::from_str_radix(s.trim_start_matches("0x"), 16)?)
}
