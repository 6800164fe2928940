//! Failover under load: `--concurrency` clients send `eth_gasPrice` back to back through the
//! proxy; after `--kill-after` seconds the primary (`--pid`) gets SIGKILL (death) or SIGSTOP
//! (a hang). The two nodes are started with different base fees, so `eth_gasPrice` tells
//! which one answered (`--primary-answer` / `--backup-answer`).
//!
//! Reported (times in ms, relative to the signal):
//! - `first_backup_ms`: when the first answer from the backup arrived;
//! - the requests in flight at the signal: how many, their latency, and the extra over the
//!   median latency before the signal;
//! - latency of the requests started in the `--window` after the signal;
//! - failed requests (transport error, non-200, JSON-RPC error or an unknown answer) and
//!   primary answers that arrived after the signal.
//!
//! `--csv` writes one row per request for the plot.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use hyper::{StatusCode, Uri};
use serde_json::{json, Value};

use crate::rpc;

/// Arguments of `nwbench failover`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The proxy.
    #[arg(long)]
    url: Uri,
    /// Concurrent closed-loop clients.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Total run time in seconds.
    #[arg(long, default_value_t = 6.0)]
    duration: f64,
    /// Seconds into the run when the primary is signalled.
    #[arg(long, default_value_t = 2.0)]
    kill_after: f64,
    /// The primary node's process id.
    #[arg(long)]
    pid: i32,
    /// `kill` (SIGKILL) or `stop` (SIGSTOP).
    #[arg(long, default_value = "kill")]
    signal: String,
    /// The primary's eth_gasPrice answer.
    #[arg(long)]
    primary_answer: String,
    /// The backup's eth_gasPrice answer.
    #[arg(long)]
    backup_answer: String,
    /// Seconds after the signal over which "during failover" latency is taken.
    #[arg(long, default_value_t = 3.0)]
    window: f64,
    /// Per-request rows go here.
    #[arg(long)]
    csv: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, PartialEq)]
enum Served {
    Primary,
    Backup,
    Failed,
}

#[derive(Clone, Copy)]
struct Record {
    start: Duration,
    end: Duration,
    served: Served,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let signal = match args.signal.as_str() {
        "kill" => libc::SIGKILL,
        "stop" => libc::SIGSTOP,
        other => bail!("--signal {other}: want kill or stop"),
    };
    let client = rpc::client(args.concurrency);
    let epoch = Instant::now();
    let deadline = epoch + Duration::from_secs_f64(args.duration);
    let primary = Arc::new(format!("\"{}\"", args.primary_answer));
    let backup = Arc::new(format!("\"{}\"", args.backup_answer));
    let body = Bytes::from(
        json!({"jsonrpc": "2.0", "id": 7, "method": "eth_gasPrice", "params": []}).to_string(),
    );
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (client, url, body) = (client.clone(), args.url.clone(), body.clone());
        let (primary, backup) = (primary.clone(), backup.clone());
        tasks.push(tokio::spawn(async move {
            let mut records = Vec::with_capacity(1 << 16);
            while Instant::now() < deadline {
                let start = epoch.elapsed();
                let served = match rpc::post(&client, &url, body.clone()).await {
                    Ok((StatusCode::OK, answer)) => {
                        let result = serde_json::from_slice::<Value>(&answer)
                            .ok()
                            .and_then(|v| v.get("result").map(Value::to_string));
                        match result {
                            Some(r) if r == *primary => Served::Primary,
                            Some(r) if r == *backup => Served::Backup,
                            _ => Served::Failed,
                        }
                    }
                    _ => Served::Failed,
                };
                records.push(Record {
                    start,
                    end: epoch.elapsed(),
                    served,
                });
            }
            records
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.kill_after)).await;
    let signalled = epoch.elapsed();
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    let rc = unsafe { libc::kill(args.pid, signal) };
    if rc != 0 {
        bail!("kill({}, {signal}) failed", args.pid);
    }
    let mut records = Vec::new();
    for task in tasks {
        records.extend(task.await?);
    }
    records.sort_by_key(|r| r.start);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let rel = |d: Duration| ms(d) - ms(signalled);
    let latency = |r: &Record| ms(r.end - r.start);

    let before: Vec<f64> = records
        .iter()
        .filter(|r| r.end < signalled)
        .map(latency)
        .collect();
    let base_p50 = percentile(&before, 50.0);
    let in_flight: Vec<&Record> = records
        .iter()
        .filter(|r| r.start <= signalled && r.end >= signalled)
        .collect();
    let in_flight_lat: Vec<f64> = in_flight.iter().map(|r| latency(r)).collect();
    let in_flight_failed = in_flight
        .iter()
        .filter(|r| r.served == Served::Failed)
        .count();
    let window_end = signalled + Duration::from_secs_f64(args.window);
    let during: Vec<f64> = records
        .iter()
        .filter(|r| r.start >= signalled && r.start < window_end)
        .map(latency)
        .collect();
    let after_window: Vec<f64> = records
        .iter()
        .filter(|r| r.start >= window_end)
        .map(latency)
        .collect();
    let first_backup = records
        .iter()
        .filter(|r| r.served == Served::Backup && r.end >= signalled)
        .map(|r| rel(r.end))
        .fold(f64::INFINITY, f64::min);
    let failed = records
        .iter()
        .filter(|r| r.served == Served::Failed)
        .count();
    let primary_after = records
        .iter()
        .filter(|r| r.served == Served::Primary && r.start > signalled)
        .count();

    if let Some(path) = &args.csv {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(f, "start_ms,latency_ms,served")?;
        for r in &records {
            let served = match r.served {
                Served::Primary => "primary",
                Served::Backup => "backup",
                Served::Failed => "failed",
            };
            writeln!(f, "{:.3},{:.3},{served}", rel(r.start), latency(r))?;
        }
    }
    let out = json!({
        "signal": args.signal,
        "concurrency": args.concurrency,
        "requests": records.len(),
        "failed": failed,
        "primary_answers_started_after_signal": primary_after,
        "first_backup_ms": if first_backup.is_finite() { Some(first_backup) } else { None },
        "before_p50_ms": base_p50,
        "before_p99_ms": percentile(&before, 99.0),
        "in_flight": in_flight.len(),
        "in_flight_failed": in_flight_failed,
        "in_flight_max_ms": in_flight_lat.iter().copied().fold(0.0, f64::max),
        "in_flight_median_ms": percentile(&in_flight_lat, 50.0),
        "in_flight_extra_max_ms": in_flight_lat.iter().copied().fold(0.0, f64::max) - base_p50,
        "in_flight_extra_median_ms": percentile(&in_flight_lat, 50.0) - base_p50,
        "window_s": args.window,
        "window_requests": during.len(),
        "window_p50_ms": percentile(&during, 50.0),
        "window_p99_ms": percentile(&during, 99.0),
        "window_max_ms": during.iter().copied().fold(0.0, f64::max),
        "after_window_p50_ms": percentile(&after_window, 50.0),
        "after_window_p99_ms": percentile(&after_window, 99.0),
    });
    println!("{out}");
    Ok(())
}

fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[rank.min(v.len() - 1)]
}
