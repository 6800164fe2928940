//! `stream`: follows the chain head like `ethereumetl stream`, printing
//! enriched items to the console (one `json.dumps` line each). State lives in
//! the last-synced-block file, rewritten atomically after every round; each
//! round syncs at most `--block-batch-size` blocks, `--lag` blocks behind the
//! head, and an idle or failed round sleeps `--period-seconds`.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::export::error::{ExportError, Result};
use crate::export::mappers::blocks::MappedBlock;
use crate::export::mappers::enrich::{
    add_id_and_timestamp, block_item, find_block, find_receipt, log_item, token_transfer_item,
    transaction_item,
};
use crate::export::mappers::receipts::{MappedReceipt, LOG_FIELDS};
use crate::export::mappers::token_transfers::{extract_transfer, LogView};
use crate::export::pipeline::run_ordered;
use crate::export::progress::Ui;
use crate::export::pyfmt::json_dumps;
use crate::export::pyvalue::PyValue;
use crate::export::rpc::{Call, RpcClient};

use super::blocks::fetch_blocks;
use super::receipts::fetch_receipts;
use super::{block_batches, chunked};

/// The entity types `stream` can print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// Blocks.
    Block,
    /// Transactions joined with their receipts.
    Transaction,
    /// Receipt logs.
    Log,
    /// ERC-20/721 transfers.
    TokenTransfer,
}

/// Parses `-e block,transaction,...` like ethereum-etl (names are trimmed).
pub fn parse_entity_types(list: &str) -> Result<Vec<Entity>> {
    list.split(',')
        .map(|e| match e.trim() {
            "block" => Ok(Entity::Block),
            "transaction" => Ok(Entity::Transaction),
            "log" => Ok(Entity::Log),
            "token_transfer" => Ok(Entity::TokenTransfer),
            other @ ("trace" | "contract" | "token") => Err(ExportError::Usage(format!(
                "entity type {other:?} is not supported by nodewatch-export (supported: block,transaction,log,token_transfer)"
            ))),
            other => Err(ExportError::Usage(format!(
                "{other} is not an available entity type. Supply a comma separated list of types from block,transaction,log,token_transfer"
            ))),
        })
        .collect()
}

/// Parameters of `stream`.
#[derive(Debug, Clone)]
pub struct StreamJob {
    /// State file holding the last synced block.
    pub last_synced_block_file: String,
    /// Blocks to stay behind the head.
    pub lag: u64,
    /// First block to sync (the state file must not exist then).
    pub start_block: Option<u64>,
    /// What to print.
    pub entity_types: Vec<Entity>,
    /// Sleep between idle rounds.
    pub period: Duration,
    /// Blocks/receipts per JSON-RPC batch.
    pub batch_size: usize,
    /// Blocks per sync round.
    pub block_batch_size: u64,
    /// Concurrent batches.
    pub max_workers: usize,
    /// Stop once this block is synced (nodewatch-export extension).
    pub end_block: Option<u64>,
}

/// Runs the stream until `end_block` is synced (forever without one).
pub async fn stream(client: &RpcClient, job: &StreamJob, ui: Ui) -> Result<()> {
    let state = Path::new(&job.last_synced_block_file);
    if job.start_block.is_some() || !state.is_file() {
        if state.is_file() {
            return Err(ExportError::Usage(format!(
                "{0} should not exist if --start-block option is specified. Either remove the {0} file or the --start-block option.",
                job.last_synced_block_file
            )));
        }
        let start = i128::from(job.start_block.unwrap_or(0));
        write_state(state, start - 1)?;
    }
    let mut last_synced = read_state(state)?;
    let mut stdout = std::io::BufWriter::new(std::io::stdout());
    loop {
        if job
            .end_block
            .is_some_and(|end| last_synced >= i128::from(end))
        {
            return Ok(());
        }
        let synced = match sync_round(client, job, last_synced, &mut stdout).await {
            Ok(Some(target)) => {
                write_state(state, target)?;
                let n = target - last_synced;
                last_synced = target;
                n
            }
            Ok(None) => 0,
            Err(e @ ExportError::Io { .. }) => return Err(e),
            Err(e) => {
                eprintln!("warning: sync round after block {last_synced} failed, will retry: {e}");
                0
            }
        };
        if synced <= 0 {
            if !ui.quiet {
                eprintln!(
                    "Nothing to sync. Sleeping for {} seconds...",
                    job.period.as_secs_f64()
                );
            }
            tokio::time::sleep(job.period).await;
        }
    }
}

fn read_state(path: &Path) -> Result<i128> {
    let text = std::fs::read_to_string(path).map_err(|e| ExportError::io(path, e))?;
    text.trim().parse().map_err(|_| {
        ExportError::Usage(format!(
            "{}: not a block number: {:?}",
            path.display(),
            text.trim()
        ))
    })
}

fn write_state(path: &Path, block: i128) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map_or("state".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| ExportError::io(parent, e))?;
    }
    std::fs::write(&tmp, format!("{block}\n")).map_err(|e| ExportError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ExportError::io(path, e))
}

/// One round: returns the new last synced block, or `None` when there was
/// nothing to sync.
async fn sync_round(
    client: &RpcClient,
    job: &StreamJob,
    last: i128,
    out: &mut impl Write,
) -> Result<Option<i128>> {
    let head = current_block(client).await?;
    let mut target = (head - i128::from(job.lag)).min(last + i128::from(job.block_batch_size));
    if let Some(end) = job.end_block {
        target = target.min(i128::from(end));
    }
    if target <= last {
        return Ok(None);
    }
    let (lo, hi) = (
        u64::try_from(last + 1).unwrap_or(0),
        u64::try_from(target).unwrap_or(0),
    );
    for line in export_round(client, job, lo, hi).await? {
        out.write_all(line.as_bytes())
            .map_err(|e| ExportError::io("-", e))?;
    }
    out.flush().map_err(|e| ExportError::io("-", e))?;
    Ok(Some(target))
}

