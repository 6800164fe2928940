//! Candidate selection: one pure function from a [`Snapshot`] to the order in which
//! upstreams are tried for a request.
//!
//! One sort key, `(tier, rank)`: healthy and in sync first, then healthy but lagging, then
//! not yet probed, then unhealthy as a last resort (an answer from a node that failed its
//! probes beats no answer). An upstream on another chain is never a candidate.

use crate::upstream::health::Status;
use crate::upstream::{Snapshot, UpstreamState};

/// Tier of an upstream; lower is tried first, `None` never.
fn tier(state: &UpstreamState) -> Option<u8> {
    if state.wrong_chain {
        return None;
    }
    Some(match (state.status, state.lagging) {
        (Status::Healthy, false) => 0,
        (Status::Healthy, true) => 1,
        (Status::Unknown, _) => 2,
        (Status::Unhealthy, _) => 3,
    })
}

/// Indices into `snapshot.upstreams`, in the order to try them.
pub fn select(snapshot: &Snapshot) -> Vec<usize> {
    let mut keyed: Vec<(u8, usize, usize)> = snapshot
        .upstreams
        .iter()
        .enumerate()
        .filter_map(|(index, s)| Some((tier(s)?, s.rank, index)))
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, _, index)| index).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(rank: usize, status: Status, lagging: bool) -> UpstreamState {
        UpstreamState {
            name: format!("u{rank}"),
            rank,
            status,
            head: Some(100),
            lag: Some(0),
            lagging,
            latency_ms: None,
            chain_id: Some(1),
            wrong_chain: false,
            last_error: None,
            status_age_secs: 0.0,
            since_unix: None,
        }
    }

    fn snapshot(upstreams: Vec<UpstreamState>) -> Snapshot {
        Snapshot {
            best_head: Some(100),
            chain_id: Some(1),
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
        assert_eq!(select(&s), vec![0, 1, 2]);
    }

    #[test]
    fn unhealthy_primary_is_last_resort() {
        let s = snapshot(vec![
            state(1, Status::Unhealthy, false),
            state(2, Status::Healthy, false),
            state(3, Status::Healthy, false),
        ]);
        assert_eq!(select(&s), vec![1, 2, 0]);
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
        assert_eq!(select(&s), vec![3, 0, 4, 2, 1]);
    }

    #[test]
    fn wrong_chain_is_never_a_candidate() {
        let mut wrong = state(1, Status::Healthy, false);
        wrong.wrong_chain = true;
        let s = snapshot(vec![wrong, state(2, Status::Unhealthy, false)]);
        assert_eq!(select(&s), vec![1]);
    }

    #[test]
    fn rank_not_position_orders_a_tier() {
        let s = snapshot(vec![
            state(2, Status::Healthy, false),
            state(1, Status::Healthy, false),
        ]);
        assert_eq!(select(&s), vec![1, 0]);
    }

    #[test]
    fn no_upstreams_no_candidates() {
        assert!(select(&snapshot(vec![])).is_empty());
    }
}
