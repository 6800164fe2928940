//! Budgets beyond one sidecar's pace: a month of compute units (`credits.per_month`) that,
//! once spent, sends calls elsewhere or answers an error naming it; one month shared exactly
//! by a fleet through a real Redis (`budget_key`); and a Redis that goes away, which each
//! sidecar survives on its local limiter, saying so, and comes back to.
//!
//! Scripted upstreams answer at once (the rules are under test, not a node); Redis is
//! Debian's `redis-server` on a loopback port (testkit's `redis`).

mod support;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use nodewatch::config::{Config, CostTable, CreditsConfig};
use support::nodewatch::{test_config, Nodewatch};
use support::redis::RedisServer;
use support::rpc;
use support::scripted::{self, Scripted};

/// A node that answers at once, every call but the probes' with `result`.
async fn node(result: &'static str) -> Scripted {
    scripted::constant_node(result, Arc::new(AtomicBool::new(false))).await
}

/// Credits billed one unit a call, `per_month` of them; probes (billed as `eth_blockNumber`)
/// cost nothing here, so the count is the test's calls alone.
fn month_of(per_month: u64) -> CreditsConfig {
    CreditsConfig {
        table: CostTable::Calls,
        per_month: Some(per_month),
        costs: [("eth_blockNumber".to_owned(), 0)].into(),
        ..CreditsConfig::default()
    }
}

/// `upstreams` named u1, u2, …, probed often so `/status` follows quickly.
fn config(upstreams: &[String]) -> Config {
    let mut config = test_config(upstreams);
    config.probe.interval = Duration::from_millis(200);
    config
}

/// One `eth_getBalance` call (not cached, not a probe's method): its result, or its error.
async fn call(url: &str) -> Result<String, serde_json::Value> {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x0000000000000000000000000000000000000001","latest"]}"#;
    let (status, text) = rpc::post(url, body).await;
    assert_eq!(status, 200, "{text}");
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    match answer["result"].as_str() {
        Some(result) => Ok(result.to_owned()),
        None => Err(answer["error"].clone()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_month_sends_calls_elsewhere_then_answers_an_error_naming_it() {
    let (paid, free) = (node("0x1").await, node("0x2").await);
    let mut two = config(&[paid.url(), free.url()]);
    two.upstreams[0].credits = Some(month_of(10));
    let nw = Nodewatch::start_with(two).await;
    nw.wait_all_healthy().await;
    let mut answers = Vec::new();
    for _ in 0..15 {
        answers.push(
            call(&nw.url)
                .await
                .expect("rank 2 takes what rank 1 cannot"),
        );
    }
    let by_paid = answers.iter().filter(|a| *a == "0x1").count();
    eprintln!("FIGURE credits: a month of 10 units, 15 calls: {by_paid} by the paid rank 1, the rest by rank 2");
    assert_eq!(by_paid, 10, "{answers:?}");
    assert_eq!(
        nw.metric("nodewatch_upstream_credits_total{upstream=\"u1\"}"),
        10.0
    );
    nw.wait_for("the month published", Duration::from_secs(5), |s| {
        s.upstreams[0].month_credits == Some(10)
    })
    .await;
    assert_eq!(
        nw.metric("nodewatch_upstream_month_credits{upstream=\"u1\"}"),
        10.0
    );
    assert_eq!(
        nw.metric("nodewatch_upstream_month_budget{upstream=\"u1\"}"),
        10.0
    );
    nw.stop().await;

    // Alone, a spent month is an error that names the budget, not a hang or a wrong answer.
    let mut alone = config(&[paid.url()]);
    alone.upstreams[0].credits = Some(month_of(3));
    let nw = Nodewatch::start_with(alone).await;
    nw.wait_all_healthy().await;
    for _ in 0..3 {
        assert_eq!(call(&nw.url).await.unwrap(), "0x1");
    }
    let error = call(&nw.url).await.unwrap_err();
    let message = error["message"].as_str().unwrap_or_default();
    eprintln!("FIGURE credits: the client's error once the month is spent: {error}");
    assert!(
        message.contains("monthly compute-unit budget") && message.contains("u1"),
        "{error}"
    );
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_spends_one_month_exactly_through_redis() {
    let Some(bin) = support::tools::require_redis() else {
        return;
    };
    let redis = RedisServer::start(&bin);
    let paid = node("0x1").await;
    let start = || async {
        let mut c = config(&[paid.url()]);
        c.redis.url = Some(redis.url());
        c.upstreams[0].credits = Some(month_of(20));
        c.upstreams[0].budget_key = Some("paid-key".into());
        let nw = Nodewatch::start_with(c).await;
        nw.wait_all_healthy().await;
        nw
    };
    let (a, b) = (start().await, start().await);
    let (mut answered, mut refused) = (0, 0);
    for _ in 0..15 {
        for nw in [&a, &b] {
            match call(&nw.url).await {
                Ok(_) => answered += 1,
                Err(e) => {
                    assert!(e.to_string().contains("budget"), "{e}");
                    refused += 1;
                }
            }
        }
    }
    eprintln!("FIGURE credits: two sidecars, one month of 20 units in Redis: {answered} of 30 calls answered, {refused} refused");
    assert_eq!((answered, refused), (20, 10));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_each_sidecar_falls_back_to_its_local_limiter_and_says_so() {
    let Some(bin) = support::tools::require_redis() else {
        return;
    };
    let mut redis = RedisServer::start(&bin);
    let paid = node("0x1").await;
    let mut c = config(&[paid.url()]);
    c.redis.url = Some(redis.url());
    c.redis.retry = Duration::from_millis(500);
    c.upstreams[0].max_rps = Some(50);
    c.upstreams[0].budget_key = Some("paid-key".into());
    let nw = Nodewatch::start_with(c).await;
    nw.wait_all_healthy().await;
    let fallbacks = || nw.metric("nodewatch_shared_budget_fallbacks_total{upstream=\"u1\"}");
    assert_eq!(call(&nw.url).await.unwrap(), "0x1");
    assert_eq!((nw.metric("nodewatch_redis_up"), fallbacks()), (1.0, 0.0));

    // Redis goes: every call is still answered, on the local limiter, and it says so.
    redis.stop();
    for _ in 0..5 {
        assert_eq!(call(&nw.url).await.unwrap(), "0x1");
    }
    assert_eq!(nw.metric("nodewatch_redis_up"), 0.0);
    assert!(fallbacks() >= 5.0, "{}", fallbacks());
    assert!(nw.metric("nodewatch_redis_errors_total") >= 1.0);
    nw.wait_for("the fallback published", Duration::from_secs(5), |s| {
        s.upstreams[0].budget_shared == Some(false)
    })
    .await;
    let (_, status) = rpc::get(&format!("{}/status", nw.admin)).await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    eprintln!("FIGURE redis down: /status says {}", status["redis"]);
    assert_eq!(status["redis"]["up"], false, "{status}");
    assert!(status["redis"]["last_error"].is_string(), "{status}");

    // Redis is back: the shared budget decides again once the retry spell is over.
    redis.restart();
    let back = support::poll::poll_until(Duration::from_secs(10), async || {
        let _ = call(&nw.url).await;
        (nw.metric("nodewatch_redis_up") == 1.0).then_some(())
    })
    .await;
    assert!(back.is_some(), "nodewatch never used Redis again");
    let before = fallbacks();
    assert_eq!(call(&nw.url).await.unwrap(), "0x1");
    assert_eq!(fallbacks(), before, "decided by Redis again");
    nw.stop().await;
}
