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
    let at = p
        .reserve(calls, now, now + Duration::from_secs(3600))
        .unwrap();
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
    assert!(!is_limit_answer(
        3,
        "execution reverted: rate limit exceeded"
    ));
    assert!(!is_limit_answer(
        -32000,
        "execution reverted: RateLimited()"
    ));
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
    // 120 answered in the 70 ms since the traffic began: a full bucket and the rate.
    let rate = 120.0 / 1.07 * DEFAULT_RATE_DECREASE;
    assert!((view.learned.unwrap() - rate).abs() < 1e-9, "{view:?}");
    assert_eq!((view.limited, view.last_limited), (1, Some(Duration::ZERO)));
    // Nothing goes before the Retry-After; then calls go at the rate, without a burst (what
    // the provider gathered meanwhile may be others' on the same key).
    let first = start(&p, 10, now);
    assert!(
        first > Duration::from_secs(1) && first < ms(1150),
        "{first:?}"
    );
    assert!(p.pressed(now));
    assert!(!p.charge(3, now), "no probe during the pause");
    let second = start(&p, 50, now);
    let gap = (second - first).as_secs_f64();
    assert!((gap - 50.0 / rate).abs() < 1e-3, "{first:?} {second:?}");
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
    assert_eq!(
        p.view(t0).learned,
        Some(90.0),
        "in-flight answers: one decrease"
    );
    p.limited(None, t0 + ms(1000));
    let learned = p.view(t0).learned.unwrap();
    assert!((learned - 81.0).abs() < 1e-9, "{learned}");
    for i in 0..100 {
        p.limited(None, t0 + Duration::from_secs(2 + i));
    }
    assert_eq!(p.view(t0).learned, Some(DEFAULT_RATE_MIN_RPS), "the floor");
}

/// Ten seconds of calls arriving faster than the rate, from `now`; the learned rate at
/// each second's end.
fn busy_seconds(p: &Pace, now: &mut Instant, seconds: usize) -> Vec<f64> {
    (0..seconds)
        .map(|_| {
            *now += Duration::from_secs(1);
            for _ in 0..4 {
                let _ = p.reserve(50, *now, *now + Duration::from_secs(600));
            }
            p.delivered(50, *now + ms(1));
            p.view(*now).learned.unwrap()
        })
        .collect()
}

#[test]
fn the_rate_grows_slowly_up_to_the_old_limit_and_faster_past_it_while_calls_wait() {
    let (p, t0) = pace(Some(400));
    p.delivered(100, t0);
    p.limited(Some(Duration::ZERO), t0);
    assert_eq!(p.view(t0).learned, Some(90.0), "the limit was at 100");
    let mut now = t0;
    let rates = busy_seconds(&p, &mut now, 12);
    // The first second holds the limit answer; then +2 a second up to 100, then steps of
    // 2, 4, 8, 16, 32, then a quarter of the rate.
    let expected = [
        90.0, 92.0, 94.0, 96.0, 98.0, 100.0, 102.0, 106.0, 114.0, 130.0, 162.0, 202.5,
    ];
    for (got, want) in rates.iter().zip(&expected) {
        assert!((got - want).abs() < 1e-9, "{rates:?}");
    }
    // Idle seconds (answers, nobody waiting): no growth.
    let grown = p.view(now).learned;
    for _ in 0..10 {
        now += Duration::from_secs(100);
        p.delivered(1, now);
    }
    assert_eq!(p.view(now).learned, grown);
    // A limit answer: back to small steps below the new limit.
    p.limited(Some(Duration::ZERO), now);
    let limit = grown.unwrap();
    assert_eq!(p.view(now).learned, Some(limit * DEFAULT_RATE_DECREASE));
    let rates = busy_seconds(&p, &mut now, 3);
    assert_eq!(rates[2] - rates[1], DEFAULT_RATE_INCREASE, "{rates:?}");
}

#[test]
fn the_ceiling_is_hard() {
    let (p, t0) = pace(Some(50));
    p.delivered(500, t0);
    p.limited(Some(ms(100)), t0);
    assert_eq!(
        p.view(t0).learned,
        Some(45.0),
        "from the ceiling, not 500/s"
    );
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
    assert_eq!(
        p.reserve(10, t0, t0 + ms(100)),
        Err(t0 + Duration::from_secs(1))
    );
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

#[tokio::test(start_paused = true)]
async fn a_refused_batch_behind_large_batches_in_flight_starts_from_what_was_sent_before_it() {
    // ethereum-etl's default: 100-call batches, 8 at once. The first was taken and is still
    // being answered when the second is refused: nothing answered yet.
    let (p, t0) = pace(None);
    let first = p.ticket(100, t0);
    let second = p.ticket(100, t0 + ms(10));
    assert_eq!(first.before, 0);
    p.limited_ticket(Some(Duration::from_secs(1)), t0 + ms(50), Some(second));
    let learned = p.view(t0 + ms(50)).learned.unwrap();
    let taken = 100.0 / 1.01;
    assert!(
        (learned - taken * DEFAULT_RATE_DECREASE).abs() < 0.5,
        "{learned}: 100 calls taken in 10 ms plus the one-second bucket"
    );
    // Without the ticket nothing was answered: no estimate, only the pause.
    let (q, t0) = pace(None);
    q.ticket(100, t0);
    q.limited(Some(Duration::from_secs(1)), t0 + ms(50));
    assert_eq!(q.view(t0 + ms(50)).learned, None);
    // The very first request refused (another client emptied the bucket): no estimate.
    let (r, t0) = pace(None);
    let only = r.ticket(100, t0);
    r.limited_ticket(None, t0 + ms(5), Some(only));
    assert_eq!(r.view(t0 + ms(5)).learned, None);
    // Nor from one call answered: a rate of 1 call/s would starve a 100-call batch.
    let (s, t0) = pace(None);
    s.delivered(1, t0);
    let second = s.ticket(1, t0);
    let third = s.ticket(100, t0 + ms(1));
    assert_eq!(second.before, 0);
    s.limited_ticket(None, t0 + ms(5), Some(third));
    assert_eq!(
        s.view(t0 + ms(5)).learned,
        None,
        "{} calls are no evidence",
        third.before
    );
}

#[tokio::test(start_paused = true)]
async fn a_limit_answer_starts_from_what_the_provider_was_taking_when_that_is_less() {
    let (p, t0) = pace(None);
    // A first estimate of 200 calls/s (180 learned), then 3 s in which the provider took
    // 120 calls a second (its bucket gave the rest) before it refused again.
    for i in 0..400 {
        p.ticket(1, t0 + Duration::from_micros(i * 2500));
    }
    let refused = p.ticket(1, t0 + ms(1000));
    p.limited_ticket(None, t0 + ms(1000), Some(refused));
    let first = p.view(t0 + ms(1000)).learned.unwrap();
    assert!(
        (first - 180.0).abs() < 1.0,
        "{first}: 400 calls in 1 s + the bucket's second"
    );
    for tenth in 0..30 {
        p.delivered(12, t0 + ms(2000 + tenth * 100));
    }
    p.limited(None, t0 + ms(5000));
    let learned = p.view(t0 + ms(5000)).learned.unwrap();
    let taken: f64 = 360.0 / 3.0;
    assert!(
        (learned - taken.min(first) * DEFAULT_RATE_DECREASE).abs() < 2.0,
        "{learned}: from {taken:.0} calls/s taken, not the {first:.0} learned"
    );
}
