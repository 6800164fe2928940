//! `export_traces` (Parity `trace_block`, one call per block, `-b` calls per
//! JSON-RPC batch, many batches in flight), `export_geth_traces`
//! (`debug_traceBlockByNumber` with the `callTracer`) and
//! `extract_geth_traces` (geth traces file to traces). Rows come out in
//! block order whatever the concurrency.

use crate::error::{ExportError, Result};
use crate::input;
use crate::mappers::trace_ids::{calculate_ids, calculate_statuses};
use crate::mappers::traces::{
    daofork_traces, genesis_traces, geth_trace_to_traces, map_parity_trace, Trace,
    DAOFORK_BLOCK_NUMBER, GETH_TRACE_FIELDS, TRACE_FIELDS,
};
use crate::pipeline::{finish_one, write_ordered, Batch};
use crate::progress::{Progress, Ui};
use crate::pyvalue::PyValue;
use crate::rpc::{Call, Failure, RpcClient};
use crate::sink::{ItemWriter, SharedStdout};

use super::{block_batches, check_range};

/// Parameters of `export_traces` and `export_geth_traces`.
#[derive(Debug, Clone)]
pub struct TracesJob {
    /// First block (inclusive).
    pub start_block: u64,
    /// Last block (inclusive).
    pub end_block: u64,
    /// Blocks per JSON-RPC batch.
    pub batch_size: usize,
    /// Concurrent batches.
    pub max_workers: usize,
    /// Output path.
    pub output: String,
    /// Add mainnet's genesis allocations to block 0 (`--genesis-traces`).
    pub genesis_traces: bool,
    /// Add the DAO-fork transfers to block 1920000 (`--daofork-traces`).
    pub daofork_traces: bool,
}

/// One method call per block of `lo..=hi`.
fn per_block_calls(method: &'static str, lo: u64, hi: u64, extra: &[PyValue]) -> Vec<Call> {
    (lo..=hi)
        .map(|n| {
            let mut params = vec![PyValue::Str(format!("{n:#x}"))];
            params.extend_from_slice(extra);
            Call {
                method,
                params: PyValue::List(params),
                label: format!("block {n}"),
            }
        })
        .collect()
}

/// A clearer message when the node does not know the method at all.
fn explain_missing_method(e: ExportError, method: &str) -> ExportError {
    match e {
        ExportError::Rpc(msg)
            if msg.contains("-32601") || msg.to_lowercase().contains("method not found") =>
        {
            ExportError::Unsupported(format!(
                "{msg} (the node does not serve {method}: it needs a tracing node, e.g. \
                 Erigon, Nethermind, Reth or anvil, with that API enabled)"
            ))
        }
        other => other,
    }
}

/// The answer of a per-block call must be a list.
fn expect_lists(
    results: Vec<PyValue>,
    lo: u64,
    method: &str,
) -> Result<Vec<Vec<PyValue>>, Failure> {
    results
        .into_iter()
        .zip(lo..)
        .map(|(r, n)| match r {
            PyValue::List(items) => Ok(items),
            other => Err(Failure::Fatal(format!(
                "block {n}: {method} answered a JSON {}, expected an array",
                other.type_name()
            ))),
        })
        .collect()
}

/// A trace that names another block than the one asked for is a wrong answer
/// (a node behind a balancer, a reorg in flight): worth another try.
fn check_block_numbers(traces: &[PyValue], n: u64) -> Result<(), Failure> {
    for t in traces {
        if let Some(PyValue::Int(got)) = t.get("blockNumber") {
            if *got != i128::from(n) {
                return Err(Failure::Retriable(format!(
                    "block {n}: trace_block answered a trace of block {got}"
                )));
            }
        }
    }
    Ok(())
}

/// Fetches the traces of blocks `lo..=hi` and completes them as ethereum-etl does per block
/// (`job`: genesis and DAO-fork traces wanted); also the traces of `stream`.
pub(crate) async fn fetch_traces(
    client: &RpcClient,
    lo: u64,
    hi: u64,
    job: (bool, bool),
) -> Result<Vec<Vec<Trace>>> {
    let calls = per_block_calls("trace_block", lo, hi, &[]);
    let blocks = client
        .batch(&format!("traces of blocks {lo}..={hi}"), &calls, |r| {
            let blocks = expect_lists(r, lo, "trace_block")?;
            for (traces, n) in blocks.iter().zip(lo..) {
                check_block_numbers(traces, n)?;
            }
            Ok(blocks)
        })
        .await
        .map_err(|e| explain_missing_method(e, "trace_block"))?;
    let (genesis, daofork) = job;
    blocks
        .into_iter()
        .zip(lo..)
        .map(|(json_traces, n)| {
            let mut all = Vec::new();
            if genesis && n == 0 {
                all.extend(genesis_traces());
            }
            if daofork && n == DAOFORK_BLOCK_NUMBER {
                all.extend(daofork_traces());
            }
            let label = format!("a trace of block {n}");
            for json in &json_traces {
                all.push(map_parity_trace(json, &label)?);
            }
            calculate_statuses(&mut all)
                .map_err(|e| ExportError::Data(format!("block {n}: {e}")))?;
            calculate_ids(&mut all).map_err(|e| ExportError::Data(format!("block {n}: {e}")))?;
            Ok(all)
        })
        .collect()
}

