//! The finality-aware answer cache against a real anvil node and the real `ethereumetl`:
//! a counting relay in front of the node is nodewatch's only upstream, with
//! `cache.final_depth` set so most of the fixture chain is final.
//!
//! - `second_run`: the same export run twice through nodewatch writes identical files, and
//!   the second run makes at most 5% of the first run's upstream calls (batch items);
//! - `reorg`: a block above the depth is not kept, so after a reorg its new version is
//!   served; a final block comes from the cache (`x-nodewatch-cache: hit`);
//! - `finalized`: the node's `finalized` tag under the depth holds the final line back:
//!   answers at or below it are kept, above it not (`/status` shows the line);
//! - `deep reorg`: a reorg deeper than the final depth empties the cache from above the last
//!   unchanged checkpoint (`nodewatch_cache_purged_total`); afterwards every block is served
//!   as the node now has it, and the blocks under that checkpoint still from the cache.
//!
//! anvil's `finalized` block is `2 × --slots-in-an-epoch` under its head (`latest - 64` by
//! default, genesis on a short chain), so each test picks its epoch.

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

/// The node (`finalized` 2 blocks under its head: the depth decides), its chain, a
/// counting relay, and nodewatch on the relay (probes only at start, so the relay's count is
/// the export's).
async fn rig(anvil: &std::path::Path) -> (Anvil, ChainInfo, WrongRelay, Nodewatch) {
    let node = node_finalizing(anvil, 1).await;
    let chain = build_chain(&node.url()).await;
    let relay = WrongRelay::start(&node.url()).await;
    let mut config = test_config(&[relay.url()]);
    config.probe.interval = Duration::from_secs(3600);
    config.cache.final_depth = FINAL_DEPTH;
    let nw = Nodewatch::start_with(config).await;
    nw.wait_all_healthy().await;
    wait_for_line(&nw, chain.head - FINAL_DEPTH).await;
    (node, chain, relay, nw)
}

/// An anvil whose `finalized` block is `2 × slots` under its head.
async fn node_finalizing(anvil: &std::path::Path, slots: u64) -> Anvil {
    Anvil::builder(anvil)
        .arg("--slots-in-an-epoch")
        .arg(slots.to_string())
        .spawn()
        .await
}

