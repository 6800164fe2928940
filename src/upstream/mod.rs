//! Upstream nodes: how one is reached (requests through [`Upstream::send_within`], probes
//! through [`Upstream::send`]) and the published view of all of them ([`Snapshot`]) that the
//! request path reads without a lock.
//!
//! Upstreams share one `nodewatch-http` client (an upstream with a `ca_file` of its own gets
//! its own): plain `http://` goes through `nodewatch_http::direct`, HTTP/1.1 connections kept
//! per authority and polled by the task that sends on them; `https://` through hyper-util's
//! pool, rustls with the webpki roots, HTTP/1.1 or h2 by ALPN. An upstream is known by its
//! name everywhere: its URL and header values are never logged or shown.

pub mod answer;
pub mod breaker;
pub mod capability;
pub mod credits;
pub mod finality;
pub mod fork;
pub mod health;
pub mod latency;
pub mod limit;
pub mod monitor;
pub mod pace;
pub mod probe;
pub mod wrong;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use nodewatch_http::{ClientOptions, Endpoint, HttpClient, SendError, SendFailure};
use serde::Serialize;

use crate::budget::{AnswerBudget, Shortfall};
use crate::config::{UpstreamSpec, ValidConfig};
use crate::error::{UpstreamError, UpstreamErrorKind};
use crate::metrics::{Metrics, UpstreamChildren};
use crate::shared::Shared;
use breaker::{Breaker, BreakerState};
use capability::Capabilities;
use health::Status;
use latency::LatencyHistory;
use limit::Limits;
use pace::Ticket;
use wrong::WrongGuard;

/// One configured upstream node.
#[derive(Debug)]
pub struct Upstream {
    /// Display name (configured, or `host:port`).
    pub name: String,
    /// Passive circuit breaker.
    pub breaker: Breaker,
    /// Concurrency and rate limits: `max_rps`, and the rate learned from limit answers.
    pub limits: Limits,
    /// Which methods it serves (configured, and learned from its answers).
    pub capabilities: Capabilities,
    /// Recent attempt latencies per method class, for hedge delays.
    pub latency: LatencyHistory,
    /// Its answers that failed verification, and its quarantine.
    pub wrong: WrongGuard,
    /// The configuration it was built from: a reload keeps this upstream (and its health
    /// history) when the new entry is identical.
    spec: UpstreamSpec,
    /// Shared pooled client.
    client: HttpClient,
    /// Its metric children, resolved on first use.
    children: OnceLock<UpstreamChildren>,
}

impl Upstream {
    /// Builds an upstream from its validated entry; `shared`: the fleet's store, for its
    /// `budget_key`.
    pub fn new(
        spec: &UpstreamSpec,
        client: HttpClient,
        config: &ValidConfig,
        shared: Option<&Arc<Shared>>,
    ) -> Self {
        let source = &spec.source;
        let mut limits = Limits::new(
            source.max_concurrency,
            source.max_rps,
            source.spill,
            config.rate_limit,
        );
        if let Some(credits) = &source.credits {
            limits = limits.with_credits(credits, config.rate_limit);
        }
        if let (Some(shared), Some(key)) = (shared, &source.budget_key) {
            limits = limits.with_shared(Arc::clone(shared), key);
        }
        Self {
            name: spec.name.clone(),
            breaker: Breaker::new(
                config.breaker.failure_threshold,
                config.breaker.cooldown,
                tokio::time::Instant::now(),
            ),
            limits,
            capabilities: Capabilities::new(spec.methods.clone(), config.proxy.unsupported_ttl),
            latency: LatencyHistory::default(),
            wrong: WrongGuard::default(),
            spec: spec.clone(),
            client,
            children: OnceLock::new(),
        }
    }

    /// Its children of the per-attempt metric families in `metrics` (resolved once: one
    /// upstream is only ever recorded in one registry).
    pub fn children(&self, metrics: &Metrics) -> &UpstreamChildren {
        self.children
            .get_or_init(|| metrics.upstream_children(&self.name))
    }

