//! The answer cache's final line and deep-reorg detection, pure parts (the monitor's side is
//! `monitor/final_round.rs`; the rule as a whole is told in [`crate::cache`]).
//!
//! Every few probe rounds a finality round asks each healthy, in-sync upstream for its
//! `finalized` block, for the hash at `best_head - final_depth` (to remember as a
//! [`Checkpoints`] entry) and for the hash at the newest checkpoint. [`final_line`] is the
//! rule over the `finalized` reports; [`judge`] says whether the newest checkpoint changed
//! (a reorg deeper than the line) and from which height the cache must be emptied.

use std::collections::VecDeque;

use crate::config::CacheConfig;
use crate::upstream::fork;

/// Checkpoints remembered: at one per finality round (30 s at the default probe interval),
/// the last quarter of an hour. A reorg under the oldest one empties every entry about a
/// block.
pub const CHECKPOINTS: usize = 32;

/// The final line the rule allows: `best_head - final_depth`, held back to the lowest
/// `finalized` block reported when `use_finalized_tag` (an upstream that has no `finalized`
/// block, `None`, has no say). `None` while the best head is unknown or under the depth.
pub fn final_line(
    finalized: &[Option<u64>],
    best_head: Option<u64>,
    config: &CacheConfig,
) -> Option<u64> {
    let by_depth = best_head?.checked_sub(config.final_depth)?;
    let lowest = finalized.iter().flatten().copied().min();
    match lowest {
        Some(tag) if config.use_finalized_tag => Some(tag.min(by_depth)),
        _ => Some(by_depth),
    }
}

/// Block hashes remembered at the heights the final line reached, oldest first, each above
/// the one before.
#[derive(Debug, Clone, Default)]
pub struct Checkpoints {
    /// (height, canonical hash), oldest first.
    kept: VecDeque<(u64, String)>,
}

impl Checkpoints {
    /// The highest checkpoint: the line never passes it.
    pub fn newest(&self) -> Option<&(u64, String)> {
        self.kept.back()
    }

    /// Remembers `hash` at `height` if it is above the newest (the oldest goes past
    /// [`CHECKPOINTS`]).
    pub fn push(&mut self, height: u64, hash: String) {
        if self.newest().is_some_and(|(h, _)| *h >= height) {
            return;
        }
        self.kept.push_back((height, hash));
        if self.kept.len() > CHECKPOINTS {
            self.kept.pop_front();
        }
    }

    /// Every checkpoint, newest first (what a finality round checks).
    pub fn newest_first(&self) -> Vec<(u64, String)> {
        self.kept.iter().rev().cloned().collect()
    }

    /// Forgets the checkpoints at `from` and above (a reorg changed them).
    pub fn forget_from(&mut self, from: u64) {
        self.kept.retain(|(h, _)| *h < from);
    }
}

/// One upstream's answers in a finality round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Its `finalized` block number (`None`: it has none, or did not answer).
    pub finalized: Option<u64>,
    /// Its hash at the round's new checkpoint height.
    pub line_hash: Option<String>,
    /// Its hash at the newest checkpoint.
    pub newest: Option<String>,
    /// When that differs from the remembered one: the highest checkpoint it still has the
    /// remembered hash of (`None`: none of them).
    pub kept: Option<u64>,
}

/// A reorg under the newest checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeepReorg {
    /// The newest checkpoint's height, whose hash changed.
    pub at: u64,
    /// The hash remembered there.
    pub was: String,
    /// The hash the upstreams give now.
    pub now: String,
    /// Empty the cache from this height up: just above the highest checkpoint that did not
    /// change (0: none did).
    pub from: u64,
}

/// Whether the newest checkpoint's canonical hash (the majority's, else the best-ranked
/// upstream's, of `reports` in rank order) changed, and from which height to purge: above the
/// lowest checkpoint that the upstreams giving the new hash still agree with.
pub fn judge(checkpoints: &Checkpoints, reports: &[Report]) -> Option<DeepReorg> {
    let (at, was) = checkpoints.newest()?;
    let votes: Vec<Option<&str>> = reports.iter().map(|r| r.newest.as_deref()).collect();
    let now = fork::canonical(&votes)?;
    if now == was {
        return None;
    }
    let from = reports
        .iter()
        .filter(|r| r.newest.as_deref() == Some(now))
        .map(|r| r.kept.map_or(0, |h| h + 1))
        .min()?;
    Some(DeepReorg {
        at: *at,
        was: was.clone(),
        now: now.to_string(),
        from,
    })
}

