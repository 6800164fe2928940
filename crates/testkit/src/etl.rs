//! Running the real `ethereumetl` (ethereum-etl 2.4.2, installed by `make tools`).
//!
//! The exports are async (tokio::process): the provider URL is often a proxy running inside
//! the same test runtime, which a blocking wait would starve.
//!
//! ethereum-etl flags used: `-p` provider URI, `-w` max workers (1 here, so rows come out in
//! a deterministic order and two runs can be compared byte for byte), `-b` batch size (blocks
//! resp. receipts per JSON-RPC *batch* request, default 100; ethereum-etl always sends JSON-RPC
//! batches, i.e. JSON arrays), `-s`/`-e` start/end block (inclusive), `-t` file of tx hashes.
//! The output format follows the file extension (.csv here; .json gives JSON lines).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::tools;

/// How ethereumetl is run.
#[derive(Clone, Debug)]
pub struct EtlOptions {
    /// `-b`: blocks / receipts per JSON-RPC batch request (ethereum-etl's default is 100).
    pub batch_size: u32,
    /// `-w`: worker threads; keep 1 for byte-comparable output.
    pub max_workers: u32,
    /// Kill ethereumetl and fail the test after this long.
    pub timeout: Duration,
}

impl Default for EtlOptions {
    fn default() -> Self {
        EtlOptions {
            batch_size: 100,
            max_workers: 1,
            timeout: Duration::from_secs(120),
        }
    }
}

/// Output of [`export_blocks_and_transactions`].
#[derive(Clone, Debug)]
pub struct BlocksAndTransactions {
    pub blocks: PathBuf,
    pub transactions: PathBuf,
}

/// Output of [`export_receipts_and_logs`].
#[derive(Clone, Debug)]
pub struct ReceiptsAndLogs {
    pub receipts: PathBuf,
    pub logs: PathBuf,
}

/// Run `ethereumetl <args>`; returns its stderr (ethereum-etl logs progress there). Panics with
/// the exit status and stderr if it fails or times out, or if ethereumetl is not installed.
pub async fn run_ethereumetl(args: &[String], timeout: Duration) -> String {
    let bin = tools::ethereumetl_path().unwrap_or_else(|| {
        panic!("ethereumetl is not installed (run make tools; gate the test with tools::require_ethereumetl())")
    });
    let mut cmd = tokio::process::Command::from(tools::scrubbed(&bin));
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(r) => r.unwrap_or_else(|e| panic!("waiting for ethereumetl: {e}")),
        Err(_) => panic!(
            "ethereumetl {} did not finish within {timeout:?}",
            args.join(" ")
        ),
    };
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        panic!(
            "ethereumetl {} failed: {}\n--- stderr ---\n{stderr}\n--- stdout ---\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
    }
    stderr
}

/// `ethereumetl export_blocks_and_transactions -s start -e end` (inclusive) into
/// `out_dir/blocks.csv` and `out_dir/transactions.csv`, with `-w 1`.
pub async fn export_blocks_and_transactions(
    provider_url: &str,
    start: u64,
    end: u64,
    out_dir: &Path,
) -> BlocksAndTransactions {
    export_blocks_and_transactions_with(provider_url, start, end, out_dir, &EtlOptions::default())
        .await
}

pub async fn export_blocks_and_transactions_with(
    provider_url: &str,
    start: u64,
    end: u64,
    out_dir: &Path,
    opts: &EtlOptions,
) -> BlocksAndTransactions {
    fs::create_dir_all(out_dir).unwrap();
    let out = BlocksAndTransactions {
        blocks: out_dir.join("blocks.csv"),
        transactions: out_dir.join("transactions.csv"),
    };
    let (batch, workers) = (opts.batch_size.to_string(), opts.max_workers.to_string());
    let args = blocks_and_transactions(
        provider_url,
        (start, end),
        Some(&out.blocks),
        Some(&out.transactions),
        &["-b", &batch, "-w", &workers],
    );
    run_ethereumetl(&args, opts.timeout).await;
    out
}

/// `ethereumetl export_receipts_and_logs -t tx_hashes_file` into `out_dir/receipts.csv` and
/// `out_dir/logs.csv`, with `-w 1`. (Write the hashes file with `ChainInfo::write_tx_hashes`.)
pub async fn export_receipts_and_logs(
    provider_url: &str,
    tx_hashes_file: &Path,
    out_dir: &Path,
) -> ReceiptsAndLogs {
    export_receipts_and_logs_with(
        provider_url,
        tx_hashes_file,
        out_dir,
        &EtlOptions::default(),
    )
    .await
}

pub async fn export_receipts_and_logs_with(
    provider_url: &str,
    tx_hashes_file: &Path,
    out_dir: &Path,
    opts: &EtlOptions,
) -> ReceiptsAndLogs {
    fs::create_dir_all(out_dir).unwrap();
    let out = ReceiptsAndLogs {
        receipts: out_dir.join("receipts.csv"),
        logs: out_dir.join("logs.csv"),
    };
    let (batch, workers) = (opts.batch_size.to_string(), opts.max_workers.to_string());
    let args = receipts_and_logs(
        provider_url,
        tx_hashes_file,
        Some(&out.receipts),
        Some(&out.logs),
        &["-b", &batch, "-w", &workers],
    );
    run_ethereumetl(&args, opts.timeout).await;
    out
}

