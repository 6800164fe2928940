//! Unit tests of the pace: which answers say "slow down", the schedule, and the AIMD rule.

use super::*;
use crate::config::DEFAULT_RATE_BACKOFF;
use crate::config::{DEFAULT_RATE_DECREASE, DEFAULT_RATE_INCREASE, DEFAULT_RATE_MIN_RPS};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn pace(max_rps: Option<u32>) -> (Pace, Instant) {
    let t0 = Instant::now();
    (Pace::new(max_rps, RateLimitConfig::default(), t0), t0)
}

/// When `calls` may go if asked at `now`, waiting as long as it takes.
fn start(p: &Pace, calls: u32, now: Instant) -> Duration {
    let at = p.reserve(calls, now, now + Duration::from_secs(3600)).unwrap();
    at - now
}

#[test]
fn limit_answers_are_told_from_other_errors() {
    let capacity = "Your app has exceeded its compute units per second capacity";
    assert!(is_limit_answer(-32005, capacity));
    assert!(is_limit_answer(429, "Too Many Requests"));
    assert!(is_limit_answer(-32000, "rate limit exceeded"));
    assert!(is_limit_answer(-32005, "project ID request rate exceeded"));
    assert!(is_limit_answer(-32603, "request was throttled"));
    assert!(!is_limit_answer(
        -32005,
        "query returned more than 10000 results"
    ));
    assert!(!is_limit_answer(-32000, "header not found"));
    assert!(!is_limit_answer(3, "execution reverted"));
    assert!(is_rate_limited(&UpstreamErrorKind::Status(429)));
    assert!(!is_rate_limited(&UpstreamErrorKind::Status(503)));
    assert!(is_rate_limited(&UpstreamErrorKind::NodeError {
        code: -32005,
        message: capacity.into(),
    }));
    assert!(!is_rate_limited(&UpstreamErrorKind::Busy(ms(100))));
}

#[test]
fn unpaced_until_the_first_limit_answer() {
    let (p, t0) = pace(None);
    for i in 0..1000 {
        assert_eq!(start(&p, 100, t0 + ms(i)), Duration::ZERO);
    }
    assert_eq!(p.view(t0).rate, None);
    assert!(!p.pressed(t0));
}

#[test]
fn the_first_limit_answer_starts_from_what_was_taken_and_honours_retry_after() {
    let (p, t0) = pace(None);
    p.delivered(100, t0 + ms(10));
    p.delivered(20, t0 + ms(60));
    let now = t0 + ms(80);
    p.limited(Some(Duration::from_secs(1)), now);
    let view = p.view(now);
    assert_eq!(view.learned, Some(120.0 * DEFAULT_RATE_DECREASE));
    assert_eq!((view.limited, view.last_limited), (1, Some(Duration::ZERO)));
    // Nothing goes before the Retry-After; then one second's calls at once, then the rate.
    assert_eq!(start(&p, 100, now), Duration::from_secs(1));
    assert!(p.pressed(now));
    assert!(!p.charge(3, now), "no probe during the pause");
    let resume = now + Duration::from_secs(1);
    assert!(start(&p, 8, resume) < ms(1), "108 calls fit the burst");
    let third = start(&p, 108, resume);
    assert!(
        third > ms(900) && third < ms(1100),
        "{third:?}: 216 calls take two seconds at 108/s"
    );
}

#[test]
fn without_anything_taken_the_first_answer_only_pauses() {
    let (p, t0) = pace(None);
    p.limited(None, t0);
    assert_eq!(p.view(t0).learned, None);
    assert_eq!(start(&p, 1, t0), DEFAULT_RATE_BACKOFF);
    // Retry-After: 0 is not a busy loop.
    let later = t0 + Duration::from_secs(5);
    p.limited(Some(Duration::ZERO), later);
    assert_eq!(start(&p, 1, later), MIN_PAUSE);
}

#[test]
fn one_episode_one_decrease() {
    let (p, t0) = pace(Some(100));
    assert_eq!(p.view(t0).rate, Some(100.0), "max_rps paces from the start");
    p.limited(None, t0);
    p.limited(None, t0 + ms(300));
    p.limited(None, t0 + ms(900));
    assert_eq!(p.view(t0).learned, Some(90.0), "in-flight answers: one decrease");
    p.limited(None, t0 + ms(1000));
    let learned = p.view(t0).learned.unwrap();
    assert!((learned - 81.0).abs() < 1e-9, "{learned}");
    for i in 0..100 {
        p.limited(None, t0 + Duration::from_secs(2 + i));
    }
    assert_eq!(p.view(t0).learned, Some(DEFAULT_RATE_MIN_RPS), "the floor");
}

#[test]
fn the_rate_grows_by_steps_only_while_calls_wait_for_it() {
    let (p, t0) = pace(Some(200));
    p.delivered(100, t0);
    p.limited(Some(Duration::ZERO), t0);
    let base = p.view(t0).learned.unwrap();
    assert_eq!(base, 90.0);
    // Ten seconds of calls arriving faster than the rate: +increase a second.
    let mut now = t0;
    for _ in 0..10 {
        now += Duration::from_secs(1);
        for _ in 0..4 {
            let _ = p.reserve(50, now, now + Duration::from_secs(60));
        }
        p.delivered(50, now + ms(1));
    }
    let grown = p.view(now).learned.unwrap();
    let expected = base + 9.0 * DEFAULT_RATE_INCREASE;
    assert!((grown - expected).abs() < 1e-9, "{grown} != {expected}");
    // Idle seconds (answers, nobody waiting): no growth.
    for _ in 0..10 {
        now += Duration::from_secs(100);
        p.delivered(1, now);
    }
    assert_eq!(p.view(now).learned, Some(grown));
}

#[test]
fn the_ceiling_is_hard() {
    let (p, t0) = pace(Some(50));
    p.delivered(500, t0);
    p.limited(Some(ms(100)), t0);
    assert_eq!(p.view(t0).learned, Some(45.0), "from the ceiling, not 500/s");
    let mut now = t0;
    for _ in 0..20 {
        now += Duration::from_secs(1);
        let _ = p.reserve(500, now, now + Duration::from_secs(600));
        p.delivered(1, now);
    }
    assert_eq!(p.view(now).rate, Some(50.0));
}

#[test]
fn a_wait_beyond_the_bound_reserves_nothing() {
    let (p, t0) = pace(Some(10));
    assert!(p.reserve(10, t0, t0).is_ok(), "one second's calls at once");
    assert_eq!(p.reserve(10, t0, t0 + ms(100)), Err(t0 + Duration::from_secs(1)));
    assert_eq!(p.reserve(5, t0, t0 + ms(100)), Err(t0 + ms(500)));
    assert_eq!(start(&p, 5, t0), ms(500), "the refused calls took nothing");
    // A batch larger than a second's calls waits for a free schedule, then goes.
    let (p, t0) = pace(Some(10));
    assert!(start(&p, 30, t0).is_zero());
    assert_eq!(start(&p, 1, t0), ms(2100));
}

#[test]
fn probes_are_charged_without_waiting() {
    let (p, t0) = pace(Some(10));
    assert!(p.charge(10, t0));
    assert_eq!(start(&p, 10, t0), Duration::from_secs(1));
}