/// Runs `export_traces`; returns the number of traces written.
pub async fn export_traces(client: &RpcClient, job: &TracesJob, ui: Ui) -> Result<u64> {
    check_range(job.start_block, job.end_block)?;
    let stdout = SharedStdout::default();
    let mut out = ItemWriter::open(&job.output, TRACE_FIELDS, &stdout)?;
    let progress = Progress::new(ui, Some(job.end_block - job.start_block + 1), "blocks");
    let special = (job.genesis_traces, job.daofork_traces);
    write_ordered(
        block_batches(job.start_block, job.end_block, job.batch_size),
        job.max_workers,
        |(lo, hi)| {
            let client = client.clone();
            async move {
                let blocks = fetch_traces(&client, lo, hi, special).await?;
                let rows = blocks.into_iter().flatten().map(Trace::into_row).collect();
                Ok(Batch::rows(rows).covering(hi - lo + 1))
            }
        },
        &mut [Some(&mut out)],
        &progress,
    )
    .await?;
    finish_one(&progress, out, &ui, "trace")
}

/// Fetches the callTracer results of blocks `lo..=hi` as geth trace rows.
async fn fetch_geth_traces(client: &RpcClient, lo: u64, hi: u64) -> Result<Vec<Vec<PyValue>>> {
    let tracer = PyValue::dict([("tracer", PyValue::from("callTracer"))]);
    let calls = per_block_calls("debug_traceBlockByNumber", lo, hi, &[tracer]);
    let method = "debug_traceBlockByNumber";
    let blocks = client
        .batch(&format!("geth traces of blocks {lo}..={hi}"), &calls, |r| {
            expect_lists(r, lo, method)
        })
        .await
        .map_err(|e| explain_missing_method(e, method))?;
    blocks
        .into_iter()
        .zip(lo..)
        .map(|(tx_traces, n)| {
            let results = tx_traces
                .iter()
                .map(|t| match t {
                    PyValue::Dict(_) => Ok(t.get_or_none("result")),
                    other => Err(ExportError::Data(format!(
                        "block {n}: a transaction trace is a JSON {}, expected an object",
                        other.type_name()
                    ))),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(vec![PyValue::Int(n as i128), PyValue::List(results)])
        })
        .collect()
}

/// Runs `export_geth_traces`; returns the number of blocks written.
pub async fn export_geth_traces(client: &RpcClient, job: &TracesJob, ui: Ui) -> Result<u64> {
    check_range(job.start_block, job.end_block)?;
    let stdout = SharedStdout::default();
    let mut out = ItemWriter::open(&job.output, GETH_TRACE_FIELDS, &stdout)?;
    let progress = Progress::new(ui, Some(job.end_block - job.start_block + 1), "blocks");
    write_ordered(
        block_batches(job.start_block, job.end_block, job.batch_size),
        job.max_workers,
        |(lo, hi)| {
            let client = client.clone();
            async move { fetch_geth_traces(&client, lo, hi).await.map(Batch::rows) }
        },
        &mut [Some(&mut out)],
        &progress,
    )
    .await?;
    finish_one(&progress, out, &ui, "geth_trace")
}

/// Runs `extract_geth_traces` on a geth traces file (JSON lines when it ends
/// in `.json`, else CSV, whose `transaction_traces` ethereum-etl cannot read
/// either); returns the number of traces written.
pub fn extract_geth_traces(input_path: &str, output: &str, ui: Ui) -> Result<u64> {
    let items: Box<dyn Iterator<Item = Result<PyValue>>> = if input_path.ends_with(".json") {
        Box::new(input::json_lines(input_path)?)
    } else {
        Box::new(input::csv_dicts(input_path)?)
    };
    let stdout = SharedStdout::default();
    let mut out = ItemWriter::open(output, TRACE_FIELDS, &stdout)?;
    for (i, item) in items.enumerate() {
        let item = item?;
        let label = format!("geth trace {} of {input_path}", i + 1);
        let block_number = item.get_or_none("block_number");
        let traces = match item.get("transaction_traces") {
            Some(PyValue::List(list)) => geth_trace_to_traces(&block_number, list, &label)?,
            other => {
                return Err(ExportError::Data(format!(
                    "{label}: transaction_traces is a {}, expected a JSON array (use the .json \
                     output of export_geth_traces)",
                    other.map_or("missing field", PyValue::type_name)
                )))
            }
        };
        for t in traces {
            out.write(&t.into_row())?;
        }
    }
    let n = out.finish()?;
    ui.summary(&format!("trace items exported: {n}"));
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_of_another_block_are_retried() {
        let trace = |n: i128| PyValue::dict([("blockNumber", PyValue::Int(n))]);
        assert!(check_block_numbers(&[trace(7), trace(7)], 7).is_ok());
        assert!(check_block_numbers(&[], 7).is_ok());
        let wrong = check_block_numbers(&[trace(7), trace(8)], 7);
        assert!(matches!(wrong, Err(Failure::Retriable(m)) if m.contains("block 8")));
    }

    #[test]
    fn daofork_traces_get_ranked_ids_and_status_1() {
        let mut traces = daofork_traces();
        calculate_statuses(&mut traces).unwrap();
        calculate_ids(&mut traces).unwrap();
        let mut ids: Vec<String> = traces
            .iter()
            .map(|t| crate::pyfmt::py_str(&t.trace_id))
            .collect();
        assert!(traces.iter().all(|t| t.status == PyValue::Int(1)));
        // The first table entry has the smallest from_address, so rank 0.
        assert_eq!(ids[0], "daofork_1920000_0");
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 116);
    }
}