    /// Builds every upstream of a configuration, in rank order, on one shared client (an
    /// upstream with its own `ca_file` gets a client of its own).
    pub fn all(config: &ValidConfig, shared: Option<&Arc<Shared>>) -> Vec<Arc<Upstream>> {
        Self::rebuild(config, &[], shared)
    }

    /// As [`Upstream::all`], reusing each of `current` whose configuration is unchanged
    /// (so its connections, breaker and health history carry over a reload).
    pub fn rebuild(
        config: &ValidConfig,
        current: &[Arc<Upstream>],
        store: Option<&Arc<Shared>>,
    ) -> Vec<Arc<Upstream>> {
        let shared = current
            .iter()
            .find(|u| u.spec.ca_roots.is_none())
            .map_or_else(
                || nodewatch_http::client::build(&ClientOptions::default()),
                |u| u.client.clone(),
            );
        config
            .upstream_specs
            .iter()
            .map(|spec| {
                if let Some(kept) = current.iter().find(|u| u.spec.source == spec.source) {
                    kept.breaker
                        .configure(config.breaker.failure_threshold, config.breaker.cooldown);
                    kept.limits.pace.configure(config.rate_limit);
                    return Arc::clone(kept);
                }
                let client = match &spec.ca_roots {
                    None => shared.clone(),
                    Some(roots) => nodewatch_http::client::build(&ClientOptions {
                        extra_roots: roots.to_vec(),
                        ..ClientOptions::default()
                    }),
                };
                Arc::new(Upstream::new(spec, client, config, store))
            })
            .collect()
    }

    /// The endpoint (secret: never printed).
    pub fn endpoint(&self) -> &Endpoint {
        &self.spec.endpoint
    }

    /// POSTs a JSON body and returns the answer body. Fails on connect errors, on a status
    /// other than 200, on an answer larger than `limit`, and when the whole exchange takes
    /// longer than `timeout`. Charged to its pace without waiting (probes); not sent while
    /// the upstream asked for a pause (`Busy`).
    pub async fn send(
        &self,
        body: Bytes,
        timeout: Duration,
        limit: usize,
    ) -> Result<Bytes, UpstreamError> {
        let probe = self.limits.units(["eth_blockNumber"]);
        if !self.limits.charge_probe(probe) {
            let kind = UpstreamErrorKind::Busy(Duration::ZERO);
            return Err(UpstreamError::new(self.name.clone(), kind));
        }
        nodewatch_http::post_detailed(&self.client, &self.spec.endpoint, body, timeout, limit)
            .await
            .map_err(|f| UpstreamError::new(self.name.clone(), self.refused(f, None)))
    }

    /// A failed exchange's kind; a 429 tells the pace, with its `Retry-After` (and the
    /// request's ticket, when it has one).
    fn refused(&self, failure: SendFailure, ticket: Option<Ticket>) -> UpstreamErrorKind {
        let kind = send_error_kind(failure.error);
        if pace::is_rate_limited(&kind) {
            let now = tokio::time::Instant::now();
            let pace = &self.limits.pace;
            pace.limited_ticket(failure.retry_after, now, ticket);
        }
        kind
    }

