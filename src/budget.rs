//! The in-flight answer budget: how many bytes of upstream answers the proxy holds at once,
//! over every request (`proxy.max_inflight_bytes`), so a burst of large answers makes calls
//! wait instead of pushing a sidecar past its memory limit.
//!
//! An answer's buffer is reserved before it is filled: its whole declared length
//! (Content-Length) at once, or, for a chunked body, each growth of the buffer's capacity.
//! The reservation travels with the buffer ([`Reservation::attach`]) and is given back when
//! the last slice of the answer has been written to the client and dropped.
//!
//! No reservation ever waits while it holds bytes, so waiting cannot deadlock: a call that
//! holds nothing waits its turn (first come, first served); a chunked answer that needs
//! more than is free gives its bytes back ([`Shortfall::GaveWay`]) and its call is sent
//! again once it has reserved what it now knows it needs, twice as much each time. Calls with
//! side effects are never sent twice: their reservation waits while holding (their answers
//! are a hash or a receipt, far below one growth step). An answer larger than the whole
//! budget fails with [`Shortfall::LargerThanBudget`].

use std::sync::Arc;

use bytes::Bytes;
use prometheus::{IntCounter, IntGauge};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a reservation could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Shortfall {
    /// One answer needs more than the whole budget: it can never be held.
    #[error(
        "the answer needs at least {needed} bytes, more than the whole in-flight answer \
         budget (proxy.max_inflight_bytes = {total})"
    )]
    LargerThanBudget {
        /// Bytes the answer needs at least.
        needed: usize,
        /// The budget.
        total: usize,
    },
    /// A chunked answer gave its bytes back to let others finish; read it again after
    /// reserving this much.
    #[error("gave way: the in-flight answer budget is full; will retry with {retry_with} bytes")]
    GaveWay {
        /// What to reserve (waiting, holding nothing) before the call is sent again.
        retry_with: usize,
    },
}

/// The budget, shared by every request.
#[derive(Debug, Clone)]
pub struct AnswerBudget {
    permits: Arc<Semaphore>,
    total: usize,
    gauge: IntGauge,
    waits: IntCounter,
    gave_way: IntCounter,
}

impl AnswerBudget {
    /// A budget of `total` bytes (at most `u32::MAX`, which validation ensures), recording
    /// the bytes in use and how often calls waited or gave way.
    pub fn new(total: usize, gauge: IntGauge, waits: IntCounter, gave_way: IntCounter) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(total)),
            total,
            gauge,
            waits,
            gave_way,
        }
    }

    /// The budget in bytes.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> usize {
        self.total - self.permits.available_permits()
    }

    /// Whether more than half the budget is reserved: then the budget, not the node, is
    /// what a slow answer waits for (hedging holds off).
    pub fn is_pressed(&self) -> bool {
        self.permits.available_permits() < self.total / 2
    }

    /// An empty reservation for one call's answer; `may_give_way` is false for calls that
    /// must not be sent twice.
    pub fn reservation(&self, may_give_way: bool) -> Reservation {
        Reservation {
            budget: self.clone(),
            held: None,
            bytes: 0,
            may_give_way,
        }
    }
}

/// Bytes reserved for one answer; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: AnswerBudget,
    held: Option<OwnedSemaphorePermit>,
    bytes: usize,
    may_give_way: bool,
}

impl Reservation {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Makes sure at least `total` bytes are held: takes the difference, waiting for it when
    /// nothing is held yet (or the call must not give way), giving way otherwise.
    pub async fn hold(&mut self, total: usize) -> Result<(), Shortfall> {
        let Some(more) = total.checked_sub(self.bytes).filter(|n| *n > 0) else {
            return Ok(());
        };
        let budget = &self.budget;
        if total > budget.total {
            return Err(Shortfall::LargerThanBudget {
                needed: total,
                total: budget.total,
            });
        }
        // `total` is within the budget, which fits in u32.
        let n = u32::try_from(more).expect("the budget fits in u32");
        let permit = match Arc::clone(&budget.permits).try_acquire_many_owned(n) {
            Ok(permit) => permit,
            Err(_) if self.bytes > 0 && self.may_give_way => {
                budget.gave_way.inc();
                let retry_with = total.max(self.bytes * 2).min(budget.total);
                self.release();
                return Err(Shortfall::GaveWay { retry_with });
            }
            Err(_) => {
                budget.waits.inc();
                Arc::clone(&budget.permits)
                    .acquire_many_owned(n)
                    .await
                    .expect("the budget's semaphore is never closed")
            }
        };
        budget.gauge.add(more as i64);
        self.bytes = total;
        match &mut self.held {
            Some(held) => held.merge(permit),
            None => self.held = Some(permit),
        }
        Ok(())
    }

