//! How `nodewatch-export` fails: bad usage exits 2 with one message and no
//! panic; a node that answers null blocks, missing receipts, short or garbled
//! batches is retried with backoff and then the export fails naming the
//! block or transaction, leaving no partial output file; a node that heals
//! within the retries gives the complete, correct file.

#[allow(dead_code, unused_imports, unused_macros)]
use nodewatch_testkit as support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use support::anvil::Anvil;
use support::chain::build_chain;
use support::etl::assert_files_identical;
use support::export::exporter_async;
use support::fault::{Fault, FaultServer};
use support::poll::wait_until;

async fn run(args: &[&str]) -> Output {
    let out = exporter_async(args).arg("--quiet").output();
    tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("nodewatch-export finished in time")
        .expect("run nodewatch-export")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn dir_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

#[tokio::test]
async fn bad_usage_exits_2_with_a_message_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out_csv = dir.path().join("out.csv");
    let out = out_csv.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "export_blocks_and_transactions",
                "-e",
                "1",
                "--blocks-output",
                out,
                "--bogus",
            ],
            "--bogus",
        ),
        (
            vec![
                "export_blocks_and_transactions",
                "-s",
                "5",
                "-e",
                "1",
                "--blocks-output",
                out,
            ],
            "start block",
        ),
        (
            vec![
                "export_blocks_and_transactions",
                "-e",
                "x",
                "--blocks-output",
                out,
            ],
            "invalid value",
        ),
        (
            vec!["export_blocks_and_transactions", "-e", "1"],
            "--blocks-output",
        ),
        (
            vec![
                "export_blocks_and_transactions",
                "-e",
                "1",
                "-p",
                "not a url",
                "--blocks-output",
                out,
            ],
            "provider URI",
        ),
        (
            vec![
                "export_blocks_and_transactions",
                "-e",
                "1",
                "-p",
                "file:///tmp/geth.ipc",
                "--blocks-output",
                out,
            ],
            "IPC",
        ),
        (
            vec![
                "export_receipts_and_logs",
                "-t",
                "/no/such/hashes.txt",
                "--receipts-output",
                out,
            ],
            "/no/such/hashes.txt",
        ),
        (
            vec!["export_token_transfers", "-s", "9", "-e", "3", "-o", out],
            "start block",
        ),
        (
            vec![
                "extract_token_transfers",
                "-l",
                "/no/such/logs.csv",
                "-o",
                out,
            ],
            "/no/such/logs.csv",
        ),
        (
            vec![
                "extract_csv_column",
                "-i",
                "/no/such/in.csv",
                "-c",
                "hash",
                "-o",
                out,
            ],
            "/no/such/in.csv",
        ),
        (
            vec![
                "extract_field",
                "-i",
                "/no/such/in.json",
                "-f",
                "hash",
                "-o",
                out,
            ],
            "/no/such/in.json",
        ),
        (vec!["export_everything"], "export_everything"),
    ];
    for (args, needle) in cases {
        let o = run(&args).await;
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: message should mention {needle:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
        assert!(dir_is_empty(dir.path()), "{args:?} left a file behind");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_blocks_are_retried_then_the_export_fails_naming_the_block() {
    let fault = FaultServer::start("http://127.0.0.1:9", Fault::NullResult).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("blocks.csv");
    let url = fault.url();
    let o = run(&[
        "export_blocks_and_transactions",
        "-s",
        "2",
        "-e",
        "4",
        "-p",
        &url,
        "--blocks-output",
        out.to_str().unwrap(),
        "--max-attempts",
        "3",
        "--retry-delay-ms",
        "10",
    ])
    .await;
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("block 2") && err.contains("null"), "{err}");
    assert!(err.contains("after 3 attempts"), "{err}");
    assert_eq!(fault.requests(), 3, "one request per attempt");
    assert!(dir_is_empty(dir.path()), "no partial output");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_receipts_fail_naming_the_transaction() {
    let fault = FaultServer::start("http://127.0.0.1:9", Fault::NullResult).await;
    let dir = tempfile::tempdir().unwrap();
    let hash = format!("0x{}", "ab".repeat(32));
    let hashes = dir.path().join("hashes.txt");
    std::fs::write(&hashes, format!("{hash}\n")).unwrap();
    let out = dir.path().join("out");
    let url = fault.url();
    let o = run(&[
        "export_receipts_and_logs",
        "-t",
        hashes.to_str().unwrap(),
        "-p",
        &url,
        "--logs-output",
        out.join("logs.json").to_str().unwrap(),
        "--max-attempts",
        "2",
        "--retry-delay-ms",
        "10",
    ])
    .await;
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&hash), "{err}");
    assert!(dir_is_empty(&out), "no partial output");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_keeps_answering_short_batches_fails_the_export() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    support::chain::mine(&node.url(), 6).await;
    let fault = FaultServer::start(&node.url(), Fault::ShortBatch).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("blocks.json");
    let url = fault.url();
    let o = run(&[
        "export_blocks_and_transactions",
        "-s",
        "0",
        "-e",
        "5",
        "-b",
        "3",
        "-w",
        "1",
        "-p",
        &url,
        "--blocks-output",
        out.to_str().unwrap(),
        "--max-attempts",
        "2",
        "--retry-delay-ms",
        "10",
    ])
    .await;
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("blocks 0..=2") && err.contains("2 responses to 3 requests"),
        "{err}"
    );
    assert!(dir_is_empty(dir.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_heal_within_the_retries_and_the_output_is_complete() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    let chain = build_chain(&node.url()).await;
    let end = chain.head.to_string();
    let dir = tempfile::tempdir().unwrap();
    let reference = (
        dir.path().join("ref_blocks.csv"),
        dir.path().join("ref_txs.json"),
    );
    let o = run(&[
        "export_blocks_and_transactions",
        "-e",
        &end,
        "-p",
        &node.url(),
        "--blocks-output",
        reference.0.to_str().unwrap(),
        "--transactions-output",
        reference.1.to_str().unwrap(),
    ])
    .await;
    assert!(o.status.success(), "{}", stderr(&o));

    for fault_kind in [
        Fault::ShortBatch,
        Fault::Garbage,
        Fault::Status(503),
        Fault::NullResult,
    ] {
        let fault = FaultServer::start(&node.url(), Fault::Pass).await;
        let out = (dir.path().join("blocks.csv"), dir.path().join("txs.json"));
        let url = fault.url();
        let args = [
            "export_blocks_and_transactions",
            "-e",
            &end,
            "-b",
            "4",
            "-w",
            "3",
            "-p",
            &url,
            "--blocks-output",
            out.0.to_str().unwrap(),
            "--transactions-output",
            out.1.to_str().unwrap(),
            "--retry-delay-ms",
            "300",
        ];
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        fault.set(fault_kind.clone());
        let export = tokio::spawn(async move {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            run(&a).await
        });
        // Let the first attempts fail, then heal the node.
        wait_until("two failed attempts", Duration::from_secs(60), async || {
            fault.requests() >= 2
        })
        .await;
        fault.set(Fault::Pass);
        let o = export.await.unwrap();
        let err = stderr(&o);
        assert!(o.status.success(), "{fault_kind:?}: {err}");
        assert!(
            err.contains("retrying"),
            "{fault_kind:?}: the fault was seen: {err}"
        );
        assert_files_identical(&reference.0, &out.0);
        assert_files_identical(&reference.1, &out.1);
    }
}
