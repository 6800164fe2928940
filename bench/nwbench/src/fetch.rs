//! The bare parallel batch fetch: `eth_getBlockByNumber(n, true)` in batches of `--batch`
//! consecutive blocks, `--workers` batches in flight, each answer checked (one non-null
//! result per block, ids matched) and dropped. This is what
//! `ethereumetl export_blocks_and_transactions` asks the node, with none of its work: the
//! ceiling the node sets.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail};
use bytes::Bytes;
use hyper::{StatusCode, Uri};
use serde_json::json;

use crate::rpc::{self, RawAnswer};

/// Arguments of `nwbench fetch`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// JSON-RPC endpoint.
    #[arg(long)]
    url: Uri,
    /// First block.
    #[arg(long, short = 's', default_value_t = 0)]
    start: u64,
    /// Last block (inclusive).
    #[arg(long, short = 'e')]
    end: u64,
    /// Blocks per batch (ethereum-etl's default is 100).
    #[arg(long, short = 'b', default_value_t = 100)]
    batch: u64,
    /// Batches in flight (ethereum-etl's default is 5).
    #[arg(long, short = 'w', default_value_t = 5)]
    workers: usize,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 2)]
    pub(crate) threads: usize,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    if args.end < args.start || args.batch == 0 {
        bail!("empty range or batch");
    }
    let client = rpc::client(args.workers);
    let next = Arc::new(AtomicU64::new(args.start));
    let args = Arc::new(args);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.workers {
        let (client, next, args) = (client.clone(), next.clone(), args.clone());
        tasks.push(tokio::spawn(async move {
            let mut bytes = 0u64;
            let mut txs = 0u64;
            loop {
                let first = next.fetch_add(args.batch, Ordering::Relaxed);
                if first > args.end {
                    return Ok::<_, anyhow::Error>((bytes, txs));
                }
                let last = (first + args.batch - 1).min(args.end);
                let (b, t) = fetch_batch(&client, &args.url, first, last).await?;
                bytes += b;
                txs += t;
            }
        }));
    }
    let (mut bytes, mut txs) = (0u64, 0u64);
    for task in tasks {
        let (b, t) = task.await??;
        bytes += b;
        txs += t;
    }
    let secs = started.elapsed().as_secs_f64();
    let blocks = args.end - args.start + 1;
    let out = json!({
        "blocks": blocks,
        "transactions": txs,
        "bytes": bytes,
        "secs": secs,
        "blocks_per_s": blocks as f64 / secs,
        "max_rss_kib": crate::max_rss_kib(),
    });
    println!("{out}");
    Ok(())
}

async fn fetch_batch(
    client: &rpc::HttpClient,
    url: &Uri,
    first: u64,
    last: u64,
) -> anyhow::Result<(u64, u64)> {
    let mut body = String::with_capacity(96 * (last - first + 1) as usize);
    body.push('[');
    for (i, n) in (first..=last).enumerate() {
        if i > 0 {
            body.push(',');
        }
        write!(
            body,
            r#"{{"jsonrpc":"2.0","id":{i},"method":"eth_getBlockByNumber","params":["0x{n:x}",true]}}"#
        )?;
    }
    body.push(']');
    let (status, answer) = rpc::post(client, url, Bytes::from(body)).await?;
    if status != StatusCode::OK {
        bail!("blocks {first}..={last}: HTTP {status}");
    }
    let items: Vec<RawAnswer<'_>> = serde_json::from_slice(&answer)?;
    let expected = (last - first + 1) as usize;
    if items.len() != expected {
        bail!(
            "blocks {first}..={last}: {} answers for {expected} calls",
            items.len()
        );
    }
    let mut seen = vec![false; expected];
    let mut txs = 0u64;
    for item in &items {
        let id = item.id.ok_or_else(|| anyhow!("answer without id"))? as usize;
        if id >= expected || std::mem::replace(&mut seen[id], true) {
            bail!("blocks {first}..={last}: bad or repeated id {id}");
        }
        match (item.result, item.error) {
            (Some(r), None) if r.get() != "null" => {
                // Count transactions by their hash field without building a tree.
                txs += r.get().matches(r#""blockHash""#).count() as u64;
            }
            _ => bail!("block {}: no result", first + id as u64),
        }
    }
    Ok((answer.len() as u64, txs))
}
