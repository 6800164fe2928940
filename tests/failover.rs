//! End to end against real anvil nodes: the primary dies under load, comes back, lags, or
//! serves another chain; the client never sees an error.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::anvil::Anvil;
use support::chain::{build_chain, mine, ChainInfo};
use support::nodewatch::Nodewatch;
use support::poll::poll_every;
use support::rpc;

/// Requests in the load that runs while the primary is killed.
const LOAD_REQUESTS: usize = 600;
/// Concurrent clients in that load.
const LOAD_CLIENTS: usize = 16;

async fn two_nodes(anvil: &std::path::Path) -> (Anvil, Anvil, ChainInfo) {
    let a = Anvil::spawn(anvil).await;
    let b = Anvil::spawn(anvil).await;
    let chain = build_chain(&a.url()).await;
    let chain_b = build_chain(&b.url()).await;
    assert_eq!(
        chain.block_hashes, chain_b.block_hashes,
        "both nodes must hold the same chain"
    );
    (a, b, chain)
}

/// One load request: a single block or a batch of five, checked against the known hashes.
/// Returns an error description when the answer is not exactly right.
async fn checked_request(url: &str, i: usize, chain: &ChainInfo) -> Result<(), String> {
    let n = (i as u64 * 7) % (chain.head + 1);
    if i.is_multiple_of(2) {
        let body = json!({"jsonrpc":"2.0","id":i,"method":"eth_getBlockByNumber","params":[format!("{n:#x}"), true]});
        let (status, text) = rpc::try_post(url, &body.to_string()).await?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| format!("{status} {e}: {text:.200}"))?;
        if v["id"] != json!(i) || v["result"]["hash"] != json!(chain.block_hashes[n as usize]) {
            return Err(format!("wrong answer for block {n}: {text:.300}"));
        }
    } else {
        let batch: Vec<Value> = (0..5u64)
            .map(|k| {
                let m = (n + k) % (chain.head + 1);
                json!({"jsonrpc":"2.0","id":format!("b{i}-{k}"),"method":"eth_getBlockByNumber","params":[format!("{m:#x}"), false]})
            })
            .collect();
        let (status, text) = rpc::try_post(url, &Value::Array(batch).to_string()).await?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| format!("{status} {e}: {text:.200}"))?;
        let items = v
            .as_array()
            .ok_or_else(|| format!("not a batch answer: {text:.300}"))?;
        if items.len() != 5 {
            return Err(format!("short batch answer: {text:.300}"));
        }
        for (k, item) in items.iter().enumerate() {
            let m = (n + k as u64) % (chain.head + 1);
            if item["id"] != json!(format!("b{i}-{k}"))
                || item["result"]["hash"] != json!(chain.block_hashes[m as usize])
            {
                return Err(format!("wrong batch item {k}: {item}"));
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_primary_under_load_fails_no_request_and_traffic_returns() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let (mut a, b, chain) = two_nodes(&anvil).await;
    let nw = Nodewatch::start(&[a.url(), b.url()]).await;
    nw.wait_all_healthy().await;

    let done = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let chain = Arc::new(chain);
    let mut clients = Vec::new();
    for _ in 0..LOAD_CLIENTS {
        let (url, done, next, chain) = (nw.url.clone(), done.clone(), next.clone(), chain.clone());
        clients.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= LOAD_REQUESTS {
                    return failures;
                }
                if let Err(e) = checked_request(&url, i, &chain).await {
                    failures.push(e);
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let quarter = poll_every(
        Duration::from_millis(5),
        Duration::from_secs(60),
        async || (done.load(Ordering::SeqCst) >= LOAD_REQUESTS / 4).then_some(()),
    );
    assert!(
        quarter.await.is_some(),
        "a quarter of the load was not done in 60 s"
    );
    let killed_at = Instant::now();
    a.kill().await;
    let served_before_kill = done.load(Ordering::SeqCst);
    let mut failures = Vec::new();
    for client in clients {
        failures.extend(client.await.unwrap());
    }
    let load_secs = killed_at.elapsed().as_secs_f64();
    assert!(
        failures.is_empty(),
        "{} failed client requests: {:#?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let by_u2 = nw.metric(
        "nodewatch_requests_total{method=\"eth_getBlockByNumber\",outcome=\"ok\",upstream=\"u2\"}",
    );
    assert!(by_u2 > 0.0, "the backup served nothing");
    nw.wait_for("u1 down", Duration::from_secs(5), |s| {
        s.upstreams[0].status == nodewatch::upstream::health::Status::Unhealthy
    })
    .await;
    eprintln!(
        "FIGURE kill-under-load: {LOAD_REQUESTS} requests ({LOAD_CLIENTS} clients), primary killed after {served_before_kill}, \
         {} failed, {by_u2} items served by the backup, rest of the load took {load_secs:.2}s",
        failures.len()
    );

    // Bring the primary back: traffic returns to it after the recover threshold.
    let restarted_at = Instant::now();
    a.restart().await;
    let answering_after = restarted_at.elapsed();
    let before = nw.metric(
        "nodewatch_requests_total{method=\"eth_blockNumber\",outcome=\"ok\",upstream=\"u1\"}",
    );
    let back = poll_every(
        Duration::from_millis(10),
        Duration::from_secs(10),
        async || {
            let n = rpc::block_number(&nw.url).await;
            assert_eq!(n, chain.head);
            let now = nw.metric(
            "nodewatch_requests_total{method=\"eth_blockNumber\",outcome=\"ok\",upstream=\"u1\"}",
        );
            (now > before).then_some(())
        },
    );
    assert!(
        back.await.is_some(),
        "traffic did not return to the primary"
    );
    let back_after = restarted_at.elapsed();
    // It came back through the state machine: a second `up` transition, after recover_threshold probes.
    assert_eq!(
        nw.metric("nodewatch_upstream_transitions_total{to=\"up\",upstream=\"u1\"}"),
        2.0
    );
    eprintln!(
        "FIGURE primary-back: restarted node answered after {:.0} ms; traffic back on rank 1 after {:.0} ms",
        answering_after.as_secs_f64() * 1000.0,
        back_after.as_secs_f64() * 1000.0
    );
    nw.stop().await;
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_primary_gives_way_to_an_in_sync_backup() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let (a, b, chain) = two_nodes(&anvil).await;
    mine(&b.url(), 10).await;
    let nw = Nodewatch::start(&[a.url(), b.url()]).await;
    nw.wait_for("u1 lagging", Duration::from_secs(5), |s| {
        s.upstreams[0].lagging && s.best_head == Some(chain.head + 10)
    })
    .await;
    assert_eq!(
        rpc::block_number(&nw.url).await,
        chain.head + 10,
        "served by the in-sync backup"
    );
    let status: Value =
        serde_json::from_str(&rpc::get(&format!("{}/status", nw.admin)).await.1).unwrap();
    assert_eq!(status["serving"], "u2");
    assert_eq!(status["upstreams"][0]["lag"], 10);
    assert_eq!(status["upstreams"][0]["lagging"], true);
    assert_eq!(
        nw.metric("nodewatch_upstream_lag_blocks{upstream=\"u1\"}"),
        10.0
    );

    // It catches up: back to rank 1.
    mine(&a.url(), 10).await;
    nw.wait_for("u1 in sync", Duration::from_secs(5), |s| {
        !s.upstreams[0].lagging
    })
    .await;
    let status: Value =
        serde_json::from_str(&rpc::get(&format!("{}/status", nw.admin)).await.1).unwrap();
    assert_eq!(status["serving"], "u1");
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_on_another_chain_is_never_used() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let other = Anvil::builder(&anvil).chain_id(999).spawn().await;
    let a = Anvil::spawn(&anvil).await;
    let b = Anvil::spawn(&anvil).await;
    // Rank 1 is on chain 999; ranks 2 and 3 agree on 31337.
    let nw = Nodewatch::start(&[other.url(), a.url(), b.url()]).await;
    nw.wait_for("chain known", Duration::from_secs(5), |s| {
        s.upstreams.iter().all(|u| u.chain_id.is_some())
    })
    .await;
    nw.wait_for("wrong chain flagged", Duration::from_secs(5), |s| {
        s.upstreams[0].wrong_chain && s.chain_id == Some(31337)
    })
    .await;
    for _ in 0..20 {
        let id = rpc::call(&nw.url, "eth_chainId", json!([])).await;
        assert_eq!(id, json!("0x7a69"));
    }
    assert_eq!(
        nw.metric(
            "nodewatch_requests_total{method=\"eth_chainId\",outcome=\"ok\",upstream=\"u1\"}"
        ),
        0.0
    );
    assert_eq!(
        nw.metric("nodewatch_upstream_wrong_chain{upstream=\"u1\"}"),
        1.0
    );
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_upstreams() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let mut a = Anvil::spawn(&anvil).await;
    let nw = Nodewatch::start(&[a.url()]).await;
    nw.wait_all_healthy().await;
    assert_eq!(rpc::get(&format!("{}/readyz", nw.admin)).await.0, 200);
    assert_eq!(rpc::get(&format!("{}/healthz", nw.admin)).await.0, 200);
    a.kill().await;
    nw.wait_for("u1 down", Duration::from_secs(5), |s| !s.is_ready())
        .await;
    assert_eq!(rpc::get(&format!("{}/readyz", nw.admin)).await.0, 503);
    assert_eq!(
        rpc::get(&format!("{}/healthz", nw.admin)).await.0,
        200,
        "liveness is not readiness"
    );
    a.restart().await;
    nw.wait_for("u1 up", Duration::from_secs(5), |s| s.is_ready())
        .await;
    assert_eq!(rpc::get(&format!("{}/readyz", nw.admin)).await.0, 200);
    let metrics = rpc::get(&format!("{}/metrics", nw.admin)).await.1;
    for family in [
        "nodewatch_upstream_up",
        "nodewatch_upstream_head_block",
        "nodewatch_upstream_lag_blocks",
        "nodewatch_probes_total",
        "nodewatch_upstream_transitions_total",
    ] {
        assert!(metrics.contains(family), "{family} missing from /metrics");
    }
    assert!(
        metrics.contains("nodewatch_upstream_transitions_total{to=\"down\",upstream=\"u1\"} 1"),
        "{metrics}"
    );
    nw.stop().await;
}
