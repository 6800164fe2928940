//! The exporter test fixture (the anvil chain with the token corner cases added) and the one
//! runner of `nodewatch-export` ([`exporter`], [`ours`]) next to `ethereumetl`'s ([`etl`]),
//! both with the one environment scrub, that the byte-for-byte tests compare.

pub mod stream;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::anvil::Anvil;
use crate::chain::{build_chain, ChainInfo, TRANSFER_TOPIC};
use crate::etl::run_ethereumetl;
pub use crate::etl::{args, blocks_and_transactions, receipts_and_logs};
use crate::rpc::call;
use serde_json::json;

pub const ETL_TIMEOUT: Duration = Duration::from_secs(120);

/// A node with the fixture chain plus the extra blocks; everything a test needs.
pub struct Fixture {
    _node: Anvil,
    pub url: String,
    pub chain: ChainInfo,
    pub head: u64,
    /// All transaction hashes, in block order, including the extra blocks.
    pub tx_hashes: Vec<String>,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub async fn new() -> Option<Fixture> {
        let tools = crate::tools::require_all()?;
        let node = Anvil::spawn(&tools.anvil).await;
        let url = node.url();
        let chain = build_chain(&url).await;
        let extra = add_token_corner_cases(&url, &chain).await;
        let head = crate::rpc::block_number(&url).await;
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

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn hashes_file(&self) -> PathBuf {
        let p = self.path("tx_hashes.txt");
        std::fs::write(&p, self.tx_hashes.join("\n") + "\n").unwrap();
        p
    }
}

pub fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

/// `nodewatch-export <args>` with the one environment scrub ([`crate::tools::scrubbed`]):
/// the one way the tests start the exporter (run it, spawn it, signal it).
pub fn exporter<S: AsRef<OsStr>>(args: &[S]) -> Command {
    let mut cmd = crate::tools::scrubbed(crate::binary::exporter_path());
    cmd.args(args);
    cmd
}

/// [`exporter`] as a tokio command, killed when dropped.
pub fn exporter_async<S: AsRef<OsStr>>(args: &[S]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::from(exporter(args));
    cmd.kill_on_drop(true);
    cmd
}

/// Runs `nodewatch-export <args> --quiet`; panics with its stderr when it fails.
pub fn ours_output<S: AsRef<OsStr>>(args: &[S]) -> Output {
    let out = exporter(args)
        .arg("--quiet")
        .output()
        .expect("run nodewatch-export");
    let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
    assert!(
        out.status.success(),
        "nodewatch-export {} failed: {}\n{}",
        shown.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs nodewatch-export and panics with its stderr when it fails; returns how long it took.
pub fn ours(args: &[String]) -> Duration {
    let started = Instant::now();
    ours_output(args);
    started.elapsed()
}

pub async fn etl(args: &[String]) -> Duration {
    let started = Instant::now();
    run_ethereumetl(args, ETL_TIMEOUT).await;
    started.elapsed()
}

/// Deploys raw contracts and sends the calls described in the module docs in
/// two extra blocks; returns the hashes of their transactions in block order.
pub async fn add_token_corner_cases(url: &str, chain: &ChainInfo) -> Vec<String> {
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
    let head = crate::rpc::block_number(url).await;
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

/// Runs a command (scrubbed) and returns its stdout, panicking with its stderr when it fails.
pub fn stdout_of(bin: &Path, args: &[String]) -> Vec<u8> {
    let out = crate::tools::scrubbed(bin)
        .args(args)
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
