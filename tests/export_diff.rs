//! `nodewatch-export` against the real `ethereumetl` 2.4.2 on the same anvil
//! chain: every command, CSV and JSON, byte for byte.
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
mod support {
    pub mod anvil;
    pub mod chain;
    pub mod etl;
    pub mod rpc;
    pub mod tools;
}

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use support::anvil::Anvil;
use support::chain::{build_chain, ChainInfo, TRANSFER_TOPIC};
use support::etl::{assert_files_identical, run_ethereumetl};
use support::rpc::call;

const ETL_TIMEOUT: Duration = Duration::from_secs(120);

/// A node with the fixture chain plus the extra blocks; everything a test needs.
struct Fixture {
    _node: Anvil,
    url: String,
    chain: ChainInfo,
    head: u64,
    /// All transaction hashes, in block order, including the extra blocks.
    tx_hashes: Vec<String>,
    dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Option<Fixture> {
        let tools = support::tools::require_all()?;
        let node = Anvil::spawn(&tools.anvil).await;
        let url = node.url();
        let chain = build_chain(&url).await;
        let extra = add_token_corner_cases(&url, &chain).await;
        let head = support::rpc::block_number(&url).await;
        let mut tx_hashes = chain.tx_hashes.clone();
        tx_hashes.extend(extra);
        Some(Fixture {
            _node: node,
            url,
            chain,
            head,
            tx_hashes,
            dir: tempfile::tempdir().unwrap(),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn hashes_file(&self) -> PathBuf {
        let p = self.path("tx_hashes.txt");
        std::fs::write(&p, self.tx_hashes.join("\n") + "\n").unwrap();
        p
    }
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| a.to_string()).collect()
}

/// Runs nodewatch-export and panics with its stderr when it fails.
fn ours(args: &[String]) -> Duration {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_nodewatch-export"))
        .args(args)
        .arg("--quiet")
        .output()
        .expect("run nodewatch-export");
    assert!(
        out.status.success(),
        "nodewatch-export {} failed: {}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed()
}

async fn etl(args: &[String]) -> Duration {
    let started = Instant::now();
    run_ethereumetl(args, ETL_TIMEOUT).await;
    started.elapsed()
}

/// Deploys raw contracts and sends the calls described in the module docs in
/// two extra blocks; returns the hashes of their transactions in block order.
async fn add_token_corner_cases(url: &str, chain: &ChainInfo) -> Vec<String> {
    let topic = TRANSFER_TOPIC.trim_start_matches("0x");
    // LOG4(Transfer, caller, calldata[32], calldata[0]) without data: ERC-721 style.
    let erc721 = format!("600035602035337f{topic}60006000a400");
    // LOG1(Transfer) with 3 data words, LOG1(Transfer) with 2 data words, LOG0.
    let odd = format!("7f{topic}60606000a17f{topic}60406000a160206000a000");
    let from = chain.accounts[9].clone();
    let send = |req: serde_json::Value| async move {
        let hash = call(url, "eth_sendTransaction", json!([req])).await;
        hash.as_str().unwrap().to_owned()
    };
    call(url, "evm_setAutomine", json!([false])).await;
    let mut deployments = Vec::new();
    for runtime in [erc721, odd] {
        let init = format!("0x60{:02x}80600b6000396000f3{runtime}", runtime.len() / 2);
        deployments.push(send(json!({"from": from, "data": init, "gas": "0x100000"})).await);
    }
    call(url, "evm_mine", json!([])).await;
    let mut contracts = Vec::new();
    for hash in &deployments {
        let r = call(url, "eth_getTransactionReceipt", json!([hash])).await;
        contracts.push(r["contractAddress"].as_str().unwrap().to_owned());
    }
    let word = |hex: &str| format!("{:0>64}", hex.trim_start_matches("0x"));
    let max_u256 = "f".repeat(64);
    let two_pow_80 = format!("1{}", "0".repeat(20));
    for req in [
        json!({"from": from, "to": contracts[0], "data": format!("0x{max_u256}{}", word(&chain.accounts[1])), "gas": "0x30000"}),
        json!({"from": from, "to": contracts[1], "data": "0x", "gas": "0x30000"}),
        json!({"from": from, "to": chain.token, "data": format!("0x{}{}", word(&chain.accounts[2]), word(&two_pow_80)), "gas": "0x30000"}),
        json!({"from": from, "to": chain.accounts[3], "value": "0x1000000000000000007", "gas": "0x5208"}),
    ] {
        send(req).await;
    }
    call(url, "evm_mine", json!([])).await;
    call(url, "evm_setAutomine", json!([true])).await;
    let head = support::rpc::block_number(url).await;
    let mut hashes = Vec::new();
    for n in [head - 1, head] {
        let block = call(
            url,
            "eth_getBlockByNumber",
            json!([format!("{n:#x}"), false]),
        )
        .await;
        let txs: Vec<String> = serde_json::from_value(block["transactions"].clone()).unwrap();
        hashes.extend(txs);
    }
    assert_eq!(
        hashes.len(),
        6,
        "all corner-case transactions mined in the two extra blocks"
    );
    hashes
}

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
        let t_etl = etl(&args(&[
            "export_blocks_and_transactions",
            "-s",
            "0",
            "-e",
            &end,
            "-w",
            "1",
            "-p",
            &fx.url,
            "--blocks-output",
            &s(&eb),
            "--transactions-output",
            &s(&et),
        ]))
        .await;
        let t_ours = ours(&args(&[
            "export_blocks_and_transactions",
            "-s",
            "0",
            "-e",
            &end,
            "-b",
            "3",
            "-w",
            "4",
            "-p",
            &fx.url,
            "--blocks-output",
            &s(&ob),
            "--transactions-output",
            &s(&ot),
        ]));
        assert_files_identical(&eb, &ob);
        assert_files_identical(&et, &ot);
        eprintln!("FIGURE export-blocks-{ext}: blocks 0..={end}: ethereumetl {t_etl:?}, nodewatch-export {t_ours:?}");
    }
    // Blocks only: transactions come as hashes, transaction_count still counts them.
    let (eb, ob) = (
        fx.path("etl_only_blocks.csv"),
        fx.path("our_only_blocks.csv"),
    );
    etl(&args(&[
        "export_blocks_and_transactions",
        "-s",
        "5",
        "-e",
        "12",
        "-w",
        "1",
        "-p",
        &fx.url,
        "--blocks-output",
        &s(&eb),
    ]))
    .await;
    ours(&args(&[
        "export_blocks_and_transactions",
        "-s",
        "5",
        "-e",
        "12",
        "-p",
        &fx.url,
        "--blocks-output",
        &s(&ob),
    ]));
    assert_files_identical(&eb, &ob);
    assert!(std::fs::read_to_string(&ob).unwrap().lines().count() == 9);
    // An empty block range slice with transactions only: empty-block range gives an empty file.
    let empty = fx.chain.empty_blocks[0].to_string();
    let (et, ot) = (fx.path("etl_empty_txs.csv"), fx.path("our_empty_txs.csv"));
    etl(&args(&[
        "export_blocks_and_transactions",
        "-s",
        &empty,
        "-e",
        &empty,
        "-p",
        &fx.url,
        "--transactions-output",
        &s(&et),
    ]))
    .await;
    ours(&args(&[
        "export_blocks_and_transactions",
        "-s",
        &empty,
        "-e",
        &empty,
        "-p",
        &fx.url,
        "--transactions-output",
        &s(&ot),
    ]));
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
        let t_etl = etl(&args(&[
            "export_receipts_and_logs",
            "-t",
            &s(&hashes),
            "-w",
            "1",
            "-p",
            &fx.url,
            "--receipts-output",
            &s(&er),
            "--logs-output",
            &s(&el),
        ]))
        .await;
        let t_ours = ours(&args(&[
            "export_receipts_and_logs",
            "-t",
            &s(&hashes),
            "-b",
            "7",
            "-w",
            "3",
            "-p",
            &fx.url,
            "--receipts-output",
            &s(&or),
            "--logs-output",
            &s(&ol),
        ]));
        assert_files_identical(&er, &or);
        assert_files_identical(&el, &ol);
        eprintln!(
            "FIGURE export-receipts-{ext}: {} receipts: ethereumetl {t_etl:?}, nodewatch-export {t_ours:?}",
            fx.tx_hashes.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_transfers_are_byte_identical() {
    let Some(fx) = Fixture::new().await else {
        return;
    };
    let end = fx.head.to_string();
    // Logs to extract from, in both formats (written by ethereumetl itself).
    let hashes = fx.hashes_file();
    let (logs_csv, logs_json) = (fx.path("logs.csv"), fx.path("logs.json"));
    for logs in [&logs_csv, &logs_json] {
        etl(&args(&[
            "export_receipts_and_logs",
            "-t",
            &s(&hashes),
            "-w",
            "1",
            "-p",
            &fx.url,
            "--logs-output",
            &s(logs),
        ]))
        .await;
    }
    for input in [&logs_csv, &logs_json] {
        for ext in ["csv", "json"] {
            for extra in [None, Some("--values-as-strings")] {
                let tag = format!(
                    "{}_{}_{ext}",
                    input.extension().unwrap().to_str().unwrap(),
                    extra.is_some()
                );
                let (e, o) = (
                    fx.path(&format!("etl_tt_{tag}.{ext}")),
                    fx.path(&format!("our_tt_{tag}.{ext}")),
                );
                let mut a = args(&["extract_token_transfers", "-l", &s(input), "-o"]);
                a.extend(extra.map(str::to_owned));
                let (mut ae, mut ao) = (a.clone(), a);
                ae.insert(4, s(&e));
                ao.insert(4, s(&o));
                etl(&ae).await;
                ours(&ao);
                assert_files_identical(&e, &o);
            }
        }
    }
    for ext in ["csv", "json"] {
        let (e, o) = (
            fx.path(&format!("etl_ett.{ext}")),
            fx.path(&format!("our_ett.{ext}")),
        );
        let t_etl = etl(&args(&[
            "export_token_transfers",
            "-s",
            "0",
            "-e",
            &end,
            "-w",
            "1",
            "-p",
            &fx.url,
            "-o",
            &s(&e),
        ]))
        .await;
        let t_ours = ours(&args(&[
            "export_token_transfers",
            "-s",
            "0",
            "-e",
            &end,
            "-b",
            "4",
            "-w",
            "3",
            "-p",
            &fx.url,
            "-o",
            &s(&o),
        ]));
        assert_files_identical(&e, &o);
        eprintln!("FIGURE export-token-transfers-{ext}: blocks 0..={end}: ethereumetl {t_etl:?}, nodewatch-export {t_ours:?}");
    }
    let rows = std::fs::read_to_string(fx.path("our_ett.csv"))
        .unwrap()
        .lines()
        .count();
    assert!(rows > 10, "the chain has token transfers ({rows} lines)");
    // Filtered by token address. ethereumetl 2.4.2's own `-t` crashes in web3 5 / eth-abi 2
    // with the parsimonious 0.10 it must be installed with (VisitationError while formatting
    // the filter), so the reference is its unfiltered export restricted to that token.
    let o = fx.path("our_ett_token.csv");
    let upper = fx.chain.token.to_uppercase().replace("0X", "0x");
    ours(&args(&[
        "export_token_transfers",
        "-s",
        "0",
        "-e",
        &end,
        "-p",
        &fx.url,
        "-t",
        &upper,
        "-t",
        "0x000000000000000000000000000000000000dead",
        "-o",
        &s(&o),
    ]));
    let reference = std::fs::read_to_string(fx.path("etl_ett.csv")).unwrap();
    let mut lines = reference.split_inclusive("\r\n");
    let mut expected: String = lines.next().unwrap().to_owned();
    expected.extend(lines.filter(|l| l.starts_with(&format!("{},", fx.chain.token))));
    assert!(
        expected.lines().count() > 5,
        "the fixture token has transfers"
    );
    assert_eq!(std::fs::read_to_string(&o).unwrap(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extract_csv_column_and_extract_field_are_byte_identical() {
    let Some(fx) = Fixture::new().await else {
        return;
    };
    let end = fx.head.to_string();
    let (txs_csv, txs_json) = (fx.path("txs.csv"), fx.path("txs.json"));
    for out in [&txs_csv, &txs_json] {
        etl(&args(&[
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
            &s(out),
        ]))
        .await;
    }
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            args(&["extract_csv_column", "-i", &s(&txs_csv), "-c", "hash"]),
            "col_hash",
        ),
        (
            args(&["extract_csv_column", "-i", &s(&txs_csv), "-c", "to_address"]),
            "col_to",
        ),
        (
            args(&["extract_field", "-i", &s(&txs_csv), "-f", "input"]),
            "field_csv",
        ),
        (
            args(&["extract_field", "-i", &s(&txs_json), "-f", "hash"]),
            "field_json",
        ),
    ];
    for (a, tag) in cases {
        let (e, o) = (
            fx.path(&format!("etl_{tag}.txt")),
            fx.path(&format!("our_{tag}.txt")),
        );
        let mut ae = a.clone();
        ae.extend(["-o".to_owned(), s(&e)]);
        let mut ao = a;
        ao.extend(["-o".to_owned(), s(&o)]);
        etl(&ae).await;
        ours(&ao);
        assert_files_identical(&e, &o);
    }
    let hashes = std::fs::read_to_string(fx.path("our_col_hash.txt")).unwrap();
    assert_eq!(hashes.lines().collect::<Vec<_>>(), fx.tx_hashes);
}

/// Runs a command and returns its stdout, panicking with its stderr when it fails.
fn stdout_of(bin: &Path, args: &[String]) -> Vec<u8> {
    let out = Command::new(bin)
        .args(args)
        .env("NO_PROXY", "*")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run command");
    assert!(
        out.status.success(),
        "{} {} failed: {}",
        bin.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
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
