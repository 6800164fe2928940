//! The verified paths of `nodewatch-export` that `export_verified.rs` does not walk, on real
//! anvil chains (an honest node, and a second node with the same chain behind a relay):
//!
//! - a provider without `eth_getBlockReceipts` (it answers -32601): receipts are verified
//!   from the full block and one `eth_getTransactionReceipt` per transaction, and the export
//!   is byte-identical; the same provider dropping logs is caught on that path too;
//! - `export_all -p relay,honest` with wrong receipts is byte-identical to the honest export;
//!   with the relay alone it fails naming the check, and the failed partition leaves no file;
//! - `stream -p relay,honest` prints what the honest node alone gives, whichever provider it
//!   starts with; alone with the relay it prints only verified rows and names the check.

#[allow(dead_code, unused_imports, unused_macros)]
use nodewatch_testkit as support;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use support::anvil::Anvil;
use support::chain::{build_chain, ChainInfo};
use support::etl::{args, assert_files_identical, receipts_and_logs};
use support::export::exporter_async;
use support::scripted::{close, ok, Scripted};
use support::wrong::{Mode, WrongRelay};

/// Fast failure: two attempts per provider, 10 ms apart.
const RETRY: [&str; 4] = ["--max-attempts", "2", "--retry-delay-ms", "10"];

/// Two anvil nodes with the same chain; `a` is the one relays stand in front of.
struct Nodes {
    a: Anvil,
    honest: Anvil,
    chain: ChainInfo,
    dir: tempfile::TempDir,
}

