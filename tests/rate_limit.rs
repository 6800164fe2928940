//! Back-pressure, not failure: a paid provider's rate limit in front of anvil (testkit's
//! `limiter`: a token bucket of [`LIMIT`] calls/s, each batch item billed one; over it HTTP
//! 429 with `Retry-After: 1`, or -32005 "exceeded its compute units per second capacity") and
//! the real `ethereumetl -w 8` exporting blocks, transactions, receipts and logs through
//! nodewatch with that provider as its only upstream. One scenario in named phases, on one
//! chain, so the phases do not compete for the cores:
//!
//! 1. one sidecar, 429s: the export has the direct export's rows; at most 1% of the requests
//!    are refused, all at the first contact (the requests in flight when the first limit
//!    answer comes: nothing is known before it); the provider is busy for at most 1.3×
//!    calls ÷ limit;
//! 2. two sidecars on the one key, exporting at once: both complete with the same rows, at
//!    most 5% of the requests refused;
//! 3. the same with the key's limit shared exactly through a real Redis (`budget_key`,
//!    `max_rps` = the limit): at most 1% refused, and the provider busy for at most 1.3×
//!    calls ÷ limit;
//! 4. one sidecar, -32005 answers inside HTTP 200: concurrent batches all answered.
//!
//! Two short tests on scripted upstreams check the rules themselves: a 429 is waited out
//! (`Retry-After`) without opening the breaker or marking the node down, and overflow goes
//! to a lower rank only from an upstream that may `spill`.
//!
//! The limit is 80 calls/s, not a plan's 120: ethereum-etl on two busy cores does not
//! always send 120 calls a second, and a limit it does not reach tests nothing. `-w 8` writes
//! rows in the order its batches finish, so files are compared as sorted rows (two direct
//! runs differ in order too). Every figure is printed as a `FIGURE` line.
//! `RATE_LIMIT_EXTRA_BLOCKS` (default 600, after the fixture chain's 30: enough requests that
//! the first contact's few refusals are under 1% of them) and
//! `RATE_LIMIT_BATCH` (ethereum-etl's `-b`, default 1: a refused request is one call) size
//! the run.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nodewatch::config::Config;
use nodewatch::upstream::pace::PaceView;
use support::anvil::Anvil;
use support::chain::{build_chain, mine};
use support::etl::{self, run_ethereumetl};
use support::limiter::{Counts, Limiter, Refusal};
use support::nodewatch::{test_config, Nodewatch};
use support::redis::RedisServer;
use support::rpc;
use support::scripted;

/// The provider's limit, calls per second.
const LIMIT: u32 = 80;

/// What one export wrote.
struct Outputs {
    files: [PathBuf; 4],
}

