//! `export_all`: ethereum-etl 2.4.2's Hive-partitioned export. Per partition
//! (`-b` blocks, or one UTC day for dates and Unix times) it runs, in
//! ethereum-etl's order and with its file names, blocks and transactions,
//! token transfers, receipts and logs (for the partition's transaction
//! hashes), contracts (for the receipts' contract addresses) and tokens (for
//! the transfers' token addresses), through the same jobs as the single
//! commands; the address lists go through `OUT/.tmp/…` as in ethereum-etl. A
//! partition whose export fails leaves none of its files behind.

use std::path::Path;

use crate::error::{ExportError, Result};
use crate::input;
use crate::progress::Ui;
use crate::rpc::RpcClient;

use super::block_range::{block_range_for_timestamps, date_string, day_number};
use super::blocks::{export_blocks_and_transactions, BlocksJob};
use super::contracts::{export_contracts, ContractsJob};
use super::receipts::{export_receipts_and_logs, ReceiptsJob};
use super::token_transfers::{export_token_transfers, ExportTransfersJob};
use super::tokens::{export_tokens, TokensJob};

/// Parameters of `export_all`.
#[derive(Debug, Clone)]
pub struct ExportAllJob {
    /// Start block, ISO date or Unix time (as given).
    pub start: String,
    /// End block, ISO date or Unix time (as given).
    pub end: String,
    /// Blocks per partition for a block range.
    pub partition_batch_size: u64,
    /// Output directory.
    pub output_dir: String,
    /// Concurrent batches.
    pub max_workers: usize,
    /// Requests per JSON-RPC batch.
    pub export_batch_size: usize,
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[0] == b'2'
        && b[4] == b'-'
        && b[7] == b'-'
        && [1, 2, 3, 5, 6, 8, 9].iter().all(|&i| b[i].is_ascii_digit())
}

fn is_unix_time(s: &str) -> bool {
    (s.len() == 10 || s.len() == 13) && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_block(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u64>().is_ok_and(|n| n <= 99_999_999)
}

/// The UTC day of a 10-digit (seconds) or 13-digit (milliseconds) Unix time.
fn unix_day(s: &str) -> i64 {
    let t: i64 = s.parse().unwrap_or(0);
    let secs = if s.len() == 13 { t.div_euclid(1000) } else { t };
    secs.div_euclid(86_400)
}

/// `get_partitions`: `(first block, last block, partition dir)`.
async fn partitions(client: &RpcClient, job: &ExportAllJob) -> Result<Vec<(u64, u64, String)>> {
    let (start, end) = (job.start.as_str(), job.end.as_str());
    let days = if is_date(start) && is_date(end) {
        Some((day_number(start)?, day_number(end)?))
    } else if is_unix_time(start) && is_unix_time(end) {
        if start.len() != end.len() {
            return Err(ExportError::Usage(
                "start and end must be Unix times of the same precision".into(),
            ));
        }
        Some((unix_day(start), unix_day(end)))
    } else {
        None
    };
    let mut out = Vec::new();
    if let Some((first, last)) = days {
        for day in first..=last {
            let t = i128::from(day) * 86_400;
            let (lo, hi) = block_range_for_timestamps(client, t, t + 86_399).await?;
            let block =
                |b: i128| u64::try_from(b).map_err(|_| ExportError::Data(format!("block {b}")));
            out.push((
                block(lo)?,
                block(hi)?,
                format!("/date={}/", date_string(day)),
            ));
        }
    } else if is_block(start) && is_block(end) {
        let (lo, hi): (u64, u64) = (start.parse().unwrap_or(0), end.parse().unwrap_or(0));
        let size = job.partition_batch_size.max(1);
        let mut b = lo;
        while b <= hi {
            let e = (b + size - 1).min(hi);
            out.push((b, e, format!("/start_block={b:08}/end_block={e:08}")));
            b += size;
        }
    } else {
        return Err(ExportError::Usage(
            "start and end must be either block numbers or ISO dates or Unix times".into(),
        ));
    }
    Ok(out)
}

/// `extract_csv_column_unique`: the distinct values of `column`, one per line.
fn column_unique(input_csv: &str, output: &str, column: &str) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    let mut text = String::new();
    for row in input::csv_dicts(input_csv)? {
        let value = crate::pyfmt::py_str(&row?.get_or_none(column));
        if seen.insert(value.clone()) {
            text.push_str(&value);
            text.push('\n');
        }
    }
    if let Some(dir) = Path::new(output).parent() {
        std::fs::create_dir_all(dir).map_err(|e| ExportError::io(dir, e))?;
    }
    std::fs::write(output, text).map_err(|e| ExportError::io(output, e))
}

