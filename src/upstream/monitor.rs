//! The health monitor: the one task that owns every upstream's [`Health`].
//!
//! Each probe interval it starts one probe per upstream (never two at once for the same
//! one); probe results and passive failures reported by the request path
//! ([`HealthReporter`]) are applied to the state machines, flips are logged and counted once,
//! and a fresh [`Snapshot`] is published for the lock-free request path.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{error, info, warn};

use super::health::{Health, Observation, Status, Transition};
use super::probe::{probe, ProbeReport};
use super::{SharedSnapshot, Snapshot, Upstream, UpstreamState};
use crate::config::{Config, HealthConfig};
use crate::error::UpstreamError;
use crate::metrics::Metrics;

/// Passive failures queued for the monitor; when full, further reports are dropped (the
/// monitor is already learning that the upstream is failing).
const PASSIVE_QUEUE: usize = 1024;

/// Handle the request path uses to report failed forwards (passive health).
#[derive(Debug, Clone)]
pub struct HealthReporter {
    tx: mpsc::Sender<(usize, String)>,
}

impl HealthReporter {
    /// Reports that a forward to upstream `index` failed; never blocks.
    pub fn report_failure(&self, index: usize, error: &UpstreamError) {
        let _ = self.tx.try_send((index, error.kind.to_string()));
    }
}

/// Per-upstream bookkeeping next to the pure state machine.
struct Record {
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
}

/// The background health monitor.
pub struct Monitor {
    upstreams: Arc<[Upstream]>,
    records: Vec<Record>,
    probe_interval: Duration,
    probe_timeout: Duration,
    thresholds: HealthConfig,
    chain_id: Option<u64>,
    snapshot: SharedSnapshot,
    metrics: Metrics,
    passive: mpsc::Receiver<(usize, String)>,
    probes: JoinSet<(usize, Result<ProbeReport, UpstreamError>)>,
}

impl Monitor {
    /// Creates the monitor and the reporter handle for the request path.
    pub fn new(
        upstreams: Arc<[Upstream]>,
        config: &Config,
        snapshot: SharedSnapshot,
        metrics: Metrics,
    ) -> (Self, HealthReporter) {
        let (tx, passive) = mpsc::channel(PASSIVE_QUEUE);
        let now = Instant::now();
        let records = upstreams
            .iter()
            .map(|_| Record {
                health: Health::new(now),
                chain_id: None,
                check_chain: true,
                probing: false,
                wrong_chain: false,
            })
            .collect();
        let monitor = Self {
            upstreams,
            records,
            probe_interval: config.probe.interval,
            probe_timeout: config.probe.timeout,
            thresholds: config.health,
            chain_id: config.chain_id,
            snapshot,
            metrics,
            passive,
            probes: JoinSet::new(),
        };
        (monitor, HealthReporter { tx })
    }

