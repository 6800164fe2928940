//! The client side of the request path: HTTP in, parse, answer.
//!
//! A body is checked (POST, size limit) and parsed into items; each item is then answered by
//! one of three: the method policy (a denied method gets -32601 locally), the filter table
//! (nodewatch owns filter ids, see [`crate::filters`]), or the forwarding engine
//! ([`crate::forward`]), which sends the rest upstream with per-item failover. The answers are
//! merged back in request order with the client's own ids; notifications get none.

use std::sync::Arc;

use arc_swap::ArcSwap;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use tokio::time::Instant;
use tracing::debug;

use crate::body::ClientBody;
use crate::budget::AnswerBudget;
use crate::cache::AnswerCache;
use crate::error::ClientError;
use crate::filters::{is_filter_method, Filters};
use crate::forward::{self, Engine, Served};
use crate::jsonrpc::{self, Answer, Call, Item, Reply};
use crate::metrics::{method_label, Metrics};
use crate::settings::Settings;
use crate::upstream::monitor::HealthReporter;
use crate::upstream::SharedSnapshot;
use crate::verify::cache::VerifiedCache;

/// The proxy service state shared by every connection.
#[derive(Debug, Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Forwarding with failover.
    engine: Engine,
    /// Filters owned by nodewatch.
    filters: Filters,
}

/// How one item of a client request is answered.
enum Slot {
    /// Locally, with this error (invalid item, denied method, filter error).
    Local(ClientError),
    /// By a filter, or nodewatch itself.
    Served(Served),
    /// By the forward, at this position.
    Forward(usize),
}

impl Proxy {
    /// Creates the service, answering from `cache` (which the monitor purges).
    pub fn new(
        snapshot: SharedSnapshot,
        reporter: HealthReporter,
        metrics: Metrics,
        settings: Settings,
        cache: Arc<AnswerCache>,
    ) -> Self {
        let budget = forward::budget(&settings.retry);
        let verified = VerifiedCache::new(
            settings.verify.cache_bytes,
            metrics.verify_cache_bytes.clone(),
        );
        let answers = AnswerBudget::new(
            settings.proxy.max_inflight_bytes,
            metrics.answer_bytes.clone(),
            metrics.answer_budget_waits.clone(),
            metrics.answer_budget_gave_way.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                engine: Engine {
                    snapshot,
                    reporter,
                    metrics,
                    settings: ArcSwap::from_pointee(settings),
                    budget: ArcSwap::from_pointee(budget),
                    answers,
                    verified,
                    cache,
                },
                filters: Filters::default(),
            }),
        }
    }

    /// Replaces the reloadable settings (a changed retry configuration gets a new budget).
    pub fn reconfigure(&self, settings: Settings) {
        let engine = &self.inner.engine;
        if engine.settings.load().retry != settings.retry {
            engine
                .budget
                .store(Arc::new(forward::budget(&settings.retry)));
        }
        engine.settings.store(Arc::new(settings));
    }

    /// The in-flight answer budget in bytes (fixed at start-up).
    pub fn answer_budget(&self) -> usize {
        self.inner.engine.answers.total()
    }

    /// Filters currently held.
    pub fn filters(&self) -> usize {
        self.inner.filters.len()
    }

    /// Serves one HTTP request.
    pub async fn handle(&self, request: Request<Incoming>) -> Response<ClientBody> {
        if request.method() != Method::POST {
            return plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "nodewatch: send JSON-RPC requests as HTTP POST with a JSON body; \
                 health and metrics are on the admin listener\n",
            );
        }
        let (limit, body_timeout) = {
            let settings = self.inner.engine.settings.load();
            (settings.proxy.body_limit, settings.proxy.request_timeout)
        };
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return too_large(limit);
        }
        // A body that never ends (or drips) is bounded like the rest of the request, so a
        // client cannot hold a connection slot forever.
        let collected = tokio::time::timeout(
            body_timeout,
            Limited::new(request.into_body(), limit).collect(),
        )
        .await;
        let body = match collected {
            Err(_) => return body_timed_out(body_timeout),
            Ok(Ok(body)) => body.to_bytes(),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(limit),
            Ok(Err(e)) => {
                debug!(error = %e, "client body broke off");
                return plain(
                    StatusCode::BAD_REQUEST,
                    "nodewatch: request body broke off\n",
                );
            }
        };
        let (answer, cache) = self.serve_counted(&body).await;
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .header(CACHE_HEADER, cache.word())
            .body(answer)
            .expect("static response parts are valid")
    }

    /// Answers one JSON-RPC body (single or batch); the HTTP-free core of [`Proxy::handle`].
    pub async fn serve(&self, body: &[u8]) -> ClientBody {
        self.serve_counted(body).await.0
    }

    /// [`Proxy::serve`], and how much of the answer came from the answer cache.
    pub async fn serve_counted(&self, body: &[u8]) -> (ClientBody, CacheUse) {
        let Inner { engine, filters } = &*self.inner;
        let _in_flight = InFlight::new(&engine.metrics);
        let settings = engine.settings.load_full();
        let request = match jsonrpc::parse_request(body, settings.proxy.max_batch) {
            Ok(request) => request,
            Err(e) => return (jsonrpc::error_body(&e), CacheUse::default()),
        };
        let mut forwarded_calls: Vec<&Call<'_>> = Vec::with_capacity(request.items.len());
        let mut slots = Vec::with_capacity(request.items.len());
        for item in &request.items {
            slots.push(match item {
                Item::Invalid { .. } => None,
                Item::Call(call) if !settings.policy.allows(&call.method) => {
                    engine
                        .metrics
                        .denied
                        .with_label_values(&[method_label(&call.method)])
                        .inc();
                    Some(Slot::Local(ClientError::MethodNotAllowed(
                        call.method.clone(),
                    )))
                }
                Item::Call(call) if is_filter_method(&call.method) => {
                    Some(match filters.handle(call, engine).await {
                        Ok(served) => Slot::Served(served),
                        Err(e) => Slot::Local(e),
                    })
                }
                Item::Call(call) => {
                    forwarded_calls.push(call);
                    Some(Slot::Forward(forwarded_calls.len() - 1))
                }
            });
        }
        let forwarded = if forwarded_calls.is_empty() {
            None
        } else {
            Some(engine.forward(&forwarded_calls, request.batch).await)
        };
        let no_answer = ClientError::NoUpstream(Default::default());
        let failure = forwarded
            .as_ref()
            .and_then(|f| f.failure.as_ref())
            .unwrap_or(&no_answer);
        let mut tally = Tally::default();
        let replies = request.items.iter().zip(&slots).filter_map(|(item, slot)| {
            let (id, reply) = match (item, slot) {
                (Item::Invalid { id, error }, _) => (*id, Reply::Local(error)),
                (Item::Call(call), Some(slot)) => {
                    let served = match slot {
                        Slot::Local(e) => Err(e),
                        Slot::Served(served) => Ok(served),
                        Slot::Forward(pos) => forwarded
                            .as_ref()
                            .and_then(|f| f.served[*pos].as_ref())
                            .ok_or(failure),
                    };
                    tally.add(call, &served);
                    let reply = match served {
                        Ok(served) => Reply::Upstream(&served.answer),
                        Err(e) => Reply::Local(e),
                    };
                    (Some(call.id?), reply)
                }
                (Item::Call(_), None) => return None,
            };
            Some((id, reply))
        });
        let body = jsonrpc::encode_client(request.batch, replies);
        tally.record(&engine.metrics);
        let cache = CacheUse {
            calls: forwarded_calls.len(),
            hits: forwarded.as_ref().map_or(0, |f| f.cached),
        };
        (body, cache)
    }
}