/// Waits until nodewatch publishes `line` as the cache's final line.
async fn wait_for_line(nw: &Nodewatch, line: u64) {
    let what = format!("the final line at {line}");
    nw.wait_for(&what, Duration::from_secs(10), |s| {
        s.final_line == Some(line)
    })
    .await;
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
    assert_eq!(
        cache_word(&nw.url, "eth_getBlockByNumber", &old).await,
        "miss",
        "the first time"
    );
    assert_eq!(
        cache_word(&nw.url, "eth_getBlockByNumber", &old).await,
        "hit",
        "a final block is kept"
    );
    assert_eq!(
        cache_word(&nw.url, "eth_getBlockByNumber", &recent).await,
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
    assert_eq!(
        cache_word(&nw.url, "eth_getBlockByNumber", &old).await,
        "hit"
    );
    assert_eq!(relay.requests(), asked, "a hit asks no upstream");
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_at_or_below_the_nodes_finalized_block_are_kept_above_it_not() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    // finalized = head - 4, depth 1: the tag holds the line back.
    let node = node_finalizing(&anvil, 2).await;
    let chain = build_chain(&node.url()).await;
    let relay = WrongRelay::start(&node.url()).await;
    let mut config = test_config(&[relay.url()]);
    config.cache.final_depth = 1;
    let nw = Nodewatch::start_with(config).await;
    nw.wait_all_healthy().await;
    let finalized = chain.head - 4;
    wait_for_line(&nw, finalized).await;
    let (_, status) = rpc::get(&format!("{}/status", nw.admin)).await;
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(
        status["final_line"],
        json!(finalized),
        "/status shows the line"
    );

    for (height, kept) in [
        (finalized, true),
        (finalized - 1, true),
        (finalized + 1, false),
    ] {
        let params = json!([format!("{height:#x}")]);
        let before = receipts_asked(&relay);
        let words = [
            cache_word(&nw.url, "eth_getBlockReceipts", &params).await,
            cache_word(&nw.url, "eth_getBlockReceipts", &params).await,
        ];
        let asked = receipts_asked(&relay) - before;
        match kept {
            true => assert_eq!(
                (words, asked),
                (["miss".into(), "hit".into()], 1),
                "{height}"
            ),
            false => assert_eq!(
                (words, asked),
                (["miss".into(), "miss".into()], 2),
                "{height}"
            ),
        }
    }
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_deeper_than_the_final_depth_empties_what_it_touched() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    // finalized = head - 2, depth 3: the depth decides; a finality round every 1.5 s.
    let node = node_finalizing(&anvil, 1).await;
    let chain = build_chain(&node.url()).await;
    let mut config = test_config(&[node.url()]);
    config.cache.final_depth = 3;
    let nw = Nodewatch::start_with(config).await;
    nw.wait_all_healthy().await;

    // Phase 1: checkpoints at H - 3, then at H.
    let h = chain.head;
    wait_for_line(&nw, h - 3).await;
    node.mine(3).await;
    wait_for_line(&nw, h).await;

    // Phase 2: blocks H - 5 ..= H kept, and block H by hash.
    let heights: Vec<u64> = (h - 5..=h).collect();
    let old_hash = hash_of(&node.url(), by_number(h)).await;
    let by_old_hash = json!([old_hash, false]);
    for &n in &heights {
        assert_eq!(
            cache_word(&nw.url, "eth_getBlockByNumber", &by_number(n)).await,
            "miss"
        );
        assert_eq!(
            cache_word(&nw.url, "eth_getBlockByNumber", &by_number(n)).await,
            "hit"
        );
    }
    assert_eq!(
        cache_word(&nw.url, "eth_getBlockByHash", &by_old_hash).await,
        "miss"
    );
    assert_eq!(
        cache_word(&nw.url, "eth_getBlockByHash", &by_old_hash).await,
        "hit"
    );

    // Phase 3: a 5-block reorg at H + 3 replaces H - 1 ..= H + 3, under the line.
    let accounts = rpc::call(&node.url(), "eth_accounts", json!([])).await;
    let tx = json!([{"from": accounts[5], "to": accounts[6], "value": "0x3e8"}, 0]);
    rpc::call(&node.url(), "anvil_reorg", json!([5, [tx]])).await;
    assert_ne!(hash_of(&node.url(), by_number(h)).await, old_hash);
    nw.wait_for("the deep reorg seen", Duration::from_secs(10), |_| {
        nw.metric("nodewatch_cache_deep_reorgs_total") >= 1.0
    })
    .await;
    assert!(
        nw.metric("nodewatch_cache_purged_total") >= 3.0,
        "H - 1, H, and H by hash"
    );

    // Phase 4: nothing stale. Under the last unchanged checkpoint (H - 3, or H - 2 if a
    // round fell mid-mining) still kept; the replaced blocks asked again; every block as the
    // node has it now.
    for &n in &heights {
        let word = cache_word(&nw.url, "eth_getBlockByNumber", &by_number(n)).await;
        match n {
            n if n <= h - 3 => assert_eq!(word, "hit", "{n} did not change"),
            n if n >= h - 1 => assert_eq!(word, "miss", "{n} was replaced"),
            _ => {}
        }
        assert_eq!(
            hash_of(&nw.url, by_number(n)).await,
            hash_of(&node.url(), by_number(n)).await,
            "block {n}"
        );
    }
    assert_eq!(
        cache_word(&nw.url, "eth_getBlockByHash", &by_old_hash).await,
        "miss"
    );
    wait_for_line(&nw, h).await;
    nw.stop().await;
}

fn by_number(n: u64) -> Value {
    json!([format!("{n:#x}"), false])
}

/// `eth_getBlockReceipts` calls the relay passed to the node so far.
fn receipts_asked(relay: &WrongRelay) -> u64 {
    relay
        .relayed_by_method()
        .get("eth_getBlockReceipts")
        .copied()
        .unwrap_or(0)
}

/// Calls (batch items) the relay passed to the node so far.
fn calls(relay: &WrongRelay) -> u64 {
    relay.relayed_by_method().values().sum()
}

async fn hash_of(url: &str, params: Value) -> Value {
    rpc::call(url, "eth_getBlockByNumber", params).await["hash"].clone()
}

/// The `x-nodewatch-cache` header of one call.
async fn cache_word(url: &str, method: &str, params: &Value) -> String {
    let body = rpc::request(method, params.clone()).to_string();
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

/// A batch of every block of `0..=last` (full transactions) and its receipts.
fn day_batch(last: u64) -> String {
    let calls: Vec<Value> = (0..=last)
        .flat_map(|n| {
            [
                json!({"jsonrpc": "2.0", "id": 2 * n, "method": "eth_getBlockByNumber",
                       "params": [format!("{n:#x}"), true]}),
                json!({"jsonrpc": "2.0", "id": 2 * n + 1, "method": "eth_getBlockReceipts",
                       "params": [format!("{n:#x}")]}),
            ]
        })
        .collect();
    Value::Array(calls).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sidecar_is_answered_from_what_the_first_kept_in_redis() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let Some(redis_bin) = support::tools::require_redis() else {
        return;
    };
    let redis = support::redis::RedisServer::start(&redis_bin);
    let node = node_finalizing(&anvil, 1).await;
    let chain = build_chain(&node.url()).await;
    let relay = WrongRelay::start(&node.url()).await;
    let start = || async {
        let mut config = test_config(&[relay.url()]);
        config.probe.interval = Duration::from_secs(3600);
        config.cache.final_depth = FINAL_DEPTH;
        config.redis.url = Some(redis.url());
        let nw = Nodewatch::start_with(config).await;
        nw.wait_all_healthy().await;
        wait_for_line(&nw, chain.head - FINAL_DEPTH).await;
        nw
    };
    let (a, b) = (start().await, start().await);
    let last = chain.head - FINAL_DEPTH;
    let body = day_batch(last);
    let before = calls(&relay);
    let (status, first) = rpc::post(&a.url, &body).await;
    assert_eq!(status, 200, "{first}");
    let by_a = calls(&relay) - before;
    // The first sidecar shares in the background: once its last block is there for b, ...
    let probe = by_number(last);
    support::poll::poll_until(Duration::from_secs(5), async || {
        (cache_word(
            &b.url,
            "eth_getBlockByNumber",
            &json!([format!("{last:#x}"), true]),
        )
        .await
            == "hit")
            .then_some(())
    })
    .await
    .expect("the first sidecar's answers reached Redis");
    // ... the whole day costs b next to nothing, and b answers what a answered.
    let before = calls(&relay);
    let (status, second) = rpc::post(&b.url, &body).await;
    assert_eq!(status, 200, "{second}");
    let by_b = calls(&relay) - before;
    println!("FIGURE shared cache: the day's {} calls cost sidecar a {by_a} upstream calls, then sidecar b {by_b}", 2 * (last + 1));
    assert!(by_a > 0 && by_b * 20 <= by_a, "a: {by_a}, b: {by_b}");
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap();
    assert_eq!(parse(&first), parse(&second));
    assert!(b.metric("nodewatch_cache_lookups_total{result=\"shared_hit\"}") > 0.0);
    assert_eq!(
        hash_of(&b.url, probe).await,
        hash_of(&node.url(), by_number(last)).await
    );
    a.stop().await;
    b.stop().await;
}
