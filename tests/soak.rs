//! The fault soak: three anvil nodes with the same chain, each behind a seeded fault relay
//! (tests/support/relay.rs), the real `nodewatch` binary in front of the relays, and through
//! it, at the same time, the real `ethereumetl` and `nodewatch-export` exporting the whole
//! chain again and again and a JSON-RPC load that checks every answer. On a seeded schedule one node at a time is "in
//! trouble": its relay stalls, delays, answers 500/429/502, cuts bodies, truncates JSON,
//! shortens batches and nulls blocks, and the node itself may be killed and restarted or
//! frozen (SIGSTOP); meanwhile another node may stop mining and lag. At the end every node
//! is cut off at once for a moment.
//!
//! Pass: every export is byte-identical to a fault-free direct export of the same range (no
//! row lost or added); the load saw no failed and no wrong answer, except while every node
//! was down, when each request got a JSON-RPC -32603 with its id within the request
//! timeout; the proxy's RSS at the end is within 10% of its level after warm-up.
//!
//! `NODEWATCH_SOAK_SECS` sets the duration (default 60; `make soak` runs 240),
//! `NODEWATCH_SOAK_SEED` replays a seed (printed at the start).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};
use support::anvil::Anvil;
use support::binary::Binary;
use support::chain::{build_chain, ChainInfo, BLOCK_TIME};
use support::etl::{self, EtlOptions};
use support::export;
use support::poll::wait_until;
use support::relay::{self, Relay, SplitMix64};
use support::rpc;
use tokio::task::JoinHandle;

/// nodewatch's attempt and request timeouts in the soak.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Share of requests a relay in trouble spoils.
const FAULT_RATE: f64 = 0.3;
/// Quiet time between two trouble windows, longer than an attempt timeout: one request's
/// attempts meet at most one node in trouble, and with at most one other node lagging, one
/// node is always clean and in sync. (The all-down episode at the end is the exception.)
const GAP: Duration = Duration::from_millis(2500);
/// A new block on every mining node this often.
const BLOCK_EVERY: Duration = Duration::from_secs(2);
/// Load workers.
const WORKERS: usize = 4;