    /// Runs until `shutdown` completes; in-flight probes are aborted then.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(self.probe_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => self.start_probes(),
                Some(done) = self.probes.join_next() => {
                    if let Ok((index, result)) = done {
                        self.records[index].probing = false;
                        self.apply_probe(index, result);
                        self.publish();
                    }
                }
                Some((index, error)) = self.passive.recv() => {
                    self.apply_failure(index, error);
                    while let Ok((index, error)) = self.passive.try_recv() {
                        self.apply_failure(index, error);
                    }
                    self.publish();
                }
            }
        }
    }

    fn start_probes(&mut self) {
        for (index, record) in self.records.iter_mut().enumerate() {
            if record.probing {
                continue;
            }
            record.probing = true;
            let upstreams = Arc::clone(&self.upstreams);
            let (timeout, check_chain) = (self.probe_timeout, record.check_chain);
            self.probes.spawn(async move {
                (index, probe(&upstreams[index], timeout, check_chain).await)
            });
        }
    }

    fn apply_probe(&mut self, index: usize, result: Result<ProbeReport, UpstreamError>) {
        let name = self.upstreams[index].name.as_str();
        match result {
            Ok(report) => {
                self.metrics.probes.with_label_values(&[name, "ok"]).inc();
                let record = &mut self.records[index];
                if let Some(chain_id) = report.chain_id {
                    record.chain_id = Some(chain_id);
                    record.check_chain = false;
                }
                let observation = Observation::Probe {
                    head: report.head,
                    latency: report.latency,
                };
                let transition =
                    record
                        .health
                        .observe(observation, &self.thresholds, Instant::now());
                self.log_transition(index, transition);
            }
            Err(e) => {
                self.metrics
                    .probes
                    .with_label_values(&[name, e.outcome()])
                    .inc();
                self.apply_failure(index, e.kind.to_string());
            }
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
        let upstream = &self.upstreams[index];
        let record = &self.records[index];
        let to = match transition {
            Transition::Down => {
                warn!(upstream = %upstream.name, rank = upstream.rank,
                    error = record.health.last_error().unwrap_or(""), "upstream is down");
                "down"
            }
            Transition::Up => {
                info!(upstream = %upstream.name, rank = upstream.rank,
                    head = record.health.head(), "upstream is up");
                "up"
            }
            Transition::Lagging { lag } => {
                warn!(upstream = %upstream.name, rank = upstream.rank, lag, "upstream is lagging");
                "lagging"
            }
            Transition::CaughtUp => {
                info!(upstream = %upstream.name, rank = upstream.rank, "upstream caught up");
                "in_sync"
            }
        };
        self.metrics
            .transitions
            .with_label_values(&[upstream.name.as_str(), to])
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

    fn publish(&mut self) {
        let chain_id = self.expected_chain();
        let on_chain =
            |r: &Record| chain_id.is_none() || r.chain_id.is_none() || r.chain_id == chain_id;
        let best_head = self
            .records
            .iter()
            .filter(|r| r.health.status() == Status::Healthy && on_chain(r))
            .filter_map(|r| r.health.head())
            .max()
            .or_else(|| {
                self.records
                    .iter()
                    .filter(|r| on_chain(r))
                    .filter_map(|r| r.health.head())
                    .max()
            });
        let now = Instant::now();
        let mut states = Vec::with_capacity(self.records.len());
        for index in 0..self.records.len() {
            let wrong_chain = !on_chain(&self.records[index]);
            let transition = self.records[index]
                .health
                .update_lag(best_head, self.thresholds.max_lag);
            self.log_transition(index, transition);
            let (upstream, record) = (&self.upstreams[index], &mut self.records[index]);
            if wrong_chain && !record.wrong_chain {
                error!(upstream = %upstream.name, chain_id = record.chain_id, expected = chain_id,
                    "upstream is on another chain; it will not be used");
            }
            record.wrong_chain = wrong_chain;
            let health = &record.health;
            let label = [upstream.name.as_str()];
            let up = health.status() == Status::Healthy && !wrong_chain;
            self.metrics
                .upstream_up
                .with_label_values(&label)
                .set(i64::from(up));
            self.metrics
                .upstream_wrong_chain
                .with_label_values(&label)
                .set(i64::from(wrong_chain));
            if let Some(head) = health.head() {
                self.metrics
                    .upstream_head
                    .with_label_values(&label)
                    .set(head as i64);
            }
            if let Some(lag) = health.lag(best_head) {
                self.metrics
                    .upstream_lag
                    .with_label_values(&label)
                    .set(lag as i64);
            }
            let age = now.saturating_duration_since(health.since());
            states.push(UpstreamState {
                name: upstream.name.clone(),
                rank: upstream.rank,
                status: health.status(),
                head: health.head(),
                lag: health.lag(best_head),
                lagging: health.is_lagging(),
                latency_ms: health.latency().map(|d| d.as_secs_f64() * 1000.0),
                chain_id: record.chain_id,
                wrong_chain,
                last_error: health.last_error().map(str::to_string),
                status_age_secs: age.as_secs_f64(),
                since_unix: SystemTime::now()
                    .checked_sub(age)
                    .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs()),
            });
        }
        if let Some(head) = best_head {
            self.metrics.best_head.set(head as i64);
        }
        self.snapshot.store(Arc::new(Snapshot {
            best_head,
            chain_id,
            upstreams: states,
        }));
    }
}
