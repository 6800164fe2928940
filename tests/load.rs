//! Bounded loopback load through the real `nodewatch` binary against anvil: 64 keep-alive
//! connections for `NODEWATCH_LOAD_SECS` (default 8; `make load` runs 60), first steady, then
//! with rank 1 flapping (cut off for 1 s every 3 s). Pass: no failed request in either phase,
//! and the proxy's RSS, sampled every second, flat in each phase (end within 10% of the
//! phase's level after its warm-up). The load is wrk when `NODEWATCH_WRK` names it (`make load`), else a Rust loop
//! of the same shape. Prints p50/p99 and RSS start/peak/end.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::anvil::Anvil;
use support::binary::{rss_kib, Binary};
use support::relay::Relay;
use support::rpc;

const CONNECTIONS: usize = 64;
const BODY: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["0x1",false]}"#;

/// One phase's figures.
struct Figures {
    requests: u64,
    bad: u64,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_load_with_flat_memory() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let secs: u64 = std::env::var("NODEWATCH_LOAD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let a = Anvil::spawn(&anvil).await;
    let b = Anvil::spawn(&anvil).await;
    a.mine(2).await;
    b.mine(2).await;
    let flappy = Relay::start(&a.url(), 1).await;
    let toml = format!(
        "[probe]\ninterval = \"250ms\"\ntimeout = \"1s\"\n[proxy]\nattempt_timeout = \"2s\"\n\
         request_timeout = \"10s\"\n[[upstreams]]\nname = \"u1\"\nurl = \"{}\"\n\
         [[upstreams]]\nname = \"u2\"\nurl = \"{}\"\n",
        flappy.url(),
        b.url()
    );
    let nw = Binary::start(&toml, &[], &[]);
    nw.wait_all_healthy().await;
    let pid = nw.pid();
    let wrk = std::env::var("NODEWATCH_WRK")
        .ok()
        .filter(|w| !w.is_empty());
    let tool = if wrk.is_some() { "wrk" } else { "rust loop" };

    // RSS every second over both phases.
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let kib = rss_kib(pid).expect("nodewatch's VmRSS (is it still running?)");
                samples.push((started.elapsed(), kib));
                // A sample a second (pacing, not a wait).
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            samples
        })
    };
    let duration = Duration::from_secs(secs);
    let steady = run_load(&nw.url, duration, wrk.as_deref()).await;
    let switch = started.elapsed();

    // Rank 1 flaps: down 1 s in every 3 s.
    let flapping = Arc::new(AtomicBool::new(true));
    let flaps = {
        let flapping = Arc::clone(&flapping);
        tokio::spawn(async move {
            let mut n = 0;
            while flapping.load(Ordering::SeqCst) {
                // The scenario: up 2 s, down 1 s.
                tokio::time::sleep(Duration::from_secs(2)).await;
                flappy.set_down();
                n += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
                flappy.set_clean();
            }
            n
        })
    };
    let flapped = run_load(&nw.url, duration, wrk.as_deref()).await;
    flapping.store(false, Ordering::SeqCst);
    let flaps = flaps.await.unwrap();
    stop.store(true, Ordering::SeqCst);
    let samples = sampler.await.unwrap();
    let mut nw = nw;
    assert!(nw.is_running());
    assert!(nw.stop().success());

    for (phase, f) in [("steady", &steady), ("rank 1 flapping", &flapped)] {
        eprintln!(
            "FIGURE load {phase} ({tool}, {CONNECTIONS} connections, {secs} s): {} requests ({:.0}/s), {} failed, p50 {:?}, p99 {:?}, max {:?}",
            f.requests,
            f.requests as f64 / secs as f64,
            f.bad,
            f.p50,
            f.p99,
            f.max
        );
    }
    // Each phase is judged on its own: the flapping phase fills rank 2's connection pool
    // too, a one-time step; within a phase, memory must stay flat after its warm-up.
    let settle = Duration::from_secs((secs / 4).max(4));
    let mut flat = Vec::new();
    for (phase, from, to) in [
        ("steady", Duration::ZERO, switch),
        ("flapping", switch, Duration::MAX),
    ] {
        let in_phase: Vec<u64> = samples
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|s| s.1)
            .collect();
        let warm = samples
            .iter()
            .find(|(t, _)| *t >= from + settle)
            .map(|s| s.1)
            .unwrap_or_else(|| panic!("no RSS sample after the {phase} warm-up ({settle:?})"));
        let (peak, end) = (
            in_phase.iter().copied().max().unwrap_or(0),
            in_phase.last().copied().unwrap_or(0),
        );
        eprintln!(
            "FIGURE load RSS {phase}: start {} KiB, after warm-up ({settle:?}) {warm} KiB, peak {peak} KiB, end {end} KiB ({} samples)",
            in_phase.first().copied().unwrap_or(0),
            in_phase.len()
        );
        flat.push((phase, warm, end));
    }
    let series: Vec<String> = samples
        .iter()
        .step_by(5)
        .map(|(t, kib)| format!("{}s:{}", t.as_secs(), kib / 1024))
        .collect();
    eprintln!(
        "FIGURE load RSS series (MiB, every 5 s; {flaps} flaps of rank 1): {}",
        series.join(" ")
    );
    assert!(steady.requests > 0 && flapped.requests > 0);
    assert_eq!(steady.bad, 0, "failed requests under steady load");
    assert_eq!(flapped.bad, 0, "failed requests while rank 1 flapped");
    assert!(flaps >= 1);
    for (phase, warm, end) in flat {
        assert!(
            end as f64 <= warm as f64 * 1.10,
            "RSS not flat in the {phase} phase: {warm} KiB after warm-up, {end} KiB at the end"
        );
    }
    // Generous: the machine is shared, the build is a debug build.
    assert!(steady.p99 < Duration::from_secs(2), "p99 {:?}", steady.p99);
}