/// State shared by the soak's tasks.
struct Shared {
    stop_load: AtomicBool,
    stop_exports: AtomicBool,
    stop_mining: AtomicBool,
    /// Height every mining node is brought to.
    target: AtomicU64,
    /// Per node: mine it (off while it is killed, frozen or made to lag).
    mining: [AtomicBool; 3],
    urls: [String; 3],
    genesis_timestamp: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_soak() {
    // Boxed: the soak's state machine is large for the test thread's stack.
    Box::pin(soak()).await;
}

/// The soak, phase by phase: the rig, the traffic over it, the trouble schedule, every node
/// cut off at once, the stop; then the verdict on the exports, the load and the proxy.
async fn soak() {
    let Some(tools) = support::tools::require_all() else {
        return;
    };
    let secs: u64 = env_or("NODEWATCH_SOAK_SECS", 60);
    let seed: u64 = env_or(
        "NODEWATCH_SOAK_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    eprintln!("FIGURE soak seed {seed} for {secs} s (replay: NODEWATCH_SOAK_SEED={seed})");
    let mut rng = SplitMix64::new(seed);

    let mut rig = Rig::start(&tools, &mut rng).await;
    let nw = start_nodewatch(&rig.relays).await;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut traffic = Traffic::start(&rig, &nw, &mut rng, started);
    let mut events = trouble_schedule(&mut rig, &traffic.shared, &mut rng, deadline).await;
    let exports = traffic.end_exports().await;
    let episode = all_down(&rig.relays, started, &mut events).await;
    let stopped = traffic.stop(deadline).await;
    let metrics = stop_nodewatch(nw).await;

    faults_were_injected(&rig.relays, &events, secs);
    nodes_agree(&rig, stopped.target, &exports).await;
    let compared = compare_exports(&rig, &exports).await;
    verdict(&exports, &compared, &stopped, &episode, &metrics, secs);
}

// === the phases ===

/// What the soak runs against: three anvil nodes with the same chain, each behind a seeded
/// fault relay.
struct Rig {
    nodes: Vec<Anvil>,
    chain: ChainInfo,
    /// What the load checks answers against.
    expect: Expected,
    relays: [Relay; 3],
    /// The exports and their references are written here.
    dir: tempfile::TempDir,
    /// The chain's transaction hashes, for the receipt exports.
    hashes: PathBuf,
}

impl Rig {
    /// Three identical nodes, each behind a relay seeded from `rng`.
    async fn start(tools: &support::tools::Tools, rng: &mut SplitMix64) -> Rig {
        let mut nodes = Vec::new();
        let mut chain: Option<ChainInfo> = None;
        for _ in 0..3 {
            let node = Anvil::spawn(&tools.anvil).await;
            let info = build_chain(&node.url()).await;
            if let Some(c) = &chain {
                assert_eq!(c.block_hashes, info.block_hashes, "nodes built alike");
            }
            chain = Some(info);
            nodes.push(node);
        }
        let chain = chain.unwrap();
        let expect = Expected::read(&nodes[0].url(), &chain).await;
        let relays = [
            Relay::start(&nodes[0].url(), rng.next_u64()).await,
            Relay::start(&nodes[1].url(), rng.next_u64()).await,
            Relay::start(&nodes[2].url(), rng.next_u64()).await,
        ];
        let dir = tempfile::tempdir().unwrap();
        let hashes = dir.path().join("tx_hashes.txt");
        chain.write_tx_hashes(&hashes);
        Rig {
            nodes,
            chain,
            expect,
            relays,
            dir,
            hashes,
        }
    }
}

/// The real `nodewatch` binary in front of the relays, serving.
async fn start_nodewatch(relays: &[Relay; 3]) -> Binary {
    let mut toml = format!(
        "[probe]\ninterval = \"250ms\"\ntimeout = \"1s\"\n[proxy]\nattempt_timeout = \"{}s\"\n\
         request_timeout = \"{}s\"\n",
        ATTEMPT_TIMEOUT.as_secs(),
        REQUEST_TIMEOUT.as_secs()
    );
    for (i, r) in relays.iter().enumerate() {
        toml.push_str(&format!(
            "[[upstreams]]\nname = \"u{}\"\nurl = \"{}\"\n",
            i + 1,
            r.url()
        ));
    }
    let nw = Binary::start(&toml, &[], &[]);
    wait_serving(&nw.url).await;
    nw
}

/// Everything running through nodewatch at once: the miner, the checking load, the RSS
/// sampler and the export loop.
struct Traffic {
    shared: Arc<Shared>,
    /// The load's answers, booked as they come.
    log: Arc<Mutex<LoadLog>>,
    /// nodewatch's RSS over time.
    rss: Arc<Mutex<Vec<(Duration, u64)>>>,
    miner: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
    sampler: JoinHandle<()>,
    exporter: Option<JoinHandle<Vec<Export>>>,
}

/// What is left of the traffic once it has stopped.
struct Stopped {
    /// The height every node was mined to.
    target: u64,
    log: Arc<Mutex<LoadLog>>,
    rss: Vec<(Duration, u64)>,
}

impl Traffic {
    /// Starts the traffic against `nw` (load workers seeded from `rng`).
    fn start(rig: &Rig, nw: &Binary, rng: &mut SplitMix64, started: Instant) -> Traffic {
        let shared = Arc::new(Shared {
            stop_load: AtomicBool::new(false),
            stop_exports: AtomicBool::new(false),
            stop_mining: AtomicBool::new(false),
            target: AtomicU64::new(rig.chain.head),
            mining: [
                AtomicBool::new(true),
                AtomicBool::new(true),
                AtomicBool::new(true),
            ],
            urls: [rig.nodes[0].url(), rig.nodes[1].url(), rig.nodes[2].url()],
            genesis_timestamp: rig.chain.genesis_timestamp,
        });
        let miner = tokio::spawn(mine(Arc::clone(&shared)));
        let log = Arc::new(Mutex::new(LoadLog::default()));
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (url, shared, log, expect) = (
                    nw.url.clone(),
                    Arc::clone(&shared),
                    Arc::clone(&log),
                    rig.expect.clone(),
                );
                let seed = rng.next_u64() ^ w as u64;
                tokio::spawn(load(url, shared, log, expect, seed, started))
            })
            .collect();
        let pid = nw.pid();
        let rss = Arc::new(Mutex::new(Vec::<(Duration, u64)>::new()));
        let sampler = {
            let (rss, shared) = (Arc::clone(&rss), Arc::clone(&shared));
            tokio::spawn(async move {
                while !shared.stop_load.load(Ordering::SeqCst) {
                    let kib = support::binary::rss_kib(pid)
                        .expect("nodewatch's VmRSS (is it still running?)");
                    rss.lock().unwrap().push((started.elapsed(), kib));
                    // A sample a second (pacing, not a wait).
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            })
        };
        let exporter = {
            let (url, shared) = (nw.url.clone(), Arc::clone(&shared));
            let (out, hashes) = (rig.dir.path().join("soak"), rig.hashes.clone());
            tokio::spawn(async move { export_loop(&url, &shared, &out, &hashes).await })
        };
        Traffic {
            shared,
            log,
            rss,
            miner,
            workers,
            sampler,
            exporter: Some(exporter),
        }
    }

    /// Ends the export loop (the export in flight finishes) and returns every export.
    async fn end_exports(&mut self) -> Vec<Export> {
        self.shared.stop_exports.store(true, Ordering::SeqCst);
        let exporter = self.exporter.take().expect("exports not ended yet");
        exporter.await.expect("export loop")
    }

    /// Lets the load run until `deadline` (until the breakers' cooldown, 5 s, has passed,
    /// failures still count as the all-down episode's), then stops load, sampler and miner.
    async fn stop(self, deadline: Instant) -> Stopped {
        tokio::time::sleep_until(deadline.into()).await;
        self.shared.stop_load.store(true, Ordering::SeqCst);
        for w in self.workers {
            w.await.unwrap();
        }
        self.sampler.await.unwrap();
        self.shared.stop_mining.store(true, Ordering::SeqCst);
        self.miner.await.unwrap();
        let rss = self.rss.lock().unwrap().clone();
        Stopped {
            target: self.shared.target.load(Ordering::SeqCst),
            log: self.log,
            rss,
        }
    }
}

/// The trouble schedule, until the all-down episode at the end: one node at a time in
/// trouble (its relay spoils requests; the node may be killed and restarted or frozen),
/// another perhaps lagging. Its sleeps are the scenario (seeded durations of trouble and
/// calm), not waits for a condition. Returns the node events, counted by kind.
async fn trouble_schedule(
    rig: &mut Rig,
    shared: &Shared,
    rng: &mut SplitMix64,
    deadline: Instant,
) -> BTreeMap<&'static str, u64> {
    let all_down_reserve = Duration::from_secs(14);
    let mut events: BTreeMap<&'static str, u64> = BTreeMap::new();
    while Instant::now() + all_down_reserve < deadline {
        // Rank 1 carries most of the traffic: it is in trouble half of the time.
        let c = if rng.chance(0.5) {
            0
        } else {
            1 + rng.below(2) as usize
        };
        let window = rng.millis(4000, 8000);
        let window_end = Instant::now() + window;
        rig.relays[c].set_chaos(FAULT_RATE);
        *events.entry("trouble_window").or_default() += 1;
        let lag = rng.chance(0.5).then(|| (c + 1 + rng.below(2) as usize) % 3);
        if let Some(l) = lag {
            shared.mining[l].store(false, Ordering::SeqCst);
            *events.entry("lag_window").or_default() += 1;
        }
        match rng.below(10) {
            0..=3 => {
                shared.mining[c].store(false, Ordering::SeqCst);
                tokio::time::sleep(rng.millis(200, 1500)).await;
                rig.nodes[c].kill().await;
                *events.entry("node_kill").or_default() += 1;
                tokio::time::sleep(rng.millis(300, 1500)).await;
                rig.nodes[c].restart().await;
                *events.entry("node_restart").or_default() += 1;
                shared.mining[c].store(true, Ordering::SeqCst);
            }
            4..=6 => {
                shared.mining[c].store(false, Ordering::SeqCst);
                tokio::time::sleep(rng.millis(200, 1500)).await;
                rig.nodes[c].pause();
                *events.entry("node_freeze").or_default() += 1;
                tokio::time::sleep(rng.millis(500, 2500)).await;
                rig.nodes[c].resume();
                shared.mining[c].store(true, Ordering::SeqCst);
            }
            _ => {}
        }
        tokio::time::sleep_until(window_end.into()).await;
        rig.relays[c].set_clean();
        if let Some(l) = lag {
            shared.mining[l].store(true, Ordering::SeqCst);
        }
        tokio::time::sleep(GAP).await;
    }
    events
}

