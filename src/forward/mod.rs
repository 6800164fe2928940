//! The forwarding engine: sends calls to upstreams item by item until each has a trustworthy
//! answer.
//!
//! Every call gets its own candidate order ([`crate::router::select`] with the block it needs).
//! Each round groups the unanswered calls by their next candidate and sends each group as one
//! upstream request, all groups at once. A group that fails as a whole (connect error,
//! timeout, HTTP error, garbage, short batch) moves all its calls on; inside a good answer,
//! only the items that are node trouble ("header not found") or a `null` the node should not
//! have given move on — the rest are kept. Kept answers are then verified against their
//! block header (`verdicts`, [`crate::verify`]): a wrong one moves on too, and is never
//! served. Answers are merged back in call order. Retries
//! beyond the first round draw on a retry budget (tower's `TpsBudget`), so an outage cannot
//! multiply traffic onto the remaining nodes.

mod attempt;
mod cached;
mod hedge;
mod plan;
mod verdicts;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use arc_swap::ArcSwap;
use futures_util::future::join_all;
use tokio::time::Instant;
use tower::retry::budget::{Budget as _, TpsBudget};
use tracing::{debug, info, warn};

use crate::budget::AnswerBudget;
use crate::cache::AnswerCache;
use crate::config::RetryConfig;
use crate::error::{AttemptSummary, ClientError, UpstreamError, UpstreamErrorKind};
use crate::jsonrpc::{Answer, Call, RawJson};
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::upstream::breaker::BreakerState;
use crate::upstream::monitor::HealthReporter;
use crate::upstream::{SharedSnapshot, Snapshot, Upstream};
use crate::verify::cache::VerifiedCache;
use crate::verify::Fetch;
use hedge::Legs;
use plan::{doubt, group, plan_calls, Plan};

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

impl Served {
    /// The result an upstream gave (not an error, not nodewatch's own answer).
    fn upstream_result(&self) -> Option<&RawJson> {
        match self {
            Served {
                answer: Answer::Result(result),
                upstream: Some(_),
            } => Some(result),
            _ => None,
        }
    }
}

/// The outcome of forwarding a set of calls: an answer per call where one was had, and the
/// error for the others.
#[derive(Debug)]
pub struct Forwarded {
    /// Per call, in call order.
    pub served: Vec<Option<Served>>,
    /// Why the calls without an answer have none.
    pub failure: Option<ClientError>,
    /// How many calls the answer cache answered.
    pub cached: usize,
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
    /// The in-flight answer budget (sized at start-up).
    pub answers: AnswerBudget,
    /// Verified headers and receipt sets that answers are checked against (sized at
    /// start-up).
    pub verified: VerifiedCache,
    /// Final answers kept and served again (sized at start-up; the monitor purges it after a
    /// deep reorg).
    pub cache: Arc<AnswerCache>,
}

impl Engine {
    /// Forwards `calls` (sent upstream as a batch when `batch`).
    pub async fn forward(&self, calls: &[&Call<'_>], batch: bool) -> Forwarded {
        let mut forward = Forward::start(self, calls, batch);
        let cached = forward.answer_from_cache() + forward.answer_from_shared().await;
        let mut round = 0;
        while forward.round(round).await {
            round += 1;
        }
        forward.remember();
        let mut forwarded = forward.finish();
        forwarded.cached = cached;
        forwarded
    }
}

/// Verification fetches what answers are checked against through the engine: a fetch is a
/// forward whose answers are judged in turn, so the future is boxed (and declared `Send`
/// here, where the compiler can prove it).
impl Fetch for Engine {
    fn fetch<'s>(
        &'s self,
        calls: &'s [&'s Call<'s>],
    ) -> Pin<Box<dyn Future<Output = Vec<Option<Answer>>> + Send + 's>> {
        Box::pin(async move {
            let forwarded = self.forward(calls, calls.len() > 1).await;
            forwarded
                .served
                .into_iter()
                .map(|s| s.map(|s| s.answer))
                .collect()
        })
    }
}

