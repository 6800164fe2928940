//! Mines the benchmark chain: blocks `1..=blocks` carry `txs` ETH transfers each (the
//! exporter range), blocks `blocks+1..=blocks+big_blocks` carry `big_txs` each (large
//! `eth_getBlockByNumber(n, true)` answers). Transfers go from anvil's unlocked dev accounts
//! to fresh addresses, with explicit nonces, gas and gas price, sent as one JSON-RPC batch
//! per block with automine off, then `evm_mine`.

use std::time::Instant;

use anyhow::{bail, Context};
use hyper::Uri;
use serde_json::{json, Value};

use crate::rpc::{self, parse_quantity, quantity};

/// Arguments of `nwbench chain`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The anvil node.
    #[arg(long)]
    url: Uri,
    /// Blocks with `--txs` transfers each.
    #[arg(long, default_value_t = 2000)]
    blocks: u64,
    /// Transfers per ordinary block.
    #[arg(long, default_value_t = 10)]
    txs: usize,
    /// Big blocks after the ordinary ones.
    #[arg(long, default_value_t = 4)]
    big_blocks: u64,
    /// Transfers per big block.
    #[arg(long, default_value_t = 300)]
    big_txs: usize,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let client = rpc::client(4);
    let url = &args.url;
    let started = Instant::now();
    let target = args.blocks + args.big_blocks;
    let head = parse_quantity(&rpc::call(&client, url, "eth_blockNumber", json!([])).await?)?;
    if head >= target {
        eprintln!("nwbench chain: head {head} >= {target}, already built");
    } else if head != 0 {
        bail!("node is at block {head}: build the chain on a fresh node");
    } else {
        build(&client, url, &args).await?;
    }
    let big = rpc::call(
        &client,
        url,
        "eth_getBlockByNumber",
        json!([quantity(target), false]),
    )
    .await?;
    let big_count = big["transactions"].as_array().map_or(0, Vec::len);
    if args.big_blocks > 0 && big_count != args.big_txs {
        bail!(
            "block {target} has {big_count} transactions, expected {}",
            args.big_txs
        );
    }
    let out = json!({
        "head": target,
        "blocks": args.blocks,
        "txs_per_block": args.txs,
        "big_blocks": args.big_blocks,
        "big_txs": args.big_txs,
        "secs": started.elapsed().as_secs_f64(),
    });
    println!("{out}");
    Ok(())
}

async fn build(client: &rpc::HttpClient, url: &Uri, args: &Args) -> anyhow::Result<()> {
    let accounts: Vec<String> = serde_json::from_value(
        rpc::call(client, url, "eth_accounts", json!([]))
            .await
            .context("eth_accounts")?,
    )?;
    if accounts.is_empty() {
        bail!("the node has no unlocked accounts");
    }
    rpc::call(client, url, "evm_setAutomine", json!([false])).await?;
    let mut nonces = vec![0u64; accounts.len()];
    let mut serial = 0u64;
    for block in 1..=args.blocks + args.big_blocks {
        let count = if block <= args.blocks {
            args.txs
        } else {
            args.big_txs
        };
        let calls: Vec<(&str, Value)> = (0..count)
            .map(|i| {
                let sender = i % accounts.len();
                let nonce = nonces[sender];
                nonces[sender] += 1;
                serial += 1;
                let tx = json!({
                    "from": accounts[sender],
                    "to": format!("0x{:040x}", 0x1000_0000 + serial),
                    "value": quantity(serial),
                    "gas": "0x5208",
                    "gasPrice": quantity(10_000_000_000),
                    "nonce": quantity(nonce),
                });
                ("eth_sendTransaction", json!([tx]))
            })
            .collect();
        if !calls.is_empty() {
            rpc::batch(client, url, &calls)
                .await
                .with_context(|| format!("send the transactions of block {block}"))?;
        }
        rpc::call(client, url, "evm_mine", json!([])).await?;
        if block % 500 == 0 {
            eprintln!("nwbench chain: block {block}");
        }
    }
    rpc::call(client, url, "evm_setAutomine", json!([true])).await?;
    Ok(())
}
