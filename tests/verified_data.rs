//! Verified data (issue 19) end to end: rank 1 is a real anvil node behind the wrong-data
//! relay ([`WrongRelay`]: heads, hashes and headers true, the data wrong), rank 2 an honest
//! anvil node with the same chain, and the real `ethereumetl` exports blocks, transactions,
//! receipts, logs and token transfers:
//!
//! - through nodewatch with both upstreams (`pair`), every export is byte-identical to the
//!   direct export from rank 2, and the relay did serve its wrong answers;
//! - through nodewatch with the relay alone (`alone`), every export the fault touches fails
//!   (non-zero exit) without one wrong row; a direct JSON-RPC call gets an error naming the
//!   block and the check, `nodewatch_wrong_answers_total{upstream,method,check}` counts it and
//!   `/status` shows the upstream's wrong answers.
//!
//! One anvil pair, one relay and one nodewatch per side for every mode: the phases switch the
//! relays' modes. Each phase runs modes that corrupt different data together (a blocks mode,
//! a receipts mode, a logs mode), so its exports run at once: a failing `ethereumetl` spends
//! ~4 s in its own retries (nodewatch answers -32603, which it retries), and phases of one
//! mode each would take twice as long. The honest phase first proves verification passes
//! right data, and fills the verified-header and receipt caches, so what the relay's answers
//! are checked against is the same in every phase.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{json, Value};
use support::anvil::Anvil;
use support::chain::build_chain;
use support::etl::{self, read_csv};
use support::nodewatch::{test_config, Nodewatch};
use support::poll::wait_until;
use support::rpc::{self, RpcError};
use support::wrong::{Data, Mode, WrongRelay};

/// The block the direct calls ask about: 5 transactions, 2 token transfers.
const PROBE_BLOCK: u64 = 3;
/// nodewatch's error for a call no upstream answered rightly.
const INTERNAL_ERROR: i64 = -32603;

/// Everything the phases share.
struct Rig {
    head: u64,
    honest: String,
    /// Rank 1 of `pair`, and the only upstream of `alone`: two relays in front of the same
    /// node, so each side's tampered answers are counted apart.
    pair_relay: WrongRelay,
    alone_relay: WrongRelay,
    pair: Nodewatch,
    alone: Nodewatch,
    dir: tempfile::TempDir,
    /// Transaction hashes, from the reference blocks export.
    hashes: PathBuf,
    _nodes: (Anvil, Anvil),
}

