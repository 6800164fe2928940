//! The pace of one upstream: how many calls a second it is sent, learned from its answers.
//!
//! A provider that answers "slow down" (HTTP 429, JSON-RPC -32005, "rate limit", "exceeded
//! its compute units per second capacity") is asking for back-pressure, not failing. Its pace
//! is learned AIMD-fashion, as TCP learns a path's capacity: a limit answer multiplies the
//! rate by `rate_limit.decrease` (once per episode: the answers to calls already in flight
//! are the same news) — the rate, or what the provider was taking over the last seconds
//! ([`RECENT`]) if that is less: a rate grown past the limit while the provider's bucket still
//! had calls to give is not where the limit is — and pauses the upstream for its `Retry-After`; each second in which
//! calls waited for the rate and no limit answer came adds `rate_limit.increase`. Below the
//! rate of the last decrease (where the limit was) the step stays that small, so the limit
//! is approached slowly and met rarely; past it the step doubles with each such second in a
//! row (at most a quarter of the rate), so a sidecar whose neighbour on the key finished
//! takes the freed share in seconds, not minutes. Every sidecar adds the same steps, so
//! their shares of a key converge, as AIMD's do. The first
//! limit answer of an upstream that had no rate starts it from what the upstream took since
//! the traffic began: a provider's bucket was full then (taken to hold one second's calls,
//! [`BURST`]) and is empty now, so `rate = taken / (busy time + 1 s)`. What it took is known
//! best from the refused request's [`Ticket`]: the calls sent before it (a provider serves in
//! arrival order; large batches still in flight were taken); without one, the calls answered
//! so far. `max_rps` is a hard ceiling over all of it.
//!
//! Calls are billed as providers bill them: a batch item is one call. Admission reserves a
//! request's calls on a schedule (GCRA: the time up to which the rate is spent), so waiting
//! requests are served in arrival order and a burst of one second's calls goes at once after
//! an idle spell (not after a limit answer's pause: what the provider's bucket gathered
//! meanwhile may be other clients' of the same key). Probes are charged without waiting: they keep health current while an
//! export keeps the upstream busy.
//!
//! Lock-held sections are a few arithmetic operations; time is passed in as
//! `tokio::time::Instant`, so the whole of it runs under paused time in tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::RateLimitConfig;
use crate::error::{is_node_trouble, UpstreamErrorKind};
use crate::sync::lock;

/// The burst the schedule allows after an idle spell, as time at the rate: one second's
/// calls, as a provider's per-second bucket holds them.
pub const BURST: Duration = Duration::from_secs(1);
/// How often the learned rate may grow.
pub const INCREASE_EVERY: Duration = Duration::from_secs(1);
/// Limit answers within this long of a decrease are one episode: one decrease.
pub const EPISODE: Duration = Duration::from_secs(1);
/// The largest additive step, as a share of the rate.
pub const MAX_STEP: f64 = 0.25;
/// The window over which the rate the provider takes is measured (two of them are kept).
pub const RECENT: Duration = Duration::from_secs(2);
/// The fewest calls a first estimate of a rate is made from: fewer say more about timing
/// than about the provider (a sidecar whose neighbour on the key emptied the bucket sees its
/// first calls refused; one call answered in a second is not a rate of one a second). With
/// less, the upstream is paused for its `Retry-After` and the next limit answer estimates.
pub const MIN_EVIDENCE: u64 = 10;
/// The shortest pause after a limit answer (a `Retry-After: 0` must not make a busy loop).
pub const MIN_PAUSE: Duration = Duration::from_millis(100);

/// JSON-RPC error codes that say "slow down" whatever the message: HTTP's 429 as a JSON-RPC
/// code (Alchemy).
const LIMIT_CODES: &[i64] = &[429];
/// EIP-1474's "limit exceeded": a rate limit, unless the message says the request itself is
/// too large (Infura's "query returned more than 10000 results" is -32005 too).
const LIMIT_EXCEEDED: i64 = -32005;
/// Messages of a -32005 that are about the request's size, not the rate.
const SIZE_MESSAGES: &[&str] = &[
    "more than",
    "result",
    "range",
    "size",
    "too large",
    "too big",
];
/// Messages that say "slow down", whatever the code.
const LIMIT_MESSAGES: &[&str] = &[
    "rate limit",
    "rate-limit",
    "ratelimit",
    "rate exceeded",
    "too many requests",
    "compute units per second",
    "request limit reached",
    "throttled",
];

