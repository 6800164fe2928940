//! Publishing: lag, chain and fork membership recomputed, each upstream's gauges set, and a
//! new immutable [`Snapshot`] stored for the request path.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;
use tracing::error;

use super::{Monitor, Record};
use crate::upstream::health::Status;
use crate::upstream::{Snapshot, UpstreamState};

impl Monitor {
    /// Recomputes lag and chain membership and publishes a new snapshot.
    pub(super) fn publish(&mut self) {
        let chain_id = self.expected_chain();
        let best_head = self.best_head(chain_id);
        let now = Instant::now();
        let states = (0..self.records.len())
            .map(|index| self.refresh(index, chain_id, best_head, now))
            .collect();
        if let Some(head) = best_head {
            self.metrics.best_head.set(head as i64);
        }
        self.snapshot.store(Arc::new(Snapshot {
            handles: self
                .records
                .iter()
                .map(|r| Arc::clone(&r.upstream))
                .collect(),
            best_head,
            chain_id,
            final_line: self.final_line(best_head),
            upstreams: states,
            fork_pending: self.fork.enabled && self.records.len() >= 2 && !self.fork_judged,
        }));
    }

    /// The answer cache's final line to publish, its gauge set.
    fn final_line(&self, best_head: Option<u64>) -> Option<u64> {
        let line = self.finality.published(best_head);
        if let Some(line) = line {
            self.metrics.cache_final_line.set(line as i64);
        }
        line
    }

    /// The highest head among healthy upstreams on the chain (any upstream's when none is
    /// healthy).
    pub(super) fn best_head(&self, chain_id: Option<u64>) -> Option<u64> {
        let heads = |healthy_only: bool| {
            self.records
                .iter()
                .filter(|r| on_chain(r, chain_id) && !r.fork.is_forked())
                .filter(|r| !healthy_only || r.health.status() == Status::Healthy)
                .filter_map(|r| r.health.head())
                .max()
        };
        heads(true).or_else(|| heads(false))
    }

    /// Upstream `index`'s lag and chain membership updated (transitions logged), its
    /// metrics set, and its published state.
    fn refresh(
        &mut self,
        index: usize,
        chain_id: Option<u64>,
        best_head: Option<u64>,
        now: Instant,
    ) -> UpstreamState {
        let wrong_chain = !on_chain(&self.records[index], chain_id);
        let transition = self.records[index]
            .health
            .update_lag(best_head, self.thresholds.max_lag);
        self.log_transition(index, transition);
        let record = &mut self.records[index];
        if wrong_chain && !record.wrong_chain {
            error!(
                upstream = record.upstream.name.as_str(),
                chain_id = record.chain_id,
                expected = chain_id,
                "upstream is on another chain; it will not be used"
            );
        }
        record.wrong_chain = wrong_chain;
        let state = state_of(record, index + 1, best_head, now);
        self.export(&state);
        state
    }

    /// Sets an upstream's gauges from its published state.
    fn export(&self, state: &UpstreamState) {
        let m = &self.metrics;
        let name = state.name.as_str();
        let up = state.status == Status::Healthy && !state.wrong_chain && !state.forked;
        m.upstream_up.with_label_values(&[name]).set(i64::from(up));
        m.upstream_rank
            .with_label_values(&[name])
            .set(state.rank as i64);
        m.upstream_wrong_chain
            .with_label_values(&[name])
            .set(i64::from(state.wrong_chain));
        m.upstream_quarantined
            .with_label_values(&[name])
            .set(i64::from(state.quarantined));
        m.upstream_forked
            .with_label_values(&[name])
            .set(i64::from(state.forked));
        m.upstream_syncing
            .with_label_values(&[name])
            .set(i64::from(state.syncing));
        m.upstream_unsupported
            .with_label_values(&[name])
            .set(state.unsupported_methods.len() as i64);
        // Counters per upstream exist from the start (at 0), so rates work at once.
        for counter in [&m.hedges, &m.hedge_wins, &m.upstream_wrong_answers] {
            let _ = counter.with_label_values(&[name]);
        }
        for counter in [&m.rate_limited, &m.rate_limit_waits] {
            let _ = counter.with_label_values(&[name]);
        }
        let _ = m.rate_limit_wait_seconds.with_label_values(&[name]);
        m.upstream_learned_rps
            .with_label_values(&[name])
            .set(state.learned_rps.unwrap_or(0.0));
        // Present (at 0) from the start for the upstreams they apply to.
        if state.rate_unit != "calls" {
            m.credits_spent.with_label_values(&[name]);
        }
        if state.budget_shared.is_some() {
            m.shared_fallbacks.with_label_values(&[name]);
        }
        if let (Some(spent), Some(budget)) = (state.month_credits, state.month_budget) {
            let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            m.month_credits.with_label_values(&[name]).set(clamp(spent));
            m.month_budget.with_label_values(&[name]).set(clamp(budget));
        }
        if let Some(head) = state.head {
            m.upstream_head.with_label_values(&[name]).set(head as i64);
        }
        if let Some(lag) = state.lag {
            m.upstream_lag.with_label_values(&[name]).set(lag as i64);
        }
    }
}

/// Whether a record is on the served chain (an unknown chain on either side counts as on
/// it).
fn on_chain(record: &Record, chain_id: Option<u64>) -> bool {
    chain_id.is_none() || record.chain_id.is_none() || record.chain_id == chain_id
}

/// What the snapshot shows of one upstream.
fn state_of(record: &Record, rank: usize, best_head: Option<u64>, now: Instant) -> UpstreamState {
    let health = &record.health;
    let age = now.saturating_duration_since(health.since());
    let wrong = record.upstream.wrong.state();
    let limits = &record.upstream.limits;
    let pace = limits.pace.view(now);
    let month = limits.month.as_ref().map(|m| m.view(SystemTime::now()));
    let shared = limits.shared_state();
    UpstreamState {
        name: record.upstream.name.clone(),
        rank,
        status: health.status(),
        head: health.head(),
        lag: health.lag(best_head),
        lagging: health.is_lagging(),
        latency_ms: health.latency().map(|d| d.as_secs_f64() * 1000.0),
        chain_id: record.chain_id,
        wrong_chain: record.wrong_chain,
        forked: record.fork.is_forked(),
        fork_block: record.fork.seen().cloned(),
        syncing: record.syncing,
        wrong_answers: wrong.total(),
        last_wrong: wrong
            .last(now)
            .map(|(ago, why)| (why.to_string(), ago.as_secs_f64())),
        quarantined: wrong.is_quarantined(now),
        unsupported_methods: record.upstream.capabilities.unsupported(now),
        last_error: health.last_error().map(str::to_string),
        last_error_age_secs: health
            .last_error_at()
            .map(|at| now.saturating_duration_since(at).as_secs_f64()),
        breaker: record.upstream.breaker.state(now),
        learned_rps: pace.rate,
        rate_limited: pace.limited,
        rate_limited_age_secs: pace.last_limited.map(|ago| ago.as_secs_f64()),
        rate_unit: limits.unit(),
        month_credits: month.as_ref().map(|m| m.spent),
        month_budget: month.as_ref().map(|m| m.budget),
        budget_key: shared.map(|(key, _)| key.to_owned()),
        budget_shared: shared.map(|(_, up)| up),
        status_age_secs: age.as_secs_f64(),
        since_unix: SystemTime::now()
            .checked_sub(age)
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|d| d.as_secs()),
    }
}
