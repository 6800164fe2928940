//! Which methods an upstream serves: the configured `methods` lists of the upstream, and
//! what it answered "method not found / not available" for, remembered for a while so the
//! next thousand `trace_block` calls go straight to a node that has the API.
//!
//! The learned set is read on every call and written rarely: it is an immutable map behind
//! `ArcSwap`, replaced whole on a write. It is bounded, so a client spraying made-up method
//! names cannot grow it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::time::Instant;

use crate::policy::MethodPolicy;

/// Most methods remembered as unsupported per upstream; past it nothing more is learned
/// (such calls still move on, one by one).
pub const MAX_LEARNED_METHODS: usize = 256;

/// What an upstream serves.
#[derive(Debug)]
pub struct Capabilities {
    /// The upstream's configured `methods` lists, if any: a method they refuse is never
    /// sent there.
    configured: Option<MethodPolicy>,
    /// Methods the upstream said it does not serve, and until when that is believed.
    learned: ArcSwap<HashMap<String, Instant>>,
    /// How long a learned "unsupported" is believed.
    ttl: Duration,
}

/// Whether an upstream can be asked for a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serves {
    /// As far as is known.
    Yes,
    /// It said it does not, lately: tried only after every other candidate.
    Unlikely,
    /// Its configuration says it does not: never asked.
    Never,
}

impl Capabilities {
    /// An upstream with these configured lists; learned answers are kept for `ttl`.
    pub fn new(configured: Option<MethodPolicy>, ttl: Duration) -> Self {
        Self {
            configured,
            learned: ArcSwap::from_pointee(HashMap::new()),
            ttl,
        }
    }

    /// Whether `method` may be sent here.
    pub fn serves(&self, method: &str, now: Instant) -> Serves {
        if self.configured.as_ref().is_some_and(|p| !p.allows(method)) {
            return Serves::Never;
        }
        match self.learned.load().get(method) {
            Some(&until) if until > now => Serves::Unlikely,
            _ => Serves::Yes,
        }
    }

    /// Remembers that the upstream does not serve `method`; true when this is news (not
    /// already believed), for counting.
    pub fn learn_unsupported(&self, method: &str, now: Instant) -> bool {
        if self.serves(method, now) != Serves::Yes {
            return false;
        }
        let until = now + self.ttl;
        let mut news = false;
        self.learned.rcu(|current| {
            let mut next: HashMap<String, Instant> = current
                .iter()
                .filter(|(_, &until)| until > now)
                .map(|(m, &until)| (m.clone(), until))
                .collect();
            news = next.len() < MAX_LEARNED_METHODS;
            if news {
                next.insert(method.to_string(), until);
            }
            Arc::new(next)
        });
        news
    }

    /// The methods believed unsupported now, sorted (for `/status`).
    pub fn unsupported(&self, now: Instant) -> Vec<String> {
        let mut methods: Vec<String> = self
            .learned
            .load()
            .iter()
            .filter(|(_, &until)| until > now)
            .map(|(m, _)| m.clone())
            .collect();
        methods.sort();
        methods
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn learned_answers_expire_and_are_bounded() {
        let caps = Capabilities::new(None, Duration::from_secs(60));
        let now = Instant::now();
        assert_eq!(caps.serves("trace_block", now), Serves::Yes);
        assert!(caps.learn_unsupported("trace_block", now));
        assert!(
            !caps.learn_unsupported("trace_block", now),
            "not news twice"
        );
        assert_eq!(caps.serves("trace_block", now), Serves::Unlikely);
        assert_eq!(caps.unsupported(now), ["trace_block"]);
        let later = now + Duration::from_secs(61);
        assert_eq!(caps.serves("trace_block", later), Serves::Yes);
        assert!(caps.unsupported(later).is_empty());
        for i in 0..MAX_LEARNED_METHODS + 10 {
            caps.learn_unsupported(&format!("x_{i}"), later);
        }
        assert_eq!(caps.unsupported(later).len(), MAX_LEARNED_METHODS);
    }

    #[test]
    fn configured_lists_are_never_crossed() {
        let policy = MethodPolicy::new(&["eth_*"], &["eth_getLogs"]).unwrap();
        let caps = Capabilities::new(Some(policy), Duration::from_secs(60));
        let now = Instant::now();
        assert_eq!(caps.serves("eth_call", now), Serves::Yes);
        assert_eq!(caps.serves("eth_getLogs", now), Serves::Never);
        assert_eq!(caps.serves("trace_block", now), Serves::Never);
        assert!(!caps.learn_unsupported("trace_block", now));
    }
}
