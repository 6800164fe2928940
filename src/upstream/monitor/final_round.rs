//! The answer cache's side of the monitor: finality rounds ([`crate::upstream::finality`]).
//!
//! Once the first probe round is back, and then every [`FINALITY_EVERY`] probe rounds, each
//! healthy, in-sync upstream is asked for its `finalized` block, the hash at the new
//! checkpoint height and the hash at the newest checkpoint, in tasks of their own: a slow or
//! failing answer never delays a probe or sways a health verdict. When every answer is back
//! the round is judged: a changed checkpoint empties the answer cache above the highest
//! unchanged one, the new checkpoint is remembered, and the line is published.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::warn;

use super::{Monitor, Record};
use crate::cache::AnswerCache;
use crate::config::CacheConfig;
use crate::upstream::finality::{self, Checkpoints, DeepReorg, Report};
use crate::upstream::health::Status;
use crate::upstream::{probe, Upstream};

/// Probe rounds between finality rounds: 30 s at the default probe interval. A `finalized`
/// block moves once an epoch (6.4 minutes on Ethereum mainnet), so asking more often buys
/// nothing; a deep reorg is seen within one finality round.
pub(super) const FINALITY_EVERY: u32 = 15;

/// What the finality rounds keep between rounds.
#[derive(Debug)]
pub(super) struct Finality {
    /// The answer cache the line is for (purged after a deep reorg).
    answers: Arc<AnswerCache>,
    /// `[cache]`: on or off, the depth, whether the `finalized` tag counts.
    config: CacheConfig,
    /// Hashes remembered along the line.
    checkpoints: Checkpoints,
    /// The line the last judged round allows (capped again by the best head when published).
    line: Option<u64>,
    /// Probe rounds since the last finality round started.
    ticks: u32,
    /// Whether a round has been started since start (the first one follows the first probes).
    started: bool,
    /// The round out, if any.
    round: Option<Round>,
    /// The round's per-upstream asks.
    asks: JoinSet<(Arc<Upstream>, Report)>,
}

/// One finality round under way.
#[derive(Debug)]
struct Round {
    /// The best head when it started.
    best_head: u64,
    /// The height of the checkpoint it takes (`best_head - final_depth`, when above the newest).
    line_at: Option<u64>,
    /// The answers back so far.
    reports: Vec<(Arc<Upstream>, Report)>,
}

/// What one upstream is asked in a round.
#[derive(Debug, Clone)]
struct Ask {
    /// Its `finalized` block.
    tag: bool,
    /// The hash at the new checkpoint height.
    line_at: Option<u64>,
    /// The remembered checkpoints, newest first: the newest is checked, the older ones only
    /// when it changed.
    checkpoints: Vec<(u64, String)>,
}

impl Finality {
    /// No line yet, for the answer cache `answers` with `config`.
    pub(super) fn new(answers: Arc<AnswerCache>, config: CacheConfig) -> Self {
        Self {
            answers,
            config,
            checkpoints: Checkpoints::default(),
            line: None,
            ticks: 0,
            started: false,
            round: None,
            asks: JoinSet::new(),
        }
    }

    /// Takes a reloaded `[cache]` section (the next round uses it).
    pub(super) fn configure(&mut self, config: CacheConfig) {
        self.config = config;
    }

    /// The next answer of the round out (pending while none is out).
    pub(super) async fn answered(&mut self) -> Option<(Arc<Upstream>, Report)> {
        match self.asks.join_next().await {
            Some(done) => done.ok(),
            None => std::future::pending().await,
        }
    }

    /// The line to publish with `best_head`: the judged one, never above
    /// `best_head - final_depth`.
    pub(super) fn published(&self, best_head: Option<u64>) -> Option<u64> {
        let by_depth = best_head?.checked_sub(self.config.final_depth)?;
        let line = self.line.filter(|_| self.config.enabled)?;
        Some(line.min(by_depth))
    }
}

impl Monitor {
    /// Counts a probe round; starts a finality round every [`FINALITY_EVERY`].
    pub(super) fn finality_tick(&mut self) {
        self.finality.ticks += 1;
        if self.finality.ticks >= FINALITY_EVERY {
            self.start_finality();
        }
    }

    /// Starts the first finality round once no probe is out.
    pub(super) fn start_first_finality(&mut self) {
        if !self.finality.started && !self.records.iter().any(|r| r.probing) {
            self.start_finality();
        }
    }

