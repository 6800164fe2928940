//! Reading one upstream answer into a buffer the in-flight answer budget
//! ([`crate::budget`]) accounts for, within the attempt's time.
//!
//! The attempt's deadline covers the upstream's part (connect, head, every chunk of the
//! body); time spent waiting for the budget moves the deadline on, so a full budget is never
//! blamed on the node. That wait has a bound of its own.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use nodewatch_http::{AnswerHead, SendError};
use tokio::time::{timeout_at, Instant, Sleep};

use crate::budget::{Reservation, Shortfall};

/// A chunked answer's buffer grows by at least this much (and then doubles).
pub const GROWTH_STEP: usize = 64 * 1024;

/// Why no answer body was read.
#[derive(Debug)]
pub enum ReadError {
    /// The exchange failed (or its deadline passed: [`SendError::Timeout`]).
    Send(SendError),
    /// The budget could not give the bytes.
    Budget(Shortfall),
    /// The budget had no room before `wait_until`.
    BudgetWait,
}

impl From<SendError> for ReadError {
    fn from(e: SendError) -> Self {
        Self::Send(e)
    }
}

/// The attempt's clock: the upstream's deadline (one timer for the whole attempt, moved on
/// by budget waits), and the bound on waiting for the budget.
#[derive(Debug)]
pub struct Clock<'s> {
    /// Fires at `deadline`.
    sleep: Pin<&'s mut Sleep>,
    /// When the upstream must have delivered.
    deadline: Instant,
    /// How long the attempt may wait for the budget, in all.
    wait_until: Instant,
    /// The attempt timeout, for the error and for a new exchange.
    timeout: Duration,
    /// Time spent waiting for the budget so far.
    pub waited: Duration,
}

impl<'s> Clock<'s> {
    /// A clock over `sleep` (unstarted), for an attempt of `timeout` that may wait `wait`
    /// for the budget.
    pub fn new(mut sleep: Pin<&'s mut Sleep>, timeout: Duration, wait: Duration) -> Self {
        let now = Instant::now();
        sleep.as_mut().reset(now + timeout);
        Self {
            sleep,
            deadline: now + timeout,
            wait_until: now + wait,
            timeout,
            waited: Duration::ZERO,
        }
    }

    /// Runs `f` until it is done or the deadline passes.
    pub async fn within<F: Future>(&mut self, f: F) -> Result<F::Output, ReadError> {
        tokio::select! {
            biased;
            out = f => Ok(out),
            () = self.sleep.as_mut() => Err(SendError::Timeout(self.timeout).into()),
        }
    }

    /// A new exchange: the upstream gets the whole timeout again.
    pub fn restart(&mut self) {
        self.deadline = Instant::now() + self.timeout;
        self.sleep.as_mut().reset(self.deadline);
    }

    /// Holds `total` bytes, moving the deadline on by the time that took.
    pub async fn hold(
        &mut self,
        reservation: &mut Reservation,
        total: usize,
    ) -> Result<(), ReadError> {
        let started = Instant::now();
        match timeout_at(self.wait_until, reservation.hold(total)).await {
            Err(_) => Err(ReadError::BudgetWait),
            Ok(result) => {
                let waited = started.elapsed();
                if !waited.is_zero() {
                    self.deadline += waited;
                    self.waited += waited;
                    self.sleep.as_mut().reset(self.deadline);
                }
                result.map_err(ReadError::Budget)
            }
        }
    }
}

/// Reads `head`'s body (at most `limit` bytes) into one buffer whose capacity `reservation`
/// holds: the declared length at once, a chunked body as its buffer grows.
pub async fn read(
    head: AnswerHead,
    limit: usize,
    reservation: &mut Reservation,
    clock: &mut Clock<'_>,
) -> Result<Bytes, ReadError> {
    let AnswerHead { mut body, declared } = head;
    if let Some(n) = declared {
        clock.hold(reservation, n).await?;
    }
    let mut buf = BytesMut::new();
    loop {
        let frame = match clock.within(body.frame()).await? {
            None => return Ok(buf.freeze()),
            Some(frame) => frame.map_err(|e| SendError::Body(e.to_string()))?,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let len = buf.len() + data.len();
        if len > limit {
            return Err(SendError::TooLarge(limit).into());
        }
        if buf.is_empty() && declared == Some(data.len()) {
            // The whole body in one chunk: kept as it came, no copy.
            return Ok(data);
        }
        if len > buf.capacity() {
            let capacity = match declared {
                Some(n) if n >= len => n,
                _ => grown(buf.capacity(), len, limit),
            };
            clock.hold(reservation, capacity).await?;
            let mut next = BytesMut::with_capacity(capacity);
            next.extend_from_slice(&buf);
            buf = next;
        }
        buf.extend_from_slice(&data);
    }
}

/// The next capacity of a chunked answer's buffer that must fit `needed` bytes.
fn grown(capacity: usize, needed: usize, limit: usize) -> usize {
    needed
        .max(capacity.saturating_mul(2))
        .max(GROWTH_STEP)
        .min(limit)
        .max(needed)
}

#[cfg(test)]
mod tests {
    use super::grown;

    #[test]
    fn growth_doubles_from_a_step_and_stops_at_the_limit() {
        assert_eq!(grown(0, 10, 1 << 20), 64 * 1024);
        assert_eq!(grown(64 * 1024, 64 * 1024 + 1, 1 << 20), 128 * 1024);
        assert_eq!(grown(512 * 1024, 700 * 1024, 1 << 20), 1 << 20);
        assert_eq!(grown(0, 10, 5), 10, "never less than needed");
    }
}
