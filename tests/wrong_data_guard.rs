//! The proxy's wrong-data guard against a real anvil node, without ethereumetl: rank 1 is
//! the node behind the wrong-data relay, rank 2 the same node directly (so the right answer
//! is known exactly).
//!
//! - `answers`: every verified method gets the node's own answer through nodewatch while
//!   rank 1 changes a value, drops a log or answers `eth_getLogs` with `[]`;
//! - `quarantine`: after `verify.quarantine_after` wrong answers the relay is quarantined
//!   (`/status`, `nodewatch_upstream_quarantined`) and asked only after rank 2;
//! - `alone`: with the relay the only upstream, the call gets -32603 naming the block and the
//!   check (and `data.check`); with `verify.enabled = false` the wrong data goes through,
//!   which is what verification is there to stop.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::anvil::Anvil;
use support::chain::{build_chain, ChainInfo};
use support::nodewatch::{test_config, Nodewatch};
use support::poll::wait_until;
use support::rpc::{self, RpcError};
use support::wrong::{Mode, WrongRelay};

/// The calls checked, each with the mode that corrupts its answer.
async fn calls(node: &str, chain: &ChainInfo) -> Vec<(Mode, &'static str, Value)> {
    let block = busiest_block(chain);
    let tx = tx_with_logs(node, chain).await;
    vec![
        (
            Mode::TxValue,
            "eth_getBlockByNumber",
            json!([hex(block), true]),
        ),
        (Mode::TxValue, "eth_getTransactionByHash", json!([tx])),
        (
            Mode::DropLastLog,
            "eth_getBlockReceipts",
            json!([hex(block)]),
        ),
        (Mode::DropLastLog, "eth_getTransactionReceipt", json!([tx])),
        (
            Mode::EmptyLogs,
            "eth_getLogs",
            json!([{"fromBlock": "0x0", "toBlock": hex(chain.head)}]),
        ),
    ]
}

/// A transaction whose receipt has logs (a token transfer), so dropping one shows.
async fn tx_with_logs(node: &str, chain: &ChainInfo) -> String {
    for tx in &chain.tx_hashes {
        let receipt = rpc::call(node, "eth_getTransactionReceipt", json!([tx])).await;
        if receipt["logs"].as_array().is_some_and(|l| !l.is_empty()) {
            return tx.clone();
        }
    }
    panic!("the fixture chain has a transaction with logs");
}

/// A block with transactions (the chain's first non-empty one after the deployments).
fn busiest_block(chain: &ChainInfo) -> u64 {
    (1..=chain.head)
        .rev()
        .find(|n| !chain.empty_blocks.contains(n))
        .expect("the chain has blocks with transactions")
}

fn hex(n: u64) -> String {
    format!("{n:#x}")
}

