//! `export_blocks_and_transactions`: fetches `eth_getBlockByNumber` in
//! batches over a block range and writes blocks and/or transactions, each
//! block verified first (header hash, transaction hashes and root, withdrawals
//! root) unless `--no-verify`.

use crate::error::{ExportError, Result};
use crate::mappers::blocks::{map_block, MappedBlock, BLOCK_FIELDS, TRANSACTION_FIELDS};
use crate::pipeline::{write_ordered, Batch};
use crate::progress::{Progress, Ui};
use crate::pyvalue::PyValue;
use crate::rpc::{parse_raw, Call, Failure, RpcClient};
use crate::sink::{ItemWriter, SharedStdout};

use super::{block_batches, check_range};

/// Parameters of `export_blocks_and_transactions`.
#[derive(Debug, Clone)]
pub struct BlocksJob {
    /// First block (inclusive).
    pub start_block: u64,
    /// Last block (inclusive).
    pub end_block: u64,
    /// Blocks per JSON-RPC batch.
    pub batch_size: usize,
    /// Concurrent batches.
    pub max_workers: usize,
    /// Blocks output path, if blocks are wanted.
    pub blocks_output: Option<String>,
    /// Transactions output path, if transactions are wanted.
    pub transactions_output: Option<String>,
}

/// Runs the export; returns `(blocks, transactions)` written.
pub async fn export_blocks_and_transactions(
    client: &RpcClient,
    job: &BlocksJob,
    ui: Ui,
) -> Result<(u64, u64)> {
    check_range(job.start_block, job.end_block)?;
    if job.blocks_output.is_none() && job.transactions_output.is_none() {
        return Err(ExportError::Usage(
            "Either --blocks-output or --transactions-output options must be provided".into(),
        ));
    }
    let stdout = SharedStdout::default();
    let mut blocks_out = job
        .blocks_output
        .as_deref()
        .map(|p| ItemWriter::open(p, BLOCK_FIELDS, &stdout))
        .transpose()?;
    let mut txs_out = job
        .transactions_output
        .as_deref()
        .map(|p| ItemWriter::open(p, TRANSACTION_FIELDS, &stdout))
        .transpose()?;
    let include_transactions = txs_out.is_some();
    let progress = Progress::new(ui, Some(job.end_block - job.start_block + 1), "blocks");

    write_ordered(
        block_batches(job.start_block, job.end_block, job.batch_size),
        job.max_workers,
        |(lo, hi)| {
            let client = client.clone();
            async move {
                let blocks = fetch_blocks(&client, lo, hi, include_transactions).await?;
                Ok(Batch::with_children(
                    blocks.into_iter().map(|b| (b.block, b.transactions)),
                ))
            }
        },
        &mut [blocks_out.as_mut(), txs_out.as_mut()],
        &progress,
    )
    .await?;
    progress.finish();
    let blocks = blocks_out.map(ItemWriter::finish).transpose()?.unwrap_or(0);
    let txs = txs_out.map(ItemWriter::finish).transpose()?.unwrap_or(0);
    ui.summary(&format!(
        "block items exported: {blocks}, transaction items exported: {txs}"
    ));
    Ok((blocks, txs))
}

/// Fetches and maps blocks `lo..=hi`, retrying the batch as a whole. With verification
/// the blocks come with full transactions whatever `include_transactions` says (the header
/// hash, every transaction hash and the transactions root are checked, so that
/// `transaction_count` is true too); the rows are the same.
pub(crate) async fn fetch_blocks(
    client: &RpcClient,
    lo: u64,
    hi: u64,
    include_transactions: bool,
) -> Result<Vec<MappedBlock>> {
    let verifier = client.verifier();
    let full = include_transactions || verifier.is_some();
    let calls: Vec<Call> = (lo..=hi)
        .map(|n| Call {
            method: "eth_getBlockByNumber",
            params: PyValue::List(vec![PyValue::Str(format!("{n:#x}")), PyValue::Bool(full)]),
            label: format!("block {n}"),
        })
        .collect();
    let what = format!("blocks {lo}..={hi}");
    let Some(v) = verifier else {
        return client
            .batch(&what, &calls, |results| map_blocks(&results, lo))
            .await;
    };
    let calls = &calls;
    client
        .with_retries(&what, |node| async move {
            let raws = node.raw_once(calls).await?;
            let mut results = Vec::with_capacity(raws.len());
            for raw in &raws {
                v.block(raw)?;
                results.push(parse_raw(raw)?);
            }
            map_blocks(&results, lo)
        })
        .await
}

/// Each block is the one asked for (numbered from `lo`); mapped to its rows.
fn map_blocks(results: &[PyValue], lo: u64) -> std::result::Result<Vec<MappedBlock>, Failure> {
    results
        .iter()
        .zip(lo..)
        .map(|(result, n)| {
            let label = format!("block {n}");
            let number = result.get("number").and_then(PyValue::as_str);
            if number.and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
                != Some(n)
            {
                return Err(Failure::Retriable(format!(
                    "{label}: the node answered with a different block ({})",
                    number.unwrap_or("no number")
                )));
            }
            map_block(result, &label).map_err(|e| Failure::Fatal(e.to_string()))
        })
        .collect()
}
