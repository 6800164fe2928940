//! Where each call of a request stands: the block it needs, its candidate order, the next
//! candidate to try, the answer kept; how unanswered calls group by upstream for a round,
//! and which answers are doubted and tried elsewhere.

use std::sync::Arc;

use tokio::time::Instant;

use crate::blocks::{self, BlockNeed};
use crate::cache::Finality;
use crate::error::{is_node_trouble, METHOD_NOT_FOUND};
use crate::jsonrpc::{Answer, Call, RawJson, RpcError};
use crate::method::is_unsupported;
use crate::router;
use crate::upstream::breaker::BreakerState;
use crate::upstream::capability::Serves;
use crate::upstream::Snapshot;
use nodewatch_verify::Wrong;

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
    /// `answer` has been through verification (or needs none).
    pub(super) judged: bool,
    /// The last answer that failed verification: the upstream and the evidence. Never
    /// served; when no right answer comes, the call's error names it.
    pub(super) wrong: Option<(String, Wrong)>,
    /// Why `answer` could not be verified, when that ended the call.
    pub(super) unverifiable: Option<String>,
    /// `answer` passed every check that applies to it (none skipped).
    pub(super) verified: bool,
    /// Whether its answer can no longer change (the answer cache's rule).
    pub(super) finality: Finality,
}

/// Each call's plan. Calls needing the same block share one candidate order, unless an
/// upstream does not serve the call's method: configured lists take it out of the order,
/// a learned "not available" moves it to the end.
pub(super) fn plan_calls(
    snapshot: &Snapshot,
    breakers: &[BreakerState],
    calls: &[&Call<'_>],
) -> Vec<Plan> {
    let mut orders: Vec<(BlockNeed, Arc<[usize]>)> = Vec::new();
    let now = Instant::now();
    calls
        .iter()
        .map(|call| {
            let need = blocks::need(&call.method, call.params);
            let by_block = match orders.iter().find(|(n, _)| *n == need) {
                Some((_, order)) => Arc::clone(order),
                None => {
                    let order: Arc<[usize]> = router::select(snapshot, need, breakers).into();
                    orders.push((need, Arc::clone(&order)));
                    order
                }
            };
            let candidates = capable(snapshot, &by_block, &call.method, now);
            let answer =
                (candidates.is_empty() && !by_block.is_empty()).then(|| not_served(&call.method));
            Plan {
                need,
                candidates,
                next: 0,
                answer,
                fallback: None,
                judged: false,
                wrong: None,
                unverifiable: None,
                verified: false,
                finality: Finality::Open,
            }
        })
        .collect()
}

/// `order` without the upstreams whose lists refuse `method`, those that said lately they
/// do not serve it last; the same `Arc` when nothing changes (the common case).
fn capable(snapshot: &Snapshot, order: &Arc<[usize]>, method: &str, now: Instant) -> Arc<[usize]> {
    let serves = |u: usize| {
        snapshot
            .handles
            .get(u)
            .map_or(Serves::Yes, |h| h.capabilities.serves(method, now))
    };
    if order.iter().all(|&u| serves(u) == Serves::Yes) {
        return Arc::clone(order);
    }
    let (likely, unlikely): (Vec<usize>, Vec<usize>) = order
        .iter()
        .copied()
        .filter(|&u| serves(u) != Serves::Never)
        .partition(|&u| serves(u) == Serves::Yes);
    likely.into_iter().chain(unlikely).collect()
}

/// The answer for a call no candidate's `methods` lists allow: -32601, as a node would give.
fn not_served(method: &str) -> Served {
    let message = format!("the method {method} is not served by any upstream of this proxy");
    let raw = serde_json::json!({"code": METHOD_NOT_FOUND, "message": message});
    Served {
        answer: Answer::Error(RpcError {
            code: METHOD_NOT_FOUND,
            message,
            raw: RawJson::from(raw.to_string()),
        }),
        upstream: None,
    }
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

/// The doubt for an answer saying the node does not serve the method.
pub(super) const UNSUPPORTED: &str = "unsupported";

/// Why an answer from upstream `u` should be tried elsewhere, if it should.
pub(super) fn doubt(
    call: &Call<'_>,
    plan: &Plan,
    answer: &Answer,
    u: usize,
    snapshot: &Snapshot,
) -> Option<&'static str> {
    match answer {
        Answer::Error(e) if is_unsupported(e.code, &e.message) => Some(UNSUPPORTED),
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
