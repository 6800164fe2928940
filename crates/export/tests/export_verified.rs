//! Verified data (issue 19) in `nodewatch-export`: rank 1 is a real anvil node behind the
//! wrong-data relay (heads, hashes and headers true, the data wrong), the honest node has the
//! same chain. For every mode of the relay and every export the mode corrupts:
//!
//! - `-p relay,honest` writes the same bytes as an export from the honest node alone, and the
//!   relay did serve its wrong answers;
//! - `-p relay` exits non-zero with one line naming the block and the check, and leaves no
//!   output file behind;
//! - `--no-verify -p relay` writes the wrong rows: the check is what caught them.

#[allow(dead_code, unused_imports, unused_macros)]
use nodewatch_testkit as support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use support::anvil::Anvil;
use support::chain::build_chain;
use support::etl::{args, blocks_and_transactions, receipts_and_logs};
use support::export::exporter_async;
use support::wrong::{Data, Mode, WrongRelay};

/// Fast failure: two attempts per provider, 10 ms apart.
const RETRY: [&str; 4] = ["--max-attempts", "2", "--retry-delay-ms", "10"];

struct Rig {
    head: u64,
    honest: String,
    relay: WrongRelay,
    dir: tempfile::TempDir,
    hashes: PathBuf,
    _nodes: (Anvil, Anvil),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_never_write_wrong_data_and_fail_when_no_provider_answers_right() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let started = Instant::now();
    let rig = Rig::start(&anvil).await;
    for mode in Mode::ALL {
        if mode == Mode::WithdrawalAmount {
            continue; // anvil blocks have no withdrawals (tests/verified_data.rs asserts it)
        }
        rig.relay.set_mode(mode);
        for &data in mode.corrupts() {
            phase(&rig, mode, data).await;
        }
    }
    eprintln!(
        "FIGURE export-verified: {} wrong modes caught by nodewatch-export ({:.1}s)",
        Mode::ALL.len() - 1,
        started.elapsed().as_secs_f64()
    );
}

/// One mode and one export: through `relay,honest`, the relay alone, and unverified.
async fn phase(rig: &Rig, mode: Mode, data: Data) {
    let t = Instant::now();
    let name = format!("{mode:?}-{data:?}");
    let pair = format!("{},{}", rig.relay.url(), rig.honest);

    let before = rig.relay.tampered_by(mode);
    let out = rig
        .export(data, &pair, &format!("{name}/pair"), &RETRY)
        .await;
    assert!(
        out.status.success(),
        "{name}: relay,honest: {}",
        stderr(&out)
    );
    rig.assert_identical(data, &rig.dir.path().join(format!("{name}/pair")));
    assert!(
        rig.relay.tampered_by(mode) > before,
        "{name}: the relay never served its fault"
    );

    let alone_dir = rig.dir.path().join(format!("{name}/alone"));
    let out = rig
        .export(data, &rig.relay.url(), &format!("{name}/alone"), &RETRY)
        .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{name}: relay alone: {err}");
    assert!(!err.contains("panicked"), "{name}: {err}");
    // Retries are warned about on the way; the error itself is one line, the last.
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("Error")).collect();
    assert_eq!(errors.len(), 1, "{name}: one error line: {err}");
    assert_eq!(err.trim_end().lines().last(), Some(errors[0]), "{err}");
    let line = errors[0];
    assert!(names_a_block(line), "{name}: no block named: {line}");
    assert!(
        expected_checks(mode, data)
            .iter()
            .any(|c| line.contains(&format!("{} check failed", c.replace('_', " ")))),
        "{name}: not one of the checks {:?}: {line}",
        expected_checks(mode, data)
    );
    assert!(
        std::fs::read_dir(&alone_dir).unwrap().next().is_none(),
        "{name}: a file was left behind"
    );

    let mut unverified = RETRY.to_vec();
    unverified.push("--no-verify");
    let out = rig
        .export(
            data,
            &rig.relay.url(),
            &format!("{name}/unverified"),
            &unverified,
        )
        .await;
    assert!(
        out.status.success(),
        "{name}: --no-verify: {}",
        stderr(&out)
    );
    let dir = rig.dir.path().join(format!("{name}/unverified"));
    assert!(
        data.files()
            .iter()
            .zip(rig.reference(data))
            .any(|(f, r)| std::fs::read(dir.join(f)).unwrap() != std::fs::read(r).unwrap()),
        "{name}: --no-verify wrote right data: the fault is not one"
    );
    eprintln!(
        "PHASE {name}: {:.2}s; alone: {line}",
        t.elapsed().as_secs_f64()
    );
}

// === impl Rig ===

