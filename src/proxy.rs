//! The request path: HTTP in, parse, select candidates, forward with a deadline, fail over,
//! answer.
//!
//! One client request (single call or batch) is forwarded as one upstream request. An
//! attempt fails over to the next candidate on a connect error, a timeout, an HTTP status
//! other than 200, a body that is not a complete JSON-RPC answer (short batch, unknown ids,
//! garbage) or a node-trouble error; answers every node would give alike (reverts, nonce
//! errors) are returned as they are. When every candidate failed, the client gets the last
//! node-trouble answer if there was one, else a -32603 error naming the upstreams that
//! failed (by name only). The whole request is bounded by the request timeout, each attempt
//! by the attempt timeout.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::config::ProxyConfig;
use crate::error::{AttemptSummary, ClientError, UpstreamError, UpstreamErrorKind};
use crate::jsonrpc::{self, Answer, Call, Item, Reply};
use crate::metrics::{method_label, Metrics};
use crate::router;
use crate::upstream::monitor::HealthReporter;
use crate::upstream::{SharedSnapshot, Upstream};

/// The proxy service state shared by every connection.
#[derive(Debug, Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Upstreams in rank order (index = rank - 1), as the snapshot lists them.
    upstreams: Arc<[Upstream]>,
    /// Health as last published by the monitor.
    snapshot: SharedSnapshot,
    /// Passive health reports go here.
    reporter: HealthReporter,
    /// Recording.
    metrics: Metrics,
    /// Limits and timeouts.
    config: ProxyConfig,
}

/// A successful forward: the answers in call order and who gave them.
struct Forwarded {
    answers: Vec<Answer>,
    upstream: usize,
}