/// Whether a JSON-RPC error asks the client to slow down. Only an error a node gives for
/// itself can (a revert whose reason says "rate limit" is the contract's answer).
pub fn is_limit_answer(code: i64, message: &str) -> bool {
    if LIMIT_CODES.contains(&code) {
        return true;
    }
    if !is_node_trouble(code, message) {
        return false;
    }
    let message = message.to_ascii_lowercase();
    if LIMIT_MESSAGES.iter().any(|m| message.contains(m)) {
        return true;
    }
    if message.contains("exceeded") && message.contains("capacity") {
        return true;
    }
    code == LIMIT_EXCEEDED && !SIZE_MESSAGES.iter().any(|m| message.contains(m))
}

/// Whether a failed attempt is the upstream asking to slow down (HTTP 429, or a limit
/// answer): back-pressure, never a breaker or health failure.
pub fn is_rate_limited(kind: &UpstreamErrorKind) -> bool {
    match kind {
        UpstreamErrorKind::Status(429) => true,
        UpstreamErrorKind::NodeError { code, message } => is_limit_answer(*code, message),
        _ => false,
    }
}

/// One upstream's pace.
#[derive(Debug)]
pub struct Pace {
    /// The schedule and what was learned.
    state: Mutex<State>,
    /// Limit answers seen since start.
    limited: AtomicU64,
}

/// What a status page shows of a pace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaceView {
    /// The rate calls are paced at (learned, under the ceiling); `None`: not paced.
    pub rate: Option<f64>,
    /// The rate learned from limit answers, if any came.
    pub learned: Option<f64>,
    /// Limit answers since start.
    pub limited: u64,
    /// How long ago the last one came.
    pub last_limited: Option<Duration>,
}

#[derive(Debug)]
struct State {
    /// How the rate is learned (reloadable).
    tuning: RateLimitConfig,
    /// `max_rps`: never faster, learned or not.
    ceiling: Option<f64>,
    /// The rate learned from limit answers, calls/s.
    learned: Option<f64>,
    /// The schedule: the rate is spent up to here (GCRA's theoretical arrival time).
    spent_until: Instant,
    /// No call goes before this (a `Retry-After`).
    paused_until: Instant,
    /// The last decrease (an episode's start).
    decreased_at: Option<Instant>,
    /// The last limit answer.
    limited_at: Option<Instant>,
    /// The last time the rate grew (or was considered for it).
    increased_at: Instant,
    /// A call waited for the rate since `increased_at`: the rate is what holds calls back.
    demand: bool,
    /// The next additive step past `limit_at`, calls/s: doubles with each clean second.
    step: f64,
    /// The rate at the last decrease: where the limit was.
    limit_at: Option<f64>,
    /// When calls began to be answered after an idle spell (of more than [`BURST`]).
    busy_since: Option<Instant>,
    /// Calls answered since `busy_since`.
    busy_calls: u64,
    /// The last answered call.
    delivered_at: Option<Instant>,
    /// The calls answered in the current window of [`RECENT`] and when it began ...
    recent: Option<(Instant, u64)>,
    /// ... and the length and calls of the window before it.
    previous: Option<(Duration, u64)>,
    /// When calls began to be sent after an idle spell (of more than [`BURST`]).
    sent_since: Option<Instant>,
    /// Calls sent since `sent_since`.
    sent_calls: u64,
    /// When the last request was (scheduled to be) sent.
    sent_last: Option<Instant>,
}

/// Where a request stood among the calls sent: if it is refused, what was sent before it
/// was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// Calls sent before it since the traffic began.
    before: u64,
    /// When it was sent.
    at: Instant,
}

impl Pace {
    /// A pace under `max_rps` (calls/s), learning as `tuning` says.
    pub fn new(max_rps: Option<u32>, tuning: RateLimitConfig, now: Instant) -> Self {
        Self {
            state: Mutex::new(State {
                tuning,
                ceiling: max_rps.map(f64::from),
                learned: None,
                spent_until: now,
                paused_until: now,
                decreased_at: None,
                limited_at: None,
                increased_at: now,
                demand: false,
                step: tuning.increase,
                limit_at: None,
                busy_since: None,
                busy_calls: 0,
                delivered_at: None,
                recent: None,
                previous: None,
                sent_since: None,
                sent_calls: 0,
                sent_last: None,
            }),
            limited: AtomicU64::new(0),
        }
    }

    /// Takes a reloaded `[rate_limit]`; what was learned is kept.
    pub fn configure(&self, tuning: RateLimitConfig) {
        lock(&self.state).tuning = tuning;
    }