/// The command line of `export_blocks_and_transactions` for blocks `start..=end` from `url`
/// into the outputs given, the same for both programs; `opts` go before `-p` (`-w 1` for
/// ethereumetl's deterministic order, batch and worker sizes for ours).
pub fn blocks_and_transactions(
    url: &str,
    (start, end): (u64, u64),
    blocks: Option<&Path>,
    transactions: Option<&Path>,
    opts: &[&str],
) -> Vec<String> {
    let (start, end) = (start.to_string(), end.to_string());
    let mut a = args(&["export_blocks_and_transactions", "-s", &start, "-e", &end]);
    a.extend(args(opts));
    a.extend(args(&["-p", url]));
    a.extend(outputs(&[
        ("--blocks-output", blocks),
        ("--transactions-output", transactions),
    ]));
    a
}

/// The command line of `export_receipts_and_logs` for the transactions listed in `hashes`,
/// like [`blocks_and_transactions`].
pub fn receipts_and_logs(
    url: &str,
    hashes: &Path,
    receipts: Option<&Path>,
    logs: Option<&Path>,
    opts: &[&str],
) -> Vec<String> {
    let mut a = args(&["export_receipts_and_logs", "-t", &path_arg(hashes)]);
    a.extend(args(opts));
    a.extend(args(&["-p", url]));
    a.extend(outputs(&[
        ("--receipts-output", receipts),
        ("--logs-output", logs),
    ]));
    a
}

/// `flag path` for each output that is given.
fn outputs(list: &[(&str, Option<&Path>)]) -> Vec<String> {
    list.iter()
        .filter_map(|(flag, path)| Some([flag.to_string(), path_arg(path.as_ref()?)]))
        .flatten()
        .collect()
}

/// A command line from `&str`s.
pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| a.to_string()).collect()
}

fn path_arg(p: &Path) -> String {
    p.to_str()
        .unwrap_or_else(|| panic!("non-UTF-8 path {}", p.display()))
        .to_owned()
}

/// Panic unless the two files have the same bytes. The message names the first differing
/// line and column and shows the lines around it from both files.
pub fn assert_files_identical(a: &Path, b: &Path) {
    let read = |p: &Path| fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    let (da, db) = (read(a), read(b));
    if da == db {
        return;
    }
    panic!(
        "files differ: {} ({} bytes) vs {} ({} bytes)\n{}",
        a.display(),
        da.len(),
        b.display(),
        db.len(),
        diff_excerpt(&da, &db)
    );
}

/// A short description of where `a` and `b` first differ.
pub fn diff_excerpt(a: &[u8], b: &[u8]) -> String {
    let ta = String::from_utf8_lossy(a);
    let tb = String::from_utf8_lossy(b);
    let lines = |t: &str| -> Vec<String> {
        let mut v: Vec<String> = t.split('\n').map(str::to_owned).collect();
        if v.last().is_some_and(|l| l.is_empty()) {
            v.pop(); // the newline ending the last line does not start another one
        }
        v
    };
    let (la, lb) = (lines(&ta), lines(&tb));
    let Some(i) = (0..la.len().max(lb.len())).find(|&i| la.get(i) != lb.get(i)) else {
        return "(no line differs: only a final newline, or invalid UTF-8, does)".into();
    };
    let (x, y) = (
        la.get(i).map_or("", String::as_str),
        lb.get(i).map_or("", String::as_str),
    );
    let col = x
        .chars()
        .zip(y.chars())
        .position(|(p, q)| p != q)
        .unwrap_or(x.chars().count().min(y.chars().count()));
    let mut out = format!(
        "first difference at line {} column {} ({} vs {} lines)\n",
        i + 1,
        col + 1,
        la.len(),
        lb.len()
    );
    // Long lines (logs_bloom is 514 chars): show a window around the difference.
    let window = |s: &str| {
        let chars: Vec<char> = s.chars().collect();
        let from = col.saturating_sub(60).min(chars.len());
        let to = (col + 60).min(chars.len());
        let mut w: String = chars[from..to].iter().collect();
        if from > 0 {
            w.insert(0, '…');
        }
        if to < chars.len() {
            w.push('…');
        }
        w
    };
    for (name, ls) in [("a", &la), ("b", &lb)] {
        let first = i.saturating_sub(2);
        for (j, line) in ls.iter().enumerate().skip(first).take(i + 3 - first) {
            let mark = if j == i { '>' } else { ' ' };
            let shown = if j == i {
                window(line)
            } else {
                line.chars().take(120).collect()
            };
            out.push_str(&format!("{name}{mark}{:>5}: {shown}\n", j + 1));
        }
        if i >= ls.len() {
            out.push_str(&format!("{name}> (file ends before line {})\n", i + 1));
        }
    }
    out
}

/// Rows of an ethereum-etl CSV file as header -> value maps. Handles quoted fields (topics
/// are a quoted comma-separated list) and \r\n line ends; no embedded newlines.
pub fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut lines = text.lines().filter(|l| !l.is_empty());
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let header = split_csv_line(header);
    lines
        .map(|line| {
            let fields = split_csv_line(line);
            assert_eq!(
                fields.len(),
                header.len(),
                "{}: row has {} fields, header {}: {line}",
                path.display(),
                fields.len(),
                header.len()
            );
            header.iter().cloned().zip(fields).collect()
        })
        .collect()
}

fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}
