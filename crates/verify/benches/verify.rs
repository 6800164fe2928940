//! How fast verification is, on real mainnet blocks (`tests/fixtures/<dir>/`, the complete
//! ones: block and receipts). Plain `std::time`; prints `FIGURE name value unit` lines
//! computed from the measurements:
//!
//! - `verify_block_us.<dir>`, `verify_receipts_us.<dir>`: one call, default checks.
//! - `blocks_per_s.<dir>`: block + block receipts verified per second on one core.
//! - `blocks_per_s_150tx`: the same, scaled to a 150-transaction block (the goal: ≥ 1,000).
//! - `senders_us_per_tx`, `blocks_per_s_150tx_senders`: the ecrecover cost (`Checks::senders`).
//! - `receipt_batch_100_us`: 100 single receipts (`eth_getTransactionReceipt` answers)
//!   checked against a verified set; `block_receipts_per_100_us`: `eth_getBlockReceipts`
//!   verification per 100 receipts.
//!
//! - `keccak_mb_per_s`: this machine's keccak-256 speed, for comparing runs across machines.
//!
//! Times are on-CPU time of the measuring thread (Linux schedstat; wall time elsewhere), so
//! the figures are per core even while other jobs share the machine.
//!
//! Run: `cargo bench -p nodewatch-verify` (one thread: per core figures).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nodewatch_verify::{verify_block, verify_block_receipts, verify_receipt, Checks};
use serde_json::Value;

/// How long each measurement runs (after one warm-up call).
const MEASURE_FOR: Duration = Duration::from_millis(1500);
/// The block size the goal is stated for.
const GOAL_TXS: f64 = 150.0;
/// The complete fixtures that are mainnet-sized.
const SIZED: [&str; 4] = ["london", "shanghai", "prague", "cancun-22196189"];

/// On-CPU time of this thread (first field of Linux's `/proc/thread-self/schedstat`, in ns):
/// the machine is shared (2 cores, parallel builds), so wall time would count time spent
/// waiting for a core. `None` where the file is missing: wall time is used then.
fn cpu_now() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    (ns > 0).then(|| Duration::from_nanos(ns))
}

/// Mean time of `f` (on-CPU where measurable) over repeated calls for about `MEASURE_FOR`.
fn time<T>(mut f: impl FnMut() -> T) -> Duration {
    black_box(f());
    let (start, cpu_start) = (Instant::now(), cpu_now());
    let mut n = 0u32;
    while start.elapsed() < MEASURE_FOR {
        black_box(f());
        n += 1;
    }
    match (cpu_start, cpu_now()) {
        (Some(a), Some(b)) => (b - a) / n,
        _ => start.elapsed() / n,
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn figure(name: &str, value: f64, unit: &str) {
    println!("FIGURE {name} {value:.1} {unit}");
}

/// One fixture: its block and receipts answers.
struct Fixture {
    name: &'static str,
    block: Vec<u8>,
    receipts: Vec<u8>,
}

fn load(name: &'static str) -> Option<Fixture> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    Some(Fixture {
        name,
        block: std::fs::read(dir.join("block.json")).ok()?,
        receipts: std::fs::read(dir.join("receipts.json")).ok()?,
    })
}

/// Per-fixture figures; returns (transactions, receipts, seconds per block+receipts, with senders).
fn bench_fixture(f: &Fixture) -> (usize, usize, f64, f64) {
    let checks = Checks::default();
    let block = verify_block(&f.block, &checks).expect("fixture verifies");
    let txs = block.transaction_count;
    let t_block = time(|| verify_block(&f.block, &checks).unwrap());
    let t_receipts =
        time(|| verify_block_receipts(&f.receipts, &block.header, Some(&block), &checks).unwrap());
    let t_senders = time(|| verify_block(&f.block, &Checks::all()).unwrap());
    figure(&format!("verify_block_us.{}", f.name), us(t_block), "us");
    figure(
        &format!("verify_receipts_us.{}", f.name),
        us(t_receipts),
        "us",
    );
    let per_block = (t_block + t_receipts).as_secs_f64();
    figure(
        &format!("blocks_per_s.{}", f.name),
        1.0 / per_block,
        "blocks/s",
    );
    let with_senders = (t_senders + t_receipts).as_secs_f64();
    figure(
        &format!("block_with_senders_us.{}", f.name),
        with_senders * 1e6,
        "us",
    );
    (txs, txs, per_block, with_senders)
}