/// When every node was cut off, since the start.
struct Episode {
    from: Duration,
    to: Duration,
}

/// Every node cut off at once, under load, for 3 s.
async fn all_down(
    relays: &[Relay; 3],
    started: Instant,
    events: &mut BTreeMap<&'static str, u64>,
) -> Episode {
    let from = started.elapsed();
    for r in relays {
        r.set_down();
    }
    // The scenario: 3 s with every node cut off, under load.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for r in relays {
        r.set_clean();
    }
    let to = started.elapsed();
    *events.entry("all_down").or_default() += 1;
    Episode { from, to }
}

/// Stops nodewatch after checking it is alive and logged no panic; returns its metrics.
async fn stop_nodewatch(mut nw: Binary) -> String {
    let metrics = get_text(&format!("{}/metrics", nw.admin)).await;
    assert!(nw.is_running(), "nodewatch died:\n{}", nw.log_text());
    let log_text = nw.log_text();
    assert!(
        !log_text.contains("panicked"),
        "a panic in nodewatch:\n{log_text}"
    );
    assert!(nw.stop().success());
    metrics
}

// === the verdict ===

/// The relays injected every kind of fault that matters (given time to).
fn faults_were_injected(relays: &[Relay; 3], events: &BTreeMap<&'static str, u64>, secs: u64) {
    let faults = relay::total(relays);
    let injected: u64 = faults.values().sum();
    eprintln!("FIGURE soak faults by kind: {faults:?}; node events: {events:?}; total relay faults {injected}");
    for kind in ["stall", "http_500", "truncated_json", "close_mid_body"] {
        assert!(
            faults.get(kind).copied().unwrap_or(0) > 0 || secs < 30,
            "no {kind} injected"
        );
    }
}