/// The relay stays in rotation however many wrong answers it gives (the quarantine is the
/// proxy's own tests' business): every phase must reach it.
fn config(upstreams: &[String]) -> nodewatch::config::Config {
    let mut config = test_config(upstreams);
    config.verify.quarantine_after = u32::MAX;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_through_nodewatch_never_carry_wrong_data() {
    let Some(tools) = support::tools::require_all() else {
        return;
    };
    let started = Instant::now();
    let rig = Rig::start(&tools.anvil).await;
    phase_an_honest_relay_passes_verification(&rig).await;
    phase_issue_cases_a_c_d(&rig).await;
    phase_issue_case_b_a_missing_block_and_transaction(&rig).await;
    phase_changed_status_and_value(&rig).await;
    phase_foreign_receipt_and_changed_input(&rig).await;
    phase_wrong_log_index(&rig).await;
    phase_changed_log_data(&rig).await;
    phase_changed_gas_used(&rig).await;
    no_withdrawals_to_change(&rig).await;
    eprintln!(
        "FIGURE verified-data: {} wrong modes, every export through nodewatch byte-identical to rank 2, every relay-only export failed without a wrong row ({:.1}s)",
        Mode::ALL.len() - 1, // all but WithdrawalAmount
        started.elapsed().as_secs_f64()
    );
}

// === phases ===

async fn phase_an_honest_relay_passes_verification(rig: &Rig) {
    let t = Instant::now();
    let runs = [Data::Blocks, Data::Receipts, Data::Logs]
        .map(|data| rig.export(data, &rig.alone.url, format!("honest/{data:?}")));
    for (data, out) in [Data::Blocks, Data::Receipts, Data::Logs]
        .into_iter()
        .zip(join_all(runs).await)
    {
        assert!(out.ok, "{data:?} through an honest relay: {}", out.stderr);
        rig.assert_identical(data, &out.dir);
    }
    assert_eq!(wrong_answers(&rig.alone).await, BTreeMap::new());
    assert_eq!(rig.alone_relay.tampered(), 0);
    phase_done("honest relay", t);
}

/// (a) receipts lose their last log, (c) `eth_getLogs` answers `[]`, (d) blocks come
/// without their transactions.
async fn phase_issue_cases_a_c_d(rig: &Rig) {
    rig.round(&[Mode::DropLastLog, Mode::EmptyLogs, Mode::EmptyBlocks])
        .await;
}

/// (b) as (a) with the receipt blooms made to match, a block's logs missing from
/// `eth_getLogs`, a block's last transaction missing.
async fn phase_issue_case_b_a_missing_block_and_transaction(rig: &Rig) {
    rig.round(&[
        Mode::DropLastLogFixBloom,
        Mode::LogsMissingBlock,
        Mode::DropLastTx,
    ])
    .await;
}

async fn phase_changed_status_and_value(rig: &Rig) {
    rig.round(&[Mode::ReceiptStatus, Mode::TxValue]).await;
}

async fn phase_foreign_receipt_and_changed_input(rig: &Rig) {
    rig.round(&[Mode::ForeignReceipt, Mode::TxInput]).await;
}

async fn phase_wrong_log_index(rig: &Rig) {
    rig.round(&[Mode::LogIndex]).await;
}

async fn phase_changed_log_data(rig: &Rig) {
    rig.round(&[Mode::LogData]).await;
}

async fn phase_changed_gas_used(rig: &Rig) {
    rig.round(&[Mode::GasUsed]).await;
}

/// [`Mode::WithdrawalAmount`] is left to the relay's unit tests: anvil blocks carry no
/// withdrawals. Asserted, so the day they do this test is told to run it.
async fn no_withdrawals_to_change(rig: &Rig) {
    for n in 0..=rig.head {
        let block = rpc::call(&rig.honest, "eth_getBlockByNumber", json!([hex(n), false])).await;
        assert_eq!(
            block["withdrawals"],
            json!([]),
            "block {n} has withdrawals: add a phase"
        );
    }
}

fn phase_done(name: &str, t: Instant) {
    eprintln!("PHASE {name}: {:.1}s", t.elapsed().as_secs_f64());
}

// === impl Rig ===

/// One `ethereumetl` run.
struct Ran {
    ok: bool,
    stderr: String,
    dir: PathBuf,
    took: Duration,
}

impl Rig {
    async fn start(anvil: &Path) -> Rig {
        let (node, honest) = (Anvil::spawn(anvil).await, Anvil::spawn(anvil).await);
        let chain = build_chain(&node.url()).await;
        assert_eq!(
            chain.block_hashes,
            build_chain(&honest.url()).await.block_hashes
        );
        let pair_relay = WrongRelay::start(&node.url()).await;
        let alone_relay = WrongRelay::start(&node.url()).await;
        let pair = Nodewatch::start_with(config(&[pair_relay.url(), honest.url()])).await;
        let alone = Nodewatch::start_with(config(&[alone_relay.url()])).await;
        let dir = tempfile::tempdir().unwrap();
        let rig = Rig {
            head: chain.head,
            honest: honest.url(),
            pair_relay,
            alone_relay,
            pair,
            alone,
            hashes: dir.path().join("tx_hashes.txt"),
            dir,
            _nodes: (node, honest),
        };
        // The reference, straight from rank 2: blocks first (the hashes come from them).
        let t = Instant::now();
        let blocks = rig
            .export(Data::Blocks, &rig.honest, "reference".into())
            .await;
        assert!(blocks.ok, "{}", blocks.stderr);
        let txs = read_csv(&blocks.dir.join("transactions.csv"));
        let hashes: Vec<&str> = txs.iter().map(|row| row["hash"].as_str()).collect();
        std::fs::write(&rig.hashes, hashes.join("\n") + "\n").unwrap();
        let rest =
            [Data::Receipts, Data::Logs].map(|d| rig.export(d, &rig.honest, "reference".into()));
        for out in join_all(rest).await {
            assert!(out.ok, "{}", out.stderr);
        }
        let transfers = read_csv(&rig.reference(Data::Logs)[0]);
        assert!(transfers.len() > 10, "the chain has ERC-20 transfers");
        rig.pair.wait_all_healthy().await;
        rig.alone.wait_all_healthy().await;
        phase_done("anvil pair, reference exports", t);
        rig
    }

    /// The reference files of `data`.
    fn reference(&self, data: Data) -> Vec<PathBuf> {
        let dir = self.dir.path().join("reference");
        data.files().iter().map(|f| dir.join(f)).collect()
    }

    fn assert_identical(&self, data: Data, dir: &Path) {
        data.assert_identical(dir, &self.dir.path().join("reference"));
    }

    /// Runs the `ethereumetl` export of `data` from `url` into `<tmp>/<sub>/`.
    async fn export(&self, data: Data, url: &str, sub: String) -> Ran {
        let dir = self.dir.path().join(sub);
        std::fs::create_dir_all(&dir).unwrap();
        let (end, out) = (self.head.to_string(), |f: &str| dir.join(f));
        let args = match data {
            Data::Blocks => etl::blocks_and_transactions(
                url,
                (0, self.head),
                Some(&out("blocks.csv")),
                Some(&out("transactions.csv")),
                &["-w", "1"],
            ),
            // One batch for all the receipts: a failing export stops at its first batch
            // (a second one would be queued behind it and retried too, 5 s more).
            Data::Receipts => etl::receipts_and_logs(
                url,
                &self.hashes,
                Some(&out("receipts.csv")),
                Some(&out("logs.csv")),
                &["-w", "1", "-b", "1000"],
            ),
            Data::Logs => etl::args(&[
                "export_token_transfers",
                "-s",
                "0",
                "-e",
                &end,
                "-w",
                "1",
                "-p",
                url,
                "-o",
                out("token_transfers.csv").to_str().unwrap(),
            ]),
        };
        let bin = support::tools::ethereumetl_path().expect("ethereumetl");
        let mut cmd = tokio::process::Command::from(support::tools::scrubbed(&bin));
        cmd.args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started = Instant::now();
        let run = tokio::time::timeout(Duration::from_secs(120), cmd.output());
        let output = run.await.expect("ethereumetl finished").expect("ran");
        Ran {
            ok: output.status.success(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            dir,
            took: started.elapsed(),
        }
    }

    /// One phase: the relays in `modes`; the exports of the data they corrupt, through
    /// `pair` and through `alone` at once; then a direct call per mode and data.
    async fn round(&self, modes: &[Mode]) {
        let t = Instant::now();
        let name = modes
            .iter()
            .map(|m| format!("{m:?}"))
            .collect::<Vec<_>>()
            .join("+");
        self.pair_relay.set_modes(modes);
        self.alone_relay.set_modes(modes);
        let tampered = |relay: &WrongRelay| -> Vec<u64> {
            modes.iter().map(|&m| relay.tampered_by(m)).collect()
        };
        let before = (tampered(&self.pair_relay), tampered(&self.alone_relay));
        let wrong_before = (
            wrong_answers(&self.pair).await,
            status_wrong_answers(&self.pair).await,
            status_wrong_answers(&self.alone).await,
        );
        let data: Vec<Data> = modes.iter().flat_map(|m| m.corrupts()).copied().collect();
        let mut runs = Vec::new();
        for &d in &data {
            runs.push(self.export(d, &self.pair.url, format!("{name}/pair/{d:?}")));
            runs.push(self.export(d, &self.alone.url, format!("{name}/alone/{d:?}")));
        }
        let mut ran = join_all(runs).await.into_iter();
        let mut took = Vec::new();
        for &d in &data {
            let (pair, alone) = (ran.next().unwrap(), ran.next().unwrap());
            took.push(format!(
                "{d:?} {:.1}s/{:.1}s",
                pair.took.as_secs_f64(),
                alone.took.as_secs_f64()
            ));
            assert!(
                pair.ok,
                "{name}: {d:?} through rank 1 + 2 failed: {}",
                pair.stderr
            );
            self.assert_identical(d, &pair.dir);
            assert!(!alone.ok, "{name}: {d:?} through the relay alone succeeded");
            assert!(
                alone.stderr.contains("verified answer") || alone.stderr.contains("verified:"),
                "{name}: {d:?} failed for another reason than verification: {}",
                tail(&alone.stderr)
            );
            self.assert_no_wrong_row(&name, d, &alone.dir);
        }
        let after = (tampered(&self.pair_relay), tampered(&self.alone_relay));
        for (i, mode) in modes.iter().enumerate() {
            assert!(
                after.0[i] > before.0[i],
                "{mode:?}: rank 1 never served its fault"
            );
            assert!(
                after.1[i] > before.1[i],
                "{mode:?}: the lone relay never served it"
            );
        }
        for &mode in modes {
            for &d in mode.corrupts() {
                self.direct_calls(mode, d).await;
            }
        }
        self.counted(&name, &data, wrong_before).await;
        self.pair_relay.set_modes(&[]);
        self.alone_relay.set_modes(&[]);
        phase_done(
            &format!("{name} (exports pair/alone: {})", took.join(", ")),
            t,
        );
    }

    /// Every row a failed export wrote (if any) is a row of the reference.
    fn assert_no_wrong_row(&self, name: &str, data: Data, dir: &Path) {
        for (file, reference) in data.files().iter().zip(self.reference(data)) {
            let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
                continue;
            };
            let right: BTreeSet<String> = std::fs::read_to_string(reference)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect();
            for line in text.lines() {
                assert!(right.contains(line), "{name}: wrong row in {file}: {line}");
            }
        }
    }

    /// The direct call of `data` at [`PROBE_BLOCK`]: the right answer through `pair`, an
    /// error naming the block and the check through `alone`.
    async fn direct_calls(&self, mode: Mode, data: Data) {
        let (method, params) = probe(data);
        let right = rpc::call(&self.honest, method, params.clone()).await;
        let got = rpc::call(&self.pair.url, method, params.clone()).await;
        assert_eq!(got, right, "{mode:?}: {method} through rank 1 + 2");
        let err = rpc::try_call(&self.alone.url, method, params.clone()).await;
        let Err(RpcError::Rpc {
            code,
            message,
            data: Some(detail),
        }) = err
        else {
            panic!("{mode:?}: {method} through the relay alone: {err:?}");
        };
        assert_eq!(code, INTERNAL_ERROR, "{message}");
        let check = detail["check"].as_str().unwrap_or_default();
        assert!(
            expected_checks(mode, data).contains(&check),
            "{mode:?}: {method} failed the {check:?} check: {message}"
        );
        let words = format!("{} check failed", check.replace('_', " "));
        assert!(message.contains(&words), "{message}");
        let block = detail["block"].as_u64().expect("the block number");
        let blocks = match mode {
            Mode::ForeignReceipt => vec![PROBE_BLOCK, PROBE_BLOCK - 1],
            _ => vec![PROBE_BLOCK],
        };
        assert!(blocks.contains(&block), "{mode:?}: {message}");
        assert!(message.contains(&format!("block {block}")), "{message}");
        assert_eq!(detail["upstream"], "u1", "{message}");
        eprintln!("  {mode:?} {method} through the relay alone: {message}");
        let counted = wrong_answers(&self.alone).await;
        assert!(
            counted.get(&("u1".into(), method.into(), check.into())) > Some(&0.0),
            "{mode:?}: not in nodewatch_wrong_answers_total: {counted:?}"
        );
    }

    /// The wrong answers of the phase are on `/metrics` (pair: by method of each data) and
    /// `/status` (both).
    async fn counted(
        &self,
        name: &str,
        data: &[Data],
        (metrics, pair_status, alone_status): (BTreeMap<Key, f64>, u64, u64),
    ) {
        let now = wrong_answers(&self.pair).await;
        for &d in data {
            let sum = |m: &BTreeMap<Key, f64>| -> f64 {
                m.iter()
                    .filter(|((u, method, _), _)| u == "u1" && methods(d).contains(&&**method))
                    .map(|(_, v)| v)
                    .sum()
            };
            assert!(
                sum(&now) > sum(&metrics),
                "{name}: no wrong {d:?} answer of u1 counted: {now:?}"
            );
        }
        for (nw, before) in [(&self.pair, pair_status), (&self.alone, alone_status)] {
            let more = async || status_wrong_answers(nw).await > before;
            wait_until(
                "/status to show the wrong answers",
                Duration::from_secs(5),
                more,
            )
            .await;
        }
        let (_, text) = rpc::get(&format!("{}/status", self.alone.admin)).await;
        let status: Value = serde_json::from_str(&text).unwrap();
        let evidence = status["upstreams"][0]["last_wrong"][0]
            .as_str()
            .unwrap_or("");
        assert!(
            evidence.contains("check failed"),
            "{name}: /status: {status}"
        );
    }
}

// === what each data is ===

/// The methods whose wrong answers the exports of `data` meet.
fn methods(data: Data) -> &'static [&'static str] {
    match data {
        Data::Blocks => &["eth_getBlockByNumber"],
        Data::Receipts => &["eth_getTransactionReceipt", "eth_getBlockReceipts"],
        Data::Logs => &["eth_getLogs"],
    }
}

