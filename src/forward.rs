//! The forwarding engine: sends calls to upstreams item by item until each has a trustworthy
//! answer.
//!
//! Every call gets its own candidate order ([`router::select`] with the block it needs).
//! Each round groups the unanswered calls by their next candidate and sends each group as one
//! upstream request, all groups at once. A group that fails as a whole (connect error,
//! timeout, HTTP error, garbage, short batch) moves all its calls on; inside a good answer,
//! only the items that are node trouble ("header not found") or a `null` the node should not
//! have given move on — the rest are kept. Answers are merged back in call order. Retries
//! beyond the first round draw on a retry budget (tower's `TpsBudget`), so an outage cannot
//! multiply traffic onto the remaining nodes.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use futures_util::future::join_all;
use tokio::time::Instant;
use tower::retry::budget::{Budget as _, TpsBudget};
use tracing::{debug, info, warn};

use crate::blocks::{self, BlockNeed};
use crate::config::{ProxyConfig, RetryConfig};
use crate::error::{
    is_node_trouble, AttemptSummary, ClientError, UpstreamError, UpstreamErrorKind,
};
use crate::jsonrpc::{self, Answer, Call};
use crate::metrics::Metrics;
use crate::router;
use crate::settings::Settings;
use crate::upstream::breaker::{BreakerState, BreakerTransition};
use crate::upstream::monitor::HealthReporter;
use crate::upstream::{SharedSnapshot, Snapshot, Upstream};

/// A retry budget as configured.
pub fn budget(retry: &RetryConfig) -> TpsBudget {
    TpsBudget::new(retry.window, retry.min_per_second, retry.ratio)
}

/// One call's answer and who gave it (`None`: answered by nodewatch itself).
#[derive(Debug)]
pub struct Served {
    /// The answer.
    pub answer: Answer,
    /// The upstream that gave it.
    pub upstream: Option<Arc<Upstream>>,
}

/// The outcome of forwarding a set of calls: an answer per call where one was had, and the
/// error for the others.
#[derive(Debug)]
pub struct Forwarded {
    /// Per call, in call order.
    pub served: Vec<Option<Served>>,
    /// Why the calls without an answer have none.
    pub failure: Option<ClientError>,
}

/// Where one call stands.
struct Plan {
    /// The block it needs.
    need: BlockNeed,
    /// Its candidates, best first (indices into the snapshot).
    candidates: Arc<[usize]>,
    /// Next candidate to try.
    next: usize,
    /// An answer to keep.
    answer: Option<Served>,
    /// The last doubtful answer (node trouble, `null`), returned if nothing better comes.
    fallback: Option<Served>,
}

/// The engine shared by every connection.
#[derive(Debug)]
pub struct Engine {
    /// Health as last published by the monitor.
    pub snapshot: SharedSnapshot,
    /// Passive health reports.
    pub reporter: HealthReporter,
    /// Recording.
    pub metrics: Metrics,
    /// Reloadable settings.
    pub settings: ArcSwap<Settings>,
    /// Retry budget.
    pub budget: ArcSwap<TpsBudget>,
}

