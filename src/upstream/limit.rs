//! Per-upstream admission: an optional concurrency limit and an optional requests-per-second
//! limit (paid providers bill and throttle per request). A request waits at most
//! `queue_timeout` for a slot; then it goes to the next candidate instead of queueing behind
//! a saturated upstream.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Admission limits of one upstream.
#[derive(Debug)]
pub struct Limits {
    /// Concurrent requests allowed, when limited.
    concurrency: Option<Arc<Semaphore>>,
    /// Configured concurrency, for the in-flight gauge.
    max_concurrency: Option<usize>,
    /// Requests per second allowed, when limited.
    rate: Option<DefaultDirectRateLimiter>,
    /// Longest wait for a slot.
    queue_timeout: Duration,
}

/// A held slot; dropping it frees it.
#[derive(Debug)]
pub struct Slot(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl Limits {
    /// Limits with the given (optional) concurrency and rate.
    pub fn new(
        max_concurrency: Option<usize>,
        max_rps: Option<u32>,
        queue_timeout: Duration,
    ) -> Self {
        Self {
            concurrency: max_concurrency.map(|n| Arc::new(Semaphore::new(n))),
            max_concurrency,
            rate: max_rps
                .and_then(NonZeroU32::new)
                .map(|rps| RateLimiter::direct(Quota::per_second(rps))),
            queue_timeout,
        }
    }

    /// Waits up to the queue timeout for a slot; `None` when the upstream stays saturated.
    pub async fn admit(&self) -> Option<Slot> {
        let wait = async {
            if let Some(rate) = &self.rate {
                rate.until_ready().await;
            }
            match &self.concurrency {
                Some(semaphore) => Arc::clone(semaphore)
                    .acquire_owned()
                    .await
                    .ok()
                    .map(|p| Slot(Some(p))),
                None => Some(Slot(None)),
            }
        };
        tokio::time::timeout(self.queue_timeout, wait)
            .await
            .ok()
            .flatten()
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

    #[tokio::test]
    async fn concurrency_limit_turns_away_after_the_queue_timeout() {
        let limits = Limits::new(Some(2), None, Duration::from_millis(20));
        let a = limits.admit().await.unwrap();
        let _b = limits.admit().await.unwrap();
        assert_eq!(limits.in_use(), 2);
        assert!(limits.admit().await.is_none(), "third request turned away");
        drop(a);
        assert!(limits.admit().await.is_some(), "a freed slot is reused");
    }

    #[tokio::test]
    async fn rate_limit_turns_away_past_the_burst() {
        let limits = Limits::new(None, Some(5), Duration::from_millis(10));
        let mut admitted = 0;
        for _ in 0..20 {
            if limits.admit().await.is_some() {
                admitted += 1;
            }
        }
        assert!((5..=6).contains(&admitted), "{admitted} admitted at 5 rps");
    }

    #[tokio::test]
    async fn unlimited_always_admits() {
        let limits = Limits::new(None, None, Duration::from_millis(1));
        for _ in 0..100 {
            assert!(limits.admit().await.is_some());
        }
        assert_eq!(limits.in_use(), 0);
    }
}