/// The direct call about [`PROBE_BLOCK`] for `data`.
fn probe(data: Data) -> (&'static str, Value) {
    let n = hex(PROBE_BLOCK);
    match data {
        Data::Blocks => ("eth_getBlockByNumber", json!([n, true])),
        Data::Receipts => ("eth_getBlockReceipts", json!([n])),
        Data::Logs => ("eth_getLogs", json!([{"fromBlock": n, "toBlock": n}])),
    }
}

/// The checks that may catch `mode` in a direct call of `data` (nodewatch-verify's labels).
fn expected_checks(mode: Mode, data: Data) -> &'static [&'static str] {
    match (mode, data) {
        (Mode::EmptyBlocks | Mode::DropLastTx, _) => &["transactions_root", "count"],
        (Mode::TxValue | Mode::TxInput, _) => &["transaction_hash", "transactions_root"],
        (Mode::DropLastLog, _) => &["receipt_bloom", "logs_bloom", "receipts_root"],
        (Mode::DropLastLogFixBloom, _) => &["logs_bloom", "receipts_root"],
        (Mode::ReceiptStatus | Mode::GasUsed, _) => &["receipts_root", "receipt", "count"],
        (Mode::ForeignReceipt, _) => &["position", "count", "receipts_root", "logs_bloom"],
        (Mode::LogIndex, _) => &["position", "logs", "logs_missing"],
        (Mode::LogData, Data::Logs) => &["logs"],
        (Mode::LogData, _) => &["receipts_root"],
        (Mode::EmptyLogs | Mode::LogsMissingBlock, _) => &["logs_missing"],
        (Mode::WithdrawalAmount, _) => &["withdrawals_root"],
    }
}

