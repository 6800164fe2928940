//! `export_token_transfers` (Transfer logs over a block range via
//! `eth_getLogs`, which yields the same logs as ethereum-etl's
//! `eth_newFilter`/`eth_getFilterLogs` pair without server-side state) and
//! `extract_token_transfers` (Transfer logs from a logs export file).
//!
//! With verification, each `eth_getLogs` answer goes through nodewatch-verify's
//! [`LogsCheck`]: the range's headers (verified), then the verified receipts of the
//! blocks the answer has logs from and of those whose header bloom may match the
//! filter; every log must be a verified one and none that matches may be missing.

use crate::error::{ExportError, Result};
use crate::hexnum::hex_to_dec;
use crate::input;
use crate::mappers::token_transfers::{
    extract_transfer, LogView, TOKEN_TRANSFER_FIELDS, TRANSFER_EVENT_TOPIC,
};
use crate::pipeline::{finish_one, write_ordered, Batch};
use crate::progress::{Progress, Ui};
use crate::pyfmt::json_dumps;
use crate::pyvalue::PyValue;
use crate::rpc::{parse_raw, Call, Failure, Node, RpcClient};
use crate::sink::{ItemWriter, SharedStdout};
use crate::verified::{wrong, Verifier, B256};
use nodewatch_verify::{HeadersNeeded, LogsCheck, VerifiedReceipts};
use serde_json::value::RawValue;

use super::block_receipts::{headers_of_range, receipt_sets};
use super::{block_batches, check_range};

/// Parameters of `export_token_transfers`.
#[derive(Debug, Clone)]
pub struct ExportTransfersJob {
    /// First block (inclusive).
    pub start_block: u64,
    /// Last block (inclusive).
    pub end_block: u64,
    /// Blocks per `eth_getLogs` call.
    pub batch_size: usize,
    /// Concurrent calls.
    pub max_workers: usize,
    /// Output path.
    pub output: String,
    /// Only logs of these token contracts (all when empty).
    pub tokens: Vec<String>,
}

/// Runs `export_token_transfers`; returns the number of transfers written.
pub async fn export_token_transfers(
    client: &RpcClient,
    job: &ExportTransfersJob,
    ui: Ui,
) -> Result<u64> {
    check_range(job.start_block, job.end_block)?;
    let stdout = SharedStdout::default();
    let mut out = ItemWriter::open(&job.output, TOKEN_TRANSFER_FIELDS, &stdout)?;
    let progress = Progress::new(ui, Some(job.end_block - job.start_block + 1), "blocks");
    write_ordered(
        block_batches(job.start_block, job.end_block, job.batch_size),
        job.max_workers,
        |(lo, hi)| {
            let client = client.clone();
            let tokens = job.tokens.clone();
            async move {
                let rows = fetch_transfers(&client, lo, hi, &tokens).await?;
                Ok(Batch::rows(rows).covering(hi - lo + 1))
            }
        },
        &mut [Some(&mut out)],
        &progress,
    )
    .await?;
    finish_one(&progress, out, &ui, "token_transfer")
}

async fn fetch_transfers(
    client: &RpcClient,
    lo: u64,
    hi: u64,
    tokens: &[String],
) -> Result<Vec<Vec<PyValue>>> {
    let mut filter = vec![
        ("fromBlock", PyValue::Str(format!("{lo:#x}"))),
        ("toBlock", PyValue::Str(format!("{hi:#x}"))),
        ("topics", PyValue::List(vec![TRANSFER_EVENT_TOPIC.into()])),
    ];
    if !tokens.is_empty() {
        filter.push((
            "address",
            PyValue::List(tokens.iter().map(|t| PyValue::from(t.as_str())).collect()),
        ));
    }
    let calls = [Call {
        method: "eth_getLogs",
        params: PyValue::List(vec![PyValue::dict(filter)]),
        label: format!("logs of blocks {lo}..={hi}"),
    }];
    let what = format!("logs of blocks {lo}..={hi}");
    let Some(v) = client.verifier() else {
        return client
            .batch(&what, &calls, |mut results| {
                transfer_rows(results.pop(), lo, hi)
            })
            .await;
    };
    let calls = &calls;
    client
        .with_retries(&what, |node| async move {
            let raw = node.raw_once(calls).await?.pop();
            let raw =
                raw.ok_or_else(|| Failure::Retriable(format!("{}: no answer", calls[0].label)))?;
            verify_logs(&node, v, &calls[0], &raw).await?;
            transfer_rows(Some(parse_raw(&raw)?), lo, hi)
        })
        .await
}

