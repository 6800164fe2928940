//! The wrong-data guard of one upstream: counts the answers that failed verification and,
//! after `verify.quarantine_after` of them within `verify.quarantine_window`, quarantines the
//! upstream for `verify.quarantine_for` — it is then used only as a last resort (its answers
//! are still verified, so a last resort can never serve wrong data).
//!
//! [`WrongState`] is the pure state machine (time passed in); [`WrongGuard`] holds it behind
//! a mutex that is taken only when an answer was wrong or the snapshot is published, never
//! on a right answer.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// The thresholds, from `[verify]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quarantine {
    /// Wrong answers within `window` that quarantine.
    pub after: u32,
    /// The window they are counted over.
    pub window: Duration,
    /// How long a quarantine lasts.
    pub duration: Duration,
}

/// A change worth a log line and a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrongTransition {
    /// The upstream was quarantined.
    Quarantined,
}

/// The pure state: recent wrong answers, the total, and the quarantine's end.
#[derive(Debug, Default, Clone)]
pub struct WrongState {
    /// When the wrong answers within the window came.
    recent: VecDeque<Instant>,
    /// Wrong answers since start.
    total: u64,
    /// While `Some` and in the future: quarantined.
    until: Option<Instant>,
    /// The last wrong answer's evidence (one line), for `/status`.
    last: Option<(Instant, String)>,
}

impl WrongState {
    /// Records one wrong answer with its evidence; returns `Quarantined` when this one
    /// starts a quarantine.
    pub fn record(
        &mut self,
        evidence: String,
        q: &Quarantine,
        now: Instant,
    ) -> Option<WrongTransition> {
        self.total += 1;
        self.last = Some((now, evidence));
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > q.window)
        {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        if self.is_quarantined(now) || self.recent.len() < q.after as usize {
            return None;
        }
        self.recent.clear();
        self.until = Some(now + q.duration);
        Some(WrongTransition::Quarantined)
    }

    /// Whether the upstream is quarantined at `now`.
    pub fn is_quarantined(&self, now: Instant) -> bool {
        self.until.is_some_and(|until| now < until)
    }

    /// Wrong answers since start.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The last wrong answer's evidence and how long ago it came.
    pub fn last(&self, now: Instant) -> Option<(Duration, &str)> {
        self.last
            .as_ref()
            .map(|(at, why)| (now.saturating_duration_since(*at), why.as_str()))
    }
}

/// One upstream's guard (shared by every request).
#[derive(Debug, Default)]
pub struct WrongGuard {
    /// The state; held only for a record or a read, never across an await.
    state: Mutex<WrongState>,
}

impl WrongGuard {
    /// Records a wrong answer (see [`WrongState::record`]).
    pub fn record(
        &self,
        evidence: String,
        q: &Quarantine,
        now: Instant,
    ) -> Option<WrongTransition> {
        self.lock().record(evidence, q, now)
    }

    /// A copy of the state, for the snapshot and the router.
    pub fn state(&self) -> WrongState {
        self.lock().clone()
    }

    /// Whether quarantined at `now`.
    pub fn is_quarantined(&self, now: Instant) -> bool {
        self.lock().is_quarantined(now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WrongState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Quarantine = Quarantine {
        after: 3,
        window: Duration::from_secs(60),
        duration: Duration::from_secs(300),
    };

    #[test]
    fn quarantined_after_enough_wrong_answers_within_the_window() {
        let t0 = Instant::now();
        let mut s = WrongState::default();
        assert_eq!(s.record("a".into(), &Q, t0), None);
        assert_eq!(s.record("b".into(), &Q, t0 + Duration::from_secs(1)), None);
        assert!(!s.is_quarantined(t0 + Duration::from_secs(1)));
        let t2 = t0 + Duration::from_secs(2);
        assert_eq!(
            s.record("c".into(), &Q, t2),
            Some(WrongTransition::Quarantined)
        );
        assert!(s.is_quarantined(t2));
        assert!(s.is_quarantined(t2 + Duration::from_secs(299)));
        assert!(!s.is_quarantined(t2 + Duration::from_secs(300)));
        assert_eq!(s.total(), 3);
        assert_eq!(s.last(t2).map(|(_, why)| why), Some("c"));
    }

    #[test]
    fn wrong_answers_spread_wider_than_the_window_do_not_quarantine() {
        let t0 = Instant::now();
        let mut s = WrongState::default();
        for i in 0..10u64 {
            let at = t0 + Duration::from_secs(i * 31);
            assert_eq!(s.record(format!("{i}"), &Q, at), None, "answer {i}");
        }
        assert_eq!(s.total(), 10);
    }

    #[test]
    fn a_quarantine_is_not_restarted_by_more_wrong_answers_during_it() {
        let t0 = Instant::now();
        let mut s = WrongState::default();
        for _ in 0..3 {
            s.record("x".into(), &Q, t0);
        }
        for i in 1..=5 {
            assert_eq!(s.record("y".into(), &Q, t0 + Duration::from_secs(i)), None);
        }
        assert!(!s.is_quarantined(t0 + Duration::from_secs(300)));
    }
}
