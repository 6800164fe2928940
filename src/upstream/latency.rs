//! Recent attempt latencies of one upstream, per method class: the hedge delay is a
//! quantile of them. A small ring per class behind a mutex held for a copy or a push.

use std::sync::Mutex;
use std::time::Duration;

use crate::method::{MethodClass, CLASSES};

/// Samples kept per class.
pub const LATENCY_SAMPLES: usize = 64;
/// Samples needed before a quantile is trusted; until then there is no hedge delay of the
/// upstream's own (the configured maximum applies).
pub const MIN_LATENCY_SAMPLES: usize = 8;
/// New samples after which a quantile is computed again (it is asked on every attempt; a
/// sort per attempt would cost more than the attempt's own bookkeeping).
const RECOMPUTE_AFTER: usize = 16;

/// The last [`LATENCY_SAMPLES`] attempt durations per method class.
#[derive(Debug, Default)]
pub struct LatencyHistory {
    /// One ring per class, in [`CLASSES`] order.
    rings: [Mutex<Ring>; CLASSES.len()],
}

#[derive(Debug, Default)]
struct Ring {
    /// Durations, oldest overwritten first.
    samples: Vec<Duration>,
    /// Where the next sample goes once full.
    next: usize,
    /// The last quantile computed (which one, its value) and samples recorded since.
    cached: Option<(f64, Duration)>,
    /// Samples recorded since `cached` was computed.
    since: usize,
}

impl LatencyHistory {
    /// Records one successful attempt's duration.
    pub fn record(&self, class: MethodClass, took: Duration) {
        let mut ring = crate::sync::lock(&self.rings[class.index()]);
        if ring.samples.len() < LATENCY_SAMPLES {
            ring.samples.push(took);
        } else {
            let at = ring.next;
            ring.samples[at] = took;
        }
        ring.next = (ring.next + 1) % LATENCY_SAMPLES;
        ring.since += 1;
    }

    /// The `q` quantile (0..1) of the recent samples of `class`, once there are enough.
    pub fn quantile(&self, class: MethodClass, q: f64) -> Option<Duration> {
        let mut ring = crate::sync::lock(&self.rings[class.index()]);
        if ring.samples.len() < MIN_LATENCY_SAMPLES {
            return None;
        }
        match ring.cached {
            Some((cached_q, value)) if cached_q == q && ring.since < RECOMPUTE_AFTER => {
                return Some(value);
            }
            _ => {}
        }
        let mut samples = ring.samples.clone();
        samples.sort_unstable();
        let rank = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len());
        let value = samples[rank - 1];
        ring.cached = Some((q, value));
        ring.since = 0;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_of_the_recent_samples_per_class() {
        let h = LatencyHistory::default();
        let ms = Duration::from_millis;
        for i in 1..MIN_LATENCY_SAMPLES as u64 {
            h.record(MethodClass::Ordinary, ms(i));
        }
        assert_eq!(h.quantile(MethodClass::Ordinary, 0.95), None, "too few");
        for i in 0..100 {
            h.record(
                MethodClass::Ordinary,
                ms(if i % 20 == 0 { 500 } else { 10 }),
            );
        }
        assert_eq!(h.quantile(MethodClass::Ordinary, 0.5), Some(ms(10)));
        assert_eq!(h.quantile(MethodClass::Ordinary, 0.99), Some(ms(500)));
        assert_eq!(h.quantile(MethodClass::Heavy, 0.95), None, "classes apart");
        // The node slows down: the quantile follows within a few samples.
        for _ in 0..LATENCY_SAMPLES {
            h.record(MethodClass::Ordinary, ms(800));
        }
        assert_eq!(h.quantile(MethodClass::Ordinary, 0.5), Some(ms(800)));
    }
}
