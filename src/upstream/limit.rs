//! Per-upstream admission: an optional concurrency limit and the upstream's [`Pace`] (calls
//! per second: `max_rps`, and below it the rate learned from its limit answers; paid
//! providers bill and throttle per call, a batch item counting one). A request waits for a
//! slot until the bound its caller gives: the queue timeout when another candidate may take
//! it, the request's deadline when none may (the last candidate, or an upstream that does not
//! `spill`). A wait that would pass the bound is refused at once, not waited out.
//!
//! With `credits`, the pace counts compute units (each method its cost) and a month's
//! budget refuses what would pass it. With a `budget_key` and `[redis]`, the key's ceiling
//! and month are the fleet's, reserved in Redis ([`crate::shared`]) after the local pace;
//! when Redis cannot answer, the local pace and count decide alone (`Slot::decided`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::credits::{month_key, month_of, BudgetSpent, MonthBudget};
use super::pace::{Pace, Ticket, BURST};

/// The burst a fleet's shared schedule allows: half the one second's calls a provider's bucket
/// holds. The fleet's calls reach the provider with the network's jitter; sent at its limit
/// with its whole bucket spent, a call a few milliseconds early would be refused. Half the
/// bucket is kept for that.
pub const SHARED_BURST: Duration = Duration::from_millis(BURST.as_millis() as u64 / 2);
use crate::config::{Costs, CreditsConfig, RateLimitConfig};
use crate::shared::{Reservation, Reserved, Shared};

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
    /// Per-method costs, when the upstream bills compute units (the pace counts them).
    costs: Option<Costs>,
    /// The month's compute-unit budget, when it has one.
    pub month: Option<Arc<MonthBudget>>,
    /// The ceiling in the pace's units per second (`max_rps` or `credits.per_second`).
    ceiling: Option<f64>,
    /// The fleet's budget: the store and the `budget_key`.
    shared: Option<(Arc<Shared>, String)>,
}

/// Why a request was not admitted.
#[derive(Debug)]
pub enum Refused {
    /// Its rate (or a concurrency slot) would let it go only at this time, past the bound.
    Later(Instant),
    /// The month's compute-unit budget is spent.
    Spent(BudgetSpent),
}

/// Who decided a request's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    /// This sidecar alone: no shared budget.
    Alone,
    /// The fleet's budget in Redis.
    Shared,
    /// This sidecar alone because Redis could not answer (the fallback).
    Fallback,
}