impl Rig {
    async fn start(anvil: &Path) -> Rig {
        let (node, honest) = (Anvil::spawn(anvil).await, Anvil::spawn(anvil).await);
        let chain = build_chain(&node.url()).await;
        assert_eq!(
            chain.block_hashes,
            build_chain(&honest.url()).await.block_hashes
        );
        let relay = WrongRelay::start(&node.url()).await;
        let dir = tempfile::tempdir().unwrap();
        let rig = Rig {
            head: chain.head,
            honest: honest.url(),
            relay,
            hashes: dir.path().join("tx_hashes.txt"),
            dir,
            _nodes: (node, honest),
        };
        // The reference: the honest node alone; the hashes from its transactions.
        let reference = rig.dir.path().join("reference");
        let out = rig
            .export(Data::Blocks, &rig.honest, "reference", &[])
            .await;
        assert!(out.status.success(), "{}", stderr(&out));
        let txs = support::etl::read_csv(&reference.join("transactions.csv"));
        let hashes: Vec<&str> = txs.iter().map(|row| row["hash"].as_str()).collect();
        std::fs::write(&rig.hashes, hashes.join("\n") + "\n").unwrap();
        for data in [Data::Receipts, Data::Logs] {
            let out = rig.export(data, &rig.honest, "reference", &[]).await;
            assert!(out.status.success(), "{}", stderr(&out));
        }
        let transfers = support::etl::read_csv(&reference.join("token_transfers.csv"));
        assert!(transfers.len() > 10, "the chain has ERC-20 transfers");
        // The relay, honest, changes nothing and verification passes it.
        let out = rig
            .export(Data::Blocks, &rig.relay.url(), "honest", &[])
            .await;
        assert!(out.status.success(), "{}", stderr(&out));
        rig.assert_identical(Data::Blocks, &rig.dir.path().join("honest"));
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

    /// `nodewatch-export` of `data` from `providers` into `<tmp>/<sub>/`, `extra` flags last.
    async fn export(&self, data: Data, providers: &str, sub: &str, extra: &[&str]) -> Output {
        let dir = self.dir.path().join(sub);
        std::fs::create_dir_all(&dir).unwrap();
        let out = |f: &str| dir.join(f);
        let opts = ["-w", "1", "-b", "10"];
        let mut a = match data {
            Data::Blocks => blocks_and_transactions(
                providers,
                (0, self.head),
                Some(&out("blocks.csv")),
                Some(&out("transactions.csv")),
                &opts,
            ),
            Data::Receipts => receipts_and_logs(
                providers,
                &self.hashes,
                Some(&out("receipts.csv")),
                Some(&out("logs.csv")),
                &opts,
            ),
            Data::Logs => {
                let end = self.head.to_string();
                let file = out("token_transfers.csv");
                let mut a = args(&["export_token_transfers", "-s", "0", "-e", &end]);
                a.extend(args(&opts));
                a.extend(args(&["-p", providers, "-o", file.to_str().unwrap()]));
                a
            }
        };
        a.extend(args(extra));
        let run = exporter_async(&a).arg("--quiet").output();
        tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("nodewatch-export finished in time")
            .expect("run nodewatch-export")
    }
}

/// The checks that may catch `mode` (nodewatch-verify's labels; the message says
/// "<label with spaces> check failed").
fn expected_checks(mode: Mode, data: Data) -> &'static [&'static str] {
    match (mode, data) {
        (Mode::EmptyBlocks | Mode::DropLastTx, _) => &["transactions_root", "count"],
        (Mode::TxValue | Mode::TxInput, _) => &["transaction_hash", "transactions_root"],
        (Mode::DropLastLog, _) => &["receipt_bloom", "logs_bloom", "receipts_root"],
        (Mode::DropLastLogFixBloom, _) => &["logs_bloom", "receipts_root"],
        (Mode::ReceiptStatus | Mode::GasUsed, _) => &["receipts_root", "receipt", "count"],
        (Mode::ForeignReceipt, _) => &["position", "count", "receipts_root", "logs_bloom"],
        (Mode::LogIndex, _) => &["position", "logs", "logs_missing"],
        // The logs are checked against the block's receipts, which come from the relay too.
        (Mode::LogData, Data::Logs) => &["logs", "receipts_root"],
        (Mode::LogData, _) => &["receipts_root"],
        (Mode::EmptyLogs | Mode::LogsMissingBlock, _) => &["logs_missing"],
        (Mode::WithdrawalAmount, _) => &["withdrawals_root"],
    }
}

/// Whether the line names a block: "block " and a number.
fn names_a_block(line: &str) -> bool {
    line.match_indices("block ")
        .any(|(i, m)| line[i + m.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
