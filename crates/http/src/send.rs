//! One POST of a JSON body to an [`Endpoint`], bounded in time and size.

use std::time::Duration;

use bytes::Bytes;
use http::uri::Authority;
use http::Request;
use http_body_util::{BodyExt, Full, Limited};

use crate::direct::AnswerBody;
use crate::error::{innermost_cause, retry_after, SendError, SendFailure};
use crate::{Endpoint, HttpClient};

/// How much of a non-200 answer's body is kept for the message.
const ERROR_SNIPPET: usize = 200;

/// POSTs `body` (JSON) with the endpoint's headers and returns the answer body: 200 only, at
/// most `limit` bytes, the whole exchange within `timeout`.
pub async fn post(
    client: &HttpClient,
    endpoint: &Endpoint,
    body: Bytes,
    timeout: Duration,
    limit: usize,
) -> Result<Bytes, SendError> {
    post_detailed(client, endpoint, body, timeout, limit)
        .await
        .map_err(|f| f.error)
}

/// As [`post`], with the server's `Retry-After` beside the error of a refused exchange.
pub async fn post_detailed(
    client: &HttpClient,
    endpoint: &Endpoint,
    body: Bytes,
    timeout: Duration,
    limit: usize,
) -> Result<Bytes, SendFailure> {
    match tokio::time::timeout(timeout, exchange(client, endpoint, body, limit)).await {
        Ok(result) => result,
        Err(_) => Err(SendError::Timeout(timeout).into()),
    }
}

async fn exchange(
    client: &HttpClient,
    endpoint: &Endpoint,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, SendFailure> {
    let answer = post_head_detailed(client, endpoint, body, limit).await?;
    match Limited::new(answer.body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(SendError::TooLarge(limit).into())
        }
        Err(e) => Err(SendError::Body(e.to_string()).into()),
    }
}

/// A 200 answer whose body is still to be read.
#[derive(Debug)]
pub struct AnswerHead {
    /// The body, unread.
    pub body: AnswerBody,
    /// Its length as the Content-Length header declares it (`None`: chunked, or HTTP/2
    /// without one), already checked against the limit.
    pub declared: Option<usize>,
}

/// POSTs `body` (JSON) with the endpoint's headers and returns the answer's head: 200 only,
/// a declared length within `limit`. Unbounded in time: the caller bounds it, and reads the
/// body itself (within `limit`) — as [`post`] does, or into memory it accounts for.
pub async fn post_head(
    client: &HttpClient,
    endpoint: &Endpoint,
    body: Bytes,
    limit: usize,
) -> Result<AnswerHead, SendError> {
    post_head_detailed(client, endpoint, body, limit)
        .await
        .map_err(|f| f.error)
}

/// As [`post_head`], with the server's `Retry-After` beside the error of a refused exchange
/// (a 429 or 503 that says when to call again).
pub async fn post_head_detailed(
    client: &HttpClient,
    endpoint: &Endpoint,
    body: Bytes,
    limit: usize,
) -> Result<AnswerHead, SendFailure> {
    let (request, direct) = request(endpoint, body)?;
    let response = match &direct {
        Some(authority) => client.direct.send(authority, request).await?,
        None => client
            .pooled
            .request(request)
            .await
            .map(|r| r.map(AnswerBody::pooled))
            .map_err(|e| SendError::Connect(describe_client_error(&e)))?,
    };
    let status = response.status();
    if status != http::StatusCode::OK {
        let retry_after = retry_after(response.headers());
        let error = SendError::Status {
            status: status.as_u16(),
            snippet: snippet(response.into_body()).await,
        };
        return Err(SendFailure { error, retry_after });
    }
    let declared = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(SendError::TooLarge(limit).into());
    }
    Ok(AnswerHead {
        body: response.into_body(),
        declared,
    })
}

/// The POST for `endpoint`, and the authority to reach it at when it goes through
/// [`crate::direct`] (plain http: origin-form target, `Host` set here).
fn request(
    endpoint: &Endpoint,
    body: Bytes,
) -> Result<(Request<Full<Bytes>>, Option<Authority>), SendError> {
    let uri = endpoint.uri();
    let direct = match (uri.scheme_str(), uri.authority()) {
        (Some("http"), Some(authority)) => Some(authority.clone()),
        _ => None,
    };
    let target = match &direct {
        Some(_) => uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
        None => uri.to_string(),
    };
    let mut request = Request::post(target)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(body))
        .map_err(|e| SendError::Connect(e.to_string()))?;
    if let Some(authority) = &direct {
        let host = http::HeaderValue::from_str(authority.as_str())
            .map_err(|e| SendError::Connect(e.to_string()))?;
        request.headers_mut().insert(http::header::HOST, host);
    }
    request.headers_mut().extend(
        endpoint
            .headers()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    Ok((request, direct))
}

/// The start of a body (up to [`ERROR_SNIPPET`] bytes, lossily decoded); the rest is not read.
async fn snippet(mut body: AnswerBody) -> String {
    let mut head = Vec::new();
    while head.len() < ERROR_SNIPPET {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    head.extend_from_slice(data);
                }
            }
            _ => break,
        }
    }
    head.truncate(ERROR_SNIPPET);
    String::from_utf8_lossy(&head).into_owned()
}

/// The innermost cause of a client error, without any URL (hyper's errors carry none, and
/// only the cause chain's messages are printed).
fn describe_client_error(e: &hyper_util::client::legacy::Error) -> String {
    let cause = innermost_cause(e);
    if e.is_connect() {
        format!("connect: {cause}")
    } else {
        cause
    }
}
