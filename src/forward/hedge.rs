//! Hedged attempts: when a group's attempt has not answered after a delay (a quantile of
//! that upstream's recent latency for the calls' class, clamped), the same calls go to the
//! next candidate too, and the first good answer wins; the slower leg is dropped, which
//! closes its connection, so a late answer is never read. Calls with side effects are never
//! hedged, and every extra leg draws on the retry budget. A leg that lost to a later one
//! counts as a failed forward for its upstream's breaker: a hung node loses every race, so
//! its breaker opens after a few and it gets no more traffic; a healthy node's occasional
//! slow answer is followed by good ones, which reset the count. An upstream that does not
//! `spill` is not hedged away from while its calls wait for its rate.

use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;
use tower::retry::budget::Budget as _;

use crate::error::{is_node_trouble, UpstreamError};
use crate::jsonrpc::{Answer, Call};
use crate::method::{has_side_effects, is_unsupported};

use super::attempt::{attempt_timeout, class_of, Patience};
use super::Forward;

/// One leg's result; `None` for a leg that was dropped before it finished.
pub(super) type LegResult = Option<Result<Vec<Answer>, UpstreamError>>;

/// The legs of one group's attempt, in candidate order: `(upstream, result)`.
pub(super) type Legs = Vec<(usize, LegResult)>;

impl Forward<'_, '_> {
    /// The upstreams a group may be sent to, in order: its next candidate, then (when the
    /// group may be hedged) the candidates after it that every call of the group shares.
    pub(super) fn legs_of(&self, u: usize, items: &[usize]) -> Vec<usize> {
        let hedge = &self.settings.hedge;
        let mut legs = vec![u];
        let limits = &self.snapshot.handles[u].limits;
        let hedgeable = hedge.enabled
            && items
                .iter()
                .all(|&i| !has_side_effects(&self.calls[i].method))
            && (limits.spills() || !limits.pace.pressed(Instant::now()));
        if !hedgeable {
            return legs;
        }
        for k in 1..=hedge.max_extra {
            let at = |i: usize| {
                let plan = &self.plans[i];
                plan.candidates.get(plan.next + k).copied()
            };
            match at(items[0]) {
                Some(v) if items.iter().all(|&i| at(i) == Some(v)) => legs.push(v),
                _ => break,
            }
        }
        legs
    }

    /// Sends a group to `legs[0]`, and to each further leg once the ones before have taken
    /// longer than the hedge delay; returns when one leg answers, or every leg started has
    /// failed (plain failover then goes on in the next round).
    pub(super) async fn hedged(&self, legs: &[usize], items: &[usize]) -> Legs {
        let calls: Vec<&Call<'_>> = items.iter().map(|&i| self.calls[i]).collect();
        let calls = &calls;
        if let [only] = *legs {
            // Nothing to hedge with: the one leg, without the race's bookkeeping.
            let timeout = self.leg_timeout(only, items, calls);
            return vec![(only, Some(self.leg(only, items, calls, timeout).await))];
        }
        let delay = self.hedge_delay(legs[0], calls);
        let mut results: Legs = legs.iter().map(|&u| (u, None)).collect();
        let launch = |leg: usize| {
            let timeout = self.leg_timeout(legs[leg], items, calls);
            async move { (leg, self.leg(legs[leg], items, calls, timeout).await) }
        };
        let mut running = FuturesUnordered::new();
        running.push(launch(0));
        let (mut next, mut hedging) = (1, true);
        loop {
            let more = hedging && next < legs.len();
            tokio::select! {
                Some((leg, result)) = running.next() => {
                    // A leg wins with answers to keep; "method not found" or node trouble
                    // from a hedge must not cut off a slower node that has the answer.
                    let ok = matches!(&result, Ok(answers) if answers.iter().all(trustworthy));
                    results[leg].1 = Some(result);
                    if ok && leg > 0 {
                        self.count_win(legs[leg]);
                        for (u, result) in &results[..leg] {
                            if result.is_none() {
                                self.engine.lost_to_hedge(&self.snapshot.handles[*u]);
                            }
                        }
                    }
                    if ok || running.is_empty() {
                        return results;
                    }
                }
                () = tokio::time::sleep(delay), if more => {
                    if self.engine.answers.is_pressed() {
                        // The answer budget is the bottleneck, not the node: a second leg
                        // would only double the bytes waiting. Look again after a delay.
                        continue;
                    }
                    if self.may_hedge(legs[next]) {
                        running.push(launch(next));
                        next += 1;
                    } else {
                        hedging = false;
                    }
                }
            }
        }
    }

    /// Whether an extra leg to `v` may go: the retry budget has room.
    fn may_hedge(&self, v: usize) -> bool {
        if !self.budget.withdraw() {
            self.engine.metrics.retry_budget_exhausted.inc();
            return false;
        }
        let name = self.snapshot.handles[v].name.as_str();
        self.engine.metrics.hedges.with_label_values(&[name]).inc();
        true
    }

    fn count_win(&self, v: usize) {
        let name = self.snapshot.handles[v].name.as_str();
        self.engine
            .metrics
            .hedge_wins
            .with_label_values(&[name])
            .inc();
    }

    /// How long to wait for upstream `u` before hedging: a quantile of its recent attempts
    /// for the calls' class, within the configured bounds (the upper bound until enough
    /// attempts were seen).
    fn hedge_delay(&self, u: usize, calls: &[&Call<'_>]) -> Duration {
        let hedge = &self.settings.hedge;
        self.snapshot.handles[u]
            .latency
            .quantile(class_of(calls), hedge.quantile)
            .unwrap_or(hedge.max_delay)
            .clamp(hedge.min_delay, hedge.max_delay)
    }

    /// An attempt's time: the rest of the request for the last candidate of every call,
    /// else the attempt timeout for what was asked.
    pub(super) fn leg_timeout(&self, u: usize, items: &[usize], calls: &[&Call<'_>]) -> Duration {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if self.is_last(u, items) {
            remaining
        } else {
            remaining.min(attempt_timeout(&self.settings.proxy, calls))
        }
    }

    /// Whether `u` is the last candidate of every call of the group.
    fn is_last(&self, u: usize, items: &[usize]) -> bool {
        items.iter().all(|&i| {
            let plan = &self.plans[i];
            plan.candidates[plan.next..].last() == Some(&u)
        })
    }

    async fn leg(
        &self,
        u: usize,
        items: &[usize],
        calls: &[&Call<'_>],
        timeout: Duration,
    ) -> Result<Vec<Answer>, UpstreamError> {
        let upstream = &self.snapshot.handles[u];
        let breaker = self.breakers[u];
        // No other candidate may take the calls: they wait for this upstream's budget.
        let patience = Patience {
            deadline: self.deadline,
            may_wait: self.is_last(u, items) || !upstream.limits.spills(),
        };
        self.engine
            .attempt(
                upstream,
                calls,
                self.batch,
                timeout,
                breaker,
                &self.settings.proxy,
                patience,
            )
            .await
    }
}

/// Whether an answer would be kept as it is (not "method not found", not node trouble).
fn trustworthy(answer: &Answer) -> bool {
    match answer {
        Answer::Error(e) => {
            !is_unsupported(e.code, &e.message) && !is_node_trouble(e.code, &e.message)
        }
        Answer::Result(_) => true,
    }
}
