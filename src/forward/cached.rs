//! The answer cache in the forwarding rounds ([`crate::cache`]): calls whose answers are
//! final are answered from it before the first round; the final answers upstreams gave (and
//! verification passed) are kept when the request is done. With a shared Redis
//! (`redis.cache`), what memory lacks is looked up there in one round trip, and what is kept
//! is shared there too, in the background.

use crate::cache::{finality, height, keepable, key, Finality};
use crate::jsonrpc::{Answer, RawJson};
use bytes::Bytes;

use super::plan::Plan;
use super::{Forward, Served};

impl Forward<'_, '_> {
    /// Answers the calls whose answers are final and kept; returns how many.
    pub(super) fn answer_from_cache(&mut self) -> usize {
        let line = self.snapshot.final_line;
        let config = &self.settings.cache;
        let mut hits = 0;
        for (plan, call) in self.plans.iter_mut().zip(self.calls) {
            plan.finality = finality(&call.method, call.params, line, config);
            if plan.answer.is_some() || plan.finality == Finality::Open {
                continue;
            }
            let Some(kept) = key(&call.method, call.params).and_then(|k| self.engine.cache.get(&k))
            else {
                continue;
            };
            serve_kept(plan, kept);
            hits += 1;
        }
        hits
    }

    /// Answers from the fleet's shared cache the final calls memory lacked; returns how many.
    /// Each hit is kept in memory too (when its block is known).
    pub(super) async fn answer_from_shared(&mut self) -> usize {
        let wanted: Vec<(usize, String)> = self
            .plans
            .iter()
            .zip(self.calls)
            .enumerate()
            .filter(|(_, (plan, _))| plan.answer.is_none() && plan.finality != Finality::Open)
            .filter_map(|(i, (_, call))| Some((i, key(&call.method, call.params)?)))
            .collect();
        if wanted.is_empty() {
            return 0;
        }
        let keys: Vec<String> = wanted.iter().map(|(_, k)| k.clone()).collect();
        let Some((epoch, found)) = self.engine.cache.get_shared(&keys).await else {
            return 0;
        };
        self.shared_epoch = Some(epoch);
        let mut hits = 0;
        for ((i, key), kept) in wanted.into_iter().zip(found) {
            let Some(kept) = kept else { continue };
            let call = self.calls[i];
            let about = height(&call.method, call.params, &kept);
            let cache = &self.engine.cache;
            cache.put(key, &kept, about, self.cache_generation);
            serve_kept(&mut self.plans[i], kept);
            hits += 1;
        }
        hits
    }

    /// Keeps the final answers upstreams gave this request (and shares them, when the
    /// shared cache was read: in the epoch read).
    pub(super) fn remember(&self) {
        let mut shared: Vec<(String, Bytes)> = Vec::new();
        for (plan, call) in self.plans.iter().zip(self.calls) {
            let Some(result) = plan.answer.as_ref().and_then(Served::upstream_result) else {
                continue;
            };
            let answer = result.as_bytes();
            if plan.judged && keepable(plan.finality, answer, plan.verified) {
                if let Some(k) = key(&call.method, call.params) {
                    let about = height(&call.method, call.params, answer);
                    if self.shared_epoch.is_some() {
                        shared.push((k.clone(), Bytes::copy_from_slice(answer)));
                    }
                    self.engine
                        .cache
                        .put(k, answer, about, self.cache_generation);
                }
            }
        }
        // A purge since the request began: what it read may be of the old chain.
        let current = self.engine.cache.generation() == self.cache_generation;
        if let (Some(epoch), true) = (&self.shared_epoch, current) {
            self.engine.cache.put_shared(epoch.clone(), shared);
        }
    }
}

/// Answers a call with a kept answer (judged when it was kept).
fn serve_kept(plan: &mut Plan, kept: Bytes) {
    plan.answer = Some(Served {
        answer: Answer::Result(RawJson::from(kept)),
        upstream: None,
    });
    plan.judged = true;
}
