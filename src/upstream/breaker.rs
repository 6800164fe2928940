//! A circuit breaker per upstream, driven by the outcomes of forwarded requests (passive),
//! next to the probe-driven health state machine.
//!
//! Health says whether a node answers `eth_blockNumber`; the breaker says whether it answers
//! *real* requests. A node that passes its probes but fails forwarded calls (rate limits,
//! garbage for large batches, resets) opens its breaker after `failure_threshold` failures in
//! a row: it then gets no traffic except as a last resort. After `cooldown` one trial request
//! is let through (half-open): success closes the breaker, failure opens it again.
//!
//! Lock-free: the request path reads and updates atomics; time is passed in as
//! `tokio::time::Instant`, so the logic runs under paused time in tests.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::metrics::Metrics;

const CLOSED: u64 = u64::MAX;

/// A breaker's state at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Traffic flows.
    Closed,
    /// No traffic but as a last resort, until the cooldown ends.
    Open,
    /// Cooldown over: one trial request may go through.
    HalfOpen,
}

/// A change of breaker state worth a log line and a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerTransition {
    /// The breaker opened (or re-opened after a failed trial).
    Opened,
    /// A trial succeeded: closed again.
    Closed,
}

/// One upstream's breaker.
#[derive(Debug)]
pub struct Breaker {
    /// Reference point for the millisecond timestamps below.
    epoch: Instant,
    /// Failed forwards in a row.
    failures: AtomicU32,
    /// When the breaker opened (ms since `epoch`), or `CLOSED`.
    opened_at: AtomicU64,
    /// A half-open trial is under way.
    trial: AtomicBool,
    /// Failures that open the breaker (reloadable).
    threshold: AtomicU32,
    /// Cooldown in ms (reloadable).
    cooldown_ms: AtomicU64,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(threshold: u32, cooldown: Duration, now: Instant) -> Self {
        Self {
            epoch: now,
            failures: AtomicU32::new(0),
            opened_at: AtomicU64::new(CLOSED),
            trial: AtomicBool::new(false),
            threshold: AtomicU32::new(threshold),
            cooldown_ms: AtomicU64::new(cooldown.as_millis() as u64),
        }
    }

    /// Changes the thresholds (configuration reload); the state is kept.
    pub fn configure(&self, threshold: u32, cooldown: Duration) {
        self.threshold.store(threshold, Ordering::Relaxed);
        self.cooldown_ms
            .store(cooldown.as_millis() as u64, Ordering::Relaxed);
    }

    fn ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// The state at `now`.
    pub fn state(&self, now: Instant) -> BreakerState {
        let opened = self.opened_at.load(Ordering::Acquire);
        if opened == CLOSED {
            BreakerState::Closed
        } else if self.ms(now).saturating_sub(opened) < self.cooldown_ms.load(Ordering::Relaxed) {
            BreakerState::Open
        } else {
            BreakerState::HalfOpen
        }
    }

    /// Claims the one trial of a half-open breaker; false when another request has it.
    pub fn try_trial(&self) -> bool {
        !self.trial.swap(true, Ordering::AcqRel)
    }

    /// Gives back a claimed trial whose attempt ended without an outcome (it was dropped:
    /// a hedge answered first). Harmless when no trial is claimed.
    pub fn release_trial(&self) {
        self.trial.store(false, Ordering::Release);
    }

    /// Records a successful forward.
    pub fn on_success(&self) -> Option<BreakerTransition> {
        self.failures.store(0, Ordering::Relaxed);
        self.trial.store(false, Ordering::Release);
        let was = self.opened_at.swap(CLOSED, Ordering::AcqRel);
        (was != CLOSED).then_some(BreakerTransition::Closed)
    }

    /// Records a failed forward.
    pub fn on_failure(&self, now: Instant) -> Option<BreakerTransition> {
        let state = self.state(now);
        self.trial.store(false, Ordering::Release);
        match state {
            BreakerState::HalfOpen => {
                self.opened_at.store(self.ms(now), Ordering::Release);
                Some(BreakerTransition::Opened)
            }
            BreakerState::Open => None,
            BreakerState::Closed => {
                let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
                if failures >= self.threshold.load(Ordering::Relaxed) {
                    self.failures.store(0, Ordering::Relaxed);
                    let opened = self.ms(now);
                    let was = self.opened_at.swap(opened, Ordering::AcqRel);
                    (was == CLOSED).then_some(BreakerTransition::Opened)
                } else {
                    None
                }
            }
        }
    }
}

/// Logs and counts a breaker flip of upstream `name`.
pub fn report(metrics: &Metrics, name: &str, transition: Option<BreakerTransition>) {
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
    metrics
        .breaker_transitions
        .with_label_values(&[name, to])
        .inc();
    metrics.breaker_open.with_label_values(&[name]).set(open);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_at_the_threshold_then_half_opens_after_the_cooldown() {
        let b = Breaker::new(3, Duration::from_secs(5), Instant::now());
        assert_eq!(b.on_failure(Instant::now()), None);
        assert_eq!(b.on_failure(Instant::now()), None);
        assert_eq!(b.state(Instant::now()), BreakerState::Closed);
        assert_eq!(
            b.on_failure(Instant::now()),
            Some(BreakerTransition::Opened)
        );
        assert_eq!(b.state(Instant::now()), BreakerState::Open);
        assert_eq!(
            b.on_failure(Instant::now()),
            None,
            "no second flip while open"
        );
        tokio::time::advance(Duration::from_millis(4999)).await;
        assert_eq!(b.state(Instant::now()), BreakerState::Open);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(b.state(Instant::now()), BreakerState::HalfOpen);
        assert!(b.try_trial());
        assert!(!b.try_trial(), "one trial at a time");
        assert_eq!(b.on_success(), Some(BreakerTransition::Closed));
        assert_eq!(b.state(Instant::now()), BreakerState::Closed);
        assert_eq!(b.on_success(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_trial_reopens_for_a_full_cooldown() {
        let b = Breaker::new(1, Duration::from_secs(2), Instant::now());
        assert_eq!(
            b.on_failure(Instant::now()),
            Some(BreakerTransition::Opened)
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(b.try_trial());
        assert_eq!(
            b.on_failure(Instant::now()),
            Some(BreakerTransition::Opened)
        );
        assert_eq!(b.state(Instant::now()), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(b.state(Instant::now()), BreakerState::HalfOpen);
        assert!(b.try_trial(), "a new trial after the new cooldown");
    }

    #[tokio::test(start_paused = true)]
    async fn successes_reset_the_count() {
        let b = Breaker::new(2, Duration::from_secs(1), Instant::now());
        for _ in 0..10 {
            assert_eq!(b.on_failure(Instant::now()), None);
            assert_eq!(b.on_success(), None);
        }
        assert_eq!(b.state(Instant::now()), BreakerState::Closed);
    }
}
