//! Faults a real node cannot show on demand, from the scripted servers in
//! `tests/support/fault.rs`, in front of rank 1; a real anvil node is rank 2. The client must
//! get the right answer every time, with no error.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::anvil::Anvil;
use support::fault::{Fault, FaultServer};
use support::nodewatch::{test_config, Nodewatch};
use support::rpc;

struct Rig {
    _node: Anvil,
    fault: FaultServer,
    nw: Nodewatch,
    direct: String,
}

/// Rank 1: a fault server relaying to the anvil node; rank 2: the node itself. Probing is
/// slowed right down so health does not change under the test: only the request path's
/// own failover is exercised.
async fn rig(anvil: &std::path::Path) -> Rig {
    let node = Anvil::spawn(anvil).await;
    support::chain::mine(&node.url(), 3).await;
    let fault = FaultServer::start(&node.url(), Fault::Pass).await;
    let mut config = test_config(&[fault.url(), node.url()]);
    config.probe.interval = Duration::from_secs(3600);
    config.proxy.attempt_timeout = Duration::from_millis(500);
    config.health.fail_threshold = 1000;
    let nw = Nodewatch::start_with(config).await;
    nw.wait_all_healthy().await;
    let direct = node.url();
    Rig {
        _node: node,
        fault,
        nw,
        direct,
    }
}

const SINGLE: &str =
    r#"{"jsonrpc":"2.0","id":"s","method":"eth_getBlockByNumber","params":["0x2",false]}"#;
const BATCH: &str = r#"[{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["0x1",false]},{"jsonrpc":"2.0","id":2,"method":"eth_getBlockByNumber","params":["0x2",false]},{"jsonrpc":"2.0","id":3,"method":"eth_blockNumber","params":[]}]"#;

async fn json_post(url: &str, body: &str) -> Value {
    let (status, text) = rpc::post(url, body).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:.300}"))
}

/// Sends a single call and a batch of three through the proxy while rank 1 misbehaves; both
/// answers must equal the node's own; rank 1 must have been tried once for each. Failovers
/// count whole requests for transport faults and items for per-item errors.
async fn fails_over(fault: Fault, expected_failovers: f64) {
    fails_over_after(fault, 2, expected_failovers).await;
}

