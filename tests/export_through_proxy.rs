//! The two halves together: `nodewatch-export` exporting through nodewatch (in-process) in
//! front of two anvil nodes with the same chain; the primary is SIGKILLed in the middle of the
//! export, and the files are byte-identical to a direct export from the surviving node.

mod support;

use nodewatch_testkit::export as export_common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use export_common::stream::wait_exit;
use export_common::{blocks_and_transactions, ours, receipts_and_logs};
use support::anvil::Anvil;
use support::chain::{build_chain, mine};
use support::etl::assert_files_identical;
use support::nodewatch::Nodewatch;
use support::poll::poll_every;

fn served(nw: &Nodewatch, upstream: &str) -> f64 {
    nw.metric(&format!(
        "nodewatch_requests_total{{method=\"eth_getBlockByNumber\",outcome=\"ok\",upstream=\"{upstream}\"}}"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_through_nodewatch_survives_the_primary_dying_mid_export() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let mut primary = Anvil::spawn(&anvil).await;
    let backup = Anvil::spawn(&anvil).await;
    let chain = build_chain(&primary.url()).await;
    build_chain(&backup.url()).await;
    // Enough blocks that one-block batches take a while.
    let head = mine(&primary.url(), 200).await;
    assert_eq!(mine(&backup.url(), 200).await, head);
    let dir = tempfile::tempdir().unwrap();
    let hashes = dir.path().join("hashes.txt");
    chain.write_tx_hashes(&hashes);
    let export = |url: &str, out: &str| {
        let o = dir.path().join(out);
        let opts = ["-b", "1", "-w", "1", "--retry-delay-ms", "50"];
        let (blocks, txs) = (o.join("blocks.csv"), o.join("transactions.csv"));
        blocks_and_transactions(url, (0, head), Some(&blocks), Some(&txs), &opts)
    };
    let receipts = |url: &str, out: &str| {
        let o = dir.path().join(out);
        let (receipts, logs) = (o.join("receipts.csv"), o.join("logs.csv"));
        receipts_and_logs(url, &hashes, Some(&receipts), Some(&logs), &[])
    };
    ours(&export(&backup.url(), "direct"));
    ours(&receipts(&backup.url(), "direct"));

    let nw = Nodewatch::start(&[primary.url(), backup.url()]).await;
    nw.wait_all_healthy().await;
    let mut child = export_common::exporter(&export(&nw.url, "through"))
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("err.txt")).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let going = poll_every(
        Duration::from_millis(2),
        Duration::from_secs(30),
        async || (served(&nw, "u1") >= 40.0).then_some(()),
    );
    assert!(going.await.is_some(), "the export never got going");
    primary.kill_now();
    let killed_after = served(&nw, "u1");
    let status = wait_exit(&mut child, Duration::from_secs(60)).await;
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(dir.path().join("err.txt")).unwrap()
    );
    ours(&receipts(&nw.url, "through"));
    let by_backup = served(&nw, "u2");
    assert!(
        killed_after < (head + 1) as f64 && by_backup > 0.0,
        "the kill landed mid-export: primary served {killed_after}, backup {by_backup} of {} blocks",
        head + 1
    );
    let files = ["blocks.csv", "transactions.csv", "receipts.csv", "logs.csv"];
    for file in files {
        assert_files_identical(
            &dir.path().join("direct").join(file),
            &dir.path().join("through").join(file),
        );
    }
    eprintln!(
        "FIGURE export-through-proxy: {} blocks one per batch, primary SIGKILLed after serving {killed_after}, backup served {by_backup}; {} files byte-identical to a direct export ({:.2}s)",
        head + 1,
        files.len(),
        started.elapsed().as_secs_f64()
    );
    nw.stop().await;
}