/// The response header that says whether the answer came from the answer cache: `hit`
/// (every forwarded call), `partial` or `miss`.
pub const CACHE_HEADER: &str = "x-nodewatch-cache";

/// How much of one answer came from the answer cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheUse {
    /// Calls forwarded (or answered from the cache).
    pub calls: usize,
    /// Of those, answered from the cache.
    pub hits: usize,
}

impl CacheUse {
    /// The [`CACHE_HEADER`] value.
    pub fn word(self) -> &'static str {
        match (self.hits, self.calls) {
            (0, _) => "miss",
            (h, c) if h >= c => "hit",
            _ => "partial",
        }
    }
}

/// `nodewatch_requests_total` increments of one client request, summed per label set so a
/// batch of a hundred like calls costs one metric lookup, not a hundred.
#[derive(Default)]
struct Tally<'a> {
    counts: Vec<([&'a str; 3], u64)>,
}

impl<'a> Tally<'a> {
    fn add(&mut self, call: &Call<'_>, served: &Result<&'a Served, &ClientError>) {
        let (upstream, outcome) = match served {
            Ok(served) => (
                served
                    .upstream
                    .as_ref()
                    .map_or("nodewatch", |u| u.name.as_str()),
                match served.answer {
                    Answer::Result(_) => "ok",
                    Answer::Error(_) => "error",
                },
            ),
            Err(ClientError::NoUpstream(_)) => ("none", "failed"),
            Err(ClientError::MethodNotAllowed(_)) => ("nodewatch", "denied"),
            Err(_) => ("nodewatch", "error"),
        };
        let labels = [method_label(&call.method), upstream, outcome];
        match self.counts.iter_mut().find(|(l, _)| *l == labels) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((labels, 1)),
        }
    }

    fn record(self, metrics: &Metrics) {
        for (labels, n) in self.counts {
            metrics.requests.with_label_values(&labels).inc_by(n);
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

fn plain(status: StatusCode, text: &'static str) -> Response<ClientBody> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::ALLOW, "POST")
        .body(ClientBody::from(text))
        .expect("static response parts are valid")
}

fn body_timed_out(timeout: std::time::Duration) -> Response<ClientBody> {
    let body = jsonrpc::error_body(&ClientError::InvalidRequest(format!(
        "request body not received within {timeout:?}"
    )));
    Response::builder()
        .status(StatusCode::REQUEST_TIMEOUT)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONNECTION, "close")
        .body(body)
        .expect("static response parts are valid")
}

fn too_large(limit: usize) -> Response<ClientBody> {
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
        .body(body)
        .expect("static response parts are valid")
}
