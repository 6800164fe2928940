//! The finality-aware answer cache against a real anvil node and the real `ethereumetl`:
//! a counting relay in front of the node is nodewatch's only upstream, with
//! `cache.final_depth` set so most of the fixture chain is final.
//!
//! - `second_run`: the same export run twice through nodewatch writes identical files, and
//!   the second run makes at most 5% of the first run's upstream calls (batch items);
//! - `reorg`: a block above the depth is not kept, so after a reorg its new version is
//!   served; a final block comes from the cache (`x-nodewatch-cache: hit`).

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::anvil::Anvil;
use support::chain::{build_chain, ChainInfo};
use support::etl::{
    assert_files_identical, export_blocks_and_transactions, export_receipts_and_logs, read_csv,
};
use support::nodewatch::{test_config, Nodewatch};
use support::rpc;
use support::wrong::WrongRelay;

/// Blocks under the head that are final in these tests.
const FINAL_DEPTH: u64 = 4;

/// The node, its chain, a counting relay, and nodewatch on the relay (probes only at start,
/// so the relay's count is the export's).
async fn rig(anvil: &std::path::Path) -> (Anvil, ChainInfo, WrongRelay, Nodewatch) {
    let node = Anvil::spawn(anvil).await;
    let chain = build_chain(&node.url()).await;
    let relay = WrongRelay::start(&node.url()).await;
    let mut config = test_config(&[relay.url()]);
    config.probe.interval = Duration::from_secs(3600);
    config.cache.final_depth = FINAL_DEPTH;
    let nw = Nodewatch::start_with(config).await;
    nw.wait_all_healthy().await;
    (node, chain, relay, nw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_of_the_same_export_costs_at_most_5_percent_of_the_upstream_calls() {
    let Some(tools) = support::tools::require_all() else {
        return;
    };
    let (node, chain, relay, nw) = rig(&tools.anvil).await;
    let dir = tempfile::tempdir().unwrap();
    let last_final = chain.head - FINAL_DEPTH;
    // The day's transactions: those of the exported (final) blocks.
    let reference =
        export_blocks_and_transactions(&node.url(), 0, last_final, &dir.path().join("ref")).await;
    let hashes = dir.path().join("tx_hashes.txt");
    let listed: Vec<String> = read_csv(&reference.transactions)
        .into_iter()
        .map(|row| row["hash"].clone())
        .collect();
    assert!(!listed.is_empty(), "the final blocks have transactions");
    std::fs::write(&hashes, listed.join("\n") + "\n").unwrap();

    let mut runs = Vec::new();
    for run in ["first", "second"] {
        let before = calls(&relay);
        let out = dir.path().join(run);
        let blocks = export_blocks_and_transactions(&nw.url, 0, last_final, &out).await;
        let receipts = export_receipts_and_logs(&nw.url, &hashes, &out).await;
        runs.push((calls(&relay) - before, blocks, receipts));
    }
    let (first, ref b1, ref r1) = runs[0];
    let (second, ref b2, ref r2) = runs[1];
    for (a, b) in [
        (&b1.blocks, &b2.blocks),
        (&b1.transactions, &b2.transactions),
    ] {
        assert_files_identical(a, b);
    }
    for (a, b) in [(&r1.receipts, &r2.receipts), (&r1.logs, &r2.logs)] {
        assert_files_identical(a, b);
    }
    println!("upstream calls: first run {first}, second run {second}");
    assert!(first > 0, "the first run asked the upstream");
    assert!(
        second * 20 <= first,
        "the second run made {second} upstream calls, the first {first} (at most 5%)"
    );
    assert_files_identical(&b1.blocks, &reference.blocks);
    assert!(nw.metric("nodewatch_cache_lookups_total{result=\"hit\"}") > 0.0);
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_above_the_final_depth_is_served_stale_after_a_reorg() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let (node, chain, relay, nw) = rig(&anvil).await;
    let head = chain.head;
    let recent = json!([format!("{head:#x}"), false]);
    let old = json!([format!("{:#x}", head - FINAL_DEPTH), false]);

    let before = hash_of(&nw.url, recent.clone()).await;
    assert_eq!(cache_word(&nw.url, &old).await, "miss", "the first time");
    assert_eq!(
        cache_word(&nw.url, &old).await,
        "hit",
        "a final block is kept"
    );
    assert_eq!(
        cache_word(&nw.url, &recent).await,
        "miss",
        "a recent block is not"
    );

    // A two-block reorg at the head: the same height, other blocks.
    let accounts = rpc::call(&node.url(), "eth_accounts", json!([])).await;
    let tx = json!([{"from": accounts[5], "to": accounts[6], "value": "0x3e8"}, 0]);
    rpc::call(&node.url(), "anvil_reorg", json!([2, [tx]])).await;
    let after = hash_of(&nw.url, recent.clone()).await;
    assert_ne!(
        after, before,
        "the reorged block is served as it now is, not from the cache"
    );
    assert_eq!(after, hash_of(&node.url(), recent).await);
    let asked = relay.requests();
    assert_eq!(cache_word(&nw.url, &old).await, "hit");
    assert_eq!(relay.requests(), asked, "a hit asks no upstream");
    nw.stop().await;
}

/// Calls (batch items) the relay passed to the node so far.
fn calls(relay: &WrongRelay) -> u64 {
    relay.relayed_by_method().values().sum()
}

async fn hash_of(url: &str, params: Value) -> Value {
    rpc::call(url, "eth_getBlockByNumber", params).await["hash"].clone()
}

/// The `x-nodewatch-cache` header of one `eth_getBlockByNumber` call.
async fn cache_word(url: &str, params: &Value) -> String {
    let body = rpc::request("eth_getBlockByNumber", params.clone()).to_string();
    let answer = rpc::Client::new()
        .post(url, body)
        .await
        .expect("nodewatch answers");
    answer
        .headers
        .get("x-nodewatch-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("(none)")
        .to_string()
}