async fn run_load(url: &str, duration: Duration, wrk: Option<&str>) -> Figures {
    match wrk {
        Some(wrk) => run_wrk(wrk, url, duration).await,
        None => run_loop(url, duration).await,
    }
}

async fn run_wrk(wrk: &str, url: &str, duration: Duration) -> Figures {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/load/jsonrpc.lua");
    let out = tokio::process::Command::new(wrk)
        .args(["-t2", &format!("-c{CONNECTIONS}")])
        .arg(format!("-d{}s", duration.as_secs()))
        .args(["--timeout", "15s", "-s", script, url])
        .kill_on_drop(true)
        .output()
        .await
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {text}");
    let get = |key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in wrk output:\n{text}"))
    };
    Figures {
        requests: get("NW_REQUESTS"),
        bad: get("NW_BAD") + get("NW_SOCKET_ERRORS"),
        p50: Duration::from_micros(get("NW_P50_US")),
        p99: Duration::from_micros(get("NW_P99_US")),
        max: Duration::from_micros(get("NW_MAX_US")),
    }
}

async fn run_loop(url: &str, duration: Duration) -> Figures {
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let url = url.to_string();
            tokio::spawn(async move {
                // One keep-alive connection per task (its requests go one after another).
                let client = rpc::Client::new().timeout(Duration::from_secs(15));
                let (mut latencies, mut bad) = (Vec::new(), 0u64);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let ok = match client.post(&url, BODY).await {
                        Ok(r) => r.status == 200 && r.body.windows(9).any(|w| w == b"\"result\":"),
                        Err(_) => false,
                    };
                    latencies.push(t.elapsed());
                    bad += u64::from(!ok);
                }
                (latencies, bad)
            })
        })
        .collect();
    let (mut all, mut bad) = (Vec::new(), 0);
    for t in tasks {
        let (l, b) = t.await.unwrap();
        all.extend(l);
        bad += b;
    }
    all.sort();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Figures {
        requests: all.len() as u64,
        bad,
        p50: at(0.50),
        p99: at(0.99),
        max: *all.last().unwrap(),
    }
}
