//! Where each call of a request stands: the block it needs, its candidate order, the next
//! candidate to try, the answer kept; how unanswered calls group by upstream for a round,
//! and which answers are doubted and tried elsewhere.

use std::sync::Arc;

use crate::blocks::{self, BlockNeed};
use crate::error::is_node_trouble;
use crate::jsonrpc::{Answer, Call};
use crate::router;
use crate::upstream::breaker::BreakerState;
use crate::upstream::Snapshot;

use super::Served;

/// Where one call stands.
pub(super) struct Plan {
    /// The block it needs.
    pub(super) need: BlockNeed,
    /// Its candidates, best first (indices into the snapshot).
    pub(super) candidates: Arc<[usize]>,
    /// Next candidate to try.
    pub(super) next: usize,
    /// An answer to keep.
    pub(super) answer: Option<Served>,
    /// The last doubtful answer (node trouble, `null`), returned if nothing better comes.
    pub(super) fallback: Option<Served>,
}

/// Each call's plan; calls needing the same block share one candidate order.
pub(super) fn plan_calls(
    snapshot: &Snapshot,
    breakers: &[BreakerState],
    calls: &[&Call<'_>],
) -> Vec<Plan> {
    let mut orders: Vec<(BlockNeed, Arc<[usize]>)> = Vec::new();
    calls
        .iter()
        .map(|call| {
            let need = blocks::need(&call.method, call.params);
            let candidates = match orders.iter().find(|(n, _)| *n == need) {
                Some((_, order)) => Arc::clone(order),
                None => {
                    let order: Arc<[usize]> = router::select(snapshot, need, breakers).into();
                    orders.push((need, Arc::clone(&order)));
                    order
                }
            };
            Plan {
                need,
                candidates,
                next: 0,
                answer: None,
                fallback: None,
            }
        })
        .collect()
}

/// Unanswered calls grouped by their next candidate, calls in order within a group.
pub(super) fn group(plans: &[Plan]) -> Vec<(usize, Vec<usize>)> {
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        if plan.answer.is_some() {
            continue;
        }
        let Some(&u) = plan.candidates.get(plan.next) else {
            continue;
        };
        match groups.iter_mut().find(|(g, _)| *g == u) {
            Some((_, items)) => items.push(i),
            None => groups.push((u, vec![i])),
        }
    }
    groups
}

/// Why an answer from upstream `u` should be tried elsewhere, if it should.
pub(super) fn doubt(
    call: &Call<'_>,
    plan: &Plan,
    answer: &Answer,
    u: usize,
    snapshot: &Snapshot,
) -> Option<&'static str> {
    match answer {
        Answer::Error(e) if is_node_trouble(e.code, &e.message) => Some("node_error"),
        Answer::Result(r) if r.is_null() && blocks::is_nullable(&call.method) => {
            let mine = snapshot.upstreams[u].head;
            let others = plan.candidates[plan.next + 1..]
                .iter()
                .map(|&j| snapshot.upstreams[j].head);
            // A null is believed unless a remaining candidate may know better: one that has
            // the block asked for, or is further along than this one.
            let may_know = |head: Option<u64>| match (head, plan.need) {
                (None, _) => true,
                (Some(h), BlockNeed::Number(n)) if h >= n => true,
                (Some(h), _) => mine.is_none_or(|m| h > m),
            };
            others.into_iter().any(may_know).then_some("null")
        }
        _ => None,
    }
}