/// One client request's calls on their way: what every round reads and updates.
struct Forward<'a, 'c> {
    /// The engine (metrics, health reports).
    engine: &'a Engine,
    /// The calls, in client order.
    calls: &'a [&'a Call<'c>],
    /// Whether the calls go upstream as a batch.
    batch: bool,
    /// Health when the request arrived: every round of it uses the same view.
    snapshot: Arc<Snapshot>,
    /// Settings when the request arrived.
    settings: Arc<Settings>,
    /// The retry budget retries draw on.
    budget: Arc<TpsBudget>,
    /// Each upstream's breaker when the request arrived.
    breakers: Vec<BreakerState>,
    /// Where each call stands, in call order.
    plans: Vec<Plan>,
    /// Every failed attempt, for the error when a call has no answer.
    errors: Vec<UpstreamError>,
    /// When the whole request must be done.
    deadline: Instant,
    /// The answer cache's purge generation when the request arrived (before any upstream
    /// was asked): its answers are not kept if a purge came since.
    cache_generation: u64,
    /// The shared cache's epoch when it was read (`None`: not read): final answers are
    /// shared in it.
    shared_epoch: Option<String>,
}

impl<'a, 'c> Forward<'a, 'c> {
    fn start(engine: &'a Engine, calls: &'a [&'a Call<'c>], batch: bool) -> Self {
        let snapshot = engine.snapshot.load_full();
        let settings = engine.settings.load_full();
        let budget = engine.budget.load_full();
        budget.deposit();
        let started = Instant::now();
        let breakers: Vec<BreakerState> = snapshot
            .handles
            .iter()
            .map(|u| u.breaker.state(started))
            .collect();
        // Routing sees an upstream that asked to slow down (and lets its calls go elsewhere),
        // or whose month of compute units is spent, as a last resort, like an open breaker,
        // so its calls do not spend a retry each on being refused; the attempt still sees
        // its real breaker.
        let routing: Vec<BreakerState> = snapshot
            .handles
            .iter()
            .zip(&breakers)
            .map(|(u, &b)| {
                let pressed =
                    (u.limits.spills() && u.limits.pace.pressed(started)) || u.limits.month_spent();
                if pressed {
                    BreakerState::Open
                } else {
                    b
                }
            })
            .collect();
        let plans = plan_calls(&snapshot, &routing, calls);
        Self {
            cache_generation: engine.cache.generation(),
            shared_epoch: None,
            engine,
            calls,
            batch,
            deadline: started + settings.proxy.request_timeout,
            snapshot,
            settings,
            budget,
            breakers,
            plans,
            errors: Vec::new(),
        }
    }