impl Nodes {
    async fn start() -> Option<Nodes> {
        let bin = support::tools::require_anvil()?;
        let (a, honest) = (Anvil::spawn(&bin).await, Anvil::spawn(&bin).await);
        let chain = build_chain(&a.url()).await;
        assert_eq!(
            chain.block_hashes,
            build_chain(&honest.url()).await.block_hashes
        );
        Some(Nodes {
            a,
            honest,
            chain,
            dir: tempfile::tempdir().unwrap(),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn hashes(&self) -> PathBuf {
        let p = self.path("tx_hashes.txt");
        self.chain.write_tx_hashes(&p);
        p
    }
}

async fn run(a: &[String]) -> Output {
    let out = exporter_async(a).arg("--quiet").output();
    tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .expect("nodewatch-export finished in time")
        .expect("run nodewatch-export")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The error line (warnings about retries aside).
fn error_line(out: &Output) -> String {
    let err = stderr(out);
    let errors: Vec<&str> = err.lines().filter(|l| !l.starts_with("warning:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {err}");
    errors[0].to_owned()
}

/// A relay to `target` that answers every `eth_getBlockReceipts` item with -32601, as nodes
/// without the method do, and (with `drop_logs`) drops the last log of every receipt; counts
/// the full-block requests the fallback sends.
async fn without_block_receipts(
    target: String,
    drop_logs: bool,
    full: Arc<AtomicUsize>,
) -> Scripted {
    Scripted::start(move |req| {
        let (target, full) = (target.clone(), Arc::clone(&full));
        async move {
            let Some(Value::Array(calls)) = req.json() else {
                return close("a batch was expected");
            };
            let (missing, rest): (Vec<Value>, Vec<Value>) = calls
                .into_iter()
                .partition(|c| c["method"] == "eth_getBlockReceipts");
            let fulls = rest
                .iter()
                .filter(|c| c["method"] == "eth_getBlockByHash" && c["params"][1] == true)
                .count();
            full.fetch_add(fulls, Ordering::SeqCst);
            let mut answer: Vec<Value> = missing
                .iter()
                .map(|c| json!({"jsonrpc": "2.0", "id": c["id"], "error": {"code": -32601, "message": "the method eth_getBlockReceipts does not exist/is not available"}}))
                .collect();
            if !rest.is_empty() {
                let body = serde_json::to_string(&rest).unwrap();
                let Some((_, text)) = support::rpc::try_post(&target, &body).await.ok() else {
                    return close("the node did not answer");
                };
                let mut items: Vec<Value> = serde_json::from_str(&text).unwrap();
                if drop_logs {
                    for item in &mut items {
                        if let Some(logs) = item["result"]["logs"].as_array_mut() {
                            logs.pop();
                        }
                    }
                }
                answer.extend(items);
            }
            ok(200, serde_json::to_string(&answer).unwrap())
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_are_verified_per_transaction_where_eth_get_block_receipts_is_missing() {
    let Some(nodes) = Nodes::start().await else {
        return;
    };
    let hashes = nodes.hashes();
    let export = |providers: &str, name: &str| {
        let mut a = receipts_and_logs(
            providers,
            &hashes,
            Some(&nodes.path(&format!("{name}-receipts.csv"))),
            Some(&nodes.path(&format!("{name}-logs.csv"))),
            &["-b", "7", "-w", "3"],
        );
        a.extend(args(&RETRY));
        a
    };
    let reference = run(&export(&nodes.honest.url(), "honest")).await;
    assert!(reference.status.success(), "{}", stderr(&reference));

    // Phase 1: a node without eth_getBlockReceipts, honest otherwise.
    let full = Arc::new(AtomicUsize::new(0));
    let plain = without_block_receipts(nodes.a.url(), false, Arc::clone(&full)).await;
    let out = run(&export(&plain.url(), "fallback")).await;
    assert!(out.status.success(), "{}", stderr(&out));
    for kind in ["receipts", "logs"] {
        assert_files_identical(
            &nodes.path(&format!("honest-{kind}.csv")),
            &nodes.path(&format!("fallback-{kind}.csv")),
        );
    }
    assert!(
        full.load(Ordering::SeqCst) > 0,
        "the fallback fetched full blocks"
    );

    // Phase 2: the same node dropping logs: caught on the fallback path, alone and in a pair.
    let liar = without_block_receipts(nodes.a.url(), true, Arc::new(AtomicUsize::new(0))).await;
    let out = run(&export(&liar.url(), "liar")).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = error_line(&out);
    assert!(
        line.contains("block ") && line.contains("check failed"),
        "{line}"
    );
    eprintln!("fallback path, alone: {line}");
    assert!(!nodes.path("liar-receipts.csv").exists() && !nodes.path("liar-logs.csv").exists());
    let pair = format!("{},{}", liar.url(), nodes.honest.url());
    let out = run(&export(&pair, "pair")).await;
    assert!(out.status.success(), "{}", stderr(&out));
    for kind in ["receipts", "logs"] {
        assert_files_identical(
            &nodes.path(&format!("honest-{kind}.csv")),
            &nodes.path(&format!("pair-{kind}.csv")),
        );
    }
}

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_all_partitions_are_verified_and_written_whole_or_not_at_all() {
    let Some(nodes) = Nodes::start().await else {
        return;
    };
    let relay = WrongRelay::start(&nodes.a.url()).await;
    relay.set_mode(Mode::DropLastLog);
    let end = nodes.chain.head.to_string();
    let export = |providers: &str, name: &str| {
        // Two-block partitions: the first (blocks 0 and 1) has no logs, the relay's fault
        // starts with block 2.
        let mut a = args(&["export_all", "-s", "0", "-e", &end, "-b", "2", "-B", "5"]);
        let out = nodes.path(name);
        a.extend(args(&["-p", providers, "-o", out.to_str().unwrap()]));
        a.extend(args(&RETRY));
        a
    };
    let out = run(&export(&nodes.honest.url(), "honest")).await;
    assert!(out.status.success(), "{}", stderr(&out));

    let pair = format!("{},{}", relay.url(), nodes.honest.url());
    let out = run(&export(&pair, "pair")).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let files = tree(&nodes.path("honest"));
    assert!(files.len() >= 7, "{files:?}");
    assert_eq!(files, tree(&nodes.path("pair")));
    for f in &files {
        assert_files_identical(&nodes.path("honest").join(f), &nodes.path("pair").join(f));
    }
    assert!(
        relay.tampered_by(Mode::DropLastLog) > 0,
        "the relay served its fault"
    );

    // Alone: partitions before the first wrong block are complete; the failed one has no file.
    let out = run(&export(&relay.url(), "alone")).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = error_line(&out);
    assert!(line.contains("check failed"), "{line}");
    let left = tree(&nodes.path("alone"));
    assert!(
        left.iter().all(|f| files.contains(f)),
        "only files of the honest export: {left:?}"
    );
    for f in &left {
        assert_files_identical(&nodes.path("honest").join(f), &nodes.path("alone").join(f));
    }
    let complete = |f: &PathBuf| {
        let partition = f.iter().nth(1).unwrap().to_owned();
        left.iter()
            .filter(|g| g.iter().nth(1) == Some(partition.as_os_str()))
            .count()
            == 7
    };
    assert!(
        !left.is_empty() && left.iter().all(complete),
        "every partition left is whole: {left:?}"
    );
    eprintln!(
        "export_all alone: {} whole partition files left; {line}",
        left.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_prints_only_verified_rows_whichever_provider_it_starts_with() {
    let Some(nodes) = Nodes::start().await else {
        return;
    };
    let relay = WrongRelay::start(&nodes.a.url()).await;
    relay.set_mode(Mode::DropLastLog);
    let end = nodes.chain.head.to_string();
    let stream = |providers: &str, name: &str| {
        let state = nodes.path(&format!("{name}-last_synced_block.txt"));
        let _ = std::fs::remove_file(&state);
        // One block per round: blocks 0 and 1 have no logs, the relay's fault starts with 2.
        let mut a = args(&[
            "stream",
            "-s",
            "0",
            "--end-block",
            &end,
            "-B",
            "1",
            "-b",
            "3",
        ]);
        a.extend(args(&["--period-seconds", "0", "-p", providers]));
        a.extend(args(&["-l", state.to_str().unwrap()]));
        a.extend(args(&RETRY));
        a
    };
    let reference = run(&stream(&nodes.honest.url(), "honest")).await;
    assert!(reference.status.success(), "{}", stderr(&reference));
    assert!(!reference.stdout.is_empty());

    // The stream starts with a provider picked at random: run until it has started with the
    // relay (each run does so with probability 1/2).
    let pair = format!("{},{}", relay.url(), nodes.honest.url());
    let mut started_with_relay = false;
    for _ in 0..20 {
        let before = relay.requests();
        let out = run(&stream(&pair, "pair")).await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(out.stdout, reference.stdout, "the honest node's items");
        if relay.requests() > before && relay.tampered_by(Mode::DropLastLog) > 0 {
            started_with_relay = true;
            break;
        }
    }
    assert!(started_with_relay, "20 runs never started with the relay");

    // The relay alone: the round with the first wrong receipt fails and is retried; what was
    // printed until then is the honest node's, and the warning names the check.
    let log = nodes.path("alone.err");
    let mut child = support::export::exporter(&stream(&relay.url(), "alone"))
        .arg("--quiet")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start nodewatch-export");
    support::poll::wait_until("a failed round", Duration::from_secs(30), async || {
        std::fs::read_to_string(&log).is_ok_and(|e| e.contains("check failed"))
    })
    .await;
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        reference.stdout.starts_with(&out.stdout),
        "only verified rows were printed"
    );
    assert!(!out.stdout.is_empty() && out.stdout.len() < reference.stdout.len());
    eprintln!(
        "stream alone: {} of {} bytes printed before the first wrong round",
        out.stdout.len(),
        reference.stdout.len()
    );
}
