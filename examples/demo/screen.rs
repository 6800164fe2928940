//! What the demo shows: the live frame (upstream table + export progress + script), the
//! status page screenshot, and the final verified summary.
//!
//! On a terminal the frame is redrawn in place once a second; otherwise (a log, CI) a frame
//! is printed after each script step and every [`QUIET_FRAME_SECS`] seconds.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use nodewatch::status::client::AdminClient;
use nodewatch::status::{table, View};
use serde_json::json;

use crate::export::{list, ExportFiles, Exported};
use crate::support::rpc::try_call_timeout;

/// Seconds between two frames when the output is not a terminal.
const QUIET_FRAME_SECS: u64 = 5;

/// The demo's output.
pub struct Screen {
    tty: bool,
    /// Set-up notes, shown on top of every frame.
    notes: Vec<String>,
    /// Script steps so far: (seconds, what).
    events: Vec<(u64, String)>,
    /// When the last frame was printed (non-terminal output).
    last_frame: Option<u64>,
    /// A step happened since the last frame.
    pending: bool,
}

impl Screen {
    /// Detects whether stdout is a terminal.
    pub fn new() -> Self {
        Screen {
            tty: std::io::stdout().is_terminal(),
            notes: Vec::new(),
            events: Vec::new(),
            last_frame: None,
            pending: false,
        }
    }

    /// A set-up step, printed at once.
    pub fn note(&mut self, note: String) {
        println!("==> {note}");
        self.notes.push(note);
    }

    /// A script step at `t` seconds.
    pub fn event(&mut self, t: u64, what: &str) {
        if !self.tty {
            println!("\n[t+{t:>2}s] {what}");
        }
        self.events.push((t, what.to_owned()));
        self.pending = true;
    }

    /// Shows the current state (see the module docs for when).
    pub async fn frame(
        &mut self,
        t: u64,
        admin: &AdminClient,
        files: &ExportFiles,
        exporter: &str,
        next: Option<(u64, &str)>,
    ) {
        let due = self.tty
            || self.pending
            || self
                .last_frame
                .is_none_or(|last| t >= last + QUIET_FRAME_SECS);
        if !due {
            return;
        }
        self.pending = false;
        self.last_frame = Some(t);
        let (table, head) = match admin.view().await {
            Ok(view) => (table::render(&view, admin.base()), view.doc.best_head),
            Err(e) => (format!("{e}\n"), None),
        };
        let progress = progress(files, exporter, head);
        if self.tty {
            let mut text = String::from("\x1b[H\x1b[2J");
            for note in &self.notes {
                text.push_str(&format!("==> {note}\n"));
            }
            text.push_str(&format!("\nt+{t}s\n{table}\n{progress}\n\nscript:\n"));
            for (at, what) in &self.events {
                text.push_str(&format!("  t+{at:>2}s  {what}\n"));
            }
            if let Some((at, what)) = next {
                text.push_str(&format!("  next at t+{at}s: {what}\n"));
            }
            print!("{text}");
        } else {
            println!("[t+{t:>2}s] {table}{progress}");
        }
    }
}

fn progress(files: &ExportFiles, exporter: &str, head: Option<u64>) -> String {
    let synced = files
        .last_synced()
        .map_or_else(|| "-".to_owned(), |n| n.to_string());
    let head = head.map_or_else(|| "-".to_owned(), |n| n.to_string());
    match Exported::read(&files.items) {
        Ok(e) => format!(
            "export ({exporter}): last synced block {synced} of head {head} · {} blocks, {} \
             transactions, {} logs, {} token transfers",
            e.block_count(),
            e.transaction_count(),
            e.logs,
            e.token_transfers
        ),
        Err(_) => format!("export ({exporter}): starting"),
    }
}

