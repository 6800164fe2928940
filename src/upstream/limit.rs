//! Per-upstream admission: an optional concurrency limit and the upstream's [`Pace`] (calls
//! per second: `max_rps`, and below it the rate learned from its limit answers; paid
//! providers bill and throttle per call, a batch item counting one). A request waits for a
//! slot until the bound its caller gives: the queue timeout when another candidate may take
//! it, the request's deadline when none may (the last candidate, or an upstream that does not
//! `spill`). A wait that would pass the bound is refused at once, not waited out.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::pace::Pace;
use crate::config::RateLimitConfig;

/// Admission limits of one upstream.
#[derive(Debug)]
pub struct Limits {
    /// Concurrent requests allowed, when limited.
    concurrency: Option<Arc<Semaphore>>,
    /// Configured concurrency, for the in-flight gauge.
    max_concurrency: Option<usize>,
    /// Calls per second: the ceiling and the learned rate.
    pub pace: Pace,
    /// Whether calls that would wait may go to lower ranks instead.
    spill: bool,
}

/// A held slot; dropping it frees it.
#[derive(Debug)]
pub struct Slot {
    /// The concurrency permit, when limited.
    _permit: Option<OwnedSemaphorePermit>,
    /// How long the request waited for the slot.
    pub waited: Duration,
}

impl Limits {
    /// Limits with the given (optional) concurrency and rate ceiling, learning the rate as
    /// `tuning` says; `spill`: whether waiting calls may go elsewhere.
    pub fn new(
        max_concurrency: Option<usize>,
        max_rps: Option<u32>,
        spill: bool,
        tuning: RateLimitConfig,
    ) -> Self {
        Self {
            concurrency: max_concurrency.map(|n| Arc::new(Semaphore::new(n))),
            max_concurrency,
            pace: Pace::new(max_rps, tuning, Instant::now()),
            spill,
        }
    }

    /// Whether calls that would wait for this upstream may go to lower ranks instead.
    pub fn spills(&self) -> bool {
        self.spill
    }

    /// Admits a request of `calls` calls, waiting for its rate and a concurrency slot until
    /// `until` at the latest; `Err` with when the rate would have let it go, when that is
    /// later (the wait is refused at once), or `until` when no concurrency slot came.
    pub async fn admit(&self, calls: u32, until: Instant) -> Result<Slot, Instant> {
        let asked = Instant::now();
        let start = self.pace.reserve(calls, asked, until)?;
        let mut waited = start > asked;
        if waited {
            tokio::time::sleep_until(start).await;
        }
        let permit = match &self.concurrency {
            None => None,
            Some(semaphore) => match Arc::clone(semaphore).try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    waited = true;
                    let acquire = Arc::clone(semaphore).acquire_owned();
                    match tokio::time::timeout_at(until, acquire).await {
                        Ok(Ok(permit)) => Some(permit),
                        _ => return Err(until),
                    }
                }
            },
        };
        Ok(Slot {
            _permit: permit,
            waited: if waited {
                asked.elapsed()
            } else {
                Duration::ZERO
            },
        })
    }

    /// Requests holding a slot now (0 when concurrency is not limited).
    pub fn in_use(&self) -> usize {
        match (&self.concurrency, self.max_concurrency) {
            (Some(semaphore), Some(max)) => max.saturating_sub(semaphore.available_permits()),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_concurrency: Option<usize>, max_rps: Option<u32>) -> Limits {
        Limits::new(max_concurrency, max_rps, true, RateLimitConfig::default())
    }

    fn soon(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_limit_turns_away_after_the_queue_timeout() {
        let limits = limits(Some(2), None);
        let a = limits.admit(1, soon(20)).await.unwrap();
        let _b = limits.admit(1, soon(20)).await.unwrap();
        assert_eq!(limits.in_use(), 2);
        assert!(
            limits.admit(1, soon(20)).await.is_err(),
            "third request turned away"
        );
        drop(a);
        assert!(
            limits.admit(1, soon(20)).await.is_ok(),
            "a freed slot is reused"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_turns_away_past_the_burst_at_once() {
        let limits = limits(None, Some(5));
        let asked = Instant::now();
        let mut admitted = 0;
        for _ in 0..20 {
            if limits.admit(1, soon(10)).await.is_ok() {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 5, "one second's calls at 5 calls/s");
        assert_eq!(asked.elapsed(), Duration::ZERO, "refused without waiting");
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_is_billed_per_item_and_waits_for_its_turn() {
        let limits = limits(None, Some(10));
        let first = limits.admit(10, soon(0)).await.unwrap();
        assert_eq!(first.waited, Duration::ZERO);
        let second = limits.admit(10, soon(5000)).await.unwrap();
        assert_eq!(
            second.waited,
            Duration::from_secs(1),
            "ten more calls: a second"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_always_admits() {
        let limits = limits(None, None);
        for _ in 0..100 {
            assert!(limits.admit(100, soon(0)).await.is_ok());
        }
        assert_eq!(limits.in_use(), 0);
    }
}
