//! The fork guard's pure parts: which block hash is canonical at the checked height, and
//! each upstream's forked state with hysteresis.
//!
//! Each probe round the monitor asks every upstream for the hash of one common block, a few
//! blocks below the lowest in-sync head (deep enough that the newest block or two, which
//! every node may reorg, is not compared). The hash most upstreams give is canonical; with no
//! majority, the best-ranked upstream's. An upstream giving another hash is forked at once
//! (it is out of rotation like one on another chain), and rejoins after agreeing a number of
//! checks in a row.

/// The canonical hash among `votes`, given in rank order (`None`: no vote, e.g. the node
/// lacks the block): the one a strict majority of the votes gives, else the best-ranked
/// voter's. `None` when nobody voted.
pub fn canonical<'a>(votes: &[Option<&'a str>]) -> Option<&'a str> {
    let cast: Vec<&str> = votes.iter().flatten().copied().collect();
    let majority = cast
        .iter()
        .find(|&&hash| 2 * cast.iter().filter(|&&h| h == hash).count() > cast.len());
    majority.or_else(|| cast.first()).copied()
}

/// A change of an upstream's fork state, to log and count once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForkTransition {
    /// Its hash disagreed with the canonical one.
    Forked,
    /// It agreed often enough to be used again.
    Rejoined,
}

/// One upstream's fork state.
#[derive(Debug, Clone, Default)]
pub struct ForkState {
    /// Out of rotation.
    forked: bool,
    /// Agreeing checks in a row since it was forked.
    agreed: u32,
    /// Its hash at the last check it disagreed at, for `/status` and the log.
    seen: Option<(u64, String)>,
}

impl ForkState {
    /// Takes one check's verdict: `agrees` whether its hash at `height` was canonical.
    pub fn observe(
        &mut self,
        agrees: bool,
        height: u64,
        hash: &str,
        rejoin_after: u32,
    ) -> Option<ForkTransition> {
        if !agrees {
            self.agreed = 0;
            self.seen = Some((height, hash.to_string()));
            let was = std::mem::replace(&mut self.forked, true);
            return (!was).then_some(ForkTransition::Forked);
        }
        if !self.forked {
            return None;
        }
        self.agreed += 1;
        if self.agreed < rejoin_after {
            return None;
        }
        self.forked = false;
        self.agreed = 0;
        self.seen = None;
        Some(ForkTransition::Rejoined)
    }

    /// Whether the upstream is out of rotation as forked.
    pub fn is_forked(&self) -> bool {
        self.forked
    }

    /// Where it disagreed last: height and its hash there.
    pub fn seen(&self) -> Option<&(u64, String)> {
        self.seen.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_majority_wins_else_the_best_rank() {
        assert_eq!(canonical(&[Some("b"), Some("a"), Some("a")]), Some("a"));
        assert_eq!(canonical(&[Some("a"), Some("b")]), Some("a"), "no majority");
        assert_eq!(canonical(&[Some("b"), Some("a"), Some("c")]), Some("b"));
        assert_eq!(
            canonical(&[None, Some("b"), Some("b"), Some("a")]),
            Some("b")
        );
        assert_eq!(
            canonical(&[Some("a"), Some("a"), Some("b"), Some("b")]),
            Some("a"),
            "a tie is no majority"
        );
        assert_eq!(canonical(&[None, None]), None);
    }

    #[test]
    fn forked_at_once_rejoins_after_agreeing_in_a_row() {
        let mut s = ForkState::default();
        assert_eq!(s.observe(true, 10, "0xa", 2), None);
        assert_eq!(s.observe(false, 11, "0xb", 2), Some(ForkTransition::Forked));
        assert!(s.is_forked());
        assert_eq!(s.seen(), Some(&(11, "0xb".to_string())));
        assert_eq!(s.observe(false, 12, "0xc", 2), None, "logged once");
        assert_eq!(s.observe(true, 13, "0xd", 2), None);
        assert_eq!(s.observe(false, 14, "0xe", 2), None, "the streak restarts");
        assert_eq!(s.observe(true, 15, "0xf", 2), None);
        assert_eq!(
            s.observe(true, 16, "0xg", 2),
            Some(ForkTransition::Rejoined)
        );
        assert!(!s.is_forked());
    }
}
