//! `nodewatch-export` against the real `ethereumetl` 2.4.2 on the same anvil
//! chain, byte for byte: blocks, transactions, receipts and logs (CSV and
//! JSON) and the commands that print to stdout. Token transfers and the
//! extract commands are in `export_diff_tokens.rs`.
//!
//! ethereumetl runs with `-w 1` (its row order is only deterministic then);
//! nodewatch-export runs with small batches and several workers, so the
//! comparison also shows that our output stays in block order.
//!
//! The chain is the shared fixture chain (legacy, access-list and EIP-1559
//! transactions, contract creations, a reverted creation, ERC-20 Transfer
//! logs, empty blocks) plus a few blocks added here for the token-transfer
//! corner cases: ERC-721 style transfers (value in the 4th topic), a
//! Transfer-topic log with the wrong number of words, a Transfer log with no
//! indexed topics at all, a log without topics, values above 2^64 and 2^256-1.

#[allow(dead_code, unused_imports, unused_macros)]
use nodewatch_testkit as support;
use nodewatch_testkit::export as export_common;

use std::path::PathBuf;

use export_common::{
    args, blocks_and_transactions, etl, ours, receipts_and_logs, s, stdout_of, Fixture,
};
use support::etl::assert_files_identical;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_and_transactions_are_byte_identical() {
    let Some(fx) = Fixture::new().await else {
        return;
    };
    let end = fx.head.to_string();
    for ext in ["csv", "json"] {
        let (eb, et) = (
            fx.path(&format!("etl_blocks.{ext}")),
            fx.path(&format!("etl_txs.{ext}")),
        );
        let (ob, ot) = (
            fx.path(&format!("our_blocks.{ext}")),
            fx.path(&format!("our_txs.{ext}")),
        );
        let range = (0, fx.head);
        let t_etl = etl(&blocks_and_transactions(
            &fx.url,
            range,
            Some(&eb),
            Some(&et),
            &["-w", "1"],
        ))
        .await;
        let t_ours = ours(&blocks_and_transactions(
            &fx.url,
            range,
            Some(&ob),
            Some(&ot),
            &["-b", "3", "-w", "4"],
        ));
        assert_files_identical(&eb, &ob);
        assert_files_identical(&et, &ot);
        eprintln!("FIGURE export-blocks-{ext}: blocks 0..={end}: ethereumetl {t_etl:?}, nodewatch-export {t_ours:?}");
    }
    // Blocks only: transactions come as hashes, transaction_count still counts them.
    let (eb, ob) = (
        fx.path("etl_only_blocks.csv"),
        fx.path("our_only_blocks.csv"),
    );
    etl(&blocks_and_transactions(
        &fx.url,
        (5, 12),
        Some(&eb),
        None,
        &["-w", "1"],
    ))
    .await;
    ours(&blocks_and_transactions(
        &fx.url,
        (5, 12),
        Some(&ob),
        None,
        &[],
    ));
    assert_files_identical(&eb, &ob);
    assert!(std::fs::read_to_string(&ob).unwrap().lines().count() == 9);
    // An empty block range slice with transactions only: empty-block range gives an empty file.
    let empty = fx.chain.empty_blocks[0];
    let (et, ot) = (fx.path("etl_empty_txs.csv"), fx.path("our_empty_txs.csv"));
    etl(&blocks_and_transactions(
        &fx.url,
        (empty, empty),
        None,
        Some(&et),
        &[],
    ))
    .await;
    ours(&blocks_and_transactions(
        &fx.url,
        (empty, empty),
        None,
        Some(&ot),
        &[],
    ));
    assert_files_identical(&et, &ot);
    assert_eq!(std::fs::metadata(&ot).unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_and_logs_are_byte_identical() {
    let Some(fx) = Fixture::new().await else {
        return;
    };
    let hashes = fx.hashes_file();
    for ext in ["csv", "json"] {
        let (er, el) = (
            fx.path(&format!("etl_receipts.{ext}")),
            fx.path(&format!("etl_logs.{ext}")),
        );
        let (or, ol) = (
            fx.path(&format!("our_receipts.{ext}")),
            fx.path(&format!("our_logs.{ext}")),
        );
        let t_etl = etl(&receipts_and_logs(
            &fx.url,
            &hashes,
            Some(&er),
            Some(&el),
            &["-w", "1"],
        ))
        .await;
        let t_ours = ours(&receipts_and_logs(
            &fx.url,
            &hashes,
            Some(&or),
            Some(&ol),
            &["-b", "7", "-w", "3"],
        ));
        assert_files_identical(&er, &or);
        assert_files_identical(&el, &ol);
        eprintln!(
            "FIGURE export-receipts-{ext}: {} receipts: ethereumetl {t_etl:?}, nodewatch-export {t_ours:?}",
            fx.tx_hashes.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_outputs_are_byte_identical() {
    let Some(fx) = Fixture::new().await else {
        return;
    };
    let etl_bin = support::tools::ethereumetl_path().unwrap();
    let our_bin = PathBuf::from(env!("CARGO_BIN_EXE_nodewatch-export"));
    let end = fx.head.to_string();
    let hashes = fx.hashes_file();
    let logs = fx.path("logs.json");
    etl(&args(&[
        "export_receipts_and_logs",
        "-t",
        &s(&hashes),
        "-w",
        "1",
        "-p",
        &fx.url,
        "--logs-output",
        &s(&logs),
    ]))
    .await;
    let cases = [
        args(&[
            "export_blocks_and_transactions",
            "-s",
            "0",
            "-e",
            &end,
            "-w",
            "1",
            "-p",
            &fx.url,
            "--transactions-output",
            "-",
        ]),
        args(&[
            "export_receipts_and_logs",
            "-t",
            &s(&hashes),
            "-w",
            "1",
            "-p",
            &fx.url,
            "--receipts-output",
            "-",
        ]),
        args(&["extract_token_transfers", "-l", &s(&logs)]),
        args(&[
            "export_token_transfers",
            "-s",
            "0",
            "-e",
            &end,
            "-w",
            "1",
            "-p",
            &fx.url,
        ]),
        args(&["extract_field", "-i", &s(&logs), "-f", "transaction_hash"]),
    ];
    for a in cases {
        let expected = stdout_of(&etl_bin, &a);
        let mut ours_args = a.clone();
        ours_args.push("--quiet".into());
        let got = stdout_of(&our_bin, &ours_args);
        assert!(!expected.is_empty(), "{a:?} printed something");
        assert!(
            expected == got,
            "{a:?}: stdout differs\n{}",
            support::etl::diff_excerpt(&expected, &got)
        );
    }
}
