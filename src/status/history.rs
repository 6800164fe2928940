//! Each upstream's head and state over the last minutes, for the chart on the admin page.
//!
//! A [`History`] is a bounded ring of [`Sample`]s (one per [`DEFAULT_SAMPLE_INTERVAL`],
//! [`DEFAULT_WINDOW`] long: 600 samples, a few KiB per upstream). [`spawn_sampler`] copies the
//! published snapshot into it in the background; the task holds the history weakly and ends
//! by itself once the admin service that owns the history is gone.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::upstream::health::Status;
use crate::upstream::{SharedSnapshot, Snapshot};

/// Time between two samples.
pub const DEFAULT_SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// How far back the history reaches.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(600);

/// An upstream's state in one sample, as the chart colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleState {
    /// Not probed yet.
    Unknown,
    /// Healthy and within `max_lag`.
    Healthy,
    /// Healthy but behind by more than `max_lag`.
    Lagging,
    /// Out of rotation (or on the wrong chain).
    Unhealthy,
}

/// Every upstream at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// When, in Unix milliseconds.
    pub unix_ms: u64,
    /// Head per upstream, in rank order.
    pub heads: Vec<Option<u64>>,
    /// State per upstream, in rank order.
    pub states: Vec<SampleState>,
}

impl Sample {
    /// The sample of a snapshot taken at `unix_ms`.
    pub fn of(snapshot: &Snapshot, unix_ms: u64) -> Self {
        Sample {
            unix_ms,
            heads: snapshot.upstreams.iter().map(|u| u.head).collect(),
            states: snapshot
                .upstreams
                .iter()
                .map(|u| match u.status {
                    _ if u.wrong_chain || u.forked || u.quarantined => SampleState::Unhealthy,
                    Status::Unknown => SampleState::Unknown,
                    Status::Healthy if u.lagging || u.syncing => SampleState::Lagging,
                    Status::Healthy => SampleState::Healthy,
                    Status::Unhealthy => SampleState::Unhealthy,
                })
                .collect(),
        }
    }
}

/// The bounded ring of samples.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    /// Upstream names in rank order (the columns of every sample).
    pub names: Vec<String>,
    /// Samples, oldest first.
    pub samples: VecDeque<Sample>,
    /// Most samples kept.
    #[serde(skip)]
    capacity: usize,
}

/// The history shared between the sampler and the admin service.
pub type SharedHistory = Arc<Mutex<History>>;

impl History {
    /// An empty history for these upstreams holding at most `capacity` samples.
    pub fn new(names: Vec<String>, capacity: usize) -> Self {
        History {
            names,
            samples: VecDeque::with_capacity(capacity.min(4096)),
            capacity: capacity.max(1),
        }
    }

    /// Records `snapshot` as of `unix_ms`. When the upstream set changed (a configuration
    /// reload), the history starts over: old columns would name the wrong upstreams.
    pub fn record(&mut self, snapshot: &Snapshot, unix_ms: u64) {
        let same = self.names.len() == snapshot.upstreams.len()
            && self
                .names
                .iter()
                .zip(&snapshot.upstreams)
                .all(|(name, u)| *name == u.name);
        if !same {
            self.names = snapshot.upstreams.iter().map(|u| u.name.clone()).collect();
            self.samples.clear();
        }
        self.push(Sample::of(snapshot, unix_ms));
    }

    /// Appends a sample, dropping the oldest beyond the capacity.
    pub fn push(&mut self, sample: Sample) {
        while self.samples.len() >= self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }
}

/// Now, in Unix milliseconds (0 if the clock is before 1970).
pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A history sized for [`DEFAULT_WINDOW`] at [`DEFAULT_SAMPLE_INTERVAL`], and — when called
/// inside a tokio runtime — a background task that fills it. The task stops once every
/// clone of the returned `Arc` is dropped.
pub fn spawn_sampler(snapshot: SharedSnapshot) -> SharedHistory {
    let names = snapshot
        .load()
        .upstreams
        .iter()
        .map(|u| u.name.clone())
        .collect();
    let capacity = (DEFAULT_WINDOW.as_millis() / DEFAULT_SAMPLE_INTERVAL.as_millis()) as usize;
    let history = Arc::new(Mutex::new(History::new(names, capacity)));
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(sample(snapshot, Arc::downgrade(&history)));
    }
    history
}

async fn sample(snapshot: SharedSnapshot, history: Weak<Mutex<History>>) {
    let mut tick = tokio::time::interval(DEFAULT_SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(history) = history.upgrade() else {
            return;
        };
        let snapshot = snapshot.load();
        // A poisoned lock only means a panic elsewhere mid-push; the ring is still valid.
        crate::sync::lock(&history).record(&snapshot, unix_ms_now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: u64) -> Sample {
        Sample {
            unix_ms: t,
            heads: vec![Some(t)],
            states: vec![SampleState::Healthy],
        }
    }

    #[test]
    fn ring_keeps_the_newest_samples() {
        let mut h = History::new(vec!["u1".into()], 3);
        for t in 0..10 {
            h.push(sample(t));
        }
        let kept: Vec<u64> = h.samples.iter().map(|s| s.unix_ms).collect();
        assert_eq!(kept, [7, 8, 9]);
        let mut zero = History::new(vec![], 0);
        zero.push(sample(1));
        assert_eq!(zero.samples.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn sampler_fills_and_stops_when_dropped() {
        use arc_swap::ArcSwap;
        let snapshot: SharedSnapshot = Arc::new(ArcSwap::from_pointee(Snapshot::initial(&[])));
        let history = spawn_sampler(snapshot);
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert_eq!(history.lock().unwrap().samples.len(), 4);
        let weak = Arc::downgrade(&history);
        drop(history);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(weak.upgrade().is_none());
    }
}