/// Nodes still agree (a setup check: a divergence would be anvil's, not nodewatch's).
async fn nodes_agree(rig: &Rig, final_head: u64, exports: &[Export]) {
    for n in &rig.nodes {
        let mut head = n.block_number().await;
        if head < final_head {
            head = n.mine(final_head - head).await;
        }
        assert!(head >= final_head);
    }
    let top = exports
        .iter()
        .map(|e| e.end)
        .max()
        .unwrap_or(rig.chain.head);
    let reference_hashes = support::chain::block_hashes(&rig.nodes[0].url(), top).await;
    for n in &rig.nodes[1..] {
        assert_eq!(
            support::chain::block_hashes(&n.url(), top).await,
            reference_hashes,
            "setup problem: the anvil nodes diverged"
        );
    }
}

/// Every export against a fault-free direct export of the same range.
struct Comparison {
    /// Rows the exports lacked.
    rows_lost: i64,
    /// What differed (or failed), readable.
    differences: Vec<String>,
}

/// Compares every export with a fault-free direct export of the same range from node 1.
async fn compare_exports(rig: &Rig, exports: &[Export]) -> Comparison {
    let node = rig.nodes[0].url();
    let direct = rig.dir.path().join("direct");
    let receipts_ref = etl::export_receipts_and_logs(&node, &rig.hashes, &direct.join("r")).await;
    let mut references: HashMap<u64, etl::BlocksAndTransactions> = HashMap::new();
    let (mut compared, mut rows_lost, mut rows_total, mut failed_exports) = (0, 0i64, 0i64, 0);
    let mut differences = Vec::new();
    for e in exports {
        let Some(files) = &e.files else {
            failed_exports += 1;
            differences.push(format!(
                "export {} (0..={}) failed: {}",
                e.n, e.end, e.error
            ));
            continue;
        };
        if let std::collections::hash_map::Entry::Vacant(slot) = references.entry(e.end) {
            let out = direct.join(format!("b{}", e.end));
            slot.insert(etl::export_blocks_and_transactions(&node, 0, e.end, &out).await);
        }
        let r = &references[&e.end];
        for (got, want) in [
            (&files.blocks, &r.blocks),
            (&files.transactions, &r.transactions),
            (&files.receipts, &receipts_ref.receipts),
            (&files.logs, &receipts_ref.logs),
        ] {
            compared += 1;
            let (g, w) = (std::fs::read(got).unwrap(), std::fs::read(want).unwrap());
            let (gl, wl) = (lines(&g), lines(&w));
            rows_total += wl;
            rows_lost += (wl - gl).max(0);
            if g != w {
                differences.push(format!(
                    "export {} ({}, 0..={}): {} differs from {}:\n{}",
                    e.n,
                    e.tool,
                    e.end,
                    got.display(),
                    want.display(),
                    etl::diff_excerpt(&w, &g)
                ));
            }
        }
    }
    eprintln!(
        "FIGURE soak exports: {} runs ({} ethereumetl, {} nodewatch-export; {} failed), {compared} files compared byte for byte, {} differ, {rows_lost} of {rows_total} rows lost; ranges {:?}",
        exports.len(),
        exports.iter().filter(|e| e.tool == "ethereumetl").count(),
        exports.iter().filter(|e| e.tool == "nodewatch-export").count(),
        failed_exports,
        differences.len(),
        exports.iter().map(|e| e.end).collect::<Vec<_>>()
    );
    Comparison {
        rows_lost,
        differences,
    }
}