/// The canonical hash at the round's new checkpoint height, from `reports` in rank order.
pub fn line_hash(reports: &[Report]) -> Option<String> {
    let votes: Vec<Option<&str>> = reports.iter().map(|r| r.line_hash.as_deref()).collect();
    fork::canonical(&votes).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(depth: u64, use_tag: bool) -> CacheConfig {
        CacheConfig {
            final_depth: depth,
            use_finalized_tag: use_tag,
            ..CacheConfig::default()
        }
    }

    #[test]
    fn the_line_is_the_lowest_finalized_capped_by_the_depth() {
        let c = config(10, true);
        assert_eq!(final_line(&[Some(80), Some(85)], Some(100), &c), Some(80));
        assert_eq!(
            final_line(&[Some(99), Some(95)], Some(100), &c),
            Some(90),
            "a node claiming more cannot push it past the depth"
        );
        assert_eq!(
            final_line(&[None, Some(85)], Some(100), &c),
            Some(85),
            "a node without the tag has no say"
        );
        assert_eq!(
            final_line(&[None, None], Some(100), &c),
            Some(90),
            "none: the depth"
        );
        assert_eq!(final_line(&[], Some(100), &c), Some(90));
        assert_eq!(final_line(&[Some(80)], None, &c), None, "no head yet");
        assert_eq!(final_line(&[Some(0)], Some(5), &c), None, "under the depth");
        let off = config(10, false);
        assert_eq!(
            final_line(&[Some(80)], Some(100), &off),
            Some(90),
            "switched off"
        );
    }

    fn report(newest: &str, kept: Option<u64>) -> Report {
        Report {
            newest: Some(newest.to_string()),
            kept,
            ..Report::default()
        }
    }

    fn checkpoints(heights: &[(u64, &str)]) -> Checkpoints {
        let mut c = Checkpoints::default();
        for (h, hash) in heights {
            c.push(*h, hash.to_string());
        }
        c
    }

    #[test]
    fn checkpoints_rise_and_keep_the_last_few() {
        let mut c = checkpoints(&[(10, "a"), (20, "b"), (15, "x"), (20, "y")]);
        assert_eq!(c.newest_first(), vec![(20, "b".into()), (10, "a".into())]);
        c.forget_from(20);
        assert_eq!(c.newest(), Some(&(10, "a".to_string())));
        for h in 0..CHECKPOINTS as u64 + 5 {
            c.push(100 + h, format!("h{h}"));
        }
        assert_eq!(c.newest_first().len(), CHECKPOINTS);
    }

    #[test]
    fn a_changed_newest_checkpoint_purges_above_the_highest_unchanged_one() {
        let c = checkpoints(&[(10, "a"), (20, "b")]);
        assert_eq!(judge(&c, &[report("b", Some(20))]), None, "unchanged");
        assert_eq!(judge(&Checkpoints::default(), &[report("b", None)]), None);
        assert_eq!(
            judge(&c, &[Report::default()]),
            None,
            "no answer: no verdict"
        );
        let reorg = judge(&c, &[report("c", Some(10))]).unwrap();
        assert_eq!((reorg.at, reorg.from), (20, 11));
        assert_eq!((reorg.was.as_str(), reorg.now.as_str()), ("b", "c"));
        assert_eq!(
            judge(&c, &[report("c", None)]).unwrap().from,
            0,
            "no checkpoint unchanged: everything"
        );
        assert_eq!(
            judge(&c, &[report("c", Some(10)), report("c", None)])
                .unwrap()
                .from,
            0,
            "the deepest account wins"
        );
        assert_eq!(
            judge(
                &c,
                &[
                    report("b", Some(20)),
                    report("b", Some(20)),
                    report("c", None)
                ]
            ),
            None,
            "one node alone does not make a reorg (the fork guard's business)"
        );
    }
}