/// The chain, its transaction hashes and the direct export to compare with.
struct Fixture {
    node: Anvil,
    dir: tempfile::TempDir,
    head: u64,
    hashes: PathBuf,
    batch: String,
    direct: Outputs,
    /// The direct export's own time: ethereum-etl's start-up and work, no limit.
    direct_time: Duration,
    /// Calls one export makes: blocks plus receipts.
    calls: u64,
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn fixture(anvil: &Path) -> Fixture {
    let node = Anvil::spawn(anvil).await;
    let chain = build_chain(&node.url()).await;
    let head = mine(&node.url(), env_or("RATE_LIMIT_EXTRA_BLOCKS", 600)).await;
    let dir = tempfile::tempdir().unwrap();
    let hashes = dir.path().join("hashes.txt");
    chain.write_tx_hashes(&hashes);
    let batch = env_or("RATE_LIMIT_BATCH", 1).to_string();
    let mut fixture = Fixture {
        direct: Outputs {
            files: Default::default(),
        },
        direct_time: Duration::ZERO,
        calls: head + 1 + chain.tx_hashes.len() as u64,
        node,
        dir,
        head,
        hashes,
        batch,
    };
    let (direct, took, _) = export(&fixture, &fixture.node.url(), "direct", None).await;
    fixture.direct = direct;
    fixture.direct_time = took;
    fixture
}

/// `ethereumetl export_blocks_and_transactions` then `export_receipts_and_logs`, `-w 8`,
/// from `url` into `dir/<name>`: what it wrote, how long both took, and (given the provider)
/// the time from each command's first call the provider took to its last, added up, with the
/// calls taken meanwhile.
async fn export(
    f: &Fixture,
    url: &str,
    name: &str,
    provider: Option<&Limiter>,
) -> (Outputs, Duration, (Duration, u64)) {
    let out = f.dir.path().join(name);
    std::fs::create_dir_all(&out).unwrap();
    let files = ["blocks.csv", "transactions.csv", "receipts.csv", "logs.csv"].map(|n| out.join(n));
    let opts = ["-b", f.batch.as_str(), "-w", "8"];
    let runs = [
        etl::blocks_and_transactions(url, (0, f.head), Some(&files[0]), Some(&files[1]), &opts),
        etl::receipts_and_logs(url, &f.hashes, Some(&files[2]), Some(&files[3]), &opts),
    ];
    let started = Instant::now();
    let mut busy = (Duration::ZERO, 0);
    for args in runs {
        let mark = provider.map(Limiter::mark);
        run_ethereumetl(&args, Duration::from_secs(60)).await;
        if let (Some(provider), Some(mark)) = (provider, mark) {
            let (span, calls) = provider.busy_since(mark);
            busy = (busy.0 + span, busy.1 + calls);
        }
    }
    (Outputs { files }, started.elapsed(), busy)
}

/// Panics unless the two exports hold the same rows (each file's lines, sorted).
fn assert_same_rows(a: &Outputs, b: &Outputs) {
    for (x, y) in a.files.iter().zip(&b.files) {
        let rows = |p: &Path| {
            let text = std::fs::read_to_string(p).unwrap();
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            lines.sort();
            lines
        };
        let (rx, ry) = (rows(x), rows(y));
        assert!(rx.len() > 1, "{} has no rows", x.display());
        assert!(
            rx == ry,
            "{} and {} differ:\n{}",
            x.display(),
            y.display(),
            etl::diff_excerpt(rx.join("\n").as_bytes(), ry.join("\n").as_bytes())
        );
    }
}

/// A sidecar's configuration: the provider as its only upstream, production probe timing
/// (probes are calls the provider bills too).
fn sidecar(provider: &str) -> Config {
    let mut config = test_config(&[provider.to_owned()]);
    config.probe = Default::default();
    config.proxy.request_timeout = Duration::from_secs(30);
    config
}

async fn start_sidecar(provider: &Limiter) -> Nodewatch {
    let nw = Nodewatch::start_with(sidecar(&provider.url())).await;
    nw.wait_all_healthy().await;
    nw
}

fn since(counts: Counts, before: Counts) -> Counts {
    Counts {
        requests: counts.requests - before.requests,
        refused: counts.refused - before.refused,
        calls: counts.calls - before.calls,
    }
}

/// The share of requests refused, in per cent.
fn percent(counts: Counts) -> f64 {
    100.0 * counts.refused_share()
}

/// Prints what the provider saw and the sidecar learned.
fn report(phase: &str, counts: Counts, wall: Duration, nw: &[&Nodewatch], provider: &Limiter) {
    let ideal = counts.calls as f64 / f64::from(LIMIT);
    let learned: Vec<String> = nw
        .iter()
        .map(|nw| {
            let pace = pace(nw);
            let rate = pace.rate.map_or("-".into(), |r| format!("{r:.1}"));
            let waited = nw.metric("nodewatch_rate_limit_wait_seconds_total{upstream=\"u1\"}");
            let waits = nw.metric("nodewatch_rate_limit_waits_total{upstream=\"u1\"}");
            format!(
                "{rate}/s after {} limit answers ({waits} requests waited {waited:.1} s in all)",
                pace.limited
            )
        })
        .collect();
    eprintln!(
        "FIGURE rate-limit {phase}: {} HTTP requests, {} refused ({:.2}%), {} calls billed; \
         wall {:.2} s against an ideal (calls ÷ limit) of {ideal:.2} s; learned {}; \
         calls taken and requests refused by the provider each second: {:?}",
        counts.requests,
        counts.refused,
        percent(counts),
        counts.calls,
        wall.as_secs_f64(),
        learned.join(", "),
        provider.per_second(),
    );
}

/// The sidecar's pace of its one upstream, now.
fn pace(nw: &Nodewatch) -> PaceView {
    let now = tokio::time::Instant::now();
    nw.handle.snapshot.load().handles[0].limits.pace.view(now)
}

/// Each sidecar's upstream is healthy with its breaker closed: back-pressure is not failure.
fn assert_not_failed(nw: &Nodewatch) {
    let state = nw.handle.snapshot.load().upstreams[0].clone();
    assert!(state.is_serving(), "{state:?}");
    assert_eq!(
        nw.handle.snapshot.load().handles[0]
            .breaker
            .state(tokio::time::Instant::now()),
        nodewatch::upstream::breaker::BreakerState::Closed
    );
    assert_eq!(
        nw.metric("nodewatch_requests_total{method=\"eth_getBlockByNumber\",outcome=\"failed\""),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_provider_slows_the_export_and_never_fails_it() {
    let Some(tools) = support::tools::require_all() else {
        return;
    };
    let f = fixture(&tools.anvil).await;
    eprintln!(
        "FIGURE rate-limit fixture: blocks 0..={}, {} calls an export, -b {} -w 8; \
         direct export (no limit) {:.2} s",
        f.head,
        f.calls,
        f.batch,
        f.direct_time.as_secs_f64()
    );

    // Phase 1: one sidecar, HTTP 429 + Retry-After: the same rows, few refusals, and the
    // provider busy for about calls ÷ limit.
    let provider = Limiter::start(&f.node.url(), LIMIT, Refusal::Http429).await;
    let nw = start_sidecar(&provider).await;
    let before = provider.counts();
    let (out, wall, (busy, busy_calls)) = export(&f, &nw.url, "one", Some(&provider)).await;
    let counts = since(provider.counts(), before);
    assert_same_rows(&f.direct, &out);
    report("one sidecar, 429", counts, wall, &[&nw], &provider);
    let ideal = busy_calls as f64 / f64::from(LIMIT);
    let ratio = busy.as_secs_f64() / ideal;
    eprintln!(
        "FIGURE rate-limit one sidecar, time: the provider was busy {:.2} s for {busy_calls} \
         calls, ideal {ideal:.2} s: {ratio:.2}× ideal; wall {:.2} s = direct {:.2} s + {:.2} s",
        busy.as_secs_f64(),
        wall.as_secs_f64(),
        f.direct_time.as_secs_f64(),
        wall.saturating_sub(f.direct_time).as_secs_f64(),
    );
    // The first contact: until the first limit answer nothing is known of the limit, and the
    // requests already in flight then (up to -w 8) are refused with it. Past that second,
    // at most 1% of the requests.
    let refused = provider.refused_at();
    let later = refused
        .iter()
        .filter(|at| {
            refused
                .first()
                .is_some_and(|first| **at > *first + Duration::from_secs(1))
        })
        .count();
    eprintln!(
        "FIGURE rate-limit one sidecar, refusals: {} at the first contact, {later} after it \
         ({:.2}% of the requests)",
        refused.len() - later,
        100.0 * later as f64 / counts.requests as f64
    );
    assert!(counts.calls >= f.calls, "{counts:?}");
    assert!(refused.len() - later <= 8, "first contact: {refused:?}");
    assert!(
        later as f64 <= 0.01 * counts.requests as f64,
        "{later} refusals after the first contact: {refused:?}"
    );
    assert!(
        percent(counts) <= 1.0,
        "the provider refused {:.2}% of the requests: {counts:?}",
        percent(counts)
    );
    assert!(ratio <= 1.3, "{ratio:.2}× the ideal time");
    assert_not_failed(&nw);
    // A rate was learned, and not a starving one (a batch paced far under the limit would
    // wait past its deadline). Between limit answers the rate grows past the limit, probing
    // for more (the provider's bucket and the next limit answer hold it): a snapshot may be
    // above the limit, as BENCHMARKS.md section 8's plots show, so only a sanity bound above.
    let learned = pace(&nw).learned;
    assert!(
        learned.is_some_and(|r| r > 0.5 * f64::from(LIMIT) && r < 3.0 * f64::from(LIMIT)),
        "learned {learned:?} for a limit of {LIMIT}"
    );
    // What was learned shows in /status, and in the metrics, once the monitor publishes.
    nw.wait_for("the learned rate published", Duration::from_secs(5), |s| {
        s.upstreams[0].learned_rps.is_some()
    })
    .await;
    let (_, status) = rpc::get(&format!("{}/status", nw.admin)).await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let row = &status["upstreams"][0];
    assert!(
        row["learned_rps"].as_f64().is_some_and(|r| r > 0.0),
        "{row}"
    );
    assert!(
        row["rate_limited"].as_u64().is_some_and(|n| n >= 1),
        "{row}"
    );
    assert!(nw.metric("nodewatch_upstream_learned_rps{upstream=\"u1\"}") > 0.0);
    assert!(nw.metric("nodewatch_rate_limited_total{upstream=\"u1\"}") >= 1.0);
    nw.stop().await;

    // Phase 2: two sidecars on one key, exporting at once: both complete.
    let provider = Limiter::start(&f.node.url(), LIMIT, Refusal::Http429).await;
    let (a, b) = (
        start_sidecar(&provider).await,
        start_sidecar(&provider).await,
    );
    let before = provider.counts();
    let started = Instant::now();
    let ((out_a, ..), (out_b, ..)) = tokio::join!(
        export(&f, &a.url, "two-a", None),
        export(&f, &b.url, "two-b", None)
    );
    let wall = started.elapsed();
    let counts = since(provider.counts(), before);
    assert_same_rows(&f.direct, &out_a);
    assert_same_rows(&f.direct, &out_b);
    report("two sidecars, 429", counts, wall, &[&a, &b], &provider);
    assert!(counts.calls >= 2 * f.calls, "{counts:?}");
    assert!(
        percent(counts) <= 5.0,
        "the provider refused {:.2}% of the requests: {counts:?}",
        percent(counts)
    );
    assert_not_failed(&a);
    assert_not_failed(&b);
    a.stop().await;
    b.stop().await;

    // Phase 3: the same two sidecars sharing the key's budget through a real Redis.
    shared_budget_phase(&f).await;

    // Phase 4: -32005 answers inside HTTP 200 are waited out the same way: 8 clients, 10
    // batches of 4 blocks each, at once (four seconds' calls).
    let provider = Limiter::start(&f.node.url(), LIMIT, Refusal::RpcError).await;
    let nw = start_sidecar(&provider).await;
    let before = provider.counts();
    let started = Instant::now();
    let clients = (0..8u64).map(|client| {
        let (url, direct, head) = (nw.url.clone(), f.node.url(), f.head);
        tokio::spawn(async move {
            for round in 0..10u64 {
                let first = (client * 10 + round) * 4 % (head - 3);
                let body = blocks_batch(first..first + 4);
                let (status, through) = rpc::post(&url, &body).await;
                assert_eq!(status, 200, "{through}");
                let (_, direct) = rpc::post(&direct, &body).await;
                let through: serde_json::Value = serde_json::from_str(&through).unwrap();
                let direct: serde_json::Value = serde_json::from_str(&direct).unwrap();
                assert_eq!(through, direct, "blocks {first}..{}", first + 4);
            }
        })
    });
    for client in futures_util::future::join_all(clients).await {
        client.unwrap();
    }
    let wall = started.elapsed();
    let counts = since(provider.counts(), before);
    report("one sidecar, -32005", counts, wall, &[&nw], &provider);
    assert!(
        pace(&nw).limited > 0,
        "the provider never refused: nothing was tested"
    );
    assert_not_failed(&nw);
    nw.stop().await;
}

/// Phase 3: two sidecars whose upstream has the same `budget_key` and `max_rps` = the limit,
/// sharing it through a real Redis, exporting at once.
async fn shared_budget_phase(f: &Fixture) {
    let Some(bin) = support::tools::require_redis() else {
        return;
    };
    let redis = RedisServer::start(&bin);
    let provider = Limiter::start(&f.node.url(), LIMIT, Refusal::Http429).await;
    let start = || async {
        let mut config = sidecar(&provider.url());
        config.redis.url = Some(redis.url());
        config.upstreams[0].max_rps = Some(LIMIT);
        config.upstreams[0].budget_key = Some("provider-key".into());
        let nw = Nodewatch::start_with(config).await;
        nw.wait_all_healthy().await;
        nw
    };
    let (a, b) = (start().await, start().await);
    let before = provider.counts();
    let mark = provider.mark();
    let started = Instant::now();
    let ((out_a, ..), (out_b, ..)) = tokio::join!(
        export(f, &a.url, "redis-a", None),
        export(f, &b.url, "redis-b", None)
    );
    let wall = started.elapsed();
    let (busy, busy_calls) = provider.busy_since(mark);
    let counts = since(provider.counts(), before);
    assert_same_rows(&f.direct, &out_a);
    assert_same_rows(&f.direct, &out_b);
    report(
        "two sidecars, shared budget (Redis)",
        counts,
        wall,
        &[&a, &b],
        &provider,
    );
    let ideal = busy_calls as f64 / f64::from(LIMIT);
    let ratio = busy.as_secs_f64() / ideal;
    let shared =
        |nw: &Nodewatch| nw.metric("nodewatch_shared_budget_fallbacks_total{upstream=\"u1\"}");
    eprintln!(
        "FIGURE rate-limit two sidecars, shared budget, time: the provider was busy {:.2} s \
         for {busy_calls} calls, ideal {ideal:.2} s: {ratio:.2}× ideal; fallbacks to the \
         local limiter {} and {}",
        busy.as_secs_f64(),
        shared(&a),
        shared(&b),
    );
    // At least one export's calls: what one sidecar kept final the other may read from the
    // shared cache in Redis instead of the provider.
    assert!(counts.calls >= f.calls, "{counts:?}");
    assert!(
        percent(counts) <= 1.0,
        "the provider refused {:.2}% of the requests: {counts:?}",
        percent(counts)
    );
    assert!(ratio <= 1.3, "{ratio:.2}× the ideal time");
    assert_eq!(
        (shared(&a), shared(&b)),
        (0.0, 0.0),
        "Redis decided every budget"
    );
    assert_eq!(a.metric("nodewatch_redis_up"), 1.0);
    assert_not_failed(&a);
    assert_not_failed(&b);
    a.stop().await;
    b.stop().await;
}

/// A batch of `eth_getBlockByNumber` (full transactions) for `blocks`.
fn blocks_batch(blocks: std::ops::Range<u64>) -> String {
    let calls: Vec<serde_json::Value> = blocks
        .map(|n| {
            serde_json::json!({"jsonrpc": "2.0", "id": n, "method": "eth_getBlockByNumber",
                "params": [format!("{n:#x}"), true]})
        })
        .collect();
    serde_json::Value::Array(calls).to_string()
}

// === Without ethereum-etl: the rules, on scripted upstreams ===

/// `n` `eth_blockNumber` calls at once, each its own request: their results.
async fn concurrent_calls(url: &str, n: usize) -> Vec<String> {
    let calls = (0..n).map(|_| {
        let url = url.to_owned();
        tokio::spawn(async move {
            let (status, text) = rpc::post(
                &url,
                r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#,
            )
            .await;
            assert_eq!(status, 200, "{text}");
            let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
            answer["result"]
                .as_str()
                .unwrap_or_else(|| panic!("an error reached the client: {text}"))
                .to_owned()
        })
    });
    let results = futures_util::future::join_all(calls).await;
    results.into_iter().map(Result::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_waited_out_and_neither_opens_the_breaker_nor_marks_the_node_down() {
    let refusing = Arc::new(AtomicBool::new(false));
    let node = scripted::constant_node("0x10", Arc::clone(&refusing)).await;
    let mut config = test_config(&[node.url()]);
    config.breaker.failure_threshold = 2;
    let nw = Nodewatch::start_with(config).await;
    nw.wait_all_healthy().await;
    // Two seconds of 429s (probes included), and calls sent meanwhile.
    refusing.store(true, Ordering::SeqCst);
    let stop = {
        let refusing = Arc::clone(&refusing);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            refusing.store(false, Ordering::SeqCst);
        })
    };
    let started = Instant::now();
    let results = concurrent_calls(&nw.url, 6).await;
    let waited = started.elapsed();
    stop.await.unwrap();
    assert!(results.iter().all(|r| r == "0x10"), "{results:?}");
    assert!(
        waited >= Duration::from_millis(1900),
        "answered after {waited:?}"
    );
    assert_eq!(nw.status(1), nodewatch::upstream::health::Status::Healthy);
    assert_not_failed(&nw);
    assert!(nw.metric("nodewatch_rate_limited_total{upstream=\"u1\"}") >= 1.0);
    assert!(nw.metric("nodewatch_rate_limit_waits_total{upstream=\"u1\"}") >= 1.0);
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_spills_to_lower_ranks_only_where_allowed() {
    let never = Arc::new(AtomicBool::new(false));
    let paid = scripted::constant_node("0x1", Arc::clone(&never)).await;
    let fallback = scripted::constant_node("0x2", never).await;
    for spill in [true, false] {
        let mut config = test_config(&[paid.url(), fallback.url()]);
        config.probe.interval = Duration::from_secs(3600);
        config.upstreams[0].max_rps = Some(5);
        config.upstreams[0].spill = spill;
        let nw = Nodewatch::start_with(config).await;
        nw.wait_all_healthy().await;
        let started = Instant::now();
        let results = concurrent_calls(&nw.url, 15).await;
        let took = started.elapsed();
        let by_fallback = results.iter().filter(|r| *r == "0x2").count();
        eprintln!(
            "FIGURE rate-limit spill = {spill}: 15 calls at max_rps 5 (rank 1), {by_fallback} \
             answered by rank 2, in {:.2} s",
            took.as_secs_f64()
        );
        if spill {
            assert!(by_fallback >= 5, "{results:?}");
        } else {
            assert_eq!(by_fallback, 0, "{results:?}");
            assert!(
                took >= Duration::from_millis(1500),
                "{took:?}: 10 calls past the burst wait"
            );
        }
        nw.stop().await;
    }
}