/// A screenshot of the admin page at `/` into `path`, when Chromium is installed.
pub async fn screenshot(admin_url: &str, path: &Path) {
    let chromium = std::env::var_os("NODEWATCH_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !chromium.is_file() {
        println!("==> (no chromium: no screenshot of the status page)");
        return;
    }
    let Ok(profile) = tempfile::tempdir() else {
        return;
    };
    let run = tokio::process::Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--hide-scrollbars",
            "--window-size=1100,640",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", path.display()))
        .arg(format!("{admin_url}/"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status();
    match tokio::time::timeout(Duration::from_secs(30), run).await {
        Ok(Ok(status)) if status.success() => {
            println!("==> status page screenshot: {}", path.display())
        }
        _ => println!("==> (chromium failed: no screenshot of the status page)"),
    }
}

/// Block hashes 0..=head on every node: `[node][block]`.
pub async fn node_hashes(urls: &[String], head: u64) -> anyhow::Result<Vec<Vec<String>>> {
    let mut all = Vec::new();
    for url in urls {
        let mut hashes = Vec::new();
        for n in 0..=head {
            let block = try_call_timeout(
                url,
                "eth_getBlockByNumber",
                json!([format!("{n:#x}"), false]),
                Duration::from_secs(5),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{url}: block {n}: {e}"))?;
            let hash = block["hash"]
                .as_str()
                .with_context(|| format!("{url}: no block {n}"))?;
            hashes.push(hash.to_owned());
        }
        all.push(hashes);
    }
    Ok(all)
}

/// Sums the samples of one counter family in Prometheus text.
fn counter_sum(metrics: &str, family: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{family}{{")) || l.starts_with(&format!("{family} ")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Prints the summary; true iff the export is complete and no client request failed.
pub fn summary(
    exported: &Exported,
    nodes: &[Vec<String>],
    head: u64,
    view: &View,
    metrics: &str,
    exporter: &str,
    files: &ExportFiles,
) -> bool {
    let truth = &nodes[nodes.len() - 1];
    let nodes_agree = nodes.iter().all(|hashes| hashes == truth);
    let missing = exported.missing_blocks(head);
    let duplicated = exported.duplicate_blocks();
    let beyond: Vec<u64> = exported.blocks.range(head + 1..).map(|(n, _)| *n).collect();
    let wrong_hash: Vec<u64> = exported
        .blocks
        .iter()
        .filter(|(n, v)| {
            truth
                .get(**n as usize)
                .is_none_or(|want| v.iter().any(|(hash, _)| hash != want))
        })
        .map(|(n, _)| *n)
        .collect();
    let incomplete = exported.incomplete_blocks();
    let dup_items = exported.duplicate_transactions
        + exported.duplicate_logs
        + exported.duplicate_token_transfers;
    let served: BTreeMap<&str, u64> = view.served.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let total: u64 = served.values().sum();
    let failovers = counter_sum(metrics, "nodewatch_failovers_total");
    let checks = [
        nodes_agree,
        missing.is_empty(),
        duplicated.is_empty(),
        beyond.is_empty(),
        wrong_hash.is_empty(),
        incomplete.is_empty(),
        dup_items == 0,
        exported.bad_lines == 0,
        view.failed == 0,
    ];
    let ok = checks.iter().all(|c| *c);
    let mark = |good: bool| if good { "ok " } else { "BAD" };

    println!("\n==================== summary ====================");
    println!(
        "[{}] chain: {} nodes hold identical blocks 0..={head}",
        mark(nodes_agree),
        nodes.len()
    );
    println!(
        "[{}] blocks: {} exported for 0..={head}: missing {}, duplicated {}, beyond head {}, \
         hash differs from the nodes {}",
        mark(
            missing.is_empty()
                && duplicated.is_empty()
                && beyond.is_empty()
                && wrong_hash.is_empty()
        ),
        exported.block_count(),
        count(&missing),
        count(&duplicated),
        count(&beyond),
        count(&wrong_hash),
    );
    println!(
        "[{}] items: {} transactions (every block's transaction_count matched{}), {} logs, {} \
         token transfers; {} duplicated, {} unreadable lines",
        mark(incomplete.is_empty() && dup_items == 0 && exported.bad_lines == 0),
        exported.transaction_count(),
        if incomplete.is_empty() {
            String::new()
        } else {
            format!(": NOT for blocks {}", list(&incomplete))
        },
        exported.logs,
        exported.token_transfers,
        dup_items,
        exported.bad_lines,
    );
    let per_upstream: Vec<String> = served.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "[{}] client requests: {total} answered ({}), {} failed; {failovers} {} inside \
         nodewatch",
        mark(view.failed == 0),
        per_upstream.join(", "),
        view.failed,
        if failovers == 1 {
            "failover"
        } else {
            "failovers"
        },
    );
    println!("      export: {exporter} -> {}", files.items.display());
    println!(
        "RESULT: {}",
        if ok {
            "PASS: complete export (no gap, no duplicate) and 0 failed client requests"
        } else {
            "FAIL: see the lines marked BAD"
        }
    );
    ok
}

fn count(numbers: &[u64]) -> String {
    if numbers.is_empty() {
        "0".to_owned()
    } else {
        format!("{} ({})", numbers.len(), list(numbers))
    }
}
