//! The health state machine of one upstream: pure, no I/O, no clock of its own.
//!
//! It counts consecutive opposite observations (as pingora's `observe_health` does) and flips
//! only when a threshold is reached, so one lost probe never takes a node out and one lucky
//! probe never brings it back. It keeps the last head height, a latency EWMA and whether the
//! node lags the best head. Every method that can change the state returns the
//! [`Transition`] it caused, so the caller logs and counts flips once, not every probe.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::config::HealthConfig;

/// Weight of the newest latency sample in the moving average.
pub const LATENCY_EWMA_ALPHA: f64 = 0.3;

/// Whether an upstream is in rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not yet probed: used after healthy upstreams, before unhealthy ones.
    Unknown,
    /// In rotation.
    Healthy,
    /// Out of rotation; used only as a last resort.
    Unhealthy,
}

/// One observation of an upstream.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// A probe answered `eth_blockNumber` with this head in this time.
    Probe {
        /// The head block number.
        head: u64,
        /// Round-trip time of the probe.
        latency: Duration,
    },
    /// A probe failed, or a forwarded request could not connect or timed out.
    Failure {
        /// Redacted description, shown in `/status`.
        error: String,
    },
}

/// A change worth a log line and a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Became healthy.
    Up,
    /// Became unhealthy.
    Down,
    /// Fell more than `max_lag` blocks behind the best head.
    Lagging {
        /// Blocks behind.
        lag: u64,
    },
    /// Back within `max_lag` of the best head.
    CaughtUp,
}

/// Health of one upstream.
#[derive(Debug, Clone)]
pub struct Health {
    /// Current status.
    status: Status,
    /// Successes in a row; reset by a failure.
    successes: u32,
    /// Failures in a row; reset by a success.
    failures: u32,
    /// Last head the node reported; kept across failures so `/status` shows where it was.
    head: Option<u64>,
    /// Moving average of probe round trips.
    latency: Option<Duration>,
    /// Whether the node trails the best head by more than `max_lag`.
    lagging: bool,
    /// Last failure, redacted.
    last_error: Option<String>,
    /// When the last failure was seen: an error long past on an upstream that has
    /// recovered must not read as a current fault.
    last_error_at: Option<Instant>,
    /// When `status` last changed.
    since: Instant,
}

impl Health {
    /// A not-yet-probed upstream.
    pub fn new(now: Instant) -> Self {
        Self {
            status: Status::Unknown,
            successes: 0,
            failures: 0,
            head: None,
            latency: None,
            lagging: false,
            last_error: None,
            last_error_at: None,
            since: now,
        }
    }

    /// Applies one observation; returns `Up` or `Down` when the status flips.
    ///
    /// An unknown upstream is healthy after its first success (there is nothing to recover
    /// from) and unhealthy after `fail_threshold` failures, like a healthy one.
    pub fn observe(
        &mut self,
        observation: Observation,
        config: &HealthConfig,
        now: Instant,
    ) -> Option<Transition> {
        match observation {
            Observation::Probe { head, latency } => {
                self.failures = 0;
                self.successes = self.successes.saturating_add(1);
                self.head = Some(head);
                self.latency = Some(match self.latency {
                    None => latency,
                    Some(avg) => {
                        avg.mul_f64(1.0 - LATENCY_EWMA_ALPHA) + latency.mul_f64(LATENCY_EWMA_ALPHA)
                    }
                });
                let up = match self.status {
                    Status::Unknown => true,
                    Status::Unhealthy => self.successes >= config.recover_threshold,
                    Status::Healthy => false,
                };
                up.then(|| self.flip(Status::Healthy, now, Transition::Up))
            }
            Observation::Failure { error } => {
                self.successes = 0;
                self.failures = self.failures.saturating_add(1);
                self.last_error = Some(error);
                self.last_error_at = Some(now);
                let down =
                    self.status != Status::Unhealthy && self.failures >= config.fail_threshold;
                down.then(|| self.flip(Status::Unhealthy, now, Transition::Down))
            }
        }
    }

    fn flip(&mut self, status: Status, now: Instant, transition: Transition) -> Transition {
        self.status = status;
        self.since = now;
        transition
    }

    /// Re-evaluates lag against the best head; returns `Lagging` or `CaughtUp` on a change.
    pub fn update_lag(&mut self, best_head: Option<u64>, max_lag: u64) -> Option<Transition> {
        let lag = self.lag(best_head);
        let lagging = lag.is_some_and(|lag| lag > max_lag);
        if lagging == self.lagging {
            return None;
        }
        self.lagging = lagging;
        Some(match lag {
            Some(lag) if lagging => Transition::Lagging { lag },
            _ => Transition::CaughtUp,
        })
    }

    /// Blocks behind `best_head`, when both are known.
    pub fn lag(&self, best_head: Option<u64>) -> Option<u64> {
        Some(best_head?.saturating_sub(self.head?))
    }

    /// Current status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Last reported head.
    pub fn head(&self) -> Option<u64> {
        self.head
    }

    /// Latency moving average.
    pub fn latency(&self) -> Option<Duration> {
        self.latency
    }

    /// Whether the node lags by more than `max_lag` (as of the last [`Health::update_lag`]).
    pub fn is_lagging(&self) -> bool {
        self.lagging
    }

