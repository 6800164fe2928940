//! `export_contracts` (`eth_getCode` for addresses read from a file, in
//! JSON-RPC batches, many in flight) and `extract_contracts` (the successful
//! `create` traces of a traces file), both with ethereum-etl's sighash and
//! ERC-20/ERC-721 analysis.

use crate::error::{ExportError, Result};
use crate::hexnum::to_int_or_none;
use crate::input;
use crate::mappers::contracts::{contract_row, CONTRACT_FIELDS};
use crate::pipeline::{finish_one, write_ordered, Batch};
use crate::progress::{Progress, Ui};
use crate::pyvalue::PyValue;
use crate::rpc::{Call, RpcClient};
use crate::sink::{ItemWriter, SharedStdout};

use super::chunked;

/// Parameters of `export_contracts`.
#[derive(Debug, Clone)]
pub struct ContractsJob {
    /// File with one contract address per line (`-` for stdin).
    pub contract_addresses: String,
    /// Addresses per JSON-RPC batch.
    pub batch_size: usize,
    /// Concurrent batches.
    pub max_workers: usize,
    /// Output path.
    pub output: String,
}

/// The stripped, non-blank lines of `path`, as ethereum-etl reads address files.
pub(crate) fn address_lines(path: &str) -> Result<impl Iterator<Item = Result<String>>> {
    Ok(input::lines(path)?
        .map(|line| line.map(|l| l.trim().to_owned()))
        .filter(|line| !matches!(line, Ok(l) if l.is_empty())))
}

async fn fetch_contracts(client: &RpcClient, addresses: Vec<String>) -> Result<Vec<Vec<PyValue>>> {
    let calls: Vec<Call> = addresses
        .iter()
        .map(|a| Call {
            method: "eth_getCode",
            params: PyValue::List(vec![a.as_str().into(), "latest".into()]),
            label: format!("contract {a}"),
        })
        .collect();
    let what = format!(
        "code of {} contracts from {}",
        addresses.len(),
        addresses[0]
    );
    let codes = client.batch(&what, &calls, Ok).await?;
    addresses
        .into_iter()
        .zip(codes)
        .map(|(address, code)| contract_row(address.into(), code, PyValue::None))
        .collect()
}

/// Runs `export_contracts`; returns the number of contracts written.
pub async fn export_contracts(client: &RpcClient, job: &ContractsJob, ui: Ui) -> Result<u64> {
    let addresses = address_lines(&job.contract_addresses)?;
    let stdout = SharedStdout::default();
    let mut out = ItemWriter::open(&job.output, CONTRACT_FIELDS, &stdout)?;
    let progress = Progress::new(ui, None, "contracts");
    write_ordered(
        chunked(addresses, job.batch_size),
        job.max_workers,
        |batch| {
            let client = client.clone();
            async move { fetch_contracts(&client, batch?).await.map(Batch::rows) }
        },
        &mut [Some(&mut out)],
        &progress,
    )
    .await?;
    finish_one(&progress, out, &ui, "contract")
}

/// ethereum-etl's filter: a `create` trace with a non-empty `to_address` and status 1.
fn created_contract(trace: &PyValue) -> bool {
    let status = to_int_or_none(&trace.get_or_none("status"));
    let is_create = trace.get("trace_type").and_then(PyValue::as_str) == Some("create");
    let has_address = !matches!(trace.get("to_address"), None | Some(PyValue::None))
        && !matches!(trace.get("to_address"), Some(PyValue::Str(s)) if s.is_empty());
    is_create && has_address && matches!(status, PyValue::Int(1) | PyValue::Bool(true))
}

/// The contract row of a trace dict that creates one (ethereum-etl's `ExtractContractsJob`,
/// which `extract_contracts` and `stream -e contract` run).
pub(crate) fn contract_of_trace(trace: &PyValue) -> Result<Option<Vec<PyValue>>> {
    if !created_contract(trace) {
        return Ok(None);
    }
    let block_number = to_int_or_none(&trace.get_or_none("block_number"));
    contract_row(
        trace.get_or_none("to_address"),
        trace.get_or_none("output"),
        block_number,
    )
    .map(Some)
}

/// Runs `extract_contracts` on a traces file (JSON lines when it ends in
/// `.json`, else CSV); returns the number of contracts written.
pub fn extract_contracts(traces: &str, output: &str, ui: Ui) -> Result<u64> {
    let items: Box<dyn Iterator<Item = Result<PyValue>>> = if traces.ends_with(".json") {
        Box::new(input::json_lines(traces)?)
    } else {
        Box::new(input::csv_dicts(traces)?)
    };
    let stdout = SharedStdout::default();
    let mut out = ItemWriter::open(output, CONTRACT_FIELDS, &stdout)?;
    for (i, item) in items.enumerate() {
        let trace = item?;
        if !matches!(trace, PyValue::Dict(_)) {
            return Err(ExportError::Data(format!(
                "trace {} of {traces} is a JSON {}, expected an object",
                i + 1,
                trace.type_name()
            )));
        }
        if let Some(row) = contract_of_trace(&trace)? {
            out.write(&row)?;
        }
    }
    let n = out.finish()?;
    ui.summary(&format!("contract items exported: {n}"));
    Ok(n)
}
