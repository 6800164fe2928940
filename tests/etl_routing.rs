//! ETL-correct routing against real anvil nodes and scripted faults: block-aware routing of
//! a lagging primary, `null` and "header not found" retries, partly failed batches, filters
//! that survive the death of the node that would have held them.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::anvil::Anvil;
use support::chain::{build_chain, mine};
use support::etl;
use support::fault::{Fault, FaultServer};
use support::nodewatch::{test_config, Nodewatch};
use support::poll::poll_every;
use support::rpc;

fn metric_name(method: &str, upstream: &str) -> String {
    format!(
        "nodewatch_requests_total{{method=\"{method}\",outcome=\"ok\",upstream=\"{upstream}\"}}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_30_blocks_behind_gives_byte_identical_exports_and_keeps_serving_its_blocks() {
    let Some(tools) = support::tools::require_all() else {
        return;
    };
    let behind = Anvil::spawn(&tools.anvil).await;
    let ahead = Anvil::spawn(&tools.anvil).await;
    let chain = build_chain(&behind.url()).await;
    build_chain(&ahead.url()).await;
    let head = mine(&ahead.url(), 30).await;
    assert_eq!(head, chain.head + 30);
    let dir = tempfile::tempdir().unwrap();
    let hashes = dir.path().join("hashes.txt");
    chain.write_tx_hashes(&hashes);

    let direct = dir.path().join("direct");
    let d_blocks = etl::export_blocks_and_transactions(&ahead.url(), 0, head, &direct).await;
    let d_receipts = etl::export_receipts_and_logs(&ahead.url(), &hashes, &direct).await;

    let nw = Nodewatch::start(&[behind.url(), ahead.url()]).await;
    nw.wait_for("rank 1 lagging", Duration::from_secs(5), |s| {
        s.upstreams[0].lagging && s.best_head == Some(head)
    })
    .await;
    let through = dir.path().join("through");
    let t_blocks = etl::export_blocks_and_transactions(&nw.url, 0, head, &through).await;
    let t_receipts = etl::export_receipts_and_logs(&nw.url, &hashes, &through).await;
    etl::assert_files_identical(&d_blocks.blocks, &t_blocks.blocks);
    etl::assert_files_identical(&d_blocks.transactions, &t_blocks.transactions);
    etl::assert_files_identical(&d_receipts.receipts, &t_receipts.receipts);
    etl::assert_files_identical(&d_receipts.logs, &t_receipts.logs);
    let by_rank1 = nw.metric(&metric_name("eth_getBlockByNumber", "u1"));
    let by_rank2 = nw.metric(&metric_name("eth_getBlockByNumber", "u2"));
    // The one batch of 61 blocks was split: the 31 blocks rank 1 has, the 30 it lacks.
    assert_eq!((by_rank1, by_rank2), (chain.head as f64 + 1.0, 30.0));
    eprintln!(
        "FIGURE lagging-primary: {}-block export byte-identical; rank 1 ({} behind) served {by_rank1} blocks, rank 2 {by_rank2}",
        head + 1,
        head - chain.head
    );
    nw.stop().await;
}

/// Rank 1: a fault server over node A; rank 2: node B with the same chain. Probes are an
/// hour apart so only the request path acts.
async fn rig(
    anvil: &std::path::Path,
    fault: Fault,
) -> (Anvil, Anvil, FaultServer, FaultServer, Nodewatch) {
    let a = Anvil::spawn(anvil).await;
    let b = Anvil::spawn(anvil).await;
    mine(&a.url(), 5).await;
    mine(&b.url(), 5).await;
    let f1 = FaultServer::start(&a.url(), Fault::Pass).await;
    let f2 = FaultServer::start(&b.url(), Fault::Pass).await;
    let mut config = test_config(&[f1.url(), f2.url()]);
    config.probe.interval = Duration::from_secs(3600);
    let nw = Nodewatch::start_with(config).await;
    nw.wait_all_healthy().await;
    f1.set(fault);
    (a, b, f1, f2, nw)
}

fn blocks_batch(numbers: &[u64]) -> String {
    let items: Vec<Value> = numbers
        .iter()
        .map(|n| json!({"jsonrpc":"2.0","id":n,"method":"eth_getBlockByNumber","params":[format!("{n:#x}"), false]}))
        .collect();
    Value::Array(items).to_string()
}

async fn post_json(url: &str, body: &str) -> Value {
    let (status, text) = rpc::post(url, body).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_for_an_existing_block_is_retried_and_a_true_null_stands() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let (a, _b, _f1, f2, nw) = rig(&anvil, Fault::NullResult).await;
    let body = blocks_batch(&[1, 2, 3]);
    let before = f2.requests();
    let answer = post_json(&nw.url, &body).await;
    assert_eq!(
        answer,
        post_json(&a.url(), &body).await,
        "every block, none null"
    );
    assert_eq!(
        f2.requests() - before,
        1,
        "the three items went to rank 2 in one batch"
    );
    // A block no node has: null after asking each once.
    let future = post_json(&nw.url, &blocks_batch(&[999])).await;
    assert_eq!(future[0]["result"], Value::Null);
    assert!(future[0].get("error").is_none());
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partly_failed_batch_resends_only_the_failed_items() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let (a, _b, f1, f2, nw) = rig(&anvil, Fault::PartialBatch).await;
    let body = blocks_batch(&[5, 4, 3, 2, 1]);
    let before = (f1.requests(), f2.requests());
    let answer = post_json(&nw.url, &body).await;
    assert_eq!(answer, post_json(&a.url(), &body).await);
    assert_eq!((f1.requests() - before.0, f2.requests() - before.1), (1, 1));
    assert_eq!(nw.metric(&metric_name("eth_getBlockByNumber", "u1")), 4.0);
    assert_eq!(
        nw.metric(&metric_name("eth_getBlockByNumber", "u2")),
        1.0,
        "only the failed item moved"
    );
    assert_eq!(
        nw.metric("nodewatch_failovers_total{reason=\"node_error\",upstream=\"u1\"}"),
        1.0
    );
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_not_found_on_every_node_is_returned_as_the_nodes_said_it() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let (_a, _b, _f1, f2, nw) =
        rig(&anvil, Fault::NodeError(-32000, "header not found".into())).await;
    f2.set(Fault::NodeError(-32000, "header not found".into()));
    let answer = post_json(
        &nw.url,
        r#"{"jsonrpc":"2.0","id":"q","method":"eth_getBlockByNumber","params":["0x1",false]}"#,
    )
    .await;
    assert_eq!(
        answer,
        json!({"jsonrpc":"2.0","id":"q","error":{"code":-32000,"message":"header not found"}})
    );
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_survives_the_death_of_the_primary() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let mut a = Anvil::spawn(&anvil).await;
    let b = Anvil::spawn(&anvil).await;
    let chain = build_chain(&a.url()).await;
    build_chain(&b.url()).await;
    let nw = Nodewatch::start(&[a.url(), b.url()]).await;
    nw.wait_all_healthy().await;
    let criteria = json!({"fromBlock":"0x0","toBlock": format!("{:#x}", chain.head),"topics":[support::chain::TRANSFER_TOPIC]});
    let id = rpc::call(&nw.url, "eth_newFilter", json!([criteria])).await;
    a.kill_now();
    let logs = rpc::call(&nw.url, "eth_getFilterLogs", json!([id])).await;
    let direct = rpc::call(&b.url(), "eth_getLogs", json!([criteria])).await;
    assert_eq!(logs, direct);
    assert!(
        !logs.as_array().unwrap().is_empty(),
        "the chain has Transfer logs"
    );
    // Changes: nothing new, then a new block's logs once.
    assert_eq!(
        rpc::call(&nw.url, "eth_getFilterChanges", json!([id])).await,
        json!([])
    );
    assert_eq!(
        rpc::call(&nw.url, "eth_uninstallFilter", json!([id])).await,
        json!(true)
    );
    assert_eq!(
        rpc::call(&nw.url, "eth_uninstallFilter", json!([id])).await,
        json!(false)
    );
    let (_, text) = rpc::post(
        &nw.url,
        &json!({"jsonrpc":"2.0","id":1,"method":"eth_getFilterLogs","params":[id]}).to_string(),
    )
    .await;
    let gone: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        gone["error"],
        json!({"code":-32000,"message":"filter not found"})
    );

    // A block filter reports the hashes of new blocks once each.
    let blocks = rpc::call(&nw.url, "eth_newBlockFilter", json!([])).await;
    let new_head = mine(&b.url(), 2).await;
    nw.wait_for("new head", Duration::from_secs(5), |s| {
        s.best_head == Some(new_head)
    })
    .await;
    let changes = rpc::call(&nw.url, "eth_getFilterChanges", json!([blocks])).await;
    let expected = support::chain::block_hashes(&b.url(), new_head).await;
    assert_eq!(changes, json!(expected[new_head as usize - 1..]));
    assert_eq!(
        rpc::call(&nw.url, "eth_getFilterChanges", json!([blocks])).await,
        json!([])
    );
    assert_eq!(nw.handle.proxy.filters(), 1);
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ethereumetl_export_token_transfers_survives_the_primary_dying() {
    let Some(tools) = support::tools::require_all() else {
        return;
    };
    let mut a = Anvil::spawn(&tools.anvil).await;
    let b = Anvil::spawn(&tools.anvil).await;
    let chain = build_chain(&a.url()).await;
    build_chain(&b.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let export = |url: String, out: std::path::PathBuf| {
        let args: Vec<String> = [
            "export_token_transfers",
            "-s",
            "0",
            "-e",
            &chain.head.to_string(),
            "-b",
            "5",
            "-w",
            "1",
            "-p",
            &url,
            "-o",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([out.to_str().unwrap().to_string()])
        .collect();
        async move { etl::run_ethereumetl(&args, Duration::from_secs(120)).await }
    };
    let direct = dir.path().join("direct.csv");
    export(b.url(), direct.clone()).await;
    let nw = Nodewatch::start(&[a.url(), b.url()]).await;
    nw.wait_all_healthy().await;
    let through = dir.path().join("through.csv");
    let job = tokio::spawn(export(nw.url.clone(), through.clone()));
    // Kill rank 1 once the export has made its first filter.
    let made = poll_every(
        Duration::from_millis(1),
        Duration::from_secs(60),
        async || {
            let made = nw.metric(
            "nodewatch_requests_total{method=\"eth_newFilter\",outcome=\"ok\",upstream=\"nodewatch\"}",
        );
            (made >= 1.0).then_some(())
        },
    );
    assert!(made.await.is_some(), "no filter made");
    a.kill_now();
    job.await.unwrap();
    etl::assert_files_identical(&direct, &through);
    assert!(
        std::fs::read_to_string(&through).unwrap().lines().count() > 1,
        "token transfers exported"
    );
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_filter_expires_like_on_a_node() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    let mut config = test_config(&[node.url()]);
    config.filters.idle_timeout = Duration::from_millis(300);
    config.filters.max = 2;
    let nw = Nodewatch::start_with(config).await;
    nw.wait_all_healthy().await;
    let kept = rpc::call(&nw.url, "eth_newBlockFilter", json!([])).await;
    let idle = rpc::call(&nw.url, "eth_newFilter", json!([{"fromBlock":"0x0"}])).await;
    // The table is full.
    let (_, text) = rpc::post(
        &nw.url,
        r#"{"jsonrpc":"2.0","id":1,"method":"eth_newBlockFilter"}"#,
    )
    .await;
    assert!(
        text.contains("limit exceeded: 2 filters installed"),
        "{text}"
    );
    for _ in 0..4 {
        // The scenario: time passes (past the idle timeout), the kept filter is polled.
        tokio::time::sleep(Duration::from_millis(100)).await;
        rpc::call(&nw.url, "eth_getFilterChanges", json!([kept])).await;
    }
    let (_, text) = rpc::post(
        &nw.url,
        &json!({"jsonrpc":"2.0","id":1,"method":"eth_getFilterLogs","params":[idle]}).to_string(),
    )
    .await;
    assert!(text.contains("filter not found"), "{text}");
    assert_eq!(nw.handle.proxy.filters(), 1, "the polled filter stays");
    nw.stop().await;
}