impl Engine {
    /// Forwards `calls` (sent upstream as a batch when `batch`).
    pub async fn forward(&self, calls: &[&Call<'_>], batch: bool) -> Forwarded {
        let snapshot = self.snapshot.load_full();
        let settings = self.settings.load_full();
        let budget = self.budget.load_full();
        budget.deposit();
        let started = Instant::now();
        let deadline = started + settings.proxy.request_timeout;
        let breakers: Vec<BreakerState> = snapshot
            .handles
            .iter()
            .map(|u| u.breaker.state(started))
            .collect();
        let mut orders: Vec<(BlockNeed, Arc<[usize]>)> = Vec::new();
        let mut plans: Vec<Plan> = calls
            .iter()
            .map(|call| {
                let need = blocks::need(&call.method, call.params);
                let candidates = match orders.iter().find(|(n, _)| *n == need) {
                    Some((_, order)) => Arc::clone(order),
                    None => {
                        let order: Arc<[usize]> = router::select(&snapshot, need, &breakers).into();
                        orders.push((need, Arc::clone(&order)));
                        order
                    }
                };
                Plan {
                    need,
                    candidates,
                    next: 0,
                    answer: None,
                    fallback: None,
                }
            })
            .collect();
        let mut errors = Vec::new();
        for round in 0.. {
            let mut groups = group(&plans);
            if groups.is_empty() {
                break;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                errors.push(UpstreamError::new(
                    "(all)",
                    UpstreamErrorKind::Timeout(settings.proxy.request_timeout),
                ));
                break;
            }
            if round > 0 {
                let allowed = groups.iter().take_while(|_| budget.withdraw()).count();
                if allowed < groups.len() {
                    self.metrics.retry_budget_exhausted.inc();
                    debug!(denied = groups.len() - allowed, "retry budget exhausted");
                    groups.truncate(allowed);
                    if groups.is_empty() {
                        break;
                    }
                }
            }
            let timeout = remaining.min(settings.proxy.attempt_timeout);
            let attempts = groups.iter().map(|(u, items)| {
                let group: Vec<&Call<'_>> = items.iter().map(|&i| calls[i]).collect();
                let upstream = Arc::clone(&snapshot.handles[*u]);
                let (breaker, proxy) = (breakers[*u], &settings.proxy);
                async move {
                    self.attempt(&upstream, &group, batch, timeout, breaker, proxy)
                        .await
                }
            });
            let results = join_all(attempts).await;
            for ((u, items), result) in groups.into_iter().zip(results) {
                self.settle(&snapshot, calls, &mut plans, u, &items, result, &mut errors);
            }
        }
        let mut missing = false;
        let served = plans
            .into_iter()
            .map(|p| {
                let served = p.answer.or(p.fallback);
                missing |= served.is_none();
                served
            })
            .collect();
        let failure = missing.then(|| {
            let summary = AttemptSummary(errors);
            warn!(calls = calls.len(), error = %summary, "no upstream could answer");
            ClientError::NoUpstream(summary)
        });
        Forwarded { served, failure }
    }

    /// Takes one group's result into the plans.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &self,
        snapshot: &Snapshot,
        calls: &[&Call<'_>],
        plans: &mut [Plan],
        u: usize,
        items: &[usize],
        result: Result<Vec<Answer>, UpstreamError>,
        errors: &mut Vec<UpstreamError>,
    ) {
        let upstream = &snapshot.handles[u];
        let name = upstream.name.as_str();
        match result {
            Err(e) => {
                let moves_on = items
                    .iter()
                    .any(|&i| plans[i].next + 1 < plans[i].candidates.len());
                for &i in items {
                    plans[i].next += 1;
                }
                if moves_on {
                    self.metrics
                        .failovers
                        .with_label_values(&[name, e.outcome()])
                        .inc();
                }
                debug!(error = %e, calls = items.len(), "attempt failed");
                errors.push(e);
            }
            Ok(answers) => {
                for (&i, answer) in items.iter().zip(answers) {
                    let plan = &mut plans[i];
                    let served = Served {
                        answer,
                        upstream: Some(Arc::clone(upstream)),
                    };
                    match doubt(calls[i], plan, &served.answer, u, snapshot) {
                        None => plan.answer = Some(served),
                        Some(reason) => {
                            plan.next += 1;
                            if plan.next < plan.candidates.len() {
                                self.metrics
                                    .failovers
                                    .with_label_values(&[name, reason])
                                    .inc();
                            }
                            if let Answer::Error(e) = &served.answer {
                                errors.push(UpstreamError::new(
                                    name,
                                    UpstreamErrorKind::NodeError {
                                        code: e.code,
                                        message: e.message.clone(),
                                    },
                                ));
                            }
                            plan.fallback = Some(served);
                        }
                    }
                }
            }
        }
    }

    /// One upstream request for a group of calls.
    async fn attempt(
        &self,
        upstream: &Arc<Upstream>,
        calls: &[&Call<'_>],
        batch: bool,
        timeout: Duration,
        breaker: BreakerState,
        proxy: &ProxyConfig,
    ) -> Result<Vec<Answer>, UpstreamError> {
        let name = upstream.name.as_str();
        let metrics = &self.metrics;
        let refuse = |kind| Err(UpstreamError::new(name, kind));
        let result = if breaker == BreakerState::HalfOpen && !upstream.breaker.try_trial() {
            refuse(UpstreamErrorKind::BreakerOpen)
        } else if let Some(_slot) = upstream.limits.admit().await {
            let in_flight = metrics.upstream_in_flight.with_label_values(&[name]);
            in_flight.inc();
            let started = Instant::now();
            let body = Bytes::from(jsonrpc::encode_upstream(calls, batch));
            let result = upstream
                .send(body, timeout, proxy.response_limit)
                .await
                .and_then(|bytes| {
                    jsonrpc::parse_answers(&bytes, calls.len(), batch).map_err(|why| {
                        UpstreamError::new(name, UpstreamErrorKind::InvalidAnswer(why))
                    })
                });
            in_flight.dec();
            metrics
                .upstream_duration
                .with_label_values(&[name])
                .observe(started.elapsed().as_secs_f64());
            result
        } else {
            refuse(UpstreamErrorKind::Busy(proxy.queue_timeout))
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        metrics
            .upstream_attempts
            .with_label_values(&[name, outcome])
            .inc();
        let transition = match &result {
            Ok(_) => upstream.breaker.on_success(),
            Err(e) if e.is_breaker_failure() => upstream.breaker.on_failure(Instant::now()),
            Err(_) => None,
        };
        self.breaker_flipped(upstream, transition);
        if let Err(e) = &result {
            if e.is_health_failure() {
                self.reporter.report_failure(upstream, e);
            }
        }
        result
    }

    fn breaker_flipped(&self, upstream: &Upstream, transition: Option<BreakerTransition>) {
        let name = upstream.name.as_str();
        let (to, open) = match transition {
            None => return,
            Some(BreakerTransition::Opened) => {
                warn!(upstream = name, "circuit breaker opened");
                ("open", 1)
            }
            Some(BreakerTransition::Closed) => {
                info!(upstream = name, "circuit breaker closed");
                ("closed", 0)
            }
        };
        self.metrics
            .breaker_transitions
            .with_label_values(&[name, to])
            .inc();
        self.metrics
            .breaker_open
            .with_label_values(&[name])
            .set(open);
    }
}

/// Unanswered calls grouped by their next candidate, calls in order within a group.
fn group(plans: &[Plan]) -> Vec<(usize, Vec<usize>)> {
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        if plan.answer.is_some() {
            continue;
        }
        let Some(&u) = plan.candidates.get(plan.next) else {
            continue;
        };
        match groups.iter_mut().find(|(g, _)| *g == u) {
            Some((_, items)) => items.push(i),
            None => groups.push((u, vec![i])),
        }
    }
    groups
}

/// Why an answer from upstream `u` should be tried elsewhere, if it should.
fn doubt(
    call: &Call<'_>,
    plan: &Plan,
    answer: &Answer,
    u: usize,
    snapshot: &Snapshot,
) -> Option<&'static str> {
    match answer {
        Answer::Error(e) if is_node_trouble(e.code, &e.message) => Some("node_error"),
        Answer::Result(r) if r.is_null() && blocks::is_nullable(&call.method) => {
            let mine = snapshot.upstreams[u].head;
            let others = plan.candidates[plan.next + 1..]
                .iter()
                .map(|&j| snapshot.upstreams[j].head);
            // A null is believed unless a remaining candidate may know better: one that has
            // the block asked for, or is further along than this one.
            let may_know = |head: Option<u64>| match (head, plan.need) {
                (None, _) => true,
                (Some(h), BlockNeed::Number(n)) if h >= n => true,
                (Some(h), _) => mine.is_none_or(|m| h > m),
            };
            others.into_iter().any(may_know).then_some("null")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
