//! A JSON-RPC batch client over HTTP(S) built on `hyper-util`. A batch
//! answer is checked before use: it must be an array with exactly one
//! response per request id, and no result may be null. Retriable failures
//! (transport errors, HTTP errors, garbled or short answers, null results,
//! JSON-RPC errors in ethereum-etl's retriable code ranges) are retried with
//! exponential backoff; when the attempts run out the error names the block
//! or transaction concerned, so a gap is never silent.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use super::batch::{match_batch, span};
use super::error::{ExportError, Result};
use super::pyfmt::json_dumps;
use super::pyvalue::PyValue;

/// How often and how patiently a failed batch is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Total attempts, including the first one (at least 1).
    pub max_attempts: u32,
    /// Delay before the first retry; doubled for each further retry.
    pub base_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
        }
    }
}

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Worth another try (the node may catch up or recover).
    Retriable(String),
    /// Retrying cannot help (e.g. the node rejected the parameters).
    Fatal(String),
}

/// One call in a batch.
#[derive(Debug, Clone)]
pub struct Call {
    /// JSON-RPC method name.
    pub method: &'static str,
    /// The parameters array.
    pub params: PyValue,
    /// What this call is about, for error messages ("block 12", "transaction 0x…").
    pub label: String,
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A JSON-RPC endpoint.
#[derive(Clone)]
pub struct RpcClient {
    client: HttpClient,
    uri: http::Uri,
    authorization: Option<String>,
    retry: RetryPolicy,
    timeout: Duration,
}

/// Per-request timeout, as ethereum-etl's provider uses.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

impl RpcClient {
    /// Builds a client for `provider_uri` (http or https only).
    pub fn new(provider_uri: &str, retry: RetryPolicy) -> Result<Self> {
        let parsed = url::Url::parse(provider_uri).map_err(|e| {
            ExportError::Usage(format!("invalid provider URI {provider_uri:?}: {e}"))
        })?;
        match parsed.scheme() {
            "http" | "https" => {}
            "file" => {
                return Err(ExportError::Usage(format!(
                "IPC providers are not supported ({provider_uri}); use an http:// or https:// URI"
            )))
            }
            other => {
                return Err(ExportError::Usage(format!(
                    "unknown URI scheme {other:?} in provider URI {provider_uri:?}"
                )))
            }
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(ExportError::Usage(format!(
                "provider URI {provider_uri:?} has no host"
            )));
        }
        // Credentials in the URI become a Basic Authorization header, as requests does.
        let authorization =
            (!parsed.username().is_empty() || parsed.password().is_some()).then(|| {
                let user = percent_decode(parsed.username());
                let pass = percent_decode(parsed.password().unwrap_or(""));
                format!("Basic {}", base64(format!("{user}:{pass}").as_bytes()))
            });
        let mut parsed = parsed;
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        let uri: http::Uri = parsed.as_str().parse().map_err(|e| {
            ExportError::Usage(format!("invalid provider URI {provider_uri:?}: {e}"))
        })?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| ExportError::Usage(format!("TLS setup failed: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(RpcClient {
            client,
            uri,
            authorization,
            retry: RetryPolicy {
                max_attempts: retry.max_attempts.max(1),
                ..retry
            },
            timeout: REQUEST_TIMEOUT,
        })
    }