/// Checks an `eth_getLogs` answer against verified receipts from `node`: every log is in its
/// block's verified receipts, and no block of the range whose header bloom may match the
/// filter lacks one ([`LogsCheck`]).
async fn verify_logs(
    node: &Node,
    v: &Verifier,
    call: &Call,
    answer: &RawValue,
) -> std::result::Result<(), Failure> {
    let params = json_dumps(&call.params);
    let check = LogsCheck::new(params.as_bytes(), answer.get().as_bytes()).map_err(wrong)?;
    let headers = match check.headers_needed() {
        HeadersNeeded::Range(from, to) => headers_of_range(node, v, from, to).await?,
        other => {
            return Err(Failure::Fatal(format!(
                "{}: a numeric range was asked for, the check needs {other:?}",
                call.label
            )))
        }
    };
    let needed = check.receipts_needed(&headers).map_err(wrong)?;
    let hashes: Vec<B256> = needed.iter().map(|(_, hash)| *hash).collect();
    let sets = receipt_sets(node, v, &hashes).await?;
    let sets: Vec<&VerifiedReceipts> = sets.iter().map(AsRef::as_ref).collect();
    check.finish(&sets).map_err(wrong)
}

/// The token-transfer rows of an `eth_getLogs` answer for blocks `lo..=hi`.
fn transfer_rows(
    answer: Option<PyValue>,
    lo: u64,
    hi: u64,
) -> std::result::Result<Vec<Vec<PyValue>>, Failure> {
    let logs = match answer {
        Some(PyValue::List(logs)) => logs,
        other => {
            return Err(Failure::Retriable(format!(
                "logs of blocks {lo}..={hi}: expected a list, got a JSON {}",
                other.map_or("nothing", |o| o.type_name())
            )))
        }
    };
    let mut rows = Vec::new();
    for (i, log) in logs.iter().enumerate() {
        let label = || format!("log {i} of blocks {lo}..={hi}");
        let view = rpc_log_view(log, &label).map_err(|e| Failure::Fatal(e.to_string()))?;
        match &view.block_number {
            PyValue::Int(n) if (i128::from(lo)..=i128::from(hi)).contains(n) => {}
            other => {
                return Err(Failure::Retriable(format!(
                    "{}: block number {other:?} outside the requested range",
                    label()
                )))
            }
        }
        if let Some(row) =
            extract_transfer(&view, &label).map_err(|e| Failure::Fatal(e.to_string()))?
        {
            rows.push(row);
        }
    }
    Ok(rows)
}

/// A raw RPC log as web3.py hands it to ethereum-etl: quantities as ints,
/// hashes and topics as lower-case hex.
fn rpc_log_view(log: &PyValue, label: &dyn Fn() -> String) -> Result<LogView> {
    let hex = |key: &str| {
        hex_to_dec(&log.get_or_none(key)).map_err(|e| {
            ExportError::Data(format!(
                "{}: {key} is a JSON {}, expected a hex string",
                label(),
                e.0
            ))
        })
    };
    let lower = |v: PyValue| match v {
        PyValue::Str(s) => PyValue::Str(s.to_lowercase()),
        other => other,
    };
    let topics = match log.get_or_none("topics") {
        PyValue::List(t) => Some(t.into_iter().map(lower).collect()),
        PyValue::None => None,
        other => {
            return Err(ExportError::Data(format!(
                "{}: topics is a JSON {}",
                label(),
                other.type_name()
            )))
        }
    };
    Ok(LogView {
        address: log.get_or_none("address"),
        topics,
        data: log.get_or_none("data"),
        transaction_hash: lower(log.get_or_none("transactionHash")),
        log_index: hex("logIndex")?,
        block_number: hex("blockNumber")?,
    })
}

/// Parameters of `extract_token_transfers`.
#[derive(Debug, Clone)]
pub struct ExtractTransfersJob {
    /// Logs export file: JSON lines when it ends in `.json`, else CSV.
    pub logs: String,
    /// Output path.
    pub output: String,
    /// Write `value` as a string (`--values-as-strings`).
    pub values_as_strings: bool,
}

/// Runs `extract_token_transfers`; returns the number of transfers written.
pub fn extract_token_transfers(job: &ExtractTransfersJob, ui: Ui) -> Result<u64> {
    let items: Box<dyn Iterator<Item = Result<PyValue>>> = if job.logs.ends_with(".json") {
        Box::new(input::json_lines(&job.logs)?)
    } else {
        Box::new(input::csv_dicts(&job.logs)?)
    };
    let stdout = SharedStdout::default();
    let mut out = ItemWriter::open(&job.output, TOKEN_TRANSFER_FIELDS, &stdout)?;
    for (i, item) in items.enumerate() {
        let item = item?;
        let view = LogView::from_export_item(&item);
        let label = || format!("log item {} of {}", i + 1, job.logs);
        if let Some(mut row) = extract_transfer(&view, &label)? {
            if job.values_as_strings {
                if let PyValue::Int(_) | PyValue::BigInt(_) = &row[3] {
                    row[3] = PyValue::Str(crate::pyfmt::py_str(&row[3]));
                }
            }
            out.write(&row)?;
        }
    }
    let n = out.finish()?;
    ui.summary(&format!("token_transfer items exported: {n}"));
    Ok(n)
}
