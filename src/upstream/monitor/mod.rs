//! The health monitor: the one task that owns every upstream's [`Health`].
//!
//! Each probe interval it starts one probe per upstream (never two at once for the same
//! one); probe results and passive failures reported by the request path
//! ([`HealthReporter`]) are applied to the state machines, flips are logged and counted once,
//! and a fresh [`Snapshot`] is published for the lock-free request path. Every few probe
//! rounds a finality round (`final_round`) sets the answer cache's final line and purges the
//! cache after a deep reorg. A configuration reload hands it a new upstream list: upstreams
//! that stayed keep their health history.

mod final_round;
mod fork_round;
mod publish;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{info, warn};

use super::breaker;
use super::fork::ForkState;
use super::health::{Health, Observation, Transition};
use super::pace::is_rate_limited;
use super::probe::{probe, ProbeAsk, ProbeReport};
use super::{SharedSnapshot, Upstream};
use crate::cache::AnswerCache;
use crate::config::{Config, ForkConfig, HealthConfig};
use crate::error::{UpstreamError, UpstreamErrorKind};
use crate::metrics::Metrics;

/// Passive failures queued for the monitor; when full, further reports are dropped (the
/// monitor is already learning that the upstream is failing).
const PASSIVE_QUEUE: usize = 1024;

/// A new upstream list and settings, from a configuration reload.
#[derive(Debug)]
pub struct Reload {
    /// Upstreams in their new rank order (kept ones are the same `Arc`s).
    pub upstreams: Vec<Arc<Upstream>>,
    /// The new configuration.
    pub config: Config,
    /// Told once the new snapshot is published.
    pub done: oneshot::Sender<()>,
}

/// Handle the request path and the reloader use to talk to the monitor.
#[derive(Debug, Clone)]
pub struct HealthReporter {
    passive: mpsc::Sender<(Arc<Upstream>, String)>,
    reloads: mpsc::Sender<Reload>,
}

impl HealthReporter {
    /// Reports that a forward to `upstream` failed; never blocks.
    pub fn report_failure(&self, upstream: &Arc<Upstream>, error: &UpstreamError) {
        let _ = self
            .passive
            .try_send((Arc::clone(upstream), error.kind.to_string()));
    }

    /// Hands a reload to the monitor and waits until it is published.
    pub async fn reload(&self, reload: Reload) {
        if self.reloads.send(reload).await.is_err() {
            warn!("the health monitor has stopped; reload ignored");
        }
    }
}

/// Per-upstream bookkeeping next to the pure state machine.
struct Record {
    /// The upstream.
    upstream: Arc<Upstream>,
    /// The state machine.
    health: Health,
    /// Chain id last reported.
    chain_id: Option<u64>,
    /// Ask `eth_chainId` on the next probe: at start and after every fall.
    check_chain: bool,
    /// A probe is under way (no second one is started).
    probing: bool,
    /// Whether this upstream was last published on the wrong chain (logged on change).
    wrong_chain: bool,
    /// Whether its last probe said it is syncing.
    syncing: bool,
    /// Its answer to this round's fork question (height, hash), until the round is judged.
    hash: Option<(u64, String)>,
    /// Whether its blocks disagree with the majority's.
    fork: ForkState,
}

impl Record {
    fn new(upstream: Arc<Upstream>, now: Instant) -> Self {
        Self {
            upstream,
            health: Health::new(now),
            chain_id: None,
            check_chain: true,
            probing: false,
            wrong_chain: false,
            syncing: false,
            hash: None,
            fork: ForkState::default(),
        }
    }
}

/// The background health monitor.
pub struct Monitor {
    records: Vec<Record>,
    probe_interval: Duration,
    probe_timeout: Duration,
    thresholds: HealthConfig,
    chain_id: Option<u64>,
    /// The fork guard's settings.
    fork: ForkConfig,
    /// The block whose hash this round's probes ask (the fork guard's question).
    fork_height: Option<u64>,
    /// Whether a round with a fork question has been judged since start (until then a
    /// round follows the first one at once, so the first verdict comes within milliseconds).
    fork_judged: bool,
    /// The answer cache's final line and deep-reorg checks.
    finality: final_round::Finality,
    snapshot: SharedSnapshot,
    metrics: Metrics,
    passive: mpsc::Receiver<(Arc<Upstream>, String)>,
    reloads: mpsc::Receiver<Reload>,
    probes: JoinSet<(Arc<Upstream>, Result<ProbeReport, UpstreamError>)>,
}