    /// As [`Upstream::send`], with the answer's buffer reserved in `budget` (given back when
    /// the last slice of the answer is dropped), and how long it waited for the budget.
    /// Waiting for the budget does not count against `timeout`; it may last `wait` in all. A call that may be sent twice
    /// (`may_give_way`) is sent again when its chunked answer had to give its bytes back.
    /// `ticket`: its place among the calls sent, for the pace if it is refused.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_within(
        &self,
        body: Bytes,
        timeout: Duration,
        limit: usize,
        budget: &AnswerBudget,
        may_give_way: bool,
        wait: Duration,
        ticket: Option<Ticket>,
    ) -> Result<(Bytes, Duration), UpstreamError> {
        let sleep = tokio::time::sleep(timeout);
        tokio::pin!(sleep);
        let mut clock = answer::Clock::new(sleep, timeout, wait);
        let mut reservation = budget.reservation(may_give_way);
        loop {
            let read = async {
                let post = nodewatch_http::post_head_detailed(
                    &self.client,
                    &self.spec.endpoint,
                    body.clone(),
                    limit,
                );
                let head = clock.within(post).await.map_err(Read)?;
                let head = head.map_err(|f| Refused(self.refused(f, ticket)))?;
                answer::read(head, limit, &mut reservation, &mut clock)
                    .await
                    .map_err(Read)
            };
            let kind = match read.await {
                Ok(bytes) => return Ok((reservation.attach(bytes), clock.waited)),
                Err(Refused(kind)) => kind,
                Err(Read(answer::ReadError::Budget(Shortfall::GaveWay { retry_with }))) => {
                    // Sent again once the bytes it now knows it needs are reserved.
                    match clock.hold(&mut reservation, retry_with).await {
                        Ok(()) => {
                            clock.restart();
                            continue;
                        }
                        Err(answer::ReadError::Budget(s)) => {
                            UpstreamErrorKind::AnswerBudget(s.to_string())
                        }
                        Err(_) => budget_wait(wait),
                    }
                }
                Err(Read(answer::ReadError::Budget(s))) => {
                    UpstreamErrorKind::AnswerBudget(s.to_string())
                }
                Err(Read(answer::ReadError::BudgetWait)) => budget_wait(wait),
                Err(Read(answer::ReadError::Send(e))) => send_error_kind(e),
            };
            return Err(UpstreamError::new(self.name.clone(), kind));
        }
    }
}

/// Why [`Upstream::send_within`] read no answer.
enum Failed {
    /// The upstream refused the exchange (the pace was told when it asked to slow down).
    Refused(UpstreamErrorKind),
    /// Reading the answer failed.
    Read(answer::ReadError),
}
use Failed::{Read, Refused};

/// The error for a call that found no room in the answer budget in time.
fn budget_wait(wait: Duration) -> UpstreamErrorKind {
    UpstreamErrorKind::AnswerBudget(format!(
        "no room in the in-flight answer budget (proxy.max_inflight_bytes) within {wait:?}"
    ))
}

/// An exchange's error as an attempt's.
fn send_error_kind(e: SendError) -> UpstreamErrorKind {
    match e {
        SendError::Connect(why) => UpstreamErrorKind::Connect(why),
        SendError::Timeout(t) => UpstreamErrorKind::Timeout(t),
        SendError::Status { status, .. } => UpstreamErrorKind::Status(status),
        SendError::TooLarge(n) => UpstreamErrorKind::TooLarge(n),
        SendError::Body(why) => UpstreamErrorKind::BodyBroken(why),
    }
}

/// The state of every upstream at one moment, published by the monitor and read lock-free
/// by the request path and the admin endpoints.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The upstreams themselves, aligned with `upstreams` (index = rank - 1).
    #[serde(skip)]
    pub handles: Vec<Arc<Upstream>>,
    /// Highest head among healthy upstreams on the expected chain.
    pub best_head: Option<u64>,
    /// The chain id the proxy serves, once known.
    pub chain_id: Option<u64>,
    /// The answer cache's final line: answers about blocks at or below it are kept
    /// ([`crate::cache`]); `None` until the first finality round.
    pub final_line: Option<u64>,
    /// One entry per upstream, in rank order (index = rank - 1).
    pub upstreams: Vec<UpstreamState>,
    /// The fork guard has not judged a round yet (not ready until it has).
    pub fork_pending: bool,
}

