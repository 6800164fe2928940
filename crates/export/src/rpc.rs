//! A JSON-RPC batch client over HTTP(S) built on `hyper-util`. A batch
//! answer is checked before use: it must be an array with exactly one
//! response per request id, and no result may be null. Retriable failures
//! (transport errors, HTTP errors, garbled or short answers, null results,
//! JSON-RPC errors in ethereum-etl's retriable code ranges) are retried with
//! exponential backoff; when the attempts run out the error names the block
//! or transaction concerned, so a gap is never silent.

use std::time::Duration;

use bytes::Bytes;
use nodewatch_http::{ClientOptions, Endpoint, EndpointError, HttpClient, SendError};

use super::batch::{match_batch, match_batch_items, span};
pub use super::batch::{Call, Failure};
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

/// A JSON-RPC endpoint.
#[derive(Clone)]
pub struct RpcClient {
    client: HttpClient,
    endpoint: Endpoint,
    retry: RetryPolicy,
    timeout: Duration,
}

/// Per-request timeout, as ethereum-etl's provider uses.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest answer accepted (a batch of full blocks with traces is tens of MB on mainnet).
const RESPONSE_LIMIT: usize = 1024 * 1024 * 1024;

impl RpcClient {
    /// Builds a client for `provider_uri` (http or https only).
    pub fn new(provider_uri: &str, retry: RetryPolicy) -> Result<Self> {
        let endpoint = Endpoint::parse(provider_uri).map_err(|e| match e {
            EndpointError::Scheme(scheme) if scheme == "file" => ExportError::Usage(format!(
                "IPC providers are not supported ({provider_uri}); use an http:// or https:// URI"
            )),
            EndpointError::Scheme(other) => ExportError::Usage(format!(
                "unknown URI scheme {other:?} in provider URI {provider_uri:?}"
            )),
            EndpointError::NoHost => {
                ExportError::Usage(format!("provider URI {provider_uri:?} has no host"))
            }
            other => ExportError::Usage(format!("invalid provider URI {provider_uri:?}: {other}")),
        })?;
        let options = ClientOptions {
            // ethereum-etl (requests) waits on the operating system's connect timeout; the
            // retry policy handles a node that is not there yet.
            connect_timeout: None,
            ..ClientOptions::default()
        };
        Ok(RpcClient {
            client: nodewatch_http::client::build(&options),
            endpoint,
            retry: RetryPolicy {
                max_attempts: retry.max_attempts.max(1),
                ..retry
            },
            timeout: REQUEST_TIMEOUT,
        })
    }

    /// The same client with another per-request timeout (`export_traces -t`).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn post(&self, body: String) -> std::result::Result<Bytes, Failure> {
        let at = self.endpoint.redacted();
        nodewatch_http::post(
            &self.client,
            &self.endpoint,
            Bytes::from(body),
            self.timeout,
            RESPONSE_LIMIT,
        )
        .await
        .map_err(|e| {
            Failure::Retriable(match e {
                SendError::Connect(why) => format!("HTTP request to {at} failed: {why}"),
                SendError::Timeout(t) => format!("no answer from {at} within {}s", t.as_secs()),
                SendError::Body(why) => format!("reading the answer from {at} failed: {why}"),
                SendError::Status { status, snippet } => {
                    format!("HTTP {status} from {at}: {snippet}")
                }
                SendError::TooLarge(n) => format!("answer from {at} larger than {n} bytes"),
            })
        })
    }

    /// Sends `calls` as one JSON-RPC batch and returns the parsed answer.
    async fn post_batch(&self, calls: &[Call]) -> std::result::Result<PyValue, Failure> {
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
        serde_json::from_slice(&answer).map_err(|e| {
            Failure::Retriable(format!("garbled JSON-RPC answer ({e}) for {}", span(calls)))
        })
    }

    /// Sends `calls` as one JSON-RPC batch and returns their results in
    /// request order. One attempt, no retries.
    pub async fn batch_once(&self, calls: &[Call]) -> std::result::Result<Vec<PyValue>, Failure> {
        match_batch(calls, self.post_batch(calls).await?)
    }

    /// Like [`Self::batch`], but a call's JSON-RPC error is its answer
    /// (`Err(error object)`) instead of a failure of the batch.
    pub async fn batch_items<T, V>(&self, what: &str, calls: &[Call], mut validate: V) -> Result<T>
    where
        V: FnMut(Vec<std::result::Result<PyValue, PyValue>>) -> std::result::Result<T, Failure>,
    {
        let mut delay = self.retry.base_delay;
        let mut n = 1;
        loop {
            let answer = self.post_batch(calls).await;
            match answer
                .and_then(|a| match_batch_items(calls, a))
                .and_then(&mut validate)
            {
                Ok(v) => return Ok(v),
                Err(failure) => self.back_off(what, n, failure, &mut delay).await?,
            }
            n += 1;
        }
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
    pub async fn batch<T, V>(&self, what: &str, calls: &[Call], validate: V) -> Result<T>
    where
        V: FnMut(Vec<PyValue>) -> std::result::Result<T, Failure>,
    {
        // Locked only between awaits (never contended): the futures stay Send.
        let validate = std::sync::Mutex::new(validate);
        self.with_retries(what, || async {
            let answers = self.batch_once(calls).await?;
            let mut validate = validate.lock().unwrap_or_else(|e| e.into_inner());
            (*validate)(answers)
        })
        .await
    }
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
        let c = RpcClient::new(
            "https://user:p%40ss@node.example/rpc",
            RetryPolicy::default(),
        )
        .unwrap();
        assert_eq!(
            c.endpoint.headers()[http::header::AUTHORIZATION],
            "Basic dXNlcjpwQHNz"
        );
        assert_eq!(c.endpoint.uri().to_string(), "https://node.example/rpc");
        let plain = RpcClient::new("http://127.0.0.1:8545", RetryPolicy::default()).unwrap();
        assert!(plain.endpoint.headers().is_empty());
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