/// One node with the fixture chain, and a relay in front of it.
async fn rig() -> Option<(Anvil, ChainInfo, WrongRelay)> {
    let anvil = support::tools::require_anvil()?;
    let node = Anvil::spawn(&anvil).await;
    let chain = build_chain(&node.url()).await;
    let relay = WrongRelay::start(&node.url()).await;
    Some((node, chain, relay))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_answers_are_never_served_and_quarantine_their_upstream() {
    let Some((node, chain, relay)) = rig().await else {
        return;
    };
    let mut config = test_config(&[relay.url(), node.url()]);
    config.verify.quarantine_after = 3;
    let nw = Nodewatch::start_with(config).await;
    nw.wait_all_healthy().await;

    answers_are_the_nodes_own(&nw, &node, &chain, &relay).await;
    the_relay_is_quarantined_and_asked_last(&nw, &chain, &relay).await;
    nw.stop().await;
}

/// Phase 1: each call's answer through nodewatch equals the node's, while rank 1 tampers
/// with it; the relay did tamper, and nodewatch counted it under the call's method.
async fn answers_are_the_nodes_own(
    nw: &Nodewatch,
    node: &Anvil,
    chain: &ChainInfo,
    relay: &WrongRelay,
) {
    for (mode, method, params) in calls(&node.url(), chain).await {
        relay.set_mode(mode);
        let before = relay.tampered();
        let got = rpc::call(&nw.url, method, params.clone()).await;
        let want = rpc::call(&node.url(), method, params.clone()).await;
        assert_eq!(
            got, want,
            "{method} {params} through nodewatch, relay in mode {mode:?}"
        );
        assert!(
            relay.tampered() > before,
            "the relay tampered with {method}"
        );
        let counted = wrong_answers(nw, method);
        assert!(counted >= 1.0, "{method}: wrong answers counted {counted}");
    }
    relay.set_modes(&[]);
}

/// Phase 2: by now the relay gave wrong answers in more than `quarantine_after` requests:
/// it shows quarantined, and a call goes to rank 2 first (the relay sees no request for it).
async fn the_relay_is_quarantined_and_asked_last(
    nw: &Nodewatch,
    chain: &ChainInfo,
    relay: &WrongRelay,
) {
    wait_until(
        "the relay quarantined in /status",
        Duration::from_secs(10),
        async || {
            let (_, body) = rpc::get(&format!("{}/status", nw.admin)).await;
            let doc: Value = serde_json::from_str(&body).unwrap();
            doc["upstreams"][0]["quarantined"] == json!(true)
                && doc["upstreams"][0]["wrong_answers"].as_u64().unwrap_or(0) >= 3
        },
    )
    .await;
    assert_eq!(
        nw.metric("nodewatch_upstream_quarantined{upstream=\"u1\"}"),
        1.0
    );
    relay.set_mode(Mode::TxValue);
    let asked = relay.requests();
    let block = busiest_block(chain);
    rpc::call(&nw.url, "eth_getBlockByNumber", json!([hex(block), true])).await;
    assert_eq!(
        relay.requests(),
        asked,
        "a quarantined upstream is asked only as a last resort"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alone_a_wrong_answer_is_an_error_naming_the_block_and_the_check() {
    let Some((node, chain, relay)) = rig().await else {
        return;
    };
    let block = busiest_block(&chain);
    relay.set_mode(Mode::TxValue);
    let nw = Nodewatch::start(&[relay.url()]).await;
    nw.wait_all_healthy().await;
    let err = rpc::try_call(&nw.url, "eth_getBlockByNumber", json!([hex(block), true]))
        .await
        .expect_err("no verified answer is an error");
    let RpcError::Rpc {
        code,
        message,
        data,
    } = err
    else {
        panic!("a JSON-RPC error object, not {err}");
    };
    assert_eq!(code, -32603, "{message}");
    assert!(message.contains(&format!("block {block}")), "{message}");
    assert!(message.contains("u1"), "names the upstream: {message}");
    assert!(
        message.contains("transaction hash") || message.contains("transactions root"),
        "names the check: {message}"
    );
    let data = data.expect("the error has data");
    assert_eq!(data["block"], json!(block), "{data}");
    assert_eq!(data["upstream"], json!("u1"), "{data}");
    nw.stop().await;

    // The same call with verification off: the wrong value goes through.
    let mut config = test_config(&[relay.url()]);
    config.verify.enabled = false;
    let unverified = Nodewatch::start_with(config).await;
    unverified.wait_all_healthy().await;
    let wrong = rpc::call(
        &unverified.url,
        "eth_getBlockByNumber",
        json!([hex(block), true]),
    )
    .await;
    let honest = rpc::call(
        &node.url(),
        "eth_getBlockByNumber",
        json!([hex(block), true]),
    )
    .await;
    assert_ne!(
        wrong, honest,
        "without verification the relay's change reaches the client"
    );
    unverified.stop().await;
}

/// `nodewatch_wrong_answers_total` for u1 and `method`, summed over checks.
fn wrong_answers(nw: &Nodewatch, method: &str) -> f64 {
    let text = String::from_utf8(nw.handle.metrics.encode()).unwrap();
    let prefix = "nodewatch_wrong_answers_total{";
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter(|l| l.contains(&format!("method=\"{method}\"")) && l.contains("upstream=\"u1\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