/// The figures of the load, the RSS and the proxy, then the pass conditions: exports
/// identical, no failed request while a node could answer, well-formed errors while none
/// could, no request past the request timeout, RSS within 10% of its warm level.
fn verdict(
    exports: &[Export],
    compared: &Comparison,
    stopped: &Stopped,
    episode: &Episode,
    metrics: &str,
    secs: u64,
) {
    let log = stopped.log.lock().unwrap();
    let slack = Duration::from_secs(8);
    let in_episode = |f: &Failure| f.end >= episode.from && f.start <= episode.to + slack;
    let (during, outside): (Vec<&Failure>, Vec<&Failure>) =
        log.failures.iter().partition(|f| in_episode(f));
    eprintln!(
        "FIGURE soak load: {} requests ({} items), {} ok, {} failed outside the all-down episode, {} failed during it (all -32603 with their ids: {}), {} wrong answers, slowest {:?}",
        log.requests,
        log.items,
        log.ok,
        outside.len(),
        during.len(),
        during.iter().all(|f| f.well_formed),
        log.wrong.len(),
        log.slowest
    );
    let samples = &stopped.rss;
    let warm_at = Duration::from_secs((secs / 5).max(10));
    let warm = samples
        .iter()
        .find(|(t, _)| *t >= warm_at)
        .map(|s| s.1)
        .unwrap_or_else(|| panic!("no RSS sample after the warm-up ({warm_at:?})"));
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let end = samples.last().map_or(0, |s| s.1);
    let first = samples.first().map_or(0, |s| s.1);
    eprintln!(
        "FIGURE soak RSS: start {first} KiB, after warm-up ({warm_at:?}) {warm} KiB, peak {peak} KiB, end {end} KiB ({} samples)",
        samples.len()
    );
    let metric = |name: &str| metric_sum(metrics, name);
    eprintln!(
        "FIGURE soak proxy: {} failovers, {} items failed (outcome=failed), {} retry-budget refusals, {} breaker openings",
        metric("nodewatch_failovers_total"),
        metric_filtered(metrics, "nodewatch_requests_total{", "outcome=\"failed\""),
        metric("nodewatch_retry_budget_exhausted_total"),
        metric_filtered(metrics, "nodewatch_breaker_transitions_total{", "to=\"open\""),
    );

    assert!(exports.len() >= 2, "too few exports ran: {}", exports.len());
    assert!(
        compared.differences.is_empty(),
        "exports differ:\n{}",
        compared.differences.join("\n")
    );
    assert_eq!(compared.rows_lost, 0);
    assert!(log.wrong.is_empty(), "wrong answers: {:#?}", log.wrong);
    assert!(
        outside.is_empty(),
        "{} failed requests while a node could answer, e.g.:\n{}",
        outside.len(),
        outside
            .iter()
            .take(10)
            .map(|f| format!("at {:?}..{:?}: {}", f.start, f.end, f.what))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        during.iter().all(|f| f.well_formed),
        "all-down answers: {during:#?}"
    );
    assert!(
        log.slowest <= REQUEST_TIMEOUT + Duration::from_secs(3),
        "a request took {:?} (request timeout {REQUEST_TIMEOUT:?})",
        log.slowest
    );
    assert!(
        end as f64 <= warm as f64 * 1.10,
        "RSS grew: {warm} KiB after warm-up, {end} KiB at the end"
    );
}