    /// Sends every unanswered call to its next candidate, grouped by upstream; false when
    /// nothing is left to send (all answered, candidates spent, time or budget out).
    async fn round(&mut self, round: usize) -> bool {
        let mut groups = group(&self.plans);
        if groups.is_empty() {
            return false;
        }
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            let timeout = self.settings.proxy.request_timeout;
            self.errors.push(UpstreamError::new(
                "(all)",
                UpstreamErrorKind::Timeout(timeout),
            ));
            return false;
        }
        if round > 0 && !self.within_budget(&mut groups) {
            return false;
        }
        let legs: Vec<Vec<usize>> = groups
            .iter()
            .map(|(u, items)| self.legs_of(*u, items))
            .collect();
        let attempts = groups
            .iter()
            .zip(&legs)
            .map(|((_, items), legs)| self.hedged(legs, items));
        let results = join_all(attempts).await;
        for ((_, items), legs) in groups.into_iter().zip(results) {
            self.settle_legs(&items, legs);
        }
        self.judge_answers().await;
        true
    }

    /// Takes a hedged group's legs into the plans, in candidate order, up to the last leg
    /// that finished: a leg dropped before it (the hedge won) is skipped, one after it (the
    /// first leg won) stays a candidate for the calls it did not answer.
    fn settle_legs(&mut self, items: &[usize], legs: Legs) {
        let Some(last) = legs.iter().rposition(|(_, result)| result.is_some()) else {
            return;
        };
        for (u, result) in legs.into_iter().take(last + 1) {
            match result {
                Some(result) => self.settle(u, items, result),
                None => self.skip(u, items),
            }
        }
    }

    /// Moves the calls whose next candidate is `u` past it (its leg was dropped).
    fn skip(&mut self, u: usize, items: &[usize]) {
        for &i in items {
            let plan = &mut self.plans[i];
            if plan.answer.is_none() && plan.candidates.get(plan.next) == Some(&u) {
                plan.next += 1;
            }
        }
    }

    /// Keeps the groups the retry budget allows; false when it allows none.
    fn within_budget(&self, groups: &mut Vec<(usize, Vec<usize>)>) -> bool {
        let allowed = groups.iter().take_while(|_| self.budget.withdraw()).count();
        if allowed < groups.len() {
            self.engine.metrics.retry_budget_exhausted.inc();
            debug!(denied = groups.len() - allowed, "retry budget exhausted");
            groups.truncate(allowed);
        }
        !groups.is_empty()
    }

    /// Takes one group's result into the plans.
    fn settle(&mut self, u: usize, items: &[usize], result: Result<Vec<Answer>, UpstreamError>) {
        match result {
            Err(e) => self.failed(u, items, e),
            Ok(answers) => {
                for (&i, answer) in items.iter().zip(answers) {
                    self.answered(u, i, answer);
                }
            }
        }
    }

    /// A group's attempt failed as a whole: every call in it moves on.
    fn failed(&mut self, u: usize, items: &[usize], e: UpstreamError) {
        let plans = &mut self.plans;
        let moves_on = items
            .iter()
            .any(|&i| plans[i].next + 1 < plans[i].candidates.len());
        let retryable = e.is_retryable();
        for &i in items {
            plans[i].next = if retryable {
                plans[i].next + 1
            } else {
                plans[i].candidates.len()
            };
        }
        if moves_on && retryable {
            let name = self.snapshot.handles[u].name.as_str();
            self.engine
                .metrics
                .failovers
                .with_label_values(&[name, e.outcome()])
                .inc();
        }
        debug!(error = %e, calls = items.len(), "attempt failed");
        self.errors.push(e);
    }

    /// Call `i` got `answer` from upstream `u`: kept, or doubted and moved on.
    fn answered(&mut self, u: usize, i: usize, answer: Answer) {
        let upstream = &self.snapshot.handles[u];
        let name = upstream.name.as_str();
        let plan = &mut self.plans[i];
        let served = Served {
            answer,
            upstream: Some(Arc::clone(upstream)),
        };
        let Some(reason) = doubt(self.calls[i], plan, &served.answer, u, &self.snapshot) else {
            plan.answer = Some(served);
            return;
        };
        if reason == plan::UNSUPPORTED {
            learn_unsupported(&self.engine.metrics, upstream, &self.calls[i].method);
        }
        plan.next += 1;
        if plan.next < plan.candidates.len() {
            self.engine
                .metrics
                .failovers
                .with_label_values(&[name, reason])
                .inc();
        }
        if let Answer::Error(e) = &served.answer {
            let kind = UpstreamErrorKind::NodeError {
                code: e.code,
                message: e.message.clone(),
            };
            self.errors.push(UpstreamError::new(name, kind));
        }
        plan.fallback = Some(served);
    }

    /// Every call's answer (or its best doubtful one), and the error for those without.
    fn finish(self) -> Forwarded {
        let mut missing = false;
        let served = self
            .plans
            .into_iter()
            .map(|p| {
                let served = match (p.answer, p.wrong, p.unverifiable) {
                    (Some(answer), _, _) => Some(answer),
                    (None, Some((upstream, wrong)), _) => {
                        Some(verdicts::no_verified_answer(&upstream, &wrong))
                    }
                    (None, None, Some(why)) => Some(verdicts::unverifiable(&why)),
                    (None, None, None) => p.fallback,
                };
                missing |= served.is_none();
                served
            })
            .collect();
        let failure = missing.then(|| {
            let summary = AttemptSummary(self.errors);
            warn!(calls = self.calls.len(), error = %summary, "no upstream could answer");
            ClientError::NoUpstream(summary)
        });
        Forwarded {
            served,
            failure,
            cached: 0,
        }
    }
}

/// Remembers that `upstream` does not serve `method` (counted and logged once per TTL).
fn learn_unsupported(metrics: &Metrics, upstream: &Upstream, method: &str) {
    if upstream
        .capabilities
        .learn_unsupported(method, Instant::now())
    {
        let label = crate::metrics::method_label(method);
        metrics
            .unsupported
            .with_label_values(&[upstream.name.as_str(), label])
            .inc();
        info!(
            upstream = upstream.name.as_str(),
            method, "upstream does not serve this method; sending it to the others first"
        );
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
