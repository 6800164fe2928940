//! The answer cache in the forwarding rounds ([`crate::cache`]): calls whose answers are
//! final are answered from it before the first round; the final answers upstreams gave (and
//! verification passed) are kept when the request is done.

use crate::cache::{finality, keepable, key, Finality};
use crate::jsonrpc::{Answer, RawJson};

use super::{Forward, Served};

impl Forward<'_, '_> {
    /// Answers the calls whose answers are final and kept; returns how many.
    pub(super) fn answer_from_cache(&mut self) -> usize {
        let best = self.snapshot.best_head;
        let config = &self.settings.cache;
        let mut hits = 0;
        for (plan, call) in self.plans.iter_mut().zip(self.calls) {
            plan.finality = finality(&call.method, call.params, best, config);
            if plan.answer.is_some() || plan.finality == Finality::Open {
                continue;
            }
            let Some(kept) = key(&call.method, call.params).and_then(|k| self.engine.cache.get(&k))
            else {
                continue;
            };
            plan.answer = Some(Served {
                answer: Answer::Result(RawJson::from(kept)),
                upstream: None,
            });
            plan.judged = true;
            hits += 1;
        }
        hits
    }

    /// Keeps the final answers upstreams gave this request.
    pub(super) fn remember(&self) {
        for (plan, call) in self.plans.iter().zip(self.calls) {
            let Some(Served {
                answer: Answer::Result(result),
                upstream: Some(_),
            }) = &plan.answer
            else {
                continue;
            };
            if plan.judged && keepable(plan.finality, result.as_bytes(), plan.verified) {
                if let Some(k) = key(&call.method, call.params) {
                    self.engine.cache.put(k, result.as_bytes());
                }
            }
        }
    }
}