    /// Reserves `calls` calls: when they may go, if that is no later than `until`; else
    /// `Err` with when they could have gone (nothing is reserved then).
    pub fn reserve(&self, calls: u32, now: Instant, until: Instant) -> Result<Instant, Instant> {
        let mut s = lock(&self.state);
        let open = now.max(s.paused_until);
        let Some(rate) = s.rate() else {
            return if open <= until { Ok(open) } else { Err(open) };
        };
        let cost = Duration::from_secs_f64(f64::from(calls.max(1)) / rate);
        // GCRA with a tolerance of one second's calls, or of the request's own cost when it
        // is larger (a batch bigger than a second's calls waits for a free schedule, then goes).
        let tolerance = BURST.max(cost);
        let start = (s.spent_until + cost)
            .checked_sub(tolerance)
            .map_or(open, |t| t.max(open));
        if start > until {
            return Err(start);
        }
        s.spent_until = s.spent_until.max(start) + cost;
        // Demand for more rate only when the rate held the call back, not a `Retry-After`:
        // a rate above the limit, held there by pauses, must not grow.
        if start > open {
            s.demand = true;
        }
        Ok(start)
    }

    /// Charges `calls` calls that go now without waiting (probes); false while the upstream
    /// asked for a pause, when they should not go at all.
    pub fn charge(&self, calls: u32, now: Instant) -> bool {
        let mut s = lock(&self.state);
        if s.paused_until > now {
            return false;
        }
        if let Some(rate) = s.rate() {
            let cost = Duration::from_secs_f64(f64::from(calls) / rate);
            s.spent_until = s.spent_until.max(now) + cost;
        }
        true
    }

    /// `calls` calls were answered (not refused): counted for the first estimate of a rate,
    /// and a clean second with waiting calls grows the rate.
    pub fn delivered(&self, calls: u64, now: Instant) {
        let mut s = lock(&self.state);
        if s.delivered_at.is_none_or(|at| now > at + BURST) {
            s.busy_since = Some(now);
            s.busy_calls = 0;
            s.recent = None;
            s.previous = None;
        }
        s.delivered_at = Some(now);
        s.busy_calls += calls;
        s.recent = match s.recent {
            Some((since, n)) if now < since + RECENT => Some((since, n + calls)),
            Some((since, n)) => {
                s.previous = Some((now.saturating_duration_since(since), n));
                Some((now, calls))
            }
            None => Some((now, calls)),
        };
        s.maybe_increase(now);
    }

    /// Records a request of `calls` calls sent at `at`: its [`Ticket`].
    pub fn ticket(&self, calls: u32, at: Instant) -> Ticket {
        let mut s = lock(&self.state);
        if s.sent_last.is_none_or(|last| at > last + BURST) {
            s.sent_since = Some(at);
            s.sent_calls = 0;
        }
        let ticket = Ticket {
            before: s.sent_calls,
            at,
        };
        s.sent_calls += u64::from(calls);
        s.sent_last = Some(s.sent_last.map_or(at, |last| last.max(at)));
        ticket
    }

    /// A limit answer came, with the wait it asked for: pause, and (once per episode)
    /// lower the rate.
    pub fn limited(&self, retry_after: Option<Duration>, now: Instant) {
        self.limited_ticket(retry_after, now, None);
    }

    /// As [`Pace::limited`], for the request of `ticket` (a better first estimate).
    pub fn limited_ticket(
        &self,
        retry_after: Option<Duration>,
        now: Instant,
        ticket: Option<Ticket>,
    ) {
        self.limited.fetch_add(1, Ordering::Relaxed);
        let mut s = lock(&self.state);
        s.limited_at = Some(now);
        let tuning = s.tuning;
        let pause = retry_after
            .unwrap_or(tuning.backoff)
            .clamp(MIN_PAUSE, tuning.max_backoff.max(MIN_PAUSE));
        s.paused_until = s.paused_until.max(now + pause);
        // No burst when the pause ends: what the provider's bucket gathered meanwhile is
        // not this sidecar's alone (others on the key kept sending).
        s.spent_until = s.spent_until.max(s.paused_until + BURST);
        if s.decreased_at.is_some_and(|at| now < at + EPISODE) {
            return;
        }
        let from = match s.learned {
            // What the provider was taking when it refused, if less: the rate may have grown
            // past the limit while its bucket still had calls to give.
            Some(rate) => Some(s.recent_rate(now).map_or(rate, |taken| rate.min(taken))),
            // The first limit answer: start from what the upstream took in the last second
            // (nothing taken: from the ceiling, or no estimate yet and the pause alone).
            None => Some(s.first_estimate(now).max(s.ticket_estimate(ticket)))
                .filter(|d| *d > 0.0)
                .or(s.ceiling),
        };
        if let Some(from) = from {
            let mut rate = (from.min(s.ceiling.unwrap_or(f64::INFINITY)) * tuning.decrease)
                .max(tuning.min_rps);
            if let Some(ceiling) = s.ceiling {
                rate = rate.min(ceiling);
            }
            s.learned = Some(rate);
            s.limit_at = Some(from);
            s.decreased_at = Some(now);
            s.increased_at = now;
            s.demand = false;
            s.step = tuning.increase;
        }
    }