async fn current_block(client: &RpcClient) -> Result<i128> {
    let call = [Call {
        method: "eth_blockNumber",
        params: PyValue::List(vec![]),
        label: "the current block number".into(),
    }];
    let result = client
        .batch("eth_blockNumber", &call, |mut r| Ok(r.pop()))
        .await?;
    match result
        .as_ref()
        .and_then(PyValue::as_str)
        .and_then(|s| i128::from_str_radix(s.trim_start_matches("0x"), 16).ok())
    {
        Some(n) => Ok(n),
        None => Err(ExportError::Rpc(format!(
            "eth_blockNumber answered {result:?}"
        ))),
    }
}

/// ethereum-etl's `export_all` for blocks `lo..=hi`: the printed lines.
async fn export_round(
    client: &RpcClient,
    job: &StreamJob,
    lo: u64,
    hi: u64,
) -> Result<Vec<String>> {
    let wants = |e: Entity| job.entity_types.contains(&e);
    let need_logs = wants(Entity::Log) || wants(Entity::TokenTransfer);
    let need_txs = wants(Entity::Transaction) || need_logs;
    let need_receipts = wants(Entity::Transaction) || need_logs;

    let mut blocks: Vec<MappedBlock> = Vec::new();
    run_ordered(
        block_batches(lo, hi, job.batch_size),
        job.max_workers,
        |(a, b)| {
            let client = client.clone();
            async move { fetch_blocks(&client, a, b, need_txs).await }
        },
        |batch: Vec<MappedBlock>| {
            blocks.extend(batch);
            Ok(())
        },
    )
    .await?;

    let mut receipts: Vec<MappedReceipt> = Vec::new();
    if need_receipts {
        let hashes = blocks.iter().flat_map(|b| b.transactions.iter()).map(|tx| {
            Ok(tx
                .first()
                .and_then(PyValue::as_str)
                .unwrap_or_default()
                .to_owned())
        });
        run_ordered(
            chunked(hashes, job.batch_size),
            job.max_workers,
            |batch| {
                let client = client.clone();
                async move { fetch_receipts(&client, batch?).await }
            },
            |batch: Vec<MappedReceipt>| {
                receipts.extend(batch);
                Ok(())
            },
        )
        .await?;
    }

    let mut items: Vec<Vec<(String, PyValue)>> = Vec::new();
    if wants(Entity::Block) {
        items.extend(blocks.iter().map(|b| block_item(&b.block)));
    }
    if wants(Entity::Transaction) {
        for tx in blocks.iter().flat_map(|b| b.transactions.iter()) {
            let receipt = find_receipt(&receipts, &tx[0])?;
            items.push(transaction_item(tx, &receipt.receipt));
        }
    }
    let logs: Vec<&Vec<PyValue>> = receipts.iter().flat_map(|r| r.logs.iter()).collect();
    let log_key = |row: &[PyValue], fields: &[&str]| {
        let at = |name: &str| {
            fields
                .iter()
                .position(|f| *f == name)
                .map(|i| sort_key(&row[i]))
        };
        (at("block_number"), at("log_index"))
    };
    if wants(Entity::Log) {
        let mut rows = logs.clone();
        rows.sort_by_key(|r| log_key(r, LOG_FIELDS));
        for row in rows {
            let block = find_block(&blocks, &row[4])?;
            items.push(log_item(row, &block.block));
        }
    }
    if wants(Entity::TokenTransfer) {
        let mut transfers = Vec::new();
        for (i, row) in logs.iter().enumerate() {
            let view = LogView::from_export_item(&PyValue::dict(
                LOG_FIELDS
                    .iter()
                    .zip(row.iter())
                    .map(|(k, v)| (*k, v.clone())),
            ));
            let label = || format!("log {i} of blocks {lo}..={hi}");
            if let Some(t) = extract_transfer(&view, &label)? {
                transfers.push(t);
            }
        }
        transfers.sort_by_key(|t| (sort_key(&t[6]), sort_key(&t[5])));
        for t in &transfers {
            let block = find_block(&blocks, &t[6])?;
            items.push(token_transfer_item(t, &block.block));
        }
    }
    Ok(items
        .into_iter()
        .map(|mut item| {
            add_id_and_timestamp(&mut item);
            let mut line = json_dumps(&PyValue::Dict(item));
            line.push('\n');
            line
        })
        .collect())
}

/// Orders integers numerically (everything else after them, unordered).
fn sort_key(v: &PyValue) -> (u8, i128) {
    match v {
        PyValue::Int(i) => (0, *i),
        _ => (1, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_types_are_validated() {
        assert_eq!(
            parse_entity_types("block, transaction,log,token_transfer").unwrap(),
            vec![
                Entity::Block,
                Entity::Transaction,
                Entity::Log,
                Entity::TokenTransfer
            ]
        );
        assert_eq!(parse_entity_types("trace").unwrap_err().exit_code(), 2);
        assert_eq!(parse_entity_types("blocks").unwrap_err().exit_code(), 2);
    }

    #[test]
    fn state_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/last_synced_block.txt");
        write_state(&p, -1).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "-1\n");
        assert_eq!(read_state(&p).unwrap(), -1);
        std::fs::write(&p, "x").unwrap();
        assert!(read_state(&p).is_err());
    }
}