    /// Gives every byte back (the reservation can be used again).
    pub fn release(&mut self) {
        if self.held.take().is_some() {
            self.budget.gauge.sub(self.bytes as i64);
        }
        self.bytes = 0;
    }

    /// Ties the reservation to `buffer`: given back when the last slice of it is dropped.
    pub fn attach(self, buffer: Bytes) -> Bytes {
        if self.bytes == 0 {
            return buffer;
        }
        Bytes::from_owner(Held {
            buffer,
            _reservation: self,
        })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.release();
    }
}

/// A buffer and the bytes reserved for it.
struct Held {
    buffer: Bytes,
    _reservation: Reservation,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(total: usize) -> AnswerBudget {
        let gauge = IntGauge::new("b", "b").unwrap();
        let counter = || IntCounter::new("c", "c").unwrap();
        AnswerBudget::new(total, gauge, counter(), counter())
    }

    #[tokio::test]
    async fn bytes_are_held_until_the_last_slice_is_dropped() {
        let b = budget(100);
        let mut r = b.reservation(true);
        r.hold(60).await.unwrap();
        r.hold(40).await.unwrap();
        assert_eq!((r.bytes(), b.in_use()), (60, 60), "hold tops up to a total");
        let buffer = r.attach(Bytes::from(vec![1u8; 60]));
        let slice = buffer.slice(10..20);
        drop(buffer);
        assert_eq!(b.in_use(), 60, "a slice still points into the buffer");
        assert_eq!(b.gauge.get(), 60);
        drop(slice);
        assert_eq!((b.in_use(), b.gauge.get()), (0, 0));
    }

    #[tokio::test]
    async fn an_answer_larger_than_the_budget_is_refused() {
        let b = budget(100);
        let mut r = b.reservation(true);
        let e = r.hold(101).await.unwrap_err();
        assert_eq!(
            e,
            Shortfall::LargerThanBudget {
                needed: 101,
                total: 100
            }
        );
        assert!(e.to_string().contains("proxy.max_inflight_bytes = 100"));
    }

    #[tokio::test]
    async fn a_holder_gives_way_and_one_holding_nothing_waits() {
        let b = budget(100);
        let mut first = b.reservation(true);
        first.hold(70).await.unwrap();
        let mut second = b.reservation(true);
        second.hold(20).await.unwrap();
        // Growing past what is free: the second gives its 20 back instead of waiting.
        let e = second.hold(40).await.unwrap_err();
        assert_eq!(e, Shortfall::GaveWay { retry_with: 40 });
        assert_eq!((second.bytes(), b.in_use()), (0, 70));
        assert_eq!(b.gave_way.get(), 1);
        // Holding nothing, it waits until the first is done.
        let waiting = tokio::spawn(async move {
            second.hold(40).await.unwrap();
            second
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        let second = waiting.await.unwrap();
        assert_eq!((second.bytes(), b.in_use(), b.waits.get()), (40, 40, 1));
    }

    #[tokio::test]
    async fn a_call_that_must_not_be_resent_waits_while_holding() {
        let b = budget(100);
        let mut first = b.reservation(true);
        first.hold(95).await.unwrap();
        let mut side_effect = b.reservation(false);
        side_effect.hold(5).await.unwrap();
        let waiting = tokio::spawn(async move { side_effect.hold(10).await.map(|_| side_effect) });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        first.release();
        assert_eq!(waiting.await.unwrap().unwrap().bytes(), 10);
    }
}
