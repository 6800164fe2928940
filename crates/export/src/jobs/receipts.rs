//! `export_receipts_and_logs`: reads transaction hashes (one per line),
//! fetches `eth_getTransactionReceipt` in batches and writes receipts and/or
//! logs in input order. With verification, each receipt must equal its block's
//! receipt in the block's verified receipt set (receipts root, blooms, positions:
//! [`super::block_receipts`]), fetched in the same attempt from the same provider.

use crate::error::{ExportError, Result};
use crate::input;
use crate::mappers::receipts::{map_receipt, MappedReceipt, LOG_FIELDS, RECEIPT_FIELDS};
use crate::pipeline::{write_ordered, Batch};
use crate::progress::{Progress, Ui};
use crate::pyvalue::PyValue;
use crate::rpc::{parse_raw, Call, Failure, Node, RpcClient};
use crate::sink::{ItemWriter, SharedStdout};
use crate::verified::{wrong, Verifier, B256};
use nodewatch_verify::{receipt_location, verify_receipt};

use super::block_receipts::receipt_sets;
use super::chunked;

/// Parameters of `export_receipts_and_logs`.
#[derive(Debug, Clone)]
pub struct ReceiptsJob {
    /// File with one transaction hash per line (`-` for stdin).
    pub transaction_hashes: String,
    /// Receipts per JSON-RPC batch.
    pub batch_size: usize,
    /// Concurrent batches.
    pub max_workers: usize,
    /// Receipts output path, if receipts are wanted.
    pub receipts_output: Option<String>,
    /// Logs output path, if logs are wanted.
    pub logs_output: Option<String>,
}

/// Runs the export; returns `(receipts, logs)` written.
pub async fn export_receipts_and_logs(
    client: &RpcClient,
    job: &ReceiptsJob,
    ui: Ui,
) -> Result<(u64, u64)> {
    if job.receipts_output.is_none() && job.logs_output.is_none() {
        return Err(ExportError::Usage(
            "Either --receipts-output or --logs-output options must be provided".into(),
        ));
    }
    // Blank lines are skipped (ethereum-etl would send an empty hash and fail).
    let hashes = input::lines(&job.transaction_hashes)?
        .map(|line| line.map(|l| l.trim().to_owned()))
        .filter(|line| !matches!(line, Ok(l) if l.is_empty()));
    let stdout = SharedStdout::default();
    let mut receipts_out = job
        .receipts_output
        .as_deref()
        .map(|p| ItemWriter::open(p, RECEIPT_FIELDS, &stdout))
        .transpose()?;
    let mut logs_out = job
        .logs_output
        .as_deref()
        .map(|p| ItemWriter::open(p, LOG_FIELDS, &stdout))
        .transpose()?;
    let progress = Progress::new(ui, None, "receipts");

    write_ordered(
        chunked(hashes, job.batch_size),
        job.max_workers,
        |batch| {
            let client = client.clone();
            async move {
                let receipts = fetch_receipts(&client, batch?).await?;
                Ok(Batch::with_children(
                    receipts.into_iter().map(|r| (r.receipt, r.logs)),
                ))
            }
        },
        &mut [receipts_out.as_mut(), logs_out.as_mut()],
        &progress,
    )
    .await?;
    progress.finish();
    let receipts = receipts_out
        .map(ItemWriter::finish)
        .transpose()?
        .unwrap_or(0);
    let logs = logs_out.map(ItemWriter::finish).transpose()?.unwrap_or(0);
    ui.summary(&format!(
        "receipt items exported: {receipts}, log items exported: {logs}"
    ));
    Ok((receipts, logs))
}

/// Fetches the receipts of `hashes` (`eth_getTransactionReceipt`, one batch) and maps
/// them; with verification, each is checked against its block's verified receipts.
pub(crate) async fn fetch_receipts(
    client: &RpcClient,
    hashes: Vec<String>,
) -> Result<Vec<MappedReceipt>> {
    let calls: Vec<Call> = hashes
        .iter()
        .map(|h| Call {
            method: "eth_getTransactionReceipt",
            params: PyValue::List(vec![PyValue::Str(h.clone())]),
            label: format!("transaction {h}"),
        })
        .collect();
    let what = match (hashes.first(), hashes.last()) {
        (Some(a), Some(b)) if hashes.len() > 1 => format!("receipts of transactions {a} .. {b}"),
        (Some(a), _) => format!("receipt of transaction {a}"),
        _ => "receipts".to_owned(),
    };
    let Some(v) = client.verifier() else {
        return client
            .batch(&what, &calls, |results| map_receipts(&results, &hashes))
            .await;
    };
    client
        .with_retries(&what, |node| verified_receipts(node, v, &calls, &hashes))
        .await
}

/// One attempt on `node`: the receipts, each checked against the verified receipt set of
/// the block it names (fetched in one batch for all of them), then mapped.
async fn verified_receipts(
    node: Node,
    v: &Verifier,
    calls: &[Call],
    hashes: &[String],
) -> std::result::Result<Vec<MappedReceipt>, Failure> {
    let raws = node.raw_once(calls).await?;
    let mut blocks: Vec<B256> = Vec::new();
    let mut at = Vec::with_capacity(raws.len());
    for raw in &raws {
        let (_, hash, _) = receipt_location(raw.get().as_bytes()).map_err(wrong)?;
        at.push(hash);
        if !blocks.contains(&hash) {
            blocks.push(hash);
        }
    }
    let sets = receipt_sets(&node, v, &blocks).await?;
    let mut results = Vec::with_capacity(raws.len());
    for (raw, hash) in raws.iter().zip(&at) {
        let i = blocks.iter().position(|b| b == hash).unwrap_or(usize::MAX);
        let Some(set) = sets.get(i) else {
            return Err(Failure::Retriable(format!(
                "block {hash}: no receipts fetched"
            )));
        };
        verify_receipt(raw.get().as_bytes(), set).map_err(wrong)?;
        results.push(parse_raw(raw)?);
    }
    map_receipts(&results, hashes)
}

/// Each receipt is the one asked for; mapped to its rows.
fn map_receipts(
    results: &[PyValue],
    hashes: &[String],
) -> std::result::Result<Vec<MappedReceipt>, Failure> {
    results
        .iter()
        .zip(hashes)
        .map(|(result, hash)| {
            let label = format!("transaction {hash}");
            let got = result.get("transactionHash").and_then(PyValue::as_str);
            if !got.is_some_and(|g| g.eq_ignore_ascii_case(hash)) {
                return Err(Failure::Retriable(format!(
                    "{label}: the node answered with the receipt of {}",
                    got.unwrap_or("no transaction")
                )));
            }
            map_receipt(result, &label).map_err(|e| Failure::Fatal(e.to_string()))
        })
        .collect()
}
