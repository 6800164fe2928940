//! One attempt: a group of calls sent to one upstream as one request, through its breaker
//! and admission limits, with the metrics, breaker and passive-health bookkeeping it causes.
//!
//! An upstream that answers "slow down" (HTTP 429, or limit answers inside a good one) is
//! paced ([`crate::upstream::pace`]); when no other candidate may take the calls, the attempt
//! waits for the upstream's budget and sends the refused calls again, until the request's
//! deadline, instead of failing them. A limit answer is back-pressure: it never counts
//! against the breaker or health.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::config::ProxyConfig;
use crate::error::{UpstreamError, UpstreamErrorKind, INTERNAL_ERROR};
use crate::jsonrpc::{self, Answer, Call, RawJson, RpcError};
use crate::method::{has_side_effects, MethodClass};
use crate::upstream::breaker::{self, BreakerState};
use crate::upstream::limit::{Decided, Refused};
use crate::upstream::pace::{is_limit_answer, is_rate_limited, Ticket};
use crate::upstream::Upstream;

use super::Engine;

/// How long an attempt may wait for its upstream's budget.
#[derive(Debug, Clone, Copy)]
pub(super) struct Patience {
    /// The request's deadline: no wait and no exchange goes past it.
    pub(super) deadline: Instant,
    /// No other candidate may take the calls (the last one, or an upstream that does not
    /// spill): they wait for the budget until the deadline, not the queue timeout, and
    /// calls the upstream refused with a limit answer are sent to it again.
    pub(super) may_wait: bool,
}

impl Engine {
    /// One upstream request for a group of calls (more, when calls it refused with a limit
    /// answer are sent again). Safe to drop half-way (a hedge that lost): the in-flight
    /// gauge and a claimed breaker trial are released by guards.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn attempt(
        &self,
        upstream: &Arc<Upstream>,
        calls: &[&Call<'_>],
        batch: bool,
        timeout: Duration,
        breaker: BreakerState,
        proxy: &ProxyConfig,
        patience: Patience,
    ) -> Result<Vec<Answer>, UpstreamError> {
        let _trial = match breaker {
            BreakerState::HalfOpen if !upstream.breaker.try_trial() => {
                return self.settled(upstream, Err(UpstreamErrorKind::BreakerOpen));
            }
            BreakerState::HalfOpen => Some(Trial(upstream)),
            _ => None,
        };
        let mut answers: Vec<Option<Answer>> = calls.iter().map(|_| None).collect();
        // A paced upstream gets at most a second's calls in one request: a larger batch
        // would not fit the provider's bucket.
        let methods = calls.iter().map(|c| c.method.as_str());
        let largest = upstream.limits.largest_batch(methods).unwrap_or(usize::MAX);
        let mut queue: VecDeque<Vec<usize>> = (0..calls.len())
            .collect::<Vec<_>>()
            .chunks(largest.max(1))
            .map(<[usize]>::to_vec)
            .collect();
        let (mut refused, mut failed) = (None, None);
        while let Some(chunk) = queue.pop_front() {
            let sent: Vec<&Call<'_>> = chunk.iter().map(|&i| calls[i]).collect();
            match self
                .exchange(upstream, &sent, batch, timeout, proxy, patience)
                .await
            {
                Ok((got, ticket)) => {
                    let mut limited = Vec::new();
                    for (&i, answer) in chunk.iter().zip(got) {
                        if matches!(&answer, Answer::Error(e) if is_limit_answer(e.code, &e.message))
                        {
                            limited.push(i);
                        }
                        answers[i] = Some(answer);
                    }
                    let pace = &upstream.limits.pace;
                    let now = Instant::now();
                    let answered = chunk.iter().filter(|&i| !limited.contains(i));
                    let units = upstream
                        .limits
                        .units(answered.map(|&i| calls[i].method.as_str()));
                    pace.delivered(u64::from(units), now);
                    if !limited.is_empty() {
                        pace.limited_ticket(None, now, Some(ticket));
                        self.count_limited(upstream);
                        if patience.may_wait {
                            queue.push_front(limited);
                        }
                    }
                }
                Err(kind) if is_rate_limited(&kind) && patience.may_wait => {
                    // The pace heard it with the answer's Retry-After (`Upstream::send_within`).
                    // Refused whole, the group may be more than the upstream ever takes at
                    // once: its halves go one after the other.
                    self.count_limited(upstream);
                    let (first, second) = chunk.split_at(chunk.len().div_ceil(2));
                    if !second.is_empty() {
                        queue.push_front(second.to_vec());
                    }
                    queue.push_front(first.to_vec());
                    refused = Some(kind);
                }
                Err(kind) => {
                    if is_rate_limited(&kind) {
                        self.count_limited(upstream);
                    }
                    // No budget before the deadline after a refusal: the refusal says why.
                    failed = Some(match kind {
                        UpstreamErrorKind::Busy(_) => refused.take().unwrap_or(kind),
                        kind => kind,
                    });
                    break;
                }
            }
        }
        let result = match failed {
            None => Ok(answers.into_iter().flatten().collect()),
            Some(kind) if answers.iter().all(Option::is_none) => Err(kind),
            // Some calls were answered: they are kept, the others carry the error (node
            // trouble: they move on to the next candidate).
            Some(kind) => {
                let why = format!(
                    "no upstream could answer: upstream {}: {kind}",
                    upstream.name
                );
                Ok(answers
                    .into_iter()
                    .map(|a| a.unwrap_or_else(|| internal_error(&why)))
                    .collect())
            }
        };
        self.settled(upstream, result)
    }