// === what nodewatch reports ===

/// (upstream, method, check).
type Key = (String, String, String);

/// `nodewatch_wrong_answers_total` as `/metrics` shows it, by its labels.
async fn wrong_answers(nw: &Nodewatch) -> BTreeMap<Key, f64> {
    let (_, text) = rpc::get(&format!("{}/metrics", nw.admin)).await;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("nodewatch_wrong_answers_total{") else {
            continue;
        };
        let (labels, value) = rest.split_once("} ").expect("a sample line");
        let labels: BTreeMap<&str, &str> = labels
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k, v.trim_matches('"')))
            .collect();
        let key = (labels["upstream"], labels["method"], labels["check"]);
        let key = (key.0.to_owned(), key.1.to_owned(), key.2.to_owned());
        out.insert(key, value.parse().unwrap());
    }
    out.retain(|_, v| *v > 0.0);
    out
}

/// Rank 1's wrong answers as `/status` shows them.
async fn status_wrong_answers(nw: &Nodewatch) -> u64 {
    let (_, text) = rpc::get(&format!("{}/status", nw.admin)).await;
    let status: Value = serde_json::from_str(&text).unwrap();
    status["upstreams"][0]["wrong_answers"]
        .as_u64()
        .unwrap_or(0)
}

fn hex(n: u64) -> String {
    format!("{n:#x}")
}

/// The last lines of a long stderr.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