/// Python's `os.path.dirname`: everything before the last `/`, trailing `/`s removed.
fn python_dirname(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => match path[..i].trim_end_matches('/') {
            "" => &path[..1],
            head => head,
        },
        None => "",
    }
}

/// Exports one partition, as `export_all_common`'s loop body does. A partition is written
/// whole or not at all: when a job fails (no verified answer, a node that stays down), the
/// files its earlier jobs wrote for the partition are removed again.
async fn export_partition(
    client: &RpcClient,
    job: &ExportAllJob,
    lo: u64,
    hi: u64,
    dir: &str,
    ui: Ui,
) -> Result<()> {
    let mut written = Vec::new();
    let result = export_partition_files(client, job, (lo, hi), dir, ui, &mut written).await;
    if result.is_err() {
        for path in &written {
            let _ = std::fs::remove_file(path);
        }
    }
    result
}

/// The jobs of one partition; `written` collects the files each finished job wrote.
async fn export_partition_files(
    client: &RpcClient,
    job: &ExportAllJob,
    (lo, hi): (u64, u64),
    dir: &str,
    ui: Ui,
    written: &mut Vec<String>,
) -> Result<()> {
    let suffix = format!("{lo:08}_{hi:08}");
    let file = |kind: &str| format!("{}/{kind}{dir}/{kind}_{suffix}.csv", job.output_dir);
    let cache = format!("{}/.tmp{dir}", job.output_dir);
    let (batch_size, max_workers) = (job.export_batch_size, job.max_workers);
    let blocks = BlocksJob {
        start_block: lo,
        end_block: hi,
        batch_size,
        max_workers,
        blocks_output: Some(file("blocks")),
        transactions_output: Some(file("transactions")),
    };
    export_blocks_and_transactions(client, &blocks, ui).await?;
    written.extend([file("blocks"), file("transactions")]);
    let transfers = ExportTransfersJob {
        start_block: lo,
        end_block: hi,
        batch_size,
        max_workers,
        output: file("token_transfers"),
        tokens: Vec::new(),
    };
    export_token_transfers(client, &transfers, ui).await?;
    written.push(file("token_transfers"));
    let hashes = format!("{cache}/transaction_hashes_{suffix}.csv");
    column_unique(&file("transactions"), &hashes, "hash")?;
    let receipts = ReceiptsJob {
        transaction_hashes: hashes,
        batch_size,
        max_workers,
        receipts_output: Some(file("receipts")),
        logs_output: Some(file("logs")),
    };
    export_receipts_and_logs(client, &receipts, ui).await?;
    written.extend([file("receipts"), file("logs")]);
    let addresses = format!("{cache}/contract_addresses_{suffix}.csv");
    column_unique(&file("receipts"), &addresses, "contract_address")?;
    let contracts = ContractsJob {
        contract_addresses: addresses,
        batch_size,
        max_workers,
        output: file("contracts"),
    };
    export_contracts(client, &contracts, ui).await?;
    written.push(file("contracts"));
    let tokens = format!("{cache}/token_addresses_{suffix}");
    column_unique(&file("token_transfers"), &tokens, "token_address")?;
    let job = TokensJob {
        input: tokens,
        output: file("tokens"),
        max_workers,
        values_as_strings: false,
    };
    export_tokens(client, &job, ui).await?;
    // ethereum-etl removes `os.path.dirname(cache)`: the cache directory itself for a
    // date partition ("…/.tmp/date=D/"), its parent for a block range.
    let dirname = python_dirname(&cache);
    std::fs::remove_dir_all(dirname).map_err(|e| ExportError::io(dirname, e))?;
    Ok(())
}

/// Runs `export_all`.
pub async fn export_all(client: &RpcClient, job: &ExportAllJob, ui: Ui) -> Result<()> {
    for (lo, hi, dir) in partitions(client, job).await? {
        export_partition(client, job, lo, hi, &dir, ui).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_classified_like_ethereum_etl() {
        assert!(is_date("2018-01-31") && !is_date("1999-01-01") && !is_date("2018-1-31"));
        assert!(is_unix_time("1514764800") && is_unix_time("1514764800000"));
        assert!(is_block("0") && is_block("99999999") && !is_block("100000000") && !is_block("-1"));
        assert_eq!(unix_day("1514764800"), 17_532);
        assert_eq!(unix_day("1514764800999"), 17_532);
        assert_eq!(
            python_dirname("o/.tmp/date=2021-06-01/"),
            "o/.tmp/date=2021-06-01"
        );
        assert_eq!(
            python_dirname("o/.tmp/start_block=0/end_block=9"),
            "o/.tmp/start_block=0"
        );
    }
}