impl Proxy {
    /// Creates the service.
    pub fn new(
        upstreams: Arc<[Upstream]>,
        snapshot: SharedSnapshot,
        reporter: HealthReporter,
        metrics: Metrics,
        config: ProxyConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                upstreams,
                snapshot,
                reporter,
                metrics,
                config,
            }),
        }
    }

    /// Serves one HTTP request.
    pub async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        if request.method() != Method::POST {
            return plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "nodewatch: send JSON-RPC requests as HTTP POST with a JSON body; \
                 health and metrics are on the admin listener\n",
            );
        }
        let limit = self.inner.config.body_limit;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return too_large(limit);
        }
        let body = match Limited::new(request.into_body(), limit).collect().await {
            Ok(body) => body.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_large(limit),
            Err(e) => {
                debug!(error = %e, "client body broke off");
                return plain(
                    StatusCode::BAD_REQUEST,
                    "nodewatch: request body broke off\n",
                );
            }
        };
        let answer = self.serve(&body).await;
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(answer)))
            .expect("static response parts are valid")
    }

    /// Answers one JSON-RPC body (single or batch); the HTTP-free core of [`Proxy::handle`].
    pub async fn serve(&self, body: &[u8]) -> Vec<u8> {
        let inner = &self.inner;
        let _in_flight = InFlight::new(&inner.metrics);
        let request = match jsonrpc::parse_request(body, inner.config.max_batch) {
            Ok(request) => request,
            Err(e) => return jsonrpc::error_body(&e),
        };
        let calls: Vec<&Call<'_>> = request
            .items
            .iter()
            .filter_map(|item| match item {
                Item::Call(call) => Some(call),
                Item::Invalid { .. } => None,
            })
            .collect();
        let outcome = if calls.is_empty() {
            Err(ClientError::InvalidRequest(
                "no valid request in batch".into(),
            ))
        } else {
            self.forward(&calls, request.batch).await
        };
        self.count(&calls, &outcome);

        let mut answers = outcome.as_ref().ok().map(|f| f.answers.iter());
        let replies = request.items.iter().filter_map(|item| match item {
            Item::Invalid { id, error } => Some((*id, Reply::Local(error))),
            Item::Call(call) => {
                // Advance through the answers in call order, answered or not.
                let reply = match (&mut answers, &outcome) {
                    (Some(answers), _) => Reply::Upstream(answers.next()?),
                    (None, Err(e)) => Reply::Local(e),
                    (None, Ok(_)) => return None,
                };
                call.id.map(|id| (Some(id), reply))
            }
        });
        jsonrpc::encode_client(request.batch, replies)
    }

    async fn forward(&self, calls: &[&Call<'_>], batch: bool) -> Result<Forwarded, ClientError> {
        let inner = &self.inner;
        let body = Bytes::from(jsonrpc::encode_upstream(calls, batch));
        let candidates = router::select(&inner.snapshot.load());
        let deadline = Instant::now() + inner.config.request_timeout;
        let mut errors = Vec::new();
        let mut fallback: Option<Forwarded> = None;
        let mut previous: Option<(usize, &'static str)> = None;
        for index in candidates {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            let upstream = &inner.upstreams[index];
            if let Some((from, reason)) = previous {
                inner
                    .metrics
                    .failovers
                    .with_label_values(&[inner.upstreams[from].name.as_str(), reason])
                    .inc();
            }
            let timeout = remaining.min(inner.config.attempt_timeout);
            match self
                .attempt(upstream, body.clone(), timeout, calls.len(), batch)
                .await
            {
                Ok(answers) if !answers.iter().any(Answer::is_node_trouble) => {
                    return Ok(Forwarded {
                        answers,
                        upstream: index,
                    });
                }
                Ok(answers) => {
                    let e = node_trouble(upstream, &answers);
                    debug!(error = %e, "failing over");
                    previous = Some((index, e.outcome()));
                    errors.push(e);
                    fallback = Some(Forwarded {
                        answers,
                        upstream: index,
                    });
                }
                Err(e) => {
                    debug!(error = %e, "failing over");
                    if e.is_health_failure() {
                        inner.reporter.report_failure(index, &e);
                    }
                    previous = Some((index, e.outcome()));
                    errors.push(e);
                }
            }
        }
        if let Some(forwarded) = fallback {
            // Every node that answered reported trouble: its own error says the most.
            return Ok(forwarded);
        }
        if deadline <= Instant::now() {
            errors.push(UpstreamError::new(
                "(all)",
                UpstreamErrorKind::Timeout(inner.config.request_timeout),
            ));
        }
        let summary = AttemptSummary(errors);
        warn!(methods = calls.len(), error = %summary, "no upstream could answer");
        Err(ClientError::NoUpstream(summary))
    }

    /// One attempt: send, check the HTTP answer, parse and match the JSON-RPC answers.
    async fn attempt(
        &self,
        upstream: &Upstream,
        body: Bytes,
        timeout: Duration,
        expected: usize,
        batch: bool,
    ) -> Result<Vec<Answer>, UpstreamError> {
        let metrics = &self.inner.metrics;
        let started = Instant::now();
        let result = upstream
            .send(body, timeout, self.inner.config.response_limit)
            .await
            .and_then(|bytes| {
                jsonrpc::parse_answers(&bytes, expected, batch).map_err(|why| {
                    UpstreamError::new(upstream.name.clone(), UpstreamErrorKind::InvalidAnswer(why))
                })
            });
        let name = upstream.name.as_str();
        metrics
            .upstream_duration
            .with_label_values(&[name])
            .observe(started.elapsed().as_secs_f64());
        let outcome = match &result {
            Ok(answers) if answers.iter().any(Answer::is_node_trouble) => "node_error",
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        metrics
            .upstream_attempts
            .with_label_values(&[name, outcome])
            .inc();
        result
    }

    fn count(&self, calls: &[&Call<'_>], outcome: &Result<Forwarded, ClientError>) {
        let requests = &self.inner.metrics.requests;
        match outcome {
            Ok(forwarded) => {
                let upstream = self.inner.upstreams[forwarded.upstream].name.as_str();
                for (call, answer) in calls.iter().zip(&forwarded.answers) {
                    let result = match answer {
                        Answer::Result(_) => "ok",
                        Answer::Error(_) => "error",
                    };
                    requests
                        .with_label_values(&[method_label(&call.method), upstream, result])
                        .inc();
                }
            }
            Err(_) => {
                for call in calls {
                    requests
                        .with_label_values(&[method_label(&call.method), "none", "failed"])
                        .inc();
                }
            }
        }
    }
}

/// Counts a request in flight and its duration; drop-safe, so a client that hangs up
/// mid-request is still accounted for.
struct InFlight<'m> {
    metrics: &'m Metrics,
    started: Instant,
}

impl<'m> InFlight<'m> {
    fn new(metrics: &'m Metrics) -> Self {
        metrics.in_flight.inc();
        Self {
            metrics,
            started: Instant::now(),
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
        self.metrics
            .client_duration
            .observe(self.started.elapsed().as_secs_f64());
    }
}

fn node_trouble(upstream: &Upstream, answers: &[Answer]) -> UpstreamError {
    let (code, message) = answers
        .iter()
        .find_map(|a| match a {
            Answer::Error(e) if a.is_node_trouble() => Some((e.code, e.message.clone())),
            _ => None,
        })
        .unwrap_or_default();
    UpstreamError::new(
        upstream.name.clone(),
        UpstreamErrorKind::NodeError { code, message },
    )
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::ALLOW, "POST")
        .body(Full::new(Bytes::from_static(text.as_bytes())))
        .expect("static response parts are valid")
}

fn too_large(limit: usize) -> Response<Full<Bytes>> {
    let body = jsonrpc::encode_client(
        false,
        [(
            None,
            Reply::Local(&ClientError::InvalidRequest(format!(
                "request body larger than the limit of {limit} bytes"
            ))),
        )],
    );
    Response::builder()
        .status(StatusCode::PAYLOAD_TOO_LARGE)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}