impl Monitor {
    /// Creates the monitor and the reporter handle for the request path; it sets the final
    /// line of, and purges, `answers`.
    pub fn new(
        upstreams: &[Arc<Upstream>],
        config: &Config,
        snapshot: SharedSnapshot,
        metrics: Metrics,
        answers: Arc<AnswerCache>,
    ) -> (Self, HealthReporter) {
        let (passive_tx, passive) = mpsc::channel(PASSIVE_QUEUE);
        let (reloads_tx, reloads) = mpsc::channel(1);
        let now = Instant::now();
        let monitor = Self {
            records: upstreams
                .iter()
                .map(|u| Record::new(Arc::clone(u), now))
                .collect(),
            probe_interval: config.probe.interval,
            probe_timeout: config.probe.timeout,
            thresholds: config.health,
            chain_id: config.chain_id,
            fork: config.fork,
            fork_height: None,
            fork_judged: false,
            finality: final_round::Finality::new(answers, config.cache),
            snapshot,
            metrics,
            passive,
            reloads,
            probes: JoinSet::new(),
        };
        let reporter = HealthReporter {
            passive: passive_tx,
            reloads: reloads_tx,
        };
        (monitor, reporter)
    }

    /// Runs until `shutdown` completes; in-flight probes are aborted then.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(self.probe_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => {
                    self.start_probes();
                    self.finality_tick();
                }
                Some(done) = self.probes.join_next() => {
                    if let Ok((upstream, result)) = done {
                        if let Some(index) = self.index_of(&upstream) {
                            self.records[index].probing = false;
                            self.apply_probe(index, result);
                            self.end_round_if_done();
                            self.publish();
                            self.start_first_finality();
                        }
                    }
                }
                answer = self.finality.answered() => {
                    self.finality_answered(answer);
                    self.publish();
                }
                Some((upstream, error)) = self.passive.recv() => {
                    self.apply_passive(&upstream, error);
                    while let Ok((upstream, error)) = self.passive.try_recv() {
                        self.apply_passive(&upstream, error);
                    }
                    self.publish();
                }
                Some(reload) = self.reloads.recv() => {
                    let interval = reload.config.probe.interval;
                    self.apply_reload(reload.upstreams, &reload.config);
                    self.publish();
                    if interval != tick.period() {
                        tick = tokio::time::interval(interval);
                        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
                    }
                    let _ = reload.done.send(());
                }
            }
        }
    }

    fn index_of(&self, upstream: &Arc<Upstream>) -> Option<usize> {
        self.records
            .iter()
            .position(|r| Arc::ptr_eq(&r.upstream, upstream))
    }

    fn apply_reload(&mut self, upstreams: Vec<Arc<Upstream>>, config: &Config) {
        let now = Instant::now();
        let mut old = std::mem::take(&mut self.records);
        self.records = upstreams
            .into_iter()
            .map(
                |upstream| match old.iter().position(|r| Arc::ptr_eq(&r.upstream, &upstream)) {
                    Some(i) => old.swap_remove(i),
                    None => Record::new(upstream, now),
                },
            )
            .collect();
        for gone in old {
            self.forget(&gone.upstream.name);
        }
        self.probe_interval = config.probe.interval;
        self.probe_timeout = config.probe.timeout;
        self.thresholds = config.health;
        self.chain_id = config.chain_id;
        self.fork = config.fork;
        self.finality.configure(config.cache);
        // New upstreams are probed at once rather than at the next tick.
        self.start_probes();
    }

    /// Drops the per-upstream gauges of a removed upstream.
    fn forget(&self, name: &str) {
        let m = &self.metrics;
        for gauge in [
            &m.upstream_up,
            &m.upstream_head,
            &m.upstream_lag,
            &m.upstream_wrong_chain,
            &m.upstream_rank,
            &m.upstream_forked,
            &m.upstream_syncing,
            &m.upstream_unsupported,
        ] {
            let _ = gauge.remove_label_values(&[name]);
        }
        for counter in [&m.hedges, &m.hedge_wins] {
            let _ = counter.remove_label_values(&[name]);
        }
        for counter in [&m.rate_limited, &m.rate_limit_waits] {
            let _ = counter.remove_label_values(&[name]);
        }
        let _ = m.rate_limit_wait_seconds.remove_label_values(&[name]);
        let _ = m.upstream_learned_rps.remove_label_values(&[name]);
    }

    fn start_probes(&mut self) {
        self.fork_height = self.fork_question();
        for record in self.records.iter_mut() {
            if record.probing {
                continue;
            }
            record.probing = true;
            let upstream = Arc::clone(&record.upstream);
            let timeout = self.probe_timeout;
            let ask = ProbeAsk {
                chain: record.check_chain,
                hash_at: self.fork_height,
            };
            self.probes.spawn(async move {
                let result = probe(&upstream, timeout, ask).await;
                (upstream, result)
            });
        }
    }

    fn apply_probe(&mut self, index: usize, result: Result<ProbeReport, UpstreamError>) {
        let record = &mut self.records[index];
        let name = record.upstream.name.as_str();
        match result {
            Ok(report) => {
                self.metrics.probes.with_label_values(&[name, "ok"]).inc();
                if let Some(chain_id) = report.chain_id {
                    record.chain_id = Some(chain_id);
                    record.check_chain = false;
                }
                record.syncing = report.syncing;
                record.hash = report.hash;
                let observation = Observation::Probe {
                    head: report.head,
                    latency: report.latency,
                };
                let transition =
                    record
                        .health
                        .observe(observation, &self.thresholds, Instant::now());
                if transition == Some(Transition::Up) {
                    // Probes recovered: the breaker need not wait out its cooldown.
                    let closed = record.upstream.breaker.on_success();
                    breaker::report(&self.metrics, name, closed);
                }
                self.log_transition(index, transition);
            }
            Err(e) => {
                self.metrics
                    .probes
                    .with_label_values(&[name, e.outcome()])
                    .inc();
                // An upstream that asks to slow down (or whose probe waited out its pause)
                // is alive: back-pressure has no say on health.
                if is_rate_limited(&e.kind) {
                    if let UpstreamErrorKind::NodeError { .. } = e.kind {
                        // A 429 told the pace itself, with its Retry-After.
                        record.upstream.limits.pace.limited(None, Instant::now());
                    }
                    self.metrics.rate_limited.with_label_values(&[name]).inc();
                } else if !matches!(e.kind, UpstreamErrorKind::Busy(_)) {
                    self.apply_failure(index, e.kind.to_string());
                }
            }
        }
    }

    fn apply_passive(&mut self, upstream: &Arc<Upstream>, error: String) {
        if let Some(index) = self.index_of(upstream) {
            self.apply_failure(index, error);
        }
    }

    fn apply_failure(&mut self, index: usize, error: String) {
        let record = &mut self.records[index];
        let transition = record.health.observe(
            Observation::Failure { error },
            &self.thresholds,
            Instant::now(),
        );
        if transition == Some(Transition::Down) {
            // A node that comes back may be a different node: check its chain again.
            record.check_chain = true;
        }
        self.log_transition(index, transition);
    }

    fn log_transition(&self, index: usize, transition: Option<Transition>) {
        let Some(transition) = transition else { return };
        let record = &self.records[index];
        let (name, rank) = (record.upstream.name.as_str(), index + 1);
        let to = match transition {
            Transition::Down => {
                warn!(
                    upstream = name,
                    rank,
                    error = record.health.last_error().unwrap_or(""),
                    "upstream is down"
                );
                "down"
            }
            Transition::Up => {
                info!(
                    upstream = name,
                    rank,
                    head = record.health.head(),
                    "upstream is up"
                );
                "up"
            }
            Transition::Lagging { lag } => {
                warn!(upstream = name, rank, lag, "upstream is lagging");
                "lagging"
            }
            Transition::CaughtUp => {
                info!(upstream = name, rank, "upstream caught up");
                "in_sync"
            }
        };
        self.metrics
            .transitions
            .with_label_values(&[name, to])
            .inc();
    }

    /// The chain the proxy serves: configured, or the one most upstreams report (ties go
    /// to the best-ranked upstream).
    fn expected_chain(&self) -> Option<u64> {
        if self.chain_id.is_some() {
            return self.chain_id;
        }
        let reported: Vec<u64> = self.records.iter().filter_map(|r| r.chain_id).collect();
        let mut best: Option<(usize, u64)> = None;
        for &candidate in &reported {
            let votes = reported.iter().filter(|&&c| c == candidate).count();
            if best.is_none_or(|(most, _)| votes > most) {
                best = Some((votes, candidate));
            }
        }
        best.map(|(_, chain)| chain)
    }
}