// === the exporter ===

struct Export {
    n: usize,
    /// `ethereumetl` or `nodewatch-export`.
    tool: &'static str,
    end: u64,
    files: Option<ExportFiles>,
    error: String,
}

struct ExportFiles {
    blocks: PathBuf,
    transactions: PathBuf,
    receipts: PathBuf,
    logs: PathBuf,
}

/// Exports blocks 0..=E (E: a few blocks below the mining height, rounded down to a multiple
/// of 8 so the ranges repeat) and all receipts, through nodewatch, until told to stop.
async fn export_loop(url: &str, shared: &Shared, out: &Path, hashes: &Path) -> Vec<Export> {
    let mut exports = Vec::new();
    while !shared.stop_exports.load(Ordering::SeqCst) {
        let n = exports.len();
        let end = (shared.target.load(Ordering::SeqCst).saturating_sub(3) / 8 * 8).max(30);
        let dir = out.join(format!("{n}"));
        let (url2, dir2, hashes2) = (url.to_string(), dir.clone(), hashes.to_path_buf());
        let run = tokio::spawn(async move {
            let blocks_opts = EtlOptions {
                batch_size: 4,
                timeout: Duration::from_secs(120),
                ..EtlOptions::default()
            };
            let receipts_opts = EtlOptions {
                batch_size: 10,
                ..blocks_opts.clone()
            };
            let b =
                etl::export_blocks_and_transactions_with(&url2, 0, end, &dir2, &blocks_opts).await;
            let r =
                etl::export_receipts_and_logs_with(&url2, &hashes2, &dir2, &receipts_opts).await;
            ExportFiles {
                blocks: b.blocks,
                transactions: b.transactions,
                receipts: r.receipts,
                logs: r.logs,
            }
        });
        let (files, error) = match run.await {
            Ok(files) => (Some(files), String::new()),
            Err(e) => (None, panic_text(e)),
        };
        exports.push(Export {
            n,
            tool: "ethereumetl",
            end,
            files,
            error,
        });
        // The same exports with nodewatch-export: small batches, several workers.
        let n = exports.len();
        let (files, error) = match ours(url, end, hashes, &out.join(format!("{n}"))).await {
            Ok(files) => (Some(files), String::new()),
            Err(e) => (None, e),
        };
        exports.push(Export {
            n,
            tool: "nodewatch-export",
            end,
            files,
            error,
        });
    }
    exports
}

