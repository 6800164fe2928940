//! One fetch of a block's receipt set at a time: judgements that need the same block's
//! receipts at once (eight workers each asking one receipt of that block) wait for the first
//! one's fetch and read the cache after it, instead of each asking the upstream for the whole
//! set again (a paid provider bills every call).
//!
//! A [`Flight`] is the claim of the one fetching; dropping it (fetch done, failed, or the
//! request gone) ends it and wakes the waiting, through a `watch` channel whose sender the
//! flight holds: a waiter subscribed under the lock cannot miss the end. A waiter that then
//! finds nothing in the cache (the fetch failed) fetches for itself.

use std::collections::HashMap;
use std::sync::Mutex;

use nodewatch_verify::B256;
use tokio::sync::watch;

use crate::sync::lock;

/// The receipt-set fetches under way, by block hash.
#[derive(Debug, Default)]
pub struct Flights {
    /// A receiver of each flight's channel (its sender is in the [`Flight`]).
    inner: Mutex<HashMap<B256, watch::Receiver<()>>>,
}

/// Whose turn it is to fetch a block's receipts.
#[derive(Debug)]
pub enum Turn<'a> {
    /// Fetch it; others wait until this is dropped.
    Mine(Flight<'a>),
    /// Another judgement is fetching it: wait with [`wait`], then read the cache.
    Wait(watch::Receiver<()>),
}

/// The claim of the one fetching a block's receipts.
#[derive(Debug)]
pub struct Flight<'a> {
    /// Where it is registered.
    flights: &'a Flights,
    /// Whose receipts.
    block: B256,
    /// Dropped after the entry is removed: that wakes the waiters.
    _done: watch::Sender<()>,
}

impl Flights {
    /// The fetch of `block`'s receipts under way, if any: wait for it with [`wait`].
    pub fn under_way(&self, block: &B256) -> Option<watch::Receiver<()>> {
        lock(&self.inner).get(block).cloned()
    }

    /// Claims the fetch of `block`'s receipts, or says who has.
    pub fn claim(&self, block: B256) -> Turn<'_> {
        let mut inner = lock(&self.inner);
        if let Some(rx) = inner.get(&block) {
            return Turn::Wait(rx.clone());
        }
        let (done, rx) = watch::channel(());
        inner.insert(block, rx);
        Turn::Mine(Flight {
            flights: self,
            block,
            _done: done,
        })
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        lock(&self.flights.inner).remove(&self.block);
    }
}

/// Waits until the flight behind `rx` has ended.
pub async fn wait(mut rx: watch::Receiver<()>) {
    // Nothing is ever sent: the only event is the sender's drop.
    while rx.changed().await.is_ok() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_fetches_the_others_wait_for_it_and_the_next_claims_anew() {
        let flights = Flights::default();
        let block = B256::repeat_byte(7);
        let Turn::Mine(flight) = flights.claim(block) else {
            panic!("the first claim is the fetch");
        };
        let Turn::Wait(rx) = flights.claim(block) else {
            panic!("a second claim waits");
        };
        assert!(
            matches!(flights.claim(B256::ZERO), Turn::Mine(_)),
            "other blocks apart"
        );
        let waiting = tokio::spawn(wait(rx));
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "waits while the fetch runs");
        drop(flight);
        waiting.await.unwrap();
        assert!(
            matches!(flights.claim(block), Turn::Mine(_)),
            "ended: claimed anew"
        );
    }
}