/// 100 single receipts of `f` checked against its verified set.
fn bench_receipt_batch(f: &Fixture) -> Duration {
    let checks = Checks::default();
    let block = verify_block(&f.block, &checks).unwrap();
    let set = verify_block_receipts(&f.receipts, &block.header, Some(&block), &checks).unwrap();
    let all: Value = serde_json::from_slice(&f.receipts).unwrap();
    let singles: Vec<Vec<u8>> = all
        .as_array()
        .unwrap()
        .iter()
        .cycle()
        .take(100)
        .map(|r| serde_json::to_vec(r).unwrap())
        .collect();
    time(|| {
        for one in &singles {
            verify_receipt(one, &set).unwrap();
        }
    })
}

/// `cargo bench -p nodewatch-verify -- profile <dir>`: verify one fixture in a loop for
/// `MEASURE_FOR` × 4 (default checks), to run under a profiler.
fn profile(name: &str) {
    let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
    let f = load(name).expect("a complete fixture");
    let checks = Checks::default();
    let start = Instant::now();
    while start.elapsed() < MEASURE_FOR * 4 {
        let block = verify_block(&f.block, &checks).unwrap();
        black_box(
            verify_block_receipts(&f.receipts, &block.header, Some(&block), &checks).unwrap(),
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "profile") {
        return profile(args.get(i + 1).map_or("cancun-22196189", String::as_str));
    }
    // Context for the figures below: keccak is about 40% of verifying, so they scale with it.
    let data = vec![0x5au8; 1 << 20];
    let t = time(|| alloy_primitives::keccak256(&data));
    figure("keccak_mb_per_s", 1.0 / t.as_secs_f64(), "MB/s");
    let fixtures: Vec<Fixture> = SIZED.into_iter().filter_map(load).collect();
    if fixtures.is_empty() {
        eprintln!("no mainnet fixtures under tests/fixtures: nothing to measure");
        return;
    }
    let (mut txs, mut receipts, mut secs, mut secs_senders) = (0usize, 0usize, 0.0, 0.0);
    for f in &fixtures {
        let (t, r, s, ss) = bench_fixture(f);
        (txs, receipts, secs, secs_senders) = (txs + t, receipts + r, secs + s, secs_senders + ss);
    }
    let per_tx = secs / txs as f64;
    figure("blocks_per_s_150tx", 1.0 / (per_tx * GOAL_TXS), "blocks/s");
    let senders_per_tx = (secs_senders - secs) / txs as f64;
    figure("senders_us_per_tx", senders_per_tx * 1e6, "us");
    figure(
        "blocks_per_s_150tx_senders",
        1.0 / (secs_senders / txs as f64 * GOAL_TXS),
        "blocks/s",
    );
    let batch = bench_receipt_batch(&fixtures[fixtures.len() - 1]);
    figure("receipt_batch_100_us", us(batch), "us");
    let receipts_secs: f64 = fixtures
        .iter()
        .map(|f| {
            let block = verify_block(&f.block, &Checks::default()).unwrap();
            time(|| {
                verify_block_receipts(&f.receipts, &block.header, Some(&block), &Checks::default())
                    .unwrap()
            })
            .as_secs_f64()
        })
        .sum();
    figure(
        "block_receipts_per_100_us",
        receipts_secs / receipts as f64 * 100.0 * 1e6,
        "us",
    );
}