/// `nodewatch-export` (ethereumetl's command line) for blocks 0..=end and the receipts.
async fn ours(url: &str, end: u64, hashes: &Path, dir: &Path) -> Result<ExportFiles, String> {
    std::fs::create_dir_all(dir).unwrap();
    let files = ExportFiles {
        blocks: dir.join("blocks.csv"),
        transactions: dir.join("transactions.csv"),
        receipts: dir.join("receipts.csv"),
        logs: dir.join("logs.csv"),
    };
    let runs = [
        export::blocks_and_transactions(
            url,
            (0, end),
            Some(&files.blocks),
            Some(&files.transactions),
            &["-b", "3", "-w", "4"],
        ),
        export::receipts_and_logs(
            url,
            hashes,
            Some(&files.receipts),
            Some(&files.logs),
            &["-b", "5", "-w", "4"],
        ),
    ];
    for args in runs {
        let run = export::exporter_async(&args).output();
        let out = tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .map_err(|_| format!("nodewatch-export {} timed out", args[0]))?
            .map_err(|e| format!("cannot run nodewatch-export: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "nodewatch-export {} failed: {}\n{}",
                args[0],
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(files)
}

fn panic_text(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
            .chars()
            .take(3000)
            .collect(),
        Err(e) => e.to_string(),
    }
}

fn lines(b: &[u8]) -> i64 {
    b.iter().filter(|&&c| c == b'\n').count() as i64
}

// === the miner ===

/// Raises the target height every [`BLOCK_EVERY`] and brings every mining node to it, with
/// the same timestamps everywhere (so the nodes' blocks are identical).
async fn mine(shared: Arc<Shared>) {
    let mut next = Instant::now();
    while !shared.stop_mining.load(Ordering::SeqCst) {
        if Instant::now() >= next {
            shared.target.fetch_add(1, Ordering::SeqCst);
            next += BLOCK_EVERY;
        }
        let target = shared.target.load(Ordering::SeqCst);
        for i in 0..3 {
            if shared.mining[i].load(Ordering::SeqCst) {
                let _ = mine_to(&shared.urls[i], target, shared.genesis_timestamp).await;
            }
        }
        // The miner's pace (a tick every 100 ms), not a wait.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn mine_to(url: &str, target: u64, genesis: u64) -> Result<(), rpc::RpcError> {
    let timeout = Duration::from_secs(1);
    loop {
        let head = rpc::try_call_timeout(url, "eth_blockNumber", json!([]), timeout).await?;
        let head = rpc::quantity(&head);
        if head >= target {
            return Ok(());
        }
        let ts = genesis + BLOCK_TIME * (head + 1);
        rpc::try_call_timeout(url, "evm_mine", json!([{ "timestamp": ts }]), timeout).await?;
    }
}

// === the load ===

/// What the load checks answers against, read from a node before any fault.
#[derive(Clone)]
struct Expected {
    block_hashes: Arc<Vec<String>>,
    /// Transaction hash -> (block hash, status).
    receipts: Arc<Vec<(String, String, String)>>,
    /// Account -> balance at block 30.
    balances: Arc<Vec<(String, String)>>,
}

impl Expected {
    async fn read(url: &str, chain: &ChainInfo) -> Expected {
        let mut receipts = Vec::new();
        for h in &chain.tx_hashes {
            let r = rpc::call(url, "eth_getTransactionReceipt", json!([h])).await;
            receipts.push((
                h.clone(),
                r["blockHash"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            ));
        }
        let mut balances = Vec::new();
        for a in &chain.accounts {
            let b = rpc::call(url, "eth_getBalance", json!([a, "0x1e"])).await;
            balances.push((a.clone(), b.as_str().unwrap().to_string()));
        }
        Expected {
            block_hashes: Arc::new(chain.block_hashes.clone()),
            receipts: Arc::new(receipts),
            balances: Arc::new(balances),
        }
    }
}

#[derive(Default)]
struct LoadLog {
    requests: u64,
    items: u64,
    ok: u64,
    failures: Vec<Failure>,
    wrong: Vec<String>,
    slowest: Duration,
}

#[derive(Debug)]
struct Failure {
    start: Duration,
    end: Duration,
    /// A JSON-RPC -32603 answer (or a right answer from the cache) for each item, with the
    /// right ids.
    well_formed: bool,
    what: String,
}

/// One check: (request item, check of its result).
type Check = (Value, Box<dyn Fn(&Value) -> bool + Send>);

fn pick(rng: &mut SplitMix64, e: &Expected, id: u64) -> Check {
    let item = |method: &str, params: Value| json!({"jsonrpc":"2.0","id":id,"method":method,"params":params});
    match rng.below(5) {
        0 | 1 => {
            let n = rng.below(e.block_hashes.len() as u64);
            let want = e.block_hashes[n as usize].clone();
            (
                item(
                    "eth_getBlockByNumber",
                    json!([format!("{n:#x}"), rng.chance(0.5)]),
                ),
                Box::new(move |r| r["hash"] == want.as_str()),
            )
        }
        2 => {
            let (h, block, status) =
                e.receipts[rng.below(e.receipts.len() as u64) as usize].clone();
            (
                item("eth_getTransactionReceipt", json!([h])),
                Box::new(move |r| {
                    r["transactionHash"] == h.as_str()
                        && r["blockHash"] == block.as_str()
                        && r["status"] == status.as_str()
                }),
            )
        }
        3 => {
            let (a, b) = e.balances[rng.below(e.balances.len() as u64) as usize].clone();
            (
                item("eth_getBalance", json!([a, "0x1e"])),
                Box::new(move |r| r == &json!(b)),
            )
        }
        _ => (item("eth_chainId", json!([])), Box::new(|r| r == "0x7a69")),
    }
}

async fn load(
    url: String,
    shared: Arc<Shared>,
    log: Arc<Mutex<LoadLog>>,
    expect: Expected,
    seed: u64,
    started: Instant,
) {
    let client = rpc::Client::new().timeout(REQUEST_TIMEOUT + Duration::from_secs(10));
    let mut rng = SplitMix64::new(seed);
    let mut next_id = 1u64;
    while !shared.stop_load.load(Ordering::SeqCst) {
        let size = if rng.chance(0.3) { 1 + rng.below(8) } else { 1 };
        let checks: Vec<Check> = (0..size)
            .map(|_| {
                next_id += 1;
                pick(&mut rng, &expect, next_id)
            })
            .collect();
        let batch = size > 1 || rng.chance(0.2);
        let items: Vec<&Value> = checks.iter().map(|(v, _)| v).collect();
        let body = if batch {
            json!(items).to_string()
        } else {
            items[0].to_string()
        };
        let start = started.elapsed();
        let answer = client.post(&url, body).await.map(|r| (r.status, r.body));
        let end = started.elapsed();
        record(
            &mut log.lock().unwrap(),
            size,
            start,
            end,
            batch,
            &items,
            &checks,
            answer,
        );
        // The client's pace, not a wait.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Books one load request: its answer checked item by item.
#[allow(clippy::too_many_arguments)]
fn record(
    log: &mut LoadLog,
    size: u64,
    start: Duration,
    end: Duration,
    batch: bool,
    items: &[&Value],
    checks: &[Check],
    answer: Result<(u16, Bytes), String>,
) {
    log.requests += 1;
    log.items += size;
    log.slowest = log.slowest.max(end - start);
    let parsed: Result<Vec<Value>, String> = match answer {
        Err(e) if e.contains("no response within") => {
            Err(format!("no answer (client timeout): {e}"))
        }
        Err(e) => Err(format!("transport: {e}")),
        Ok((status, b)) if status != 200 => {
            Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&b)))
        }
        Ok((_, b)) => match serde_json::from_slice::<Value>(&b) {
            Ok(Value::Array(a)) if batch => Ok(a),
            Ok(v) if !batch => Ok(vec![v]),
            _ => Err(format!(
                "not a JSON-RPC answer: {}",
                String::from_utf8_lossy(&b)
            )),
        },
    };
    match parsed {
        Err(what) => log.failures.push(Failure {
            start,
            end,
            well_formed: false,
            what,
        }),
        Ok(answers) => {
            let ids_ok = answers.len() == checks.len()
                && answers
                    .iter()
                    .zip(checks)
                    .all(|(a, (c, _))| a["id"] == c["id"] && a["jsonrpc"] == "2.0");
            let errors: Vec<&Value> = answers
                .iter()
                .filter(|a| a.get("error").is_some())
                .collect();
            if !ids_ok {
                log.wrong
                    .push(format!("ids/order: sent {items:?}, got {answers:?}"));
            } else if !errors.is_empty() {
                // Every item is -32603, or a right answer nodewatch had kept (the answer
                // cache serves final blocks even while every node is down).
                let well_formed = errors.iter().all(|a| a["error"]["code"] == -32603)
                    && answers
                        .iter()
                        .zip(checks)
                        .all(|(a, (_, check))| a.get("error").is_some() || check(&a["result"]));
                log.failures.push(Failure {
                    start,
                    end,
                    well_formed,
                    what: format!("{:?}", errors[0]),
                });
            } else {
                let mut all = true;
                for (a, (c, check)) in answers.iter().zip(checks) {
                    if !check(&a["result"]) {
                        all = false;
                        log.wrong.push(format!("{c} -> {a}"));
                    }
                }
                if all {
                    log.ok += 1;
                }
            }
        }
    }
}

// === helpers ===

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn wait_serving(url: &str) {
    wait_until("nodewatch to serve", Duration::from_secs(20), async || {
        rpc::try_call_timeout(url, "eth_chainId", json!([]), Duration::from_secs(2)).await
            == Ok(json!("0x7a69"))
    })
    .await;
}

async fn get_text(url: &str) -> String {
    rpc::get(url).await.1
}

/// Sum of every sample of a metric family (lines starting with `prefix`).
fn metric_sum(text: &str, prefix: &str) -> f64 {
    metric_filtered(text, prefix, "")
}

/// Sum of the samples starting with `prefix` whose labels contain `with`.
fn metric_filtered(text: &str, prefix: &str, with: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix) && l.contains(with))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