    /// One exchange of `calls` with `upstream`, once its limits admit it: the answers, one
    /// per call, and the request's place among the calls sent (its ticket).
    async fn exchange(
        &self,
        upstream: &Arc<Upstream>,
        calls: &[&Call<'_>],
        batch: bool,
        timeout: Duration,
        proxy: &ProxyConfig,
        patience: Patience,
    ) -> Result<(Vec<Answer>, Ticket), UpstreamErrorKind> {
        let asked = Instant::now();
        let until = match patience.may_wait {
            true => patience.deadline,
            false => (asked + proxy.queue_timeout).min(patience.deadline),
        };
        let billed = upstream
            .limits
            .units(calls.iter().map(|c| c.method.as_str()));
        let slot = match upstream.limits.admit(billed, until).await {
            Ok(slot) => slot,
            Err(Refused::Later(_)) => return Err(UpstreamErrorKind::Busy(until - asked)),
            Err(Refused::Spent(spent)) => {
                return Err(UpstreamErrorKind::BudgetSpent(spent.to_string()))
            }
        };
        let name = [upstream.name.as_str()];
        if slot.decided == Decided::Fallback {
            self.metrics.shared_fallbacks.with_label_values(&name).inc();
        }
        if upstream.limits.bills_credits() {
            let spent = self.metrics.credits_spent.with_label_values(&name);
            spent.inc_by(u64::from(billed));
        }
        if !slot.waited.is_zero() {
            self.metrics.rate_limit_waits.with_label_values(&name).inc();
            self.metrics
                .rate_limit_wait_seconds
                .with_label_values(&name)
                .inc_by(slot.waited.as_secs_f64());
        }
        let timeout = timeout.min(patience.deadline.saturating_duration_since(Instant::now()));
        let children = upstream.children(&self.metrics);
        let _counted = InFlight::new(&children.in_flight);
        let started = Instant::now();
        let body = Bytes::from(jsonrpc::encode_upstream(calls, batch));
        let may_give_way = !calls.iter().any(|c| has_side_effects(&c.method));
        let result = upstream
            .send_within(
                body,
                timeout,
                proxy.response_limit,
                &self.answers,
                may_give_way,
                proxy.request_timeout,
                Some(slot.ticket),
            )
            .await
            .map_err(|e| e.kind);
        // The node's time: what the attempt waited for the answer budget is not its doing.
        let waited = result
            .as_ref()
            .map_or(Duration::ZERO, |(_, waited)| *waited);
        let result = result.and_then(|(bytes, _)| {
            jsonrpc::parse_answers(&bytes, calls.len(), batch)
                .map_err(UpstreamErrorKind::InvalidAnswer)
        });
        let took = started.elapsed().saturating_sub(waited);
        children.duration.observe(took.as_secs_f64());
        if result.is_ok() {
            upstream.latency.record(class_of(calls), took);
        }
        result.map(|answers| (answers, slot.ticket))
    }

    /// Counts a limit answer from `upstream`.
    fn count_limited(&self, upstream: &Upstream) {
        let name = upstream.name.as_str();
        self.metrics.rate_limited.with_label_values(&[name]).inc();
    }

    /// An attempt dropped because a hedge to another upstream answered first: a failed
    /// forward for the breaker (not for health: the probes decide whether it is down).
    pub(super) fn lost_to_hedge(&self, upstream: &Upstream) {
        let name = upstream.name.as_str();
        self.metrics
            .upstream_attempts
            .with_label_values(&[name, "outpaced"])
            .inc();
        let transition = upstream.breaker.on_failure(Instant::now());
        breaker::report(&self.metrics, name, transition);
    }

    /// Counts an attempt's outcome, feeds the breaker and passive health.
    fn settled(
        &self,
        upstream: &Arc<Upstream>,
        result: Result<Vec<Answer>, UpstreamErrorKind>,
    ) -> Result<Vec<Answer>, UpstreamError> {
        let name = upstream.name.as_str();
        let result = result.map_err(|kind| UpstreamError::new(name, kind));
        match &result {
            Ok(_) => upstream.children(&self.metrics).ok.inc(),
            Err(e) => self
                .metrics
                .upstream_attempts
                .with_label_values(&[name, e.outcome()])
                .inc(),
        }
        let transition = match &result {
            Ok(_) => upstream.breaker.on_success(),
            // Asked to slow down: back-pressure, not a failed forward.
            Err(e) if is_rate_limited(&e.kind) => None,
            Err(e) if e.is_breaker_failure() => upstream.breaker.on_failure(Instant::now()),
            Err(_) => None,
        };
        breaker::report(&self.metrics, &upstream.name, transition);
        if let Err(e) = &result {
            if e.is_health_failure() {
                self.reporter.report_failure(upstream, e);
            }
        }
        result
    }
}

/// The answer for a call of a group whose attempt failed after other calls of it were
/// answered: -32603 with `message`, as when no upstream could answer.
fn internal_error(message: &str) -> Answer {
    let raw = serde_json::json!({"code": INTERNAL_ERROR, "message": message});
    Answer::Error(RpcError {
        code: INTERNAL_ERROR,
        message: message.to_owned(),
        raw: RawJson::from(raw.to_string()),
    })
}

/// The heaviest class among a group's calls.
pub(super) fn class_of(calls: &[&Call<'_>]) -> MethodClass {
    calls
        .iter()
        .map(|c| MethodClass::of(&c.method))
        .max()
        .unwrap_or(MethodClass::Ordinary)
}

/// How long one attempt of `calls` may take before another candidate is tried: the
/// heaviest call's class timeout, plus a little per further batch item.
pub(super) fn attempt_timeout(proxy: &ProxyConfig, calls: &[&Call<'_>]) -> Duration {
    let base = match class_of(calls) {
        MethodClass::Light => proxy.light_attempt_timeout,
        MethodClass::Ordinary => proxy.attempt_timeout,
        MethodClass::Heavy => proxy.heavy_attempt_timeout,
    };
    let extra = u32::try_from(calls.len().saturating_sub(1)).unwrap_or(u32::MAX);
    base.saturating_add(proxy.attempt_timeout_per_item.saturating_mul(extra))
}

/// Holds an upstream's in-flight gauge up while an attempt runs.
struct InFlight<'a>(&'a prometheus::IntGauge);

impl<'a> InFlight<'a> {
    fn new(gauge: &'a prometheus::IntGauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A claimed half-open trial: released if the attempt is dropped before it settles (a
/// settled attempt has released it already, through the breaker's success or failure).
struct Trial<'a>(&'a Upstream);

impl Drop for Trial<'_> {
    fn drop(&mut self) {
        self.0.breaker.release_trial();
    }
}
