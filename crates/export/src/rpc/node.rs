//! One provider of the list ([`Node`]): the JSON-RPC batch request, the HTTP(S) post on
//! `nodewatch-http`, and the answer read once into per-call results, each as the type the
//! caller wants (a [`PyValue`], or the raw JSON text that verification reads first).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nodewatch_http::{Endpoint, EndpointError, HttpClient, SendError};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::batch::{match_batch, match_batch_items, parse_answer, Call, Failure};
use crate::error::{ExportError, Result};
use crate::pyfmt::json_dumps;
use crate::pyvalue::PyValue;

/// Per-request timeout, as ethereum-etl's provider uses.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest answer accepted (a batch of full blocks with traces is tens of MB on mainnet).
const RESPONSE_LIMIT: usize = 1024 * 1024 * 1024;

/// One provider of the list: where one attempt sends its batches. Cheap to clone.
#[derive(Clone)]
pub struct Node(pub(super) Arc<NodeInner>);

pub(super) struct NodeInner {
    pub(super) client: HttpClient,
    pub(super) endpoint: Endpoint,
    /// Per-request timeout (`export_traces -t`).
    pub(super) timeout: Duration,
}

impl Node {
    pub(super) fn new(uri: &str, client: &HttpClient) -> Result<Node> {
        let endpoint = Endpoint::parse(uri).map_err(|e| match e {
            EndpointError::Scheme(scheme) if scheme == "file" => ExportError::Usage(format!(
                "IPC providers are not supported ({uri}); use an http:// or https:// URI"
            )),
            EndpointError::Scheme(other) => ExportError::Usage(format!(
                "unknown URI scheme {other:?} in provider URI {uri:?}"
            )),
            EndpointError::NoHost => {
                ExportError::Usage(format!("provider URI {uri:?} has no host"))
            }
            other => ExportError::Usage(format!("invalid provider URI {uri:?}: {other}")),
        })?;
        Ok(Node(Arc::new(NodeInner {
            client: client.clone(),
            endpoint,
            timeout: REQUEST_TIMEOUT,
        })))
    }

    /// The provider's URI without credentials, for messages.
    pub fn name(&self) -> String {
        self.0.endpoint.redacted().to_string()
    }

    async fn post(&self, body: String) -> std::result::Result<Bytes, Failure> {
        let at = self.0.endpoint.redacted();
        nodewatch_http::post(
            &self.0.client,
            &self.0.endpoint,
            Bytes::from(body),
            self.0.timeout,
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

    /// Sends `calls` as one JSON-RPC batch; each call's result as `R`, or its error object.
    pub async fn answers<R: DeserializeOwned>(
        &self,
        calls: &[Call],
    ) -> std::result::Result<Vec<std::result::Result<R, PyValue>>, Failure> {
        let answer = self.post(batch_body(calls)).await?;
        match_batch_items(calls, parse_answer(calls, &answer)?)
    }

    /// Sends `calls` as one JSON-RPC batch and returns their results in request order (a
    /// JSON-RPC error fails the batch). One attempt, no retries.
    pub async fn batch_once(&self, calls: &[Call]) -> std::result::Result<Vec<PyValue>, Failure> {
        let answer = self.post(batch_body(calls)).await?;
        match_batch(calls, parse_answer(calls, &answer)?)
    }

    /// [`Self::batch_once`] with each result as its raw JSON text, for verification.
    pub async fn raw_once(
        &self,
        calls: &[Call],
    ) -> std::result::Result<Vec<Box<RawValue>>, Failure> {
        let answer = self.post(batch_body(calls)).await?;
        match_batch(calls, parse_answer(calls, &answer)?)
    }
}

/// A verified answer's raw JSON parsed to the value the mappers read.
pub fn parse_raw(raw: &RawValue) -> std::result::Result<PyValue, Failure> {
    serde_json::from_str(raw.get())
        .map_err(|e| Failure::Retriable(format!("garbled JSON-RPC result ({e})")))
}

/// The JSON-RPC batch request for `calls`, ids numbered from 0 as ethereum-etl does.
fn batch_body(calls: &[Call]) -> String {
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
    body
}