/// A held slot; dropping it frees it.
#[derive(Debug)]
pub struct Slot {
    /// The concurrency permit, when limited.
    _permit: Option<OwnedSemaphorePermit>,
    /// How long the request waited for the slot.
    pub waited: Duration,
    /// Whether the fleet's budget or this sidecar's decided.
    pub decided: Decided,
    /// Where it stands among the calls sent (for the pace, if it is refused).
    pub ticket: Ticket,
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
            costs: None,
            month: None,
            ceiling: max_rps.map(f64::from),
            shared: None,
        }
    }

    /// Bills compute units as `credits` says (its `per_second` is the pace's ceiling when
    /// `max_rps` is not set: validation lets only one be).
    pub fn with_credits(mut self, credits: &CreditsConfig, tuning: RateLimitConfig) -> Self {
        if let Some(per_second) = credits.per_second {
            self.pace = Pace::new(Some(per_second), tuning, Instant::now());
            self.ceiling = Some(f64::from(per_second));
        }
        self.costs = Some(credits.costs());
        self.month = credits
            .per_month
            .map(|budget| Arc::new(MonthBudget::new(budget, SystemTime::now())));
        self
    }

    /// Shares this upstream's ceiling and month with every sidecar of the same `key`.
    pub fn with_shared(mut self, shared: Arc<Shared>, key: &str) -> Self {
        self.shared = Some((shared, key.to_owned()));
        self
    }

    /// What `methods` cost in the pace's units: compute units with `credits`, else one each.
    pub fn units<'a>(&self, methods: impl IntoIterator<Item = &'a str>) -> u32 {
        let units = match &self.costs {
            Some(costs) => costs.of_batch(methods),
            None => methods.into_iter().count() as u64,
        };
        u32::try_from(units).unwrap_or(u32::MAX)
    }

    /// Its `budget_key` and whether Redis answers now (false: the local fallback decides).
    pub fn shared_state(&self) -> Option<(&str, bool)> {
        let (shared, key) = self.shared.as_ref()?;
        Some((key.as_str(), shared.view(Instant::now()).up))
    }

    /// Charges a probe, which goes at once whatever the budget (health must stay current):
    /// to the pace (false while the upstream asked for a pause: it should not go at all), and
    /// as billed like any call to the month and, in the background, the fleet's schedule.
    pub fn charge_probe(&self, units: u32) -> bool {
        if !self.pace.charge(units, Instant::now()) {
            return false;
        }
        let month = self.month.clone();
        let Some((shared, key)) = &self.shared else {
            if let Some(month) = month {
                // Past the budget a probe still goes: it is counted where it fits.
                let _ = month.try_spend(u64::from(units), SystemTime::now());
            }
            return true;
        };
        let (shared, key, rate) = (Arc::clone(shared), key.clone(), self.ceiling);
        tokio::spawn(async move {
            let wall = SystemTime::now();
            let name = month_key(wall);
            let reservation = Reservation {
                key: &key,
                units: u64::from(units),
                rate,
                burst: SHARED_BURST,
                most_wait: Duration::MAX / 4,
                month: month.as_ref().map(|m| (name.as_str(), m.view(wall).budget)),
            };
            if let (
                Ok(Reserved::Go {
                    month_total: Some(total),
                    ..
                }),
                Some(month),
            ) = (shared.reserve(&reservation).await, month)
            {
                month.observe_total(month_of(wall), total);
            }
        });
        true
    }

    /// Whether the month's compute units are all spent (routing then keeps the upstream as
    /// a last resort, whose refusal names the budget).
    pub fn month_spent(&self) -> bool {
        self.month.as_ref().is_some_and(|m| {
            let view = m.view(SystemTime::now());
            view.spent >= view.budget
        })
    }

    /// Whether the upstream bills compute units (`credits`).
    pub fn bills_credits(&self) -> bool {
        self.costs.is_some()
    }

    /// The unit the pace counts, for status and metrics.
    pub fn unit(&self) -> &'static str {
        match self.costs {
            Some(_) => "compute units",
            None => "calls",
        }
    }

    /// The most calls one request should hold: one second's units at the paced rate, over
    /// the costliest of `methods`.
    pub fn largest_batch<'a>(&self, methods: impl IntoIterator<Item = &'a str>) -> Option<usize> {
        let per_second = self.pace.largest_batch()?;
        let dearest = match &self.costs {
            Some(costs) => methods.into_iter().map(|m| costs.of(m)).max().unwrap_or(1),
            None => 1,
        };
        Some((per_second / dearest.max(1) as usize).max(1))
    }

    /// Whether calls that would wait for this upstream may go to lower ranks instead.
    pub fn spills(&self) -> bool {
        self.spill
    }

    /// Admits a request of `calls` calls, waiting for its rate and a concurrency slot until
    /// `until` at the latest; `Err` with when the rate would have let it go, when that is
    /// later (the wait is refused at once), or `until` when no concurrency slot came.
    pub async fn admit(&self, calls: u32, until: Instant) -> Result<Slot, Refused> {
        let asked = Instant::now();
        let start = self
            .pace
            .reserve(calls, asked, until)
            .map_err(Refused::Later)?;
        let (start, decided) = self.budget(calls, asked, start, until).await?;
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
                        _ => return Err(Refused::Later(until)),
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
            decided,
            ticket: self.pace.ticket(calls, Instant::now()),
        })
    }

    /// The fleet's schedule and month (in Redis, when shared and answering), then this
    /// sidecar's month: when the request may go (no earlier than the local `start`).
    async fn budget(
        &self,
        units: u32,
        asked: Instant,
        start: Instant,
        until: Instant,
    ) -> Result<(Instant, Decided), Refused> {
        let wall = SystemTime::now();
        let (start, decided, total) = match &self.shared {
            Some((shared, key)) if self.ceiling.is_some() || self.month.is_some() => {
                let month = month_key(wall);
                let reservation = Reservation {
                    key,
                    units: u64::from(units),
                    rate: self.ceiling,
                    burst: SHARED_BURST,
                    most_wait: until.saturating_duration_since(asked),
                    month: self
                        .month
                        .as_ref()
                        .map(|m| (month.as_str(), m.view(wall).budget)),
                };
                match shared.reserve(&reservation).await {
                    Ok(Reserved::Go { wait, month_total }) => (
                        start.max(asked + wait),
                        Decided::Shared,
                        month_total.map(|t| (t, true)),
                    ),
                    Ok(Reserved::Later(wait)) => return Err(Refused::Later(asked + wait)),
                    Ok(Reserved::MonthSpent(total)) => {
                        (start, Decided::Shared, Some((total, false)))
                    }
                    Err(_) => (start, Decided::Fallback, None),
                }
            }
            _ => (start, Decided::Alone, None),
        };
        if let Some(month) = &self.month {
            match total {
                // The fleet counted it: its total, this request's included.
                Some((total, true)) => month.observe_total(month_of(wall), total),
                // The fleet's month is spent: what is known locally refuses it too.
                Some((total, false)) => {
                    month.observe_total(month_of(wall), total);
                    month
                        .try_spend(u64::from(units), wall)
                        .map_err(Refused::Spent)?;
                }
                None => month
                    .try_spend(u64::from(units), wall)
                    .map_err(Refused::Spent)?,
            }
        }
        Ok((start, decided))
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
    async fn credits_pace_compute_units_and_a_spent_month_refuses_naming_it() {
        let credits = CreditsConfig {
            table: crate::config::CostTable::Calls,
            per_second: Some(100),
            per_month: Some(250),
            costs: [("eth_getLogs".to_owned(), 50)].into(),
        };
        let limits = limits(None, None).with_credits(&credits, RateLimitConfig::default());
        assert_eq!(limits.units(["eth_getLogs", "eth_blockNumber"]), 51);
        assert_eq!(
            limits.largest_batch(["eth_getLogs"]),
            Some(2),
            "100 CU/s, 50 each"
        );
        assert_eq!(limits.largest_batch(["eth_chainId"]), Some(100));
        // 100 CU/s: two getLogs (100 CU) go at once, the next two wait a second.
        assert_eq!(
            limits.admit(100, soon(0)).await.unwrap().waited,
            Duration::ZERO
        );
        let second = limits.admit(100, soon(5000)).await.unwrap();
        assert_eq!(second.waited, Duration::from_secs(1));
        assert!(!limits.month_spent());
        // A probe is billed: it counts against the month (and goes, whatever the budget).
        let month = |l: &Limits| l.month.as_ref().unwrap().view(SystemTime::now()).spent;
        assert!(limits.charge_probe(limits.units(["eth_blockNumber"])));
        assert_eq!(month(&limits), 201);
        let Err(Refused::Spent(spent)) = limits.admit(100, soon(5000)).await else {
            panic!("a month of 250 CU does not hold 300");
        };
        assert!(spent.to_string().contains("201 of 250"), "{spent}");
        assert_eq!(
            limits.admit(49, soon(5000)).await.unwrap().decided,
            Decided::Alone
        );
        assert!(limits.month_spent());
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
