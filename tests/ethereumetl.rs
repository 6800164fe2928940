//! The real client: `ethereumetl` 2.4.2 exports through nodewatch are byte-identical to the
//! same exports run directly against a node — also when the primary dies mid-export.

mod support;

use std::time::Duration;

use support::anvil::Anvil;
use support::chain::build_chain;
use support::etl::{self, EtlOptions};
use support::nodewatch::Nodewatch;
use support::poll::poll_every;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_through_nodewatch_equal_direct_exports_even_when_the_primary_dies() {
    let Some(tools) = support::tools::require_all() else {
        return;
    };
    let mut a = Anvil::spawn(&tools.anvil).await;
    let b = Anvil::spawn(&tools.anvil).await;
    let chain = build_chain(&a.url()).await;
    assert_eq!(chain.block_hashes, build_chain(&b.url()).await.block_hashes);
    let dir = tempfile::tempdir().unwrap();
    let hashes = dir.path().join("tx_hashes.txt");
    chain.write_tx_hashes(&hashes);

    // The reference: straight from a node.
    let direct = dir.path().join("direct");
    let d_blocks = etl::export_blocks_and_transactions(&b.url(), 0, chain.head, &direct).await;
    let d_receipts = etl::export_receipts_and_logs(&b.url(), &hashes, &direct).await;

    // Through nodewatch, healthy.
    let nw = Nodewatch::start(&[a.url(), b.url()]).await;
    nw.wait_all_healthy().await;
    let healthy = dir.path().join("healthy");
    let h_blocks = etl::export_blocks_and_transactions(&nw.url, 0, chain.head, &healthy).await;
    let h_receipts = etl::export_receipts_and_logs(&nw.url, &hashes, &healthy).await;
    etl::assert_files_identical(&d_blocks.blocks, &h_blocks.blocks);
    etl::assert_files_identical(&d_blocks.transactions, &h_blocks.transactions);
    etl::assert_files_identical(&d_receipts.receipts, &h_receipts.receipts);
    etl::assert_files_identical(&d_receipts.logs, &h_receipts.logs);
    assert!(nw.metric("nodewatch_requests_total{method=\"eth_getBlockByNumber\",outcome=\"ok\",upstream=\"u1\"}") > 0.0);

    // Through nodewatch, the primary killed once the export is under way (small batches so
    // the export is many requests long).
    let opts = EtlOptions {
        batch_size: 2,
        ..EtlOptions::default()
    };
    let killed = dir.path().join("killed");
    let (url, out) = (nw.url.clone(), killed.clone());
    let export = tokio::spawn(async move {
        etl::export_blocks_and_transactions_with(&url, 0, chain.head, &out, &opts).await
    });
    let served_by_u1 =
        "nodewatch_requests_total{method=\"eth_getBlockByNumber\",outcome=\"ok\",upstream=\"u1\"}";
    let before = nw.metric(served_by_u1);
    let reached = poll_every(
        Duration::from_millis(2),
        Duration::from_secs(60),
        async || (nw.metric(served_by_u1) >= before + 4.0).then_some(()),
    );
    assert!(reached.await.is_some(), "export never reached rank 1");
    a.kill_now();
    let k_blocks = export.await.unwrap();
    etl::assert_files_identical(&d_blocks.blocks, &k_blocks.blocks);
    etl::assert_files_identical(&d_blocks.transactions, &k_blocks.transactions);
    let by_u2 = nw.metric(
        "nodewatch_requests_total{method=\"eth_getBlockByNumber\",outcome=\"ok\",upstream=\"u2\"}",
    );
    assert!(by_u2 > 0.0, "the backup served the rest");
    let failed = nw.metric("nodewatch_requests_total{method=\"eth_getBlockByNumber\",outcome=\"failed\",upstream=\"none\"}");
    assert_eq!(failed, 0.0);
    eprintln!(
        "FIGURE etl-kill: export of blocks 0..={} byte-identical after killing rank 1 mid-export; {} block items served by rank 2, {failed} failed",
        chain.head, by_u2
    );
    nw.stop().await;
}
