//! The export the demo runs through nodewatch, and the check that it is complete.
//!
//! The exporter is `nodewatch-export stream`; `ethereumetl stream` (ethereum-etl 2.4.2) takes
//! the same flags and writes the same items, so switching is the one line [`EXPORTER`]. Items are
//! written as JSON lines to `stream.jsonl` in the demo folder; `last_synced_block.txt` holds
//! the stream's progress.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// Which program streams the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exporter {
    /// `ethereumetl stream` from `make tools`' venv (the same flags and output).
    #[allow(dead_code)] // selectable by changing EXPORTER
    EthereumEtl,
    /// `nodewatch-export stream`, built next to `nodewatch`.
    NodewatchExport,
}

/// The exporter the demo runs; [`Exporter::EthereumEtl`] runs the same stream with
/// ethereum-etl.
pub const EXPORTER: Exporter = Exporter::NodewatchExport;

/// Where the demo's programs are.
#[derive(Clone, Debug)]
pub struct Programs {
    /// The `nodewatch` binary.
    pub nodewatch: PathBuf,
    /// The `ethereumetl` script.
    pub ethereumetl: PathBuf,
    /// anvil.
    pub anvil: PathBuf,
}

impl Programs {
    /// The exporter's executable and its display name.
    pub fn exporter(&self) -> (PathBuf, &'static str) {
        match EXPORTER {
            Exporter::EthereumEtl => (self.ethereumetl.clone(), "ethereumetl stream"),
            Exporter::NodewatchExport => (
                self.nodewatch.with_file_name("nodewatch-export"),
                "nodewatch-export stream",
            ),
        }
    }
}

/// Files of one export run.
#[derive(Clone, Debug)]
pub struct ExportFiles {
    /// JSON lines, one item each (`"type": "block" | "transaction" | "log" | "token_transfer"`).
    pub items: PathBuf,
    /// The stream's last synced block.
    pub last_synced: PathBuf,
    /// The exporter's own log.
    pub log: PathBuf,
}

impl ExportFiles {
    /// The files in `dir` (any from an earlier run are removed).
    pub fn fresh(dir: &Path) -> std::io::Result<Self> {
        let files = ExportFiles {
            items: dir.join("stream.jsonl"),
            last_synced: dir.join("last_synced_block.txt"),
            log: dir.join("export.log"),
        };
        for f in [&files.items, &files.last_synced, &files.log] {
            match std::fs::remove_file(f) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(files)
    }

    /// The last synced block, once the stream has written one.
    pub fn last_synced(&self) -> Option<i64> {
        std::fs::read_to_string(&self.last_synced)
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// The exporter's command: stream from block 0 through `provider` into `files`.
pub fn command(
    programs: &Programs,
    provider: &str,
    files: &ExportFiles,
) -> std::io::Result<Command> {
    let (program, _) = programs.exporter();
    let mut cmd = Command::new(program);
    cmd.arg("stream")
        .args(["--provider-uri", provider])
        .args(["--start-block", "0"])
        .arg("--last-synced-block-file")
        .arg(&files.last_synced)
        .args(["--entity-types", "block,transaction,log,token_transfer"])
        .args(["--period-seconds", "1"])
        .args(["--batch-size", "10"])
        .args(["--block-batch-size", "20"])
        .args(["--max-workers", "2"])
        .stdin(Stdio::null())
        .stdout(File::create(&files.items)?)
        .stderr(File::create(&files.log)?)
        // Every item reaches the file as soon as it is printed.
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // Loopback only, whatever proxy the environment names.
        .env("NO_PROXY", "*")
        .env("no_proxy", "*");
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    Ok(cmd)
}

/// What the items file holds.
#[derive(Debug, Default)]
pub struct Exported {
    /// Block number -> how many times it was exported, with its hash and transaction count.
    pub blocks: BTreeMap<u64, Vec<(String, u64)>>,
    /// Transactions per block number, and how many distinct hashes there were in total.
    pub transactions: BTreeMap<u64, u64>,
    /// Transaction hashes seen more than once.
    pub duplicate_transactions: u64,
    /// Logs (distinct by transaction hash and log index) and duplicates among them.
    pub logs: u64,
    /// Logs exported more than once.
    pub duplicate_logs: u64,
    /// Token transfers, and duplicates among them.
    pub token_transfers: u64,
    /// Token transfers exported more than once.
    pub duplicate_token_transfers: u64,
    /// Lines that are not JSON items.
    pub bad_lines: u64,
}

impl Exported {
    /// Reads a items file; counts what it holds without judging.
    pub fn read(path: &Path) -> std::io::Result<Exported> {
        let mut out = Exported::default();
        let mut txs = BTreeSet::new();
        let mut logs = BTreeSet::new();
        let mut transfers = BTreeSet::new();
        for line in BufReader::new(File::open(path)?).lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let Ok(item) = serde_json::from_str::<Value>(&line) else {
                out.bad_lines += 1;
                continue;
            };
            let num = |key: &str| item.get(key).and_then(Value::as_u64);
            let text = |key: &str| {
                item.get(key)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            match item.get("type").and_then(Value::as_str) {
                Some("block") => match num("number") {
                    Some(n) => out
                        .blocks
                        .entry(n)
                        .or_default()
                        .push((text("hash"), num("transaction_count").unwrap_or(0))),
                    None => out.bad_lines += 1,
                },
                Some("transaction") => {
                    if txs.insert(text("hash")) {
                        *out.transactions
                            .entry(num("block_number").unwrap_or(u64::MAX))
                            .or_default() += 1;
                    } else {
                        out.duplicate_transactions += 1;
                    }
                }
                Some("log") => {
                    let key = (text("transaction_hash"), num("log_index"));
                    if logs.insert(key) {
                        out.logs += 1;
                    } else {
                        out.duplicate_logs += 1;
                    }
                }
                Some("token_transfer") => {
                    let key = (text("transaction_hash"), num("log_index"));
                    if transfers.insert(key) {
                        out.token_transfers += 1;
                    } else {
                        out.duplicate_token_transfers += 1;
                    }
                }
                _ => out.bad_lines += 1,
            }
        }
        Ok(out)
    }

    /// Distinct blocks exported.
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// Block numbers exported more than once.
    pub fn duplicate_blocks(&self) -> Vec<u64> {
        self.blocks
            .iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(n, _)| *n)
            .collect()
    }

    /// Block numbers in `0..=upto` that were not exported.
    pub fn missing_blocks(&self, upto: u64) -> Vec<u64> {
        (0..=upto)
            .filter(|n| !self.blocks.contains_key(n))
            .collect()
    }

    /// Total distinct transactions.
    pub fn transaction_count(&self) -> u64 {
        self.transactions.values().sum()
    }

    /// Blocks whose exported transactions differ in number from the block's own count.
    pub fn incomplete_blocks(&self) -> Vec<u64> {
        self.blocks
            .iter()
            .filter(|(n, v)| {
                let want = v.first().map_or(0, |(_, count)| *count);
                self.transactions.get(n).copied().unwrap_or(0) != want
            })
            .map(|(n, _)| *n)
            .collect()
    }
}

/// A short list of numbers for a message: `3, 4, 9` or `3, 4, 9, … (12 in all)`.
pub fn list(numbers: &[u64]) -> String {
    let shown: Vec<String> = numbers.iter().take(8).map(u64::to_string).collect();
    if numbers.len() > 8 {
        format!("{}, … ({} in all)", shown.join(", "), numbers.len())
    } else {
        shown.join(", ")
    }
}