    /// Last failure.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// When the last failure was seen.
    pub fn last_error_at(&self) -> Option<Instant> {
        self.last_error_at
    }

    /// When the status last changed.
    pub fn since(&self) -> Instant {
        self.since
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: HealthConfig = HealthConfig {
        fail_threshold: 2,
        recover_threshold: 3,
        max_lag: 5,
    };

    fn ok(head: u64, ms: u64) -> Observation {
        Observation::Probe {
            head,
            latency: Duration::from_millis(ms),
        }
    }

    fn fail() -> Observation {
        Observation::Failure {
            error: "connection refused".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn first_success_makes_unknown_healthy() {
        let mut h = Health::new(Instant::now());
        assert_eq!(h.status(), Status::Unknown);
        assert_eq!(
            h.observe(ok(10, 5), &CONFIG, Instant::now()),
            Some(Transition::Up)
        );
        assert_eq!(h.status(), Status::Healthy);
        assert_eq!(h.head(), Some(10));
        assert_eq!(h.observe(ok(11, 5), &CONFIG, Instant::now()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn goes_down_only_at_fail_threshold_and_flips_once() {
        let mut h = Health::new(Instant::now());
        h.observe(ok(10, 5), &CONFIG, Instant::now());
        assert_eq!(h.observe(fail(), &CONFIG, Instant::now()), None);
        assert_eq!(h.status(), Status::Healthy);
        tokio::time::advance(Duration::from_secs(2)).await;
        let at = Instant::now();
        assert_eq!(h.observe(fail(), &CONFIG, at), Some(Transition::Down));
        assert_eq!(h.since(), at);
        assert_eq!(
            h.observe(fail(), &CONFIG, Instant::now()),
            None,
            "no second flip"
        );
        assert_eq!(h.status(), Status::Unhealthy);
        assert_eq!(h.last_error(), Some("connection refused"));
        assert_eq!(h.head(), Some(10), "last head is kept");
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_failure_count() {
        let mut h = Health::new(Instant::now());
        h.observe(ok(1, 5), &CONFIG, Instant::now());
        for _ in 0..5 {
            assert_eq!(h.observe(fail(), &CONFIG, Instant::now()), None);
            assert_eq!(h.observe(ok(1, 5), &CONFIG, Instant::now()), None);
        }
        assert_eq!(h.status(), Status::Healthy);
    }

    #[tokio::test(start_paused = true)]
    async fn recovers_after_recover_threshold_successes_in_a_row() {
        let mut h = Health::new(Instant::now());
        h.observe(fail(), &CONFIG, Instant::now());
        assert_eq!(
            h.observe(fail(), &CONFIG, Instant::now()),
            Some(Transition::Down)
        );
        assert_eq!(h.observe(ok(5, 5), &CONFIG, Instant::now()), None);
        assert_eq!(h.observe(ok(6, 5), &CONFIG, Instant::now()), None);
        assert_eq!(
            h.observe(fail(), &CONFIG, Instant::now()),
            None,
            "streak broken"
        );
        assert_eq!(h.observe(ok(7, 5), &CONFIG, Instant::now()), None);
        assert_eq!(h.observe(ok(8, 5), &CONFIG, Instant::now()), None);
        tokio::time::advance(Duration::from_secs(6)).await;
        let at = Instant::now();
        assert_eq!(h.observe(ok(9, 5), &CONFIG, at), Some(Transition::Up));
        assert_eq!(h.since(), at);
        assert_eq!(h.status(), Status::Healthy);
        // The last error is kept after recovery, with when it was seen.
        assert_eq!(h.last_error(), Some("connection refused"));
        assert_eq!(
            h.last_error_at().map(|t| at.duration_since(t)),
            Some(Duration::from_secs(6))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn latency_is_an_ewma() {
        let mut h = Health::new(Instant::now());
        h.observe(ok(1, 100), &CONFIG, Instant::now());
        assert_eq!(h.latency(), Some(Duration::from_millis(100)));
        h.observe(ok(1, 200), &CONFIG, Instant::now());
        let ms = h.latency().unwrap().as_secs_f64() * 1000.0;
        assert!((ms - 130.0).abs() < 0.01, "{ms}");
    }

    #[tokio::test(start_paused = true)]
    async fn lag_flips_once_each_way() {
        let mut h = Health::new(Instant::now());
        h.observe(ok(100, 5), &CONFIG, Instant::now());
        assert_eq!(h.lag(Some(105)), Some(5));
        assert_eq!(
            h.update_lag(Some(105), CONFIG.max_lag),
            None,
            "5 behind is in sync"
        );
        assert_eq!(
            h.update_lag(Some(106), CONFIG.max_lag),
            Some(Transition::Lagging { lag: 6 })
        );
        assert!(h.is_lagging());
        assert_eq!(h.update_lag(Some(120), CONFIG.max_lag), None);
        h.observe(ok(118, 5), &CONFIG, Instant::now());
        assert_eq!(
            h.update_lag(Some(120), CONFIG.max_lag),
            Some(Transition::CaughtUp)
        );
        assert_eq!(h.lag(None), None);
    }
}