/// [`fails_over`], with rank 1 tried `tries` times.
async fn fails_over_after(fault: Fault, tries: usize, expected_failovers: f64) {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let r = rig(&anvil).await;
    r.fault.set(fault.clone());
    let before = r.fault.requests();
    let single = json_post(&r.nw.url, SINGLE).await;
    assert_eq!(
        single,
        json_post(&r.direct, SINGLE).await,
        "{fault:?}: single"
    );
    let batch = json_post(&r.nw.url, BATCH).await;
    assert_eq!(batch, json_post(&r.direct, BATCH).await, "{fault:?}: batch");
    assert!(batch.as_array().unwrap().len() == 3);
    let tried = r.fault.requests() - before;
    assert_eq!(tried, tries, "{fault:?}: rank 1 tried");
    let failovers: f64 = [
        "connect_error",
        "timeout",
        "http_error",
        "invalid_answer",
        "node_error",
    ]
    .iter()
    .map(|reason| {
        r.nw.metric(&format!(
            "nodewatch_failovers_total{{reason=\"{reason}\",upstream=\"u1\"}}"
        ))
    })
    .sum();
    assert_eq!(failovers, expected_failovers, "{fault:?}: failovers");
    r.nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_fail_over() {
    fails_over(Fault::Garbage, 2.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_500_fails_over() {
    fails_over(Fault::Status(500), 2.0).await;
}

/// A 429 asks to slow down: the single call fails over, and the batch right after goes to
/// rank 2 without asking rank 1 again (paused for `rate_limit.backoff`; it may spill).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_429_fails_over() {
    fails_over_after(Fault::Status(429), 1, 1.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hang_times_out_and_fails_over() {
    fails_over(Fault::Hang, 2.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_not_found_fails_over() {
    fails_over(Fault::NodeError(-32000, "header not found".into()), 4.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_batch_is_never_passed_on() {
    // A single call passes through rank 1 untouched; the batch comes back short and fails over.
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let r = rig(&anvil).await;
    r.fault.set(Fault::ShortBatch);
    let batch = json_post(&r.nw.url, BATCH).await;
    assert_eq!(batch, json_post(&r.direct, BATCH).await);
    assert_eq!(
        r.nw.metric("nodewatch_failovers_total{reason=\"invalid_answer\",upstream=\"u1\"}"),
        1.0
    );
    assert_eq!(r.nw.metric("nodewatch_requests_total{method=\"eth_getBlockByNumber\",outcome=\"ok\",upstream=\"u2\"}"), 2.0);
    r.nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_errors_are_returned_not_failed_over() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let r = rig(&anvil).await;
    r.fault
        .set(Fault::NodeError(3, "execution reverted".into()));
    let answer = json_post(&r.nw.url, SINGLE).await;
    assert_eq!(
        answer["error"],
        json!({"code":3,"message":"execution reverted"})
    );
    assert_eq!(answer["id"], "s");
    r.fault
        .set(Fault::NodeError(-32000, "nonce too low".into()));
    let answer = json_post(&r.nw.url, SINGLE).await;
    assert_eq!(answer["error"]["message"], "nonce too low");
    assert_eq!(r.nw.metric("nodewatch_requests_total{method=\"eth_getBlockByNumber\",outcome=\"error\",upstream=\"u1\"}"), 2.0);
    assert_eq!(r.nw.metric("nodewatch_requests_total{method=\"eth_getBlockByNumber\",outcome=\"ok\",upstream=\"u2\"}"), 0.0);
    r.nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_chain_id_takes_an_upstream_out() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    let node2 = Anvil::spawn(&anvil).await;
    let fault = FaultServer::start(&node.url(), Fault::WrongChain(5)).await;
    let nw = Nodewatch::start(&[fault.url(), node.url(), node2.url()]).await;
    nw.wait_for("wrong chain", Duration::from_secs(5), |s| {
        s.upstreams[0].wrong_chain
    })
    .await;
    for _ in 0..10 {
        assert_eq!(
            rpc::call(&nw.url, "eth_blockNumber", json!([])).await,
            json!("0x0")
        );
    }
    assert_eq!(
        nw.metric(
            "nodewatch_requests_total{method=\"eth_blockNumber\",outcome=\"ok\",upstream=\"u1\"}"
        ),
        0.0
    );
    assert_eq!(
        nw.metric(
            "nodewatch_requests_total{method=\"eth_blockNumber\",outcome=\"ok\",upstream=\"u2\"}"
        ),
        10.0
    );
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_upstream_is_reported_passively_before_any_probe() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    let fault = FaultServer::start(&node.url(), Fault::Pass).await;
    // Probes are an hour apart (the first runs at start): only the request path can notice.
    let mut config = test_config(&[fault.url(), node.url()]);
    config.probe.interval = Duration::from_secs(3600);
    let nw = Nodewatch::start_with(config).await;
    nw.wait_all_healthy().await;
    fault.set(Fault::Status(503));
    // fail_threshold (2) failed forwards take rank 1 out; neither client saw an error.
    for _ in 0..2 {
        assert_eq!(
            json_post(&nw.url, SINGLE).await,
            json_post(&node.url(), SINGLE).await
        );
    }
    nw.wait_for(
        "u1 down from passive failures",
        Duration::from_secs(2),
        |s| s.upstreams[0].status == nodewatch::upstream::health::Status::Unhealthy,
    )
    .await;
    let tried = fault.requests();
    json_post(&nw.url, SINGLE).await;
    assert_eq!(
        fault.requests(),
        tried,
        "an unhealthy rank 1 is no longer tried first"
    );
    nw.stop().await;
}