    /// The most calls one request to this upstream should hold while it is paced: one
    /// second's, what a provider's bucket holds (a larger batch would never fit it).
    pub fn largest_batch(&self) -> Option<usize> {
        let rate = lock(&self.state).rate()?;
        Some((rate * BURST.as_secs_f64()).floor().max(1.0) as usize)
    }

    /// Whether calls wait for this upstream now: it asked for a pause, or its rate is spent
    /// beyond the burst.
    pub fn pressed(&self, now: Instant) -> bool {
        let s = lock(&self.state);
        s.paused_until > now || (s.rate().is_some() && s.spent_until > now + BURST)
    }

    /// What the status shows.
    pub fn view(&self, now: Instant) -> PaceView {
        let s = lock(&self.state);
        PaceView {
            rate: s.rate(),
            learned: s.learned,
            limited: self.limited.load(Ordering::Relaxed),
            last_limited: s.limited_at.map(|at| now.saturating_duration_since(at)),
        }
    }
}

impl State {
    /// The rate calls are paced at: the learned one under the ceiling.
    fn rate(&self) -> Option<f64> {
        match (self.learned, self.ceiling) {
            (Some(learned), Some(ceiling)) => Some(learned.min(ceiling)),
            (learned, ceiling) => learned.or(ceiling),
        }
    }

    /// The rate an upstream that just refused for the first time took: its calls answered
    /// since the traffic began, less the full bucket it held then (one second's calls), over
    /// the time since: `answered / (busy + 1 s)`.
    fn first_estimate(&self, now: Instant) -> f64 {
        if self.busy_calls < MIN_EVIDENCE {
            return 0.0;
        }
        let busy = self
            .busy_since
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since));
        self.busy_calls as f64 / (busy + BURST).as_secs_f64()
    }

    /// The calls answered a second over the last two windows of [`RECENT`] (`None` with
    /// fewer than [`MIN_EVIDENCE`] calls or less than a second to go by).
    fn recent_rate(&self, now: Instant) -> Option<f64> {
        let (since, calls) = self.recent?;
        let (before, earlier) = self.previous.unwrap_or_default();
        let span = before + now.saturating_duration_since(since);
        let calls = calls + earlier;
        (calls >= MIN_EVIDENCE && span >= BURST).then(|| calls as f64 / span.as_secs_f64())
    }

    /// The rate the provider took up to the refused request: the calls sent before it over
    /// the time from the first of them to it, plus the one second its bucket held (0: no
    /// ticket, or fewer than [`MIN_EVIDENCE`] calls before it).
    fn ticket_estimate(&self, ticket: Option<Ticket>) -> f64 {
        match (ticket, self.sent_since) {
            (Some(t), Some(since)) if t.before >= MIN_EVIDENCE && t.at >= since => {
                t.before as f64 / (t.at.saturating_duration_since(since) + BURST).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// Additive increase: each [`INCREASE_EVERY`] in which calls waited for the rate and no
    /// limit answer came.
    fn maybe_increase(&mut self, now: Instant) {
        if now < self.increased_at + INCREASE_EVERY {
            return;
        }
        let clean = self.limited_at.is_none_or(|at| at < self.increased_at);
        match (self.learned, clean, self.demand) {
            (Some(rate), true, true) if self.limit_at.is_some_and(|at| rate < at) => {
                let grown = rate + self.tuning.increase;
                self.learned = Some(self.ceiling.map_or(grown, |c| grown.min(c)));
            }
            (Some(rate), true, true) => {
                let grown = rate + self.step.min(rate * MAX_STEP).max(self.tuning.increase);
                self.learned = Some(self.ceiling.map_or(grown, |c| grown.min(c)));
                self.step *= 2.0;
            }
            _ => self.step = self.tuning.increase,
        }
        self.increased_at = now;
        self.demand = false;
    }
}

#[cfg(test)]
mod tests;