    /// Asks every healthy, in-sync upstream its round's questions (none while the cache is
    /// off, a round is out, or no head is known).
    fn start_finality(&mut self) {
        if !self.finality.config.enabled || self.finality.round.is_some() {
            return;
        }
        let Some(best_head) = self.best_head(self.expected_chain()) else {
            return;
        };
        let now = Instant::now();
        let asked: Vec<Arc<Upstream>> = self
            .records
            .iter()
            .filter(|r| in_consensus(r, now))
            .map(|r| Arc::clone(&r.upstream))
            .collect();
        if asked.is_empty() {
            return;
        }
        let state = &mut self.finality;
        let newest = state.checkpoints.newest().map(|(h, _)| *h);
        let line_at = best_head
            .checked_sub(state.config.final_depth)
            .filter(|h| newest.is_none_or(|n| *h > n));
        let ask = Ask {
            tag: state.config.use_finalized_tag,
            line_at,
            checkpoints: state.checkpoints.newest_first(),
        };
        for upstream in asked {
            let (ask, timeout) = (ask.clone(), self.probe_timeout);
            state.asks.spawn(async move {
                let report = ask_one(&upstream, timeout, ask).await;
                (upstream, report)
            });
        }
        state.round = Some(Round {
            best_head,
            line_at,
            reports: Vec::new(),
        });
        state.ticks = 0;
        state.started = true;
    }

    /// Takes one upstream's answers (`None`: its ask failed); judges the round once every
    /// answer is back.
    pub(super) fn finality_answered(&mut self, answer: Option<(Arc<Upstream>, Report)>) {
        let state = &mut self.finality;
        let Some(round) = state.round.as_mut() else {
            return;
        };
        round.reports.extend(answer);
        if !state.asks.is_empty() {
            return;
        }
        if let Some(round) = state.round.take() {
            self.judge_finality(round);
        }
    }

    /// Purges after a changed checkpoint, remembers the new one, and sets the line.
    fn judge_finality(&mut self, round: Round) {
        let mut ranked: Vec<(usize, Report)> = round
            .reports
            .into_iter()
            .filter_map(|(u, report)| Some((self.index_of(&u)?, report)))
            .collect();
        ranked.sort_by_key(|(index, _)| *index);
        let reports: Vec<Report> = ranked.into_iter().map(|(_, r)| r).collect();
        if let Some(reorg) = finality::judge(&self.finality.checkpoints, &reports) {
            self.purge(&reorg);
        }
        let state = &mut self.finality;
        if let (Some(height), Some(hash)) = (round.line_at, finality::line_hash(&reports)) {
            state.checkpoints.push(height, hash);
        }
        let finalized: Vec<Option<u64>> = reports.iter().map(|r| r.finalized).collect();
        let allowed = finality::final_line(&finalized, Some(round.best_head), &state.config);
        let newest = state.checkpoints.newest().map(|(h, _)| *h);
        state.line = allowed.zip(newest).map(|(a, n)| a.min(n));
    }

    /// Empties the answer cache from the reorg's height up, and forgets the checkpoints
    /// there.
    fn purge(&mut self, reorg: &DeepReorg) {
        let purged = self.finality.answers.purge_from(reorg.from);
        self.finality.checkpoints.forget_from(reorg.from);
        self.metrics.cache_deep_reorgs.inc();
        warn!(
            block = reorg.at,
            was = reorg.was.as_str(),
            now = reorg.now.as_str(),
            from = reorg.from,
            purged,
            "a reorg deeper than the cache's final line changed a block the cache treated as \
             final; cached answers about blocks from `from` up are dropped"
        );
    }
}

/// Whether an upstream has a say in a finality round: healthy, in sync, on the chain, not
/// forked, not quarantined.
fn in_consensus(record: &Record, now: Instant) -> bool {
    record.health.status() == Status::Healthy
        && !record.health.is_lagging()
        && !record.wrong_chain
        && !record.syncing
        && !record.fork.is_forked()
        && !record.upstream.wrong.is_quarantined(now)
}

/// One upstream's answers to `ask`, each bounded by `timeout`; what it does not answer is
/// `None` (it has no say there).
async fn ask_one(upstream: &Upstream, timeout: Duration, ask: Ask) -> Report {
    let finalized = match ask.tag {
        true => probe::header(upstream, "finalized", timeout)
            .await
            .and_then(|stamp| stamp.number),
        false => None,
    };
    let line_hash = match ask.line_at {
        Some(height) => probe::block_hash(upstream, height, timeout).await,
        None => None,
    };
    let (newest, kept) = walk(upstream, timeout, &ask.checkpoints).await;
    Report {
        finalized,
        line_hash,
        newest,
        kept,
    }
}

/// Its hash at the newest checkpoint and the highest checkpoint it has the remembered hash
/// of: the newest when that did not change, else the first older one that did not (walking
/// down only then).
async fn walk(
    upstream: &Upstream,
    timeout: Duration,
    checkpoints: &[(u64, String)],
) -> (Option<String>, Option<u64>) {
    let Some(((height, was), older)) = checkpoints.split_first() else {
        return (None, None);
    };
    let newest = probe::block_hash(upstream, *height, timeout).await;
    if newest.as_ref().is_none_or(|now| now == was) {
        return (newest, Some(*height));
    }
    for (height, was) in older {
        if probe::block_hash(upstream, *height, timeout).await.as_ref() == Some(was) {
            return (newest, Some(*height));
        }
    }
    (newest, None)
}
