//! Candidate selection: one pure function from a [`Snapshot`], the block a request needs and
//! the breakers' states to the order in which upstreams are tried.
//!
//! One sort key, `(class, has_block, lagging, rank)`:
//! - class: healthy, then not yet probed, then unhealthy, breaker-open or quarantined for
//!   wrong data as a last resort (an answer from a node that failed its probes beats no
//!   answer; a quarantined node's answers are still verified);
//! - for a request that needs block `n`: upstreams whose head is at least `n` first — a
//!   lagging primary keeps serving the blocks it has;
//! - otherwise: in sync before lagging (or syncing);
//! - then rank. An upstream on another chain, or on a minority fork, is never a candidate.

use crate::blocks::BlockNeed;
use crate::upstream::breaker::BreakerState;
use crate::upstream::health::Status;
use crate::upstream::{Snapshot, UpstreamState};

/// Whether, and how early, an upstream is tried; lower sorts first.
fn key(
    state: &UpstreamState,
    need: BlockNeed,
    breaker: BreakerState,
) -> Option<(u8, u8, u8, usize)> {
    if state.wrong_chain || state.forked {
        return None;
    }
    let class = match (state.status, breaker) {
        _ if state.quarantined => 2,
        (_, BreakerState::Open) | (Status::Unhealthy, _) => 2,
        (Status::Unknown, _) => 1,
        (Status::Healthy, _) => 0,
    };
    let (has_block, lagging) = match need {
        BlockNeed::Number(n) => (u8::from(state.head.is_none_or(|h| h < n)), 0),
        BlockNeed::Any | BlockNeed::Latest | BlockNeed::ByHash => {
            (0, u8::from(state.lagging || state.syncing))
        }
    };
    Some((class, has_block, lagging, state.rank))
}

/// Indices into `snapshot.upstreams`, in the order to try them. `breakers[i]` is the
/// breaker state of upstream `i` (missing entries count as closed).
pub fn select(snapshot: &Snapshot, need: BlockNeed, breakers: &[BreakerState]) -> Vec<usize> {
    let mut keyed: Vec<((u8, u8, u8, usize), usize)> = snapshot
        .upstreams
        .iter()
        .enumerate()
        .filter_map(|(index, s)| {
            let breaker = breakers.get(index).copied().unwrap_or(BreakerState::Closed);
            Some((key(s, need, breaker)?, index))
        })
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, index)| index).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(rank: usize, status: Status, lagging: bool) -> UpstreamState {
        UpstreamState {
            status,
            head: Some(100),
            lag: Some(0),
            lagging,
            chain_id: Some(1),
            ..UpstreamState::unknown(&format!("u{rank}"), rank)
        }
    }

    fn snapshot(upstreams: Vec<UpstreamState>) -> Snapshot {
        Snapshot {
            handles: vec![],
            fork_pending: false,
            best_head: Some(100),
            chain_id: Some(1),
            final_line: None,
            upstreams,
        }
    }

    #[test]
    fn healthy_in_sync_by_rank() {
        let s = snapshot(vec![
            state(1, Status::Healthy, false),
            state(2, Status::Healthy, false),
            state(3, Status::Healthy, false),
        ]);
        assert_eq!(select(&s, BlockNeed::Any, &[]), vec![0, 1, 2]);
    }

    #[test]
    fn unhealthy_primary_is_last_resort() {
        let s = snapshot(vec![
            state(1, Status::Unhealthy, false),
            state(2, Status::Healthy, false),
            state(3, Status::Healthy, false),
        ]);
        assert_eq!(select(&s, BlockNeed::Any, &[]), vec![1, 2, 0]);
    }

    #[test]
    fn lagging_after_in_sync_before_unknown_and_unhealthy() {
        let s = snapshot(vec![
            state(1, Status::Healthy, true),
            state(2, Status::Unhealthy, false),
            state(3, Status::Unknown, false),
            state(4, Status::Healthy, false),
            state(5, Status::Healthy, true),
        ]);
        assert_eq!(select(&s, BlockNeed::Any, &[]), vec![3, 0, 4, 2, 1]);
    }

    #[test]
    fn wrong_chain_is_never_a_candidate() {
        let mut wrong = state(1, Status::Healthy, false);
        wrong.wrong_chain = true;
        let s = snapshot(vec![wrong, state(2, Status::Unhealthy, false)]);
        assert_eq!(select(&s, BlockNeed::Any, &[]), vec![1]);
    }

    #[test]
    fn rank_not_position_orders_a_tier() {
        let s = snapshot(vec![
            state(2, Status::Healthy, false),
            state(1, Status::Healthy, false),
        ]);
        assert_eq!(select(&s, BlockNeed::Any, &[]), vec![1, 0]);
    }

    fn with_head(mut s: UpstreamState, head: u64, lagging: bool) -> UpstreamState {
        s.head = Some(head);
        s.lagging = lagging;
        s
    }

    #[test]
    fn a_lagging_primary_serves_the_blocks_it_has() {
        let s = snapshot(vec![
            with_head(state(1, Status::Healthy, true), 70, true),
            with_head(state(2, Status::Healthy, false), 100, false),
        ]);
        assert_eq!(select(&s, BlockNeed::Number(70), &[]), vec![0, 1]);
        assert_eq!(select(&s, BlockNeed::Number(71), &[]), vec![1, 0]);
        assert_eq!(select(&s, BlockNeed::Latest, &[]), vec![1, 0]);
        assert_eq!(select(&s, BlockNeed::ByHash, &[]), vec![1, 0]);
    }

    #[test]
    fn having_the_block_does_not_beat_health() {
        let s = snapshot(vec![
            with_head(state(1, Status::Unhealthy, false), 100, false),
            with_head(state(2, Status::Healthy, false), 50, false),
        ]);
        assert_eq!(select(&s, BlockNeed::Number(80), &[]), vec![1, 0]);
    }

    #[test]
    fn an_open_breaker_is_a_last_resort_and_half_open_gets_its_trial() {
        let s = snapshot(vec![
            state(1, Status::Healthy, false),
            state(2, Status::Healthy, false),
        ]);
        assert_eq!(
            select(
                &s,
                BlockNeed::Any,
                &[BreakerState::Open, BreakerState::Closed]
            ),
            vec![1, 0]
        );
        assert_eq!(
            select(
                &s,
                BlockNeed::Any,
                &[BreakerState::HalfOpen, BreakerState::Closed]
            ),
            vec![0, 1]
        );
    }

    #[test]
    fn no_upstreams_no_candidates() {
        assert!(select(&snapshot(vec![]), BlockNeed::Any, &[]).is_empty());
    }
}
