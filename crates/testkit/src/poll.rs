//! Polling for a condition with a deadline: how a test waits for something to happen,
//! instead of sleeping a guessed time and hoping it happened.
//!
//! [`wait_for`] panics (naming what it waited for) when the deadline passes; [`poll_until`]
//! returns `None` instead, for a test that asserts on the outcome itself. [`wait_for_sync`] is
//! the same for code outside a tokio runtime (child processes, fixtures).

use std::time::{Duration, Instant};

/// How often a condition is checked.
pub const EVERY: Duration = Duration::from_millis(20);

/// Checks `check` every [`EVERY`] until it gives a value or `within` passes (`None`).
pub async fn poll_until<T>(within: Duration, check: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    poll_every(EVERY, within, check).await
}

/// [`poll_until`], checking every `every` (for a test that must act within a few
/// milliseconds of the condition, e.g. kill a node mid-export).
pub async fn poll_every<T>(
    every: Duration,
    within: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

/// [`poll_until`], panicking with `what` when `within` passes first.
pub async fn wait_for<T>(what: &str, within: Duration, check: impl AsyncFnMut() -> Option<T>) -> T {
    match poll_until(within, check).await {
        Some(value) => value,
        None => panic!("timed out after {within:?} waiting for {what}"),
    }
}

/// [`wait_for`] with a yes/no condition.
pub async fn wait_until(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    wait_for(what, within, async || check().await.then_some(())).await
}

/// [`poll_until`] outside a tokio runtime: blocks the thread between checks.
pub fn poll_sync<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(EVERY);
    }
}

/// [`wait_for`] outside a tokio runtime: blocks the thread between checks.
pub fn wait_for_sync<T>(what: &str, within: Duration, check: impl FnMut() -> Option<T>) -> T {
    match poll_sync(within, check) {
        Some(value) => value,
        None => panic!("timed out after {within:?} waiting for {what}"),
    }
}
