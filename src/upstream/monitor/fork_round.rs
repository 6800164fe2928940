//! The fork guard's side of the monitor: which block a round asks every upstream the hash
//! of, and the judgement once every probe of the round is back.

use tracing::{error, info};

use super::Monitor;
use crate::upstream::fork::{self, ForkTransition};
use crate::upstream::health::Status;

impl Monitor {
    /// The block to compare this round: `depth` below the lowest head among upstreams that
    /// are healthy, in sync, on the chain and not forked (any known head at start). `None`
    /// when the guard is off, there is nothing to compare with, or no head is known yet.
    pub(super) fn fork_question(&self) -> Option<u64> {
        if !self.fork.enabled || self.records.len() < 2 {
            return None;
        }
        let in_sync = self
            .records
            .iter()
            .filter(|r| r.health.status() == Status::Healthy && !r.health.is_lagging())
            .filter(|r| !r.wrong_chain && !r.syncing && !r.fork.is_forked())
            .filter_map(|r| r.health.head())
            .min();
        let lowest = in_sync.or_else(|| self.records.iter().filter_map(|r| r.health.head()).min());
        Some(lowest?.saturating_sub(self.fork.depth))
    }

    /// Once no probe of the round is out: judges the round's hashes, and, while no round
    /// has been judged yet, starts the next round at once.
    pub(super) fn end_round_if_done(&mut self) {
        if self.records.iter().any(|r| r.probing) {
            return;
        }
        match self.fork_height {
            Some(height) => {
                self.judge(height);
                self.fork_judged = true;
            }
            None if !self.fork_judged && self.fork_question().is_some() => self.start_probes(),
            None => {}
        }
    }

    /// Compares the hashes the upstreams gave for `height`: each one that differs from the
    /// canonical hash is forked, each one that matches counts towards rejoining.
    fn judge(&mut self, height: u64) {
        let votes: Vec<Option<String>> = self
            .records
            .iter_mut()
            .map(|r| {
                let vote = r.hash.take().filter(|(h, _)| *h == height);
                vote.filter(|_| !r.wrong_chain).map(|(_, hash)| hash)
            })
            .collect();
        let ballots: Vec<Option<&str>> = votes.iter().map(Option::as_deref).collect();
        let Some(canonical) = fork::canonical(&ballots).map(str::to_string) else {
            return;
        };
        for (index, vote) in votes.iter().enumerate() {
            let Some(hash) = vote else { continue };
            let agrees = *hash == canonical;
            let rejoin_after = self.fork.rejoin_after;
            let transition = self.records[index]
                .fork
                .observe(agrees, height, hash, rejoin_after);
            self.log_fork(index, transition, height, hash, &canonical);
        }
    }

    fn log_fork(
        &self,
        index: usize,
        transition: Option<ForkTransition>,
        height: u64,
        hash: &str,
        canonical: &str,
    ) {
        let name = self.records[index].upstream.name.as_str();
        let rank = index + 1;
        let to = match transition {
            None => return,
            Some(ForkTransition::Forked) => {
                error!(
                    upstream = name,
                    rank,
                    block = height,
                    hash,
                    majority = canonical,
                    "upstream is on a minority fork (its block differs from the majority's); \
                     it will not be used"
                );
                "forked"
            }
            Some(ForkTransition::Rejoined) => {
                info!(
                    upstream = name,
                    rank,
                    block = height,
                    "upstream agrees with the majority again; back in rotation"
                );
                "rejoined"
            }
        };
        self.metrics
            .transitions
            .with_label_values(&[name, to])
            .inc();
    }
}