    async fn post(&self, body: String) -> std::result::Result<Bytes, Failure> {
        let mut request = http::Request::post(self.uri.clone())
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(auth) = &self.authorization {
            request = request.header(http::header::AUTHORIZATION, auth);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Failure::Fatal(format!("cannot build request: {e}")))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                Failure::Retriable(format!(
                    "HTTP request to {} failed: {}",
                    self.uri,
                    error_chain(&e)
                ))
            })?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| {
                    Failure::Retriable(format!("reading the answer from {} failed: {e}", self.uri))
                })?
                .to_bytes();
            if !status.is_success() {
                let snippet = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                return Err(Failure::Retriable(format!(
                    "HTTP {status} from {}: {snippet}",
                    self.uri
                )));
            }
            Ok(body)
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Retriable(format!(
                "no answer from {} within {}s",
                self.uri,
                self.timeout.as_secs()
            ))),
        }
    }

    /// Sends `calls` as one JSON-RPC batch and returns their results in
    /// request order. One attempt, no retries.
    pub async fn batch_once(&self, calls: &[Call]) -> std::result::Result<Vec<PyValue>, Failure> {
        let mut body = String::from("[");
        for (id, call) in calls.iter().enumerate() {
            if id > 0 {
                body.push(',');
            }
            body.push_str(&format!(
                "{{\"jsonrpc\":\"2.0\",\"method\":\"{}\",\"params\":{},\"id\":{id}}}",
                call.method,
                json_dumps(&call.params)
            ));
        }
        body.push(']');
        let answer = self.post(body).await?;
        let parsed: PyValue = serde_json::from_slice(&answer).map_err(|e| {
            Failure::Retriable(format!("garbled JSON-RPC answer ({e}) for {}", span(calls)))
        })?;
        match_batch(calls, parsed)
    }

    /// Runs `attempt` until it succeeds, fails fatally, or the retry policy is
    /// exhausted; the final error mentions `what`.
    pub async fn with_retries<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, Failure>>,
    {
        let mut delay = self.retry.base_delay;
        let mut n = 1;
        loop {
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(failure) => self.back_off(what, n, failure, &mut delay).await?,
            }
            n += 1;
        }
    }

    /// After failed attempt `n`: returns the final error, or waits before the next attempt.
    async fn back_off(
        &self,
        what: &str,
        n: u32,
        failure: Failure,
        delay: &mut Duration,
    ) -> Result<()> {
        match failure {
            Failure::Fatal(msg) => Err(ExportError::Rpc(format!("{what}: {msg}"))),
            Failure::Retriable(msg) if n >= self.retry.max_attempts => {
                Err(ExportError::Rpc(format!(
                    "{what}: giving up after {n} attempt{}: {msg}",
                    if n == 1 { "" } else { "s" }
                )))
            }
            Failure::Retriable(msg) => {
                eprintln!("warning: {what}: attempt {n} failed, retrying in {delay:?}: {msg}");
                tokio::time::sleep(*delay).await;
                *delay = (*delay * 2).min(Duration::from_secs(30));
                Ok(())
            }
        }
    }

    /// [`Self::batch_once`] plus a check of every result, retried as a whole.
    pub async fn batch<T, V>(&self, what: &str, calls: &[Call], mut validate: V) -> Result<T>
    where
        V: FnMut(Vec<PyValue>) -> std::result::Result<T, Failure>,
    {
        let mut delay = self.retry.base_delay;
        let mut n = 1;
        loop {
            match self.batch_once(calls).await.and_then(&mut validate) {
                Ok(v) => return Ok(v),
                Err(failure) => self.back_off(what, n, failure, &mut delay).await?,
            }
            n += 1;
        }
    }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes `%XX` escapes (user names and passwords in URLs).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_uri_is_validated() {
        for bad in ["not a url", "file:///tmp/geth.ipc", "ftp://x", "http://"] {
            let err = RpcClient::new(bad, RetryPolicy::default())
                .err()
                .expect(bad);
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
        assert!(RpcClient::new("http://127.0.0.1:8545", RetryPolicy::default()).is_ok());
    }

    #[test]
    fn credentials_in_the_uri_become_basic_auth() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"user:p@ss"), "dXNlcjpwQHNz");
        let c = RpcClient::new(
            "https://user:p%40ss@node.example/rpc",
            RetryPolicy::default(),
        )
        .unwrap();
        assert_eq!(c.authorization.as_deref(), Some("Basic dXNlcjpwQHNz"));
        assert_eq!(c.uri.to_string(), "https://node.example/rpc");
        let plain = RpcClient::new("http://127.0.0.1:8545", RetryPolicy::default()).unwrap();
        assert!(plain.authorization.is_none());
    }

    #[tokio::test]
    async fn retries_then_names_the_item() {
        let client = RpcClient::new(
            "http://127.0.0.1:1",
            RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(1),
            },
        )
        .unwrap();
        let mut attempts = 0;
        let err = client
            .with_retries("block 7", || {
                attempts += 1;
                async { Err::<(), _>(Failure::Retriable("nope".into())) }
            })
            .await
            .unwrap_err();
        assert_eq!(attempts, 3);
        assert!(err.to_string().contains("block 7"), "{err}");
    }
}