/// One upstream's published state.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamState {
    /// Display name.
    pub name: String,
    /// Rank (1 = primary).
    pub rank: usize,
    /// Health status.
    pub status: Status,
    /// Last reported head.
    pub head: Option<u64>,
    /// Blocks behind the best head.
    pub lag: Option<u64>,
    /// Whether it lags by more than the allowed `max_lag`.
    pub lagging: bool,
    /// Latency EWMA in milliseconds.
    pub latency_ms: Option<f64>,
    /// Chain id the node reports.
    pub chain_id: Option<u64>,
    /// Whether that chain id differs from the proxy's: such an upstream is never used.
    pub wrong_chain: bool,
    /// Whether its blocks differ from the majority's (a minority fork): never used.
    pub forked: bool,
    /// Where it disagreed: the block number and its hash there, while forked.
    pub fork_block: Option<(u64, String)>,
    /// Whether it says it is syncing (`eth_syncing`): not in sync, whatever its head.
    pub syncing: bool,
    /// Its answers that failed verification since start.
    pub wrong_answers: u64,
    /// The last wrong answer's evidence (block, check, what differed) and its age in seconds.
    pub last_wrong: Option<(String, f64)>,
    /// Quarantined for answering wrong data repeatedly: used only as a last resort.
    pub quarantined: bool,
    /// Methods it answered "not available" for lately (sent to other upstreams first).
    pub unsupported_methods: Vec<String>,
    /// Last failure (redacted: names and error kinds only).
    pub last_error: Option<String>,
    /// Seconds since the last failure was seen (it stays shown after a recovery).
    pub last_error_age_secs: Option<f64>,
    /// Circuit breaker state when published.
    pub breaker: BreakerState,
    /// Calls per second it is paced at: learned from its limit answers (429, -32005), under
    /// `max_rps`; `None` while unpaced.
    pub learned_rps: Option<f64>,
    /// Its limit answers since start.
    pub rate_limited: u64,
    /// Seconds since its last limit answer.
    pub rate_limited_age_secs: Option<f64>,
    /// What its pace and budgets count: `calls`, or `compute units` (`credits`).
    pub rate_unit: &'static str,
    /// Compute units spent this month (the fleet's, when shared), with `credits.per_month`.
    pub month_credits: Option<u64>,
    /// `credits.per_month`.
    pub month_budget: Option<u64>,
    /// Its `budget_key`, when its budget is shared through `[redis]`.
    pub budget_key: Option<String>,
    /// With a `budget_key`: whether Redis decides its budget now (false: local fallback).
    pub budget_shared: Option<bool>,
    /// Seconds since the status last changed.
    pub status_age_secs: f64,
    /// When the status last changed, as Unix seconds.
    pub since_unix: Option<u64>,
}

impl UpstreamState {
    /// An upstream not yet probed.
    pub fn unknown(name: &str, rank: usize) -> Self {
        Self {
            name: name.to_string(),
            rank,
            status: Status::Unknown,
            head: None,
            lag: None,
            lagging: false,
            latency_ms: None,
            chain_id: None,
            wrong_chain: false,
            forked: false,
            fork_block: None,
            syncing: false,
            wrong_answers: 0,
            last_wrong: None,
            quarantined: false,
            unsupported_methods: Vec::new(),
            last_error: None,
            last_error_age_secs: None,
            breaker: BreakerState::Closed,
            learned_rps: None,
            rate_limited: 0,
            rate_limited_age_secs: None,
            rate_unit: "calls",
            month_credits: None,
            month_budget: None,
            budget_key: None,
            budget_shared: None,
            status_age_secs: 0.0,
            since_unix: None,
        }
    }
}

impl UpstreamState {
    /// Healthy, in sync, on the chain, not forked and not quarantined: what readiness asks
    /// of one upstream.
    pub fn is_serving(&self) -> bool {
        self.status == Status::Healthy
            && !self.quarantined
            && !self.lagging
            && !self.syncing
            && !self.wrong_chain
            && !self.forked
    }
}

impl Snapshot {
    /// The state before the first probe: every upstream unknown.
    pub fn initial(upstreams: &[Arc<Upstream>]) -> Self {
        Self {
            handles: upstreams.to_vec(),
            best_head: None,
            chain_id: None,
            final_line: None,
            fork_pending: false,
            upstreams: upstreams
                .iter()
                .enumerate()
                .map(|(i, u)| UpstreamState::unknown(&u.name, i + 1))
                .collect(),
        }
    }

    /// Whether any upstream is healthy, in sync and on the majority's chain, and the fork
    /// guard has had its first say (readiness).
    pub fn is_ready(&self) -> bool {
        !self.fork_pending && self.upstreams.iter().any(UpstreamState::is_serving)
    }
}

/// The shared, atomically replaced snapshot.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;
